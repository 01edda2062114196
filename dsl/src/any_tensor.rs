//! [`AnyTensor`]: a tensor of any element type (a model's input or output
//! value, `texpr::graph::Value`), converted from and to [`Tensor<T>`].

use crate::dtype::{DType, Data, DataMut, Element, bf16, f16};
use crate::error::{Error, Result, ShapeError};
use crate::tensor::Tensor;
use crate::value::Scalar;

/// A tensor of any element type.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyTensor {
    /// `bool` elements.
    Bool(Tensor<bool>),
    /// `i8` elements.
    I8(Tensor<i8>),
    /// `i16` elements.
    I16(Tensor<i16>),
    /// `i32` elements.
    I32(Tensor<i32>),
    /// `i64` elements.
    I64(Tensor<i64>),
    /// `u8` elements.
    U8(Tensor<u8>),
    /// `u16` elements.
    U16(Tensor<u16>),
    /// `u32` elements.
    U32(Tensor<u32>),
    /// `u64` elements.
    U64(Tensor<u64>),
    /// `f16` elements.
    F16(Tensor<f16>),
    /// `bf16` elements.
    BF16(Tensor<bf16>),
    /// `f32` elements.
    F32(Tensor<f32>),
    /// `f64` elements.
    F64(Tensor<f64>),
}

macro_rules! any_tensor {
    ($($v:ident => $t:ty),*) => {
        impl AnyTensor {
            /// Zeros of a type and shape.
            pub fn zeros(dtype: DType, shape: &[usize]) -> AnyTensor {
                match dtype { $(DType::$v => AnyTensor::$v(Tensor::<$t>::zeros(shape)),)* }
            }
            /// Elements from scalars (converted with `as`).
            pub fn from_scalars(dtype: DType, shape: &[usize], vals: &[Scalar]) -> AnyTensor {
                match dtype {
                    $(DType::$v => AnyTensor::$v(Tensor::from_fn(shape, {
                        let mut it = vals.iter();
                        move |_| it.next().and_then(|s| <$t>::from_scalar(s.cast(DType::$v))).unwrap_or_default()
                    })),)*
                }
            }
            /// Every element `value` (converted with `as`); an `Err`, not
            /// an abort, when the shape holds more than memory can.
            pub fn try_filled(dtype: DType, shape: &[usize], value: Scalar) -> Result<AnyTensor> {
                match dtype {
                    $(DType::$v => {
                        let mut t = Tensor::<$t>::try_zeros(shape)?;
                        let v = <$t>::from_scalar(value.cast(DType::$v)).unwrap_or_default();
                        t.as_mut_slice().fill(v);
                        Ok(AnyTensor::$v(t))
                    })*
                }
            }
            /// The same elements under another shape of as many elements.
            pub fn reshaped(self, shape: &[usize]) -> Result<AnyTensor> {
                match self { $(AnyTensor::$v(t) => Tensor::from_vec(shape, t.into_vec()).map(AnyTensor::$v),)* }
            }
            /// Elements from little-endian bytes (`bool`: non-zero is
            /// `true`); an `Err` when their count does not fit the shape.
            pub fn from_le_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<AnyTensor> {
                let size = dtype.bytes();
                match dtype {
                    $(DType::$v => Tensor::from_vec(
                        shape,
                        bytes.chunks_exact(size).map(|c| <$t as LeBytes>::from_le(c)).collect::<Vec<$t>>(),
                    )
                    .map(AnyTensor::$v),)*
                }
            }
            /// The elements as little-endian bytes (`bool`: 0 or 1), what
            /// [`AnyTensor::from_le_bytes`] reads.
            pub fn to_le_bytes(&self) -> Vec<u8> {
                let mut out = Vec::with_capacity(self.len() * self.dtype().bytes());
                match self { $(AnyTensor::$v(t) => t.as_slice().iter().for_each(|x| x.to_le(&mut out)),)* }
                out
            }
            /// The element type.
            pub fn dtype(&self) -> DType {
                match self { $(AnyTensor::$v(_) => DType::$v,)* }
            }
            /// The shape.
            pub fn shape(&self) -> &[usize] {
                match self { $(AnyTensor::$v(t) => t.shape(),)* }
            }
            /// Erased data.
            pub fn data(&self) -> Data<'_> {
                match self { $(AnyTensor::$v(t) => t.data(),)* }
            }
            /// Erased mutable data.
            pub fn data_mut(&mut self) -> DataMut<'_> {
                match self { $(AnyTensor::$v(t) => t.data_mut(),)* }
            }
        }
    };
}
any_tensor!(Bool => bool, I8 => i8, I16 => i16, I32 => i32, I64 => i64, U8 => u8, U16 => u16, U32 => u32, U64 => u64, F16 => f16, BF16 => bf16, F32 => f32, F64 => f64);

impl AnyTensor {
    /// Element `i` as a scalar.
    pub fn get(&self, i: usize) -> Option<Scalar> {
        self.data().get(i)
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data().len()
    }
    /// `true` if empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Decoding one element from its little-endian bytes.
trait LeBytes: Sized {
    fn from_le(b: &[u8]) -> Self;
    fn to_le(&self, out: &mut Vec<u8>);
}

macro_rules! le_bytes {
    ($($t:ty),*) => {$(
        impl LeBytes for $t {
            fn from_le(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().unwrap_or_default())
            }
            fn to_le(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
le_bytes!(i8, i16, i32, i64, u8, u16, u32, u64, f16, bf16, f32, f64);

impl LeBytes for bool {
    fn from_le(b: &[u8]) -> Self {
        b.first().is_some_and(|x| *x != 0)
    }
    fn to_le(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl<T: Element> From<Tensor<T>> for AnyTensor {
    fn from(t: Tensor<T>) -> AnyTensor {
        T::wrap(t)
    }
}

impl<T: Element> TryFrom<AnyTensor> for Tensor<T> {
    type Error = Error;

    /// The tensor, when the value holds `T`s; an `Err` naming both types
    /// otherwise.
    fn try_from(v: AnyTensor) -> Result<Tensor<T>> {
        T::unwrap(v).map_err(|v| {
            Error::Shape(ShapeError {
                func: "value".into(),
                message: format!("the value holds `{}` elements, not `{}`", v.dtype(), T::DTYPE),
            })
        })
    }
}
