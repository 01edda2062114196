//! Whole kernels on `Target::Cpu` against the interpreter: the SPEC
//! examples with CPU schedules (tiling, register blocking through
//! `cache_write(local)`, vectorize, unroll, parallel), on shapes with tails
//! and zero-sized dims; one kernel called from 8 threads at once; golden
//! CLIF snapshots.

use texpr::prelude::*;

tensor_expr! {
    /// Dense matrix product, tiled like SPEC §3.
    pub fn matmul_tiled(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
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

    /// Register-blocked matrix product (TVM's CPU GEMM recipe).
    pub fn matmul_blocked(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }
    schedule for cpu {
        let cl = c.cache_write(local);
        let (io, jo, ii, ji) = c.tile(i, j, 4, 16);
        c.vectorize(ji);
        c.parallel(io);
        cl.compute_at(c, jo);
        let (ko, ki) = cl.split(k, 4);
        cl.reorder(ko, ki, i, j);
        cl.vectorize(j);
        cl.unroll(i);
        cl.unroll(ki);
    }

    /// Matrix product blocked over `k` (accumulator promotion in the JIT).
    pub fn matmul_kblock(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }
    schedule for cpu {
        let (io, jo, ii, ji) = c.tile(i, j, 6, 8);
        let (ko, ki) = c.split(k, 16);
        c.reorder(io, ko, jo, ki, ii, ji);
        c.unroll(ii);
        c.vectorize(ji);
        c.parallel(io);
    }

    /// BLIS-style: a `K x 8` panel of `b` packed once per `jo` (each thread
    /// packs its own, `jo` parallel), a 6x8 register tile over `k`, `k`
    /// split and unrolled (the JIT's accumulator promotion sees the unrolled
    /// `ki` as repeated updates).
    pub fn matmul_packed(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }
    schedule for cpu {
        let cc = c.cache_write(local);
        let (io, jo, ii, ji) = c.tile(i, j, 6, 8);
        c.reorder(jo, io, ii, ji);
        c.parallel(jo);
        cc.compute_at(c, io);
        let (ko, ki) = cc.split(k, 2);
        cc.reorder(ko, ki, i, j);
        cc.unroll(ki);
        cc.unroll(i);
        cc.vectorize(j);
        let bp = cc.cache_read(b, local);
        bp.compute_at(c, jo);
    }

    /// docs/language.md's packed panel: `jo` serial, `io` parallel inside
    /// it, the panel copy vectorized.
    pub fn matmul_packed_io(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }
    schedule for cpu {
        let cc = c.cache_write(local);
        let (io, jo, ii, ji) = c.tile(i, j, 6, 16);
        c.reorder(jo, io, ii, ji);
        c.parallel(io);
        c.unroll(ii);
        c.vectorize(ji);
        cc.compute_at(c, io);
        cc.reorder(k, i, j);
        cc.unroll(i);
        cc.vectorize(j);
        let bp = cc.cache_read(b, local);
        bp.compute_at(c, jo);
        bp.vectorize(ax1);
    }

    /// Numerically stable softmax over the last axis.
    pub fn softmax(x: f32[N, C]) -> f32[N, C] {
        let mx: f32[N] = |n| max(c in 0..C => x[n, c]);
        let e: f32[N, C] = |n, c| exp(x[n, c] - mx[n]);
        let s: f32[N] = |n| sum(c in 0..C => e[n, c]);
        let y = |n, c| e[n, c] / s[n];
        y
    }
    schedule for cpu {
        let (co, ci) = e.split(c, 8);
        e.vectorize(ci);
        e.parallel(n);
        let (yo, yi) = y.split(c, 8);
        y.vectorize(yi);
        y.parallel(n);
        let (mo, mi) = mx.split(c, 4);
        mx.vectorize(mi);
        let (so, si) = s.split(c, 4);
        s.vectorize(si);
    }

    /// Layer normalization over the last axis, unscheduled: the CPU
    /// default computes `mean`, `d` and `var` in `y`'s row loop.
    pub fn layernorm(x: f32[N, C], eps: f32) -> f32[N, C] {
        let mean: f32[N] = |n| sum(c in 0..C => x[n, c]) / (C as f32);
        let d: f32[N, C] = |n, c| x[n, c] - mean[n];
        let var: f32[N] = |n| sum(c in 0..C => d[n, c] * d[n, c]) / (C as f32);
        let y = |n, c| d[n, c] * rsqrt(var[n] + eps);
        y
    }

    /// Instance normalization (NCHW), unscheduled: the CPU default computes
    /// `mean`, `d` and `var` per `(n, c)` plane in `y`'s fused `n, c` loop.
    pub fn instance_norm(x: f32[N, C, H, W]) -> f32[N, C, H, W] {
        let mean: f32[N, C] = |n, c| sum(h in 0..H, w in 0..W => x[n, c, h, w]) / ((H * W) as f32);
        let d: f32[N, C, H, W] = |n, c, h, w| x[n, c, h, w] - mean[n, c];
        let var: f32[N, C] = |n, c| sum(h in 0..H, w in 0..W => d[n, c, h, w] * d[n, c, h, w]) / ((H * W) as f32);
        let y = |n, c, h, w| d[n, c, h, w] * rsqrt(var[n, c] + 1e-5);
        y
    }

    /// Softmax with one `exp` per element: `e` in a row buffer shared by
    /// the row sum and the output (a dynamic-size temporary allocated once
    /// per chunk of rows by the JIT).
    pub fn softmax_rows(x: f32[N, C]) -> f32[N, C] {
        let mx: f32[N] = |n| max(c in 0..C => x[n, c]);
        let e: f32[N, C] = |n, c| exp(x[n, c] - mx[n]);
        let s: f32[N] = |n| sum(c in 0..C => e[n, c]);
        let y = |n, c| e[n, c] / s[n];
        y
    }
    schedule for cpu {
        y.parallel(n);
        let (yo, yi) = y.split(c, 16);
        y.vectorize(yi);
        s.compute_at(y, n);
        e.compute_at(y, n);
        mx.compute_at(y, n);
        let (eo, ei) = e.split(c, 8);
        e.vectorize(ei);
        let (mo, mi) = mx.split(c, 16);
        mx.vectorize(mi);
        let (so, si) = s.split(c, 8);
        s.vectorize(si);
    }

    /// y = max(a * x + b, 0).
    pub fn axpb_relu(x: f32[N], a: f32, b: f32) -> f32[N] {
        let y = |i| max(a * x[i] + b, 0.0);
        y
    }
    schedule for cpu {
        let (o, i2) = y.split(i, 16);
        y.vectorize(i2);
        y.parallel(o);
    }

    /// 2-D convolution, NCHW, 3x3 window, zero padding 1.
    pub fn conv3x3(x: f32[B, C, H, W], w: f32[F, C, 3, 3]) -> f32[B, F, H, W] {
        let y = |n, f, h, ww| sum(c in 0..C, r in 0..3, s in 0..3 =>
            if h + r >= 1 && h + r <= H && ww + s >= 1 && ww + s <= W {
                x[n, c, h + r - 1, ww + s - 1] * w[f, c, r, s]
            } else { 0.0 });
        y
    }
    schedule for cpu {
        let (wo, wi) = y.split(ww, 8);
        y.reorder(n, f, h, wo, c, r, s, wi);
        y.vectorize(wi);
        y.unroll(s);
        y.parallel(f);
    }

    /// Depthwise 3x3 convolution, padding 1.
    pub fn depthwise(x: f32[B, C, H, W], w: f32[C, 3, 3]) -> f32[B, C, H, W] {
        let y = |n, c, h, ww| sum(r in 0..3, s in 0..3 =>
            if h + r >= 1 && h + r <= H && ww + s >= 1 && ww + s <= W {
                x[n, c, h + r - 1, ww + s - 1] * w[c, r, s]
            } else { 0.0 });
        y
    }
    schedule for cpu {
        let (wo, wi) = y.split(ww, 8);
        y.reorder(n, c, h, wo, r, s, wi);
        y.vectorize(wi);
        y.parallel(c);
    }

    /// A stage computed in full, then read by a parallel loop (outlined).
    pub fn root_then_parallel(x: f32[M, N]) -> f32[M, N] {
        let t: f32[M, N] = |i, j| x[i, j] * 2.0;
        let y = |i, j| t[i, j] + 1.0;
        y
    }
    schedule for cpu {
        y.parallel(i);
    }

    /// Nested parallel loops (the inner one runs inside an outlined chunk).
    pub fn nested_parallel(a: f32[M, N], b: f32[M, N]) -> f32[M, N] {
        let y = |i, j| a[i, j] * 2.0 + b[i, j];
        y
    }
    schedule for cpu {
        let (jo, ji) = y.split(j, 4);
        y.parallel(i);
        y.parallel(jo);
        y.vectorize(ji);
    }

    /// A 3-tap row filter, `io` carrying whole points (init and reduction
    /// inside it): specialized to a width that 8 does not divide, its last
    /// vector is shifted back to end at the row's end.
    pub fn taps(x: f32[C, W], w: f32[C, 3]) -> f32[C, W] {
        let y = |c, i| sum(s in 0..3 => if i + s < W { x[c, i + s] * w[c, s] } else { 0.0 });
        y
    }
    schedule for cpu {
        let (io, ii) = y.split(i, 8);
        y.reorder(c, io, s, ii);
        y.vectorize(ii);
        y.parallel(c);
    }

    /// `taps` with `io` parallel: two threads would reduce into the
    /// overlapping points at once, so the tail stays lane by lane.
    pub fn taps_parallel(x: f32[C, W], w: f32[C, 3]) -> f32[C, W] {
        let y = |c, i| sum(s in 0..3 => if i + s < W { x[c, i + s] * w[c, s] } else { 0.0 });
        y
    }
    schedule for cpu {
        let (io, ii) = y.split(i, 8);
        y.reorder(c, io, s, ii);
        y.vectorize(ii);
        y.parallel(io);
    }

    /// `taps` with the reduction outside `io`: each `io` iteration adds one
    /// tap, so recomputing points would add it twice; no shift.
    pub fn taps_outer(x: f32[C, W], w: f32[C, 3]) -> f32[C, W] {
        let y = |c, i| sum(s in 0..3 => if i + s < W { x[c, i + s] * w[c, s] } else { 0.0 });
        y
    }
    schedule for cpu {
        let (io, ii) = y.split(i, 8);
        y.reorder(c, s, io, ii);
        y.vectorize(ii);
    }

    /// A pure stage: its shifted tail may run on any thread.
    pub fn affine_rows(x: f32[C, W]) -> f32[C, W] {
        let y = |c, i| x[c, i] * 2.0 + 1.0;
        y
    }
    schedule for cpu {
        let (io, ii) = y.split(i, 8);
        y.vectorize(ii);
        y.parallel(io);
    }

    /// `affine_rows` split twice: `im` carries the overlap too, and its
    /// iterations past the row's end run nothing.
    pub fn affine_rows2(x: f32[C, W]) -> f32[C, W] {
        let y = |c, i| x[c, i] * 2.0 + 1.0;
        y
    }
    schedule for cpu {
        let (io, it) = y.split(i, 16);
        let (im, ii) = y.split(it, 8);
        y.vectorize(ii);
        y.parallel(io);
    }

    /// Split, fused back and split again: the row's points run in steps
    /// of 4 over a loop of `ceil(W / 8) * 8` points, so whole iterations
    /// past the row's end have nothing to compute.
    pub fn affine_refused(x: f32[C, W]) -> f32[C, W] {
        let y = |c, i| x[c, i] * 2.0 + 1.0;
        y
    }
    schedule for cpu {
        let (io, it) = y.split(i, 8);
        let f = y.fuse(io, it);
        let (fo, ii) = y.split(f, 4);
        y.vectorize(ii);
        y.parallel(c);
    }

    /// Integer histogram-like reduction with wrapping and floor division.
    pub fn int_mix(a: i32[N, K], d: i32) -> i32[N] {
        let y = |i| sum(k in 0..K => (a[i, k] * 7 - 3) / d + a[i, k] % (d + 1));
        y
    }
    schedule for cpu {
        let (ko, ki) = y.split(k, 4);
        y.vectorize(ki);
        y.parallel(i);
    }
}

/// The schedules of `benches/kernels.rs`.
mod bench {
    use texpr::prelude::*;
    include!("../benches/common/schedules.rs");
}

fn close(a: &[f32], b: &[f32], tol: f32) -> Result<(), String> {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if !((x.is_nan() && y.is_nan()) || (x - y).abs() <= tol * (1.0 + y.abs())) {
            return Err(format!("element {i}: {x} vs {y}"));
        }
    }
    Ok(())
}

