//! Lowering a fused node to one definition: each member's definition from
//! the operator library (at the concrete types its inputs have), renamed
//! into one builder — member `j`'s stage `y` becomes `mj_y`, the node's
//! inputs `x0, x1, ...` — with the result of an element-wise member that
//! one later member reads once substituted into that reader (no buffer,
//! no loop: `relu(conv[n, c, h, w] + b[c])`). Stages with reductions (the
//! anchor's convolution or matrix product) stay stages; the target's
//! default schedule places them (on the CPU, computed per row of the
//! output, while the row is in cache).

use std::collections::HashMap;

use texpr_dsl::te::{self, ArgDef, Expr, FuncBuilder, Ident, StageDef, TensorRef, TypeDef};
use texpr_dsl::{AnyTensor, DType};
use texpr_ops::{Impl, Input, Template};

use crate::attrs::NodeAttrs;
use crate::{Graph, NodeId, ValueId};

/// An input's type, dims and value (values only for the node's inputs).
type Owned<'a> = (DType, Vec<usize>, Option<&'a AnyTensor>);

/// A composed kernel: the definition, and for each of its arguments the
/// position of the fused node's input it takes.
pub(crate) struct Composed {
    pub(crate) func: FuncBuilder,
    pub(crate) args: Vec<usize>,
    /// The anchor's schedule template, its stages renamed.
    pub(crate) template: Option<Template>,
}

