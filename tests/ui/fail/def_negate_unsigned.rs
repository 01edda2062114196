use texpr::prelude::*;

tensor_expr! {
    fn neg(x: u8[N]) -> u8[N] {
        let y = |i| -x[i];
        y
    }
}

fn main() {}
