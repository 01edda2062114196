use texpr::prelude::*;

tensor_expr! {
    fn total(a: f32[M, K]) -> f32[M] {
        let y = |i| mean(k in 0..K => a[i, k]);
        y
    }
}

fn main() {}
