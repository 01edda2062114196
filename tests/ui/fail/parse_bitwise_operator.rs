use texpr::prelude::*;

tensor_expr! {
    fn mask(x: i32[N]) -> i32[N] {
        let y = |i| x[i] & 255;
        y
    }
}

fn main() {}
