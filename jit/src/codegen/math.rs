//! Inline polynomial math for `f32`, scalar (`F32`) or vector (`F32X4`).
//!
//! Cephes-style range reduction and minimax polynomials, evaluated with
//! Cranelift instructions only (no calls), so a vectorized `exp` streams
//! at memory speed. Each meets SPEC's 1e-6 relative error over the range
//! where the result is a normal `f32` (checked against `f64` by sweeps in
//! `jit/tests/math.rs`):
//!
//! - `exp`: `x = n ln2 + r`, `r` in `[-ln2/2, ln2]`, degree-6 polynomial,
//!   `2^n` by building the exponent bits (see `M::exp`). `exp2` reduces
//!   `x - round(x)` exactly.
//! - `ln`: `x = m 2^e`, `m` in `[sqrt(1/2), sqrt(2))`, degree-9 polynomial in
//!   `m - 1`; subnormal inputs are rescaled. `log2 = ln * log2(e)`.
//! - `tanh`: odd polynomial below 0.625, `1 - 2/(exp(2|x|) + 1)` above.
//! - `sigmoid`: `1 / (1 + exp(-x))`.
//!
//! Special values follow IEEE: NaN propagates, `exp(±inf)` is `inf`/0,
//! `ln(0) = -inf`, `ln(x < 0) = NaN`. Vector `sin`/`cos` reduce and
//! evaluate in `f64` (see `sincos`); a vector with a lane beyond
//! `|x| <= 2^18` (or NaN/inf) calls the exact `f64` functions lane by lane.
//! Vector `pow` likewise computes `2^(y log2 x)` in `f64` where `x` is a
//! positive normal number and `|y| <= 2^20`, and vector `erf` sums its
//! series in `f64`. Scalar `f32` code uses the same inline forms (the
//! `f64`-based ones on a splat vector); `f64`, `f16` and `bf16` call the
//! exact `f64` functions.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::types::{self, Type};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value};
use texpr_dsl::Builtin;

use crate::codegen::Gen;
use crate::error::{CgResult, cg_err};

/// Whether `f` has an inline `f32` form.
pub(crate) fn has_vector(f: Builtin) -> bool {
    matches!(f, Builtin::Exp | Builtin::Exp2 | Builtin::Ln | Builtin::Log2 | Builtin::Tanh | Builtin::Sigmoid)
        || (matches!(f, Builtin::Sin | Builtin::Cos | Builtin::Pow | Builtin::Erf)
            && crate::codegen::vector::host_has_fma())
}

/// `f` on an `F32X4` (or `F32`) value.
pub(crate) fn vector_f32(g: &mut Gen<'_, '_, '_>, f: Builtin, a: &[Value]) -> CgResult<Value> {
    let x = a[0];
    let ty = g.b.func.dfg.value_type(x);
    let mut m = M { g, ty };
    Ok(match f {
        Builtin::Exp => m.exp(x, false),
        Builtin::Exp2 => m.exp(x, true),
        Builtin::Ln => m.ln(x),
        Builtin::Log2 => {
            let l = m.ln(x);
            let c = m.c(std::f32::consts::LOG2_E);
            m.g.b.ins().fmul(l, c)
        }
        Builtin::Tanh => m.tanh(x),
        Builtin::Sigmoid => {
            let n = m.g.b.ins().fneg(x);
            let e = m.exp(n, false);
            let one = m.c(1.0);
            let d = m.g.b.ins().fadd(one, e);
            m.g.b.ins().fdiv(one, d)
        }
        Builtin::Sin | Builtin::Cos if ty.is_vector() => return sincos(g, x, f == Builtin::Cos),
        Builtin::Pow if ty.is_vector() => return pow(g, x, a[1]),
        Builtin::Erf if ty.is_vector() => erf(g, x),
        _ => return Err(cg_err(format!("no inline f32 `{}`", f.name()))),
    })
}

/// Lanes `|x|` up to this take the inline `sin`/`cos`; a vector with a
/// larger (or non-finite) lane calls the `f64` functions lane by lane.
const SINCOS_LIMIT: f32 = 262_144.0;

