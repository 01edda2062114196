//! Integer and cast semantics of SPEC §2 on every sign of operand:
//! `/` and `%` round toward negative infinity (also with a negative
//! divisor, where this differs from Rust's `div_euclid`), division and
//! remainder by zero give 0, `MIN / -1` wraps (i8, i32, i64), `+ - *`,
//! unary `-` and `!` wrap on i8/i32/i64/u8, u32/u64 values above the
//! signed range compare, divide and convert as unsigned, and `as` behaves
//! like Rust's `as` (float to integer truncates and saturates, NaN gives 0,
//! integer to integer truncates or sign-extends, u64 to f32 rounds once,
//! bool to integer). Checked on the
//! default target (CPU JIT) and the reference interpreter against Rust.
use texpr::prelude::*;

tensor_expr! {
    fn divmod32(x: i32[N], y: i32[N]) -> (i32[N], i32[N]) {
        let q = |i| x[i] / y[i];
        let r = |i| x[i] % y[i];
        (q, r)
    }

    fn divmod64(x: i64[N], y: i64[N]) -> (i64[N], i64[N]) {
        let q = |i| x[i] / y[i];
        let r = |i| x[i] % y[i];
        (q, r)
    }

    fn divmod8(x: i8[N], y: i8[N]) -> (i8[N], i8[N]) {
        let q = |i| x[i] / y[i];
        let r = |i| x[i] % y[i];
        (q, r)
    }

    /// Division by scalars and literals, and by index arithmetic that
    /// reaches zero and goes negative.
    fn by_scalar(x: i32[N], d: i32) -> (i32[N], i32[N], i32[N], i64[N]) {
        let q = |i| x[i] / d;
        let r = |i| x[i] % d;
        let l = |i| x[i] / -3 + x[i] % -3;
        let ix = |i| (i - 3) / 2 * 10 + (i - 3) % 2;
        (q, r, l, ix)
    }

    fn unsigned(x: u32[N], y: u32[N], a: u64[N], b: u64[N]) -> (u32[N], u32[N], bool[N], u64[N], u64[N], bool[N]) {
        let q = |i| x[i] / y[i];
        let r = |i| x[i] % y[i];
        let lt = |i| x[i] < y[i];
        let qa = |i| a[i] / b[i];
        let ra = |i| a[i] % b[i];
        let la = |i| a[i] >= b[i];
        (q, r, lt, qa, ra, la)
    }

    fn wrapping(x: i32[N], y: i32[N], b: i8[N], u: u8[N], v: u8[N], w: i64[N]) -> (i32[N], i32[N], i32[N], i32[N], i8[N], u8[N], u8[N], u8[N], i64[N]) {
        let add = |i| x[i] + y[i];
        let sub = |i| x[i] - y[i];
        let mul = |i| x[i] * y[i];
        let neg = |i| -x[i] + !y[i];
        let bb = |i| b[i] + b[i] - -b[i];
        let uadd = |i| u[i] + v[i];
        let usub = |i| u[i] - v[i];
        let unot = |i| !u[i] + v[i];
        let ww = |i| w[i] * w[i] + 1;
        (add, sub, mul, neg, bb, uadd, usub, unot, ww)
    }

    fn wrapping8_mul(b: i8[N], u: u8[N], v: u8[N]) -> (i8[N], u8[N]) {
        let bb = |i| b[i] * 3 - -b[i];
        let uv = |i| !u[i] * v[i];
        (bb, uv)
    }

    fn float_to_int(x: f32[N], d: f64[N]) -> (i32[N], u32[N], i64[N], u64[N], i16[N]) {
        let a = |i| x[i] as i32;
        let e = |i| x[i] as u32;
        let f = |i| d[i] as i64;
        let g = |i| d[i] as u64;
        let h = |i| d[i] as i16;
        (a, e, f, g, h)
    }

    fn float_to_int8(x: f32[N]) -> (u8[N], i8[N]) {
        let b = |i| x[i] as u8;
        let c = |i| x[i] as i8;
        (b, c)
    }

    fn int_to_other(x: i32[N], u: u64[N], b: bool[N]) -> (u16[N], i64[N], u32[N], f32[N], f64[N], i32[N], f32[N]) {
        let d = |i| x[i] as u16;
        let e = |i| x[i] as i64;
        let f = |i| u[i] as u32;
        let g = |i| u[i] as f32;
        let h = |i| u[i] as f64;
        let k = |i| b[i] as i32 * 2 + (x[i] as i16) as i32;
        let l = |i| (x[i] as i64 * 3) as f32;
        (d, e, f, g, h, k, l)
    }

    fn int_to_int8(x: i32[N]) -> (u8[N], i8[N], i32[N]) {
        let a = |i| x[i] as u8;
        let c = |i| x[i] as i8;
        let k = |i| (x[i] as u8) as i32 - (x[i] as i8) as i32;
        (a, c, k)
    }
}

