//! Affine forms of index expressions.
//!
//! An [`Affine`] is `c + Σ kᵢ·aᵢ` over *atoms*: variables, dims, and any
//! other index subexpression that is not linear (`x / 4`, `min(a, b)`, a load
//! cast to `i64`), kept whole. Canonicalizing index arithmetic through this
//! form is what lets `(io * 32 + ii) - io * 32` become `ii`, and what the
//! bounds prover ([`crate::prover`]) reasons on.

use crate::dtype::DType;
use crate::expr::{BinOp, Expr, UnOp, VarId};
use crate::value::Scalar;

/// A term of an affine form that is not a constant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Atom {
    /// A variable.
    Var(VarId),
    /// A symbolic dim.
    Dim(u32),
    /// Any other `i64` expression, kept whole (already simplified).
    Other(Expr),
}

impl Atom {
    /// Sort key: variables by id, then dims, then other atoms (stable).
    fn rank(&self) -> (u8, u32) {
        match self {
            Atom::Var(v) => (0, v.0),
            Atom::Dim(d) => (1, *d),
            Atom::Other(_) => (2, 0),
        }
    }

    /// The atom as an expression.
    pub fn to_expr(&self) -> Expr {
        match self {
            Atom::Var(v) => Expr::Var(crate::expr::Var::index(*v)),
            Atom::Dim(d) => Expr::Dim(*d),
            Atom::Other(e) => e.clone(),
        }
    }
}

/// `c + Σ k·atom`, with non-zero coefficients and each atom at most once.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Affine {
    /// Terms, in canonical order.
    pub terms: Vec<(Atom, i64)>,
    /// The constant.
    pub c: i64,
}

impl Affine {
    /// A constant.
    pub fn constant(c: i64) -> Affine {
        Affine { terms: vec![], c }
    }

    /// A single atom with coefficient 1.
    pub fn atom(a: Atom) -> Affine {
        Affine { terms: vec![(a, 1)], c: 0 }
    }

    /// The constant, if there are no terms.
    pub fn as_const(&self) -> Option<i64> {
        self.terms.is_empty().then_some(self.c)
    }

    /// The coefficient of an atom (0 if absent).
    pub fn coeff(&self, a: &Atom) -> i64 {
        self.terms.iter().find(|(x, _)| x == a).map(|(_, k)| *k).unwrap_or(0)
    }

    /// `self + k * other`, or `None` on overflow.
    pub fn add_scaled(&self, other: &Affine, k: i64) -> Option<Affine> {
        let mut out = self.clone();
        out.c = out.c.checked_add(other.c.checked_mul(k)?)?;
        for (a, v) in &other.terms {
            let kv = v.checked_mul(k)?;
            match out.terms.iter_mut().find(|(x, _)| x == a) {
                Some(slot) => slot.1 = slot.1.checked_add(kv)?,
                None => out.terms.push((a.clone(), kv)),
            }
        }
        out.normalize();
        Some(out)
    }

    /// `self + other`.
    pub fn add(&self, other: &Affine) -> Option<Affine> {
        self.add_scaled(other, 1)
    }

    /// `self - other`.
    pub fn sub(&self, other: &Affine) -> Option<Affine> {
        self.add_scaled(other, -1)
    }

    /// `k * self`.
    pub fn scale(&self, k: i64) -> Option<Affine> {
        Affine::constant(0).add_scaled(self, k)
    }

    /// Adds a constant.
    pub fn plus(&self, c: i64) -> Option<Affine> {
        let mut out = self.clone();
        out.c = out.c.checked_add(c)?;
        Some(out)
    }

    /// Removes an atom, returning its coefficient.
    pub fn take(&mut self, a: &Atom) -> i64 {
        match self.terms.iter().position(|(x, _)| x == a) {
            Some(i) => self.terms.remove(i).1,
            None => 0,
        }
    }

    fn normalize(&mut self) {
        self.terms.retain(|(_, k)| *k != 0);
        // Stable sort keeps first-appearance order among `Other` atoms.
        self.terms.sort_by_key(|(a, _)| a.rank());
    }

    /// `true` if every coefficient and the constant are divisible by `d`.
    pub fn divisible_by(&self, d: i64) -> bool {
        d != 0 && self.c % d == 0 && self.terms.iter().all(|(_, k)| k % d == 0)
    }

