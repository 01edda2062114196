//! Vectorized loops as 128-bit SIMD.
//!
//! A `vectorized for v in min..min + W` runs its body once for all `W`
//! lanes, statement by statement. That is only the loop's meaning when no
//! lane reads what another lane writes, which [`legal`] checks: every
//! buffer written in the body is accessed at one index expression only,
//! affine in `v` with a non-zero coefficient (each lane owns its element),
//! except for a *reduction* `acc[I] = acc[I] op f(v)` with `I` invariant in
//! `v`, which folds the lanes of `f(v)` into the accumulator in lane order
//! (so results are exactly the scalar loop's). Conditions and nested loop
//! bounds must be invariant in `v`. Anything else falls back to the
//! caller's lane-by-lane expansion.
//!
//! Values are [`VV`]s: uniform scalars (invariant in `v`, broadcast when
//! combined), Cranelift vectors (`F32X4`, `F64X2`, `I32X4`, ... — W/lanes
//! registers per value), or per-lane scalars for what has no vector form
//! (integer division, casts, comparisons, lazy `if`, `f16`): those are
//! computed lane by lane with the scalar code generator, so every
//! operation keeps its exact scalar semantics. Loads and stores that are
//! contiguous in `v` (coefficient 1) are vector accesses; other accesses
//! are gathered and scattered lane by lane.
//!
//! A lazy `if` or a `select` whose condition holds on a *range* of lanes —
//! the padding guards `w + s >= 1 && w + s <= W` of a convolution written
//! as in SPEC — is computed as vectors merged under a lane mask (see
//! [`Vec_::masked`]): the range is two scalars, the `then` arm is
//! evaluated for every lane only when that cannot read outside a buffer
//! (checked at run time), and the lane-by-lane code remains as the
//! fallback at the buffer's edges.

use std::collections::{HashMap, HashSet};

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{self, Type};
use cranelift_codegen::ir::{Block, BlockArg, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Value};
use texpr_dsl::{BinOp, BufId, Builtin, CmpOp, DType, Expr, For, ForKind, Scalar, Stmt, UnOp, VarId};

use crate::analysis::{MAX_UNROLL, MAX_VECTOR, affine, not_nan, not_neg_zero};
use crate::codegen::{Bind, Gen, Loc, cty};
use crate::error::{CgResult, cg_err};

/// A value over the lanes of the vectorized loop.
#[derive(Clone, Debug)]
enum VV {
    /// The same scalar in every lane.
    U(Value),
    /// One scalar per lane.
    L(Vec<Value>),
    /// Vector registers, `lanes` lanes each.
    V(Vec<Value>),
}

/// The vector type of a dtype and its lane count, if it has one.
fn vec_ty(t: DType) -> Option<(Type, usize)> {
    let s = cty(t);
    if matches!(t, DType::Bool | DType::F16 | DType::BF16) {
        return None;
    }
    let lanes = 128 / s.bits();
    Some((s.by(lanes)?, lanes as usize))
}

/// A reduction statement `buf[idx] = buf[idx] op rest` (or `rest op buf[idx]`).
struct Red<'a> {
    op: BinOp,
    rest: &'a Expr,
}

fn as_reduction<'a>(buf: BufId, idx: &Expr, value: &'a Expr) -> Option<Red<'a>> {
    let Expr::Binary(op @ (BinOp::Add | BinOp::Mul | BinOp::Min | BinOp::Max), a, b) = value else { return None };
    let is_acc = |e: &Expr| matches!(e, Expr::Load(l) if l.buf == buf && l.idx[0] == *idx);
    let reads = |e: &Expr| e.any(&mut |x| matches!(x, Expr::Load(l) if l.buf == buf));
    if is_acc(a) && !reads(b) {
        Some(Red { op: *op, rest: b })
    } else if is_acc(b) && !reads(a) {
        Some(Red { op: *op, rest: a })
    } else {
        None
    }
}

/// The legality walk: collects, per written buffer, its one index.
struct Legal<'s> {
    v: VarId,
    varying: HashSet<VarId>,
    /// Every variable a `let` in the loop binds: a reduction's target must
    /// not depend on one (its per-lane partials are folded into the target
    /// outside the `let`'s scope).
    bound: HashSet<VarId>,
    /// Buffer → the index every access must use (`None`: a reduction).
    writes: HashMap<BufId, Option<&'s Expr>>,
    /// Stores that are reductions (by address of the store's index).
    reductions: HashSet<*const Expr>,
    ok: bool,
}

impl<'s> Legal<'s> {
    fn varies(&self, e: &Expr) -> bool {
        e.any(&mut |x| matches!(x, Expr::Var(y) if y.id == self.v || self.varying.contains(&y.id)))
    }

    fn collect_writes(&mut self, s: &'s Stmt, depth: u32) {
        match s {
            Stmt::Store(st) => {
                let idx = &st.idx[0];
                let coef = affine(idx, self.v, &self.varying);
                if coef.is_some_and(|c| c != 0) {
                    match self.writes.get(&st.buf) {
                        Some(Some(prev)) if *prev == idx => {}
                        None => {
                            self.writes.insert(st.buf, Some(idx));
                        }
                        _ => self.ok = false,
                    }
                } else if coef == Some(0)
                    && depth == 0
                    && !self.writes.contains_key(&st.buf)
                    && !idx.any(&mut |x| matches!(x, Expr::Var(y) if self.bound.contains(&y.id)))
                    && as_reduction(st.buf, idx, &st.value).is_some()
                {
                    self.writes.insert(st.buf, None);
                    self.reductions.insert(idx as *const Expr);
                } else {
                    self.ok = false;
                }
            }
            Stmt::Seq(v) => v.iter().for_each(|s| self.collect_writes(s, depth)),
            Stmt::Let(b) => {
                if self.varies(&b.1) {
                    self.varying.insert(b.0.id);
                }
                self.bound.insert(b.0.id);
                self.collect_writes(&b.2, depth);
            }
            Stmt::If(i) => {
                if self.varies(&i.cond) {
                    self.ok = false;
                }
                self.collect_writes(&i.then, depth);
                if let Some(e) = &i.els {
                    self.collect_writes(e, depth);
                }
            }
            Stmt::For(l) => {
                if l.kind == ForKind::Parallel || self.varies(&l.min) || self.varies(&l.extent) {
                    self.ok = false;
                }
                self.collect_writes(&l.body, depth + 1);
            }
            Stmt::Alloc(..) => self.ok = false,
            Stmt::Nop => {}
        }
    }

    /// Every load of a written buffer uses its one index (reductions: only
    /// as the accumulator of their own store).
    fn check_reads(&mut self, s: &'s Stmt) {
        let check = |e: &Expr, red_store: Option<(BufId, &Expr)>, this: &mut Self| {
            e.visit(&mut |x| {
                if let Expr::Load(l) = x
                    && let Some(w) = this.writes.get(&l.buf)
                {
                    let fine = match w {
                        Some(idx) => l.idx[0] == **idx,
                        None => red_store.is_some_and(|(b, i)| b == l.buf && l.idx[0] == *i),
                    };
                    if !fine {
                        this.ok = false;
                    }
                }
            });
        };
        match s {
            Stmt::Store(st) => {
                let idx = &st.idx[0];
                check(idx, None, self);
                let red = self.reductions.contains(&(idx as *const Expr));
                check(&st.value, if red { Some((st.buf, idx)) } else { None }, self);
            }
            Stmt::Seq(v) => v.iter().for_each(|s| self.check_reads(s)),
            Stmt::Let(b) => {
                check(&b.1, None, self);
                self.check_reads(&b.2);
            }
            Stmt::If(i) => {
                check(&i.cond, None, self);
                self.check_reads(&i.then);
                if let Some(e) = &i.els {
                    self.check_reads(e);
                }
            }
            Stmt::For(l) => {
                check(&l.min, None, self);
                check(&l.extent, None, self);
                self.check_reads(&l.body);
            }
            Stmt::Alloc(..) | Stmt::Nop => {}
        }
    }
}

