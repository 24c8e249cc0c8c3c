//! What a training step runs: a [`Spec`](crate::model::spec::Spec) lowered once to a
//! program of kernel calls on regions of one arena, and the memory plan those regions
//! come from.
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
