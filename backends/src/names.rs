//! C identifiers for texpr names: sanitized, unique in their scope, and
//! never a keyword, type, built-in or macro of the target language.
//!
//! User names (`k.outer`, `a_s`, `M`) are kept as far as C allows: dots
//! and other characters become `_`, a leading digit or a reserved word gets
//! a trailing `_`, and a name already live in an enclosing scope gets a
//! numeric suffix (`j_1`). Names starting with `tx_` are texpr's own
//! (helpers); names with a double underscore or a leading underscore are
//! reserved by C and are avoided.

use std::collections::HashMap;

/// Words every C-family target reserves: C99 keywords, common macros and
/// library functions a kernel may call.
const C_RESERVED: &[&str] = &[
    "auto",
    "break",
    "case",
    "char",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "float",
    "for",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
    "bool",
    "true",
    "false",
    "NULL",
    "INFINITY",
    "NAN",
    "HUGE_VAL",
    "HUGE_VALF",
    "MAXFLOAT",
    "FLT_MAX",
    "FLT_MIN",
    "DBL_MAX",
    "DBL_MIN",
    "INT_MAX",
    "INT_MIN",
    "LONG_MAX",
    "LONG_MIN",
    "CHAR_BIT",
    "M_PI",
    "M_E",
    "main",
    "min",
    "max",
    "abs",
    "fabs",
    "fabsf",
    "exp",
    "expf",
    "exp2",
    "exp2f",
    "log",
    "logf",
    "log2",
    "log2f",
    "sqrt",
    "sqrtf",
    "rsqrt",
    "rsqrtf",
    "floor",
    "floorf",
    "ceil",
    "ceilf",
    "round",
    "roundf",
    "trunc",
    "truncf",
    "sin",
    "sinf",
    "cos",
    "cosf",
    "tan",
    "tanh",
    "tanhf",
    "erf",
    "erff",
    "pow",
    "powf",
    "fma",
    "fmaf",
    "fmin",
    "fminf",
    "fmax",
    "fmaxf",
    "fmod",
    "fmodf",
    "clamp",
    "select",
    "isnan",
    "isinf",
    "signbit",
    "size_t",
    "ptrdiff_t",
    "printf",
    "assert",
    "complex",
    "imaginary",
    "asm",
    "alignas",
    "alignof",
    "static_assert",
    "thread_local",
    "noreturn",
];

/// OpenCL C: address spaces, vector and scalar types, work-item and
/// conversion built-ins.
const OPENCL_RESERVED: &[&str] = &[
    "kernel",
    "global",
    "local",
    "constant",
    "private",
    "generic",
    "read_only",
    "write_only",
    "read_write",
    "uniform",
    "pipe",
    "half",
    "uchar",
    "ushort",
    "uint",
    "ulong",
    "quad",
    "char2",
    "char3",
    "char4",
    "char8",
    "char16",
    "uchar2",
    "uchar4",
    "short2",
    "short4",
    "ushort2",
    "ushort4",
    "int2",
    "int3",
    "int4",
    "int8",
    "int16",
    "uint2",
    "uint4",
    "long2",
    "long4",
    "ulong2",
    "ulong4",
    "float2",
    "float3",
    "float4",
    "float8",
    "float16",
    "double2",
    "double4",
    "half2",
    "half4",
    "image1d_t",
    "image2d_t",
    "image3d_t",
    "sampler_t",
    "event_t",
    "barrier",
    "mem_fence",
    "get_global_id",
    "get_local_id",
    "get_group_id",
    "get_global_size",
    "get_local_size",
    "get_num_groups",
    "get_work_dim",
    "get_global_offset",
    "vload_half",
    "vstore_half",
    "vstore_half_rte",
    "as_float",
    "as_uint",
    "as_int",
    "as_ushort",
    "as_double",
    "as_ulong",
    "convert_float",
    "convert_int",
    "convert_float_rtz",
    "native_exp",
    "half_exp",
    "mad",
    "mix",
    "step",
    "sign",
    "dot",
    "cross",
    "length",
    "normalize",
    "atomic_add",
    "atom_add",
    "vec_step",
    "cl_khr_fp64",
    "cl_khr_fp16",
    "OPENCL",
    "FP_CONTRACT",
    "CLK_LOCAL_MEM_FENCE",
    "CLK_GLOBAL_MEM_FENCE",
];

