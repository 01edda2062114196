//! Every schedule primitive, with and without `let`, in `schedule`,
//! `schedule for cpu` and `schedule for gpu` blocks.
use texpr::prelude::*;

tensor_expr! {
    fn matmul(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }
    schedule {
        c.split(k, 4);
    }
    schedule for cpu {
        let cc = c.cache_write(local);
        let (io, jo, ii, ji) = cc.tile(i, j, 4, 8);
        let (ko, ki) = cc.split(k, 3);
        cc.reorder(io, jo, ko, ii, ki, ji);
        cc.vectorize(ji);
        cc.unroll(ki);
        let f = c.fuse(i, j);
        c.parallel(f);
        cc.compute_at(c, f);
    }
    schedule for gpu {
        let (bi, bj, ti, tj) = c.tile(i, j, 8, 8);
        c.bind(bi, block.y);
        c.bind(bj, block.x);
        c.bind(ti, thread.y);
        c.bind(tj, thread.x);
        let (ko, ki) = c.split(k, 8);
        let a_s = c.cache_read(a, shared);
        let b_l = c.cache_read(b, local);
        a_s.compute_at(c, ko);
        b_l.compute_at(c, ko);
    }

    fn pipeline(x: f32[N, C]) -> f32[N, C] {
        let sq: f32[N, C] = |n, c| x[n, c] * x[n, c];
        let mx: f32[N] = |n| max(c in 0..C => sq[n, c]);
        let y = |n, c| sq[n, c] - mx[n];
        y
    }
    schedule for cpu {
        sq.compute_inline();
        mx.compute_root();
        let (co, ci) = y.split(c, 2);
        y.tile(n, co, 2, 2);
    }
    schedule for gpu {
        sq.compute_inline();
        let f = y.fuse(n, c);
        let (bo, ti) = y.split(f, 16);
        y.bind(bo, block.x);
        y.bind(ti, thread.x);
        mx.bind(n, thread.x);
        mx.compute_at(y, bo);
    }
}

fn main() -> Result<(), texpr::Error> {
    let a = Tensor::from_fn([7, 5], |i| (i[0] + i[1]) as f32);
    let b = Tensor::from_fn([5, 9], |i| (i[0] * i[1]) as f32 - 3.0);
    let c = matmul::on(Target::Interp)?.run(&a, &b)?;
    for i in 0..7 {
        for j in 0..9 {
            let want: f32 = (0..5).map(|k| a.as_slice()[i * 5 + k] * b.as_slice()[k * 9 + j]).sum();
            assert_eq!(c.as_slice()[i * 9 + j], want);
        }
    }
    let k = matmul::kernel();
    k.lower(Target::Cpu)?;
    k.lower(Target::OpenCl)?;
    k.lower(Target::Cuda)?;

    let x = Tensor::from_fn([3, 5], |i| i[1] as f32 - i[0] as f32);
    let y = pipeline::on(Target::Interp)?.run(&x)?;
    for n in 0..3 {
        let row: Vec<f32> = (0..5).map(|c| x.as_slice()[n * 5 + c].powi(2)).collect();
        let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for c in 0..5 {
            assert_eq!(y.as_slice()[n * 5 + c], row[c] - mx);
        }
    }
    pipeline::kernel().lower(Target::OpenCl)?;
    Ok(())
}
