//! Memory: addresses, loads and stores (memory or registers), temporaries
//! (stack, heap, registers) and their allocation.

use super::*;

impl<'a> Gen<'a, '_, '_> {
    /// The address of element `idx` of a buffer in memory.
    pub fn addr(&mut self, base: Value, t: DType, idx: Value) -> Value {
        let sh = t.bytes().trailing_zeros() as i64;
        let off = if sh == 0 { idx } else { self.b.ins().ishl_imm_s(idx, sh) };
        self.b.ins().iadd(base, off)
    }

    /// The loop depth at which `e`'s value is fixed: 0 for constants, dims
    /// and parameters, the binding depth of its variables, the current depth
    /// for anything else (loads).
    pub fn expr_depth(&self, e: &Expr) -> u32 {
        let mut d = 0;
        e.visit(&mut |x| {
            let here = match x {
                Expr::Var(v) => match self.env.get(&v.id) {
                    Some(Bind::Const(_)) => 0,
                    _ => self.depth.get(&v.id).copied().unwrap_or(self.loop_depth),
                },
                Expr::Load(_) => self.loop_depth,
                _ => 0,
            };
            d = d.max(here);
        });
        d
    }

    /// The address of element `idx` of a buffer at `base`, as a value and
    /// a constant byte offset for the access's immediate. The value is a
    /// chain `((base + t0) + t1) + ...` of the index's terms grouped by the
    /// loop depth at which they are fixed (outermost first): Cranelift
    /// hoists each partial sum out of the loops it does not depend on, so a
    /// row pointer `a + (i * K) * 4` is computed once per row and the
    /// innermost access is one addressing mode `c(row, k, 4)`.
    /// The offset is below 2^30 in magnitude, so callers may add the
    /// offsets of a few vector registers to it.
    pub fn addr_of(&mut self, base: Value, t: DType, idx: &Expr) -> CgResult<(Value, i32)> {
        let sh = t.bytes().trailing_zeros();
        let small = |bytes: i64, elems: i64| (bytes >> sh) == elems && bytes.abs() < (1 << 30);
        if let Some(c) = self.const_eval(idx).and_then(|s| s.as_i64()) {
            if small(c.wrapping_shl(sh), c) {
                return Ok((base, c.wrapping_shl(sh) as i32));
            }
            let i = self.iconst(c);
            return Ok((self.addr(base, t, i), 0));
        }
        let mut terms = vec![];
        self.add_terms(idx, None, &mut terms);
        let mut groups: std::collections::BTreeMap<u32, Vec<Expr>> = std::collections::BTreeMap::new();
        let mut konst: i64 = 0;
        for e in terms {
            if let Some(c) = self.const_eval(&e).and_then(|s| s.as_i64()) {
                konst = konst.wrapping_add(c);
                continue;
            }
            groups.entry(self.expr_depth(&e)).or_default().push(e);
        }
        let mut a = base;
        let mut off = 0i32;
        let bytes = konst.wrapping_shl(sh);
        if konst != 0 {
            if small(bytes, konst) {
                off = bytes as i32;
            } else {
                a = self.b.ins().iadd_imm_s(a, bytes);
            }
        }
        for (_, ts) in groups {
            let mut sum: Option<Value> = None;
            for e in ts {
                let v = self.index(&e)?;
                sum = Some(match sum {
                    None => v,
                    Some(s) => self.b.ins().iadd(s, v),
                });
            }
            if let Some(s) = sum {
                let o = if sh == 0 { s } else { self.b.ins().ishl_imm_s(s, sh as i64) };
                a = self.b.ins().iadd(a, o);
            }
        }
        Ok((a, off))
    }

