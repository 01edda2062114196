//! Scalar values and the exact semantics of every operation on them.
//!
//! This module is the single definition of SPEC §2's value semantics: the
//! reference interpreter evaluates with it, and the simplifier folds constants
//! with it, so the two can never disagree. Backends are tested against it.
//!
//! - Integer `/` and `%` round toward negative infinity; a zero divisor gives 0.
//! - Integer arithmetic wraps.
//! - `as` converts like Rust's `as`: float to integer saturates, NaN gives 0.
//! - `f16`/`bf16` arithmetic is done in `f32` and rounded back after each
//!   operation.
//! - `min`/`max` on floats ignore a NaN operand (IEEE maxNum, like `f32::max`).

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::dtype::{DType, bf16, f16};
use crate::ops::{BinOp, Builtin, CmpOp, ReduceOp, UnOp};

/// One value of one element type.
#[derive(Clone, Copy, Debug)]
#[allow(missing_docs)]
pub enum Scalar {
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    F16(f16),
    BF16(bf16),
    F32(f32),
    F64(f64),
}

/// Structural equality: floats compare by bits, so `NaN == NaN` and
/// `0.0 != -0.0`. This is what expression identity needs; use
/// [`Scalar::cmp_op`] for the language's comparison.
impl PartialEq for Scalar {
    fn eq(&self, other: &Self) -> bool {
        self.dtype() == other.dtype() && self.bits() == other.bits()
    }
}
impl Eq for Scalar {}
impl Hash for Scalar {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.dtype().hash(state);
        self.bits().hash(state);
    }
}

/// A value widened for computation.
#[derive(Clone, Copy, Debug)]
enum Wide {
    B(bool),
    I(i128),
    F(f64),
}

