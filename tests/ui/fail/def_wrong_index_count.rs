use texpr::prelude::*;

tensor_expr! {
    fn row(a: f32[M, K]) -> f32[M] {
        let y = |i| a[i];
        y
    }
}

fn main() {}