    /// Splits into `(q, r)` with `self = d*q + r`, `q` taking every term
    /// whose coefficient `d` divides, and the constant's floor quotient.
    pub fn split_divisible(&self, d: i64) -> (Affine, Affine) {
        let mut q = Affine::constant(self.c.div_euclid(d));
        let mut r = Affine::constant(self.c.rem_euclid(d));
        for (a, k) in &self.terms {
            if k % d == 0 {
                q.terms.push((a.clone(), k / d));
            } else {
                r.terms.push((a.clone(), *k));
            }
        }
        (q, r)
    }

    /// The atoms that are variables.
    pub fn vars(&self) -> impl Iterator<Item = VarId> + '_ {
        self.terms.iter().filter_map(|(a, _)| match a {
            Atom::Var(v) => Some(*v),
            _ => None,
        })
    }

    /// Builds the affine form of an `i64` expression. Non-linear parts
    /// become atoms; `None` if the expression is not `i64` or a coefficient
    /// overflows.
    pub fn of(e: &Expr) -> Option<Affine> {
        if e.dtype() != DType::INDEX {
            return None;
        }
        Some(match e {
            Expr::Const(s) => Affine::constant(s.as_i64()?),
            Expr::Var(v) => Affine::atom(Atom::Var(v.id)),
            Expr::Dim(d) => Affine::atom(Atom::Dim(*d)),
            Expr::Binary(BinOp::Add, a, b) => Affine::of(a)?.add(&Affine::of(b)?)?,
            Expr::Binary(BinOp::Sub, a, b) => Affine::of(a)?.sub(&Affine::of(b)?)?,
            Expr::Binary(BinOp::Mul, a, b) => {
                let (x, y) = (Affine::of(a)?, Affine::of(b)?);
                match (x.as_const(), y.as_const()) {
                    (Some(k), _) => y.scale(k)?,
                    (_, Some(k)) => x.scale(k)?,
                    _ => Affine::atom(Atom::Other(e.clone())),
                }
            }
            Expr::Unary(UnOp::Neg, a) => Affine::of(a)?.scale(-1)?,
            _ => Affine::atom(Atom::Other(e.clone())),
        })
    }

    /// Rebuilds a readable expression: positive terms first, then the
    /// subtracted ones, then the constant (`io * 32 + ii - 1`).
    pub fn to_expr(&self) -> Expr {
        let term = |a: &Atom, k: i64| -> Expr {
            if k == 1 { a.to_expr() } else { Expr::binary(BinOp::Mul, a.to_expr(), Expr::int(k)) }
        };
        let mut acc: Option<Expr> = None;
        for (a, k) in self.terms.iter().filter(|(_, k)| *k > 0) {
            let t = term(a, *k);
            acc = Some(match acc {
                None => t,
                Some(x) => Expr::binary(BinOp::Add, x, t),
            });
        }
        let mut c = self.c;
        if acc.is_none() && c > 0 && self.terms.iter().any(|(_, k)| *k < 0) {
            acc = Some(Expr::int(c));
            c = 0;
        }
        for (a, k) in self.terms.iter().filter(|(_, k)| *k < 0) {
            let t = term(a, k.checked_neg().unwrap_or(i64::MAX));
            acc = Some(match acc {
                None => Expr::Unary(UnOp::Neg, t.into()),
                Some(x) => Expr::binary(BinOp::Sub, x, t),
            });
        }
        match acc {
            None => Expr::int(c),
            Some(x) if c > 0 => Expr::binary(BinOp::Add, x, Expr::int(c)),
            Some(x) if c < 0 && c != i64::MIN => Expr::binary(BinOp::Sub, x, Expr::int(-c)),
            Some(x) if c < 0 => Expr::binary(BinOp::Add, x, Expr::Const(Scalar::I64(c))),
            Some(x) => x,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::VarTable;

    #[test]
    fn cancels_and_orders() {
        let mut vt = VarTable::default();
        let io = Expr::Var(vt.add_index("io"));
        let ii = Expr::Var(vt.add_index("ii"));
        let e = (io.clone() * 32 + ii.clone()) - io.clone() * 32;
        assert_eq!(Affine::of(&e).unwrap().to_expr(), ii);
        let e = Expr::Dim(0) - (io.clone() * 32 + ii) - 1;
        assert_eq!(Affine::of(&e).unwrap().to_expr().to_string(), "D0 - v0 * 32 - v1 - 1");
    }

    #[test]
    fn split_divisible() {
        let mut vt = VarTable::default();
        let x = Expr::Var(vt.add_index("x"));
        let a = Affine::of(&(x * 8 + 13)).unwrap();
        let (q, r) = a.split_divisible(4);
        assert_eq!(q.to_expr().to_string(), "v0 * 2 + 3");
        assert_eq!(r.as_const(), Some(1));
    }
}
