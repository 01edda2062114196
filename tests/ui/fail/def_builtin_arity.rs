use texpr::prelude::*;

tensor_expr! {
    fn act(x: f32[N]) -> f32[N] {
        let y = |i| exp(x[i], 2.0);
        y
    }
}

fn main() {}
