//! The statement-level passes after the first nest is built.

use crate::expr::{BinOp, CmpOp, Expr, Load};
use crate::expr::{BufId, VarId};
use crate::prover::Prover;
use crate::simplify::simplify_in;
use crate::stmt::{BufKind, For, ForKind, If, LoweredFunc, Scope, Stmt, Store};

/// Simplifies every expression with what its enclosing loops, `if`s and
/// `let`s establish; removes empty loops and dead branches, and replaces
/// loops of one iteration by their variable's value.
pub(crate) fn simplify(f: &mut LoweredFunc) {
    let mut p = Prover::new();
    f.body = simplify_stmt(&f.body, &mut p);
}

fn simplify_stmt(s: &Stmt, p: &mut Prover) -> Stmt {
    match s {
        Stmt::For(l) => {
            let min = simplify_in(&l.min, Some(p));
            let extent = simplify_in(&l.extent, Some(p));
            match extent.as_int() {
                Some(e) if e <= 0 => return Stmt::Nop,
                Some(1) if !matches!(l.kind, ForKind::Bound(_) | ForKind::Parallel) => {
                    let body = subst_stmt(&l.body, l.var.id, &min);
                    return simplify_stmt(&body, p);
                }
                _ => {}
            }
            // At most one iteration: `for v in m..m + min(E, 1)` is
            // `if E >= 1 { body[v := m] }`.
            if let Expr::Binary(crate::expr::BinOp::Min, e, one) = &extent
                && one.as_int() == Some(1)
                && !matches!(l.kind, ForKind::Bound(_) | ForKind::Parallel)
            {
                let cond = Expr::cmp(CmpOp::Ge, (**e).clone(), Expr::int(1));
                let body = subst_stmt(&l.body, l.var.id, &min);
                return simplify_stmt(&Stmt::if_(cond, body), p);
            }
            let m = p.mark();
            p.push_loop(l.var.id, &min, &extent);
            let body = simplify_stmt(&l.body, p);
            p.reset(m);
            if body == Stmt::Nop {
                return Stmt::Nop;
            }
            Stmt::For(Box::new(For { var: l.var, min, extent, kind: l.kind, body }))
        }
        Stmt::Seq(v) => Stmt::seq(v.iter().map(|s| simplify_stmt(s, p))),
        Stmt::Let(b) => {
            let value = simplify_in(&b.1, Some(p));
            let m = p.mark();
            p.push_let(b.0.id, &value);
            let body = simplify_stmt(&b.2, p);
            p.reset(m);
            if body == Stmt::Nop {
                return Stmt::Nop;
            }
            Stmt::Let(Box::new((b.0, value, body)))
        }
        Stmt::If(i) => {
            let cond = simplify_in(&i.cond, Some(p));
            if let Some(c) = cond.as_const() {
                return if c.is_true() {
                    simplify_stmt(&i.then, p)
                } else {
                    i.els.as_ref().map(|e| simplify_stmt(e, p)).unwrap_or(Stmt::Nop)
                };
            }
            let m = p.mark();
            p.push_cond(&cond, true);
            let then = simplify_stmt(&i.then, p);
            p.reset(m);
            p.push_cond(&cond, false);
            let els = i.els.as_ref().map(|e| simplify_stmt(e, p)).filter(|e| *e != Stmt::Nop);
            p.reset(m);
            if then == Stmt::Nop && els.is_none() {
                return Stmt::Nop;
            }
            Stmt::If(Box::new(If { cond, then, els }))
        }
        Stmt::Store(st) => Stmt::Store(Box::new(Store {
            buf: st.buf,
            idx: st.idx.iter().map(|e| simplify_in(e, Some(p))).collect(),
            value: simplify_in(&st.value, Some(p)),
        })),
        Stmt::Alloc(b, body) => {
            let body = simplify_stmt(body, p);
            if body == Stmt::Nop { Stmt::Nop } else { Stmt::Alloc(*b, Box::new(body)) }
        }
        Stmt::Nop => Stmt::Nop,
    }
}

/// Replaces a variable in every expression of a statement.
pub(crate) fn subst_stmt(s: &Stmt, v: crate::expr::VarId, by: &Expr) -> Stmt {
    s.map_exprs(&mut |e| e.subst1(v, by))
}

