//! The typed expression IR shared by definitions and lowered loop nests.
//!
//! Expressions are immutable trees with shared (`Arc`) children, so that
//! substitution and simplification can rebuild them cheaply. Every node knows
//! its element type ([`Expr::dtype`]). Entities that expressions refer to —
//! variables, buffers, dims, scalar parameters — are small `Copy` handles into
//! tables owned by the enclosing [`Func`](crate::Func) or
//! [`LoweredFunc`](crate::LoweredFunc).

use std::fmt;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::dtype::DType;
pub use crate::ops::{BinOp, Builtin, CmpOp, ReduceOp, UnOp};
use crate::value::Scalar;

/// A handle to a variable (index, reduction, loop or let variable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarId(pub u32);

/// A handle to a tensor: an input, a stage or a lowered buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufId(pub u32);

/// A variable with its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Var {
    /// Its handle.
    pub id: VarId,
    /// Its type; index and loop variables are `i64`.
    pub dtype: DType,
}

impl Var {
    /// An index (`i64`) variable.
    pub fn index(id: VarId) -> Var {
        Var { id, dtype: DType::INDEX }
    }
}

/// What a variable is, for display and for schedules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarInfo {
    /// The user's name, or a generated one.
    pub name: String,
    /// The type.
    pub dtype: DType,
}

/// The table of variables of a function.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VarTable {
    vars: Vec<VarInfo>,
}

impl VarTable {
    /// Adds a variable.
    pub fn add(&mut self, name: impl Into<String>, dtype: DType) -> Var {
        let id = VarId(self.vars.len() as u32);
        self.vars.push(VarInfo { name: name.into(), dtype });
        Var { id, dtype }
    }
    /// Adds an index variable.
    pub fn add_index(&mut self, name: impl Into<String>) -> Var {
        self.add(name, DType::INDEX)
    }
    /// The name of a variable.
    pub fn name(&self, v: VarId) -> &str {
        self.vars.get(v.0 as usize).map(|i| i.name.as_str()).unwrap_or("?")
    }
    /// The variable's entry.
    pub fn get(&self, v: VarId) -> Option<&VarInfo> {
        self.vars.get(v.0 as usize)
    }
    /// Number of variables.
    pub fn len(&self) -> usize {
        self.vars.len()
    }
    /// `true` when empty.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }
    /// All variables with their handles.
    pub fn iter(&self) -> impl Iterator<Item = (VarId, &VarInfo)> {
        self.vars.iter().enumerate().map(|(i, v)| (VarId(i as u32), v))
    }
}

/// A tensor load `buf[idx, ...]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Load {
    /// The tensor or buffer read.
    pub buf: BufId,
    /// One index per dimension (one flat index after flattening).
    pub idx: SmallVec<[Expr; 4]>,
    /// The element type read.
    pub dtype: DType,
}

/// A typed expression.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Expr {
    /// A literal.
    Const(Scalar),
    /// A variable.
    Var(Var),
    /// The value of a symbolic dim (an `i64`).
    Dim(u32),
    /// A scalar input of the function.
    Param(u32, DType),
    /// A tensor load.
    Load(Arc<Load>),
    /// `-a`, `!a`.
    Unary(UnOp, Arc<Expr>),
    /// `a + b` etc.; both operands have the same type.
    Binary(BinOp, Arc<Expr>, Arc<Expr>),
    /// `a < b` etc.; `bool`.
    Cmp(CmpOp, Arc<Expr>, Arc<Expr>),
    /// `a && b`: `b` is evaluated only if `a` is true.
    And(Arc<Expr>, Arc<Expr>),
    /// `a || b`: `b` is evaluated only if `a` is false.
    Or(Arc<Expr>, Arc<Expr>),
    /// `a as T`.
    Cast(DType, Arc<Expr>),
    /// `select(c, a, b)`: both sides may be evaluated.
    Select(Arc<Expr>, Arc<Expr>, Arc<Expr>),
    /// `if c { a } else { b }`: only the taken side is evaluated.
    If(Arc<Expr>, Arc<Expr>, Arc<Expr>),
    /// A built-in function call.
    Call(Builtin, Arc<[Expr]>),
}

