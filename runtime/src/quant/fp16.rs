//! fp16 conversion: an fp32 ONNX model becomes one whose weights and compute are float16,
//! with its inputs and outputs still float32, the form the CUDA and TensorRT providers
//! (and tract) run in half precision.
//!
//! - Every float32 initializer becomes float16 (round to nearest even); one whose values
//!   do not fit (|x| > 65504, or not finite) is refused, naming it. Values below fp16's
//!   smallest subnormal become 0, as in every fp16 conversion.
//! - Float `Constant`/`ConstantOfShape` values become float16, a `Cast` to float32 casts
//!   to float16 instead, and the graph's float value infos say float16.
//! - Inputs that ONNX types float32 whatever the compute type stay float32: `Resize`'s
//!   `scales` (and its `roi`).
//! - A plain `Gemm` becomes `MatMul` + `Add` (its weight transposed once here): the
//!   same arithmetic, fused back by ONNX Runtime and TensorRT, and what tract runs in
//!   float16 (its `Gemm` does not).
//! - Each float32 graph input is cast to float16 by a `Cast` node where it enters, each
//!   float32 output cast back where it leaves, so a caller feeds and reads float32 as
//!   before.
//!
//! A model that is not float32 (already int8 or fp16) is refused.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use half::f16;
use serde::Serialize;

use super::qdq::{attr_f, attr_i, tensor_f32, transpose};
use crate::error::{Error, Result};
use crate::model::Prepared;
use crate::onnx::pb::{self, attribute_type, data_type};

/// Inputs (op, index) that stay float32 in an fp16 model.
const FLOAT32_INPUTS: [(&str, usize); 2] = [("Resize", 1), ("Resize", 2)];

/// What [`convert`] did, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Converted {
    #[serde(skip)]
    pub model: pb::ModelProto,
    /// Initializers now float16.
    pub initializers: usize,
    /// Their float32 values that became 0 (below fp16's smallest subnormal, 6e-8).
    pub flushed_to_zero: u64,
    /// Values in fp16's subnormal range (below 6.1e-5: fewer significant bits).
    pub subnormal: u64,
    /// Largest relative rounding error of a value in fp16's normal range (at most
    /// 2⁻¹¹ ≈ 4.9e-4 by construction).
    pub max_relative_error: f32,
    /// Graph inputs and outputs behind a `Cast`.
    pub cast_inputs: Vec<String>,
    pub cast_outputs: Vec<String>,
    /// Initializers kept float32, and why.
    pub kept_fp32: Vec<(String, String)>,
    /// `Gemm` nodes written as `MatMul` + `Add` (the same arithmetic, which every
    /// engine fuses back; tract has no float16 `Gemm`).
    pub gemm_as_matmul: Vec<String>,
}

/// What `edgebench quantize --to fp16` did.
#[derive(Debug, Clone, Serialize)]
pub struct Fp16Report {
    pub model: String,
    pub output: PathBuf,
    pub input_shape: Vec<usize>,
    #[serde(flatten)]
    pub converted: Converted,
    pub fp32_bytes: u64,
    pub fp16_bytes: u64,
}

/// Convert `prepared` to fp16 and write it to `out` (nothing written on failure).
pub fn write(prepared: &Prepared, out: &Path) -> Result<Fp16Report> {
    let model = crate::onnx::read_model(&prepared.path)?;
    let mut converted = convert(&model, &prepared.path)?;
    let (fp32_bytes, fp16_bytes) = super::write_variant(&mut converted.model, prepared, out)?;
    Ok(Fp16Report {
        model: prepared.name.clone(),
        output: out.to_path_buf(),
        input_shape: prepared.input_shape.clone(),
        converted,
        fp32_bytes,
        fp16_bytes,
    })
}

