//! Constant folding: a node whose inputs are all constants runs once, at
//! compile time, and its outputs become constants; `Shape` of a value whose
//! dims are known is a constant too. Shape arithmetic (`Shape → Gather →
//! Unsqueeze → Concat → Reshape`) disappears this way, and weights stored
//! transposed or quantized are converted once.

use std::collections::HashMap;
use std::sync::Arc;

use texpr_dsl::{AnyTensor, Result};
use texpr_ops::{Impl, Input};

use super::Ctx;
use crate::attrs::NodeAttrs;
use crate::{Constant, Dim, Graph, NodeId, ValueId};

/// Outputs larger than this (elements) are left to run time: folding would
/// trade a kernel for a copy of a large constant in the model.
const MAX_FOLDED: usize = 1 << 22;

#[allow(clippy::needless_range_loop)] // `g` changes inside
pub(super) fn fold_constants(g: &mut Graph, ctx: &Ctx<'_>) -> Result<bool> {
    let mut folded = vec![false; g.nodes.len()];
    let mut tensors: HashMap<ValueId, Arc<AnyTensor>> = HashMap::new();
    for k in 0..g.nodes.len() {
        let id = NodeId(k as u32);
        let n = &g.nodes[k];
        if n.is_fused() || n.outputs.is_empty() {
            continue;
        }
        let small = n.outputs.iter().all(|o| {
            known(g, *o)
                .is_some_and(|s| s.iter().try_fold(1usize, |a, d| a.checked_mul(*d)).is_some_and(|e| e <= MAX_FOLDED))
        });
        let outs = if let Some(shape) = shape_of_known(g, id) {
            vec![shape]
        } else {
            let mut ins = vec![];
            for i in &n.inputs {
                ins.push(match i {
                    None => None,
                    Some(v) => match tensor(g, *v, &mut tensors) {
                        Some(t) => Some(t),
                        None => break,
                    },
                });
            }
            if ins.len() != n.inputs.len() || (n.inputs.is_empty() && n.op != "Constant") || !small {
                continue;
            }
            // A node that fails here fails at run time too, with the same
            // message: leave it there.
            match (ctx.eval)(g, id, &ins) {
                Ok(outs) => outs,
                Err(_) => continue,
            }
        };
        if outs.len() != n.outputs.len() {
            continue;
        }
        for (o, t) in n.outputs.clone().into_iter().zip(outs) {
            let v = &mut g.values[o.0 as usize];
            v.dtype = Some(t.dtype());
            v.shape = Some(t.shape().iter().map(|d| Dim::Known(*d)).collect());
            v.constant =
                Some(Arc::new(Constant { dtype: t.dtype(), shape: t.shape().to_vec(), bytes: t.to_le_bytes() }));
            v.producer = None;
            tensors.insert(o, Arc::new(t));
        }
        folded[k] = true;
    }
    if !folded.contains(&true) {
        return Ok(false);
    }
    g.retain(|id, _| !folded[id.0 as usize]);
    Ok(true)
}

/// The value's dims, when all are known.
fn known(g: &Graph, v: ValueId) -> Option<Vec<usize>> {
    g.value(v).shape.as_ref()?.iter().map(|d| if let Dim::Known(n) = d { Some(*n) } else { None }).collect()
}

/// A constant value as a tensor (decoded once).
fn tensor(g: &Graph, v: ValueId, memo: &mut HashMap<ValueId, Arc<AnyTensor>>) -> Option<Arc<AnyTensor>> {
    if let Some(t) = memo.get(&v) {
        return Some(t.clone());
    }
    let c = g.value(v).constant.as_ref()?;
    let t = Arc::new(AnyTensor::from_le_bytes(c.dtype, &c.shape, &c.bytes).ok()?);
    memo.insert(v, t.clone());
    Some(t)
}

/// `Shape` of a value whose dims are known, by the operator library's rule.
fn shape_of_known(g: &Graph, id: NodeId) -> Option<AnyTensor> {
    let n = g.node(id);
    if n.op != "Shape" || !n.domain.is_empty() {
        return None;
    }
    let x = (*n.inputs.first()?)?;
    let shape = known(g, x)?;
    let input = Input { dtype: g.value(x).dtype?, shape: &shape, value: None };
    match texpr_ops::implement("Shape", g.opset, &NodeAttrs(&n.attrs), &[Some(input)], 1) {
        Ok(Impl::Value(v)) => Some(v),
        _ => None,
    }
}
