use texpr::prelude::*;

tensor_expr! {
    fn band(x: f32[N]) -> bool[N] {
        let y = |i| 0.0 < x[i] < 1.0;
        y
    }
}

fn main() {}
