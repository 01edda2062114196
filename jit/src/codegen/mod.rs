//! Lowered IR → Cranelift IR.
//!
//! One [`Gen`] per generated function: the kernel's entry, and one
//! outlined function per parallel loop (compiled from a work list in
//! [`ModState`], so outlining nests naturally). Every value of the
//! language lives in a Cranelift value of its *compute type* ([`cty`]):
//! `bool` is an `i8` 0/1, unsigned integers share the signed types (the
//! operations pick signed or unsigned forms), and `f16`/`bf16` are `f32`
//! values that are always exactly representable in the narrow type — each
//! arithmetic result is rounded back, as SPEC prescribes.
//!
//! Semantics that Cranelift's instructions do not have are built here:
//! floor division and remainder without traps, NaN-ignoring `min`/`max`,
//! `round` half away from zero, saturating casts to narrow integers. Loads
//! and stores are never checked: the bounds proof ran before any call.

use std::collections::{HashMap, HashSet};

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{self, Type};
use cranelift_codegen::ir::{
    AbiParam, Block, BlockArg, FuncRef, InstBuilder, MemFlagsData, Signature, StackSlotData, StackSlotKind, Value,
};
use cranelift_frontend::{FunctionBuilder, Variable};
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Linkage, Module};
use texpr_dsl::{
    BinOp, BufId, BufKind, Builtin, CmpOp, DType, Expr, For, ForKind, LoweredFunc, Scalar, Stmt, UnOp, Var, VarId,
};

mod loops;
pub(crate) mod math;
mod memory;
mod parallel;
mod scalar;
pub(crate) mod vector;

use crate::analysis::{self, MAX_UNROLL, MAX_VECTOR, Promoted};
use crate::error::{CgResult, cg_err, cranelift_err};

/// Largest temporary placed on the stack (bytes); larger ones go to the heap.
const MAX_STACK_BUF: i64 = 16 * 1024;
/// Total stack budget for temporaries per generated function (bytes).
const MAX_STACK_TOTAL: i64 = 64 * 1024;
/// Largest temporary zeroed by inline stores (bytes); larger ones are
/// zeroed by a `memset` call.
const ZERO_INLINE: i64 = 1024;

/// The type a value of `t` is computed in.
pub(crate) fn cty(t: DType) -> Type {
    match t {
        DType::Bool | DType::I8 | DType::U8 => types::I8,
        DType::I16 | DType::U16 => types::I16,
        DType::I32 | DType::U32 => types::I32,
        DType::I64 | DType::U64 => types::I64,
        DType::F16 | DType::BF16 | DType::F32 => types::F32,
        DType::F64 => types::F64,
    }
}

/// The type a value of `t` is stored as.
pub(crate) fn mty(t: DType) -> Type {
    match t {
        DType::F16 | DType::BF16 => types::I16,
        t => cty(t),
    }
}

fn is_half(t: DType) -> bool {
    matches!(t, DType::F16 | DType::BF16)
}

/// What an outlined parallel loop captures, slot by slot after the three
/// pointer slots (buffers, dims, params).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cap {
    /// A temporary's base pointer, and whether it is frozen (no store
    /// follows in its allocation) where the loop is outlined: loads in the
    /// outlined body are then `readonly + can_move` as they would be
    /// inline (a packed weight tile read by a parallel loop nest).
    Buf(BufId, bool),
    Var(Var),
    /// A variable whose value is known at compile time where the loop is
    /// outlined (a `let` of a constant): bound as the same constant inside,
    /// so what it indexes stays decided (a register buffer's element).
    /// Its slot is unused.
    Const(VarId, Scalar),
}

/// A parallel loop waiting to be generated as its own function.
pub(crate) struct Job<'a> {
    pub id: FuncId,
    pub name: String,
    pub lp: &'a For,
    pub caps: Vec<Cap>,
}

/// Module-wide state shared by the functions of one kernel.
pub(crate) struct ModState<'a> {
    pub module: JITModule,
    pub f: &'a LoweredFunc,
    pub jobs: Vec<Job<'a>>,
    pub promoted: HashMap<BufId, Promoted>,
    /// Float temporaries that never hold NaN ([`analysis::never_nan`]).
    pub never_nan: HashSet<BufId>,
    /// Float temporaries that never hold `-0.0` ([`analysis::no_neg_zero`]).
    pub no_neg_zero: HashSet<BufId>,
    /// `max`/`min` accumulators updated without `+ 0.0`
    /// ([`analysis::lazy_min_max`]).
    pub lazy_min_max: HashSet<BufId>,
    imports: HashMap<&'static str, FuncId>,
    next: u32,
}

