//! The builder API: definitions built from Rust code.
//!
//! This is what `tensor_expr!` expands to, and what a program uses when the
//! structure of a kernel is only known at run time. Expressions here are
//! *untyped* and refer to everything by name; [`FuncBuilder::build`] resolves
//! names, infers literal types and checks the whole definition, producing a
//! typed [`Func`](crate::Func).
//!
//! ```
//! use texpr_dsl::te::{self, FuncBuilder};
//! use texpr_dsl::DType;
//!
//! let mut f = FuncBuilder::new("matmul");
//! let a = f.input("a", DType::F32, ["M", "K"]);
//! let b = f.input("b", DType::F32, ["K", "N"]);
//! f.output(DType::F32, ["M", "N"]);
//! let c = f.compute("c", ["i", "j"], |[i, j]| {
//!     te::sum([("k", 0, "K")], |[k]| a.at([&i, &k]) * b.at([&k, &j]))
//! });
//! f.ret([c]);
//! let func = f.build().unwrap();
//! assert_eq!(func.stages.len(), 1);
//! ```

use std::sync::Arc;

use crate::dtype::DType;
use crate::error::{Origin, Result};
use crate::expr::{BinOp, CmpOp, ReduceOp, UnOp};
use crate::value::Scalar;

/// An untyped expression of the builder API.
#[derive(Clone, Debug)]
pub struct Expr {
    pub(crate) node: Arc<Node>,
    pub(crate) origin: Option<Origin>,
}

/// The shape of an untyped expression.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    /// A name: index or reduction variable, scalar input or dim.
    Name(String),
    /// A float literal; its type comes from context.
    Float(f64),
    /// An integer literal; its type comes from context.
    Int(i128),
    /// `true` / `false`.
    Bool(bool),
    /// A literal of a fixed type.
    Typed(Scalar),
    /// `t[i, ...]`.
    Index(Ident, Vec<Expr>),
    Unary(UnOp, Expr),
    Binary(BinOp, Expr, Expr),
    Cmp(CmpOp, Expr, Expr),
    And(Expr, Expr),
    Or(Expr, Expr),
    Cast(Expr, DType),
    If(Expr, Expr, Expr),
    /// A call of a built-in function by name (also `min`, `max`, `select`).
    Call(Ident, Vec<Expr>),
    Reduce(ReduceOp, Vec<RVar>, Expr),
}

/// A name with the origin of its tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where it was written.
    pub origin: Option<Origin>,
}

impl Ident {
    /// A name without origin.
    pub fn new(name: impl Into<String>) -> Ident {
        Ident { name: name.into(), origin: None }
    }
    /// A name with an origin.
    pub fn at(name: impl Into<String>, origin: Option<Origin>) -> Ident {
        Ident { name: name.into(), origin }
    }
}

impl From<&str> for Ident {
    fn from(s: &str) -> Ident {
        Ident::new(s)
    }
}
impl From<String> for Ident {
    fn from(s: String) -> Ident {
        Ident::new(s)
    }
}

/// A reduction variable `v in lo..hi`.
#[derive(Clone, Debug)]
pub struct RVar {
    /// The variable.
    pub name: Ident,
    /// Lower bound (inclusive); dims and literals only.
    pub lo: Expr,
    /// Upper bound (exclusive); dims and literals only.
    pub hi: Expr,
}

/// `v in lo..hi`.
pub fn rvar(name: impl Into<Ident>, lo: impl Into<Expr>, hi: impl Into<Expr>) -> RVar {
    RVar { name: name.into(), lo: lo.into(), hi: hi.into() }
}

impl<L: Into<Expr>, H: Into<Expr>> From<(&str, L, H)> for RVar {
    fn from((n, lo, hi): (&str, L, H)) -> RVar {
        rvar(n, lo, hi)
    }
}

impl Expr {
    fn new(node: Node) -> Expr {
        Expr { node: Arc::new(node), origin: None }
    }

    /// Attaches an origin (used by `tensor_expr!`).
    pub fn at(mut self, origin: Option<Origin>) -> Expr {
        self.origin = origin;
        self
    }

