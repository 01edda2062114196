//! Expression simplification: constant folding and affine canonicalization.
//!
//! Folding uses [`Scalar`]'s operations, so it has exactly the semantics the
//! interpreter and the backends implement. Only integer index (`i64`)
//! arithmetic is reassociated (through [`Affine`]); float expressions are only
//! folded when every operand is constant, and never reassociated. With a
//! [`Prover`] the simplifier also removes comparisons, `min`/`max` and
//! divisions that the context decides.

use crate::arith::Affine;
use crate::dtype::DType;
use crate::expr::{BinOp, Builtin, CmpOp, Expr, UnOp};
use crate::prover::Prover;
use crate::value::Scalar;

/// Simplifies without context.
pub fn simplify(e: &Expr) -> Expr {
    simplify_in(e, None)
}

/// Simplifies using what `prover` knows at this point.
pub fn simplify_in(e: &Expr, prover: Option<&Prover>) -> Expr {
    let e = e.map_children(&mut |c| simplify_in(c, prover));
    step(e, prover)
}

fn is_index(e: &Expr) -> bool {
    e.dtype() == DType::INDEX
}

/// One bottom-up step on a node whose children are simplified.
fn step(e: Expr, p: Option<&Prover>) -> Expr {
    // Fold a node whose operands are all constants.
    if let Some(c) = fold(&e) {
        return Expr::Const(c);
    }
    match &e {
        Expr::Binary(BinOp::Add | BinOp::Sub | BinOp::Mul, ..) if is_index(&e) => canonical(&e),
        Expr::Unary(UnOp::Neg, _) if is_index(&e) => canonical(&e),
        Expr::Binary(BinOp::Div, a, b) if is_index(&e) => div(a, b, p).unwrap_or(e),
        Expr::Binary(BinOp::Rem, a, b) if is_index(&e) => rem(a, b, p).unwrap_or(e),
        Expr::Binary(op @ (BinOp::Min | BinOp::Max), a, b) if is_index(&e) => min_max(*op, a, b, p).unwrap_or(e),
        Expr::Binary(op, a, b) => identity(*op, a, b).unwrap_or(e),
        Expr::Cmp(op, a, b) if is_index(a) => {
            if let (Some(x), Some(y)) = (Affine::of(a), Affine::of(b))
                && let Some(d) = y.sub(&x).and_then(|d| d.as_const())
            {
                return Expr::bool(Scalar::cmp_op(*op, Scalar::I64(0), Scalar::I64(d)));
            }
            if let Some(p) = p
                && let Some(v) = p.decide(*op, a, b)
            {
                return Expr::bool(v);
            }
            e
        }
        // Operands have no side effects, so `x && false` is `false` even
        // though `x` would have been evaluated.
        Expr::And(a, b) => match (a.as_const(), b.as_const()) {
            (Some(x), _) => {
                if x.is_true() {
                    (**b).clone()
                } else {
                    Expr::bool(false)
                }
            }
            (_, Some(y)) => {
                if y.is_true() {
                    (**a).clone()
                } else {
                    Expr::bool(false)
                }
            }
            _ => e,
        },
        Expr::Or(a, b) => match (a.as_const(), b.as_const()) {
            (Some(x), _) => {
                if x.is_true() {
                    Expr::bool(true)
                } else {
                    (**b).clone()
                }
            }
            (_, Some(y)) => {
                if y.is_true() {
                    Expr::bool(true)
                } else {
                    (**a).clone()
                }
            }
            _ => e,
        },
        Expr::Unary(UnOp::Not, a) => match &**a {
            Expr::Cmp(op, x, y) if !x.dtype().is_float() => Expr::cmp(op.negate(), (**x).clone(), (**y).clone()),
            Expr::Unary(UnOp::Not, x) if x.dtype() == DType::Bool => (**x).clone(),
            _ => e,
        },
        Expr::If(c, a, b) | Expr::Select(c, a, b) => match c.as_const() {
            Some(v) => {
                if v.is_true() {
                    (**a).clone()
                } else {
                    (**b).clone()
                }
            }
            None if a == b && (matches!(e, Expr::Select(..)) || !a.has_load()) => (**a).clone(),
            None => e,
        },
        Expr::Cast(t, a) if a.dtype() == *t => (**a).clone(),
        // Integer `clamp` is `min(max(x, lo), hi)`: the form the prover and
        // every backend already know.
        Expr::Call(Builtin::Clamp, args) if args.len() == 3 && e.dtype().is_int() => {
            Expr::min(Expr::max(args[0].clone(), args[1].clone()), args[2].clone())
        }
        _ => e,
    }
}

