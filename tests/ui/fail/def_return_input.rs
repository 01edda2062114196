use texpr::prelude::*;

tensor_expr! {
    fn copy(x: f32[N]) -> f32[N] {
        let y: f32[N] = |i| x[i];
        x
    }
}

fn main() {}
