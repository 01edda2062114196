// The schedules benchmarked in `benches/kernels.rs`, one `tensor_expr!` block.
// Included by `benches/kernels.rs` and by `tests/jit_kernels.rs`, which
// checks every one of them against the interpreter on shapes with tails:
// what is measured is what is tested.
tensor_expr! {
    /// BLIS-style matrix product, the best schedule: each `jo` iteration
    /// packs a contiguous `K x 8` panel of `b` (`bp`, `cache_read` +
    /// `compute_at` at `jo`) that every 6-row tile reuses; a 6x8 register
    /// tile `cc` (12 accumulators of 4 lanes) over `k`. `jo` is the parallel
    /// loop, so each thread packs its own panels.
    pub fn matmul_best(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }
    schedule for cpu {
        let cc = c.cache_write(local);
        let (io, jo, ii, ji) = c.tile(i, j, 6, 8);
        c.reorder(jo, io, ii, ji);
        c.parallel(jo);
        cc.compute_at(c, io);
        cc.reorder(k, i, j);
        cc.unroll(i);
        cc.vectorize(j);
        let bp = cc.cache_read(b, local);
        bp.compute_at(c, jo);
    }

    /// The packed panel as in docs/language.md: `jo` serial, `io` parallel
    /// inside it (one parallel loop per panel, packed by one thread).
    pub fn matmul_packed_io(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }
    schedule for cpu {
        let cc = c.cache_write(local);
        let (io, jo, ii, ji) = c.tile(i, j, 6, 8);
        c.reorder(jo, io, ii, ji);
        c.parallel(io);
        cc.compute_at(c, io);
        cc.reorder(k, i, j);
        cc.unroll(i);
        cc.vectorize(j);
        let bp = cc.cache_read(b, local);
        bp.compute_at(c, jo);
    }

    /// Register-blocked without packing (the previous best): 6x8 tile via
    /// `cache_write(local)`, `k` unrolled by 2, `b` read in place.
    pub fn matmul_6x8(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }
    schedule for cpu {
        let cl = c.cache_write(local);
        let (io, jo, ii, ji) = c.tile(i, j, 6, 8);
        c.unroll(ii);
        c.vectorize(ji);
        c.parallel(io);
        cl.compute_at(c, jo);
        let (ko, ki) = cl.split(k, 2);
        cl.reorder(ko, ki, i, j);
        cl.vectorize(j);
        cl.unroll(i);
        cl.unroll(ki);
    }

    /// Matrix product blocked for the caches: `k` in blocks of 256 outside the
    /// `j` tiles (a 256-row block of `b` stays in L2 across the tiles), the
    /// 6x8 tile of `c` kept in registers over each `k` block by the JIT's
    /// accumulator promotion.
    pub fn matmul_kblock(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }
    schedule for cpu {
        let (io, jo, ii, ji) = c.tile(i, j, 6, 8);
        let (ko, ki) = c.split(k, 256);
        c.reorder(io, ko, jo, ki, ii, ji);
        c.unroll(ii);
        c.vectorize(ji);
        c.parallel(io);
    }

    /// Matrix product, default schedule.
    pub fn matmul_default(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
        let c = |i, j| sum(k in 0..K => a[i, k] * b[k, j]);
        c
    }

    /// y = max(a * b + c, 0), elementwise.
    pub fn fused(a: f32[N], b: f32[N], c: f32[N]) -> f32[N] {
        let y = |i| max(a[i] * b[i] + c[i], 0.0);
        y
    }
    schedule for cpu {
        let (o, v) = y.split(i, 16);
        y.vectorize(v);
        y.parallel(o);
    }

    /// Softmax over rows: `e` inlined, the row sum computed per row of `y`
    /// (`mx` stays a pass of its own: compute_at needs a single direct reader).
    pub fn softmax(x: f32[N, C]) -> f32[N, C] {
        let mx: f32[N] = |n| max(c in 0..C => x[n, c]);
        let e: f32[N, C] = |n, c| exp(x[n, c] - mx[n]);
        let s: f32[N] = |n| sum(c in 0..C => e[n, c]);
        let y = |n, c| e[n, c] / s[n];
        y
    }
    schedule for cpu {
        e.compute_inline();
        y.parallel(n);
        let (yo, yi) = y.split(c, 16);
        y.vectorize(yi);
        s.compute_at(y, n);
        mx.parallel(n);
        let (mo, mi) = mx.split(c, 16);
        mx.vectorize(mi);
        let (so, si) = s.split(c, 16);
        s.vectorize(si);
    }

    /// Softmax with one `exp` per element: `e` in a row buffer computed at
    /// each row of `y` (with `mx` and `s`), shared by the row sum and the
    /// output; the output multiplies by the row's reciprocal `r`.
    pub fn softmax_rows(x: f32[N, C]) -> f32[N, C] {
        let mx: f32[N] = |n| max(c in 0..C => x[n, c]);
        let e: f32[N, C] = |n, c| exp(x[n, c] - mx[n]);
        let s: f32[N] = |n| sum(c in 0..C => e[n, c]);
        let r: f32[N] = |n| 1.0 / s[n];
        let y = |n, c| e[n, c] * r[n];
        y
    }
    schedule for cpu {
        y.parallel(n);
        let (yo, yi) = y.split(c, 16);
        y.vectorize(yi);
        r.compute_at(y, n);
        s.compute_at(y, n);
        e.compute_at(y, n);
        mx.compute_at(y, n);
        let (eo, ei) = e.split(c, 16);
        e.vectorize(ei);
        let (mo, mi) = mx.split(c, 16);
        mx.vectorize(mi);
        let (so, si) = s.split(c, 16);
        s.vectorize(si);
    }

    /// `softmax_rows` without the `exp` (`e = x - mx`): the same passes
    /// over memory with no transcendental work, i.e. the memory floor of
    /// the softmax schedule on this machine (not a softmax).
    pub fn softmax_rows_noexp(x: f32[N, C]) -> f32[N, C] {
        let mx: f32[N] = |n| max(c in 0..C => x[n, c]);
        let e: f32[N, C] = |n, c| x[n, c] - mx[n];
        let s: f32[N] = |n| sum(c in 0..C => e[n, c]);
        let r: f32[N] = |n| 1.0 / s[n];
        let y = |n, c| e[n, c] * r[n];
        y
    }
    schedule for cpu {
        y.parallel(n);
        let (yo, yi) = y.split(c, 16);
        y.vectorize(yi);
        r.compute_at(y, n);
        s.compute_at(y, n);
        e.compute_at(y, n);
        mx.compute_at(y, n);
        let (eo, ei) = e.split(c, 16);
        e.vectorize(ei);
        let (mo, mi) = mx.split(c, 16);
        mx.vectorize(mi);
        let (so, si) = s.split(c, 16);
        s.vectorize(si);
    }

    /// Softmax, default schedule.
    pub fn softmax_default(x: f32[N, C]) -> f32[N, C] {
        let mx: f32[N] = |n| max(c in 0..C => x[n, c]);
        let e: f32[N, C] = |n, c| exp(x[n, c] - mx[n]);
        let s: f32[N] = |n| sum(c in 0..C => e[n, c]);
        let y = |n, c| e[n, c] / s[n];
        y
    }

    /// Depthwise 3x3 convolution, NCHW, zero padding 1 (explicit padded stage).
    pub fn depthwise(x: f32[B, C, H, W], w: f32[C, 3, 3]) -> f32[B, C, H, W] {
        let xp: f32[B, C, H + 2, W + 2] = |n, c, h, ww|
            if h >= 1 && h <= H && ww >= 1 && ww <= W { x[n, c, h - 1, ww - 1] } else { 0.0 };
        let y = |n, c, h, ww| sum(r in 0..3, s in 0..3 => xp[n, c, h + r, ww + s] * w[c, r, s]);
        y
    }
    schedule for cpu {
        let (wo, wi) = y.split(ww, 8);
        y.reorder(n, c, h, wo, r, s, wi);
        y.unroll(r);
        y.unroll(s);
        y.vectorize(wi);
        let nc = y.fuse(n, c);
        y.parallel(nc);
        xp.compute_at(y, nc);
        let (xo, xi) = xp.split(ww, 8);
        xp.vectorize(xi);
    }

    /// Depthwise 3x3 convolution written like SPEC's conv3x3 (guards inside
    /// the reduction); the JIT partitions the `w` loop around the guards.
    pub fn depthwise_guarded(x: f32[B, C, H, W], w: f32[C, 3, 3]) -> f32[B, C, H, W] {
        let y = |n, c, h, ww| sum(r in 0..3, s in 0..3 =>
            if h + r >= 1 && h + r <= H && ww + s >= 1 && ww + s <= W {
                x[n, c, h + r - 1, ww + s - 1] * w[c, r, s]
            } else { 0.0 });
        y
    }
    schedule for cpu {
        let (wo, wi) = y.split(ww, 8);
        y.reorder(n, c, h, wo, r, s, wi);
        y.unroll(r);
        y.unroll(s);
        y.vectorize(wi);
        let nc = y.fuse(n, c);
        y.parallel(nc);
    }

    /// 2-D convolution 3x3, NCHW, zero padding 1 (explicit padded stage,
    /// copied in parallel with vectorized rows). A 6x8 register tile over
    /// (output channels, width) via `cache_write(local)`; the window loops
    /// `r, s` outermost and the channel loop innermost, so the inner loop is
    /// the matmul micro-kernel (12 FMAs per input channel: 2 vector loads
    /// of `xp`, 12 weight broadcasts). Rows of the output in parallel.
    pub fn conv2d(x: f32[B, C, H, W], w: f32[F, C, 3, 3]) -> f32[B, F, H, W] {
        let xp: f32[B, C, H + 2, W + 2] = |n, c, h, ww|
            if h >= 1 && h <= H && ww >= 1 && ww <= W { x[n, c, h - 1, ww - 1] } else { 0.0 };
        let y = |n, f, h, ww| sum(c in 0..C, r in 0..3, s in 0..3 => xp[n, c, h + r, ww + s] * w[f, c, r, s]);
        y
    }
    schedule for cpu {
        let yl = y.cache_write(local);
        let (fo, wo, fi, wi) = y.tile(f, ww, 6, 8);
        y.reorder(n, h, fo, wo, fi, wi);
        y.unroll(fi);
        y.vectorize(wi);
        y.parallel(h);
        yl.compute_at(y, wo);
        yl.reorder(r, s, c, f, ww);
        yl.unroll(f);
        yl.vectorize(ww);
        let (xo, xi) = xp.split(ww, 8);
        xp.vectorize(xi);
        xp.parallel(c);
    }
}
