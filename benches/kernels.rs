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

include!("common/schedules.rs");
include!("common/softmax_peers.rs");

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
    // The same schedules with M, K, N fixed (`NAME::specialize`).
    let dims = [("M", n), ("K", n), ("N", n)];
    let best = matmul_best::specialize(Target::Cpu, &dims).unwrap();
    g.bench_function("texpr_best_specialized", |bn| bn.iter(|| best.run_into(&a, &b, &mut out).unwrap()));
    let default = matmul_default::specialize(Target::Cpu, &dims).unwrap();
    g.bench_function("texpr_default_specialized", |bn| bn.iter(|| default.run_into(&a, &b, &mut out).unwrap()));
    let mut o2 = vec![0.0f32; n * n];
    g.bench_function("matrixmultiply_1thread", |bn| {
        bn.iter(|| unsafe {
            matrixmultiply::sgemm(
                n,
                n,
                n,
                1.0,
                a.as_slice().as_ptr(),
                n as isize,
                1,
                b.as_slice().as_ptr(),
                n as isize,
                1,
                0.0,
                o2.as_mut_ptr(),
                n as isize,
                1,
            )
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

/// `y = max(a * b + c, 0)` as a plain Rust loop (the peer of `fused`).
fn fused_rust(y: &mut [f32], a: &[f32], b: &[f32], c: &[f32]) {
    for (((o, x), y), z) in y.iter_mut().zip(a).zip(b).zip(c) {
        *o = (x * y + z).max(0.0);
    }
}

/// Times [`fused_rust`] on the inputs, as `rust_loop` of the group.
fn bench_fused_rust(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    a: &Tensor<f32>,
    b: &Tensor<f32>,
    c: &Tensor<f32>,
) {
    let mut y = vec![0.0f32; a.len()];
    g.bench_function("rust_loop", |bn| {
        bn.iter(|| {
            fused_rust(&mut y, a.as_slice(), b.as_slice(), c.as_slice());
            black_box(&y);
        })
    });
}

fn fused_relu(c: &mut Criterion) {
    let n = 16 << 20;
    let (a, b, cc) = (data(&[n], 1), data(&[n], 2), data(&[n], 3));
    let mut y = Tensor::<f32>::zeros([n]);
    let mut g = c.benchmark_group("fused_16M");
    g.sample_size(20).throughput(Throughput::Bytes(16 * n as u64));
    g.bench_function("texpr", |bn| bn.iter(|| fused::run_into(&a, &b, &cc, &mut y).unwrap()));
    bench_fused_rust(&mut g, &a, &b, &cc);
    let mut y2 = vec![0.0f32; n];
    // The same loop on two threads: the machine's streaming ceiling.
    g.bench_function("rust_loop_2threads", |bn| {
        bn.iter(|| {
            let half = n / 2;
            let (y_lo, y_hi) = y2.split_at_mut(half);
            let (a, b, cc) = (a.as_slice(), b.as_slice(), cc.as_slice());
            std::thread::scope(|sc| {
                for (y, off) in [(y_lo, 0), (y_hi, half)] {
                    sc.spawn(move || fused_rust(y, &a[off..], &b[off..], &cc[off..]));
                }
            });
            black_box(&y2);
        })
    });
    g.finish();
}

/// The cost of one call on a small input (1024 elements): argument and
/// shape checks, entering JIT code, and a parallel loop too small to hand
/// to the thread pool.
fn small_call(c: &mut Criterion) {
    let n = 1024;
    let (a, b, cc) = (data(&[n], 1), data(&[n], 2), data(&[n], 3));
    let mut y = Tensor::<f32>::zeros([n]);
    let mut g = c.benchmark_group("call_1k");
    g.sample_size(50);
    g.bench_function("texpr", |bn| bn.iter(|| fused::run_into(&a, &b, &cc, &mut y).unwrap()));
    bench_fused_rust(&mut g, &a, &b, &cc);
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
    let rows = softmax_rows::specialize(Target::Cpu, &[("N", n), ("C", cc)]).unwrap();
    g.bench_function("texpr_rows_specialized", |bn| bn.iter(|| rows.run_into(&x, &mut y).unwrap()));
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
    // Hand-written SIMD peers (same algorithm and `exp`), checked against
    // texpr's result first: 128-bit as Cranelift, and 256-bit.
    #[cfg(target_arch = "x86_64")]
    if softmax_peers::available() {
        softmax_rows::run_into(&x, &mut y).unwrap();
        for (name, wide) in [("rust_simd128_2threads", false), ("rust_simd256_2threads", true)] {
            softmax_peers::softmax_rows_2threads(x.as_slice(), &mut y2, cc, wide);
            let worst = y
                .as_slice()
                .iter()
                .zip(&y2)
                .map(|(a, b)| (a - b).abs() / a.abs().max(f32::MIN_POSITIVE))
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "{name} differs from texpr by {worst} (relative)");
            g.bench_function(name, |bn| {
                bn.iter(|| softmax_peers::softmax_rows_2threads(x.as_slice(), black_box(&mut y2), cc, wide))
            });
        }
    }
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
    // Fixed shape: the padding guards' border chunks decided at compile time.
    let dims = [("B", 1), ("C", ch), ("H", h), ("W", w)];
    let guarded = depthwise_guarded::specialize(Target::Cpu, &dims).unwrap();
    g.bench_function("texpr_guarded_specialized", |bn| bn.iter(|| guarded.run_into(&x, &wd, &mut y).unwrap()));
    let padded = depthwise::specialize(Target::Cpu, &dims).unwrap();
    g.bench_function("texpr_specialized", |bn| bn.iter(|| padded.run_into(&x, &wd, &mut y).unwrap()));
    g.bench_function("rust_loops", |bn| bn.iter(|| depthwise_ref(x.as_slice(), wd.as_slice(), &mut y2, ch, h, w)));
    g.finish();

    let (ci, co) = (64, 64);
    let x = data(&[1, ci, h, w], 7);
    let wt = data(&[co, ci, 3, 3], 8);
    let mut y = Tensor::<f32>::zeros([1, co, h, w]);
    let mut g = c.benchmark_group("conv2d_1x64x56x56_64");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(2 * 9 * (ci * co * h * w) as u64));
    g.bench_function("texpr", |bn| bn.iter(|| conv2d::run_into(&x, &wt, &mut y).unwrap()));
    let spec = conv2d::specialize(Target::Cpu, &[("B", 1), ("C", ci), ("H", h), ("W", w), ("F", co)]).unwrap();
    g.bench_function("texpr_specialized", |bn| bn.iter(|| spec.run_into(&x, &wt, &mut y).unwrap()));
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
    for name in ["axpb_relu", "matmul_best", "matmul_best_specialized"] {
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
                } else if *name == "matmul_best" {
                    // A fresh kernel object: nothing cached.
                    Kernel::new(matmul_best::kernel().program().unwrap().clone())
                } else {
                    matmul_best::kernel().specialize(&[("M", 1024), ("K", 1024), ("N", 1024)]).unwrap()
                };
                k.compile(Target::Cpu).unwrap();
                black_box(k)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, matmul, fused_relu, small_call, softmax_bench, convs, latency);
criterion_main!(benches);
