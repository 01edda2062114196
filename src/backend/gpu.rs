//! `Target::OpenCl` and `Target::Cuda`: the C-family writers and device
//! runtimes (`texpr-backends`).

use texpr_dsl::{Executable, Lowered, Result, Target};

pub(crate) fn compile(target: Target, lowered: &Lowered) -> Result<Box<dyn Executable>> {
    texpr_backends::compile(target, lowered)
}

pub(crate) fn source(target: Target, lowered: &Lowered) -> Result<String> {
    texpr_backends::source(target, lowered)
}