impl Expr {
    /// The element type of the value.
    pub fn dtype(&self) -> DType {
        // An operation has its operands' type, and type checking made every
        // operand of one operation the same type: follow the first and the
        // last operand together and stop at whichever reaches a node that
        // knows its type first. A sum of thousands of terms (`acc + x * k`)
        // is typed in a few steps, not by walking its whole left spine.
        let (mut first, mut last) = (self, self);
        loop {
            for e in [first, last] {
                if let Some(t) = e.own_dtype() {
                    return t;
                }
            }
            first = first.same_typed_operands().0;
            last = last.same_typed_operands().1;
        }
    }

    /// The type of a node that does not take it from its operands.
    fn own_dtype(&self) -> Option<DType> {
        Some(match self {
            Expr::Const(s) => s.dtype(),
            Expr::Var(v) => v.dtype,
            Expr::Dim(_) => DType::INDEX,
            Expr::Param(_, t) => *t,
            Expr::Load(l) => l.dtype,
            Expr::Cmp(..) | Expr::And(..) | Expr::Or(..) => DType::Bool,
            Expr::Cast(t, _) => *t,
            // Never built (a built-in takes one to three operands); typed so
            // that `dtype` always ends.
            Expr::Call(_, args) if args.is_empty() => DType::F32,
            Expr::Unary(..) | Expr::Binary(..) | Expr::Select(..) | Expr::If(..) | Expr::Call(..) => return None,
        })
    }

    /// The first and the last operand of the node's own type (itself for a
    /// node that has none).
    fn same_typed_operands(&self) -> (&Expr, &Expr) {
        match self {
            Expr::Unary(_, a) => (a, a),
            Expr::Binary(_, a, b) | Expr::Select(_, a, b) | Expr::If(_, a, b) => (a, b),
            Expr::Call(_, args) => match (args.first(), args.last()) {
                (Some(a), Some(b)) => (a, b),
                _ => (self, self),
            },
            _ => (self, self),
        }
    }

    /// An `i64` literal.
    pub fn int(v: i64) -> Expr {
        Expr::Const(Scalar::I64(v))
    }

    /// A literal of a type, from an integer.
    pub fn lit(dtype: DType, v: i128) -> Expr {
        Expr::Const(Scalar::from_i128(dtype, v))
    }

    /// `true` / `false`.
    pub fn bool(v: bool) -> Expr {
        Expr::Const(Scalar::Bool(v))
    }

    /// A variable reference.
    pub fn var(v: Var) -> Expr {
        Expr::Var(v)
    }

