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

#[path = "../onnx/tests/common/mod.rs"]
mod common;
use common::models;

/// The largest difference, and the largest expected magnitude.
fn deviation(got: &Value, want: &Value) -> (f64, f64) {
    assert_eq!((got.dtype(), got.shape()), (want.dtype(), want.shape()));
    (0..want.len()).fold((0f64, 0f64), |(err, top), i| {
        let (g, w) = (got.get(i).unwrap().as_f64(), want.get(i).unwrap().as_f64());
        (err.max((g - w).abs()), top.max(w.abs()))
    })
}

/// `true` when the device `what` is there; else `false` (the test is
/// skipped, saying so), or under `CI=true` a failure.
fn available(what: Result<(), String>, needs: &str) -> bool {
    match what {
        Ok(()) => true,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true: needs {needs} (scripts/gpu-deps.sh installs it): {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

fn load(path: PathBuf) -> Value {
    let c = texpr_onnx::decode_tensor("t", &std::fs::read(path).unwrap()).unwrap();
    Value::from_le_bytes(c.dtype, &c.shape, &c.bytes).unwrap()
}

fn check(name: &str, options: Options) -> Option<String> {
    let d = models()?;
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
        eprintln!(
            "{name}: arena {} B, {} B unshared, {} concatenations in place",
            m.arena_bytes, m.unshared_bytes, m.concats_in_place
        );
        assert!(m.arena_bytes * 2 <= m.unshared_bytes, "{name}: the plan shares too little");
        if name == "squeezenet" && options.cpu_ops().is_empty() {
            // Each fire module's expand branches written side by side.
            assert_eq!(m.concats_in_place, 8, "{name}");
        }
    }
    let (err, top) = deviation(&got, &want);
    eprintln!("{name} ({options:?}): max |got - want| / max |want| = {:.2e}", err / top);
    assert!(err <= 1e-4 * top, "{name}: error {err} against outputs up to {top}");
    Some(compiled.graph().to_string())
}

#[test]
fn resnet18() {
    check("resnet18", Options::new(Target::Cpu));
}

/// The middle operators (pooling, concatenation) forced to the CPU, the
/// rest on OpenCL: the compiler marks them and inserts the copies.
#[test]
fn squeezenet_on_opencl_with_pooling_on_the_cpu() {
    if !available(texpr_backends::opencl::device().map(|_| ()).map_err(|e| e.to_string()), "an OpenCL platform") {
        return;
    }
    let o = Options::new(Target::OpenCl).fallback(Target::Cpu).on_cpu(["MaxPool", "Concat"]);
    let Some(g) = check("squeezenet", o) else { return };
    let on_cpu = g.lines().filter(|l| l.contains(" @cpu") && !l.contains("Copy(")).count();
    let copies = g.lines().filter(|l| l.contains("= Copy(")).count();
    assert_eq!(on_cpu, 3 + 8, "3 pools and 8 concatenations on the CPU:\n{g}");
    // Into the CPU: both branches of each concatenation and the first
    // pool's input (17); out of it: each CPU run's last result (9). A pool
    // after a concatenation needs none between them, and no copy copies a
    // copy (no round trips).
    assert_eq!(copies, 26, "{g}");
    let copied: Vec<&str> =
        g.lines().filter(|l| l.contains("= Copy(")).map(|l| l.trim().split(' ').next().unwrap()).collect();
    for l in g.lines().filter(|l| l.contains("= Copy(")) {
        let src = l.split("Copy(").nth(1).and_then(|r| r.split(')').next()).unwrap();
        assert!(!copied.contains(&src), "a round trip: {l}");
    }
    // The same with the graph passes off: placement still happens.
    let o = Options::new(Target::OpenCl).fallback(Target::Cpu).on_cpu(["MaxPool"]).optimize(false);
    let g = check("squeezenet", o).unwrap_or_default();
    assert_eq!(g.lines().filter(|l| l.contains("MaxPool(") && l.contains(" @cpu")).count(), 3, "{g}");
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

/// `CompiledModel` is `Send + Sync`; runs from several threads at once
/// (each takes its own arena from the pool) give the single-thread result.
#[test]
fn concurrent_runs_agree() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let Some(d) = models() else { return };
    let model = Model::load_onnx(d.join("tiny/model.onnx")).unwrap();
    let compiled = model.compile(Target::Cpu).unwrap();
    send_sync(&compiled);
    let inputs: Vec<Value> = (0..4)
        .map(|k| {
            Value::from(Tensor::<f32>::from_fn(&[1, 3, 32, 32], move |i| {
                ((i[1] * 7 + i[2] * 3 + i[3] + k) % 13) as f32 * 0.1
            }))
        })
        .collect();
    let want: Vec<Vec<Value>> = inputs.iter().map(|x| compiled.run(std::slice::from_ref(x)).unwrap()).collect();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..20 {
                    for (x, w) in inputs.iter().zip(&want) {
                        assert_eq!(&compiled.run(std::slice::from_ref(x)).unwrap(), w);
                    }
                }
            });
        }
    });
}

