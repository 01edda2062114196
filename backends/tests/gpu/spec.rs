//! The SPEC §2 definitions and the SPEC §3 GPU schedule on OpenCL (PoCL)
//! give the interpreter's results, on shapes with tails.

use texpr_dsl::value::Scalar;
use texpr_dsl::{DType, Schedule, Target};

use crate::common::*;

/// `matmul` under `s` on every GPU target against the interpreter, for
/// each `(m, k, n)` (random data from `seed`).
fn matmul_agrees(what: &str, s: &Schedule, seed: u64, shapes: &[(usize, usize, usize)]) {
    let mut rng = Rng(seed);
    for &(m, k, n) in shapes {
        let a = rng.host(DType::F32, m * k);
        let b = rng.host(DType::F32, k * n);
        let inputs = [(&a, vec![m, k]), (&b, vec![k, n])];
        agree_on_gpus(&format!("{what} {m}x{k}x{n}"), s.func(), s, &inputs, &[], Tol::Sum);
    }
}

#[test]
fn matmul_spec_schedule_with_tails() {
    let f = matmul();
    let s = matmul_gpu(&f);
    matmul_agrees(
        "matmul",
        &s,
        1,
        &[(37, 21, 19), (16, 16, 16), (1, 1, 1), (17, 33, 5), (0, 4, 3), (5, 0, 7), (50, 3, 40)],
    );
}

#[test]
fn spec_definitions_default_schedule() {
    let mut rng = Rng(2);
    // softmax
    let f = softmax();
    for (n, c) in [(3, 5), (17, 70), (1, 1), (65, 3)] {
        let x = rng.host(DType::F32, n * c);
        agree_on_gpus(&format!("softmax {n}x{c}"), &f, &default_gpu(&f), &[(&x, vec![n, c])], &[], Tol::Math);
    }
    // axpb_relu
    let f = axpb_relu();
    for n in [1, 63, 64, 65, 200] {
        let x = rng.host(DType::F32, n);
        let params = [Scalar::F32(2.0), Scalar::F32(-0.5)];
        agree_on_gpus(&format!("axpb_relu {n}"), &f, &default_gpu(&f), &[(&x, vec![n])], &params, Tol::Exact);
    }
    // conv3x3
    let f = conv3x3();
    for (b, c, h, w, ff) in [(1, 1, 3, 3, 1), (2, 3, 5, 7, 4), (1, 2, 9, 4, 3)] {
        let x = rng.host(DType::F32, b * c * h * w);
        let wt = rng.host(DType::F32, ff * c * 9);
        agree_on_gpus(
            &format!("conv3x3 {b}x{c}x{h}x{w} f={ff}"),
            &f,
            &default_gpu(&f),
            &[(&x, vec![b, c, h, w]), (&wt, vec![ff, c, 3, 3])],
            &[],
            Tol::Sum,
        );
    }
}

#[test]
fn unscheduled_gpu_programs_run() {
    // A GPU schedule that binds nothing: single-thread or grid-mapped
    // kernels, still correct.
    let mut rng = Rng(3);
    let f = softmax();
    let s = Schedule::new(&f, Some(texpr_dsl::TargetClass::Gpu));
    let x = rng.host(DType::F32, 7 * 9);
    agree_on_gpus("softmax unscheduled", &f, &s, &[(&x, vec![7, 9])], &[], Tol::Math);
    let f = matmul();
    let s = Schedule::new(&f, Some(texpr_dsl::TargetClass::Gpu));
    let a = rng.host(DType::F32, 5 * 6);
    let b = rng.host(DType::F32, 6 * 7);
    agree_on_gpus("matmul unscheduled", &f, &s, &[(&a, vec![5, 6]), (&b, vec![6, 7])], &[], Tol::Sum);
    let _ = Target::OpenCl;
}

/// Caches whose size is only known at run time live in per-thread scratch
/// memory; a shared cache that cannot be made cooperative is private.
#[test]
fn symbolic_caches_use_scratch_memory() {
    use texpr_dsl::{Scope, ThreadAxis};
    let f = rowsum();
    for scope in [Scope::Local, Scope::Shared] {
        let mut s = Schedule::new(&f, Some(texpr_dsl::TargetClass::Gpu));
        let st = s.stage("s").unwrap();
        let i = s.axis(st, "i").unwrap();
        let (io, ii) = s.split_named(i, 4, "io", "ii").unwrap();
        s.bind(io, ThreadAxis::BlockX).unwrap();
        s.bind(ii, ThreadAxis::ThreadX).unwrap();
        let c = s.cache_read_named(st, "x", scope, "x_c").unwrap();
        s.compute_at(c, io).unwrap();
        let l = lower(&s, Target::OpenCl);
        let src = texpr_backends::source(Target::OpenCl, &l).unwrap();
        assert!(src.contains("x_c_scratch"), "{src}");
        if nvrtc() {
            crate::nvrtc::check_cuda("rowsum_scratch", &lower(&s, Target::Cuda));
        }
        let mut rng = Rng(11);
        for (m, n) in [(9, 13), (4, 1), (1, 70)] {
            let x = rng.host(DType::F32, m * n);
            agree_on_gpus(&format!("rowsum {m}x{n} {}", scope.name()), &f, &s, &[(&x, vec![m, n])], &[], Tol::Exact);
        }
    }
}

