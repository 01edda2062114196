//! Schedule → loop nest: the first lowering pass.
//!
//! 1. Inline `compute_inline` stages into their readers.
//! 2. Keep the stages the outputs need; check every `compute_at` against the
//!    final data flow.
//! 3. For each stage, consumers first, infer its *region*: the whole tensor
//!    for root stages, and for a stage attached at loop `v` of a consumer,
//!    the box of elements one iteration of `v` reads (all loops inside `v`
//!    vary; for shared memory on GPUs, thread loops vary too), not clipped
//!    to the tensor (elements outside it are skipped by a domain guard).
//! 4. Derive every loop's extent and every index variable's value from the
//!    split/fuse relations (`parent = outer * f + inner`), with a tail guard
//!    for each split that may not divide its parent. A guard that is linear in
//!    its innermost loop becomes that loop's bound
//!    (`for ii in 0..min(32, M - io * 32)`), so bodies stay guard-free;
//!    or, for a vectorized CPU loop over a dimension known to hold a whole
//!    vector, the tail vector is shifted back ([`Builder::shift_inwards`]).
//! 5. Emit the nest: reductions get an init nest over the spatial loops
//!    inside the first reduction loop, and attached stages are emitted, with
//!    their buffers, at the top of the loop they are attached to.

use std::collections::HashMap;

use crate::dtype::DType;
use crate::error::{Error, InternalError, Origin, Result, ScheduleError};
use crate::expr::{BinOp, BufId, CmpOp, Expr, Load, UnOp, Var, VarId};
use crate::func::{Body, TensorKind};
use crate::prover::Prover;
use crate::schedule::{Attach, Rel, SStage, Schedule};
use crate::simplify::{simplify, simplify_in};
use crate::stmt::{BufKind, Buffer, ForKind, LoweredFunc, Scope, Stmt};
use crate::target::{Target, TargetClass};
use crate::value::Scalar;

/// Lowers a schedule to its first loop nest.
pub(crate) fn build(sched: &Schedule, target: Target) -> Result<LoweredFunc> {
    let mut b = Builder::new(sched, target)?;
    b.run()
}

/// Per stage: the loops and what the index variables are in terms of them.
#[derive(Clone, Debug, Default)]
struct Loops {
    /// Region of the stage's tensor it computes: `(min, extent)` per dim.
    region: Vec<(Expr, Expr)>,
    /// Extent of every axis.
    extent: HashMap<usize, Expr>,
    /// Offset of every axis from its leaves (root axes: from the region min).
    value: HashMap<usize, Expr>,
    /// Tail guards `value < extent`, one per split that may not divide.
    guards: Vec<Expr>,
    /// The guards of splits of spatial axes (whose tail may be shifted
    /// inwards, see [`Builder::shift_inwards`]).
    split_guards: Vec<Expr>,
}

struct Builder<'a> {
    s: &'a Schedule,
    target: Target,
    /// Stage bodies after inlining.
    bodies: Vec<Body>,
    live: Vec<bool>,
    /// Topological order of live stages (producers first).
    order: Vec<usize>,
    loops: HashMap<usize, Loops>,
    /// Lowered buffer of each schedule tensor.
    bufmap: HashMap<BufId, BufId>,
    out: LoweredFunc,
    /// Stages attached at (consumer, axis).
    attached: HashMap<(usize, usize), Vec<usize>>,
}

fn internal(msg: impl Into<String>) -> Error {
    Error::Internal(InternalError::new("lower::build", msg))
}