fn legal(l: &For) -> bool {
    let mut w = Legal {
        v: l.var.id,
        varying: HashSet::new(),
        bound: HashSet::new(),
        writes: HashMap::new(),
        reductions: HashSet::new(),
        ok: true,
    };
    w.collect_writes(&l.body, 0);
    if w.ok {
        w.varying.clear();
        w.check_reads(&l.body);
    }
    w.ok
}

/// The vector emitter's state for one vectorized loop.
struct Vec_ {
    v: VarId,
    w: usize,
    /// The loop's first value (as a constant when known).
    min_c: Option<i64>,
    min_v: Value,
    /// Varying `let` variables and their values.
    lets: HashMap<VarId, VV>,
    /// The values of the varying lets, to fold per lane where constant.
    let_src: HashMap<VarId, Expr>,
    /// The value of the store being generated when it is an accumulator
    /// update `X[I] = X[I] + x * y` (see [`Vec_::store`]).
    acc: Option<*const Expr>,
    /// The value of the store being generated when it is the update
    /// `X[I] = max(X[I], v)` of a lazy accumulator
    /// ([`crate::analysis::lazy_min_max`]).
    lazy: Option<*const Expr>,
    /// The expression nodes of the loop's body (alive, and unchanged, for
    /// the whole emission: their addresses identify them).
    nodes: HashSet<*const Expr>,
    /// [`Vec_::varies`] of those nodes, while `lets` stays as it is: the
    /// emitter asks it at every node on its way down, which a walk per
    /// question made quadratic in the depth of a long sum.
    varies_memo: std::cell::RefCell<HashMap<*const Expr, bool>>,
}

/// Emits `l` with SIMD vectors if its body allows; `Ok(false)` leaves it to
/// the caller's lane-by-lane fallback.
pub(crate) fn try_vectorize<'a>(g: &mut Gen<'a, '_, '_>, l: &'a For, ext: i64) -> CgResult<bool> {
    if !(2..=MAX_VECTOR).contains(&ext) || !legal(l) {
        return Ok(false);
    }
    let min_c = g.const_eval(&l.min).and_then(|s| s.as_i64());
    let min_v = g.index(&l.min)?;
    let mut vx = Vec_ {
        v: l.var.id,
        w: ext as usize,
        min_c,
        min_v,
        lets: HashMap::new(),
        let_src: HashMap::new(),
        acc: None,
        lazy: None,
        nodes: HashSet::new(),
        varies_memo: Default::default(),
    };
    l.body.visit_exprs(&mut |e| {
        let mut todo = vec![e];
        while let Some(x) = todo.pop() {
            if vx.nodes.insert(x as *const Expr) {
                todo.extend(x.children());
            }
        }
    });
    vx.stmt(g, &l.body)?;
    Ok(true)
}

impl Vec_ {
    /// Whether `e` uses the loop variable or a varying `let`.
    fn varies(&self, e: &Expr) -> bool {
        let key = e as *const Expr;
        let known = self.nodes.contains(&key);
        if known && let Some(v) = self.varies_memo.borrow().get(&key) {
            return *v;
        }
        let v = match e {
            Expr::Var(y) => y.id == self.v || self.lets.contains_key(&y.id),
            _ => e.children().into_iter().any(|c| self.varies(c)),
        };
        if known {
            self.varies_memo.borrow_mut().insert(key, v);
        }
        v
    }

    /// The binding of the loop variable in lane `k`.
    fn lane_bind(&self, g: &mut Gen<'_, '_, '_>, k: usize) -> Bind {
        match self.min_c {
            Some(c) => Bind::Const(Scalar::I64(c + k as i64)),
            None => Bind::Val(if k == 0 { self.min_v } else { g.b.ins().iadd_imm_s(self.min_v, k as i64) }),
        }
    }

