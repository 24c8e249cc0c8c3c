//! Precision variants by suffix: `lean@int8`, `lean@fp16`, `my.onnx@int8` in `run`,
//! `bench`, `compare` and `profile`. The fp32 model is prepared as usual, then converted
//! on the fly into the run's temporary folder: `@int8` quantized and calibrated on
//! `--calibrate` images with the defaults of `edgebench quantize` (256 images, minmax,
//! asymmetric activations; 7-bit weights on an x86-64 CPU without VNNI, where ONNX
//! Runtime's int8 kernels saturate otherwise), `@fp16` converted as `quantize --to fp16`
//! does.

use std::path::Path;

use super::calib::Method;
use super::ptq::{self, QuantizeConfig};
use super::qdq;
use crate::engine::{EngineChoice, EngineOptions};
use crate::error::{Error, Result};
use crate::model::{self, PrepareOptions, Prepared};

/// The precisions a suffix may ask for.
pub const SUFFIXES: &str = "int8, @fp16";

/// `(model, precision)` of `arg` when it ends in `@word` and is not an existing file
/// (a file name may contain `@`).
pub fn split(arg: &str) -> Option<(&str, &str)> {
    if Path::new(arg).exists() {
        return None;
    }
    let (base, suffix) = arg.rsplit_once('@')?;
    let word = !suffix.is_empty() && suffix.chars().all(|c| c.is_ascii_alphanumeric());
    (word && !base.is_empty()).then_some((base, suffix))
}

/// [`model::prepare`], and for `MODEL@int8` the model quantized on the fly.
pub fn prepare(arg: &str, opts: &PrepareOptions) -> Result<Prepared> {
    let Some((base, suffix)) = split(arg) else {
        return model::prepare(arg, opts);
    };
    match suffix.to_ascii_lowercase().as_str() {
        "int8" => {}
        "fp16" => return prepare_fp16(arg, base, opts),
        "bf16" => {
            return Err(Error::Invalid(format!(
                "{arg}: @bf16 is not available: no engine here runs bf16 convolutions (known: @{SUFFIXES})"
            )));
        }
        _ => {
            return Err(Error::Invalid(format!(
                "{arg}: unknown precision suffix @{suffix} (known: @{SUFFIXES})"
            )));
        }
    }
    let Some(data) = opts.calibrate.clone() else {
        return Err(Error::Invalid(format!(
            "{arg}: @int8 quantizes the model on the fly and needs calibration images: give --calibrate DATA"
        )));
    };
    let fp32 = model::prepare(base, opts)?;
    let dir = crate::scratch::tempdir()?;
    let out = dir.path().join(format!("{}-int8.onnx", stem(base)));
    quantize_default(&fp32, &data, &out).map_err(|e| e.context(format!("quantizing {arg}")))?;
    let name = format!("{}@int8", fp32.name);
    Ok(fp32.replaced_by(out, name, dir))
}

/// Quantizes `fp32` into `out` as `@int8` does: calibrated on up to 256 images of
/// `data`, minmax, asymmetric activations, 7-bit weights where this CPU needs them.
pub fn quantize_default(fp32: &Prepared, data: &Path, out: &Path) -> Result<ptq::QuantizeReport> {
    let cfg = QuantizeConfig {
        calibrate: data.to_path_buf(),
        images: ptq::DEFAULT_IMAGES,
        method: Method::MinMax,
        // Measured here: on an x86-64 CPU without VNNI, ONNX Runtime's int8 kernels
        // are exact only with 7-bit weights.
        options: qdq::Options {
            reduce_range: super::int8_saturates_here(),
            ..Default::default()
        },
        engine: EngineChoice::Auto,
        engine_options: EngineOptions::for_shape(fp32.input_shape.clone()),
        workers: 0,
        save_calibration: None,
    };
    ptq::quantize(fp32, &cfg, out, &mut |_| {})
}

/// `MODEL@fp16`: the fp32 model converted to fp16 in the run's temporary folder.
fn prepare_fp16(arg: &str, base: &str, opts: &PrepareOptions) -> Result<Prepared> {
    let fp32 = model::prepare(base, opts)?;
    let dir = crate::scratch::tempdir()?;
    let out = dir.path().join(format!("{}-fp16.onnx", stem(base)));
    super::fp16::write(&fp32, &out).map_err(|e| e.context(format!("converting {arg}")))?;
    let name = format!("{}@fp16", fp32.name);
    Ok(fp32.replaced_by(out, name, dir))
}

fn stem(base: &str) -> String {
    Path::new(base)
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_split_off_names_but_not_existing_files() {
        assert_eq!(split("lean@int8"), Some(("lean", "int8")));
        assert_eq!(split("dir/my.onnx@int8"), Some(("dir/my.onnx", "int8")));
        assert_eq!(split("lean"), None);
        assert_eq!(split("lean@"), None);
        assert_eq!(split("@int8"), None);
        assert_eq!(split("a@b/c.onnx"), None, "a path, not a suffix");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m@int8");
        std::fs::write(&f, b"x").unwrap();
        assert_eq!(split(f.to_str().unwrap()), None);
    }

    #[test]
    fn unknown_suffixes_and_missing_calibration_are_usage_errors() {
        let opts = PrepareOptions::default();
        let e = prepare("lean@int4", &opts).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)));
        assert!(
            e.to_string().contains("unknown precision suffix @int4"),
            "{e}"
        );
        let e = prepare("lean@int8", &opts).unwrap_err().to_string();
        assert!(e.contains("--calibrate DATA"), "{e}");
        let e = prepare("lean@bf16", &opts).unwrap_err().to_string();
        assert!(e.contains("@bf16 is not available"), "{e}");
    }
}
