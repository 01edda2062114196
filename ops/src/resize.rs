//! `Resize` (and opset 9's `Upsample`): nearest, linear and cubic
//! interpolation over any axes, every coordinate transformation ONNX
//! defines, sizes or scales (with `axes` and `keep_aspect_ratio_policy`),
//! `exclude_outside`, `extrapolation_value` and antialiased downsampling
//! (the kernel widened by 1 / scale) — as ONNX's reference computes them
//! (coordinates and weights in `f64`).
//!
//! Per resized axis the output index `i` maps to a source coordinate `x`;
//! with `q = ceil(x) - 1` and `r = x - q` in `(0, 1]`, nearest picks `q` or
//! `q + 1` by `r` and the rounding mode, linear weighs `q` and `q + 1` by
//! `1 - r` and `r`, cubic `q - 1 .. q + 2` by Keys' kernel; taps past the
//! edge read the edge (clamped indices). The axes combine as a product of
//! their weights (the reference's axis-by-axis passes are linear).

use texpr_dsl::te::{self, Expr, FuncBuilder, Ident, StageDef};
use texpr_dsl::{DType, Scalar};

use crate::{Attrs, Impl, Input, dims, float_only, idx, ints_of, ty, var};

type R<T> = Result<T, String>;

/// The most taps per axis an antialiased kernel may have (downsampling by
/// up to 1/32 for linear, 1/16 for cubic).
const MAX_TAPS: i64 = 64;

fn f(v: f64) -> Expr {
    Expr::typed(Scalar::F64(v))
}

