//! Schedules: how to loop over a definition, per target class.
//!
//! A [`Schedule`] starts as one serial loop per index and reduction variable
//! of every stage, each stage computed in full at the root, and is changed
//! by the SPEC §3 primitives. Primitives act on *axes* (loops) of *stages*;
//! both are named, and an illegal primitive is a [`ScheduleError`] that says
//! what would be legal. Relations between axes (`split`, `fuse`) are kept,
//! not applied: lowering derives loop bounds, index expressions and tail
//! guards from them, as TVM does.
//!
//! `cache_read` and `cache_write` add stages; `compute_at`/`compute_inline`
//! change where a stage is computed; these are re-checked against the final
//! data flow when the schedule is lowered, because later primitives can
//! change what earlier ones relied on.

use std::fmt;

use crate::error::{Error, Origin, Result, ScheduleError};
use crate::expr::{BufId, Expr, Var};
use crate::func::{Body, Func, ReduceAxis, Reduction, StageId, TensorDecl, TensorKind};
use crate::stmt::{ForKind, Scope, ThreadAxis};
use crate::target::TargetClass;

/// The largest split or tile factor: loop counts like `(N + f - 1) / f`
/// then stay far inside `i64` for every dim a call can bind.
pub const MAX_FACTOR: i64 = 1 << 32;

/// A stage of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StageRef(pub(crate) u32);

/// An axis (loop) of a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AxisRef {
    pub(crate) stage: u32,
    pub(crate) axis: u32,
}

/// How two axes relate.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Rel {
    /// `parent = outer * factor + inner`.
    Split { parent: usize, outer: usize, inner: usize, factor: i64 },
    /// `fused = outer * extent(inner) + inner`.
    Fuse { outer: usize, inner: usize, fused: usize },
}

/// One axis of a stage.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Axis {
    pub name: String,
    pub var: Var,
    /// Derived from a reduction variable.
    pub reduce: bool,
    pub kind: ForKind,
    /// Replaced by a split or fuse (no longer a loop).
    pub consumed: bool,
}

/// Where a stage is computed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Attach {
    /// In full, before its consumers.
    Root,
    /// Substituted into its consumers.
    Inline,
    /// Inside loop `axis` of stage `stage`, for the region that loop needs.
    At { stage: usize, axis: usize, origin: Option<Origin> },
}

/// Where a stage came from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StageKind {
    /// A stage of the definition.
    Def,
    /// A copy of a tensor made by `cache_read`.
    CacheRead,
    /// The computation of a stage moved by `cache_write`.
    CacheWrite,
}

/// A stage with its loops.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SStage {
    pub name: String,
    pub buf: BufId,
    pub kind: StageKind,
    pub body: Body,
    pub axes: Vec<Axis>,
    /// Root spatial axes, one per dim.
    pub spatial: Vec<usize>,
    /// Root reduction axes.
    pub reduce: Vec<usize>,
    pub rels: Vec<Rel>,
    /// Loops in order, outermost first.
    pub leaves: Vec<usize>,
    pub attach: Attach,
    pub scope: Scope,
    pub output: Option<u32>,
    /// `true` once a primitive changed its loops.
    pub scheduled: bool,
}

impl SStage {
    /// A stage at the root with its loops in definition order.
    #[allow(clippy::too_many_arguments)]
    fn new(
        name: String,
        buf: BufId,
        kind: StageKind,
        body: Body,
        axes: Vec<Axis>,
        spatial: Vec<usize>,
        reduce: Vec<usize>,
        scope: Scope,
    ) -> SStage {
        SStage {
            name,
            buf,
            kind,
            body,
            leaves: (0..axes.len()).collect(),
            axes,
            spatial,
            reduce,
            rels: vec![],
            attach: Attach::Root,
            scope,
            output: None,
            scheduled: false,
        }
    }

