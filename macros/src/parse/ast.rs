//! The macro's AST: what the user wrote, with a span on every node.
//!
//! Names stay names (resolution and type checking belong to `texpr_dsl`);
//! the AST only records structure, literals and where each piece came from.

use std::fmt;

use syn::Ident;
use texpr_dsl::{BinOp, CmpOp, DType, ReduceOp, Scope, TargetClass, ThreadAxis, UnOp};

use crate::error::Sp;

/// One `tensor_expr! { ... }` invocation.
pub struct Block {
    /// The functions, each with its schedules, in source order.
    pub funcs: Vec<FuncDef>,
}

/// `/// doc` `pub fn name(args) -> outputs { stages; tail }` and the
/// `schedule` blocks that follow it.
pub struct FuncDef {
    /// `#[doc]` attributes, forwarded to the generated items.
    pub docs: Vec<syn::Attribute>,
    /// The doc comment's text.
    pub doc: Option<String>,
    /// `#[debug]`: dump this function's expansion.
    pub debug: bool,
    /// Visibility of the generated `fn` and `mod`.
    pub vis: syn::Visibility,
    /// The function's name.
    pub name: Ident,
    /// Inputs in declaration order.
    pub args: Vec<Arg>,
    /// Declared output types.
    pub outputs: Vec<TensorType>,
    /// The body; `None` when it did not parse (the signature still gets a stub).
    pub body: Option<Body>,
    /// `schedule` blocks.
    pub schedules: Vec<ScheduleBlock>,
}

/// The stages and the returned stage names.
pub struct Body {
    /// `let` stages in order.
    pub stages: Vec<Stage>,
    /// The tail: returned stages in output order.
    pub ret: Vec<Ident>,
}

/// A function input.
pub enum Arg {
    /// `name: dtype[dims]`.
    Tensor {
        /// Its name.
        name: Ident,
        /// Its type.
        ty: TensorType,
    },
    /// `name: dtype`.
    Scalar {
        /// Its name.
        name: Ident,
        /// Its type.
        dtype: ElemType,
    },
}

impl Arg {
    /// The argument's name.
    pub fn name(&self) -> &Ident {
        match self {
            Arg::Tensor { name, .. } | Arg::Scalar { name, .. } => name,
        }
    }
}

/// An element type as written.
#[derive(Clone, Copy)]
pub struct ElemType {
    /// The type.
    pub dtype: DType,
    /// Where.
    pub sp: Sp,
}

/// `dtype[dims]`.
pub struct TensorType {
    /// Element type.
    pub elem: ElemType,
    /// Dims: names, literals, integer arithmetic.
    pub dims: Vec<Expr>,
    /// The whole type.
    pub sp: Sp,
}

/// `let name[: type] = |idx, ...| body;`
pub struct Stage {
    /// The stage's name.
    pub name: Ident,
    /// Its declared type.
    pub ty: Option<TensorType>,
    /// The closure's index variables.
    pub idx: Vec<Ident>,
    /// The closure's body.
    pub body: Expr,
}

/// An expression with its span.
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// First to last token.
    pub sp: Sp,
}

/// A literal value with an explicit suffix type (`3u8`, `1.5f32`).
#[derive(Clone, Copy, Debug)]
pub enum LitValue {
    /// An integer, already range-checked for its type.
    Int(i128),
    /// A float (finite).
    Float(f64),
}

/// The expression grammar (SPEC §2).
pub enum ExprKind {
    /// A variable, scalar input or dim.
    Name(Ident),
    /// An unsuffixed integer literal.
    Int(i128),
    /// An unsuffixed float literal.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// A suffixed literal.
    Typed(DType, LitValue),
    /// `t[i, ...]`.
    Index(Ident, Vec<Expr>),
    /// `-x`, `!x`.
    Unary(UnOp, Box<Expr>),
    /// `a + b` ... `a % b`.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `a < b` ...
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `a && b`.
    And(Box<Expr>, Box<Expr>),
    /// `a || b`.
    Or(Box<Expr>, Box<Expr>),
    /// `x as dtype`.
    Cast(Box<Expr>, ElemType),
    /// `if c { a } else { b }`.
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `f(args)` of a built-in function.
    Call(Ident, Vec<Expr>),
    /// `op(v in lo..hi, ... => body)`.
    Reduce(ReduceOp, Vec<RVar>, Box<Expr>),
}

/// `v in lo..hi`.
pub struct RVar {
    /// The variable.
    pub name: Ident,
    /// Inclusive lower bound.
    pub lo: Expr,
    /// Exclusive upper bound.
    pub hi: Expr,
}

