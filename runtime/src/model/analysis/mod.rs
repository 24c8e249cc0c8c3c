//! Analysis of any ONNX file: per-node output shapes, parameters, multiply-accumulates
//! (MACs) and activation bytes, and the peak of live activation memory.
//!
//! It reads files edgebench writes as well as files from tf2onnx or `torch.onnx`
//! (NHWC graphs wrapped in `Transpose` nodes, `Shape → Gather → Concat → Reshape`
//! chains): small integer tensors are folded as constants so that such chains resolve
//! to static shapes. An operator it has no shape rule for is an
//! [`Error::UnsupportedOp`]; a malformed file is an [`Error::InvalidOnnx`]; nothing in
//! the file can make it panic.
//!
//! Conventions, chosen to match Keras' `count_params` and the usual MAC counts:
//! - parameters are the elements of the initializers a node consumes as weights (each
//!   initializer counted once, at its first such consumer); int64 initializers and
//!   those used as a shape, axes, indices or bound (`Reshape` shape, `Clip` min, ...)
//!   are not;
//! - MACs are those of `Conv`, `ConvTranspose`, `Gemm` and `MatMul` only;
//! - activation bytes are the bytes of a node's outputs; `Constant` nodes produce
//!   constants, not activations, so they count 0 and are not in the liveness walk.

mod cx;
mod fold;
mod graph;
mod infer;
mod infer_const;
mod infer_nn;
mod infer_shape;
mod table;
#[cfg(test)]
mod tests;
mod value;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::error::{Error, Result};
use crate::onnx::pb::{GraphProto, ModelProto, ValueInfoProto, data_type};
use cx::Cx;
use value::Value;

/// Everything the analysis found about one model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Analysis {
    /// The file analysed, as given.
    pub path: String,
    /// `producer_name` and `producer_version` of the file.
    pub producer: String,
    /// Version of the default (`ai.onnx`) operator set; 0 when not declared.
    pub opset: i64,
    /// The model's precision: `fp32`, `fp16` or `int8` ([`crate::quant::precision_of`]).
    pub precision: String,
    /// Size of the file on disk (None when it cannot be read).
    pub file_bytes: Option<u64>,
    /// Real graph inputs (initializers listed as inputs are left out), with the shapes
    /// used for the analysis.
    pub inputs: Vec<TensorDesc>,
    /// Graph outputs with their inferred shapes.
    pub outputs: Vec<TensorDesc>,
    /// Nodes in topological order.
    pub nodes: Vec<NodeInfo>,
    pub total_params: u64,
    pub total_macs: u64,
    /// Sum of every node's activation bytes.
    pub total_activation_bytes: u64,
    /// Most activation bytes live at once over the topological order.
    pub peak_activation_bytes: u64,
}

/// A named tensor with a static shape.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TensorDesc {
    pub name: String,
    pub shape: Vec<usize>,
    /// Element type, e.g. `float32`.
    pub dtype: String,
}

/// One node of the graph.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeInfo {
    /// The node's name, else its first output's name.
    pub name: String,
    pub op: String,
    /// What it computes in: `int8` (it reads a `DequantizeLinear`'s output: an engine
    /// runs it on integers), `q/dq` (a `QuantizeLinear`/`DequantizeLinear`), else the
    /// element type of its first input (`fp32`, `fp16`, `int64`, …).
    pub precision: String,
    /// Shape of the first output.
    pub output_shape: Vec<usize>,
    pub params: u64,
    pub macs: u64,
    /// Bytes of all the node's outputs.
    pub activation_bytes: u64,
}

impl Analysis {
    /// A human-readable table: one row per node, then totals and peak live memory.
    pub fn to_table(&self) -> String {
        table::render(self)
    }
}

/// Read `path` and analyse it; see [`analyze`].
pub fn analyze_file(path: &Path, input_shape: Option<&[usize]>) -> Result<Analysis> {
    let model = crate::onnx::read_model(path)?;
    analyze(&model, path, input_shape)
}

