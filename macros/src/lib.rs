//! `tensor_expr!`: texpr's definitions and schedules, written in Rust
//! source and checked at compile time.
//!
//! The crate is split the way the expansion flows:
//!
//! ```text
//! tokens ──parse──▶ ast::Block ──check──▶ (errors at the user's spans)
//!                        └──────generate──▶ fn NAME + mod NAME { run_into, on, Handle, kernel }
//! ```
//!
//! - `parse`: syn-based parser into an AST with a span on every node.
//! - `check`: builds the definition and schedules with `texpr_dsl` at
//!   expansion time — the same calls the generated code makes at run time —
//!   and maps the core's errors (which carry [`Origin`](texpr_dsl::Origin)s)
//!   back to spans. Type rules live in the core only.
//! - `generate`: the run-time builder code and the public API (SPEC §4).
//! - `paths`: every path to `texpr` that generated code uses.
//!
//! Debugging: `TEXPR_MACRO_DEBUG=1` (or a comma-separated list of function
//! names) prints each expansion to stderr at build time, formatted with
//! rustfmt when available; `#[debug]` on a function does the same for it.
//! The language and the generated API are documented in `docs/language.md`.

mod check;
mod error;
mod generate;
mod parse;
mod paths;

/// Defines tensor operators and their schedules.
///
/// ```text
/// use texpr::prelude::*;
///
/// tensor_expr! {
///     /// Dense matrix product.
///     pub fn matmul(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
///         let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
///         c
///     }
///     schedule for cpu {
///         let (io, jo, ii, ji) = c.tile(i, j, 32, 64);
///         c.vectorize(ji);
///     }
/// }
///
/// let c = matmul(&a, &b)?;            // default target
/// matmul::run_into(&a, &b, &mut c)?;  // existing output
/// let k = matmul::kernel();           // definition + schedules
/// ```
///
/// See `docs/language.md` for the grammar, the type rules, the schedule
/// primitives and the generated API.
#[proc_macro]
pub fn tensor_expr(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    generate::expand(input.into()).into()
}
