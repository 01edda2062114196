//! The executor: runs a graph node by node, each node a kernel from the
//! operator library — a fused node one kernel composed from its members —
//! (compiled once per node and input shapes, then cached), a view (a new
//! shape over the same data), or a value.
//!
//! The executor does not know the backends: it is given the function that
//! compiles a definition for its target (the facade passes `Kernel`'s).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use texpr_dsl::{AnyTensor, Compiled, DType, Data, DataMut, Program, Result, Target, TargetClass};
use texpr_ops::{Impl, Input};

use crate::attrs::NodeAttrs;
use crate::passes::{self, Ctx};
use crate::{Dim, Graph, NodeId, Options};

/// Compiles a definition with its schedules for a target.
pub type CompileFn = Arc<dyn Fn(Program, Target) -> Result<Arc<Compiled>> + Send + Sync>;

/// How one node runs for given input shapes.
enum Step {
    /// A compiled kernel, and the positions of the node's inputs it takes
    /// (in order).
    Kernel(Arc<Compiled>, Vec<usize>),
    /// The first input's data, reshaped.
    View(Vec<usize>),
    /// A value computed at implementation time.
    Value(Arc<AnyTensor>),
}

/// What the kernel cache is keyed by: the node, and its inputs' types,
/// dims and (for small integer inputs, which shape rules may read) values.
type Key = (u32, Vec<Option<(DType, Vec<usize>, Option<Vec<i64>>)>>);

/// Each node's time in a profiled run.
pub type Times = Vec<(NodeId, Duration)>;

/// Values by [`ValueId`](crate::ValueId) index during a run.
type Env = Vec<Option<Arc<AnyTensor>>>;

/// A graph ready to run on a target.
pub struct Executor {
    graph: Graph,
    options: Options,
    compile: CompileFn,
    /// The constants, decoded once.
    consts: Env,
    steps: Mutex<HashMap<Key, Arc<Step>>>,
}

impl Executor {
    /// Checks the graph, infers its types (an operator that is not known,
    /// or inputs that do not fit it, is an error naming the node) and runs
    /// the graph passes unless `options` turn them off.
    pub fn new(mut graph: Graph, options: Options, compile: CompileFn) -> Result<Executor> {
        graph.validate()?;
        crate::infer(&mut graph)?;
        if options.optimizes() {
            let eval = |g: &Graph, id: NodeId, ins: &[Option<Arc<AnyTensor>>]| {
                evaluate(g, id, ins, fold_target(options.target()), &compile)
            };
            passes::optimize(&mut graph, &Ctx { options: &options, eval: &eval })?;
        }
        let consts = decode_constants(&graph)?;
        Ok(Executor { graph, options, compile, consts, steps: Mutex::new(HashMap::new()) })
    }

    /// The graph (types inferred, passes run).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The options it was compiled with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Runs the graph on its inputs (in order; constants excluded) and
    /// returns its outputs. Inputs of the wrong count, type or known dims
    /// are an error naming the input.
    pub fn run(&self, inputs: &[AnyTensor]) -> Result<Vec<AnyTensor>> {
        self.run_timed(inputs, None)
    }

    /// [`Executor::run`], and the time each node took (kernels compiled on
    /// this run's first use of a shape count to the node's time; call once
    /// before to measure only running).
    pub fn run_profiled(&self, inputs: &[AnyTensor]) -> Result<(Vec<AnyTensor>, Times)> {
        let mut times = vec![];
        let outs = self.run_timed(inputs, Some(&mut times))?;
        Ok((outs, times))
    }

    fn run_timed(
        &self,
        inputs: &[AnyTensor],
        mut times: Option<&mut Vec<(NodeId, Duration)>>,
    ) -> Result<Vec<AnyTensor>> {
        let g = &self.graph;
        if inputs.len() != g.inputs.len() {
            return Err(g.err(format!("{} input(s) given, the model takes {}", inputs.len(), g.inputs.len())));
        }
        let mut env: Env = self.consts.clone();
        for (v, x) in g.inputs.iter().zip(inputs) {
            check_input(g, *v, x)?;
            env[v.0 as usize] = Some(Arc::new(x.clone()));
        }
        for k in 0..g.nodes.len() {
            let id = NodeId(k as u32);
            let n = g.node(id);
            let ins: Env = n.inputs.iter().map(|i| i.and_then(|i| env[i.0 as usize].clone())).collect();
            if n.inputs.iter().zip(&ins).any(|(i, x)| i.is_some() && x.is_none()) {
                return Err(g.node_err(id, "an input has no value (an output texpr does not compute)"));
            }
            let start = Instant::now();
            let step = self.step(id, &ins)?;
            for (o, y) in n.outputs.iter().zip(execute(g, id, &step, &ins)?) {
                env[o.0 as usize] = y;
            }
            if let Some(t) = times.as_deref_mut() {
                t.push((id, start.elapsed()));
            }
        }
        g.outputs
            .iter()
            .map(|o| {
                env[o.0 as usize]
                    .as_ref()
                    .map(|v| (**v).clone())
                    .ok_or_else(|| g.err(format!("output `{}` was not computed", g.value(*o).name)))
            })
            .collect()
    }

