//! Random definitions × random legal GPU schedules × random shapes: the
//! OpenCL kernels give the interpreter's results on the same loop nest
//! (≥ 300 cases per run), and the CUDA source of each compiles with NVRTC
//! for sm_80 and sm_90 (≥ 100 cases). A failure prints the seed, the
//! definition's loop nest and the schedule's steps.

use texpr_dsl::te::{self, Expr, FuncBuilder, TensorRef};
use texpr_dsl::value::Scalar;
use texpr_dsl::{DType, Func, Schedule, Scope, Target, TargetClass, ThreadAxis};

use crate::common::*;

/// How a case was made, for failure messages.
pub(crate) struct Case {
    func: Func,
    sched: Schedule,
    log: Vec<String>,
    inputs: Vec<(Host, Vec<usize>)>,
    params: Vec<Scalar>,
    /// How closely floats must agree.
    tol: Tol,
}

const DTYPES: [DType; 10] = [
    DType::F32,
    DType::F32,
    DType::I32,
    DType::F16,
    DType::I64,
    DType::U8,
    DType::BF16,
    DType::F64,
    DType::I16,
    DType::U32,
];

/// A random expression of type `t` over `leaves`.
fn expr(rng: &mut Rng, t: DType, leaves: &[Expr], idx: &[&str], depth: u32) -> Expr {
    if depth == 0 || rng.chance(0.25) {
        return match rng.below(6) {
            0 if !idx.is_empty() => Expr::from(*rng.pick(idx)).cast(t),
            1 => lit(rng, t),
            _ => rng.pick(leaves).clone(),
        };
    }
    let a = expr(rng, t, leaves, idx, depth - 1);
    let b = expr(rng, t, leaves, idx, depth - 1);
    match rng.below(if t.is_float() { 12 } else { 11 }) {
        0 | 1 => a + b,
        2 => a - b,
        3 => a * b,
        4 => a / b,
        5 if !t.is_float() => a % b,
        5 => te::floor(a),
        6 => te::min(a, b),
        7 => te::max(a, b),
        8 => {
            let c = expr(rng, t, leaves, idx, depth - 1);
            te::select(a.lt(b), c, lit(rng, t))
        }
        9 if !t.is_unsigned_int() => te::abs(a),
        9 => a,
        10 => {
            // A type round trip.
            let u = *rng.pick(&[DType::I32, DType::F32, DType::U8, DType::F16]);
            a.cast(u).cast(t)
        }
        _ => te::sqrt(te::abs(a)),
    }
}

fn lit(rng: &mut Rng, t: DType) -> Expr {
    if t.is_float() {
        Expr::from(rng.range(-8, 8) as f64 * 0.5)
    } else {
        Expr::typed(Scalar::from_i128(t, rng.range(-5, 9) as i128))
    }
}

