//! Code generation errors: every failure inside the backend is a message
//! that [`crate::compile`] turns into `Error::Backend` (Cranelift refused
//! something) — never a panic.

/// A code generation failure.
#[derive(Debug, Clone)]
pub(crate) struct CgError(pub String);

/// A `Result` with [`CgError`].
pub(crate) type CgResult<T> = Result<T, CgError>;

/// Builds a [`CgError`].
pub(crate) fn cg_err(msg: impl Into<String>) -> CgError {
    CgError(msg.into())
}
