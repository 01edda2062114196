//! `partition_loops`: loops cut where a guard inside changes its value.

use std::collections::HashSet;

use crate::expr::{BinOp, CmpOp, Expr, VarId};
use crate::stmt::{For, ForKind, If, Stmt};

use super::unswitch::decide;
use super::{MAX_STMTS, affine, bound_in, count};

/// A condition `E >= c` inside `l` that is monotone (decreasing) in `l`'s
/// variable with everything else invariant: returns `(cond, A - c, s)`.
fn monotone_guard(l: &For) -> Option<(Expr, Expr, i64)> {
    let mut bound = HashSet::new();
    bound_in(&l.body, &mut bound);
    let v = l.var.id;
    let mut found = None;
    l.body.visit(&mut |x| {
        if found.is_some() {
            return;
        }
        let Stmt::If(i) = x else { return };
        let Expr::Cmp(CmpOp::Ge, e, c) = &i.cond else { return };
        if i.cond.has_load()
            || c.as_int().is_none()
            || i.cond.any(&mut |y| matches!(y, Expr::Var(w) if bound.contains(&w.id)))
        {
            return;
        }
        let Some(coef) = affine(e, v, &HashSet::new()) else { return };
        if coef >= 0 {
            return;
        }
        let a = crate::simplify::simplify(&(e.subst1(v, &Expr::int(0)) - (**c).clone()));
        found = Some((i.cond.clone(), a, -coef));
    });
    found
}

/// Conjuncts of `if` conditions inside `l` that hold on an interval of
/// `l`'s variable for every value of the constant loops inside: returns the
/// conjuncts and the interval `[lo, hi)` (either end may be open).
fn interior(l: &For) -> Option<(Vec<Expr>, Option<Expr>, Option<Expr>)> {
    let u = l.var.id;
    // Constant unrolled/vectorized loops inside: their ranges.
    let mut ranges: std::collections::HashMap<VarId, (i64, i64)> = std::collections::HashMap::new();
    let mut bound = HashSet::new();
    bound_in(&l.body, &mut bound);
    l.body.visit(&mut |x| {
        if let Stmt::For(f) = x
            && matches!(f.kind, ForKind::Unrolled | ForKind::Vectorized)
            && let (Some(m), Some(e)) = (f.min.as_int(), f.extent.as_int())
            && e >= 1
        {
            // A variable may name several sibling loops (main and tail).
            let r = ranges.entry(f.var.id).or_insert((m, m + e - 1));
            *r = (r.0.min(m), r.1.max(m + e - 1));
        }
    });
    // Expression `if`s only: the padding guards of definitions. Statement
    // guards are tails, handled by `monotone_guard` and `tails`.
    let mut conds = vec![];
    l.body.visit_exprs(&mut |e| {
        e.visit(&mut |x| {
            if let Expr::If(c, _, _) = x {
                conds.push((**c).clone());
            }
        })
    });
    fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
        match e {
            Expr::And(a, b) => {
                conjuncts(a, out);
                conjuncts(b, out);
            }
            _ => out.push(e.clone()),
        }
    }
    let mut all = vec![];
    for c in &conds {
        conjuncts(c, &mut all);
    }
    let (mut lo, mut hi): (Option<Expr>, Option<Expr>) = (None, None);
    let mut decided = vec![];
    for c in all {
        let Expr::Cmp(op, a, b) = &c else { continue };
        if a.dtype() != crate::DType::I64 || c.has_load() || decided.contains(&c) {
            continue;
        }
        // c  <=>  d >= k
        let diff = (**a).clone() - (**b).clone();
        let (d, k) = match op {
            CmpOp::Ge => (diff, 0),
            CmpOp::Gt => (diff, 1),
            CmpOp::Le => (Expr::int(0) - diff, 0),
            CmpOp::Lt => (Expr::int(0) - diff, 1),
            _ => continue,
        };
        let Some(au) = affine(&d, u, &HashSet::new()) else { continue };
        if au == 0 {
            continue;
        }
        // The other variables: constant-range loops inside, or invariant.
        let mut smin = 0i64;
        let mut rest = d.subst1(u, &Expr::int(0));
        let mut ok = true;
        let mut vars = HashSet::new();
        d.visit(&mut |x| {
            if let Expr::Var(v) = x {
                vars.insert(v.id);
            }
        });
        for v in vars {
            if v == u {
                continue;
            }
            if let Some((vmin, vmax)) = ranges.get(&v) {
                let Some(b) = affine(&d, v, &HashSet::new()) else {
                    ok = false;
                    break;
                };
                smin += (b * vmin).min(b * vmax);
                rest = rest.subst1(v, &Expr::int(0));
            } else if bound.contains(&v) {
                ok = false;
                break;
            }
        }
        if !ok {
            continue;
        }
        let rest = crate::simplify::simplify(&rest);
        // For all inner values: au*u + smin + rest >= k.
        if au > 0 {
            // u >= ceil((k - smin - rest) / au) = -floor((rest + smin - k) / au)
            let b = Expr::int(0) - Expr::binary(BinOp::Div, rest + (smin - k), Expr::int(au));
            lo = Some(match lo {
                None => b,
                Some(x) => Expr::max(x, b),
            });
        } else {
            // u <= floor((rest + smin - k) / -au)
            let b = Expr::binary(BinOp::Div, rest + (smin - k), Expr::int(-au)) + 1;
            hi = Some(match hi {
                None => b,
                Some(x) => Expr::min(x, b),
            });
        }
        decided.push(c);
    }
    (!decided.is_empty()).then_some((decided, lo, hi))
}

