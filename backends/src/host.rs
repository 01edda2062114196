//! What a call does on any device: device buffers for the tensors, the
//! root temporaries and scratch memory, the arguments and launch size of
//! each kernel, and the results copied back.
//!
//! A [`Device`] (OpenCL, CUDA) supplies allocation, copies and launches;
//! everything else is shared.

use texpr_dsl::call::eval_dims;
use texpr_dsl::{BufId, BufKind, Data, DataMut, Error, Result, Scalar, Target, bf16, f16};

use crate::dialect::Dialect;
use crate::kir::{GpuFunc, KArg};
use crate::launch::{self, Dims, Limits};

/// A scalar kernel argument, in the kernel's parameter type.
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum ScalarArg {
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    F32(f32),
    F64(f64),
}

/// An argument of a launch.
pub enum Arg<'a, B> {
    /// A device buffer.
    Buf(&'a B),
    /// A value.
    Scalar(ScalarArg),
}

/// A device the shared host logic runs on.
pub trait Device {
    /// A device buffer.
    type Buf;
    /// A compiled program.
    type Module;
    /// Launch limits.
    fn limits(&self) -> Limits;
    /// A buffer of `bytes` (at least 1) bytes.
    fn alloc(&self, bytes: usize) -> std::result::Result<Self::Buf, String>;
    /// Copies host bytes to a buffer.
    fn upload(&self, buf: &mut Self::Buf, data: &[u8]) -> std::result::Result<(), String>;
    /// Copies a buffer to host bytes (waits for the kernels before it).
    fn download(&self, buf: &Self::Buf, out: &mut [u8]) -> std::result::Result<(), String>;
    /// Launches kernel `name` of `module`.
    fn launch(
        &self,
        module: &Self::Module,
        name: &str,
        args: &[Arg<'_, Self::Buf>],
        dims: Dims,
    ) -> std::result::Result<(), String>;
}

/// A function compiled for a device: its kernels and how to call them.
pub struct Prepared<D: Dialect> {
    /// The dialect it was written in.
    pub dialect: D,
    /// The kernels.
    pub gpu: GpuFunc,
    /// The C names of the kernels, in launch order.
    pub names: Vec<String>,
}

impl<D: Dialect> Prepared<D> {
    fn err(&self, message: String) -> Error {
        Error::Backend { func: self.gpu.func.name.clone(), target: self.dialect.target(), message }
    }

    fn bytes_of(&self, b: BufId) -> usize {
        let buf = self.gpu.func.buffer(b);
        self.dialect.storage_bytes(buf.dtype, !matches!(buf.kind, BufKind::Temp))
    }

