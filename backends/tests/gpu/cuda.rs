//! Runs on a real CUDA GPU. CI has none, so these tests are `#[ignore]`d
//! (listed as ignored, never skipped silently); on a machine with a GPU run
//! `cargo test -p texpr-backends --test gpu -- --include-ignored`, and a
//! missing GPU then fails them. The other GPU tests add a CUDA run of their
//! cases by themselves wherever a GPU is found ([`gpu_targets`]).

use texpr_dsl::Target;

use crate::common::*;
use crate::differential::{OPENCL_REGRESSION_SEEDS, SHARED_REGRESSION_SEEDS, cases, check_case, shared_on};

/// The SPEC §3 matmul schedule on the GPU, a shape with tails.
#[test]
#[ignore = "needs a CUDA GPU"]
fn cuda_runs_spec_matmul() {
    require_cuda();
    let f = matmul();
    let s = matmul_gpu(&f);
    let mut rng = Rng(9);
    let (m, k, n) = (37, 21, 19);
    let a = rng.host(texpr_dsl::DType::F32, m * k);
    let b = rng.host(texpr_dsl::DType::F32, k * n);
    let (got, want) = device_and_interp(Target::Cuda, &f, &s, &[(&a, vec![m, k]), (&b, vec![k, n])], &[]);
    assert_agree("matmul on CUDA", &got, &want, Tol::Sum);
}

/// The random differential cases of `opencl_matches_interpreter`, on CUDA.
#[test]
#[ignore = "needs a CUDA GPU"]
fn cuda_matches_interpreter() {
    require_cuda();
    let count = gpu_cases(320) as usize;
    let mut n = 0;
    for (seed, c) in cases(count) {
        check_case(seed, &c, Target::Cuda);
        n += 1;
    }
    println!("{n} random cases agree on CUDA");
    assert!(n >= 300);
}

/// The OpenCL regression seeds (`opencl_regression_seeds`) on CUDA.
#[test]
#[ignore = "needs a CUDA GPU"]
fn cuda_regression_seeds() {
    require_cuda();
    for seed in OPENCL_REGRESSION_SEEDS {
        check_case(seed, &crate::differential::generate(seed), Target::Cuda);
    }
}

/// The shared generator's GPU cases (those of `shared_generator_on_opencl`
/// and the regression seeds), on CUDA.
#[test]
#[ignore = "needs a CUDA GPU"]
fn cuda_shared_generator() {
    require_cuda();
    let n = gpu_cases(400);
    let seeds = SHARED_REGRESSION_SEEDS.map(|s| s..s + 1);
    for seeds in std::iter::once(1000..1000 + n).chain(seeds) {
        match shared_on(Target::Cuda, seeds.clone()) {
            Ok(rejected) => println!(
                "{} shared-generator cases agree on CUDA ({rejected} rejected)",
                seeds.end - seeds.start - rejected as u64
            ),
            Err(e) => panic!("{e}"),
        }
    }
}
