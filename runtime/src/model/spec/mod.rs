//! Sequential CNN specs: the TOML format of `models/*.toml`, validation, and per-layer
//! shapes, parameter counts and MACs.
//!
//! A spec is a list of layers in Keras order (conv, depthwise, relu, maxpool, global
//! average pool, flatten, dense, softmax). Padding follows Keras/TensorFlow: `same`
//! gives `ceil(in / stride)` outputs with the extra pad at the end, `valid` gives
//! `floor((in - k) / stride) + 1`. A spec may derive from another with `base` and a
//! channel `width` multiplier (the lean width family).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

mod family;

/// Spatial input of a model, height × width × channels (the Keras order users know).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct InputShape {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl InputShape {
    /// NCHW shape for a batch.
    pub fn nchw(&self, batch: usize) -> Vec<usize> {
        vec![batch, self.channels, self.height, self.width]
    }
}

/// Most values (H×W×C) one image of an [`InputShape`] may hold: 2^28, 1 GiB as f32
/// (e.g. 16384x16384x1 or 9459x9459x3).
pub const MAX_INPUT_VALUES: usize = 1 << 28;

impl FromStr for InputShape {
    type Err = Error;
    /// Parse `HxWxC` (e.g. `256x256x3`) or `HxW` (3 channels).
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: String| Error::Invalid(format!("invalid input shape {s:?}: {why}"));
        let form = || bad("expected HxWxC such as 256x256x3".into());
        let dims = s
            .split(['x', 'X', ','])
            .map(|d| d.trim().parse::<usize>().map_err(|_| form()))
            .collect::<Result<Vec<_>>>()?;
        let (height, width, channels) = match dims.as_slice() {
            [h, w] => (*h, *w, 3),
            [h, w, c] => (*h, *w, *c),
            _ => return Err(form()),
        };
        if height == 0 || width == 0 || channels == 0 {
            return Err(bad("every dimension must be ≥ 1".into()));
        }
        let values = crate::alloc::numel(&[height, width, channels]);
        if values.is_none_or(|n| n > MAX_INPUT_VALUES) {
            let count = values.map_or("more than 2^64".into(), |n| {
                crate::units::thousands(n as u64)
            });
            return Err(bad(format!(
                "{height}x{width}x{channels} is {count} values per image, over the limit of \
                 {} (H×W×C ≤ 2^28, e.g. 16384x16384x1 or 9459x9459x3)",
                crate::units::thousands(MAX_INPUT_VALUES as u64)
            )));
        }
        Ok(Self {
            height,
            width,
            channels,
        })
    }
}

impl fmt::Display for InputShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.height, self.width, self.channels)
    }
}

impl<'de> Deserialize<'de> for InputShape {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Padding of a conv or pool: Keras' `same`/`valid` or an explicit symmetric pad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Padding {
    #[default]
    Same,
    Valid,
    Explicit(usize),
}

impl<'de> Deserialize<'de> for Padding {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Pad(usize),
        }
        match Raw::deserialize(d)? {
            Raw::Pad(p) => Ok(Padding::Explicit(p)),
            Raw::Name(n) => match n.as_str() {
                "same" => Ok(Padding::Same),
                "valid" => Ok(Padding::Valid),
                other => Err(serde::de::Error::custom(format!(
                    "padding {other:?}: expected \"same\", \"valid\" or a number"
                ))),
            },
        }
    }
}

impl Padding {
    /// Output size and (before, after) pads for one spatial axis; `None` when the kernel
    /// does not fit or a size overflows.
    pub fn resolve(
        self,
        input: usize,
        kernel: usize,
        stride: usize,
    ) -> Option<(usize, usize, usize)> {
        if stride == 0 {
            return None;
        }
        match self {
            Padding::Same => {
                let out = input.div_ceil(stride);
                let total = out
                    .checked_sub(1)?
                    .checked_mul(stride)?
                    .checked_add(kernel)?
                    .saturating_sub(input);
                Some((out, total / 2, total - total / 2))
            }
            Padding::Valid => (input >= kernel).then(|| ((input - kernel) / stride + 1, 0, 0)),
            Padding::Explicit(p) => {
                let padded = p.checked_mul(2)?.checked_add(input)?;
                (padded >= kernel).then(|| ((padded - kernel) / stride + 1, p, p))
            }
        }
    }
}