/// Convert `model` (read from `path`, named in errors) to fp16.
pub fn convert(model: &pb::ModelProto, path: &Path) -> Result<Converted> {
    let precision = super::precision_of(model);
    if precision != "fp32" {
        return Err(Error::Input {
            path: path.to_path_buf(),
            reason: format!(
                "the model is {precision} already; fp16 conversion starts from an fp32 model"
            ),
        });
    }
    let mut model = model.clone();
    let g = model.graph.as_mut().ok_or_else(|| Error::InvalidOnnx {
        path: path.to_path_buf(),
        reason: "no graph".into(),
    })?;

    // Tensors that must stay float32: Resize's roi and scales.
    let mut keep: HashMap<String, String> = HashMap::new();
    for n in &g.node {
        for &(op, i) in &FLOAT32_INPUTS {
            if n.op_type == op
                && let Some(t) = n.input.get(i).filter(|t| !t.is_empty())
            {
                keep.insert(t.clone(), format!("{op} input {i} is float32 in ONNX"));
            }
        }
    }

    let mut out = Converted {
        model: pb::ModelProto::default(),
        initializers: 0,
        flushed_to_zero: 0,
        subnormal: 0,
        max_relative_error: 0.0,
        cast_inputs: Vec::new(),
        cast_outputs: Vec::new(),
        kept_fp32: Vec::new(),
        gemm_as_matmul: gemm_as_matmul(g, path)?,
    };
    let mut float_inits: HashSet<String> = HashSet::new();
    for t in &mut g.initializer {
        if t.data_type != data_type::FLOAT {
            continue;
        }
        if let Some(why) = keep.get(&t.name) {
            out.kept_fp32.push((t.name.clone(), why.clone()));
            continue;
        }
        let values = crate::model::onnx_read::floats(t, path)?;
        *t = to_f16(t, &values, &format!("initializer {:?}", t.name), &mut out)?;
        float_inits.insert(t.name.clone());
        out.initializers += 1;
    }
    out.kept_fp32.sort();

    for n in &mut g.node {
        let feeds_kept = n.output.iter().any(|o| keep.contains_key(o));
        if feeds_kept {
            continue;
        }
        let what = format!("the value of {} node {:?}", n.op_type, n.name);
        let constant = matches!(n.op_type.as_str(), "Constant" | "ConstantOfShape");
        for a in &mut n.attribute {
            match (a.name.as_str(), a.r#type) {
                ("value", attribute_type::TENSOR) if constant => {
                    if let Some(t) = a.t.as_mut().filter(|t| t.data_type == data_type::FLOAT) {
                        let values = crate::model::onnx_read::floats(t, path)?;
                        *t = to_f16(t, &values, &what, &mut out)?;
                    }
                }
                // Constant's value_float / value_floats: a float16 tensor instead.
                ("value_float", attribute_type::FLOAT)
                | ("value_floats", attribute_type::FLOATS)
                    if n.op_type == "Constant" =>
                {
                    let (values, dims) = if a.r#type == attribute_type::FLOAT {
                        (vec![a.f], vec![])
                    } else {
                        (a.floats.clone(), vec![a.floats.len() as i64])
                    };
                    let t = pb::TensorProto {
                        dims,
                        data_type: data_type::FLOAT,
                        ..Default::default()
                    };
                    *a = pb::AttributeProto {
                        name: "value".into(),
                        r#type: attribute_type::TENSOR,
                        t: Some(to_f16(&t, &values, &what, &mut out)?),
                        ..Default::default()
                    };
                }
                ("to", attribute_type::INT)
                    if n.op_type == "Cast" && a.i == i64::from(data_type::FLOAT) =>
                {
                    a.i = i64::from(data_type::FLOAT16);
                }
                _ => {}
            }
        }
    }

    // Value infos of float tensors inside the graph say float16 (kept ones excepted).
    for vi in &mut g.value_info {
        if !keep.contains_key(&vi.name) {
            set_elem(vi, data_type::FLOAT, data_type::FLOAT16);
        }
    }

    // Graph inputs: cast where they enter. (Initializers listed as inputs are weights.)
    let mut renamed: HashMap<String, String> = HashMap::new();
    let mut casts_in = Vec::new();
    for vi in &g.input {
        if elem(vi) != Some(data_type::FLOAT)
            || float_inits.contains(&vi.name)
            || keep.contains_key(&vi.name)
        {
            continue;
        }
        let inner = format!("{}_fp16", vi.name);
        casts_in.push(cast(
            &format!("{}_to_fp16", vi.name),
            &vi.name,
            &inner,
            data_type::FLOAT16,
        ));
        renamed.insert(vi.name.clone(), inner);
        out.cast_inputs.push(vi.name.clone());
    }
    // Initializers that are also graph inputs are float16 now: their input says so.
    for vi in &mut g.input {
        if float_inits.contains(&vi.name) {
            set_elem(vi, data_type::FLOAT, data_type::FLOAT16);
        }
    }
    // Graph outputs: the producer writes a float16 tensor, a Cast writes the output.
    let mut casts_out = Vec::new();
    let mut out_renamed: HashMap<String, String> = HashMap::new();
    for vi in &g.output {
        if elem(vi) != Some(data_type::FLOAT) || keep.contains_key(&vi.name) {
            continue;
        }
        let inner = format!("{}_fp16", vi.name);
        // An output that is a graph input as well reads the cast input.
        let source = renamed
            .get(&vi.name)
            .cloned()
            .unwrap_or_else(|| inner.clone());
        casts_out.push(cast(
            &format!("{}_to_fp32", vi.name),
            &source,
            &vi.name,
            data_type::FLOAT,
        ));
        out_renamed.insert(vi.name.clone(), inner);
        out.cast_outputs.push(vi.name.clone());
    }
    // Consumers read the cast inputs and the producers' float16 outputs; producers
    // write those.
    for n in &mut g.node {
        for i in &mut n.input {
            if let Some(r) = renamed.get(i).or_else(|| out_renamed.get(i)) {
                *i = r.clone();
            }
        }
        for o in &mut n.output {
            if let Some(r) = out_renamed.get(o) {
                *o = r.clone();
            }
        }
    }
    let mut nodes = casts_in;
    nodes.append(&mut g.node);
    nodes.extend(casts_out);
    g.node = nodes;
    out.model = model;
    Ok(out)
}