impl<'a> Builder<'a> {
    fn new(s: &'a Schedule, target: Target) -> Result<Builder<'a>> {
        let out = LoweredFunc {
            name: s.func.name.clone(),
            target,
            dims: s.func.dims.clone(),
            params: s.func.params.clone(),
            buffers: vec![],
            vars: s.vars.clone(),
            body: Stmt::Nop,
            flat: false,
        };
        Ok(Builder {
            s,
            target,
            bodies: vec![],
            live: vec![],
            order: vec![],
            loops: HashMap::new(),
            bufmap: HashMap::new(),
            out,
            attached: HashMap::new(),
        })
    }

    fn sched_err(&self, message: String, help: Option<String>, origin: Option<Origin>) -> Error {
        Error::Schedule(ScheduleError { func: self.s.func.name.clone(), message, help, origin })
    }

    fn stage_of_buf(&self, b: BufId) -> Option<usize> {
        match self.s.tensors.get(b.0 as usize)?.kind {
            TensorKind::Stage(s) => Some(s.0 as usize),
            TensorKind::Input(_) => None,
        }
    }

    fn run(&mut self) -> Result<LoweredFunc> {
        self.inline();
        self.liveness();
        self.check_attach()?;
        self.topo()?;
        self.make_buffers();
        // Consumers first, so a stage's region can use its consumer's loops.
        for &st in self.order.clone().iter().rev() {
            self.infer(st)?;
        }
        // Attached stages get their (now known) buffers' shapes.
        for &st in &self.order {
            if let Attach::At { stage, axis, .. } = self.s.stages[st].attach {
                self.attached.entry((stage, axis)).or_default().push(st);
            }
        }
        let mut roots = vec![];
        for st in self.order.clone() {
            if self.s.stages[st].attach == Attach::Root {
                roots.push(self.emit_stage(st)?);
            }
        }
        let mut body = Stmt::seq(roots);
        // Root temporaries live for the whole function.
        for &st in self.order.iter().rev() {
            let ss = &self.s.stages[st];
            if ss.attach == Attach::Root && ss.output.is_none() {
                body = Stmt::Alloc(self.bufmap[&ss.buf], Box::new(body));
            }
        }
        let mut out = std::mem::replace(&mut self.out, empty_func(self.target));
        out.body = body;
        Ok(out)
    }

    /// Substitutes inline stages into their readers.
    fn inline(&mut self) {
        let stages = &self.s.stages;
        let inline_of = |b: BufId| -> Option<&SStage> {
            match self.s.tensors.get(b.0 as usize)?.kind {
                TensorKind::Stage(s) => {
                    let st = &stages[s.0 as usize];
                    (st.attach == Attach::Inline).then_some(st)
                }
                TensorKind::Input(_) => None,
            }
        };
        fn go<'b>(e: &Expr, inline_of: &dyn Fn(BufId) -> Option<&'b SStage>) -> Expr {
            e.rewrite(&mut |x| {
                let Expr::Load(l) = x else { return None };
                let st = inline_of(l.buf)?;
                let Body::Pure(body) = &st.body else { return None };
                let vars: Vec<VarId> = st.spatial.iter().map(|a| st.axes[*a].var.id).collect();
                let sub = body.subst(&|v| vars.iter().position(|x| *x == v).map(|i| l.idx[i].clone()));
                Some(go(&sub, inline_of))
            })
        }
        self.bodies = stages.iter().map(|st| st.body.map(&mut |e| go(e, &inline_of))).collect();
    }

    fn reads(&self, st: usize) -> Vec<usize> {
        let mut out = vec![];
        for e in self.bodies[st].exprs() {
            e.visit(&mut |x| {
                if let Expr::Load(l) = x
                    && let Some(p) = self.stage_of_buf(l.buf)
                    && !out.contains(&p)
                {
                    out.push(p);
                }
            });
        }
        out
    }

    fn liveness(&mut self) {
        let n = self.s.stages.len();
        self.live = vec![false; n];
        let mut stack: Vec<usize> = (0..n).filter(|i| self.s.stages[*i].output.is_some()).collect();
        while let Some(st) = stack.pop() {
            if self.live[st] {
                continue;
            }
            self.live[st] = true;
            stack.extend(self.reads(st));
        }
    }

    fn readers(&self, p: usize) -> Vec<usize> {
        (0..self.s.stages.len()).filter(|c| self.live[*c] && self.reads(*c).contains(&p)).collect()
    }

    /// Re-checks every `compute_at` against the data flow after inlining.
    fn check_attach(&self) -> Result<()> {
        for (i, st) in self.s.stages.iter().enumerate() {
            let Attach::At { stage: c, axis, origin } = st.attach else { continue };
            if !self.live[i] {
                continue;
            }
            let cs = &self.s.stages[c];
            if cs.attach == Attach::Inline {
                return Err(self.sched_err(
                    format!(
                        "`{}` is computed at a loop of `{}`, but `{}` is inlined and has no loops",
                        st.name, cs.name, cs.name
                    ),
                    None,
                    origin,
                ));
            }
            if !cs.leaves.contains(&axis) {
                return Err(self.sched_err(
                    format!(
                        "`{}` is computed at `{}` of `{}`, which was later split or fused",
                        st.name, cs.axes[axis].name, cs.name
                    ),
                    Some(format!("the loops of `{}` are {}", cs.name, cs.leaf_names())),
                    origin,
                ));
            }
            let readers = self.readers(i);
            if !readers.iter().any(|r| self.within(*r, c, axis)) {
                return Err(self.sched_err(format!("`{}` does not read `{}`", cs.name, st.name), None, origin));
            }
            if let Some(other) = readers.iter().find(|r| !self.within(**r, c, axis)) {
                return Err(self.sched_err(
                    format!(
                        "`{}` is computed at a loop of `{}` but is also read by `{}`",
                        st.name, cs.name, self.s.stages[*other].name
                    ),
                    Some(format!(
                        "every reader must run inside that loop (in `{}` itself or in a stage computed inside it); compute it at the root or inline it",
                        cs.name
                    )),
                    origin,
                ));
            }
        }
        Ok(())
    }

