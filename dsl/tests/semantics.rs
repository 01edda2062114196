//! SPEC §2 semantics end to end on the interpreter: definitions built with the
//! builder API, lowered, run. (The backends' own suites compare against this.)

use texpr_dsl::te::{self, Expr, FuncBuilder};
use texpr_dsl::testing::{AnyTensor, interp};
use texpr_dsl::{Call, DType, Data, DataMut, Program, Scalar, Tensor};

/// Runs a single-output function of one input on the interpreter.
fn run(f: &FuncBuilder, input: AnyTensor, params: &[Scalar], out: DType, out_shape: &[usize]) -> AnyTensor {
    let program = Program::new(f.build().unwrap());
    let lowered = program.lower_unscheduled().unwrap();
    let dims: Vec<i64> = input.shape().iter().map(|d| *d as i64).collect();
    let mut o = AnyTensor::zeros(out, out_shape);
    {
        let data: Vec<Data<'_>> = vec![input.data()];
        let mut outs: Vec<DataMut<'_>> = vec![o.data_mut()];
        let exe = interp(&lowered).unwrap();
        // SAFETY: one input of the shape its dims come from, an output of the shape given.
        unsafe { exe.run(&mut Call { dims: &dims, params, inputs: &data, outputs: &mut outs }).unwrap() };
    }
    o
}

fn elementwise(dtype: DType, out: DType, body: impl FnOnce(Expr) -> Expr) -> FuncBuilder {
    let mut f = FuncBuilder::new("f");
    let x = f.input("x", dtype, ["N"]);
    f.output(out, ["N"]);
    let y = f.compute("y", ["i"], |[i]| body(x.at([i])));
    f.ret([y]);
    f
}

fn values(t: &AnyTensor) -> Vec<Scalar> {
    (0..t.len()).filter_map(|i| t.get(i)).collect()
}

#[test]
fn integer_division_floors_and_zero_divisor_gives_zero() {
    let x = Tensor::from_vec([6], vec![-7i32, 7, -7, 7, i32::MIN, 5]).unwrap();
    let d = [2i32, -2, -2, 0, -1, 0];
    for (op, want) in [("div", vec![-4, -4, 3, 0, i32::MIN, 0]), ("rem", vec![1, -1, -1, 0, 0, 0])] {
        let mut f = FuncBuilder::new("f");
        let xr = f.input("x", DType::I32, ["N"]);
        let dr = f.input("d", DType::I32, ["N"]);
        f.output(DType::I32, ["N"]);
        let y = f.compute(
            "y",
            ["i"],
            |[i]| if op == "div" { xr.at([&i]) / dr.at([&i]) } else { xr.at([&i]) % dr.at([&i]) },
        );
        f.ret([y]);
        let program = Program::new(f.build().unwrap());
        let lowered = program.lower_unscheduled().unwrap();
        let dt = Tensor::from_vec([6], d.to_vec()).unwrap();
        let mut out = Tensor::<i32>::zeros([6]);
        {
            let data = vec![x.data(), dt.data()];
            let mut outs = vec![out.data_mut()];
            let exe = interp(&lowered).unwrap();
            // SAFETY: two inputs and one output of 6 elements, N = 6.
            unsafe { exe.run(&mut Call { dims: &[6], params: &[], inputs: &data, outputs: &mut outs }).unwrap() };
        }
        assert_eq!(out.as_slice(), want.as_slice(), "{op}");
    }
}

#[test]
fn integer_overflow_wraps() {
    let f = elementwise(DType::U8, DType::U8, |x| x * 3 + 250);
    let y = run(&f, AnyTensor::U8(Tensor::from_vec([3], vec![0u8, 2, 200]).unwrap()), &[], DType::U8, &[3]);
    assert_eq!(values(&y), vec![Scalar::U8(250), Scalar::U8(0), Scalar::U8(82)]);
    let f = elementwise(DType::I64, DType::I64, |x| -x);
    let y = run(&f, AnyTensor::I64(Tensor::from_vec([2], vec![i64::MIN, 5]).unwrap()), &[], DType::I64, &[2]);
    assert_eq!(values(&y), vec![Scalar::I64(i64::MIN), Scalar::I64(-5)]);
}

#[test]
fn casts_follow_rust_as() {
    let f = elementwise(DType::F32, DType::I32, |x| x.cast(DType::I32));
    let x = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 3.99, -3.99, 1e10];
    let y = run(&f, AnyTensor::F32(Tensor::from_vec([6], x).unwrap()), &[], DType::I32, &[6]);
    assert_eq!(
        values(&y),
        [0, i32::MAX, i32::MIN, 3, -3, i32::MAX].iter().map(|v| Scalar::I32(*v)).collect::<Vec<_>>()
    );
    let f = elementwise(DType::I32, DType::U8, |x| x.cast(DType::U8));
    let y = run(&f, AnyTensor::I32(Tensor::from_vec([3], vec![-1, 256, 300]).unwrap()), &[], DType::U8, &[3]);
    assert_eq!(values(&y), vec![Scalar::U8(255), Scalar::U8(0), Scalar::U8(44)]);
    let f = elementwise(DType::F32, DType::F16, |x| x.cast(DType::F16));
    let y = run(&f, AnyTensor::F32(Tensor::from_vec([2], vec![1.0e6, 0.1]).unwrap()), &[], DType::F16, &[2]);
    assert_eq!(values(&y), vec![Scalar::F16(half::f16::INFINITY), Scalar::F16(half::f16::from_f32(0.1))]);
}

