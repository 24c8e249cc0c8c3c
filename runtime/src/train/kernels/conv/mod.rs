//! 2-D convolution on NCHW `f32`: any kernel size, stride, symmetric zero padding and an
//! optional bias; weights `[c_out, c_in, kh, kw]` as in ONNX `Conv`.
//!
//! The fast path lowers each image with im2col into a `[c_in·kh·kw, oh·ow]` workspace and
//! runs one GEMM per image (forward `W·col`; backward `dy·colᵀ` for the weights and
//! `Wᵀ·dy` + col2im for the input). The naive path is the direct nested loops.

use super::workers::{SharedMut, split};
use super::{Gemm, Mat, check_len, check_min_len, matmul, pack_for};
use super::{direct, winograd};
use crate::error::{Error, Result};

/// Shape of a convolution. Output size: `(h + 2·pad − kh) / stride + 1` (same for width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dShape {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels (filters).
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Step between output positions, both axes.
    pub stride: usize,
    /// Zero padding on every side.
    pub pad: usize,
}

impl Conv2dShape {
    /// Output `(height, width)`; an error when the kernel does not fit the padded input
    /// or the kernel or stride is 0.
    pub fn output_hw(&self) -> Result<(usize, usize)> {
        let (ph, pw) = (self.h + 2 * self.pad, self.w + 2 * self.pad);
        if self.kh == 0 || self.kw == 0 || self.stride == 0 || self.kh > ph || self.kw > pw {
            return Err(Error::Shape {
                what: "convolution kernel".into(),
                expected: format!(
                    "a non-empty kernel within the padded input {ph}×{pw}, stride ≥ 1"
                ),
                got: format!("kernel {}×{} stride {}", self.kh, self.kw, self.stride),
            });
        }
        Ok((
            (ph - self.kh) / self.stride + 1,
            (pw - self.kw) / self.stride + 1,
        ))
    }

    /// Elements of the input `[n, c_in, h, w]`.
    pub fn input_len(&self) -> usize {
        self.n * self.c_in * self.h * self.w
    }

    /// Elements of the weights `[c_out, c_in, kh, kw]`.
    pub fn weight_len(&self) -> usize {
        self.c_out * self.c_in * self.kh * self.kw
    }

    /// Elements of the output `[n, c_out, oh, ow]`.
    pub fn output_len(&self) -> Result<usize> {
        let (oh, ow) = self.output_hw()?;
        Ok(self.n * self.c_out * oh * ow)
    }

    /// Workspace elements [`conv2d_forward`] needs: one image's im2col matrix.
    pub fn forward_workspace_len(&self) -> Result<usize> {
        let (oh, ow) = self.output_hw()?;
        Ok(self.c_in * self.kh * self.kw * oh * ow)
    }

    /// Workspace elements [`conv2d_backward`] needs: two im2col-sized matrices.
    pub fn backward_workspace_len(&self) -> Result<usize> {
        Ok(2 * self.forward_workspace_len()?)
    }

    /// Checks input, weights, optional bias and output lengths; returns `(oh, ow)`.
    fn check(
        &self,
        x: usize,
        w: usize,
        b: Option<usize>,
        y: usize,
        names: [&str; 4],
    ) -> Result<(usize, usize)> {
        let (oh, ow) = self.output_hw()?;
        check_len(names[0], x, self.input_len())?;
        check_len(names[1], w, self.weight_len())?;
        if let Some(b) = b {
            check_len(names[2], b, self.c_out)?;
        }
        check_len(names[3], y, self.n * self.c_out * oh * ow)?;
        Ok((oh, ow))
    }

    /// Checks a backward pass's buffers: the forward ones (`x`, `w`, `dy` as the output)
    /// and the gradients (`dx`, `dw`, `db`); returns `(oh, ow)`.
    fn check_backward(
        &self,
        [x, w, dy, dx, dw]: [usize; 5],
        db: Option<usize>,
    ) -> Result<(usize, usize)> {
        let hw = self.check(x, w, None, dy, FWD)?;
        self.check(dx, dw, db, dy, BWD)?;
        Ok(hw)
    }
}

/// Whether 3×3 stride-1 convolutions may leave im2col for Winograd or the direct path;
/// `EDGEBENCH_CONV=im2col` keeps every convolution on im2col + GEMM (for comparisons).
/// Read once.
pub(crate) fn fast_paths() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("EDGEBENCH_CONV").map_or(true, |v| v != "im2col"))
}