impl Scalar {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Scalar::Bool(_) => DType::Bool,
            Scalar::I8(_) => DType::I8,
            Scalar::I16(_) => DType::I16,
            Scalar::I32(_) => DType::I32,
            Scalar::I64(_) => DType::I64,
            Scalar::U8(_) => DType::U8,
            Scalar::U16(_) => DType::U16,
            Scalar::U32(_) => DType::U32,
            Scalar::U64(_) => DType::U64,
            Scalar::F16(_) => DType::F16,
            Scalar::BF16(_) => DType::BF16,
            Scalar::F32(_) => DType::F32,
            Scalar::F64(_) => DType::F64,
        }
    }

    /// The value's bit pattern, zero-extended.
    pub fn bits(&self) -> u64 {
        match *self {
            Scalar::Bool(v) => v as u64,
            Scalar::I8(v) => v as u8 as u64,
            Scalar::I16(v) => v as u16 as u64,
            Scalar::I32(v) => v as u32 as u64,
            Scalar::I64(v) => v as u64,
            Scalar::U8(v) => v as u64,
            Scalar::U16(v) => v as u64,
            Scalar::U32(v) => v as u64,
            Scalar::U64(v) => v,
            Scalar::F16(v) => v.to_bits() as u64,
            Scalar::BF16(v) => v.to_bits() as u64,
            Scalar::F32(v) => v.to_bits() as u64,
            Scalar::F64(v) => v.to_bits(),
        }
    }

    /// Zero (or `false`) of a type.
    pub fn zero(dtype: DType) -> Scalar {
        Scalar::from_i128(dtype, 0)
    }

    /// Builds an index (`i64`) value.
    pub fn index(v: i64) -> Scalar {
        Scalar::I64(v)
    }

    /// An integer of a type, wrapped into its range; floats convert; `bool`
    /// is `v != 0`.
    pub fn from_i128(dtype: DType, v: i128) -> Scalar {
        narrow(dtype, Wide::I(v))
    }

    /// A float converted to a float type (rounding); for other types it
    /// converts like `as`.
    pub fn from_f64(dtype: DType, v: f64) -> Scalar {
        if dtype == DType::Bool {
            return Scalar::Bool(v != 0.0);
        }
        Scalar::F64(v).cast(dtype)
    }

    fn wide(&self) -> Wide {
        match *self {
            Scalar::Bool(v) => Wide::B(v),
            Scalar::I8(v) => Wide::I(v as i128),
            Scalar::I16(v) => Wide::I(v as i128),
            Scalar::I32(v) => Wide::I(v as i128),
            Scalar::I64(v) => Wide::I(v as i128),
            Scalar::U8(v) => Wide::I(v as i128),
            Scalar::U16(v) => Wide::I(v as i128),
            Scalar::U32(v) => Wide::I(v as i128),
            Scalar::U64(v) => Wide::I(v as i128),
            Scalar::F16(v) => Wide::F(v.to_f64()),
            Scalar::BF16(v) => Wide::F(v.to_f64()),
            Scalar::F32(v) => Wide::F(v as f64),
            Scalar::F64(v) => Wide::F(v),
        }
    }

    /// The value as an `i64` if it is an integer or `bool` (wrapping `u64`).
    pub fn as_i64(&self) -> Option<i64> {
        match self.wide() {
            Wide::I(v) => Some(v as i64),
            Wide::B(b) => Some(b as i64),
            Wide::F(_) => None,
        }
    }

    /// The value as an `f64` (exact for every type but 64-bit integers).
    pub fn as_f64(&self) -> f64 {
        match self.wide() {
            Wide::I(v) => v as f64,
            Wide::B(b) => b as i64 as f64,
            Wide::F(v) => v,
        }
    }

    /// The truth of a `bool` value; other types: non-zero.
    pub fn is_true(&self) -> bool {
        match self.wide() {
            Wide::B(b) => b,
            Wide::I(v) => v != 0,
            Wide::F(v) => v != 0.0,
        }
    }

    /// `true` for integer zero and float `+0.0`/`-0.0`.
    pub fn is_zero(&self) -> bool {
        !self.is_true()
    }

    /// `true` if the value is the integer one or float one.
    pub fn is_one(&self) -> bool {
        match self.wide() {
            Wide::I(v) => v == 1,
            Wide::F(v) => v == 1.0,
            Wide::B(b) => b,
        }
    }

    /// Rust's `self as to`.
    pub fn cast(self, to: DType) -> Scalar {
        let from = self.dtype();
        if from == to {
            return self;
        }
        match (self.wide(), to) {
            (Wide::B(b), _) if to != DType::Bool => narrow(to, Wide::I(b as i128)),
            (w, DType::Bool) => Scalar::Bool(match w {
                Wide::B(b) => b,
                Wide::I(v) => v != 0,
                Wide::F(v) => v != 0.0,
            }),
            (Wide::I(v), DType::F32) => {
                // Round once, directly, like Rust's `as`.
                Scalar::F32(if from.is_signed_int() { v as i64 as f32 } else { v as u64 as f32 })
            }
            (Wide::I(v), DType::F16) => Scalar::F16(f16::from_f64(int_to_f64(from, v))),
            (Wide::I(v), DType::BF16) => Scalar::BF16(bf16::from_f64(int_to_f64(from, v))),
            (Wide::I(v), DType::F64) => Scalar::F64(int_to_f64(from, v)),
            (Wide::I(v), _) => narrow(to, Wide::I(v)),
            (Wide::F(v), t) if t.is_float() => narrow(t, Wide::F(v)),
            (Wide::F(v), t) => {
                // Saturating float -> int, NaN -> 0, toward zero.
                let (lo, hi) = int_range(t);
                let r = if v.is_nan() {
                    0
                } else if v <= lo as f64 {
                    lo
                } else if v >= hi as f64 {
                    hi
                } else {
                    v.trunc() as i128
                };
                narrow(t, Wide::I(r))
            }
            (Wide::B(_), _) => unreachable_bool(to),
        }
    }

    /// A binary arithmetic operation. Both operands must have the same type.
    pub fn binary(op: BinOp, a: Scalar, b: Scalar) -> Scalar {
        let t = a.dtype();
        debug_assert_eq!(t, b.dtype(), "binary operands of different types");
        match (a.wide(), b.wide()) {
            (Wide::I(x), Wide::I(y)) => {
                let r = match op {
                    BinOp::Add => x + y,
                    BinOp::Sub => x - y,
                    BinOp::Mul => x.wrapping_mul(y),
                    BinOp::Div => floor_div(x, y),
                    BinOp::Rem => floor_mod(x, y),
                    BinOp::Min => x.min(y),
                    BinOp::Max => x.max(y),
                };
                narrow(t, Wide::I(r))
            }
            (Wide::F(_), Wide::F(_)) => float_binary(op, a, b),
            (Wide::B(x), Wide::B(y)) => Scalar::Bool(match op {
                BinOp::Min => x & y,
                BinOp::Max => x | y,
                _ => x,
            }),
            _ => a,
        }
    }

    /// A comparison; the operands must have the same type.
    pub fn cmp_op(op: CmpOp, a: Scalar, b: Scalar) -> bool {
        use std::cmp::Ordering;
        let ord = match (a.wide(), b.wide()) {
            (Wide::I(x), Wide::I(y)) => Some(x.cmp(&y)),
            (Wide::F(x), Wide::F(y)) => x.partial_cmp(&y),
            (Wide::B(x), Wide::B(y)) => Some(x.cmp(&y)),
            _ => None,
        };
        match (op, ord) {
            (CmpOp::Ne, None) => true,
            (_, None) => false,
            (CmpOp::Lt, Some(o)) => o == Ordering::Less,
            (CmpOp::Le, Some(o)) => o != Ordering::Greater,
            (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
            (CmpOp::Ge, Some(o)) => o != Ordering::Less,
            (CmpOp::Eq, Some(o)) => o == Ordering::Equal,
            (CmpOp::Ne, Some(o)) => o != Ordering::Equal,
        }
    }

    /// A unary operation.
    pub fn unary(op: UnOp, a: Scalar) -> Scalar {
        let t = a.dtype();
        match (op, a.wide()) {
            (UnOp::Neg, Wide::I(x)) => narrow(t, Wide::I(-x)),
            (UnOp::Neg, Wide::F(_)) => match a {
                Scalar::F16(v) => Scalar::F16(-v),
                Scalar::BF16(v) => Scalar::BF16(-v),
                Scalar::F32(v) => Scalar::F32(-v),
                Scalar::F64(v) => Scalar::F64(-v),
                _ => a,
            },
            (UnOp::Not, Wide::B(b)) => Scalar::Bool(!b),
            (UnOp::Not, Wide::I(x)) => narrow(t, Wide::I(!x)),
            _ => a,
        }
    }

    /// A built-in function call; argument types were checked before.
    pub fn call(f: Builtin, args: &[Scalar]) -> Scalar {
        let a = args[0];
        let t = a.dtype();
        if t.is_float() {
            let x = a.as_f64();
            let arg = |i: usize| args[i].as_f64();
            let single = t != DType::F64;
            let r = match f {
                Builtin::Exp => x.exp(),
                Builtin::Exp2 => x.exp2(),
                Builtin::Ln => x.ln(),
                Builtin::Log2 => x.log2(),
                Builtin::Sqrt => return float_unary_exact(t, x, f64::sqrt, f32::sqrt),
                Builtin::Rsqrt => 1.0 / x.sqrt(),
                Builtin::Abs => x.abs(),
                Builtin::Floor => x.floor(),
                Builtin::Ceil => x.ceil(),
                Builtin::Round => x.round(),
                Builtin::Trunc => x.trunc(),
                Builtin::Sin => x.sin(),
                Builtin::Cos => x.cos(),
                Builtin::Tanh => x.tanh(),
                Builtin::Sigmoid => 1.0 / (1.0 + (-x).exp()),
                Builtin::Erf => libm::erf(x),
                Builtin::Pow => x.powf(arg(1)),
                Builtin::Fma => {
                    if single {
                        // Exact product in f64, one rounding of the sum:
                        // close to a fused f32 operation.
                        (x * arg(1)) + arg(2)
                    } else {
                        x.mul_add(arg(1), arg(2))
                    }
                }
                Builtin::Clamp => {
                    let (lo, hi) = (arg(1), arg(2));
                    if x < lo {
                        lo
                    } else if x > hi {
                        hi
                    } else {
                        x
                    }
                }
            };
            return Scalar::from_f64(t, r);
        }
        match f {
            Builtin::Abs => match a.wide() {
                Wide::I(x) => narrow(t, Wide::I(x.abs())),
                _ => a,
            },
            // Integers: `min(max(x, lo), hi)` (`hi` when `lo > hi`, as
            // numpy's `clip` and ONNX's `Clip`); lowering rewrites it so.
            Builtin::Clamp => Scalar::binary(BinOp::Min, Scalar::binary(BinOp::Max, a, args[1]), args[2]),
            // Integer fma: wrapping a * b + c.
            Builtin::Fma => Scalar::binary(BinOp::Add, Scalar::binary(BinOp::Mul, a, args[1]), args[2]),
            _ => a,
        }
    }

    /// The identity of a reduction over `dtype`: 0, 1, -inf/MIN, +inf/MAX.
    pub fn reduce_identity(op: ReduceOp, dtype: DType) -> Scalar {
        match op {
            ReduceOp::Sum => Scalar::zero(dtype),
            ReduceOp::Prod => Scalar::from_i128(dtype, 1),
            ReduceOp::Max => extreme(dtype, false),
            ReduceOp::Min => extreme(dtype, true),
        }
    }

    /// Folds one value into a reduction's accumulator.
    pub fn reduce_combine(op: ReduceOp, acc: Scalar, v: Scalar) -> Scalar {
        Scalar::binary(op.combiner(), acc, v)
    }
}

