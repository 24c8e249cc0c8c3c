//! Direct 3×3 stride-1 "same" convolution for layers with few input channels (the first
//! layer of an RGB network: 3 → 32 at 256×256 in the lean model), where Winograd's GEMMs
//! would be too shallow and im2col + GEMM spends more time writing and re-reading the
//! 27-row im2col matrix than multiplying.
//!
//! - **Forward**: per output row, the `c_in·9` shifted input rows are copied straight
//!   into the micro-kernel's B panels (16 output pixels each, a few KiB that stay in L1),
//!   and each 6-channel × 16-pixel tile of the output comes from one [`micro_tile`] call
//!   of depth `c_in·9` against the packed weights. Nothing of image size is written
//!   besides the output.
//! - **Weight gradient**: `dW[co][ci, ky, kx] = Σ dy[co] · x[ci] shifted` as dot products
//!   along each output row, 4 output channels × 3 horizontal taps at a time in 8-lane
//!   accumulators (12 vector registers), so neither operand is packed or transposed.
//!   Each thread sums its own rows; the parts are added at the end. When the conv is
//!   followed by ReLU and a 2×2/2 max-pool, `dy` can come as the pool's gradient
//!   ([`Dy::Pooled`]): each row pair of the conv's output gradient is expanded in a
//!   thread's scratch right before use, so that image-sized gradient is never written.
//!
//! The input gradient is not computed here: a first layer has none, and other layers
//! this narrow take the im2col path.

use super::{Conv2dShape, Dy, check_dy};
use crate::error::{Error, Result};
use crate::train::kernels::pooling::unpool_relu_rows;
use crate::train::kernels::sgemm::{MR, NR, micro_tile};
use crate::train::kernels::workers::SharedMut;
use crate::train::kernels::{Gemm, check_len, check_min_len};

/// Largest `c_in·9` handled here (one micro-kernel call per tile, panels in L1).
const MAX_DEPTH: usize = 63;
/// Lanes of the weight gradient's accumulators.
const L: usize = 8;
/// Output channels per weight-gradient block.
const CB: usize = 4;

/// Whether this path computes the convolution: 3×3, stride 1, padding 1, output the
/// size of the input, and at most 7 input channels.
pub(crate) fn applies(s: &Conv2dShape, hw: (usize, usize)) -> bool {
    s.kh == 3
        && s.kw == 3
        && s.stride == 1
        && s.pad == 1
        && hw == (s.h, s.w)
        && s.c_in * 9 <= MAX_DEPTH
        && s.c_in > 0
}

/// Output pixels per row rounded up to whole panels.
fn wp(w: usize) -> usize {
    w.div_ceil(NR).max(1) * NR
}

/// Weight panels (`[co / MR][j][co % MR]`, `j` = `ci·9 + ky·3 + kx`).
fn a_len(s: &Conv2dShape) -> usize {
    s.c_out.div_ceil(MR) * MR * s.c_in * 9
}

/// One thread's forward scratch: the row's B panels and one padded input row.
fn fwd_part_len(s: &Conv2dShape) -> usize {
    s.c_in * 9 * wp(s.w) + wp(s.w) + 2
}

/// Fixed groups of rows whose weight-gradient sums are kept apart and added in order,
/// so the result does not depend on the thread count (threads take whole groups).
const GROUPS: usize = 8;

/// One group's lane accumulators.
fn dw_acc_len(s: &Conv2dShape) -> usize {
    s.c_out * s.c_in * 9 * L
}

/// One thread's weight-gradient scratch: padded input rows, then two rows of `dy` per
/// output channel (expanded from a pooled gradient).
fn dw_part_len(s: &Conv2dShape) -> usize {
    3 * s.c_in * (s.w + 2) + 2 * s.c_out * s.w
}

/// Workspace floats [`forward`] needs on `threads` threads.
pub(crate) fn forward_workspace_len(s: &Conv2dShape, threads: usize) -> usize {
    a_len(s) + Gemm::resolve_threads(threads) * fwd_part_len(s)
}

/// Workspace floats [`weight_grad`] needs on `threads` threads.
pub(crate) fn weight_grad_workspace_len(s: &Conv2dShape, threads: usize) -> usize {
    GROUPS * dw_acc_len(s) + Gemm::resolve_threads(threads) * dw_part_len(s)
}

