//! Unit tests of the lowering passes on small definitions.

use super::*;
use crate::testing::spec::matmul;
use crate::{Target, TargetClass};

#[test]
fn unscheduled_matmul() {
    let s = Schedule::new(&matmul(), Some(TargetClass::Cpu));
    let l = lower(&s, Target::Interp).unwrap();
    let text = l.to_string();
    assert!(text.contains("for i in 0..M {"), "{text}");
    assert!(text.contains("c[i, j] = 0.0;"), "{text}");
    assert!(text.contains("c[i, j] = c[i, j] + a[i, k] * b[k, j];"), "{text}");
    assert!(l.unproven.is_empty(), "{:?}", l.unproven);
}

#[test]
fn tiled_matmul_has_guard_free_body() {
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
    let l = lower(&s, Target::Interp).unwrap();
    let text = l.to_string();
    assert!(text.contains("parallel for io in 0..(M + 31) / 32 {"), "{text}");
    assert!(text.contains("for ii in 0..min(M - io * 32, 32) {"), "{text}");
    assert!(!text.contains("if io"), "{text}");
    assert!(l.unproven.is_empty(), "{:?}\n{text}", l.unproven);
}

#[test]
fn error_names_the_loops() {
    let func = matmul();
    let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
    let c = s.stage("c").unwrap();
    let k = s.axis(c, "k").unwrap();
    s.split_named(k, 8, "ko", "ki").unwrap();
    let e = s.axis(c, "kx").unwrap_err().to_string();
    assert_eq!(e, "matmul: schedule: `kx` is not a loop of `c`; its loops are i, j, ko, ki");
}

use crate::DType;
use crate::expr::{Expr, VarTable};
use crate::stmt::{BufKind, Buffer, ForKind, LoweredFunc, Scope, Stmt};

/// `fn f(x: f32[N]) -> y: f32[N]` with a body to fill in.
fn tiny(body: impl FnOnce(&mut VarTable) -> Stmt) -> LoweredFunc {
    let mut vars = VarTable::default();
    let body = body(&mut vars);
    LoweredFunc {
        name: "f".into(),
        target: Target::Interp,
        dims: vec!["N".into()],
        params: vec![],
        buffers: vec![
            Buffer {
                name: "x".into(),
                dtype: DType::F32,
                shape: vec![Expr::Dim(0)],
                kind: BufKind::Input(0),
                scope: Scope::Global,
            },
            Buffer {
                name: "y".into(),
                dtype: DType::F32,
                shape: vec![Expr::Dim(0)],
                kind: BufKind::Output(0),
                scope: Scope::Global,
            },
        ],
        vars,
        body,
        flat: false,
    }
}

fn copy_loop(vars: &mut VarTable, extent: Expr, kind: ForKind) -> Stmt {
    let i = vars.add_index("i");
    let load = Expr::load(crate::BufId(0), [Expr::Var(i)], DType::F32);
    Stmt::for_(i, Expr::int(0), extent, kind, Stmt::store(crate::BufId(1), [Expr::Var(i)], load))
}

#[test]
fn partition_splits_a_clamped_vector_loop() {
    let mut f = tiny(|v| copy_loop(v, Expr::min(Expr::Dim(0), Expr::int(8)), ForKind::Vectorized));
    passes::partition_tails(&mut f, false);
    let text = f.body.display(&f).to_string();
    assert_eq!(
        text,
        "if N >= 8 {\n    vectorized for i in 0..8 {\n        y[i] = x[i];\n    }\n} else {\n    for i in 0..N {\n        y[i] = x[i];\n    }\n}\n"
    );
    // A symbolic extent with no constant bound runs serially.
    let mut f = tiny(|v| copy_loop(v, Expr::Dim(0), ForKind::Unrolled));
    passes::partition_tails(&mut f, false);
    assert!(matches!(&f.body, Stmt::For(l) if l.kind == ForKind::Serial));
}

#[test]
fn flatten_is_row_major() {
    let func = matmul();
    let l = lower(&Schedule::new(&func, Some(TargetClass::Cpu)), Target::Interp).unwrap();
    let text = l.flat.to_string();
    assert!(text.contains("c[j + i * N] = c[j + i * N] + a[k + i * K] * b[j + k * N];"), "{text}");
    assert!(l.flat.flat && !l.nest.flat);
}

