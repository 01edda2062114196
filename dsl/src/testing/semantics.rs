//! The table of scalar semantics every backend runs (SPEC §2): one place
//! for the edge cases — floor division and remainder, zero divisors,
//! `MIN / -1`, wrapping, saturating casts between every pair of element
//! types, NaN-ignoring `min`/`max` with `+0.0` for zeros, integer `abs`,
//! comparisons with NaN, `clamp` with crossed bounds, `fma`, the built-in
//! functions — and for how closely each backend must agree with the
//! interpreter, whose scalar semantics (`value.rs`) are the oracle.
//!
//! A [`Group`] is one definition with an output per operation, applied
//! elementwise to every pair of a value set (or, for casts, to each
//! value). A backend's test calls [`check`] with its target, the
//! schedules it wants each group compiled under (the JIT: scalar, vector
//! and parallel code paths; a GPU: its default) and its compile function.
//! Adding a case here runs it on every backend.

use crate::call::{Executable, Program};
use crate::dtype::DType;
use crate::error::Result;
use crate::func::Func;
use crate::lower::Lowered;
use crate::schedule::Schedule;
use crate::target::Target;
use crate::te::{self, Expr, FuncBuilder};
use crate::value::{Scalar, int_range};

use super::{AnyTensor, run_lowered};

/// How closely a backend's floats must match the interpreter's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tol {
    /// Exactly: NaN matches NaN, and zeros agree in sign (`min`/`max` give
    /// `+0.0` for a zero result; the sign shows through `1 / x`).
    Exact,
    /// `fma`: the interpreter rounds the exact product-sum once; relative
    /// `1e-6`. On the GPU targets the narrow types' `fma` is computed in
    /// `f32` and rounded again to `f16`/`bf16` (a double rounding, off by
    /// up to one unit: a known deviation from SPEC's single rounding, the
    /// `Math` tolerance of the type).
    Fma,
    /// Transcendental functions (SPEC: within 1e-6 relative of the exact
    /// result for `f32`, where the result is a normal number): relative
    /// `2e-6` of the interpreter's (itself rounded) result for `f32`,
    /// `1e-12` for `f64`, `1e-3` for `f16`, `8e-3` for `bf16` (a unit or two
    /// of their precision); a subnormal result may be flushed to zero.
    Math,
}

impl Tol {
    /// The relative tolerance for a type on a target.
    pub fn relative(self, t: DType, target: Target) -> f64 {
        let narrow = matches!(t, DType::F16 | DType::BF16);
        match (self, t) {
            (Tol::Exact, _) => 0.0,
            (Tol::Fma, _) if narrow && target.class() == crate::TargetClass::Gpu => Tol::Math.relative(t, target),
            (Tol::Fma, _) => 1e-6,
            (Tol::Math, DType::F16) => 1e-3,
            (Tol::Math, DType::BF16) => 8e-3,
            (Tol::Math, DType::F64) => 1e-12,
            (Tol::Math, _) => 2e-6,
        }
    }
}

/// `true` if a backend's value on `target` agrees with the interpreter's:
/// integers and bools exactly, floats as `tol` says (NaN matches NaN;
/// infinities only themselves).
pub fn agree(got: Scalar, want: Scalar, tol: Tol, target: Target) -> bool {
    if got.dtype() != want.dtype() {
        return false;
    }
    let t = want.dtype();
    if !t.is_float() {
        return got == want;
    }
    let (g, w) = (got.as_f64(), want.as_f64());
    if g.is_nan() || w.is_nan() {
        return g.is_nan() && w.is_nan();
    }
    if g == 0.0 && w == 0.0 && tol == Tol::Exact {
        return g.is_sign_negative() == w.is_sign_negative();
    }
    // SPEC bounds the functions' error where the result is a normal
    // number: a subnormal result may be flushed (or a flushed one not).
    let normal = match t {
        DType::F16 => 6.103515625e-5,
        DType::F64 => f64::MIN_POSITIVE,
        _ => f32::MIN_POSITIVE as f64,
    };
    if tol == Tol::Math && w.abs() < normal && g.abs() <= normal {
        return true;
    }
    g == w || (g.is_finite() && w.is_finite() && (g - w).abs() <= tol.relative(t, target) * w.abs())
}

