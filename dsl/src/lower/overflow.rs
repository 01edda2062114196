//! Index arithmetic that fits the machine.
//!
//! The bounds proof ([`super::safety`]) and the simplifier reason about
//! `i64` index arithmetic over the integers; generated code computes it
//! modulo 2^64. The two agree exactly when no `i64` operation that an index,
//! a loop bound, a guard or an allocation size depends on can overflow —
//! which a call can break with huge dims (a zero-element input of shape
//! `[2^62, 0]` binds a dim of 2^62 without allocating anything), and a
//! definition can break with arithmetic on loaded `i64` values.
//!
//! This module checks it by interval evaluation of the flat nest (what
//! backends compile): loop variables range over their loops, `let`s carry
//! their value's interval, the conditions of `if`s refine the intervals of
//! the variables and input loads they compare, loaded integers and casts to
//! `i64` range over their type. Every `i64` `+ - * / %` and negation in an
//! index, a loop's bounds, a temporary's size, or a comparison the prover
//! takes a fact from must stay inside `i64` (and a temporary's byte count
//! inside `isize`). The prover takes facts only from comparisons that do no
//! arithmetic on a value of unknown range ([`crate::prover::exact`]): `if
//! idx[i] + 1 < N` may wrap, guards nothing and is not checked, while `if
//! idx[i] < N - 1` guards and is. Arithmetic that only computes values
//! wraps as the language defines and is not checked; narrower integer types
//! wrap too (the prover sees a cast of them to `i64` as its type's range),
//! as do what the prover keeps whole (a call, an `if` inside an index).
//!
//! [`safe_limit`] runs once per lowering with every dim in `0..=L` and every
//! `i64` scalar input in `-L..=L`, for the largest power of two `L` that
//! passes; a call whose dims and scalars stay within it needs no further
//! work. Other calls run [`check`] with their values (cached per shape by
//! the caller).

use std::collections::HashMap;

use crate::dtype::DType;
use crate::expr::{BinOp, Builtin, CmpOp, Expr, Show, UnOp, VarId};
use crate::stmt::{BufKind, DisplayNames, LoweredFunc, Stmt};
use crate::value::{floor_div, int_range};

/// A closed interval of integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Iv {
    pub lo: i128,
    pub hi: i128,
}

impl Iv {
    pub(crate) fn point(v: i128) -> Iv {
        Iv { lo: v, hi: v }
    }

    fn of_type(t: DType) -> Iv {
        let (lo, hi) = int_range(t);
        Iv { lo, hi }
    }

    fn fits(self, t: DType) -> bool {
        let (lo, hi) = int_range(t);
        self.lo >= lo && self.hi <= hi
    }

    fn union(self, o: Iv) -> Iv {
        Iv { lo: self.lo.min(o.lo), hi: self.hi.max(o.hi) }
    }

    fn meet(self, o: Iv) -> Iv {
        Iv { lo: self.lo.max(o.lo), hi: self.hi.min(o.hi) }
    }

    fn corners(a: Iv, b: Iv, f: impl Fn(i128, i128) -> i128) -> Iv {
        let c = [f(a.lo, b.lo), f(a.lo, b.hi), f(a.hi, b.lo), f(a.hi, b.hi)];
        Iv { lo: *c.iter().min().unwrap_or(&0), hi: *c.iter().max().unwrap_or(&0) }
    }

    fn max_abs(self) -> i128 {
        self.lo.saturating_abs().max(self.hi.saturating_abs())
    }
}

/// What can overflow.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Overflow {
    /// An `i64` operation whose result can leave `i64`.
    Arith { expr: Expr, iv: Iv },
    /// A temporary whose size in bytes can pass `isize::MAX`.
    Alloc { buffer: String, bytes: i128 },
}

impl Overflow {
    /// A readable description.
    pub(crate) fn describe(&self, f: &LoweredFunc) -> String {
        match self {
            Overflow::Arith { expr, iv } => {
                let names = DisplayNames::new(f);
                let range = |v: i128| match v {
                    v if v > i64::MAX as i128 => "more than i64::MAX".to_string(),
                    v if v < i64::MIN as i128 => "less than i64::MIN".to_string(),
                    v => v.to_string(),
                };
                format!(
                    "index arithmetic `{}` overflows i64: it can be {} .. {}",
                    Show(expr, &names),
                    range(iv.lo),
                    range(iv.hi)
                )
            }
            Overflow::Alloc { buffer, bytes } => {
                format!("the temporary `{buffer}` overflows: it would take {bytes} bytes")
            }
        }
    }
}

