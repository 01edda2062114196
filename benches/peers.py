#!/usr/bin/env python3
"""Times the benchmark kernels with numpy and onnxruntime (the non-Rust
peers of benches/kernels.rs; see docs/PERFORMANCE.md).

Run from the repository root:  python3 benches/peers.py
It creates .venv (ignored by git) with numpy and onnxruntime on first use,
then re-executes itself inside it. Prints one line per kernel: median time
and the same throughput unit as the criterion bench.
"""

import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv")
PY = os.path.join(VENV, "bin", "python")


def ensure_venv():
    if os.path.abspath(sys.prefix) == os.path.abspath(VENV):
        return
    if not os.path.exists(PY):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([PY, "-m", "pip", "install", "--quiet", "numpy", "onnxruntime", "onnx"])
    os.execv(PY, [PY] + sys.argv)


def median_time(f, reps):
    f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2]


def report(name, t, amount, unit):
    print(f"{name:40s} {t * 1e3:9.3f} ms  {amount / t / 1e9:8.2f} {unit}")


def ort_session(build):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    model = build(helper, TensorProto)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = os.cpu_count() or 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def main():
    ensure_venv()
    import numpy as np

    rng = np.random.default_rng(0)
    n = 1024
    a = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    b = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    report("numpy matmul 1024", median_time(lambda: a @ b, 20), 2 * n**3, "GFLOP/s")

    m = 16 << 20
    x, y, z = (rng.uniform(-1, 1, m).astype(np.float32) for _ in range(3))
    out = np.empty_like(x)

    def fused():
        np.multiply(x, y, out=out)
        np.add(out, z, out=out)
        np.maximum(out, 0, out=out)

    report("numpy fused max(a*b+c,0) 16M", median_time(fused, 20), 16 * m, "GB/s")

    s = rng.uniform(-1, 1, (4096, 1024)).astype(np.float32)

    def softmax():
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    report("numpy softmax 4096x1024", median_time(softmax, 20), 8 * s.size, "GB/s")

    def mm(h, T):
        g = h.make_graph([h.make_node("MatMul", ["a", "b"], ["c"])], "mm",
                         [h.make_tensor_value_info("a", T.FLOAT, [n, n]), h.make_tensor_value_info("b", T.FLOAT, [n, n])],
                         [h.make_tensor_value_info("c", T.FLOAT, [n, n])])
        return h.make_model(g, opset_imports=[h.make_opsetid("", 17)])

    sess = ort_session(mm)
    report("onnxruntime matmul 1024", median_time(lambda: sess.run(None, {"a": a, "b": b}), 20), 2 * n**3, "GFLOP/s")

    def conv(c_in, c_out, group):
        def build(h, T):
            w = rng.uniform(-1, 1, (c_out, c_in // group, 3, 3)).astype(np.float32)
            init = h.make_tensor("w", T.FLOAT, w.shape, w.flatten().tolist())
            node = h.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], group=group)
            g = h.make_graph([node], "conv", [h.make_tensor_value_info("x", T.FLOAT, [1, c_in, 56, 56])],
                             [h.make_tensor_value_info("y", T.FLOAT, [1, c_out, 56, 56])], initializer=[init])
            return h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
        return build

    def softmax_model(h, T):
        g = h.make_graph([h.make_node("Softmax", ["x"], ["y"], axis=-1)], "softmax",
                         [h.make_tensor_value_info("x", T.FLOAT, [4096, 1024])],
                         [h.make_tensor_value_info("y", T.FLOAT, [4096, 1024])])
        return h.make_model(g, opset_imports=[h.make_opsetid("", 17)])

    sess = ort_session(softmax_model)
    report("onnxruntime softmax 4096x1024", median_time(lambda: sess.run(None, {"x": s}), 20), 8 * s.size, "GB/s")

    def fused_model(size):
        def build(h, T):
            nodes = [h.make_node("Mul", ["a", "b"], ["p"]), h.make_node("Add", ["p", "c"], ["q"]), h.make_node("Relu", ["q"], ["y"])]
            vi = [h.make_tensor_value_info(v, T.FLOAT, [size]) for v in ("a", "b", "c")]
            g = h.make_graph(nodes, "fused", vi, [h.make_tensor_value_info("y", T.FLOAT, [size])])
            return h.make_model(g, opset_imports=[h.make_opsetid("", 17)])

        return build

    sess = ort_session(fused_model(m))
    report("onnxruntime fused max(a*b+c,0) 16M", median_time(lambda: sess.run(None, {"a": x, "b": y, "c": z}), 20), 16 * m, "GB/s")

    # One call on 1024 elements (the `call_1k` bench group): per-call cost.
    k = 1024
    xs, ys, zs = x[:k].copy(), y[:k].copy(), z[:k].copy()
    outs = np.empty_like(xs)

    def fused_small():
        np.multiply(xs, ys, out=outs)
        np.add(outs, zs, out=outs)
        np.maximum(outs, 0, out=outs)

    t = median_time(fused_small, 2000)
    print(f"{'numpy fused 1024 elements (one call)':40s} {t * 1e6:9.2f} us")

    sess = ort_session(fused_model(k))
    t = median_time(lambda: sess.run(None, {"a": xs, "b": ys, "c": zs}), 2000)
    print(f"{'onnxruntime fused 1024 elements (one call)':40s} {t * 1e6:9.2f} us")

    xd = rng.uniform(-1, 1, (1, 128, 56, 56)).astype(np.float32)
    sess = ort_session(conv(128, 128, 128))
    report("onnxruntime depthwise 1x128x56x56", median_time(lambda: sess.run(None, {"x": xd}), 50), 2 * 9 * 128 * 56 * 56, "GFLOP/s")
    xc = rng.uniform(-1, 1, (1, 64, 56, 56)).astype(np.float32)
    sess = ort_session(conv(64, 64, 1))
    report("onnxruntime conv2d 1x64x56x56->64", median_time(lambda: sess.run(None, {"x": xc}), 30), 2 * 9 * 64 * 64 * 56 * 56, "GFLOP/s")


if __name__ == "__main__":
    main()
