//! Winograd F(4×4, 3×3) convolution for the trainer's 3×3, stride-1, pad-1 layers: the
//! forward pass, the input gradient and the weight gradient each take 36 multiplies per
//! 4×4 output tile and channel pair instead of 144 (4× fewer FLOPs than im2col + GEMM).
//!
//! With `Bᵀ`, `G` and `Aᵀ` the F(4, 3) matrices on the points 0, ±1, ±2 (Lavin & Gray,
//! 2015), one output tile is `Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A` for the 6×6 input
//! patches `d_c` under it. The sum over channels is, for each of the 36 transformed
//! positions ξ, a GEMM: `M_ξ [c_out × tiles] = U_ξ [c_out × c_in] · V_ξ [c_in × tiles]`,
//! run on [`sgemm`](super::super::sgemm)'s micro-kernel.
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
//! precision (more than F(2×2, 3×3)'s smaller ones would); on the tests' shapes the
//! results stay within 2e-5 of the nested loops (relative to the largest value), and the
//! golden steps against PyTorch and the exported-ONNX comparisons hold at their
//! tolerances.
//!
//! Tiles are processed in chunks of whole tile rows that stay in the L2 cache; each
//! thread takes a run of chunks with its own scratch (transformed input and GEMM output)
//! and its own [`sgemm`](super::super::sgemm) packing buffer, so nothing is allocated
//! and threads never synchronise inside a pass. The transforms work on 16 neighbouring
//! tiles at once, so the compiler vectorises them.
//!
//! - `transforms`: the F(4, 3) transforms of filters, input tiles, output tiles and
//!   gradient tiles, 16 tiles at a time;
//! - `forward`: the forward-style pass (forward, fused ReLU + max-pool, input gradient);
//! - `weight_grad`: the weight gradient.

mod forward;
mod transforms;
mod weight_grad;

#[cfg(test)]
mod tests;

use forward::pass;
pub(crate) use forward::{forward, forward_relu_pool};
use transforms::{panels, u_len, weight_transform};

use super::{Conv2dShape, Dy, check_dy};
use crate::error::{Error, Result};
use crate::train::kernels::sgemm::MR;
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

/// Workspace floats [`forward()`] needs on `threads` threads.
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
        weight_grad::weight_grad(s, x, dy, dw, add, workspace, g)?;
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
