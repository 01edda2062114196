//! ONNX's node test cases run through `Model::compile` on the CPU JIT and
//! the interpreter, against their expected outputs (ONNX's tolerances:
//! |got - want| <= 1e-7 + 1e-3 |want|, NaN matching NaN): every case whose
//! operators the executor implements, except those `onnx_exec_skips.txt`
//! names with a reason. The data comes from scripts/onnx-deps.sh
//! (`$TEXPR_ONNX_DATA`); without it the test fails under `CI=true`.

use std::collections::BTreeMap;
use std::path::Path;

use texpr::graph::{Model, Options, Value};

#[path = "../onnx/tests/common/mod.rs"]
mod common;
use common::{data, sorted};
use texpr::prelude::*;

/// The operators the executor implements so far.
#[rustfmt::skip]
const IMPLEMENTED: &[&str] = &[
    "ConvTranspose",
    "MatMulInteger",
    "ConvInteger",
    "QLinearMatMul",
    "QLinearConv",
    "Resize",
    "Upsample",
    "Identity",
    "Dropout",
    "Relu",
    "Sigmoid",
    "Tanh",
    "Exp",
    "Log",
    "Sqrt",
    "Erf",
    "Neg",
    "Abs",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "MatMul",
    "Gemm",
    "Softmax",
    "LogSoftmax",
    "Conv",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "BatchNormalization",
    "LRN",
    "Concat",
    "Transpose",
    "Sum",
    "Max",
    "Min",
    "ConstantOfShape",
    "Clip",
    "LeakyRelu",
    "HardSigmoid",
    "HardSwish",
    "Gelu",
    "Pow",
    "Equal",
    "Less",
    "Greater",
    "Where",
    "Cast",
    "Shape",
    "Expand",
    "ReduceMean",
    "ReduceSum",
    "ReduceMax",
    "ReduceMin",
    "Gather",
    "Constant",
    "Slice",
    "Pad",
    "Split",
    "LayerNormalization",
    "ArgMax",
    "CumSum",
    "QuantizeLinear",
    "DequantizeLinear",
];

/// What `run_case` says when a case's data set lacks an input.
const NO_DATA: &str = "no input data";

fn load(pb: &Path) -> Value {
    let c = texpr_onnx::decode_tensor(&pb.to_string_lossy(), &std::fs::read(pb).unwrap()).unwrap();
    Value::from_le_bytes(c.dtype, &c.shape, &c.bytes).unwrap()
}

fn agree(got: &Value, want: &Value) -> Result<(), String> {
    if got.dtype() != want.dtype() || got.shape() != want.shape() {
        return Err(format!("got {} {:?}, want {} {:?}", got.dtype(), got.shape(), want.dtype(), want.shape()));
    }
    for i in 0..want.len() {
        let (g, w) = (got.get(i).unwrap(), want.get(i).unwrap());
        let ok = if want.dtype().is_float() {
            let (g, w) = (g.as_f64(), w.as_f64());
            (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= 1e-7 + 1e-3 * w.abs()
        } else {
            g == w
        };
        if !ok {
            return Err(format!("element {i}: got {g:?}, want {w:?}"));
        }
    }
    Ok(())
}

/// Runs a case's data sets; the number of values compared.
fn run_case(case: &Path, options: Options) -> Result<usize, String> {
    let model = Model::from_onnx_bytes(&std::fs::read(case.join("model.onnx")).unwrap()).map_err(|e| e.to_string())?;
    let compiled = model.compile_with(options).map_err(|e| e.to_string())?;
    let mut n = 0;
    for set in sorted(case, "test_data_set_") {
        let inputs: Vec<Value> = sorted(&set, "input_").iter().map(|p| load(p)).collect();
        if inputs.len() < model.inputs().len() {
            // The generator could not write an input (a type numpy lacks).
            return Err(NO_DATA.into());
        }
        let want: Vec<Value> = sorted(&set, "output_").iter().map(|p| load(p)).collect();
        let got = compiled.run(&inputs).map_err(|e| e.to_string())?;
        if got.len() < want.len() {
            return Err(format!("{} output(s), {} expected", got.len(), want.len()));
        }
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            agree(g, w).map_err(|e| format!("output {k}: {e}"))?;
            n += w.len();
        }
    }
    Ok(n)
}