    /// Is stage `r` computed inside loop `axis` of stage `t` — `t` itself,
    /// or attached (through any chain of `compute_at`s) at that loop or a
    /// loop nested in it?
    fn within(&self, r: usize, t: usize, axis: usize) -> bool {
        crate::schedule::within(&self.s.stages, r, t, axis)
    }

    /// The chain of stages from reader `r` up to (excluding) `t`.
    fn chain(&self, r: usize, t: usize) -> Vec<usize> {
        let mut out = vec![];
        let mut cur = r;
        while cur != t {
            out.push(cur);
            match self.s.stages[cur].attach {
                Attach::At { stage, .. } => cur = stage,
                _ => break,
            }
        }
        out
    }

    fn topo(&mut self) -> Result<()> {
        let n = self.s.stages.len();
        let mut state = vec![0u8; n];
        let mut order = vec![];
        fn visit(b: &Builder<'_>, st: usize, state: &mut [u8], order: &mut Vec<usize>) -> Result<()> {
            match state[st] {
                2 => return Ok(()),
                1 => return Err(internal(format!("cycle through stage `{}`", b.s.stages[st].name))),
                _ => {}
            }
            state[st] = 1;
            for p in b.reads(st) {
                visit(b, p, state, order)?;
            }
            state[st] = 2;
            order.push(st);
            Ok(())
        }
        for st in 0..n {
            if self.live[st] {
                visit(self, st, &mut state, &mut order)?;
            }
        }
        self.order = order;
        Ok(())
    }

    fn make_buffers(&mut self) {
        for (i, t) in self.s.tensors.iter().enumerate() {
            let (kind, scope, keep) = match t.kind {
                TensorKind::Input(n) => (BufKind::Input(n), Scope::Global, true),
                TensorKind::Stage(s) => {
                    let st = &self.s.stages[s.0 as usize];
                    let live = self.live[s.0 as usize];
                    match (st.output, &st.attach) {
                        (Some(o), _) => (BufKind::Output(o), Scope::Global, live),
                        (None, Attach::At { .. }) => (BufKind::Temp, st.scope, live),
                        // Root temporaries live in main memory whatever the cache scope.
                        (None, _) => (BufKind::Temp, Scope::Global, live && st.attach == Attach::Root),
                    }
                }
            };
            if !keep {
                continue;
            }
            let id = self.out.add_buffer(Buffer {
                name: t.name.clone(),
                dtype: t.dtype,
                shape: t.shape.clone(),
                kind,
                scope,
            });
            self.bufmap.insert(BufId(i as u32), id);
        }
    }

    /// Extents, values and guards of a stage's axes, given its region.
    fn derive(&self, st: &SStage, region: Vec<(Expr, Expr)>) -> Loops {
        let mut l = Loops { region, ..Default::default() };
        for (d, a) in st.spatial.iter().enumerate() {
            l.extent.insert(*a, l.region[d].1.clone());
        }
        if let Some(r) = st.reduction() {
            for (k, a) in st.reduce.iter().enumerate() {
                let ax = &r.axes[k];
                l.extent.insert(*a, simplify(&(ax.hi.clone() - ax.lo.clone())));
            }
        }
        // Extents flow from roots to leaves in creation order.
        for rel in &st.rels {
            match *rel {
                Rel::Split { parent, outer, inner, factor } => {
                    let pe = l.extent[&parent].clone();
                    l.extent.insert(outer, simplify(&((pe + (factor - 1)) / factor)));
                    l.extent.insert(inner, Expr::int(factor));
                }
                Rel::Fuse { outer, inner, fused } => {
                    let e = simplify(&(l.extent[&outer].clone() * l.extent[&inner].clone()));
                    l.extent.insert(fused, e);
                }
            }
        }
        // Values flow from leaves to roots in reverse creation order.
        for a in &st.leaves {
            l.value.insert(*a, Expr::Var(st.axes[*a].var));
        }
        for rel in st.rels.iter().rev() {
            match *rel {
                Rel::Split { parent, outer, inner, factor } => {
                    let v = simplify(&(l.value[&outer].clone() * factor + l.value[&inner].clone()));
                    l.value.insert(parent, v.clone());
                    let pe = &l.extent[&parent];
                    let divides = crate::arith::Affine::of(pe).is_some_and(|a| a.divisible_by(factor));
                    if !divides {
                        let g = Expr::cmp(CmpOp::Lt, v, pe.clone());
                        if !st.axes[parent].reduce {
                            l.split_guards.push(g.clone());
                        }
                        l.guards.push(g);
                    }
                }
                Rel::Fuse { outer, inner, fused } => {
                    let f = l.value[&fused].clone();
                    let ie = l.extent[&inner].clone();
                    l.value.insert(outer, simplify(&Expr::binary(BinOp::Div, f.clone(), ie.clone())));
                    l.value.insert(inner, simplify(&Expr::binary(BinOp::Rem, f, ie)));
                }
            }
        }
        l
    }

