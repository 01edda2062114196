//! Accuracy sweeps of the math built-ins on `f32`, vectorized (inline
//! polynomials) and scalar, against `f64`: SPEC requires 1e-6 relative
//! error wherever the exact result is a normal `f32`.

use texpr_dsl::te::{self, FuncBuilder};
use texpr_dsl::{Call, DType, Data, DataMut, Executable, Program, Schedule, Target, TargetClass};

fn kernel(f: &str, vectorize: bool) -> texpr_jit::JitKernel {
    kernel_n(f, 1, vectorize)
}

/// `y[i] = f(x0[i], ..)` on `arity` f32 inputs, optionally split by 8 and
/// vectorized.
fn kernel_n(f: &str, arity: usize, vectorize: bool) -> texpr_jit::JitKernel {
    let mut b = FuncBuilder::new("m");
    let xs: Vec<_> = (0..arity).map(|k| b.input(format!("x{k}"), DType::F32, ["N"])).collect();
    b.output(DType::F32, ["N"]);
    let y = b.compute("y", ["i"], |[i]| te::call(f, xs.iter().map(|x| x.at([&i])).collect()));
    b.ret([y]);
    let func = b.build().unwrap();
    let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
    if vectorize {
        let st = s.stage("y").unwrap();
        let i = s.axis(st, "i").unwrap();
        let (_, inner) = s.split(i, 8).unwrap();
        s.vectorize(inner).unwrap();
    }
    let l = Program::new(func).with_schedule(s).lower(Target::Cpu).unwrap();
    texpr_jit::compile(&l).unwrap()
}

fn run(k: &texpr_jit::JitKernel, x: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    let dims = [x.len() as i64];
    let inputs = [Data::F32(x)];
    let mut outputs = [DataMut::F32(&mut y)];
    // SAFETY: one input and one output of N elements, N = x.len().
    unsafe { k.run(&mut Call { dims: &dims, params: &[], inputs: &inputs, outputs: &mut outputs }).unwrap() };
    y
}

fn sweep(f: &str, exact: fn(f64) -> f64, xs: &[f32]) {
    for vectorize in [true, false] {
        let k = kernel(f, vectorize);
        let ys = run(&k, xs);
        let mut worst = (0.0f64, 0.0f32);
        for (x, y) in xs.iter().zip(&ys) {
            let e = exact(*x as f64);
            if e.is_nan() {
                assert!(y.is_nan(), "{f}({x}) = {y}, expected NaN");
                continue;
            }
            let ef = e as f32;
            if e.abs() < f32::MIN_POSITIVE as f64 || e.abs() > f32::MAX as f64 {
                // Outside the normal range: only the class must match.
                assert!(
                    y.is_finite() == ef.is_finite() || (*y - ef).abs() <= f32::MIN_POSITIVE,
                    "{f}({x}) = {y}, expected {e}"
                );
                continue;
            }
            let rel = ((*y as f64) - e).abs() / e.abs();
            if rel > worst.0 {
                worst = (rel, *x);
            }
        }
        assert!(worst.0 <= 1e-6, "{f} (vectorized: {vectorize}): relative error {:e} at x = {}", worst.0, worst.1);
    }
}

fn grid(lo: f32, hi: f32, n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n).map(|k| lo + (hi - lo) * (k as f32 / (n - 1) as f32)).collect();
    v.extend([0.0, -0.0, 1.0, -1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e-30, -1e-30, 1e-45]);
    v
}

fn log_grid(n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n).map(|k| 2f32.powf(-149.0 + 277.0 * (k as f32 / (n - 1) as f32))).collect();
    v.extend((0..2000).map(|k| 1.0 + (k as f32 - 1000.0) * 1e-5));
    v.extend([0.0, -1.0, f32::NAN, f32::INFINITY, f32::MAX, f32::MIN_POSITIVE, 1e-45]);
    v
}

#[test]
fn exp_family() {
    sweep("exp", f64::exp, &grid(-104.0, 89.0, 200_003));
    sweep("exp2", f64::exp2, &grid(-150.0, 128.5, 200_003));
    sweep("sigmoid", |x| 1.0 / (1.0 + (-x).exp()), &grid(-90.0, 90.0, 100_003));
}

#[test]
fn logs() {
    sweep("ln", f64::ln, &log_grid(200_003));
    sweep("log2", f64::log2, &log_grid(200_003));
}

#[test]
fn tanh() {
    let mut xs = grid(-12.0, 12.0, 200_003);
    xs.extend((1..2000).map(|k| k as f32 * 1e-4));
    xs.extend([30.0, -30.0, 1e-20]);
    sweep("tanh", f64::tanh, &xs);
}

