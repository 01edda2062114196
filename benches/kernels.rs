//! Criterion benchmarks of the Cranelift backend against Rust peers in the
//! same run. Results and analysis: `docs/PERFORMANCE.md`.
//!
//! `cargo bench --bench kernels` (all) or `cargo bench --bench kernels -- matmul`.
//! numpy and onnxruntime figures come from `benches/peers.py`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use texpr::prelude::*;
use texpr::te::FuncBuilder;

tensor_expr! {
    /// BLIS-style matrix product, the best schedule: each `jo` iteration
    /// packs a contiguous `K x 8` panel of `b` (`bp`, `cache_read` +
    /// `compute_at` at `jo`) that every 6-row tile reuses; a 6x8 register
    /// tile `cc` (12 accumulators of 4 lanes) over `k`. `jo` is the parallel
    /// loop, so each thread packs its own panels.
    pub fn matmul_best(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }
    schedule for cpu {
        let cc = c.cache_write(local);
        let (io, jo, ii, ji) = c.tile(i, j, 6, 8);
        c.reorder(jo, io, ii, ji);
        c.parallel(jo);
        cc.compute_at(c, io);
        cc.reorder(k, i, j);
        cc.unroll(i);
        cc.vectorize(j);
        let bp = cc.cache_read(b, local);
        bp.compute_at(c, jo);
    }

    /// The packed panel as in docs/language.md: `jo` serial, `io` parallel
    /// inside it (one parallel loop per panel, packed by one thread).
    pub fn matmul_packed_io(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }
    schedule for cpu {
        let cc = c.cache_write(local);
        let (io, jo, ii, ji) = c.tile(i, j, 6, 8);
        c.reorder(jo, io, ii, ji);
        c.parallel(io);
        cc.compute_at(c, io);
        cc.reorder(k, i, j);
        cc.unroll(i);
        cc.vectorize(j);
        let bp = cc.cache_read(b, local);
        bp.compute_at(c, jo);
    }

    /// Register-blocked without packing (the previous best): 6x8 tile via
    /// `cache_write(local)`, `k` unrolled by 2, `b` read in place.
    pub fn matmul_6x8(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }
    schedule for cpu {
        let cl = c.cache_write(local);
        let (io, jo, ii, ji) = c.tile(i, j, 6, 8);
        c.unroll(ii);
        c.vectorize(ji);
        c.parallel(io);
        cl.compute_at(c, jo);
        let (ko, ki) = cl.split(k, 2);
        cl.reorder(ko, ki, i, j);
        cl.vectorize(j);
        cl.unroll(i);
        cl.unroll(ki);
    }

    /// Matrix product blocked for the caches: `k` in blocks of 256 outside the
    /// `j` tiles (a 256-row block of `b` stays in L2 across the tiles), the
    /// 6x8 tile of `c` kept in registers over each `k` block by the JIT's
    /// accumulator promotion.
    pub fn matmul_kblock(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }
    schedule for cpu {
        let (io, jo, ii, ji) = c.tile(i, j, 6, 8);
        let (ko, ki) = c.split(k, 256);
        c.reorder(io, ko, jo, ki, ii, ji);
        c.unroll(ii);
        c.vectorize(ji);
        c.parallel(io);
    }

    /// Matrix product, default schedule.
    pub fn matmul_default(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }

    /// y = max(a * b + c, 0), elementwise.
    pub fn fused(a: f32[N], b: f32[N], c: f32[N]) -> f32[N] {
        let y = |i| max(a[i] * b[i] + c[i], 0.0);
        y
    }
    schedule for cpu {
        let (o, v) = y.split(i, 16);
        y.vectorize(v);
        y.parallel(o);
    }

    /// Softmax over rows: `e` inlined, the row sum computed per row of `y`
    /// (`mx` stays a pass of its own: compute_at needs a single direct reader).
    pub fn softmax(x: f32[N, C]) -> f32[N, C] {
        let mx: f32[N] = |n| max(c in 0..C => x[n, c]);
        let e: f32[N, C] = |n, c| exp(x[n, c] - mx[n]);
        let s: f32[N] = |n| sum(c in 0..C => e[n, c]);
        let y = |n, c| e[n, c] / s[n];
        y
    }
    schedule for cpu {
        e.compute_inline();
        y.parallel(n);
        let (yo, yi) = y.split(c, 16);
        y.vectorize(yi);
        s.compute_at(y, n);
        mx.parallel(n);
        let (mo, mi) = mx.split(c, 16);
        mx.vectorize(mi);
        let (so, si) = s.split(c, 16);
        s.vectorize(si);
    }

    /// Softmax with one `exp` per element: `e` in a row buffer computed at
    /// each row of `y` (with `mx` and `s`), shared by the row sum and the
    /// output; the output multiplies by the row's reciprocal `r`.
    pub fn softmax_rows(x: f32[N, C]) -> f32[N, C] {
        let mx: f32[N] = |n| max(c in 0..C => x[n, c]);
        let e: f32[N, C] = |n, c| exp(x[n, c] - mx[n]);
        let s: f32[N] = |n| sum(c in 0..C => e[n, c]);
        let r: f32[N] = |n| 1.0 / s[n];
        let y = |n, c| e[n, c] * r[n];
        y
    }
    schedule for cpu {
        y.parallel(n);
        let (yo, yi) = y.split(c, 16);
        y.vectorize(yi);
        r.compute_at(y, n);
        s.compute_at(y, n);
        e.compute_at(y, n);
        mx.compute_at(y, n);
        let (eo, ei) = e.split(c, 16);
        e.vectorize(ei);
        let (mo, mi) = mx.split(c, 16);
        mx.vectorize(mi);
        let (so, si) = s.split(c, 16);
        s.vectorize(si);
    }

    /// `softmax_rows` without the `exp` (`e = x - mx`): the same passes
    /// over memory with no transcendental work, i.e. the memory floor of
    /// the softmax schedule on this machine (not a softmax).
    pub fn softmax_rows_noexp(x: f32[N, C]) -> f32[N, C] {
        let mx: f32[N] = |n| max(c in 0..C => x[n, c]);
        let e: f32[N, C] = |n, c| x[n, c] - mx[n];
        let s: f32[N] = |n| sum(c in 0..C => e[n, c]);
        let r: f32[N] = |n| 1.0 / s[n];
        let y = |n, c| e[n, c] * r[n];
        y
    }
    schedule for cpu {
        y.parallel(n);
        let (yo, yi) = y.split(c, 16);
        y.vectorize(yi);
        r.compute_at(y, n);
        s.compute_at(y, n);
        e.compute_at(y, n);
        mx.compute_at(y, n);
        let (eo, ei) = e.split(c, 16);
        e.vectorize(ei);
        let (mo, mi) = mx.split(c, 16);
        mx.vectorize(mi);
        let (so, si) = s.split(c, 16);
        s.vectorize(si);
    }

    /// Softmax, default schedule.
    pub fn softmax_default(x: f32[N, C]) -> f32[N, C] {
        let mx: f32[N] = |n| max(c in 0..C => x[n, c]);
        let e: f32[N, C] = |n, c| exp(x[n, c] - mx[n]);
        let s: f32[N] = |n| sum(c in 0..C => e[n, c]);
        let y = |n, c| e[n, c] / s[n];
        y
    }

    /// Depthwise 3x3 convolution, NCHW, zero padding 1 (explicit padded stage).
    pub fn depthwise(x: f32[B, C, H, W], w: f32[C, 3, 3]) -> f32[B, C, H, W] {
        let xp: f32[B, C, H + 2, W + 2] = |n, c, h, ww|
            if h >= 1 && h <= H && ww >= 1 && ww <= W { x[n, c, h - 1, ww - 1] } else { 0.0 };
        let y = |n, c, h, ww| sum(r in 0..3, s in 0..3 => xp[n, c, h + r, ww + s] * w[c, r, s]);
        y
    }
    schedule for cpu {
        let (wo, wi) = y.split(ww, 8);
        y.reorder(n, c, h, wo, r, s, wi);
        y.unroll(r);
        y.unroll(s);
        y.vectorize(wi);
        let nc = y.fuse(n, c);
        y.parallel(nc);
        xp.compute_at(y, nc);
        let (xo, xi) = xp.split(ww, 8);
        xp.vectorize(xi);
    }

    /// Depthwise 3x3 convolution written like SPEC's conv3x3 (guards inside
    /// the reduction); the JIT partitions the `w` loop around the guards.
    pub fn depthwise_guarded(x: f32[B, C, H, W], w: f32[C, 3, 3]) -> f32[B, C, H, W] {
        let y = |n, c, h, ww| sum(r in 0..3, s in 0..3 =>
            if h + r >= 1 && h + r <= H && ww + s >= 1 && ww + s <= W {
                x[n, c, h + r - 1, ww + s - 1] * w[c, r, s]
            } else { 0.0 });
        y
    }
    schedule for cpu {
        let (wo, wi) = y.split(ww, 8);
        y.reorder(n, c, h, wo, r, s, wi);
        y.unroll(r);
        y.unroll(s);
        y.vectorize(wi);
        let nc = y.fuse(n, c);
        y.parallel(nc);
    }

    /// 2-D convolution 3x3, NCHW, zero padding 1 (explicit padded stage,
    /// copied in parallel with vectorized rows). A 6x8 register tile over
    /// (output channels, width) via `cache_write(local)`; the window loops
    /// `r, s` outermost and the channel loop innermost, so the inner loop is
    /// the matmul micro-kernel (12 FMAs per input channel: 2 vector loads
    /// of `xp`, 12 weight broadcasts). Rows of the output in parallel.
    pub fn conv2d(x: f32[B, C, H, W], w: f32[F, C, 3, 3]) -> f32[B, F, H, W] {
        let xp: f32[B, C, H + 2, W + 2] = |n, c, h, ww|
            if h >= 1 && h <= H && ww >= 1 && ww <= W { x[n, c, h - 1, ww - 1] } else { 0.0 };
        let y = |n, f, h, ww| sum(c in 0..C, r in 0..3, s in 0..3 => xp[n, c, h + r, ww + s] * w[f, c, r, s]);
        y
    }
    schedule for cpu {
        let yl = y.cache_write(local);
        let (fo, wo, fi, wi) = y.tile(f, ww, 6, 8);
        y.reorder(n, h, fo, wo, fi, wi);
        y.unroll(fi);
        y.vectorize(wi);
        y.parallel(h);
        yl.compute_at(y, wo);
        yl.reorder(r, s, c, f, ww);
        yl.unroll(f);
        yl.vectorize(ww);
        let (xo, xi) = xp.split(ww, 8);
        xp.vectorize(xi);
        xp.parallel(c);
    }
}