    /// The origin, if any.
    pub fn origin(&self) -> Option<Origin> {
        self.origin
    }

    /// The direct subexpressions.
    fn children(&self) -> Vec<&Expr> {
        match &*self.node {
            Node::Name(_) | Node::Float(_) | Node::Int(_) | Node::Bool(_) | Node::Typed(_) => vec![],
            Node::Index(_, v) | Node::Call(_, v) => v.iter().collect(),
            Node::Unary(_, a) | Node::Cast(a, _) => vec![a],
            Node::Binary(_, a, b) | Node::Cmp(_, a, b) | Node::And(a, b) | Node::Or(a, b) => vec![a, b],
            Node::If(c, a, b) => vec![c, a, b],
            Node::Reduce(_, vars, body) => vars.iter().flat_map(|v| [&v.lo, &v.hi]).chain([body]).collect(),
        }
    }

    /// The nesting depth (without recursion).
    pub(crate) fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut todo = vec![(self, 1usize)];
        while let Some((e, d)) = todo.pop() {
            deepest = deepest.max(d);
            todo.extend(e.children().into_iter().map(|c| (c, d + 1)));
        }
        deepest
    }

    /// Calls `f` on every name the expression refers to (without recursion).
    pub(crate) fn visit_names(&self, f: &mut impl FnMut(&str)) {
        let mut todo = vec![self];
        while let Some(e) = todo.pop() {
            if let Node::Name(n) = &*e.node {
                f(n);
            }
            todo.extend(e.children());
        }
    }

    /// The integer literal this is, if it is one (a literal dim).
    pub fn as_int(&self) -> Option<i128> {
        match &*self.node {
            Node::Int(v) => Some(*v),
            Node::Typed(v) => v.as_i64().map(i128::from),
            _ => None,
        }
    }

    /// The name this is, if it is a name.
    pub fn as_name(&self) -> Option<&str> {
        match &*self.node {
            Node::Name(n) => Some(n),
            _ => None,
        }
    }

    /// The tensor and index expressions, if this is a load `t[i, ...]`.
    pub fn as_load(&self) -> Option<(&str, &[Expr])> {
        match &*self.node {
            Node::Index(t, idx) => Some((&t.name, idx)),
            _ => None,
        }
    }

    /// `true` when a reduction occurs anywhere in the expression.
    pub fn has_reduce(&self) -> bool {
        let mut todo = vec![self];
        while let Some(e) = todo.pop() {
            if matches!(&*e.node, Node::Reduce(..)) {
                return true;
            }
            todo.extend(e.children());
        }
        false
    }

    /// The expression rewritten bottom-up: every subexpression, its
    /// children already rewritten, is replaced by `f`'s result where `f`
    /// gives one. What program generators use to rename tensors
    /// (`t[..]` → `u[..]`) or substitute a stage's body for its loads
    /// (composing definitions). Recursive: for expressions a program built,
    /// not for arbitrarily deep user input.
    pub fn rewrite(&self, f: &mut dyn FnMut(&Expr) -> Option<Expr>) -> Expr {
        let mut r = |e: &Expr| e.rewrite(f);
        let node = match &*self.node {
            Node::Name(_) | Node::Float(_) | Node::Int(_) | Node::Bool(_) | Node::Typed(_) => None,
            Node::Index(t, v) => Some(Node::Index(t.clone(), v.iter().map(&mut r).collect())),
            Node::Call(n, v) => Some(Node::Call(n.clone(), v.iter().map(&mut r).collect())),
            Node::Unary(op, a) => Some(Node::Unary(*op, r(a))),
            Node::Cast(a, t) => Some(Node::Cast(r(a), *t)),
            Node::Binary(op, a, b) => Some(Node::Binary(*op, r(a), r(b))),
            Node::Cmp(op, a, b) => Some(Node::Cmp(*op, r(a), r(b))),
            Node::And(a, b) => Some(Node::And(r(a), r(b))),
            Node::Or(a, b) => Some(Node::Or(r(a), r(b))),
            Node::If(c, a, b) => Some(Node::If(r(c), r(a), r(b))),
            Node::Reduce(op, vars, body) => Some(Node::Reduce(
                *op,
                vars.iter().map(|v| RVar { name: v.name.clone(), lo: r(&v.lo), hi: r(&v.hi) }).collect(),
                r(body),
            )),
        };
        let e = match node {
            Some(n) => Expr { node: Arc::new(n), origin: self.origin },
            None => self.clone(),
        };
        f(&e).unwrap_or(e)
    }

    /// A reference by name to an index or reduction variable, a scalar
    /// input or a dim.
    pub fn name(name: impl Into<String>) -> Expr {
        Expr::new(Node::Name(name.into()))
    }

    /// A float literal whose type comes from context (like Rust's `1.5`).
    pub fn float(v: f64) -> Expr {
        Expr::new(Node::Float(v))
    }

    /// An integer literal whose type comes from context (like Rust's `3`).
    pub fn int(v: i128) -> Expr {
        Expr::new(Node::Int(v))
    }

    /// `true` or `false`.
    pub fn bool(v: bool) -> Expr {
        Expr::new(Node::Bool(v))
    }

    /// A literal of a fixed type (like Rust's `3u8`).
    pub fn typed(v: Scalar) -> Expr {
        Expr::new(Node::Typed(v))
    }

    /// `self as dtype`.
    pub fn cast(self, dtype: DType) -> Expr {
        Expr::new(Node::Cast(self, dtype))
    }

    /// `self < rhs`.
    pub fn lt(self, rhs: impl Into<Expr>) -> Expr {
        cmp(CmpOp::Lt, self, rhs.into())
    }
    /// `self <= rhs`.
    pub fn le(self, rhs: impl Into<Expr>) -> Expr {
        cmp(CmpOp::Le, self, rhs.into())
    }
    /// `self > rhs`.
    pub fn gt(self, rhs: impl Into<Expr>) -> Expr {
        cmp(CmpOp::Gt, self, rhs.into())
    }
    /// `self >= rhs`.
    pub fn ge(self, rhs: impl Into<Expr>) -> Expr {
        cmp(CmpOp::Ge, self, rhs.into())
    }
    /// `self == rhs`.
    #[allow(clippy::should_implement_trait)]
    pub fn eq(self, rhs: impl Into<Expr>) -> Expr {
        cmp(CmpOp::Eq, self, rhs.into())
    }
    /// `self != rhs`.
    #[allow(clippy::should_implement_trait)]
    pub fn ne(self, rhs: impl Into<Expr>) -> Expr {
        cmp(CmpOp::Ne, self, rhs.into())
    }
    /// `self && rhs` (lazy).
    pub fn and(self, rhs: impl Into<Expr>) -> Expr {
        Expr::new(Node::And(self, rhs.into()))
    }
    /// `self || rhs` (lazy).
    pub fn or(self, rhs: impl Into<Expr>) -> Expr {
        Expr::new(Node::Or(self, rhs.into()))
    }
}

