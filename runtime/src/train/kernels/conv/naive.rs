//! The reference convolution: direct nested loops, forward and backward, that the
//! tests hold every fast path to.

use super::{Conv2dShape, FWD, src};
use crate::error::Result;

/// Reference forward pass: direct nested loops.
pub fn conv2d_forward_naive(
    s: Conv2dShape,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
) -> Result<()> {
    let (oh, ow) = s.check(x.len(), w.len(), b.map(<[f32]>::len), y.len(), FWD)?;
    for i in 0..s.n {
        for co in 0..s.c_out {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b.map_or(0.0, |b| b[co]);
                    for ci in 0..s.c_in {
                        for ky in 0..s.kh {
                            let Some(iy) = src(oy, ky, &s, s.h) else {
                                continue;
                            };
                            for kx in 0..s.kw {
                                let Some(ix) = src(ox, kx, &s, s.w) else {
                                    continue;
                                };
                                acc += x[((i * s.c_in + ci) * s.h + iy) * s.w + ix]
                                    * w[((co * s.c_in + ci) * s.kh + ky) * s.kw + kx];
                            }
                        }
                    }
                    y[((i * s.c_out + co) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    Ok(())
}

/// Reference backward pass: direct nested loops (same outputs as [`super::conv2d_backward`]).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_naive(
    s: Conv2dShape,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    dw: &mut [f32],
    mut db: Option<&mut [f32]>,
) -> Result<()> {
    let (oh, ow) = s.check_backward(
        [x.len(), w.len(), dy.len(), dx.len(), dw.len()],
        db.as_ref().map(|b| b.len()),
    )?;
    dx.fill(0.0);
    dw.fill(0.0);
    if let Some(db) = db.as_deref_mut() {
        db.fill(0.0);
    }
    for i in 0..s.n {
        for co in 0..s.c_out {
            for oy in 0..oh {
                for ox in 0..ow {
                    let g = dy[((i * s.c_out + co) * oh + oy) * ow + ox];
                    if let Some(db) = db.as_deref_mut() {
                        db[co] += g;
                    }
                    for ci in 0..s.c_in {
                        for ky in 0..s.kh {
                            let Some(iy) = src(oy, ky, &s, s.h) else {
                                continue;
                            };
                            for kx in 0..s.kw {
                                let Some(ix) = src(ox, kx, &s, s.w) else {
                                    continue;
                                };
                                let xi = ((i * s.c_in + ci) * s.h + iy) * s.w + ix;
                                let wi = ((co * s.c_in + ci) * s.kh + ky) * s.kw + kx;
                                dx[xi] += g * w[wi];
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
