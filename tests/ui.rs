//! trybuild UI tests of `tensor_expr!`: `ui/pass/*.rs` must compile and run,
//! `ui/fail/*.rs` must fail with exactly the diagnostics in the `.stderr`
//! file next to each.
//!
//! After an intended change of a message or span, bless the snapshots:
//!
//! ```text
//! TRYBUILD=overwrite cargo test --test ui
//! ```
//!
//! and review the `.stderr` diffs before committing.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