/// One group of the table.
pub struct Group {
    /// `ints_i8`, `floats_f32`, `math_bf16`, `casts_from_u16`, ...
    pub name: String,
    /// One output per operation, elementwise over the inputs.
    pub func: Func,
    /// Each output's operation and tolerance, in output order.
    pub ops: Vec<(String, Tol)>,
    /// The inputs (`a` and `b`, or `x` for casts), of shape `[N]`.
    pub inputs: Vec<AnyTensor>,
}

/// An operation of a group: its name, output type and tolerance, and its
/// definition over the inputs at `i`.
type Op = (&'static str, Option<DType>, Tol, fn(&[Expr]) -> Expr);

macro_rules! op {
    ($name:literal, $out:expr, $tol:ident, |$x:ident| $e:expr) => {
        ($name, $out, Tol::$tol, {
            fn f($x: &[Expr]) -> Expr {
                $e
            }
            f
        })
    };
}

/// Builds a group: the operations the type checker accepts for these
/// input types (like Rust: no `-` on unsigned integers, no `!` on floats,
/// no `bool as f32`), one output each (`None` as the type: the inputs').
fn group(name: String, ins: &[(&str, DType)], ops: &[Op], inputs: Vec<AnyTensor>) -> Group {
    let t = ins[0].1;
    let build = |ops: &[&Op]| {
        let mut f = FuncBuilder::new(name.as_str());
        let xs: Vec<_> = ins.iter().map(|(n, t)| f.input(*n, *t, ["N"])).collect();
        let mut outs = vec![];
        for (op, out, _, def) in ops {
            f.output(out.unwrap_or(t), ["N"]);
            let xs = xs.clone();
            let def = *def;
            outs.push(f.compute(*op, ["i"], move |[i]| def(&xs.iter().map(|x| x.at([&i])).collect::<Vec<_>>())));
        }
        f.ret(outs);
        f.build()
    };
    let kept: Vec<&Op> = ops.iter().filter(|o| build(&[o]).is_ok()).collect();
    let func = build(&kept).unwrap_or_else(|e| panic!("semantics table: group `{name}` does not build: {e}"));
    Group { name, func, ops: kept.iter().map(|(n, _, tol, _)| (n.to_string(), *tol)).collect(), inputs }
}

const INTS: [DType; 8] = [DType::I8, DType::I16, DType::I32, DType::I64, DType::U8, DType::U16, DType::U32, DType::U64];
const FLOATS: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];

/// Integer edge values: the type's extremes, their neighbours, small
/// values of both signs (wrapped into unsigned types).
pub fn int_values(t: DType) -> Vec<Scalar> {
    let (lo, hi) = int_range(t);
    let mut v: Vec<Scalar> =
        [lo, lo + 1, -7, -3, -2, -1, 0, 1, 2, 3, 7, hi - 1, hi].into_iter().map(|v| Scalar::from_i128(t, v)).collect();
    v.dedup();
    v
}

/// Float edge values (rounded to the type): NaN, infinities, signed zeros,
/// halves (rounding ties), values past the narrow types' ranges (`f16`
/// overflows at 65520) and past the integer types' (saturating casts).
pub fn float_values(t: DType) -> Vec<Scalar> {
    [
        f64::NAN,
        f64::NEG_INFINITY,
        -1e30,
        -1e10,
        -300.5,
        -129.0,
        -3.7,
        -2.5,
        -1.5,
        -1.0,
        -0.5,
        -0.0,
        0.0,
        1e-30,
        1e-8,
        0.5,
        1.0,
        1.5,
        2.5,
        3.0,
        3.7,
        7.25,
        300.0,
        1e5,
        65504.0,
        7e4,
        4.5e9,
        1e10,
        3e38,
        1e30,
        f64::INFINITY,
    ]
    .into_iter()
    .map(|v| Scalar::from_f64(t, v))
    .collect()
}

/// Values for the built-in functions: the edges and a sweep of `-14.8 ..
/// 14.8`.
fn math_values(t: DType) -> Vec<Scalar> {
    float_values(t).into_iter().chain((-40..40).map(|k| Scalar::from_f64(t, k as f64 * 0.37 + 0.013))).collect()
}

