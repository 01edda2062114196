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
use crate::expr::{BinOp, Builtin, CmpOp, Expr, UnOp, VarId};

/// Arithmetic the prover looks into (the rest it keeps whole as an atom).
/// A product with a factor of unknown range has no range either: it is
/// kept whole.
pub(crate) fn visible(e: &Expr) -> bool {
    if e.dtype() != DType::INDEX {
        return false;
    }
    match e {
        Expr::Binary(BinOp::Mul, a, b) => !unbounded(a) && !unbounded(b),
        Expr::Binary(..) | Expr::Unary(UnOp::Neg, _) | Expr::Call(Builtin::Clamp, _) => true,
        _ => false,
    }
}

/// An `i64` atom the prover knows no range for: a loaded `i64`, a cast
/// from a type `i64` cannot hold, a product with such a factor, and what
/// it keeps whole without a range (an `if`, a `select`, a call other than
/// `clamp`).
pub(crate) fn unbounded(e: &Expr) -> bool {
    match e {
        Expr::Load(l) => l.dtype == DType::INDEX,
        Expr::Cast(DType::I64, x) => !x.dtype().is_int() || x.dtype() == DType::U64,
        Expr::Binary(BinOp::Mul, a, b) => e.dtype() == DType::INDEX && (unbounded(a) || unbounded(b)),
        Expr::If(..) | Expr::Select(..) => e.dtype() == DType::INDEX,
        Expr::Call(f, _) => *f != Builtin::Clamp && e.dtype() == DType::INDEX,
        _ => false,
    }
}

/// `true` if the visible arithmetic of `e` never computes with an atom of
/// unknown range (only `min`, `max` and `clamp`, which cannot overflow, may
/// take one): then what `e` computes is what the prover reasons about
/// whenever its bounded parts fit in `i64` (which calls check).
pub(crate) fn exact(e: &Expr) -> bool {
    fn has_unbounded(e: &Expr) -> bool {
        unbounded(e) || (visible(e) && e.children().into_iter().any(has_unbounded))
    }
    let mut todo = vec![e];
    while let Some(e) = todo.pop() {
        if !visible(e) {
            continue;
        }
        match e {
            Expr::Binary(BinOp::Min | BinOp::Max, ..) | Expr::Call(Builtin::Clamp, _) => todo.extend(e.children()),
            _ if e.children().into_iter().any(has_unbounded) => return false,
            _ => todo.extend(e.children()),
        }
    }
    true
}

/// A comparison whose fact the prover may use: both sides [`exact`].
pub(crate) fn exact_comparison(a: &Expr, b: &Expr) -> bool {
    exact(a) && exact(b)
}

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

/// At most this many affine forms in a max-of-mins normal form.
const MAX_NORMAL: usize = 64;

/// `e` as `max_i min_j aᵢⱼ` over affine forms, distributing `+`, `-` and
/// constant multiples over `min` and `max`; `None` if too large.
pub fn max_of_mins(e: &Expr) -> Option<Vec<Vec<Affine>>> {
    normal(e, true)
}

