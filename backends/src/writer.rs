//! The C-family source writer shared by OpenCL C and CUDA C.
//!
//! A [`Writer`] prints a [`GpuFunc`] (the kernels of one function) through a
//! [`Dialect`] into any [`fmt::Write`]: one method per construct, one
//! indentation helper, one name allocator per kernel. Helper functions
//! (`tx_*`) are emitted once, before the kernels, only when used.
//!
//! # Semantics (SPEC §2) in C
//!
//! - Integer `+ - *` and negation wrap: computed in the unsigned type of the
//!   same width (`(int)((uint)a + (uint)b)`), since signed overflow is
//!   undefined in C. Pure index arithmetic (loop variables, dims and
//!   literals, which the bounds proof keeps small) is written plainly.
//! - Integer `/` and `%` round toward negative infinity and give 0 for a
//!   zero divisor: helpers `tx_div_*` / `tx_rem_*` (plain `/` `%` for a
//!   non-negative index over a positive literal, where C agrees).
//! - `as` from float to integer saturates with NaN → 0 (`convert_*_sat` in
//!   OpenCL, `tx_sat_*` in CUDA); other conversions are C's, rounding to
//!   nearest even.
//! - `if` and `select` are C's lazy `?:`; `&&` and `||` are lazy.
//! - Floats are IEEE: no contraction of `a * b + c` (`FP_CONTRACT OFF`,
//!   NVRTC `--fmad=false`), full-precision math functions; `min`/`max` are
//!   `fmin`/`fmax` (a NaN operand is ignored).
//! - `f16`/`bf16` are computed in `f32` and rounded after each operation:
//!   native `__half`/`__nv_bfloat16` intrinsics in CUDA, `float` values and
//!   `vload_half`/`vstore_half` (and `ushort` bits for `bf16`) in OpenCL.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::{self, Write as _};

use texpr_dsl::expr::{BinOp, Builtin, CmpOp, Load, UnOp};
use texpr_dsl::{BufId, BufKind, DType, Expr, Scalar, Stmt, Var, VarId};

use crate::dialect::{C, Dialect, SmallFloats};
use crate::kir::{GpuFunc, GpuKernel, Hw, KArg, KStmt};
use crate::names::NameAlloc;

/// A helper function the generated code may call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Helper {
    Div(DType),
    Rem(DType),
    Clamp(DType),
    Sigmoid(DType),
    MinMax(bool, DType),
    Abs(DType),
    /// A float → int `as` from `float` or `double` (the second type).
    Sat(DType, DType),
    RoundF16,
    RoundBf16,
    F16FromF64,
    Bf16FromF64,
    Bf16ToF32,
    F32ToBf16,
}

/// The update `X[i] + x * y` of an accumulator (a reduction's step, the
/// only store that reads its own element) of `f32`/`f64` as one
/// `fma(x, y, X[i])`: a reduction's rounding is only defined up to
/// reassociation (SPEC §3), one rounding per step is within that, and it
/// is what the CPU backend does. Elementwise `x * y + z` rounds twice.
fn accumulate(buf: BufId, idx: &Expr, value: &Expr) -> Option<Expr> {
    let Expr::Binary(BinOp::Add, a, b) = value else {
        return None;
    };
    if !matches!(value.dtype(), DType::F32 | DType::F64) {
        return None;
    }
    let own = |e: &Expr| matches!(e, Expr::Load(l) if l.buf == buf && l.idx.len() == 1 && l.idx[0] == *idx);
    let (acc, prod) = if own(a) {
        (a, b)
    } else if own(b) {
        (b, a)
    } else {
        return None;
    };
    let Expr::Binary(BinOp::Mul, x, y) = &**prod else {
        return None;
    };
    Some(Expr::Call(Builtin::Fma, [(**x).clone(), (**y).clone(), (**acc).clone()].into()))
}

/// Writes the kernels of a function as C source.
pub struct Writer<'a, W: fmt::Write, D: Dialect> {
    out: W,
    d: &'a D,
    g: &'a GpuFunc,
    /// Names every kernel shares: buffers, dims, parameters, kernels.
    base: NameAlloc,
    bufs: Vec<String>,
    dims: Vec<String>,
    params: Vec<String>,
    kernel_names: Vec<String>,
    /// Loop variables of the function (index arithmetic).
    loop_vars: HashSet<VarId>,
    /// The kernels' text.
    body: String,
    helpers: Vec<(Helper, String)>,
    uses_f64: bool,
    uses_f16: bool,
    uses_bf16: bool,
    // Per kernel.
    names: NameAlloc,
    vars: HashMap<VarId, String>,
    index_vars: HashSet<VarId>,
    nonneg: HashSet<VarId>,
    scratch: HashMap<BufId, (String, String)>,
    hw_names: HashMap<Hw, String>,
    indent: usize,
}

