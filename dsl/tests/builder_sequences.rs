//! Random builder-API call sequences — handles of another schedule, loops
//! that were split away, primitives of the wrong target class, extreme
//! factors and names — must never panic: every primitive returns `Ok` or a
//! schedule error. Whatever schedule results is lowered for every target
//! (no panic either), and where it lowers, runs on the interpreter and
//! matches the unscheduled definition exactly (the inputs are small
//! integers, so float sums are exact in any order).

use proptest::prelude::*;
use texpr_dsl::testing::{AnyTensor, Case, GenConfig, assert_close, interp, spec};
use texpr_dsl::{AxisRef, DType, Func, Program, Scalar, Schedule, Scope, StageRef, Target, TargetClass, ThreadAxis};

const FACTORS: [i64; 12] = [i64::MIN, -1, 0, 1, 2, 3, 4, 7, 8, 1 << 32, (1 << 32) + 1, i64::MAX];
const THREADS: [ThreadAxis; 4] = [ThreadAxis::BlockX, ThreadAxis::BlockY, ThreadAxis::ThreadX, ThreadAxis::ThreadY];

/// The handles a sequence can use: this schedule's and a foreign one's.
struct Handles {
    stages: Vec<StageRef>,
    axes: Vec<AxisRef>,
}

impl Handles {
    fn of(s: &Schedule, names: &[&str]) -> Handles {
        let mut h = Handles { stages: vec![], axes: vec![] };
        for n in names {
            if let Ok(st) = s.stage(n) {
                h.stages.push(st);
                h.axes.extend(s.loops(st).unwrap());
            }
        }
        h
    }
}

fn pick<T: Copy>(v: &[T], r: u64) -> Option<T> {
    (!v.is_empty()).then(|| v[(r % v.len() as u64) as usize])
}

/// What one step did.
struct Step {
    /// A split by a huge factor was accepted: such a schedule is lowered
    /// but not run (its register tiles and regions have that many elements,
    /// which is legal and slow).
    huge: bool,
    /// A primitive returned an error (and must have changed nothing).
    failed: bool,
}

