//! texpr's Cranelift CPU backend: `Target::Cpu`.
//!
//! [`compile`] turns a [`Lowered`] program (its flat loop nest) into a
//! [`JitKernel`]: machine code for the whole nest, compiled once per kernel
//! (shapes are run-time arguments), callable from many threads at once, its
//! code memory freed on drop. [`clif`] returns the Cranelift IR text.
//!
//! The loop nest it receives was optimized for it by lowering's CPU passes
//! (`texpr_dsl::lower::opt`: tails as guarded unrolls, loop partitioning at
//! tail and padding guards, unswitching, accumulators promoted to small
//! temporaries, divisions hoisted), verified after each; the JIT only
//! translates.
//!
//! The pieces, one module each:
//!
//! - `codegen`: the lowered IR → Cranelift IR, one file per concern:
//!   `scalar` (expressions with SPEC semantics), `memory` (addresses,
//!   loads and stores, temporaries on the stack, the heap or in registers),
//!   `loops` (statements, serial/unrolled loops, and the scopes they open:
//!   every binding is undone by the closure-scoped helpers, never by hand),
//!   `parallel` (loops outlined into their own functions), `vector`
//!   (vectorized loops as 128-bit SIMD, the widest Cranelift's x86_64
//!   backend handles: contiguous accesses as vector loads/stores, invariant
//!   values broadcast, guards that hold on a range of lanes as masks, the
//!   rest lane by lane) and `math` (inline polynomial `exp`, `ln`, `tanh`,
//!   ... for `f32`).
//! - `analysis`: register promotion, affine index analysis, and which
//!   float temporaries can never hold NaN (one-instruction vector
//!   `max`/`min` on a reduction's accumulators).
//! - `support`: the functions JIT code calls (thread pool, allocation,
//!   `f64` math), and the `vzeroupper` trampoline every entry goes through.
//!   A parallel loop whose estimated work is small runs on the calling
//!   thread ([`set_parallel_min_work`]).
//!
//! Generated code never checks bounds: `texpr_dsl::call` proved every
//! access in bounds before a call reaches [`JitKernel::run`]. No input
//! panics: Cranelift errors (and panics, caught) become `Error::Backend`,
//! and an invariant of the lowered IR that does not hold (a texpr bug)
//! becomes `Error::Internal`.
//!
//! `TEXPR_DUMP=passes` prints the loop nest after each pass of lowering
//! (the CPU's optimizations included), `TEXPR_DUMP=clif` the Cranelift IR of every compiled function and
//! `TEXPR_DUMP=opt` the Cranelift IR after Cranelift's optimizations,
//! `TEXPR_DUMP=asm` the machine code, `TEXPR_DUMP=time` the compile time
//! (and Cranelift's time per function; the functions of a kernel compile
//! in parallel on the thread pool),
//! all to stderr (`all`: everything).
#![deny(missing_docs)]

mod analysis;
mod codegen;
mod error;
mod support;

use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use cranelift_codegen::Context;
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::types;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Signature, UserFuncName};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, ModuleReloc};
use rayon::prelude::*;
use texpr_dsl::{Call, Error, Executable, Lowered, LoweredFunc, Result, Target, dump_enabled};

use codegen::{Gen, ModState};
use error::{CgError, CgResult, cg_err, cranelift_err};

/// A compiled kernel: the entry point of its machine code and the module
/// that owns the code memory.
pub struct JitKernel {
    name: String,
    entry: support::EntryFn,
    n_inputs: usize,
    n_outputs: usize,
    n_params: usize,
    n_dims: usize,
    /// Kept only to free the code on drop; never used while running.
    module: Mutex<Option<JITModule>>,
    compile_time: std::time::Duration,
}

impl std::fmt::Debug for JitKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JitKernel({})", self.name)
    }
}

impl JitKernel {
    /// How long compilation took (definition → callable, after lowering).
    pub fn compile_time(&self) -> std::time::Duration {
        self.compile_time
    }
}

