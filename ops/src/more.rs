//! Activations with parameters, comparisons and selection, casts,
//! constants, `Shape`, `Expand`, reductions and `Gather`.

use texpr_dsl::te::{self, Expr, FuncBuilder, Ident, StageDef};
use texpr_dsl::{AnyTensor, DType, ReduceOp, Scalar, Tensor};

use crate::{Attrs, Impl, Input, broadcast_shape, dims, elementwise, float_only, idx, ints_of, ty, var};

type R<T> = Result<T, String>;

fn built(f: &FuncBuilder) -> R<Impl> {
    Ok(Impl::kernel(f.clone()))
}

fn c(t: DType, v: f64) -> Expr {
    Expr::typed(Scalar::from_f64(t, v))
}

/// Parametrized activations (`Clip`, `LeakyRelu`, `HardSigmoid`,
/// `HardSwish`, `Gelu`).
pub(crate) fn activation(op: &str, opset: i64, attrs: &dyn Attrs, ins: &[Option<Input<'_>>]) -> R<Impl> {
    let x = ins.first().copied().flatten().ok_or("input 0 is missing")?;
    let t = x.dtype;
    let name = op.to_ascii_lowercase();
    match op {
        "Clip" => {
            // Bounds: optional rank-0 inputs from opset 11 (kernel inputs,
            // read at run time), attributes before.
            let mut f = FuncBuilder::new("clip");
            let tx = f.input("x", t, dims(x.shape));
            let mut e = tx.at((0..x.shape.len()).map(var));
            if opset >= 11 {
                for (k, name) in [(1, "lo"), (2, "hi")] {
                    if let Some(b) = ins.get(k).copied().flatten() {
                        if b.dtype != t || !b.shape.is_empty() {
                            return Err(format!("Clip's bound {k} is a `{}` of shape {:?}", b.dtype, b.shape));
                        }
                        let tb = f.input(name, t, Vec::<Expr>::new());
                        e = if k == 1 {
                            te::max(e, tb.at(Vec::<Expr>::new()))
                        } else {
                            te::min(e, tb.at(Vec::<Expr>::new()))
                        };
                    }
                }
            } else {
                if let Some(lo) = attrs.float("min") {
                    e = te::max(e, c(t, lo as f64));
                }
                if let Some(hi) = attrs.float("max") {
                    e = te::min(e, c(t, hi as f64));
                }
            }
            f.output(t, dims(x.shape));
            let y = f.add_stage(StageDef {
                name: Ident::new("y"),
                ty: Some(ty(t, x.shape)),
                idx: idx(x.shape.len()),
                body: e,
            });
            f.ret([y]);
            return built(&f);
        }
        "LeakyRelu" => {
            float_only(op, t)?;
            let a = attrs.float("alpha").unwrap_or(0.01) as f64;
            elementwise(&name, &[x], t, x.shape, |v| {
                te::if_(v[0].clone().ge(c(t, 0.0)), v[0].clone(), v[0].clone() * c(t, a))
            })
        }
        "HardSigmoid" | "HardSwish" => {
            float_only(op, t)?;
            let (a, b) = if op == "HardSwish" {
                (1.0 / 6.0, 0.5)
            } else {
                (attrs.float("alpha").unwrap_or(0.2) as f64, attrs.float("beta").unwrap_or(0.5) as f64)
            };
            elementwise(&name, &[x], t, x.shape, |v| {
                let h = te::max(c(t, 0.0), te::min(c(t, 1.0), v[0].clone() * c(t, a) + c(t, b)));
                if op == "HardSwish" { v[0].clone() * h } else { h }
            })
        }
        "Gelu" => {
            float_only(op, t)?;
            let tanh = attrs.string("approximate").is_some_and(|s| s == "tanh");
            elementwise(&name, &[x], t, x.shape, |v| {
                let x = v[0].clone();
                let inner = if tanh {
                    let k = (2.0 / std::f64::consts::PI).sqrt();
                    te::tanh((x.clone() + x.clone() * x.clone() * x.clone() * c(t, 0.044715)) * c(t, k))
                } else {
                    te::erf(x.clone() * c(t, std::f64::consts::FRAC_1_SQRT_2))
                };
                x * c(t, 0.5) * (c(t, 1.0) + inner)
            })
        }
        other => Err(format!("`{other}`")),
    }
    .map(Impl::kernel)
}

/// `Pow`, comparisons and `Where`, with broadcasting.
pub(crate) fn binary(op: &str, ins: &[Input<'_>]) -> R<Impl> {
    let want = if op == "Where" { 3 } else { 2 };
    if ins.len() != want {
        return Err(format!("`{op}` takes {want} inputs, {} given", ins.len()));
    }
    let name = op.to_ascii_lowercase();
    let mut out = vec![];
    for i in ins {
        out = broadcast_shape(&out, i.shape)?;
    }
    let f = match op {
        "Pow" => {
            let (x, y) = (ins[0], ins[1]);
            if !x.dtype.is_numeric() || !y.dtype.is_numeric() {
                return Err(format!("`Pow` of `{}` and `{}`", x.dtype, y.dtype));
            }
            // Integer bases as numpy computes them: in floating point,
            // then converted back.
            let w = if x.dtype.is_float() { x.dtype } else { DType::F64 };
            elementwise(&name, ins, x.dtype, &out, |v| {
                let b = if x.dtype == w { v[0].clone() } else { v[0].clone().cast(w) };
                let e = if y.dtype == w { v[1].clone() } else { v[1].clone().cast(w) };
                let p = te::pow(b, e);
                if x.dtype == w { p } else { p.cast(x.dtype) }
            })?
        }
        "Equal" | "Less" | "Greater" => {
            if ins[0].dtype != ins[1].dtype {
                return Err(format!("inputs of types `{}` and `{}`", ins[0].dtype, ins[1].dtype));
            }
            elementwise(&name, ins, DType::Bool, &out, |v| match op {
                "Equal" => v[0].clone().eq(v[1].clone()),
                "Less" => v[0].clone().lt(v[1].clone()),
                _ => v[0].clone().gt(v[1].clone()),
            })?
        }
        _ => {
            // Where(cond, x, y)
            if ins[0].dtype != DType::Bool || ins[1].dtype != ins[2].dtype {
                return Err(format!("Where of `{}`, `{}` and `{}`", ins[0].dtype, ins[1].dtype, ins[2].dtype));
            }
            elementwise(&name, ins, ins[1].dtype, &out, |v| te::select(v[0].clone(), v[1].clone(), v[2].clone()))?
        }
    };
    Ok(Impl::kernel(f))
}

pub(crate) fn cast(attrs: &dyn Attrs, x: Input<'_>) -> R<Impl> {
    let to = attrs.int("to").ok_or("no `to`")?;
    let t = crate::onnx_dtype(to).ok_or_else(|| format!("cast to ONNX type {to}, which texpr does not compute in"))?;
    // Rust's `as`: `bool as f32` and `x as bool` are not casts there.
    let f = if t == DType::Bool && x.dtype != DType::Bool {
        elementwise("cast", &[x], t, x.shape, |v| v[0].clone().ne(Expr::typed(Scalar::zero(x.dtype))))?
    } else if x.dtype == DType::Bool && t.is_float() {
        elementwise("cast", &[x], t, x.shape, |v| te::select(v[0].clone(), c(t, 1.0), c(t, 0.0)))?
    } else {
        elementwise("cast", &[x], t, x.shape, |v| v[0].clone().cast(t))?
    };
    Ok(Impl::kernel(f))
}

pub(crate) fn shape(attrs: &dyn Attrs, x: Input<'_>) -> R<Impl> {
    let r = x.shape.len() as i64;
    let clamp = |a: i64| if a < 0 { (a + r).max(0) } else { a.min(r) };
    let start = clamp(attrs.int("start").unwrap_or(0));
    let end = clamp(attrs.int("end").unwrap_or(r));
    let v: Vec<i64> =
        x.shape.iter().map(|d| *d as i64).skip(start as usize).take((end - start).max(0) as usize).collect();
    Ok(Impl::Value(AnyTensor::from(Tensor::from_vec([v.len()], v).map_err(|e| e.to_string())?)))
}

pub(crate) fn expand(x: Input<'_>, s: Input<'_>) -> R<Impl> {
    let target = s.value.and_then(ints_of).ok_or("the shape must be known")?;
    let target: Vec<usize> = target
        .iter()
        .map(|d| usize::try_from(*d))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("shape {target:?}"))?;
    let out = broadcast_shape(x.shape, &target)?;
    let f = elementwise("expand", &[x], x.dtype, &out, |v| v[0].clone())?;
    Ok(Impl::kernel(f))
}

/// `ReduceMean/Sum/Max/Min`: axes from the attribute (before opset 18; 13
/// for `ReduceSum`) or the second input.
pub(crate) fn reduce(op: &str, opset: i64, attrs: &dyn Attrs, ins: &[Option<Input<'_>>]) -> R<Impl> {
    let x = ins.first().copied().flatten().ok_or("input 0 is missing")?;
    let r = x.shape.len();
    let from_input = (op == "ReduceSum" && opset >= 13) || opset >= 18;
    let axes = if from_input {
        match ins.get(1).copied().flatten() {
            Some(a) => Some(a.value.and_then(ints_of).ok_or("`axes` must be known")?),
            None => None,
        }
    } else {
        attrs.ints("axes")
    };
    let axes: Vec<usize> = match axes {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|a| {
                let a = if *a < 0 { a + r as i64 } else { *a };
                usize::try_from(a).ok().filter(|a| *a < r).ok_or(format!("axis {a} for rank {r}"))
            })
            .collect::<R<_>>()?,
        _ if attrs.int("noop_with_empty_axes").unwrap_or(0) != 0 => {
            return Ok(Impl::View(x.shape.to_vec()));
        }
        _ => (0..r).collect(),
    };
    let keep = attrs.int("keepdims").unwrap_or(1) != 0;
    let mut out = vec![];
    for k in 0..r {
        if !axes.contains(&k) {
            out.push(x.shape[k]);
        } else if keep {
            out.push(1);
        }
    }
    let rop = match op {
        "ReduceMax" => ReduceOp::Max,
        "ReduceMin" => ReduceOp::Min,
        _ => ReduceOp::Sum,
    };
    if op == "ReduceMean" {
        float_only(op, x.dtype)?;
    }
    let mut f = FuncBuilder::new(op.to_ascii_lowercase().as_str());
    let tx = f.input("x", x.dtype, dims(x.shape));
    // Output position → input index: kept dims from the output's indices
    // (past the kept-1 dims), reduced ones from reduction variables.
    let mut o = 0;
    let mut xi = vec![];
    for k in 0..r {
        if axes.contains(&k) {
            xi.push(Expr::name(format!("r{k}")));
            if keep {
                o += 1;
            }
        } else {
            xi.push(var(o));
            o += 1;
        }
    }
    let rv: Vec<te::RVar> =
        axes.iter().map(|k| te::rvar(format!("r{k}").as_str(), 0i64, Expr::int(x.shape[*k] as i128))).collect();
    let mut body = te::reduce(rop, rv, tx.at(xi));
    if op == "ReduceMean" {
        let n: usize = axes.iter().map(|k| x.shape[*k]).product();
        body = body / c(x.dtype, n.max(1) as f64);
    }
    f.output(x.dtype, dims(&out));
    let y = f.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(x.dtype, &out)), idx: idx(out.len()), body });
    f.ret([y]);
    built(&f)
}

