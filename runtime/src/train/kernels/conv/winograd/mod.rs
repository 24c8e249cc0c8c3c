//! Winograd F(4×4, 3×3) convolution for the trainer's 3×3, stride-1, pad-1 layers: the
//! forward pass, the input gradient and the weight gradient each take 36 multiplies per
//! 4×4 output tile and channel pair instead of 144 (4× fewer FLOPs than im2col + GEMM;
//! F(2×2, 3×3), which this replaced, saved 2.25×).
//!
//! With `Bᵀ`, `G` and `Aᵀ` the F(4, 3) matrices on the points 0, ±1, ±2 (Lavin & Gray,
//! 2015), one output tile is `Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A` for the 6×6 input
//! patches `d_c` under it. The sum over channels is, for each of the 36 transformed
//! positions ξ, a GEMM: `M_ξ [c_out × tiles] = U_ξ [c_out × c_in] · V_ξ [c_in × tiles]`,
//! run on [`sgemm`]'s micro-kernel.
//!
//! - **Forward**: input transform `V = Bᵀ d B`, weight transform `U = G g Gᵀ`, 36 GEMMs,
//!   output transform `Aᵀ M A` plus bias (and the ReLU when asked).
//! - **Input gradient**: the same pass on `dy`, with the weights rotated by 180° and their
//!   channel axes swapped (the gradient of a stride-1 "same" correlation is one too).
//! - **Weight gradient**: from the trilinear form of F(4, 3),
//!   `dW = Gᵀ [ Σ_tiles (A e Aᵀ) ⊙ (Bᵀ d B) ] G` with `e` the 4×4 tile of `dy`: 36 GEMMs
//!   of depth *tiles* (`[c_out × tiles] · [tiles × c_in]`), one output transform per
//!   filter at the end.
//!
//! **Rounding.** The larger transform constants (up to 8 in `Aᵀ`, 1/24 in `G`) cost some
//! precision against F(2×2, 3×3); on the tests' shapes the results stay within 2e-5 of
//! the nested loops (relative to the largest value), and the golden steps against PyTorch
//! and the exported-ONNX comparisons hold at their tolerances.
//!
//! Tiles are processed in chunks of whole tile rows that stay in the L2 cache; each
//! thread takes a run of chunks with its own scratch (transformed input and GEMM output)
//! and its own [`sgemm`] packing buffer, so nothing is allocated and threads never
//! synchronise inside a pass. The transforms work on 16 neighbouring tiles at once, so
//! the compiler vectorises them.

use super::{Conv2dShape, Dy, check_dy};
use crate::error::{Error, Result};
use crate::train::kernels::sgemm::{MR, NR, micro_tile};
use crate::train::kernels::workers::SharedMut;
use crate::train::kernels::{Gemm, check_len, check_min_len};

/// Tiles handled together by the vectorised transforms (= the GEMM's panel width).
const LANES: usize = 16;
/// Outputs along each side of a tile (F(4×4, 3×3)).
const M: usize = 4;
/// Side of the input patch (and of the transformed tile) under one output tile.
const P: usize = M + 2;
/// Transformed positions per tile (6×6).
const XI: usize = P * P;
/// Target tiles per chunk: forward and input gradient (GEMM depth is the channels).
const CHUNK_FWD: usize = 32;
/// Target tiles per chunk: weight gradient (the tiles are the GEMM depth).
const CHUNK_DW: usize = 64;

type Lanes = [f32; LANES];

/// A weight-gradient chunk's buffers: accumulators, transformed input, transformed
/// `dy`, padded input rows, padded `dy` rows.
type DwBufs<'a> = (
    &'a mut [f32],
    &'a mut [f32],
    &'a mut [f32],
    &'a mut [f32],
    &'a mut [f32],
);

/// Whether Winograd F(4×4, 3×3) computes this convolution: 3×3 kernel, stride 1,
/// padding 1, output the size of the input, and enough input channels for the GEMMs to
/// pay (the first layer of an RGB network stays on im2col).
pub(crate) fn applies(s: &Conv2dShape, hw: (usize, usize)) -> bool {
    s.kh == 3
        && s.kw == 3
        && s.stride == 1
        && s.pad == 1
        && hw == (s.h, s.w)
        && s.c_in >= 8
        && s.c_out >= 8
}

/// Tile geometry of one pass over `n` images of `h × w`, in chunks of whole tile rows.
#[derive(Debug, Clone, Copy)]
struct Geo {
    h: usize,
    w: usize,
    /// Tile rows per image.
    th: usize,
    /// Tiles per tile row, rounded up to whole panels of [`LANES`].
    twp: usize,
    /// Tile rows per chunk.
    rows: usize,
    /// Tile rows in all (`n · th`).
    total_rows: usize,
}

impl Geo {
    fn new(n: usize, h: usize, w: usize, target: usize) -> Geo {
        let (th, tw) = (h.div_ceil(M), w.div_ceil(M));
        let twp = tw.div_ceil(LANES).max(1) * LANES;
        Geo {
            h,
            w,
            th,
            twp,
            rows: (target / twp).max(1),
            total_rows: n * th,
        }
    }

    /// Tiles per chunk, padding included (a GEMM's column count).
    fn tiles(&self) -> usize {
        self.rows * self.twp
    }

    fn chunks(&self) -> usize {
        self.total_rows.div_ceil(self.rows)
    }

    /// Weight-gradient groups (see [`GROUPS`]): fewer when there are fewer chunks.
    fn groups(&self) -> usize {
        GROUPS.min(self.chunks()).max(1)
    }

    /// Padded row buffer length: input columns −1 ..= M·twp.
    fn prow(&self) -> usize {
        M * self.twp + 2
    }
}

/// Floats of one thread's scratch for a forward-style pass from `cin` to `cout` channels.
fn fwd_part_len(geo: &Geo, cin: usize, cout: usize) -> usize {
    XI * (cin + panels(cout) * MR) * geo.tiles() + P * geo.prow()
}

/// Fixed groups of chunks whose weight-gradient sums are kept apart and added in order,
/// so the result does not depend on the thread count (threads take whole groups).
const GROUPS: usize = 8;

/// Floats of one group's weight-gradient accumulators.
fn dw_acc_len(cin: usize, cout: usize) -> usize {
    XI * pad_to(cout, KB) * pad_to(cin, CB)
}

/// Floats of one thread's scratch for the weight gradient: its group's accumulators,
/// the transformed input and `dy`, the padded rows.
fn dw_part_len(geo: &Geo, cin: usize, cout: usize) -> usize {
    dw_acc_len(cin, cout)
        + XI * (pad_to(cout, KB) + pad_to(cin, CB)) * geo.tiles()
        + (P + M) * geo.prow()
}

