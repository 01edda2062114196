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
use texpr_dsl::{Error, Origin, Program, Scalar, Schedule, Scope, Target, TargetClass, ThreadAxis};

use crate::error::{Sp, sp};
use crate::parse::ast::{Arg, Body, Expr, ExprKind, FuncDef, LitValue, Prim, PrimKind, TensorType};

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

/// How long the core may take to check one function before the macro
/// gives up (a texpr bug: checking is symbolic and normally takes
/// milliseconds). `TEXPR_MACRO_CHECK_TIMEOUT` (seconds) overrides it.
const TIMEOUT_S: u64 = 120;

/// The checker thread's stack: deep expressions (a sum of thousands of
/// terms) recurse deeply through type checking and lowering, and a proc
/// macro is usually built without optimizations. Address space only: the
/// pages a shallow definition never touches are never committed.
const CHECK_STACK: usize = 1 << 30;

/// Checks a function and its schedules; every error found, at its span.
///
/// The spans stay on this thread; the core runs on a worker thread over
/// plain data (names and origins), so that a panic or a runaway proof in
/// the core becomes a compile error instead of a crashed or hung rustc.
pub fn check(f: &FuncDef, body: &Body) -> Vec<syn::Error> {
    let at = sp(&f.name);
    let mut o = Origins::default();
    let b = builder(f, body, &mut o);
    let fname_origin = o.add(at);
    let blocks: Vec<PlanBlock> = f
        .schedules
        .iter()
        .map(|blk| PlanBlock {
            class: blk.class,
            complete: blk.complete,
            at: o.add(blk.sp),
            prims: blk.prims.iter().map(|p| plan(p, &mut o)).collect(),
        })
        .collect();
    let timeout = std::env::var("TEXPR_MACRO_CHECK_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(TIMEOUT_S);
    let (tx, rx) = std::sync::mpsc::channel();
    let cancel = texpr_dsl::cancel::Cancel::new();
    let watched = cancel.clone();
    let worker = std::thread::Builder::new().name("texpr-check".into()).stack_size(CHECK_STACK).spawn(move || {
        watched.install();
        let r = catch_unwind(AssertUnwindSafe(|| run(&b, &blocks, fname_origin)));
        let _ = tx.send(r.map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        }));
    });
    let bug = |what: String| {
        vec![at.error(format!(
            "internal error in texpr while checking `{}`: {what} — this is a bug in texpr, please report it",
            name(&f.name)
        ))]
    };
    if let Err(e) = worker {
        return bug(format!("cannot start the checker thread: {e}"));
    }
    match rx.recv_timeout(std::time::Duration::from_secs(timeout)) {
        Ok(Ok(found)) => found
            .iter()
            .map(|(e, fallback, prefix)| {
                let at = o.get(e.origin()).or_else(|| o.get(*fallback)).unwrap_or(at);
                at.error(format!("{prefix}{}", e.message()))
            })
            .collect(),
        Ok(Err(panic)) => bug(format!("panic: {panic}")),
        Err(_) => {
            // The worker stops at its next pass (the prover answers at once).
            cancel.cancel();
            bug(format!("checking did not finish in {timeout} s"))
        }
    }
}

/// A name and the origin of its tokens.
struct Name {
    name: String,
    at: Option<Origin>,
}

fn pname(id: &Ident, o: &mut Origins) -> Name {
    Name { name: name(id), at: o.add(sp(id)) }
}

/// A schedule block as plain data.
struct PlanBlock {
    class: Option<TargetClass>,
    complete: bool,
    at: Option<Origin>,
    prims: Vec<PlanPrim>,
}

/// A primitive as plain data: names, values and origins.
struct PlanPrim {
    stage: Name,
    /// The call `stage.prim(...)`.
    call: Option<Origin>,
    kind: PlanKind,
}

enum PlanKind {
    Split {
        axis: Name,
        factor: i64,
        factor_at: Option<Origin>,
        names: Option<[String; 2]>,
    },
    Tile {
        x: Name,
        y: Name,
        fx: i64,
        fy: i64,
        fx_at: Option<Origin>,
        fy_at: Option<Origin>,
        names: Option<[String; 4]>,
    },
    Fuse {
        a: Name,
        b: Name,
        name: Option<String>,
    },
    Reorder {
        axes: Vec<Name>,
    },
    Vectorize(Name),
    Unroll(Name),
    Parallel(Name),
    Bind(Name, ThreadAxis),
    ComputeAt {
        consumer: Name,
        axis: Name,
    },
    ComputeInline,
    ComputeRoot,
    CacheRead {
        tensor: String,
        scope: Scope,
        name: Option<String>,
    },
    CacheWrite {
        scope: Scope,
        name: Option<String>,
    },
}

