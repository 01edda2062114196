//! The kernel IR's verifier: what the C writer and the runtimes rely on,
//! checked on every [`GpuFunc`] that GPU lowering returns (always in debug
//! builds and the tests, with `TEXPR_VERIFY=1` in release builds). A
//! failure is a texpr bug, an [`Error::Internal`].
//!
//! Checks, per kernel:
//! - every variable is a hardware index of the kernel or bound by an
//!   enclosing loop or an earlier `let` of an enclosing block (a `let` of a
//!   variable in scope shadows it to the end of the block: the C writer
//!   gives every declaration its own name);
//! - loads and stores name existing buffers with one `i64` index; their
//!   types agree with the buffer's; no store goes into an input;
//! - a buffer the kernel touches is a kernel argument (inputs, outputs,
//!   root temporaries), declared per block (`shared`), or a per-thread
//!   array (`Private`, `Scratch`) declared earlier in an enclosing block;
//!   every dim, parameter and global buffer it reads is an argument;
//! - operand, condition and loop-bound types agree;
//! - a barrier is reached by every thread of a block: no condition or loop
//!   bound around it depends on the thread's index;
//! - launch sizes: fixed block sizes are positive and at most
//!   [`MAX_BLOCK`] threads in all, shared memory fits [`SHARED_BUDGET`],
//!   private arrays have `1..=PRIVATE_MAX` elements.

use std::collections::{BTreeSet, HashMap};

use texpr_dsl::expr::BufId;
use texpr_dsl::{BufKind, DType, Error, Expr, InternalError, Result, VarId};

use super::{GpuFunc, GpuKernel, Hw, KArg, KStmt, Launch, MAX_BLOCK, PRIVATE_MAX, SHARED_BUDGET};

/// Verifies every kernel of `g`.
pub fn verify(g: &GpuFunc) -> Result<()> {
    for k in &g.kernels {
        Verifier::new(g, k).kernel()?;
    }
    Ok(())
}

struct Verifier<'a> {
    g: &'a GpuFunc,
    k: &'a GpuKernel,
    /// Variables in scope: per variable, whether each of its bindings (the
    /// last one visible) may differ between the threads of a block.
    vars: HashMap<VarId, Vec<bool>>,
    /// Per open block, the variables it declared.
    blocks: Vec<Vec<VarId>>,
    /// Per-thread buffers in scope, per open block.
    locals: Vec<Vec<BufId>>,
    /// Depth of enclosing thread-dependent conditions and loops.
    divergent: usize,
    args: BTreeSet<KArg>,
}

impl<'a> Verifier<'a> {
    fn new(g: &'a GpuFunc, k: &'a GpuKernel) -> Self {
        let thread = |h: &Hw| matches!(h, Hw::Thread(_) | Hw::FlatThread | Hw::GlobalThread | Hw::GlobalX);
        Verifier {
            g,
            k,
            vars: k.hw.iter().map(|(v, h)| (*v, vec![thread(h)])).collect(),
            blocks: vec![],
            locals: vec![],
            divergent: 0,
            args: k.args.iter().copied().collect(),
        }
    }

    fn fail(&self, msg: String) -> Error {
        Error::Internal(InternalError::new(
            "GPU kernel IR verification",
            format!("kernel `{}` of `{}`: {msg}", self.k.name, self.g.func.name),
        ))
    }

