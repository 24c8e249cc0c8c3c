//! Training on the device, in three wings: the layer kernels, the program a spec is
//! lowered to, and the loop that runs it.
//!
//! - [`kernels`]: forward and backward passes on NCHW `f32` slices:
//!   - [`kernels::sgemm`]: the single-precision GEMM (packing, AVX2/FMA micro-kernel, threads);
//!   - [`kernels::conv`]: 2-D convolution on im2col + GEMM, a direct 3×3 path or Winograd
//!     F(4×4, 3×3), chosen per shape, with naive reference loops;
//!   - [`kernels::depthwise`]: depthwise 2-D convolution;
//!   - [`kernels::dense`]: fully connected layer and fused softmax cross-entropy;
//!   - [`kernels::pooling`]: ReLU, max-pool (argmax kept for backward), global average pool;
//!   - [`kernels::workers`]: the helper threads a pass is split over;
//! - [`program`]: what a step runs:
//!   - `program::lower`: a spec lowered to ops on arena regions (fusions, tensor homes);
//!   - [`program::plan`]: the memory planner (every buffer in bytes; the largest
//!     micro-batch that fits a budget);
//!   - [`program::arena`]: the one allocation those buffers live in;
//!   - `program::exec`: the forward, loss and backward passes over the ops;
//! - the loop:
//!   - [`trainer`]: one model being trained (step, accumulation, update, evaluate,
//!     predict, weights in and out);
//!   - [`checkpoint`]: the trainer's versioned, checksummed checkpoint files;
//!   - [`optim`]: SGD (momentum, Nesterov, weight decay), Adam, AdamW;
//!   - [`schedule`]: learning-rate schedules (constant, step, cosine, warm-up), parsed
//!     from specs;
//!   - [`fit`]: the loop around the trainer (epochs, checkpoint cadence, `max_steps`,
//!     validation, metrics, power, export), configured by plain data ([`fit::FitConfig`]).

pub mod checkpoint;
pub mod fit;
pub mod kernels;
pub mod optim;
pub mod program;
pub mod schedule;
pub mod trainer;