/// A stage: its name, its spatial loops, its reduction loops.
type StageLoops = (&'static str, Vec<&'static str>, Vec<&'static str>);

/// A definition over inputs `x: t[M, K]`, `y: t[K, N]`, `z: t[N]`,
/// `w: t[3]`; its stages; how closely floats must agree.
fn definition(rng: &mut Rng, t: DType) -> (Func, Vec<StageLoops>, Tol) {
    let mut f = FuncBuilder::new("rand");
    let x = f.input("x", t, ["M", "K"]);
    let y = f.input("y", t, ["K", "N"]);
    let z = f.input("z", t, ["N"]);
    let w = f.input("w", t, [3]);
    let p = f.scalar("p", t);
    let ld = |r: &TensorRef, i: &str, j: &str| r.at([Expr::from(i), Expr::from(j)]);
    let mut tol = Tol::Exact;
    // A float sum may have its steps fused (`Tol::Sum`).
    let sum_tol = if matches!(t, DType::F32 | DType::F64) { Tol::Sum } else { Tol::Exact };
    let template = rng.below(4);
    let stages = match template {
        // Elementwise with guarded shifted loads (padding).
        0 => {
            f.output(t, ["M", "K"]);
            let shifted =
                te::if_(Expr::from("j").add_one_lt("K"), x.at([Expr::from("i"), Expr::from("j") + 1]), lit(rng, t));
            let leaves = vec![ld(&x, "i", "j"), shifted, p.clone(), w.at([Expr::from("j") % 3])];
            let body = expr(rng, t, &leaves, &["i", "j"], 3);
            let out = f.compute("out", ["i", "j"], move |_| body);
            f.ret([out]);
            vec![("out", vec!["i", "j"], vec![])]
        }
        // A matmul-like reduction.
        1 => {
            f.output(t, ["M", "N"]);
            let leaves = vec![ld(&x, "i", "k"), ld(&y, "k", "j"), p.clone()];
            let body = expr(rng, t, &leaves, &["i", "j", "k"], 2);
            let op = rng.below(4);
            if op < 2 {
                tol = sum_tol;
            }
            let out = f.compute("out", ["i", "j"], move |_| match op {
                0 | 1 => te::sum([("k", 0, "K")], |_| body),
                2 => te::max_over([("k", 0, "K")], |_| body),
                _ => te::min_over([("k", 0, "K")], |_| body),
            });
            f.ret([out]);
            vec![("out", vec!["i", "j"], vec!["k"])]
        }
        // A two-stage pipeline.
        2 => {
            f.output(t, ["M", "N"]);
            let leaves = vec![ld(&x, "i", "k"), ld(&y, "k", "j")];
            let body = expr(rng, t, &leaves, &["i", "j"], 2);
            let t1 = f.compute_typed("t1", t, ["M", "N"], ["i", "j"], move |_| te::sum([("k", 0, "K")], |_| body));
            tol = sum_tol;
            let leaves2 = vec![
                ld(&t1, "i", "j"),
                z.at(["j"]),
                te::if_(Expr::from("i").gt(0), t1.at([Expr::from("i") - 1, Expr::from("j")]), lit(rng, t)),
            ];
            let mut body2 = expr(rng, t, &leaves2, &["i", "j"], 2);
            if t.is_float() && rng.chance(0.4) {
                body2 = te::exp(te::min(body2, Expr::from(4.0)));
                tol = if tol == Tol::Sum { Tol::Sum } else { Tol::Math };
            }
            let out = f.compute("out", ["i", "j"], move |_| body2);
            f.ret([out]);
            vec![("t1", vec!["i", "j"], vec!["k"]), ("out", vec!["i", "j"], vec![])]
        }
        // A row reduction broadcast back (softmax-like).
        _ => {
            f.output(t, ["M", "K"]);
            let leaves = vec![ld(&x, "n", "c")];
            let body = expr(rng, t, &leaves, &["n"], 2);
            let r = f.compute_typed("r", t, ["M"], ["n"], move |_| te::max_over([("c", 0, "K")], |_| body));
            let leaves2 = vec![ld(&x, "n", "c"), r.at(["n"])];
            let body2 = expr(rng, t, &leaves2, &["n", "c"], 2);
            let out = f.compute("out", ["n", "c"], move |_| body2);
            f.ret([out]);
            vec![("r", vec!["n"], vec!["c"]), ("out", vec!["n", "c"], vec![])]
        }
    };
    (f.build().unwrap_or_else(|e| panic!("generated an ill-typed definition: {e}")), stages, tol)
}

trait AddOneLt {
    fn add_one_lt(self, bound: &str) -> Expr;
}
impl AddOneLt for Expr {
    fn add_one_lt(self, bound: &str) -> Expr {
        (self + 1).lt(bound)
    }
}

/// Applies random primitives to `stage`; illegal ones are skipped (the
/// schedule stays legal).
fn schedule_stage(
    rng: &mut Rng,
    s: &mut Schedule,
    stage: &str,
    spatial: &[&str],
    reduce: &[&str],
    log: &mut Vec<String>,
) {
    let Ok(st) = s.stage(stage) else { return };
    let mut note = |m: String| log.push(format!("{stage}: {m}"));
    // cache_write(local) must come first.
    let mut cw = None;
    if !reduce.is_empty() && rng.chance(0.25) {
        let name = format!("{stage}_l");
        if s.cache_write_named(st, Scope::Local, &name).is_ok() {
            note("cache_write(local)".into());
            cw = s.stage(&name).ok();
        }
    }
    let ax = |s: &Schedule, n: &str| s.axis(st, n).ok();
    let mut thread_loops = vec![];
    let mut block_loops = vec![];
    match (rng.below(6), spatial) {
        (0, _) => note("unbound".into()),
        (1, [i, j]) => {
            let (fx, fy) = (rng.range(1, 8), rng.range(1, 8));
            if let (Some(a), Some(b)) = (ax(s, i), ax(s, j))
                && let Ok([bo, bj, ti, tj]) = s.tile_named(a, b, fx, fy, ["bi", "bj", "ti", "tj"])
            {
                note(format!("tile({i}, {j}, {fx}, {fy}) bound"));
                let _ = s.bind(bo, ThreadAxis::BlockY);
                let _ = s.bind(bj, ThreadAxis::BlockX);
                let _ = s.bind(ti, ThreadAxis::ThreadY);
                let _ = s.bind(tj, ThreadAxis::ThreadX);
                thread_loops = vec![ti, tj];
                block_loops = vec![bo, bj];
            }
        }
        (2, [i, j]) => {
            if let (Some(a), Some(b)) = (ax(s, i), ax(s, j))
                && let Ok(fz) = s.fuse_named(a, b, "f")
            {
                let fct = *rng.pick(&[7, 16, 64]);
                if let Ok((o, inn)) = s.split_named(fz, fct, "fo", "fi") {
                    note(format!("fuse({i}, {j}) split {fct} bound"));
                    let _ = s.bind(o, ThreadAxis::BlockX);
                    let _ = s.bind(inn, ThreadAxis::ThreadX);
                    thread_loops = vec![inn];
                    block_loops = vec![o];
                }
            }
        }
        (3, _) => {
            let i = spatial[0];
            let fct = rng.range(1, 9);
            if let Some(a) = ax(s, i)
                && let Ok((o, inn)) = s.split_named(a, fct, "io", "ii")
            {
                let which = rng.below(3);
                note(format!("split({i}, {fct}) bind {which}"));
                if which != 1 {
                    let _ = s.bind(o, ThreadAxis::BlockX);
                    block_loops = vec![o];
                }
                if which != 2 {
                    let _ = s.bind(inn, ThreadAxis::ThreadX);
                    thread_loops = vec![inn];
                }
            }
        }
        (4, _) => {
            // The outer loop on blocks, an inner one on threads, with a
            // symbolic extent (strided mode).
            if let Some(a) = ax(s, spatial[0]) {
                let _ = s.bind(a, ThreadAxis::BlockX);
                block_loops = vec![a];
            }
            if let Some(j) = spatial.get(1).and_then(|j| ax(s, j)) {
                let _ = s.bind(j, ThreadAxis::ThreadY);
                thread_loops = vec![j];
            }
            note("block.x / thread.y over whole dims".into());
        }
        _ => {
            let _ = Schedule::default_for(s.func(), TargetClass::Gpu);
            note("vectorize inner".into());
            if let Some(a) = ax(s, spatial[spatial.len() - 1])
                && let Ok((_, inn)) = s.split_named(a, 4, "vo", "vi")
            {
                let _ = if rng.chance(0.5) { s.vectorize(inn) } else { s.unroll(inn) };
            }
        }
    }
    // Reductions: split, shared / local caches of the inputs.
    if let Some(k) = reduce.first() {
        let attach = if rng.chance(0.6) {
            let fct = rng.range(2, 8);
            s.axis(st, k).ok().and_then(|a| s.split_named(a, fct, "ko", "ki").ok()).map(|(ko, _)| {
                note(format!("split({k}, {fct})"));
                ko
            })
        } else {
            None
        };
        let at = attach.or_else(|| block_loops.last().copied()).or_else(|| thread_loops.last().copied());
        if let Some(at) = at {
            for input in ["x", "y"] {
                if rng.chance(0.5) {
                    let scope = if rng.chance(0.7) { Scope::Shared } else { Scope::Local };
                    let name = format!("{stage}_{input}_c");
                    if let Ok(c) = s.cache_read_named(st, input, scope, &name)
                        && s.compute_at(c, at).is_ok()
                    {
                        note(format!("cache_read({input}, {}) at {}", scope.name(), s.axis_name(at).unwrap()));
                    }
                }
            }
        }
    }
    if let Some(c) = cw
        && let Some(at) = thread_loops.last().or(block_loops.last())
        && s.compute_at(c, *at).is_ok()
    {
        note(format!("cache_write stage at {}", s.axis_name(*at).unwrap()));
    }
}

pub(crate) fn generate(seed: u64) -> Case {
    let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5bd1);
    let t = *rng.pick(&DTYPES);
    let (func, stages, tol) = definition(&mut rng, t);
    let mut sched = Schedule::new(&func, Some(TargetClass::Gpu));
    let mut log = vec![format!("dtype {t}")];
    if rng.chance(0.1) {
        sched = Schedule::default_for(&func, TargetClass::Gpu);
        log.push("default GPU schedule".into());
    } else {
        for (name, spatial, reduce) in &stages {
            schedule_stage(&mut rng, &mut sched, name, spatial, reduce, &mut log);
        }
        // Producers: at the root, inline, or at a loop of their consumer.
        if stages.len() == 2 {
            let (p, _, reduce) = &stages[0];
            if let (Ok(ps), Ok(cs)) = (sched.stage(p), sched.stage("out")) {
                match rng.below(3) {
                    0 if reduce.is_empty() => {
                        let _ = sched.compute_inline(ps);
                        log.push(format!("{p}: inline"));
                    }
                    1 => {
                        let loops = sched.loops(cs).unwrap();
                        if !loops.is_empty() {
                            let at = loops[rng.below(loops.len() as u64) as usize];
                            if sched.compute_at(ps, at).is_ok() {
                                log.push(format!("{p}: compute_at(out, {})", sched.axis_name(at).unwrap()));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let dim = |rng: &mut Rng| if rng.chance(0.05) { 0 } else { rng.range(1, 19) as usize };
    let (m, n, k) = (dim(&mut rng), dim(&mut rng), dim(&mut rng));
    let inputs = vec![
        (rng.host(t, m * k), vec![m, k]),
        (rng.host(t, k * n), vec![k, n]),
        (rng.host(t, n), vec![n]),
        (rng.host(t, 3), vec![3]),
    ];
    let params = vec![rng.scalar(t)];
    Case { func, sched, log, inputs, params, tol }
}

fn describe(seed: u64, c: &Case, target: Target) -> String {
    let nest = texpr_dsl::lower(&c.sched, target).map(|l| l.to_string()).unwrap_or_else(|e| e.to_string());
    let shapes: Vec<String> = c.inputs.iter().map(|(_, s)| format!("{s:?}")).collect();
    format!("seed {seed}: {}\nshapes {}\n{nest}", c.log.join("; "), shapes.join(" "))
}

pub(crate) fn cases(count: usize) -> impl Iterator<Item = (u64, Case)> {
    (0u64..)
        .map(|seed| (seed, generate(seed)))
        .filter(|(_, c)| texpr_dsl::lower(&c.sched, Target::OpenCl).is_ok())
        .take(count)
}

#[test]
fn opencl_matches_interpreter() {
    if !opencl() {
        return;
    }
    let mut n = 0;
    let count = gpu_cases(320) as usize;
    for (seed, c) in cases(count) {
        check_case(seed, &c, Target::OpenCl);
        n += 1;
    }
    println!("{n} random cases agree");
    assert!(n >= 300);
}

/// Runs case `c` on `target` (OpenCL or CUDA) against the interpreter.
pub(crate) fn check_case(seed: u64, c: &Case, target: Target) {
    let what = describe(seed, c, target);
    if std::env::var("TEXPR_TEST_VERBOSE").is_ok() {
        eprintln!("{what}");
        if let Ok(l) = texpr_dsl::lower(&c.sched, target) {
            eprintln!("{}", texpr_backends::source(target, &l).unwrap_or_default());
        }
    }
    let inputs: Vec<(&Host, Vec<usize>)> = c.inputs.iter().map(|(h, s)| (h, s.clone())).collect();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        device_and_interp(target, &c.func, &c.sched, &inputs, &c.params)
    }));
    match r {
        Ok((got, want)) => {
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                for i in 0..w.len() {
                    let (a, b) = (g.get(i).expect("in range"), w.get(i).expect("in range"));
                    assert!(agree(a, b, c.tol), "output {k}[{i}]: {target} {a}, interpreter {b}\n{what}");
                }
            }
        }
        Err(_) => panic!("{what}"),
    }
}

/// Seeds that once failed (found with `TEXPR_GPU_CASES=1500`): 703,
/// `max(long, c ? 10 : -1)` ambiguous in OpenCL C (ternary arms are typed
/// now); 1350, `min(abs(LONG_MIN), 0)` folded to 0 by PoCL (integer `abs`
/// is a helper now; NVIDIA's compilers folded two other forms of it);
/// 1487, one row wrong on PoCL when the shared-tile loop was software
/// pipelined through a private array indexed by a loop variable (right on
/// CUDA and NVIDIA's OpenCL; the copies are unrolled now, and OpenCL
/// honours `unroll`).
pub(crate) const OPENCL_REGRESSION_SEEDS: [u64; 3] = [703, 1350, 1487];

#[test]
fn opencl_regression_seeds() {
    if !opencl() {
        return;
    }
    for seed in OPENCL_REGRESSION_SEEDS {
        check_case(seed, &generate(seed), Target::OpenCl);
    }
}

#[test]
fn cuda_compiles_for_sm80_and_sm90() {
    if !nvrtc() {
        return;
    }
    let mut n = 0;
    for (seed, c) in cases(110) {
        let l = lower(&c.sched, Target::Cuda);
        let src = texpr_backends::source(Target::Cuda, &l).unwrap();
        for arch in ["sm_80", "sm_90"] {
            if let Err(e) = texpr_backends::cuda::nvrtc_compile(&src, "rand", arch) {
                panic!("{arch}: {e}\n{}", describe(seed, &c, Target::Cuda));
            }
        }
        n += 1;
    }
    println!("{n} random CUDA programs compile for sm_80 and sm_90");
    assert!(n >= 100);
}

/// Runs the shared generator's cases `seeds` (GPU schedules) on `target`
/// against the interpreter: the number of rejected schedules, or the first
/// disagreement.
pub(crate) fn shared_on(target: Target, seeds: std::ops::Range<u64>) -> Result<usize, String> {
    shared_with(&texpr_dsl::testing::GenConfig::new(TargetClass::Gpu), target, seeds)
}

fn shared_with(
    cfg: &texpr_dsl::testing::GenConfig,
    target: Target,
    seeds: std::ops::Range<u64>,
) -> Result<usize, String> {
    let compile = |l: &texpr_dsl::Lowered| texpr_backends::compile(target, l);
    texpr_dsl::testing::differential(cfg, seeds, target, &compile)
}

/// Runs `gpu_cases(default)` shared-generator cases from seed `first` on
/// OpenCL; fewer than half may have their schedule rejected.
fn opencl_sweep(what: &str, cfg: &texpr_dsl::testing::GenConfig, first: u64, default: u64) {
    if !opencl() {
        return;
    }
    // More with `TEXPR_GPU_CASES=N` (each case builds an OpenCL program).
    let n = gpu_cases(default);
    match shared_with(cfg, Target::OpenCl, first..first + n) {
        Ok(rejected) => {
            println!("{} {what} cases agree ({rejected} schedules rejected)", n - rejected as u64);
            assert!(rejected * 2 < n as usize, "too many rejected schedules: {rejected}");
        }
        Err(e) => panic!("{e}"),
    }
}

/// The shared generator with reduction axes split and vectorized
/// innermost (`GenConfig::vectorize_reductions`), which its plain
/// schedules almost never draw.
#[test]
fn shared_generator_vectorized_reductions_on_opencl() {
    let mut cfg = texpr_dsl::testing::GenConfig::new(TargetClass::Gpu);
    cfg.vectorize_reductions = 0.8;
    opencl_sweep("vectorized-reduction", &cfg, 5000, 100);
}

/// The shared generator's programs specialized to a random subset of
/// their case's dims (`Program::specialize`: literal dims in the kernels).
#[test]
fn shared_generator_specialized_on_opencl() {
    let mut cfg = texpr_dsl::testing::GenConfig::new(TargetClass::Gpu);
    cfg.specialize = 0.7;
    opencl_sweep("specialized", &cfg, 7000, 150);
}

/// The core's shared generator (`texpr_dsl::testing`): random definitions
/// and legal GPU schedules, against the *unscheduled* definition on the
/// interpreter.
#[test]
fn shared_generator_on_opencl() {
    opencl_sweep("shared-generator", &texpr_dsl::testing::GenConfig::new(TargetClass::Gpu), 1000, 400);
}

/// Shared-generator seeds that once failed on OpenCL (found with
/// `TEXPR_GPU_CASES=1500`): 1381, `floor(NaN * x)` miscompiled by PoCL (the
/// core now folds NaN arithmetic); 1553, a shared copy of a per-thread tile
/// made cooperative (a fill reading a thread's own temporary now stays
/// private).
pub(crate) const SHARED_REGRESSION_SEEDS: [u64; 2] = [1381, 1553];

#[test]
fn shared_generator_regression_seeds() {
    if !opencl() {
        return;
    }
    for seed in SHARED_REGRESSION_SEEDS {
        match shared_on(Target::OpenCl, seed..seed + 1) {
            Ok(0) => {}
            Ok(_) => panic!("seed {seed}: the schedule is now rejected, so the case no longer tests anything"),
            Err(e) => panic!("{e}\nseed {seed}"),
        }
    }
}

/// Every CUDA kernel of the shared generator's cases compiles for sm_90
/// (50 of them specialized to some of their dims).
#[test]
fn shared_generator_compiles_with_nvrtc() {
    use texpr_dsl::testing::{Case, GenConfig};
    if !nvrtc() {
        return;
    }
    let plain = GenConfig::new(TargetClass::Gpu);
    let mut specialized = plain.clone();
    specialized.specialize = 0.7;
    let mut n = 0;
    for (seed, cfg) in (2000..2100u64).map(|s| (s, &plain)).chain((2100..2150).map(|s| (s, &specialized))) {
        let case = Case::generate(seed, cfg);
        let Ok(l) = case.lower(Target::Cuda) else { continue };
        let src = texpr_backends::source(Target::Cuda, &l).unwrap();
        if let Err(e) = texpr_backends::cuda::nvrtc_compile(&src, "case", "sm_90") {
            panic!("{e}\n{}", case.describe());
        }
        n += 1;
    }
    println!("{n} shared-generator CUDA programs compile for sm_90");
}
