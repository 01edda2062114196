#!/usr/bin/env python3
"""Writes the ONNX backend test data that texpr's conformance tests read.

Usage: onnx_data.py OUT_DIR

- OUT_DIR/light/: the light models the `onnx` package ships
  (`light_*.onnx` with their `light_*_output_0.pb`).
- OUT_DIR/node/<case>/: every node test case that
  `onnx.backend.test.loader.load_node_model_tests()` yields, written as
  `model.onnx` and `test_data_set_<k>/input_<i>.pb`, `output_<i>.pb` (the
  1.2x wheels generate them in memory; ONNX's own runner writes them the
  same way).

Runs in the project's .venv (scripts/onnx-deps.sh installs `onnx` there).
"""
import os
import shutil
import sys

import onnx
from onnx import numpy_helper
from onnx.backend.test.loader import load_node_model_tests


def main():
    out = sys.argv[1]
    light_src = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    light = os.path.join(out, "light")
    os.makedirs(light, exist_ok=True)
    for f in sorted(os.listdir(light_src)):
        shutil.copy(os.path.join(light_src, f), os.path.join(light, f))
    node = os.path.join(out, "node")
    os.makedirs(node, exist_ok=True)
    n = 0
    for case in load_node_model_tests():
        d = os.path.join(node, case.name)
        os.makedirs(d, exist_ok=True)
        model = case.model
        if model is None and case.model_dir:
            model = onnx.load(os.path.join(case.model_dir, "model.onnx"))
        onnx.save(model, os.path.join(d, "model.onnx"))
        for k, (inputs, outputs) in enumerate(case.data_sets or []):
            s = os.path.join(d, f"test_data_set_{k}")
            os.makedirs(s, exist_ok=True)
            for kind, values in (("input", inputs), ("output", outputs)):
                for i, v in enumerate(values):
                    try:
                        t = numpy_helper.from_array(v)
                    except Exception:  # sequences, optionals: not tensors
                        continue
                    with open(os.path.join(s, f"{kind}_{i}.pb"), "wb") as fh:
                        fh.write(t.SerializeToString())
        n += 1
    with open(os.path.join(out, "VERSION"), "w") as fh:
        fh.write(f"onnx {onnx.__version__}, {n} node cases\n")
    print(f"onnx_data: {n} node cases and the light models in {out}")


if __name__ == "__main__":
    main()
