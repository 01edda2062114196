use texpr::prelude::*;

tensor_expr! {
    fn softmax(x: f32[N, C]) -> f32[N, C] {
        let mx: f32[N] = |n| max(c in 0..C => x[n, c]);
        let e: f32[N, C] = |n, c| exp(x[n, c] - mx[n]);
        let s: f32[N] = |n| sum(c in 0..C => e[n, c]);
        let y = |n, c| e[n, c] / s[n];
        y
    }
    schedule for cpu {
        mx.compute_at(e, n);
        e.compute_inline();
    }
}

fn main() {}