fn plan(p: &Prim, o: &mut Origins) -> PlanPrim {
    let stage = pname(&p.stage, o);
    let call = o.add(p.sp);
    let kind = match &p.kind {
        PrimKind::Split { axis, factor, names } => PlanKind::Split {
            axis: pname(axis, o),
            factor: factor.value,
            factor_at: o.add(factor.sp),
            names: names.as_ref().map(|[a, b]| [name(a), name(b)]),
        },
        PrimKind::Tile { x, y, fx, fy, names } => PlanKind::Tile {
            x: pname(x, o),
            y: pname(y, o),
            fx: fx.value,
            fy: fy.value,
            fx_at: o.add(fx.sp),
            fy_at: o.add(fy.sp),
            names: names.as_ref().map(|n| [name(&n[0]), name(&n[1]), name(&n[2]), name(&n[3])]),
        },
        PrimKind::Fuse { a, b, name: n } => {
            PlanKind::Fuse { a: pname(a, o), b: pname(b, o), name: n.as_ref().map(name) }
        }
        PrimKind::Reorder { axes } => PlanKind::Reorder { axes: axes.iter().map(|a| pname(a, o)).collect() },
        PrimKind::Vectorize { axis } => PlanKind::Vectorize(pname(axis, o)),
        PrimKind::Unroll { axis } => PlanKind::Unroll(pname(axis, o)),
        PrimKind::Parallel { axis } => PlanKind::Parallel(pname(axis, o)),
        PrimKind::Bind { axis, thread } => PlanKind::Bind(pname(axis, o), *thread),
        PrimKind::ComputeAt { consumer, axis } => {
            PlanKind::ComputeAt { consumer: pname(consumer, o), axis: pname(axis, o) }
        }
        PrimKind::ComputeInline => PlanKind::ComputeInline,
        PrimKind::ComputeRoot => PlanKind::ComputeRoot,
        PrimKind::CacheRead { tensor, scope, name: n } => {
            PlanKind::CacheRead { tensor: name(tensor), scope: *scope, name: n.as_ref().map(name) }
        }
        PrimKind::CacheWrite { scope, name: n } => PlanKind::CacheWrite { scope: *scope, name: n.as_ref().map(name) },
    };
    PlanPrim { stage, call, kind }
}

/// An error found, the origin to use when it has none, and a prefix.
type Found = (Error, Option<Origin>, String);

/// Builds, schedules and lowers (on the checker thread).
fn run(b: &FuncBuilder, blocks: &[PlanBlock], fname: Option<Origin>) -> Vec<Found> {
    let func = match b.build() {
        Ok(f) => f,
        Err(e) => return vec![(e, fname, String::new())],
    };
    let mut found = vec![];
    let mut program = Program::new(func.clone());
    let mut complete = true;
    for block in blocks {
        if !block.complete {
            // Its syntax errors are reported already.
            complete = false;
            continue;
        }
        let mut s = Schedule::new(&func, block.class);
        match block.prims.iter().try_for_each(|p| apply(&mut s, p)) {
            Ok(()) => program = program.with_schedule(s),
            Err((e, fallback)) => found.push((e, fallback, String::new())),
        }
    }
    if !found.is_empty() || !complete {
        return found;
    }
    // Lowering finds what the primitives alone cannot (data flow after
    // later primitives). Report each distinct error once.
    let mut seen: Vec<String> = vec![];
    for target in Target::ALL {
        if let Err(e) = program.lower(target) {
            let msg = e.message();
            if seen.contains(&msg) {
                continue;
            }
            seen.push(msg);
            let block = blocks.iter().find(|b| b.class.is_none_or(|c| c == target.class()));
            let fallback = block.map(|b| b.at).unwrap_or(fname);
            let prefix = if e.origin().is_some() {
                String::new()
            } else {
                format!("cannot lower `{}` for {target}: ", b.name.name)
            };
            found.push((e, fallback, prefix));
        }
    }
    found
}

type Fail = (Error, Option<Origin>);

