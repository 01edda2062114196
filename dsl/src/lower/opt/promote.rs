//! `promote_accumulators`: a reduction's accumulator moved into a small
//! temporary that a code generator keeps in registers.

use std::collections::HashSet;

use crate::expr::{BinOp, CmpOp, Expr, VarId};
use crate::stmt::{For, ForKind, If, LoweredFunc, Stmt};

use super::{MAX_PROMOTE, bound_in, coef};

/// The perfect nest of constant unrolled/vectorized loops under a serial
/// loop, and the store at its bottom.
fn nest(s: &Stmt) -> Option<(Vec<&For>, &crate::stmt::Store)> {
    let mut loops = vec![];
    let mut cur = s;
    loop {
        match cur {
            Stmt::For(l)
                if matches!(l.kind, ForKind::Unrolled | ForKind::Vectorized)
                    && l.min.as_int().is_some()
                    && l.extent.as_int().is_some_and(|e| e >= 1) =>
            {
                loops.push(&**l);
                cur = &l.body;
            }
            Stmt::Store(st) => return Some((loops, st)),
            _ => return None,
        }
    }
}

pub(super) fn promote(s: &Stmt, f: &mut LoweredFunc) -> Stmt {
    match s {
        Stmt::For(l) => {
            // A serial loop, or a constant unrolled one the stored index
            // does not use (a reduction loop unrolled whole: the 3x3 window
            // of a depthwise convolution).
            let repeats =
                l.kind == ForKind::Unrolled && l.extent.as_int().is_some_and(|e| e >= 1) && l.min.as_int().is_some();
            if (l.kind == ForKind::Serial || repeats)
                && let Some(r) = promote_loop(l, f)
            {
                return r;
            }
            Stmt::For(Box::new(For { body: promote(&l.body, f), ..(**l).clone() }))
        }
        Stmt::If(i) => Stmt::If(Box::new(If {
            cond: i.cond.clone(),
            then: promote(&i.then, f),
            els: i.els.as_ref().map(|e| promote(e, f)),
        })),
        Stmt::Seq(v) => {
            let v: Vec<Stmt> = v.iter().map(|x| promote(x, f)).collect();
            Stmt::Seq(fold_inits(v))
        }
        Stmt::Let(b) => Stmt::Let(Box::new((b.0, b.1.clone(), promote(&b.2, f)))),
        Stmt::Alloc(b, body) => Stmt::Alloc(*b, Box::new(promote(body, f))),
        Stmt::Store(_) | Stmt::Nop => s.clone(),
    }
}

/// `X[I] = c` over a nest, directly followed by a promoted accumulator
/// whose first step loads `X[I]` over the same nest: the accumulator starts
/// from `c` and the store is dropped (the accumulator's last step writes
/// every element it wrote). A reduction's initialization then never goes
/// through memory.
fn fold_inits(v: Vec<Stmt>) -> Vec<Stmt> {
    let mut out: Vec<Stmt> = Vec::with_capacity(v.len());
    for s in v {
        if let Some(prev) = out.last()
            && let Some(folded) = fold_init(prev, &s)
        {
            out.pop();
            out.push(folded);
            continue;
        }
        out.push(s);
    }
    out
}

