use texpr::prelude::*;

tensor_expr! {
    fn nothing(x: f32[N]) -> () {
        let y = |i| x[i];
        y
    }
}

fn main() {}
