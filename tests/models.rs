//! SPEC §6, as far as it is built: `Model::load_onnx` / `from_onnx_bytes`,
//! `inputs()` / `outputs()` with `None` for symbolic dims, `Display` of
//! the graph, and errors that name the node.

use prost::Message;
use texpr::graph::{Model, ValueInfo};
use texpr::prelude::*;

#[path = "../onnx/tests/common/mod.rs"]
mod common;

#[test]
fn a_model_loads_and_lists_its_inputs_and_outputs() {
    let bytes = common::small_model().encode_to_vec();
    let dir = std::env::temp_dir().join(format!("texpr-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("small.onnx");
    std::fs::write(&path, &bytes).unwrap();
    let model = Model::load_onnx(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        model.inputs(),
        vec![ValueInfo { name: "x".into(), dtype: DType::F32, shape: vec![None, Some(3), Some(8), Some(8)] }]
    );
    assert_eq!(
        model.outputs(),
        vec![ValueInfo { name: "y".into(), dtype: DType::F32, shape: vec![None, Some(4), Some(8), Some(8)] }]
    );
    let text = model.to_string();
    assert!(text.starts_with("graph small.onnx (opset 13)\n  input x: f32[N, 3, 8, 8]"), "{text}");
    assert_eq!(text.lines().filter(|l| l.contains(" = ")).count(), 3, "{text}");
    assert_eq!(Model::from_onnx_bytes(&bytes).unwrap().inputs(), model.inputs());
}

#[test]
fn bad_files_are_errors() {
    let e = Model::load_onnx("/nonexistent/dir/m.onnx").unwrap_err();
    assert!(e.to_string().starts_with("m.onnx: cannot read `/nonexistent/dir/m.onnx`"), "{e}");
    let e = Model::from_onnx_bytes(b"not a model at all").unwrap_err();
    assert!(matches!(e, Error::Model(_)) && e.to_string().starts_with("model.onnx: not "), "{e}");
}

/// `Value`: any element type, from and to `Tensor<T>`; a dtype mismatch is
/// an `Err`.
#[test]
fn values_convert_from_and_to_tensors() {
    use texpr::graph::Value;
    let x = Tensor::from_vec([2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    let v = Value::from(x.clone());
    assert_eq!((v.dtype(), v.shape()), (DType::F32, &[2usize, 2][..]));
    let back: Tensor<f32> = v.clone().try_into().unwrap();
    assert_eq!(back, x);
    let e = Tensor::<i64>::try_from(v).unwrap_err();
    assert_eq!(e.to_string(), "value: the value holds `f32` elements, not `i64`");
    let b = Value::from(Tensor::from_vec([3], vec![true, false, true]).unwrap());
    assert_eq!(b.dtype(), DType::Bool);
}

/// A compiled model checks its inputs, runs, and names the node it cannot
/// compile.
#[test]
fn runs_check_inputs_and_name_nodes() {
    use texpr::graph::Value;
    let model = Model::from_onnx_bytes(&common::small_model().encode_to_vec()).unwrap();
    let compiled = model.compile(Target::Cpu).unwrap();
    let e = compiled.run(&[]).unwrap_err();
    assert_eq!(e.to_string(), "model.onnx: 0 input(s) given, the model takes 1");
    let wrong_type = Value::from(Tensor::<f64>::zeros([1, 3, 8, 8]));
    let e = compiled.run(&[wrong_type]).unwrap_err();
    assert_eq!(e.to_string(), "model.onnx: input `x`: expects `f32` elements, got `f64`");
    let wrong_shape = Value::from(Tensor::<f32>::zeros([1, 4, 8, 8]));
    let e = compiled.run(&[wrong_shape]).unwrap_err();
    assert_eq!(e.to_string(), "model.onnx: input `x`: expects shape [N, 3, 8, 8], got [1, 4, 8, 8]");
    // Zeros in: each channel is Relu(its bias).
    let x = Value::from(Tensor::<f32>::zeros([2, 3, 8, 8]));
    let y: Tensor<f32> = compiled.run(&[x]).unwrap().remove(0).try_into().unwrap();
    assert_eq!(y.shape(), &[2, 4, 8, 8]);
    for (i, v) in y.as_slice().iter().enumerate() {
        assert_eq!(*v, [0.5, 0.0, 1.0, 0.0][(i / 64) % 4], "element {i}");
    }
    // An operator texpr does not know is an error at compilation.
    let mut m = common::small_model();
    m.graph.as_mut().unwrap().node[2].op_type = "Celu".into();
    let e = Model::from_onnx_bytes(&m.encode_to_vec()).unwrap().compile(Target::Cpu).err().unwrap();
    assert_eq!(e.to_string(), "model.onnx: the Celu node computing `y`: texpr does not implement the operator `Celu`");
}
