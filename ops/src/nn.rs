//! Convolutions, pooling, normalizations and the structural operators
//! (Concat, Transpose, variadic Sum/Max/Min, ConstantOfShape).

use texpr_dsl::te::{self, Expr, FuncBuilder, Ident, StageDef};
use texpr_dsl::{AnyTensor, DType, ReduceOp, Scalar};

use crate::templates::CONV_TILE;
use crate::{
    Attrs, Impl, Input, KernelDef, Template, broadcast_index, broadcast_shape, dims, float_only, idx, ints_of, ty, var,
};

type R<T> = Result<T, String>;

fn built(f: &FuncBuilder) -> R<Impl> {
    Ok(Impl::kernel(f.clone()))
}

pub(crate) fn lit(n: i64) -> Expr {
    Expr::int(n as i128)
}

/// The window geometry of a convolution or pooling over `x` (N, C,
/// spatial...): per spatial dim the kernel, stride, dilation, begin pad and
/// output size.
pub(crate) struct Window {
    pub(crate) k: Vec<i64>,
    s: Vec<i64>,
    d: Vec<i64>,
    pad: Vec<i64>,
    pub(crate) out: Vec<usize>,
    /// The end of the padded input (for `count_include_pad`).
    padded_end: Vec<i64>,
}

pub(crate) fn window(attrs: &dyn Attrs, x: &[usize], kernel: Vec<i64>, ceil: bool) -> R<Window> {
    let r = kernel.len();
    if x.len() != r + 2 {
        return Err(format!("input of rank {} for a {r}-D kernel", x.len()));
    }
    let s = attrs.ints("strides").unwrap_or_else(|| vec![1; r]);
    let d = attrs.ints("dilations").unwrap_or_else(|| vec![1; r]);
    let mut pads = attrs.ints("pads").unwrap_or_else(|| vec![0; 2 * r]);
    if s.len() != r || d.len() != r || pads.len() != 2 * r || kernel.iter().chain(&s).chain(&d).any(|v| *v < 1) {
        return Err(format!("kernel {kernel:?}, strides {s:?}, dilations {d:?}, pads {pads:?}"));
    }
    let auto = attrs.string("auto_pad").unwrap_or_else(|| "NOTSET".into());
    let mut out = vec![];
    for i in 0..r {
        let n = x[i + 2] as i64;
        let span = (kernel[i] - 1) * d[i] + 1;
        let o = match auto.as_str() {
            "SAME_UPPER" | "SAME_LOWER" => {
                let o = (n + s[i] - 1) / s[i];
                let total = ((o - 1) * s[i] + span - n).max(0);
                let small = total / 2;
                let (b, e) = if auto == "SAME_UPPER" { (small, total - small) } else { (total - small, small) };
                pads[i] = b;
                pads[i + r] = e;
                o
            }
            "VALID" => {
                pads[i] = 0;
                pads[i + r] = 0;
                (n - span) / s[i] + 1
            }
            "NOTSET" => {
                let room = n + pads[i] + pads[i + r] - span;
                if room < 0 {
                    return Err(format!("a window of {span} does not fit a dim of {n} padded by {pads:?}"));
                }
                let mut o = room / s[i] + 1;
                if ceil && room % s[i] != 0 {
                    o += 1;
                    if (o - 1) * s[i] >= n + pads[i] {
                        o -= 1;
                    }
                }
                o
            }
            other => return Err(format!("auto_pad `{other}`")),
        };
        out.push(o.max(0) as usize);
    }
    let padded_end = (0..r).map(|i| x[i + 2] as i64 + pads[i + r]).collect();
    Ok(Window { k: kernel, s, d, pad: pads[..r].to_vec(), out, padded_end })
}

impl Window {
    /// The input position along spatial dim `i` of output position
    /// `i{i+2}` and window variable `w{i}`.
    pub(crate) fn pos(&self, i: usize) -> Expr {
        var(i + 2) * lit(self.s[i]) + Expr::name(format!("w{i}")) * lit(self.d[i]) - lit(self.pad[i])
    }

    /// `lo <= pos < hi` for every spatial dim.
    pub(crate) fn inside(&self, hi: &[i64], lo: &[i64]) -> Expr {
        (0..self.k.len())
            .map(|i| self.pos(i).ge(lit(lo[i])).and(self.pos(i).lt(lit(hi[i]))))
            .reduce(|a, b| a.and(b))
            .unwrap_or_else(|| Expr::bool(true))
    }

