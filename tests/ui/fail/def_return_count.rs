use texpr::prelude::*;

tensor_expr! {
    fn pair(x: f32[N]) -> (f32[N], f32[N]) {
        let y = |i| x[i];
        y
    }
}

fn main() {}
