//! Data layout: constant operands stored in the layout their kernels read
//! best. A `Gemm` with constant `B` and `transB = 1` (a fully connected
//! layer as exported: `B` is `[N, K]`) gets `B` transposed once, at compile
//! time, and `transB = 0`: the product then streams rows of `B` in vectors
//! instead of striding across them.

use std::sync::Arc;

use texpr_dsl::Result;

use super::Ctx;
use crate::{Attr, Constant, Dim, Graph, ValueDef};

pub(super) fn transpose_weights(g: &mut Graph, _: &Ctx<'_>) -> Result<bool> {
    let mut changed = false;
    for k in 0..g.nodes.len() {
        let n = &g.nodes[k];
        if n.op != "Gemm" || !n.domain.is_empty() || n.attrs.get("transB") != Some(&Attr::Int(1)) {
            continue;
        }
        let Some(Some(b)) = n.inputs.get(1).copied() else { continue };
        let Some(c) = g.value(b).constant.clone() else { continue };
        let [rows, cols] = c.shape[..] else { continue };
        let size = c.dtype.bytes();
        if c.bytes.len() != rows * cols * size {
            continue;
        }
        let mut bytes = vec![0u8; c.bytes.len()];
        for i in 0..rows {
            for j in 0..cols {
                let (from, to) = ((i * cols + j) * size, (j * rows + i) * size);
                bytes[to..to + size].copy_from_slice(&c.bytes[from..from + size]);
            }
        }
        let mut name = format!("{}_t", g.value(b).name);
        while g.values.iter().any(|v| v.name == name) {
            name.push('_');
        }
        let t = g.add_value(ValueDef {
            name,
            dtype: Some(c.dtype),
            shape: Some(vec![Dim::Known(cols), Dim::Known(rows)]),
            producer: None,
            constant: Some(Arc::new(Constant { dtype: c.dtype, shape: vec![cols, rows], bytes })),
        });
        let n = &mut g.nodes[k];
        n.inputs[1] = Some(t);
        n.attrs.insert("transB".into(), Attr::Int(0));
        changed = true;
    }
    Ok(changed)
}
