//! Training on the device: layer kernels, the program a spec is lowered to, and the loop
//! that runs it.
//!
//! - [`kernels`]: forward and backward passes on NCHW `f32` slices (GEMM, convolution,
//!   depthwise, dense, pooling, helper threads);
//! - [`optim`]: SGD (momentum, Nesterov, weight decay), Adam, AdamW; gradient accumulation;
//! - [`schedule`]: learning-rate schedules (constant, step, cosine, warm-up), parsed from specs.
//! - [`plan`]: the memory planner; [`arena`]: the one allocation its buffers live in;
//! - [`trainer`]: the training loop on those buffers (forward, loss, backward, accumulation,
//!   optimizer); [`checkpoint`]: its versioned, checksummed checkpoint files;
//! - [`fit`]: the loop around the trainer (epochs, checkpoint cadence, `max_steps`,
//!   validation, metrics, power, export), configured by plain data ([`fit::FitConfig`]).

pub mod arena;
pub mod checkpoint;
mod exec;
pub mod fit;
pub mod kernels;
pub(crate) mod layers;
pub mod optim;
pub mod plan;
pub mod schedule;
pub mod trainer;
