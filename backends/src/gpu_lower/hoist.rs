//! Hoists index divisions out of loops: every `a / d` and `a % d` of pure
//! index arithmetic with a non-constant divisor becomes a `const` local at
//! the innermost loop (or `let`) whose variable it uses, computed once there
//! and shared by every access below.
//!
//! Fused loops are what makes this matter: the default GPU schedule fuses
//! all spatial loops of a stage, so each access of `y[n, f, h, w]` divides
//! the fused index by the dims, and inside a reduction loop that would be
//! done for every iteration (64-bit division is slow on GPUs). Index
//! arithmetic is pure (a zero divisor gives 0), so computing it early, or
//! when a guard would have skipped it, changes nothing.

use std::collections::{HashMap, HashSet};

use texpr_dsl::expr::{BinOp, UnOp, VarTable};
use texpr_dsl::{DType, Expr, Var, VarId};

use crate::kir::KStmt;

/// Hoists the divisions of `body`; `index` holds the variables known to be
/// loop indices (hardware indices).
pub(super) fn hoist(body: KStmt, vars: &mut VarTable, index: HashSet<VarId>) -> KStmt {
    let mut h = Hoister { vars, index };
    let items = flatten(body);
    let bound: HashSet<VarId> = h.index.clone();
    let mut avail = HashMap::new();
    let mut out = h.hoist_at(&items, None, &bound, &mut avail);
    out.extend(h.stmts(&items, &bound, &avail));
    seq(out)
}

struct Hoister<'a> {
    vars: &'a mut VarTable,
    /// Loop variables and lets of pure index arithmetic.
    index: HashSet<VarId>,
}

fn flatten(s: KStmt) -> Vec<KStmt> {
    match s {
        KStmt::Seq(v) => v.into_iter().flat_map(flatten).collect(),
        KStmt::Nop => vec![],
        s => vec![s],
    }
}

fn seq(v: Vec<KStmt>) -> KStmt {
    match v.len() {
        0 => KStmt::Nop,
        1 => v.into_iter().next().unwrap_or(KStmt::Nop),
        _ => KStmt::Seq(v),
    }
}

fn subst(e: &Expr, avail: &HashMap<Expr, Var>) -> Expr {
    if avail.is_empty() {
        return e.clone();
    }
    e.rewrite(&mut |x| avail.get(x).map(|v| Expr::Var(*v)))
}

impl Hoister<'_> {
    fn pure(&self, e: &Expr) -> bool {
        e.dtype() == DType::I64
            && match e {
                Expr::Const(_) | Expr::Dim(_) => true,
                Expr::Var(v) => self.index.contains(&v.id),
                Expr::Unary(UnOp::Neg, a) => self.pure(a),
                Expr::Binary(_, a, b) => self.pure(a) && self.pure(b),
                _ => false,
            }
    }

    /// Divisions in `items` that only use `bound` variables (and `anchor`,
    /// when given): bound to fresh locals, in an order where each one's
    /// value may use the earlier ones.
    fn hoist_at(
        &mut self,
        items: &[KStmt],
        anchor: Option<VarId>,
        bound: &HashSet<VarId>,
        avail: &mut HashMap<Expr, Var>,
    ) -> Vec<KStmt> {
        let mut found: Vec<Expr> = vec![];
        let mut seen: HashSet<Expr> = HashSet::new();
        for it in items {
            it.visit_exprs(&mut |e| {
                e.visit(&mut |x| {
                    if let Expr::Binary(BinOp::Div | BinOp::Rem, _, d) = x
                        && d.as_int().is_none()
                        && !seen.contains(x)
                    {
                        seen.insert(x.clone());
                        found.push(x.clone());
                    }
                })
            });
        }
        // Smaller expressions first: a division inside another is bound
        // before it.
        found.sort_by_key(size);
        let mut out = vec![];
        for e in found {
            if !self.pure(&e) {
                continue;
            }
            let mut uses = HashSet::new();
            e.visit(&mut |x| {
                if let Expr::Var(v) = x {
                    uses.insert(v.id);
                }
            });
            if !uses.iter().all(|v| bound.contains(v)) || anchor.is_some_and(|a| !uses.contains(&a)) {
                continue;
            }
            let key = subst(&e, avail);
            if avail.contains_key(&key) {
                continue;
            }
            let v = self.vars.add_index("idx");
            self.index.insert(v.id);
            out.push(KStmt::Let { var: v, value: key.clone() });
            avail.insert(key, v);
        }
        out
    }

    fn stmts(&mut self, items: &[KStmt], bound: &HashSet<VarId>, avail: &HashMap<Expr, Var>) -> Vec<KStmt> {
        let mut out = vec![];
        for (i, it) in items.iter().enumerate() {
            match it {
                KStmt::Let { var, value } => {
                    let value = subst(value, avail);
                    if self.pure(&value) {
                        self.index.insert(var.id);
                    }
                    out.push(KStmt::Let { var: *var, value });
                    let mut b = bound.clone();
                    b.insert(var.id);
                    let mut av = avail.clone();
                    let rest = &items[i + 1..];
                    out.extend(self.hoist_at(rest, Some(var.id), &b, &mut av));
                    out.extend(self.stmts(rest, &b, &av));
                    return out;
                }
                KStmt::For { var, start, end, step, unroll, body } => {
                    self.index.insert(var.id);
                    let mut b = bound.clone();
                    b.insert(var.id);
                    let mut av = avail.clone();
                    let inner = flatten((**body).clone());
                    let mut new_body = self.hoist_at(&inner, Some(var.id), &b, &mut av);
                    new_body.extend(self.stmts(&inner, &b, &av));
                    out.push(KStmt::For {
                        var: *var,
                        start: subst(start, avail),
                        end: subst(end, avail),
                        step: step.as_ref().map(|s| subst(s, avail)),
                        unroll: *unroll,
                        body: Box::new(seq(new_body)),
                    });
                }
                KStmt::If { cond, then, els } => out.push(KStmt::If {
                    cond: subst(cond, avail),
                    then: Box::new(seq(self.stmts(&flatten((**then).clone()), bound, avail))),
                    els: els.as_ref().map(|e| Box::new(seq(self.stmts(&flatten((**e).clone()), bound, avail)))),
                }),
                KStmt::Store { buf, idx, value } => {
                    out.push(KStmt::Store { buf: *buf, idx: subst(idx, avail), value: subst(value, avail) })
                }
                KStmt::Seq(v) => out.extend(self.stmts(v, bound, avail)),
                other => out.push(other.clone()),
            }
        }
        out
    }
}

fn size(e: &Expr) -> usize {
    let mut n = 0;
    e.visit(&mut |_| n += 1);
    n
}