/// Activation fused into a conv or dense layer (exported as its own ONNX node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    None,
    Relu,
    Softmax,
}

fn one() -> usize {
    1
}

/// One layer of a sequential CNN, as written in a spec file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Layer {
    /// 2-D convolution with bias.
    Conv {
        filters: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: Padding,
        #[serde(default)]
        activation: Activation,
        /// The conv's block (it and the pooling right after it) may be dropped or the
        /// conv repeated by `edgebench shrink`'s depth axis ([`Spec::with_depth`]).
        #[serde(default)]
        optional: bool,
    },
    /// Depthwise 2-D convolution (one filter per input channel, `multiplier` outputs each).
    Depthwise {
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: Padding,
        #[serde(default = "one")]
        multiplier: usize,
        #[serde(default)]
        activation: Activation,
    },
    Relu,
    /// Max pooling; `stride` defaults to `size`, padding to `valid` (as in Keras).
    Maxpool {
        size: usize,
        stride: Option<usize>,
        #[serde(default = "valid")]
        padding: Padding,
    },
    GlobalAvgPool,
    Flatten,
    /// Fully connected layer with bias.
    Dense {
        units: usize,
        #[serde(default)]
        activation: Activation,
    },
    Softmax,
}

fn valid() -> Padding {
    Padding::Valid
}

/// Per-image preprocessing the model expects: `x = (pixel * scale - mean[c]) / std[c]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    #[serde(default = "default_scale")]
    pub scale: f32,
    #[serde(default)]
    pub mean: Vec<f32>,
    #[serde(default)]
    pub std: Vec<f32>,
}

fn default_scale() -> f32 {
    1.0 / 255.0
}

impl Preprocess {
    /// Mean and std of channel `c` (missing values broadcast from the first, or 0 / 1).
    pub fn mean_std(&self, c: usize) -> (f32, f32) {
        let pick = |v: &[f32], default: f32| v.get(c).or(v.first()).copied().unwrap_or(default);
        (pick(&self.mean, 0.0), pick(&self.std, 1.0))
    }
}

impl Default for Preprocess {
    fn default() -> Self {
        Self {
            scale: default_scale(),
            mean: Vec::new(),
            std: Vec::new(),
        }
    }
}

/// A spec file as written (before `base`/`width` are resolved).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub input: Option<InputShape>,
    #[serde(default)]
    pub preprocess: Option<Preprocess>,
    /// Name of the spec this one derives from.
    pub base: Option<String>,
    /// Channel multiplier applied to the base's conv filters.
    pub width: Option<f64>,
    #[serde(default)]
    pub layers: Vec<Layer>,
}

impl SpecFile {
    /// Parse TOML; `source_name` names the file in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::Spec {
            source_name: source_name.to_string(),
            reason: e.to_string().replace('\n', " ").trim().to_string(),
        })
    }
}

/// A resolved, validated sequential CNN.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spec {
    pub name: String,
    pub description: String,
    /// Default input (the one the spec was designed for).
    pub input: InputShape,
    pub preprocess: Preprocess,
    pub layers: Vec<Layer>,
}

/// Activation shape between layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Shape {
    /// Channels, height, width (batch excluded).
    Chw(usize, usize, usize),
    /// Features of a flat vector.
    Flat(usize),
}

impl Shape {
    /// Number of elements per image (saturating; [`Spec::plan`] refuses shapes whose
    /// count overflows, so a planned shape's count is exact).
    pub fn elems(&self) -> usize {
        match *self {
            Shape::Chw(c, h, w) => c.saturating_mul(h).saturating_mul(w),
            Shape::Flat(n) => n,
        }
    }

    /// Number of elements per image, `None` on overflow.
    fn checked_elems(&self) -> Option<usize> {
        match *self {
            Shape::Chw(c, h, w) => crate::alloc::numel(&[c, h, w]),
            Shape::Flat(n) => Some(n),
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Chw(c, h, w) => write!(f, "{c}x{h}x{w}"),
            Shape::Flat(n) => write!(f, "{n}"),
        }
    }
}

