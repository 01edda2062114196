//! Integer and quantized products: `MatMulInteger` and `ConvInteger`
//! (`i32` sums of zero-point-shifted 8-bit operands), `QLinearMatMul` and
//! `QLinearConv` (those sums requantized: times `a_scale · b_scale /
//! y_scale` — computed in the scales' type, as ONNX's reference does —
//! plus `y_zero_point`, rounded half to even, saturated).

use texpr_dsl::te::{self, Expr, FuncBuilder, Ident, StageDef, TensorRef};
use texpr_dsl::{DType, ReduceOp, Scalar};

use crate::nn::{lit, window};
use crate::quant::round_half_even;
use crate::{Attrs, Impl, Input, broadcast_index, broadcast_shape, dims, idx, ty, var};

type R<T> = Result<T, String>;

fn eight_bit(t: DType) -> bool {
    matches!(t, DType::U8 | DType::I8)
}

/// `x - zero_point` as `i32` (`zp` read at `zi`: a scalar, or one per
/// row/column/channel).
fn shifted(x: Expr, zp: Option<(&TensorRef, Vec<Expr>)>) -> Expr {
    let v = x.cast(DType::I32);
    match zp {
        Some((z, at)) => v - z.at(at).cast(DType::I32),
        None => v,
    }
}

/// Where a zero point or scale of `p` is read: nothing for a scalar (or a
/// one-element vector), `per` for a vector of `n`.
fn param_at(p: &Input<'_>, n: usize, per: Expr, what: &str) -> R<Vec<Expr>> {
    match p.shape {
        [] => Ok(vec![]),
        [1] => Ok(vec![Expr::int(0)]),
        [k] if *k == n => Ok(vec![per]),
        s => Err(format!("{what} of shape {s:?} (a scalar or {n} values)")),
    }
}

/// Requantization's inputs: the output scale and zero point, and the
/// input scales (the second per output channel or column, or not).
struct Requant<'a> {
    a_scale: Input<'a>,
    b_scale: Input<'a>,
    y_scale: Input<'a>,
    y_zp: Option<Input<'a>>,
}

/// The kernel's tensor arguments by role, declared in the node's input
/// order (a kernel takes the node's present inputs in order).
#[derive(Default)]
struct Args {
    refs: std::collections::HashMap<&'static str, TensorRef>,
}

impl Args {
    /// Declares the node's inputs: `(role, input)` in input order.
    fn declare(f: &mut FuncBuilder, roles: &[(&'static str, Option<Input<'_>>)]) -> Args {
        let mut a = Args::default();
        for (role, i) in roles {
            if let Some(i) = i {
                a.refs.insert(role, f.input(*role, i.dtype, dims(i.shape)));
            }
        }
        a
    }

    fn get(&self, role: &str) -> R<&TensorRef> {
        self.refs.get(role).ok_or_else(|| format!("no `{role}`"))
    }

    fn opt(&self, role: &str) -> Option<&TensorRef> {
        self.refs.get(role)
    }
}

/// `acc` requantized: `saturate(round(acc · (sa · sb / sy)) + zy)` in `f64`,
/// `sa · sb / sy` in the scales' type.
fn requantize(args: &Args, q: &Requant<'_>, acc: Expr, n: usize, per: Expr, out_t: DType) -> R<Expr> {
    let st = q.a_scale.dtype;
    if !st.is_float() || q.b_scale.dtype != st || q.y_scale.dtype != st {
        return Err(format!("scales of `{}`, `{}`, `{}`", q.a_scale.dtype, q.b_scale.dtype, q.y_scale.dtype));
    }
    let (sa, sb, sy) = (args.get("a_scale")?, args.get("b_scale")?, args.get("y_scale")?);
    let m = sa.at(param_at(&q.a_scale, 1, Expr::int(0), "a_scale")?) * sb.at(param_at(&q.b_scale, n, per, "b_scale")?)
        / sy.at(param_at(&q.y_scale, 1, Expr::int(0), "y_scale")?);
    let mut v = round_half_even(acc.cast(DType::F64) * m.cast(DType::F64));
    if let (Some(z), Some(tz)) = (q.y_zp, args.opt("y_zero_point")) {
        v = v + tz.at(param_at(&z, 1, Expr::int(0), "y_zero_point")?).cast(DType::F64);
    }
    let (lo, hi) = texpr_dsl::value::int_range(out_t);
    let c = |x: i128| Expr::typed(Scalar::F64(x as f64));
    Ok(te::clamp(v, c(lo), c(hi)).cast(out_t))
}

