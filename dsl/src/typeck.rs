//! Name resolution and type checking: [`te::FuncBuilder`] → [`Func`].
//!
//! Rules (SPEC §2), in the order they are applied:
//! - Names resolve innermost first: reduction variables, the stage's index
//!   variables, then scalar inputs and dims. Tensors (inputs and earlier
//!   stages) are a separate namespace used by `t[...]`.
//! - No implicit conversions. A literal takes the type its context expects
//!   (the other operand of a binary operator, the declared type of the stage);
//!   with no context it defaults like Rust (`i32`, `f64`).
//! - Indices are `i64` (the index type); a float index is an error.
//! - A reduction that is not the whole body of its stage is computed by a
//!   stage of its own (`NAME_r0`, `NAME_r1`, ... in order, skipping names
//!   the definition uses) over the stage's domain, under the conditions of
//!   the `if`s that enclose it, and read back — so reductions compose with
//!   the rest of the language without a scheduling special case, and
//!   schedules name that stage like any other.
//! - Accesses that are out of bounds for every shape are rejected here; the
//!   rest is proven per shape at lowering time.

use std::collections::HashMap;
use std::sync::Arc;

use crate::dtype::DType;
use crate::error::{DefinitionError, Error, Origin, Result};
use crate::expr::{BinOp, BufId, Builtin, Expr, ReduceOp, Show, UnOp, Var};
use crate::func::{Arg, Body, Func, ParamDecl, ReduceAxis, Reduction, Stage, StageId, TensorDecl, TensorKind};
use crate::prover::{Range, always_out_of_bounds};
use crate::te::{self, ArgDef, FuncBuilder, Ident, Node, TypeDef};
use crate::value::Scalar;

/// Checks a definition.
pub(crate) fn check(b: &FuncBuilder) -> Result<Func> {
    let mut cx = Checker {
        fname: b.name.name.clone(),
        func: Func {
            name: b.name.name.clone(),
            doc: b.doc.clone(),
            dims: vec![],
            fixed: vec![],
            tensors: vec![],
            params: vec![],
            args: vec![],
            stages: vec![],
            outputs: vec![],
            vars: Default::default(),
        },
        globals: HashMap::new(),
        tensors: HashMap::new(),
        taken: b
            .args
            .iter()
            .map(|a| match a {
                ArgDef::Tensor { name, .. } | ArgDef::Scalar { name, .. } => name.name.clone(),
            })
            .chain(b.stages.iter().map(|s| s.name.name.clone()))
            .collect(),
        hints: Default::default(),
    };
    cx.signature(b)?;
    let outputs = b.outputs.iter().map(|t| cx.dim_type(t, false)).collect::<Result<Vec<_>>>()?;
    if b.ret.len() != b.outputs.len() {
        let origin = b.ret.first().and_then(|r| r.origin).or(b.name.origin);
        return Err(cx.err(
            origin,
            format!("the function declares {} output(s) but returns {} stage(s)", b.outputs.len(), b.ret.len()),
        ));
    }
    // Returned names first: a wrong tail explains later errors better than
    // they explain it.
    for (i, r) in b.ret.iter().enumerate() {
        if b.ret[..i].iter().any(|p| p.name == r.name) {
            return Err(cx.err(r.origin, format!("`{}` is returned twice", r.name)));
        }
        if b.stages.iter().any(|s| s.name.name == r.name) {
            continue;
        }
        let msg = if b.args.iter().any(|a| matches!(a, ArgDef::Tensor { name, .. } if name.name == r.name)) {
            format!("`{}` is an input; return a stage computed from it", r.name)
        } else {
            format!("`{}` is not a stage of `{}`", r.name, cx.fname)
        };
        return Err(cx.err(r.origin, msg));
    }
    for s in &b.stages {
        let out = b.ret.iter().position(|r| r.name == s.name.name);
        cx.stage(s, out.map(|i| (&outputs[i], &b.outputs[i])))?;
    }
    // The returned names were checked above: each names a stage, once.
    for r in &b.ret {
        if let Some(&Named::Tensor(buf)) = cx.tensors.get(&r.name)
            && let TensorKind::Stage(sid) = cx.func.tensor(buf).kind
        {
            cx.func.outputs.push(sid);
        }
    }
    Ok(cx.func)
}

#[derive(Clone, Copy, Debug)]
enum Named {
    Dim(u32),
    Param(u32),
    Tensor(BufId),
}

struct Checker {
    fname: String,
    func: Func,
    /// Dims and scalar inputs.
    globals: HashMap<String, Named>,
    /// Inputs and stages.
    tensors: HashMap<String, Named>,
    /// Every name the definition gives a tensor or stage, and the names of
    /// hoisted reductions so far.
    taken: std::collections::HashSet<String>,
    /// [`Checker::hint`] of nodes (by address: the builder's nodes live
    /// through checking) while the variables in scope stay the same: it is
    /// asked at every binary node on the way down, and a walk per question
    /// made a long sum quadratic.
    hints: std::cell::RefCell<HashMap<*const Node, Option<DType>>>,
}