/// Output channels per weight-gradient dot-product block.
const KB: usize = 4;
/// Input channels per weight-gradient dot-product block.
const CB: usize = 3;

/// `n` rounded up to a multiple of `m`.
fn pad_to(n: usize, m: usize) -> usize {
    n.div_ceil(m) * m
}

/// Workspace floats [`forward`] needs on `threads` threads.
pub(crate) fn forward_workspace_len(s: &Conv2dShape, threads: usize) -> usize {
    let geo = Geo::new(s.n.max(1), s.h, s.w, CHUNK_FWD);
    u_len(s.c_out, s.c_in) + Gemm::resolve_threads(threads) * fwd_part_len(&geo, s.c_in, s.c_out)
}

/// Workspace floats [`backward`] needs on `threads` threads for the gradients asked for.
pub(crate) fn backward_workspace_len(s: &Conv2dShape, threads: usize, dw: bool, dx: bool) -> usize {
    let parts = Gemm::resolve_threads(threads);
    let mut len = 0;
    if dx {
        let geo = Geo::new(s.n.max(1), s.h, s.w, CHUNK_FWD);
        len = u_len(s.c_in, s.c_out) + parts * fwd_part_len(&geo, s.c_out, s.c_in);
    }
    if dw {
        let geo = Geo::new(s.n.max(1), s.h, s.w, CHUNK_DW);
        // Not `geo.groups()`: the trainer sizes this for one image and runs more.
        let dw_len = GROUPS * s.weight_len() + parts * dw_part_len(&geo, s.c_in, s.c_out);
        len = len.max(dw_len);
    }
    len
}

/// `Bᵀ d` for one column of a 6-point patch: the F(4, 3) input transform.
#[inline(always)]
fn bt([d0, d1, d2, d3, d4, d5]: [f32; P]) -> [f32; P] {
    let (t1, t2) = (d4 - 4.0 * d2, d3 - 4.0 * d1);
    let (t3, t4) = (d4 - d2, 2.0 * (d3 - d1));
    [
        4.0 * d0 - 5.0 * d2 + d4,
        t1 + t2,
        t1 - t2,
        t3 + t4,
        t3 - t4,
        4.0 * d1 - 5.0 * d3 + d5,
    ]
}

/// `Aᵀ m`: six transformed values to four outputs.
#[inline(always)]
fn at([m0, m1, m2, m3, m4, m5]: [f32; P]) -> [f32; M] {
    let (a, b, c, d) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
    [m0 + a + c, b + 2.0 * d, a + 4.0 * c, b + 8.0 * d + m5]
}

/// `G g`: three filter taps to six transformed values.
#[inline(always)]
fn gt3([g0, g1, g2]: [f32; 3]) -> [f32; P] {
    let (s, d) = (g0 + g2, g1);
    let (q, e) = (g0 / 24.0 + g2 / 6.0, g1 / 12.0);
    [g0 / 4.0, -(s + d) / 6.0, -(s - d) / 6.0, q + e, q - e, g2]
}

/// `A e`: four output gradients to six transformed values.
#[inline(always)]
fn ae([e0, e1, e2, e3]: [f32; M]) -> [f32; P] {
    let (s, d) = (e0 + e2, e1 + e3);
    let (s2, d2) = (e0 + 4.0 * e2, 2.0 * e1 + 8.0 * e3);
    [e0, s + d, s - d, s2 + d2, s2 - d2, e3]
}

/// `Gᵀ m`: six transformed gradient values to three filter taps.
#[inline(always)]
fn gtt([m0, m1, m2, m3, m4, m5]: [f32; P]) -> [f32; 3] {
    let (a, b, c, d) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
    [
        m0 / 4.0 - a / 6.0 + c / 24.0,
        -b / 6.0 + d / 12.0,
        (c - a) / 6.0 + m5,
    ]
}

/// `G g Gᵀ` of one 3×3 filter (row-major) into 36 values `u[ξ]`.
fn filter_transform(g: &[f32], u: &mut [f32; XI]) {
    let cols: [[f32; P]; 3] = std::array::from_fn(|c| gt3([g[c], g[3 + c], g[6 + c]]));
    for r in 0..P {
        let row = gt3([cols[0][r], cols[1][r], cols[2][r]]);
        u[P * r..P * r + P].copy_from_slice(&row);
    }
}

/// Row panels of the micro-kernel's A operand for `rows` rows (the last zero-padded).
fn panels(rows: usize) -> usize {
    rows.div_ceil(MR)
}

/// Floats of the transformed, packed weights of a pass to `rows` output channels.
fn u_len(rows: usize, cols: usize) -> usize {
    XI * panels(rows) * MR * cols
}

/// Transformed weights packed as A panels, `u[ξ][o / MR][i][o % MR]` (`o` < `rows`, `i`
/// < `cols`), for a forward pass (`rotate`: false, `o` = output channel) or the input
/// gradient (`rotate`: true, `o` = input channel, the filter turned by 180°).
fn weight_transform(s: &Conv2dShape, w: &[f32], rotate: bool, u: &mut [f32]) {
    let (rows, cols) = if rotate {
        (s.c_in, s.c_out)
    } else {
        (s.c_out, s.c_in)
    };
    let kp = panels(rows);
    u[..u_len(rows, cols)].fill(0.0);
    let mut g = [0.0f32; 9];
    let mut t = [0.0f32; XI];
    for co in 0..s.c_out {
        for ci in 0..s.c_in {
            let f = &w[(co * s.c_in + ci) * 9..(co * s.c_in + ci + 1) * 9];
            if rotate {
                for (k, v) in g.iter_mut().enumerate() {
                    *v = f[8 - k];
                }
            } else {
                g.copy_from_slice(f);
            }
            filter_transform(&g, &mut t);
            let (o, i) = if rotate { (ci, co) } else { (co, ci) };
            for (xi, &v) in t.iter().enumerate() {
                u[((xi * kp + o / MR) * cols + i) * MR + o % MR] = v;
            }
        }
    }
}

