//! ONNX import for texpr: the protobuf messages (`proto`, no `protoc`
//! needed), decoding a model from bytes or a file, its tensors' data, and
//! its graph ([`to_graph`]: ONNX → `texpr_graph::Graph`).
//!
//! Every failure is an [`Error::Model`] naming the model and, where there is
//! one, the node, tensor or value it concerns; no input — bytes that are not
//! ONNX, a truncated or bit-flipped file, dims that promise more data than
//! the file holds — panics or allocates more than the file's size says.
#![deny(missing_docs)]

mod import;
pub mod proto;
mod tensor;

use std::path::Path;

use prost::Message;
use texpr_dsl::error::ModelError;
use texpr_dsl::{Error, Result};

pub use import::to_graph;
pub use tensor::{dtype_of, tensor_data};
pub use texpr_graph::{Constant, Graph};

/// A model error about `model` (and, when given, a node or value in it).
pub(crate) fn model_err(model: &str, at: Option<String>, message: impl Into<String>) -> Error {
    Error::Model(ModelError { model: model.to_string(), at, message: message.into() })
}

/// Decodes an ONNX model; `name` (a file name) is what errors call it.
pub fn decode(name: &str, bytes: &[u8]) -> Result<proto::ModelProto> {
    let m = proto::ModelProto::decode(bytes)
        .map_err(|e| model_err(name, None, format!("not a valid ONNX model (protobuf: {e})")))?;
    if m.graph.is_none() {
        return Err(model_err(name, None, "not an ONNX model: it has no graph"));
    }
    if m.ir_version <= 0 {
        return Err(model_err(name, None, format!("not an ONNX model: IR version {}", m.ir_version)));
    }
    Ok(m)
}

/// Decodes an ONNX model and builds its graph.
pub fn graph_from_bytes(name: &str, bytes: &[u8]) -> Result<Graph> {
    to_graph(name, &decode(name, bytes)?)
}

/// Reads and decodes an ONNX file.
pub fn load(path: impl AsRef<Path>) -> Result<proto::ModelProto> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| model_err(&name, None, format!("cannot read the file: {e}")))?;
    decode(&name, &bytes)
}

/// The version of the default (`ai.onnx`) operator set a model imports.
pub fn opset(name: &str, m: &proto::ModelProto) -> Result<i64> {
    let v = m
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        // IR 3 models without an opset import mean opset 1.
        .unwrap_or(1);
    if !(1..=i64::from(u16::MAX)).contains(&v) {
        return Err(model_err(name, None, format!("operator set version {v} is not a version")));
    }
    Ok(v)
}

/// Decodes a `TensorProto` file (`.pb`, as ONNX's test data stores inputs
/// and outputs).
pub fn decode_tensor(name: &str, bytes: &[u8]) -> Result<Constant> {
    let t = proto::TensorProto::decode(bytes)
        .map_err(|e| model_err(name, None, format!("not a valid ONNX TensorProto (protobuf: {e})")))?;
    tensor_data(name, &t)
}