/// An input that is given and not empty.
fn nonempty(i: Option<Input<'_>>) -> Option<Input<'_>> {
    i.filter(|i| i.shape.iter().product::<usize>() > 0)
}

fn floats_of(v: &texpr_dsl::AnyTensor) -> Option<Vec<f64>> {
    (0..v.len()).map(|i| v.get(i).map(|s| s.as_f64())).collect()
}

pub(crate) fn resize(op: &str, opset: i64, attrs: &dyn Attrs, ins: &[Option<Input<'_>>]) -> R<Impl> {
    let x = ins.first().copied().flatten().ok_or("input 0 is missing")?;
    let r = x.shape.len();
    let legacy = op == "Upsample" || opset < 11;
    let mode = attrs.string("mode").unwrap_or_else(|| "nearest".into());
    let antialias = attrs.int("antialias").unwrap_or(0) != 0;
    let (coord, nearest) = if legacy {
        ("asymmetric".to_string(), "floor".to_string())
    } else {
        (
            attrs.string("coordinate_transformation_mode").unwrap_or_else(|| "half_pixel".into()),
            attrs.string("nearest_mode").unwrap_or_else(|| "round_prefer_floor".into()),
        )
    };
    let value = |k: usize| ins.get(k).copied().flatten();
    let (roi_in, scales_in, sizes_in) = if legacy {
        (None, if op == "Upsample" && opset < 9 { None } else { value(1) }, None)
    } else {
        (value(1), value(2), value(3))
    };
    let axes: Vec<usize> = match attrs.ints("axes") {
        Some(a) => a
            .iter()
            .map(|a| {
                let a = if *a < 0 { a + r as i64 } else { *a };
                usize::try_from(a).ok().filter(|a| *a < r).ok_or_else(|| format!("axis {a} for rank {r}"))
            })
            .collect::<R<_>>()?,
        None => (0..r).collect(),
    };
    let mut scale: Vec<f64> = vec![1.0; r];
    let mut out: Vec<usize> = x.shape.to_vec();
    if let Some(s) = nonempty(sizes_in) {
        let sizes = s.value.and_then(ints_of).ok_or("the sizes must be known")?;
        if sizes.len() != axes.len() || sizes.iter().any(|v| *v < 0) {
            return Err(format!("sizes {sizes:?} for axes {axes:?}"));
        }
        for (k, a) in axes.iter().enumerate() {
            out[*a] = sizes[k] as usize;
            scale[*a] = sizes[k] as f64 / x.shape[*a] as f64;
        }
        let policy = attrs.string("keep_aspect_ratio_policy").unwrap_or_else(|| "stretch".into());
        if policy != "stretch" {
            let pick = axes.iter().map(|a| scale[*a]);
            let s = match policy.as_str() {
                "not_larger" => pick.fold(f64::INFINITY, f64::min),
                "not_smaller" => pick.fold(0.0, f64::max),
                other => return Err(format!("keep_aspect_ratio_policy `{other}`")),
            };
            for a in &axes {
                scale[*a] = s;
                out[*a] = (s * x.shape[*a] as f64 + 0.5) as usize;
            }
        }
    } else if let Some(s) = nonempty(scales_in) {
        let v = s.value.and_then(floats_of).ok_or("the scales must be known")?;
        let per: Vec<f64> = if legacy && op == "Upsample" && opset < 9 { attrs_scales(attrs)? } else { v };
        if per.len() != axes.len() || per.iter().any(|v| *v <= 0.0 || !v.is_finite()) {
            return Err(format!("scales {per:?} for axes {axes:?}"));
        }
        for (k, a) in axes.iter().enumerate() {
            scale[*a] = per[k];
            out[*a] = (per[k] * x.shape[*a] as f64) as usize;
        }
    } else if op == "Upsample" {
        let per = attrs_scales(attrs)?;
        if per.len() != r {
            return Err(format!("scales {per:?} for rank {r}"));
        }
        for a in 0..r {
            scale[a] = per[a];
            out[a] = (per[a] * x.shape[a] as f64) as usize;
        }
    } else {
        return Err("neither scales nor sizes are given".into());
    }
    // The region of interest (tf_crop_and_resize): starts, then ends.
    let mut roi: Vec<(f64, f64)> = vec![(0.0, 1.0); r];
    if coord == "tf_crop_and_resize" {
        let v = nonempty(roi_in).and_then(|i| i.value).and_then(floats_of).ok_or("the roi must be known")?;
        if v.len() != 2 * axes.len() {
            return Err(format!("roi {v:?} for axes {axes:?}"));
        }
        for (k, a) in axes.iter().enumerate() {
            roi[*a] = (v[k], v[axes.len() + k]);
        }
    }
    let interpolating = mode != "nearest";
    if interpolating {
        float_only("Resize", x.dtype)?;
    }
    let a_coef = attrs.float("cubic_coeff_a").map_or(-0.75, f64::from);
    let exclude = attrs.int("exclude_outside").unwrap_or(0) != 0;
    let extrapolation = attrs.float("extrapolation_value").map_or(0.0, f64::from);
    let mut fb = FuncBuilder::new("resize");
    let tx = fb.input("x", x.dtype, dims(x.shape));
    // Per axis: the taps, each an index and (interpolating) a weight.
    let mut taps: Vec<Vec<(Expr, Expr)>> = vec![];
    let mut outside: Option<Expr> = None;
    for a in 0..r {
        let (n_in, n_out) = (x.shape[a] as f64, out[a] as f64);
        let identity = scale[a] == 1.0 && out[a] == x.shape[a] && roi[a] == (0.0, 1.0);
        if identity {
            taps.push(vec![(var(a), f(1.0))]);
            continue;
        }
        let i = var(a).cast(DType::F64);
        let s = scale[a];
        // The output extent as the reference has it: `scale · input`.
        let width = s * n_in;
        let xo = match coord.as_str() {
            "half_pixel" => (i + f(0.5)) / f(s) - f(0.5),
            "pytorch_half_pixel" if n_out <= 1.0 => f(-0.5),
            "pytorch_half_pixel" => (i + f(0.5)) / f(s) - f(0.5),
            "align_corners" if width == 1.0 => f(0.0),
            "align_corners" => i * f((n_in - 1.0) / (width - 1.0)),
            "asymmetric" => i / f(s),
            "half_pixel_symmetric" => {
                let offset = n_in / 2.0 * (1.0 - n_out / width);
                f(offset) + (i + f(0.5)) / f(s) - f(0.5)
            }
            "tf_crop_and_resize" => {
                let (lo, hi) = roi[a];
                let e = if width == 1.0 {
                    f((hi - lo) * (n_in - 1.0) / 2.0)
                } else {
                    i * f((hi - lo) * (n_in - 1.0) / (width - 1.0))
                } + f(lo * (n_in - 1.0));
                let out_here = e.clone().lt(f(0.0)).or(e.clone().gt(f(n_in - 1.0)));
                outside = Some(match outside {
                    Some(o) => o.or(out_here),
                    None => out_here,
                });
                e
            }
            other => return Err(format!("coordinate_transformation_mode `{other}`")),
        };
        let q = te::ceil(xo.clone()) - f(1.0);
        let ratio = xo - q.clone();
        let at = |offset: f64| {
            let k = (q.clone() + f(offset)).cast(DType::I64);
            te::min(te::max(k, Expr::int(0)), Expr::int(x.shape[a] as i128 - 1))
        };
        let axis_taps = match mode.as_str() {
            "nearest" => {
                let up = match nearest.as_str() {
                    "round_prefer_floor" => ratio.gt(f(0.5)),
                    "round_prefer_ceil" => ratio.ge(f(0.5)),
                    "floor" => ratio.ge(f(1.0)),
                    "ceil" => Expr::bool(true),
                    other => return Err(format!("nearest_mode `{other}`")),
                };
                let k = te::select(up, q.clone() + f(1.0), q.clone()).cast(DType::I64);
                vec![(te::min(te::max(k, Expr::int(0)), Expr::int(x.shape[a] as i128 - 1)), f(1.0))]
            }
            "linear" | "cubic" => {
                // Tap offsets from `q` and their weights; antialiased
                // downsampling widens the kernel by 1 / scale.
                let sc = if antialias { s.min(1.0) } else { 1.0 };
                let (offsets, mut ws): (Vec<f64>, Vec<Expr>) = if mode == "linear" && !antialias {
                    (vec![0.0, 1.0], vec![f(1.0) - ratio.clone(), ratio.clone()])
                } else if mode == "cubic" && !antialias {
                    // Keys' kernel at the taps' distances 1 + r, r, 1 - r,
                    // 2 - r (the reference's four formulas).
                    let c = a_coef;
                    let r1 = ratio.clone() + f(1.0);
                    let w0 = ((f(c) * r1.clone() - f(5.0 * c)) * r1.clone() + f(8.0 * c)) * r1 - f(4.0 * c);
                    let w1 = ((f(c + 2.0) * ratio.clone() - f(c + 3.0)) * ratio.clone()) * ratio.clone() + f(1.0);
                    let m = f(1.0) - ratio.clone();
                    let w2 = ((f(c + 2.0) * m.clone() - f(c + 3.0)) * m.clone()) * m.clone() + f(1.0);
                    let m1 = m + f(1.0);
                    let w3 = ((f(c) * m1.clone() - f(5.0 * c)) * m1.clone() + f(8.0 * c)) * m1 - f(4.0 * c);
                    (vec![-1.0, 0.0, 1.0, 2.0], vec![w0, w1, w2, w3])
                } else {
                    let reach = if mode == "linear" { 1.0 } else { 2.0 };
                    let start = (-reach / sc).floor() + 1.0;
                    let n = (2.0 - 2.0 * start) as i64;
                    // A scale from the model: a kernel of more taps than
                    // this is a model error, not a definition to build.
                    if n > MAX_TAPS {
                        return Err(format!(
                            "antialiased {mode} resizing by {s} needs {n} taps per axis (at most {MAX_TAPS})"
                        ));
                    }
                    let offs: Vec<f64> = (0..n).map(|k| start + k as f64).collect();
                    let raw: Vec<Expr> = offs
                        .iter()
                        .map(|o| {
                            let d = te::abs((f(*o) - ratio.clone()) * f(sc));
                            if mode == "linear" {
                                te::max(f(1.0) - d, f(0.0))
                            } else {
                                let c = a_coef;
                                let (d2, d3) = (d.clone() * d.clone(), d.clone() * d.clone() * d.clone());
                                let near = f(c + 2.0) * d3.clone() - f(c + 3.0) * d2.clone() + f(1.0);
                                let far = f(c) * d3 - f(5.0 * c) * d2 + f(8.0 * c) * d.clone() - f(4.0 * c);
                                te::select(d.clone().le(f(1.0)), near, te::select(d.lt(f(2.0)), far, f(0.0)))
                            }
                        })
                        .collect();
                    let total = raw.iter().cloned().reduce(|p, q| p + q).unwrap_or_else(|| f(1.0));
                    (offs, raw.into_iter().map(|w| w / total.clone()).collect())
                };
                if exclude {
                    // Taps outside the input weigh nothing; the rest are
                    // renormalized.
                    let inside = |off: f64| {
                        let k = q.clone() + f(off);
                        k.clone().ge(f(0.0)).and(k.le(f(n_in - 1.0)))
                    };
                    ws = ws.into_iter().zip(&offsets).map(|(w, off)| te::select(inside(*off), w, f(0.0))).collect();
                    let total = ws.iter().cloned().reduce(|p, q| p + q).unwrap_or_else(|| f(1.0));
                    let total = te::select(total.clone().eq(f(0.0)), f(1.0), total);
                    ws = ws.into_iter().map(|w| w / total.clone()).collect();
                }
                ws.into_iter().zip(offsets).map(|(w, off)| (at(off), w)).collect()
            }
            other => return Err(format!("mode `{other}`")),
        };
        taps.push(axis_taps);
    }
    // Every combination of the axes' taps.
    let mut terms: Vec<(Vec<Expr>, Expr)> = vec![(vec![], f(1.0))];
    for axis in &taps {
        terms = terms
            .into_iter()
            .flat_map(|(ix, w)| {
                axis.iter().map(move |(i, v)| {
                    let mut ix = ix.clone();
                    ix.push(i.clone());
                    (ix, if interpolating { w.clone() * v.clone() } else { w.clone() })
                })
            })
            .collect();
    }
    let body = if interpolating {
        let sum = terms
            .into_iter()
            .map(|(ix, w)| tx.at(ix).cast(DType::F64) * w)
            .reduce(|p, q| p + q)
            .unwrap_or_else(|| f(0.0));
        let v = match outside {
            Some(o) => te::select(o, f(extrapolation), sum),
            None => sum,
        };
        v.cast(x.dtype)
    } else {
        let (ix, _) = terms.into_iter().next().ok_or("no taps")?;
        let v = tx.at(ix);
        match outside {
            Some(o) => te::select(o, Expr::typed(Scalar::from_f64(x.dtype, extrapolation)), v),
            None => v,
        }
    };
    fb.output(x.dtype, dims(&out));
    let y = fb.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(x.dtype, &out)), idx: idx(r), body });
    fb.ret([y]);
    Ok(Impl::kernel(fb))
}

