//! Code generation errors: every failure inside the backend is a value —
//! never a panic. [`crate::compile`] turns one into `Error::Internal` when
//! texpr's own IR broke an invariant the generator relies on (a bug in
//! texpr: [`cg_err`]), and into `Error::Backend` when Cranelift refused
//! something ([`cranelift_err`]).

/// A code generation failure.
#[derive(Debug, Clone)]
pub(crate) struct CgError {
    pub message: String,
    /// An invariant of the lowered IR did not hold (a texpr bug).
    pub internal: bool,
}

/// A `Result` with [`CgError`].
pub(crate) type CgResult<T> = Result<T, CgError>;

/// An invariant of the lowered IR that did not hold.
pub(crate) fn cg_err(msg: impl Into<String>) -> CgError {
    CgError { message: msg.into(), internal: true }
}

/// Cranelift refused to declare, compile, define or finalize something.
pub(crate) fn cranelift_err(msg: impl Into<String>) -> CgError {
    CgError { message: msg.into(), internal: false }
}