/// Analyse a model. `input_shape` overrides the full shape of the first graph input;
/// otherwise declared shapes are used, with an unknown batch dimension taken as 1. Any
/// other unknown dimension is an [`Error::Invalid`] asking for `--input-shape`.
pub fn analyze(model: &ModelProto, path: &Path, input_shape: Option<&[usize]>) -> Result<Analysis> {
    let graph = graph_of(model, path)?;
    let mut env: HashMap<&str, Value> = HashMap::new();
    let mut weights: HashMap<&str, u64> = HashMap::new();
    for t in &graph.initializer {
        let v = Value::from_tensor(t).map_err(|reason| invalid(path, reason))?;
        // int64 tensors are shapes, axes and indices in ONNX, never weights.
        if t.data_type != data_type::INT64 {
            weights.insert(&t.name, v.numel());
        }
        env.insert(&t.name, v);
    }
    let inputs = resolve_inputs(graph, path, input_shape)?;
    for (vi, desc) in &inputs {
        let dtype = elem_type(vi);
        env.insert(&vi.name, Value::new(desc.shape.clone(), dtype));
    }
    let available: HashSet<&str> = env.keys().copied().collect();
    let order = graph::topo_order(graph, path, &available)?;

    let mut nodes = Vec::with_capacity(order.len());
    // Bytes of every tensor the liveness walk tracks: real inputs and node outputs.
    let mut live_sizes: HashMap<&str, u64> = inputs
        .iter()
        .map(|(vi, _)| {
            (
                vi.name.as_str(),
                env.get(vi.name.as_str()).map_or(0, Value::bytes),
            )
        })
        .collect();
    // Outputs of DequantizeLinear nodes so far (the order puts producers first).
    let mut dequantized: HashSet<&str> = HashSet::new();
    for &i in &order {
        let node = &graph.node[i];
        let name = graph::node_label(node, i);
        let ins = node
            .input
            .iter()
            .map(|n| {
                if n.is_empty() {
                    None
                } else {
                    env.get(n.as_str())
                }
            })
            .collect();
        let cx = Cx {
            path,
            node,
            name: &name,
            ins,
        };
        let inferred = infer::infer(&cx)?;
        let precision = node_precision(node, &cx.ins, &dequantized);
        if node.op_type == "DequantizeLinear" {
            dequantized.extend(node.output.iter().map(String::as_str));
        }
        // Pair each named output with its value before `cx` (which borrows `env`) ends.
        let produced = node
            .output
            .iter()
            .enumerate()
            .filter(|(_, o)| !o.is_empty())
            .map(|(k, out)| {
                let v = inferred.values.get(k).ok_or_else(|| {
                    cx.unsupported(format!("output #{k} ({out:?}) is not supported"))
                })?;
                Ok((out.as_str(), v.clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        drop(cx);
        let params: u64 = node
            .input
            .iter()
            .enumerate()
            .filter(|&(k, _)| infer::is_param_input(&node.op_type, k))
            .filter_map(|(_, n)| weights.remove(n.as_str()))
            .fold(0u64, u64::saturating_add);
        let is_constant = node.op_type == "Constant";
        let mut bytes = 0u64;
        for (out, v) in produced {
            if !is_constant {
                bytes = bytes.saturating_add(v.bytes());
                live_sizes.insert(out, v.bytes());
            }
            env.insert(out, v);
        }
        nodes.push(NodeInfo {
            name,
            op: node.op_type.clone(),
            precision,
            output_shape: inferred
                .values
                .first()
                .map(|v| v.shape.clone())
                .unwrap_or_default(),
            params,
            macs: inferred.macs,
            activation_bytes: bytes,
        });
    }

    let input_names: Vec<&str> = inputs.iter().map(|(vi, _)| vi.name.as_str()).collect();
    let peak = graph::peak_live(graph, &order, &input_names, &live_sizes);
    let outputs = graph
        .output
        .iter()
        .map(|o| {
            let v = env.get(o.name.as_str()).ok_or_else(|| {
                invalid(
                    path,
                    format!("graph output {:?} is not produced by any node", o.name),
                )
            })?;
            Ok(desc(&o.name, v))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Analysis {
        path: path.display().to_string(),
        producer: format!("{} {}", model.producer_name, model.producer_version)
            .trim()
            .to_string(),
        opset: opset(model),
        precision: crate::quant::precision_of(model).to_string(),
        file_bytes: std::fs::metadata(path).ok().map(|m| m.len()),
        inputs: inputs.into_iter().map(|(_, d)| d).collect(),
        outputs,
        total_params: nodes.iter().fold(0u64, |a, n| a.saturating_add(n.params)),
        total_macs: nodes.iter().fold(0u64, |a, n| a.saturating_add(n.macs)),
        total_activation_bytes: nodes
            .iter()
            .fold(0u64, |a, n| a.saturating_add(n.activation_bytes)),
        peak_activation_bytes: peak,
        nodes,
    })
}

/// What `node` computes in (see [`NodeInfo::precision`]).
fn node_precision(
    node: &crate::onnx::pb::NodeProto,
    ins: &[Option<&Value>],
    dequantized: &HashSet<&str>,
) -> String {
    if matches!(node.op_type.as_str(), "QuantizeLinear" | "DequantizeLinear") {
        return "q/dq".into();
    }
    if node.input.iter().any(|i| dequantized.contains(i.as_str())) {
        return "int8".into();
    }
    match ins.iter().flatten().next().map(|v| v.dtype) {
        Some(data_type::FLOAT) => "fp32".into(),
        Some(data_type::FLOAT16) => "fp16".into(),
        Some(data_type::BFLOAT16) => "bf16".into(),
        Some(data_type::DOUBLE) => "fp64".into(),
        Some(dt) => data_type::name(dt).into(),
        None => "-".into(),
    }
}

/// Declared shape of the first real (non-initializer) graph input; `None` for symbolic
/// or unknown dimensions.
pub fn input_shape_of(model: &ModelProto, path: &Path) -> Result<Vec<Option<usize>>> {
    let graph = graph_of(model, path)?;
    let vi = real_inputs(graph)
        .next()
        .ok_or_else(|| invalid(path, "the graph has no input".into()))?;
    declared(vi).ok_or_else(|| {
        Error::Invalid(format!(
            "{}: input {:?} declares no shape; pass --input-shape",
            path.display(),
            vi.name
        ))
    })
}

/// External data files named by the model's initializers that do not exist beside
/// `path`, in order of first mention. The analysis needs only the weights' shapes, but
/// an engine cannot load the model without these files.
pub fn missing_external_data(model: &ModelProto, path: &Path) -> Vec<String> {
    const EXTERNAL: i32 = 1;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut missing: Vec<String> = Vec::new();
    let tensors = model.graph.iter().flat_map(|g| &g.initializer);
    for t in tensors.filter(|t| t.data_location == EXTERNAL) {
        let location = t
            .external_data
            .iter()
            .find(|e| e.key == "location")
            .map(|e| e.value.as_str());
        let Some(location) = location.filter(|l| !l.is_empty()) else {
            continue;
        };
        if !missing.iter().any(|m| m == location) && !dir.join(location).is_file() {
            missing.push(location.to_string());
        }
    }
    missing
}

/// The `onnx_analysis` fuzz target's body: `data` decoded as an ONNX model and run
/// through the analysis front end (declared input, analysis with declared and overridden
/// shapes, the table, external-data check). Errors are expected; a panic, a hang or a
/// huge allocation is the bug a fuzzer looks for.
pub fn fuzz_one(data: &[u8]) {
    let path = Path::new("fuzz.onnx");
    let Ok(model) = crate::onnx::decode_model(data, path) else {
        return;
    };
    let _ = input_shape_of(&model, path);
    let _ = missing_external_data(&model, path);
    for shape in [None, Some(&[1usize, 3, 9, 9][..]), Some(&[2, 1][..])] {
        if let Ok(a) = analyze(&model, path, shape) {
            let _ = a.to_table();
        }
    }
}

fn graph_of<'m>(model: &'m ModelProto, path: &Path) -> Result<&'m GraphProto> {
    model
        .graph
        .as_ref()
        .ok_or_else(|| invalid(path, "the model has no graph".into()))
}

fn invalid(path: &Path, reason: String) -> Error {
    Error::InvalidOnnx {
        path: path.to_path_buf(),
        reason,
    }
}

/// Version of the default operator set.
fn opset(model: &ModelProto) -> i64 {
    model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(0, |o| o.version)
}

/// Graph inputs that are not initializers (old-IR exporters list weights as inputs).
fn real_inputs(graph: &GraphProto) -> impl Iterator<Item = &ValueInfoProto> {
    let inits: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    graph
        .input
        .iter()
        .filter(move |i| !inits.contains(i.name.as_str()))
}

/// Declared dims (`None` where symbolic or unknown); `None` when no shape is declared.
fn declared(vi: &ValueInfoProto) -> Option<Vec<Option<usize>>> {
    let shape = vi.r#type.as_ref()?.tensor_type.as_ref()?.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| {
                d.dim_value
                    .and_then(|v| usize::try_from(v).ok())
                    .filter(|&v| v > 0)
            })
            .collect(),
    )
}