    fn step(&self, id: NodeId, ins: &[Option<Arc<AnyTensor>>]) -> Result<Arc<Step>> {
        let g = &self.graph;
        let key: Key = (
            id.0,
            ins.iter()
                .map(|x| {
                    x.as_ref().map(|x| {
                        let small = (x.dtype() == DType::I64 && x.len() <= 16)
                            .then(|| (0..x.len()).filter_map(|i| x.get(i).and_then(|s| s.as_i64())).collect());
                        (x.dtype(), x.shape().to_vec(), small)
                    })
                })
                .collect(),
        );
        let cache = self.steps.lock().map_err(|_| g.err("a run panicked earlier"))?.get(&key).cloned();
        if let Some(s) = cache {
            return Ok(s);
        }
        let step = Arc::new(build_step(g, id, ins, self.options.target(), &self.compile)?);
        if let Ok(mut c) = self.steps.lock() {
            c.insert(key, step.clone());
        }
        Ok(step)
    }
}

/// The graph after import (validated, types inferred) and after each
/// graph pass that changed it, with the pass's name: what
/// `TEXPR_DUMP=graph` prints and `texpr inspect --passes` shows.
pub fn trace_passes(mut graph: Graph, options: &Options, compile: &CompileFn) -> Result<Vec<(&'static str, Graph)>> {
    graph.validate()?;
    crate::infer(&mut graph)?;
    let eval = |g: &Graph, id: NodeId, ins: &[Option<Arc<AnyTensor>>]| {
        evaluate(g, id, ins, fold_target(options.target()), compile)
    };
    passes::trace(&graph, &Ctx { options, eval: &eval })
}

/// Where constant folding runs nodes: the CPU targets run them themselves,
/// the GPU targets fold on the CPU.
fn fold_target(t: Target) -> Target {
    if t.class() == TargetClass::Cpu { t } else { Target::Cpu }
}

/// The constants as tensors.
fn decode_constants(g: &Graph) -> Result<Env> {
    g.values
        .iter()
        .map(|v| match &v.constant {
            Some(c) => AnyTensor::from_le_bytes(c.dtype, &c.shape, &c.bytes).map(|t| Some(Arc::new(t))),
            None => Ok(None),
        })
        .collect()
}

/// An input's element type and known dims match the graph's.
fn check_input(g: &Graph, v: crate::ValueId, x: &AnyTensor) -> Result<()> {
    let d = g.value(v);
    let at = |m: String| {
        texpr_dsl::Error::Model(texpr_dsl::ModelError {
            model: g.name.clone(),
            at: Some(format!("input `{}`", d.name)),
            message: m,
        })
    };
    if d.dtype.is_some_and(|t| t != x.dtype()) {
        return Err(at(format!("expects `{}` elements, got `{}`", d.dtype.unwrap_or(DType::F32), x.dtype())));
    }
    if let Some(s) = &d.shape {
        let fits =
            s.len() == x.shape().len() && s.iter().zip(x.shape()).all(|(d, n)| !matches!(d, Dim::Known(k) if k != n));
        if !fits {
            return Err(at(format!("expects shape {}, got {:?}", crate::shape::show(s), x.shape())));
        }
    }
    Ok(())
}

