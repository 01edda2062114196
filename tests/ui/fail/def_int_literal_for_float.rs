use texpr::prelude::*;

tensor_expr! {
    fn double(x: f32[N]) -> f32[N] {
        let y = |i| x[i] * 2;
        y
    }
}

fn main() {}
