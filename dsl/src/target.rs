//! Targets and the schedule classes they take their schedules from.

use std::fmt;

/// Where a kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Target {
    /// Machine code from the Cranelift JIT (the default).
    #[default]
    Cpu,
    /// The reference interpreter over the lowered loop nest.
    Interp,
    /// OpenCL C on the first OpenCL device.
    OpenCl,
    /// CUDA C compiled with NVRTC, on the first CUDA device.
    Cuda,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 4] = [Target::Cpu, Target::Interp, Target::OpenCl, Target::Cuda];

    /// Which `schedule for ...` block applies to this target.
    pub fn class(self) -> TargetClass {
        match self {
            Target::Cpu | Target::Interp => TargetClass::Cpu,
            Target::OpenCl | Target::Cuda => TargetClass::Gpu,
        }
    }

    /// Stable small index, for per-target tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Cpu => "cpu",
            Target::Interp => "interp",
            Target::OpenCl => "opencl",
            Target::Cuda => "cuda",
        })
    }
}

/// The class of targets a schedule block is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetClass {
    /// `schedule for cpu`: the JIT and the interpreter.
    Cpu,
    /// `schedule for gpu`: OpenCL and CUDA.
    Gpu,
}

impl fmt::Display for TargetClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetClass::Cpu => "cpu",
            TargetClass::Gpu => "gpu",
        })
    }
}
