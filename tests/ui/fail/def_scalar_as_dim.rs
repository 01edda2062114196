use texpr::prelude::*;

tensor_expr! {
    fn make(x: f32[N], n: i64) -> f32[n] {
        let y = |i| x[i];
        y
    }
}

fn main() {}