/// Normal forms: with `mom`, `max_i min_j aᵢⱼ`; without, `min_i max_j aᵢⱼ`.
/// Sums combine outer × outer and inner × inner in both; negation swaps the
/// two forms; `max` is a union of branches in the first form and a product
/// in the second, and `min` the other way round.
fn normal(e: &Expr, mom: bool) -> Option<Vec<Vec<Affine>>> {
    if e.dtype() != DType::INDEX {
        return None;
    }
    let scale = |v: Vec<Vec<Affine>>, k: i64| -> Option<Vec<Vec<Affine>>> {
        v.iter().map(|m| m.iter().map(|a| a.scale(k)).collect()).collect()
    };
    let add = |x: Vec<Vec<Affine>>, y: Vec<Vec<Affine>>| -> Option<Vec<Vec<Affine>>> {
        let mut out = vec![];
        for p in &x {
            for q in &y {
                let mut m = vec![];
                for a in p {
                    for b in q {
                        m.push(a.add(b)?);
                    }
                }
                out.push(m);
            }
        }
        Some(out)
    };
    let union = |mut x: Vec<Vec<Affine>>, y: Vec<Vec<Affine>>| {
        x.extend(y);
        x
    };
    let product = |x: Vec<Vec<Affine>>, y: Vec<Vec<Affine>>| {
        let mut v = vec![];
        for p in &x {
            for q in &y {
                v.push(p.iter().chain(q).cloned().collect::<Vec<_>>());
            }
        }
        v
    };
    let out = match e {
        Expr::Binary(BinOp::Add, a, b) => add(normal(a, mom)?, normal(b, mom)?)?,
        Expr::Binary(BinOp::Sub, a, b) => add(normal(a, mom)?, scale(normal(b, !mom)?, -1)?)?,
        Expr::Unary(UnOp::Neg, a) => scale(normal(a, !mom)?, -1)?,
        Expr::Binary(BinOp::Mul, a, b) if a.as_int().is_some() || b.as_int().is_some() => {
            let (k, x) = match a.as_int() {
                Some(k) => (k, b),
                None => (b.as_int().unwrap_or(1), a),
            };
            scale(normal(x, if k >= 0 { mom } else { !mom })?, k)?
        }
        Expr::Binary(BinOp::Max, a, b) => {
            let (x, y) = (normal(a, mom)?, normal(b, mom)?);
            if mom { union(x, y) } else { product(x, y) }
        }
        Expr::Binary(BinOp::Min, a, b) => {
            let (x, y) = (normal(a, mom)?, normal(b, mom)?);
            if mom { product(x, y) } else { union(x, y) }
        }
        _ => vec![vec![Affine::of(e)?]],
    };
    (out.iter().map(|m| m.len()).sum::<usize>() <= MAX_NORMAL).then_some(out)
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
    /// Nesting of proofs started while bounding an atom.
    nested: std::cell::Cell<u32>,
    /// Also try case splits and Fourier–Motzkin refutation (slower; used
    /// by the bounds proof, not by the simplifier).
    thorough: bool,
    /// Answers for the current context (cleared when it changes).
    memo: std::cell::RefCell<std::collections::HashMap<Affine, bool>>,
}

/// A saved state of a [`Prover`], to return to after a scope.
#[derive(Clone, Copy, Debug)]
pub struct Mark(usize, usize);

impl Prover {
    /// An empty context: dims are ≥ 0 and nothing else is known.
    pub fn new() -> Prover {
        Prover::default()
    }

    /// A context that also tries case splits on `min`/`max` and
    /// Fourier–Motzkin refutation: what the bounds proof uses.
    pub fn thorough() -> Prover {
        Prover { thorough: true, ..Prover::default() }
    }

    /// Saves the state.
    pub fn mark(&self) -> Mark {
        Mark(self.scopes.len(), self.facts.len())
    }

    /// Returns to a saved state.
    pub fn reset(&mut self, m: Mark) {
        if self.scopes.len() != m.0 || self.facts.len() != m.1 {
            self.memo.get_mut().clear();
        }
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
        self.memo.get_mut().clear();
    }

    /// Enters a variable with a known range `lo..hi` (exclusive).
    pub fn push_range(&mut self, v: VarId, lo: &Expr, hi: &Expr) {
        let extent = Expr::binary(BinOp::Sub, hi.clone(), lo.clone());
        self.push_loop(v, lo, &extent);
    }