/// `sin`/`cos` of an `F32X4`, computed in `f64` (two `F64X2` halves):
/// `k = round(x 2/pi)` (adding `1.5 * 2^52`, whose low bits are then `k`),
/// `r = x - k pi/2` with `pi/2` in two parts and FMAs (`r` in
/// `[-pi/4, pi/4]`, accurate to ~1e-16 relative: the result is accurate
/// near the zeros of `sin`/`cos` too), Taylor polynomials of `sin r`
/// (to `r^13`) and `cos r` (to `r^14`), error below 1e-13, and the quadrant
/// `k mod 4` picking and negating them; rounded once to `f32`.
fn sincos(g: &mut Gen<'_, '_, '_>, x: Value, cos: bool) -> CgResult<Value> {
    let ax = g.b.ins().fabs(x);
    let lim = g.vconst(types::F32X4, SINCOS_LIMIT.to_bits() as u64);
    let ok = g.b.ins().fcmp(FloatCC::LessThanOrEqual, ax, lim);
    let name = if cos { "texpr_cos_f64" } else { "texpr_sin_f64" };
    fast_or_lanes(g, ok, &[x], name, &mut |g, h| sincos_f64x2(g, h[0], cos))
}

/// `pow(x, y)` of `F32X4`s as `2^(y log2 x)` in `f64` halves, for lanes
/// with `x` a positive normal number and `|y| <= 2^20` (else the `f64`
/// function lane by lane): `log2 x` from the exponent and
/// `ln m = 2 atanh((m - 1)/(m + 1))` for `m` in `[sqrt(1/2), sqrt(2))`
/// (series to `s^13`, error < 1e-11); `2^t` as `2^n 2^r` with
/// `r = t - round(t)` in `[-1/2, 1/2]`, `e^(r ln 2)` by a degree-12 Taylor
/// polynomial (error < 1e-15) and `2^n` applied in two halves so `n` may
/// leave the `f64` exponent range; `y log2 x` to ~1e-8 absolute, so the
/// `f32` result is within ~1e-8 relative (overflow and underflow round
/// once, in the conversion to `f32`).
fn pow(g: &mut Gen<'_, '_, '_>, x: Value, y: Value) -> CgResult<Value> {
    let c = |g: &mut Gen<'_, '_, '_>, v: f32| g.vconst(types::F32X4, v.to_bits() as u64);
    let (minp, maxp, ylim) = (c(g, f32::MIN_POSITIVE), c(g, f32::MAX), c(g, 1_048_576.0));
    let a = g.b.ins().fcmp(FloatCC::GreaterThanOrEqual, x, minp);
    let b = g.b.ins().fcmp(FloatCC::LessThanOrEqual, x, maxp);
    let ay = g.b.ins().fabs(y);
    let cy = g.b.ins().fcmp(FloatCC::LessThanOrEqual, ay, ylim);
    let ab = g.b.ins().band(a, b);
    let ok = g.b.ins().band(ab, cy);
    fast_or_lanes(g, ok, &[x, y], "texpr_pow_f64", &mut |g, h| pow_f64x2(g, h[0], h[1]))
}

