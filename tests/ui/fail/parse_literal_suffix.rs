use texpr::prelude::*;

tensor_expr! {
    fn bump(x: f32[N]) -> f32[N] {
        let y = |i| x[i] + 1.0f8;
        y
    }
}

fn main() {}
