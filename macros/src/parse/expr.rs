//! The expression grammar, with Rust's precedence.
//!
//! From loosest to tightest: `||`, `&&`, comparisons (not chainable),
//! `+ -`, `* / %`, `as`, unary `- !`, then atoms: literals, names, loads
//! `t[i, ...]`, calls `f(a, ...)`, reductions `op(v in lo..hi, ... => e)`,
//! `if c { a } else { b }` and parentheses. `max(a, b)` is a call and
//! `max(c in 0..C => ...)` a reduction: a reduction's parentheses start with
//! `name in`.

use syn::parse::ParseStream;
use syn::{Ident, Token, braced, bracketed, parenthesized, token};
use texpr_dsl::value::int_range;
use texpr_dsl::{BinOp, CmpOp, DType, ReduceOp, Scalar, UnOp};

use super::ast::{ElemType, Expr, ExprKind, LitValue, RVar, TensorType};
use crate::error::{Sp, sp};

/// The element types, for messages.
pub const DTYPES: &str = "f32, f64, f16, bf16, i8, i16, i32, i64, u8, u16, u32, u64, bool";

/// How deep an expression may nest. The macro's walks over an expression
/// (type checking's input, code generation) run on rustc's own thread,
/// whose stack a proc macro cannot grow; past this depth a definition is a
/// compile error on its tokens instead of a crashed rustc. (Type checking
/// and lowering run on a thread of their own with a large stack.)
pub const MAX_DEPTH: usize = 1000;

std::thread_local! {
    /// Parentheses, calls and unary operators being parsed, innermost last.
    static NESTING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts one more level of nesting while `f` parses it.
fn nested<T>(input: ParseStream, f: impl FnOnce(ParseStream) -> syn::Result<T>) -> syn::Result<T> {
    let n = NESTING.get() + 1;
    if n > MAX_DEPTH {
        return Err(Sp::new(input.span()).error(too_deep()));
    }
    NESTING.set(n);
    let r = f(input);
    NESTING.set(n - 1);
    r
}

fn too_deep() -> String {
    format!(
        "this expression nests more than {MAX_DEPTH} operations deep; split it into stages (`let part: f32[N] = |i| ...;`)"
    )
}

/// Parses an expression.
pub fn expr(input: ParseStream) -> syn::Result<Expr> {
    let e = nested(input, |input| binary(input, 0))?;
    if depth(&e) > MAX_DEPTH {
        return Err(e.sp.error(too_deep()));
    }
    Ok(e)
}

/// The nesting depth of an expression, without recursion.
fn depth(e: &Expr) -> usize {
    let mut deepest = 0;
    let mut todo = vec![(e, 1usize)];
    while let Some((e, d)) = todo.pop() {
        deepest = deepest.max(d);
        match &e.kind {
            ExprKind::Name(_) | ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) | ExprKind::Typed(..) => {}
            ExprKind::Index(_, v) | ExprKind::Call(_, v) => todo.extend(v.iter().map(|x| (x, d + 1))),
            ExprKind::Unary(_, a) | ExprKind::Cast(a, _) => todo.push((a, d + 1)),
            ExprKind::Binary(_, a, b) | ExprKind::Cmp(_, a, b) | ExprKind::And(a, b) | ExprKind::Or(a, b) => {
                todo.extend([(&**a, d + 1), (&**b, d + 1)])
            }
            ExprKind::If(c, a, b) => todo.extend([(&**c, d + 1), (&**a, d + 1), (&**b, d + 1)]),
            ExprKind::Reduce(_, vars, body) => {
                todo.extend(vars.iter().flat_map(|v| [(&v.lo, d + 1), (&v.hi, d + 1)]));
                todo.push((body, d + 1));
            }
        }
    }
    deepest
}

/// A comma-separated list of expressions (trailing comma allowed) that
/// fills `input`.
pub fn list(input: ParseStream) -> syn::Result<Vec<Expr>> {
    let mut out = vec![];
    while !input.is_empty() {
        out.push(expr(input)?);
        if input.is_empty() {
            break;
        }
        if !input.peek(Token![,]) {
            return Err(Sp::new(input.span()).error("expected `,` or the end of the list"));
        }
        input.parse::<Token![,]>()?;
    }
    Ok(out)
}