#[test]
fn nan_and_inf_propagate_ieee() {
    let f = elementwise(DType::F64, DType::F64, |x| x.clone() * 0.0 + te::sqrt(x));
    let y =
        run(&f, AnyTensor::F64(Tensor::from_vec([3], vec![f64::INFINITY, -1.0, 4.0]).unwrap()), &[], DType::F64, &[3]);
    let v: Vec<f64> = values(&y).iter().map(|s| s.as_f64()).collect();
    assert!(v[0].is_nan() && v[1].is_nan() && v[2] == 2.0, "{v:?}");
    // min/max ignore NaN like f32::max.
    let f = elementwise(DType::F32, DType::F32, |x| te::max(x, 1.0));
    let y = run(&f, AnyTensor::F32(Tensor::from_vec([2], vec![f32::NAN, 3.0]).unwrap()), &[], DType::F32, &[2]);
    assert_eq!(values(&y), vec![Scalar::F32(1.0), Scalar::F32(3.0)]);
}

#[test]
fn empty_reductions_give_identities() {
    for (op, dtype, want) in [
        (texpr_dsl::ReduceOp::Max, DType::F32, Scalar::F32(f32::NEG_INFINITY)),
        (texpr_dsl::ReduceOp::Min, DType::F32, Scalar::F32(f32::INFINITY)),
        (texpr_dsl::ReduceOp::Max, DType::I16, Scalar::I16(i16::MIN)),
        (texpr_dsl::ReduceOp::Min, DType::U32, Scalar::U32(u32::MAX)),
        (texpr_dsl::ReduceOp::Sum, DType::F64, Scalar::F64(0.0)),
        (texpr_dsl::ReduceOp::Prod, DType::I32, Scalar::I32(1)),
    ] {
        let mut f = FuncBuilder::new("r");
        let x = f.input("x", dtype, ["N", "K"]);
        f.output(dtype, ["N"]);
        let y = f.compute("y", ["i"], |[i]| te::reduce(op, vec![te::rvar("k", 0, "K")], x.at([i, Expr::name("k")])));
        f.ret([y]);
        let y = run(&f, AnyTensor::zeros(dtype, &[2, 0]), &[], dtype, &[2]);
        assert_eq!(values(&y), vec![want, want], "{op:?} {dtype}");
    }
}

#[test]
fn zero_sized_dims_run_nothing() {
    let f = elementwise(DType::F32, DType::F32, |x| x / 0.0);
    let y = run(&f, AnyTensor::F32(Tensor::zeros([0])), &[], DType::F32, &[0]);
    assert!(y.is_empty());
}

#[test]
fn lazy_if_and_eager_select() {
    // `if` evaluates only the taken branch, so the shifted load is safe; the
    // same load under `select` (which evaluates both) always runs, and is
    // refused when the definition is built.
    let mut f = FuncBuilder::new("shift");
    let x = f.input("x", DType::I32, ["N"]);
    f.output(DType::I32, ["N"]);
    let y = f.compute("y", ["i"], |[i]| te::if_((&i + 1).lt("N"), x.at([&i + 1]), -1));
    f.ret([y]);
    let y = run(&f, AnyTensor::I32(Tensor::from_vec([3], vec![1, 2, 3]).unwrap()), &[], DType::I32, &[3]);
    assert_eq!(values(&y), vec![Scalar::I32(2), Scalar::I32(3), Scalar::I32(-1)]);

    let mut f = FuncBuilder::new("shift");
    let x = f.input("x", DType::I32, ["N"]);
    f.output(DType::I32, ["N"]);
    let y = f.compute("y", ["i"], |[i]| te::select((&i + 1).lt("N"), x.at([&i + 1]), Expr::int(-1)));
    f.ret([y]);
    let e = f.build().unwrap_err().to_string();
    assert_eq!(
        e,
        "shift: index 0 of `x` (`i + 1`) is out of bounds for every shape: it reaches past the end of its range 0..N"
    );
}

#[test]
fn math_functions_are_accurate() {
    let xs: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.23).collect();
    for (name, reference) in [
        ("exp", f64::exp as fn(f64) -> f64),
        ("tanh", f64::tanh),
        ("sin", f64::sin),
        ("cos", f64::cos),
        ("erf", libm_erf),
        ("sigmoid", |x: f64| 1.0 / (1.0 + (-x).exp())),
    ] {
        let f = elementwise(DType::F32, DType::F32, |x| te::call(name, vec![x]));
        let y =
            run(&f, AnyTensor::F32(Tensor::from_vec([xs.len()], xs.clone()).unwrap()), &[], DType::F32, &[xs.len()]);
        for (i, v) in values(&y).iter().enumerate() {
            let want = reference(xs[i] as f64);
            let got = v.as_f64();
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1e-30) + 1e-38,
                "{name}({}) = {got}, want {want}",
                xs[i]
            );
        }
    }
}

fn libm_erf(x: f64) -> f64 {
    // Reference from the interpreter's own dependency (exact to f64).
    Scalar::call(texpr_dsl::Builtin::Erf, &[Scalar::F64(x)]).as_f64()
}

#[test]
fn scalar_params_and_literals_typed_by_context() {
    let mut f = FuncBuilder::new("axpb");
    let x = f.input("x", DType::F64, ["N"]);
    let a = f.scalar("a", DType::F64);
    f.output(DType::F64, ["N"]);
    let y = f.compute("y", ["i"], |[i]| a * x.at([i]) + 0.5);
    f.ret([y]);
    let y =
        run(&f, AnyTensor::F64(Tensor::from_vec([2], vec![1.0, 2.0]).unwrap()), &[Scalar::F64(3.0)], DType::F64, &[2]);
    assert_eq!(values(&y), vec![Scalar::F64(3.5), Scalar::F64(6.5)]);
}
