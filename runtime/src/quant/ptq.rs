//! Static post-training quantization of one model, end to end (`edgebench quantize`):
//! plan the QDQ rewrite, observe the tensors it needs on calibration images streamed
//! through the loader with the model's own preprocessing, choose each range by the
//! calibration method, rewrite, and write the model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::{ArrayViewD, IxDyn};
use serde::Serialize;

use super::calib::{Histogram, Method};
use super::qdq::{self, Kept, TensorRange};
use crate::bench::pipeline::{Data, DataConfig};
use crate::engine::{self, EngineChoice, EngineOptions};
use crate::error::{Error, Result};
use crate::model::Prepared;

/// Default number of calibration images.
pub const DEFAULT_IMAGES: u64 = 256;
/// Seed of the calibration sample (the same images every time).
pub const CALIBRATION_SEED: u64 = 0;
/// Images per calibration batch.
pub const CALIBRATION_BATCH: usize = 8;

/// How to quantize.
#[derive(Debug, Clone)]
pub struct QuantizeConfig {
    /// Calibration images: folder or TFRecord.
    pub calibrate: PathBuf,
    /// At most this many images are used.
    pub images: u64,
    pub method: Method,
    pub options: qdq::Options,
    /// Engine that runs the fp32 model on the calibration images.
    pub engine: EngineChoice,
    pub engine_options: EngineOptions,
    /// Loader workers (0: all cores).
    pub workers: usize,
    /// Also write the preprocessed calibration images here (`.npy`, `[N, …]` float32),
    /// for another quantizer to calibrate on exactly the same inputs.
    pub save_calibration: Option<PathBuf>,
}

/// What was done, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct QuantizeReport {
    pub model: String,
    pub output: PathBuf,
    pub input_shape: Vec<usize>,
    pub method: String,
    pub activations: String,
    /// Weights in −64…64 (7 bits) instead of −127…127.
    pub reduce_range: bool,
    pub calibration_data: PathBuf,
    pub calibration_images: u64,
    /// How the calibration images became inputs (also written into the model).
    pub preprocess: String,
    /// The engine that ran the calibration (`ort`, `tract`) and its provider.
    pub calibration_engine: String,
    /// Quantized nodes per op type.
    pub quantized: Vec<(String, usize)>,
    pub kept_fp32: Vec<Kept>,
    pub folded_relus: Vec<String>,
    pub ranges: Vec<TensorRange>,
    pub fp32_bytes: u64,
    pub int8_bytes: u64,
}

/// Quantize `prepared` (batch 1) into `out`, calibrating on `cfg.calibrate`; `say`
/// receives progress lines. Nothing is written unless everything succeeded.
pub fn quantize(
    prepared: &Prepared,
    cfg: &QuantizeConfig,
    out: &Path,
    say: &mut dyn FnMut(&str),
) -> Result<QuantizeReport> {
    let model = crate::onnx::read_model(&prepared.path)?;
    let plan = qdq::plan(&model, &prepared.path, &cfg.options)?;
    let ranges = calibrate(prepared, &model, &plan, cfg, say)?;
    let mut rewritten = qdq::rewrite(&model, &prepared.path, &plan, &ranges.ranges)?;
    let (fp32_bytes, int8_bytes) = super::write_variant(&mut rewritten.model, prepared, out)?;
    if let (Some(path), Some(images)) = (&cfg.save_calibration, &ranges.saved) {
        crate::data::npy::write_npy(path, images)?;
    }
    Ok(QuantizeReport {
        model: prepared.name.clone(),
        output: out.to_path_buf(),
        input_shape: prepared.input_shape.clone(),
        method: cfg.method.to_string(),
        activations: cfg.options.activations.to_string(),
        reduce_range: cfg.options.reduce_range,
        calibration_data: cfg.calibrate.clone(),
        calibration_images: ranges.images,
        preprocess: crate::model::describe_preprocess(&prepared.preprocess, prepared.layout),
        calibration_engine: ranges.engine,
        quantized: plan.quantized_ops(),
        kept_fp32: plan.kept.clone(),
        folded_relus: plan.folded_relus.clone(),
        ranges: rewritten.ranges,
        fp32_bytes,
        int8_bytes,
    })
}

/// Ranges observed on the calibration images.
pub struct Calibrated {
    /// `(lo, hi)` per tensor of the plan.
    pub ranges: HashMap<String, (f32, f32)>,
    pub images: u64,
    /// The preprocessed images, when `save_calibration` asked for them.
    pub saved: Option<ndarray::ArrayD<f32>>,
    /// `engine (provider)`.
    pub engine: String,
}

