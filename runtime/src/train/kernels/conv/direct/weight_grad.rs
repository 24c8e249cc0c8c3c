//! The direct path's weight gradient: dot products of `dy` rows and shifted input rows
//! in 8-lane accumulators, 4 output channels × 3 taps at a time, per fixed group of rows
//! so the sum does not depend on the thread count; a pooled `dy` is expanded row pair by
//! row pair in each thread's scratch.

use super::{CB, GROUPS, L, dw_acc_len, dw_part_len, padded_row};
use crate::error::{Error, Result};
use crate::train::kernels::conv::{Conv2dShape, Dy, check_dy};
use crate::train::kernels::pooling::unpool_relu_rows;
use crate::train::kernels::workers::SharedMut;
use crate::train::kernels::{Gemm, check_len, check_min_len};

/// Weight-gradient sums of rows `rows` into `acc[co][j][lane]`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // lane loops index several arrays in step
fn weight_grad_rows(
    s: &Conv2dShape,
    rows: std::ops::Range<usize>,
    x: &[f32],
    src: Dy<'_>,
    acc: &mut [f32],
    bufs: &mut [f32],
    fast: bool,
) -> Option<usize> {
    let _ = fast;
    let (w, plane, k) = (s.w, s.h * s.w, s.c_in * 9);
    let stride = w + 2;
    let wv = w / L * L;
    let (bufs, drows) = bufs.split_at_mut(3 * s.c_in * stride);
    for row in rows.clone() {
        let (img, oy) = (row / s.h, row % s.h);
        if let Dy::Pooled { dy, argmax, y } = src
            && (oy % 2 == 0 || row == rows.start)
        {
            // Both rows of this pair, every output channel.
            let ow = w / 2;
            for (co, pair) in drows.chunks_exact_mut(2 * w).take(s.c_out).enumerate() {
                let o = ((img * s.c_out + co) * (s.h / 2) + oy / 2) * ow;
                let r = o..o + ow;
                let (top, bottom) = pair.split_at_mut(w);
                let r0 = (oy / 2) * 2 * w;
                if let Some(ox) =
                    unpool_relu_rows(r0, &y[r.clone()], &dy[r], &argmax[o..o + ow], top, bottom)
                {
                    return Some(o + ox);
                }
            }
        }
        for ci in 0..s.c_in {
            let src = &x[(img * s.c_in + ci) * plane..(img * s.c_in + ci + 1) * plane];
            for ky in 0..3 {
                let at = (ci * 3 + ky) * stride;
                padded_row(
                    src,
                    w,
                    s.h,
                    (oy + ky).wrapping_sub(1),
                    &mut bufs[at..at + stride],
                );
            }
        }
        for c0 in (0..s.c_out).step_by(CB) {
            let cb = CB.min(s.c_out - c0);
            let dyr = |c: usize| match src {
                Dy::Plain(dy) => {
                    let at = ((img * s.c_out + c0 + c) * s.h + oy) * w;
                    &dy[at..at + w]
                }
                Dy::Pooled { .. } => {
                    let at = ((c0 + c) * 2 + oy % 2) * w;
                    &drows[at..at + w]
                }
            };
            for ci in 0..s.c_in {
                for ky in 0..3 {
                    let xr = &bufs[(ci * 3 + ky) * stride..(ci * 3 + ky + 1) * stride];
                    let mut a = [[[0.0f32; L]; 3]; CB];
                    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
                    let vec_done = if fast && cb == CB {
                        let d = [dyr(0), dyr(1), dyr(2), dyr(3)];
                        // Safety: the caller's kernel path runs on this CPU; rows hold
                        // `w` (dy) and `w + 2` (x) floats, and `wv ≤ w`.
                        unsafe { simd::dot4x3(xr, d, wv, &mut a) };
                        true
                    } else {
                        false
                    };
                    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
                    let vec_done = false;
                    for px in (0..if vec_done { 0 } else { wv }).step_by(L) {
                        let mut xv = [[0.0f32; L]; 3];
                        for (kx, v) in xv.iter_mut().enumerate() {
                            v.copy_from_slice(&xr[px + kx..px + kx + L]);
                        }
                        for c in 0..cb {
                            let d: &[f32; L] = dyr(c)[px..px + L].try_into().expect("8 lanes");
                            for kx in 0..3 {
                                for l in 0..L {
                                    a[c][kx][l] += d[l] * xv[kx][l];
                                }
                            }
                        }
                    }
                    for px in wv..w {
                        for c in 0..cb {
                            let d = dyr(c)[px];
                            for kx in 0..3 {
                                a[c][kx][0] += d * xr[px + kx];
                            }
                        }
                    }
                    for c in 0..cb {
                        for kx in 0..3 {
                            let j = ci * 9 + ky * 3 + kx;
                            let o = ((c0 + c) * k + j) * L;
                            for l in 0..L {
                                acc[o + l] += a[c][kx][l];
                            }
                        }
                    }
                }
            }
        }
    }
    None
}

