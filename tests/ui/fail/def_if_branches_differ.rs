use texpr::prelude::*;

tensor_expr! {
    fn pick(x: f32[N], z: f64[N]) -> f32[N] {
        let y = |i| if i < 2 { x[i] } else { z[i] };
        y
    }
}

fn main() {}