    pub(crate) fn rvars(&self) -> Vec<te::RVar> {
        self.k.iter().enumerate().map(|(i, k)| te::rvar(format!("w{i}").as_str(), 0i64, lit(*k))).collect()
    }
}

fn zero(t: DType) -> Expr {
    Expr::typed(Scalar::zero(t))
}

pub(crate) fn conv(attrs: &dyn Attrs, x: Input<'_>, w: Input<'_>, b: Option<Input<'_>>) -> R<Impl> {
    float_only("Conv", x.dtype)?;
    if x.shape.len() < 3 || w.shape.len() != x.shape.len() || w.dtype != x.dtype {
        return Err(format!("Conv of {:?} with weights {:?}", x.shape, w.shape));
    }
    let g = attrs.int("group").unwrap_or(1);
    let (c, f, cg) = (x.shape[1] as i64, w.shape[0] as i64, w.shape[1] as i64);
    if g < 1 || c != cg * g || f % g != 0 {
        return Err(format!("{c} input channels, {f} filters of {cg} channels, group {g}"));
    }
    let kernel = attrs.ints("kernel_shape").unwrap_or_else(|| w.shape[2..].iter().map(|k| *k as i64).collect());
    if kernel.iter().zip(&w.shape[2..]).any(|(k, n)| *k != *n as i64) {
        return Err(format!("kernel_shape {kernel:?} for weights {:?}", w.shape));
    }
    let win = window(attrs, x.shape, kernel, false)?;
    let r = win.k.len();
    let mut out = vec![x.shape[0], w.shape[0]];
    out.extend(&win.out);
    if let Some(b) = b
        && (b.shape != [w.shape[0]] || b.dtype != x.dtype)
    {
        return Err(format!("bias of shape {:?}", b.shape));
    }
    let depthwise = g == c && f == c && cg == 1;
    // With a schedule template (2-D), `acc` is computed in whole register
    // tiles: its filters and columns rounded up to the tile (the extra ones
    // read the last filter and zero padding, and are never stored), so no
    // tile runs a partial vector.
    let templated = r == 2;
    let (tf, tw) = CONV_TILE;
    let mut acc_shape = out.clone();
    if templated {
        acc_shape[3] = out[3].div_ceil(tw) * tw;
        if !depthwise {
            acc_shape[1] = out[1].div_ceil(tf) * tf;
        }
    }
    let mut fb = FuncBuilder::new("conv");
    let tx = fb.input("x", x.dtype, dims(x.shape));
    let tw = fb.input("w", w.dtype, dims(w.shape));
    let tb = b.map(|b| fb.input("b", b.dtype, dims(b.shape)));
    // The input read without guards: a zero-padded copy `xp` where the
    // window reaches past the input (the padded extent covers every read),
    // the input itself where it does not.
    let end: Vec<i64> = (0..r)
        .map(|i| {
            let read = (acc_shape[i + 2] as i64 - 1) * win.s[i] + (win.k[i] - 1) * win.d[i] + 1;
            (x.shape[i + 2] as i64 + win.pad[i]).max(read)
        })
        .collect();
    // Stride 2 along the rows (the vectorized axis): the padded copy keeps
    // even and odd columns apart, `xp[.., h, parity, j]` at column `2j +
    // parity`, so each tap of the window reads whole vectors (a stride-2
    // load is lane by lane). The templates unroll the taps along the row
    // (parity and offset then are constants).
    let split = templated && win.s[r - 1] == 2 && win.d[r - 1] == 1 && win.k[r - 1] <= 7;
    let padded = split || (0..r).any(|i| win.pad[i] > 0 || end[i] > x.shape[i + 2] as i64);
    let src = if padded {
        let mut shape = x.shape[..2].to_vec();
        shape.extend(end.iter().map(|e| *e as usize));
        let mut pos: Vec<Expr> = (0..r).map(|i| var(i + 2) - lit(win.pad[i])).collect();
        if split {
            let last = shape.pop().unwrap_or(0);
            shape.extend([2, last.div_ceil(2)]);
            pos[r - 1] = var(r + 2) * lit(2) + var(r + 1) - lit(win.pad[r - 1]);
        }
        let inside = (0..r)
            .map(|i| pos[i].clone().ge(lit(0)).and(pos[i].clone().lt(lit(x.shape[i + 2] as i64))))
            .reduce(|a, b| a.and(b))
            .unwrap_or_else(|| Expr::bool(true));
        let mut xi = vec![var(0), var(1)];
        xi.extend(pos);
        let body = te::if_(inside, tx.at(xi), zero(x.dtype));
        fb.add_stage(StageDef { name: Ident::new("xp"), ty: Some(ty(x.dtype, &shape)), idx: idx(shape.len()), body })
    } else {
        tx
    };
    // Input channel: the filter itself (depthwise), or its group times
    // channels per group plus `c`.
    // Filters past the last (a rounded-up tile) read the last one.
    let filter = if acc_shape[1] > out[1] { te::min(var(1), lit(f - 1)) } else { var(1) };
    let ch = if depthwise {
        var(1)
    } else if g == 1 {
        Expr::name("c")
    } else {
        filter.clone() / lit(f / g) * lit(cg) + Expr::name("c")
    };
    let mut xi = vec![var(0), ch];
    xi.extend((0..r).map(|i| {
        var(i + 2) * lit(win.s[i]) + Expr::name(format!("w{i}")) * lit(win.d[i])
            - lit(if padded { 0 } else { win.pad[i] })
    }));
    if split {
        // Column `2o + t` is parity `t % 2`, position `o + t / 2`.
        let t = Expr::name(format!("w{}", r - 1));
        xi.pop();
        xi.extend([t.clone() % lit(2), var(r + 1) + t / lit(2)]);
    }
    let mut wi = vec![filter, if depthwise { lit(0) } else { Expr::name("c") }];
    wi.extend((0..r).map(|i| Expr::name(format!("w{i}"))));
    let mut rv = if depthwise { vec![] } else { vec![te::rvar("c", 0i64, lit(cg))] };
    rv.extend(win.rvars());
    let sum = te::reduce(ReduceOp::Sum, rv, src.at(xi) * tw.at(wi));
    let acc = fb.add_stage(StageDef {
        name: Ident::new("acc"),
        ty: Some(ty(x.dtype, &acc_shape)),
        idx: idx(out.len()),
        body: sum,
    });
    let here: Vec<Expr> = (0..out.len()).map(var).collect();
    let body = match &tb {
        Some(tb) => acc.at(here) + tb.at([var(1)]),
        None => acc.at(here),
    };
    fb.output(x.dtype, dims(&out));
    let y = fb.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(x.dtype, &out)), idx: idx(out.len()), body });
    fb.ret([y]);
    let pad = padded.then(|| "xp".to_string());
    let template = templated.then(|| {
        if depthwise {
            Template::Depthwise { acc: "acc".into(), pad }
        } else {
            let weights: usize = w.shape.iter().product();
            let input: usize = x.shape[1..].iter().product();
            Template::Conv { acc: "acc".into(), pad, filters_outer: weights > input }
        }
    });
    Ok(Impl::Kernel(Box::new(KernelDef { func: fb, template })))
}

