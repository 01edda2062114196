//! SPEC §2 scalar semantics on `Target::Cpu`: the shared table
//! (`texpr_dsl::testing::semantics`, which every backend runs) under four
//! schedules per group — unscheduled, the CPU default, and every stage's
//! loop split by a vector width (4 for casts, 8 otherwise) and by 32
//! (16-lane 8-bit vectors), the inner loop vectorized and the outer one
//! parallel (run in parallel whatever its size) — so the scalar, vector and
//! outlined code paths all meet the interpreter.

use texpr_dsl::testing::semantics::check;
use texpr_dsl::{Func, Schedule, Target, TargetClass};

fn schedules(f: &Func) -> Vec<(String, Schedule)> {
    let mut out = vec![
        ("unscheduled".to_string(), Schedule::new(f, Some(TargetClass::Cpu))),
        ("the CPU default".to_string(), Schedule::default_for(f, TargetClass::Cpu)),
    ];
    let vec = if f.name.starts_with("casts") { 4 } else { 8 };
    for w in [vec, 32] {
        let mut s = Schedule::new(f, Some(TargetClass::Cpu));
        for st in &f.stages {
            let st = s.stage(&st.name).unwrap();
            let i = s.axis(st, "i").unwrap();
            let (o, inner) = s.split(i, w).unwrap();
            s.vectorize(inner).unwrap();
            s.parallel(o).unwrap();
        }
        out.push((format!("split by {w}, vectorized, parallel"), s));
    }
    out
}

fn run(prefix: &str) {
    texpr_jit::set_parallel_min_work(0);
    let compile = |l: &texpr_dsl::Lowered| -> texpr_dsl::Result<Box<dyn texpr_dsl::Executable>> {
        Ok(Box::new(texpr_jit::compile(l)?))
    };
    match check(prefix, Target::Cpu, &schedules, &compile) {
        Ok(n) => {
            assert!(n > 0);
            eprintln!("{prefix}: {n} values agree");
        }
        Err(e) => panic!("{e}"),
    }
}

macro_rules! groups {
    ($($name:ident: $prefix:literal;)*) => {$(
        #[test]
        fn $name() {
            run($prefix);
        }
    )*};
}

groups! {
    ints_i8: "ints_i8";
    ints_i16: "ints_i16";
    ints_i32: "ints_i32";
    ints_i64: "ints_i64";
    ints_u8: "ints_u8";
    ints_u16: "ints_u16";
    ints_u32: "ints_u32";
    ints_u64: "ints_u64";
    floats_f32: "floats_f32";
    floats_f64: "floats_f64";
    floats_f16: "floats_f16";
    floats_bf16: "floats_bf16";
    math_f32: "math_f32";
    math_f64: "math_f64";
    math_f16: "math_f16";
    math_bf16: "math_bf16";
    casts_from_bool: "casts_from_bool";
    casts_from_i8: "casts_from_i8";
    casts_from_i16: "casts_from_i16";
    casts_from_i32: "casts_from_i32";
    casts_from_i64: "casts_from_i64";
    casts_from_u8: "casts_from_u8";
    casts_from_u16: "casts_from_u16";
    casts_from_u32: "casts_from_u32";
    casts_from_u64: "casts_from_u64";
    casts_from_f16: "casts_from_f16";
    casts_from_bf16: "casts_from_bf16";
    casts_from_f32: "casts_from_f32";
    casts_from_f64: "casts_from_f64";
}
