use texpr::prelude::*;

tensor_expr! {
    fn copy(x: f32[N]) -> f32[N] {
        let y = |i| x[i] +;
        y
    }
}

fn main() {
    // The function's API still exists: no errors below, only the one above.
    let x = Tensor::<f32>::zeros([3]);
    let y: Tensor<f32> = copy(&x).unwrap();
    copy::run_into(&x, &mut y.clone()).unwrap();
    let _k: Kernel = copy::kernel();
}