/// The state of checking one stage body.
struct StageCx<'a> {
    stage: &'a str,
    /// Index and reduction variables in scope, innermost last.
    locals: Vec<(String, Var, Range)>,
    /// Reduction variables that went out of scope (for a better message).
    dead: Vec<String>,
    /// Conditions of the enclosing lazy branches.
    path: Vec<Expr>,
    /// Inside a reduction's value.
    in_reduction: bool,
    /// The index variables of the stage and its type, for hoisting.
    axes: Vec<Var>,
    shape: Vec<Expr>,
    hidden: u32,
}

/// Whether a literal is an integer or a float.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LitKind {
    Int,
    Float,
}

impl Checker {
    fn err(&self, origin: Option<Origin>, message: impl Into<String>) -> Error {
        Error::Definition(DefinitionError { func: self.fname.clone(), message: message.into(), origin })
    }

    fn signature(&mut self, b: &FuncBuilder) -> Result<()> {
        let mut inputs = 0u32;
        for a in &b.args {
            match a {
                ArgDef::Tensor { name, ty } => {
                    self.fresh_name(name)?;
                    let mut shape = vec![];
                    for d in &ty.shape {
                        shape.push(self.input_dim(d)?);
                    }
                    let buf = BufId(self.func.tensors.len() as u32);
                    self.func.tensors.push(TensorDecl {
                        name: name.name.clone(),
                        dtype: ty.dtype,
                        shape,
                        kind: TensorKind::Input(inputs),
                    });
                    inputs += 1;
                    self.tensors.insert(name.name.clone(), Named::Tensor(buf));
                    self.func.args.push(Arg::Tensor(buf));
                }
                ArgDef::Scalar { name, dtype } => {
                    self.fresh_name(name)?;
                    let p = self.func.params.len() as u32;
                    self.func.params.push(ParamDecl { name: name.name.clone(), dtype: *dtype });
                    self.globals.insert(name.name.clone(), Named::Param(p));
                    self.func.args.push(Arg::Scalar(p));
                }
            }
        }
        Ok(())
    }

    fn fresh_name(&self, name: &Ident) -> Result<()> {
        if self.tensors.contains_key(&name.name) || self.globals.contains_key(&name.name) {
            let what = match self.globals.get(&name.name) {
                Some(Named::Dim(_)) => "a dim",
                Some(Named::Param(_)) => "a scalar input",
                _ => "a tensor",
            };
            return Err(self.err(name.origin, format!("`{}` is already defined as {what}", name.name)));
        }
        Ok(())
    }

    /// A dim of an input's type: a name (declares or reuses a dim) or a literal.
    fn input_dim(&mut self, d: &te::Expr) -> Result<Expr> {
        match &*d.node {
            Node::Name(n) => match self.globals.get(n) {
                Some(Named::Dim(i)) => Ok(Expr::Dim(*i)),
                Some(Named::Param(_)) => {
                    Err(self.err(d.origin, format!("`{n}` is a scalar input; a dim must be a name or a literal")))
                }
                _ => {
                    if self.tensors.contains_key(n) {
                        return Err(self.err(d.origin, format!("`{n}` is a tensor and cannot be a dim")));
                    }
                    let i = self.func.dims.len() as u32;
                    self.func.dims.push(n.clone());
                    self.globals.insert(n.clone(), Named::Dim(i));
                    Ok(Expr::Dim(i))
                }
            },
            Node::Int(v) if *v >= 0 && *v <= i64::MAX as i128 => Ok(Expr::int(*v as i64)),
            Node::Typed(s) if s.dtype().is_int() && s.as_i64().is_some_and(|v| v >= 0) => {
                Ok(Expr::int(s.as_i64().unwrap_or(0)))
            }
            _ => Err(self.err(d.origin, "an input dim must be a name or a non-negative integer literal")),
        }
    }

    /// A declared type whose dims are integer arithmetic of dims and literals.
    fn dim_type(&mut self, t: &TypeDef, _input: bool) -> Result<(DType, Vec<Expr>)> {
        let shape = t.shape.iter().map(|d| self.dim_expr(d, "a dim")).collect::<Result<Vec<_>>>()?;
        Ok((t.dtype, shape))
    }

    /// Integer arithmetic over dims and literals (output dims, reduction
    /// bounds).
    fn dim_expr(&self, d: &te::Expr, what: &str) -> Result<Expr> {
        let e = match &*d.node {
            Node::Name(n) => match self.globals.get(n) {
                Some(Named::Dim(i)) => Expr::Dim(*i),
                Some(Named::Param(_)) => {
                    return Err(
                        self.err(d.origin, format!("`{n}` is a scalar input; {what} may use dims and literals only"))
                    );
                }
                _ => {
                    return Err(self.err(
                        d.origin,
                        format!("dim `{n}` is not bound by any input shape, so its size is unknown at call time"),
                    ));
                }
            },
            Node::Int(v) => {
                if *v > i64::MAX as i128 || *v < i64::MIN as i128 {
                    return Err(self.err(d.origin, "integer literal out of range for i64"));
                }
                Expr::int(*v as i64)
            }
            Node::Typed(s) if s.dtype() == DType::I64 => Expr::Const(*s),
            Node::Unary(UnOp::Neg, a) => {
                let a = self.dim_expr(a, what)?;
                Expr::int(0) - a
            }
            Node::Binary(
                op @ (BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem | BinOp::Min | BinOp::Max),
                a,
                b,
            ) => {
                let (x, y) = (self.dim_expr(a, what)?, self.dim_expr(b, what)?);
                if matches!(op, BinOp::Div | BinOp::Rem) && y.as_int() == Some(0) {
                    return Err(self.err(d.origin, format!("division by zero in {what}")));
                }
                Expr::binary(*op, x, y)
            }
            Node::Call(f, args) if (f.name == "min" || f.name == "max") && args.len() == 2 => {
                let op = if f.name == "min" { BinOp::Min } else { BinOp::Max };
                Expr::binary(op, self.dim_expr(&args[0], what)?, self.dim_expr(&args[1], what)?)
            }
            _ => {
                return Err(self.err(d.origin, format!("{what} must be integer arithmetic of dims and literals")));
            }
        };
        Ok(crate::simplify::simplify(&e))
    }

