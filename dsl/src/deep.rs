//! Deep expressions on a deep stack.
//!
//! Type checking, simplification, lowering, the prover, the backends and
//! the interpreter walk expressions recursively. A definition written as a
//! sum of thousands of terms nests that deep; on a thread's default stack
//! (8 MiB for `main`, 2 MiB for spawned threads) that overflows and aborts
//! the process. Entry points measure the depth (without recursion) and,
//! past [`SHALLOW`], run the work on a scoped thread whose stack is
//! [`STACK`] bytes of address space (pages a walk never touches are never
//! committed). Shallow definitions — nearly all — pay nothing.

use crate::error::{Error, InternalError, Result};
use crate::expr::Expr;

/// Depths up to this run on the caller's stack.
pub const SHALLOW: usize = 128;

/// The stack of a thread for deep expressions.
pub const STACK: usize = 1 << 30;

thread_local! {
    /// This thread was started by [`with_stack`]: nested entry points run
    /// on it directly.
    static ON_DEEP_STACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` on the caller's thread if `depth` is shallow (or the caller
/// already runs on a deep stack), else on a scoped thread with a
/// [`STACK`]-byte stack; a panic in `f` is resumed here.
pub fn with_stack<T: Send>(depth: usize, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    if depth <= SHALLOW || ON_DEEP_STACK.with(|d| d.get()) {
        return f();
    }
    let f = move || {
        ON_DEEP_STACK.with(|d| d.set(true));
        f()
    };
    std::thread::scope(|s| {
        match std::thread::Builder::new().name("texpr-deep".into()).stack_size(STACK).spawn_scoped(s, f) {
            Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(e) => Err(Error::Internal(InternalError::new(
                "texpr",
                format!("cannot start a thread for an expression {depth} levels deep: {e}"),
            ))),
        }
    })
}

/// The nesting depth of an expression, without recursion.
pub fn depth(e: &Expr) -> usize {
    let mut deepest = 0;
    let mut todo = vec![(e, 1usize)];
    while let Some((e, d)) = todo.pop() {
        deepest = deepest.max(d);
        todo.extend(e.children().into_iter().map(|c| (c, d + 1)));
    }
    deepest
}
