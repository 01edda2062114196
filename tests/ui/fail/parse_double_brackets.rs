use texpr::prelude::*;

tensor_expr! {
    fn get(a: f32[M, K]) -> f32[M, K] {
        let y = |i, j| a[i][j];
        y
    }
}

fn main() {}
