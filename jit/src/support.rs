//! What JIT code calls, and how JIT code is entered.
//!
//! - [`enter`]: the one way into JIT code. On x86_64 with AVX it executes
//!   `vzeroupper` first: Cranelift moves and spills with legacy-SSE
//!   instructions, which run 100–300× slower while YMM/ZMM upper halves are
//!   dirty (see `shared/CRANELIFT.md`). Every entry goes through it: the
//!   kernel's main function and every chunk of a parallel loop.
//! - [`SYMBOLS`]: every function JIT code may import, registered with
//!   `JITBuilder::symbol` (an unresolved import would panic in
//!   `finalize_definitions`). Cranelift's own libcalls (`ceilf`, `fmaf`,
//!   `memset`, ...) are renamed to `texpr_lc_*` and provided here too, so no
//!   name is ever looked up with `dlsym`.
//! - Heap allocation for temporaries, parallel loops on rayon's pool, and
//!   the exact `f64` math functions and `f16`/`bf16` conversions that
//!   generated code calls where it has no inline sequence.
//!
//! Generated functions return an `i32` status: 0 on success, 1 when a heap
//! allocation failed (reported as an error by the caller, never a panic).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use half::{bf16, f16};
use rayon::prelude::*;

/// The main entry of a kernel: buffer pointers (inputs then outputs), dim
/// values, parameter bits (one 8-byte slot each).
pub(crate) type EntryFn = unsafe extern "C" fn(*const *mut u8, *const i64, *const u64) -> i32;

/// An outlined parallel-loop body: captured environment, first and
/// one-past-last iteration.
pub(crate) type ChunkFn = unsafe extern "C" fn(*const u8, i64, i64) -> i32;