fn data(shape: &[usize], seed: u32) -> Tensor<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(12345);
    Tensor::from_fn(shape, |_| {
        s = s.wrapping_mul(1664525).wrapping_add(1013904223);
        ((s >> 8) % 2001) as f32 / 1000.0 - 1.0
    })
}

fn both(k: &Kernel, inputs: &[texpr::Input<'_>], params: &[Scalar], tol: f32, what: &str) {
    // Small shapes too run parallel loops in chunks on the pool.
    texpr_jit::set_parallel_min_work(0);
    let got: Tensor<f32> = k.run1(Target::Cpu, inputs, params).unwrap_or_else(|e| panic!("{what}: {e}"));
    let want: Tensor<f32> = k.run1(Target::Interp, inputs, params).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(got.shape(), want.shape());
    if let Err(e) = close(got.as_slice(), want.as_slice(), tol) {
        panic!("{what}: {e}\n{}", k.lower(Target::Cpu).unwrap());
    }
}

#[test]
fn matmuls_on_many_shapes() {
    let shapes = [
        (0, 0, 0),
        (1, 1, 1),
        (3, 5, 2),
        (4, 16, 16),
        (33, 17, 65),
        (37, 9, 70),
        (64, 64, 64),
        (5, 0, 7),
        (13, 31, 24),
        (6, 1, 8),
    ];
    for (m, k, n) in shapes {
        let a = data(&[m, k], 1);
        let b = data(&[k, n], 2);
        for (name, kern) in [
            ("tiled", matmul_tiled::kernel()),
            ("blocked", matmul_blocked::kernel()),
            ("default", bench::matmul_default::kernel()),
            ("kblock", matmul_kblock::kernel()),
            ("packed", matmul_packed::kernel()),
            ("packed_io", matmul_packed_io::kernel()),
        ] {
            both(&kern, &[(&a).into(), (&b).into()], &[], 1e-5, &format!("matmul {name} {m}x{k}x{n}"));
        }
    }
}

/// The default schedule's row fusion against plain loops (not the
/// interpreter, which runs the same schedule).
#[test]
fn default_schedule_fuses_row_wise_stages() {
    let nest = layernorm::kernel().lower(Target::Cpu).unwrap().to_string();
    for buf in ["mean_r0: f32[1]", "mean: f32[1]", "d: f32[1, max(C, 0)]", "var: f32[1]"] {
        assert!(
            nest.contains(&format!("alloc global {buf}\n")),
            "the default does not compute `{buf}` per row:\n{nest}"
        );
    }
    for (n, c) in [(1, 1), (3, 7), (4, 33), (2, 64), (0, 5), (5, 0), (7, 1000)] {
        let x = data(&[n, c], 5);
        let y = layernorm(&x, 1e-5).unwrap();
        for (row, got) in x.as_slice().chunks(c.max(1)).zip(y.as_slice().chunks(c.max(1))) {
            let mean = row.iter().map(|v| *v as f64).sum::<f64>() / c as f64;
            let var = row.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / c as f64;
            let want: Vec<f32> = row.iter().map(|v| ((*v as f64 - mean) / (var + 1e-5).sqrt()) as f32).collect();
            close(got, &want, 1e-4).unwrap_or_else(|e| panic!("layernorm {n}x{c}: {e}"));
        }
    }
}

/// The same with two row dims (`n, c` fused).
#[test]
fn default_schedule_fuses_plane_wise_stages() {
    let nest = instance_norm::kernel().lower(Target::Cpu).unwrap().to_string();
    for buf in ["mean: f32[1, 1]", "d: f32[1, 1, max(H, 0), max(W, 0)]", "var: f32[1, 1]"] {
        assert!(
            nest.contains(&format!("alloc global {buf}\n")),
            "the default does not compute `{buf}` per plane:\n{nest}"
        );
    }
    for (n, c, h, w) in
        [(1, 1, 1, 1), (2, 3, 5, 7), (1, 4, 9, 16), (0, 2, 3, 3), (2, 0, 3, 3), (1, 2, 0, 4), (2, 5, 33, 31)]
    {
        let x = data(&[n, c, h, w], 6);
        let y = instance_norm(&x).unwrap();
        let plane = (h * w).max(1);
        for (p, got) in x.as_slice().chunks(plane).zip(y.as_slice().chunks(plane)) {
            let mean = p.iter().map(|v| *v as f64).sum::<f64>() / (h * w) as f64;
            let var = p.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / (h * w) as f64;
            let want: Vec<f32> = p.iter().map(|v| ((*v as f64 - mean) / (var + 1e-5).sqrt()) as f32).collect();
            close(got, &want, 1e-4).unwrap_or_else(|e| panic!("instance_norm {n}x{c}x{h}x{w}: {e}"));
        }
    }
}

#[test]
fn softmax_relu_convs() {
    for (n, c) in [(1, 1), (3, 7), (4, 33), (2, 64), (0, 5), (5, 0), (3, 1024)] {
        let x = data(&[n, c], 3);
        both(&softmax::kernel(), &[(&x).into()], &[], 1e-6, &format!("softmax {n}x{c}"));
        both(&softmax_rows::kernel(), &[(&x).into()], &[], 1e-6, &format!("softmax_rows {n}x{c}"));
    }
    // Rows with -inf (exp gives 0), huge and tiny values, a NaN row.
    let specials = [f32::NEG_INFINITY, 88.0, -88.0, 0.0, 1e-30, -100.0, 30.0];
    let x =
        Tensor::from_fn([5, 37], |i| if i[0] == 4 { f32::NAN } else { specials[(i[0] * 3 + i[1]) % specials.len()] });
    for k in [softmax::kernel(), bench::softmax::kernel(), softmax_rows::kernel(), bench::softmax_rows::kernel()] {
        both(&k, &[(&x).into()], &[], 1e-6, "softmax special values");
    }
    for n in [0, 1, 15, 16, 17, 100] {
        let x = data(&[n], 4);
        both(&axpb_relu::kernel(), &[(&x).into()], &[2.0f32.into(), (-0.5f32).into()], 0.0, &format!("relu {n}"));
    }
    for (b, c, f, h, w) in
        [(1, 2, 3, 5, 5), (1, 3, 2, 8, 11), (2, 1, 1, 1, 1), (1, 4, 4, 9, 16), (2, 5, 13, 7, 19), (1, 3, 6, 4, 8)]
    {
        let x = data(&[b, c, h, w], 5);
        let wt = data(&[f, c, 3, 3], 6);
        both(&conv3x3::kernel(), &[(&x).into(), (&wt).into()], &[], 1e-5, &format!("conv {b}x{c}x{h}x{w}->{f}"));
        let wd = data(&[c, 3, 3], 7);
        both(&depthwise::kernel(), &[(&x).into(), (&wd).into()], &[], 1e-5, &format!("depthwise {b}x{c}x{h}x{w}"));
    }
}

/// Shift-inwards tails (`lower::build`): with the width fixed and at least
/// 8, a vectorized split's last vector ends at the row's end instead of
/// running the tail lane by lane — where recomputing points is harmless.
#[test]
fn shifted_tails_where_recomputing_is_harmless() {
    texpr_jit::set_parallel_min_work(0);
    for (c, width) in [(3, 13), (2, 8), (4, 5), (1, 29), (3, 1), (2, 62), (2, 36)] {
        let x = data(&[c, width], 3);
        let w = data(&[c, 3], 4);
        let (xs, ws) = (x.as_slice(), w.as_slice());
        let want_taps: Vec<f32> = (0..c * width)
            .map(|p| {
                let (ch, i) = (p / width, p % width);
                (0..3).filter(|s| i + s < width).map(|s| xs[ch * width + i + s] * ws[ch * 3 + s]).sum()
            })
            .collect();
        let want_affine: Vec<f32> = xs.iter().map(|v| v * 2.0 + 1.0).collect();
        let dims = [("C", c), ("W", width)];
        for (name, k, shifts) in [
            ("taps", taps::kernel(), true),
            ("taps_parallel", taps_parallel::kernel(), false),
            ("taps_outer", taps_outer::kernel(), false),
            ("affine_rows", affine_rows::kernel(), true),
            ("affine_rows2", affine_rows2::kernel(), true),
            ("affine_refused", affine_refused::kernel(), true),
        ] {
            let pure = name.starts_with("affine");
            let want = if pure { &want_affine } else { &want_taps };
            for (what, k) in [("generic", k.clone()), ("specialized", k.specialize(&dims).unwrap())] {
                let inputs: Vec<texpr::Input<'_>> =
                    if pure { vec![(&x).into()] } else { vec![(&x).into(), (&w).into()] };
                for target in [Target::Cpu, Target::Interp] {
                    let got: Tensor<f32> = k.run1(target, &inputs, &[]).unwrap();
                    if let Err(e) = close(got.as_slice(), want, 1e-5) {
                        panic!("{name} {what} {c}x{width} on {target:?}: {e}\n{}", k.lower(target).unwrap());
                    }
                }
                // The shifted vector's store index ends at the row's end:
                // `ii + W - 8` with W fixed.
                let nest = k.lower(Target::Cpu).unwrap().to_string();
                let (step, vector) = match name {
                    "affine_rows2" => (16, 8),
                    "affine_refused" => (8, 4),
                    _ => (8, 8),
                };
                let shifted = width % step != 0 && width > vector && what == "specialized" && shifts;
                let marker = format!("ii + {}]", width as i64 - vector as i64);
                assert_eq!(nest.contains(&marker), shifted, "{name} {what} {c}x{width}: `{marker}`\n{nest}");
            }
        }
    }
}

#[test]
fn integer_kernel_with_zero_divisor() {
    let a =
        Tensor::from_fn([7, 10], |i| (i[0] as i32 * 1_000_003).wrapping_sub(i[1] as i32 * 77_777).wrapping_mul(1021));
    for d in [-3i32, -1, 0, 1, 4, i32::MAX] {
        let k = int_mix::kernel();
        let got: Tensor<i32> = k.run1(Target::Cpu, &[(&a).into()], &[d.into()]).unwrap();
        let want: Tensor<i32> = k.run1(Target::Interp, &[(&a).into()], &[d.into()]).unwrap();
        assert_eq!(got.as_slice(), want.as_slice(), "d = {d}");
    }
}

#[test]
fn generated_api_runs_on_cpu() {
    let a = data(&[9, 13], 8);
    let b = data(&[13, 6], 9);
    let c = matmul_tiled::on(Target::Cpu).unwrap().run(&a, &b).unwrap();
    let want: Tensor<f32> = matmul_tiled::kernel().run1(Target::Interp, &[(&a).into(), (&b).into()], &[]).unwrap();
    close(c.as_slice(), want.as_slice(), 1e-5).unwrap();
}

#[test]
fn nested_parallel_loops() {
    for (m, n) in [(0, 3), (1, 1), (7, 9), (33, 64), (100, 3)] {
        let a = data(&[m, n], 11);
        let b = data(&[m, n], 12);
        both(&nested_parallel::kernel(), &[(&a).into(), (&b).into()], &[], 0.0, &format!("nested {m}x{n}"));
    }
}

#[test]
fn kernel_objects_are_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<texpr_jit::JitKernel>();
}