/// Opset 7's `Upsample` scales attribute.
fn attrs_scales(attrs: &dyn Attrs) -> R<Vec<f64>> {
    attrs.floats("scales").map(|v| v.into_iter().map(f64::from).collect()).ok_or_else(|| "no scales".into())
}

#[cfg(test)]
mod tests {
    use texpr_dsl::{AnyTensor, DType, Tensor};

    use crate::{Attrs, Input, implement};

    struct Antialias;

    impl Attrs for Antialias {
        fn int(&self, name: &str) -> Option<i64> {
            (name == "antialias").then_some(1)
        }
        fn float(&self, _: &str) -> Option<f32> {
            None
        }
        fn ints(&self, _: &str) -> Option<Vec<i64>> {
            None
        }
        fn string(&self, name: &str) -> Option<String> {
            (name == "mode").then(|| "linear".into())
        }
        fn tensor(&self, _: &str) -> Option<AnyTensor> {
            None
        }
    }

    /// A model's tiny antialiased scale is an error, not a kernel of
    /// millions of taps built for minutes.
    #[test]
    fn antialiased_kernels_are_bounded() {
        let x = Input { dtype: DType::F32, shape: &[1, 1, 4, 4], value: None };
        let scales = AnyTensor::from(Tensor::from_vec([4], vec![1.0f32, 1.0, 1e-6, 1e-6]).unwrap());
        let s = Input { dtype: DType::F32, shape: &[4], value: Some(&scales) };
        let e = implement("Resize", 19, &Antialias, &[Some(x), None, Some(s)], 1).unwrap_err();
        assert!(e.contains("taps"), "{e}");
        let scales = AnyTensor::from(Tensor::from_vec([4], vec![1.0f32, 1.0, 0.5, 0.5]).unwrap());
        let s = Input { dtype: DType::F32, shape: &[4], value: Some(&scales) };
        assert!(implement("Resize", 19, &Antialias, &[Some(x), None, Some(s)], 1).is_ok());
    }
}
