//! Expansion-time checks: the definition and its schedules are built with
//! `texpr_dsl` exactly as the generated code builds them at run time, and
//! every error the core reports is turned back into a span.
//!
//! The macro does not re-implement type checking. Each AST node handed to
//! the builder gets an [`Origin`] (an index into [`Origins`]); the core's
//! errors carry the origin of the offending tokens, which maps back to a
//! span. Schedules are applied primitive by primitive, with the origin set
//! to the stage name, the loop name, the factor or the whole call as the
//! primitive's arguments are resolved, and then every target is lowered,
//! because some schedule errors (a `compute_at` whose data flow changed)
//! are only found by lowering.

use std::panic::{AssertUnwindSafe, catch_unwind};

use syn::Ident;
use syn::ext::IdentExt;
use texpr_dsl::te::{self, ArgDef, FuncBuilder, StageDef, TypeDef};
use texpr_dsl::{Error, Func, Origin, Program, Scalar, Schedule, Target};

use crate::error::{Sp, sp};
use crate::parse::ast::{Arg, Body, Expr, ExprKind, FuncDef, LitValue, Prim, PrimKind, ScheduleBlock, TensorType};

/// The spans behind the origins handed to the core.
#[derive(Default)]
pub struct Origins(Vec<Sp>);

impl Origins {
    /// A new origin for a span.
    pub fn add(&mut self, s: Sp) -> Option<Origin> {
        self.0.push(s);
        Some(Origin(self.0.len() as u32 - 1))
    }

    fn get(&self, o: Option<Origin>) -> Option<Sp> {
        o.and_then(|o| self.0.get(o.0 as usize).copied())
    }

    /// A core error at its origin, or at `fallback`.
    fn error(&self, e: &Error, fallback: Sp) -> syn::Error {
        let at = self.get(e.origin()).unwrap_or(fallback);
        at.error(e.message())
    }
}

/// A user-facing name (raw identifiers lose their `r#`).
pub fn name(id: &Ident) -> String {
    id.unraw().to_string()
}

fn ident(id: &Ident, o: &mut Origins) -> te::Ident {
    te::Ident::at(name(id), o.add(sp(id)))
}

/// An expression for the builder.
pub fn expr(e: &Expr, o: &mut Origins) -> te::Expr {
    let x = match &e.kind {
        ExprKind::Name(n) => te::Expr::name(name(n)),
        ExprKind::Int(v) => te::Expr::int(*v),
        ExprKind::Float(v) => te::Expr::float(*v),
        ExprKind::Bool(b) => te::Expr::bool(*b),
        ExprKind::Typed(d, LitValue::Int(v)) => te::Expr::typed(Scalar::from_i128(*d, *v)),
        ExprKind::Typed(d, LitValue::Float(v)) => te::Expr::typed(Scalar::from_f64(*d, *v)),
        ExprKind::Index(t, idx) => {
            let t = ident(t, o);
            te::index(t, idx.iter().map(|i| expr(i, o)).collect())
        }
        ExprKind::Unary(op, a) => te::unary(*op, expr(a, o)),
        ExprKind::Binary(op, a, b) => {
            let a = expr(a, o);
            te::binary(*op, a, expr(b, o))
        }
        ExprKind::Cmp(op, a, b) => {
            let a = expr(a, o);
            te::cmp(*op, a, expr(b, o))
        }
        ExprKind::And(a, b) => {
            let a = expr(a, o);
            te::and(a, expr(b, o))
        }
        ExprKind::Or(a, b) => {
            let a = expr(a, o);
            te::or(a, expr(b, o))
        }
        ExprKind::Cast(a, t) => expr(a, o).cast(t.dtype),
        ExprKind::If(c, a, b) => {
            let c = expr(c, o);
            let a = expr(a, o);
            te::if_(c, a, expr(b, o))
        }
        ExprKind::Call(f, args) => {
            let f = ident(f, o);
            te::call(f, args.iter().map(|a| expr(a, o)).collect())
        }
        ExprKind::Reduce(op, vars, body) => {
            let vars = vars
                .iter()
                .map(|v| {
                    let n = ident(&v.name, o);
                    let lo = expr(&v.lo, o);
                    te::RVar { name: n, lo, hi: expr(&v.hi, o) }
                })
                .collect();
            te::reduce(*op, vars, expr(body, o))
        }
    };
    x.at(o.add(e.sp))
}

