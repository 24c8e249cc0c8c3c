//! Engine choice for `--engine auto|ort|tract`, and the reason for every fallback.
//!
//! `auto` prefers ONNX Runtime. It falls back to tract only when the ONNX Runtime
//! *library* is unavailable (not found, not loadable, too old, or `ort` compiled out),
//! and only when the provider list allows the CPU: tract is a CPU engine, and running on
//! the CPU when the user asked for GPU providers only would be a silent fallback. The
//! reason is recorded as an `ort: …` line in [`SessionInfo::fallbacks`]. A model that
//! ONNX Runtime loaded but rejected is an error, never masked by switching engines.
//!
//! [`SessionInfo::fallbacks`]: super::SessionInfo::fallbacks

use std::path::Path;

use super::{EngineChoice, EngineOptions, Provider, Session, ort, tract};
use crate::error::{Error, Result};

/// Open `model` with the engine `choice` (see the module docs for `auto`).
pub fn open(model: &Path, choice: EngineChoice, opts: &EngineOptions) -> Result<Box<dyn Session>> {
    dispatch(
        choice,
        opts,
        || ort::open(model, opts),
        |fallbacks| tract::open_with(model, opts, fallbacks),
    )
}

/// Apply the `--engine` rules to any engine entry point: `with_ort` runs ONNX Runtime,
/// `with_tract` runs tract with the fallback lines recorded so far.
pub(crate) fn dispatch<T>(
    choice: EngineChoice,
    opts: &EngineOptions,
    with_ort: impl FnOnce() -> Result<T>,
    with_tract: impl FnOnce(Vec<String>) -> Result<T>,
) -> Result<T> {
    match choice {
        EngineChoice::Ort => with_ort(),
        EngineChoice::Tract => with_tract(Vec::new()),
        EngineChoice::Auto => match with_ort() {
            Err(e @ (Error::OrtLibrary { .. } | Error::NotCompiledIn { .. })) => {
                if !opts.providers.contains(&Provider::Cpu) {
                    let why = match &e {
                        Error::OrtLibrary { reason } => reason.clone(),
                        other => other.to_string(),
                    };
                    return Err(Error::OrtLibrary {
                        reason: format!(
                            "{why}; not falling back to tract (a CPU engine) because the \
                             execution provider list has no cpu"
                        ),
                    });
                }
                match with_tract(vec![format!("ort: {e}")]) {
                    // Both compiled out: the ort error says more.
                    Err(Error::NotCompiledIn { .. }) => Err(e),
                    other => other,
                }
            }
            other => other,
        },
    }
}
