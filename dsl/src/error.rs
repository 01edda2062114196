//! The one error type of texpr.
//!
//! User mistakes (a bad definition, an illegal schedule, shapes that do not
//! fit, an access that cannot be proven in bounds, a missing device) and
//! internal failures (a bug in texpr) are different variants with different
//! payload types, so they can never be confused. Every user error that came
//! from `tensor_expr!` source carries the [`Origin`] of the offending tokens,
//! which the macro turns back into a span.

use std::fmt;

use crate::Target;

/// Where a piece of a definition or schedule came from: an opaque number the
/// `tensor_expr!` macro assigns to each span it hands to the builder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin(pub u32);

/// Every error texpr returns.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The definition is not a valid program (names, types, ranks, ...).
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    /// A schedule primitive cannot be applied.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// Arguments of a call do not fit the definition.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// An access cannot be proven in bounds.
    #[error(transparent)]
    Bounds(#[from] BoundsError),
    /// A backend could not compile or run the kernel (with its log).
    #[error("{func}: {target:?} backend: {message}")]
    Backend {
        /// The function.
        func: String,
        /// The target.
        target: Target,
        /// What went wrong, with the compiler's log and source where useful.
        message: String,
    },
    /// A device or library a target needs is not present on this machine.
    #[error("{target:?} is not available: {what}")]
    Unavailable {
        /// The target.
        target: Target,
        /// What is missing ("no OpenCL platform found", "no CUDA driver found").
        what: String,
    },
    /// A model (an ONNX file, its graph, a node, or the inputs of a run)
    /// that cannot be imported, compiled or run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A bug in texpr, not in the user's program.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl Error {
    /// The origin of the offending tokens, for errors that have one.
    pub fn origin(&self) -> Option<Origin> {
        match self {
            Error::Definition(e) => e.origin,
            Error::Schedule(e) => e.origin,
            Error::Bounds(e) => e.origin,
            _ => None,
        }
    }

    /// The short message without the function prefix: what the macro shows
    /// at the span.
    pub fn message(&self) -> String {
        match self {
            Error::Definition(e) => e.message.clone(),
            Error::Schedule(e) => match &e.help {
                Some(h) => format!("{}; {}", e.message, h),
                None => e.message.clone(),
            },
            Error::Bounds(e) => e.message.clone(),
            other => other.to_string(),
        }
    }
}

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The definition is not a valid program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    /// The function being defined.
    pub func: String,
    /// What is wrong, in one line.
    pub message: String,
    /// Where, when known.
    pub origin: Option<Origin>,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.func, self.message)
    }
}
impl std::error::Error for DefinitionError {}

/// A schedule primitive cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    /// The function.
    pub func: String,
    /// What is wrong (short).
    pub message: String,
    /// What would be legal, when there is something to say.
    pub help: Option<String>,
    /// The primitive's tokens, when known.
    pub origin: Option<Origin>,
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: schedule: {}", self.func, self.message)?;
        if let Some(h) = &self.help {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}
impl std::error::Error for ScheduleError {}

/// The arguments of a call do not fit the definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError {
    /// The function called.
    pub func: String,
    /// What does not fit, naming the dim and the tensors.
    pub message: String,
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.func, self.message)
    }
}
impl std::error::Error for ShapeError {}

/// An access that could not be proven in bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundsError {
    /// The function.
    pub func: String,
    /// The tensor and index, and why.
    pub message: String,
    /// The load's tokens, when known.
    pub origin: Option<Origin>,
}

impl fmt::Display for BoundsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.func, self.message)
    }
}
impl std::error::Error for BoundsError {}

/// A model that cannot be imported, compiled or run: which model, where in
/// it (a node by name and operator, a tensor, an input), and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    /// The model (its file or graph name).
    pub model: String,
    /// Where: "node `conv1` (Conv)", "tensor `w`", "input `x`" (`None`: the
    /// model as a whole).
    pub at: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{}: {at}: {}", self.model, self.message),
            None => write!(f, "{}: {}", self.model, self.message),
        }
    }
}

impl std::error::Error for ModelError {}

/// A broken invariant inside texpr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalError {
    /// Which pass or component.
    pub context: String,
    /// What was found.
    pub message: String,
}

impl InternalError {
    /// Builds an internal error.
    pub fn new(context: impl Into<String>, message: impl Into<String>) -> InternalError {
        InternalError { context: context.into(), message: message.into() }
    }
}

impl fmt::Display for InternalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "internal error in texpr ({}): {} — this is a bug in texpr, please report it",
            self.context, self.message
        )
    }
}
impl std::error::Error for InternalError {}