/// Row `iy` of plane `p` (image · channels + channel) of `src` into `out` (`w`
/// floats): a plain tensor's row, or for [`Dy::Pooled`] the row of the ReLU input's
/// gradient expanded from the 2×2/2 pool's (what `pool::maxpool_relu_backward` would
/// write, value for value). False when a window's argmax lies outside it.
#[inline(always)]
fn src_row(src: Dy<'_>, (h, w): (usize, usize), p: usize, iy: usize, out: &mut [f32]) -> bool {
    match src {
        Dy::Plain(t) => {
            let at = (p * h + iy) * w;
            out.copy_from_slice(&t[at..at + w]);
            true
        }
        Dy::Pooled { dy, argmax, y } => {
            let ow = w / 2;
            let o = (p * (h / 2) + iy / 2) * ow;
            let (yr, gr, ar) = (&y[o..o + ow], &dy[o..o + ow], &argmax[o..o + ow]);
            let (base, q, wu) = (((iy / 2) * 2 * w) as u32, (iy % 2 * w) as u32, w as u32);
            let mut ok = true;
            for (ox, pair) in out.chunks_exact_mut(2).take(ow).enumerate() {
                let g = if yr[ox] > 0.0 { gr[ox] } else { 0.0 };
                // The winner's offset in its window: 0, 1 (top row), w, w + 1 (bottom).
                let rel = ar[ox].wrapping_sub(base + 2 * ox as u32);
                ok &= rel <= 1 || rel.wrapping_sub(wu) <= 1;
                let at = rel.wrapping_sub(q);
                pair[0] = if at == 0 { g } else { 0.0 };
                pair[1] = if at == 1 { g } else { 0.0 };
            }
            ok
        }
    }
}

/// Fills the six padded input rows `M·ty − 1 ..= M·ty + 4` of plane `p` of `src`:
/// `prow[i][j]` holds column `j − 1`, zero outside the plane. False as [`src_row`].
#[inline(always)]
fn fill_rows(geo: &Geo, src: Dy<'_>, p: usize, ty: usize, prow: &mut [f32]) -> bool {
    let len = geo.prow();
    let mut ok = true;
    for (i, row) in prow.chunks_exact_mut(len).take(P).enumerate() {
        let iy = (M * ty + i).wrapping_sub(1);
        if iy < geo.h {
            row[0] = 0.0;
            ok &= src_row(src, (geo.h, geo.w), p, iy, &mut row[1..=geo.w]);
            row[geo.w + 1..].fill(0.0);
        } else {
            row.fill(0.0);
        }
    }
    ok
}

/// Applies `f` to the 16 lanes of `I` input vectors at once: `out[k][l] =
/// f(inp[..][l])[k]`. The lane loop is what the compiler vectorises. (Plain loops, no
/// `array::from_fn`: its closures are not always inlined into the AVX2 callers.)
#[inline(always)]
#[allow(clippy::needless_range_loop)] // lane loops index several arrays in step
fn lanes_map<const I: usize, const O: usize>(
    inp: &[Lanes; I],
    out: &mut [Lanes; O],
    f: impl Fn([f32; I]) -> [f32; O],
) {
    for l in 0..LANES {
        let mut a = [0.0f32; I];
        for i in 0..I {
            a[i] = inp[i][l];
        }
        let r = f(a);
        for o in 0..O {
            out[o][l] = r[o];
        }
    }
}

/// The `K` values starting at each tile's column: `out[j][l] = row[M·l + j]`.
#[inline(always)]
fn gather<const K: usize>(row: &[f32]) -> [Lanes; K] {
    let mut out = [[0.0f32; LANES]; K];
    for l in 0..LANES {
        for (j, o) in out.iter_mut().enumerate() {
            o[l] = row[M * l + j];
        }
    }
    out
}

/// `Bᵀ d B` for the 16 tiles of panel `p` from six padded rows; `put(ξ, lanes)`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // the loop picks the inner axis of `t`/`u`
fn input_transform(prow: &[f32], len: usize, p: usize, put: &mut impl FnMut(usize, &Lanes)) {
    let x0 = M * p * LANES;
    // t[i][q]: row i of the patch times B.
    let mut t = [[[0.0f32; LANES]; P]; P];
    for (i, ti) in t.iter_mut().enumerate() {
        let row = &prow[i * len + x0..i * len + x0 + M * LANES + 2];
        lanes_map(&gather::<P>(row), ti, bt);
    }
    let (mut col, mut v) = ([[0.0f32; LANES]; P], [[0.0f32; LANES]; P]);
    for q in 0..P {
        for i in 0..P {
            col[i] = t[i][q];
        }
        lanes_map(&col, &mut v, bt);
        for (k, vk) in v.iter().enumerate() {
            put(P * k + q, vk);
        }
    }
}

/// Input transform of one chunk (tile rows `r0..r0 + geo.rows`) of `x [n, c, h, w]` into
/// the micro-kernel's B panels `v[ξ][t / NR][ci][t % NR]` (depth `c`). False as
/// [`src_row`].
#[inline(always)]
fn transform_chunk(
    geo: &Geo,
    c: usize,
    x: Dy<'_>,
    r0: usize,
    v: &mut [f32],
    prow: &mut [f32],
) -> bool {
    let (len, tiles) = (geo.prow(), geo.tiles());
    let mut ok = true;
    for r in 0..geo.rows {
        let row = r0 + r;
        for ci in 0..c {
            if row < geo.total_rows {
                let (img, ty) = (row / geo.th, row % geo.th);
                ok &= fill_rows(geo, x, img * c + ci, ty, prow);
            } else {
                prow[..P * len].fill(0.0);
            }
            for p in 0..geo.twp / LANES {
                let t0 = r * geo.twp + p * LANES;
                input_transform(prow, len, p, &mut |xi, lanes| {
                    let o = ((xi * tiles / NR + t0 / NR) * c + ci) * NR;
                    let dst: &mut Lanes = (&mut v[o..o + LANES]).try_into().expect("16 lanes");
                    *dst = *lanes;
                });
            }
        }
    }
    ok
}

/// `Aᵀ m A` for 16 tiles: the 4×4 outputs `[row][col][lane]`.
#[inline(always)]
fn output_transform(m: &[Lanes; XI]) -> [[Lanes; M]; M] {
    // s[a][j]: row a of m times A.
    let mut s = [[[0.0f32; LANES]; M]; P];
    for (a, sa) in s.iter_mut().enumerate() {
        let row: &[Lanes; P] = m[P * a..P * a + P].try_into().expect("a row");
        lanes_map(row, sa, at);
    }
    let (mut col, mut r) = ([[0.0f32; LANES]; P], [[0.0f32; LANES]; M]);
    let mut y = [[[0.0f32; LANES]; M]; M];
    for j in 0..M {
        for a in 0..P {
            col[a] = s[a][j];
        }
        lanes_map(&col, &mut r, at);
        for i in 0..M {
            y[i][j] = r[i];
        }
    }
    y
}

/// Where a forward-style pass writes: the convolution's output, or the 2×2/2 max-pool
/// of its ReLU output and, when kept, the pool's argmax (plane indices).
#[derive(Clone, Copy)]
enum Dest<'a> {
    Full(&'a SharedMut),
    Pooled(&'a SharedMut, Option<&'a SharedMut<u32>>),
}

