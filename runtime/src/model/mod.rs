//! Models: specs of sequential CNNs, the built-in zoo, the ONNX writer and weight reader
//! ([`onnx_read`], for fine-tuning from a file), and the analysis
//! of any ONNX file. [`prepare`] turns a user's MODEL argument into an ONNX file an
//! engine can load, with the input shape and preprocessing it expects.

pub mod analysis;
pub mod onnx_read;
pub mod onnx_write;
pub mod spec;
pub mod zoo;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use spec::{InputShape, Preprocess, Spec};

/// Memory layout of a model's image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Layout {
    Nchw,
    Nhwc,
}

impl Layout {
    /// `nchw` or `nhwc`.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Nchw => "nchw",
            Layout::Nhwc => "nhwc",
        }
    }
}

impl std::str::FromStr for Layout {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "nchw" => Ok(Layout::Nchw),
            "nhwc" => Ok(Layout::Nhwc),
            other => Err(Error::Invalid(format!(
                "unknown layout {other:?} (expected nchw or nhwc)"
            ))),
        }
    }
}

/// Preprocessing given on the command line (`--scale`, `--mean`, `--std`, `--layout`),
/// over what the model carries (a spec's, or the `edgebench.preprocess` and
/// `edgebench.layout` metadata edgebench writes into every model it exports, quantizes
/// or converts).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreprocessOverride {
    pub scale: Option<f32>,
    pub mean: Option<Vec<f32>>,
    pub std: Option<Vec<f32>>,
    pub layout: Option<Layout>,
}

impl PreprocessOverride {
    /// Finite values; a positive scale and std; one value or one per channel (3).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if let Some(s) = self.scale
            && !(s.is_finite() && s > 0.0)
        {
            return bad(format!("--scale {s}: must be a positive finite number"));
        }
        for (flag, v) in [("--mean", &self.mean), ("--std", &self.std)] {
            let Some(v) = v else { continue };
            if !matches!(v.len(), 1 | 3) {
                return bad(format!(
                    "{flag}: {} values; give one (all channels) or three (R,G,B)",
                    v.len()
                ));
            }
            if let Some(x) = v.iter().find(|x| !x.is_finite()) {
                return bad(format!("{flag}: {x} is not a finite number"));
            }
            if flag == "--std"
                && let Some(x) = v.iter().find(|x| **x <= 0.0)
            {
                return bad(format!(
                    "--std: {x} must be positive (values are divided by it)"
                ));
            }
        }
        Ok(())
    }

    /// Put this preprocessing into `spec` before training it (the images feed, and the
    /// exported model carries, it): validated, and NCHW only (the training engine's
    /// layout; exported models take NCHW).
    pub fn apply_for_training(&self, spec: &mut crate::model::spec::Spec) -> Result<()> {
        self.validate()?;
        if self.layout == Some(Layout::Nhwc) {
            return Err(Error::Invalid(
                "--layout nhwc: the training engine is NCHW (exported models take NCHW)".into(),
            ));
        }
        let mut layout = Layout::Nchw;
        self.apply(&mut spec.preprocess, &mut layout);
        Ok(())
    }

    fn apply(&self, pre: &mut Preprocess, layout: &mut Layout) {
        if let Some(s) = self.scale {
            pre.scale = s;
        }
        if let Some(m) = &self.mean {
            pre.mean = m.clone();
        }
        if let Some(s) = &self.std {
            pre.std = s.clone();
        }
        if let Some(l) = self.layout {
            *layout = l;
        }
    }
}

/// `x·0.00392 − mean / std, nchw` (per-channel lists as given): the preprocessing in
/// words, for reports.
pub fn describe_preprocess(pre: &Preprocess, layout: Layout) -> String {
    let list = |v: &[f32]| {
        let parts: Vec<String> = v.iter().map(|x| format!("{x}")).collect();
        parts.join(",")
    };
    let inverse = 1.0 / f64::from(pre.scale);
    let mut s = if (inverse - inverse.round()).abs() < 1e-3 && inverse.round() > 1.0 {
        format!("x/{}", inverse.round())
    } else {
        format!("x·{}", pre.scale)
    };
    if !pre.mean.is_empty() {
        s += &format!(" − [{}]", list(&pre.mean));
    }
    if !pre.std.is_empty() {
        s += &format!(" / [{}]", list(&pre.std));
    }
    format!("{s}, {}", layout.name())
}

