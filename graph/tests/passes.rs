//! The graph passes, each on a graph built for it: what the graph looks
//! like after them (snapshots of its printout; bless with
//! `INSTA_UPDATE=always cargo test -p texpr-graph`) and that it computes
//! what the unoptimized graph computes (both run on the interpreter).

use std::collections::BTreeMap;
use std::sync::Arc;

use texpr_dsl::interp::Interpreter;
use texpr_dsl::{AnyTensor, Compiled, DType, Program, Target, Tensor};
use texpr_graph::{Attr, CompileFn, Constant, Dim, Executor, Graph, Node, Options, ValueDef, ValueId};

fn interp() -> CompileFn {
    Arc::new(|p: Program, t: Target| {
        let l = p.lower(t)?;
        let exe = Box::new(Interpreter::new(l.flat.clone()));
        Ok(Arc::new(Compiled::new(Arc::new(p.func().clone()), Arc::new(l), exe)))
    })
}

/// Builds graphs by name.
struct G(Graph);

impl G {
    fn new() -> G {
        G(Graph::new("test", 13))
    }

    fn value(&mut self, name: &str, dtype: DType, shape: &[usize], c: Option<Vec<u8>>) -> ValueId {
        self.0.add_value(ValueDef {
            name: name.into(),
            dtype: Some(dtype),
            shape: Some(shape.iter().map(|d| Dim::Known(*d)).collect()),
            producer: None,
            constant: c.map(|bytes| Arc::new(Constant { dtype, shape: shape.to_vec(), bytes })),
        })
    }

    fn input(&mut self, name: &str, shape: &[usize]) -> ValueId {
        let v = self.value(name, DType::F32, shape, None);
        self.0.inputs.push(v);
        v
    }

    fn f32s(&mut self, name: &str, shape: &[usize], data: &[f32]) -> ValueId {
        self.value(name, DType::F32, shape, Some(data.iter().flat_map(|x| x.to_le_bytes()).collect()))
    }

    fn i64s(&mut self, name: &str, data: &[i64]) -> ValueId {
        self.value(name, DType::I64, &[data.len()], Some(data.iter().flat_map(|x| x.to_le_bytes()).collect()))
    }

    fn node(&mut self, op: &str, ins: &[ValueId], out: &str, attrs: &[(&str, Attr)]) -> ValueId {
        let o =
            self.0.add_value(ValueDef { name: out.into(), dtype: None, shape: None, producer: None, constant: None });
        self.0.add_node(Node {
            name: out.into(),
            op: op.into(),
            inputs: ins.iter().map(|i| Some(*i)).collect(),
            outputs: vec![o],
            attrs: attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<BTreeMap<_, _>>(),
            ..Default::default()
        });
        o
    }

    fn output(&mut self, v: ValueId) {
        self.0.outputs.push(v);
    }
}

fn ramp(n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) * scale).collect()
}

/// Runs `g` optimized and not on the interpreter: the optimized graph's
/// printout, after checking both agree (|a - b| <= 1e-5 (1 + |b|)).
fn check(g: &Graph, inputs: &[AnyTensor]) -> String {
    let plain = Executor::new(g.clone(), Options::new(Target::Interp).optimize(false), interp()).unwrap();
    let opt = Executor::new(g.clone(), Options::new(Target::Interp), interp()).unwrap();
    // The second run uses the memory plan the first made.
    let (first, a, b) = (opt.run(inputs).unwrap(), opt.run(inputs).unwrap(), plain.run(inputs).unwrap());
    assert_eq!(first, a, "the planned run differs from the measuring one");
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.dtype(), x.shape()), (y.dtype(), y.shape()));
        for i in 0..y.len() {
            let (p, q) = (x.get(i).unwrap().as_f64(), y.get(i).unwrap().as_f64());
            assert!((p - q).abs() <= 1e-5 * (1.0 + q.abs()), "element {i}: {p} optimized, {q} not");
        }
    }
    opt.graph().to_string()
}

fn x(shape: &[usize]) -> AnyTensor {
    let n = shape.iter().product();
    AnyTensor::from(Tensor::from_vec(shape, ramp(n, 0.25)).unwrap())
}

/// `Shape → Gather → Unsqueeze → Concat → Reshape` of a known shape folds
/// to a `Reshape` by a constant.
#[test]
fn shape_arithmetic_folds() {
    let mut g = G::new();
    let a = g.input("x", &[2, 3, 4]);
    let s = g.node("Shape", &[a], "s", &[]);
    let zero = g.value("zero", DType::I64, &[], Some(0i64.to_le_bytes().to_vec()));
    let n = g.node("Gather", &[s, zero], "n", &[]);
    let axes = g.i64s("axes", &[0]);
    let n1 = g.node("Unsqueeze", &[n, axes], "n1", &[]);
    let rest = g.i64s("rest", &[-1]);
    let shape = g.node("Concat", &[n1, rest], "shape", &[("axis", Attr::Int(0))]);
    let r = g.node("Reshape", &[a, shape], "r", &[]);
    let y = g.node("Relu", &[r], "y", &[]);
    g.output(y);
    insta::assert_snapshot!(check(&g.0, &[x(&[2, 3, 4])]));
}