/// Copies input row `iy` of `plane` into `buf[1..=w]` with zeros around (and for rows
/// outside the plane).
fn padded_row(plane: &[f32], w: usize, h: usize, iy: usize, buf: &mut [f32]) {
    if iy < h {
        buf[0] = 0.0;
        buf[1..=w].copy_from_slice(&plane[iy * w..(iy + 1) * w]);
        buf[w + 1..].fill(0.0);
    } else {
        buf.fill(0.0);
    }
}

/// The micro-kernel's B panels for output row `oy` of image `img`: `panels[p][j][px]`
/// holds input `j = (ci, ky, kx)` under output pixel `p·16 + px`.
#[inline(always)]
fn fill_panels(
    s: &Conv2dShape,
    x: &[f32],
    img: usize,
    oy: usize,
    panels: &mut [f32],
    buf: &mut [f32],
) {
    let (k, w, plane) = (s.c_in * 9, s.w, s.h * s.w);
    let np = wp(w) / NR;
    for ci in 0..s.c_in {
        let src = &x[(img * s.c_in + ci) * plane..(img * s.c_in + ci + 1) * plane];
        for ky in 0..3 {
            padded_row(src, w, s.h, (oy + ky).wrapping_sub(1), buf);
            for kx in 0..3 {
                let j = ci * 9 + ky * 3 + kx;
                for p in 0..np {
                    let from: &[f32; NR] = buf[p * NR + kx..p * NR + kx + NR]
                        .try_into()
                        .expect("one panel row");
                    let o = (p * k + j) * NR;
                    let to: &mut [f32; NR] =
                        (&mut panels[o..o + NR]).try_into().expect("one panel row");
                    *to = *from;
                }
            }
        }
    }
}

/// Forward rows `rows` (each `(image, oy)` as `image·h + oy`) of one part.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_rows(
    s: &Conv2dShape,
    rows: std::ops::Range<usize>,
    x: &[f32],
    a: &[f32],
    (b, relu): (Option<&[f32]>, bool),
    y: &SharedMut,
    panels: &mut [f32],
    buf: &mut [f32],
) {
    let floor = if relu { 0.0 } else { f32::NEG_INFINITY };
    let (k, w) = (s.c_in * 9, s.w);
    let np = wp(w) / NR;
    let mut tile = [0.0f32; MR * NR];
    for row in rows {
        let (img, oy) = (row / s.h, row % s.h);
        fill_panels(s, x, img, oy, panels, buf);
        for cp in 0..s.c_out.div_ceil(MR) {
            let ap = &a[cp * k * MR..(cp + 1) * k * MR];
            for p in 0..np {
                micro_tile(k, ap, &panels[p * k * NR..(p + 1) * k * NR], &mut tile);
                let cols = NR.min(w - p * NR);
                for r in 0..MR.min(s.c_out - cp * MR) {
                    let co = cp * MR + r;
                    let bv = b.map_or(0.0, |b| b[co]);
                    let at = ((img * s.c_out + co) * s.h + oy) * w + p * NR;
                    // Safety: output row (img, co, oy) belongs to this part's rows only.
                    let dst = unsafe { y.range(at, cols) };
                    for (d, t) in dst.iter_mut().zip(&tile[r * NR..r * NR + cols]) {
                        *d = (t + bv).max(floor);
                    }
                }
            }
        }
    }
}

/// [`forward_rows`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_rows_avx2(
    s: &Conv2dShape,
    rows: std::ops::Range<usize>,
    x: &[f32],
    a: &[f32],
    b: (Option<&[f32]>, bool),
    y: &SharedMut,
    panels: &mut [f32],
    buf: &mut [f32],
) {
    forward_rows(s, rows, x, a, b, y, panels, buf)
}

/// The weights as the micro-kernel's A panels (`[co / MR][j][co % MR]`, zero-padded).
fn pack_weights(s: &Conv2dShape, w: &[f32], a: &mut [f32]) {
    let k = s.c_in * 9;
    a.fill(0.0);
    for co in 0..s.c_out {
        for j in 0..k {
            a[((co / MR) * k + j) * MR + co % MR] = w[co * k + j];
        }
    }
}

