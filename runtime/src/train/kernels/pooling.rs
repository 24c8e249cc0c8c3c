//! Element-wise and pooling layers: ReLU, max-pool (keeps the argmax of every window
//! for the backward pass) and global average pool, on NCHW `f32` tensors.

use super::check_len;
use crate::error::{Error, Result};

/// `y = max(x, 0)`; `y` may be a copy target of the same length as `x`.
pub fn relu_forward(x: &[f32], y: &mut [f32]) -> Result<()> {
    check_len("relu output", y.len(), x.len())?;
    for (o, &v) in y.iter_mut().zip(x) {
        *o = v.max(0.0);
    }
    Ok(())
}

/// `dx = dy` where the forward *output* `y` was positive, 0 elsewhere.
pub fn relu_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    check_len("relu dy", dy.len(), y.len())?;
    check_len("relu dx", dx.len(), y.len())?;
    for ((d, &g), &v) in dx.iter_mut().zip(dy).zip(y) {
        *d = if v > 0.0 { g } else { 0.0 };
    }
    Ok(())
}

/// Shape of a max-pool: input `[n, c, h, w]`, square window `k`, `stride`, no padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolShape {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window size (k × k).
    pub k: usize,
    /// Step between windows.
    pub stride: usize,
}

impl PoolShape {
    /// Output `(height, width)`: `(h − k) / stride + 1`; an error when the window does
    /// not fit or `k`/`stride` is 0.
    pub fn output_hw(&self) -> Result<(usize, usize)> {
        if self.k == 0 || self.stride == 0 || self.k > self.h || self.k > self.w {
            return Err(Error::Shape {
                what: "max-pool window".into(),
                expected: format!("1 ≤ k ≤ {}×{} and stride ≥ 1", self.h, self.w),
                got: format!("k {} stride {}", self.k, self.stride),
            });
        }
        Ok((
            (self.h - self.k) / self.stride + 1,
            (self.w - self.k) / self.stride + 1,
        ))
    }

    /// Elements of the output (and of the argmax buffer).
    pub fn output_len(&self) -> Result<usize> {
        let (oh, ow) = self.output_hw()?;
        Ok(self.n * self.c * oh * ow)
    }
}

/// Max-pool forward: writes `y` and, per output, the index of the chosen input element
/// within its `h × w` plane (`argmax`, used by [`maxpool_backward`]).
pub fn maxpool_forward(s: PoolShape, x: &[f32], y: &mut [f32], argmax: &mut [u32]) -> Result<()> {
    maxpool_forward_opt(s, x, y, Some(argmax))
}

/// [`maxpool_forward`] with the argmax optional (a forward-only pass keeps none).
pub fn maxpool_forward_opt(
    s: PoolShape,
    x: &[f32],
    y: &mut [f32],
    mut argmax: Option<&mut [u32]>,
) -> Result<()> {
    let (oh, ow) = s.output_hw()?;
    let plane = s.h * s.w;
    check_len("max-pool input", x.len(), s.n * s.c * plane)?;
    check_len("max-pool output", y.len(), s.n * s.c * oh * ow)?;
    if let Some(a) = argmax.as_deref() {
        check_len("max-pool argmax", a.len(), y.len())?;
    }
    if plane > u32::MAX as usize {
        return Err(Error::Invalid(format!(
            "max-pool plane of {plane} elements is too large"
        )));
    }
    let out_plane = oh * ow;
    for (p, xp) in x.chunks_exact(plane.max(1)).enumerate().take(s.n * s.c) {
        let yp = &mut y[p * out_plane..(p + 1) * out_plane];
        let mut ap = argmax
            .as_deref_mut()
            .map(|a| &mut a[p * out_plane..(p + 1) * out_plane]);
        if s.k == 2 && s.stride == 2 {
            // The common 2×2/2 window, unrolled (same choice as the general loop: the
            // first of equal maxima, scanning row by row).
            for oy in 0..oh {
                let (r0, r1) = (2 * oy * s.w, (2 * oy + 1) * s.w);
                let top = &xp[r0..r0 + 2 * ow];
                let bottom = &xp[r1..r1 + 2 * ow];
                let yr = &mut yp[oy * ow..(oy + 1) * ow];
                let mut ar = ap.as_deref_mut().map(|a| &mut a[oy * ow..(oy + 1) * ow]);
                for ox in 0..ow {
                    let i = 2 * ox;
                    let (a, b, c, d) = (top[i], top[i + 1], bottom[i], bottom[i + 1]);
                    let (m, k) = max_of_window4(a, b, c, d);
                    yr[ox] = m;
                    if let Some(ar) = ar.as_deref_mut() {
                        ar[ox] = (r0 + i) as u32 + (k & 1) + (k >> 1) * s.w as u32;
                    }
                }
            }
            continue;
        }
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut best, mut at) = (f32::NEG_INFINITY, oy * s.stride * s.w + ox * s.stride);
                for ky in 0..s.k {
                    let row = (oy * s.stride + ky) * s.w + ox * s.stride;
                    for (kx, &v) in xp[row..row + s.k].iter().enumerate() {
                        if v > best {
                            best = v;
                            at = row + kx;
                        }
                    }
                }
                yp[oy * ow + ox] = best;
                if let Some(ap) = ap.as_deref_mut() {
                    ap[oy * ow + ox] = at as u32;
                }
            }
        }
    }
    Ok(())
}

