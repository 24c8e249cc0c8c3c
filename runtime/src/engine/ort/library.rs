//! Finding the ONNX Runtime library (see the module docs of [`super`] for the order),
//! loading it with `libloading` to check its version before `ort` sees it, and the one
//! environment a process keeps.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::{MIN_ORT_MINOR, one_line};
use crate::engine::EngineOptions;
use crate::error::{Error, Result};

/// The `.cache/onnxruntime/linux-<arch>` folder, relative to a repository root.
fn cache_rel() -> PathBuf {
    Path::new(".cache")
        .join("onnxruntime")
        .join(format!("linux-{}", std::env::consts::ARCH))
        .join("libonnxruntime.so")
}

/// Candidate library paths when neither the options nor `ORT_DYLIB_PATH` name one.
fn candidates() -> Vec<PathBuf> {
    let rel = cache_rel();
    let mut out = Vec::new();
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    if let Some(dir) = &exe_dir {
        out.push(dir.join("lib").join("libonnxruntime.so"));
    }
    if let Ok(cwd) = std::env::current_dir() {
        out.push(cwd.join(&rel));
    }
    if let Some(dir) = &exe_dir {
        out.extend(dir.ancestors().map(|a| a.join(&rel)));
    }
    out.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(&rel));
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

const HOW_TO_GET: &str = "run `bash scripts/fetch-onnxruntime.sh` in the edgebench repository, \
     or set ORT_DYLIB_PATH to libonnxruntime.so (on a Jetson: a JetPack build of ONNX Runtime)";

/// Find the ONNX Runtime shared library for `opts` (see the module docs for the order).
///
/// An explicit path (`opts.settings.ort_library`, `ORT_DYLIB_PATH`) that does not exist is an
/// error; it does not fall through to the other candidates.
pub fn library_path(opts: &EngineOptions) -> Result<PathBuf> {
    let explicit = match &opts.settings.ort_library {
        Some(p) => Some((p.clone(), "given as the ONNX Runtime library")),
        None => std::env::var_os("ORT_DYLIB_PATH")
            .filter(|v| !v.is_empty())
            .map(|v| (PathBuf::from(v), "from ORT_DYLIB_PATH")),
    };
    if let Some((path, from)) = explicit {
        if path.is_file() {
            return Ok(path);
        }
        return Err(Error::OrtLibrary {
            reason: format!(
                "{} ({from}) does not exist or is not a file; {HOW_TO_GET}",
                path.display()
            ),
        });
    }
    if let Some(found) = candidates().into_iter().find(|p| p.is_file()) {
        return Ok(found);
    }
    Err(Error::OrtLibrary {
        reason: format!(
            "libonnxruntime.so not found (looked for lib/libonnxruntime.so beside the executable, \
             and for {} under the current directory, the executable's directory and its \
             ancestors, and {}); {HOW_TO_GET}",
            cache_rel().display(),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("..").display()
        ),
    })
}

/// Parse "1.31.1" into (1, 31); `None` if malformed.
fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut it = v.trim().split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// Check a library's version string against the compiled API level.
fn check_version(path: &Path, version: &str) -> Result<()> {
    match parse_version(version) {
        Some((1, minor)) if minor >= MIN_ORT_MINOR => Ok(()),
        _ => Err(Error::OrtLibrary {
            reason: format!(
                "{} is ONNX Runtime {version}, but this build needs ONNX Runtime >= 1.{MIN_ORT_MINOR} \
                 (compiled for API level {MIN_ORT_MINOR}); {HOW_TO_GET}",
                path.display()
            ),
        }),
    }
}

/// The process's ONNX Runtime: where it came from, its version and environment.
pub(super) struct Runtime {
    path: PathBuf,
    pub(super) version: String,
    pub(super) env: ort::environment::Environment,
    /// Our own handle from the version check, kept so the library stays mapped.
    _lib: libloading::Library,
}

// The documented minimum must follow the `api-NN` feature `ort` is compiled with.
const _: () = assert!(ort::MINOR_VERSION == MIN_ORT_MINOR);

pub(super) static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// Serialises first-time loading; holds the library handed to `ort::init_from`, which
/// `ort` keeps for the process even if creating the environment then fails.
static INIT: Mutex<Option<PathBuf>> = Mutex::new(None);

/// An error and its sources on one line (libloading keeps dlerror() in the source).
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_msg = s.to_string();
        if !msg.contains(&s_msg) {
            msg = format!("{msg}: {s_msg}");
        }
        src = s.source();
    }
    one_line(&msg)
}

