use texpr::prelude::*;

tensor_expr! {
    fn shift(x: f32[N]) -> f32[N] {
        let y = |i| x[i + 1];
        y
    }
}

fn main() {}