    /// Runs every kernel on `dev` with the arguments of `call`.
    pub fn run<V: Device>(&self, dev: &V, module: &V::Module, call: &mut texpr_dsl::Call<'_, '_>) -> Result<()> {
        let f = &self.gpu.func;
        let dims = call.dims;
        let e = |m: String| self.err(m);
        // Device buffers of every tensor and root temporary.
        let mut bufs: Vec<Option<V::Buf>> = (0..f.buffers.len()).map(|_| None).collect();
        for (i, buf) in f.buffers.iter().enumerate() {
            let b = BufId(i as u32);
            match buf.kind {
                BufKind::Input(n) => {
                    let data = call.inputs.get(n as usize).ok_or_else(|| e(format!("missing input {n}")))?;
                    let bytes = data_bytes(data);
                    let mut d = dev.alloc(bytes.len()).map_err(e)?;
                    if !bytes.is_empty() {
                        dev.upload(&mut d, bytes).map_err(e)?;
                    }
                    bufs[i] = Some(d);
                }
                BufKind::Output(n) => {
                    let data = call.outputs.get(n as usize).ok_or_else(|| e(format!("missing output {n}")))?;
                    bufs[i] = Some(dev.alloc(data.len() * self.bytes_of(b)).map_err(e)?);
                }
                BufKind::Temp if self.gpu.temps.contains(&b) => {
                    let mut n: i64 = 1;
                    for d in &buf.shape {
                        let v = eval_dims(d, dims).ok_or_else(|| e(format!("cannot size temporary `{}`", buf.name)))?;
                        n = n
                            .checked_mul(v.max(0))
                            .ok_or_else(|| e(format!("temporary `{}` is too large", buf.name)))?;
                    }
                    let bytes = usize::try_from(n)
                        .ok()
                        .and_then(|n| n.checked_mul(self.bytes_of(b)))
                        .ok_or_else(|| e(format!("temporary `{}` is too large", buf.name)))?;
                    bufs[i] = Some(dev.alloc(bytes).map_err(e)?);
                }
                BufKind::Temp => {}
            }
        }
        let limits = dev.limits();
        for (k, name) in self.gpu.kernels.iter().zip(&self.names) {
            let ld = launch::dims_of(k, dims, &limits).map_err(e)?;
            // Scratch memory: per-thread slices.
            let mut scratch = vec![];
            for s in &k.scratch {
                let mut len: i64 = 0;
                for b in &s.len {
                    let u = launch::upper(b, dims).ok_or_else(|| {
                        e(format!(
                            "cannot bound the size of temporary `{}` in kernel `{}`",
                            f.buffer(s.buf).name,
                            k.name
                        ))
                    })?;
                    len = len.max(u);
                }
                let len = len.max(1);
                let bytes = (len as u64)
                    .checked_mul(ld.threads())
                    .and_then(|n| n.checked_mul(self.bytes_of(s.buf) as u64))
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| e(format!("scratch memory for `{}` is too large", f.buffer(s.buf).name)))?;
                scratch.push((s.buf, dev.alloc(bytes).map_err(e)?, len));
            }
            let mut args: Vec<Arg<'_, V::Buf>> = vec![];
            for a in &k.args {
                match *a {
                    KArg::Buf(b) => {
                        let d = bufs[b.0 as usize]
                            .as_ref()
                            .ok_or_else(|| e(format!("no device buffer for `{}`", f.buffer(b).name)))?;
                        args.push(Arg::Buf(d));
                    }
                    KArg::Scratch(b) => {
                        let (_, d, len) =
                            scratch.iter().find(|(x, _, _)| *x == b).ok_or_else(|| e("missing scratch".into()))?;
                        args.push(Arg::Buf(d));
                        args.push(Arg::Scalar(ScalarArg::I64(*len)));
                    }
                    KArg::Dim(d) => {
                        let v = *dims.get(d as usize).ok_or_else(|| e(format!("missing dim {d}")))?;
                        args.push(Arg::Scalar(ScalarArg::I64(v)));
                    }
                    KArg::Param(p) => {
                        let v = *call.params.get(p as usize).ok_or_else(|| e(format!("missing parameter {p}")))?;
                        args.push(Arg::Scalar(self.scalar_arg(v)));
                    }
                }
            }
            dev.launch(module, name, &args, ld).map_err(e)?;
        }
        for (i, buf) in f.buffers.iter().enumerate() {
            if let BufKind::Output(n) = buf.kind {
                let out = call.outputs.get_mut(n as usize).ok_or_else(|| e(format!("missing output {n}")))?;
                let Some(d) = &bufs[i] else { continue };
                if out.is_empty() {
                    continue;
                }
                match bytes_mut(out) {
                    // Straight into the caller's slice.
                    Some(bytes) => dev.download(d, bytes).map_err(e)?,
                    None => {
                        let mut bytes = vec![0u8; out.len() * self.bytes_of(BufId(i as u32))];
                        dev.download(d, &mut bytes).map_err(e)?;
                        write_back(out, &bytes);
                    }
                }
            }
        }
        Ok(())
    }

    /// A parameter as the kernel's parameter type expects it.
    fn scalar_arg(&self, v: Scalar) -> ScalarArg {
        let ty = self.dialect.param_type(v.dtype());
        match v {
            Scalar::Bool(b) => ScalarArg::U8(b as u8),
            Scalar::I8(x) => ScalarArg::I8(x),
            Scalar::I16(x) => ScalarArg::I16(x),
            Scalar::I32(x) => ScalarArg::I32(x),
            Scalar::I64(x) => ScalarArg::I64(x),
            Scalar::U8(x) => ScalarArg::U8(x),
            Scalar::U16(x) => ScalarArg::U16(x),
            Scalar::U32(x) => ScalarArg::U32(x),
            Scalar::U64(x) => ScalarArg::U64(x),
            Scalar::F32(x) => ScalarArg::F32(x),
            Scalar::F64(x) => ScalarArg::F64(x),
            Scalar::F16(x) if ty == "float" => ScalarArg::F32(x.to_f32()),
            Scalar::F16(x) => ScalarArg::U16(x.to_bits()),
            Scalar::BF16(x) if ty == "float" => ScalarArg::F32(x.to_f32()),
            Scalar::BF16(x) => ScalarArg::U16(x.to_bits()),
        }
    }
}

/// Element types that are plain bytes: no padding, no pointers.
///
/// # Safety
/// An implementor has no padding bytes and no pointers or references, so
/// viewing its memory as `[u8]` reads only initialized bytes ([`raw`]
/// relies on it).
unsafe trait Plain: Copy {}
/// Plain element types for which every bit pattern is a value (not `bool`).
///
/// # Safety
/// Every bit pattern of `size_of::<Self>()` bytes is a valid value, so bytes
/// written through a `[u8]` view are always a valid `Self` ([`raw_mut`]
/// relies on it).
unsafe trait AnyBits: Plain {}
// SAFETY: `bool` is one byte with no padding and no pointers.
unsafe impl Plain for bool {}
macro_rules! any_bits {
    // SAFETY: primitive integers and floats (and `half`'s `repr(transparent)`
    // u16 wrappers) have no padding, no pointers, and every bit pattern is a value.
    ($($t:ty),*) => { $(unsafe impl Plain for $t {} unsafe impl AnyBits for $t {})* };
}
any_bits!(i8, i16, i32, i64, u16, u32, u64, f16, bf16, f32, f64);