    /// The value of every root variable of a stage, in terms of its loops.
    fn root_map(&self, st: usize) -> HashMap<VarId, Expr> {
        let ss = &self.s.stages[st];
        let l = &self.loops[&st];
        let mut m = HashMap::new();
        for (d, a) in ss.spatial.iter().enumerate() {
            m.insert(ss.axes[*a].var.id, simplify(&(l.region[d].0.clone() + l.value[a].clone())));
        }
        if let Some(r) = ss.reduction() {
            for (k, a) in ss.reduce.iter().enumerate() {
                m.insert(ss.axes[*a].var.id, simplify(&(r.axes[k].lo.clone() + l.value[a].clone())));
            }
        }
        m
    }

    /// The region of stage `st` (consumers already done).
    fn infer(&mut self, st: usize) -> Result<()> {
        let ss = &self.s.stages[st];
        let shape = &self.s.tensors[ss.buf.0 as usize].shape;
        let (region, ctx) = match ss.attach {
            Attach::At { stage: c, axis, .. } => {
                let (r, ctx) = self.region_at(st, c, axis, shape)?;
                (r, Some(ctx))
            }
            _ => (shape.iter().map(|d| (Expr::int(0), d.clone())).collect(), None),
        };
        // The buffer of an attached stage holds its region.
        if let Attach::At { .. } = ss.attach {
            let b = self.bufmap[&ss.buf];
            self.out.buffers[b.0 as usize].shape = region.iter().map(|(_, e)| alloc_extent(e)).collect();
        }
        let mut l = self.derive(ss, region);
        // An attached region is not clipped to the tensor (its indices stay
        // affine); elements outside the tensor's domain are not computed.
        if let Some(ctx) = ctx {
            for (d, a) in ss.spatial.iter().enumerate() {
                let (min, ext) = &l.region[d];
                let global = simplify(&(min.clone() + l.value[a].clone()));
                if !ctx.nonneg(min) {
                    l.guards.push(Expr::cmp(CmpOp::Ge, global.clone(), Expr::int(0)));
                }
                if !ctx.le(&simplify(&(min.clone() + ext.clone())), &shape[d]) {
                    l.guards.push(Expr::cmp(CmpOp::Lt, global, shape[d].clone()));
                }
            }
        }
        self.loops.insert(st, l);
        Ok(())
    }

    /// A prover for the loops of `c` above position `pos` (and `c`'s own
    /// enclosing loops).
    fn context(&self, c: usize, pos: usize) -> Prover {
        let mut chain = vec![(c, pos)];
        let mut cur = c;
        while let Attach::At { stage, axis, .. } = self.s.stages[cur].attach {
            let p = self.s.stages[stage].leaves.iter().position(|a| *a == axis).unwrap_or(0);
            chain.push((stage, p + 1));
            cur = stage;
        }
        let mut p = Prover::new();
        for (st, upto) in chain.into_iter().rev() {
            let ss = &self.s.stages[st];
            let Some(l) = self.loops.get(&st) else { continue };
            for a in &ss.leaves[..upto.min(ss.leaves.len())] {
                p.push_loop(ss.axes[*a].var.id, &Expr::int(0), &l.extent[a]);
            }
        }
        p
    }

