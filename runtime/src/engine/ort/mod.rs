//! ONNX Runtime engine, through the `ort` crate with the library loaded at run time.
//!
//! The library is never downloaded at build time. [`library_path`] finds it, in order:
//! [`EngineOptions::ort_library`], `ORT_DYLIB_PATH`, then `lib/libonnxruntime.so` beside
//! the executable (deploy bundles) and `.cache/onnxruntime/linux-<arch>/libonnxruntime.so`
//! (what `scripts/fetch-onnxruntime.sh` installs) under the current directory, the
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
//! recorded with ONNX Runtime's reason in [`SessionInfo::fallbacks`](super::SessionInfo::fallbacks). When every listed
//! provider fails and `cpu` is not in the list, [`open`] fails with [`Error::Provider`]:
//! it never runs on the CPU silently.

use std::path::{Path, PathBuf};

#[cfg(feature = "ort")]
pub(crate) use imp::profile_runs;
#[cfg(feature = "ort")]
pub use imp::{available_providers, open, probe};
#[cfg(not(feature = "ort"))]
pub(crate) use stub::profile_runs;
#[cfg(not(feature = "ort"))]
pub use stub::{available_providers, open, probe};

use super::EngineOptions;
use crate::error::{Error, Result};

/// ONNX Runtime API level this build is compiled against (`ort` feature `api-17`): the
/// loaded library must be version 1.17 or newer.
pub const MIN_ORT_MINOR: u32 = 17;

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
/// An explicit path (`opts.ort_library`, `ORT_DYLIB_PATH`) that does not exist is an
/// error; it does not fall through to the other candidates. A build without the `ort`
/// feature answers [`Error::NotCompiledIn`]: no library would help it.
pub fn library_path(opts: &EngineOptions) -> Result<PathBuf> {
    if !cfg!(feature = "ort") {
        return Err(Error::NotCompiledIn { engine: "ort" });
    }
    let explicit = match &opts.ort_library {
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
#[cfg(feature = "ort")]
fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut it = v.trim().split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// Check a library's version string against the compiled API level.
#[cfg(feature = "ort")]
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

/// Flatten a multi-line message from a C++ library into one line.
#[cfg(feature = "ort")]
fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(feature = "ort")]
mod imp {
    use std::ffi::CStr;
    use std::path::{Path, PathBuf};
    use std::sync::{Mutex, OnceLock};

    use ndarray::{ArrayD, ArrayViewD};
    use ort::ep::{self, ExecutionProvider};
    use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
    use ort::value::TensorRef;

    use super::{check_version, library_path, one_line};
    use crate::engine::{
        EngineOptions, EngineTrace, ProfiledRuns, Provider, Session, SessionInfo, check_input_shape,
    };
    use crate::error::{Error, Result};

    /// The process's ONNX Runtime: where it came from, its version and environment.
    struct Runtime {
        path: PathBuf,
        version: String,
        env: ort::environment::Environment,
        /// Our own handle from the version check, kept so the library stays mapped.
        _lib: libloading::Library,
    }

    // The documented minimum must follow the `api-NN` feature `ort` is compiled with.
    const _: () = assert!(ort::MINOR_VERSION == super::MIN_ORT_MINOR);

    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
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
        let get_base = unsafe { lib.get::<GetApiBase>(b"OrtGetApiBase") }.map_err(|_| {
            bad("does not export OrtGetApiBase: not an ONNX Runtime library".into())
        })?;
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
    fn runtime(opts: &EngineOptions) -> Result<&'static Runtime> {
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

    /// Execution providers compiled into the loaded library (ONNX Runtime's
    /// `GetAvailableProviders`). Loads the library found by the default lookup if none
    /// is loaded yet; call [`probe`] first to choose another.
    pub fn available_providers() -> Result<Vec<String>> {
        if RUNTIME.get().is_none() {
            runtime(&EngineOptions::for_shape(Vec::new()))?;
        }
        let err = |e: ort::Error| Error::OrtLibrary {
            reason: format!("GetAvailableProviders: {}", one_line(&e.to_string())),
        };
        let api = ort::api();
        let mut list: *mut *mut std::ffi::c_char = std::ptr::null_mut();
        let mut n: std::ffi::c_int = 0;
        // Safety: the runtime is loaded, so `api` is valid; the out-pointers are valid.
        unsafe { ort::Error::result_from_status((api.GetAvailableProviders)(&mut list, &mut n)) }
            .map_err(err)?;
        if list.is_null() {
            return Ok(Vec::new());
        }
        let names = (0..usize::try_from(n).unwrap_or(0))
            // Safety: ONNX Runtime returned `n` valid NUL-terminated strings at `list`.
            .map(|i| {
                unsafe { CStr::from_ptr(*list.add(i)) }
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        // Safety: releasing the array exactly once, with the length it came with.
        unsafe { ort::Error::result_from_status((api.ReleaseAvailableProviders)(list, n)) }
            .map_err(err)?;
        Ok(names)
    }

    /// Register one provider on `builder`; `Err` holds ONNX Runtime's reason.
    fn register(p: Provider, b: &mut SessionBuilder, opts: &EngineOptions) -> Result<(), String> {
        let r = match p {
            Provider::TensorRt => {
                let mut trt = ep::TensorRT::default()
                    .with_device_id(opts.cuda_device)
                    .with_fp16(opts.trt_fp16);
                if let Some(dir) = &opts.trt_cache_dir {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        format!("cannot create engine cache {}: {e}", dir.display())
                    })?;
                    trt = trt
                        .with_engine_cache(true)
                        .with_engine_cache_path(dir.display())
                        .with_timing_cache(true)
                        .with_timing_cache_path(dir.display());
                }
                trt.register(b)
            }
            Provider::Cuda => ep::CUDA::default()
                .with_device_id(opts.cuda_device)
                .register(b),
            // ONNX Runtime's default keeps the CPU arena on; ort's `CPU::default()` turns it off.
            Provider::Cpu => ep::CPU::default().with_arena_allocator(true).register(b),
        };
        r.map_err(|e| one_line(&e.to_string()))
    }

    /// A fresh builder with the session-wide options (threads, optimisation level, and
    /// ONNX Runtime's profiler writing to `<profile>_<date>.json` when given).
    fn builder(
        rt: &Runtime,
        opts: &EngineOptions,
        model: &Path,
        profile: Option<&Path>,
    ) -> Result<SessionBuilder> {
        let eng = |e: ort::Error| engine_err(model, &e.to_string());
        let mut b = ort::session::Session::builder(&rt.env).map_err(eng)?;
        if let Some(prefix) = profile {
            b = b
                .with_profiling(prefix)
                .map_err(|e| engine_err(model, &e.to_string()))?;
        }
        if let Some(n) = opts.threads {
            b = b
                .with_intra_threads(n)
                .map_err(|e| engine_err(model, &e.to_string()))?;
        }
        b.with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| engine_err(model, &e.to_string()))
    }

    fn engine_err(model: &Path, reason: &str) -> Error {
        Error::Engine {
            engine: "ort",
            path: model.to_path_buf(),
            reason: one_line(reason),
        }
    }

    /// Build a session, registering the providers in order and falling back as allowed.
    fn commit(
        rt: &Runtime,
        model: &Path,
        opts: &EngineOptions,
        fallbacks: &mut Vec<String>,
        profile: Option<&Path>,
    ) -> Result<(ort::session::Session, Provider)> {
        let cpu_allowed = opts.providers.contains(&Provider::Cpu);
        if (opts.trt_fp16 || opts.trt_cache_dir.is_some())
            && !opts.providers.contains(&Provider::TensorRt)
        {
            // Options the user gave that cannot apply are said, not dropped silently.
            fallbacks.push(format!(
                "{}: --trt-fp16/--trt-cache not used: tensorrt is not in the provider list",
                Provider::TensorRt.ort_name()
            ));
        }
        let mut b = builder(rt, opts, model, profile)?;
        let mut registered = Vec::new();
        let mut failed = Vec::new();
        for &p in &opts.providers {
            if registered.contains(&p) || failed.iter().any(|(q, _)| *q == p) {
                continue;
            }
            match register(p, &mut b, opts) {
                Ok(()) => registered.push(p),
                Err(reason) => {
                    fallbacks.push(format!("{}: {reason}", p.ort_name()));
                    failed.push((p, reason));
                }
            }
        }
        let Some(&first) = registered.first() else {
            return Err(Error::Provider {
                provider: failed
                    .iter()
                    .map(|(p, _)| p.ort_name())
                    .collect::<Vec<_>>()
                    .join(", "),
                reason: if failed.is_empty() {
                    "no execution provider was requested".into()
                } else if let [(_, reason)] = failed.as_slice() {
                    reason.clone()
                } else {
                    failed
                        .iter()
                        .map(|(p, r)| format!("{}: {r}", p.ort_name()))
                        .collect::<Vec<_>>()
                        .join("; ")
                },
            });
        };
        match b.commit_from_file(model) {
            Ok(s) => Ok((s, first)),
            // A GPU provider registered but the session could not be created with it
            // (missing CUDA/TensorRT libraries show up here on some builds). Retry on the
            // CPU when allowed; if the CPU fails too, the model is at fault.
            Err(e) if first != Provider::Cpu && cpu_allowed => {
                let gpu_reason = one_line(&e.to_string());
                let mut cpu = builder(rt, opts, model, profile)?;
                register(Provider::Cpu, &mut cpu, opts).map_err(|r| engine_err(model, &r))?;
                let s = cpu
                    .commit_from_file(model)
                    .map_err(|e| engine_err(model, &e.to_string()))?;
                let names: Vec<_> = registered
                    .iter()
                    .filter(|p| **p != Provider::Cpu)
                    .map(|p| p.ort_name())
                    .collect();
                fallbacks.push(format!(
                    "{}: session creation failed: {gpu_reason}",
                    names.join(", ")
                ));
                Ok((s, Provider::Cpu))
            }
            Err(e) => Err(engine_err(model, &e.to_string())),
        }
    }

    /// Prepare `model` with ONNX Runtime, execution providers in `opts.providers` order.
    pub fn open(model: &Path, opts: &EngineOptions) -> Result<Box<dyn Session>> {
        Ok(Box::new(open_session(model, opts, None)?))
    }

    /// Run `warmup` untimed then `runs` timed inferences with ONNX Runtime's profiler on,
    /// and return the profile JSON it wrote (the file, in a temporary folder, is deleted).
    pub(crate) fn profile_runs(
        model: &Path,
        opts: &EngineOptions,
        input: ArrayViewD<'_, f32>,
        warmup: usize,
        runs: usize,
    ) -> Result<ProfiledRuns> {
        crate::engine::check_memory(model, &opts.input_shape).map_err(|e| e.at(model))?;
        // Declared before the session, so dropped after it: a session that ends on an
        // error may still write its profile there, and the folder goes with it.
        let dir = tempfile::Builder::new()
            .prefix("edgebench-ort-profile-")
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let prefix = dir.path().join("ort");
        let mut s = open_session(model, opts, Some(&prefix))?;
        let mut run_ms = Vec::with_capacity(runs);
        let mut run_start_us = Vec::with_capacity(runs);
        let mut origin = None;
        for i in 0..warmup + runs {
            let t0 = std::time::Instant::now();
            s.run(input.view())?;
            let wall = t0.elapsed();
            if i >= warmup {
                let origin = *origin.get_or_insert(t0);
                run_ms.push(wall.as_secs_f64() * 1e3);
                run_start_us.push(t0.duration_since(origin).as_secs_f64() * 1e6);
            }
        }
        let file = s
            .session
            .end_profiling()
            .map_err(|e| engine_err(model, &format!("ending the profiler: {e}")))?;
        let file = PathBuf::from(file);
        let json = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
        let _ = std::fs::remove_file(&file);
        Ok(ProfiledRuns {
            info: s.info,
            run_ms,
            run_start_us,
            trace: EngineTrace::OrtJson { json, warmup },
        })
    }

    fn open_session(
        model: &Path,
        opts: &EngineOptions,
        profile: Option<&Path>,
    ) -> Result<OrtSession> {
        let rt = runtime(opts)?;
        std::fs::metadata(model).map_err(|e| Error::io(model, e))?;
        let mut fallbacks = Vec::new();
        let (session, provider) = commit(rt, model, opts, &mut fallbacks, profile)?;
        if session.inputs().len() != 1 {
            return Err(engine_err(
                model,
                &format!(
                    "the model has {} inputs; edgebench runs single-input models",
                    session.inputs().len()
                ),
            ));
        }
        let input = &session.inputs()[0];
        if let Some(t) = input.dtype().tensor_type()
            && t != ort::value::TensorElementType::Float32
        {
            return Err(engine_err(
                model,
                &format!("input {:?} is {t}, edgebench feeds float32", input.name()),
            ));
        }
        let input_name = input.name().to_string();
        let output_name = session
            .outputs()
            .first()
            .map(|o| o.name().to_string())
            .ok_or_else(|| engine_err(model, "the model has no outputs"))?;
        Ok(OrtSession {
            session,
            input_name,
            output_name,
            path: model.to_path_buf(),
            info: SessionInfo {
                engine: "ort",
                provider: provider.ort_name().to_string(),
                version: rt.version.clone(),
                fallbacks,
                input_shape: opts.input_shape.clone(),
            },
        })
    }

    struct OrtSession {
        session: ort::session::Session,
        input_name: String,
        output_name: String,
        path: PathBuf,
        info: SessionInfo,
    }

    impl Session for OrtSession {
        fn run(&mut self, input: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
            check_input_shape(&self.info, &input)?;
            let path = &self.path;
            let err = |e: ort::Error| engine_err(path, &e.to_string());
            let input = input.as_standard_layout();
            let tensor = TensorRef::from_array_view(&input).map_err(err)?;
            let outputs = self
                .session
                .run(ort::inputs![self.input_name.as_str() => tensor])
                .map_err(err)?;
            let out = outputs
                .get(&self.output_name)
                .ok_or_else(|| engine_err(path, "the first output is missing"))?;
            let view = out.try_extract_array::<f32>().map_err(err)?;
            Ok(view.to_owned())
        }

        fn info(&self) -> &SessionInfo {
            &self.info
        }
    }
}

#[cfg(not(feature = "ort"))]
mod stub {
    use std::path::Path;

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
}
