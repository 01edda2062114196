use texpr::prelude::*;

tensor_expr! {
    fn half(x: f32[N]) -> f32[N] {
        let h: f64[N] = |i| x[i] * 0.5;
        let y = |i| h[i] as f32;
        y
    }
}

fn main() {}
