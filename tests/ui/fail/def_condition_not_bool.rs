use texpr::prelude::*;

tensor_expr! {
    fn pick(x: f32[N]) -> f32[N] {
        let y = |i| if x[i] { x[i] } else { 0.0 };
        y
    }
}

fn main() {}
