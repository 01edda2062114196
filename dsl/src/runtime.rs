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
    fn run(&self, call: &mut Call<'_, '_>) -> Result<()>;
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
        lower(&self.schedule_for(target), target)
    }

    /// [`Program::lower`] with the bounds proof left to run beside
    /// compilation ([`ProofPending`]).
    pub fn lower_pending(&self, target: Target) -> Result<ProofPending> {
        lower_pending(&self.schedule_for(target), target)
    }

    /// The loop nest with no schedule at all: the reference the property
    /// tests compare every schedule against.
    pub fn lower_unscheduled(&self) -> Result<Lowered> {
        lower(&Schedule::new(&self.func, Some(TargetClass::Cpu)), Target::Interp)
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

/// Evaluates an `i64` expression of dims.
pub fn eval_dims(e: &Expr, dims: &[i64]) -> Option<i64> {
    // The common shapes of a declared extent, without rebuilding it.
    match e {
        Expr::Dim(d) => return dims.get(*d as usize).copied(),
        Expr::Const(_) => return e.as_int(),
        _ => {}
    }
    let bound = e.rewrite(&mut |x| match x {
        Expr::Dim(d) => dims.get(*d as usize).map(|v| Expr::int(*v)),
        _ => None,
    });
    crate::simplify::simplify(&bound).as_int()
}

/// The output shapes of `func` for bound dims.
pub fn output_shapes(func: &Func, dims: &[i64]) -> Result<Vec<Vec<usize>>> {
    let mut out = vec![];
    for (k, (_, shape)) in func.output_types().iter().enumerate() {
        let mut s = vec![];
        for d in shape {
            let v = eval_dims(d, dims).unwrap_or(-1);
            let v = usize::try_from(v).map_err(|_| {
                let dim_list: Vec<String> = func.dims.iter().zip(dims).map(|(n, v)| format!("{n} = {v}")).collect();
                Error::Shape(ShapeError {
                    func: func.name.clone(),
                    message: format!(
                        "output {k} dim `{}` is {v} for {}; it must not be negative",
                        crate::expr::Show(d, func),
                        dim_list.join(", ")
                    ),
                })
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
    /// Dims whose per-shape bounds proof passed (or failed).
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

    /// Binds dims and computes output shapes for the given inputs.
    pub fn shapes(&self, inputs: &[Data<'_>], in_shapes: &[&[usize]]) -> Result<(Vec<i64>, Vec<Vec<usize>>)> {
        let typed: Vec<(DType, &[usize])> = inputs.iter().zip(in_shapes).map(|(d, s)| (d.dtype(), *s)).collect();
        let dims = bind_dims(&self.func, &typed)?;
        let outs = output_shapes(&self.func, &dims)?;
        Ok((dims, outs))
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
        self.check_bounds(&dims)?;
        let mut call = Call { dims: &dims, params, inputs, outputs };
        self.exe.run(&mut call)
    }

    fn check_bounds(&self, dims: &[i64]) -> Result<()> {
        if self.lowered.unproven.is_empty() {
            return Ok(());
        }
        // A poisoned lock only means another call panicked; the cache is still valid.
        let mut cache = self.proven.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = cache.get(dims) {
            return r.clone();
        }
        let r = self.lowered.check_dims(dims);
        if cache.len() > 1024 {
            cache.clear();
        }
        cache.insert(dims.to_vec(), r.clone());
        r
    }
}
