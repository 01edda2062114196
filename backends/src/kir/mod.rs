//! The GPU kernel IR: a function lowered for the GPU is a launch sequence
//! of kernels ([`GpuFunc`]), each a small statement tree ([`KStmt`]) over
//! the loop-nest IR's expressions, with its launch sizes, its per-block and
//! per-thread memory and its arguments. `gpu_lower` produces it, the C
//! writer prints it, the runtimes launch it; [`verify`] checks what they
//! rely on.

mod verify;

use std::collections::BTreeMap;

use texpr_dsl::{BufId, Expr, LoweredFunc, Var, VarId};

pub use verify::verify;
/// Shared memory a kernel may use for cooperative tiles, in bytes (the
/// static limit of CUDA; OpenCL devices have at least 32 KiB, PoCL more).
pub const SHARED_BUDGET: i64 = 48 * 1024;

/// A private array longer than this many elements lives in scratch memory.
pub const PRIVATE_MAX: i64 = 1024;

/// Most threads a block has in simple mode.
pub const MAX_BLOCK: i64 = 1024;

/// A hardware index, read through a synthetic `i64` variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hw {
    /// The thread's index in its block along an axis (0 = x).
    Thread(usize),
    /// The block's index along an axis.
    Block(usize),
    /// Threads per block along an axis.
    BlockDim(usize),
    /// Blocks along an axis.
    GridDim(usize),
    /// The thread's flat index in its block.
    FlatThread,
    /// Threads per block.
    BlockSize,
    /// The thread's flat index in the grid (for per-thread scratch).
    GlobalThread,
    /// `block.x * block_dim.x + thread.x`.
    GlobalX,
    /// `grid_dim.x * block_dim.x`.
    GlobalSizeX,
}

impl Hw {
    /// The name of the variable that holds it.
    pub fn var_name(self) -> &'static str {
        match self {
            Hw::Thread(a) => ["thread_x", "thread_y", "thread_z"][a.min(2)],
            Hw::Block(a) => ["block_x", "block_y", "block_z"][a.min(2)],
            Hw::BlockDim(a) => ["nthreads_x", "nthreads_y", "nthreads_z"][a.min(2)],
            Hw::GridDim(a) => ["nblocks_x", "nblocks_y", "nblocks_z"][a.min(2)],
            Hw::FlatThread => "thread_id",
            Hw::BlockSize => "block_size",
            Hw::GlobalThread => "global_thread",
            Hw::GlobalX => "global_x",
            Hw::GlobalSizeX => "global_size_x",
        }
    }
}

/// A statement of a kernel.
#[derive(Clone, Debug, PartialEq)]
pub enum KStmt {
    /// Statements in order.
    Seq(Vec<KStmt>),
    /// `for (var = start; var < end; var += step)`; `step` 1 when `None`.
    For {
        /// The loop variable.
        var: Var,
        /// First value.
        start: Expr,
        /// Bound (exclusive).
        end: Expr,
        /// Increment (`None`: 1).
        step: Option<Expr>,
        /// Asks the compiler to unroll.
        unroll: bool,
        /// The body.
        body: Box<KStmt>,
    },
    /// `const T var = value;`, live to the end of the enclosing block.
    Let {
        /// The variable.
        var: Var,
        /// Its value.
        value: Expr,
    },
    /// A conditional.
    If {
        /// The condition.
        cond: Expr,
        /// Runs when true.
        then: Box<KStmt>,
        /// Runs when false.
        els: Option<Box<KStmt>>,
    },
    /// `buf[idx] = value`.
    Store {
        /// The buffer.
        buf: BufId,
        /// The flat index.
        idx: Expr,
        /// The value.
        value: Expr,
    },
    /// Every thread of the block waits here; shared memory is then consistent.
    Barrier,
    /// Declares a per-thread array of a constant length.
    Private {
        /// The buffer.
        buf: BufId,
        /// Its length (at least 1).
        len: i64,
    },
    /// Points a per-thread buffer at this thread's slice of scratch memory
    /// (kernel arguments `<buf>_scratch` and `<buf>_len`).
    Scratch {
        /// The buffer.
        buf: BufId,
    },
    /// Nothing.
    Nop,
}

