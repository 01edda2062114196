//! Calls: binding shapes, checking arguments, and the interface backends
//! implement.
//!
//! Everything a call checks is checked here, once, for every backend: the
//! argument count and types, ranks, literal dims, the agreement of each
//! symbolic dim across inputs, output shapes, and the bounds proof for the
//! call's dims. A backend's [`Executable`] only runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::dtype::{DType, Data, DataMut};
use crate::error::{Error, Result, ShapeError};
use crate::expr::Expr;
use crate::func::Func;
use crate::lower::{Lowered, ProofPending, lower, lower_pending};
use crate::schedule::Schedule;
use crate::target::{Target, TargetClass};
use crate::tensor::shape_str;
use crate::value::Scalar;

/// The arguments of one call, type-erased and already checked.
pub struct Call<'a, 'b> {
    /// Values of the symbolic dims, in [`Func::dims`] order.
    pub dims: &'a [i64],
    /// Scalar inputs, in [`Func::params`] order.
    pub params: &'a [Scalar],
    /// Tensor inputs, in input order.
    pub inputs: &'a [Data<'b>],
    /// Outputs, in output order, of the right shapes.
    pub outputs: &'a mut [DataMut<'b>],
}

/// Compiled code for one lowered function on one target.
pub trait Executable: Send + Sync {
    /// Runs on checked arguments.
    ///
    /// # Safety
    ///
    /// Generated code reads and writes without checks. The caller must
    /// have checked the call as [`Compiled::run`] does: `dims` bound from
    /// the inputs' shapes, every input's data as long as its shape, every
    /// output of its shape, the scalar inputs of their declared types, and
    /// [`Lowered::check_call`] passed for these dims and scalars.
    unsafe fn run(&self, call: &mut Call<'_, '_>) -> Result<()>;
}

/// A definition with its schedules: what `tensor_expr!` captures.
#[derive(Clone, Debug)]
pub struct Program {
    func: Arc<Func>,
    all: Option<Schedule>,
    cpu: Option<Schedule>,
    gpu: Option<Schedule>,
}

impl Program {
    /// A definition with default schedules.
    pub fn new(func: Func) -> Program {
        Program { func: Arc::new(func), all: None, cpu: None, gpu: None }
    }

    /// The definition.
    pub fn func(&self) -> &Func {
        &self.func
    }

    /// Adds a schedule for its class (`None`: all targets); it replaces an
    /// earlier one for the same class.
    pub fn with_schedule(mut self, s: Schedule) -> Program {
        match s.class() {
            None => self.all = Some(s),
            Some(TargetClass::Cpu) => self.cpu = Some(s),
            Some(TargetClass::Gpu) => self.gpu = Some(s),
        }
        self
    }

    /// The schedule a target uses: its class's, else the all-targets one,
    /// else the class default (with the dims [`Program::specialize`] fixed
    /// as literals).
    pub fn schedule_for(&self, target: Target) -> Schedule {
        let class = target.class();
        let specific = match class {
            TargetClass::Cpu => &self.cpu,
            TargetClass::Gpu => &self.gpu,
        };
        let fixed = self.func.fixed.iter().any(Option::is_some);
        match specific.as_ref().or(self.all.as_ref()) {
            Some(s) if fixed => s.specialized(&self.func),
            Some(s) => s.clone(),
            None if fixed => Schedule::default_for(&self.func.with_fixed_substituted(), class),
            None => Schedule::default_for(&self.func, class),
        }
    }

    /// The same definition and schedules with some dims fixed: `dims` names
    /// each dim and its value (`[("M", 1024), ("K", 1024)]`). Lowering then
    /// sees those dims as literals: tails and guards that the values decide
    /// are decided at compile time, constant loop extents can be unrolled,
    /// and bounds are proven for the values. Calls must bind a fixed dim to
    /// its value (an `Err` naming the dim and the tensor otherwise); other
    /// dims stay symbolic. Fixing a dim again to the same value is allowed.
    ///
    /// `Err` for a name that is not a dim of the definition, a value past
    /// `i64::MAX`, or a dim already fixed to another value.
    pub fn specialize(&self, dims: &[(&str, usize)]) -> Result<Program> {
        let func = &self.func;
        let err = |message: String| Error::Shape(ShapeError { func: func.name.clone(), message });
        let mut fixed = func.fixed.clone();
        fixed.resize(func.dims.len(), None);
        for (name, value) in dims {
            let Some(d) = func.dims.iter().position(|n| n == name) else {
                let known = if func.dims.is_empty() {
                    "it has none".to_string()
                } else {
                    format!("its dims: {}", func.dims.join(", "))
                };
                return Err(err(format!("cannot specialize `{name}`: not a dim of the definition ({known})")));
            };
            let v =
                i64::try_from(*value).map_err(|_| err(format!("cannot specialize `{name}` to {value}: too large")))?;
            match fixed[d] {
                Some(old) if old != v && func.fixed_dim(d as u32) == Some(old) => {
                    return Err(err(format!("cannot specialize `{name}` to {v}: already specialized to {old}")));
                }
                Some(old) if old != v => {
                    return Err(err(format!("cannot specialize `{name}` to both {old} and {v}")));
                }
                _ => fixed[d] = Some(v),
            }
        }
        let mut f = (**func).clone();
        f.fixed = fixed;
        Ok(Program { func: Arc::new(f), all: self.all.clone(), cpu: self.cpu.clone(), gpu: self.gpu.clone() })
    }

