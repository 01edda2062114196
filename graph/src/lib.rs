//! texpr's graph level: a model as a graph of operator nodes over named
//! values, in an arena with typed handles ([`NodeId`], [`ValueId`]).
//! Importers (ONNX: `texpr-onnx`) build it; [`Graph::validate`] checks what
//! every later stage relies on (each value defined once, before its uses;
//! outputs defined), with errors naming the node.
//!
//! The tensor-level compiler never sees this crate: graph passes, the
//! operator library and the executor (which lower fused groups of nodes to
//! `texpr_dsl::Func`s) sit on top of it.
#![deny(missing_docs)]

mod attrs;
mod compose;
mod exec;
mod infer;
mod ir;
mod memory;
mod options;
pub mod passes;
pub mod shape;

pub use exec::{CompileFn, Executor, trace_passes};
pub use infer::infer;
pub use options::Options;
pub use texpr_ops::onnx_dtype;

pub use ir::{Attr, COPY, Constant, Dim, FUSED, Graph, Node, NodeId, ValueDef, ValueId};
/// A tensor of any element type: a model's input or output (`From<Tensor<T>>`,
/// `TryFrom<Value> for Tensor<T>`, `.dtype()`, `.shape()`).
pub use texpr_dsl::AnyTensor as Value;
