#!/usr/bin/env python3
"""The model benchmark: texpr against onnxruntime on the same ONNX files in
the same run (see docs/PERFORMANCE.md, "Models").

Run from the repository root:  python3 benches/models.py [--runs N]

It re-executes itself in the project's .venv (scripts/onnx-deps.sh makes
it, with onnx and onnxruntime), writes the CNN-shaped models
(scripts/onnx_models.py) if missing, builds the `texpr` command in release
mode, and for each model prints, at 1 and 2 threads: texpr's median and p90
latency (`texpr run --bench`, threads by RAYON_NUM_THREADS), onnxruntime's
(all graph optimizations, intra-op threads), their ratio; the time from
file to first result (texpr: load + compile + first run, which compiles
the kernels; onnxruntime: session creation + first run); texpr's arena
against its unshared intermediate bytes; and texpr's five slowest kernels.
light_resnet50 (the onnx package's test model, if scripts/onnx-deps.sh
wrote it) is timed from file to first result too.
"""

import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.path.join(ROOT, ".venv", "bin", "python")
MODELS = os.path.join(ROOT, "target", "onnx-models")
TEXPR = os.path.join(ROOT, "target", "release", "texpr")


def ensure_venv():
    if os.path.abspath(sys.prefix) == os.path.abspath(os.path.join(ROOT, ".venv")):
        return
    if not os.path.exists(PY):
        subprocess.check_call(["bash", "-c", f"source '{ROOT}/scripts/onnx-deps.sh'"])
    os.execv(PY, [PY, "-I"] + sys.argv)


def ort_times(path, x, threads, runs):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    t = time.perf_counter()
    s = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    s.run(None, {name: x})
    first = time.perf_counter() - t
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        s.run(None, {name: x})
        ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2] * 1e3, ts[int((len(ts) - 1) * 0.9)] * 1e3, first * 1e3


def texpr_run(path, threads, args):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run([TEXPR, "run", path] + args, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"texpr run {path}: {out.stderr}")
    return out.stdout


def texpr_times(path, threads, runs):
    text = texpr_run(path, threads, ["--bench", str(runs)])
    m = re.search(r"loaded in ([\d.]+) ms, compiled for \w+ in ([\d.]+) ms, first run \(kernels compiled\) ([\d.]+) ms", text)
    b = re.search(r"median ([\d.]+) ms, p90 ([\d.]+) ms", text)
    mem = re.search(r"in a ([\d.]+) MiB arena \(([\d.]+) MiB without sharing\)", text)
    first = sum(float(v) for v in m.groups())
    return float(b.group(1)), float(b.group(2)), first, mem.groups() if mem else ("?", "?")


def main():
    ensure_venv()
    import numpy as np

    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 30
    subprocess.check_call([sys.executable, "-I", os.path.join(ROOT, "scripts", "onnx_models.py"), MODELS])
    subprocess.check_call(["cargo", "build", "--release", "-q", "-p", "texpr-cli"], cwd=ROOT)
    import onnxruntime

    print(f"onnxruntime {onnxruntime.__version__}, {os.cpu_count()} CPUs; median (p90) ms over {runs} runs")
    print(f"{'model':12s} {'thr':>3s} {'texpr':>16s} {'onnxruntime':>16s} {'ratio':>6s} "
          f"{'texpr 1st':>10s} {'ort 1st':>8s} {'arena/unshared MiB':>19s}")
    slow = {}
    for name in ["resnet18", "mobilenetv2", "shufflenet", "squeezenet"]:
        path = os.path.join(MODELS, name, "model.onnx")
        x = np.random.default_rng(7).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32)
        for threads in [1, 2]:
            tm, tp, tfirst, (arena, unshared) = texpr_times(path, threads, runs)
            om, op, ofirst = ort_times(path, x, threads, runs)
            print(f"{name:12s} {threads:3d} {tm:8.2f} ({tp:6.2f}) {om:8.2f} ({op:6.2f}) {tm / om:6.2f} "
                  f"{tfirst:10.1f} {ofirst:8.1f} {arena:>9s}/{unshared:>9s}")
        prof = texpr_run(path, 2, ["--profile"])
        slow[name] = [l.strip() for l in prof.splitlines() if re.match(r"\s+[\d.]+ ms", l)][:5]
    light = os.path.join(ROOT, "target", "onnx-data", "light", "light_resnet50.onnx")
    if os.path.exists(light):
        x = np.arange(3 * 224 * 224, dtype=np.float32).reshape(1, 3, 224, 224) / (3 * 224 * 224)
        tm, _, tfirst, _ = texpr_times(light, 2, 3)
        om, _, ofirst = ort_times(light, x, 2, 3)
        print(f"light_resnet50 (2 threads): file to first result: texpr {tfirst:.1f} ms, onnxruntime {ofirst:.1f} ms; "
              f"latency texpr {tm:.1f} ms, onnxruntime {om:.1f} ms")
    for name, lines in slow.items():
        print(f"{name}: slowest kernels (2 threads):")
        for l in lines:
            print(f"    {l}")


if __name__ == "__main__":
    main()
