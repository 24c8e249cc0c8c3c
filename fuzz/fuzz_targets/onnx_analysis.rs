//! Arbitrary bytes as an ONNX model through the analysis front end (protobuf decode,
//! declared input, shape inference with declared and overridden shapes, constant folding,
//! the table, the external-data check): errors are fine, panics and hangs are not.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    edgebench_runtime::model::analysis::fuzz_one(data);
});
