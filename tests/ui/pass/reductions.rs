//! Reductions beyond the basics: `sum prod max min` over two- and
//! three-variable product domains (non-zero lower bounds, dim arithmetic in
//! the bounds), integer reductions that wrap, the identities of every
//! reduction on empty domains (a zero-sized dim, and `lo..hi` with
//! `lo >= hi`) for floats, signed and unsigned integers, two reductions in
//! one expression, and reduction results (rank 0 and rank 1) read by later
//! stages, and a reduction inside an expression scheduled by the name of
//! the stage that computes it (`y_r0`). Checked on the default target (CPU JIT) and the reference
//! interpreter against plain Rust loops.
use texpr::prelude::*;

tensor_expr! {
    /// 3x3 window statistics over the valid positions.
    fn window_stats(x: f32[H, W]) -> (f32[H - 2, W - 2], f32[H - 2, W - 2], f32[H - 2, W - 2], f32[H - 2, W - 2]) {
        let s = |i, j| sum(r in 0..3, c in 0..3 => x[i + r, j + c]);
        let p = |i, j| prod(r in 0..3, c in 0..3 => x[i + r, j + c]);
        let hi = |i, j| max(r in 0..3, c in 0..3 => x[i + r, j + c]);
        let lo = |i, j| min(r in 0..3, c in 0..3 => x[i + r, j + c]);
        (s, p, hi, lo)
    }

    /// Three reduction variables, bounds that are literals, dims and dim
    /// arithmetic, and index variables inside the reduced expression.
    fn cube(x: i64[A, B, C]) -> (i64[], i64[], i64[], i64[]) {
        let s = || sum(a in 0..A, b in 1..B, c in 0..C - 1 => x[a, b, c]);
        let p = || prod(a in 0..A, b in 0..B, c in 0..C => x[a, b, c] % 3 + 1);
        let hi = || max(a in 0..A, b in 0..B, c in 0..C => x[a, b, c] * (a - b + c));
        let lo = || min(a in 0..A, b in 0..B, c in 0..C => x[a, b, c] - a * 100);
        (s, p, hi, lo)
    }

    /// Integer reductions over one axis; a zero-sized `K` gives the
    /// identities, and `u8` sums wrap.
    fn int_rows(x: i32[N, K], y: u8[N, K]) -> (i32[N], i32[N], i32[N], i32[N], u8[N], u8[N], u8[N]) {
        let s = |n| sum(k in 0..K => x[n, k]);
        let p = |n| prod(k in 0..K => x[n, k]);
        let hi = |n| max(k in 0..K => x[n, k]);
        let lo = |n| min(k in 0..K => x[n, k]);
        let us = |n| sum(k in 0..K => y[n, k]);
        let uhi = |n| max(k in 0..K => y[n, k]);
        let ulo = |n| min(k in 0..K => y[n, k]);
        (s, p, hi, lo, us, uhi, ulo)
    }

    fn u8_prod(y: u8[N, K]) -> u8[N] {
        let up = |n| prod(k in 0..K => y[n, k]);
        up
    }

    /// Empty by its bounds (`K..K` and `1..1`), whatever the shape.
    fn empty_bounds(x: f64[N, K]) -> (f64[N], f64[N], f64[N], f64[N]) {
        let s = |n| sum(k in K..K => x[n, k]);
        let p = |n| prod(k in 1..1 => x[n, k]);
        let hi = |n| max(k in K..K => x[n, k]);
        let lo = |n| min(k in 1..1 => x[n, k]);
        (s, p, hi, lo)
    }

    /// Layer-norm statistics: reductions read by later reductions and by
    /// the element-wise output; two reductions in one expression; a rank-0
    /// reduction read by a later stage.
    fn normalize(x: f64[N, C]) -> (f64[N, C], f64[N], f64[]) {
        let mean: f64[N] = |n| sum(c in 0..C => x[n, c]) / (C as f64);
        let var: f64[N] = |n| sum(c in 0..C => (x[n, c] - mean[n]) * (x[n, c] - mean[n])) / (C as f64);
        let y = |n, c| (x[n, c] - mean[n]) / sqrt(var[n] + 0.5);
        let range = |n| max(c in 0..C => x[n, c]) - min(c in 0..C => x[n, c]);
        let worst = || max(n in 0..N => var[n]);
        (y, range, worst)
    }

    fn share(x: f32[N]) -> f32[N] {
        let t: f32[] = || sum(i in 0..N => x[i]);
        let m: f32[] = || max(i in 0..N => abs(x[i]));
        let y = |i| x[i] / t[] + m[];
        y
    }

    /// A reduction inside an expression is computed by stage `y_r0`, which
    /// the schedule names like any other stage: one row's sum per row.
    fn centered(x: f32[N, C]) -> f32[N, C] {
        let y = |n, c| x[n, c] - sum(k in 0..C => x[n, k]) / (C as f32);
        y
    }
    schedule for cpu {
        y_r0.compute_at(y, n);
        let (co, ci) = y.split(c, 4);
        y.vectorize(ci);
    }
}