impl KStmt {
    /// `items` in order, nested sequences spliced and `Nop`s dropped.
    pub fn seq(items: Vec<KStmt>) -> KStmt {
        let mut out = vec![];
        for s in items {
            match s {
                KStmt::Seq(v) => out.extend(v),
                KStmt::Nop => {}
                s => out.push(s),
            }
        }
        match out.len() {
            0 => KStmt::Nop,
            1 => out.pop().unwrap_or(KStmt::Nop),
            _ => KStmt::Seq(out),
        }
    }

    /// Calls `f` on every statement, parents first.
    pub fn visit(&self, f: &mut impl FnMut(&KStmt)) {
        f(self);
        match self {
            KStmt::Seq(v) => v.iter().for_each(|s| s.visit(f)),
            KStmt::For { body, .. } => body.visit(f),
            KStmt::If { then, els, .. } => {
                then.visit(f);
                if let Some(e) = els {
                    e.visit(f);
                }
            }
            _ => {}
        }
    }

    /// Calls `f` on every expression the statement holds.
    pub fn visit_exprs(&self, f: &mut impl FnMut(&Expr)) {
        self.visit(&mut |s| match s {
            KStmt::For { start, end, step, .. } => {
                f(start);
                f(end);
                if let Some(s) = step {
                    f(s);
                }
            }
            KStmt::Let { value, .. } => f(value),
            KStmt::If { cond, .. } => f(cond),
            KStmt::Store { idx, value, .. } => {
                f(idx);
                f(value);
            }
            _ => {}
        });
    }
}

/// What a value of a kernel's launch size depends on: the loops and lets
/// around the loop whose extent it is.
#[derive(Clone, Debug, PartialEq)]
pub enum Ctx {
    /// `for var in min..min + extent`.
    Loop(VarId, Expr, Expr),
    /// `let var = value`.
    Let(VarId, Expr),
}

/// An `i64` expression evaluated (as an upper bound) at launch.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    /// The loops and lets around it, outermost first.
    pub chain: Vec<Ctx>,
    /// The value.
    pub value: Expr,
    /// The launch size is `ceil(value / per)`.
    pub per: i64,
}

/// The size of one launch dimension.
#[derive(Clone, Debug, PartialEq)]
pub enum Launch {
    /// Exactly this many.
    Fixed(i64),
    /// The largest upper bound of these (at least 1; any size is correct,
    /// this one leaves no thread idle).
    Fit(Vec<Bound>),
}

/// A scratch allocation of a kernel: per-thread slices of one buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct ScratchBuf {
    /// The temporary.
    pub buf: BufId,
    /// Elements per thread: the largest upper bound of these, taken at
    /// launch (one per `alloc` of the buffer in the kernel).
    pub len: Vec<Bound>,
}

/// An argument of a kernel, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KArg {
    /// A tensor input, output or root temporary.
    Buf(BufId),
    /// The scratch memory of a private buffer, then its per-thread length.
    Scratch(BufId),
    /// A symbolic dim (`i64`).
    Dim(u32),
    /// A scalar parameter.
    Param(u32),
}

/// One kernel of the launch sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuKernel {
    /// Its name (a C identifier, unique in the program).
    pub name: String,
    /// The body.
    pub body: KStmt,
    /// Cooperative buffers, declared once per block.
    pub shared: Vec<BufId>,
    /// Private buffers in scratch memory.
    pub scratch: Vec<ScratchBuf>,
    /// Blocks per grid, per axis.
    pub grid: [Launch; 3],
    /// Threads per block, per axis.
    pub block: [Launch; 3],
    /// The synthetic variables standing for hardware indices.
    pub hw: BTreeMap<VarId, Hw>,
    /// The arguments, in order.
    pub args: Vec<KArg>,
}

/// A function lowered for the GPU.
#[derive(Clone, Debug)]
pub struct GpuFunc {
    /// The flat function (its variable table extended with the kernels'
    /// synthetic variables).
    pub func: LoweredFunc,
    /// The kernels, in launch order.
    pub kernels: Vec<GpuKernel>,
    /// Root temporaries: device buffers shared by the kernels.
    pub temps: Vec<BufId>,
}