/// Forward pass `y = conv(x, w) + b` (see [`applies`]); `workspace` needs
/// [`forward_workspace_len`] floats.
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
    check_len("conv input", x.len(), s.input_len())?;
    check_len("conv weight", w.len(), s.weight_len())?;
    check_len("conv output", y.len(), s.n * s.c_out * s.h * s.w)?;
    if let Some(b) = b {
        check_len("conv bias", b.len(), s.c_out)?;
    }
    let rows = s.n * s.h;
    let parts = g.parts().min(rows).max(1);
    let (alen, plen) = (a_len(s), fwd_part_len(s));
    check_min_len("conv workspace", workspace.len(), alen + parts * plen)?;
    let (a, scratch) = workspace.split_at_mut(alen);
    let k = s.c_in * 9;
    pack_weights(s, w, a);
    let a = &*a;
    let (ys, scr) = (SharedMut::new(y), SharedMut::new(scratch));
    let avx = crate::train::kernels::avx2_fma();
    g.run_parts(parts, &|part| {
        // Safety: each part takes its own scratch block.
        let sc = unsafe { scr.range(part * plen, plen) };
        let (panels, buf) = sc.split_at_mut(k * wp(s.w));
        let range = rows * part / parts..rows * (part + 1) / parts;
        #[cfg(target_arch = "x86_64")]
        if avx {
            // Safety: AVX2 and FMA were detected.
            unsafe { forward_rows_avx2(s, range, x, a, (b, relu), &ys, panels, buf) };
            return;
        }
        let _ = avx;
        forward_rows(s, range, x, a, (b, relu), &ys, panels, buf);
    });
    Ok(())
}

/// Workspace floats [`forward_relu_pool`] needs on `threads` threads (panels for two
/// output rows).
pub(crate) fn relu_pool_workspace_len(s: &Conv2dShape, threads: usize) -> usize {
    a_len(s) + Gemm::resolve_threads(threads) * (fwd_part_len(s) + s.c_in * 9 * wp(s.w))
}

/// Pairs of output rows `pairs` (each `(image, oy / 2)`) of one part, conv + bias +
/// ReLU, then the 2×2/2 max-pool straight from the two rows' tiles.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn relu_pool_rows(
    s: &Conv2dShape,
    pairs: std::ops::Range<usize>,
    x: &[f32],
    a: &[f32],
    b: Option<&[f32]>,
    (y, arg): (&SharedMut, Option<&SharedMut<u32>>),
    (panels, buf): (&mut [f32], &mut [f32]),
) {
    let (k, w, half) = (s.c_in * 9, s.w, s.h / 2);
    let (pw, np) = (w / 2, wp(w) / NR);
    let (top, bottom) = panels.split_at_mut(k * wp(w));
    let (mut t0, mut t1) = ([0.0f32; MR * NR], [0.0f32; MR * NR]);
    for pair in pairs {
        let (img, py) = (pair / half, pair % half);
        fill_panels(s, x, img, 2 * py, top, buf);
        fill_panels(s, x, img, 2 * py + 1, bottom, buf);
        for cp in 0..s.c_out.div_ceil(MR) {
            let ap = &a[cp * k * MR..(cp + 1) * k * MR];
            for p in 0..np {
                micro_tile(k, ap, &top[p * k * NR..(p + 1) * k * NR], &mut t0);
                micro_tile(k, ap, &bottom[p * k * NR..(p + 1) * k * NR], &mut t1);
                let cols = (NR.min(w - p * NR)) / 2;
                for r in 0..MR.min(s.c_out - cp * MR) {
                    let co = cp * MR + r;
                    let bv = b.map_or(0.0, |b| b[co]);
                    let at = ((img * s.c_out + co) * half + py) * pw + p * NR / 2;
                    // Safety: pooled row (img, co, py) belongs to this part's pairs only.
                    let dst = unsafe { y.range(at, cols) };
                    // Safety: as above; the argmax has one entry per pooled output.
                    let mut dst_arg = arg.map(|g| unsafe { g.range(at, cols) });
                    let base = (2 * py * w + p * NR) as u32;
                    for (j, d) in dst.iter_mut().enumerate() {
                        let i = r * NR + 2 * j;
                        // The same winner as `maxpool_forward_opt`, on the ReLU's outputs.
                        let (va, vb) = ((t0[i] + bv).max(0.0), (t0[i + 1] + bv).max(0.0));
                        let (vc, vd) = ((t1[i] + bv).max(0.0), (t1[i + 1] + bv).max(0.0));
                        let (m, c) = crate::train::kernels::pooling::max_of_window4(va, vb, vc, vd);
                        *d = m;
                        if let Some(ga) = dst_arg.as_deref_mut() {
                            ga[j] = base + 2 * j as u32 + (c & 1) + (c >> 1) * w as u32;
                        }
                    }
                }
            }
        }
    }
}

