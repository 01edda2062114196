//! The SPEC §2 and §3 examples, written with `tensor_expr!`, against plain
//! Rust loops on several shapes (tails of every tile factor, zero-sized
//! dims), plus the SPEC §4 API and the SPEC §5 shape errors.
//!
//! Runs on the reference interpreter and on `texpr::DEFAULT_TARGET`.
//! GPU schedules are checked by running their lowered loop nest (bound
//! loops run serially) through the interpreter, so no device is needed.

use std::sync::Arc;

use texpr::Compiled;
use texpr::prelude::*;

/// SPEC §2, verbatim.
mod spec2 {
    use texpr::prelude::*;

    tensor_expr! {
        /// Dense matrix product.
        pub fn matmul(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
            let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
            c
        }

        /// Numerically stable softmax over the last axis.
        pub fn softmax(x: f32[N, C]) -> f32[N, C] {
            let mx: f32[N] = |n| max(c in 0..C => x[n, c]);
            let e: f32[N, C] = |n, c| exp(x[n, c] - mx[n]);
            let s: f32[N] = |n| sum(c in 0..C => e[n, c]);
            let y = |n, c| e[n, c] / s[n];
            y
        }

        /// y = max(a * x + b, 0) with a scalar parameter.
        pub fn axpb_relu(x: f32[N], a: f32, b: f32) -> f32[N] {
            let y = |i| max(a * x[i] + b, 0.0);
            y
        }

        /// 2-D convolution, NCHW, 3x3 window, zero padding 1, stride 1.
        pub fn conv3x3(x: f32[B, C, H, W], w: f32[F, C, 3, 3]) -> f32[B, F, H, W] {
            let y = |n, f, h, ww| sum(c in 0..C, r in 0..3, s in 0..3 =>
                if h + r >= 1 && h + r <= H && ww + s >= 1 && ww + s <= W {
                    x[n, c, h + r - 1, ww + s - 1] * w[f, c, r, s]
                } else { 0.0 });
            y
        }
    }
}

/// SPEC §3, verbatim.
mod spec3 {
    use texpr::prelude::*;

    tensor_expr! {
        pub fn matmul(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
            let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
            c
        }
        schedule for cpu {
            let (io, jo, ii, ji) = c.tile(i, j, 32, 64);
            let (ko, ki) = c.split(k, 8);
            c.reorder(io, jo, ko, ki, ii, ji);
            c.vectorize(ji);
            c.unroll(ki);
            c.parallel(io);
        }
        schedule for gpu {
            let (bi, bj, ti, tj) = c.tile(i, j, 16, 16);
            c.bind(bi, block.y); c.bind(bj, block.x);
            c.bind(ti, thread.y); c.bind(tj, thread.x);
            let (ko, ki) = c.split(k, 16);
            let a_s = c.cache_read(a, shared);
            let b_s = c.cache_read(b, shared);
            a_s.compute_at(c, ko);
            b_s.compute_at(c, ko);
        }
    }
}

/// More schedules over the SPEC definitions: every primitive at least once.
mod scheduled {
    use texpr::prelude::*;

    tensor_expr! {
        /// Softmax with its producers computed inside the consumer's loops.
        pub fn softmax(x: f32[N, C]) -> f32[N, C] {
            let mx: f32[N] = |n| max(c in 0..C => x[n, c]);
            let e: f32[N, C] = |n, c| exp(x[n, c] - mx[n]);
            let s: f32[N] = |n| sum(c in 0..C => e[n, c]);
            let y = |n, c| e[n, c] / s[n];
            y
        }
        schedule for cpu {
            let (no, ni) = y.split(n, 3);
            mx.compute_at(e, n);
            e.compute_root();
            let (co, ci) = s.split(c, 4);
            s.unroll(ci);
            y.vectorize(c);
        }
        schedule for gpu {
            let f = y.fuse(n, c);
            let (bo, ti) = y.split(f, 32);
            y.bind(bo, block.x);
            y.bind(ti, thread.x);
            e.compute_inline();
        }

        /// Matrix product with a 6x16 accumulator tile per `io` and B's
        /// panel packed once per `jo` (docs/language.md).
        pub fn matmul_packed(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
            let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
            c
        }
        schedule for cpu {
            let cc = c.cache_write(local);
            let (io, jo, ii, ji) = c.tile(i, j, 6, 16);
            c.reorder(jo, io, ii, ji);
            c.parallel(io);
            cc.compute_at(c, io);
            cc.reorder(k, i, j);
            cc.unroll(i);
            cc.vectorize(j);
            let bp = cc.cache_read(b, local);
            bp.compute_at(c, jo);
        }

        /// Convolution with a local accumulator and a fused outer loop.
        pub fn conv3x3(x: f32[B, C, H, W], w: f32[F, C, 3, 3]) -> f32[B, F, H, W] {
            let y = |n, f, h, ww| sum(c in 0..C, r in 0..3, s in 0..3 =>
                if h + r >= 1 && h + r <= H && ww + s >= 1 && ww + s <= W {
                    x[n, c, h + r - 1, ww + s - 1] * w[f, c, r, s]
                } else { 0.0 });
            y
        }
        schedule {
            let yl = y.cache_write(local);
            let nf = y.fuse(n, f);
            let (wo, wi) = y.split(ww, 4);
            y.parallel(nf);
            let (ho, wo2, hi, wi2) = yl.tile(h, ww, 2, 3);
            yl.reorder(c, r, s);
            yl.unroll(s);
        }
    }
}

