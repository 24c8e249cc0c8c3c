//! The F(4, 3) transforms: `Bᵀ d B` of input tiles, `G g Gᵀ` of filters (packed as the
//! GEMM's A panels), `Aᵀ m A` of output tiles, and for the weight gradient `A e Aᵀ` of
//! `dy` tiles and `Gᵀ m G` of the accumulated sums. Tiles go 16 at a time ([`Lanes`]),
//! so the compiler vectorises the lane loops.

use super::{Geo, LANES, Lanes, M, P, XI};
use crate::train::kernels::conv::{Conv2dShape, Dy};
use crate::train::kernels::sgemm::{MR, NR};

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
pub(super) fn panels(rows: usize) -> usize {
    rows.div_ceil(MR)
}

/// Floats of the transformed, packed weights of a pass to `rows` output channels.
pub(super) fn u_len(rows: usize, cols: usize) -> usize {
    XI * panels(rows) * MR * cols
}

/// Transformed weights packed as A panels, `u[ξ][o / MR][i][o % MR]` (`o` < `rows`, `i`
/// < `cols`), for a forward pass (`rotate`: false, `o` = output channel) or the input
/// gradient (`rotate`: true, `o` = input channel, the filter turned by 180°).
pub(super) fn weight_transform(s: &Conv2dShape, w: &[f32], rotate: bool, u: &mut [f32]) {
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
pub(super) fn src_row(
    src: Dy<'_>,
    (h, w): (usize, usize),
    p: usize,
    iy: usize,
    out: &mut [f32],
) -> bool {
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
pub(super) fn fill_rows(geo: &Geo, src: Dy<'_>, p: usize, ty: usize, prow: &mut [f32]) -> bool {
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
pub(super) fn input_transform(
    prow: &[f32],
    len: usize,
    p: usize,
    put: &mut impl FnMut(usize, &Lanes),
) {
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
pub(super) fn transform_chunk(
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
pub(super) fn output_transform(m: &[Lanes; XI]) -> [[Lanes; M]; M] {
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

/// `A e Aᵀ` of the 4×4 `dy` tiles of panel `p` (four padded rows, zero past the plane).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // the loop picks the inner axis of `t`/`u`
pub(super) fn grad_transform(
    rows: &[f32],
    len: usize,
    p: usize,
    put: &mut impl FnMut(usize, &Lanes),
) {
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
pub(super) fn filter_grad(m: &[f32; XI], out: &mut [f32]) {
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
