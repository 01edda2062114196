//! Golden snapshots of lowered loop nests, one per definition × schedule.
//!
//! A change to lowering that changes a nest fails here with a diff. When the
//! change is intended, bless the new nests and review the diff in git:
//!
//! ```text
//! INSTA_UPDATE=always cargo test -p texpr-dsl --test snapshots
//! ```
//!
//! (Under `CI=true` insta never writes snapshots; a mismatch fails.)

use texpr_dsl::te::{self, FuncBuilder};
use texpr_dsl::testing::spec::{conv3x3, matmul, softmax};
use texpr_dsl::{DType, Func, Schedule, Scope, Target, TargetClass, ThreadAxis, lower, lower_traced};

fn conv1d() -> Func {
    let mut f = FuncBuilder::new("conv1d");
    let x = f.input("x", DType::F32, ["N"]);
    let w = f.input("w", DType::F32, [3]);
    f.output(DType::F32, ["N"]);
    let y = f.compute("y", ["i"], |[i]| {
        te::sum([("r", 0, 3)], |[r]| {
            let ir = &i + &r;
            te::if_(ir.clone().ge(1).and(ir.clone().le("N")), x.at([&ir - 1]) * w.at([&r]), 0.0)
        })
    });
    f.ret([y]);
    f.build().unwrap()
}

fn lowered(s: &Schedule, target: Target) -> String {
    lower(s, target).unwrap().to_string()
}

#[test]
fn matmul_unscheduled() {
    let s = Schedule::new(&matmul(), Some(TargetClass::Cpu));
    insta::assert_snapshot!(lowered(&s, Target::Interp));
}

#[test]
fn matmul_spec_cpu_schedule() {
    let func = matmul();
    let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
    let c = s.stage("c").unwrap();
    let (i, j, k) = (s.axis(c, "i").unwrap(), s.axis(c, "j").unwrap(), s.axis(c, "k").unwrap());
    let [io, jo, ii, ji] = s.tile_named(i, j, 32, 64, ["io", "jo", "ii", "ji"]).unwrap();
    let (ko, ki) = s.split_named(k, 8, "ko", "ki").unwrap();
    s.reorder(&[io, jo, ko, ki, ii, ji]).unwrap();
    s.vectorize(ji).unwrap();
    s.unroll(ki).unwrap();
    s.parallel(io).unwrap();
    insta::assert_snapshot!(lowered(&s, Target::Cpu));
}

#[test]
fn matmul_spec_gpu_schedule() {
    let func = matmul();
    let mut s = Schedule::new(&func, Some(TargetClass::Gpu));
    let c = s.stage("c").unwrap();
    let (i, j, k) = (s.axis(c, "i").unwrap(), s.axis(c, "j").unwrap(), s.axis(c, "k").unwrap());
    let [bi, bj, ti, tj] = s.tile_named(i, j, 16, 16, ["bi", "bj", "ti", "tj"]).unwrap();
    s.bind(bi, ThreadAxis::BlockY).unwrap();
    s.bind(bj, ThreadAxis::BlockX).unwrap();
    s.bind(ti, ThreadAxis::ThreadY).unwrap();
    s.bind(tj, ThreadAxis::ThreadX).unwrap();
    let (ko, _) = s.split_named(k, 16, "ko", "ki").unwrap();
    let a_s = s.cache_read_named(c, "a", Scope::Shared, "a_s").unwrap();
    let b_s = s.cache_read_named(c, "b", Scope::Shared, "b_s").unwrap();
    s.compute_at(a_s, ko).unwrap();
    s.compute_at(b_s, ko).unwrap();
    insta::assert_snapshot!(lowered(&s, Target::OpenCl));
}

/// TVM's CPU GEMM recipe: accumulators in a local tile computed at the
/// output tile, reduction split and reordered inside it.
#[test]
fn matmul_cache_write_register_tile() {
    let func = matmul();
    let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
    let c = s.stage("c").unwrap();
    let cc = s.cache_write_named(c, Scope::Local, "cc").unwrap();
    let (i, j) = (s.axis(c, "i").unwrap(), s.axis(c, "j").unwrap());
    let [io, jo, _ii, ji] = s.tile_named(i, j, 4, 8, ["io", "jo", "ii", "ji"]).unwrap();
    s.parallel(io).unwrap();
    s.vectorize(ji).unwrap();
    s.compute_at(cc, jo).unwrap();
    let (ci, cj, ck) = (s.axis(cc, "i").unwrap(), s.axis(cc, "j").unwrap(), s.axis(cc, "k").unwrap());
    let (ko, ki) = s.split_named(ck, 4, "ko", "ki").unwrap();
    s.reorder(&[ko, ci, ki, cj]).unwrap();
    s.unroll(ki).unwrap();
    s.vectorize(cj).unwrap();
    let _ = ko;
    insta::assert_snapshot!(lowered(&s, Target::Cpu));
}

