//! texpr's operator library: each ONNX operator as a texpr definition
//! (built with the builder API, so schedules and every backend apply), or
//! as a *view* when it only changes the shape (`Reshape`, `Flatten`,
//! `Squeeze`, `Unsqueeze`, `Identity`, `Dropout` at inference).
//!
//! [`implement`] takes the operator, its attributes (through [`Attrs`],
//! which the graph level implements) and its inputs' types and shapes, and
//! returns an [`Impl`]. Definitions are built for the inputs' concrete
//! shapes today (dims as literals: the executor caches one kernel per
//! shape); the rules that need an input's *values* (`Reshape`'s shape) read
//! them from [`Input::value`].
//!
//! This library grows operator by operator with the node conformance
//! cases that cover it; an operator it does not have is an error naming it.
#![deny(missing_docs)]

mod more;
mod nn;
mod qlinear;
mod quant;
mod resize;
mod shape_ops;
mod templates;

pub use templates::{Template, schedule};

use texpr_dsl::te::{self, Expr, FuncBuilder, Ident, StageDef, TypeDef};
use texpr_dsl::{AnyTensor, DType};

/// How [`implement`]'s error for an operator it does not know begins.
pub const UNKNOWN_OPERATOR: &str = "texpr does not implement the operator";

/// An operator's attributes, by name.
pub trait Attrs {
    /// An integer attribute.
    fn int(&self, name: &str) -> Option<i64>;
    /// A float attribute.
    fn float(&self, name: &str) -> Option<f32>;
    /// A list of integers.
    fn ints(&self, name: &str) -> Option<Vec<i64>>;
    /// A list of floats.
    fn floats(&self, name: &str) -> Option<Vec<f32>> {
        let _ = name;
        None
    }
    /// A string.
    fn string(&self, name: &str) -> Option<String>;
    /// A tensor (as a value).
    fn tensor(&self, name: &str) -> Option<AnyTensor>;
}

/// One input of a node.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// Its element type.
    pub dtype: DType,
    /// Its dims.
    pub shape: &'a [usize],
    /// Its values, where a rule needs them (shape inputs).
    pub value: Option<&'a AnyTensor>,
}

/// How a node runs.
#[derive(Clone, Debug)]
pub enum Impl {
    /// A kernel, as a definition to build (so that the graph level can
    /// compose definitions into one): the node's first present inputs in
    /// order (omitted optional ones left out; trailing ones read here, such
    /// as axes and shapes, are not kernel inputs), one output per node
    /// output.
    Kernel(Box<KernelDef>),
    /// The first input's data under a new shape.
    View(Vec<usize>),
    /// A value computed here (`ConstantOfShape`).
    Value(AnyTensor),
}

/// A kernel's definition, and how the CPU schedules it when its class
/// default would be naive.
#[derive(Clone, Debug)]
pub struct KernelDef {
    /// The definition, to build.
    pub func: FuncBuilder,
    /// Its schedule template.
    pub template: Option<Template>,
}

impl Impl {
    /// A kernel with the class default schedule.
    pub fn kernel(func: FuncBuilder) -> Impl {
        Impl::Kernel(Box::new(KernelDef { func, template: None }))
    }
}

pub(crate) fn dims(shape: &[usize]) -> Vec<Expr> {
    shape.iter().map(|d| Expr::int(*d as i128)).collect()
}

pub(crate) fn ty(dtype: DType, shape: &[usize]) -> TypeDef {
    TypeDef { dtype, shape: dims(shape), origin: None }
}

pub(crate) fn idx(r: usize) -> Vec<Ident> {
    (0..r).map(|k| Ident::new(format!("i{k}"))).collect()
}

pub(crate) fn var(k: usize) -> Expr {
    Expr::name(format!("i{k}"))
}

/// The index of a broadcast input of shape `s` at output position `out`
/// (rank `r`): leading dims dropped, dims of 1 read at 0.
pub(crate) fn broadcast_index(s: &[usize], r: usize) -> Vec<Expr> {
    (0..s.len()).map(|k| if s[k] == 1 { Expr::int(0) } else { var(r - s.len() + k) }).collect()
}

pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let r = a.len().max(b.len());
    (0..r)
        .map(|k| {
            let x = if k + a.len() >= r { a[k + a.len() - r] } else { 1 };
            let y = if k + b.len() >= r { b[k + b.len() - r] } else { 1 };
            match (x, y) {
                _ if x == y => Ok(x),
                (1, _) => Ok(y),
                (_, 1) => Ok(x),
                _ => Err(format!("shapes {a:?} and {b:?} do not broadcast")),
            }
        })
        .collect()
}

/// One elementwise stage over `out` from inputs `ins` (named `x0`, `x1`,
/// ...), `f` of their broadcast loads.
pub(crate) fn elementwise(
    name: &str,
    ins: &[Input<'_>],
    out_t: DType,
    out: &[usize],
    f: impl FnOnce(Vec<Expr>) -> Expr,
) -> Result<FuncBuilder, String> {
    let mut b = FuncBuilder::new(name);
    let r = out.len();
    let loads: Vec<Expr> = ins
        .iter()
        .enumerate()
        .map(|(k, i)| {
            let t = b.input(format!("x{k}").as_str(), i.dtype, dims(i.shape));
            t.at(broadcast_index(i.shape, r))
        })
        .collect();
    b.output(out_t, dims(out));
    let y = b.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(out_t, out)), idx: idx(r), body: f(loads) });
    b.ret([y]);
    Ok(b)
}

pub(crate) fn float_only(op: &str, t: DType) -> Result<(), String> {
    if t.is_float() { Ok(()) } else { Err(format!("`{op}` of `{t}` values is not supported")) }
}

/// texpr's element type for an ONNX `TensorProto.DataType` number (the
/// one table: import, inference and `Cast` use it); `None` for the types
/// texpr does not compute in (strings, complex numbers, 8-, 4- and 2-bit
/// types).
pub fn onnx_dtype(t: i64) -> Option<DType> {
    Some(match t {
        1 => DType::F32,
        2 => DType::U8,
        3 => DType::I8,
        4 => DType::U16,
        5 => DType::I16,
        6 => DType::I32,
        7 => DType::I64,
        9 => DType::Bool,
        10 => DType::F16,
        11 => DType::F64,
        12 => DType::U32,
        13 => DType::U64,
        16 => DType::BF16,
        _ => return None,
    })
}

