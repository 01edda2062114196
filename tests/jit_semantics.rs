//! SPEC §2 semantics on `Target::Cpu`, compared with the interpreter
//! (`Target::Interp`, whose scalar semantics are the oracle): integer edge
//! cases (floor division, zero divisors, `MIN / -1`, wrapping), every cast
//! between every pair of element types on edge values (saturation, NaN),
//! float NaN/inf handling of `min`/`max` and comparisons, built-in
//! functions, and empty dims. Each kernel runs unscheduled and with its
//! loop split, vectorized and parallelized, so the scalar, vector and
//! outlined code paths all meet the oracle.

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

fn int_edges(t: DType) -> Vec<Scalar> {
    let (lo, hi) = texpr_dsl::value::int_range(t);
    [lo, lo + 1, -7, -3, -2, -1, 0, 1, 2, 3, 7, hi - 1, hi].into_iter().map(|v| Scalar::from_i128(t, v)).collect()
}

/// Pairs of values as two tensors of `n*n` elements.
macro_rules! pairs {
    ($t:ty, $vals:expr) => {{
        let vals: Vec<$t> = $vals.iter().map(|s| <$t>::from_scalar(*s).unwrap()).collect();
        let n = vals.len();
        let a = Tensor::from_fn([n * n], |i| vals[i[0] / n]);
        let b = Tensor::from_fn([n * n], |i| vals[i[0] % n]);
        (a, b)
    }};
}

/// `None` when the type checker rejects the operation for the type (like
/// Rust: no `-` on unsigned, no `bool as f32`).
fn binary_func(t: DType, op: &str) -> Option<texpr::Func> {
    let mut f = FuncBuilder::new("bin");
    let a = f.input("a", t, ["N"]);
    let b = f.input("b", t, ["N"]);
    let cmp = matches!(op, "<" | "<=" | ">" | ">=" | "==" | "!=");
    f.output(if cmp { DType::Bool } else { t }, ["N"]);
    let y = f.compute("y", ["i"], |[i]| {
        let (x, y) = (a.at([&i]), b.at([&i]));
        match op {
            "+" => x + y,
            "-" => x - y,
            "*" => x * y,
            "/" => x / y,
            "%" => x % y,
            "min" => te::min(x, y),
            "max" => te::max(x, y),
            "<" => x.lt(y),
            "<=" => x.le(y),
            ">" => x.gt(y),
            ">=" => x.ge(y),
            "==" => x.eq(y),
            "!=" => x.ne(y),
            "neg" => -&x,
            "not" => !x,
            "abs" => te::abs(x),
            "fma" => te::fma(x.clone(), y, x),
            "clamp" => te::clamp(x, te::min(y.clone(), 3i64), te::max(y, 3i64)),
            other => panic!("unknown op {other}"),
        }
    });
    f.ret([y]);
    f.build().ok()
}

macro_rules! int_ops {
    ($($name:ident: $t:ty => $dt:expr;)*) => {$(
        #[test]
        fn $name() {
            let (a, b) = pairs!($t, int_edges($dt));
            for op in ["+", "-", "*", "/", "%", "min", "max", "neg", "not", "abs", "fma", "clamp"] {
                for k in variants(binary_func($dt, op), "y", 8) {
                    check::<$t>(&k, &[(&a).into(), (&b).into()], &[], 0.0, &format!("{} {op}", $dt));
                }
            }
            for op in ["<", "<=", ">", ">=", "==", "!="] {
                for k in variants(binary_func($dt, op), "y", 8) {
                    check::<bool>(&k, &[(&a).into(), (&b).into()], &[], 0.0, &format!("{} {op}", $dt));
                }
            }
        }
    )*};
}

int_ops! {
    ints_i8: i8 => DType::I8;
    ints_i16: i16 => DType::I16;
    ints_i32: i32 => DType::I32;
    ints_i64: i64 => DType::I64;
    ints_u8: u8 => DType::U8;
    ints_u16: u16 => DType::U16;
    ints_u32: u32 => DType::U32;
    ints_u64: u64 => DType::U64;
}

fn float_edges(t: DType) -> Vec<Scalar> {
    [
        f64::NAN,
        f64::NEG_INFINITY,
        -1e30,
        -300.5,
        -2.5,
        -1.5,
        -1.0,
        -0.5,
        -0.0,
        0.0,
        1e-30,
        0.5,
        1.0,
        1.5,
        2.5,
        3.0,
        7.25,
        1e5,
        1e30,
        f64::INFINITY,
    ]
    .into_iter()
    .map(|v| Scalar::from_f64(t, v))
    .collect()
}

macro_rules! float_ops {
    ($($name:ident: $t:ty => $dt:expr;)*) => {$(
        #[test]
        fn $name() {
            let (a, b) = pairs!($t, float_edges($dt));
            for op in ["+", "-", "*", "/", "%", "min", "max", "neg", "abs", "fma", "clamp"] {
                // fma: the oracle rounds an exact f64 product-sum; a fused
                // vector fma may differ in the last place.
                let tol = if op == "fma" { 1e-6 } else { 0.0 };
                for k in variants(binary_func($dt, op), "y", 8) {
                    check::<$t>(&k, &[(&a).into(), (&b).into()], &[], tol, &format!("{} {op}", $dt));
                }
            }
            for op in ["<", "<=", ">", ">=", "==", "!="] {
                for k in variants(binary_func($dt, op), "y", 8) {
                    check::<bool>(&k, &[(&a).into(), (&b).into()], &[], 0.0, &format!("{} {op}", $dt));
                }
            }
        }
    )*};
}

