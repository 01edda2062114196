//! `schedule [for cpu|gpu] { ... }` blocks.
//!
//! A block is a list of primitive statements `[let names =] stage.prim(args);`.
//! The parser checks the *shape* of each statement (a known primitive, the
//! right number and kinds of arguments, the right number of bound names);
//! whether the stage and loops exist and the primitive is legal is the
//! core's business (`texpr_dsl::Schedule`), checked at expansion time.

use proc_macro2::{Group, TokenStream};
use syn::parse::ParseStream;
use syn::{Ident, LitInt, Token, token};
use texpr_dsl::{Scope, TargetClass, ThreadAxis};

use super::ast::{Factor, Prim, PrimKind, ScheduleBlock};
use super::parse_with;
use crate::error::{Errors, Sp, sp};

const PRIMITIVES: &str = "split, tile, fuse, reorder, vectorize, unroll, parallel, bind, compute_at, compute_inline, compute_root, cache_read, cache_write";

/// `schedule [for cpu|gpu] { ... }`, after attributes; the cursor is at
/// `schedule`. Statement errors are recorded and the statement skipped.
pub fn block(input: ParseStream, errors: &mut Errors) -> syn::Result<ScheduleBlock> {
    let kw: Ident = input.parse()?;
    let mut s = sp(&kw);
    let class = if input.peek(Token![for]) {
        input.parse::<Token![for]>()?;
        let c: Ident =
            input.parse().map_err(|_| Sp::new(input.span()).error("expected `cpu` or `gpu` after `schedule for`"))?;
        s = s.to(sp(&c));
        match c.to_string().as_str() {
            "cpu" => Some(TargetClass::Cpu),
            "gpu" => Some(TargetClass::Gpu),
            other => {
                let hint = match other {
                    "opencl" | "cuda" => "; `gpu` covers OpenCL and CUDA",
                    "interp" => "; `cpu` covers the JIT and the interpreter",
                    _ => "",
                };
                return Err(sp(&c).error(format!("expected `cpu` or `gpu`, found `{other}`{hint}")));
            }
        }
    } else {
        None
    };
    if !input.peek(token::Brace) {
        return Err(Sp::new(input.span()).error("expected `{` and the schedule's primitives"));
    }
    let group: Group = input.parse()?;
    let mut complete = true;
    let prims = parse_with(group.stream(), errors, |input, errors| {
        let mut prims = vec![];
        while !input.is_empty() {
            match prim(input) {
                Ok(Ok(p)) => prims.push(p),
                Ok(Err(e)) => {
                    complete = false;
                    errors.push(e);
                }
                Err(e) => {
                    complete = false;
                    errors.push(e);
                    skip_statement(input);
                }
            }
        }
        Ok(prims)
    });
    let complete = complete && prims.is_some();
    Ok(ScheduleBlock { class, sp: s, prims: prims.unwrap_or_default(), complete })
}

/// Skips to just after the next `;`.
fn skip_statement(input: ParseStream) {
    let _ = input.step(|c| {
        let mut c = *c;
        while let Some((tt, next)) = c.token_tree() {
            c = next;
            if let proc_macro2::TokenTree::Punct(p) = &tt
                && p.as_char() == ';'
            {
                break;
            }
        }
        Ok(((), c))
    });
}

/// An argument of a primitive.
enum SArg {
    Name(Ident),
    Int(i64, Sp),
    Dotted(Ident, Ident),
}

impl SArg {
    fn sp(&self) -> Sp {
        match self {
            SArg::Name(n) => sp(n),
            SArg::Int(_, s) => *s,
            SArg::Dotted(a, b) => sp(a).to(sp(b)),
        }
    }
}

fn sarg(input: ParseStream) -> syn::Result<SArg> {
    let start = Sp::new(input.span());
    if input.peek(Token![-]) || input.peek(LitInt) {
        let neg = input.peek(Token![-]);
        if neg {
            input.parse::<Token![-]>()?;
        }
        let lit: LitInt = input.parse().map_err(|_| Sp::new(input.span()).error("expected an integer"))?;
        let s = start.to(Sp::new(lit.span()));
        let v: i64 = lit.base10_parse().map_err(|_| s.error("integer too large"))?;
        return Ok(SArg::Int(if neg { -v } else { v }, s));
    }
    if input.peek(Ident) {
        let a: Ident = input.parse()?;
        if input.peek(Token![.]) && !input.peek(Token![..]) {
            input.parse::<Token![.]>()?;
            let b: Ident = input.parse()?;
            return Ok(SArg::Dotted(a, b));
        }
        return Ok(SArg::Name(a));
    }
    Err(start.error("expected a loop, stage or tensor name, an integer, or `block.x`/`thread.x`"))
}