/// Rewrite each plain `Gemm` (alpha = beta = 1, A not transposed, B a float
/// initializer) as `MatMul` + `Add`, B transposed in place when `transB = 1`; its name.
fn gemm_as_matmul(g: &mut pb::GraphProto, path: &Path) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let mut nodes = Vec::with_capacity(g.node.len());
    for n in std::mem::take(&mut g.node) {
        let b_index = n.input.get(1).and_then(|b| {
            g.initializer
                .iter()
                .position(|t| &t.name == b && t.data_type == data_type::FLOAT && t.dims.len() == 2)
        });
        let plain = n.op_type == "Gemm"
            && attr_f(&n, "alpha", 1.0) == 1.0
            && attr_f(&n, "beta", 1.0) == 1.0
            && attr_i(&n, "transA", 0) == 0;
        let (true, Some(bi)) = (plain, b_index) else {
            nodes.push(n);
            continue;
        };
        let mut b_name = n.input[1].clone();
        if attr_i(&n, "transB", 0) != 0 {
            let t = &g.initializer[bi];
            let (r, c) = (t.dims[0] as usize, t.dims[1] as usize);
            let v = crate::model::onnx_read::floats(t, path)?;
            b_name = format!("{}_transposed", t.name);
            let transposed = tensor_f32(&b_name, &[c as i64, r as i64], &transpose(&v, r, c));
            g.initializer.push(transposed);
        }
        let label = if n.name.is_empty() {
            n.output[0].clone()
        } else {
            n.name.clone()
        };
        let bias = n.input.get(2).filter(|c| !c.is_empty());
        let product = if bias.is_some() {
            format!("{}_matmul", n.output[0])
        } else {
            n.output[0].clone()
        };
        nodes.push(pb::NodeProto {
            name: format!("{label}_MatMul"),
            op_type: "MatMul".into(),
            input: vec![n.input[0].clone(), b_name],
            output: vec![product.clone()],
            ..Default::default()
        });
        if let Some(c) = bias {
            nodes.push(pb::NodeProto {
                name: format!("{label}_Add"),
                op_type: "Add".into(),
                input: vec![product, c.clone()],
                output: vec![n.output[0].clone()],
                ..Default::default()
            });
        }
        done.push(label);
    }
    g.node = nodes;
    // Weights only the rewritten Gemms read (now transposed copies) go.
    let used: HashSet<&str> = g
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .chain(g.output.iter().map(|o| o.name.as_str()))
        .collect();
    let unused: HashSet<String> = g
        .initializer
        .iter()
        .filter(|t| !used.contains(t.name.as_str()))
        .map(|t| t.name.clone())
        .collect();
    g.initializer.retain(|t| !unused.contains(&t.name));
    g.input.retain(|i| !unused.contains(&i.name));
    Ok(done)
}

/// `t` (float32 `values`) as a float16 tensor of the same name and dims.
fn to_f16(
    t: &pb::TensorProto,
    values: &[f32],
    what: &str,
    out: &mut Converted,
) -> Result<pb::TensorProto> {
    let mut raw = Vec::with_capacity(values.len() * 2);
    for &v in values {
        let h = f16::from_f32(v);
        if !h.is_finite() {
            return Err(Error::Invalid(format!(
                "{what}: value {v} does not fit in fp16 (largest 65504); keep this model in fp32"
            )));
        }
        let back = h.to_f32();
        if back == 0.0 && v != 0.0 {
            out.flushed_to_zero += 1;
        } else if v.abs() < f16::MIN_POSITIVE.to_f32() && v != 0.0 {
            out.subnormal += 1;
        } else if v != 0.0 {
            out.max_relative_error = out.max_relative_error.max(((back - v) / v).abs());
        }
        raw.extend_from_slice(&h.to_le_bytes());
    }
    Ok(pb::TensorProto {
        name: t.name.clone(),
        dims: t.dims.clone(),
        data_type: data_type::FLOAT16,
        raw_data: raw,
        doc_string: t.doc_string.clone(),
        ..Default::default()
    })
}

fn elem(vi: &pb::ValueInfoProto) -> Option<i32> {
    vi.r#type
        .as_ref()?
        .tensor_type
        .as_ref()
        .map(|t| t.elem_type)
}

fn set_elem(vi: &mut pb::ValueInfoProto, from: i32, to: i32) {
    if let Some(t) = vi.r#type.as_mut().and_then(|t| t.tensor_type.as_mut())
        && t.elem_type == from
    {
        t.elem_type = to;
    }
}

fn cast(name: &str, input: &str, output: &str, to: i32) -> pb::NodeProto {
    pb::NodeProto {
        name: name.into(),
        op_type: "Cast".into(),
        input: vec![input.into()],
        output: vec![output.into()],
        attribute: vec![pb::AttributeProto {
            name: "to".into(),
            r#type: attribute_type::INT,
            i: i64::from(to),
            ..Default::default()
        }],
        ..Default::default()
    }
}
