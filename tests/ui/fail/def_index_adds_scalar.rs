use texpr::prelude::*;

tensor_expr! {
    fn shift(x: f32[N], off: i64) -> f32[N] {
        let y = |i| x[i + off];
        y
    }
}

fn main() {}