/// BLIS-style packing: the accumulator tile `cc` is computed per `io`, and
/// B's panel `bp` — read by `cc` — is packed once per `jo` (a loop of `c`,
/// which `cc` is computed inside) and reused by every `io`.
#[test]
fn matmul_packed_panel_at_an_outer_loop() {
    let func = matmul();
    let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
    let c = s.stage("c").unwrap();
    let cc = s.cache_write_named(c, Scope::Local, "cc").unwrap();
    let (i, j) = (s.axis(c, "i").unwrap(), s.axis(c, "j").unwrap());
    let [io, jo, ii, ji] = s.tile_named(i, j, 6, 16, ["io", "jo", "ii", "ji"]).unwrap();
    s.reorder(&[jo, io, ii, ji]).unwrap();
    s.parallel(io).unwrap();
    s.compute_at(cc, io).unwrap();
    let (ci, cj, ck) = (s.axis(cc, "i").unwrap(), s.axis(cc, "j").unwrap(), s.axis(cc, "k").unwrap());
    s.reorder(&[ck, ci, cj]).unwrap();
    s.unroll(ci).unwrap();
    s.vectorize(cj).unwrap();
    let bp = s.cache_read_named(cc, "b", Scope::Local, "bp").unwrap();
    s.compute_at(bp, jo).unwrap();
    let l = lower(&s, Target::Cpu).unwrap();
    assert!(l.unproven.is_empty(), "{:?}", l.unproven);
    insta::assert_snapshot!(l.to_string());
}

#[test]
fn softmax_inline_and_compute_at() {
    let func = softmax();
    let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
    let (y, e, sum) = (s.stage("y").unwrap(), s.stage("e").unwrap(), s.stage("s").unwrap());
    let n = s.axis(y, "n").unwrap();
    s.parallel(n).unwrap();
    s.compute_inline(e).unwrap();
    s.compute_at(sum, n).unwrap();
    insta::assert_snapshot!(lowered(&s, Target::Cpu));
}

#[test]
fn softmax_default_gpu_schedule() {
    let s = Schedule::default_for(&softmax(), TargetClass::Gpu);
    insta::assert_snapshot!(lowered(&s, Target::OpenCl));
}

/// A padded window read through a local copy of each tile plus its halo:
/// the copy's region is affine (`io * 8 - 1` ..), guarded by the tensor's
/// domain instead of clipped.
#[test]
fn conv1d_cache_read_halo() {
    let func = conv1d();
    let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
    let y = s.stage("y").unwrap();
    let i = s.axis(y, "i").unwrap();
    let (io, _ii) = s.split_named(i, 8, "io", "ii").unwrap();
    let xl = s.cache_read_named(y, "x", Scope::Local, "x_l").unwrap();
    s.compute_at(xl, io).unwrap();
    insta::assert_snapshot!(lowered(&s, Target::Cpu));
}

#[test]
fn fused_then_split_tail() {
    let mut f = FuncBuilder::new("scale");
    let x = f.input("x", DType::I32, ["N", "M"]);
    f.output(DType::I32, ["N", "M"]);
    let y = f.compute("y", ["i", "j"], |[i, j]| x.at([&i, &j]) * 3 / 2);
    f.ret([y]);
    let func = f.build().unwrap();
    let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
    let ys = s.stage("y").unwrap();
    let (i, j) = (s.axis(ys, "i").unwrap(), s.axis(ys, "j").unwrap());
    let ij = s.fuse_named(i, j, "ij").unwrap();
    let (o, v) = s.split_named(ij, 4, "o", "v").unwrap();
    s.parallel(o).unwrap();
    s.vectorize(v).unwrap();
    insta::assert_snapshot!(lowered(&s, Target::Cpu));
}

#[test]
fn nested_reduction_and_two_outputs() {
    let mut f = FuncBuilder::new("stats");
    let x = f.input("x", DType::F64, ["N", "C"]);
    f.output(DType::F64, ["N"]);
    f.output(DType::F64, ["N"]);
    let mean = f.compute("mean", ["n"], |[n]| {
        te::sum([("c", 0, "C")], |[c]| x.at([&n, &c])) / te::Expr::name("C").cast(DType::F64)
    });
    let peak =
        f.compute("peak", ["n"], |[n]| te::max_over([("c", 0, "C")], |[c]| te::abs(x.at([&n, &c]) - mean.at([&n]))));
    f.ret([mean, peak]);
    let s = Schedule::new(&f.build().unwrap(), Some(TargetClass::Cpu));
    insta::assert_snapshot!(lowered(&s, Target::Interp));
}