fn elem_type(vi: &ValueInfoProto) -> i32 {
    vi.r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .map_or(0, |t| t.elem_type)
}

fn desc(name: &str, v: &Value) -> TensorDesc {
    let dtype = if v.dtype == 0 {
        data_type::FLOAT
    } else {
        v.dtype
    };
    TensorDesc {
        name: name.to_string(),
        shape: v.shape.clone(),
        dtype: data_type::name(dtype).to_string(),
    }
}

/// Static shapes of the real graph inputs: the override for the first, declared shapes
/// (unknown batch → 1) otherwise.
fn resolve_inputs<'g>(
    graph: &'g GraphProto,
    path: &Path,
    input_shape: Option<&[usize]>,
) -> Result<Vec<(&'g ValueInfoProto, TensorDesc)>> {
    let mut out = Vec::new();
    for (i, vi) in real_inputs(graph).enumerate() {
        let declared = declared(vi);
        let shape = match (i, input_shape) {
            (0, Some(shape)) => {
                if shape.contains(&0) {
                    return Err(Error::Invalid(format!(
                        "{}: input shape {shape:?} for input {:?} has a zero dimension",
                        path.display(),
                        vi.name
                    )));
                }
                if let Some(d) = declared.as_ref().filter(|d| d.len() != shape.len()) {
                    return Err(Error::Shape {
                        what: format!("{}: input {:?} (--input-shape)", path.display(), vi.name),
                        expected: format!("rank {} ({})", d.len(), fmt_declared(d)),
                        got: format!("{shape:?}"),
                    });
                }
                shape.to_vec()
            }
            _ => {
                let dims = declared.ok_or_else(|| {
                    Error::Invalid(format!(
                        "{}: input {:?} declares no shape; pass --input-shape",
                        path.display(),
                        vi.name
                    ))
                })?;
                let shape: Option<Vec<usize>> = dims
                    .iter()
                    .enumerate()
                    .map(|(k, d)| if k == 0 { Some(d.unwrap_or(1)) } else { *d })
                    .collect();
                shape.ok_or_else(|| {
                    Error::Invalid(format!(
                        "{}: input {:?} has shape {} with an unknown dimension; pass --input-shape \
                         with the full shape (e.g. --input-shape 1x3x224x224)",
                        path.display(),
                        vi.name,
                        fmt_declared(&dims)
                    ))
                })?
            }
        };
        let v = Value::new(shape, elem_type(vi));
        out.push((vi, desc(&vi.name, &v)));
    }
    Ok(out)
}

/// `[?, 3, 224, 224]`.
fn fmt_declared(dims: &[Option<usize>]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| d.map_or("?".into(), |v| v.to_string()))
        .collect();
    format!("[{}]", parts.join(", "))
}
