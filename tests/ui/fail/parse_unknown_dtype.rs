use texpr::prelude::*;

tensor_expr! {
    fn copy(x: f31[N]) -> f32[N] {
        let y = |i| x[i];
        y
    }
}

fn main() {}
