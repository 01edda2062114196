//! Analyses of the lowered IR that code generation consults.
//!
//! - [`promotable`]: which temporaries live in registers (scalar
//!   replacement). A temporary qualifies when its size is a small constant
//!   and every access to it has an index known at compile time once
//!   unrolled and vectorized loops are expanded — the register-blocked
//!   accumulators of `cache_write(local)` are the case this is for.
//!   Cranelift does not promote stack slots itself.
//! - [`never_nan`]: float temporaries that cannot hold NaN (a `max`/`min`
//!   reduction's accumulators), for one-instruction vector `max`/`min`.
//! - [`no_neg_zero`]: float temporaries that cannot hold `-0.0` (the same
//!   accumulators), whose values `max`/`min` need not make `+0.0`.

use std::collections::{HashMap, HashSet};

use texpr_dsl::{BinOp, BufId, BufKind, Expr, For, ForKind, LoweredFunc, Stmt, VarId};

/// Unrolled loops longer than this are emitted as ordinary loops.
pub(crate) const MAX_UNROLL: i64 = 512;
// Vectorized loops longer than `MAX_VECTOR` are emitted as ordinary loops;
// the loop-nest optimizations of lowering share these limits.
pub(crate) use texpr_dsl::lower::opt::{MAX_PROMOTE, MAX_VECTOR, affine, tail_split};

/// A temporary kept in registers.
#[derive(Clone, Debug)]
pub(crate) struct Promoted {
    /// Number of elements.
    pub len: i64,
    /// Whether some access is a contiguous vector access (so the elements
    /// are grouped into vector registers).
    pub vector: bool,
}

/// The temporaries of `f` that can live in registers.
pub(crate) fn promotable(f: &LoweredFunc) -> HashMap<BufId, Promoted> {
    let mut cands: HashMap<BufId, Promoted> = HashMap::new();
    for (i, b) in f.buffers.iter().enumerate() {
        if b.kind == BufKind::Temp
            && let Some(n) = b.const_len()
            && (1..=MAX_PROMOTE).contains(&n)
        {
            cands.insert(BufId(i as u32), Promoted { len: n, vector: false });
        }
    }
    if cands.is_empty() {
        return cands;
    }
    let mut w = Walk {
        statics: HashSet::new(),
        vec_var: None,
        par_depth: 0,
        alloc_depth: HashMap::new(),
        bad: HashSet::new(),
        cands: &mut cands,
    };
    w.stmt(&f.body);
    let bad = std::mem::take(&mut w.bad);
    cands.retain(|b, _| !bad.contains(b));
    cands
}

struct Walk<'a> {
    /// Variables whose value is a compile-time constant where used.
    statics: HashSet<VarId>,
    /// The innermost vectorized loop variable (static).
    vec_var: Option<VarId>,
    par_depth: u32,
    alloc_depth: HashMap<BufId, u32>,
    bad: HashSet<BufId>,
    cands: &'a mut HashMap<BufId, Promoted>,
}