    /// Enters `let v = value`.
    pub fn push_let(&mut self, v: VarId, value: &Expr) {
        self.memo.get_mut().clear();
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
            // `p * q - c >= 0` with c >= 1 and p, q dims (non-negative): both
            // factors are at least 1 — what a non-empty fused loop over
            // `0..B * F` says about `B` and `F`.
            if let [(Atom::Other(Expr::Binary(BinOp::Mul, p, q)), 1)] = f.terms.as_slice()
                && f.c <= -1
                && matches!(**p, Expr::Dim(_))
                && matches!(**q, Expr::Dim(_))
            {
                for d in [p, q] {
                    if let Some(g) = Affine::of(d).and_then(|a| a.plus(-1)) {
                        self.facts.push(g);
                    }
                }
            }
            self.facts.push(f);
            self.memo.get_mut().clear();
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
            // A comparison that computes with a value of unknown range
            // (`idx[i] + 1 < N`) may wrap in `i64`: its fact could be false
            // on the machine, so it is not one (`idx[i] < N - 1` is).
            Expr::Cmp(op, a, b) if a.dtype() == DType::INDEX && exact_comparison(a, b) => {
                let op = if truth { *op } else { op.negate() };
                // Each comparison becomes `e >= 0` facts.
                let ge = |x: &Expr, y: &Expr, c: i64| {
                    Expr::binary(BinOp::Sub, Expr::binary(BinOp::Sub, x.clone(), y.clone()), Expr::int(c))
                };
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
    ///
    /// `e` is normalized to a maximum of minimums of affine forms; it is
    /// non-negative if, for some branch of the maximum, every form of its
    /// minimum is.
    pub fn nonneg(&self, e: &Expr) -> bool {
        if self.thorough { self.nonneg_split(e, 4) } else { self.nonneg_direct(e) }
    }

    fn nonneg_direct(&self, e: &Expr) -> bool {
        // Whole first: a guard's fact may be about `max(a, b)` as a whole.
        if Affine::of(e).is_some_and(|a| self.nonneg_affine(&a)) {
            return true;
        }
        match max_of_mins(e) {
            Some(branches) => branches.iter().any(|mins| mins.iter().all(|f| self.nonneg_affine(f))),
            None => Affine::of(e).is_some_and(|a| self.nonneg_affine(&a)),
        }
    }

    /// Proves directly, else splits on a `min`/`max` subterm: for
    /// `min(a, b)`, the case `a <= b` (where it is `a`) and the case `a > b`
    /// (where it is `b`) must both hold, each with its condition as a fact.
    fn nonneg_split(&self, e: &Expr, depth: u32) -> bool {
        if self.nonneg_direct(e) {
            return true;
        }
        if depth == 0 {
            return false;
        }
        let mut pick = None;
        e.visit(&mut |x| {
            if pick.is_none()
                && let Expr::Binary(op @ (BinOp::Min | BinOp::Max), a, b) = x
                && a.dtype() == DType::INDEX
            {
                pick = Some((x.clone(), *op, (**a).clone(), (**b).clone()));
            }
        });
        let Some((m, op, a, b)) = pick else { return false };
        let le = Expr::cmp(CmpOp::Le, a.clone(), b.clone());
        // min(a, b) is a when a <= b; max(a, b) is b when a <= b.
        let (when_le, when_gt) = if op == BinOp::Min { (a, b) } else { (b, a) };
        [(true, when_le), (false, when_gt)].into_iter().all(|(truth, v)| {
            let mut p = self.clone();
            p.push_cond(&le, truth);
            let e2 = crate::simplify::simplify(&e.rewrite(&mut |x| (*x == m).then(|| v.clone())));
            p.nonneg_split(&e2, depth - 1)
        })
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

    /// Is the affine form `g >= 0`? Tries numeric intervals, elimination,
    /// then elimination of `g - fact` for each fact and each pair of facts.
    pub fn nonneg_affine(&self, g: &Affine) -> bool {
        if let Some(r) = self.memo.borrow().get(g) {
            return *r;
        }
        // A cancelled lowering stops proving ("not proven" is always sound).
        if crate::cancel::cancelled() {
            return false;
        }
        let r = self.nonneg_affine_uncached(g);
        self.memo.borrow_mut().insert(g.clone(), r);
        r
    }

    fn nonneg_affine_uncached(&self, g: &Affine) -> bool {
        if let Some(lo) = self.affine_interval(g, 0).0
            && lo >= 0
        {
            return true;
        }
        let mut budget = if self.thorough { 4000u32 } else { 400 };
        if self.elim(g.clone(), &mut budget) {
            return true;
        }
        for (i, f) in self.facts.iter().enumerate() {
            if let Some(d) = g.sub(f)
                && self.elim(d.clone(), &mut budget)
            {
                return true;
            }
            if self.thorough && self.facts.len() <= 24 {
                for f2 in &self.facts[i..] {
                    if let Some(d2) = g.sub(f).and_then(|d| d.sub(f2))
                        && self.elim(d2, &mut budget)
                    {
                        return true;
                    }
                }
            }
            if budget == 0 {
                break;
            }
        }
        self.thorough && self.refute(g)
    }

    /// Fourier–Motzkin refutation: adds `-g - 1 >= 0` (the goal is false)
    /// to every constraint known about the atoms involved — facts, loop and
    /// `let` bounds, `x / d` and `x % d` definitions, casts' ranges, dims'
    /// signs — and eliminates atoms one at a time, tightening each derived
    /// constraint by the gcd of its coefficients (sound for integers). A
    /// constant negative constraint is a contradiction: the goal holds.
    fn refute(&self, g: &Affine) -> bool {
        const MAX_ROWS: usize = 300;
        let Some(neg) = g.scale(-1).and_then(|x| x.plus(-1)) else { return false };
        let mut rows: Vec<Affine> = vec![neg];
        let mut seen_atoms: Vec<Atom> = vec![];
        let mut queue: Vec<Atom> = vec![];
        let enqueue = |a: &Affine, seen: &mut Vec<Atom>, queue: &mut Vec<Atom>| {
            for (t, _) in &a.terms {
                if !seen.contains(t) {
                    seen.push(t.clone());
                    queue.push(t.clone());
                }
            }
        };
        enqueue(&rows[0], &mut seen_atoms, &mut queue);
        for f in &self.facts {
            rows.push(f.clone());
            enqueue(f, &mut seen_atoms, &mut queue);
        }
        while let Some(a) = queue.pop() {
            if seen_atoms.len() > 24 {
                return false;
            }
            let mut new_rows = vec![];
            match &a {
                Atom::Dim(_) => new_rows.push(Affine::atom(a.clone())),
                Atom::Var(v) => {
                    if let Some(b) = self.scopes.iter().rev().find(|b| b.atom == Atom::Var(*v)) {
                        for (m, l) in &b.lower {
                            if let Some(r) = Affine::atom(a.clone()).scale(*m).and_then(|x| x.sub(l)) {
                                new_rows.push(r);
                            }
                        }
                        for (m, u) in &b.upper {
                            if let Some(r) = u.sub(&Affine::atom(a.clone()).scale(*m).unwrap_or_default()) {
                                new_rows.push(r);
                            }
                        }
                    }
                }
                Atom::Other(e) => match e {
                    Expr::Binary(op @ (BinOp::Div | BinOp::Rem), x, d) if d.as_int().is_some_and(|d| d > 0) => {
                        let d = d.as_int().unwrap_or(1);
                        let Some(xa) = Affine::of(x) else { continue };
                        let q = Atom::Other(Expr::binary(BinOp::Div, (**x).clone(), Expr::int(d)));
                        let qa = Affine::atom(q.clone());
                        // x - d*q in 0..d
                        let Some(r) = xa.add_scaled(&qa, -d) else { continue };
                        new_rows.push(r.clone());
                        if let Some(r2) = r.scale(-1).and_then(|x| x.plus(d - 1)) {
                            new_rows.push(r2);
                        }
                        if *op == BinOp::Rem {
                            // rem = x - d*q
                            let ra = Affine::atom(a.clone());
                            if let Some(e1) = ra.sub(&r) {
                                new_rows.push(e1.clone());
                                if let Some(e2) = e1.scale(-1) {
                                    new_rows.push(e2);
                                }
                            }
                            if !seen_atoms.contains(&q) {
                                seen_atoms.push(q.clone());
                                queue.push(q);
                            }
                        }
                    }
                    Expr::Binary(BinOp::Min, x, y) => {
                        for s in [x, y] {
                            if let Some(r) = Affine::of(s).and_then(|s| s.sub(&Affine::atom(a.clone()))) {
                                new_rows.push(r);
                            }
                        }
                    }
                    Expr::Binary(BinOp::Max, x, y) => {
                        for s in [x, y] {
                            if let Some(r) = Affine::of(s).and_then(|s| Affine::atom(a.clone()).sub(&s)) {
                                new_rows.push(r);
                            }
                        }
                    }
                    Expr::Cast(DType::I64, x) if x.dtype().is_int() && x.dtype() != DType::U64 => {
                        let (lo, hi) = crate::value::int_range(x.dtype());
                        let at = Affine::atom(a.clone());
                        if let Some(r) = at.plus(-(lo as i64)) {
                            new_rows.push(r);
                        }
                        if let Some(r) = at.scale(-1).and_then(|x| x.plus(hi as i64)) {
                            new_rows.push(r);
                        }
                    }
                    _ => {}
                },
            }
            for r in new_rows {
                enqueue(&r, &mut seen_atoms, &mut queue);
                rows.push(r);
            }
        }
        // Eliminate atoms, most constrained last.
        for atom in seen_atoms {
            let (mut pos, mut negs, mut rest) = (vec![], vec![], vec![]);
            for r in rows {
                match r.coeff(&atom) {
                    0 => rest.push(r),
                    k if k > 0 => pos.push((k, r)),
                    k => negs.push((k, r)),
                }
            }
            for (kp, p) in &pos {
                for (kn, n) in &negs {
                    // (-kn) * p + kp * n cancels the atom.
                    let Some(c) = p.scale(-kn).and_then(|x| x.add_scaled(n, *kp)) else { continue };
                    let c = tighten(c);
                    if let Some(v) = c.as_const() {
                        if v < 0 {
                            return true;
                        }
                        continue;
                    }
                    if !rest.contains(&c) {
                        rest.push(c);
                    }
                    if rest.len() > MAX_ROWS {
                        return false;
                    }
                }
            }
            rows = rest;
        }
        rows.iter().any(|r| r.as_const().is_some_and(|v| v < 0))
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

    /// Numeric interval `(lo, hi)` of an atom (each side `None` if
    /// unbounded), with floor semantics for `/` and `%`.
    fn atom_interval(&self, a: &Atom, depth: u32) -> (Option<i128>, Option<i128>) {
        if depth > 24 {
            return (None, None);
        }
        match a {
            Atom::Dim(_) => (Some(0), None),
            Atom::Var(v) => {
                let Some(b) = self.scopes.iter().rev().find(|b| b.atom == Atom::Var(*v)) else { return (None, None) };
                let mut lo: Option<i128> = None;
                let mut hi: Option<i128> = None;
                for (m, l) in &b.lower {
                    if let Some(x) = self.affine_interval(l, depth + 1).0 {
                        let v = div_ceil(x, *m as i128);
                        lo = Some(lo.map_or(v, |c| c.max(v)));
                    }
                }
                for (m, u) in &b.upper {
                    if let Some(x) = self.affine_interval(u, depth + 1).1 {
                        let v = x.div_euclid(*m as i128);
                        hi = Some(hi.map_or(v, |c| c.min(v)));
                    }
                }
                (lo, hi)
            }
            Atom::Other(e) => self.expr_interval(e, depth + 1),
        }
    }

    fn expr_interval(&self, e: &Expr, depth: u32) -> (Option<i128>, Option<i128>) {
        if let Some(a) = Affine::of(e)
            && !(a.terms.len() == 1 && a.c == 0 && a.terms[0].1 == 1 && matches!(a.terms[0].0, Atom::Other(_)))
        {
            return self.affine_interval(&a, depth);
        }
        match e {
            Expr::Binary(BinOp::Div, x, c) if c.as_int().is_some_and(|c| c > 0) => {
                let c = c.as_int().unwrap_or(1) as i128;
                let (lo, hi) = self.expr_interval(x, depth + 1);
                (lo.map(|l| l.div_euclid(c)), hi.map(|h| h.div_euclid(c)))
            }
            Expr::Binary(BinOp::Rem, x, c) if c.as_int().is_some_and(|c| c > 0) => {
                let c = c.as_int().unwrap_or(1) as i128;
                match self.expr_interval(x, depth + 1) {
                    (Some(lo), Some(hi)) if lo >= 0 && hi < c => (Some(lo), Some(hi)),
                    _ => (Some(0), Some(c - 1)),
                }
            }
            Expr::Binary(op @ (BinOp::Min | BinOp::Max), x, y) => {
                let (a, b) = (self.expr_interval(x, depth + 1), self.expr_interval(y, depth + 1));
                let f = |p: Option<i128>, q: Option<i128>, is_min: bool| match (p, q) {
                    (Some(p), Some(q)) => Some(if is_min { p.min(q) } else { p.max(q) }),
                    // min with an unbounded side: bounded by the other only from above.
                    _ => None,
                };
                if *op == BinOp::Min {
                    (
                        f(a.0, b.0, true),
                        match (a.1, b.1) {
                            (Some(p), Some(q)) => Some(p.min(q)),
                            (Some(p), None) | (None, Some(p)) => Some(p),
                            _ => None,
                        },
                    )
                } else {
                    (
                        match (a.0, b.0) {
                            (Some(p), Some(q)) => Some(p.max(q)),
                            (Some(p), None) | (None, Some(p)) => Some(p),
                            _ => None,
                        },
                        f(a.1, b.1, false),
                    )
                }
            }
            Expr::Binary(BinOp::Mul, x, y) => {
                let (a, b) = (self.expr_interval(x, depth + 1), self.expr_interval(y, depth + 1));
                match (a, b) {
                    ((Some(a0), Some(a1)), (Some(b0), Some(b1))) => {
                        let c = [a0 * b0, a0 * b1, a1 * b0, a1 * b1];
                        (c.iter().min().copied(), c.iter().max().copied())
                    }
                    // Both non-negative: the product is non-negative.
                    ((Some(a0), _), (Some(b0), _)) if a0 >= 0 && b0 >= 0 => (Some(a0 * b0), None),
                    _ => (None, None),
                }
            }
            Expr::Cast(DType::I64, x) if x.dtype().is_int() && x.dtype() != DType::U64 => {
                let (lo, hi) = crate::value::int_range(x.dtype());
                (Some(lo), Some(hi))
            }
            _ => (None, None),
        }
    }

    fn affine_interval(&self, a: &Affine, depth: u32) -> (Option<i128>, Option<i128>) {
        let mut lo = Some(a.c as i128);
        let mut hi = Some(a.c as i128);
        for (atom, k) in &a.terms {
            let k = *k as i128;
            let (alo, ahi) = self.atom_interval(atom, depth + 1);
            let (tlo, thi) = if k >= 0 {
                (alo.map(|x| x * k), ahi.map(|x| x * k))
            } else {
                (ahi.map(|x| x * k), alo.map(|x| x * k))
            };
            lo = lo.zip(tlo).map(|(x, y)| x.saturating_add(y));
            hi = hi.zip(thi).map(|(x, y)| x.saturating_add(y));
        }
        (lo, hi)
    }

    /// Bounds of an atom that is not a variable.
    fn atom_bounds(&self, a: &Atom) -> Option<Bounded> {
        let Atom::Other(e) = a else { return None };
        let mut b = Bounded { atom: a.clone(), lower: vec![], upper: vec![] };
        // Numeric bounds (floor-exact) where the operands have them.
        let (lo, hi) = self.atom_interval(a, 0);
        if let Some(lo) = lo.and_then(|x| i64::try_from(x).ok()) {
            b.lower.push((1, Affine::constant(lo)));
        }
        if let Some(hi) = hi.and_then(|x| i64::try_from(x).ok()) {
            b.upper.push((1, Affine::constant(hi)));
        }
        match e {
            Expr::Binary(BinOp::Div, x, d) if d.as_int().is_some() => {
                let d = d.as_int().filter(|d| *d > 0)?;
                let x = Affine::of(x)?;
                // A fact `C - x >= 0` (or `x - C >= 0`) bounds the dividend as a
                // whole — what a fused loop's tail clamp establishes — and then
                // the quotient exactly: A <= floor(C / d).
                for f in &self.facts {
                    if let Some(c) = f.add(&x).and_then(|s| s.as_const()) {
                        b.upper.push((1, Affine::constant(c.div_euclid(d))));
                    }
                    if let Some(c) = x.sub(f).and_then(|s| s.as_const()) {
                        b.lower.push((1, Affine::constant(c.div_euclid(d))));
                    }
                }
                // d*A <= x  and  d*A >= x - (d - 1)
                b.upper.push((d, x.clone()));
                b.lower.push((d, x.plus(-(d - 1))?));
            }
            Expr::Binary(BinOp::Rem, _, d) if d.as_int().is_some() => {
                let d = d.as_int().filter(|d| *d > 0)?;
                b.lower.push((1, Affine::constant(0)));
                b.upper.push((1, Affine::constant(d - 1)));
            }
            // A remainder by a divisor whose numeric range is positive.
            Expr::Binary(BinOp::Rem, _, d)
                if !self.thorough && self.expr_interval(d, 1).0.is_some_and(|lo| lo >= 1) =>
            {
                b.lower.push((1, Affine::constant(0)));
                if let Some(da) = Affine::of(d).and_then(|a| a.plus(-1)) {
                    b.upper.push((1, da));
                }
            }
            // A divisor that is a variable extent (a fused loop over a
            // region): proven positive, it bounds the quotient and remainder.
            Expr::Binary(op @ (BinOp::Div | BinOp::Rem), x, d) if self.thorough && self.nested.get() < 2 => {
                self.nested.set(self.nested.get() + 1);
                let one = Expr::int(1);
                let positive = self.le(&one, d);
                let x_nonneg = positive && self.nonneg(x);
                if *op == BinOp::Rem {
                    if positive {
                        b.lower.push((1, Affine::constant(0)));
                        if let Some(da) = Affine::of(d).and_then(|a| a.plus(-1)) {
                            b.upper.push((1, da));
                        }
                    }
                } else if x_nonneg {
                    b.lower.push((1, Affine::constant(0)));
                    for k in [1i64, 2, 4, 8] {
                        let kd = Expr::binary(BinOp::Mul, d.as_ref().clone(), Expr::int(k));
                        if self.lt(x, &kd) {
                            b.upper.push((1, Affine::constant(k - 1)));
                            break;
                        }
                    }
                    // x < p * d  =>  x / d <= p - 1, for the `p` that multiply
                    // `d` in the bounds of x (a fused loop over `0..p * d`).
                    let mut cands: Vec<Expr> = vec![];
                    if let Expr::Var(v) = &**x
                        && let Some(bx) = self.scopes.iter().rev().find(|b| b.atom == Atom::Var(v.id))
                    {
                        for (_, u) in &bx.upper {
                            for (t, _) in &u.terms {
                                if let Atom::Other(Expr::Binary(BinOp::Mul, p, q)) = t {
                                    if q == d && !cands.contains(p) {
                                        cands.push((**p).clone());
                                    } else if p == d && !cands.contains(q) {
                                        cands.push((**q).clone());
                                    }
                                }
                            }
                        }
                    }
                    for p in cands {
                        let pd = Expr::binary(BinOp::Mul, p.clone(), d.as_ref().clone());
                        if self.lt(x, &pd)
                            && let Some(pa) = Affine::of(&p).and_then(|a| a.plus(-1))
                        {
                            b.upper.push((1, pa));
                        }
                    }
                }
                self.nested.set(self.nested.get() - 1);
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
            _ => {}
        }
        (!b.lower.is_empty() || !b.upper.is_empty()).then_some(b)
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
            other => self.atom_bounds(other),
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

/// Divides the coefficients of `a >= 0` by their gcd, flooring the
/// constant: sound over the integers, and what makes `2q <= 1` give `q <= 0`.
fn tighten(a: Affine) -> Affine {
    fn gcd(a: i64, b: i64) -> i64 {
        if b == 0 { a.abs() } else { gcd(b, a % b) }
    }
    let g = a.terms.iter().fold(0i64, |g, (_, k)| gcd(g, *k));
    if g <= 1 {
        return a;
    }
    Affine { terms: a.terms.iter().map(|(t, k)| (t.clone(), k / g)).collect(), c: a.c.div_euclid(g) }
}

fn div_ceil(x: i128, m: i128) -> i128 {
    -((-x).div_euclid(m))
}

/// The range `lo..hi` of a variable, for the static bounds check.
#[derive(Clone, Debug)]
pub(crate) struct Range {
    pub lo: Expr,
    pub hi: Expr,
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
