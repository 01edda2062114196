//! The main example: a matrix product defined and scheduled with
//! `tensor_expr!`, its loop nest after scheduling, the generated OpenCL C,
//! and a run on the default target checked against a plain Rust loop.
//!
//! `cargo run --release --example matmul`

use std::time::Instant;

use texpr::prelude::*;

tensor_expr! {
    /// Dense matrix product.
    pub fn matmul(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }
    schedule for cpu {
        let (io, jo, ii, ji) = c.tile(i, j, 32, 64);
        let (ko, ki) = c.split(k, 8);
        c.reorder(io, jo, ko, ki, ii, ji);
        c.vectorize(ji);
        c.unroll(ki);
        c.parallel(io);
    }
    schedule for gpu {
        let (bi, bj, ti, tj) = c.tile(i, j, 16, 16);
        c.bind(bi, block.y); c.bind(bj, block.x);
        c.bind(ti, thread.y); c.bind(tj, thread.x);
        let (ko, ki) = c.split(k, 16);
        let a_s = c.cache_read(a, shared);
        let b_s = c.cache_read(b, shared);
        a_s.compute_at(c, ko);
        b_s.compute_at(c, ko);
    }
}

fn main() -> Result<(), Error> {
    let kernel = matmul::kernel();
    println!("== definition\n{}\n", kernel.func()?);
    println!("== loop nest for the CPU (schedule for cpu)\n{}", kernel.lower(Target::Cpu)?);
    let opencl = kernel.source(Target::OpenCl)?;
    println!(
        "== OpenCL C (schedule for gpu), first lines\n{}\n...\n",
        opencl.lines().take(24).collect::<Vec<_>>().join("\n")
    );

    // Sizes that are not multiples of the tiles: the tails are handled.
    let (m, k, n) = (517, 300, 389);
    let a = Tensor::from_fn([m, k], |i| ((i[0] * 7 + i[1] * 3) % 11) as f32 - 5.0);
    let b = Tensor::from_fn([k, n], |i| ((i[0] * 5 + i[1] * 2) % 13) as f32 * 0.25 - 1.5);

    let t = Instant::now();
    let c = matmul(&a, &b)?; // default target, compiled once and cached
    let first = t.elapsed();
    let t = Instant::now();
    let c = {
        let _ = c;
        matmul(&a, &b)?
    };
    let again = t.elapsed();

    let mut max_err = 0.0f32;
    for i in 0..m {
        for j in 0..n {
            let want: f32 = (0..k).map(|p| a.as_slice()[i * k + p] * b.as_slice()[p * n + j]).sum();
            max_err = max_err.max((c.as_slice()[i * n + j] - want).abs() / (1.0 + want.abs()));
        }
    }
    let gflops = 2.0 * (m * n * k) as f64 / again.as_secs_f64() / 1e9;
    println!("== {m}x{k} * {k}x{n} on {:?}", texpr::DEFAULT_TARGET);
    println!(
        "first call (compile + run): {:.2} ms, second call: {:.2} ms ({gflops:.1} GFLOP/s)",
        first.as_secs_f64() * 1e3,
        again.as_secs_f64() * 1e3
    );
    println!("c[0, 0..4] = {:?}", &c.as_slice()[..4]);
    println!("max relative error vs a plain Rust loop: {max_err:.2e}");
    assert!(max_err < 1e-4);
    Ok(())
}
