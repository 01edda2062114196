//! GPU lowering: the flat loop nest of a function → a launch sequence of
//! kernels, in a small kernel IR ([`KStmt`]) that the C-family writer
//! prints and the runtimes launch.
//!
//! # The execution model
//!
//! Each root stage of the lowered function (an item of the root `Seq`,
//! inside the `alloc`s of the root temporaries) becomes one kernel; kernels
//! run in order on one in-order queue, root temporaries are device buffers.
//! Inside a kernel every thread of every block runs the kernel body, and:
//!
//! - a loop bound to `block.*` becomes a *grid-stride* loop over the block
//!   index (correct for any grid size, uniform within a block);
//! - a loop bound to `thread.*` becomes the thread index with a guard
//!   (`ti = thread_y; if (ti < 16)`) when every thread loop of the kernel has
//!   a constant extent that fits a block ("simple" mode, the launch size is
//!   that constant), and a block-stride loop otherwise ("strided" mode: any
//!   block size is correct);
//! - a bound loop nested in a loop bound to the same axis, or inside the
//!   computation of an attached stage, runs serially in its thread;
//! - a kernel with no bound loop at all has its outermost loop mapped over
//!   the whole grid when that loop is spatial (every store of the stage
//!   indexes by it), and else runs in a single thread.
//!
//! # Attached temporaries
//!
//! A stage computed at a loop (`compute_at`) is an `alloc` followed by the
//! statements that fill it, in the body of that loop. Serially, each
//! iteration of the loop (each *thread*, for loops inside thread loops)
//! fills its own copy. On the GPU:
//!
//! - **private** (`local` and `global` scopes, and any shared buffer that
//!   cannot be made cooperative): each thread fills its own copy, a private
//!   array when the size is a small constant, else a per-thread slice of a
//!   scratch buffer sized at launch;
//! - **cooperative** (`shared` scope): the buffer is declared once per block
//!   (`__local` / `__shared__`); its fill is distributed over the block's
//!   threads (flat thread id striding over the tile's spatial loops) between
//!   two barriers. This needs every thread of the block to reach the
//!   barriers: thread-dependent guards that enclose the fill (tail guards
//!   such as `if bi * 16 + ti < M`, and thread loops themselves) are pushed
//!   down to the statements that are not fills, so that they predicate only
//!   each thread's own work. A shared buffer is cooperative only when that is
//!   possible: constant size within the shared-memory budget, not inside
//!   another cooperative fill (inside a private one, such as the reduction
//!   of a register tile, is fine), every loop around it uniform across the
//!   block, and a fill
//!   that does not depend on the thread (no thread variable, and no read of
//!   a temporary the thread computed itself).
//!
//! A serial loop that fills cooperative tiles and then computes on them
//! (the `k` loop of a tiled matrix product) is software-pipelined: each
//! thread loads its share of the next iteration's tiles into registers
//! before computing on the current ones (`Kl::pipelined`).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use texpr_dsl::expr::{BinOp, CmpOp, UnOp};
use texpr_dsl::simplify::simplify;
use texpr_dsl::{
    BufId, BufKind, Buffer, DType, Error, Expr, For, ForKind, InternalError, LoweredFunc, Result, Scalar, Scope, Stmt,
    Var, VarId,
};

use crate::kir::{
    Bound, Ctx, GpuFunc, GpuKernel, Hw, KArg, KStmt, Launch, MAX_BLOCK, PRIVATE_MAX, SHARED_BUDGET, ScratchBuf,
};
use crate::names::{self, Lang};

/// Threads per block of a kernel whose outermost loop is mapped over the grid.
pub const AUTO_BLOCK: i64 = 64;

/// Lowers a flat function to kernels. The function must come from
/// `texpr_dsl`'s lowering (verified there); what the algorithm below indexes
/// by — buffers and variables by handle — is checked at the door, so a bug
/// upstream is an [`Error::Internal`] here, not a panic in the caller's
/// process.
pub fn lower(f: &LoweredFunc) -> Result<GpuFunc> {
    check_handles(f)?;
    let mut func = f.clone();
    let mut temps = vec![];
    let mut body = &f.body;
    while let Stmt::Alloc(b, inner) = body {
        temps.push(*b);
        body = inner;
    }
    let stages: Vec<&Stmt> = match body {
        Stmt::Seq(v) => v.iter().collect(),
        Stmt::Nop => vec![],
        s => vec![s],
    };
    let mut kernel_names = BTreeSet::new();
    let mut kernels = vec![];
    let mut extra = vec![];
    for s in stages {
        let name = kernel_name(f, s, &mut kernel_names);
        let first = (f.buffers.len() + extra.len()) as u32;
        let (k, more) = Kl::new(f, &mut func.vars, first).run(s, name);
        kernels.push(k);
        extra.extend(more);
    }
    func.buffers.extend(extra);
    let g = GpuFunc { func, kernels, temps };
    if cfg!(debug_assertions) || texpr_dsl::verify_enabled() {
        crate::kir::verify(&g)?;
    }
    Ok(g)
}

/// Every buffer and variable a flat function names exists.
fn check_handles(f: &LoweredFunc) -> Result<()> {
    let bad = |what: String| Err(Error::Internal(InternalError::new("texpr-backends", what)));
    if !f.flat {
        return bad("the GPU backends take a flattened loop nest".into());
    }
    let (nbufs, nvars) = (f.buffers.len(), f.vars.len());
    let mut problem = None;
    let mut expr = |e: &Expr| {
        e.visit(&mut |x| match x {
            Expr::Load(l) if l.buf.0 as usize >= nbufs || l.idx.len() != 1 => {
                problem.get_or_insert_with(|| format!("a load of buffer {} with {} indices", l.buf.0, l.idx.len()));
            }
            Expr::Var(v) if v.id.0 as usize >= nvars => {
                problem.get_or_insert_with(|| format!("variable {} of {nvars}", v.id.0));
            }
            _ => {}
        })
    };
    f.body.visit_exprs(&mut expr);
    f.body.visit(&mut |s| match s {
        Stmt::Store(st) if st.buf.0 as usize >= nbufs || st.idx.len() != 1 => {
            problem.get_or_insert_with(|| format!("a store to buffer {} with {} indices", st.buf.0, st.idx.len()));
        }
        Stmt::Alloc(b, _) if b.0 as usize >= nbufs => {
            problem.get_or_insert_with(|| format!("an allocation of buffer {}", b.0));
        }
        Stmt::For(l) if l.var.id.0 as usize >= nvars => {
            problem.get_or_insert_with(|| format!("loop variable {} of {nvars}", l.var.id.0));
        }
        Stmt::Let(b) if b.0.id.0 as usize >= nvars => {
            problem.get_or_insert_with(|| format!("let variable {} of {nvars}", b.0.id.0));
        }
        _ => {}
    });
    match problem {
        Some(p) => bad(format!("malformed loop nest `{}`: {p}", f.name)),
        None => Ok(()),
    }
}

