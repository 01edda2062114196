//! Multi-stage pipelines with several outputs in one `tensor_expr!`:
//! several functions in one invocation; outputs of different element types
//! and ranks (rank 0 included), some of them read by later stages; scalar
//! inputs of several types (f32, f64, i64, u8, bool); literal dims in
//! inputs and outputs (`f32[N, 4]`, `-> f32[4]`); and `schedule for cpu`
//! blocks that use `compute_at` (a producer computed per tile of its
//! consumer, Halide-style, with tails), `compute_inline`, `compute_root`,
//! `cache_read(.., local)` and `cache_write(local)` together. Every result
//! is checked on the default target (CPU JIT) and on the reference
//! interpreter against plain Rust loops.
use texpr::prelude::*;

tensor_expr! {
    /// A dense layer with a leaky ReLU, then each row's maximum and the
    /// first column that reaches it.
    pub fn layer(x: f32[N, 4], w: f32[4, M], bias: f32[M], inscale: f32, alpha: f32) -> (f32[N, M], f32[N], i64[N]) {
        let xs: f32[N, 4] = |n, c| x[n, c] * inscale;
        let h: f32[N, M] = |n, m| sum(c in 0..4 => xs[n, c] * w[c, m]);
        let hb: f32[N, M] = |n, m| h[n, m] + bias[m];
        let act = |n, m| if hb[n, m] > 0.0 { hb[n, m] } else { alpha * hb[n, m] };
        let rowmax = |n| max(m in 0..M => act[n, m]);
        let arg = |n| min(m in 0..M => if act[n, m] == rowmax[n] { m } else { M });
        (act, rowmax, arg)
    }
    schedule for cpu {
        xs.compute_inline();
        hb.compute_inline();
        h.compute_at(act, n);
        let wl = h.cache_read(w, local);
        wl.compute_at(h, n);
        let (mo, mi) = act.split(m, 4);
        act.vectorize(mi);
        let ac = arg.cache_write(local);
        ac.compute_at(arg, n);
    }

    /// A separable 3x3 box sum: the horizontal pass is computed per 4x4
    /// tile of the vertical pass.
    pub fn box3(x: f32[H, W]) -> f32[H - 2, W - 2] {
        let bx: f32[H, W - 2] = |h, w| x[h, w] + x[h, w + 1] + x[h, w + 2];
        let by = |h, w| bx[h, w] + bx[h + 1, w] + bx[h + 2, w];
        by
    }
    schedule for cpu {
        let (ho, wo, hi, wi) = by.tile(h, w, 4, 4);
        bx.compute_at(by, wo);
    }

    /// Column sums of a batch of 4-vectors, their total, and per-row values
    /// from scalars of several types.
    pub fn summary(x: f32[N, 4], scale: f64, k: i64, b: u8, on: bool) -> (f32[4], f64[], i64[N], u8[N]) {
        let col = |c| sum(n in 0..N => x[n, c]);
        let total = || sum(c in 0..4 => col[c] as f64) * scale;
        let flags = |n| if on { n * k } else { 0 - k };
        let bytes = |n| (n as u8) * b + 1;
        (col, total, flags, bytes)
    }
    schedule for cpu {
        let (no, ni) = flags.split(n, 3);
        flags.unroll(ni);
        bytes.parallel(n);
    }
}

const TARGETS: [Target; 2] = [Target::Cpu, Target::Interp];