    /// Runs `f` with the loop variable and varying lets bound to lane `k`.
    fn in_lane<T>(
        &self,
        g: &mut Gen<'_, '_, '_>,
        k: usize,
        f: impl FnOnce(&mut Gen<'_, '_, '_>) -> CgResult<T>,
    ) -> CgResult<T> {
        let mut binds = vec![(self.v, self.lane_bind(g, k))];
        let lets: Vec<(VarId, VV)> = self.lets.iter().map(|(k, v)| (*k, v.clone())).collect();
        for (var, vv) in lets {
            // A value known in this lane is a constant, as in scalar code
            // (a register buffer may be indexed by it). The lets' values
            // are computed with the lane variable bound.
            let bind = g.with_vars(&binds, |g| -> CgResult<Bind> {
                Ok(match self.let_src.get(&var).and_then(|e| g.const_eval(e)) {
                    Some(c) => Bind::Const(c),
                    None => Bind::Val(self.lane_of(g, &vv, k, var)?),
                })
            })?;
            binds.push((var, bind));
        }
        g.with_vars(&binds, f)
    }

    fn lane_of(&self, g: &mut Gen<'_, '_, '_>, vv: &VV, k: usize, var: VarId) -> CgResult<Value> {
        Ok(match vv {
            VV::U(x) => *x,
            VV::L(xs) => xs[k],
            VV::V(chunks) => {
                let dtype = g.f.vars.get(var).map(|i| i.dtype).unwrap_or(DType::I64);
                let (_, lanes) = vec_ty(dtype).ok_or_else(|| cg_err("vector value of a scalar-only type"))?;
                g.b.ins().extractlane(chunks[k / lanes], (k % lanes) as u8)
            }
        })
    }

    /// Per-lane scalars of a value of type `t`.
    fn to_lanes(&self, g: &mut Gen<'_, '_, '_>, vv: VV, t: DType) -> CgResult<Vec<Value>> {
        Ok(match vv {
            VV::U(x) => vec![x; self.w],
            VV::L(xs) => xs,
            VV::V(chunks) => {
                let (_, lanes) = vec_ty(t).ok_or_else(|| cg_err("vector value of a scalar-only type"))?;
                (0..self.w).map(|k| g.b.ins().extractlane(chunks[k / lanes], (k % lanes) as u8)).collect()
            }
        })
    }

    /// Vector registers of a value of type `t` (which has a vector type).
    fn to_vecs(&self, g: &mut Gen<'_, '_, '_>, vv: VV, t: DType) -> CgResult<Vec<Value>> {
        let (vt, lanes) = vec_ty(t).ok_or_else(|| cg_err("no vector type"))?;
        Ok(match vv {
            VV::V(c) => c,
            VV::U(x) => {
                let s = match const_bits(g, x) {
                    Some(bits) => g.vconst(vt, bits),
                    None => g.b.ins().splat(vt, x),
                };
                vec![s; self.w / lanes]
            }
            VV::L(xs) => (0..self.w / lanes)
                .map(|c| {
                    // x86 moves only 32/64-bit scalars into a vector
                    // register: narrower lanes are inserted into zeros.
                    let (mut v, first) = if vt.lane_bits() < 32 {
                        (g.vconst(vt, 0), 0)
                    } else {
                        (g.b.ins().scalar_to_vector(vt, xs[c * lanes]), 1)
                    };
                    for k in first..lanes {
                        v = g.b.ins().insertlane(v, xs[c * lanes + k], k as u8);
                    }
                    v
                })
                .collect(),
        })
    }

    /// Jumps to `done`, passing `vv` as its vector block parameters.
    fn jump_with(&self, g: &mut Gen<'_, '_, '_>, vv: VV, t: DType, done: Block) -> CgResult<()> {
        let args: Vec<BlockArg> = self.to_vecs(g, vv, t)?.into_iter().map(BlockArg::Value).collect();
        g.b.ins().jump(done, &args);
        Ok(())
    }

    /// Whether values of `t` are computed as vectors in this loop.
    fn vectorizable(&self, t: DType) -> bool {
        vec_ty(t).is_some_and(|(_, lanes)| self.w.is_multiple_of(lanes))
    }

    /// Evaluates `e` lane by lane with the scalar generator.
    fn lanes(&self, g: &mut Gen<'_, '_, '_>, e: &Expr) -> CgResult<VV> {
        let mut out = Vec::with_capacity(self.w);
        for k in 0..self.w {
            out.push(self.in_lane(g, k, |g| g.expr(e))?);
        }
        Ok(VV::L(out))
    }

    fn expr(&mut self, g: &mut Gen<'_, '_, '_>, e: &Expr) -> CgResult<VV> {
        if !self.varies(e) {
            return Ok(VV::U(g.expr(e)?));
        }
        let t = e.dtype();
        if let Expr::Var(x) = e
            && let Some(vv) = self.lets.get(&x.id)
        {
            return Ok(vv.clone());
        }
        if !self.vectorizable(t) {
            return self.lanes(g, e);
        }
        let (_, lanes) = vec_ty(t).ok_or_else(|| cg_err("no vector type"))?;
        match e {
            Expr::Load(l) => self.load(g, l.buf, t, &l.idx[0], e),
            Expr::Unary(op, a) => {
                let x = self.expr(g, a)?;
                let xs = self.to_vecs(g, x, t)?;
                let r = xs
                    .into_iter()
                    .map(|x| match (op, t.is_float()) {
                        (UnOp::Neg, true) => g.b.ins().fneg(x),
                        (UnOp::Neg, false) => g.b.ins().ineg(x),
                        (UnOp::Not, _) => g.b.ins().bnot(x),
                    })
                    .collect();
                Ok(VV::V(r))
            }
            Expr::Binary(op, a, b) => {
                let int = !t.is_float();
                let const_pow2 = b
                    .as_const()
                    .and_then(|c| c.as_i64())
                    .filter(|c| *c > 0 && c.count_ones() == 1 && (t.is_signed_int() || *c < i64::MAX));
                let vector_op = match op {
                    BinOp::Add | BinOp::Sub => true,
                    // No 64-bit or 8-bit lane multiply in SSE.
                    BinOp::Mul => !(int && (lanes == 2 || lanes == 16)),
                    BinOp::Div => !int || const_pow2.is_some(),
                    BinOp::Rem => int && const_pow2.is_some(),
                    BinOp::Min | BinOp::Max => !int || lanes >= 4,
                };
                if !vector_op {
                    return self.lanes(g, e);
                }
                if let (true, Some(c)) = (int && matches!(op, BinOp::Div | BinOp::Rem), const_pow2) {
                    let x = self.expr(g, a)?;
                    let xs = self.to_vecs(g, x, t)?;
                    let sh = c.trailing_zeros() as i64;
                    let r = xs
                        .into_iter()
                        .map(|x| match (op, t.is_signed_int()) {
                            (BinOp::Div, true) => g.b.ins().sshr_imm_s(x, sh),
                            (BinOp::Div, false) => g.b.ins().ushr_imm_s(x, sh),
                            _ => {
                                let (vt, _) = vec_ty(t).unwrap_or((types::I32X4, 4));
                                let m = g.b.ins().iconst(cty(t), c - 1);
                                let mv = g.b.ins().splat(vt, m);
                                g.b.ins().band(x, mv)
                            }
                        })
                        .collect();
                    return Ok(VV::V(r));
                }
                // The update `X[I] + x * y` of an accumulator (a reduction's
                // step) as one fused multiply-add where the CPU has FMA: a
                // reduction's rounding is only defined up to reassociation
                // (SPEC §3), and one rounding per step is within that.
                // Elementwise `x * y + z` rounds twice, as IEEE says.
                if *op == BinOp::Add && t.is_float() && host_has_fma() && self.acc == Some(e as *const Expr) {
                    let parts = match (&**a, &**b) {
                        (Expr::Binary(BinOp::Mul, x, y), z) | (z, Expr::Binary(BinOp::Mul, x, y)) => {
                            Some((&**x, &**y, z))
                        }
                        _ => None,
                    };
                    if let Some((x, y, z)) = parts {
                        // x86 FMAs overwrite their first multiplicand, so the
                        // first operand should die in its FMA (multiplication
                        // commutes: the order is free). A vector load used
                        // once (it varies with every unrolled loop around it:
                        // a depthwise window) goes first and a broadcast is
                        // shared; a vector shared by the unrolled rows of a
                        // register tile (matmul's `b`, conv's input) goes
                        // second and the broadcast is loaded per use.
                        let uniform = |e: &Expr| !self.varies(e);
                        let once = |g: &Gen<'_, '_, '_>, e: &Expr| matches!(e, Expr::Load(ld) if g.unrolled.iter().all(|u| ld.idx[0].uses_var(*u)));
                        let (x, y) = match (uniform(x), uniform(y)) {
                            (true, false) if once(g, y) => (y, x),
                            (false, true) if !once(g, x) && self.splats_once(g, y, t) => (y, x),
                            _ => (x, y),
                        };
                        let per_use = |this: &Self, g: &Gen<'_, '_, '_>, u: &Expr, v: &Expr| {
                            !once(g, v) && this.splats_once(g, u, t)
                        };
                        let xs = match if per_use(self, g, x, y) { self.load_splats(g, x, t)? } else { None } {
                            Some(v) => v,
                            None => {
                                let xv = self.expr(g, x)?;
                                self.to_vecs(g, xv, t)?
                            }
                        };
                        let ys = match if per_use(self, g, y, x) { self.load_splats(g, y, t)? } else { None } {
                            Some(v) => v,
                            None => {
                                let yv = self.expr(g, y)?;
                                self.to_vecs(g, yv, t)?
                            }
                        };
                        let window = (self.varies(x) && once(g, x)) || (self.varies(y) && once(g, y));
                        let zv = self.expr(g, z)?;
                        let zs = self.to_vecs(g, zv, t)?;
                        // An accumulator that an FMA just produced (a chain
                        // of unrolled steps: a convolution window) takes
                        // `z + x * y` instead: Cranelift places an FMA's
                        // multiplicands before its addend, so every step's
                        // loads would be issued ahead of the whole chain and
                        // spilled; `fadd(z, fmul(x, y))` emits each load next
                        // to its multiply, which folds it. Only for such a
                        // window: the unrolled `k` steps of a register tile
                        // share their `b` vectors and keep the FMA.
                        let r = (0..xs.len())
                            .map(|c| {
                                if window && g.fma_results.contains(&zs[c]) {
                                    let p = g.b.ins().fmul(xs[c], ys[c]);
                                    g.b.ins().fadd(zs[c], p)
                                } else {
                                    let v = g.b.ins().fma(xs[c], ys[c], zs[c]);
                                    g.fma_results.insert(v);
                                    v
                                }
                            })
                            .collect();
                        return Ok(VV::V(r));
                    }
                }
                // A non-NaN operand makes NaN-ignoring `max`/`min` one
                // instruction: it goes second (`maxps a, b` returns `b`
                // when either is NaN).
                let b_not_nan = not_nan(b, &g.m.never_nan);
                let swap = matches!(op, BinOp::Min | BinOp::Max) && !int && !b_not_nan && not_nan(a, &g.m.never_nan);
                let (a, b) = if swap { (b, a) } else { (a, b) };
                let x = self.expr(g, a)?;
                let y = self.expr(g, b)?;
                let mut xs = self.to_vecs(g, x, t)?;
                let mut ys = self.to_vecs(g, y, t)?;
                if matches!(op, BinOp::Min | BinOp::Max) && !int && self.lazy != Some(e as *const Expr) {
                    // A zero result is +0.0 (`Gen::fminmax`): operands that
                    // may be -0.0 are made +0.0, which keeps the adds off a
                    // reduction's loop-carried accumulator.
                    for (e, vs) in [(a, &mut xs), (b, &mut ys)] {
                        if !not_neg_zero(e, &g.m.no_neg_zero) {
                            for v in vs.iter_mut() {
                                *v = plus_zero(g, *v);
                            }
                        }
                    }
                }
                let signed = t.is_signed_int();
                let mut r = Vec::with_capacity(xs.len());
                for (x, y) in xs.into_iter().zip(ys) {
                    r.push(match (op, int) {
                        (BinOp::Add, false) => g.b.ins().fadd(x, y),
                        (BinOp::Sub, false) => g.b.ins().fsub(x, y),
                        (BinOp::Mul, false) => g.b.ins().fmul(x, y),
                        (BinOp::Div, false) => g.b.ins().fdiv(x, y),
                        (BinOp::Min | BinOp::Max, false) => vminmax(g, *op == BinOp::Max, x, y, b_not_nan || swap),
                        (BinOp::Add, true) => g.b.ins().iadd(x, y),
                        (BinOp::Sub, true) => g.b.ins().isub(x, y),
                        (BinOp::Mul, true) => g.b.ins().imul(x, y),
                        (BinOp::Min, true) if signed => g.b.ins().smin(x, y),
                        (BinOp::Min, true) => g.b.ins().umin(x, y),
                        (BinOp::Max, true) if signed => g.b.ins().smax(x, y),
                        (BinOp::Max, true) => g.b.ins().umax(x, y),
                        _ => return Err(cg_err("unexpected vector binary operation")),
                    });
                }
                Ok(VV::V(r))
            }
            Expr::If(c, a, b) if !self.varies(c) => {
                // A lazy `if` whose condition is the same in every lane: one
                // branch, vector values merged in block parameters.
                let (vt, lanes) = vec_ty(t).ok_or_else(|| cg_err("no vector type"))?;
                let cv = g.expr(c)?;
                let tb = g.b.create_block();
                let eb = g.b.create_block();
                let done = g.b.create_block();
                let params: Vec<Value> = (0..self.w / lanes).map(|_| g.b.append_block_param(done, vt)).collect();
                g.b.ins().brif(cv, tb, &[], eb, &[]);
                for (blk, arm) in [(tb, a), (eb, b)] {
                    g.b.switch_to_block(blk);
                    let x = g.guarded(|g| self.expr(g, arm))?;
                    self.jump_with(g, x, t, done)?;
                }
                g.b.switch_to_block(done);
                Ok(VV::V(params))
            }
            Expr::Select(c, a, b) if !self.varies(c) => {
                let cv = g.expr(c)?;
                let x = self.expr(g, a)?;
                let y = self.expr(g, b)?;
                let xs = self.to_vecs(g, x, t)?;
                let ys = self.to_vecs(g, y, t)?;
                Ok(VV::V(xs.into_iter().zip(ys).map(|(x, y)| g.b.ins().select(cv, x, y)).collect()))
            }
            Expr::Call(f, args)
                if t.is_float()
                    && matches!(
                        f,
                        Builtin::Sqrt | Builtin::Abs | Builtin::Floor | Builtin::Ceil | Builtin::Trunc | Builtin::Fma
                    ) =>
            {
                let mut vs = vec![];
                for a in args.iter() {
                    let x = self.expr(g, a)?;
                    vs.push(self.to_vecs(g, x, t)?);
                }
                let n = vs[0].len();
                let r = (0..n)
                    .map(|c| match f {
                        Builtin::Sqrt => g.b.ins().sqrt(vs[0][c]),
                        Builtin::Abs => g.b.ins().fabs(vs[0][c]),
                        Builtin::Floor => g.b.ins().floor(vs[0][c]),
                        Builtin::Ceil => g.b.ins().ceil(vs[0][c]),
                        Builtin::Trunc => g.b.ins().trunc(vs[0][c]),
                        _ => g.b.ins().fma(vs[0][c], vs[1][c], vs[2][c]),
                    })
                    .collect();
                Ok(VV::V(r))
            }
            Expr::Call(f, args) if t == DType::F32 && crate::codegen::math::has_vector(*f) => {
                let mut vs = vec![];
                for a in args.iter() {
                    let x = self.expr(g, a)?;
                    vs.push(self.to_vecs(g, x, t)?);
                }
                let n = vs[0].len();
                let mut r = vec![];
                for c in 0..n {
                    let a: Vec<Value> = vs.iter().map(|v| v[c]).collect();
                    r.push(crate::codegen::math::vector_f32(g, *f, &a)?);
                }
                Ok(VV::V(r))
            }
            Expr::If(c, a, b) => match self.masked(g, e, t, c, a, b, true)? {
                Some(r) => Ok(r),
                None => self.lanes(g, e),
            },
            Expr::Select(c, a, b) => match self.masked(g, e, t, c, a, b, false)? {
                Some(r) => Ok(r),
                None => self.lanes(g, e),
            },
            _ => self.lanes(g, e),
        }
    }

