//! Direct 3×3 stride-1 "same" convolution for layers with few input channels (the first
//! layer of an RGB network: 3 → 32 at 256×256 in the lean model), where Winograd's GEMMs
//! would be too shallow and im2col + GEMM spends more time writing and re-reading the
//! 27-row im2col matrix than multiplying.
//!
//! - **Forward**: per output row, the `c_in·9` shifted input rows are copied straight
//!   into the micro-kernel's B panels (16 output pixels each, a few KiB that stay in L1),
//!   and each 6-channel × 16-pixel tile of the output comes from one
//!   [`micro_tile`](super::super::sgemm::micro_tile) call of depth `c_in·9` against the
//!   packed weights. Nothing of image size is written besides the output.
//! - **Weight gradient**: `dW[co][ci, ky, kx] = Σ dy[co] · x[ci] shifted` as dot products
//!   along each output row, 4 output channels × 3 horizontal taps at a time in 8-lane
//!   accumulators (12 vector registers), so neither operand is packed or transposed.
//!   Each thread sums its own rows; the parts are added at the end. When the conv is
//!   followed by ReLU and a 2×2/2 max-pool, `dy` can come as the pool's gradient
//!   ([`Dy::Pooled`](super::Dy::Pooled)): each row pair of the conv's output gradient
//!   is expanded in a thread's scratch right before use, so that image-sized gradient
//!   is never written.
//!
//! The input gradient is not computed here: a first layer has none, and other layers
//! this narrow take the im2col path.
//!
//! - `forward`: the forward pass, and conv + ReLU + 2×2/2 max-pool in one pass;
//! - `weight_grad`: the weight gradient.

mod forward;
mod weight_grad;

#[cfg(test)]
mod tests;

pub(crate) use forward::{forward, forward_relu_pool, relu_pool_workspace_len};
pub(crate) use weight_grad::weight_grad;

use super::Conv2dShape;
use crate::train::kernels::Gemm;
use crate::train::kernels::sgemm::{MR, NR};

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

/// Workspace floats [`forward()`] needs on `threads` threads.
pub(crate) fn forward_workspace_len(s: &Conv2dShape, threads: usize) -> usize {
    a_len(s) + Gemm::resolve_threads(threads) * fwd_part_len(s)
}

/// Workspace floats [`weight_grad()`] needs on `threads` threads.
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