    fn kernel(&mut self) -> Result<()> {
        let fixed: Vec<i64> = self
            .k
            .block
            .iter()
            .filter_map(|l| match l {
                Launch::Fixed(n) => Some(*n),
                Launch::Fit(_) => None,
            })
            .collect();
        if fixed.iter().any(|n| *n < 1)
            || fixed.iter().try_fold(1i64, |a, n| a.checked_mul(*n)).is_none_or(|t| t > MAX_BLOCK)
        {
            return Err(self.fail(format!("block size {fixed:?} is not in 1..={MAX_BLOCK} threads")));
        }
        let mut shared = 0i64;
        for b in &self.k.shared {
            let buf = self.buffer(*b)?;
            let n: Option<i64> = buf.shape.iter().map(|d| d.as_int()).product();
            let Some(n) = n.and_then(|n| n.checked_mul(buf.dtype.bytes() as i64)) else {
                return Err(self.fail(format!("shared buffer `{}` has no constant size", buf.name)));
            };
            shared += n;
        }
        if shared > SHARED_BUDGET {
            return Err(self.fail(format!("{shared} bytes of shared memory (budget {SHARED_BUDGET})")));
        }
        for a in &self.k.args {
            match a {
                KArg::Buf(b) | KArg::Scratch(b) => {
                    self.buffer(*b)?;
                }
                KArg::Dim(d) if *d as usize >= self.g.func.dims.len() => {
                    return Err(self.fail(format!("argument dim {d}")));
                }
                KArg::Param(p) if *p as usize >= self.g.func.params.len() => {
                    return Err(self.fail(format!("argument parameter {p}")));
                }
                _ => {}
            }
        }
        for s in &self.k.scratch {
            if !self.args.contains(&KArg::Scratch(s.buf)) {
                return Err(self.fail(format!("scratch buffer {} is not an argument", s.buf.0)));
            }
        }
        self.block(&self.k.body)
    }

