//! A `TensorProto`'s data as a graph [`Constant`]: its type, dims and
//! little-endian bytes.

use texpr_dsl::{DType, Result};
use texpr_graph::Constant;

use crate::model_err;
use crate::proto::{DataType, TensorProto};

/// The texpr element type of an ONNX `DataType` value; `None` for types
/// texpr does not compute in (strings, complex numbers, 8- and 4-bit
/// floats, 4-bit integers).
pub fn dtype_of(data_type: i32) -> Option<DType> {
    texpr_graph::onnx_dtype(i64::from(data_type))
}

/// Decodes a tensor's data; `model` names the model in errors. The element
/// count is checked against the data before anything is allocated for it.
pub fn tensor_data(model: &str, t: &TensorProto) -> Result<Constant> {
    let at = Some(if t.name.is_empty() { "a tensor".to_string() } else { format!("tensor `{}`", t.name) });
    let err = |m: String| model_err(model, at.clone(), m);
    let dtype = dtype_of(t.data_type).ok_or_else(|| {
        let what = DataType::try_from(t.data_type).map_or(format!("data type {}", t.data_type), |d| format!("{d:?}"));
        err(format!("element type {what} is not supported"))
    })?;
    if t.data_location == 1 || !t.external_data.is_empty() {
        let loc = t.external_data.iter().find(|e| e.key == "location").map_or("?", |e| e.value.as_str());
        return Err(err(format!(
            "its data is in an external file (`{loc}`), which texpr does not read; save the model with its data inside"
        )));
    }
    if t.segment.is_some() {
        return Err(err("segmented tensors are not supported".into()));
    }
    let mut shape = vec![];
    let mut n: u64 = 1;
    for d in &t.dims {
        let d = u64::try_from(*d).map_err(|_| err(format!("negative dim {d} in {:?}", t.dims)))?;
        n = n
            .checked_mul(d)
            .filter(|n| *n <= 1 << 48)
            .ok_or_else(|| err(format!("dims {:?} are too large", t.dims)))?;
        shape.push(d as usize);
    }
    let size = dtype.bytes();
    let n = n as usize;
    let count = |field: &str, len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(err(format!("{len} value(s) in `{field}` for dims {:?} ({n} elements)", t.dims)))
        }
    };
    let mut bytes = Vec::new();
    if !t.raw_data.is_empty() || n == 0 {
        if t.raw_data.len() != n * size {
            return Err(err(format!(
                "{} byte(s) of raw data for dims {:?} of {dtype} ({} expected)",
                t.raw_data.len(),
                t.dims,
                n * size
            )));
        }
        bytes = t.raw_data.clone();
        if dtype == DType::Bool {
            bytes.iter_mut().for_each(|b| *b = u8::from(*b != 0));
        }
        return Ok(Constant { dtype, shape, bytes });
    }
    let (field, len) = match dtype {
        DType::F32 => ("float_data", t.float_data.len()),
        DType::F64 => ("double_data", t.double_data.len()),
        DType::I64 => ("int64_data", t.int64_data.len()),
        DType::U32 | DType::U64 => ("uint64_data", t.uint64_data.len()),
        _ => ("int32_data", t.int32_data.len()),
    };
    // Checked before allocating: the dims of a corrupted file may promise
    // far more than it holds.
    count(field, len)?;
    bytes.reserve(n * size);
    match dtype {
        DType::F32 => {
            t.float_data.iter().for_each(|v| bytes.extend(v.to_le_bytes()));
        }
        DType::F64 => {
            t.double_data.iter().for_each(|v| bytes.extend(v.to_le_bytes()));
        }
        DType::I64 => {
            t.int64_data.iter().for_each(|v| bytes.extend(v.to_le_bytes()));
        }
        DType::U32 | DType::U64 => {
            for v in &t.uint64_data {
                match dtype {
                    DType::U32 => bytes.extend((*v as u32).to_le_bytes()),
                    _ => bytes.extend(v.to_le_bytes()),
                }
            }
        }
        // The narrow types: one value (or a half's bits) per `int32_data`
        // entry, truncated to the type as ONNX's writers store them.
        _ => {
            for v in &t.int32_data {
                match size {
                    1 if dtype == DType::Bool => bytes.push(u8::from(*v != 0)),
                    1 => bytes.push(*v as u8),
                    2 => bytes.extend((*v as u16).to_le_bytes()),
                    _ => bytes.extend(v.to_le_bytes()),
                }
            }
        }
    }
    Ok(Constant { dtype, shape, bytes })
}