    fn stage(&mut self, s: &te::StageDef, out: Option<(&(DType, Vec<Expr>), &TypeDef)>) -> Result<()> {
        self.fresh_name(&s.name)?;
        let (dtype, shape) = match (&s.ty, out) {
            (Some(t), None) => self.dim_type(t, false)?,
            (None, Some((o, _))) => o.clone(),
            (Some(t), Some((o, odef))) => {
                let declared = self.dim_type(t, false)?;
                if declared.0 != o.0 || declared.1 != o.1 {
                    let origin = t.origin.or(odef.origin).or(s.name.origin);
                    return Err(self.err(
                        origin,
                        format!(
                            "stage `{}` is declared `{}` but is returned as the output type `{}`",
                            s.name.name,
                            self.type_str(declared.0, &declared.1),
                            self.type_str(o.0, &o.1)
                        ),
                    ));
                }
                declared
            }
            (None, None) => {
                return Err(self.err(
                    s.name.origin,
                    format!(
                        "stage `{0}` needs a type (`let {0}: f32[...] = ...`); only a returned stage may leave it out",
                        s.name.name
                    ),
                ));
            }
        };
        if s.idx.len() != shape.len() {
            let origin = s.idx.first().and_then(|i| i.origin).or(s.name.origin);
            return Err(self.err(
                origin,
                format!(
                    "stage `{}` has {} dim(s) but its closure takes {} index variable(s)",
                    s.name.name,
                    shape.len(),
                    s.idx.len()
                ),
            ));
        }
        self.hints.borrow_mut().clear();
        let mut cx = StageCx {
            stage: &s.name.name,
            locals: vec![],
            dead: vec![],
            path: vec![],
            in_reduction: false,
            axes: vec![],
            shape: shape.clone(),
            hidden: 0,
        };
        for (i, ix) in s.idx.iter().enumerate() {
            if s.idx[..i].iter().any(|p| p.name == ix.name) {
                return Err(self.err(ix.origin, format!("index variable `{}` appears twice", ix.name)));
            }
            let v = self.func.vars.add_index(ix.name.clone());
            cx.locals.push((ix.name.clone(), v, Range { lo: Expr::int(0), hi: shape[i].clone() }));
            self.hints.borrow_mut().clear();
            cx.axes.push(v);
        }
        let body = match &*s.body.node {
            Node::Reduce(op, rvars, value) => {
                Body::Reduce(self.reduction(&mut cx, *op, rvars, value, Some(dtype), s.body.origin)?)
            }
            _ => Body::Pure(self.expr(&mut cx, &s.body, Some(dtype), s.body.origin)?),
        };
        if body.dtype() != dtype {
            return Err(self.err(
                s.body.origin.or(s.name.origin),
                format!("stage `{}` has type `{}` but its value is `{}`", s.name.name, dtype, body.dtype()),
            ));
        }
        let sid = StageId(self.func.stages.len() as u32);
        let buf = BufId(self.func.tensors.len() as u32);
        self.func.tensors.push(TensorDecl { name: s.name.name.clone(), dtype, shape, kind: TensorKind::Stage(sid) });
        self.func.stages.push(Stage {
            name: s.name.name.clone(),
            buf,
            axes: cx.axes,
            body,
            origin: s.name.origin,
            within: None,
        });
        self.tensors.insert(s.name.name.clone(), Named::Tensor(buf));
        Ok(())
    }

    fn type_str(&self, d: DType, shape: &[Expr]) -> String {
        let dims: Vec<String> = shape.iter().map(|e| Show(e, &self.func).to_string()).collect();
        format!("{d}[{}]", dims.join(", "))
    }

