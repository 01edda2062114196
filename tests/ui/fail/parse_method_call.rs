use texpr::prelude::*;

tensor_expr! {
    fn act(x: f32[N]) -> f32[N] {
        let y = |i| x[i].exp();
        y
    }
}

fn main() {}
