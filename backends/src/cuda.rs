//! The CUDA runtime: NVRTC compiles the generated source to a CUBIN for the
//! device's real architecture, the driver loads and launches it.
//!
//! `cudarc` loads `libcuda` and `libnvrtc` at run time and panics when one
//! is missing, so both are probed here first (with the same file names
//! cudarc tries): without a driver, compiling for `Target::Cuda` returns
//! [`Error::Unavailable`] ("no CUDA driver found"), without NVRTC ("NVRTC
//! not found") — never a panic. [`nvrtc_compile`] needs NVRTC only, which is
//! how the tests check every generated kernel on machines without a GPU.

use std::ffi::{CStr, CString, c_char};
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::{Ptx, result as nvrtc, sys as nvrtc_sys};
use texpr_dsl::{Call, Error, Executable, Result, Target};

use crate::dialect::Cuda;
use crate::host::{Arg, Device, Prepared, ScalarArg, numbered, unavailable};
use crate::launch::{Dims, Limits};

/// `true` if one of the library names cudarc tries loads.
fn loadable(lib: &str) -> bool {
    cudarc::get_lib_name_candidates(lib).iter().any(|name| {
        // SAFETY: loading a CUDA library runs its initializers, which is
        // what cudarc would do next anyway.
        unsafe { libloading::Library::new(name) }.is_ok()
    })
}

/// `Ok` if NVRTC can be loaded; else what is missing.
pub fn nvrtc_available() -> std::result::Result<(), String> {
    static NVRTC: OnceLock<bool> = OnceLock::new();
    if *NVRTC.get_or_init(|| loadable("nvrtc")) {
        Ok(())
    } else {
        Err("NVRTC not found (libnvrtc.so is not on the library path; scripts/gpu-deps.sh installs it)".into())
    }
}

/// `Ok` if the CUDA driver can be loaded; else what is missing.
pub fn driver_available() -> std::result::Result<(), String> {
    static DRIVER: OnceLock<bool> = OnceLock::new();
    if *DRIVER.get_or_init(|| loadable("cuda") || loadable("nvcuda")) {
        Ok(())
    } else {
        Err("no CUDA driver found (libcuda.so is not loadable)".into())
    }
}

/// The folders NVRTC searches for `cuda_fp16.h` and `cuda_bf16.h`:
/// `$TEXPR_CUDA_INCLUDE`, `$CUDA_HOME/include`, `/usr/local/cuda/include`.
fn include_paths() -> Vec<String> {
    let mut out = vec![];
    if let Ok(p) = std::env::var("TEXPR_CUDA_INCLUDE") {
        out.push(p);
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Ok(p) = std::env::var(var) {
            out.push(format!("{p}/include"));
        }
    }
    out.push("/usr/local/cuda/include".into());
    out.into_iter().filter(|p| std::path::Path::new(p).join("cuda_fp16.h").exists()).collect()
}

/// What NVRTC produced.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// PTX text, or a CUBIN for a real architecture.
    pub image: Vec<u8>,
    /// NVRTC's log (warnings).
    pub log: String,
}

/// Compiles CUDA source with NVRTC for `arch`: `sm_XX` gives a CUBIN,
/// `compute_XX` gives PTX. A compile error carries NVRTC's log and the
/// numbered source.
pub fn nvrtc_compile(source: &str, name: &str, arch: &str) -> std::result::Result<Compiled, String> {
    nvrtc_available()?;
    let src = CString::new(source).map_err(|_| "the source contains a NUL byte".to_string())?;
    let cname = CString::new(format!("{name}.cu")).map_err(|_| "the name contains a NUL byte".to_string())?;
    let prog = nvrtc::create_program(&src, Some(&cname)).map_err(|e| format!("nvrtcCreateProgram failed: {e}"))?;
    let mut opts = vec![
        format!("--gpu-architecture={arch}"),
        "--std=c++17".to_string(),
        // Unfused a * b + c, correctly rounded division and sqrt, denormals.
        "--fmad=false".to_string(),
        "--prec-div=true".to_string(),
        "--prec-sqrt=true".to_string(),
        "--ftz=false".to_string(),
    ];
    for p in include_paths() {
        opts.push(format!("--include-path={p}"));
    }
    // SAFETY: `prog` was created above and is destroyed once, below.
    let compiled = unsafe { nvrtc::compile_program(prog, &opts) };
    // SAFETY: `prog` is live (destroyed below) and was just compiled.
    let log = unsafe { nvrtc::get_program_log(prog) }
        .map(|l| {
            // SAFETY: NVRTC's log is NUL-terminated.
            unsafe { CStr::from_ptr(l.as_ptr()) }.to_string_lossy().into_owned()
        })
        .unwrap_or_default();
    let result = match compiled {
        Err(e) => Err(format!(
            "NVRTC rejected the generated source ({e}):\n{}\n--- generated source ---\n{}",
            log.trim(),
            numbered(source)
        )),
        Ok(()) if arch.starts_with("sm_") => cubin(prog).map(|image| Compiled { image, log: log.clone() }),
        // SAFETY: `prog` is live and compiled without error.
        Ok(()) => unsafe { nvrtc::get_ptx(prog) }
            .map(|p| Compiled { image: p.iter().map(|c| *c as u8).collect(), log: log.clone() })
            .map_err(|e| format!("nvrtcGetPTX failed: {e}")),
    };
    // SAFETY: created above, not used after this.
    let _ = unsafe { nvrtc::destroy_program(prog) };
    match result {
        Ok(c) if c.image.is_empty() => Err(format!("NVRTC returned an empty image for {arch}")),
        r => r,
    }
}

