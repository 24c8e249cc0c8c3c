//! Shape inference dispatch: one rule per operator, elementwise operators and numpy
//! broadcasting here; convolution-like and shape-manipulating operators in their own
//! files.

use super::cx::{Cx, Result, fmt_shape};
use super::value::{Data, Value};
use super::{fold, infer_nn, infer_shape};
use crate::onnx::pb::data_type;

/// What inference found for a node: its output values (by output position) and its
/// multiply-accumulates.
pub(super) struct Inferred {
    pub values: Vec<Value>,
    pub macs: u64,
}

impl Inferred {
    pub fn one(v: Value) -> Self {
        Inferred {
            values: vec![v],
            macs: 0,
        }
    }
}

/// Operators whose output has the shape and type of their first input.
const SAME_SHAPE: &[&str] = &[
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Sigmoid",
    "Tanh",
    "Clip",
    "Elu",
    "Selu",
    "Celu",
    "HardSigmoid",
    "HardSwish",
    "Softplus",
    "Softsign",
    "Mish",
    "Gelu",
    "ThresholdedRelu",
    "Softmax",
    "LogSoftmax",
    "Hardmax",
    "Identity",
    "Abs",
    "Neg",
    "Exp",
    "Log",
    "Sqrt",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Erf",
    "Sin",
    "Cos",
    "Tan",
    "Asin",
    "Acos",
    "Atan",
    "Sinh",
    "Cosh",
    "Asinh",
    "Acosh",
    "Atanh",
    "LRN",
    "InstanceNormalization",
    "LpNormalization",
    "MeanVarianceNormalization",
    "QuantizeLinear",
    "DequantizeLinear",
];

/// Elementwise operators with numpy broadcasting over all their inputs.
const BROADCAST: &[&str] = &[
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Mod", "BitShift",
];

/// Broadcasting comparisons and logic: boolean output.
const BROADCAST_BOOL: &[&str] = &[
    "Equal",
    "Less",
    "Greater",
    "LessOrEqual",
    "GreaterOrEqual",
    "And",
    "Or",
    "Xor",
];

/// Infer one node.
pub(super) fn infer(cx: &Cx) -> Result<Inferred> {
    let domain = cx.node.domain.as_str();
    if !matches!(domain, "" | "ai.onnx") {
        return Err(cx.unsupported(format!("operator of custom domain {domain:?}")));
    }
    let op = cx.op();
    match op {
        "Conv" => infer_nn::conv(cx),
        "ConvTranspose" => infer_nn::conv_transpose(cx),
        "MaxPool" | "AveragePool" | "LpPool" => infer_nn::pool(cx),
        "GlobalAveragePool" | "GlobalMaxPool" | "GlobalLpPool" => infer_nn::global_pool(cx),
        "BatchNormalization" => infer_nn::batch_norm(cx),
        "LayerNormalization" => infer_nn::layer_norm(cx),
        "Gemm" => infer_nn::gemm(cx),
        "MatMul" => infer_nn::matmul(cx),
        "Resize" | "Upsample" => infer_nn::resize(cx),
        "DepthToSpace" | "SpaceToDepth" => infer_nn::depth_space(cx),
        "Dropout" => {
            let x = cx.input(0)?;
            let mask = Value::new(x.shape.clone(), data_type::BOOL);
            Ok(Inferred {
                values: vec![x.clone(), mask],
                macs: 0,
            })
        }
        "Not" | "IsNaN" | "IsInf" => Ok(Inferred::one(Value::new(
            cx.input(0)?.shape.clone(),
            data_type::BOOL,
        ))),
        "Cast" => cast(cx),
        "Where" => {
            let shapes = [0, 1, 2]
                .map(|i| cx.input(i).map(|v| v.shape.as_slice()))
                .into_iter()
                .collect::<Result<Vec<_>>>()?;
            let out = broadcast_shapes(cx, &shapes)?;
            Ok(Inferred::one(Value::new(out, cx.input(1)?.dtype)))
        }
        _ if SAME_SHAPE.contains(&op) => {
            let x = cx.input(0)?;
            // Identity passes known contents through; the others compute new values.
            let data = if op == "Identity" {
                x.data.clone()
            } else {
                None
            };
            Ok(Inferred::one(Value::with_data(
                x.shape.clone(),
                x.dtype,
                data,
            )))
        }
        _ if BROADCAST.contains(&op) => broadcast(cx, None),
        _ if BROADCAST_BOOL.contains(&op) => broadcast(cx, Some(data_type::BOOL)),
        _ => infer_shape::infer(cx),
    }
}

