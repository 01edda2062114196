use texpr::prelude::*;

tensor_expr! {
    fn act(x: i32[N]) -> i32[N] {
        let y = |i| sqrt(x[i]);
        y
    }
}

fn main() {}