    /// The loop nest for a target.
    pub fn lower(&self, target: Target) -> Result<Lowered> {
        crate::deep::with_stack(self.func.depth(), || lower(&self.schedule_for(target), target))
    }

    /// [`Program::lower`] with the bounds proof left to run beside
    /// compilation ([`ProofPending`]).
    pub fn lower_pending(&self, target: Target) -> Result<ProofPending> {
        crate::deep::with_stack(self.func.depth(), || lower_pending(&self.schedule_for(target), target))
    }

    /// The loop nest with no schedule at all: the reference the property
    /// tests compare every schedule against.
    pub fn lower_unscheduled(&self) -> Result<Lowered> {
        crate::deep::with_stack(self.func.depth(), || {
            lower(&Schedule::new(&self.func, Some(TargetClass::Cpu)), Target::Interp)
        })
    }
}

/// Binds the dims of `func` from input shapes, naming the function, the dim
/// and the tensors on disagreement.
pub fn bind_dims(func: &Func, inputs: &[(DType, &[usize])]) -> Result<Vec<i64>> {
    let err = |message: String| Error::Shape(ShapeError { func: func.name.clone(), message });
    let decls: Vec<_> = func.inputs().map(|b| func.tensor(b)).collect();
    if decls.len() != inputs.len() {
        return Err(err(format!("expects {} tensor input(s), got {}", decls.len(), inputs.len())));
    }
    let mut dims: Vec<Option<(i64, usize)>> = vec![None; func.dims.len()];
    let type_str = |i: usize| -> String {
        let t = decls[i];
        let d: Vec<String> = t.shape.iter().map(|e| crate::expr::Show(e, func).to_string()).collect();
        format!("{}[{}]", t.dtype, d.join(", "))
    };
    for (i, ((dtype, shape), t)) in inputs.iter().zip(&decls).enumerate() {
        if *dtype != t.dtype {
            return Err(err(format!(
                "`{}` must be {} ({}: {}), found {dtype} elements",
                t.name,
                t.dtype,
                t.name,
                type_str(i)
            )));
        }
        if shape.len() != t.shape.len() {
            return Err(err(format!(
                "`{}` must have {} dim(s) ({}: {}) but has shape {}",
                t.name,
                t.shape.len(),
                t.name,
                type_str(i),
                shape_str(shape)
            )));
        }
        for (k, (&n, d)) in shape.iter().zip(&t.shape).enumerate() {
            let n64 = i64::try_from(n).map_err(|_| err(format!("dim {k} of `{}` is too large", t.name)))?;
            match d {
                Expr::Dim(id) => match dims[*id as usize] {
                    None => dims[*id as usize] = Some((n64, i)),
                    Some((v, j)) if v != n64 => {
                        let other = decls[j];
                        return Err(err(format!(
                            "dim {} is {v} in `{}` ({} is {}) but {n} in `{}` ({} is {})",
                            func.dims[*id as usize],
                            other.name,
                            other.name,
                            shape_str(inputs[j].1),
                            t.name,
                            t.name,
                            shape_str(shape)
                        )));
                    }
                    Some(_) => {}
                },
                other => {
                    let want = other.as_int().unwrap_or(-1);
                    if want != n64 {
                        return Err(err(format!(
                            "dim {k} of `{}` must be {want} ({}: {}) but `{}` is {}",
                            t.name,
                            t.name,
                            type_str(i),
                            t.name,
                            shape_str(shape)
                        )));
                    }
                }
            }
        }
        if shape.iter().try_fold(1usize, |a, d| a.checked_mul(*d)).is_none() {
            return Err(err(format!("`{}` has more elements than fit in memory", t.name)));
        }
    }
    for (id, d) in dims.iter_mut().enumerate() {
        let Some(want) = func.fixed_dim(id as u32) else { continue };
        match *d {
            Some((v, j)) if v != want => {
                return Err(err(format!(
                    "dim {} is {v} in `{}` ({} is {}) but the kernel is specialized to {} = {want}",
                    func.dims[id],
                    decls[j].name,
                    decls[j].name,
                    shape_str(inputs[j].1),
                    func.dims[id]
                )));
            }
            Some(_) => {}
            None => *d = Some((want, 0)),
        }
    }
    Ok(dims.into_iter().map(|d| d.map(|(v, _)| v).unwrap_or(0)).collect())
}