/// Every value of a type that casts are tested from.
fn cast_values(t: DType) -> Vec<Scalar> {
    match t {
        DType::Bool => vec![Scalar::Bool(false), Scalar::Bool(true)],
        t if t.is_float() => float_values(t)
            .into_iter()
            .chain(
                [
                    -129.0,
                    -128.7,
                    127.9,
                    255.5,
                    256.0,
                    65535.9,
                    65536.0,
                    2147483648.0,
                    -2147483649.0,
                    4294967296.0,
                    1.8446744073709552e19,
                    9.3e18,
                    -9.3e18,
                ]
                .map(|v| Scalar::from_f64(t, v)),
            )
            .collect(),
        t => int_values(t),
    }
}

/// Every pair of `vals` as tensors `a`, `b`.
fn pairs(t: DType, vals: &[Scalar]) -> Vec<AnyTensor> {
    let n = vals.len();
    let a: Vec<Scalar> = (0..n * n).map(|k| vals[k / n]).collect();
    let b: Vec<Scalar> = (0..n * n).map(|k| vals[k % n]).collect();
    vec![AnyTensor::from_scalars(t, &[n * n], &a), AnyTensor::from_scalars(t, &[n * n], &b)]
}

const BOOL: Option<DType> = Some(DType::Bool);

/// Arithmetic, comparisons and selections over `a`, `b`.
const ARITH: [Op; 20] = [
    op!("add", None, Exact, |x| x[0].clone() + x[1].clone()),
    op!("sub", None, Exact, |x| x[0].clone() - x[1].clone()),
    op!("mul", None, Exact, |x| x[0].clone() * x[1].clone()),
    op!("div", None, Exact, |x| x[0].clone() / x[1].clone()),
    op!("rem", None, Exact, |x| x[0].clone() % x[1].clone()),
    op!("neg", None, Exact, |x| -x[0].clone()),
    op!("not", None, Exact, |x| !x[0].clone()),
    op!("min", None, Exact, |x| te::min(x[0].clone(), x[1].clone())),
    op!("max", None, Exact, |x| te::max(x[0].clone(), x[1].clone())),
    op!("abs", None, Exact, |x| te::abs(x[0].clone())),
    op!("fma", None, Fma, |x| te::fma(x[0].clone(), x[1].clone(), x[0].clone())),
    op!("lt", BOOL, Exact, |x| x[0].clone().lt(x[1].clone())),
    op!("le", BOOL, Exact, |x| x[0].clone().le(x[1].clone())),
    op!("gt", BOOL, Exact, |x| x[0].clone().gt(x[1].clone())),
    op!("ge", BOOL, Exact, |x| x[0].clone().ge(x[1].clone())),
    op!("eq", BOOL, Exact, |x| x[0].clone().eq(x[1].clone())),
    op!("ne", BOOL, Exact, |x| x[0].clone().ne(x[1].clone())),
    op!("sel", None, Exact, |x| te::select(x[0].clone().gt(x[1].clone()), x[0].clone(), x[1].clone())),
    op!("lazy_if", None, Exact, |x| te::if_(x[0].clone().lt(x[1].clone()), x[0].clone(), x[1].clone())),
    op!("and_or", BOOL, Exact, |x| x[0]
        .clone()
        .lt(x[1].clone())
        .and(x[1].clone().ne(x[0].clone()))
        .or(x[0].clone().eq(x[1].clone()))),
];

/// `clamp` with bounds that may cross (`lo > hi`: `min(max(x, lo), hi)`)
/// and ordered ones, integers.
const INT_CLAMPS: [Op; 2] = [
    op!("clamp", None, Exact, |x| te::clamp(x[0].clone(), x[1].clone(), 3)),
    op!("clamp_ordered", None, Exact, |x| te::clamp(x[0].clone(), te::min(x[1].clone(), 3), te::max(x[1].clone(), 3))),
];

/// The same for floats.
const FLOAT_CLAMPS: [Op; 2] = [
    op!("clamp", None, Exact, |x| te::clamp(x[0].clone(), x[1].clone(), 1.5)),
    op!("clamp_ordered", None, Exact, |x| te::clamp(
        x[0].clone(),
        te::min(x[1].clone(), 1.5),
        te::max(x[1].clone(), 1.5)
    )),
];

