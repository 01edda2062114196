//! Regression tests for the defects a hostile review of the public API
//! found: each call here crashed, hung, read out of bounds or returned a
//! wrong result before its fix. Now every one is an `Err` that says what is
//! wrong, or the right answer.

use std::time::{Duration, Instant};

use texpr::prelude::*;
use texpr::{Data, DataMut};

mod defs {
    use texpr::prelude::*;

    tensor_expr! {
        /// `x[(i * S) / S]` is `x[i]` over the integers, but `i * S` wraps
        /// in `i64` when `S` is huge (a zero-element `z` binds it freely).
        pub fn wrapped(x: f32[N], z: f32[S, T]) -> f32[N] {
            let y = |i| x[(i * S) / S];
            y
        }

        /// The same in two dims.
        pub fn wrapped2(x: f32[N, 1], z: f32[S, T]) -> f32[N] {
            let y = |i| x[(i * S) / S, 0];
            y
        }

        /// A temporary of `N` elements, `N` bound by a zero-element input.
        pub fn big_temp(z: f32[N, T], x: f32[M]) -> f32[M] {
            let t: f32[N] = |j| sum(k in 0..T => z[j, k]);
            let y = |i| if N >= 1 { x[i] + t[0] } else { x[i] };
            y
        }
        schedule for cpu {
            t.compute_root();
        }

        /// An output dim that overflows for `N = 2^32`.
        pub fn square(z: f32[N, T]) -> f32[N * N] {
            let y = |i| 1.0;
            y
        }

        pub fn softmax(x: f32[N, C]) -> f32[N, C] {
            let mx: f32[N] = |n| max(c in 0..C => x[n, c]);
            let e: f32[N, C] = |n, c| exp(x[n, c] - mx[n]);
            let s: f32[N] = |n| sum(c in 0..C => e[n, c]);
            let y = |n, c| e[n, c] / s[n];
            y
        }

        pub fn double(x: f32[N]) -> f32[N] {
            let y = |i| x[i] * 2.0;
            y
        }

        /// A gather clamped into the tensor (proven per call for `N >= 1`).
        pub fn clamped_gather(x: f32[N], idx: i64[M]) -> f32[M] {
            let y = |i| x[clamp(idx[i], 0, N - 1)];
            y
        }

        /// A gather whose index arithmetic is guarded: `idx[i] + 1` can
        /// wrap for `idx[i] = i64::MAX`, so the guard must be written on
        /// the loaded value itself.
        pub fn shifted_gather(x: f32[N], idx: i64[M]) -> f32[M] {
            let y = |i| if idx[i] >= 0 && idx[i] < N - 1 { x[idx[i] + 1] } else { 0.0 };
            y
        }

        /// A guard that holds over the integers but not in `i64`: for
        /// `idx[i] = i64::MAX` the sum wraps to `i64::MIN`, which passes
        /// `< N`, and the load would read `x[i64::MIN]`.
        pub fn unsafe_gather(x: f32[N], idx: i64[M]) -> f32[M] {
            let y = |i| if idx[i] >= 0 && idx[i] + 1 < N { x[idx[i] + 1] } else { 0.0 };
            y
        }
    }
}

const TARGETS: [Target; 2] = [Target::Interp, Target::Cpu];

fn shape_err(r: Result<(), Error>, what: &str) -> String {
    match r {
        Err(e @ Error::Shape(_)) => {
            let s = e.to_string();
            assert!(s.contains(what), "{s}");
            s
        }
        other => panic!("expected a shape error saying `{what}`, got {other:?}"),
    }
}