fn data(shape: &[usize], seed: u32) -> Tensor<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(12345);
    Tensor::from_fn(shape, |_| {
        s = s.wrapping_mul(1664525).wrapping_add(1013904223);
        ((s >> 8) % 2001) as f32 / 1000.0 - 1.0
    })
}

fn matmul(c: &mut Criterion) {
    let n = 1024;
    let a = data(&[n, n], 1);
    let b = data(&[n, n], 2);
    let mut out = Tensor::<f32>::zeros([n, n]);
    let mut g = c.benchmark_group("matmul_1024");
    g.sample_size(10).measurement_time(Duration::from_secs(4)).throughput(Throughput::Elements(2 * (n * n * n) as u64));
    g.bench_function("texpr_best", |bn| bn.iter(|| matmul_best::run_into(&a, &b, &mut out).unwrap()));
    g.bench_function("texpr_packed_io", |bn| bn.iter(|| matmul_packed_io::run_into(&a, &b, &mut out).unwrap()));
    g.bench_function("texpr_6x8", |bn| bn.iter(|| matmul_6x8::run_into(&a, &b, &mut out).unwrap()));
    g.bench_function("texpr_kblock", |bn| bn.iter(|| matmul_kblock::run_into(&a, &b, &mut out).unwrap()));
    g.bench_function("texpr_default", |bn| bn.iter(|| matmul_default::run_into(&a, &b, &mut out).unwrap()));
    let mut o2 = vec![0.0f32; n * n];
    g.bench_function("matrixmultiply_1thread", |bn| {
        bn.iter(|| unsafe {
            matrixmultiply::sgemm(n, n, n, 1.0, a.as_slice().as_ptr(), n as isize, 1, b.as_slice().as_ptr(), n as isize, 1, 0.0, o2.as_mut_ptr(), n as isize, 1)
        })
    });
    g.bench_function("rust_loops_ikj", |bn| {
        bn.iter(|| {
            let (a, b) = (a.as_slice(), b.as_slice());
            o2.iter_mut().for_each(|v| *v = 0.0);
            for i in 0..n {
                for k in 0..n {
                    let aik = a[i * n + k];
                    let row = &b[k * n..k * n + n];
                    for (o, bv) in o2[i * n..i * n + n].iter_mut().zip(row) {
                        *o += aik * bv;
                    }
                }
            }
            black_box(&o2);
        })
    });
    g.finish();
}

