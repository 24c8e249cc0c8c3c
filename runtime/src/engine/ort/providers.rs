//! Execution providers: the ones the loaded library has, registering one on a session
//! builder, and building a session on the user's providers in order, falling back as
//! allowed and saying so.

use std::ffi::CStr;
use std::path::Path;

use ort::ep::{self, ExecutionProvider};
use ort::session::builder::SessionBuilder;

use super::library::{RUNTIME, Runtime, runtime};
use super::one_line;
use super::session::{builder, engine_err};
use crate::engine::{EngineOptions, Provider};
use crate::error::{Error, Result};

/// Execution providers compiled into the loaded library (ONNX Runtime's
/// `GetAvailableProviders`). Loads the library found by the default lookup if none
/// is loaded yet; call [`probe`](super::probe) first to choose another.
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
                .with_device_id(opts.settings.cuda_device)
                .with_fp16(opts.settings.trt_fp16)
                .with_int8(opts.settings.trt_int8);
            if let Some(dir) = &opts.settings.trt_cache_dir {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create engine cache {}: {e}", dir.display()))?;
                trt = trt
                    .with_engine_cache(true)
                    .with_engine_cache_path(dir.display())
                    .with_timing_cache(true)
                    .with_timing_cache_path(dir.display());
            }
            trt.register(b)
        }
        Provider::Cuda => {
            let mut cuda = ep::CUDA::default().with_device_id(opts.settings.cuda_device);
            if opts.settings.no_tf32 {
                cuda = cuda.with_tf32(false);
            }
            cuda.register(b)
        }
        // ONNX Runtime's default keeps the CPU arena on; ort's `CPU::default()` turns it off.
        Provider::Cpu => ep::CPU::default().with_arena_allocator(true).register(b),
    };
    r.map_err(|e| one_line(&e.to_string()))
}

/// Build a session, registering the providers in order and falling back as allowed.
pub(super) fn commit(
    rt: &Runtime,
    model: &Path,
    opts: &EngineOptions,
    fallbacks: &mut Vec<String>,
    profile: Option<&Path>,
) -> Result<(ort::session::Session, Provider)> {
    let cpu_allowed = opts.settings.providers.contains(&Provider::Cpu);
    if (opts.settings.trt_fp16 || opts.settings.trt_cache_dir.is_some())
        && !opts.settings.providers.contains(&Provider::TensorRt)
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
    for &p in &opts.settings.providers {
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
                .map_err(|e| rejected(model, &e.to_string()))?;
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
        Err(e) => Err(rejected(model, &e.to_string())),
    }
}

/// ONNX Runtime's refusal of `model`; for an fp16 model without a kernel (its CPU
/// provider has no float16 convolution on x86-64), the way to run it.
fn rejected(model: &Path, reason: &str) -> Error {
    let fp16 =
        || crate::onnx::read_model(model).is_ok_and(|m| crate::quant::precision_of(&m) == "fp16");
    if reason.contains("Could not find an implementation") && fp16() {
        return engine_err(
            model,
            &format!(
                "{}; ONNX Runtime's CPU provider has no float16 kernel for it on this machine: run fp16 models on the cuda or tensorrt provider (--ep), or on the CPU with --engine tract",
                one_line(reason)
            ),
        );
    }
    engine_err(model, reason)
}
