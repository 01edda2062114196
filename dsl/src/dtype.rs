//! Element types.
//!
//! [`DType`] names the thirteen element types of the language; [`Element`] ties
//! each to its Rust type so that [`Tensor<T>`](crate::Tensor) and the runtime can
//! move data without copies or `unsafe`.

use std::fmt;

pub use half::{bf16, f16};

/// An element type of the language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// `bool`
    Bool,
    /// `i8`
    I8,
    /// `i16`
    I16,
    /// `i32`
    I32,
    /// `i64`; also the type of index variables and dims.
    I64,
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `u64`
    U64,
    /// `f16` (IEEE binary16, `half::f16`)
    F16,
    /// `bf16` (bfloat16, `half::bf16`)
    BF16,
    /// `f32`
    F32,
    /// `f64`
    F64,
}

impl DType {
    /// Every element type, in a fixed order.
    pub const ALL: [DType; 13] = [
        DType::Bool,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
    ];

    /// The type of index variables, dims and index arithmetic.
    pub const INDEX: DType = DType::I64;

    /// The Rust spelling of the type (`f32`, `bf16`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "i8",
            DType::I16 => "i16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::U8 => "u8",
            DType::U16 => "u16",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F32 => "f32",
            DType::F64 => "f64",
        }
    }

    /// Parses a Rust spelling (`"f32"`); `None` for anything else.
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// `f16 bf16 f32 f64`.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
    }

    /// Signed and unsigned integers (not `bool`).
    pub fn is_int(self) -> bool {
        self.is_signed_int() || self.is_unsigned_int()
    }

    /// `i8 i16 i32 i64`.
    pub fn is_signed_int(self) -> bool {
        matches!(self, DType::I8 | DType::I16 | DType::I32 | DType::I64)
    }

    /// `u8 u16 u32 u64`.
    pub fn is_unsigned_int(self) -> bool {
        matches!(self, DType::U8 | DType::U16 | DType::U32 | DType::U64)
    }

    /// Integers and floats: the types arithmetic is defined on.
    pub fn is_numeric(self) -> bool {
        self.is_int() || self.is_float()
    }

    /// Width in bits (`bool` counts as 8: it is stored as one byte).
    pub fn bits(self) -> u32 {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 8,
            DType::I16 | DType::U16 | DType::F16 | DType::BF16 => 16,
            DType::I32 | DType::U32 | DType::F32 => 32,
            DType::I64 | DType::U64 | DType::F64 => 64,
        }
    }

    /// Size of one element in memory, in bytes.
    pub fn bytes(self) -> usize {
        (self.bits() / 8) as usize
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust type that is an element type of the language.
///
/// Implemented for `bool`, `i8`–`i64`, `u8`–`u64`, [`f16`](struct@f16), [`bf16`](struct@bf16), `f32` and
/// `f64`; sealed.
pub trait Element: sealed::Sealed + Copy + Default + PartialEq + fmt::Debug + Send + Sync + 'static {
    /// The language's name for this type.
    const DTYPE: DType;
    /// Wraps a slice of this type as type-erased data.
    fn data(s: &[Self]) -> Data<'_>;
    /// Wraps a mutable slice of this type as type-erased data.
    fn data_mut(s: &mut [Self]) -> DataMut<'_>;
    /// Converts to a [`Scalar`](crate::Scalar).
    fn to_scalar(self) -> crate::Scalar;
    /// Converts from a [`Scalar`](crate::Scalar) of the same type.
    fn from_scalar(s: crate::Scalar) -> Option<Self>;
    /// Erases the element type of a tensor.
    #[doc(hidden)]
    fn wrap(t: crate::Tensor<Self>) -> crate::AnyTensor;
    /// The tensor back, when it holds this type (the value otherwise).
    #[doc(hidden)]
    fn unwrap(v: crate::AnyTensor) -> std::result::Result<crate::Tensor<Self>, crate::AnyTensor>;
}

