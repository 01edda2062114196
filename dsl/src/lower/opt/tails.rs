//! `unroll_tails` and `reroll`: tails of vectorized and unrolled loops as
//! guarded unrolls while the copies stay few.

use crate::expr::{CmpOp, Expr};
use crate::stmt::{For, ForKind, If, Stmt};

use super::{TAIL_COPIES, tail_split};

pub(super) fn tails(s: &Stmt, copies: i64) -> Stmt {
    match s {
        Stmt::If(i) => {
            if let Some((c, _, tail)) = tail_split(i) {
                let body = tails(&tail.body, copies * (c - 1));
                if copies * (c - 1) * weight(&body) <= TAIL_COPIES {
                    let guard = Expr::cmp(CmpOp::Lt, Expr::Var(tail.var), tail.min.clone() + tail.extent.clone());
                    let els = Stmt::for_(
                        tail.var,
                        tail.min.clone(),
                        Expr::int(c - 1),
                        ForKind::Unrolled,
                        Stmt::if_(guard, body),
                    );
                    return Stmt::If(Box::new(If {
                        cond: i.cond.clone(),
                        then: tails(&i.then, copies),
                        els: Some(els),
                    }));
                }
                // Too much code for a tail: it stays a serial loop.
                let els = Stmt::For(Box::new(For { body: tails(&tail.body, copies), ..tail.clone() }));
                return Stmt::If(Box::new(If { cond: i.cond.clone(), then: tails(&i.then, copies), els: Some(els) }));
            }
            Stmt::If(Box::new(If {
                cond: i.cond.clone(),
                then: tails(&i.then, copies),
                els: i.els.as_ref().map(|e| tails(e, copies)),
            }))
        }
        Stmt::For(l) => {
            let n = match (l.kind, l.extent.as_int()) {
                (ForKind::Unrolled, Some(n)) => copies * n.max(1),
                _ => copies,
            };
            Stmt::For(Box::new(For { body: tails(&l.body, n), ..(**l).clone() }))
        }
        Stmt::Seq(v) => Stmt::Seq(v.iter().map(|x| tails(x, copies)).collect()),
        Stmt::Let(b) => Stmt::Let(Box::new((b.0, b.1.clone(), tails(&b.2, copies)))),
        Stmt::Alloc(b, body) => Stmt::Alloc(*b, Box::new(tails(body, copies))),
        Stmt::Store(_) | Stmt::Nop => s.clone(),
    }
}

/// Stores in the code generated for `s`: unrolled loops repeat their body,
/// a vectorized or serial loop is one copy.
fn weight(s: &Stmt) -> i64 {
    match s {
        Stmt::Store(_) => 1,
        Stmt::Nop => 0,
        Stmt::If(i) => weight(&i.then) + i.els.as_ref().map_or(0, weight),
        Stmt::For(l) => match (l.kind, l.extent.as_int()) {
            (ForKind::Unrolled, Some(n)) => n.max(1) * weight(&l.body),
            _ => weight(&l.body),
        },
        Stmt::Seq(v) => v.iter().map(weight).sum(),
        Stmt::Let(b) => weight(&b.2),
        Stmt::Alloc(_, body) => weight(body),
    }
}

/// An unrolled loop around a serial loop of run-time extent (a tail kept
/// serial by `tails`, inside the rows of a register tile) becomes serial:
/// its copies would share no registers and only multiply compile time.
pub(super) fn reroll(s: &Stmt) -> Stmt {
    let dynamic_loop = |b: &Stmt| {
        let mut found = false;
        b.visit(&mut |x| {
            if let Stmt::For(l) = x
                && l.kind == ForKind::Serial
                && l.extent.as_int().is_none()
            {
                found = true;
            }
        });
        found
    };
    match s {
        Stmt::For(l) => {
            let kind = if l.kind == ForKind::Unrolled && dynamic_loop(&l.body) { ForKind::Serial } else { l.kind };
            Stmt::For(Box::new(For { body: reroll(&l.body), kind, ..(**l).clone() }))
        }
        Stmt::If(i) => {
            Stmt::If(Box::new(If { cond: i.cond.clone(), then: reroll(&i.then), els: i.els.as_ref().map(reroll) }))
        }
        Stmt::Seq(v) => Stmt::Seq(v.iter().map(reroll).collect()),
        Stmt::Let(b) => Stmt::Let(Box::new((b.0, b.1.clone(), reroll(&b.2)))),
        Stmt::Alloc(b, body) => Stmt::Alloc(*b, Box::new(reroll(body))),
        Stmt::Store(_) | Stmt::Nop => s.clone(),
    }
}