/// `ConvTranspose` (the gradient of a convolution: each input element
/// scatters its window into the output), as a gather over the output:
/// `y[n, m, o] = Σ_{c, k} x[n, c, (o + pad - k·d) / s] · w[c, m', k]` where
/// `o + pad - k·d` is a non-negative multiple of `s` inside the input, over
/// the input channels of `m`'s group (`m'`: `m` within its group).
pub(crate) fn conv_transpose(attrs: &dyn Attrs, x: Input<'_>, w: Input<'_>, b: Option<Input<'_>>) -> R<Impl> {
    float_only("ConvTranspose", x.dtype)?;
    let r = x.shape.len().saturating_sub(2);
    if r == 0 || w.shape.len() != x.shape.len() || w.dtype != x.dtype {
        return Err(format!("ConvTranspose of {:?} with weights {:?}", x.shape, w.shape));
    }
    let g = attrs.int("group").unwrap_or(1);
    let (c, mg) = (x.shape[1] as i64, w.shape[1] as i64);
    if g < 1 || w.shape[0] as i64 != c || c % g != 0 {
        return Err(format!("{c} input channels, weights {:?}, group {g}", w.shape));
    }
    let (cg, m) = (c / g, mg * g);
    let list = |name: &str, default: i64| attrs.ints(name).unwrap_or_else(|| vec![default; r]);
    let kernel = attrs.ints("kernel_shape").unwrap_or_else(|| w.shape[2..].iter().map(|k| *k as i64).collect());
    let (s, d, outpad) = (list("strides", 1), list("dilations", 1), list("output_padding", 0));
    let mut pads = attrs.ints("pads").unwrap_or_else(|| vec![0; 2 * r]);
    if [&kernel, &s, &d, &outpad].iter().any(|v| v.len() != r)
        || pads.len() != 2 * r
        || kernel.iter().zip(&w.shape[2..]).any(|(k, n)| *k != *n as i64)
        || s.iter().chain(&d).any(|v| *v < 1)
    {
        return Err(format!(
            "kernel {kernel:?}, strides {s:?}, dilations {d:?}, pads {pads:?}, output_padding {outpad:?}"
        ));
    }
    let auto = attrs.string("auto_pad").unwrap_or_else(|| "NOTSET".into());
    let full: Vec<i64> =
        (0..r).map(|i| s[i] * (x.shape[i + 2] as i64 - 1) + outpad[i] + (kernel[i] - 1) * d[i] + 1).collect();
    let wanted: Option<Vec<i64>> = match attrs.ints("output_shape") {
        Some(o) => Some(o[o.len().saturating_sub(r)..].to_vec()),
        None if auto == "SAME_UPPER" || auto == "SAME_LOWER" => {
            Some((0..r).map(|i| x.shape[i + 2] as i64 * s[i]).collect())
        }
        None => None,
    };
    if let Some(o) = &wanted {
        if o.len() != r {
            return Err(format!("output_shape {o:?} for a {r}-D kernel"));
        }
        for i in 0..r {
            let total = full[i] - o[i];
            // Floor division, as ONNX's reference (a negative total pads
            // the end negatively: output_shape past the full output).
            let half = total.div_euclid(2);
            let (a, z) = if auto == "SAME_UPPER" { (half, total - half) } else { (total - half, half) };
            pads[i] = a;
            pads[i + r] = z;
        }
    } else if auto == "VALID" {
        pads = vec![0; 2 * r];
    }
    let out_sp: Vec<i64> = (0..r).map(|i| full[i] - pads[i] - pads[i + r]).collect();
    if out_sp.iter().any(|o| *o < 1) {
        return Err(format!("an output of {out_sp:?}"));
    }
    let mut out = vec![x.shape[0], m as usize];
    out.extend(out_sp.iter().map(|o| *o as usize));
    if let Some(b) = b
        && (b.shape != [m as usize] || b.dtype != x.dtype)
    {
        return Err(format!("bias of shape {:?}", b.shape));
    }
    let mut fb = FuncBuilder::new("convtranspose");
    let tx = fb.input("x", x.dtype, dims(x.shape));
    let tw = fb.input("w", w.dtype, dims(w.shape));
    let tb = b.map(|b| fb.input("b", b.dtype, dims(b.shape)));
    // Input channel: the output channel's group times channels per group,
    // plus `c`; the weight's output channel within the group.
    let ch = var(1) / lit(mg) * lit(cg) + Expr::name("c");
    let t: Vec<Expr> = (0..r).map(|i| var(i + 2) + lit(pads[i]) - Expr::name(format!("w{i}")) * lit(d[i])).collect();
    let hit = (0..r)
        .map(|i| {
            t[i].clone()
                .ge(lit(0))
                .and((t[i].clone() % lit(s[i])).eq(lit(0)))
                .and((t[i].clone() / lit(s[i])).lt(lit(x.shape[i + 2] as i64)))
        })
        .reduce(|a, b| a.and(b))
        .unwrap_or_else(|| Expr::bool(true));
    let mut xi = vec![var(0), ch.clone()];
    xi.extend((0..r).map(|i| t[i].clone() / lit(s[i])));
    let mut wi = vec![ch, var(1) % lit(mg)];
    wi.extend((0..r).map(|i| Expr::name(format!("w{i}"))));
    let mut rv = vec![te::rvar("c", 0i64, lit(cg))];
    rv.extend((0..r).map(|i| te::rvar(format!("w{i}").as_str(), 0i64, lit(kernel[i]))));
    let mut body = te::reduce(ReduceOp::Sum, rv, te::if_(hit, tx.at(xi) * tw.at(wi), zero(x.dtype)));
    if let Some(tb) = &tb {
        body = body + tb.at([var(1)]);
    }
    fb.output(x.dtype, dims(&out));
    let y = fb.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(x.dtype, &out)), idx: idx(out.len()), body });
    fb.ret([y]);
    built(&fb)
}

