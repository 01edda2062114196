//! The generated API of SPEC §4 across targets, and the shape errors of
//! SPEC §5: the default call (CPU JIT), `NAME::on(Target::Cpu)` and
//! `NAME::on(Target::Interp)` with `run` and `run_into` (also into a
//! reused output), all giving the same results as plain Rust (no fused
//! multiply-add where the source has none); `kernel().lower(..)` and
//! `kernel().source(..)` for every target; GPU targets either run and agree
//! or report `Error::Unavailable`; and mismatched dims, wrong literal dims,
//! wrong ranks, wrong output shapes and negative output dims come back as
//! `Err` naming the function, the dim and the tensors, never a panic.
//! Empty and NaN/infinite inputs run.
use texpr::prelude::*;

tensor_expr! {
    /// z = a * x + y, element-wise.
    pub fn saxpy(x: f32[N], y: f32[N], a: f32) -> f32[N] {
        let z = |i| a * x[i] + y[i];
        z
    }

    /// Matrix-vector product, split with tails on the CPU.
    pub fn matvec(m: f32[R, K], v: f32[K]) -> f32[R] {
        let y = |r| sum(k in 0..K => m[r, k] * v[k]);
        y
    }
    schedule for cpu {
        let (ro, ri) = y.split(r, 4);
        y.parallel(ro);
    }

    /// A literal dim and an output dim computed from a symbolic one.
    pub fn pairs(x: i32[N, 2]) -> i32[N - 1] {
        let y = |i| x[i, 0] * x[i + 1, 1];
        y
    }
}

fn assert_error<E: std::error::Error>(_: &E) {}

fn expect_shape_error<T: std::fmt::Debug>(r: Result<T, Error>, needles: &[&str]) {
    match r {
        Err(e @ Error::Shape(_)) => {
            assert_error(&e);
            let msg = e.to_string();
            for n in needles {
                assert!(msg.contains(n), "`{msg}` does not mention {n}");
            }
        }
        other => panic!("expected a shape error mentioning {needles:?}, got {other:?}"),
    }
}

