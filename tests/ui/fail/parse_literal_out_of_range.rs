use texpr::prelude::*;

tensor_expr! {
    fn bump(x: u8[N]) -> u8[N] {
        let y = |i| x[i] + 300u8;
        y
    }
}

fn main() {}
