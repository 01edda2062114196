//! Slicing and padding, `Split`, `LayerNormalization`, `ArgMax`, `CumSum`.

use texpr_dsl::te::{self, Expr, FuncBuilder, Ident, StageDef};
use texpr_dsl::{DType, ReduceOp, Scalar};

use crate::{Attrs, Impl, Input, dims, float_only, idx, ints_of, ty, var};

type R<T> = Result<T, String>;

fn built(f: &FuncBuilder) -> R<Impl> {
    Ok(Impl::kernel(f.clone()))
}

fn lit(n: i64) -> Expr {
    Expr::int(n as i128)
}

fn axis_of(a: i64, r: usize) -> R<usize> {
    let b = if a < 0 { a + r as i64 } else { a };
    usize::try_from(b).ok().filter(|b| *b < r).ok_or(format!("axis {a} for rank {r}"))
}

fn known(i: Option<Input<'_>>, what: &str) -> R<Option<Vec<i64>>> {
    match i {
        None => Ok(None),
        Some(i) => i.value.and_then(ints_of).map(Some).ok_or(format!("`{what}` must be known")),
    }
}

pub(crate) fn slice(opset: i64, attrs: &dyn Attrs, ins: &[Option<Input<'_>>]) -> R<Impl> {
    let x = ins[0].ok_or("no input")?;
    let r = x.shape.len();
    let (starts, ends, axes, steps) = if opset >= 10 {
        let g = |k: usize, w: &str| known(ins.get(k).copied().flatten(), w);
        (g(1, "starts")?.ok_or("no starts")?, g(2, "ends")?.ok_or("no ends")?, g(3, "axes")?, g(4, "steps")?)
    } else {
        (attrs.ints("starts").ok_or("no starts")?, attrs.ints("ends").ok_or("no ends")?, attrs.ints("axes"), None)
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err("starts, ends, axes and steps of different lengths".into());
    }
    let mut first: Vec<i64> = vec![0; r];
    let mut step: Vec<i64> = vec![1; r];
    let mut out: Vec<usize> = x.shape.to_vec();
    for k in 0..starts.len() {
        let a = axis_of(axes[k], r)?;
        let n = x.shape[a] as i64;
        let s = steps[k];
        if s == 0 {
            return Err("a step of 0".into());
        }
        let norm = |v: i64| if v < 0 { v.saturating_add(n) } else { v };
        let (b, e) = if s > 0 {
            (norm(starts[k]).clamp(0, n), norm(ends[k]).clamp(0, n))
        } else {
            (norm(starts[k]).clamp(0, n - 1), norm(ends[k]).clamp(-1, n - 1))
        };
        let len = if s > 0 { (e - b + s - 1).div_euclid(s) } else { (b - e + (-s) - 1).div_euclid(-s) };
        first[a] = b;
        step[a] = s;
        out[a] = len.max(0) as usize;
    }
    let mut f = FuncBuilder::new("slice");
    let tx = f.input("x", x.dtype, dims(x.shape));
    let xi: Vec<Expr> = (0..r).map(|k| lit(first[k]) + var(k) * lit(step[k])).collect();
    f.output(x.dtype, dims(&out));
    let y = f.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(x.dtype, &out)), idx: idx(r), body: tx.at(xi) });
    f.ret([y]);
    built(&f)
}