    fn reduction(
        &mut self,
        cx: &mut StageCx<'_>,
        op: ReduceOp,
        rvars: &[te::RVar],
        value: &te::Expr,
        want: Option<DType>,
        origin: Option<Origin>,
    ) -> Result<Reduction> {
        if cx.in_reduction {
            return Err(self.err(
                origin,
                format!("a `{}` inside another reduction; compute the inner one as its own stage", op.name()),
            ));
        }
        if rvars.is_empty() {
            return Err(self.err(origin, format!("`{}` needs at least one reduction variable", op.name())));
        }
        let mut axes = vec![];
        let base = cx.locals.len();
        for (i, rv) in rvars.iter().enumerate() {
            if rvars[..i].iter().any(|p| p.name.name == rv.name.name) {
                return Err(self.err(rv.name.origin, format!("reduction variable `{}` appears twice", rv.name.name)));
            }
            let what = "a reduction bound";
            let lo = self.dim_expr(&rv.lo, what).map_err(|e| self.bound_err(e, cx, &rv.lo))?;
            let hi = self.dim_expr(&rv.hi, what).map_err(|e| self.bound_err(e, cx, &rv.hi))?;
            let v = self.func.vars.add_index(rv.name.name.clone());
            axes.push(ReduceAxis { var: v, lo: lo.clone(), hi: hi.clone() });
            cx.locals.push((rv.name.name.clone(), v, Range { lo, hi }));
        }
        // Hints depend on the names in scope.
        self.hints.borrow_mut().clear();
        cx.in_reduction = true;
        let value_origin = value.origin.or(origin);
        let v = self.expr(cx, value, want, value_origin);
        cx.in_reduction = false;
        for (name, ..) in cx.locals.drain(base..) {
            cx.dead.push(name);
        }
        self.hints.borrow_mut().clear();
        let value = v?;
        let t = value.dtype();
        if !t.is_numeric() {
            return Err(
                self.err(value_origin, format!("`{}` of `{t}` values; reduce numbers (cast with `as`)", op.name()))
            );
        }
        Ok(Reduction { op, axes, value })
    }

    /// Rephrases a bound error that names an index variable.
    fn bound_err(&self, e: Error, cx: &StageCx<'_>, bound: &te::Expr) -> Error {
        // The first index or reduction variable the bound uses, if any.
        let mut local = None;
        bound.visit_names(&mut |n| {
            if local.is_none() && cx.locals.iter().any(|(l, ..)| l == n) {
                local = Some(n.to_string());
            }
        });
        if let Some(n) = local {
            return self.err(
                bound.origin,
                format!(
                    "reduction bounds use dims and literals only, not the variable `{n}` (a bound that moves with an index is a scan); reduce over the whole range and guard the value with `if`, e.g. `sum(j in 0..N => if j <= {n} {{ .. }} else {{ 0.0 }})`"
                ),
            );
        }
        e
    }

    /// The concrete type an expression has regardless of context, if any.
    fn hint(&self, cx: &StageCx<'_>, e: &te::Expr, extra: &mut Vec<String>) -> Option<DType> {
        let key = Arc::as_ptr(&e.node);
        if extra.is_empty()
            && let Some(h) = self.hints.borrow().get(&key)
        {
            return *h;
        }
        let h = self.hint_of(cx, e, extra);
        if extra.is_empty() {
            self.hints.borrow_mut().insert(key, h);
        }
        h
    }

    fn hint_of(&self, cx: &StageCx<'_>, e: &te::Expr, extra: &mut Vec<String>) -> Option<DType> {
        match &*e.node {
            Node::Name(n) => {
                if extra.iter().any(|x| x == n) || cx.locals.iter().any(|(l, ..)| l == n) {
                    return Some(DType::INDEX);
                }
                match self.globals.get(n) {
                    Some(Named::Dim(_)) => Some(DType::INDEX),
                    Some(Named::Param(p)) => Some(self.func.params[*p as usize].dtype),
                    _ => None,
                }
            }
            Node::Float(_) | Node::Int(_) => None,
            Node::Bool(_) | Node::Cmp(..) | Node::And(..) | Node::Or(..) => Some(DType::Bool),
            Node::Typed(s) => Some(s.dtype()),
            Node::Index(t, _) => match self.tensors.get(&t.name) {
                Some(Named::Tensor(b)) => Some(self.func.tensor(*b).dtype),
                _ => None,
            },
            Node::Unary(_, a) => self.hint(cx, a, extra),
            Node::Binary(_, a, b) => self.hint(cx, a, extra).or_else(|| self.hint(cx, b, extra)),
            Node::Cast(_, t) => Some(*t),
            Node::If(_, a, b) => self.hint(cx, a, extra).or_else(|| self.hint(cx, b, extra)),
            Node::Call(f, args) => {
                let skip = usize::from(f.name == "select");
                args.iter().skip(skip).find_map(|a| self.hint(cx, a, extra))
            }
            Node::Reduce(_, rvars, body) => {
                let n = extra.len();
                extra.extend(rvars.iter().map(|r| r.name.name.clone()));
                let h = self.hint(cx, body, extra);
                extra.truncate(n);
                h
            }
        }
    }

    fn lit_kind(e: &te::Expr) -> Option<LitKind> {
        match &*e.node {
            Node::Float(_) => Some(LitKind::Float),
            Node::Int(_) => Some(LitKind::Int),
            Node::Unary(_, a) => Checker::lit_kind(a),
            Node::Binary(_, a, b) => Checker::lit_kind(a).or_else(|| Checker::lit_kind(b)),
            Node::If(_, a, b) => Checker::lit_kind(a).or_else(|| Checker::lit_kind(b)),
            Node::Call(f, args) => {
                let skip = usize::from(f.name == "select");
                args.iter().skip(skip).find_map(Checker::lit_kind)
            }
            _ => None,
        }
    }

