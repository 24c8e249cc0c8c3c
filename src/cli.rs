//! Command-line flags (clap derive). Each flag's documentation lives beside it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use edgebench_runtime::engine::{EngineChoice, EngineSettings, Provider};
use edgebench_runtime::model::spec::InputShape;

#[derive(Debug, Parser)]
#[command(
    name = "edgebench",
    version,
    about = "Run, inspect and compare lean CNNs on edge devices (NVIDIA Jetson first)",
    long_about = "Run, inspect and compare lean CNNs on edge devices (NVIDIA Jetson first).\n\n\
        MODEL arguments take a built-in model name (see `edgebench models list`), a model \
        spec .toml, or any .onnx file."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Replace read-only output files (they keep their permissions). Without it a
    /// read-only file at an output path is refused.
    #[arg(long, global = true)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List, show or export the built-in models.
    #[command(subcommand)]
    Models(ModelsCmd),
    /// Analyse an ONNX model: per-node shapes, parameters, MACs, activation memory.
    Inspect(InspectArgs),
    /// Run a model on a .npy tensor or an image and write the output as .npy.
    Run(RunArgs),
    /// Show which engines and ONNX Runtime execution providers this build can use.
    Engines(EnginesArgs),
    /// Latency (SingleStream) and throughput (Offline) of one model, with memory and GFLOP/s.
    Bench(crate::commands::bench::BenchArgs),
    /// Compare models under the same conditions (default: the built-in heavy vs lean).
    Compare(crate::commands::compare::CompareArgs),
    /// This machine: CPU, cores, SIMD level, Jetson board, measured GEMM peak.
    Hw(crate::commands::hw::HwArgs),
    /// Per-node time of one model, sorted by time, with MACs and GFLOP/s per node.
    Profile(crate::commands::profile::ProfileArgs),
    /// List the Jetson boards (targets/*.toml) and their budgets.
    Targets(crate::commands::targets::TargetsArgs),
    /// Data sets: make a synthetic labelled image set, pack a folder into TFRecord shards.
    Data(crate::commands::data::DataArgs),
    /// Measure the input pipeline alone: streaming loader or the naive baseline.
    Loader(crate::commands::loader::LoaderArgs),
    /// Train or fine-tune a model within a memory budget; validate, checkpoint, export ONNX.
    Train(crate::commands::train::TrainArgs),
    /// Quantize a model to int8 (QDQ ONNX, calibrated on images) or convert it to fp16.
    Quantize(crate::commands::quantize::QuantizeArgs),
    /// Find the most accurate width × input size × precision of a model that fits a
    /// board's budgets: measure every candidate, train the ones that fit with
    /// successive halving, export the winner.
    Shrink(crate::commands::shrink::ShrinkArgs),
    /// Internal: a measuring worker process (started by bench/compare).
    #[command(name = "__worker", hide = true)]
    Worker { config: String },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCmd {
    /// List the built-in models with parameters and MACs.
    List {
        /// Input size HxWxC to compute MACs at (default: each model's own).
        #[arg(long, value_name = "HxWxC")]
        input: Option<InputShape>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one model's layers with shapes, parameters and MACs.
    Show {
        /// Built-in name or spec .toml.
        model: String,
        /// Input size HxWxC (default: the model's own).
        #[arg(long, value_name = "HxWxC")]
        input: Option<InputShape>,
    },
    /// Export a model to ONNX (opset 13, NCHW, He-initialised weights).
    Export {
        /// Built-in name or spec .toml.
        model: String,
        /// Output .onnx file (written atomically).
        #[arg(short, long, value_name = "FILE.onnx")]
        output: PathBuf,
        /// Input size HxWxC (default: the model's own, e.g. 256x256x3).
        #[arg(long, value_name = "HxWxC")]
        input: Option<InputShape>,
        /// Seed for the He-initialised weights.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// ONNX file, built-in model name or spec .toml.
    pub model: String,
    /// Full input shape when the model does not fix it, e.g. 1x3x224x224.
    #[arg(long, value_name = "NxCxHxW", value_parser = parse_dims)]
    pub input_shape: Option<Dims>,
    /// Input size HxWxC for built-in models.
    #[arg(long, value_name = "HxWxC")]
    pub input: Option<InputShape>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// How a MODEL argument becomes a runnable model: input size and weights' seed. Shared
/// by every command that runs a model.
#[derive(Debug, Args, Clone)]
pub struct ModelInputArgs {
    /// Input size HxWxC for built-in models and specs (default: the model's own).
    #[arg(long, value_name = "HxWxC")]
    pub size: Option<InputShape>,
    /// Full input shape when an ONNX file does not fix it, e.g. 1x3x224x224.
    #[arg(long, value_name = "NxCxHxW", value_parser = parse_dims)]
    pub input_shape: Option<Dims>,
    /// Seed for built-in models' weights and for the random input.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Calibration images (image folder or TFRecord) for int8: `quantize`, and models
    /// given as `MODEL@int8`, quantized on the fly (256 images, minmax). `MODEL@fp16`
    /// needs none.
    #[arg(long, value_name = "DATA")]
    pub calibrate: Option<PathBuf>,
    #[command(flatten)]
    pub preprocess: PreprocessArgs,
}

/// How image pixels become the model's input, over what the model carries (a built-in
/// model's spec, or the metadata edgebench writes into the models it exports, quantizes
/// and converts; else x/255, NCHW or NHWC from the input shape).
#[derive(Debug, Args, Clone, Default)]
pub struct PreprocessArgs {
    /// Pixel scale before mean/std: value = (pixel · SCALE − mean) / std (e.g. 1 for
    /// 0…255 inputs; default 1/255).
    #[arg(long, value_name = "SCALE", allow_hyphen_values = true)]
    pub scale: Option<f32>,
    /// Mean subtracted per channel after scaling: one value or R,G,B (ImageNet:
    /// 0.485,0.456,0.406).
    #[arg(
        long,
        value_name = "M",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub mean: Option<Vec<f32>>,
    /// Std divided per channel: one value or R,G,B (ImageNet: 0.229,0.224,0.225).
    #[arg(
        long,
        value_name = "S",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub std: Option<Vec<f32>>,
    /// Image tensor layout: nchw or nhwc (e.g. a tf2onnx Keras export).
    #[arg(long)]
    pub layout: Option<edgebench_runtime::model::Layout>,
}

impl PreprocessArgs {
    /// The runtime's override.
    pub fn to_override(&self) -> edgebench_runtime::model::PreprocessOverride {
        edgebench_runtime::model::PreprocessOverride {
            scale: self.scale,
            mean: self.mean.clone(),
            std: self.std.clone(),
            layout: self.layout,
        }
    }
}

impl ModelInputArgs {
    /// The runtime's options for preparing a model at `batch`.
    pub fn prepare_options(
        &self,
        batch: Option<usize>,
    ) -> edgebench_runtime::model::PrepareOptions {
        edgebench_runtime::model::PrepareOptions {
            input: self.size,
            input_shape: self.input_shape.clone().map(|d| d.0),
            batch,
            seed: self.seed,
            calibrate: self.calibrate.clone(),
            preprocess: self.preprocess.to_override(),
        }
    }
}

/// Engine selection flags shared by every command that runs a model.
#[derive(Debug, Args, Clone)]
pub struct EngineArgs {
    /// Engine: auto (ONNX Runtime when its library loads, else tract), ort or tract.
    #[arg(long, default_value = "auto")]
    pub engine: EngineChoice,
    /// ONNX Runtime execution providers in order of preference.
    #[arg(long, default_value = "cpu", value_name = "tensorrt,cuda,cpu", value_parser = parse_providers)]
    pub ep: ProviderList,
    /// TensorRT: allow fp16 precision.
    #[arg(long)]
    pub trt_fp16: bool,
    /// TensorRT: allow int8 precision; for a QDQ model from `edgebench quantize
    /// --activations symmetric`, explicit quantization (no calibration table).
    #[arg(long)]
    pub trt_int8: bool,
    /// CUDA: fp32 convolutions and matrix products in full fp32 instead of TF32 (ONNX
    /// Runtime's default on Ampere and newer GPUs: faster, ≈ 1e-3 relative error).
    #[arg(long)]
    pub no_tf32: bool,
    /// TensorRT: engine cache directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub trt_cache: Option<PathBuf>,
    /// CUDA/TensorRT device id.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..))]
    pub cuda_device: i32,
    /// Intra-op threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// ONNX Runtime shared library (default: $ORT_DYLIB_PATH, then the repo's .cache).
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
}

impl EngineArgs {
    /// The engine settings these flags resolve to.
    pub fn settings(&self) -> EngineSettings {
        EngineSettings {
            engine: self.engine,
            providers: self.ep.0.clone(),
            trt_fp16: self.trt_fp16,
            trt_int8: self.trt_int8,
            no_tf32: self.no_tf32,
            trt_cache_dir: self.trt_cache.clone(),
            cuda_device: self.cuda_device,
            threads: self.threads,
            ort_library: self.ort_lib.clone(),
        }
    }
}

/// A parsed `--ep` list (a newtype so clap does not treat it as a repeated flag).
#[derive(Debug, Clone)]
pub struct ProviderList(pub Vec<Provider>);

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Built-in model name, spec .toml or .onnx file.
    pub model: String,
    /// Input: a .npy tensor, an image (JPEG/PNG/...), or `random` (seeded uniform [0,1)).
    #[arg(short, long, value_name = "IN")]
    pub input: String,
    /// Write the model's output here as .npy.
    #[arg(short, long, value_name = "OUT.npy")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub model_input: ModelInputArgs,
    /// Run this many timed inferences and report latency.
    #[arg(long, default_value_t = 1, value_parser = parse_count::<usize>)]
    pub repeat: usize,
    /// Untimed inferences before the timed ones.
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct EnginesArgs {
    /// ONNX Runtime shared library (default: $ORT_DYLIB_PATH, then the repo's .cache).
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn parse_providers(s: &str) -> Result<ProviderList, String> {
    edgebench_runtime::engine::parse_providers(s)
        .map(ProviderList)
        .map_err(|e| e.to_string())
}

/// A parsed `NxCxHxW` shape (a newtype so clap does not treat it as a repeated flag).
#[derive(Debug, Clone)]
pub struct Dims(pub Vec<usize>);

pub(crate) fn parse_dims(s: &str) -> Result<Dims, String> {
    let dims = s
        .split(['x', 'X', ','])
        .map(|d| d.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| format!("invalid shape {s:?}: expected e.g. 1x3x224x224"))?;
    if dims.is_empty() || dims.contains(&0) {
        return Err(format!("invalid shape {s:?}: dimensions must be ≥ 1"));
    }
    Ok(Dims(dims))
}

/// A count of at least 1 (images per batch, passes, queries, repeats). Bad values are
/// refused when the flag is parsed, so clap reports them as usage errors (exit 2) with
/// the flag's name; checks that need more than the one value (a model, a data set) return
/// `Error::Invalid`, which the CLI also maps to exit 2.
pub(crate) fn parse_count<T: std::str::FromStr + PartialEq + From<u8>>(
    s: &str,
) -> Result<T, String> {
    match s.trim().parse::<T>() {
        Ok(v) if v == T::from(0) => Err("must be at least 1".into()),
        Ok(v) => Ok(v),
        Err(_) => Err("not a whole number".into()),
    }
}

/// A duration in seconds: finite and not negative (`nan`, `inf` and `-1` are refused).
pub(crate) fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(_) => Err("must be a finite number of seconds ≥ 0".into()),
        Err(_) => Err("not a number of seconds".into()),
    }
}

/// A crop scale for augmentation: a fraction in (0, 1] of the image's side.
pub(crate) fn parse_crop(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("invalid crop scale {s:?}: a fraction in (0, 1]")),
    }
}
