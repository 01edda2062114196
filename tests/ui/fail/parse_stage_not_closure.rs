use texpr::prelude::*;

tensor_expr! {
    fn copy(x: f32[N]) -> f32[N] {
        let y = x;
        y
    }
}

fn main() {}