/// The bytes of `s`.
fn raw<T: Plain>(s: &[T]) -> &[u8] {
    // SAFETY: `T` is plain bytes (no padding); the view covers exactly the
    // slice's memory and borrows it.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), std::mem::size_of_val(s)) }
}

/// The bytes of `s`, writable.
fn raw_mut<T: AnyBits>(s: &mut [T]) -> &mut [u8] {
    // SAFETY: `T` is plain bytes and every bit pattern is a `T`; the view
    // covers exactly the slice's memory and borrows it mutably.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(s)) }
}

/// The bytes of host data, in Rust's layout (borrowed: no copy).
pub fn data_bytes<'a>(d: &'a Data<'_>) -> &'a [u8] {
    match d {
        Data::Bool(s) => raw(s),
        Data::I8(s) => raw(s),
        Data::I16(s) => raw(s),
        Data::I32(s) => raw(s),
        Data::I64(s) => raw(s),
        Data::U8(s) => s,
        Data::U16(s) => raw(s),
        Data::U32(s) => raw(s),
        Data::U64(s) => raw(s),
        Data::F16(s) => raw(s),
        Data::BF16(s) => raw(s),
        Data::F32(s) => raw(s),
        Data::F64(s) => raw(s),
    }
}

/// The bytes of an output to download into directly; `None` for `bool`
/// (a device byte other than 0 or 1 is no `bool`: see [`write_back`]).
fn bytes_mut<'a>(d: &'a mut DataMut<'_>) -> Option<&'a mut [u8]> {
    Some(match d {
        DataMut::Bool(_) => return None,
        DataMut::I8(s) => raw_mut(s),
        DataMut::I16(s) => raw_mut(s),
        DataMut::I32(s) => raw_mut(s),
        DataMut::I64(s) => raw_mut(s),
        DataMut::U8(s) => s,
        DataMut::U16(s) => raw_mut(s),
        DataMut::U32(s) => raw_mut(s),
        DataMut::U64(s) => raw_mut(s),
        DataMut::F16(s) => raw_mut(s),
        DataMut::BF16(s) => raw_mut(s),
        DataMut::F32(s) => raw_mut(s),
        DataMut::F64(s) => raw_mut(s),
    })
}

/// Writes device bytes back into host data.
pub fn write_back(out: &mut DataMut<'_>, bytes: &[u8]) {
    macro_rules! back {
        ($s:expr, $n:expr, $f:expr) => {
            for (dst, c) in $s.iter_mut().zip(bytes.chunks_exact($n)) {
                let mut a = [0u8; $n];
                a.copy_from_slice(c);
                *dst = $f(a);
            }
        };
    }
    match out {
        DataMut::Bool(s) => back!(s, 1, |a: [u8; 1]| a[0] != 0),
        DataMut::I8(s) => back!(s, 1, i8::from_ne_bytes),
        DataMut::I16(s) => back!(s, 2, i16::from_ne_bytes),
        DataMut::I32(s) => back!(s, 4, i32::from_ne_bytes),
        DataMut::I64(s) => back!(s, 8, i64::from_ne_bytes),
        DataMut::U8(s) => back!(s, 1, u8::from_ne_bytes),
        DataMut::U16(s) => back!(s, 2, u16::from_ne_bytes),
        DataMut::U32(s) => back!(s, 4, u32::from_ne_bytes),
        DataMut::U64(s) => back!(s, 8, u64::from_ne_bytes),
        DataMut::F16(s) => back!(s, 2, |a| f16::from_bits(u16::from_ne_bytes(a))),
        DataMut::BF16(s) => back!(s, 2, |a| bf16::from_bits(u16::from_ne_bytes(a))),
        DataMut::F32(s) => back!(s, 4, f32::from_ne_bytes),
        DataMut::F64(s) => back!(s, 8, f64::from_ne_bytes),
    }
}

/// The source with line numbers, for build errors.
pub fn numbered(source: &str) -> String {
    source.lines().enumerate().map(|(i, l)| format!("{:4} | {l}\n", i + 1)).collect()
}

/// The error of a target whose library or device is missing.
pub fn unavailable(target: Target, what: impl Into<String>) -> Error {
    Error::Unavailable { target, what: what.into() }
}
