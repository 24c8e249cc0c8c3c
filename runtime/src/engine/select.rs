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
    match choice {
        EngineChoice::Ort => ort::open(model, opts),
        EngineChoice::Tract => tract::open(model, opts),
        EngineChoice::Auto => match ort::open(model, opts) {
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
                match tract::open_with(model, opts, vec![format!("ort: {e}")]) {
                    // Both compiled out: the ort error says more.
                    Err(Error::NotCompiledIn { .. }) => Err(e),
                    other => other,
                }
            }
            other => other,
        },
    }
}
