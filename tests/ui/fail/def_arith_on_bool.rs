use texpr::prelude::*;

tensor_expr! {
    fn count(x: bool[N]) -> bool[N] {
        let y = |i| x[i] + x[i];
        y
    }
}

fn main() {}