/// Equal constants are one, identical nodes compute once, and what nothing
/// reads is gone.
#[test]
fn common_and_dead_nodes_go() {
    let mut g = G::new();
    let a = g.input("x", &[4, 5]);
    let c1 = g.f32s("c1", &[5], &ramp(5, 1.0));
    let c2 = g.f32s("c2", &[5], &ramp(5, 1.0));
    let p = g.node("Add", &[a, c1], "p", &[]);
    let q = g.node("Add", &[a, c2], "q", &[]);
    let _unused = g.node("Exp", &[a], "unused", &[]);
    let y = g.node("Mul", &[p, q], "y", &[]);
    g.output(y);
    insta::assert_snapshot!(check(&g.0, &[x(&[4, 5])]));
}

/// A convolution's batch norm folds into its weights; its bias, a
/// residual add and the activation fuse with it into one kernel.
#[test]
fn conv_batch_norm_residual_relu_is_one_kernel() {
    let mut g = G::new();
    let a = g.input("x", &[1, 4, 6, 7]);
    let w = g.f32s("w", &[4, 4, 3, 3], &ramp(144, 0.05));
    let b = g.f32s("b", &[4], &[0.1, -0.2, 0.3, 0.0]);
    let pads = ("pads", Attr::Ints(vec![1, 1, 1, 1]));
    let c = g.node("Conv", &[a, w, b], "conv", &[pads]);
    let scale = g.f32s("scale", &[4], &[1.0, 0.5, 2.0, 1.5]);
    let shift = g.f32s("shift", &[4], &[0.0, 0.1, -0.1, 0.2]);
    let mean = g.f32s("mean", &[4], &[0.05, -0.05, 0.0, 0.1]);
    let var = g.f32s("var", &[4], &[1.0, 0.25, 4.0, 0.5]);
    let bn = g.node("BatchNormalization", &[c, scale, shift, mean, var], "bn", &[]);
    let sum = g.node("Add", &[bn, a], "sum", &[]);
    let y = g.node("Relu", &[sum], "y", &[]);
    g.output(y);
    insta::assert_snapshot!(check(&g.0, &[x(&[1, 4, 6, 7])]));
}

/// `x · sigmoid(x)` (x read twice inside the group) fuses with the matrix
/// product; a value read by a node outside the group (the softmax) ends
/// the group there, and the nodes after it are a group of their own.
#[test]
fn elementwise_chains_fuse_up_to_shared_values() {
    let mut g = G::new();
    let a = g.input("x", &[3, 8]);
    let m = g.f32s("m", &[3, 8], &ramp(24, 0.5));
    let wt = g.f32s("wt", &[8, 8], &ramp(64, 0.1));
    let t = g.node("MatMul", &[a, wt], "t", &[]);
    let s = g.node("Sigmoid", &[t], "s", &[]);
    let swish = g.node("Mul", &[t, s], "swish", &[]);
    let shared = g.node("Add", &[swish, m], "shared", &[]);
    let e = g.node("Exp", &[shared], "e", &[]);
    let n = g.node("Neg", &[shared], "n", &[]);
    let y = g.node("Sub", &[e, n], "y", &[]);
    let sm = g.node("Softmax", &[shared], "sm", &[]);
    g.output(y);
    g.output(sm);
    insta::assert_snapshot!(check(&g.0, &[x(&[3, 8])]));
}

/// With the passes off, every node is its own kernel and the graph is the
/// imported one.
#[test]
fn optimize_false_keeps_the_graph() {
    let mut g = G::new();
    let a = g.input("x", &[2, 2]);
    let r = g.node("Relu", &[a], "r", &[]);
    let y = g.node("Neg", &[r], "y", &[]);
    g.output(y);
    let plain = Executor::new(g.0.clone(), Options::new(Target::Interp).optimize(false), interp()).unwrap();
    assert_eq!(plain.graph().nodes.len(), 2);
    let opt = Executor::new(g.0.clone(), Options::new(Target::Interp), interp()).unwrap();
    assert_eq!(opt.graph().nodes.len(), 1);
    assert!(opt.graph().nodes[0].is_fused());
}

/// A fully connected layer's `[N, K]` weights are stored transposed once
/// (`transB` becomes 0), and its bias add and activation fuse with it.
#[test]
fn gemm_weights_are_transposed_at_compile_time() {
    let mut g = G::new();
    let a = g.input("x", &[2, 6]);
    let w = g.f32s("w", &[5, 6], &ramp(30, 0.2));
    let b = g.f32s("b", &[5], &ramp(5, 0.1));
    let fc = g.node("Gemm", &[a, w, b], "fc", &[("transB", Attr::Int(1))]);
    let y = g.node("Relu", &[fc], "y", &[]);
    g.output(y);
    insta::assert_snapshot!(check(&g.0, &[x(&[2, 6])]));
}
