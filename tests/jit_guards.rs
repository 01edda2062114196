//! Guarded loads in vectorized loops (`if c { x[..] } else { .. }` and
//! `select` with a condition that holds on a range of lanes, as padding
//! guards do) on `Target::Cpu` against the interpreter: every element type
//! width (2 to 16 lanes per vector), comparisons with the lane variable on
//! either side, invariant conjuncts, vector widths from 2 to 32, and
//! shapes where the guarded loads run past the buffer (first rows: the
//! lane-by-lane path), lie inside it (masked vectors) or where no lane
//! takes the arm.

use texpr::prelude::*;
use texpr::{Element, Input, Program, Schedule, TargetClass};

/// The same guarded kernel for each element type (the literals are the
/// type's `0`, `1`, `2`, `3` and the `else` value of the first term).
macro_rules! guarded_kernel {
    ($name:ident, $t:ident, $zero:tt, $one:tt, $two:tt, $three:tt, $other:tt) => {
        tensor_expr! {
            pub fn $name(x: $t[N], p: i64) -> $t[N] {
                let y = |i| (if i >= 2 && N - i > 3 && p > 0 { x[i + 3] * $two + x[i - 2] } else { $other })
                    + select(i >= 1 && i < N - 1, x[i] * $three, x[i] + $one)
                    + select(i > 1 && N - 2 >= i, x[i], x[i] * $two)
                    + (if 3 <= i { x[i - 3] } else { $zero })
                    + (if 5 < i + 4 { x[i - 1] } else { $zero })
                    // Guards that exclude lanes whose elements exist (masked
                    // vectors at both ends of a 1-D buffer).
                    + (if 3 <= i { x[i] } else { $zero })
                    + (if 5 < i + 4 { x[i] * $two } else { $zero })
                    + (if N - i > 3 { x[i] + $one } else { $zero });
                y
            }
        }
    };
}

guarded_kernel!(g_f32, f32, 0.0, 1.0, 2.0, 3.0, (-1.0));
guarded_kernel!(g_f64, f64, 0.0, 1.0, 2.0, 3.0, (-1.0));
guarded_kernel!(g_i32, i32, 0, 1, 2, 3, (-1));
guarded_kernel!(g_i16, i16, 0, 1, 2, 3, (-1));
guarded_kernel!(g_u8, u8, 0, 1, 2, 3, 1);

tensor_expr! {
    /// A 3-tap window along the vectorized axis, guarded like SPEC's
    /// conv3x3: with the taps unrolled, the guard of each tap in a chunk
    /// whose position is a constant is decided at compile time.
    pub fn g_win(x: f32[N]) -> f32[N] {
        let y = |i| sum(s in 0..3 => if i + s >= 1 && i + s <= N { x[i + s - 1] * 0.5 } else { 0.0 });
        y
    }
    /// A 3-tap window over rows, guarded like SPEC's conv3x3.
    pub fn g_rows(x: f32[R, C]) -> f32[R, C] {
        let y = |r, c| if c >= 1 && c <= C - 2 && r >= 1 { x[r - 1, c - 1] + x[r, c + 1] * 0.5 } else { 0.25 };
        y
    }
}

/// Unscheduled, default schedule, and `axis` split by 2..32 with the inner
/// loop vectorized and the outer one parallel.
fn variants(k: Kernel, axis: &str) -> Vec<(String, Kernel)> {
    let func = k.func().unwrap().clone();
    let mut out = vec![
        (
            "unscheduled".to_string(),
            Kernel::new(Program::new(func.clone()).with_schedule(Schedule::new(&func, Some(TargetClass::Cpu)))),
        ),
        ("default".to_string(), Kernel::new(Program::new(func.clone()))),
    ];
    for w in [2, 4, 8, 16, 32] {
        let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
        let st = s.stage("y").unwrap();
        let a = s.axis(st, axis).unwrap();
        let (o, inner) = s.split(a, w).unwrap();
        s.vectorize(inner).unwrap();
        s.parallel(o).unwrap();
        out.push((format!("split {w}"), Kernel::new(Program::new(func.clone()).with_schedule(s))));
    }
    out
}

fn check<O: Element + PartialEq + std::fmt::Debug>(k: &Kernel, inputs: &[Input<'_>], params: &[Scalar], what: &str) {
    let got: Tensor<O> = k.run1(Target::Cpu, inputs, params).unwrap_or_else(|e| panic!("{what}: cpu: {e}"));
    let want: Tensor<O> = k.run1(Target::Interp, inputs, params).unwrap_or_else(|e| panic!("{what}: interp: {e}"));
    assert_eq!(got.as_slice(), want.as_slice(), "{what}\n{}", k.lower(Target::Cpu).unwrap());
}

const SIZES: [usize; 14] = [0, 1, 3, 5, 6, 7, 8, 16, 17, 31, 33, 64, 100, 129];

macro_rules! one_d {
    ($name:ident, $t:ty, $conv:expr) => {{
        for (what, k) in variants($name::kernel(), "i") {
            for n in SIZES {
                let x = Tensor::<$t>::from_fn([n], |i| $conv(i[0]));
                for p in [1i64, 0] {
                    check::<$t>(
                        &k,
                        &[(&x).into()],
                        &[Scalar::I64(p)],
                        &format!("{} {what}, n={n}, p={p}", stringify!($name)),
                    );
                }
            }
        }
    }};
}

#[test]
fn guarded_loads_every_lane_width() {
    texpr_jit::set_parallel_min_work(0);
    one_d!(g_f32, f32, |i: usize| (i as f32) * 0.75 - 3.0);
    one_d!(g_f64, f64, |i: usize| (i as f64) * 0.75 - 3.0);
    one_d!(g_i32, i32, |i: usize| (i as i32) * 7919 - 100_000);
    one_d!(g_i16, i16, |i: usize| (i as i16).wrapping_mul(331));
    one_d!(g_u8, u8, |i: usize| (i * 37 % 256) as u8);
}

#[test]
fn guarded_window_unrolled_taps() {
    texpr_jit::set_parallel_min_work(0);
    let func = g_win::kernel().func().unwrap().clone();
    for w in [2, 4, 8, 16] {
        let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
        let st = s.stage("y").unwrap();
        let (i, r) = (s.axis(st, "i").unwrap(), s.axis(st, "s").unwrap());
        let (o, inner) = s.split(i, w).unwrap();
        s.reorder(&[o, r, inner]).unwrap();
        s.unroll(r).unwrap();
        s.vectorize(inner).unwrap();
        s.parallel(o).unwrap();
        let k = Kernel::new(Program::new(func.clone()).with_schedule(s));
        for n in SIZES {
            let x = Tensor::<f32>::from_fn([n], |i| i[0] as f32 * 0.25 - 5.0);
            check::<f32>(&k, &[(&x).into()], &[], &format!("g_win split {w}, n={n}"));
        }
    }
}

#[test]
fn guarded_window_over_rows() {
    texpr_jit::set_parallel_min_work(0);
    for (what, k) in variants(g_rows::kernel(), "c") {
        for (r, c) in [(1, 1), (2, 3), (3, 8), (5, 17), (4, 33), (7, 64), (3, 100), (2, 0)] {
            let x = Tensor::<f32>::from_fn([r, c], |i| (i[0] * 31 + i[1]) as f32 * 0.5 - 7.0);
            check::<f32>(&k, &[(&x).into()], &[], &format!("g_rows {what}, {r}x{c}"));
        }
    }
}