fn kernel_name(f: &LoweredFunc, s: &Stmt, taken: &mut BTreeSet<String>) -> String {
    let mut stage = None;
    s.visit(&mut |x| {
        if let Stmt::Store(st) = x
            && stage.is_none()
            && f.buffer(st.buf).kind != BufKind::Temp
        {
            stage = Some(f.buffer(st.buf).name.clone());
        }
        if let Stmt::Store(st) = x
            && stage.is_none()
            && f.buffer(st.buf).kind == BufKind::Temp
            && f.buffer(st.buf).scope == Scope::Global
        {
            stage = Some(f.buffer(st.buf).name.clone());
        }
    });
    let base = names::sanitize(&format!("{}_{}", f.name, stage.unwrap_or_else(|| "kernel".into())));
    let base = if names::is_reserved(Lang::OpenCl, &base) || names::is_reserved(Lang::Cuda, &base) {
        format!("k_{base}")
    } else {
        base
    };
    let mut name = base.clone();
    let mut n = 1;
    while taken.contains(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

/// How a loop runs in a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Map {
    /// In its thread, in order.
    Serial,
    /// Grid-stride over the blocks of an axis.
    Block(usize),
    /// Over the threads of a block along an axis.
    Thread(usize),
    /// Over every thread of the grid (x).
    Auto,
}

/// How thread loops map to threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// One iteration per thread; the block is this many threads.
    Simple([i64; 3]),
    /// Block-stride loops; any block size.
    Strided,
}

/// The context of a statement during lowering.
#[derive(Clone, Debug, Default)]
struct Cx {
    /// Axes mapped by an enclosing loop: block x/y/z, thread x/y/z.
    active: [bool; 6],
    /// Inside the fill of an attached buffer: bound loops run serially.
    in_fill: bool,
    /// Enclosing loops and lets, for launch-time bounds.
    chain: Vec<Ctx>,
    /// Variables whose value differs between the threads of a block.
    varying: HashSet<VarId>,
    /// Every enclosing loop runs the same iterations in every thread of the
    /// block (barriers are legal here).
    uniform: bool,
    /// Thread-dependent guards not yet applied (pushed down to the work).
    preds: Vec<Expr>,
}

impl Cx {
    fn root() -> Cx {
        Cx { uniform: true, ..Default::default() }
    }

    fn is_varying(&self, e: &Expr) -> bool {
        !self.varying.is_empty() && e.any(&mut |x| matches!(x, Expr::Var(v) if self.varying.contains(&v.id)))
    }

    fn without_preds(&self) -> Cx {
        Cx { preds: vec![], ..self.clone() }
    }

    fn with_pred(&self, p: Expr) -> Cx {
        let mut c = self.clone();
        c.preds.push(p);
        c
    }

    fn fill(&self) -> Cx {
        Cx { in_fill: true, ..self.clone() }
    }
}

/// An `alloc` chain: `alloc b1 { alloc b2 { items... } }`.
struct Chain<'s> {
    /// Each `alloc` node with its buffer, outermost first.
    allocs: Vec<(&'s Stmt, BufId)>,
    /// The statements inside.
    items: Vec<&'s Stmt>,
}

fn chain_of(s: &Stmt) -> Chain<'_> {
    let mut allocs = vec![];
    let mut cur = s;
    while let Stmt::Alloc(b, inner) = cur {
        allocs.push((cur, *b));
        cur = inner;
    }
    let items = match cur {
        Stmt::Seq(v) => v.iter().collect(),
        Stmt::Nop => vec![],
        s => vec![s],
    };
    Chain { allocs, items }
}

/// Buffers a statement stores into.
fn stored(s: &Stmt) -> BTreeSet<BufId> {
    let mut out = BTreeSet::new();
    s.visit(&mut |x| {
        if let Stmt::Store(st) = x {
            out.insert(st.buf);
        }
    });
    out
}

/// Buffers a statement reads.
fn loaded(s: &Stmt) -> BTreeSet<BufId> {
    let mut out = BTreeSet::new();
    s.visit_exprs(&mut |e| {
        e.visit(&mut |x| {
            if let Expr::Load(l) = x {
                out.insert(l.buf);
            }
        })
    });
    out
}

/// The chain buffer an item fills, if it stores into one of them.
fn fill_of(item: &Stmt, chain: &[(&Stmt, BufId)]) -> Option<BufId> {
    let st = stored(item);
    chain.iter().map(|(_, b)| *b).find(|b| st.contains(b))
}

/// `true` if the statement mentions a variable of `set` anywhere.
fn mentions(s: &Stmt, set: &HashSet<VarId>) -> bool {
    if set.is_empty() {
        return false;
    }
    let mut found = false;
    s.visit_exprs(&mut |e| {
        if !found && e.any(&mut |x| matches!(x, Expr::Var(v) if set.contains(&v.id))) {
            found = true;
        }
    });
    found
}

fn and_all(preds: &[Expr]) -> Option<Expr> {
    preds.iter().cloned().reduce(Expr::and)
}

fn guard(preds: &[Expr], s: KStmt) -> KStmt {
    if s == KStmt::Nop {
        return s;
    }
    match and_all(preds) {
        Some(c) => KStmt::If { cond: c, then: Box::new(s), els: None },
        None => s,
    }
}

fn axis_slot(m: Map) -> Option<usize> {
    match m {
        Map::Block(a) => Some(a),
        Map::Thread(a) => Some(3 + a),
        Map::Auto => Some(0),
        Map::Serial => None,
    }
}

