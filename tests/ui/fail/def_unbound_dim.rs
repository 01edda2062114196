use texpr::prelude::*;

tensor_expr! {
    fn grow(x: f32[N]) -> f32[P] {
        let y = |i| x[i];
        y
    }
}

fn main() {}