#[test]
fn verify_catches_broken_ir() {
    // A variable used outside its loop.
    let f = tiny(|v| {
        let i = v.add_index("i");
        Stmt::store(crate::BufId(1), [Expr::Var(i)], Expr::load(crate::BufId(0), [Expr::int(0)], DType::F32))
    });
    let e = verify::verify(&f, "test", false).unwrap_err().to_string();
    assert!(e.contains("variable `i` used out of scope"), "{e}");
    // A store of the wrong type.
    let f = tiny(|v| {
        let i = v.add_index("i");
        Stmt::for_(
            i,
            Expr::int(0),
            Expr::Dim(0),
            ForKind::Serial,
            Stmt::store(crate::BufId(1), [Expr::Var(i)], Expr::int(1)),
        )
    });
    let e = verify::verify(&f, "test", false).unwrap_err();
    assert!(matches!(e, crate::Error::Internal(_)), "{e:?}");
    assert!(e.to_string().contains("store of `i64` into `y` of `f32`"), "{e}");
    // Vectorized loops need constant extents after partitioning.
    let f = tiny(|v| copy_loop(v, Expr::Dim(0), ForKind::Vectorized));
    assert!(verify::verify(&f, "test", false).is_ok());
    assert!(verify::verify(&f, "test", true).is_err());
}

#[test]
fn safety_finds_unproven_accesses() {
    // y[i] = x[i + 1] for i in 0..N: the load can reach N.
    let f = tiny(|v| {
        let i = v.add_index("i");
        let load = Expr::load(crate::BufId(0), [Expr::Var(i) + 1], DType::F32);
        Stmt::for_(i, Expr::int(0), Expr::Dim(0), ForKind::Serial, Stmt::store(crate::BufId(1), [Expr::Var(i)], load))
    });
    let u = prove_bounds::prove(&f);
    assert_eq!(u.len(), 1);
    assert_eq!((u[0].buffer.as_str(), u[0].index.as_str(), u[0].store), ("x", "i + 1", false));
    // for i in 0..N - 1: proven.
    let f = tiny(|v| {
        let i = v.add_index("i");
        let load = Expr::load(crate::BufId(0), [Expr::Var(i) + 1], DType::F32);
        Stmt::for_(
            i,
            Expr::int(0),
            Expr::Dim(0) - 1,
            ForKind::Serial,
            Stmt::store(crate::BufId(1), [Expr::Var(i)], load),
        )
    });
    assert!(prove_bounds::prove(&f).is_empty());
}

#[test]
fn compute_at_regions_are_affine() {
    let func = crate::testing::spec::softmax();
    let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
    let (y, e) = (s.stage("y").unwrap(), s.stage("e").unwrap());
    let c = s.axis(y, "c").unwrap();
    let (co, _) = s.split_named(c, 4, "co", "ci").unwrap();
    let err = s.compute_at(e, co).unwrap_err().to_string();
    assert_eq!(
        err,
        "softmax: schedule: `e` is computed at a loop of `y` but is also read by `s`; every reader must run inside that loop (in `y` itself or in a stage computed inside it); compute it at the root or inline it"
    );
    let sum = s.stage("s").unwrap();
    let n = s.axis(y, "n").unwrap();
    s.compute_at(sum, n).unwrap();
    let l = lower(&s, Target::Interp).unwrap();
    let text = l.to_string();
    // `s` holds one element per row, indexed without offsets.
    assert!(text.contains("alloc global s: f32[1]"), "{text}");
    assert!(text.contains("/ s[0]"), "{text}");
    assert!(l.unproven.is_empty());
}

#[test]
fn single_pass_softmax_schedule() {
    // `e` inlined, then `mx` and `s` computed per row inside `y`: `mx` is read
    // by `s` and `y` through the inlined `e`, both inside `y`'s row loop.
    let func = crate::testing::spec::softmax();
    let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
    let (y, e, mx, sum) = (s.stage("y").unwrap(), s.stage("e").unwrap(), s.stage("mx").unwrap(), s.stage("s").unwrap());
    let n = s.axis(y, "n").unwrap();
    s.compute_inline(e).unwrap();
    s.compute_at(sum, n).unwrap();
    s.compute_at(mx, n).unwrap();
    let l = lower(&s, Target::Interp).unwrap();
    let text = l.to_string();
    assert!(text.contains("alloc global mx: f32[1]"), "{text}");
    assert!(l.unproven.is_empty());
}

#[test]
fn softmax_row_buffer_schedule() {
    // `exp` once per element: `e` computed per row into a row buffer that `s`
    // (also per row) and `y` read.
    let func = crate::testing::spec::softmax();
    let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
    let (y, e, mx, sum) = (s.stage("y").unwrap(), s.stage("e").unwrap(), s.stage("mx").unwrap(), s.stage("s").unwrap());
    let n = s.axis(y, "n").unwrap();
    s.compute_at(sum, n).unwrap();
    s.compute_at(e, n).unwrap();
    s.compute_at(mx, n).unwrap();
    let l = lower(&s, Target::Interp).unwrap();
    let text = l.to_string();
    assert_eq!(text.matches("exp(").count(), 1, "{text}");
    assert!(text.contains("alloc global e: f32[1, max(C, 0)]"), "{text}");
    assert!(l.unproven.is_empty());
}