/// Defect 1: input data shorter than its shape reached generated code.
#[test]
fn input_data_must_match_its_shape() {
    for t in TARGETS {
        let c = defs::double::kernel().compile(t).unwrap();
        let x = [1.0f32; 4];
        let mut y = vec![0.0f32; 65536];
        let r = c.run(&[Data::F32(&x)], &[&[65536]], &[], &mut [DataMut::F32(&mut y)], &[&[65536]]);
        let msg = shape_err(r, "has 4 element(s) but shape 65536");
        assert!(msg.contains("double") && msg.contains("`x`"), "{msg}");
        // More data than the shape says is as wrong.
        let r = c.run(&[Data::F32(&x)], &[&[2]], &[], &mut [DataMut::F32(&mut y[..2])], &[&[2]]);
        shape_err(r, "has 4 element(s) but shape 2");
        // A shape list shorter than the inputs.
        let r = c.run(&[Data::F32(&x)], &[], &[], &mut [DataMut::F32(&mut y[..4])], &[&[4]]);
        shape_err(r, "1 tensor input(s) but 0 shape(s)");
    }
}

/// Defect 2: index arithmetic that wraps in `i64` read `x[-2]`.
#[test]
fn index_arithmetic_must_not_wrap() {
    let x = Tensor::from_vec([4], vec![10.0f32, 11.0, 12.0, 13.0]).unwrap();
    let x2 = Tensor::from_vec([4, 1], vec![10.0f32, 11.0, 12.0, 13.0]).unwrap();
    let huge = Tensor::<f32>::zeros([1 << 62, 0]);
    for t in TARGETS {
        let r = defs::wrapped::on(t).unwrap().run(&x, &huge).map(|_| ());
        let msg = shape_err(r, "overflows i64");
        assert!(msg.contains("S = 4611686018427387904"), "{msg}");
        let r = defs::wrapped2::on(t).unwrap().run(&x2, &huge).map(|_| ());
        shape_err(r, "overflows i64");
        // The same kernels are fine where the arithmetic fits.
        let small = Tensor::<f32>::zeros([1 << 20, 0]);
        assert_eq!(defs::wrapped::on(t).unwrap().run(&x, &small).unwrap().as_slice(), x.as_slice());
        assert_eq!(defs::wrapped2::on(t).unwrap().run(&x2, &small).unwrap().as_slice(), x.as_slice());
    }
}

/// Defect 2, from the data side: a guard on a sum that can wrap cannot
/// protect a load; a guard on the loaded value can.
#[test]
fn guards_must_hold_for_the_machine_arithmetic() {
    let x = Tensor::from_vec([4], vec![10.0f32, 11.0, 12.0, 13.0]).unwrap();
    let idx = Tensor::from_vec([4], vec![0i64, 2, 3, i64::MAX]).unwrap();
    for t in TARGETS {
        let y = defs::shifted_gather::on(t).unwrap().run(&x, &idx).unwrap();
        assert_eq!(y.as_slice(), &[11.0, 13.0, 0.0, 0.0]);
        let r = defs::unsafe_gather::on(t).unwrap().run(&x, &idx).map(|_| ());
        let msg = shape_err(r, "overflows i64");
        assert!(msg.contains("idx[") && msg.contains("] + 1`"), "{msg}");
    }
}

/// Defect 3: sizes that overflow.
#[test]
fn sizes_must_not_overflow() {
    let x = Tensor::from_vec([2], vec![1.0f32, 2.0]).unwrap();
    for t in TARGETS {
        // 2^61 f32s are 2^63 bytes.
        let z = Tensor::<f32>::zeros([1 << 61, 0]);
        let r = defs::big_temp::on(t).unwrap().run(&z, &x).map(|_| ());
        shape_err(r, "overflows");
        // 2^34 f32s: a clean out-of-memory error or a result, never a crash.
        let z = Tensor::<f32>::zeros([1 << 20, 0]);
        assert_eq!(defs::big_temp::on(t).unwrap().run(&z, &x).unwrap().as_slice(), &[1.0, 2.0]);
        for n in [1usize << 32, 3037000500] {
            let z = Tensor::<f32>::zeros([n, 0]);
            let r = defs::square::on(t).unwrap().run(&z).map(|_| ());
            let msg = shape_err(r, "overflows i64");
            assert!(msg.contains("N * N") && msg.contains(&format!("N = {n}")), "{msg}");
        }
    }
}