/// Load `path` ourselves and read its version, without touching `ort`. `shown` is
/// the path as the user gave it, for messages.
fn load_and_version(path: &Path, shown: &Path) -> Result<(libloading::Library, String)> {
    let bad = |why: String| Error::OrtLibrary {
        reason: format!("{}: {why}", shown.display()),
    };
    #[cfg(target_os = "linux")]
    check_elf(path).map_err(bad)?;
    // Safety: loading a shared library runs its initialisers. The path is the
    // library the user (or the repo cache) designates as ONNX Runtime; a file that
    // is not a loadable library makes `dlopen` fail, which is returned as an error.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| {
        bad(format!(
            "cannot be loaded as a shared library: {}",
            with_sources(&e)
        ))
    })?;
    type GetApiBase = unsafe extern "system" fn() -> *const ort::sys::OrtApiBase;
    // Safety: `OrtGetApiBase` has this signature in every ONNX Runtime release
    // (onnxruntime_c_api.h); the symbol lives as long as `lib`, which we keep.
    let get_base = unsafe { lib.get::<GetApiBase>(b"OrtGetApiBase") }
        .map_err(|_| bad("does not export OrtGetApiBase: not an ONNX Runtime library".into()))?;
    // Safety: calling the C entry point, which takes no arguments.
    let base = unsafe { get_base() };
    if base.is_null() {
        return Err(bad("OrtGetApiBase returned null".into()));
    }
    // Safety: `base` is non-null and points to the library's static OrtApiBase;
    // GetVersionString returns a static NUL-terminated string (or null, checked).
    let version = unsafe {
        let s = ((*base).GetVersionString)();
        if s.is_null() {
            return Err(bad("GetVersionString returned null".into()));
        }
        CStr::from_ptr(s).to_string_lossy().into_owned()
    };
    Ok((lib, version))
}

/// dlopen's messages for a text file or a library of another architecture are
/// cryptic ("file too short", "No such file"); read the ELF header first.
#[cfg(target_os = "linux")]
fn check_elf(path: &Path) -> std::result::Result<(), String> {
    use std::io::Read;
    let mut head = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "not a shared library (file too short)".into(),
            _ => format!("cannot read: {e}"),
        })?;
    if &head[..4] != b"\x7fELF" {
        return Err("not a shared library (no ELF header)".into());
    }
    let machine = if head[5] == 2 {
        u16::from_be_bytes([head[18], head[19]])
    } else {
        u16::from_le_bytes([head[18], head[19]])
    };
    let name = |m: u16| match m {
        3 => "x86",
        40 => "arm",
        62 => "x86_64",
        183 => "aarch64",
        _ => "another architecture",
    };
    let host = std::env::consts::ARCH;
    if matches!(host, "x86_64" | "aarch64") && name(machine) != host {
        return Err(format!(
            "a library for {}, but this program runs on {host}",
            name(machine)
        ));
    }
    Ok(())
}

/// The process's runtime, loading the library for `opts` on first use.
pub(super) fn runtime(opts: &EngineOptions) -> Result<&'static Runtime> {
    let path = library_path(opts)?;
    let canonical = path.canonicalize().map_err(|e| Error::OrtLibrary {
        reason: format!("{}: {e}", path.display()),
    })?;
    if let Some(rt) = RUNTIME.get() {
        return same_library(rt, &canonical, &path);
    }
    let mut handed_to_ort = INIT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return same_library(rt, &canonical, &path);
    }
    let (lib, version) = load_and_version(&canonical, &path)?;
    check_version(&path, &version)?;
    if let Some(earlier) = handed_to_ort.as_ref().filter(|p| **p != canonical) {
        return Err(Error::OrtLibrary {
            reason: format!(
                "{} was already loaded into ort in this process; cannot also load {}",
                earlier.display(),
                path.display()
            ),
        });
    }
    let builder = ort::init_from(&canonical).map_err(|e| Error::OrtLibrary {
        reason: one_line(&e.to_string()),
    })?;
    *handed_to_ort = Some(canonical.clone());
    let env = builder
        .with_name("edgebench")
        .with_telemetry(false)
        .build()
        .map_err(|e| Error::OrtLibrary {
            reason: format!(
                "{}: creating the environment failed: {}",
                canonical.display(),
                one_line(&e.to_string())
            ),
        })?;
    let rt = Runtime {
        path: canonical,
        version,
        env,
        _lib: lib,
    };
    Ok(RUNTIME.get_or_init(|| rt))
}

/// The runtime is already loaded: accept only the same library.
fn same_library(rt: &'static Runtime, wanted: &Path, shown: &Path) -> Result<&'static Runtime> {
    if rt.path == wanted {
        return Ok(rt);
    }
    // Report a bad file as such, rather than as a conflict.
    let (_lib, version) = load_and_version(wanted, shown)?;
    Err(Error::OrtLibrary {
        reason: format!(
            "ONNX Runtime {} is already loaded from {} in this process; cannot also load {} \
             ({version}): one library per process",
            rt.version,
            rt.path.display(),
            shown.display()
        ),
    })
}

/// Load the ONNX Runtime library for `opts` (once per process) and return its version.
pub fn probe(opts: &EngineOptions) -> Result<String> {
    Ok(runtime(opts)?.version.clone())
}