#[test]
fn erf() {
    let mut xs = grid(-6.0, 6.0, 200_003);
    xs.extend((1..2000).map(|k| k as f32 * 1e-6));
    xs.extend(grid(3.8, 4.2, 20_003));
    sweep("erf", libm_erf, &xs);
}

/// `sin`/`cos`: inline (reduced in `f64`) up to `|x| <= 2^18`, lane-wise
/// `f64` calls beyond. Dense grids, the `f32` values nearest to multiples
/// of `pi/2` (where the result is tiny and relative accuracy is hardest),
/// large arguments, and vectors mixing both paths.
#[test]
fn sin_cos() {
    let mut xs = grid(-100.0, 100.0, 200_003);
    xs.extend(grid(-262_144.0, 262_144.0, 100_003));
    for k in 1..4000 {
        let x = (k as f64 * std::f64::consts::FRAC_PI_2) as f32;
        for v in [x, f32::from_bits(x.to_bits() + 1), f32::from_bits(x.to_bits() - 1)] {
            xs.extend([v, -v]);
        }
    }
    // Lanes beyond the inline range next to lanes inside it.
    xs.extend([1.0, 300_000.0, -2.0, 3.0, 1e9, 0.5, 262_144.0, 262_145.0, f32::MAX, 1e-3, -0.0, 7.0]);
    sweep("sin", f64::sin, &xs);
    sweep("cos", f64::cos, &xs);
}

fn libm_erf(x: f64) -> f64 {
    // Reference through the interpreter's semantics.
    texpr_dsl::Scalar::call(texpr_dsl::Builtin::Erf, &[texpr_dsl::Scalar::F64(x)]).as_f64()
}

/// `pow`: inline (in `f64`) for positive normal `x` and `|y| <= 2^20`,
/// lane-wise `f64` calls otherwise; results that overflow or underflow,
/// negative bases with integer exponents, zeros, NaN and infinities.
#[test]
fn pow() {
    let mut xs = vec![];
    let mut es = vec![];
    let bases: Vec<f32> = (0..400)
        .map(|k| 10f32.powf(-37.0 + 74.0 * k as f32 / 399.0))
        .chain((0..200).map(|k| 0.5 + k as f32 * 0.01))
        .collect();
    let exps: Vec<f32> = (0..81)
        .map(|k| -10.0 + k as f32 * 0.25)
        .chain([0.0, 1.0, -1.0, 0.5, 1e-7, 100.0, -100.0, 1000.0, 1e6, -1e6, 2e6])
        .collect();
    for b in &bases {
        for e in &exps {
            xs.push(*b);
            es.push(*e);
        }
    }
    let specials =
        [0.0f32, -0.0, -2.0, -0.5, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0, 1e-45, f32::MAX, f32::MIN_POSITIVE];
    for b in specials {
        for e in [0.0f32, 1.0, 2.0, 3.0, -1.0, -2.0, 0.5, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 7.5] {
            xs.push(b);
            es.push(e);
        }
    }
    for vectorize in [true, false] {
        let k = kernel_n("pow", 2, vectorize);
        let mut y = vec![0.0f32; xs.len()];
        let dims = [xs.len() as i64];
        let inputs = [Data::F32(&xs), Data::F32(&es)];
        let mut outputs = [DataMut::F32(&mut y)];
        // SAFETY: one input and one output of N elements, N = x.len().
        unsafe { k.run(&mut Call { dims: &dims, params: &[], inputs: &inputs, outputs: &mut outputs }).unwrap() };
        let mut worst = (0.0f64, 0.0f32, 0.0f32);
        for ((x, e), got) in xs.iter().zip(&es).zip(&y) {
            let exact = (*x as f64).powf(*e as f64);
            if exact.is_nan() {
                assert!(got.is_nan(), "pow({x}, {e}) = {got}, expected NaN");
                continue;
            }
            if exact.abs() < f32::MIN_POSITIVE as f64 || exact.abs() > f32::MAX as f64 {
                let ef = exact as f32;
                assert!(
                    got.is_finite() == ef.is_finite() || (*got - ef).abs() <= f32::MIN_POSITIVE,
                    "pow({x}, {e}) = {got}, expected {exact}"
                );
                continue;
            }
            let rel = ((*got as f64) - exact).abs() / exact.abs();
            if rel > worst.0 {
                worst = (rel, *x, *e);
            }
        }
        assert!(
            worst.0 <= 1e-6,
            "pow (vectorized: {vectorize}): relative error {:e} at ({}, {})",
            worst.0,
            worst.1,
            worst.2
        );
    }
}
