use texpr::prelude::*;

tensor_expr! {
    fn copy(x: f32[N]) -> f32[N] {
        let t: f32 = |i| x[i];
        let y = |i| t[i];
        y
    }
}

fn main() {}
