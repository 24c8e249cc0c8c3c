//! Shape rules for the operators that only move data around: `Flatten`, `Reshape`,
//! `Transpose`, `Squeeze`/`Unsqueeze`, `Expand`, `Tile`, `Pad`, reductions. Known
//! contents pass through the ones that keep row-major order.

use super::cx::{Cx, Result, fmt_shape};
use super::fold;
use super::infer::{Inferred, broadcast_shapes};
use super::infer_const;
use super::value::{Data, Value, numel};
use crate::onnx::pb::data_type;

/// Dispatch for the operators of this file and of [`infer_const`].
pub(super) fn infer(cx: &Cx) -> Result<Inferred> {
    let op = cx.op();
    let v = match op {
        "Flatten" => flatten(cx)?,
        "Reshape" => reshape(cx)?,
        "Transpose" => transpose(cx)?,
        "Squeeze" => squeeze(cx)?,
        "Unsqueeze" => unsqueeze(cx)?,
        "Expand" => expand(cx)?,
        "Tile" => tile(cx)?,
        "Pad" => pad(cx)?,
        "ArgMax" | "ArgMin" => arg_reduce(cx)?,
        _ if op.starts_with("Reduce") => reduce(cx)?,
        "Split" => return infer_const::split(cx),
        "TopK" => return infer_const::top_k(cx),
        _ => infer_const::infer(cx)?,
    };
    Ok(Inferred::one(v))
}

/// Same data, new shape (row-major order unchanged).
fn reshaped(cx: &Cx, x: &Value, shape: Vec<usize>) -> Result<Value> {
    if numel(&shape) != x.numel() {
        return Err(cx.shape_err(
            "element count preserved",
            format!("{} elements ({})", x.numel(), fmt_shape(&x.shape)),
            fmt_shape(&shape),
        ));
    }
    Ok(Value::with_data(shape, x.dtype, x.data.clone()))
}

fn flatten(cx: &Cx) -> Result<Value> {
    let x = cx.input(0)?;
    let axis = cx.int("axis", 1);
    // Flatten accepts axis == rank (everything in the first dim).
    let axis = if axis == x.shape.len() as i64 {
        x.shape.len()
    } else {
        cx.axis(axis, x.shape.len())?
    };
    let outer = usize::try_from(numel(&x.shape[..axis])).unwrap_or(usize::MAX);
    let inner = usize::try_from(numel(&x.shape[axis..])).unwrap_or(usize::MAX);
    reshaped(cx, x, vec![outer, inner])
}

fn reshape(cx: &Cx) -> Result<Value> {
    let x = cx.input(0)?;
    let spec = match cx.ints("shape") {
        Some(s) => s, // Reshape-1 had the shape as an attribute.
        None => cx.const_ints(1, "shape")?,
    };
    let allow_zero = cx.int("allowzero", 0) != 0;
    let mut out = Vec::with_capacity(spec.len());
    let mut infer_at = None;
    for (i, &s) in spec.iter().enumerate() {
        let d = match s {
            0 if !allow_zero => *x.shape.get(i).ok_or_else(|| {
                cx.invalid(format!(
                    "shape {spec:?} copies dim {i} of a rank-{} input",
                    x.shape.len()
                ))
            })?,
            -1 if infer_at.is_none() => {
                infer_at = Some(i);
                1
            }
            _ => usize::try_from(s).map_err(|_| cx.invalid(format!("invalid shape {spec:?}")))?,
        };
        out.push(d);
    }
    if let Some(i) = infer_at {
        let known = numel(&out);
        if known == 0 || !x.numel().is_multiple_of(known) {
            return Err(cx.shape_err(
                "a shape that divides the element count",
                format!("{} elements ({})", x.numel(), fmt_shape(&x.shape)),
                format!("{spec:?}"),
            ));
        }
        out[i] = usize::try_from(x.numel() / known).unwrap_or(usize::MAX);
    }
    reshaped(cx, x, out)
}

fn transpose(cx: &Cx) -> Result<Value> {
    let x = cx.input(0)?;
    let r = x.shape.len();
    let perm: Vec<usize> = match cx.ints("perm") {
        Some(p) => p
            .iter()
            .map(|&a| usize::try_from(a).unwrap_or(usize::MAX))
            .collect(),
        None => (0..r).rev().collect(),
    };
    let mut seen = vec![false; r];
    let mut out = Vec::with_capacity(r);
    for &p in &perm {
        match seen.get_mut(p) {
            Some(s) if !*s => *s = true,
            _ => return Err(cx.invalid(format!("perm {perm:?} is not a permutation of 0..{r}"))),
        }
        out.push(x.shape[p]);
    }
    if perm.len() != r {
        return Err(cx.invalid(format!("perm {perm:?} is not a permutation of 0..{r}")));
    }
    // Contents are kept only when the order does not change (rank ≤ 1).
    let data = if r <= 1 { x.data.clone() } else { None };
    Ok(Value::with_data(out, x.dtype, data))
}

/// Axes from the attribute (older opsets) or input #1 (newer), normalized to `rank`.
fn axes(cx: &Cx, rank: usize) -> Result<Option<Vec<usize>>> {
    let Some(axes) = cx.ints_attr_or_input("axes", 1)? else {
        return Ok(None);
    };
    let mut out = axes
        .iter()
        .map(|&a| cx.axis(a, rank))
        .collect::<Result<Vec<_>>>()?;
    out.sort_unstable();
    if out.windows(2).any(|w| w[0] == w[1]) {
        return Err(cx.invalid(format!("repeated axis in {axes:?}")));
    }
    Ok(Some(out))
}