fn fused_relu(c: &mut Criterion) {
    let n = 16 << 20;
    let (a, b, cc) = (data(&[n], 1), data(&[n], 2), data(&[n], 3));
    let mut y = Tensor::<f32>::zeros([n]);
    let mut g = c.benchmark_group("fused_16M");
    g.sample_size(20).throughput(Throughput::Bytes(16 * n as u64));
    g.bench_function("texpr", |bn| bn.iter(|| fused::run_into(&a, &b, &cc, &mut y).unwrap()));
    let mut y2 = vec![0.0f32; n];
    g.bench_function("rust_loop", |bn| {
        bn.iter(|| {
            for (((o, x), y), z) in y2.iter_mut().zip(a.as_slice()).zip(b.as_slice()).zip(cc.as_slice()) {
                *o = (x * y + z).max(0.0);
            }
            black_box(&y2);
        })
    });
    // The same loop on two threads: the machine's streaming ceiling.
    g.bench_function("rust_loop_2threads", |bn| {
        bn.iter(|| {
            let half = n / 2;
            let (y_lo, y_hi) = y2.split_at_mut(half);
            let (a, b, cc) = (a.as_slice(), b.as_slice(), cc.as_slice());
            std::thread::scope(|sc| {
                for (y, off) in [(y_lo, 0), (y_hi, half)] {
                    sc.spawn(move || {
                        for (k, o) in y.iter_mut().enumerate() {
                            let i = off + k;
                            *o = (a[i] * b[i] + cc[i]).max(0.0);
                        }
                    });
                }
            });
            black_box(&y2);
        })
    });
    g.finish();
}