#[test]
fn one_kernel_from_eight_threads() {
    let k = matmul_blocked::kernel();
    k.compile(Target::Cpu).unwrap();
    std::thread::scope(|s| {
        for t in 0..8u32 {
            let k = k.clone();
            s.spawn(move || {
                for r in 0..5u32 {
                    let (m, kk, n) = (5 + (t as usize * 7 + r as usize) % 40, 3 + t as usize, 16 + r as usize * 3);
                    let a = data(&[m, kk], t * 10 + r);
                    let b = data(&[kk, n], t * 10 + r + 100);
                    both(&k, &[(&a).into(), (&b).into()], &[], 1e-5, &format!("thread {t} round {r}"));
                }
            });
        }
    });
}

#[test]
fn clif_snapshots() {
    insta::assert_snapshot!("axpb_relu_clif", axpb_relu::kernel().source(Target::Cpu).unwrap());
    insta::assert_snapshot!("int_mix_clif", int_mix::kernel().source(Target::Cpu).unwrap());
}

/// A temporary that no store follows is read `readonly + can_move` inside
/// an outlined parallel loop too (Cranelift may then hoist or merge the
/// loads, as it does inline), and the kernel still computes right.
#[test]
fn frozen_temporaries_stay_frozen_in_parallel_loops() {
    let k = root_then_parallel::kernel();
    let clif = k.source(Target::Cpu).unwrap();
    let par = clif
        .split("\n; ")
        .find(|f| f.starts_with("root_then_parallel_par"))
        .unwrap_or_else(|| panic!("no outlined function:\n{clif}"));
    let loads: Vec<&str> = par.lines().filter(|l| l.contains("= load.f32")).collect();
    assert!(!loads.is_empty() && loads.iter().all(|l| l.contains("readonly can_move")), "{par}");
    let x = data(&[5, 7], 3);
    both(&k, &[(&x).into()], &[], 0.0, "root_then_parallel");
}

