//! The default schedules of the target classes ([`Schedule::default_for`]).
//! The CPU default tries schedules by lowering them, so it sits above
//! [`lower`](crate::lower), which sits above [`schedule`](crate::schedule).

use crate::dtype::DType;
use crate::error::Result;
use crate::expr::{Expr, Var};
use crate::func::Func;
use crate::lower::lower_trial;
use crate::schedule::{Attach, AxisRef, Schedule, StageKind, StageRef};
use crate::stmt::{ForKind, ThreadAxis};
use crate::target::{Target, TargetClass};

/// Stages the CPU default computes at an output's row loop
/// ([`Schedule::row_plan`]).
#[derive(Clone, Debug)]
struct RowPlan {
    /// The output stage.
    out: usize,
    /// How many leading index variables make a row (1, or 2 for `n, c`).
    dims: usize,
    /// The stages, each listed after its readers.
    stages: Vec<usize>,
}

impl Schedule {
    /// The default schedule of a target class for a definition.
    ///
    /// - CPU: stages read only at their readers' own rows computed at the
    ///   output's row loop (one row at a time: no row is computed twice),
    ///   every other stage at the root; per stage, the innermost spatial
    ///   loop (the output's contiguous axis) is split by two SIMD widths and
    ///   the inner part vectorized, reductions are moved outside it (so a
    ///   matrix product runs `i, k, j.outer, j.inner`: vector loads of `b`
    ///   and `c`, `a` broadcast) except small constant ones (a
    ///   convolution's window), which are unrolled just outside the vector
    ///   loop, and the outermost spatial loop — the first
    ///   two fused when there are three or more — runs in parallel (at the
    ///   root; a stage inside a row runs on the row's thread). A stage
    ///   with one spatial axis and a reduction (a row reduction) vectorizes
    ///   its innermost reduction loop instead. A stage whose default fails to
    ///   lower keeps the definition's loop order (never an error).
    /// - GPU: for every stage, its spatial loops fused and split by 64, the
    ///   outer loop bound to `block.x` and the inner to `thread.x`;
    ///   reductions run serially inside each thread.
    pub fn default_for(func: &Func, class: TargetClass) -> Schedule {
        // Trial lowerings walk the definition: on a deep stack if it is deep.
        crate::deep::with_stack(func.depth(), || Ok(Schedule::default_shallow(func, class)))
            .unwrap_or_else(|_| Schedule::new(func, Some(class)))
    }

    fn default_shallow(func: &Func, class: TargetClass) -> Schedule {
        let mut s = Schedule::new(func, Some(class));
        if class == TargetClass::Gpu {
            for i in 0..s.stages.len() {
                let st = StageRef(i as u32);
                // Every step below is legal by construction; an error would be
                // a texpr bug and leaves the stage unbound (still correct).
                let _ = s.default_gpu_stage(st);
            }
        } else {
            // The per-stage defaults; should lowering refuse them, the
            // definition's loop order.
            let plain = s.clone();
            s.default_cpu_stages(&[]);
            match lower_trial(&s, Target::Interp) {
                Err(_) => s = plain,
                // Row fusion only where every access is proven in bounds: a
                // stage computed at a row lives in a buffer the size of the
                // region its readers read, so a read outside the stage's own
                // shape would find zeros there instead of failing the
                // run-time bounds check it fails at the root.
                Ok(l) if l.unproven.is_empty() => {
                    let rows = plain.row_plan();
                    if !rows.is_empty() {
                        let mut fused = plain;
                        fused.default_cpu_stages(&rows);
                        if fused.attach_rows(&rows).is_ok() && lower_trial(&fused, Target::Interp).is_ok() {
                            s = fused;
                        }
                    }
                }
                Ok(_) => {}
            }
        }
        s
    }

    fn default_cpu_stages(&mut self, rows: &[RowPlan]) {
        for i in 0..self.stages.len() {
            let row_dims = rows.iter().find(|r| r.stages.contains(&i)).map_or(0, |r| r.dims);
            let before = self.clone();
            if self.default_cpu_stage(StageRef(i as u32), row_dims).is_err() {
                *self = before;
            }
        }
    }

