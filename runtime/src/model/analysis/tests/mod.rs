//! Tests of the ONNX analysis on graphs built in code: the seed's two CNNs, exporter
//! idioms (tf2onnx NHWC, torch flatten chains), single-operator shape rules, liveness,
//! and errors on bad files.

mod builder;
mod cnn;
mod errors;
mod exporters;
mod liveness;
mod ops;
