//! Random programs for differential tests (feature `testing`).
//!
//! [`Case::generate`] builds, from a seed, a random well-typed definition
//! (elementwise stages, reductions, multi-stage pipelines, guarded
//! shifted and padded loads, several outputs), a random *legal* schedule
//! for a target class that exercises every SPEC §3 primitive, random dims
//! (including tails for the split factors and zero-sized dims) and random
//! inputs. [`Case::reference`] runs the unscheduled definition on the
//! interpreter; a backend's results are compared with [`assert_close`].
//!
//! Generation is deterministic in the seed, so a failure prints a seed that
//! reproduces it (`Case::generate(seed, &cfg)`), with the definition and the
//! schedule log.

use crate::call::{Call, Executable, Program, bind_dims, output_shapes};
use crate::dtype::{DType, Data, DataMut};
use crate::error::{Error, Result};
use crate::expr::{BinOp, CmpOp, ReduceOp};
use crate::func::Func;
use crate::lower::Lowered;
use crate::schedule::{AxisRef, Schedule, StageRef};
use crate::stmt::{Scope, ThreadAxis};
use crate::target::{Target, TargetClass};
use crate::te::{self, Expr, FuncBuilder};
use crate::value::Scalar;

pub mod semantics;

pub use crate::AnyTensor;

/// The SPEC §2 definitions, built with the builder API.
pub mod spec {
    use crate::dtype::DType;
    use crate::error::Result;
    use crate::func::Func;
    use crate::schedule::Schedule;
    use crate::stmt::{Scope, ThreadAxis};
    use crate::target::TargetClass;
    use crate::te::{self, Expr, FuncBuilder};

    fn build(f: FuncBuilder) -> Func {
        match f.build() {
            Ok(func) => func,
            Err(e) => panic!("a SPEC definition failed to build: {e}"),
        }
    }

    /// `matmul(a: f32[M, K], b: f32[K, N]) -> f32[M, N]`.
    pub fn matmul() -> Func {
        let mut f = FuncBuilder::new("matmul");
        let a = f.input("a", DType::F32, ["M", "K"]);
        let b = f.input("b", DType::F32, ["K", "N"]);
        f.output(DType::F32, ["M", "N"]);
        let c = f.compute("c", ["i", "j"], |[i, j]| te::sum([("k", 0, "K")], |[k]| a.at([&i, &k]) * b.at([&k, &j])));
        f.ret([c]);
        build(f)
    }

    /// `softmax(x: f32[N, C]) -> f32[N, C]` with stages `mx`, `e`, `s`, `y`.
    pub fn softmax() -> Func {
        let mut f = FuncBuilder::new("softmax");
        let x = f.input("x", DType::F32, ["N", "C"]);
        f.output(DType::F32, ["N", "C"]);
        let mx =
            f.compute_typed("mx", DType::F32, ["N"], ["n"], |[n]| te::max_over([("c", 0, "C")], |[c]| x.at([&n, &c])));
        let e =
            f.compute_typed("e", DType::F32, ["N", "C"], ["n", "c"], |[n, c]| te::exp(x.at([&n, &c]) - mx.at([&n])));
        let s = f.compute_typed("s", DType::F32, ["N"], ["n"], |[n]| te::sum([("c", 0, "C")], |[c]| e.at([&n, &c])));
        let y = f.compute("y", ["n", "c"], |[n, c]| e.at([&n, &c]) / s.at([&n]));
        f.ret([y]);
        build(f)
    }

    /// `axpb_relu(x: f32[N], a: f32, b: f32) -> f32[N]`.
    pub fn axpb_relu() -> Func {
        let mut f = FuncBuilder::new("axpb_relu");
        let x = f.input("x", DType::F32, ["N"]);
        let a = f.scalar("a", DType::F32);
        let b = f.scalar("b", DType::F32);
        f.output(DType::F32, ["N"]);
        let y = f.compute("y", ["i"], |[i]| te::max(a * x.at([i]) + b, 0.0));
        f.ret([y]);
        build(f)
    }

    /// `conv3x3(x: f32[B, C, H, W], w: f32[F, C, 3, 3]) -> f32[B, F, H, W]`,
    /// zero padding 1, stride 1.
    pub fn conv3x3() -> Func {
        let mut f = FuncBuilder::new("conv3x3");
        let x = f.input("x", DType::F32, ["B", "C", "H", "W"]);
        let w = f.input("w", DType::F32, [Expr::name("F"), "C".into(), 3.into(), 3.into()]);
        f.output(DType::F32, ["B", "F", "H", "W"]);
        let y = f.compute("y", ["n", "f", "h", "ww"], |[n, ff, h, ww]| {
            te::sum([te::rvar("c", 0, "C"), te::rvar("r", 0, 3), te::rvar("s", 0, 3)], |[c, r, s]| {
                let hr = &h + &r;
                let ws = &ww + &s;
                let inside = hr.clone().ge(1).and(hr.clone().le("H")).and(ws.clone().ge(1)).and(ws.clone().le("W"));
                te::if_(inside, x.at([&n, &c, &(&hr - 1), &(&ws - 1)]) * w.at([&ff, &c, &r, &s]), 0.0)
            })
        });
        f.ret([y]);
        build(f)
    }