/// `Gather` along `axis`; negative indices count from the end, indices out
/// of range read 0 (ONNX leaves them undefined).
pub(crate) fn gather(attrs: &dyn Attrs, x: Input<'_>, i: Input<'_>) -> R<Impl> {
    if !matches!(i.dtype, DType::I64 | DType::I32) {
        return Err(format!("indices of `{}`", i.dtype));
    }
    let r = x.shape.len() as i64;
    let a = attrs.int("axis").unwrap_or(0);
    let a = if a < 0 { a + r } else { a };
    if !(0..r).contains(&a) {
        return Err(format!("axis {a} for rank {r}"));
    }
    let a = a as usize;
    let q = i.shape.len();
    let mut out: Vec<usize> = x.shape[..a].to_vec();
    out.extend(i.shape);
    out.extend(&x.shape[a + 1..]);
    let mut f = FuncBuilder::new("gather");
    let tx = f.input("x", x.dtype, dims(x.shape));
    let ti = f.input("i", i.dtype, dims(i.shape));
    let n = Expr::int(x.shape[a] as i128);
    // Clamped first, so that `raw + n` cannot overflow whatever the index.
    let raw = te::clamp(ti.at((a..a + q).map(var)).cast(DType::I64), Expr::int(-(x.shape[a] as i128) - 1), n.clone());
    let k = te::select(raw.clone().lt(Expr::int(0)), raw.clone() + n.clone(), raw);
    let mut xi: Vec<Expr> = (0..a).map(var).collect();
    xi.push(k.clone());
    xi.extend((a + q..out.len()).map(var));
    let body = te::if_(k.clone().ge(Expr::int(0)).and(k.lt(n)), tx.at(xi), Expr::typed(Scalar::zero(x.dtype)));
    f.output(x.dtype, dims(&out));
    let y = f.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(x.dtype, &out)), idx: idx(out.len()), body });
    f.ret([y]);
    built(&f)
}

pub(crate) fn constant(attrs: &dyn Attrs) -> R<Impl> {
    if let Some(t) = attrs.tensor("value") {
        return Ok(Impl::Value(t));
    }
    if let Some(v) = attrs.float("value_float") {
        return Ok(Impl::Value(AnyTensor::from(Tensor::from_vec([], vec![v]).map_err(|e| e.to_string())?)));
    }
    if let Some(v) = attrs.int("value_int") {
        return Ok(Impl::Value(AnyTensor::from(Tensor::from_vec([], vec![v]).map_err(|e| e.to_string())?)));
    }
    if let Some(v) = attrs.ints("value_ints") {
        return Ok(Impl::Value(AnyTensor::from(Tensor::from_vec([v.len()], v).map_err(|e| e.to_string())?)));
    }
    Err("only tensor, float, int and ints values are supported".into())
}
