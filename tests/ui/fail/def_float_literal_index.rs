use texpr::prelude::*;

tensor_expr! {
    fn first(x: f32[N]) -> f32[N] {
        let y = |i| x[1.5];
        y
    }
}

fn main() {}
