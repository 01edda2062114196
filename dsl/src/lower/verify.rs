//! IR verification, run between passes: a failure is a texpr bug.
//!
//! Checks: every variable is bound by an enclosing loop or `let`; loads and
//! stores name existing buffers with one index per dim (one after
//! flattening); temporaries are used only inside their `alloc`; operand and
//! store types agree; loop bounds are `i64` and conditions `bool`; and,
//! after tail partitioning, vectorized and unrolled loops have constant
//! extents.

use std::collections::HashSet;

use crate::dtype::DType;
use crate::error::{Error, InternalError, Result};
use crate::expr::{BufId, Expr, VarId};
use crate::stmt::{BufKind, ForKind, LoweredFunc, Stmt};

/// Verifies `f` after pass `pass`; `const_fixed` requires constant extents
/// on vectorized and unrolled loops.
pub(crate) fn verify(f: &LoweredFunc, pass: &str, const_fixed: bool) -> Result<()> {
    let mut v = Verifier { f, pass, vars: HashSet::new(), allocs: HashSet::new(), const_fixed };
    v.stmt(&f.body)
}

struct Verifier<'a> {
    f: &'a LoweredFunc,
    pass: &'a str,
    vars: HashSet<VarId>,
    allocs: HashSet<BufId>,
    const_fixed: bool,
}

impl Verifier<'_> {
    fn fail(&self, msg: String) -> Error {
        Error::Internal(InternalError::new(format!("IR verification after pass `{}`", self.pass), msg))
    }

    fn buffer(&self, b: BufId, rank: usize) -> Result<()> {
        let Some(buf) = self.f.buffers.get(b.0 as usize) else {
            return Err(self.fail(format!("unknown buffer t{}", b.0)));
        };
        let want = if self.f.flat { 1 } else { buf.shape.len() };
        if rank != want {
            return Err(self.fail(format!("`{}` accessed with {rank} indices, expected {want}", buf.name)));
        }
        if buf.kind == BufKind::Temp && !self.allocs.contains(&b) {
            return Err(self.fail(format!("temporary `{}` used outside its allocation", buf.name)));
        }
        Ok(())
    }

    fn expr(&self, e: &Expr) -> Result<()> {
        let mut err = None;
        e.visit(&mut |x| {
            if err.is_some() {
                return;
            }
            let r = (|| -> Result<()> {
                match x {
                    Expr::Var(v) if !self.vars.contains(&v.id) => {
                        Err(self.fail(format!("variable `{}` used out of scope", self.f.vars.name(v.id))))
                    }
                    Expr::Load(l) => {
                        self.buffer(l.buf, l.idx.len())?;
                        if self.f.buffers[l.buf.0 as usize].dtype != l.dtype {
                            return Err(self.fail("load type differs from buffer type".into()));
                        }
                        if l.idx.iter().any(|i| i.dtype() != DType::INDEX) {
                            return Err(self.fail("non-i64 index".into()));
                        }
                        Ok(())
                    }
                    Expr::Binary(_, a, b) | Expr::Cmp(_, a, b) if a.dtype() != b.dtype() => {
                        Err(self.fail(format!("operands of different types in `{x}`")))
                    }
                    Expr::And(a, b) | Expr::Or(a, b) if a.dtype() != DType::Bool || b.dtype() != DType::Bool => {
                        Err(self.fail("non-bool operand of && or ||".into()))
                    }
                    Expr::If(c, a, b) | Expr::Select(c, a, b) if c.dtype() != DType::Bool || a.dtype() != b.dtype() => {
                        Err(self.fail("ill-typed if/select".into()))
                    }
                    Expr::Dim(d) if *d as usize >= self.f.dims.len() => Err(self.fail(format!("unknown dim {d}"))),
                    Expr::Param(p, t) if self.f.params.get(*p as usize).map(|x| x.dtype) != Some(*t) => {
                        Err(self.fail(format!("bad parameter {p}")))
                    }
                    _ => Ok(()),
                }
            })();
            if let Err(e) = r {
                err = Some(e);
            }
        });
        err.map_or(Ok(()), Err)
    }

    fn stmt(&mut self, s: &Stmt) -> Result<()> {
        match s {
            Stmt::For(l) => {
                self.expr(&l.min)?;
                self.expr(&l.extent)?;
                if l.min.dtype() != DType::INDEX || l.extent.dtype() != DType::INDEX || l.var.dtype != DType::INDEX {
                    return Err(self.fail("loop bounds must be i64".into()));
                }
                if self.const_fixed
                    && matches!(l.kind, ForKind::Vectorized | ForKind::Unrolled)
                    && l.extent.as_int().is_none()
                {
                    return Err(self.fail(format!(
                        "{:?} loop `{}` with a non-constant extent",
                        l.kind,
                        self.f.vars.name(l.var.id)
                    )));
                }
                if self.vars.contains(&l.var.id) {
                    return Err(self.fail(format!("loop variable `{}` bound twice", self.f.vars.name(l.var.id))));
                }
                self.vars.insert(l.var.id);
                let r = self.stmt(&l.body);
                self.vars.remove(&l.var.id);
                r
            }
            Stmt::Seq(v) => v.iter().try_for_each(|s| self.stmt(s)),
            Stmt::Let(b) => {
                self.expr(&b.1)?;
                if b.1.dtype() != b.0.dtype {
                    return Err(self.fail("let value type differs from variable type".into()));
                }
                self.vars.insert(b.0.id);
                let r = self.stmt(&b.2);
                self.vars.remove(&b.0.id);
                r
            }
            Stmt::If(i) => {
                self.expr(&i.cond)?;
                if i.cond.dtype() != DType::Bool {
                    return Err(self.fail("non-bool condition".into()));
                }
                self.stmt(&i.then)?;
                if let Some(e) = &i.els {
                    self.stmt(e)?;
                }
                Ok(())
            }
            Stmt::Store(st) => {
                self.buffer(st.buf, st.idx.len())?;
                st.idx.iter().try_for_each(|e| self.expr(e))?;
                self.expr(&st.value)?;
                let buf = &self.f.buffers[st.buf.0 as usize];
                if st.value.dtype() != buf.dtype {
                    return Err(self.fail(format!(
                        "store of `{}` into `{}` of `{}`",
                        st.value.dtype(),
                        buf.name,
                        buf.dtype
                    )));
                }
                if matches!(buf.kind, BufKind::Input(_)) {
                    return Err(self.fail(format!("store into input `{}`", buf.name)));
                }
                Ok(())
            }
            Stmt::Alloc(b, body) => {
                let Some(buf) = self.f.buffers.get(b.0 as usize) else {
                    return Err(self.fail(format!("alloc of unknown buffer t{}", b.0)));
                };
                if buf.kind != BufKind::Temp {
                    return Err(self.fail(format!("alloc of non-temporary `{}`", buf.name)));
                }
                for d in &buf.shape {
                    self.expr(d)?;
                }
                self.allocs.insert(*b);
                let r = self.stmt(body);
                self.allocs.remove(b);
                r
            }
            Stmt::Nop => Ok(()),
        }
    }
}
