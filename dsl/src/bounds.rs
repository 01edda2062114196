//! A small prover for integer index facts.
//!
//! The questions lowering asks are all of the form "is this `i64`
//! expression ≥ 0 here?": is an access in bounds, is a guard always true in
//! the main loop, is `min(a, b)` just `a`. The [`Prover`] answers them from
//! what the enclosing code establishes — loop ranges, `if` conditions, `let`
//! bindings — by Fourier–Motzkin-style elimination on [`Affine`] forms:
//! the innermost variable is replaced by its lower or upper bound (whichever
//! can only make the goal smaller), until only dims and a constant remain.
//! Facts from guards are used by subtracting them from the goal, which is
//! what proves padded convolutions safe (`h + r - 1 >= 0` under
//! `if h + r >= 1`). `min`/`max` split into the forms they are the minimum or
//! maximum of. The prover is sound and deliberately incomplete: "not proven"
//! is always a safe answer.

use crate::arith::{Affine, Atom};
use crate::dtype::DType;
use crate::expr::{BinOp, CmpOp, Expr, UnOp, VarId};
use crate::typeck::Range;

/// At most this many alternative forms of one `min`/`max` expression.
const MAX_FORMS: usize = 16;

/// The forms whose minimum `e` is (`e = min(forms)`), if `e` is built from
/// `+ - min max` and constant multiples.
pub fn min_forms(e: &Expr) -> Option<Vec<Affine>> {
    forms(e, true)
}

/// The forms whose maximum `e` is.
pub fn max_forms(e: &Expr) -> Option<Vec<Affine>> {
    forms(e, false)
}

fn forms(e: &Expr, min: bool) -> Option<Vec<Affine>> {
    if e.dtype() != DType::INDEX {
        return None;
    }
    let pairwise = |a: Vec<Affine>, b: Vec<Affine>, k: i64| -> Option<Vec<Affine>> {
        let mut out = Vec::with_capacity(a.len() * b.len());
        for x in &a {
            for y in &b {
                out.push(x.add_scaled(y, k)?);
            }
        }
        (out.len() <= MAX_FORMS).then_some(out)
    };
    match e {
        Expr::Binary(BinOp::Add, a, b) => pairwise(forms(a, min)?, forms(b, min)?, 1),
        Expr::Binary(BinOp::Sub, a, b) => pairwise(forms(a, min)?, forms(b, !min)?, -1),
        Expr::Binary(BinOp::Mul, a, b) => {
            let (k, x) = match (a.as_int(), b.as_int()) {
                (Some(k), _) => (k, b),
                (_, Some(k)) => (k, a),
                _ => return Some(vec![Affine::of(e)?]),
            };
            let fs = forms(x, if k >= 0 { min } else { !min })?;
            fs.iter().map(|f| f.scale(k)).collect()
        }
        Expr::Unary(UnOp::Neg, a) => forms(a, !min)?.iter().map(|f| f.scale(-1)).collect(),
        Expr::Binary(BinOp::Min, a, b) if min => {
            let mut v = forms(a, true)?;
            v.extend(forms(b, true)?);
            (v.len() <= MAX_FORMS).then_some(v)
        }
        Expr::Binary(BinOp::Max, a, b) if !min => {
            let mut v = forms(a, false)?;
            v.extend(forms(b, false)?);
            (v.len() <= MAX_FORMS).then_some(v)
        }
        _ => Some(vec![Affine::of(e)?]),
    }
}

/// A bounded quantity: `m·x ≥ L` for each lower and `m·x ≤ U` for each upper.
#[derive(Clone, Debug)]
struct Bounded {
    atom: Atom,
    lower: Vec<(i64, Affine)>,
    upper: Vec<(i64, Affine)>,
}

/// What the code around a point establishes, and questions about it.
#[derive(Clone, Debug, Default)]
pub struct Prover {
    /// Variables in scope, outermost first.
    scopes: Vec<Bounded>,
    /// Affine forms known to be ≥ 0.
    facts: Vec<Affine>,
}

/// A saved state of a [`Prover`], to return to after a scope.
#[derive(Clone, Copy, Debug)]
pub struct Mark(usize, usize);