/// Exact float functions.
const EXACT_FNS: [Op; 5] = [
    op!("floor", None, Exact, |x| te::floor(x[0].clone())),
    op!("ceil", None, Exact, |x| te::ceil(x[0].clone())),
    op!("round", None, Exact, |x| te::round(x[0].clone())),
    op!("trunc", None, Exact, |x| te::trunc(x[0].clone())),
    op!("sqrt", None, Exact, |x| te::sqrt(x[0].clone())),
];

/// Transcendental functions (of `a`; `pow` of `|a|` and `b`).
const MATH: [Op; 13] = [
    op!("exp", None, Math, |x| te::exp(x[0].clone())),
    op!("exp2", None, Math, |x| te::exp2(x[0].clone())),
    op!("ln", None, Math, |x| te::ln(x[0].clone())),
    op!("ln_abs", None, Math, |x| te::ln(te::abs(x[0].clone()))),
    op!("log2", None, Math, |x| te::log2(te::abs(x[0].clone()))),
    op!("rsqrt", None, Math, |x| te::rsqrt(te::abs(x[0].clone()))),
    op!("sin", None, Math, |x| te::sin(x[0].clone())),
    op!("cos", None, Math, |x| te::cos(x[0].clone())),
    op!("tanh", None, Math, |x| te::tanh(x[0].clone())),
    op!("sigmoid", None, Math, |x| te::sigmoid(x[0].clone())),
    op!("erf", None, Math, |x| te::erf(x[0].clone())),
    op!("pow", None, Math, |x| te::pow(te::abs(x[0].clone()), x[1].clone())),
    op!("fma", None, Fma, |x| te::fma(x[0].clone(), x[1].clone(), x[0].clone())),
];

/// `x as T` for every `T`, in [`DType::ALL`] order.
const CASTS: [Op; 13] = [
    op!("to_bool", Some(DType::Bool), Exact, |x| x[0].clone().cast(DType::Bool)),
    op!("to_i8", Some(DType::I8), Exact, |x| x[0].clone().cast(DType::I8)),
    op!("to_i16", Some(DType::I16), Exact, |x| x[0].clone().cast(DType::I16)),
    op!("to_i32", Some(DType::I32), Exact, |x| x[0].clone().cast(DType::I32)),
    op!("to_i64", Some(DType::I64), Exact, |x| x[0].clone().cast(DType::I64)),
    op!("to_u8", Some(DType::U8), Exact, |x| x[0].clone().cast(DType::U8)),
    op!("to_u16", Some(DType::U16), Exact, |x| x[0].clone().cast(DType::U16)),
    op!("to_u32", Some(DType::U32), Exact, |x| x[0].clone().cast(DType::U32)),
    op!("to_u64", Some(DType::U64), Exact, |x| x[0].clone().cast(DType::U64)),
    op!("to_f16", Some(DType::F16), Exact, |x| x[0].clone().cast(DType::F16)),
    op!("to_bf16", Some(DType::BF16), Exact, |x| x[0].clone().cast(DType::BF16)),
    op!("to_f32", Some(DType::F32), Exact, |x| x[0].clone().cast(DType::F32)),
    op!("to_f64", Some(DType::F64), Exact, |x| x[0].clone().cast(DType::F64)),
];

/// The whole table: `ints_*` (8 types), `floats_*`, `math_*` (4 types),
/// `casts_from_*` (13 types).
pub fn table() -> Vec<Group> {
    let mut out = vec![];
    for t in INTS {
        let ops: Vec<Op> = ARITH.iter().chain(&INT_CLAMPS).copied().collect();
        out.push(group(format!("ints_{t}"), &[("a", t), ("b", t)], &ops, pairs(t, &int_values(t))));
    }
    for t in FLOATS {
        let ops: Vec<Op> = ARITH.iter().chain(&FLOAT_CLAMPS).chain(&EXACT_FNS).copied().collect();
        out.push(group(format!("floats_{t}"), &[("a", t), ("b", t)], &ops, pairs(t, &float_values(t))));
    }
    for t in FLOATS {
        out.push(group(format!("math_{t}"), &[("a", t), ("b", t)], &MATH, pairs(t, &math_values(t))));
    }
    for t in DType::ALL {
        let vals = cast_values(t);
        let x = AnyTensor::from_scalars(t, &[vals.len()], &vals);
        out.push(group(format!("casts_from_{t}"), &[("x", t)], &CASTS, vec![x]));
    }
    out
}

