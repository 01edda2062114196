use texpr::prelude::*;

tensor_expr! {
    fn gather(x: f32[N], idx: i64[M]) -> f32[M] {
        let y = |i| x[idx[i]];
        y
    }
}

fn main() {}
