//! The QDQ rewrite: an fp32 ONNX model becomes a model in ONNX's QDQ form, the form
//! ONNX Runtime's CPU int8 kernels and TensorRT's explicit int8 both consume.
//!
//! - **Weights** of `Conv`, `Gemm` and `MatMul` (float initializers) become int8
//!   initializers, symmetric per output channel (axis 0 for `Conv` and `Gemm` with
//!   `transB = 1`, axis 1 for `MatMul` and `Gemm` without), behind a
//!   `DequantizeLinear`. **Biases** become int32 with zero point 0 and scale
//!   `s_input · s_weight[c]`, behind a `DequantizeLinear`, as the integer kernels add them.
//! - **Activations**: every tensor that enters or leaves a quantized node gets one
//!   `QuantizeLinear → DequantizeLinear` pair, with the scale and zero point calibration
//!   chose ([`rewrite`] takes the ranges). Quantized nodes are the three above and what
//!   runs between them in int8: `MaxPool`, `AveragePool`, `GlobalAveragePool`, `Relu`,
//!   `Add`, `Concat`.
//! - **ReLU after a quantized node** (asymmetric activations only) is removed: its
//!   output range starts at 0, so the zero point is −128 and the `QuantizeLinear` clamps
//!   exactly as the ReLU did. This is what lets ONNX Runtime fuse `DQ → Conv → Q` into
//!   one integer convolution (its own quantizer does the same).
//! - Everything else stays fp32 and reads the dequantized values. A node can be kept
//!   fp32 on purpose (`keep_fp32`, `keep_last`); each kept node is reported with why.
//!
//! [`plan`] decides all this on the fp32 graph and lists the tensors that need a range;
//! [`calibration_model`] exposes those tensors as outputs, so any engine can observe
//! them on calibration images; [`rewrite`] writes the QDQ model from the ranges.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::error::{Error, Result};
use crate::onnx::pb::{self, data_type};

mod rewrite;
pub use rewrite::{Rewritten, TensorRange, rewrite};
pub(crate) use rewrite::{tensor_f32, transpose};

/// Nodes whose weights are quantized.
const COMPUTE: [&str; 3] = ["Conv", "Gemm", "MatMul"];
/// Nodes that run in int8 between quantized nodes.
const BETWEEN: [&str; 6] = [
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Relu",
    "Add",
    "Concat",
];
/// Nodes that say a model is quantized already.
const QUANTIZED: [&str; 10] = [
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
    "QLinearAdd",
    "QGemm",
    "QLinearGlobalAveragePool",
];
/// Lowest opset with per-axis `QuantizeLinear`/`DequantizeLinear`.
const MIN_OPSET: i64 = 13;

/// How activations are quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activations {
    /// int8 over the calibrated range with a zero point (ONNX Runtime's default; a ReLU
    /// after a quantized node folds into its `QuantizeLinear`).
    #[default]
    Asymmetric,
    /// int8 with zero point 0 (TensorRT's explicit quantization accepts only this).
    Symmetric,
}

impl std::str::FromStr for Activations {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "asymmetric" | "asym" => Ok(Self::Asymmetric),
            "symmetric" | "sym" => Ok(Self::Symmetric),
            other => Err(Error::Invalid(format!(
                "unknown activation form {other:?} (expected asymmetric or symmetric)"
            ))),
        }
    }
}

impl std::fmt::Display for Activations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Asymmetric => "asymmetric",
            Self::Symmetric => "symmetric",
        })
    }
}

/// What to leave in fp32, and the activation form.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Keep the last `Conv`/`Gemm`/`MatMul` (the classifier) in fp32.
    pub keep_last: bool,
    /// Nodes to keep in fp32, by node name (or, for unnamed nodes, first output name).
    pub keep_fp32: Vec<String>,
    pub activations: Activations,
    /// 7-bit weights (−64…64, [`REDUCED_RANGE`](crate::quant::REDUCED_RANGE)) instead of −127…127: exact on ONNX
    /// Runtime's CPU kernels of x86-64 machines without VNNI
    /// ([`super::int8_saturates_here`]), at one bit of weight resolution.
    pub reduce_range: bool,
}

/// A node left in fp32, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Kept {
    pub node: String,
    pub op: String,
    pub reason: String,
}

/// What [`rewrite`] will do to a model.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The graph after ReLU removal, before Q/DQ insertion.
    graph: pb::GraphProto,
    /// Indices into `graph.node` of the quantized nodes.
    quantized: Vec<usize>,
    /// Activation tensors that get a Q/DQ pair, in graph order: each needs a range.
    pub tensors: Vec<String>,
    /// Nodes left in fp32 (only the kinds that could have been quantized).
    pub kept: Vec<Kept>,
    /// ReLU nodes folded into the `QuantizeLinear` of the node before them.
    pub folded_relus: Vec<String>,
    activations: Activations,
    reduce_range: bool,
}

impl Plan {
    /// Quantized nodes per op type, in a fixed order (`Conv 3, Gemm 1, MaxPool 2`).
    pub fn quantized_ops(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for &i in &self.quantized {
            let op = &self.graph.node[i].op_type;
            match counts.iter_mut().find(|(o, _)| o == op) {
                Some((_, n)) => *n += 1,
                None => counts.push((op.clone(), 1)),
            }
        }
        counts
    }
}