impl Walk<'_> {
    fn is_static(&self, e: &Expr) -> bool {
        !e.any(&mut |x| match x {
            Expr::Var(v) => !self.statics.contains(&v.id),
            Expr::Load(_) | Expr::Dim(_) | Expr::Param(..) | Expr::Call(..) => true,
            _ => false,
        })
    }

    fn access(&mut self, b: BufId, idx: &Expr) {
        if !self.cands.contains_key(&b) {
            return;
        }
        let ok = self.is_static(idx) && self.alloc_depth.get(&b).is_some_and(|d| *d == self.par_depth);
        if !ok {
            self.bad.insert(b);
            return;
        }
        if let Some(v) = self.vec_var
            && affine(idx, v, &HashSet::new()) == Some(1)
            && let Some(p) = self.cands.get_mut(&b)
        {
            p.vector = true;
        }
    }

    fn expr(&mut self, e: &Expr) {
        e.visit(&mut |x| {
            if let Expr::Load(l) = x {
                self.access(l.buf, &l.idx[0]);
            }
        });
    }

    /// A loop; `tail` is `Some(vectorized)` for the tail of a partitioned
    /// unrolled/vectorized loop, which code generation unrolls too.
    fn for_(&mut self, l: &For, tail: Option<bool>) {
        self.expr(&l.min);
        self.expr(&l.extent);
        let ext = l.extent.as_int().unwrap_or(-1);
        let static_min = self.is_static(&l.min);
        let (is_static, is_vec) = match (l.kind, tail) {
            (_, Some(v)) => (static_min, v && static_min),
            (ForKind::Unrolled, _) => (static_min && ext <= MAX_UNROLL, false),
            (ForKind::Vectorized, _) => (static_min && ext <= MAX_VECTOR, static_min && ext <= MAX_VECTOR),
            _ => (false, false),
        };
        let saved_vec = self.vec_var;
        if is_static {
            self.statics.insert(l.var.id);
        }
        if is_vec {
            self.vec_var = Some(l.var.id);
        }
        let par = l.kind == ForKind::Parallel;
        if par {
            self.par_depth += 1;
        }
        self.stmt(&l.body);
        if par {
            self.par_depth -= 1;
        }
        self.statics.remove(&l.var.id);
        self.vec_var = saved_vec;
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::For(l) => self.for_(l, None),
            Stmt::Seq(v) => v.iter().for_each(|s| self.stmt(s)),
            Stmt::Let(b) => {
                self.expr(&b.1);
                let st = self.is_static(&b.1);
                if st {
                    self.statics.insert(b.0.id);
                }
                self.stmt(&b.2);
                self.statics.remove(&b.0.id);
            }
            Stmt::If(i) => {
                self.expr(&i.cond);
                self.stmt(&i.then);
                match (tail_split(i), &i.els) {
                    (Some((_, main, tail)), _) => self.for_(tail, Some(main.kind == ForKind::Vectorized)),
                    (None, Some(e)) => self.stmt(e),
                    (None, None) => {}
                }
            }
            Stmt::Store(st) => {
                self.access(st.buf, &st.idx[0]);
                self.expr(&st.idx[0]);
                self.expr(&st.value);
            }
            Stmt::Alloc(b, body) => {
                self.alloc_depth.insert(*b, self.par_depth);
                self.stmt(body);
                self.alloc_depth.remove(b);
            }
            Stmt::Nop => {}
        }
    }
}

/// Every variable an expression or statement reads.
pub(crate) fn used_vars(s: &Stmt, out: &mut HashSet<VarId>) {
    s.visit_exprs(&mut |e| {
        e.visit(&mut |x| {
            if let Expr::Var(v) = x {
                out.insert(v.id);
            }
        })
    });
}

/// Float temporaries that never hold NaN: temporaries start zeroed, and
/// every store to them is a non-NaN constant, a load of such a buffer, a
/// conversion from an integer, a choice between such values, or a
/// NaN-ignoring `min`/`max` with at least one such operand (it is NaN only
/// when both operands are). A `max`/`min` reduction's accumulators — set
/// to `∓inf`, updated by `max(acc, x)`, copied between the promoted
/// registers and memory — are the case this is for. The greatest such set:
/// start from every float temporary and drop those with another store.
pub(crate) fn never_nan(f: &LoweredFunc) -> HashSet<BufId> {
    temps_whose_stores(f, not_nan, &HashSet::new())
}

/// Float temporaries that never hold `-0.0`: every store is a constant
/// other than `-0.0`, a float `min`/`max` (whose zero results are `+0.0`,
/// docs/language.md), an integer cast or a copy of such a buffer. Vector
/// `max`/`min` make their other operands' zeros `+0.0` (one `addps` off
/// a reduction's loop-carried chain) instead of their results.
pub(crate) fn no_neg_zero(f: &LoweredFunc, lazy: &HashSet<BufId>) -> HashSet<BufId> {
    temps_whose_stores(f, not_neg_zero, lazy)
}

