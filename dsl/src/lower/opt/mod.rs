//! Loop-nest optimizations of the flat nest, for the CPU's code generator
//! (IR → IR, semantics kept; each one is a pass of [`PASSES`](super::PASSES)
//! that runs for [`Target::Cpu`](crate::Target::Cpu) — `hoist_divisions`
//! for the GPU targets too — verified like the others, and the overflow
//! check of the call covers what they compute).
//! The interpreter runs the nest as lowered: it stays the reference these
//! rewrites are tested against.
//!
//! - **`decide_guards`** (`guards.rs`). `if E >= 0` where `E` is provably
//!   non-negative (sums, products, floor quotients and remainders of dims,
//!   non-negative loop variables and constants) is replaced by its branch,
//!   and a loop `for v in m..m + min(E, 1)` by `if E >= 1 { let v = m; .. }`
//!   (a literal extent of 1 by the `let`, of 0 by nothing; `if true`/`if
//!   false` by its branch): the lowering leaves both around `compute_at`
//!   regions (and shape specialization the literal forms), and both would
//!   keep an accumulator out of registers or a branch in a hot loop.
//! - **`unroll_tails`** (`tails.rs`). `partition_tails` leaves `if E >= c {
//!   for v in m..m + c (unrolled/vectorized) } else { for v in m..m + E }`;
//!   the serial tail becomes `unrolled for v in m..m + c - 1 { if v < m + E
//!   { body } }` (valid because `E < c` there). Every copy of the body then
//!   sees `v` as a constant, so a register-resident accumulator stays in
//!   registers in the tails too. Only while the copies stay few
//!   ([`TAIL_COPIES`]): a larger tail stays a serial loop, and an unrolled
//!   loop around such a serial loop is rerolled (**`reroll`**).
//! - **`partition_loops`** (`partition.rs`). A loop whose body tests `E >=
//!   c` with `E` affine and decreasing in the loop variable (`A - s*v`, the
//!   guard of a split's tail) is cut at `p = floor((A - c) / s) + 1`
//!   (clamped to the loop's range) into a main loop, where the test is true,
//!   and a tail loop, where it is false: no per-iteration branch is left.
//!   Likewise a loop is cut around the *interior* of boundary guards (the
//!   padding tests `lo <= f(v)` / `f(v) <= hi` of a convolution, affine in
//!   the loop variable and in constant unrolled/vectorized loops inside it):
//!   in the middle part those tests are `true` for every inner iteration and
//!   every lane, so the vector code there has no lane-wise fallback. The
//!   parts cut off are often single iterations (`for wo in 0..min(E, 1)`):
//!   `decide_guards` runs again and makes them `let`s.
//! - **`unswitch`** (`unswitch.rs`). A condition with no loads that does not
//!   depend on any variable bound inside a loop (or allocation) is hoisted
//!   above it: `for .. { .. if c { A } else { B } .. }` becomes `if c { for
//!   .. { .. A .. } } else { for .. { .. B .. } }`. Tail guards of tiled
//!   loops are invariant in every loop inside the tile, so the hot loop of a
//!   tiled nest ends up free of branches. Code growth is bounded by a
//!   budget. Each side then loses what the condition makes dead: loops whose
//!   extent (of dims alone) is provably empty and decided `if`s — the `H <
//!   1` copy of a padded convolution's nest runs no row.
//! - **`promote_accumulators`** (`promote.rs`). A serial loop whose body is
//!   a perfect nest of constant unrolled/vectorized loops around one store
//!   `X[I] = f(X[I], ...)`, with `I` invariant in the serial loop, gets a
//!   small temporary `t` (indexed by the inner loops only): `t` is loaded
//!   from `X` before the loop, updated inside, stored back after. A code
//!   generator keeps `t` in registers: a `k` loop of a tiled matrix product
//!   keeps its tile of `c` in vector registers. Unrolled nest loops that the
//!   index does not use (`k` split, its inner part unrolled) repeat updates
//!   of the same elements and do not index `t`. The outer loop may itself
//!   be such an unrolled loop (a reduction window unrolled whole): the
//!   accumulator then stays in registers across the window instead of being
//!   stored and reloaded per step. A constant initialization of the same
//!   elements just before starts the accumulator from the constant instead
//!   of memory.
//! - **`hoist_divisions`** (`divisions.rs`). An integer `/` or `%` by a
//!   run-time value (`nc / C`, `nc % C` of a fused loop) is bound by a `let`
//!   at the top of the outermost loop whose variable it uses (or of the
//!   function, for dims alone; not on the GPU, whose root is its sequence
//!   of kernels) and read from there. Cranelift never moves a division
//!   (`sdiv` may trap, so it is not pure to it), and GPU compilers do not
//!   either, so otherwise each use in an inner loop divided again (a fused
//!   GPU loop decomposes its index with two 64-bit divisions per dim).

mod divisions;
mod guards;
mod partition;
mod promote;
mod tails;
mod unswitch;

use std::collections::HashSet;

use crate::expr::{BinOp, CmpOp, Expr, UnOp, VarId};
use crate::stmt::{For, ForKind, If, LoweredFunc, Stmt};

/// Most copies of a tail's stores made by guarded unrolls (counting the
/// unrolled loops around it): larger tails stay serial loops, which costs
/// their accumulators the registers but keeps compile time in check (a 6x8
/// register tile's column tail alone would be 42 guarded scalar copies).
pub const TAIL_COPIES: i64 = 16;
/// Most conditions unswitched (each may double a loop nest), and most loops
/// partitioned, per function.
const BUDGET: u32 = 12;
/// Give up unswitching and partitioning once a nest has this many
/// statements.
const MAX_STMTS: usize = 20_000;
/// The widest vectorized loop a code generator keeps as vectors (the JIT's
/// limit; wider ones are unrolled scalar code), and so the widest tail
/// split `unroll_tails` recognizes.
pub const MAX_VECTOR: i64 = 64;
/// The most elements of a promoted accumulator.
pub const MAX_PROMOTE: i64 = 256;