impl Drop for JitKernel {
    fn drop(&mut self) {
        let m = self.module.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(m) = m {
            // SAFETY: `&mut self` means no call is running and none can
            // start; the entry pointer dies with `self`.
            unsafe { m.free_memory() };
        }
    }
}

impl Executable for JitKernel {
    unsafe fn run(&self, call: &mut Call<'_, '_>) -> Result<()> {
        if call.inputs.len() != self.n_inputs
            || call.outputs.len() != self.n_outputs
            || call.params.len() != self.n_params
            || call.dims.len() != self.n_dims
        {
            return Err(Error::Internal(texpr_dsl::InternalError::new(
                "jit",
                "call arity differs from the compiled kernel",
            )));
        }
        let mut ptrs: Vec<*mut u8> = Vec::with_capacity(self.n_inputs + self.n_outputs);
        ptrs.extend(call.inputs.iter().map(|d| d.as_ptr() as *mut u8));
        ptrs.extend(call.outputs.iter_mut().map(|d| d.as_mut_ptr()));
        let params: Vec<u64> = call.params.iter().map(|p| p.bits()).collect();
        let dims: &[i64] = call.dims;
        // SAFETY: the entry was compiled for this function's buffers, dims
        // and params (arity checked above); `Compiled::run` checked types and
        // shapes and proved every access in bounds for these dims; outputs
        // are exclusively borrowed for the call.
        let status = unsafe { support::enter(self.entry, ptrs.as_ptr(), dims.as_ptr(), params.as_ptr()) };
        if status != 0 {
            return Err(Error::Backend {
                func: self.name.clone(),
                target: Target::Cpu,
                message: "a temporary buffer could not be allocated (out of memory)".into(),
            });
        }
        Ok(())
    }
}

fn backend_err(func: &str, message: String) -> Error {
    Error::Backend { func: func.to_string(), target: Target::Cpu, message }
}

/// The host ISA, built once.
fn isa() -> std::result::Result<OwnedTargetIsa, String> {
    static ISA: OnceLock<std::result::Result<OwnedTargetIsa, String>> = OnceLock::new();
    ISA.get_or_init(|| {
        let mut fb = settings::builder();
        let set =
            |fb: &mut settings::Builder, k: &str, v: &str| fb.set(k, v).map_err(|e| format!("setting {k}={v}: {e}"));
        set(&mut fb, "opt_level", "speed")?;
        set(
            &mut fb,
            "enable_verifier",
            if cfg!(debug_assertions) || texpr_dsl::verify_enabled() { "true" } else { "false" },
        )?;
        set(&mut fb, "enable_probestack", "false")?;
        set(&mut fb, "is_pic", "false")?;
        set(&mut fb, "use_colocated_libcalls", "false")?;
        let ib = cranelift_native::builder().map_err(|e| format!("host machine is not supported: {e}"))?;
        ib.finish(settings::Flags::new(fb)).map_err(|e| format!("building the ISA: {e}"))
    })
    .clone()
}

/// Sets the least estimated work (innermost statements executed, 32768 by
/// default) for which a parallel loop is handed to the thread pool; loops
/// with less run on the calling thread, where they finish before the
/// pool's threads would have woken up. `0` sends every parallel loop of
/// more than one iteration to the pool (tests use it to exercise the
/// chunked execution on small shapes). Affects running kernels at once;
/// results never depend on it.
pub fn set_parallel_min_work(work: u64) {
    support::PARALLEL_MIN_WORK.store(work.min(i64::MAX as u64) as i64, std::sync::atomic::Ordering::Relaxed);
}

