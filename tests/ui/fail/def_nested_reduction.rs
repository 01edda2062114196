use texpr::prelude::*;

tensor_expr! {
    fn total(a: f32[M, K]) -> f32[M] {
        let y = |i| sum(k in 0..K => max(c in 0..K => a[i, c]) * a[i, k]);
        y
    }
}

fn main() {}
