//! Statements and loops: serial, unrolled and vectorized loops, `let`s and
//! `if`s, with the variable scopes they open.

use super::*;

impl<'a> Gen<'a, '_, '_> {
    pub fn stmt(&mut self, s: &'a Stmt) -> CgResult<()> {
        match s {
            Stmt::Nop => Ok(()),
            Stmt::Seq(v) => {
                let Some(fr) = self.freeze_at.get(&(s as *const Stmt)).cloned() else {
                    return v.iter().try_for_each(|s| self.stmt(s));
                };
                // Buffers freeze after their last store; they thaw at the end
                // of the sequence whatever it returns.
                let r = v.iter().enumerate().try_for_each(|(i, x)| {
                    for (b, last) in &fr {
                        if i == last + 1 {
                            self.frozen.insert(*b);
                        }
                    }
                    self.stmt(x)
                });
                for (b, _) in &fr {
                    self.frozen.remove(b);
                }
                r
            }
            Stmt::Let(bx) => {
                let (var, value, body) = (&bx.0, &bx.1, &bx.2);
                let bind = match self.const_eval(value) {
                    Some(c) => Bind::Const(c),
                    None => Bind::Val(self.expr(value)?),
                };
                let d = self.expr_depth(value);
                self.with_var(var.id, bind, Some(d), |g| g.stmt(body))
            }
            Stmt::If(i) => {
                if let Some(c) = self.const_eval(&i.cond) {
                    return if c.is_true() {
                        self.stmt(&i.then)
                    } else if let Some(e) = &i.els {
                        self.stmt(e)
                    } else {
                        Ok(())
                    };
                }
                let c = self.expr(&i.cond)?;
                let tb = self.b.create_block();
                let done = self.b.create_block();
                let eb = if i.els.is_some() { self.b.create_block() } else { done };
                self.b.ins().brif(c, tb, &[], eb, &[]);
                self.b.switch_to_block(tb);
                self.guarded(|g| g.stmt(&i.then))?;
                self.b.ins().jump(done, &[]);
                if let Some(e) = &i.els {
                    self.b.switch_to_block(eb);
                    self.guarded(|g| g.stmt(e))?;
                    self.b.ins().jump(done, &[]);
                }
                self.b.switch_to_block(done);
                Ok(())
            }
            Stmt::Store(st) => {
                let v = self.expr(&st.value)?;
                self.store(st.buf, &st.idx[0], v)
            }
            Stmt::Alloc(buf, body) => self.alloc(*buf, body),
            Stmt::For(l) => self.for_(l),
        }
    }

    // ---- scopes: every binding below is undone when its closure returns,
    // whatever it returns (no state is restored by hand).

    /// Runs `f` with `v` bound to `bind` — fixed at loop depth `depth` when
    /// given (see [`Gen::depth`]) — and the previous binding back after.
    pub fn with_var<R>(&mut self, v: VarId, bind: Bind, depth: Option<u32>, f: impl FnOnce(&mut Self) -> R) -> R {
        let old = self.env.insert(v, bind);
        let old_d = depth.map(|d| self.depth.insert(v, d));
        let r = f(self);
        if let Some(old_d) = old_d {
            match old_d {
                Some(o) => self.depth.insert(v, o),
                None => self.depth.remove(&v),
            };
        }
        match old {
            Some(o) => self.env.insert(v, o),
            None => self.env.remove(&v),
        };
        r
    }

    /// [`Gen::with_var`] for several variables, bound in order.
    pub fn with_vars<R>(&mut self, binds: &[(VarId, Bind)], f: impl FnOnce(&mut Self) -> R) -> R {
        match binds.split_first() {
            None => f(self),
            Some(((v, b), rest)) => self.with_var(*v, *b, None, |g| g.with_vars(rest, f)),
        }
    }

    /// Runs `f` as the body of a loop one level deeper, its variable `v`
    /// bound to `i` and fixed at that level.
    pub fn in_loop<R>(&mut self, v: VarId, i: Value, f: impl FnOnce(&mut Self) -> R) -> R {
        self.loop_depth += 1;
        let d = self.loop_depth;
        let r = self.with_var(v, Bind::Val(i), Some(d), f);
        self.loop_depth -= 1;
        r
    }

