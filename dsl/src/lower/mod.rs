//! Lowering: a scheduled definition → a verified, bounds-proven loop nest.
//!
//! The pipeline is the explicit list [`PASSES`]; the IR is verified after
//! every pass (a failure is an [`InternalError`](crate::InternalError)).
//! With `TEXPR_DUMP=passes` the IR is printed to stderr after each pass that
//! changed it, with the pass's time.
//!
//! | pass | does |
//! |---|---|
//! | `build` | schedule → loop nest: inlining, bounds inference, loops, tail guards (module `build`) |
//! | `simplify` | constant folding, affine canonicalization, context-aware removal of decided guards |
//! | `pad_private_tiles` | GPU only: register tiles computed whole (tail-clamped loops that only touch `local`/`shared` tiles run their full constant extent) |
//! | `partition_tails` | constant-extent main loop + scalar tail for vectorized/unrolled loops |
//! | `simplify` | again, on the partitioned nest (only if it changed) |
//! | `prove_bounds` | every access in bounds (symbolic dims; the rest per call) |
//! | `flatten` | one row-major index per access, canonicalized |
//! | `decide_guards` | CPU only: guards the nest decides, one-iteration loops as `let`s (module [`opt`]) |
//! | `unroll_tails` | CPU only: short tails of vectorized/unrolled loops as guarded unrolls |
//! | `partition_loops` | CPU only: loops cut where a tail or padding guard inside changes value |
//! | `decide_guards` | again, on the parts partitioning cut off |
//! | `unswitch` | CPU only: loop-invariant conditions hoisted above their loops, dead copies pruned |
//! | `reroll` | CPU only: unrolled loops around serial tails made serial |
//! | `promote_accumulators` | CPU only: reductions accumulate in small register-sized temporaries |
//! | `hoist_divisions` | CPU and GPU: divisions by run-time values computed once per loop iteration |

mod build;
pub mod opt;
mod overflow;
mod passes;
pub mod prove_bounds;
mod verify;

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::schedule::Schedule;
use crate::stmt::LoweredFunc;
use crate::target::{Target, TargetClass};

pub use prove_bounds::Unproven;

/// One pass after `build`: a name and a function over the nest.
pub struct Pass {
    /// Its name (traces, [`Lowered::passes`], verifier errors).
    pub name: &'static str,
    /// What it does.
    run: fn(&mut LoweredFunc, &mut PassState),
    /// A clean-up (`simplify`): skipped when no pass changed the nest since
    /// the last one.
    cleanup: bool,
    /// From this pass on, the verifier also checks that vectorized and
    /// unrolled loops have constant extents (`partition_tails` made them so).
    fixed_extents: bool,
}

/// What passes need besides the nest, and what analyses leave.
struct PassState {
    target: Target,
    /// Run the bounds proof (otherwise `unproven` stays empty).
    prove: bool,
    unproven: Vec<Unproven>,
    /// The nest before flattening (kept by `prove_bounds`).
    nest: Option<LoweredFunc>,
}

/// The passes after `build`, in order. (`flatten` canonicalizes the indices
/// it builds, so no `simplify` follows it; the second `simplify` runs only
/// when `partition_tails` changed the nest; `pad_private_tiles` does
/// nothing for the CPU and the interpreter; the passes after `flatten` are
/// the CPU's loop-nest optimizations, module [`opt`], and run for
/// [`Target::Cpu`] only.)
pub const PASSES: [Pass; 14] = [
    Pass { name: "simplify", run: simplify_pass, cleanup: true, fixed_extents: false },
    Pass { name: "pad_private_tiles", run: pad_private_tiles_pass, cleanup: false, fixed_extents: false },
    Pass { name: "partition_tails", run: partition_tails_pass, cleanup: false, fixed_extents: true },
    Pass { name: "simplify", run: simplify_pass, cleanup: true, fixed_extents: true },
    Pass { name: "prove_bounds", run: prove_bounds_pass, cleanup: false, fixed_extents: true },
    Pass { name: "flatten", run: flatten_pass, cleanup: false, fixed_extents: true },
    Pass { name: "decide_guards", run: |f, s| cpu(s, f, opt::decide_guards), cleanup: false, fixed_extents: true },
    Pass { name: "unroll_tails", run: |f, s| cpu(s, f, opt::unroll_tails), cleanup: false, fixed_extents: true },
    Pass { name: "partition_loops", run: |f, s| cpu(s, f, opt::partition_loops), cleanup: false, fixed_extents: true },
    Pass { name: "decide_guards", run: |f, s| cpu(s, f, opt::decide_guards), cleanup: false, fixed_extents: true },
    Pass { name: "unswitch", run: |f, s| cpu(s, f, opt::unswitch), cleanup: false, fixed_extents: true },
    Pass { name: "reroll", run: |f, s| cpu(s, f, opt::reroll), cleanup: false, fixed_extents: true },
    Pass {
        name: "promote_accumulators",
        run: |f, s| cpu(s, f, opt::promote_accumulators),
        cleanup: false,
        fixed_extents: true,
    },
    Pass {
        name: "hoist_divisions",
        run: |f, s| match s.target {
            Target::Cpu => opt::hoist_divisions(f, true),
            Target::OpenCl | Target::Cuda => opt::hoist_divisions(f, false),
            Target::Interp => {}
        },
        cleanup: false,
        fixed_extents: true,
    },
];