/// `decide_guards`.
pub(crate) fn decide_guards(f: &mut LoweredFunc) {
    f.body = guards::guards(&f.body, &mut HashSet::new());
}

/// `unroll_tails`.
pub(crate) fn unroll_tails(f: &mut LoweredFunc) {
    f.body = tails::tails(&f.body, 1);
}

/// `partition_loops`.
pub(crate) fn partition_loops(f: &mut LoweredFunc) {
    f.body = partition::partition(&f.body, &mut BUDGET.clone());
}

/// `unswitch`.
pub(crate) fn unswitch(f: &mut LoweredFunc) {
    f.body = unswitch::unswitch(&f.body, &mut BUDGET.clone());
}

/// `reroll`.
pub(crate) fn reroll(f: &mut LoweredFunc) {
    f.body = tails::reroll(&f.body);
}

/// `promote_accumulators`.
pub(crate) fn promote_accumulators(f: &mut LoweredFunc) {
    let body = f.body.clone();
    f.body = promote::promote(&body, f);
}

/// `hoist_divisions`; `top`: divisions of dims alone too, at the top of the
/// function (not for the GPU: its root is a sequence of kernels).
pub(crate) fn hoist_divisions(f: &mut LoweredFunc, top: bool) {
    let body = f.body.clone();
    f.body = divisions::hoist_divisions(&body, None, f, top);
}

/// The coefficient of `v` in `e` if `e` is affine in `v` with a constant
/// coefficient (0 when `e` does not use `v`); `None` otherwise.
/// `varying` holds `let` variables whose value depends on `v`: an
/// expression using one of them is not affine.
pub fn affine(e: &Expr, v: VarId, varying: &HashSet<VarId>) -> Option<i64> {
    if !e.any(&mut |x| matches!(x, Expr::Var(y) if y.id == v || varying.contains(&y.id))) {
        return Some(0);
    }
    match e {
        Expr::Var(x) if x.id == v => Some(1),
        Expr::Binary(BinOp::Add, a, b) => affine(a, v, varying)?.checked_add(affine(b, v, varying)?),
        Expr::Binary(BinOp::Sub, a, b) => affine(a, v, varying)?.checked_sub(affine(b, v, varying)?),
        Expr::Binary(BinOp::Mul, a, b) => match (a.as_int(), b.as_int()) {
            (Some(c), _) => affine(b, v, varying)?.checked_mul(c),
            (_, Some(c)) => affine(a, v, varying)?.checked_mul(c),
            _ => None,
        },
        Expr::Unary(UnOp::Neg, a) => affine(a, v, varying)?.checked_neg(),
        _ => None,
    }
}

/// The `if` that `partition_tails` makes of a vectorized or unrolled
/// loop: `if E >= c { for v in m..m + c (unrolled/vectorized) } else { for v
/// in m..m + E (serial) }`. Returns `c`, the main loop and the tail loop.
pub fn tail_split(i: &If) -> Option<(i64, &For, &For)> {
    let Expr::Cmp(CmpOp::Ge, e, c) = &i.cond else { return None };
    let c = c.as_int()?;
    let (Stmt::For(main), Some(Stmt::For(tail))) = (&i.then, &i.els) else { return None };
    let ok = matches!(main.kind, ForKind::Unrolled | ForKind::Vectorized)
        && (2..=MAX_VECTOR).contains(&c)
        && main.extent.as_int() == Some(c)
        && tail.kind == ForKind::Serial
        && tail.extent == **e
        && tail.var == main.var
        && tail.min == main.min;
    ok.then_some((c, &**main, &**tail))
}

pub(super) fn size(e: &Expr) -> usize {
    let mut n = 0;
    e.visit(&mut |_| n += 1);
    n
}

/// Rebuilds `s` with `g` applied to each outermost loop in it (`g` does
/// its own recursion).
pub(super) fn map_loops(s: &Stmt, g: &mut impl FnMut(&Stmt) -> Stmt) -> Stmt {
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

/// Variables bound anywhere inside `s` (loop and let variables).
pub(super) fn bound_in(s: &Stmt, out: &mut HashSet<VarId>) {
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

pub(super) fn count(s: &Stmt) -> usize {
    let mut n = 0;
    s.visit(&mut |_| n += 1);
    n
}

/// The coefficient of `v` in `e` as an expression, if `e` is affine in `v`
/// (coefficients may be symbolic).
pub(super) fn coef(e: &Expr, v: VarId) -> Option<Expr> {
    if !e.uses_var(v) {
        return Some(Expr::int(0));
    }
    match e {
        Expr::Var(x) if x.id == v => Some(Expr::int(1)),
        Expr::Binary(BinOp::Add, a, b) => Some(coef(a, v)? + coef(b, v)?),
        Expr::Binary(BinOp::Sub, a, b) => Some(coef(a, v)? - coef(b, v)?),
        Expr::Binary(BinOp::Mul, a, b) if !b.uses_var(v) && !b.has_load() => Some(coef(a, v)? * (**b).clone()),
        Expr::Binary(BinOp::Mul, a, b) if !a.uses_var(v) && !a.has_load() => Some((**a).clone() * coef(b, v)?),
        Expr::Unary(crate::UnOp::Neg, a) => Some(Expr::int(0) - coef(a, v)?),
        _ => None,
    }
}
