use texpr::prelude::*;

tensor_expr! {
    fn add(x: f32[N], y: i32[N]) -> f32[N] {
        let z = |i| x[i] + y[i];
        z
    }
}

fn main() {}
