//! Import conformance on ONNX's own test data (scripts/onnx-deps.sh writes
//! it to `$TEXPR_ONNX_DATA`): the nine light models import, shape
//! inference reaches every value, and the shipped outputs have the inferred
//! dims; every node
//! test case of an operator SPEC §6 lists imports, and its inputs and
//! outputs decode — except the cases `import_skips.txt` names, each with
//! its reason. (Running the cases against their outputs comes with the
//! executor.) Without the data the test fails under `CI=true` and says how
//! to get it otherwise.

use std::collections::BTreeMap;
use std::path::PathBuf;

use texpr_graph::Dim;

mod common;
use common::{data, sorted};
use texpr_onnx::{decode_tensor, graph_from_bytes};

/// The operators SPEC §6 lists.
const SPEC_OPS: &[&str] = &[
    "Conv",
    "ConvTranspose",
    "BatchNormalization",
    "Relu",
    "Clip",
    "LeakyRelu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Gelu",
    "Erf",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Sqrt",
    "Exp",
    "Log",
    "Neg",
    "Abs",
    "MatMul",
    "Gemm",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "LRN",
    "Dropout",
    "Softmax",
    "LogSoftmax",
    "Concat",
    "Reshape",
    "Flatten",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Shape",
    "Gather",
    "Slice",
    "Split",
    "Pad",
    "Resize",
    "ReduceMean",
    "ReduceSum",
    "ReduceMax",
    "ReduceMin",
    "LayerNormalization",
    "Identity",
    "Constant",
    "ConstantOfShape",
    "Cast",
    "Sum",
    "Max",
    "Min",
    "Expand",
    "Where",
    "Equal",
    "Less",
    "Greater",
    "ArgMax",
    "TopK",
    "CumSum",
    "NonMaxSuppression",
    "QuantizeLinear",
    "DequantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "MatMulInteger",
    "ConvInteger",
];

#[test]
fn light_models_import() {
    let Some(d) = data() else { return };
    let models = sorted(&d.join("light"), "light_");
    let models: Vec<&PathBuf> = models.iter().filter(|p| p.extension().is_some_and(|e| e == "onnx")).collect();
    assert_eq!(models.len(), 9, "{models:?}");
    for m in models {
        let name = m.file_name().unwrap().to_string_lossy().into_owned();
        let mut g = graph_from_bytes(&name, &std::fs::read(m).unwrap()).unwrap_or_else(|e| panic!("{e}"));
        // Inference reaches every value, and the output's dims are those of
        // the shipped output.
        texpr_graph::infer(&mut g).unwrap_or_else(|e| panic!("{e}"));
        for v in &g.values {
            let known = v.shape.as_ref().is_some_and(|s| s.iter().all(|d| matches!(d, Dim::Known(_))));
            assert!(v.dtype.is_some() && known, "{name}: `{}` is {:?} {:?}", v.name, v.dtype, v.shape);
        }
        let out = m.with_file_name(name.replace(".onnx", "_output_0.pb"));
        let t = decode_tensor(&out.to_string_lossy(), &std::fs::read(&out).unwrap()).unwrap();
        let o = g.value(g.outputs[0]);
        assert_eq!(o.dtype, Some(t.dtype), "{name}");
        if let Some(s) = &o.shape {
            for (d, n) in s.iter().zip(&t.shape) {
                assert!(
                    matches!(d, Dim::Known(k) if k == n) || !matches!(d, Dim::Known(_)),
                    "{name}: {s:?} vs {:?}",
                    t.shape
                );
            }
        }
        assert!(g.nodes.len() >= 10, "{name}");
    }
}