    /// SPEC §3's GPU schedule of [`matmul`]: 16×16 threads per block, one
    /// output each, `k` in steps of 16 through shared copies of `a` and `b`.
    pub fn matmul_gpu(f: &Func) -> Result<Schedule> {
        let mut s = Schedule::new(f, Some(TargetClass::Gpu));
        let c = s.stage("c")?;
        let (i, j) = (s.axis(c, "i")?, s.axis(c, "j")?);
        let [bi, bj, ti, tj] = s.tile_named(i, j, 16, 16, ["bi", "bj", "ti", "tj"])?;
        s.bind(bi, ThreadAxis::BlockY)?;
        s.bind(bj, ThreadAxis::BlockX)?;
        s.bind(ti, ThreadAxis::ThreadY)?;
        s.bind(tj, ThreadAxis::ThreadX)?;
        let (ko, _) = s.split_named(s.axis(c, "k")?, 16, "ko", "ki")?;
        let a_s = s.cache_read_named(c, "a", Scope::Shared, "a_s")?;
        let b_s = s.cache_read_named(c, "b", Scope::Shared, "b_s")?;
        s.compute_at(a_s, ko)?;
        s.compute_at(b_s, ko)?;
        Ok(s)
    }

    /// A register-blocked GPU schedule of [`matmul`]: a block computes a
    /// `16 r × 16 r` tile with 16×16 threads, each thread an `r × r` tile
    /// accumulated in registers (`cache_write(local)`; its loops and the
    /// copy out unrolled); `k` in steps of `k_step` through shared copies of
    /// `a` and `b`, filled by the whole block.
    pub fn matmul_gpu_registers(f: &Func, r: i64, k_step: i64) -> Result<Schedule> {
        let mut s = Schedule::new(f, Some(TargetClass::Gpu));
        let c = s.stage("c")?;
        let cl = s.cache_write_named(c, Scope::Local, "c_l")?;
        let (i, j) = (s.axis(c, "i")?, s.axis(c, "j")?);
        let [bi, bj, ii, jj] = s.tile_named(i, j, 16 * r, 16 * r, ["bi", "bj", "ii", "jj"])?;
        let (ti, ri) = s.split_named(ii, r, "ti", "ri")?;
        let (tj, rj) = s.split_named(jj, r, "tj", "rj")?;
        s.reorder(&[bi, bj, ti, tj, ri, rj])?;
        s.unroll(ri)?;
        s.unroll(rj)?;
        s.bind(bi, ThreadAxis::BlockY)?;
        s.bind(bj, ThreadAxis::BlockX)?;
        s.bind(ti, ThreadAxis::ThreadY)?;
        s.bind(tj, ThreadAxis::ThreadX)?;
        s.compute_at(cl, tj)?;
        let (ci, cj, k) = (s.axis(cl, "i")?, s.axis(cl, "j")?, s.axis(cl, "k")?);
        let (ko, ki) = s.split_named(k, k_step, "ko", "ki")?;
        s.reorder(&[ko, ki, ci, cj])?;
        s.unroll(ki)?;
        s.unroll(ci)?;
        s.unroll(cj)?;
        let a_s = s.cache_read_named(cl, "a", Scope::Shared, "a_s")?;
        let b_s = s.cache_read_named(cl, "b", Scope::Shared, "b_s")?;
        s.compute_at(a_s, ko)?;
        s.compute_at(b_s, ko)?;
        Ok(s)
    }
}

/// A small deterministic PRNG (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (0 if `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as usize) as i64
    }
    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    /// A random element of a slice.
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// The schedule class (`Gpu` uses `bind`, `Cpu` uses `parallel`).
    pub class: TargetClass,
    /// Element types to draw from.
    pub dtypes: Vec<DType>,
    /// Largest value of a dim.
    pub max_dim: i64,
    /// Probability that a dim is zero.
    pub zero_dim: f64,
    /// Largest split factor.
    pub max_factor: i64,
    /// Probability, per reduction stage, of a final `split(k, 4|8|16)`
    /// with the inner part innermost and vectorized: per-lane partials
    /// in vector registers, which the random loop primitives almost never
    /// produce. `0.0` (the default) draws nothing, so the programs of
    /// existing seeds do not change.
    pub vectorize_reductions: f64,
    /// No schedule: the program runs the class default
    /// ([`Schedule::default_for`], e.g. the CPU default's row fusion).
    pub default_schedule: bool,
    /// Probability, per dim, that the program is specialized to the
    /// case's value of it ([`Program::specialize`]); the reference stays
    /// the generic unscheduled definition. `0.0` (the default) draws
    /// nothing, so existing seeds do not change.
    pub specialize: f64,
}