/// Applies one random primitive; handles it returns join the pool.
fn step(s: &mut Schedule, own: &mut Handles, foreign: &Handles, op: u8, r: [u64; 4]) -> Step {
    // One handle in four from the other schedule.
    let axis = |k: usize, own: &Handles| {
        if r[k].is_multiple_of(4) { pick(&foreign.axes, r[k] / 4) } else { pick(&own.axes, r[k] / 4) }
    };
    let stage = |k: usize, own: &Handles| {
        if r[k].is_multiple_of(4) { pick(&foreign.stages, r[k] / 4) } else { pick(&own.stages, r[k] / 4) }
    };
    let factor = FACTORS[(r[2] % FACTORS.len() as u64) as usize];
    let factor2 = FACTORS[(r[3] % FACTORS.len() as u64) as usize];
    let big = |f: i64| f > 64;
    let mut huge = false;
    let ok: Option<bool> = match op % 16 {
        0 => axis(0, own).map(|a| match s.split(a, factor) {
            Ok((o, i)) => {
                own.axes.extend([o, i]);
                huge = big(factor);
                true
            }
            Err(_) => false,
        }),
        1 => match (axis(0, own), axis(1, own)) {
            (Some(x), Some(y)) => Some(match s.tile(x, y, factor, factor2) {
                Ok(t) => {
                    own.axes.extend(t);
                    huge = big(factor) || big(factor2);
                    true
                }
                Err(_) => false,
            }),
            _ => None,
        },
        2 => match (axis(0, own), axis(1, own)) {
            (Some(x), Some(y)) => Some(s.fuse(x, y).map(|f| own.axes.push(f)).is_ok()),
            _ => None,
        },
        3 => {
            let n = (r[2] % 4) as usize;
            let v: Vec<AxisRef> = (0..n).filter_map(|k| axis(k, own)).collect();
            Some(s.reorder(&v).is_ok())
        }
        4 => axis(0, own).map(|a| s.vectorize(a).is_ok()),
        5 => axis(0, own).map(|a| s.unroll(a).is_ok()),
        6 => axis(0, own).map(|a| s.parallel(a).is_ok()),
        7 => axis(0, own).map(|a| s.bind(a, THREADS[(r[2] % 4) as usize]).is_ok()),
        8 => match (stage(0, own), axis(1, own)) {
            (Some(st), Some(a)) => Some(s.compute_at(st, a).is_ok()),
            _ => None,
        },
        9 => stage(0, own).map(|st| s.compute_inline(st).is_ok()),
        10 => stage(0, own).map(|st| s.compute_root(st).is_ok()),
        11 => stage(0, own).map(|st| {
            let tensors = ["a", "b", "x", "w", "c", "e", "nope"];
            let scope = if r[3].is_multiple_of(2) { Scope::Local } else { Scope::Shared };
            match s.cache_read(st, tensors[(r[2] % 7) as usize], scope) {
                Ok(n) => {
                    own.stages.push(n);
                    own.axes.extend(s.loops(n).unwrap());
                    true
                }
                Err(_) => false,
            }
        }),
        12 => stage(0, own).map(|st| {
            let scope = [Scope::Local, Scope::Shared, Scope::Global][(r[2] % 3) as usize];
            match s.cache_write(st, scope) {
                Ok(n) => {
                    own.stages.push(n);
                    own.axes.extend(s.loops(n).unwrap());
                    true
                }
                Err(_) => false,
            }
        }),
        13 => stage(0, own).map(|st| {
            let found = s.axis(st, ["i", "j", "k", "", "i.outer", "n"][(r[2] % 6) as usize]).is_ok();
            let _ = s.loops(st);
            let _ = s.stage_name(st);
            found
        }),
        14 => axis(0, own).map(|a| s.axis_name(a).is_ok()),
        _ => axis(0, own).map(|a| {
            let names = ["", "x", "x", "c", "i.outer"];
            let split = s.split_named(a, factor, names[(r[2] % 5) as usize], names[(r[3] % 5) as usize]);
            huge = split.is_ok() && big(factor);
            split.is_ok()
        }),
    };
    Step { huge, failed: ok == Some(false) }
}

type Shapes = Vec<Vec<usize>>;

fn funcs() -> Vec<(Func, Shapes, Vec<&'static str>)> {
    // Definition, its input shapes (tails for most factors), its stage names.
    vec![
        (spec::matmul(), vec![vec![5, 3], vec![3, 7]], vec!["c"]),
        (spec::softmax(), vec![vec![3, 10]], vec!["mx", "e", "s", "y"]),
        (spec::conv3x3(), vec![vec![1, 2, 5, 6], vec![3, 2, 3, 3]], vec!["y"]),
    ]
}