pub(crate) fn pad(opset: i64, attrs: &dyn Attrs, ins: &[Option<Input<'_>>]) -> R<Impl> {
    let x = ins[0].ok_or("no input")?;
    let r = x.shape.len();
    let (pads, value) = if opset >= 11 {
        let p = known(ins.get(1).copied().flatten(), "pads")?.ok_or("no pads")?;
        let v = ins.get(2).copied().flatten().and_then(|v| v.value).and_then(|v| v.get(0));
        (p, v)
    } else {
        (attrs.ints("pads").ok_or("no pads")?, attrs.float("value").map(|v| Scalar::from_f64(x.dtype, v as f64)))
    };
    let axes: Vec<usize> = match known(ins.get(3).copied().flatten(), "axes")? {
        Some(a) => a.iter().map(|a| axis_of(*a, r)).collect::<R<_>>()?,
        None => (0..r).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(format!("{} pads for {} axes", pads.len(), axes.len()));
    }
    let mut before = vec![0i64; r];
    let mut after = vec![0i64; r];
    for (k, a) in axes.iter().enumerate() {
        before[*a] = pads[k];
        after[*a] = pads[k + axes.len()];
    }
    let out: Vec<usize> = (0..r)
        .map(|k| {
            usize::try_from(x.shape[k] as i64 + before[k] + after[k])
                .map_err(|_| format!("pads {pads:?} crop past the input"))
        })
        .collect::<R<_>>()?;
    let mode = attrs.string("mode").unwrap_or_else(|| "constant".into());
    let mut f = FuncBuilder::new("pad");
    let tx = f.input("x", x.dtype, dims(x.shape));
    let src = |k: usize| var(k) - lit(before[k]);
    let body = match mode.as_str() {
        "constant" => {
            let inside = (0..r)
                .map(|k| src(k).ge(lit(0)).and(src(k).lt(lit(x.shape[k] as i64))))
                .reduce(|a, b| a.and(b))
                .unwrap_or_else(|| Expr::bool(true));
            let v = value.map(|v| v.cast(x.dtype)).unwrap_or_else(|| Scalar::zero(x.dtype));
            te::if_(inside, tx.at((0..r).map(src)), Expr::typed(v))
        }
        "edge" | "reflect" | "wrap" => {
            if x.shape.contains(&0) {
                return Err(format!("`{mode}` padding of an empty input"));
            }
            let at: Vec<Expr> = (0..r)
                .map(|k| {
                    let n = x.shape[k] as i64;
                    let s = src(k);
                    match mode.as_str() {
                        "edge" => te::clamp(s, lit(0), lit(n - 1)),
                        "wrap" => s % lit(n),
                        // Mirror without repeating the edge: period 2n - 2.
                        _ if n == 1 => lit(0),
                        _ => {
                            let m = s % lit(2 * n - 2);
                            // `min(m, 2n - 2 - m)`: the bounds proof splits
                            // the cases of a `min`.
                            te::min(m.clone(), lit(2 * n - 2) - m)
                        }
                    }
                })
                .collect();
            tx.at(at)
        }
        other => return Err(format!("mode `{other}`")),
    };
    f.output(x.dtype, dims(&out));
    let y = f.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(x.dtype, &out)), idx: idx(r), body });
    f.ret([y]);
    built(&f)
}