impl Prover {
    /// An empty context: dims are ≥ 0 and nothing else is known.
    pub fn new() -> Prover {
        Prover::default()
    }

    /// Saves the state.
    pub fn mark(&self) -> Mark {
        Mark(self.scopes.len(), self.facts.len())
    }

    /// Returns to a saved state.
    pub fn reset(&mut self, m: Mark) {
        self.scopes.truncate(m.0);
        self.facts.truncate(m.1);
    }

    /// Enters `for v in min..min + extent` (inside the loop: at least one
    /// iteration happens, so `extent ≥ 1` is a fact too).
    pub fn push_loop(&mut self, v: VarId, min: &Expr, extent: &Expr) {
        let lower = max_forms(min).unwrap_or_default();
        let last = Expr::binary(BinOp::Sub, Expr::binary(BinOp::Add, min.clone(), extent.clone()), Expr::int(1));
        let upper = min_forms(&last).unwrap_or_default();
        for u in &upper {
            for l in &lower {
                if let Some(f) = u.sub(l) {
                    self.push_fact_form(f);
                }
            }
        }
        self.scopes.push(Bounded {
            atom: Atom::Var(v),
            lower: lower.into_iter().map(|l| (1, l)).collect(),
            upper: upper.into_iter().map(|u| (1, u)).collect(),
        });
    }

    /// Enters a variable with a known range `lo..hi` (exclusive).
    pub fn push_range(&mut self, v: VarId, lo: &Expr, hi: &Expr) {
        let extent = Expr::binary(BinOp::Sub, hi.clone(), lo.clone());
        self.push_loop(v, lo, &extent);
    }

    /// Enters `let v = value`.
    pub fn push_let(&mut self, v: VarId, value: &Expr) {
        let lower = max_forms(value).unwrap_or_default();
        let upper = min_forms(value).unwrap_or_default();
        self.scopes.push(Bounded {
            atom: Atom::Var(v),
            lower: lower.into_iter().map(|l| (1, l)).collect(),
            upper: upper.into_iter().map(|u| (1, u)).collect(),
        });
    }

    fn push_fact_form(&mut self, f: Affine) {
        if f.as_const().is_none() && !self.facts.contains(&f) && self.facts.len() < 64 {
            self.facts.push(f);
        }
    }