/// [`weight_grad_rows`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn weight_grad_rows_avx2(
    s: &Conv2dShape,
    rows: std::ops::Range<usize>,
    x: &[f32],
    src: Dy<'_>,
    acc: &mut [f32],
    bufs: &mut [f32],
) -> Option<usize> {
    weight_grad_rows(s, rows, x, src, acc, bufs, true)
}

/// Weight gradient `dw [c_out, c_in, 3, 3]` from `x` and `dy`, added to when `add`;
/// `workspace` needs [`super::weight_grad_workspace_len`] floats.
#[allow(clippy::too_many_arguments)]
pub(crate) fn weight_grad(
    s: &Conv2dShape,
    x: &[f32],
    dy: Dy<'_>,
    dw: &mut [f32],
    add: bool,
    workspace: &mut [f32],
    g: &mut Gemm<'_>,
) -> Result<()> {
    check_len("conv input", x.len(), s.input_len())?;
    check_dy(s, dy)?;
    check_len("conv dw", dw.len(), s.weight_len())?;
    let rows = s.n * s.h;
    let groups = GROUPS.min(rows).max(1);
    let parts = g.parts().min(groups);
    let (acc_len, plen) = (dw_acc_len(s), dw_part_len(s));
    check_min_len(
        "conv workspace",
        workspace.len(),
        GROUPS * acc_len + parts * plen,
    )?;
    let (accs, scratch) = workspace.split_at_mut(GROUPS * acc_len);
    let (acc_s, scr) = (SharedMut::new(accs), SharedMut::new(scratch));
    let avx = crate::train::kernels::avx2_fma();
    let bad = std::sync::Mutex::new(None);
    g.run_parts(parts, &|part| {
        // Safety: each part takes its own scratch block.
        let bufs = unsafe { scr.range(part * plen, plen) };
        for group in groups * part / parts..groups * (part + 1) / parts {
            // Safety: each group's accumulators belong to the one part that takes it.
            let acc = unsafe { acc_s.range(group * acc_len, acc_len) };
            acc.fill(0.0);
            let range = rows * group / groups..rows * (group + 1) / groups;
            #[cfg(target_arch = "x86_64")]
            let outside = if avx {
                // Safety: AVX2 and FMA were detected.
                unsafe { weight_grad_rows_avx2(s, range, x, dy, acc, bufs) }
            } else {
                weight_grad_rows(s, range, x, dy, acc, bufs, false)
            };
            #[cfg(not(target_arch = "x86_64"))]
            let outside = {
                let (_, fast) = (avx, crate::train::kernels::intrinsics());
                weight_grad_rows(s, range, x, dy, acc, bufs, fast)
            };
            if let Some(at) = outside {
                let mut slot = bad.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert(at);
            }
        }
    });
    if let (Some(at), Dy::Pooled { argmax, .. }) =
        (bad.into_inner().unwrap_or_else(|p| p.into_inner()), dy)
    {
        return Err(Error::Invalid(format!(
            "max-pool argmax {} outside its window (output element {at})",
            argmax[at]
        )));
    }
    // Add the groups' sums in order.
    for (i, d) in dw.iter_mut().enumerate() {
        let mut sum = 0.0f32;
        for grp in 0..groups {
            let o = grp * acc_len + i * L;
            sum += accs[o..o + L].iter().sum::<f32>();
        }
        if add {
            *d += sum;
        } else {
            *d = sum;
        }
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{CB, L};
    use std::arch::x86_64::*;

    /// `a[c][kx] += Σ_px dy[c][px] · x[px + kx]` over `px < wv` (a multiple of 8) in 12
    /// ymm accumulators: three loads of `x` and four of `dy` per 12 FMAs.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; `x` holds `wv + 2` floats or more, each `dy[c]`
    /// `wv` or more.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot4x3(
        x: &[f32],
        dy: [&[f32]; CB],
        wv: usize,
        a: &mut [[[f32; L]; 3]; CB],
    ) {
        assert!(x.len() >= wv + 2 && dy.iter().all(|d| d.len() >= wv));
        let mut acc = [[_mm256_setzero_ps(); 3]; CB];
        let xp = x.as_ptr();
        let dp = dy.map(<[f32]>::as_ptr);
        let mut px = 0;
        while px + L <= wv {
            // Safety: px + 2 + 8 ≤ wv + 2 ≤ x.len() and px + 8 ≤ wv ≤ dy[c].len().
            unsafe {
                let xv = [
                    _mm256_loadu_ps(xp.add(px)),
                    _mm256_loadu_ps(xp.add(px + 1)),
                    _mm256_loadu_ps(xp.add(px + 2)),
                ];
                for (c, ac) in acc.iter_mut().enumerate() {
                    let d = _mm256_loadu_ps(dp[c].add(px));
                    for (k, v) in ac.iter_mut().enumerate() {
                        *v = _mm256_fmadd_ps(d, xv[k], *v);
                    }
                }
            }
            px += L;
        }
        for (c, ac) in acc.iter().enumerate() {
            for (k, v) in ac.iter().enumerate() {
                // Safety: a[c][k] holds 8 floats.
                unsafe { _mm256_storeu_ps(a[c][k].as_mut_ptr(), *v) };
            }
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod simd {
    use super::{CB, L};
    use std::arch::aarch64::*;

    /// `a[c][kx] += Σ_px dy[c][px] · x[px + kx]` over `px < wv` (a multiple of 8), as the
    /// AVX2 kernel: each 8-lane accumulator as two quad registers (24 in all), three pairs
    /// of `x` loads and four of `dy` per 24 fused multiply-adds.
    ///
    /// # Safety
    /// `x` holds `wv + 2` floats or more, each `dy[c]` `wv` or more (NEON is on every
    /// AArch64 CPU).
    pub(super) unsafe fn dot4x3(
        x: &[f32],
        dy: [&[f32]; CB],
        wv: usize,
        a: &mut [[[f32; L]; 3]; CB],
    ) {
        assert!(x.len() >= wv + 2 && dy.iter().all(|d| d.len() >= wv));
        let xp = x.as_ptr();
        let dp = dy.map(<[f32]>::as_ptr);
        // Safety (the whole body): px + 2 + 8 ≤ wv + 2 ≤ x.len() and px + 8 ≤ wv ≤
        // dy[c].len(); each a[c][k] holds 8 floats.
        unsafe {
            let z = vdupq_n_f32(0.0);
            let mut acc = [[[z; 2]; 3]; CB];
            let mut px = 0;
            while px + L <= wv {
                let mut xv = [[z; 2]; 3];
                for (k, v) in xv.iter_mut().enumerate() {
                    v[0] = vld1q_f32(xp.add(px + k));
                    v[1] = vld1q_f32(xp.add(px + k + 4));
                }
                for (c, ac) in acc.iter_mut().enumerate() {
                    let d = [vld1q_f32(dp[c].add(px)), vld1q_f32(dp[c].add(px + 4))];
                    for (k, v) in ac.iter_mut().enumerate() {
                        v[0] = vfmaq_f32(v[0], d[0], xv[k][0]);
                        v[1] = vfmaq_f32(v[1], d[1], xv[k][1]);
                    }
                }
                px += L;
            }
            for (c, ac) in acc.iter().enumerate() {
                for (k, v) in ac.iter().enumerate() {
                    vst1q_f32(a[c][k].as_mut_ptr(), v[0]);
                    vst1q_f32(a[c][k].as_mut_ptr().add(4), v[1]);
                }
            }
        }
    }
}
