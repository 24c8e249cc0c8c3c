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

/// [`Error::NotCompiledIn`] when `choice` cannot run in this build (`auto`: when both
/// engines are compiled out, ort's, as `dispatch` answers), for commands that should
/// say so before measuring anything.
pub fn check_compiled_in(choice: EngineChoice) -> Result<()> {
    let (ort, tract) = (cfg!(feature = "ort"), cfg!(feature = "tract"));
    match choice {
        EngineChoice::Tract if !tract => Err(Error::NotCompiledIn { engine: "tract" }),
        EngineChoice::Ort if !ort => Err(Error::NotCompiledIn { engine: "ort" }),
        EngineChoice::Auto if !ort && !tract => Err(Error::NotCompiledIn { engine: "ort" }),
        _ => Ok(()),
    }
}

/// `--engine tract` with GPU providers in `--ep`: tract runs on the CPU only, so without
/// `cpu` in the list that is an error (never a silent CPU run), and with it the GPU
/// providers are recorded as not used.
fn tract_provider_check(opts: &EngineOptions) -> Result<Vec<String>> {
    let gpu: Vec<&str> = opts
        .settings
        .providers
        .iter()
        .filter(|p| **p != Provider::Cpu)
        .map(|p| p.ort_name())
        .collect();
    if gpu.is_empty() {
        return Ok(Vec::new());
    }
    let why = "tract runs on the CPU only (use --engine ort or auto for GPU providers)";
    if !opts.settings.providers.contains(&Provider::Cpu) {
        return Err(Error::Provider {
            provider: gpu.join(", "),
            reason: why.into(),
        });
    }
    Ok(vec![format!("{}: not used: {why}", gpu.join(", "))])
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
        EngineChoice::Tract => with_tract(tract_provider_check(opts)?),
        EngineChoice::Auto => match with_ort() {
            Err(e @ (Error::OrtLibrary { .. } | Error::NotCompiledIn { .. })) => {
                if !opts.settings.providers.contains(&Provider::Cpu) {
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
