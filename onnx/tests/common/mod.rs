//! Models for the ONNX tests (shared with the facade's `tests/models.rs`).
#![allow(dead_code)]

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
