//! `tensor_expr!` in one page: a definition with schedules, the generated
//! API, and what a shape mistake looks like.
//!
//! ```text
//! cargo run --example macro_quickstart
//! ```

use texpr::prelude::*;

tensor_expr! {
    /// Numerically stable softmax over the last axis.
    pub fn softmax(x: f32[N, C]) -> f32[N, C] {
        let mx: f32[N] = |n| max(c in 0..C => x[n, c]);
        let e: f32[N, C] = |n, c| exp(x[n, c] - mx[n]);
        let s: f32[N] = |n| sum(c in 0..C => e[n, c]);
        let y = |n, c| e[n, c] / s[n];
        y
    }
    schedule for cpu {
        let (no, ni) = y.split(n, 4);
        y.parallel(no);
        y.vectorize(c);
    }
    schedule for gpu {
        let f = y.fuse(n, c);
        let (bo, ti) = y.split(f, 64);
        y.bind(bo, block.x);
        y.bind(ti, thread.x);
        e.compute_inline();
    }

    /// Scaled sum and maximum of each row: two outputs.
    pub fn row_stats(x: f32[N, C], scale: f32) -> (f32[N], f32[N]) {
        let s = |n| sum(c in 0..C => x[n, c]) * scale;
        let m = |n| max(c in 0..C => x[n, c]);
        (s, m)
    }
}

fn main() -> Result<(), texpr::Error> {
    let x = Tensor::from_fn([3, 5], |i| (i[0] * 5 + i[1]) as f32 / 10.0);

    // The default target, compiled on first use and cached.
    let y = softmax(&x)?;
    println!("softmax: {y:?}");

    // Into an existing output, and on a chosen target.
    let mut y2 = Tensor::zeros([3, 5]);
    softmax::run_into(&x, &mut y2)?;
    let y3 = softmax::on(Target::Interp)?.run(&x)?;
    assert_eq!(y2.as_slice(), y3.as_slice());

    // Several outputs come back as a tuple; scalars are passed by value.
    let (s, m) = row_stats(&x, 2.0)?;
    println!("row sums x2: {s:?}\nrow maxima: {m:?}");

    // The loop nests after scheduling.
    let k = softmax::kernel();
    println!("{}", k.lower(Target::Cpu)?);
    println!("{}", k.lower(Target::OpenCl)?);

    // Shapes are checked on every call.
    let bad = Tensor::<f32>::zeros([3, 4]);
    let err = softmax::run_into(&bad, &mut y2).unwrap_err();
    println!("error: {err}");
    Ok(())
}