/// A layer with its input/output shapes, pads, parameter count and MACs per image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedLayer {
    pub layer: Layer,
    pub input: Shape,
    pub output: Shape,
    /// (top, left, bottom, right) pads for conv/pool layers.
    pub pads: [usize; 4],
    pub params: u64,
    pub macs: u64,
}

impl Spec {
    /// Resolve a spec file against its base (looked up by `lookup`), apply the width
    /// multiplier, and validate that the layers chain.
    pub fn resolve(file: SpecFile, lookup: &dyn Fn(&str) -> Result<Spec>) -> Result<Spec> {
        let err = |reason: String| Error::Spec {
            source_name: file.name.clone(),
            reason,
        };
        let (mut layers, input, preprocess, description) = match &file.base {
            Some(base) => {
                if !file.layers.is_empty() {
                    return Err(err("a spec with `base` may not also list layers".into()));
                }
                let b = lookup(base)?;
                (b.layers, b.input, b.preprocess, b.description)
            }
            None => (
                file.layers.clone(),
                file.input
                    .ok_or_else(|| err("missing `input` (e.g. input = \"256x256x3\")".into()))?,
                Preprocess::default(),
                String::new(),
            ),
        };
        if let Some(w) = file.width {
            if !(w.is_finite() && w > 0.0) {
                return Err(err(format!("width must be a positive number, got {w}")));
            }
            scale_filters(&mut layers, w);
        }
        let spec = Spec {
            name: file.name.clone(),
            description: if file.description.is_empty() {
                description
            } else {
                file.description.clone()
            },
            input: file.input.unwrap_or(input),
            preprocess: file.preprocess.clone().unwrap_or(preprocess),
            layers,
        };
        if spec.layers.is_empty() {
            return Err(err("the spec has no layers".into()));
        }
        spec.plan(spec.input)?;
        Ok(spec)
    }