/// How node `op` (opset `opset`, `outputs` outputs) runs on inputs of these
/// types and shapes (`None`: an omitted optional input); the message of an
/// error otherwise.
pub fn implement(
    op: &str,
    opset: i64,
    attrs: &dyn Attrs,
    inputs: &[Option<Input<'_>>],
    outputs: usize,
) -> Result<Impl, String> {
    let get = |k: usize| inputs.get(k).copied().flatten().ok_or_else(|| format!("input {k} is missing"));
    if op == "Constant" {
        return more::constant(attrs);
    }
    let x = get(0)?;
    let name = op.to_ascii_lowercase();
    let unary = |f: fn(Expr) -> Expr| {
        float_only(op, x.dtype)?;
        elementwise(&name, &[x], x.dtype, x.shape, |v| f(v[0].clone())).map(Impl::kernel)
    };
    match op {
        "Identity" => Ok(Impl::View(x.shape.to_vec())),
        "Dropout" => {
            // Inference: the input, and a mask of all `true` (the executor
            // makes it). Training mode with a non-zero ratio draws random
            // numbers, which texpr does not.
            let training = inputs
                .get(2)
                .copied()
                .flatten()
                .and_then(|t| t.value)
                .and_then(|v| v.get(0))
                .is_some_and(|b| b.is_true());
            let ratio = match inputs.get(1).copied().flatten().and_then(|r| r.value).and_then(|v| v.get(0)) {
                Some(r) => r.as_f64(),
                None => attrs.float("ratio").map_or(0.5, f64::from),
            };
            if training && ratio != 0.0 {
                return Err("training-mode Dropout draws random numbers, which texpr does not".into());
            }
            Ok(Impl::View(x.shape.to_vec()))
        }
        "Relu" => {
            let zero = |t: DType| if t.is_float() { Expr::float(0.0) } else { Expr::int(0) };
            elementwise(&name, &[x], x.dtype, x.shape, |v| te::max(v[0].clone(), zero(x.dtype))).map(Impl::kernel)
        }
        "Sigmoid" => unary(te::sigmoid),
        "Tanh" => unary(te::tanh),
        "Exp" => unary(te::exp),
        "Log" => unary(te::ln),
        "Sqrt" => unary(te::sqrt),
        "Erf" => unary(te::erf),
        "Neg" => elementwise(&name, &[x], x.dtype, x.shape, |v| -v[0].clone()).map(Impl::kernel),
        "Abs" => elementwise(&name, &[x], x.dtype, x.shape, |v| te::abs(v[0].clone())).map(Impl::kernel),
        "Add" | "Sub" | "Mul" | "Div" => {
            let y = get(1)?;
            if x.dtype != y.dtype {
                return Err(format!("inputs of types `{}` and `{}`", x.dtype, y.dtype));
            }
            let out = broadcast_shape(x.shape, y.shape)?;
            let signed = x.dtype.is_signed_int();
            elementwise(&name, &[x, y], x.dtype, &out, |v| {
                let (a, b) = (v[0].clone(), v[1].clone());
                match op {
                    "Add" => a + b,
                    "Sub" => a - b,
                    "Mul" => a * b,
                    // Integer `Div` truncates in ONNX, texpr's `/` floors:
                    // one more where the remainder is not 0 and the signs
                    // differ.
                    _ if signed => {
                        let q = a.clone() / b.clone();
                        let r = a.clone() % b.clone();
                        let differ = te::select(a.lt(Expr::int(0)), b.clone().ge(Expr::int(0)), b.lt(Expr::int(0)));
                        q + te::select(r.ne(Expr::int(0)).and(differ), Expr::int(1), Expr::int(0))
                    }
                    _ => a / b,
                }
            })
            .map(Impl::kernel)
        }
        "Reshape" => {
            let s = get(1)?;
            let spec = s.value.and_then(ints_of).ok_or("the target shape must be known")?;
            let allow_zero = attrs.int("allowzero").unwrap_or(0) != 0;
            let total: usize = x.shape.iter().product();
            let mut out = vec![];
            let mut infer = None;
            for (k, d) in spec.iter().enumerate() {
                out.push(match *d {
                    -1 if infer.is_none() => {
                        infer = Some(k);
                        1
                    }
                    0 if !allow_zero => *x.shape.get(k).ok_or("a 0 past the input's rank")?,
                    d if d >= 0 => d as usize,
                    _ => return Err(format!("target shape {spec:?} is not a shape")),
                });
            }
            if let Some(k) = infer {
                let rest: usize = out.iter().product();
                if rest == 0 || !total.is_multiple_of(rest) {
                    return Err(format!("{total} elements do not reshape to {spec:?}"));
                }
                out[k] = total / rest;
            }
            if out.iter().product::<usize>() != total {
                return Err(format!("{total} elements do not reshape to {out:?}"));
            }
            Ok(Impl::View(out))
        }
        "Flatten" => {
            let r = x.shape.len() as i64;
            let a = attrs.int("axis").unwrap_or(1);
            let a = if a < 0 { a + r } else { a };
            if !(0..=r).contains(&a) {
                return Err(format!("axis {a} for rank {r}"));
            }
            let (h, t) = x.shape.split_at(a as usize);
            Ok(Impl::View(vec![h.iter().product(), t.iter().product()]))
        }
        "Squeeze" | "Unsqueeze" => {
            let axes = match attrs.ints("axes") {
                Some(a) => Some(a),
                None => match get(1) {
                    Ok(i) => Some(i.value.and_then(ints_of).ok_or("`axes` must be known")?),
                    Err(_) => None,
                },
            };
            let r = x.shape.len() as i64;
            if op == "Unsqueeze" {
                let axes = axes.ok_or("no axes")?;
                let out_r = r + axes.len() as i64;
                let mut at: Vec<i64> = axes.iter().map(|a| if *a < 0 { a + out_r } else { *a }).collect();
                at.sort_unstable();
                if at.iter().any(|a| !(0..out_r).contains(a)) || at.windows(2).any(|w| w[0] == w[1]) {
                    return Err(format!("axes {axes:?} for rank {out_r}"));
                }
                let mut it = x.shape.iter();
                let out =
                    (0..out_r).map(|i| if at.contains(&i) { 1 } else { it.next().copied().unwrap_or(1) }).collect();
                return Ok(Impl::View(out));
            }
            let drop: Vec<i64> = match axes {
                Some(a) => a.iter().map(|a| if *a < 0 { a + r } else { *a }).collect(),
                None => (0..r).filter(|k| x.shape[*k as usize] == 1).collect(),
            };
            if drop.iter().any(|a| !(0..r).contains(a) || x.shape[*a as usize] != 1) {
                return Err(format!("cannot squeeze axes {drop:?} of {:?}", x.shape));
            }
            Ok(Impl::View((0..r).filter(|k| !drop.contains(k)).map(|k| x.shape[k as usize]).collect()))
        }
        "Conv" => nn::conv(attrs, x, get(1)?, inputs.get(2).copied().flatten()),
        "Resize" | "Upsample" => resize::resize(op, opset, attrs, inputs),
        "MatMulInteger" | "ConvInteger" | "QLinearMatMul" | "QLinearConv" => qlinear::implement(op, attrs, inputs),
        "ConvTranspose" => nn::conv_transpose(attrs, x, get(1)?, inputs.get(2).copied().flatten()),
        "MaxPool" | "AveragePool" | "GlobalAveragePool" | "GlobalMaxPool" => nn::pool(op, attrs, x, outputs),
        "BatchNormalization" => {
            let ins: Vec<Input<'_>> = (0..5).map(get).collect::<Result<_, _>>()?;
            nn::batch_norm(attrs, &ins)
        }
        "LRN" => nn::lrn(attrs, x),
        "Concat" => nn::concat(attrs, &inputs.iter().flatten().copied().collect::<Vec<_>>()),
        "Transpose" => nn::transpose(attrs, x),
        "Sum" | "Max" | "Min" => nn::variadic(op, &inputs.iter().flatten().copied().collect::<Vec<_>>()),
        "ConstantOfShape" => nn::constant_of_shape(attrs.tensor("value").as_ref(), x),
        "Clip" | "LeakyRelu" | "HardSigmoid" | "HardSwish" | "Gelu" => more::activation(op, opset, attrs, inputs),
        "Pow" | "Equal" | "Less" | "Greater" | "Where" => {
            more::binary(op, &inputs.iter().flatten().copied().collect::<Vec<_>>())
        }
        "Cast" => more::cast(attrs, x),
        "Shape" => more::shape(attrs, x),
        "Expand" => more::expand(x, get(1)?),
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" => more::reduce(op, opset, attrs, inputs),
        "Gather" => more::gather(attrs, x, get(1)?),
        "Slice" => shape_ops::slice(opset, attrs, inputs),
        "Pad" => shape_ops::pad(opset, attrs, inputs),
        "Split" => shape_ops::split(opset, attrs, inputs, outputs),
        "LayerNormalization" => shape_ops::layer_norm(attrs, inputs, outputs),
        "ArgMax" => shape_ops::argmax(attrs, x),
        "CumSum" => shape_ops::cumsum(attrs, x, get(1)?),
        "QuantizeLinear" => quant::quantize(attrs, x, get(1)?, inputs.get(2).copied().flatten()),
        "DequantizeLinear" => quant::dequantize(attrs, x, get(1)?, inputs.get(2).copied().flatten()),
        "MatMul" => matmul(x, get(1)?),
        "Gemm" => gemm(attrs, x, get(1)?, inputs.get(2).copied().flatten()),
        "Softmax" | "LogSoftmax" => softmax(op, opset, attrs, x),
        other => Err(format!("{UNKNOWN_OPERATOR} `{other}`")),
    }
}

pub(crate) fn ints_of(v: &AnyTensor) -> Option<Vec<i64>> {
    (0..v.len()).map(|i| v.get(i).and_then(|s| s.as_i64())).collect()
}

fn matmul(a: Input<'_>, b: Input<'_>) -> Result<Impl, String> {
    if a.dtype != b.dtype || !a.dtype.is_numeric() {
        return Err(format!("MatMul of `{}` and `{}`", a.dtype, b.dtype));
    }
    let (mut sa, mut sb) = (a.shape.to_vec(), b.shape.to_vec());
    let (a1, b1) = (sa.len() == 1, sb.len() == 1);
    if a1 {
        sa.insert(0, 1);
    }
    if b1 {
        sb.push(1);
    }
    if sa.len() < 2 || sb.len() < 2 || sa[sa.len() - 1] != sb[sb.len() - 2] {
        return Err(format!("MatMul of shapes {:?} and {:?}", a.shape, b.shape));
    }
    let k = sa[sa.len() - 1];
    let batch = broadcast_shape(&sa[..sa.len() - 2], &sb[..sb.len() - 2])?;
    let (m, n) = (sa[sa.len() - 2], sb[sb.len() - 1]);
    // The output: the batch dims, then `m` and `n` unless that operand was
    // 1-D (its inserted dim is dropped again).
    let nb = batch.len();
    let mut out = batch.clone();
    if !a1 {
        out.push(m);
    }
    if !b1 {
        out.push(n);
    }
    let mi = if a1 { Expr::int(0) } else { var(nb) };
    let ni = if b1 { Expr::int(0) } else { var(nb + usize::from(!a1)) };
    let mut f = FuncBuilder::new("matmul");
    let ta = f.input("a", a.dtype, dims(a.shape));
    let tb = f.input("b", b.dtype, dims(b.shape));
    let kv = Expr::name("k");
    let mut ia = broadcast_index(&sa[..sa.len() - 2], nb);
    if !a1 {
        ia.push(mi);
    }
    ia.push(kv.clone());
    let mut ib = broadcast_index(&sb[..sb.len() - 2], nb);
    ib.push(kv);
    if !b1 {
        ib.push(ni);
    }
    let body =
        te::reduce(texpr_dsl::ReduceOp::Sum, vec![te::rvar("k", 0i64, Expr::int(k as i128))], ta.at(ia) * tb.at(ib));
    f.output(a.dtype, dims(&out));
    let y = f.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(a.dtype, &out)), idx: idx(out.len()), body });
    f.ret([y]);
    Ok(Impl::kernel(f.clone()))
}

