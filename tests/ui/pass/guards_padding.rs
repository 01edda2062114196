//! Lazy `if` guarding loads that would be out of bounds on the untaken
//! branch (SPEC §2): 1-D neighbours at both ends, a 5x5 "same" filter with
//! zero padding 2 inside a three-variable reduction, edge replication
//! through an `else if` chain into a larger output, guarded loads of an
//! intermediate stage, a data-dependent gather whose index is checked by
//! the guard, and `&&` whose right side loads only when the left side
//! holds. Shapes leave tails for every split and tile factor (and include
//! zero-sized and 1-wide ones); each case runs on the default target (CPU
//! JIT, with `schedule for cpu` splits, tiles and vectorized loops) and on
//! the reference interpreter, against plain Rust loops.
use texpr::prelude::*;

tensor_expr! {
    fn neighbours(x: f32[N]) -> f32[N] {
        let y = |i| (if i >= 1 { x[i - 1] } else { 0.0 }) + x[i] * 2.0
            + (if i + 1 < N { x[i + 1] } else { 0.0 });
        y
    }
    schedule for cpu {
        let (io, ii) = y.split(i, 4);
        y.vectorize(ii);
    }

    /// 5x5 filter, zero padding 2, stride 1, output the size of the input.
    fn same5(x: f32[C, H, W], k: f32[C, 5, 5]) -> f32[H, W] {
        let y = |h, w| sum(c in 0..C, r in 0..5, s in 0..5 =>
            if h + r >= 2 && h + r < H + 2 && w + s >= 2 && w + s < W + 2 {
                x[c, h + r - 2, w + s - 2] * k[c, r, s]
            } else { 0.0 });
        y
    }
    schedule for cpu {
        let (ho, wo, hi, wi) = y.tile(h, w, 4, 8);
        y.unroll(s);
        y.vectorize(wi);
        y.parallel(ho);
    }

    /// Replicates the edges: two extra elements on each side.
    fn edge2(x: i32[N]) -> i32[N + 4] {
        let y = |i| if i < 2 { x[0] } else if i >= N + 2 { x[N - 1] } else { x[i - 2] };
        y
    }

    /// Guarded loads of an intermediate stage.
    fn shifted(x: f64[N]) -> f64[N] {
        let t: f64[N] = |i| x[i] * x[i];
        let y = |i| if i + 2 < N { t[i + 2] - t[i] } else if i >= 3 { t[i - 3] } else { -t[i] };
        y
    }
    schedule for cpu {
        t.compute_root();
        let (io, ii) = y.split(i, 3);
    }

    /// A gather whose index comes from data: the guard makes every load safe.
    fn gather(x: f32[N], idx: i64[M]) -> f32[M] {
        let y = |m| if idx[m] >= 0 && idx[m] < N { x[idx[m]] } else { -1.0 };
        y
    }

    /// `&&` evaluates its right side only when the left side is true.
    fn rising(x: f32[N]) -> bool[N] {
        let y = |i| i >= 1 && x[i - 1] < x[i];
        y
    }
}

const TARGETS: [Target; 2] = [Target::Cpu, Target::Interp];