#[test]
fn tiny() {
    check("tiny", Options::new(Target::Cpu));
    check("tiny", Options::new(Target::Interp));
}

/// Corrupted variants of a real model (every truncation at a multiple of
/// 97 bytes, 200 random flips of 1–4 bits, seeded): loading, compiling
/// (every graph pass) and running each variant that loads is an `Ok` or an
/// `Err`, never a panic or a crash.
#[test]
fn corrupted_models_compile_and_run_without_panics() {
    let Some(dir) = models() else { return };
    let bytes = std::fs::read(dir.join("tiny/model.onnx")).unwrap();
    let attempt = |b: &[u8]| -> Result<(), String> {
        let m = Model::from_onnx_bytes(b).map_err(|e| e.to_string())?;
        let compiled = m.compile_with(Options::new(Target::Interp)).map_err(|e| e.to_string())?;
        let inputs: Vec<Value> = m
            .inputs()
            .iter()
            .map(|i| {
                let shape: Vec<usize> = i.shape.iter().map(|d| d.unwrap_or(1).min(64)).collect();
                Value::try_filled(i.dtype, &shape, texpr::Scalar::from_f64(i.dtype, 0.5)).map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        compiled.run(&inputs).map(|_| ()).map_err(|e| e.to_string())
    };
    let (mut loaded, mut ran) = (0, 0);
    for cut in (0..bytes.len()).step_by(97) {
        assert!(attempt(&bytes[..cut]).is_err(), "truncated at {cut}: runs");
    }
    let mut state = 0x2545f4914f6cdd1du64;
    for k in 0..200 {
        let mut b = bytes.clone();
        common::flip_bits(&mut state, &mut b);
        let r = std::panic::catch_unwind(|| attempt(&b));
        match r {
            Err(_) => panic!("variant {k} panicked"),
            Ok(r) => {
                loaded += usize::from(Model::from_onnx_bytes(&b).is_ok());
                ran += usize::from(r.is_ok());
            }
        }
    }
    eprintln!("200 corrupted variants: {loaded} load, {ran} run");
    assert!(ran > 40, "only {ran} variants ran: the corruption test tests little");
}

#[test]
fn without_graph_passes() {
    for m in ["resnet18", "mobilenetv2", "shufflenet", "squeezenet"] {
        check(m, Options::new(Target::Cpu).optimize(false));
    }
}

#[test]
fn squeezenet_on_opencl() {
    if available(texpr_backends::opencl::device().map(|_| ()).map_err(|e| e.to_string()), "an OpenCL platform") {
        check("squeezenet", Options::new(Target::OpenCl));
    }
}

/// Every kernel of the models compiled for CUDA compiles with NVRTC (sm_80;
/// no GPU needed): the executor runs with a compile function that checks
/// each program's CUDA C and then runs it on the CPU, so the outputs are
/// checked against onnxruntime as well.
#[test]
fn cuda_kernels_compile_with_nvrtc() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    if !available(texpr_backends::cuda::nvrtc_available(), "NVRTC") {
        return;
    }
    let Some(dir) = models() else { return };
    for name in ["squeezenet", "mobilenetv2", "shufflenet"] {
        let d = dir.join(name);
        let graph = texpr_onnx::graph_from_bytes(name, &std::fs::read(d.join("model.onnx")).unwrap()).unwrap();
        let checked = Arc::new(AtomicUsize::new(0));
        let count = checked.clone();
        let compile: texpr_graph::CompileFn = Arc::new(move |p: texpr::Program, t: Target| {
            if t == Target::Cuda {
                let k = Kernel::new(p.clone());
                let l = k.lower(Target::Cuda)?;
                let src = texpr_backends::source(Target::Cuda, &l)?;
                let fname = p.func().name.clone();
                texpr_backends::cuda::nvrtc_compile(&src, &fname, "sm_80")
                    .unwrap_or_else(|e| panic!("{fname}: NVRTC: {e}\n{src}"));
                count.fetch_add(1, Ordering::Relaxed);
            }
            Kernel::new(p).compile(Target::Cpu)
        });
        let exec = texpr_graph::Executor::new(graph, Options::new(Target::Cuda), compile).unwrap();
        let x = load(d.join("test_data_set_0/input_0.pb"));
        let want = load(d.join("test_data_set_0/output_0.pb"));
        let got = exec.run(&[x]).unwrap().remove(0);
        let (err, top) = deviation(&got, &want);
        let n = checked.load(Ordering::Relaxed);
        eprintln!("{name}: {n} CUDA kernels compiled with NVRTC; max error / max |output| {:.2e}", err / top);
        assert!(n >= 20, "{name}: only {n} kernels");
        assert!(err <= 1e-4 * top, "{name}: error {err} against outputs up to {top}");
    }
}