#[test]
fn node_cases_of_spec_operators_import() {
    let Some(d) = data() else { return };
    let skips: BTreeMap<String, String> = include_str!("import_skips.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' ').map(|(c, why)| (c.to_string(), why.trim().to_string())))
        .collect();
    let mut in_scope = 0;
    let mut failures = vec![];
    let mut skipped_ok = vec![];
    let mut inferred = 0;
    let mut wrong = vec![];
    for case in sorted(&d.join("node"), "test_") {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(case.join("model.onnx")).unwrap();
        let Ok(m) = texpr_onnx::decode(&name, &bytes) else {
            failures.push(format!("{name}: does not decode"));
            continue;
        };
        let ops: Vec<&str> = m.graph.iter().flat_map(|g| g.node.iter().map(|n| n.op_type.as_str())).collect();
        if ops.is_empty() || !ops.iter().all(|o| SPEC_OPS.contains(o)) {
            continue;
        }
        in_scope += 1;
        let imported = texpr_onnx::to_graph(&name, &m);
        // Where inference succeeds, it must agree with every expected output.
        if let Ok(mut g) = imported.clone()
            && texpr_graph::infer(&mut g).is_ok()
        {
            inferred += 1;
            let set = case.join("test_data_set_0");
            for (i, o) in g.outputs.iter().enumerate() {
                let Ok(bytes) = std::fs::read(set.join(format!("output_{i}.pb"))) else { continue };
                let Ok(t) = decode_tensor("out", &bytes) else { continue };
                let v = g.value(*o);
                let agrees = v.dtype.is_none_or(|d| d == t.dtype)
                    && v.shape.as_ref().is_none_or(|s| {
                        s.len() == t.shape.len()
                            && s.iter().zip(&t.shape).all(|(d, n)| !matches!(d, Dim::Known(k) if k != n))
                    });
                if !agrees {
                    wrong.push(format!(
                        "{name}: output {i} inferred {:?} {:?}, is {} {:?}",
                        v.dtype, v.shape, t.dtype, t.shape
                    ));
                }
            }
        }
        let mut result = imported.map(|_| ());
        for set in sorted(&case, "test_data_set_") {
            for pb in sorted(&set, "") {
                if result.is_ok() {
                    result = decode_tensor(&pb.to_string_lossy(), &std::fs::read(&pb).unwrap()).map(|_| ());
                }
            }
        }
        match (result, skips.get(&name)) {
            (Ok(()), Some(_)) => skipped_ok.push(name),
            (Ok(()), None) | (Err(_), Some(_)) => {}
            (Err(e), None) => failures.push(e.to_string()),
        }
    }
    eprintln!(
        "{in_scope} node cases of SPEC operators; {} skipped with a reason; shapes inferred for {inferred}",
        skips.len()
    );
    assert!(
        wrong.is_empty(),
        "{} inferred type(s) disagree with the expected outputs:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(inferred > 250, "shapes inferred for only {inferred} cases");
    assert!(in_scope > 500, "only {in_scope} cases in scope");
    assert!(failures.is_empty(), "{} case(s) fail to import:\n{}", failures.len(), failures.join("\n"));
    assert!(skipped_ok.is_empty(), "these import now; remove them from import_skips.txt: {skipped_ok:?}");
}

/// Thousands of corrupted variants of a real model (SqueezeNet from the
/// light set): every truncation at a multiple of 97 bytes and 1000 random
/// bit flips decode and import to `Ok` or `Err`, never a panic; the
/// truncated ones are all `Err`s.
#[test]
fn corrupted_real_models_never_panic() {
    let Some(d) = data() else { return };
    let bytes = std::fs::read(d.join("light").join("light_squeezenet.onnx")).unwrap();
    for cut in (0..bytes.len()).step_by(97) {
        assert!(graph_from_bytes("s.onnx", &bytes[..cut]).is_err(), "truncated at {cut} imports");
    }
    let mut state = 0x853c49e6748fea9bu64;
    for _ in 0..1000 {
        let mut b = bytes.clone();
        common::flip_bits(&mut state, &mut b);
        if let Ok(mut g) = graph_from_bytes("s.onnx", &b) {
            let _ = texpr_graph::infer(&mut g);
        }
    }
}