fn main() -> Result<(), texpr::Error> {
    // --- neighbours -----------------------------------------------------------
    for n in [0, 1, 2, 5, 13, 16] {
        let x = Tensor::from_fn([n], |i| (i[0] * 3 % 7) as f32 - 2.5);
        let xs = x.as_slice();
        let want: Vec<f32> = (0..n)
            .map(|i| {
                let l = if i >= 1 { xs[i - 1] } else { 0.0 };
                let r = if i + 1 < n { xs[i + 1] } else { 0.0 };
                l + xs[i] * 2.0 + r
            })
            .collect();
        for t in TARGETS {
            let y = neighbours::on(t)?.run(&x)?;
            assert_eq!(y.as_slice(), &want[..], "neighbours n={n} on {t:?}");
        }
        assert_eq!(neighbours(&x)?.as_slice(), &want[..]);
    }

    // --- same5 ------------------------------------------------------------
    for (c, h, w) in [(2, 7, 9), (1, 1, 1), (1, 4, 8), (3, 2, 13), (1, 0, 5), (2, 5, 3)] {
        let x = Tensor::from_fn([c, h, w], |i| ((i[0] * 5 + i[1] * 3 + i[2]) % 7) as f32 - 3.0);
        let k = Tensor::from_fn([c, 5, 5], |i| ((i[0] + i[1] * 2 + i[2] * 3) % 5) as f32 * 0.5 - 1.0);
        let (xs, ks) = (x.as_slice(), k.as_slice());
        let mut want = vec![0.0f32; h * w];
        for y in 0..h as i64 {
            for z in 0..w as i64 {
                let mut acc = 0.0f32;
                for ci in 0..c {
                    for r in 0..5i64 {
                        for s in 0..5i64 {
                            let (yy, zz) = (y + r - 2, z + s - 2);
                            if yy >= 0 && yy < h as i64 && zz >= 0 && zz < w as i64 {
                                acc += xs[(ci * h + yy as usize) * w + zz as usize] * ks[(ci * 5 + r as usize) * 5 + s as usize];
                            }
                        }
                    }
                }
                want[y as usize * w + z as usize] = acc;
            }
        }
        for t in TARGETS {
            let got = same5::on(t)?.run(&x, &k)?;
            assert_eq!(got.shape(), &[h, w]);
            // Small integers times halves: every partial sum is exact.
            assert_eq!(got.as_slice(), &want[..], "same5 {c}x{h}x{w} on {t:?}");
        }
    }

    // --- edge2 ------------------------------------------------------------
    for n in [1, 2, 6] {
        let x = Tensor::from_fn([n], |i| i[0] as i32 * 10 - 5);
        let xs = x.as_slice();
        let want: Vec<i32> = (0..n + 4).map(|i| xs[i.saturating_sub(2).min(n - 1)]).collect();
        for t in TARGETS {
            let y = edge2::on(t)?.run(&x)?;
            assert_eq!(y.shape(), &[n + 4]);
            assert_eq!(y.as_slice(), &want[..], "edge2 n={n} on {t:?}");
        }
    }
    // With N = 0 the taken branch itself would read `x[0]`: an error, not a
    // read out of bounds.
    for t in TARGETS {
        let e = edge2::on(t)?.run(&Tensor::zeros([0])).expect_err("x[0] of an empty x");
        assert!(e.to_string().contains("edge2"), "{e}");
    }

    // --- shifted ----------------------------------------------------------
    for n in [0, 1, 3, 4, 10] {
        let x = Tensor::from_fn([n], |i| i[0] as f64 * 0.5 - 1.0);
        let tt: Vec<f64> = x.as_slice().iter().map(|v| v * v).collect();
        let want: Vec<f64> = (0..n)
            .map(|i| if i + 2 < n { tt[i + 2] - tt[i] } else if i >= 3 { tt[i - 3] } else { -tt[i] })
            .collect();
        for t in TARGETS {
            assert_eq!(shifted::on(t)?.run(&x)?.as_slice(), &want[..], "shifted n={n} on {t:?}");
        }
    }

    // --- gather -----------------------------------------------------------
    let x = Tensor::from_vec([4], vec![10.0f32, 20.0, 30.0, 40.0])?;
    let idx = Tensor::from_vec([9], vec![3i64, 0, -1, 4, 2, i64::MIN, i64::MAX, 1, 100])?;
    for t in TARGETS {
        let y = gather::on(t)?.run(&x, &idx)?;
        assert_eq!(y.as_slice(), &[40.0, 10.0, -1.0, -1.0, 30.0, -1.0, -1.0, 20.0, -1.0], "gather on {t:?}");
        // Nothing to gather from: every index is out of range.
        let y = gather::on(t)?.run(&Tensor::zeros([0]), &idx)?;
        assert_eq!(y.as_slice(), &[-1.0; 9], "gather from empty on {t:?}");
    }

    // --- rising -----------------------------------------------------------
    for n in [0, 1, 6] {
        let x = Tensor::from_fn([n], |i| [3.0f32, 1.0, 2.0, 2.0, 5.0, 4.0][i[0]]);
        let xs = x.as_slice();
        let want: Vec<bool> = (0..n).map(|i| i >= 1 && xs[i - 1] < xs[i]).collect();
        for t in TARGETS {
            assert_eq!(rising::on(t)?.run(&x)?.as_slice(), &want[..], "rising n={n} on {t:?}");
        }
    }
    Ok(())
}
