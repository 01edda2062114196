//! Shape specialization of a definition: fixed dims substituted and the
//! result simplified (see [`Program::specialize`](crate::Program::specialize)).
//! Apart from [`Func`] itself, which is plain data, so that the IR
//! definition does not call the simplifier.

use crate::expr::Expr;
use crate::func::{Body, Func, TensorDecl};
use crate::simplify::simplify;

impl Func {
    /// `e` with every fixed dim replaced by its value, simplified (`e`
    /// itself when no dim is fixed).
    pub fn substitute_fixed(&self, e: &Expr) -> Expr {
        if self.fixed.iter().all(Option::is_none) {
            return e.clone();
        }
        let bound = e.rewrite(&mut |x| match x {
            Expr::Dim(d) => self.fixed_dim(*d).map(Expr::int),
            _ => None,
        });
        if bound == *e { bound } else { simplify(&bound) }
    }

    /// The definition lowering sees: every fixed dim replaced by its value
    /// in tensor shapes and stage bodies.
    pub(crate) fn with_fixed_substituted(&self) -> Func {
        let mut f = self.clone();
        self.substitute_fixed_in(&mut f.tensors, f.stages.iter_mut().map(|st| &mut st.body));
        f
    }

    /// [`Func::substitute_fixed`] on tensor shapes and bodies in place (a
    /// definition's, or a schedule's with its cache stages).
    pub(crate) fn substitute_fixed_in<'b>(
        &self,
        tensors: &mut [TensorDecl],
        bodies: impl Iterator<Item = &'b mut Body>,
    ) {
        for t in tensors {
            t.shape = t.shape.iter().map(|e| self.substitute_fixed(e)).collect();
        }
        for b in bodies {
            *b = b.map(&mut |e| self.substitute_fixed(e));
        }
    }
}