/// The largest (`max == true`) or smallest value of a type; infinities for
/// floats.
pub fn extreme(dtype: DType, max: bool) -> Scalar {
    match dtype {
        DType::Bool => Scalar::Bool(max),
        DType::F16 => Scalar::F16(if max { f16::INFINITY } else { f16::NEG_INFINITY }),
        DType::BF16 => Scalar::BF16(if max { bf16::INFINITY } else { bf16::NEG_INFINITY }),
        DType::F32 => Scalar::F32(if max { f32::INFINITY } else { f32::NEG_INFINITY }),
        DType::F64 => Scalar::F64(if max { f64::INFINITY } else { f64::NEG_INFINITY }),
        t => {
            let (lo, hi) = int_range(t);
            Scalar::from_i128(t, if max { hi } else { lo })
        }
    }
}

/// The range of an integer type.
pub fn int_range(t: DType) -> (i128, i128) {
    match t {
        DType::I8 => (i8::MIN as i128, i8::MAX as i128),
        DType::I16 => (i16::MIN as i128, i16::MAX as i128),
        DType::I32 => (i32::MIN as i128, i32::MAX as i128),
        DType::I64 => (i64::MIN as i128, i64::MAX as i128),
        DType::U8 => (0, u8::MAX as i128),
        DType::U16 => (0, u16::MAX as i128),
        DType::U32 => (0, u32::MAX as i128),
        DType::U64 => (0, u64::MAX as i128),
        DType::Bool => (0, 1),
        _ => (i64::MIN as i128, i64::MAX as i128),
    }
}

