//! The lowered loop-nest IR: what backends consume and the interpreter runs.

use std::fmt;

use smallvec::SmallVec;

use crate::dtype::DType;
use crate::expr::{BufId, Expr, Names, Show, Var, VarId, VarTable};
use crate::func::ParamDecl;
use crate::target::Target;

/// A GPU grid axis a loop can be bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum ThreadAxis {
    BlockX,
    BlockY,
    BlockZ,
    ThreadX,
    ThreadY,
    ThreadZ,
}

impl ThreadAxis {
    /// Every axis.
    pub const ALL: [ThreadAxis; 6] = [
        ThreadAxis::BlockX,
        ThreadAxis::BlockY,
        ThreadAxis::BlockZ,
        ThreadAxis::ThreadX,
        ThreadAxis::ThreadY,
        ThreadAxis::ThreadZ,
    ];

    /// `block.x`, `thread.y`, ...
    pub fn name(self) -> &'static str {
        match self {
            ThreadAxis::BlockX => "block.x",
            ThreadAxis::BlockY => "block.y",
            ThreadAxis::BlockZ => "block.z",
            ThreadAxis::ThreadX => "thread.x",
            ThreadAxis::ThreadY => "thread.y",
            ThreadAxis::ThreadZ => "thread.z",
        }
    }

    /// Parses `block.x` etc.
    pub fn from_name(s: &str) -> Option<ThreadAxis> {
        ThreadAxis::ALL.into_iter().find(|a| a.name() == s)
    }

    /// `true` for `thread.*`.
    pub fn is_thread(self) -> bool {
        matches!(self, ThreadAxis::ThreadX | ThreadAxis::ThreadY | ThreadAxis::ThreadZ)
    }

    /// 0 for x, 1 for y, 2 for z.
    pub fn dim(self) -> usize {
        match self {
            ThreadAxis::BlockX | ThreadAxis::ThreadX => 0,
            ThreadAxis::BlockY | ThreadAxis::ThreadY => 1,
            ThreadAxis::BlockZ | ThreadAxis::ThreadZ => 2,
        }
    }
}

/// How a loop runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ForKind {
    /// In order.
    Serial,
    /// Iterations on several threads (CPU).
    Parallel,
    /// Iterations as SIMD lanes; the extent is a constant.
    Vectorized,
    /// Fully unrolled; the extent is a constant.
    Unrolled,
    /// Bound to a GPU grid axis.
    Bound(ThreadAxis),
}

impl ForKind {
    fn keyword(self) -> String {
        match self {
            ForKind::Serial => "for".into(),
            ForKind::Parallel => "parallel for".into(),
            ForKind::Vectorized => "vectorized for".into(),
            ForKind::Unrolled => "unrolled for".into(),
            ForKind::Bound(a) => format!("{} for", a.name()),
        }
    }
}

/// Where a buffer lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Main memory (heap on CPUs, global memory on GPUs).
    Global,
    /// Per-thread memory: registers or stack.
    Local,
    /// GPU shared (OpenCL `__local`) memory of a block.
    Shared,
}

impl Scope {
    /// `global`, `local`, `shared`.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Local => "local",
            Scope::Shared => "shared",
        }
    }
}

/// What a buffer is to the function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BufKind {
    /// The `n`-th tensor input.
    Input(u32),
    /// The `n`-th output.
    Output(u32),
    /// A temporary allocated by an [`Stmt::Alloc`].
    Temp,
}

/// A buffer of the lowered function.
#[derive(Clone, Debug, PartialEq)]
pub struct Buffer {
    /// Name (the stage's or tensor's).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Allocated extents, row-major; `i64` expressions of dims (and, for
    /// temporaries, of enclosing loop variables).
    pub shape: Vec<Expr>,
    /// Input, output or temporary.
    pub kind: BufKind,
    /// Memory scope.
    pub scope: Scope,
}

impl Buffer {
    /// The number of elements if the shape is constant.
    pub fn const_len(&self) -> Option<i64> {
        self.shape.iter().try_fold(1i64, |acc, d| acc.checked_mul(d.as_int()?))
    }
}