fn stage(s: &mut Schedule, n: &Name) -> Result<texpr_dsl::StageRef, Fail> {
    s.at(n.at);
    s.stage(&n.name).map_err(|e| (e, n.at))
}

fn axis(s: &mut Schedule, st: texpr_dsl::StageRef, n: &Name) -> Result<texpr_dsl::AxisRef, Fail> {
    s.at(n.at);
    s.axis(st, &n.name).map_err(|e| (e, n.at))
}

/// One primitive, resolving names as the generated code does (see
/// `generate::builder::prim`, which must stay in step with this). The
/// origin is set to the stage name, then each loop name as it is resolved,
/// then the factor or the call for the primitive itself.
fn apply(s: &mut Schedule, p: &PlanPrim) -> Result<(), Fail> {
    let st = stage(s, &p.stage)?;
    let call = p.call;
    let fail = |e: Error| (e, call);
    match &p.kind {
        PlanKind::Split { axis: a, factor, factor_at, names } => {
            let a = axis(s, st, a)?;
            s.at(*factor_at);
            match names {
                Some([x, y]) => s.split_named(a, *factor, x, y).map(drop),
                None => s.split(a, *factor).map(drop),
            }
            .map_err(fail)
        }
        PlanKind::Tile { x, y, fx, fy, fx_at, fy_at, names } => {
            let ax = axis(s, st, x)?;
            let ay = axis(s, st, y)?;
            // Point at the offending factor, else at the second loop
            // (the same loop twice), else at the call.
            let at = if *fx < 1 {
                *fx_at
            } else if *fy < 1 {
                *fy_at
            } else if ax == ay {
                y.at
            } else {
                call
            };
            s.at(at);
            match names {
                Some(n) => s.tile_named(ax, ay, *fx, *fy, [&n[0], &n[1], &n[2], &n[3]]).map(drop),
                None => s.tile(ax, ay, *fx, *fy).map(drop),
            }
            .map_err(fail)
        }
        PlanKind::Fuse { a, b, name: n } => {
            let xa = axis(s, st, a)?;
            let xb = axis(s, st, b)?;
            s.at(call);
            match n {
                Some(n) => s.fuse_named(xa, xb, n).map(drop),
                None => s.fuse(xa, xb).map(drop),
            }
            .map_err(fail)
        }
        PlanKind::Reorder { axes } => {
            let mut refs = vec![];
            for a in axes {
                refs.push(axis(s, st, a)?);
            }
            // A loop named twice: point at its second mention.
            let at = (0..refs.len()).find(|i| refs[..*i].contains(&refs[*i])).map(|i| axes[i].at).unwrap_or(call);
            s.at(at);
            s.reorder(&refs).map_err(fail)
        }
        PlanKind::Vectorize(a) => {
            let a = axis(s, st, a)?;
            s.at(call);
            s.vectorize(a).map_err(fail)
        }
        PlanKind::Unroll(a) => {
            let a = axis(s, st, a)?;
            s.at(call);
            s.unroll(a).map_err(fail)
        }
        PlanKind::Parallel(a) => {
            let a = axis(s, st, a)?;
            s.at(call);
            s.parallel(a).map_err(fail)
        }
        PlanKind::Bind(a, thread) => {
            let a = axis(s, st, a)?;
            s.at(call);
            s.bind(a, *thread).map_err(fail)
        }
        PlanKind::ComputeAt { consumer, axis: a } => {
            let c = stage(s, consumer)?;
            let a = axis(s, c, a)?;
            s.at(call);
            s.compute_at(st, a).map_err(fail)
        }
        PlanKind::ComputeInline => {
            s.at(call);
            s.compute_inline(st).map_err(fail)
        }
        PlanKind::ComputeRoot => {
            s.at(call);
            s.compute_root(st).map_err(fail)
        }
        PlanKind::CacheRead { tensor, scope, name: n } => {
            s.at(call);
            match n {
                Some(n) => s.cache_read_named(st, tensor, *scope, n).map(drop),
                None => s.cache_read(st, tensor, *scope).map(drop),
            }
            .map_err(fail)
        }
        PlanKind::CacheWrite { scope, name: n } => {
            s.at(call);
            match n {
                Some(n) => s.cache_write_named(st, *scope, n).map(drop),
                None => s.cache_write(st, *scope).map(drop),
            }
            .map_err(fail)
        }
    }
}
