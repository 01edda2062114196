//! `Tensor<T>`: an owned, row-major, n-dimensional array.

use std::fmt;

use crate::dtype::{Data, DataMut, Element};
use crate::error::{Error, Result, ShapeError};

/// An owned row-major tensor of element type `T`.
#[derive(Clone, PartialEq)]
pub struct Tensor<T: Element> {
    shape: Vec<usize>,
    data: Vec<T>,
}

fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, d| a.checked_mul(*d))
}

/// The error of a tensor whose elements cannot be allocated.
fn too_big(func: &str, shape: &[usize]) -> Error {
    Error::Shape(ShapeError {
        func: func.into(),
        message: format!("shape {} has more elements than fit in memory", shape_str(shape)),
    })
}

impl<T: Element> Tensor<T> {
    /// A tensor from its shape and row-major data; `Err` if the lengths
    /// disagree.
    pub fn from_vec(shape: impl AsRef<[usize]>, data: Vec<T>) -> Result<Tensor<T>> {
        let shape = shape.as_ref().to_vec();
        match numel(&shape) {
            Some(n) if n == data.len() => Ok(Tensor { shape, data }),
            Some(n) => Err(Error::Shape(ShapeError {
                func: "Tensor::from_vec".into(),
                message: format!("shape {} has {n} elements but {} values were given", shape_str(&shape), data.len()),
            })),
            None => Err(Error::Shape(ShapeError {
                func: "Tensor::from_vec".into(),
                message: format!("shape {} has more elements than fit in memory", shape_str(&shape)),
            })),
        }
    }

    /// A tensor of zeros (`false`, `0`, `0.0`).
    ///
    /// # Panics
    /// Like `vec!`, if the number of elements overflows `usize` or the
    /// memory cannot be allocated.
    pub fn zeros(shape: impl AsRef<[usize]>) -> Tensor<T> {
        let shape = shape.as_ref().to_vec();
        let n = numel(&shape).expect("Tensor::zeros: the number of elements overflows usize");
        Tensor { data: vec![T::default(); n], shape }
    }

    /// A tensor of zeros, or an `Err` (instead of a panic or an abort) when
    /// the number of elements overflows or the memory cannot be allocated.
    pub fn try_zeros(shape: impl AsRef<[usize]>) -> Result<Tensor<T>> {
        let shape = shape.as_ref().to_vec();
        let too_big = || too_big("Tensor::try_zeros", &shape);
        let n = numel(&shape).ok_or_else(too_big)?;
        let mut data = Vec::new();
        data.try_reserve_exact(n).map_err(|_| too_big())?;
        data.resize(n, T::default());
        Ok(Tensor { shape, data })
    }

    /// A tensor whose element at each multi-index is `f(index)`.
    ///
    /// # Panics
    /// Like `vec!`, if the number of elements overflows `usize` or the
    /// memory cannot be allocated; [`Tensor::try_from_fn`] returns an `Err`.
    pub fn from_fn(shape: impl AsRef<[usize]>, f: impl FnMut(&[usize]) -> T) -> Tensor<T> {
        match Tensor::try_from_fn(shape, f) {
            Ok(t) => t,
            Err(e) => panic!("Tensor::from_fn: {e}"),
        }
    }