    /// Shapes, pads, params and MACs of every layer for the given input.
    pub fn plan(&self, input: InputShape) -> Result<Vec<PlannedLayer>> {
        let mut shape = Shape::Chw(input.channels, input.height, input.width);
        let mut out = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let err = |reason: String| Error::Spec {
                source_name: self.name.clone(),
                reason: format!("layer {} ({}): {reason}", i + 1, layer.kind()),
            };
            let spatial = |k: usize, s: usize, p: Padding, h: usize, w: usize| {
                if k == 0 || s == 0 {
                    return Err(err("kernel and stride must be ≥ 1".into()));
                }
                let fit = || err(format!("kernel {k} does not fit the {h}x{w} input"));
                let (oh, pt, pb) = p.resolve(h, k, s).ok_or_else(fit)?;
                let (ow, pl, pr) = p.resolve(w, k, s).ok_or_else(fit)?;
                Ok((oh, ow, [pt, pl, pb, pr]))
            };
            // Sizes, counts and MACs, refused when they overflow.
            let too_large = || err("sizes overflow (the layer is too large)".into());
            let product = |xs: &[usize]| crate::alloc::numel(xs).ok_or_else(too_large);
            let sum = |a: usize, b: usize| a.checked_add(b).ok_or_else(too_large);
            let need_chw = || match shape {
                Shape::Chw(c, h, w) => Ok((c, h, w)),
                Shape::Flat(_) => Err(err(format!(
                    "needs a C×H×W input but gets a flat vector of {}",
                    shape.elems()
                ))),
            };
            let (output, pads, params, macs) = match *layer {
                Layer::Conv {
                    filters,
                    kernel,
                    stride,
                    padding,
                    ..
                } => {
                    let (c, h, w) = need_chw()?;
                    if filters == 0 {
                        return Err(err("filters must be ≥ 1".into()));
                    }
                    let (oh, ow, pads) = spatial(kernel, stride, padding, h, w)?;
                    let per_filter = product(&[kernel, kernel, c])?;
                    let params = sum(product(&[per_filter, filters])?, filters)?;
                    let macs = product(&[oh, ow, filters, per_filter])?;
                    (Shape::Chw(filters, oh, ow), pads, params, macs)
                }
                Layer::Depthwise {
                    kernel,
                    stride,
                    padding,
                    multiplier,
                    ..
                } => {
                    let (c, h, w) = need_chw()?;
                    if multiplier == 0 {
                        return Err(err("multiplier must be ≥ 1".into()));
                    }
                    let (oh, ow, pads) = spatial(kernel, stride, padding, h, w)?;
                    let m = product(&[c, multiplier])?;
                    let params = sum(product(&[kernel, kernel, m])?, m)?;
                    let macs = product(&[oh, ow, m, kernel, kernel])?;
                    (Shape::Chw(m, oh, ow), pads, params, macs)
                }
                Layer::Maxpool {
                    size,
                    stride,
                    padding,
                } => {
                    let (c, h, w) = need_chw()?;
                    let (oh, ow, pads) = spatial(size, stride.unwrap_or(size), padding, h, w)?;
                    (Shape::Chw(c, oh, ow), pads, 0, 0)
                }
                Layer::GlobalAvgPool => {
                    let (c, _, _) = need_chw()?;
                    (Shape::Flat(c), [0; 4], 0, 0)
                }
                Layer::Flatten => (
                    Shape::Flat(shape.checked_elems().ok_or_else(too_large)?),
                    [0; 4],
                    0,
                    0,
                ),
                Layer::Dense { units, .. } => {
                    let n = match shape {
                        Shape::Flat(n) => n,
                        Shape::Chw(..) => {
                            return Err(err(format!(
                                "needs a flat input but gets {shape}: add a flatten or global_avg_pool layer first"
                            )));
                        }
                    };
                    if units == 0 {
                        return Err(err("units must be ≥ 1".into()));
                    }
                    let macs = product(&[n, units])?;
                    (Shape::Flat(units), [0; 4], sum(macs, units)?, macs)
                }
                Layer::Relu | Layer::Softmax => (shape, [0; 4], 0, 0),
            };
            output.checked_elems().ok_or_else(too_large)?;
            out.push(PlannedLayer {
                layer: layer.clone(),
                input: shape,
                output,
                pads,
                params: params as u64,
                macs: macs as u64,
            });
            shape = output;
        }
        Ok(out)
    }

    /// Number of output classes (features of the last layer).
    pub fn classes(&self, input: InputShape) -> Result<usize> {
        let plan = self.plan(input)?;
        Ok(plan.last().map(|l| l.output.elems()).unwrap_or(0))
    }

    /// Total parameters (as Keras `count_params`).
    pub fn params(&self, input: InputShape) -> Result<u64> {
        Ok(self
            .plan(input)?
            .iter()
            .fold(0u64, |a, l| a.saturating_add(l.params)))
    }

    /// Total multiply-accumulates per image.
    pub fn macs(&self, input: InputShape) -> Result<u64> {
        Ok(self
            .plan(input)?
            .iter()
            .fold(0u64, |a, l| a.saturating_add(l.macs)))
    }
}

/// Every conv's filters × `width`, rounded, at least 1.
fn scale_filters(layers: &mut [Layer], width: f64) {
    for l in layers {
        if let Layer::Conv { filters, .. } = l {
            *filters = ((*filters as f64 * width).round() as usize).max(1);
        }
    }
}

impl Layer {
    /// Short name of the layer kind, as in spec files.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Conv { .. } => "conv",
            Layer::Depthwise { .. } => "depthwise",
            Layer::Relu => "relu",
            Layer::Maxpool { .. } => "maxpool",
            Layer::GlobalAvgPool => "global_avg_pool",
            Layer::Flatten => "flatten",
            Layer::Dense { .. } => "dense",
            Layer::Softmax => "softmax",
        }
    }

    /// The activation that follows this layer, if any.
    pub fn activation(&self) -> Activation {
        match self {
            Layer::Conv { activation, .. }
            | Layer::Depthwise { activation, .. }
            | Layer::Dense { activation, .. } => *activation,
            _ => Activation::None,
        }
    }
}