/// Lowers one root stage to a kernel.
struct Kl<'a> {
    f: &'a LoweredFunc,
    vars: &'a mut texpr_dsl::expr::VarTable,
    hw: BTreeMap<Hw, Var>,
    mode: Mode,
    /// The loop mapped over the whole grid, when there is one.
    auto: Option<*const Stmt>,
    /// `alloc` nodes of cooperative buffers.
    coop: HashSet<*const Stmt>,
    shared: Vec<BufId>,
    shared_bytes: i64,
    /// Temporaries allocated inside the kernel (per thread unless made
    /// cooperative).
    inner: BTreeSet<BufId>,
    scratch: Vec<ScratchBuf>,
    grid: [Vec<Bound>; 3],
    block: [Vec<Bound>; 3],
    /// Buffers this kernel adds to the function (prefetch registers), with
    /// ids from `first_extra` on.
    extra: Vec<Buffer>,
    first_extra: u32,
    /// Buffers the kernel stores into.
    writes: BTreeSet<BufId>,
}

impl<'a> Kl<'a> {
    fn new(f: &'a LoweredFunc, vars: &'a mut texpr_dsl::expr::VarTable, first_extra: u32) -> Kl<'a> {
        Kl {
            writes: BTreeSet::new(),
            extra: vec![],
            first_extra,
            f,
            vars,
            hw: BTreeMap::new(),
            mode: Mode::Strided,
            auto: None,
            coop: HashSet::new(),
            shared: vec![],
            shared_bytes: 0,
            inner: BTreeSet::new(),
            scratch: vec![],
            grid: Default::default(),
            block: Default::default(),
        }
    }

    fn run(mut self, s: &Stmt, name: String) -> (GpuKernel, Vec<Buffer>) {
        // 1. Which loops map to the grid; how thread loops map.
        let mut mapped = vec![];
        self.scan(s, &Cx::root(), &mut mapped);
        if mapped.is_empty()
            && let Stmt::For(l) = s
            && is_spatial(l)
        {
            self.auto = Some(s as *const Stmt);
        }
        self.mode = self.choose_mode(&mapped);
        s.visit(&mut |x| {
            if let Stmt::Alloc(b, _) = x {
                self.inner.insert(*b);
            }
        });
        // 2. Which shared buffers are cooperative.
        self.decide(s, &Cx::root());
        self.writes = stored(s);
        // 3. The kernel.
        let body = self.stmt(s, &Cx::root());
        // Prefetch registers live for the whole kernel, declared once.
        let regs: Vec<KStmt> = (0..self.extra.len())
            .map(|i| KStmt::Private {
                buf: BufId(self.first_extra + i as u32),
                len: self.extra[i].shape[0].as_int().unwrap_or(1),
            })
            .collect();
        let body = if regs.is_empty() { body } else { KStmt::seq(regs.into_iter().chain([body]).collect()) };
        let mode = self.mode;
        let grid: [Launch; 3] = std::array::from_fn(|a| Launch::Fit(std::mem::take(&mut self.grid[a])));
        let mut block: [Launch; 3] = std::array::from_fn(|a| match mode {
            Mode::Simple(d) => Launch::Fixed(d[a]),
            Mode::Strided => Launch::Fit(std::mem::take(&mut self.block[a])),
        });
        if self.auto.is_some() {
            block[0] = Launch::Fixed(AUTO_BLOCK);
        }
        let hw = self.hw.iter().map(|(h, v)| (v.id, *h)).collect();
        let args = self.args(&body);
        (GpuKernel { name, body, shared: self.shared, scratch: self.scratch, grid, block, hw, args }, self.extra)
    }

    fn args(&self, body: &KStmt) -> Vec<KArg> {
        let mut bufs = BTreeSet::new();
        let mut dims = BTreeSet::new();
        let mut params = BTreeSet::new();
        let local: BTreeSet<BufId> = {
            let mut l: BTreeSet<BufId> = self.shared.iter().copied().collect();
            body.visit(&mut |s| match s {
                KStmt::Private { buf, .. } | KStmt::Scratch { buf } => {
                    l.insert(*buf);
                }
                _ => {}
            });
            l
        };
        let mut see = |e: &Expr| {
            e.visit(&mut |x| match x {
                Expr::Load(l) if !local.contains(&l.buf) => {
                    bufs.insert(l.buf);
                }
                Expr::Dim(d) => {
                    dims.insert(*d);
                }
                Expr::Param(p, _) => {
                    params.insert(*p);
                }
                _ => {}
            })
        };
        body.visit_exprs(&mut see);
        body.visit(&mut |s| {
            if let KStmt::Store { buf, .. } = s
                && !local.contains(buf)
            {
                bufs.insert(*buf);
            }
        });
        let rank = |b: &BufId| match self.f.buffer(*b).kind {
            BufKind::Input(n) => (0, n, b.0),
            BufKind::Output(n) => (1, n, b.0),
            BufKind::Temp => (2, 0, b.0),
        };
        let mut bufs: Vec<BufId> = bufs.into_iter().collect();
        bufs.sort_by_key(rank);
        let mut args: Vec<KArg> = bufs.into_iter().map(KArg::Buf).collect();
        args.extend(self.scratch.iter().map(|s| KArg::Scratch(s.buf)));
        args.extend(dims.into_iter().map(KArg::Dim));
        args.extend(params.into_iter().map(KArg::Param));
        args
    }

    // ---- shared helpers of the three passes --------------------------------

    fn map_of(&self, s: &Stmt, l: &For, cx: &Cx) -> Map {
        if self.auto == Some(s as *const Stmt) {
            return Map::Auto;
        }
        match l.kind {
            ForKind::Bound(t) if !cx.in_fill => {
                let m = if t.is_thread() { Map::Thread(t.dim()) } else { Map::Block(t.dim()) };
                match axis_slot(m) {
                    Some(slot) if !cx.active[slot] => m,
                    _ => Map::Serial,
                }
            }
            _ => Map::Serial,
        }
    }

    /// The context inside a loop.
    fn enter_for(&self, l: &For, m: Map, cx: &Cx) -> Cx {
        let mut c = cx.clone();
        c.chain.push(Ctx::Loop(l.var.id, l.min.clone(), l.extent.clone()));
        let range_varies = cx.is_varying(&l.min) || cx.is_varying(&l.extent);
        match m {
            Map::Serial | Map::Block(_) => {
                if range_varies {
                    c.varying.insert(l.var.id);
                    c.uniform = false;
                }
            }
            Map::Thread(_) | Map::Auto => {
                c.varying.insert(l.var.id);
                let simple = matches!(self.mode, Mode::Simple(_)) && m != Map::Auto;
                if range_varies && !simple {
                    c.uniform = false;
                }
            }
        }
        if let Some(slot) = axis_slot(m) {
            c.active[slot] = true;
        }
        c
    }

    fn enter_let(&self, v: Var, e: &Expr, cx: &Cx) -> Cx {
        let mut c = cx.clone();
        c.chain.push(Ctx::Let(v.id, e.clone()));
        // Under a thread loop a let may be computed under a pushed-down
        // guard (`p ? value : 0`): count it as varying there.
        let in_threads = cx.active[3..].iter().any(|a| *a) || self.auto.is_some();
        if cx.is_varying(e) || in_threads || !cx.preds.is_empty() {
            c.varying.insert(v.id);
        }
        c
    }

    // ---- pass 1: mapped loops ---------------------------------------------

    fn scan(&self, s: &Stmt, cx: &Cx, out: &mut Vec<(Map, Expr)>) {
        match s {
            Stmt::For(l) => {
                let m = self.map_of(s, l, cx);
                if m != Map::Serial {
                    out.push((m, l.extent.clone()));
                }
                let c = self.enter_for(l, m, cx);
                self.scan(&l.body, &c, out);
            }
            Stmt::Seq(v) => v.iter().for_each(|x| self.scan(x, cx, out)),
            Stmt::Let(b) => self.scan(&b.2, cx, out),
            Stmt::If(i) => {
                self.scan(&i.then, cx, out);
                if let Some(e) = &i.els {
                    self.scan(e, cx, out);
                }
            }
            Stmt::Alloc(..) => {
                let ch = chain_of(s);
                for item in &ch.items {
                    let c = if fill_of(item, &ch.allocs).is_some() { cx.fill() } else { cx.clone() };
                    self.scan(item, &c, out);
                }
            }
            Stmt::Store(_) | Stmt::Nop => {}
        }
    }

    fn choose_mode(&self, mapped: &[(Map, Expr)]) -> Mode {
        let mut dims = [1i64; 3];
        for (m, ext) in mapped {
            if let Map::Thread(a) = m {
                match ext.as_int() {
                    Some(n) => dims[*a] = dims[*a].max(n),
                    None => return Mode::Strided,
                }
            }
        }
        let total = dims.iter().try_fold(1i64, |acc, d| acc.checked_mul(*d));
        if dims[0] <= MAX_BLOCK && dims[1] <= MAX_BLOCK && dims[2] <= 64 && total.is_some_and(|t| t <= MAX_BLOCK) {
            Mode::Simple(dims)
        } else {
            Mode::Strided
        }
    }

    // ---- pass 2: cooperative buffers --------------------------------------

    fn decide(&mut self, s: &Stmt, cx: &Cx) {
        match s {
            Stmt::For(l) => {
                let m = self.map_of(s, l, cx);
                let c = self.enter_for(l, m, cx);
                self.decide(&l.body, &c);
            }
            Stmt::Seq(v) => v.iter().for_each(|x| self.decide(x, cx)),
            Stmt::Let(b) => {
                let c = self.enter_let(b.0, &b.1, cx);
                self.decide(&b.2, &c);
            }
            Stmt::If(i) => {
                self.decide(&i.then, cx);
                if let Some(e) = &i.els {
                    self.decide(e, cx);
                }
            }
            Stmt::Alloc(..) => {
                let ch = chain_of(s);
                for (node, b) in &ch.allocs {
                    if self.can_cooperate(*b, &ch, cx) {
                        let bytes = self.shared_size(*b);
                        if !self.shared.contains(b) {
                            self.shared.push(*b);
                            self.shared_bytes += bytes;
                        }
                        self.coop.insert(*node as *const Stmt);
                    }
                }
                // The fill of a private buffer runs whole in each thread: a
                // shared buffer inside it (the input tiles of a register
                // tile's reduction) can still be filled by the block when
                // the loops around it are uniform. A cooperative fill is
                // spread over the threads: nothing inside it waits.
                let coop: Vec<BufId> = ch
                    .allocs
                    .iter()
                    .filter(|(n, _)| self.coop.contains(&(*n as *const Stmt)))
                    .map(|(_, b)| *b)
                    .collect();
                for item in &ch.items {
                    match fill_of(item, &ch.allocs) {
                        None => self.decide(item, cx),
                        Some(b) if !coop.contains(&b) => self.decide(item, &cx.fill()),
                        Some(_) => {}
                    }
                }
            }
            Stmt::Store(_) | Stmt::Nop => {}
        }
    }

    fn shared_size(&self, b: BufId) -> i64 {
        let buf = self.f.buffer(b);
        // f16/bf16 tiles may be held as f32 (OpenCL without cl_khr_fp16).
        let bytes = (buf.dtype.bytes() as i64).max(if matches!(buf.dtype, DType::F16 | DType::BF16) { 4 } else { 1 });
        buf.const_len().unwrap_or(i64::MAX / 8).max(1).saturating_mul(bytes)
    }

    fn can_cooperate(&self, b: BufId, ch: &Chain<'_>, cx: &Cx) -> bool {
        let buf = self.f.buffer(b);
        if buf.scope != Scope::Shared || !cx.uniform {
            return false;
        }
        let Some(n) = buf.const_len() else { return false };
        if n <= 0 {
            return false;
        }
        let extra = if self.shared.contains(&b) { 0 } else { self.shared_size(b) };
        if self.shared_bytes + extra > SHARED_BUDGET {
            return false;
        }
        let chain_bufs: BTreeSet<BufId> = ch.allocs.iter().map(|(_, b)| *b).collect();
        let fills: Vec<&&Stmt> = ch.items.iter().filter(|i| fill_of(i, &ch.allocs) == Some(b)).collect();
        fills.iter().all(|item| {
            let st = stored(item);
            // Only this buffer (and buffers allocated inside the fill).
            let others_ok = st.iter().all(|x| {
                *x == b || !chain_bufs.contains(x) && self.f.buffer(*x).kind == BufKind::Temp && allocated_in(item, *x)
            });
            // A fill that reads a thread's own temporary (a private tile
            // the thread computed) depends on the thread even when it
            // mentions no thread variable.
            let reads_private = loaded(item)
                .iter()
                .any(|x| *x != b && self.inner.contains(x) && !self.shared.contains(x) && !allocated_in(item, *x));
            others_ok && !reads_private && !mentions(item, &cx.varying)
        })
    }

    // ---- pass 3: the kernel -----------------------------------------------

    fn hw(&mut self, h: Hw) -> Expr {
        if let Some(v) = self.hw.get(&h) {
            return Expr::Var(*v);
        }
        let v = self.vars.add_index(h.var_name());
        self.hw.insert(h, v);
        Expr::Var(v)
    }

    fn fresh(&mut self, name: &str) -> Var {
        self.vars.add_index(name)
    }

    fn has_sync(&self, s: &Stmt) -> bool {
        if self.coop.is_empty() {
            return false;
        }
        let mut found = false;
        s.visit(&mut |x| {
            if !found && matches!(x, Stmt::Alloc(..)) && self.coop.contains(&(x as *const Stmt)) {
                found = true;
            }
        });
        found
    }

    fn stmt(&mut self, s: &Stmt, cx: &Cx) -> KStmt {
        if self.has_sync(s) {
            self.sync(s, cx)
        } else {
            let inner = self.plain(s, &cx.without_preds());
            guard(&cx.preds, inner)
        }
    }

    /// A statement with no barrier inside.
    fn plain(&mut self, s: &Stmt, cx: &Cx) -> KStmt {
        match s {
            Stmt::Nop => KStmt::Nop,
            Stmt::Seq(v) => KStmt::seq(v.iter().map(|x| self.plain(x, cx)).collect()),
            Stmt::Store(st) => KStmt::Store { buf: st.buf, idx: st.idx[0].clone(), value: st.value.clone() },
            Stmt::Let(b) => {
                let c = self.enter_let(b.0, &b.1, cx);
                let body = self.plain(&b.2, &c);
                KStmt::seq(vec![KStmt::Let { var: b.0, value: b.1.clone() }, body])
            }
            Stmt::If(i) => KStmt::If {
                cond: i.cond.clone(),
                then: Box::new(self.plain(&i.then, cx)),
                els: i.els.as_ref().map(|e| Box::new(self.plain(e, cx))),
            },
            Stmt::For(l) => self.for_(s, l, cx),
            Stmt::Alloc(..) => self.alloc(s, cx),
        }
    }

    /// A statement with a barrier inside: thread-dependent guards are
    /// pushed down to the statements without one.
    fn sync(&mut self, s: &Stmt, cx: &Cx) -> KStmt {
        match s {
            Stmt::Seq(v) => KStmt::seq(v.iter().map(|x| self.stmt(x, cx)).collect()),
            Stmt::Let(b) => {
                let value = match and_all(&cx.preds) {
                    Some(p) if b.1.has_load() => Expr::if_(p, b.1.clone(), Expr::Const(Scalar::zero(b.0.dtype))),
                    _ => b.1.clone(),
                };
                let c = self.enter_let(b.0, &b.1, cx);
                let body = self.stmt(&b.2, &c);
                KStmt::seq(vec![KStmt::Let { var: b.0, value }, body])
            }
            Stmt::If(i) if cx.is_varying(&i.cond) => {
                let then = self.stmt(&i.then, &cx.with_pred(i.cond.clone()));
                let els = match &i.els {
                    Some(e) => self.stmt(e, &cx.with_pred(Expr::Unary(UnOp::Not, i.cond.clone().into()))),
                    None => KStmt::Nop,
                };
                KStmt::seq(vec![then, els])
            }
            Stmt::If(i) => KStmt::If {
                cond: i.cond.clone(),
                then: Box::new(self.stmt(&i.then, cx)),
                els: i.els.as_ref().map(|e| Box::new(self.stmt(e, cx))),
            },
            Stmt::For(l) => self.for_(s, l, cx),
            Stmt::Alloc(..) => self.alloc(s, cx),
            Stmt::Store(_) | Stmt::Nop => {
                let inner = self.plain(s, &cx.without_preds());
                guard(&cx.preds, inner)
            }
        }
    }

    fn record(&mut self, m: Map, cx: &Cx, extent: &Expr) {
        let b = Bound { chain: cx.chain.clone(), value: extent.clone(), per: 1 };
        match m {
            Map::Block(a) => self.grid[a].push(b),
            Map::Thread(a) => self.block[a].push(b),
            Map::Auto => self.grid[0].push(Bound { per: AUTO_BLOCK, ..b }),
            Map::Serial => {}
        }
    }

    fn for_(&mut self, s: &Stmt, l: &For, cx: &Cx) -> KStmt {
        let m = self.map_of(s, l, cx);
        self.record(m, cx, &l.extent);
        let inner = self.enter_for(l, m, cx);
        let sync = self.has_sync(&l.body);
        let min = l.min.clone();
        let end = simplify(&(l.min.clone() + l.extent.clone()));
        let at = |e: Expr| simplify(&(min.clone() + e));
        match m {
            Map::Serial => {
                if sync && let Some(k) = self.pipelined(l, &inner) {
                    return k;
                }
                let body = self.stmt(&l.body, &inner);
                KStmt::For {
                    var: l.var,
                    start: min.clone(),
                    end,
                    step: None,
                    unroll: l.kind == ForKind::Unrolled,
                    body: Box::new(body),
                }
            }
            Map::Block(a) => {
                let (bx, gx) = (self.hw(Hw::Block(a)), self.hw(Hw::GridDim(a)));
                let body = self.stmt(&l.body, &inner);
                KStmt::For { var: l.var, start: at(bx), end, step: Some(gx), unroll: false, body: Box::new(body) }
            }
            Map::Thread(a) => match self.mode {
                Mode::Simple(d) => {
                    let tx = self.hw(Hw::Thread(a));
                    let bind = KStmt::Let { var: l.var, value: at(tx.clone()) };
                    let cond = if l.extent.as_int() == Some(d[a]) {
                        None
                    } else {
                        Some(Expr::cmp(CmpOp::Lt, tx, l.extent.clone()))
                    };
                    if sync {
                        let c = match cond {
                            Some(p) => inner.with_pred(p),
                            None => inner,
                        };
                        let body = self.stmt(&l.body, &c);
                        KStmt::seq(vec![bind, body])
                    } else {
                        let body = self.stmt(&l.body, &inner);
                        let body = match cond {
                            Some(p) => guard(&[p], body),
                            None => body,
                        };
                        KStmt::seq(vec![bind, body])
                    }
                }
                Mode::Strided => {
                    let (tx, nx) = (self.hw(Hw::Thread(a)), self.hw(Hw::BlockDim(a)));
                    self.strided(l, inner, sync, Expr::int(0), tx, nx)
                }
            },
            Map::Auto => {
                let tx = self.hw(Hw::Thread(0));
                let first = Expr::binary(BinOp::Mul, self.hw(Hw::Block(0)), self.hw(Hw::BlockDim(0)));
                let step = self.hw(Hw::GlobalSizeX);
                if sync {
                    self.strided(l, inner, true, first, tx, step)
                } else {
                    let gx = self.hw(Hw::GlobalX);
                    let body = self.stmt(&l.body, &inner);
                    KStmt::For { var: l.var, start: at(gx), end, step: Some(step), unroll: false, body: Box::new(body) }
                }
            }
        }
    }

    /// A loop over `lane + first, lane + first + step, ...`: with a barrier
    /// inside, every thread runs the same number of iterations and the work
    /// is predicated.
    fn strided(&mut self, l: &For, inner: Cx, sync: bool, first: Expr, lane: Expr, step: Expr) -> KStmt {
        if !sync {
            let body = self.stmt(&l.body, &inner);
            let start = simplify(&(l.min.clone() + first + lane));
            let end = simplify(&(l.min.clone() + l.extent.clone()));
            return KStmt::For { var: l.var, start, end, step: Some(step), unroll: false, body: Box::new(body) };
        }
        let o = self.fresh(&format!("{}_base", self.vars.name(l.var.id)));
        let off = Expr::binary(BinOp::Add, Expr::Var(o), lane);
        let bind = KStmt::Let { var: l.var, value: simplify(&(l.min.clone() + off.clone())) };
        let mut c = inner.with_pred(Expr::cmp(CmpOp::Lt, off, l.extent.clone()));
        c.varying.insert(l.var.id);
        let body = self.stmt(&l.body, &c);
        KStmt::For {
            var: o,
            start: first,
            end: l.extent.clone(),
            step: Some(step),
            unroll: false,
            body: Box::new(KStmt::seq(vec![bind, body])),
        }
    }

    fn alloc(&mut self, s: &Stmt, cx: &Cx) -> KStmt {
        let ch = chain_of(s);
        let mut out = vec![];
        let mut coop_bufs = BTreeSet::new();
        for (node, b) in &ch.allocs {
            if self.coop.contains(&(*node as *const Stmt)) {
                coop_bufs.insert(*b);
            } else {
                out.push(self.private(*b, cx));
            }
        }
        let mut i = 0;
        while i < ch.items.len() {
            let item = ch.items[i];
            match fill_of(item, &ch.allocs) {
                Some(b) if coop_bufs.contains(&b) => {
                    // A group of cooperative fills between two barriers; a
                    // fill that touches what an earlier one wrote waits too.
                    out.push(KStmt::Barrier);
                    let mut written = BTreeSet::new();
                    while i < ch.items.len() {
                        let item = ch.items[i];
                        let Some(b) = fill_of(item, &ch.allocs).filter(|b| coop_bufs.contains(b)) else { break };
                        let touched: BTreeSet<BufId> = stored(item).union(&loaded(item)).copied().collect();
                        if touched.iter().any(|x| written.contains(x)) {
                            out.push(KStmt::Barrier);
                            written.clear();
                        }
                        out.push(self.coop_fill(item, b, &cx.without_preds().fill()));
                        written.insert(b);
                        i += 1;
                    }
                    out.push(KStmt::Barrier);
                    continue;
                }
                Some(_) => out.push(self.stmt(item, &cx.fill())),
                None => out.push(self.stmt(item, cx)),
            }
            i += 1;
        }
        KStmt::seq(out)
    }

    fn private(&mut self, b: BufId, cx: &Cx) -> KStmt {
        let buf = self.f.buffer(b);
        match buf.const_len() {
            Some(n) if n <= PRIVATE_MAX => KStmt::Private { buf: b, len: n.max(1) },
            _ => {
                let len = buf.shape.iter().fold(Expr::int(1), |acc, d| simplify(&(acc * nonneg(d))));
                let bound = Bound { chain: cx.chain.clone(), value: len, per: 1 };
                self.hw(Hw::GlobalThread);
                match self.scratch.iter_mut().find(|s| s.buf == b) {
                    // The same buffer allocated again (a duplicated tail).
                    Some(s) => s.len.push(bound),
                    None => self.scratch.push(ScratchBuf { buf: b, len: vec![bound] }),
                }
                KStmt::Scratch { buf: b }
            }
        }
    }

    /// A fill distributed over the threads of the block: the flat thread id
    /// strides over the product of its outer spatial loops.
    /// A serial loop whose body fills cooperative tiles and then computes
    /// on them (`for ko { fill a_s; fill b_s; compute }`), software
    /// pipelined through registers: each thread loads its share of the next
    /// iteration's tiles into a private array before computing on the
    /// current ones, and stores it into the tiles after the barrier:
    ///
    /// ```text
    /// if (n > 0) load(ko = first)
    /// for ko { barrier; store; barrier; if (ko + 1 < end) load(ko + 1); compute }
    /// ```
    ///
    /// The global loads of a step then overlap the compute of the one
    /// before. Only in simple mode (a constant block size, so each thread's
    /// share is a constant number of elements), when every allocation of
    /// the body is a cooperative tile filled by a single guarded store
    /// from buffers the loop does not write, and nothing else in the body
    /// waits. `None`: emit the loop as it is.
    fn pipelined(&mut self, l: &For, cx: &Cx) -> Option<KStmt> {
        let Mode::Simple(d) = self.mode else { return None };
        let block = d.iter().product::<i64>().max(1);
        let ch = chain_of(&l.body);
        if ch.allocs.is_empty() || !ch.allocs.iter().all(|(n, _)| self.coop.contains(&(*n as *const Stmt))) {
            return None;
        }
        let nfills = ch.items.iter().take_while(|i| fill_of(i, &ch.allocs).is_some()).count();
        let (fills, rest) = ch.items.split_at(nfills);
        if fills.is_empty() || rest.iter().any(|i| fill_of(i, &ch.allocs).is_some() || self.has_sync(i)) {
            return None;
        }
        let mut parts = vec![];
        for item in fills {
            let b = fill_of(item, &ch.allocs)?;
            let p = fill_parts(item, b)?;
            // Loads only from what the kernel never writes: the values of
            // a later step are there before any thread's barrier.
            let mut ok = true;
            p.store.value.visit(&mut |x| {
                if let Expr::Load(ld) = x {
                    ok &= !self.writes.contains(&ld.buf) && !self.inner.contains(&ld.buf);
                }
            });
            // A few registers per thread. The copies are unrolled, so the
            // registers are scalars: PoCL computed a wrong row (seed 1487
            // of the GPU differential test) when the array was indexed by
            // a loop variable across the barriers.
            let total = p.caps.iter().product::<i64>();
            if !ok || (total + block - 1) / block > 16 {
                return None;
            }
            parts.push((b, p, total));
        }
        let tid = self.hw(Hw::FlatThread);
        let end = simplify(&(l.min.clone() + l.extent.clone()));
        let next = simplify(&(Expr::Var(l.var) + 1));
        let (mut load_first, mut load_next, mut store) = (vec![], vec![], vec![]);
        for (b, p, total) in &parts {
            let count = (total + block - 1) / block;
            let buf = self.f.buffer(*b);
            let regs = BufId(self.first_extra + self.extra.len() as u32);
            self.extra.push(Buffer {
                name: format!("{}_next", buf.name),
                dtype: buf.dtype,
                shape: vec![Expr::int(count)],
                kind: BufKind::Temp,
                scope: Scope::Local,
            });
            let dtype = buf.dtype;
            let reg = |r: Var| Expr::load(regs, [Expr::Var(r)], dtype);
            for (which, kv) in [(0, l.min.clone()), (1, next.clone()), (2, Expr::Var(l.var))] {
                let r = self.fresh("r");
                let flat = self.fresh("rf");
                let conds = p.guards_at(l.var.id, &kv);
                let work = if which == 2 {
                    KStmt::Store { buf: *b, idx: p.store.idx[0].clone(), value: reg(r) }
                } else {
                    KStmt::Store { buf: regs, idx: Expr::Var(r), value: simplify(&p.store.value.subst1(l.var.id, &kv)) }
                };
                let inside = vec![guard(&conds, work)];
                // The last round of a tile that does not divide by the block
                // has idle threads.
                let idle = (total % block != 0).then(|| Expr::cmp(CmpOp::Lt, Expr::Var(flat), Expr::int(*total)));
                let one = KStmt::seq(vec![
                    KStmt::Let { var: flat, value: simplify(&(tid.clone() + Expr::Var(r) * block)) },
                    guard(idle.as_slice(), KStmt::seq(p.bind(flat, inside))),
                ]);
                let each = KStmt::For {
                    var: r,
                    start: Expr::int(0),
                    end: Expr::int(count),
                    step: None,
                    unroll: true,
                    body: Box::new(one),
                };
                [&mut load_first, &mut load_next, &mut store][which].push(each);
            }
        }
        let mut body = vec![KStmt::Barrier];
        body.extend(store);
        body.push(KStmt::Barrier);
        body.push(guard(&[Expr::cmp(CmpOp::Lt, next, end.clone())], KStmt::seq(load_next)));
        for item in rest {
            body.push(self.stmt(item, cx));
        }
        let first = guard(&[Expr::cmp(CmpOp::Lt, l.min.clone(), end.clone())], KStmt::seq(load_first));
        let each = KStmt::For {
            var: l.var,
            start: l.min.clone(),
            end,
            step: None,
            unroll: false,
            body: Box::new(KStmt::seq(body)),
        };
        Some(KStmt::seq(vec![first, each]))
    }

    fn coop_fill(&mut self, item: &Stmt, b: BufId, cx: &Cx) -> KStmt {
        if let Stmt::If(i) = item {
            return KStmt::If {
                cond: i.cond.clone(),
                then: Box::new(self.coop_fill(&i.then, b, cx)),
                els: i.els.as_ref().map(|e| Box::new(self.coop_fill(e, b, cx))),
            };
        }
        let mut loops: Vec<&For> = vec![];
        let mut cur = item;
        while let Stmt::For(l) = cur {
            let outer: HashSet<VarId> = loops.iter().map(|x| x.var.id).collect();
            let uses_outer = |e: &Expr| e.any(&mut |x| matches!(x, Expr::Var(v) if outer.contains(&v.id)));
            let depends = uses_outer(&l.min) || uses_outer(&l.extent);
            if depends || !indexes_every_store(&l.body, b, l.var.id) {
                break;
            }
            loops.push(l);
            cur = &l.body;
        }
        let tid = self.hw(Hw::FlatThread);
        if loops.is_empty() {
            let body = self.plain(item, cx);
            return guard(&[Expr::cmp(CmpOp::Eq, tid, Expr::int(0))], body);
        }
        let nthreads = self.hw(Hw::BlockSize);
        let name = loops.iter().map(|l| self.vars.name(l.var.id).to_string()).collect::<Vec<_>>().join("_");
        let f = self.fresh(&format!("{name}_f"));
        let exts: Vec<Expr> = loops.iter().map(|l| l.extent.clone()).collect();
        let mut c = cx.clone();
        for l in &loops {
            c.chain.push(Ctx::Loop(l.var.id, l.min.clone(), l.extent.clone()));
        }
        // With constant bounds on the extents (a tile's size), the flat loop
        // has a constant trip count and constant strides; the tile's edge
        // is a guard.
        let caps: Option<Vec<i64>> = exts.iter().map(const_upper).collect();
        let caps = caps.filter(|cs| cs.iter().try_fold(1i64, |a, c| a.checked_mul(*c)).is_some_and(|t| t <= 1 << 24));
        let (total, strides, moduli): (Expr, Vec<Expr>, Vec<Expr>) = match &caps {
            Some(cs) => {
                let total = Expr::int(cs.iter().product());
                let strides = (0..cs.len()).map(|k| Expr::int(cs[k + 1..].iter().product())).collect();
                (total, strides, cs.iter().map(|c| Expr::int(*c)).collect())
            }
            None => {
                // Extents are at least 1 inside the loop: max(e, 1) tells
                // the writer the division is by a positive number.
                let pos: Vec<Expr> = exts.iter().map(|e| simplify(&Expr::max(e.clone(), Expr::int(1)))).collect();
                let total = exts.iter().fold(Expr::int(1), |acc, e| simplify(&(acc * nonneg(e))));
                let strides = (0..pos.len())
                    .map(|k| pos[k + 1..].iter().fold(Expr::int(1), |a, e| simplify(&(a * e.clone()))))
                    .collect();
                (total, strides, pos)
            }
        };
        let mut binds = vec![];
        let mut edge = vec![];
        for (k, l) in loops.iter().enumerate() {
            let mut v = Expr::Var(f);
            if strides[k].as_int() != Some(1) {
                v = Expr::binary(BinOp::Div, v, strides[k].clone());
            }
            if k > 0 {
                v = Expr::binary(BinOp::Rem, v, moduli[k].clone());
            }
            binds.push(KStmt::Let { var: l.var, value: simplify(&(l.min.clone() + v)) });
            if let Some(cs) = &caps
                && exts[k].as_int() != Some(cs[k])
            {
                edge.push(Expr::cmp(CmpOp::Lt, Expr::Var(l.var), simplify(&(l.min.clone() + exts[k].clone()))));
            }
        }
        let body = self.plain(cur, &c);
        binds.push(guard(&edge, body));
        KStmt::For {
            var: f,
            start: tid,
            end: total,
            step: Some(nthreads),
            unroll: false,
            body: Box::new(KStmt::seq(binds)),
        }
    }
}

