//! What a training step runs: a [`Spec`](crate::model::spec::Spec) lowered once to a
//! program of kernel calls on regions of one arena, and the memory plan those regions
//! come from.
//!
//! This module holds the program itself (`Program`: its ops, tensors and parameter
//! slots, and where each lives) and the order its backward passes run in
//! (`backward_passes`, shared by the trainer and the sizing of its gradient buffers).
//!
//! - `lower`: the lowering (spec layers → ops, fusions, where every tensor lives);
//! - [`plan`]: the memory planner (every buffer of a step, in bytes; the largest
//!   micro-batch that fits a budget);
//! - [`arena`]: the one allocation the buffers live in, lent out as checked views;
//! - `exec`: the forward, loss and backward passes over the program's ops.

pub mod arena;
mod exec;
pub(crate) mod lower;
pub mod plan;

use std::ops::Range;

use crate::train::kernels::conv::Conv2dShape;
use crate::train::kernels::pooling::PoolShape;
use arena::Region;
use plan::LayerMode;

/// What an op computes (shapes per image: `n = 1`, set per call).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// 2-D convolution; `hw` is the output size (asymmetric `same` padding allowed).
    Conv { s: Conv2dShape, hw: (usize, usize) },
    /// Depthwise convolution (multiplier 1).
    Depthwise { s: Conv2dShape, hw: (usize, usize) },
    /// Fully connected layer.
    Dense { inputs: usize, outputs: usize },
    /// ReLU (standalone or fused into the layer before).
    Relu,
    /// Max-pool without padding.
    MaxPool { s: PoolShape },
    /// Global average pool over `hw` positions of `c` channels.
    Gap { c: usize, hw: usize },
}

/// One kernel call in the forward pass (and its backward).
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub kind: Kind,
    /// Input and output tensor ids.
    pub input: usize,
    pub output: usize,
    /// Index into [`Program::params`] for layers with parameters.
    pub params: Option<usize>,
    /// Whether it runs in the backward pass (a trainable layer sits at or before it).
    pub backward: bool,
    /// Whether its backward writes the input gradient.
    pub dx: bool,
    /// Max-pool argmax (`u32`) when it runs backward.
    pub argmax: Region,
    /// A max-pool right after a ReLU, both running backward: the pool also does the
    /// ReLU's backward (see
    /// [`maxpool_relu_backward`](crate::train::kernels::pooling::maxpool_relu_backward)),
    /// masking with its own output, which is saved instead of the larger ReLU output.
    pub takes_relu: bool,
    /// A conv whose next op is its ReLU: the conv writes the ReLU's output itself and
    /// its own output (the pre-activation) is never written.
    pub fuse_relu: bool,
    /// A conv with [`Op::fuse_relu`] whose ReLU feeds a 2×2/2 max-pool the fast path
    /// computes in the same pass (`conv::conv_relu_pool`): only the pooled output (and
    /// argmax) is written.
    pub fuse_pool: bool,
    /// A max-pool with [`Op::takes_relu`] right after a conv's ReLU, where the conv's
    /// backward can read the pooled gradient (`conv::conv_pool_backward`: Winograd, or
    /// the direct path's weight gradient of a first conv): one pass does pool, ReLU and
    /// conv backward, and neither the ReLU's nor the conv's output gradient is written.
    pub into_conv: bool,
}

/// Where a tensor lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Home {
    /// Its own region (the input batch, or kept from forward to backward).
    Saved(Region),
    /// Forward ping-pong buffer 0 or 1 (dead once the next op has read it).
    Transient(usize),
    /// Never written: an intermediate of a fused pass (no memory, an empty region).
    Unwritten,
}

/// An activation tensor: elements per image and where it lives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tensor {
    pub elems: usize,
    pub home: Home,
}

/// Parameters of one spec layer, as element ranges of the parameter region.
#[derive(Debug, Clone)]
pub(crate) struct ParamSlot {
    /// Spec layer index.
    pub layer: usize,
    /// ONNX weight shape.
    pub weight_shape: Vec<usize>,
    pub weight: Range<usize>,
    pub bias: Range<usize>,
    pub mode: LayerMode,
}

