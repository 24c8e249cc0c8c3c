//! Shape and MAC rules for the compute operators: convolutions, pooling, normalization,
//! `Gemm`/`MatMul`, resizing. MACs are counted for `Conv`, `ConvTranspose`, `Gemm` and
//! `MatMul` only, as the multiply-accumulates of the layer (no bias, no activation).

use super::cx::{Cx, Result, fmt_shape};
use super::infer::{Inferred, broadcast_shapes};
use super::value::{Value, numel};
use crate::onnx::pb::data_type;

/// Attribute `name`, one value per spatial dimension, each ≥ 1 (`default` when absent).
fn per_dim(cx: &Cx, name: &str, nd: usize, default: usize) -> Result<Vec<usize>> {
    match cx.ints(name) {
        None => Ok(vec![default; nd]),
        Some(v) if v.len() == nd && v.iter().all(|&x| x >= 1) => {
            Ok(v.iter().map(|&x| x as usize).collect())
        }
        Some(v) => Err(cx.invalid(format!("attribute {name} {v:?}: expected {nd} values ≥ 1"))),
    }
}

/// `pads` as (begin, end) per spatial dimension.
fn pads(cx: &Cx, nd: usize) -> Result<Vec<(i128, i128)>> {
    match cx.ints("pads") {
        None => Ok(vec![(0, 0); nd]),
        Some(p) if p.len() == 2 * nd && p.iter().all(|&x| x >= 0) => Ok((0..nd)
            .map(|i| (i128::from(p[i]), i128::from(p[i + nd])))
            .collect()),
        Some(p) => Err(cx.invalid(format!(
            "attribute pads {p:?}: expected {} values ≥ 0",
            2 * nd
        ))),
    }
}

/// Spatial output size of a sliding window (convolution or pooling), following the
/// ONNX rules for `auto_pad`, `pads`, `strides`, `dilations` and `ceil_mode`.
fn window_out(cx: &Cx, input: &[usize], kernel: &[usize], ceil_mode: bool) -> Result<Vec<usize>> {
    let nd = input.len();
    if kernel.len() != nd || kernel.contains(&0) {
        return Err(cx.invalid(format!(
            "kernel {kernel:?} does not fit {nd} spatial dimensions"
        )));
    }
    let strides = per_dim(cx, "strides", nd, 1)?;
    let dilations = per_dim(cx, "dilations", nd, 1)?;
    let pads = pads(cx, nd)?;
    let auto_pad = cx.string("auto_pad").unwrap_or_default();
    let mut out = Vec::with_capacity(nd);
    for d in 0..nd {
        let (i, s) = (input[d] as i128, strides[d] as i128);
        // i128 with saturation: attributes and dims come from the file, unchecked.
        let eff = (dilations[d] as i128).saturating_mul(kernel[d] as i128 - 1) + 1;
        let o = match auto_pad.as_str() {
            "SAME_UPPER" | "SAME_LOWER" => (i + s - 1) / s,
            "VALID" => (i - eff).div_euclid(s) + 1,
            "NOTSET" | "" => {
                let (pb, pe) = pads[d];
                let span = (i + pb + pe).saturating_sub(eff);
                if ceil_mode && span >= 0 {
                    let o = (span + s - 1) / s + 1;
                    // The last window must start inside the input or its begin padding.
                    if (o - 1) * s >= i + pb { o - 1 } else { o }
                } else {
                    span.div_euclid(s) + 1
                }
            }
            other => return Err(cx.invalid(format!("unknown auto_pad {other:?}"))),
        };
        if o < 1 {
            return Err(cx.shape_err(
                "spatial input at least as large as the (dilated) kernel",
                format!("kernel {kernel:?}"),
                fmt_shape(input),
            ));
        }
        out.push(cx.dim(o, "output size")?);
    }
    Ok(out)
}

fn rank_at_least<'a>(cx: &Cx, v: &'a Value, min: usize, what: &str) -> Result<&'a [usize]> {
    if v.shape.len() < min {
        return Err(cx.shape_err(what, format!("rank ≥ {min}"), fmt_shape(&v.shape)));
    }
    Ok(&v.shape)
}

fn group(cx: &Cx) -> Result<usize> {
    usize::try_from(cx.int("group", 1))
        .ok()
        .filter(|&g| g >= 1)
        .ok_or_else(|| cx.invalid("attribute group must be ≥ 1"))
}