#[test]
fn node_cases_run() {
    let Some(d) = data() else { return };
    let skips: BTreeMap<String, String> = include_str!("onnx_exec_skips.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' ').map(|(c, why)| (c.to_string(), why.trim().to_string())))
        .collect();
    texpr_jit::set_parallel_min_work(0);
    let (mut ran, mut compared, mut failures, mut fixed, mut no_data) = (0, 0, vec![], vec![], vec![]);
    for case in sorted(&d.join("node"), "test_") {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(m) = texpr_onnx::decode(&name, &std::fs::read(case.join("model.onnx")).unwrap()) else { continue };
        let ops: Vec<String> = m.graph.iter().flat_map(|g| g.node.iter().map(|n| n.op_type.clone())).collect();
        if ops.is_empty() || !ops.iter().all(|o| IMPLEMENTED.contains(&o.as_str())) {
            continue;
        }
        ran += 1;
        // The graph passes on (Cpu, Interp) and off (Cpu).
        let runs = [(Target::Cpu, true), (Target::Interp, true), (Target::Cpu, false)];
        let r = runs.into_iter().try_for_each(|(t, on)| {
            let passes = if on { "" } else { " without graph passes" };
            compared +=
                run_case(&case, Options::new(t).optimize(on)).map_err(|e| format!("{name} on {t:?}{passes}: {e}"))?;
            Ok::<(), String>(())
        });
        if r.as_ref().is_err_and(|e| e.ends_with(NO_DATA)) {
            no_data.push(name);
            continue;
        }
        match (r, skips.contains_key(&name)) {
            (Ok(()), true) => fixed.push(name),
            (Err(e), false) => failures.push(e),
            _ => {}
        }
    }
    eprintln!(
        "{ran} node cases of implemented operators ({compared} values compared); {} skipped with a reason; {} \
         without input data (types numpy lacks, such as bfloat16): {no_data:?}",
        skips.len(),
        no_data.len()
    );
    assert!(no_data.len() < 20, "{} cases lack input data", no_data.len());
    assert!(ran >= 120 && compared > 10_000, "only {ran} cases ran, {compared} values compared");
    assert!(failures.is_empty(), "{} case(s) fail:\n{}", failures.len(), failures.join("\n"));
    assert!(fixed.is_empty(), "these pass now; remove them from onnx_exec_skips.txt: {fixed:?}");
}

/// A sample of the node cases (every fifth that runs on the CPU) on OpenCL:
/// the same executor, kernels compiled to OpenCL C (PoCL in CI).
#[test]
fn node_cases_run_on_opencl() {
    let Some(d) = data() else { return };
    match texpr_backends::opencl::device() {
        Ok(_) => {}
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true: the OpenCL node cases need a platform (scripts/gpu-deps.sh installs PoCL): {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    }
    let skips = include_str!("onnx_exec_skips.txt");
    let mut runnable = vec![];
    for case in sorted(&d.join("node"), "test_") {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(m) = texpr_onnx::decode(&name, &std::fs::read(case.join("model.onnx")).unwrap()) else { continue };
        let ops: Vec<String> = m.graph.iter().flat_map(|g| g.node.iter().map(|n| n.op_type.clone())).collect();
        if !ops.is_empty()
            && ops.iter().all(|o| IMPLEMENTED.contains(&o.as_str()))
            && !skips.lines().any(|l| l.split(' ').next() == Some(name.as_str()))
        {
            runnable.push(case);
        }
    }
    let (mut ran, mut compared, mut failures) = (0, 0, vec![]);
    for case in runnable.iter().step_by(5) {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        match run_case(case, Options::new(Target::OpenCl)) {
            Ok(n) => {
                ran += 1;
                compared += n;
            }
            Err(e) if e.ends_with(NO_DATA) => {}
            Err(e) => failures.push(format!("{name} on OpenCl: {e}")),
        }
    }
    eprintln!("{ran} node cases on OpenCL ({compared} values compared)");
    assert!(failures.is_empty(), "{} case(s) fail:\n{}", failures.len(), failures.join("\n"));
    assert!(ran >= 60, "only {ran} cases ran");
}
