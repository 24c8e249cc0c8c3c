//! Fully connected layer (`y = x·Wᵀ + b`, weights `[out, in]` as in ONNX `Gemm` with
//! `transB = 1`) and fused softmax cross-entropy, with naive references for the dense
//! layer.

use super::conv::Grads;
use super::{Gemm, Mat, check_len, matmul, pack_for};
use crate::error::{Error, Result};

/// Shape of a dense layer: `n` rows of `inputs` features mapped to `outputs` features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenseShape {
    /// Batch size.
    pub n: usize,
    /// Input features per row.
    pub inputs: usize,
    /// Output features per row.
    pub outputs: usize,
}

impl DenseShape {
    fn check(
        &self,
        x: usize,
        w: usize,
        b: Option<usize>,
        y: usize,
        names: [&str; 4],
    ) -> Result<()> {
        check_len(names[0], x, self.n * self.inputs)?;
        check_len(names[1], w, self.outputs * self.inputs)?;
        if let Some(b) = b {
            check_len(names[2], b, self.outputs)?;
        }
        check_len(names[3], y, self.n * self.outputs)
    }

    /// Checks a backward pass's buffers: the forward ones (`x`, `w`, `dy` as the output)
    /// and the gradients (`dx`, `dw`, `db`).
    fn check_backward(&self, [x, w, dy, dx, dw]: [usize; 5], db: Option<usize>) -> Result<()> {
        self.check(x, w, None, dy, FWD)?;
        self.check(dx, dw, db, dy, BWD)
    }
}

const FWD: [&str; 4] = ["dense input", "dense weight", "dense bias", "dense output"];
const BWD: [&str; 4] = ["dense dx", "dense dw", "dense db", "dense dy"];

/// Forward pass with `gemm`: `y [n, out] = x [n, in] · wᵀ + b`.
pub fn dense_forward(
    s: DenseShape,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    threads: usize,
) -> Result<()> {
    let mut pack = pack_for(threads);
    let mut g = Gemm::alone(threads, &mut pack);
    dense_forward_with(s, x, w, b, y, &mut g)
}

/// [`dense_forward`] with the caller's GEMM resources (no allocation).
pub fn dense_forward_with(
    s: DenseShape,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    gemm: &mut Gemm<'_>,
) -> Result<()> {
    s.check(x.len(), w.len(), b.map(<[f32]>::len), y.len(), FWD)?;
    if let Some(b) = b {
        for row in y.chunks_exact_mut(s.outputs.max(1)) {
            row.copy_from_slice(b);
        }
    }
    let xa = Mat {
        data: x,
        transposed: false,
    };
    let wt = Mat {
        data: w,
        transposed: true,
    };
    matmul(s.n, s.outputs, s.inputs, y, b.is_some(), xa, wt, gemm)
}

/// Backward pass with `gemm`: from `dy [n, out]` writes `dx [n, in] = dy·w`,
/// `dw [out, in] = dyᵀ·x` and, when given, `db [out] = Σ_n dy`.
#[allow(clippy::too_many_arguments)]
pub fn dense_backward(
    s: DenseShape,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    threads: usize,
) -> Result<()> {
    s.check_backward(
        [x.len(), w.len(), dy.len(), dx.len(), dw.len()],
        db.as_ref().map(|b| b.len()),
    )?;
    let grads = Grads::overwrite(dx, dw, db);
    let mut pack = pack_for(threads);
    let mut g = Gemm::alone(threads, &mut pack);
    dense_backward_into(s, x, w, dy, grads, &mut g)
}

