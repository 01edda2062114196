//! Times an `f32` matrix product on the CUDA GPU under several schedules.
//!
//! ```text
//! cargo run --release -p texpr-backends --example cuda_matmul -- [N] [schedule...]
//! TEXPR_DUMP=time ...   # adds each kernel's own time (CUDA events)
//! ```
//!
//! Schedules: `spec` (SPEC §3: 16×16 threads, 16-wide `k` steps through
//! shared memory, one output per thread) and `reg<r>` / `reg<r>k<s>` (16×16
//! threads each computing an `r`×`r` tile in registers, `a` and `b` staged
//! through shared memory `s` (default 16) columns of `k` at a time;
//! `texpr_dsl::testing::spec::matmul_gpu_registers`). Each call copies the inputs to the device
//! and the result back, as every texpr call does; `TEXPR_DUMP=time` prints
//! the kernel alone. Entries of the result are checked against an `f64`
//! dot product (relative error ≤ 1e-4 for `k` up to 8192).

use std::sync::Arc;
use std::time::Instant;

use texpr_dsl::testing::spec;
use texpr_dsl::{Compiled, Element, Target};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4096);
    let mut names: Vec<String> = args.collect();
    if names.is_empty() {
        names = ["spec", "reg2", "reg4", "reg8"].map(String::from).to_vec();
    }
    let func = spec::matmul();
    let (m, k) = (n, n);
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 + 3) % 23) as f32 / 23.0 - 0.5).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 + 1) % 19) as f32 / 19.0 - 0.5).collect();
    let flop = 2.0 * (m * n * k) as f64;
    println!("matmul {m}x{k}x{n} f32 on {}", texpr_backends::cuda::device()?.arch);
    for name in &names {
        let sched = match name.as_str() {
            "spec" => spec::matmul_gpu(&func)?,
            // `reg<r>` or `reg<r>k<k_step>`.
            reg if reg.starts_with("reg") => {
                let (r, k) = reg[3..].split_once('k').unwrap_or((&reg[3..], "16"));
                spec::matmul_gpu_registers(&func, r.parse()?, k.parse()?)?
            }
            other => {
                return Err(format!("unknown schedule `{other}` (spec, reg<r>, reg<r>k<k_step>)").into());
            }
        };
        let t = Instant::now();
        let lowered = texpr_dsl::lower(&sched, Target::Cuda)?;
        let exe = texpr_backends::compile(Target::Cuda, &lowered)?;
        let compile = t.elapsed();
        if std::env::var_os("TEXPR_PRINT_SOURCE").is_some() {
            println!("{}", texpr_backends::source(Target::Cuda, &lowered)?);
        }
        let compiled = Compiled::new(Arc::new(func.clone()), Arc::new(lowered), exe);
        let mut c = vec![0f32; m * n];
        let mut times = vec![];
        for _ in 0..6 {
            let t = Instant::now();
            let mut out = [f32::data_mut(&mut c)];
            compiled.run(&[f32::data(&a), f32::data(&b)], &[&[m, k], &[k, n]], &[], &mut out, &[&[m, n]])?;
            times.push(t.elapsed().as_secs_f64());
        }
        // The first call loads the module and warms the allocator.
        let best = times[1..].iter().copied().fold(f64::INFINITY, f64::min);
        let mut worst = 0f64;
        for s in 0..257 {
            let (i, j) = ((s * 7919) % m, (s * 104_729 + 13) % n);
            let want: f64 = (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64).sum();
            let scale: f64 = (0..k).map(|p| (a[i * k + p] as f64 * b[p * n + j] as f64).abs()).sum::<f64>().max(1e-30);
            worst = worst.max((c[i * n + j] as f64 - want).abs() / scale);
        }
        if worst > 1e-4 {
            return Err(format!("{name}: wrong result (relative error {worst:e})").into());
        }
        println!(
            "{name:>5}: compile {:.1} ms, call (copies included) best {:.3} ms = {:.2} TFLOP/s, max rel err {worst:.1e}",
            compile.as_secs_f64() * 1e3,
            best * 1e3,
            flop / best / 1e12
        );
    }
    Ok(())
}