/// Runs a pass of [`opt`] when lowering for the CPU.
fn cpu(s: &PassState, f: &mut LoweredFunc, pass: fn(&mut LoweredFunc)) {
    if s.target == Target::Cpu {
        pass(f)
    }
}

fn simplify_pass(f: &mut LoweredFunc, _: &mut PassState) {
    passes::simplify(f)
}

fn pad_private_tiles_pass(f: &mut LoweredFunc, s: &mut PassState) {
    if s.target.class() == TargetClass::Gpu {
        passes::pad_private_tiles(f)
    }
}

fn partition_tails_pass(f: &mut LoweredFunc, s: &mut PassState) {
    passes::partition_tails(f, s.target.class() == TargetClass::Gpu)
}

/// An analysis: the accesses the symbolic proof cannot establish.
fn prove_bounds_pass(f: &mut LoweredFunc, s: &mut PassState) {
    if s.prove {
        s.unproven = prove_bounds::prove(f);
    }
    s.nest = Some(f.clone());
}

fn flatten_pass(f: &mut LoweredFunc, _: &mut PassState) {
    passes::flatten(f)
}

/// The result of lowering.
#[derive(Clone, Debug)]
pub struct Lowered {
    /// The readable loop nest, before flattening (what `Display` prints).
    pub nest: LoweredFunc,
    /// The flat loop nest that backends compile and the interpreter runs.
    pub flat: LoweredFunc,
    /// Accesses the symbolic proof could not establish; proven per call.
    pub unproven: Vec<Unproven>,
    /// Calls whose dims are at most this (and whose `i64` scalar inputs
    /// are within ±this) cannot overflow the flat nest's index arithmetic;
    /// others are checked with their values (`None`: every call is).
    pub index_limit: Option<i64>,
    /// Name, time and whether it changed the IR, per pass.
    pub passes: Vec<(String, Duration, bool)>,
}

impl Lowered {
    /// Proves every access in bounds for concrete dims (in [`Func::dims`]
    /// order). Cheap when the symbolic proof covered everything.
    ///
    /// [`Func::dims`]: crate::Func::dims
    pub fn check_dims(&self, dims: &[i64]) -> Result<()> {
        self.check_call(dims, &[])
    }

    /// `true` when a call with these dims and scalar inputs needs no
    /// [`Lowered::check_call`]: every access was proven for all dims and its
    /// index arithmetic cannot overflow for these values.
    pub fn call_is_proven(&self, dims: &[i64], params: &[crate::value::Scalar]) -> bool {
        let Some(limit) = self.index_limit else { return false };
        self.unproven.is_empty()
            && dims.iter().all(|d| *d <= limit)
            && params.iter().all(|p| {
                p.dtype() != crate::DType::INDEX || p.as_i64().is_some_and(|v| v.unsigned_abs() <= limit as u64)
            })
    }