/// `schedule [for cpu|gpu] { primitives }`.
pub struct ScheduleBlock {
    /// The target class (`None`: every target).
    pub class: Option<TargetClass>,
    /// `schedule for cpu`, for errors about the block as a whole.
    pub sp: Sp,
    /// Primitives in order.
    pub prims: Vec<Prim>,
    /// `false` when a statement did not parse: the block is not checked
    /// (its later primitives may depend on the missing one).
    pub complete: bool,
}

/// `[let names =] stage.primitive(args);`
pub struct Prim {
    /// The stage the primitive applies to.
    pub stage: Ident,
    /// What it does.
    pub kind: PrimKind,
    /// `stage.primitive(args)`.
    pub sp: Sp,
}

/// A split factor: an integer literal.
#[derive(Clone, Copy)]
pub struct Factor {
    /// The value.
    pub value: i64,
    /// Where.
    pub sp: Sp,
}

/// The SPEC §3 primitives. Names bound by `let` are `Some`; without `let`
/// the core generates names (`k.outer`, ...).
pub enum PrimKind {
    /// `let (o, i) = s.split(v, f)`.
    Split { axis: Ident, factor: Factor, names: Option<[Ident; 2]> },
    /// `let (xo, yo, xi, yi) = s.tile(x, y, fx, fy)`.
    Tile { x: Ident, y: Ident, fx: Factor, fy: Factor, names: Option<[Ident; 4]> },
    /// `let f = s.fuse(a, b)`.
    Fuse { a: Ident, b: Ident, name: Option<Ident> },
    /// `s.reorder(a, b, ...)`.
    Reorder { axes: Vec<Ident> },
    /// `s.vectorize(v)`.
    Vectorize { axis: Ident },
    /// `s.unroll(v)`.
    Unroll { axis: Ident },
    /// `s.parallel(v)`.
    Parallel { axis: Ident },
    /// `s.bind(v, block.x)`.
    Bind { axis: Ident, thread: ThreadAxis },
    /// `s.compute_at(consumer, v)`.
    ComputeAt { consumer: Ident, axis: Ident },
    /// `s.compute_inline()`.
    ComputeInline,
    /// `s.compute_root()`.
    ComputeRoot,
    /// `let t_s = s.cache_read(t, shared)`.
    CacheRead { tensor: Ident, scope: Scope, name: Option<Ident> },
    /// `let s_l = s.cache_write(local)`.
    CacheWrite { scope: Scope, name: Option<Ident> },
}

/// Fully parenthesized, for tests and debugging: `((a + (b * c)) < d)`.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, xs: &[Expr]| -> fmt::Result {
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{x}")?;
            }
            Ok(())
        };
        match &self.kind {
            ExprKind::Name(n) => write!(f, "{n}"),
            ExprKind::Int(v) => write!(f, "{v}"),
            ExprKind::Float(v) => write!(f, "{v:?}"),
            ExprKind::Bool(b) => write!(f, "{b}"),
            ExprKind::Typed(d, LitValue::Int(v)) => write!(f, "{v}{d}"),
            ExprKind::Typed(d, LitValue::Float(v)) => write!(f, "{v:?}{d}"),
            ExprKind::Index(t, idx) => {
                write!(f, "{t}[")?;
                list(f, idx)?;
                f.write_str("]")
            }
            ExprKind::Unary(UnOp::Neg, a) => write!(f, "(-{a})"),
            ExprKind::Unary(UnOp::Not, a) => write!(f, "(!{a})"),
            ExprKind::Binary(op, a, b) => write!(f, "({a} {} {b})", op.symbol()),
            ExprKind::Cmp(op, a, b) => write!(f, "({a} {} {b})", op.symbol()),
            ExprKind::And(a, b) => write!(f, "({a} && {b})"),
            ExprKind::Or(a, b) => write!(f, "({a} || {b})"),
            ExprKind::Cast(a, t) => write!(f, "({a} as {})", t.dtype),
            ExprKind::If(c, a, b) => write!(f, "if {c} {{ {a} }} else {{ {b} }}"),
            ExprKind::Call(n, args) => {
                write!(f, "{n}(")?;
                list(f, args)?;
                f.write_str(")")
            }
            ExprKind::Reduce(op, vars, body) => {
                write!(f, "{}(", op.name())?;
                for (i, v) in vars.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{} in {}..{}", v.name, v.lo, v.hi)?;
                }
                write!(f, " => {body})")
            }
        }
    }
}