/// Write `pre` and `layout` into `model`'s metadata (`edgebench.preprocess`,
/// `edgebench.layout`), replacing what was there: the preprocessing travels with the
/// model.
pub fn write_preprocess_metadata(
    model: &mut crate::onnx::pb::ModelProto,
    pre: &Preprocess,
    layout: Layout,
) {
    let json = serde_json::to_string(pre).unwrap_or_default();
    crate::onnx::set_metadata(model, "edgebench.preprocess", json);
    crate::onnx::set_metadata(model, "edgebench.layout", layout.name().to_string());
}

/// A model ready for an engine: an ONNX file, its full input shape and preprocessing.
#[derive(Debug)]
pub struct Prepared {
    /// The ONNX file (a temporary export for specs).
    pub path: PathBuf,
    /// Display name: the zoo name, or the file name.
    pub name: String,
    /// The spec, when the model came from one.
    pub spec: Option<Spec>,
    /// Full input shape including batch (batch = the requested batch).
    pub input_shape: Vec<usize>,
    /// How image pixels map onto the input.
    pub layout: Layout,
    pub preprocess: Preprocess,
    _temp: Option<tempfile::TempDir>,
}

/// Options for [`prepare`].
#[derive(Debug, Clone, Default)]
pub struct PrepareOptions {
    /// Spatial input for specs (default: the spec's own).
    pub input: Option<InputShape>,
    /// Full input shape for ONNX files whose shape is not fully declared.
    pub input_shape: Option<Vec<usize>>,
    /// Batch size (default 1).
    pub batch: Option<usize>,
    /// Seed for He-initialised weights of specs.
    pub seed: u64,
    /// Calibration images for a `MODEL@int8` variant (quantized on the fly).
    pub calibrate: Option<PathBuf>,
    /// Preprocessing from the command line, over the model's own.
    pub preprocess: PreprocessOverride,
}

/// Resolve a MODEL argument (zoo name, spec `.toml`, `.onnx`) into a [`Prepared`] model.
pub fn prepare(arg: &str, opts: &PrepareOptions) -> Result<Prepared> {
    let batch = opts.batch.unwrap_or(1);
    if batch == 0 {
        return Err(Error::Invalid("batch size must be ≥ 1".into()));
    }
    opts.preprocess.validate()?;
    let mut p = prepare_as_given(arg, batch, opts)?;
    opts.preprocess.apply(&mut p.preprocess, &mut p.layout);
    if opts.preprocess.layout.is_some() {
        check_layout(&p)?;
    }
    Ok(p)
}

/// `--layout` must name where the model's input has its 3 colour channels.
fn check_layout(p: &Prepared) -> Result<()> {
    let c = match (p.layout, p.input_shape.as_slice()) {
        (Layout::Nchw, [_, c, _, _]) | (Layout::Nhwc, [_, _, _, c]) => *c,
        _ => return Ok(()),
    };
    if c == crate::data::decode::CHANNELS {
        return Ok(());
    }
    let dims: Vec<String> = p.input_shape.iter().map(usize::to_string).collect();
    Err(Error::Invalid(format!(
        "--layout {}: {}'s input {} has {c} there, not the 3 colour channels",
        p.layout.name(),
        p.name,
        dims.join("x")
    )))
}