/// Whether input `i` of `op` holds weights (counted as parameters) rather than a shape,
/// axes, indices or a scalar bound. Initializers at the latter positions are not
/// parameters: Keras' `count_params` has no counterpart for them.
pub(super) fn is_param_input(op: &str, i: usize) -> bool {
    match op {
        "Reshape" | "Expand" | "Tile" | "Squeeze" | "Unsqueeze" | "Split" | "Gather"
        | "GatherElements" | "TopK" | "Upsample" | "OneHot" | "Dropout" => i == 0,
        "Slice" | "Pad" | "Resize" | "Clip" => i == 0,
        "ConstantOfShape" | "Range" | "Shape" | "Size" => false,
        _ if op.starts_with("Reduce") => i == 0,
        _ => true,
    }
}

/// Numpy broadcasting of several shapes.
pub(super) fn broadcast_shapes(cx: &Cx, shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        let offset = rank - s.len();
        for (k, &d) in s.iter().enumerate() {
            let o = &mut out[offset + k];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                let all: Vec<String> = shapes.iter().map(|s| fmt_shape(s)).collect();
                return Err(cx.shape_err(
                    "broadcastable input shapes",
                    "dimensions equal or 1",
                    all.join(" vs "),
                ));
            }
        }
    }
    Ok(out)
}

/// Elementwise op over all inputs; `dtype` overrides the first input's type.
fn broadcast(cx: &Cx, dtype: Option<i32>) -> Result<Inferred> {
    let ins: Vec<&Value> = cx.ins.iter().flatten().copied().collect();
    let first = ins
        .first()
        .ok_or_else(|| cx.invalid("missing required input #0"))?;
    let shapes: Vec<&[usize]> = ins.iter().map(|v| v.shape.as_slice()).collect();
    let out = broadcast_shapes(cx, &shapes)?;
    let data = match (ins.as_slice(), dtype) {
        ([a, b], None) => match (a.ints(), b.ints()) {
            (Some(x), Some(y)) => fold::binary(cx.op(), (x, &a.shape), (y, &b.shape), &out),
            _ => None,
        },
        _ => None,
    };
    let dtype = dtype.unwrap_or(first.dtype);
    Ok(Inferred::one(Value::with_data(
        out,
        dtype,
        data.map(Data::Int),
    )))
}

/// `Cast`: same shape, new type; known contents are converted.
fn cast(cx: &Cx) -> Result<Inferred> {
    let x = cx.input(0)?;
    let to = i32::try_from(cx.int("to", i64::from(data_type::FLOAT)))
        .map_err(|_| cx.invalid("attribute `to` is not a data type"))?;
    let data = match &x.data {
        None => None,
        Some(_) if to == data_type::BOOL => x
            .floats()
            .map(|v| Data::Int(v.iter().map(|&f| i64::from(f != 0.0)).collect())),
        // Float to integer truncates toward zero (saturating; NaN becomes 0).
        Some(Data::Float(v)) if !super::value::is_float(to) => {
            Some(Data::Int(v.iter().map(|&f| f as i64).collect()))
        }
        Some(_) if super::value::is_float(to) => x.floats().map(Data::Float),
        Some(d) => Some(d.clone()),
    };
    Ok(Inferred::one(Value::with_data(x.shape.clone(), to, data)))
}