/// A binary operation (used by the macro for every operator).
pub fn binary(op: BinOp, a: Expr, b: Expr) -> Expr {
    Expr::new(Node::Binary(op, a, b))
}

/// A comparison.
pub fn cmp(op: CmpOp, a: Expr, b: Expr) -> Expr {
    Expr::new(Node::Cmp(op, a, b))
}

/// A unary operation.
pub fn unary(op: UnOp, a: Expr) -> Expr {
    Expr::new(Node::Unary(op, a))
}

/// `a && b`.
pub fn and(a: Expr, b: Expr) -> Expr {
    Expr::new(Node::And(a, b))
}

/// `a || b`.
pub fn or(a: Expr, b: Expr) -> Expr {
    Expr::new(Node::Or(a, b))
}

/// `if c { a } else { b }`: only the taken branch is evaluated.
pub fn if_(c: impl Into<Expr>, a: impl Into<Expr>, b: impl Into<Expr>) -> Expr {
    Expr::new(Node::If(c.into(), a.into(), b.into()))
}

/// A load `tensor[idx...]` of an input or stage by name.
pub fn index(tensor: impl Into<Ident>, idx: Vec<Expr>) -> Expr {
    Expr::new(Node::Index(tensor.into(), idx))
}

/// A call of a built-in function by name: `exp`, `max`, `select`, ...
pub fn call(func: impl Into<Ident>, args: Vec<Expr>) -> Expr {
    Expr::new(Node::Call(func.into(), args))
}

