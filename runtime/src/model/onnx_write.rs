//! The ONNX writer: a [`Spec`] plus weights → an ONNX model (opset 13, NCHW, symbolic
//! batch) that ONNX Runtime, tract and any other runtime load.
//!
//! Weights are He-initialised from a seed ([`he_init`]) or supplied by the caller (the
//! trainer's export). The spec's name, input and preprocessing travel in the model's
//! metadata (`edgebench.*` keys) so `edgebench run` can prepare images for it.

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::spec::{Activation, InputShape, Layer, PlannedLayer, Spec};
use crate::error::{Error, Result};
use crate::onnx::pb::{self, attribute_type, data_type};

/// Opset the writer targets.
pub const OPSET: i64 = 13;
/// IR version matching opset 13.
pub const IR_VERSION: i64 = 7;
/// Name of the graph input.
pub const INPUT_NAME: &str = "input";
/// Name of the graph output.
pub const OUTPUT_NAME: &str = "output";

/// Weight and bias of one layer that has parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerParams {
    /// ONNX layout: conv `[M, C/group, kh, kw]`, dense `[units, in]`.
    pub weight_shape: Vec<usize>,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Parameters of a whole model, one entry per spec layer (`None` for layers without).
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub layers: Vec<Option<LayerParams>>,
}

impl Weights {
    /// Total number of parameters.
    pub fn count(&self) -> u64 {
        self.layers
            .iter()
            .flatten()
            .map(|p| (p.weight.len() + p.bias.len()) as u64)
            .sum()
    }
}

/// ONNX weight shape of a layer, or `None` when it has no parameters.
pub(crate) fn weight_shape(pl: &PlannedLayer) -> Option<(Vec<usize>, usize)> {
    let in_c = match pl.input {
        super::spec::Shape::Chw(c, _, _) => c,
        super::spec::Shape::Flat(n) => n,
    };
    match pl.layer {
        Layer::Conv {
            filters, kernel, ..
        } => Some((vec![filters, in_c, kernel, kernel], in_c * kernel * kernel)),
        Layer::Depthwise {
            kernel, multiplier, ..
        } => Some((vec![in_c * multiplier, 1, kernel, kernel], kernel * kernel)),
        Layer::Dense { units, .. } => Some((vec![units, in_c], in_c)),
        _ => None,
    }
}

/// He-normal weights (std = sqrt(2 / fan_in)) and zero biases, deterministic from `seed`.
pub fn he_init(spec: &Spec, input: InputShape, seed: u64) -> Result<Weights> {
    let plan = spec.plan(input)?;
    let params = plan.iter().fold(0u64, |a, l| a.saturating_add(l.params));
    crate::alloc::check(params.checked_mul(4), || {
        format!(
            "the weights of {} ({} parameters)",
            spec.name,
            crate::units::thousands(params)
        )
    })
    .map_err(|e| Error::Spec {
        source_name: spec.name.clone(),
        reason: e.to_string(),
    })?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let layers = plan
        .iter()
        .map(|pl| {
            weight_shape(pl).map(|(shape, fan_in)| {
                let std = (2.0 / fan_in as f64).sqrt() as f32;
                // Normal::new only fails for a non-finite or negative std; fan_in ≥ 1 here.
                let dist = Normal::new(0.0f32, std).unwrap_or(Normal::new(0.0, 1.0).unwrap());
                let n: usize = shape.iter().product();
                let weight = (0..n).map(|_| dist.sample(&mut rng)).collect();
                LayerParams {
                    bias: vec![0.0; shape[0]],
                    weight_shape: shape,
                    weight,
                }
            })
        })
        .collect();
    Ok(Weights { layers })
}

fn tensor(name: &str, dims: &[usize], data: &[f32]) -> pb::TensorProto {
    let mut raw = Vec::with_capacity(data.len() * 4);
    for v in data {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    pb::TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: data_type::FLOAT,
        raw_data: raw,
        ..Default::default()
    }
}

fn ints(name: &str, v: &[usize]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: attribute_type::INTS,
        ints: v.iter().map(|&x| x as i64).collect(),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: attribute_type::INT,
        i: v,
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[Option<usize>]) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            tensor_type: Some(pb::TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| match d {
                            Some(v) => pb::Dimension {
                                dim_value: Some(*v as i64),
                                ..Default::default()
                            },
                            None => pb::Dimension {
                                dim_param: Some("N".into()),
                                ..Default::default()
                            },
                        })
                        .collect(),
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

struct GraphBuilder {
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    current: String,
}