/// ReLU and the 2×2/2 max-pool of one output tile row segment (`y` from
/// [`output_transform`] at output row `oy`, column `x0`; bias `bv`) into the pooled
/// plane starting at `pooled`: the same winners as `maxpool_forward_opt` on the ReLU
/// output. The plane's sides are even.
#[inline(always)]
fn pool_tile(
    geo: &Geo,
    y: &[[Lanes; M]; M],
    bv: f32,
    (pooled, oy, x0): (usize, usize, usize),
    out: &SharedMut,
    arg: Option<&SharedMut<u32>>,
) {
    let (w, pw) = (geo.w, geo.w / 2);
    let cols = (w - x0).min(M * LANES) / 2;
    for pi in 0..M / 2 {
        let iy = oy + 2 * pi;
        if iy >= geo.h {
            break;
        }
        let at = pooled + (iy / 2) * pw + x0 / 2;
        // Safety: pooled row iy / 2 comes from output rows of this chunk's tile rows
        // only, which no other part touches; columns x0 / 2 .. + cols lie inside.
        let dst = unsafe { out.range(at, cols) };
        // Safety: as above (one argmax per pooled output).
        let dst_arg = arg.map(|g| unsafe { g.range(at, cols) });
        let (top, bottom) = (&y[2 * pi], &y[2 * pi + 1]);
        // Winner and offset per lane (tile) for the left (pj 0) and right (pj 1)
        // windows: lane loops the compiler vectorises, then interleaved.
        let (mut mv, mut wn) = ([[0.0f32; LANES]; 2], [[0u32; LANES]; 2]);
        for pj in 0..2 {
            let j = 2 * pj;
            for l in 0..LANES {
                let (a, b) = ((top[j][l] + bv).max(0.0), (top[j + 1][l] + bv).max(0.0));
                let (c, e) = (
                    (bottom[j][l] + bv).max(0.0),
                    (bottom[j + 1][l] + bv).max(0.0),
                );
                let (m, k) = crate::train::kernels::pooling::max_of_window4(a, b, c, e);
                mv[pj][l] = m;
                wn[pj][l] = (k & 1) + (k >> 1) * w as u32;
            }
        }
        if let Ok(dst) = <&mut [f32; M * LANES / 2]>::try_from(&mut *dst) {
            for l in 0..LANES {
                dst[2 * l] = mv[0][l];
                dst[2 * l + 1] = mv[1][l];
            }
        } else {
            for (k, d) in dst.iter_mut().enumerate() {
                *d = mv[k % 2][k / 2];
            }
        }
        if let Some(ga) = dst_arg {
            let base = (iy * w + x0) as u32;
            for (k, g) in ga.iter_mut().enumerate() {
                *g = base + 2 * k as u32 + wn[k % 2][k / 2];
            }
        }
    }
}

/// One chunk of a forward-style pass (see [`pass`]): input transform into `v`, the 16
/// GEMMs as micro-tiles into `m[ξ][o / MR][t / NR][MR × NR]`, output transform into `out`.
/// False as [`src_row`] (the chunk is finished all the same).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pass_chunk(
    geo: &Geo,
    (cin, cout): (usize, usize),
    chunk: usize,
    inp: Dy<'_>,
    u: &[f32],
    (bias, relu): (Option<&[f32]>, bool),
    out: Dest<'_>,
    (v, m, prow): (&mut [f32], &mut [f32], &mut [f32]),
) -> bool {
    let (tiles, plane, w) = (geo.tiles(), geo.h * geo.w, geo.w);
    let (tp, kp) = (tiles / NR, panels(cout));
    let r0 = chunk * geo.rows;
    let ok = transform_chunk(geo, cin, inp, r0, v, prow);
    for xi in 0..XI {
        for k in 0..kp {
            let a = &u[(xi * kp + k) * cin * MR..(xi * kp + k + 1) * cin * MR];
            for t in 0..tp {
                let b = &v[(xi * tp + t) * cin * NR..(xi * tp + t + 1) * cin * NR];
                let o = ((xi * kp + k) * tp + t) * MR * NR;
                let tile: &mut [f32; MR * NR] =
                    (&mut m[o..o + MR * NR]).try_into().expect("one tile");
                micro_tile(cin, a, b, tile);
            }
        }
    }
    let mut mx = [[0.0f32; LANES]; XI];
    for r in 0..geo.rows.min(geo.total_rows.saturating_sub(r0)) {
        let (img, ty) = ((r0 + r) / geo.th, (r0 + r) % geo.th);
        let oy = M * ty;
        for co in 0..cout {
            let bv = bias.map_or(0.0, |b| b[co]);
            let base = (img * cout + co) * plane;
            for p in 0..geo.twp / LANES {
                let x0 = M * p * LANES;
                if x0 >= w {
                    break;
                }
                let t = (r * geo.twp) / NR + p;
                for (xi, mv) in mx.iter_mut().enumerate() {
                    let o = ((xi * kp + co / MR) * tp + t) * MR * NR + (co % MR) * NR;
                    let src: &Lanes = m[o..o + LANES].try_into().expect("16 lanes");
                    *mv = *src;
                }
                let y = output_transform(&mx);
                let out = match out {
                    Dest::Full(out) => out,
                    Dest::Pooled(out, arg) => {
                        let pooled = (img * cout + co) * (geo.h / 2) * (w / 2);
                        pool_tile(geo, &y, bv, (pooled, oy, x0), out, arg);
                        continue;
                    }
                };
                let cols = (w - x0).min(M * LANES);
                for (i, yi) in y.iter().enumerate() {
                    if oy + i >= geo.h {
                        break;
                    }
                    // Safety: rows (img, co, oy + i) belong to this chunk's tile rows,
                    // which no other part touches; columns x0 .. x0 + cols lie inside.
                    let dst = unsafe { out.range(base + (oy + i) * w + x0, cols) };
                    let floor = if relu { 0.0 } else { f32::NEG_INFINITY };
                    if let Ok(dst) = <&mut [f32; M * LANES]>::try_from(&mut *dst) {
                        for l in 0..LANES {
                            for (j, yj) in yi.iter().enumerate() {
                                dst[M * l + j] = (yj[l] + bv).max(floor);
                            }
                        }
                    } else {
                        for (k, d) in dst.iter_mut().enumerate() {
                            *d = (yi[k % M][k / M] + bv).max(floor);
                        }
                    }
                }
            }
        }
    }
    ok
}

/// [`pass_chunk`] compiled for AVX2 (the transforms' 16-lane loops become 256-bit ops).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn pass_chunk_avx2(
    geo: &Geo,
    ch: (usize, usize),
    chunk: usize,
    inp: Dy<'_>,
    u: &[f32],
    bias: (Option<&[f32]>, bool),
    out: Dest<'_>,
    bufs: (&mut [f32], &mut [f32], &mut [f32]),
) -> bool {
    pass_chunk(geo, ch, chunk, inp, u, bias, out, bufs)
}

