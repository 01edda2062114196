use texpr::prelude::*;

tensor_expr! {
    fn prefix(x: f32[N]) -> f32[N] {
        let y = |i| sum(k in 0..i => x[k]);
        y
    }
}

fn main() {}
