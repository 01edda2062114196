//! The `texpr` binary from outside, on a small model written for it:
//! `run` (random inputs, `.npy` and `.pb` inputs, `--output`, `--bench`,
//! `--profile`), `inspect` (`--passes`), `tune` (not yet), bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use prost::Message;
use texpr::graph::{Model, Value};
use texpr::prelude::*;

#[path = "../../onnx/tests/common/mod.rs"]
mod common;

fn texpr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_texpr")).args(args).output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// A fresh folder for one test, with the small model in it.
fn dir(test: &str) -> (PathBuf, PathBuf) {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{test}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let model = d.join("small.onnx");
    std::fs::write(&model, common::small_model().encode_to_vec()).unwrap();
    (d, model)
}

fn input() -> Tensor<f32> {
    Tensor::from_fn(&[1, 3, 8, 8], |i| ((i[1] * 64 + i[2] * 8 + i[3]) % 17) as f32 * 0.125 - 1.0)
}

/// A little-endian f32 `.npy` file (version 1.0).
fn write_npy(path: &Path, t: &Tensor<f32>) {
    let dims: Vec<String> = t.shape().iter().map(|d| d.to_string()).collect();
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}", dims.join(", "));
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(t.as_slice().iter().flat_map(|x| x.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

fn read_npy_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert!(String::from_utf8_lossy(&bytes[10..10 + len]).contains("'<f4'"));
    bytes[10 + len..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn expected(model: &Path) -> Vec<f32> {
    let m = Model::load_onnx(model).unwrap().compile(Target::Cpu).unwrap();
    let y: Tensor<f32> = m.run(&[Value::from(input())]).unwrap().remove(0).try_into().unwrap();
    y.as_slice().to_vec()
}

#[test]
fn run_on_random_data_benches_and_profiles() {
    let (_, model) = dir("random");
    let o = texpr(&["run", model.to_str().unwrap(), "--bench", "3", "--profile"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("output y: f32[1, 4, 8, 8]"), "{out}");
    assert!(out.contains("bench: 3 runs, median"), "{out}");
    assert!(out.contains("Conv+Add+Relu"), "the fused kernel in the profile: {out}");
}

#[test]
fn npy_and_pb_inputs_give_the_model_s_outputs() {
    let (d, model) = dir("inputs");
    let want = expected(&model);
    // .npy in, .npy out.
    write_npy(&d.join("x.npy"), &input());
    let x = format!("x={}", d.join("x.npy").display());
    let out = d.join("out");
    let o = texpr(&["run", model.to_str().unwrap(), "--input", &x, "--output", out.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(read_npy_f32(&out.join("y.npy")), want);
    // An ONNX TensorProto in.
    let mut t = common::tensor("x", texpr_onnx::proto::DataType::Float, &[1, 3, 8, 8]);
    t.raw_data = input().as_slice().iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(d.join("x.pb"), t.encode_to_vec()).unwrap();
    let x = format!("x={}", d.join("x.pb").display());
    let out2 = d.join("out2");
    let o = texpr(&["run", model.to_str().unwrap(), "--input", &x, "--output", out2.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(read_npy_f32(&out2.join("y.npy")), want);
    // The interpreter agrees, with the graph passes off too.
    for extra in [&["--target", "interp"][..], &["--no-optimize"][..]] {
        let out3 = d.join("out3");
        let mut args = vec!["run", model.to_str().unwrap(), "--input", &x, "--output", out3.to_str().unwrap()];
        args.extend(extra);
        let o = texpr(&args);
        assert!(o.status.success(), "{:?}", text(&o));
        let got = read_npy_f32(&out3.join("y.npy"));
        assert!(got.iter().zip(&want).all(|(g, w)| (g - w).abs() <= 1e-5 * (1.0 + w.abs())), "{extra:?}");
    }
}

#[test]
fn inspect_shows_the_graph_and_its_passes() {
    let (_, model) = dir("inspect");
    let o = texpr(&["inspect", model.to_str().unwrap()]);
    let (out, _) = text(&o);
    assert!(o.status.success());
    assert!(out.contains("input x f32 [?, 3, 8, 8]") && out.contains("= Conv(x, w)"), "{out}");
    let o = texpr(&["inspect", model.to_str().unwrap(), "--passes"]);
    let (out, _) = text(&o);
    assert!(out.contains("== imported ==") && out.contains("== fuse ==") && out.contains("Fused("), "{out}");
}

#[test]
fn tune_says_not_yet() {
    let (_, model) = dir("tune");
    let o = texpr(&["tune", model.to_str().unwrap(), "--target", "cpu"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("not yet"));
    let help = text(&texpr(&["tune", "--help"])).0;
    assert!(help.contains("not yet"), "{help}");
}

#[test]
fn bad_input_is_an_error_naming_it() {
    let (d, model) = dir("bad");
    std::fs::write(d.join("junk.onnx"), b"not a model at all").unwrap();
    let o = texpr(&["run", d.join("junk.onnx").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("junk.onnx"), "{:?}", text(&o));
    let o = texpr(&["run", model.to_str().unwrap(), "--input", "nope=x.npy"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("no input `nope`"), "{:?}", text(&o));
    write_npy(&d.join("small.npy"), &Tensor::from_fn(&[1, 3, 4, 4], |_| 0.0));
    let x = format!("x={}", d.join("small.npy").display());
    let o = texpr(&["run", model.to_str().unwrap(), "--input", &x]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("input `x`"), "{:?}", text(&o));
    let o = texpr(&["run", model.to_str().unwrap(), "--target", "tpu"]);
    assert!(!o.status.success());
}
