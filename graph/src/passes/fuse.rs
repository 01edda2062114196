//! Operator fusion: a kernel node (the *anchor*: a convolution, matrix
//! product, pooling, normalization, or an element-wise node) and the
//! element-wise nodes after it that read its result at the same index
//! become one fused node ([`FUSED`]), lowered to one definition
//! (`compose.rs`): a convolution with its bias, activation and residual
//! add is one kernel, a chain of element-wise operators is one kernel.
//!
//! A node joins a group when it is element-wise, every input it reads from
//! the group has its output's dims (no broadcasting a group value up: that
//! would recompute it), and it keeps the group valid: every value of the
//! group but the last is read only inside the group and is not a graph
//! output. The fused node takes the place of the group's last member.

use texpr_dsl::Result;

use super::Ctx;
use crate::ir::FUSED;
use crate::{Dim, Graph, Node, NodeId, ValueId};

/// Element-wise operators: one output, each element from the inputs'
/// elements at the same (broadcast) index.
const ELEMENTWISE: &[&str] = &[
    "Relu",
    "Sigmoid",
    "Tanh",
    "Exp",
    "Log",
    "Sqrt",
    "Erf",
    "Neg",
    "Abs",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Clip",
    "LeakyRelu",
    "HardSigmoid",
    "HardSwish",
    "Gelu",
    "Equal",
    "Less",
    "Greater",
    "Where",
    "Cast",
    "BatchNormalization",
    "Sum",
    "Max",
    "Min",
    "QuantizeLinear",
    "DequantizeLinear",
];

/// Kernels that may start a group besides the element-wise ones.
const ANCHORS: &[&str] = &[
    "Conv",
    "MatMul",
    "Gemm",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "LRN",
    "Softmax",
    "LogSoftmax",
    "ReduceMean",
    "ReduceSum",
    "ReduceMax",
    "ReduceMin",
    "Concat",
    "Transpose",
    "Pad",
    "Slice",
    "Gather",
    "Expand",
];

/// The most members one group takes (the composed expression grows with
/// each).
const MAX_MEMBERS: usize = 16;

pub(super) fn fuse(g: &mut Graph, _: &Ctx<'_>) -> Result<bool> {
    let readers = g.readers();
    let mut taken = vec![false; g.nodes.len()];
    let mut groups: Vec<Vec<usize>> = vec![];
    for a in 0..g.nodes.len() {
        let n = &g.nodes[a];
        let anchor = n.domain.is_empty()
            && n.outputs.len() == 1
            && !n.is_fused()
            && (ELEMENTWISE.contains(&n.op.as_str()) || ANCHORS.contains(&n.op.as_str()));
        if taken[a] || !anchor {
            continue;
        }
        let mut group = vec![a];
        while group.len() < MAX_MEMBERS {
            let next = group
                .iter()
                .flat_map(|m| readers[g.nodes[*m].outputs[0].0 as usize].iter())
                .map(|r| r.0 as usize)
                .filter(|r| !taken[*r] && !group.contains(r) && joins(g, &group, *r))
                .min();
            match next {
                Some(r) => group.push(r),
                None => break,
            }
        }
        // The longest valid prefix.
        while group.len() > 1 && !valid(g, &readers, &group) {
            group.pop();
        }
        if group.len() > 1 {
            for m in &group {
                taken[*m] = true;
            }
            groups.push(group);
        }
    }
    if groups.is_empty() {
        return Ok(false);
    }
    let mut gone = vec![false; g.nodes.len()];
    for group in groups {
        let members: Vec<Node> = group.iter().map(|m| g.nodes[*m].clone()).collect();
        let inner: Vec<ValueId> = members.iter().map(|m| m.outputs[0]).collect();
        let mut inputs: Vec<Option<ValueId>> = vec![];
        for v in members.iter().flat_map(|m| m.inputs.iter().flatten()) {
            if !inner.contains(v) && !inputs.contains(&Some(*v)) {
                inputs.push(Some(*v));
            }
        }
        let last = *group.last().unwrap_or(&0);
        let name = members.iter().map(|m| m.name.as_str()).find(|n| !n.is_empty()).unwrap_or("").to_string();
        let device = members[0].device;
        g.nodes[last] = Node {
            name,
            op: FUSED.into(),
            domain: "texpr".into(),
            inputs,
            outputs: vec![inner[inner.len() - 1]],
            attrs: Default::default(),
            fused: members,
            device,
        };
        for m in &group[..group.len() - 1] {
            gone[*m] = true;
        }
    }
    g.retain(|id: NodeId, _| !gone[id.0 as usize]);
    Ok(true)
}

/// Whether node `r` may join `group`: element-wise, and every group value
/// it reads has its output's dims.
fn joins(g: &Graph, group: &[usize], r: usize) -> bool {
    let n = &g.nodes[r];
    if !n.domain.is_empty() || n.outputs.len() != 1 || !ELEMENTWISE.contains(&n.op.as_str()) {
        return false;
    }
    if n.device != g.nodes[group[0]].device {
        return false;
    }
    let out = g.value(n.outputs[0]).shape.as_ref();
    let ok = |v: &ValueId| {
        let inside = group.iter().any(|m| g.nodes[*m].outputs[0] == *v);
        !inside || same_dims(g.value(*v).shape.as_ref(), out)
    };
    n.inputs.iter().flatten().all(ok)
}

fn same_dims(a: Option<&Vec<Dim>>, b: Option<&Vec<Dim>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b && a.iter().all(|d| *d != Dim::Unknown),
        _ => false,
    }
}

/// Every value of the group but the last is read only by members and is
/// not a graph output.
fn valid(g: &Graph, readers: &[Vec<NodeId>], group: &[usize]) -> bool {
    group[..group.len() - 1].iter().all(|m| {
        let v = g.nodes[*m].outputs[0];
        !g.outputs.contains(&v) && readers[v.0 as usize].iter().all(|r| group.contains(&(r.0 as usize)))
    })
}
