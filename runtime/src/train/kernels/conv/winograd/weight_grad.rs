//! The Winograd weight gradient: `dW = Gᵀ [ Σ_tiles (A e Aᵀ) ⊙ (Bᵀ d B) ] G`, the sums
//! over tiles as dot products along contiguous transformed rows, in fixed groups of
//! chunks so the result does not depend on the thread count.

use super::transforms::{fill_rows, filter_grad, grad_transform, input_transform, src_row};
use super::{CB, CHUNK_DW, DwBufs, Geo, KB, LANES, Lanes, M, P, XI, argmax_inside};
use super::{dw_acc_len, dw_part_len, pad_to};
use crate::error::Result;
use crate::train::kernels::conv::{Conv2dShape, Dy};
use crate::train::kernels::workers::SharedMut;
use crate::train::kernels::{Gemm, check_min_len};

/// One chunk of the weight gradient: transforms `x` into rows `v[ξ][ci][t]` and `dy`
/// into rows `e[ξ][co][t]` (16 tiles at a time, contiguous: nothing is transposed),
/// then adds the 36 products `e_ξ · v_ξᵀ` (dot products along the tiles, 4 × 3 channel
/// pairs at once) to `acc[ξ][co][ci]`. Channel counts are padded to the blocks with
/// zero rows. False as [`src_row`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn dw_chunk(
    geo: &Geo,
    (cin, cout): (usize, usize),
    chunk: usize,
    x: &[f32],
    dy: Dy<'_>,
    (acc, v, e, prow, drows): DwBufs<'_>,
    fast: bool,
) -> bool {
    let (tiles, len, w) = (geo.tiles(), geo.prow(), geo.w);
    let (kp, cp) = (pad_to(cout, KB), pad_to(cin, CB));
    let r0 = chunk * geo.rows;
    let mut ok = true;
    for r in 0..geo.rows {
        let row = r0 + r;
        let valid = row < geo.total_rows;
        let (img, ty) = (row / geo.th, row % geo.th);
        for ci in 0..cin {
            if valid {
                fill_rows(geo, Dy::Plain(x), img * cin + ci, ty, prow);
            } else {
                prow[..P * len].fill(0.0);
            }
            for p in 0..geo.twp / LANES {
                let t0 = r * geo.twp + p * LANES;
                input_transform(prow, len, p, &mut |xi, lanes| {
                    let o = (xi * cp + ci) * tiles + t0;
                    let dst: &mut Lanes = (&mut v[o..o + LANES]).try_into().expect("16 lanes");
                    *dst = *lanes;
                });
            }
        }
        for co in 0..cout {
            if valid {
                for (i, d) in drows.chunks_exact_mut(len).take(M).enumerate() {
                    let oy = M * ty + i;
                    if oy < geo.h {
                        ok &= src_row(dy, (geo.h, w), img * cout + co, oy, &mut d[..w]);
                        d[w..].fill(0.0);
                    } else {
                        d.fill(0.0);
                    }
                }
            } else {
                drows[..M * len].fill(0.0);
            }
            for p in 0..geo.twp / LANES {
                let t0 = r * geo.twp + p * LANES;
                grad_transform(drows, len, p, &mut |xi, lanes| {
                    let o = (xi * kp + co) * tiles + t0;
                    let dst: &mut Lanes = (&mut e[o..o + LANES]).try_into().expect("16 lanes");
                    *dst = *lanes;
                });
            }
        }
    }
    let (e, v) = (&*e, &*v);
    for xi in 0..XI {
        for k in (0..kp).step_by(KB) {
            let mut er: [&[f32]; KB] = [&[]; KB];
            for (i, r) in er.iter_mut().enumerate() {
                let row = xi * kp + k + i;
                *r = &e[row * tiles..(row + 1) * tiles];
            }
            for c in (0..cp).step_by(CB) {
                let mut vr: [&[f32]; CB] = [&[]; CB];
                for (j, r) in vr.iter_mut().enumerate() {
                    let row = xi * cp + c + j;
                    *r = &v[row * tiles..(row + 1) * tiles];
                }
                let sums = dot_block(er, vr, fast);
                for (i, srow) in sums.iter().enumerate() {
                    let o = (xi * kp + k + i) * cp + c;
                    for (a, s) in acc[o..o + CB].iter_mut().zip(srow) {
                        *a += s;
                    }
                }
            }
        }
    }
    ok
}

