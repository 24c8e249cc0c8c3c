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

use super::{FULL_RANGE, QParams, REDUCED_RANGE, quantize_per_channel_to};
use crate::error::{Error, Result};
use crate::onnx::pb::{self, attribute_type, data_type};

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
    /// 7-bit weights (−64…64, [`REDUCED_RANGE`]) instead of −127…127: exact on ONNX
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

/// The range chosen for one activation tensor, and its quantization.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TensorRange {
    pub tensor: String,
    pub lo: f32,
    pub hi: f32,
    pub scale: f32,
    pub zero_point: i32,
}

/// What [`rewrite`] did.
#[derive(Debug, Clone)]
pub struct Rewritten {
    pub model: pb::ModelProto,
    pub ranges: Vec<TensorRange>,
    /// Weight initializers now int8, and their fp32 size and int8 size in bytes.
    pub weights: usize,
    pub fp32_weight_bytes: u64,
    pub int8_weight_bytes: u64,
}

/// Write the QDQ model: `ranges` holds `(lo, hi)` for every tensor of `plan.tensors`.
pub fn rewrite(
    model: &pb::ModelProto,
    path: &Path,
    plan: &Plan,
    ranges: &HashMap<String, (f32, f32)>,
) -> Result<Rewritten> {
    let mut g = plan.graph.clone();
    // Quantization of every activation tensor.
    let mut qp: HashMap<String, QParams> = HashMap::new();
    let mut chosen = Vec::with_capacity(plan.tensors.len());
    for t in &plan.tensors {
        let &(lo, hi) = ranges
            .get(t)
            .ok_or_else(|| Error::Invalid(format!("calibration gave no range for tensor {t:?}")))?;
        if !(lo.is_finite() && hi.is_finite()) {
            return Err(Error::Invalid(format!(
                "calibration range of tensor {t:?} is [{lo}, {hi}]: not finite (the model computes NaN or infinity on the calibration images)"
            )));
        }
        let p = match plan.activations {
            Activations::Asymmetric => QParams::asymmetric_i8(lo, hi)?,
            Activations::Symmetric => QParams::symmetric_i8(lo.abs().max(hi.abs()))?,
        };
        chosen.push(TensorRange {
            tensor: t.clone(),
            lo,
            hi,
            scale: p.scale,
            zero_point: p.zero_point,
        });
        qp.insert(t.clone(), p);
    }

    // Read from the plan's graph: `g` is rewritten below, the weights are not copied.
    let inits: HashMap<&str, &pb::TensorProto> = plan
        .graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let mut new_inits: Vec<pb::TensorProto> = Vec::new();
    // Nodes to insert before node i (weight and bias DequantizeLinear).
    let mut before: HashMap<usize, Vec<pb::NodeProto>> = HashMap::new();
    let mut done_weights: HashMap<String, (String, Vec<f32>)> = HashMap::new();
    let (mut weights, mut fp32_bytes, mut int8_bytes) = (0usize, 0u64, 0u64);

    for &i in &plan.quantized {
        let n = g.node[i].clone();
        if !COMPUTE.contains(&n.op_type.as_str()) {
            continue;
        }
        let w_name = n.input[1].clone();
        let w = inits[w_name.as_str()];
        let dims: Vec<usize> = w.dims.iter().map(|&d| d.max(0) as usize).collect();
        // Output channels along axis 0 (Conv, Gemm transB) or axis 1 (MatMul, Gemm).
        let axis = match n.op_type.as_str() {
            "Conv" => 0,
            "Gemm" if attr_i(&n, "transB", 0) != 0 => 0,
            _ => 1,
        };
        let (dq_name, w_scales) = match done_weights.get(&w_name) {
            Some(d) => d.clone(),
            None => {
                let data = crate::model::onnx_read::floats(w, path)?;
                let qmax = if plan.reduce_range {
                    REDUCED_RANGE
                } else {
                    FULL_RANGE
                };
                let q = if axis == 0 {
                    quantize_per_channel_to(&data, dims[0], qmax)
                } else {
                    let (r, c) = (dims[0], dims[1]);
                    let t = transpose(&data, r, c);
                    quantize_per_channel_to(&t, c, qmax).map(|mut q| {
                        q.values = transpose(&q.values, c, r);
                        q
                    })
                }
                .map_err(|e| Error::Invalid(format!("weight {w_name:?}: {e}")))?;
                let qn = format!("{w_name}_quantized");
                let sn = format!("{w_name}_scale");
                let zn = format!("{w_name}_zero_point");
                let dq = format!("{w_name}_dequantized");
                let channels = q.scales.len();
                new_inits.push(tensor_i8(&qn, &w.dims, &q.values));
                new_inits.push(tensor_f32(&sn, &[channels as i64], &q.scales));
                new_inits.push(tensor_i8(&zn, &[channels as i64], &vec![0; channels]));
                before.entry(i).or_default().push(dequantize(
                    &format!("{w_name}_DequantizeLinear"),
                    [&qn, &sn, &zn],
                    &dq,
                    Some(axis),
                ));
                weights += 1;
                fp32_bytes += data.len() as u64 * 4;
                int8_bytes += q.values.len() as u64 + channels as u64 * 5;
                done_weights.insert(w_name.clone(), (dq.clone(), q.scales.clone()));
                (dq, q.scales)
            }
        };
        g.node[i].input[1] = dq_name;

        // The bias: int32 at scale s_x · s_w[c].
        let Some(b_name) = n.input.get(2).filter(|b| !b.is_empty()).cloned() else {
            continue;
        };
        let Some(&b) = inits.get(b_name.as_str()) else {
            continue; // a computed bias stays as it is
        };
        let bias = crate::model::onnx_read::floats(b, path)?;
        if bias.len() != w_scales.len() || b.dims.len() != 1 {
            continue; // a broadcast Gemm C stays fp32
        }
        let sx = qp[&n.input[0]].scale;
        let scales: Vec<f32> = w_scales.iter().map(|&s| sx * s).collect();
        let mut q = Vec::with_capacity(bias.len());
        for (c, (&v, &s)) in bias.iter().zip(&scales).enumerate() {
            if !v.is_finite() {
                return Err(Error::Invalid(format!(
                    "bias {b_name:?} channel {c} is {v}: only finite biases can be quantized"
                )));
            }
            q.push(
                (f64::from(v) / f64::from(s))
                    .round_ties_even()
                    .clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32,
            );
        }
        let node_tag = format!("{}_{}", b_name, i);
        let qn = format!("{node_tag}_quantized");
        let sn = format!("{node_tag}_scale");
        let zn = format!("{node_tag}_zero_point");
        let dq = format!("{node_tag}_dequantized");
        let len = [q.len() as i64];
        new_inits.push(tensor_i32(&qn, &len, &q));
        new_inits.push(tensor_f32(&sn, &len, &scales));
        new_inits.push(tensor_i32(&zn, &len, &vec![0; q.len()]));
        before.entry(i).or_default().push(dequantize(
            &format!("{node_tag}_DequantizeLinear"),
            [&qn, &sn, &zn],
            &dq,
            Some(0),
        ));
        g.node[i].input[2] = dq;
    }

    // Activation Q/DQ pairs. A computed tensor T: its producer writes T_fp32, and the
    // DequantizeLinear writes T, so every consumer and graph output reads the
    // dequantized value under the old name. A graph input T: consumers read T_dq.
    let graph_inputs: HashSet<String> = g.input.iter().map(|x| x.name.clone()).collect();
    let mut after: HashMap<usize, Vec<pb::NodeProto>> = HashMap::new();
    let mut front = Vec::new();
    let producer = producers(&g);
    for t in &plan.tensors {
        let p = qp[t];
        let sn = format!("{t}_scale");
        let zn = format!("{t}_zero_point");
        new_inits.push(tensor_f32(&sn, &[], &[p.scale]));
        new_inits.push(tensor_i8(&zn, &[], &[p.zero_point as i8]));
        let q_out = format!("{t}_quantized");
        let (src, dst) = if graph_inputs.contains(t) {
            let dst = format!("{t}_dequantized");
            for n in g.node.iter_mut() {
                for x in n.input.iter_mut().filter(|x| *x == t) {
                    x.clone_from(&dst);
                }
            }
            (t.clone(), dst)
        } else {
            let Some(&pi) = producer.get(t) else {
                return Err(Error::Invalid(format!(
                    "tensor {t:?} has no producer in the graph"
                )));
            };
            let src = format!("{t}_fp32");
            for o in g.node[pi].output.iter_mut().filter(|o| *o == t) {
                o.clone_from(&src);
            }
            (src, t.clone())
        };
        let pair = [
            pb::NodeProto {
                name: format!("{t}_QuantizeLinear"),
                op_type: "QuantizeLinear".into(),
                input: vec![src, sn.clone(), zn.clone()],
                output: vec![q_out.clone()],
                ..Default::default()
            },
            dequantize(
                &format!("{t}_DequantizeLinear"),
                [&q_out, &sn, &zn],
                &dst,
                None,
            ),
        ];
        match producer.get(t) {
            Some(&pi) if !graph_inputs.contains(t) => after.entry(pi).or_default().extend(pair),
            _ => front.extend(pair),
        }
    }

    // Nodes in a topological order: graph-input pairs first, then each node with its
    // weight DequantizeLinears before it and its output pairs after it.
    let old = std::mem::take(&mut g.node);
    g.node = front;
    for (i, n) in old.into_iter().enumerate() {
        g.node.extend(before.remove(&i).unwrap_or_default());
        g.node.push(n);
        g.node.extend(after.remove(&i).unwrap_or_default());
    }
    // Float weights no node reads any more are dropped.
    g.initializer.extend(new_inits);
    let used: HashSet<String> = g
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .chain(g.output.iter().map(|o| o.name.clone()))
        .collect();
    g.initializer.retain(|t| used.contains(&t.name));
    // Shapes recorded for renamed tensors still describe them; stale entries would only
    // name tensors that no longer exist, so they go.
    let names: HashSet<String> = g
        .node
        .iter()
        .flat_map(|n| n.output.iter().cloned())
        .collect();
    g.value_info.retain(|v| names.contains(&v.name));

    let mut m = model.clone();
    m.graph = Some(g);
    for (k, v) in [
        ("edgebench.precision", "int8".to_string()),
        ("edgebench.activations", plan.activations.to_string()),
        (
            "edgebench.weights",
            if plan.reduce_range {
                "int8 per channel, reduced range -64..64".to_string()
            } else {
                "int8 per channel, -127..127".to_string()
            },
        ),
    ] {
        crate::onnx::set_metadata(&mut m, k, v);
    }
    Ok(Rewritten {
        model: m,
        ranges: chosen,
        weights,
        fp32_weight_bytes: fp32_bytes,
        int8_weight_bytes: int8_bytes,
    })
}