/// Max-pool backward: `dx` is zeroed, then each `dy` goes to its window's argmax
/// (overlapping windows add up).
pub fn maxpool_backward(s: PoolShape, argmax: &[u32], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    scatter_backward(s, argmax, None, dy, dx)
}

/// The winner of a 2×2 window `a b / c d`: its value and its index 0–3 (row by row),
/// the first of equal maxima (strict `>`, so a NaN never wins over an earlier value).
/// Branch-free selects: which one wins is data, so branches on it would be mispredicted
/// about half the time. Every 2×2 max-pool (and the direct conv's fused pool) uses it,
/// so their argmaxes agree.
#[inline(always)]
pub(crate) fn max_of_window4(a: f32, b: f32, c: f32, d: f32) -> (f32, u32) {
    let (m, k) = if b > a { (b, 1u32) } else { (a, 0) };
    let (m, k) = if c > m { (c, 2) } else { (m, k) };
    if d > m { (d, 3) } else { (m, k) }
}

/// [`maxpool_backward`], optionally passing only where `mask` (the pool output) is > 0:
/// zero `dx`, then add each `dy` at its window's argmax.
fn scatter_backward(
    s: PoolShape,
    argmax: &[u32],
    mask: Option<&[f32]>,
    dy: &[f32],
    dx: &mut [f32],
) -> Result<()> {
    let (oh, ow) = s.output_hw()?;
    let plane = s.h * s.w;
    let out_plane = oh * ow;
    check_len("max-pool dx", dx.len(), s.n * s.c * plane)?;
    check_len("max-pool dy", dy.len(), s.n * s.c * out_plane)?;
    check_len("max-pool argmax", argmax.len(), dy.len())?;
    if let Some(m) = mask {
        check_len("max-pool output", m.len(), dy.len())?;
    }
    dx.fill(0.0);
    if out_plane == 0 {
        return Ok(());
    }
    for (p, (dyp, ap)) in dy
        .chunks_exact(out_plane)
        .zip(argmax.chunks_exact(out_plane))
        .enumerate()
    {
        let dxp = &mut dx[p * plane..(p + 1) * plane];
        let mp = mask.map(|m| &m[p * out_plane..(p + 1) * out_plane]);
        for (o, (&g, &i)) in dyp.iter().zip(ap).enumerate() {
            let i = i as usize;
            if i >= plane {
                return Err(Error::Invalid(format!(
                    "max-pool argmax {i} outside the {plane}-element plane"
                )));
            }
            if mp.is_none_or(|m| m[o] > 0.0) {
                dxp[i] += g;
            }
        }
    }
    Ok(())
}

/// Max-pool backward fused with the backward of the ReLU before it: `dx` is the gradient
/// of the ReLU's *input*. The ReLU output at a window's argmax is the pool output `y`,
/// so the gradient goes through where `y > 0`; nothing else of the ReLU is read. The
/// common 2×2/2 window over even sizes writes each input once (no zero fill, no
/// scatter); other windows fill and scatter as [`maxpool_backward`] does, masked.
pub fn maxpool_relu_backward(
    s: PoolShape,
    argmax: &[u32],
    y: &[f32],
    dy: &[f32],
    dx: &mut [f32],
) -> Result<()> {
    let (oh, ow) = s.output_hw()?;
    let plane = s.h * s.w;
    let out_plane = oh * ow;
    check_len("max-pool dx", dx.len(), s.n * s.c * plane)?;
    check_len("max-pool dy", dy.len(), s.n * s.c * out_plane)?;
    check_len("max-pool argmax", argmax.len(), dy.len())?;
    check_len("max-pool output", y.len(), dy.len())?;
    if !(s.k == 2 && s.stride == 2 && s.h == 2 * oh && s.w == 2 * ow) {
        return scatter_backward(s, argmax, Some(y), dy, dx);
    }
    if out_plane == 0 {
        return Ok(());
    }
    for (p, ((dyp, ap), yp)) in dy
        .chunks_exact(out_plane)
        .zip(argmax.chunks_exact(out_plane))
        .zip(y.chunks_exact(out_plane))
        .enumerate()
    {
        let dxp = &mut dx[p * plane..(p + 1) * plane];
        for oy in 0..oh {
            let r0 = 2 * oy * s.w;
            let (top, bottom) = dxp[r0..r0 + 2 * s.w].split_at_mut(s.w);
            let r = oy * ow..(oy + 1) * ow;
            let ar = &ap[r.clone()];
            if let Some(ox) = unpool_relu_rows(r0, &yp[r.clone()], &dyp[r], ar, top, bottom) {
                return Err(Error::Invalid(format!(
                    "max-pool argmax {} outside the {plane}-element plane",
                    ar[ox]
                )));
            }
        }
    }
    Ok(())
}