    /// The operand type of a binary node: what either side fixes, else the
    /// context, else the literal default.
    fn operand_type(&self, cx: &StageCx<'_>, a: &te::Expr, b: &te::Expr, want: Option<DType>) -> DType {
        let mut extra = vec![];
        self.hint(cx, a, &mut extra).or_else(|| self.hint(cx, b, &mut extra)).or(want).unwrap_or_else(|| {
            match Checker::lit_kind(a).or_else(|| Checker::lit_kind(b)) {
                Some(LitKind::Float) => DType::F64,
                _ => DType::I32,
            }
        })
    }

    fn expr(
        &mut self,
        cx: &mut StageCx<'_>,
        e: &te::Expr,
        want: Option<DType>,
        parent: Option<Origin>,
    ) -> Result<Expr> {
        let origin = e.origin.or(parent);
        match &*e.node {
            Node::Name(n) => self.name(cx, n, origin),
            Node::Float(v) => match want {
                Some(t) if t.is_float() => Ok(Expr::Const(Scalar::from_f64(t, *v))),
                None => Ok(Expr::Const(Scalar::F64(*v))),
                Some(t) => Err(self.err(origin, format!("expected `{t}`, found a float literal"))),
            },
            Node::Int(v) => self.int_lit(*v, want, origin),
            Node::Bool(v) => Ok(Expr::bool(*v)),
            Node::Typed(s) => Ok(Expr::Const(*s)),
            Node::Index(t, idx) => self.load(cx, t, idx, origin),
            Node::Unary(op, a) => {
                // `-3` is one literal (so `-128i8` is in range).
                if let (UnOp::Neg, Node::Int(v)) = (op, &*a.node) {
                    if let Some(t) = want.filter(|t| t.is_unsigned_int()) {
                        return Err(self.err(origin, format!("cannot negate an unsigned `{t}`")));
                    }
                    return self.int_lit(-*v, want, origin);
                }
                let a = self.expr(cx, a, want, origin)?;
                let t = a.dtype();
                match op {
                    UnOp::Neg if t.is_signed_int() || t.is_float() => {}
                    UnOp::Not if t == DType::Bool || t.is_int() => {}
                    UnOp::Neg => return Err(self.err(origin, format!("cannot negate a `{t}`"))),
                    UnOp::Not => return Err(self.err(origin, format!("cannot apply `!` to a `{t}`"))),
                }
                Ok(Expr::Unary(*op, a.into()))
            }
            Node::Binary(op, a, b) => {
                let t = self.operand_type(cx, a, b, want);
                let x = self.expr(cx, a, Some(t), origin)?;
                let y = self.expr(cx, b, Some(t), origin)?;
                self.same(x.dtype(), y.dtype(), op.symbol(), origin)?;
                if !x.dtype().is_numeric() {
                    return Err(self.err(origin, format!("`{}` is not defined on `{}`", op.symbol(), x.dtype())));
                }
                Ok(Expr::binary(*op, x, y))
            }
            Node::Cmp(op, a, b) => {
                let t = self.operand_type(cx, a, b, None);
                let x = self.expr(cx, a, Some(t), origin)?;
                let y = self.expr(cx, b, Some(t), origin)?;
                self.same(x.dtype(), y.dtype(), op.symbol(), origin)?;
                Ok(Expr::cmp(*op, x, y))
            }
            Node::And(a, b) | Node::Or(a, b) => {
                let is_and = matches!(&*e.node, Node::And(..));
                let x = self.expr(cx, a, Some(DType::Bool), origin)?;
                self.want_bool(&x, origin, if is_and { "&&" } else { "||" })?;
                cx.path.push(if is_and { x.clone() } else { Expr::Unary(UnOp::Not, x.clone().into()) });
                let y = self.expr(cx, b, Some(DType::Bool), origin);
                cx.path.pop();
                let y = y?;
                self.want_bool(&y, origin, if is_and { "&&" } else { "||" })?;
                Ok(if is_and { Expr::and(x, y) } else { Expr::or(x, y) })
            }
            Node::Cast(a, to) => {
                let mut extra = vec![];
                let hint = self.hint(cx, a, &mut extra);
                // Like Rust: `1.5 as i32` types the literal as f64, `3 as f32`
                // as i32, and `3 as u8` as u8.
                let default = match Checker::lit_kind(a) {
                    Some(LitKind::Float) if to.is_float() => Some(*to),
                    Some(LitKind::Float) => Some(DType::F64),
                    Some(LitKind::Int) if to.is_int() => Some(*to),
                    Some(LitKind::Int) => Some(DType::I32),
                    None => None,
                };
                let x = self.expr(cx, a, hint.or(default), origin)?;
                let from = x.dtype();
                let ok = match (from, *to) {
                    (f, t) if f == t => true,
                    (DType::Bool, t) => t.is_int(),
                    (_, DType::Bool) => false,
                    (f, t) => f.is_numeric() && t.is_numeric(),
                };
                if !ok {
                    return Err(self.err(origin, format!("cannot cast `{from}` as `{to}`")));
                }
                Ok(if from == *to { x } else { Expr::cast(*to, x) })
            }
            Node::If(c, a, b) => {
                let c = self.expr(cx, c, Some(DType::Bool), origin)?;
                self.want_bool(&c, origin, "if")?;
                let t = self.operand_type(cx, a, b, want);
                cx.path.push(c.clone());
                let x = self.expr(cx, a, Some(t), origin);
                cx.path.pop();
                let x = x?;
                cx.path.push(Expr::Unary(UnOp::Not, c.clone().into()));
                let y = self.expr(cx, b, Some(t), origin);
                cx.path.pop();
                let y = y?;
                if x.dtype() != y.dtype() {
                    return Err(self.err(
                        origin,
                        format!("`if` and `else` have different types: `{}` and `{}`", x.dtype(), y.dtype()),
                    ));
                }
                Ok(Expr::if_(c, x, y))
            }
            Node::Call(f, args) => self.call(cx, f, args, want, origin),
            Node::Reduce(op, rvars, value) => self.hoist(cx, *op, rvars, value, want, origin),
        }
    }

