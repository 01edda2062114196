//! Every expression form: operators with Rust precedence, unary operators,
//! comparisons, `&&`/`||`, casts, `if`/`else if`, literals of every form,
//! every built-in function, index arithmetic, dims as values, and
//! reductions (whole-body, inside expressions, several variables).
//! Checked on the reference interpreter.
use texpr::prelude::*;

tensor_expr! {
    fn arith(x: i32[N], y: i32[N]) -> i32[N] {
        let z = |i| -x[i] + y[i] * 3 - (x[i] - y[i]) / 2 % 5 + !x[i];
        z
    }

    fn floor_semantics(x: i32[N], d: i32) -> (i32[N], i32[N]) {
        let q = |i| x[i] / d;
        let r = |i| x[i] % d;
        (q, r)
    }

    fn logic(x: f32[N], lo: f32, hi: f32) -> bool[N] {
        let z = |i| x[i] >= lo && x[i] < hi || x[i] == 5.0 || !(x[i] != -7.0) && x[i] <= 0.0 || x[i] > 100.0;
        z
    }

    fn branches(x: f32[N]) -> f32[N] {
        let y = |i| if x[i] < -1.0 { -1.0 } else if x[i] > 1.0 { 1.0 } else { x[i] };
        y
    }

    fn casts(x: f32[N]) -> (i32[N], u8[N], f64[N], i64[N]) {
        let a = |i| x[i] as i32;
        let b = |i| x[i] as u8;
        let c = |i| x[i] as f64 * 2.0;
        let d = |i| (x[i] > 0.0) as i64 - -1 as i64;
        (a, b, c, d)
    }

    fn builtins(x: f32[N]) -> (f32[N], f32[N]) {
        let y = |i| exp(x[i]) + exp2(x[i]) + ln(abs(x[i]) + 1.0) + log2(abs(x[i]) + 1.0)
            + sqrt(abs(x[i])) + rsqrt(abs(x[i]) + 1.0) + floor(x[i]) + ceil(x[i]) + round(x[i])
            + trunc(x[i]) + sin(x[i]) + cos(x[i]) + tanh(x[i]) + sigmoid(x[i]) + pow(abs(x[i]), 1.5)
            + min(x[i], 0.5) + max(x[i], -0.5) + clamp(x[i], -0.25, 0.25) + fma(x[i], 2.0, 1.0)
            + select(x[i] > 0.0, 1.0, -1.0);
        let e = |i| erf(x[i]);
        (y, e)
    }

    fn literals(x: f64[N]) -> f64[N] {
        let y = |i| x[i] * 1e-3 + 2.5e2 + 1_000.0 + 0x10 as f64 + 3u8 as f64 + 1.5f32 as f64 + 2f64
            + (7i64 / 2) as f64 + (-7 / 2) as f64 + (-7 % 3) as f64 + if true { 1.0 } else { 0.0 }
            + (false as i32) as f64 + -128i8 as f64;
        y
    }

    fn index_math(x: f32[N]) -> (i64[N], f32[N], f32[N - 2]) {
        let idx = |i| i * 2 + N - 1;
        let rev = |i| x[N - 1 - i];
        let win = |i| x[i] + x[i + 1] + x[i + 2];
        (idx, rev, win)
    }

    fn reductions(a: f32[M, K]) -> (f32[M], f32[M], f32[M], f32[M], f32[]) {
        let s = |i| sum(k in 0..K => a[i, k]);
        let p = |i| prod(k in 0..K => a[i, k]);
        let hi = |i| max(k in 0..K => a[i, k]);
        let lo = |i| min(k in 0..K => a[i, k]);
        let t = || sum(i in 0..M, k in 0..K => a[i, k] * 2.0);
        (s, p, hi, lo, t)
    }

    fn mean_plus(x: f32[N, C]) -> f32[N] {
        let y = |n| sum(c in 1..C => x[n, c]) / (C as f32) + max(x[n, 0], 0.0);
        y
    }
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-5 * (1.0 + b.abs())
}