/// Floor division with a zero divisor giving 0.
pub fn floor_div(x: i128, y: i128) -> i128 {
    if y == 0 {
        return 0;
    }
    let q = x / y;
    if (x % y != 0) && ((x < 0) != (y < 0)) { q - 1 } else { q }
}

/// Floor remainder (sign of the divisor) with a zero divisor giving 0.
pub fn floor_mod(x: i128, y: i128) -> i128 {
    if y == 0 {
        return 0;
    }
    let r = x % y;
    if r != 0 && ((r < 0) != (y < 0)) { r + y } else { r }
}

fn int_to_f64(from: DType, v: i128) -> f64 {
    if from.is_signed_int() { v as i64 as f64 } else { v as u64 as f64 }
}

fn unreachable_bool(to: DType) -> Scalar {
    Scalar::zero(to)
}

fn narrow(t: DType, w: Wide) -> Scalar {
    match w {
        Wide::I(v) => match t {
            DType::Bool => Scalar::Bool(v != 0),
            DType::I8 => Scalar::I8(v as i8),
            DType::I16 => Scalar::I16(v as i16),
            DType::I32 => Scalar::I32(v as i32),
            DType::I64 => Scalar::I64(v as i64),
            DType::U8 => Scalar::U8(v as u8),
            DType::U16 => Scalar::U16(v as u16),
            DType::U32 => Scalar::U32(v as u32),
            DType::U64 => Scalar::U64(v as u64),
            DType::F16 => Scalar::F16(f16::from_f64(v as f64)),
            DType::BF16 => Scalar::BF16(bf16::from_f64(v as f64)),
            DType::F32 => Scalar::F32(v as f32),
            DType::F64 => Scalar::F64(v as f64),
        },
        Wide::F(v) => match t {
            DType::F16 => Scalar::F16(f16::from_f64(v)),
            DType::BF16 => Scalar::BF16(bf16::from_f64(v)),
            DType::F32 => Scalar::F32(v as f32),
            DType::F64 => Scalar::F64(v),
            _ => Scalar::F64(v).cast(t),
        },
        Wide::B(b) => narrow(t, Wide::I(b as i128)),
    }
}