fn fold_init(init: &Stmt, next: &Stmt) -> Option<Stmt> {
    let (loops, st) = nest(init)?;
    let c = st.value.as_const()?;
    let Stmt::If(i) = next else { return None };
    if i.els.is_some() || !i.cond.as_const().is_some_and(|b| b.is_true()) {
        return None;
    }
    let Stmt::Alloc(t, body) = &i.then else { return None };
    let Stmt::Seq(parts) = &**body else { return None };
    let (pre_loops, pre) = nest(parts.first()?)?;
    let same_loops = loops.len() == pre_loops.len()
        && loops
            .iter()
            .zip(&pre_loops)
            .all(|(a, b)| a.var == b.var && a.min == b.min && a.extent == b.extent && a.kind == b.kind);
    let loads_init = matches!(&pre.value, Expr::Load(ld) if ld.buf == st.buf && ld.idx == st.idx);
    if !same_loops || !loads_init || pre.buf != *t {
        return None;
    }
    let lazy_if = parts.iter().any(|p| {
        let mut any = false;
        p.visit(&mut |x| {
            if let Stmt::Store(st) = x
                && st.value.any(&mut |e| matches!(e, Expr::If(..)))
            {
                any = true;
            }
        });
        any
    });
    if lazy_if {
        return None;
    }
    let start = Stmt::store(pre.buf, pre.idx.iter().cloned(), Expr::Const(c));
    let first =
        pre_loops.iter().rev().fold(start, |acc, x| Stmt::for_(x.var, x.min.clone(), x.extent.clone(), x.kind, acc));
    let mut parts = parts.clone();
    parts[0] = first;
    Some(Stmt::If(Box::new(If { cond: i.cond.clone(), then: Stmt::Alloc(*t, Box::new(Stmt::Seq(parts))), els: None })))
}

