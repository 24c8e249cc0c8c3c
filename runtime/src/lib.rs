//! edgebench runtime: everything the `edgebench` CLI does, usable from other programs.
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
//! - [`train`]: the training engine's layer kernels (forward/backward, fast beside naive);
//! - [`onnx`]: the ONNX protobuf messages;
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
pub mod report;
pub mod scratch;
pub mod tensor_io;
pub mod train;
pub mod units;

pub use error::{Error, Result};