/// Compiles a lowered program.
pub fn compile(lowered: &Lowered) -> Result<JitKernel> {
    let f = &lowered.flat;
    let t = Instant::now();
    let (module, entry_id, _) = guarded(f, false)?;
    let ptr = module.get_finalized_function(entry_id);
    // SAFETY: the entry was defined with the `EntryFn` signature.
    let entry = unsafe { std::mem::transmute::<*const u8, support::EntryFn>(ptr) };
    if dump_enabled("time") {
        eprintln!("// ---- {}: JIT compile {:.3} ms", f.name, t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(JitKernel {
        name: f.name.clone(),
        entry,
        n_inputs: f.inputs().len(),
        n_outputs: f.outputs().len(),
        n_params: f.params.len(),
        n_dims: f.dims.len(),
        module: Mutex::new(Some(module)),
        compile_time: t.elapsed(),
    })
}

/// The Cranelift IR of a lowered program's functions (before Cranelift's
/// optimizations), the entry first.
pub fn clif(lowered: &Lowered) -> Result<String> {
    let (module, _, text) = guarded(&lowered.flat, true)?;
    // SAFETY: nothing from this module was ever called.
    unsafe { module.free_memory() };
    Ok(text)
}

/// Builds with every failure — errors and Cranelift panics — as an `Err`.
fn guarded(f: &LoweredFunc, text: bool) -> Result<(JITModule, FuncId, String)> {
    if !f.flat {
        return Err(Error::Internal(texpr_dsl::InternalError::new("jit", "the JIT compiles flattened functions")));
    }
    match catch_unwind(AssertUnwindSafe(|| build(f, text))) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(CgError { message, internal: false })) => Err(backend_err(&f.name, message)),
        Ok(Err(CgError { message, internal: true })) => {
            Err(Error::Internal(texpr_dsl::InternalError::new("texpr-jit", format!("`{}`: {message}", f.name))))
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(backend_err(&f.name, format!("Cranelift panicked: {msg}")))
        }
    }
}

enum Kind<'a> {
    Main,
    Chunk(&'a [codegen::Cap]),
}

fn build(f: &LoweredFunc, want_text: bool) -> CgResult<(JITModule, FuncId, String)> {
    let isa = isa().map_err(cg_err)?;
    let mut jb = JITBuilder::with_isa(isa, Box::new(support::libcall_name));
    for (n, p) in support::symbols() {
        jb.symbol(n, p);
    }
    let module = JITModule::new(jb);
    let t0 = Instant::now();
    let mut ms = ModState::new(module, f);
    let ptr = ms.module.target_config().pointer_type();
    let mut text = String::new();
    let dump_clif = dump_enabled("clif");
    let dump_asm = dump_enabled("asm");

    let sig = ms.signature(&[ptr, ptr, ptr], &[types::I32]);
    let name = codegen::sanitize(&f.name);
    let main = ms
        .module
        .declare_function(&name, Linkage::Local, &sig)
        .map_err(|e| cranelift_err(format!("declaring `{name}`: {e}")))?;
    let mut pending = vec![define(&mut ms, main, &name, sig, Kind::Main, None, want_text, dump_clif, &mut text)?];
    while let Some(job) = ms.jobs.pop() {
        let sig = ms.signature(&[ptr, types::I64, types::I64], &[types::I32]);
        pending.push(define(
            &mut ms,
            job.id,
            &job.name,
            sig,
            Kind::Chunk(&job.caps),
            Some(job.lp),
            want_text,
            dump_clif,
            &mut text,
        )?);
    }
    let t_gen = t0.elapsed();
    // Cranelift compiles the functions (the entry and every outlined
    // parallel loop) independently: on the thread pool, in parallel.
    let isa = ms.module.isa();
    let compiled: Vec<CgResult<f64>> = pending
        .par_iter_mut()
        .map(|p| {
            if dump_asm {
                p.ctx.set_disasm(true);
            }
            let t = Instant::now();
            p.ctx
                .compile(isa, &mut ControlPlane::default())
                .map(|_| t.elapsed().as_secs_f64() * 1e3)
                .map_err(|e| cranelift_err(format!("compiling `{}`: {:?}\n{}", p.name, e.inner, e.func.display())))
        })
        .collect();
    for (p, ms_taken) in pending.iter().zip(compiled) {
        let ms_taken = ms_taken?;
        let code = p.ctx.compiled_code().ok_or_else(|| cg_err(format!("`{}` was not compiled", p.name)))?;
        if dump_asm && let Some(v) = &code.vcode {
            eprintln!("; {} (machine code)\n{v}", p.name);
        }
        if dump_enabled("time") {
            eprintln!("// ---- {}: Cranelift {ms_taken:.3} ms ({} instructions)", p.name, p.ctx.func.dfg.num_insts());
        }
        if dump_enabled("opt") {
            eprintln!("; {} (after Cranelift's optimizations)\n{}", p.name, p.ctx.func.display());
        }
        let relocs: Vec<ModuleReloc> =
            code.buffer.relocs().iter().map(|r| ModuleReloc::from_mach_reloc(r, &p.ctx.func, p.id)).collect();
        ms.module
            .define_function_bytes(p.id, code.buffer.alignment as u64, code.code_buffer(), &relocs)
            .map_err(|e| cranelift_err(format!("defining `{}`: {e}", p.name)))?;
    }
    ms.module.finalize_definitions().map_err(|e| cranelift_err(format!("finalizing: {e}")))?;
    if dump_enabled("time") {
        let ms_of = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        eprintln!(
            "// ---- {}: Cranelift IR {:.3} ms, compile + link {:.3} ms",
            f.name,
            ms_of(t_gen),
            ms_of(t0.elapsed() - t_gen)
        );
    }
    Ok((ms.module, main, text))
}

