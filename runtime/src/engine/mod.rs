//! Inference engines behind one seam: prepare a model file into a [`Session`], run it.
//!
//! Two engines exist: [`ort`] (ONNX Runtime through the `ort` crate, loaded at
//! run time, execution providers in a configurable order) and [`tract`]
//! (pure-Rust CPU fallback). Each sits behind a cargo feature; when a feature is off the
//! module still compiles and answers [`Error::NotCompiledIn`]. [`select::open`] picks the
//! engine for `--engine auto|ort|tract` and records why any fallback happened.

pub mod available;
pub mod ort;
pub mod select;
pub mod tract;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use ndarray::{ArrayD, ArrayViewD};
use serde::{Deserialize, Serialize};

use crate::alloc::{self, TooLarge};
use crate::error::{Error, Result};

pub use select::open;

/// Which engine the user asked for (serialised as `auto`, `ort`, `tract`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// ONNX Runtime when its library loads, tract otherwise.
    #[default]
    Auto,
    Ort,
    Tract,
}

impl EngineChoice {
    /// The engine that ran, from its name in a [`SessionInfo`] or a report (`ort` or
    /// `tract`): reopening with it runs the same engine again, with no second fallback.
    pub fn that_ran(name: &str) -> Self {
        if name == "ort" {
            Self::Ort
        } else {
            Self::Tract
        }
    }
}

impl FromStr for EngineChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "ort" | "onnxruntime" => Ok(Self::Ort),
            "tract" => Ok(Self::Tract),
            other => Err(Error::Invalid(format!(
                "unknown engine {other:?} (expected auto, ort or tract)"
            ))),
        }
    }
}

impl fmt::Display for EngineChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Ort => "ort",
            Self::Tract => "tract",
        })
    }
}

/// An ONNX Runtime execution provider, in the order the user prefers them (serialised
/// as `tensorrt`, `cuda`, `cpu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    TensorRt,
    Cuda,
    Cpu,
}

impl Provider {
    /// ONNX Runtime's own name for the provider.
    pub fn ort_name(self) -> &'static str {
        match self {
            Self::TensorRt => "TensorrtExecutionProvider",
            Self::Cuda => "CUDAExecutionProvider",
            Self::Cpu => "CPUExecutionProvider",
        }
    }
}

impl FromStr for Provider {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tensorrt" | "trt" => Ok(Self::TensorRt),
            "cuda" => Ok(Self::Cuda),
            "cpu" => Ok(Self::Cpu),
            other => Err(Error::Invalid(format!(
                "unknown execution provider {other:?} (expected tensorrt, cuda or cpu)"
            ))),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TensorRt => "tensorrt",
            Self::Cuda => "cuda",
            Self::Cpu => "cpu",
        })
    }
}

/// Parse a comma-separated provider list such as `tensorrt,cuda,cpu`.
pub fn parse_providers(s: &str) -> Result<Vec<Provider>> {
    let list = s
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(Provider::from_str)
        .collect::<Result<Vec<_>>>()?;
    if list.is_empty() {
        return Err(Error::Invalid("empty execution provider list".into()));
    }
    Ok(list)
}

/// The engine a user chose and its settings, for any input shape: what the engine flags
/// resolve to. Serialisable, so a bench worker receives exactly what its parent parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineSettings {
    /// `auto`, `ort` or `tract`.
    pub engine: EngineChoice,
    /// Execution providers for ONNX Runtime, in order of preference.
    pub providers: Vec<Provider>,
    /// TensorRT: allow fp16 kernels.
    pub trt_fp16: bool,
    /// TensorRT: allow int8 kernels; with a QDQ model (`edgebench quantize
    /// --activations symmetric`), explicit quantization from its scales, no calibration
    /// table.
    pub trt_int8: bool,
    /// CUDA: fp32 convolutions and matrix products in full fp32, not TF32 (ONNX
    /// Runtime's default on Ampere and newer GPUs, ≈ 1e-3 relative error).
    pub no_tf32: bool,
    /// TensorRT: directory for the engine cache (created if missing).
    pub trt_cache_dir: Option<PathBuf>,
    /// CUDA / TensorRT device id.
    pub cuda_device: i32,
    /// Intra-op threads (None: the engine's default, all cores).
    pub threads: Option<usize>,
    /// Explicit ONNX Runtime library path (else `ORT_DYLIB_PATH`, else the repo cache).
    pub ort_library: Option<PathBuf>,
}

impl Default for EngineSettings {
    /// The automatic engine choice on the CPU provider, engine defaults otherwise.
    fn default() -> Self {
        Self {
            engine: EngineChoice::Auto,
            providers: vec![Provider::Cpu],
            trt_fp16: false,
            trt_int8: false,
            no_tf32: false,
            trt_cache_dir: None,
            cuda_device: 0,
            threads: None,
            ort_library: None,
        }
    }
}

impl EngineSettings {
    /// The options a session for `input_shape` is opened with.
    pub fn options(&self, input_shape: Vec<usize>) -> EngineOptions {
        EngineOptions {
            settings: self.clone(),
            input_shape,
        }
    }
}

