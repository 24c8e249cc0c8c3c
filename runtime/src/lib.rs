//! edgebench runtime: everything the `edgebench` CLI does, usable from other programs —
//! the way an application on a board embeds it.
//!
//! # From your own program
//!
//! Two examples in `runtime/examples/` walk through the library as a user's program
//! uses it; each has a test on tiny data that `cargo test` runs.
//!
//! **Classify a folder** (`cargo run -p edgebench-runtime --example classify -- MODEL
//! IMAGES [BATCH]`):
//! 1. [`model::prepare`] turns a built-in name, spec `.toml` or `.onnx` file into an ONNX
//!    file with its input shape, layout and preprocessing;
//! 2. [`engine::open`] opens it with [`engine::EngineSettings::default`]: ONNX Runtime
//!    when its library loads, else tract;
//! 3. [`data::source::open`] reads the image folder or TFRecord shards, and a
//!    [`data::loader::Loader`] built from [`data::loader::LoaderConfig::new`] decodes
//!    them into its fixed pool of batch slots;
//! 4. each [`data::loader::Batch`]'s pixels go to [`engine::Session::run`] as a view of
//!    the slot, and the top-1 class is read from the output.
//!
//! **Fine-tune within a memory budget** (`cargo run --release -p edgebench-runtime
//! --example finetune -- MODEL IMAGES BUDGET OUT.onnx [EPOCHS]`):
//! 1. [`model::zoo::resolve`] gives the model's spec;
//! 2. [`train::fit::Data::open`] opens the training images;
//! 3. [`train::program::plan::split`] picks the largest micro-batch that fits the budget
//!    and the accumulation steps for the effective batch;
//! 4. a [`train::trainer::Trainer`] built for that split is trained by [`train::fit::fit`],
//!    which reports each epoch to a [`train::fit::Observer`] and exports the trained
//!    weights as ONNX for the engines.
//!
//! `edgebench bench`/`compare` are [`bench::compare::compare`] with a
//! [`bench::compare::CompareConfig`]; `edgebench train` is [`train::fit::fit`].
//!
//! # Modules
//!
//! - [`mod@bench`]: comparing models from model files to report: scenarios, interleaved
//!   measurement in worker processes, statistics, memory, GEMM peak, profiles;
//! - [`data`]: image sources (folders, TFRecord, synthetic), decoding, the streaming loader;
//! - [`board`]: Jetson boards (`targets/*.toml`), their budgets and verdicts, board
//!   detection and the `tegrastats` sampler;
//! - [`report`]: the one report schema ([`report::schema`]) and its table, JSON, CSV,
//!   Markdown and HTML renderings;
//! - [`scratch`]: a run's temporary folders and children, cleaned up on interruption;
//! - [`model`]: sequential CNN specs, the built-in zoo, the ONNX writer and the analysis
//!   of any ONNX file (shapes, parameters, MACs, activation memory);
//! - [`engine`]: ONNX Runtime (`ort`) and `tract` behind one [`engine::Session`] trait;
//! - [`tensor_io`]: image and seeded random inputs for `edgebench run`;
//! - [`train`]: the training engine: kernels, the lowered program and its memory plan,
//!   the trainer, optimizers, schedules, checkpoints and the training loop ([`train::fit`]);
//! - [`onnx`]: the ONNX protobuf messages;
//! - [`quant`]: int8 post-training quantization: parameters, per-channel weights and the
//!   calibration of activation ranges;
//! - [`shrink`]: the search for the most accurate model of a family that fits a
//!   board's budgets (measure, then train with successive halving);
//! - [`units`]: human-readable numbers for tables;
//! - [`crc32c`]: the CRC-32C checksum of TFRecord framing and training checkpoints;
//! - [`mod@alloc`]: checked sizes and fallible allocation of buffers sized by user input;
//! - [`fsutil`]: the output-path policy and the check that no output replaces an input;
//! - [`mod@error`]: the library's error type.

pub mod alloc;
pub mod bench;
pub mod board;
pub mod crc32c;
pub mod data;
pub mod engine;
pub mod error;
pub mod fsutil;
pub mod model;
#[cfg(test)]
mod mutate;
pub mod onnx;
pub mod quant;
pub mod report;
pub mod scratch;
pub mod shrink;
pub mod simd;
pub mod tensor_io;
pub mod train;
pub mod units;

pub use error::{Error, Result};