    /// The terms of an index sum, times `scale`: products with a factor
    /// fixed outside the innermost loop are distributed over sums
    /// (`(r + c * H) * W` → `r * W + c * H * W`), so that the parts fixed
    /// at outer loops separate from the varying ones (integer arithmetic
    /// wraps: distribution is exact).
    pub(super) fn add_terms(&self, e: &Expr, scale: Option<&Expr>, out: &mut Vec<Expr>) {
        let scaled = |x: &Expr| match scale {
            Some(k) => x.clone() * k.clone(),
            None => x.clone(),
        };
        match e {
            Expr::Binary(BinOp::Add, a, b) => {
                self.add_terms(a, scale, out);
                self.add_terms(b, scale, out);
            }
            // `a - b` as `a + b * -1` (index arithmetic wraps, so this is
            // exact): a constant `- 1` joins the access's displacement and
            // the rest of `b` its own loop depth's group.
            Expr::Binary(BinOp::Sub, a, b) if e.dtype() == DType::I64 && out.len() < 16 => {
                self.add_terms(a, scale, out);
                let minus = Expr::int(-1);
                let k = match scale {
                    Some(s) => s.clone() * minus,
                    None => minus,
                };
                self.add_terms(b, Some(&k), out);
            }
            Expr::Binary(BinOp::Mul, a, b) if e.dtype() == DType::I64 && out.len() < 16 => {
                let inner = |x: &Expr| self.expr_depth(x) < self.loop_depth && !x.has_load();
                let sums = |x: &Expr| matches!(x, Expr::Binary(BinOp::Add | BinOp::Sub, ..));
                let (sum, k) = if sums(a) && inner(b) {
                    (&**a, &**b)
                } else if sums(b) && inner(a) {
                    (&**b, &**a)
                } else {
                    out.push(scaled(e));
                    return;
                };
                let k2 = match scale {
                    Some(s) => k.clone() * s.clone(),
                    None => k.clone(),
                };
                self.add_terms(sum, Some(&k2), out);
            }
            _ => out.push(scaled(e)),
        }
    }

    /// Whether [`Gen::buf_len`] can compute the buffer's element count
    /// here (its shape reads no memory and only variables bound here).
    pub fn buf_len_known(&self, buf: BufId) -> bool {
        self.f.buffer(buf).shape.iter().all(|d| self.computable_here(d))
    }

    /// Whether `e` reads no memory and only variables bound here, so its
    /// value can be computed at this point.
    pub fn computable_here(&self, e: &Expr) -> bool {
        !e.any(&mut |x| match x {
            Expr::Var(v) => !self.env.contains_key(&v.id),
            Expr::Load(_) => true,
            _ => false,
        })
    }

    /// The number of elements of a buffer: the product of its extents,
    /// each at least 0 (see [`Gen::buf_len_known`]).
    pub fn buf_len(&mut self, buf: BufId) -> CgResult<Value> {
        let mut n = self.iconst(1);
        for d in self.f.buffer(buf).shape.clone() {
            let v = self.index(&d)?;
            let z = self.iconst(0);
            let v = self.b.ins().smax(v, z);
            n = self.b.ins().imul(n, v);
        }
        Ok(n)
    }

    /// Loads of inputs and frozen temporaries are `readonly`, and
    /// `can_move` — Cranelift may then hoist them, out of loops and above
    /// branches — except under a condition ([`Gen::guarded`]): there the
    /// index may be in bounds only where the condition holds (a padding
    /// guard `if h >= 1 { x[h - 1] }`, the full-vector arm of a tail
    /// split), and a hoisted load would read outside its buffer.
    pub fn mem_flags(&self, buf: BufId) -> MemFlagsData {
        let movable = |f: MemFlagsData| if self.guards == 0 { f.with_can_move() } else { f };
        match self.f.buffer(buf).kind {
            BufKind::Input(_) => movable(MemFlagsData::trusted().with_readonly()),
            BufKind::Temp if self.frozen.contains(&buf) => movable(MemFlagsData::trusted().with_readonly()),
            _ => MemFlagsData::trusted(),
        }
    }