/// Evaluates a node whose children are all constants.
fn fold(e: &Expr) -> Option<Scalar> {
    let c = |x: &Expr| x.as_const();
    Some(match e {
        Expr::Unary(op, a) => Scalar::unary(*op, c(a)?),
        Expr::Binary(op, a, b) => Scalar::binary(*op, c(a)?, c(b)?),
        Expr::Cmp(op, a, b) => Scalar::Bool(Scalar::cmp_op(*op, c(a)?, c(b)?)),
        Expr::Cast(t, a) => c(a)?.cast(*t),
        Expr::Call(f, args) => {
            let vals = args.iter().map(c).collect::<Option<Vec<_>>>()?;
            Scalar::call(*f, &vals)
        }
        _ => return None,
    })
}

/// `(x / c) * (c * k) + (x % c) * k` → `x * k` (floor semantics make it an
/// identity for every `x`); arises from fusing the two halves of a split.
fn recombine_div_mod(a: &mut Affine) {
    use crate::arith::Atom;
    loop {
        let mut found = None;
        'outer: for (ta, ka) in &a.terms {
            let Atom::Other(Expr::Binary(BinOp::Div, x, c)) = ta else { continue };
            let Some(c) = c.as_int().filter(|c| *c > 0) else { continue };
            for (tb, kb) in &a.terms {
                if let Atom::Other(Expr::Binary(BinOp::Rem, y, d)) = tb
                    && y == x
                    && d.as_int() == Some(c)
                    && kb.checked_mul(c) == Some(*ka)
                {
                    found = Some((ta.clone(), tb.clone(), (**x).clone(), *kb));
                    break 'outer;
                }
            }
        }
        let Some((ta, tb, x, k)) = found else { return };
        let Some(xa) = Affine::of(&x) else { return };
        let mut next = a.clone();
        next.take(&ta);
        next.take(&tb);
        match next.add_scaled(&xa, k) {
            Some(n) => *a = n,
            None => return,
        }
    }
}

fn canonical(e: &Expr) -> Expr {
    let Some(mut a) = Affine::of(e) else { return e.clone() };
    recombine_div_mod(&mut a);
    // `k * min(x, y) + rest` with k = ±1 distributes into the min/max, so
    // that region extents read `min(16, M - bi * 16)`.
    let minmax: Vec<&(crate::arith::Atom, i64)> = a
        .terms
        .iter()
        .filter(|(t, _)| matches!(t, crate::arith::Atom::Other(Expr::Binary(BinOp::Min | BinOp::Max, ..))))
        .collect();
    // Only over index arithmetic (variables, dims, parameters, integer
    // constants): `r + min(x, y)` → `min(x + r, y + r)` adds `r` to a side
    // before it is clamped, which can overflow where a side is unbounded (a
    // float cast to an integer, a loaded index) and `r` is not 0.
    let bounded = |e: &Expr| !e.any(&mut |x| matches!(x, Expr::Cast(..) | Expr::Load(..) | Expr::Call(..)));
    if let [(crate::arith::Atom::Other(Expr::Binary(op, x, y)), k)] = minmax.as_slice()
        && (*k == 1 || *k == -1)
        && (a.terms.len() > 1 || a.c != 0)
        && bounded(x)
        && bounded(y)
        && a.terms.iter().all(|(t, _)| !matches!(t, crate::arith::Atom::Other(o) if !bounded(o)))
    {
        let mut rest = a.clone();
        rest.take(&crate::arith::Atom::Other(Expr::binary(*op, (**x).clone(), (**y).clone())));
        let r = rest.to_expr();
        let side = |v: &Expr| {
            let t = if *k == 1 {
                Expr::binary(BinOp::Add, v.clone(), r.clone())
            } else {
                Expr::binary(BinOp::Sub, r.clone(), v.clone())
            };
            canonical(&t)
        };
        let op = if *k == 1 {
            *op
        } else if *op == BinOp::Min {
            BinOp::Max
        } else {
            BinOp::Min
        };
        let (sx, sy) = (side(x), side(y));
        return step(Expr::binary(op, sx, sy), None);
    }
    a.to_expr()
}

