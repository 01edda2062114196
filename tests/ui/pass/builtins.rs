//! Every built-in function of SPEC §2, one output each so a wrong one is
//! named: the transcendental ones (`exp exp2 ln log2 rsqrt sin cos tanh
//! sigmoid erf pow`) on f32 and f64 against Rust std computed in f64
//! (f32: 1e-6 relative, SPEC's bound; f64: 1e-12 relative), the exact ones
//! (`sqrt abs floor ceil round trunc min max clamp select`, and `fma`
//! within one f32 rounding) bit-for-bit against Rust std, including a
//! vectorized schedule with a tail, and the integer ones (`abs min max
//! clamp fma select`, wrapping) on i32, i64 and u8 (unsigned comparisons).
//! Checked on the default target (CPU JIT) and the reference interpreter.
use texpr::prelude::*;

tensor_expr! {
    fn transcendental32(x: f32[N], p: f32[N]) -> (f32[N], f32[N], f32[N], f32[N], f32[N], f32[N], f32[N], f32[N], f32[N], f32[N], f32[N]) {
        let e = |i| exp(x[i]);
        let e2 = |i| exp2(x[i]);
        let l = |i| ln(p[i]);
        let l2 = |i| log2(p[i]);
        let rs = |i| rsqrt(p[i]);
        let s = |i| sin(x[i]);
        let c = |i| cos(x[i]);
        let th = |i| tanh(x[i]);
        let sg = |i| sigmoid(x[i]);
        let er = |i| erf(x[i]);
        let pw = |i| pow(p[i], x[i]);
        (e, e2, l, l2, rs, s, c, th, sg, er, pw)
    }

    fn transcendental64(x: f64[N], p: f64[N]) -> (f64[N], f64[N], f64[N], f64[N], f64[N], f64[N], f64[N], f64[N], f64[N], f64[N], f64[N]) {
        let e = |i| exp(x[i]);
        let e2 = |i| exp2(x[i]);
        let l = |i| ln(p[i]);
        let l2 = |i| log2(p[i]);
        let rs = |i| rsqrt(p[i]);
        let s = |i| sin(x[i]);
        let c = |i| cos(x[i]);
        let th = |i| tanh(x[i]);
        let sg = |i| sigmoid(x[i]);
        let er = |i| erf(x[i]);
        let pw = |i| pow(p[i], x[i]);
        (e, e2, l, l2, rs, s, c, th, sg, er, pw)
    }

    fn exact32(x: f32[N], y: f32[N]) -> (f32[N], f32[N], f32[N], f32[N], f32[N], f32[N], f32[N], f32[N], f32[N], f32[N], f32[N]) {
        let sq = |i| sqrt(abs(x[i]));
        let ab = |i| abs(x[i]);
        let fl = |i| floor(x[i]);
        let ce = |i| ceil(x[i]);
        let ro = |i| round(x[i]);
        let tr = |i| trunc(x[i]);
        let mn = |i| min(x[i], y[i]);
        let mx = |i| max(x[i], y[i]);
        let cl = |i| clamp(x[i], -1.5, 2.5);
        let se = |i| select(x[i] < y[i], x[i] * 2.0, y[i] - 1.0);
        let fm = |i| fma(x[i], y[i], 0.25);
        (sq, ab, fl, ce, ro, tr, mn, mx, cl, se, fm)
    }
    schedule for cpu {
        let (so, si) = sq.split(i, 4);
        sq.vectorize(si);
        let (fo, fi) = fl.split(i, 8);
        fl.vectorize(fi);
        let (co, ci) = ce.split(i, 4);
        ce.vectorize(ci);
        let (to, ti) = tr.split(i, 4);
        tr.vectorize(ti);
        let (mo, mi) = mx.split(i, 4);
        mx.vectorize(mi);
        let (go, gi) = fm.split(i, 4);
        fm.vectorize(gi);
    }

    fn exact64(x: f64[N], y: f64[N]) -> (f64[N], f64[N], f64[N], f64[N], f64[N], f64[N], f64[N], f64[N], f64[N], f64[N], f64[N]) {
        let sq = |i| sqrt(abs(x[i]));
        let ab = |i| abs(x[i]);
        let fl = |i| floor(x[i]);
        let ce = |i| ceil(x[i]);
        let ro = |i| round(x[i]);
        let tr = |i| trunc(x[i]);
        let mn = |i| min(x[i], y[i]);
        let mx = |i| max(x[i], y[i]);
        let cl = |i| clamp(x[i], -1.5, 2.5);
        let se = |i| select(x[i] < y[i], x[i] * 2.0, y[i] - 1.0);
        let fm = |i| fma(x[i], y[i], 0.25);
        (sq, ab, fl, ce, ro, tr, mn, mx, cl, se, fm)
    }

    fn int32(x: i32[N], y: i32[N]) -> (i32[N], i32[N], i32[N], i32[N], i32[N], i32[N]) {
        let ab = |i| abs(x[i]);
        let mn = |i| min(x[i], y[i]);
        let mx = |i| max(x[i], y[i]);
        let cl = |i| clamp(x[i], -5, 5);
        let fm = |i| fma(x[i], y[i], 7);
        let se = |i| select(x[i] > y[i], x[i] - y[i], y[i] - x[i]);
        (ab, mn, mx, cl, fm, se)
    }

    /// i64 built-ins mixing tensor values with index variables and dims.
    fn int64(x: i64[N]) -> (i64[N], i64[N], i64[N]) {
        let ab = |i| abs(x[i] - i);
        let cl = |i| clamp(x[i], 0 - N, N);
        let fm = |i| fma(x[i], i, N);
        (ab, cl, fm)
    }

    fn uint8(x: u8[N], y: u8[N]) -> (u8[N], u8[N]) {
        let mn = |i| min(x[i], y[i]);
        let mx = |i| max(x[i], y[i]);
        (mn, mx)
    }

    fn uint8_lanewise(x: u8[N], y: u8[N]) -> (u8[N], u8[N], u8[N]) {
        let cl = |i| clamp(x[i], 10, 200);
        let se = |i| select(x[i] > y[i], x[i], y[i] + 1);
        let fm = |i| fma(x[i], y[i], 3);
        (cl, se, fm)
    }
}