/// [`relu_pool_rows`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn relu_pool_rows_avx2(
    s: &Conv2dShape,
    pairs: std::ops::Range<usize>,
    x: &[f32],
    a: &[f32],
    b: Option<&[f32]>,
    out: (&SharedMut, Option<&SharedMut<u32>>),
    bufs: (&mut [f32], &mut [f32]),
) {
    relu_pool_rows(s, pairs, x, a, b, out, bufs)
}

/// Conv + bias + ReLU + 2×2/2 max-pool in one pass (see [`applies`]; the pool must tile
/// the output exactly, `h` and `w` even): writes
/// the pooled output `[n, c_out, h/2, w/2]` and, when given, the argmax of each window
/// as an index into its `h × w` plane, exactly as ReLU then `maxpool_forward_opt`
/// would; the full-size ReLU output is never written. `workspace` needs
/// [`relu_pool_workspace_len`] floats.
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
    let out = s.n * s.c_out * (s.h / 2) * (s.w / 2);
    check_len("conv input", x.len(), s.input_len())?;
    check_len("conv weight", w.len(), s.weight_len())?;
    check_len("max-pool output", y.len(), out)?;
    if let Some(a) = argmax.as_deref() {
        check_len("max-pool argmax", a.len(), out)?;
    }
    if let Some(b) = b {
        check_len("conv bias", b.len(), s.c_out)?;
    }
    let pairs = s.n * s.h / 2;
    let parts = g.parts().min(pairs).max(1);
    let (alen, plen) = (a_len(s), fwd_part_len(s) + s.c_in * 9 * wp(s.w));
    check_min_len("conv workspace", workspace.len(), alen + parts * plen)?;
    let (a, scratch) = workspace.split_at_mut(alen);
    let k = s.c_in * 9;
    pack_weights(s, w, a);
    let a = &*a;
    let ys = SharedMut::new(y);
    let args = argmax.map(SharedMut::new);
    let scr = SharedMut::new(scratch);
    let avx = crate::train::kernels::avx2_fma();
    g.run_parts(parts, &|part| {
        // Safety: each part takes its own scratch block.
        let sc = unsafe { scr.range(part * plen, plen) };
        let (panels, buf) = sc.split_at_mut(2 * k * wp(s.w));
        let range = pairs * part / parts..pairs * (part + 1) / parts;
        let out = (&ys, args.as_ref());
        #[cfg(target_arch = "x86_64")]
        if avx {
            // Safety: AVX2 and FMA were detected.
            unsafe { relu_pool_rows_avx2(s, range, x, a, b, out, (panels, buf)) };
            return;
        }
        let _ = avx;
        relu_pool_rows(s, range, x, a, b, out, (panels, buf));
    });
    Ok(())
}

