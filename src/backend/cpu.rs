//! `Target::Cpu`: the Cranelift JIT (`texpr-jit`).

use texpr_dsl::{Executable, Lowered, Result};

pub(crate) fn compile(lowered: &Lowered) -> Result<Box<dyn Executable>> {
    Ok(Box::new(texpr_jit::compile(lowered)?))
}

pub(crate) fn source(lowered: &Lowered) -> Result<String> {
    texpr_jit::clif(lowered)
}
