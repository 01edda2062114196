//! `decide_guards`: guards the nest's structure decides (see the module
//! docs of [`opt`](super)).

use std::collections::HashSet;

use crate::expr::{BinOp, CmpOp, Expr, VarId};
use crate::stmt::{For, ForKind, If, Stmt};

/// Whether `e` is provably `>= 0` (dims are; `nonneg` holds variables that
/// are).
fn nonneg(e: &Expr, vars: &HashSet<VarId>) -> bool {
    match e {
        Expr::Const(c) => c.as_i64().is_some_and(|v| v >= 0),
        Expr::Dim(_) => true,
        Expr::Var(v) => vars.contains(&v.id),
        Expr::Binary(BinOp::Add | BinOp::Mul | BinOp::Div | BinOp::Min | BinOp::Max, a, b) => {
            nonneg(a, vars) && nonneg(b, vars)
        }
        // Floor remainder by a non-negative divisor (0 for a zero divisor).
        Expr::Binary(BinOp::Rem, _, b) => nonneg(b, vars),
        _ => false,
    }
}

pub(super) fn guards(s: &Stmt, vars: &mut HashSet<VarId>) -> Stmt {
    match s {
        Stmt::If(i) => {
            if let Expr::Const(crate::Scalar::Bool(taken)) = &i.cond {
                return match (*taken, &i.els) {
                    (true, _) => guards(&i.then, vars),
                    (false, Some(e)) => guards(e, vars),
                    (false, None) => Stmt::Nop,
                };
            }
            if let Expr::Cmp(CmpOp::Ge, e, z) = &i.cond
                && z.as_int() == Some(0)
                && e.dtype() == crate::DType::I64
                && nonneg(e, vars)
            {
                return guards(&i.then, vars);
            }
            Stmt::If(Box::new(If {
                cond: i.cond.clone(),
                then: guards(&i.then, vars),
                els: i.els.as_ref().map(|e| guards(e, vars)),
            }))
        }
        Stmt::For(l) => {
            let nn = nonneg(&l.min, vars);
            if nn {
                vars.insert(l.var.id);
            }
            let body = guards(&l.body, vars);
            vars.remove(&l.var.id);
            // No iteration, or exactly one: nothing, or a `let` (literal
            // extents, as shape specialization leaves them).
            match l.extent.as_int() {
                Some(n) if n <= 0 => return Stmt::Nop,
                Some(1) => return Stmt::Let(Box::new((l.var, l.min.clone(), body))),
                _ => {}
            }
            // At most one iteration: a guarded `let`.
            let one = match &l.extent {
                Expr::Binary(BinOp::Min, a, b) if b.as_int() == Some(1) => Some(a),
                Expr::Binary(BinOp::Min, a, b) if a.as_int() == Some(1) => Some(b),
                _ => None,
            };
            if let Some(e) = one
                && matches!(l.kind, ForKind::Serial | ForKind::Parallel | ForKind::Unrolled | ForKind::Vectorized)
            {
                let cond = Expr::cmp(CmpOp::Ge, (**e).clone(), Expr::int(1));
                return Stmt::if_(cond, Stmt::Let(Box::new((l.var, l.min.clone(), body))));
            }
            Stmt::For(Box::new(For { body, ..(**l).clone() }))
        }
        Stmt::Seq(v) => Stmt::Seq(v.iter().map(|x| guards(x, vars)).collect()),
        Stmt::Let(b) => {
            let nn = nonneg(&b.1, vars);
            if nn {
                vars.insert(b.0.id);
            }
            let body = guards(&b.2, vars);
            vars.remove(&b.0.id);
            Stmt::Let(Box::new((b.0, b.1.clone(), body)))
        }
        Stmt::Alloc(b, body) => Stmt::Alloc(*b, Box::new(guards(body, vars))),
        Stmt::Store(_) | Stmt::Nop => s.clone(),
    }
}
