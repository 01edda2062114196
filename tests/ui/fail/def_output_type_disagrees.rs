use texpr::prelude::*;

tensor_expr! {
    fn widen(x: f32[N]) -> f32[N] {
        let y: f64[N] = |i| x[i] as f64;
        y
    }
}

fn main() {}
