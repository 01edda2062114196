/// Hand-written softmax rows compiled by rustc (LLVM), the yardstick for
/// `softmax_rows`: the same `exp` as the JIT's (`jit/src/math.rs`: clamp,
/// `n = round(x log2 e)` by a magic-number FMA, Cody–Waite reduction, the
/// same degree-6 polynomial, `2^n` from the exponent bits) and what a person
/// would write around it — three passes per row (max; `exp` and sum in one
/// loop; scale), four independent accumulators per reduction. Two widths:
/// 128-bit SSE/FMA (`__m128`, the widest vector Cranelift's x86_64 backend
/// has) and 256-bit AVX2/FMA (`__m256`). Finite inputs only (a peer: no
/// NaN propagation in the max).
#[cfg(target_arch = "x86_64")]
mod softmax_peers {
    use std::arch::x86_64::*;

    const POLY: [f32; 7] = [1.631_992_6e-3, 8.318_529e-3, 4.161_99e-2, 1.666_720_8e-1, 5.000_022_6e-1, 9.999_999e-1, 1.0];
    const MAGIC: f32 = 12_583_039.0; // 1.5 * 2^23 + 127

    /// Whether this CPU runs both peers (AVX2 and FMA).
    pub fn available() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    /// One vector width: the handful of operations the row kernel needs.
    macro_rules! width {
        ($name:ident, $feat:literal, $v:ty, $lanes:literal, $set1:ident, $load:ident, $store:ident, $max:ident, $min:ident,
         $add:ident, $sub:ident, $mul:ident, $fma:ident, $cast_i:ident, $cast_f:ident, $slli:ident) => {
            /// Softmax of each `c`-element row of `x` into `y` (`e` a scratch row).
            #[target_feature(enable = $feat)]
            unsafe fn $name(x: &[f32], y: &mut [f32], c: usize) {
                const L: usize = $lanes;
                let exp = |v: $v| -> $v {
                    let xl = $max(v, $set1(-88.0));
                    let xc = $min(xl, $set1(88.03));
                    let m = $fma(xc, $set1(std::f32::consts::LOG2_E), $set1(MAGIC));
                    let fx = $sub(m, $set1(MAGIC));
                    let r = $fma(fx, $set1(-0.693_359_4), xl);
                    let r = $fma(fx, $set1(2.121_944_4e-4), r);
                    let mut p = $set1(POLY[0]);
                    for k in &POLY[1..] {
                        p = $fma(p, r, $set1(*k));
                    }
                    $mul(p, $cast_f($slli::<23>($cast_i(m))))
                };
                // SAFETY: a vector is its lanes.
                let lanes = |v: $v| -> [f32; L] { unsafe { std::mem::transmute::<$v, [f32; L]>(v) } };
                let body = c / (4 * L) * (4 * L);
                for (xr, yr) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
                    let (xp, yp) = (xr.as_ptr(), yr.as_mut_ptr());
                    // SAFETY (all loads and stores below): offsets stay below
                    // `body <= c`, the row length; the tails index slices.
                    let mut mx = [$set1(f32::NEG_INFINITY); 4];
                    for i in (0..body).step_by(4 * L) {
                        for (k, a) in mx.iter_mut().enumerate() {
                            *a = $max(*a, unsafe { $load(xp.add(i + k * L)) });
                        }
                    }
                    let mv = $max($max(mx[0], mx[1]), $max(mx[2], mx[3]));
                    let m = lanes(mv).iter().chain(&xr[body..]).fold(f32::NEG_INFINITY, |a, b| a.max(*b));
                    let mut sv = [$set1(0.0); 4];
                    for i in (0..body).step_by(4 * L) {
                        for (k, a) in sv.iter_mut().enumerate() {
                            let e = exp($sub(unsafe { $load(xp.add(i + k * L)) }, $set1(m)));
                            unsafe { $store(yp.add(i + k * L), e) };
                            *a = $add(*a, e);
                        }
                    }
                    let mut s: f32 = lanes($add($add(sv[0], sv[1]), $add(sv[2], sv[3]))).iter().sum();
                    for (o, v) in yr[body..].iter_mut().zip(&xr[body..]) {
                        *o = (v - m).exp();
                        s += *o;
                    }
                    let r = 1.0 / s;
                    for i in (0..body).step_by(L) {
                        unsafe { $store(yp.add(i), $mul($load(yp.add(i)), $set1(r))) };
                    }
                    yr[body..].iter_mut().for_each(|o| *o *= r);
                }
            }
        };
    }

    width!(rows128, "avx,fma", __m128, 4, _mm_set1_ps, _mm_loadu_ps, _mm_storeu_ps, _mm_max_ps, _mm_min_ps, _mm_add_ps, _mm_sub_ps,
        _mm_mul_ps, _mm_fmadd_ps, _mm_castps_si128, _mm_castsi128_ps, _mm_slli_epi32);
    width!(rows256, "avx2,fma", __m256, 8, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_max_ps, _mm256_min_ps, _mm256_add_ps,
        _mm256_sub_ps, _mm256_mul_ps, _mm256_fmadd_ps, _mm256_castps_si256, _mm256_castsi256_ps, _mm256_slli_epi32);

    /// Softmax of the rows of `x` (`c` columns) into `y`, the rows split
    /// between two threads; `wide` picks the 256-bit kernel. Requires
    /// [`available`].
    pub fn softmax_rows_2threads(x: &[f32], y: &mut [f32], c: usize, wide: bool) {
        assert!(available() && c > 0 && x.len() == y.len() && x.len().is_multiple_of(c));
        let half = x.len() / c / 2 * c;
        let (y_lo, y_hi) = y.split_at_mut(half);
        let (x_lo, x_hi) = x.split_at(half);
        std::thread::scope(|sc| {
            for (xs, ys) in [(x_lo, y_lo), (x_hi, y_hi)] {
                // SAFETY: `available()` checked the target features.
                sc.spawn(move || unsafe { if wide { rows256(xs, ys, c) } else { rows128(xs, ys, c) } });
            }
        });
    }
}