/// The lowered model with its arena layout.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    pub ops: Vec<Op>,
    pub tensors: Vec<Tensor>,
    pub params: Vec<ParamSlot>,
    /// Spec layers (for `Weights`, which has one entry per layer).
    pub layers: usize,
    /// Tensor holding the logits.
    pub logits: usize,
    pub classes: usize,
    /// The spec ends in a softmax (fused into the loss; `predict` applies it).
    pub softmax: bool,
    /// Elements per input image.
    pub input_elems: usize,
    /// Micro-batch capacity.
    pub batch: usize,
    /// Total parameter elements; the trainable ones are `trainable_start..param_len`.
    pub param_len: usize,
    pub trainable_start: usize,
    pub params_r: Region,
    pub grads_r: Region,
    pub state_r: Region,
    pub fwd: [Region; 2],
    pub grad: [Region; 2],
    pub dlogits: Region,
    pub workspace: Region,
    /// GEMM packing buffers, one per thread.
    pub pack: Region,
    pub labels: Region,
    pub arena_bytes: usize,
}

/// Prefix of `r` holding `elems` values of 4 bytes.
pub(crate) fn prefix(r: Region, elems: usize) -> Region {
    Region {
        offset: r.offset,
        bytes: (elems * 4).min(r.bytes),
    }
}

impl Program {
    /// The region of tensor `t` for `n` images.
    pub fn tensor(&self, t: usize, n: usize) -> Region {
        let tensor = &self.tensors[t];
        match tensor.home {
            Home::Saved(r) => prefix(r, tensor.elems * n),
            Home::Transient(b) => prefix(self.fwd[b], tensor.elems * n),
            Home::Unwritten => Region::EMPTY,
        }
    }
}

/// One pass of the backward sweep: the ops that run backward together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Op `j` alone, or, for a max-pool with [`Op::takes_relu`], the max-pool and the
    /// ReLU op before it.
    Op(usize),
    /// A conv, its ReLU and a max-pool with [`Op::into_conv`]: the conv's gradients
    /// straight from the pool's gradient.
    ConvPool {
        /// The conv op.
        conv: usize,
        /// The max-pool op.
        pool: usize,
    },
}

impl Pass {
    /// The op whose input gradient the pass writes (when that op's `dx` is set).
    pub(crate) fn writer(self) -> usize {
        match self {
            Pass::Op(j) => j,
            Pass::ConvPool { conv, .. } => conv,
        }
    }
}

/// A [`Pass`] and the activation-gradient buffers it reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BackwardPass {
    pub pass: Pass,
    /// Gradient buffer (0 or 1) holding the pass's output gradient; `None` for the
    /// loss's `dlogits` (until the first pass that writes an input gradient).
    pub dy: Option<usize>,
    /// Gradient buffer the pass writes its input gradient to; `None` when it writes none.
    pub dx: Option<usize>,
}

/// The backward passes over `ops` in the order they run (last op first, ops that do not
/// run backward skipped), each writing its input gradient to the buffer the previous
/// writer did not. `Trainer::backward` runs them; the lowering sizes the two gradient
/// buffers from them.
pub(crate) fn backward_passes(ops: &[Op]) -> BackwardPasses<'_> {
    BackwardPasses {
        ops,
        next: ops.len(),
        written: None,
    }
}

/// Iterator of [`backward_passes`].
#[derive(Debug, Clone)]
pub(crate) struct BackwardPasses<'a> {
    ops: &'a [Op],
    /// Ops `..next` are still to be visited.
    next: usize,
    /// The buffer the last input gradient went to.
    written: Option<usize>,
}

impl Iterator for BackwardPasses<'_> {
    type Item = BackwardPass;

    fn next(&mut self) -> Option<BackwardPass> {
        while self.next > 0 {
            self.next -= 1;
            let j = self.next;
            let op = &self.ops[j];
            if !op.backward {
                continue;
            }
            let pass = if op.takes_relu {
                // The ReLU before the max-pool runs inside the pool's pass ...
                self.next -= 1;
                if op.into_conv {
                    // ... and so does the conv before that ReLU.
                    self.next -= 1;
                    Pass::ConvPool {
                        conv: self.next,
                        pool: j,
                    }
                } else {
                    Pass::Op(j)
                }
            } else {
                Pass::Op(j)
            };
            let dy = self.written;
            let dx = self.ops[pass.writer()]
                .dx
                .then(|| self.written.map_or(0, |b| 1 - b));
            if dx.is_some() {
                self.written = dx;
            }
            return Some(BackwardPass { pass, dy, dx });
        }
        None
    }
}

#[cfg(test)]
mod tests;
