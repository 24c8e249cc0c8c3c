//! The direct path's forward pass: per output row, the shifted input rows copied into
//! the micro-kernel's B panels and one micro-tile call per 6-channel × 16-pixel tile;
//! and the same with ReLU and the 2×2/2 max-pool applied to row pairs as they come out.

use super::{a_len, fwd_part_len, padded_row, wp};
use crate::error::Result;
use crate::train::kernels::conv::Conv2dShape;
use crate::train::kernels::sgemm::{MR, NR, micro_tile};
use crate::train::kernels::workers::SharedMut;
use crate::train::kernels::{Gemm, check_len, check_min_len};

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

/// Forward pass `y = conv(x, w) + b` (see [`applies`](super::applies)); `workspace` needs
/// [`super::forward_workspace_len`] floats.
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

/// Conv + bias + ReLU + 2×2/2 max-pool in one pass (see [`super::applies`]; the pool
/// must tile the output exactly, `h` and `w` even): writes the pooled output
/// `[n, c_out, h/2, w/2]` and, when given, the argmax of each window as an index into
/// its `h × w` plane, exactly as ReLU then `maxpool_forward_opt` would; the full-size
/// ReLU output is never written. `workspace` needs [`relu_pool_workspace_len`] floats.
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