    /// The CPU default's row fusion: a stage whose every reader reads it
    /// only at the reader's own row — the first index of every access is
    /// the reader's first loop variable (the first two, for an output with
    /// three or more dims, whose default loops over `n, c` fused) — where
    /// every reader is an output or a stage already taken, is computed at
    /// the output's (parallel) row loop instead of in full at the root.
    /// Each row is still computed once — no work is repeated — but it is
    /// produced and consumed while it is in cache: a softmax's `mx`, `e`
    /// and `s` (four passes over `N×C` in memory) become one pass per row
    /// through a row buffer; an NCHW normalization's per-plane statistics
    /// and a padded copy of the input are computed per plane.
    fn row_plan(&self) -> Vec<RowPlan> {
        let mut plans = vec![];
        for o in 0..self.stages.len() {
            let st = &self.stages[o];
            // Loops whose rows the default keeps whole (`default_cpu_stage`):
            // the first of two spatial axes, the only one of a row
            // reduction, the first two (fused) of three or more.
            let dims = match st.spatial.len() {
                1 if !st.reduce.is_empty() => 1,
                2 => 1,
                n if n >= 3 => 2,
                _ => continue,
            };
            if st.output.is_none() || st.attach != Attach::Root {
                continue;
            }
            let mut inside = vec![o];
            for p in (0..self.stages.len()).rev() {
                let ps = &self.stages[p];
                // A stage of three or more dims runs its fused first two
                // loops in parallel at the root: only a two-dim row keeps
                // that parallelism (a convolution feeding a global pool
                // `o[n, c]` stays at the root).
                if ps.output.is_some()
                    || ps.attach != Attach::Root
                    || ps.kind != StageKind::Def
                    || ps.spatial.len() < dims
                    || (ps.spatial.len() >= 3 && dims < 2)
                {
                    continue;
                }
                let readers = self.readers(ps.buf);
                let by_row = !readers.is_empty()
                    && readers.iter().all(|r| {
                        let rs = &self.stages[*r];
                        if !inside.contains(r) || rs.spatial.len() < dims {
                            return false;
                        }
                        let row: Vec<Var> = rs.spatial[..dims].iter().map(|a| rs.axes[*a].var).collect();
                        let at_row = |idx: &[Expr]| {
                            idx.len() >= dims
                                && idx[..dims].iter().zip(&row).all(|(e, v)| matches!(e, Expr::Var(w) if w == v))
                        };
                        rs.body.exprs().iter().all(|e| {
                            !e.any(&mut |x| match x {
                                Expr::Load(l) if l.buf == ps.buf => !at_row(&l.idx),
                                _ => false,
                            })
                        })
                    });
                if by_row {
                    inside.push(p);
                }
            }
            if inside.len() > 1 {
                plans.push(RowPlan { out: o, dims, stages: inside[1..].to_vec() });
            }
        }
        plans
    }

    /// Computes the stages of each plan at its output's parallel row loop
    /// (after the per-stage defaults, which made that loop).
    fn attach_rows(&mut self, rows: &[RowPlan]) -> Result<()> {
        for plan in rows {
            let o = &self.stages[plan.out];
            let Some(&row) = o.leaves.iter().find(|l| o.axes[**l].kind == ForKind::Parallel) else {
                return Err(self.err(format!("`{}` has no parallel row loop", o.name), None));
            };
            let at = AxisRef { stage: plan.out as u32, axis: row as u32 };
            for p in &plan.stages {
                self.compute_at(StageRef(*p as u32), at)?;
            }
        }
        Ok(())
    }

