//! `edgebench quantize`: static post-training int8 quantization of an ONNX CNN into a
//! QDQ model, calibrated on the user's images, or its conversion to fp16 (`--to fp16`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use edgebench_runtime::fsutil::IoPaths;
use edgebench_runtime::model;
use edgebench_runtime::quant::calib::Method;
use edgebench_runtime::quant::fp16;
use edgebench_runtime::quant::ptq::{self, QuantizeConfig};
use edgebench_runtime::quant::qdq::{self, Activations};

use crate::cli::{EngineArgs, ModelInputArgs, parse_count};

#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// Built-in model name, spec .toml or fp32 .onnx file.
    pub model: String,
    /// Write the int8 QDQ (or fp16) model here.
    #[arg(short, long, value_name = "OUT.onnx")]
    pub output: PathBuf,
    /// Target precision: int8 (static post-training quantization, needs --calibrate) or
    /// fp16 (weights and compute in float16, inputs and outputs kept float32; for the
    /// CUDA/TensorRT providers and tract).
    #[arg(long, value_enum, default_value = "int8")]
    pub to: To,
    /// Calibration images used: a seeded random sample of N (the same N every time;
    /// all of them when the data has fewer).
    #[arg(long, default_value_t = ptq::DEFAULT_IMAGES, value_name = "N", value_parser = parse_count::<u64>)]
    pub calibrate_images: u64,
    /// Range of each activation: minmax, percentile:P (e.g. percentile:99.99), entropy
    /// (KL divergence, as TensorRT) or mse.
    #[arg(long, default_value = "minmax")]
    pub method: Method,
    /// Activation form: asymmetric (ONNX Runtime's CPU kernels; a ReLU after a
    /// quantized node folds away) or symmetric (zero point 0, as TensorRT requires).
    #[arg(long, default_value = "asymmetric")]
    pub activations: Activations,
    /// Keep these nodes in fp32 (node names, or first output names; comma-separated or
    /// repeated).
    #[arg(long, value_name = "NODE", value_delimiter = ',')]
    pub keep_fp32: Vec<String>,
    /// Keep the last Conv/Gemm/MatMul (the classifier) in fp32.
    #[arg(long)]
    pub keep_last: bool,
    /// 7-bit weights (−64…64): exact on ONNX Runtime's CPU int8 kernels on x86-64
    /// without VNNI (AVX2 only), whose 16-bit intermediate sums saturate with full-range
    /// weights; costs one bit of weight resolution. Not needed for VNNI CPUs, AArch64 or
    /// TensorRT.
    #[arg(long)]
    pub reduce_range: bool,
    /// Loader worker threads for the calibration images (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Also write the preprocessed calibration images as .npy ([N, C, H, W] float32), to
    /// calibrate another quantizer on exactly the same inputs (scripts/ort-quantize.py).
    #[arg(long, value_name = "FILE.npy")]
    pub save_calibration: Option<PathBuf>,
    /// Print every tensor's calibrated range (default: the summary and the widest ones).
    #[arg(long)]
    pub ranges: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model_input: ModelInputArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum To {
    Int8,
    Fp16,
}

pub fn run(args: QuantizeArgs) -> anyhow::Result<()> {
    let _scratch = edgebench_runtime::scratch::Scratch::begin();
    if args.to == To::Fp16 {
        return run_fp16(&args);
    }
    let Some(calibrate) = args.model_input.calibrate.clone() else {
        return Err(edgebench_runtime::Error::Invalid(
            "quantize needs calibration images: give --calibrate DATA (an image folder or TFRecord)"
                .into(),
        )
        .into());
    };
    IoPaths::new()
        .input("MODEL", &args.model)
        .input("--calibrate", &calibrate)
        .output("--output", &args.output)
        .output_opt("--save-calibration", args.save_calibration.as_deref())
        .check()?;
    let prepared = model::prepare(&args.model, &args.model_input.prepare_options(Some(1)))?;
    let cfg = QuantizeConfig {
        calibrate,
        images: args.calibrate_images,
        method: args.method,
        options: qdq::Options {
            keep_last: args.keep_last,
            keep_fp32: args.keep_fp32.clone(),
            activations: args.activations,
            reduce_range: args.reduce_range,
        },
        engine: args.engine.engine,
        engine_options: args.engine.settings().options(prepared.input_shape.clone()),
        workers: args.workers,
        save_calibration: args.save_calibration.clone(),
    };
    let quiet = args.json;
    if !args.reduce_range && edgebench_runtime::quant::int8_saturates_here() && !quiet {
        eprintln!(
            "note: this CPU has no VNNI: ONNX Runtime's int8 kernels here saturate with full-range weights, so this model runs inexactly on this machine's CPU (exact on VNNI CPUs, AArch64 and TensorRT); --reduce-range quantizes for this machine"
        );
    }
    let mut say = |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let report = ptq::quantize(&prepared, &cfg, &args.output, &mut say)
        .with_context(|| format!("quantizing {}", prepared.name))?;
    if args.json {
        return super::print_json("the quantization report", &report);
    }
    print!("{}", report.text(args.ranges));
    Ok(())
}

fn run_fp16(args: &QuantizeArgs) -> anyhow::Result<()> {
    let int8_only = [
        ("--keep-fp32", !args.keep_fp32.is_empty()),
        ("--keep-last", args.keep_last),
        ("--save-calibration", args.save_calibration.is_some()),
        ("--ranges", args.ranges),
        ("--reduce-range", args.reduce_range),
    ];
    if let Some((flag, _)) = int8_only.iter().find(|(_, given)| *given) {
        return Err(edgebench_runtime::Error::Invalid(format!(
            "{flag} applies to --to int8 only (fp16 converts every weight and needs no calibration)"
        ))
        .into());
    }
    IoPaths::new()
        .input("MODEL", &args.model)
        .output("--output", &args.output)
        .check()?;
    if args.model_input.calibrate.is_some() && !args.json {
        eprintln!("note: --calibrate is not used by --to fp16 (no calibration needed)");
    }
    let prepared = model::prepare(&args.model, &args.model_input.prepare_options(Some(1)))?;
    let report = fp16::write(&prepared, &args.output)
        .with_context(|| format!("converting {} to fp16", prepared.name))?;
    if args.json {
        return super::print_json("the conversion report", &report);
    }
    print!("{}", report.text());
    Ok(())
}
