//! Parsing: tokens → [`ast::Block`].
//!
//! The parser recovers at item boundaries (a function, a `schedule` block)
//! and at schedule statements, so one invocation reports every syntax error
//! it can find, and a function whose body does not parse still gets a stub
//! of its API (its signature parsed).

pub mod ast;
pub mod expr;
pub mod schedule;

use proc_macro2::{Group, Span, TokenStream};
use syn::parse::{ParseStream, Parser};
use syn::{Ident, Token, token};

use ast::{Arg, Block, Body, FuncDef, Stage, TensorType};
use expr::{elem_type, tensor_type};

use crate::error::{Errors, Sp};

/// Parses a token stream that `f` must consume entirely.
pub fn parse_all<T>(ts: TokenStream, f: impl FnOnce(ParseStream) -> syn::Result<T>) -> syn::Result<T> {
    f.parse2(ts)
}

/// Parses a token stream with `f`, which records the errors it recovers
/// from in `errors`; an error `f` returns is recorded too.
pub fn parse_with<T>(
    ts: TokenStream,
    errors: &mut Errors,
    f: impl FnOnce(ParseStream, &mut Errors) -> syn::Result<T>,
) -> Option<T> {
    let mut out = None;
    let mut inner = Errors::default();
    let r = (|input: ParseStream| {
        out = Some(f(input, &mut inner)?);
        Ok(())
    })
    .parse2(ts);
    // After a recovered error syn may also report the tokens the failed
    // parse left behind; that second error says nothing new.
    if let Err(e) = r
        && (inner.is_empty() || out.is_none())
    {
        inner.push(e);
    }
    errors.append(inner);
    out
}

/// Parses one invocation.
pub fn block(ts: TokenStream, errors: &mut Errors) -> Block {
    let funcs = parse_with(ts, errors, |input, errors| {
        let mut funcs: Vec<FuncDef> = vec![];
        while !input.is_empty() {
            if let Err(e) = item(input, &mut funcs, errors) {
                errors.push(e);
                skip_item(input);
            }
        }
        Ok(funcs)
    });
    Block { funcs: funcs.unwrap_or_default() }
}

/// Skips to just after the next `{ ... }` group: the end of the item.
fn skip_item(input: ParseStream) {
    let _ = input.step(|c| {
        let mut c = *c;
        while let Some((tt, next)) = c.token_tree() {
            c = next;
            if let proc_macro2::TokenTree::Group(g) = &tt
                && g.delimiter() == proc_macro2::Delimiter::Brace
            {
                break;
            }
        }
        Ok(((), c))
    });
}

fn is_schedule(input: ParseStream) -> bool {
    input.fork().parse::<Ident>().is_ok_and(|i| i == "schedule")
        && (input.peek2(Token![for]) || input.peek2(token::Brace))
}

fn item(input: ParseStream, funcs: &mut Vec<FuncDef>, errors: &mut Errors) -> syn::Result<()> {
    let attrs = input.call(syn::Attribute::parse_outer)?;
    if is_schedule(input) {
        if let Some(a) = attrs.first() {
            errors.push(
                Sp::new(a.pound_token.span).error("attributes and doc comments are not allowed on a `schedule` block"),
            );
        }
        let s = schedule::block(input, errors)?;
        let Some(f) = funcs.last_mut() else {
            return Err(s.sp.error("a `schedule` block follows the function it schedules"));
        };
        if f.schedules.iter().any(|o| o.class == s.class) {
            let which = match s.class {
                Some(c) => format!("schedule for {c}"),
                None => "schedule".to_string(),
            };
            return Err(s.sp.error(format!("`{}` already has a `{which}` block", f.name)));
        }
        f.schedules.push(s);
        return Ok(());
    }
    let vis: syn::Visibility = input.parse()?;
    if !input.peek(Token![fn]) {
        return Err(
            Sp::new(input.span()).error("expected a function (`fn name(...) -> ... { ... }`) or a `schedule` block")
        );
    }
    input.parse::<Token![fn]>()?;
    let name: Ident = input.parse()?;
    if input.peek(Token![<]) {
        return Err(Sp::new(input.span())
            .error("a tensor_expr function has no generic parameters; dims are written in the types"));
    }
    if !input.peek(token::Paren) {
        return Err(Sp::new(input.span()).error("expected `(` and the function's inputs"));
    }
    let g: Group = input.parse()?;
    let args = parse_all(g.stream(), args)?;
    if !input.peek(Token![->]) {
        return Err(Sp::new(input.span()).error("expected `->` and the output type, like `-> f32[N]`"));
    }
    input.parse::<Token![->]>()?;
    let outputs = if input.peek(token::Paren) {
        let g: Group = input.parse()?;
        if g.stream().is_empty() {
            return Err(Sp::new(g.span_open())
                .to(Sp::new(g.span_close()))
                .error("a function returns at least one tensor, like `-> f32[N]`"));
        }
        parse_all(g.stream(), |input| {
            let mut v = vec![];
            while !input.is_empty() {
                v.push(tensor_type(input, "an output")?);
                if input.is_empty() {
                    break;
                }
                input.parse::<Token![,]>()?;
            }
            Ok(v)
        })?
    } else {
        vec![tensor_type(input, "an output")?]
    };
    if !input.peek(token::Brace) {
        return Err(Sp::new(input.span()).error("expected `{` and the function's stages"));
    }
    let g: Group = input.parse()?;
    let close = g.span_close();
    let body = parse_with(g.stream(), errors, |input, _| body(input, close));

    let mut docs = vec![];
    let mut doc = String::new();
    let mut debug = false;
    for a in attrs {
        if a.path().is_ident("doc") {
            if let syn::Meta::NameValue(nv) = &a.meta
                && let syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) = &nv.value
            {
                let line = s.value();
                doc.push_str(line.strip_prefix(' ').unwrap_or(&line));
                doc.push('\n');
            }
            docs.push(a);
        } else if a.path().is_ident("debug") && matches!(a.meta, syn::Meta::Path(_)) {
            debug = true;
        } else {
            errors.push(
                Sp::new(a.pound_token.span)
                    .to(Sp::new(a.bracket_token.span.close()))
                    .error("unsupported attribute: a tensor_expr function takes doc comments and `#[debug]` only"),
            );
        }
    }
    let doc = (!doc.is_empty()).then(|| doc.trim_end().to_string());
    funcs.push(FuncDef { docs, doc, debug, vis, name, args, outputs, body, schedules: vec![] });
    Ok(())
}

