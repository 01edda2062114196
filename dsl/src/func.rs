//! Typed definitions: what [`te::FuncBuilder::build`](crate::te::FuncBuilder::build)
//! produces and schedules apply to.

use std::fmt;

use crate::dtype::DType;
use crate::error::Origin;
use crate::expr::{BufId, Expr, Names, ReduceOp, Show, Var, VarId, VarTable};

/// A handle to a stage of a [`Func`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StageId(pub u32);

/// A checked, typed definition.
#[derive(Clone, Debug, PartialEq)]
pub struct Func {
    /// The function's name.
    pub name: String,
    /// Its doc comment.
    pub doc: Option<String>,
    /// Symbolic dims, bound from input shapes at call time (`Expr::Dim(i)`).
    pub dims: Vec<String>,
    /// Dims fixed by [`Program::specialize`](crate::Program::specialize),
    /// in [`Func::dims`] order (empty: none). A call must bind a fixed dim
    /// to its value; lowering sees the value as a literal.
    pub fixed: Vec<Option<i64>>,
    /// Every tensor: inputs, then stages; `Expr::Load` refers to these.
    pub tensors: Vec<TensorDecl>,
    /// Scalar inputs (`Expr::Param(i, _)`).
    pub params: Vec<ParamDecl>,
    /// Arguments in declaration order.
    pub args: Vec<Arg>,
    /// Stages, producers before consumers.
    pub stages: Vec<Stage>,
    /// Returned stages, in output order.
    pub outputs: Vec<StageId>,
    /// Variables.
    pub vars: VarTable,
}

/// An input or stage tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorDecl {
    /// Name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dims as `i64` expressions of symbolic dims and literals.
    pub shape: Vec<Expr>,
    /// What it is.
    pub kind: TensorKind,
}

/// Whether a tensor is an input or computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// The `n`-th tensor input.
    Input(u32),
    /// A stage.
    Stage(StageId),
}

/// A scalar input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamDecl {
    /// Name.
    pub name: String,
    /// Type.
    pub dtype: DType,
}

/// An argument of the function, in declaration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A tensor input.
    Tensor(BufId),
    /// A scalar input (index into [`Func::params`]).
    Scalar(u32),
}

/// One `let name = |idx...| body` stage.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    /// Name.
    pub name: String,
    /// Its tensor.
    pub buf: BufId,
    /// Index variables, one per dimension.
    pub axes: Vec<Var>,
    /// What each element is.
    pub body: Body,
    /// Where the stage was written.
    pub origin: Option<Origin>,
    /// For a reduction written inside an expression of stage `NAME`, which
    /// is computed by a stage of its own named `NAME_rK` (K counting the
    /// stage's reductions in order, skipping taken names): `NAME`. `None`
    /// for the stages the definition writes.
    pub within: Option<String>,
}

/// The body of a stage.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// An expression of the index variables.
    Pure(Expr),
    /// A reduction over a box of reduction variables.
    Reduce(Reduction),
}

/// `op(v in lo..hi, ... => value)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Reduction {
    /// The operator.
    pub op: ReduceOp,
    /// The reduction variables; their ranges use dims and literals only.
    pub axes: Vec<ReduceAxis>,
    /// The reduced value.
    pub value: Expr,
}

/// One reduction variable and its range `lo..hi`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceAxis {
    /// The variable.
    pub var: Var,
    /// Inclusive lower bound.
    pub lo: Expr,
    /// Exclusive upper bound.
    pub hi: Expr,
}

impl Body {
    /// Calls `f` on every expression of the body.
    pub fn exprs(&self) -> Vec<&Expr> {
        match self {
            Body::Pure(e) => vec![e],
            Body::Reduce(r) => {
                let mut v: Vec<&Expr> = r.axes.iter().flat_map(|a| [&a.lo, &a.hi]).collect();
                v.push(&r.value);
                v
            }
        }
    }

    /// The reduction, if this is one.
    pub fn reduction(&self) -> Option<&Reduction> {
        match self {
            Body::Reduce(r) => Some(r),
            Body::Pure(_) => None,
        }
    }

    /// Rewrites every expression.
    pub fn map(&self, f: &mut impl FnMut(&Expr) -> Expr) -> Body {
        match self {
            Body::Pure(e) => Body::Pure(f(e)),
            Body::Reduce(r) => Body::Reduce(Reduction {
                op: r.op,
                axes: r.axes.iter().map(|a| ReduceAxis { var: a.var, lo: f(&a.lo), hi: f(&a.hi) }).collect(),
                value: f(&r.value),
            }),
        }
    }

    /// The element type of the body's value.
    pub fn dtype(&self) -> DType {
        match self {
            Body::Pure(e) => e.dtype(),
            Body::Reduce(r) => r.value.dtype(),
        }
    }
}

impl Func {
    /// The nesting depth of the deepest expression of a stage (without
    /// recursion; see [`crate::deep`]).
    pub fn depth(&self) -> usize {
        self.stages.iter().flat_map(|s| s.body.exprs()).map(crate::deep::depth).max().unwrap_or(0)
    }

