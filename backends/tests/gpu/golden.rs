//! Golden OpenCL C and CUDA C for the SPEC definitions and a few semantic
//! corner cases. Bless with `INSTA_UPDATE=always`.

use texpr_dsl::{Func, Schedule, Target};

use crate::common::*;

/// Every golden case: name, definition, schedule.
pub fn cases() -> Vec<(&'static str, Func, Schedule)> {
    let mut out = vec![];
    let f = axpb_relu();
    out.push(("elementwise", f.clone(), default_gpu(&f)));
    let f = matmul();
    out.push(("matmul", f.clone(), matmul_gpu(&f)));
    let f = softmax();
    out.push(("softmax", f.clone(), default_gpu(&f)));
    let f = conv3x3();
    out.push(("conv3x3", f.clone(), default_gpu(&f)));
    let f = rowsum();
    out.push(("reduction", f.clone(), default_gpu(&f)));
    let f = intdiv();
    out.push(("intdiv", f.clone(), default_gpu(&f)));
    let f = half();
    out.push(("f16", f.clone(), default_gpu(&f)));
    out
}

#[test]
fn golden_sources() {
    for (name, _, sched) in cases() {
        for target in [Target::OpenCl, Target::Cuda] {
            let l = lower(&sched, target);
            let src = texpr_backends::source(target, &l).unwrap();
            let ext = if target == Target::Cuda { "cu" } else { "cl" };
            insta::assert_snapshot!(format!("{name}.{ext}"), src);
        }
    }
}

#[test]
fn matmul_shows_tiles_and_barriers() {
    let f = matmul();
    let l = lower(&matmul_gpu(&f), Target::OpenCl);
    let cl = texpr_backends::source(Target::OpenCl, &l).unwrap();
    assert!(cl.contains("__local float a_s[256];"), "{cl}");
    assert!(cl.contains("__local float b_s[256];"), "{cl}");
    assert_eq!(cl.matches("barrier(CLK_LOCAL_MEM_FENCE);").count(), 2, "{cl}");
    let cu = texpr_backends::source(Target::Cuda, &l).unwrap();
    assert!(cu.contains("__shared__ float a_s[256];"), "{cu}");
    assert_eq!(cu.matches("__syncthreads();").count(), 2, "{cu}");
}
