//! Parallel loops: outlined into functions of their own and run on the
//! thread pool when their estimated work is large enough.

use super::*;

impl<'a> Gen<'a, '_, '_> {
    /// A parallel loop: the body becomes its own function, called in
    /// chunks by `texpr_parallel_for` with the captured values in a stack
    /// environment.
    pub(super) fn parallel(&mut self, l: &'a For) -> CgResult<()> {
        let mut vars = HashSet::new();
        analysis::used_vars(&l.body, &mut vars);
        let mut bufs = HashSet::new();
        analysis::used_bufs(&l.body, &mut bufs);
        let mut caps = vec![];
        let mut bl: Vec<BufId> = bufs
            .into_iter()
            .filter(|b| self.f.buffer(*b).kind == BufKind::Temp && self.locs[b.0 as usize].is_some())
            .collect();
        bl.sort();
        for b in bl {
            if matches!(self.locs[b.0 as usize], Some(Loc::Regs { .. })) {
                return Err(cg_err(format!("register buffer `{}` used inside a parallel loop", self.f.buffer(b).name)));
            }
            caps.push(Cap::Buf(b, self.frozen.contains(&b)));
        }
        let mut vl: Vec<VarId> = vars.into_iter().filter(|v| *v != l.var.id && self.env.contains_key(v)).collect();
        vl.sort();
        for v in vl {
            let dtype = self.f.vars.get(v).map(|i| i.dtype).unwrap_or(DType::I64);
            caps.push(match self.env.get(&v) {
                Some(Bind::Const(c)) => Cap::Const(v, *c),
                _ => Cap::Var(Var { id: v, dtype }),
            });
        }
        let slots = 3 + caps.len();
        let ss = self.b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, (slots * 8) as u32, 3));
        let fl = MemFlagsData::trusted();
        let env = self.b.ins().stack_addr(self.ptr, ss, 0);
        self.b.ins().store(fl, self.bufs_ptr, env, 0);
        self.b.ins().store(fl, self.dims_ptr, env, 8);
        self.b.ins().store(fl, self.params_ptr, env, 16);
        for (k, c) in caps.iter().enumerate() {
            let v = match c {
                Cap::Buf(b, _) => match self.loc(*b)? {
                    Loc::Mem(p) => p,
                    Loc::Regs { .. } => return Err(cg_err("register buffer captured")),
                },
                Cap::Var(v) => self.expr(&Expr::Var(*v))?,
                Cap::Const(..) => continue,
            };
            self.b.ins().store(fl, v, env, ((3 + k) * 8) as i32);
        }
        let name = self.m.fresh_name("par");
        let sig = self.m.signature(&[self.ptr, types::I64, types::I64], &[types::I32]);
        let id = self
            .m
            .module
            .declare_function(&name, Linkage::Local, &sig)
            .map_err(|e| cranelift_err(format!("declaring `{name}`: {e}")))?;
        self.m.jobs.push(Job { id, name, lp: l, caps });
        let fref = self.local_ref(id);
        let fp = self.b.ins().func_addr(self.ptr, fref);
        let lo = self.index(&l.min)?;
        let n = self.index(&l.extent)?;
        let work = match self.work(&l.body)? {
            Work::Const(c) => self.iconst(c),
            Work::Dyn(v) => v,
        };
        let st = self.call1(
            "texpr_parallel_for",
            &[self.ptr, self.ptr, types::I64, types::I64, types::I64],
            types::I32,
            &[fp, env, lo, n, work],
        )?;
        let fail = self.fail_block();
        let ok = self.b.create_block();
        self.b.ins().brif(st, fail, &[], ok, &[]);
        self.b.switch_to_block(ok);
        Ok(())
    }

    /// About how many innermost statements one run of `s` executes (the
    /// work of one iteration of a parallel loop, which decides whether the
    /// loop is worth handing to the thread pool): the product of the loop
    /// extents known here, 16 for an extent that depends on variables
    /// bound inside `s` or is a large expression, summed over sequences
    /// and both arms of an `if`.
    /// Each factor is capped at 2^20 and each product at 2^40.
    pub(super) fn work(&mut self, s: &Stmt) -> CgResult<Work> {
        const CAP_EXTENT: i64 = 1 << 20;
        const CAP_WORK: i64 = 1 << 40;
        Ok(match s {
            Stmt::For(l) => {
                let inner = self.work(&l.body)?;
                // Extents bound inside, read from memory, or too large
                // to be worth their instructions (the min/max nests of
                // partitioned loops) count as 16.
                let mut nodes = 0;
                l.extent.visit(&mut |_| nodes += 1);
                let known = nodes <= 5 && self.computable_here(&l.extent);
                let ext = match self.const_eval(&l.extent).and_then(|c| c.as_i64()) {
                    Some(c) => Work::Const(c.clamp(0, CAP_EXTENT)),
                    None if !known => Work::Const(16),
                    None => {
                        let e = self.index(&l.extent)?;
                        let zero = self.iconst(0);
                        let e = self.b.ins().smax(e, zero);
                        let cap = self.iconst(CAP_EXTENT);
                        Work::Dyn(self.b.ins().smin(e, cap))
                    }
                };
                self.work_op(ext, inner, CAP_WORK, true)
            }
            Stmt::Seq(v) => {
                let mut acc = Work::Const(0);
                for x in v {
                    let w = self.work(x)?;
                    acc = self.work_op(acc, w, CAP_WORK, false);
                }
                acc
            }
            Stmt::If(i) => {
                let t = self.work(&i.then)?;
                match &i.els {
                    Some(e) => {
                        let e = self.work(e)?;
                        self.work_op(t, e, CAP_WORK, false)
                    }
                    None => t,
                }
            }
            Stmt::Let(b) => self.work(&b.2)?,
            Stmt::Alloc(_, b) => self.work(b)?,
            Stmt::Store(_) => Work::Const(1),
            Stmt::Nop => Work::Const(0),
        })
    }

    /// `min(a * b, cap)` or `min(a + b, cap)`, folded when both are known.
    pub(super) fn work_op(&mut self, a: Work, b: Work, cap: i64, mul: bool) -> Work {
        if let (Work::Const(x), Work::Const(y)) = (a, b) {
            return Work::Const(if mul { x.saturating_mul(y) } else { x.saturating_add(y) }.min(cap));
        }
        let unit = if mul { 1 } else { 0 };
        match (a, b) {
            (Work::Const(u), w) | (w, Work::Const(u)) if u == unit => return w,
            _ => {}
        }
        let val = |w: Work, g: &mut Self| match w {
            Work::Const(c) => g.iconst(c),
            Work::Dyn(v) => v,
        };
        let (x, y) = (val(a, self), val(b, self));
        let r = if mul { self.b.ins().imul(x, y) } else { self.b.ins().iadd(x, y) };
        let c = self.iconst(cap);
        Work::Dyn(self.b.ins().smin(r, c))
    }

    /// Binds what an outlined function's environment captured.
    pub fn bind_caps(&mut self, env: Value, caps: &[Cap]) {
        let fl = MemFlagsData::trusted().with_readonly().with_can_move();
        for (k, c) in caps.iter().enumerate() {
            let off = ((3 + k) * 8) as i32;
            match c {
                Cap::Buf(b, frozen) => {
                    let p = self.b.ins().load(self.ptr, fl, env, off);
                    self.locs[b.0 as usize] = Some(Loc::Mem(p));
                    if *frozen {
                        self.frozen.insert(*b);
                    }
                }
                Cap::Var(v) => {
                    let x = self.b.ins().load(cty(v.dtype), fl, env, off);
                    self.env.insert(v.id, Bind::Val(x));
                    self.depth.insert(v.id, 0);
                }
                Cap::Const(v, c) => {
                    self.env.insert(*v, Bind::Const(*c));
                    self.depth.insert(*v, 0);
                }
            }
        }
    }
}
