//! ONNX decoding: a model built with the messages round-trips through
//! bytes; tensors decode from raw and typed data; bad input — not ONNX,
//! truncated at every 97th byte, thousands of bit flips, dims that promise
//! more data than there is — is an `Err` naming the model and the tensor,
//! never a panic or a huge allocation.

use prost::Message;
use texpr_dsl::{DType, Error};
use texpr_onnx::proto::*;
use texpr_onnx::{decode, decode_tensor, opset, tensor_data};

mod common;
use common::*;

fn model_error(e: Error) -> texpr_dsl::error::ModelError {
    match e {
        Error::Model(m) => m,
        other => panic!("not a model error: {other}"),
    }
}

#[test]
fn a_model_round_trips() {
    let m = small_model();
    let bytes = m.encode_to_vec();
    let back = decode("small.onnx", &bytes).unwrap();
    assert_eq!(back, m);
    assert_eq!(opset("small.onnx", &back).unwrap(), 13);
    let g = back.graph.unwrap();
    let w = tensor_data("small.onnx", &g.initializer[0]).unwrap();
    assert_eq!((w.dtype, w.shape.as_slice(), w.bytes.len()), (DType::F32, &[4usize, 3, 3, 3][..], 432));
    assert_eq!(&w.bytes[4..8], &0.01f32.to_le_bytes());
    let b = tensor_data("small.onnx", &g.initializer[1]).unwrap();
    assert_eq!(b.bytes, [0.5f32, -0.5, 1.0, 0.0].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
}

/// IR 3 files (proto2) store repeated numbers unpacked: both encodings
/// decode to the same tensor.
#[test]
fn unpacked_repeated_fields_decode() {
    // dims = [2] (field 1, varint), data_type = 7 (field 2), int64_data =
    // 5, 6 (field 7, two unpacked varints), name = "u" (field 8).
    let bytes = [0x08, 0x02, 0x10, 0x07, 0x38, 0x05, 0x38, 0x06, 0x42, 0x01, b'u'];
    let t = decode_tensor("u.pb", &bytes).unwrap();
    assert_eq!((t.dtype, t.shape.as_slice()), (DType::I64, &[2usize][..]));
    assert_eq!(t.bytes, [5i64, 6].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
}

#[test]
fn typed_fields_of_every_type_decode() {
    let cases: Vec<(DataType, TensorProto, DType, Vec<u8>)> = vec![
        (DataType::Int8, TensorProto { int32_data: vec![-1, 7], ..Default::default() }, DType::I8, vec![0xff, 7]),
        (
            DataType::Uint16,
            TensorProto { int32_data: vec![65535, 2], ..Default::default() },
            DType::U16,
            vec![0xff, 0xff, 2, 0],
        ),
        (DataType::Bool, TensorProto { int32_data: vec![0, 3], ..Default::default() }, DType::Bool, vec![0, 1]),
        (
            DataType::Float16,
            TensorProto { int32_data: vec![0x3c00, 0xc000], ..Default::default() },
            DType::F16,
            vec![0x00, 0x3c, 0x00, 0xc0],
        ),
        (
            DataType::Bfloat16,
            TensorProto { int32_data: vec![0x3f80, 0], ..Default::default() },
            DType::BF16,
            vec![0x80, 0x3f, 0, 0],
        ),
        (
            DataType::Double,
            TensorProto { double_data: vec![1.5, -2.0], ..Default::default() },
            DType::F64,
            [1.5f64, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        (
            DataType::Uint32,
            TensorProto { uint64_data: vec![7, 4294967295], ..Default::default() },
            DType::U32,
            vec![7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            DataType::Uint64,
            TensorProto { uint64_data: vec![1, u64::MAX], ..Default::default() },
            DType::U64,
            [1u64, u64::MAX].iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
    ];
    for (dt, mut t, want, bytes) in cases {
        t.data_type = dt as i32;
        t.dims = vec![2];
        let d = tensor_data("m", &t).unwrap_or_else(|e| panic!("{dt:?}: {e}"));
        assert_eq!((d.dtype, d.bytes), (want, bytes), "{dt:?}");
    }
    // Zero elements, no data.
    let d = tensor_data("m", &tensor("e", DataType::Float, &[0, 3])).unwrap();
    assert_eq!((d.shape, d.bytes.len()), (vec![0, 3], 0));
}

#[test]
fn bad_tensors_are_errors_naming_them() {
    let cases: Vec<(TensorProto, &str)> = vec![
        (
            TensorProto { float_data: vec![1.0; 3], ..tensor("w", DataType::Float, &[2, 2]) },
            "3 value(s) in `float_data` for dims [2, 2] (4 elements)",
        ),
        (TensorProto { raw_data: vec![0; 7], ..tensor("w", DataType::Float, &[2]) }, "7 byte(s) of raw data"),
        (tensor("w", DataType::Float, &[-1, 2]), "negative dim -1"),
        // Dims that promise petabytes: an error, not an allocation.
        (TensorProto { float_data: vec![1.0], ..tensor("w", DataType::Float, &[1 << 30, 1 << 30]) }, "too large"),
        (
            TensorProto { float_data: vec![1.0], ..tensor("w", DataType::Float, &[1 << 24, 1 << 20]) },
            "1 value(s) in `float_data`",
        ),
        (tensor("s", DataType::String, &[1]), "element type String is not supported"),
        (tensor("q", DataType::Float8e4m3fn, &[1]), "not supported"),
        (TensorProto { data_type: 99, ..tensor("z", DataType::Float, &[1]) }, "data type 99 is not supported"),
        (
            TensorProto {
                data_location: 1,
                external_data: vec![StringStringEntryProto { key: "location".into(), value: "weights.bin".into() }],
                ..tensor("w", DataType::Float, &[2])
            },
            "external file (`weights.bin`)",
        ),
    ];
    for (t, want) in cases {
        let e = model_error(tensor_data("m.onnx", &t).unwrap_err());
        assert_eq!(e.model, "m.onnx");
        assert_eq!(e.at.as_deref(), Some(format!("tensor `{}`", t.name).as_str()));
        assert!(e.message.contains(want), "{} does not say {want:?}", e.message);
    }
}

#[test]
fn bytes_that_are_not_onnx_are_errors() {
    for bytes in [&b""[..], b"hello, world", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", &[0xff; 64]] {
        let e = decode("x.onnx", bytes).unwrap_err();
        assert!(e.to_string().starts_with("x.onnx: not "), "{e}");
    }
    let e = texpr_onnx::load("/nonexistent/model.onnx").unwrap_err();
    assert!(e.to_string().contains("cannot read the file"), "{e}");
}

/// Decoding, then reading every tensor and attribute, of thousands of
/// corrupted variants of a model: every truncation at a multiple of 97
/// bytes and 3000 random bit flips. Each is `Ok` or `Err`; none panics.
#[test]
fn corrupted_models_never_panic() {
    let bytes = small_model().encode_to_vec();
    let visit = |b: &[u8]| {
        if let Ok(m) = decode("c.onnx", b) {
            let _ = opset("c.onnx", &m);
            for t in m.graph.iter().flat_map(|g| {
                g.initializer.iter().chain(g.node.iter().flat_map(|n| n.attribute.iter().filter_map(|a| a.t.as_ref())))
            }) {
                let _ = tensor_data("c.onnx", t);
            }
        }
    };
    let mut n = 0;
    for cut in (0..bytes.len()).step_by(97) {
        visit(&bytes[..cut]);
        n += 1;
    }
    let mut state = 0x9e3779b97f4a7c15u64;
    for _ in 0..3000 {
        let mut b = bytes.clone();
        for _ in 0..1 + (state % 3) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bit = (state % (b.len() as u64 * 8)) as usize;
            b[bit / 8] ^= 1 << (bit % 8);
        }
        visit(&b);
        n += 1;
    }
    assert!(n > 3000);
}