    pub(super) fn loc(&self, buf: BufId) -> CgResult<Loc> {
        self.locs
            .get(buf.0 as usize)
            .cloned()
            .flatten()
            .ok_or_else(|| cg_err(format!("buffer `{}` used where it is not allocated", self.f.buffer(buf).name)))
    }

    /// Reads element `idx` of a register-resident buffer.
    ///
    /// An index past the buffer reads element 0 instead: such a read is
    /// never reached, as every access is proven in bounds (symbolically or
    /// for the call's dims) — it sits in a lane of a vectorized `if` whose
    /// condition is false in that lane (`if i - 1 >= 0 { t[i - 1] }` at
    /// `i = 0`), which vector code evaluates and then discards.
    pub fn reg_read(&mut self, vars: &[Variable], group: u32, idx: i64) -> CgResult<Value> {
        let g = group as i64;
        let idx = if (0..vars.len() as i64 * g).contains(&idx) { idx } else { 0 };
        let var = *vars.get((idx / g) as usize).ok_or_else(|| cg_err("register buffer without elements"))?;
        let v = self.b.use_var(var);
        Ok(if group > 1 { self.b.ins().extractlane(v, (idx % g) as u8) } else { v })
    }

    /// Writes element `idx` of a register-resident buffer; an index past
    /// the buffer writes nothing (never reached, as in [`Gen::reg_read`]).
    pub fn reg_write(&mut self, vars: &[Variable], group: u32, idx: i64, val: Value) -> CgResult<()> {
        let g = group as i64;
        if !(0..vars.len() as i64 * g).contains(&idx) {
            return Ok(());
        }
        let var =
            *vars.get((idx / g) as usize).ok_or_else(|| cg_err(format!("register buffer index {idx} out of range")))?;
        let nv = if group > 1 {
            let old = self.b.use_var(var);
            self.b.ins().insertlane(old, val, (idx % g) as u8)
        } else {
            val
        };
        self.b.def_var(var, nv);
        Ok(())
    }

    /// An `i64` index value, folded when known.
    pub fn index(&mut self, e: &Expr) -> CgResult<Value> {
        if let Some(c) = self.const_eval(e).and_then(|s| s.as_i64()) {
            return Ok(self.iconst(c));
        }
        self.expr(e)
    }

    pub fn load(&mut self, buf: BufId, dtype: DType, idx: &Expr) -> CgResult<Value> {
        match self.loc(buf)? {
            Loc::Mem(base) => {
                let (a, off) = self.addr_of(base, dtype, idx)?;
                let fl = self.mem_flags(buf);
                let v = self.b.ins().load(mty(dtype), fl, a, off);
                Ok(self.mem_to_value(dtype, v))
            }
            Loc::Regs { vars, group } => {
                let i = self
                    .const_eval(idx)
                    .and_then(|s| s.as_i64())
                    .ok_or_else(|| cg_err(format!("register buffer indexed by a run-time value: {idx}")))?;
                self.reg_read(&vars, group, i)
            }
        }
    }

    pub fn store(&mut self, buf: BufId, idx: &Expr, v: Value) -> CgResult<()> {
        let dtype = self.f.buffer(buf).dtype;
        match self.loc(buf)? {
            Loc::Mem(base) => {
                let (a, off) = self.addr_of(base, dtype, idx)?;
                let mv = self.value_to_mem(dtype, v)?;
                let fl = self.mem_flags(buf);
                self.b.ins().store(fl, mv, a, off);
                Ok(())
            }
            Loc::Regs { vars, group } => {
                let i = self
                    .const_eval(idx)
                    .and_then(|s| s.as_i64())
                    .ok_or_else(|| cg_err(format!("register buffer indexed by a run-time value: {idx}")))?;
                self.reg_write(&vars, group, i, v)
            }
        }
    }

