//! ONNX → graph: the small model's graph, and a model broken in each way
//! import checks — every error names the node, value or tensor.

use prost::Message;
use texpr_graph::{Attr, Dim};
use texpr_onnx::proto::*;
use texpr_onnx::{graph_from_bytes, to_graph};

mod common;
use common::*;

fn import_err(m: &ModelProto) -> String {
    to_graph("m.onnx", m).unwrap_err().to_string()
}

fn nodes(m: &mut ModelProto) -> &mut Vec<NodeProto> {
    &mut m.graph.as_mut().unwrap().node
}

#[test]
fn the_small_model_imports() {
    let g = graph_from_bytes("small.onnx", &small_model().encode_to_vec()).unwrap();
    assert_eq!((g.opset, g.nodes.len(), g.inputs.len(), g.outputs.len()), (13, 3, 1, 1));
    let x = g.value(g.inputs[0]);
    assert_eq!(x.shape.as_deref(), Some(&[Dim::Sym("N".into()), Dim::Known(3), Dim::Known(8), Dim::Known(8)][..]));
    let conv = &g.nodes[0];
    assert_eq!(conv.attrs.get("pads"), Some(&Attr::Ints(vec![1, 1, 1, 1])));
    assert_eq!(conv.attrs.get("auto_pad"), Some(&Attr::String("NOTSET".into())));
    let w = g.value(conv.inputs[1].unwrap());
    assert_eq!(w.constant.as_ref().map(|c| c.shape.clone()), Some(vec![4, 3, 3, 3]));
    assert_eq!(
        g.to_string(),
        "graph small.onnx (opset 13)
  input x: f32[N, 3, 8, 8]
  const w: f32[4, 3, 3, 3]
  const b: f32[1, 4, 1, 1]
  c = Conv(x, w) auto_pad=\"NOTSET\" pads=[1, 1, 1, 1]  # conv/1
  d = Add(c, b)
  y = Relu(d)
  output y: f32[N, 4, 8, 8]
"
    );
}

/// IR 3 models list initializers among the graph inputs: they are
/// constants, not inputs.
#[test]
fn initializers_listed_as_inputs_are_not_inputs() {
    let mut m = small_model();
    let g = m.graph.as_mut().unwrap();
    g.input.push(value_info("w", DataType::Float, &[Some(4), Some(3), Some(3), Some(3)]));
    let g = to_graph("m.onnx", &m).unwrap();
    assert_eq!(g.inputs.len(), 1);
}

#[test]
fn broken_models_are_errors_naming_the_node() {
    let mut m = small_model();
    nodes(&mut m)[1].input[0] = "nope".into();
    assert_eq!(
        import_err(&m),
        "m.onnx: the Add node computing `d`: reads `nope`, which no input, initializer or earlier node defines (nodes must be in topological order)"
    );

    let mut m = small_model();
    nodes(&mut m).swap(1, 2);
    assert!(import_err(&m).contains("the Relu node computing `y`: reads `d`"), "{}", import_err(&m));

    let mut m = small_model();
    nodes(&mut m)[2].output[0] = "c".into();
    assert!(import_err(&m).contains("computes `c`, which is already defined"), "{}", import_err(&m));

    let mut m = small_model();
    nodes(&mut m)[0].domain = "com.microsoft".into();
    assert_eq!(import_err(&m), "m.onnx: node `conv/1` (Conv): operator domain `com.microsoft` is not supported");

    let mut m = small_model();
    nodes(&mut m)[0].attribute.push(AttributeProto {
        name: "body".into(),
        r#type: AttributeType::Graph as i32,
        g: Some(GraphProto::default()),
        ..Default::default()
    });
    assert!(import_err(&m).contains("node `conv/1` (Conv): attribute `body` holds a graph"), "{}", import_err(&m));

    let mut m = small_model();
    nodes(&mut m)[0].attribute.push(AttributeProto { name: "pads".into(), r#type: 7, ..Default::default() });
    assert!(import_err(&m).contains("attribute `pads` is given twice"), "{}", import_err(&m));

    let mut m = small_model();
    nodes(&mut m)[0].attribute[1].s = vec![0xff, 0xfe];
    assert!(import_err(&m).contains("attribute `auto_pad` is not UTF-8 text"), "{}", import_err(&m));

    let mut m = small_model();
    m.graph.as_mut().unwrap().output[0].name = "z".into();
    assert_eq!(import_err(&m), "m.onnx: output `z`: is never computed");

    let mut m = small_model();
    m.graph.as_mut().unwrap().input[0].r#type = Some(TypeProto {
        value: Some(TypeValue::SequenceType(Box::new(SequenceTypeProto { elem_type: None }))),
        denotation: String::new(),
    });
    assert_eq!(import_err(&m), "m.onnx: input `x`: sequence values are not supported");

    let mut m = small_model();
    m.graph.as_mut().unwrap().initializer[0].float_data = vec![1.0];
    m.graph.as_mut().unwrap().initializer[0].raw_data.clear();
    assert!(import_err(&m).starts_with("m.onnx: tensor `w`: 1 value(s) in `float_data`"), "{}", import_err(&m));

    let mut m = small_model();
    m.opset_import[0].version = -3;
    assert!(import_err(&m).contains("operator set version -3"), "{}", import_err(&m));
}

/// Import of thousands of corrupted variants: truncations at every 97th
/// byte and random bit flips are `Ok` or `Err`, never a panic.
#[test]
fn corrupted_models_never_panic_on_import() {
    let bytes = small_model().encode_to_vec();
    let mut errors = 0;
    for cut in (0..bytes.len()).step_by(97) {
        errors += usize::from(graph_from_bytes("c.onnx", &bytes[..cut]).is_err());
    }
    let mut state = 0x2545f4914f6cdd1du64;
    for _ in 0..3000 {
        let mut b = bytes.clone();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bit = (state % (b.len() as u64 * 8)) as usize;
        b[bit / 8] ^= 1 << (bit % 8);
        if let Ok(g) = graph_from_bytes("c.onnx", &b) {
            let _ = g.to_string();
        } else {
            errors += 1;
        }
    }
    assert!(errors > 100, "{errors}");
}