fn float_unary_exact(t: DType, x: f64, f64op: fn(f64) -> f64, f32op: fn(f32) -> f32) -> Scalar {
    match t {
        DType::F64 => Scalar::F64(f64op(x)),
        DType::F32 => Scalar::F32(f32op(x as f32)),
        DType::F16 => Scalar::F16(f16::from_f32(f32op(x as f32))),
        _ => Scalar::BF16(bf16::from_f32(f32op(x as f32))),
    }
}

fn float_binary(op: BinOp, a: Scalar, b: Scalar) -> Scalar {
    fn go<F: num_like::Float>(op: BinOp, x: F, y: F) -> F {
        match op {
            BinOp::Add => x.add(y),
            BinOp::Sub => x.sub(y),
            BinOp::Mul => x.mul(y),
            BinOp::Div => x.div(y),
            BinOp::Rem => x.rem(y),
            BinOp::Min => x.fmin(y),
            BinOp::Max => x.fmax(y),
        }
    }
    match (a, b) {
        (Scalar::F32(x), Scalar::F32(y)) => Scalar::F32(go(op, x, y)),
        (Scalar::F64(x), Scalar::F64(y)) => Scalar::F64(go(op, x, y)),
        // f16/bf16: compute in f32, round back.
        (Scalar::F16(x), Scalar::F16(y)) => Scalar::F16(f16::from_f32(go(op, x.to_f32(), y.to_f32()))),
        (Scalar::BF16(x), Scalar::BF16(y)) => Scalar::BF16(bf16::from_f32(go(op, x.to_f32(), y.to_f32()))),
        _ => a,
    }
}

mod num_like {
    pub trait Float: Copy {
        fn add(self, o: Self) -> Self;
        fn sub(self, o: Self) -> Self;
        fn mul(self, o: Self) -> Self;
        fn div(self, o: Self) -> Self;
        fn rem(self, o: Self) -> Self;
        fn fmin(self, o: Self) -> Self;
        fn fmax(self, o: Self) -> Self;
    }
    macro_rules! imp {
        ($t:ty) => {
            impl Float for $t {
                fn add(self, o: Self) -> Self {
                    self + o
                }
                fn sub(self, o: Self) -> Self {
                    self - o
                }
                fn mul(self, o: Self) -> Self {
                    self * o
                }
                fn div(self, o: Self) -> Self {
                    self / o
                }
                fn rem(self, o: Self) -> Self {
                    self % o
                }
                // A zero result is +0.0 (`-0.0 + 0.0`), whichever
                // operand a tie of 0.0 and -0.0 gives (docs/language.md).
                fn fmin(self, o: Self) -> Self {
                    self.min(o) + 0.0
                }
                fn fmax(self, o: Self) -> Self {
                    self.max(o) + 0.0
                }
            }
        };
    }
    imp!(f32);
    imp!(f64);
}

impl fmt::Display for Scalar {
    /// Prints a literal: `i64` and `f32` bare, other types with a suffix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn float(f: &mut fmt::Formatter<'_>, v: f64, suffix: &str) -> fmt::Result {
            if v.is_nan() {
                write!(f, "nan{suffix}")
            } else if v.is_infinite() {
                write!(f, "{}inf{suffix}", if v < 0.0 { "-" } else { "" })
            } else {
                write!(f, "{v:?}{suffix}")
            }
        }
        match *self {
            Scalar::Bool(v) => write!(f, "{v}"),
            Scalar::I64(v) => write!(f, "{v}"),
            Scalar::F32(v) => {
                if v.is_finite() {
                    write!(f, "{v:?}")
                } else {
                    float(f, v as f64, "f32")
                }
            }
            Scalar::F64(v) => float(f, v, "f64"),
            Scalar::F16(v) => float(f, v.to_f64(), "f16"),
            Scalar::BF16(v) => float(f, v.to_f64(), "bf16"),
            Scalar::I8(v) => write!(f, "{v}i8"),
            Scalar::I16(v) => write!(f, "{v}i16"),
            Scalar::I32(v) => write!(f, "{v}i32"),
            Scalar::U8(v) => write!(f, "{v}u8"),
            Scalar::U16(v) => write!(f, "{v}u16"),
            Scalar::U32(v) => write!(f, "{v}u32"),
            Scalar::U64(v) => write!(f, "{v}u64"),
        }
    }
}

