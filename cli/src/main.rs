//! `texpr`: run, inspect and tune ONNX models (SPEC §6).
//!
//! ```sh
//! texpr run MODEL.onnx [--target cpu|interp|opencl|cuda] [--fallback cpu] \
//!      [--input NAME=FILE.npy|FILE.pb]... [--output DIR] [--bench N] [--profile]
//! texpr inspect MODEL.onnx [--passes]
//! texpr tune MODEL.onnx --target cpu [--trials N] [--log FILE]
//! ```

mod data;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use texpr::Target;
use texpr::graph::{Model, Options, Value};

#[derive(Parser)]
#[command(name = "texpr", version, about = "Run, inspect and tune ONNX models with texpr")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Compiles and runs a model; without --input, on seeded random data.
    Run(RunArgs),
    /// Prints a model's inputs, outputs and graph (--passes: after import
    /// and after each graph pass that changed it).
    Inspect {
        /// The ONNX file.
        model: PathBuf,
        /// The graph after each graph pass too.
        #[arg(long)]
        passes: bool,
        /// The target the passes compile for (constant folding runs there).
        #[arg(long, default_value = "cpu", value_parser = target)]
        target: Target,
    },
    /// Tunes a model's kernels for a target (not yet: the search lands with
    /// the auto-tuning work, SPEC §8; this says so and exits with status 2).
    Tune {
        /// The ONNX file.
        model: PathBuf,
        /// The target to tune for.
        #[arg(long, value_parser = target)]
        target: Target,
        /// Trials per kernel.
        #[arg(long)]
        trials: Option<usize>,
        /// The tuning log to write.
        #[arg(long)]
        log: Option<PathBuf>,
    },
}

#[derive(Args)]
struct RunArgs {
    /// The ONNX file.
    model: PathBuf,
    /// Where the model runs.
    #[arg(long, default_value = "cpu", value_parser = target)]
    target: Target,
    /// Where nodes the target cannot run go.
    #[arg(long, value_parser = target)]
    fallback: Option<Target>,
    /// An input from a file: NAME=FILE.npy or NAME=FILE.pb (an ONNX
    /// TensorProto); inputs not given get seeded random data.
    #[arg(long = "input", value_name = "NAME=FILE")]
    inputs: Vec<String>,
    /// Writes each output as DIR/NAME.npy.
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Runs N more times and prints the median and p90 latency.
    #[arg(long, value_name = "N")]
    bench: Option<usize>,
    /// Prints the time of each kernel (a fused group is one).
    #[arg(long)]
    profile: bool,
    /// The seed of the random inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Turns the graph passes off (each node its own kernel).
    #[arg(long)]
    no_optimize: bool,
}

fn target(s: &str) -> Result<Target, String> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "cpu" => Target::Cpu,
        "interp" => Target::Interp,
        "opencl" => Target::OpenCl,
        "cuda" => Target::Cuda,
        _ => return Err(format!("`{s}` is not a target (cpu, interp, opencl, cuda)")),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Run(args) => run(args),
        Cmd::Inspect { model, passes, target } => inspect(model, passes, target),
        Cmd::Tune { .. } => {
            eprintln!(
                "texpr tune: not yet — the search over schedules (SPEC §8) is not built; `texpr run` uses each \
                 target's default schedules"
            );
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn run(a: RunArgs) -> Result<(), String> {
    let t = Instant::now();
    let model = Model::load_onnx(&a.model).map_err(|e| e.to_string())?;
    let load = t.elapsed();
    let mut given: HashMap<String, Value> = HashMap::new();
    for spec in &a.inputs {
        let (name, file) = spec.split_once('=').ok_or_else(|| format!("--input `{spec}` is not NAME=FILE"))?;
        if !model.inputs().iter().any(|i| i.name == name) {
            let names: Vec<String> = model.inputs().into_iter().map(|i| i.name).collect();
            return Err(format!("the model has no input `{name}` (its inputs: {})", names.join(", ")));
        }
        given.insert(name.to_string(), data::read(file.as_ref())?);
    }
    let inputs: Vec<Value> = model
        .inputs()
        .iter()
        .enumerate()
        .map(|(k, i)| given.remove(&i.name).unwrap_or_else(|| data::random(i, a.seed.wrapping_add(k as u64))))
        .collect();
    let mut options = Options::new(a.target).optimize(!a.no_optimize);
    if let Some(f) = a.fallback {
        options = options.fallback(f);
    }
    let t = Instant::now();
    let compiled = model.compile_with(options).map_err(|e| e.to_string())?;
    let compile = t.elapsed();
    let t = Instant::now();
    let outs = compiled.run(&inputs).map_err(|e| e.to_string())?;
    let first = t.elapsed();
    println!(
        "{}: loaded in {:.1} ms, compiled for {} in {:.1} ms, first run (kernels compiled) {:.1} ms",
        a.model.display(),
        ms(load),
        a.target,
        ms(compile),
        ms(first)
    );
    for (info, v) in model.outputs().iter().zip(&outs) {
        println!("output {}: {}", info.name, data::summary(v));
    }
    if let Some(m) = compiled.memory() {
        println!(
            "memory: intermediate values in a {:.2} MiB arena ({:.2} MiB without sharing), {} concatenation(s) in place",
            m.arena_bytes as f64 / (1 << 20) as f64,
            m.unshared_bytes as f64 / (1 << 20) as f64,
            m.concats_in_place
        );
    }
    if let Some(dir) = &a.output {
        std::fs::create_dir_all(dir).map_err(|e| format!("`{}`: {e}", dir.display()))?;
        for (info, v) in model.outputs().iter().zip(&outs) {
            let path = dir.join(format!("{}.npy", data::file_name(&info.name)));
            data::write_npy(&path, v)?;
            println!("wrote {}", path.display());
        }
    }
    if let Some(n) = a.bench {
        let mut times: Vec<Duration> = (0..n.max(1))
            .map(|_| {
                let t = Instant::now();
                compiled.run(&inputs).map(|_| t.elapsed()).map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "bench: {} runs, median {:.3} ms, p90 {:.3} ms, min {:.3} ms",
            times.len(),
            ms(at(0.5)),
            ms(at(0.9)),
            ms(times[0])
        );
    }
    if a.profile {
        let (_, mut times) = compiled.run_profiled(&inputs).map_err(|e| e.to_string())?;
        let total: Duration = times.iter().map(|k| k.time).sum();
        times.sort_by_key(|k| std::cmp::Reverse(k.time));
        println!("profile: {} kernels, {:.3} ms", times.len(), ms(total));
        for k in &times {
            let share = 100.0 * k.time.as_secs_f64() / total.as_secs_f64().max(1e-12);
            println!("  {:>9.3} ms {:>5.1}%  {}", ms(k.time), share, k.node);
        }
    }
    Ok(())
}

fn inspect(path: PathBuf, passes: bool, target: Target) -> Result<(), String> {
    let model = Model::load_onnx(&path).map_err(|e| e.to_string())?;
    for i in model.inputs() {
        println!("input {} {} {}", i.name, i.dtype, dims(&i.shape));
    }
    for o in model.outputs() {
        println!("output {} {} {}", o.name, o.dtype, dims(&o.shape));
    }
    if passes {
        for (name, g) in model.passes(&Options::new(target)).map_err(|e| e.to_string())? {
            println!("== {name} ==\n{g}");
        }
    } else {
        print!("{model}");
    }
    Ok(())
}

fn dims(shape: &[Option<usize>]) -> String {
    let d: Vec<String> = shape.iter().map(|d| d.map_or("?".into(), |n| n.to_string())).collect();
    format!("[{}]", d.join(", "))
}