/// A small deterministic generator.
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn tensor(shape: &[usize], seed: u64) -> Tensor<f32> {
    let n = shape.iter().product();
    Tensor::from_vec(shape, data(n, seed)).unwrap()
}

fn assert_close(got: &Tensor<f32>, want: &[f32], shape: &[usize], what: &str) {
    assert_eq!(got.shape(), shape, "{what}: shape");
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.as_slice().iter().zip(want).enumerate() {
        let tol = 1e-4 * (1.0 + w.abs());
        assert!((g - w).abs() <= tol, "{what}: element {i}: got {g}, want {w}");
    }
}

fn matmul_ref(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for kk in 0..k {
                acc += a[i * k + kk] * b[kk * n + j];
            }
            c[i * n + j] = acc;
        }
    }
    c
}

fn softmax_ref(x: &[f32], n: usize, c: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; n * c];
    for r in 0..n {
        let row = &x[r * c..(r + 1) * c];
        let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f32> = row.iter().map(|v| (v - mx).exp()).collect();
        let s: f32 = e.iter().sum();
        for j in 0..c {
            y[r * c + j] = e[j] / s;
        }
    }
    y
}

#[allow(clippy::too_many_arguments)]
fn conv3x3_ref(x: &[f32], w: &[f32], b: usize, c: usize, h: usize, ww: usize, f: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; b * f * h * ww];
    for n in 0..b {
        for ff in 0..f {
            for i in 0..h {
                for j in 0..ww {
                    let mut acc = 0.0f32;
                    for cc in 0..c {
                        for r in 0..3 {
                            for s in 0..3 {
                                let (hi, wj) = (i + r, j + s);
                                if hi >= 1 && hi <= h && wj >= 1 && wj <= ww {
                                    let xv = x[((n * c + cc) * h + hi - 1) * ww + wj - 1];
                                    acc += xv * w[((ff * c + cc) * 3 + r) * 3 + s];
                                }
                            }
                        }
                    }
                    y[((n * f + ff) * h + i) * ww + j] = acc;
                }
            }
        }
    }
    y
}

/// Runs a kernel's loop nest for `target` on the interpreter (GPU-bound
/// loops run serially): the GPU schedule's semantics without a device.
fn run_lowered(k: &Kernel, target: Target, inputs: &[&Tensor<f32>], out: &mut Tensor<f32>) -> Result<(), Error> {
    let lowered = k.lower(target)?;
    let exe = texpr_dsl::interp::Interpreter::new(lowered.flat.clone());
    let c = Compiled::new(Arc::new(k.func()?.clone()), Arc::new(lowered), Box::new(exe));
    let data: Vec<_> = inputs.iter().map(|t| t.data()).collect();
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
    let out_shape = out.shape().to_vec();
    c.run(&data, &shapes, &[], &mut [out.data_mut()], &[&out_shape])
}

const MATMUL_SHAPES: [(usize, usize, usize); 8] =
    [(1, 1, 1), (3, 4, 2), (33, 17, 65), (32, 16, 64), (47, 9, 70), (0, 5, 3), (4, 0, 3), (2, 3, 0)];