    /// Checks a call with concrete dims (in [`Func::dims`] order) and scalar
    /// inputs: the index arithmetic of the nest cannot overflow `i64` (an
    /// `Error::Shape` that says what overflows), then every access is in
    /// bounds (an `Error::Bounds`). Cheap when [`Lowered::call_is_proven`].
    ///
    /// [`Func::dims`]: crate::Func::dims
    pub fn check_call(&self, dims: &[i64], params: &[crate::value::Scalar]) -> Result<()> {
        if self.call_is_proven(dims, params) {
            return Ok(());
        }
        let dim_ivs: Vec<_> = dims.iter().map(|d| overflow::Iv::point(*d as i128)).collect();
        let param_ivs: Vec<_> = params
            .iter()
            .map(|p| match p.as_i64() {
                Some(v) if p.dtype() == crate::DType::INDEX => overflow::Iv::point(v as i128),
                _ => overflow::Iv { lo: i64::MIN as i128, hi: i64::MAX as i128 },
            })
            .collect();
        if let Err(o) = overflow::check(&self.flat, &dim_ivs, &param_ivs) {
            let named: Vec<String> = self.flat.dims.iter().zip(dims).map(|(n, v)| format!("{n} = {v}")).collect();
            let with = if named.is_empty() { String::new() } else { format!(" for {}", named.join(", ")) };
            return Err(crate::error::Error::Shape(crate::error::ShapeError {
                func: self.nest.name.clone(),
                message: format!("{}{with}", o.describe(&self.flat)),
            }));
        }
        if self.unproven.is_empty() {
            return Ok(());
        }
        let bound = passes::bind_dims(&self.nest, dims);
        match prove_bounds::prove(&bound).first() {
            None => Ok(()),
            Some(u) => Err(u.to_error(&self.nest.name, Some(dims))),
        }
    }
}

impl fmt::Display for Lowered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.nest)
    }
}

/// `true` if `what` (or `all`) is named in the comma-separated
/// `TEXPR_DUMP`: `passes` here; `prepared`, `clif`, `opt`, `asm`, `time` in
/// the JIT; `time` (kernel times) in the CUDA runtime.
pub fn dump_enabled(what: &str) -> bool {
    std::env::var("TEXPR_DUMP").is_ok_and(|v| v.split(',').any(|x| x.trim() == what || x.trim() == "all"))
}

