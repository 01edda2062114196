//! Vectorized loops.

use texpr_dsl::For;

use crate::codegen::Gen;
use crate::error::CgResult;

/// Emits `l` with SIMD vectors if its body allows; `Ok(false)` leaves it to
/// the caller's lane-by-lane fallback.
pub(crate) fn try_vectorize<'a>(_g: &mut Gen<'a, '_, '_>, _l: &'a For, _ext: i64) -> CgResult<bool> {
    Ok(false)
}