/// A node's name for messages: its name, else its op and first output.
pub fn node_label(n: &pb::NodeProto) -> String {
    if !n.name.is_empty() {
        n.name.clone()
    } else {
        format!(
            "{} → {}",
            n.op_type,
            n.output.first().map_or("?", String::as_str)
        )
    }
}

/// Whether `--keep-fp32 name` names `n`: its name, or its first output's.
fn is_named(n: &pb::NodeProto, name: &str) -> bool {
    n.name == name || n.output.first().is_some_and(|o| o == name)
}

fn attr<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

pub(super) fn attr_i(n: &pb::NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).map_or(default, |a| a.i)
}

pub(super) fn attr_f(n: &pb::NodeProto, name: &str, default: f32) -> f32 {
    attr(n, name).map_or(default, |a| a.f)
}

fn is_default_domain(d: &str) -> bool {
    d.is_empty() || d == "ai.onnx"
}

/// Decide what to quantize. Errors: a model already quantized, an opset below 13, a
/// `keep_fp32` name that names no node, nothing left to quantize.
pub fn plan(model: &pb::ModelProto, path: &Path, opts: &Options) -> Result<Plan> {
    let invalid = |reason: String| Error::InvalidOnnx {
        path: path.to_path_buf(),
        reason,
    };
    // A valid model that is not fp32: a bad input for this, as for `--to fp16` (exit 1).
    let already = |reason: String| Error::Input {
        path: path.to_path_buf(),
        reason,
    };
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| invalid("the model has no graph".into()))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| is_default_domain(&o.domain))
        .map_or(1, |o| o.version);
    if opset < MIN_OPSET {
        return Err(invalid(format!(
            "opset {opset}: per-channel int8 needs opset {MIN_OPSET} or later; export the model again with opset ≥ {MIN_OPSET}"
        )));
    }
    if let Some(n) = graph
        .node
        .iter()
        .find(|n| QUANTIZED.contains(&n.op_type.as_str()))
    {
        return Err(already(format!(
            "the model is already quantized (node {:?} is {}); quantize its fp32 original",
            node_label(n),
            n.op_type
        )));
    }
    if let Some(t) = graph
        .initializer
        .iter()
        .find(|t| matches!(t.data_type, data_type::INT8 | data_type::UINT8))
    {
        return Err(already(format!(
            "the model is already quantized (initializer {:?} is {}); quantize its fp32 original",
            t.name,
            data_type::name(t.data_type)
        )));
    }
    for name in &opts.keep_fp32 {
        let found = graph.node.iter().any(|n| is_named(n, name));
        if !found {
            let some: Vec<String> = graph.node.iter().take(6).map(node_label).collect();
            return Err(Error::Invalid(format!(
                "--keep-fp32 {name:?}: {} has no node of that name (its first nodes: {})",
                path.display(),
                some.join(", ")
            )));
        }
    }

    let inits: HashMap<&str, &pb::TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let graph_outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let wanted_fp32 = |n: &pb::NodeProto| opts.keep_fp32.iter().any(|k| is_named(n, k));

    // Which nodes could be quantized, and which of them are kept.
    let mut kept = Vec::new();
    let mut keep = |n: &pb::NodeProto, reason: &str| {
        kept.push(Kept {
            node: node_label(n),
            op: n.op_type.clone(),
            reason: reason.into(),
        });
    };
    let last_compute = graph
        .node
        .iter()
        .rposition(|n| COMPUTE.contains(&n.op_type.as_str()) && is_default_domain(&n.domain));
    let mut quantize = vec![false; graph.node.len()];
    for (i, n) in graph.node.iter().enumerate() {
        let op = n.op_type.as_str();
        if !is_default_domain(&n.domain) {
            continue;
        }
        let compute = COMPUTE.contains(&op);
        if !compute && !BETWEEN.contains(&op) {
            continue;
        }
        if wanted_fp32(n) {
            keep(n, "--keep-fp32");
            continue;
        }
        if compute && opts.keep_last && Some(i) == last_compute {
            keep(n, "--keep-last (the last layer)");
            continue;
        }
        let why_not = if compute {
            compute_blocker(n, &inits)
        } else if n.output.len() != 1 {
            Some("more than one output".to_string())
        } else if n.input.iter().any(|x| inits.contains_key(x.as_str())) {
            Some("a constant input".to_string())
        } else {
            None
        };
        match why_not {
            Some(reason) => keep(n, &reason),
            None => quantize[i] = true,
        }
    }
    if !quantize
        .iter()
        .zip(&graph.node)
        .any(|(&q, n)| q && COMPUTE.contains(&n.op_type.as_str()))
    {
        return Err(invalid(format!(
            "no node to quantize: no Conv, Gemm or MatMul with a float weight initializer{}",
            if kept.is_empty() {
                String::new()
            } else {
                format!(
                    " is left ({} kept: {})",
                    kept.len(),
                    kept.iter()
                        .map(|k| format!("{} ({})", k.node, k.reason))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        )));
    }

    // ReLU folding (asymmetric activations): a quantized ReLU whose input comes only
    // from a quantized Conv/Gemm/MatMul disappears; that node writes the ReLU's output.
    let mut g = graph.clone();
    let mut folded_relus = Vec::new();
    if opts.activations == Activations::Asymmetric {
        let consumers = consumer_counts(&g);
        let producer = producers(&g);
        let mut drop = vec![false; g.node.len()];
        for r in 0..g.node.len() {
            if g.node[r].op_type != "Relu" || !quantize[r] {
                continue;
            }
            let t = g.node[r].input[0].clone();
            let Some(&p) = producer.get(&t) else { continue };
            let foldable = quantize[p]
                && COMPUTE.contains(&g.node[p].op_type.as_str())
                && consumers.get(&t) == Some(&1)
                && !graph_outputs.contains(t.as_str());
            if foldable {
                let out = g.node[r].output[0].clone();
                g.node[p].output[0] = out;
                folded_relus.push(node_label(&g.node[r]));
                drop[r] = true;
            }
        }
        let mut i = 0;
        g.node.retain(|_| {
            i += 1;
            !drop[i - 1]
        });
        let mut i = 0;
        quantize.retain(|_| {
            i += 1;
            !drop[i - 1]
        });
    }

    // The activation tensors of quantized nodes, in graph order.
    let mut tensors = Vec::new();
    let mut seen = HashSet::new();
    let quantized: Vec<usize> = (0..g.node.len()).filter(|&i| quantize[i]).collect();
    for &i in &quantized {
        let n = &g.node[i];
        let inputs = if COMPUTE.contains(&n.op_type.as_str()) {
            &n.input[..1]
        } else {
            &n.input[..]
        };
        for t in inputs.iter().chain(&n.output) {
            if !t.is_empty() && !inits.contains_key(t.as_str()) && seen.insert(t.clone()) {
                tensors.push(t.clone());
            }
        }
    }
    Ok(Plan {
        graph: g,
        quantized,
        tensors,
        kept,
        folded_relus,
        activations: opts.activations,
        reduce_range: opts.reduce_range,
    })
}

/// Why a Conv/Gemm/MatMul cannot be quantized, if it cannot.
fn compute_blocker(n: &pb::NodeProto, inits: &HashMap<&str, &pb::TensorProto>) -> Option<String> {
    let float = |i: usize| {
        n.input
            .get(i)
            .and_then(|x| inits.get(x.as_str()))
            .filter(|t| t.data_type == data_type::FLOAT)
    };
    let Some(w) = float(1) else {
        return Some("its weight is not a float initializer".into());
    };
    if float(0).is_some() {
        return Some("its data input is a constant".into());
    }
    let per_column = n.op_type == "MatMul" || (n.op_type == "Gemm" && attr_i(n, "transB", 0) == 0);
    if per_column && w.dims.len() != 2 {
        return Some(format!("a weight of rank {} (expected 2)", w.dims.len()));
    }
    if n.op_type == "Conv" && w.dims.len() < 3 {
        return Some(format!("a weight of rank {}", w.dims.len()));
    }
    if n.op_type == "Gemm" {
        if attr_f(n, "alpha", 1.0) != 1.0 {
            return Some("Gemm with alpha ≠ 1".into());
        }
        if attr_i(n, "transA", 0) != 0 {
            return Some("Gemm with transA".into());
        }
        if n.input.len() > 2 && attr_f(n, "beta", 1.0) != 1.0 {
            return Some("Gemm with beta ≠ 1".into());
        }
    }
    None
}

/// The node that writes each tensor.
fn producers(g: &pb::GraphProto) -> HashMap<String, usize> {
    g.node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.clone(), i)))
        .collect()
}

