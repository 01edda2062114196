//! Shared by the GPU tests: the SPEC definitions and schedules, host
//! buffers of any element type, running on a target, comparing results, and
//! the CI policy (under `CI=true` a missing OpenCL platform or NVRTC fails
//! the test instead of skipping it).

use std::sync::Arc;

use texpr_dsl::te::{self, FuncBuilder};
pub use texpr_dsl::testing::spec::{axpb_relu, conv3x3, matmul, softmax};
use texpr_dsl::value::Scalar;
use texpr_dsl::{Compiled, DType, Data, DataMut, Func, Lowered, Result, Schedule, Target, TargetClass};

pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `true` if OpenCL runs here; under CI a missing platform fails.
pub fn opencl() -> bool {
    match texpr_backends::opencl::device() {
        Ok(_) => true,
        Err(e) if ci() => panic!("CI=true: the OpenCL tests need a platform (scripts/gpu-deps.sh installs PoCL): {e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

/// `true` if NVRTC loads here; under CI a missing NVRTC fails.
pub fn nvrtc() -> bool {
    match texpr_backends::cuda::nvrtc_available() {
        Ok(()) => true,
        Err(e) if ci() => panic!("CI=true: the CUDA compile tests need NVRTC (scripts/gpu-deps.sh installs it): {e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

/// How many random cases a differential test runs: `$TEXPR_GPU_CASES`, else
/// `default`.
pub fn gpu_cases(default: u64) -> u64 {
    std::env::var("TEXPR_GPU_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `true` if a CUDA GPU runs kernels here (driver, device and NVRTC). The
/// tests that need one are `#[ignore]`d (CI has no GPU) and call this
/// through [`require_cuda`]; tests that run elsewhere anyway add a CUDA run
/// when it is `true`.
pub fn cuda_gpu() -> bool {
    texpr_backends::cuda::device().is_ok() && texpr_backends::cuda::nvrtc_available().is_ok()
}

/// The targets that run kernels here: CUDA where a GPU is (never in CI),
/// then OpenCL (under `CI=true` a missing platform fails, see [`opencl`]).
pub fn gpu_targets() -> Vec<Target> {
    let mut targets = vec![];
    if cuda_gpu() {
        targets.push(Target::Cuda);
    }
    if opencl() {
        targets.push(Target::OpenCl);
    }
    targets
}

/// Panics unless a CUDA GPU runs kernels here: for the `#[ignore]`d tests
/// that are run on purpose (`--ignored`) on a machine with one.
pub fn require_cuda() {
    if let Err(e) = texpr_backends::cuda::device() {
        panic!("this test needs a CUDA GPU: {e}");
    }
    if let Err(e) = texpr_backends::cuda::nvrtc_available() {
        panic!("this test needs NVRTC: {e}");
    }
}

// ---- the SPEC §2 definitions ------------------------------------------------

/// A row reduction: `s[i] = sum(j => x[i, j])`.
pub fn rowsum() -> Func {
    let mut f = FuncBuilder::new("rowsum");
    let x = f.input("x", DType::F32, ["M", "N"]);
    f.output(DType::F32, ["M"]);
    let s = f.compute("s", ["i"], |[i]| te::sum([("j", 0, "N")], |[j]| x.at([&i, &j])));
    f.ret([s]);
    f.build().unwrap()
}

/// Integer floor division and remainder, with negative and zero divisors.
pub fn intdiv() -> Func {
    let mut f = FuncBuilder::new("intdiv");
    let a = f.input("a", DType::I32, ["N"]);
    let b = f.input("b", DType::I32, ["N"]);
    f.output(DType::I32, ["N"]);
    f.output(DType::I32, ["N"]);
    let q = f.compute("q", ["i"], |[i]| a.at([&i]) / b.at([&i]));
    let r = f.compute("r", ["i"], |[i]| a.at([&i]) % b.at([&i]));
    f.ret([q, r]);
    f.build().unwrap()
}

/// `f16` arithmetic, a math function and conversions.
pub fn half() -> Func {
    let mut f = FuncBuilder::new("half");
    let x = f.input("x", DType::F16, ["N"]);
    let y = f.input("y", DType::F16, ["N"]);
    f.output(DType::F16, ["N"]);
    let z = f.compute("z", ["i"], |[i]| {
        let p = x.at([&i]) * y.at([&i]) + x.at([&i]);
        te::exp(p.clone() / (te::abs(y.at([&i])) + 1.0)) - (p.cast(DType::F32) * 0.5).cast(DType::F16)
    });
    f.ret([z]);
    f.build().unwrap()
}

/// SPEC §3's GPU schedule of `matmul`.
pub fn matmul_gpu(func: &Func) -> Schedule {
    texpr_dsl::testing::spec::matmul_gpu(func).unwrap()
}

/// The default GPU schedule.
pub fn default_gpu(func: &Func) -> Schedule {
    Schedule::default_for(func, TargetClass::Gpu)
}

pub fn lower(s: &Schedule, target: Target) -> Lowered {
    texpr_dsl::lower(s, target).unwrap_or_else(|e| panic!("lowering failed: {e}"))
}

// ---- host data ----------------------------------------------------------------

/// A host tensor of any element type (flat: shapes travel beside it).
pub type Host = texpr_dsl::AnyTensor;

/// A small deterministic generator (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// A value of `t`: small, with zeros, negatives and some extremes.
    pub fn scalar(&mut self, t: DType) -> Scalar {
        if t.is_float() {
            let v = match self.below(20) {
                0 => 0.0,
                1 => -0.5,
                2 => 1.0,
                _ => (self.range(-4000, 4000) as f64) / 1000.0,
            };
            return Scalar::F64(v).cast(t);
        }
        if t == DType::Bool {
            return Scalar::Bool(self.chance(0.5));
        }
        let v: i128 = match self.below(24) {
            0 => 0,
            1 => texpr_dsl::value::int_range(t).0,
            2 => texpr_dsl::value::int_range(t).1,
            3 => -1,
            _ => self.range(-9, 9) as i128,
        };
        Scalar::from_i128(t, v)
    }

    pub fn host(&mut self, t: DType, n: usize) -> Host {
        let vals: Vec<Scalar> = (0..n).map(|_| self.scalar(t)).collect();
        Host::from_scalars(t, &[vals.len()], &vals)
    }
}

// ---- running -------------------------------------------------------------------

/// Runs a lowered program on `target` (compiled by `compile`) and returns
/// the outputs.
pub fn run_with(
    func: &Func,
    lowered: &Lowered,
    exe: Box<dyn texpr_dsl::Executable>,
    inputs: &[(&Host, Vec<usize>)],
    params: &[Scalar],
) -> Result<Vec<Host>> {
    let c = Compiled::new(Arc::new(func.clone()), Arc::new(lowered.clone()), exe);
    let data: Vec<Data<'_>> = inputs.iter().map(|(h, _)| h.data()).collect();
    let shapes: Vec<&[usize]> = inputs.iter().map(|(_, s)| s.as_slice()).collect();
    let (_, outs) = c.shapes(&data, &shapes)?;
    let types = func.output_types();
    let mut hosts: Vec<Host> =
        outs.iter().zip(&types).map(|(s, (t, _))| Host::zeros(*t, &[s.iter().product()])).collect();
    {
        let mut dm: Vec<DataMut<'_>> = hosts.iter_mut().map(|h| h.data_mut()).collect();
        let out_refs: Vec<&[usize]> = outs.iter().map(|s| s.as_slice()).collect();
        c.run(&data, &shapes, params, &mut dm, &out_refs)?;
    }
    Ok(hosts)
}

/// Runs on `target` (OpenCL or CUDA) and on the interpreter (the same
/// lowered nest) and returns both.
pub fn device_and_interp(
    target: Target,
    func: &Func,
    sched: &Schedule,
    inputs: &[(&Host, Vec<usize>)],
    params: &[Scalar],
) -> (Vec<Host>, Vec<Host>) {
    let l = lower(sched, target);
    let exe = texpr_backends::compile(target, &l).unwrap_or_else(|e| panic!("{e}"));
    let got = run_with(func, &l, exe, inputs, params).unwrap_or_else(|e| panic!("{e}"));
    let interp = Box::new(texpr_dsl::interp::Interpreter::new(l.flat.clone()));
    let want = run_with(func, &l, interp, inputs, params).unwrap_or_else(|e| panic!("{e}"));
    (got, want)
}

/// Runs on every target of [`gpu_targets`] and on the interpreter; panics
/// with the first disagreement.
pub fn agree_on_gpus(
    what: &str,
    func: &Func,
    sched: &Schedule,
    inputs: &[(&Host, Vec<usize>)],
    params: &[Scalar],
    tol: Tol,
) {
    for target in gpu_targets() {
        let (got, want) = device_and_interp(target, func, sched, inputs, params);
        assert_agree(&format!("{what} on {target}"), &got, &want, tol);
    }
}

/// How closely a device's floats must match the interpreter's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tol {
    /// Bit for bit (NaN equals NaN).
    Exact,
    /// Transcendental functions: within a few units of the precision.
    Math,
    /// Sums of products: the GPU writers fuse a reduction's step
    /// `acc + x * y` into one `fma` (one rounding per step, not two), so
    /// an `f32`/`f64` sum differs by up to a rounding of each product.
    Sum,
}

/// `true` if two values agree: integers exactly, floats as `tol` says.
pub fn agree(got: Scalar, want: Scalar, tol: Tol) -> bool {
    let t = want.dtype();
    if !t.is_float() {
        return got == want;
    }
    let (g, w) = (got.as_f64(), want.as_f64());
    if g.is_nan() && w.is_nan() || g == w {
        return true;
    }
    if tol == Tol::Exact || g.is_nan() || w.is_nan() || g.is_infinite() || w.is_infinite() {
        return false;
    }
    let (rtol, atol) = match (t, tol) {
        (DType::F16, _) => (4e-3, 1e-3),
        (DType::BF16, _) => (3e-2, 1e-2),
        (DType::F32, Tol::Sum) => (1e-4, 1e-4),
        (DType::F32, _) => (2e-5, 1e-6),
        (_, Tol::Sum) => (1e-12, 1e-12),
        _ => (1e-12, 1e-14),
    };
    (g - w).abs() <= atol + rtol * w.abs()
}

/// Panics with the first disagreement.
pub fn assert_agree(what: &str, got: &[Host], want: &[Host], tol: Tol) {
    assert_eq!(got.len(), want.len(), "{what}: number of outputs");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}: output {k} length");
        for i in 0..w.len() {
            let (a, b) = (g.get(i).expect("in range"), w.get(i).expect("in range"));
            assert!(agree(a, b, tol), "{what}: output {k}[{i}]: got {a}, want {b}");
        }
    }
}