/// `for var in min..min + extent { body }`.
#[derive(Clone, Debug, PartialEq)]
pub struct For {
    /// The loop variable (`i64`).
    pub var: Var,
    /// First value.
    pub min: Expr,
    /// Number of iterations (none if ≤ 0).
    pub extent: Expr,
    /// How the loop runs.
    pub kind: ForKind,
    /// The body.
    pub body: Stmt,
}

/// `if cond { then } else { els }`.
#[derive(Clone, Debug, PartialEq)]
pub struct If {
    /// A `bool` condition.
    pub cond: Expr,
    /// Runs when true.
    pub then: Stmt,
    /// Runs when false.
    pub els: Option<Stmt>,
}

/// `buf[idx...] = value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Store {
    /// The buffer written.
    pub buf: BufId,
    /// One index per dim (one flat index after flattening).
    pub idx: SmallVec<[Expr; 4]>,
    /// The value.
    pub value: Expr,
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// A loop.
    For(Box<For>),
    /// Statements in order.
    Seq(Vec<Stmt>),
    /// `let var = value; body`.
    Let(Box<(Var, Expr, Stmt)>),
    /// A conditional.
    If(Box<If>),
    /// A store.
    Store(Box<Store>),
    /// Allocates a temporary buffer for the duration of `body`.
    Alloc(BufId, Box<Stmt>),
    /// Does nothing.
    Nop,
}

impl Stmt {
    /// A sequence, flattening nested sequences and dropping no-ops.
    pub fn seq(items: impl IntoIterator<Item = Stmt>) -> Stmt {
        let mut out = vec![];
        for s in items {
            match s {
                Stmt::Seq(v) => out.extend(v),
                Stmt::Nop => {}
                s => out.push(s),
            }
        }
        match out.len() {
            0 => Stmt::Nop,
            1 => out.pop().unwrap_or(Stmt::Nop),
            _ => Stmt::Seq(out),
        }
    }

    /// A loop.
    pub fn for_(var: Var, min: Expr, extent: Expr, kind: ForKind, body: Stmt) -> Stmt {
        Stmt::For(Box::new(For { var, min, extent, kind, body }))
    }

    /// A conditional without else.
    pub fn if_(cond: Expr, then: Stmt) -> Stmt {
        Stmt::If(Box::new(If { cond, then, els: None }))
    }

    /// A store.
    pub fn store(buf: BufId, idx: impl IntoIterator<Item = Expr>, value: Expr) -> Stmt {
        Stmt::Store(Box::new(Store { buf, idx: idx.into_iter().collect(), value }))
    }

    /// Rewrites every expression (not recursing into them: `f` decides).
    pub fn map_exprs(&self, f: &mut impl FnMut(&Expr) -> Expr) -> Stmt {
        match self {
            Stmt::For(l) => Stmt::for_(l.var, f(&l.min), f(&l.extent), l.kind, l.body.map_exprs(f)),
            Stmt::Seq(v) => Stmt::Seq(v.iter().map(|s| s.map_exprs(f)).collect()),
            Stmt::Let(b) => Stmt::Let(Box::new((b.0, f(&b.1), b.2.map_exprs(f)))),
            Stmt::If(i) => Stmt::If(Box::new(If {
                cond: f(&i.cond),
                then: i.then.map_exprs(f),
                els: i.els.as_ref().map(|e| e.map_exprs(f)),
            })),
            Stmt::Store(s) => Stmt::Store(Box::new(Store {
                buf: s.buf,
                idx: s.idx.iter().map(&mut *f).collect(),
                value: f(&s.value),
            })),
            Stmt::Alloc(b, body) => Stmt::Alloc(*b, Box::new(body.map_exprs(f))),
            Stmt::Nop => Stmt::Nop,
        }
    }

