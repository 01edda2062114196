//! The reference interpreter: runs a lowered loop nest with [`Scalar`]
//! semantics.
//!
//! It is the oracle every backend and every schedule is tested against, so
//! it is written for obviousness, not speed: a tree walk over the flat IR,
//! each value a [`Scalar`], every operation the one in [`crate::value`].
//! Parallel, vectorized, unrolled and GPU-bound loops run serially. The
//! bounds proof has already been checked before a call reaches it; it still
//! refuses (with an internal error, never a panic) an access outside a
//! buffer.

use crate::call::{Call, Executable};
use crate::dtype::{Data, DataMut};
use crate::error::{Error, InternalError, Result};
use crate::expr::{BufId, Expr};
use crate::stmt::{BufKind, LoweredFunc, Stmt};
use crate::value::Scalar;

/// Runs `f` (flattened) on the arguments of `call`.
pub fn run(f: &LoweredFunc, call: &mut Call<'_, '_>) -> Result<()> {
    if !f.flat {
        return Err(internal("the interpreter runs flattened functions"));
    }
    let mut bufs: Vec<Buf> = Vec::with_capacity(f.buffers.len());
    for b in &f.buffers {
        bufs.push(match b.kind {
            BufKind::Input(i) => Buf::In(i as usize),
            BufKind::Output(o) => Buf::Out(o as usize),
            BufKind::Temp => Buf::Temp(vec![]),
        });
    }
    let mut m = Machine { f, call, vars: vec![Scalar::I64(0); f.vars.len()], bufs };
    m.stmt(&f.body)
}

fn internal(msg: impl Into<String>) -> Error {
    Error::Internal(InternalError::new("interp", msg))
}

enum Buf {
    In(usize),
    Out(usize),
    Temp(Vec<Scalar>),
}

struct Machine<'a, 'c, 'd> {
    f: &'a LoweredFunc,
    call: &'a mut Call<'c, 'd>,
    vars: Vec<Scalar>,
    bufs: Vec<Buf>,
}

fn data_get(d: &Data<'_>, i: i64) -> Option<Scalar> {
    usize::try_from(i).ok().and_then(|i| d.get(i))
}