pub(crate) fn split(opset: i64, attrs: &dyn Attrs, ins: &[Option<Input<'_>>], n_out: usize) -> R<Impl> {
    let x = ins[0].ok_or("no input")?;
    let r = x.shape.len();
    let a = axis_of(attrs.int("axis").unwrap_or(0), r)?;
    let n = x.shape[a];
    let sizes: Vec<usize> =
        match if opset >= 13 { known(ins.get(1).copied().flatten(), "split")? } else { attrs.ints("split") } {
            Some(s) => {
                s.iter().map(|v| usize::try_from(*v)).collect::<Result<_, _>>().map_err(|_| format!("split {s:?}"))?
            }
            None => {
                let parts = attrs.int("num_outputs").map_or(n_out, |v| v.max(1) as usize).max(1);
                let each = n.div_ceil(parts);
                (0..parts).map(|k| each.min(n.saturating_sub(k * each))).collect()
            }
        };
    if sizes.iter().sum::<usize>() != n || sizes.len() != n_out {
        return Err(format!("split {sizes:?} of a dim of {n} into {n_out} outputs"));
    }
    let mut f = FuncBuilder::new("split");
    let tx = f.input("x", x.dtype, dims(x.shape));
    let mut outs = vec![];
    let mut off = 0;
    for (k, s) in sizes.iter().enumerate() {
        let mut shape = x.shape.to_vec();
        shape[a] = *s;
        let xi: Vec<Expr> = (0..r).map(|d| if d == a { var(d) + lit(off as i64) } else { var(d) }).collect();
        f.output(x.dtype, dims(&shape));
        outs.push(f.add_stage(StageDef {
            name: Ident::new(format!("y{k}")),
            ty: Some(ty(x.dtype, &shape)),
            idx: idx(r),
            body: tx.at(xi),
        }));
        off += s;
    }
    f.ret(outs);
    built(&f)
}

pub(crate) fn layer_norm(attrs: &dyn Attrs, ins: &[Option<Input<'_>>], n_out: usize) -> R<Impl> {
    let x = ins[0].ok_or("no input")?;
    float_only("LayerNormalization", x.dtype)?;
    let r = x.shape.len();
    let a = axis_of(attrs.int("axis").unwrap_or(-1), r)?;
    let eps = attrs.float("epsilon").unwrap_or(1e-5) as f64;
    let norm: Vec<usize> = (a..r).collect();
    let count: usize = norm.iter().map(|k| x.shape[*k]).product();
    let mut f = FuncBuilder::new("layernorm");
    let tx = f.input("x", x.dtype, dims(x.shape));
    let rv =
        || norm.iter().map(|k| te::rvar(format!("r{k}").as_str(), 0i64, lit(x.shape[*k] as i64))).collect::<Vec<_>>();
    let at_r: Vec<Expr> = (0..r).map(|k| if k >= a { Expr::name(format!("r{k}")) } else { var(k) }).collect();
    let lead: Vec<usize> = x.shape[..a].to_vec();
    let c = |v: f64| Expr::typed(Scalar::from_f64(x.dtype, v));
    let mean = f.add_stage(StageDef {
        name: Ident::new("mean"),
        ty: Some(ty(x.dtype, &lead)),
        idx: idx(a),
        body: te::reduce(ReduceOp::Sum, rv(), tx.at(at_r.clone())) / c(count.max(1) as f64),
    });
    let lead_idx: Vec<Expr> = (0..a).map(var).collect();
    let dev = tx.at(at_r) - mean.at(lead_idx.clone());
    let var_ = f.add_stage(StageDef {
        name: Ident::new("var"),
        ty: Some(ty(x.dtype, &lead)),
        idx: idx(a),
        body: te::reduce(ReduceOp::Sum, rv(), dev.clone() * dev) / c(count.max(1) as f64),
    });
    let here: Vec<Expr> = (0..r).map(var).collect();
    let tail: Vec<Expr> = (a..r).map(var).collect();
    let mut body = (tx.at(here) - mean.at(lead_idx.clone())) * te::rsqrt(var_.at(lead_idx) + c(eps));
    let tail_shape: Vec<usize> = x.shape[a..].to_vec();
    if let Some(s) = ins.get(1).copied().flatten() {
        if s.shape != tail_shape.as_slice() {
            return Err(format!("scale of shape {:?}", s.shape));
        }
        body = body * f.input("scale", s.dtype, dims(s.shape)).at(tail.clone());
    }
    if let Some(b) = ins.get(2).copied().flatten() {
        if b.shape != tail_shape.as_slice() {
            return Err(format!("bias of shape {:?}", b.shape));
        }
        body = body + f.input("bias", b.dtype, dims(b.shape)).at(tail);
    }
    f.output(x.dtype, dims(x.shape));
    let y = f.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(x.dtype, x.shape)), idx: idx(r), body });
    let mut outs = vec![y];
    // The optional Mean and InvStdDev outputs, with the normalized dims
    // kept as 1.
    let stat_shape: Vec<usize> = (0..r).map(|k| if k < a { x.shape[k] } else { 1 }).collect();
    let lead_here: Vec<Expr> = (0..a).map(var).collect();
    if n_out >= 2 {
        f.output(x.dtype, dims(&stat_shape));
        outs.push(f.add_stage(StageDef {
            name: Ident::new("mean_out"),
            ty: Some(ty(x.dtype, &stat_shape)),
            idx: idx(r),
            body: mean.at(lead_here.clone()),
        }));
    }
    if n_out >= 3 {
        f.output(x.dtype, dims(&stat_shape));
        outs.push(f.add_stage(StageDef {
            name: Ident::new("inv_std"),
            ty: Some(ty(x.dtype, &stat_shape)),
            idx: idx(r),
            body: te::rsqrt(var_.at(lead_here) + c(eps)),
        }));
    }
    f.ret(outs);
    built(&f)
}