    /// Calls `f` on every statement, parents first.
    pub fn visit(&self, f: &mut impl FnMut(&Stmt)) {
        f(self);
        match self {
            Stmt::For(l) => l.body.visit(f),
            Stmt::Seq(v) => v.iter().for_each(|s| s.visit(f)),
            Stmt::Let(b) => b.2.visit(f),
            Stmt::If(i) => {
                i.then.visit(f);
                if let Some(e) = &i.els {
                    e.visit(f);
                }
            }
            Stmt::Alloc(_, b) => b.visit(f),
            Stmt::Store(_) | Stmt::Nop => {}
        }
    }

    /// Calls `f` on every expression directly held by a statement.
    pub fn visit_exprs(&self, f: &mut impl FnMut(&Expr)) {
        self.visit(&mut |s| match s {
            Stmt::For(l) => {
                f(&l.min);
                f(&l.extent);
            }
            Stmt::Let(b) => f(&b.1),
            Stmt::If(i) => f(&i.cond),
            Stmt::Store(st) => {
                st.idx.iter().for_each(&mut *f);
                f(&st.value);
            }
            _ => {}
        });
    }
}

/// A function after lowering: buffers and one statement.
#[derive(Clone, Debug, PartialEq)]
pub struct LoweredFunc {
    /// The function's name.
    pub name: String,
    /// The target it was lowered for.
    pub target: Target,
    /// Symbolic dims (`i64` arguments, bound from input shapes).
    pub dims: Vec<String>,
    /// Scalar parameters.
    pub params: Vec<ParamDecl>,
    /// Every buffer: inputs, outputs, temporaries.
    pub buffers: Vec<Buffer>,
    /// Variables.
    pub vars: VarTable,
    /// The body.
    pub body: Stmt,
    /// `true` once loads and stores use one flat index.
    pub flat: bool,
}

impl LoweredFunc {
    /// A buffer.
    pub fn buffer(&self, b: BufId) -> &Buffer {
        &self.buffers[b.0 as usize]
    }

    /// Input buffers in input order.
    pub fn inputs(&self) -> Vec<BufId> {
        self.by_kind(|k| matches!(k, BufKind::Input(_)))
    }

    /// Output buffers in output order.
    pub fn outputs(&self) -> Vec<BufId> {
        self.by_kind(|k| matches!(k, BufKind::Output(_)))
    }

    fn by_kind(&self, pred: impl Fn(BufKind) -> bool) -> Vec<BufId> {
        let mut v: Vec<(u32, BufId)> = self
            .buffers
            .iter()
            .enumerate()
            .filter(|(_, b)| pred(b.kind))
            .map(|(i, b)| {
                let n = match b.kind {
                    BufKind::Input(n) | BufKind::Output(n) => n,
                    BufKind::Temp => 0,
                };
                (n, BufId(i as u32))
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, b)| b).collect()
    }

    /// Adds a buffer.
    pub fn add_buffer(&mut self, b: Buffer) -> BufId {
        self.buffers.push(b);
        BufId(self.buffers.len() as u32 - 1)
    }
}

/// Unique display names: a name used by two variables gets a suffix.
pub(crate) struct DisplayNames<'a> {
    f: &'a LoweredFunc,
    vars: Vec<String>,
}

impl<'a> DisplayNames<'a> {
    pub(crate) fn new(f: &'a LoweredFunc) -> DisplayNames<'a> {
        let mut seen: std::collections::HashMap<String, u32> = Default::default();
        // Reserve buffer, dim and param names.
        for b in &f.buffers {
            seen.insert(b.name.clone(), 1);
        }
        for d in &f.dims {
            seen.insert(d.clone(), 1);
        }
        for p in &f.params {
            seen.insert(p.name.clone(), 1);
        }
        let mut vars = vec![];
        for (_, info) in f.vars.iter() {
            let base = info.name.replace('.', "_");
            let n = seen.entry(base.clone()).or_insert(0);
            vars.push(if *n == 0 { base.clone() } else { format!("{base}_{n}") });
            *n += 1;
        }
        DisplayNames { f, vars }
    }
}

impl Names for DisplayNames<'_> {
    fn var(&self, v: VarId) -> String {
        self.vars.get(v.0 as usize).cloned().unwrap_or_else(|| format!("v{}", v.0))
    }
    fn buf(&self, b: BufId) -> String {
        self.f.buffers.get(b.0 as usize).map(|b| b.name.clone()).unwrap_or_else(|| format!("t{}", b.0))
    }
    fn dim(&self, d: u32) -> String {
        self.f.dims.get(d as usize).cloned().unwrap_or_else(|| format!("D{d}"))
    }
    fn param(&self, p: u32) -> String {
        self.f.params.get(p as usize).map(|p| p.name.clone()).unwrap_or_else(|| format!("p{p}"))
    }
}

