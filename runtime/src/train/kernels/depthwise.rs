//! Depthwise 2-D convolution (one `kh × kw` filter per channel, channel multiplier 1,
//! ONNX `Conv` with `group = c`): weights `[c, 1, kh, kw]`, optional bias `[c]`.
//!
//! Only the direct loops exist so far (they are the reference and the kernel at once);
//! a depthwise layer does `c·kh·kw` multiply-adds per output, too few for a GEMM to pay.

use super::check_len;
use super::conv::{Conv2dShape, Grads, bias_grad, src};
use crate::error::{Error, Result};

/// Checks a depthwise shape (`c_out == c_in`) and buffer lengths; returns `(oh, ow)`.
fn check(
    s: &Conv2dShape,
    x: usize,
    w: usize,
    b: Option<usize>,
    y: usize,
    names: [&str; 4],
) -> Result<(usize, usize)> {
    if s.c_out != s.c_in {
        return Err(Error::Shape {
            what: "depthwise conv channels".into(),
            expected: format!("c_out = c_in = {}", s.c_in),
            got: format!("c_out {}", s.c_out),
        });
    }
    let (oh, ow) = s.output_hw()?;
    check_len(names[0], x, s.input_len())?;
    check_len(names[1], w, s.c_in * s.kh * s.kw)?;
    if let Some(b) = b {
        check_len(names[2], b, s.c_in)?;
    }
    check_len(names[3], y, s.n * s.c_in * oh * ow)?;
    Ok((oh, ow))
}

/// Forward pass: `y[i, c] = x[i, c] ⋆ w[c] + b[c]`.
pub fn depthwise_forward(
    s: Conv2dShape,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
) -> Result<()> {
    let names = [
        "depthwise input",
        "depthwise weight",
        "depthwise bias",
        "depthwise output",
    ];
    let hw = check(&s, x.len(), w.len(), b.map(<[f32]>::len), y.len(), names)?;
    depthwise_forward_hw(s, hw, x, w, b, y)
}

/// [`depthwise_forward`] with the output size given (Keras `same` padding with the extra
/// row/column at the end; see [`super::conv::conv2d_forward_hw`]).
pub fn depthwise_forward_hw(
    s: Conv2dShape,
    (oh, ow): (usize, usize),
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
) -> Result<()> {
    let (plane, out_plane, taps) = (s.h * s.w, oh * ow, s.kh * s.kw);
    check_len("depthwise input", x.len(), s.n * s.c_in * plane)?;
    check_len("depthwise weight", w.len(), s.c_in * taps)?;
    check_len("depthwise output", y.len(), s.n * s.c_in * out_plane)?;
    if let Some(b) = b {
        check_len("depthwise bias", b.len(), s.c_in)?;
    }
    for p in 0..s.n * s.c_in {
        let c = p % s.c_in;
        let (xp, wc) = (&x[p * plane..(p + 1) * plane], &w[c * taps..(c + 1) * taps]);
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = b.map_or(0.0, |b| b[c]);
                for ky in 0..s.kh {
                    let Some(iy) = src(oy, ky, &s, s.h) else {
                        continue;
                    };
                    for kx in 0..s.kw {
                        if let Some(ix) = src(ox, kx, &s, s.w) {
                            acc += xp[iy * s.w + ix] * wc[ky * s.kw + kx];
                        }
                    }
                }
                y[p * out_plane + oy * ow + ox] = acc;
            }
        }
    }
    Ok(())
}

/// Backward pass: from `dy` writes `dx`, `dw` and, when given, `db`.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_backward(
    s: Conv2dShape,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) -> Result<()> {
    let names = [
        "depthwise input",
        "depthwise weight",
        "depthwise bias",
        "depthwise dy",
    ];
    let hw = check(&s, x.len(), w.len(), None, dy.len(), names)?;
    let names = [
        "depthwise dx",
        "depthwise dw",
        "depthwise db",
        "depthwise dy",
    ];
    check(
        &s,
        dx.len(),
        dw.len(),
        db.as_ref().map(|b| b.len()),
        dy.len(),
        names,
    )?;
    let grads = Grads::overwrite(dx, dw, db);
    depthwise_backward_hw(s, hw, x, w, dy, grads)
}

/// [`depthwise_backward`] with the output size given and only the gradients asked for
/// (see [`Grads`]). `x` is read only when `dw` is asked for.
pub fn depthwise_backward_hw(
    s: Conv2dShape,
    (oh, ow): (usize, usize),
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    g: Grads<'_>,
) -> Result<()> {
    let (plane, out_plane, taps) = (s.h * s.w, oh * ow, s.kh * s.kw);
    check_len("depthwise weight", w.len(), s.c_in * taps)?;
    check_len("depthwise dy", dy.len(), s.n * s.c_in * out_plane)?;
    let Grads {
        mut dx,
        mut dw,
        db,
        accumulate,
    } = g;
    if let Some(dx) = dx.as_deref_mut() {
        check_len("depthwise dx", dx.len(), s.n * s.c_in * plane)?;
        dx.fill(0.0);
    }
    if let Some(dw) = dw.as_deref_mut() {
        check_len("depthwise input", x.len(), s.n * s.c_in * plane)?;
        check_len("depthwise dw", dw.len(), s.c_in * taps)?;
        if !accumulate {
            dw.fill(0.0);
        }
    }
    if let Some(db) = db {
        check_len("depthwise db", db.len(), s.c_in)?;
        bias_grad(dy, s.c_in, out_plane, db, accumulate);
    }
    for p in 0..s.n * s.c_in {
        let c = p % s.c_in;
        for oy in 0..oh {
            for ox in 0..ow {
                let g = dy[p * out_plane + oy * ow + ox];
                for ky in 0..s.kh {
                    let Some(iy) = src(oy, ky, &s, s.h) else {
                        continue;
                    };
                    for kx in 0..s.kw {
                        if let Some(ix) = src(ox, kx, &s, s.w) {
                            let (xi, wi) = (p * plane + iy * s.w + ix, c * taps + ky * s.kw + kx);
                            if let Some(dx) = dx.as_deref_mut() {
                                dx[xi] += g * w[wi];
                            }
                            if let Some(dw) = dw.as_deref_mut() {
                                dw[wi] += g * x[xi];
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
