//! ONNX protobuf messages, read and written with `prost`.
//!
//! Only the subset of `onnx.proto` that edgebench needs is declared; unknown fields are
//! skipped on decode, so any valid ONNX file parses. Field numbers follow onnx.proto
//! (proto2): repeated integers are written unpacked, as the reference writer does.

pub mod pb;

use std::path::Path;

use prost::Message;

use crate::error::{Error, Result};

/// Read and decode an ONNX model file, naming the file in any error.
pub fn read_model(path: &Path) -> Result<pb::ModelProto> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_model(&bytes, path)
}

/// Decode ONNX bytes; `path` is used only to name the source in errors.
pub fn decode_model(bytes: &[u8], path: &Path) -> Result<pb::ModelProto> {
    if bytes.is_empty() {
        return Err(Error::InvalidOnnx {
            path: path.to_path_buf(),
            reason: "the file is empty".into(),
        });
    }
    let model = pb::ModelProto::decode(bytes).map_err(|e| Error::InvalidOnnx {
        path: path.to_path_buf(),
        reason: format!("not a valid ONNX protobuf ({e})"),
    })?;
    if model.graph.is_none() {
        return Err(Error::InvalidOnnx {
            path: path.to_path_buf(),
            reason: "the model has no graph".into(),
        });
    }
    Ok(model)
}

/// Encode a model to bytes.
pub fn encode_model(model: &pb::ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}
