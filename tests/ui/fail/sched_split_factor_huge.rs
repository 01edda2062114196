use texpr::prelude::*;

tensor_expr! {
    fn matmul(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }
    schedule for cpu {
        let (io, ii) = c.split(i, 9223372036854775807);
    }
}

fn main() {}
