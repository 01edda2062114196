//! Dead-node elimination: a node none of whose outputs is read (by a live
//! node) or is a graph output is removed, and with it every value nothing
//! refers to any more (unused initializers among them).

use texpr_dsl::Result;

use super::Ctx;
use crate::Graph;

pub(super) fn eliminate_dead(g: &mut Graph, _: &Ctx<'_>) -> Result<bool> {
    let mut live_value = vec![false; g.values.len()];
    for o in &g.outputs {
        live_value[o.0 as usize] = true;
    }
    let mut live = vec![false; g.nodes.len()];
    for (k, n) in g.nodes.iter().enumerate().rev() {
        if n.outputs.iter().any(|o| live_value[o.0 as usize]) {
            live[k] = true;
            for v in n.inputs.iter().chain(n.fused.iter().flat_map(|m| &m.inputs)).flatten() {
                live_value[v.0 as usize] = true;
            }
        }
    }
    let values = g.values.len();
    let dead = live.iter().any(|l| !l);
    g.retain(|id, _| live[id.0 as usize]);
    Ok(dead || g.values.len() != values)
}