    /// Runs `f` as one copy of an unrolled loop's body, `v` bound to `bind`.
    pub fn in_unrolled_copy<R>(&mut self, v: VarId, bind: Bind, f: impl FnOnce(&mut Self) -> R) -> R {
        self.unrolled.push(v);
        let r = self.with_var(v, bind, None, f);
        self.unrolled.pop();
        r
    }

    pub(super) fn for_(&mut self, l: &'a For) -> CgResult<()> {
        let ext = self.const_eval(&l.extent).and_then(|s| s.as_i64());
        if ext.is_some_and(|e| e <= 0) {
            return Ok(());
        }
        match l.kind {
            ForKind::Parallel => self.parallel(l),
            ForKind::Unrolled if ext.is_some_and(|e| e <= MAX_UNROLL) => self.unrolled(l, ext.unwrap_or(0)),
            ForKind::Vectorized if ext.is_some_and(|e| e <= MAX_VECTOR) => self.vectorized(l, ext.unwrap_or(0)),
            _ => {
                let lo = self.index(&l.min)?;
                let n = self.index(&l.extent)?;
                self.serial_hoisting(l, lo, n, &mut |g| g.stmt(&l.body))
            }
        }
    }

    /// `for var in lo..lo + n { body }`, tested at the top of every
    /// iteration: `header(i): brif i < hi, body, exit; body: ..; jump
    /// header(i + 1)`. Values carried around the loop (promoted
    /// accumulators) then have one use each — the back edge's argument —
    /// and the loop's exit reads the header's parameters. With a
    /// bottom-tested loop the latch's values also flow to the exit, which
    /// counts as a second use, and Cranelift then refuses to fold the loads
    /// that feed them into their users (a `splat` of a load stays a scalar
    /// load plus a register broadcast).
    pub fn serial(
        &mut self,
        var: Var,
        lo: Value,
        n: Value,
        body: &mut dyn FnMut(&mut Self) -> CgResult<()>,
    ) -> CgResult<()> {
        let hi = self.b.ins().iadd(lo, n);
        let header = self.b.create_block();
        let blk = self.b.create_block();
        let exit = self.b.create_block();
        let i = self.b.append_block_param(header, types::I64);
        self.b.ins().jump(header, &[BlockArg::Value(lo)]);
        self.b.switch_to_block(header);
        let done = self.b.ins().icmp(IntCC::SignedGreaterThanOrEqual, i, hi);
        self.b.ins().brif(done, exit, &[], blk, &[]);
        self.b.switch_to_block(blk);
        // Unrolled loops outside this one are not inside the innermost
        // serial loop any more.
        let outer_unrolled = std::mem::take(&mut self.unrolled);
        let r = self.in_loop(var.id, i, |g| body(g));
        self.unrolled = outer_unrolled;
        r?;
        let i1 = self.b.ins().iadd_imm_s(i, 1);
        self.b.ins().jump(header, &[BlockArg::Value(i1)]);
        self.b.switch_to_block(exit);
        Ok(())
    }

    pub(super) fn unrolled(&mut self, l: &'a For, ext: i64) -> CgResult<()> {
        let min_c = self.const_eval(&l.min).and_then(|s| s.as_i64());
        let min_v = if min_c.is_none() { Some(self.index(&l.min)?) } else { None };
        for k in 0..ext {
            let bind = match (min_c, min_v) {
                (Some(c), _) => Bind::Const(Scalar::I64(c.wrapping_add(k))),
                (_, Some(v)) => Bind::Val(self.b.ins().iadd_imm_s(v, k)),
                _ => return Err(cg_err("unrolled loop without a start")),
            };
            self.in_unrolled_copy(l.var.id, bind, |g| g.stmt(&l.body))?;
        }
        Ok(())
    }

    pub(super) fn vectorized(&mut self, l: &'a For, ext: i64) -> CgResult<()> {
        if self.lane_reduce(l, ext)? || crate::codegen::vector::try_vectorize(self, l, ext)? {
            return Ok(());
        }
        // Lane by lane: always correct.
        self.unrolled(l, ext)
    }