fn run_on_interp(func: &Func, shapes: &Shapes, sched: Schedule, target: Target, seed: u64, run: bool) {
    let program = Program::new(func.clone()).with_schedule(sched);
    // Lowering must not panic; an error is a legitimate answer.
    let Ok(lowered) = program.lower(target) else { return };
    if !run {
        return;
    }
    let reference = program.lower_unscheduled().expect("the unscheduled definition lowers");
    let inputs = shapes
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let n: usize = s.iter().product();
            let vals: Vec<Scalar> =
                (0..n).map(|i| Scalar::F32(((i as u64 * 7 + k as u64 * 3 + seed) % 9) as f32 - 4.0)).collect();
            AnyTensor::from_scalars(DType::F32, s, &vals)
        })
        .collect();
    let case = Case { seed, program, log: vec![], inputs, params: vec![] };
    let want = case.run(&reference, &interp).expect("the unscheduled definition runs");
    match case.run(&lowered, &interp) {
        Ok(got) => assert_close(&got, &want).unwrap_or_else(|e| panic!("{target:?}: {e}\n{lowered}")),
        // A schedule whose accesses cannot be proven for these shapes is rejected per call.
        Err(e) => assert!(matches!(e, texpr_dsl::Error::Bounds(_)), "{target:?}: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("TEXPR_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_builder_sequences_never_panic(
        which in 0usize..3,
        other in 0usize..3,
        class in 0u8..3,
        ops in prop::collection::vec((any::<u8>(), any::<[u64; 4]>()), 0..24),
        seed in any::<u64>(),
    ) {
        let fs = funcs();
        let (func, shapes, names) = &fs[which];
        let class = [None, Some(TargetClass::Cpu), Some(TargetClass::Gpu)][class as usize];
        let mut s = Schedule::new(func, class);
        let mut own = Handles::of(&s, names);
        let (ofunc, _, onames) = &fs[other];
        let mut foreign_sched = Schedule::new(ofunc, Some(TargetClass::Cpu));
        let mut foreign = Handles::of(&foreign_sched, onames);
        // Handles the foreign schedule made by its own primitives.
        if let Some(a) = foreign.axes.first().copied()
            && let Ok((o, i)) = foreign_sched.split(a, 2)
        {
            foreign.axes.extend([o, i]);
        }
        let mut huge = false;
        for (op, r) in ops {
            let before = s.clone();
            let done = step(&mut s, &mut own, &foreign, op, r);
            huge |= done.huge;
            // A primitive that fails changes nothing.
            prop_assert!(!done.failed || s == before, "op {} failed but changed the schedule", op % 16);
        }
        for target in [Target::Interp, Target::Cpu, Target::OpenCl] {
            run_on_interp(func, shapes, s.clone(), target, seed, !huge);
        }
    }
}

/// The defaults every class derives, and the random generator's schedules
/// driven through the same checks, keep working (a smoke test that the
/// handle validation rejects nothing legal).
#[test]
fn legal_schedules_still_lower() {
    let cfg = GenConfig::new(TargetClass::Cpu);
    for seed in 0..50 {
        let case = Case::generate(seed, &cfg);
        case.lower(Target::Interp).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

/// The cases the random sequences found, and the issue's: a handle of
/// another schedule, a factor whose loop counts would overflow, and a
/// second `cache_write` of a stage (lowering panicked on its stale
/// reduction loops).
#[test]
fn regressions() {
    let conv = spec::conv3x3();
    let mm = spec::matmul();
    let mut s = Schedule::new(&mm, Some(TargetClass::Cpu));
    let mut other = Schedule::new(&conv, Some(TargetClass::Cpu));
    let y = other.stage("y").unwrap();
    // An axis index past the end of this schedule's stage `c`.
    let far = other.loops(y).unwrap()[6];
    for r in [s.split(far, 2).map(|_| ()), s.vectorize(far), s.fuse(far, far).map(|_| ())] {
        let e = r.unwrap_err().to_string();
        assert!(e.contains("another schedule"), "{e}");
    }
    let (_, inner) = other.split(other.loops(y).unwrap()[3], 2).unwrap();
    assert!(s.axis_name(inner).unwrap_err().to_string().contains("another schedule"));
    let c = s.stage("c").unwrap();
    let i = s.axis(c, "i").unwrap();
    let e = s.split(i, i64::MAX).unwrap_err().to_string();
    assert!(e.contains("split factor must be at most 2^32"), "{e}");
    let e = s.tile(i, s.axis(c, "j").unwrap(), 4, 1 << 40).unwrap_err().to_string();
    assert!(e.contains("at most 2^32"), "{e}");
    assert!(s.split(i, 1 << 32).is_ok());

    for (a, b) in [(Scope::Local, Scope::Global), (Scope::Shared, Scope::Local), (Scope::Global, Scope::Shared)] {
        let mut s = Schedule::new(&conv, None);
        let y = s.stage("y").unwrap();
        s.cache_write(y, a).unwrap();
        s.cache_write(y, b).unwrap();
        let shapes = vec![vec![1, 2, 5, 6], vec![3, 2, 3, 3]];
        for target in [Target::Interp, Target::OpenCl] {
            assert!(Program::new(conv.clone()).with_schedule(s.clone()).lower(target).is_ok());
            run_on_interp(&conv, &shapes, s.clone(), target, 1, true);
        }
    }
}