/// `fast` on the `f64` halves of `args` where every lane of `ok` is set;
/// the `f64` runtime function `name` lane by lane otherwise.
fn fast_or_lanes(
    g: &mut Gen<'_, '_, '_>,
    ok: Value,
    args: &[Value],
    name: &'static str,
    fast: &mut dyn FnMut(&mut Gen<'_, '_, '_>, &[Value]) -> Value,
) -> CgResult<Value> {
    let all = g.b.ins().vall_true(ok);
    let (fast_b, slow, join) = (g.b.create_block(), g.b.create_block(), g.b.create_block());
    let res = g.b.append_block_param(join, types::F32X4);
    g.b.ins().brif(all, fast_b, &[], slow, &[]);

    g.b.switch_to_block(slow);
    let params = vec![types::F64; args.len()];
    let mut v = g.vconst(types::F32X4, 0);
    for k in 0..4u8 {
        let mut ds = Vec::with_capacity(args.len());
        for a in args {
            let l = g.b.ins().extractlane(*a, k);
            ds.push(g.b.ins().fpromote(types::F64, l));
        }
        let r =
            g.call(name, &params, &[types::F64], &ds)?.ok_or_else(|| cg_err(format!("`{name}` returned nothing")))?;
        let r = g.b.ins().fdemote(types::F32, r);
        v = g.b.ins().insertlane(v, r, k);
    }
    g.b.ins().jump(join, &[v.into()]);

    g.b.switch_to_block(fast_b);
    let y = f64_halves(g, args, fast);
    g.b.ins().jump(join, &[y.into()]);

    g.b.switch_to_block(join);
    Ok(res)
}

/// `f` on the two `F64X2` halves of `F32X4` arguments, rounded back once.
fn f64_halves(
    g: &mut Gen<'_, '_, '_>,
    args: &[Value],
    f: &mut dyn FnMut(&mut Gen<'_, '_, '_>, &[Value]) -> Value,
) -> Value {
    let mut lo = Vec::with_capacity(args.len());
    let mut hi = Vec::with_capacity(args.len());
    for a in args {
        lo.push(g.b.ins().fvpromote_low(*a));
        let h = halves(g, *a, *a, 8);
        hi.push(g.b.ins().fvpromote_low(h));
    }
    let ylo = f(g, &lo);
    let yhi = f(g, &hi);
    let dlo = g.b.ins().fvdemote(ylo);
    let dhi = g.b.ins().fvdemote(yhi);
    halves(g, dlo, dhi, 0)
}

/// `erf` of an `F32X4` in `f64` halves: the Maclaurin series
/// `2/sqrt(pi) x sum (-1)^n x^2n / (n! (2n + 1))` to `n = 60` for
/// `|x| < 4` (terms below 1e-12 there; the alternating terms peak near
/// 1e5 at `|x| = 4`, so cancellation costs ~1e-11), `sign(x)` beyond
/// (`erfc(4) = 1.5e-8` rounds to 1 in `f32`); NaN propagates.
fn erf(g: &mut Gen<'_, '_, '_>, x: Value) -> Value {
    f64_halves(g, &[x], &mut |g, h| {
        let x = h[0];
        let z = g.b.ins().fmul(x, x);
        let mut fact = 1.0f64;
        let mut cs = Vec::with_capacity(61);
        for n in 0..=60u32 {
            if n > 0 {
                fact *= f64::from(n);
            }
            let sign = if n % 2 == 0 { 1.0 } else { -1.0 };
            cs.push(sign / (fact * f64::from(2 * n + 1)));
        }
        cs.reverse();
        let p = horner64(g, z, &cs);
        let k = f64c(g, std::f64::consts::FRAC_2_SQRT_PI);
        let xk = g.b.ins().fmul(x, k);
        let series = g.b.ins().fmul(xk, p);
        // |x| >= 4: copysign(1, x).
        let fl = MemFlagsData::new();
        let ax = g.b.ins().fabs(x);
        let four = f64c(g, 4.0);
        let big = g.b.ins().fcmp(FloatCC::GreaterThanOrEqual, ax, four);
        let xb = g.b.ins().bitcast(types::I64X2, fl, x);
        let sign = g.vconst(types::I64X2, 1u64 << 63);
        let sb = g.b.ins().band(xb, sign);
        let one = g.vconst(types::I64X2, 1f64.to_bits());
        let ob = g.b.ins().bor(sb, one);
        let signed_one = g.b.ins().bitcast(types::F64X2, fl, ob);
        let bigf = g.b.ins().bitcast(types::F64X2, fl, big);
        g.b.ins().bitselect(bigf, signed_one, series)
    })
}

fn f64c(g: &mut Gen<'_, '_, '_>, v: f64) -> Value {
    g.vconst(types::F64X2, v.to_bits())
}

/// `a_0 + x (a_1 + x (a_2 + ...))` for `cs` = `[a_n, ..., a_0]`.
fn horner64(g: &mut Gen<'_, '_, '_>, x: Value, cs: &[f64]) -> Value {
    let mut p = f64c(g, cs[0]);
    for k in &cs[1..] {
        let kv = f64c(g, *k);
        p = g.b.ins().fma(p, x, kv);
    }
    p
}

fn pow_f64x2(g: &mut Gen<'_, '_, '_>, x: Value, y: Value) -> Value {
    let fl = MemFlagsData::new();
    let ic = |g: &mut Gen<'_, '_, '_>, v: u64| g.vconst(types::I64X2, v);
    // x = m 2^e, m in [1, 2).
    let bits = g.b.ins().bitcast(types::I64X2, fl, x);
    let sh = g.b.ins().iconst(types::I32, 52);
    let eb = g.b.ins().ushr(bits, sh);
    let magic = ic(g, 0x4330_0000_0000_0000);
    let eb = g.b.ins().bor(eb, magic);
    let ef = g.b.ins().bitcast(types::F64X2, fl, eb);
    let bias = f64c(g, 4_503_599_627_370_496.0 + 1023.0); // 2^52 + 1023
    let e = g.b.ins().fsub(ef, bias);
    let mant = ic(g, 0x000F_FFFF_FFFF_FFFF);
    let one_bits = ic(g, 0x3FF0_0000_0000_0000);
    let mb = g.b.ins().band(bits, mant);
    let mb = g.b.ins().bor(mb, one_bits);
    let m = g.b.ins().bitcast(types::F64X2, fl, mb);
    // m >= sqrt 2: m / 2, e + 1.
    let sqrt2 = f64c(g, std::f64::consts::SQRT_2);
    let big = g.b.ins().fcmp(FloatCC::GreaterThanOrEqual, m, sqrt2);
    let bigf = g.b.ins().bitcast(types::F64X2, fl, big);
    let half = f64c(g, 0.5);
    let mh = g.b.ins().fmul(m, half);
    let m = g.b.ins().bitselect(bigf, mh, m);
    let one = f64c(g, 1.0);
    let one_b = g.b.ins().bitcast(types::I64X2, fl, one);
    let inc = g.b.ins().band(big, one_b);
    let inc = g.b.ins().bitcast(types::F64X2, fl, inc);
    let e = g.b.ins().fadd(e, inc);
    // ln m = 2 s (1 + s^2/3 + s^4/5 + ... + s^12/13), s = (m - 1)/(m + 1).
    let num = g.b.ins().fsub(m, one);
    let den = g.b.ins().fadd(m, one);
    let s = g.b.ins().fdiv(num, den);
    let s2 = g.b.ins().fmul(s, s);
    let cs: Vec<f64> = (0..=6).rev().map(|k| 1.0 / (2 * k + 1) as f64).collect();
    let p = horner64(g, s2, &cs);
    let two_log2e = f64c(g, 2.0 * std::f64::consts::LOG2_E);
    let sp = g.b.ins().fmul(s, p);
    let log2x = g.b.ins().fma(sp, two_log2e, e);
    // t = y log2 x, clamped far outside the f32 range.
    let t = g.b.ins().fmul(y, log2x);
    let (tlo, thi) = (f64c(g, -1100.0), f64c(g, 1100.0));
    let t = g.b.ins().fmax(t, tlo);
    let t = g.b.ins().fmin(t, thi);
    // 2^t = 2^n e^(r ln2), n = round(t).
    let mg = f64c(g, 6_755_399_441_055_744.0); // 1.5 * 2^52
    let tm = g.b.ins().fadd(t, mg);
    let n = g.b.ins().fsub(tm, mg);
    let r = g.b.ins().fsub(t, n);
    let ln2 = f64c(g, std::f64::consts::LN_2);
    let u = g.b.ins().fmul(r, ln2);
    let fact = |k: u32| (1..=k).map(f64::from).product::<f64>();
    let ec: Vec<f64> = (0..=12).rev().map(|k| 1.0 / fact(k)).collect();
    let er = horner64(g, u, &ec);
    // 2^n = 2^n1 2^n2 with n1 = round(n / 2): each within the exponent range.
    let nh = g.b.ins().fmul(n, half);
    let n1m = g.b.ins().fadd(nh, mg);
    let n1 = g.b.ins().fsub(n1m, mg);
    let n2 = g.b.ins().fsub(n, n1);
    let n2m = g.b.ins().fadd(n2, mg);
    let mbits = ic(g, 6_755_399_441_055_744f64.to_bits());
    let scale = |g: &mut Gen<'_, '_, '_>, km: Value| {
        let kb = g.b.ins().bitcast(types::I64X2, fl, km);
        let k = g.b.ins().isub(kb, mbits);
        let b1023 = g.vconst(types::I64X2, 1023);
        let k = g.b.ins().iadd(k, b1023);
        let sh = g.b.ins().iconst(types::I32, 52);
        let k = g.b.ins().ishl(k, sh);
        g.b.ins().bitcast(types::F64X2, fl, k)
    };
    let s1 = scale(g, n1m);
    let s2v = scale(g, n2m);
    let v = g.b.ins().fmul(er, s1);
    g.b.ins().fmul(v, s2v)
}

/// The `F32X4` of the 8 bytes of `a` at `from` followed by the low 8 bytes
/// of `b`.
fn halves(g: &mut Gen<'_, '_, '_>, a: Value, b: Value, from: u8) -> Value {
    let mask: Vec<u8> = (from..from + 8).chain(16..24).collect();
    let imm = g.b.func.dfg.immediates.push(cranelift_codegen::ir::ConstantData::from(mask));
    let fl = MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
    let ab = g.b.ins().bitcast(types::I8X16, fl, a);
    let bb = g.b.ins().bitcast(types::I8X16, fl, b);
    let s = g.b.ins().shuffle(ab, bb, imm);
    g.b.ins().bitcast(types::F32X4, fl, s)
}

fn sincos_f64x2(g: &mut Gen<'_, '_, '_>, d: Value, cos: bool) -> Value {
    use std::f64::consts::FRAC_PI_2;
    let c = f64c;
    let two_over_pi = c(g, std::f64::consts::FRAC_2_PI);
    let t = g.b.ins().fmul(d, two_over_pi);
    let m = c(g, 6_755_399_441_055_744.0); // 1.5 * 2^52
    let tm = g.b.ins().fadd(t, m);
    let k = g.b.ins().fsub(tm, m);
    // pi/2 = P1 + P2 to ~2^-106; `k P1` is exact inside the FMA.
    let p1 = c(g, -FRAC_PI_2);
    let p2 = c(g, -6.123_233_995_736_766e-17);
    let r = g.b.ins().fma(k, p1, d);
    let r = g.b.ins().fma(k, p2, r);
    let r2 = g.b.ins().fmul(r, r);
    // sin r = r + r^3 (S1 + r^2 (S2 + ...)); cos r = 1 + r^2 (C1 + r^2 (...)).
    let fact = |n: u32| (1..=n).map(f64::from).product::<f64>();
    let sc: Vec<f64> = (1..=6).rev().map(|i| if i % 2 == 1 { -1.0 } else { 1.0 } / fact(2 * i + 1)).collect();
    let cc: Vec<f64> = (1..=7).rev().map(|i| if i % 2 == 1 { -1.0 } else { 1.0 } / fact(2 * i)).collect();
    let ps = horner64(g, r2, &sc);
    let r3 = g.b.ins().fmul(r2, r);
    let sin_r = g.b.ins().fma(ps, r3, r);
    let pc = horner64(g, r2, &cc);
    let one = c(g, 1.0);
    let cos_r = g.b.ins().fma(pc, r2, one);
    // Quadrant q = k mod 4: sin x = [s, c, -s, -c][q], cos x = [c, -s, -c, s][q].
    let fl = MemFlagsData::new();
    let q = g.b.ins().bitcast(types::I64X2, fl, tm);
    let q = if cos {
        let one_i = g.vconst(types::I64X2, 1);
        g.b.ins().iadd(q, one_i)
    } else {
        q
    };
    let bit = |g: &mut Gen<'_, '_, '_>, q: Value, b: u64| {
        let bv = g.vconst(types::I64X2, b);
        let m = g.b.ins().band(q, bv);
        g.b.ins().icmp(cranelift_codegen::ir::condcodes::IntCC::Equal, m, bv)
    };
    let odd = bit(g, q, 1);
    let (even_v, odd_v) = (sin_r, cos_r);
    let oddf = g.b.ins().bitcast(types::F64X2, fl, odd);
    let v = g.b.ins().bitselect(oddf, odd_v, even_v);
    let neg = bit(g, q, 2);
    let sign = g.vconst(types::I64X2, 1u64 << 63);
    let s = g.b.ins().band(neg, sign);
    let vb = g.b.ins().bitcast(types::I64X2, fl, v);
    let vb = g.b.ins().bxor(vb, s);
    g.b.ins().bitcast(types::F64X2, fl, vb)
}