    fn int_lit(&self, v: i128, want: Option<DType>, origin: Option<Origin>) -> Result<Expr> {
        let t = match want {
            None => DType::I32,
            Some(t) if t.is_int() => t,
            Some(t) if t.is_float() => {
                return Err(self.err(origin, format!("expected `{t}`, found integer literal `{v}`; write `{v}.0`")));
            }
            Some(t) => return Err(self.err(origin, format!("expected `{t}`, found integer literal `{v}`"))),
        };
        let (lo, hi) = crate::value::int_range(t);
        if v < lo || v > hi {
            return Err(self.err(origin, format!("literal `{v}` out of range for `{t}`")));
        }
        Ok(Expr::lit(t, v))
    }

    fn same(&self, a: DType, b: DType, op: &str, origin: Option<Origin>) -> Result<()> {
        if a != b {
            return Err(
                self.err(origin, format!("mismatched types: `{a}` {op} `{b}` (no implicit conversions; use `as`)"))
            );
        }
        Ok(())
    }

    fn want_bool(&self, e: &Expr, origin: Option<Origin>, what: &str) -> Result<()> {
        if e.dtype() != DType::Bool {
            return Err(self.err(origin, format!("`{what}` needs a `bool`, found `{}`", e.dtype())));
        }
        Ok(())
    }

    fn name(&self, cx: &StageCx<'_>, n: &str, origin: Option<Origin>) -> Result<Expr> {
        if let Some((_, v, _)) = cx.locals.iter().rev().find(|(l, ..)| l == n) {
            return Ok(Expr::Var(*v));
        }
        match self.globals.get(n) {
            Some(Named::Dim(d)) => return Ok(Expr::Dim(*d)),
            Some(Named::Param(p)) => return Ok(Expr::Param(*p, self.func.params[*p as usize].dtype)),
            _ => {}
        }
        if cx.dead.iter().any(|d| d == n) {
            return Err(self.err(origin, format!("reduction variable `{n}` is used outside its reduction")));
        }
        if self.tensors.contains_key(n) {
            return Err(self.err(origin, format!("`{n}` is a tensor; index it like `{n}[...]`")));
        }
        Err(self.err(origin, format!("unknown name `{n}` in stage `{}`", cx.stage)))
    }

    /// A load `t[idx...]`; `origin` is the whole load's, errors about the
    /// name point at the name.
    fn load(&mut self, cx: &mut StageCx<'_>, t: &Ident, idx: &[te::Expr], origin: Option<Origin>) -> Result<Expr> {
        let name_origin = t.origin.or(origin);
        let buf = match self.tensors.get(&t.name) {
            Some(Named::Tensor(b)) => *b,
            _ => {
                if t.name == cx.stage {
                    return Err(self.err(name_origin, format!("stage `{}` cannot read itself", t.name)));
                }
                if self.globals.contains_key(&t.name) || cx.locals.iter().any(|(l, ..)| *l == t.name) {
                    return Err(self.err(name_origin, format!("`{}` is not a tensor and cannot be indexed", t.name)));
                }
                return Err(self.err(name_origin, format!("unknown tensor `{}`", t.name)));
            }
        };
        let decl = self.func.tensor(buf).clone();
        if idx.len() != decl.shape.len() {
            return Err(self.err(
                origin,
                format!("`{}` has {} dim(s) but is indexed with {} index(es)", t.name, decl.shape.len(), idx.len()),
            ));
        }
        let mut out = vec![];
        for x in idx {
            let xo = x.origin.or(origin);
            let mut extra = vec![];
            let hint = self.hint(cx, x, &mut extra);
            if let Some(h) = hint
                && h.is_float()
            {
                return Err(
                    self.err(xo, format!("a float (`{h}`) used as an index of `{}`; indices are integers", t.name))
                );
            }
            if Checker::lit_kind(x) == Some(LitKind::Float) && hint.is_none() {
                return Err(
                    self.err(xo, format!("a float literal used as an index of `{}`; indices are integers", t.name))
                );
            }
            let e = self.expr(cx, x, Some(DType::INDEX), xo)?;
            if e.dtype() != DType::INDEX {
                return Err(self.err(
                    xo,
                    format!("an index of `{}` is `{}`; indices are `i64` (write `as i64`)", t.name, e.dtype()),
                ));
            }
            out.push(e);
        }
        if cx.path.is_empty() {
            for (d, e) in out.iter().enumerate() {
                let ranges: Vec<(crate::expr::VarId, Range)> =
                    cx.locals.iter().map(|(_, v, r)| (v.id, r.clone())).collect();
                if let Some(side) = always_out_of_bounds(e, &decl.shape[d], &ranges) {
                    let idx_o = idx[d].origin.or(origin);
                    return Err(self.err(
                        idx_o,
                        format!(
                            "index {d} of `{}` (`{}`) is out of bounds for every shape: it reaches {} its range 0..{}",
                            t.name,
                            Show(e, &self.func),
                            if side { "past the end of" } else { "below the start of" },
                            Show(&decl.shape[d], &self.func)
                        ),
                    ));
                }
            }
        }
        Ok(Expr::load(buf, out, decl.dtype))
    }

