//! Memory safety by construction: every load and store is proven in bounds.
//!
//! The proof walks the multi-dimensional loop nest with a [`Prover`] that
//! knows the enclosing loops' ranges, `let` values and the conditions of
//! enclosing `if`s — statement `if`s as well as the lazy `if`, `&&` and `||`
//! of expressions, so a guarded padding load is proven under its guard.
//! Run with symbolic dims once per lowering; whatever that cannot prove is
//! proven again per call with the dims bound to the call's shapes, and an
//! access that still cannot be proven is an [`Error::Bounds`] before any
//! code runs. Backends rely on this and emit unchecked accesses.

use crate::error::{BoundsError, Error};
use crate::expr::{BufId, Expr, Show};
use crate::prover::Prover;
use crate::stmt::{DisplayNames, LoweredFunc, Stmt};

/// An access that could not be proven in bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unproven {
    /// The buffer.
    pub buffer: String,
    /// Which index.
    pub dim: usize,
    /// The index expression, printed.
    pub index: String,
    /// The buffer's extent in that dim, printed.
    pub extent: String,
    /// `true` for a store.
    pub store: bool,
    /// Why no call can prove it, when that is certain: the index adds a
    /// value of unknown range (a scalar input, a loaded `i64`) that no
    /// enclosing condition or `let` mentions (printed).
    pub never: Option<String>,
}

impl Unproven {
    /// As the error of an access no call can prove ([`Unproven::never`]).
    pub fn to_never_error(&self, func: &str) -> Error {
        let why = self.never.as_deref().unwrap_or("a value of unknown range");
        Error::Bounds(BoundsError {
            func: func.to_string(),
            message: format!(
                "the {} of `{}` can never be proven in bounds: index {} is `{}`, which adds {why} that nothing bounds; guard the access with `if` (the index `>= 0` and `< {}`) or clamp the index",
                if self.store { "store" } else { "load" },
                self.buffer,
                self.dim,
                self.index,
                self.extent
            ),
            origin: None,
        })
    }

    /// As an error of function `func`.
    pub fn to_error(&self, func: &str, dims: Option<&[i64]>) -> Error {
        let shape = match dims {
            Some(d) => format!(" with dims {d:?}"),
            None => String::new(),
        };
        Error::Bounds(BoundsError {
            func: func.to_string(),
            message: format!(
                "cannot prove that the {} of `{}` is in bounds{}: index {} is `{}`, which must stay in 0..{}; guard it with `if`",
                if self.store { "store" } else { "load" },
                self.buffer,
                shape,
                self.dim,
                self.index,
                self.extent
            ),
            origin: None,
        })
    }
}

/// Proves every access of a (multi-dimensional) function; returns those
/// that could not be proven.
pub fn prove(f: &LoweredFunc) -> Vec<Unproven> {
    let names = DisplayNames::new(f);
    let mut w = Walker { f, names, out: vec![], ctx: vec![] };
    let mut p = Prover::thorough();
    w.stmt(&f.body, &mut p);
    w.out
}

struct Walker<'a> {
    f: &'a LoweredFunc,
    names: DisplayNames<'a>,
    out: Vec<Unproven>,
    /// The conditions and `let` values enclosing the current point (what
    /// could bound a value in an index).
    ctx: Vec<Expr>,
}

