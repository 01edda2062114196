//! texpr's core: the IR, the builder API, type checking, schedules, lowering,
//! the reference interpreter and `Tensor`.
//!
//! The data flow, one module per step:
//!
//! ```text
//! te::FuncBuilder ──typeck──▶ Func ──Schedule──▶ lower::lower ──▶ LoweredFunc ──▶ interp / backends
//!  (untyped, names)          (typed IR)  (per target)   (ordered passes)   (loop nest)
//! ```
//!
//! - [`te`]: the builder API (what `tensor_expr!` expands to).
//! - [`typeck`](crate::Func): names, types, literal inference → [`Func`].
//! - [`schedule`]: the schedule primitives and per-target defaults.
//! - [`lower`](mod@lower): bounds inference, loop construction, tail handling,
//!   simplification, the bounds proof, flattening; IR verified between passes.
//! - [`interp`]: the reference interpreter over the lowered IR.
//! - [`call`]: shape binding and calls, shared by every backend.
#![deny(missing_docs)]

mod any_tensor;
pub mod arith;
mod auto;
pub mod call;
pub mod cancel;
pub mod deep;
pub mod dtype;
pub mod error;
pub mod expr;
pub mod func;
pub mod interp;
pub mod lower;
pub mod ops;
pub mod prover;
pub mod schedule;
pub mod simplify;
mod specialize;
pub mod stmt;
pub mod target;
pub mod te;
mod tensor;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod typeck;
pub mod value;

pub use any_tensor::AnyTensor;
pub use call::{Call, Compiled, Executable, Program};
pub use dtype::{DType, Data, DataMut, Element, bf16, f16};
pub use error::{
    BoundsError, DefinitionError, Error, InternalError, ModelError, Origin, Result, ScheduleError, ShapeError,
};
pub use expr::{BinOp, BufId, Builtin, CmpOp, Expr, ReduceOp, UnOp, Var, VarId, VarTable};
pub use func::{Arg, Body, Func, StageId};
pub use lower::{Lowered, Proof, ProofPending, dump_enabled, lower, lower_pending, lower_traced, verify_enabled};
pub use schedule::{AxisRef, Schedule, StageRef};
pub use stmt::{BufKind, Buffer, For, ForKind, LoweredFunc, Scope, Stmt, ThreadAxis};
pub use target::{Target, TargetClass};
pub use tensor::Tensor;
pub use value::Scalar;
