//! [`rewrite`]: the QDQ model written from a [`Plan`] and the calibrated ranges.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::{Activations, COMPUTE, Plan, attr_i, producers};
use crate::error::{Error, Result};
use crate::onnx::pb::{self, attribute_type, data_type};
use crate::quant::{FULL_RANGE, QParams, REDUCED_RANGE, quantize_per_channel_to};

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

pub(crate) fn tensor_f32(name: &str, dims: &[i64], v: &[f32]) -> pb::TensorProto {
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
pub(crate) fn transpose<T: Copy + Default>(data: &[T], r: usize, c: usize) -> Vec<T> {
    let mut out = vec![T::default(); data.len()];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = data[i * c + j];
        }
    }
    out
}