#[test]
fn packed_panel_matmul_matches_loops() {
    for (m, k, n) in MATMUL_SHAPES {
        let a = tensor(&[m, k], 3);
        let b = tensor(&[k, n], 4);
        let want = matmul_ref(a.as_slice(), b.as_slice(), m, k, n);
        for target in [Target::Interp, Target::Cpu] {
            let c = scheduled::matmul_packed::on(target).unwrap().run(&a, &b).unwrap();
            assert_close(&c, &want, &[m, n], &format!("packed matmul {m}x{k} @ {k}x{n} on {target:?}"));
        }
    }
}

#[test]
fn matmul_matches_loops_on_every_target_schedule() {
    for (m, k, n) in MATMUL_SHAPES {
        let a = tensor(&[m, k], 1);
        let b = tensor(&[k, n], 2);
        let want = matmul_ref(a.as_slice(), b.as_slice(), m, k, n);
        let what = format!("matmul {m}x{k} @ {k}x{n}");
        // Unscheduled (SPEC §2), default target and interpreter.
        assert_close(&spec2::matmul(&a, &b).unwrap(), &want, &[m, n], &format!("{what} (default target)"));
        let c = spec2::matmul::on(Target::Interp).unwrap().run(&a, &b).unwrap();
        assert_close(&c, &want, &[m, n], &format!("{what} (interpreter)"));
        // The CPU schedule of SPEC §3 (tails for 32x64 tiles and split 8).
        let c = spec3::matmul::on(Target::Interp).unwrap().run(&a, &b).unwrap();
        assert_close(&c, &want, &[m, n], &format!("{what} (cpu schedule, interpreter)"));
        assert_close(
            &spec3::matmul(&a, &b).unwrap(),
            &want,
            &[m, n],
            &format!("{what} (cpu schedule, default target)"),
        );
        // The GPU schedule of SPEC §3, its loop nest run serially.
        let mut c = Tensor::zeros([m, n]);
        run_lowered(&spec3::matmul::kernel(), Target::OpenCl, &[&a, &b], &mut c).unwrap();
        assert_close(&c, &want, &[m, n], &format!("{what} (gpu schedule)"));
    }
}

#[test]
fn softmax_matches_loops() {
    for (n, c) in [(1, 1), (3, 5), (4, 7), (5, 13), (0, 4), (3, 0)] {
        let x = tensor(&[n, c], 3);
        let want = softmax_ref(x.as_slice(), n, c);
        let what = format!("softmax {n}x{c}");
        assert_close(&spec2::softmax(&x).unwrap(), &want, &[n, c], &format!("{what} (default target)"));
        let y = spec2::softmax::on(Target::Interp).unwrap().run(&x).unwrap();
        assert_close(&y, &want, &[n, c], &format!("{what} (interpreter)"));
        let y = scheduled::softmax::on(Target::Interp).unwrap().run(&x).unwrap();
        assert_close(&y, &want, &[n, c], &format!("{what} (cpu schedule, interpreter)"));
        let mut y = Tensor::zeros([n, c]);
        run_lowered(&scheduled::softmax::kernel(), Target::OpenCl, &[&x], &mut y).unwrap();
        assert_close(&y, &want, &[n, c], &format!("{what} (gpu schedule)"));
        let mut y = Tensor::zeros([n, c]);
        run_lowered(&spec2::softmax::kernel(), Target::Cuda, &[&x], &mut y).unwrap();
        assert_close(&y, &want, &[n, c], &format!("{what} (default gpu schedule)"));
    }
}

#[test]
fn axpb_relu_takes_scalars_by_value() {
    for n in [0, 1, 5, 64, 100] {
        let x = tensor(&[n], 4);
        let want: Vec<f32> = x.as_slice().iter().map(|v| (2.0 * v + 0.25).max(0.0)).collect();
        let y = spec2::axpb_relu(&x, 2.0, 0.25).unwrap();
        assert_close(&y, &want, &[n], "axpb_relu");
        let mut y2 = Tensor::zeros([n]);
        spec2::axpb_relu::run_into(&x, 2.0, 0.25, &mut y2).unwrap();
        assert_eq!(y, y2);
    }
    let x = Tensor::from_vec([4], vec![-2.0f32, -1.0, 0.5, 3.0]).unwrap();
    assert_eq!(spec2::axpb_relu(&x, 2.0, 1.0).unwrap().as_slice(), &[0.0, 0.0, 2.0, 7.0]);
}

