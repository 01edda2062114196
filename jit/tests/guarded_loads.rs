//! Loads under a condition stay under it. An input's loads are
//! `readonly + can_move` for Cranelift, which may then hoist them above a
//! branch; a load that is in bounds only where its guard holds (a window
//! reaching past the first channel, the full-vector arm of a tail split)
//! must not be (it read 1 MB before the buffer and crashed an ONNX model's
//! LRN). The input here sits between inaccessible pages, so a single read
//! outside it faults instead of passing unseen.

use texpr_dsl::te::{self, Expr, FuncBuilder};
use texpr_dsl::{Call, DType, Data, DataMut, Executable, Program, Schedule, Target, TargetClass};

/// `len` f32s with inaccessible memory (`pad` bytes) on both sides.
struct Fenced {
    base: *mut libc::c_void,
    total: usize,
    pad: usize,
    len: usize,
}

impl Fenced {
    fn new(len: usize, pad: usize) -> Fenced {
        let page = 4096;
        let body = (len * 4).div_ceil(page) * page;
        let total = pad + body + pad;
        // SAFETY: a fresh anonymous mapping; the guards are made
        // inaccessible, the body stays read-write.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(base, libc::MAP_FAILED);
            assert_eq!(libc::mprotect(base, pad, libc::PROT_NONE), 0);
            assert_eq!(libc::mprotect(base.cast::<u8>().add(pad + body).cast(), pad, libc::PROT_NONE), 0);
            Fenced { base, total, pad, len }
        }
    }

    fn slice(&mut self) -> &mut [f32] {
        // SAFETY: the body is `len` f32s of read-write memory, page aligned.
        unsafe { std::slice::from_raw_parts_mut(self.base.cast::<u8>().add(self.pad).cast::<f32>(), self.len) }
    }
}

impl Drop for Fenced {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`.
        unsafe { libc::munmap(self.base, self.total) };
    }
}

/// ONNX's LRN over `[1, C, H, W]`: `y = x / (1 + a · Σ_k (if 0 <= c+k-2 <
/// C { x[n, c+k-2, h, w]² } else { 0 }))^0.75`, the CPU default schedule
/// (the sum a row stage, the channels partitioned at the guard).
#[test]
fn guarded_loads_are_not_hoisted() {
    let (c, h, w) = (96usize, 109usize, 109usize);
    let mut b = FuncBuilder::new("lrn");
    let x = b.input("x", DType::F32, [1, c, h, w]);
    b.output(DType::F32, [1, c, h, w]);
    let y = b.compute("y", ["n", "i", "j", "k"], |[n, i, j, k]| {
        let s = te::sum([("r", 0, 5)], |[r]| {
            let ch = i.clone() + r - 2;
            te::if_(
                ch.clone().ge(0).and(ch.clone().lt(Expr::int(c as i128))),
                x.at([&n, &ch, &j, &k]) * x.at([&n, &ch, &j, &k]),
                0.0,
            )
        });
        x.at([&n, &i, &j, &k]) / te::pow(1.0 + 2e-5 * s, 0.75)
    });
    b.ret([y]);
    let func = b.build().unwrap();
    let s = Schedule::default_for(&func, TargetClass::Cpu);
    let l = Program::new(func).with_schedule(s).lower(Target::Cpu).unwrap();
    let kernel = texpr_jit::compile(&l).unwrap();
    let n = c * h * w;
    let mut xs = Fenced::new(n, 4 << 20);
    for (i, v) in xs.slice().iter_mut().enumerate() {
        *v = (i % 7) as f32 * 0.5;
    }
    let mut out = vec![0.0f32; n];
    {
        let inputs = [Data::F32(xs.slice())];
        let mut outputs = [DataMut::F32(&mut out)];
        // SAFETY: one input and one output of c·h·w elements, the shapes
        // the definition fixes.
        unsafe { kernel.run(&mut Call { dims: &[], params: &[], inputs: &inputs, outputs: &mut outputs }).unwrap() };
    }
    let x = xs.slice();
    for i in 0..c {
        for p in [0, h * w / 2, h * w - 1] {
            let s: f32 = (0..5)
                .filter_map(|r| (i + r).checked_sub(2).filter(|ch| *ch < c))
                .map(|ch| x[ch * h * w + p] * x[ch * h * w + p])
                .sum();
            let want = x[i * h * w + p] / (1.0 + 2e-5 * s).powf(0.75);
            let got = out[i * h * w + p];
            assert!((got - want).abs() <= 1e-6 * want.abs(), "channel {i}, position {p}: {got} vs {want}");
        }
    }
}
