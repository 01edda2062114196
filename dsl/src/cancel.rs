//! Cooperative cancellation of lowering.
//!
//! A caller that gives up on lowering (the `tensor_expr!` checker after its
//! timeout) cannot kill the thread doing it; it sets the [`Cancel`] flag it
//! installed on that thread instead. The prover then answers "not proven"
//! at once and lowering stops at the next pass with an error, so the thread
//! ends soon instead of running on inside rustc.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag shared between the thread that lowers and the one that may
/// cancel it.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag not set.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks the thread that installed this flag to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Makes this thread's lowering watch the flag (for the rest of the
    /// thread's life).
    pub fn install(&self) {
        CURRENT.with(|c| *c.borrow_mut() = Some(self.clone()));
    }
}

std::thread_local! {
    static CURRENT: RefCell<Option<Cancel>> = const { RefCell::new(None) };
}

/// `true` once the flag installed on this thread was set.
pub fn cancelled() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().is_some_and(|c| c.0.load(Ordering::Relaxed)))
}