/// An error unless a 2×2/2 max-pool tiles an `h × w` plane exactly (even sides), as
/// the passes that pool inside a conv need.
pub(crate) fn check_tiles_2x2(h: usize, w: usize) -> Result<()> {
    if h.is_multiple_of(2) && w.is_multiple_of(2) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "a 2×2 max-pool does not tile a {h}×{w} output"
        )))
    }
}

/// One row pair of the fused 2×2/2 max-pool + ReLU backward: the ReLU input's gradient
/// on rows `2·oy` (`top`) and `2·oy + 1` (`bottom`) of a plane `top.len()` wide, from
/// the pool's output row `yr`, its gradient `gr` and its argmax `ar` (plane indices);
/// `r0` = `2·oy·w`. Each cell is written once; the winner's offset in its window picks
/// it, without branches. Returns the first window whose argmax lies outside it.
#[inline(always)]
pub(crate) fn unpool_relu_rows(
    r0: usize,
    yr: &[f32],
    gr: &[f32],
    ar: &[u32],
    top: &mut [f32],
    bottom: &mut [f32],
) -> Option<usize> {
    let w = top.len() as u32;
    // Window `ox`: its four cells (top left, top right, bottom left, bottom right) and
    // whether its argmax lies inside it.
    let window = |ox: usize| {
        let g = if yr[ox] > 0.0 { gr[ox] } else { 0.0 };
        let rel = ar[ox].wrapping_sub((r0 + 2 * ox) as u32);
        let cell = |at: u32| if rel == at { g } else { 0.0 };
        let inside = rel <= 1 || rel.wrapping_sub(w) <= 1;
        ([cell(0), cell(1), cell(w), cell(w + 1)], inside)
    };
    // Eight windows at a time in lane arrays (the compiler vectorises the selects),
    // then interleaved into the two rows.
    const B: usize = 8;
    let n = yr.len();
    let mut ok = true;
    for c0 in (0..n / B * B).step_by(B) {
        let (mut t0, mut t1, mut b0, mut b1) = ([0.0f32; B], [0.0f32; B], [0.0f32; B], [0.0f32; B]);
        for i in 0..B {
            let ([a, b, c, d], inside) = window(c0 + i);
            (t0[i], t1[i], b0[i], b1[i]) = (a, b, c, d);
            ok &= inside;
        }
        let (tr, br) = (
            &mut top[2 * c0..2 * c0 + 2 * B],
            &mut bottom[2 * c0..2 * c0 + 2 * B],
        );
        for i in 0..B {
            tr[2 * i] = t0[i];
            tr[2 * i + 1] = t1[i];
            br[2 * i] = b0[i];
            br[2 * i + 1] = b1[i];
        }
    }
    for ox in n / B * B..n {
        let ([a, b, c, d], inside) = window(ox);
        (top[2 * ox], top[2 * ox + 1]) = (a, b);
        (bottom[2 * ox], bottom[2 * ox + 1]) = (c, d);
        ok &= inside;
    }
    if ok {
        None
    } else {
        (0..n).find(|&ox| !window(ox).1)
    }
}

/// Global average pool: `x [n, c, h, w]` → `y [n, c]` (mean of each plane).
pub fn gap_forward(n: usize, c: usize, hw: usize, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_len("global-average-pool input", x.len(), n * c * hw)?;
    check_len("global-average-pool output", y.len(), n * c)?;
    if hw == 0 {
        y.fill(0.0);
        return Ok(());
    }
    let inv = 1.0 / hw as f32;
    for (o, plane) in y.iter_mut().zip(x.chunks_exact(hw)) {
        *o = plane.iter().sum::<f32>() * inv;
    }
    Ok(())
}

/// Global average pool backward: every element of a plane gets `dy / (h·w)`.
pub fn gap_backward(n: usize, c: usize, hw: usize, dy: &[f32], dx: &mut [f32]) -> Result<()> {
    check_len("global-average-pool dy", dy.len(), n * c)?;
    check_len("global-average-pool dx", dx.len(), n * c * hw)?;
    if hw == 0 {
        return Ok(());
    }
    let inv = 1.0 / hw as f32;
    for (&g, plane) in dy.iter().zip(dx.chunks_exact_mut(hw)) {
        plane.fill(g * inv);
    }
    Ok(())
}
