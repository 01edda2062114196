//! Launch sizes: the grid and block of each kernel and the size of scratch
//! memory, from the dims of a call.
//!
//! Every mapped loop is written so that any launch size is correct
//! (grid-stride loops, or a block of exactly the constant it needs), so a
//! size only has to be a good guess: the upper bound of a loop's extent
//! over the ranges of the loops around it, by interval arithmetic.

use std::collections::HashMap;

use texpr_dsl::expr::{BinOp, UnOp};
use texpr_dsl::{Expr, VarId};

use crate::kir::{Bound, Ctx, GpuKernel, Launch};

/// Device limits the launch sizes respect.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Threads per block along each axis.
    pub block: [u64; 3],
    /// Threads per block.
    pub threads: u64,
    /// Blocks along each axis.
    pub grid: [u64; 3],
}

/// Threads per block a strided kernel starts from.
const STRIDED_THREADS: u64 = 256;

/// The grid and block of one launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Blocks along x, y, z.
    pub grid: [u64; 3],
    /// Threads per block along x, y, z.
    pub block: [u64; 3],
}

impl Dims {
    /// Threads in the whole grid.
    pub fn threads(&self) -> u64 {
        self.grid.iter().chain(&self.block).fold(1u64, |a, b| a.saturating_mul(*b))
    }
}

/// The launch of `k` for `dims`, or why it cannot run on a device with
/// `limits`.
pub fn dims_of(k: &GpuKernel, dims: &[i64], limits: &Limits) -> Result<Dims, String> {
    let mut grid = [1u64; 3];
    let mut block = [1u64; 3];
    let mut fixed = true;
    for a in 0..3 {
        grid[a] = fit(&k.grid[a], dims).clamp(1, limits.grid[a].max(1));
        match &k.block[a] {
            Launch::Fixed(n) => {
                let n = (*n).max(1) as u64;
                if n > limits.block[a] {
                    return Err(format!(
                        "kernel `{}` needs {n} threads along {} per block; the device allows {}",
                        k.name,
                        ["x", "y", "z"][a],
                        limits.block[a]
                    ));
                }
                block[a] = n;
            }
            l => {
                fixed = false;
                block[a] = fit(l, dims).clamp(1, limits.block[a].max(1));
            }
        }
    }
    let total = block.iter().product::<u64>();
    if fixed {
        if total > limits.threads {
            return Err(format!(
                "kernel `{}` needs {total} threads per block; the device allows {}",
                k.name, limits.threads
            ));
        }
    } else {
        let budget = STRIDED_THREADS.min(limits.threads).max(1);
        while block.iter().product::<u64>() > budget {
            let (i, _) = block.iter().enumerate().max_by_key(|(_, b)| **b).unwrap_or((0, &1));
            block[i] = block[i].div_ceil(2);
        }
    }
    Ok(Dims { grid, block })
}

/// The launch size a [`Launch::Fit`] asks for (0 when unknown).
fn fit(l: &Launch, dims: &[i64]) -> u64 {
    match l {
        Launch::Fixed(n) => (*n).max(0) as u64,
        Launch::Fit(bounds) => bounds.iter().filter_map(|b| upper(b, dims)).max().unwrap_or(1).max(0) as u64,
    }
}

/// The largest value of `b` (divided by `b.per`, rounded up) over the
/// ranges of the loops around it; `None` when it cannot be bounded.
pub fn upper(b: &Bound, dims: &[i64]) -> Option<i64> {
    let mut env: HashMap<VarId, (i128, i128)> = HashMap::new();
    for c in &b.chain {
        match c {
            Ctx::Loop(v, min, extent) => {
                let (lo, hi) = interval(min, dims, &env)?;
                let (_, ehi) = interval(extent, dims, &env)?;
                if ehi <= 0 {
                    // The loop never runs: nor does what is inside.
                    return Some(0);
                }
                env.insert(*v, (lo, hi.checked_add(ehi - 1)?));
            }
            Ctx::Let(v, e) => {
                if let Some(r) = interval(e, dims, &env) {
                    env.insert(*v, r);
                }
            }
        }
    }
    let (_, hi) = interval(&b.value, dims, &env)?;
    let per = b.per.max(1) as i128;
    let n = if hi <= 0 { 0 } else { (hi + per - 1) / per };
    i64::try_from(n).ok()
}

/// The interval of an integer expression; `None` if unbounded or not
/// integer arithmetic.
pub fn interval(e: &Expr, dims: &[i64], env: &HashMap<VarId, (i128, i128)>) -> Option<(i128, i128)> {
    Some(match e {
        Expr::Const(s) => {
            let v = s.as_i64()? as i128;
            (v, v)
        }
        Expr::Dim(d) => {
            let v = *dims.get(*d as usize)? as i128;
            (v, v)
        }
        Expr::Var(v) => *env.get(&v.id)?,
        Expr::Unary(UnOp::Neg, a) => {
            let (lo, hi) = interval(a, dims, env)?;
            (-hi, -lo)
        }
        Expr::Binary(op, a, b) => {
            let (al, ah) = interval(a, dims, env)?;
            let (bl, bh) = interval(b, dims, env)?;
            match op {
                BinOp::Add => (al.checked_add(bl)?, ah.checked_add(bh)?),
                BinOp::Sub => (al.checked_sub(bh)?, ah.checked_sub(bl)?),
                BinOp::Mul => {
                    let c = [al.checked_mul(bl)?, al.checked_mul(bh)?, ah.checked_mul(bl)?, ah.checked_mul(bh)?];
                    (*c.iter().min()?, *c.iter().max()?)
                }
                BinOp::Div if bl > 0 => {
                    let c = [al.div_euclid(bl), al.div_euclid(bh), ah.div_euclid(bl), ah.div_euclid(bh)];
                    (*c.iter().min()?, *c.iter().max()?)
                }
                BinOp::Rem if bl > 0 => {
                    if al >= 0 && ah < bl {
                        (al, ah)
                    } else {
                        (0, bh - 1)
                    }
                }
                BinOp::Min => (al.min(bl), ah.min(bh)),
                BinOp::Max => (al.max(bl), ah.max(bh)),
                _ => return None,
            }
        }
        Expr::If(_, a, b) | Expr::Select(_, a, b) => {
            let (al, ah) = interval(a, dims, env)?;
            let (bl, bh) = interval(b, dims, env)?;
            (al.min(bl), ah.max(bh))
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use texpr_dsl::expr::VarTable;

    #[test]
    fn bounds_through_loops() {
        let mut vars = VarTable::default();
        let bi = vars.add_index("bi");
        // for bi in 0..(M + 15) / 16 { min(M - bi * 16, 16) }
        let ext = (Expr::Dim(0) + 15) / 16;
        let value = Expr::min(Expr::Dim(0) - Expr::var(bi) * 16, Expr::int(16));
        let b = Bound { chain: vec![Ctx::Loop(bi.id, Expr::int(0), ext)], value, per: 1 };
        assert_eq!(upper(&b, &[40]), Some(16));
        assert_eq!(upper(&b, &[5]), Some(5));
        assert_eq!(upper(&b, &[0]), Some(0));
        let g = Bound { chain: vec![], value: Expr::Dim(0), per: 64 };
        assert_eq!(upper(&g, &[130]), Some(3));
    }
}
