use texpr::prelude::*;

tensor_expr! {
    fn add(x: f32[N], z: f32[N]) -> f32[N] {
        let y = |i| sum(x[i], z[i]);
        y
    }
}

fn main() {}
