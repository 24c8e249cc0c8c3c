//! Convolution by im2col + GEMM, for every shape: each image is lowered into a
//! `[c_in·kh·kw, oh·ow]` matrix and multiplied once (forward `W·col`; backward
//! `dy·colᵀ` for the weights and `Wᵀ·dy` + col2im for the input).

use super::super::workers::{SharedMut, split};
use super::super::{Gemm, Mat, check_min_len, matmul};
use super::{Conv2dShape, src};
use crate::error::Result;

/// Workspace floats of one image's im2col matrix at output size `(oh, ow)`.
pub(super) fn col_len(s: &Conv2dShape, (oh, ow): (usize, usize)) -> usize {
    s.c_in * s.kh * s.kw * oh * ow
}

/// Output columns `[lo, hi)` whose input column `ox·stride + kx − pad` lies in the row.
#[inline]
fn valid_cols(s: &Conv2dShape, kx: usize, ow: usize) -> (usize, usize) {
    let lo = s.pad.saturating_sub(kx).div_ceil(s.stride).min(ow);
    // ox·stride + kx − pad < w  ⇔  ox < (w + pad − kx) / stride, rounded up.
    let hi = (s.w + s.pad)
        .checked_sub(kx)
        .map_or(0, |v| v.div_ceil(s.stride))
        .min(ow);
    (lo, hi.max(lo))
}