/// Every benchmarked schedule against the interpreter, on shapes that
/// leave tails in every split (and empty ones).
#[test]
fn benchmarked_schedules_match_the_interpreter() {
    for (m, k, n) in [(0, 3, 5), (1, 1, 1), (7, 5, 9), (13, 17, 21), (37, 9, 70), (64, 64, 64)] {
        let a = data(&[m, k], 1);
        let b = data(&[k, n], 2);
        for (name, kern) in [
            ("best", bench::matmul_best::kernel()),
            ("packed_io", bench::matmul_packed_io::kernel()),
            ("6x8", bench::matmul_6x8::kernel()),
            ("kblock", bench::matmul_kblock::kernel()),
            ("default", bench::matmul_default::kernel()),
        ] {
            both(&kern, &[(&a).into(), (&b).into()], &[], 1e-5, &format!("bench matmul {name} {m}x{k}x{n}"));
        }
    }
    for n in [0, 1, 15, 16, 17, 1000] {
        let (a, b, c) = (data(&[n], 1), data(&[n], 2), data(&[n], 3));
        both(&bench::fused::kernel(), &[(&a).into(), (&b).into(), (&c).into()], &[], 0.0, &format!("bench fused {n}"));
    }
    for (n, c) in [(1, 1), (3, 7), (4, 33), (2, 64), (0, 5), (5, 0), (3, 1030)] {
        let x = data(&[n, c], 3);
        for (name, kern) in [
            ("softmax", bench::softmax::kernel()),
            ("rows", bench::softmax_rows::kernel()),
            ("rows_noexp", bench::softmax_rows_noexp::kernel()),
            ("default", bench::softmax_default::kernel()),
        ] {
            both(&kern, &[(&x).into()], &[], 1e-5, &format!("bench softmax {name} {n}x{c}"));
        }
    }
    for (b, c, f, h, w) in [(1, 2, 3, 5, 5), (1, 3, 7, 8, 11), (2, 1, 1, 1, 1), (1, 4, 6, 9, 16), (2, 5, 13, 7, 19)] {
        let x = data(&[b, c, h, w], 5);
        let wd = data(&[c, 3, 3], 7);
        let wt = data(&[f, c, 3, 3], 6);
        both(
            &bench::depthwise::kernel(),
            &[(&x).into(), (&wd).into()],
            &[],
            1e-5,
            &format!("bench depthwise {b}x{c}x{h}x{w}"),
        );
        both(
            &bench::depthwise_guarded::kernel(),
            &[(&x).into(), (&wd).into()],
            &[],
            1e-5,
            &format!("bench depthwise guarded {b}x{c}x{h}x{w}"),
        );
        both(
            &bench::conv2d::kernel(),
            &[(&x).into(), (&wt).into()],
            &[],
            1e-5,
            &format!("bench conv2d {b}x{c}x{h}x{w}->{f}"),
        );
    }
}
