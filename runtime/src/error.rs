//! The library's error type: every variant names the thing (file, node, provider) at fault.

use std::path::PathBuf;

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors from the edgebench runtime. Messages are one line and name the culprit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written. The OS error is part of the message, not a
    /// separate source, so an error chain prints it once.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The bytes are not a usable ONNX model.
    #[error("{}: invalid ONNX model: {reason}", path.display())]
    InvalidOnnx { path: PathBuf, reason: String },
    /// The model uses an operator an engine or the analysis cannot handle.
    #[error("{}: unsupported operator {op} (node {node:?}){}", path.display(), detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    UnsupportedOp {
        path: PathBuf,
        node: String,
        op: String,
        detail: Option<String>,
    },
    /// A model spec (TOML) is malformed or inconsistent.
    #[error("{source_name}: invalid model spec: {reason}")]
    Spec { source_name: String, reason: String },
    /// A name that is neither a built-in model nor an existing file.
    #[error(
        "unknown model {name:?}: not a built-in model ({known}) nor an existing .onnx/.toml file"
    )]
    UnknownModel { name: String, known: String },
    /// A tensor or input of the wrong shape.
    #[error("{what}: expected shape {expected}, got {got}")]
    Shape {
        what: String,
        expected: String,
        got: String,
    },
    /// An input file (npy, image) that cannot be used.
    #[error("{}: {reason}", path.display())]
    Input { path: PathBuf, reason: String },
    /// An engine that was compiled out of this build.
    #[error("engine {engine} is not compiled in (rebuild with `--features {engine}`)")]
    NotCompiledIn { engine: &'static str },
    /// The ONNX Runtime shared library could not be found or loaded.
    #[error("ONNX Runtime library: {reason}")]
    OrtLibrary { reason: String },
    /// An execution provider that was requested could not be registered.
    #[error("execution provider {provider}: {reason}")]
    Provider { provider: String, reason: String },
    /// An engine failed while loading or running a model.
    #[error("{engine} engine: {}: {reason}", path.display())]
    Engine {
        engine: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// A measuring worker process failed (its own error, or how it ended).
    #[error("{model}: {reason}")]
    Worker { model: String, reason: String },
    /// An output location the output-path policy refuses (an input, a directory, a
    /// read-only file, a missing folder), named with the flag that gave it.
    #[error("{}{}: {reason}", flag.as_deref().map(|f| format!("{f} ")).unwrap_or_default(), path.display())]
    Output {
        flag: Option<String>,
        path: PathBuf,
        reason: String,
    },
    /// A command-line or API argument is invalid: a usage error, on which the CLI exits 2
    /// (as clap does for the flag values it checks when parsing). Only for what the
    /// caller gave, never for a failure of the program itself.
    #[error("{0}")]
    Invalid(String),
    /// A value could not be written as JSON (`what`: "the report", "a worker request").
    /// An internal failure, not a usage error: the CLI exits 1.
    #[error("{what} cannot be written as JSON: {error}")]
    Json {
        what: String,
        error: serde_json::Error,
    },
    /// Training produced a NaN or infinite loss (nothing was updated by that step), or an
    /// optimizer update made a parameter or its optimizer state NaN or infinite; `reason`
    /// says which ("the loss is NaN", "layer 1 (conv) weight 17 is inf after the update").
    #[error("training diverged at step {step} (micro-batch {micro_step}): {reason}")]
    Diverged {
        step: u64,
        micro_step: u64,
        reason: String,
    },
    /// A training run that cannot start or go on as asked: data too small to split or
    /// not of the model's input, a metrics file of an unknown format, a `max_steps` the
    /// run is already at, a diverged step (the message names the last good checkpoint),
    /// an export that failed (the message names where the weights went instead). Not a
    /// usage error: the CLI exits 1.
    #[error("{0}")]
    Train(String),
    /// `error` while doing `what` ("writing checkpoint ck.bin", "analysing lean"): the
    /// message is both; the kind (and the CLI's exit code) is `error`'s. Made by
    /// [`Error::context`] / [`ResultExt::context`].
    #[error("{what}: {error}")]
    Context { what: String, error: Box<Error> },
    /// A training checkpoint that cannot be used (corrupt, truncated, another model).
    #[error("{}: checkpoint {reason}", path.display())]
    Checkpoint { path: PathBuf, reason: String },
}

impl Error {
    /// This error, said to have happened while doing `what`.
    pub fn context(self, what: impl Into<String>) -> Self {
        Error::Context {
            what: what.into(),
            error: Box::new(self),
        }
    }

    /// The error under any [`Error::Context`] layers: what decides its kind.
    pub fn root(&self) -> &Error {
        match self {
            Error::Context { error, .. } => error.root(),
            e => e,
        }
    }

    /// Shorthand for a failed JSON serialisation of `what`.
    pub fn json(what: impl Into<String>, error: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            error,
        }
    }

    /// Shorthand for an I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }
}

/// [`Error::context`] on a [`Result`]'s error, the message made only on failure.
pub trait ResultExt<T> {
    /// The error, said to have happened while doing `what()`.
    fn context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| e.context(what()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real serialisation failure: a map whose keys are not strings.
    fn serialisation_error() -> serde_json::Error {
        let map = std::collections::BTreeMap::from([((1, 2), 3)]);
        serde_json::to_string(&map).expect_err("JSON object keys must be strings")
    }

    #[test]
    fn a_failed_serialisation_says_what_could_not_be_written() {
        let e = Error::json("the report", serialisation_error());
        assert_eq!(
            e.to_string(),
            "the report cannot be written as JSON: key must be a string"
        );
        let e = e.context("writing r.json");
        assert!(matches!(e.root(), Error::Json { .. }));
    }
}
