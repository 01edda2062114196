//! `Kernel`: a definition with its schedules, compiled per target on first
//! use and cached.

use std::sync::{Arc, OnceLock};

use texpr_dsl::call::Compiled;
use texpr_dsl::{Data, DataMut, Element, Error, Func, Lowered, Program, Result, Scalar, Target, Tensor};

/// A compiled-on-demand operator: definition, schedules, and per-target code.
///
/// Cloning is cheap (shared). `Send + Sync`: a kernel may be called from
/// many threads at once.
#[derive(Clone)]
pub struct Kernel(Arc<Inner>);

struct Inner {
    program: Result<Program>,
    compiled: [OnceLock<Result<Arc<Compiled>>>; 4],
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0.program {
            Ok(p) => write!(f, "Kernel({})", p.func().name),
            Err(e) => write!(f, "Kernel(<invalid: {e}>)"),
        }
    }
}

/// A tensor argument, type-erased.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    data: Data<'a>,
    shape: &'a [usize],
}

impl<'a, T: Element> From<&'a Tensor<T>> for Input<'a> {
    fn from(t: &'a Tensor<T>) -> Input<'a> {
        Input { data: t.data(), shape: t.shape() }
    }
}

/// An output tensor, type-erased.
#[derive(Debug)]
pub struct Output<'a> {
    data: DataMut<'a>,
    shape: Vec<usize>,
}

impl<'a, T: Element> From<&'a mut Tensor<T>> for Output<'a> {
    fn from(t: &'a mut Tensor<T>) -> Output<'a> {
        let shape = t.shape().to_vec();
        Output { data: t.data_mut(), shape }
    }
}

impl Kernel {
    /// A kernel from a program (definition and schedules).
    pub fn new(program: Program) -> Kernel {
        Kernel(Arc::new(Inner { program: Ok(program), compiled: Default::default() }))
    }

    /// A kernel from a definition, with default schedules.
    pub fn from_func(func: Func) -> Kernel {
        Kernel::new(Program::new(func))
    }

    /// A kernel whose construction failed: every use returns the error.
    /// (Generated code uses it so that `kernel()` never panics.)
    pub fn failed(err: Error) -> Kernel {
        Kernel(Arc::new(Inner { program: Err(err), compiled: Default::default() }))
    }

    /// A new kernel: the same definition and schedules with some dims fixed
    /// to values (`[("M", 1024), ("N", 1024)]`), compiled on its own. Its
    /// loop nest has those dims as literals (tails and guards the values
    /// decide are gone, bounds are proven for the values); calls must
    /// bind them to the values. See [`Program::specialize`] for the errors.
    ///
    /// ```
    /// use texpr::prelude::*;
    /// use texpr::te::FuncBuilder;
    /// let mut f = FuncBuilder::new("scale");
    /// let x = f.input("x", DType::F32, ["N"]);
    /// f.output(DType::F32, ["N"]);
    /// let y = f.compute("y", ["i"], |[i]| x.at([i]) * 2.0);
    /// f.ret([y]);
    /// let k = Kernel::from_func(f.build()?).specialize(&[("N", 4)])?;
    /// assert!(!k.lower(Target::Cpu)?.to_string().contains('N'));
    /// # Ok::<(), texpr::Error>(())
    /// ```
    pub fn specialize(&self, dims: &[(&str, usize)]) -> Result<Kernel> {
        Ok(Kernel::new(self.program()?.specialize(dims)?))
    }

