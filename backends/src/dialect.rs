//! What differs between OpenCL C and CUDA C: qualifiers, thread and block
//! indices, barriers, type names, math functions, literals, and how
//! `f16`/`bf16` values are held.
//!
//! Everything else — statements, operators, the integer and float
//! semantics of SPEC §2 — is in the shared [`Writer`](crate::writer::Writer).

use texpr_dsl::expr::Builtin;
use texpr_dsl::{DType, Target};

use crate::kir::Hw;
use crate::names::Lang;

/// A C expression with its precedence (higher binds tighter): 16 primary,
/// 15 unary and casts, 13 `* / %`, 12 `+ -`, 10 `< <= > >=`, 9 `== !=`,
/// 5 `&&`, 4 `||`, 3 `?:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct C {
    /// The text.
    pub s: String,
    /// Its precedence.
    pub p: u8,
}

impl C {
    /// An identifier, literal, call or subscript.
    pub fn atom(s: impl Into<String>) -> C {
        C { s: s.into(), p: 16 }
    }
    /// Text of a given precedence.
    pub fn new(s: impl Into<String>, p: u8) -> C {
        C { s: s.into(), p }
    }
    /// The text, parenthesized when it binds looser than `min`.
    pub fn at(&self, min: u8) -> String {
        if self.p < min { format!("({})", self.s) } else { self.s.clone() }
    }
    /// `f(args...)`.
    pub fn call(f: &str, args: &[C]) -> C {
        let a: Vec<&str> = args.iter().map(|c| c.s.as_str()).collect();
        C::atom(format!("{f}({})", a.join(", ")))
    }
    /// `(T)x`.
    pub fn cast(t: &str, x: &C) -> C {
        C::new(format!("({t}){}", x.at(15)), 15)
    }
}

/// How `f16`/`bf16` values are held in registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmallFloats {
    /// As `float`, rounded after every operation; stored with conversions
    /// (OpenCL without `cl_khr_fp16`).
    AsFloat,
    /// As the language's own types (`__half`, `__nv_bfloat16`).
    Native,
}

/// A C-family target language.
pub trait Dialect {
    /// The target.
    fn target(&self) -> Target;
    /// Which keywords the name allocator avoids.
    fn lang(&self) -> Lang;
    /// The first lines of the source (pragmas, includes).
    fn preamble(&self, func: &str, f64: bool, f16: bool, bf16: bool) -> String;
    /// How helper functions are declared (`static inline`, `__device__ ...`).
    fn helper_prefix(&self) -> &'static str;
    /// Before a kernel's name.
    fn kernel_prefix(&self) -> &'static str;
    /// A buffer argument.
    fn buffer_arg(&self, ty: &str, name: &str, readonly: bool) -> String;
    /// A pointer to a thread's scratch slice, declared in the kernel.
    fn scratch_decl(&self, ty: &str, name: &str, base: &str, offset: &str) -> String;
    /// A block-shared array declaration.
    fn shared_decl(&self, ty: &str, name: &str, len: i64) -> String;
    /// The block barrier.
    fn barrier(&self) -> &'static str;
    /// A hardware index as an `i64` expression.
    fn hw(&self, h: Hw) -> String;
    /// A line before a loop the schedule unrolled (clang, so PoCL, and
    /// NVIDIA's compilers take `#pragma unroll`; others ignore it).
    fn unroll_pragma(&self) -> Option<&'static str> {
        Some("#pragma unroll")
    }

    /// The type of values of `t` in registers.
    fn value_type(&self, t: DType) -> &'static str;
    /// The element type of a buffer of `t`; `io` for tensors the host
    /// passes (whose layout is Rust's).
    fn storage_type(&self, t: DType, io: bool) -> &'static str;
    /// Bytes per element of a buffer of `t`.
    fn storage_bytes(&self, t: DType, io: bool) -> usize;
    /// The type of a scalar kernel argument of `t`.
    fn param_type(&self, t: DType) -> &'static str;
    /// How `f16`/`bf16` are held.
    fn small_floats(&self) -> SmallFloats;

    /// The suffix of `i64` literals (`L`, `LL`).
    fn i64_suffix(&self) -> &'static str;
    /// The suffix of `u64` literals (`UL`, `ULL`).
    fn u64_suffix(&self) -> &'static str;
    /// A non-finite `f32` (`inf`, `-inf`, NaN).
    fn f32_special(&self, v: f32) -> String;
    /// A non-finite `f64`.
    fn f64_special(&self, v: f64) -> String;

    /// The math function for `f` on `t` (`f32` or `f64`).
    fn math(&self, f: Builtin, t: DType) -> &'static str;
    /// `fmin`/`fmax` for `t` (`f32` or `f64`).
    fn fminmax(&self, max: bool, t: DType) -> &'static str;
    /// `fmod` for `t`.
    fn fmod(&self, t: DType) -> &'static str;
    /// Integer `min`/`max` of two values of `t` (both already of type `t`);
    /// `None`: the writer emits a helper.
    fn int_minmax(&self, max: bool, t: DType, a: &C, b: &C) -> Option<C>;
    /// Wrapping `abs` of a signed integer; `None`: a helper.
    fn int_abs(&self, t: DType, a: &C) -> Option<C>;
    /// The device's saturating conversion of a float (`f32`/`f64`) to a
    /// `t` integer (the helper around it maps NaN to 0); `None`: a portable
    /// helper.
    fn float_to_int(&self, t: DType, x: &C) -> Option<C>;

    /// `f16`/`bf16` value → `float` (only for [`SmallFloats::Native`]).
    fn small_to_f32(&self, t: DType, x: &C) -> C;
    /// `float` → `f16`/`bf16` value, rounded to nearest even.
    fn small_from_f32(&self, t: DType, x: &C) -> Option<C>;
    /// `double` → `f16`/`bf16` value, rounded once.
    fn small_from_f64(&self, t: DType, x: &C) -> Option<C>;
    /// Native `f16`/`bf16` add, sub, mul and neg (`__hadd`...), if any.
    fn small_native_op(&self, op: &str) -> Option<&'static str>;

    /// Reads element `idx` of buffer `name` of `t`.
    fn load(&self, t: DType, io: bool, name: &str, idx: &C) -> C;
    /// Writes `value` to element `idx` (a statement, without `;`).
    fn store(&self, t: DType, io: bool, name: &str, idx: &C, value: &C) -> String;
}