/// Composes fused node `id` for its inputs `ins` (by the node's input
/// positions); an error names the member.
pub(crate) fn compose(g: &Graph, id: NodeId, ins: &[Option<Input<'_>>]) -> Result<Composed, String> {
    let n = g.node(id);
    let mut outer: HashMap<ValueId, (usize, Input<'_>)> = HashMap::new();
    for (k, v) in n.inputs.iter().enumerate() {
        if let (Some(v), Some(Some(i))) = (v, ins.get(k)) {
            outer.insert(*v, (k, *i));
        }
    }
    let mut reads: HashMap<ValueId, usize> = HashMap::new();
    for m in &n.fused {
        for v in m.inputs.iter().flatten() {
            *reads.entry(*v).or_default() += 1;
        }
    }
    let ops: Vec<String> = n.fused.iter().map(|m| m.op.to_ascii_lowercase()).collect();
    let mut f = FuncBuilder::new(format!("fused_{}", ops.join("_")));
    let mut args: Vec<usize> = vec![];
    // The tensor (argument or stage) holding each value, and the types of
    // the members' results.
    let mut name_of: HashMap<ValueId, String> = HashMap::new();
    let mut types: HashMap<ValueId, (DType, Vec<usize>)> = HashMap::new();
    // Substituted stages: index variables and body.
    let mut inline: HashMap<String, (Vec<String>, Expr)> = HashMap::new();
    let last = *n.outputs.first().ok_or("a fused node without output")?;
    let mut template = None;
    for (j, m) in n.fused.iter().enumerate() {
        let at = |e: String| {
            let who = if m.name.is_empty() { String::new() } else { format!("`{}` ", m.name) };
            format!("member {who}({}): {e}", m.op)
        };
        let out = *m.outputs.first().ok_or_else(|| at("no output".into()))?;
        // The member's inputs at their concrete types.
        let owned: Vec<Option<Owned<'_>>> = m
            .inputs
            .iter()
            .map(|v| {
                v.and_then(|v| match outer.get(&v) {
                    Some((_, i)) => Some((i.dtype, i.shape.to_vec(), i.value)),
                    None => types.get(&v).map(|(t, s)| (*t, s.clone(), None)),
                })
            })
            .collect();
        let inputs: Vec<Option<Input<'_>>> =
            owned.iter().map(|o| o.as_ref().map(|(t, s, v)| Input { dtype: *t, shape: s, value: *v })).collect();
        let b = match texpr_ops::implement(&m.op, g.opset, &NodeAttrs(&m.attrs), &inputs, 1).map_err(at)? {
            Impl::Kernel(k) => {
                if j == 0 {
                    template = k.template.map(|t| t.renamed(|s| format!("m0_{s}")));
                }
                k.func
            }
            Impl::View(shape) => {
                // The same data under the same dims (an identity): the
                // member's result is its input.
                let x = m.inputs.first().copied().flatten().ok_or_else(|| at("no input".into()))?;
                let src = inputs.first().copied().flatten().ok_or_else(|| at("no input".into()))?;
                if src.shape != shape.as_slice() {
                    return Err(at("changes the shape inside a fused kernel".into()));
                }
                let name = tensor_name(&mut f, &mut args, &mut name_of, &outer, x).map_err(at)?;
                types.insert(out, (src.dtype, shape));
                name_of.insert(out, name);
                continue;
            }
            Impl::Value(_) => return Err(at("computes a constant inside a fused kernel".into())),
        };
        let present: Vec<ValueId> = m.inputs.iter().flatten().copied().collect();
        let mut rename: HashMap<String, String> = HashMap::new();
        for (k, a) in b.args.iter().enumerate() {
            let ArgDef::Tensor { name, .. } = a else { return Err(at("takes a scalar argument".into())) };
            let v = *present.get(k).ok_or_else(|| at("more arguments than inputs".into()))?;
            let t = tensor_name(&mut f, &mut args, &mut name_of, &outer, v).map_err(at)?;
            rename.insert(name.name.clone(), t);
        }
        for s in &b.stages {
            rename.insert(s.name.name.clone(), format!("m{j}_{}", s.name.name));
        }
        let ret = b.ret.first().ok_or_else(|| at("returns nothing".into()))?.name.clone();
        let out_ty = b.outputs.first().cloned().ok_or_else(|| at("no output type".into()))?;
        for s in &b.stages {
            let body = s.body.rewrite(&mut |e| {
                let (t, idx) = e.as_load()?;
                let t = rename.get(t).map_or(t, String::as_str);
                Some(match inline.get(t) {
                    Some((vars, body)) => substitute(body, vars, idx),
                    None => te::index(t, idx.to_vec()),
                })
            });
            let name = format!("m{j}_{}", s.name.name);
            let idx: Vec<String> = s.idx.iter().map(|i| i.name.clone()).collect();
            if s.name.name == ret && out != last && reads.get(&out) == Some(&1) && !body.has_reduce() {
                inline.insert(name, (idx, body));
            } else {
                let ty = s.ty.clone().or_else(|| Some(out_ty.clone()));
                f.add_stage(StageDef { name: Ident::new(name), ty, idx: s.idx.clone(), body });
            }
        }
        let shape: Vec<usize> = out_ty
            .shape
            .iter()
            .map(|d| d.as_int().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| at("an output dim that is not a number".into()))?;
        types.insert(out, (out_ty.dtype, shape));
        let ret_name =
            rename.get(&ret).cloned().ok_or_else(|| at(format!("returns `{ret}`, which it does not define")))?;
        name_of.insert(out, ret_name);
    }
    let (dtype, shape) = types.get(&last).cloned().ok_or("the output is not computed")?;
    let result = name_of.get(&last).cloned().ok_or("the output is not computed")?;
    if f.stages.iter().all(|s| s.name.name != result) {
        // The last member is an identity (of an input, or of a substituted
        // stage): a copy.
        let r = shape.len();
        let idx: Vec<Ident> = (0..r).map(|k| Ident::new(format!("i{k}"))).collect();
        let load = te::index(result.as_str(), (0..r).map(|k| Expr::name(format!("i{k}"))).collect());
        let body = match inline.get(&result) {
            Some((vars, body)) => substitute(body, vars, load.as_load().map_or(&[], |(_, i)| i)),
            None => load,
        };
        f.add_stage(StageDef { name: Ident::new("y"), ty: Some(type_def(dtype, &shape)), idx, body });
        f.output(dtype, shape.iter().map(|d| Expr::int(*d as i128)));
        f.ret([TensorRef { name: "y".into() }]);
    } else {
        f.output(dtype, shape.iter().map(|d| Expr::int(*d as i128)));
        f.ret([TensorRef { name: result }]);
    }
    Ok(Composed { func: f, args, template })
}

/// The argument holding value `v` (added on first use) or the stage
/// computing it.
fn tensor_name(
    f: &mut FuncBuilder,
    args: &mut Vec<usize>,
    name_of: &mut HashMap<ValueId, String>,
    outer: &HashMap<ValueId, (usize, Input<'_>)>,
    v: ValueId,
) -> Result<String, String> {
    if let Some(t) = name_of.get(&v) {
        return Ok(t.clone());
    }
    let (pos, input) = outer.get(&v).ok_or("reads a value it cannot see")?;
    let t = format!("x{}", args.len());
    f.input(t.as_str(), input.dtype, input.shape.iter().map(|d| Expr::int(*d as i128)));
    args.push(*pos);
    name_of.insert(v, t.clone());
    Ok(t)
}

/// `body` with index variable `vars[k]` replaced by `idx[k]`.
fn substitute(body: &Expr, vars: &[String], idx: &[Expr]) -> Expr {
    body.rewrite(&mut |e| {
        let n = e.as_name()?;
        let p = vars.iter().position(|v| v == n)?;
        idx.get(p).cloned()
    })
}

fn type_def(dtype: DType, shape: &[usize]) -> TypeDef {
    TypeDef { dtype, shape: shape.iter().map(|d| Expr::int(*d as i128)).collect(), origin: None }
}