fn write_stmt(f: &mut fmt::Formatter<'_>, s: &Stmt, n: &DisplayNames<'_>, depth: usize) -> fmt::Result {
    let pad = "    ".repeat(depth);
    match s {
        Stmt::For(l) => {
            write!(f, "{pad}{} {} in ", l.kind.keyword(), n.var(l.var.id))?;
            if l.min.as_int() == Some(0) {
                writeln!(f, "0..{} {{", Show(&l.extent, n))?;
            } else {
                writeln!(f, "{}..{} + {} {{", Show(&l.min, n), Show(&l.min, n), Show(&l.extent, n))?;
            }
            write_stmt(f, &l.body, n, depth + 1)?;
            writeln!(f, "{pad}}}")
        }
        Stmt::Seq(v) => v.iter().try_for_each(|s| write_stmt(f, s, n, depth)),
        Stmt::Let(b) => {
            writeln!(f, "{pad}let {} = {};", n.var(b.0.id), Show(&b.1, n))?;
            write_stmt(f, &b.2, n, depth)
        }
        Stmt::If(i) => {
            writeln!(f, "{pad}if {} {{", Show(&i.cond, n))?;
            write_stmt(f, &i.then, n, depth + 1)?;
            if let Some(e) = &i.els {
                writeln!(f, "{pad}}} else {{")?;
                write_stmt(f, e, n, depth + 1)?;
            }
            writeln!(f, "{pad}}}")
        }
        Stmt::Store(st) => {
            write!(f, "{pad}{}[", n.buf(st.buf))?;
            for (i, x) in st.idx.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{}", Show(x, n))?;
            }
            writeln!(f, "] = {};", Show(&st.value, n))
        }
        Stmt::Alloc(b, body) => {
            let buf = n.f.buffer(*b);
            write!(f, "{pad}alloc {} {}: ", buf.scope.name(), buf.name)?;
            crate::func::write_type(f, buf.dtype, &buf.shape, n)?;
            f.write_str("\n")?;
            write_stmt(f, body, n, depth)
        }
        Stmt::Nop => Ok(()),
    }
}

impl fmt::Display for LoweredFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = DisplayNames::new(self);
        write!(f, "// {} lowered for {}\nfn {}(", self.name, self.target, self.name)?;
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| -> fmt::Result {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            Ok(())
        };
        for b in self.inputs() {
            sep(f)?;
            let buf = self.buffer(b);
            write!(f, "{}: ", buf.name)?;
            crate::func::write_type(f, buf.dtype, &buf.shape, &n)?;
        }
        for p in &self.params {
            sep(f)?;
            write!(f, "{}: {}", p.name, p.dtype)?;
        }
        for b in self.outputs() {
            sep(f)?;
            let buf = self.buffer(b);
            write!(f, "{}: &mut ", buf.name)?;
            crate::func::write_type(f, buf.dtype, &buf.shape, &n)?;
        }
        f.write_str(") {\n")?;
        write_stmt(f, &self.body, &n, 1)?;
        f.write_str("}\n")
    }
}

impl Stmt {
    /// Prints a statement with the names of `func`.
    pub fn display<'a>(&'a self, func: &'a LoweredFunc) -> impl fmt::Display + 'a {
        struct D<'a>(&'a Stmt, &'a LoweredFunc);
        impl fmt::Display for D<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_stmt(f, self.0, &DisplayNames::new(self.1), 0)
            }
        }
        D(self, func)
    }
}
