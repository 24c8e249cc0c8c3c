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

/// The value of metadata entry `key` (`metadata_props`), if the model has one.
pub fn metadata<'a>(model: &'a pb::ModelProto, key: &str) -> Option<&'a str> {
    model
        .metadata_props
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
}

/// Set metadata entry `key` to `value`, replacing any entry of that key.
pub fn set_metadata(model: &mut pb::ModelProto, key: &str, value: String) {
    model.metadata_props.retain(|p| p.key != key);
    model.metadata_props.push(pb::StringStringEntryProto {
        key: key.into(),
        value,
    });
}

/// Encode a model to bytes.
pub fn encode_model(model: &pb::ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}