#[test]
fn conv3x3_matches_loops() {
    for (b, c, h, w, f) in
        [(1, 1, 1, 1, 1), (2, 3, 5, 7, 4), (1, 2, 6, 6, 3), (1, 2, 0, 3, 2), (0, 2, 3, 3, 1), (1, 0, 3, 4, 2)]
    {
        let x = tensor(&[b, c, h, w], 5);
        let wt = tensor(&[f, c, 3, 3], 6);
        let want = conv3x3_ref(x.as_slice(), wt.as_slice(), b, c, h, w, f);
        let what = format!("conv3x3 x {b}x{c}x{h}x{w}, w {f}x{c}x3x3");
        assert_close(&spec2::conv3x3(&x, &wt).unwrap(), &want, &[b, f, h, w], &format!("{what} (default target)"));
        let y = scheduled::conv3x3::on(Target::Interp).unwrap().run(&x, &wt).unwrap();
        assert_close(&y, &want, &[b, f, h, w], &format!("{what} (all-targets schedule, interpreter)"));
        let mut y = Tensor::zeros([b, f, h, w]);
        run_lowered(&scheduled::conv3x3::kernel(), Target::OpenCl, &[&x, &wt], &mut y).unwrap();
        assert_close(&y, &want, &[b, f, h, w], &format!("{what} (all-targets schedule, gpu)"));
    }
}

#[test]
fn run_into_writes_existing_outputs() {
    let a = tensor(&[5, 3], 7);
    let b = tensor(&[3, 6], 8);
    let want = matmul_ref(a.as_slice(), b.as_slice(), 5, 3, 6);
    let mut c = Tensor::from_vec([5, 6], vec![f32::NAN; 30]).unwrap();
    spec3::matmul::run_into(&a, &b, &mut c).unwrap();
    assert_close(&c, &want, &[5, 6], "run_into");
    let h = spec3::matmul::on(Target::Interp).unwrap();
    assert_eq!(h.target(), Target::Interp);
    let mut c2 = Tensor::zeros([5, 6]);
    h.run_into(&a, &b, &mut c2).unwrap();
    assert_eq!(c, c2);
}

#[test]
fn shape_errors_name_the_function_the_dim_and_both_tensors() {
    let a = tensor(&[3, 4], 1);
    let b = tensor(&[5, 2], 2);
    let e = spec2::matmul(&a, &b).unwrap_err();
    assert!(matches!(e, Error::Shape(_)), "{e:?}");
    assert_eq!(e.to_string(), "matmul: dim K is 4 in `a` (a is 3x4) but 5 in `b` (b is 5x2)");
    let mut c = Tensor::zeros([3, 2]);
    let e = spec2::matmul::run_into(&a, &b, &mut c).unwrap_err();
    assert_eq!(e.to_string(), "matmul: dim K is 4 in `a` (a is 3x4) but 5 in `b` (b is 5x2)");

    // Wrong rank.
    let v = tensor(&[12], 3);
    let e = spec2::matmul(&v, &b).unwrap_err();
    assert_eq!(e.to_string(), "matmul: `a` must have 2 dim(s) (a: f32[M, K]) but has shape 12");

    // A literal dim.
    let x = tensor(&[1, 2, 4, 4], 4);
    let w = tensor(&[3, 2, 3, 2], 5);
    let e = spec2::conv3x3(&x, &w).unwrap_err();
    assert_eq!(e.to_string(), "conv3x3: dim 3 of `w` must be 3 (w: f32[F, C, 3, 3]) but `w` is 3x2x3x2");

    // The output of run_into has the wrong shape.
    let b = tensor(&[4, 2], 6);
    let mut c = Tensor::zeros([2, 2]);
    let e = spec3::matmul::run_into(&a, &b, &mut c).unwrap_err();
    assert_eq!(e.to_string(), "matmul: output 0 (`c`) must have shape 3x2 but has shape 2x2");
    let mut c = Tensor::zeros([6]);
    let e = spec3::matmul::on(Target::Interp).unwrap().run_into(&a, &b, &mut c).unwrap_err();
    assert_eq!(e.to_string(), "matmul: output 0 (`c`) must have shape 3x2 but has shape 6");
}

#[test]
fn kernel_exposes_the_definition_and_schedules() {
    let k = spec3::matmul::kernel();
    assert_eq!(format!("{k:?}"), "Kernel(matmul)");
    assert_eq!(k.func().unwrap().doc, None);
    assert_eq!(spec2::matmul::kernel().func().unwrap().doc.as_deref(), Some("Dense matrix product."));
    let cpu = k.lower(Target::Interp).unwrap().to_string();
    assert!(cpu.contains("parallel for io in 0..(M + 31) / 32 {"), "{cpu}");
    let gpu = k.lower(Target::OpenCl).unwrap().to_string();
    assert!(gpu.contains("a_s"), "{gpu}");
    assert!(gpu.contains("block.y"), "{gpu}");
    // Built once: every call returns the same kernel.
    let f1 = spec3::matmul::kernel().func().unwrap().clone();
    assert_eq!(&f1, k.func().unwrap());
}

