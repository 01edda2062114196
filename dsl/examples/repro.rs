//! Reproduces a differential-test case from its seed: prints the generated
//! definition, schedule, lowered nest, pass timings and the run's result.
//!
//! `cargo run -p texpr-dsl --features testing --example repro -- SEED [gpu]`
use texpr_dsl::testing::{Case, GenConfig, interp};
use texpr_dsl::{Target, TargetClass};
fn main() {
    let seed: u64 = std::env::args().nth(1).and_then(|v| v.parse().ok()).unwrap();
    let gpu = std::env::args().nth(2).is_some();
    let class = if gpu { TargetClass::Gpu } else { TargetClass::Cpu };
    let case = Case::generate(seed, &GenConfig::new(class));
    println!("{}", case.describe());
    let l = case.lower(if gpu { Target::OpenCl } else { Target::Interp }).unwrap();
    println!("{}", l);
    println!("unproven: {:?}", l.unproven);
    for (p, t, c) in &l.passes {
        println!("{p}: {:?} {c}", t);
    }
    println!("{:?}", case.run(&l, &interp).map(|_| ()));
}