    /// The box of the producer `st` that one iteration of loop `axis` of
    /// consumer `c` reads, unclipped, as `(min, extent)` per dim; and the
    /// prover context of the attach point.
    fn region_at(&self, st: usize, c: usize, axis: usize, shape: &[Expr]) -> Result<(Vec<(Expr, Expr)>, Prover)> {
        let cs = &self.s.stages[c];
        let cl = self.loops.get(&c).ok_or_else(|| internal("consumer loops missing"))?;
        let pos = cs.leaves.iter().position(|a| *a == axis).ok_or_else(|| internal("attach axis is not a leaf"))?;
        let relax_threads = self.s.class == Some(TargetClass::Gpu) && self.s.stages[st].scope == Scope::Shared;
        let mut vary: HashMap<VarId, (Expr, Expr)> = HashMap::new();
        for (i, a) in cs.leaves.iter().enumerate() {
            let ax = &cs.axes[*a];
            let inner = i > pos;
            let thread = matches!(ax.kind, ForKind::Bound(t) if t.is_thread());
            if inner || (relax_threads && thread) {
                vary.insert(ax.var.id, (Expr::int(0), simplify(&(cl.extent[a].clone() - 1))));
            }
        }
        // A shared buffer serves the whole block: the thread loops of the
        // stages `c` is computed in (a register tile attached at a thread
        // loop, say) vary too.
        let mut up = &cs.attach;
        while let (true, Attach::At { stage, .. }) = (relax_threads, up) {
            let (us, ul) =
                (&self.s.stages[*stage], self.loops.get(stage).ok_or_else(|| internal("consumer loops missing"))?);
            for a in &us.leaves {
                if matches!(us.axes[*a].kind, ForKind::Bound(t) if t.is_thread()) {
                    vary.insert(us.axes[*a].var.id, (Expr::int(0), simplify(&(ul.extent[a].clone() - 1))));
                }
            }
            up = &us.attach;
        }
        // Every reader runs inside the loop: the reader itself or a stage
        // computed inside `c` at or below it. All loops of the stages on the
        // way from a reader to `c` vary within one iteration.
        let buf = self.s.stages[st].buf;
        let mut accesses: Vec<Vec<Expr>> = vec![];
        for r in self.readers(st) {
            for q in self.chain(r, c) {
                let (qs, ql) = (&self.s.stages[q], self.loops.get(&q).ok_or_else(|| internal("reader loops missing"))?);
                for a in &qs.leaves {
                    vary.insert(qs.axes[*a].var.id, (Expr::int(0), simplify(&(ql.extent[a].clone() - 1))));
                }
            }
            let roots = self.root_map(r);
            for e in self.bodies[r].exprs() {
                e.visit(&mut |x| {
                    if let Expr::Load(l) = x
                        && l.buf == buf
                    {
                        accesses.push(l.idx.iter().map(|i| simplify(&i.subst(&|v| roots.get(&v).cloned()))).collect());
                    }
                });
            }
        }
        let ctx = self.context(c, pos + 1);
        let mut region = vec![];
        for (d, ext) in shape.iter().enumerate() {
            let mut lo: Option<Expr> = None;
            let mut hi: Option<Expr> = None;
            for acc in &accesses {
                let (l, h) = interval(&acc[d], &vary).unwrap_or_else(|| (Expr::int(0), ext.clone() - 1));
                lo = Some(match lo {
                    None => l,
                    Some(x) => Expr::min(x, l),
                });
                hi = Some(match hi {
                    None => h,
                    Some(x) => Expr::max(x, h),
                });
            }
            let (lo, hi) = (lo.unwrap_or(Expr::int(0)), hi.unwrap_or(Expr::int(-1)));
            let lo = simplify_in(&lo, Some(&ctx));
            let hi = simplify_in(&hi, Some(&ctx));
            let extent = simplify_in(&(hi - lo.clone() + 1), Some(&ctx));
            // A region no smaller than the tensor is the tensor.
            if ctx.le(&lo, &Expr::int(0)) && ctx.le(ext, &simplify(&(lo.clone() + extent.clone()))) {
                region.push((Expr::int(0), ext.clone()));
                continue;
            }
            region.push((lo, extent));
        }
        Ok((region, ctx))
    }

    /// Emits a stage's nest (with its attached producers).
    fn emit_stage(&mut self, st: usize) -> Result<Stmt> {
        let ss = &self.s.stages[st];
        let l = self.loops.get(&st).cloned().ok_or_else(|| internal("stage loops missing"))?;
        let roots = self.root_map(st);
        let out_buf = self.bufmap[&ss.buf];
        let dtype = self.s.tensors[ss.buf.0 as usize].dtype;
        // Store index: global for root stages, region-relative for attached.
        let attached = matches!(ss.attach, Attach::At { .. });
        let store_idx: Vec<Expr> = ss
            .spatial
            .iter()
            .map(|a| if attached { l.value[a].clone() } else { roots[&ss.axes[*a].var.id].clone() })
            .collect();
        let map_loads = |b: &Builder<'_>, e: &Expr| -> Expr { b.rewrite_loads(&e.subst(&|v| roots.get(&v).cloned())) };
        let first_reduce = ss.leaves.iter().position(|a| ss.axes[*a].reduce).unwrap_or(ss.leaves.len());
        let body = match &self.bodies[st] {
            Body::Pure(e) => {
                let v = map_loads(self, e);
                let store = Stmt::store(out_buf, store_idx.clone(), v);
                self.nest(st, &l, &ss.leaves, store, true)?
            }
            Body::Reduce(r) => {
                let v = map_loads(self, &r.value);
                let cur = Expr::load(out_buf, store_idx.clone(), dtype);
                let combined = Expr::binary(r.op.combiner(), cur, v);
                let update = Stmt::store(out_buf, store_idx.clone(), combined);
                let init = Stmt::store(out_buf, store_idx.clone(), Expr::Const(Scalar::reduce_identity(r.op, dtype)));
                let (common, rest) = ss.leaves.split_at(first_reduce);
                let init_leaves: Vec<usize> = rest.iter().copied().filter(|a| !ss.axes[*a].reduce).collect();
                let init_nest = self.nest_at(st, &l, &init_leaves, common, init, false)?;
                let main_nest = self.nest_at(st, &l, rest, common, update, true)?;
                let inner = Stmt::seq([init_nest, main_nest]);
                self.nest_at(st, &l, common, &[], inner, true)?
            }
        };
        Ok(body)
    }