#[test]
fn callable_from_many_threads_at_once() {
    let a = tensor(&[9, 7], 9);
    let b = tensor(&[7, 5], 10);
    let want = matmul_ref(a.as_slice(), b.as_slice(), 9, 7, 5);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    (spec3::matmul(&a, &b).unwrap(), spec3::matmul::on(Target::Interp).unwrap().run(&a, &b).unwrap())
                })
            })
            .collect();
        for h in hs {
            let (c1, c2) = h.join().unwrap();
            assert_close(&c1, &want, &[9, 5], "thread");
            assert_close(&c2, &want, &[9, 5], "thread");
        }
    });
}

#[test]
fn a_missing_backend_is_an_error_not_a_panic() {
    for t in [Target::OpenCl, Target::Cuda, Target::Cpu] {
        if let Err(e) = spec2::softmax::on(t) {
            let msg = e.to_string();
            assert!(matches!(e, Error::Unavailable { .. } | Error::Backend { .. }), "{t:?}: {msg}");
            assert!(!msg.is_empty());
        }
    }
}

mod multi {
    use texpr::prelude::*;

    tensor_expr! {
        /// Row maximum and the first column that reaches it.
        pub fn row_max(x: f32[N, C]) -> (f32[N], i64[N]) {
            let mx: f32[N] = |n| max(c in 0..C => x[n, c]);
            let arg: i64[N] = |n| min(c in 0..C => if x[n, c] == mx[n] { c } else { C });
            (mx, arg)
        }
        schedule for cpu {
            let (no, ni) = arg.split(n, 4);
            arg.parallel(no);
            mx.vectorize(n);
        }
    }
}

#[test]
fn several_outputs_come_back_as_a_tuple() {
    for (n, c) in [(1, 1), (5, 3), (9, 17), (0, 3)] {
        let x = tensor(&[n, c], 11);
        let mut want_mx = vec![];
        let mut want_arg = vec![];
        for r in 0..n {
            let row = &x.as_slice()[r * c..(r + 1) * c];
            let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            want_mx.push(mx);
            want_arg.push(row.iter().position(|v| *v == mx).unwrap_or(c) as i64);
        }
        let (mx, arg) = multi::row_max(&x).unwrap();
        assert_eq!((mx.as_slice(), arg.as_slice()), (&want_mx[..], &want_arg[..]), "{n}x{c}");
        let (mx2, arg2) = multi::row_max::on(Target::Interp).unwrap().run(&x).unwrap();
        assert_eq!((mx2, arg2), (mx.clone(), arg.clone()));
        let (mut mx3, mut arg3) = (Tensor::zeros([n]), Tensor::zeros([n]));
        multi::row_max::run_into(&x, &mut mx3, &mut arg3).unwrap();
        assert_eq!((mx3, arg3), (mx, arg));
    }
    let x = tensor(&[3, 2], 12);
    let (mut mx, mut arg) = (Tensor::zeros([3]), Tensor::zeros([2]));
    let e = multi::row_max::run_into(&x, &mut mx, &mut arg).unwrap_err();
    assert_eq!(e.to_string(), "row_max: output 1 (`arg`) must have shape 3 but has shape 2");
}