    /// `if c { a } else { b }` (lazy) or `select(c, a, b)` with a condition
    /// that varies over the lanes but holds on a range of them: `c` is a
    /// conjunction of load-free invariant conditions and comparisons of
    /// `±lane + invariant` (`i64`) — the guards of padding, `w + s >= 1 &&
    /// w + s <= W`. The range `[lo, hi)` is computed once with scalar
    /// arithmetic and the arms are merged with a lane mask built from it.
    ///
    /// A lazy `if` evaluates its `then` arm for all lanes, which reads
    /// elements that the guard excludes. That is done only when it is
    /// safe: the arm reads memory only through loads contiguous in the
    /// lane (checked at run time to lie inside their buffer) or invariant
    /// in it (executed only when some lane takes the arm, so in bounds),
    /// contains no further `if`, and the `else` arm reads nothing. No lane
    /// taking the arm: only the `else` arm is evaluated; a load partly
    /// outside its buffer (the first and last rows of a padded image), or
    /// an invariant part beyond ±2^40: the lane-by-lane code. `None` when
    /// the shape does not apply.
    #[allow(clippy::too_many_arguments)]
    fn masked(
        &mut self,
        g: &mut Gen<'_, '_, '_>,
        e: &Expr,
        t: DType,
        c: &Expr,
        a: &Expr,
        b: &Expr,
        lazy: bool,
    ) -> CgResult<Option<VV>> {
        let (mut uni, mut conds) = (vec![], vec![]);
        if !self.lane_conds(c, &mut uni, &mut conds) || conds.is_empty() {
            return Ok(None);
        }
        let mut spec = vec![];
        if lazy && !(self.speculable(g, a, &mut spec) && !b.has_load() && !b.any(&mut |x| matches!(x, Expr::If(..)))) {
            return Ok(None);
        }
        // Conjuncts known at compile time (a tap of a border chunk whose
        // column is a constant): true for every lane, dropped; false for
        // every lane, only `b`.
        let mut keep_uni = vec![];
        for u in uni {
            match g.const_eval(u) {
                Some(c) if c.is_true() => {}
                Some(_) => return Ok(Some(self.expr(g, b)?)),
                None => keep_uni.push(u),
            }
        }
        let mut keep = vec![];
        for cond in conds {
            match self.static_range(g, &cond)? {
                Some((lo, hi)) if lo == 0 && hi == self.w as i64 => {}
                Some((lo, hi)) if lo >= hi => return Ok(Some(self.expr(g, b)?)),
                _ => keep.push(cond),
            }
        }
        let (uni, conds) = (keep_uni, keep);
        if conds.is_empty() {
            // Every lane agrees: the branch (or select) of a uniform
            // condition.
            let all = uni
                .iter()
                .map(|u| (**u).clone())
                .reduce(|x, y| Expr::And(x.into(), y.into()))
                .unwrap_or(Expr::bool(true));
            let uniform = if lazy {
                Expr::If(all.into(), a.clone().into(), b.clone().into())
            } else {
                Expr::Select(all.into(), a.clone().into(), b.clone().into())
            };
            return Ok(Some(self.expr(g, &uniform)?));
        }
        let (vt, lanes) = vec_ty(t).ok_or_else(|| cg_err("no vector type"))?;
        let n = self.w / lanes;
        let (lo, hi, fine) = self.lane_range(g, &uni, &conds)?;
        let mask_blk = g.b.create_block();
        let lanes_blk = g.b.create_block();
        let done = g.b.create_block();
        let params: Vec<Value> = (0..n).map(|_| g.b.append_block_param(done, vt)).collect();
        if lazy {
            // No lane takes `a`: `b` alone (evaluating `a` could read out
            // of bounds through an invariant load).
            let none = g.b.ins().icmp(IntCC::SignedGreaterThanOrEqual, lo, hi);
            let else_blk = g.b.create_block();
            let check = g.b.create_block();
            g.b.ins().brif(fine, check, &[], lanes_blk, &[]);
            g.b.switch_to_block(check);
            g.b.ins().brif(none, else_blk, &[], mask_blk, &[]);
            g.b.switch_to_block(else_blk);
            let y = self.expr(g, b)?;
            self.jump_with(g, y, t, done)?;
            // `mask_blk` is entered only when the speculated loads fit.
            let fit_blk = mask_blk;
            let mask_blk2 = g.b.create_block();
            g.b.switch_to_block(fit_blk);
            for (buf, idx) in &spec {
                let len = g.buf_len(*buf)?;
                let i0 = self.in_lane(g, 0, |g| g.index(idx))?;
                let last = g.b.ins().iadd_imm_s(i0, self.w as i64);
                let lo_ok = g.b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, i0, 0);
                let hi_ok = g.b.ins().icmp(IntCC::SignedLessThanOrEqual, last, len);
                let fits = g.b.ins().band(lo_ok, hi_ok);
                let next = g.b.create_block();
                g.b.ins().brif(fits, next, &[], lanes_blk, &[]);
                g.b.switch_to_block(next);
            }
            g.b.ins().jump(mask_blk2, &[]);
            g.b.switch_to_block(mask_blk2);
        } else {
            g.b.ins().brif(fine, mask_blk, &[], lanes_blk, &[]);
            g.b.switch_to_block(mask_blk);
        }
        // A lazy `if`'s arm runs past the checks above: not hoisted
        // above them.
        let x = if lazy { g.guarded(|g| self.expr(g, a))? } else { self.expr(g, a)? };
        let y = self.expr(g, b)?;
        let xs = self.to_vecs(g, x, t)?;
        let ys = self.to_vecs(g, y, t)?;
        let ity = vt.as_int();
        let lt = ity.lane_type();
        let narrow = |g: &mut Gen<'_, '_, '_>, v: Value| {
            let z = g.b.ins().iconst(types::I64, 0);
            let w = g.b.ins().iconst(types::I64, self.w as i64);
            let v = g.b.ins().smax(v, z);
            let v = g.b.ins().smin(v, w);
            let v = if lt == types::I64 { v } else { g.b.ins().ireduce(lt, v) };
            g.b.ins().splat(ity, v)
        };
        let (los, his) = (narrow(g, lo), narrow(g, hi));
        let mut args = Vec::with_capacity(n);
        for ch in 0..n {
            let iota = lane_iota(g, ity, (ch * lanes) as i64);
            let ge = g.b.ins().icmp(IntCC::SignedGreaterThanOrEqual, iota, los);
            let lt_hi = g.b.ins().icmp(IntCC::SignedLessThan, iota, his);
            let m = g.b.ins().band(ge, lt_hi);
            let m = if vt == ity { m } else { g.b.ins().bitcast(vt, MemFlagsData::new(), m) };
            args.push(BlockArg::Value(g.b.ins().bitselect(m, xs[ch], ys[ch])));
        }
        g.b.ins().jump(done, &args);
        g.b.switch_to_block(lanes_blk);
        let l = match self.lanes_loop(g, e, t)? {
            Some(l) => l,
            None => self.lanes(g, e)?,
        };
        self.jump_with(g, l, t, done)?;
        g.b.switch_to_block(done);
        Ok(Some(VV::V(params)))
    }

    /// [`Vec_::lanes`] as a loop over the lanes, for the masked fallback
    /// (reached only when the lane range is decided at run time, so the
    /// guards would not fold per lane when unrolled either): one copy of
    /// the scalar code instead of `w` (a padded convolution's border
    /// chunks have a fallback per tap of the window; unrolled, they were
    /// most of its machine code), each lane's value stored to a stack slot
    /// that is then loaded as vectors. `None` where `e` reads a varying
    /// `let` (its lanes are vector values).
    fn lanes_loop(&self, g: &mut Gen<'_, '_, '_>, e: &Expr, t: DType) -> CgResult<Option<VV>> {
        if e.any(&mut |x| matches!(x, Expr::Var(v) if self.lets.contains_key(&v.id))) {
            return Ok(None);
        }
        let Some((vt, lanes)) = vec_ty(t) else { return Ok(None) };
        let esz = cty(t).bytes() as i64;
        let slot = g.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            (self.w as i64 * esz) as u32,
            4,
        ));
        let base = g.b.ins().stack_addr(g.ptr, slot, 0);
        let head = g.b.create_block();
        let body = g.b.create_block();
        let exit = g.b.create_block();
        let k = g.b.append_block_param(head, types::I64);
        let zero = g.iconst(0);
        g.b.ins().jump(head, &[BlockArg::Value(zero)]);
        g.b.switch_to_block(head);
        let end = g.b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, k, self.w as i64);
        g.b.ins().brif(end, exit, &[], body, &[]);
        g.b.switch_to_block(body);
        let lane = g.b.ins().iadd(self.min_v, k);
        let x = g.in_loop(self.v, lane, |g| g.expr(e))?;
        let off = g.b.ins().imul_imm_s(k, esz);
        let a = g.b.ins().iadd(base, off);
        g.b.ins().store(MemFlagsData::trusted(), x, a, 0);
        let next = g.b.ins().iadd_imm_s(k, 1);
        g.b.ins().jump(head, &[BlockArg::Value(next)]);
        g.b.switch_to_block(exit);
        let vs =
            (0..self.w / lanes).map(|c| g.b.ins().load(vt, MemFlagsData::trusted(), base, (c * 16) as i32)).collect();
        Ok(Some(VV::V(vs)))
    }

    /// Splits a condition into load-free invariant conjuncts (`uni`) and
    /// comparisons `d op 0` with `d` an `i64` function `±lane + invariant`
    /// (`conds`: coefficient, operator, `d`); `false` if some conjunct is
    /// neither.
    fn lane_conds<'e>(&self, c: &'e Expr, uni: &mut Vec<&'e Expr>, conds: &mut Vec<(i64, CmpOp, Expr)>) -> bool {
        match c {
            Expr::And(x, y) => self.lane_conds(x, uni, conds) && self.lane_conds(y, uni, conds),
            _ if !self.varies(c) => {
                uni.push(c);
                !c.has_load()
            }
            Expr::Cmp(op @ (CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge), x, y) if x.dtype() == DType::I64 => {
                let d = (**x).clone() - (**y).clone();
                let varying: HashSet<VarId> = self.lets.keys().copied().collect();
                match affine(&d, self.v, &varying) {
                    Some(k @ (1 | -1)) if !d.has_load() => {
                        conds.push((k, *op, d));
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }

    /// The lanes `[lo, hi)` where the conjunction holds (either may lie
    /// outside `0..=w`; empty when `lo >= hi`), and whether every
    /// comparison's invariant part is within ±2^40 (so that adding a lane
    /// number cannot wrap).
    fn lane_range(
        &self,
        g: &mut Gen<'_, '_, '_>,
        uni: &[&Expr],
        conds: &[(i64, CmpOp, Expr)],
    ) -> CgResult<(Value, Value, Value)> {
        let mut lo = g.iconst(0);
        let mut hi = g.iconst(self.w as i64);
        let mut fine = g.b.ins().iconst(types::I8, 1);
        for (k, op, d) in conds {
            let base = self.in_lane(g, 0, |g| g.index(d))?;
            let shifted = g.b.ins().iadd_imm_s(base, 1 << 40);
            let small = g.b.ins().icmp_imm_u(IntCC::UnsignedLessThanOrEqual, shifted, 1 << 41);
            fine = g.b.ins().band(fine, small);
            let (is_lo, sign, add) = lane_bound(*k, *op);
            let v = if sign < 0 { g.b.ins().ineg(base) } else { base };
            let v = if add != 0 { g.b.ins().iadd_imm_s(v, add) } else { v };
            if is_lo {
                lo = g.b.ins().smax(lo, v);
            } else {
                hi = g.b.ins().smin(hi, v);
            }
        }
        for u in uni {
            let c = g.expr(u)?;
            let zero = g.iconst(0);
            hi = g.b.ins().select(c, hi, zero);
        }
        Ok((lo, hi, fine))
    }

    /// The lanes `[lo, hi)` (clamped to `0..=w`) where one comparison of
    /// [`Vec_::lane_conds`] holds, when its invariant part is a
    /// compile-time constant.
    fn static_range(&self, g: &mut Gen<'_, '_, '_>, cond: &(i64, CmpOp, Expr)) -> CgResult<Option<(i64, i64)>> {
        let (k, op, d) = cond;
        let w = self.w as i64;
        let Some(base) = self.in_lane(g, 0, |g| Ok(g.const_eval(d).and_then(|c| c.as_i64())))? else {
            return Ok(None);
        };
        if base.unsigned_abs() > 1 << 40 {
            return Ok(None);
        }
        let (is_lo, sign, add) = lane_bound(*k, *op);
        let v = sign * base + add;
        let (lo, hi) = if is_lo { (v, w) } else { (0, v) };
        Ok(Some((lo.clamp(0, w), hi.clamp(0, w))))
    }

    /// Whether `e` may be evaluated for lanes where a guard excludes it:
    /// its loads are from memory and contiguous in the lane (collected in
    /// `spec`, to be checked against their buffer) or invariant, and it
    /// has no lazy `if`.
    fn speculable(&self, g: &Gen<'_, '_, '_>, e: &Expr, spec: &mut Vec<(BufId, Expr)>) -> bool {
        let varying: HashSet<VarId> = self.lets.keys().copied().collect();
        let mut ok = true;
        e.visit(&mut |x| match x {
            Expr::If(..) => ok = false,
            Expr::Load(l) => {
                let mem = matches!(g.locs.get(l.buf.0 as usize), Some(Some(Loc::Mem(_))));
                match affine(&l.idx[0], self.v, &varying) {
                    Some(0) if mem => {}
                    Some(1) if mem && g.buf_len_known(l.buf) => spec.push((l.buf, l.idx[0].clone())),
                    _ => ok = false,
                }
            }
            _ => {}
        });
        ok
    }

    /// A uniform load as a multiplicand of several fused multiply-adds:
    /// one broadcast load per vector register instead of one shared splat.
    /// x86's FMA overwrites a multiplicand, so a shared splat costs a
    /// register copy per use and a scalar load plus a register broadcast;
    /// a splat used once folds its load (`vbroadcastss (mem)`) and dies in
    /// its FMA. The loads must differ for Cranelift not to merge them back
    /// into one: alternate loads drop the (for a scalar load meaningless)
    /// `aligned` flag, and from the third on the address is a distinct
    /// value (`a - 16c` with offset `16c`), which costs one `lea`.
    fn load_splats(&mut self, g: &mut Gen<'_, '_, '_>, e: &Expr, t: DType) -> CgResult<Option<Vec<Value>>> {
        if !self.splats_once(g, e, t) {
            return Ok(None);
        }
        let Expr::Load(l) = e else { return Ok(None) };
        let Some((vt, lanes)) = vec_ty(t) else { return Ok(None) };
        let n = self.w / lanes;
        let Some(Loc::Mem(base)) = g.locs.get(l.buf.0 as usize).cloned().flatten() else { return Ok(None) };
        let (a, off) = g.addr_of(base, t, &l.idx[0])?;
        let fl = g.mem_flags(l.buf);
        let mut out = Vec::with_capacity(n);
        for c in 0..n {
            let pair = (c / 2) as i32 * 16;
            let ac = if pair == 0 { a } else { g.b.ins().iadd_imm_s(a, -(pair as i64)) };
            let mut f = vflags(fl);
            if c % 2 == 0 {
                f = f.with_aligned();
            }
            let x = g.b.ins().load(cty(t), f, ac, off + pair);
            out.push(g.b.ins().splat(vt, x));
        }
        Ok(Some(out))
    }

    /// Whether [`Vec_::load_splats`] applies: a uniform float load from
    /// memory whose address changes in the innermost loop. (A load fixed
    /// there is hoisted by Cranelift: one shared splat in a register is
    /// better than a broadcast per use — depthwise weights.)
    fn splats_once(&self, g: &Gen<'_, '_, '_>, e: &Expr, t: DType) -> bool {
        let Expr::Load(l) = e else { return false };
        t.is_float()
            && !self.varies(e)
            && vec_ty(t).is_some()
            && matches!(g.locs.get(l.buf.0 as usize), Some(Some(Loc::Mem(_))))
            && g.loop_depth > 0
            && g.expr_depth(&l.idx[0]) >= g.loop_depth
    }

    fn load(&mut self, g: &mut Gen<'_, '_, '_>, buf: BufId, t: DType, idx: &Expr, e: &Expr) -> CgResult<VV> {
        let varying: HashSet<VarId> = self.lets.keys().copied().collect();
        if affine(idx, self.v, &varying) != Some(1) {
            return self.lanes(g, e);
        }
        let (vt, lanes) = vec_ty(t).ok_or_else(|| cg_err("no vector type"))?;
        let base_bind = self.lane_bind(g, 0);
        match g.locs.get(buf.0 as usize).cloned().flatten() {
            Some(Loc::Mem(base)) => {
                let (a, off) = self.addr_lane0(g, base_bind, base, t, idx)?;
                let fl = vflags(g.mem_flags(buf));
                let r = (0..self.w / lanes).map(|c| g.b.ins().load(vt, fl, a, off + (c * 16) as i32)).collect();
                Ok(VV::V(r))
            }
            Some(Loc::Regs { vars, group }) => {
                let i0 = g.with_var(self.v, base_bind, None, |g| g.const_eval(idx).and_then(|s| s.as_i64()));
                // Whole vectors of the buffer; anything else (an index past
                // the buffer too, in lanes a guard discards) lane by lane.
                let nv = (self.w / lanes) as i64;
                match i0 {
                    Some(i0)
                        if group as usize == lanes
                            && i0 % lanes as i64 == 0
                            && i0 >= 0
                            && i0 / lanes as i64 + nv <= vars.len() as i64 =>
                    {
                        let first = (i0 / lanes as i64) as usize;
                        let r = (0..self.w / lanes).map(|c| g.b.use_var(vars[first + c])).collect();
                        Ok(VV::V(r))
                    }
                    _ => self.lanes(g, e),
                }
            }
            None => Err(cg_err("load of an unallocated buffer")),
        }
    }

    /// The address of lane 0's element.
    fn addr_lane0(
        &self,
        g: &mut Gen<'_, '_, '_>,
        b: Bind,
        base: Value,
        t: DType,
        idx: &Expr,
    ) -> CgResult<(Value, i32)> {
        g.with_var(self.v, b, None, |g| g.addr_of(base, t, idx))
    }

    fn stmt<'a>(&mut self, g: &mut Gen<'a, '_, '_>, s: &'a Stmt) -> CgResult<()> {
        match s {
            Stmt::Nop => Ok(()),
            Stmt::Seq(v) => v.iter().try_for_each(|s| self.stmt(g, s)),
            Stmt::Let(bx) => {
                let (var, value, body) = (&bx.0, &bx.1, &bx.2);
                if self.varies(value) {
                    let vv = self.expr(g, value)?;
                    self.lets.insert(var.id, vv);
                    self.let_src.insert(var.id, value.clone());
                    self.varies_memo.borrow_mut().clear();
                    let r = self.stmt(g, body);
                    self.lets.remove(&var.id);
                    self.let_src.remove(&var.id);
                    self.varies_memo.borrow_mut().clear();
                    r
                } else {
                    // The same in every lane: a constant when known, as in
                    // scalar code.
                    let bind = match g.const_eval(value) {
                        Some(c) => Bind::Const(c),
                        None => Bind::Val(g.expr(value)?),
                    };
                    let d = g.expr_depth(value);
                    g.with_var(var.id, bind, Some(d), |g| self.stmt(g, body))
                }
            }
            Stmt::If(i) => {
                if let Some(c) = g.const_eval(&i.cond) {
                    return match (c.is_true(), &i.els) {
                        (true, _) => self.stmt(g, &i.then),
                        (false, Some(e)) => self.stmt(g, e),
                        (false, None) => Ok(()),
                    };
                }
                let c = g.expr(&i.cond)?;
                let tb = g.b.create_block();
                let done = g.b.create_block();
                let eb = if i.els.is_some() { g.b.create_block() } else { done };
                g.b.ins().brif(c, tb, &[], eb, &[]);
                g.b.switch_to_block(tb);
                g.guarded(|g| self.stmt(g, &i.then))?;
                g.b.ins().jump(done, &[]);
                if let Some(e) = &i.els {
                    g.b.switch_to_block(eb);
                    g.guarded(|g| self.stmt(g, e))?;
                    g.b.ins().jump(done, &[]);
                }
                g.b.switch_to_block(done);
                Ok(())
            }
            Stmt::For(l) => {
                let ext = g.const_eval(&l.extent).and_then(|s| s.as_i64());
                if ext.is_some_and(|e| e <= 0) {
                    return Ok(());
                }
                let unroll =
                    matches!(l.kind, ForKind::Unrolled | ForKind::Vectorized) && ext.is_some_and(|e| e <= MAX_UNROLL);
                if unroll {
                    let min_c = g.const_eval(&l.min).and_then(|s| s.as_i64());
                    let min_v = g.index(&l.min)?;
                    for k in 0..ext.unwrap_or(0) {
                        let b = match min_c {
                            Some(c) => Bind::Const(Scalar::I64(c + k)),
                            None => Bind::Val(g.b.ins().iadd_imm_s(min_v, k)),
                        };
                        g.in_unrolled_copy(l.var.id, b, |g| self.stmt(g, &l.body))?;
                    }
                    return Ok(());
                }
                let lo = g.index(&l.min)?;
                let n = g.index(&l.extent)?;
                g.serial(l.var, lo, n, &mut |g| self.stmt(g, &l.body))
            }
            Stmt::Store(st) => self.store(g, st.buf, &st.idx[0], &st.value),
            Stmt::Alloc(..) => Err(cg_err("allocation inside a vectorized loop")),
        }
    }

    fn store(&mut self, g: &mut Gen<'_, '_, '_>, buf: BufId, idx: &Expr, value: &Expr) -> CgResult<()> {
        let t = g.f.buffer(buf).dtype;
        let varying: HashSet<VarId> = self.lets.keys().copied().collect();
        let coef = affine(idx, self.v, &varying);
        if coef == Some(0) {
            // A reduction (checked by `legal`): fold lanes in order.
            let red = as_reduction(buf, idx, value).ok_or_else(|| cg_err("invariant store that is not a reduction"))?;
            let acc0 = g.load(buf, t, idx)?;
            let vals = self.expr(g, red.rest)?;
            let lanes = self.to_lanes(g, vals, t)?;
            let mut acc = acc0;
            for x in lanes {
                acc = g.binary(red.op, t, acc, x)?;
            }
            return g.store(buf, idx, acc);
        }
        let is_acc = |x: &Expr| matches!(x, Expr::Load(ld) if ld.buf == buf && ld.idx[0] == *idx);
        let update = matches!(value, Expr::Binary(BinOp::Add, a, b) if is_acc(a) || is_acc(b));
        let old = std::mem::replace(&mut self.acc, update.then_some(value as *const Expr));
        let lazy = g.m.lazy_min_max.contains(&buf)
            && matches!(value, Expr::Binary(BinOp::Min | BinOp::Max, a, b) if is_acc(a) || is_acc(b));
        let old_lazy = std::mem::replace(&mut self.lazy, lazy.then_some(value as *const Expr));
        let vv = self.expr(g, value);
        self.acc = old;
        self.lazy = old_lazy;
        let vv = vv?;
        if coef == Some(1) && self.vectorizable(t) {
            let (_, lanes) = vec_ty(t).ok_or_else(|| cg_err("no vector type"))?;
            let b0 = self.lane_bind(g, 0);
            match g.locs.get(buf.0 as usize).cloned().flatten() {
                Some(Loc::Mem(base)) => {
                    let vs = self.to_vecs(g, vv, t)?;
                    let (a, off) = self.addr_lane0(g, b0, base, t, idx)?;
                    let fl = vflags(g.mem_flags(buf));
                    for (c, v) in vs.into_iter().enumerate() {
                        g.b.ins().store(fl, v, a, off + (c * 16) as i32);
                    }
                    return Ok(());
                }
                Some(Loc::Regs { vars, group }) => {
                    let i0 = g.with_var(self.v, b0, None, |g| g.const_eval(idx).and_then(|s| s.as_i64()));
                    if let Some(i0) = i0
                        && group as usize == lanes
                        && i0 % lanes as i64 == 0
                        && i0 >= 0
                        && i0 / lanes as i64 + (self.w / lanes) as i64 <= vars.len() as i64
                    {
                        let vs = self.to_vecs(g, vv, t)?;
                        let first = (i0 / lanes as i64) as usize;
                        for (c, v) in vs.into_iter().enumerate() {
                            g.b.def_var(vars[first + c], v);
                        }
                        return Ok(());
                    }
                }
                None => return Err(cg_err("store to an unallocated buffer")),
            }
        }
        // Scatter lane by lane.
        let xs = self.to_lanes(g, vv, t)?;
        for (k, x) in xs.into_iter().enumerate() {
            self.in_lane(g, k, |g| g.store(buf, idx, x))?;
        }
        Ok(())
    }
}

/// The bound that `d op 0` puts on the lane number `j` when `d` is
/// `base + k * j` (`k` is ±1): `(true, s, c)` means `j >= s * base + c`,
/// `(false, s, c)` means `j < s * base + c`. One table for the run-time
/// and the compile-time lane ranges.
fn lane_bound(k: i64, op: CmpOp) -> (bool, i64, i64) {
    match (k, op) {
        (1, CmpOp::Ge) => (true, -1, 0),
        (1, CmpOp::Gt) => (true, -1, 1),
        (1, CmpOp::Le) => (false, -1, 1),
        (1, _) => (false, -1, 0),
        (_, CmpOp::Ge) => (false, 1, 1),
        (_, CmpOp::Gt) => (false, 1, 0),
        (_, CmpOp::Le) => (true, 1, 0),
        (_, _) => (true, 1, 1),
    }
}

/// The vector `[first, first + 1, ...]` of an integer vector type.
fn lane_iota(g: &mut Gen<'_, '_, '_>, ity: Type, first: i64) -> Value {
    let lane = (ity.lane_bits() / 8) as usize;
    let mut bytes = Vec::with_capacity(16);
    for k in 0..16 / lane {
        bytes.extend_from_slice(&(first + k as i64).to_le_bytes()[..lane]);
    }
    let h = g.b.func.dfg.constants.insert(cranelift_codegen::ir::ConstantData::from(bytes));
    g.b.ins().vconst(ity, h)
}

/// Vector accesses are not necessarily 16-byte aligned.
fn vflags(f: MemFlagsData) -> MemFlagsData {
    let mut r = MemFlagsData::new().with_notrap();
    if f.readonly() {
        r = r.with_readonly();
    }
    if f.can_move() {
        r = r.with_can_move();
    }
    r
}

/// NaN-ignoring vector min/max (see `Gen::fminmax`).
pub(crate) fn vminmax(g: &mut Gen<'_, '_, '_>, max: bool, a: Value, b: Value, b_not_nan: bool) -> Value {
    let ty = g.b.func.dfg.value_type(a);
    // `a > b` is written `b < a`: with a non-NaN `b`, `bitselect(b < a, a,
    // b)` and `bitselect(a < b, a, b)` are exactly x86's `maxps a, b` and
    // `minps a, b`, which Cranelift selects for these shapes.
    let wins = if max { g.b.ins().fcmp(FloatCC::LessThan, b, a) } else { g.b.ins().fcmp(FloatCC::LessThan, a, b) };
    let mask = g.b.ins().bitcast(ty, MemFlagsData::new(), wins);
    let m = g.b.ins().bitselect(mask, a, b);
    if b_not_nan {
        return m;
    }
    // `maxps a, b` gives `b` when `b` is NaN: take `a` there instead
    // (`cmpunordps` and a blend, rather than or-ing the masks and
    // selecting with three logic operations).
    let bnan = g.b.ins().fcmp(FloatCC::Unordered, b, b);
    let nmask = g.b.ins().bitcast(ty, MemFlagsData::new(), bnan);
    g.b.ins().bitselect(nmask, a, m)
}

/// `v + 0.0`: `-0.0` becomes `+0.0`, every other value (NaN too) stays.
/// With both operands free of `-0.0`, `vminmax` (which returns one of them)
/// gives `+0.0` for a zero result, as `Gen::fminmax` does.
pub(crate) fn plus_zero(g: &mut Gen<'_, '_, '_>, v: Value) -> Value {
    let ty = g.b.func.dfg.value_type(v);
    let zero = g.vconst(ty, 0);
    g.b.ins().fadd(v, zero)
}

/// Whether the host has FMA (Cranelift then emits `vfmadd`; without it an
/// `fma` would be a libcall, so nothing is contracted).
pub(crate) fn host_has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static FMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *FMA.get_or_init(|| std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The bits of a value defined by a constant instruction.
fn const_bits(g: &Gen<'_, '_, '_>, v: Value) -> Option<u64> {
    use cranelift_codegen::ir::InstructionData;
    let inst = g.b.func.dfg.value_def(v).inst()?;
    match g.b.func.dfg.insts[inst] {
        InstructionData::UnaryImm { imm, .. } => Some(imm.bits() as u64),
        InstructionData::UnaryIeee32 { imm, .. } => Some(imm.bits() as u64),
        InstructionData::UnaryIeee64 { imm, .. } => Some(imm.bits()),
        _ => None,
    }
}