    /// The CPU default for one stage (see [`Schedule::default_for`]);
    /// `row_dims` > 0 for a stage computed at its consumer's row loop
    /// (see [`Schedule::row_plan`]), whose first `row_dims` loops then run
    /// once per row.
    fn default_cpu_stage(&mut self, st: StageRef, row_dims: usize) -> Result<()> {
        let stage = &self.stages[st.0 as usize];
        let decl = &self.tensors[stage.buf.0 as usize];
        // Two 128-bit vectors per vectorized loop; none for types without
        // vector arithmetic.
        let width: i64 = match decl.dtype {
            DType::F32 | DType::I32 | DType::U32 => 8,
            DType::F64 | DType::I64 | DType::U64 => 4,
            DType::I16 | DType::U16 => 16,
            DType::I8 | DType::U8 => 32,
            _ => 0,
        };
        let last_extent = decl.shape.last().and_then(|e| e.as_int());
        let spatial: Vec<AxisRef> = stage.spatial.iter().map(|a| AxisRef { stage: st.0, axis: *a as u32 }).collect();
        let reduce: Vec<AxisRef> = stage.reduce.iter().map(|a| AxisRef { stage: st.0, axis: *a as u32 }).collect();
        let Some(&last) = spatial.last() else { return Ok(()) };
        let worth = |ext: Option<i64>| width > 0 && ext.is_none_or(|e| e >= width);
        // Constant extents of the reduction loops, in `reduce` order.
        let extents: Vec<Option<i64>> = stage
            .reduction()
            .map_or(vec![], |red| red.axes.iter().map(|ax| Some(ax.hi.as_int()? - ax.lo.as_int()?)).collect());
        // A stage computed in its consumer's rows runs on that loop's
        // threads, and its row loops stay whole: split, they would compute
        // a vector's worth of rows at each row.
        let par = row_dims == 0;
        if spatial.len() <= row_dims || (spatial.len() == 1 && !reduce.is_empty()) {
            // A row reduction (or one element per row): vectorize the
            // innermost reduction loop.
            if par {
                self.parallel(last)?;
            }
            let Some(&r) = reduce.last() else { return Ok(()) };
            if worth(extents.last().copied().flatten()) {
                let (_, ri) = self.split(r, width)?;
                self.vectorize(ri)?;
            }
            return Ok(());
        }
        let mut order: Vec<AxisRef> = spatial[..spatial.len() - 1].to_vec();
        if worth(last_extent) {
            // Small constant reduction loops (a convolution's window),
            // innermost of them first while their product stays within 16,
            // go between the vector loop and its outer loop, unrolled: the
            // vector of outputs then accumulates the whole window in a
            // register instead of being loaded and stored per tap.
            let mut small = reduce.len();
            let mut copies = 1;
            while small > 0
                && let Some(Some(e)) = extents.get(small - 1)
                && (1..=8).contains(e)
                && copies * e <= 16
            {
                copies *= e;
                small -= 1;
            }
            order.extend(&reduce[..small]);
            let (lo, li) = self.split(last, width)?;
            order.push(lo);
            order.extend(&reduce[small..]);
            order.push(li);
            self.reorder(&order)?;
            for r in &reduce[small..] {
                self.unroll(*r)?;
            }
            self.vectorize(li)?;
            if spatial.len() == 1 {
                return self.parallel(lo);
            }
        } else {
            order.extend(&reduce);
            order.push(last);
            self.reorder(&order)?;
            if spatial.len() == 1 {
                return self.parallel(last);
            }
        }
        if !par {
            Ok(())
        } else if spatial.len() >= 3 {
            let f = self.fuse(spatial[0], spatial[1])?;
            self.parallel(f)
        } else {
            self.parallel(spatial[0])
        }
    }

    fn default_gpu_stage(&mut self, st: StageRef) -> Result<()> {
        let spatial: Vec<AxisRef> = self
            .loops_of(st)
            .into_iter()
            .filter(|a| !self.stages[a.stage as usize].axes[a.axis as usize].reduce)
            .collect();
        let Some(mut fused) = spatial.first().copied() else { return Ok(()) };
        for a in &spatial[1..] {
            let n = format!("{}_{}", self.axis_name_of(fused), self.axis_name_of(*a));
            fused = self.fuse_named(fused, *a, &n)?;
        }
        let (bo, ti) = self.split_named(fused, 64, "block", "thread")?;
        self.bind(bo, ThreadAxis::BlockX)?;
        self.bind(ti, ThreadAxis::ThreadX)?;
        Ok(())
    }
}