/// A cooperative fill reduced to its parts: the loops over the tile (with
/// constant bounds on their extents), the conditions around its one store,
/// and the store.
struct FillParts {
    loops: Vec<(Var, Expr, Expr)>,
    caps: Vec<i64>,
    conds: Vec<Expr>,
    store: texpr_dsl::stmt::Store,
}

/// The parts of `item`, a fill of `b` by one (guarded) store; `None` for
/// any other shape.
fn fill_parts(item: &Stmt, b: BufId) -> Option<FillParts> {
    let mut loops = vec![];
    let mut conds = vec![];
    let mut cur = item;
    loop {
        match cur {
            Stmt::For(l) if conds.is_empty() => {
                loops.push((l.var, l.min.clone(), l.extent.clone()));
                cur = &l.body;
            }
            Stmt::If(i) if i.els.is_none() => {
                conds.push(i.cond.clone());
                cur = &i.then;
            }
            Stmt::Store(st) if st.buf == b && !loops.is_empty() => {
                let caps = loops.iter().map(|(_, _, e)| const_upper(e)).collect::<Option<Vec<i64>>>()?;
                return Some(FillParts { loops, caps, conds, store: (**st).clone() });
            }
            _ => return None,
        }
    }
}

impl FillParts {
    /// The tile's loop variables from the flat element index `flat`
    /// (row-major over the caps), around `inside`.
    fn bind(&self, flat: Var, inside: Vec<KStmt>) -> Vec<KStmt> {
        let mut out = vec![];
        for (k, (v, min, _)) in self.loops.iter().enumerate() {
            let stride: i64 = self.caps[k + 1..].iter().product();
            let mut e = Expr::Var(flat);
            if stride != 1 {
                e = Expr::binary(BinOp::Div, e, Expr::int(stride));
            }
            if k > 0 {
                e = Expr::binary(BinOp::Rem, e, Expr::int(self.caps[k]));
            }
            out.push(KStmt::Let { var: *v, value: simplify(&(min.clone() + e)) });
        }
        out.extend(inside);
        out
    }