fn consumer_counts(g: &pb::GraphProto) -> HashMap<String, usize> {
    let mut c = HashMap::new();
    for n in &g.node {
        for i in &n.input {
            *c.entry(i.clone()).or_insert(0) += 1;
        }
    }
    c
}

/// The fp32 model with every tensor of `plan` also a graph output (float, shape left
/// to the engine), for observing them on calibration images.
pub fn calibration_model(model: &pb::ModelProto, plan: &Plan) -> pb::ModelProto {
    let mut m = model.clone();
    if let Some(g) = m.graph.as_mut() {
        let have: HashSet<String> = g.output.iter().map(|o| o.name.clone()).collect();
        let inputs: HashSet<String> = g.input.iter().map(|i| i.name.clone()).collect();
        for t in &plan.tensors {
            // A graph input is fed, not computed: its range comes from the images.
            if !have.contains(t) && !inputs.contains(t) {
                g.output.push(pb::ValueInfoProto {
                    name: t.clone(),
                    r#type: Some(pb::TypeProto {
                        tensor_type: Some(pb::TypeProtoTensor {
                            elem_type: data_type::FLOAT,
                            shape: None,
                        }),
                        denotation: String::new(),
                    }),
                    doc_string: String::new(),
                });
            }
        }
    }
    m
}
