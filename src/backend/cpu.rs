//! `Target::Cpu`: the Cranelift JIT (`texpr-jit`).

use texpr_dsl::{Executable, Lowered, Result, Target};

pub(crate) fn compile(lowered: &Lowered) -> Result<Box<dyn Executable>> {
    Err(super::not_built(&lowered.flat.name, Target::Cpu))
}

pub(crate) fn source(lowered: &Lowered) -> Result<String> {
    Err(super::not_built(&lowered.flat.name, Target::Cpu))
}