fn main() -> Result<(), texpr::Error> {
    let xi = Tensor::from_vec([4], vec![7i32, -3, 0, 12])?;
    let yi = Tensor::from_vec([4], vec![1i32, 4, -6, 5])?;
    let z = arith::on(Target::Interp)?.run(&xi, &yi)?;
    let want: Vec<i32> = xi
        .as_slice()
        .iter()
        .zip(yi.as_slice())
        .map(|(x, y)| -x + y * 3 - (x - y).div_euclid(2).rem_euclid(5) + !x)
        .collect();
    assert_eq!(z.as_slice(), &want[..]);

    let (q, r) = floor_semantics::on(Target::Interp)?.run(&Tensor::from_vec([3], vec![-7i32, 7, 5])?, 2)?;
    assert_eq!(q.as_slice(), &[-4, 3, 2]);
    assert_eq!(r.as_slice(), &[1, 1, 1]);
    let (q, r) = floor_semantics::on(Target::Interp)?.run(&Tensor::from_vec([1], vec![5i32])?, 0)?;
    assert_eq!((q.as_slice(), r.as_slice()), (&[0][..], &[0][..]));

    let xf = Tensor::from_vec([6], vec![0.5f32, 5.0, -7.0, 150.0, -0.5, 3.0])?;
    let l = logic::on(Target::Interp)?.run(&xf, 0.0, 1.0)?;
    assert_eq!(l.as_slice(), &[true, true, true, true, false, false]);

    let b = branches::on(Target::Interp)?.run(&Tensor::from_vec([3], vec![-3.0f32, 0.25, 9.0])?)?;
    assert_eq!(b.as_slice(), &[-1.0, 0.25, 1.0]);

    let (a, u, d, c) = casts::on(Target::Interp)?.run(&Tensor::from_vec([4], vec![-1.5f32, 300.0, f32::NAN, 2.75])?)?;
    assert_eq!(a.as_slice(), &[-1, 300, 0, 2]);
    assert_eq!(u.as_slice(), &[0, 255, 0, 2]);
    assert_eq!(d.as_slice()[0], -3.0);
    assert_eq!(c.as_slice(), &[1, 2, 1, 2]);

    let xs = Tensor::from_vec([3], vec![-0.75f32, 0.0, 0.5])?;
    let (y, e) = builtins::on(Target::Interp)?.run(&xs)?;
    for (k, &x) in xs.as_slice().iter().enumerate() {
        let want = x.exp() + x.exp2() + (x.abs() + 1.0).ln() + (x.abs() + 1.0).log2() + x.abs().sqrt()
            + 1.0 / (x.abs() + 1.0).sqrt() + x.floor() + x.ceil() + x.round() + x.trunc() + x.sin() + x.cos()
            + x.tanh() + 1.0 / (1.0 + (-x).exp()) + x.abs().powf(1.5) + x.min(0.5) + x.max(-0.5)
            + x.clamp(-0.25, 0.25) + x.mul_add(2.0, 1.0) + if x > 0.0 { 1.0 } else { -1.0 };
        assert!(close(y.as_slice()[k], want), "builtins({x}) = {} want {want}", y.as_slice()[k]);
    }
    assert!(close(e.as_slice()[1], 0.0) && close(e.as_slice()[2], 0.520_499_9));

    let lit = literals::on(Target::Interp)?.run(&Tensor::from_vec([1], vec![1000.0f64])?)?;
    let want = 1.0 + 250.0 + 1000.0 + 16.0 + 3.0 + 1.5 + 2.0 + 3.0 + -4.0 + 2.0 + 1.0 + 0.0 - 128.0;
    assert_eq!(lit.as_slice(), &[want]);

    let x5 = Tensor::from_vec([5], vec![1.0f32, 2.0, 3.0, 4.0, 5.0])?;
    let (idx, rev, win) = index_math::on(Target::Interp)?.run(&x5)?;
    assert_eq!(idx.as_slice(), &[4, 6, 8, 10, 12]);
    assert_eq!(rev.as_slice(), &[5.0, 4.0, 3.0, 2.0, 1.0]);
    assert_eq!(win.as_slice(), &[6.0, 9.0, 12.0]);

    let m = Tensor::from_vec([2, 3], vec![1.0f32, -2.0, 3.0, 0.5, 4.0, -1.0])?;
    let (s, p, hi, lo, t) = reductions::on(Target::Interp)?.run(&m)?;
    assert_eq!(s.as_slice(), &[2.0, 3.5]);
    assert_eq!(p.as_slice(), &[-6.0, -2.0]);
    assert_eq!(hi.as_slice(), &[3.0, 4.0]);
    assert_eq!(lo.as_slice(), &[-2.0, -1.0]);
    assert_eq!((t.shape(), t.as_slice()), (&[][..], &[11.0][..]));
    let (s, p, hi, lo, _) = reductions::on(Target::Interp)?.run(&Tensor::<f32>::zeros([2, 0]))?;
    assert_eq!((s.as_slice(), p.as_slice()), (&[0.0, 0.0][..], &[1.0, 1.0][..]));
    assert_eq!(hi.as_slice(), &[f32::NEG_INFINITY; 2]);
    assert_eq!(lo.as_slice(), &[f32::INFINITY; 2]);

    let mp = mean_plus::on(Target::Interp)?.run(&m)?;
    assert!(close(mp.as_slice()[0], 1.0 / 3.0 + 1.0) && close(mp.as_slice()[1], 1.0 + 0.5));
    Ok(())
}