/// Replaces the given conjuncts by `true` in every `if` condition.
fn assume(s: &Stmt, facts: &[Expr]) -> Stmt {
    fn cond(e: &Expr, facts: &[Expr]) -> Expr {
        if facts.contains(e) {
            return Expr::bool(true);
        }
        match e {
            Expr::And(a, b) => {
                let (a, b) = (cond(a, facts), cond(b, facts));
                match (a.as_const(), b.as_const()) {
                    (Some(x), _) if x.is_true() => b,
                    (_, Some(y)) if y.is_true() => a,
                    _ => Expr::and(a, b),
                }
            }
            _ => e.clone(),
        }
    }
    let ex = |e: &Expr| {
        e.rewrite(&mut |x| match x {
            Expr::If(c, a, b) => {
                let c2 = cond(c, facts);
                match c2.as_const() {
                    Some(v) if v.is_true() => Some((**a).clone()),
                    _ if c2 != **c => Some(Expr::if_(c2, (**a).clone(), (**b).clone())),
                    _ => None,
                }
            }
            _ => None,
        })
    };
    match s {
        Stmt::If(i) => {
            let c = cond(&i.cond, facts);
            if c.as_const().is_some_and(|v| v.is_true()) {
                return assume(&i.then, facts);
            }
            Stmt::If(Box::new(If {
                cond: ex(&c),
                then: assume(&i.then, facts),
                els: i.els.as_ref().map(|e| assume(e, facts)),
            }))
        }
        Stmt::For(l) => Stmt::For(Box::new(For {
            min: ex(&l.min),
            extent: ex(&l.extent),
            body: assume(&l.body, facts),
            ..(**l).clone()
        })),
        Stmt::Seq(v) => Stmt::Seq(v.iter().map(|x| assume(x, facts)).collect()),
        Stmt::Let(b) => Stmt::Let(Box::new((b.0, ex(&b.1), assume(&b.2, facts)))),
        Stmt::Alloc(b, body) => Stmt::Alloc(*b, Box::new(assume(body, facts))),
        Stmt::Store(st) => Stmt::Store(Box::new(crate::stmt::Store {
            buf: st.buf,
            idx: st.idx.iter().map(&ex).collect(),
            value: ex(&st.value),
        })),
        Stmt::Nop => Stmt::Nop,
    }
}

pub(super) fn partition(s: &Stmt, budget: &mut u32) -> Stmt {
    match s {
        Stmt::For(l)
            if matches!(l.kind, ForKind::Serial | ForKind::Parallel)
                && *budget > 0
                && count(s) < MAX_STMTS
                && monotone_guard(l).is_none() =>
        {
            if let Some((facts, lo, hi)) = interior(l) {
                *budget -= 1;
                let end = l.min.clone() + l.extent.clone();
                let clamp = |e: Expr| Expr::min(Expr::max(e, l.min.clone()), end.clone());
                let p1 = crate::simplify::simplify(&clamp(lo.unwrap_or_else(|| l.min.clone())));
                let p2 = crate::simplify::simplify(&Expr::max(clamp(hi.unwrap_or_else(|| end.clone())), p1.clone()));
                let part = |from: &Expr, to: &Expr, body: Stmt| {
                    Stmt::for_(
                        l.var,
                        from.clone(),
                        crate::simplify::simplify(&(to.clone() - from.clone())),
                        l.kind,
                        body,
                    )
                };
                let head = part(&l.min, &p1, l.body.clone());
                let mid = part(&p1, &p2, assume(&l.body, &facts));
                let tail = part(&p2, &end, l.body.clone());
                // The middle part may be partitioned further (inner loops).
                let mid = match mid {
                    Stmt::For(m) => Stmt::For(Box::new(For { body: partition(&m.body, budget), ..*m })),
                    other => other,
                };
                return Stmt::Seq(vec![head, mid, tail]);
            }
            Stmt::For(Box::new(For { body: partition(&l.body, budget), ..(**l).clone() }))
        }
        Stmt::For(l) => {
            if matches!(l.kind, ForKind::Serial | ForKind::Parallel)
                && *budget > 0
                && count(s) < MAX_STMTS
                && let Some((cond, a, step)) = monotone_guard(l)
            {
                *budget -= 1;
                // p = clamp(floor(a / step) + 1, min, min + extent).
                let end = l.min.clone() + l.extent.clone();
                let p = Expr::binary(BinOp::Div, a, Expr::int(step)) + 1;
                let p = Expr::min(Expr::max(p, l.min.clone()), end.clone());
                let p = crate::simplify::simplify(&p);
                let main = Stmt::for_(
                    l.var,
                    l.min.clone(),
                    crate::simplify::simplify(&(p.clone() - l.min.clone())),
                    l.kind,
                    decide(&l.body, &cond, true),
                );
                let tail = Stmt::for_(
                    l.var,
                    p.clone(),
                    crate::simplify::simplify(&(end - p)),
                    l.kind,
                    decide(&l.body, &cond, false),
                );
                return Stmt::Seq(vec![partition(&main, budget), partition(&tail, budget)]);
            }
            Stmt::For(Box::new(For { body: partition(&l.body, budget), ..(**l).clone() }))
        }
        Stmt::If(i) => Stmt::If(Box::new(If {
            cond: i.cond.clone(),
            then: partition(&i.then, budget),
            els: i.els.as_ref().map(|e| partition(e, budget)),
        })),
        Stmt::Seq(v) => Stmt::Seq(v.iter().map(|x| partition(x, budget)).collect()),
        Stmt::Let(b) => Stmt::Let(Box::new((b.0, b.1.clone(), partition(&b.2, budget)))),
        Stmt::Alloc(b, body) => Stmt::Alloc(*b, Box::new(partition(body, budget))),
        Stmt::Store(_) | Stmt::Nop => s.clone(),
    }
}