impl GraphBuilder {
    fn push(
        &mut self,
        op: &str,
        name: &str,
        extra_inputs: Vec<String>,
        attrs: Vec<pb::AttributeProto>,
    ) {
        let mut input = vec![self.current.clone()];
        input.extend(extra_inputs);
        let out = format!("{name}_out");
        self.nodes.push(pb::NodeProto {
            input,
            output: vec![out.clone()],
            name: name.into(),
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        });
        self.current = out;
    }

    fn param(&mut self, name: String, dims: &[usize], data: &[f32]) -> String {
        self.inits.push(tensor(&name, dims, data));
        name
    }
}

/// Build the ONNX model of `spec` at `input` with `weights`.
pub fn to_onnx(spec: &Spec, input: InputShape, weights: &Weights) -> Result<pb::ModelProto> {
    let plan = spec.plan(input)?;
    if weights.layers.len() != plan.len() {
        return Err(Error::Invalid(format!(
            "weights for {} layers given to the {}-layer model {}",
            weights.layers.len(),
            plan.len(),
            spec.name
        )));
    }
    let mut g = GraphBuilder {
        nodes: Vec::new(),
        inits: Vec::new(),
        current: INPUT_NAME.into(),
    };
    for (i, (pl, w)) in plan.iter().zip(&weights.layers).enumerate() {
        let name = format!("l{}_{}", i + 1, pl.layer.kind());
        let expected = weight_shape(pl).map(|(s, _)| s);
        if expected.as_ref() != w.as_ref().map(|w| &w.weight_shape)
            || w.as_ref().is_some_and(|w| {
                w.weight.len() != w.weight_shape.iter().product::<usize>()
                    || w.bias.len() != w.weight_shape[0]
            })
        {
            return Err(Error::Shape {
                what: format!(
                    "{} layer {} ({}) weights",
                    spec.name,
                    i + 1,
                    pl.layer.kind()
                ),
                expected: format!("{expected:?}"),
                got: format!("{:?}", w.as_ref().map(|w| &w.weight_shape)),
            });
        }
        match (&pl.layer, w) {
            (Layer::Conv { kernel, stride, .. }, Some(w))
            | (Layer::Depthwise { kernel, stride, .. }, Some(w)) => {
                let group = match pl.layer {
                    Layer::Depthwise { .. } => match pl.input {
                        super::spec::Shape::Chw(c, _, _) => c,
                        super::spec::Shape::Flat(n) => n,
                    },
                    _ => 1,
                };
                let wn = g.param(format!("{name}.weight"), &w.weight_shape, &w.weight);
                let bn = g.param(format!("{name}.bias"), &[w.bias.len()], &w.bias);
                let [t, l, b, r] = pl.pads;
                g.push(
                    "Conv",
                    &name,
                    vec![wn, bn],
                    vec![
                        ints("kernel_shape", &[*kernel, *kernel]),
                        ints("strides", &[*stride, *stride]),
                        ints("pads", &[t, l, b, r]),
                        ints("dilations", &[1, 1]),
                        int("group", group as i64),
                    ],
                );
            }
            (Layer::Dense { .. }, Some(w)) => {
                let wn = g.param(format!("{name}.weight"), &w.weight_shape, &w.weight);
                let bn = g.param(format!("{name}.bias"), &[w.bias.len()], &w.bias);
                g.push("Gemm", &name, vec![wn, bn], vec![int("transB", 1)]);
            }
            (Layer::Relu, _) => g.push("Relu", &name, vec![], vec![]),
            (Layer::Softmax, _) => g.push("Softmax", &name, vec![], vec![int("axis", 1)]),
            (Layer::Flatten, _) => g.push("Flatten", &name, vec![], vec![int("axis", 1)]),
            (Layer::GlobalAvgPool, _) => {
                g.push("GlobalAveragePool", &name, vec![], vec![]);
                g.push(
                    "Flatten",
                    &format!("{name}_flatten"),
                    vec![],
                    vec![int("axis", 1)],
                );
            }
            (Layer::Maxpool { size, stride, .. }, _) => {
                let [t, l, b, r] = pl.pads;
                let s = stride.unwrap_or(*size);
                g.push(
                    "MaxPool",
                    &name,
                    vec![],
                    vec![
                        ints("kernel_shape", &[*size, *size]),
                        ints("strides", &[s, s]),
                        ints("pads", &[t, l, b, r]),
                    ],
                );
            }
            _ => unreachable!("weights were checked against the layer kinds above"),
        }
        match pl.layer.activation() {
            Activation::None => {}
            Activation::Relu => g.push("Relu", &format!("{name}_relu"), vec![], vec![]),
            Activation::Softmax => g.push(
                "Softmax",
                &format!("{name}_softmax"),
                vec![],
                vec![int("axis", 1)],
            ),
        }
    }
    // Name the last tensor `output`.
    if let Some(last) = g.nodes.last_mut() {
        last.output = vec![OUTPUT_NAME.into()];
    }
    let classes = plan.last().map(|l| l.output.elems()).unwrap_or(0);
    let meta = |k: &str, v: String| pb::StringStringEntryProto {
        key: format!("edgebench.{k}"),
        value: v,
    };
    let preprocess =
        serde_json::to_string(&spec.preprocess).map_err(|e| Error::json("the preprocessing", e))?;
    Ok(pb::ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "edgebench".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: spec.description.clone(),
        graph: Some(pb::GraphProto {
            name: spec.name.clone(),
            node: g.nodes,
            initializer: g.inits,
            input: vec![value_info(
                INPUT_NAME,
                &[
                    None,
                    Some(input.channels),
                    Some(input.height),
                    Some(input.width),
                ],
            )],
            output: vec![value_info(OUTPUT_NAME, &[None, Some(classes)])],
            ..Default::default()
        }),
        metadata_props: vec![
            meta("model", spec.name.clone()),
            meta("input", input.to_string()),
            meta("preprocess", preprocess),
            meta("layout", "nchw".into()),
        ],
        ..Default::default()
    })
}