/// An element type: `f32`, `u8`, ...
pub fn elem_type(input: ParseStream) -> syn::Result<ElemType> {
    if input.peek(Token![&]) {
        return Err(Sp::new(input.span())
            .error("write the element type and dims, like `f32[N]`: the generated function takes `&Tensor<f32>`"));
    }
    if !input.peek(Ident) {
        return Err(Sp::new(input.span()).error(format!("expected an element type ({DTYPES})")));
    }
    let id: Ident = input.parse()?;
    let name = id.to_string();
    match DType::from_name(&name) {
        Some(dtype) => Ok(ElemType { dtype, sp: sp(&id) }),
        None => {
            let hint = match name.as_str() {
                "usize" | "isize" => "; sizes and indices are `i64`",
                "char" | "str" | "String" => "; tensors hold numbers and booleans",
                "Tensor" => "; write a tensor input as `f32[dims]`",
                _ => "",
            };
            Err(sp(&id).error(format!("unknown element type `{name}`; the element types are {DTYPES}{hint}")))
        }
    }
}

/// `dtype[dims]`; `what` names the thing typed, for the message when the
/// dims are missing.
pub fn tensor_type(input: ParseStream, what: &str) -> syn::Result<TensorType> {
    let elem = elem_type(input)?;
    if !input.peek(token::Bracket) {
        let d = elem.dtype;
        return Err(elem
            .sp
            .error(format!("{what} is a tensor: write its dims, like `{d}[N]` (`{d}[]` for a single value)")));
    }
    let content;
    let b = bracketed!(content in input);
    let dims = list(&content)?;
    Ok(TensorType { elem, dims, sp: elem.sp.to(Sp::new(b.span.close())) })
}

#[derive(Clone, Copy)]
enum Op {
    Or,
    And,
    Cmp(CmpOp),
    Bin(BinOp),
}

fn prec(op: Op) -> u8 {
    match op {
        Op::Or => 1,
        Op::And => 2,
        Op::Cmp(_) => 3,
        Op::Bin(BinOp::Add | BinOp::Sub) => 4,
        Op::Bin(_) => 5,
    }
}

/// The binary operator at the cursor, if any (longest match first).
fn peek_op(input: ParseStream) -> syn::Result<Option<Op>> {
    let s = Sp::new(input.span());
    Ok(Some(if input.peek(Token![||]) {
        Op::Or
    } else if input.peek(Token![&&]) {
        Op::And
    } else if input.peek(Token![<<]) || input.peek(Token![>>]) {
        return Err(s.error("shift operators are not part of the language"));
    } else if input.peek(Token![==]) {
        Op::Cmp(CmpOp::Eq)
    } else if input.peek(Token![!=]) {
        Op::Cmp(CmpOp::Ne)
    } else if input.peek(Token![<=]) {
        Op::Cmp(CmpOp::Le)
    } else if input.peek(Token![>=]) {
        Op::Cmp(CmpOp::Ge)
    } else if input.peek(Token![<]) {
        Op::Cmp(CmpOp::Lt)
    } else if input.peek(Token![>]) {
        Op::Cmp(CmpOp::Gt)
    } else if input.peek(Token![+=])
        || input.peek(Token![-=])
        || input.peek(Token![*=])
        || input.peek(Token![/=])
        || input.peek(Token![%=])
    {
        return Err(s.error("assignment is not part of the language: a stage's value is one expression"));
    } else if input.peek(Token![+]) {
        Op::Bin(BinOp::Add)
    } else if input.peek(Token![-]) {
        Op::Bin(BinOp::Sub)
    } else if input.peek(Token![*]) {
        Op::Bin(BinOp::Mul)
    } else if input.peek(Token![/]) {
        Op::Bin(BinOp::Div)
    } else if input.peek(Token![%]) {
        Op::Bin(BinOp::Rem)
    } else if input.peek(Token![&]) || input.peek(Token![|]) || input.peek(Token![^]) {
        return Err(s.error("bitwise operators are not part of the language; use `&&` and `||` on `bool`"));
    } else {
        return Ok(None);
    }))
}

