//! Every element type as a tensor input, an output and a scalar input
//! (f16 and bf16 are `texpr::f16`/`texpr::bf16`).
use texpr::prelude::*;

tensor_expr! {
    fn all_types(
        a: bool[N], b: i8[N], c: i16[N], d: i32[N], e: i64[N], f: u8[N], g: u16[N],
        h: u32[N], k: u64[N], l: f16[N], m: bf16[N], n: f32[N], o: f64[N],
        sa: bool, sb: i8, sc: i16, sd: i32, se: i64, sf: u8, sg: u16, sh: u32, sk: u64,
        sl: f16, sm: bf16, sn: f32, so: f64,
    ) -> (bool[N], i8[N], i16[N], i32[N], i64[N], u8[N], u16[N], u32[N], u64[N], f16[N], bf16[N], f32[N], f64[N]) {
        let ya = |i| a[i] && sa;
        let yb = |i| b[i] + sb;
        let yc = |i| c[i] + sc;
        let yd = |i| d[i] + sd;
        let ye = |i| e[i] + se;
        let yf = |i| f[i] + sf;
        let yg = |i| g[i] + sg;
        let yh = |i| h[i] + sh;
        let yk = |i| k[i] + sk;
        let yl = |i| l[i] + sl;
        let ym = |i| m[i] + sm;
        let yn = |i| n[i] + sn;
        let yo = |i| o[i] + so;
        (ya, yb, yc, yd, ye, yf, yg, yh, yk, yl, ym, yn, yo)
    }

    fn to_f64(a: bool[N], b: i8[N], f: u8[N], k: u64[N], l: f16[N], m: bf16[N]) -> f64[N] {
        let y = |i| (a[i] as i32) as f64 + b[i] as f64 + f[i] as f64 + k[i] as f64 + l[i] as f64 + m[i] as f64
            + 1.5f16 as f64 + 2bf16 as f64;
        y
    }
}

fn t<T: texpr::Element>(v: T) -> Tensor<T> {
    Tensor::from_vec([1], vec![v]).unwrap()
}

fn main() -> Result<(), texpr::Error> {
    let h = texpr::f16::from_f32(1.5);
    let bh = texpr::bf16::from_f32(2.0);
    let out = all_types(
        &t(true), &t(1i8), &t(2i16), &t(3i32), &t(4i64), &t(250u8), &t(6u16), &t(7u32), &t(8u64), &t(h), &t(bh),
        &t(10.0f32), &t(11.0f64), true, -1, -2, -3, -4, 10, 1, 1, 1, h, bh, 0.5, 0.25,
    )?;
    assert_eq!(out.0.as_slice(), &[true]);
    assert_eq!(out.1.as_slice(), &[0]);
    assert_eq!(out.2.as_slice(), &[0]);
    assert_eq!(out.3.as_slice(), &[0]);
    assert_eq!(out.4.as_slice(), &[0]);
    assert_eq!(out.5.as_slice(), &[4]); // u8 wraps
    assert_eq!(out.6.as_slice(), &[7]);
    assert_eq!(out.7.as_slice(), &[8]);
    assert_eq!(out.8.as_slice(), &[9]);
    assert_eq!(out.9.as_slice(), &[texpr::f16::from_f32(3.0)]);
    assert_eq!(out.10.as_slice(), &[texpr::bf16::from_f32(4.0)]);
    assert_eq!(out.11.as_slice(), &[10.5]);
    assert_eq!(out.12.as_slice(), &[11.25]);
    let y = to_f64(&t(true), &t(-2i8), &t(3u8), &t(4u64), &t(h), &t(bh))?;
    assert_eq!(y.as_slice(), &[1.0 - 2.0 + 3.0 + 4.0 + 1.5 + 2.0 + 1.5 + 2.0]);
    Ok(())
}