    fn nest(&mut self, st: usize, l: &Loops, leaves: &[usize], inner: Stmt, attach: bool) -> Result<Stmt> {
        self.nest_at(st, l, leaves, &[], inner, attach)
    }

    /// Loops `leaves` (inside `outer`, already emitted) around `inner`, with
    /// tail guards placed at their innermost loop and attached stages at the
    /// top of their loops.
    fn nest_at(
        &mut self,
        st: usize,
        l: &Loops,
        leaves: &[usize],
        outer: &[usize],
        inner: Stmt,
        attach: bool,
    ) -> Result<Stmt> {
        let ss = &self.s.stages[st];
        let var_of = |a: usize| ss.axes[a].var.id;
        let level_of = |g: &Expr, leaves: &[usize]| -> Option<Option<usize>> {
            // Deepest loop of `leaves` the guard uses; None if it uses one of
            // `outer` only (or none); Some(None) never.
            let mut deepest: Option<usize> = None;
            for (i, a) in leaves.iter().enumerate() {
                if g.uses_var(var_of(*a)) {
                    deepest = Some(i);
                }
            }
            deepest.map(Some)
        };
        // Guards belonging to this part of the nest.
        let mut at_level: HashMap<usize, Vec<Expr>> = HashMap::new();
        let mut top: Vec<Expr> = vec![];
        for g in &l.guards {
            let uses_here = leaves.iter().any(|a| g.uses_var(var_of(*a)));
            let uses_outer = outer.iter().any(|a| g.uses_var(var_of(*a)));
            let all_in_scope =
                ss.leaves.iter().filter(|a| g.uses_var(var_of(**a))).all(|a| leaves.contains(a) || outer.contains(a));
            if !all_in_scope {
                continue;
            }
            match level_of(g, leaves) {
                Some(Some(i)) if uses_here => at_level.entry(i).or_default().push(g.clone()),
                _ if !uses_here && !uses_outer && outer.is_empty() => top.push(g.clone()),
                _ => {}
            }
        }
        let mut body = inner;
        for (i, a) in leaves.iter().enumerate().rev() {
            let ax = &ss.axes[*a];
            let mut extent = l.extent[a].clone();
            // Attached producers run at the top of this loop's body.
            if attach && let Some(children) = self.attached.get(&(st, *a)).cloned() {
                let mut pre = vec![];
                for ch in &children {
                    pre.push(self.emit_stage(*ch)?);
                }
                let mut b = Stmt::seq(pre.into_iter().chain([body]));
                for ch in children.iter().rev() {
                    b = Stmt::Alloc(self.bufmap[&self.s.stages[*ch].buf], Box::new(b));
                }
                body = b;
            }
            let mut conds = vec![];
            let mut clamps = vec![];
            for g in at_level.remove(&i).unwrap_or_default() {
                match (ax.kind, clamp(&g, var_of(*a))) {
                    (ForKind::Bound(_), _) | (_, None) => conds.push(g),
                    (_, Some(bound)) => clamps.push((g, bound)),
                }
            }
            let shift = match clamps.as_slice() {
                [(g, bound)] => self.shift_inwards(st, l, *a, g, bound),
                _ => None,
            };
            for (_, bound) in clamps {
                extent = simplify(&Expr::min(extent, bound));
            }
            if let Some(c) = conds.into_iter().reduce(Expr::and) {
                body = Stmt::if_(c, body);
            }
            body = match shift {
                Some(shift) => shift.emit(ax.var, ax.kind, body),
                None => Stmt::for_(ax.var, Expr::int(0), extent, ax.kind, body),
            };
        }
        if let Some(c) = top.into_iter().reduce(Expr::and) {
            body = Stmt::if_(c, body);
        }
        Ok(body)
    }

