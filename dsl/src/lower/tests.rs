//! Unit tests of the lowering passes on small definitions.

use super::*;
use crate::testing::spec::matmul;
use crate::{Target, TargetClass};

#[test]
fn unscheduled_matmul() {
    let s = Schedule::new(&matmul(), Some(TargetClass::Cpu));
    let l = lower(&s, Target::Interp).unwrap();
    let text = l.to_string();
    assert!(text.contains("for i in 0..M {"), "{text}");
    assert!(text.contains("c[i, j] = 0.0;"), "{text}");
    assert!(text.contains("c[i, j] = c[i, j] + a[i, k] * b[k, j];"), "{text}");
    assert!(l.unproven.is_empty(), "{:?}", l.unproven);
}

#[test]
fn tiled_matmul_has_guard_free_body() {
    let func = matmul();
    let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
    let c = s.stage("c").unwrap();
    let (i, j, k) = (s.axis(c, "i").unwrap(), s.axis(c, "j").unwrap(), s.axis(c, "k").unwrap());
    let [io, jo, ii, ji] = s.tile_named(i, j, 32, 64, ["io", "jo", "ii", "ji"]).unwrap();
    let (ko, ki) = s.split_named(k, 8, "ko", "ki").unwrap();
    s.reorder(&[io, jo, ko, ki, ii, ji]).unwrap();
    s.vectorize(ji).unwrap();
    s.unroll(ki).unwrap();
    s.parallel(io).unwrap();
    let l = lower(&s, Target::Interp).unwrap();
    let text = l.to_string();
    assert!(text.contains("parallel for io in 0..(M + 31) / 32 {"), "{text}");
    assert!(text.contains("for ii in 0..min(M - io * 32, 32) {"), "{text}");
    assert!(!text.contains("if io"), "{text}");
    assert!(l.unproven.is_empty(), "{:?}\n{text}", l.unproven);
}

#[test]
fn error_names_the_loops() {
    let func = matmul();
    let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
    let c = s.stage("c").unwrap();
    let k = s.axis(c, "k").unwrap();
    s.split_named(k, 8, "ko", "ki").unwrap();
    let e = s.axis(c, "kx").unwrap_err().to_string();
    assert_eq!(e, "matmul: schedule: `kx` is not a loop of `c`; its loops are i, j, ko, ki");
}
