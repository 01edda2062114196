//! Every generated CUDA kernel compiles with NVRTC to a CUBIN for sm_80
//! and sm_90 (no GPU needed); `ptxas -v` reports registers and shared
//! memory when it is available (`$TEXPR_PTXAS`).

use std::io::Write as _;

use texpr_dsl::{Lowered, Target};

use crate::common::*;

/// Compiles the CUDA source of `l` for sm_80 and sm_90; logs ptxas' report.
pub fn check_cuda(name: &str, l: &Lowered) {
    let src = texpr_backends::source(Target::Cuda, l).unwrap();
    for arch in ["sm_80", "sm_90"] {
        let c =
            texpr_backends::cuda::nvrtc_compile(&src, name, arch).unwrap_or_else(|e| panic!("{name} ({arch}): {e}"));
        assert!(!c.image.is_empty());
    }
    if let Ok(ptxas) = std::env::var("TEXPR_PTXAS") {
        let ptx = texpr_backends::cuda::nvrtc_compile(&src, name, "compute_90").unwrap();
        let dir = std::env::temp_dir().join(format!("texpr-ptxas-{}-{name}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join(format!("{name}.ptx"));
        let text: Vec<u8> = ptx.image.iter().copied().take_while(|b| *b != 0).collect();
        if std::fs::write(&file, text).is_ok()
            && let Ok(out) = std::process::Command::new(&ptxas)
                .arg("-v")
                .arg("--gpu-name=sm_90")
                .arg(&file)
                .arg("-o")
                .arg(dir.join("out.cubin"))
                .output()
        {
            let report = String::from_utf8_lossy(&out.stderr);
            // Straight to stderr (not `eprintln!`, which the test harness
            // captures): the report shows in the test output.
            let mut err = std::io::stderr().lock();
            for line in report.lines().filter(|l| l.contains("Used") || l.contains("Compiling entry")) {
                let _ = writeln!(err, "ptxas {name}: {}", line.trim_start_matches("ptxas info    : "));
            }
            assert!(out.status.success(), "ptxas failed on {name}: {report}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn golden_kernels_compile_for_sm80_and_sm90() {
    if !nvrtc() {
        return;
    }
    for (name, _, sched) in crate::golden::cases() {
        check_cuda(name, &lower(&sched, Target::Cuda));
    }
}