fn gemm(attrs: &dyn Attrs, a: Input<'_>, b: Input<'_>, c: Option<Input<'_>>) -> Result<Impl, String> {
    float_only("Gemm", a.dtype)?;
    if a.shape.len() != 2 || b.shape.len() != 2 || a.dtype != b.dtype {
        return Err(format!("Gemm of {:?} and {:?}", a.shape, b.shape));
    }
    let (ta, tb) = (attrs.int("transA").unwrap_or(0) != 0, attrs.int("transB").unwrap_or(0) != 0);
    let (m, k) = if ta { (a.shape[1], a.shape[0]) } else { (a.shape[0], a.shape[1]) };
    let (k2, n) = if tb { (b.shape[1], b.shape[0]) } else { (b.shape[0], b.shape[1]) };
    if k != k2 {
        return Err(format!("Gemm of {:?} and {:?} (transA {ta}, transB {tb})", a.shape, b.shape));
    }
    let alpha = attrs.float("alpha").unwrap_or(1.0) as f64;
    let beta = attrs.float("beta").unwrap_or(1.0) as f64;
    let mut f = FuncBuilder::new("gemm");
    let xa = f.input("a", a.dtype, dims(a.shape));
    let xb = f.input("b", b.dtype, dims(b.shape));
    let kv = Expr::name("k");
    let ia = if ta { [kv.clone(), var(0)] } else { [var(0), kv.clone()] };
    let ib = if tb { [var(1), kv.clone()] } else { [kv, var(1)] };
    let prod =
        te::reduce(texpr_dsl::ReduceOp::Sum, vec![te::rvar("k", 0i64, Expr::int(k as i128))], xa.at(ia) * xb.at(ib));
    let mut body = prod * Expr::float(alpha);
    if let Some(c) = c {
        if c.dtype != a.dtype {
            return Err(format!("Gemm's C is `{}`", c.dtype));
        }
        let out = broadcast_shape(c.shape, &[m, n])?;
        if out != [m, n] {
            return Err(format!("Gemm's C of shape {:?} does not broadcast to [{m}, {n}]", c.shape));
        }
        let xc = f.input("c", c.dtype, dims(c.shape));
        body = body + xc.at(broadcast_index(c.shape, 2)) * Expr::float(beta);
    }
    f.output(a.dtype, dims(&[m, n]));
    let y = f.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(a.dtype, &[m, n])), idx: idx(2), body });
    f.ret([y]);
    Ok(Impl::kernel(f.clone()))
}

