//! The core differential property test: random definitions × random legal
//! schedules × random shapes (tails, zero-sized dims), run on the
//! interpreter, against the interpreter on the unscheduled definition.
//! Floats compare with |a - b| <= 1e-4 + 1e-4 |b| (2e-2 for f16/bf16):
//! schedules may reassociate reductions, and inputs are small integers so
//! that most float sums are exact anyway.

use proptest::prelude::*;
use texpr_dsl::testing::{Case, GenConfig, differential, interp};
use texpr_dsl::{Target, TargetClass};

fn check(class: TargetClass, target: Target, seed: u64) -> Result<(), TestCaseError> {
    let cfg = GenConfig::new(class);
    differential(&cfg, [seed], target, &interp).map_err(TestCaseError::fail)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("TEXPR_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1200), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn cpu_schedules_match_unscheduled(seed in any::<u64>()) {
        check(TargetClass::Cpu, Target::Interp, seed)?;
    }

    /// The nest lowered for the JIT (the CPU's loop-nest optimizations
    /// applied: guarded tail unrolls, partitioning, unswitching, promoted
    /// accumulators, hoisted divisions), run on the interpreter.
    #[test]
    fn cpu_optimized_nests_match_unscheduled(seed in any::<u64>()) {
        check(TargetClass::Cpu, Target::Cpu, seed)?;
    }

    #[test]
    fn gpu_schedules_match_unscheduled(seed in any::<u64>()) {
        check(TargetClass::Gpu, Target::OpenCl, seed)?;
    }
}

/// The CPU default schedule (row fusion of row-wise stages, vectorized and
/// parallel loops) on random definitions, against the unscheduled
/// definition; the row fusion must move a stage in a good share of them.
#[test]
fn cpu_default_schedules_match_unscheduled() {
    let mut cfg = GenConfig::new(TargetClass::Cpu);
    cfg.default_schedule = true;
    let n = std::env::var("TEXPR_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1200u64);
    let seeds = 300_000..300_000 + n;
    let logs: Vec<String> = seeds.clone().map(|s| Case::generate(s, &cfg).log.join("\n")).collect();
    let fused = logs.iter().filter(|l| l.contains(" (at ")).count();
    // Rows of two dims: at the output's fused first two loops.
    let planes = logs.iter().filter(|l| l.lines().any(|l| l.contains(" (at ") && l.contains(".fused)"))).count();
    let rejected = differential(&cfg, seeds.clone(), Target::Interp, &interp).unwrap_or_else(|e| panic!("{e}"));
    // The same nests with the CPU's loop-nest optimizations, on the
    // interpreter.
    differential(&cfg, seeds, Target::Cpu, &interp).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{n} default schedules: {fused} with a stage in a row loop ({planes} of two dims), {rejected} rejected");
    assert_eq!(rejected, 0, "a default schedule failed to lower");
    assert!(fused as u64 >= n / 20, "only {fused} of {n} default schedules moved a stage into a row loop");
    assert!(planes > 0 || n < 1000, "no default schedule moved a stage into a two-dim row loop");
}

/// The generator applies every SPEC §3 primitive (not only tries it).
#[test]
fn every_primitive_is_exercised() {
    let prims = [
        "split(",
        "tile(",
        "fuse(",
        "reorder(",
        "vectorize(",
        "unroll(",
        "parallel(",
        "bind(",
        "compute_at(",
        "compute_inline()",
        "compute_root()",
        "cache_read(",
        "cache_write(",
    ];
    let mut seen = vec![0usize; prims.len()];
    for seed in 0..600u64 {
        for class in [TargetClass::Cpu, TargetClass::Gpu] {
            let case = Case::generate(seed, &GenConfig::new(class));
            for line in case.log.iter().filter(|l| !l.contains("skipped")) {
                for (i, p) in prims.iter().enumerate() {
                    if line.contains(p) {
                        seen[i] += 1;
                    }
                }
            }
        }
    }
    for (p, n) in prims.iter().zip(&seen) {
        assert!(*n >= 20, "primitive {p} applied only {n} times");
    }
}

/// Some schedules attach a stage at a loop of a stage its reader is computed
/// in (not only at its reader's loops).
#[test]
fn attaching_to_a_readers_ancestor_is_exercised() {
    let n: usize = (0..1500u64)
        .map(|seed| {
            let case = Case::generate(seed, &GenConfig::new(TargetClass::Cpu));
            case.log.iter().filter(|l| l.contains("reader's ancestor") && !l.contains("skipped")).count()
        })
        .sum();
    eprintln!("{n} attachments to a reader's ancestor");
    assert!(n >= 10, "only {n} attachments to a reader's ancestor");
}

/// Random programs specialized to a random subset of their case's dims
/// ([`texpr_dsl::Program::specialize`]): random schedules for both
/// classes and the CPU default (chosen on the specialized definition),
/// against the generic unscheduled definition.
#[test]
fn specialized_programs_match_unscheduled() {
    let n = std::env::var("TEXPR_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1200u64) / 2;
    for (class, target, default, first) in [
        (TargetClass::Cpu, Target::Interp, false, 400_000),
        (TargetClass::Gpu, Target::OpenCl, false, 500_000),
        (TargetClass::Cpu, Target::Interp, true, 600_000),
    ] {
        let mut cfg = GenConfig::new(class);
        cfg.specialize = 0.7;
        cfg.default_schedule = default;
        let seeds = first..first + n;
        let specialized =
            seeds.clone().filter(|s| Case::generate(*s, &cfg).func().fixed.iter().any(Option::is_some)).count();
        let rejected = differential(&cfg, seeds, target, &interp).unwrap_or_else(|e| panic!("{e}"));
        eprintln!("{class:?} (default: {default}): {n} cases, {specialized} with a fixed dim, {rejected} rejected");
        assert!(specialized as u64 >= n / 2, "only {specialized} of {n} cases fixed a dim");
    }
}