/// Evaluates an `i64` expression of dims: `None` if it is not one, or if
/// it (or a step of it) overflows `i64` ([`eval_dims_checked`] says which).
pub fn eval_dims(e: &Expr, dims: &[i64]) -> Option<i64> {
    eval_dims_checked(e, dims).ok().flatten()
}

/// Evaluates an `i64` expression of dims with the language's integer
/// semantics (floor division, a zero divisor gives 0): `Ok(None)` if it is
/// not an expression of dims, `Err(())` if a step overflows `i64`.
#[allow(clippy::result_unit_err)]
pub fn eval_dims_checked(e: &Expr, dims: &[i64]) -> std::result::Result<Option<i64>, ()> {
    use crate::expr::{BinOp, UnOp};
    let fit = |v: i128| i64::try_from(v).map(Some).map_err(|_| ());
    match e {
        Expr::Dim(d) => Ok(dims.get(*d as usize).copied()),
        Expr::Const(_) => Ok(e.as_int()),
        Expr::Unary(UnOp::Neg, a) => match eval_dims_checked(a, dims)? {
            Some(a) => fit(-(a as i128)),
            None => Ok(None),
        },
        Expr::Binary(op, a, b) => {
            let (Some(x), Some(y)) = (eval_dims_checked(a, dims)?, eval_dims_checked(b, dims)?) else {
                return Ok(None);
            };
            let (x, y) = (x as i128, y as i128);
            fit(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => crate::value::floor_div(x, y),
                BinOp::Rem => crate::value::floor_mod(x, y),
                BinOp::Min => x.min(y),
                BinOp::Max => x.max(y),
            })
        }
        Expr::Cast(t, a) if *t == DType::INDEX && a.dtype() == DType::INDEX => eval_dims_checked(a, dims),
        // Type checking builds shapes from dims, literals and the operators
        // above only.
        _ => Ok(None),
    }
}

/// The output shapes of `func` for bound dims.
pub fn output_shapes(func: &Func, dims: &[i64]) -> Result<Vec<Vec<usize>>> {
    let mut out = vec![];
    for (k, (_, shape)) in func.output_types().iter().enumerate() {
        let mut s = vec![];
        for d in shape {
            let dim_list = || -> String {
                let named: Vec<String> = func.dims.iter().zip(dims).map(|(n, v)| format!("{n} = {v}")).collect();
                named.join(", ")
            };
            let err = |message: String| Error::Shape(ShapeError { func: func.name.clone(), message });
            let v = match eval_dims_checked(d, dims) {
                Ok(v) => v.unwrap_or(-1),
                Err(()) => {
                    return Err(err(format!(
                        "output {k} dim `{}` overflows i64 for {}",
                        crate::expr::Show(d, func),
                        dim_list()
                    )));
                }
            };
            let v = usize::try_from(v).map_err(|_| {
                err(format!(
                    "output {k} dim `{}` is {v} for {}; it must not be negative",
                    crate::expr::Show(d, func),
                    dim_list()
                ))
            })?;
            s.push(v);
        }
        // Elements must be addressable with i64 indices (and fit in memory).
        let elems = s.iter().try_fold(1u64, |a, d| a.checked_mul(*d as u64)).filter(|n| *n <= i64::MAX as u64);
        if elems.is_none() {
            return Err(Error::Shape(ShapeError {
                func: func.name.clone(),
                message: format!("output {k} would have shape {}: more elements than fit in memory", shape_str(&s)),
            }));
        }
        out.push(s);
    }
    Ok(out)
}

/// A lowered program compiled for one target: checks every call, then runs.
pub struct Compiled {
    func: Arc<Func>,
    lowered: Arc<Lowered>,
    exe: Box<dyn Executable>,
    /// Dims (and `i64` scalars) whose per-call check passed (or failed).
    proven: Mutex<HashMap<Vec<i64>, Result<()>>>,
}

impl Compiled {
    /// Wraps an executable for a lowered program.
    pub fn new(func: Arc<Func>, lowered: Arc<Lowered>, exe: Box<dyn Executable>) -> Compiled {
        Compiled { func, lowered, exe, proven: Mutex::new(HashMap::new()) }
    }

    /// The definition.
    pub fn func(&self) -> &Func {
        &self.func
    }