/// `Softmax`/`LogSoftmax` along `axis` (opset 13 on), or over the
/// flattened dims from `axis` on (before opset 13).
fn softmax(op: &str, opset: i64, attrs: &dyn Attrs, x: Input<'_>) -> Result<Impl, String> {
    float_only(op, x.dtype)?;
    let r = x.shape.len();
    if r == 0 {
        return Err(format!("`{op}` of a rank-0 tensor"));
    }
    let a = attrs.int("axis").unwrap_or(if opset >= 13 { -1 } else { 1 });
    let a = if a < 0 { a + r as i64 } else { a };
    if !(0..r.max(1) as i64).contains(&a) {
        return Err(format!("axis {a} for rank {r}"));
    }
    let a = a as usize;
    // The reduced dims: just `axis`, or `axis..` before opset 13.
    let red: Vec<usize> = if opset >= 13 { vec![a] } else { (a..r).collect() };
    let mut f = FuncBuilder::new(op.to_ascii_lowercase().as_str());
    let t = f.input("x", x.dtype, dims(x.shape));
    let keep: Vec<usize> = (0..r).filter(|k| !red.contains(k)).collect();
    let rvars: Vec<te::RVar> =
        red.iter().map(|k| te::rvar(format!("r{k}").as_str(), 0i64, Expr::int(x.shape[*k] as i128))).collect();
    // Index of `x` with the reduced dims taken from the reduction variables.
    let at = |reduced: bool| -> Vec<Expr> {
        (0..r).map(|k| if reduced && red.contains(&k) { Expr::name(format!("r{k}")) } else { var(k) }).collect()
    };
    let kept_shape: Vec<usize> = keep.iter().map(|k| x.shape[*k]).collect();
    let kept_idx = |pos: Vec<Expr>| -> Vec<Expr> { keep.iter().map(|k| pos[*k].clone()).collect() };
    let stat = |f: &mut FuncBuilder, name: &str, body: Expr| {
        let ix: Vec<Ident> = keep.iter().map(|k| Ident::new(format!("i{k}"))).collect();
        f.add_stage(StageDef { name: Ident::new(name), ty: Some(ty(x.dtype, &kept_shape)), idx: ix, body })
    };
    let mx = stat(&mut f, "mx", te::reduce(texpr_dsl::ReduceOp::Max, rvars.clone(), t.at(at(true))));
    let e = f.add_stage(StageDef {
        name: Ident::new("e"),
        ty: Some(ty(x.dtype, x.shape)),
        idx: idx(r),
        body: te::exp(t.at(at(false)) - mx.at(kept_idx((0..r).map(var).collect()))),
    });
    let red_e: Vec<Expr> = at(true);
    let s = stat(&mut f, "s", te::reduce(texpr_dsl::ReduceOp::Sum, rvars, e.at(red_e)));
    let here = kept_idx((0..r).map(var).collect());
    let body = if op == "Softmax" {
        e.at((0..r).map(var)) / s.at(here)
    } else {
        t.at(at(false)) - mx.at(here.clone()) - te::ln(s.at(here))
    };
    f.output(x.dtype, dims(x.shape));
    let y = f.add_stage(StageDef { name: Ident::new("y"), ty: Some(ty(x.dtype, x.shape)), idx: idx(r), body });
    f.ret([y]);
    Ok(Impl::kernel(f.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoAttrs;

    impl Attrs for NoAttrs {
        fn int(&self, _: &str) -> Option<i64> {
            None
        }
        fn float(&self, _: &str) -> Option<f32> {
            None
        }
        fn ints(&self, name: &str) -> Option<Vec<i64>> {
            (name == "kernel_shape").then(|| vec![1])
        }
        fn string(&self, _: &str) -> Option<String> {
            None
        }
        fn tensor(&self, _: &str) -> Option<AnyTensor> {
            None
        }
    }

    /// Inputs of a rank or count an operator cannot take are errors, not
    /// panics (a model file chooses them).
    #[test]
    fn odd_inputs_are_errors() {
        let scalar = Input { dtype: DType::F32, shape: &[], value: None };
        let vector = Input { dtype: DType::F32, shape: &[4], value: None };
        for (op, ins) in [
            ("Softmax", vec![Some(scalar)]),
            ("LogSoftmax", vec![Some(scalar)]),
            ("Conv", vec![Some(vector), Some(vector)]),
            ("GlobalAveragePool", vec![Some(vector)]),
            ("MaxPool", vec![Some(scalar)]),
            ("Pow", vec![Some(vector)]),
            ("Where", vec![Some(vector), Some(vector)]),
            ("Gemm", vec![Some(vector), Some(vector)]),
            ("MatMul", vec![Some(scalar), Some(vector)]),
            ("Transpose", vec![Some(vector)]),
        ] {
            let r = implement(op, 13, &NoAttrs, &ins, 1);
            if op != "Transpose" {
                assert!(r.is_err(), "{op}");
            }
        }
        // 1-D MatMul operands give the output at ONNX's rank.
        let m = Input { dtype: DType::F32, shape: &[3, 4], value: None };
        match implement("MatMul", 13, &NoAttrs, &[Some(vector), Some(m)], 1) {
            Err(e) => assert!(e.contains("MatMul"), "{e}"),
            Ok(_) => panic!("[4] x [3, 4] must not multiply"),
        }
        let m = Input { dtype: DType::F32, shape: &[4, 3], value: None };
        let Ok(Impl::Kernel(k)) = implement("MatMul", 13, &NoAttrs, &[Some(vector), Some(m)], 1) else {
            panic!("[4] x [4, 3]")
        };
        assert_eq!(k.func.build().unwrap().output_types()[0].1.len(), 1);
    }

    /// A `ConstantOfShape` promising more elements than memory holds is an
    /// error, not an abort.
    #[test]
    fn huge_constants_are_errors() {
        let dims = AnyTensor::from(texpr_dsl::Tensor::from_vec([2], vec![1i64 << 40, 1 << 30]).unwrap());
        let shape = Input { dtype: DType::I64, shape: &[2], value: Some(&dims) };
        let e = implement("ConstantOfShape", 13, &NoAttrs, &[Some(shape)], 1).unwrap_err();
        assert!(e.contains("Tensor::try_zeros"), "{e}");
    }
}
