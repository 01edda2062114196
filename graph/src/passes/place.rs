//! Device placement, in two passes (the design of the compilers texpr
//! follows): [`place_devices`] marks each node's device, [`insert_copies`]
//! puts a copy ([`COPY`]) on every edge between devices.
//!
//! A node runs on the compile target unless its operator is named in
//! [`Options::on_cpu`](crate::Options::on_cpu): those run on the fallback
//! target (the CPU when none is named). A node whose kernel the target
//! fails to compile falls back at run time (the executor), where a
//! fallback is named.
//!
//! Copies are made once per value and device (two CPU readers of a GPU
//! value share one), and a reader on the value's own device reads the
//! value itself: no round trip. texpr's GPU runtime keeps values on the
//! host between kernels (each kernel moves its own data), so a copy marks
//! a device change and moves nothing yet; it is where a device-resident
//! runtime will transfer.

use std::collections::HashMap;

use texpr_dsl::{Result, Target};

use super::Ctx;
use crate::ir::COPY;
use crate::{Attr, Graph, Node, NodeId, ValueDef, ValueId};

pub(super) fn place_devices(g: &mut Graph, ctx: &Ctx<'_>) -> Result<bool> {
    let o = ctx.options;
    if o.cpu_ops().is_empty() {
        return Ok(false);
    }
    let fallback = o.fallback_target().unwrap_or(Target::Cpu);
    let mut changed = false;
    for n in &mut g.nodes {
        if fallback != o.target() && o.cpu_ops().contains(&n.op) && n.device != Some(fallback) {
            n.device = Some(fallback);
            changed = true;
        }
    }
    Ok(changed)
}

pub(super) fn insert_copies(g: &mut Graph, ctx: &Ctx<'_>) -> Result<bool> {
    let target = ctx.options.target();
    let device = |n: &Node| n.device.unwrap_or(target);
    if g.nodes.iter().all(|n| device(n) == target) {
        return Ok(false);
    }
    // Where each value lives: graph inputs and constants on the host
    // (readable by every device), node outputs on their node's device.
    let mut home: Vec<Option<Target>> = vec![None; g.values.len()];
    for n in &g.nodes {
        for o in &n.outputs {
            home[o.0 as usize] = Some(device(n));
        }
    }
    let mut copies: HashMap<(ValueId, Target), ValueId> = HashMap::new();
    let mut nodes: Vec<Node> = vec![];
    for mut n in std::mem::take(&mut g.nodes) {
        let here = device(&n);
        for i in n.inputs.iter_mut().flatten() {
            let Some(from) = home[i.0 as usize] else { continue };
            if from == here {
                continue;
            }
            let copy = match copies.get(&(*i, here)) {
                Some(c) => *c,
                None => {
                    let v = g.value(*i).clone();
                    let mut name = format!("{}@{here}", v.name);
                    while g.values.iter().any(|x| x.name == name) {
                        name.push('_');
                    }
                    let c = g.add_value(ValueDef { name, producer: None, constant: None, ..v });
                    home.push(Some(here));
                    nodes.push(Node {
                        name: String::new(),
                        op: COPY.into(),
                        domain: "texpr".into(),
                        inputs: vec![Some(*i)],
                        outputs: vec![c],
                        attrs: [("from".to_string(), Attr::String(from.to_string()))].into_iter().collect(),
                        fused: vec![],
                        device: Some(here),
                    });
                    copies.insert((*i, here), c);
                    c
                }
            };
            *i = copy;
        }
        for m in &mut n.fused {
            for i in m.inputs.iter_mut().flatten() {
                if let Some(c) = copies.get(&(*i, here)) {
                    *i = *c;
                }
            }
        }
        nodes.push(n);
    }
    g.nodes = nodes;
    // Graph outputs are read on the host: nothing to copy.
    for (k, n) in g.nodes.iter().enumerate() {
        for o in &n.outputs {
            g.values[o.0 as usize].producer = Some(NodeId(k as u32));
        }
        for m in &n.fused {
            for o in &m.outputs {
                g.values[o.0 as usize].producer = Some(NodeId(k as u32));
            }
        }
    }
    Ok(true)
}