pub(crate) fn pool(op: &str, attrs: &dyn Attrs, x: Input<'_>, outputs: usize) -> R<Impl> {
    // Max pooling of integers is exact; averages need floats.
    if !op.ends_with("MaxPool") || !x.dtype.is_numeric() {
        float_only(op, x.dtype)?;
    }
    let global = op.starts_with("Global");
    if x.shape.len() < 3 {
        return Err(format!("`{op}` of a rank-{} tensor (N, C and at least one spatial dim)", x.shape.len()));
    }
    let r = x.shape.len() - 2;
    let kernel = if global {
        x.shape[2..].iter().map(|n| *n as i64).collect()
    } else {
        attrs.ints("kernel_shape").ok_or("no kernel_shape")?
    };
    let win = if global {
        Window {
            k: kernel.clone(),
            s: vec![1; r],
            d: vec![1; r],
            pad: vec![0; r],
            out: vec![1; r],
            padded_end: kernel.clone(),
        }
    } else {
        window(attrs, x.shape, kernel, attrs.int("ceil_mode").unwrap_or(0) != 0)?
    };
    let mut out = vec![x.shape[0], x.shape[1]];
    out.extend(&win.out);
    let mut fb = FuncBuilder::new(op.to_ascii_lowercase().as_str());
    let tx = fb.input("x", x.dtype, dims(x.shape));
    let mut xi = vec![var(0), var(1)];
    xi.extend((0..r).map(|i| win.pos(i)));
    let hi: Vec<i64> = x.shape[2..].iter().map(|n| *n as i64).collect();
    let inside = win.inside(&hi, &vec![0; r]);
    let body = if op.ends_with("MaxPool") {
        let low = Expr::typed(Scalar::reduce_identity(ReduceOp::Max, x.dtype));
        te::reduce(ReduceOp::Max, win.rvars(), te::if_(inside, tx.at(xi), low))
    } else {
        let sum = te::reduce(ReduceOp::Sum, win.rvars(), te::if_(inside.clone(), tx.at(xi), zero(x.dtype)));
        // The divisor: the window's elements inside the input, or inside
        // the padded input with `count_include_pad`.
        let counted = if attrs.int("count_include_pad").unwrap_or(0) != 0 {
            let lo: Vec<i64> = win.pad.iter().map(|p| -p).collect();
            win.inside(&win.padded_end, &lo)
        } else {
            inside
        };
        let one = Expr::typed(Scalar::from_f64(x.dtype, 1.0));
        let count = te::reduce(ReduceOp::Sum, win.rvars(), te::if_(counted, one, zero(x.dtype)));
        sum / te::max(count, Expr::typed(Scalar::from_f64(x.dtype, 1.0)))
    };
    fb.output(x.dtype, dims(&out));
    let y = fb.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(x.dtype, &out)), idx: idx(out.len()), body });
    if op == "MaxPool" && outputs > 1 {
        // Indices: the first (lowest flat index) window element equal to
        // the maximum, flattened row-major over the input (column-major
        // over the spatial dims with `storage_order = 1`).
        let mut xi = vec![var(0), var(1)];
        xi.extend((0..r).map(|i| win.pos(i)));
        let inside = win.inside(&hi, &vec![0; r]);
        let sp: Vec<i64> = x.shape[2..].iter().map(|n| *n as i64).collect();
        let column_major = attrs.int("storage_order").unwrap_or(0) != 0;
        let mut flat = (var(0) * lit(x.shape[1] as i64) + var(1)).cast(DType::I64);
        let plane: i64 = sp.iter().product();
        let mut spatial = Expr::int(0);
        if column_major {
            let mut stride = 1;
            for (i, n) in sp.iter().enumerate() {
                spatial = spatial + win.pos(i) * lit(stride);
                stride *= n;
            }
        } else {
            for (i, n) in sp.iter().enumerate() {
                spatial = spatial * lit(*n) + win.pos(i);
            }
        }
        flat = flat * lit(plane) + spatial;
        let here: Vec<Expr> = (0..out.len()).map(var).collect();
        let hit = inside.and(tx.at(xi).eq(y.at(here)));
        let ib = te::reduce(ReduceOp::Min, win.rvars(), te::if_(hit, flat, Expr::typed(Scalar::I64(i64::MAX))));
        fb.output(DType::I64, dims(&out));
        let ind = fb.add_stage(StageDef {
            name: Ident::new("indices"),
            ty: Some(ty(DType::I64, &out)),
            idx: idx(out.len()),
            body: ib,
        });
        fb.ret([y, ind]);
        return built(&fb);
    }
    fb.ret([y]);
    built(&fb)
}