/// Workspace floats conv → ReLU → 2×2/2 max-pool in one pass needs on `threads`
/// threads, when a fast path does that (Winograd or the direct kernel) and the pool
/// tiles the output exactly; `None` otherwise.
pub(crate) fn relu_pool_workspace_len(
    s: &Conv2dShape,
    hw: (usize, usize),
    threads: usize,
) -> Option<usize> {
    if !s.h.is_multiple_of(2) || !s.w.is_multiple_of(2) {
        None
    } else if winograd::applies(s, hw) {
        Some(winograd::forward_workspace_len(s, threads))
    } else if direct::relu_pool_applies(s, hw) {
        Some(direct::relu_pool_workspace_len(s, threads))
    } else {
        None
    }
}

/// Conv + bias + ReLU + 2×2/2 max-pool in one pass (see [`relu_pool_workspace_len`]):
/// writes the pooled output and, when given, its argmax.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_relu_pool(
    s: &Conv2dShape,
    hw: (usize, usize),
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    argmax: Option<&mut [u32]>,
    workspace: &mut [f32],
    g: &mut Gemm<'_>,
) -> Result<()> {
    if winograd::applies(s, hw) {
        winograd::forward_relu_pool(s, x, w, b, y, argmax, workspace, g)
    } else {
        direct::forward_relu_pool(s, x, w, b, y, argmax, workspace, g)
    }
}

/// Workspace floats one image of the trainer's convolution needs at output size `hw` on
/// `threads` threads: Winograd's or the direct path's when they apply, else one im2col
/// matrix forward and one per gradient backward. `backward`: `Some((dw, dx))` when the layer runs backward.
pub(crate) fn train_workspace_len(
    s: &Conv2dShape,
    hw: (usize, usize),
    threads: usize,
    backward: Option<(bool, bool)>,
) -> usize {
    if winograd::applies(s, hw) {
        let bwd = backward.map_or(0, |(dw, dx)| {
            winograd::backward_workspace_len(s, threads, dw, dx)
        });
        return winograd::forward_workspace_len(s, threads).max(bwd);
    }
    let col = s.c_in * s.kh * s.kw * hw.0 * hw.1;
    let bwd = backward.map_or(0, |(dw, dx)| col * (usize::from(dw) + usize::from(dx)));
    if direct::applies(s, hw) {
        let mut fwd = direct::forward_workspace_len(s, threads);
        if direct::relu_pool_applies(s, hw) {
            fwd = fwd.max(direct::relu_pool_workspace_len(s, threads));
        }
        return match backward {
            Some((true, false)) => fwd.max(direct::weight_grad_workspace_len(s, threads)),
            Some((_, true)) => fwd.max(bwd),
            _ => fwd,
        };
    }
    col.max(bwd)
}

pub(crate) const FWD: [&str; 4] = ["conv input", "conv weight", "conv bias", "conv output"];
pub(crate) const BWD: [&str; 4] = ["conv dx", "conv dw", "conv db", "conv dy"];

/// Input coordinate of output position `o`, kernel tap `k`, or `None` in the padding.
#[inline]
pub(crate) fn src(o: usize, k: usize, s: &Conv2dShape, len: usize) -> Option<usize> {
    (o * s.stride + k).checked_sub(s.pad).filter(|&i| i < len)
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

/// Fast forward pass (im2col + GEMM): `y = conv(x, w) + b`.
/// `workspace` needs [`Conv2dShape::forward_workspace_len`] elements (or more).
pub fn conv2d_forward(
    s: Conv2dShape,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    workspace: &mut [f32],
    threads: usize,
) -> Result<()> {
    let hw = s.check(x.len(), w.len(), b.map(<[f32]>::len), y.len(), FWD)?;
    let mut pack = pack_for(threads);
    let mut g = Gemm {
        threads,
        pack: &mut pack,
        workers: None,
    };
    conv2d_forward_hw(s, hw, x, w, b, y, workspace, &mut g)
}

/// [`conv2d_forward`] with the output size given: `(oh, ow)` may exceed what the
/// symmetric `pad` gives, for Keras' `same` padding whose extra row and column are at the
/// end (`pad` is then the top/left pad; positions past the input read zeros).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward_hw(
    s: Conv2dShape,
    hw: (usize, usize),
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    workspace: &mut [f32],
    gemm: &mut Gemm<'_>,
) -> Result<()> {
    conv2d_forward_act(s, hw, x, w, b, y, workspace, gemm, false)
}