struct M<'g, 'a, 'm, 'b> {
    g: &'g mut Gen<'a, 'm, 'b>,
    ty: Type,
}

impl M<'_, '_, '_, '_> {
    fn vector(&self) -> bool {
        self.ty.is_vector()
    }

    fn ity(&self) -> Type {
        if self.vector() { types::I32X4 } else { types::I32 }
    }

    /// A float constant of the working type.
    fn c(&mut self, v: f32) -> Value {
        if self.vector() {
            return self.g.vconst(self.ty, v.to_bits() as u64);
        }
        self.g.b.ins().f32const(v)
    }

    /// An i32 constant of the working integer type.
    fn ci(&mut self, v: i32) -> Value {
        if self.vector() {
            return self.g.vconst(types::I32X4, v as u32 as u64);
        }
        self.g.b.ins().iconst(types::I32, v as i64)
    }

    fn cmp(&mut self, cc: FloatCC, a: Value, b: Value) -> Value {
        self.g.b.ins().fcmp(cc, a, b)
    }

    /// `cond ? a : b` for a comparison result of the working type.
    fn sel(&mut self, cond: Value, a: Value, b: Value) -> Value {
        if self.vector() {
            let ty = self.g.b.func.dfg.value_type(a);
            let m = self.g.b.ins().bitcast(ty, MemFlagsData::new(), cond);
            self.g.b.ins().bitselect(m, a, b)
        } else {
            self.g.b.ins().select(cond, a, b)
        }
    }