    /// The literal's value as `i64`, if this is an integer literal.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Expr::Const(s) if s.dtype().is_int() => s.as_i64(),
            _ => None,
        }
    }

    /// The literal, if this is one.
    pub fn as_const(&self) -> Option<Scalar> {
        match self {
            Expr::Const(s) => Some(*s),
            _ => None,
        }
    }

    /// Builds a binary operation.
    pub fn binary(op: BinOp, a: Expr, b: Expr) -> Expr {
        Expr::Binary(op, Arc::new(a), Arc::new(b))
    }
    /// Builds a comparison.
    pub fn cmp(op: CmpOp, a: Expr, b: Expr) -> Expr {
        Expr::Cmp(op, Arc::new(a), Arc::new(b))
    }
    /// `a && b`.
    pub fn and(a: Expr, b: Expr) -> Expr {
        Expr::And(Arc::new(a), Arc::new(b))
    }
    /// `a || b`.
    pub fn or(a: Expr, b: Expr) -> Expr {
        Expr::Or(Arc::new(a), Arc::new(b))
    }
    /// `if c { a } else { b }` (lazy).
    pub fn if_(c: Expr, a: Expr, b: Expr) -> Expr {
        Expr::If(Arc::new(c), Arc::new(a), Arc::new(b))
    }
    /// `select(c, a, b)`.
    pub fn select(c: Expr, a: Expr, b: Expr) -> Expr {
        Expr::Select(Arc::new(c), Arc::new(a), Arc::new(b))
    }
    /// `a as t`.
    pub fn cast(t: DType, a: Expr) -> Expr {
        Expr::Cast(t, Arc::new(a))
    }
    /// `min(a, b)`.
    pub fn min(a: Expr, b: Expr) -> Expr {
        Expr::binary(BinOp::Min, a, b)
    }
    /// `max(a, b)`.
    pub fn max(a: Expr, b: Expr) -> Expr {
        Expr::binary(BinOp::Max, a, b)
    }
    /// A load.
    pub fn load(buf: BufId, idx: impl IntoIterator<Item = Expr>, dtype: DType) -> Expr {
        Expr::Load(Arc::new(Load { buf, idx: idx.into_iter().collect(), dtype }))
    }

    /// The direct children, in evaluation order.
    pub fn children(&self) -> SmallVec<[&Expr; 4]> {
        let mut out = SmallVec::new();
        match self {
            Expr::Const(_) | Expr::Var(_) | Expr::Dim(_) | Expr::Param(..) => {}
            Expr::Load(l) => out.extend(l.idx.iter()),
            Expr::Unary(_, a) | Expr::Cast(_, a) => out.push(&**a),
            Expr::Binary(_, a, b) | Expr::Cmp(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) => {
                out.push(&**a);
                out.push(&**b);
            }
            Expr::Select(c, a, b) | Expr::If(c, a, b) => {
                out.push(&**c);
                out.push(&**a);
                out.push(&**b);
            }
            Expr::Call(_, args) => out.extend(args.iter()),
        }
        out
    }

    /// Calls `f` on this node and every descendant, parents first.
    pub fn visit(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        for c in self.children() {
            c.visit(f);
        }
    }

    /// `true` if any node satisfies `pred`.
    pub fn any(&self, pred: &mut impl FnMut(&Expr) -> bool) -> bool {
        if pred(self) {
            return true;
        }
        self.children().into_iter().any(|c| c.any(pred))
    }

    /// `true` if the expression mentions variable `v`.
    pub fn uses_var(&self, v: VarId) -> bool {
        self.any(&mut |e| matches!(e, Expr::Var(x) if x.id == v))
    }

    /// `true` if the expression reads any tensor.
    pub fn has_load(&self) -> bool {
        self.any(&mut |e| matches!(e, Expr::Load(_)))
    }

    /// Rebuilds the node with each child replaced by `f(child)`.
    pub fn map_children(&self, f: &mut impl FnMut(&Expr) -> Expr) -> Expr {
        match self {
            Expr::Const(_) | Expr::Var(_) | Expr::Dim(_) | Expr::Param(..) => self.clone(),
            Expr::Load(l) => {
                Expr::Load(Arc::new(Load { buf: l.buf, idx: l.idx.iter().map(&mut *f).collect(), dtype: l.dtype }))
            }
            Expr::Unary(op, a) => Expr::Unary(*op, Arc::new(f(a))),
            Expr::Cast(t, a) => Expr::Cast(*t, Arc::new(f(a))),
            Expr::Binary(op, a, b) => Expr::Binary(*op, Arc::new(f(a)), Arc::new(f(b))),
            Expr::Cmp(op, a, b) => Expr::Cmp(*op, Arc::new(f(a)), Arc::new(f(b))),
            Expr::And(a, b) => Expr::And(Arc::new(f(a)), Arc::new(f(b))),
            Expr::Or(a, b) => Expr::Or(Arc::new(f(a)), Arc::new(f(b))),
            Expr::Select(c, a, b) => Expr::Select(Arc::new(f(c)), Arc::new(f(a)), Arc::new(f(b))),
            Expr::If(c, a, b) => Expr::If(Arc::new(f(c)), Arc::new(f(a)), Arc::new(f(b))),
            Expr::Call(b, args) => Expr::Call(*b, args.iter().map(&mut *f).collect()),
        }
    }

    /// Rewrites bottom-up: children first, then `f` on the rebuilt node;
    /// `f` returns `None` to keep the node.
    pub fn rewrite(&self, f: &mut impl FnMut(&Expr) -> Option<Expr>) -> Expr {
        let e = self.map_children(&mut |c| c.rewrite(f));
        f(&e).unwrap_or(e)
    }

    /// Replaces variables by expressions.
    pub fn subst(&self, map: &impl Fn(VarId) -> Option<Expr>) -> Expr {
        match self {
            Expr::Var(v) => map(v.id).unwrap_or_else(|| self.clone()),
            _ => self.map_children(&mut |c| c.subst(map)),
        }
    }

    /// Replaces one variable.
    pub fn subst1(&self, v: VarId, by: &Expr) -> Expr {
        self.subst(&|x| (x == v).then(|| by.clone()))
    }
}