/// OpenCL C 1.2 (runs on PoCL): `f16`/`bf16` stored as `half`/`ushort`,
/// computed in `float`.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenCl;

/// CUDA C++ for NVRTC: native `__half` / `__nv_bfloat16`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cuda;

const AXES: [&str; 3] = ["x", "y", "z"];

fn math_name(f: Builtin) -> &'static str {
    match f {
        Builtin::Exp => "exp",
        Builtin::Exp2 => "exp2",
        Builtin::Ln => "log",
        Builtin::Log2 => "log2",
        Builtin::Sqrt => "sqrt",
        Builtin::Rsqrt => "rsqrt",
        Builtin::Abs => "fabs",
        Builtin::Floor => "floor",
        Builtin::Ceil => "ceil",
        Builtin::Round => "round",
        Builtin::Trunc => "trunc",
        Builtin::Sin => "sin",
        Builtin::Cos => "cos",
        Builtin::Tanh => "tanh",
        Builtin::Erf => "erf",
        Builtin::Pow => "pow",
        Builtin::Fma => "fma",
        // Written by the writer from the others.
        Builtin::Sigmoid => "exp",
        Builtin::Clamp => "clamp",
    }
}

impl Dialect for OpenCl {
    fn target(&self) -> Target {
        Target::OpenCl
    }
    fn lang(&self) -> Lang {
        Lang::OpenCl
    }
    fn preamble(&self, func: &str, f64: bool, _f16: bool, _bf16: bool) -> String {
        let mut s = format!("// `{func}`: OpenCL C 1.2, generated by texpr.\n");
        // Unfused a * b + c, as in Rust and the reference interpreter.
        s.push_str("#pragma OPENCL FP_CONTRACT OFF\n");
        if f64 {
            s.push_str("#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n");
        }
        s
    }
    fn helper_prefix(&self) -> &'static str {
        "static inline"
    }
    fn kernel_prefix(&self) -> &'static str {
        "__kernel void"
    }
    fn buffer_arg(&self, ty: &str, name: &str, readonly: bool) -> String {
        if readonly {
            format!("__global const {ty}* restrict {name}")
        } else {
            format!("__global {ty}* restrict {name}")
        }
    }
    fn scratch_decl(&self, ty: &str, name: &str, base: &str, offset: &str) -> String {
        format!("__global {ty}* {name} = {base} + {offset};")
    }
    fn shared_decl(&self, ty: &str, name: &str, len: i64) -> String {
        format!("__local {ty} {name}[{len}];")
    }
    fn barrier(&self) -> &'static str {
        "barrier(CLK_LOCAL_MEM_FENCE);"
    }
    fn hw(&self, h: Hw) -> String {
        let ax = |a: usize| a.min(2);
        match h {
            Hw::Thread(a) => format!("(long)get_local_id({})", ax(a)),
            Hw::Block(a) => format!("(long)get_group_id({})", ax(a)),
            Hw::BlockDim(a) => format!("(long)get_local_size({})", ax(a)),
            Hw::GridDim(a) => format!("(long)get_num_groups({})", ax(a)),
            Hw::FlatThread => "(long)(get_local_id(0) + get_local_size(0) * (get_local_id(1) + get_local_size(1) * get_local_id(2)))".into(),
            Hw::BlockSize => "(long)(get_local_size(0) * get_local_size(1) * get_local_size(2))".into(),
            Hw::GlobalThread => "(long)((get_group_id(0) + get_num_groups(0) * (get_group_id(1) + get_num_groups(1) * get_group_id(2))) * (get_local_size(0) * get_local_size(1) * get_local_size(2)) + get_local_id(0) + get_local_size(0) * (get_local_id(1) + get_local_size(1) * get_local_id(2)))".into(),
            Hw::GlobalX => "(long)get_global_id(0)".into(),
            Hw::GlobalSizeX => "(long)get_global_size(0)".into(),
        }
    }
    fn value_type(&self, t: DType) -> &'static str {
        match t {
            DType::Bool => "bool",
            DType::I8 => "char",
            DType::I16 => "short",
            DType::I32 => "int",
            DType::I64 => "long",
            DType::U8 => "uchar",
            DType::U16 => "ushort",
            DType::U32 => "uint",
            DType::U64 => "ulong",
            DType::F16 | DType::BF16 | DType::F32 => "float",
            DType::F64 => "double",
        }
    }
    fn storage_type(&self, t: DType, io: bool) -> &'static str {
        match (t, io) {
            (DType::Bool, _) => "uchar",
            (DType::F16, true) => "half",
            (DType::BF16, true) => "ushort",
            _ => self.value_type(t),
        }
    }
    fn storage_bytes(&self, t: DType, io: bool) -> usize {
        match (t, io) {
            (DType::F16 | DType::BF16, false) => 4,
            _ => t.bytes(),
        }
    }
    fn param_type(&self, t: DType) -> &'static str {
        match t {
            DType::Bool => "uchar",
            t => self.value_type(t),
        }
    }
    fn small_floats(&self) -> SmallFloats {
        SmallFloats::AsFloat
    }
    fn i64_suffix(&self) -> &'static str {
        "L"
    }
    fn u64_suffix(&self) -> &'static str {
        "UL"
    }
    fn f32_special(&self, v: f32) -> String {
        if v.is_nan() {
            "NAN".into()
        } else if v > 0.0 {
            "INFINITY".into()
        } else {
            "-INFINITY".into()
        }
    }
    fn f64_special(&self, v: f64) -> String {
        format!("(double){}", self.f32_special(v as f32))
    }
    fn math(&self, f: Builtin, _t: DType) -> &'static str {
        math_name(f)
    }
    fn fminmax(&self, max: bool, _t: DType) -> &'static str {
        if max { "fmax" } else { "fmin" }
    }
    fn fmod(&self, _t: DType) -> &'static str {
        "fmod"
    }
    fn int_minmax(&self, max: bool, _t: DType, a: &C, b: &C) -> Option<C> {
        Some(C::call(if max { "max" } else { "min" }, &[a.clone(), b.clone()]))
    }
    fn int_abs(&self, _t: DType, _a: &C) -> Option<C> {
        // The helper (a multiply by ±1). PoCL's `abs(long)` let the
        // compiler assume a non-negative result, so `min(abs(LONG_MIN), 0)`
        // (which wraps to LONG_MIN) became 0.
        None
    }
    fn float_to_int(&self, t: DType, x: &C) -> Option<C> {
        Some(C::call(&format!("convert_{}_sat", self.value_type(t)), std::slice::from_ref(x)))
    }
    fn small_to_f32(&self, _t: DType, x: &C) -> C {
        x.clone()
    }
    fn small_from_f32(&self, _t: DType, _x: &C) -> Option<C> {
        None
    }
    fn small_from_f64(&self, _t: DType, _x: &C) -> Option<C> {
        None
    }
    fn small_native_op(&self, _op: &str) -> Option<&'static str> {
        None
    }
    fn load(&self, t: DType, io: bool, name: &str, idx: &C) -> C {
        match (t, io) {
            (DType::F16, true) => C::atom(format!("vload_half({}, {name})", idx.s)),
            (DType::BF16, true) => C::atom(format!("tx_bf16_to_f32({name}[{}])", idx.s)),
            (DType::Bool, _) => C::new(format!("{name}[{}] != 0", idx.s), 9),
            _ => C::atom(format!("{name}[{}]", idx.s)),
        }
    }
    fn store(&self, t: DType, io: bool, name: &str, idx: &C, value: &C) -> String {
        match (t, io) {
            (DType::F16, true) => format!("vstore_half_rte({}, {}, {name})", value.s, idx.s),
            (DType::BF16, true) => format!("{name}[{}] = tx_f32_to_bf16({})", idx.s, value.s),
            (DType::Bool, _) => format!("{name}[{}] = (uchar){}", idx.s, value.at(15)),
            _ => format!("{name}[{}] = {}", idx.s, value.s),
        }
    }
}