/// Weight-gradient sums of rows `rows` into `acc[co][j][lane]`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // lane loops index several arrays in step
fn weight_grad_rows(
    s: &Conv2dShape,
    rows: std::ops::Range<usize>,
    x: &[f32],
    src: Dy<'_>,
    acc: &mut [f32],
    bufs: &mut [f32],
    avx: bool,
) -> Option<usize> {
    let _ = avx;
    let (w, plane, k) = (s.w, s.h * s.w, s.c_in * 9);
    let stride = w + 2;
    let wv = w / L * L;
    let (bufs, drows) = bufs.split_at_mut(3 * s.c_in * stride);
    for row in rows.clone() {
        let (img, oy) = (row / s.h, row % s.h);
        if let Dy::Pooled { dy, argmax, y } = src
            && (oy % 2 == 0 || row == rows.start)
        {
            // Both rows of this pair, every output channel.
            let ow = w / 2;
            for (co, pair) in drows.chunks_exact_mut(2 * w).take(s.c_out).enumerate() {
                let o = ((img * s.c_out + co) * (s.h / 2) + oy / 2) * ow;
                let r = o..o + ow;
                let (top, bottom) = pair.split_at_mut(w);
                let r0 = (oy / 2) * 2 * w;
                if let Some(ox) =
                    unpool_relu_rows(r0, &y[r.clone()], &dy[r], &argmax[o..o + ow], top, bottom)
                {
                    return Some(o + ox);
                }
            }
        }
        for ci in 0..s.c_in {
            let src = &x[(img * s.c_in + ci) * plane..(img * s.c_in + ci + 1) * plane];
            for ky in 0..3 {
                let at = (ci * 3 + ky) * stride;
                padded_row(
                    src,
                    w,
                    s.h,
                    (oy + ky).wrapping_sub(1),
                    &mut bufs[at..at + stride],
                );
            }
        }
        for c0 in (0..s.c_out).step_by(CB) {
            let cb = CB.min(s.c_out - c0);
            let dyr = |c: usize| match src {
                Dy::Plain(dy) => {
                    let at = ((img * s.c_out + c0 + c) * s.h + oy) * w;
                    &dy[at..at + w]
                }
                Dy::Pooled { .. } => {
                    let at = ((c0 + c) * 2 + oy % 2) * w;
                    &drows[at..at + w]
                }
            };
            for ci in 0..s.c_in {
                for ky in 0..3 {
                    let xr = &bufs[(ci * 3 + ky) * stride..(ci * 3 + ky + 1) * stride];
                    let mut a = [[[0.0f32; L]; 3]; CB];
                    #[cfg(target_arch = "x86_64")]
                    let vec_done = if avx && cb == CB {
                        let d = [dyr(0), dyr(1), dyr(2), dyr(3)];
                        // Safety: AVX2 and FMA were detected by the caller; rows hold
                        // `w` (dy) and `w + 2` (x) floats, and `wv ≤ w`.
                        unsafe { simd::dot4x3(xr, d, wv, &mut a) };
                        true
                    } else {
                        false
                    };
                    #[cfg(not(target_arch = "x86_64"))]
                    let vec_done = false;
                    for px in (0..if vec_done { 0 } else { wv }).step_by(L) {
                        let mut xv = [[0.0f32; L]; 3];
                        for (kx, v) in xv.iter_mut().enumerate() {
                            v.copy_from_slice(&xr[px + kx..px + kx + L]);
                        }
                        for c in 0..cb {
                            let d: &[f32; L] = dyr(c)[px..px + L].try_into().expect("8 lanes");
                            for kx in 0..3 {
                                for l in 0..L {
                                    a[c][kx][l] += d[l] * xv[kx][l];
                                }
                            }
                        }
                    }
                    for px in wv..w {
                        for c in 0..cb {
                            let d = dyr(c)[px];
                            for kx in 0..3 {
                                a[c][kx][0] += d * xr[px + kx];
                            }
                        }
                    }
                    for c in 0..cb {
                        for kx in 0..3 {
                            let j = ci * 9 + ky * 3 + kx;
                            let o = ((c0 + c) * k + j) * L;
                            for l in 0..L {
                                acc[o + l] += a[c][kx][l];
                            }
                        }
                    }
                }
            }
        }
    }
    None
}

/// [`weight_grad_rows`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn weight_grad_rows_avx2(
    s: &Conv2dShape,
    rows: std::ops::Range<usize>,
    x: &[f32],
    src: Dy<'_>,
    acc: &mut [f32],
    bufs: &mut [f32],
) -> Option<usize> {
    weight_grad_rows(s, rows, x, src, acc, bufs, true)
}