fn main() -> Result<(), texpr::Error> {
    // --- layer ------------------------------------------------------------
    for (n, m) in [(5, 7), (1, 1), (3, 4), (0, 3), (6, 9)] {
        let x = Tensor::from_fn([n, 4], |i| ((i[0] * 3 + i[1] * 5) % 7) as f32 - 3.0);
        let w = Tensor::from_fn([4, m], |i| ((i[0] + 2 * i[1]) % 5) as f32 * 0.5 - 1.0);
        let bias = Tensor::from_fn([m], |i| (i[0] % 3) as f32 - 1.0);
        let (inscale, alpha) = (2.0f32, 0.125f32);
        let (xs, ws, bs) = (x.as_slice(), w.as_slice(), bias.as_slice());
        let mut want_act = vec![];
        let mut want_max = vec![];
        let mut want_arg = vec![];
        for r in 0..n {
            let row: Vec<f32> = (0..m)
                .map(|j| {
                    let h = (0..4).map(|c| xs[r * 4 + c] * inscale * ws[c * m + j]).sum::<f32>() + bs[j];
                    if h > 0.0 { h } else { alpha * h }
                })
                .collect();
            let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            want_arg.push(row.iter().position(|v| *v == mx).unwrap_or(m) as i64);
            want_max.push(mx);
            want_act.extend(row);
        }
        let direct = layer(&x, &w, &bias, inscale, alpha)?;
        for t in TARGETS {
            let (act, mx, arg) = layer::on(t)?.run(&x, &w, &bias, inscale, alpha)?;
            assert_eq!(act.shape(), &[n, m]);
            // Small integers times powers of two: exact in any order.
            assert_eq!(act.as_slice(), &want_act[..], "layer act {n}x{m} on {t:?}");
            assert_eq!(mx.as_slice(), &want_max[..], "layer max {n}x{m} on {t:?}");
            assert_eq!(arg.as_slice(), &want_arg[..], "layer arg {n}x{m} on {t:?}");
            assert_eq!((&act, &mx, &arg), (&direct.0, &direct.1, &direct.2));
        }
    }

    // --- box3 ---------------------------------------------------------------
    for (h, w) in [(2, 2), (3, 3), (6, 6), (7, 11), (10, 5), (2, 9)] {
        let x = Tensor::from_fn([h, w], |i| ((i[0] * 7 + i[1] * 11) % 13) as f32);
        let xs = x.as_slice();
        let mut want = vec![];
        for i in 0..h - 2 {
            for j in 0..w - 2 {
                want.push((0..3).flat_map(|r| (0..3).map(move |c| (r, c))).map(|(r, c)| xs[(i + r) * w + j + c]).sum::<f32>());
            }
        }
        for t in TARGETS {
            let y = box3::on(t)?.run(&x)?;
            assert_eq!(y.shape(), &[h - 2, w - 2]);
            assert_eq!(y.as_slice(), &want[..], "box3 {h}x{w} on {t:?}");
        }
    }

    // --- summary ------------------------------------------------------------
    for n in [0, 1, 5, 8] {
        let x = Tensor::from_fn([n, 4], |i| (i[0] * 4 + i[1]) as f32 * 0.5);
        let xs = x.as_slice();
        let want_col: Vec<f32> = (0..4).map(|c| (0..n).map(|r| xs[r * 4 + c]).sum()).collect();
        let want_total = want_col.iter().map(|v| *v as f64).sum::<f64>() * 1.5;
        for t in TARGETS {
            for (k, b, on) in [(3i64, 7u8, true), (-2, 200, false)] {
                let (col, total, flags, bytes) = summary::on(t)?.run(&x, 1.5, k, b, on)?;
                assert_eq!(col.shape(), &[4]);
                assert_eq!(col.as_slice(), &want_col[..], "summary col n={n} on {t:?}");
                assert_eq!((total.shape(), total.as_slice()), (&[][..], &[want_total][..]), "summary total on {t:?}");
                let want_flags: Vec<i64> = (0..n as i64).map(|r| if on { r * k } else { -k }).collect();
                assert_eq!(flags.as_slice(), &want_flags[..], "summary flags on {t:?}");
                let want_bytes: Vec<u8> = (0..n).map(|r| (r as u8).wrapping_mul(b).wrapping_add(1)).collect();
                assert_eq!(bytes.as_slice(), &want_bytes[..], "summary bytes on {t:?}");
            }
        }
    }

    // Every function lowers for every target class it has a schedule for.
    for k in [layer::kernel(), box3::kernel(), summary::kernel()] {
        k.lower(Target::Cpu)?;
        k.lower(Target::OpenCl)?;
    }
    Ok(())
}
