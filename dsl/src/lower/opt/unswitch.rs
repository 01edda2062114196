//! `unswitch`: loop-invariant conditions hoisted above their loops.

use std::collections::{HashMap, HashSet};

use crate::expr::{CmpOp, Expr, VarId};
use crate::prover::Prover;
use crate::stmt::{For, If, Stmt};

use super::{MAX_STMTS, bound_in, count};

/// The first `if` condition inside `s` that can be hoisted above it.
fn hoistable(s: &Stmt, bound: &HashSet<VarId>) -> Option<Expr> {
    let mut found = None;
    s.visit(&mut |x| {
        if found.is_some() {
            return;
        }
        if let Stmt::If(i) = x
            && !i.cond.has_load()
            && !i.cond.any(&mut |e| matches!(e, Expr::Var(v) if bound.contains(&v.id)))
            && i.cond.as_const().is_none()
        {
            found = Some(i.cond.clone());
        }
    });
    found
}

/// Replaces every `if c` by its branch for `c == val`.
pub(super) fn decide(s: &Stmt, c: &Expr, val: bool) -> Stmt {
    match s {
        Stmt::If(i) if i.cond == *c => {
            if val {
                decide(&i.then, c, val)
            } else {
                i.els.as_ref().map(|e| decide(e, c, val)).unwrap_or(Stmt::Nop)
            }
        }
        Stmt::If(i) => Stmt::If(Box::new(If {
            cond: i.cond.clone(),
            then: decide(&i.then, c, val),
            els: i.els.as_ref().map(|e| decide(e, c, val)),
        })),
        Stmt::For(l) => Stmt::For(Box::new(For { body: decide(&l.body, c, val), ..(**l).clone() })),
        Stmt::Seq(v) => Stmt::Seq(v.iter().map(|x| decide(x, c, val)).collect()),
        Stmt::Let(b) => Stmt::Let(Box::new((b.0, b.1.clone(), decide(&b.2, c, val)))),
        Stmt::Alloc(b, body) => Stmt::Alloc(*b, Box::new(decide(body, c, val))),
        Stmt::Store(_) | Stmt::Nop => s.clone(),
    }
}

pub(super) fn unswitch(s: &Stmt, budget: &mut u32) -> Stmt {
    match s {
        Stmt::For(_) | Stmt::Alloc(..) => {
            if *budget > 0 && count(s) < MAX_STMTS {
                let mut bound = HashSet::new();
                bound_in(s, &mut bound);
                if let Some(c) = hoistable(s, &bound) {
                    *budget -= 1;
                    let t = prune(&decide(s, &c, true), &c, true);
                    let e = prune(&decide(s, &c, false), &c, false);
                    let t = unswitch(&t, budget);
                    let e = unswitch(&e, budget);
                    return Stmt::If(Box::new(If { cond: c, then: t, els: Some(e) }));
                }
            }
            match s {
                Stmt::For(l) => Stmt::For(Box::new(For { body: unswitch(&l.body, budget), ..(**l).clone() })),
                Stmt::Alloc(b, body) => Stmt::Alloc(*b, Box::new(unswitch(body, budget))),
                _ => s.clone(),
            }
        }
        Stmt::If(i) => Stmt::If(Box::new(If {
            cond: i.cond.clone(),
            then: unswitch(&i.then, budget),
            els: i.els.as_ref().map(|e| unswitch(e, budget)),
        })),
        Stmt::Seq(v) => Stmt::Seq(v.iter().map(|x| unswitch(x, budget)).collect()),
        Stmt::Let(b) => Stmt::Let(Box::new((b.0, b.1.clone(), unswitch(&b.2, budget)))),
        Stmt::Store(_) | Stmt::Nop => s.clone(),
    }
}

/// Drops what one side of an unswitched condition `c` makes dead: loops
/// whose extent, a function of dims alone, the prover shows `<= 0` knowing
/// `c == truth`, and `if`s on dims alone it decides. The `else` side of a
/// dims-only condition such as `H >= 1` (the first border row of a padded
/// convolution) is otherwise a whole copy of the nest that never runs a
/// row. (Only dims-only expressions are asked, once each: the answers need
/// no enclosing context, and asking the prover about every loop in its
/// context cost more than the code it removed.)
fn prune(s: &Stmt, c: &Expr, truth: bool) -> Stmt {
    struct Pruner {
        p: Prover,
        known: HashMap<Expr, Option<bool>>,
    }
    impl Pruner {
        /// `e` decided, for a comparison of dims.
        fn decide(&mut self, e: &Expr) -> Option<bool> {
            let Expr::Cmp(op, a, b) = e else { return None };
            if e.any(&mut |x| matches!(x, Expr::Var(_) | Expr::Load(_))) {
                return None;
            }
            if let Some(k) = self.known.get(e) {
                return *k;
            }
            let k = self.p.decide(*op, a, b);
            self.known.insert(e.clone(), k);
            k
        }

        fn walk(&mut self, s: &Stmt) -> Stmt {
            match s {
                Stmt::For(l) => {
                    if self.decide(&Expr::cmp(CmpOp::Le, l.extent.clone(), Expr::int(0))) == Some(true) {
                        return Stmt::Nop;
                    }
                    Stmt::For(Box::new(For { body: self.walk(&l.body), ..(**l).clone() }))
                }
                Stmt::If(i) => match self.decide(&i.cond) {
                    Some(true) => self.walk(&i.then),
                    Some(false) => i.els.as_ref().map_or(Stmt::Nop, |e| self.walk(e)),
                    None => Stmt::If(Box::new(If {
                        cond: i.cond.clone(),
                        then: self.walk(&i.then),
                        els: i.els.as_ref().map(|e| self.walk(e)),
                    })),
                },
                Stmt::Let(b) => Stmt::Let(Box::new((b.0, b.1.clone(), self.walk(&b.2)))),
                Stmt::Seq(v) => Stmt::Seq(v.iter().map(|x| self.walk(x)).collect()),
                Stmt::Alloc(b, body) => Stmt::Alloc(*b, Box::new(self.walk(body))),
                Stmt::Store(_) | Stmt::Nop => s.clone(),
            }
        }
    }
    let mut p = Prover::new();
    p.push_cond(c, truth);
    Pruner { p, known: HashMap::new() }.walk(s)
}