    /// `a * b + c`, fused where the CPU has FMA (within the error budget
    /// either way).
    fn fma(&mut self, a: Value, b: Value, c: Value) -> Value {
        if crate::codegen::vector::host_has_fma() {
            return self.g.b.ins().fma(a, b, c);
        }
        let p = self.g.b.ins().fmul(a, b);
        self.g.b.ins().fadd(p, c)
    }

    fn as_bits(&mut self, x: Value) -> Value {
        let it = self.ity();
        self.g.b.ins().bitcast(it, MemFlagsData::new(), x)
    }

    fn as_float(&mut self, x: Value) -> Value {
        self.g.b.ins().bitcast(self.ty, MemFlagsData::new(), x)
    }

    /// Horner's rule, highest coefficient first.
    fn poly(&mut self, x: Value, cs: &[f32]) -> Value {
        let mut p = self.c(cs[0]);
        for c in &cs[1..] {
            let cv = self.c(*c);
            p = self.fma(p, x, cv);
        }
        p
    }

    /// `a < b ? a : b` — x86 `minps a, b` for vectors (NaN in `b` passes).
    fn pmin(&mut self, a: Value, b: Value) -> Value {
        let c = self.cmp(FloatCC::LessThan, a, b);
        self.sel(c, a, b)
    }

