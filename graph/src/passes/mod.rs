//! The graph passes, in the order they run ([`PASSES`]). Each takes the
//! graph with its types inferred and leaves it valid; after every pass
//! that changed it the graph is validated and its types inferred again
//! (a folded shape makes dims known), and with `TEXPR_DUMP=graph` it is
//! printed to stderr.
//!
//! [`Options::optimize(false)`](crate::Options::optimize) runs only the
//! device placement passes: every node is its own kernel, which is what
//! the other passes are tested against.

mod batch_norm;
mod cse;
mod dead;
mod fold;
mod fuse;
mod layout;
mod place;

use std::sync::Arc;

use texpr_dsl::{AnyTensor, Result};

use crate::{Graph, NodeId, Options};

/// Evaluates one node on values (constant folding runs nodes this way).
pub type Eval<'a> = &'a dyn Fn(&Graph, NodeId, &[Option<Arc<AnyTensor>>]) -> Result<Vec<AnyTensor>>;

/// What a pass may use besides the graph.
pub struct Ctx<'a> {
    /// The compile options.
    pub options: &'a Options,
    /// Runs a node.
    pub eval: Eval<'a>,
}

/// A graph pass: changes the graph in place and says whether it did.
pub struct Pass {
    /// Its name, as `TEXPR_DUMP=graph` prints it.
    pub name: &'static str,
    /// The rewrite.
    pub run: fn(&mut Graph, &Ctx<'_>) -> Result<bool>,
    /// Runs with [`Options::optimize(false)`](crate::Options::optimize)
    /// too: device placement is not an optimization.
    pub always: bool,
}

/// The passes, in order.
pub const PASSES: &[Pass] = &[
    // Each node's device: the target, or the fallback for the operators
    // `Options::on_cpu` names.
    Pass { name: "place_devices", run: place::place_devices, always: true },
    // Nodes whose inputs are all constant (or whose output is a known
    // shape) become constants: shape arithmetic disappears.
    Pass { name: "fold_constants", run: fold::fold_constants, always: false },
    // Identical nodes on identical inputs computed once.
    Pass { name: "eliminate_common", run: cse::eliminate_common, always: false },
    // A convolution's batch norm folded into its weights and bias.
    Pass { name: "fold_batch_norm", run: batch_norm::fold_batch_norm, always: false },
    // Constant operands in the layout their kernels read best.
    Pass { name: "transpose_weights", run: layout::transpose_weights, always: false },
    // Nothing reads it: gone.
    Pass { name: "eliminate_dead", run: dead::eliminate_dead, always: false },
    // Element-wise chains, and the element-wise tail of a convolution or
    // matrix product, one kernel each (on one device).
    Pass { name: "fuse", run: fuse::fuse, always: false },
    // A copy on every edge between devices.
    Pass { name: "insert_copies", run: place::insert_copies, always: true },
];

/// Runs the passes on `graph` (validated and typed): every one, or with
/// the graph passes off only those that always run.
pub fn optimize(graph: &mut Graph, ctx: &Ctx<'_>) -> Result<()> {
    let dump = texpr_dsl::dump_enabled("graph");
    if dump {
        eprintln!("== graph: imported ==\n{graph}");
    }
    for pass in PASSES.iter().filter(|p| p.always || ctx.options.optimizes()) {
        if (pass.run)(graph, ctx)? {
            // Validates, and refines types where a pass made them known
            // (a shape folded to a constant).
            crate::infer(graph)?;
            if dump {
                eprintln!("== graph: after {} ==\n{graph}", pass.name);
            }
        }
    }
    Ok(())
}

/// The graph printed after import and after every pass that changed it
/// (what `texpr inspect --passes` shows).
pub fn trace(graph: &Graph, ctx: &Ctx<'_>) -> Result<Vec<(&'static str, Graph)>> {
    let mut g = graph.clone();
    let mut out = vec![("imported", g.clone())];
    for pass in PASSES.iter().filter(|p| p.always || ctx.options.optimizes()) {
        if (pass.run)(&mut g, ctx)? {
            crate::infer(&mut g)?;
            out.push((pass.name, g.clone()));
        }
    }
    Ok(out)
}