/// GPU register tiles are computed whole. A loop clamped to a tail,
/// `for v in 0..min(E, c)`, whose body only writes private (`local`)
/// temporaries of constant size, each store indexed by `v` itself in some
/// dim (a loop over the tile's elements, not a reduction), and only reads
/// private or shared ones, runs all `c` iterations: the extra elements lie
/// outside the tile's valid region, which is all any reader takes (the copy
/// out to the tensor keeps its guards), and with constant trip counts the
/// tile's indices are constants, so the device compiler keeps it in
/// registers instead of local memory. Applied only if every access stays
/// provably in bounds (else the function is left as it was).
pub(crate) fn pad_private_tiles(f: &mut LoweredFunc) {
    let padded = pad(f, &f.body);
    if padded == f.body {
        return;
    }
    let before = super::prove_bounds::prove(f).len();
    let old = std::mem::replace(&mut f.body, padded);
    if super::prove_bounds::prove(f).len() > before {
        f.body = old;
    }
}

/// `true` if `s` writes only constant-size `local` temporaries, each store
/// indexed by `v` in some dim, and reads only constant-size `local` or
/// `shared` ones.
fn private_only(f: &LoweredFunc, s: &Stmt, v: VarId) -> bool {
    let tile = |b: BufId, shared_ok: bool| {
        let buf = f.buffer(b);
        buf.kind == BufKind::Temp
            && buf.const_len().is_some()
            && (buf.scope == Scope::Local || shared_ok && buf.scope == Scope::Shared)
    };
    let mut ok = true;
    s.visit(&mut |x| {
        if let Stmt::Store(st) = x {
            ok &= tile(st.buf, false) && st.idx.iter().any(|i| matches!(i, Expr::Var(x) if x.id == v));
        }
    });
    s.visit_exprs(&mut |e| {
        e.visit(&mut |x| {
            if let Expr::Load(l) = x {
                ok &= tile(l.buf, true);
            }
        })
    });
    ok
}

fn pad(f: &LoweredFunc, s: &Stmt) -> Stmt {
    match s {
        Stmt::For(l) => {
            let body = pad(f, &l.body);
            let mut extent = l.extent.clone();
            if let Expr::Binary(BinOp::Min, _, c) = &l.extent
                && c.as_int().is_some_and(|c| c > 0)
                && private_only(f, &l.body, l.var.id)
            {
                extent = (**c).clone();
            }
            Stmt::For(Box::new(For { body, extent, ..(**l).clone() }))
        }
        Stmt::Seq(v) => Stmt::Seq(v.iter().map(|x| pad(f, x)).collect()),
        Stmt::Let(b) => Stmt::Let(Box::new((b.0, b.1.clone(), pad(f, &b.2)))),
        Stmt::If(i) => Stmt::If(Box::new(If {
            cond: i.cond.clone(),
            then: pad(f, &i.then),
            els: i.els.as_ref().map(|e| pad(f, e)),
        })),
        Stmt::Alloc(b, body) => Stmt::Alloc(*b, Box::new(pad(f, body))),
        Stmt::Store(_) | Stmt::Nop => s.clone(),
    }
}

/// Vectorized and unrolled loops need a constant extent. A tail-clamped one,
/// `for v in 0..min(E, c)`, becomes
/// `if E >= c { for v in 0..c (vectorized) } else { for v in 0..E (serial) }`:
/// the hot loop stays guard-free and the tail runs scalar. Any other
/// non-constant extent falls back to a serial loop.
///
/// On GPU targets the tail of an unrolled loop stays unrolled, each
/// iteration guarded (`for v in 0..c (unrolled) { if v < E { ... } }`): a
/// register tile read at `v` keeps constant indices in both branches.
pub(crate) fn partition_tails(f: &mut LoweredFunc, gpu: bool) {
    f.body = partition(&f.body, gpu);
}