/// Runs every group whose name starts with `prefix` on `target`, compiled
/// by `compile` under each schedule `schedules` gives for its definition
/// (named, for messages), and compares every output with the interpreter
/// on the unscheduled definition. Returns the number of values compared,
/// or the first disagreement.
pub fn check(
    prefix: &str,
    target: Target,
    schedules: &dyn Fn(&Func) -> Vec<(String, Schedule)>,
    compile: &dyn Fn(&Lowered) -> Result<Box<dyn Executable>>,
) -> std::result::Result<usize, String> {
    let mut compared = 0;
    let groups: Vec<Group> = table().into_iter().filter(|g| g.name.starts_with(prefix)).collect();
    if groups.is_empty() {
        return Err(format!("no group of the semantics table starts with `{prefix}`"));
    }
    for g in &groups {
        let interp = |l: &Lowered| super::interp(l);
        let reference = Program::new(g.func.clone())
            .lower_unscheduled()
            .and_then(|l| run_lowered(&g.func, &l, &g.inputs, &[], &interp))
            .map_err(|e| format!("{}: the interpreter failed: {e}", g.name))?;
        for (variant, sched) in schedules(&g.func) {
            let what = format!("{} on {target} ({variant})", g.name);
            let lowered = crate::lower::lower(&sched, target).map_err(|e| format!("{what}: lowering: {e}"))?;
            let got = run_lowered(&g.func, &lowered, &g.inputs, &[], compile).map_err(|e| format!("{what}: {e}"))?;
            for (k, ((op, tol), (x, y))) in g.ops.iter().zip(got.iter().zip(&reference)).enumerate() {
                for i in 0..y.len() {
                    let (x, y) = (x.get(i), y.get(i));
                    let (Some(x), Some(y)) = (x, y) else {
                        return Err(format!("{what}: output {k} (`{op}`) has a missing element {i}"));
                    };
                    if !agree(x, y, *tol, target) {
                        let args: Vec<String> =
                            g.inputs.iter().filter_map(|t| t.get(i)).map(|s| format!("{s:?}")).collect();
                        return Err(format!(
                            "{what}: `{op}`({}) = {x:?}, the interpreter gives {y:?} (tolerance {tol:?})\n{lowered}",
                            args.join(", ")
                        ));
                    }
                    compared += 1;
                }
            }
        }
    }
    Ok(compared)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every group keeps the operations its types allow (the filter by
    /// type checking must not drop a whole row of the table).
    #[test]
    fn the_table_is_whole() {
        let t = table();
        assert_eq!(t.len(), 8 + 4 + 4 + 13);
        for g in &t {
            let n = g.ops.len();
            let has = |op: &str| g.ops.iter().any(|(o, _)| o == op);
            let signed = !g.name.contains("_u");
            match g.name.split('_').next() {
                Some("ints") => assert_eq!(
                    (n, has("neg"), has("abs")),
                    (if signed { 22 } else { 20 }, signed, signed),
                    "{}",
                    g.name
                ),
                Some("floats") => assert_eq!((n, has("not")), (26, false), "{}", g.name),
                Some("math") => assert_eq!(n, 13, "{}", g.name),
                // As in Rust: `bool as` integers (and itself) only, nothing
                // else `as bool`.
                _ if g.name == "casts_from_bool" => assert_eq!(n, 9, "{}", g.name),
                _ => assert_eq!(n, 12, "{}", g.name),
            }
        }
    }

    /// The interpreter agrees with itself, through the runner.
    #[test]
    fn the_interpreter_passes() {
        let n = check("ints_i8", Target::Interp, &|f| vec![("unscheduled".into(), Schedule::new(f, None))], &|l| {
            super::super::interp(l)
        })
        .unwrap();
        assert!(n > 1000, "{n}");
    }
}