/// `NAME::specialize` / `Kernel::specialize`: dims fixed to values are
/// literals in the loop nest (tails the values decide are gone), results
/// are the generic kernel's on every target, calls with other values and
/// unknown dim names are errors naming the function and the dim.
#[test]
fn specialized_kernels_match_and_check_their_dims() {
    for (m, k, n) in MATMUL_SHAPES {
        let a = tensor(&[m, k], 7);
        let b = tensor(&[k, n], 8);
        let want = matmul_ref(a.as_slice(), b.as_slice(), m, k, n);
        let dims = [("M", m), ("K", k), ("N", n)];
        for target in [Target::Interp, Target::Cpu] {
            let what = format!("specialized matmul {m}x{k} @ {k}x{n} on {target:?}");
            let c = spec3::matmul::specialize(target, &dims).unwrap().run(&a, &b).unwrap();
            assert_close(&c, &want, &[m, n], &what);
            let c = scheduled::matmul_packed::specialize(target, &dims[..2]).unwrap().run(&a, &b).unwrap();
            assert_close(&c, &want, &[m, n], &format!("{what} (packed, M and K fixed)"));
            assert_close(
                &spec2::matmul::specialize(target, &dims).unwrap().run(&a, &b).unwrap(),
                &want,
                &[m, n],
                &format!("{what} (default schedule)"),
            );
        }
        // The GPU schedule's specialized loop nest, run serially.
        let mut c = Tensor::zeros([m, n]);
        run_lowered(&spec3::matmul::kernel().specialize(&dims).unwrap(), Target::OpenCl, &[&a, &b], &mut c).unwrap();
        assert_close(&c, &want, &[m, n], &format!("specialized matmul {m}x{k} @ {k}x{n} (gpu schedule)"));
    }

    // No dim is left in the nest; 64 is a multiple of both tile sizes, so
    // no tail guard is left either.
    let k = spec3::matmul::kernel().specialize(&[("M", 64), ("K", 64), ("N", 64)]).unwrap();
    let nest = k.lower(Target::Cpu).unwrap().to_string();
    assert!(!nest.contains('M') && !nest.contains('N') && !nest.contains("min("), "{nest}");
    assert!(k.source(Target::OpenCl).unwrap().contains("64"));

    // Calls must match the fixed values; other dims stay free.
    let h = spec2::matmul::specialize(Target::Cpu, &[("K", 4)]).unwrap();
    let c = h.run(&tensor(&[5, 4], 1), &tensor(&[4, 3], 2)).unwrap();
    assert_eq!(c.shape(), &[5, 3]);
    let e = h.run(&tensor(&[3, 5], 1), &tensor(&[5, 2], 2)).unwrap_err();
    assert!(matches!(e, Error::Shape(_)), "{e:?}");
    assert_eq!(e.to_string(), "matmul: dim K is 5 in `a` (a is 3x5) but the kernel is specialized to K = 4");

    // Every dim from example inputs: the kernel for exactly their shapes.
    let (a, b) = (tensor(&[7, 5], 3), tensor(&[5, 9], 4));
    let h = spec3::matmul::specialize_for(Target::Cpu, &a, &b).unwrap();
    assert!(!h.kernel().lower(Target::Cpu).unwrap().to_string().contains('K'));
    assert_close(
        &h.run(&a, &b).unwrap(),
        &matmul_ref(a.as_slice(), b.as_slice(), 7, 5, 9),
        &[7, 9],
        "specialized for 7x5 @ 5x9",
    );
    let e = h.run(&tensor(&[7, 5], 3), &tensor(&[5, 8], 4)).unwrap_err();
    assert_eq!(e.to_string(), "matmul: dim N is 8 in `b` (b is 5x8) but the kernel is specialized to N = 9");
    let e = spec3::matmul::specialize_for(Target::Cpu, &a, &tensor(&[4, 9], 4)).unwrap_err();
    assert_eq!(e.to_string(), "matmul: dim K is 5 in `a` (a is 7x5) but 4 in `b` (b is 4x9)");
    let (x, y) = spec2::axpb_relu::specialize_for(Target::Cpu, &tensor(&[6], 1))
        .map(|h| (h.run(&tensor(&[6], 1), 2.0, 1.0), h.target()))
        .unwrap();
    assert_eq!((x.unwrap().shape().to_vec(), y), (vec![6], Target::Cpu));

    // Bad requests.
    let e = spec2::matmul::specialize(Target::Cpu, &[("Q", 4)]).unwrap_err();
    assert_eq!(e.to_string(), "matmul: cannot specialize `Q`: not a dim of the definition (its dims: M, K, N)");
    let k4 = spec2::matmul::kernel().specialize(&[("K", 4)]).unwrap();
    assert!(k4.specialize(&[("K", 4), ("M", 2)]).is_ok());
    let e = k4.specialize(&[("K", 5)]).unwrap_err();
    assert_eq!(e.to_string(), "matmul: cannot specialize `K` to 5: already specialized to 4");
    let e = spec2::matmul::kernel().specialize(&[("N", 4), ("N", 5)]).unwrap_err();
    assert_eq!(e.to_string(), "matmul: cannot specialize `N` to both 4 and 5");
    let e = spec2::matmul::specialize(Target::Cpu, &[("K", usize::MAX)]).unwrap_err();
    assert!(e.to_string().contains("too large"), "{e}");
}
