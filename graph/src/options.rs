//! How a model is compiled: its target, a fallback for what the target
//! cannot run, and whether the graph passes run.

use texpr_dsl::Target;

/// How [`Executor::new`](crate::Executor::new) (the facade's
/// `Model::compile_with`) compiles a model.
///
/// ```
/// use texpr_graph::Options;
/// use texpr_dsl::Target;
///
/// let o = Options::new(Target::OpenCl).fallback(Target::Cpu).on_cpu(["NonMaxSuppression"]);
/// assert_eq!(o.target(), Target::OpenCl);
/// assert!(o.optimizes());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    target: Target,
    fallback: Option<Target>,
    on_cpu: Vec<String>,
    optimize: bool,
}

impl Options {
    /// Compiles for `target`, every graph pass on, no fallback.
    pub fn new(target: Target) -> Options {
        Options { target, fallback: None, on_cpu: vec![], optimize: true }
    }

    /// Nodes the target cannot run (no implementation there, or named in
    /// [`on_cpu`](Options::on_cpu)) run on `target` instead, with copies
    /// between the devices inserted by the compiler.
    pub fn fallback(mut self, target: Target) -> Options {
        self.fallback = Some(target);
        self
    }

    /// Operator types (`"NonMaxSuppression"`) that run on the fallback
    /// target (the CPU when no fallback is named) whatever the primary
    /// target could do.
    pub fn on_cpu<S: Into<String>>(mut self, ops: impl IntoIterator<Item = S>) -> Options {
        self.on_cpu.extend(ops.into_iter().map(Into::into));
        self
    }

    /// `false` turns every graph pass off (constant folding, dead-node and
    /// common-subexpression elimination, batch-norm folding, fusion): each
    /// node runs as its own kernel. Results agree either way.
    pub fn optimize(mut self, on: bool) -> Options {
        self.optimize = on;
        self
    }

    /// The primary target.
    pub fn target(&self) -> Target {
        self.target
    }

    /// The fallback target, if any.
    pub fn fallback_target(&self) -> Option<Target> {
        self.fallback
    }

    /// The operator types forced to the fallback.
    pub fn cpu_ops(&self) -> &[String] {
        &self.on_cpu
    }

    /// Whether the graph passes run.
    pub fn optimizes(&self) -> bool {
        self.optimize
    }
}
