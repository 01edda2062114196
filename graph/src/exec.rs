//! The executor: runs a graph node by node, each node a kernel from the
//! operator library — a fused node one kernel composed from its members —
//! (compiled once per node and input shapes, then cached), a view (a new
//! shape over the same data), or a value.
//!
//! The executor does not know the backends: it is given the function that
//! compiles a definition for its target (the facade passes `Kernel`'s).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use texpr_dsl::{AnyTensor, Compiled, DType, Data, DataMut, Program, Result, Target, TargetClass};
use texpr_ops::{Impl, Input};

use crate::attrs::NodeAttrs;
use crate::memory::{Life, MIN_ELEMS, Plan, plannable};
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
    /// Memory plans by the inputs' types and dims (made by the first run
    /// with them), when the passes are on.
    plans: Mutex<HashMap<Signature, Arc<Plan>>>,
    /// Arenas free for a run to take.
    arenas: Mutex<Vec<Vec<u64>>>,
    /// The arena and unshared sizes of the last plan made, in bytes.
    last_plan: Mutex<Option<(usize, usize, usize)>>,
}

/// What a memory plan is keyed by: the inputs' types, dims and (small
/// integer inputs, which may shape the rest) values.
type Signature = Vec<(DType, Vec<usize>, Option<Vec<i64>>)>;

/// A value during a run: owned, an owned tensor's data under another
/// shape (a reshape costs no copy), or a range of the run's arena (in
/// words).
#[derive(Clone, Debug)]
enum Val {
    Own(Arc<AnyTensor>),
    View { base: Arc<AnyTensor>, shape: Vec<usize> },
    Arena { dtype: DType, shape: Vec<usize>, words: Range<usize> },
}

impl Val {
    fn dtype(&self) -> DType {
        match self {
            Val::Own(t) | Val::View { base: t, .. } => t.dtype(),
            Val::Arena { dtype, .. } => *dtype,
        }
    }

    fn shape(&self) -> &[usize] {
        match self {
            Val::Own(t) => t.shape(),
            Val::View { shape, .. } | Val::Arena { shape, .. } => shape,
        }
    }

    /// The value as a tensor of its shape, where it is one (rules read
    /// values only of small tensors, which are never views or in the arena).
    fn tensor(&self) -> Option<&Arc<AnyTensor>> {
        match self {
            Val::Own(t) => Some(t),
            Val::View { .. } | Val::Arena { .. } => None,
        }
    }

    /// The elements, for an owned tensor or a view of one.
    fn owned_data(&self) -> Option<Data<'_>> {
        match self {
            Val::Own(t) | Val::View { base: t, .. } => Some(t.data()),
            Val::Arena { .. } => None,
        }
    }
}

/// Where a kernel output goes.
enum Dest {
    Own,
    Arena(Range<usize>),
}

/// The small integer values a step or plan key includes.
fn small_values(x: &AnyTensor) -> Option<Vec<i64>> {
    (x.dtype() == DType::I64 && x.len() <= 16)
        .then(|| (0..x.len()).filter_map(|i| x.get(i).and_then(|s| s.as_i64())).collect())
}

impl Executor {
    /// Checks the graph, infers its types (an operator that is not known,
    /// or inputs that do not fit it, is an error naming the node) and runs
    /// the graph passes unless `options` turn them off.
    pub fn new(mut graph: Graph, options: Options, compile: CompileFn) -> Result<Executor> {
        graph.validate()?;
        crate::infer(&mut graph)?;
        let eval = |g: &Graph, id: NodeId, ins: &[Option<Arc<AnyTensor>>]| {
            evaluate(g, id, ins, fold_target(options.target()), &compile)
        };
        passes::optimize(&mut graph, &Ctx { options: &options, eval: &eval })?;
        let consts = decode_constants(&graph)?;
        let exec = Executor {
            graph,
            options,
            compile,
            consts,
            steps: Mutex::new(HashMap::new()),
            plans: Mutex::new(HashMap::new()),
            arenas: Mutex::new(vec![]),
            last_plan: Mutex::new(None),
        };
        exec.precompile(&exec.graph);
        Ok(exec)
    }