macro_rules! arith_ops {
    ($($tr:ident $m:ident $op:ident),*) => {$(
        impl std::ops::$tr for Expr {
            type Output = Expr;
            fn $m(self, rhs: Expr) -> Expr { Expr::binary(BinOp::$op, self, rhs) }
        }
        impl std::ops::$tr<i64> for Expr {
            type Output = Expr;
            fn $m(self, rhs: i64) -> Expr { Expr::binary(BinOp::$op, self, Expr::int(rhs)) }
        }
    )*};
}
arith_ops!(Add add Add, Sub sub Sub, Mul mul Mul, Div div Div, Rem rem Rem);

impl From<Var> for Expr {
    fn from(v: Var) -> Expr {
        Expr::Var(v)
    }
}

impl From<i64> for Expr {
    fn from(v: i64) -> Expr {
        Expr::int(v)
    }
}

/// How [`Display`](fmt::Display) names things that expressions refer to.
pub trait Names {
    /// A variable's name.
    fn var(&self, v: VarId) -> String;
    /// A tensor's name.
    fn buf(&self, b: BufId) -> String;
    /// A dim's name.
    fn dim(&self, d: u32) -> String;
    /// A scalar parameter's name.
    fn param(&self, p: u32) -> String;
}

/// Names everything by its handle: `v3`, `t1`, `D0`, `p0`.
pub struct RawNames;

impl Names for RawNames {
    fn var(&self, v: VarId) -> String {
        format!("v{}", v.0)
    }
    fn buf(&self, b: BufId) -> String {
        format!("t{}", b.0)
    }
    fn dim(&self, d: u32) -> String {
        format!("D{d}")
    }
    fn param(&self, p: u32) -> String {
        format!("p{p}")
    }
}

/// An expression paired with the names to print it with.
pub struct Show<'a, N: Names + ?Sized>(pub &'a Expr, pub &'a N);

impl<N: Names + ?Sized> fmt::Display for Show<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_expr(f, self.0, self.1, 0)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_expr(f, self, &RawNames, 0)
    }
}

/// Rust-like precedence of an expression node for parenthesization.
fn precedence(e: &Expr) -> u8 {
    match e {
        Expr::Binary(op, ..) => op.precedence(),
        Expr::Cmp(..) => 4,
        Expr::And(..) => 3,
        Expr::Or(..) => 2,
        Expr::Cast(..) => 8,
        Expr::Unary(..) => 9,
        Expr::Const(s) if s.as_f64() < 0.0 || s.as_i64().is_some_and(|v| v < 0) => 9,
        _ => 10,
    }
}

