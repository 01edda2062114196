//! SPEC §2 semantics on `Target::Cpu` beyond the scalar table (which is
//! shared by every backend: `texpr_dsl::testing::semantics`, run on the JIT
//! by `jit/tests/semantics.rs`): empty dims and reductions, scalar
//! parameters of every type, no fusing of `a * b + c`, NaN-ignoring
//! `max`/`min` reductions. Compared with the interpreter (`Target::Interp`,
//! whose scalar semantics are the oracle); each kernel runs unscheduled and
//! with its loop split, vectorized and parallelized, so the scalar, vector
//! and outlined code paths all meet the oracle.

use texpr::prelude::*;
use texpr::te::FuncBuilder;
use texpr::{Element, Input, Program, Schedule, TargetClass};

/// The kernel with an empty schedule, with the default CPU schedule, and
/// with its loop split by `vec` and by 32 (16-lane 8-bit vectors), the
/// inner loop vectorized and the outer one parallel.
fn variants(func: Option<texpr::Func>, stage: &str, vec: i64) -> Vec<Kernel> {
    let Some(func) = func else { return vec![] };
    let mut out = vec![
        Kernel::new(Program::new(func.clone()).with_schedule(Schedule::new(&func, Some(TargetClass::Cpu)))),
        Kernel::new(Program::new(func.clone())),
    ];
    for w in [vec, 32] {
        let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
        let st = s.stage(stage).unwrap();
        let i = s.axis(st, "i").unwrap();
        let (o, inner) = s.split(i, w).unwrap();
        s.vectorize(inner).unwrap();
        s.parallel(o).unwrap();
        out.push(Kernel::new(Program::new(func.clone()).with_schedule(s)));
    }
    out
}

