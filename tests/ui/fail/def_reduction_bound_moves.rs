use texpr::prelude::*;

tensor_expr! {
    fn prefix(x: f32[N]) -> f32[N] {
        let y = |i| sum(j in 0..i + 1 => x[j]);
        y
    }
}

fn main() {}
