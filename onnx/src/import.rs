//! ONNX model → [`Graph`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use texpr_dsl::{DType, Result};
use texpr_graph::{Attr, Dim, Graph, Node, NodeId, ValueDef, ValueId};

use crate::proto::{AttributeProto, AttributeType, DimensionValue, ModelProto, TypeProto, TypeValue, ValueInfoProto};
use crate::{dtype_of, model_err, opset, tensor_data};

/// The graph of a decoded model; `name` (its file name) is what errors call
/// it. Checks what the graph level relies on: supported value types and
/// attributes, every name defined before it is read (nodes in topological
/// order), outputs defined.
pub fn to_graph(name: &str, m: &ModelProto) -> Result<Graph> {
    let version = opset(name, m)?;
    let Some(g) = &m.graph else { return Err(model_err(name, None, "the model has no graph")) };
    let mut graph = Graph::new(name, version);
    let mut by_name: HashMap<String, ValueId> = HashMap::new();
    if !g.sparse_initializer.is_empty() {
        return Err(model_err(name, None, "sparse initializers are not supported"));
    }
    for t in &g.initializer {
        let c = tensor_data(name, t)?;
        if by_name.contains_key(&t.name) {
            return Err(model_err(name, Some(format!("tensor `{}`", t.name)), "is defined twice"));
        }
        let v = ValueDef {
            name: t.name.clone(),
            dtype: Some(c.dtype),
            shape: Some(c.shape.iter().map(|d| Dim::Known(*d)).collect()),
            producer: None,
            constant: Some(Arc::new(c)),
        };
        by_name.insert(t.name.clone(), graph.add_value(v));
    }
    // IR 3 files list their initializers among the inputs too.
    for i in &g.input {
        if by_name.contains_key(&i.name) {
            continue;
        }
        let (dtype, shape) = value_type(name, "input", i)?;
        let id = graph.add_value(ValueDef { name: i.name.clone(), dtype, shape, producer: None, constant: None });
        if dtype.is_none() {
            return Err(model_err(name, Some(format!("input `{}`", i.name)), "has no tensor type"));
        }
        by_name.insert(i.name.clone(), id);
        graph.inputs.push(id);
    }
    let infos: HashMap<&str, &ValueInfoProto> =
        g.value_info.iter().chain(&g.output).map(|v| (v.name.as_str(), v)).collect();
    for (k, n) in g.node.iter().enumerate() {
        let id = NodeId(graph.nodes.len() as u32);
        let at = || {
            if !n.name.is_empty() {
                format!("node `{}` ({})", n.name, n.op_type)
            } else {
                match n.output.first() {
                    Some(o) if !o.is_empty() => format!("the {} node computing `{o}`", n.op_type),
                    _ => format!("node #{k} ({})", n.op_type),
                }
            }
        };
        let err = |m: String| model_err(name, Some(at()), m);
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            return Err(err(format!("operator domain `{}` is not supported", n.domain)));
        }
        if n.op_type.is_empty() {
            return Err(err("has no operator".into()));
        }
        let mut inputs = vec![];
        for i in &n.input {
            if i.is_empty() {
                inputs.push(None);
                continue;
            }
            match by_name.get(i) {
                Some(v) => inputs.push(Some(*v)),
                None => {
                    return Err(err(format!(
                        "reads `{i}`, which no input, initializer or earlier node defines (nodes must be in topological order)"
                    )));
                }
            }
        }
        let mut attrs = BTreeMap::new();
        for a in &n.attribute {
            if attrs.insert(a.name.clone(), attr(name, a).map_err(&err)?).is_some() {
                return Err(err(format!("attribute `{}` is given twice", a.name)));
            }
        }
        let mut outputs = vec![];
        for (j, o) in n.output.iter().enumerate() {
            // An omitted optional output still gets a (private) value.
            let vname = if o.is_empty() { format!("{}:{j}#{k}", n.op_type) } else { o.clone() };
            if by_name.contains_key(&vname) {
                return Err(err(format!("computes `{vname}`, which is already defined")));
            }
            let (dtype, shape) = match infos.get(vname.as_str()) {
                Some(info) => value_type(name, "value", info)?,
                None => (None, None),
            };
            let v = graph.add_value(ValueDef { name: vname.clone(), dtype, shape, producer: Some(id), constant: None });
            by_name.insert(vname, v);
            outputs.push(v);
        }
        graph.add_node(Node {
            name: n.name.clone(),
            op: n.op_type.clone(),
            domain: String::new(),
            inputs,
            outputs,
            attrs,
            fused: vec![],
            device: None,
        });
    }
    for o in &g.output {
        let at = || Some(format!("output `{}`", o.name));
        match by_name.get(&o.name) {
            Some(v) if graph.value(*v).dtype.is_none() => return Err(model_err(name, at(), "has no tensor type")),
            Some(v) => graph.outputs.push(*v),
            None => return Err(model_err(name, at(), "is never computed")),
        }
    }
    graph.validate()?;
    Ok(graph)
}

