//! Scalar code: constants, expressions, arithmetic with SPEC semantics
//! (floor division, NaN-ignoring `min`/`max`, saturating casts), built-ins.

use super::*;

impl<'a> Gen<'a, '_, '_> {
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
    pub(super) fn f64_to(&mut self, t: DType, v: Value) -> CgResult<Value> {
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
                let x = self.guarded(|g| g.expr(a))?;
                self.b.ins().jump(done, &[BlockArg::Value(x)]);
                self.b.switch_to_block(eb);
                let y = self.guarded(|g| g.expr(b))?;
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
    pub(super) fn fminmax_of(&mut self, max: bool, a: Value, b: Value) -> Value {
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
    pub(super) fn divrem(&mut self, div: bool, signed: bool, ty: Type, a: Value, b: Value) -> Value {
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

    pub(super) fn fconst(&mut self, ty: Type, v: f64) -> Value {
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

    pub(super) fn clamp(&mut self, t: DType, x: Value, lo: Value, hi: Value) -> Value {
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
        if t == DType::F32 && crate::codegen::math::has_vector(f) {
            // The inline polynomials, on a scalar: `exp`-like ones work on
            // `F32` directly, the `f64`-based ones on a splat vector.
            if matches!(f, Builtin::Sin | Builtin::Cos | Builtin::Pow | Builtin::Erf) {
                let vs: Vec<Value> = a.iter().map(|v| self.b.ins().splat(types::F32X4, *v)).collect();
                let r = crate::codegen::math::vector_f32(self, f, &vs)?;
                return Ok(self.b.ins().extractlane(r, 0));
            }
            return crate::codegen::math::vector_f32(self, f, a);
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
}
