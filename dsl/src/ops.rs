//! The operators of expressions and reductions: what the IR, the scalar
//! semantics (`value.rs`) and every backend name in common.

/// Binary arithmetic operators. `Min`/`Max` are the `min`/`max` functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Min,
    Max,
}

impl BinOp {
    /// The operator's symbol or function name.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Min => "min",
            BinOp::Max => "max",
        }
    }
    /// Rust precedence (higher binds tighter); functions are atoms.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Add | BinOp::Sub => 6,
            BinOp::Mul | BinOp::Div | BinOp::Rem => 7,
            BinOp::Min | BinOp::Max => 10,
        }
    }
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl CmpOp {
    /// The operator's symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }
    /// `!(a op b)` is `a op.negate() b` — for integers and bools (not for
    /// floats, where NaN breaks it).
    pub fn negate(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Ge,
            CmpOp::Le => CmpOp::Gt,
            CmpOp::Gt => CmpOp::Le,
            CmpOp::Ge => CmpOp::Lt,
            CmpOp::Eq => CmpOp::Ne,
            CmpOp::Ne => CmpOp::Eq,
        }
    }
    /// `a op b` is `b op.swap() a`.
    pub fn swap(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            c => c,
        }
    }
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    /// `-x` (wrapping for integers).
    Neg,
    /// `!x`: logical not on `bool`, bitwise not on integers.
    Not,
}

/// Built-in functions other than `min`, `max` ([`BinOp`]) and `select`
/// ([`Expr::Select`](crate::Expr::Select)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Builtin {
    Exp,
    Exp2,
    Ln,
    Log2,
    Sqrt,
    Rsqrt,
    Abs,
    Floor,
    Ceil,
    Round,
    Trunc,
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    Erf,
    Pow,
    Fma,
    Clamp,
}

impl Builtin {
    /// Every built-in.
    pub const ALL: [Builtin; 19] = [
        Builtin::Exp,
        Builtin::Exp2,
        Builtin::Ln,
        Builtin::Log2,
        Builtin::Sqrt,
        Builtin::Rsqrt,
        Builtin::Abs,
        Builtin::Floor,
        Builtin::Ceil,
        Builtin::Round,
        Builtin::Trunc,
        Builtin::Sin,
        Builtin::Cos,
        Builtin::Tanh,
        Builtin::Sigmoid,
        Builtin::Erf,
        Builtin::Pow,
        Builtin::Fma,
        Builtin::Clamp,
    ];

    /// The function's name in the language.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Exp => "exp",
            Builtin::Exp2 => "exp2",
            Builtin::Ln => "ln",
            Builtin::Log2 => "log2",
            Builtin::Sqrt => "sqrt",
            Builtin::Rsqrt => "rsqrt",
            Builtin::Abs => "abs",
            Builtin::Floor => "floor",
            Builtin::Ceil => "ceil",
            Builtin::Round => "round",
            Builtin::Trunc => "trunc",
            Builtin::Sin => "sin",
            Builtin::Cos => "cos",
            Builtin::Tanh => "tanh",
            Builtin::Sigmoid => "sigmoid",
            Builtin::Erf => "erf",
            Builtin::Pow => "pow",
            Builtin::Fma => "fma",
            Builtin::Clamp => "clamp",
        }
    }

    /// Looks a built-in up by name.
    pub fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Number of arguments.
    pub fn arity(self) -> usize {
        match self {
            Builtin::Pow => 2,
            Builtin::Fma | Builtin::Clamp => 3,
            _ => 1,
        }
    }

    /// `true` if the function is defined on floats only.
    pub fn float_only(self) -> bool {
        !matches!(self, Builtin::Abs | Builtin::Clamp | Builtin::Fma)
    }
}

/// Reduction operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum ReduceOp {
    Sum,
    Prod,
    Max,
    Min,
}

impl ReduceOp {
    /// The name in the language.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Prod => "prod",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
        }
    }
    /// The binary operator that folds a value into the accumulator.
    pub fn combiner(self) -> BinOp {
        match self {
            ReduceOp::Sum => BinOp::Add,
            ReduceOp::Prod => BinOp::Mul,
            ReduceOp::Max => BinOp::Max,
            ReduceOp::Min => BinOp::Min,
        }
    }
}