type R<T> = std::result::Result<T, Box<Overflow>>;

/// Checks every index-relevant `i64` operation of a flat function for dims
/// and `i64` scalar inputs in the given intervals (scalars of other types
/// range over their type).
pub(crate) fn check(f: &LoweredFunc, dims: &[Iv], params: &[Iv]) -> std::result::Result<(), Box<Overflow>> {
    let mut e = Eval { f, dims, params, vars: HashMap::new(), facts: vec![] };
    e.stmt(&f.body)
}

/// The largest `L = 2^k` (k ≤ 62) such that every call with dims in
/// `0..=L` and `i64` scalar inputs in `-L..=L` passes [`check`]; `None` if
/// even `L = 1` does not (the definition's index arithmetic can overflow for
/// any shapes, e.g. arithmetic on a loaded `i64` before it is clamped).
pub(crate) fn safe_limit(f: &LoweredFunc) -> Option<i64> {
    let passes = |k: u32| {
        let l = 1i128 << k;
        let dims = vec![Iv { lo: 0, hi: l }; f.dims.len()];
        let params = vec![Iv { lo: -l, hi: l }; f.params.len()];
        check(f, &dims, &params).is_ok()
    };
    if !passes(0) {
        return None;
    }
    let (mut ok, mut bad) = (0u32, 63u32);
    while bad - ok > 1 {
        let mid = (ok + bad) / 2;
        if passes(mid) { ok = mid } else { bad = mid }
    }
    Some(1i64 << ok)
}

struct Eval<'a> {
    f: &'a LoweredFunc,
    dims: &'a [Iv],
    params: &'a [Iv],
    /// Loop and `let` variables: their interval, or why computing them can
    /// overflow (reported where an index uses them).
    vars: HashMap<VarId, R<Iv>>,
    /// Intervals that enclosing conditions establish for variables, input
    /// loads and their casts.
    facts: Vec<(Expr, Iv)>,
}

