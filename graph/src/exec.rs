//! The executor: runs a graph node by node, each node a kernel from the
//! operator library (compiled once per node and input shapes, then cached)
//! or a view (a new shape over the same data).
//!
//! The executor does not know the backends: it is given the function that
//! compiles a definition for its target (the facade passes `Kernel`'s).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use texpr_dsl::{AnyTensor, Compiled, DType, Data, DataMut, Func, Result, Target};
use texpr_ops::{Attrs, Impl, Input};

use crate::{Attr, Dim, Graph, NodeId};

/// Compiles a definition for a target.
pub type CompileFn = Arc<dyn Fn(Func, Target) -> Result<Arc<Compiled>> + Send + Sync>;

/// A node's attributes, as the operator library reads them.
struct NodeAttrs<'a>(&'a BTreeMap<String, Attr>);

impl Attrs for NodeAttrs<'_> {
    fn int(&self, name: &str) -> Option<i64> {
        match self.0.get(name) {
            Some(Attr::Int(v)) => Some(*v),
            _ => None,
        }
    }

    fn float(&self, name: &str) -> Option<f32> {
        match self.0.get(name) {
            Some(Attr::Float(v)) => Some(*v),
            _ => None,
        }
    }

    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        match self.0.get(name) {
            Some(Attr::Ints(v)) => Some(v.clone()),
            _ => None,
        }
    }

    fn string(&self, name: &str) -> Option<String> {
        match self.0.get(name) {
            Some(Attr::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    fn tensor(&self, name: &str) -> Option<AnyTensor> {
        match self.0.get(name) {
            Some(Attr::Tensor(c)) => AnyTensor::from_le_bytes(c.dtype, &c.shape, &c.bytes).ok(),
            _ => None,
        }
    }
}

/// How one node runs for given input shapes.
enum Step {
    /// A compiled kernel.
    Kernel(Arc<Compiled>),
    /// The first input's data, reshaped.
    View(Vec<usize>),
    /// A value computed at implementation time.
    Value(Arc<AnyTensor>),
}

/// What the kernel cache is keyed by: the node, and its inputs' types,
/// dims and (for small integer inputs, which shape rules may read) values.
type Key = (u32, Vec<Option<(DType, Vec<usize>, Option<Vec<i64>>)>>);

/// A graph ready to run on a target.
pub struct Executor {
    graph: Graph,
    target: Target,
    compile: CompileFn,
    steps: Mutex<HashMap<Key, Arc<Step>>>,
}

impl Executor {
    /// Checks the graph and infers its types (an operator that is not
    /// known, or inputs that do not fit it, is an error naming the node).
    pub fn new(mut graph: Graph, target: Target, compile: CompileFn) -> Result<Executor> {
        graph.validate()?;
        crate::infer(&mut graph)?;
        Ok(Executor { graph, target, compile, steps: Mutex::new(HashMap::new()) })
    }

    /// The graph (types inferred).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Runs the graph on its inputs (in order; constants excluded) and
    /// returns its outputs. Inputs of the wrong count, type or known dims
    /// are an error naming the input.
    pub fn run(&self, inputs: &[AnyTensor]) -> Result<Vec<AnyTensor>> {
        let g = &self.graph;
        if inputs.len() != g.inputs.len() {
            return Err(g.err(format!("{} input(s) given, the model takes {}", inputs.len(), g.inputs.len())));
        }
        let mut env: Vec<Option<Arc<AnyTensor>>> = vec![None; g.values.len()];
        for (v, x) in g.inputs.iter().zip(inputs) {
            let d = g.value(*v);
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
                let fits = s.len() == x.shape().len()
                    && s.iter().zip(x.shape()).all(|(d, n)| !matches!(d, Dim::Known(k) if k != n));
                if !fits {
                    return Err(at(format!("expects shape {}, got {:?}", crate::shape::show(s), x.shape())));
                }
            }
            env[v.0 as usize] = Some(Arc::new(x.clone()));
        }
        for (i, v) in g.values.iter().enumerate() {
            if let Some(c) = &v.constant {
                env[i] = Some(Arc::new(AnyTensor::from_le_bytes(c.dtype, &c.shape, &c.bytes)?));
            }
        }
        for (k, n) in g.nodes.iter().enumerate() {
            let id = NodeId(k as u32);
            let ins: Vec<Option<Arc<AnyTensor>>> =
                n.inputs.iter().map(|i| i.and_then(|i| env[i.0 as usize].clone())).collect();
            if n.inputs.iter().zip(&ins).any(|(i, x)| i.is_some() && x.is_none()) {
                return Err(g.node_err(id, "an input has no value (an output texpr does not compute)"));
            }
            let step = self.step(id, &ins)?;
            match &*step {
                Step::View(shape) => {
                    let x = ins.first().cloned().flatten().ok_or_else(|| g.node_err(id, "no input"))?;
                    let y = (*x).clone().reshaped(shape).map_err(|e| g.node_err(id, e.to_string()))?;
                    if let Some(o) = n.outputs.first() {
                        env[o.0 as usize] = Some(Arc::new(y));
                    }
                    // Dropout's mask at inference: every element kept.
                    if n.op == "Dropout"
                        && let Some(m) = n.outputs.get(1)
                    {
                        let ones = texpr_dsl::Tensor::from_vec(shape, vec![true; shape.iter().product()])
                            .map_err(|e| g.node_err(id, e.to_string()))?;
                        env[m.0 as usize] = Some(Arc::new(AnyTensor::from(ones)));
                    }
                }
                Step::Value(v) => {
                    if let Some(o) = n.outputs.first() {
                        env[o.0 as usize] = Some(v.clone());
                    }
                }
                Step::Kernel(c) => {
                    // The kernel takes the first present inputs; trailing
                    // ones (shapes, axes) were read when it was built.
                    let mut present: Vec<&AnyTensor> = ins.iter().flatten().map(|x| &**x).collect();
                    present.truncate(c.func().inputs().count());
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
                        c.run(&data, &shapes, &[], &mut od, &os)?;
                    }
                    for (o, y) in n.outputs.iter().zip(outs) {
                        env[o.0 as usize] = Some(Arc::new(y));
                    }
                }
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
        let n = g.node(id);
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
        let inputs: Vec<Option<Input<'_>>> = ins
            .iter()
            .map(|x| x.as_ref().map(|x| Input { dtype: x.dtype(), shape: x.shape(), value: Some(x) }))
            .collect();
        let step = match texpr_ops::implement(&n.op, g.opset, &NodeAttrs(&n.attrs), &inputs, n.outputs.len())
            .map_err(|m| g.node_err(id, m))?
        {
            Impl::View(s) => Step::View(s),
            Impl::Value(v) => Step::Value(Arc::new(v)),
            Impl::Kernel(f) => {
                Step::Kernel((self.compile)(*f, self.target).map_err(|e| g.node_err(id, e.to_string()))?)
            }
        };
        let step = Arc::new(step);
        if let Ok(mut c) = self.steps.lock() {
            c.insert(key, step.clone());
        }
        Ok(step)
    }
}