    fn buffer(&self, b: BufId) -> Result<&'a texpr_dsl::Buffer> {
        self.g.func.buffers.get(b.0 as usize).ok_or_else(|| self.fail(format!("unknown buffer {}", b.0)))
    }

    /// A buffer the kernel accesses is reachable there.
    fn reachable(&self, b: BufId) -> std::result::Result<(), String> {
        let buf = &self.g.func.buffers[b.0 as usize];
        let local = self.k.shared.contains(&b) || self.locals.iter().any(|l| l.contains(&b));
        if local || self.args.contains(&KArg::Buf(b)) {
            return Ok(());
        }
        Err(format!("`{}` ({:?}) is neither an argument nor declared in the kernel", buf.name, buf.kind))
    }

    fn expr(&self, e: &Expr) -> Result<()> {
        let mut err: Option<String> = None;
        e.visit(&mut |x| {
            if err.is_some() {
                return;
            }
            let r: std::result::Result<(), String> = match x {
                Expr::Var(v) if self.vars.get(&v.id).is_none_or(|b| b.is_empty()) => {
                    Err(format!("variable `{}` used out of scope", self.g.func.vars.name(v.id)))
                }
                Expr::Load(l) => match self.g.func.buffers.get(l.buf.0 as usize) {
                    None => Err(format!("load of unknown buffer {}", l.buf.0)),
                    Some(buf) if buf.dtype != l.dtype => Err(format!("load of `{}` as {}", buf.name, l.dtype)),
                    Some(buf) if l.idx.len() != 1 || l.idx[0].dtype() != DType::INDEX => {
                        Err(format!("load of `{}` without one i64 index", buf.name))
                    }
                    Some(_) => self.reachable(l.buf),
                },
                Expr::Dim(d) if !self.args.contains(&KArg::Dim(*d)) => Err(format!("dim {d} is not an argument")),
                Expr::Param(p, t) => match self.g.func.params.get(*p as usize) {
                    Some(q) if q.dtype == *t && self.args.contains(&KArg::Param(*p)) => Ok(()),
                    _ => Err(format!("parameter {p} is not an argument of type {t}")),
                },
                Expr::Binary(_, a, b) | Expr::Cmp(_, a, b) if a.dtype() != b.dtype() => {
                    Err(format!("operands of different types in `{x}`"))
                }
                Expr::And(a, b) | Expr::Or(a, b) if a.dtype() != DType::Bool || b.dtype() != DType::Bool => {
                    Err("non-bool operand of && or ||".into())
                }
                Expr::If(c, a, b) | Expr::Select(c, a, b) if c.dtype() != DType::Bool || a.dtype() != b.dtype() => {
                    Err("ill-typed if/select".into())
                }
                _ => Ok(()),
            };
            if let Err(m) = r {
                err = Some(m);
            }
        });
        err.map_or(Ok(()), |m| Err(self.fail(m)))
    }

    fn is_varying(&self, e: &Expr) -> bool {
        e.any(&mut |x| matches!(x, Expr::Var(v) if self.vars.get(&v.id).and_then(|b| b.last()) == Some(&true)))
    }

    fn declare(&mut self, v: VarId, varying: bool) {
        self.vars.entry(v).or_default().push(varying);
        if let Some(b) = self.blocks.last_mut() {
            b.push(v);
        }
    }

    fn open(&mut self) {
        self.blocks.push(vec![]);
        self.locals.push(vec![]);
    }

    fn close(&mut self) {
        for v in self.blocks.pop().unwrap_or_default() {
            if let Some(b) = self.vars.get_mut(&v) {
                b.pop();
            }
        }
        self.locals.pop();
    }

    /// `s` as a C block: what it declares goes out of scope at its end.
    fn block(&mut self, s: &KStmt) -> Result<()> {
        self.open();
        let r = self.stmt(s);
        self.close();
        r
    }

    fn stmt(&mut self, s: &KStmt) -> Result<()> {
        match s {
            KStmt::Nop => Ok(()),
            KStmt::Seq(v) => v.iter().try_for_each(|x| self.stmt(x)),
            KStmt::For { var, start, end, step, body, .. } => {
                for e in [Some(start), Some(end), step.as_ref()].into_iter().flatten() {
                    self.expr(e)?;
                    if e.dtype() != DType::INDEX {
                        return Err(self.fail("loop bounds must be i64".into()));
                    }
                }
                let varying = [Some(start), Some(end), step.as_ref()].into_iter().flatten().any(|e| self.is_varying(e));
                self.open();
                self.declare(var.id, varying);
                self.divergent += usize::from(varying);
                let r = self.block(body);
                self.divergent -= usize::from(varying);
                self.close();
                r
            }
            KStmt::Let { var, value } => {
                self.expr(value)?;
                if value.dtype() != var.dtype {
                    return Err(self.fail(format!("`{}` bound to a {}", self.g.func.vars.name(var.id), value.dtype())));
                }
                self.declare(var.id, self.is_varying(value));
                Ok(())
            }
            KStmt::If { cond, then, els } => {
                self.expr(cond)?;
                if cond.dtype() != DType::Bool {
                    return Err(self.fail("non-bool condition".into()));
                }
                let varying = self.is_varying(cond);
                self.divergent += usize::from(varying);
                let r = self.block(then).and_then(|_| els.as_ref().map_or(Ok(()), |e| self.block(e)));
                self.divergent -= usize::from(varying);
                r
            }
            KStmt::Store { buf, idx, value } => {
                let b = self.buffer(*buf)?;
                self.expr(idx)?;
                self.expr(value)?;
                if idx.dtype() != DType::INDEX {
                    return Err(self.fail(format!("store into `{}` with a non-i64 index", b.name)));
                }
                if value.dtype() != b.dtype {
                    return Err(self.fail(format!("store of a {} into `{}` of {}", value.dtype(), b.name, b.dtype)));
                }
                if matches!(b.kind, BufKind::Input(_)) {
                    return Err(self.fail(format!("store into input `{}`", b.name)));
                }
                self.reachable(*buf).map_err(|m| self.fail(m))
            }
            KStmt::Barrier if self.divergent > 0 => {
                Err(self.fail("a barrier under a condition or loop that depends on the thread".into()))
            }
            KStmt::Barrier => Ok(()),
            KStmt::Private { buf, len } => {
                let b = self.buffer(*buf)?;
                if !(1..=PRIVATE_MAX).contains(len) {
                    return Err(self.fail(format!("private array `{}` of {len} elements", b.name)));
                }
                self.local(*buf)
            }
            KStmt::Scratch { buf } => {
                if !self.k.scratch.iter().any(|s| s.buf == *buf) {
                    return Err(self.fail(format!("scratch slice of {} without a scratch buffer", buf.0)));
                }
                self.local(*buf)
            }
        }
    }

    fn local(&mut self, b: BufId) -> Result<()> {
        if self.locals.iter().any(|l| l.contains(&b)) || self.k.shared.contains(&b) {
            return Err(self.fail(format!("buffer {} declared twice", b.0)));
        }
        if let Some(l) = self.locals.last_mut() {
            l.push(b);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use texpr_dsl::testing::spec;
    use texpr_dsl::{CmpOp, DType, Expr, Program, Target};

    use super::*;

    /// SPEC §2's matrix product under its GPU schedule: cooperative tiles
    /// between barriers.
    fn matmul() -> GpuFunc {
        let f = spec::matmul();
        let l = texpr_dsl::lower(&spec::matmul_gpu(&f).unwrap(), Target::OpenCl).unwrap();
        let g = crate::gpu_lower::lower(&l.flat).unwrap();
        let mut barriers = 0;
        g.kernels[0].body.visit(&mut |s| barriers += usize::from(matches!(s, KStmt::Barrier)));
        assert!(barriers > 0, "{:?}", g.kernels[0].body);
        g
    }

    fn check(g: &GpuFunc, want: &str) {
        let e = verify(g).unwrap_err();
        assert!(matches!(e, Error::Internal(_)) && e.to_string().contains(want), "{e}");
    }

    #[test]
    fn lowered_kernels_verify() {
        verify(&matmul()).unwrap();
        for f in [spec::softmax(), spec::conv3x3()] {
            let l = Program::new(f).lower(Target::Cuda).unwrap();
            verify(&crate::gpu_lower::lower(&l.flat).unwrap()).unwrap();
        }
    }

    #[test]
    fn a_barrier_under_a_thread_dependent_condition_is_caught() {
        let mut g = matmul();
        let k = &mut g.kernels[0];
        let (t, _) = k.hw.iter().find(|(_, h)| matches!(h, Hw::Thread(_))).unwrap();
        let t = Expr::Var(texpr_dsl::Var { id: *t, dtype: DType::I64 });
        let body = std::mem::replace(&mut k.body, KStmt::Nop);
        k.body = KStmt::If { cond: Expr::cmp(CmpOp::Lt, t, Expr::int(1)), then: Box::new(body), els: None };
        check(&g, "barrier");
    }

    #[test]
    fn unbound_variables_are_caught() {
        let mut g = matmul();
        let v = g.func.vars.add_index("stray");
        let w = g.func.vars.add_index("w");
        let k = &mut g.kernels[0];
        k.body =
            KStmt::seq(vec![KStmt::Let { var: w, value: Expr::Var(v) }, std::mem::replace(&mut k.body, KStmt::Nop)]);
        check(&g, "`stray` used out of scope");
    }

    #[test]
    fn buffers_that_are_not_arguments_are_caught() {
        let mut g = matmul();
        g.kernels[0].args.retain(|a| !matches!(a, KArg::Buf(BufId(0))));
        check(&g, "neither an argument");
    }

    #[test]
    fn stores_into_inputs_are_caught() {
        let mut g = matmul();
        let k = &mut g.kernels[0];
        let store = KStmt::Store { buf: BufId(0), idx: Expr::int(0), value: Expr::Const(texpr_dsl::Scalar::F32(0.0)) };
        k.body = KStmt::seq(vec![std::mem::replace(&mut k.body, KStmt::Nop), store]);
        check(&g, "store into input");
    }
}
