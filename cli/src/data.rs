//! Tensors in and out of files: `.npy` (NumPy's format, through `npyz`),
//! ONNX `TensorProto` (`.pb`, what ONNX's test data sets hold), and seeded
//! random inputs.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use npyz::WriterBuilder;
use texpr::graph::{Value, ValueInfo};
use texpr::prelude::*;
use texpr::{DType, Scalar, bf16, f16};

/// Reads a `.npy` or `.pb` file as a value.
pub fn read(path: &Path) -> Result<Value, String> {
    let at = |e: String| format!("`{}`: {e}", path.display());
    match path.extension().and_then(|e| e.to_str()) {
        Some("pb") => {
            let bytes = std::fs::read(path).map_err(|e| at(e.to_string()))?;
            let name = path.display().to_string();
            let c = texpr_onnx::decode_tensor(&name, &bytes).map_err(|e| at(e.to_string()))?;
            Value::from_le_bytes(c.dtype, &c.shape, &c.bytes).map_err(|e| at(e.to_string()))
        }
        Some("npy") => read_npy(path).map_err(at),
        _ => Err(at("an input file is `.npy` or `.pb` (an ONNX TensorProto)".into())),
    }
}

fn read_npy(path: &Path) -> Result<Value, String> {
    let f = File::open(path).map_err(|e| e.to_string())?;
    let npy = npyz::NpyFile::new(BufReader::new(f)).map_err(|e| e.to_string())?;
    if npy.order() == npyz::Order::Fortran {
        return Err("Fortran-ordered arrays are not supported (save it C-ordered)".into());
    }
    let shape: Vec<usize> = npy.shape().iter().map(|d| *d as usize).collect();
    let ty = npy.dtype().descr();
    let io = |e: std::io::Error| e.to_string();
    macro_rules! load {
        ($t:ty) => {
            Tensor::<$t>::from_vec(&shape, npy.into_vec::<$t>().map_err(io)?)
                .map(Value::from)
                .map_err(|e| e.to_string())
        };
    }
    // The type descriptor without its byte order (`<f4`, `|b1`).
    match ty.trim_matches('\'').trim_start_matches(['<', '|', '=']) {
        "f4" => load!(f32),
        "f8" => load!(f64),
        "f2" => load!(f16),
        "i1" => load!(i8),
        "i2" => load!(i16),
        "i4" => load!(i32),
        "i8" => load!(i64),
        "u1" => load!(u8),
        "u2" => load!(u16),
        "u4" => load!(u32),
        "u8" => load!(u64),
        "b1" => load!(bool),
        other => Err(format!("the NumPy type `{other}` is not one texpr computes in")),
    }
}

/// Writes a value as `.npy` (`bf16`, which NumPy lacks, as `f32`).
pub fn write_npy(path: &Path, v: &Value) -> Result<(), String> {
    let at = |e: std::io::Error| format!("`{}`: {e}", path.display());
    let f = File::create(path).map_err(at)?;
    let shape: Vec<u64> = v.shape().iter().map(|d| *d as u64).collect();
    macro_rules! save {
        ($t:ty, $data:expr) => {{
            let mut w = npyz::WriteOptions::<$t>::new()
                .default_dtype()
                .shape(&shape)
                .writer(BufWriter::new(f))
                .begin_nd()
                .map_err(at)?;
            w.extend($data).map_err(at)?;
            w.finish().map_err(at)
        }};
    }
    macro_rules! typed {
        ($t:ty) => {{
            let t: Tensor<$t> = v.clone().try_into().map_err(|e: texpr::Error| e.to_string())?;
            save!($t, t.as_slice().iter().copied())
        }};
    }
    match v.dtype() {
        DType::F32 => typed!(f32),
        DType::F64 => typed!(f64),
        DType::F16 => typed!(f16),
        DType::BF16 => {
            let t: Tensor<bf16> = v.clone().try_into().map_err(|e: texpr::Error| e.to_string())?;
            save!(f32, t.as_slice().iter().map(|x| x.to_f32()))
        }
        DType::I8 => typed!(i8),
        DType::I16 => typed!(i16),
        DType::I32 => typed!(i32),
        DType::I64 => typed!(i64),
        DType::U8 => typed!(u8),
        DType::U16 => typed!(u16),
        DType::U32 => typed!(u32),
        DType::U64 => typed!(u64),
        DType::Bool => typed!(bool),
    }
}

/// `NAME` as a file name: every character other than a letter, digit,
/// `.`, `-` or `_` becomes `_`.
pub fn file_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect()
}

/// Seeded random data for an input (unknown dims 1): floats uniform in
/// [-1, 1), integers in [0, 10), booleans either.
pub fn random(info: &ValueInfo, seed: u64) -> Value {
    let shape: Vec<usize> = info.shape.iter().map(|d| d.unwrap_or(1)).collect();
    let n: usize = shape.iter().product();
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    if info.dtype == DType::F32 {
        let data: Vec<f32> = (0..n).map(|_| (next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0).collect();
        return Value::from(Tensor::from_vec(&shape, data).unwrap_or_else(|_| Tensor::zeros(&shape)));
    }
    let vals: Vec<Scalar> = (0..n)
        .map(|_| {
            let r = next();
            if info.dtype.is_float() {
                Scalar::from_f64(info.dtype, (r >> 11) as f64 / (1u64 << 52) as f64 - 1.0)
            } else if info.dtype == DType::Bool {
                Scalar::from_f64(DType::Bool, (r & 1) as f64)
            } else {
                Scalar::from_f64(info.dtype, (r % 10) as f64)
            }
        })
        .collect();
    Value::from_scalars(info.dtype, &shape, &vals)
}

/// `dtype[shape]`, and for numbers the range, mean and first values.
pub fn summary(v: &Value) -> String {
    let dims: Vec<String> = v.shape().iter().map(|d| d.to_string()).collect();
    let mut s = format!("{}[{}]", v.dtype(), dims.join(", "));
    if v.is_empty() {
        return s;
    }
    let xs: Vec<f64> = (0..v.len()).filter_map(|i| v.get(i)).map(|x| x.as_f64()).collect();
    let (lo, hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(*x), b.max(*x)));
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let head: Vec<String> = xs.iter().take(6).map(|x| format!("{x:.6}")).collect();
    let more = if xs.len() > 6 { ", ..." } else { "" };
    s.push_str(&format!("  min {lo:.6}  max {hi:.6}  mean {mean:.6}  [{}{more}]", head.join(", ")));
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn output_names_become_file_names() {
        assert_eq!(super::file_name("gpu_0/softmax_1:0"), "gpu_0_softmax_1_0");
        assert_eq!(super::file_name("a.b-c_d"), "a.b-c_d");
        assert_eq!(super::file_name("y ü"), "y__");
    }
}