/// `sums[i][j] = e[i] · v[j]` for 4 × 3 rows of equal length (a multiple of 8).
#[inline(always)]
fn dot_block(e: [&[f32]; KB], v: [&[f32]; CB], fast: bool) -> [[f32; CB]; KB] {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    if fast {
        // Safety: the caller's kernel path runs on this CPU.
        return unsafe { simd::dot_block(e, v) };
    }
    let _ = fast;
    let mut out = [[0.0f32; CB]; KB];
    for (o, er) in out.iter_mut().zip(&e) {
        for (s, vr) in o.iter_mut().zip(&v) {
            *s = er.iter().zip(*vr).map(|(a, b)| a * b).sum();
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{CB, KB};
    use std::arch::x86_64::*;

    /// [`super::dot_block`] in 12 ymm accumulators: four loads of `e` and three of `v`
    /// per 12 FMAs, the lanes summed once at the end.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; every row holds the same number of floats, a
    /// multiple of 8.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_block(e: [&[f32]; KB], v: [&[f32]; CB]) -> [[f32; CB]; KB] {
        let n = v[0].len();
        assert!(
            n.is_multiple_of(8) && e.iter().all(|r| r.len() == n) && v.iter().all(|r| r.len() == n)
        );
        let (ep, vp) = (e.map(<[f32]>::as_ptr), v.map(<[f32]>::as_ptr));
        let mut acc = [[_mm256_setzero_ps(); CB]; KB];
        let mut t = 0;
        while t < n {
            // Safety: t + 8 ≤ n, the length of every row (checked above).
            unsafe {
                let mut vv = [_mm256_setzero_ps(); CB];
                for (j, x) in vv.iter_mut().enumerate() {
                    *x = _mm256_loadu_ps(vp[j].add(t));
                }
                for (i, a) in acc.iter_mut().enumerate() {
                    let ev = _mm256_loadu_ps(ep[i].add(t));
                    for (j, s) in a.iter_mut().enumerate() {
                        *s = _mm256_fmadd_ps(ev, vv[j], *s);
                    }
                }
            }
            t += 8;
        }
        let mut out = [[0.0f32; CB]; KB];
        for (o, a) in out.iter_mut().zip(&acc) {
            for (s, v) in o.iter_mut().zip(a) {
                let lo = _mm256_castps256_ps128(*v);
                let hi = _mm256_extractf128_ps(*v, 1);
                let q = _mm_add_ps(lo, hi);
                let d = _mm_add_ps(q, _mm_movehl_ps(q, q));
                let r = _mm_add_ss(d, _mm_shuffle_ps(d, d, 1));
                *s = _mm_cvtss_f32(r);
            }
        }
        out
    }
}

#[cfg(target_arch = "aarch64")]
mod simd {
    use super::{CB, KB};
    use std::arch::aarch64::*;

    /// [`super::dot_block`] in 12 quad-register accumulators, two per depth step of 8 (24
    /// registers): four pairs of loads of `e` and three of `v` per 24 fused multiply-adds,
    /// the lanes summed once at the end.
    ///
    /// # Safety
    /// Every row holds the same number of floats, a multiple of 8 (NEON is on every
    /// AArch64 CPU).
    pub(super) unsafe fn dot_block(e: [&[f32]; KB], v: [&[f32]; CB]) -> [[f32; CB]; KB] {
        let n = v[0].len();
        assert!(
            n.is_multiple_of(8) && e.iter().all(|r| r.len() == n) && v.iter().all(|r| r.len() == n)
        );
        let (ep, vp) = (e.map(<[f32]>::as_ptr), v.map(<[f32]>::as_ptr));
        let mut out = [[0.0f32; CB]; KB];
        // Safety (the whole body): t + 8 ≤ n, the length of every row (checked above).
        unsafe {
            let z = vdupq_n_f32(0.0);
            let mut acc = [[[z; 2]; CB]; KB];
            let mut t = 0;
            while t < n {
                let mut vv = [[z; 2]; CB];
                for (j, x) in vv.iter_mut().enumerate() {
                    x[0] = vld1q_f32(vp[j].add(t));
                    x[1] = vld1q_f32(vp[j].add(t + 4));
                }
                for (i, a) in acc.iter_mut().enumerate() {
                    let ev = [vld1q_f32(ep[i].add(t)), vld1q_f32(ep[i].add(t + 4))];
                    for (j, s) in a.iter_mut().enumerate() {
                        s[0] = vfmaq_f32(s[0], ev[0], vv[j][0]);
                        s[1] = vfmaq_f32(s[1], ev[1], vv[j][1]);
                    }
                }
                t += 8;
            }
            for (o, a) in out.iter_mut().zip(&acc) {
                for (s, v) in o.iter_mut().zip(a) {
                    *s = vaddvq_f32(vaddq_f32(v[0], v[1]));
                }
            }
        }
        out
    }
}

/// [`dw_chunk`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn dw_chunk_avx2(
    geo: &Geo,
    ch: (usize, usize),
    chunk: usize,
    x: &[f32],
    dy: Dy<'_>,
    bufs: DwBufs<'_>,
) -> bool {
    dw_chunk(geo, ch, chunk, x, dy, bufs, true)
}

