//! The end of a [`fit`](super::fit) run: the trained weights written as ONNX, refused
//! when any is not finite. When that write fails (a full disk, a device that refuses
//! it), the weights go to a fallback file beside the checkpoint (else in the temporary
//! folder) and the error says where, so that a finished training is not lost.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::onnx_write::{self, ExportSummary, Weights};
use crate::model::spec::{InputShape, Spec};
use crate::train::trainer::{Trainer, first_non_finite};

/// Writes `trainer`'s weights to `path`; `checkpoint` is where a fallback goes.
pub(crate) fn export(
    trainer: &Trainer,
    spec: &Spec,
    input: InputShape,
    path: &Path,
    checkpoint: Option<&Path>,
) -> Result<ExportSummary> {
    let w = trainer.weights()?;
    if let Some(bad) = first_non_finite(spec, &w) {
        return Err(Error::Train(format!(
            "--export {}: refusing to write non-finite weights: {bad}",
            path.display()
        )));
    }
    onnx_write::export_weights(spec, input, &w, path)
        .map_err(|e| export_failed(e, spec, input, &w, checkpoint))
}

/// The error of a failed export, after saving the weights to a fallback file.
fn export_failed(
    e: Error,
    spec: &Spec,
    input: InputShape,
    w: &Weights,
    checkpoint: Option<&Path>,
) -> Error {
    let dir = match checkpoint.map(|c| c.parent().unwrap_or(Path::new(""))) {
        Some(d) if d.as_os_str().is_empty() => PathBuf::from("."),
        Some(d) => d.to_path_buf(),
        None => std::env::temp_dir(),
    };
    let name: String = spec
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let pid = std::process::id();
    // A name no file has yet: the fallback must not replace anything either.
    let fallback = (0..1000)
        .map(|k| match k {
            0 => dir.join(format!("edgebench-{name}-{pid}.onnx")),
            k => dir.join(format!("edgebench-{name}-{pid}-{k}.onnx")),
        })
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .unwrap_or_else(|| dir.join(format!("edgebench-{name}-{pid}.onnx")));
    let kept = checkpoint
        .map(|c| format!("; the checkpoint {} holds them", c.display()))
        .unwrap_or_default();
    Error::Train(
        match onnx_write::export_weights(spec, input, w, &fallback) {
            Ok(_) => format!(
                "--export {e}; the trained model was saved to {} instead",
                fallback.display()
            ),
            Err(e2) => format!(
                "--export {e}; saving the trained model to {} failed too ({e2}){kept}",
                fallback.display()
            ),
        },
    )
}