fn has_avx() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static AVX: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AVX.get_or_init(|| std::arch::is_x86_feature_detected!("avx"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Clears the upper halves of the vector registers (when the CPU has them).
#[inline(always)]
fn clear_upper() {
    #[cfg(target_arch = "x86_64")]
    if has_avx() {
        // SAFETY: `vzeroupper` exists on every AVX CPU (checked above) and
        // only zeroes bits 128.. of ymm/zmm registers, which no live Rust
        // value occupies across this point (the caller saves nothing there:
        // upper halves are caller-saved and dead at a call boundary).
        unsafe { std::arch::asm!("vzeroupper", options(nomem, nostack, preserves_flags)) };
    }
}

/// Calls a kernel's main function.
///
/// # Safety
/// `f` must be a finalized function of a live module with the [`EntryFn`]
/// signature, and the pointers must be what it was compiled for.
#[inline(never)]
pub(crate) unsafe fn enter(f: EntryFn, bufs: *const *mut u8, dims: *const i64, params: *const u64) -> i32 {
    clear_upper();
    // SAFETY: forwarded from the caller.
    unsafe { f(bufs, dims, params) }
}

/// Calls an outlined parallel-loop body on iterations `lo..hi`.
///
/// # Safety
/// `f` must be an outlined chunk function of a live, finalized module with
/// the [`ChunkFn`] signature, and `env` the environment its caller built
/// for it, alive for the call.
#[inline(never)]
unsafe fn enter_chunk(f: ChunkFn, env: *const u8, lo: i64, hi: i64) -> i32 {
    clear_upper();
    // SAFETY: forwarded from `texpr_parallel_for`'s caller (JIT code).
    unsafe { f(env, lo, hi) }
}

/// Loops with less work than this (innermost statements, as estimated by
/// JIT code) run on the calling thread: waking the pool's threads and
/// waiting for them costs 5–20 µs, more than such a loop takes.
pub(crate) static PARALLEL_MIN_WORK: AtomicI64 = AtomicI64::new(1 << 15);

/// Runs `f(env, lo, hi)` over chunks of `min..min + extent` on rayon's pool
/// (or on this thread when `extent * work` is small, `work` being the
/// estimated work of one iteration). Returns the first non-zero status of
/// a chunk, or 0.
///
/// # Safety
/// Called only by JIT code: `f` is the address of an outlined chunk function
/// of the calling module ([`ChunkFn`]), `env` its environment on the
/// caller's stack, alive until this returns, and `min + extent` fits `i64`
/// (the call's overflow check proved the loop's end does).
unsafe extern "C" fn texpr_parallel_for(f: *const u8, env: *const u8, min: i64, extent: i64, work: i64) -> i32 {
    if extent <= 0 {
        return 0;
    }
    // SAFETY: JIT code passes the address of an outlined function with the
    // `ChunkFn` signature.
    let f: ChunkFn = unsafe { std::mem::transmute::<*const u8, ChunkFn>(f) };
    let threads = rayon::current_num_threads().max(1) as i64;
    if threads == 1 || extent == 1 || extent.saturating_mul(work.max(1)) < PARALLEL_MIN_WORK.load(Ordering::Relaxed) {
        // SAFETY: as above; env outlives the call.
        return unsafe { enter_chunk(f, env, min, min + extent) };
    }
    // A few chunks per thread balance uneven iterations without much
    // scheduling overhead; each chunk is a contiguous range, so every
    // iteration runs exactly once and results do not depend on timing.
    let chunks = extent.min(threads * 4);
    let failed = AtomicBool::new(false);
    let env = env as usize;
    (0..chunks).into_par_iter().for_each(|c| {
        // In i128: `extent * c` overflows i64 for extents past 2^60.
        let at = |c: i64| min + (extent as i128 * c as i128 / chunks as i128) as i64;
        let (lo, hi) = (at(c), at(c + 1));
        // SAFETY: the environment lives on the caller's stack until this
        // function returns, which is after every chunk has run.
        if unsafe { enter_chunk(f, env as *const u8, lo, hi) } != 0 {
            failed.store(true, Ordering::Relaxed);
        }
    });
    failed.load(Ordering::Relaxed) as i32
}

const ALIGN: usize = 64;

/// Allocates `bytes` zeroed bytes, 64-byte aligned; null on failure.
extern "C" fn texpr_alloc(bytes: i64) -> *mut u8 {
    let size = usize::try_from(bytes.max(1)).unwrap_or(usize::MAX);
    match std::alloc::Layout::from_size_align(size, ALIGN) {
        // SAFETY: the layout has a non-zero size.
        Ok(layout) => unsafe { std::alloc::alloc_zeroed(layout) },
        Err(_) => std::ptr::null_mut(),
    }
}

/// Frees what [`texpr_alloc`] returned for the same `bytes`.
extern "C" fn texpr_free(ptr: *mut u8, bytes: i64) {
    if ptr.is_null() {
        return;
    }
    let size = usize::try_from(bytes.max(1)).unwrap_or(usize::MAX);
    if let Ok(layout) = std::alloc::Layout::from_size_align(size, ALIGN) {
        // SAFETY: `ptr` came from `texpr_alloc(bytes)`, which used this layout.
        unsafe { std::alloc::dealloc(ptr, layout) }
    }
}

macro_rules! f64_fns {
    ($($name:ident($($a:ident),*) => $body:expr;)*) => {
        $(extern "C" fn $name($($a: f64),*) -> f64 { $body })*
    };
}

f64_fns! {
    texpr_exp_f64(x) => x.exp();
    texpr_exp2_f64(x) => x.exp2();
    texpr_ln_f64(x) => x.ln();
    texpr_log2_f64(x) => x.log2();
    texpr_sin_f64(x) => x.sin();
    texpr_cos_f64(x) => x.cos();
    texpr_tanh_f64(x) => x.tanh();
    texpr_sigmoid_f64(x) => 1.0 / (1.0 + (-x).exp());
    texpr_erf_f64(x) => libm::erf(x);
    texpr_pow_f64(x, y) => x.powf(y);
    texpr_fmod_f64(x, y) => x % y;
}

extern "C" fn texpr_fmod_f32(x: f32, y: f32) -> f32 {
    x % y
}
extern "C" fn texpr_f32_to_f16(x: f32) -> i32 {
    f16::from_f32(x).to_bits() as i32
}
extern "C" fn texpr_f64_to_f16(x: f64) -> i32 {
    f16::from_f64(x).to_bits() as i32
}
extern "C" fn texpr_f16_to_f32(x: i32) -> f32 {
    f16::from_bits(x as u16).to_f32()
}
extern "C" fn texpr_f32_to_bf16(x: f32) -> i32 {
    bf16::from_f32(x).to_bits() as i32
}
extern "C" fn texpr_f64_to_bf16(x: f64) -> i32 {
    bf16::from_f64(x).to_bits() as i32
}

// Cranelift's libcalls, under our names.
extern "C" fn lc_ceilf(x: f32) -> f32 {
    x.ceil()
}
extern "C" fn lc_ceil(x: f64) -> f64 {
    x.ceil()
}
extern "C" fn lc_floorf(x: f32) -> f32 {
    x.floor()
}
extern "C" fn lc_floor(x: f64) -> f64 {
    x.floor()
}
extern "C" fn lc_truncf(x: f32) -> f32 {
    x.trunc()
}
extern "C" fn lc_trunc(x: f64) -> f64 {
    x.trunc()
}
extern "C" fn lc_nearbyintf(x: f32) -> f32 {
    x.round_ties_even()
}
extern "C" fn lc_nearbyint(x: f64) -> f64 {
    x.round_ties_even()
}
extern "C" fn lc_fmaf(x: f32, y: f32, z: f32) -> f32 {
    x.mul_add(y, z)
}
extern "C" fn lc_fma(x: f64, y: f64, z: f64) -> f64 {
    x.mul_add(y, z)
}
unsafe extern "C" fn lc_memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    // SAFETY: Cranelift emits this for non-overlapping copies of `n` bytes.
    unsafe { std::ptr::copy_nonoverlapping(s, d, n) };
    d
}
unsafe extern "C" fn lc_memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    // SAFETY: Cranelift emits this for copies of `n` valid bytes.
    unsafe { std::ptr::copy(s, d, n) };
    d
}
unsafe extern "C" fn lc_memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: Cranelift emits this for `n` writable bytes.
    unsafe { std::ptr::write_bytes(d, c as u8, n) };
    d
}
unsafe extern "C" fn lc_memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: Cranelift emits this for `n` readable bytes on both sides.
    let (x, y) = unsafe { (std::slice::from_raw_parts(a, n), std::slice::from_raw_parts(b, n)) };
    x.cmp(y) as i32
}