/// Weight gradient (see the module notes): `dw [c_out, c_in, 3, 3]` from `x` and `dy`,
/// added to when `add`.
pub(super) fn weight_grad(
    s: &Conv2dShape,
    x: &[f32],
    dy: Dy<'_>,
    dw: &mut [f32],
    add: bool,
    scratch: &mut [f32],
    g: &mut Gemm<'_>,
) -> Result<()> {
    let (cin, cout) = (s.c_in, s.c_out);
    let geo = Geo::new(s.n, s.h, s.w, CHUNK_DW);
    let chunks = geo.chunks();
    let groups = geo.groups();
    let parts = g.parts().min(groups);
    let (acc_len, part_len) = (dw_acc_len(cin, cout), dw_part_len(&geo, cin, cout));
    let flen = s.weight_len();
    check_min_len(
        "winograd workspace",
        scratch.len(),
        groups * flen + parts * part_len,
    )?;
    let (kp, cp) = (pad_to(cout, KB), pad_to(cin, CB));
    let (tiles, len) = (geo.tiles(), geo.prow());
    let (sums, parts_scratch) = scratch.split_at_mut(groups * flen);
    let (sums_s, scr) = (SharedMut::new(sums), SharedMut::new(parts_scratch));
    let avx = crate::train::kernels::avx2_fma();
    let outside = std::sync::atomic::AtomicBool::new(false);
    g.run_parts(parts, &|part| {
        // Safety: each part takes its own scratch block.
        let sc = unsafe { scr.range(part * part_len, part_len) };
        let (acc, rest) = sc.split_at_mut(acc_len);
        let (v, rest) = rest.split_at_mut(XI * cp * tiles);
        let (e, rest) = rest.split_at_mut(XI * kp * tiles);
        let (prow, drows) = rest.split_at_mut(P * len);
        // Padding channels stay zero (their sums are never read).
        v.fill(0.0);
        e.fill(0.0);
        for group in groups * part / parts..groups * (part + 1) / parts {
            acc.fill(0.0);
            for chunk in chunks * group / groups..chunks * (group + 1) / groups {
                let bufs = (&mut *acc, &mut *v, &mut *e, &mut *prow, &mut *drows);
                #[cfg(target_arch = "x86_64")]
                let ok = if avx {
                    // Safety: AVX2 and FMA were detected.
                    unsafe { dw_chunk_avx2(&geo, (cin, cout), chunk, x, dy, bufs) }
                } else {
                    dw_chunk(&geo, (cin, cout), chunk, x, dy, bufs, false)
                };
                #[cfg(not(target_arch = "x86_64"))]
                let ok = {
                    let (_, fast) = (avx, crate::train::kernels::intrinsics());
                    dw_chunk(&geo, (cin, cout), chunk, x, dy, bufs, fast)
                };
                if !ok {
                    outside.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            // The group's 3×3 gradients (the transform is linear, so the groups' sums
            // can be added after it).
            // Safety: each group's slot belongs to the one part that takes it.
            let out = unsafe { sums_s.range(group * flen, flen) };
            let mut m = [0.0f32; XI];
            for co in 0..cout {
                for ci in 0..cin {
                    for (xi, mv) in m.iter_mut().enumerate() {
                        *mv = acc[(xi * kp + co) * cp + ci];
                    }
                    let f = (co * cin + ci) * 9;
                    filter_grad(&m, &mut out[f..f + 9]);
                }
            }
        }
    });
    argmax_inside(outside.into_inner())?;
    // Add the groups' gradients in order.
    let (first, others) = sums.split_at_mut(flen);
    for o in others.chunks_exact(flen).take(groups - 1) {
        first.iter_mut().zip(o).for_each(|(a, b)| *a += b);
    }
    if add {
        dw.iter_mut().zip(&*first).for_each(|(d, v)| *d += v);
    } else {
        dw.copy_from_slice(first);
    }
    Ok(())
}