impl Walker<'_> {
    /// The value of unknown range an index adds that nothing enclosing it
    /// mentions, if any: a scalar input or a loaded `i64` with a non-zero
    /// coefficient (a call binds dims, never those, so no call can prove
    /// such an access).
    fn never(&self, i: &Expr) -> Option<String> {
        let a = crate::arith::Affine::of(i)?;
        let mentioned = |e: &Expr| self.ctx.iter().any(|c| c.any(&mut |x| x == e));
        a.terms.iter().filter(|(atom, _)| !mentioned(&atom.to_expr())).find_map(|(atom, _)| match atom {
            crate::arith::Atom::Other(e @ Expr::Param(..)) => {
                Some(format!("`{}`, a scalar input", Show(e, &self.names)))
            }
            crate::arith::Atom::Other(e) if crate::prover::unbounded(e) => {
                Some(format!("`{}`, a value read from a tensor", Show(e, &self.names)))
            }
            _ => None,
        })
    }

    fn access(&mut self, buf: BufId, idx: &[Expr], store: bool, p: &Prover) {
        let b = self.f.buffer(buf);
        for (d, (i, ext)) in idx.iter().zip(&b.shape).enumerate() {
            let upper = Expr::binary(crate::expr::BinOp::Sub, ext.clone(), i.clone()) - 1;
            if !(p.nonneg(i) && p.nonneg(&upper)) {
                let u = Unproven {
                    buffer: b.name.clone(),
                    dim: d,
                    index: Show(i, &self.names).to_string(),
                    extent: Show(ext, &self.names).to_string(),
                    store,
                    never: self.never(i),
                };
                if !self.out.contains(&u) {
                    self.out.push(u);
                }
            }
        }
    }

    fn expr(&mut self, e: &Expr, p: &mut Prover) {
        match e {
            Expr::Load(l) => {
                for i in &l.idx {
                    self.expr(i, p);
                }
                self.access(l.buf, &l.idx, false, p);
            }
            Expr::If(c, a, b) => {
                self.expr(c, p);
                let m = p.mark();
                // A branch under a constant contradiction never runs.
                self.ctx.push((**c).clone());
                if c.as_const().is_none_or(|v| v.is_true()) {
                    p.push_cond(c, true);
                    self.expr(a, p);
                    p.reset(m);
                }
                if c.as_const().is_none_or(|v| !v.is_true()) {
                    p.push_cond(c, false);
                    self.expr(b, p);
                    p.reset(m);
                }
                self.ctx.pop();
            }
            Expr::And(a, b) | Expr::Or(a, b) => {
                self.expr(a, p);
                let is_and = matches!(e, Expr::And(..));
                if a.as_const().is_some_and(|v| v.is_true() != is_and) {
                    return;
                }
                let m = p.mark();
                p.push_cond(a, is_and);
                self.ctx.push((**a).clone());
                self.expr(b, p);
                self.ctx.pop();
                p.reset(m);
            }
            _ => {
                for c in e.children() {
                    self.expr(c, p);
                }
            }
        }
    }

    fn stmt(&mut self, s: &Stmt, p: &mut Prover) {
        match s {
            Stmt::For(l) => {
                self.expr(&l.min, p);
                self.expr(&l.extent, p);
                let m = p.mark();
                p.push_loop(l.var.id, &l.min, &l.extent);
                self.stmt(&l.body, p);
                p.reset(m);
            }
            Stmt::Seq(v) => v.iter().for_each(|s| self.stmt(s, p)),
            Stmt::Let(b) => {
                self.expr(&b.1, p);
                let m = p.mark();
                p.push_let(b.0.id, &b.1);
                self.ctx.push(b.1.clone());
                self.stmt(&b.2, p);
                self.ctx.pop();
                p.reset(m);
            }
            Stmt::If(i) => {
                self.expr(&i.cond, p);
                let m = p.mark();
                self.ctx.push(i.cond.clone());
                if i.cond.as_const().is_none_or(|v| v.is_true()) {
                    p.push_cond(&i.cond, true);
                    self.stmt(&i.then, p);
                    p.reset(m);
                }
                if let Some(e) = &i.els
                    && i.cond.as_const().is_none_or(|v| !v.is_true())
                {
                    p.push_cond(&i.cond, false);
                    self.stmt(e, p);
                    p.reset(m);
                }
                self.ctx.pop();
            }
            Stmt::Store(st) => {
                for i in &st.idx {
                    self.expr(i, p);
                }
                self.expr(&st.value, p);
                self.access(st.buf, &st.idx, true, p);
            }
            Stmt::Alloc(_, body) => self.stmt(body, p),
            Stmt::Nop => {}
        }
    }
}