fn cubin(prog: nvrtc_sys::nvrtcProgram) -> std::result::Result<Vec<u8>, String> {
    let mut size = 0usize;
    // SAFETY: `prog` is a compiled program; the buffer has the size NVRTC
    // reports.
    unsafe {
        nvrtc_sys::nvrtcGetCUBINSize(prog, &mut size).result().map_err(|e| format!("nvrtcGetCUBINSize failed: {e}"))?;
        let mut buf = vec![0 as c_char; size];
        nvrtc_sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr()).result().map_err(|e| format!("nvrtcGetCUBIN failed: {e}"))?;
        Ok(buf.into_iter().map(|c| c as u8).collect())
    }
}

/// The CUDA device texpr runs on (device 0).
pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    /// `sm_XY` of the device.
    pub arch: String,
    limits: Limits,
    modules: Mutex<std::collections::HashMap<String, Arc<CudaModule>>>,
}

static GPU: OnceLock<std::result::Result<Gpu, String>> = OnceLock::new();

/// The CUDA device, found on first use; `Err` says what is missing.
pub fn device() -> Result<&'static Gpu> {
    driver_available().map_err(|e| unavailable(Target::Cuda, e))?;
    GPU.get_or_init(init).as_ref().map_err(|e| unavailable(Target::Cuda, e.clone()))
}

fn init() -> std::result::Result<Gpu, String> {
    use cudarc::driver::sys::CUdevice_attribute as A;
    let n = CudaContext::device_count().map_err(|e| format!("no CUDA device found ({e})"))?;
    if n < 1 {
        return Err("no CUDA device found".into());
    }
    let ctx = CudaContext::new(0).map_err(|e| format!("cannot open CUDA device 0: {e}"))?;
    let (major, minor) = ctx.compute_capability().map_err(|e| format!("cannot query CUDA device 0: {e}"))?;
    let attr = |a: A, default: i32| ctx.attribute(a).unwrap_or(default).max(1) as u64;
    let limits = Limits {
        block: [
            attr(A::CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, 1024),
            attr(A::CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, 1024),
            attr(A::CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, 64),
        ],
        threads: attr(A::CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 1024),
        grid: [
            attr(A::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, 65535),
            attr(A::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, 65535),
            attr(A::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, 65535),
        ],
    };
    let stream = ctx.default_stream();
    Ok(Gpu { ctx, stream, arch: format!("sm_{major}{minor}"), limits, modules: Default::default() })
}

impl Gpu {
    /// Compiles (cached by source) and loads a module.
    pub fn module(&self, func: &str, source: &str) -> Result<Arc<CudaModule>> {
        let mut cache = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = cache.get(source) {
            return Ok(m.clone());
        }
        nvrtc_available().map_err(|e| unavailable(Target::Cuda, e))?;
        let compiled = nvrtc_compile(source, func, &self.arch).map_err(|message| Error::Backend {
            func: func.to_string(),
            target: Target::Cuda,
            message,
        })?;
        let m = self.ctx.load_module(Ptx::from_binary(compiled.image)).map_err(|e| Error::Backend {
            func: func.to_string(),
            target: Target::Cuda,
            message: format!("the driver cannot load the CUBIN: {e}"),
        })?;
        cache.insert(source.to_string(), m.clone());
        Ok(m)
    }
}

/// A loaded module with its kernels.
pub struct Module {
    module: Arc<CudaModule>,
    functions: Mutex<std::collections::HashMap<String, CudaFunction>>,
}

impl Device for Gpu {
    type Buf = CudaSlice<u8>;
    type Module = Module;

    fn limits(&self) -> Limits {
        self.limits
    }

    fn alloc(&self, bytes: usize) -> std::result::Result<CudaSlice<u8>, String> {
        self.stream
            .alloc_zeros::<u8>(bytes.max(16))
            .map_err(|e| format!("cannot allocate {bytes} bytes of device memory: {e}"))
    }

