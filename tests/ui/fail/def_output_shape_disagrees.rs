use texpr::prelude::*;

tensor_expr! {
    fn shrink(x: f32[N]) -> f32[N] {
        let y: f32[N - 1] = |i| x[i];
        y
    }
}

fn main() {}