/// `max`/`min` accumulators whose vector updates may leave `-0.0` in them:
/// float temporaries whose every store is `B[I] = max(B[I], v)` (or `min`)
/// or a value without `-0.0`, and whose every load is an operand of a float
/// `max`/`min` (which makes it `+0.0`, see [`no_neg_zero`]). Their updates
/// skip the `+ 0.0` of the other operand: a softmax's max pass keeps one
/// `maxps` per vector.
pub(crate) fn lazy_min_max(f: &LoweredFunc) -> HashSet<BufId> {
    let is_minmax = |e: &Expr| matches!(e, Expr::Binary(BinOp::Min | BinOp::Max, ..)) && e.dtype().is_float();
    let mut set = float_temps(f);
    f.body.visit(&mut |st| {
        if let Stmt::Store(x) = st {
            let update = match &x.value {
                Expr::Binary(BinOp::Min | BinOp::Max, a, b) => {
                    [a, b].iter().any(|o| matches!(&***o, Expr::Load(l) if l.buf == x.buf && l.idx == x.idx))
                }
                _ => false,
            };
            if !update && !not_neg_zero(&x.value, &HashSet::new()) {
                set.remove(&x.buf);
            }
        }
    });
    // Loads that are a direct operand of a float min/max, per buffer, against
    // all loads.
    let mut all: HashMap<BufId, usize> = HashMap::new();
    let mut ok: HashMap<BufId, usize> = HashMap::new();
    f.body.visit_exprs(&mut |e| {
        e.visit(&mut |x| {
            if let Expr::Load(l) = x {
                *all.entry(l.buf).or_default() += 1;
            }
            if is_minmax(x)
                && let Expr::Binary(_, a, b) = x
            {
                for o in [a, b] {
                    if let Expr::Load(l) = &**o {
                        *ok.entry(l.buf).or_default() += 1;
                    }
                }
            }
        })
    });
    set.retain(|b| all.get(b).copied().unwrap_or(0) == ok.get(b).copied().unwrap_or(0));
    set
}

/// Every float temporary of `f`.
fn float_temps(f: &LoweredFunc) -> HashSet<BufId> {
    (0..f.buffers.len())
        .map(|i| BufId(i as u32))
        .filter(|b| f.buffer(*b).kind == BufKind::Temp && f.buffer(*b).dtype.is_float())
        .collect()
}

/// Whether `e` cannot be `-0.0` given that the buffers in `set` hold none.
pub(crate) fn not_neg_zero(e: &Expr, set: &HashSet<BufId>) -> bool {
    match e {
        Expr::Const(c) => !(c.as_f64() == 0.0 && c.as_f64().is_sign_negative()),
        Expr::Load(l) => set.contains(&l.buf),
        Expr::Binary(BinOp::Min | BinOp::Max, ..) => true,
        Expr::Cast(_, a) => !a.dtype().is_float(),
        Expr::Select(_, a, b) | Expr::If(_, a, b) => not_neg_zero(a, set) && not_neg_zero(b, set),
        _ => false,
    }
}

/// The largest set of float temporaries outside `exclude` whose every
/// store satisfies `ok(value, set)`.
fn temps_whose_stores(
    f: &LoweredFunc,
    ok: fn(&Expr, &HashSet<BufId>) -> bool,
    exclude: &HashSet<BufId>,
) -> HashSet<BufId> {
    let mut stores: Vec<(BufId, Expr)> = vec![];
    f.body.visit(&mut |st| {
        if let Stmt::Store(x) = st {
            stores.push((x.buf, x.value.clone()));
        }
    });
    let mut set = float_temps(f);
    set.retain(|b| !exclude.contains(b));
    loop {
        let bad: Vec<BufId> = stores.iter().filter(|(b, v)| set.contains(b) && !ok(v, &set)).map(|(b, _)| *b).collect();
        if bad.is_empty() {
            return set;
        }
        for b in bad {
            set.remove(&b);
        }
    }
}

/// Whether `e` cannot be NaN given that the buffers in `set` hold no NaN.
pub(crate) fn not_nan(e: &Expr, set: &HashSet<BufId>) -> bool {
    match e {
        Expr::Const(c) => !c.as_f64().is_nan(),
        Expr::Load(l) => set.contains(&l.buf),
        Expr::Binary(BinOp::Min | BinOp::Max, a, b) => not_nan(a, set) || not_nan(b, set),
        Expr::Cast(_, a) => !a.dtype().is_float(),
        Expr::Select(_, a, b) | Expr::If(_, a, b) => not_nan(a, set) && not_nan(b, set),
        _ => false,
    }
}

/// Every buffer a statement reads or writes.
pub(crate) fn used_bufs(s: &Stmt, out: &mut HashSet<BufId>) {
    s.visit(&mut |st| {
        if let Stmt::Store(x) = st {
            out.insert(x.buf);
        }
    });
    s.visit_exprs(&mut |e| {
        e.visit(&mut |x| {
            if let Expr::Load(l) = x {
                out.insert(l.buf);
            }
        })
    });
}