const TARGETS: [Target; 2] = [Target::Cpu, Target::Interp];

/// erf from its everywhere-positive series
/// `erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))`.
fn erf_ref(x: f64) -> f64 {
    let (mut term, mut sum) = (x, x);
    for n in 1..4000 {
        term *= 2.0 * x * x / (2 * n + 1) as f64;
        sum += term;
        if term.abs() <= 1e-18 * sum.abs() {
            break;
        }
    }
    2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
}

fn check(name: &str, t: Target, got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "{name} on {t:?}");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = g == w || (g - w).abs() <= rel * w.abs();
        assert!(ok, "{name} on {t:?} at {k}: got {g:e}, want {w:e} (relative tolerance {rel:e})");
    }
}

fn f64s<T: texpr::Element + Into<f64>>(t: &Tensor<T>) -> Vec<f64> {
    t.as_slice().iter().map(|&v| v.into()).collect()
}

fn main() -> Result<(), texpr::Error> {
    let xv: Vec<f64> = vec![-9.5, -3.25, -2.5, -1.0, -0.5, -1e-3, 0.0, 0.5, 1.5, 2.5, 3.75, 8.0, 10.0];
    let pv: Vec<f64> = vec![0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.5, 7.0, 8.0, 0.75, 1.25, 5.0, 6.5];
    let yv: Vec<f64> = vec![2.0, -3.0, -2.75, 0.5, -0.75, 1e-3, -4.0, 0.5, 3.5, 2.25, -1.0, 8.0, 0.125];
    let n = xv.len();

    // Reference values, computed in f64 from the (f32-representable) inputs.
    let refs: [(&str, fn(f64, f64) -> f64); 11] = [
        ("exp", |x, _| x.exp()),
        ("exp2", |x, _| x.exp2()),
        ("ln", |_, p| p.ln()),
        ("log2", |_, p| p.log2()),
        ("rsqrt", |_, p| 1.0 / p.sqrt()),
        ("sin", |x, _| x.sin()),
        ("cos", |x, _| x.cos()),
        ("tanh", |x, _| x.tanh()),
        ("sigmoid", |x, _| 1.0 / (1.0 + (-x).exp())),
        ("erf", |x, _| erf_ref(x)),
        ("pow", |x, p| p.powf(x)),
    ];

    // --- transcendental, f32 ------------------------------------------------
    let x32 = Tensor::from_vec([n], xv.iter().map(|&v| v as f32).collect())?;
    let p32 = Tensor::from_vec([n], pv.iter().map(|&v| v as f32).collect())?;
    for t in TARGETS {
        let o = transcendental32::on(t)?.run(&x32, &p32)?;
        let outs = [&o.0, &o.1, &o.2, &o.3, &o.4, &o.5, &o.6, &o.7, &o.8, &o.9, &o.10];
        for ((name, f), got) in refs.iter().zip(outs) {
            let want: Vec<f64> = x32.as_slice().iter().zip(p32.as_slice()).map(|(&x, &p)| f(x as f64, p as f64)).collect();
            check(name, t, &f64s(got), &want, 1e-6);
        }
    }

    // --- transcendental, f64 ------------------------------------------------
    let x64 = Tensor::from_vec([n], xv.clone())?;
    let p64 = Tensor::from_vec([n], pv.clone())?;
    for t in TARGETS {
        let o = transcendental64::on(t)?.run(&x64, &p64)?;
        let outs = [&o.0, &o.1, &o.2, &o.3, &o.4, &o.5, &o.6, &o.7, &o.8, &o.9, &o.10];
        for ((name, f), got) in refs.iter().zip(outs) {
            let want: Vec<f64> = xv.iter().zip(&pv).map(|(&x, &p)| f(x, p)).collect();
            check(name, t, got.as_slice(), &want, 1e-12);
        }
    }

    // --- exact, f32 (vectorized stages with a tail of 13 = 3 * 4 + 1) -------
    let y32 = Tensor::from_vec([n], yv.iter().map(|&v| v as f32).collect())?;
    for t in TARGETS {
        let o = exact32::on(t)?.run(&x32, &y32)?;
        let xy = || x32.as_slice().iter().copied().zip(y32.as_slice().iter().copied());
        let exact: [(&str, &Tensor<f32>, Vec<f32>); 10] = [
            ("sqrt", &o.0, xy().map(|(x, _)| x.abs().sqrt()).collect()),
            ("abs", &o.1, xy().map(|(x, _)| x.abs()).collect()),
            ("floor", &o.2, xy().map(|(x, _)| x.floor()).collect()),
            ("ceil", &o.3, xy().map(|(x, _)| x.ceil()).collect()),
            ("round", &o.4, xy().map(|(x, _)| x.round()).collect()),
            ("trunc", &o.5, xy().map(|(x, _)| x.trunc()).collect()),
            ("min", &o.6, xy().map(|(x, y)| x.min(y)).collect()),
            ("max", &o.7, xy().map(|(x, y)| x.max(y)).collect()),
            ("clamp", &o.8, xy().map(|(x, _)| x.clamp(-1.5, 2.5)).collect()),
            ("select", &o.9, xy().map(|(x, y)| if x < y { x * 2.0 } else { y - 1.0 }).collect()),
        ];
        for (name, got, want) in exact {
            assert_eq!(got.as_slice(), &want[..], "{name} on {t:?}");
        }
        // fma: within one rounding of the exact result.
        for (k, (x, y)) in xy().enumerate() {
            let exact = x as f64 * y as f64 + 0.25;
            let g = o.10.as_slice()[k] as f64;
            assert!((g - exact).abs() <= 1e-7 * exact.abs(), "fma on {t:?} at {k}: {g} vs {exact}");
        }
        // round is half away from zero, like Rust.
        assert_eq!((o.4.as_slice()[2], o.4.as_slice()[4], o.4.as_slice()[9]), (-3.0, -1.0, 3.0), "{t:?}");
    }

    // --- exact, f64 ---------------------------------------------------------
    let y64 = Tensor::from_vec([n], yv.clone())?;
    for t in TARGETS {
        let o = exact64::on(t)?.run(&x64, &y64)?;
        let xy = || xv.iter().copied().zip(yv.iter().copied());
        let exact: [(&str, &Tensor<f64>, Vec<f64>); 11] = [
            ("sqrt", &o.0, xy().map(|(x, _)| x.abs().sqrt()).collect()),
            ("abs", &o.1, xy().map(|(x, _)| x.abs()).collect()),
            ("floor", &o.2, xy().map(|(x, _)| x.floor()).collect()),
            ("ceil", &o.3, xy().map(|(x, _)| x.ceil()).collect()),
            ("round", &o.4, xy().map(|(x, _)| x.round()).collect()),
            ("trunc", &o.5, xy().map(|(x, _)| x.trunc()).collect()),
            ("min", &o.6, xy().map(|(x, y)| x.min(y)).collect()),
            ("max", &o.7, xy().map(|(x, y)| x.max(y)).collect()),
            ("clamp", &o.8, xy().map(|(x, _)| x.clamp(-1.5, 2.5)).collect()),
            ("select", &o.9, xy().map(|(x, y)| if x < y { x * 2.0 } else { y - 1.0 }).collect()),
            ("fma", &o.10, xy().map(|(x, y)| x.mul_add(y, 0.25)).collect()),
        ];
        for (name, got, want) in exact {
            assert_eq!(got.as_slice(), &want[..], "{name} on {t:?}");
        }
    }

    // --- integers -----------------------------------------------------------
    let xi = vec![i32::MIN, -7, -5, 0, 3, 6, i32::MAX, 100_000];
    let yi = vec![1, 2, -9, 0, 3, -6, 2, 100_000];
    let (xt, yt) = (Tensor::from_vec([8], xi.clone())?, Tensor::from_vec([8], yi.clone())?);
    let zip = || xi.iter().copied().zip(yi.iter().copied());
    let want_i32: [Vec<i32>; 6] = [
        zip().map(|(x, _)| x.wrapping_abs()).collect(),
        zip().map(|(x, y)| x.min(y)).collect(),
        zip().map(|(x, y)| x.max(y)).collect(),
        zip().map(|(x, _)| x.clamp(-5, 5)).collect(),
        zip().map(|(x, y)| x.wrapping_mul(y).wrapping_add(7)).collect(),
        zip().map(|(x, y)| if x > y { x.wrapping_sub(y) } else { y.wrapping_sub(x) }).collect(),
    ];
    for t in TARGETS {
        let o = int32::on(t)?.run(&xt, &yt)?;
        let got = [o.0.to_vec(), o.1.to_vec(), o.2.to_vec(), o.3.to_vec(), o.4.to_vec(), o.5.to_vec()];
        for (k, name) in ["abs", "min", "max", "clamp", "fma", "select"].iter().enumerate() {
            assert_eq!(got[k], want_i32[k], "i32 {name} on {t:?}");
        }
    }

    let x64i = Tensor::from_vec([5], vec![i64::MIN, -9, 2, 7, i64::MAX])?;
    for t in TARGETS {
        let (ab, cl, fm) = int64::on(t)?.run(&x64i)?;
        let xs = x64i.as_slice();
        let want_ab: Vec<i64> = (0..5).map(|i| xs[i].wrapping_sub(i as i64).wrapping_abs()).collect();
        let want_cl: Vec<i64> = xs.iter().map(|x| (*x).clamp(-5, 5)).collect();
        let want_fm: Vec<i64> = (0..5).map(|i| xs[i].wrapping_mul(i as i64).wrapping_add(5)).collect();
        assert_eq!((ab.to_vec(), cl.to_vec(), fm.to_vec()), (want_ab, want_cl, want_fm), "i64 on {t:?}");
    }

    let (xu, yu) = (vec![250u8, 5, 0, 128, 200, 9, 255], vec![5u8, 250, 0, 127, 201, 30, 255]);
    let (xut, yut) = (Tensor::from_vec([7], xu.clone())?, Tensor::from_vec([7], yu.clone())?);
    for t in TARGETS {
        let (mn, mx) = uint8::on(t)?.run(&xut, &yut)?;
        let zip = || xu.iter().copied().zip(yu.iter().copied());
        assert_eq!(mn.to_vec(), zip().map(|(x, y)| x.min(y)).collect::<Vec<_>>(), "u8 min on {t:?}");
        assert_eq!(mx.to_vec(), zip().map(|(x, y)| x.max(y)).collect::<Vec<_>>(), "u8 max on {t:?}");
    }
    for t in TARGETS {
        let (cl, se, fm) = uint8_lanewise::on(t)?.run(&xut, &yut)?;
        let zip = || xu.iter().copied().zip(yu.iter().copied());
        assert_eq!(cl.to_vec(), zip().map(|(x, _)| x.clamp(10, 200)).collect::<Vec<_>>(), "u8 clamp on {t:?}");
        assert_eq!(
            se.to_vec(),
            zip().map(|(x, y)| if x > y { x } else { y.wrapping_add(1) }).collect::<Vec<_>>(),
            "u8 select on {t:?}"
        );
        assert_eq!(fm.to_vec(), zip().map(|(x, y)| x.wrapping_mul(y).wrapping_add(3)).collect::<Vec<_>>(), "u8 fma on {t:?}");
    }
    Ok(())
}
