//! 2-D convolution on NCHW `f32`: any kernel size, stride, symmetric zero padding and an
//! optional bias; weights `[c_out, c_in, kh, kw]` as in ONNX `Conv`.
//!
//! Each convolution runs on the algorithm `ConvAlgo::choose` picks for its shape:
//!
//! - `winograd`: Winograd F(4×4, 3×3) for 3×3 stride-1 "same" layers with at least 8
//!   input and output channels;
//! - `direct`: a direct 3×3 stride-1 "same" kernel for layers with few input channels
//!   (the first layer of an RGB network): forward and weight gradient;
//! - `im2col`: im2col + GEMM for every other shape, and for what the two above do not
//!   compute (the direct path's input gradient) or have no workspace for.
//!
//! The fast paths also fuse conv → ReLU → 2×2/2 max-pool, forward and backward from the
//! pool's gradient, for the trainer. `naive` holds the reference nested loops
//! ([`conv2d_forward_naive`], [`conv2d_backward_naive`]).

use super::{Gemm, check_len, pack_for};
use crate::error::{Error, Result};

pub(crate) mod direct;
mod im2col;
mod naive;
pub(crate) mod winograd;

#[cfg(test)]
mod tests;

pub use naive::{conv2d_backward_naive, conv2d_forward_naive};

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

/// How a convolution is computed. [`ConvAlgo::choose`] is the one place the choice is
/// made; every entry point of this module dispatches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConvAlgo {
    /// Winograd F(4×4, 3×3) (see [`winograd::applies`]).
    Winograd,
    /// The direct 3×3 kernel (see [`direct::applies`]); its input gradient is im2col's.
    Direct,
    /// im2col + GEMM: any shape.
    Im2col,
}

impl ConvAlgo {
    /// The algorithm for shape `s` at output size `hw`: Winograd or the direct kernel
    /// for the 3×3 stride-1 "same" shapes they take (they never both apply), im2col +
    /// GEMM otherwise. `EDGEBENCH_CONV=im2col` keeps every convolution on im2col + GEMM
    /// (for comparisons); the variable is read once.
    pub(crate) fn choose(s: &Conv2dShape, hw: (usize, usize)) -> ConvAlgo {
        static FAST: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let fast =
            *FAST.get_or_init(|| std::env::var("EDGEBENCH_CONV").map_or(true, |v| v != "im2col"));
        if fast && winograd::applies(s, hw) {
            ConvAlgo::Winograd
        } else if fast && direct::applies(s, hw) {
            ConvAlgo::Direct
        } else {
            ConvAlgo::Im2col
        }
    }
}

/// Where a fast path's output gradient `dy` comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dy<'a> {
    /// The conv output's gradient, `[n, c_out, h, w]`.
    Plain(&'a [f32]),
    /// The conv feeds a ReLU and then a 2×2/2 max-pool that tiles it exactly: the pool
    /// output's gradient `dy`, its argmax (plane indices) and its output `y`, each
    /// `[n, c_out, h/2, w/2]`. The conv output's gradient is what
    /// [`super::pooling::maxpool_relu_backward`] would write.
    Pooled {
        dy: &'a [f32],
        argmax: &'a [u32],
        y: &'a [f32],
    },
}

/// Checks the lengths of a stride-1 "same" convolution's `dy` (and, pooled, that the
/// 2×2/2 pool tiles the output).
pub(crate) fn check_dy(s: &Conv2dShape, dy: Dy<'_>) -> Result<()> {
    match dy {
        Dy::Plain(dy) => check_len("conv dy", dy.len(), s.n * s.c_out * s.h * s.w),
        Dy::Pooled { dy, argmax, y } => {
            super::pooling::check_tiles_2x2(s.h, s.w)?;
            let len = s.n * s.c_out * (s.h / 2) * (s.w / 2);
            check_len("max-pool dy", dy.len(), len)?;
            check_len("max-pool argmax", argmax.len(), len)?;
            check_len("max-pool output", y.len(), len)
        }
    }
}

pub(crate) const FWD: [&str; 4] = ["conv input", "conv weight", "conv bias", "conv output"];
pub(crate) const BWD: [&str; 4] = ["conv dx", "conv dw", "conv db", "conv dy"];

/// Input coordinate of output position `o`, kernel tap `k`, or `None` in the padding.
#[inline]
pub(crate) fn src(o: usize, k: usize, s: &Conv2dShape, len: usize) -> Option<usize> {
    (o * s.stride + k).checked_sub(s.pad).filter(|&i| i < len)
}

/// Forward pass `y = conv(x, w) + b` on the algorithm chosen for the shape.
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
    let mut g = Gemm::alone(threads, &mut pack);
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
    let ohw = oh * ow;
    check_len(FWD[0], x.len(), s.input_len())?;
    check_len(FWD[1], w.len(), s.weight_len())?;
    if let Some(b) = b {
        check_len(FWD[2], b.len(), s.c_out)?;
    }
    check_len(FWD[3], y.len(), s.n * s.c_out * ohw)?;
    match ConvAlgo::choose(&s, (oh, ow)) {
        ConvAlgo::Winograd
            if workspace.len() >= winograd::forward_workspace_len(&s, gemm.threads) =>
        {
            winograd::forward(&s, x, w, b, y, workspace, gemm, relu)
        }
        ConvAlgo::Direct if workspace.len() >= direct::forward_workspace_len(&s, gemm.threads) => {
            direct::forward(&s, x, w, b, y, workspace, gemm, relu)
        }
        _ => im2col::forward(&s, (oh, ow), x, w, b, y, workspace, gemm, relu),
    }
}