    fn call(
        &mut self,
        cx: &mut StageCx<'_>,
        f: &Ident,
        args: &[te::Expr],
        want: Option<DType>,
        origin: Option<Origin>,
    ) -> Result<Expr> {
        let origin = f.origin.or(origin);
        let arity = |n: usize| -> Result<()> {
            if args.len() != n {
                return Err(
                    self.err(origin, format!("`{}` takes {n} argument(s) but {} were given", f.name, args.len()))
                );
            }
            Ok(())
        };
        // Typed arguments sharing one operand type.
        let operands = |this: &mut Checker, cx: &mut StageCx<'_>, xs: &[te::Expr]| -> Result<Vec<Expr>> {
            let mut extra = vec![];
            let t = xs.iter().find_map(|x| this.hint(cx, x, &mut extra)).or(want).unwrap_or_else(|| {
                match xs.iter().find_map(Checker::lit_kind) {
                    Some(LitKind::Float) => DType::F64,
                    _ => DType::I32,
                }
            });
            let out = xs.iter().map(|x| this.expr(cx, x, Some(t), origin)).collect::<Result<Vec<_>>>()?;
            for x in &out[1..] {
                this.same(out[0].dtype(), x.dtype(), &format!("in `{}`", f.name), origin)?;
            }
            Ok(out)
        };
        match f.name.as_str() {
            "min" | "max" => {
                arity(2)?;
                let xs = operands(self, cx, args)?;
                if !xs[0].dtype().is_numeric() {
                    return Err(self.err(origin, format!("`{}` needs numbers, found `{}`", f.name, xs[0].dtype())));
                }
                let op = if f.name == "min" { BinOp::Min } else { BinOp::Max };
                let [a, b]: [Expr; 2] = xs.try_into().map_err(|_| self.err(origin, "arity"))?;
                Ok(Expr::binary(op, a, b))
            }
            "select" => {
                arity(3)?;
                let c = self.expr(cx, &args[0], Some(DType::Bool), origin)?;
                self.want_bool(&c, origin, "select")?;
                let xs = operands(self, cx, &args[1..])?;
                let [a, b]: [Expr; 2] = xs.try_into().map_err(|_| self.err(origin, "arity"))?;
                Ok(Expr::select(c, a, b))
            }
            name => {
                let Some(b) = Builtin::from_name(name) else {
                    return Err(self.err(origin, format!("unknown function `{name}`")));
                };
                arity(b.arity())?;
                let xs = operands(self, cx, args)?;
                let t = xs[0].dtype();
                let ok = match b {
                    Builtin::Abs => t.is_signed_int() || t.is_float(),
                    Builtin::Clamp | Builtin::Fma => t.is_numeric(),
                    _ => t.is_float(),
                };
                if !ok {
                    let need = match b {
                        Builtin::Abs => "a signed integer or float",
                        Builtin::Clamp | Builtin::Fma => "numbers",
                        _ => "a float",
                    };
                    return Err(self.err(origin, format!("`{name}` needs {need} argument, found `{t}`")));
                }
                Ok(Expr::Call(b, xs.into()))
            }
        }
    }

    /// A reduction in the middle of an expression: computed by a stage of
    /// its own (`NAME_rK`) over the stage's domain and read back.
    fn hoist(
        &mut self,
        cx: &mut StageCx<'_>,
        op: ReduceOp,
        rvars: &[te::RVar],
        value: &te::Expr,
        want: Option<DType>,
        origin: Option<Origin>,
    ) -> Result<Expr> {
        let r = self.reduction(cx, op, rvars, value, want, origin)?;
        let dtype = r.value.dtype();
        // Fresh index variables for the hidden stage.
        let axes: Vec<Var> =
            cx.axes.iter().map(|v| self.func.vars.add_index(self.func.vars.name(v.id).to_string())).collect();
        let map = |e: &Expr| e.subst(&|id| cx.axes.iter().position(|a| a.id == id).map(|i| Expr::Var(axes[i])));
        let mut value = map(&r.value);
        if !cx.path.is_empty() {
            let cond = cx.path.iter().cloned().reduce(Expr::and).map(|c| map(&c)).unwrap_or(Expr::bool(true));
            value = Expr::if_(cond, value, Expr::Const(Scalar::reduce_identity(op, dtype)));
        }
        let body = Body::Reduce(Reduction { op, axes: r.axes, value });
        let name = loop {
            let n = format!("{}_r{}", cx.stage, cx.hidden);
            cx.hidden += 1;
            if !self.taken.contains(&n) {
                break n;
            }
        };
        self.taken.insert(name.clone());
        let sid = StageId(self.func.stages.len() as u32);
        let buf = BufId(self.func.tensors.len() as u32);
        self.func.tensors.push(TensorDecl {
            name: name.clone(),
            dtype,
            shape: cx.shape.clone(),
            kind: TensorKind::Stage(sid),
        });
        self.func.stages.push(Stage {
            name: name.clone(),
            buf,
            axes,
            body,
            origin,
            within: Some(cx.stage.to_string()),
        });
        self.tensors.insert(name, Named::Tensor(buf));
        Ok(Expr::load(buf, cx.axes.iter().map(|v| Expr::Var(*v)), dtype))
    }
}