float_ops! {
    floats_f32: f32 => DType::F32;
    floats_f64: f64 => DType::F64;
    floats_f16: f16 => DType::F16;
    floats_bf16: bf16 => DType::BF16;
}

fn unary_func(t: DType, f: &str) -> texpr::Func {
    let mut b = FuncBuilder::new("un");
    let x = b.input("x", t, ["N"]);
    b.output(t, ["N"]);
    let y = b.compute("y", ["i"], |[i]| te::call(f, vec![x.at([&i])]));
    b.ret([y]);
    b.build().unwrap()
}

macro_rules! float_builtins {
    ($($name:ident: $t:ty => $dt:expr, $tol:expr;)*) => {$(
        #[test]
        fn $name() {
            let vals: Vec<Scalar> = float_edges($dt)
                .into_iter()
                .chain((-40..40).map(|k| Scalar::from_f64($dt, k as f64 * 0.37 + 0.013)))
                .collect();
            let x: Vec<$t> = vals.iter().map(|s| <$t>::from_scalar(*s).unwrap()).collect();
            let n = x.len();
            let x = Tensor::from_vec([n], x).unwrap();
            for f in ["sqrt", "floor", "ceil", "round", "trunc", "abs"] {
                for k in variants(Some(unary_func($dt, f)), "y", 8) {
                    check::<$t>(&k, &[(&x).into()], &[], 0.0, &format!("{} {f}", $dt));
                }
            }
            for f in ["exp", "exp2", "ln", "log2", "rsqrt", "sin", "cos", "tanh", "sigmoid", "erf"] {
                for k in variants(Some(unary_func($dt, f)), "y", 8) {
                    check::<$t>(&k, &[(&x).into()], &[], $tol, &format!("{} {f}", $dt));
                }
            }
        }
    )*};
}

float_builtins! {
    builtins_f32: f32 => DType::F32, 2e-6;
    builtins_f64: f64 => DType::F64, 1e-12;
    builtins_f16: f16 => DType::F16, 1e-3;
    builtins_bf16: bf16 => DType::BF16, 8e-3;
}

fn cast_func(from: DType, to: DType) -> Option<texpr::Func> {
    let mut b = FuncBuilder::new("cast");
    let x = b.input("x", from, ["N"]);
    b.output(to, ["N"]);
    let y = b.compute("y", ["i"], |[i]| x.at([&i]).cast(to));
    b.ret([y]);
    b.build().ok()
}

fn edges(t: DType) -> Vec<Scalar> {
    match t {
        DType::Bool => vec![Scalar::Bool(false), Scalar::Bool(true)],
        t if t.is_float() => float_edges(t)
            .into_iter()
            .chain(
                [
                    -129.0,
                    -128.7,
                    127.9,
                    255.5,
                    256.0,
                    65535.9,
                    65536.0,
                    2147483648.0,
                    -2147483649.0,
                    4294967296.0,
                    1.8446744073709552e19,
                    9.3e18,
                    -9.3e18,
                ]
                .map(|v| Scalar::from_f64(t, v)),
            )
            .collect(),
        t => int_edges(t),
    }
}

fn cast_to_all<T: Element>(dt: DType) {
    let x: Vec<T> = edges(dt).iter().map(|s| T::from_scalar(*s).unwrap()).collect();
    let x = Tensor::from_vec([x.len()], x).unwrap();
    macro_rules! to {
        ($($u:ty => $du:expr),*) => {$(
            for k in variants(cast_func(dt, $du), "y", 4) {
                check::<$u>(&k, &[(&x).into()], &[], 0.0, &format!("{} as {}", dt, $du));
            }
        )*};
    }
    to!(bool => DType::Bool, i8 => DType::I8, i16 => DType::I16, i32 => DType::I32, i64 => DType::I64,
        u8 => DType::U8, u16 => DType::U16, u32 => DType::U32, u64 => DType::U64,
        f16 => DType::F16, bf16 => DType::BF16, f32 => DType::F32, f64 => DType::F64);
}

macro_rules! cast_from {
    ($($name:ident: $t:ty => $dt:expr;)*) => {$(
        #[test]
        fn $name() {
            cast_to_all::<$t>($dt);
        }
    )*};
}

cast_from! {
    casts_from_bool: bool => DType::Bool;
    casts_from_i8: i8 => DType::I8;
    casts_from_i16: i16 => DType::I16;
    casts_from_i32: i32 => DType::I32;
    casts_from_i64: i64 => DType::I64;
    casts_from_u8: u8 => DType::U8;
    casts_from_u16: u16 => DType::U16;
    casts_from_u32: u32 => DType::U32;
    casts_from_u64: u64 => DType::U64;
    casts_from_f16: f16 => DType::F16;
    casts_from_bf16: bf16 => DType::BF16;
    casts_from_f32: f32 => DType::F32;
    casts_from_f64: f64 => DType::F64;
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