/// Backward pass on the algorithm chosen for the shape: from `dy` writes `dx`, `dw` and,
/// when given, `db`.
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
    let grads = Grads::overwrite(dx, dw, db);
    let mut pack = pack_for(threads);
    let mut g = Gemm::alone(threads, &mut pack);
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

impl<'a> Grads<'a> {
    /// All three gradients of a stand-alone backward pass, overwritten (`db` if given).
    pub fn overwrite(dx: &'a mut [f32], dw: &'a mut [f32], db: Option<&'a mut [f32]>) -> Self {
        Grads {
            dx: Some(dx),
            dw: Some(dw),
            db,
            accumulate: false,
        }
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
    let ohw = oh * ow;
    check_len(FWD[1], w.len(), s.weight_len())?;
    check_len(BWD[3], dy.len(), s.n * s.c_out * ohw)?;
    let Grads {
        dx,
        dw,
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
    let algo = ConvAlgo::choose(&s, (oh, ow));
    let (want_dw, want_dx) = (dw.is_some(), dx.is_some());
    let threads = gemm.threads;
    match algo {
        ConvAlgo::Winograd
            if workspace.len()
                >= winograd::backward_workspace_len(&s, threads, want_dw, want_dx) =>
        {
            winograd::backward(&s, x, w, Dy::Plain(dy), dx, dw, accumulate, workspace, gemm)?;
        }
        ConvAlgo::Direct
            if want_dw
                && !want_dx
                && workspace.len() >= direct::weight_grad_workspace_len(&s, threads) =>
        {
            if let Some(dw) = dw {
                direct::weight_grad(&s, x, Dy::Plain(dy), dw, accumulate, workspace, gemm)?;
            }
        }
        _ => im2col::backward(
            &s,
            (oh, ow),
            x,
            w,
            dy,
            (dx, dw),
            accumulate,
            workspace,
            gemm,
        )?,
    }
    if let Some(db) = db {
        bias_grad(dy, s.c_out, ohw, db, accumulate);
    }
    Ok(())
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
        return None;
    }
    match ConvAlgo::choose(s, hw) {
        ConvAlgo::Winograd => Some(winograd::forward_workspace_len(s, threads)),
        ConvAlgo::Direct => Some(direct::relu_pool_workspace_len(s, threads)),
        ConvAlgo::Im2col => None,
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
    match ConvAlgo::choose(s, hw) {
        ConvAlgo::Winograd => winograd::forward_relu_pool(s, x, w, b, y, argmax, workspace, g),
        _ => direct::forward_relu_pool(s, x, w, b, y, argmax, workspace, g),
    }
}

/// Workspace floats one image of the trainer's convolution needs at output size `hw` on
/// `threads` threads: Winograd's or the direct path's when they apply, else one im2col
/// matrix forward and one per gradient backward. `backward`: `Some((dw, dx))` when the
/// layer runs backward.
pub(crate) fn train_workspace_len(
    s: &Conv2dShape,
    hw: (usize, usize),
    threads: usize,
    backward: Option<(bool, bool)>,
) -> usize {
    let col = im2col::col_len(s, hw);
    let bwd = backward.map_or(0, |(dw, dx)| col * (usize::from(dw) + usize::from(dx)));
    match ConvAlgo::choose(s, hw) {
        ConvAlgo::Winograd => {
            let bwd = backward.map_or(0, |(dw, dx)| {
                winograd::backward_workspace_len(s, threads, dw, dx)
            });
            winograd::forward_workspace_len(s, threads).max(bwd)
        }
        ConvAlgo::Direct => {
            let mut fwd = direct::forward_workspace_len(s, threads);
            if s.h.is_multiple_of(2) && s.w.is_multiple_of(2) {
                fwd = fwd.max(direct::relu_pool_workspace_len(s, threads));
            }
            match backward {
                Some((true, false)) => fwd.max(direct::weight_grad_workspace_len(s, threads)),
                Some((_, true)) => fwd.max(bwd),
                _ => fwd,
            }
        }
        ConvAlgo::Im2col => col.max(bwd),
    }
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
        && match ConvAlgo::choose(s, hw) {
            ConvAlgo::Winograd => true,
            ConvAlgo::Direct => dw && !dx,
            ConvAlgo::Im2col => false,
        }
}

/// Workspace floats [`conv_pool_backward`] needs on `threads` threads.
pub(crate) fn pool_backward_workspace_len(
    s: &Conv2dShape,
    hw: (usize, usize),
    threads: usize,
    (dw, dx): (bool, bool),
) -> usize {
    match ConvAlgo::choose(s, hw) {
        ConvAlgo::Winograd => winograd::backward_workspace_len(s, threads, dw, dx),
        _ => direct::weight_grad_workspace_len(s, threads),
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
    let src = Dy::Pooled { dy, argmax, y };
    match (ConvAlgo::choose(s, hw), dw) {
        (ConvAlgo::Winograd, dw) => {
            winograd::backward(s, x, w, src, dx, dw, accumulate, workspace, gemm)?
        }
        (_, Some(dw)) => direct::weight_grad(s, x, src, dw, accumulate, workspace, gemm)?,
        (_, None) => {}
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
