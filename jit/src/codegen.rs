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
        };
        g.prologue();
        g
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

    /// A constant of a type.
    pub fn konst(&mut self, s: Scalar) -> Value {
        let t = s.dtype();
        match t {
            DType::F32 | DType::F16 | DType::BF16 => self.b.ins().f32const(s.as_f64() as f32),
            DType::F64 => self.b.ins().f64const(s.as_f64()),
            _ => self.b.ins().iconst(cty(t), s.bits() as i64),
        }
    }

    /// A 128-bit vector constant (every lane `bits`, `lane_bytes` wide):
    /// from the constant pool, so x86 folds it into the instruction as a
    /// memory operand instead of keeping it in a register.
    pub fn vconst(&mut self, vt: Type, bits: u64) -> Value {
        let lane = (vt.lane_bits() / 8) as usize;
        let mut bytes = Vec::with_capacity(16);
        for _ in 0..16 / lane {
            bytes.extend_from_slice(&bits.to_le_bytes()[..lane]);
        }
        let h = self.b.func.dfg.constants.insert(cranelift_codegen::ir::ConstantData::from(bytes));
        self.b.ins().vconst(vt, h)
    }

    pub fn iconst(&mut self, v: i64) -> Value {
        self.b.ins().iconst(types::I64, v)
    }

    /// Evaluates `e` at compile time if everything it uses is known.
    pub fn const_eval(&self, e: &Expr) -> Option<Scalar> {
        Some(match e {
            Expr::Const(s) => *s,
            Expr::Var(v) => match self.env.get(&v.id)? {
                Bind::Const(s) => *s,
                Bind::Val(_) => return None,
            },
            Expr::Unary(op, a) => Scalar::unary(*op, self.const_eval(a)?),
            Expr::Binary(op, a, b) => Scalar::binary(*op, self.const_eval(a)?, self.const_eval(b)?),
            Expr::Cmp(op, a, b) => Scalar::Bool(Scalar::cmp_op(*op, self.const_eval(a)?, self.const_eval(b)?)),
            Expr::Cast(t, a) => self.const_eval(a)?.cast(*t),
            // Decided by either side (both are pure): a lane's guard
            // `v < 1 && <run-time test>` is false for lanes `v >= 1`, and
            // code under it (which may index a register file past its end)
            // is not generated.
            Expr::And(a, b) => match (self.const_eval(a), self.const_eval(b)) {
                (Some(x), _) | (_, Some(x)) if !x.is_true() => Scalar::Bool(false),
                (Some(x), Some(y)) => Scalar::Bool(x.is_true() && y.is_true()),
                _ => return None,
            },
            Expr::Or(a, b) => match (self.const_eval(a), self.const_eval(b)) {
                (Some(x), _) | (_, Some(x)) if x.is_true() => Scalar::Bool(true),
                (Some(_), Some(_)) => Scalar::Bool(false),
                _ => return None,
            },
            _ => return None,
        })
    }

    /// Converts a loaded value to its compute type.
    pub fn mem_to_value(&mut self, t: DType, v: Value) -> Value {
        match t {
            DType::F16 => {
                let w = self.b.ins().uextend(types::I32, v);
                self.call1("texpr_f16_to_f32", &[types::I32], types::F32, &[w]).unwrap_or(w)
            }
            DType::BF16 => {
                let w = self.b.ins().uextend(types::I32, v);
                let s = self.b.ins().ishl_imm_s(w, 16);
                self.b.ins().bitcast(types::F32, MemFlagsData::new(), s)
            }
            _ => v,
        }
    }

    /// Converts a computed value to its memory type.
    pub fn value_to_mem(&mut self, t: DType, v: Value) -> CgResult<Value> {
        Ok(match t {
            DType::F16 => {
                let h = self.call1("texpr_f32_to_f16", &[types::F32], types::I32, &[v])?;
                self.b.ins().ireduce(types::I16, h)
            }
            DType::BF16 => {
                // The value is exactly a bf16: its high half is the bf16.
                let bits = self.b.ins().bitcast(types::I32, MemFlagsData::new(), v);
                let hi = self.b.ins().ushr_imm_s(bits, 16);
                self.b.ins().ireduce(types::I16, hi)
            }
            _ => v,
        })
    }

    /// Rounds an `f32` result to `f16`/`bf16` precision (kept as `f32`).
    pub fn round_half(&mut self, t: DType, v: Value) -> CgResult<Value> {
        Ok(match t {
            DType::F16 => {
                let h = self.call1("texpr_f32_to_f16", &[types::F32], types::I32, &[v])?;
                self.call1("texpr_f16_to_f32", &[types::I32], types::F32, &[h])?
            }
            DType::BF16 => {
                let h = self.call1("texpr_f32_to_bf16", &[types::F32], types::I32, &[v])?;
                let s = self.b.ins().ishl_imm_s(h, 16);
                self.b.ins().bitcast(types::F32, MemFlagsData::new(), s)
            }
            _ => v,
        })
    }

    /// Rounds an `f64` value to `t` (a float type), as a compute value.
    fn f64_to(&mut self, t: DType, v: Value) -> CgResult<Value> {
        Ok(match t {
            DType::F64 => v,
            DType::F32 => self.b.ins().fdemote(types::F32, v),
            DType::F16 => {
                let h = self.call1("texpr_f64_to_f16", &[types::F64], types::I32, &[v])?;
                self.call1("texpr_f16_to_f32", &[types::I32], types::F32, &[h])?
            }
            _ => {
                let h = self.call1("texpr_f64_to_bf16", &[types::F64], types::I32, &[v])?;
                let s = self.b.ins().ishl_imm_s(h, 16);
                self.b.ins().bitcast(types::F32, MemFlagsData::new(), s)
            }
        })
    }

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
    fn add_terms(&self, e: &Expr, scale: Option<&Expr>, out: &mut Vec<Expr>) {
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

    pub fn mem_flags(&self, buf: BufId) -> MemFlagsData {
        match self.f.buffer(buf).kind {
            BufKind::Input(_) => MemFlagsData::trusted().with_readonly().with_can_move(),
            BufKind::Temp if self.frozen.contains(&buf) => MemFlagsData::trusted().with_readonly().with_can_move(),
            _ => MemFlagsData::trusted(),
        }
    }

    fn loc(&self, buf: BufId) -> CgResult<Loc> {
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

    // ---- expressions ---------------------------------------------------

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

    pub fn expr(&mut self, e: &Expr) -> CgResult<Value> {
        match e {
            Expr::Const(s) => Ok(self.konst(*s)),
            Expr::Var(v) => match self.env.get(&v.id).copied() {
                Some(Bind::Val(x)) => Ok(x),
                Some(Bind::Const(s)) => Ok(self.konst(s)),
                None => Err(cg_err(format!("variable `{}` is not bound", self.f.vars.name(v.id)))),
            },
            Expr::Dim(d) => self.dims.get(*d as usize).copied().ok_or_else(|| cg_err(format!("unknown dim {d}"))),
            Expr::Param(p, _) => {
                self.params.get(*p as usize).copied().ok_or_else(|| cg_err(format!("unknown param {p}")))
            }
            Expr::Load(l) => self.load(l.buf, l.dtype, &l.idx[0]),
            Expr::Unary(op, a) => {
                let t = a.dtype();
                let x = self.expr(a)?;
                Ok(self.unary(*op, t, x))
            }
            Expr::Binary(op, a, b) => {
                let t = a.dtype();
                if let (Some(c), true) = (b.as_const(), t.is_int() && matches!(op, BinOp::Div | BinOp::Rem)) {
                    let x = self.expr(a)?;
                    return self.div_const(*op, t, x, c);
                }
                let x = self.expr(a)?;
                let y = self.expr(b)?;
                self.binary(*op, t, x, y)
            }
            Expr::Cmp(op, a, b) => {
                let t = a.dtype();
                let x = self.expr(a)?;
                let y = self.expr(b)?;
                Ok(self.cmp(*op, t, x, y))
            }
            Expr::And(a, b) | Expr::Or(a, b) => {
                let and = matches!(e, Expr::And(..));
                let x = self.expr(a)?;
                if !b.has_load() {
                    let y = self.expr(b)?;
                    return Ok(if and { self.b.ins().band(x, y) } else { self.b.ins().bor(x, y) });
                }
                // Lazy: evaluate `b` only when `a` does not decide.
                let rhs = self.b.create_block();
                let done = self.b.create_block();
                let r = self.b.append_block_param(done, types::I8);
                let xa = [BlockArg::Value(x)];
                if and {
                    self.b.ins().brif(x, rhs, &[], done, &xa);
                } else {
                    self.b.ins().brif(x, done, &xa, rhs, &[]);
                }
                self.b.switch_to_block(rhs);
                let y = self.expr(b)?;
                self.b.ins().jump(done, &[BlockArg::Value(y)]);
                self.b.switch_to_block(done);
                Ok(r)
            }
            Expr::Cast(t, a) => {
                let from = a.dtype();
                let x = self.expr(a)?;
                self.cast(from, *t, x)
            }
            Expr::Select(c, a, b) => {
                let c = self.expr(c)?;
                let x = self.expr(a)?;
                let y = self.expr(b)?;
                Ok(self.b.ins().select(c, x, y))
            }
            Expr::If(c, a, b) => {
                let cv = self.expr(c)?;
                if !a.has_load() && !b.has_load() && !has_call(a) && !has_call(b) {
                    let x = self.expr(a)?;
                    let y = self.expr(b)?;
                    return Ok(self.b.ins().select(cv, x, y));
                }
                let tb = self.b.create_block();
                let eb = self.b.create_block();
                let done = self.b.create_block();
                let r = self.b.append_block_param(done, cty(a.dtype()));
                self.b.ins().brif(cv, tb, &[], eb, &[]);
                self.b.switch_to_block(tb);
                let x = self.expr(a)?;
                self.b.ins().jump(done, &[BlockArg::Value(x)]);
                self.b.switch_to_block(eb);
                let y = self.expr(b)?;
                self.b.ins().jump(done, &[BlockArg::Value(y)]);
                self.b.switch_to_block(done);
                Ok(r)
            }
            Expr::Call(f, args) => {
                let t = args[0].dtype();
                let mut vals = Vec::with_capacity(args.len());
                for a in args.iter() {
                    vals.push(self.expr(a)?);
                }
                self.call_builtin(*f, t, &vals)
            }
        }
    }

    pub fn unary(&mut self, op: UnOp, t: DType, x: Value) -> Value {
        match (op, t) {
            (UnOp::Neg, t) if t.is_float() => self.b.ins().fneg(x),
            (UnOp::Neg, DType::Bool) => x,
            (UnOp::Neg, _) => self.b.ins().ineg(x),
            (UnOp::Not, DType::Bool) => self.b.ins().bxor_imm_s(x, 1),
            (UnOp::Not, t) if t.is_int() => self.b.ins().bnot(x),
            (UnOp::Not, _) => x,
        }
    }

    /// NaN-ignoring float min/max (IEEE maxNum, like `f32::max`): the
    /// result is `a` when `a` wins or `b` is NaN, else `b`; a zero result
    /// is `+0.0` (SPEC semantics, docs/language.md: which of `0.0` and
    /// `-0.0` a tie returns would otherwise depend on operand order, i.e.
    /// on the schedule and the target).
    pub fn fminmax(&mut self, max: bool, a: Value, b: Value) -> Value {
        let r = self.fminmax_of(max, a, b);
        let zero = if self.b.func.dfg.value_type(a) == types::F64 {
            self.b.ins().f64const(0.0)
        } else {
            self.b.ins().f32const(0.0)
        };
        self.b.ins().fadd(r, zero)
    }

    /// [`Gen::fminmax`] of operands that are never `-0.0` (so neither is
    /// the result): no `+ 0.0`.
    fn fminmax_of(&mut self, max: bool, a: Value, b: Value) -> Value {
        let cc = if max { FloatCC::GreaterThan } else { FloatCC::LessThan };
        let wins = self.b.ins().fcmp(cc, a, b);
        let bnan = self.b.ins().fcmp(FloatCC::Unordered, b, b);
        let pick_a = self.b.ins().bor(wins, bnan);
        self.b.ins().select(pick_a, a, b)
    }

    pub fn binary(&mut self, op: BinOp, t: DType, x: Value, y: Value) -> CgResult<Value> {
        if t.is_float() {
            let r = match op {
                BinOp::Add => self.b.ins().fadd(x, y),
                BinOp::Sub => self.b.ins().fsub(x, y),
                BinOp::Mul => self.b.ins().fmul(x, y),
                BinOp::Div => self.b.ins().fdiv(x, y),
                BinOp::Rem => {
                    if t == DType::F64 {
                        self.call1("texpr_fmod_f64", &[types::F64, types::F64], types::F64, &[x, y])?
                    } else {
                        self.call1("texpr_fmod_f32", &[types::F32, types::F32], types::F32, &[x, y])?
                    }
                }
                BinOp::Min => return Ok(self.fminmax(false, x, y)),
                BinOp::Max => return Ok(self.fminmax(true, x, y)),
            };
            return if is_half(t) { self.round_half(t, r) } else { Ok(r) };
        }
        if t == DType::Bool {
            return Ok(match op {
                BinOp::Min => self.b.ins().band(x, y),
                BinOp::Max => self.b.ins().bor(x, y),
                _ => x,
            });
        }
        let signed = t.is_signed_int();
        Ok(match op {
            BinOp::Add => self.b.ins().iadd(x, y),
            BinOp::Sub => self.b.ins().isub(x, y),
            BinOp::Mul => self.b.ins().imul(x, y),
            BinOp::Div | BinOp::Rem => self.divrem(op == BinOp::Div, signed, cty(t), x, y),
            BinOp::Min | BinOp::Max => {
                let cc = match (op == BinOp::Min, signed) {
                    (true, true) => IntCC::SignedLessThan,
                    (true, false) => IntCC::UnsignedLessThan,
                    (false, true) => IntCC::SignedGreaterThan,
                    (false, false) => IntCC::UnsignedGreaterThan,
                };
                let c = self.b.ins().icmp(cc, x, y);
                self.b.ins().select(c, x, y)
            }
        })
    }

    /// Floor division / remainder with SPEC semantics and no traps: a zero
    /// divisor gives 0, `MIN / -1` wraps to `MIN` (remainder 0).
    fn divrem(&mut self, div: bool, signed: bool, ty: Type, a: Value, b: Value) -> Value {
        let zero = self.b.ins().iconst(ty, 0);
        let one = self.b.ins().iconst(ty, 1);
        let bz = self.b.ins().icmp_imm_s(IntCC::Equal, b, 0);
        if !signed {
            let sb = self.b.ins().select(bz, one, b);
            let r = if div { self.b.ins().udiv(a, sb) } else { self.b.ins().urem(a, sb) };
            return self.b.ins().select(bz, zero, r);
        }
        let bm1 = self.b.ins().icmp_imm_s(IntCC::Equal, b, -1);
        let bad = self.b.ins().bor(bz, bm1);
        let sb = self.b.ins().select(bad, one, b);
        let q = self.b.ins().sdiv(a, sb);
        let r = self.b.ins().srem(a, sb);
        let rnz = self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0);
        let x = self.b.ins().bxor(r, b);
        let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, x, 0);
        let adj = self.b.ins().band(rnz, neg);
        if div {
            let q1 = self.b.ins().iadd_imm_s(q, -1);
            let qf = self.b.ins().select(adj, q1, q);
            let na = self.b.ins().ineg(a);
            let q2 = self.b.ins().select(bm1, na, qf);
            self.b.ins().select(bz, zero, q2)
        } else {
            let r1 = self.b.ins().iadd(r, b);
            let rf = self.b.ins().select(adj, r1, r);
            self.b.ins().select(bad, zero, rf)
        }
    }

    /// Division or remainder by a constant: shifts and masks for powers of
    /// two, a plain division otherwise (no guards needed).
    pub fn div_const(&mut self, op: BinOp, t: DType, x: Value, c: Scalar) -> CgResult<Value> {
        let ty = cty(t);
        let cv = c.as_i64().unwrap_or(0);
        let signed = t.is_signed_int();
        let positive = if signed { cv > 0 } else { c.bits() != 0 && (c.bits() as i64) > 0 };
        if !positive {
            let y = self.konst(c);
            return self.binary(op, t, x, y);
        }
        let div = op == BinOp::Div;
        if cv.count_ones() == 1 {
            let sh = cv.trailing_zeros() as i64;
            return Ok(match (div, signed) {
                (true, true) => self.b.ins().sshr_imm_s(x, sh),
                (true, false) => self.b.ins().ushr_imm_s(x, sh),
                (false, _) => self.b.ins().band_imm_s(x, cv - 1),
            });
        }
        let y = self.b.ins().iconst(ty, cv);
        if !signed {
            return Ok(if div { self.b.ins().udiv(x, y) } else { self.b.ins().urem(x, y) });
        }
        let q = self.b.ins().sdiv(x, y);
        let r = self.b.ins().srem(x, y);
        let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, r, 0);
        Ok(if div {
            let q1 = self.b.ins().iadd_imm_s(q, -1);
            self.b.ins().select(neg, q1, q)
        } else {
            let r1 = self.b.ins().iadd(r, y);
            self.b.ins().select(neg, r1, r)
        })
    }

    pub fn cmp(&mut self, op: CmpOp, t: DType, x: Value, y: Value) -> Value {
        if t.is_float() {
            let cc = match op {
                CmpOp::Lt => FloatCC::LessThan,
                CmpOp::Le => FloatCC::LessThanOrEqual,
                CmpOp::Gt => FloatCC::GreaterThan,
                CmpOp::Ge => FloatCC::GreaterThanOrEqual,
                CmpOp::Eq => FloatCC::Equal,
                CmpOp::Ne => FloatCC::NotEqual,
            };
            return self.b.ins().fcmp(cc, x, y);
        }
        let signed = t.is_signed_int();
        let cc = match (op, signed) {
            (CmpOp::Lt, true) => IntCC::SignedLessThan,
            (CmpOp::Le, true) => IntCC::SignedLessThanOrEqual,
            (CmpOp::Gt, true) => IntCC::SignedGreaterThan,
            (CmpOp::Ge, true) => IntCC::SignedGreaterThanOrEqual,
            (CmpOp::Lt, false) => IntCC::UnsignedLessThan,
            (CmpOp::Le, false) => IntCC::UnsignedLessThanOrEqual,
            (CmpOp::Gt, false) => IntCC::UnsignedGreaterThan,
            (CmpOp::Ge, false) => IntCC::UnsignedGreaterThanOrEqual,
            (CmpOp::Eq, _) => IntCC::Equal,
            (CmpOp::Ne, _) => IntCC::NotEqual,
        };
        self.b.ins().icmp(cc, x, y)
    }

    /// Rust's `as`.
    pub fn cast(&mut self, from: DType, to: DType, x: Value) -> CgResult<Value> {
        if from == to {
            return Ok(x);
        }
        if to == DType::Bool {
            return Ok(if from.is_float() {
                let z = if from == DType::F64 { self.b.ins().f64const(0.0) } else { self.b.ins().f32const(0.0) };
                self.b.ins().fcmp(FloatCC::NotEqual, x, z)
            } else {
                self.b.ins().icmp_imm_s(IntCC::NotEqual, x, 0)
            });
        }
        let (fi, ti) = (!from.is_float(), !to.is_float());
        let (fty, tty) = (cty(from), cty(to));
        if fi && ti {
            return Ok(if tty.bits() < fty.bits() {
                self.b.ins().ireduce(tty, x)
            } else if tty.bits() > fty.bits() {
                if from.is_signed_int() { self.b.ins().sextend(tty, x) } else { self.b.ins().uextend(tty, x) }
            } else {
                x
            });
        }
        if fi {
            // Integer (or bool) to float: widen to i64, convert once.
            let signed = from.is_signed_int();
            let w = if fty.bits() < 64 {
                if signed { self.b.ins().sextend(types::I64, x) } else { self.b.ins().uextend(types::I64, x) }
            } else {
                x
            };
            let conv = |g: &mut Self, ft: Type| {
                if signed { g.b.ins().fcvt_from_sint(ft, w) } else { g.b.ins().fcvt_from_uint(ft, w) }
            };
            return match to {
                DType::F32 => Ok(conv(self, types::F32)),
                DType::F64 => Ok(conv(self, types::F64)),
                _ => {
                    let d = conv(self, types::F64);
                    self.f64_to(to, d)
                }
            };
        }
        if ti {
            // Float to integer: saturating, NaN → 0, toward zero.
            let signed = to.is_signed_int();
            return Ok(match tty.bits() {
                64 | 32 => {
                    if signed {
                        self.b.ins().fcvt_to_sint_sat(tty, x)
                    } else {
                        self.b.ins().fcvt_to_uint_sat(tty, x)
                    }
                }
                _ => {
                    let (lo, hi) = texpr_dsl::value::int_range(to);
                    let w = if signed {
                        self.b.ins().fcvt_to_sint_sat(types::I32, x)
                    } else {
                        self.b.ins().fcvt_to_uint_sat(types::I32, x)
                    };
                    let hiv = self.b.ins().iconst(types::I32, hi as i64);
                    let c = if signed {
                        let lov = self.b.ins().iconst(types::I32, lo as i64);
                        let below = self.b.ins().icmp(IntCC::SignedLessThan, w, lov);
                        let w2 = self.b.ins().select(below, lov, w);
                        let above = self.b.ins().icmp(IntCC::SignedGreaterThan, w2, hiv);
                        self.b.ins().select(above, hiv, w2)
                    } else {
                        let above = self.b.ins().icmp(IntCC::UnsignedGreaterThan, w, hiv);
                        self.b.ins().select(above, hiv, w)
                    };
                    self.b.ins().ireduce(tty, c)
                }
            });
        }
        // Float to float.
        match (from, to) {
            (DType::F64, DType::F32) => Ok(self.b.ins().fdemote(types::F32, x)),
            (_, DType::F64) => Ok(self.b.ins().fpromote(types::F64, x)),
            (DType::F64, t) => self.f64_to(t, x),
            (_, DType::F32) => Ok(x),
            (_, t) => self.round_half(t, x),
        }
    }

    fn fconst(&mut self, ty: Type, v: f64) -> Value {
        if ty == types::F64 { self.b.ins().f64const(v) } else { self.b.ins().f32const(v as f32) }
    }

    /// `round`: half away from zero (Cranelift's `nearest` is half-even).
    pub fn round_away(&mut self, ty: Type, x: Value) -> Value {
        let t = self.b.ins().trunc(x);
        let d = self.b.ins().fsub(x, t);
        let ad = self.b.ins().fabs(d);
        let half = self.fconst(ty, 0.5);
        let big = self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, ad, half);
        let one = self.fconst(ty, 1.0);
        let s = self.b.ins().fcopysign(one, x);
        let t1 = self.b.ins().fadd(t, s);
        self.b.ins().select(big, t1, t)
    }

    fn clamp(&mut self, t: DType, x: Value, lo: Value, hi: Value) -> Value {
        let below = self.cmp(CmpOp::Lt, t, x, lo);
        let above = self.cmp(CmpOp::Gt, t, x, hi);
        let y = self.b.ins().select(above, hi, x);
        self.b.ins().select(below, lo, y)
    }

    pub fn call_builtin(&mut self, f: Builtin, t: DType, a: &[Value]) -> CgResult<Value> {
        let x = a[0];
        if !t.is_float() {
            return Ok(match f {
                Builtin::Abs if t.is_signed_int() => {
                    let n = self.b.ins().ineg(x);
                    let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, x, 0);
                    self.b.ins().select(neg, n, x)
                }
                // `min(max(x, lo), hi)`, as `Scalar::call` (lowering rewrites
                // integer clamps to that form anyway).
                Builtin::Clamp => {
                    let below = self.cmp(CmpOp::Lt, t, x, a[1]);
                    let m = self.b.ins().select(below, a[1], x);
                    let above = self.cmp(CmpOp::Gt, t, m, a[2]);
                    self.b.ins().select(above, a[2], m)
                }
                Builtin::Fma => {
                    let p = self.b.ins().imul(x, a[1]);
                    self.b.ins().iadd(p, a[2])
                }
                _ => x,
            });
        }
        let ty = cty(t);
        if t == DType::F32 && crate::math::has_vector(f) {
            // The inline polynomials, on a scalar: `exp`-like ones work on
            // `F32` directly, the `f64`-based ones on a splat vector.
            if matches!(f, Builtin::Sin | Builtin::Cos | Builtin::Pow | Builtin::Erf) {
                let vs: Vec<Value> = a.iter().map(|v| self.b.ins().splat(types::F32X4, *v)).collect();
                let r = crate::math::vector_f32(self, f, &vs)?;
                return Ok(self.b.ins().extractlane(r, 0));
            }
            return crate::math::vector_f32(self, f, a);
        }
        let f64fn = |f: Builtin| -> Option<&'static str> {
            Some(match f {
                Builtin::Exp => "texpr_exp_f64",
                Builtin::Exp2 => "texpr_exp2_f64",
                Builtin::Ln => "texpr_ln_f64",
                Builtin::Log2 => "texpr_log2_f64",
                Builtin::Sin => "texpr_sin_f64",
                Builtin::Cos => "texpr_cos_f64",
                Builtin::Tanh => "texpr_tanh_f64",
                Builtin::Sigmoid => "texpr_sigmoid_f64",
                Builtin::Erf => "texpr_erf_f64",
                _ => return None,
            })
        };
        if let Some(name) = f64fn(f) {
            // Scalar transcendental functions: exact f64, rounded once.
            let d = if ty == types::F64 { x } else { self.b.ins().fpromote(types::F64, x) };
            let r = self.call1(name, &[types::F64], types::F64, &[d])?;
            return self.f64_to(t, r);
        }
        let r = match f {
            Builtin::Pow => {
                let (d, e) = if ty == types::F64 {
                    (x, a[1])
                } else {
                    (self.b.ins().fpromote(types::F64, x), self.b.ins().fpromote(types::F64, a[1]))
                };
                let r = self.call1("texpr_pow_f64", &[types::F64, types::F64], types::F64, &[d, e])?;
                return self.f64_to(t, r);
            }
            Builtin::Rsqrt => {
                let d = if ty == types::F64 { x } else { self.b.ins().fpromote(types::F64, x) };
                let s = self.b.ins().sqrt(d);
                let one = self.b.ins().f64const(1.0);
                let r = self.b.ins().fdiv(one, s);
                return self.f64_to(t, r);
            }
            Builtin::Fma => {
                if ty == types::F64 {
                    return Ok(self.b.ins().fma(x, a[1], a[2]));
                }
                // Exact product in f64, one rounding of the sum (the oracle's
                // definition for single precision).
                let (p, q, r) = (
                    self.b.ins().fpromote(types::F64, x),
                    self.b.ins().fpromote(types::F64, a[1]),
                    self.b.ins().fpromote(types::F64, a[2]),
                );
                let m = self.b.ins().fmul(p, q);
                let s = self.b.ins().fadd(m, r);
                return self.f64_to(t, s);
            }
            Builtin::Sqrt => self.b.ins().sqrt(x),
            Builtin::Abs => self.b.ins().fabs(x),
            Builtin::Floor => self.b.ins().floor(x),
            Builtin::Ceil => self.b.ins().ceil(x),
            Builtin::Trunc => self.b.ins().trunc(x),
            Builtin::Round => self.round_away(ty, x),
            Builtin::Clamp => self.clamp(t, x, a[1], a[2]),
            _ => return Err(cg_err(format!("unexpected built-in `{}`", f.name()))),
        };
        if is_half(t) && f == Builtin::Sqrt { self.round_half(t, r) } else { Ok(r) }
    }

    // ---- statements ----------------------------------------------------

    pub fn stmt(&mut self, s: &'a Stmt) -> CgResult<()> {
        match s {
            Stmt::Nop => Ok(()),
            Stmt::Seq(v) => {
                let Some(fr) = self.freeze_at.get(&(s as *const Stmt)).cloned() else {
                    return v.iter().try_for_each(|s| self.stmt(s));
                };
                for (i, x) in v.iter().enumerate() {
                    for (b, last) in &fr {
                        if i == last + 1 {
                            self.frozen.insert(*b);
                        }
                    }
                    self.stmt(x)?;
                }
                for (b, _) in &fr {
                    self.frozen.remove(b);
                }
                Ok(())
            }
            Stmt::Let(bx) => {
                let (var, value, body) = (&bx.0, &bx.1, &bx.2);
                let bind = match self.const_eval(value) {
                    Some(c) => Bind::Const(c),
                    None => Bind::Val(self.expr(value)?),
                };
                let d = self.expr_depth(value);
                let old_d = self.depth.insert(var.id, d);
                let old = self.env.insert(var.id, bind);
                let r = self.stmt(body);
                self.restore(var.id, old);
                self.restore_depth(var.id, old_d);
                r
            }
            Stmt::If(i) => {
                if let Some(c) = self.const_eval(&i.cond) {
                    return if c.is_true() {
                        self.stmt(&i.then)
                    } else if let Some(e) = &i.els {
                        self.stmt(e)
                    } else {
                        Ok(())
                    };
                }
                let c = self.expr(&i.cond)?;
                let tb = self.b.create_block();
                let done = self.b.create_block();
                let eb = if i.els.is_some() { self.b.create_block() } else { done };
                self.b.ins().brif(c, tb, &[], eb, &[]);
                self.b.switch_to_block(tb);
                self.stmt(&i.then)?;
                self.b.ins().jump(done, &[]);
                if let Some(e) = &i.els {
                    self.b.switch_to_block(eb);
                    self.stmt(e)?;
                    self.b.ins().jump(done, &[]);
                }
                self.b.switch_to_block(done);
                Ok(())
            }
            Stmt::Store(st) => {
                let v = self.expr(&st.value)?;
                self.store(st.buf, &st.idx[0], v)
            }
            Stmt::Alloc(buf, body) => self.alloc(*buf, body),
            Stmt::For(l) => self.for_(l),
        }
    }

    pub fn restore_depth(&mut self, v: VarId, old: Option<u32>) {
        match old {
            Some(o) => {
                self.depth.insert(v, o);
            }
            None => {
                self.depth.remove(&v);
            }
        }
    }

    pub fn restore(&mut self, v: VarId, old: Option<Bind>) {
        match old {
            Some(o) => {
                self.env.insert(v, o);
            }
            None => {
                self.env.remove(&v);
            }
        }
    }

    fn for_(&mut self, l: &'a For) -> CgResult<()> {
        let ext = self.const_eval(&l.extent).and_then(|s| s.as_i64());
        if ext.is_some_and(|e| e <= 0) {
            return Ok(());
        }
        match l.kind {
            ForKind::Parallel => self.parallel(l),
            ForKind::Unrolled if ext.is_some_and(|e| e <= MAX_UNROLL) => self.unrolled(l, ext.unwrap_or(0)),
            ForKind::Vectorized if ext.is_some_and(|e| e <= MAX_VECTOR) => self.vectorized(l, ext.unwrap_or(0)),
            _ => {
                let lo = self.index(&l.min)?;
                let n = self.index(&l.extent)?;
                self.serial_hoisting(l, lo, n, &mut |g| g.stmt(&l.body))
            }
        }
    }

    /// `for var in lo..lo + n { body }`, tested at the top of every
    /// iteration: `header(i): brif i < hi, body, exit; body: ..; jump
    /// header(i + 1)`. Values carried around the loop (promoted
    /// accumulators) then have one use each — the back edge's argument —
    /// and the loop's exit reads the header's parameters. With a
    /// bottom-tested loop the latch's values also flow to the exit, which
    /// counts as a second use, and Cranelift then refuses to fold the loads
    /// that feed them into their users (a `splat` of a load stays a scalar
    /// load plus a register broadcast).
    pub fn serial(
        &mut self,
        var: Var,
        lo: Value,
        n: Value,
        body: &mut dyn FnMut(&mut Self) -> CgResult<()>,
    ) -> CgResult<()> {
        let hi = self.b.ins().iadd(lo, n);
        let header = self.b.create_block();
        let blk = self.b.create_block();
        let exit = self.b.create_block();
        let i = self.b.append_block_param(header, types::I64);
        self.b.ins().jump(header, &[BlockArg::Value(lo)]);
        self.b.switch_to_block(header);
        let done = self.b.ins().icmp(IntCC::SignedGreaterThanOrEqual, i, hi);
        self.b.ins().brif(done, exit, &[], blk, &[]);
        self.b.switch_to_block(blk);
        let old = self.env.insert(var.id, Bind::Val(i));
        self.loop_depth += 1;
        let old_d = self.depth.insert(var.id, self.loop_depth);
        let old_u = std::mem::take(&mut self.unrolled);
        let r = body(self);
        self.unrolled = old_u;
        self.loop_depth -= 1;
        self.restore_depth(var.id, old_d);
        self.restore(var.id, old);
        r?;
        let i1 = self.b.ins().iadd_imm_s(i, 1);
        self.b.ins().jump(header, &[BlockArg::Value(i1)]);
        self.b.switch_to_block(exit);
        Ok(())
    }

    fn unrolled(&mut self, l: &'a For, ext: i64) -> CgResult<()> {
        let min_c = self.const_eval(&l.min).and_then(|s| s.as_i64());
        let min_v = if min_c.is_none() { Some(self.index(&l.min)?) } else { None };
        for k in 0..ext {
            let bind = match (min_c, min_v) {
                (Some(c), _) => Bind::Const(Scalar::I64(c.wrapping_add(k))),
                (_, Some(v)) => Bind::Val(self.b.ins().iadd_imm_s(v, k)),
                _ => return Err(cg_err("unrolled loop without a start")),
            };
            let old = self.env.insert(l.var.id, bind);
            self.unrolled.push(l.var.id);
            let r = self.stmt(&l.body);
            self.unrolled.pop();
            self.restore(l.var.id, old);
            r?;
        }
        Ok(())
    }

    fn vectorized(&mut self, l: &'a For, ext: i64) -> CgResult<()> {
        if self.lane_reduce(l, ext)? || crate::vector::try_vectorize(self, l, ext)? {
            return Ok(());
        }
        // Lane by lane: always correct.
        self.unrolled(l, ext)
    }

    /// The last step of a reduction along a vectorized axis, `vectorized
    /// for v in 0..n { X[I] = X[I] op T[v] }` with the per-lane partials `T`
    /// in vector registers (`op` one of `+ min max`, `I` not using `v`):
    /// the partial vectors are combined with vector operations, then the
    /// lanes of the result, then `X[I]` — `n / lanes + lanes` operations
    /// instead of `n` scalar ones (each NaN-ignoring scalar `max` is a
    /// compare-and-branch in Cranelift's x86 code). Reassociating a
    /// reduction is within SPEC (a reduction's order is open).
    fn lane_reduce(&mut self, l: &'a For, ext: i64) -> CgResult<bool> {
        let Stmt::Store(st) = &l.body else { return Ok(false) };
        let Expr::Binary(op @ (BinOp::Add | BinOp::Min | BinOp::Max), x, y) = &st.value else { return Ok(false) };
        let is_acc = |e: &Expr| matches!(e, Expr::Load(ld) if ld.buf == st.buf && ld.idx == st.idx);
        let (acc_e, part) = match (is_acc(x), is_acc(y)) {
            (true, false) => (x, y),
            (false, true) => (y, x),
            _ => return Ok(false),
        };
        let Expr::Load(pl) = &**part else { return Ok(false) };
        let t = pl.dtype;
        let Some(Loc::Regs { vars, group }) = self.locs.get(pl.buf.0 as usize).cloned().flatten() else {
            return Ok(false);
        };
        let g = group as i64;
        let uses_v = st.idx.iter().any(|e| e.any(&mut |z| matches!(z, Expr::Var(w) if w.id == l.var.id)));
        if !t.is_float()
            || st.idx.len() != 1
            || g < 2
            || uses_v
            || self.const_eval(&l.min).and_then(|c| c.as_i64()) != Some(0)
            || !matches!(pl.idx.as_slice(), [Expr::Var(w)] if w.id == l.var.id)
            || ext != vars.len() as i64 * g
        {
            return Ok(false);
        }
        let not_nan = self.m.never_nan.contains(&pl.buf);
        let plus_zero = |g: &mut Self, v: Value| {
            if *op != BinOp::Add && !g.m.no_neg_zero.contains(&pl.buf) { crate::vector::plus_zero(g, v) } else { v }
        };
        let first = self.b.use_var(vars[0]);
        let mut acc = plus_zero(self, first);
        for v in &vars[1..] {
            let next = self.b.use_var(*v);
            let next = plus_zero(self, next);
            acc = match op {
                BinOp::Add => self.b.ins().fadd(acc, next),
                _ => crate::vector::vminmax(self, *op == BinOp::Max, acc, next, not_nan),
            };
        }
        let mut r = self.b.ins().extractlane(acc, 0);
        for k in 1..g {
            let lane = self.b.ins().extractlane(acc, k as u8);
            // The lanes hold no -0.0 (made +0.0 above, or never stored).
            r = match op {
                BinOp::Add => self.binary(*op, t, r, lane)?,
                _ => self.fminmax_of(*op == BinOp::Max, r, lane),
            };
        }
        let old = self.expr(acc_e)?;
        let v = self.binary(*op, t, old, r)?;
        self.store(st.buf, &st.idx[0], v)?;
        Ok(true)
    }

    fn alloc(&mut self, buf: BufId, body: &'a Stmt) -> CgResult<()> {
        let info = self.f.buffer(buf).clone();
        let old = self.locs[buf.0 as usize].take();
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
            self.locs[buf.0 as usize] = Some(Loc::Regs { vars, group: group as u32 });
            let r = self.stmt(body);
            self.locs[buf.0 as usize] = old;
            return r;
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
            self.locs[buf.0 as usize] = Some(Loc::Mem(base));
            let r = self.stmt(body);
            self.locs[buf.0 as usize] = old;
            return r;
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
        let seq = freeze_point(body, buf);
        if let Some((ptr, last)) = seq {
            self.freeze_at.entry(ptr).or_default().push((buf, last));
        }
        let r = if let Some(bytes) = stack {
            let slot = self.b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, bytes as u32, 4));
            let addr = self.b.ins().stack_addr(self.ptr, slot, 0);
            let c = self.b.ins().iconst(types::I32, 0);
            let n = self.iconst(bytes);
            let base = self.call1("texpr_lc_memset", &[self.ptr, types::I32, types::I64], self.ptr, &[addr, c, n])?;
            self.locs[buf.0 as usize] = Some(Loc::Mem(base));
            self.stmt(body)
        } else if let Some((p, bytes)) = self.prealloc.get(&buf).copied() {
            // Allocated before an enclosing loop: zeroed again here, as a
            // fresh allocation would be.
            let c = self.b.ins().iconst(types::I32, 0);
            let base = self.call1("texpr_lc_memset", &[self.ptr, types::I32, types::I64], self.ptr, &[p, c, bytes])?;
            self.locs[buf.0 as usize] = Some(Loc::Mem(base));
            self.stmt(body)
        } else {
            let (p, bytes) = self.heap_alloc(buf)?;
            self.locs[buf.0 as usize] = Some(Loc::Mem(p));
            self.stmt(body).and_then(|_| self.call("texpr_free", &[self.ptr, types::I64], &[], &[p, bytes]).map(|_| ()))
        };
        if let Some((ptr, _)) = seq
            && let Some(v) = self.freeze_at.get_mut(&ptr)
        {
            v.retain(|(b, _)| *b != buf);
            if v.is_empty() {
                self.freeze_at.remove(&ptr);
            }
        }
        self.locs[buf.0 as usize] = old;
        r
    }

    /// Allocates a temporary on the heap (zeroed): pointer and byte size.
    /// A failed allocation returns status 1 from the function.
    fn heap_alloc(&mut self, buf: BufId) -> CgResult<(Value, Value)> {
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

    /// `serial` for the loop `l`, with the temporaries of
    /// [`Gen::hoisted_allocs`] allocated around it.
    pub fn serial_hoisting(
        &mut self,
        l: &'a For,
        lo: Value,
        n: Value,
        body: &mut dyn FnMut(&mut Self) -> CgResult<()>,
    ) -> CgResult<()> {
        let hoist = self.hoisted_allocs(l);
        if hoist.is_empty() {
            return self.serial(l.var, lo, n, body);
        }
        // Only when the loop runs: an empty loop allocates nothing.
        let any = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, n, 0);
        let run = self.b.create_block();
        let done = self.b.create_block();
        self.b.ins().brif(any, run, &[], done, &[]);
        self.b.switch_to_block(run);
        let mut got = vec![];
        for b in &hoist {
            let pb = self.heap_alloc(*b)?;
            self.prealloc.insert(*b, pb);
            got.push(pb);
        }
        let r = self.serial(l.var, lo, n, body);
        for b in &hoist {
            self.prealloc.remove(b);
        }
        r?;
        for (p, bytes) in got {
            self.call("texpr_free", &[self.ptr, types::I64], &[], &[p, bytes])?;
        }
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
        Ok(())
    }

    /// Zeroes a small stack temporary (at most [`ZERO_INLINE`] bytes) with
    /// inline stores.
    fn zero_fill(&mut self, base: Value, bytes: i64) {
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

    /// A parallel loop: the body becomes its own function, called in
    /// chunks by `texpr_parallel_for` with the captured values in a stack
    /// environment.
    fn parallel(&mut self, l: &'a For) -> CgResult<()> {
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
    fn work(&mut self, s: &Stmt) -> CgResult<Work> {
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
    fn work_op(&mut self, a: Work, b: Work, cap: i64, mul: bool) -> Work {
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