impl<'a> ModState<'a> {
    pub fn new(module: JITModule, f: &'a LoweredFunc) -> ModState<'a> {
        let lazy = analysis::lazy_min_max(f);
        ModState {
            module,
            f,
            jobs: vec![],
            promoted: analysis::promotable(f),
            never_nan: analysis::never_nan(f),
            no_neg_zero: analysis::no_neg_zero(f, &lazy),
            lazy_min_max: lazy,
            imports: HashMap::new(),
            next: 0,
        }
    }

    pub fn signature(&self, params: &[Type], rets: &[Type]) -> Signature {
        let mut s = self.module.make_signature();
        s.params.extend(params.iter().map(|t| AbiParam::new(*t)));
        s.returns.extend(rets.iter().map(|t| AbiParam::new(*t)));
        s
    }

    /// A fresh local function name.
    pub fn fresh_name(&mut self, what: &str) -> String {
        self.next += 1;
        format!("{}_{what}{}", sanitize(&self.f.name), self.next)
    }

    fn import(&mut self, name: &'static str, params: &[Type], rets: &[Type]) -> CgResult<FuncId> {
        if let Some(id) = self.imports.get(name) {
            return Ok(*id);
        }
        let sig = self.signature(params, rets);
        let id = self
            .module
            .declare_function(name, Linkage::Import, &sig)
            .map_err(|e| cranelift_err(format!("declaring `{name}`: {e}")))?;
        self.imports.insert(name, id);
        Ok(id)
    }
}

/// A symbol-safe version of a name.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// How a variable is bound where it is used.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Bind {
    Val(Value),
    Const(Scalar),
}

/// Where a buffer's elements are.
#[derive(Clone, Debug)]
pub(crate) enum Loc {
    /// In memory at this base address.
    Mem(Value),
    /// In registers: one variable per group of `group` elements (a vector
    /// variable when `group > 1`).
    Regs { vars: Vec<Variable>, group: u32 },
}

/// An estimate of work (see [`Gen::work`]), folded while it is constant.
#[derive(Clone, Copy)]
enum Work {
    Const(i64),
    Dyn(Value),
}

/// The generator of one function.
pub(crate) struct Gen<'a, 'm, 'b> {
    pub f: &'a LoweredFunc,
    pub m: &'m mut ModState<'a>,
    pub b: FunctionBuilder<'b>,
    pub ptr: Type,
    pub bufs_ptr: Value,
    pub dims_ptr: Value,
    pub params_ptr: Value,
    pub dims: Vec<Value>,
    pub params: Vec<Value>,
    pub env: HashMap<VarId, Bind>,
    /// The loop depth at which each variable's value is fixed (serial loop
    /// variables: their loop's depth; `let`s: the deepest variable they
    /// use). Absent: treated as varying in the innermost loop.
    pub depth: HashMap<VarId, u32>,
    /// How many serial loops enclose the code being generated.
    pub loop_depth: u32,
    /// Variables of the unrolled loops inside the innermost serial loop
    /// around the code being generated.
    pub unrolled: Vec<VarId>,
    pub locs: Vec<Option<Loc>>,
    /// Results of the fused multiply-adds emitted (see `Vec_::expr`).
    pub fma_results: HashSet<Value>,
    refs: HashMap<&'static str, FuncRef>,
    stack_used: i64,
    fail: Option<Block>,
    /// Heap temporaries allocated once before the serial loop that
    /// contains them (see [`Gen::hoisted_allocs`]): pointer and byte size.
    prealloc: HashMap<BufId, (Value, Value)>,
    /// Heap temporaries that are only read from here on (see
    /// [`Gen::alloc`]): loaded `readonly + can_move`.
    frozen: HashSet<BufId>,
    /// Sequences in which temporaries freeze: the sequence's address, the
    /// buffer, and the index of the last element that stores to it.
    freeze_at: HashMap<*const Stmt, Vec<(BufId, usize)>>,
    /// How many conditions enclose the code being generated
    /// ([`Gen::guarded`]; loads there are not `can_move`).
    guards: u32,
}