fn eat(input: ParseStream, op: Op) -> syn::Result<()> {
    match op {
        Op::Or => drop(input.parse::<Token![||]>()?),
        Op::And => drop(input.parse::<Token![&&]>()?),
        Op::Cmp(CmpOp::Eq) => drop(input.parse::<Token![==]>()?),
        Op::Cmp(CmpOp::Ne) => drop(input.parse::<Token![!=]>()?),
        Op::Cmp(CmpOp::Le) => drop(input.parse::<Token![<=]>()?),
        Op::Cmp(CmpOp::Ge) => drop(input.parse::<Token![>=]>()?),
        Op::Cmp(CmpOp::Lt) => drop(input.parse::<Token![<]>()?),
        Op::Cmp(CmpOp::Gt) => drop(input.parse::<Token![>]>()?),
        Op::Bin(BinOp::Add) => drop(input.parse::<Token![+]>()?),
        Op::Bin(BinOp::Sub) => drop(input.parse::<Token![-]>()?),
        Op::Bin(BinOp::Mul) => drop(input.parse::<Token![*]>()?),
        Op::Bin(BinOp::Div) => drop(input.parse::<Token![/]>()?),
        Op::Bin(BinOp::Rem) | Op::Bin(BinOp::Min) | Op::Bin(BinOp::Max) => drop(input.parse::<Token![%]>()?),
    }
    Ok(())
}

/// Precedence climbing over operators of precedence `min` and up.
fn binary(input: ParseStream, min: u8) -> syn::Result<Expr> {
    let mut lhs = cast(input)?;
    let mut last_cmp = false;
    while let Some(op) = peek_op(input)? {
        let p = prec(op);
        if p < min {
            break;
        }
        let op_sp = Sp::new(input.span());
        eat(input, op)?;
        let is_cmp = matches!(op, Op::Cmp(_));
        if is_cmp && last_cmp {
            return Err(op_sp.error("comparison operators cannot be chained; use `&&` or parentheses"));
        }
        let rhs = binary(input, p + 1)?;
        let sp = lhs.sp.to(rhs.sp);
        let (a, b) = (Box::new(lhs), Box::new(rhs));
        let kind = match op {
            Op::Or => ExprKind::Or(a, b),
            Op::And => ExprKind::And(a, b),
            Op::Cmp(c) => ExprKind::Cmp(c, a, b),
            Op::Bin(o) => ExprKind::Binary(o, a, b),
        };
        lhs = Expr { kind, sp };
        last_cmp = is_cmp;
    }
    Ok(lhs)
}

/// `unary (as dtype)*`.
fn cast(input: ParseStream) -> syn::Result<Expr> {
    let mut e = unary(input)?;
    while input.peek(Token![as]) {
        input.parse::<Token![as]>()?;
        let t = elem_type(input)?;
        let sp = e.sp.to(t.sp);
        e = Expr { kind: ExprKind::Cast(Box::new(e), t), sp };
    }
    Ok(e)
}

fn unary(input: ParseStream) -> syn::Result<Expr> {
    let s = Sp::new(input.span());
    let op = if input.peek(Token![-]) {
        input.parse::<Token![-]>()?;
        if let Some(lit) = negative_typed_int(input)? {
            return Ok(lit.with_start(s));
        }
        UnOp::Neg
    } else if input.peek(Token![!]) {
        input.parse::<Token![!]>()?;
        UnOp::Not
    } else if input.peek(Token![*]) || input.peek(Token![&]) {
        return Err(s.error("references are not part of the language: read a tensor by indexing it, `t[i]`"));
    } else {
        return postfix(input);
    };
    let a = nested(input, unary)?;
    let sp = s.to(a.sp);
    Ok(Expr { kind: ExprKind::Unary(op, Box::new(a)), sp })
}

/// `-128i8`: a negative literal with a signed suffix, whose magnitude may be
/// one more than the type's maximum (as in Rust).
fn negative_typed_int(input: ParseStream) -> syn::Result<Option<Expr>> {
    let Ok(lit) = input.fork().parse::<syn::LitInt>() else { return Ok(None) };
    let Some(d) = DType::from_name(lit.suffix()).filter(|d| d.is_signed_int()) else { return Ok(None) };
    input.parse::<syn::LitInt>()?;
    let s = Sp::new(lit.span());
    let (lo, _) = int_range(d);
    match lit.base10_parse::<i128>() {
        Ok(v) if -v >= lo => Ok(Some(Expr { kind: ExprKind::Typed(d, LitValue::Int(-v)), sp: s })),
        _ => Err(s.error(format!("literal out of range for `{d}`"))),
    }
}

impl Expr {
    fn with_start(mut self, s: Sp) -> Expr {
        self.sp.start = s.start;
        self
    }
}