/// Everything an engine needs to prepare a session: the user's settings and the input
/// shape to specialise the plan for.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Providers, precisions, threads, library (an engine reads all but `engine`: the
    /// choice is made before it is opened).
    pub settings: EngineSettings,
    /// Fixed input shape (NCHW, including batch) used to specialise the plan.
    pub input_shape: Vec<usize>,
}

impl EngineOptions {
    /// CPU-only defaults for the given input shape.
    pub fn for_shape(input_shape: Vec<usize>) -> Self {
        EngineSettings::default().options(input_shape)
    }
}

/// What actually ran, and why anything else did not.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SessionInfo {
    /// `ort` or `tract`.
    pub engine: &'static str,
    /// The execution provider that runs the model (`CPUExecutionProvider`, … or `tract-cpu`).
    pub provider: String,
    /// Engine version (ONNX Runtime library version, or tract crate version).
    pub version: String,
    /// One line per fallback taken: what was tried and why it failed.
    pub fallbacks: Vec<String>,
    /// Input shape the session was prepared for.
    pub input_shape: Vec<usize>,
}

/// One node execution seen by tract's per-node timer, within one timed run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NodeEvent {
    /// Index of the timed run (warm-up runs are not counted).
    pub run: usize,
    /// The engine's node name (after its graph optimisations).
    pub name: String,
    /// The engine's operator name.
    pub op: String,
    /// Start, µs since the first timed run started.
    pub start_us: f64,
    /// Duration, µs.
    pub dur_us: f64,
    /// The execution provider that ran the node (ONNX Runtime's profile; `None` for
    /// tract, which has one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The element type of the node's first input as the engine ran it (`fp32`, `fp16`,
    /// `bf16`, `int8`, `uint8`, …): the precision the node computed in. `None` where the
    /// engine does not say (tract).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
}

/// What an engine's profiler recorded over the timed runs; see
/// [`crate::bench::profile`], which turns it into per-node figures.
#[derive(Debug, Clone)]
pub struct ProfiledRuns {
    /// What ran.
    pub info: SessionInfo,
    /// Wall time of each timed run, ms, as measured around the engine call.
    pub run_ms: Vec<f64>,
    /// Start of each timed run, µs since the first timed run started.
    pub run_start_us: Vec<f64>,
    /// The per-node record, in the engine's own form.
    pub trace: EngineTrace,
}

/// Per-node records as each engine produces them.
#[derive(Debug, Clone)]
pub enum EngineTrace {
    /// tract: every node of every timed run, timed by edgebench around each node.
    Events(Vec<NodeEvent>),
    /// ONNX Runtime: the profile JSON its profiler wrote (session start, the `warmup`
    /// untimed runs, then the timed runs); the file itself is already deleted.
    OrtJson { json: String, warmup: usize },
}

/// A prepared model, ready to run repeatedly.
pub trait Session {
    /// Run one inference on an f32 tensor of the prepared input shape.
    fn run(&mut self, input: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>>;
    /// Run one inference and return every graph output, in the graph's order (int8
    /// calibration reads intermediate tensors exposed as extra outputs).
    fn run_all(&mut self, input: ArrayViewD<'_, f32>) -> Result<Vec<ArrayD<f32>>>;
    /// Which engine and provider this session uses, and the fallbacks taken.
    fn info(&self) -> &SessionInfo;
}

/// Refuse, before an engine allocates anything, a model whose f32 input or largest
/// activation at `input_shape` cannot fit in physical memory: engines allocate such
/// tensors themselves and abort (tract) or fail obscurely (ONNX Runtime) when they
/// cannot. Activation sizes come from [`crate::model::analysis`]; a model the analysis
/// cannot read is left to the engine, which names its own errors. Callers name the
/// model as the user gave it with [`TooLarge::at`].
///
/// Not part of [`open`]: the analysis would count in the engines' init time and memory.
pub fn check_memory(model: &std::path::Path, input_shape: &[usize]) -> Result<(), TooLarge> {
    let what = || format!("{} (the input)", alloc::tensor(input_shape, "f32"));
    alloc::check(alloc::bytes_of(alloc::numel(input_shape), 4), what)?;
    let Ok(a) = crate::model::analysis::analyze_file(model, Some(input_shape)) else {
        return Ok(());
    };
    if let Some(n) = a.nodes.iter().max_by_key(|n| n.activation_bytes) {
        // The analysis saturates at u64::MAX: that is an overflow, not a size.
        let bytes = Some(n.activation_bytes).filter(|&b| b < u64::MAX);
        alloc::check(bytes, || {
            let dims: Vec<String> = input_shape.iter().map(usize::to_string).collect();
            format!(
                "the output of node {:?} ({}) at input {}",
                n.name,
                n.op,
                dims.join("x")
            )
        })?;
    }
    Ok(())
}

/// Check that `input` has exactly the prepared shape.
#[cfg_attr(not(any(feature = "ort", feature = "tract")), allow(dead_code))]
pub(crate) fn check_input_shape(info: &SessionInfo, input: &ArrayViewD<'_, f32>) -> Result<()> {
    if input.shape() != info.input_shape.as_slice() {
        return Err(Error::Shape {
            what: format!("{} input", info.engine),
            expected: format!("{:?}", info.input_shape),
            got: format!("{:?}", input.shape()),
        });
    }
    Ok(())
}