    /// The tensor inputs, in argument order.
    pub fn inputs(&self) -> impl Iterator<Item = BufId> + '_ {
        self.args.iter().filter_map(|a| match a {
            Arg::Tensor(b) => Some(*b),
            Arg::Scalar(_) => None,
        })
    }

    /// Number of tensor inputs.
    pub fn num_inputs(&self) -> usize {
        self.inputs().count()
    }

    /// A stage.
    pub fn stage(&self, s: StageId) -> &Stage {
        &self.stages[s.0 as usize]
    }

    /// A tensor.
    pub fn tensor(&self, b: BufId) -> &TensorDecl {
        &self.tensors[b.0 as usize]
    }

    /// Finds a stage by name.
    pub fn stage_named(&self, name: &str) -> Option<StageId> {
        self.stages.iter().position(|s| s.name == name).map(|i| StageId(i as u32))
    }

    /// Finds a tensor by name.
    pub fn tensor_named(&self, name: &str) -> Option<BufId> {
        self.tensors.iter().position(|t| t.name == name).map(|i| BufId(i as u32))
    }

    /// The value a [`Program::specialize`](crate::Program::specialize) fixed
    /// dim `d` to, if any.
    pub fn fixed_dim(&self, d: u32) -> Option<i64> {
        self.fixed.get(d as usize).copied().flatten()
    }

    /// The output types (dtype and shape), in output order.
    pub fn output_types(&self) -> Vec<(DType, Vec<Expr>)> {
        self.outputs
            .iter()
            .map(|s| {
                let t = self.tensor(self.stage(*s).buf);
                (t.dtype, t.shape.clone())
            })
            .collect()
    }

    /// The stages a stage reads directly.
    pub fn reads(&self, s: StageId) -> Vec<BufId> {
        let mut out = vec![];
        for e in self.stage(s).body.exprs() {
            e.visit(&mut |x| {
                if let Expr::Load(l) = x
                    && !out.contains(&l.buf)
                {
                    out.push(l.buf);
                }
            });
        }
        out
    }
}

impl Names for Func {
    fn var(&self, v: VarId) -> String {
        self.vars.name(v).to_string()
    }
    fn buf(&self, b: BufId) -> String {
        self.tensors.get(b.0 as usize).map(|t| t.name.clone()).unwrap_or_else(|| format!("t{}", b.0))
    }
    fn dim(&self, d: u32) -> String {
        self.dims.get(d as usize).cloned().unwrap_or_else(|| format!("D{d}"))
    }
    fn param(&self, p: u32) -> String {
        self.params.get(p as usize).map(|p| p.name.clone()).unwrap_or_else(|| format!("p{p}"))
    }
}

/// Writes `dtype[d0, d1]`.
pub(crate) fn write_type(f: &mut fmt::Formatter<'_>, dtype: DType, shape: &[Expr], n: &dyn Names) -> fmt::Result {
    write!(f, "{dtype}[")?;
    for (i, d) in shape.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}", Show(d, n))?;
    }
    f.write_str("]")
}

impl fmt::Display for Func {
    /// Prints the definition in `tensor_expr!` syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fn {}(", self.name)?;
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match a {
                Arg::Tensor(b) => {
                    let t = self.tensor(*b);
                    write!(f, "{}: ", t.name)?;
                    write_type(f, t.dtype, &t.shape, self)?;
                }
                Arg::Scalar(p) => {
                    let p = &self.params[*p as usize];
                    write!(f, "{}: {}", p.name, p.dtype)?;
                }
            }
        }
        f.write_str(") -> ")?;
        let outs = self.output_types();
        if outs.len() != 1 {
            f.write_str("(")?;
        }
        for (i, (d, s)) in outs.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_type(f, *d, s, self)?;
        }
        if outs.len() != 1 {
            f.write_str(")")?;
        }
        f.write_str(" {\n")?;
        for s in &self.stages {
            let t = self.tensor(s.buf);
            write!(f, "    let {}: ", s.name)?;
            write_type(f, t.dtype, &t.shape, self)?;
            f.write_str(" = |")?;
            for (i, v) in s.axes.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                f.write_str(self.vars.name(v.id))?;
            }
            f.write_str("| ")?;
            match &s.body {
                Body::Pure(e) => write!(f, "{}", Show(e, self))?,
                Body::Reduce(r) => {
                    write!(f, "{}(", r.op.name())?;
                    for (i, a) in r.axes.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{} in {}..{}", self.vars.name(a.var.id), Show(&a.lo, self), Show(&a.hi, self))?;
                    }
                    write!(f, " => {})", Show(&r.value, self))?;
                }
            }
            f.write_str(";\n")?;
        }
        let names: Vec<&str> = self.outputs.iter().map(|s| self.stage(*s).name.as_str()).collect();
        if names.len() == 1 {
            writeln!(f, "    {}", names[0])?;
        } else {
            writeln!(f, "    ({})", names.join(", "))?;
        }
        f.write_str("}")
    }
}