impl<'a, W: fmt::Write, D: Dialect> Writer<'a, W, D> {
    /// A writer of `g` in dialect `d` into `out`.
    pub fn new(out: W, d: &'a D, g: &'a GpuFunc) -> Writer<'a, W, D> {
        let f = &g.func;
        let mut base = NameAlloc::new(d.lang());
        let kernel_names: Vec<String> = g.kernels.iter().map(|k| base.fresh(&k.name)).collect();
        let bufs = f.buffers.iter().map(|b| base.fresh(&b.name)).collect();
        let dims = f.dims.iter().map(|n| base.fresh(n)).collect();
        let params = f.params.iter().map(|p| base.fresh(&p.name)).collect();
        let mut loop_vars = HashSet::new();
        f.body.visit(&mut |s| {
            if let Stmt::For(l) = s {
                loop_vars.insert(l.var.id);
            }
        });
        Writer {
            out,
            d,
            g,
            names: base.clone(),
            base,
            bufs,
            dims,
            params,
            kernel_names,
            loop_vars,
            body: String::new(),
            helpers: vec![],
            uses_f64: false,
            uses_f16: false,
            uses_bf16: false,
            vars: HashMap::new(),
            index_vars: HashSet::new(),
            nonneg: HashSet::new(),
            scratch: HashMap::new(),
            hw_names: HashMap::new(),
            indent: 0,
        }
    }

    /// The C names of the kernels, in launch order.
    pub fn kernel_names(&self) -> &[String] {
        &self.kernel_names
    }

    /// Writes everything and returns the output.
    pub fn finish(mut self) -> Result<W, fmt::Error> {
        for (i, k) in self.g.kernels.iter().enumerate() {
            if i > 0 {
                self.body.push('\n');
            }
            self.kernel(k, i);
        }
        let pre = self.d.preamble(&self.g.func.name, self.uses_f64, self.uses_f16, self.uses_bf16);
        self.out.write_str(&pre)?;
        for (_, text) in &self.helpers {
            self.out.write_str("\n")?;
            self.out.write_str(text)?;
        }
        self.out.write_str("\n")?;
        self.out.write_str(&self.body)?;
        Ok(self.out)
    }

    // ---- lines and scopes ----------------------------------------------------

    fn line(&mut self, s: &str) {
        for _ in 0..self.indent {
            self.body.push_str("    ");
        }
        self.body.push_str(s);
        self.body.push('\n');
    }

    fn open(&mut self, s: &str) {
        self.line(s);
        self.indent += 1;
        self.names.push();
    }

    fn close(&mut self, s: &str) {
        self.names.pop();
        self.indent = self.indent.saturating_sub(1);
        self.line(s);
    }

    fn note_type(&mut self, t: DType) {
        match t {
            DType::F64 => self.uses_f64 = true,
            DType::F16 => self.uses_f16 = true,
            DType::BF16 => self.uses_bf16 = true,
            _ => {}
        }
    }

    fn vt(&mut self, t: DType) -> &'static str {
        self.note_type(t);
        self.d.value_type(t)
    }

    fn index_type(&self) -> &'static str {
        self.d.value_type(DType::I64)
    }

    fn io(&self, b: BufId) -> bool {
        !matches!(self.g.func.buffer(b).kind, BufKind::Temp)
    }

    fn bind(&mut self, v: Var, nonneg: bool) -> String {
        let hint = self.g.func.vars.name(v.id).replace('.', "_");
        let name = self.names.fresh(&hint);
        self.vars.insert(v.id, name.clone());
        if nonneg {
            self.nonneg.insert(v.id);
        } else {
            self.nonneg.remove(&v.id);
        }
        name
    }

    // ---- kernels ---------------------------------------------------------------

    fn kernel(&mut self, k: &GpuKernel, i: usize) {
        let f = &self.g.func;
        self.names = self.base.clone();
        self.vars.clear();
        self.nonneg.clear();
        self.scratch.clear();
        self.hw_names.clear();
        self.index_vars = self.loop_vars.clone();
        self.index_vars.extend(k.hw.keys().copied());
        k.body.visit(&mut |s| {
            if let KStmt::For { var, .. } = s {
                self.index_vars.insert(var.id);
            }
        });
        // Arguments.
        let ity = self.index_type();
        let mut args = vec![];
        for a in &k.args {
            match *a {
                KArg::Buf(b) => {
                    let buf = f.buffer(b);
                    self.note_type(buf.dtype);
                    let ty = self.d.storage_type(buf.dtype, self.io(b));
                    let name = self.bufs[b.0 as usize].clone();
                    args.push(self.d.buffer_arg(ty, &name, matches!(buf.kind, BufKind::Input(_))));
                }
                KArg::Scratch(b) => {
                    let buf = f.buffer(b);
                    self.note_type(buf.dtype);
                    let ty = self.d.storage_type(buf.dtype, false);
                    let name = self.bufs[b.0 as usize].clone();
                    let base = self.names.fresh(&format!("{name}_scratch"));
                    let len = self.names.fresh(&format!("{name}_len"));
                    args.push(self.d.buffer_arg(ty, &base, false));
                    args.push(format!("const {ity} {len}"));
                    self.scratch.insert(b, (base, len));
                }
                KArg::Dim(d) => args.push(format!("const {ity} {}", self.dims[d as usize])),
                KArg::Param(p) => {
                    let t = f.params[p as usize].dtype;
                    self.note_type(t);
                    args.push(format!("const {} {}", self.d.param_type(t), self.params[p as usize]));
                }
            }
        }
        let name = self.kernel_names[i].clone();
        self.open(&format!("{} {name}({}) {{", self.d.kernel_prefix(), args.join(", ")));
        // Hardware indices the body reads.
        let mut used: BTreeSet<Hw> = BTreeSet::new();
        k.body.visit_exprs(&mut |e| {
            e.visit(&mut |x| {
                if let Expr::Var(v) = x
                    && let Some(h) = k.hw.get(&v.id)
                {
                    used.insert(*h);
                }
            })
        });
        if !k.scratch.is_empty() {
            used.insert(Hw::GlobalThread);
        }
        let by_hw: HashMap<Hw, VarId> = k.hw.iter().map(|(v, h)| (*h, *v)).collect();
        for h in used {
            let n = self.names.fresh(h.var_name());
            self.line(&format!("const {ity} {n} = {};", self.d.hw(h)));
            if let Some(v) = by_hw.get(&h) {
                self.vars.insert(*v, n.clone());
                self.nonneg.insert(*v);
            }
            self.hw_names.insert(h, n);
        }
        for b in &k.shared {
            let buf = f.buffer(*b);
            self.note_type(buf.dtype);
            let ty = self.d.storage_type(buf.dtype, false);
            let len = buf.const_len().unwrap_or(1).max(1);
            let line = self.d.shared_decl(ty, &self.bufs[b.0 as usize].clone(), len);
            self.line(&line);
        }
        self.stmt(&k.body);
        self.close("}");
    }

    // ---- statements ------------------------------------------------------------

    fn stmt(&mut self, s: &KStmt) {
        match s {
            KStmt::Nop => {}
            KStmt::Seq(v) => v.iter().for_each(|x| self.stmt(x)),
            KStmt::For { var, start, end, step, unroll, body } => {
                let start_c = self.expr(start);
                let nonneg = self.nonneg(start) && step.as_ref().is_none_or(|s| self.nonneg(s));
                self.names.push();
                let name = self.bind(*var, nonneg);
                let end_c = self.expr(end);
                let inc = match step {
                    None => format!("{name}++"),
                    Some(s) => {
                        let c = self.expr(s);
                        format!("{name} += {}", c.s)
                    }
                };
                if *unroll && let Some(p) = self.d.unroll_pragma() {
                    self.line(p);
                }
                let ity = self.index_type();
                self.open(&format!("for ({ity} {name} = {}; {name} < {}; {inc}) {{", start_c.s, end_c.at(11)));
                self.stmt(body);
                self.close("}");
                self.names.pop();
            }
            KStmt::Let { var, value } => {
                let v = self.expr(value);
                if self.pure_index(value) {
                    self.index_vars.insert(var.id);
                }
                let nonneg = self.index_vars.contains(&var.id) && self.nonneg(value);
                let ty = self.vt(var.dtype);
                let name = self.bind(*var, nonneg);
                self.line(&format!("const {ty} {name} = {};", v.s));
            }
            KStmt::If { cond, then, els } => {
                let c = self.expr(cond);
                self.open(&format!("if ({}) {{", c.s));
                self.stmt(then);
                let mut els = els.as_deref();
                while let Some(e) = els {
                    if let KStmt::If { cond, then, els: next } = e {
                        let c = self.expr(cond);
                        self.close(&format!("}} else if ({}) {{", c.s));
                        self.indent += 1;
                        self.names.push();
                        self.stmt(then);
                        els = next.as_deref();
                    } else {
                        self.close("} else {");
                        self.indent += 1;
                        self.names.push();
                        self.stmt(e);
                        els = None;
                    }
                }
                self.close("}");
            }
            KStmt::Store { buf, idx, value } => {
                let t = self.g.func.buffer(*buf).dtype;
                let io = self.io(*buf);
                let i = self.expr(idx);
                let v = match accumulate(*buf, idx, value) {
                    Some(fma) => self.expr(&fma),
                    None => self.expr(value),
                };
                if io && t == DType::BF16 && self.d.small_floats() == SmallFloats::AsFloat {
                    self.helper(Helper::F32ToBf16);
                }
                let name = self.bufs[buf.0 as usize].clone();
                let line = self.d.store(t, io, &name, &i, &v);
                self.line(&format!("{line};"));
            }
            KStmt::Barrier => {
                let b = self.d.barrier();
                self.line(b);
            }
            KStmt::Private { buf, len } => {
                let t = self.g.func.buffer(*buf).dtype;
                self.note_type(t);
                let ty = self.d.storage_type(t, false);
                let name = self.bufs[buf.0 as usize].clone();
                self.line(&format!("{ty} {name}[{len}];"));
            }
            KStmt::Scratch { buf } => {
                let t = self.g.func.buffer(*buf).dtype;
                let ty = self.d.storage_type(t, false);
                let name = self.bufs[buf.0 as usize].clone();
                let (base, len) = self.scratch.get(buf).cloned().unwrap_or_default();
                let gt = self.hw_names.get(&Hw::GlobalThread).cloned().unwrap_or_default();
                let line = self.d.scratch_decl(ty, &name, &base, &format!("{gt} * {len}"));
                self.line(&line);
            }
        }
    }

    // ---- expressions -----------------------------------------------------------

    /// `true` for `i64` arithmetic of loop variables, dims and literals.
    fn pure_index(&self, e: &Expr) -> bool {
        e.dtype() == DType::I64
            && match e {
                Expr::Const(_) | Expr::Dim(_) => true,
                Expr::Var(v) => self.index_vars.contains(&v.id),
                Expr::Unary(UnOp::Neg, a) => self.pure_index(a),
                Expr::Binary(_, a, b) => self.pure_index(a) && self.pure_index(b),
                _ => false,
            }
    }

    fn nonneg(&self, e: &Expr) -> bool {
        match e {
            Expr::Const(s) => s.dtype().is_int() && s.as_i64().is_some_and(|v| v >= 0),
            Expr::Dim(_) => true,
            Expr::Var(v) => self.nonneg.contains(&v.id),
            Expr::Binary(BinOp::Add | BinOp::Mul | BinOp::Min, a, b) => self.nonneg(a) && self.nonneg(b),
            Expr::Binary(BinOp::Div, a, b) => self.nonneg(a) && self.positive(b),
            Expr::Binary(BinOp::Max, a, b) => self.nonneg(a) || self.nonneg(b),
            Expr::Binary(BinOp::Rem, _, b) => self.positive(b),
            _ => false,
        }
    }

    /// `true` if `e` is at least 1 whatever the variables' values.
    fn positive(&self, e: &Expr) -> bool {
        match e {
            Expr::Const(s) => s.dtype().is_int() && s.as_i64().is_some_and(|v| v > 0),
            Expr::Binary(BinOp::Max, a, b) => self.positive(a) || self.positive(b),
            Expr::Binary(BinOp::Min | BinOp::Mul, a, b) => self.positive(a) && self.positive(b),
            Expr::Binary(BinOp::Add, a, b) => {
                (self.positive(a) && self.nonneg(b)) || (self.nonneg(a) && self.positive(b))
            }
            _ => false,
        }
    }

    /// An expression as a call argument: literals get their type's suffix
    /// (overloaded built-ins need both arguments of one type).
    fn arg(&mut self, e: &Expr) -> C {
        match e {
            Expr::Const(s) => self.lit(*s, true),
            _ => self.expr(e),
        }
    }

    fn expr(&mut self, e: &Expr) -> C {
        self.note_type(e.dtype());
        match e {
            Expr::Const(s) => self.lit(*s, false),
            Expr::Var(v) => C::atom(self.vars.get(&v.id).cloned().unwrap_or_else(|| format!("v{}", v.id.0))),
            Expr::Dim(d) => C::atom(self.dims.get(*d as usize).cloned().unwrap_or_default()),
            Expr::Param(p, t) => {
                let name = self.params.get(*p as usize).cloned().unwrap_or_default();
                if *t == DType::Bool && self.d.param_type(*t) != "bool" {
                    C::new(format!("{name} != 0"), 9)
                } else {
                    C::atom(name)
                }
            }
            Expr::Load(l) => self.load(l),
            Expr::Unary(op, a) => self.unary(*op, a, e),
            Expr::Binary(op, a, b) => self.binary(*op, a, b, e),
            Expr::Cmp(op, a, b) => self.cmp(*op, a, b),
            Expr::And(a, b) => {
                let (x, y) = (self.expr(a), self.expr(b));
                C::new(format!("{} && {}", x.at(5), y.at(6)), 5)
            }
            Expr::Or(a, b) => {
                let (x, y) = (self.expr(a), self.expr(b));
                C::new(format!("{} || {}", x.at(5), y.at(5)), 4)
            }
            Expr::Cast(t, a) => {
                let x = self.expr(a);
                self.cast(a.dtype(), *t, x)
            }
            Expr::Select(c, a, b) | Expr::If(c, a, b) => {
                let t = a.dtype();
                // Typed arms: `c ? 10 : -1` is an `int` in C, and
                // `max(long, int)` is ambiguous in OpenCL.
                let (c, x, y) = (self.expr(c), self.arg(a), self.arg(b));
                let r = C::new(format!("{} ? {} : {}", c.at(4), x.at(4), y.at(3)), 3);
                // `?:` promotes 8- and 16-bit operands to int.
                if t.is_int() && t.bits() < 32 { C::cast(self.d.value_type(t), &r) } else { r }
            }
            Expr::Call(f, args) => self.call(*f, args),
        }
    }

    fn lit(&mut self, s: Scalar, typed: bool) -> C {
        let neg = |text: String| {
            let p = if text.starts_with('-') { 14 } else { 16 };
            C::new(text, p)
        };
        match s {
            Scalar::Bool(b) => C::atom(if b { "true" } else { "false" }),
            Scalar::I64(v) => {
                let suf = self.d.i64_suffix();
                if v == i64::MIN {
                    C::new(format!("-9223372036854775807{suf} - 1{suf}"), 12)
                } else if typed || v.unsigned_abs() > i32::MAX as u64 {
                    neg(format!("{v}{suf}"))
                } else {
                    neg(v.to_string())
                }
            }
            Scalar::I32(v) => {
                if v == i32::MIN {
                    C::new("-2147483647 - 1", 12)
                } else {
                    neg(v.to_string())
                }
            }
            Scalar::I8(_) | Scalar::I16(_) | Scalar::U8(_) | Scalar::U16(_) => {
                let v = s.as_i64().unwrap_or(0);
                C::cast(self.d.value_type(s.dtype()), &neg(v.to_string()))
            }
            Scalar::U32(v) => C::atom(format!("{v}u")),
            Scalar::U64(v) => C::atom(format!("{v}{}", self.d.u64_suffix())),
            Scalar::F32(v) => {
                if v.is_finite() {
                    neg(format!("{v:?}f"))
                } else {
                    C::new(self.d.f32_special(v), 14)
                }
            }
            Scalar::F64(v) => {
                self.uses_f64 = true;
                if v.is_finite() { neg(format!("{v:?}")) } else { C::new(self.d.f64_special(v), 14) }
            }
            Scalar::F16(v) => {
                self.uses_f16 = true;
                let f = self.lit(Scalar::F32(v.to_f32()), false);
                self.narrow_exact(DType::F16, f)
            }
            Scalar::BF16(v) => {
                self.uses_bf16 = true;
                let f = self.lit(Scalar::F32(v.to_f32()), false);
                self.narrow_exact(DType::BF16, f)
            }
        }
    }

    fn load(&mut self, l: &Load) -> C {
        let idx = self.expr(&l.idx[0]);
        let io = self.io(l.buf);
        if io && l.dtype == DType::BF16 && self.d.small_floats() == SmallFloats::AsFloat {
            self.helper(Helper::Bf16ToF32);
        }
        let name = self.bufs[l.buf.0 as usize].clone();
        self.d.load(l.dtype, io, &name, &idx)
    }

    // ---- f16 / bf16 --------------------------------------------------------------

    fn is_small(t: DType) -> bool {
        matches!(t, DType::F16 | DType::BF16)
    }

    /// A value of float type `t` as a C `float`.
    fn widen(&mut self, t: DType, x: C) -> C {
        match t {
            DType::F16 | DType::BF16 if self.d.small_floats() == SmallFloats::Native => self.d.small_to_f32(t, &x),
            DType::F64 => C::cast("float", &x),
            _ => x,
        }
    }

    /// A C `float` rounded to float type `t`.
    fn narrow(&mut self, t: DType, x: C) -> C {
        match t {
            DType::F16 | DType::BF16 => match self.d.small_from_f32(t, &x) {
                Some(c) => c,
                None => {
                    let h = if t == DType::F16 { Helper::RoundF16 } else { Helper::RoundBf16 };
                    let name = self.helper(h);
                    C::call(&name, &[x])
                }
            },
            DType::F64 => C::cast("double", &x),
            _ => x,
        }
    }

    /// A C `float` already exact in `t` (a literal, a min/max of values).
    fn narrow_exact(&mut self, t: DType, x: C) -> C {
        match self.d.small_floats() {
            SmallFloats::AsFloat if Self::is_small(t) => x,
            _ => self.narrow(t, x),
        }
    }

    /// A C `double` rounded once to float type `t`.
    fn narrow_f64(&mut self, t: DType, x: C) -> C {
        match t {
            DType::F64 => x,
            DType::F32 => C::cast("float", &x),
            _ => match self.d.small_from_f64(t, &x) {
                Some(c) => c,
                None => {
                    self.uses_f64 = true;
                    let h = if t == DType::F16 { Helper::F16FromF64 } else { Helper::Bf16FromF64 };
                    let name = self.helper(h);
                    C::call(&name, &[x])
                }
            },
        }
    }

    // ---- operators ---------------------------------------------------------------

    fn unsigned_of(&self, t: DType) -> &'static str {
        self.d.value_type(if t.bits() > 32 { DType::U64 } else { DType::U32 })
    }

    /// `a op b` wrapping in `t`: through the unsigned type of the width.
    fn wrap(&mut self, t: DType, sym: &str, p: u8, a: C, b: C) -> C {
        if matches!(t, DType::U32 | DType::U64) {
            return C::new(format!("{} {sym} {}", a.at(p), b.at(p + 1)), p);
        }
        let (ty, u) = (self.vt(t), self.unsigned_of(t));
        let inner = C::new(format!("{} {sym} {}", C::cast(u, &a).at(p), C::cast(u, &b).at(p + 1)), p);
        C::cast(ty, &inner)
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr, whole: &Expr) -> C {
        let t = a.dtype();
        if t == DType::I64 && self.pure_index(whole) {
            return self.index_binary(op, a, b);
        }
        if t == DType::Bool {
            let (x, y) = (self.expr(a), self.expr(b));
            return match op {
                BinOp::Min => C::new(format!("{} && {}", x.at(5), y.at(6)), 5),
                BinOp::Max => C::new(format!("{} || {}", x.at(5), y.at(5)), 4),
                _ => x,
            };
        }
        if t.is_int() {
            return self.int_binary(op, t, a, b);
        }
        let (x, y) = (self.arg(a), self.arg(b));
        let small = Self::is_small(t);
        let native = self.d.small_floats() == SmallFloats::Native;
        let sym = match op {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            _ => "",
        };
        if small
            && native
            && let Some(f) = self.d.small_native_op(sym)
        {
            return C::call(f, &[x, y]);
        }
        let ft = if small { DType::F32 } else { t };
        let (x, y) = if small { (self.widen(t, x), self.widen(t, y)) } else { (x, y) };
        let r = match op {
            BinOp::Add | BinOp::Sub => C::new(format!("{} {sym} {}", x.at(12), y.at(13)), 12),
            BinOp::Mul | BinOp::Div => C::new(format!("{} {sym} {}", x.at(13), y.at(14)), 13),
            BinOp::Rem => C::call(self.d.fmod(ft), &[x, y]),
            BinOp::Min | BinOp::Max => {
                // `+ 0.0`: a zero result is +0.0 whichever operand a tie of
                // 0.0 and -0.0 gives (docs/language.md; every target).
                let m = C::call(self.d.fminmax(op == BinOp::Max, ft), &[x, y]);
                let zero = if ft == DType::F64 { "0.0" } else { "0.0f" };
                let r = C::new(format!("{} + {zero}", m.at(12)), 12);
                // min/max return one of the operands: already exact.
                return if small { self.narrow_exact(t, r) } else { r };
            }
        };
        if small { self.narrow(t, r) } else { r }
    }

    fn index_binary(&mut self, op: BinOp, a: &Expr, b: &Expr) -> C {
        match op {
            BinOp::Add | BinOp::Sub => {
                let (x, y) = (self.expr(a), self.expr(b));
                let sym = if op == BinOp::Add { "+" } else { "-" };
                C::new(format!("{} {sym} {}", x.at(12), y.at(13)), 12)
            }
            BinOp::Mul => {
                let (x, y) = (self.expr(a), self.expr(b));
                C::new(format!("{} * {}", x.at(13), y.at(14)), 13)
            }
            BinOp::Div | BinOp::Rem => {
                if self.positive(b) && self.nonneg(a) {
                    let (x, y) = (self.expr(a), self.expr(b));
                    let sym = if op == BinOp::Div { "/" } else { "%" };
                    C::new(format!("{} {sym} {}", x.at(13), y.at(14)), 13)
                } else {
                    let h = if op == BinOp::Div { Helper::Div(DType::I64) } else { Helper::Rem(DType::I64) };
                    let name = self.helper(h);
                    let (x, y) = (self.arg(a), self.arg(b));
                    C::call(&name, &[x, y])
                }
            }
            BinOp::Min | BinOp::Max => {
                let (x, y) = (self.arg(a), self.arg(b));
                match self.d.int_minmax(op == BinOp::Max, DType::I64, &x, &y) {
                    Some(c) => c,
                    None => {
                        let name = self.helper(Helper::MinMax(op == BinOp::Max, DType::I64));
                        C::call(&name, &[x, y])
                    }
                }
            }
        }
    }

    fn int_binary(&mut self, op: BinOp, t: DType, a: &Expr, b: &Expr) -> C {
        match op {
            BinOp::Add | BinOp::Sub | BinOp::Mul => {
                let (x, y) = (self.expr(a), self.expr(b));
                let (sym, p) = match op {
                    BinOp::Add => ("+", 12),
                    BinOp::Sub => ("-", 12),
                    _ => ("*", 13),
                };
                self.wrap(t, sym, p, x, y)
            }
            BinOp::Div | BinOp::Rem => {
                // 8- and 16-bit values go through the 32-bit helper.
                let wide = match t {
                    DType::I8 | DType::I16 => DType::I32,
                    DType::U8 | DType::U16 => DType::U32,
                    t => t,
                };
                let h = if op == BinOp::Div { Helper::Div(wide) } else { Helper::Rem(wide) };
                let name = self.helper(h);
                let (x, y) = (self.expr(a), self.expr(b));
                let r = C::call(&name, &[x, y]);
                if wide == t { r } else { C::cast(self.d.value_type(t), &r) }
            }
            BinOp::Min | BinOp::Max => {
                let (x, y) = (self.arg(a), self.arg(b));
                match self.d.int_minmax(op == BinOp::Max, t, &x, &y) {
                    Some(c) => c,
                    None => {
                        let name = self.helper(Helper::MinMax(op == BinOp::Max, t));
                        C::call(&name, &[x, y])
                    }
                }
            }
        }
    }

    fn unary(&mut self, op: UnOp, a: &Expr, whole: &Expr) -> C {
        let t = a.dtype();
        let x = self.expr(a);
        match (op, t) {
            (UnOp::Not, DType::Bool) => C::new(format!("!{}", x.at(15)), 15),
            (UnOp::Not, t) if t.is_int() => {
                let ty = self.vt(t);
                C::cast(ty, &C::new(format!("~{}", x.at(15)), 15))
            }
            (UnOp::Neg, DType::I64) if self.pure_index(whole) => C::new(format!("-{}", x.at(15)), 15),
            (UnOp::Neg, t) if t.is_int() => {
                let (ty, u) = (self.vt(t), self.unsigned_of(t));
                C::cast(ty, &C::new(format!("0 - {}", C::cast(u, &x).at(13)), 12))
            }
            (UnOp::Neg, t) if Self::is_small(t) && self.d.small_floats() == SmallFloats::Native => {
                match self.d.small_native_op("neg") {
                    Some(f) => C::call(f, &[x]),
                    None => C::new(format!("-{}", x.at(15)), 15),
                }
            }
            (UnOp::Neg, t) if t.is_float() => C::new(format!("-{}", x.at(15)), 15),
            _ => x,
        }
    }

    fn cmp(&mut self, op: CmpOp, a: &Expr, b: &Expr) -> C {
        let t = a.dtype();
        let (x, y) = (self.expr(a), self.expr(b));
        let sym = op.symbol();
        if Self::is_small(t)
            && self.d.small_floats() == SmallFloats::Native
            && let Some(f) = self.d.small_native_op(sym)
        {
            return C::call(f, &[x, y]);
        }
        let p = if matches!(op, CmpOp::Eq | CmpOp::Ne) { 9 } else { 10 };
        C::new(format!("{} {sym} {}", x.at(11), y.at(11)), p)
    }

    fn cast(&mut self, from: DType, to: DType, x: C) -> C {
        if from == to {
            return x;
        }
        self.note_type(to);
        match (from, to) {
            (_, DType::Bool) => {
                if from.is_float() {
                    let (f, zero) = if from == DType::F64 { (x, "0.0") } else { (self.widen(from, x), "0.0f") };
                    C::new(format!("{} != {zero}", f.at(11)), 9)
                } else {
                    C::new(format!("{} != 0", x.at(11)), 9)
                }
            }
            (DType::Bool, t) if t.is_int() => C::cast(self.d.value_type(t), &x),
            (DType::Bool, DType::F32 | DType::F64) => C::cast(self.d.value_type(to), &x),
            (DType::Bool, t) => {
                let f = C::cast("float", &x);
                self.narrow_exact(t, f)
            }
            (f, t) if f.is_int() && t.is_int() => C::cast(self.d.value_type(t), &x),
            (f, DType::F32 | DType::F64) if f.is_int() => C::cast(self.d.value_type(to), &x),
            (f, DType::F16) if f.is_int() => {
                // Exact: an integer that rounds differently through f32 is
                // beyond f16's range either way.
                let f = C::cast("float", &x);
                self.narrow(DType::F16, f)
            }
            (f, DType::BF16) if f.is_int() => {
                if f.bits() <= 16 {
                    let c = C::cast("float", &x);
                    self.narrow(DType::BF16, c)
                } else {
                    // Rounded once from the f64 value, as `as` does.
                    self.uses_f64 = true;
                    let c = C::cast("double", &x);
                    self.narrow_f64(DType::BF16, c)
                }
            }
            (f, t) if f.is_float() && t.is_int() => {
                let src = if f == DType::F64 { x } else { self.widen(f, x) };
                // A device conversion takes the source type; the portable
                // helper takes a double.
                let from =
                    if f != DType::F64 && self.d.float_to_int(t, &src).is_some() { DType::F32 } else { DType::F64 };
                let name = self.helper(Helper::Sat(t, from));
                C::call(&name, &[src])
            }
            (DType::F32, DType::F64) => C::cast("double", &x),
            (DType::F64, DType::F32) => C::cast("float", &x),
            (DType::F64, t) => self.narrow_f64(t, x),
            (f, DType::F64) => {
                let c = self.widen(f, x);
                C::cast("double", &c)
            }
            (f, t) => {
                // Between f32, f16 and bf16: through f32 (exact), rounded once.
                let c = self.widen(f, x);
                self.narrow(t, c)
            }
        }
    }

    fn call(&mut self, f: Builtin, args: &[Expr]) -> C {
        let t = args.first().map(|a| a.dtype()).unwrap_or(DType::F32);
        let mut xs: Vec<C> = args.iter().map(|a| self.arg(a)).collect();
        if t.is_int() || t == DType::Bool {
            return self.int_call(f, t, xs);
        }
        let small = Self::is_small(t);
        let ft = if small { DType::F32 } else { t };
        if small {
            xs = xs.into_iter().map(|x| self.widen(t, x)).collect();
        }
        let exact = matches!(
            f,
            Builtin::Abs | Builtin::Floor | Builtin::Ceil | Builtin::Round | Builtin::Trunc | Builtin::Clamp
        );
        let r = match f {
            Builtin::Sigmoid => {
                let name = self.helper(Helper::Sigmoid(ft));
                C::call(&name, &xs)
            }
            Builtin::Clamp => {
                let name = self.helper(Helper::Clamp(ft));
                C::call(&name, &xs)
            }
            f => C::call(self.d.math(f, ft), &xs),
        };
        match (small, exact) {
            (false, _) => r,
            (true, true) => self.narrow_exact(t, r),
            (true, false) => self.narrow(t, r),
        }
    }

    fn int_call(&mut self, f: Builtin, t: DType, xs: Vec<C>) -> C {
        let x = xs.first().cloned().unwrap_or_else(|| C::atom("0"));
        match f {
            Builtin::Abs if t.is_signed_int() => match self.d.int_abs(t, &x) {
                Some(c) => c,
                None => {
                    let name = self.helper(Helper::Abs(t));
                    C::call(&name, &[x])
                }
            },
            Builtin::Clamp if xs.len() == 3 => {
                let name = self.helper(Helper::Clamp(t));
                C::call(&name, &xs)
            }
            Builtin::Fma if xs.len() == 3 && t.is_int() => {
                let m = self.wrap(t, "*", 13, xs[0].clone(), xs[1].clone());
                self.wrap(t, "+", 12, m, xs[2].clone())
            }
            _ => x,
        }
    }

    // ---- helpers -----------------------------------------------------------------

    /// The name of a helper, emitting it (and what it needs) once.
    fn helper(&mut self, h: Helper) -> String {
        let name = helper_name(h);
        if self.helpers.iter().any(|(x, _)| *x == h) {
            return name;
        }
        // Dependencies first.
        if h == Helper::Bf16FromF64 {
            self.helper(Helper::RoundBf16);
        }
        let text = self.helper_text(h, &name);
        self.helpers.push((h, text));
        name
    }

    fn helper_text(&mut self, h: Helper, name: &str) -> String {
        let pre = self.d.helper_prefix();
        let mut s = String::new();
        let w = &mut s;
        let _ = match h {
            Helper::Div(t) | Helper::Rem(t) => {
                let ty = self.d.value_type(t);
                let div = matches!(h, Helper::Div(_));
                if t.is_unsigned_int() {
                    let op = if div { "/" } else { "%" };
                    writeln!(w, "{pre} {ty} {name}({ty} a, {ty} b) {{\n    return b == 0 ? 0 : a {op} b;\n}}")
                } else if div {
                    let u = self.unsigned_of(t);
                    writeln!(
                        w,
                        "// Floor division; a zero divisor gives 0.\n{pre} {ty} {name}({ty} a, {ty} b) {{\n    if (b == 0) return 0;\n    if (b == -1) return ({ty})(0 - ({u})a);\n    {ty} q = a / b;\n    return (q * b != a && (a < 0) != (b < 0)) ? q - 1 : q;\n}}"
                    )
                } else {
                    writeln!(
                        w,
                        "// Floor remainder (the divisor's sign); a zero divisor gives 0.\n{pre} {ty} {name}({ty} a, {ty} b) {{\n    if (b == 0 || b == -1) return 0;\n    {ty} r = a % b;\n    return (r != 0 && (r < 0) != (b < 0)) ? r + b : r;\n}}"
                    )
                }
            }
            Helper::Clamp(t) if t.is_int() => {
                // `min(max(x, lo), hi)`, as `Scalar::call`.
                let ty = self.d.value_type(t);
                writeln!(
                    w,
                    "{pre} {ty} {name}({ty} x, {ty} lo, {ty} hi) {{\n    {ty} m = x < lo ? lo : x;\n    return m > hi ? hi : m;\n}}"
                )
            }
            Helper::Clamp(t) => {
                let ty = self.d.value_type(t);
                writeln!(
                    w,
                    "{pre} {ty} {name}({ty} x, {ty} lo, {ty} hi) {{\n    return x < lo ? lo : (x > hi ? hi : x);\n}}"
                )
            }
            Helper::Sigmoid(t) => {
                let ty = self.d.value_type(t);
                let exp = self.d.math(Builtin::Exp, t);
                let one = if t == DType::F64 { "1.0" } else { "1.0f" };
                writeln!(w, "{pre} {ty} {name}({ty} x) {{\n    return {one} / ({one} + {exp}(-x));\n}}")
            }
            Helper::MinMax(max, t) => {
                let ty = self.d.value_type(t);
                let op = if max { ">" } else { "<" };
                writeln!(w, "{pre} {ty} {name}({ty} a, {ty} b) {{\n    return a {op} b ? a : b;\n}}")
            }
            Helper::Abs(t) => {
                let ty = self.d.value_type(t);
                let u = self.unsigned_of(t);
                // `a` times ±1 in unsigned arithmetic (wraps at the minimum).
                // NVIDIA's compilers (CUDA and OpenCL) recognise both
                // `a < 0 ? -a : a` and `(a ^ m) - m` as an abs they assume
                // non-negative, and fold `min(abs(LONG_MIN), 0)` to 0.
                let bits = t.bytes() * 8 - 1;
                writeln!(w, "{pre} {ty} {name}({ty} a) {{\n    return ({ty})(({u})a * (({u})(a >> {bits}) | 1));\n}}")
            }
            Helper::Sat(t, from) => {
                let ty = self.d.value_type(t);
                if let Some(conv) = self.d.float_to_int(t, &C::atom("x")) {
                    // The device's saturating conversion, but NaN checked
                    // here: NVIDIA's OpenCL gives LONG_MIN for NaN.
                    let fty = self.d.value_type(from);
                    writeln!(
                        w,
                        "// Like Rust's `as`: saturating, NaN gives 0.\n{pre} {ty} {name}({fty} x) {{\n    return x != x ? 0 : {};\n}}",
                        conv.s
                    )
                } else {
                    let (lo, hi) = texpr_dsl::value::int_range(t);
                    let min = self.lit(Scalar::from_i128(t, lo), true).s;
                    let max = self.lit(Scalar::from_i128(t, hi), true).s;
                    let (flo, fhi) = (format!("{:?}", lo as f64), format!("{:?}", hi as f64));
                    writeln!(
                        w,
                        "// Like Rust's `as`: saturating, NaN gives 0.\n{pre} {ty} {name}(double x) {{\n    return x != x ? 0 : x <= {flo} ? ({min}) : x >= {fhi} ? ({max}) : ({ty})x;\n}}"
                    )
                }
            }
            Helper::RoundF16 => writeln!(
                w,
                "// Rounds to the nearest f16 (held as float).\n{pre} float {name}(float x) {{\n    ushort h;\n    vstore_half_rte(x, 0, (__private half*)&h);\n    return vload_half(0, (__private const half*)&h);\n}}"
            ),
            Helper::F16FromF64 => writeln!(
                w,
                "// Rounds a double once to the nearest f16 (held as float).\n{pre} float {name}(double x) {{\n    ushort h;\n    vstore_half_rte(x, 0, (__private half*)&h);\n    return vload_half(0, (__private const half*)&h);\n}}"
            ),
            Helper::RoundBf16 => writeln!(
                w,
                "// Rounds to the nearest bf16 (held as float), ties to even.\n{pre} float {name}(float x) {{\n    uint u = as_uint(x);\n    if ((u & 0x7fffffffu) > 0x7f800000u) return as_float((u | 0x00400000u) & 0xffff0000u);\n    return as_float((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u);\n}}"
            ),
            Helper::Bf16FromF64 => writeln!(
                w,
                "// Rounds a double once to the nearest bf16: to float rounding to odd, then to bf16.\n{pre} float {name}(double x) {{\n    float f = convert_float_rtz(x);\n    if (!isnan(x) && (double)f != x) f = as_float(as_uint(f) | 1u);\n    return tx_round_bf16(f);\n}}"
            ),
            Helper::Bf16ToF32 => {
                writeln!(w, "{pre} float {name}(ushort b) {{\n    return as_float((uint)b << 16);\n}}")
            }
            Helper::F32ToBf16 => {
                writeln!(w, "{pre} ushort {name}(float x) {{\n    return (ushort)(as_uint(x) >> 16);\n}}")
            }
        };
        s
    }
}