fn partition(s: &Stmt, gpu: bool) -> Stmt {
    let partition = |s: &Stmt| partition(s, gpu);
    match s {
        Stmt::For(l) => {
            let body = partition(&l.body);
            let fixed = matches!(l.kind, ForKind::Vectorized | ForKind::Unrolled);
            if !fixed || l.extent.as_int().is_some() {
                return Stmt::For(Box::new(For { body, ..(**l).clone() }));
            }
            if let Expr::Binary(BinOp::Min, e, c) = &l.extent
                && let Some(c) = c.as_int()
            {
                let main = Stmt::for_(l.var, l.min.clone(), Expr::int(c), l.kind, body.clone());
                let tail = if gpu && l.kind == ForKind::Unrolled {
                    let inside = Stmt::if_(Expr::cmp(CmpOp::Lt, Expr::Var(l.var), (**e).clone()), body);
                    Stmt::for_(l.var, l.min.clone(), Expr::int(c), ForKind::Unrolled, inside)
                } else {
                    Stmt::for_(l.var, l.min.clone(), (**e).clone(), ForKind::Serial, body)
                };
                return Stmt::If(Box::new(If {
                    cond: Expr::cmp(CmpOp::Ge, (**e).clone(), Expr::int(c)),
                    then: main,
                    els: Some(tail),
                }));
            }
            Stmt::for_(l.var, l.min.clone(), l.extent.clone(), ForKind::Serial, body)
        }
        Stmt::Seq(v) => Stmt::Seq(v.iter().map(partition).collect()),
        Stmt::Let(b) => Stmt::Let(Box::new((b.0, b.1.clone(), partition(&b.2)))),
        Stmt::If(i) => Stmt::If(Box::new(If {
            cond: i.cond.clone(),
            then: partition(&i.then),
            els: i.els.as_ref().map(partition),
        })),
        Stmt::Alloc(b, body) => Stmt::Alloc(*b, Box::new(partition(body))),
        Stmt::Store(_) | Stmt::Nop => s.clone(),
    }
}

/// Row-major flattening: every load and store gets one index
/// `((i0 * s1 + i1) * s2 + i2)...` over the buffer's allocated shape.
pub(crate) fn flatten(f: &mut LoweredFunc) {
    let shapes: Vec<Vec<Expr>> = f.buffers.iter().map(|b| b.shape.clone()).collect();
    let flat_index = |buf: crate::expr::BufId, idx: &[Expr]| -> Expr {
        let shape = &shapes[buf.0 as usize];
        let mut acc: Option<Expr> = None;
        for (i, x) in idx.iter().enumerate() {
            acc = Some(match acc {
                None => x.clone(),
                Some(a) => a * shape[i].clone() + x.clone(),
            });
        }
        crate::simplify::simplify(&acc.unwrap_or(Expr::int(0)))
    };
    let map_expr = |e: &Expr| -> Expr {
        e.rewrite(&mut |x| match x {
            Expr::Load(l) => Some(Expr::Load(std::sync::Arc::new(Load {
                buf: l.buf,
                idx: [flat_index(l.buf, &l.idx)].into_iter().collect(),
                dtype: l.dtype,
            }))),
            _ => None,
        })
    };
    fn go(
        s: &Stmt,
        map_expr: &dyn Fn(&Expr) -> Expr,
        flat_index: &dyn Fn(crate::expr::BufId, &[Expr]) -> Expr,
    ) -> Stmt {
        match s {
            Stmt::Store(st) => Stmt::Store(Box::new(Store {
                buf: st.buf,
                idx: [map_expr(&flat_index(st.buf, &st.idx))].into_iter().collect(),
                value: map_expr(&st.value),
            })),
            Stmt::For(l) => Stmt::For(Box::new(For {
                var: l.var,
                min: map_expr(&l.min),
                extent: map_expr(&l.extent),
                kind: l.kind,
                body: go(&l.body, map_expr, flat_index),
            })),
            Stmt::Seq(v) => Stmt::Seq(v.iter().map(|s| go(s, map_expr, flat_index)).collect()),
            Stmt::Let(b) => Stmt::Let(Box::new((b.0, map_expr(&b.1), go(&b.2, map_expr, flat_index)))),
            Stmt::If(i) => Stmt::If(Box::new(If {
                cond: map_expr(&i.cond),
                then: go(&i.then, map_expr, flat_index),
                els: i.els.as_ref().map(|e| go(e, map_expr, flat_index)),
            })),
            Stmt::Alloc(b, body) => Stmt::Alloc(*b, Box::new(go(body, map_expr, flat_index))),
            Stmt::Nop => Stmt::Nop,
        }
    }
    f.body = go(&f.body, &map_expr, &flat_index);
    f.flat = true;
}

/// Replaces dims by their values everywhere (for per-shape proofs).
pub(crate) fn bind_dims(f: &LoweredFunc, dims: &[i64]) -> LoweredFunc {
    let sub = |e: &Expr| -> Expr {
        e.rewrite(&mut |x| match x {
            Expr::Dim(d) => dims.get(*d as usize).map(|v| Expr::int(*v)),
            _ => None,
        })
    };
    let mut out = f.clone();
    for b in &mut out.buffers {
        b.shape = b.shape.iter().map(|e| crate::simplify::simplify(&sub(e))).collect();
    }
    out.body = f.body.map_exprs(&mut |e| sub(e));
    simplify(&mut out);
    out
}
