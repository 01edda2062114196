//! Numerics against onnxruntime: ResNet-18-, MobileNetV2-, ShuffleNet-v2-
//! and SqueezeNet-1.1-shaped models with seeded random weights (written by
//! scripts/onnx_models.py with onnxruntime's outputs, `$TEXPR_ONNX_MODELS`;
//! without them the test fails under `CI=true`), on the CPU JIT with the
//! graph passes on and off, and SqueezeNet on OpenCL. The measure: the
//! largest difference relative to the largest output magnitude,
//! `max |got - want| / max |want| <= 1e-4` (elementwise relative error is
//! meaningless for logits near zero).

use std::path::PathBuf;

use texpr::graph::{Model, Options, Value};
use texpr::prelude::*;

fn models() -> Option<PathBuf> {
    match std::env::var_os("TEXPR_ONNX_MODELS").map(PathBuf::from) {
        Some(d) if d.join("VERSION").exists() => Some(d),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true: TEXPR_ONNX_MODELS is not set to the models scripts/onnx-deps.sh writes")
        }
        _ => {
            eprintln!("skipped: no models (`source scripts/onnx-deps.sh` sets TEXPR_ONNX_MODELS)");
            None
        }
    }
}

fn load(path: PathBuf) -> Value {
    let c = texpr_onnx::decode_tensor("t", &std::fs::read(path).unwrap()).unwrap();
    Value::from_le_bytes(c.dtype, &c.shape, &c.bytes).unwrap()
}

fn check(name: &str, options: Options) {
    let Some(d) = models() else { return };
    let d = d.join(name);
    let model = Model::load_onnx(d.join("model.onnx")).unwrap();
    let x = load(d.join("test_data_set_0/input_0.pb"));
    let want = load(d.join("test_data_set_0/output_0.pb"));
    let compiled = model.compile_with(options.clone()).unwrap();
    let first = compiled.run(std::slice::from_ref(&x)).unwrap().remove(0);
    // The second run uses the memory plan the first made.
    let got = compiled.run(&[x]).unwrap().remove(0);
    assert_eq!(first, got, "{name}: the planned run differs from the measuring one");
    if let Some(m) = compiled.memory() {
        eprintln!("{name}: arena {} B, {} B unshared", m.arena_bytes, m.unshared_bytes);
        assert!(m.arena_bytes * 2 <= m.unshared_bytes, "{name}: the plan shares too little");
    }
    assert_eq!((got.dtype(), got.shape()), (want.dtype(), want.shape()));
    let (mut err, mut top) = (0f64, 0f64);
    for i in 0..want.len() {
        let (g, w) = (got.get(i).unwrap().as_f64(), want.get(i).unwrap().as_f64());
        err = err.max((g - w).abs());
        top = top.max(w.abs());
    }
    eprintln!("{name} ({options:?}): max |got - want| / max |want| = {:.2e}", err / top);
    assert!(err <= 1e-4 * top, "{name}: error {err} against outputs up to {top}");
}

#[test]
fn resnet18() {
    check("resnet18", Options::new(Target::Cpu));
}

#[test]
fn mobilenetv2() {
    check("mobilenetv2", Options::new(Target::Cpu));
}

#[test]
fn shufflenet() {
    check("shufflenet", Options::new(Target::Cpu));
}

#[test]
fn squeezenet() {
    check("squeezenet", Options::new(Target::Cpu));
}

#[test]
fn without_graph_passes() {
    for m in ["resnet18", "mobilenetv2", "shufflenet", "squeezenet"] {
        check(m, Options::new(Target::Cpu).optimize(false));
    }
}

#[test]
fn squeezenet_on_opencl() {
    match texpr_backends::opencl::device() {
        Ok(_) => check("squeezenet", Options::new(Target::OpenCl)),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true: needs an OpenCL platform (scripts/gpu-deps.sh installs PoCL): {e}")
        }
        Err(e) => eprintln!("skipped: {e}"),
    }
}
