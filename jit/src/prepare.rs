//! Loop-nest rewrites before code generation (IR → IR, semantics kept).
//!
//! 0. **Decided guards.** `if E >= 0` where `E` is provably non-negative
//!    (sums, products, floor quotients and remainders of dims, non-negative
//!    loop variables and constants) is replaced by its branch, and a loop
//!    `for v in m..m + min(E, 1)` by `if E >= 1 { let v = m; .. }` (a
//!    literal extent of 1 by the `let`, of 0 by nothing; `if true`/`if
//!    false` by its branch): the lowering leaves both around `compute_at`
//!    regions (and shape specialization the literal forms), and both would
//!    keep an accumulator out of registers or a branch in a hot loop.
//! 1. **Tails as guarded unrolls.** `partition_tails` leaves
//!    `if E >= c { for v in m..m + c (unrolled/vectorized) } else { for v in
//!    m..m + E }`; the serial tail becomes `unrolled for v in m..m + c - 1 {
//!    if v < m + E { body } }` (valid because `E < c` there). Every copy of
//!    the body then sees `v` as a constant, so a register-resident
//!    accumulator stays in registers in the tails too. Only while the
//!    copies stay few (`TAIL_COPIES`): a larger tail stays a serial loop,
//!    and an unrolled loop around such a serial loop is rerolled.
//! 2. **Loop partitioning.** A loop whose body tests `E >= c` with `E`
//!    affine and decreasing in the loop variable (`A - s*v`, the guard of a
//!    split's tail) is cut at `p = floor((A - c) / s) + 1` (clamped to the
//!    loop's range) into a main loop, where the test is true, and a tail
//!    loop, where it is false: no per-iteration branch is left.
//!    Likewise a loop is cut around the *interior* of boundary guards (the
//!    padding tests `lo <= f(v)` / `f(v) <= hi` of a convolution, affine in
//!    the loop variable and in constant unrolled/vectorized loops inside
//!    it): in the middle part those tests are `true` for every inner
//!    iteration and every lane, so the vector code there has no lane-wise
//!    fallback.
//! 3. **Unswitching.** A condition with no loads that does not depend on
//!    any variable bound inside a loop (or allocation) is hoisted above it:
//!    `for .. { .. if c { A } else { B } .. }` becomes `if c { for .. { .. A
//!    .. } } else { for .. { .. B .. } }`. Tail guards of tiled loops are
//!    invariant in every loop inside the tile, so the hot loop of a tiled
//!    nest ends up free of branches. Code growth is bounded by a budget.
//!    Each side then loses what the condition makes dead: loops whose
//!    extent (of dims alone) is provably empty and decided `if`s — the
//!    `H < 1` copy of a padded convolution's nest runs no row.
//! 4. **Accumulator promotion.** A serial loop whose body is a perfect nest
//!    of constant unrolled/vectorized loops around one store
//!    `X[I] = f(X[I], ...)`, with `I` invariant in the serial loop, gets a
//!    small temporary `t` (indexed by the inner loops only): `t` is loaded
//!    from `X` before the loop, updated inside, stored back after. `t` then
//!    lives in registers (see `analysis::promotable`): a `k` loop of a tiled
//!    matrix product keeps its tile of `c` in vector registers. Unrolled
//!    nest loops that the index does not use (`k` split, its inner part
//!    unrolled) repeat updates of the same elements and do not index `t`.
//!    The outer loop may itself be such an unrolled loop (a reduction
//!    window unrolled whole): the accumulator then stays in registers
//!    across the window instead of being stored and reloaded per step.
//!    A constant initialization of the same elements just before starts
//!    the accumulator from the constant instead of memory.
//! 5. **Division hoisting.** An integer `/` or `%` by a run-time value
//!    (`nc / C`, `nc % C` of a fused loop) is bound by a `let` at the top
//!    of the outermost loop whose variable it uses (or of the function, for
//!    dims alone) and read from there. Cranelift never moves a division
//!    (`sdiv` may trap, so it is not pure to it), so otherwise each use in
//!    an inner loop divided again.

use std::collections::{HashMap, HashSet};

use texpr_dsl::stmt::If;
use texpr_dsl::{BinOp, CmpOp, DType, Expr, For, ForKind, LoweredFunc, Stmt, Var, VarId};

use texpr_dsl::bounds::Prover;

use crate::analysis::{affine, tail_split};

/// Most copies of a tail's stores made by guarded unrolls (counting the
/// unrolled loops around it): larger tails stay serial loops, which costs
/// their accumulators the registers but keeps compile time in check (a 6x8
/// register tile's column tail alone would be 42 guarded scalar copies).
const TAIL_COPIES: i64 = 16;
/// Most unswitched conditions per function (each may double a loop nest).
const BUDGET: u32 = 12;
/// Give up unswitching once a nest has this many statements.
const MAX_STMTS: usize = 20_000;