fn close32(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-5 * (1.0 + b.abs())
}

fn close64(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + b.abs())
}

const TARGETS: [Target; 2] = [Target::Cpu, Target::Interp];

fn main() -> Result<(), texpr::Error> {
    // --- window_stats, with an empty output (H = 2) and a 1-wide one ------
    for (h, w) in [(5, 7), (3, 3), (2, 6), (4, 3)] {
        let x = Tensor::from_fn([h, w], |i| ((i[0] * 7 + i[1] * 3) % 11) as f32 * 0.5 - 2.0);
        let xs = x.as_slice();
        let mut want = [vec![], vec![], vec![], vec![]];
        for i in 0..h - 2 {
            for j in 0..w - 2 {
                let win: Vec<f32> = (0..3).flat_map(|r| (0..3).map(move |c| (r, c))).map(|(r, c)| xs[(i + r) * w + j + c]).collect();
                want[0].push(win.iter().sum::<f32>());
                want[1].push(win.iter().product::<f32>());
                want[2].push(win.iter().copied().fold(f32::NEG_INFINITY, f32::max));
                want[3].push(win.iter().copied().fold(f32::INFINITY, f32::min));
            }
        }
        let direct = window_stats(&x)?;
        for t in TARGETS {
            let (s, p, hi, lo) = window_stats::on(t)?.run(&x)?;
            assert_eq!(s.shape(), &[h - 2, w - 2]);
            assert_eq!((&s, &p, &hi, &lo), (&direct.0, &direct.1, &direct.2, &direct.3), "{t:?} vs default");
            for (got, want) in [(&s, &want[0]), (&p, &want[1])] {
                for (g, e) in got.as_slice().iter().zip(want) {
                    assert!(close32(*g, *e), "{t:?} {h}x{w}: {g} vs {e}");
                }
            }
            assert_eq!(hi.as_slice(), &want[2][..], "{t:?} max");
            assert_eq!(lo.as_slice(), &want[3][..], "{t:?} min");
        }
    }

    // --- cube: three variables, including empty sub-ranges -----------------
    for (a, b, c) in [(2, 3, 4), (1, 1, 1), (3, 2, 0), (0, 2, 2), (2, 4, 2)] {
        let x = Tensor::from_fn([a, b, c], |i| (i[0] as i64 * 31 - i[1] as i64 * 17 + i[2] as i64 * 5) % 23 - 11);
        let at = |i: usize, j: usize, k: usize| x.as_slice()[(i * b + j) * c + k];
        let (mut s, mut p, mut hi, mut lo) = (0i64, 1i64, i64::MIN, i64::MAX);
        for i in 0..a {
            for j in 0..b {
                for k in 0..c {
                    if j >= 1 && k + 1 < c {
                        s += at(i, j, k);
                    }
                    p = p.wrapping_mul(at(i, j, k).rem_euclid(3) + 1);
                    hi = hi.max(at(i, j, k) * (i as i64 - j as i64 + k as i64));
                    lo = lo.min(at(i, j, k) - i as i64 * 100);
                }
            }
        }
        for t in TARGETS {
            let got = cube::on(t)?.run(&x)?;
            assert_eq!(got.0.shape(), &[] as &[usize]);
            assert_eq!(
                (got.0.as_slice(), got.1.as_slice(), got.2.as_slice(), got.3.as_slice()),
                (&[s][..], &[p][..], &[hi][..], &[lo][..]),
                "{t:?} cube {a}x{b}x{c}"
            );
        }
    }

    // --- integer identities and wrapping ------------------------------------
    let x = Tensor::from_vec([2, 3], vec![i32::MAX, 1, 5, -4, 7, -2])?;
    let y = Tensor::from_vec([2, 3], vec![200u8, 100, 3, 16, 16, 2])?;
    for t in TARGETS {
        let (s, p, hi, lo, us, uhi, ulo) = int_rows::on(t)?.run(&x, &y)?;
        assert_eq!(s.as_slice(), &[i32::MAX.wrapping_add(6), 1], "{t:?}");
        assert_eq!(p.as_slice(), &[i32::MAX.wrapping_mul(5), 56], "{t:?}");
        assert_eq!(hi.as_slice(), &[i32::MAX, 7], "{t:?}");
        assert_eq!(lo.as_slice(), &[1, -4], "{t:?}");
        assert_eq!(us.as_slice(), &[47, 34], "{t:?}"); // 303 and 34 mod 256
        assert_eq!(uhi.as_slice(), &[200, 16], "{t:?}");
        assert_eq!(ulo.as_slice(), &[3, 2], "{t:?}");

        let (s, p, hi, lo, us, uhi, ulo) = int_rows::on(t)?.run(&Tensor::zeros([3, 0]), &Tensor::zeros([3, 0]))?;
        assert_eq!((s.as_slice(), p.as_slice()), (&[0; 3][..], &[1; 3][..]), "{t:?}");
        assert_eq!((hi.as_slice(), lo.as_slice()), (&[i32::MIN; 3][..], &[i32::MAX; 3][..]), "{t:?}");
        assert_eq!(us.as_slice(), &[0u8; 3][..], "{t:?}");
        assert_eq!((uhi.as_slice(), ulo.as_slice()), (&[u8::MIN; 3][..], &[u8::MAX; 3][..]), "{t:?}");

        // No rows at all: empty outputs, no error.
        let (s, ..) = int_rows::on(t)?.run(&Tensor::zeros([0, 4]), &Tensor::zeros([0, 4]))?;
        assert_eq!((s.shape(), s.as_slice().len()), (&[0][..], 0));
    }

    for t in TARGETS {
        let up = u8_prod::on(t)?.run(&y)?;
        assert_eq!(up.as_slice(), &[(200u8).wrapping_mul(100).wrapping_mul(3), 0], "{t:?}"); // 16 * 16 wraps to 0
        assert_eq!(u8_prod::on(t)?.run(&Tensor::zeros([3, 0]))?.as_slice(), &[1u8; 3][..], "{t:?}");
    }

    // --- empty by bounds ----------------------------------------------------
    let x = Tensor::from_fn([2, 3], |i| (i[0] + i[1]) as f64);
    for t in TARGETS {
        let (s, p, hi, lo) = empty_bounds::on(t)?.run(&x)?;
        assert_eq!((s.as_slice(), p.as_slice()), (&[0.0; 2][..], &[1.0; 2][..]), "{t:?}");
        assert_eq!((hi.as_slice(), lo.as_slice()), (&[f64::NEG_INFINITY; 2][..], &[f64::INFINITY; 2][..]), "{t:?}");
    }

    // --- normalize: reductions feeding reductions ---------------------------
    for (n, c) in [(3, 5), (1, 1), (4, 8), (0, 3)] {
        let x = Tensor::from_fn([n, c], |i| ((i[0] * 13 + i[1] * 7) % 9) as f64 - 3.5 + i[0] as f64 * 0.25);
        let xs = x.as_slice();
        let mut want_y = vec![];
        let mut want_range = vec![];
        let mut worst = f64::NEG_INFINITY;
        for r in 0..n {
            let row = &xs[r * c..(r + 1) * c];
            let mean = row.iter().sum::<f64>() / c as f64;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / c as f64;
            want_y.extend(row.iter().map(|v| (v - mean) / (var + 0.5).sqrt()));
            let mx = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mn = row.iter().copied().fold(f64::INFINITY, f64::min);
            want_range.push(mx - mn);
            worst = worst.max(var);
        }
        for t in TARGETS {
            let (y, range, w) = normalize::on(t)?.run(&x)?;
            assert_eq!(y.shape(), &[n, c]);
            for (g, e) in y.as_slice().iter().zip(&want_y) {
                assert!(close64(*g, *e), "{t:?} {n}x{c}: {g} vs {e}");
            }
            assert_eq!(range.as_slice(), &want_range[..], "{t:?}");
            assert!(w.as_slice()[0] == worst || close64(w.as_slice()[0], worst), "{t:?}: {:?} vs {worst}", w.as_slice());
        }
    }

    // --- share: rank-0 stages read by a later stage ------------------------
    let x = Tensor::from_vec([5], vec![1.0f32, -6.0, 2.5, 4.0, 0.5])?;
    let total: f32 = x.as_slice().iter().sum();
    let m = x.as_slice().iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    for t in TARGETS {
        let y = share::on(t)?.run(&x)?;
        for (g, v) in y.as_slice().iter().zip(x.as_slice()) {
            assert!(close32(*g, v / total + m), "{t:?}: {g} vs {}", v / total + m);
        }
    }

    // --- centered: the hoisted reduction scheduled by name -------------------
    for (n, c) in [(3, 5), (1, 9), (4, 0)] {
        let x = Tensor::from_fn([n, c], |i| (i[0] * 5 + i[1] * 3) as f32 * 0.25 - 1.0);
        let xs = x.as_slice();
        for t in TARGETS {
            let y = centered::on(t)?.run(&x)?;
            for r in 0..n {
                let mean = xs[r * c..(r + 1) * c].iter().sum::<f32>() / c as f32;
                for k in 0..c {
                    let (g, e) = (y.as_slice()[r * c + k], xs[r * c + k] - mean);
                    assert!(close32(g, e), "{t:?} centered {n}x{c}: {g} vs {e}");
                }
            }
        }
    }
    assert!(centered::kernel().lower(Target::Cpu)?.to_string().contains("y_r0"));
    Ok(())
}