/// A register accumulator (`cache_write(local)` at the thread loop) and a
/// private input tile.
#[test]
fn local_caches_are_private_arrays() {
    use texpr_dsl::{Scope, ThreadAxis};
    let f = matmul();
    let mut s = Schedule::new(&f, Some(texpr_dsl::TargetClass::Gpu));
    let c = s.stage("c").unwrap();
    let cl = s.cache_write_named(c, Scope::Local, "c_l").unwrap();
    let (i, j) = (s.axis(c, "i").unwrap(), s.axis(c, "j").unwrap());
    let [bi, bj, ti, tj] = s.tile_named(i, j, 8, 8, ["bi", "bj", "ti", "tj"]).unwrap();
    s.bind(bi, ThreadAxis::BlockY).unwrap();
    s.bind(bj, ThreadAxis::BlockX).unwrap();
    s.bind(ti, ThreadAxis::ThreadY).unwrap();
    s.bind(tj, ThreadAxis::ThreadX).unwrap();
    s.compute_at(cl, tj).unwrap();
    let k = s.axis(cl, "k").unwrap();
    let (ko, _) = s.split_named(k, 4, "ko", "ki").unwrap();
    let a_l = s.cache_read_named(cl, "a", Scope::Local, "a_l").unwrap();
    s.compute_at(a_l, ko).unwrap();
    let l = lower(&s, Target::OpenCl);
    let src = texpr_backends::source(Target::OpenCl, &l).unwrap();
    assert!(src.contains("float c_l[1];") && src.contains("float a_l[4];"), "{src}");
    if nvrtc() {
        crate::nvrtc::check_cuda("matmul_local", &lower(&s, Target::Cuda));
    }
    matmul_agrees("matmul local", &s, 12, &[(13, 9, 11), (8, 8, 8), (1, 3, 2)]);
}

/// A source the device compiler rejects is an `Err` with its log and the
/// numbered source.
#[test]
fn build_failures_carry_the_log_and_source() {
    if nvrtc() {
        let e = texpr_backends::cuda::nvrtc_compile(
            "extern \"C\" __global__ void k() { undefined_thing; }\n",
            "bad",
            "sm_90",
        )
        .unwrap_err();
        assert!(e.contains("undefined_thing") && e.contains("   1 | extern"), "{e}");
    }
    if opencl() {
        let cl = texpr_backends::opencl::device().unwrap();
        let e = cl.program("bad", "__kernel void k() { undefined_thing; }\n").err().unwrap().to_string();
        assert!(e.contains("undefined_thing") && e.contains("   1 | __kernel"), "{e}");
    }
}

/// `cache_write(shared)` attached at a block loop: the tile is computed
/// cooperatively (each thread owns whole elements, reductions included),
/// then copied out under the tail guards.
#[test]
fn shared_accumulator_tile() {
    use texpr_dsl::{Scope, ThreadAxis};
    let f = matmul();
    let mut s = Schedule::new(&f, Some(texpr_dsl::TargetClass::Gpu));
    let c = s.stage("c").unwrap();
    let cs = s.cache_write_named(c, Scope::Shared, "c_s").unwrap();
    let (i, j) = (s.axis(c, "i").unwrap(), s.axis(c, "j").unwrap());
    let [bi, bj, ti, tj] = s.tile_named(i, j, 8, 4, ["bi", "bj", "ti", "tj"]).unwrap();
    s.bind(bi, ThreadAxis::BlockY).unwrap();
    s.bind(bj, ThreadAxis::BlockX).unwrap();
    s.bind(ti, ThreadAxis::ThreadY).unwrap();
    s.bind(tj, ThreadAxis::ThreadX).unwrap();
    s.compute_at(cs, bj).unwrap();
    let l = lower(&s, Target::OpenCl);
    let src = texpr_backends::source(Target::OpenCl, &l).unwrap();
    assert!(src.contains("__local float c_s[32];") && src.contains("barrier(CLK_LOCAL_MEM_FENCE);"), "{src}");
    if std::env::var_os("TEXPR_TEST_PRINT").is_some() {
        println!("{src}");
    }
    if nvrtc() {
        crate::nvrtc::check_cuda("matmul_shared_acc", &lower(&s, Target::Cuda));
    }
    matmul_agrees("matmul shared acc", &s, 13, &[(13, 9, 11), (8, 5, 4), (1, 3, 2), (20, 1, 9)]);
}

/// The register-blocked matmul schedule (`cache_write(local)` at the
/// thread loop, shared input tiles at its `k` loop): on shapes with tails
/// in every dimension; the per-thread tile is fully unrolled.
#[test]
fn register_blocked_matmul() {
    let f = matmul();
    for (r, k_step) in [(2, 16), (4, 8)] {
        let s = texpr_dsl::testing::spec::matmul_gpu_registers(&f, r, k_step).unwrap();
        let src = texpr_backends::source(Target::OpenCl, &lower(&s, Target::OpenCl)).unwrap();
        if std::env::var_os("TEXPR_TEST_PRINT").is_some() {
            println!("{src}");
        }
        assert!(src.contains(&format!("float c_l[{}];", r * r)), "{src}");
        if nvrtc() {
            crate::nvrtc::check_cuda("matmul_registers", &lower(&s, Target::Cuda));
        }
        matmul_agrees(
            &format!("matmul registers r={r} k_step={k_step}"),
            &s,
            14,
            &[(70, 37, 45), (32, 16, 32), (1, 1, 1), (17, 5, 100)],
        );
    }
}