impl Eval<'_> {
    fn stmt(&mut self, s: &Stmt) -> R<()> {
        match s {
            Stmt::For(l) => {
                let min = self.index(&l.min)?;
                let ext = self.index(&l.extent)?;
                if ext.hi <= 0 {
                    return Ok(());
                }
                // Backends compute `min + extent` as the loop's end.
                let end = Iv { lo: min.lo, hi: min.hi + ext.hi };
                if !end.fits(DType::INDEX) {
                    let expr = Expr::binary(BinOp::Add, l.min.clone(), l.extent.clone());
                    return Err(Box::new(Overflow::Arith { expr, iv: end }));
                }
                let iv = Iv { lo: min.lo, hi: min.hi + ext.hi - 1 };
                let old = self.vars.insert(l.var.id, Ok(iv));
                let r = self.stmt(&l.body);
                self.restore(l.var.id, old);
                r
            }
            Stmt::Seq(v) => v.iter().try_for_each(|s| self.stmt(s)),
            Stmt::Let(b) => {
                let (var, value, body) = &**b;
                // Loads inside the value are accessed whatever the value is
                // used for; its own arithmetic matters where indices use it.
                self.value(value)?;
                let iv = self.eval(value, true).map(|iv| iv.unwrap_or(Iv::of_type(DType::INDEX)));
                let old = self.vars.insert(var.id, iv);
                let r = self.stmt(body);
                self.restore(var.id, old);
                r
            }
            Stmt::If(i) => {
                self.cond(&i.cond)?;
                let m = self.facts.len();
                self.refine(&i.cond, true);
                let r = self.stmt(&i.then);
                self.facts.truncate(m);
                r?;
                if let Some(e) = &i.els {
                    self.refine(&i.cond, false);
                    let r = self.stmt(e);
                    self.facts.truncate(m);
                    r?;
                }
                Ok(())
            }
            Stmt::Store(st) => {
                for i in &st.idx {
                    self.index(i)?;
                }
                self.value(&st.value)
            }
            Stmt::Alloc(buf, body) => {
                let b = self.f.buffer(*buf);
                let mut bytes = b.dtype.bytes() as i128;
                for d in &b.shape {
                    bytes = bytes.saturating_mul(self.index(d)?.hi.max(0));
                }
                if bytes > isize::MAX as i128 {
                    return Err(Box::new(Overflow::Alloc { buffer: b.name.clone(), bytes }));
                }
                self.stmt(body)
            }
            Stmt::Nop => Ok(()),
        }
    }

    fn restore(&mut self, v: VarId, old: Option<R<Iv>>) {
        match old {
            Some(o) => self.vars.insert(v, o),
            None => self.vars.remove(&v),
        };
    }

    /// An index, a loop bound or a size: its interval.
    fn index(&mut self, e: &Expr) -> R<Iv> {
        Ok(self.eval(e, true)?.unwrap_or(Iv::of_type(DType::INDEX)))
    }

    /// A computed value: only the indices of its loads (and the conditions
    /// guarding them) are checked.
    fn value(&mut self, e: &Expr) -> R<()> {
        self.eval(e, false).map(|_| ())
    }

    /// A condition: each comparison the prover takes a fact from (both
    /// sides [`exact`](crate::prover::exact): no arithmetic on a value of
    /// unknown range) is checked strictly, since the proof relies on it;
    /// the others only choose a branch.
    fn cond(&mut self, c: &Expr) -> R<()> {
        match c {
            Expr::And(a, b) | Expr::Or(a, b) => {
                self.cond(a)?;
                let m = self.facts.len();
                self.refine(a, matches!(c, Expr::And(..)));
                let res = self.cond(b);
                self.facts.truncate(m);
                res
            }
            Expr::Unary(UnOp::Not, a) => self.cond(a),
            Expr::Cmp(_, a, b) => {
                let strict = a.dtype() == DType::INDEX && crate::prover::exact_comparison(a, b);
                self.eval(c, strict).map(|_| ())
            }
            leaf => self.eval(leaf, false).map(|_| ()),
        }
    }

    /// The interval of an integer expression (`None` for other types). With
    /// `strict`, an `i64` operation that can overflow is an error; without,
    /// it wraps (any `i64`). Strictness follows the arithmetic the prover
    /// looks into; what it keeps whole (a cast, a call, an `if`) is
    /// evaluated without it. Load indices are always strict.
    fn eval(&mut self, e: &Expr, strict: bool) -> R<Option<Iv>> {
        let t = e.dtype();
        let whole = || if t.is_int() { Some(Iv::of_type(t)) } else { None };
        let iv = match e {
            Expr::Const(s) => match s.as_i64() {
                Some(v) if t.is_int() => Some(Iv::point(v as i128)),
                _ => whole(),
            },
            Expr::Dim(d) => Some(self.dims.get(*d as usize).copied().unwrap_or(Iv::of_type(DType::INDEX))),
            Expr::Param(p, t) => match self.params.get(*p as usize) {
                Some(iv) if *t == DType::INDEX => Some(*iv),
                _ => whole(),
            },
            Expr::Var(v) => match self.vars.get(&v.id) {
                Some(Ok(iv)) => Some(*iv),
                Some(Err(o)) if strict && v.dtype == DType::INDEX => return Err(o.clone()),
                _ => whole(),
            },
            Expr::Load(l) => {
                for i in &l.idx {
                    self.eval(i, true)?;
                }
                whole()
            }
            Expr::Cast(to, x) => {
                // The prover sees a cast as its source type's range.
                let from = self.eval(x, false)?;
                match from {
                    Some(iv) if to.is_int() && iv.fits(*to) => Some(iv),
                    _ => whole(),
                }
            }
            Expr::Unary(UnOp::Neg, a) => {
                let a = self.eval(a, strict && crate::prover::visible(e))?;
                a.map(|a| Iv { lo: -a.hi, hi: -a.lo })
            }
            Expr::Unary(UnOp::Not, a) if t.is_int() => {
                let a = self.eval(a, false)?;
                // Bitwise not of an integer: `-x - 1`.
                a.map(|a| Iv { lo: -a.hi - 1, hi: -a.lo - 1 })
            }
            Expr::Binary(op, a, b) => {
                // Strictness follows what the prover looks into.
                let strict = strict && crate::prover::visible(e);
                let (x, y) = (self.eval(a, strict)?, self.eval(b, strict)?);
                let any = Iv::of_type(DType::INDEX);
                match (x, y) {
                    // A product with a factor of unknown range (a loaded
                    // `i64`) has no range for the prover either: it is an
                    // opaque atom, whatever value the machine computes.
                    (Some(x), Some(y)) if *op == BinOp::Mul && t == DType::INDEX && (x == any || y == any) => {
                        return Ok(Some(self.refined(e, any)));
                    }
                    (Some(x), Some(y)) => Some(binary(*op, x, y)),
                    _ => None,
                }
            }
            Expr::Cmp(_, a, b) => {
                let strict = strict && a.dtype() == DType::INDEX;
                self.eval(a, strict)?;
                self.eval(b, strict)?;
                None
            }
            Expr::Unary(UnOp::Not, _) | Expr::And(..) | Expr::Or(..) => {
                // A boolean value: its left side guards what its right side loads.
                self.cond(e)?;
                None
            }
            Expr::Select(c, a, b) => {
                self.eval(c, false)?;
                let (x, y) = (self.eval(a, false)?, self.eval(b, false)?);
                x.zip(y).map(|(x, y)| x.union(y))
            }
            Expr::If(c, a, b) => {
                self.cond(c)?;
                let m = self.facts.len();
                self.refine(c, true);
                let x = self.eval(a, false);
                self.facts.truncate(m);
                self.refine(c, false);
                let y = self.eval(b, false);
                self.facts.truncate(m);
                x?.zip(y?).map(|(x, y)| x.union(y))
            }
            Expr::Call(f, args) => {
                let strict = strict && *f == Builtin::Clamp && t == DType::INDEX;
                let mut ivs = Vec::with_capacity(args.len());
                for a in args.iter() {
                    ivs.push(self.eval(a, strict)?);
                }
                match (f, ivs.as_slice()) {
                    (Builtin::Abs, [Some(x)]) if t.is_int() => {
                        let hi = x.max_abs();
                        let lo = if x.lo <= 0 && x.hi >= 0 { 0 } else { x.lo.abs().min(x.hi.abs()) };
                        Some(Iv { lo, hi })
                    }
                    (Builtin::Clamp, [Some(x), Some(lo), Some(hi)]) if t.is_int() => {
                        Some(Iv { lo: x.lo.max(lo.lo).min(hi.lo), hi: x.hi.max(lo.hi).min(hi.hi) })
                    }
                    _ => whole(),
                }
            }
        };
        let Some(iv) = iv else { return Ok(None) };
        if !t.is_int() {
            return Ok(None);
        }
        let iv = self.refined(e, iv);
        if iv.fits(t) {
            return Ok(Some(iv));
        }
        // Only arithmetic the prover looks into must not wrap; what it keeps
        // whole (`abs(..)`, an `if`) is one value, whatever it is.
        if strict && t == DType::INDEX && crate::prover::visible(e) {
            return Err(Box::new(Overflow::Arith { expr: e.clone(), iv }));
        }
        // Wraps (as the language defines for computed values).
        Ok(Some(Iv::of_type(t)))
    }

    /// `iv` narrowed by what enclosing conditions say of `e`.
    fn refined(&self, e: &Expr, iv: Iv) -> Iv {
        if !refinable(self.f, e) {
            return iv;
        }
        self.facts.iter().filter(|(x, _)| x == e).fold(iv, |acc, (_, f)| acc.meet(*f))
    }

    /// Records what `c` being `truth` says of the variables and input loads
    /// it compares.
    fn refine(&mut self, c: &Expr, truth: bool) {
        match c {
            Expr::And(a, b) if truth => {
                self.refine(a, true);
                self.refine(b, true);
            }
            Expr::Or(a, b) if !truth => {
                self.refine(a, false);
                self.refine(b, false);
            }
            Expr::Unary(UnOp::Not, a) => self.refine(a, !truth),
            Expr::Cmp(op, a, b) if a.dtype().is_int() => {
                let op = if truth { *op } else { op.negate() };
                let ivs = (self.eval(a, false), self.eval(b, false));
                let (Ok(Some(x)), Ok(Some(y))) = ivs else { return };
                // `a op b`: bounds for `a` from `b`, and for `b` from `a`.
                let (for_a, for_b) = match op {
                    CmpOp::Lt => (Iv { lo: i128::MIN, hi: y.hi - 1 }, Iv { lo: x.lo + 1, hi: i128::MAX }),
                    CmpOp::Le => (Iv { lo: i128::MIN, hi: y.hi }, Iv { lo: x.lo, hi: i128::MAX }),
                    CmpOp::Gt => (Iv { lo: y.lo + 1, hi: i128::MAX }, Iv { lo: i128::MIN, hi: x.hi - 1 }),
                    CmpOp::Ge => (Iv { lo: y.lo, hi: i128::MAX }, Iv { lo: i128::MIN, hi: x.hi }),
                    CmpOp::Eq => (y, x),
                    CmpOp::Ne => return,
                };
                if refinable(self.f, a) {
                    self.facts.push(((**a).clone(), for_a));
                }
                if refinable(self.f, b) {
                    self.facts.push(((**b).clone(), for_b));
                }
            }
            _ => {}
        }
    }
}

