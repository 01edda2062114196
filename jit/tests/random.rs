//! Differential tests: random definitions × random schedules on the JIT
//! against the unscheduled definition on the interpreter
//! (`texpr_dsl::testing`).
//!
//! A case whose scheduled program the *interpreter* cannot run either (a
//! schedule rejected at lowering, an access the bounds proof refuses) says
//! nothing about the JIT and is counted as skipped; every other case must
//! match the reference.

use texpr_dsl::testing::{Case, GenConfig, assert_close, interp};
use texpr_dsl::{DType, Executable, Lowered, Result, Target, TargetClass};

fn jit(l: &Lowered) -> Result<Box<dyn Executable>> {
    Ok(Box::new(texpr_jit::compile(l)?))
}

fn cases() -> u64 {
    std::env::var("TEXPR_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(1100)
}

/// Runs the seeds; returns (ran, skipped).
fn run(cfg: &GenConfig, seeds: std::ops::Range<u64>) -> (usize, usize) {
    let (mut ran, mut skipped) = (0, 0);
    for seed in seeds {
        let case = Case::generate(seed, cfg);
        let Ok(want) = case.reference() else {
            skipped += 1;
            continue;
        };
        let Ok(lowered) = case.lower(Target::Cpu) else {
            skipped += 1;
            continue;
        };
        if case.run(&lowered, &interp).is_err() {
            skipped += 1;
            continue;
        }
        let got = match case.run(&lowered, &jit) {
            Ok(g) => g,
            Err(e) => panic!("JIT run failed: {e}\n{}\n{lowered}", case.describe()),
        };
        if let Err(e) = assert_close(&got, &want) {
            panic!("JIT result differs: {e}\n{}\n{lowered}", case.describe());
        }
        ran += 1;
    }
    (ran, skipped)
}

#[test]
fn random_programs_all_types() {
    let n = cases();
    let (ran, skipped) = run(&GenConfig::new(TargetClass::Cpu), 0..n);
    eprintln!("all types: {ran} cases matched, {skipped} skipped");
    assert!(ran as u64 >= n / 2, "too many skipped cases: {skipped} of {n}");
}

#[test]
fn random_programs_f32() {
    let n = cases();
    let mut cfg = GenConfig::new(TargetClass::Cpu);
    cfg.dtypes = vec![DType::F32];
    let (ran, skipped) = run(&cfg, 100_000..100_000 + n);
    eprintln!("f32: {ran} cases matched, {skipped} skipped");
    assert!(ran as u64 >= n / 2, "too many skipped cases: {skipped} of {n}");
}
