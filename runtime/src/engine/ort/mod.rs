//! ONNX Runtime engine, through the `ort` crate with the library loaded at run time.
//!
//! The library is never downloaded at build time. [`library_path`] finds it, in order:
//! [`EngineSettings::ort_library`](super::EngineSettings::ort_library), `ORT_DYLIB_PATH`,
//! then `lib/libonnxruntime.so` beside the executable (deploy bundles) and
//! `.cache/onnxruntime/linux-<arch>/libonnxruntime.so` (what
//! `scripts/fetch-onnxruntime.sh` installs) under the current directory, the
//! executable's directory and its ancestors, and the workspace this crate was built in.
//!
//! `ort` panics when its API is used before a library is loaded, and allows one library
//! and one environment per process. So before anything reaches `ort`, the library is
//! loaded here with `libloading` and asked for its version (`OrtGetApiBase` →
//! `GetVersionString`); only a library that passes is handed to `ort::init_from`, and the
//! resulting environment is kept for the life of the process. A second, different
//! library path in the same process is refused with a clear error.
//!
//! Execution providers are registered one by one in the user's order; each failure is
//! recorded with ONNX Runtime's reason in
//! [`SessionInfo::fallbacks`](super::SessionInfo::fallbacks). When every listed provider
//! fails and `cpu` is not in the list, [`open`] fails with
//! [`Error::Provider`](crate::error::Error::Provider): it never runs on the CPU silently.
//!
//! - `library`: finding the library, loading it, checking its version, the process's
//!   one environment;
//! - `providers`: the providers the library has, registering them in order, falling back;
//! - `session`: a session on a model (`open`), and profiled runs;
//! - `stub`: what a build without the `ort` feature has instead: the same functions,
//!   each answering [`Error::NotCompiledIn`](crate::error::Error::NotCompiledIn).

#[cfg(feature = "ort")]
mod library;
#[cfg(feature = "ort")]
mod providers;
#[cfg(feature = "ort")]
mod session;
#[cfg(not(feature = "ort"))]
mod stub;

#[cfg(feature = "ort")]
pub use library::{library_path, probe};
#[cfg(feature = "ort")]
pub use providers::available_providers;
#[cfg(feature = "ort")]
pub use session::open;
#[cfg(feature = "ort")]
pub(crate) use session::profile_runs;
#[cfg(not(feature = "ort"))]
pub(crate) use stub::profile_runs;
#[cfg(not(feature = "ort"))]
pub use stub::{available_providers, library_path, open, probe};

/// ONNX Runtime API level this build is compiled against (`ort` feature `api-17`): the
/// loaded library must be version 1.17 or newer.
pub const MIN_ORT_MINOR: u32 = 17;

/// Flatten a multi-line message from a C++ library into one line.
#[cfg(feature = "ort")]
fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