fn promote_loop(l: &For, f: &mut LoweredFunc) -> Option<Stmt> {
    let (loops, st) = nest(&l.body)?;
    let idx = &st.idx[0];
    let inner: HashSet<VarId> = loops.iter().map(|x| x.var.id).collect();
    // The index: invariant in `l`, only outer variables and the nest's.
    let mut bound = HashSet::new();
    bound_in(&l.body, &mut bound);
    if idx.has_load()
        || idx.uses_var(l.var.id)
        || idx.any(&mut |e| matches!(e, Expr::Var(v) if bound.contains(&v.id) && !inner.contains(&v.id)))
    {
        return None;
    }
    // Distinct nest iterations must address distinct elements of `X`:
    // affine in every nest variable with (possibly symbolic) strides that do
    // not overlap, innermost first. Checked at run time when symbolic.
    // One vectorized nest loop whose variable the index does not use makes a
    // reduction along that loop: `t` keeps one partial result per lane
    // (reassociating the reduction, which SPEC allows), folded into `X`
    // in lane order after the loop.
    let red_var = loops.iter().find(|x| x.kind == ForKind::Vectorized && !idx.uses_var(x.var.id)).map(|x| x.var.id);
    // Unrolled nest loops the index does not use repeat the update of the
    // same elements (a `k` loop split and unrolled inside the serial one):
    // `t` is not indexed by them.
    let repeat = |x: &For| x.kind == ForKind::Unrolled && !idx.uses_var(x.var.id);
    let kept: Vec<&For> = loops.iter().copied().filter(|x| !repeat(x)).collect();
    let red_op = match red_var {
        Some(_) => {
            let Expr::Binary(op @ (BinOp::Add | BinOp::Mul | BinOp::Min | BinOp::Max), a, b) = &st.value else {
                return None;
            };
            let is_acc = |e: &Expr| matches!(e, Expr::Load(ld) if ld.buf == st.buf && ld.idx[0] == *idx);
            let reads_x = |e: &Expr| e.any(&mut |y| matches!(y, Expr::Load(ld) if ld.buf == st.buf));
            let acc_op = (is_acc(a) && !reads_x(b)) || (is_acc(b) && !reads_x(a));
            if !acc_op {
                return None;
            }
            Some(*op)
        }
        None => None,
    };
    let mut inj = Expr::bool(true);
    let mut span = Expr::int(0);
    for x in kept.iter().rev() {
        if Some(x.var.id) == red_var {
            continue;
        }
        let c = coef(idx, x.var.id)?;
        if c.any(&mut |e| matches!(e, Expr::Var(v) if bound.contains(&v.id))) {
            return None;
        }
        let abs = Expr::max(c.clone(), Expr::int(0) - c);
        inj = Expr::and(inj, Expr::cmp(CmpOp::Gt, abs.clone(), span.clone()));
        span = span + abs * (x.extent.as_int().unwrap_or(1) - 1);
    }
    let inj = crate::simplify::simplify(&inj);
    if inj.as_const().is_some_and(|c| !c.is_true()) {
        return None;
    }
    // `X` read only at the same index.
    let mut other = false;
    st.value.visit(&mut |e| {
        if let Expr::Load(ld) = e
            && ld.buf == st.buf
            && ld.idx[0] != *idx
        {
            other = true;
        }
    });
    if other || !st.value.any(&mut |e| matches!(e, Expr::Load(ld) if ld.buf == st.buf)) {
        return None;
    }
    let len: i64 = kept.iter().map(|x| x.extent.as_int().unwrap_or(1)).product();
    if len > MAX_PROMOTE {
        return None;
    }
    let buf = f.buffer(st.buf).clone();
    let t = f.add_buffer(crate::Buffer {
        name: format!("{}.acc", buf.name),
        dtype: buf.dtype,
        shape: vec![Expr::int(len)],
        kind: crate::BufKind::Temp,
        scope: crate::Scope::Local,
    });
    // t's index: row-major over the nest.
    let mut tidx = Expr::int(0);
    for x in &kept {
        tidx = tidx * x.extent.as_int().unwrap_or(1) + (Expr::Var(x.var) - x.min.as_int().unwrap_or(0));
    }
    let tidx = crate::simplify::simplify(&tidx);
    let tload = Expr::load(t, [tidx.clone()], buf.dtype);
    let xload = Expr::load(st.buf, [idx.clone()], buf.dtype);
    let value = st.value.rewrite(&mut |e| match e {
        Expr::Load(ld) if ld.buf == st.buf => Some(tload.clone()),
        _ => None,
    });
    let wrap_in = |ls: &[&For], inner_stmt: Stmt| {
        ls.iter().rev().fold(inner_stmt, |acc, x| Stmt::for_(x.var, x.min.clone(), x.extent.clone(), x.kind, acc))
    };
    let wrap = |inner_stmt: Stmt| wrap_in(&kept, inner_stmt);
    let (pre, post) = match red_op {
        None => (wrap(Stmt::store(t, [tidx.clone()], xload)), wrap(Stmt::store(st.buf, [idx.clone()], tload))),
        Some(op) => {
            let rop = match op {
                BinOp::Add => crate::ReduceOp::Sum,
                BinOp::Mul => crate::ReduceOp::Prod,
                BinOp::Min => crate::ReduceOp::Min,
                _ => crate::ReduceOp::Max,
            };
            let id = Expr::Const(crate::Scalar::reduce_identity(rop, buf.dtype));
            (
                wrap(Stmt::store(t, [tidx.clone()], id)),
                wrap(Stmt::store(st.buf, [idx.clone()], Expr::binary(op, xload.clone(), tload.clone()))),
            )
        }
    };
    let body = Stmt::for_(
        l.var,
        l.min.clone(),
        l.extent.clone(),
        l.kind,
        wrap_in(&loops, Stmt::store(t, [tidx.clone()], value)),
    );
    // Only when the loop runs (`I` need not be a valid index otherwise) and
    // the addresses are distinct; the original loop otherwise.
    let runs = Expr::cmp(CmpOp::Gt, l.extent.clone(), Expr::int(0));
    let cond = crate::simplify::simplify(&Expr::and(runs, inj.clone()));
    // With the addresses known distinct, the original loop is only taken
    // when it runs no iteration: nothing to compile for it.
    let original =
        if inj.as_const().is_some_and(|c| c.is_true()) { None } else { Some(Stmt::For(Box::new(l.clone()))) };
    Some(Stmt::If(Box::new(If {
        cond,
        then: Stmt::Alloc(t, Box::new(Stmt::Seq(vec![pre, body, post]))),
        els: original,
    })))
}
