//! texpr's GPU backends: OpenCL C and CUDA C source generation, and the
//! runtimes that build and launch it.
//!
//! ```text
//! Lowered.flat ──gpu_lower::lower──▶ GpuFunc ──Writer<Dialect>──▶ source ──▶ OpenCL / NVRTC + driver
//! (flat nest)    (root stages →   (kernels in     (OpenCl | Cuda)        (runtime: buffers,
//!                 kernels, GPU     kernel IR,                             launch sizes, copies)
//!                 mapping)         launch sizes)
//! ```
//!
//! - `gpu_lower`: the GPU lowering: one kernel per root stage, bound loops
//!   onto the grid, shared tiles filled cooperatively between barriers,
//!   thread-dependent guards pushed down to each thread's own work; index
//!   divisions computed once per loop, not per access.
//! - `kir`: the kernel IR it produces, and its verifier.
//! - `writer`: one C-family writer; `dialect`: what OpenCL C and CUDA C
//!   do differently. `names`: identifiers that avoid each language's
//!   keywords.
//! - `launch`, `host`: launch sizes and the host side of a call,
//!   shared by `opencl` (opencl3) and `cuda` (cudarc: NVRTC + driver), the
//!   two public modules (features `opencl` and `cuda`): device probes and
//!   NVRTC for tools and tests.
//!
//! Everything else is internal; [`compile`] and [`source`] are the API.
//!
//! A missing OpenCL platform, CUDA driver or NVRTC is an
//! [`Error::Unavailable`] naming what is missing; a source the device
//! compiler rejects is an [`Error::Backend`] with its log and the numbered
//! source. Nothing here panics on a user path.
#![deny(missing_docs)]
// Without a GPU runtime (features `opencl`, `cuda`) the host side is unused.
#![cfg_attr(not(any(feature = "opencl", feature = "cuda")), allow(dead_code))]

#[cfg(feature = "cuda")]
pub mod cuda;
pub(crate) mod dialect;
pub(crate) mod gpu_lower;
pub(crate) mod host;
pub(crate) mod kir;
pub(crate) mod launch;
pub(crate) mod names;
#[cfg(feature = "opencl")]
pub mod opencl;
pub(crate) mod writer;

use texpr_dsl::{Error, Executable, InternalError, Lowered, Result, Target};

use dialect::{Cuda, OpenCl};

/// Generated code for one function and one target.
#[derive(Clone, Debug)]
pub(crate) struct Generated {
    /// The kernels.
    pub gpu: kir::GpuFunc,
    /// The full source text.
    pub source: String,
    /// The C names of the kernels, in launch order.
    pub kernel_names: Vec<String>,
}

fn check(target: Target, lowered: &Lowered) -> Result<()> {
    if !matches!(target, Target::OpenCl | Target::Cuda) {
        return Err(Error::Internal(InternalError::new("texpr-backends", format!("{target} is not a GPU target"))));
    }
    if !lowered.flat.flat {
        return Err(Error::Internal(InternalError::new(
            "texpr-backends",
            "the GPU backends take a flattened loop nest",
        )));
    }
    Ok(())
}

/// Lowers to kernels and writes the source for `target` (`OpenCl` or `Cuda`).
pub(crate) fn generate(target: Target, lowered: &Lowered) -> Result<Generated> {
    check(target, lowered)?;
    let gpu = gpu_lower::lower(&lowered.flat)?;
    let (source, kernel_names) = match target {
        Target::Cuda => writer::write(&Cuda, &gpu),
        _ => writer::write(&OpenCl, &gpu),
    };
    Ok(Generated { gpu, source, kernel_names })
}

/// The generated source for `target` (`OpenCl` or `Cuda`).
pub fn source(target: Target, lowered: &Lowered) -> Result<String> {
    Ok(generate(target, lowered)?.source)
}

/// Compiles for `target` on its device: an [`Error::Unavailable`] when the
/// device or its compiler is missing, or when texpr was built without the
/// target's cargo feature (`opencl`, `cuda`).
pub fn compile(target: Target, lowered: &Lowered) -> Result<Box<dyn Executable>> {
    let g = generate(target, lowered)?;
    match target {
        Target::Cuda => compile_cuda(g),
        _ => compile_opencl(g),
    }
}

#[cfg(feature = "cuda")]
fn compile_cuda(g: Generated) -> Result<Box<dyn Executable>> {
    // Checked before cudarc is touched: it panics on a missing library.
    cuda::driver_available().map_err(|e| host::unavailable(Target::Cuda, e))?;
    cuda::nvrtc_available().map_err(|e| host::unavailable(Target::Cuda, e))?;
    let prepared = host::Prepared { dialect: Cuda, gpu: g.gpu, names: g.kernel_names };
    Ok(Box::new(cuda::CudaExecutable::new(prepared, g.source)?))
}

#[cfg(not(feature = "cuda"))]
fn compile_cuda(_: Generated) -> Result<Box<dyn Executable>> {
    Err(host::unavailable(Target::Cuda, "texpr was built without its `cuda` feature"))
}

#[cfg(feature = "opencl")]
fn compile_opencl(g: Generated) -> Result<Box<dyn Executable>> {
    let prepared = host::Prepared { dialect: OpenCl, gpu: g.gpu, names: g.kernel_names };
    Ok(Box::new(opencl::ClExecutable::new(prepared, g.source)?))
}

#[cfg(not(feature = "opencl"))]
fn compile_opencl(_: Generated) -> Result<Box<dyn Executable>> {
    Err(host::unavailable(Target::OpenCl, "texpr was built without its `opencl` feature"))
}
