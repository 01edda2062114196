//! The graph IR.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use texpr_dsl::error::ModelError;
use texpr_dsl::{DType, Error, Result, Target};

/// A node of a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

/// A value (tensor) of a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

/// One dim of a value's shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A known size.
    Known(usize),
    /// A symbolic size, the same wherever the name appears (`N`, `batch`).
    Sym(String),
    /// Not known before a run.
    Unknown,
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Sym(s) => f.write_str(s),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// A constant tensor (an initializer, a `Constant` node's value, a tensor
/// attribute): element type, dims and little-endian row-major bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Constant {
    /// The element type.
    pub dtype: DType,
    /// The dims.
    pub shape: Vec<usize>,
    /// `shape`'s element count × the type's size (`bool`: 0 or 1).
    pub bytes: Vec<u8>,
}

impl Constant {
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// `true` for zero elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as `i64`s, for integer constants (shapes, axes, pads):
    /// `None` for other types.
    pub fn to_i64s(&self) -> Option<Vec<i64>> {
        let chunks = self.bytes.chunks_exact(self.dtype.bytes());
        Some(match self.dtype {
            DType::I64 => chunks.map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect(),
            DType::I32 => chunks.map(|c| i32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as i64).collect(),
            _ => return None,
        })
    }
}

/// A node attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// A float.
    Float(f32),
    /// An integer.
    Int(i64),
    /// A string (bytes in ONNX; texpr's attributes are UTF-8 names).
    String(String),
    /// A tensor.
    Tensor(Arc<Constant>),
    /// Floats.
    Floats(Vec<f32>),
    /// Integers.
    Ints(Vec<i64>),
    /// Strings.
    Strings(Vec<String>),
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attr::Float(v) => write!(f, "{v:?}"),
            Attr::Int(v) => write!(f, "{v}"),
            Attr::String(s) => write!(f, "{s:?}"),
            Attr::Tensor(t) => write!(f, "tensor {}{:?}", t.dtype, t.shape),
            Attr::Floats(v) => write!(f, "{v:?}"),
            Attr::Ints(v) => write!(f, "{v:?}"),
            Attr::Strings(v) => write!(f, "{v:?}"),
        }
    }
}

/// An operator application.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    /// Its name (may be empty in ONNX; errors then use its first output).
    pub name: String,
    /// The operator (`Conv`, `Relu`, ...).
    pub op: String,
    /// The operator's domain (empty: the default ONNX domain).
    pub domain: String,
    /// Inputs in order; `None` for an omitted optional input.
    pub inputs: Vec<Option<ValueId>>,
    /// Outputs in order.
    pub outputs: Vec<ValueId>,
    /// Attributes by name.
    pub attrs: BTreeMap<String, Attr>,
    /// For a fused node (op [`FUSED`], made by the fusion pass): its
    /// members in order, one kernel; they read the node's inputs and each
    /// other's outputs, and the last computes the node's output. Values
    /// only members read are the node's own (their producer is the fused
    /// node). Empty for every other node.
    pub fused: Vec<Node>,
    /// Where it runs, when the device placement pass put it elsewhere than
    /// the compile target (`None`: the target).
    pub device: Option<Target>,
}

/// The operator of a copy between devices (domain `texpr`), inserted by
/// the device placement passes.
pub const COPY: &str = "Copy";

/// The operator of a fused node ([`Node::fused`]).
pub const FUSED: &str = "Fused";

impl Node {
    /// `true` for a fused node.
    pub fn is_fused(&self) -> bool {
        !self.fused.is_empty()
    }
}

/// A value: a graph input, a constant, or a node's output.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueDef {
    /// Its name (unique in the graph).
    pub name: String,
    /// Its element type, when known.
    pub dtype: Option<DType>,
    /// Its dims, when known.
    pub shape: Option<Vec<Dim>>,
    /// The node that computes it (`None`: a graph input or a constant).
    pub producer: Option<NodeId>,
    /// Its data, for constants.
    pub constant: Option<Arc<Constant>>,
}

/// A model's graph.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    /// The model's name (file or graph name), for messages.
    pub name: String,
    /// The version of the default operator set.
    pub opset: i64,
    /// Nodes, in an order where each comes after the producers of its inputs.
    pub nodes: Vec<Node>,
    /// Every value.
    pub values: Vec<ValueDef>,
    /// The graph's inputs (constants excluded), in order.
    pub inputs: Vec<ValueId>,
    /// The graph's outputs, in order.
    pub outputs: Vec<ValueId>,
}

impl Graph {
    /// An empty graph.
    pub fn new(name: impl Into<String>, opset: i64) -> Graph {
        Graph { name: name.into(), opset, ..Default::default() }
    }

    /// The node `id`.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }

    /// The value `id`.
    pub fn value(&self, id: ValueId) -> &ValueDef {
        &self.values[id.0 as usize]
    }

    /// Adds a value.
    pub fn add_value(&mut self, v: ValueDef) -> ValueId {
        self.values.push(v);
        ValueId(self.values.len() as u32 - 1)
    }

