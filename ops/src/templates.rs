//! Schedule templates: how the CPU runs the operators whose class default
//! would be naive. An operator's definition names its template
//! ([`KernelDef::template`](crate::KernelDef)); the graph level keeps it
//! when it composes the operator with the element-wise nodes after it
//! (renaming its stages), and [`schedule`] applies it to whatever
//! definition results — the output stage is then the last element-wise
//! node's, and the anchor's reduction is computed per tile of it.

use texpr_dsl::{AxisRef, Func, Result, Schedule, StageRef, TargetClass};

/// The register tile of [`Template::Conv`]: filters × columns (columns
/// alone for [`Template::Depthwise`]). The definitions round their
/// reduction stage up to whole tiles.
pub(crate) const CONV_TILE: (usize, usize) = (6, 8);

/// A schedule template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Template {
    /// A 2-D convolution (dense or grouped): `acc[n, f, h, w]` (index
    /// variables `i0..i3`, reductions `c`, `w0`, `w1`), read by the output
    /// at its own index. The output in register tiles of 6 channels × 8
    /// columns (`i1`, `i3`), rows (`n`, `h` fused) in parallel; `acc`
    /// computed per tile, window loops outermost and channels innermost
    /// (the matrix-product micro-kernel: per input channel 2 vector loads,
    /// 6 weight broadcasts, 12 fused multiply-adds). The padded input
    /// `pad`, if any, at the root: channels in parallel, rows vectorized.
    Conv {
        /// The reduction stage.
        acc: String,
        /// The zero-padded input stage.
        pad: Option<String>,
        /// Tiles of filters outermost (in parallel), rows inside: when the
        /// weights are larger than the input, each tile's weights then stay
        /// in cache over every row instead of streaming from memory once
        /// per row (rows outermost otherwise).
        filters_outer: bool,
    },
    /// A depthwise 2-D convolution (one filter per channel): `acc[n, c, h,
    /// w]` over the window (`w0`, `w1`). Planes (`n`, `c` fused) in
    /// parallel, the padded plane computed per plane, each row in 8-column
    /// vectors with the window unrolled.
    Depthwise {
        /// The reduction stage.
        acc: String,
        /// The zero-padded input stage.
        pad: Option<String>,
    },
}

impl Template {
    /// The template with every stage name mapped by `f` (fusion prefixes
    /// a member's stages).
    pub fn renamed(&self, f: impl Fn(&str) -> String) -> Template {
        match self {
            Template::Conv { acc, pad, filters_outer } => {
                Template::Conv { acc: f(acc), pad: pad.as_deref().map(&f), filters_outer: *filters_outer }
            }
            Template::Depthwise { acc, pad } => Template::Depthwise { acc: f(acc), pad: pad.as_deref().map(&f) },
        }
    }
}

/// The schedule `template` gives `func` (whose output stage is `out`) on a
/// target class; `None` where it does not apply (the class default then
/// runs): GPU targets, or a definition of another shape.
pub fn schedule(template: &Template, func: &Func, out: &str, class: TargetClass) -> Option<Schedule> {
    if class != TargetClass::Cpu {
        return None;
    }
    let mut s = Schedule::new(func, Some(class));
    let r = match template {
        Template::Conv { acc, pad, filters_outer } => conv(&mut s, out, acc, pad.as_deref(), *filters_outer),
        Template::Depthwise { acc, pad } => depthwise(&mut s, out, acc, pad.as_deref()),
    };
    match r {
        Ok(()) => Some(s),
        Err(e) => {
            // The target's default runs instead; `TEXPR_DUMP=templates`
            // says why.
            if texpr_dsl::dump_enabled("templates") {
                eprintln!("template {template:?} does not apply to `{}`: {e}", func.name);
            }
            None
        }
    }
}

fn conv(s: &mut Schedule, out: &str, acc: &str, pad: Option<&str>, filters_outer: bool) -> Result<()> {
    let (z, a) = (s.stage(out)?, s.stage(acc)?);
    let [n, f, h, w] = axes(s, z, ["i0", "i1", "i2", "i3"])?;
    let [fo, wo, fi, wi] = s.tile(f, w, CONV_TILE.0 as i64, CONV_TILE.1 as i64)?;
    if filters_outer {
        s.reorder(&[n, fo, h, wo, fi, wi])?;
        let tiles = s.fuse(n, fo)?;
        s.parallel(tiles)?;
    } else {
        s.reorder(&[n, h, fo, wo, fi, wi])?;
        let rows = s.fuse(n, h)?;
        s.parallel(rows)?;
    }
    s.unroll(fi)?;
    s.vectorize(wi)?;
    s.compute_at(a, wo)?;
    let [c, r0, r1, af, aw] = axes(s, a, ["c", "w0", "w1", "i1", "i3"])?;
    s.reorder(&[r0, r1, c, af, aw])?;
    s.unroll(af)?;
    s.vectorize(aw)?;
    if let Some(p) = pad {
        let p = s.stage(p)?;
        if s.loops(p)?.len() == 5 {
            // Even and odd columns apart: the row's taps unrolled.
            s.unroll(r1)?;
        }
        let [pc] = axes(s, p, ["i1"])?;
        let pw = innermost(s, p)?;
        let (_, pi) = s.split(pw, 8)?;
        s.vectorize(pi)?;
        s.parallel(pc)?;
    }
    Ok(())
}

/// A stage's innermost loop (the padded input's rows; with even and odd
/// columns apart, their halves).
fn innermost(s: &Schedule, st: StageRef) -> Result<AxisRef> {
    let loops = s.loops(st)?;
    loops.last().copied().ok_or_else(|| {
        texpr_dsl::Error::Internal(texpr_dsl::error::InternalError {
            context: "conv template".into(),
            message: "a stage without loops".into(),
        })
    })
}

fn depthwise(s: &mut Schedule, out: &str, acc: &str, pad: Option<&str>) -> Result<()> {
    let (z, a) = (s.stage(out)?, s.stage(acc)?);
    let [n, c, h, w] = axes(s, z, ["i0", "i1", "i2", "i3"])?;
    let (wo, wi) = s.split(w, CONV_TILE.1 as i64)?;
    s.reorder(&[n, c, h, wo, wi])?;
    s.vectorize(wi)?;
    let planes = s.fuse(n, c)?;
    s.parallel(planes)?;
    s.compute_at(a, wo)?;
    let [r0, r1, aw] = axes(s, a, ["w0", "w1", "i3"])?;
    s.reorder(&[r0, r1, aw])?;
    s.unroll(r0)?;
    s.unroll(r1)?;
    s.vectorize(aw)?;
    if let Some(p) = pad {
        let p = s.stage(p)?;
        s.compute_at(p, planes)?;
        let pw = innermost(s, p)?;
        let (_, pi) = s.split(pw, 8)?;
        s.vectorize(pi)?;
    }
    Ok(())
}

fn axes<const N: usize>(s: &Schedule, st: StageRef, names: [&str; N]) -> Result<[AxisRef; N]> {
    let v: Vec<AxisRef> = names.iter().map(|n| s.axis(st, n)).collect::<Result<_>>()?;
    Ok(v.try_into().unwrap_or_else(|_| unreachable!("one axis per name")))
}
