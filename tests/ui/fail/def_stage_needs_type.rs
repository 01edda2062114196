use texpr::prelude::*;

tensor_expr! {
    fn twice(x: f32[N]) -> f32[N] {
        let t = |i| x[i] * 2.0;
        let y = |i| t[i] + 1.0;
        y
    }
}

fn main() {}