/// CUDA C++: C++ keywords, CUDA qualifiers, built-in variables and the
/// intrinsics the writer uses.
const CUDA_RESERVED: &[&str] = &[
    "and",
    "and_eq",
    "bitand",
    "bitor",
    "catch",
    "class",
    "compl",
    "concept",
    "consteval",
    "constexpr",
    "constinit",
    "const_cast",
    "co_await",
    "co_return",
    "co_yield",
    "decltype",
    "delete",
    "dynamic_cast",
    "explicit",
    "export",
    "friend",
    "mutable",
    "namespace",
    "new",
    "noexcept",
    "not",
    "not_eq",
    "nullptr",
    "operator",
    "or",
    "or_eq",
    "private",
    "protected",
    "public",
    "reinterpret_cast",
    "requires",
    "static_cast",
    "template",
    "this",
    "throw",
    "try",
    "typeid",
    "typename",
    "using",
    "virtual",
    "wchar_t",
    "xor",
    "xor_eq",
    "char8_t",
    "char16_t",
    "char32_t",
    "threadIdx",
    "blockIdx",
    "blockDim",
    "gridDim",
    "warpSize",
    "dim3",
    "uint3",
    "float2",
    "float4",
    "int2",
    "int4",
    "half",
    "__half",
    "nv_bfloat16",
    "std",
    "cuda",
    "__syncthreads",
    "atomicAdd",
    "min",
    "max",
    "llmin",
    "llmax",
    "umin",
    "umax",
    "ullmin",
    "ullmax",
];

/// Which language's words to avoid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// OpenCL C 1.2.
    OpenCl,
    /// CUDA C++ (NVRTC).
    Cuda,
}

/// `true` if `name` is reserved in `lang` (or by texpr's helpers).
pub fn is_reserved(lang: Lang, name: &str) -> bool {
    name.starts_with("tx_")
        || name.starts_with('_')
        || name.contains("__")
        || C_RESERVED.contains(&name)
        || match lang {
            Lang::OpenCl => OPENCL_RESERVED.contains(&name),
            Lang::Cuda => CUDA_RESERVED.contains(&name),
        }
}

/// Turns any string into a C identifier (not checked against keywords).
pub fn sanitize(name: &str) -> String {
    let mut s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    while s.contains("__") {
        s = s.replace("__", "_");
    }
    let s = s.trim_start_matches('_').to_string();
    if s.is_empty() {
        return "v".to_string();
    }
    if s.as_bytes()[0].is_ascii_digit() { format!("v{s}") } else { s }
}

/// Allocates unique, legal identifiers within nested scopes.
///
/// A name is free when no enclosing scope has it live, so a declaration
/// never shadows a name still in use, and sibling scopes reuse names.
#[derive(Clone, Debug)]
pub struct NameAlloc {
    lang: Lang,
    /// Live names, with the depth of the scope that declared them.
    live: HashMap<String, usize>,
    /// Names declared per open scope, innermost last.
    scopes: Vec<Vec<String>>,
}

impl NameAlloc {
    /// An allocator with one (outermost) open scope.
    pub fn new(lang: Lang) -> NameAlloc {
        NameAlloc { lang, live: HashMap::new(), scopes: vec![vec![]] }
    }

    /// A fresh identifier like `hint`, live in the innermost scope.
    pub fn fresh(&mut self, hint: &str) -> String {
        let mut base = sanitize(hint);
        if is_reserved(self.lang, &base) {
            base.push('_');
            base = sanitize(&base);
            if is_reserved(self.lang, &base) {
                base = format!("v_{base}");
            }
        }
        let mut name = base.clone();
        let mut n = 1;
        while self.live.contains_key(&name) || is_reserved(self.lang, &name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.live.insert(name.clone(), self.scopes.len());
        if let Some(s) = self.scopes.last_mut() {
            s.push(name.clone());
        }
        name
    }

    /// Opens a scope.
    pub fn push(&mut self) {
        self.scopes.push(vec![]);
    }

    /// Closes the innermost scope: its names are free again.
    pub fn pop(&mut self) {
        if self.scopes.len() > 1
            && let Some(names) = self.scopes.pop()
        {
            for n in names {
                self.live.remove(&n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_and_avoids_keywords() {
        let mut n = NameAlloc::new(Lang::OpenCl);
        assert_eq!(n.fresh("k.outer"), "k_outer");
        assert_eq!(n.fresh("int"), "int_");
        assert_eq!(n.fresh("half"), "half_");
        assert_eq!(n.fresh("0x"), "v0x");
        assert_eq!(n.fresh("__a"), "a");
        assert_eq!(n.fresh("tx_div"), "v_tx_div_");
        let mut c = NameAlloc::new(Lang::Cuda);
        assert_eq!(c.fresh("half"), "half_");
        assert_eq!(c.fresh("class"), "class_");
        assert_eq!(c.fresh("local"), "local");
    }

    #[test]
    fn scopes_free_names() {
        let mut n = NameAlloc::new(Lang::Cuda);
        assert_eq!(n.fresh("i"), "i");
        n.push();
        assert_eq!(n.fresh("i"), "i_1");
        assert_eq!(n.fresh("j"), "j");
        n.pop();
        n.push();
        assert_eq!(n.fresh("j"), "j");
        n.pop();
        assert_eq!(n.fresh("i"), "i_1");
    }
}