fn postfix(input: ParseStream) -> syn::Result<Expr> {
    let e = primary(input)?;
    let s = Sp::new(input.span());
    if input.peek(token::Bracket) {
        return Err(match e.kind {
            ExprKind::Index(..) => s.error("index a tensor with one pair of brackets: `t[i, j]`"),
            _ => s.error("only tensors (inputs and stages) can be indexed"),
        });
    }
    if input.peek(Token![.]) && !input.peek(Token![..]) {
        return Err(
            s.error("method calls are not part of the language; call the built-in function instead, like `exp(x)`")
        );
    }
    if input.peek(token::Paren) {
        return Err(s.error("only built-in functions can be called, by name: `exp(x)`"));
    }
    if input.peek(Token![?]) {
        return Err(s.error("`?` is not part of the language"));
    }
    Ok(e)
}

fn primary(input: ParseStream) -> syn::Result<Expr> {
    let s = Sp::new(input.span());
    if input.peek(token::Paren) {
        let content;
        let p = parenthesized!(content in input);
        let psp = Sp { start: p.span.open(), end: p.span.close() };
        if content.is_empty() {
            return Err(psp.error("`()` is not a value of the language"));
        }
        let e = expr(&content)?;
        if content.peek(Token![,]) {
            return Err(psp.error("tuples are not values of the language"));
        }
        if !content.is_empty() {
            return Err(Sp::new(content.span()).error("expected `)`"));
        }
        return Ok(Expr { kind: e.kind, sp: psp });
    }
    if input.peek(syn::Lit) {
        return literal(input);
    }
    if input.peek(Token![if]) {
        return if_expr(input);
    }
    if input.peek(Token![|]) || input.peek(Token![||]) {
        return Err(s.error("a closure is only the value of a `let` stage"));
    }
    if input.peek(token::Brace) {
        return Err(s.error("a block is not an expression of the language; write the value itself"));
    }
    if input.peek(Ident) {
        let name: Ident = input.parse()?;
        if input.peek(token::Bracket) {
            let content;
            let b = bracketed!(content in input);
            let idx = list(&content)?;
            let sp = sp(&name).to(Sp::new(b.span.close()));
            return Ok(Expr { kind: ExprKind::Index(name, idx), sp });
        }
        if input.peek(token::Paren) {
            return call(input, name);
        }
        if input.peek(Token![!]) && !input.peek(Token![!=]) {
            return Err(sp(&name).error("macros are not part of the language"));
        }
        if input.peek(Token![::]) {
            return Err(sp(&name).error("paths are not part of the language; use a name of the function"));
        }
        let s = sp(&name);
        return Ok(Expr { kind: ExprKind::Name(name), sp: s });
    }
    if input.peek(Token![let]) {
        return Err(s.error("a stage's value is one expression; write every `let` stage before it"));
    }
    if input.is_empty() {
        return Err(s.error("expected an expression"));
    }
    Err(s.error("expected an expression"))
}

fn literal(input: ParseStream) -> syn::Result<Expr> {
    let lit: syn::Lit = input.parse()?;
    let s = Sp::new(lit.span());
    let kind = match &lit {
        syn::Lit::Bool(b) => ExprKind::Bool(b.value),
        syn::Lit::Int(i) => int_lit(i, s)?,
        syn::Lit::Float(f) => float_lit(f.base10_digits(), f.suffix(), s)?,
        _ => return Err(s.error("only number and `bool` literals are values of the language")),
    };
    Ok(Expr { kind, sp: s })
}

fn int_lit(lit: &syn::LitInt, s: Sp) -> syn::Result<ExprKind> {
    let sfx = lit.suffix();
    if sfx.is_empty() {
        let v: i128 = lit.base10_parse().map_err(|_| s.error("integer literal is too large"))?;
        return Ok(ExprKind::Int(v));
    }
    match DType::from_name(sfx) {
        Some(d) if d.is_int() => {
            let (lo, hi) = int_range(d);
            match lit.base10_parse::<i128>() {
                Ok(v) if v >= lo && v <= hi => Ok(ExprKind::Typed(d, LitValue::Int(v))),
                _ => Err(s.error(format!("literal out of range for `{d}`"))),
            }
        }
        Some(d) if d.is_float() => float_lit(lit.base10_digits(), sfx, s),
        _ => Err(s.error(format!("unknown literal suffix `{sfx}`; a suffix is an element type ({DTYPES})"))),
    }
}