/// The names bound by `let`: one name or a tuple.
struct Binds {
    names: Vec<Ident>,
    tuple: bool,
    sp: Sp,
}

/// One statement: `Err` for a syntax error (the caller skips to the next
/// `;`), `Ok(Err)` for a statement read to its `;` that is not a valid
/// primitive.
fn prim(input: ParseStream) -> syn::Result<syn::Result<Prim>> {
    let binds = if input.peek(Token![let]) {
        let l: Token![let] = input.parse()?;
        let b = if input.peek(token::Paren) {
            let g: Group = input.parse()?;
            let names = parse_names(g.stream())?;
            Binds { names, tuple: true, sp: Sp::new(l.span).to(Sp::new(g.span_close())) }
        } else {
            let n: Ident = input.parse()?;
            Binds { sp: Sp::new(l.span).to(sp(&n)), names: vec![n], tuple: false }
        };
        input.parse::<Token![=]>()?;
        Some(b)
    } else {
        None
    };
    if !input.peek(Ident) {
        return Err(Sp::new(input.span()).error("expected a schedule primitive, like `c.split(i, 8);`"));
    }
    let stage: Ident = input.parse()?;
    if !input.peek(Token![.]) {
        return Err(Sp::new(input.span()).error("expected `.` and a primitive: `stage.primitive(...)`"));
    }
    input.parse::<Token![.]>()?;
    let method: Ident = input.parse()?;
    if !input.peek(token::Paren) {
        return Err(Sp::new(input.span()).error(format!("expected `(` after `{method}`")));
    }
    let g: Group = input.parse()?;
    let args = super::parse_all(g.stream(), |input| {
        let mut v = vec![];
        while !input.is_empty() {
            v.push(sarg(input)?);
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(v)
    })?;
    let call = sp(&stage).to(Sp::new(g.span_close()));
    if !input.peek(Token![;]) {
        return Err(Sp::new(input.span()).error("expected `;` after the primitive"));
    }
    input.parse::<Token![;]>()?;
    Ok(kind(&method, args, binds, call).map(|kind| Prim { stage, kind, sp: call }))
}

fn parse_names(ts: TokenStream) -> syn::Result<Vec<Ident>> {
    super::parse_all(ts, |input| {
        let mut v = vec![];
        while !input.is_empty() {
            v.push(input.parse::<Ident>()?);
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(v)
    })
}

fn kind(method: &Ident, args: Vec<SArg>, binds: Option<Binds>, call: Sp) -> syn::Result<PrimKind> {
    let m = method.to_string();
    let sig = match m.as_str() {
        "split" => "split(loop, factor)",
        "tile" => "tile(x, y, fx, fy)",
        "fuse" => "fuse(outer, inner)",
        "reorder" => "reorder(loop, ...)",
        "vectorize" => "vectorize(loop)",
        "unroll" => "unroll(loop)",
        "parallel" => "parallel(loop)",
        "bind" => "bind(loop, block.x | block.y | block.z | thread.x | thread.y | thread.z)",
        "compute_at" => "compute_at(stage, loop)",
        "compute_inline" => "compute_inline()",
        "compute_root" => "compute_root()",
        "cache_read" => "cache_read(tensor, shared | local)",
        "cache_write" => "cache_write(local)",
        "rfactor" | "tensorize" | "storage_align" | "double_buffer" => {
            return Err(sp(method).error(format!("`{m}` is not supported yet; the primitives are {PRIMITIVES}")));
        }
        _ => return Err(sp(method).error(format!("unknown schedule primitive `{m}`; the primitives are {PRIMITIVES}"))),
    };
    let count_ok = match m.as_str() {
        "reorder" => !args.is_empty(),
        "split" | "fuse" | "bind" | "compute_at" | "cache_read" => args.len() == 2,
        "tile" => args.len() == 4,
        "vectorize" | "unroll" | "parallel" | "cache_write" => args.len() == 1,
        _ => args.is_empty(),
    };
    if !count_ok {
        return Err(call.error(format!("`{m}` takes {}: `{sig}`", arg_count(&m))));
    }
    // What `let` may bind: (count, tuple, what).
    let returns: Option<(usize, bool, &str)> = match m.as_str() {
        "split" => Some((2, true, "`let (outer, inner) = ...`")),
        "tile" => Some((4, true, "`let (xo, yo, xi, yi) = ...`")),
        "fuse" => Some((1, false, "`let fused = ...`")),
        "cache_read" | "cache_write" => Some((1, false, "`let cache = ...`: the new stage")),
        _ => None,
    };
    let names: Option<Vec<Ident>> = match (binds, returns) {
        (None, _) => None,
        (Some(b), None) => return Err(b.sp.error(format!("`{m}` returns nothing to bind; remove the `let`"))),
        (Some(b), Some((n, tuple, what))) => {
            if b.names.len() != n || b.tuple != tuple {
                return Err(b.sp.error(format!("`{m}` returns {n} name(s): {what}")));
            }
            Some(b.names)
        }
    };
    let mut it = args.into_iter();
    let mut next = || it.next().ok_or_else(|| call.error(format!("`{m}` takes {}: `{sig}`", arg_count(&m))));
    Ok(match m.as_str() {
        "split" => {
            let axis = name(next()?, "a loop")?;
            let factor = factor(next()?)?;
            PrimKind::Split { axis, factor, names: names.map(|n| [n[0].clone(), n[1].clone()]) }
        }
        "tile" => {
            let x = name(next()?, "a loop")?;
            let y = name(next()?, "a loop")?;
            let fx = factor(next()?)?;
            let fy = factor(next()?)?;
            let names = names.map(|n| [n[0].clone(), n[1].clone(), n[2].clone(), n[3].clone()]);
            PrimKind::Tile { x, y, fx, fy, names }
        }
        "fuse" => {
            let a = name(next()?, "a loop")?;
            let b = name(next()?, "a loop")?;
            PrimKind::Fuse { a, b, name: names.map(|mut n| n.remove(0)) }
        }
        "reorder" => {
            let mut axes = vec![];
            for a in it {
                axes.push(name(a, "a loop")?);
            }
            PrimKind::Reorder { axes }
        }
        "vectorize" => PrimKind::Vectorize { axis: name(next()?, "a loop")? },
        "unroll" => PrimKind::Unroll { axis: name(next()?, "a loop")? },
        "parallel" => PrimKind::Parallel { axis: name(next()?, "a loop")? },
        "bind" => {
            let axis = name(next()?, "a loop")?;
            let thread = thread(next()?)?;
            PrimKind::Bind { axis, thread }
        }
        "compute_at" => {
            let consumer = name(next()?, "a stage")?;
            let axis = name(next()?, "a loop")?;
            PrimKind::ComputeAt { consumer, axis }
        }
        "compute_inline" => PrimKind::ComputeInline,
        "compute_root" => PrimKind::ComputeRoot,
        "cache_read" => {
            let tensor = name(next()?, "a tensor")?;
            let scope = scope(next()?)?;
            PrimKind::CacheRead { tensor, scope, name: names.map(|mut n| n.remove(0)) }
        }
        _ => {
            let scope = scope(next()?)?;
            PrimKind::CacheWrite { scope, name: names.map(|mut n| n.remove(0)) }
        }
    })
}

fn arg_count(m: &str) -> &'static str {
    match m {
        "reorder" => "one or more loops",
        "split" | "fuse" | "bind" | "compute_at" | "cache_read" => "2 arguments",
        "tile" => "4 arguments",
        "vectorize" | "unroll" | "parallel" | "cache_write" => "1 argument",
        _ => "no arguments",
    }
}

fn name(a: SArg, what: &str) -> syn::Result<Ident> {
    match a {
        SArg::Name(n) => Ok(n),
        SArg::Dotted(x, y) => Err(sp(&x).to(sp(&y)).error(format!(
            "expected {what} (a name), found `{x}.{y}`; name the loops a primitive creates with `let`, like `let (o, i) = s.split(v, 4);`"
        ))),
        other => Err(other.sp().error(format!("expected {what} (a name)"))),
    }
}

fn factor(a: SArg) -> syn::Result<Factor> {
    match a {
        SArg::Int(value, sp) => Ok(Factor { value, sp }),
        other => Err(other.sp().error("a split factor is an integer literal (tunable knobs are not supported yet)")),
    }
}

fn thread(a: SArg) -> syn::Result<ThreadAxis> {
    const WANT: &str = "expected a GPU axis: `block.x`, `block.y`, `block.z`, `thread.x`, `thread.y` or `thread.z`";
    match &a {
        SArg::Dotted(x, y) => ThreadAxis::from_name(&format!("{x}.{y}")).ok_or_else(|| a.sp().error(WANT)),
        _ => Err(a.sp().error(WANT)),
    }
}

fn scope(a: SArg) -> syn::Result<Scope> {
    match &a {
        SArg::Name(n) => match n.to_string().as_str() {
            "shared" => Ok(Scope::Shared),
            "local" => Ok(Scope::Local),
            "global" => Ok(Scope::Global),
            _ => Err(a.sp().error("expected a memory scope: `shared` or `local`")),
        },
        _ => Err(a.sp().error("expected a memory scope: `shared` or `local`")),
    }
}