    /// [`Kernel::specialize`] with every dim fixed to its value in these
    /// inputs (tensor inputs in order, as a call takes them): the kernel
    /// compiled for exactly these shapes. The inputs are checked as a call
    /// checks them (same errors).
    pub fn specialize_for(&self, inputs: &[Input<'_>]) -> Result<Kernel> {
        let func = self.func()?;
        let typed: Vec<(texpr_dsl::DType, &[usize])> = inputs.iter().map(|i| (i.data.dtype(), i.shape)).collect();
        let values = texpr_dsl::call::bind_dims(func, &typed)?;
        let dims: Vec<(&str, usize)> =
            func.dims.iter().zip(values).map(|(n, v)| (n.as_str(), v.max(0) as usize)).collect();
        self.specialize(&dims)
    }

    /// The program: definition and schedules.
    pub fn program(&self) -> Result<&Program> {
        self.0.program.as_ref().map_err(Clone::clone)
    }

    /// The definition.
    pub fn func(&self) -> Result<&Func> {
        Ok(self.program()?.func())
    }

    /// The loop nest after scheduling for `target` (its `Display` reads like
    /// a program).
    pub fn lower(&self, target: Target) -> Result<Lowered> {
        self.program()?.lower(target)
    }

    /// The code generated for `target`: the loop nest for the interpreter,
    /// and the backends' output for the others.
    pub fn source(&self, target: Target) -> Result<String> {
        let lowered = self.lower(target)?;
        texpr_dsl::deep::with_stack(self.func()?.depth(), || crate::backend::source(target, &lowered))
    }

    /// Compiles for `target` (once; later calls return the cached result).
    pub fn compile(&self, target: Target) -> Result<Arc<Compiled>> {
        self.0.compiled[target.index()]
            .get_or_init(|| {
                let program = self.program()?;
                // The bounds proof (needed only by calls) runs on a thread
                // of its own while the backend compiles on this one (as
                // before: a GPU context stays with the calling thread); if
                // no thread can be started, it runs here afterwards.
                let pending = program.lower_pending(target)?;
                // A deep definition (a sum of thousands of terms) needs deep
                // stacks for the proof and the CPU code generator (GPU code
                // is compiled on this thread: its context stays here).
                let depth = program.func().depth();
                let deep = depth > texpr_dsl::deep::SHALLOW;
                let (exe, proof) = std::thread::scope(|s| {
                    let mut b = std::thread::Builder::new().name("texpr-proof".into());
                    if deep {
                        b = b.stack_size(texpr_dsl::deep::STACK);
                    }
                    let proof = b.spawn_scoped(s, || pending.prove());
                    let exe = if target.class() == texpr_dsl::TargetClass::Cpu {
                        texpr_dsl::deep::with_stack(depth, || crate::backend::compile(target, pending.lowered()))
                    } else {
                        crate::backend::compile(target, pending.lowered())
                    };
                    let proof = match proof {
                        Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                        Err(_) => pending.prove(),
                    };
                    (exe, proof)
                });
                let lowered = Arc::new(pending.finish(proof));
                Ok(Arc::new(Compiled::new(Arc::new(program.func().clone()), lowered, exe?)))
            })
            .clone()
    }

    /// Runs with erased arguments into preallocated outputs.
    pub fn run_into(
        &self,
        target: Target,
        inputs: &[Input<'_>],
        params: &[Scalar],
        outputs: &mut [Output<'_>],
    ) -> Result<()> {
        let c = self.compile(target)?;
        let data: Vec<Data<'_>> = inputs.iter().map(|i| i.data).collect();
        let shapes: Vec<&[usize]> = inputs.iter().map(|i| i.shape).collect();
        let out_shapes: Vec<Vec<usize>> = outputs.iter().map(|o| o.shape.clone()).collect();
        let out_refs: Vec<&[usize]> = out_shapes.iter().map(|s| s.as_slice()).collect();
        let mut outs: Vec<DataMut<'_>> = outputs.iter_mut().map(|o| reborrow(&mut o.data)).collect();
        c.run(&data, &shapes, params, &mut outs, &out_refs)
    }

    /// Runs a single-output kernel, allocating the output.
    pub fn run1<O: Element>(&self, target: Target, inputs: &[Input<'_>], params: &[Scalar]) -> Result<Tensor<O>> {
        let c = self.compile(target)?;
        let data: Vec<Data<'_>> = inputs.iter().map(|i| i.data).collect();
        let shapes: Vec<&[usize]> = inputs.iter().map(|i| i.shape).collect();
        let (_, outs) = c.shapes(&data, &shapes)?;
        if outs.len() != 1 {
            return Err(Error::Shape(texpr_dsl::ShapeError {
                func: c.func().name.clone(),
                message: format!("run1 needs a single-output kernel; this one has {} outputs", outs.len()),
            }));
        }
        let mut out = Tensor::<O>::try_zeros(&outs[0])?;
        self.run_into(target, inputs, params, &mut [(&mut out).into()])?;
        Ok(out)
    }
}

fn reborrow<'a>(d: &'a mut DataMut<'_>) -> DataMut<'a> {
    macro_rules! re {
        ($($v:ident),*) => {
            match d { $(DataMut::$v(s) => DataMut::$v(&mut s[..]),)* }
        };
    }
    re!(Bool, I8, I16, I32, I64, U8, U16, U32, U64, F16, BF16, F32, F64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Kernel>();
    }
}