pub(crate) fn batch_norm(attrs: &dyn Attrs, ins: &[Input<'_>]) -> R<Impl> {
    let x = ins[0];
    float_only("BatchNormalization", x.dtype)?;
    if ins.len() != 5 || x.shape.len() < 2 || ins[1..].iter().any(|i| i.shape != [x.shape[1]] || i.dtype != x.dtype) {
        return Err("BatchNormalization takes x and four per-channel tensors".into());
    }
    let eps = attrs.float("epsilon").unwrap_or(1e-5) as f64;
    let mut fb = FuncBuilder::new("batchnorm");
    let names = ["x", "scale", "bias", "mean", "var"];
    let t: Vec<_> = ins.iter().zip(names).map(|(i, n)| fb.input(n, i.dtype, dims(i.shape))).collect();
    let c = [var(1)];
    let body = (t[0].at((0..x.shape.len()).map(var)) - t[3].at(c.clone()))
        / te::sqrt(t[4].at(c.clone()) + Expr::float(eps))
        * t[1].at(c.clone())
        + t[2].at(c);
    fb.output(x.dtype, dims(x.shape));
    let y =
        fb.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(x.dtype, x.shape)), idx: idx(x.shape.len()), body });
    fb.ret([y]);
    built(&fb)
}

pub(crate) fn lrn(attrs: &dyn Attrs, x: Input<'_>) -> R<Impl> {
    float_only("LRN", x.dtype)?;
    let size = attrs.int("size").ok_or("no size")?;
    let (alpha, beta, bias) = (
        attrs.float("alpha").unwrap_or(1e-4) as f64,
        attrs.float("beta").unwrap_or(0.75) as f64,
        attrs.float("bias").unwrap_or(1.0) as f64,
    );
    if size < 1 || x.shape.len() < 2 {
        return Err(format!("LRN of size {size} over {:?}", x.shape));
    }
    let r = x.shape.len();
    let lo = (size - 1) / 2;
    let mut fb = FuncBuilder::new("lrn");
    let tx = fb.input("x", x.dtype, dims(x.shape));
    let ch = var(1) + Expr::name("k") - lit(lo);
    let mut xi: Vec<Expr> = (0..r).map(var).collect();
    xi[1] = ch.clone();
    let inside = ch.clone().ge(lit(0)).and(ch.lt(lit(x.shape[1] as i64)));
    let sq = te::reduce(
        ReduceOp::Sum,
        vec![te::rvar("k", 0i64, lit(size))],
        te::if_(inside, tx.at(xi.clone()) * tx.at(xi), zero(x.dtype)),
    );
    let here: Vec<Expr> = (0..r).map(var).collect();
    let body = tx.at(here) / te::pow(Expr::float(bias) + Expr::float(alpha / size as f64) * sq, Expr::float(beta));
    fb.output(x.dtype, dims(x.shape));
    let y = fb.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(x.dtype, x.shape)), idx: idx(r), body });
    fb.ret([y]);
    built(&fb)
}