impl Dialect for Cuda {
    fn target(&self) -> Target {
        Target::Cuda
    }
    fn lang(&self) -> Lang {
        Lang::Cuda
    }
    fn preamble(&self, func: &str, _f64: bool, f16: bool, bf16: bool) -> String {
        let mut s = format!("// `{func}`: CUDA C++ for NVRTC, generated by texpr.\n");
        if f16 {
            s.push_str("#include <cuda_fp16.h>\n");
        }
        if bf16 {
            s.push_str("#include <cuda_bf16.h>\n");
        }
        s
    }
    fn helper_prefix(&self) -> &'static str {
        "static __device__ __forceinline__"
    }
    fn kernel_prefix(&self) -> &'static str {
        "extern \"C\" __global__ void"
    }
    fn buffer_arg(&self, ty: &str, name: &str, readonly: bool) -> String {
        if readonly { format!("const {ty}* __restrict__ {name}") } else { format!("{ty}* __restrict__ {name}") }
    }
    fn scratch_decl(&self, ty: &str, name: &str, base: &str, offset: &str) -> String {
        format!("{ty}* {name} = {base} + {offset};")
    }
    fn shared_decl(&self, ty: &str, name: &str, len: i64) -> String {
        format!("__shared__ {ty} {name}[{len}];")
    }
    fn barrier(&self) -> &'static str {
        "__syncthreads();"
    }
    fn hw(&self, h: Hw) -> String {
        let ax = |a: usize| AXES[a.min(2)];
        match h {
            Hw::Thread(a) => format!("(long long)threadIdx.{}", ax(a)),
            Hw::Block(a) => format!("(long long)blockIdx.{}", ax(a)),
            Hw::BlockDim(a) => format!("(long long)blockDim.{}", ax(a)),
            Hw::GridDim(a) => format!("(long long)gridDim.{}", ax(a)),
            Hw::FlatThread => "(long long)(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z))".into(),
            Hw::BlockSize => "(long long)(blockDim.x * blockDim.y * blockDim.z)".into(),
            Hw::GlobalThread => "((long long)blockIdx.x + (long long)gridDim.x * ((long long)blockIdx.y + (long long)gridDim.y * (long long)blockIdx.z)) * (long long)(blockDim.x * blockDim.y * blockDim.z) + (long long)(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z))".into(),
            Hw::GlobalX => "(long long)blockIdx.x * (long long)blockDim.x + (long long)threadIdx.x".into(),
            Hw::GlobalSizeX => "(long long)gridDim.x * (long long)blockDim.x".into(),
        }
    }
    fn value_type(&self, t: DType) -> &'static str {
        match t {
            DType::Bool => "bool",
            DType::I8 => "signed char",
            DType::I16 => "short",
            DType::I32 => "int",
            DType::I64 => "long long",
            DType::U8 => "unsigned char",
            DType::U16 => "unsigned short",
            DType::U32 => "unsigned int",
            DType::U64 => "unsigned long long",
            DType::F16 => "__half",
            DType::BF16 => "__nv_bfloat16",
            DType::F32 => "float",
            DType::F64 => "double",
        }
    }
    fn storage_type(&self, t: DType, _io: bool) -> &'static str {
        self.value_type(t)
    }
    fn storage_bytes(&self, t: DType, _io: bool) -> usize {
        t.bytes()
    }
    fn param_type(&self, t: DType) -> &'static str {
        self.value_type(t)
    }
    fn small_floats(&self) -> SmallFloats {
        SmallFloats::Native
    }
    fn i64_suffix(&self) -> &'static str {
        "LL"
    }
    fn u64_suffix(&self) -> &'static str {
        "ULL"
    }
    fn f32_special(&self, v: f32) -> String {
        let bits: u32 = if v.is_nan() {
            0x7fc0_0000
        } else if v > 0.0 {
            0x7f80_0000
        } else {
            0xff80_0000
        };
        format!("__int_as_float((int)0x{bits:08x}u)")
    }
    fn f64_special(&self, v: f64) -> String {
        let bits: u64 = if v.is_nan() {
            0x7ff8_0000_0000_0000
        } else if v > 0.0 {
            0x7ff0_0000_0000_0000
        } else {
            0xfff0_0000_0000_0000
        };
        format!("__longlong_as_double((long long)0x{bits:016x}ULL)")
    }
    fn math(&self, f: Builtin, t: DType) -> &'static str {
        if t == DType::F64 {
            return math_name(f);
        }
        match f {
            Builtin::Exp => "expf",
            Builtin::Exp2 => "exp2f",
            Builtin::Ln => "logf",
            Builtin::Log2 => "log2f",
            Builtin::Sqrt => "sqrtf",
            Builtin::Rsqrt => "rsqrtf",
            Builtin::Abs => "fabsf",
            Builtin::Floor => "floorf",
            Builtin::Ceil => "ceilf",
            Builtin::Round => "roundf",
            Builtin::Trunc => "truncf",
            Builtin::Sin => "sinf",
            Builtin::Cos => "cosf",
            Builtin::Tanh => "tanhf",
            Builtin::Erf => "erff",
            Builtin::Pow => "powf",
            Builtin::Fma => "fmaf",
            Builtin::Sigmoid => "expf",
            Builtin::Clamp => "clamp",
        }
    }
    fn fminmax(&self, max: bool, t: DType) -> &'static str {
        match (max, t == DType::F64) {
            (true, true) => "fmax",
            (false, true) => "fmin",
            (true, false) => "fmaxf",
            (false, false) => "fminf",
        }
    }
    fn fmod(&self, t: DType) -> &'static str {
        if t == DType::F64 { "fmod" } else { "fmodf" }
    }
    fn int_minmax(&self, max: bool, t: DType, a: &C, b: &C) -> Option<C> {
        // CUDA's min/max are overloaded for int, unsigned int, long long
        // and unsigned long long.
        match t {
            DType::I32 | DType::U32 | DType::I64 | DType::U64 => {
                Some(C::call(if max { "max" } else { "min" }, &[a.clone(), b.clone()]))
            }
            _ => None,
        }
    }
    fn int_abs(&self, _t: DType, _a: &C) -> Option<C> {
        None
    }
    fn float_to_int(&self, _t: DType, _x: &C) -> Option<C> {
        None
    }
    fn small_to_f32(&self, t: DType, x: &C) -> C {
        C::call(if t == DType::BF16 { "__bfloat162float" } else { "__half2float" }, std::slice::from_ref(x))
    }
    fn small_from_f32(&self, t: DType, x: &C) -> Option<C> {
        Some(C::call(if t == DType::BF16 { "__float2bfloat16_rn" } else { "__float2half_rn" }, std::slice::from_ref(x)))
    }
    fn small_from_f64(&self, t: DType, x: &C) -> Option<C> {
        Some(C::call(if t == DType::BF16 { "__double2bfloat16" } else { "__double2half" }, std::slice::from_ref(x)))
    }
    fn small_native_op(&self, op: &str) -> Option<&'static str> {
        match op {
            "+" => Some("__hadd"),
            "-" => Some("__hsub"),
            "*" => Some("__hmul"),
            "neg" => Some("__hneg"),
            "<" => Some("__hlt"),
            "<=" => Some("__hle"),
            ">" => Some("__hgt"),
            ">=" => Some("__hge"),
            "==" => Some("__heq"),
            "!=" => Some("__hneu"),
            _ => None,
        }
    }
    fn load(&self, _t: DType, _io: bool, name: &str, idx: &C) -> C {
        C::atom(format!("{name}[{}]", idx.s))
    }
    fn store(&self, _t: DType, _io: bool, name: &str, idx: &C, value: &C) -> String {
        format!("{name}[{}] = {}", idx.s, value.s)
    }
}