fn softmax_bench(c: &mut Criterion) {
    let (n, cc) = (4096, 1024);
    let x = data(&[n, cc], 4);
    let mut y = Tensor::<f32>::zeros([n, cc]);
    let mut g = c.benchmark_group("softmax_4096x1024");
    g.sample_size(20).throughput(Throughput::Bytes(8 * (n * cc) as u64));
    g.bench_function("texpr", |bn| bn.iter(|| softmax::run_into(&x, &mut y).unwrap()));
    g.bench_function("texpr_rows", |bn| bn.iter(|| softmax_rows::run_into(&x, &mut y).unwrap()));
    g.bench_function("floor_rows_without_exp", |bn| bn.iter(|| softmax_rows_noexp::run_into(&x, &mut y).unwrap()));
    g.bench_function("texpr_default", |bn| bn.iter(|| softmax_default::run_into(&x, &mut y).unwrap()));
    let mut y2 = vec![0.0f32; n * cc];
    g.bench_function("rust_loops", |bn| {
        bn.iter(|| {
            for (xr, yr) in x.as_slice().chunks(cc).zip(y2.chunks_mut(cc)) {
                let m = xr.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b));
                let mut s = 0.0;
                for (o, v) in yr.iter_mut().zip(xr) {
                    *o = (v - m).exp();
                    s += *o;
                }
                yr.iter_mut().for_each(|o| *o /= s);
            }
            black_box(&y2);
        })
    });
    g.finish();
}

