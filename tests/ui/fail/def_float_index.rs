use texpr::prelude::*;

tensor_expr! {
    fn gather(x: f32[N], p: f32) -> f32[N] {
        let y = |i| x[p];
        y
    }
}

fn main() {}