    /// Adds a node and marks it the producer of its outputs.
    pub fn add_node(&mut self, n: Node) -> NodeId {
        let id = NodeId(self.nodes.len() as u32);
        for o in &n.outputs {
            if let Some(v) = self.values.get_mut(o.0 as usize) {
                v.producer = Some(id);
            }
        }
        self.nodes.push(n);
        id
    }

    /// How errors name a node: `node `conv1` (Conv)`, or by its first
    /// output when it has no name.
    pub fn describe(&self, id: NodeId) -> String {
        let n = self.node(id);
        if !n.name.is_empty() {
            return format!("node `{}` ({})", n.name, n.op);
        }
        match n.outputs.first().and_then(|o| self.values.get(o.0 as usize)) {
            Some(v) => format!("the {} node computing `{}`", n.op, v.name),
            None => format!("node #{} ({})", id.0, n.op),
        }
    }

    /// A short label for node `id`: its name (or first output) and its
    /// operator, a fused node's members' operators joined by `+`
    /// (`conv1: Conv+Add+Relu`), for profiles.
    pub fn label(&self, id: NodeId) -> String {
        let n = self.node(id);
        let ops = if n.is_fused() {
            n.fused.iter().map(|m| m.op.as_str()).collect::<Vec<_>>().join("+")
        } else {
            n.op.clone()
        };
        let name = match n.outputs.first() {
            _ if !n.name.is_empty() => n.name.as_str(),
            Some(o) => self.value(*o).name.as_str(),
            None => "",
        };
        match n.device {
            Some(d) => format!("{name}: {ops} @{d}"),
            None => format!("{name}: {ops}"),
        }
    }

    /// An error about node `id`.
    pub fn node_err(&self, id: NodeId, message: impl Into<String>) -> Error {
        Error::Model(ModelError { model: self.name.clone(), at: Some(self.describe(id)), message: message.into() })
    }

    /// An error about the graph as a whole.
    pub fn err(&self, message: impl Into<String>) -> Error {
        Error::Model(ModelError { model: self.name.clone(), at: None, message: message.into() })
    }

    /// Checks the structure every later stage relies on: handles in range,
    /// every value defined exactly once (a graph input, a constant, or one
    /// node's output), every node after the producers of its inputs, names
    /// unique, and every graph output defined.
    pub fn validate(&self) -> Result<()> {
        let nv = self.values.len();
        let mut names: HashMap<&str, ValueId> = HashMap::new();
        for (i, v) in self.values.iter().enumerate() {
            if names.insert(v.name.as_str(), ValueId(i as u32)).is_some() {
                return Err(self.err(format!("two values are named `{}`", v.name)));
            }
        }
        // Defined before use, in node order.
        let mut defined = vec![false; nv];
        for i in &self.inputs {
            let Some(d) = defined.get_mut(i.0 as usize) else {
                return Err(self.err(format!("graph input #{} does not exist", i.0)));
            };
            *d = true;
        }
        for (i, v) in self.values.iter().enumerate() {
            if v.constant.is_some() {
                defined[i] = true;
            }
        }
        for (k, n) in self.nodes.iter().enumerate() {
            let id = NodeId(k as u32);
            if n.is_fused() {
                self.validate_fused(id, &defined)?;
            }
            for x in n.inputs.iter().flatten() {
                match defined.get(x.0 as usize) {
                    None => return Err(self.node_err(id, format!("input #{} does not exist", x.0))),
                    Some(false) => {
                        return Err(self.node_err(
                            id,
                            format!("reads `{}` before anything computes it", self.values[x.0 as usize].name),
                        ));
                    }
                    Some(true) => {}
                }
            }
            for o in &n.outputs {
                let Some(d) = defined.get_mut(o.0 as usize) else {
                    return Err(self.node_err(id, format!("output #{} does not exist", o.0)));
                };
                if *d {
                    return Err(self.node_err(
                        id,
                        format!("computes `{}`, which is already defined", self.values[o.0 as usize].name),
                    ));
                }
                *d = true;
                if self.values[o.0 as usize].producer != Some(id) {
                    return Err(self.node_err(id, "its outputs do not name it as their producer"));
                }
            }
        }
        for o in &self.outputs {
            match defined.get(o.0 as usize) {
                Some(true) => {}
                Some(false) => {
                    return Err(self.err(format!("output `{}` is never computed", self.values[o.0 as usize].name)));
                }
                None => return Err(self.err(format!("graph output #{} does not exist", o.0))),
            }
        }
        Ok(())
    }

    /// A fused node's members read its inputs or earlier members' outputs,
    /// and its outputs are members' outputs.
    fn validate_fused(&self, id: NodeId, defined: &[bool]) -> Result<()> {
        let n = self.node(id);
        let mut inner: Vec<ValueId> = vec![];
        for m in &n.fused {
            if m.is_fused() {
                return Err(self.node_err(id, "a fused node inside a fused node"));
            }
            for x in m.inputs.iter().flatten() {
                let outer = n.inputs.contains(&Some(*x)) && defined.get(x.0 as usize) == Some(&true);
                if !outer && !inner.contains(x) {
                    return Err(self.node_err(id, format!("member {} reads a value it cannot see", m.op)));
                }
            }
            for o in &m.outputs {
                if o.0 as usize >= self.values.len() || inner.contains(o) {
                    return Err(self.node_err(id, format!("member {} computes an invalid value", m.op)));
                }
                inner.push(*o);
            }
        }
        if let Some(o) = n.outputs.iter().find(|o| !inner.contains(o)) {
            return Err(self.node_err(id, format!("output `{}` is not computed by a member", self.value(*o).name)));
        }
        Ok(())
    }

