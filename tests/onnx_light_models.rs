//! The nine light models the `onnx` package ships, end to end on the CPU
//! JIT against their shipped outputs, fed as ONNX's runner feeds them:
//! `arange(n).reshape(shape) / n` (unknown dims 1), compared with ONNX's
//! tolerances (|got - want| <= 1e-7 + 1e-3 |want|). Data from
//! scripts/onnx-deps.sh (`$TEXPR_ONNX_DATA`); without it the test fails
//! under `CI=true`.

use std::time::Instant;

use texpr::graph::{Model, Value};

#[path = "../onnx/tests/common/mod.rs"]
mod common;
use common::data;
use texpr::prelude::*;

fn check(name: &str) {
    let Some(d) = data() else { return };
    let dir = d.join("light");
    let t = Instant::now();
    let model = Model::load_onnx(dir.join(format!("light_{name}.onnx"))).unwrap();
    let compiled = model.compile(Target::Cpu).unwrap();
    let input = &model.inputs()[0];
    let shape: Vec<usize> = input.shape.iter().map(|d| d.unwrap_or(1)).collect();
    let n: usize = shape.iter().product();
    let x = Tensor::from_fn(&shape, {
        let mut k = 0usize;
        move |_| {
            k += 1;
            (k - 1) as f32 / n as f32
        }
    });
    let got = compiled.run(&[Value::from(x)]).unwrap_or_else(|e| panic!("{name}: {e}"));
    let pb = std::fs::read(dir.join(format!("light_{name}_output_0.pb"))).unwrap();
    let c = texpr_onnx::decode_tensor("out", &pb).unwrap();
    let want = Value::from_le_bytes(c.dtype, &c.shape, &c.bytes).unwrap();
    let got = &got[0];
    assert_eq!((got.dtype(), got.shape()), (want.dtype(), want.shape()), "{name}");
    for i in 0..want.len() {
        let (g, w) = (got.get(i).unwrap().as_f64(), want.get(i).unwrap().as_f64());
        assert!((g - w).abs() <= 1e-7 + 1e-3 * w.abs(), "{name}: element {i}: got {g}, want {w}");
    }
    eprintln!("{name}: {:.2} s (first run, kernels compiled)", t.elapsed().as_secs_f64());
}

macro_rules! models {
    ($($m:ident),*) => {$(
        #[test]
        fn $m() {
            check(stringify!($m));
        }
    )*};
}

models!(bvlc_alexnet, densenet121, inception_v1, inception_v2, resnet50, shufflenet, squeezenet, vgg19, zfnet512);