    /// [`Tensor::from_fn`], or an `Err` (instead of a panic or an abort)
    /// when the number of elements overflows or the memory cannot be
    /// allocated.
    pub fn try_from_fn(shape: impl AsRef<[usize]>, mut f: impl FnMut(&[usize]) -> T) -> Result<Tensor<T>> {
        let shape = shape.as_ref().to_vec();
        let too_big = || too_big("Tensor::try_from_fn", &shape);
        let n = numel(&shape).ok_or_else(too_big)?;
        let mut data = Vec::new();
        data.try_reserve_exact(n).map_err(|_| too_big())?;
        let mut idx = vec![0usize; shape.len()];
        for _ in 0..n {
            data.push(f(&idx));
            for d in (0..shape.len()).rev() {
                idx[d] += 1;
                if idx[d] < shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        Ok(Tensor { shape, data })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of dims.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// `true` if there are no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements, row-major.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// The elements, row-major, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// A copy of the elements.
    pub fn to_vec(&self) -> Vec<T> {
        self.data.clone()
    }

    /// The elements, consuming the tensor.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// The element at a multi-index, `None` if out of range.
    pub fn get(&self, idx: &[usize]) -> Option<&T> {
        if idx.len() != self.shape.len() {
            return None;
        }
        let mut off = 0usize;
        for (i, d) in idx.iter().zip(&self.shape) {
            if i >= d {
                return None;
            }
            off = off * d + i;
        }
        self.data.get(off)
    }

    /// Type-erased view of the elements.
    pub fn data(&self) -> Data<'_> {
        T::data(&self.data)
    }

    /// Type-erased mutable view of the elements.
    pub fn data_mut(&mut self) -> DataMut<'_> {
        T::data_mut(&mut self.data)
    }
}

pub(crate) fn shape_str(s: &[usize]) -> String {
    if s.is_empty() {
        return "a scalar (shape [])".into();
    }
    s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

impl<T: Element> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 16;
        write!(f, "Tensor<{}>[{}] ", T::DTYPE, shape_str(&self.shape))?;
        let list = f.debug_list().entries(self.data.iter().take(SHOWN)).finish();
        if self.data.len() > SHOWN {
            write!(f, " … ({} more)", self.data.len() - SHOWN)?;
        }
        list
    }
}

#[cfg(feature = "ndarray")]
mod nd {
    use super::*;

    impl<T: Element> From<ndarray::ArrayD<T>> for Tensor<T> {
        fn from(a: ndarray::ArrayD<T>) -> Tensor<T> {
            let shape = a.shape().to_vec();
            let data = a.as_standard_layout().iter().copied().collect();
            Tensor { shape, data }
        }
    }

    impl<T: Element> From<Tensor<T>> for ndarray::ArrayD<T> {
        fn from(t: Tensor<T>) -> ndarray::ArrayD<T> {
            // The lengths agree by construction.
            ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&t.shape), t.data)
                .unwrap_or_else(|_| ndarray::ArrayD::from_elem(ndarray::IxDyn(&[0]), T::default()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "ndarray")]
    #[test]
    fn ndarray_round_trip() {
        let t = Tensor::from_fn([2, 3], |i| (i[0] * 3 + i[1]) as f32);
        let a: ndarray::ArrayD<f32> = t.clone().into();
        assert_eq!(a.shape(), &[2, 3]);
        assert_eq!(a[[1, 2]], 5.0);
        // A transposed (non-standard-layout) array converts row-major.
        let back: Tensor<f32> = a.reversed_axes().into();
        assert_eq!(back.shape(), &[3, 2]);
        assert_eq!(back.as_slice(), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    fn constructors() {
        let t = Tensor::from_fn([2, 3], |i| (i[0] * 10 + i[1]) as i32);
        assert_eq!(t.as_slice(), &[0, 1, 2, 10, 11, 12]);
        assert_eq!(t.get(&[1, 2]), Some(&12));
        assert_eq!(t.get(&[2, 0]), None);
        assert!(Tensor::<f32>::from_vec([2, 2], vec![1.0; 3]).is_err());
        let z: Tensor<f32> = Tensor::zeros([0, 5]);
        assert!(z.is_empty());
        assert!(Tensor::<u8>::from_vec([usize::MAX, 3], vec![]).is_err());
        assert!(Tensor::<f64>::try_zeros([1 << 40, 1 << 30]).is_err());
        assert!(Tensor::<f64>::try_zeros([1usize << 62]).is_err());
        assert_eq!(Tensor::<u8>::try_zeros([2, 3]).unwrap().len(), 6);
    }
}
