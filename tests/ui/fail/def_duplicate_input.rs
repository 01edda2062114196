use texpr::prelude::*;

tensor_expr! {
    fn twice(x: f32[N], x: f32[N]) -> f32[N] {
        let y = |i| x[i];
        y
    }
}

fn main() {
    // The stub renames the duplicate parameter: no second error.
    let x = Tensor::<f32>::zeros([3]);
    let _y: Tensor<f32> = twice(&x, &x).unwrap();
}