/// [`conv2d_forward_hw`] with a ReLU applied as the output is written when `relu` (the
/// trainer's conv → ReLU pairs: the pre-activation is never stored).
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d_forward_act(
    s: Conv2dShape,
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
    check_len(FWD[0], x.len(), s.input_len())?;
    check_len(FWD[1], w.len(), s.weight_len())?;
    if let Some(b) = b {
        check_len(FWD[2], b.len(), s.c_out)?;
    }
    check_len(FWD[3], y.len(), s.n * s.c_out * ohw)?;
    if winograd::applies(&s, (oh, ow))
        && workspace.len() >= winograd::forward_workspace_len(&s, gemm.threads)
    {
        return winograd::forward(&s, x, w, b, y, workspace, gemm, relu);
    }
    if direct::applies(&s, (oh, ow))
        && workspace.len() >= direct::forward_workspace_len(&s, gemm.threads)
    {
        return direct::forward(&s, x, w, b, y, workspace, gemm, relu);
    }
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
        par_im2col(&s, oh, ow, &x[i * in_img..(i + 1) * in_img], col, gemm);
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

/// Fast backward pass (im2col + GEMM): from `dy` writes `dx`, `dw` and, when given, `db`.
/// `workspace` needs [`Conv2dShape::backward_workspace_len`] elements (or more).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward(
    s: Conv2dShape,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    workspace: &mut [f32],
    threads: usize,
) -> Result<()> {
    let hw = s.check_backward(
        [x.len(), w.len(), dy.len(), dx.len(), dw.len()],
        db.as_ref().map(|b| b.len()),
    )?;
    let grads = Grads {
        dx: Some(dx),
        dw: Some(dw),
        db,
        accumulate: false,
    };
    let mut pack = pack_for(threads);
    let mut g = Gemm {
        threads,
        pack: &mut pack,
        workers: None,
    };
    conv2d_backward_hw(s, hw, x, w, dy, grads, workspace, &mut g)
}

/// The gradients a backward pass writes; `None` skips one (a frozen weight, the first
/// layer's input). `dx` is always overwritten; `dw` and `db` are added to when
/// `accumulate` (gradient accumulation across micro-batches), overwritten otherwise.
#[derive(Debug)]
pub struct Grads<'a> {
    /// Gradient of the input.
    pub dx: Option<&'a mut [f32]>,
    /// Gradient of the weights.
    pub dw: Option<&'a mut [f32]>,
    /// Gradient of the bias.
    pub db: Option<&'a mut [f32]>,
    /// Add to `dw`/`db` instead of overwriting them.
    pub accumulate: bool,
}

/// Adds (or writes) `db[c] = Σ dy` over every image and position of channel `c`.
pub(crate) fn bias_grad(dy: &[f32], channels: usize, plane: usize, db: &mut [f32], add: bool) {
    bias_sums(dy, None, channels, plane, db, add);
}

/// Whether [`conv_pool_backward`] runs this convolution's backward from the gradient of
/// a ReLU + 2×2/2 max-pool after it: Winograd (any gradients), or the direct path for a
/// weight gradient without `dx` (`dw` and `dx`: the gradients asked for).
pub(crate) fn pool_backward_applies(
    s: &Conv2dShape,
    hw: (usize, usize),
    (dw, dx): (bool, bool),
) -> bool {
    s.h.is_multiple_of(2)
        && s.w.is_multiple_of(2)
        && (winograd::applies(s, hw) || (dw && !dx && direct::relu_pool_applies(s, hw)))
}

/// Workspace floats [`conv_pool_backward`] needs on `threads` threads.
pub(crate) fn pool_backward_workspace_len(
    s: &Conv2dShape,
    hw: (usize, usize),
    threads: usize,
    (dw, dx): (bool, bool),
) -> usize {
    if winograd::applies(s, hw) {
        winograd::backward_workspace_len(s, threads, dw, dx)
    } else {
        direct::weight_grad_workspace_len(s, threads)
    }
}