    /// The lowered program.
    pub fn lowered(&self) -> &Lowered {
        &self.lowered
    }

    /// Binds dims and computes output shapes for the given inputs (each
    /// input's data must hold as many elements as its shape says).
    pub fn shapes(&self, inputs: &[Data<'_>], in_shapes: &[&[usize]]) -> Result<(Vec<i64>, Vec<Vec<usize>>)> {
        let err = |message: String| Error::Shape(ShapeError { func: self.func.name.clone(), message });
        if inputs.len() != in_shapes.len() {
            return Err(err(format!("{} tensor input(s) but {} shape(s)", inputs.len(), in_shapes.len())));
        }
        for (k, ((d, s), t)) in inputs.iter().zip(in_shapes).zip(self.func.inputs()).enumerate() {
            let want = s.iter().try_fold(1usize, |a, n| a.checked_mul(*n));
            if want != Some(d.len()) {
                let name = &self.func.tensor(t).name;
                return Err(err(format!("input {k} (`{name}`) has {} element(s) but shape {}", d.len(), shape_str(s))));
            }
        }
        let typed: Vec<(DType, &[usize])> = inputs.iter().zip(in_shapes).map(|(d, s)| (d.dtype(), *s)).collect();
        let dims = bind_dims(&self.func, &typed)?;
        let outs = output_shapes(&self.func, &dims)?;
        Ok((dims, outs))
    }

    /// The output shapes for inputs of these types and dims (what
    /// [`Compiled::shapes`] computes, without the data).
    pub fn output_shapes_for(&self, inputs: &[(DType, &[usize])]) -> Result<Vec<Vec<usize>>> {
        let dims = bind_dims(&self.func, inputs)?;
        output_shapes(&self.func, &dims)
    }

    /// Runs with inputs and preallocated outputs (shapes are checked).
    pub fn run<'b>(
        &self,
        inputs: &[Data<'b>],
        in_shapes: &[&[usize]],
        params: &[Scalar],
        outputs: &mut [DataMut<'b>],
        out_shapes: &[&[usize]],
    ) -> Result<()> {
        let err = |message: String| Error::Shape(ShapeError { func: self.func.name.clone(), message });
        let (dims, want) = self.shapes(inputs, in_shapes)?;
        if params.len() != self.func.params.len() {
            return Err(err(format!("expects {} scalar input(s), got {}", self.func.params.len(), params.len())));
        }
        for (p, decl) in params.iter().zip(&self.func.params) {
            if p.dtype() != decl.dtype {
                return Err(err(format!("`{}` must be {}, found {}", decl.name, decl.dtype, p.dtype())));
            }
        }
        if outputs.len() != want.len() || out_shapes.len() != want.len() {
            return Err(err(format!("expects {} output(s), got {}", want.len(), outputs.len())));
        }
        let types = self.func.output_types();
        for (k, ((o, s), w)) in outputs.iter().zip(out_shapes).zip(&want).enumerate() {
            let name = &self.func.stage(self.func.outputs[k]).name;
            if o.dtype() != types[k].0 {
                return Err(err(format!("output {k} (`{name}`) must be {}, found {}", types[k].0, o.dtype())));
            }
            if *s != w.as_slice() || o.len() != w.iter().product::<usize>() {
                return Err(err(format!(
                    "output {k} (`{name}`) must have shape {} but has shape {}",
                    shape_str(w),
                    shape_str(s)
                )));
            }
        }
        self.check_call(&dims, params)?;
        // Only the outputs can be observed: with no element to write,
        // there is nothing to run (a `[2^40, 0]` softmax would otherwise
        // run 2^40 empty rows).
        if want.iter().all(|s| s.contains(&0)) {
            return Ok(());
        }
        let mut call = Call { dims: &dims, params, inputs, outputs };
        // SAFETY: every argument was checked above, as `Executable::run` requires.
        unsafe { self.exe.run(&mut call) }
    }

    fn check_call(&self, dims: &[i64], params: &[Scalar]) -> Result<()> {
        if self.lowered.call_is_proven(dims, params) {
            return Ok(());
        }
        // The key: dims, then the `i64` scalar inputs (the only ones the
        // check reads).
        let mut key = dims.to_vec();
        key.extend(params.iter().filter(|p| p.dtype() == DType::INDEX).filter_map(|p| p.as_i64()));
        // A poisoned lock only means another call panicked; the cache is still valid.
        let mut cache = self.proven.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = cache.get(&key) {
            return r.clone();
        }
        let r = self.lowered.check_call(dims, params);
        if cache.len() > 1024 {
            cache.clear();
        }
        cache.insert(key, r.clone());
        r
    }
}