fn type_def(t: &TensorType, o: &mut Origins) -> TypeDef {
    let shape = t.dims.iter().map(|d| expr(d, o)).collect();
    TypeDef { dtype: t.elem.dtype, shape, origin: o.add(t.sp) }
}

/// The builder for a definition, with origins.
pub fn builder(f: &FuncDef, body: &Body, o: &mut Origins) -> FuncBuilder {
    let mut b = FuncBuilder::new(ident(&f.name, o));
    b.doc = f.doc.clone();
    for a in &f.args {
        b.args.push(match a {
            Arg::Tensor { name, ty } => ArgDef::Tensor { name: ident(name, o), ty: type_def(ty, o) },
            Arg::Scalar { name, dtype } => ArgDef::Scalar { name: ident(name, o), dtype: dtype.dtype },
        });
    }
    b.outputs = f.outputs.iter().map(|t| type_def(t, o)).collect();
    for s in &body.stages {
        let stage = StageDef {
            name: ident(&s.name, o),
            ty: s.ty.as_ref().map(|t| type_def(t, o)),
            idx: s.idx.iter().map(|i| ident(i, o)).collect(),
            body: expr(&s.body, o),
        };
        b.add_stage(stage);
    }
    b.ret = body.ret.iter().map(|r| ident(r, o)).collect();
    b
}

/// Runs `f`, turning a panic inside the core (a texpr bug) into an error.
fn guarded<T>(at: Sp, f: impl FnOnce() -> Result<T, syn::Error>) -> Result<T, syn::Error> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(at.error(format!("internal error in texpr while checking this function: {what} — this is a bug in texpr, please report it")))
        }
    }
}

/// Checks a function and its schedules; every error found, at its span.
pub fn check(f: &FuncDef, body: &Body) -> Vec<syn::Error> {
    let fallback = sp(&f.name);
    let r = guarded(fallback, || {
        let mut o = Origins::default();
        let b = builder(f, body, &mut o);
        let func = b.build().map_err(|e| o.error(&e, fallback))?;
        Ok(check_schedules(f, &func, &mut o))
    });
    match r {
        Ok(errors) => errors,
        Err(e) => vec![e],
    }
}

fn check_schedules(f: &FuncDef, func: &Func, o: &mut Origins) -> Vec<syn::Error> {
    let mut errors: Vec<Option<syn::Error>> = vec![];
    let mut program = Program::new(func.clone());
    for block in &f.schedules {
        if !block.complete {
            // Its syntax errors are reported already.
            errors.push(None);
            continue;
        }
        match schedule(func, block, o) {
            Ok(s) => program = program.with_schedule(s),
            Err(e) => errors.push(Some(e)),
        }
    }
    if !errors.is_empty() {
        return errors.into_iter().flatten().collect();
    }
    let mut errors = vec![];
    // Lowering finds what the primitives alone cannot (data flow after
    // later primitives). Report each distinct error once.
    let mut seen: Vec<String> = vec![];
    for target in Target::ALL {
        if let Err(e) = program.lower(target) {
            let block = f.schedules.iter().find(|b| b.class.is_none_or(|c| c == target.class()));
            let fallback = block.map(|b| b.sp).unwrap_or(sp(&f.name));
            let msg = e.message();
            if seen.contains(&msg) {
                continue;
            }
            seen.push(msg);
            let err = match o.get(e.origin()) {
                Some(at) => at.error(e.message()),
                None => fallback.error(format!("cannot lower `{}` for {target}: {}", name(&f.name), e.message())),
            };
            errors.push(err);
        }
    }
    errors
}

/// Applies one schedule block; the first error, at its span.
pub fn schedule(func: &Func, block: &ScheduleBlock, o: &mut Origins) -> Result<Schedule, syn::Error> {
    let mut s = Schedule::new(func, block.class);
    for p in &block.prims {
        apply(&mut s, p, o).map_err(|(e, fallback)| o.error(&e, fallback))?;
    }
    Ok(s)
}

type Fail = (Error, Sp);

fn stage(s: &mut Schedule, id: &Ident, o: &mut Origins) -> Result<texpr_dsl::StageRef, Fail> {
    s.at(o.add(sp(id)));
    s.stage(&name(id)).map_err(|e| (e, sp(id)))
}