/// One image `[c_in, h, w]` into `col [c_in·kh·kw, oh·ow]`: each row is a shifted
/// (strided) copy of input rows with zeros where the window reads padding.
/// Channels `c0..c1` only; `col` holds just their rows.
fn im2col_channels(
    s: &Conv2dShape,
    oh: usize,
    ow: usize,
    x: &[f32],
    col: &mut [f32],
    c0: usize,
    c1: usize,
) {
    let ohw = oh * ow;
    for ci in c0..c1 {
        let plane = &x[ci * s.h * s.w..(ci + 1) * s.h * s.w];
        for ky in 0..s.kh {
            for kx in 0..s.kw {
                let r = ((ci - c0) * s.kh + ky) * s.kw + kx;
                let row = &mut col[r * ohw..(r + 1) * ohw];
                let (lo, hi) = valid_cols(s, kx, ow);
                for oy in 0..oh {
                    let out = &mut row[oy * ow..(oy + 1) * ow];
                    let Some(iy) = src(oy, ky, s, s.h) else {
                        out.fill(0.0);
                        continue;
                    };
                    out[..lo].fill(0.0);
                    out[hi..].fill(0.0);
                    if hi > lo {
                        let start = iy * s.w + lo * s.stride + kx - s.pad;
                        if s.stride == 1 {
                            out[lo..hi].copy_from_slice(&plane[start..start + hi - lo]);
                        } else {
                            let src_row = &plane[start..];
                            for (o, v) in
                                out[lo..hi].iter_mut().zip(src_row.iter().step_by(s.stride))
                            {
                                *o = *v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Adds `col [c_in·kh·kw, oh·ow]` back into one zeroed image `dx [c_in, h, w]`.
/// Channels `c0..c1` only; `dx` holds just their planes.
fn col2im_channels(
    s: &Conv2dShape,
    oh: usize,
    ow: usize,
    col: &[f32],
    dx: &mut [f32],
    c0: usize,
    c1: usize,
) {
    let ohw = oh * ow;
    dx.fill(0.0);
    for ci in c0..c1 {
        let plane = &mut dx[(ci - c0) * s.h * s.w..(ci - c0 + 1) * s.h * s.w];
        for ky in 0..s.kh {
            for kx in 0..s.kw {
                let r = (ci * s.kh + ky) * s.kw + kx;
                let row = &col[r * ohw..(r + 1) * ohw];
                let (lo, hi) = valid_cols(s, kx, ow);
                if hi <= lo {
                    continue;
                }
                for oy in 0..oh {
                    let Some(iy) = src(oy, ky, s, s.h) else {
                        continue;
                    };
                    let start = iy * s.w + lo * s.stride + kx - s.pad;
                    let from = &row[oy * ow + lo..oy * ow + hi];
                    if s.stride == 1 {
                        for (d, v) in plane[start..start + hi - lo].iter_mut().zip(from) {
                            *d += v;
                        }
                    } else {
                        for (d, v) in plane[start..].iter_mut().step_by(s.stride).zip(from) {
                            *d += v;
                        }
                    }
                }
            }
        }
    }
}

/// [`im2col_channels`] over every channel, split over the GEMM's helper threads.
fn par_im2col(s: &Conv2dShape, oh: usize, ow: usize, x: &[f32], col: &mut [f32], g: &Gemm<'_>) {
    let rows = s.kh * s.kw * oh * ow;
    let shared = SharedMut::new(col);
    split(g.workers, s.c_in, &|c0, c1| {
        // Safety: channel ranges of one split are disjoint, so are their row blocks.
        let part = unsafe { shared.range(c0 * rows, (c1 - c0) * rows) };
        im2col_channels(s, oh, ow, x, part, c0, c1);
    });
}

/// [`col2im_channels`] over every channel, split over the GEMM's helper threads.
fn par_col2im(s: &Conv2dShape, oh: usize, ow: usize, col: &[f32], dx: &mut [f32], g: &Gemm<'_>) {
    let plane = s.h * s.w;
    let shared = SharedMut::new(dx);
    split(g.workers, s.c_in, &|c0, c1| {
        // Safety: channel ranges of one split are disjoint, so are their planes.
        let part = unsafe { shared.range(c0 * plane, (c1 - c0) * plane) };
        col2im_channels(s, oh, ow, col, part, c0, c1);
    });
}

/// Forward pass `y = conv(x, w) + b` (then ReLU when `relu`), one GEMM per image;
/// `workspace` needs [`col_len`] floats. Lengths are checked by the caller.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward(
    s: &Conv2dShape,
    (oh, ow): (usize, usize),
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    workspace: &mut [f32],
    gemm: &mut Gemm<'_>,
    relu: bool,
) -> Result<()> {
    let (ohw, k, in_img) = (oh * ow, s.c_in * s.kh * s.kw, s.c_in * s.h * s.w);
    let col_len = k * ohw;
    check_min_len("conv workspace", workspace.len(), col_len)?;
    let col = &mut workspace[..col_len];
    for i in 0..s.n {
        let yi = &mut y[i * s.c_out * ohw..(i + 1) * s.c_out * ohw];
        if let Some(b) = b {
            for (plane, &bv) in yi.chunks_exact_mut(ohw.max(1)).zip(b) {
                plane.fill(bv);
            }
        }
        par_im2col(s, oh, ow, &x[i * in_img..(i + 1) * in_img], col, gemm);
        let wm = Mat {
            data: w,
            transposed: false,
        };
        let cm = Mat {
            data: col,
            transposed: false,
        };
        matmul(s.c_out, ohw, k, yi, b.is_some(), wm, cm, gemm)?;
        if relu {
            yi.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
    Ok(())
}

/// Backward pass without the bias: `dw` (added to when `accumulate`) and `dx`
/// (overwritten), each only when given; `workspace` needs one [`col_len`] matrix for
/// each. Lengths are checked by the caller.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    s: &Conv2dShape,
    (oh, ow): (usize, usize),
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    (mut dx, mut dw): (Option<&mut [f32]>, Option<&mut [f32]>),
    accumulate: bool,
    workspace: &mut [f32],
    gemm: &mut Gemm<'_>,
) -> Result<()> {
    let (ohw, k, in_img) = (oh * ow, s.c_in * s.kh * s.kw, s.c_in * s.h * s.w);
    let col_len = k * ohw;
    let (col_dw, col_dx) = (
        if dw.is_some() { col_len } else { 0 },
        if dx.is_some() { col_len } else { 0 },
    );
    check_min_len("conv workspace", workspace.len(), col_dw + col_dx)?;
    let (col, rest) = workspace.split_at_mut(col_dw);
    let dcol = &mut rest[..col_dx];
    if let (0, Some(dw), false) = (s.n, dw.as_deref_mut(), accumulate) {
        dw.fill(0.0);
    }
    for i in 0..s.n {
        let dyi = &dy[i * s.c_out * ohw..(i + 1) * s.c_out * ohw];
        let dym = Mat {
            data: dyi,
            transposed: false,
        };
        if let Some(dw) = dw.as_deref_mut() {
            par_im2col(s, oh, ow, &x[i * in_img..(i + 1) * in_img], col, gemm);
            let colt = Mat {
                data: col,
                transposed: true,
            };
            matmul(s.c_out, k, ohw, dw, accumulate || i > 0, dym, colt, gemm)?;
        }
        if let Some(dx) = dx.as_deref_mut() {
            let wt = Mat {
                data: w,
                transposed: true,
            };
            matmul(k, ohw, s.c_out, dcol, false, wt, dym, gemm)?;
            par_col2im(s, oh, ow, dcol, &mut dx[i * in_img..(i + 1) * in_img], gemm);
        }
    }
    Ok(())
}
