//! Tests of the ONNX analysis on graphs built in code: the seed's two CNNs, exporter
//! idioms (tf2onnx NHWC, torch flatten chains), single-operator shape rules, liveness,
//! errors on bad files, and the fuzz target's body over mutated models.

mod builder;
mod cnn;
mod errors;
mod exporters;
mod fuzz;
mod liveness;
mod ops;