    /// Shift-inwards tail (Halide's `TailStrategy::ShiftInwards`) for the
    /// vectorized innermost loop `a` of stage `st`, clamped by the single
    /// split guard `g` (`value < extent`, `value` = `rest + a`) to
    /// `a < bound`: where fewer than `f` (the loop's extent) iterations
    /// remain, the last vector moves back to end at the dimension's end
    /// instead of running the tail lane by lane. It recomputes up to
    /// `f - 1` points an earlier iteration computed, which is correct only
    /// when computing a point again gives the same result and disturbs
    /// nothing:
    /// - CPU targets, a vectorized loop that is the stage's innermost;
    /// - the loops the shifted points belong to (those `value` uses) are
    ///   not inside a reduction loop of the stage: a pure stage, or a
    ///   reduction whose every such loop encloses its init and update nests
    ///   (the later iteration re-initializes the points and reduces them
    ///   whole), and then none of them runs in parallel (two threads would
    ///   accumulate into the same points at once; a pure stage's threads
    ///   only write equal values);
    /// - no stage is attached at or inside those loops (its region covers
    ///   the unshifted points only);
    /// - the dimension holds at least `f` points, known at lowering
    ///   (literal or specialized dims). A run-time test would need the
    ///   lane-by-lane tail beside the shifted vector, and the JIT unswitches
    ///   such a dims-only test by copying the whole nest: measured on a
    ///   generic depthwise, twice the compile time, and its hot loop lost 7%
    ///   to the larger function's register pressure.
    fn shift_inwards(&self, st: usize, l: &Loops, a: usize, g: &Expr, bound: &Expr) -> Option<Shift> {
        let ss = &self.s.stages[st];
        let f = l.extent[&a].as_int()?;
        let Expr::Cmp(CmpOp::Lt, value, _) = g else { return None };
        let var = ss.axes[a].var.id;
        if self.target.class() != TargetClass::Cpu
            || ss.axes[a].kind != ForKind::Vectorized
            || ss.leaves.last() != Some(&a)
            || !l.split_guards.contains(g)
            || crate::arith::Affine::of(value)?.take(&crate::arith::Atom::Var(var)) != 1
        {
            return None;
        }
        let uses: Vec<usize> = (0..ss.leaves.len()).filter(|p| value.uses_var(ss.axes[ss.leaves[*p]].var.id)).collect();
        let first = *uses.first()?;
        if ss.leaves[first..].iter().any(|x| self.attached.contains_key(&(st, *x))) {
            return None;
        }
        if let Body::Reduce(_) = &self.bodies[st] {
            let first_reduce = ss.leaves.iter().position(|x| ss.axes[*x].reduce).unwrap_or(ss.leaves.len());
            let carried = || uses.iter().map(|p| ss.leaves[*p]).filter(|x| *x != a);
            if carried().any(|x| ss.axes[x].kind == ForKind::Parallel)
                || uses.iter().any(|p| ss.leaves[*p] != a && *p >= first_reduce)
            {
                return None;
            }
        }
        let by = simplify(&(bound.clone() - f));
        if simplify(&value.subst1(var, &by)).as_int()? < 0 {
            return None;
        }
        Some(Shift { f, bound: bound.clone(), by })
    }

    /// Points loads at lowered buffers; loads of attached stages become
    /// region-relative.
    fn rewrite_loads(&self, e: &Expr) -> Expr {
        e.rewrite(&mut |x| {
            let Expr::Load(l) = x else { return None };
            let nb = *self.bufmap.get(&l.buf)?;
            let idx = match self.stage_of_buf(l.buf) {
                Some(p) if matches!(self.s.stages[p].attach, Attach::At { .. }) => {
                    let region = &self.loops.get(&p)?.region;
                    l.idx.iter().zip(region).map(|(i, (m, _))| simplify(&(i.clone() - m.clone()))).collect()
                }
                _ => l.idx.clone(),
            };
            Some(Expr::Load(std::sync::Arc::new(Load { buf: nb, idx, dtype: l.dtype })))
        })
    }
}

/// A loop whose tail is shifted inwards ([`Builder::shift_inwards`]).
struct Shift {
    /// The loop's (constant) extent.
    f: i64,
    /// Iterations left in the dimension (`a < bound`).
    bound: Expr,
    /// How far the tail vector moves: `bound - f` (negative in the tail).
    by: Expr,
}