/// How node `id` runs on inputs of these types: its implementation from
/// the operator library (a fused node's composed from its members'),
/// kernels compiled for `target`.
fn build_step(
    g: &Graph,
    id: NodeId,
    ins: &[Option<Arc<AnyTensor>>],
    target: Target,
    compile: &CompileFn,
) -> Result<Step> {
    let n = g.node(id);
    let inputs: Vec<Option<Input<'_>>> =
        ins.iter().map(|x| x.as_ref().map(|x| Input { dtype: x.dtype(), shape: x.shape(), value: Some(x) })).collect();
    let (builder, args, template) = if n.is_fused() {
        let c = crate::compose::compose(g, id, &inputs).map_err(|m| g.node_err(id, m))?;
        (c.func, c.args, c.template)
    } else {
        match texpr_ops::implement(&n.op, g.opset, &NodeAttrs(&n.attrs), &inputs, n.outputs.len())
            .map_err(|m| g.node_err(id, m))?
        {
            Impl::View(s) => return Ok(Step::View(s)),
            Impl::Value(v) => return Ok(Step::Value(Arc::new(v))),
            Impl::Kernel(k) => {
                // The kernel takes the first present inputs; trailing ones
                // (shapes, axes) were read when it was built.
                let present: Vec<usize> = (0..ins.len()).filter(|k| ins[*k].is_some()).collect();
                (k.func, present, k.template)
            }
        }
    };
    let out = builder.ret.first().map(|r| r.name.clone()).unwrap_or_default();
    let func = builder.build().map_err(|e| g.node_err(id, e.to_string()))?;
    let mut args = args;
    args.truncate(func.inputs().count());
    // The operator's schedule template where it applies, else the
    // target's default.
    let schedule = template.and_then(|t| texpr_ops::schedule(&t, &func, &out, target.class()));
    let program = match schedule {
        Some(s) => Program::new(func).with_schedule(s),
        None => Program::new(func),
    };
    let compiled = compile(program, target).map_err(|e| g.node_err(id, e.to_string()))?;
    Ok(Step::Kernel(compiled, args))
}

/// Runs one step: the node's outputs.
fn execute(g: &Graph, id: NodeId, step: &Step, ins: &[Option<Arc<AnyTensor>>]) -> Result<Env> {
    let n = g.node(id);
    Ok(match step {
        Step::View(shape) => {
            let x = ins.first().cloned().flatten().ok_or_else(|| g.node_err(id, "no input"))?;
            let y = (*x).clone().reshaped(shape).map_err(|e| g.node_err(id, e.to_string()))?;
            let mut outs = vec![Some(Arc::new(y))];
            // Dropout's mask at inference: every element kept.
            if n.op == "Dropout" && n.outputs.len() > 1 {
                let ones = texpr_dsl::Tensor::from_vec(shape, vec![true; shape.iter().product()])
                    .map_err(|e| g.node_err(id, e.to_string()))?;
                outs.push(Some(Arc::new(AnyTensor::from(ones))));
            }
            outs
        }
        Step::Value(v) => vec![Some(v.clone())],
        Step::Kernel(c, args) => {
            let present: Vec<&AnyTensor> = args.iter().filter_map(|k| ins.get(*k)?.as_deref()).collect();
            let data: Vec<Data<'_>> = present.iter().map(|x| x.data()).collect();
            let shapes: Vec<&[usize]> = present.iter().map(|x| x.shape()).collect();
            let (_, out_shapes) = c.shapes(&data, &shapes)?;
            let types = c.func().output_types();
            // Sized by the model: too large is an error, not an abort.
            let mut outs: Vec<AnyTensor> = types
                .iter()
                .zip(&out_shapes)
                .map(|((t, _), s)| AnyTensor::try_filled(*t, s, texpr_dsl::Scalar::zero(*t)))
                .collect::<Result<_>>()
                .map_err(|e| g.node_err(id, e.to_string()))?;
            {
                let mut od: Vec<DataMut<'_>> = outs.iter_mut().map(|o| o.data_mut()).collect();
                let os: Vec<&[usize]> = out_shapes.iter().map(|s| s.as_slice()).collect();
                c.run(&data, &shapes, &[], &mut od, &os).map_err(|e| g.node_err(id, e.to_string()))?;
            }
            outs.into_iter().map(|y| Some(Arc::new(y))).collect()
        }
    })
}

/// Runs node `id` of `g` once on `ins` (what constant folding does).
pub(crate) fn evaluate(
    g: &Graph,
    id: NodeId,
    ins: &[Option<Arc<AnyTensor>>],
    target: Target,
    compile: &CompileFn,
) -> Result<Vec<AnyTensor>> {
    let step = build_step(g, id, ins, target, compile)?;
    execute(g, id, &step, ins)?
        .into_iter()
        .map(|v| v.map(Arc::unwrap_or_clone).ok_or_else(|| g.node_err(id, "an output is not computed")))
        .collect()
}
