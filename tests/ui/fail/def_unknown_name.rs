use texpr::prelude::*;

tensor_expr! {
    fn scale(x: f32[N]) -> f32[N] {
        let y = |i| x[i] * alpha;
        y
    }
}

fn main() {
    // The function's API still exists: no errors below, only the one above.
    let x = Tensor::<f32>::zeros([3]);
    let _y: Tensor<f32> = scale(&x).unwrap();
}