/// Runs the rewrites; may add temporaries to `f`.
pub(crate) fn prepare(f: &mut LoweredFunc) {
    let g = guards(&f.body, &mut HashSet::new());
    let t = tails(&g, 1);
    let mut budget = BUDGET;
    let p = partition(&t, &mut budget);
    // The parts partitioning cut off are often single iterations (`for wo
    // in 0..min(E, 1)`): as `let`s their variable is a constant, which
    // decides the guards of the first chunk of a padded row per tap.
    let p = guards(&p, &mut HashSet::new());
    let mut budget = BUDGET;
    let u = unswitch(&p, &mut budget);
    let body = promote(&reroll(&u), f);
    f.body = hoist_divisions(&body, None, f);
}

/// Integer divisions and remainders by a run-time value (`nc / C`, `nc %
/// C` of a fused loop) computed once per iteration of the outermost loop
/// whose variable they use, as `let`s at the top of its body, instead of
/// wherever they appear in the loops inside. Cranelift does not hoist them
/// itself: `sdiv` may trap, so it never moves (the JIT's division is
/// guarded and cannot), and a depthwise window recomputed the channel's
/// offset with two divisions per tap. `l` is the loop whose body `s` is
/// (`None`: the function body, for divisions of dims alone).
fn hoist_divisions(s: &Stmt, l: Option<&For>, f: &mut LoweredFunc) -> Stmt {
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
            if fixed && (uses_l || l.is_none()) {
                found.push(x.clone());
            }
        });
    });
    // Smaller first: a division inside another is bound first (outside)
    // and replaced within it.
    found.sort_by_key(size);
    let vars: Vec<Var> = found.iter().map(|_| f.vars.add("q", DType::I64)).collect();
    let values: Vec<Expr> = found.iter().map(|x| x.map_children(&mut |c| replace_top_down(c, &found, &vars))).collect();
    let recurse = |st: &Stmt, f: &mut LoweredFunc| -> Stmt {
        match st {
            Stmt::For(il) if il.kind != ForKind::Vectorized && il.kind != ForKind::Unrolled => {
                let body = hoist_divisions(&il.body, Some(il), f);
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

fn size(e: &Expr) -> usize {
    let mut n = 0;
    e.visit(&mut |_| n += 1);
    n
}

/// `e` with every occurrence of `found[k]` replaced by `vars[k]`
/// (outermost occurrences win).
fn replace_top_down(e: &Expr, found: &[Expr], vars: &[Var]) -> Expr {
    match found.iter().position(|y| y == e) {
        Some(k) => Expr::Var(vars[k]),
        None => e.map_children(&mut |c| replace_top_down(c, found, vars)),
    }
}

/// Rebuilds `s` with `g` applied to each outermost loop in it (`g` does
/// its own recursion).
fn map_loops(s: &Stmt, g: &mut impl FnMut(&Stmt) -> Stmt) -> Stmt {
    match s {
        Stmt::For(_) => g(s),
        Stmt::Seq(v) => Stmt::Seq(v.iter().map(|x| map_loops(x, g)).collect()),
        Stmt::Let(b) => Stmt::Let(Box::new((b.0, b.1.clone(), map_loops(&b.2, g)))),
        Stmt::If(i) => Stmt::If(Box::new(If {
            cond: i.cond.clone(),
            then: map_loops(&i.then, g),
            els: i.els.as_ref().map(|e| map_loops(e, g)),
        })),
        Stmt::Alloc(b, body) => Stmt::Alloc(*b, Box::new(map_loops(body, g))),
        Stmt::Store(_) | Stmt::Nop => s.clone(),
    }
}

/// The perfect nest of constant unrolled/vectorized loops under a serial
/// loop, and the store at its bottom.
fn nest(s: &Stmt) -> Option<(Vec<&For>, &texpr_dsl::stmt::Store)> {
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

fn promote(s: &Stmt, f: &mut LoweredFunc) -> Stmt {
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
    let inj = texpr_dsl::simplify::simplify(&inj);
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
    if len > crate::analysis::MAX_PROMOTE {
        return None;
    }
    let buf = f.buffer(st.buf).clone();
    let t = f.add_buffer(texpr_dsl::Buffer {
        name: format!("{}.acc", buf.name),
        dtype: buf.dtype,
        shape: vec![Expr::int(len)],
        kind: texpr_dsl::BufKind::Temp,
        scope: texpr_dsl::Scope::Local,
    });
    // t's index: row-major over the nest.
    let mut tidx = Expr::int(0);
    for x in &kept {
        tidx = tidx * x.extent.as_int().unwrap_or(1) + (Expr::Var(x.var) - x.min.as_int().unwrap_or(0));
    }
    let tidx = texpr_dsl::simplify::simplify(&tidx);
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
                BinOp::Add => texpr_dsl::ReduceOp::Sum,
                BinOp::Mul => texpr_dsl::ReduceOp::Prod,
                BinOp::Min => texpr_dsl::ReduceOp::Min,
                _ => texpr_dsl::ReduceOp::Max,
            };
            let id = Expr::Const(texpr_dsl::Scalar::reduce_identity(rop, buf.dtype));
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
    let cond = texpr_dsl::simplify::simplify(&Expr::and(runs, inj.clone()));
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

fn tails(s: &Stmt, copies: i64) -> Stmt {
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
fn reroll(s: &Stmt) -> Stmt {
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

/// Variables bound anywhere inside `s` (loop and let variables).
fn bound_in(s: &Stmt, out: &mut HashSet<VarId>) {
    s.visit(&mut |x| match x {
        Stmt::For(l) => {
            out.insert(l.var.id);
        }
        Stmt::Let(b) => {
            out.insert(b.0.id);
        }
        _ => {}
    });
}

fn count(s: &Stmt) -> usize {
    let mut n = 0;
    s.visit(&mut |_| n += 1);
    n
}

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
fn decide(s: &Stmt, c: &Expr, val: bool) -> Stmt {
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

fn unswitch(s: &Stmt, budget: &mut u32) -> Stmt {
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
        let a = texpr_dsl::simplify::simplify(&(e.subst1(v, &Expr::int(0)) - (**c).clone()));
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
        if a.dtype() != texpr_dsl::DType::I64 || c.has_load() || decided.contains(&c) {
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
        let rest = texpr_dsl::simplify::simplify(&rest);
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
        Stmt::Store(st) => Stmt::Store(Box::new(texpr_dsl::stmt::Store {
            buf: st.buf,
            idx: st.idx.iter().map(&ex).collect(),
            value: ex(&st.value),
        })),
        Stmt::Nop => Stmt::Nop,
    }
}

fn partition(s: &Stmt, budget: &mut u32) -> Stmt {
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
                let p1 = texpr_dsl::simplify::simplify(&clamp(lo.unwrap_or_else(|| l.min.clone())));
                let p2 =
                    texpr_dsl::simplify::simplify(&Expr::max(clamp(hi.unwrap_or_else(|| end.clone())), p1.clone()));
                let part = |from: &Expr, to: &Expr, body: Stmt| {
                    Stmt::for_(
                        l.var,
                        from.clone(),
                        texpr_dsl::simplify::simplify(&(to.clone() - from.clone())),
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
                let p = texpr_dsl::simplify::simplify(&p);
                let main = Stmt::for_(
                    l.var,
                    l.min.clone(),
                    texpr_dsl::simplify::simplify(&(p.clone() - l.min.clone())),
                    l.kind,
                    decide(&l.body, &cond, true),
                );
                let tail = Stmt::for_(
                    l.var,
                    p.clone(),
                    texpr_dsl::simplify::simplify(&(end - p)),
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

/// The coefficient of `v` in `e` as an expression, if `e` is affine in `v`
/// (coefficients may be symbolic).
fn coef(e: &Expr, v: VarId) -> Option<Expr> {
    if !e.uses_var(v) {
        return Some(Expr::int(0));
    }
    match e {
        Expr::Var(x) if x.id == v => Some(Expr::int(1)),
        Expr::Binary(BinOp::Add, a, b) => Some(coef(a, v)? + coef(b, v)?),
        Expr::Binary(BinOp::Sub, a, b) => Some(coef(a, v)? - coef(b, v)?),
        Expr::Binary(BinOp::Mul, a, b) if !b.uses_var(v) && !b.has_load() => Some(coef(a, v)? * (**b).clone()),
        Expr::Binary(BinOp::Mul, a, b) if !a.uses_var(v) && !a.has_load() => Some((**a).clone() * coef(b, v)?),
        Expr::Unary(texpr_dsl::UnOp::Neg, a) => Some(Expr::int(0) - coef(a, v)?),
        _ => None,
    }
}

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

fn guards(s: &Stmt, vars: &mut HashSet<VarId>) -> Stmt {
    match s {
        Stmt::If(i) => {
            if let Expr::Const(texpr_dsl::Scalar::Bool(taken)) = &i.cond {
                return match (*taken, &i.els) {
                    (true, _) => guards(&i.then, vars),
                    (false, Some(e)) => guards(e, vars),
                    (false, None) => Stmt::Nop,
                };
            }
            if let Expr::Cmp(CmpOp::Ge, e, z) = &i.cond
                && z.as_int() == Some(0)
                && e.dtype() == texpr_dsl::DType::I64
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

#[cfg(test)]
mod tests {
    use texpr_dsl::testing::spec;
    use texpr_dsl::{ForKind, Program, Stmt, Target};

    fn parallel_loops(s: &Stmt) -> usize {
        let mut n = 0;
        s.visit(&mut |x| {
            if let Stmt::For(l) = x
                && l.kind == ForKind::Parallel
            {
                n += 1;
            }
        });
        n
    }

    /// SPEC §2's conv3x3 under the CPU default: unswitching the first
    /// border row's `H >= 1` and the main chunks' `W / 8 >= 1` makes four
    /// copies of the parallel nest; pruning drops the one where both are
    /// false (no loop of it can run) and empties the other `H < 1` copy.
    #[test]
    fn unswitched_branches_lose_their_dead_loops() {
        let l = Program::new(spec::conv3x3()).lower(Target::Cpu).unwrap();
        let mut f = l.flat.clone();
        super::prepare(&mut f);
        assert_eq!(parallel_loops(&f.body), 3, "{f}");
    }
}
