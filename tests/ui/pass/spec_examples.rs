//! SPEC §2, §3 and §4 as written.
use texpr::prelude::*;

mod defs {
    use texpr::prelude::*;

    tensor_expr! {
        /// Dense matrix product.
        pub fn matmul(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
            let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
            c
        }

        /// Numerically stable softmax over the last axis.
        pub fn softmax(x: f32[N, C]) -> f32[N, C] {
            let mx: f32[N] = |n| max(c in 0..C => x[n, c]);
            let e: f32[N, C] = |n, c| exp(x[n, c] - mx[n]);
            let s: f32[N] = |n| sum(c in 0..C => e[n, c]);
            let y = |n, c| e[n, c] / s[n];
            y
        }

        /// y = max(a * x + b, 0) with a scalar parameter.
        pub fn axpb_relu(x: f32[N], a: f32, b: f32) -> f32[N] {
            let y = |i| max(a * x[i] + b, 0.0);
            y
        }

        /// 2-D convolution, NCHW, 3x3 window, zero padding 1, stride 1.
        pub fn conv3x3(x: f32[B, C, H, W], w: f32[F, C, 3, 3]) -> f32[B, F, H, W] {
            let y = |n, f, h, ww| sum(c in 0..C, r in 0..3, s in 0..3 =>
                if h + r >= 1 && h + r <= H && ww + s >= 1 && ww + s <= W {
                    x[n, c, h + r - 1, ww + s - 1] * w[f, c, r, s]
                } else { 0.0 });
            y
        }
    }
}

tensor_expr! {
    pub fn matmul(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }
    schedule for cpu {
        let (io, jo, ii, ji) = c.tile(i, j, 32, 64);
        let (ko, ki) = c.split(k, 8);
        c.reorder(io, jo, ko, ki, ii, ji);
        c.vectorize(ji);
        c.unroll(ki);
        c.parallel(io);
    }
    schedule for gpu {
        let (bi, bj, ti, tj) = c.tile(i, j, 16, 16);
        c.bind(bi, block.y); c.bind(bj, block.x);
        c.bind(ti, thread.y); c.bind(tj, thread.x);
        let (ko, ki) = c.split(k, 16);
        let a_s = c.cache_read(a, shared);
        let b_s = c.cache_read(b, shared);
        a_s.compute_at(c, ko);
        b_s.compute_at(c, ko);
    }
}

fn main() -> Result<(), texpr::Error> {
    let a = Tensor::from_fn([3, 4], |i| (i[0] * 4 + i[1]) as f32);
    let b = Tensor::from_fn([4, 2], |i| (i[0] + 2 * i[1]) as f32);
    // run on the default target; compiles once, then caches
    let c: Tensor<f32> = matmul(&a, &b)?;
    let mut c2 = Tensor::zeros([3, 2]);
    // write into an existing output; no allocation
    matmul::run_into(&a, &b, &mut c2)?;
    assert_eq!(c, c2);
    assert_eq!(c.as_slice(), defs::matmul(&a, &b)?.as_slice());
    // pick a target
    let c3 = matmul::on(Target::Interp)?.run(&a, &b)?;
    assert_eq!(c, c3);
    // inspect
    let k: texpr::Kernel = matmul::kernel();
    println!("{}", k.lower(Target::Cpu)?);
    println!("{}", k.lower(Target::OpenCl)?);

    let x = Tensor::from_vec([4], vec![-2.0f32, -1.0, 0.5, 3.0])?;
    assert_eq!(defs::axpb_relu(&x, 2.0, 1.0)?.as_slice(), &[0.0, 0.0, 2.0, 7.0]);
    let s = defs::softmax(&Tensor::from_vec([1, 2], vec![0.0f32, 0.0])?)?;
    assert_eq!(s.as_slice(), &[0.5, 0.5]);
    let y = defs::conv3x3(&Tensor::from_fn([1, 1, 2, 2], |_| 1.0f32), &Tensor::from_fn([1, 1, 3, 3], |_| 1.0f32))?;
    assert_eq!(y.as_slice(), &[4.0, 4.0, 4.0, 4.0]);
    Ok(())
}
