//! SPEC §2 semantics on edge values, every element type: the OpenCL
//! kernels give the interpreter's results (exactly, but for transcendental
//! functions), and the CUDA kernels compile (and run, on a machine with a
//! CUDA GPU).

use texpr_dsl::te::{self, Expr, FuncBuilder};
use texpr_dsl::value::Scalar;
use texpr_dsl::{DType, Func, Target, bf16, f16};

use crate::common::*;

type Op = (&'static str, DType, fn(Expr, Expr) -> Expr);

/// One output per op over `a` and `b` of type `t`.
fn ops_func(name: &str, t: DType, ops: &[Op]) -> Func {
    let mut f = FuncBuilder::new(name);
    let a = f.input("a", t, ["N"]);
    let b = f.input("b", t, ["N"]);
    let mut outs = vec![];
    for (op, ot, build) in ops {
        f.output(*ot, ["N"]);
        let (a, b) = (a.clone(), b.clone());
        outs.push(f.compute(*op, ["i"], move |[i]| build(a.at([&i]), b.at([&i]))));
    }
    f.ret(outs);
    f.build().unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every pair of `vals` as inputs `a`, `b`.
fn pairs(t: DType, vals: &[Scalar]) -> (Host, Host) {
    let mut xs = vec![];
    let mut ys = vec![];
    for x in vals {
        for y in vals {
            xs.push(*x);
            ys.push(*y);
        }
    }
    (Host::from_scalars(t, &xs), Host::from_scalars(t, &ys))
}

fn check(name: &str, t: DType, ops: &[Op], vals: &[Scalar], tol: Tol) {
    let f = ops_func(name, t, ops);
    let s = default_gpu(&f);
    if nvrtc() {
        crate::nvrtc::check_cuda(name, &lower(&s, Target::Cuda));
    }
    let (a, b) = pairs(t, vals);
    let n = a.len();
    for target in gpu_targets() {
        let (got, want) = device_and_interp(target, &f, &s, &[(&a, vec![n]), (&b, vec![n])], &[]);
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            for i in 0..n {
                let (x, y) = (g.get(i), w.get(i));
                assert!(
                    agree(x, y, tol),
                    "{name}: `{}`({}, {}) = {x} on {target}, {y} in the interpreter",
                    ops[k].0,
                    a.get(i),
                    b.get(i)
                );
            }
        }
    }
}

fn int_vals(t: DType) -> Vec<Scalar> {
    let (lo, hi) = texpr_dsl::value::int_range(t);
    [0, 1, -1, 2, -2, 3, -7, 7, lo, hi, lo + 1, hi - 1].iter().map(|v| Scalar::from_i128(t, *v)).collect()
}

fn float_vals() -> Vec<Scalar> {
    [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        2.5,
        -2.5,
        3.7,
        -3.7,
        1e10,
        -1e10,
        65504.0,
        7e4,
        3e38,
        1e-8,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        300.0,
        -129.0,
        4.5e9,
    ]
    .iter()
    .map(|v| Scalar::F64(*v))
    .collect()
}

macro_rules! op {
    ($name:literal, $t:expr, |$a:ident, $b:ident| $e:expr) => {
        ($name, $t, {
            fn f($a: Expr, $b: Expr) -> Expr {
                let _ = (&$a, &$b);
                $e
            }
            f
        })
    };
}

fn int_ops(t: DType) -> Vec<Op> {
    let mut v: Vec<Op> = vec![
        op!("add", t, |a, b| a + b),
        op!("sub", t, |a, b| a - b),
        op!("mul", t, |a, b| a * b),
        op!("div", t, |a, b| a / b),
        op!("rem", t, |a, b| a % b),
        op!("neg", t, |a, b| -a),
        op!("not", t, |a, b| !a),
        op!("min", t, |a, b| te::min(a, b)),
        op!("max", t, |a, b| te::max(a, b)),
        op!("abs", t, |a, b| te::abs(a)),
        op!("clamp", t, |a, b| te::clamp(a, b, 3)),
        op!("fma", t, |a, b| te::fma(a.clone(), b, a)),
        op!("lt", DType::Bool, |a, b| a.lt(b)),
        op!("ne", DType::Bool, |a, b| a.ne(b)),
        op!("sel", t, |a, b| te::select(a.clone().gt(b.clone()), a, b)),
        op!("to_f32", DType::F32, |a, b| a.cast(DType::F32)),
        op!("to_f64", DType::F64, |a, b| a.cast(DType::F64)),
        op!("to_f16", DType::F16, |a, b| a.cast(DType::F16)),
        op!("to_bf16", DType::BF16, |a, b| a.cast(DType::BF16)),
        op!("to_i8", DType::I8, |a, b| a.cast(DType::I8)),
        op!("to_u16", DType::U16, |a, b| a.cast(DType::U16)),
        op!("to_i64", DType::I64, |a, b| a.cast(DType::I64)),
        op!("to_u64", DType::U64, |a, b| a.cast(DType::U64)),
    ];
    if t.is_unsigned_int() {
        v.retain(|o| o.0 != "abs" && o.0 != "neg");
    }
    v
}

fn float_ops(t: DType) -> Vec<Op> {
    vec![
        op!("add", t, |a, b| a + b),
        op!("sub", t, |a, b| a - b),
        op!("mul", t, |a, b| a * b),
        op!("div", t, |a, b| a / b),
        op!("rem", t, |a, b| a % b),
        op!("neg", t, |a, b| -a),
        op!("min", t, |a, b| te::min(a, b)),
        op!("max", t, |a, b| te::max(a, b)),
        op!("abs", t, |a, b| te::abs(a)),
        op!("floor", t, |a, b| te::floor(a)),
        op!("ceil", t, |a, b| te::ceil(a)),
        op!("round", t, |a, b| te::round(a)),
        op!("trunc", t, |a, b| te::trunc(a)),
        op!("sqrt", t, |a, b| te::sqrt(a)),
        op!("clamp", t, |a, b| te::clamp(a, b, 1.5)),
        op!("lt", DType::Bool, |a, b| a.lt(b)),
        op!("ge", DType::Bool, |a, b| a.ge(b)),
        op!("eq", DType::Bool, |a, b| a.eq(b)),
        op!("ne", DType::Bool, |a, b| a.ne(b)),
        op!("lazy_if", t, |a, b| te::if_(a.clone().lt(b.clone()), a, b)),
        op!("to_i8", DType::I8, |a, b| a.cast(DType::I8)),
        op!("to_u8", DType::U8, |a, b| a.cast(DType::U8)),
        op!("to_i32", DType::I32, |a, b| a.cast(DType::I32)),
        op!("to_u32", DType::U32, |a, b| a.cast(DType::U32)),
        op!("to_i64", DType::I64, |a, b| a.cast(DType::I64)),
        op!("to_u64", DType::U64, |a, b| a.cast(DType::U64)),
        op!("to_f16", DType::F16, |a, b| a.cast(DType::F16)),
        op!("to_bf16", DType::BF16, |a, b| a.cast(DType::BF16)),
        op!("to_f32", DType::F32, |a, b| a.cast(DType::F32)),
        op!("to_f64", DType::F64, |a, b| a.cast(DType::F64)),
    ]
}

fn math_ops(t: DType) -> Vec<Op> {
    vec![
        op!("exp", t, |a, b| te::exp(a)),
        op!("exp2", t, |a, b| te::exp2(a)),
        op!("ln", t, |a, b| te::ln(te::abs(a))),
        op!("log2", t, |a, b| te::log2(te::abs(a))),
        op!("rsqrt", t, |a, b| te::rsqrt(te::abs(a))),
        op!("sin", t, |a, b| te::sin(a)),
        op!("cos", t, |a, b| te::cos(a)),
        op!("tanh", t, |a, b| te::tanh(a)),
        op!("sigmoid", t, |a, b| te::sigmoid(a)),
        op!("erf", t, |a, b| te::erf(a)),
        op!("pow", t, |a, b| te::pow(te::abs(a), b)),
        op!("fma", t, |a, b| te::fma(a.clone(), b, a)),
    ]
}

#[test]
fn integers() {
    for t in [DType::I8, DType::I16, DType::I32, DType::I64, DType::U8, DType::U16, DType::U32, DType::U64] {
        check(&format!("ints_{t}"), t, &int_ops(t), &int_vals(t), Tol::Exact);
    }
}

#[test]
fn floats() {
    let vals = float_vals();
    for t in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        check(&format!("floats_{t}"), t, &float_ops(t), &vals, Tol::Exact);
    }
}

