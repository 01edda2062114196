#!/usr/bin/env python3
"""Writes CNN-shaped ONNX models with seeded random weights, and
onnxruntime's outputs for a seeded random input: the numerics oracle of
tests/onnx_models.rs and the models of benches/models.py.

    python scripts/onnx_models.py OUT

writes OUT/<model>/model.onnx and OUT/<model>/test_data_set_0/{input_0,
output_0}.pb (ONNX TensorProtos, the layout of ONNX's own test data) for
resnet18, mobilenetv2, shufflenet (v2 1.0x) and squeezenet (1.1), each at
1x3x224x224, opset 13, batch norms unfolded (as exported for inference).
onnxruntime computes the outputs with its graph optimizations off (one
thread), so they are the operators' plain arithmetic.
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VERSION = "2"  # bump when a model changes


class Builder:
    def __init__(self, name, seed):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []
        self.k = 0

    def fresh(self, hint):
        self.k += 1
        return f"{hint}_{self.k}"

    def const(self, hint, arr):
        n = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(arr, n))
        return n

    def node(self, op, ins, hint=None, n_out=1, **attrs):
        outs = [self.fresh(hint or op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, ins, outs, name=outs[0], **attrs))
        return outs if n_out > 1 else outs[0]

    def conv(self, x, cin, cout, k, stride=1, group=1, bias=False):
        fan_in = cin // group * k * k
        w = self.rng.normal(0, np.sqrt(2.0 / fan_in), (cout, cin // group, k, k)).astype(np.float32)
        ins = [x, self.const("w", w)]
        if bias:
            ins.append(self.const("b", self.rng.normal(0, 0.05, cout).astype(np.float32)))
        p = k // 2
        return self.node("Conv", ins, "conv", kernel_shape=[k, k], strides=[stride, stride],
                         pads=[p, p, p, p], group=group)

    def bn(self, x, c):
        r = self.rng
        scale = r.uniform(0.5, 1.5, c).astype(np.float32)
        shift = r.normal(0, 0.1, c).astype(np.float32)
        mean = r.normal(0, 0.1, c).astype(np.float32)
        var = r.uniform(0.5, 1.5, c).astype(np.float32)
        ins = [x] + [self.const(h, a) for h, a in
                     [("scale", scale), ("shift", shift), ("mean", mean), ("var", var)]]
        return self.node("BatchNormalization", ins, "bn", epsilon=1e-5)

    def conv_bn(self, x, cin, cout, k, stride=1, group=1, act="relu"):
        y = self.bn(self.conv(x, cin, cout, k, stride, group), cout)
        if act == "relu":
            y = self.node("Relu", [y])
        elif act == "relu6":
            y = self.node("Clip", [y, self.const("lo", np.array(0, np.float32)),
                                   self.const("hi", np.array(6, np.float32))], "relu6")
        return y

    def head(self, x, c, classes=1000):
        y = self.node("GlobalAveragePool", [x], "gap")
        y = self.node("Flatten", [y], "flat", axis=1)
        w = self.rng.normal(0, np.sqrt(1.0 / c), (classes, c)).astype(np.float32)
        b = self.rng.normal(0, 0.01, classes).astype(np.float32)
        return self.node("Gemm", [y, self.const("fc_w", w), self.const("fc_b", b)], "fc", transB=1)

    def model(self, out, out_shape, size=224):
        g = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)],
            initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="texpr-models")
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def resnet18():
    b = Builder("resnet18", 18)
    x = b.conv_bn("input", 3, 64, 7, 2)
    x = b.node("MaxPool", [x], "pool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c = 64
    for stage, cout in enumerate([64, 128, 256, 512]):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            y = b.conv_bn(x, c, cout, 3, stride)
            y = b.conv_bn(y, cout, cout, 3, 1, act=None)
            skip = x if stride == 1 and c == cout else b.conv_bn(x, c, cout, 1, stride, act=None)
            x = b.node("Relu", [b.node("Add", [y, skip])])
            c = cout
    return b.model(b.head(x, 512), ["N", 1000])


def mobilenetv2():
    b = Builder("mobilenetv2", 2)
    x = b.conv_bn("input", 3, 32, 3, 2, act="relu6")
    c = 32
    for t, cout, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                          (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = c * t
            y = x if t == 1 else b.conv_bn(x, c, hidden, 1, act="relu6")
            y = b.conv_bn(y, hidden, hidden, 3, stride, group=hidden, act="relu6")
            y = b.conv_bn(y, hidden, cout, 1, act=None)
            x = b.node("Add", [x, y]) if stride == 1 and c == cout else y
            c = cout
    x = b.conv_bn(x, c, 1280, 1, act="relu6")
    return b.model(b.head(x, 1280), ["N", 1000])


def shufflenet():
    """ShuffleNet v2 1.0x: channel split, depthwise 3x3, channel shuffle
    (Reshape, 5-D Transpose, Reshape)."""
    b = Builder("shufflenet", 3)
    x = b.conv_bn("input", 3, 24, 3, 2)
    x = b.node("MaxPool", [x], "pool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c, hw = 24, 56

    def shuffle(y, ch, hw):
        y = b.node("Reshape", [y, b.const("s5", np.array([-1, 2, ch // 2, hw, hw], np.int64))], "r5")
        y = b.node("Transpose", [y], "shuf", perm=[0, 2, 1, 3, 4])
        return b.node("Reshape", [y, b.const("s4", np.array([-1, ch, hw, hw], np.int64))], "r4")

    for cout, repeats in [(116, 4), (232, 8), (464, 4)]:
        half = cout // 2
        for i in range(repeats):
            if i == 0:
                hw //= 2
                left = b.conv_bn(b.conv_bn(x, c, c, 3, 2, group=c, act=None), c, half, 1)
                right = b.conv_bn(x, c, half, 1)
                right = b.conv_bn(right, half, half, 3, 2, group=half, act=None)
                right = b.conv_bn(right, half, half, 1)
            else:
                left, right = b.node("Split", [x, b.const("split", np.array([half, half], np.int64))],
                                     "split", n_out=2, axis=1)
                right = b.conv_bn(right, half, half, 1)
                right = b.conv_bn(right, half, half, 3, 1, group=half, act=None)
                right = b.conv_bn(right, half, half, 1)
            x = shuffle(b.node("Concat", [left, right], "cat", axis=1), cout, hw)
            c = cout
    x = b.conv_bn(x, c, 1024, 1)
    return b.model(b.head(x, 1024), ["N", 1000])


def squeezenet():
    """SqueezeNet 1.1: fire modules (squeeze 1x1, expand 1x1 and 3x3,
    concatenated), a 1x1 classifier convolution, global average pool."""
    b = Builder("squeezenet", 11)
    x = b.node("Relu", [b.conv("input", 3, 64, 3, 2, bias=True)])
    x = b.node("MaxPool", [x], "pool", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    c = 64

    def fire(x, cin, s, e):
        sq = b.node("Relu", [b.conv(x, cin, s, 1, bias=True)])
        e1 = b.node("Relu", [b.conv(sq, s, e, 1, bias=True)])
        e3 = b.node("Relu", [b.conv(sq, s, e, 3, bias=True)])
        return b.node("Concat", [e1, e3], "cat", axis=1)

    for i, (s, e) in enumerate([(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256),
                                (64, 256)]):
        x = fire(x, c, s, e)
        c = 2 * e
        if i in (1, 3):
            x = b.node("MaxPool", [x], "pool", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    x = b.node("Relu", [b.conv(x, c, 1000, 1, bias=True)])
    x = b.node("GlobalAveragePool", [x], "gap")
    x = b.node("Flatten", [x], "flat", axis=1)
    return b.model(b.node("Softmax", [x], "prob", axis=1), ["N", 1000])


def tiny():
    """A 1x3x32x32 network with every kind of node of the four above (for
    the corrupted-model test: small enough to compile and run thousands of
    variants): a conv with batch norm and ReLU6, a residual block, a
    depthwise conv, a channel split, shuffle and concatenation, a fire
    module, max pooling, the classifier head and a softmax."""
    b = Builder("tiny", 32)
    x = b.conv_bn("input", 3, 8, 3, 2, act="relu6")
    y = b.conv_bn(x, 8, 8, 3, act=None)
    x = b.node("Relu", [b.node("Add", [y, x])])
    x = b.conv_bn(x, 8, 8, 3, 1, group=8, act=None)
    left, right = b.node("Split", [x, b.const("split", np.array([4, 4], np.int64))], "split", n_out=2, axis=1)
    right = b.conv_bn(right, 4, 4, 1)
    x = b.node("Concat", [left, right], "cat", axis=1)
    x = b.node("Reshape", [x, b.const("s5", np.array([-1, 2, 4, 16, 16], np.int64))], "r5")
    x = b.node("Transpose", [x], "shuf", perm=[0, 2, 1, 3, 4])
    x = b.node("Reshape", [x, b.const("s4", np.array([-1, 8, 16, 16], np.int64))], "r4")
    x = b.node("MaxPool", [x], "pool", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    sq = b.node("Relu", [b.conv(x, 8, 4, 1, bias=True)])
    x = b.node("Concat", [b.node("Relu", [b.conv(sq, 4, 8, 1, bias=True)]),
                          b.node("Relu", [b.conv(sq, 4, 8, 3, bias=True)])], "cat", axis=1)
    x = b.node("Softmax", [b.head(x, 16, classes=10)], "prob", axis=1)
    return b.model(x, ["N", 10], size=32)


MODELS = {"resnet18": resnet18, "mobilenetv2": mobilenetv2, "shufflenet": shufflenet, "squeezenet": squeezenet,
          "tiny": tiny}


def main():
    import onnxruntime as ort

    out = sys.argv[1]
    stamp = os.path.join(out, "VERSION")
    want = f"models {VERSION}, onnxruntime {ort.__version__}\n"
    if os.path.exists(stamp) and open(stamp).read() == want:
        return
    for name, build in MODELS.items():
        m = build()
        d = os.path.join(out, name)
        os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
        onnx.save(m, os.path.join(d, "model.onnx"))
        size = m.graph.input[0].type.tensor_type.shape.dim[2].dim_value
        x = np.random.default_rng(7).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.intra_op_num_threads = 1
        s = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        (y,) = s.run(None, {"input": x})
        for k, (arr, n) in enumerate([(x, "input"), (y, m.graph.output[0].name)]):
            kind = "input" if k == 0 else "output"
            t = numpy_helper.from_array(arr, n)
            with open(os.path.join(d, "test_data_set_0", f"{kind}_0.pb"), "wb") as f:
                f.write(t.SerializeToString())
        print(f"{name}: {len(m.graph.node)} nodes, output {y.shape}")
    with open(stamp, "w") as f:
        f.write(want)


if __name__ == "__main__":
    main()
