//! Rules for the operators of shape arithmetic, which also fold their results when the
//! inputs are known: `Constant`, `ConstantOfShape`, `Shape`, `Size`, `Gather`, `Slice`,
//! `Concat`, `Split`, `Range`, and `TopK`. Any operator without a rule ends here as
//! unsupported.

use super::cx::{Cx, Result, fmt_shape};
use super::fold;
use super::infer::Inferred;
use super::value::{Data, MAX_FOLD, Value, numel_usize};
use crate::onnx::pb::data_type;

pub(super) fn infer(cx: &Cx) -> Result<Value> {
    match cx.op() {
        "Constant" => constant(cx),
        "ConstantOfShape" => constant_of_shape(cx),
        "Shape" => shape(cx),
        "Size" => {
            let n = i64::try_from(cx.input(0)?.numel()).unwrap_or(i64::MAX);
            Ok(Value::with_data(
                vec![],
                data_type::INT64,
                Some(Data::Int(vec![n])),
            ))
        }
        "Gather" => gather(cx),
        "Slice" => slice(cx),
        "Concat" => concat(cx),
        "Range" => range(cx),
        _ => Err(cx.unsupported("the analysis has no shape rule for this operator")),
    }
}

fn constant(cx: &Cx) -> Result<Value> {
    let attr = cx
        .node
        .attribute
        .iter()
        .find(|a| a.name.starts_with("value") || a.name == "sparse_value")
        .ok_or_else(|| cx.invalid("no value attribute"))?;
    let float = data_type::FLOAT;
    let int = data_type::INT64;
    Ok(match attr.name.as_str() {
        "value" => {
            let t = attr
                .t
                .as_ref()
                .ok_or_else(|| cx.invalid("attribute value has no tensor"))?;
            Value::from_tensor(t).map_err(|e| cx.invalid(e))?
        }
        "value_float" => {
            Value::with_data(vec![], float, Some(Data::Float(vec![f64::from(attr.f)])))
        }
        "value_floats" => {
            let v: Vec<f64> = attr.floats.iter().map(|&f| f64::from(f)).collect();
            Value::with_data(vec![v.len()], float, Some(Data::Float(v)))
        }
        "value_int" => Value::with_data(vec![], int, Some(Data::Int(vec![attr.i]))),
        "value_ints" => Value::int64_vec(attr.ints.clone()),
        other => return Err(cx.unsupported(format!("constant given as {other}"))),
    })
}

fn constant_of_shape(cx: &Cx) -> Result<Value> {
    let shape: Vec<usize> = cx
        .const_ints(0, "shape")?
        .iter()
        .map(|&d| cx.dim(i128::from(d), "dim"))
        .collect::<Result<_>>()?;
    let fill = match cx.attr("value").and_then(|a| a.t.as_ref()) {
        Some(t) => Value::from_tensor(t).map_err(|e| cx.invalid(e))?,
        None => Value::with_data(vec![1], data_type::FLOAT, Some(Data::Float(vec![0.0]))),
    };
    let n = numel_usize(&shape).filter(|&n| n <= MAX_FOLD);
    let data = match (n, &fill.data) {
        (Some(n), Some(Data::Int(v))) => v.first().map(|&x| Data::Int(vec![x; n])),
        (Some(n), Some(Data::Float(v))) => v.first().map(|&x| Data::Float(vec![x; n])),
        _ => None,
    };
    Ok(Value::with_data(shape, fill.dtype, data))
}

/// `Shape`, with the `start`/`end` attributes of opset 15.
fn shape(cx: &Cx) -> Result<Value> {
    let x = cx.input(0)?;
    let r = x.shape.len() as i64;
    let clamp = |v: i64| {
        (if v < 0 {
            v.saturating_add(r).max(0)
        } else {
            v.min(r)
        }) as usize
    };
    let start = clamp(cx.int("start", 0));
    let end = clamp(cx.int("end", r)).max(start);
    let dims = x.shape[start..end]
        .iter()
        .map(|&d| i64::try_from(d).unwrap_or(i64::MAX))
        .collect();
    Ok(Value::int64_vec(dims))
}

