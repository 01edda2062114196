//! Shape and type inference: every value's element type and dims, from the
//! graph inputs' and constants' through each node's rule, with symbolic
//! dims kept where a rule can (broadcasting, pass-through) and unknown
//! where it cannot. Inputs that shape the output (`Reshape`'s shape,
//! `ConstantOfShape`'s, `Unsqueeze`'s axes from opset 13) must be
//! constants. A result that contradicts a declared known dim, an input of
//! the wrong rank or type, or an operator texpr does not know is an error
//! naming the node.

use std::sync::Arc;

use texpr_dsl::{DType, Result};

use crate::shape::{broadcast, show};
use crate::{Attr, Constant, Dim, Graph, NodeId};

/// Infers every node's outputs in order (see the module docs).
pub fn infer(g: &mut Graph) -> Result<()> {
    // Handles and definitions checked first: the rules below index by them.
    g.validate()?;
    for k in 0..g.nodes.len() {
        let id = NodeId(k as u32);
        if g.nodes[k].is_fused() {
            // Typed before fusion, by its members' rules.
            continue;
        }
        let outs = node_types(g, id).map_err(|m| g.node_err(id, m))?;
        let n = &g.nodes[k];
        for (o, (dtype, shape)) in n.outputs.clone().iter().zip(outs) {
            let v = &g.values[o.0 as usize];
            if let (Some(declared), Some(inferred)) = (&v.shape, &shape) {
                let clash = declared.len() != inferred.len()
                    || declared
                        .iter()
                        .zip(inferred)
                        .any(|(a, b)| matches!((a, b), (Dim::Known(x), Dim::Known(y)) if x != y));
                if clash {
                    return Err(g.node_err(
                        id,
                        format!("`{}` is declared {} but computes {}", v.name, show(declared), show(inferred)),
                    ));
                }
            }
            if let (Some(d), Some(t)) = (v.dtype, dtype)
                && d != t
            {
                return Err(g.node_err(id, format!("`{}` is declared `{d}` but computes `{t}`", v.name)));
            }
            let v = &mut g.values[o.0 as usize];
            // Keep a declared dim where inference only knows less.
            v.shape = match (v.shape.take(), shape) {
                (Some(d), Some(i)) => {
                    Some(d.into_iter().zip(i).map(|(d, i)| if matches!(i, Dim::Known(_)) { i } else { d }).collect())
                }
                (d, i) => i.or(d),
            };
            v.dtype = dtype.or(v.dtype);
        }
    }
    Ok(())
}

type Type = (Option<DType>, Option<Vec<Dim>>);

fn ints(g: &Graph, id: NodeId, name: &str) -> Option<Vec<i64>> {
    match g.node(id).attrs.get(name) {
        Some(Attr::Ints(v)) => Some(v.clone()),
        Some(Attr::Int(v)) => Some(vec![*v]),
        _ => None,
    }
}

fn int(g: &Graph, id: NodeId, name: &str, default: i64) -> i64 {
    match g.node(id).attrs.get(name) {
        Some(Attr::Int(v)) => *v,
        _ => default,
    }
}