/// Expressions whose value is the same wherever a condition on them holds:
/// variables, loads of inputs (never written), and integer casts of them.
fn refinable(f: &LoweredFunc, e: &Expr) -> bool {
    match e {
        Expr::Var(_) => true,
        Expr::Load(l) => matches!(f.buffers.get(l.buf.0 as usize).map(|b| b.kind), Some(BufKind::Input(_))),
        Expr::Cast(t, x) => t.is_int() && refinable(f, x),
        _ => false,
    }
}

/// The exact interval of an integer operation over the integers.
fn binary(op: BinOp, x: Iv, y: Iv) -> Iv {
    match op {
        BinOp::Add => Iv { lo: x.lo + y.lo, hi: x.hi + y.hi },
        BinOp::Sub => Iv { lo: x.lo - y.hi, hi: x.hi - y.lo },
        BinOp::Mul => Iv::corners(x, y, |a, b| a.saturating_mul(b)),
        BinOp::Min => Iv { lo: x.lo.min(y.lo), hi: x.hi.min(y.hi) },
        BinOp::Max => Iv { lo: x.lo.max(y.lo), hi: x.hi.max(y.hi) },
        BinOp::Div => {
            // A zero divisor gives 0; otherwise floor division is monotone
            // in the dividend and, on each side of zero, in the divisor.
            let mut out: Option<Iv> = (y.lo <= 0 && y.hi >= 0).then_some(Iv::point(0));
            for (lo, hi) in [(y.lo, y.hi.min(-1)), (y.lo.max(1), y.hi)] {
                if lo <= hi {
                    let q = Iv::corners(x, Iv { lo, hi }, floor_div);
                    out = Some(out.map_or(q, |o| o.union(q)));
                }
            }
            out.unwrap_or(Iv::point(0))
        }
        BinOp::Rem => {
            // The sign of the divisor, smaller in magnitude; 0 for 0.
            let m = y.max_abs().saturating_sub(1).max(0);
            let lo = if y.lo < 0 { -m } else { 0 };
            let hi = if y.hi > 0 { m } else { 0 };
            let r = Iv { lo, hi };
            // A dividend already in `0..|y|` (for a positive divisor) is itself.
            if y.lo > 0 && x.lo >= 0 { r.meet(Iv { lo: 0, hi: x.hi }) } else { r }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_of_division_and_remainder() {
        let iv = |lo, hi| Iv { lo, hi };
        assert_eq!(binary(BinOp::Div, iv(-7, 7), iv(2, 2)), iv(-4, 3));
        assert_eq!(binary(BinOp::Div, iv(-7, 7), iv(-2, 2)), iv(-7, 7));
        assert_eq!(binary(BinOp::Div, iv(10, 20), iv(0, 0)), iv(0, 0));
        assert_eq!(binary(BinOp::Rem, iv(0, 100), iv(8, 8)), iv(0, 7));
        assert_eq!(binary(BinOp::Rem, iv(0, 3), iv(8, 8)), iv(0, 3));
        assert_eq!(binary(BinOp::Rem, iv(-5, 5), iv(-3, 3)), iv(-2, 2));
        assert_eq!(binary(BinOp::Mul, iv(-2, 3), iv(-5, 4)), iv(-15, 12));
    }
}
