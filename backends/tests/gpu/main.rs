//! The GPU backends' tests: golden sources, OpenCL runs on PoCL against the
//! interpreter, NVRTC compiles of every generated CUDA kernel, SPEC §2
//! semantics on edge values, random differential tests, and the errors of
//! missing devices.
//!
//! Run through `scripts/test.sh` (which sources `scripts/gpu-deps.sh`);
//! under `CI=true` a test that needs OpenCL or NVRTC fails when it is
//! missing. Bless golden sources with `INSTA_UPDATE=always`.

mod common;
mod differential;
mod golden;
mod nvrtc;
mod semantics;
mod spec;
mod unavailable;