/// Cranelift's libcall names, mapped to the `texpr_lc_*` symbols below.
pub(crate) fn libcall_name(lc: cranelift_codegen::ir::LibCall) -> String {
    use cranelift_codegen::ir::LibCall as L;
    match lc {
        L::CeilF32 => "texpr_lc_ceilf",
        L::CeilF64 => "texpr_lc_ceil",
        L::FloorF32 => "texpr_lc_floorf",
        L::FloorF64 => "texpr_lc_floor",
        L::TruncF32 => "texpr_lc_truncf",
        L::TruncF64 => "texpr_lc_trunc",
        L::NearestF32 => "texpr_lc_nearbyintf",
        L::NearestF64 => "texpr_lc_nearbyint",
        L::FmaF32 => "texpr_lc_fmaf",
        L::FmaF64 => "texpr_lc_fma",
        L::Memcpy => "texpr_lc_memcpy",
        L::Memset => "texpr_lc_memset",
        L::Memmove => "texpr_lc_memmove",
        L::Memcmp => "texpr_lc_memcmp",
        // Never emitted: no probestack (disabled), no TLS, and pshufb only
        // without SSSE3. Unregistered on purpose: the name documents why.
        other => return format!("texpr_unsupported_libcall_{other}"),
    }
    .to_string()
}

/// Every symbol JIT code may import.
pub(crate) fn symbols() -> Vec<(&'static str, *const u8)> {
    vec![
        ("texpr_parallel_for", texpr_parallel_for as *const u8),
        ("texpr_alloc", texpr_alloc as *const u8),
        ("texpr_free", texpr_free as *const u8),
        ("texpr_exp_f64", texpr_exp_f64 as *const u8),
        ("texpr_exp2_f64", texpr_exp2_f64 as *const u8),
        ("texpr_ln_f64", texpr_ln_f64 as *const u8),
        ("texpr_log2_f64", texpr_log2_f64 as *const u8),
        ("texpr_sin_f64", texpr_sin_f64 as *const u8),
        ("texpr_cos_f64", texpr_cos_f64 as *const u8),
        ("texpr_tanh_f64", texpr_tanh_f64 as *const u8),
        ("texpr_sigmoid_f64", texpr_sigmoid_f64 as *const u8),
        ("texpr_erf_f64", texpr_erf_f64 as *const u8),
        ("texpr_pow_f64", texpr_pow_f64 as *const u8),
        ("texpr_fmod_f64", texpr_fmod_f64 as *const u8),
        ("texpr_fmod_f32", texpr_fmod_f32 as *const u8),
        ("texpr_f32_to_f16", texpr_f32_to_f16 as *const u8),
        ("texpr_f64_to_f16", texpr_f64_to_f16 as *const u8),
        ("texpr_f16_to_f32", texpr_f16_to_f32 as *const u8),
        ("texpr_f32_to_bf16", texpr_f32_to_bf16 as *const u8),
        ("texpr_f64_to_bf16", texpr_f64_to_bf16 as *const u8),
        ("texpr_lc_ceilf", lc_ceilf as *const u8),
        ("texpr_lc_ceil", lc_ceil as *const u8),
        ("texpr_lc_floorf", lc_floorf as *const u8),
        ("texpr_lc_floor", lc_floor as *const u8),
        ("texpr_lc_truncf", lc_truncf as *const u8),
        ("texpr_lc_trunc", lc_trunc as *const u8),
        ("texpr_lc_nearbyintf", lc_nearbyintf as *const u8),
        ("texpr_lc_nearbyint", lc_nearbyint as *const u8),
        ("texpr_lc_fmaf", lc_fmaf as *const u8),
        ("texpr_lc_fma", lc_fma as *const u8),
        ("texpr_lc_memcpy", lc_memcpy as *const u8),
        ("texpr_lc_memmove", lc_memmove as *const u8),
        ("texpr_lc_memset", lc_memset as *const u8),
        ("texpr_lc_memcmp", lc_memcmp as *const u8),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_is_zeroed_and_aligned() {
        let p = texpr_alloc(1000);
        assert!(!p.is_null());
        assert_eq!(p as usize % ALIGN, 0);
        // SAFETY: 1000 bytes were allocated.
        let s = unsafe { std::slice::from_raw_parts(p, 1000) };
        assert!(s.iter().all(|b| *b == 0));
        texpr_free(p, 1000);
        let z = texpr_alloc(0);
        assert!(!z.is_null());
        texpr_free(z, 0);
    }

    #[test]
    fn huge_alloc_fails_cleanly() {
        assert!(texpr_alloc(i64::MAX).is_null());
    }
}
