//! Visibility, doc comments (`missing_docs` stays quiet), `#[debug]`,
//! functions in nested modules, and `fn NAME` / `mod NAME` imported together.
#![deny(missing_docs)]

/// Operators.
pub mod ops {
    use texpr::prelude::*;

    tensor_expr! {
        /// Public, with a doc comment
        /// over two lines.
        pub fn scale(x: f32[N], s: f32) -> f32[N] {
            let y = |i| x[i] * s;
            y
        }

        /// Visible in the crate.
        pub(crate) fn shift(x: f32[N]) -> f32[N] {
            let y = |i| x[i] + 1.0;
            y
        }

        /// Private to `ops`; dumped at build time by `#[debug]`.
        #[debug]
        fn private(x: f32[N]) -> f32[N] {
            let y = |i| x[i];
            y
        }
    }

    /// Uses the private function.
    pub fn via_private(x: &Tensor<f32>) -> Result<Tensor<f32>, texpr::Error> {
        private(x)
    }
}

use ops::scale;
use texpr::{Target, Tensor};

fn main() -> Result<(), texpr::Error> {
    let x = Tensor::from_vec([2], vec![1.0f32, 2.0])?;
    assert_eq!(scale(&x, 3.0)?.as_slice(), &[3.0, 6.0]);
    assert_eq!(scale::on(Target::Interp)?.run(&x, 0.5)?.as_slice(), &[0.5, 1.0]);
    assert_eq!(ops::shift(&x)?.as_slice(), &[2.0, 3.0]);
    assert_eq!(ops::via_private(&x)?.as_slice(), &[1.0, 2.0]);
    let doc = scale::kernel().func()?.doc.clone();
    assert_eq!(doc.as_deref(), Some("Public, with a doc comment\nover two lines."));
    let h: scale::Handle = scale::on(Target::Interp)?;
    assert_eq!(format!("{h:?}"), "Handle { kernel: Kernel(scale), target: Interp }");
    Ok(())
}