    /// `a > b ? a : b` — x86 `maxps a, b` for vectors (NaN in `b` passes;
    /// written `b < a`, the shape Cranelift matches).
    fn pmax(&mut self, a: Value, b: Value) -> Value {
        let c = self.cmp(FloatCC::LessThan, b, a);
        self.sel(c, a, b)
    }

    /// `exp(x)` (or `2^x`) in 14 vector instructions and 13 constants (a
    /// vectorized loop keeps the constants in registers):
    /// - `xl = max(x, -88)`, `xc = min(xl, 88.03)` (`maxps`/`minps`: a NaN
    ///   passes through); `n = round(xc log2(e))` as one FMA adding `M =
    ///   1.5 * 2^23 + 127` (round to nearest even), whose low bits are then
    ///   `n + 127`, so `-127 <= n <= 127`;
    /// - `r = xl - n ln2` (Cody–Waite, two FMAs), in `[-ln2/2, ln2]` wherever
    ///   the result is a normal number: `n` stops at 127 so that `2^n` is
    ///   normal, and the polynomial also covers the larger `r` of `x` in
    ///   `[127.5 ln2, ln(f32::MAX)]`;
    /// - `exp(r)` by a degree-6 minimax polynomial (relative error 3.8e-8 on
    ///   `[-0.3467, 0.694]`), times `2^n` built as `bits(M + ..) << 23`;
    /// - above `ln(f32::MAX)` the polynomial (positive coefficients) grows
    ///   past 2 and the product overflows to `inf` (`+inf` too); where `n`
    ///   is -127 (`x` below about -87.7, and `-inf`) `2^n` is built as 0.0
    ///   and so is the result; between there and `ln(f32::MIN_POSITIVE)` the
    ///   product is the subnormal result (SPEC's accuracy covers normal
    ///   results only). (`exp2`: the same with `t = x`, bounds -127.4 and
    ///   127.)
    ///
    /// Simulated in `f32` over a dense grid: 1.1e-7 relative error where
    /// the result is normal (`exp2`: 1.7e-7); `jit/tests/math.rs` sweeps it.
    fn exp(&mut self, x: Value, base2: bool) -> Value {
        // `x` clamped below so that `n >= -127` (at -127 the bits of `2^n`
        // are those of 0.0: the result is 0, as for -inf) and `r` stays
        // small; NaN passes (`maxps lo, x` returns `x`).
        let (lo, hi) = if base2 { (-127.4f32, 127.0f32) } else { (-88.0f32, 88.03f32) };
        let lov = self.c(lo);
        let xl = self.pmax(lov, x);
        let hiv = self.c(hi);
        let xc = self.pmin(hiv, xl);
        let magic = self.c(12_583_039.0); // 1.5 * 2^23 + 127
        let m = if base2 {
            self.g.b.ins().fadd(xc, magic)
        } else {
            let l2e = self.c(std::f32::consts::LOG2_E);
            self.fma(xc, l2e, magic)
        };
        let fx = self.g.b.ins().fsub(m, magic);
        let r = if base2 {
            let d = self.g.b.ins().fsub(xl, fx);
            // ln 2 rounded up: 2^128 overflows to inf (error +6e-8).
            let ln2 = self.c(f32::from_bits(std::f32::consts::LN_2.to_bits() + 1));
            self.g.b.ins().fmul(d, ln2)
        } else {
            let c1 = self.c(-0.693_359_4);
            let c2 = self.c(2.121_944_4e-4);
            let r = self.fma(fx, c1, xl);
            self.fma(fx, c2, r)
        };
        let p = self
            .poly(r, &[1.631_992_6e-3, 8.318_529e-3, 4.161_99e-2, 1.666_720_8e-1, 5.000_022_6e-1, 9.999_999e-1, 1.0]);
        let mb = self.as_bits(m);
        let e = self.g.b.ins().ishl_imm_s(mb, 23);
        let p2 = self.as_float(e);
        self.g.b.ins().fmul(p, p2)
    }