/// [`dense_backward`] writing only the gradients asked for (see [`Grads`]: `dw`/`db`
/// added to when accumulating). `x` is read only when `dw` is asked for.
pub fn dense_backward_into(
    s: DenseShape,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    g: Grads<'_>,
    gemm: &mut Gemm<'_>,
) -> Result<()> {
    check_len(FWD[1], w.len(), s.outputs * s.inputs)?;
    check_len(BWD[3], dy.len(), s.n * s.outputs)?;
    let dya = Mat {
        data: dy,
        transposed: false,
    };
    if let Some(dx) = g.dx {
        check_len(BWD[0], dx.len(), s.n * s.inputs)?;
        let wm = Mat {
            data: w,
            transposed: false,
        };
        matmul(s.n, s.inputs, s.outputs, dx, false, dya, wm, gemm)?;
    }
    if let Some(dw) = g.dw {
        check_len(FWD[0], x.len(), s.n * s.inputs)?;
        check_len(BWD[1], dw.len(), s.outputs * s.inputs)?;
        let dyt = Mat {
            data: dy,
            transposed: true,
        };
        let xm = Mat {
            data: x,
            transposed: false,
        };
        matmul(s.outputs, s.inputs, s.n, dw, g.accumulate, dyt, xm, gemm)?;
    }
    if let Some(db) = g.db {
        check_len(BWD[2], db.len(), s.outputs)?;
        if !g.accumulate {
            db.fill(0.0);
        }
        for row in dy.chunks_exact(s.outputs.max(1)) {
            for (d, g) in db.iter_mut().zip(row) {
                *d += g;
            }
        }
    }
    Ok(())
}

/// Reference forward pass: nested loops.
pub fn dense_forward_naive(
    s: DenseShape,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
) -> Result<()> {
    s.check(x.len(), w.len(), b.map(<[f32]>::len), y.len(), FWD)?;
    for i in 0..s.n {
        for o in 0..s.outputs {
            let mut acc = b.map_or(0.0, |b| b[o]);
            for p in 0..s.inputs {
                acc += x[i * s.inputs + p] * w[o * s.inputs + p];
            }
            y[i * s.outputs + o] = acc;
        }
    }
    Ok(())
}

/// Reference backward pass: nested loops (same outputs as [`dense_backward`]).
pub fn dense_backward_naive(
    s: DenseShape,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    dw: &mut [f32],
    mut db: Option<&mut [f32]>,
) -> Result<()> {
    s.check_backward(
        [x.len(), w.len(), dy.len(), dx.len(), dw.len()],
        db.as_ref().map(|b| b.len()),
    )?;
    dx.fill(0.0);
    dw.fill(0.0);
    if let Some(db) = db.as_deref_mut() {
        db.fill(0.0);
    }
    for i in 0..s.n {
        for o in 0..s.outputs {
            let g = dy[i * s.outputs + o];
            if let Some(db) = db.as_deref_mut() {
                db[o] += g;
            }
            for p in 0..s.inputs {
                dx[i * s.inputs + p] += g * w[o * s.inputs + p];
                dw[o * s.inputs + p] += g * x[i * s.inputs + p];
            }
        }
    }
    Ok(())
}

/// Fused softmax + cross-entropy over `logits [n, classes]` with integer `labels [n]`.
///
/// Returns the mean loss over the batch and writes `dlogits = (softmax − onehot) / n`,
/// the gradient of that mean. A label outside `0..classes` is an error.
pub fn softmax_cross_entropy(
    logits: &[f32],
    labels: &[usize],
    classes: usize,
    dlogits: &mut [f32],
) -> Result<f32> {
    let n = labels.len();
    check_len("cross-entropy logits", logits.len(), n * classes)?;
    check_len("cross-entropy dlogits", dlogits.len(), n * classes)?;
    if let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| l >= classes) {
        return Err(Error::Invalid(format!(
            "label {l} of sample {i} is outside the {classes} classes"
        )));
    }
    if n == 0 || classes == 0 {
        return Ok(0.0);
    }
    let inv_n = 1.0 / n as f32;
    let mut total = 0.0f64;
    for ((row, drow), &label) in logits
        .chunks_exact(classes)
        .zip(dlogits.chunks_exact_mut(classes))
        .zip(labels)
    {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for (d, &z) in drow.iter_mut().zip(row) {
            *d = (z - max).exp();
            sum += *d;
        }
        // loss = log Σ exp(z − max) − (z_label − max)
        total += f64::from(sum.ln() - (row[label] - max));
        let inv = inv_n / sum;
        for d in drow.iter_mut() {
            *d *= inv;
        }
        drow[label] -= inv_n;
    }
    Ok((total / n as f64) as f32)
}
