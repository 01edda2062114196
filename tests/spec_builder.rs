//! SPEC §2 definitions and the SPEC §3 CPU schedule, built with the builder
//! API (`texpr::te`), lowered and run on the reference interpreter, checked
//! against plain Rust loops on shapes that leave tails and on empty shapes.
//! Float tolerance: |got - want| <= 1e-4 * (1 + |want|) (schedules may
//! reassociate sums).

use texpr::te::{self, FuncBuilder};
use texpr::{DType, Error, Kernel, Program, Schedule, Target, TargetClass, Tensor};
use texpr_dsl::testing::spec;

fn close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "element {i}: got {g}, want {w}");
    }
}

fn data(n: usize, seed: u32) -> Vec<f32> {
    // Deterministic values in [-2, 2).
    (0..n).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 16) as f32 / 16384.0 - 2.0).collect()
}

/// The SPEC §3 CPU schedule.
fn matmul_cpu_schedule(func: &texpr::Func) -> Schedule {
    let mut s = Schedule::new(func, Some(TargetClass::Cpu));
    let c = s.stage("c").unwrap();
    let (i, j, k) = (s.axis(c, "i").unwrap(), s.axis(c, "j").unwrap(), s.axis(c, "k").unwrap());
    let [io, jo, ii, ji] = s.tile_named(i, j, 32, 64, ["io", "jo", "ii", "ji"]).unwrap();
    let (ko, ki) = s.split_named(k, 8, "ko", "ki").unwrap();
    s.reorder(&[io, jo, ko, ki, ii, ji]).unwrap();
    s.vectorize(ji).unwrap();
    s.unroll(ki).unwrap();
    s.parallel(io).unwrap();
    s
}

fn matmul_ref(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for p in 0..k {
                acc += a[i * k + p] * b[p * n + j];
            }
            c[i * n + j] = acc;
        }
    }
    c
}

#[test]
fn matmul_with_the_spec_cpu_schedule() {
    let func = spec::matmul();
    let sched = matmul_cpu_schedule(&func);
    let k = Kernel::new(Program::new(func).with_schedule(sched));
    for &(m, kk, n) in &[(37, 29, 53), (1, 1, 1), (64, 16, 128), (33, 9, 65), (0, 4, 3), (3, 0, 5), (5, 7, 0)] {
        let a = Tensor::from_vec([m, kk], data(m * kk, 1)).unwrap();
        let b = Tensor::from_vec([kk, n], data(kk * n, 2)).unwrap();
        let c: Tensor<f32> = k.run1(Target::Interp, &[(&a).into(), (&b).into()], &[]).unwrap();
        assert_eq!(c.shape(), &[m, n]);
        close(c.as_slice(), &matmul_ref(a.as_slice(), b.as_slice(), m, kk, n));
    }
    let text = k.lower(Target::Interp).unwrap().to_string();
    assert!(text.contains("parallel for io in 0..(M + 31) / 32"), "{text}");
    assert!(text.contains("vectorized for ji in 0..64"), "{text}");
    assert!(text.contains("unrolled for ki in 0..8"), "{text}");
}

#[test]
fn matmul_errors_name_function_dim_and_tensors() {
    let k = Kernel::from_func(spec::matmul());
    let a = Tensor::<f32>::zeros([3, 4]);
    let b = Tensor::<f32>::zeros([5, 2]);
    let e = k.run1::<f32>(Target::Interp, &[(&a).into(), (&b).into()], &[]).unwrap_err();
    assert_eq!(e.to_string(), "matmul: dim K is 4 in `a` (a is 3x4) but 5 in `b` (b is 5x2)");
    let a3 = Tensor::<f32>::zeros([3, 4, 1]);
    let e = k.run1::<f32>(Target::Interp, &[(&a3).into(), (&b).into()], &[]).unwrap_err();
    assert_eq!(e.to_string(), "matmul: `a` must have 2 dim(s) (a: f32[M, K]) but has shape 3x4x1");
    let a = Tensor::<f32>::zeros([3, 5]);
    let mut c = Tensor::<f32>::zeros([3, 3]);
    let e = k.run_into(Target::Interp, &[(&a).into(), (&b).into()], &[], &mut [(&mut c).into()]).unwrap_err();
    assert_eq!(e.to_string(), "matmul: output 0 (`c`) must have shape 3x2 but has shape 3x3");
    let d = Tensor::<f64>::zeros([3, 5]);
    let e = k.run1::<f32>(Target::Interp, &[(&d).into(), (&b).into()], &[]).unwrap_err();
    assert_eq!(e.to_string(), "matmul: `a` must be f32 (a: f32[M, K]), found f64 elements");
}

