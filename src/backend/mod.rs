//! Which backend compiles which target. One file per backend family, so the
//! facade's only knowledge of a backend is the two functions it calls.

mod cpu;
mod gpu;

use texpr_dsl::interp::Interpreter;
use texpr_dsl::{Executable, Lowered, Result, Target};

/// Compiles a lowered program for `target`.
pub(crate) fn compile(target: Target, lowered: &Lowered) -> Result<Box<dyn Executable>> {
    match target {
        Target::Interp => Ok(Box::new(Interpreter::new(lowered.flat.clone()))),
        Target::Cpu => cpu::compile(lowered),
        Target::OpenCl | Target::Cuda => gpu::compile(target, lowered),
    }
}

/// The generated code for `target`.
pub(crate) fn source(target: Target, lowered: &Lowered) -> Result<String> {
    match target {
        Target::Interp => Ok(lowered.to_string()),
        Target::Cpu => cpu::source(lowered),
        Target::OpenCl | Target::Cuda => gpu::source(target, lowered),
    }
}