/// Run the fp32 model with the plan's tensors exposed on up to `cfg.images` images and
/// choose each tensor's range by `cfg.method`.
pub fn calibrate(
    prepared: &Prepared,
    model: &crate::onnx::pb::ModelProto,
    plan: &qdq::Plan,
    cfg: &QuantizeConfig,
    say: &mut dyn FnMut(&str),
) -> Result<Calibrated> {
    let mut shape = prepared.input_shape.clone();
    if shape.len() != 4 {
        return Err(Error::Invalid(format!(
            "{}: input shape {shape:?} is not an image model's; calibration feeds images",
            prepared.name
        )));
    }
    let data = Data::open(
        &DataConfig {
            path: cfg.calibrate.clone(),
            workers: cfg.workers,
            layout: prepared.layout,
            preprocess: prepared.preprocess.clone(),
        },
        &shape,
    )
    .map_err(|e| calibration_error(&cfg.calibrate, e))?;
    let batch = CALIBRATION_BATCH.min(cfg.images.max(1) as usize);
    shape[0] = batch;

    // The fp32 model with the tensors to observe as extra outputs.
    let dir = crate::scratch::tempdir()?;
    let calib_path = dir.path().join("calibration.onnx");
    let calib = qdq::calibration_model(model, plan);
    let outputs: Vec<String> = calib
        .graph
        .as_ref()
        .map(|g| g.output.iter().map(|o| o.name.clone()).collect())
        .unwrap_or_default();
    crate::fsutil::write_atomic(&calib_path, &crate::onnx::encode_model(&calib))?;
    let mut opts = cfg.engine_options.clone();
    opts.input_shape = shape.clone();
    let mut session = engine::open(&calib_path, cfg.engine, &opts)?;
    let info = session.info().clone();
    say(&format!(
        "calibrating {} tensors on up to {} images of {} ({} {}, {})",
        plan.tensors.len(),
        cfg.images,
        cfg.calibrate.display(),
        info.engine,
        info.version,
        cfg.method
    ));

    let input_name = model
        .graph
        .as_ref()
        .and_then(|g| g.input.first())
        .map(|i| i.name.clone())
        .unwrap_or_default();
    let mut hist: HashMap<&str, Histogram> = plan
        .tensors
        .iter()
        .map(|t| (t.as_str(), Histogram::new()))
        .collect();
    let mut done = 0u64;
    let mut next_note = 64u64;
    let mut saved: Vec<f32> = Vec::new();
    let images = data
        // A seeded random sample: a folder sorted by class would otherwise calibrate on
        // its first classes only.
        .for_each_batch(
            batch,
            cfg.images,
            Some(CALIBRATION_SEED),
            |pixels, labels| {
                let rows = labels.len();
                let view = ArrayViewD::from_shape(IxDyn(&shape), pixels)
                    .map_err(|e| Error::Invalid(format!("calibration batch: {e}")))?;
                let real = &pixels[..pixels.len() / batch * rows];
                if let Some(h) = hist.get_mut(input_name.as_str()) {
                    h.add(real)?;
                }
                if cfg.save_calibration.is_some() {
                    saved.extend_from_slice(real);
                }
                let values = session.run_all(view)?;
                for (name, v) in outputs.iter().zip(&values) {
                    let Some(h) = hist.get_mut(name.as_str()) else {
                        continue;
                    };
                    let v = v.as_slice().ok_or_else(|| {
                        Error::Invalid(format!("tensor {name:?} came back not contiguous"))
                    })?;
                    // Only the real images of a padded batch count.
                    h.add(&v[..v.len() / batch * rows]).map_err(|e| {
                        Error::Invalid(format!("tensor {name:?} on the calibration images: {e}"))
                    })?;
                }
                done += rows as u64;
                if done >= next_note {
                    say(&format!("  {done} images"));
                    next_note *= 2;
                }
                Ok(std::ops::ControlFlow::Continue(()))
            },
        )
        .map_err(|e| calibration_error(&cfg.calibrate, e))?;
    if images == 0 {
        return Err(Error::Input {
            path: cfg.calibrate.clone(),
            reason: "no calibration image could be read".into(),
        });
    }
    let saved = match cfg.save_calibration {
        Some(_) => {
            let mut dims = shape.clone();
            dims[0] = images as usize;
            Some(
                ndarray::ArrayD::from_shape_vec(IxDyn(&dims), saved)
                    .map_err(|e| Error::Invalid(format!("calibration images: {e}")))?,
            )
        }
        None => None,
    };
    // The model's own outputs are never clipped (clipped scores tie at the top, and the
    // top class is lost): their range is always what calibration saw.
    let graph_outputs: Vec<&str> = model
        .graph
        .as_ref()
        .map(|g| g.output.iter().map(|o| o.name.as_str()).collect())
        .unwrap_or_default();
    let mut ranges = HashMap::with_capacity(hist.len());
    for (name, h) in &hist {
        let (lo, hi) = h.min_max().ok_or_else(|| {
            Error::Invalid(format!(
                "tensor {name:?} was never observed during calibration"
            ))
        })?;
        let method = if graph_outputs.contains(name) {
            Method::MinMax
        } else {
            cfg.method
        };
        let t = h.threshold(method)?;
        ranges.insert(name.to_string(), (lo.max(-t), hi.min(t)));
    }
    Ok(Calibrated {
        ranges,
        images,
        saved,
        engine: format!("{} ({})", info.engine, info.provider),
    })
}

fn calibration_error(path: &Path, e: Error) -> Error {
    match e {
        Error::Input { .. } | Error::Io { .. } => e,
        other => Error::Input {
            path: path.to_path_buf(),
            reason: format!("calibration: {other}"),
        },
    }
}