    /// `outs = Op(ins) attr=value ...`.
    fn node_line(&self, n: &Node) -> String {
        let outs: Vec<&str> = n.outputs.iter().map(|o| self.value(*o).name.as_str()).collect();
        let ins: Vec<&str> = n.inputs.iter().map(|i| i.map_or("_", |i| self.value(i).name.as_str())).collect();
        let mut line = format!("{} = {}({})", outs.join(", "), n.op, ins.join(", "));
        for (name, a) in &n.attrs {
            line.push_str(&format!(" {name}={a}"));
        }
        if let Some(d) = n.device {
            line.push_str(&format!(" @{d}"));
        }
        line
    }

    /// For every value, the nodes that read it (a fused node reads what
    /// its members read), each once, in order.
    pub fn readers(&self) -> Vec<Vec<NodeId>> {
        let mut r: Vec<Vec<NodeId>> = vec![vec![]; self.values.len()];
        for (k, n) in self.nodes.iter().enumerate() {
            let id = NodeId(k as u32);
            let reads = n.inputs.iter().chain(n.fused.iter().flat_map(|m| &m.inputs)).flatten();
            for v in reads {
                if let Some(list) = r.get_mut(v.0 as usize)
                    && list.last() != Some(&id)
                {
                    list.push(id);
                }
            }
        }
        r
    }

    /// Removes the nodes `keep` rejects and every value nothing refers to
    /// any more (no node reads or computes it, not a graph input or
    /// output), renumbering handles.
    pub fn retain(&mut self, keep: impl Fn(NodeId, &Node) -> bool) {
        let nodes: Vec<Node> = std::mem::take(&mut self.nodes)
            .into_iter()
            .enumerate()
            .filter(|(k, n)| keep(NodeId(*k as u32), n))
            .map(|(_, n)| n)
            .collect();
        let mut used = vec![false; self.values.len()];
        for v in self.inputs.iter().chain(&self.outputs) {
            used[v.0 as usize] = true;
        }
        for n in &nodes {
            for m in std::iter::once(n).chain(&n.fused) {
                for v in m.inputs.iter().flatten().chain(&m.outputs) {
                    used[v.0 as usize] = true;
                }
            }
        }
        let mut map = vec![None; self.values.len()];
        let mut values = vec![];
        for (i, v) in std::mem::take(&mut self.values).into_iter().enumerate() {
            if used[i] {
                map[i] = Some(ValueId(values.len() as u32));
                values.push(v);
            }
        }
        let re = |v: &mut ValueId| *v = map[v.0 as usize].unwrap_or(*v);
        for v in self.inputs.iter_mut().chain(self.outputs.iter_mut()) {
            re(v);
        }
        self.values = values;
        for v in &mut self.values {
            v.producer = None;
        }
        self.nodes = nodes;
        let remap = |m: &mut Node| m.inputs.iter_mut().flatten().chain(m.outputs.iter_mut()).for_each(re);
        for (k, n) in self.nodes.iter_mut().enumerate() {
            remap(n);
            n.fused.iter_mut().for_each(remap);
            // The fused node computes its members' values too.
            for m in std::iter::once(&*n).chain(&n.fused) {
                for o in &m.outputs {
                    self.values[o.0 as usize].producer = Some(NodeId(k as u32));
                }
            }
        }
    }

    fn type_str(&self, v: &ValueDef) -> String {
        let t = v.dtype.map_or("?".to_string(), |t| t.to_string());
        match &v.shape {
            Some(s) => format!("{t}[{}]", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
            None => format!("{t}[..]"),
        }
    }
}

impl fmt::Display for Graph {
    /// The graph, one line per input, constant, node and output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "graph {} (opset {})", self.name, self.opset)?;
        for i in &self.inputs {
            let v = self.value(*i);
            writeln!(f, "  input {}: {}", v.name, self.type_str(v))?;
        }
        for v in self.values.iter().filter(|v| v.constant.is_some()) {
            writeln!(f, "  const {}: {}", v.name, self.type_str(v))?;
        }
        for n in &self.nodes {
            let mut line = format!("  {}", self.node_line(n));
            if !n.name.is_empty() {
                line.push_str(&format!("  # {}", n.name));
            }
            writeln!(f, "{line}")?;
            for m in &n.fused {
                writeln!(f, "    | {}", self.node_line(m))?;
            }
        }
        for o in &self.outputs {
            let v = self.value(*o);
            writeln!(f, "  output {}: {}", v.name, self.type_str(v))?;
        }
        Ok(())
    }
}