impl GenConfig {
    /// Defaults for a class: every element type but `bool`, dims up to 9.
    pub fn new(class: TargetClass) -> GenConfig {
        GenConfig {
            class,
            dtypes: vec![DType::F32, DType::I32, DType::F64, DType::I64, DType::U8, DType::I16, DType::F16, DType::U32],
            max_dim: 9,
            zero_dim: 0.08,
            max_factor: 5,
            vectorize_reductions: 0.0,
            default_schedule: false,
            specialize: 0.0,
        }
    }
}

/// One generated test case.
#[derive(Clone, Debug)]
pub struct Case {
    /// The seed it was generated from.
    pub seed: u64,
    /// The definition with one schedule for the configured class.
    pub program: Program,
    /// The schedule primitives applied, in order (for failure reports).
    pub log: Vec<String>,
    /// Input tensors.
    pub inputs: Vec<AnyTensor>,
    /// Scalar inputs.
    pub params: Vec<Scalar>,
}

/// The interpreter as a compile function, for [`Case::run`].
pub fn interp(l: &Lowered) -> Result<Box<dyn Executable>> {
    Ok(Box::new(crate::interp::Interpreter::new(l.flat.clone())))
}

impl Case {
    /// Generates a case from a seed. Always succeeds: a primitive that is
    /// illegal for the generated definition is skipped (and logged).
    pub fn generate(seed: u64, cfg: &GenConfig) -> Case {
        let mut rng = Rng::new(seed);
        let (fb, dims) = gen_func(&mut rng, cfg);
        let func = match fb.build() {
            Ok(f) => f,
            // A generator bug: report it through the case (the test fails on
            // the definition error with the seed).
            Err(e) => panic!("testing generator produced an invalid definition (seed {seed}): {e}\n{fb:#?}"),
        };
        let mut log = vec![];
        let program = if cfg.default_schedule {
            let s = Schedule::default_for(&func, cfg.class);
            log.push(format!("(the {:?} default)\n{s}", cfg.class));
            Program::new(func)
        } else {
            let sched = gen_schedule(&mut rng, &func, cfg, &mut log);
            Program::new(func).with_schedule(sched)
        };
        let (inputs, params) = gen_inputs(&mut rng, program.func(), &dims);
        let mut program = program;
        if cfg.specialize > 0.0 {
            let fixed: Vec<(&str, usize)> = dims
                .iter()
                .filter(|(n, _)| program.func().dims.contains(n))
                .filter(|_| rng.chance(cfg.specialize))
                .filter_map(|(n, v)| Some((n.as_str(), usize::try_from(*v).ok()?)))
                .collect();
            log.push(format!("specialize({fixed:?})"));
            program = match program.specialize(&fixed) {
                Ok(p) => p,
                Err(e) => panic!("specializing a generated program failed (seed {seed}): {e}"),
            };
        }
        Case { seed, program, log, inputs, params }
    }

    /// The definition.
    pub fn func(&self) -> &Func {
        self.program.func()
    }

    /// A description for failure messages: seed, definition, schedule.
    pub fn describe(&self) -> String {
        let shapes: Vec<String> = self.inputs.iter().map(|t| format!("{:?}", t.shape())).collect();
        format!(
            "seed {}\n{}\nschedule:\n  {}\ninput shapes: {}\nparams: {:?}",
            self.seed,
            self.func(),
            self.log.join("\n  "),
            shapes.join(", "),
            self.params
        )
    }

    /// Runs a lowered program with a compile function on this case's inputs.
    pub fn run(
        &self,
        lowered: &Lowered,
        compile: &dyn Fn(&Lowered) -> Result<Box<dyn Executable>>,
    ) -> Result<Vec<AnyTensor>> {
        run_lowered(self.func(), lowered, &self.inputs, &self.params, compile)
    }

    /// The unscheduled definition on the interpreter: the expected results.
    pub fn reference(&self) -> Result<Vec<AnyTensor>> {
        let l = self.program.lower_unscheduled()?;
        self.run(&l, &interp)
    }

    /// Lowers the scheduled program for `target`.
    pub fn lower(&self, target: Target) -> Result<Lowered> {
        self.program.lower(target)
    }
}