/// Summary of an export, for the CLI.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportSummary {
    pub model: String,
    pub input: InputShape,
    pub params: u64,
    pub macs: u64,
    pub bytes: u64,
}

/// He-initialise `spec` from `seed` and write it to `path` atomically.
pub fn export(spec: &Spec, input: InputShape, seed: u64, path: &Path) -> Result<ExportSummary> {
    let weights = he_init(spec, input, seed)?;
    export_weights(spec, input, &weights, path)
}

/// Write `spec` with the given weights to `path` atomically.
pub fn export_weights(
    spec: &Spec,
    input: InputShape,
    weights: &Weights,
    path: &Path,
) -> Result<ExportSummary> {
    let model = to_onnx(spec, input, weights)?;
    let bytes = crate::onnx::encode_model(&model);
    crate::fsutil::write_atomic(path, &bytes)?;
    Ok(ExportSummary {
        model: spec.name.clone(),
        input,
        params: weights.count(),
        macs: spec.macs(input)?,
        bytes: bytes.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::zoo;

    #[test]
    fn he_init_is_deterministic_and_scaled() {
        let spec = zoo::builtin("lean").unwrap();
        let a = he_init(&spec, spec.input, 7).unwrap();
        let b = he_init(&spec, spec.input, 7).unwrap();
        let c = he_init(&spec, spec.input, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.count(), 1_403_978);
        // first conv: fan_in 27 → std sqrt(2/27) ≈ 0.272
        let w = &a.layers[0].as_ref().unwrap().weight;
        let var = w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32;
        assert!((var.sqrt() - 0.272).abs() < 0.03, "std {}", var.sqrt());
    }

    #[test]
    fn onnx_roundtrips_through_the_decoder() {
        let spec = zoo::builtin("mobile").unwrap();
        let input: InputShape = "32x32x3".parse().unwrap();
        let w = he_init(&spec, input, 1).unwrap();
        let m = to_onnx(&spec, input, &w).unwrap();
        let bytes = crate::onnx::encode_model(&m);
        let back = crate::onnx::decode_model(&bytes, Path::new("mem.onnx")).unwrap();
        assert_eq!(back, m);
        let g = back.graph.unwrap();
        assert_eq!(g.output[0].name, OUTPUT_NAME);
        assert_eq!(g.node.last().unwrap().output[0], OUTPUT_NAME);
        let dw = g.node.iter().find(|n| n.name == "l2_depthwise").unwrap();
        let group = dw.attribute.iter().find(|a| a.name == "group").unwrap();
        assert_eq!(group.i, 32);
        let meta = |k: &str| crate::onnx::metadata(&m, k);
        let inp: Option<InputShape> = meta("edgebench.input").and_then(|s| s.parse().ok());
        assert_eq!(
            (meta("edgebench.model"), inp),
            (Some("mobile"), Some(input))
        );
        let pre: Option<crate::model::spec::Preprocess> =
            meta("edgebench.preprocess").and_then(|s| serde_json::from_str(s).ok());
        assert_eq!(pre.unwrap(), spec.preprocess);
    }

    #[test]
    fn wrong_weights_are_rejected() {
        let spec = zoo::builtin("lean").unwrap();
        let mut w = he_init(&spec, spec.input, 1).unwrap();
        w.layers[0].as_mut().unwrap().bias.pop();
        let e = to_onnx(&spec, spec.input, &w).unwrap_err().to_string();
        assert!(e.contains("lean layer 1 (conv) weights"), "{e}");
    }
}
