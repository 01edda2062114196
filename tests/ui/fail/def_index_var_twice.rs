use texpr::prelude::*;

tensor_expr! {
    fn diag(a: f32[N, N]) -> f32[N, N] {
        let y = |i, i| a[i, i];
        y
    }
}

fn main() {}