    fn ln(&mut self, x: Value) -> Value {
        // Rescale subnormals by 2^23.
        let tiny = self.c(f32::MIN_POSITIVE);
        let is_sub = self.cmp(FloatCC::LessThan, x, tiny);
        let scale = self.c(8_388_608.0);
        let xs = self.g.b.ins().fmul(x, scale);
        let xw = self.sel(is_sub, xs, x);
        let bits = self.as_bits(xw);
        let e_raw = self.g.b.ins().ushr_imm_s(bits, 23);
        let c126 = self.ci(126);
        let mut e = self.g.b.ins().isub(e_raw, c126);
        let c23 = self.ci(23);
        let sub_m = if self.vector() {
            // A vector comparison is already an all-ones/zeros i32 mask.
            self.g.b.ins().band(is_sub, c23)
        } else {
            let z = self.g.b.ins().iconst(types::I32, 0);
            self.g.b.ins().select(is_sub, c23, z)
        };
        e = self.g.b.ins().isub(e, sub_m);
        let mant_mask = self.ci(0x807F_FFFFu32 as i32);
        let half_bits = self.ci(0x3F00_0000);
        let mb = self.g.b.ins().band(bits, mant_mask);
        let mb = self.g.b.ins().bor(mb, half_bits);
        let m = self.as_float(mb); // in [0.5, 1)
        let sqrth = self.c(std::f32::consts::FRAC_1_SQRT_2);
        let small = self.cmp(FloatCC::LessThan, m, sqrth);
        let one = self.c(1.0);
        let m2 = self.g.b.ins().fadd(m, m);
        let a = self.g.b.ins().fsub(m2, one);
        let b = self.g.b.ins().fsub(m, one);
        let xm = self.sel(small, a, b);
        let ef = self.g.b.ins().fcvt_from_sint(self.ty, e);
        let onef = self.c(1.0);
        let ef_m1 = self.g.b.ins().fsub(ef, onef);
        let ef = self.sel(small, ef_m1, ef);
        let z = self.g.b.ins().fmul(xm, xm);
        let p = self.poly(
            xm,
            &[
                7.037_683_6e-2,
                -1.151_461e-1,
                1.167_699_9e-1,
                -1.242_014_1e-1,
                1.424_932_3e-1,
                -1.666_805_8e-1,
                2.000_071_5e-1,
                -2.499_999_4e-1,
                3.333_333e-1,
            ],
        );
        let y = self.g.b.ins().fmul(p, xm);
        let y = self.g.b.ins().fmul(y, z);
        let c2 = self.c(-2.121_944_4e-4);
        let y = self.fma(ef, c2, y);
        let mhalf = self.c(-0.5);
        let y = self.fma(z, mhalf, y);
        let r = self.g.b.ins().fadd(xm, y);
        let c1 = self.c(0.693_359_4);
        let r = self.fma(ef, c1, r);
        // Specials: 0 → -inf, negative → NaN, inf → inf, NaN → NaN.
        let zero = self.c(0.0);
        let is_zero = self.cmp(FloatCC::Equal, x, zero);
        let ninf = self.c(f32::NEG_INFINITY);
        let r = self.sel(is_zero, ninf, r);
        let neg = self.cmp(FloatCC::LessThan, x, zero);
        let nan = self.c(f32::NAN);
        let r = self.sel(neg, nan, r);
        let inf = self.c(f32::INFINITY);
        let is_inf = self.cmp(FloatCC::Equal, x, inf);
        let r = self.sel(is_inf, inf, r);
        let isnan = self.cmp(FloatCC::Unordered, x, x);
        self.sel(isnan, x, r)
    }