/// The element type and dims a value's type gives (each `None` when not
/// given); a non-tensor type is an error.
fn value_type(model: &str, what: &str, v: &ValueInfoProto) -> Result<(Option<DType>, Option<Vec<Dim>>)> {
    let err = |m: String| model_err(model, Some(format!("{what} `{}`", v.name)), m);
    let Some(TypeProto { value, .. }) = &v.r#type else { return Ok((None, None)) };
    let t = match value {
        None => return Ok((None, None)),
        Some(TypeValue::TensorType(t)) => t,
        Some(TypeValue::SequenceType(_)) => return Err(err("sequence values are not supported".into())),
        Some(TypeValue::MapType(_)) => return Err(err("map values are not supported".into())),
        Some(TypeValue::OptionalType(_)) => return Err(err("optional values are not supported".into())),
        Some(TypeValue::SparseTensorType(_)) => return Err(err("sparse tensors are not supported".into())),
    };
    let dtype = match t.elem_type {
        0 => None,
        e => Some(dtype_of(e).ok_or_else(|| err(format!("element type {e} is not supported")))?),
    };
    let shape = t.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(DimensionValue::DimValue(n)) if *n >= 0 => Dim::Known(*n as usize),
                Some(DimensionValue::DimParam(p)) if !p.is_empty() => Dim::Sym(p.clone()),
                _ => Dim::Unknown,
            })
            .collect()
    });
    Ok((dtype, shape))
}

/// An attribute's value; the message of an error otherwise.
fn attr(model: &str, a: &AttributeProto) -> std::result::Result<Attr, String> {
    let what = format!("attribute `{}`", a.name);
    if !a.ref_attr_name.is_empty() {
        return Err(format!("{what} refers to a function's attribute, which only functions may"));
    }
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| format!("{what} is not UTF-8 text"));
    // IR 1 files leave the type 0 and set one field.
    let ty = match AttributeType::try_from(a.r#type) {
        Ok(AttributeType::Undefined) | Err(_) if a.r#type != 0 => {
            return Err(format!("{what} has an unknown type {}", a.r#type));
        }
        Ok(AttributeType::Undefined) | Err(_) => {
            if !a.ints.is_empty() {
                AttributeType::Ints
            } else if !a.floats.is_empty() {
                AttributeType::Floats
            } else if !a.strings.is_empty() {
                AttributeType::Strings
            } else if a.t.is_some() {
                AttributeType::Tensor
            } else if !a.s.is_empty() {
                AttributeType::String
            } else if a.f != 0.0 {
                AttributeType::Float
            } else {
                AttributeType::Int
            }
        }
        Ok(t) => t,
    };
    Ok(match ty {
        AttributeType::Float => Attr::Float(a.f),
        AttributeType::Int => Attr::Int(a.i),
        AttributeType::String => Attr::String(text(&a.s)?),
        AttributeType::Tensor => match &a.t {
            Some(t) => Attr::Tensor(Arc::new(tensor_data(model, t).map_err(|e| format!("{what}: {}", e))?)),
            None => return Err(format!("{what} is a tensor attribute without a tensor")),
        },
        AttributeType::Floats => Attr::Floats(a.floats.clone()),
        AttributeType::Ints => Attr::Ints(a.ints.clone()),
        AttributeType::Strings => {
            Attr::Strings(a.strings.iter().map(|s| text(s)).collect::<std::result::Result<_, _>>()?)
        }
        AttributeType::Graph | AttributeType::Graphs => {
            return Err(format!("{what} holds a graph (If, Loop, Scan), which texpr does not support"));
        }
        other => return Err(format!("{what} of type {other:?} is not supported")),
    })
}
