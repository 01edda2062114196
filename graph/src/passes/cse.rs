//! Common-subexpression elimination: equal constants are one constant, and
//! a node with the same operator, attributes and inputs as an earlier one
//! reads the earlier one's outputs instead (it is then dead).

use std::collections::HashMap;

use texpr_dsl::Result;

use super::Ctx;
use crate::{Graph, ValueId};

pub(super) fn eliminate_common(g: &mut Graph, _: &Ctx<'_>) -> Result<bool> {
    let mut same: Vec<ValueId> = (0..g.values.len() as u32).map(ValueId).collect();
    // Constants by content.
    let mut by_bytes: HashMap<(texpr_dsl::DType, &[usize], &[u8]), ValueId> = HashMap::new();
    for (i, v) in g.values.iter().enumerate() {
        if let Some(c) = &v.constant {
            let first = *by_bytes.entry((c.dtype, &c.shape, &c.bytes)).or_insert(ValueId(i as u32));
            same[i] = first;
        }
    }
    let outputs: Vec<ValueId> = g.outputs.clone();
    let mut seen: HashMap<(String, Vec<Option<ValueId>>), Vec<usize>> = HashMap::new();
    let mut changed = same.iter().enumerate().any(|(i, s)| s.0 as usize != i);
    for k in 0..g.nodes.len() {
        let n = &mut g.nodes[k];
        for i in n.inputs.iter_mut().flatten() {
            *i = same[i.0 as usize];
        }
        for m in &mut n.fused {
            for i in m.inputs.iter_mut().flatten() {
                *i = same[i.0 as usize];
            }
        }
        if n.is_fused() || n.outputs.iter().any(|o| outputs.contains(o)) {
            continue;
        }
        let n = &g.nodes[k];
        let list = seen.entry((n.op.clone(), n.inputs.clone())).or_default();
        let earlier = list.iter().copied().find(|e| {
            let m = &g.nodes[*e];
            m.domain == n.domain && m.device == n.device && m.attrs == n.attrs && m.outputs.len() == n.outputs.len()
        });
        match earlier {
            Some(e) => {
                for (o, p) in n.outputs.iter().zip(&g.nodes[e].outputs) {
                    same[o.0 as usize] = *p;
                }
                changed = true;
            }
            None => list.push(k),
        }
    }
    Ok(changed)
}