#[test]
fn math_functions() {
    let vals: Vec<Scalar> =
        [0.0, 1.0, -1.0, 0.5, 2.5, -2.5, 3.7, -0.3, 10.0, 1e-3].iter().map(|v| Scalar::F64(*v)).collect();
    for t in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        check(&format!("math_{t}"), t, &math_ops(t), &vals, Tol::Math);
    }
}

#[test]
fn bool_and_params() {
    // bool tensors and scalar parameters of every kind of type.
    let mut f = FuncBuilder::new("params");
    let x = f.input("x", DType::Bool, ["N"]);
    let h = f.scalar("h", DType::F16);
    let g = f.scalar("g", DType::BF16);
    let k = f.scalar("k", DType::I8);
    let p = f.scalar("p", DType::Bool);
    f.output(DType::F32, ["N"]);
    f.output(DType::Bool, ["N"]);
    let y = f.compute("y", ["i"], move |[i]| {
        te::if_(x.at([&i]), h.clone().cast(DType::F32) + g.clone().cast(DType::F32), k.clone().cast(DType::F32))
    });
    let z = f.compute("z", ["i"], move |[i]| i.lt(2).and(p.clone()));
    f.ret([y, z]);
    let func = f.build().unwrap();
    let s = default_gpu(&func);
    if nvrtc() {
        crate::nvrtc::check_cuda("params", &lower(&s, Target::Cuda));
    }
    let xs = Host::Bool(vec![true, false, true, true, false]);
    let params =
        [Scalar::F16(f16::from_f32(1.5)), Scalar::BF16(bf16::from_f32(-2.25)), Scalar::I8(-7), Scalar::Bool(true)];
    agree_on_gpus("params", &func, &s, &[(&xs, vec![5])], &params, Tol::Exact);
}