fn float_lit(digits: &str, sfx: &str, s: Sp) -> syn::Result<ExprKind> {
    let v: f64 = digits.parse().map_err(|_| s.error("invalid float literal"))?;
    if !v.is_finite() {
        return Err(s.error("float literal out of range"));
    }
    if sfx.is_empty() {
        return Ok(ExprKind::Float(v));
    }
    match DType::from_name(sfx) {
        Some(d) if d.is_float() => {
            if !Scalar::from_f64(d, v).as_f64().is_finite() {
                return Err(s.error(format!("literal out of range for `{d}`")));
            }
            Ok(ExprKind::Typed(d, LitValue::Float(v)))
        }
        Some(d) => Err(s.error(format!("a float literal cannot have type `{d}`"))),
        None => Err(s.error(format!("unknown literal suffix `{sfx}`; a suffix is an element type ({DTYPES})"))),
    }
}

fn if_expr(input: ParseStream) -> syn::Result<Expr> {
    let if_tok: Token![if] = input.parse()?;
    let cond = expr(input)?;
    if !input.peek(token::Brace) {
        return Err(Sp::new(input.span()).error("expected `{` after the condition of `if`"));
    }
    let content;
    let b1 = braced!(content in input);
    let then = branch(&content)?;
    if !input.peek(Token![else]) {
        return Err(Sp::new(if_tok.span)
            .to(Sp::new(b1.span.close()))
            .error("`if` without `else`: every element needs a value, so write both branches"));
    }
    input.parse::<Token![else]>()?;
    let (els, end) = if input.peek(Token![if]) {
        let e = if_expr(input)?;
        let end = e.sp;
        (e, end)
    } else {
        if !input.peek(token::Brace) {
            return Err(Sp::new(input.span()).error("expected `{` or `if` after `else`"));
        }
        let content;
        let b2 = braced!(content in input);
        (branch(&content)?, Sp::new(b2.span.close()))
    };
    let sp = Sp::new(if_tok.span).to(end);
    Ok(Expr { kind: ExprKind::If(Box::new(cond), Box::new(then), Box::new(els)), sp })
}

/// The content of a `{ ... }` branch: one expression.
fn branch(input: ParseStream) -> syn::Result<Expr> {
    if input.is_empty() {
        return Err(Sp::new(input.span()).error("an empty branch has no value"));
    }
    let e = expr(input)?;
    if !input.is_empty() {
        return Err(Sp::new(input.span()).error("a branch is one expression (no `;`, no `let`)"));
    }
    Ok(e)
}

fn reduce_op(name: &str) -> Option<ReduceOp> {
    Some(match name {
        "sum" => ReduceOp::Sum,
        "prod" => ReduceOp::Prod,
        "max" => ReduceOp::Max,
        "min" => ReduceOp::Min,
        _ => return None,
    })
}

/// `name(...)`: a call, or a reduction when the parentheses start with
/// `v in`.
fn call(input: ParseStream, name: Ident) -> syn::Result<Expr> {
    let content;
    let p = parenthesized!(content in input);
    let s = sp(&name).to(Sp::new(p.span.close()));
    let op = reduce_op(&name.to_string());
    let reduction_syntax = content.peek(Ident) && content.peek2(Token![in]);
    if reduction_syntax {
        let Some(op) = op else {
            return Err(sp(&name)
                .error(format!("`{name}` is not a reduction; the reductions are `sum`, `prod`, `max` and `min`")));
        };
        let mut vars = vec![];
        loop {
            let v: Ident = content.parse()?;
            content.parse::<Token![in]>()?;
            let lo = expr(&content)?;
            if content.peek(Token![..=]) {
                return Err(Sp::new(content.span())
                    .error("write the range as `lo..hi` (the upper bound is excluded); `..=` is not supported"));
            }
            if !content.peek(Token![..]) {
                return Err(Sp::new(content.span()).error("expected `..`: a reduction variable ranges over `lo..hi`"));
            }
            content.parse::<Token![..]>()?;
            let hi = expr(&content)?;
            vars.push(RVar { name: v, lo, hi });
            if content.peek(Token![=>]) {
                break;
            }
            if !content.peek(Token![,]) {
                return Err(Sp::new(content.span()).error("expected `,` or `=>` after a reduction variable"));
            }
            content.parse::<Token![,]>()?;
        }
        content.parse::<Token![=>]>()?;
        let body = expr(&content)?;
        if content.peek(Token![,]) {
            content.parse::<Token![,]>()?;
        }
        if !content.is_empty() {
            return Err(Sp::new(content.span()).error("expected `)` after the reduction's value"));
        }
        return Ok(Expr { kind: ExprKind::Reduce(op, vars, Box::new(body)), sp: s });
    }
    if matches!(op, Some(ReduceOp::Sum | ReduceOp::Prod)) {
        return Err(s.error(format!("`{name}` is a reduction: write `{name}(v in lo..hi => value)`")));
    }
    let args = list(&content)?;
    Ok(Expr { kind: ExprKind::Call(name, args), sp: s })
}

