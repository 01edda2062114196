//! The OpenCL runtime: one context and queue on the first OpenCL device,
//! a program cache keyed by source, buffers and launches.
//!
//! `opencl3` loads `libOpenCL` at run time, so this builds everywhere; with
//! no OpenCL library or no platform, compiling for `Target::OpenCl` returns
//! [`Error::Unavailable`] ("no OpenCL platform found ..."). The device is
//! found once, behind a [`OnceLock`]: ICD loaders (PoCL's in particular)
//! fail at random when several threads query devices for the first time.
//! With `TEXPR_OPENCL_BUILD_LOG` set, the compiler's warnings are printed
//! with the numbered source.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex, OnceLock};

use opencl3::command_queue::CommandQueue;
use opencl3::context::Context;
use opencl3::device::{
    CL_DEVICE_TYPE_ALL, CL_DEVICE_TYPE_GPU, CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT, Device as ClDevice,
};
use opencl3::kernel::{ExecuteKernel, Kernel};
use opencl3::memory::{Buffer, CL_MEM_READ_WRITE};
use opencl3::platform::get_platforms;
use opencl3::program::Program;
use opencl3::types::CL_BLOCKING;
use texpr_dsl::{Call, Error, Executable, Result, Target};

use crate::dialect::OpenCl;
use crate::host::{Arg, Device, Prepared, ScalarArg, numbered, unavailable};
use crate::launch::{Dims, Limits};

/// The OpenCL device texpr runs on.
pub struct Cl {
    context: Context,
    queue: CommandQueue,
    /// `"<device> (<platform>)"`.
    pub name: String,
    limits: Limits,
    options: String,
    programs: Mutex<HashMap<String, Arc<Program>>>,
}

static CL: OnceLock<std::result::Result<Cl, String>> = OnceLock::new();

/// The OpenCL device, found on first use; `Err` says what is missing.
pub fn device() -> Result<&'static Cl> {
    CL.get_or_init(init).as_ref().map_err(|e| unavailable(Target::OpenCl, e.clone()))
}

fn init() -> std::result::Result<Cl, String> {
    let platforms =
        get_platforms().map_err(|e| format!("no OpenCL platform found (libOpenCL.so or an ICD is missing: {e})"))?;
    if platforms.is_empty() {
        return Err("no OpenCL platform found (no ICD is installed)".into());
    }
    // A GPU if there is one, else the first device of any type.
    let mut chosen = None;
    for wanted in [CL_DEVICE_TYPE_GPU, CL_DEVICE_TYPE_ALL] {
        for p in &platforms {
            if let Ok(ids) = p.get_devices(wanted)
                && let Some(id) = ids.first()
            {
                chosen = Some((ClDevice::new(*id), p.name().unwrap_or_default()));
                break;
            }
        }
        if chosen.is_some() {
            break;
        }
    }
    let (device, platform) = chosen.ok_or("no OpenCL device found on any platform")?;
    let context = Context::from_device(&device).map_err(|e| format!("cannot create an OpenCL context: {e}"))?;
    #[allow(deprecated)]
    let queue = CommandQueue::create_default(&context, 0).map_err(|e| format!("cannot create an OpenCL queue: {e}"))?;
    let sizes = device.max_work_item_sizes().unwrap_or_default();
    let item = |i: usize| sizes.get(i).copied().unwrap_or(1).max(1) as u64;
    let limits = Limits {
        block: [item(0), item(1), item(2)],
        threads: device.max_work_group_size().unwrap_or(1).max(1) as u64,
        grid: [1 << 31, 65535, 65535],
    };
    let mut options = String::from("-cl-std=CL1.2");
    if device.single_fp_config().is_ok_and(|c| c & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT != 0) {
        options.push_str(" -cl-fp32-correctly-rounded-divide-sqrt");
    }
    let name = format!("{} ({platform})", device.name().unwrap_or_default().trim());
    Ok(Cl { context, queue, name, limits, options, programs: Mutex::new(HashMap::new()) })
}

impl Cl {
    /// Builds `source` (cached by source text). A failure carries the build
    /// log and the numbered source.
    pub fn program(&self, func: &str, source: &str) -> Result<Arc<Program>> {
        let mut cache = self.programs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(source) {
            return Ok(p.clone());
        }
        let p = Program::create_and_build_from_source(&self.context, source, &self.options).map_err(|log| {
            Error::Backend {
                func: func.to_string(),
                target: Target::OpenCl,
                message: format!(
                    "the OpenCL C compiler rejected the generated source:\n{}\n--- generated source ---\n{}",
                    log.trim(),
                    numbered(source)
                ),
            }
        })?;
        if std::env::var_os("TEXPR_OPENCL_BUILD_LOG").is_some()
            && let Ok(log) = p.get_build_log(self.context.default_device())
            && !log.trim().is_empty()
        {
            eprintln!("// OpenCL build log of `{func}`:\n{}\n{}", log.trim(), numbered(source));
        }
        let p = Arc::new(p);
        cache.insert(source.to_string(), p.clone());
        Ok(p)
    }
}