/// A function built in Cranelift IR, not yet compiled.
struct Pending {
    id: FuncId,
    name: String,
    ctx: Context,
}

#[allow(clippy::too_many_arguments)]
fn define<'a>(
    ms: &mut ModState<'a>,
    id: FuncId,
    name: &str,
    sig: Signature,
    kind: Kind<'_>,
    lp: Option<&'a texpr_dsl::For>,
    want_text: bool,
    dump_clif: bool,
    text: &mut String,
) -> CgResult<Pending> {
    let f = ms.f;
    let mut ctx = ms.module.make_context();
    ctx.func.signature = sig;
    ctx.func.name = UserFuncName::user(0, id.as_u32());
    let mut fbc = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fbc);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let params = b.block_params(entry).to_vec();
        let ptr = ms.module.target_config().pointer_type();
        let (bufs, dims, prms) = match kind {
            Kind::Main => (params[0], params[1], params[2]),
            Kind::Chunk(_) => {
                let fl = MemFlagsData::trusted().with_readonly().with_can_move();
                let env = params[0];
                (b.ins().load(ptr, fl, env, 0), b.ins().load(ptr, fl, env, 8), b.ins().load(ptr, fl, env, 16))
            }
        };
        let mut g = Gen::new(ms, b, bufs, dims, prms);
        match (kind, lp) {
            (Kind::Main, _) => g.stmt(&f.body)?,
            (Kind::Chunk(caps), Some(l)) => {
                g.bind_caps(params[0], caps);
                let (lo, hi) = (params[1], params[2]);
                let n = g.b.ins().isub(hi, lo);
                g.serial_hoisting(l, lo, n, &mut |g| g.stmt(&l.body))?;
            }
            (Kind::Chunk(_), None) => return Err(cg_err("outlined function without a loop")),
        }
        let zero = g.b.ins().iconst(types::I32, 0);
        g.b.ins().return_(&[zero]);
        g.finish_fail();
        g.b.seal_all_blocks();
        let cfg = g.m.module.isa().frontend_config();
        let b = g.b;
        b.finalize(cfg);
    }
    if want_text || dump_clif {
        let t = format!("; {name}\n{}", ctx.func.display());
        if dump_clif {
            eprintln!("{t}");
        }
        if want_text {
            let _ = writeln!(text, "{t}");
        }
    }
    Ok(Pending { id, name: name.to_string(), ctx })
}