    /// Compiles the kernel of every node whose inputs' types and dims `g`
    /// (the graph, or a copy typed for a run's inputs) knows, in parallel
    /// on the CPU targets (GPU contexts stay on the calling thread): at
    /// compile time for a model whose inputs have fixed dims, and on the
    /// first run for other input dims. A node that fails here is left to
    /// the run, which reports it.
    fn precompile(&self, g: &Graph) {
        let ready: Vec<NodeId> = (0..g.nodes.len() as u32)
            .map(NodeId)
            .filter(|id| {
                g.node(*id).inputs.iter().flatten().all(|v| {
                    let d = g.value(*v);
                    d.dtype.is_some() && d.shape.as_ref().is_some_and(|s| s.iter().all(|x| matches!(x, Dim::Known(_))))
                })
            })
            .collect();
        let build = |id: &NodeId| {
            let ins: Vec<Option<Val>> = g
                .node(*id)
                .inputs
                .iter()
                .map(|i| {
                    i.map(|v| match &self.consts[v.0 as usize] {
                        Some(c) => Val::Own(c.clone()),
                        None => {
                            let d = g.value(v);
                            let shape =
                                d.shape.iter().flatten().map(|x| if let Dim::Known(k) = x { *k } else { 0 }).collect();
                            // Dims only: what a step is built from.
                            Val::Arena { dtype: d.dtype.unwrap_or(DType::F32), shape, words: 0..0 }
                        }
                    })
                })
                .collect();
            let _ = self.step(*id, &ins);
        };
        if self.options.target().class() == TargetClass::Cpu {
            use rayon::prelude::*;
            ready.par_iter().for_each(build);
        } else {
            ready.iter().for_each(build);
        }
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

    /// The memory plan made last (by the first run for some input types
    /// and dims, with the passes on): the arena's bytes, what the planned
    /// values take without sharing, and the concatenations done in place.
    pub fn memory(&self) -> Option<(usize, usize, usize)> {
        self.last_plan.lock().ok().and_then(|p| *p)
    }

    fn run_timed(&self, inputs: &[AnyTensor], mut times: Option<&mut Times>) -> Result<Vec<AnyTensor>> {
        let g = &self.graph;
        if inputs.len() != g.inputs.len() {
            return Err(g.err(format!("{} input(s) given, the model takes {}", inputs.len(), g.inputs.len())));
        }
        let mut env: Vec<Option<Val>> = self.consts.iter().map(|c| c.clone().map(Val::Own)).collect();
        for (v, x) in g.inputs.iter().zip(inputs) {
            check_input(g, *v, x)?;
            env[v.0 as usize] = Some(Val::Own(Arc::new(x.clone())));
        }
        let sig: Signature = inputs.iter().map(|x| (x.dtype(), x.shape().to_vec(), small_values(x))).collect();
        let plan = match self.options.optimizes() {
            true => self.plans.lock().map_err(|_| g.err("a run panicked earlier"))?.get(&sig).cloned(),
            false => None,
        };
        if plan.is_none() {
            // The first run for these inputs: the graph typed for them, and
            // every kernel it then knows compiled up front, in parallel.
            let mut typed = g.clone();
            for (v, x) in g.inputs.iter().zip(inputs) {
                typed.values[v.0 as usize].shape = Some(x.shape().iter().map(|d| Dim::Known(*d)).collect());
            }
            if crate::infer(&mut typed).is_ok() {
                self.precompile(&typed);
            }
        }
        let mut arena = match &plan {
            Some(p) => self.take_arena(p.words),
            None => vec![],
        };
        // The measuring run: which node's view each value is (by root).
        let mut views: Vec<Option<usize>> = vec![None; g.values.len()];
        let mut kernel_made = vec![false; g.values.len()];
        for k in 0..g.nodes.len() {
            let id = NodeId(k as u32);
            let n = g.node(id);
            let ins: Vec<Option<Val>> = n.inputs.iter().map(|i| i.and_then(|i| env[i.0 as usize].clone())).collect();
            if n.inputs.iter().zip(&ins).any(|(i, x)| i.is_some() && x.is_none()) {
                return Err(g.node_err(id, "an input has no value (an output texpr does not compute)"));
            }
            let start = Instant::now();
            // A concatenation done in place: its inputs are already side by
            // side in its output's range.
            if let Some((dtype, shape)) = plan.as_ref().and_then(|p| p.in_place.get(&k))
                && let Some(words) = plan.as_ref().and_then(|p| p.at[n.outputs[0].0 as usize].clone())
                && in_place(&ins, &words, plan.as_deref())
            {
                env[n.outputs[0].0 as usize] = Some(Val::Arena { dtype: *dtype, shape: shape.clone(), words });
                if let Some(t) = times.as_deref_mut() {
                    t.push((id, start.elapsed()));
                }
                continue;
            }
            let step = self.step(id, &ins)?;
            let outs = match &*step {
                Step::Kernel(c, args) => {
                    let dests: Vec<Dest> = n
                        .outputs
                        .iter()
                        .map(|o| match plan.as_ref().and_then(|p| p.at[o.0 as usize].clone()) {
                            Some(r) => Dest::Arena(r),
                            None => Dest::Own,
                        })
                        .collect();
                    for o in &n.outputs {
                        kernel_made[o.0 as usize] = true;
                    }
                    run_kernel(g, id, c, args, &ins, dests, &mut arena)?
                }
                // A reshape of a large value: the same data, no copy (small
                // ones stay tensors: rules may read their values).
                Step::View(shape) if n.outputs.len() == 1 && shape.iter().product::<usize>() >= MIN_ELEMS => {
                    match ins.first().cloned().flatten() {
                        Some(Val::Arena { dtype, words, .. }) => {
                            vec![Val::Arena { dtype, shape: shape.clone(), words }]
                        }
                        Some(Val::Own(base) | Val::View { base, .. }) => vec![Val::View { base, shape: shape.clone() }],
                        None => return Err(g.node_err(id, "no input")),
                    }
                }
                _ => {
                    let owned: Env =
                        ins.iter().map(|x| x.as_ref().map(|x| owned(x, &arena)).transpose()).collect::<Result<_>>()?;
                    let outs = execute(g, id, &step, &owned)?;
                    outs.into_iter()
                        .map(|o| o.map(Val::Own).ok_or_else(|| g.node_err(id, "no output")))
                        .collect::<Result<_>>()?
                }
            };
            if let (Step::View(_), Some(Some(x))) = (&*step, n.inputs.first()) {
                let root = views[x.0 as usize].unwrap_or(x.0 as usize);
                if let Some(o) = n.outputs.first() {
                    views[o.0 as usize] = Some(root);
                }
            }
            for (o, y) in n.outputs.iter().zip(outs) {
                env[o.0 as usize] = Some(y);
            }
            if let Some(t) = times.as_deref_mut() {
                t.push((id, start.elapsed()));
            }
        }
        let outs = g
            .outputs
            .iter()
            .map(|o| match &env[o.0 as usize] {
                Some(v) => owned(v, &arena).map(Arc::unwrap_or_clone),
                None => Err(g.err(format!("output `{}` was not computed", g.value(*o).name))),
            })
            .collect::<Result<Vec<_>>>()?;
        if plan.is_some() {
            if let Ok(mut pool) = self.arenas.lock() {
                pool.push(arena);
            }
        } else if self.options.optimizes() {
            self.make_plan(sig, &env, &views, &kernel_made);
        }
        Ok(outs)
    }

    /// An arena of at least `words` words (from the pool, or new).
    fn take_arena(&self, words: usize) -> Vec<u64> {
        let mut a = self.arenas.lock().ok().and_then(|mut p| p.pop()).unwrap_or_default();
        if a.len() < words {
            a = vec![0; words];
        }
        a
    }

    /// The memory plan for a measured run: every plannable value with its
    /// lifetime (views extend their root's).
    fn make_plan(&self, sig: Signature, env: &[Option<Val>], views: &[Option<usize>], kernel_made: &[bool]) {
        let g = &self.graph;
        let readers = g.readers();
        let outputs: Vec<usize> = g.outputs.iter().map(|o| views[o.0 as usize].unwrap_or(o.0 as usize)).collect();
        let mut lives: Vec<Life> = vec![];
        let mut index: HashMap<usize, usize> = HashMap::new();
        for (v, val) in env.iter().enumerate() {
            let (Some(val), Some(p)) = (val, g.values[v].producer) else { continue };
            let n: usize = val.shape().iter().product();
            if !kernel_made[v] || views[v].is_some() || !plannable(val.dtype()) || n < MIN_ELEMS || outputs.contains(&v)
            {
                continue;
            }
            let last = readers[v].iter().map(|r| r.0 as usize).max().unwrap_or(p.0 as usize);
            index.insert(v, lives.len());
            lives.push(Life {
                value: v,
                bytes: n * val.dtype().bytes(),
                first: p.0 as usize,
                last,
                views: vec![],
                parts: vec![],
            });
        }
        for (v, root) in views.iter().enumerate() {
            if let Some(k) = root.and_then(|r| index.get(&r)) {
                let last = readers[v].iter().map(|r| r.0 as usize).max().unwrap_or(0);
                lives[*k].last = lives[*k].last.max(last);
                lives[*k].views.push(v);
            }
        }
        let in_place = self.concats_in_place(env, views, &readers, &index, &mut lives);
        let mut plan = crate::memory::plan(g.values.len(), &lives);
        plan.in_place = in_place;
        if let Ok(mut last) = self.last_plan.lock() {
            *last = Some((plan.words * 8, plan.unshared, plan.in_place.len()));
        }
        if let Ok(mut plans) = self.plans.lock() {
            plans.insert(sig, Arc::new(plan));
        }
    }

    /// Concatenations whose inputs can be written straight into the output:
    /// along an axis with only 1s before it (each input a contiguous block
    /// of the output, in order), every input a planned kernel result read by
    /// nothing else, of the output's type, ending on a word. The inputs
    /// become parts of the output's life, which starts with the first of
    /// them.
    fn concats_in_place(
        &self,
        env: &[Option<Val>],
        views: &[Option<usize>],
        readers: &[Vec<NodeId>],
        index: &HashMap<usize, usize>,
        lives: &mut [Life],
    ) -> HashMap<usize, (DType, Vec<usize>)> {
        let g = &self.graph;
        let mut done = HashMap::new();
        let mut taken: Vec<usize> = vec![];
        for (k, n) in g.nodes.iter().enumerate() {
            if n.op != "Concat" || !n.domain.is_empty() || n.is_fused() || n.outputs.len() != 1 {
                continue;
            }
            let out = n.outputs[0].0 as usize;
            let (Some(&c), Some(Some(val))) = (index.get(&out), env.get(out)) else { continue };
            let shape = val.shape().to_vec();
            let r = shape.len() as i64;
            let axis = match n.attrs.get("axis") {
                Some(crate::Attr::Int(a)) if *a < 0 => a + r,
                Some(crate::Attr::Int(a)) => *a,
                _ => continue,
            };
            if !(0..r).contains(&axis) || shape[..axis as usize].iter().any(|d| *d != 1) {
                continue;
            }
            let ins: Vec<usize> = n.inputs.iter().flatten().map(|v| v.0 as usize).collect();
            let mut offset = 0;
            let mut parts = vec![];
            for v in &ins {
                let Some(&p) = index.get(v) else { break };
                let fits = views[*v].is_none()
                    && readers[*v] == [NodeId(k as u32)]
                    && !taken.contains(v)
                    && env[*v].as_ref().is_some_and(|x| x.dtype() == val.dtype())
                    && lives[p].bytes.is_multiple_of(8)
                    && lives[p].parts.is_empty();
                if !fits || ins.iter().filter(|w| *w == v).count() > 1 {
                    break;
                }
                parts.push((*v, offset, p));
                offset += lives[p].bytes;
            }
            if parts.len() != ins.len() || offset != lives[c].bytes {
                continue;
            }
            for (v, off, p) in parts {
                lives[c].first = lives[c].first.min(lives[p].first);
                lives[c].parts.push((v, off));
                taken.push(v);
            }
            taken.push(out);
            done.insert(k, (val.dtype(), shape));
        }
        done
    }

    fn step(&self, id: NodeId, ins: &[Option<Val>]) -> Result<Arc<Step>> {
        let g = &self.graph;
        let key: Key = (
            id.0,
            ins.iter()
                .map(|x| x.as_ref().map(|x| (x.dtype(), x.shape().to_vec(), x.tensor().and_then(|t| small_values(t)))))
                .collect(),
        );
        let cache = self.steps.lock().map_err(|_| g.err("a run panicked earlier"))?.get(&key).cloned();
        if let Some(s) = cache {
            return Ok(s);
        }
        let inputs: Vec<Option<Input<'_>>> = ins
            .iter()
            .map(|x| x.as_ref().map(|x| Input { dtype: x.dtype(), shape: x.shape(), value: x.tensor().map(|t| &**t) }))
            .collect();
        let target = g.node(id).device.unwrap_or(self.options.target());
        let step = match build_step(g, id, &inputs, target, &self.compile) {
            Ok(s) => s,
            // What the target cannot compile runs on the fallback.
            Err(e) => match self.options.fallback_target() {
                Some(f) if f != target => build_step(g, id, &inputs, f, &self.compile).map_err(|_| e)?,
                _ => return Err(e),
            },
        };
        let step = Arc::new(step);
        if let Ok(mut c) = self.steps.lock() {
            c.insert(key, step.clone());
        }
        Ok(step)
    }
}

/// Whether a concatenation's inputs are in the arena, side by side, and
/// fill `words` (what the plan arranged; anything else runs the kernel).
fn in_place(ins: &[Option<Val>], words: &Range<usize>, plan: Option<&Plan>) -> bool {
    let Some(_) = plan else { return false };
    let mut at = words.start;
    for x in ins.iter().flatten() {
        match x {
            Val::Arena { words: w, .. } if w.start == at => at = w.end,
            _ => return false,
        }
    }
    at == words.end
}

/// A value as an owned tensor (an arena value copied out).
fn owned(v: &Val, arena: &[u64]) -> Result<Arc<AnyTensor>> {
    match v {
        Val::Own(t) => Ok(t.clone()),
        Val::View { base, shape } => Ok(Arc::new((**base).clone().reshaped(shape)?)),
        Val::Arena { dtype, shape, words } => {
            let n = shape.iter().product();
            let err = || {
                texpr_dsl::Error::Internal(texpr_dsl::error::InternalError {
                    context: "memory plan".into(),
                    message: format!("arena range {words:?} holds no {n} `{dtype}`s"),
                })
            };
            let d = arena.get(words.clone()).and_then(|w| crate::memory::data(*dtype, w, n)).ok_or_else(err)?;
            let mut t = AnyTensor::try_filled(*dtype, shape, texpr_dsl::Scalar::zero(*dtype))?;
            copy(d, t.data_mut()).ok_or_else(err)?;
            Ok(Arc::new(t))
        }
    }
}

fn copy(from: Data<'_>, to: DataMut<'_>) -> Option<()> {
    match (from, to) {
        (Data::F32(a), DataMut::F32(b)) => b.copy_from_slice(a),
        (Data::F64(a), DataMut::F64(b)) => b.copy_from_slice(a),
        (Data::F16(a), DataMut::F16(b)) => b.copy_from_slice(a),
        (Data::BF16(a), DataMut::BF16(b)) => b.copy_from_slice(a),
        _ => return None,
    }
    Some(())
}

/// Runs a kernel on values, its outputs written where `dests` says (an
/// arena range too small for the output, or of a type the arena does not
/// hold, is allocated on its own instead).
fn run_kernel(
    g: &Graph,
    id: NodeId,
    c: &Compiled,
    args: &[usize],
    ins: &[Option<Val>],
    dests: Vec<Dest>,
    arena: &mut [u64],
) -> Result<Vec<Val>> {
    let present: Vec<&Val> = args.iter().filter_map(|k| ins.get(*k)?.as_ref()).collect();
    let shapes: Vec<&[usize]> = present.iter().map(|x| x.shape()).collect();
    let types = c.func().output_types();
    let typed: Vec<(DType, &[usize])> = present.iter().map(|x| (x.dtype(), x.shape())).collect();
    let out_shapes = c.output_shapes_for(&typed).map_err(|e| g.node_err(id, e.to_string()))?;
    // Each output: an arena range that fits, or its own tensor.
    let mut own: Vec<Option<AnyTensor>> = vec![];
    let mut ranges: Vec<Range<usize>> = vec![];
    let mut out_at: Vec<Option<usize>> = vec![];
    for ((t, _), (s, d)) in types.iter().zip(out_shapes.iter().zip(dests)) {
        let n: usize = s.iter().product();
        match d {
            Dest::Arena(r) if plannable(*t) && (r.end - r.start) * 8 >= n * t.bytes() => {
                out_at.push(Some(ranges.len()));
                ranges.push(r);
                own.push(None);
            }
            _ => {
                out_at.push(None);
                let t = AnyTensor::try_filled(*t, s, texpr_dsl::Scalar::zero(*t))
                    .map_err(|e| g.node_err(id, e.to_string()))?;
                own.push(Some(t));
            }
        }
    }
    // The inputs' distinct arena ranges, after the outputs'.
    let n_out = ranges.len();
    let mut in_at: Vec<Option<usize>> = vec![];
    for x in &present {
        match x {
            Val::Arena { words, .. } => {
                if ranges[..n_out].iter().any(|r| r.start < words.end && words.start < r.end) {
                    return Err(
                        g.node_err(id, "internal error: an output's memory overlaps an input's (a bug in texpr)")
                    );
                }
                let k = match ranges[n_out..].iter().position(|r| r == words) {
                    Some(k) => n_out + k,
                    None => {
                        ranges.push(words.clone());
                        ranges.len() - 1
                    }
                };
                in_at.push(Some(k));
            }
            Val::Own(_) | Val::View { .. } => in_at.push(None),
        }
    }
    let bad = || g.node_err(id, "internal error: arena ranges overlap (a bug in texpr)");
    let mut slices = crate::memory::carve(arena, &ranges).ok_or_else(bad)?;
    let in_slices: Vec<&[u64]> = slices.split_off(n_out).into_iter().map(|s| &*s).collect();
    let data: Vec<Data<'_>> = present
        .iter()
        .zip(&in_at)
        .map(|(x, at)| match at {
            Some(k) => {
                crate::memory::data(x.dtype(), in_slices[*k - n_out], x.shape().iter().product()).ok_or_else(bad)
            }
            None => x.owned_data().ok_or_else(bad),
        })
        .collect::<Result<_>>()?;
    {
        let mut out_slices = slices.into_iter();
        let mut od: Vec<DataMut<'_>> = vec![];
        for (((t, _), s), (at, o)) in types.iter().zip(&out_shapes).zip(out_at.iter().zip(own.iter_mut())) {
            match (at, o) {
                (Some(_), _) => {
                    let w = out_slices.next().ok_or_else(bad)?;
                    od.push(crate::memory::data_mut(*t, w, s.iter().product()).ok_or_else(bad)?);
                }
                (None, Some(t)) => od.push(t.data_mut()),
                (None, None) => return Err(bad()),
            }
        }
        let os: Vec<&[usize]> = out_shapes.iter().map(|s| s.as_slice()).collect();
        c.run(&data, &shapes, &[], &mut od, &os).map_err(|e| g.node_err(id, e.to_string()))?;
    }
    Ok(types
        .iter()
        .zip(out_shapes)
        .zip(out_at.iter().zip(own))
        .map(|(((t, _), s), (at, o))| match (at, o) {
            (Some(k), _) => Val::Arena { dtype: *t, shape: s, words: ranges[*k].clone() },
            (None, Some(o)) => Val::Own(Arc::new(o)),
            (None, None) => Val::Own(Arc::new(AnyTensor::zeros(*t, &s))),
        })
        .collect())
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
    inputs: &[Option<Input<'_>>],
    target: Target,
    compile: &CompileFn,
) -> Result<Step> {
    let n = g.node(id);
    let ins = inputs;
    if n.op == crate::COPY && n.domain == "texpr" {
        // Values live on the host between kernels: a copy moves nothing.
        let x = inputs.first().copied().flatten().ok_or_else(|| g.node_err(id, "a copy of nothing"))?;
        return Ok(Step::View(x.shape.to_vec()));
    }
    let (builder, args, template) = if n.is_fused() {
        let c = crate::compose::compose(g, id, inputs).map_err(|m| g.node_err(id, m))?;
        (c.func, c.args, c.template)
    } else {
        match texpr_ops::implement(&n.op, g.opset, &NodeAttrs(&n.attrs), inputs, n.outputs.len())
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
            let y = if x.shape() == shape.as_slice() {
                x
            } else {
                Arc::new((*x).clone().reshaped(shape).map_err(|e| g.node_err(id, e.to_string()))?)
            };
            let mut outs = vec![Some(y)];
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
    let inputs: Vec<Option<Input<'_>>> =
        ins.iter().map(|x| x.as_ref().map(|x| Input { dtype: x.dtype(), shape: x.shape(), value: Some(x) })).collect();
    let step = build_step(g, id, &inputs, target, compile)?;
    execute(g, id, &step, ins)?
        .into_iter()
        .map(|v| v.map(Arc::unwrap_or_clone).ok_or_else(|| g.node_err(id, "an output is not computed")))
        .collect()
}