const TARGETS: [Target; 2] = [Target::Cpu, Target::Interp];

macro_rules! floor_divmod {
    ($name:ident, $t:ty) => {
        /// Floor division and its remainder; by zero gives (0, 0); overflow wraps.
        fn $name(a: $t, b: $t) -> ($t, $t) {
            if b == 0 {
                return (0, 0);
            }
            let q = a.wrapping_div(b);
            let r = a.wrapping_rem(b);
            if r != 0 && ((r < 0) != (b < 0)) { (q.wrapping_sub(1), r.wrapping_add(b)) } else { (q, r) }
        }
    };
}
floor_divmod!(floor32, i32);
floor_divmod!(floor64, i64);
floor_divmod!(floor8, i8);

fn main() -> Result<(), texpr::Error> {
    // --- floor division on every sign, by zero, and MIN / -1 ----------------
    let xs = vec![7, -7, 7, -7, 6, -6, 0, 5, -5, i32::MIN, i32::MIN, i32::MAX, 1, -1, 13, -13];
    let ys = vec![2, 2, -2, -2, 3, -3, -4, 0, 0, -1, 1, -1, 7, 7, -5, -5];
    let (xt, yt) = (Tensor::from_vec([16], xs.clone())?, Tensor::from_vec([16], ys.clone())?);
    let want: (Vec<i32>, Vec<i32>) = xs.iter().zip(&ys).map(|(&a, &b)| floor32(a, b)).unzip();
    // The cases where floor division differs from truncation and from
    // Euclidean division are really in the table.
    assert_eq!((want.0[2], want.1[2]), (-4, -1));
    assert_eq!((7i32.div_euclid(-2), 7i32.rem_euclid(-2)), (-3, 1));
    assert_eq!((want.0[9], want.1[9]), (i32::MIN, 0));
    for t in TARGETS {
        let (q, r) = divmod32::on(t)?.run(&xt, &yt)?;
        assert_eq!((q.to_vec(), r.to_vec()), want, "i32 / and % on {t:?}");
    }

    let xs64: Vec<i64> = vec![i64::MIN, i64::MIN, -9, 9, -9, 9, 0, -1, i64::MAX, -1_000_000_000_007];
    let ys64: Vec<i64> = vec![-1, 0, 4, -4, -4, 4, 0, i64::MAX, i64::MIN, 1_000_000];
    let (xt, yt) = (Tensor::from_vec([10], xs64.clone())?, Tensor::from_vec([10], ys64.clone())?);
    let want: (Vec<i64>, Vec<i64>) = xs64.iter().zip(&ys64).map(|(&a, &b)| floor64(a, b)).unzip();
    for t in TARGETS {
        let (q, r) = divmod64::on(t)?.run(&xt, &yt)?;
        assert_eq!((q.to_vec(), r.to_vec()), want, "i64 / and % on {t:?}");
    }

    let xs8: Vec<i8> = vec![i8::MIN, i8::MIN, -128, 127, -7, 7, -1, 100];
    let ys8: Vec<i8> = vec![-1, 0, 3, -128, 2, -2, 127, -3];
    let (xt, yt) = (Tensor::from_vec([8], xs8.clone())?, Tensor::from_vec([8], ys8.clone())?);
    let want: (Vec<i8>, Vec<i8>) = xs8.iter().zip(&ys8).map(|(&a, &b)| floor8(a, b)).unzip();
    for t in TARGETS {
        let (q, r) = divmod8::on(t)?.run(&xt, &yt)?;
        assert_eq!((q.to_vec(), r.to_vec()), want, "i8 / and % on {t:?}");
    }

    // --- by scalars, literals and index arithmetic -------------------------
    let x = Tensor::from_vec([7], vec![-10, -3, -1, 0, 1, 3, 10])?;
    for d in [4, -4, 0, 1, -1] {
        for t in TARGETS {
            let (q, r, l, ix) = by_scalar::on(t)?.run(&x, d)?;
            let want_q: Vec<i32> = x.as_slice().iter().map(|&v| floor32(v, d).0).collect();
            let want_r: Vec<i32> = x.as_slice().iter().map(|&v| floor32(v, d).1).collect();
            let want_l: Vec<i32> = x.as_slice().iter().map(|&v| floor32(v, -3).0 + floor32(v, -3).1).collect();
            let want_ix: Vec<i64> = (0..7).map(|i| floor64(i - 3, 2).0 * 10 + floor64(i - 3, 2).1).collect();
            assert_eq!(q.to_vec(), want_q, "x / {d} on {t:?}");
            assert_eq!(r.to_vec(), want_r, "x % {d} on {t:?}");
            assert_eq!(l.to_vec(), want_l, "literal -3 on {t:?}");
            assert_eq!(ix.to_vec(), want_ix, "index arithmetic on {t:?}");
        }
    }

    // --- unsigned above the signed range -----------------------------------
    let xu = vec![4_000_000_000u32, 7, u32::MAX, 3_000_000_000, 5, 0];
    let yu = vec![3u32, 4_000_000_000, 2, 0, 3_000_000_000, 0];
    let au = vec![u64::MAX, 10, 1 << 63, 12_345_678_901_234_567_890, 0, 1];
    let bu = vec![3u64, 1 << 63, 7, 0, 0, u64::MAX];
    let ts = (
        Tensor::from_vec([6], xu.clone())?,
        Tensor::from_vec([6], yu.clone())?,
        Tensor::from_vec([6], au.clone())?,
        Tensor::from_vec([6], bu.clone())?,
    );
    for t in TARGETS {
        let (q, r, lt, qa, ra, la) = unsigned::on(t)?.run(&ts.0, &ts.1, &ts.2, &ts.3)?;
        let z = || xu.iter().zip(&yu);
        let za = || au.iter().zip(&bu);
        assert_eq!(q.to_vec(), z().map(|(a, b)| a.checked_div(*b).unwrap_or(0)).collect::<Vec<_>>(), "u32 / on {t:?}");
        assert_eq!(r.to_vec(), z().map(|(a, b)| a.checked_rem(*b).unwrap_or(0)).collect::<Vec<_>>(), "u32 % on {t:?}");
        assert_eq!(lt.to_vec(), z().map(|(a, b)| a < b).collect::<Vec<_>>(), "u32 < on {t:?}");
        assert_eq!(qa.to_vec(), za().map(|(a, b)| a.checked_div(*b).unwrap_or(0)).collect::<Vec<_>>(), "u64 / on {t:?}");
        assert_eq!(ra.to_vec(), za().map(|(a, b)| a.checked_rem(*b).unwrap_or(0)).collect::<Vec<_>>(), "u64 % on {t:?}");
        assert_eq!(la.to_vec(), za().map(|(a, b)| a >= b).collect::<Vec<_>>(), "u64 >= on {t:?}");
    }

    // --- wrapping arithmetic ------------------------------------------------
    let x = vec![i32::MAX, i32::MIN, 65_536, -7, 0];
    let y = vec![1, 1, 65_536, i32::MIN, -1];
    let b = vec![127i8, -128, 50, -43, 0];
    let u = vec![250u8, 3, 16, 0, 255];
    let v = vec![10u8, 5, 17, 1, 255];
    let w = vec![i64::MAX, 1 << 32, 3_037_000_500, -5, i64::MIN];
    let ts = (
        Tensor::from_vec([5], x.clone())?,
        Tensor::from_vec([5], y.clone())?,
        Tensor::from_vec([5], b.clone())?,
        Tensor::from_vec([5], u.clone())?,
        Tensor::from_vec([5], v.clone())?,
        Tensor::from_vec([5], w.clone())?,
    );
    for t in TARGETS {
        let o = wrapping::on(t)?.run(&ts.0, &ts.1, &ts.2, &ts.3, &ts.4, &ts.5)?;
        let k = 0..5;
        assert_eq!(o.0.to_vec(), k.clone().map(|i| x[i].wrapping_add(y[i])).collect::<Vec<_>>(), "+ on {t:?}");
        assert_eq!(o.1.to_vec(), k.clone().map(|i| x[i].wrapping_sub(y[i])).collect::<Vec<_>>(), "- on {t:?}");
        assert_eq!(o.2.to_vec(), k.clone().map(|i| x[i].wrapping_mul(y[i])).collect::<Vec<_>>(), "* on {t:?}");
        assert_eq!(o.3.to_vec(), k.clone().map(|i| x[i].wrapping_neg().wrapping_add(!y[i])).collect::<Vec<_>>(), "neg on {t:?}");
        assert_eq!(
            o.4.to_vec(),
            k.clone().map(|i| b[i].wrapping_add(b[i]).wrapping_sub(b[i].wrapping_neg())).collect::<Vec<_>>(),
            "i8 on {t:?}"
        );
        assert_eq!(o.5.to_vec(), k.clone().map(|i| u[i].wrapping_add(v[i])).collect::<Vec<_>>(), "u8 + on {t:?}");
        assert_eq!(o.6.to_vec(), k.clone().map(|i| u[i].wrapping_sub(v[i])).collect::<Vec<_>>(), "u8 - on {t:?}");
        assert_eq!(o.7.to_vec(), k.clone().map(|i| (!u[i]).wrapping_add(v[i])).collect::<Vec<_>>(), "u8 ! on {t:?}");
        assert_eq!(o.8.to_vec(), k.clone().map(|i| w[i].wrapping_mul(w[i]).wrapping_add(1)).collect::<Vec<_>>(), "i64 on {t:?}");
    }
    for t in TARGETS {
        let (bb, uv) = wrapping8_mul::on(t)?.run(&ts.2, &ts.3, &ts.4)?;
        assert_eq!(bb.to_vec(), b.iter().map(|x| x.wrapping_mul(3).wrapping_sub(x.wrapping_neg())).collect::<Vec<_>>(), "i8 * on {t:?}");
        assert_eq!(uv.to_vec(), u.iter().zip(&v).map(|(x, y)| (!x).wrapping_mul(*y)).collect::<Vec<_>>(), "u8 * on {t:?}");
    }

    // --- float -> int: truncation, saturation, NaN, infinities -------------
    let xf = vec![2.9f32, -2.9, 300.5, -300.5, 3e9, -3e9, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 255.99, -0.99, 127.5];
    let df = vec![1e19f64, -1e19, f64::NAN, 65_535.9, -32_768.9, 40_000.0, -1.5, 1.8e19, 4.5, f64::INFINITY, -0.0, 2.0f64.powi(63)];
    let (xt, dt) = (Tensor::from_vec([12], xf.clone())?, Tensor::from_vec([12], df.clone())?);
    for t in TARGETS {
        let o = float_to_int::on(t)?.run(&xt, &dt)?;
        assert_eq!(o.0.to_vec(), xf.iter().map(|&v| v as i32).collect::<Vec<_>>(), "f32 as i32 on {t:?}");
        assert_eq!(o.1.to_vec(), xf.iter().map(|&v| v as u32).collect::<Vec<_>>(), "f32 as u32 on {t:?}");
        assert_eq!(o.2.to_vec(), df.iter().map(|&v| v as i64).collect::<Vec<_>>(), "f64 as i64 on {t:?}");
        assert_eq!(o.3.to_vec(), df.iter().map(|&v| v as u64).collect::<Vec<_>>(), "f64 as u64 on {t:?}");
        assert_eq!(o.4.to_vec(), df.iter().map(|&v| v as i16).collect::<Vec<_>>(), "f64 as i16 on {t:?}");
    }
    for t in TARGETS {
        let (b, c) = float_to_int8::on(t)?.run(&xt)?;
        assert_eq!(b.to_vec(), xf.iter().map(|&v| v as u8).collect::<Vec<_>>(), "f32 as u8 on {t:?}");
        assert_eq!(c.to_vec(), xf.iter().map(|&v| v as i8).collect::<Vec<_>>(), "f32 as i8 on {t:?}");
    }
    // Spot checks of the table itself: saturation and NaN -> 0.
    assert_eq!((3e9f32 as i32, f32::NAN as u8, -300.5f32 as u8, 1e19f64 as i64), (i32::MAX, 0, 0, i64::MAX));

    // --- int -> int / float, bool -> int -----------------------------------
    let xi = vec![300, -1, -129, 70_000, i32::MIN, 255];
    // 2^60 + 2^36 + 1 rounds up to f32 directly, but to 2^60 if rounded
    // through f64 first.
    let uu = vec![u64::MAX, 1 << 32 | 5, 16_777_217, 9_007_199_254_740_993, 1 << 60 | 1 << 36 | 1, 4_294_967_295];
    let bb = vec![true, false, true, true, false, false];
    let ts = (Tensor::from_vec([6], xi.clone())?, Tensor::from_vec([6], uu.clone())?, Tensor::from_vec([6], bb.clone())?);
    for t in TARGETS {
        let o = int_to_other::on(t)?.run(&ts.0, &ts.1, &ts.2)?;
        assert_eq!(o.0.to_vec(), xi.iter().map(|&v| v as u16).collect::<Vec<_>>(), "i32 as u16 on {t:?}");
        assert_eq!(o.1.to_vec(), xi.iter().map(|&v| v as i64).collect::<Vec<_>>(), "i32 as i64 on {t:?}");
        assert_eq!(o.2.to_vec(), uu.iter().map(|&v| v as u32).collect::<Vec<_>>(), "u64 as u32 on {t:?}");
        assert_eq!(o.3.to_vec(), uu.iter().map(|&v| v as f32).collect::<Vec<_>>(), "u64 as f32 on {t:?}");
        assert_eq!(o.4.to_vec(), uu.iter().map(|&v| v as f64).collect::<Vec<_>>(), "u64 as f64 on {t:?}");
        let want_k: Vec<i32> = (0..6).map(|i| bb[i] as i32 * 2 + (xi[i] as i16) as i32).collect();
        assert_eq!(o.5.to_vec(), want_k, "bool as i32 on {t:?}");
        assert_eq!(o.6.to_vec(), xi.iter().map(|&v| (v as i64 * 3) as f32).collect::<Vec<_>>(), "i64 as f32 on {t:?}");
    }
    for t in TARGETS {
        let (a, c, k) = int_to_int8::on(t)?.run(&ts.0)?;
        assert_eq!(a.to_vec(), xi.iter().map(|&v| v as u8).collect::<Vec<_>>(), "i32 as u8 on {t:?}");
        assert_eq!(c.to_vec(), xi.iter().map(|&v| v as i8).collect::<Vec<_>>(), "i32 as i8 on {t:?}");
        assert_eq!(k.to_vec(), xi.iter().map(|&v| (v as u8) as i32 - (v as i8) as i32).collect::<Vec<_>>(), "u8/i8 as i32 on {t:?}");
    }
    Ok(())
}