    fn upload(&self, buf: &mut CudaSlice<u8>, data: &[u8]) -> std::result::Result<(), String> {
        self.stream.memcpy_htod(data, buf).map_err(|e| format!("cannot copy to the device: {e}"))?;
        self.stream.synchronize().map_err(|e| format!("cannot copy to the device: {e}"))
    }

    fn download(&self, buf: &CudaSlice<u8>, out: &mut [u8]) -> std::result::Result<(), String> {
        let view = buf.slice(0..out.len());
        self.stream
            .memcpy_dtoh(&view, out)
            .map_err(|e| format!("cannot copy from the device (a kernel may have failed): {e}"))?;
        self.stream.synchronize().map_err(|e| format!("a kernel failed: {e}"))
    }

    fn launch(
        &self,
        module: &Module,
        name: &str,
        args: &[Arg<'_, CudaSlice<u8>>],
        dims: Dims,
    ) -> std::result::Result<(), String> {
        let f = {
            let mut fs = module.functions.lock().unwrap_or_else(|e| e.into_inner());
            match fs.get(name) {
                Some(f) => f.clone(),
                None => {
                    let f = module
                        .module
                        .load_function(name)
                        .map_err(|e| format!("no kernel `{name}` in the module: {e}"))?;
                    fs.insert(name.to_string(), f.clone());
                    f
                }
            }
        };
        let mut b = self.stream.launch_builder(&f);
        for a in args {
            match a {
                Arg::Buf(s) => b.arg(*s),
                Arg::Scalar(ScalarArg::I8(v)) => b.arg(v),
                Arg::Scalar(ScalarArg::I16(v)) => b.arg(v),
                Arg::Scalar(ScalarArg::I32(v)) => b.arg(v),
                Arg::Scalar(ScalarArg::I64(v)) => b.arg(v),
                Arg::Scalar(ScalarArg::U8(v)) => b.arg(v),
                Arg::Scalar(ScalarArg::U16(v)) => b.arg(v),
                Arg::Scalar(ScalarArg::U32(v)) => b.arg(v),
                Arg::Scalar(ScalarArg::U64(v)) => b.arg(v),
                Arg::Scalar(ScalarArg::F32(v)) => b.arg(v),
                Arg::Scalar(ScalarArg::F64(v)) => b.arg(v),
            };
        }
        let d32 = |v: [u64; 3]| (v[0] as u32, v[1] as u32, v[2] as u32);
        let cfg = LaunchConfig { grid_dim: d32(dims.grid), block_dim: d32(dims.block), shared_mem_bytes: 0 };
        let failed = |e: cudarc::driver::DriverError| {
            format!("cannot launch kernel `{name}` (grid {:?}, block {:?}): {e}", dims.grid, dims.block)
        };
        if !texpr_dsl::dump_enabled("time") {
            // SAFETY: the arguments follow the kernel's signature, which was
            // written from the same argument list; sizes are within limits.
            return unsafe { b.launch(cfg) }.map(|_| ()).map_err(failed);
        }
        // `TEXPR_DUMP=time`: the kernel's own time, between two events on
        // the stream (waits for the kernel).
        let event = || {
            self.ctx
                .new_event(Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(|e| format!("cannot create a CUDA event: {e}"))
        };
        let (start, end) = (event()?, event()?);
        start.record(&self.stream).map_err(failed)?;
        // SAFETY: as above.
        unsafe { b.launch(cfg) }.map_err(failed)?;
        end.record(&self.stream).map_err(failed)?;
        end.synchronize().map_err(|e| format!("kernel `{name}` failed: {e}"))?;
        let ms = start.elapsed_ms(&end).map_err(|e| format!("cannot time kernel `{name}`: {e}"))?;
        eprintln!("texpr cuda: kernel {name} grid {:?} block {:?}: {ms:.4} ms", dims.grid, dims.block);
        Ok(())
    }
}

/// A function compiled for CUDA.
pub struct CudaExecutable {
    prepared: Prepared<Cuda>,
    module: Module,
    /// The generated source.
    pub source: String,
}

impl CudaExecutable {
    /// Compiles and loads the generated source on the CUDA device.
    pub fn new(prepared: Prepared<Cuda>, source: String) -> Result<CudaExecutable> {
        let gpu = device()?;
        let module = gpu.module(&prepared.gpu.func.name, &source)?;
        Ok(CudaExecutable { prepared, module: Module { module, functions: Default::default() }, source })
    }
}

impl Executable for CudaExecutable {
    unsafe fn run(&self, call: &mut Call<'_, '_>) -> Result<()> {
        let gpu = device()?;
        self.prepared.run(gpu, &self.module, call)
    }
}
