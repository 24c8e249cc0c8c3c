//! What a build without the `ort` feature has in place of the ONNX Runtime engine: the
//! same functions, each answering [`Error::NotCompiledIn`].

use std::path::{Path, PathBuf};

use ndarray::ArrayViewD;

use crate::engine::{EngineOptions, ProfiledRuns, Session};
use crate::error::{Error, Result};

/// Always [`Error::NotCompiledIn`]: this build has no `ort` feature.
pub(crate) fn profile_runs(
    _model: &Path,
    _opts: &EngineOptions,
    _input: ArrayViewD<'_, f32>,
    _warmup: usize,
    _runs: usize,
) -> Result<ProfiledRuns> {
    Err(Error::NotCompiledIn { engine: "ort" })
}

/// Always [`Error::NotCompiledIn`]: this build has no `ort` feature, and no library
/// would help it.
pub fn library_path(_opts: &EngineOptions) -> Result<PathBuf> {
    Err(Error::NotCompiledIn { engine: "ort" })
}

/// Always [`Error::NotCompiledIn`]: this build has no `ort` feature.
pub fn open(_model: &Path, _opts: &EngineOptions) -> Result<Box<dyn Session>> {
    Err(Error::NotCompiledIn { engine: "ort" })
}

/// Always [`Error::NotCompiledIn`]: this build has no `ort` feature.
pub fn probe(_opts: &EngineOptions) -> Result<String> {
    Err(Error::NotCompiledIn { engine: "ort" })
}

/// Always [`Error::NotCompiledIn`]: this build has no `ort` feature.
pub fn available_providers() -> Result<Vec<String>> {
    Err(Error::NotCompiledIn { engine: "ort" })
}