fn args(input: ParseStream) -> syn::Result<Vec<Arg>> {
    let mut out = vec![];
    while !input.is_empty() {
        if input.peek(Token![mut]) || input.peek(Token![&]) {
            return Err(Sp::new(input.span()).error("an input is written `name: f32[dims]` or `name: f32`"));
        }
        let name: Ident = input.parse()?;
        if !input.peek(Token![:]) {
            return Err(Sp::new(input.span()).error(format!("expected `:` and the type of `{name}`")));
        }
        input.parse::<Token![:]>()?;
        let elem = elem_type(input)?;
        if input.peek(token::Bracket) {
            let content;
            let b = syn::bracketed!(content in input);
            let dims = expr::list(&content)?;
            let ty = TensorType { elem, dims, sp: elem.sp.to(Sp::new(b.span.close())) };
            out.push(Arg::Tensor { name, ty });
        } else {
            out.push(Arg::Scalar { name, dtype: elem });
        }
        if input.is_empty() {
            break;
        }
        if !input.peek(Token![,]) {
            return Err(Sp::new(input.span()).error("expected `,` or `)`"));
        }
        input.parse::<Token![,]>()?;
    }
    Ok(out)
}

fn body(input: ParseStream, close: Span) -> syn::Result<Body> {
    let mut stages = vec![];
    while input.peek(Token![let]) {
        stages.push(stage(input)?);
    }
    let ret = if input.peek(token::Paren) {
        let g: Group = input.parse()?;
        parse_all(g.stream(), |input| {
            let mut v = vec![];
            while !input.is_empty() {
                v.push(input.parse::<Ident>().map_err(|_| {
                    Sp::new(input.span()).error("the tail is a tuple of returned stage names, like `(y, z)`")
                })?);
                if input.is_empty() {
                    break;
                }
                input.parse::<Token![,]>()?;
            }
            Ok(v)
        })?
    } else if input.peek(Ident) {
        vec![input.parse::<Ident>()?]
    } else if input.is_empty() {
        return Err(Sp::new(close)
            .error("the body must end with the returned stage, like `c` (or `(y, z)` for several outputs)"));
    } else {
        return Err(Sp::new(input.span()).error("expected a `let` stage or the returned stage's name"));
    };
    if !input.is_empty() {
        let what = if input.peek(Token![;]) {
            "the returned stage is the tail of the body: remove the `;`"
        } else {
            "expected the end of the body after the returned stage(s)"
        };
        return Err(Sp::new(input.span()).error(what));
    }
    Ok(Body { stages, ret })
}

fn stage(input: ParseStream) -> syn::Result<Stage> {
    input.parse::<Token![let]>()?;
    if input.peek(Token![mut]) {
        return Err(Sp::new(input.span()).error("stages are immutable: remove `mut`"));
    }
    let name: Ident = input.parse()?;
    let ty = if input.peek(Token![:]) {
        input.parse::<Token![:]>()?;
        Some(tensor_type(input, &format!("stage `{name}`"))?)
    } else {
        None
    };
    if !input.peek(Token![=]) {
        return Err(Sp::new(input.span()).error("expected `=` and the stage's closure"));
    }
    input.parse::<Token![=]>()?;
    let mut idx = vec![];
    if input.peek(Token![||]) {
        input.parse::<Token![||]>()?;
    } else if input.peek(Token![|]) {
        input.parse::<Token![|]>()?;
        while !input.peek(Token![|]) {
            let i: Ident = input.parse().map_err(|_| Sp::new(input.span()).error("expected an index variable name"))?;
            if input.peek(Token![:]) {
                return Err(Sp::new(input.span()).error("index variables have no type annotation (they are `i64`)"));
            }
            idx.push(i);
            if input.peek(Token![,]) {
                input.parse::<Token![,]>()?;
            } else if !input.peek(Token![|]) {
                return Err(Sp::new(input.span()).error("expected `,` or `|`"));
            }
        }
        input.parse::<Token![|]>()?;
    } else {
        return Err(Sp::new(input.span())
            .error(format!("a stage is a closure over its indices, like `let {name} = |i, j| ...;`")));
    }
    let body = expr::expr(input)?;
    if !input.peek(Token![;]) {
        return Err(Sp::new(input.span()).error("expected `;` after the stage's value"));
    }
    input.parse::<Token![;]>()?;
    Ok(Stage { name, ty, idx, body })
}