fn gather(cx: &Cx) -> Result<Value> {
    let (x, idx) = (cx.input(0)?, cx.input(1)?);
    let axis = cx.axis(cx.int("axis", 0), x.shape.len())?;
    let dim = x.shape[axis];
    let mut out = x.shape[..axis].to_vec();
    out.extend(&idx.shape);
    out.extend(&x.shape[axis + 1..]);
    let data = match (x.ints(), idx.ints()) {
        (Some(d), Some(i)) => {
            let indices = i
                .iter()
                .map(|&k| {
                    let k = if k < 0 {
                        k.saturating_add(dim as i64)
                    } else {
                        k
                    };
                    usize::try_from(k).ok().filter(|&k| k < dim).ok_or_else(|| {
                        cx.shape_err("indices within the axis", format!("-{dim}..{dim}"), k)
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            fold::gather(d, &x.shape, axis, &indices).map(Data::Int)
        }
        _ => None,
    };
    Ok(Value::with_data(out, x.dtype, data))
}

/// `Slice`: starts/ends/axes/steps as inputs (opset ≥ 10) or attributes (before).
fn slice(cx: &Cx) -> Result<Value> {
    let x = cx.input(0)?;
    let r = x.shape.len();
    let (starts, ends, axes, steps) = match cx.ints("starts") {
        Some(s) => (
            s.to_vec(),
            cx.ints("ends").unwrap_or_default().to_vec(),
            cx.ints("axes").map(<[i64]>::to_vec),
            None,
        ),
        None => {
            let opt = |i: usize, what: &str| -> Result<Option<Vec<i64>>> {
                match cx.opt(i) {
                    Some(_) => Ok(Some(cx.const_ints(i, what)?.to_vec())),
                    None => Ok(None),
                }
            };
            let starts = cx.const_ints(1, "starts")?.to_vec();
            let ends = cx.const_ints(2, "ends")?.to_vec();
            (starts, ends, opt(3, "axes")?, opt(4, "steps")?)
        }
    };
    let n = starts.len();
    let axes = axes.unwrap_or_else(|| (0..n as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; n]);
    if ends.len() != n || axes.len() != n || steps.len() != n {
        return Err(cx.invalid(format!(
            "starts {starts:?}, ends {ends:?}, axes {axes:?}, steps {steps:?} differ in length"
        )));
    }
    let mut out = x.shape.clone();
    let mut first: Vec<i64> = vec![0; r];
    let mut step_all: Vec<i64> = vec![1; r];
    for k in 0..n {
        let a = cx.axis(axes[k], r)?;
        let (dim, step) = (x.shape[a] as i128, i128::from(steps[k]));
        if step == 0 {
            return Err(cx.invalid("slice step 0"));
        }
        let norm = |v: i64| {
            let v = i128::from(v);
            if v < 0 { v + dim } else { v }
        };
        let (s, e) = (norm(starts[k]), norm(ends[k]));
        let (s, len) = if step > 0 {
            let (s, e) = (s.clamp(0, dim), e.clamp(0, dim));
            (s, (e - s + step - 1).div_euclid(step).max(0))
        } else {
            // min/max, not clamp: dim may be 0.
            let (s, e) = (s.min(dim - 1).max(0), e.min(dim - 1).max(-1));
            (s, (s - e - step - 1).div_euclid(-step).max(0))
        };
        out[a] = cx.dim(len, "sliced dim")?;
        first[a] = i64::try_from(s).unwrap_or(0);
        step_all[a] = steps[k];
    }
    let data = x
        .ints()
        .and_then(|d| fold::slice(d, &x.shape, &first, &step_all, &out))
        .map(Data::Int);
    Ok(Value::with_data(out, x.dtype, data))
}

fn concat(cx: &Cx) -> Result<Value> {
    let ins: Vec<&Value> = cx.ins.iter().flatten().copied().collect();
    let first = ins.first().ok_or_else(|| cx.invalid("no inputs"))?;
    let r = first.shape.len();
    let axis = cx.axis(
        cx.attr("axis")
            .map(|a| a.i)
            .ok_or_else(|| cx.invalid("attribute axis is required"))?,
        r,
    )?;
    let mut out = first.shape.clone();
    out[axis] = 0;
    for v in &ins {
        let same_rest =
            v.shape.len() == r && (0..r).all(|i| i == axis || v.shape[i] == first.shape[i]);
        if !same_rest {
            return Err(cx.shape_err(
                &format!("inputs equal except on axis {axis}"),
                fmt_shape(&first.shape),
                fmt_shape(&v.shape),
            ));
        }
        out[axis] = out[axis].saturating_add(v.shape[axis]);
    }
    let parts: Option<Vec<(&[i64], &[usize])>> = ins
        .iter()
        .map(|v| Some((v.ints()?, v.shape.as_slice())))
        .collect();
    let data = parts.and_then(|p| fold::concat(&p, axis)).map(Data::Int);
    Ok(Value::with_data(out, first.dtype, data))
}

/// `Range(start, limit, delta)`: its length needs all three as constants.
fn range(cx: &Cx) -> Result<Value> {
    let dtype = cx.input(0)?.dtype;
    let scalar = |i: usize, what: &str| -> Result<f64> {
        let v = cx.input(i)?;
        match v.floats().as_deref() {
            Some(&[x]) => Ok(x),
            _ => Err(cx.unsupported(format!("{what} (input #{i}) is not a constant scalar"))),
        }
    };
    let (start, limit, delta) = (
        scalar(0, "start")?,
        scalar(1, "limit")?,
        scalar(2, "delta")?,
    );
    let n = ((limit - start) / delta).ceil();
    if !n.is_finite() {
        return Err(cx.invalid(format!("range({start}, {limit}, {delta}) has no length")));
    }
    let n = cx.dim(n.max(0.0) as i128, "range length")?;
    let ints = (cx.input(0)?.ints(), cx.input(2)?.ints());
    let data = match ints {
        (Some(&[s]), Some(&[d])) if n <= MAX_FOLD => Some(Data::Int(
            (0..n as i64)
                .map(|k| s.wrapping_add(k.wrapping_mul(d)))
                .collect(),
        )),
        _ => None,
    };
    Ok(Value::with_data(vec![n], dtype, data))
}

/// `TopK`: values and int64 indices with `k` (input #1, or attribute before opset 10)
/// elements along `axis`.
pub(super) fn top_k(cx: &Cx) -> Result<Inferred> {
    let x = cx.input(0)?;
    let axis = cx.axis(cx.int("axis", -1), x.shape.len())?;
    let k = match cx.attr("k") {
        Some(a) => a.i,
        None => match cx.const_ints(1, "k")? {
            &[k] => k,
            other => return Err(cx.invalid(format!("k {other:?} is not a scalar"))),
        },
    };
    let k = cx.dim(i128::from(k), "k")?;
    if k > x.shape[axis] {
        return Err(cx.shape_err("k within the axis", x.shape[axis], k));
    }
    let mut shape = x.shape.clone();
    shape[axis] = k;
    let indices = Value::new(shape.clone(), data_type::INT64);
    Ok(Inferred {
        values: vec![Value::new(shape, x.dtype), indices],
        macs: 0,
    })
}

/// `Split` into `split` sizes (attribute or input #1), `num_outputs`, or equal parts.
pub(super) fn split(cx: &Cx) -> Result<Inferred> {
    let x = cx.input(0)?;
    let axis = cx.axis(cx.int("axis", 0), x.shape.len())?;
    let dim = x.shape[axis];
    let sizes: Vec<usize> = match cx.ints_attr_or_input("split", 1)? {
        Some(s) => s
            .iter()
            .map(|&v| cx.dim(i128::from(v), "split size"))
            .collect::<Result<_>>()?,
        None => {
            let parts = usize::try_from(cx.int("num_outputs", cx.node.output.len() as i64))
                .ok()
                .filter(|&p| p >= 1 && p <= cx.node.output.len().max(1))
                .ok_or_else(|| cx.invalid("num_outputs does not match the node's outputs"))?;
            let chunk = dim.div_ceil(parts);
            (0..parts)
                .map(|i| chunk.min(dim.saturating_sub(i * chunk)))
                .collect()
        }
    };
    if sizes.iter().map(|&s| s as u64).sum::<u64>() != dim as u64 {
        return Err(cx.shape_err(
            &format!("split sizes summing to dim {axis}"),
            dim,
            format!("{sizes:?}"),
        ));
    }
    let values = sizes
        .iter()
        .map(|&s| {
            let mut shape = x.shape.clone();
            shape[axis] = s;
            Value::new(shape, x.dtype)
        })
        .collect();
    Ok(Inferred { values, macs: 0 })
}
