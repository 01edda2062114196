//! Models and ONNX test data for the ONNX tests (shared with the facade's
//! `tests/models.rs`, `tests/onnx_node_cases.rs`, `tests/onnx_light_models.rs`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use texpr_onnx::proto::*;

pub fn tensor(name: &str, data_type: DataType, dims: &[i64]) -> TensorProto {
    TensorProto { name: name.into(), data_type: data_type as i32, dims: dims.to_vec(), ..Default::default() }
}

pub fn value_info(name: &str, elem: DataType, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(v) => DimensionValue::DimValue(*v),
                None => DimensionValue::DimParam("N".into()),
            }),
            denotation: String::new(),
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(TypeValue::TensorType(TensorTypeProto {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            denotation: String::new(),
        }),
        ..Default::default()
    }
}

/// `y = Relu(Conv(x, w) + b)` with its weights as initializers.
pub fn small_model() -> ModelProto {
    let mut w = tensor("w", DataType::Float, &[4, 3, 3, 3]);
    w.raw_data = (0..108).flat_map(|i| (i as f32 * 0.01).to_le_bytes()).collect();
    let mut b = tensor("b", DataType::Float, &[1, 4, 1, 1]);
    b.float_data = vec![0.5, -0.5, 1.0, 0.0];
    let conv = NodeProto {
        input: vec!["x".into(), "w".into()],
        output: vec!["c".into()],
        name: "conv/1".into(),
        op_type: "Conv".into(),
        attribute: vec![
            AttributeProto {
                name: "pads".into(),
                r#type: AttributeType::Ints as i32,
                ints: vec![1, 1, 1, 1],
                ..Default::default()
            },
            AttributeProto {
                name: "auto_pad".into(),
                r#type: AttributeType::String as i32,
                s: b"NOTSET".to_vec(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let add = NodeProto {
        input: vec!["c".into(), "b".into()],
        output: vec!["d".into()],
        op_type: "Add".into(),
        ..Default::default()
    };
    let relu =
        NodeProto { input: vec!["d".into()], output: vec!["y".into()], op_type: "Relu".into(), ..Default::default() };
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 13 }],
        producer_name: "texpr-test".into(),
        graph: Some(GraphProto {
            name: "small".into(),
            node: vec![conv, add, relu],
            initializer: vec![w, b],
            input: vec![value_info("x", DataType::Float, &[None, Some(3), Some(8), Some(8)])],
            output: vec![value_info("y", DataType::Float, &[None, Some(4), Some(8), Some(8)])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The ONNX test data (`$TEXPR_ONNX_DATA`, written by scripts/onnx-deps.sh);
/// without it a test fails under `CI=true` and is skipped, saying so,
/// otherwise.
pub fn data() -> Option<PathBuf> {
    folder("TEXPR_ONNX_DATA", "the ONNX test data")
}

/// The CNN-shaped models with onnxruntime's outputs (`$TEXPR_ONNX_MODELS`,
/// written by scripts/onnx-deps.sh), under the same rules as [`data`].
pub fn models() -> Option<PathBuf> {
    folder("TEXPR_ONNX_MODELS", "the onnxruntime-checked models")
}

/// The folder `$var` names, when it holds a `VERSION` file.
fn folder(var: &str, what: &str) -> Option<PathBuf> {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(d) if d.join("VERSION").exists() => Some(d),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true: {var} is not set to {what} (scripts/onnx-deps.sh writes it)")
        }
        _ => {
            eprintln!("skipped: no {what} (`source scripts/onnx-deps.sh` sets {var})");
            None
        }
    }
}

/// The entries of `dir` whose names start with `prefix`, sorted by name,
/// with a trailing number compared as a number (`input_10` after
/// `input_9`).
pub fn sorted(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    v.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)));
    v.sort_by_key(|p| {
        let n = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        match n.rsplit_once('_').and_then(|(head, k)| Some((head.to_string(), k.parse::<u64>().ok()?))) {
            Some((head, k)) => (head, k, n),
            None => (n.clone(), 0, n),
        }
    });
    v
}

/// Flips 1 to 4 random bits of `bytes` (xorshift64 on `state`): the
/// corrupted-model tests' mutation.
pub fn flip_bits(state: &mut u64, bytes: &mut [u8]) {
    for _ in 0..1 + *state % 4 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let bit = (*state % (bytes.len() as u64 * 8)) as usize;
        bytes[bit / 8] ^= 1 << (bit % 8);
    }
}