    /// At step `kv` of the loop `ko`: the element's guards (the tile's
    /// edge and the store's conditions).
    fn guards_at(&self, ko: VarId, kv: &Expr) -> Vec<Expr> {
        let mut conds = vec![];
        for (k, (v, min, ext)) in self.loops.iter().enumerate() {
            if ext.as_int() != Some(self.caps[k]) {
                conds.push(Expr::cmp(CmpOp::Lt, Expr::Var(*v), simplify(&(min.clone() + ext.clone()).subst1(ko, kv))));
            }
        }
        conds.extend(self.conds.iter().map(|c| simplify(&c.subst1(ko, kv))));
        conds
    }
}

/// A constant upper bound of an extent (`min(M - bi * 16, 16)` → 16).
fn const_upper(e: &Expr) -> Option<i64> {
    if let Some(n) = e.as_int() {
        return Some(n.max(0));
    }
    let forms = texpr_dsl::prover::min_forms(e)?;
    forms.iter().filter_map(|f| f.as_const()).min().map(|n| n.max(0))
}

/// `max(e, 0)` unless `e` is a non-negative constant.
fn nonneg(e: &Expr) -> Expr {
    match e.as_int() {
        Some(n) => Expr::int(n.max(0)),
        None => Expr::max(e.clone(), Expr::int(0)),
    }
}

