//! SPEC §2 semantics on edge values, every element type: the shared table
//! (`texpr_dsl::testing::semantics`, which every backend runs) under the
//! GPU default schedule — the OpenCL kernels give the interpreter's results
//! (within the table's tolerances), and the CUDA kernels compile (and run,
//! on a machine with a CUDA GPU) — and scalar parameters of the narrow
//! types.

use texpr_dsl::te::{self, FuncBuilder};
use texpr_dsl::testing::semantics::{check, table};
use texpr_dsl::value::Scalar;
use texpr_dsl::{DType, Func, Schedule, Target, bf16, f16};

use crate::common::*;

fn run(prefix: &str) {
    let schedules = |f: &Func| -> Vec<(String, Schedule)> { vec![("the GPU default".into(), default_gpu(f))] };
    if nvrtc() {
        for g in table().iter().filter(|g| g.name.starts_with(prefix)) {
            crate::nvrtc::check_cuda(&g.name, &lower(&default_gpu(&g.func), Target::Cuda));
        }
    }
    for target in gpu_targets() {
        let compile = |l: &texpr_dsl::Lowered| texpr_backends::compile(target, l);
        if let Err(e) = check(prefix, target, &schedules, &compile) {
            panic!("{e}");
        }
    }
}

#[test]
fn integers() {
    run("ints_");
}

#[test]
fn floats() {
    run("floats_");
}

#[test]
fn math_functions() {
    run("math_");
}

#[test]
fn casts() {
    run("casts_");
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
    let xs = Host::from(texpr_dsl::Tensor::from_vec([5], vec![true, false, true, true, false]).unwrap());
    let params =
        [Scalar::F16(f16::from_f32(1.5)), Scalar::BF16(bf16::from_f32(-2.25)), Scalar::I8(-7), Scalar::Bool(true)];
    agree_on_gpus("params", &func, &s, &[(&xs, vec![5])], &params, Tol::Exact);
}
