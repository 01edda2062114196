use texpr::prelude::*;

tensor_expr! {
    fn bump(x: i32[N]) -> i32[N] {
        let y = |i| x[i] + 1.5;
        y
    }
}

fn main() {}