/// Kernel spatial dims: the `kernel_shape` attribute or the weight's trailing dims.
fn kernel(cx: &Cx, w: &[usize]) -> Result<Vec<usize>> {
    match cx.ints("kernel_shape") {
        Some(k) => k
            .iter()
            .map(|&x| usize::try_from(x).map_err(|_| cx.invalid("negative kernel_shape")))
            .collect(),
        None => Ok(w.get(2..).unwrap_or_default().to_vec()),
    }
}

/// `Conv`: X `[N, C, D...]`, W `[M, C/group, k...]`.
pub(super) fn conv(cx: &Cx) -> Result<Inferred> {
    let (x, w) = (cx.input(0)?, cx.input(1)?);
    let xs = rank_at_least(cx, x, 3, "input X")?;
    let ws = &w.shape;
    if ws.len() != xs.len() {
        return Err(cx.shape_err("weight rank", xs.len(), fmt_shape(ws)));
    }
    let g = group(cx)?;
    let (n, c, m, cpg) = (xs[0], xs[1], ws[0], ws[1]);
    if cpg.checked_mul(g) != Some(c) {
        return Err(cx.shape_err(
            "input channels = W[1] × group",
            format!("{c} channels (input {})", fmt_shape(xs)),
            format!("W {} × group {g}", fmt_shape(ws)),
        ));
    }
    let k = kernel(cx, ws)?;
    let mut out = vec![n, m];
    out.extend(window_out(cx, &xs[2..], &k, false)?);
    let macs = numel(&out)
        .saturating_mul(cpg as u64)
        .saturating_mul(numel(&k));
    Ok(Inferred {
        values: vec![Value::new(out, x.dtype)],
        macs,
    })
}

/// `ConvTranspose`: X `[N, C, D...]`, W `[C, M/group, k...]`.
pub(super) fn conv_transpose(cx: &Cx) -> Result<Inferred> {
    let (x, w) = (cx.input(0)?, cx.input(1)?);
    let xs = rank_at_least(cx, x, 3, "input X")?;
    let ws = &w.shape;
    if ws.len() != xs.len() || ws[0] != xs[1] {
        return Err(cx.shape_err(
            "weight [C, M/group, k...]",
            format!("W[0] = {}", xs[1]),
            fmt_shape(ws),
        ));
    }
    let g = group(cx)?;
    let nd = xs.len() - 2;
    let k = kernel(cx, ws)?;
    if k.len() != nd {
        return Err(cx.invalid(format!("kernel {k:?} does not fit {nd} spatial dimensions")));
    }
    let strides = per_dim(cx, "strides", nd, 1)?;
    let dilations = per_dim(cx, "dilations", nd, 1)?;
    let pads = pads(cx, nd)?;
    let out_pad = cx.ints("output_padding").unwrap_or_default();
    let auto_pad = cx.string("auto_pad").unwrap_or_default();
    let mut out = vec![xs[0], ws[1].saturating_mul(g)];
    if let Some(os) = cx.ints("output_shape") {
        // Either the spatial dims or the full shape.
        let sp = os.get(os.len().saturating_sub(nd)..).unwrap_or_default();
        for &d in sp {
            out.push(cx.dim(i128::from(d), "output_shape")?);
        }
    } else {
        for d in 0..nd {
            let (i, s) = (xs[2 + d] as i128, strides[d] as i128);
            let o = if auto_pad.starts_with("SAME") {
                i.saturating_mul(s)
            } else {
                let op = out_pad.get(d).copied().map_or(0, i128::from);
                let eff = (dilations[d] as i128).saturating_mul(k[d] as i128 - 1) + 1;
                s.saturating_mul(i - 1)
                    .saturating_add(op)
                    .saturating_add(eff)
                    .saturating_sub(pads[d].0 + pads[d].1)
            };
            out.push(cx.dim(o, "output size")?);
        }
    }
    // Every input element is multiplied into M/group × kernel outputs.
    let macs = x
        .numel()
        .saturating_mul(ws[1] as u64)
        .saturating_mul(numel(&k));
    Ok(Inferred {
        values: vec![Value::new(out, x.dtype)],
        macs,
    })
}