pub(crate) fn concat(attrs: &dyn Attrs, ins: &[Input<'_>]) -> R<Impl> {
    let first = ins.first().ok_or("no inputs")?;
    let r = first.shape.len();
    let a = attrs.int("axis").ok_or("no axis")?;
    let a = if a < 0 { a + r as i64 } else { a };
    if !(0..r as i64).contains(&a) {
        return Err(format!("axis {a} for rank {r}"));
    }
    let a = a as usize;
    for i in ins {
        if i.dtype != first.dtype || i.shape.len() != r || (0..r).any(|k| k != a && i.shape[k] != first.shape[k]) {
            return Err(format!("Concat of {:?} and {:?} along {a}", first.shape, i.shape));
        }
    }
    let mut out = first.shape.to_vec();
    out[a] = ins.iter().map(|i| i.shape[a]).sum();
    let mut fb = FuncBuilder::new("concat");
    let ts: Vec<_> =
        ins.iter().enumerate().map(|(k, i)| fb.input(format!("x{k}").as_str(), i.dtype, dims(i.shape))).collect();
    // if i < o1 { x0 } else if i < o2 { x1[i - o1] } ... (lazy: no load
    // outside its input).
    let mut offsets = vec![0usize];
    for i in ins {
        offsets.push(offsets[offsets.len() - 1] + i.shape[a]);
    }
    let at = |k: usize| {
        let mut ix: Vec<Expr> = (0..r).map(var).collect();
        ix[a] = var(a) - lit(offsets[k] as i64);
        ts[k].at(ix)
    };
    let mut body = at(ins.len() - 1);
    for k in (0..ins.len() - 1).rev() {
        body = te::if_(var(a).lt(lit(offsets[k + 1] as i64)), at(k), body);
    }
    fb.output(first.dtype, dims(&out));
    let y = fb.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(first.dtype, &out)), idx: idx(r), body });
    fb.ret([y]);
    built(&fb)
}