#[cfg(test)]
mod tests {
    use syn::parse::Parser;

    fn parse(src: &str) -> String {
        let ts: proc_macro2::TokenStream = src.parse().expect("tokens");
        match super::expr.parse2(ts) {
            Ok(e) => e.to_string(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn rust_precedence() {
        assert_eq!(parse("a + b * c - d / e % f"), "((a + (b * c)) - ((d / e) % f))");
        assert_eq!(parse("a < b + 1 && c || !d"), "(((a < (b + 1)) && c) || (!d))");
        assert_eq!(parse("a || b && c"), "(a || (b && c))");
        assert_eq!(parse("-x as f32 * 2.0"), "(((-x) as f32) * 2.0)");
        assert_eq!(parse("-x[i] as i64 as f64"), "(((-x[i]) as i64) as f64)");
        assert_eq!(parse("a - b - c"), "((a - b) - c)");
        assert_eq!(parse("(a - (b - c))"), "(a - (b - c))");
        assert_eq!(parse("!a == b"), "((!a) == b)");
    }

    #[test]
    fn calls_reductions_and_branches() {
        assert_eq!(parse("max(a, b)"), "max(a, b)");
        assert_eq!(parse("max(c in 0..C => x[n, c])"), "max(c in 0..C => x[n, c])");
        assert_eq!(parse("sum(c in 0..C, r in 1..R - 1 => w[c, r],)"), "sum(c in 0..C, r in 1..(R - 1) => w[c, r])");
        assert_eq!(
            parse("if a < 0.0 { -a } else if a > 1.0 { 1.0 } else { a }"),
            "if (a < 0.0) { (-a) } else { if (a > 1.0) { 1.0 } else { a } }"
        );
        assert_eq!(parse("t[]"), "t[]");
        assert_eq!(parse("select(x > 0, 1u8, 2u8)"), "select((x > 0), 1u8, 2u8)");
    }

    #[test]
    fn literals() {
        assert_eq!(
            parse("0x10 + 1_000 + 2f64 + 1.5f32 + 3e2 + 7i64 + true"),
            "((((((16 + 1000) + 2.0f64) + 1.5f32) + 300.0) + 7i64) + true)"
        );
        assert_eq!(parse("1.0f16 + 1bf16"), "(1.0f16 + 1.0bf16)");
        assert_eq!(parse("256u8"), "error: literal out of range for `u8`");
        assert_eq!(parse("-128i8"), "-128i8");
        assert_eq!(parse("-129i8"), "error: literal out of range for `i8`");
        assert_eq!(parse("-1"), "(-1)");
        assert_eq!(parse("-x[i]"), "(-x[i])");
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(parse("a < b < c"), "error: comparison operators cannot be chained; use `&&` or parentheses");
        assert_eq!(
            parse("a & b"),
            "error: bitwise operators are not part of the language; use `&&` and `||` on `bool`"
        );
        assert_eq!(parse("a << 1"), "error: shift operators are not part of the language");
        assert_eq!(
            parse("x.exp()"),
            "error: method calls are not part of the language; call the built-in function instead, like `exp(x)`"
        );
        assert_eq!(parse("sum(a, b)"), "error: `sum` is a reduction: write `sum(v in lo..hi => value)`");
        assert_eq!(
            parse("if a { b }"),
            "error: `if` without `else`: every element needs a value, so write both branches"
        );
        assert_eq!(parse("(a, b)"), "error: tuples are not values of the language");
        assert_eq!(parse("a += 1"), "error: assignment is not part of the language: a stage's value is one expression");
        assert_eq!(parse("\"a\""), "error: only number and `bool` literals are values of the language");
    }
}