fn prepare_as_given(arg: &str, batch: usize, opts: &PrepareOptions) -> Result<Prepared> {
    match zoo::resolve(arg)? {
        zoo::ModelRef::Spec(spec) => {
            let input = opts.input.unwrap_or(spec.input);
            let dir = crate::scratch::tempdir()?;
            let path = dir.path().join(format!("{}-{input}.onnx", spec.name));
            onnx_write::export(&spec, input, opts.seed, &path)?;
            Ok(Prepared {
                path,
                name: spec.name.clone(),
                input_shape: input.nchw(batch),
                layout: Layout::Nchw,
                preprocess: spec.preprocess.clone(),
                spec: Some(spec),
                _temp: Some(dir),
            })
        }
        zoo::ModelRef::Onnx(path) => {
            let model = crate::onnx::read_model(&path)?;
            let declared = analysis::input_shape_of(&model, &path);
            let input_shape = match (&opts.input_shape, declared) {
                (Some(s), Ok(d)) => {
                    check_rank(s, &d, &path)?;
                    s.clone()
                }
                // A model that declares no shape takes the one given.
                (Some(s), Err(Error::Invalid(_))) => s.clone(),
                (_, Err(e)) => return Err(e),
                (None, Ok(d)) => resolve_declared(&d, batch, &path)?,
            };
            let preprocess = crate::onnx::metadata(&model, "edgebench.preprocess")
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default();
            let layout = crate::onnx::metadata(&model, "edgebench.layout")
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| guess_layout(&input_shape));
            Ok(Prepared {
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| path.display().to_string()),
                preprocess,
                path,
                spec: None,
                input_shape,
                layout,
                _temp: None,
            })
        }
    }
}

fn resolve_declared(declared: &[Option<usize>], batch: usize, path: &Path) -> Result<Vec<usize>> {
    declared
        .iter()
        .enumerate()
        .map(|(i, d)| match (i, d) {
            (0, None) => Ok(batch),
            (_, Some(v)) => Ok(*v),
            (_, None) => Err(Error::Invalid(format!(
                "{}: input dimension {i} is not fixed in the model; give the full shape with --input-shape (e.g. 1x3x224x224)",
                path.display()
            ))),
        })
        .collect()
}

/// `--input-shape` must have the rank the model declares (engines reject anything
/// else with errors about their own internals).
fn check_rank(given: &[usize], declared: &[Option<usize>], path: &Path) -> Result<()> {
    if given.len() == declared.len() {
        return Ok(());
    }
    let dims: Vec<String> = given.iter().map(usize::to_string).collect();
    let form: Vec<String> = declared
        .iter()
        .map(|d| d.map_or("?".into(), |v| v.to_string()))
        .collect();
    let cnn = if declared.len() == 4 {
        ", NxCxHxW as a CNN's image input"
    } else {
        ""
    };
    Err(Error::Invalid(format!(
        "{}: --input-shape {} has {} dimensions, but the model's input has {} ({}{cnn})",
        path.display(),
        dims.join("x"),
        given.len(),
        declared.len(),
        form.join("x"),
    )))
}

/// NHWC when the last axis looks like channels and axis 1 does not.
fn guess_layout(shape: &[usize]) -> Layout {
    match shape {
        [_, c, _, last] if matches!(*last, 1 | 3 | 4) && !matches!(*c, 1 | 3 | 4) => Layout::Nhwc,
        _ => Layout::Nchw,
    }
}

impl Prepared {
    /// The same model's input and preprocessing, now run from `path` (a variant written
    /// into `temp`, which lives as long as the result), under `name`. The spec is gone:
    /// the file no longer is what the spec exports.
    pub fn replaced_by(self, path: PathBuf, name: String, temp: tempfile::TempDir) -> Prepared {
        Prepared {
            path,
            name,
            spec: None,
            input_shape: self.input_shape,
            layout: self.layout,
            preprocess: self.preprocess,
            _temp: Some(temp),
        }
    }

    /// Image height, width and channels of the input.
    pub fn image_hwc(&self) -> Result<(usize, usize, usize)> {
        match (self.layout, self.input_shape.as_slice()) {
            (Layout::Nchw, [_, c, h, w]) => Ok((*h, *w, *c)),
            (Layout::Nhwc, [_, h, w, c]) => Ok((*h, *w, *c)),
            _ => Err(Error::Invalid(format!(
                "{}: input shape {:?} is not an image tensor; give a .npy input",
                self.path.display(),
                self.input_shape
            ))),
        }
    }
}