fn convs(c: &mut Criterion) {
    let (ch, h, w) = (128, 56, 56);
    let x = data(&[1, ch, h, w], 5);
    let wd = data(&[ch, 3, 3], 6);
    let mut y = Tensor::<f32>::zeros([1, ch, h, w]);
    let mut g = c.benchmark_group("depthwise_1x128x56x56");
    g.sample_size(30).throughput(Throughput::Elements(2 * 9 * (ch * h * w) as u64));
    g.bench_function("texpr", |bn| bn.iter(|| depthwise::run_into(&x, &wd, &mut y).unwrap()));
    let mut y2 = vec![0.0f32; ch * h * w];
    g.bench_function("texpr_guarded", |bn| bn.iter(|| depthwise_guarded::run_into(&x, &wd, &mut y).unwrap()));
    g.bench_function("rust_loops", |bn| bn.iter(|| depthwise_ref(x.as_slice(), wd.as_slice(), &mut y2, ch, h, w)));
    g.finish();

    let (ci, co) = (64, 64);
    let x = data(&[1, ci, h, w], 7);
    let wt = data(&[co, ci, 3, 3], 8);
    let mut y = Tensor::<f32>::zeros([1, co, h, w]);
    let mut g = c.benchmark_group("conv2d_1x64x56x56_64");
    g.sample_size(10).measurement_time(Duration::from_secs(4)).throughput(Throughput::Elements(2 * 9 * (ci * co * h * w) as u64));
    g.bench_function("texpr", |bn| bn.iter(|| conv2d::run_into(&x, &wt, &mut y).unwrap()));
    let mut y2 = vec![0.0f32; co * h * w];
    g.bench_function("rust_loops", |bn| bn.iter(|| conv_ref(x.as_slice(), wt.as_slice(), &mut y2, ci, co, h, w)));
    g.finish();
}

fn depthwise_ref(x: &[f32], wt: &[f32], y: &mut [f32], ch: usize, h: usize, w: usize) {
    for c in 0..ch {
        for i in 0..h {
            for j in 0..w {
                let mut s = 0.0;
                for r in 0..3 {
                    for q in 0..3 {
                        let (ii, jj) = (i + r, j + q);
                        if ii >= 1 && ii <= h && jj >= 1 && jj <= w {
                            s += x[(c * h + ii - 1) * w + jj - 1] * wt[c * 9 + r * 3 + q];
                        }
                    }
                }
                y[(c * h + i) * w + j] = s;
            }
        }
    }
    black_box(y);
}

#[allow(clippy::too_many_arguments)]
fn conv_ref(x: &[f32], wt: &[f32], y: &mut [f32], ci: usize, co: usize, h: usize, w: usize) {
    y.iter_mut().for_each(|v| *v = 0.0);
    for f in 0..co {
        for c in 0..ci {
            for r in 0..3 {
                for q in 0..3 {
                    let k = wt[((f * ci + c) * 3 + r) * 3 + q];
                    for i in 0..h {
                        let ii = i + r;
                        if ii < 1 || ii > h {
                            continue;
                        }
                        for j in 0..w {
                            let jj = j + q;
                            if jj >= 1 && jj <= w {
                                y[(f * h + i) * w + j] += k * x[(c * h + ii - 1) * w + jj - 1];
                            }
                        }
                    }
                }
            }
        }
    }
    black_box(y);
}

fn latency(c: &mut Criterion) {
    let mut g = c.benchmark_group("jit_latency");
    g.sample_size(30);
    for name in ["axpb_relu", "matmul_best"] {
        g.bench_with_input(BenchmarkId::new("definition_to_callable", name), &name, |bn, name| {
            bn.iter(|| {
                let k = if *name == "axpb_relu" {
                    let mut f = FuncBuilder::new("axpb_relu");
                    let x = f.input("x", DType::F32, ["N"]);
                    let a = f.scalar("a", DType::F32);
                    let b = f.scalar("b", DType::F32);
                    f.output(DType::F32, ["N"]);
                    let y = f.compute("y", ["i"], |[i]| te::max(a * x.at([i]) + b, 0.0));
                    f.ret([y]);
                    Kernel::from_func(f.build().unwrap())
                } else {
                    // A fresh kernel object: nothing cached.
                    Kernel::new(matmul_best::kernel().program().unwrap().clone())
                };
                k.compile(Target::Cpu).unwrap();
                black_box(k)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, matmul, fused_relu, softmax_bench, convs, latency);
criterion_main!(benches);