fn axis(s: &mut Schedule, st: texpr_dsl::StageRef, id: &Ident, o: &mut Origins) -> Result<texpr_dsl::AxisRef, Fail> {
    s.at(o.add(sp(id)));
    s.axis(st, &name(id)).map_err(|e| (e, sp(id)))
}

/// One primitive, resolving names as the generated code does (see
/// `generate::builder::prim`, which must stay in step with this).
fn apply(s: &mut Schedule, p: &Prim, o: &mut Origins) -> Result<(), Fail> {
    let st = stage(s, &p.stage, o)?;
    let call = p.sp;
    let fail = |e: Error| (e, call);
    match &p.kind {
        PrimKind::Split { axis: a, factor, names } => {
            let a = axis(s, st, a, o)?;
            s.at(o.add(factor.sp));
            match names {
                Some([x, y]) => s.split_named(a, factor.value, &name(x), &name(y)).map(drop),
                None => s.split(a, factor.value).map(drop),
            }
            .map_err(fail)
        }
        PrimKind::Tile { x, y, fx, fy, names } => {
            let ax = axis(s, st, x, o)?;
            let ay = axis(s, st, y, o)?;
            // Point at the offending factor, else at the second loop
            // (the same loop twice), else at the call.
            let at = if fx.value < 1 {
                fx.sp
            } else if fy.value < 1 {
                fy.sp
            } else if ax == ay {
                sp(y)
            } else {
                call
            };
            s.at(o.add(at));
            match names {
                Some(n) => {
                    let n = [name(&n[0]), name(&n[1]), name(&n[2]), name(&n[3])];
                    s.tile_named(ax, ay, fx.value, fy.value, [&n[0], &n[1], &n[2], &n[3]]).map(drop)
                }
                None => s.tile(ax, ay, fx.value, fy.value).map(drop),
            }
            .map_err(fail)
        }
        PrimKind::Fuse { a, b, name: n } => {
            let xa = axis(s, st, a, o)?;
            let xb = axis(s, st, b, o)?;
            s.at(o.add(call));
            match n {
                Some(n) => s.fuse_named(xa, xb, &name(n)).map(drop),
                None => s.fuse(xa, xb).map(drop),
            }
            .map_err(fail)
        }
        PrimKind::Reorder { axes } => {
            let mut refs = vec![];
            let mut at = call;
            for a in axes {
                refs.push(axis(s, st, a, o)?);
            }
            // A loop named twice: point at its second mention.
            if let Some(i) = (0..refs.len()).find(|i| refs[..*i].contains(&refs[*i])) {
                at = sp(&axes[i]);
            }
            s.at(o.add(at));
            s.reorder(&refs).map_err(fail)
        }
        PrimKind::Vectorize { axis: a } => {
            let a = axis(s, st, a, o)?;
            s.at(o.add(call));
            s.vectorize(a).map_err(fail)
        }
        PrimKind::Unroll { axis: a } => {
            let a = axis(s, st, a, o)?;
            s.at(o.add(call));
            s.unroll(a).map_err(fail)
        }
        PrimKind::Parallel { axis: a } => {
            let a = axis(s, st, a, o)?;
            s.at(o.add(call));
            s.parallel(a).map_err(fail)
        }
        PrimKind::Bind { axis: a, thread } => {
            let a = axis(s, st, a, o)?;
            s.at(o.add(call));
            s.bind(a, *thread).map_err(fail)
        }
        PrimKind::ComputeAt { consumer, axis: a } => {
            let c = stage(s, consumer, o)?;
            let a = axis(s, c, a, o)?;
            s.at(o.add(call));
            s.compute_at(st, a).map_err(fail)
        }
        PrimKind::ComputeInline => {
            s.at(o.add(call));
            s.compute_inline(st).map_err(fail)
        }
        PrimKind::ComputeRoot => {
            s.at(o.add(call));
            s.compute_root(st).map_err(fail)
        }
        PrimKind::CacheRead { tensor, scope, name: n } => {
            s.at(o.add(call));
            match n {
                Some(n) => s.cache_read_named(st, &name(tensor), *scope, &name(n)).map(drop),
                None => s.cache_read(st, &name(tensor), *scope).map(drop),
            }
            .map_err(fail)
        }
        PrimKind::CacheWrite { scope, name: n } => {
            s.at(o.add(call));
            match n {
                Some(n) => s.cache_write_named(st, *scope, &name(n)).map(drop),
                None => s.cache_write(st, *scope).map(drop),
            }
            .map_err(fail)
        }
    }
}