fn string(g: &Graph, id: NodeId, name: &str) -> Option<String> {
    match g.node(id).attrs.get(name) {
        Some(Attr::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Input `k`'s type (`None`: omitted).
fn input(g: &Graph, id: NodeId, k: usize) -> Option<Type> {
    let v = g.node(id).inputs.get(k).copied().flatten()?;
    let v = g.value(v);
    Some((v.dtype, v.shape.clone()))
}

fn constant(g: &Graph, id: NodeId, k: usize) -> Option<Arc<Constant>> {
    let v = g.node(id).inputs.get(k).copied().flatten()?;
    g.value(v).constant.clone()
}

fn required(g: &Graph, id: NodeId, k: usize) -> std::result::Result<Type, String> {
    input(g, id, k).ok_or_else(|| format!("input {k} is missing"))
}

/// An axis in `-rank..rank` as `0..rank`.
fn axis(a: i64, rank: usize) -> std::result::Result<usize, String> {
    let r = rank as i64;
    if (-r..r).contains(&a) {
        Ok(a.rem_euclid(r.max(1)) as usize)
    } else {
        Err(format!("axis {a} is out of range for rank {rank}"))
    }
}

/// The output size of a sliding window along one dim.
fn window(d: &Dim, k: i64, s: i64, dil: i64, pads: (i64, i64), ceil: bool) -> std::result::Result<Dim, String> {
    let Dim::Known(n) = d else { return Ok(Dim::Unknown) };
    if k < 1 || s < 1 || dil < 1 {
        return Err(format!("kernel {k}, stride {s} and dilation {dil} must be positive"));
    }
    let span = (k - 1) * dil + 1;
    let room = *n as i64 + pads.0 + pads.1 - span;
    if room < 0 {
        return Err(format!("a window of {span} does not fit a dim of {n} padded by {pads:?}"));
    }
    let mut out = room / s + 1;
    if ceil && room % s != 0 {
        out += 1;
        // The last window must start inside the input or the left padding.
        if (out - 1) * s >= *n as i64 + pads.0 {
            out -= 1;
        }
    }
    Ok(Dim::Known(out as usize))
}

/// Spatial output dims of a convolution or pooling over `x` (N, C, ...).
fn spatial(g: &Graph, id: NodeId, x: &[Dim], kernel: &[i64], ceil: bool) -> std::result::Result<Vec<Dim>, String> {
    let r = kernel.len();
    if x.len() != r + 2 {
        return Err(format!("input of rank {} for a {r}-D kernel", x.len()));
    }
    let strides = ints(g, id, "strides").unwrap_or_else(|| vec![1; r]);
    let dil = ints(g, id, "dilations").unwrap_or_else(|| vec![1; r]);
    let pads = ints(g, id, "pads").unwrap_or_else(|| vec![0; 2 * r]);
    if strides.len() != r || dil.len() != r || pads.len() != 2 * r {
        return Err(format!("strides {strides:?}, dilations {dil:?} or pads {pads:?} do not fit a {r}-D kernel"));
    }
    let auto = string(g, id, "auto_pad").unwrap_or_else(|| "NOTSET".into());
    (0..r)
        .map(|i| match auto.as_str() {
            "NOTSET" => window(&x[i + 2], kernel[i], strides[i], dil[i], (pads[i], pads[i + r]), ceil),
            "VALID" => window(&x[i + 2], kernel[i], strides[i], dil[i], (0, 0), false),
            "SAME_UPPER" | "SAME_LOWER" => Ok(match &x[i + 2] {
                Dim::Known(n) => Dim::Known((*n as i64 + strides[i] - 1).div_euclid(strides[i].max(1)) as usize),
                _ => Dim::Unknown,
            }),
            other => Err(format!("auto_pad `{other}` is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")),
        })
        .collect()
}

fn same(t: Type) -> std::result::Result<Vec<Type>, String> {
    Ok(vec![t])
}

/// The output types of node `id`.
fn node_types(g: &Graph, id: NodeId) -> std::result::Result<Vec<Type>, String> {
    let n = g.node(id);
    let op = n.op.as_str();
    match op {
        crate::COPY if n.domain == "texpr" => same(required(g, id, 0)?),
        "Relu" | "Sigmoid" | "Tanh" | "LeakyRelu" | "HardSigmoid" | "HardSwish" | "Gelu" | "Erf" | "Sqrt" | "Exp"
        | "Log" | "Neg" | "Abs" | "Identity" | "Softmax" | "LogSoftmax" | "LRN" | "Clip" => same(required(g, id, 0)?),
        "Dropout" => {
            let x = required(g, id, 0)?;
            Ok(vec![x.clone(), (Some(DType::Bool), x.1)])
        }
        "BatchNormalization" => {
            let x = required(g, id, 0)?;
            Ok(vec![x; n.outputs.len().max(1)])
        }
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Sum" | "Max" | "Min" | "Equal" | "Less" | "Greater" | "Where" => {
            let mut t: Option<DType> = None;
            let mut shape: Option<Vec<Dim>> = Some(vec![]);
            for k in 0..n.inputs.len() {
                let (dt, s) = required(g, id, k)?;
                // `Where`'s condition is bool; `Pow`'s exponent may differ.
                let typed_apart = (op == "Where" && k == 0) || (op == "Pow" && k == 1);
                if !typed_apart {
                    if let (Some(a), Some(b)) = (t, dt)
                        && a != b
                    {
                        return Err(format!("inputs of types `{a}` and `{b}`"));
                    }
                    t = t.or(dt);
                }
                shape = match (shape, s) {
                    (Some(a), Some(b)) => Some(broadcast(&a, &b)?),
                    _ => None,
                };
            }
            let t = if matches!(op, "Equal" | "Less" | "Greater") { Some(DType::Bool) } else { t };
            Ok(vec![(t, shape)])
        }
        "Conv" => {
            let (t, x) = required(g, id, 0)?;
            let (_, w) = required(g, id, 1)?;
            let (Some(x), Some(w)) = (x, w) else { return Ok(vec![(t, None)]) };
            if x.len() < 3 || w.len() != x.len() {
                return Err(format!("Conv of {} with weights {}", show(&x), show(&w)));
            }
            let kernel: Vec<i64> = match ints(g, id, "kernel_shape") {
                Some(k) => k,
                None => w.iter().skip(2).map(|d| if let Dim::Known(n) = d { *n as i64 } else { -1 }).collect(),
            };
            if kernel.iter().any(|k| *k < 1) {
                return Err("the kernel's spatial dims are not known".into());
            }
            let group = int(g, id, "group", 1);
            if let (Dim::Known(c), Some(Dim::Known(wc))) = (&x[1], w.get(1))
                && group >= 1
                && *c as i64 != *wc as i64 * group
            {
                return Err(format!("{c} input channels, but the weights take {wc} per group of {group}"));
            }
            let mut out = vec![x[0].clone(), w[0].clone()];
            out.extend(spatial(g, id, &x, &kernel, false)?);
            Ok(vec![(t, Some(out))])
        }
        "MaxPool" | "AveragePool" => {
            let (t, x) = required(g, id, 0)?;
            let Some(x) = x else { return Ok(vec![(t, None)]) };
            if x.len() < 3 {
                return Err(format!("pooling of {}", show(&x)));
            }
            let kernel = ints(g, id, "kernel_shape").ok_or("no kernel_shape")?;
            let mut out = vec![x[0].clone(), x.get(1).cloned().unwrap_or(Dim::Unknown)];
            out.extend(spatial(g, id, &x, &kernel, int(g, id, "ceil_mode", 0) != 0)?);
            let indices = (Some(DType::I64), Some(out.clone()));
            Ok(vec![(t, Some(out)), indices])
        }
        "GlobalAveragePool" | "GlobalMaxPool" => {
            let (t, x) = required(g, id, 0)?;
            let x =
                x.map(|x| x.iter().enumerate().map(|(i, d)| if i < 2 { d.clone() } else { Dim::Known(1) }).collect());
            Ok(vec![(t, x)])
        }
        "Gemm" => {
            let (t, a) = required(g, id, 0)?;
            let (_, b) = required(g, id, 1)?;
            let (Some(a), Some(b)) = (a, b) else { return Ok(vec![(t, None)]) };
            if a.len() != 2 || b.len() != 2 {
                return Err(format!("Gemm of shapes {} and {}", show(&a), show(&b)));
            }
            let m = if int(g, id, "transA", 0) != 0 { &a[1] } else { &a[0] };
            let nn = if int(g, id, "transB", 0) != 0 { &b[0] } else { &b[1] };
            Ok(vec![(t, Some(vec![m.clone(), nn.clone()]))])
        }
        "MatMul" => {
            let (t, a) = required(g, id, 0)?;
            let (_, b) = required(g, id, 1)?;
            let (Some(mut a), Some(mut b)) = (a, b) else { return Ok(vec![(t, None)]) };
            let (a1, b1) = (a.len() == 1, b.len() == 1);
            if a1 {
                a.insert(0, Dim::Known(1));
            }
            if b1 {
                b.push(Dim::Known(1));
            }
            if a.len() < 2 || b.len() < 2 {
                return Err("MatMul of a scalar".into());
            }
            let mut out = broadcast(&a[..a.len() - 2], &b[..b.len() - 2])?;
            if !a1 {
                out.push(a[a.len() - 2].clone());
            }
            if !b1 {
                out.push(b[b.len() - 1].clone());
            }
            Ok(vec![(t, Some(out))])
        }
        "Concat" => {
            let mut t = None;
            let mut out: Option<Vec<Dim>> = None;
            let mut total: Option<usize> = Some(0);
            let a = int(g, id, "axis", i64::MIN);
            for k in 0..n.inputs.len() {
                let (dt, s) = required(g, id, k)?;
                t = t.or(dt);
                let Some(s) = s else { return Ok(vec![(t, None)]) };
                let ax = axis(if a == i64::MIN { 1 } else { a }, s.len())?;
                total = match (total, &s[ax]) {
                    (Some(x), Dim::Known(y)) => Some(x + y),
                    _ => None,
                };
                out = Some(match out {
                    None => s.clone(),
                    Some(o) if o.len() != s.len() => {
                        return Err(format!("inputs of ranks {} and {}", o.len(), s.len()));
                    }
                    Some(o) => o
                        .into_iter()
                        .zip(&s)
                        .map(|(x, y)| if matches!(x, Dim::Known(_)) { x } else { y.clone() })
                        .collect(),
                });
                if let Some(o) = &mut out {
                    o[ax] = total.map_or(Dim::Unknown, Dim::Known);
                }
            }
            Ok(vec![(t, out)])
        }
        "Flatten" => {
            let (t, x) = required(g, id, 0)?;
            let Some(x) = x else { return Ok(vec![(t, None)]) };
            let r = x.len() as i64;
            let a = int(g, id, "axis", 1);
            let a = if a < 0 { a + r } else { a };
            if !(0..=r).contains(&a) {
                return Err(format!("axis {a} for rank {r}"));
            }
            let a = a as usize;
            let prod =
                |ds: &[Dim]| ds.iter().try_fold(1usize, |p, d| if let Dim::Known(n) = d { Some(p * n) } else { None });
            let d = |p: Option<usize>| p.map_or(Dim::Unknown, Dim::Known);
            Ok(vec![(t, Some(vec![d(prod(&x[..a])), d(prod(&x[a..]))]))])
        }
        "Transpose" => {
            let (t, x) = required(g, id, 0)?;
            let Some(x) = x else { return Ok(vec![(t, None)]) };
            let perm = ints(g, id, "perm").unwrap_or_else(|| (0..x.len() as i64).rev().collect());
            let mut seen = vec![false; x.len()];
            let mut out = vec![];
            for p in &perm {
                let p = axis(*p, x.len())?;
                if std::mem::replace(&mut seen[p], true) {
                    return Err(format!("perm {perm:?} repeats an axis"));
                }
                out.push(x[p].clone());
            }
            if out.len() != x.len() {
                return Err(format!("perm {perm:?} for rank {}", x.len()));
            }
            Ok(vec![(t, Some(out))])
        }
        "Unsqueeze" | "Squeeze" => {
            let (t, x) = required(g, id, 0)?;
            let axes = match ints(g, id, "axes") {
                Some(a) => Some(a),
                None => match n.inputs.get(1).copied().flatten() {
                    // Axes known only at run time: so is the shape.
                    Some(_) => match constant(g, id, 1).and_then(|c| c.to_i64s()) {
                        Some(a) => Some(a),
                        None => return Ok(vec![(t, None)]),
                    },
                    None => None,
                },
            };
            let Some(x) = x else { return Ok(vec![(t, None)]) };
            if op == "Unsqueeze" {
                let axes = axes.ok_or("no axes")?;
                let r = x.len() + axes.len();
                let mut at: Vec<usize> = axes.iter().map(|a| axis(*a, r)).collect::<std::result::Result<_, _>>()?;
                at.sort_unstable();
                let mut it = x.into_iter();
                let out: Vec<Dim> = (0..r)
                    .map(|i| if at.contains(&i) { Dim::Known(1) } else { it.next().unwrap_or(Dim::Unknown) })
                    .collect();
                return Ok(vec![(t, Some(out))]);
            }
            let drop: Vec<usize> = match axes {
                Some(a) => a.iter().map(|a| axis(*a, x.len())).collect::<std::result::Result<_, _>>()?,
                None => (0..x.len()).filter(|i| x[*i] == Dim::Known(1)).collect(),
            };
            Ok(vec![(t, Some(x.into_iter().enumerate().filter(|(i, _)| !drop.contains(i)).map(|(_, d)| d).collect()))])
        }
        "Reshape" => {
            let (t, x) = required(g, id, 0)?;
            // A shape known only at run time: its length is the rank.
            let Some(spec) = constant(g, id, 1).and_then(|c| c.to_i64s()) else {
                let rank = input(g, id, 1).and_then(|(_, s)| s).and_then(|s| match s.as_slice() {
                    [Dim::Known(r)] => Some(*r),
                    _ => None,
                });
                return Ok(vec![(t, rank.map(|r| vec![Dim::Unknown; r]))]);
            };
            let allow_zero = int(g, id, "allowzero", 0) != 0;
            let mut out: Vec<Dim> = vec![];
            let mut infer_at = None;
            for (i, s) in spec.iter().enumerate() {
                out.push(match *s {
                    -1 if infer_at.is_none() => {
                        infer_at = Some(i);
                        Dim::Unknown
                    }
                    0 if !allow_zero => x.as_ref().and_then(|x| x.get(i).cloned()).unwrap_or(Dim::Unknown),
                    s if s >= 0 => Dim::Known(s as usize),
                    _ => return Err(format!("target shape {spec:?} is not a shape")),
                });
            }
            if let (Some(at), Some(x)) = (infer_at, &x) {
                let total = x.iter().try_fold(1usize, |p, d| if let Dim::Known(n) = d { Some(p * n) } else { None });
                let rest = out.iter().try_fold(1usize, |p, d| match d {
                    Dim::Known(n) => Some(p * n),
                    _ => Some(p),
                });
                if let (Some(total), Some(rest)) = (total, rest) {
                    if rest == 0 || !total.is_multiple_of(rest) {
                        return Err(format!("{} elements do not reshape to {spec:?}", total));
                    }
                    out[at] = Dim::Known(total / rest);
                }
            }
            Ok(vec![(t, Some(out))])
        }
        "ConstantOfShape" => {
            let t = match n.attrs.get("value") {
                Some(Attr::Tensor(c)) => c.dtype,
                _ => DType::F32,
            };
            // A shape known only at run time: its length is the rank.
            let Some(shape) = constant(g, id, 0).and_then(|c| c.to_i64s()) else {
                let rank = input(g, id, 0).and_then(|(_, s)| s).and_then(|s| match s.as_slice() {
                    [Dim::Known(r)] => Some(*r),
                    _ => None,
                });
                return Ok(vec![(Some(t), rank.map(|r| vec![Dim::Unknown; r]))]);
            };
            let dims =
                shape.iter().map(|d| usize::try_from(*d).map(Dim::Known)).collect::<std::result::Result<Vec<_>, _>>();
            Ok(vec![(Some(t), Some(dims.map_err(|_| format!("shape {shape:?} has a negative dim"))?))])
        }
        "Constant" => match (
            n.attrs.get("value"),
            n.attrs.get("value_float"),
            n.attrs.get("value_int"),
            n.attrs.get("value_ints"),
        ) {
            (Some(Attr::Tensor(c)), ..) => {
                Ok(vec![(Some(c.dtype), Some(c.shape.iter().map(|d| Dim::Known(*d)).collect()))])
            }
            (_, Some(Attr::Float(_)), ..) => Ok(vec![(Some(DType::F32), Some(vec![]))]),
            (_, _, Some(Attr::Int(_)), _) => Ok(vec![(Some(DType::I64), Some(vec![]))]),
            (.., Some(Attr::Ints(v))) => Ok(vec![(Some(DType::I64), Some(vec![Dim::Known(v.len())]))]),
            _ => Err("only tensor, float, int and ints values are supported".into()),
        },
        "Cast" => {
            let (_, x) = required(g, id, 0)?;
            let to = int(g, id, "to", 0);
            let t = texpr_ops::onnx_dtype(to)
                .ok_or_else(|| format!("cast to ONNX type {to}, which texpr does not compute in"))?;
            Ok(vec![(Some(t), x)])
        }
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" => {
            let (t, x) = required(g, id, 0)?;
            let Some(x) = x else { return Ok(vec![(t, None)]) };
            let from_input = (op == "ReduceSum" && g.opset >= 13) || g.opset >= 18;
            let axes = if from_input {
                match n.inputs.get(1).copied().flatten() {
                    Some(_) => match constant(g, id, 1).and_then(|c| c.to_i64s()) {
                        Some(a) => Some(a),
                        None => return Ok(vec![(t, None)]),
                    },
                    None => None,
                }
            } else {
                ints(g, id, "axes")
            };
            let r = x.len();
            let axes: Vec<usize> = match axes {
                Some(a) if !a.is_empty() => a.iter().map(|a| axis(*a, r)).collect::<std::result::Result<_, _>>()?,
                _ if int(g, id, "noop_with_empty_axes", 0) != 0 => return Ok(vec![(t, Some(x))]),
                _ => (0..r).collect(),
            };
            let keep = int(g, id, "keepdims", 1) != 0;
            let out = x
                .into_iter()
                .enumerate()
                .filter_map(|(k, d)| match (axes.contains(&k), keep) {
                    (false, _) => Some(d),
                    (true, true) => Some(Dim::Known(1)),
                    (true, false) => None,
                })
                .collect();
            Ok(vec![(t, Some(out))])
        }
        "Expand" => {
            let (t, x) = required(g, id, 0)?;
            let Some(target) = constant(g, id, 1).and_then(|c| c.to_i64s()) else { return Ok(vec![(t, None)]) };
            let target: Vec<Dim> = target.iter().map(|d| Dim::Known((*d).max(0) as usize)).collect();
            Ok(vec![(t, x.map(|x| broadcast(&x, &target)).transpose()?)])
        }
        "Gather" => {
            let (t, x) = required(g, id, 0)?;
            let (_, i) = required(g, id, 1)?;
            let (Some(x), Some(i)) = (x, i) else { return Ok(vec![(t, None)]) };
            let a = axis(int(g, id, "axis", 0), x.len())?;
            let mut out = x[..a].to_vec();
            out.extend(i);
            out.extend(x[a + 1..].iter().cloned());
            Ok(vec![(t, Some(out))])
        }
        // Shapes that depend on input values or several rules: the type,
        // dims at run time.
        "Slice" | "Pad" | "Split" => {
            let (t, _) = required(g, id, 0)?;
            Ok(vec![(t, None); n.outputs.len().max(1)])
        }
        "CumSum" => same(required(g, id, 0)?),
        "QuantizeLinear" => {
            let (_, x) = required(g, id, 0)?;
            let t = match input(g, id, 2) {
                Some((t, _)) => t,
                None => Some(texpr_ops::onnx_dtype(int(g, id, "output_dtype", 2)).unwrap_or(DType::U8)),
            };
            Ok(vec![(t, x)])
        }
        "DequantizeLinear" => {
            let (_, x) = required(g, id, 0)?;
            let (t, _) = required(g, id, 1)?;
            Ok(vec![(t, x)])
        }
        "LayerNormalization" => {
            let x = required(g, id, 0)?;
            let mut out = vec![x.clone()];
            out.extend(std::iter::repeat_n((x.0, None), n.outputs.len().saturating_sub(1)));
            Ok(out)
        }
        "ArgMax" => Ok(vec![(Some(DType::I64), None)]),
        "Shape" => {
            let (_, x) = required(g, id, 0)?;
            let n = x.map_or(Dim::Unknown, |x| {
                let r = x.len() as i64;
                let clamp = |a: i64| if a < 0 { (a + r).max(0) } else { a.min(r) };
                let (s, e) = (clamp(int(g, id, "start", 0)), clamp(int(g, id, "end", r)));
                Dim::Known((e - s).max(0) as usize)
            });
            Ok(vec![(Some(DType::I64), Some(vec![n]))])
        }
        _ => by_library(g, id),
    }
}

/// An operator without a rule here: its types from the operator library,
/// which builds it for the inputs' dims when all are known (constant
/// inputs' values given); with dims not known, the first input's type and
/// unknown dims. The library's error (an operator it does not implement,
/// inputs it cannot take) is the node's.
fn by_library(g: &Graph, id: NodeId) -> std::result::Result<Vec<Type>, String> {
    let n = g.node(id);
    type Known = (DType, Vec<usize>, Option<texpr_dsl::AnyTensor>);
    let mut owned: Vec<Option<Known>> = vec![];
    let mut known = true;
    for i in &n.inputs {
        owned.push(match i {
            None => None,
            Some(v) => {
                let d = g.value(*v);
                let dims: Option<Vec<usize>> = d
                    .shape
                    .as_ref()
                    .and_then(|s| s.iter().map(|x| if let Dim::Known(k) = x { Some(*k) } else { None }).collect());
                match (d.dtype, dims) {
                    (Some(t), Some(s)) => {
                        let value = d
                            .constant
                            .as_ref()
                            .and_then(|c| texpr_dsl::AnyTensor::from_le_bytes(c.dtype, &c.shape, &c.bytes).ok());
                        Some((t, s, value))
                    }
                    _ => {
                        known = false;
                        None
                    }
                }
            }
        });
    }
    let first = n.inputs.first().copied().flatten().and_then(|v| g.value(v).dtype);
    if !known {
        // Not typed before a run (the run says what the node computes), but
        // an operator the library does not know is an error now: asked
        // with stand-in inputs, it says so before looking at them.
        let ones = [1usize; 4];
        let probe: Vec<Option<texpr_ops::Input<'_>>> = n
            .inputs
            .iter()
            .map(|i| {
                i.map(|v| {
                    let d = g.value(v);
                    let rank = d.shape.as_ref().map_or(1, |s| s.len().min(4));
                    texpr_ops::Input { dtype: d.dtype.unwrap_or(DType::F32), shape: &ones[..rank], value: None }
                })
            })
            .collect();
        if let Err(e) =
            texpr_ops::implement(&n.op, g.opset, &crate::attrs::NodeAttrs(&n.attrs), &probe, n.outputs.len())
            && e.starts_with(texpr_ops::UNKNOWN_OPERATOR)
        {
            return Err(e);
        }
        return Ok(vec![(first, None); n.outputs.len()]);
    }
    let inputs: Vec<Option<texpr_ops::Input<'_>>> = owned
        .iter()
        .map(|o| o.as_ref().map(|(t, s, v)| texpr_ops::Input { dtype: *t, shape: s, value: v.as_ref() }))
        .collect();
    let imp = match texpr_ops::implement(&n.op, g.opset, &crate::attrs::NodeAttrs(&n.attrs), &inputs, n.outputs.len()) {
        Ok(imp) => imp,
        Err(e) if e.starts_with(texpr_ops::UNKNOWN_OPERATOR) => return Err(e),
        // Values known only at run time (a shape fed as an input), or
        // inputs the run will reject with this message.
        Err(_) => return Ok(vec![(first, None); n.outputs.len()]),
    };
    let dims = |shape: &[usize]| Some(shape.iter().map(|d| Dim::Known(*d)).collect::<Vec<_>>());
    Ok(match imp {
        texpr_ops::Impl::Kernel(k) => k
            .func
            .outputs
            .iter()
            .map(|t| {
                let shape: Option<Vec<usize>> =
                    t.shape.iter().map(|d| d.as_int().and_then(|d| usize::try_from(d).ok())).collect();
                (Some(t.dtype), shape.and_then(|s| dims(&s)))
            })
            .collect(),
        texpr_ops::Impl::View(s) => vec![(first, dims(&s))],
        texpr_ops::Impl::Value(v) => vec![(Some(v.dtype()), dims(v.shape()))],
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{Node, ValueDef, ValueId};

    struct B(Graph);

    impl B {
        fn input(&mut self, name: &str, t: DType, shape: Vec<Dim>) -> ValueId {
            let v = self.0.add_value(ValueDef {
                name: name.into(),
                dtype: Some(t),
                shape: Some(shape),
                producer: None,
                constant: None,
            });
            self.0.inputs.push(v);
            v
        }

        fn ints(&mut self, name: &str, v: &[i64]) -> ValueId {
            let c = Constant {
                dtype: DType::I64,
                shape: vec![v.len()],
                bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            };
            self.0.add_value(ValueDef {
                name: name.into(),
                dtype: Some(DType::I64),
                shape: Some(vec![Dim::Known(v.len())]),
                producer: None,
                constant: Some(Arc::new(c)),
            })
        }

        fn node(&mut self, op: &str, inputs: &[ValueId], attrs: &[(&str, Attr)]) -> ValueId {
            let o = self.0.add_value(ValueDef {
                name: format!("{op}{}", self.0.nodes.len()),
                dtype: None,
                shape: None,
                producer: None,
                constant: None,
            });
            self.0.add_node(Node {
                name: format!("n{}", self.0.nodes.len()),
                op: op.into(),
                domain: String::new(),
                inputs: inputs.iter().map(|i| Some(*i)).collect(),
                outputs: vec![o],
                attrs: attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<BTreeMap<_, _>>(),
                fused: vec![],
                device: None,
            });
            o
        }

        fn shape(&mut self, v: ValueId) -> Vec<Dim> {
            infer(&mut self.0).unwrap();
            self.0.value(v).shape.clone().unwrap()
        }
    }

    fn k(n: usize) -> Dim {
        Dim::Known(n)
    }

    fn ints(v: &[i64]) -> Attr {
        Attr::Ints(v.to_vec())
    }

    #[test]
    fn windows_pads_and_ceil_mode() {
        let mut b = B(Graph::new("t", 13));
        let x = b.input("x", DType::F32, vec![Dim::Sym("N".into()), k(3), k(7), k(8)]);
        // Asymmetric pads, stride 2, ceil mode: the last window starts
        // inside the padded input.
        let p = b.node(
            "MaxPool",
            &[x],
            &[
                ("kernel_shape", ints(&[3, 3])),
                ("strides", ints(&[2, 2])),
                ("pads", ints(&[0, 0, 1, 1])),
                ("ceil_mode", Attr::Int(1)),
            ],
        );
        assert_eq!(b.shape(p), vec![Dim::Sym("N".into()), k(3), k(4), k(4)]);
        let mut b = B(Graph::new("t", 13));
        let x = b.input("x", DType::F32, vec![k(1), k(4), k(5), k(5)]);
        let w = b.input("w", DType::F32, vec![k(8), k(2), k(3), k(3)]);
        let c = b.node(
            "Conv",
            &[x, w],
            &[("group", Attr::Int(2)), ("dilations", ints(&[2, 2])), ("auto_pad", Attr::String("NOTSET".into()))],
        );
        assert_eq!(b.shape(c), vec![k(1), k(8), k(1), k(1)]);
        let s = b.node(
            "Conv",
            &[x, w],
            &[("auto_pad", Attr::String("SAME_UPPER".into())), ("group", Attr::Int(2)), ("strides", ints(&[2, 2]))],
        );
        assert_eq!(b.shape(s), vec![k(1), k(8), k(3), k(3)]);
    }

    #[test]
    fn reshape_concat_transpose_flatten() {
        let mut b = B(Graph::new("t", 13));
        let x = b.input("x", DType::F32, vec![k(2), k(3), k(4)]);
        let s = b.ints("s", &[0, -1]);
        let r = b.node("Reshape", &[x, s], &[]);
        assert_eq!(b.shape(r), vec![k(2), k(12)]);
        let y = b.input("y", DType::F32, vec![k(2), Dim::Sym("M".into()), k(4)]);
        let c = b.node("Concat", &[x, y], &[("axis", Attr::Int(-2))]);
        assert_eq!(b.shape(c), vec![k(2), Dim::Unknown, k(4)]);
        let t = b.node("Transpose", &[x], &[("perm", ints(&[2, 0, 1]))]);
        assert_eq!(b.shape(t), vec![k(4), k(2), k(3)]);
        let f = b.node("Flatten", &[x], &[("axis", Attr::Int(2))]);
        assert_eq!(b.shape(f), vec![k(6), k(4)]);
        let a = b.ints("a", &[0, 3]);
        let u = b.node("Unsqueeze", &[x, a], &[]);
        assert_eq!(b.shape(u), vec![k(1), k(2), k(3), k(1), k(4)]);
    }

    #[test]
    fn errors_name_the_node() {
        let mut b = B(Graph::new("t.onnx", 13));
        let x = b.input("x", DType::F32, vec![k(1), k(4), k(5), k(5)]);
        let w = b.input("w", DType::F32, vec![k(8), k(3), k(3), k(3)]);
        b.node("Conv", &[x, w], &[]);
        assert_eq!(
            infer(&mut b.0).unwrap_err().to_string(),
            "t.onnx: node `n0` (Conv): 4 input channels, but the weights take 3 per group of 1"
        );
        let mut b = B(Graph::new("t.onnx", 13));
        let x = b.input("x", DType::F32, vec![k(2)]);
        b.node("FancyOp", &[x], &[]);
        assert_eq!(
            infer(&mut b.0).unwrap_err().to_string(),
            "t.onnx: node `n0` (FancyOp): texpr does not implement the operator `FancyOp`"
        );
        let mut b = B(Graph::new("t.onnx", 13));
        let x = b.input("x", DType::F32, vec![k(2), k(3)]);
        let y = b.input("y", DType::F32, vec![k(4)]);
        b.node("Add", &[x, y], &[]);
        assert!(infer(&mut b.0).unwrap_err().to_string().contains("dims 3 and 4 do not broadcast"));
        let mut b = B(Graph::new("t.onnx", 13));
        let x = b.input("x", DType::F32, vec![k(2), k(3)]);
        let r = b.node("Relu", &[x], &[]);
        b.0.values[r.0 as usize].shape = Some(vec![k(2), k(4)]);
        assert!(infer(&mut b.0).unwrap_err().to_string().contains("is declared [2, 4] but computes [2, 3]"));
    }
}
