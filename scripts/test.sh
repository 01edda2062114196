#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs what the
# tests need (PoCL for OpenCL, NVRTC for CUDA compile checks; see
# scripts/gpu-deps.sh) and the ONNX conformance data (scripts/onnx-deps.sh),
# checks formatting (`cargo fmt --check`) and lints
# (`cargo clippy`, warnings are errors), checks the build without the GPU
# runtimes' features, and runs `cargo test --workspace`.
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# The ONNX conformance data (the `onnx` package's backend test cases).
# shellcheck source=/dev/null
source scripts/onnx-deps.sh

if [ -f scripts/gpu-deps.sh ]; then
    # Installs what is missing and exports LD_LIBRARY_PATH for the tests.
    # shellcheck source=/dev/null
    source scripts/gpu-deps.sh
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# The facade builds without the GPU runtimes (features `opencl`, `cuda`).
cargo check -p texpr --no-default-features
cargo test --workspace "$@"