impl Shift {
    /// `if bound >= f { the vector } else { the vector ending at the
    /// dimension's end }` (the latter under `if bound >= 1`).
    fn emit(self, var: Var, kind: ForKind, body: Stmt) -> Stmt {
        let moved = Expr::Var(var) + self.by;
        let shifted = body.map_exprs(&mut |e| e.subst1(var.id, &moved));
        let full = Stmt::for_(var, Expr::int(0), Expr::int(self.f), kind, body);
        // Iterations with no points left (`bound <= 0`: a split of a
        // split's inner, or a split of a fused loop, can have them) run
        // nothing, as the clamped loop did.
        let back = Stmt::for_(var, Expr::int(0), Expr::int(self.f), kind, shifted);
        let back = Stmt::if_(Expr::cmp(CmpOp::Ge, self.bound.clone(), Expr::int(1)), back);
        let cond = Expr::cmp(CmpOp::Ge, self.bound, Expr::int(self.f));
        Stmt::If(Box::new(crate::stmt::If { cond, then: full, els: Some(back) }))
    }
}

fn empty_func(target: Target) -> LoweredFunc {
    LoweredFunc {
        name: String::new(),
        target,
        dims: vec![],
        params: vec![],
        buffers: vec![],
        vars: Default::default(),
        body: Stmt::Nop,
        flat: false,
    }
}

/// The allocation extent for a region extent: its constant upper bound when
/// there is one (`min(32, M - io * 32)` → 32), else the expression itself.
fn alloc_extent(e: &Expr) -> Expr {
    if let Some(fs) = crate::prover::min_forms(e) {
        let best = fs.iter().filter_map(|f| f.as_const()).min();
        if let Some(c) = best {
            return Expr::int(c.max(0));
        }
    }
    Expr::max(e.clone(), Expr::int(0))
}

/// `v < bound`, from a guard `value < extent` linear in `v` with a positive
/// coefficient: `v < ceil((extent - rest) / k)`.
fn clamp(g: &Expr, v: VarId) -> Option<Expr> {
    let Expr::Cmp(CmpOp::Lt, value, ext) = g else { return None };
    let mut a = crate::arith::Affine::of(value)?;
    let atom = crate::arith::Atom::Var(v);
    let k = a.take(&atom);
    if k <= 0
        || a.terms.iter().any(|(x, _)| match x {
            crate::arith::Atom::Other(e) => e.uses_var(v),
            _ => false,
        })
    {
        return None;
    }
    let num = Expr::binary(BinOp::Sub, (**ext).clone(), a.to_expr());
    Some(simplify(&if k == 1 { num } else { (num + (k - 1)) / k }))
}

/// The interval `[lo, hi]` of an index expression when the variables in
/// `vary` range over their intervals; `None` if it cannot be bounded.
fn interval(e: &Expr, vary: &HashMap<VarId, (Expr, Expr)>) -> Option<(Expr, Expr)> {
    if !e.any(&mut |x| matches!(x, Expr::Var(v) if vary.contains_key(&v.id))) {
        return Some((e.clone(), e.clone()));
    }
    if e.dtype() != DType::INDEX {
        return None;
    }
    Some(match e {
        Expr::Var(v) => vary.get(&v.id)?.clone(),
        Expr::Binary(BinOp::Add, a, b) => {
            let (x, y) = (interval(a, vary)?, interval(b, vary)?);
            (x.0 + y.0, x.1 + y.1)
        }
        Expr::Binary(BinOp::Sub, a, b) => {
            let (x, y) = (interval(a, vary)?, interval(b, vary)?);
            (x.0 - y.1, x.1 - y.0)
        }
        Expr::Binary(BinOp::Mul, a, b) => {
            let (k, x) = match (a.as_int(), b.as_int()) {
                (Some(k), _) => (k, b),
                (_, Some(k)) => (k, a),
                _ => return None,
            };
            let (lo, hi) = interval(x, vary)?;
            if k >= 0 { (lo * k, hi * k) } else { (hi * k, lo * k) }
        }
        Expr::Unary(UnOp::Neg, a) => {
            let (lo, hi) = interval(a, vary)?;
            (Expr::int(0) - hi, Expr::int(0) - lo)
        }
        Expr::Binary(BinOp::Div, a, b) => {
            let k = b.as_int().filter(|k| *k > 0)?;
            let (lo, hi) = interval(a, vary)?;
            (lo / k, hi / k)
        }
        Expr::Binary(BinOp::Rem, _, b) => {
            let k = b.as_int().filter(|k| *k > 0)?;
            (Expr::int(0), Expr::int(k - 1))
        }
        Expr::Binary(op @ (BinOp::Min | BinOp::Max), a, b) => {
            let (x, y) = (interval(a, vary)?, interval(b, vary)?);
            (Expr::binary(*op, x.0, y.0), Expr::binary(*op, x.1, y.1))
        }
        Expr::If(_, a, b) | Expr::Select(_, a, b) => {
            let (x, y) = (interval(a, vary)?, interval(b, vary)?);
            (Expr::min(x.0, y.0), Expr::max(x.1, y.1))
        }
        _ => return None,
    })
}
