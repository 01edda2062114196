//! `hoist_divisions`: divisions by run-time values computed once per
//! iteration of the loop whose variable they use.

use std::collections::HashSet;

use crate::dtype::DType;
use crate::expr::{BinOp, Expr, Var};
use crate::stmt::{For, ForKind, LoweredFunc, Stmt};

use super::{bound_in, map_loops, size};

/// Integer divisions and remainders by a run-time value (`nc / C`, `nc %
/// C` of a fused loop) computed once per iteration of the outermost loop
/// whose variable they use, as `let`s at the top of its body, instead of
/// wherever they appear in the loops inside. Cranelift does not hoist them
/// itself: `sdiv` may trap, so it never moves (the JIT's division is
/// guarded and cannot), and a depthwise window recomputed the channel's
/// offset with two divisions per tap. `l` is the loop whose body `s` is
/// (`None`: the function body, for divisions of dims alone).
pub(super) fn hoist_divisions(s: &Stmt, l: Option<&For>, f: &mut LoweredFunc, top: bool) -> Stmt {
    let mut any = false;
    s.visit_exprs(&mut |e| any = any || e.any(&mut |x| matches!(x, Expr::Binary(BinOp::Div | BinOp::Rem, _, d) if d.as_int().is_none() && x.dtype() == DType::I64)));
    if !any {
        return s.clone();
    }
    let mut inner = HashSet::new();
    bound_in(s, &mut inner);
    // Divisions of what is fixed at the top of `s`, using `l`'s variable
    // (or, for the function body, no variable at all).
    let mut found: Vec<Expr> = vec![];
    s.visit_exprs(&mut |e| {
        e.visit(&mut |x| {
            let Expr::Binary(BinOp::Div | BinOp::Rem, _, d) = x else { return };
            if x.dtype() != DType::I64 || d.as_int().is_some() || x.has_load() || found.contains(x) {
                return;
            }
            let mut uses_l = false;
            let mut fixed = true;
            x.visit(&mut |y| {
                if let Expr::Var(v) = y {
                    fixed &= !inner.contains(&v.id);
                    uses_l |= l.is_some_and(|l| l.var.id == v.id);
                    if l.is_none() {
                        fixed = false;
                    }
                }
            });
            if fixed && (uses_l || (l.is_none() && top)) {
                found.push(x.clone());
            }
        });
    });
    // Smaller first: a division inside another is bound first (outside)
    // and replaced within it.
    found.sort_by_key(size);
    let vars: Vec<Var> = found.iter().map(|_| f.vars.add_index("idx")).collect();
    let values: Vec<Expr> = found.iter().map(|x| x.map_children(&mut |c| replace_top_down(c, &found, &vars))).collect();
    let recurse = |st: &Stmt, f: &mut LoweredFunc| -> Stmt {
        match st {
            Stmt::For(il) if il.kind != ForKind::Vectorized && il.kind != ForKind::Unrolled => {
                let body = hoist_divisions(&il.body, Some(il), f, top);
                Stmt::For(Box::new(For { body, ..(**il).clone() }))
            }
            _ => st.clone(),
        }
    };
    let mut out = map_loops(&s.map_exprs(&mut |e| replace_top_down(e, &found, &vars)), &mut |st| recurse(st, f));
    for (e, v) in values.into_iter().zip(&vars).rev() {
        out = Stmt::Let(Box::new((*v, e, out)));
    }
    out
}

/// `e` with every occurrence of `found[k]` replaced by `vars[k]`
/// (outermost occurrences win).
fn replace_top_down(e: &Expr, found: &[Expr], vars: &[Var]) -> Expr {
    match found.iter().position(|y| y == e) {
        Some(k) => Expr::Var(vars[k]),
        None => e.map_children(&mut |c| replace_top_down(c, found, vars)),
    }
}