pub(crate) fn transpose(attrs: &dyn Attrs, x: Input<'_>) -> R<Impl> {
    let r = x.shape.len();
    let perm = attrs.ints("perm").unwrap_or_else(|| (0..r as i64).rev().collect());
    let mut seen = vec![false; r];
    let perm: Vec<usize> = perm
        .iter()
        .map(|p| {
            let p = if *p < 0 { p + r as i64 } else { *p };
            match usize::try_from(p).ok().filter(|p| *p < r) {
                Some(p) if !std::mem::replace(&mut seen[p], true) => Ok(p),
                _ => Err(format!("perm {perm:?} for rank {r}")),
            }
        })
        .collect::<R<_>>()?;
    if perm.len() != r {
        return Err(format!("perm {perm:?} for rank {r}"));
    }
    let out: Vec<usize> = perm.iter().map(|p| x.shape[*p]).collect();
    let mut fb = FuncBuilder::new("transpose");
    let tx = fb.input("x", x.dtype, dims(x.shape));
    // y[i0, i1, ...] = x[j] with j[perm[k]] = i_k.
    let mut xi = vec![Expr::int(0); r];
    for (k, p) in perm.iter().enumerate() {
        xi[*p] = var(k);
    }
    fb.output(x.dtype, dims(&out));
    let y = fb.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(x.dtype, &out)), idx: idx(r), body: tx.at(xi) });
    fb.ret([y]);
    built(&fb)
}

pub(crate) fn variadic(op: &str, ins: &[Input<'_>]) -> R<Impl> {
    let first = ins.first().ok_or("no inputs")?;
    let mut out: Vec<usize> = vec![];
    for i in ins {
        if i.dtype != first.dtype {
            return Err(format!("inputs of types `{}` and `{}`", first.dtype, i.dtype));
        }
        out = broadcast_shape(&out, i.shape)?;
    }
    let mut fb = FuncBuilder::new(op.to_ascii_lowercase().as_str());
    let r = out.len();
    let loads: Vec<Expr> = ins
        .iter()
        .enumerate()
        .map(|(k, i)| fb.input(format!("x{k}").as_str(), i.dtype, dims(i.shape)).at(broadcast_index(i.shape, r)))
        .collect();
    let body = loads
        .into_iter()
        .reduce(|a, b| match op {
            "Sum" => a + b,
            "Max" => te::max(a, b),
            _ => te::min(a, b),
        })
        .ok_or("no inputs")?;
    fb.output(first.dtype, dims(&out));
    let y = fb.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(first.dtype, &out)), idx: idx(r), body });
    fb.ret([y]);
    built(&fb)
}

/// `ConstantOfShape`: computed here, as a value.
pub(crate) fn constant_of_shape(fill: Option<&AnyTensor>, shape: Input<'_>) -> R<Impl> {
    let dims = shape.value.and_then(ints_of).ok_or("the shape must be known")?;
    let dims: Vec<usize> =
        dims.iter().map(|d| usize::try_from(*d)).collect::<Result<_, _>>().map_err(|_| format!("shape {dims:?}"))?;
    let (t, v) = match fill {
        Some(f) => (f.dtype(), f.get(0).ok_or("an empty `value`")?),
        None => (DType::F32, Scalar::F32(0.0)),
    };
    AnyTensor::try_filled(t, &dims, v).map(Impl::Value).map_err(|e| e.to_string())
}