    fn tanh(&mut self, x: Value) -> Value {
        let ax = self.g.b.ins().fabs(x);
        // Small: x + x^3 P(x^2).
        let z = self.g.b.ins().fmul(x, x);
        let p = self.poly(z, &[-5.704_988_7e-3, 2.063_909e-2, -5.373_971_6e-2, 1.333_144_2e-1, -3.333_328e-1]);
        let pz = self.g.b.ins().fmul(p, z);
        let small_r = self.fma(pz, x, x);
        // Large: 1 - 2 / (exp(2|x|) + 1), with x's sign.
        let two = self.c(2.0);
        let t = self.g.b.ins().fmul(ax, two);
        let e = self.exp(t, false);
        let one = self.c(1.0);
        let d = self.g.b.ins().fadd(e, one);
        let q = self.g.b.ins().fdiv(two, d);
        let big = self.g.b.ins().fsub(one, q);
        let xb = self.as_bits(x);
        let sign_mask = self.ci(i32::MIN);
        let sign = self.g.b.ins().band(xb, sign_mask);
        let bb = self.as_bits(big);
        let bb = self.g.b.ins().bor(bb, sign);
        let big = self.as_float(bb);
        let lim = self.c(0.625);
        let is_small = self.cmp(FloatCC::LessThan, ax, lim);
        let r = self.sel(is_small, small_r, big);
        let isnan = self.cmp(FloatCC::Unordered, x, x);
        self.sel(isnan, x, r)
    }
}