macro_rules! elements {
    ($($t:ty => $variant:ident),* $(,)?) => {
        /// A borrowed slice of elements of any element type.
        #[derive(Clone, Copy, Debug)]
        pub enum Data<'a> {
            $(
                #[doc = concat!("`", stringify!($t), "` elements")]
                $variant(&'a [$t]),
            )*
        }

        /// A mutably borrowed slice of elements of any element type.
        #[derive(Debug)]
        pub enum DataMut<'a> {
            $(
                #[doc = concat!("`", stringify!($t), "` elements")]
                $variant(&'a mut [$t]),
            )*
        }

        impl Data<'_> {
            /// The element type.
            pub fn dtype(&self) -> DType {
                match self { $(Data::$variant(_) => DType::$variant,)* }
            }
            /// Number of elements.
            pub fn len(&self) -> usize {
                match self { $(Data::$variant(s) => s.len(),)* }
            }
            /// `true` when there are no elements.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
            /// Element `i` as a scalar, `None` past the end.
            pub fn get(&self, i: usize) -> Option<crate::Scalar> {
                match self { $(Data::$variant(s) => s.get(i).map(|v| v.to_scalar()),)* }
            }
            /// Address of the first element.
            pub fn as_ptr(&self) -> *const u8 {
                match self { $(Data::$variant(s) => s.as_ptr() as *const u8,)* }
            }
        }

        impl DataMut<'_> {
            /// The element type.
            pub fn dtype(&self) -> DType {
                match self { $(DataMut::$variant(_) => DType::$variant,)* }
            }
            /// Number of elements.
            pub fn len(&self) -> usize {
                match self { $(DataMut::$variant(s) => s.len(),)* }
            }
            /// `true` when there are no elements.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
            /// Element `i` as a scalar, `None` past the end.
            pub fn get(&self, i: usize) -> Option<crate::Scalar> {
                match self { $(DataMut::$variant(s) => s.get(i).map(|v| v.to_scalar()),)* }
            }
            /// Writes element `i`; `false` when `i` is past the end or the
            /// scalar has another type.
            pub fn set(&mut self, i: usize, v: crate::Scalar) -> bool {
                match self {
                    $(DataMut::$variant(s) => match (s.get_mut(i), <$t>::from_scalar(v)) {
                        (Some(slot), Some(v)) => { *slot = v; true }
                        _ => false,
                    },)*
                }
            }
            /// Reborrows as shared data.
            pub fn as_data(&self) -> Data<'_> {
                match self { $(DataMut::$variant(s) => Data::$variant(s),)* }
            }
            /// Address of the first element.
            pub fn as_mut_ptr(&mut self) -> *mut u8 {
                match self { $(DataMut::$variant(s) => s.as_mut_ptr() as *mut u8,)* }
            }
        }

        $(
            impl sealed::Sealed for $t {}
            impl Element for $t {
                const DTYPE: DType = DType::$variant;
                fn data(s: &[Self]) -> Data<'_> { Data::$variant(s) }
                fn data_mut(s: &mut [Self]) -> DataMut<'_> { DataMut::$variant(s) }
                fn to_scalar(self) -> crate::Scalar { crate::Scalar::$variant(self) }
                fn from_scalar(s: crate::Scalar) -> Option<Self> {
                    match s { crate::Scalar::$variant(v) => Some(v), _ => None }
                }
                fn wrap(t: crate::Tensor<Self>) -> crate::AnyTensor { crate::AnyTensor::$variant(t) }
                fn unwrap(v: crate::AnyTensor) -> std::result::Result<crate::Tensor<Self>, crate::AnyTensor> {
                    match v { crate::AnyTensor::$variant(t) => Ok(t), other => Err(other) }
                }
            }
        )*
    };
}

elements! {
    bool => Bool,
    i8 => I8,
    i16 => I16,
    i32 => I32,
    i64 => I64,
    u8 => U8,
    u16 => U16,
    u32 => U32,
    u64 => U64,
    f16 => F16,
    bf16 => BF16,
    f32 => F32,
    f64 => F64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(d));
        }
        assert_eq!(DType::from_name("usize"), None);
    }

    #[test]
    fn classes() {
        assert!(DType::BF16.is_float() && !DType::BF16.is_int());
        assert!(DType::U8.is_unsigned_int() && DType::U8.is_int());
        assert!(!DType::Bool.is_numeric());
        assert_eq!(DType::F16.bytes(), 2);
    }
}