/// Backward of conv → ReLU → 2×2/2 max-pool from the pool's gradient `dy`, its argmax
/// and its output `y` (each `[n, c_out, h/2, w/2]`; see [`pool_backward_applies`]): the
/// conv's gradients asked for in `g` without the full-size output gradient ever being
/// written (the passes expand it row by row where they read it).
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_pool_backward(
    s: &Conv2dShape,
    hw: (usize, usize),
    x: &[f32],
    w: &[f32],
    (dy, argmax, y): (&[f32], &[u32], &[f32]),
    g: Grads<'_>,
    workspace: &mut [f32],
    gemm: &mut Gemm<'_>,
) -> Result<()> {
    let Grads {
        dx,
        dw,
        db,
        accumulate,
    } = g;
    if !pool_backward_applies(s, hw, (dw.is_some(), dx.is_some())) {
        return Err(Error::Invalid(format!(
            "conv {}→{} {}×{}: no fused ReLU + max-pool backward for this shape",
            s.c_in, s.c_out, s.h, s.w
        )));
    }
    let src = direct::Dy::Pooled { dy, argmax, y };
    if winograd::applies(s, hw) {
        winograd::backward(s, x, w, src, dx, dw, accumulate, workspace, gemm)?;
    } else if let Some(dw) = dw {
        direct::weight_grad(s, x, src, dw, accumulate, workspace, gemm)?;
    }
    if let Some(db) = db {
        check_len(BWD[2], db.len(), s.c_out)?;
        let plane = (s.h / 2) * (s.w / 2);
        bias_grad_where_positive(dy, y, s.c_out, plane, db, accumulate);
    }
    Ok(())
}

/// [`bias_grad`] counting only the elements where `y > 0` (a ReLU's backward folded in:
/// `y` is the ReLU output, or a max-pool's output over it).
pub(crate) fn bias_grad_where_positive(
    dy: &[f32],
    y: &[f32],
    channels: usize,
    plane: usize,
    db: &mut [f32],
    add: bool,
) {
    bias_sums(dy, Some(y), channels, plane, db, add);
}

fn bias_sums(
    dy: &[f32],
    mask: Option<&[f32]>,
    channels: usize,
    plane: usize,
    db: &mut [f32],
    add: bool,
) {
    if !add {
        db.fill(0.0);
    }
    let plane = plane.max(1);
    for (p, pl) in dy.chunks_exact(plane).enumerate() {
        // Eight partial sums: the compiler vectorises this, not a plain `sum`.
        let mut acc = [0.0f32; 8];
        let tail: f32 = match mask {
            None => {
                let mut chunks = pl.chunks_exact(8);
                for c in &mut chunks {
                    for (a, v) in acc.iter_mut().zip(c) {
                        *a += v;
                    }
                }
                chunks.remainder().iter().sum()
            }
            Some(m) => {
                let ml = &m[p * plane..(p + 1) * plane];
                let (mut chunks, mut mc) = (pl.chunks_exact(8), ml.chunks_exact(8));
                for (c, k) in (&mut chunks).zip(&mut mc) {
                    for ((a, v), y) in acc.iter_mut().zip(c).zip(k) {
                        *a += if *y > 0.0 { *v } else { 0.0 };
                    }
                }
                let rest = chunks.remainder().iter().zip(mc.remainder());
                rest.map(|(v, y)| if *y > 0.0 { *v } else { 0.0 }).sum()
            }
        };
        db[p % channels.max(1)] += acc.iter().sum::<f32>() + tail;
    }
}

