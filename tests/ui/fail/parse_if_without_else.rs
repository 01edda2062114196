use texpr::prelude::*;

tensor_expr! {
    fn relu(x: f32[N]) -> f32[N] {
        let y = |i| if x[i] > 0.0 { x[i] };
        y
    }
}

fn main() {}