/// `MaxPool`, `AveragePool`, `LpPool`: the window rule with `kernel_shape` required.
pub(super) fn pool(cx: &Cx) -> Result<Inferred> {
    let x = cx.input(0)?;
    let xs = rank_at_least(cx, x, 3, "input X")?;
    let k = cx
        .ints("kernel_shape")
        .ok_or_else(|| cx.invalid("attribute kernel_shape is required"))?;
    let k: Vec<usize> = k
        .iter()
        .map(|&v| usize::try_from(v).map_err(|_| cx.invalid("negative kernel_shape")))
        .collect::<Result<_>>()?;
    let ceil_mode = cx.int("ceil_mode", 0) != 0;
    let mut out = xs[..2].to_vec();
    out.extend(window_out(cx, &xs[2..], &k, ceil_mode)?);
    let indices = Value::new(out.clone(), data_type::INT64);
    Ok(Inferred {
        values: vec![Value::new(out, x.dtype), indices],
        macs: 0,
    })
}

/// Global pooling: `[N, C, 1, ...]`.
pub(super) fn global_pool(cx: &Cx) -> Result<Inferred> {
    let x = cx.input(0)?;
    let xs = rank_at_least(cx, x, 2, "input X")?;
    let mut out = xs[..2].to_vec();
    out.resize(xs.len(), 1);
    Ok(Inferred::one(Value::new(out, x.dtype)))
}

/// `BatchNormalization`: Y like X; training-mode outputs are per-channel.
pub(super) fn batch_norm(cx: &Cx) -> Result<Inferred> {
    let x = cx.input(0)?;
    let xs = rank_at_least(cx, x, 2, "input X")?;
    let per_channel = Value::new(vec![xs[1]], x.dtype);
    let mut values = vec![x.clone()];
    values.extend(std::iter::repeat_n(per_channel, 4));
    Ok(Inferred { values, macs: 0 })
}

/// `LayerNormalization`: Y like X; mean and inverse std reduced from `axis` on.
pub(super) fn layer_norm(cx: &Cx) -> Result<Inferred> {
    let x = cx.input(0)?;
    let axis = cx.axis(cx.int("axis", -1), x.shape.len())?;
    let mut stats = x.shape.clone();
    stats[axis..].fill(1);
    let stats = Value::new(stats, x.dtype);
    Ok(Inferred {
        values: vec![x.clone(), stats.clone(), stats],
        macs: 0,
    })
}

/// `Gemm`: `A' [M, K] × B' [K, N] (+ C)` with optional transposes.
pub(super) fn gemm(cx: &Cx) -> Result<Inferred> {
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let (&[a0, a1], &[b0, b1]) = (a.shape.as_slice(), b.shape.as_slice()) else {
        return Err(cx.shape_err(
            "A and B of rank 2",
            "[M, K] and [K, N]",
            format!("{} and {}", fmt_shape(&a.shape), fmt_shape(&b.shape)),
        ));
    };
    let (m, k) = if cx.int("transA", 0) != 0 {
        (a1, a0)
    } else {
        (a0, a1)
    };
    let (kb, n) = if cx.int("transB", 0) != 0 {
        (b1, b0)
    } else {
        (b0, b1)
    };
    if k != kb {
        return Err(cx.shape_err(
            "inner dimensions of A' and B'",
            format!("K = {k} (A {})", fmt_shape(&a.shape)),
            format!("B {}", fmt_shape(&b.shape)),
        ));
    }
    let out = vec![m, n];
    if let Some(c) = cx.opt(2) {
        let bc = broadcast_shapes(cx, &[&c.shape, &out])?;
        if bc != out {
            return Err(cx.shape_err(
                "C broadcastable to [M, N]",
                fmt_shape(&out),
                fmt_shape(&c.shape),
            ));
        }
    }
    let macs = numel(&[m, n, k]);
    Ok(Inferred {
        values: vec![Value::new(out, a.dtype)],
        macs,
    })
}

