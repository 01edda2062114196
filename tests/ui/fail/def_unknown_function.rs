use texpr::prelude::*;

tensor_expr! {
    fn act(x: f32[N]) -> f32[N] {
        let y = |i| gelu(x[i]);
        y
    }
}

fn main() {}
