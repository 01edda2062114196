//! `QuantizeLinear` and `DequantizeLinear` (per tensor or per axis):
//! quantizing rounds half to even and saturates, as ONNX specifies.

use texpr_dsl::te::{self, Expr, FuncBuilder, Ident, StageDef};
use texpr_dsl::{DType, Scalar};

use crate::{Attrs, Impl, Input, dims, idx, ty, var};

type R<T> = Result<T, String>;

/// The index of a scale or zero point at output position `i...`: a scalar,
/// or one value per element along `axis`.
fn param_index(p: &Input<'_>, x: &[usize], axis: usize, block: i64) -> R<Vec<Expr>> {
    match p.shape.len() {
        0 => Ok(vec![]),
        // Blocked: the parameter has the input's rank, the axis in blocks
        // of `block_size` elements.
        n if n == x.len() && block > 0 => {
            let fits = (0..n)
                .all(|k| if k == axis { p.shape[k] == x[k].div_ceil(block as usize) } else { p.shape[k] == x[k] });
            if !fits {
                return Err(format!("a parameter of shape {:?} for {:?} in blocks of {block}", p.shape, x));
            }
            Ok((0..n).map(|k| if k == axis { var(k) / Expr::int(block as i128) } else { var(k) }).collect())
        }
        1 if p.shape[0] == 1 => Ok(vec![Expr::int(0)]),
        1 => Ok(vec![var(axis)]),
        _ => Err(format!("a parameter of shape {:?} (per tensor, per axis, or blocked with block_size)", p.shape)),
    }
}

/// The quantization axis; only checked where a parameter is per axis
/// (`per_axis`), as ONNX ignores it for per-tensor parameters.
fn axis(attrs: &dyn Attrs, r: usize, per_axis: bool) -> R<usize> {
    let a = attrs.int("axis").unwrap_or(1);
    let b = if a < 0 { a + r as i64 } else { a };
    match usize::try_from(b).ok().filter(|b| *b < r) {
        Some(b) => Ok(b),
        None if !per_axis => Ok(0),
        None => Err(format!("axis {a} for rank {r}")),
    }
}

fn per_axis(p: &[Option<&Input<'_>>]) -> bool {
    p.iter().flatten().any(|p| !p.shape.is_empty() && p.shape.iter().product::<usize>() > 1)
}

/// `v` (an `f64` expression) rounded half to even: floor, then up past .5,
/// and at exactly .5 up only from an odd floor.
pub(crate) fn round_half_even(v: Expr) -> Expr {
    let c = |x: f64| Expr::typed(Scalar::F64(x));
    let fl = te::floor(v.clone());
    let d = v - fl.clone();
    let odd = fl.clone() - te::floor(fl.clone() * c(0.5)) * c(2.0);
    let up = te::select(d.clone().gt(c(0.5)), c(1.0), te::select(d.lt(c(0.5)), c(0.0), odd));
    fl + up
}

pub(crate) fn quantize(attrs: &dyn Attrs, x: Input<'_>, scale: Input<'_>, zp: Option<Input<'_>>) -> R<Impl> {
    if !x.dtype.is_float() || scale.dtype != x.dtype && !scale.dtype.is_float() {
        return Err(format!("QuantizeLinear of `{}` by `{}`", x.dtype, scale.dtype));
    }
    let t = match zp {
        Some(z) => z.dtype,
        None => attrs.int("output_dtype").and_then(crate::onnx_dtype).unwrap_or(DType::U8),
    };
    if !matches!(t, DType::U8 | DType::I8 | DType::U16 | DType::I16) {
        return Err(format!("quantizing to `{t}` is not supported"));
    }
    let r = x.shape.len();
    let a = axis(attrs, r, per_axis(&[Some(&scale), zp.as_ref()]))?;
    let block = attrs.int("block_size").unwrap_or(0);
    let mut f = FuncBuilder::new("quantize");
    let tx = f.input("x", x.dtype, dims(x.shape));
    let ts = f.input("scale", scale.dtype, dims(scale.shape));
    let w = DType::F64;
    let v = tx.at((0..r).map(var)).cast(w) / ts.at(param_index(&scale, x.shape, a, block)?).cast(w);
    let c = |x: f64| Expr::typed(Scalar::F64(x));
    let mut q = round_half_even(v);
    if let Some(z) = zp {
        let tz = f.input("zero_point", z.dtype, dims(z.shape));
        q = q + tz.at(param_index(&z, x.shape, a, block)?).cast(w);
    }
    let (lo, hi) = texpr_dsl::value::int_range(t);
    let body = te::clamp(q, c(lo as f64), c(hi as f64)).cast(t);
    f.output(t, dims(x.shape));
    let y = f.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(t, x.shape)), idx: idx(r), body });
    f.ret([y]);
    Ok(Impl::kernel(f.clone()))
}

pub(crate) fn dequantize(attrs: &dyn Attrs, x: Input<'_>, scale: Input<'_>, zp: Option<Input<'_>>) -> R<Impl> {
    if !matches!(x.dtype, DType::U8 | DType::I8 | DType::U16 | DType::I16 | DType::I32) || !scale.dtype.is_float() {
        return Err(format!("DequantizeLinear of `{}` by `{}`", x.dtype, scale.dtype));
    }
    let r = x.shape.len();
    let a = axis(attrs, r, per_axis(&[Some(&scale), zp.as_ref()]))?;
    let block = attrs.int("block_size").unwrap_or(0);
    let t = scale.dtype;
    let mut f = FuncBuilder::new("dequantize");
    let tx = f.input("x", x.dtype, dims(x.shape));
    let ts = f.input("scale", scale.dtype, dims(scale.shape));
    let mut v = tx.at((0..r).map(var)).cast(DType::F64);
    if let Some(z) = zp {
        let tz = f.input("zero_point", z.dtype, dims(z.shape));
        v = v - tz.at(param_index(&z, x.shape, a, block)?).cast(DType::F64);
    }
    let body = (v * ts.at(param_index(&scale, x.shape, a, block)?).cast(DType::F64)).cast(t);
    f.output(t, dims(x.shape));
    let y = f.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(t, x.shape)), idx: idx(r), body });
    f.ret([y]);
    Ok(Impl::kernel(f.clone()))
}