/// Defect 7: a call with nothing to write returns at once.
#[test]
fn empty_calls_do_not_run() {
    for t in TARGETS {
        let start = Instant::now();
        let x = Tensor::<f32>::zeros([1 << 40, 0]);
        let y = defs::softmax::on(t).unwrap().run(&x).unwrap();
        assert_eq!(y.shape(), &[1 << 40, 0]);
        assert!(start.elapsed() < Duration::from_secs(60), "{t:?}: {:?}", start.elapsed());
    }
}

/// Defect 8: the prover knows `clamp` (integer `clamp` is `min(max(..))`).
#[test]
fn clamped_gathers_run() {
    let x = Tensor::from_vec([4], vec![10.0f32, 11.0, 12.0, 13.0]).unwrap();
    let idx = Tensor::from_vec([5], vec![-5i64, 0, 2, 3, i64::MAX]).unwrap();
    for t in TARGETS {
        let y = defs::clamped_gather::on(t).unwrap().run(&x, &idx).unwrap();
        assert_eq!(y.as_slice(), &[10.0, 10.0, 12.0, 13.0, 13.0]);
        // With no element to clamp into, the call is an error, not a read.
        let empty = Tensor::<f32>::zeros([0]);
        let e = defs::clamped_gather::on(t).unwrap().run(&empty, &idx).unwrap_err();
        assert!(matches!(e, Error::Bounds(_)), "{e}");
    }
}

/// Defect 5: deep expressions. A stage summing 10,000 terms, built with the
/// builder API (the macro accepts up to its nesting limit, see the UI test
/// `def_expression_too_deep`), compiles and runs on the CPU and the
/// interpreter instead of overflowing a stack.
#[test]
fn deep_expressions_compile_and_run() {
    use texpr::te::{self, FuncBuilder};
    for (n, targets) in [(990usize, &TARGETS[..]), (10_000, &[Target::Cpu][..])] {
        let mut f = FuncBuilder::new("deep");
        let x = f.input("x", DType::F32, ["N"]);
        f.output(DType::F32, ["N"]);
        let y = f.compute("y", ["i"], |[i]| {
            let mut acc = x.at([i.clone()]);
            for k in 2..=n {
                acc = acc + x.at([i.clone()]) * te::Expr::float((k % 7) as f64);
            }
            acc
        });
        f.ret([y]);
        let start = Instant::now();
        let k = Kernel::from_func(f.build().unwrap());
        let xs = Tensor::from_vec([3], vec![1.0f32, 2.0, 3.0]).unwrap();
        let per: f32 = 1.0 + (2..=n).map(|k| (k % 7) as f32).sum::<f32>();
        for t in targets {
            let got: Tensor<f32> = k.run1(*t, &[(&xs).into()], &[]).unwrap();
            assert_eq!(got.as_slice(), &[per, 2.0 * per, 3.0 * per], "{t:?}");
        }
        eprintln!("{n} terms: {:?}", start.elapsed());
    }
}

/// Defect 9: `Tensor::try_from_fn` returns an `Err` where `from_fn` panics.
#[test]
fn oversized_tensors_are_errors() {
    let e = Tensor::<f32>::try_from_fn([usize::MAX, 2], |_| 0.0).unwrap_err();
    assert!(e.to_string().contains("more elements than fit in memory"), "{e}");
    let e = Tensor::<f32>::try_from_fn([1 << 60], |_| 0.0).unwrap_err();
    assert!(e.to_string().contains("Tensor::try_from_fn"), "{e}");
    let t = Tensor::try_from_fn([2, 3], |i| (i[0] * 3 + i[1]) as f32).unwrap();
    assert_eq!(t.as_slice(), &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
}