fn dequantize(name: &str, inputs: [&str; 3], out: &str, axis: Option<i64>) -> pb::NodeProto {
    pb::NodeProto {
        name: name.into(),
        op_type: "DequantizeLinear".into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![out.into()],
        attribute: axis
            .map(|a| pb::AttributeProto {
                name: "axis".into(),
                r#type: attribute_type::INT,
                i: a,
                ..Default::default()
            })
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

fn tensor_raw(name: &str, dims: &[i64], dt: i32, raw: Vec<u8>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: dt,
        raw_data: raw,
        ..Default::default()
    }
}

pub(super) fn tensor_f32(name: &str, dims: &[i64], v: &[f32]) -> pb::TensorProto {
    tensor_raw(
        name,
        dims,
        data_type::FLOAT,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

fn tensor_i8(name: &str, dims: &[i64], v: &[i8]) -> pb::TensorProto {
    tensor_raw(
        name,
        dims,
        data_type::INT8,
        v.iter().map(|&x| x as u8).collect(),
    )
}

fn tensor_i32(name: &str, dims: &[i64], v: &[i32]) -> pb::TensorProto {
    tensor_raw(
        name,
        dims,
        data_type::INT32,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

/// `[r, c]` row-major → `[c, r]` row-major.
pub(super) fn transpose<T: Copy + Default>(data: &[T], r: usize, c: usize) -> Vec<T> {
    let mut out = vec![T::default(); data.len()];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = data[i * c + j];
        }
    }
    out
}