/// `true` when `TEXPR_VERIFY` is set (and not `0`): every pipeline runs
/// its verifier even in release builds — the GPU kernel IR's after GPU
/// lowering, Cranelift's on every function the JIT builds. (Lowering's
/// verifier runs after every pass always; debug builds, the tests among
/// them, verify everything always.)
pub fn verify_enabled() -> bool {
    std::env::var("TEXPR_VERIFY").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Lowers a schedule for a target. With `TEXPR_DUMP=passes` in the
/// environment, prints the trace of [`lower_traced`] to stderr.
pub fn lower(sched: &Schedule, target: Target) -> Result<Lowered> {
    crate::deep::with_stack(sched.func.depth(), || lower_shallow(sched, target))
}

fn lower_shallow(sched: &Schedule, target: Target) -> Result<Lowered> {
    if dump_enabled("passes") {
        let mut trace = String::new();
        let r = lower_impl(sched, target, Some(&mut trace), true);
        eprint!("{trace}");
        r
    } else {
        lower_impl(sched, target, None, true)
    }
}

/// A lowered program whose symbolic bounds proof has not run yet: a
/// backend can compile [`ProofPending::lowered`] (backends never read
/// [`Lowered::unproven`]; it is a run-time concern) while
/// [`ProofPending::prove`] runs on another thread, and
/// [`ProofPending::finish`] puts the two together. The proof is ~1 ms of a
/// matrix product's ~4 ms JIT latency.
#[derive(Debug)]
pub struct ProofPending {
    lowered: Lowered,
    /// The proof already ran in lowering (`TEXPR_DUMP=passes`).
    proven: bool,
}

impl ProofPending {
    /// The program to compile. Its `unproven` list may be empty until
    /// [`ProofPending::finish`]: not for running.
    pub fn lowered(&self) -> &Lowered {
        &self.lowered
    }

    /// The `prove_bounds` pass on the nest: the accesses left to prove per
    /// call, and the time it took (what lowering found, when it already
    /// ran the proof).
    pub fn prove(&self) -> Proof {
        if self.proven {
            let took = self.lowered.passes.iter().find(|p| p.0 == "prove_bounds").map_or(Duration::ZERO, |p| p.1);
            return Proof { unproven: self.lowered.unproven.clone(), index_limit: self.lowered.index_limit, took };
        }
        let t = Instant::now();
        let unproven = prove_bounds::prove(&self.lowered.nest);
        let index_limit = overflow::safe_limit(&self.lowered.flat);
        Proof { unproven, index_limit, took: t.elapsed() }
    }

    /// The lowered program with its proof.
    pub fn finish(self, proof: Proof) -> Lowered {
        let Proof { unproven, index_limit, took } = proof;
        let mut l = self.lowered;
        l.unproven = unproven;
        l.index_limit = index_limit;
        if let Some(p) = l.passes.iter_mut().find(|p| p.0 == "prove_bounds") {
            p.1 = took;
        }
        l
    }
}

/// What [`ProofPending::prove`] finds.
#[derive(Clone, Debug)]
pub struct Proof {
    /// Accesses left to prove per call.
    pub unproven: Vec<Unproven>,
    /// See [`Lowered::index_limit`].
    pub index_limit: Option<i64>,
    /// How long it took.
    pub took: Duration,
}

/// [`lower`] without the bounds proof, for running it beside compilation.
/// With `TEXPR_DUMP=passes` the proof runs here, as in [`lower`] (the trace
/// prints its result), and [`ProofPending::prove`] returns that result.
pub fn lower_pending(sched: &Schedule, target: Target) -> Result<ProofPending> {
    crate::deep::with_stack(sched.func.depth(), || {
        let proven = dump_enabled("passes");
        let lowered = if proven { lower(sched, target)? } else { lower_impl(sched, target, None, false)? };
        Ok(ProofPending { lowered, proven })
    })
}

/// Lowers and returns the trace: the IR after each pass that changed it,
/// with each pass's time.
pub fn lower_traced(sched: &Schedule, target: Target) -> Result<(Lowered, String)> {
    crate::deep::with_stack(sched.func.depth(), || {
        let mut trace = String::new();
        let l = lower_impl(sched, target, Some(&mut trace), true)?;
        Ok((l, trace))
    })
}

/// `prove`: run the bounds proof (otherwise `unproven` stays empty, for
/// [`ProofPending`]).
fn lower_impl(sched: &Schedule, target: Target, trace: Option<&mut String>, prove: bool) -> Result<Lowered> {
    let mut l = lower_passes(sched, target, trace, prove)?;
    // Part of the proof: where the flat nest's index arithmetic fits i64.
    if prove {
        l.index_limit = overflow::safe_limit(&l.flat);
    }
    Ok(l)
}

/// Lowers for a schedule search (the CPU default tries schedules): the
/// symbolic bounds proof runs, the overflow limit does not (calls never
/// run this result).
pub(crate) fn lower_trial(sched: &Schedule, target: Target) -> Result<Lowered> {
    lower_passes(sched, target, None, true)
}

fn lower_passes(sched: &Schedule, target: Target, mut trace: Option<&mut String>, prove: bool) -> Result<Lowered> {
    use std::fmt::Write as _;
    let mut report = vec![];
    let t = Instant::now();
    let mut f = build::build(sched, target)?;
    verify::verify(&f, "build", false)?;
    let took = t.elapsed();
    if let Some(tr) = trace.as_deref_mut() {
        let _ = write!(tr, "// ---- {}: after `build` ({:.3} ms)\n{f}", f.name, took.as_secs_f64() * 1e3);
    }
    report.push(("build".to_string(), took, true));
    let mut state = PassState { target, prove, unproven: vec![], nest: None };
    let mut last_changed = true;
    for pass in &PASSES {
        if crate::cancel::cancelled() {
            return Err(crate::error::InternalError::new("lower", "cancelled").into());
        }
        if pass.cleanup && !last_changed {
            if let Some(tr) = trace.as_deref_mut() {
                let _ =
                    writeln!(tr, "// ---- {}: `{}` skipped (nothing changed since the last one)", f.name, pass.name);
            }
            report.push((pass.name.to_string(), Duration::ZERO, false));
            continue;
        }
        let before = f.clone();
        let t = Instant::now();
        (pass.run)(&mut f, &mut state);
        let took = t.elapsed();
        verify::verify(&f, pass.name, pass.fixed_extents)?;
        let changed = f != before;
        if let Some(tr) = trace.as_deref_mut() {
            let ms = took.as_secs_f64() * 1e3;
            if pass.name == "prove_bounds" {
                let _ = writeln!(
                    tr,
                    "// ---- {}: `prove_bounds` ({ms:.3} ms): {} access(es) left to prove per shape",
                    f.name,
                    state.unproven.len()
                );
            } else if changed {
                let _ = write!(tr, "// ---- {}: after `{}` ({ms:.3} ms)\n{f}", f.name, pass.name);
            } else {
                let _ = writeln!(tr, "// ---- {}: `{}` changed nothing ({ms:.3} ms)", f.name, pass.name);
            }
        }
        report.push((pass.name.to_string(), took, changed));
        last_changed = !pass.cleanup && changed;
    }
    // An access no call can prove is an error now, not at every call.
    if let Some(u) = state.unproven.iter().find(|u| u.never.is_some()) {
        return Err(u.to_never_error(&f.name));
    }
    let nest = state.nest.unwrap_or_else(|| f.clone());
    Ok(Lowered { nest, flat: f, unproven: state.unproven, index_limit: None, passes: report })
}

#[cfg(test)]
mod tests;