#[test]
fn cache_read_of_a_reduction_inside_an_expression_names_its_hidden_stage() {
    use crate::te::{self, FuncBuilder};
    let mut f = FuncBuilder::new("dense");
    let x = f.input("x", DType::F32, ["N", "C"]);
    let w = f.input("w", DType::F32, ["C", "M"]);
    let bias = f.input("bias", DType::F32, ["M"]);
    f.output(DType::F32, ["N", "M"]);
    let h = f.compute("h", ["n", "m"], |[n, m]| {
        te::sum([("c", 0, "C")], |[c]| x.at([&n, &c]) * w.at([&c, &m])) + bias.at([&m])
    });
    f.ret([h]);
    let func = f.build().unwrap();
    let mut s = Schedule::new(&func, Some(TargetClass::Cpu));
    let h = s.stage("h").unwrap();
    let e = s.cache_read(h, "w", crate::Scope::Local).unwrap_err().to_string();
    assert!(
        e.starts_with("dense: schedule: `h` does not read `w`; `w` is read by a reduction inside `h`'s expression, which is computed by stage `h_r0`"),
        "{e}"
    );
    // That stage is scheduled by its name like any other.
    let r = s.stage("h_r0").unwrap();
    let hn = s.axis(h, "n").unwrap();
    s.compute_at(r, hn).unwrap();
    s.cache_read(r, "w", crate::Scope::Local).unwrap();
    let l = lower(&s, Target::Cpu).unwrap();
    assert!(l.to_string().contains("h_r0"), "{l}");
}

#[test]
fn pending_proof_gives_what_lower_gives() {
    // `x[2 * i]`, `i in 0..N`, `x: f32[M]`: one access left to prove per call.
    let mut f = crate::te::FuncBuilder::new("stride2");
    let x = f.input("x", DType::F32, ["M"]);
    let _n = f.input("n", DType::F32, ["N"]);
    f.output(DType::F32, ["N"]);
    let y = f.compute("y", ["i"], |[i]| x.at([i * 2]));
    f.ret([y]);
    let func = f.build().unwrap();
    let s = Schedule::new(&func, Some(TargetClass::Cpu));
    let whole = lower(&s, Target::Cpu).unwrap();
    assert_eq!(whole.unproven.len(), 1);
    let pending = lower_pending(&s, Target::Cpu).unwrap();
    assert!(pending.lowered().unproven.is_empty());
    assert_eq!((&pending.lowered().nest, &pending.lowered().flat), (&whole.nest, &whole.flat));
    let proof = pending.prove();
    let done = pending.finish(proof);
    assert_eq!(format!("{:?}", done.unproven), format!("{:?}", whole.unproven));
    assert!(done.check_dims(&[4, 3]).is_err() && done.check_dims(&[5, 3]).is_ok());
}

/// A lowering whose caller gave up (the macro's checker after its timeout)
/// stops with an error instead of running on.
#[test]
fn cancelled_lowering_stops() {
    let s = Schedule::new(&matmul(), Some(TargetClass::Cpu));
    let r = std::thread::spawn(move || {
        let c = crate::cancel::Cancel::new();
        c.install();
        assert!(lower(&s, Target::Interp).is_ok());
        c.cancel();
        lower(&s, Target::Interp)
    })
    .join()
    .unwrap();
    let e = r.unwrap_err();
    assert!(matches!(e, crate::Error::Internal(_)) && e.to_string().contains("cancelled"), "{e}");
    // Other threads are not affected.
    assert!(lower(&Schedule::new(&matmul(), Some(TargetClass::Cpu)), Target::Interp).is_ok());
}

fn parallel_loops(s: &crate::Stmt) -> usize {
    let mut n = 0;
    s.visit(&mut |x| {
        if let crate::Stmt::For(l) = x
            && l.kind == crate::ForKind::Parallel
        {
            n += 1;
        }
    });
    n
}

/// SPEC §2's conv3x3 under the CPU default: unswitching the first border
/// row's `H >= 1` and the main chunks' `W / 8 >= 1` makes four copies of
/// the parallel nest; pruning drops the one where both are false (no loop
/// of it can run) and empties the other `H < 1` copy.
#[test]
fn unswitched_branches_lose_their_dead_loops() {
    let l = crate::Program::new(crate::testing::spec::conv3x3()).lower(Target::Cpu).unwrap();
    assert_eq!(parallel_loops(&l.flat.body), 3, "{}", l.flat);
    // The interpreter's nest is not optimized.
    let i = crate::Program::new(crate::testing::spec::conv3x3()).lower(Target::Interp).unwrap();
    assert_eq!(parallel_loops(&i.flat.body), 1, "{}", i.flat);
}
