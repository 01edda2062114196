//! The SPEC §2 definitions and the SPEC §3 GPU schedule on OpenCL (PoCL)
//! give the interpreter's results, on shapes with tails.

use texpr_dsl::value::Scalar;
use texpr_dsl::{DType, Schedule, Target};

use crate::common::*;

#[test]
fn matmul_spec_schedule_with_tails() {
    if !opencl() {
        return;
    }
    let f = matmul();
    let s = matmul_gpu(&f);
    let mut rng = Rng(1);
    for (m, k, n) in [(37, 21, 19), (16, 16, 16), (1, 1, 1), (17, 33, 5), (0, 4, 3), (5, 0, 7), (50, 3, 40)] {
        let a = rng.host(DType::F32, m * k);
        let b = rng.host(DType::F32, k * n);
        let (got, want) = opencl_and_interp(&f, &s, &[(&a, vec![m, k]), (&b, vec![k, n])], &[]);
        assert_agree(&format!("matmul {m}x{k}x{n}"), &got, &want, false);
    }
}

#[test]
fn spec_definitions_default_schedule() {
    if !opencl() {
        return;
    }
    let mut rng = Rng(2);
    // softmax
    let f = softmax();
    for (n, c) in [(3, 5), (17, 70), (1, 1), (65, 3)] {
        let x = rng.host(DType::F32, n * c);
        let (got, want) = opencl_and_interp(&f, &default_gpu(&f), &[(&x, vec![n, c])], &[]);
        assert_agree(&format!("softmax {n}x{c}"), &got, &want, true);
    }
    // axpb_relu
    let f = axpb_relu();
    for n in [1, 63, 64, 65, 200] {
        let x = rng.host(DType::F32, n);
        let params = [Scalar::F32(2.0), Scalar::F32(-0.5)];
        let (got, want) = opencl_and_interp(&f, &default_gpu(&f), &[(&x, vec![n])], &params);
        assert_agree(&format!("axpb_relu {n}"), &got, &want, false);
    }
    // conv3x3
    let f = conv3x3();
    for (b, c, h, w, ff) in [(1, 1, 3, 3, 1), (2, 3, 5, 7, 4), (1, 2, 9, 4, 3)] {
        let x = rng.host(DType::F32, b * c * h * w);
        let wt = rng.host(DType::F32, ff * c * 9);
        let (got, want) = opencl_and_interp(&f, &default_gpu(&f), &[(&x, vec![b, c, h, w]), (&wt, vec![ff, c, 3, 3])], &[]);
        assert_agree(&format!("conv3x3 {b}x{c}x{h}x{w} f={ff}"), &got, &want, false);
    }
}

#[test]
fn unscheduled_gpu_programs_run() {
    // A GPU schedule that binds nothing: single-thread or grid-mapped
    // kernels, still correct.
    if !opencl() {
        return;
    }
    let mut rng = Rng(3);
    let f = softmax();
    let s = Schedule::new(&f, Some(texpr_dsl::TargetClass::Gpu));
    let x = rng.host(DType::F32, 7 * 9);
    let (got, want) = opencl_and_interp(&f, &s, &[(&x, vec![7, 9])], &[]);
    assert_agree("softmax unscheduled", &got, &want, true);
    let f = matmul();
    let s = Schedule::new(&f, Some(texpr_dsl::TargetClass::Gpu));
    let a = rng.host(DType::F32, 5 * 6);
    let b = rng.host(DType::F32, 6 * 7);
    let (got, want) = opencl_and_interp(&f, &s, &[(&a, vec![5, 6]), (&b, vec![6, 7])], &[]);
    assert_agree("matmul unscheduled", &got, &want, false);
    let _ = Target::OpenCl;
}