impl Device for Cl {
    type Buf = Buffer<u8>;
    type Module = Program;

    fn limits(&self) -> Limits {
        self.limits
    }

    fn alloc(&self, bytes: usize) -> std::result::Result<Buffer<u8>, String> {
        // SAFETY: no host pointer is passed; the size is non-zero.
        unsafe { Buffer::<u8>::create(&self.context, CL_MEM_READ_WRITE, bytes.max(16), std::ptr::null_mut::<c_void>()) }
            .map_err(|e| format!("cannot allocate {bytes} bytes of device memory: {e}"))
    }

    fn upload(&self, buf: &mut Buffer<u8>, data: &[u8]) -> std::result::Result<(), String> {
        // SAFETY: a blocking write of `data.len()` bytes into a buffer at
        // least that large.
        unsafe { self.queue.enqueue_write_buffer(buf, CL_BLOCKING, 0, data, &[]) }
            .map(|_| ())
            .map_err(|e| format!("cannot copy to the device: {e}"))
    }

    fn download(&self, buf: &Buffer<u8>, out: &mut [u8]) -> std::result::Result<(), String> {
        // SAFETY: a blocking read of `out.len()` bytes from a buffer at least
        // that large; the in-order queue runs it after the kernels.
        unsafe { self.queue.enqueue_read_buffer(buf, CL_BLOCKING, 0, out, &[]) }
            .map(|_| ())
            .map_err(|e| format!("cannot copy from the device (a kernel may have failed): {e}"))
    }

    fn launch(
        &self,
        module: &Program,
        name: &str,
        args: &[Arg<'_, Buffer<u8>>],
        dims: Dims,
    ) -> std::result::Result<(), String> {
        let kernel = Kernel::create(module, name).map_err(|e| format!("no kernel `{name}` in the program: {e}"))?;
        let mut exec = ExecuteKernel::new(&kernel);
        for a in args {
            // SAFETY: the arguments follow the kernel's signature, which
            // was written from the same argument list.
            unsafe {
                match a {
                    Arg::Buf(b) => exec.set_arg(*b),
                    Arg::Scalar(ScalarArg::I8(v)) => exec.set_arg(v),
                    Arg::Scalar(ScalarArg::I16(v)) => exec.set_arg(v),
                    Arg::Scalar(ScalarArg::I32(v)) => exec.set_arg(v),
                    Arg::Scalar(ScalarArg::I64(v)) => exec.set_arg(v),
                    Arg::Scalar(ScalarArg::U8(v)) => exec.set_arg(v),
                    Arg::Scalar(ScalarArg::U16(v)) => exec.set_arg(v),
                    Arg::Scalar(ScalarArg::U32(v)) => exec.set_arg(v),
                    Arg::Scalar(ScalarArg::U64(v)) => exec.set_arg(v),
                    Arg::Scalar(ScalarArg::F32(v)) => exec.set_arg(v),
                    Arg::Scalar(ScalarArg::F64(v)) => exec.set_arg(v),
                };
            }
        }
        let global: Vec<usize> = (0..3).map(|a| (dims.grid[a] * dims.block[a]) as usize).collect();
        let local: Vec<usize> = dims.block.iter().map(|b| *b as usize).collect();
        exec.set_global_work_sizes(&global).set_local_work_sizes(&local);
        // SAFETY: every argument is set; the sizes are non-zero multiples.
        unsafe { exec.enqueue_nd_range(&self.queue) }
            .map(|_| ())
            .map_err(|e| format!("cannot launch kernel `{name}` (grid {:?}, block {:?}): {e}", dims.grid, dims.block))
    }
}

/// A function compiled for OpenCL.
pub struct ClExecutable {
    prepared: Prepared<OpenCl>,
    program: Arc<Program>,
    /// The generated source.
    pub source: String,
}

impl ClExecutable {
    /// Builds the generated source on the OpenCL device.
    pub fn new(prepared: Prepared<OpenCl>, source: String) -> Result<ClExecutable> {
        let cl = device()?;
        let program = cl.program(&prepared.gpu.func.name, &source)?;
        Ok(ClExecutable { prepared, program, source })
    }
}

impl Executable for ClExecutable {
    unsafe fn run(&self, call: &mut Call<'_, '_>) -> Result<()> {
        let cl = device()?;
        self.prepared.run(cl, &self.program, call)
    }
}