/// Weight gradient `dw [c_out, c_in, 3, 3]` from `x` and `dy`, added to when `add`;
/// `workspace` needs [`weight_grad_workspace_len`] floats.
#[allow(clippy::too_many_arguments)]
pub(crate) fn weight_grad(
    s: &Conv2dShape,
    x: &[f32],
    dy: Dy<'_>,
    dw: &mut [f32],
    add: bool,
    workspace: &mut [f32],
    g: &mut Gemm<'_>,
) -> Result<()> {
    check_len("conv input", x.len(), s.input_len())?;
    check_dy(s, dy)?;
    check_len("conv dw", dw.len(), s.weight_len())?;
    let rows = s.n * s.h;
    let groups = GROUPS.min(rows).max(1);
    let parts = g.parts().min(groups);
    let (acc_len, plen) = (dw_acc_len(s), dw_part_len(s));
    check_min_len(
        "conv workspace",
        workspace.len(),
        GROUPS * acc_len + parts * plen,
    )?;
    let (accs, scratch) = workspace.split_at_mut(GROUPS * acc_len);
    let (acc_s, scr) = (SharedMut::new(accs), SharedMut::new(scratch));
    let avx = crate::train::kernels::avx2_fma();
    let bad = std::sync::Mutex::new(None);
    g.run_parts(parts, &|part| {
        // Safety: each part takes its own scratch block.
        let bufs = unsafe { scr.range(part * plen, plen) };
        for group in groups * part / parts..groups * (part + 1) / parts {
            // Safety: each group's accumulators belong to the one part that takes it.
            let acc = unsafe { acc_s.range(group * acc_len, acc_len) };
            acc.fill(0.0);
            let range = rows * group / groups..rows * (group + 1) / groups;
            #[cfg(target_arch = "x86_64")]
            let outside = if avx {
                // Safety: AVX2 and FMA were detected.
                unsafe { weight_grad_rows_avx2(s, range, x, dy, acc, bufs) }
            } else {
                weight_grad_rows(s, range, x, dy, acc, bufs, false)
            };
            #[cfg(not(target_arch = "x86_64"))]
            let outside = weight_grad_rows(s, range, x, dy, acc, bufs, avx);
            if let Some(at) = outside {
                let mut slot = bad.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert(at);
            }
        }
    });
    if let (Some(at), Dy::Pooled { argmax, .. }) =
        (bad.into_inner().unwrap_or_else(|p| p.into_inner()), dy)
    {
        return Err(Error::Invalid(format!(
            "max-pool argmax {} outside its window (output element {at})",
            argmax[at]
        )));
    }
    // Add the groups' sums in order.
    for (i, d) in dw.iter_mut().enumerate() {
        let mut sum = 0.0f32;
        for grp in 0..groups {
            let o = grp * acc_len + i * L;
            sum += accs[o..o + L].iter().sum::<f32>();
        }
        if add {
            *d += sum;
        } else {
            *d = sum;
        }
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{CB, L};
    use std::arch::x86_64::*;

    /// `a[c][kx] += Σ_px dy[c][px] · x[px + kx]` over `px < wv` (a multiple of 8) in 12
    /// ymm accumulators: three loads of `x` and four of `dy` per 12 FMAs.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; `x` holds `wv + 2` floats or more, each `dy[c]`
    /// `wv` or more.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot4x3(
        x: &[f32],
        dy: [&[f32]; CB],
        wv: usize,
        a: &mut [[[f32; L]; 3]; CB],
    ) {
        assert!(x.len() >= wv + 2 && dy.iter().all(|d| d.len() >= wv));
        let mut acc = [[_mm256_setzero_ps(); 3]; CB];
        let xp = x.as_ptr();
        let dp = dy.map(<[f32]>::as_ptr);
        let mut px = 0;
        while px + L <= wv {
            // Safety: px + 2 + 8 ≤ wv + 2 ≤ x.len() and px + 8 ≤ wv ≤ dy[c].len().
            unsafe {
                let xv = [
                    _mm256_loadu_ps(xp.add(px)),
                    _mm256_loadu_ps(xp.add(px + 1)),
                    _mm256_loadu_ps(xp.add(px + 2)),
                ];
                for (c, ac) in acc.iter_mut().enumerate() {
                    let d = _mm256_loadu_ps(dp[c].add(px));
                    for (k, v) in ac.iter_mut().enumerate() {
                        *v = _mm256_fmadd_ps(d, xv[k], *v);
                    }
                }
            }
            px += L;
        }
        for (c, ac) in acc.iter().enumerate() {
            for (k, v) in ac.iter().enumerate() {
                // Safety: a[c][k] holds 8 floats.
                unsafe { _mm256_storeu_ps(a[c][k].as_mut_ptr(), *v) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::kernels::conv::{conv2d_backward_naive, conv2d_forward_naive};
    use crate::train::kernels::tests::{close, pooled_case, vals};
    use crate::train::kernels::workers::Workers;

    /// Forward and weight gradient against the nested loops: rows narrower and wider
    /// than a panel, widths not a multiple of 8, channel counts not a multiple of 6 or
    /// 4, 1–3 threads on helper threads and on rayon.
    #[test]
    fn matches_naive_loops() {
        for &(n, c_in, c_out, h, w) in &[
            (2, 3, 32, 6, 6),
            (2, 3, 8, 8, 34),
            (1, 1, 7, 5, 19),
            (3, 7, 13, 4, 40),
            (2, 3, 5, 9, 1),
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
            assert!(applies(&s, (h, w)));
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
                    let mut g = Gemm {
                        threads,
                        pack: &mut [],
                        workers: use_workers.then_some(&workers),
                    };
                    let len = forward_workspace_len(&s, threads)
                        .max(weight_grad_workspace_len(&s, threads));
                    let mut ws = vec![f32::NAN; len];
                    let mut y = vec![f32::NAN; dy.len()];
                    forward(&s, &x, &wt, Some(&b), &mut y, &mut ws, &mut g, false).unwrap();
                    close("y", &y, &y0, "direct");
                    forward(&s, &x, &wt, Some(&b), &mut y, &mut ws, &mut g, true).unwrap();
                    let relu0: Vec<f32> = y0.iter().map(|v| v.max(0.0)).collect();
                    close("relu(y)", &y, &relu0, "direct");
                    if h.is_multiple_of(2) && w.is_multiple_of(2) {
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
                        crate::train::kernels::pooling::maxpool_forward_opt(
                            ps,
                            &y,
                            &mut want,
                            Some(&mut want_arg),
                        )
                        .unwrap();
                        let mut big = vec![f32::NAN; relu_pool_workspace_len(&s, threads)];
                        let (mut got, mut got_arg) = (vec![f32::NAN; out], vec![0u32; out]);
                        forward_relu_pool(
                            &s,
                            &x,
                            &wt,
                            Some(&b),
                            &mut got,
                            Some(&mut got_arg),
                            &mut big,
                            &mut g,
                        )
                        .unwrap();
                        assert_eq!(got, want, "pooled {n}×{c_in}→{c_out} {h}×{w}");
                        assert_eq!(got_arg, want_arg, "argmax {n}×{c_in}→{c_out} {h}×{w}");
                        // The weight gradient from the pool's gradient equals the one
                        // from the expanded gradient, bit for bit.
                        let (dyp, full, bad_arg) = pooled_case(ps, &want, &want_arg, dy.len());
                        let (mut dwa, mut dwb) = (vec![0.5; wt.len()], vec![0.5; wt.len()]);
                        weight_grad(&s, &x, Dy::Plain(&full), &mut dwa, true, &mut ws, &mut g)
                            .unwrap();
                        let pooled = Dy::Pooled {
                            dy: &dyp,
                            argmax: &want_arg,
                            y: &want,
                        };
                        weight_grad(&s, &x, pooled, &mut dwb, true, &mut ws, &mut g).unwrap();
                        assert_eq!(dwa, dwb, "pooled dW {n}×{c_in}→{c_out} {h}×{w}");
                        let bad = Dy::Pooled {
                            dy: &dyp,
                            argmax: &bad_arg,
                            y: &want,
                        };
                        let e = weight_grad(&s, &x, bad, &mut dwb, true, &mut ws, &mut g)
                            .unwrap_err()
                            .to_string();
                        assert!(e.contains("outside its window"), "{e}");
                    }
                    let mut dw = vec![1.0; wt.len()];
                    weight_grad(&s, &x, Dy::Plain(&dy), &mut dw, true, &mut ws, &mut g).unwrap();
                    let dw1: Vec<f32> = dw0.iter().map(|v| v + 1.0).collect();
                    close("dw (added)", &dw, &dw1, "direct");
                    weight_grad(&s, &x, Dy::Plain(&dy), &mut dw, false, &mut ws, &mut g).unwrap();
                    close("dw", &dw, &dw0, "direct");
                }
            }
        }
    }
}
