use texpr::prelude::*;

tensor_expr! {
    fn rowsum(a: f32[M, K]) -> f32[M] {
        let y = |i| sum(k in 0..K => a[i, k]) + a[i, k];
        y
    }
}

fn main() {}
