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
}

/// Resolve a MODEL argument (zoo name, spec `.toml`, `.onnx`) into a [`Prepared`] model.
pub fn prepare(arg: &str, opts: &PrepareOptions) -> Result<Prepared> {
    let batch = opts.batch.unwrap_or(1);
    if batch == 0 {
        return Err(Error::Invalid("batch size must be ≥ 1".into()));
    }
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
            let meta = onnx_write::read_metadata(&model);
            let layout = guess_layout(&input_shape);
            Ok(Prepared {
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| path.display().to_string()),
                preprocess: meta.and_then(|m| m.2).unwrap_or_default(),
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