    /// Records that `cond` has the value `truth` (from an `if`, `&&`, ...).
    /// Only integer comparisons and their `&&`/`||`/`!` combinations add
    /// facts; anything else is ignored (which is sound).
    pub fn push_cond(&mut self, cond: &Expr, truth: bool) {
        match cond {
            Expr::And(a, b) if truth => {
                self.push_cond(a, true);
                self.push_cond(b, true);
            }
            Expr::Or(a, b) if !truth => {
                self.push_cond(a, false);
                self.push_cond(b, false);
            }
            Expr::Unary(UnOp::Not, a) => self.push_cond(a, !truth),
            Expr::Cmp(op, a, b) if a.dtype() == DType::INDEX => {
                let op = if truth { *op } else { op.negate() };
                // Each comparison becomes `e >= 0` facts.
                let ge = |x: &Expr, y: &Expr, c: i64| Expr::binary(BinOp::Sub, Expr::binary(BinOp::Sub, x.clone(), y.clone()), Expr::int(c));
                let es: Vec<Expr> = match op {
                    CmpOp::Lt => vec![ge(b, a, 1)],
                    CmpOp::Le => vec![ge(b, a, 0)],
                    CmpOp::Gt => vec![ge(a, b, 1)],
                    CmpOp::Ge => vec![ge(a, b, 0)],
                    CmpOp::Eq => vec![ge(a, b, 0), ge(b, a, 0)],
                    CmpOp::Ne => vec![],
                };
                for e in es {
                    // e = min(forms) >= 0 means every form is >= 0.
                    if let Some(fs) = min_forms(&e) {
                        for f in fs {
                            self.push_fact_form(f);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Is `e >= 0` wherever the current context holds?
    pub fn nonneg(&self, e: &Expr) -> bool {
        if let Some(fs) = min_forms(e) {
            if fs.iter().all(|f| self.nonneg_affine(f)) {
                return true;
            }
        }
        if let Some(fs) = max_forms(e)
            && fs.len() > 1
        {
            return fs.iter().any(|f| self.nonneg_affine(f));
        }
        false
    }

    /// Is `a <= b`?
    pub fn le(&self, a: &Expr, b: &Expr) -> bool {
        self.nonneg(&Expr::binary(BinOp::Sub, b.clone(), a.clone()))
    }

    /// Is `a < b`?
    pub fn lt(&self, a: &Expr, b: &Expr) -> bool {
        self.nonneg(&Expr::binary(BinOp::Sub, Expr::binary(BinOp::Sub, b.clone(), a.clone()), Expr::int(1)))
    }

    /// Decides an integer comparison if the context allows.
    pub fn decide(&self, op: CmpOp, a: &Expr, b: &Expr) -> Option<bool> {
        if a.dtype() != DType::INDEX {
            return None;
        }
        let t = match op {
            CmpOp::Lt => self.lt(a, b),
            CmpOp::Le => self.le(a, b),
            CmpOp::Gt => self.lt(b, a),
            CmpOp::Ge => self.le(b, a),
            CmpOp::Eq => self.le(a, b) && self.le(b, a),
            CmpOp::Ne => self.lt(a, b) || self.lt(b, a),
        };
        if t {
            return Some(true);
        }
        let f = match op {
            CmpOp::Lt => self.le(b, a),
            CmpOp::Le => self.lt(b, a),
            CmpOp::Gt => self.le(a, b),
            CmpOp::Ge => self.lt(a, b),
            CmpOp::Eq => self.lt(a, b) || self.lt(b, a),
            CmpOp::Ne => self.le(a, b) && self.le(b, a),
        };
        f.then_some(false)
    }

    /// Is the affine form `g >= 0`? Tries elimination, then elimination of
    /// `g - fact` for each fact and each pair of facts.
    pub fn nonneg_affine(&self, g: &Affine) -> bool {
        let mut budget = 4000u32;
        if self.elim(g.clone(), &mut budget) {
            return true;
        }
        for (i, f) in self.facts.iter().enumerate() {
            if let Some(d) = g.sub(f)
                && self.elim(d.clone(), &mut budget)
            {
                return true;
            }
            if self.facts.len() <= 24 {
                for f2 in &self.facts[i..] {
                    if let Some(d2) = g.sub(f).and_then(|d| d.sub(f2))
                        && self.elim(d2, &mut budget)
                    {
                        return true;
                    }
                }
            }
            if budget == 0 {
                return false;
            }
        }
        false
    }

    /// Depth of an atom in the elimination order (higher goes first).
    fn depth(&self, a: &Atom) -> Option<usize> {
        match a {
            Atom::Var(v) => self.scopes.iter().position(|b| b.atom == Atom::Var(*v)).map(|i| 2 * i + 2),
            Atom::Dim(_) => None,
            Atom::Other(e) => {
                let mut d = 1usize;
                e.visit(&mut |x| {
                    if let Expr::Var(v) = x
                        && let Some(p) = self.scopes.iter().position(|b| b.atom == Atom::Var(v.id))
                    {
                        d = d.max(2 * p + 3);
                    }
                });
                Some(d)
            }
        }
    }

    /// Bounds of an atom that is not a variable.
    fn atom_bounds(a: &Atom) -> Option<Bounded> {
        let Atom::Other(e) = a else { return None };
        let mut b = Bounded { atom: a.clone(), lower: vec![], upper: vec![] };
        match e {
            Expr::Binary(BinOp::Div, x, d) => {
                let d = d.as_int().filter(|d| *d > 0)?;
                let x = Affine::of(x)?;
                // d*A <= x  and  d*A >= x - (d - 1)
                b.upper.push((d, x.clone()));
                b.lower.push((d, x.plus(-(d - 1))?));
            }
            Expr::Binary(BinOp::Rem, _, d) => {
                let d = d.as_int().filter(|d| *d > 0)?;
                b.lower.push((1, Affine::constant(0)));
                b.upper.push((1, Affine::constant(d - 1)));
            }
            Expr::Cast(DType::I64, x) if x.dtype().is_int() && x.dtype() != DType::U64 => {
                let (lo, hi) = crate::value::int_range(x.dtype());
                b.lower.push((1, Affine::constant(lo as i64)));
                b.upper.push((1, Affine::constant(hi as i64)));
                // A cast of an index expression keeps its value.
                if x.dtype() == DType::I64 {
                    return None;
                }
            }
            Expr::Binary(BinOp::Max, x, y) => {
                b.lower.push((1, Affine::of(x)?));
                b.lower.push((1, Affine::of(y)?));
            }
            Expr::Binary(BinOp::Min, x, y) => {
                b.upper.push((1, Affine::of(x)?));
                b.upper.push((1, Affine::of(y)?));
            }
            _ => return None,
        }
        Some(b)
    }

    fn elim(&self, g: Affine, budget: &mut u32) -> bool {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        // The deepest atom goes first.
        let Some((atom, k)) = g
            .terms
            .iter()
            .filter_map(|(a, k)| self.depth(a).map(|d| (d, a, *k)))
            .max_by_key(|(d, ..)| *d)
            .map(|(_, a, k)| (a.clone(), k))
        else {
            // Only dims (>= 0) and the constant remain.
            return g.c >= 0 && g.terms.iter().all(|(a, k)| matches!(a, Atom::Dim(_)) && *k >= 0);
        };
        let bounds = match &atom {
            Atom::Var(v) => self.scopes.iter().rev().find(|b| b.atom == Atom::Var(*v)).cloned(),
            other => Prover::atom_bounds(other),
        };
        let Some(b) = bounds else { return false };
        let mut rest = g.clone();
        rest.take(&atom);
        let choices = if k > 0 { &b.lower } else { &b.upper };
        for (m, bound) in choices {
            // k > 0: m*A >= L  =>  m*g >= m*rest + k*L.
            // k < 0: m*A <= U  =>  m*g >= m*rest + k*U.
            let Some(next) = rest.scale(*m).and_then(|r| r.add_scaled(bound, k)) else { continue };
            if self.elim(next, budget) {
                return true;
            }
        }
        false
    }
}

/// The static check of the type checker: is `idx` out of the range
/// `0..extent` at some point of the box `ranges` for every shape that makes
/// the box non-empty? `Some(true)` past the end, `Some(false)` below zero,
/// `None` when that cannot be shown.
pub(crate) fn always_out_of_bounds(idx: &Expr, extent: &Expr, ranges: &[(VarId, Range)]) -> Option<bool> {
    let a = Affine::of(idx)?;
    let ext = Affine::of(extent)?;
    // Extremes of an affine form over the box: each variable at an end.
    let extreme = |want_max: bool| -> Option<Affine> {
        let mut out = Affine::constant(a.c);
        for (atom, k) in &a.terms {
            let term = match atom {
                Atom::Var(v) => {
                    let (_, r) = ranges.iter().find(|(x, _)| x == v)?;
                    let hi_last = Affine::of(&r.hi)?.plus(-1)?;
                    let lo = Affine::of(&r.lo)?;
                    if (*k > 0) == want_max { hi_last } else { lo }
                }
                Atom::Dim(_) => Affine::atom(atom.clone()),
                Atom::Other(_) => return None,
            };
            out = out.add_scaled(&term, *k)?;
        }
        Some(out)
    };
    // For every assignment of dims >= 1: all dim coefficients >= 0 and the
    // value at dims = 1 >= 0.
    let always_nonneg = |f: &Affine| -> bool {
        f.terms.iter().all(|(a, k)| matches!(a, Atom::Dim(_)) && *k >= 0)
            && f.c + f.terms.iter().map(|(_, k)| *k).sum::<i64>() >= 0
    };
    if let Some(hi) = extreme(true)
        && let Some(d) = hi.sub(&ext)
        && always_nonneg(&d)
    {
        return Some(true);
    }
    if let Some(lo) = extreme(false)
        && let Some(d) = lo.scale(-1).and_then(|x| x.plus(-1))
        && always_nonneg(&d)
    {
        return Some(false);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::VarTable;

    #[test]
    fn tail_clamped_access_is_in_bounds() {
        // for io in 0..(M + 31) / 32 { for ii in 0..min(32, M - io*32) { a[io*32 + ii] } }
        let mut vt = VarTable::default();
        let io = vt.add_index("io");
        let ii = vt.add_index("ii");
        let m = Expr::Dim(0);
        let mut p = Prover::new();
        p.push_loop(io.id, &Expr::int(0), &((m.clone() + 31) / 32));
        p.push_loop(ii.id, &Expr::int(0), &Expr::min(Expr::int(32), m.clone() - Expr::Var(io) * 32));
        let idx = Expr::Var(io) * 32 + Expr::Var(ii);
        assert!(p.nonneg(&idx));
        assert!(p.lt(&idx, &m));
        assert!(!p.lt(&idx, &(m.clone() - 1)));
    }

    #[test]
    fn ceil_div_outer_loop_with_guard() {
        // for io in 0..(M+3)/4 { for ii in 0..4 { if io*4 + ii < M { a[io*4+ii] } } }
        let mut vt = VarTable::default();
        let io = vt.add_index("io");
        let ii = vt.add_index("ii");
        let m = Expr::Dim(0);
        let mut p = Prover::new();
        p.push_loop(io.id, &Expr::int(0), &((m.clone() + 3) / 4));
        p.push_loop(ii.id, &Expr::int(0), &Expr::int(4));
        let idx = Expr::Var(io) * 4 + Expr::Var(ii);
        assert!(!p.lt(&idx, &m));
        p.push_cond(&Expr::cmp(CmpOp::Lt, idx.clone(), m.clone()), true);
        assert!(p.lt(&idx, &m));
        // And the outer loop's last iteration is in range: io*4 <= M - 1.
        assert!(p.le(&(Expr::Var(io) * 4), &(m - 1)));
    }

    #[test]
    fn padding_guard() {
        // for h in 0..H, r in 0..3: if h + r >= 1 && h + r <= H { x[h + r - 1] }
        let mut vt = VarTable::default();
        let h = Expr::Var(vt.add_index("h"));
        let r = Expr::Var(vt.add_index("r"));
        let hd = Expr::Dim(0);
        let mut p = Prover::new();
        p.push_loop(VarId(0), &Expr::int(0), &hd);
        p.push_loop(VarId(1), &Expr::int(0), &Expr::int(3));
        let idx = h.clone() + r.clone() - 1;
        assert!(!p.nonneg(&idx));
        let g = Expr::and(
            Expr::cmp(CmpOp::Ge, h.clone() + r.clone(), Expr::int(1)),
            Expr::cmp(CmpOp::Le, h + r, hd.clone()),
        );
        p.push_cond(&g, true);
        assert!(p.nonneg(&idx));
        assert!(p.lt(&idx, &hd));
    }

    #[test]
    fn max_in_region_min() {
        // local index h + r - 1 - max(h - 1, 0) under h + r >= 1
        let mut vt = VarTable::default();
        let h = Expr::Var(vt.add_index("h"));
        let r = Expr::Var(vt.add_index("r"));
        let mut p = Prover::new();
        p.push_loop(VarId(0), &Expr::int(0), &Expr::Dim(0));
        p.push_loop(VarId(1), &Expr::int(0), &Expr::int(3));
        p.push_cond(&Expr::cmp(CmpOp::Ge, h.clone() + r.clone(), Expr::int(1)), true);
        let local = h.clone() + r - 1 - Expr::max(h - 1, Expr::int(0));
        assert!(p.nonneg(&local));
    }

    #[test]
    fn static_check() {
        let mut vt = VarTable::default();
        let i = vt.add_index("i");
        let ranges = vec![(i.id, Range { lo: Expr::int(0), hi: Expr::Dim(0) })];
        assert_eq!(always_out_of_bounds(&(Expr::Var(i) + 1), &Expr::Dim(0), &ranges), Some(true));
        assert_eq!(always_out_of_bounds(&(Expr::Var(i) - 1), &Expr::Dim(0), &ranges), Some(false));
        assert_eq!(always_out_of_bounds(&Expr::Var(i), &Expr::Dim(0), &ranges), None);
        assert_eq!(always_out_of_bounds(&(Expr::Var(i) * 2), &Expr::Dim(0), &ranges), None);
    }
}