    pub(crate) fn leaf_names(&self) -> String {
        self.leaves.iter().map(|a| self.axes[*a].name.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// The reduction of the body with its axes, if a reduction.
    pub(crate) fn reduction(&self) -> Option<&Reduction> {
        self.body.reduction()
    }
}

/// The schedule of a definition for one target class (or for all).
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub(crate) func: Func,
    pub(crate) class: Option<TargetClass>,
    pub(crate) tensors: Vec<TensorDecl>,
    pub(crate) stages: Vec<SStage>,
    pub(crate) vars: crate::expr::VarTable,
    origin: Option<Origin>,
}

impl Schedule {
    /// The unscheduled state: every stage at the root, serial loops in
    /// definition order (index variables, then reduction variables).
    /// `class` is the target class the schedule is for (`None`: all).
    pub fn new(func: &Func, class: Option<TargetClass>) -> Schedule {
        let vars = func.vars.clone();
        let mut stages = vec![];
        for (i, st) in func.stages.iter().enumerate() {
            let mut axes = vec![];
            let mut spatial = vec![];
            let mut reduce = vec![];
            for v in &st.axes {
                spatial.push(axes.len());
                axes.push(Axis {
                    name: vars.name(v.id).to_string(),
                    var: *v,
                    reduce: false,
                    kind: ForKind::Serial,
                    consumed: false,
                });
            }
            if let Body::Reduce(r) = &st.body {
                for a in &r.axes {
                    reduce.push(axes.len());
                    axes.push(Axis {
                        name: vars.name(a.var.id).to_string(),
                        var: a.var,
                        reduce: true,
                        kind: ForKind::Serial,
                        consumed: false,
                    });
                }
            }
            let mut stage = SStage::new(
                st.name.clone(),
                st.buf,
                StageKind::Def,
                st.body.clone(),
                axes,
                spatial,
                reduce,
                Scope::Global,
            );
            stage.output = func.outputs.iter().position(|o| o.0 as usize == i).map(|p| p as u32);
            stages.push(stage);
        }
        Schedule { func: func.clone(), class, tensors: func.tensors.clone(), stages, vars, origin: None }
    }

    /// The definition this schedules.
    pub fn func(&self) -> &Func {
        &self.func
    }

    /// The target class.
    pub fn class(&self) -> Option<TargetClass> {
        self.class
    }

    /// The same schedule of `func` — this schedule's definition with dims
    /// fixed by [`Program::specialize`](crate::Program::specialize) — with
    /// every fixed dim a literal: in tensor shapes (cache stages' too) and
    /// stage bodies. The loop structure is unchanged; lowering then decides
    /// tails and guards from the values.
    pub(crate) fn specialized(&self, func: &Func) -> Schedule {
        let mut s = self.clone();
        s.func = func.with_fixed_substituted();
        func.substitute_fixed_in(&mut s.tensors, s.stages.iter_mut().map(|st| &mut st.body));
        s
    }

    /// Sets the origin reported by errors of the following primitives
    /// (used by `tensor_expr!`).
    pub fn at(&mut self, origin: Option<Origin>) -> &mut Schedule {
        self.origin = origin;
        self
    }

    pub(crate) fn err(&self, message: impl Into<String>, help: Option<String>) -> Error {
        Error::Schedule(ScheduleError {
            func: self.func.name.clone(),
            message: message.into(),
            help,
            origin: self.origin,
        })
    }