pub(crate) fn argmax(attrs: &dyn Attrs, x: Input<'_>) -> R<Impl> {
    if !x.dtype.is_numeric() {
        return Err(format!("ArgMax of `{}`", x.dtype));
    }
    let r = x.shape.len();
    let a = axis_of(attrs.int("axis").unwrap_or(0), r)?;
    let keep = attrs.int("keepdims").unwrap_or(1) != 0;
    let last = attrs.int("select_last_index").unwrap_or(0) != 0;
    let n = x.shape[a] as i64;
    let mut out: Vec<usize> = x.shape.to_vec();
    let lead: Vec<usize> = (0..r).filter(|k| *k != a).collect();
    if keep {
        out[a] = 1;
    } else {
        out.remove(a);
    }
    let mut f = FuncBuilder::new("argmax");
    let tx = f.input("x", x.dtype, dims(x.shape));
    // Output index position → input dims (the reduced one from `k`).
    let pos = |k: usize| if keep { var(k) } else { var(lead.iter().position(|l| *l == k).unwrap_or(0)) };
    let at = |red: Expr| (0..r).map(|k| if k == a { red.clone() } else { pos(k) }).collect::<Vec<_>>();
    let mx = te::reduce(ReduceOp::Max, vec![te::rvar("k", 0i64, lit(n))], tx.at(at(Expr::name("k"))));
    let m_shape = out.clone();
    let m =
        f.add_stage(StageDef { name: Ident::new("m"), ty: Some(ty(x.dtype, &m_shape)), idx: idx(out.len()), body: mx });
    let here: Vec<Expr> = (0..out.len()).map(var).collect();
    let hit = tx.at(at(Expr::name("j"))).eq(m.at(here));
    let body = if last {
        te::reduce(ReduceOp::Max, vec![te::rvar("j", 0i64, lit(n))], te::select(hit, Expr::name("j"), lit(-1)))
    } else {
        te::reduce(ReduceOp::Min, vec![te::rvar("j", 0i64, lit(n))], te::select(hit, Expr::name("j"), lit(n)))
    };
    f.output(DType::I64, dims(&out));
    let y = f.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(DType::I64, &out)), idx: idx(out.len()), body });
    f.ret([y]);
    built(&f)
}

pub(crate) fn cumsum(attrs: &dyn Attrs, x: Input<'_>, axis: Input<'_>) -> R<Impl> {
    if !x.dtype.is_numeric() {
        return Err(format!("CumSum of `{}`", x.dtype));
    }
    let r = x.shape.len();
    let a = axis.value.and_then(|v| v.get(0)).and_then(|s| s.as_i64()).ok_or("the axis must be known")?;
    let a = axis_of(a, r)?;
    let (excl, rev) = (attrs.int("exclusive").unwrap_or(0) != 0, attrs.int("reverse").unwrap_or(0) != 0);
    let n = x.shape[a] as i64;
    let mut f = FuncBuilder::new("cumsum");
    let tx = f.input("x", x.dtype, dims(x.shape));
    let at: Vec<Expr> = (0..r).map(|k| if k == a { Expr::name("j") } else { var(k) }).collect();
    let j = Expr::name("j");
    let i = var(a);
    let take = match (rev, excl) {
        (false, false) => j.le(i),
        (false, true) => j.lt(i),
        (true, false) => j.ge(i),
        (true, true) => j.gt(i),
    };
    let body = te::reduce(
        ReduceOp::Sum,
        vec![te::rvar("j", 0i64, lit(n))],
        te::if_(take, tx.at(at), Expr::typed(Scalar::zero(x.dtype))),
    );
    f.output(x.dtype, dims(x.shape));
    let y = f.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(x.dtype, x.shape)), idx: idx(r), body });
    f.ret([y]);
    built(&f)
}