    /// The last step of a reduction along a vectorized axis, `vectorized
    /// for v in 0..n { X[I] = X[I] op T[v] }` with the per-lane partials `T`
    /// in vector registers (`op` one of `+ min max`, `I` not using `v`):
    /// the partial vectors are combined with vector operations, then the
    /// lanes of the result, then `X[I]` — `n / lanes + lanes` operations
    /// instead of `n` scalar ones (each NaN-ignoring scalar `max` is a
    /// compare-and-branch in Cranelift's x86 code). Reassociating a
    /// reduction is within SPEC (a reduction's order is open).
    pub(super) fn lane_reduce(&mut self, l: &'a For, ext: i64) -> CgResult<bool> {
        let Stmt::Store(st) = &l.body else { return Ok(false) };
        let Expr::Binary(op @ (BinOp::Add | BinOp::Min | BinOp::Max), x, y) = &st.value else { return Ok(false) };
        let is_acc = |e: &Expr| matches!(e, Expr::Load(ld) if ld.buf == st.buf && ld.idx == st.idx);
        let (acc_e, part) = match (is_acc(x), is_acc(y)) {
            (true, false) => (x, y),
            (false, true) => (y, x),
            _ => return Ok(false),
        };
        let Expr::Load(pl) = &**part else { return Ok(false) };
        let t = pl.dtype;
        let Some(Loc::Regs { vars, group }) = self.locs.get(pl.buf.0 as usize).cloned().flatten() else {
            return Ok(false);
        };
        let g = group as i64;
        let uses_v = st.idx.iter().any(|e| e.any(&mut |z| matches!(z, Expr::Var(w) if w.id == l.var.id)));
        if !t.is_float()
            || st.idx.len() != 1
            || g < 2
            || uses_v
            || self.const_eval(&l.min).and_then(|c| c.as_i64()) != Some(0)
            || !matches!(pl.idx.as_slice(), [Expr::Var(w)] if w.id == l.var.id)
            || ext != vars.len() as i64 * g
        {
            return Ok(false);
        }
        let not_nan = self.m.never_nan.contains(&pl.buf);
        let plus_zero = |g: &mut Self, v: Value| {
            if *op != BinOp::Add && !g.m.no_neg_zero.contains(&pl.buf) {
                crate::codegen::vector::plus_zero(g, v)
            } else {
                v
            }
        };
        let first = self.b.use_var(vars[0]);
        let mut acc = plus_zero(self, first);
        for v in &vars[1..] {
            let next = self.b.use_var(*v);
            let next = plus_zero(self, next);
            acc = match op {
                BinOp::Add => self.b.ins().fadd(acc, next),
                _ => crate::codegen::vector::vminmax(self, *op == BinOp::Max, acc, next, not_nan),
            };
        }
        let mut r = self.b.ins().extractlane(acc, 0);
        for k in 1..g {
            let lane = self.b.ins().extractlane(acc, k as u8);
            // The lanes hold no -0.0 (made +0.0 above, or never stored).
            r = match op {
                BinOp::Add => self.binary(*op, t, r, lane)?,
                _ => self.fminmax_of(*op == BinOp::Max, r, lane),
            };
        }
        let old = self.expr(acc_e)?;
        let v = self.binary(*op, t, old, r)?;
        self.store(st.buf, &st.idx[0], v)?;
        Ok(true)
    }

    /// `serial` for the loop `l`, with the temporaries of
    /// [`Gen::hoisted_allocs`] allocated around it.
    pub fn serial_hoisting(
        &mut self,
        l: &'a For,
        lo: Value,
        n: Value,
        body: &mut dyn FnMut(&mut Self) -> CgResult<()>,
    ) -> CgResult<()> {
        let hoist = self.hoisted_allocs(l);
        if hoist.is_empty() {
            return self.serial(l.var, lo, n, body);
        }
        // Only when the loop runs: an empty loop allocates nothing.
        let any = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, n, 0);
        let run = self.b.create_block();
        let done = self.b.create_block();
        self.b.ins().brif(any, run, &[], done, &[]);
        self.b.switch_to_block(run);
        let mut got = vec![];
        for b in &hoist {
            let pb = self.heap_alloc(*b)?;
            self.prealloc.insert(*b, pb);
            got.push(pb);
        }
        let r = self.serial(l.var, lo, n, body);
        for b in &hoist {
            self.prealloc.remove(b);
        }
        r?;
        for (p, bytes) in got {
            self.call("texpr_free", &[self.ptr, types::I64], &[], &[p, bytes])?;
        }
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
        Ok(())
    }
}