/// The output: the `i32` sum itself, or (quantized) the sum as a stage
/// `acc` requantized with the second scale per `per` (`n` of them).
#[allow(clippy::too_many_arguments)]
fn finish(
    mut f: FuncBuilder,
    args: &Args,
    q: Option<&Requant<'_>>,
    sum: Expr,
    out: &[usize],
    out_t: DType,
    n: usize,
    per: Expr,
) -> R<Impl> {
    let body = match q {
        None => sum,
        Some(q) => {
            let acc = f.add_stage(StageDef {
                name: Ident::new("acc"),
                ty: Some(ty(DType::I32, out)),
                idx: idx(out.len()),
                body: sum,
            });
            requantize(args, q, acc.at((0..out.len()).map(var)), n, per, out_t)?
        }
    };
    f.output(out_t, dims(out));
    let y = f.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(out_t, out)), idx: idx(out.len()), body });
    f.ret([y]);
    Ok(Impl::kernel(f))
}

/// `MatMulInteger` (`q = None`) or `QLinearMatMul`: `a` `[.., M, K]` times
/// `b` `[.., K, N]` (batch dims broadcast), zero points per tensor, per row
/// of `a` or per column of `b`.
fn matmul(
    f: FuncBuilder,
    args: &Args,
    a: Input<'_>,
    a_zp: Option<Input<'_>>,
    b: Input<'_>,
    b_zp: Option<Input<'_>>,
    q: Option<Requant<'_>>,
) -> R<Impl> {
    if !eight_bit(a.dtype) || !eight_bit(b.dtype) || a.shape.len() < 2 || b.shape.len() < 2 {
        return Err(format!("an integer product of `{}`{:?} and `{}`{:?}", a.dtype, a.shape, b.dtype, b.shape));
    }
    let (ra, rb) = (a.shape.len(), b.shape.len());
    let (m, k, n) = (a.shape[ra - 2], a.shape[ra - 1], b.shape[rb - 1]);
    if b.shape[rb - 2] != k {
        return Err(format!("shapes {:?} and {:?} do not multiply", a.shape, b.shape));
    }
    let batch = broadcast_shape(&a.shape[..ra - 2], &b.shape[..rb - 2])?;
    let nb = batch.len();
    let mut out = batch;
    out.extend([m, n]);
    let out_t = match &q {
        Some(q) => q.y_zp.map_or(a.dtype, |z| z.dtype),
        None => DType::I32,
    };
    let (ta, tb) = (args.get("a")?, args.get("b")?);
    let za = a_zp.zip(args.opt("a_zero_point")).map(|(z, t)| (t, z));
    let zb = b_zp.zip(args.opt("b_zero_point")).map(|(z, t)| (t, z));
    let kv = Expr::name("k");
    let mut ia = broadcast_index(&a.shape[..ra - 2], nb);
    ia.extend([var(nb), kv.clone()]);
    let mut ib = broadcast_index(&b.shape[..rb - 2], nb);
    ib.extend([kv, var(nb + 1)]);
    let za = match za {
        Some((t, z)) => Some((t, param_at(&z, m, var(nb), "a_zero_point")?)),
        None => None,
    };
    let zb = match zb {
        Some((t, z)) => Some((t, param_at(&z, n, var(nb + 1), "b_zero_point")?)),
        None => None,
    };
    let term = shifted(ta.at(ia), za) * shifted(tb.at(ib), zb);
    let sum = te::reduce(ReduceOp::Sum, vec![te::rvar("k", 0i64, Expr::int(k as i128))], term);
    finish(f, args, q.as_ref(), sum, &out, out_t, n, var(nb + 1))
}