/// A reduction `op(v in lo..hi, ... => body)`.
pub fn reduce(op: ReduceOp, vars: Vec<RVar>, body: Expr) -> Expr {
    Expr::new(Node::Reduce(op, vars, body))
}

fn reduce_with<const R: usize, V: Into<RVar>>(
    op: ReduceOp,
    vars: [V; R],
    body: impl FnOnce([Expr; R]) -> Expr,
) -> Expr {
    let vars: Vec<RVar> = vars.into_iter().map(Into::into).collect();
    let refs: [Expr; R] = std::array::from_fn(|i| Expr::name(vars[i].name.name.clone()));
    reduce(op, vars, body(refs))
}

/// `sum(v in lo..hi, ... => body)`.
pub fn sum<const R: usize, V: Into<RVar>>(vars: [V; R], body: impl FnOnce([Expr; R]) -> Expr) -> Expr {
    reduce_with(ReduceOp::Sum, vars, body)
}
/// `prod(v in lo..hi, ... => body)`.
pub fn prod<const R: usize, V: Into<RVar>>(vars: [V; R], body: impl FnOnce([Expr; R]) -> Expr) -> Expr {
    reduce_with(ReduceOp::Prod, vars, body)
}
/// `max(v in lo..hi, ... => body)`.
pub fn max_over<const R: usize, V: Into<RVar>>(vars: [V; R], body: impl FnOnce([Expr; R]) -> Expr) -> Expr {
    reduce_with(ReduceOp::Max, vars, body)
}
/// `min(v in lo..hi, ... => body)`.
pub fn min_over<const R: usize, V: Into<RVar>>(vars: [V; R], body: impl FnOnce([Expr; R]) -> Expr) -> Expr {
    reduce_with(ReduceOp::Min, vars, body)
}

