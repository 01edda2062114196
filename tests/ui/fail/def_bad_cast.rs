use texpr::prelude::*;

tensor_expr! {
    fn flag(x: f32[N]) -> bool[N] {
        let y = |i| x[i] as bool;
        y
    }
}

fn main() {}
