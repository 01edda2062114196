//! Inline polynomial math for `f32` (scalar and vector).