/// `ConvInteger` (`q = None`) or `QLinearConv`: a grouped, strided, dilated,
/// padded convolution of zero-point-shifted 8-bit operands (padding adds
/// nothing: it is the zero point), an optional `i32` bias, weights' zero
/// points and scales per tensor or per output channel.
#[allow(clippy::too_many_arguments)]
fn conv(
    f: FuncBuilder,
    args: &Args,
    attrs: &dyn Attrs,
    x: Input<'_>,
    x_zp: Option<Input<'_>>,
    w: Input<'_>,
    w_zp: Option<Input<'_>>,
    bias: Option<Input<'_>>,
    q: Option<Requant<'_>>,
) -> R<Impl> {
    if !eight_bit(x.dtype) || !eight_bit(w.dtype) || x.shape.len() < 3 || w.shape.len() != x.shape.len() {
        return Err(format!("an integer convolution of `{}`{:?} with `{}`{:?}", x.dtype, x.shape, w.dtype, w.shape));
    }
    let g = attrs.int("group").unwrap_or(1);
    let (c, fl, cg) = (x.shape[1] as i64, w.shape[0] as i64, w.shape[1] as i64);
    if g < 1 || c != cg * g || fl % g != 0 {
        return Err(format!("{c} input channels, {fl} filters of {cg} channels, group {g}"));
    }
    let kernel = attrs.ints("kernel_shape").unwrap_or_else(|| w.shape[2..].iter().map(|k| *k as i64).collect());
    let win = window(attrs, x.shape, kernel, false)?;
    let r = win.k.len();
    let mut out = vec![x.shape[0], w.shape[0]];
    out.extend(&win.out);
    let out_t = match &q {
        Some(q) => q.y_zp.map_or(x.dtype, |z| z.dtype),
        None => DType::I32,
    };
    let (tx, tw) = (args.get("a")?, args.get("b")?);
    let zx = x_zp.zip(args.opt("a_zero_point")).map(|(z, t)| (t, z));
    let zw = w_zp.zip(args.opt("b_zero_point")).map(|(z, t)| (t, z));
    let ch = var(1) / lit(fl / g) * lit(cg) + Expr::name("c");
    let mut xi = vec![var(0), ch];
    xi.extend((0..r).map(|i| win.pos(i)));
    let mut wi = vec![var(1), Expr::name("c")];
    wi.extend((0..r).map(|i| Expr::name(format!("w{i}"))));
    let hi: Vec<i64> = x.shape[2..].iter().map(|n| *n as i64).collect();
    let zx = match zx {
        Some((t, z)) => Some((t, param_at(&z, 1, Expr::int(0), "x_zero_point")?)),
        None => None,
    };
    let zw = match zw {
        Some((t, z)) => Some((t, param_at(&z, fl as usize, var(1), "w_zero_point")?)),
        None => None,
    };
    let term = shifted(tx.at(xi), zx) * shifted(tw.at(wi), zw);
    let body = te::if_(win.inside(&hi, &vec![0; r]), term, Expr::typed(Scalar::zero(DType::I32)));
    let mut rv = vec![te::rvar("c", 0i64, lit(cg))];
    rv.extend(win.rvars());
    let mut sum = te::reduce(ReduceOp::Sum, rv, body);
    if let Some(b) = bias {
        if b.dtype != DType::I32 || b.shape != [fl as usize] {
            return Err(format!("a bias of `{}`{:?} (`i32`, one per filter)", b.dtype, b.shape));
        }
        sum = sum + args.get("bias")?.at([var(1)]);
    }
    finish(f, args, q.as_ref(), sum, &out, out_t, fl as usize, var(1))
}

/// Dispatches the four operators on the node's inputs (declared as kernel
/// arguments in the node's order).
pub(crate) fn implement(op: &str, attrs: &dyn Attrs, ins: &[Option<Input<'_>>]) -> R<Impl> {
    let get = |k: usize| ins.get(k).copied().flatten().ok_or_else(|| format!("input {k} is missing"));
    let opt = |k: usize| ins.get(k).copied().flatten();
    let roles: &[&'static str] = match op {
        "MatMulInteger" | "ConvInteger" => &["a", "b", "a_zero_point", "b_zero_point"],
        "QLinearMatMul" => &["a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point", "y_scale", "y_zero_point"],
        "QLinearConv" => {
            &["a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point", "y_scale", "y_zero_point", "bias"]
        }
        other => return Err(format!("{} `{other}`", crate::UNKNOWN_OPERATOR)),
    };
    let mut f = FuncBuilder::new(op.to_ascii_lowercase().as_str());
    let declared: Vec<(&'static str, Option<Input<'_>>)> =
        roles.iter().enumerate().map(|(k, r)| (*r, opt(k))).collect();
    let args = Args::declare(&mut f, &declared);
    match op {
        "MatMulInteger" => matmul(f, &args, get(0)?, opt(2), get(1)?, opt(3), None),
        "ConvInteger" => conv(f, &args, attrs, get(0)?, opt(2), get(1)?, opt(3), None, None),
        "QLinearMatMul" => {
            let q = Requant { a_scale: get(1)?, b_scale: get(4)?, y_scale: get(6)?, y_zp: opt(7) };
            matmul(f, &args, get(0)?, opt(2), get(3)?, opt(5), Some(q))
        }
        _ => {
            let q = Requant { a_scale: get(1)?, b_scale: get(4)?, y_scale: get(6)?, y_zp: opt(7) };
            conv(f, &args, attrs, get(0)?, opt(2), get(3)?, opt(5), opt(8), Some(q))
        }
    }
}