#[cfg(test)]
mod tests {
    use crate::DType;
    use crate::te::{self, FuncBuilder};

    fn matmul() -> FuncBuilder {
        let mut f = FuncBuilder::new("matmul");
        let a = f.input("a", DType::F32, ["M", "K"]);
        let b = f.input("b", DType::F32, ["K", "N"]);
        f.output(DType::F32, ["M", "N"]);
        let c = f.compute("c", ["i", "j"], |[i, j]| te::sum([("k", 0, "K")], |[k]| a.at([&i, &k]) * b.at([&k, &j])));
        f.ret([c]);
        f
    }

    fn err(f: &FuncBuilder) -> String {
        f.build().unwrap_err().to_string()
    }

    #[test]
    fn matmul_prints_back() {
        let f = matmul().build().unwrap();
        assert_eq!(
            f.to_string(),
            "fn matmul(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {\n    let c: f32[M, N] = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);\n    c\n}"
        );
    }

    #[test]
    fn literals_take_the_operand_type() {
        let mut f = FuncBuilder::new("relu");
        let x = f.input("x", DType::F16, ["N"]);
        let a = f.scalar("a", DType::F16);
        f.output(DType::F16, ["N"]);
        let y = f.compute("y", ["i"], |[i]| te::max(a * x.at([i]) + 1.0, 0.0));
        f.ret([y]);
        let func = f.build().unwrap();
        assert!(func.to_string().contains("max(a * x[i] + 1.0f16, 0.0f16)"), "{func}");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let mut f = matmul();
        f.stages[0].body = te::sum([("k", 0, "K")], |[k]| {
            te::index("a", vec!["i".into(), k.clone()]) * te::index("q", vec![k, "j".into()])
        });
        assert_eq!(err(&f), "matmul: unknown tensor `q`");

        let mut f = matmul();
        f.stages[0].body = te::index("a", vec!["i".into()]);
        assert_eq!(err(&f), "matmul: `a` has 2 dim(s) but is indexed with 1 index(es)");

        let mut f = matmul();
        f.stages[0].body = te::index("a", vec!["i".into(), "j".into()]) * 2;
        assert_eq!(err(&f), "matmul: expected `f32`, found integer literal `2`; write `2.0`");

        let mut f = matmul();
        f.stages[0].body = te::index("a", vec!["i".into(), 1.5.into()]);
        assert_eq!(err(&f), "matmul: a float literal used as an index of `a`; indices are integers");

        let mut f = matmul();
        f.stages[0].body = te::sum([("k", 0, "K")], |[k]| te::index("a", vec!["i".into(), k]))
            + te::index("a", vec!["i".into(), "k".into()]);
        assert_eq!(err(&f), "matmul: reduction variable `k` is used outside its reduction");

        let mut f = matmul();
        f.outputs[0].dtype = DType::F64;
        assert!(err(&f).contains("has type `f64` but its value is `f32`"), "{}", err(&f));
    }

    #[test]
    fn always_out_of_bounds_is_rejected() {
        let mut f = FuncBuilder::new("shift");
        let x = f.input("x", DType::F32, ["N"]);
        f.output(DType::F32, ["N"]);
        let y = f.compute("y", ["i"], |[i]| x.at([i + 1]));
        f.ret([y]);
        let e = f.build().unwrap_err().to_string();
        assert!(e.contains("out of bounds for every shape"), "{e}");

        // Guarded: accepted.
        let mut f = FuncBuilder::new("shift");
        let x = f.input("x", DType::F32, ["N"]);
        f.output(DType::F32, ["N"]);
        let y = f.compute("y", ["i"], |[i]| te::if_((&i + 1).lt("N"), x.at([&i + 1]), 0.0));
        f.ret([y]);
        f.build().unwrap();
    }

    #[test]
    fn nested_reductions_are_hoisted() {
        let mut f = FuncBuilder::new("mean");
        let x = f.input("x", DType::F32, ["N", "C"]);
        f.output(DType::F32, ["N"]);
        let y = f.compute("y", ["n"], |[n]| {
            te::sum([("c", 0, "C")], |[c]| x.at([&n, &c])) / te::Expr::name("C").cast(DType::F32)
        });
        f.ret([y]);
        let func = f.build().unwrap();
        assert_eq!(func.stages.len(), 2);
        assert_eq!(func.stages[0].name, "y_r0");
    }
}
