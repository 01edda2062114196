use texpr::prelude::*;

tensor_expr! {
    fn window(w: f32[3]) -> f32[3] {
        let y = |i| w[i + 3];
        y
    }
}

fn main() {}