/// `true` if `s` stores into `b` and every such store's index uses `v`.
fn indexes_every_store(s: &Stmt, b: BufId, v: VarId) -> bool {
    let mut any = false;
    let mut all = true;
    s.visit(&mut |x| {
        if let Stmt::Store(st) = x
            && st.buf == b
        {
            any = true;
            all &= st.idx.iter().any(|i| i.uses_var(v));
        }
    });
    any && all
}

fn allocated_in(s: &Stmt, b: BufId) -> bool {
    let mut found = false;
    s.visit(&mut |x| {
        if let Stmt::Alloc(a, _) = x
            && *a == b
        {
            found = true;
        }
    });
    found
}

/// `true` if the iterations of `l` write disjoint elements of every
/// non-attached buffer: each store outside attached temporaries indexes by
/// the loop variable (the loop is a spatial loop of its stage).
fn is_spatial(l: &For) -> bool {
    let mut local = BTreeSet::new();
    l.body.visit(&mut |x| {
        if let Stmt::Alloc(b, _) = x {
            local.insert(*b);
        }
    });
    let mut any = false;
    let mut all = true;
    l.body.visit(&mut |x| {
        if let Stmt::Store(st) = x
            && !local.contains(&st.buf)
        {
            any = true;
            all &= st.idx.iter().any(|i| i.uses_var(l.var.id));
        }
    });
    any && all
}

#[cfg(test)]
mod tests {
    use super::*;
    use texpr_dsl::testing::spec;
    use texpr_dsl::{Program, Target};

    /// A malformed nest (a bug upstream) is an internal error, not a panic.
    #[test]
    fn malformed_nests_are_internal_errors() {
        let l = Program::new(spec::softmax()).lower(Target::OpenCl).unwrap();
        assert!(lower(&l.flat).is_ok());
        let mut bad = l.flat.clone();
        bad.buffers.truncate(1);
        let e = lower(&bad).unwrap_err();
        assert!(matches!(e, Error::Internal(_)), "{e}");
        assert!(e.to_string().contains("malformed loop nest"), "{e}");
        let e = lower(&l.nest).unwrap_err();
        assert!(e.to_string().contains("flattened"), "{e}");
    }
}
