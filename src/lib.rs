//! texpr: a tensor compiler embedded in Rust.
pub use texpr_dsl::*;
