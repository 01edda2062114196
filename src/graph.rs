//! Models (SPEC §6): an ONNX file in, a compiled model out. Import,
//! validation, type inference and printing are here; [`Model::compile`]
//! runs every node as a kernel of the operator library (`texpr-ops`,
//! compiled per node and input shapes, cached) or as a view. Graph passes
//! (fusion, constant folding, memory planning), device fallback and most
//! operators are being built (issue 16).

use std::fmt;
use std::path::Path;

pub use texpr_graph::{Attr, Constant, Dim, FUSED, Graph, Node, NodeId, Options, Value, ValueDef, ValueId};

use crate::{DType, Result};

/// A model: its graph, as imported.
#[derive(Clone, Debug)]
pub struct Model {
    graph: Graph,
}

/// A graph input or output: its name, element type and dims (`None` for a
/// symbolic or unknown dim).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueInfo {
    /// The name.
    pub name: String,
    /// The element type.
    pub dtype: DType,
    /// The dims.
    pub shape: Vec<Option<usize>>,
}

impl Model {
    /// Reads an ONNX file. A file that is not ONNX, is truncated or
    /// corrupted, uses an unsupported value type or attribute, or whose
    /// nodes read undefined values is an `Err` naming the node or value.
    pub fn load_onnx(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let bytes = std::fs::read(path).map_err(|e| {
            crate::Error::Model(crate::error::ModelError {
                model: name.clone(),
                at: None,
                message: format!("cannot read `{}`: {e}", path.display()),
            })
        })?;
        Ok(Model { graph: texpr_onnx::graph_from_bytes(&name, &bytes)? })
    }

    /// Decodes an ONNX model from bytes (errors call it `model.onnx`).
    pub fn from_onnx_bytes(bytes: &[u8]) -> Result<Model> {
        Ok(Model { graph: texpr_onnx::graph_from_bytes("model.onnx", bytes)? })
    }

    /// The graph inputs, in order (initializers excluded).
    pub fn inputs(&self) -> Vec<ValueInfo> {
        self.graph.inputs.iter().map(|v| self.info(*v)).collect()
    }

    /// The graph outputs, in order.
    pub fn outputs(&self) -> Vec<ValueInfo> {
        self.graph.outputs.iter().map(|v| self.info(*v)).collect()
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Compiles the model for a target with every graph pass on
    /// ([`Model::compile_with`] and [`Options`] choose more).
    pub fn compile(&self, target: crate::Target) -> Result<CompiledModel> {
        self.compile_with(Options::new(target))
    }

    /// Compiles the model: types inferred (an operator texpr does not know
    /// is an `Err` naming the node), the graph passes run (constant
    /// folding, common-subexpression and dead-node elimination, batch-norm
    /// folding, fusion) unless [`Options::optimize`] turns them off;
    /// kernels are compiled on a run's first use of each shape.
    pub fn compile_with(&self, options: Options) -> Result<CompiledModel> {
        Ok(CompiledModel { exec: texpr_graph::Executor::new(self.graph.clone(), options, compiler())? })
    }

    /// The graph after import (types inferred) and after each graph pass
    /// that changed it, named by the pass (`texpr inspect --passes`; the
    /// same as `TEXPR_DUMP=graph` prints while compiling).
    pub fn passes(&self, options: &Options) -> Result<Vec<(String, Graph)>> {
        let trace = texpr_graph::trace_passes(self.graph.clone(), options, &compiler())?;
        Ok(trace.into_iter().map(|(name, g)| (name.to_string(), g)).collect())
    }

    fn info(&self, id: ValueId) -> ValueInfo {
        let v = self.graph.value(id);
        ValueInfo {
            name: v.name.clone(),
            // Import checks that every graph input and output has one.
            dtype: v.dtype.unwrap_or(DType::F32),
            shape: v
                .shape
                .as_ref()
                .map(|s| s.iter().map(|d| if let Dim::Known(n) = d { Some(*n) } else { None }).collect())
                .unwrap_or_default(),
        }
    }
}

/// A model compiled for a target; `Send + Sync`, `run` may be called from
/// many threads at once.
pub struct CompiledModel {
    exec: texpr_graph::Executor,
}

impl CompiledModel {
    /// Runs the model: graph inputs in order (initializers excluded), its
    /// outputs in order. Inputs of the wrong count, element type or known
    /// dims are an `Err` naming the input.
    pub fn run(&self, inputs: &[Value]) -> Result<Vec<Value>> {
        self.exec.run(inputs)
    }

    /// [`CompiledModel::run`], and the time each node of the compiled
    /// graph (a fused group is one) took, in the order they ran. Kernels
    /// are compiled on a run's first use of a shape: run once before to
    /// time only running.
    pub fn run_profiled(&self, inputs: &[Value]) -> Result<(Vec<Value>, Vec<KernelTime>)> {
        let (outs, times) = self.exec.run_profiled(inputs)?;
        let g = self.exec.graph();
        Ok((outs, times.into_iter().map(|(id, time)| KernelTime { node: g.label(id), time }).collect()))
    }

    /// The memory plan of the intermediate values, made by the first run
    /// for given input types and dims (later runs with them use it); `None`
    /// before, or with the graph passes off.
    pub fn memory(&self) -> Option<MemoryUse> {
        self.exec.memory().map(|(arena_bytes, unshared_bytes, concats_in_place)| MemoryUse {
            arena_bytes,
            unshared_bytes,
            concats_in_place,
        })
    }

    /// The graph it runs: types inferred, graph passes run.
    pub fn graph(&self) -> &Graph {
        self.exec.graph()
    }
}

/// What a run's intermediate values take ([`CompiledModel::memory`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryUse {
    /// The arena's size: values whose lifetimes do not overlap share bytes.
    pub arena_bytes: usize,
    /// What the same values take without sharing.
    pub unshared_bytes: usize,
    /// Concatenations whose inputs are written side by side into their
    /// output, so that they copy nothing.
    pub concats_in_place: usize,
}

/// One node's time in [`CompiledModel::run_profiled`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelTime {
    /// The node: its name and operator, a fused node's operators joined by
    /// `+` (`conv1: Conv+Add+Relu`).
    pub node: String,
    /// How long it ran.
    pub time: std::time::Duration,
}

/// The facade's kernel compiler, given to the graph executor.
fn compiler() -> texpr_graph::CompileFn {
    std::sync::Arc::new(|p: crate::Program, t: crate::Target| crate::Kernel::new(p).compile(t))
}

impl fmt::Display for Model {
    /// The graph, one node per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.graph)
    }
}