/// `x * 1`, `x + 0` and friends, where they are exact.
fn identity(op: BinOp, a: &Expr, b: &Expr) -> Option<Expr> {
    let t = a.dtype();
    let one = |x: &Expr| x.as_const().is_some_and(|s| s.is_one());
    let zero = |x: &Expr| x.as_const().is_some_and(|s| s.is_zero() && s.bits() == 0);
    // A float NaN operand makes `+ - * / %` NaN whatever the other side
    // (operands have no side effects). Folding it also keeps a constant NaN
    // away from GPU compilers: PoCL turned `floor(NAN * x)` into garbage.
    let nan = |x: &Expr| x.as_const().is_some_and(|s| t.is_float() && s.as_f64().is_nan());
    if matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem) && (nan(a) || nan(b)) {
        return Some(Expr::Const(Scalar::from_f64(t, f64::NAN)));
    }
    match op {
        BinOp::Mul if one(b) => Some(a.clone()),
        BinOp::Mul if one(a) => Some(b.clone()),
        BinOp::Div if one(b) => Some(a.clone()),
        // Integer identities; for floats `x + 0.0` is not `x` (-0.0).
        BinOp::Add if t.is_int() && zero(b) => Some(a.clone()),
        BinOp::Add if t.is_int() && zero(a) => Some(b.clone()),
        BinOp::Sub if (t.is_int() || t.is_float()) && zero(b) => Some(a.clone()),
        BinOp::Mul if t.is_int() && (zero(a) || zero(b)) && !a.has_load() && !b.has_load() => {
            Some(Expr::Const(Scalar::zero(t)))
        }
        _ => None,
    }
}

fn div(a: &Expr, b: &Expr, p: Option<&Prover>) -> Option<Expr> {
    let d = b.as_int()?;
    if d == 1 {
        return Some(a.clone());
    }
    if d <= 0 {
        return None;
    }
    let x = Affine::of(a)?;
    if x.divisible_by(d) {
        let (q, _) = x.split_divisible(d);
        return Some(q.to_expr());
    }
    let (q, r) = x.split_divisible(d);
    // floor((d*q + r) / d) = q + floor(r / d)
    let rq = match r.as_const() {
        Some(c) => Some(Affine::constant(c.div_euclid(d))),
        None => {
            let re = r.to_expr();
            match p {
                Some(p) if p.nonneg(&re) && p.lt(&re, &Expr::int(d)) => Some(Affine::constant(0)),
                _ => None,
            }
        }
    };
    match rq {
        Some(rq) => Some(q.add(&rq)?.to_expr()),
        None if q.as_const() == Some(0) => None,
        None => {
            let rest = Expr::binary(BinOp::Div, r.to_expr(), Expr::int(d));
            Some(Expr::binary(BinOp::Add, q.to_expr(), rest))
        }
    }
}

fn rem(a: &Expr, b: &Expr, p: Option<&Prover>) -> Option<Expr> {
    let d = b.as_int()?;
    if d == 1 {
        return Some(Expr::int(0));
    }
    if d <= 0 {
        return None;
    }
    let x = Affine::of(a)?;
    let (q, r) = x.split_divisible(d);
    if let Some(c) = r.as_const() {
        return Some(Expr::int(c.rem_euclid(d)));
    }
    let re = r.to_expr();
    if let Some(p) = p
        && p.nonneg(&re)
        && p.lt(&re, &Expr::int(d))
    {
        return Some(re);
    }
    (q.as_const() != Some(0)).then(|| Expr::binary(BinOp::Rem, re, Expr::int(d)))
}

fn min_max(op: BinOp, a: &Expr, b: &Expr, p: Option<&Prover>) -> Option<Expr> {
    let is_min = op == BinOp::Min;
    if a == b {
        return Some(a.clone());
    }
    // a <= b ?
    let decide = |x: &Expr, y: &Expr| -> Option<bool> {
        if let (Some(ax), Some(ay)) = (Affine::of(x), Affine::of(y))
            && let Some(d) = ay.sub(&ax).and_then(|d| d.as_const())
        {
            return Some(d >= 0);
        }
        let p = p?;
        if p.le(x, y) {
            Some(true)
        } else if p.le(y, x) {
            Some(false)
        } else {
            None
        }
    };
    if let Some(a_le_b) = decide(a, b) {
        return Some(if a_le_b == is_min { a.clone() } else { b.clone() });
    }
    // min(min(x, c1), c2) -> min(x, min(c1, c2)) for constants.
    if let (Expr::Binary(inner, x, c1), Some(c2)) = (a, b.as_int())
        && *inner == op
        && let Some(c1) = c1.as_int()
    {
        let c = if is_min { c1.min(c2) } else { c1.max(c2) };
        return Some(Expr::binary(op, (**x).clone(), Expr::int(c)));
    }
    // Constants go last: min(32, x) -> min(x, 32) reads like Halide.
    if a.as_int().is_some() && b.as_int().is_none() {
        return Some(Expr::binary(op, b.clone(), a.clone()));
    }
    None
}