    fn stage_names(&self) -> String {
        self.stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// A stage by name.
    pub fn stage(&self, name: &str) -> Result<StageRef> {
        match self.stages.iter().position(|s| s.name == name) {
            Some(i) => Ok(StageRef(i as u32)),
            None => {
                let what = if self.tensors.iter().any(|t| t.name == name && matches!(t.kind, TensorKind::Input(_))) {
                    format!("`{name}` is an input, not a stage; inputs have no loops")
                } else {
                    format!("unknown stage `{name}`")
                };
                Err(self.err(what, Some(format!("the stages are {}", self.stage_names()))))
            }
        }
    }

    /// The index of a stage handle, checked: a handle of another schedule
    /// is an error, never a panic.
    fn stage_index(&self, s: StageRef) -> Result<usize> {
        let i = s.0 as usize;
        if i < self.stages.len() {
            Ok(i)
        } else {
            Err(self.err("a stage of another schedule", Some(format!("the stages are {}", self.stage_names()))))
        }
    }

    /// An axis handle, checked (any axis of the stage, current loop or not).
    fn axis_of(&self, a: AxisRef) -> Result<&Axis> {
        self.stages
            .get(a.stage as usize)
            .and_then(|st| st.axes.get(a.axis as usize))
            .ok_or_else(|| self.err("an axis of another schedule", None))
    }

    /// The name of a stage (`Err` for a handle of another schedule).
    pub fn stage_name(&self, s: StageRef) -> Result<&str> {
        Ok(&self.stages[self.stage_index(s)?].name)
    }

    /// An axis of a stage by name: one of its current loops.
    pub fn axis(&self, s: StageRef, name: &str) -> Result<AxisRef> {
        let st = &self.stages[self.stage_index(s)?];
        if let Some(&a) = st.leaves.iter().rev().find(|a| st.axes[**a].name == name) {
            return Ok(AxisRef { stage: s.0, axis: a as u32 });
        }
        let msg = if st.axes.iter().any(|a| a.name == name) {
            format!("`{name}` of `{}` was split or fused and is no longer a loop", st.name)
        } else {
            format!("`{name}` is not a loop of `{}`", st.name)
        };
        Err(self.err(msg, Some(format!("its loops are {}", st.leaf_names()))))
    }

    /// The current loops of a stage, outermost first.
    pub fn loops(&self, s: StageRef) -> Result<Vec<AxisRef>> {
        let st = &self.stages[self.stage_index(s)?];
        Ok(st.leaves.iter().map(|a| AxisRef { stage: s.0, axis: *a as u32 }).collect())
    }

    /// [`Schedule::stage_name`] for a handle known to be of this schedule.
    #[cfg(feature = "testing")]
    pub(crate) fn stage_name_of(&self, s: StageRef) -> &str {
        &self.stages[s.0 as usize].name
    }

    /// [`Schedule::loops`] for a handle known to be of this schedule.
    pub(crate) fn loops_of(&self, s: StageRef) -> Vec<AxisRef> {
        self.stages[s.0 as usize].leaves.iter().map(|a| AxisRef { stage: s.0, axis: *a as u32 }).collect()
    }

    /// [`Schedule::axis_name`] for a handle known to be of this schedule.
    pub(crate) fn axis_name_of(&self, a: AxisRef) -> &str {
        &self.stages[a.stage as usize].axes[a.axis as usize].name
    }

    /// The name of an axis (`Err` for a handle of another schedule).
    pub fn axis_name(&self, a: AxisRef) -> Result<&str> {
        Ok(&self.axis_of(a)?.name)
    }

    /// Checks that `a` is a current loop of its stage.
    fn leaf(&self, a: AxisRef) -> Result<(usize, usize)> {
        let st = self.stages.get(a.stage as usize).ok_or_else(|| self.err("an axis of another schedule", None))?;
        let ax = st.axes.get(a.axis as usize).ok_or_else(|| self.err("an axis of another schedule", None))?;
        match st.leaves.iter().position(|x| *x == a.axis as usize) {
            Some(pos) => Ok((a.stage as usize, pos)),
            None => Err(self.err(
                format!("`{}` of `{}` was split or fused and is no longer a loop", ax.name, st.name),
                Some(format!("its loops are {}", st.leaf_names())),
            )),
        }
    }

    fn new_axis(&mut self, s: usize, name: String, reduce: bool) -> usize {
        let var = self.vars.add_index(name.clone());
        let st = &mut self.stages[s];
        st.axes.push(Axis { name, var, reduce, kind: ForKind::Serial, consumed: false });
        st.axes.len() - 1
    }

    /// A split factor is in `1..=MAX_FACTOR`.
    fn check_factor(&self, factor: i64) -> Result<()> {
        if factor < 1 {
            return Err(self.err(format!("split factor must be at least 1, found {factor}"), None));
        }
        if factor > MAX_FACTOR {
            return Err(self.err(format!("split factor must be at most 2^32 = {MAX_FACTOR}, found {factor}"), None));
        }
        Ok(())
    }

    /// `split(v, factor)` with generated names `v.outer`, `v.inner`.
    pub fn split(&mut self, a: AxisRef, factor: i64) -> Result<(AxisRef, AxisRef)> {
        let n = self.axis_name(a)?.to_string();
        self.split_named(a, factor, &format!("{n}.outer"), &format!("{n}.inner"))
    }

    /// `let (outer, inner) = s.split(v, factor)`: `v = outer * factor + inner`.
    /// A factor that does not divide the extent leaves a tail, which lowering
    /// handles.
    pub fn split_named(&mut self, a: AxisRef, factor: i64, outer: &str, inner: &str) -> Result<(AxisRef, AxisRef)> {
        let (s, pos) = self.leaf(a)?;
        self.check_factor(factor)?;
        let parent = a.axis as usize;
        let reduce = self.stages[s].axes[parent].reduce;
        let o = self.new_axis(s, outer.to_string(), reduce);
        let i = self.new_axis(s, inner.to_string(), reduce);
        let st = &mut self.stages[s];
        st.axes[parent].consumed = true;
        st.rels.push(Rel::Split { parent, outer: o, inner: i, factor });
        st.leaves.splice(pos..=pos, [o, i]);
        st.scheduled = true;
        Ok((AxisRef { stage: a.stage, axis: o as u32 }, AxisRef { stage: a.stage, axis: i as u32 }))
    }

    /// `tile(x, y, fx, fy)` with generated names.
    pub fn tile(&mut self, x: AxisRef, y: AxisRef, fx: i64, fy: i64) -> Result<[AxisRef; 4]> {
        let (nx, ny) = (self.axis_name(x)?.to_string(), self.axis_name(y)?.to_string());
        self.tile_named(
            x,
            y,
            fx,
            fy,
            [&format!("{nx}.outer"), &format!("{ny}.outer"), &format!("{nx}.inner"), &format!("{ny}.inner")],
        )
    }

    /// `let (xo, yo, xi, yi) = s.tile(x, y, fx, fy)`: splits both and orders
    /// the four loops `xo, yo, xi, yi` where `x` and `y` were.
    pub fn tile_named(&mut self, x: AxisRef, y: AxisRef, fx: i64, fy: i64, names: [&str; 4]) -> Result<[AxisRef; 4]> {
        if x.stage != y.stage {
            return Err(self.err("tile needs two loops of the same stage", None));
        }
        self.leaf(x)?;
        self.leaf(y)?;
        if x == y {
            return Err(self.err(format!("tile needs two different loops, found `{}` twice", self.axis_name(x)?), None));
        }
        // Both checked before the first split: a failed primitive changes nothing.
        self.check_factor(fx)?;
        self.check_factor(fy)?;
        let (xo, xi) = self.split_named(x, fx, names[0], names[2])?;
        let (yo, yi) = self.split_named(y, fy, names[1], names[3])?;
        self.reorder(&[xo, yo, xi, yi])?;
        Ok([xo, yo, xi, yi])
    }

    /// `fuse(a, b)` with a generated name `a.b.fused`.
    pub fn fuse(&mut self, a: AxisRef, b: AxisRef) -> Result<AxisRef> {
        let n = format!("{}.{}.fused", self.axis_name(a)?, self.axis_name(b)?);
        self.fuse_named(a, b, &n)
    }

    /// `let f = s.fuse(a, b)`: one loop over both; `a` must come right
    /// before `b`, and both be spatial or both reduction loops.
    pub fn fuse_named(&mut self, a: AxisRef, b: AxisRef, name: &str) -> Result<AxisRef> {
        if a.stage != b.stage {
            return Err(self.err("fuse needs two loops of the same stage", None));
        }
        let (s, pa) = self.leaf(a)?;
        let (_, pb) = self.leaf(b)?;
        let st = &self.stages[s];
        let (an, bn) = (st.axes[a.axis as usize].name.clone(), st.axes[b.axis as usize].name.clone());
        if pb != pa + 1 {
            return Err(self.err(
                format!("fuse needs adjacent loops, outer first: `{an}` and `{bn}` are not"),
                Some(format!("the loops of `{}` are {}", st.name, st.leaf_names())),
            ));
        }
        let reduce = st.axes[a.axis as usize].reduce;
        if reduce != st.axes[b.axis as usize].reduce {
            return Err(
                self.err(format!("cannot fuse `{an}` and `{bn}`: one is a reduction loop and the other is not"), None)
            );
        }
        let f = self.new_axis(s, name.to_string(), reduce);
        let st = &mut self.stages[s];
        st.axes[a.axis as usize].consumed = true;
        st.axes[b.axis as usize].consumed = true;
        st.rels.push(Rel::Fuse { outer: a.axis as usize, inner: b.axis as usize, fused: f });
        st.leaves.splice(pa..=pb, [f]);
        st.scheduled = true;
        Ok(AxisRef { stage: a.stage, axis: f as u32 })
    }

    /// `reorder(a, b, ...)`: the listed loops take the positions they occupy,
    /// in the given order; other loops stay where they are.
    pub fn reorder(&mut self, axes: &[AxisRef]) -> Result<()> {
        let Some(first) = axes.first() else { return Ok(()) };
        let mut positions = vec![];
        for (i, a) in axes.iter().enumerate() {
            if a.stage != first.stage {
                return Err(self.err("reorder needs loops of one stage", None));
            }
            let (_, p) = self.leaf(*a)?;
            if axes[..i].contains(a) {
                return Err(self.err(format!("`{}` appears twice in reorder", self.axis_name(*a)?), None));
            }
            positions.push(p);
        }
        let st = &mut self.stages[first.stage as usize];
        let mut sorted = positions.clone();
        sorted.sort_unstable();
        for (slot, a) in sorted.iter().zip(axes) {
            st.leaves[*slot] = a.axis as usize;
        }
        st.scheduled = true;
        Ok(())
    }

    fn set_kind(&mut self, a: AxisRef, kind: ForKind, what: &str) -> Result<()> {
        let (s, _) = self.leaf(a)?;
        let st = &self.stages[s];
        let ax = &st.axes[a.axis as usize];
        if ax.kind != ForKind::Serial && ax.kind != kind {
            let was = match ax.kind {
                ForKind::Parallel => "parallel".to_string(),
                ForKind::Vectorized => "vectorized".to_string(),
                ForKind::Unrolled => "unrolled".to_string(),
                ForKind::Bound(t) => format!("bound to {}", t.name()),
                ForKind::Serial => "serial".to_string(),
            };
            return Err(self.err(
                format!("`{}` of `{}` is already {was} and cannot also {what}", ax.name, st.name),
                Some("a loop has one kind".into()),
            ));
        }
        let st = &mut self.stages[s];
        st.axes[a.axis as usize].kind = kind;
        st.scheduled = true;
        Ok(())
    }

    /// `vectorize(v)`: run the loop's iterations as SIMD lanes.
    pub fn vectorize(&mut self, a: AxisRef) -> Result<()> {
        self.set_kind(a, ForKind::Vectorized, "be vectorized")
    }

    /// `unroll(v)`: unroll the loop fully.
    pub fn unroll(&mut self, a: AxisRef) -> Result<()> {
        self.set_kind(a, ForKind::Unrolled, "be unrolled")
    }

    /// `parallel(v)`: run iterations on several CPU threads.
    pub fn parallel(&mut self, a: AxisRef) -> Result<()> {
        if self.class == Some(TargetClass::Gpu) {
            return Err(self.err(
                "`parallel` is a CPU primitive",
                Some("in a GPU schedule, bind loops to block.* and thread.* axes".into()),
            ));
        }
        let (s, _) = self.leaf(a)?;
        let st = &self.stages[s];
        let ax = &st.axes[a.axis as usize];
        if ax.reduce {
            return Err(self.err(
                format!(
                    "cannot parallelize reduction loop `{}` of `{}`: its iterations update the same element",
                    ax.name, st.name
                ),
                Some("parallelize a spatial loop".into()),
            ));
        }
        self.set_kind(a, ForKind::Parallel, "be parallel")
    }

    /// `bind(v, block.x | thread.y | ...)`: map the loop onto a GPU grid axis.
    pub fn bind(&mut self, a: AxisRef, t: ThreadAxis) -> Result<()> {
        if self.class != Some(TargetClass::Gpu) {
            let help = "write it in a `schedule for gpu` block".to_string();
            let msg = if self.class == Some(TargetClass::Cpu) {
                "`bind` in a CPU schedule: CPUs have no block or thread axes"
            } else {
                "`bind` in a schedule for all targets: CPUs have no block or thread axes"
            };
            return Err(self.err(msg, Some(help)));
        }
        let (s, _) = self.leaf(a)?;
        let st = &self.stages[s];
        let ax = &st.axes[a.axis as usize];
        if ax.reduce {
            return Err(self.err(
                format!(
                    "cannot bind reduction loop `{}` of `{}`: its iterations update the same element",
                    ax.name, st.name
                ),
                None,
            ));
        }
        if let Some(other) = st.leaves.iter().find(|l| st.axes[**l].kind == ForKind::Bound(t)) {
            return Err(
                self.err(format!("`{}` is already bound to {} in `{}`", st.axes[*other].name, t.name(), st.name), None)
            );
        }
        self.set_kind(a, ForKind::Bound(t), &format!("be bound to {}", t.name()))
    }

    /// The stages that read `buf` once inlining is done: an inlined reader
    /// is replaced by its own readers.
    pub(crate) fn readers(&self, buf: BufId) -> Vec<usize> {
        let mut out = vec![];
        let mut todo = vec![buf];
        let mut seen = vec![];
        while let Some(b) = todo.pop() {
            if seen.contains(&b) {
                continue;
            }
            seen.push(b);
            for (i, st) in self.stages.iter().enumerate() {
                if !st.body.exprs().iter().any(|e| e.any(&mut |x| matches!(x, Expr::Load(l) if l.buf == b))) {
                    continue;
                }
                if st.attach == Attach::Inline {
                    todo.push(st.buf);
                } else if !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        out
    }

    /// `stage.compute_at(consumer, v)`: compute the stage inside loop `v` of
    /// `consumer`, only for the region that one iteration of `v` reads.
    pub fn compute_at(&mut self, s: StageRef, at: AxisRef) -> Result<()> {
        let (c, _) = self.leaf(at)?;
        let si = self.stage_index(s)?;
        let (sname, cname) = (self.stages[si].name.clone(), self.stages[c].name.clone());
        if si == c {
            return Err(self.err(format!("cannot compute `{sname}` at one of its own loops"), None));
        }
        if self.stages[si].output.is_some() {
            return Err(self.err(format!("`{sname}` is an output and is computed in full at the root"), None));
        }
        // Every reader must run inside the loop: `c` itself, or a stage
        // already computed inside `c` at that loop or below it.
        let readers = self.readers(self.stages[si].buf);
        let inside = |r: usize| within(&self.stages, r, c, at.axis as usize);
        if !readers.iter().any(|r| inside(*r)) {
            return Err(self.err(
                format!("`{cname}` does not read `{sname}`"),
                Some(format!(
                    "compute_at attaches a stage inside a loop of a stage that reads it, or of a stage its reader is computed in ({})",
                    self.reader_names(si)
                )),
            ));
        }
        if let Some(other) = readers.iter().find(|r| !inside(**r)) {
            return Err(self.err(
                format!("`{sname}` is computed at a loop of `{cname}` but is also read by `{}`", self.stages[*other].name),
                Some(format!(
                    "every reader must run inside that loop (in `{cname}` itself or in a stage computed inside it); compute it at the root or inline it"
                )),
            ));
        }
        let mut cur = c;
        while let Attach::At { stage, .. } = self.stages[cur].attach {
            if stage == si {
                return Err(
                    self.err(format!("`{cname}` is computed inside `{sname}`; attaching back would be a cycle"), None)
                );
            }
            cur = stage;
        }
        self.stages[si].attach = Attach::At { stage: c, axis: at.axis as usize, origin: self.origin };
        Ok(())
    }

    fn reader_names(&self, s: usize) -> String {
        let r: Vec<&str> = self.readers(self.stages[s].buf).iter().map(|i| self.stages[*i].name.as_str()).collect();
        if r.is_empty() { "nothing reads it".into() } else { format!("it is read by {}", r.join(", ")) }
    }

    /// `stage.compute_inline()`: substitute the stage into its consumers.
    pub fn compute_inline(&mut self, s: StageRef) -> Result<()> {
        let si = self.stage_index(s)?;
        let st = &self.stages[si];
        if st.output.is_some() {
            return Err(self.err(format!("`{}` is an output and cannot be inlined", st.name), None));
        }
        if st.reduction().is_some() {
            return Err(self.err(
                format!("`{}` is a reduction and cannot be inlined", st.name),
                Some("use compute_at to compute it inside its consumer".into()),
            ));
        }
        self.stages[si].attach = Attach::Inline;
        Ok(())
    }

    /// `stage.compute_root()`: compute the stage in full before its
    /// consumers (the default).
    pub fn compute_root(&mut self, s: StageRef) -> Result<()> {
        let si = self.stage_index(s)?;
        self.stages[si].attach = Attach::Root;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn add_stage(
        &mut self,
        name: String,
        decl: TensorDecl,
        body: Body,
        axes: Vec<Axis>,
        spatial: Vec<usize>,
        reduce: Vec<usize>,
        kind: StageKind,
        scope: Scope,
    ) -> usize {
        let buf = BufId(self.tensors.len() as u32);
        let sid = self.stages.len();
        self.tensors.push(TensorDecl { kind: TensorKind::Stage(StageId(sid as u32)), ..decl });
        self.stages.push(SStage::new(name, buf, kind, body, axes, spatial, reduce, scope));
        sid
    }

    fn check_fresh(&self, name: &str) -> Result<()> {
        if self.tensors.iter().any(|t| t.name == name) || self.stages.iter().any(|s| s.name == name) {
            return Err(self.err(format!("`{name}` is already the name of a tensor or stage"), None));
        }
        Ok(())
    }

    /// `consumer.cache_read(tensor, scope)` with a generated name.
    pub fn cache_read(&mut self, consumer: StageRef, tensor: &str, scope: Scope) -> Result<StageRef> {
        let name = format!("{tensor}.{}", scope.name());
        self.cache_read_named(consumer, tensor, scope, &name)
    }

    /// `let t_s = consumer.cache_read(tensor, shared | local)`: `consumer`
    /// reads `tensor` through a copy in `scope`. The copy's loops are
    /// named after the tensor's index variables (`ax0, ax1, ...` for inputs).
    pub fn cache_read_named(&mut self, consumer: StageRef, tensor: &str, scope: Scope, name: &str) -> Result<StageRef> {
        if scope == Scope::Global {
            return Err(self.err("cache_read copies into `local` or `shared` memory", None));
        }
        let c = self.stage_index(consumer)?;
        let Some(src) = self.tensors.iter().position(|t| t.name == tensor).map(|i| BufId(i as u32)) else {
            return Err(self.err(format!("unknown tensor `{tensor}`"), None));
        };
        let reads_src =
            |st: &SStage| st.body.exprs().iter().any(|e| e.any(&mut |x| matches!(x, Expr::Load(l) if l.buf == src)));
        if !reads_src(&self.stages[c]) {
            let cname = &self.stages[c].name;
            // A reduction nested in an expression is computed by a stage of
            // its own, `NAME_rK` (see typeck): say so rather than just "no".
            let hoisted = self.stages.iter().find(|st| {
                reads_src(st)
                    && self.func.stages.iter().any(|fs| fs.name == st.name && fs.within.as_deref() == Some(cname))
            });
            let help = hoisted.map(|st| {
                format!(
                    "`{tensor}` is read by a reduction inside `{cname}`'s expression, which is computed by stage `{}`: cache `{tensor}` for that stage (`{}.cache_read({tensor}, ...)`), or schedule it by that name",
                    st.name, st.name
                )
            });
            // A second cache_read of the same tensor: the consumer reads the first copy.
            let copy = self.stages.iter().find(|st| {
                st.kind == StageKind::CacheRead && reads_src(st) && {
                    let b = st.buf;
                    self.stages[c].body.exprs().iter().any(|e| e.any(&mut |x| matches!(x, Expr::Load(l) if l.buf == b)))
                }
            });
            if let Some(copy) = copy {
                return Err(self.err(
                    format!("`{cname}` already reads `{tensor}` through its copy `{}`", copy.name),
                    Some(format!("cache_read a tensor once per consumer; schedule `{}` instead", copy.name)),
                ));
            }
            return Err(self.err(format!("`{cname}` does not read `{tensor}`"), help));
        }
        self.check_fresh(name)?;
        let decl = self.tensors[src.0 as usize].clone();
        let names: Vec<String> = match decl.kind {
            TensorKind::Stage(s) => {
                let st = &self.stages[s.0 as usize];
                st.spatial.iter().map(|a| st.axes[*a].name.clone()).collect()
            }
            TensorKind::Input(_) => (0..decl.shape.len()).map(|i| format!("ax{i}")).collect(),
        };
        let mut axes = vec![];
        for n in &names {
            let var = self.vars.add_index(n.clone());
            axes.push(Axis { name: n.clone(), var, reduce: false, kind: ForKind::Serial, consumed: false });
        }
        let body = Body::Pure(Expr::load(src, axes.iter().map(|a| Expr::Var(a.var)), decl.dtype));
        let spatial = (0..axes.len()).collect();
        let new = self.add_stage(
            name.to_string(),
            TensorDecl { name: name.to_string(), ..decl.clone() },
            body,
            axes,
            spatial,
            vec![],
            StageKind::CacheRead,
            scope,
        );
        let nbuf = self.stages[new].buf;
        let redirect = |e: &Expr| {
            e.rewrite(&mut |x| match x {
                Expr::Load(l) if l.buf == src => Some(Expr::load(nbuf, l.idx.iter().cloned(), l.dtype)),
                _ => None,
            })
        };
        self.stages[c].body = self.stages[c].body.map(&mut |e| redirect(e));
        Ok(StageRef(new as u32))
    }

    /// `stage.cache_write(scope)` with a generated name.
    pub fn cache_write(&mut self, s: StageRef, scope: Scope) -> Result<StageRef> {
        let name = format!("{}.{}", self.stage_name(s)?, scope.name());
        self.cache_write_named(s, scope, &name)
    }

    /// `let c_l = c.cache_write(local)`: compute `c` into a buffer in
    /// `scope` (stage `c_l`, with `c`'s loops and reduction), and make `c`
    /// a copy of it. Must come before other primitives on `c`.
    pub fn cache_write_named(&mut self, s: StageRef, scope: Scope, name: &str) -> Result<StageRef> {
        let si = self.stage_index(s)?;
        if self.stages[si].scheduled {
            return Err(self.err(
                format!("cache_write on `{}` after other primitives on its loops", self.stages[si].name),
                Some("call cache_write first, then schedule both stages".into()),
            ));
        }
        self.check_fresh(name)?;
        let old = self.stages[si].clone();
        // Fresh variables for the new stage, named like the old ones.
        let mut axes = vec![];
        let mut map: Vec<(crate::expr::VarId, Var)> = vec![];
        for a in &old.axes {
            let var = self.vars.add_index(a.name.clone());
            map.push((a.var.id, var));
            axes.push(Axis { var, ..a.clone() });
        }
        let renamed = |v: Var| map.iter().find(|(x, _)| *x == v.id).map_or(v, |(_, n)| *n);
        let sub = |e: &Expr| e.subst(&|v| map.iter().find(|(x, _)| *x == v).map(|(_, n)| Expr::Var(*n)));
        let body = match &old.body {
            Body::Pure(e) => Body::Pure(sub(e)),
            Body::Reduce(r) => Body::Reduce(Reduction {
                op: r.op,
                axes: r
                    .axes
                    .iter()
                    .map(|a| ReduceAxis { var: renamed(a.var), lo: a.lo.clone(), hi: a.hi.clone() })
                    .collect(),
                value: sub(&r.value),
            }),
        };
        let decl = self.tensors[old.buf.0 as usize].clone();
        let new = self.add_stage(
            name.to_string(),
            TensorDecl { name: name.to_string(), ..decl.clone() },
            body,
            axes,
            old.spatial.clone(),
            old.reduce.clone(),
            StageKind::CacheWrite,
            scope,
        );
        // The same loops as the stage (axes are copied one for one): a stage
        // that is already a copy (a second cache_write) has no reduction loops.
        self.stages[new].leaves = old.leaves.clone();
        let nbuf = self.stages[new].buf;
        let st = &mut self.stages[si];
        st.body = Body::Pure(Expr::load(nbuf, st.spatial.iter().map(|a| Expr::Var(st.axes[*a].var)), decl.dtype));
        st.leaves.retain(|a| !st.axes[*a].reduce);
        st.reduce.clear();
        Ok(StageRef(new as u32))
    }
}

impl fmt::Display for Schedule {
    /// Lists each stage with its loops, their kinds and where it is computed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for st in &self.stages {
            write!(f, "{}:", st.name)?;
            for l in &st.leaves {
                let a = &st.axes[*l];
                write!(f, " {}", a.name)?;
                match a.kind {
                    ForKind::Serial => {}
                    ForKind::Bound(t) => write!(f, "@{}", t.name())?,
                    k => write!(f, "@{k:?}")?,
                }
            }
            match &st.attach {
                Attach::Root => {}
                Attach::Inline => f.write_str(" (inline)")?,
                Attach::At { stage, axis, .. } => {
                    write!(f, " (at {}.{})", self.stages[*stage].name, self.stages[*stage].axes[*axis].name)?
                }
            }
            if st.scope != Scope::Global {
                write!(f, " [{}]", st.scope.name())?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Is stage `r` computed inside loop `axis` of stage `t`?
pub(crate) fn within(stages: &[SStage], r: usize, t: usize, axis: usize) -> bool {
    if r == t {
        return true;
    }
    let Attach::At { stage, axis: a, .. } = stages[r].attach else { return false };
    if stage == t {
        let pos = |x: usize| stages[t].leaves.iter().position(|l| *l == x);
        return matches!((pos(a), pos(axis)), (Some(pa), Some(px)) if pa >= px);
    }
    within(stages, stage, t, axis)
}