impl<'a, 'm, 'b> Gen<'a, 'm, 'b> {
    /// Starts a function whose entry block has been created and switched
    /// to; loads every input/output pointer, dim and parameter there (so the
    /// values dominate every use).
    pub fn new(
        m: &'m mut ModState<'a>,
        b: FunctionBuilder<'b>,
        bufs_ptr: Value,
        dims_ptr: Value,
        params_ptr: Value,
    ) -> Self {
        let f = m.f;
        let ptr = m.module.target_config().pointer_type();
        let mut g = Gen {
            f,
            m,
            b,
            ptr,
            bufs_ptr,
            dims_ptr,
            params_ptr,
            dims: vec![],
            params: vec![],
            env: HashMap::new(),
            depth: HashMap::new(),
            loop_depth: 0,
            unrolled: vec![],
            locs: vec![None; f.buffers.len()],
            fma_results: HashSet::new(),
            refs: HashMap::new(),
            stack_used: 0,
            fail: None,
            prealloc: HashMap::new(),
            frozen: HashSet::new(),
            freeze_at: HashMap::new(),
            guards: 0,
        };
        g.prologue();
        g
    }

    /// Generates `f` as code that runs only under a condition (an arm of
    /// an `if`): its loads stay below the branch ([`Gen::mem_flags`]).
    pub fn guarded<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        self.guards += 1;
        let r = f(self);
        self.guards -= 1;
        r
    }

    fn prologue(&mut self) {
        let ro = MemFlagsData::trusted().with_readonly().with_can_move();
        let n_in = self.f.inputs().len() as i32;
        for (i, buf) in self.f.buffers.iter().enumerate() {
            let slot = match buf.kind {
                BufKind::Input(k) => k as i32,
                BufKind::Output(k) => n_in + k as i32,
                BufKind::Temp => continue,
            };
            let p = self.b.ins().load(self.ptr, ro, self.bufs_ptr, slot * 8);
            self.locs[i] = Some(Loc::Mem(p));
        }
        for d in 0..self.f.dims.len() {
            let v = self.b.ins().load(types::I64, ro, self.dims_ptr, d as i32 * 8);
            self.dims.push(v);
        }
        for (p, decl) in self.f.params.iter().enumerate() {
            let v = self.b.ins().load(mty(decl.dtype), ro, self.params_ptr, p as i32 * 8);
            let v = self.mem_to_value(decl.dtype, v);
            self.params.push(v);
        }
    }

    // ---- helpers -------------------------------------------------------

    /// Calls an imported runtime function.
    pub fn call(
        &mut self,
        name: &'static str,
        params: &[Type],
        rets: &[Type],
        args: &[Value],
    ) -> CgResult<Option<Value>> {
        let r = match self.refs.get(name) {
            Some(r) => *r,
            None => {
                let id = self.m.import(name, params, rets)?;
                let r = self.m.module.declare_func_in_func(id, self.b.func);
                self.refs.insert(name, r);
                r
            }
        };
        let inst = self.b.ins().call(r, args);
        Ok(self.b.inst_results(inst).first().copied())
    }

    fn call1(&mut self, name: &'static str, params: &[Type], ret: Type, args: &[Value]) -> CgResult<Value> {
        self.call(name, params, &[ret], args)?.ok_or_else(|| cg_err(format!("`{name}` returned nothing")))
    }

    /// A declared function's reference in this function.
    pub fn local_ref(&mut self, id: FuncId) -> FuncRef {
        self.m.module.declare_func_in_func(id, self.b.func)
    }

    /// The block that returns status 1 (allocation failure).
    pub fn fail_block(&mut self) -> Block {
        if let Some(b) = self.fail {
            return b;
        }
        let blk = self.b.create_block();
        self.b.set_cold_block(blk);
        self.fail = Some(blk);
        blk
    }

    /// Fills the failure block (after the body, whose last block is filled).
    pub fn finish_fail(&mut self) {
        if let Some(blk) = self.fail {
            self.b.switch_to_block(blk);
            let one = self.b.ins().iconst(types::I32, 1);
            self.b.ins().return_(&[one]);
        }
    }

    // ---- expressions ---------------------------------------------------

    // ---- statements ----------------------------------------------------
}

/// The sequence at the bottom of an allocation's body (through nested
/// allocations) and the index of its last element that stores to `buf`.
fn freeze_point(body: &Stmt, buf: BufId) -> Option<(*const Stmt, usize)> {
    let mut cur = body;
    while let Stmt::Alloc(_, inner) = cur {
        cur = inner;
    }
    let Stmt::Seq(v) = cur else { return None };
    let stores = |s: &Stmt| {
        let mut any = false;
        s.visit(&mut |x| {
            if let Stmt::Store(st) = x
                && st.buf == buf
            {
                any = true;
            }
        });
        any
    };
    let last = v.iter().rposition(stores)?;
    (last + 1 < v.len()).then_some((cur as *const Stmt, last))
}

fn has_call(e: &Expr) -> bool {
    e.any(&mut |x| matches!(x, Expr::Call(..)) || matches!(x, Expr::Binary(BinOp::Rem, a, _) if a.dtype().is_float()))
}
