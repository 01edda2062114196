//! Batch-norm folding: `BatchNormalization(Conv(x, W, B))` with constant
//! `f32` weights and statistics, the convolution's output read by nothing
//! else, becomes `Conv(x, W', B')`:
//! `s = scale / sqrt(var + epsilon)`, `W'[o] = W[o] · s[o]`,
//! `B'[o] = (B[o] - mean[o]) · s[o] + bias[o]` (`f32` arithmetic, as
//! onnxruntime folds).

use std::sync::Arc;

use texpr_dsl::{DType, Result};

use super::Ctx;
use crate::{Attr, Constant, Graph, NodeId, ValueDef, ValueId};

#[allow(clippy::needless_range_loop)] // `g` changes inside
pub(super) fn fold_batch_norm(g: &mut Graph, _: &Ctx<'_>) -> Result<bool> {
    let readers = g.readers();
    let mut removed = vec![false; g.nodes.len()];
    for b in 0..g.nodes.len() {
        let Some((c, w, bias, stats)) = pattern(g, NodeId(b as u32), &readers) else { continue };
        let eps = match g.nodes[b].attrs.get("epsilon") {
            Some(Attr::Float(e)) => *e,
            _ => 1e-5,
        };
        let [scale, shift, mean, var] = stats;
        let s: Vec<f32> = scale.iter().zip(&var).map(|(k, v)| k / (v + eps).sqrt()).collect();
        let per = w.len() / s.len().max(1);
        let w2: Vec<f32> = w.iter().enumerate().map(|(i, x)| x * s[i / per]).collect();
        let b2: Vec<f32> =
            (0..s.len()).map(|o| (bias.as_ref().map_or(0.0, |b| b[o]) - mean[o]) * s[o] + shift[o]).collect();
        let (wv, w_shape) = {
            let n = g.node(c);
            let wv = n.inputs[1].unwrap_or(ValueId(0));
            (wv, g.value(wv).constant.as_ref().map(|k| k.shape.clone()).unwrap_or_default())
        };
        let new_w = constant(g, &format!("{}_bn", g.value(wv).name), &w_shape, &w2);
        let new_b = constant(g, &format!("{}_bn_bias", g.value(wv).name), &[s.len()], &b2);
        let out = g.nodes[b].outputs[0];
        let n = &mut g.nodes[c.0 as usize];
        n.inputs = vec![n.inputs[0], Some(new_w), Some(new_b)];
        n.outputs = vec![out];
        g.values[out.0 as usize].producer = Some(c);
        removed[b] = true;
    }
    if !removed.contains(&true) {
        return Ok(false);
    }
    g.retain(|id, _| !removed[id.0 as usize]);
    Ok(true)
}

/// For a foldable batch norm `b`: its convolution, the weights, the bias
/// (if any) and scale, bias, mean and variance.
#[allow(clippy::type_complexity)]
fn pattern(
    g: &Graph,
    b: NodeId,
    readers: &[Vec<NodeId>],
) -> Option<(NodeId, Vec<f32>, Option<Vec<f32>>, [Vec<f32>; 4])> {
    let bn = g.node(b);
    if bn.op != "BatchNormalization" || !bn.domain.is_empty() || bn.outputs.len() != 1 || bn.inputs.len() != 5 {
        return None;
    }
    let y = bn.inputs[0]?;
    let c = g.value(y).producer?;
    let conv = g.node(c);
    if conv.op != "Conv"
        || !conv.domain.is_empty()
        || conv.outputs != [y]
        || g.outputs.contains(&y)
        || conv.device != bn.device
    {
        return None;
    }
    if readers[y.0 as usize] != [b] {
        return None;
    }
    let w = f32s(g, conv.inputs.get(1).copied()??)?;
    let f = g.value(conv.inputs[1]?).constant.as_ref()?.shape.first().copied()?;
    let bias = match conv.inputs.get(2).copied().flatten() {
        Some(v) => Some(f32s(g, v)?),
        None => None,
    };
    let stats: Vec<Vec<f32>> = bn.inputs[1..].iter().map(|v| f32s(g, (*v)?)).collect::<Option<_>>()?;
    if stats.iter().chain(&bias).any(|s| s.len() != f) || f == 0 || w.len() % f != 0 {
        return None;
    }
    let [s, h, m, v]: [Vec<f32>; 4] = stats.try_into().ok()?;
    Some((c, w, bias, [s, h, m, v]))
}

/// A constant's elements, for `f32` constants.
fn f32s(g: &Graph, v: ValueId) -> Option<Vec<f32>> {
    let c = g.value(v).constant.as_ref()?;
    (c.dtype == DType::F32)
        .then(|| c.bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// A new `f32` constant named `name` (or `name_1`, ... when taken).
fn constant(g: &mut Graph, name: &str, shape: &[usize], data: &[f32]) -> ValueId {
    let mut unique = name.to_string();
    let mut k = 0;
    while g.values.iter().any(|v| v.name == unique) {
        k += 1;
        unique = format!("{name}_{k}");
    }
    let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
    g.add_value(ValueDef {
        name: unique,
        dtype: Some(DType::F32),
        shape: Some(shape.iter().map(|d| crate::Dim::Known(*d)).collect()),
        producer: None,
        constant: Some(Arc::new(Constant { dtype: DType::F32, shape: shape.to_vec(), bytes })),
    })
}