impl<T: crate::dtype::Element> From<T> for Scalar {
    fn from(v: T) -> Scalar {
        v.to_scalar()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_division_and_zero() {
        assert_eq!(floor_div(-7, 2), -4);
        assert_eq!(floor_mod(-7, 2), 1);
        assert_eq!(floor_div(7, -2), -4);
        assert_eq!(floor_mod(7, -2), -1);
        assert_eq!(floor_div(7, 0), 0);
        assert_eq!(floor_mod(7, 0), 0);
        let min = Scalar::I32(i32::MIN);
        let m1 = Scalar::I32(-1);
        assert_eq!(Scalar::binary(BinOp::Div, min, m1), Scalar::I32(i32::MIN));
        assert_eq!(Scalar::binary(BinOp::Rem, min, m1), Scalar::I32(0));
        assert_eq!(Scalar::binary(BinOp::Div, Scalar::U8(7), Scalar::U8(0)), Scalar::U8(0));
    }

    #[test]
    fn wrapping() {
        assert_eq!(Scalar::binary(BinOp::Add, Scalar::U8(250), Scalar::U8(10)), Scalar::U8(4));
        assert_eq!(Scalar::binary(BinOp::Mul, Scalar::I64(i64::MAX), Scalar::I64(2)), Scalar::I64(-2));
        assert_eq!(Scalar::unary(UnOp::Neg, Scalar::I8(i8::MIN)), Scalar::I8(i8::MIN));
        assert_eq!(Scalar::unary(UnOp::Not, Scalar::U8(0)), Scalar::U8(255));
    }

    #[test]
    fn casts_like_rust() {
        assert_eq!(Scalar::F32(f32::NAN).cast(DType::I32), Scalar::I32(0));
        assert_eq!(Scalar::F32(1e20).cast(DType::I32), Scalar::I32(i32::MAX));
        assert_eq!(Scalar::F64(-1e300).cast(DType::I64), Scalar::I64(i64::MIN));
        assert_eq!(Scalar::F32(-1.9).cast(DType::I8), Scalar::I8(-1));
        assert_eq!(Scalar::F32(-1.0).cast(DType::U8), Scalar::U8(0));
        assert_eq!(Scalar::I32(300).cast(DType::U8), Scalar::U8(44));
        assert_eq!(Scalar::I8(-1).cast(DType::U64), Scalar::U64(u64::MAX));
        assert_eq!(Scalar::U64(u64::MAX).cast(DType::F32), Scalar::F32(u64::MAX as f32));
        assert_eq!(Scalar::Bool(true).cast(DType::I32), Scalar::I32(1));
        assert_eq!(Scalar::F32(1.5).cast(DType::F16), Scalar::F16(f16::from_f32(1.5)));
        assert_eq!(Scalar::I64(i64::MAX).cast(DType::F64), Scalar::F64(i64::MAX as f64));
    }

    #[test]
    fn float_min_max_ignore_nan() {
        let nan = Scalar::F32(f32::NAN);
        assert_eq!(Scalar::binary(BinOp::Max, nan, Scalar::F32(1.0)), Scalar::F32(1.0));
        assert_eq!(Scalar::binary(BinOp::Min, Scalar::F32(2.0), nan), Scalar::F32(2.0));
    }

    #[test]
    fn identities() {
        assert_eq!(Scalar::reduce_identity(ReduceOp::Max, DType::F32), Scalar::F32(f32::NEG_INFINITY));
        assert_eq!(Scalar::reduce_identity(ReduceOp::Min, DType::U8), Scalar::U8(255));
        assert_eq!(Scalar::reduce_identity(ReduceOp::Max, DType::I16), Scalar::I16(i16::MIN));
        assert_eq!(Scalar::reduce_identity(ReduceOp::Prod, DType::F64), Scalar::F64(1.0));
    }

    #[test]
    fn comparisons() {
        let nan = Scalar::F32(f32::NAN);
        assert!(!Scalar::cmp_op(CmpOp::Lt, nan, nan));
        assert!(Scalar::cmp_op(CmpOp::Ne, nan, nan));
        assert!(Scalar::cmp_op(CmpOp::Lt, Scalar::U64(1), Scalar::U64(u64::MAX)));
    }

    #[test]
    fn display() {
        assert_eq!(Scalar::F32(1.0).to_string(), "1.0");
        assert_eq!(Scalar::I64(-3).to_string(), "-3");
        assert_eq!(Scalar::I32(-3).to_string(), "-3i32");
        assert_eq!(Scalar::U64(u64::MAX).to_string(), "18446744073709551615u64");
        assert_eq!(Scalar::F32(f32::NEG_INFINITY).to_string(), "-inff32");
    }
}