fn squeeze(cx: &Cx) -> Result<Value> {
    let x = cx.input(0)?;
    let out = match axes(cx, x.shape.len())? {
        Some(axes) => {
            if let Some(&a) = axes.iter().find(|&&a| x.shape[a] != 1) {
                return Err(cx.shape_err(&format!("dim {a} of size 1"), 1, fmt_shape(&x.shape)));
            }
            let keep = |(i, _): &(usize, &usize)| !axes.contains(i);
            x.shape
                .iter()
                .enumerate()
                .filter(keep)
                .map(|(_, &d)| d)
                .collect()
        }
        None => x.shape.iter().copied().filter(|&d| d != 1).collect(),
    };
    reshaped(cx, x, out)
}

fn unsqueeze(cx: &Cx) -> Result<Value> {
    let x = cx.input(0)?;
    let n = cx.ints_attr_or_input("axes", 1)?.map_or(0, |a| a.len());
    let rank = x.shape.len() + n;
    let axes = axes(cx, rank)?.ok_or_else(|| cx.invalid("axes are required"))?;
    let mut dims = x.shape.iter();
    let out = (0..rank)
        .map(|i| {
            if axes.contains(&i) {
                1
            } else {
                dims.next().copied().unwrap_or(1)
            }
        })
        .collect();
    reshaped(cx, x, out)
}

fn expand(cx: &Cx) -> Result<Value> {
    let x = cx.input(0)?;
    let shape: Vec<usize> = cx
        .const_ints(1, "shape")?
        .iter()
        .map(|&d| cx.dim(i128::from(d), "expanded dim"))
        .collect::<Result<_>>()?;
    let out = broadcast_shapes(cx, &[&x.shape, &shape])?;
    let data = x.ints().and_then(|d| {
        let map = fold::broadcast_map(&x.shape, &out)?;
        map.iter()
            .map(|&i| d.get(i).copied())
            .collect::<Option<Vec<_>>>()
    });
    Ok(Value::with_data(out, x.dtype, data.map(Data::Int)))
}

fn tile(cx: &Cx) -> Result<Value> {
    let x = cx.input(0)?;
    let reps = cx.const_ints(1, "repeats")?;
    if reps.len() != x.shape.len() {
        return Err(cx.shape_err("one repeat per dim", x.shape.len(), format!("{reps:?}")));
    }
    let out = x
        .shape
        .iter()
        .zip(reps)
        .map(|(&d, &r)| cx.dim((d as i128).saturating_mul(i128::from(r)), "tiled dim"))
        .collect::<Result<_>>()?;
    Ok(Value::new(out, x.dtype))
}

fn pad(cx: &Cx) -> Result<Value> {
    let x = cx.input(0)?;
    let r = x.shape.len();
    // Pad-2 named the attribute `paddings`; Pad-11+ takes input #1.
    let pads = match cx.ints("pads").or_else(|| cx.ints("paddings")) {
        Some(p) => p.to_vec(),
        None => cx.const_ints(1, "pads")?.to_vec(),
    };
    let axes: Vec<usize> = match cx.opt(3) {
        Some(_) => cx
            .const_ints(3, "axes")?
            .iter()
            .map(|&a| cx.axis(a, r))
            .collect::<Result<_>>()?,
        None => (0..r).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(cx.shape_err("2 pads per axis", 2 * axes.len(), format!("{pads:?}")));
    }
    let mut out = x.shape.clone();
    for (k, &a) in axes.iter().enumerate() {
        let d = (out[a] as i128) + i128::from(pads[k]) + i128::from(pads[k + axes.len()]);
        out[a] = cx.dim(d, "padded dim")?;
    }
    Ok(Value::new(out, x.dtype))
}

fn reduce(cx: &Cx) -> Result<Value> {
    const REDUCE: &[&str] = &[
        "ReduceMean",
        "ReduceSum",
        "ReduceMax",
        "ReduceMin",
        "ReduceProd",
        "ReduceL1",
        "ReduceL2",
        "ReduceLogSum",
        "ReduceLogSumExp",
        "ReduceSumSquare",
    ];
    if !REDUCE.contains(&cx.op()) {
        return Err(cx.unsupported("no shape rule for this operator"));
    }
    let x = cx.input(0)?;
    let keep = cx.int("keepdims", 1) != 0;
    let axes = match axes(cx, x.shape.len())? {
        Some(a) if !a.is_empty() => a,
        _ if cx.int("noop_with_empty_axes", 0) != 0 => {
            return Ok(Value::new(x.shape.clone(), x.dtype));
        }
        _ => (0..x.shape.len()).collect(),
    };
    Ok(Value::new(reduced(&x.shape, &axes, keep), x.dtype))
}

fn reduced(shape: &[usize], axes: &[usize], keep: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keep) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

fn arg_reduce(cx: &Cx) -> Result<Value> {
    let x = cx.input(0)?;
    let axis = cx.axis(cx.int("axis", 0), x.shape.len())?;
    let keep = cx.int("keepdims", 1) != 0;
    Ok(Value::new(
        reduced(&x.shape, &[axis], keep),
        data_type::INT64,
    ))
}