/// Runs `lowered` (a lowering of `func`) through `compile` on `inputs` and
/// scalar `params`, with every per-call check a [`crate::Compiled`] makes.
pub fn run_lowered(
    func: &Func,
    lowered: &Lowered,
    inputs: &[AnyTensor],
    params: &[Scalar],
    compile: &dyn Fn(&Lowered) -> Result<Box<dyn Executable>>,
) -> Result<Vec<AnyTensor>> {
    let typed: Vec<(DType, &[usize])> = inputs.iter().map(|t| (t.data().dtype(), t.shape())).collect();
    let dims = bind_dims(func, &typed)?;
    lowered.check_call(&dims, params)?;
    let shapes = output_shapes(func, &dims)?;
    let mut outs: Vec<AnyTensor> =
        func.output_types().iter().zip(&shapes).map(|((t, _), s)| AnyTensor::zeros(*t, s)).collect();
    let exe = compile(lowered)?;
    let data: Vec<Data<'_>> = inputs.iter().map(|t| t.data()).collect();
    let mut out_data: Vec<DataMut<'_>> = outs.iter_mut().map(|t| t.data_mut()).collect();
    let mut call = Call { dims: &dims, params, inputs: &data, outputs: &mut out_data };
    // SAFETY: dims bound from the inputs' shapes (each tensor's data
    // matches its shape), outputs made of the bound shapes, scalars of the
    // declared types, and `check_call` passed.
    unsafe { exe.run(&mut call)? };
    drop(out_data);
    Ok(outs)
}