/// `MatMul` with numpy semantics: batched, broadcasting, 1-D operands promoted.
pub(super) fn matmul(cx: &Cx) -> Result<Inferred> {
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let (mut sa, mut sb) = (a.shape.clone(), b.shape.clone());
    if sa.is_empty() || sb.is_empty() {
        return Err(cx.shape_err("operands of rank ≥ 1", "tensors", "a scalar"));
    }
    let (a_vec, b_vec) = (sa.len() == 1, sb.len() == 1);
    if a_vec {
        sa.insert(0, 1);
    }
    if b_vec {
        sb.push(1);
    }
    let (ra, rb) = (sa.len(), sb.len());
    let (m, k, kb, n) = (sa[ra - 2], sa[ra - 1], sb[rb - 2], sb[rb - 1]);
    if k != kb {
        return Err(cx.shape_err(
            "inner dimensions",
            format!("K = {k} (A {})", fmt_shape(&a.shape)),
            format!("B {}", fmt_shape(&b.shape)),
        ));
    }
    let mut out = broadcast_shapes(cx, &[&sa[..ra - 2], &sb[..rb - 2]])?;
    let macs = numel(&out).saturating_mul(numel(&[m, n, k]));
    if !a_vec {
        out.push(m);
    }
    if !b_vec {
        out.push(n);
    }
    Ok(Inferred {
        values: vec![Value::new(out, a.dtype)],
        macs,
    })
}

/// `Resize` (sizes or scales input) and `Upsample` (scales input or attribute).
pub(super) fn resize(cx: &Cx) -> Result<Inferred> {
    let x = cx.input(0)?;
    let rank = x.shape.len();
    // Resize-10 and Upsample-9 take scales as input 1; Resize-11+ as input 2.
    let scales_at = if cx.op() == "Resize" && cx.node.input.len() >= 3 {
        2
    } else {
        1
    };
    let axes: Vec<usize> = match cx.ints("axes") {
        Some(a) => a.iter().map(|&v| cx.axis(v, rank)).collect::<Result<_>>()?,
        None => (0..rank).collect(),
    };
    let mut out = x.shape.clone();
    if let Some(sizes) = cx.opt_nonempty(3) {
        let sizes = sizes
            .ints()
            .ok_or_else(|| cx.unsupported("sizes (input #3) is not a constant"))?;
        if sizes.len() != axes.len() {
            return Err(cx.shape_err("one size per axis", axes.len(), format!("{sizes:?}")));
        }
        for (&ax, &s) in axes.iter().zip(sizes) {
            out[ax] = cx.dim(i128::from(s), "size")?;
        }
    } else {
        let scales = match (cx.opt_nonempty(scales_at), cx.attr("scales")) {
            (Some(s), _) => s.floats().ok_or_else(|| {
                cx.unsupported(format!("scales (input #{scales_at}) is not a constant"))
            })?,
            (None, Some(a)) => a.floats.iter().map(|&f| f64::from(f)).collect(),
            (None, None) => return Err(cx.invalid("neither scales nor sizes is given")),
        };
        if scales.len() != axes.len() {
            return Err(cx.shape_err("one scale per axis", axes.len(), format!("{scales:?}")));
        }
        for (&ax, &s) in axes.iter().zip(&scales) {
            let o = (out[ax] as f64 * s).floor();
            if !(0.0..=1e15).contains(&o) {
                return Err(cx.invalid(format!("scale {s} gives output size {o}")));
            }
            out[ax] = o as usize;
        }
    }
    Ok(Inferred::one(Value::new(out, x.dtype)))
}

/// `DepthToSpace` / `SpaceToDepth` on `[N, C, H, W]`.
pub(super) fn depth_space(cx: &Cx) -> Result<Inferred> {
    let x = cx.input(0)?;
    let &[n, c, h, w] = x.shape.as_slice() else {
        return Err(cx.shape_err("input X", "[N, C, H, W]", fmt_shape(&x.shape)));
    };
    let b = usize::try_from(cx.int("blocksize", 0))
        .ok()
        .filter(|&b| b >= 1)
        .ok_or_else(|| cx.invalid("attribute blocksize must be ≥ 1"))?;
    let bb = b.saturating_mul(b);
    let out = if cx.op() == "DepthToSpace" {
        if !c.is_multiple_of(bb) {
            return Err(cx.shape_err("channels divisible by blocksize²", bb, c));
        }
        vec![n, c / bb, h.saturating_mul(b), w.saturating_mul(b)]
    } else {
        if !h.is_multiple_of(b) || !w.is_multiple_of(b) {
            return Err(cx.shape_err("H and W divisible by blocksize", b, fmt_shape(&x.shape)));
        }
        vec![n, c.saturating_mul(bb), h / b, w / b]
    };
    Ok(Inferred::one(Value::new(out, x.dtype)))
}