/// `true` if `e` is the literal `true`.
pub fn is_true(e: &Expr) -> bool {
    matches!(e, Expr::Const(Scalar::Bool(true)))
}

/// Simplified `a < b` for index expressions.
pub fn lt(a: Expr, b: Expr) -> Expr {
    simplify(&Expr::cmp(CmpOp::Lt, a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::VarTable;

    #[test]
    fn folds_with_language_semantics() {
        let e = Expr::binary(BinOp::Div, Expr::lit(DType::I32, -7), Expr::lit(DType::I32, 2));
        assert_eq!(simplify(&e), Expr::lit(DType::I32, -4));
        let e = Expr::binary(BinOp::Rem, Expr::lit(DType::I32, 7), Expr::lit(DType::I32, 0));
        assert_eq!(simplify(&e), Expr::lit(DType::I32, 0));
    }

    #[test]
    fn a_nan_operand_makes_arithmetic_nan() {
        let mut vt = VarTable::default();
        let x = Expr::Var(vt.add("x", DType::F64));
        let nan = Expr::binary(BinOp::Rem, Expr::Const(Scalar::F64(-2.0)), Expr::Const(Scalar::F64(0.0)));
        let e = Expr::binary(BinOp::Mul, nan, x.clone());
        let s = simplify(&e);
        assert!(s.as_const().is_some_and(|c| c.as_f64().is_nan()), "{s}");
        // min/max ignore a NaN operand (Rust semantics): not folded.
        let m = Expr::binary(BinOp::Max, Expr::Const(Scalar::F64(f64::NAN)), x);
        assert!(simplify(&m).as_const().is_none());
    }

    #[test]
    fn index_arithmetic() {
        let mut vt = VarTable::default();
        let x = Expr::Var(vt.add_index("x"));
        let y = Expr::Var(vt.add_index("y"));
        assert_eq!(simplify(&((x.clone() * 8 + 13) / 4)).to_string(), "v0 * 2 + 3");
        assert_eq!(simplify(&((x.clone() * 8 + 13) % 4)).to_string(), "1");
        assert_eq!(simplify(&(Expr::min(Expr::int(32), x.clone() + 40))).to_string(), "min(v0 + 40, 32)");
        assert_eq!(simplify(&Expr::min(Expr::int(32), y.clone())).to_string(), "min(v1, 32)");
        let mut p = Prover::new();
        p.push_loop(y.as_var(), &Expr::int(0), &Expr::int(4));
        assert_eq!(simplify_in(&((x * 4 + y.clone()) / 4), Some(&p)).to_string(), "v0");
        assert_eq!(simplify_in(&Expr::cmp(CmpOp::Lt, y, Expr::int(4)), Some(&p)), Expr::bool(true));
    }

    /// An offset is added to a clamp's sides only where they are index
    /// arithmetic: `8 * i + min(max(k as i64, 0), 3)` with `k` a float could
    /// overflow in `8 * i + k as i64` before the clamp (it did, for ONNX's
    /// Resize).
    #[test]
    fn offsets_stay_outside_clamps_of_unbounded_values() {
        let mut vt = VarTable::default();
        let i = Expr::Var(vt.add_index("i"));
        let k = Expr::Var(vt.add("k", DType::F64));
        let cast = Expr::Cast(DType::I64, k.into());
        let clamp = Expr::min(Expr::binary(BinOp::Max, cast, Expr::int(0)), Expr::int(3));
        let s = simplify(&(i.clone() * 8 + clamp)).to_string();
        assert!(s.starts_with("v0 * 8 + min(max("), "{s}");
        // Index arithmetic inside still distributes (region extents).
        assert_eq!(
            simplify(&(Expr::min(Expr::int(16), i.clone() * -16 + 40) + i * 16)).to_string(),
            "min(v0 * 16 + 16, 40)"
        );
    }

    impl Expr {
        fn as_var(&self) -> crate::expr::VarId {
            match self {
                Expr::Var(v) => v.id,
                _ => panic!("not a var"),
            }
        }
    }
}