fn helper_name(h: Helper) -> String {
    match h {
        Helper::Div(t) => format!("tx_div_{t}"),
        Helper::Rem(t) => format!("tx_rem_{t}"),
        Helper::Clamp(t) => format!("tx_clamp_{t}"),
        Helper::Sigmoid(t) => format!("tx_sigmoid_{t}"),
        Helper::MinMax(true, t) => format!("tx_max_{t}"),
        Helper::MinMax(false, t) => format!("tx_min_{t}"),
        Helper::Abs(t) => format!("tx_abs_{t}"),
        Helper::Sat(t, DType::F64) => format!("tx_sat_{t}"),
        Helper::Sat(t, from) => format!("tx_sat_{t}_{from}"),
        Helper::RoundF16 => "tx_round_f16".into(),
        Helper::RoundBf16 => "tx_round_bf16".into(),
        Helper::F16FromF64 => "tx_f16_from_f64".into(),
        Helper::Bf16FromF64 => "tx_bf16_from_f64".into(),
        Helper::Bf16ToF32 => "tx_bf16_to_f32".into(),
        Helper::F32ToBf16 => "tx_f32_to_bf16".into(),
    }
}

/// The source of `g` in dialect `d`, with the kernels' C names.
pub fn write<D: Dialect>(d: &D, g: &GpuFunc) -> (String, Vec<String>) {
    let w = Writer::new(String::new(), d, g);
    let names = w.kernel_names().to_vec();
    // Writing into a String cannot fail.
    let text = w.finish().unwrap_or_default();
    (text, names)
}