/// A forward-style Winograd pass: `out [n, cout, h, w] = conv3×3(inp [n, cin, h, w])`
/// with transformed, packed weights `u` (see [`weight_transform`]) and an optional
/// bias; `scratch` holds `parts` blocks of [`fwd_part_len`] floats. `inp` may be a
/// pooled gradient, expanded row by row ([`Dy::Pooled`]).
#[allow(clippy::too_many_arguments)]
fn pass(
    n: usize,
    (cin, cout, h, w): (usize, usize, usize, usize),
    inp: Dy<'_>,
    u: &[f32],
    bias: (Option<&[f32]>, bool),
    (out, arg, pooled): (&mut [f32], Option<&mut [u32]>, bool),
    scratch: &mut [f32],
    g: &mut Gemm<'_>,
) -> Result<()> {
    let geo = Geo::new(n, h, w, CHUNK_FWD);
    let parts = g.parts().min(geo.chunks()).max(1);
    let part_len = fwd_part_len(&geo, cin, cout);
    check_min_len("winograd workspace", scratch.len(), parts * part_len)?;
    let tiles = geo.tiles();
    let (out_s, arg_s) = (SharedMut::new(out), arg.map(SharedMut::new));
    let dest = if pooled {
        Dest::Pooled(&out_s, arg_s.as_ref())
    } else {
        Dest::Full(&out_s)
    };
    let scr = SharedMut::new(scratch);
    let chunks = geo.chunks();
    let avx = crate::train::kernels::avx2_fma();
    let outside = std::sync::atomic::AtomicBool::new(false);
    g.run_parts(parts, &|part| {
        // Safety: each part takes its own scratch block.
        let s = unsafe { scr.range(part * part_len, part_len) };
        let (v, rest) = s.split_at_mut(XI * cin * tiles);
        let (m, prow) = rest.split_at_mut(XI * panels(cout) * MR * tiles);
        for chunk in chunks * part / parts..chunks * (part + 1) / parts {
            let bufs = (&mut *v, &mut *m, &mut *prow);
            #[cfg(target_arch = "x86_64")]
            let ok = if avx {
                // Safety: AVX2 and FMA were detected.
                unsafe { pass_chunk_avx2(&geo, (cin, cout), chunk, inp, u, bias, dest, bufs) }
            } else {
                pass_chunk(&geo, (cin, cout), chunk, inp, u, bias, dest, bufs)
            };
            #[cfg(not(target_arch = "x86_64"))]
            let ok = {
                let _ = avx;
                pass_chunk(&geo, (cin, cout), chunk, inp, u, bias, dest, bufs)
            };
            if !ok {
                outside.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    argmax_inside(outside.into_inner())
}

/// The error of a pooled source whose argmax left its window (a pass reports it once
/// every part is done).
fn argmax_inside(outside: bool) -> Result<()> {
    if outside {
        Err(Error::Invalid(
            "max-pool argmax outside its window (the pooled gradient cannot be expanded)".into(),
        ))
    } else {
        Ok(())
    }
}

/// Forward pass `y = conv(x, w) + b` of a 3×3 stride-1 pad-1 convolution (see
/// [`applies`]); `workspace` needs [`forward_workspace_len`] floats.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    workspace: &mut [f32],
    g: &mut Gemm<'_>,
    relu: bool,
) -> Result<()> {
    check_len("conv output", y.len(), s.n * s.c_out * s.h * s.w)?;
    forward_into(s, x, w, b, (y, None, false), relu, workspace, g)
}

/// Conv + bias + ReLU + 2×2/2 max-pool in one pass: the output transform pools its
/// 4×4 tiles straight away, so only the pooled output `[n, c_out, h/2, w/2]` and, when
/// given, its argmax (plane indices, the winners `maxpool_forward_opt` picks) are
/// written. Needs even `h` and `w`, and [`forward_workspace_len`] floats.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_relu_pool(
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    argmax: Option<&mut [u32]>,
    workspace: &mut [f32],
    g: &mut Gemm<'_>,
) -> Result<()> {
    crate::train::kernels::pooling::check_tiles_2x2(s.h, s.w)?;
    let pooled = s.n * s.c_out * (s.h / 2) * (s.w / 2);
    check_len("max-pool output", y.len(), pooled)?;
    if let Some(a) = &argmax {
        check_len("max-pool argmax", a.len(), pooled)?;
    }
    forward_into(s, x, w, b, (y, argmax, true), true, workspace, g)
}

/// [`forward`] / [`forward_relu_pool`] after their output checks.
#[allow(clippy::too_many_arguments)]
fn forward_into(
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    out: (&mut [f32], Option<&mut [u32]>, bool),
    relu: bool,
    workspace: &mut [f32],
    g: &mut Gemm<'_>,
) -> Result<()> {
    check_len("conv input", x.len(), s.input_len())?;
    check_len("conv weight", w.len(), s.weight_len())?;
    if let Some(b) = b {
        check_len("conv bias", b.len(), s.c_out)?;
    }
    let ulen = u_len(s.c_out, s.c_in);
    check_min_len("winograd workspace", workspace.len(), ulen)?;
    let (u, scratch) = workspace.split_at_mut(ulen);
    weight_transform(s, w, false, u);
    pass(
        s.n,
        (s.c_in, s.c_out, s.h, s.w),
        Dy::Plain(x),
        u,
        (b, relu),
        out,
        scratch,
        g,
    )
}

/// `A e Aᵀ` of the 4×4 `dy` tiles of panel `p` (four padded rows, zero past the plane).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // the loop picks the inner axis of `t`/`u`
fn grad_transform(rows: &[f32], len: usize, p: usize, put: &mut impl FnMut(usize, &Lanes)) {
    let x0 = M * p * LANES;
    // u[i][b]: row i of the tile times Aᵀ.
    let mut u = [[[0.0f32; LANES]; P]; M];
    for (i, ui) in u.iter_mut().enumerate() {
        let row = &rows[i * len + x0..i * len + x0 + M * LANES];
        lanes_map(&gather::<M>(row), ui, ae);
    }
    let (mut col, mut v) = ([[0.0f32; LANES]; M], [[0.0f32; LANES]; P]);
    for b in 0..P {
        for i in 0..M {
            col[i] = u[i][b];
        }
        lanes_map(&col, &mut v, ae);
        for (a, va) in v.iter().enumerate() {
            put(P * a + b, va);
        }
    }
}

/// `Gᵀ m G` of one filter's accumulated 6×6 values into its 3×3 gradient.
fn filter_grad(m: &[f32; XI], out: &mut [f32]) {
    // z[r]: row r of m times G.
    let z: [[f32; 3]; P] =
        std::array::from_fn(|r| gtt(m[P * r..P * r + P].try_into().expect("a row")));
    for t in 0..3 {
        let col = gtt(std::array::from_fn(|r| z[r][t]));
        for (s, &val) in col.iter().enumerate() {
            out[3 * s + t] = val;
        }
    }
}

/// One chunk of the weight gradient: transforms `x` into rows `v[ξ][ci][t]` and `dy`
/// into rows `e[ξ][co][t]` (16 tiles at a time, contiguous: nothing is transposed),
/// then adds the 36 products `e_ξ · v_ξᵀ` (dot products along the tiles, 4 × 3 channel
/// pairs at once) to `acc[ξ][co][ci]`. Channel counts are padded to the blocks with
/// zero rows. False as [`src_row`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn dw_chunk(
    geo: &Geo,
    (cin, cout): (usize, usize),
    chunk: usize,
    x: &[f32],
    dy: Dy<'_>,
    (acc, v, e, prow, drows): DwBufs<'_>,
    avx: bool,
) -> bool {
    let (tiles, len, w) = (geo.tiles(), geo.prow(), geo.w);
    let (kp, cp) = (pad_to(cout, KB), pad_to(cin, CB));
    let r0 = chunk * geo.rows;
    let mut ok = true;
    for r in 0..geo.rows {
        let row = r0 + r;
        let valid = row < geo.total_rows;
        let (img, ty) = (row / geo.th, row % geo.th);
        for ci in 0..cin {
            if valid {
                fill_rows(geo, Dy::Plain(x), img * cin + ci, ty, prow);
            } else {
                prow[..P * len].fill(0.0);
            }
            for p in 0..geo.twp / LANES {
                let t0 = r * geo.twp + p * LANES;
                input_transform(prow, len, p, &mut |xi, lanes| {
                    let o = (xi * cp + ci) * tiles + t0;
                    let dst: &mut Lanes = (&mut v[o..o + LANES]).try_into().expect("16 lanes");
                    *dst = *lanes;
                });
            }
        }
        for co in 0..cout {
            if valid {
                for (i, d) in drows.chunks_exact_mut(len).take(M).enumerate() {
                    let oy = M * ty + i;
                    if oy < geo.h {
                        ok &= src_row(dy, (geo.h, w), img * cout + co, oy, &mut d[..w]);
                        d[w..].fill(0.0);
                    } else {
                        d.fill(0.0);
                    }
                }
            } else {
                drows[..M * len].fill(0.0);
            }
            for p in 0..geo.twp / LANES {
                let t0 = r * geo.twp + p * LANES;
                grad_transform(drows, len, p, &mut |xi, lanes| {
                    let o = (xi * kp + co) * tiles + t0;
                    let dst: &mut Lanes = (&mut e[o..o + LANES]).try_into().expect("16 lanes");
                    *dst = *lanes;
                });
            }
        }
    }
    let (e, v) = (&*e, &*v);
    for xi in 0..XI {
        for k in (0..kp).step_by(KB) {
            let mut er: [&[f32]; KB] = [&[]; KB];
            for (i, r) in er.iter_mut().enumerate() {
                let row = xi * kp + k + i;
                *r = &e[row * tiles..(row + 1) * tiles];
            }
            for c in (0..cp).step_by(CB) {
                let mut vr: [&[f32]; CB] = [&[]; CB];
                for (j, r) in vr.iter_mut().enumerate() {
                    let row = xi * cp + c + j;
                    *r = &v[row * tiles..(row + 1) * tiles];
                }
                let sums = dot_block(er, vr, avx);
                for (i, srow) in sums.iter().enumerate() {
                    let o = (xi * kp + k + i) * cp + c;
                    for (a, s) in acc[o..o + CB].iter_mut().zip(srow) {
                        *a += s;
                    }
                }
            }
        }
    }
    ok
}

/// `sums[i][j] = e[i] · v[j]` for 4 × 3 rows of equal length (a multiple of 8).
#[inline(always)]
fn dot_block(e: [&[f32]; KB], v: [&[f32]; CB], avx: bool) -> [[f32; CB]; KB] {
    #[cfg(target_arch = "x86_64")]
    if avx {
        // Safety: AVX2 and FMA were detected by the caller.
        return unsafe { simd::dot_block(e, v) };
    }
    let _ = avx;
    let mut out = [[0.0f32; CB]; KB];
    for (o, er) in out.iter_mut().zip(&e) {
        for (s, vr) in o.iter_mut().zip(&v) {
            *s = er.iter().zip(*vr).map(|(a, b)| a * b).sum();
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{CB, KB};
    use std::arch::x86_64::*;

    /// [`super::dot_block`] in 12 ymm accumulators: four loads of `e` and three of `v`
    /// per 12 FMAs, the lanes summed once at the end.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; every row holds the same number of floats, a
    /// multiple of 8.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_block(e: [&[f32]; KB], v: [&[f32]; CB]) -> [[f32; CB]; KB] {
        let n = v[0].len();
        assert!(
            n.is_multiple_of(8) && e.iter().all(|r| r.len() == n) && v.iter().all(|r| r.len() == n)
        );
        let (ep, vp) = (e.map(<[f32]>::as_ptr), v.map(<[f32]>::as_ptr));
        let mut acc = [[_mm256_setzero_ps(); CB]; KB];
        let mut t = 0;
        while t < n {
            // Safety: t + 8 ≤ n, the length of every row (checked above).
            unsafe {
                let mut vv = [_mm256_setzero_ps(); CB];
                for (j, x) in vv.iter_mut().enumerate() {
                    *x = _mm256_loadu_ps(vp[j].add(t));
                }
                for (i, a) in acc.iter_mut().enumerate() {
                    let ev = _mm256_loadu_ps(ep[i].add(t));
                    for (j, s) in a.iter_mut().enumerate() {
                        *s = _mm256_fmadd_ps(ev, vv[j], *s);
                    }
                }
            }
            t += 8;
        }
        let mut out = [[0.0f32; CB]; KB];
        for (o, a) in out.iter_mut().zip(&acc) {
            for (s, v) in o.iter_mut().zip(a) {
                let lo = _mm256_castps256_ps128(*v);
                let hi = _mm256_extractf128_ps(*v, 1);
                let q = _mm_add_ps(lo, hi);
                let d = _mm_add_ps(q, _mm_movehl_ps(q, q));
                let r = _mm_add_ss(d, _mm_shuffle_ps(d, d, 1));
                *s = _mm_cvtss_f32(r);
            }
        }
        out
    }
}

/// [`dw_chunk`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn dw_chunk_avx2(
    geo: &Geo,
    ch: (usize, usize),
    chunk: usize,
    x: &[f32],
    dy: Dy<'_>,
    bufs: DwBufs<'_>,
) -> bool {
    dw_chunk(geo, ch, chunk, x, dy, bufs, true)
}

/// Weight gradient (see the module notes): `dw [c_out, c_in, 3, 3]` from `x` and `dy`,
/// added to when `add`.
fn weight_grad(
    s: &Conv2dShape,
    x: &[f32],
    dy: Dy<'_>,
    dw: &mut [f32],
    add: bool,
    scratch: &mut [f32],
    g: &mut Gemm<'_>,
) -> Result<()> {
    let (cin, cout) = (s.c_in, s.c_out);
    let geo = Geo::new(s.n, s.h, s.w, CHUNK_DW);
    let chunks = geo.chunks();
    let groups = geo.groups();
    let parts = g.parts().min(groups);
    let (acc_len, part_len) = (dw_acc_len(cin, cout), dw_part_len(&geo, cin, cout));
    let flen = s.weight_len();
    check_min_len(
        "winograd workspace",
        scratch.len(),
        groups * flen + parts * part_len,
    )?;
    let (kp, cp) = (pad_to(cout, KB), pad_to(cin, CB));
    let (tiles, len) = (geo.tiles(), geo.prow());
    let (sums, parts_scratch) = scratch.split_at_mut(groups * flen);
    let (sums_s, scr) = (SharedMut::new(sums), SharedMut::new(parts_scratch));
    let avx = crate::train::kernels::avx2_fma();
    let outside = std::sync::atomic::AtomicBool::new(false);
    g.run_parts(parts, &|part| {
        // Safety: each part takes its own scratch block.
        let sc = unsafe { scr.range(part * part_len, part_len) };
        let (acc, rest) = sc.split_at_mut(acc_len);
        let (v, rest) = rest.split_at_mut(XI * cp * tiles);
        let (e, rest) = rest.split_at_mut(XI * kp * tiles);
        let (prow, drows) = rest.split_at_mut(P * len);
        // Padding channels stay zero (their sums are never read).
        v.fill(0.0);
        e.fill(0.0);
        for group in groups * part / parts..groups * (part + 1) / parts {
            acc.fill(0.0);
            for chunk in chunks * group / groups..chunks * (group + 1) / groups {
                let bufs = (&mut *acc, &mut *v, &mut *e, &mut *prow, &mut *drows);
                #[cfg(target_arch = "x86_64")]
                let ok = if avx {
                    // Safety: AVX2 and FMA were detected.
                    unsafe { dw_chunk_avx2(&geo, (cin, cout), chunk, x, dy, bufs) }
                } else {
                    dw_chunk(&geo, (cin, cout), chunk, x, dy, bufs, false)
                };
                #[cfg(not(target_arch = "x86_64"))]
                let ok = dw_chunk(&geo, (cin, cout), chunk, x, dy, bufs, avx);
                if !ok {
                    outside.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            // The group's 3×3 gradients (the transform is linear, so the groups' sums
            // can be added after it).
            // Safety: each group's slot belongs to the one part that takes it.
            let out = unsafe { sums_s.range(group * flen, flen) };
            let mut m = [0.0f32; XI];
            for co in 0..cout {
                for ci in 0..cin {
                    for (xi, mv) in m.iter_mut().enumerate() {
                        *mv = acc[(xi * kp + co) * cp + ci];
                    }
                    let f = (co * cin + ci) * 9;
                    filter_grad(&m, &mut out[f..f + 9]);
                }
            }
        }
    });
    argmax_inside(outside.into_inner())?;
    // Add the groups' gradients in order.
    let (first, others) = sums.split_at_mut(flen);
    for o in others.chunks_exact(flen).take(groups - 1) {
        first.iter_mut().zip(o).for_each(|(a, b)| *a += b);
    }
    if add {
        dw.iter_mut().zip(&*first).for_each(|(d, v)| *d += v);
    } else {
        dw.copy_from_slice(first);
    }
    Ok(())
}

/// Backward pass of a 3×3 stride-1 pad-1 convolution (see [`applies`]): writes `dx`
/// when given (overwriting it) and `dw` (added to when `add`); the bias gradient is the
/// caller's. `dy` is the output's gradient, or ([`Dy::Pooled`]) that of a ReLU + 2×2/2
/// max-pool after the conv, expanded row by row where the passes read it (never
/// whole). `workspace` needs [`backward_workspace_len`] floats.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    dy: Dy<'_>,
    dx: Option<&mut [f32]>,
    dw: Option<&mut [f32]>,
    add: bool,
    workspace: &mut [f32],
    g: &mut Gemm<'_>,
) -> Result<()> {
    check_len("conv weight", w.len(), s.weight_len())?;
    check_dy(s, dy)?;
    if let Some(dw) = dw {
        check_len("conv input", x.len(), s.input_len())?;
        check_len("conv dw", dw.len(), s.weight_len())?;
        weight_grad(s, x, dy, dw, add, workspace, g)?;
    }
    if let Some(dx) = dx {
        check_len("conv dx", dx.len(), s.input_len())?;
        let ulen = u_len(s.c_in, s.c_out);
        check_min_len("winograd workspace", workspace.len(), ulen)?;
        let (u, scratch) = workspace.split_at_mut(ulen);
        weight_transform(s, w, true, u);
        pass(
            s.n,
            (s.c_out, s.c_in, s.h, s.w),
            dy,
            u,
            (None, false),
            (dx, None, false),
            scratch,
            g,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::kernels::conv::{conv2d_backward_naive, conv2d_forward_naive};
    use crate::train::kernels::sgemm::pack_len;
    use crate::train::kernels::tests::{close, pooled_case, vals};
    use crate::train::kernels::workers::Workers;

    /// Forward, input and weight gradients against the nested loops, on odd and even
    /// sizes, rows wider than a panel, several chunks and 1–3 threads.
    #[test]
    fn matches_naive_loops() {
        for &(n, c_in, c_out, h, w) in &[
            (2, 8, 8, 6, 6),
            (1, 9, 13, 7, 5),
            (3, 8, 10, 5, 40),
            (2, 16, 8, 34, 3),
            (1, 8, 8, 1, 1),
            (1, 8, 9, 10, 70),
        ] {
            let s = Conv2dShape {
                n,
                c_in,
                h,
                w,
                c_out,
                kh: 3,
                kw: 3,
                stride: 1,
                pad: 1,
            };
            let x = vals(s.input_len(), 1);
            let wt = vals(s.weight_len(), 2);
            let b = vals(c_out, 3);
            let dy = vals(n * c_out * h * w, 4);
            let mut y0 = vec![0.0; dy.len()];
            conv2d_forward_naive(s, &x, &wt, Some(&b), &mut y0).unwrap();
            let (mut dx0, mut dw0) = (vec![0.0; x.len()], vec![0.0; wt.len()]);
            conv2d_backward_naive(s, &x, &wt, &dy, &mut dx0, &mut dw0, None).unwrap();
            for threads in [1, 2, 3] {
                let workers = Workers::new(threads - 1).unwrap();
                for use_workers in [false, true] {
                    let mut pack = vec![0.0; threads * pack_len()];
                    let mut g = Gemm {
                        threads,
                        pack: &mut pack,
                        workers: use_workers.then_some(&workers),
                    };
                    let mut ws = vec![
                        0.0;
                        forward_workspace_len(&s, threads)
                            .max(backward_workspace_len(&s, threads, true, true))
                    ];
                    let mut y = vec![f32::NAN; dy.len()];
                    forward(&s, &x, &wt, Some(&b), &mut y, &mut ws, &mut g, false).unwrap();
                    close("y", &y, &y0, "winograd");
                    forward(&s, &x, &wt, Some(&b), &mut y, &mut ws, &mut g, true).unwrap();
                    let relu0: Vec<f32> = y0.iter().map(|v| v.max(0.0)).collect();
                    close("relu(y)", &y, &relu0, "winograd");
                    if h % 2 == 0 && w % 2 == 0 {
                        // Pooled in the output transform: bit-identical to pooling the
                        // ReLU output just computed.
                        let ps = crate::train::kernels::pooling::PoolShape {
                            n,
                            c: c_out,
                            h,
                            w,
                            k: 2,
                            stride: 2,
                        };
                        let out = ps.output_len().unwrap();
                        let (mut want, mut want_arg) = (vec![0.0; out], vec![0u32; out]);
                        crate::train::kernels::pooling::maxpool_forward(
                            ps,
                            &y,
                            &mut want,
                            &mut want_arg,
                        )
                        .unwrap();
                        let (mut got, mut got_arg) = (vec![f32::NAN; out], vec![0u32; out]);
                        let a = Some(&mut got_arg[..]);
                        forward_relu_pool(&s, &x, &wt, Some(&b), &mut got, a, &mut ws, &mut g)
                            .unwrap();
                        assert_eq!(got, want, "pooled {n}×{c_in}→{c_out} {h}×{w}");
                        assert_eq!(got_arg, want_arg, "argmax {n}×{c_in}→{c_out} {h}×{w}");
                        // Backward from the pool's gradient, expanded row by row: the
                        // same dx and dW as from the expanded tensor, bit for bit.
                        let (dyp, full, bad_arg) = pooled_case(ps, &want, &want_arg, dy.len());
                        let pooled = Dy::Pooled {
                            dy: &dyp,
                            argmax: &want_arg,
                            y: &want,
                        };
                        let mut grads = Vec::new();
                        for src in [Dy::Plain(&full), pooled] {
                            let (mut dx, mut dw) = (vec![f32::NAN; x.len()], vec![0.5; wt.len()]);
                            let (dxs, dws) = (Some(&mut dx[..]), Some(&mut dw[..]));
                            backward(&s, &x, &wt, src, dxs, dws, true, &mut ws, &mut g).unwrap();
                            grads.push((dx, dw));
                        }
                        assert!(grads[0] == grads[1], "pooled {n}×{c_in}→{c_out} {h}×{w}");
                        let bad = Dy::Pooled {
                            dy: &dyp,
                            argmax: &bad_arg,
                            y: &want,
                        };
                        let mut dx = vec![0.0; x.len()];
                        for (dx, dw) in
                            [(Some(&mut dx[..]), None), (None, Some(&mut grads[0].1[..]))]
                        {
                            let e = backward(&s, &x, &wt, bad, dx, dw, false, &mut ws, &mut g)
                                .unwrap_err()
                                .to_string();
                            assert!(e.contains("outside its window"), "{e}");
                        }
                    }
                    let mut dx = vec![f32::NAN; x.len()];
                    let mut dw = vec![1.0; wt.len()];
                    backward(
                        &s,
                        &x,
                        &wt,
                        Dy::Plain(&dy),
                        Some(&mut dx),
                        Some(&mut dw),
                        true,
                        &mut ws,
                        &mut g,
                    )
                    .unwrap();
                    close("dx", &dx, &dx0, "winograd");
                    let dw1: Vec<f32> = dw0.iter().map(|v| v + 1.0).collect();
                    close("dw (added)", &dw, &dw1, "winograd");
                    backward(
                        &s,
                        &x,
                        &wt,
                        Dy::Plain(&dy),
                        None,
                        Some(&mut dw),
                        false,
                        &mut ws,
                        &mut g,
                    )
                    .unwrap();
                    close("dw", &dw, &dw0, "winograd");
                }
            }
        }
    }

    /// The trainer sizes workspaces for one image and runs micro-batches: the lengths
    /// must not grow with the batch, or a larger batch would fall back to im2col.
    #[test]
    fn workspace_does_not_grow_with_the_batch() {
        for &(c_in, c_out, hw) in &[(32, 64, 128), (64, 128, 64), (8, 8, 5)] {
            let one = Conv2dShape {
                n: 1,
                c_in,
                h: hw,
                w: hw,
                c_out,
                kh: 3,
                kw: 3,
                stride: 1,
                pad: 1,
            };
            for n in [2, 16, 64] {
                let s = Conv2dShape { n, ..one };
                for t in [1, 2, 3] {
                    assert_eq!(forward_workspace_len(&s, t), forward_workspace_len(&one, t));
                    for (dw, dx) in [(true, true), (true, false), (false, true)] {
                        assert_eq!(
                            backward_workspace_len(&s, t, dw, dx),
                            backward_workspace_len(&one, t, dw, dx)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn short_workspace_is_an_error() {
        let s = Conv2dShape {
            n: 1,
            c_in: 8,
            h: 4,
            w: 4,
            c_out: 8,
            kh: 3,
            kw: 3,
            stride: 1,
            pad: 1,
        };
        let x = vals(s.input_len(), 1);
        let wt = vals(s.weight_len(), 2);
        let mut y = vec![0.0; 8 * 16];
        let mut pack = vec![0.0; pack_len()];
        let mut g = Gemm {
            threads: 1,
            pack: &mut pack,
            workers: None,
        };
        let mut ws = vec![0.0; forward_workspace_len(&s, 1) - 1];
        let err = forward(&s, &x, &wt, None, &mut y, &mut ws, &mut g, false).unwrap_err();
        assert!(err.to_string().contains("winograd workspace"), "{err}");
    }
}
