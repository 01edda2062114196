//! The GPU backends' tests: golden sources, OpenCL runs on PoCL against the
//! interpreter, NVRTC compiles of every generated CUDA kernel, SPEC §2
//! semantics on edge values, random differential tests, and the errors of
//! missing devices.
//!
//! Run through `scripts/test.sh` (which sources `scripts/gpu-deps.sh`);
//! under `CI=true` a test that needs OpenCL or NVRTC fails when it is
//! missing. Bless golden sources with `INSTA_UPDATE=always`. The tests that
//! need a CUDA GPU are `#[ignore]`d: on a machine with one, run
//! `cargo test -p texpr-backends --test gpu -- --include-ignored`.

mod common;
mod cuda;
mod differential;
mod golden;
mod nvrtc;
mod semantics;
mod spec;
mod unavailable;
