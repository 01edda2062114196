//! Function signatures: several outputs, rank-0 tensors and `||` closures,
//! literal dims, output dims computed from input dims, no tensor inputs,
//! typed and untyped stages, raw identifiers, several functions per
//! invocation and several invocations per module.
use texpr::prelude::*;

tensor_expr! {
    /// Two outputs of different types.
    fn stats(x: f32[N]) -> (f32[], i64[N]) {
        let total = || sum(i in 0..N => x[i]);
        let pos = |i| (x[i] > 0.0) as i64;
        (total, pos)
    }

    /// Output dims are integer arithmetic of input dims.
    fn valid_conv(x: f32[H], k: f32[R], s: i32) -> f32[(H - R) / 2 + 1] {
        let y = |o| sum(r in 0..R => x[o * 2 + r] * k[r]) * s as f32;
        y
    }

    /// Literal dims, and a function with no tensor input.
    fn iota() -> i64[4] {
        let y = |i| i * 10;
        y
    }

    fn fixed(w: f32[2, 3]) -> f32[3, 2] {
        let t: f32[3, 2] = |i, j| w[j, i];
        let y = |i, j| t[i, j] + 1.0;
        y
    }

    fn raw(r#type: f32[N]) -> f32[N] {
        let r#loop = |i| r#type[i] * 2.0;
        r#loop
    }
}

tensor_expr! {
    fn second_invocation(x: u8[N]) -> u8[N] { let y = |i| x[i]; y }
}

fn main() -> Result<(), texpr::Error> {
    let x = Tensor::from_vec([4], vec![1.0f32, -2.0, 3.0, 0.0])?;
    let (total, pos) = stats(&x)?;
    assert_eq!(total.shape(), &[] as &[usize]);
    assert_eq!(total.as_slice(), &[2.0]);
    assert_eq!(pos.as_slice(), &[1, 0, 1, 0]);
    let mut t2 = Tensor::zeros([]);
    let mut p2 = Tensor::zeros([4]);
    stats::run_into(&x, &mut t2, &mut p2)?;
    stats::on(Target::Interp)?.run_into(&x, &mut t2, &mut p2)?;
    assert_eq!((t2, p2), (total, pos));

    let xs = Tensor::from_fn([7], |i| i[0] as f32);
    let k = Tensor::from_vec([3], vec![1.0f32, 0.0, -1.0])?;
    let y = valid_conv(&xs, &k, 3)?;
    assert_eq!(y.shape(), &[3]);
    assert_eq!(y.as_slice(), &[-6.0, -6.0, -6.0]);

    assert_eq!(iota()?.as_slice(), &[0, 10, 20, 30]);
    assert_eq!(iota::on(Target::Interp)?.run()?.as_slice(), &[0, 10, 20, 30]);

    let w = Tensor::from_fn([2, 3], |i| (i[0] * 3 + i[1]) as f32);
    assert_eq!(fixed(&w)?.as_slice(), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    assert_eq!(raw(&x)?.as_slice(), &[2.0, -4.0, 6.0, 0.0]);
    assert_eq!(second_invocation(&Tensor::from_vec([1], vec![9u8])?)?.as_slice(), &[9]);
    Ok(())
}