/// Writes `e` with parentheses where the context's precedence needs them.
pub fn write_expr<N: Names + ?Sized>(f: &mut fmt::Formatter<'_>, e: &Expr, n: &N, ctx: u8) -> fmt::Result {
    let p = precedence(e);
    let paren = p < ctx;
    if paren {
        f.write_str("(")?;
    }
    match e {
        Expr::Const(s) => write!(f, "{s}")?,
        Expr::Var(v) => f.write_str(&n.var(v.id))?,
        Expr::Dim(d) => f.write_str(&n.dim(*d))?,
        Expr::Param(i, _) => f.write_str(&n.param(*i))?,
        Expr::Load(l) => {
            write!(f, "{}[", n.buf(l.buf))?;
            for (i, x) in l.idx.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_expr(f, x, n, 0)?;
            }
            f.write_str("]")?;
        }
        Expr::Unary(op, a) => {
            f.write_str(match op {
                UnOp::Neg => "-",
                UnOp::Not => "!",
            })?;
            write_expr(f, a, n, 9)?;
        }
        Expr::Binary(op @ (BinOp::Min | BinOp::Max), a, b) => {
            write!(f, "{}(", op.symbol())?;
            write_expr(f, a, n, 0)?;
            f.write_str(", ")?;
            write_expr(f, b, n, 0)?;
            f.write_str(")")?;
        }
        Expr::Binary(op, a, b) => {
            write_expr(f, a, n, p)?;
            write!(f, " {} ", op.symbol())?;
            write_expr(f, b, n, p + 1)?;
        }
        Expr::Cmp(op, a, b) => {
            write_expr(f, a, n, p + 1)?;
            write!(f, " {} ", op.symbol())?;
            write_expr(f, b, n, p + 1)?;
        }
        Expr::And(a, b) | Expr::Or(a, b) => {
            write_expr(f, a, n, p)?;
            f.write_str(if matches!(e, Expr::And(..)) { " && " } else { " || " })?;
            write_expr(f, b, n, p + 1)?;
        }
        Expr::Cast(t, a) => {
            write_expr(f, a, n, 8)?;
            write!(f, " as {t}")?;
        }
        Expr::Select(c, a, b) => {
            f.write_str("select(")?;
            write_expr(f, c, n, 0)?;
            f.write_str(", ")?;
            write_expr(f, a, n, 0)?;
            f.write_str(", ")?;
            write_expr(f, b, n, 0)?;
            f.write_str(")")?;
        }
        Expr::If(c, a, b) => {
            f.write_str("if ")?;
            write_expr(f, c, n, 0)?;
            f.write_str(" { ")?;
            write_expr(f, a, n, 0)?;
            f.write_str(" } else { ")?;
            write_expr(f, b, n, 0)?;
            f.write_str(" }")?;
        }
        Expr::Call(b, args) => {
            write!(f, "{}(", b.name())?;
            for (i, x) in args.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_expr(f, x, n, 0)?;
            }
            f.write_str(")")?;
        }
    }
    if paren {
        f.write_str(")")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parenthesizes_by_precedence() {
        let mut vars = VarTable::default();
        let i = vars.add_index("i");
        let e = (Expr::var(i) + 1) * 2 - Expr::var(i) / (Expr::var(i) - 3);
        assert_eq!(e.to_string(), "(v0 + 1) * 2 - v0 / (v0 - 3)");
        let e = Expr::var(i) - (Expr::var(i) - 1);
        assert_eq!(e.to_string(), "v0 - (v0 - 1)");
    }

    #[test]
    fn substitution() {
        let mut vars = VarTable::default();
        let i = vars.add_index("i");
        let j = vars.add_index("j");
        let e = Expr::var(i) * 4 + Expr::var(j);
        let s = e.subst1(i.id, &(Expr::var(j) + 1));
        assert_eq!(s.to_string(), "(v1 + 1) * 4 + v1");
        assert!(!s.uses_var(i.id));
    }
}
