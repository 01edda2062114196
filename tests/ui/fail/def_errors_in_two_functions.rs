use texpr::prelude::*;

tensor_expr! {
    fn one(x: f32[N]) -> f32[N] {
        let y = |i| x[i] * 2;
        y
    }
    fn two(x: f32[N]) -> f32[N] {
        let y = |i| x[i] + beta;
        y
    }
}

fn main() {}