fn softmax_ref(x: &[f32], n: usize, c: usize) -> Vec<f32> {
    let mut y = vec![0.0; n * c];
    for r in 0..n {
        let row = &x[r * c..(r + 1) * c];
        let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let s: f32 = row.iter().map(|v| (v - mx).exp()).sum();
        for (j, v) in row.iter().enumerate() {
            y[r * c + j] = (v - mx).exp() / s;
        }
    }
    y
}

#[test]
fn softmax_unscheduled_and_scheduled() {
    let func = spec::softmax();
    let mut sched = Schedule::new(&func, Some(TargetClass::Cpu));
    // Rows in parallel, `e` inlined into its readers, the row max and sum
    // computed per row inside `y`'s row loop.
    let y = sched.stage("y").unwrap();
    let e = sched.stage("e").unwrap();
    let (mx, s) = (sched.stage("mx").unwrap(), sched.stage("s").unwrap());
    let n = sched.axis(y, "n").unwrap();
    sched.parallel(n).unwrap();
    sched.compute_inline(e).unwrap();
    sched.compute_at(s, n).unwrap();
    let c = sched.axis(y, "c").unwrap();
    let (_, ci) = sched.split_named(c, 4, "co", "ci").unwrap();
    sched.vectorize(ci).unwrap();
    // mx is read by `s` (inside y's row) and by `y`: it stays at the root.
    let _ = mx;
    let scheduled = Kernel::new(Program::new(func.clone()).with_schedule(sched));
    let plain = Kernel::from_func(func);
    for &(n, c) in &[(3, 7), (1, 1), (4, 33), (0, 5)] {
        let x = Tensor::from_vec([n, c], data(n * c, 7)).unwrap();
        let want = softmax_ref(x.as_slice(), n, c);
        for k in [&plain, &scheduled] {
            let got: Tensor<f32> = k.run1(Target::Interp, &[(&x).into()], &[]).unwrap();
            close(got.as_slice(), &want);
        }
    }
}

#[test]
fn axpb_relu_with_scalars() {
    let func = spec::axpb_relu();
    let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
    let ys = s.stage("y").unwrap();
    let i = s.axis(ys, "i").unwrap();
    let (io, ii) = s.split_named(i, 8, "io", "ii").unwrap();
    s.parallel(io).unwrap();
    s.vectorize(ii).unwrap();
    let k = Kernel::new(Program::new(func).with_schedule(s));
    for n in [0usize, 1, 7, 8, 9, 100] {
        let x = Tensor::from_vec([n], data(n, 3)).unwrap();
        let y: Tensor<f32> = k.run1(Target::Interp, &[(&x).into()], &[2.0f32.into(), (-0.5f32).into()]).unwrap();
        let want: Vec<f32> = x.as_slice().iter().map(|v| (2.0 * v - 0.5f32).max(0.0)).collect();
        close(y.as_slice(), &want);
    }
}

fn conv_ref(x: &[f32], w: &[f32], b: usize, c: usize, h: usize, wd: usize, f: usize) -> Vec<f32> {
    let mut y = vec![0.0; b * f * h * wd];
    for n in 0..b {
        for o in 0..f {
            for i in 0..h {
                for j in 0..wd {
                    let mut acc = 0.0f32;
                    for ci in 0..c {
                        for r in 0..3 {
                            for s in 0..3 {
                                let (ii, jj) = (i as i64 + r as i64 - 1, j as i64 + s as i64 - 1);
                                if ii >= 0 && jj >= 0 && (ii as usize) < h && (jj as usize) < wd {
                                    acc += x[((n * c + ci) * h + ii as usize) * wd + jj as usize]
                                        * w[((o * c + ci) * 3 + r) * 3 + s];
                                }
                            }
                        }
                    }
                    y[((n * f + o) * h + i) * wd + j] = acc;
                }
            }
        }
    }
    y
}

