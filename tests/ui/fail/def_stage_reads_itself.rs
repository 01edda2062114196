use texpr::prelude::*;

tensor_expr! {
    fn rec(x: f32[N]) -> f32[N] {
        let y = |i| y[i] + x[i];
        y
    }
}

fn main() {}