impl Machine<'_, '_, '_> {
    fn index(&mut self, e: &Expr) -> Result<i64> {
        self.eval(e)?.as_i64().ok_or_else(|| internal("non-integer index"))
    }

    fn load(&self, b: BufId, i: i64) -> Result<Scalar> {
        let oob = || internal(format!("load of `{}` at {i} out of bounds", self.f.buffer(b).name));
        match &self.bufs[b.0 as usize] {
            Buf::In(n) => data_get(self.call.inputs.get(*n).ok_or_else(oob)?, i).ok_or_else(oob),
            Buf::Out(n) => {
                let d = self.call.outputs.get(*n).ok_or_else(oob)?;
                usize::try_from(i).ok().and_then(|i| d.get(i)).ok_or_else(oob)
            }
            Buf::Temp(v) => usize::try_from(i).ok().and_then(|i| v.get(i).copied()).ok_or_else(oob),
        }
    }

    fn store(&mut self, b: BufId, i: i64, v: Scalar) -> Result<()> {
        let name = &self.f.buffer(b).name;
        let oob = || internal(format!("store to `{name}` at {i} out of bounds"));
        match &mut self.bufs[b.0 as usize] {
            Buf::In(_) => Err(internal("store to an input")),
            Buf::Out(n) => {
                let d: &mut DataMut<'_> = self.call.outputs.get_mut(*n).ok_or_else(oob)?;
                let ok = usize::try_from(i).ok().is_some_and(|i| d.set(i, v));
                if ok { Ok(()) } else { Err(oob()) }
            }
            Buf::Temp(vec) => {
                let slot = usize::try_from(i).ok().and_then(|i| vec.get_mut(i)).ok_or_else(oob)?;
                *slot = v;
                Ok(())
            }
        }
    }

    fn eval(&mut self, e: &Expr) -> Result<Scalar> {
        Ok(match e {
            Expr::Const(c) => *c,
            Expr::Var(v) => self.vars[v.id.0 as usize],
            Expr::Dim(d) => Scalar::I64(*self.call.dims.get(*d as usize).ok_or_else(|| internal("missing dim"))?),
            Expr::Param(p, _) => *self.call.params.get(*p as usize).ok_or_else(|| internal("missing parameter"))?,
            Expr::Load(l) => {
                let i = self.index(&l.idx[0])?;
                self.load(l.buf, i)?
            }
            Expr::Unary(op, a) => Scalar::unary(*op, self.eval(a)?),
            Expr::Binary(op, a, b) => {
                let (x, y) = (self.eval(a)?, self.eval(b)?);
                Scalar::binary(*op, x, y)
            }
            Expr::Cmp(op, a, b) => {
                let (x, y) = (self.eval(a)?, self.eval(b)?);
                Scalar::Bool(Scalar::cmp_op(*op, x, y))
            }
            Expr::And(a, b) => Scalar::Bool(self.eval(a)?.is_true() && self.eval(b)?.is_true()),
            Expr::Or(a, b) => Scalar::Bool(self.eval(a)?.is_true() || self.eval(b)?.is_true()),
            Expr::Cast(t, a) => self.eval(a)?.cast(*t),
            Expr::Select(c, a, b) => {
                let (c, x, y) = (self.eval(c)?, self.eval(a)?, self.eval(b)?);
                if c.is_true() { x } else { y }
            }
            Expr::If(c, a, b) => {
                if self.eval(c)?.is_true() {
                    self.eval(a)?
                } else {
                    self.eval(b)?
                }
            }
            Expr::Call(f, args) => {
                let mut vals = smallvec::SmallVec::<[Scalar; 3]>::new();
                for a in args.iter() {
                    vals.push(self.eval(a)?);
                }
                Scalar::call(*f, &vals)
            }
        })
    }

    fn stmt(&mut self, s: &Stmt) -> Result<()> {
        match s {
            Stmt::For(l) => {
                let min = self.index(&l.min)?;
                let extent = self.index(&l.extent)?;
                for i in 0..extent.max(0) {
                    self.vars[l.var.id.0 as usize] = Scalar::I64(min.wrapping_add(i));
                    self.stmt(&l.body)?;
                }
                Ok(())
            }
            Stmt::Seq(v) => v.iter().try_for_each(|s| self.stmt(s)),
            Stmt::Let(b) => {
                let v = self.eval(&b.1)?;
                self.vars[b.0.id.0 as usize] = v;
                self.stmt(&b.2)
            }
            Stmt::If(i) => {
                if self.eval(&i.cond)?.is_true() {
                    self.stmt(&i.then)
                } else if let Some(e) = &i.els {
                    self.stmt(e)
                } else {
                    Ok(())
                }
            }
            Stmt::Store(st) => {
                let i = self.index(&st.idx[0])?;
                let v = self.eval(&st.value)?;
                self.store(st.buf, i, v)
            }
            Stmt::Alloc(b, body) => {
                let buf = self.f.buffer(*b);
                let mut n: i64 = 1;
                for d in &buf.shape {
                    let d = self.index(d)?.max(0);
                    n = n.checked_mul(d).ok_or_else(|| internal("allocation size overflows"))?;
                }
                let n = usize::try_from(n).map_err(|_| internal("allocation too large"))?;
                let mut v = Vec::new();
                v.try_reserve_exact(n).map_err(|_| Error::Backend {
                    func: self.f.name.clone(),
                    target: crate::Target::Interp,
                    message: format!("cannot allocate {n} elements for `{}`", buf.name),
                })?;
                v.resize(n, Scalar::zero(buf.dtype));
                let saved = std::mem::replace(&mut self.bufs[b.0 as usize], Buf::Temp(v));
                let r = self.stmt(body);
                self.bufs[b.0 as usize] = saved;
                r
            }
            Stmt::Nop => Ok(()),
        }
    }
}

/// The interpreter as an [`Executable`].
pub struct Interpreter {
    func: LoweredFunc,
    /// Its deepest expression: the walk recurses that deep.
    depth: usize,
}

impl Interpreter {
    /// Wraps a flat lowered function.
    pub fn new(func: LoweredFunc) -> Interpreter {
        let mut depth = 0;
        func.body.visit_exprs(&mut |e| depth = depth.max(crate::deep::depth(e)));
        Interpreter { func, depth }
    }
}

impl Executable for Interpreter {
    unsafe fn run(&self, call: &mut Call<'_, '_>) -> Result<()> {
        // A deep definition runs on a deep stack (`crate::deep`).
        crate::deep::with_stack(self.depth, || run(&self.func, call))
    }
}