/// Compares results: integers and bools exactly; floats with `|a - b| <=
/// atol + rtol * |b|` (f32/f64: 1e-4 both; f16/bf16: 2e-2), NaN matching NaN.
pub fn assert_close(got: &[AnyTensor], want: &[AnyTensor]) -> std::result::Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{} outputs, expected {}", got.len(), want.len()));
    }
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        if g.shape() != w.shape() {
            return Err(format!("output {k}: shape {:?}, expected {:?}", g.shape(), w.shape()));
        }
        for i in 0..w.len() {
            let (a, b) = (g.get(i), w.get(i));
            let (Some(a), Some(b)) = (a, b) else { return Err(format!("output {k}: element {i} missing")) };
            let ok = if b.dtype().is_float() {
                let (x, y) = (a.as_f64(), b.as_f64());
                let tol = if matches!(b.dtype(), DType::F16 | DType::BF16) { 2e-2 } else { 1e-4 };
                (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= tol + tol * y.abs()
            } else {
                a == b
            };
            if !ok {
                return Err(format!("output {k}: element {i} is {a}, expected {b}"));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Definitions

struct Avail {
    name: String,
    /// Dim names of the tensor.
    dims: Vec<String>,
}

struct Gen<'r> {
    rng: &'r mut Rng,
    dtype: DType,
}

impl Gen<'_> {
    fn lit(&mut self) -> Expr {
        let v = self.rng.range(-3, 3);
        if self.dtype.is_float() {
            Expr::float(v as f64)
        } else if self.dtype.is_unsigned_int() {
            Expr::int(v.unsigned_abs() as i128)
        } else {
            Expr::int(v as i128)
        }
    }

    /// A load of a tensor whose dims match `idx` (by dim name), possibly
    /// shifted by one with a guard.
    fn load(&mut self, t: &Avail, idx: &[(String, String)]) -> Expr {
        let mut args = vec![];
        let mut guards: Vec<Expr> = vec![];
        for d in &t.dims {
            let Some((var, _)) = idx.iter().find(|(_, dim)| dim == d) else {
                args.push(Expr::int(0));
                continue;
            };
            let v = Expr::name(var.clone());
            if self.rng.chance(0.2) {
                // Shifted read with a guard: if i + 1 < N { t[i + 1] } else { .. }
                let shift = if self.rng.chance(0.5) { 1 } else { -1 };
                let shifted = te::binary(BinOp::Add, v.clone(), Expr::int(shift));
                guards.push(if shift > 0 {
                    shifted.clone().lt(Expr::name(d.clone()))
                } else {
                    shifted.clone().ge(Expr::int(0))
                });
                args.push(shifted);
            } else {
                args.push(v);
            }
        }
        let load = te::index(t.name.as_str(), args);
        match guards.into_iter().reduce(te::and) {
            Some(g) => {
                let other = self.lit();
                te::if_(g, load, other)
            }
            None => load,
        }
    }

    fn expr(&mut self, depth: u32, avail: &[Avail], idx: &[(String, String)], params: &[String]) -> Expr {
        if depth == 0 || self.rng.chance(0.25) {
            return match self.rng.below(10) {
                0 | 1 => self.lit(),
                2 if !params.is_empty() => Expr::name(self.rng.pick(params).clone()),
                3 if !idx.is_empty() => {
                    let (v, _) = self.rng.pick(idx).clone();
                    Expr::name(v).cast(self.dtype)
                }
                _ => {
                    let candidates: Vec<&Avail> =
                        avail.iter().filter(|t| t.dims.iter().all(|d| idx.iter().any(|(_, x)| x == d))).collect();
                    if candidates.is_empty() {
                        self.lit()
                    } else {
                        let t = candidates[self.rng.below(candidates.len())];
                        self.load(t, idx)
                    }
                }
            };
        }
        let a = self.expr(depth - 1, avail, idx, params);
        let b = self.expr(depth - 1, avail, idx, params);
        match self.rng.below(11) {
            0..=2 => te::binary(BinOp::Add, a, b),
            3 => te::binary(BinOp::Sub, a, b),
            4 | 5 => te::binary(BinOp::Mul, a, b),
            6 => te::binary(if self.rng.chance(0.5) { BinOp::Min } else { BinOp::Max }, a, b),
            7 => te::binary(if self.rng.chance(0.5) { BinOp::Div } else { BinOp::Rem }, a, b),
            8 => {
                let c = self.expr(depth - 1, avail, idx, params);
                let d = self.expr(depth - 1, avail, idx, params);
                let cond = te::cmp(*self.rng.pick(&[CmpOp::Lt, CmpOp::Ge, CmpOp::Eq]), c, d);
                if self.rng.chance(0.5) { te::if_(cond, a, b) } else { te::select(cond, a, b) }
            }
            9 if self.dtype.is_float() => match self.rng.below(4) {
                0 => te::abs(a),
                1 => te::floor(a),
                2 => te::binary(BinOp::Mul, te::sqrt(te::abs(a)), b),
                _ => te::fma(a, b, self.lit()),
            },
            9 if self.dtype.is_signed_int() => te::abs(a),
            _ => te::clamp(a, Expr::int(0).cast(self.dtype), self.lit()),
        }
    }
}

fn gen_func(rng: &mut Rng, cfg: &GenConfig) -> (FuncBuilder, Vec<(String, i64)>) {
    let dtype = *rng.pick(&cfg.dtypes);
    let rank = 1 + rng.below(2) + usize::from(rng.chance(0.1));
    let dim_names: Vec<String> = (0..rank).map(|i| ["N", "M", "P"][i].to_string()).collect();
    let mut dims: Vec<(String, i64)> = vec![];
    let dim_val = |rng: &mut Rng| if rng.chance(cfg.zero_dim) { 0 } else { rng.range(1, cfg.max_dim) };
    for d in &dim_names {
        let v = dim_val(rng);
        dims.push((d.clone(), v));
    }
    let kdim = ("K".to_string(), dim_val(rng));
    let idx: Vec<(String, String)> =
        dim_names.iter().enumerate().map(|(i, d)| (["i", "j", "l"][i].to_string(), d.clone())).collect();

    let mut f = FuncBuilder::new("gen");
    let mut avail = vec![];
    f.input("x", dtype, dim_names.iter().map(|d| Expr::name(d.clone())));
    avail.push(Avail { name: "x".into(), dims: dim_names.clone() });
    if rng.chance(0.5) {
        f.input("y", dtype, dim_names.iter().map(|d| Expr::name(d.clone())));
        avail.push(Avail { name: "y".into(), dims: dim_names.clone() });
    }
    let use_k = rng.chance(0.6);
    if use_k {
        let mut wd = vec![dim_names[0].clone(), "K".to_string()];
        if rng.chance(0.4) {
            wd = vec!["K".to_string()];
        }
        f.input("w", dtype, wd.iter().map(|d| Expr::name(d.clone())));
        avail.push(Avail { name: "w".into(), dims: wd });
        dims.push(kdim.clone());
    }
    let mut params = vec![];
    if rng.chance(0.4) {
        f.scalar("a", dtype);
        params.push("a".to_string());
    }
    let nstages = 1 + rng.below(3);
    let outputs = if nstages >= 2 && rng.chance(0.2) { 2 } else { 1 };
    let mut g = Gen { rng, dtype };
    let mut stage_names = vec![];
    for s in 0..nstages {
        let name = format!("s{s}");
        let kind = g.rng.below(4);
        let body = match kind {
            // Reduction over K (reads tensors with K as well as the rest).
            0 | 1 if use_k => {
                // No float16 products: overflow to inf times a zero gives NaN or 0
                // depending on the order, which a reassociating schedule changes.
                let ops: &[ReduceOp] = if matches!(dtype, DType::F16 | DType::BF16) {
                    &[ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min]
                } else {
                    &[ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Prod, ReduceOp::Sum]
                };
                let op = *g.rng.pick(ops);
                let mut ridx = idx.clone();
                ridx.push(("k".into(), "K".into()));
                let depth = 1 + g.rng.below(2) as u32;
                let value = g.expr(depth, &avail, &ridx, &params);
                te::reduce(op, vec![te::rvar("k", 0, "K")], value)
            }
            // Padded window over the first dim: sum(r in 0..3 => if i + r >= 1 && i + r <= N { t[i + r - 1, ..] } else { 0 }).
            2 => {
                let t = &avail[g.rng.below(avail.len())];
                if t.dims.first() == Some(&dim_names[0]) && t.dims.iter().all(|d| dim_names.contains(d)) {
                    let first =
                        te::binary(BinOp::Sub, te::binary(BinOp::Add, Expr::name("i"), Expr::name("r")), Expr::int(1));
                    let mut args = vec![first];
                    for d in &t.dims[1..] {
                        let (v, _) = idx.iter().find(|(_, x)| x == d).cloned().unwrap_or_default();
                        args.push(Expr::name(v));
                    }
                    let ir = te::binary(BinOp::Add, Expr::name("i"), Expr::name("r"));
                    let guard = ir.clone().ge(Expr::int(1)).and(ir.le(Expr::name(dim_names[0].clone())));
                    let zero = if dtype.is_float() { Expr::float(0.0) } else { Expr::int(0) };
                    let value = te::if_(guard, te::index(t.name.as_str(), args), zero);
                    te::reduce(ReduceOp::Sum, vec![te::rvar("r", 0, 3)], value)
                } else {
                    g.expr(2, &avail, &idx, &params)
                }
            }
            _ => {
                let depth = 1 + g.rng.below(3) as u32;
                g.expr(depth, &avail, &idx, &params)
            }
        };
        let returned = s + outputs >= nstages;
        let ty = (!returned || g.rng.chance(0.3)).then(|| te::TypeDef {
            dtype,
            shape: dim_names.iter().map(|d| Expr::name(d.clone())).collect(),
            origin: None,
        });
        f.add_stage(te::StageDef {
            name: name.as_str().into(),
            ty,
            idx: idx.iter().map(|(v, _)| te::Ident::new(v.clone())).collect(),
            body,
        });
        avail.push(Avail { name: name.clone(), dims: dim_names.clone() });
        stage_names.push(name);
    }
    for _ in 0..outputs {
        f.output(dtype, dim_names.iter().map(|d| Expr::name(d.clone())));
    }
    f.ret.clear();
    for n in &stage_names[nstages - outputs..] {
        f.ret.push(te::Ident::new(n.clone()));
    }
    (f, dims)
}

// ---------------------------------------------------------------------------
// Schedules

fn gen_schedule(rng: &mut Rng, func: &Func, cfg: &GenConfig, log: &mut Vec<String>) -> Schedule {
    let mut s = Schedule::new(func, Some(cfg.class));
    let mut try_op = |_: &mut Schedule, desc: String, r: Result<()>| match r {
        Ok(()) => log.push(desc),
        Err(e) => log.push(format!("{desc}  -- skipped: {}", e.message())),
    };
    let nstages = func.stages.len();
    let mut counter = 0;
    let mut fresh = |base: &str| {
        counter += 1;
        format!("{base}{counter}")
    };
    // cache_write comes first on a stage.
    for st in 0..nstages {
        if rng.chance(0.15) {
            let name = fresh("cw");
            let r = s.cache_write_named(StageRef(st as u32), Scope::Local, &name).map(|_| ());
            try_op(&mut s, format!("{}.cache_write(local) as {name}", func.stages[st].name), r);
        }
    }
    // cache_read: a stage reads an input or stage through a copy.
    if rng.chance(0.3) {
        let consumer = StageRef(rng.below(s.stages.len()) as u32);
        let reads: Vec<String> = s.stages[consumer.0 as usize]
            .body
            .exprs()
            .iter()
            .flat_map(|e| {
                let mut v = vec![];
                e.visit(&mut |x| {
                    if let crate::expr::Expr::Load(l) = x {
                        v.push(s.tensors[l.buf.0 as usize].name.clone());
                    }
                });
                v
            })
            .collect();
        if !reads.is_empty() {
            let t = rng.pick(&reads).clone();
            let scope = if cfg.class == TargetClass::Gpu && rng.chance(0.6) { Scope::Shared } else { Scope::Local };
            let name = fresh("cr");
            let cname = s.stage_name_of(consumer).to_string();
            let r = s.cache_read_named(consumer, &t, scope, &name).map(|_| ());
            try_op(&mut s, format!("{cname}.cache_read({t}, {}) as {name}", scope.name()), r);
        }
    }
    // Loop primitives on every stage.
    for st in 0..s.stages.len() {
        let sr = StageRef(st as u32);
        let sname = s.stage_name_of(sr).to_string();
        let nops = rng.below(5);
        let mut bound: Vec<ThreadAxis> = vec![];
        for _ in 0..nops {
            let loops = s.loops_of(sr);
            if loops.is_empty() {
                break;
            }
            let a = *rng.pick(&loops);
            let an = s.axis_name_of(a).to_string();
            match rng.below(9) {
                0 | 1 => {
                    let f = rng.range(1, cfg.max_factor);
                    let (o, i) = (fresh("o"), fresh("i"));
                    let r = s.split_named(a, f, &o, &i).map(|_| ());
                    try_op(&mut s, format!("{sname}: let ({o}, {i}) = split({an}, {f})"), r);
                }
                2 if loops.len() >= 2 => {
                    let b = *rng.pick(&loops);
                    let (fx, fy) = (rng.range(1, cfg.max_factor), rng.range(1, cfg.max_factor));
                    let names = [fresh("xo"), fresh("yo"), fresh("xi"), fresh("yi")];
                    let bn = s.axis_name_of(b).to_string();
                    let r = s.tile_named(a, b, fx, fy, [&names[0], &names[1], &names[2], &names[3]]).map(|_| ());
                    try_op(&mut s, format!("{sname}: let {names:?} = tile({an}, {bn}, {fx}, {fy})"), r);
                }
                3 => {
                    let p = loops.iter().position(|x| *x == a).unwrap_or(0);
                    if p + 1 < loops.len() {
                        let b = loops[p + 1];
                        let n = fresh("f");
                        let bn = s.axis_name_of(b).to_string();
                        let r = s.fuse_named(a, b, &n).map(|_| ());
                        try_op(&mut s, format!("{sname}: let {n} = fuse({an}, {bn})"), r);
                    }
                }
                4 => {
                    let mut order: Vec<AxisRef> = loops.clone();
                    for i in (1..order.len()).rev() {
                        order.swap(i, rng.below(i + 1));
                    }
                    let names: Vec<String> = order.iter().map(|x| s.axis_name_of(*x).to_string()).collect();
                    let r = s.reorder(&order);
                    try_op(&mut s, format!("{sname}: reorder({})", names.join(", ")), r);
                }
                5 => {
                    let r = s.vectorize(a);
                    try_op(&mut s, format!("{sname}: vectorize({an})"), r);
                }
                6 => {
                    let r = s.unroll(a);
                    try_op(&mut s, format!("{sname}: unroll({an})"), r);
                }
                _ => {
                    if cfg.class == TargetClass::Gpu {
                        let free: Vec<ThreadAxis> =
                            ThreadAxis::ALL.into_iter().filter(|t| !bound.contains(t)).collect();
                        if !free.is_empty() {
                            let t = *rng.pick(&free);
                            let r = s.bind(a, t);
                            if r.is_ok() {
                                bound.push(t);
                            }
                            try_op(&mut s, format!("{sname}: bind({an}, {})", t.name()), r);
                        }
                    } else {
                        let r = s.parallel(a);
                        try_op(&mut s, format!("{sname}: parallel({an})"), r);
                    }
                }
            }
        }
    }
    // A reduction axis split and its inner part vectorized innermost.
    for st in 0..s.stages.len() {
        let sr = StageRef(st as u32);
        if cfg.vectorize_reductions <= 0.0 || !rng.chance(cfg.vectorize_reductions) {
            continue;
        }
        let Some(k) = s.loops_of(sr).into_iter().find(|a| matches!(s.axis_name_of(*a), "k" | "r")) else { continue };
        let (sname, kn) = (s.stage_name_of(sr).to_string(), s.axis_name_of(k).to_string());
        let f = [4, 8, 16][rng.below(3)];
        let (o, i) = (fresh("vo"), fresh("vi"));
        let desc = format!("{sname}: let ({o}, {i}) = split({kn}, {f})");
        let inner = match s.split_named(k, f, &o, &i) {
            Ok((_, inner)) => {
                try_op(&mut s, desc, Ok(()));
                inner
            }
            Err(e) => {
                try_op(&mut s, desc, Err(e));
                continue;
            }
        };
        let mut order: Vec<AxisRef> = s.loops_of(sr).into_iter().filter(|a| *a != inner).collect();
        order.push(inner);
        let r = s.reorder(&order);
        try_op(&mut s, format!("{sname}: reorder(.., {i})"), r);
        let r = s.vectorize(inner);
        try_op(&mut s, format!("{sname}: vectorize({i})"), r);
    }
    // Where each non-output stage is computed: consumers first, so that a
    // producer can be attached to a stage its reader is computed in.
    for st in (0..s.stages.len()).rev() {
        let sr = StageRef(st as u32);
        if s.stages[st].output.is_some() {
            continue;
        }
        let sname = s.stage_name_of(sr).to_string();
        match rng.below(4) {
            0 => {
                let r = s.compute_inline(sr);
                try_op(&mut s, format!("{sname}.compute_inline()"), r);
            }
            1 | 2 => {
                // At a loop of a stage that reads it.
                let buf = s.stages[st].buf;
                let readers: Vec<usize> = (0..s.stages.len())
                    .filter(|c| {
                        s.stages[*c]
                            .body
                            .exprs()
                            .iter()
                            .any(|e| e.any(&mut |x| matches!(x, crate::expr::Expr::Load(l) if l.buf == buf)))
                    })
                    .collect();
                if let Some(&r0) = readers.first() {
                    // The reader, or (sometimes) a stage the reader is
                    // computed in, at a loop enclosing the reader.
                    let mut c = r0;
                    let mut upto = usize::MAX;
                    while rng.chance(0.5) {
                        let crate::schedule::Attach::At { stage, axis, .. } = s.stages[c].attach else { break };
                        upto = s.stages[stage].leaves.iter().position(|l| *l == axis).unwrap_or(0);
                        c = stage;
                    }
                    let loops = s.loops_of(StageRef(c as u32));
                    let loops = &loops[..loops.len().min(upto.saturating_add(1))];
                    if !loops.is_empty() {
                        let a = *rng.pick(loops);
                        let (cn, an) = (s.stage_name_of(StageRef(c as u32)).to_string(), s.axis_name_of(a).to_string());
                        let r = s.compute_at(sr, a);
                        let how = if c == r0 { "" } else { "  (a loop of its reader's ancestor)" };
                        try_op(&mut s, format!("{sname}.compute_at({cn}, {an}){how}"), r);
                    }
                }
            }
            _ => {
                let r = s.compute_root(sr);
                try_op(&mut s, format!("{sname}.compute_root()"), r);
            }
        }
    }
    s
}

// ---------------------------------------------------------------------------
// Inputs

fn gen_inputs(rng: &mut Rng, func: &Func, dims: &[(String, i64)]) -> (Vec<AnyTensor>, Vec<Scalar>) {
    let dim_val = |name: &str| dims.iter().find(|(n, _)| n == name).map(|(_, v)| *v).unwrap_or(1);
    let mut inputs = vec![];
    for b in func.inputs() {
        let t = func.tensor(b);
        let shape: Vec<usize> = t
            .shape
            .iter()
            .map(|e| match e {
                crate::expr::Expr::Dim(d) => dim_val(&func.dims[*d as usize]) as usize,
                other => other.as_int().unwrap_or(1) as usize,
            })
            .collect();
        let n: usize = shape.iter().product();
        // Small integers: float sums are then exact whatever the order.
        let vals: Vec<Scalar> = (0..n).map(|_| Scalar::I64(rng.range(-4, 4))).collect();
        inputs.push(AnyTensor::from_scalars(t.dtype, &shape, &vals));
    }
    let params = func.params.iter().map(|p| Scalar::I64(rng.range(-3, 3)).cast(p.dtype)).collect();
    (inputs, params)
}

/// Runs `cases` generated cases for `cfg` on `target` through `compile`, and
/// compares each with the reference. Returns the number of cases whose
/// schedule was rejected at lowering (legitimately), or the first mismatch.
pub fn differential(
    cfg: &GenConfig,
    seeds: impl IntoIterator<Item = u64>,
    target: Target,
    compile: &dyn Fn(&Lowered) -> Result<Box<dyn Executable>>,
) -> std::result::Result<usize, String> {
    let mut rejected = 0;
    for seed in seeds {
        let case = Case::generate(seed, cfg);
        let want = case.reference().map_err(|e| format!("reference failed: {e}\n{}", case.describe()))?;
        let lowered = match case.lower(target) {
            Ok(l) => l,
            Err(Error::Schedule(_)) => {
                rejected += 1;
                continue;
            }
            Err(e) => return Err(format!("lowering failed: {e}\n{}", case.describe())),
        };
        let got =
            case.run(&lowered, compile).map_err(|e| format!("run failed: {e}\n{}\n{lowered}", case.describe()))?;
        assert_close(&got, &want).map_err(|e| format!("{e}\n{}\n{lowered}", case.describe()))?;
    }
    Ok(rejected)
}