macro_rules! builtins {
    ($($(#[$m:meta])* $f:ident($($a:ident),*);)*) => {$(
        $(#[$m])*
        pub fn $f($($a: impl Into<Expr>),*) -> Expr {
            call(stringify!($f), vec![$($a.into()),*])
        }
    )*};
}

builtins! {
    /// `exp(x)`
    exp(x);
    /// `exp2(x)`
    exp2(x);
    /// `ln(x)`
    ln(x);
    /// `log2(x)`
    log2(x);
    /// `sqrt(x)`
    sqrt(x);
    /// `rsqrt(x)`
    rsqrt(x);
    /// `abs(x)`
    abs(x);
    /// `floor(x)`
    floor(x);
    /// `ceil(x)`
    ceil(x);
    /// `round(x)` (half away from zero)
    round(x);
    /// `trunc(x)`
    trunc(x);
    /// `sin(x)`
    sin(x);
    /// `cos(x)`
    cos(x);
    /// `tanh(x)`
    tanh(x);
    /// `sigmoid(x)`
    sigmoid(x);
    /// `erf(x)`
    erf(x);
    /// `pow(x, y)`
    pow(x, y);
    /// `min(a, b)`
    min(a, b);
    /// `max(a, b)`
    max(a, b);
    /// `clamp(x, lo, hi)`
    clamp(x, lo, hi);
    /// `fma(a, b, c)` = `a * b + c`
    fma(a, b, c);
    /// `select(c, a, b)`: both sides may be evaluated.
    select(c, a, b);
}

impl From<f64> for Expr {
    fn from(v: f64) -> Expr {
        Expr::float(v)
    }
}
impl From<i32> for Expr {
    fn from(v: i32) -> Expr {
        Expr::int(v as i128)
    }
}
impl From<i64> for Expr {
    fn from(v: i64) -> Expr {
        Expr::int(v as i128)
    }
}
impl From<usize> for Expr {
    fn from(v: usize) -> Expr {
        Expr::int(v as i128)
    }
}
impl From<bool> for Expr {
    fn from(v: bool) -> Expr {
        Expr::bool(v)
    }
}
impl From<f32> for Expr {
    fn from(v: f32) -> Expr {
        Expr::typed(Scalar::F32(v))
    }
}
/// A string is a name: `"K"` refers to dim `K` (or a variable).
impl From<&str> for Expr {
    fn from(v: &str) -> Expr {
        Expr::name(v)
    }
}
impl From<&Expr> for Expr {
    fn from(v: &Expr) -> Expr {
        v.clone()
    }
}

macro_rules! ops {
    ($($tr:ident $m:ident $op:ident),*) => {$(
        impl<R: Into<Expr>> std::ops::$tr<R> for Expr {
            type Output = Expr;
            fn $m(self, rhs: R) -> Expr { binary(BinOp::$op, self, rhs.into()) }
        }
        impl<R: Into<Expr>> std::ops::$tr<R> for &Expr {
            type Output = Expr;
            fn $m(self, rhs: R) -> Expr { binary(BinOp::$op, self.clone(), rhs.into()) }
        }
        impl std::ops::$tr<Expr> for f64 {
            type Output = Expr;
            fn $m(self, rhs: Expr) -> Expr { binary(BinOp::$op, Expr::float(self), rhs) }
        }
        impl std::ops::$tr<Expr> for i32 {
            type Output = Expr;
            fn $m(self, rhs: Expr) -> Expr { binary(BinOp::$op, Expr::int(self as i128), rhs) }
        }
    )*};
}
ops!(Add add Add, Sub sub Sub, Mul mul Mul, Div div Div, Rem rem Rem);

impl std::ops::Neg for Expr {
    type Output = Expr;
    fn neg(self) -> Expr {
        unary(UnOp::Neg, self)
    }
}
impl std::ops::Neg for &Expr {
    type Output = Expr;
    fn neg(self) -> Expr {
        unary(UnOp::Neg, self.clone())
    }
}
impl std::ops::Not for Expr {
    type Output = Expr;
    fn not(self) -> Expr {
        unary(UnOp::Not, self)
    }
}

/// A tensor (input or stage) by name, for building loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorRef {
    /// The tensor's name.
    pub name: String,
}

impl TensorRef {
    /// `self[idx...]`.
    pub fn at<I: Into<Expr>>(&self, idx: impl IntoIterator<Item = I>) -> Expr {
        index(self.name.as_str(), idx.into_iter().map(Into::into).collect())
    }
}

/// A declared type `dtype[dims]`.
#[derive(Clone, Debug)]
pub struct TypeDef {
    /// Element type.
    pub dtype: DType,
    /// Dims: names, literals, or integer arithmetic of them.
    pub shape: Vec<Expr>,
    /// Where the type was written.
    pub origin: Option<Origin>,
}

/// One argument of the function.
#[derive(Clone, Debug)]
pub enum ArgDef {
    /// `name: dtype[dims]`; dims are names or literals.
    Tensor {
        /// Name.
        name: Ident,
        /// Type.
        ty: TypeDef,
    },
    /// `name: dtype`.
    Scalar {
        /// Name.
        name: Ident,
        /// Type.
        dtype: DType,
    },
}

/// One `let` stage.
#[derive(Clone, Debug)]
pub struct StageDef {
    /// The stage's name.
    pub name: Ident,
    /// Declared type; may be left out on a returned stage.
    pub ty: Option<TypeDef>,
    /// The index variables of the closure.
    pub idx: Vec<Ident>,
    /// The closure's body.
    pub body: Expr,
}

/// A function definition under construction.
#[derive(Clone, Debug)]
pub struct FuncBuilder {
    /// The function's name.
    pub name: Ident,
    /// Its doc comment.
    pub doc: Option<String>,
    /// Arguments in declaration order.
    pub args: Vec<ArgDef>,
    /// Declared output types.
    pub outputs: Vec<TypeDef>,
    /// Stages in order.
    pub stages: Vec<StageDef>,
    /// The returned stages.
    pub ret: Vec<Ident>,
}

fn to_exprs<D: Into<Expr>>(shape: impl IntoIterator<Item = D>) -> Vec<Expr> {
    shape.into_iter().map(Into::into).collect()
}

impl FuncBuilder {
    /// Starts a definition.
    pub fn new(name: impl Into<Ident>) -> FuncBuilder {
        FuncBuilder { name: name.into(), doc: None, args: vec![], outputs: vec![], stages: vec![], ret: vec![] }
    }

    /// Adds a tensor input. Dims are names (`"M"`) or literals (`3`).
    pub fn input<D: Into<Expr>>(
        &mut self,
        name: impl Into<Ident>,
        dtype: DType,
        shape: impl IntoIterator<Item = D>,
    ) -> TensorRef {
        let name = name.into();
        let r = TensorRef { name: name.name.clone() };
        self.args.push(ArgDef::Tensor { name, ty: TypeDef { dtype, shape: to_exprs(shape), origin: None } });
        r
    }

    /// Adds a scalar input; the result refers to it by name.
    pub fn scalar(&mut self, name: impl Into<Ident>, dtype: DType) -> Expr {
        let name = name.into();
        let e = Expr::name(name.name.clone());
        self.args.push(ArgDef::Scalar { name, dtype });
        e
    }

    /// Declares the next output's type.
    pub fn output<D: Into<Expr>>(&mut self, dtype: DType, shape: impl IntoIterator<Item = D>) {
        self.outputs.push(TypeDef { dtype, shape: to_exprs(shape), origin: None });
    }

    /// Adds a stage whose type is the output type it is returned as.
    pub fn compute<const R: usize>(
        &mut self,
        name: impl Into<Ident>,
        idx: [&str; R],
        body: impl FnOnce([Expr; R]) -> Expr,
    ) -> TensorRef {
        self.stage_impl(name.into(), None, idx, body)
    }

    /// Adds a stage with a declared type.
    pub fn compute_typed<const R: usize, D: Into<Expr>>(
        &mut self,
        name: impl Into<Ident>,
        dtype: DType,
        shape: impl IntoIterator<Item = D>,
        idx: [&str; R],
        body: impl FnOnce([Expr; R]) -> Expr,
    ) -> TensorRef {
        let ty = TypeDef { dtype, shape: to_exprs(shape), origin: None };
        self.stage_impl(name.into(), Some(ty), idx, body)
    }

    fn stage_impl<const R: usize>(
        &mut self,
        name: Ident,
        ty: Option<TypeDef>,
        idx: [&str; R],
        body: impl FnOnce([Expr; R]) -> Expr,
    ) -> TensorRef {
        let refs: [Expr; R] = std::array::from_fn(|i| Expr::name(idx[i]));
        let body = body(refs);
        let r = TensorRef { name: name.name.clone() };
        self.stages.push(StageDef { name, ty, idx: idx.iter().map(|s| Ident::new(*s)).collect(), body });
        r
    }

    /// Adds a fully spelled-out stage (what the macro uses).
    pub fn add_stage(&mut self, stage: StageDef) -> TensorRef {
        let r = TensorRef { name: stage.name.name.clone() };
        self.stages.push(stage);
        r
    }

    /// Names the returned stages, in output order.
    pub fn ret(&mut self, stages: impl IntoIterator<Item = TensorRef>) {
        self.ret = stages.into_iter().map(|t| Ident::new(t.name)).collect();
    }

    /// Resolves and checks the definition.
    pub fn build(&self) -> Result<crate::Func> {
        let depth = self.stages.iter().map(|s| s.body.depth()).max().unwrap_or(0);
        crate::deep::with_stack(depth, || crate::typeck::check(self))
    }
}