#[test]
fn conv3x3_padding_is_safe_and_correct() {
    let func = spec::conv3x3();
    let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
    let y = s.stage("y").unwrap();
    let (h, ww) = (s.axis(y, "h").unwrap(), s.axis(y, "ww").unwrap());
    let [ho, wo, hi, wi] = s.tile_named(h, ww, 4, 8, ["ho", "wo", "hi", "wi"]).unwrap();
    let f = s.axis(y, "f").unwrap();
    s.parallel(f).unwrap();
    s.vectorize(wi).unwrap();
    let _ = (ho, wo, hi);
    // Read x through a local copy of each tile's window (with its halo).
    let xl = s.cache_read_named(y, "x", texpr::Scope::Local, "x_l").unwrap();
    s.compute_at(xl, wo).unwrap();
    let k = Kernel::new(Program::new(func.clone()).with_schedule(s));
    let plain = Kernel::from_func(func);
    for &(b, c, h, wd, f) in &[(1, 3, 7, 9, 5), (2, 1, 1, 1, 1), (1, 2, 8, 16, 3), (1, 0, 4, 4, 2), (0, 2, 3, 3, 1)] {
        let x = Tensor::from_vec([b, c, h, wd], data(b * c * h * wd, 11)).unwrap();
        let w = Tensor::from_vec([f, c, 3, 3], data(f * c * 9, 13)).unwrap();
        let want = conv_ref(x.as_slice(), w.as_slice(), b, c, h, wd, f);
        for kern in [&plain, &k] {
            let got: Tensor<f32> = kern.run1(Target::Interp, &[(&x).into(), (&w).into()], &[]).unwrap();
            close(got.as_slice(), &want);
        }
    }
    // The padding guard proves every access in bounds without a per-shape check.
    assert!(k.lower(Target::Interp).unwrap().unproven.is_empty());
    assert!(plain.lower(Target::Interp).unwrap().unproven.is_empty());
}

#[test]
fn out_of_bounds_access_is_refused() {
    // Always out of bounds: refused when the definition is built.
    let mut f = FuncBuilder::new("shift");
    let x = f.input("x", DType::F32, ["N"]);
    f.output(DType::F32, ["N"]);
    let y = f.compute("y", ["i"], |[i]| x.at([i + 1]));
    f.ret([y]);
    let e = f.build().unwrap_err();
    assert_eq!(
        e.to_string(),
        "shift: index 0 of `x` (`i + 1`) is out of bounds for every shape: it reaches past the end of its range 0..N"
    );
    // Guarded: accepted, and proven safe for every shape.
    let mut f = FuncBuilder::new("shift");
    let x = f.input("x", DType::F32, ["N"]);
    f.output(DType::F32, ["N"]);
    let y = f.compute("y", ["i"], |[i]| te::if_((&i + 1).lt("N"), x.at([&i + 1]), 0.0));
    f.ret([y]);
    let k = Kernel::from_func(f.build().unwrap());
    assert!(k.lower(Target::Interp).unwrap().unproven.is_empty());
    let x = Tensor::from_vec([3], vec![1.0f32, 2.0, 3.0]).unwrap();
    let y: Tensor<f32> = k.run1(Target::Interp, &[(&x).into()], &[]).unwrap();
    assert_eq!(y.as_slice(), &[2.0, 3.0, 0.0]);
}

#[test]
fn out_of_bounds_for_some_shapes_is_an_err_before_running() {
    // `x[2 * i]` with `x: f32[M]`, `i in 0..N`: in bounds only when 2N - 1 <= M.
    let mut f = FuncBuilder::new("stride2");
    let x = f.input("x", DType::F32, ["M"]);
    let _n = f.input("n", DType::F32, ["N"]);
    f.output(DType::F32, ["N"]);
    let y = f.compute("y", ["i"], |[i]| x.at([i * 2]));
    f.ret([y]);
    let func = f.build().unwrap();
    // No schedule at all, so the message shows the definition's index.
    let k = Kernel::new(Program::new(func.clone()).with_schedule(Schedule::new(&func, Some(TargetClass::Cpu))));
    let ok_x = Tensor::from_vec([5], vec![0.0f32, 1.0, 2.0, 3.0, 4.0]).unwrap();
    let n3 = Tensor::<f32>::zeros([3]);
    let y: Tensor<f32> = k.run1(Target::Interp, &[(&ok_x).into(), (&n3).into()], &[]).unwrap();
    assert_eq!(y.as_slice(), &[0.0, 2.0, 4.0]);
    let short = Tensor::<f32>::zeros([4]);
    let e = k.run1::<f32>(Target::Interp, &[(&short).into(), (&n3).into()], &[]).unwrap_err();
    assert!(matches!(e, Error::Bounds(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "stride2: cannot prove that the load of `x` is in bounds with dims [4, 3]: index 0 is `i * 2`, which must stay in 0..4; guard it with `if`"
    );
    // The same on the JIT, whose compile runs the proof beside Cranelift.
    let y: Tensor<f32> = k.run1(Target::Cpu, &[(&ok_x).into(), (&n3).into()], &[]).unwrap();
    assert_eq!(y.as_slice(), &[0.0, 2.0, 4.0]);
    let e_cpu = k.run1::<f32>(Target::Cpu, &[(&short).into(), (&n3).into()], &[]).unwrap_err();
    assert_eq!(e_cpu.to_string(), e.to_string());
}