    pub(super) fn alloc(&mut self, buf: BufId, body: &'a Stmt) -> CgResult<()> {
        let info = self.f.buffer(buf).clone();
        if let Some(p) = self.m.promoted.get(&buf).cloned() {
            let ty = cty(info.dtype);
            let lanes = (128 / ty.bits()) as i64;
            let group =
                if p.vector && lanes > 1 && !is_half(info.dtype) && info.dtype != DType::Bool && p.len % lanes == 0 {
                    lanes
                } else {
                    1
                };
            let vty = if group > 1 { ty.by(group as u32).unwrap_or(ty) } else { ty };
            let zero = self.konst(Scalar::zero(info.dtype));
            let init = if group > 1 { self.b.ins().splat(vty, zero) } else { zero };
            let mut vars = vec![];
            for _ in 0..p.len / group {
                let v = self.b.declare_var(vty);
                self.b.def_var(v, init);
                vars.push(v);
            }
            return self.with_loc(buf, Loc::Regs { vars, group: group as u32 }, |g| g.stmt(body));
        }
        let esz = info.dtype.bytes() as i64;
        // Constant size?
        let mut n_const = Some(1i64);
        for d in &info.shape {
            n_const = match (n_const, self.const_eval(d).and_then(|s| s.as_i64())) {
                (Some(a), Some(d)) => a.checked_mul(d.max(0)),
                _ => None,
            };
        }
        let stack = n_const
            .and_then(|n| n.checked_mul(esz))
            .filter(|bytes| *bytes <= MAX_STACK_BUF && self.stack_used + bytes <= MAX_STACK_TOTAL)
            .map(|bytes| bytes.max(16));
        if let Some(bytes) = stack {
            self.stack_used += bytes;
        }
        if let Some(bytes) = stack.filter(|b| *b <= ZERO_INLINE) {
            let slot = self.b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, bytes as u32, 4));
            let base = self.b.ins().stack_addr(self.ptr, slot, 0);
            self.zero_fill(base, bytes);
            return self.with_loc(buf, Loc::Mem(base), |g| g.stmt(body));
        }
        // The base pointer of a heap buffer or a larger stack buffer is the
        // result of a call made here (the allocation, or the zeroing, which
        // returns its destination), so it is a fresh value in every
        // iteration of an enclosing loop. Loads that follow the last
        // statement storing to the buffer may then be `readonly +
        // can_move`: Cranelift may merge, sink or hoist them, but never
        // above that call or a store (no store follows them, and an
        // enclosing loop changes the base). Sinking them next to their
        // users is what keeps a padded input's rows from being loaded all at
        // once (and spilled).
        self.freezing(freeze_point(body, buf), buf, |g| {
            if let Some(bytes) = stack {
                let slot =
                    g.b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, bytes as u32, 4));
                let addr = g.b.ins().stack_addr(g.ptr, slot, 0);
                let c = g.b.ins().iconst(types::I32, 0);
                let n = g.iconst(bytes);
                let base = g.call1("texpr_lc_memset", &[g.ptr, types::I32, types::I64], g.ptr, &[addr, c, n])?;
                g.with_loc(buf, Loc::Mem(base), |g| g.stmt(body))
            } else if let Some((p, bytes)) = g.prealloc.get(&buf).copied() {
                // Allocated before an enclosing loop: zeroed again here, as
                // a fresh allocation would be.
                let c = g.b.ins().iconst(types::I32, 0);
                let base = g.call1("texpr_lc_memset", &[g.ptr, types::I32, types::I64], g.ptr, &[p, c, bytes])?;
                g.with_loc(buf, Loc::Mem(base), |g| g.stmt(body))
            } else {
                let (p, bytes) = g.heap_alloc(buf)?;
                g.with_loc(buf, Loc::Mem(p), |g| g.stmt(body))?;
                g.call("texpr_free", &[g.ptr, types::I64], &[], &[p, bytes]).map(|_| ())
            }
        })
    }

    /// Runs `f` with `buf`'s elements at `loc`, and its previous location
    /// back after (the scope of an `alloc`).
    fn with_loc<R>(&mut self, buf: BufId, loc: Loc, f: impl FnOnce(&mut Self) -> R) -> R {
        let old = self.locs[buf.0 as usize].replace(loc);
        let r = f(self);
        self.locs[buf.0 as usize] = old;
        r
    }

    /// Runs `f` with `buf` registered to freeze after element `at.1` of the
    /// sequence `at.0` (see [`freeze_point`]), and unregistered after.
    fn freezing<R>(&mut self, at: Option<(*const Stmt, usize)>, buf: BufId, f: impl FnOnce(&mut Self) -> R) -> R {
        let Some((ptr, last)) = at else { return f(self) };
        self.freeze_at.entry(ptr).or_default().push((buf, last));
        let r = f(self);
        if let Some(v) = self.freeze_at.get_mut(&ptr) {
            v.retain(|(b, _)| *b != buf);
            if v.is_empty() {
                self.freeze_at.remove(&ptr);
            }
        }
        r
    }

    /// Allocates a temporary on the heap (zeroed): pointer and byte size.
    /// A failed allocation returns status 1 from the function.
    pub(super) fn heap_alloc(&mut self, buf: BufId) -> CgResult<(Value, Value)> {
        let esz = self.f.buffer(buf).dtype.bytes() as i64;
        let n = self.buf_len(buf)?;
        // An overflowing size is passed as a negative-looking huge request,
        // which the allocator refuses.
        let bytes = self.b.ins().imul_imm_s(n, esz);
        let p = self.call1("texpr_alloc", &[types::I64], self.ptr, &[bytes])?;
        let fail = self.fail_block();
        let ok = self.b.create_block();
        self.b.ins().brif(p, ok, &[], fail, &[]);
        self.b.switch_to_block(ok);
        Ok((p, bytes))
    }

    /// The heap temporaries allocated at the top of `l`'s body (a chain of
    /// `alloc`s) whose size does not depend on `l` or anything bound in it:
    /// they can be allocated once around the loop (and zeroed per
    /// iteration) instead of once per iteration — for a parallel loop, once
    /// per chunk. A packed panel or a softmax row buffer of dynamic size
    /// then costs one `malloc` per thread instead of one per tile or row.
    pub fn hoisted_allocs(&self, l: &For) -> Vec<BufId> {
        let mut bound = HashSet::new();
        bound.insert(l.var.id);
        l.body.visit(&mut |x| match x {
            Stmt::For(f) => {
                bound.insert(f.var.id);
            }
            Stmt::Let(b) => {
                bound.insert(b.0.id);
            }
            _ => {}
        });
        let mut out = vec![];
        let mut cur = &l.body;
        while let Stmt::Alloc(b, body) = cur {
            let info = self.f.buffer(*b);
            let on_heap = !self.m.promoted.contains_key(b)
                && info.shape.iter().any(|d| d.as_int().is_none())
                && !info
                    .shape
                    .iter()
                    .any(|d| d.has_load() || d.any(&mut |e| matches!(e, Expr::Var(v) if bound.contains(&v.id))));
            if on_heap && !self.prealloc.contains_key(b) {
                out.push(*b);
            }
            cur = body;
        }
        out
    }

    /// Zeroes a small stack temporary (at most [`ZERO_INLINE`] bytes) with
    /// inline stores.
    pub(super) fn zero_fill(&mut self, base: Value, bytes: i64) {
        let z = self.b.ins().iconst(types::I64, 0);
        let zv = self.b.ins().splat(types::I64X2, z);
        let mut off = 0;
        let fl = MemFlagsData::new().with_notrap();
        while off + 16 <= bytes {
            self.b.ins().store(fl, zv, base, off as i32);
            off += 16;
        }
        while off < bytes {
            let zb = self.b.ins().iconst(types::I8, 0);
            self.b.ins().store(fl, zb, base, off as i32);
            off += 1;
        }
    }
}