fn main() -> Result<(), texpr::Error> {
    // --- one kernel, every way to call it ----------------------------------
    let xs = vec![0.1f32, -2.5, 1e-3, 3.0, 7.25, -0.3, 1e30, 0.7];
    let ys = vec![-0.3f32, 4.0, 1.0, -9.0, 0.5, 0.09, -1e30, 0.2];
    let a = 3.0f32;
    let want: Vec<f32> = xs.iter().zip(&ys).map(|(x, y)| a * x + y).collect();
    let (x, y) = (Tensor::from_vec([8], xs.clone())?, Tensor::from_vec([8], ys.clone())?);

    // Every target rounds `a * x` and `+ y` separately, like Rust (the JIT
    // fuses only a reduction's accumulation step): `3 * 0.1 - 0.3` is 0, not
    // the -7.45e-9 of a fused multiply-add.
    let near = |what: &str, got: &[f32]| assert_eq!(got, &want[..], "{what}");
    let z = saxpy(&x, &y, a)?;
    near("default target", z.as_slice());
    assert_eq!(saxpy(&x, &y, a)?, z, "second call (cached kernel)");

    let cpu = saxpy::on(Target::Cpu)?;
    let interp = saxpy::on(Target::Interp)?;
    assert_eq!(cpu.target(), Target::Cpu);
    assert_eq!(interp.target(), Target::Interp);
    assert!(format!("{interp:?}").contains("Interp"));
    assert_eq!(cpu.run(&x, &y, a)?, z);
    assert_eq!(interp.run(&x, &y, a)?.as_slice(), &want[..], "interpreter");

    let mut out = Tensor::from_vec([8], vec![f32::NAN; 8])?;
    saxpy::run_into(&x, &y, a, &mut out)?;
    assert_eq!(out, z);
    out = Tensor::zeros([8]);
    interp.run_into(&x, &y, a, &mut out)?;
    assert_eq!(out.as_slice(), &want[..]);
    cpu.run_into(&y, &x, -1.0, &mut out)?;
    let want_rev: Vec<f32> = ys.iter().zip(&xs).map(|(y, x)| -y + x).collect();
    assert_eq!(out.as_slice(), &want_rev[..], "run_into overwrites a reused output");

    // IEEE-754 special values go through without trouble.
    let special = Tensor::from_vec([4], vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX])?;
    let ones = Tensor::from_vec([4], vec![1.0f32; 4])?;
    for h in [&cpu, &interp] {
        let s = h.run(&special, &ones, 2.0)?;
        let s = s.as_slice();
        assert!(s[0].is_nan() && s[1] == f32::INFINITY && s[2] == f32::NEG_INFINITY && s[3] == f32::INFINITY, "{s:?}");
        assert_eq!(h.run(&special, &special, 0.0)?.as_slice()[1..3].iter().filter(|v| v.is_nan()).count(), 2);
    }

    // Empty inputs give empty outputs.
    let e = saxpy(&Tensor::zeros([0]), &Tensor::zeros([0]), 1.0)?;
    assert_eq!((e.shape(), e.len()), (&[0][..], 0));

    // --- inspection -------------------------------------------------------
    let k: texpr::Kernel = saxpy::kernel();
    assert_eq!(k.func()?.name, "saxpy");
    for t in [Target::Cpu, Target::Interp, Target::OpenCl, Target::Cuda] {
        let lowered = k.lower(t)?;
        assert!(!lowered.to_string().is_empty(), "lower({t:?})");
        let src = k.source(t)?;
        assert!(!src.trim().is_empty(), "source({t:?})");
    }
    assert_eq!(k.source(Target::Interp)?, k.lower(Target::Interp)?.to_string());
    assert!(matvec::kernel().lower(Target::Cpu)?.to_string().contains("parallel for ro"), "{}", matvec::kernel().lower(Target::Cpu)?);

    // --- GPU targets: run and agree, or say what is missing -----------------
    for t in [Target::OpenCl, Target::Cuda] {
        match saxpy::on(t) {
            Ok(h) => {
                near(&format!("{t:?}"), h.run(&x, &y, a)?.as_slice());
            }
            Err(Error::Unavailable { target, what }) => {
                assert_eq!(target, t);
                assert!(!what.is_empty());
            }
            Err(other) => panic!("{t:?}: expected a run or Error::Unavailable, got {other}"),
        }
    }

    // --- matvec on both CPU targets ----------------------------------------
    for (r, kk) in [(9, 5), (1, 1), (4, 0), (0, 3), (13, 17)] {
        let m = Tensor::from_fn([r, kk], |i| ((i[0] * 5 + i[1] * 3) % 7) as f32 - 3.0);
        let v = Tensor::from_fn([kk], |i| (i[0] % 4) as f32 * 0.25);
        let want: Vec<f32> = (0..r).map(|i| (0..kk).map(|j| m.as_slice()[i * kk + j] * v.as_slice()[j]).sum()).collect();
        assert_eq!(matvec(&m, &v)?.as_slice(), &want[..], "matvec {r}x{kk} default");
        assert_eq!(matvec::on(Target::Interp)?.run(&m, &v)?.as_slice(), &want[..], "matvec {r}x{kk} interp");
    }

    // --- shape errors -------------------------------------------------------
    let m34 = Tensor::<f32>::zeros([3, 4]);
    let v5 = Tensor::<f32>::zeros([5]);
    expect_shape_error(matvec(&m34, &v5), &["matvec", "K", "`m`", "`v`", "4", "5"]);
    expect_shape_error(matvec::on(Target::Interp)?.run(&m34, &v5), &["matvec", "K", "`m`", "`v`"]);
    let mut y3 = Tensor::zeros([3]);
    expect_shape_error(matvec::run_into(&m34, &v5, &mut y3), &["matvec", "K"]);
    // Right inputs, wrong output.
    let v4 = Tensor::<f32>::zeros([4]);
    let mut y2 = Tensor::zeros([2]);
    expect_shape_error(matvec::run_into(&m34, &v4, &mut y2), &["matvec", "output"]);
    matvec::run_into(&m34, &v4, &mut y3)?;
    // Wrong rank.
    expect_shape_error(matvec(&Tensor::zeros([12]), &v4), &["matvec", "`m`"]);
    // Mismatched N between two inputs.
    expect_shape_error(saxpy(&Tensor::zeros([3]), &Tensor::zeros([4]), 1.0), &["saxpy", "N", "`x`", "`y`"]);

    // Literal dims are checked too; an output dim that would be negative is
    // an error, one that is zero is not.
    let p = Tensor::from_vec([3, 2], vec![1, 2, 3, 4, 5, 6])?;
    assert_eq!(pairs(&p)?.as_slice(), &[4, 18]);
    assert_eq!(pairs::on(Target::Interp)?.run(&p)?.as_slice(), &[4, 18]);
    expect_shape_error(pairs(&Tensor::zeros([3, 3])), &["pairs", "`x`", "2"]);
    expect_shape_error(pairs(&Tensor::zeros([0, 2])), &["pairs"]);
    expect_shape_error(pairs::on(Target::Interp)?.run(&Tensor::zeros([0, 2])), &["pairs"]);
    assert_eq!(pairs(&Tensor::zeros([1, 2]))?.shape(), &[0]);
    Ok(())
}
