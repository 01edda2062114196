//! texpr: a tensor compiler embedded in Rust.
//!
//! A `tensor_expr!` block captures an operator's *definition* (what to
//! compute) and its *schedules* (how to loop over it), checks both at
//! compile time, and lowers them to a loop nest that runs through a
//! Cranelift JIT on CPUs or is emitted as OpenCL C or CUDA C for GPUs.
//!
//! ```
//! use texpr::prelude::*;
//! use texpr::te::{self, FuncBuilder};
//!
//! // The builder API: the same IR the macro builds, for kernels whose
//! // structure is only known at run time.
//! let mut f = FuncBuilder::new("axpb_relu");
//! let x = f.input("x", DType::F32, ["N"]);
//! let a = f.scalar("a", DType::F32);
//! let b = f.scalar("b", DType::F32);
//! f.output(DType::F32, ["N"]);
//! let y = f.compute("y", ["i"], |[i]| te::max(a * x.at([i]) + b, 0.0));
//! f.ret([y]);
//! let k = Kernel::from_func(f.build()?);
//!
//! let x = Tensor::from_vec([4], vec![-2.0f32, -1.0, 0.5, 3.0])?;
//! let y: Tensor<f32> = k.run1(Target::Interp, &[(&x).into()], &[2.0f32.into(), 1.0f32.into()])?;
//! assert_eq!(y.as_slice(), &[0.0, 0.0, 2.0, 7.0]);
//! println!("{}", k.lower(Target::Interp)?);
//! # Ok::<(), texpr::Error>(())
//! ```
#![deny(missing_docs)]

extern crate self as texpr;

mod backend;
pub mod graph;
mod kernel;

/// The operator library of the model level: each ONNX operator as a texpr
/// definition at concrete shapes ([`ops::implement`]), its schedule
/// templates ([`ops::Template`], [`ops::schedule`]). `texpr::graph` uses it;
/// it is here for tools that build or inspect single operators.
pub use texpr_ops as ops;

pub use kernel::{Input, Kernel, Output};
pub use texpr_dsl::call::Compiled;
pub use texpr_dsl::{
    DType, Data, DataMut, Element, Error, Func, Program, Result, Scalar, Schedule, Scope, Target, TargetClass, Tensor,
    ThreadAxis, bf16, f16,
};
pub use texpr_dsl::{error, te};
pub use texpr_macros::tensor_expr;

/// The compiler's intermediate representations and passes, for tools and
/// experiments: **unstable** — they change with the compiler, without a
/// major version. What [`Kernel::lower`] returns ([`ir::Lowered`]: the
/// loop nest, before and after flattening) lives here, with the lowering
/// entry points ([`ir::lower()`], [`ir::lower_traced`]), the typed
/// expression and statement trees, and the call interface a backend
/// implements ([`ir::Executable`]).
pub mod ir {
    pub use texpr_dsl::call::{Call, Executable};
    pub use texpr_dsl::lower::{PASSES, Pass, Unproven};
    pub use texpr_dsl::{
        Arg, BinOp, Body, BufId, Buffer, Builtin, CmpOp, Expr, For, ForKind, Lowered, LoweredFunc, Origin, ReduceOp,
        Stmt, UnOp, Var, VarId, lower, lower_traced,
    };
}

/// Everything a user of `tensor_expr!` needs.
pub mod prelude {
    pub use crate::{DType, Error, Kernel, Scalar, Target, Tensor, bf16, f16, te, tensor_expr};
}

/// The target `NAME(...)` of a `tensor_expr!` function runs on.
///
/// The Cranelift JIT (`texpr-jit`).
pub const DEFAULT_TARGET: Target = Target::Cpu;

/// What `tensor_expr!` expansions use; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::{DEFAULT_TARGET, Input, Kernel};
    pub use std::sync::{Arc, OnceLock};
    pub use texpr_dsl::call::Compiled;
    pub use texpr_dsl::error::{DefinitionError, ShapeError};
    pub use texpr_dsl::{
        BinOp, CmpOp, DType, Data, DataMut, Element, Error, Program, ReduceOp, Scalar, Schedule, Scope, TargetClass,
        Tensor, ThreadAxis, UnOp, te,
    };
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