fn same(a: Scalar, b: Scalar, tol: f64) -> bool {
    if a.dtype() != b.dtype() {
        return false;
    }
    if a.dtype().is_float() {
        let (x, y) = (a.as_f64(), b.as_f64());
        // Exact operations' zeros must agree in sign too: `min`/`max` give
        // +0.0 for a zero result on every target (a tie of 0.0 and -0.0
        // would otherwise depend on operand order), and the sign shows
        // through `1 / x`. (The polynomial math functions, compared with a
        // tolerance, may return +0.0 for -0.0.)
        if tol == 0.0 && x == 0.0 && y == 0.0 {
            return x.is_sign_negative() == y.is_sign_negative();
        }
        return (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= tol * y.abs();
    }
    a == b
}

fn check<O: Element>(k: &Kernel, inputs: &[Input<'_>], params: &[Scalar], tol: f64, what: &str) {
    let got: Tensor<O> = k.run1(Target::Cpu, inputs, params).unwrap_or_else(|e| panic!("{what}: cpu: {e}"));
    let want: Tensor<O> = k.run1(Target::Interp, inputs, params).unwrap_or_else(|e| panic!("{what}: interp: {e}"));
    for (i, (g, w)) in got.as_slice().iter().zip(want.as_slice()).enumerate() {
        let (g, w) = (g.to_scalar(), w.to_scalar());
        assert!(same(g, w, tol), "{what}: element {i}: cpu {g:?}, interp {w:?}\n{}", k.lower(Target::Cpu).unwrap());
    }
}

#[test]
fn empty_dims_and_reductions() {
    let mut f = FuncBuilder::new("rowmax");
    let x = f.input("x", DType::F32, ["N", "C"]);
    f.output(DType::F32, ["N"]);
    let y = f.compute("y", ["i"], |[i]| te::max_over([("c", 0, "C")], |[c]| x.at([&i, &c])));
    f.ret([y]);
    let func = f.build().unwrap();
    for k in variants(Some(func), "y", 4) {
        for (n, c) in [(0, 0), (0, 5), (5, 0), (7, 3), (9, 17)] {
            let x = Tensor::from_fn([n, c], |i| (i[0] * 31 + i[1] * 7) as f32 % 11.0 - 5.0);
            check::<f32>(&k, &[(&x).into()], &[], 0.0, &format!("rowmax {n}x{c}"));
            if c == 0 && n > 0 {
                let y: Tensor<f32> = k.run1(Target::Cpu, &[(&x).into()], &[]).unwrap();
                assert!(y.as_slice().iter().all(|v| *v == f32::NEG_INFINITY));
            }
        }
    }
}

#[test]
fn scalar_params_of_every_type() {
    for t in [DType::I8, DType::U16, DType::I32, DType::U64, DType::F16, DType::BF16, DType::F32, DType::F64] {
        let mut f = FuncBuilder::new("axpb");
        let x = f.input("x", t, ["N"]);
        let a = f.scalar("a", t);
        let b = f.scalar("b", t);
        f.output(t, ["N"]);
        let y = f.compute("y", ["i"], |[i]| a.clone() * x.at([&i]) + b.clone());
        f.ret([y]);
        let func = f.build().unwrap();
        let p = [Scalar::from_i128(t, 3), Scalar::from_i128(t, -2)];
        macro_rules! go {
            ($ty:ty) => {{
                let x: Tensor<$ty> =
                    Tensor::from_fn([37], |i| <$ty>::from_scalar(Scalar::from_i128(t, i[0] as i128 - 5)).unwrap());
                for k in variants(Some(func.clone()), "y", 8) {
                    check::<$ty>(&k, &[(&x).into()], &p, 0.0, &format!("axpb {t}"));
                }
            }};
        }
        match t {
            DType::I8 => go!(i8),
            DType::U16 => go!(u16),
            DType::I32 => go!(i32),
            DType::U64 => go!(u64),
            DType::F16 => go!(f16),
            DType::BF16 => go!(bf16),
            DType::F32 => go!(f32),
            _ => go!(f64),
        }
    }
}

/// Elementwise `a * b + c` rounds twice on every code path, as IEEE and
/// the interpreter do: the JIT fuses only a reduction's accumulation step
/// (whose rounding SPEC §3 leaves open). `3 * 0.1 - 0.3` is 0 rounded
/// twice but -7.45e-9 fused.
#[test]
fn elementwise_multiply_add_is_not_fused() {
    let mut f = FuncBuilder::new("axpy");
    let a = f.input("a", DType::F32, ["N"]);
    let b = f.input("b", DType::F32, ["N"]);
    let c = f.input("c", DType::F32, ["N"]);
    f.output(DType::F32, ["N"]);
    let y = f.compute("y", ["i"], |[i]| a.at([&i]) * b.at([&i]) + c.at([&i]));
    f.ret([y]);
    let func = f.build().unwrap();
    let n = 37;
    let a = Tensor::from_fn([n], |_| 3.0f32);
    let b = Tensor::from_fn([n], |_| 0.1f32);
    let c = Tensor::from_fn([n], |_| -0.3f32);
    for k in variants(Some(func), "y", 8) {
        let y: Tensor<f32> = k.run1(Target::Cpu, &[(&a).into(), (&b).into(), (&c).into()], &[]).unwrap();
        assert!(y.as_slice().iter().all(|v| *v == 3.0f32 * 0.1 - 0.3), "{:?}", &y.as_slice()[..4]);
    }
}

/// NaN-ignoring `max`/`min` reductions and sums along a vectorized axis
/// (per-lane accumulators, one `maxps`/`minps` per vector since the JIT
/// knows the accumulators never hold NaN, and a vector combine of the
/// partials) on rows with NaN at every position, all-NaN rows, infinities
/// and signed zeros, against the interpreter.
#[test]
fn max_min_reductions_ignore_nan_on_every_path() {
    let vals = [f64::NAN, f64::NEG_INFINITY, -2.5, -0.0, 0.0, 1.5, f64::INFINITY, 3.0];
    let (rows, cols) = (24, 35);
    for t in [DType::F32, DType::F64] {
        for op in ["max", "min", "sum"] {
            let mut f = FuncBuilder::new("red");
            let x = f.input("x", t, ["R", "C"]);
            f.output(t, ["R"]);
            let y = f.compute("y", ["i"], |[i]| {
                let body = |[j]: [te::Expr; 1]| x.at([&i, &j]);
                match op {
                    "max" => te::max_over([("j", 0, "C")], body),
                    "min" => te::min_over([("j", 0, "C")], body),
                    _ => te::sum([("j", 0, "C")], body),
                }
            });
            f.ret([y]);
            let func = f.build().unwrap();
            let mut kernels = vec![
                Kernel::new(Program::new(func.clone()).with_schedule(Schedule::new(&func, Some(TargetClass::Cpu)))),
                Kernel::new(Program::new(func.clone())),
            ];
            for w in [4, 8, 16] {
                let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
                let st = s.stage("y").unwrap();
                let (i, j) = (s.axis(st, "i").unwrap(), s.axis(st, "j").unwrap());
                let (_, ji) = s.split(j, w).unwrap();
                s.vectorize(ji).unwrap();
                s.parallel(i).unwrap();
                kernels.push(Kernel::new(Program::new(func.clone()).with_schedule(s)));
            }
            // Row 0 all NaN; rows 1–3 hold the extremes (100, -100) in
            // columns 0 and 1 and a NaN after them in the same vector lane
            // for every width (columns 16, 17), so a lane that took the NaN
            // would lose them; other rows a NaN at column r % cols (none in
            // the last two), the values cycling through `vals`.
            let data = |r: usize, c: usize| match (r, c) {
                (0, _) | (1..=3, 16 | 17) => f64::NAN,
                (1..=3, 0) => 100.0,
                (1..=3, 1) => -100.0,
                (1..=3, _) => vals[2 + (r * 3 + c) % 4],
                _ if r < rows - 2 && c == r % cols => f64::NAN,
                _ => vals[(r * 3 + c) % vals.len()],
            };
            macro_rules! run {
                ($ty:ty) => {{
                    // Sums get finite values (NaN and inf would hide a lost lane).
                    let x = Tensor::<$ty>::from_fn([rows, cols], |i| {
                        if op == "sum" {
                            ((i[0] * 7 + i[1] * 3) % 11) as $ty * 0.25 - 1.0
                        } else {
                            data(i[0], i[1]) as $ty
                        }
                    });
                    for k in &kernels {
                        // Sums are reassociated across lanes (SPEC leaves a
                        // reduction's order open): a relative tolerance.
                        let tol = if op == "sum" { 1e-5 } else { 0.0 };
                        check::<$ty>(k, &[(&x).into()], &[], tol, &format!("{t} {op} reduction"));
                    }
                }};
            }
            if t == DType::F32 { run!(f32) } else { run!(f64) }
        }
    }
}