#[test]
fn pass_trace() {
    let func = conv1d();
    let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
    let y = s.stage("y").unwrap();
    let i = s.axis(y, "i").unwrap();
    let (_, ii) = s.split_named(i, 4, "io", "ii").unwrap();
    s.vectorize(ii).unwrap();
    let (_, trace) = lower_traced(&s, Target::Cpu).unwrap();
    // Timings vary; the structure does not.
    let shape: Vec<String> = trace
        .lines()
        .filter(|l| l.starts_with("// ----"))
        .map(|l| l.split(" (").next().unwrap_or(l).to_string())
        .collect();
    insta::assert_snapshot!(shape.join("\n"));
    assert!(trace.contains("ms)"), "{trace}");
}

/// The CPU default computes softmax's row-wise stages in the output's row
/// loop (`mx`, `e`, `s` at `y.n`): one pass per row through a row buffer
/// instead of four passes over `N×C`.
#[test]
fn softmax_default_cpu_schedule() {
    let s = Schedule::default_for(&softmax(), TargetClass::Cpu);
    insta::assert_snapshot!(format!("{s}\n{}", lowered(&s, Target::Cpu)));
}

/// What the CPU default's row fusion leaves at the root: a stage read at
/// another row (`t[j, i]`), at a fixed row (`b[0]`: every row of `y` would
/// recompute it), or also by a second output (`q`). Only `r`, read at each
/// row of `y` by `y` alone, moves into the row loop.
#[test]
fn default_row_fusion_takes_only_row_wise_stages() {
    let mut f = FuncBuilder::new("rows");
    let x = f.input("x", DType::F32, ["N", "N"]);
    f.output(DType::F32, ["N", "N"]);
    f.output(DType::F32, ["N"]);
    let t = f.compute_typed("t", DType::F32, ["N", "N"], ["i", "j"], |[i, j]| x.at([&i, &j]) * 2.0);
    let b = f.compute_typed("b", DType::F32, ["N"], ["i"], |[i]| te::sum([("j", 0, "N")], |[j]| x.at([&i, &j])));
    let r = f.compute_typed("r", DType::F32, ["N"], ["i"], |[i]| te::sum([("j", 0, "N")], |[j]| x.at([&j, &i])));
    let q = f.compute_typed("q", DType::F32, ["N", "N"], ["i", "j"], |[i, j]| x.at([&i, &j]) - 1.0);
    let y =
        f.compute("y", ["i", "j"], |[i, j]| t.at([&j, &i]) + b.at([te::Expr::from(0)]) + r.at([&i]) + q.at([&i, &j]));
    let z = f.compute("z", ["i"], |[i]| q.at([i, te::Expr::from(0)]));
    f.ret([y, z]);
    let func = f.build().unwrap();
    let s = Schedule::default_for(&func, TargetClass::Cpu);
    insta::assert_snapshot!(s.to_string());
}

/// The CPU default for SPEC's convolution: `n, f` fused and parallel, the
/// channel reduction outside the width loop, the 3×3 window unrolled
/// between the width's vector loop and its outer loop (the output vector
/// accumulates the window in a register).
#[test]
fn conv3x3_default_cpu_schedule() {
    let s = Schedule::default_for(&conv3x3(), TargetClass::Cpu);
    insta::assert_snapshot!(s.to_string());
}

/// Row fusion stays off where it would change behaviour: an access not
/// proven in bounds (`p[i, j]` with `p: [M, C]` read over `N` rows: at the
/// root it fails the run-time bounds check, in a row buffer it would read
/// zeros), and a stage of more dims than the output's row (a convolution
/// feeding a global pool would lose its parallel `n, c` loop).
#[test]
fn default_row_fusion_keeps_bounds_checks_and_parallelism() {
    let mut f = FuncBuilder::new("oob");
    let x = f.input("x", DType::F32, ["M", "C"]);
    let z = f.input("z", DType::F32, ["N"]);
    f.output(DType::F32, ["N", "C"]);
    let p = f.compute_typed("p", DType::F32, ["M", "C"], ["i", "j"], |[i, j]| x.at([&i, &j]) * 2.0);
    let o = f.compute("o", ["i", "j"], |[i, j]| p.at([&i, &j]) + z.at([&i]));
    f.ret([o]);
    let s = Schedule::default_for(&f.build().unwrap(), TargetClass::Cpu);
    assert!(!s.to_string().contains(" (at "), "{s}");

    let mut f = FuncBuilder::new("pool");
    let x = f.input("x", DType::F32, ["N", "C", "H", "W"]);
    f.output(DType::F32, ["N", "C"]);
    let y = f.compute_typed("y", DType::F32, ["N", "C", "H", "W"], ["n", "c", "h", "w"], |[n, c, h, w]| {
        x.at([&n, &c, &h, &w]) * 2.0
    });
    let o =
        f.compute("o", ["n", "c"], |[n, c]| te::sum([("h", 0, "H"), ("w", 0, "W")], |[h, w]| y.at([&n, &c, &h, &w])));
    f.ret([o]);
    let s = Schedule::default_for(&f.build().unwrap(), TargetClass::Cpu);
    assert!(!s.to_string().contains(" (at "), "{s}");
}