/// [`conv2d_backward`] with the output size given (see [`conv2d_forward_hw`]) and only
/// the gradients asked for (see [`Grads`]). `x` is read only when `dw` is asked for (it
/// may be empty otherwise); `workspace` needs one im2col matrix (`c_in·kh·kw × oh·ow`)
/// for each of `dw` and `dx` asked for.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_hw(
    s: Conv2dShape,
    (oh, ow): (usize, usize),
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    g: Grads<'_>,
    workspace: &mut [f32],
    gemm: &mut Gemm<'_>,
) -> Result<()> {
    let (ohw, k, in_img) = (oh * ow, s.c_in * s.kh * s.kw, s.c_in * s.h * s.w);
    check_len(FWD[1], w.len(), s.weight_len())?;
    check_len(BWD[3], dy.len(), s.n * s.c_out * ohw)?;
    let Grads {
        mut dx,
        mut dw,
        db,
        accumulate,
    } = g;
    if dw.is_some() {
        check_len(FWD[0], x.len(), s.input_len())?;
    }
    if let Some(dx) = &dx {
        check_len(BWD[0], dx.len(), s.input_len())?;
    }
    if let Some(dw) = &dw {
        check_len(BWD[1], dw.len(), s.weight_len())?;
    }
    if let Some(db) = &db {
        check_len(BWD[2], db.len(), s.c_out)?;
    }
    if winograd::applies(&s, (oh, ow))
        && workspace.len()
            >= winograd::backward_workspace_len(&s, gemm.threads, dw.is_some(), dx.is_some())
    {
        let dy_src = direct::Dy::Plain(dy);
        winograd::backward(&s, x, w, dy_src, dx, dw, accumulate, workspace, gemm)?;
        if let Some(db) = db {
            bias_grad(dy, s.c_out, ohw, db, accumulate);
        }
        return Ok(());
    }
    if let (Some(dw), None) = (dw.as_deref_mut(), dx.as_deref())
        && direct::applies(&s, (oh, ow))
        && workspace.len() >= direct::weight_grad_workspace_len(&s, gemm.threads)
    {
        direct::weight_grad(
            &s,
            x,
            direct::Dy::Plain(dy),
            dw,
            accumulate,
            workspace,
            gemm,
        )?;
        if let Some(db) = db {
            bias_grad(dy, s.c_out, ohw, db, accumulate);
        }
        return Ok(());
    }
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
            par_im2col(&s, oh, ow, &x[i * in_img..(i + 1) * in_img], col, gemm);
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
            par_col2im(
                &s,
                oh,
                ow,
                dcol,
                &mut dx[i * in_img..(i + 1) * in_img],
                gemm,
            );
        }
    }
    if let Some(db) = db {
        bias_grad(dy, s.c_out, ohw, db, accumulate);
    }
    Ok(())
}

/// Reference forward pass: direct nested loops.
pub fn conv2d_forward_naive(
    s: Conv2dShape,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
) -> Result<()> {
    let (oh, ow) = s.check(x.len(), w.len(), b.map(<[f32]>::len), y.len(), FWD)?;
    for i in 0..s.n {
        for co in 0..s.c_out {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b.map_or(0.0, |b| b[co]);
                    for ci in 0..s.c_in {
                        for ky in 0..s.kh {
                            let Some(iy) = src(oy, ky, &s, s.h) else {
                                continue;
                            };
                            for kx in 0..s.kw {
                                let Some(ix) = src(ox, kx, &s, s.w) else {
                                    continue;
                                };
                                acc += x[((i * s.c_in + ci) * s.h + iy) * s.w + ix]
                                    * w[((co * s.c_in + ci) * s.kh + ky) * s.kw + kx];
                            }
                        }
                    }
                    y[((i * s.c_out + co) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    Ok(())
}

/// Reference backward pass: direct nested loops (same outputs as [`conv2d_backward`]).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_naive(
    s: Conv2dShape,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    dw: &mut [f32],
    mut db: Option<&mut [f32]>,
) -> Result<()> {
    let (oh, ow) = s.check_backward(
        [x.len(), w.len(), dy.len(), dx.len(), dw.len()],
        db.as_ref().map(|b| b.len()),
    )?;
    dx.fill(0.0);
    dw.fill(0.0);
    if let Some(db) = db.as_deref_mut() {
        db.fill(0.0);
    }
    for i in 0..s.n {
        for co in 0..s.c_out {
            for oy in 0..oh {
                for ox in 0..ow {
                    let g = dy[((i * s.c_out + co) * oh + oy) * ow + ox];
                    if let Some(db) = db.as_deref_mut() {
                        db[co] += g;
                    }
                    for ci in 0..s.c_in {
                        for ky in 0..s.kh {
                            let Some(iy) = src(oy, ky, &s, s.h) else {
                                continue;
                            };
                            for kx in 0..s.kw {
                                let Some(ix) = src(ox, kx, &s, s.w) else {
                                    continue;
                                };
                                let xi = ((i * s.c_in + ci) * s.h + iy) * s.w + ix;
                                let wi = ((co * s.c_in + ci) * s.kh + ky) * s.kw + kx;
                                dx[xi] += g * w[wi];
                                dw[wi] += g * x[xi];
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
