//! The trainer's own single-precision GEMM: packed, cache-blocked (BLIS loop order),
//! with a 6×16 micro-kernel in AVX2 + FMA (x86-64) or NEON (AArch64), as the process's
//! kernel path says ([`crate::simd`]), and a portable one beside them,
//! split over threads by column blocks, and **no allocation**: the packing buffers come
//! from the caller (the trainer's arena), [`pack_len`] floats per thread.
//!
//! `C (m×n, row-major, leading dimension ldc) = [C +] A (m×k) · B (k×n)`, where A and B
//! are given by element strides, so either may be a transposed view without a copy.
//! Threads come from the caller's [`Workers`] (the trainer's: nothing allocated per call)
//! or else from rayon's `join`.

use super::workers::Workers;
use crate::error::{Error, Result};

/// Micro-tile rows.
pub(crate) const MR: usize = 6;
/// Micro-tile columns.
pub(crate) const NR: usize = 16;
/// Rows of A packed at once (an L2-sized block).
const MC: usize = 96;
/// Largest depth packed at once; a depth is cut into equal blocks up to this (288 = one
/// block, 576 = two of 288), so no block is a thin remainder.
const KC: usize = 320;
/// Columns of B packed at once (an L3-sized block).
const NC: usize = 2048;

/// Floats of packing buffer one thread needs (A block + B block).
pub const fn pack_len() -> usize {
    MC * KC + KC * NC
}

/// A strided matrix operand: element (i, j) at `data[i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub struct Operand<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl<'a> Operand<'a> {
    /// A row-major `rows × cols` matrix, or its transpose when `transposed` (the data then
    /// holds the `cols × rows` matrix row-major).
    pub fn new(data: &'a [f32], cols: usize, rows: usize, transposed: bool) -> Self {
        if transposed {
            Operand {
                data,
                rs: 1,
                cs: rows,
            }
        } else {
            Operand {
                data,
                rs: cols,
                cs: 1,
            }
        }
    }

    /// Largest index touched by a `rows × cols` view, plus one.
    fn extent(&self, rows: usize, cols: usize) -> usize {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * self.rs + (cols - 1) * self.cs + 1
        }
    }
}

/// `C = [C +] A·B` with `threads` threads (0 or 1: the caller's thread only; the rayon
/// pool otherwise) and `pack` holding `threads.max(1) × pack_len()` floats.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: Operand<'_>,
    b: Operand<'_>,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    pack: &mut [f32],
    threads: usize,
    workers: Option<&Workers>,
) -> Result<()> {
    let threads = threads.max(1);
    if a.data.len() < a.extent(m, k) || b.data.len() < b.extent(k, n) {
        return Err(Error::Invalid(format!(
            "sgemm: operands too short for {m}×{k} · {k}×{n}"
        )));
    }
    if m > 0 && n > 0 && (ldc < n || c.len() < (m - 1) * ldc + n) {
        return Err(Error::Invalid(format!(
            "sgemm: output of {} floats too short for {m}×{n} (ldc {ldc})",
            c.len()
        )));
    }
    if pack.len() < threads * pack_len() {
        return Err(Error::Invalid(format!(
            "sgemm: packing buffer of {} floats, {threads} threads need {}",
            pack.len(),
            threads * pack_len()
        )));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            for row in c.chunks_mut(ldc).take(m) {
                row[..n].fill(0.0);
            }
        }
        return Ok(());
    }
    // Column blocks per thread, in whole micro-tiles.
    let tiles = n.div_ceil(NR);
    let parts = threads.min(tiles);
    let out = SendPtr(c.as_mut_ptr());
    let part_fn = |part: usize, pack: &mut [f32]| {
        let j0 = tiles * part / parts * NR;
        let j1 = (tiles * (part + 1) / parts * NR).min(n);
        // Safety: parts write disjoint column ranges [j0, j1) of C, whose extent was
        // checked above; `c` is borrowed mutably for the whole call.
        unsafe { block(m, j0, j1, k, a, b, out.get(), ldc, accumulate, pack) };
    };
    match workers {
        Some(w) => {
            let parts = parts.min(w.threads());
            let tiles_parts = parts;
            let packs = SendPtr(pack.as_mut_ptr());
            w.run(parts, &|part| {
                // Safety: part < parts ≤ threads, so each part gets its own disjoint
                // pack_len() slice of `pack` (length checked above).
                let pk = unsafe {
                    std::slice::from_raw_parts_mut(packs.get().add(part * pack_len()), pack_len())
                };
                let j0 = tiles * part / tiles_parts * NR;
                let j1 = (tiles * (part + 1) / tiles_parts * NR).min(n);
                // Safety: as in `part_fn`.
                unsafe { block(m, j0, j1, k, a, b, out.get(), ldc, accumulate, pk) };
            });
        }
        None => run_parts(parts, pack, &part_fn),
    }
    Ok(())
}

/// A raw pointer that may cross to the helper thread (the parts write disjoint ranges).
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);

impl SendPtr {
    /// The pointer (a method, so closures capture the `Sync` wrapper, not the field).
    fn get(&self) -> *mut f32 {
        self.0
    }
}
// Safety: used only to write disjoint column ranges of one output from the parts of a
// `run_parts` call, which returns after every part has finished.
unsafe impl Send for SendPtr {}
// Safety: as above.
unsafe impl Sync for SendPtr {}

/// Runs `f(part, pack)` for parts `0..parts`, each with its own `pack_len()` buffer,
/// splitting in halves over `rayon::join`.
fn run_parts(parts: usize, pack: &mut [f32], f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
    fn go(first: usize, count: usize, pack: &mut [f32], f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
        if count == 1 {
            f(first, &mut pack[..pack_len()]);
            return;
        }
        let half = count / 2;
        let (lo, hi) = pack.split_at_mut(half * pack_len());
        rayon::join(
            || go(first, half, lo, f),
            || go(first + half, count - half, hi, f),
        );
    }
    go(0, parts, pack, f);
}

/// The BLIS loops over columns `j0..j1` of C.
///
/// # Safety
/// `c` must be valid for writes of rows `0..m`, columns `j0..j1` at leading dimension
/// `ldc`, and nothing else may access those elements during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn block(
    m: usize,
    j0: usize,
    j1: usize,
    k: usize,
    a: Operand<'_>,
    b: Operand<'_>,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    pack: &mut [f32],
) {
    let (pa, pb) = pack.split_at_mut(MC * KC);
    let fast = simd::available();
    for jc in (j0..j1).step_by(NC) {
        let nc = NC.min(j1 - jc);
        let kstep = k.div_ceil(k.div_ceil(KC));
        for pc in (0..k).step_by(kstep) {
            let kc = kstep.min(k - pc);
            pack_b(b, pc, kc, jc, nc, pb);
            let add = accumulate || pc > 0;
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                pack_a(a, ic, mc, pc, kc, pa);
                for jr in (0..nc).step_by(NR) {
                    let nr = NR.min(nc - jr);
                    let bp = &pb[jr * kc..jr * kc + kc * NR];
                    for ir in (0..mc).step_by(MR) {
                        let mr = MR.min(mc - ir);
                        let ap = &pa[ir * kc..ir * kc + kc * MR];
                        // Safety: (ic + ir, jc + jr) plus an mr × nr tile lies inside
                        // the caller's rows 0..m and columns j0..j1.
                        let cp = unsafe { c.add((ic + ir) * ldc + jc + jr) };
                        let mut tile = [0.0f32; MR * NR];
                        if fast {
                            // Safety: the path's instructions run on this CPU; the
                            // panels hold kc × MR and kc × NR floats.
                            unsafe { simd::kernel(kc, ap, bp, &mut tile) };
                        } else {
                            kernel_portable(kc, ap, bp, &mut tile);
                        }
                        for r in 0..mr {
                            // Safety: row ic + ir + r < m, columns jc + jr .. + nr < j1.
                            let row =
                                unsafe { std::slice::from_raw_parts_mut(cp.add(r * ldc), nr) };
                            let t = &tile[r * NR..r * NR + nr];
                            if add {
                                row.iter_mut().zip(t).for_each(|(o, v)| *o += v);
                            } else {
                                row.copy_from_slice(t);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One micro-tile from packed panels: `tile (MR×NR, row-major) = Σ_kk a[kk]ᵀ · b[kk]`
/// with `a` holding `kc·MR` floats (`[kk][MR]`) and `b` `kc·NR` (`[kk][NR]`); the fast
/// kernel where the CPU has one. For callers that lay their operands out as panels
/// themselves (Winograd's transforms) and so skip packing.
pub(crate) fn micro_tile(kc: usize, a: &[f32], b: &[f32], tile: &mut [f32; MR * NR]) {
    assert!(
        a.len() >= kc * MR && b.len() >= kc * NR,
        "micro_tile: short panels"
    );
    if simd::available() {
        // Safety: the path's instructions run on this CPU; the panel lengths were
        // checked above.
        unsafe { simd::kernel(kc, a, b, tile) }
    } else {
        kernel_portable(kc, a, b, tile)
    }
}

/// Packs A's rows `i0..i0+mc`, depth `p0..p0+kc` into MR-row panels (`[panel][kk][MR]`),
/// zero-padding the last panel. Loops run along A's contiguous axis.
fn pack_a(a: Operand<'_>, i0: usize, mc: usize, p0: usize, kc: usize, out: &mut [f32]) {
    for (pi, ir) in (0..mc).step_by(MR).enumerate() {
        let panel = &mut out[pi * MR * kc..(pi + 1) * MR * kc];
        let mr = MR.min(mc - ir);
        if mr < MR {
            panel.fill(0.0);
        }
        if a.cs == 1 {
            // Rows are contiguous along the depth: read each row straight.
            for r in 0..mr {
                let base = (i0 + ir + r) * a.rs + p0;
                for (kk, &v) in a.data[base..base + kc].iter().enumerate() {
                    panel[kk * MR + r] = v;
                }
            }
        } else {
            for kk in 0..kc {
                let base = (p0 + kk) * a.cs + (i0 + ir) * a.rs;
                for r in 0..mr {
                    panel[kk * MR + r] = a.data[base + r * a.rs];
                }
            }
        }
    }
}

/// Packs B's depth `p0..p0+kc`, columns `j0..j0+nc` into NR-column panels
/// (`[panel][kk][NR]`), zero-padding the last panel. Loops run along B's contiguous
/// axis (rows of B for a row-major B, columns for a transposed one).
fn pack_b(b: Operand<'_>, p0: usize, kc: usize, j0: usize, nc: usize, out: &mut [f32]) {
    let panels = nc.div_ceil(NR);
    if !nc.is_multiple_of(NR) {
        let last = (panels - 1) * NR * kc;
        out[last..last + NR * kc].fill(0.0);
    }
    if b.cs == 1 {
        for kk in 0..kc {
            let row = &b.data[(p0 + kk) * b.rs + j0..(p0 + kk) * b.rs + j0 + nc];
            let mut chunks = row.chunks_exact(NR);
            for (pj, chunk) in (&mut chunks).enumerate() {
                let at = pj * NR * kc + kk * NR;
                // Fixed-size copies compile to vector moves (a slice copy calls memmove).
                let dst: &mut [f32; NR] = (&mut out[at..at + NR])
                    .try_into()
                    .unwrap_or_else(|_| unreachable!());
                let src: &[f32; NR] = chunk.try_into().unwrap_or_else(|_| unreachable!());
                *dst = *src;
            }
            let rest = chunks.remainder();
            if !rest.is_empty() {
                let at = (nc / NR) * NR * kc + kk * NR;
                out[at..at + rest.len()].copy_from_slice(rest);
            }
        }
    } else {
        for j in 0..nc {
            let (pj, jj) = (j / NR, j % NR);
            let panel = &mut out[pj * NR * kc..(pj + 1) * NR * kc];
            let base = (j0 + j) * b.cs + p0 * b.rs;
            if b.rs == 1 {
                for (kk, &v) in b.data[base..base + kc].iter().enumerate() {
                    panel[kk * NR + jj] = v;
                }
            } else {
                for kk in 0..kc {
                    panel[kk * NR + jj] = b.data[base + kk * b.rs];
                }
            }
        }
    }
}

/// The portable micro-kernel: `tile (MR×NR) = Σ_kk a[kk]ᵀ · b[kk]`.
fn kernel_portable(kc: usize, a: &[f32], b: &[f32], tile: &mut [f32; MR * NR]) {
    let mut acc = [[0.0f32; NR]; MR];
    for kk in 0..kc {
        let bv: &[f32; NR] = b[kk * NR..kk * NR + NR].try_into().unwrap_or(&[0.0; NR]);
        for (r, row) in acc.iter_mut().enumerate() {
            let av = a[kk * MR + r];
            for (o, &x) in row.iter_mut().zip(bv) {
                *o += av * x;
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        tile[r * NR..r * NR + NR].copy_from_slice(row);
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    /// Whether the AVX2+FMA kernel runs: the process's kernel path is `avx2`.
    pub fn available() -> bool {
        crate::train::kernels::avx2_fma()
    }

    /// `tile = Σ_kk a[kk]ᵀ · b[kk]` with 12 ymm accumulators.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `a` holds `kc·MR` and `b` `kc·NR` floats.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn kernel(kc: usize, a: &[f32], b: &[f32], tile: &mut [f32; MR * NR]) {
        debug_assert!(a.len() >= kc * MR && b.len() >= kc * NR);
        let (ap, bp) = (a.as_ptr(), b.as_ptr());
        let mut c = [[_mm256_setzero_ps(); 2]; MR];
        for kk in 0..kc {
            // Safety: kk < kc, so both loads stay inside the panels (length checked by
            // the caller's contract).
            unsafe {
                let b0 = _mm256_loadu_ps(bp.add(kk * NR));
                let b1 = _mm256_loadu_ps(bp.add(kk * NR + 8));
                for (r, acc) in c.iter_mut().enumerate() {
                    let av = _mm256_broadcast_ss(&*ap.add(kk * MR + r));
                    acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
                    acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
                }
            }
        }
        for (r, acc) in c.iter().enumerate() {
            // Safety: row r of the tile has NR = 16 floats.
            unsafe {
                _mm256_storeu_ps(tile.as_mut_ptr().add(r * NR), acc[0]);
                _mm256_storeu_ps(tile.as_mut_ptr().add(r * NR + 8), acc[1]);
            }
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod simd {
    use super::{MR, NR};
    use std::arch::aarch64::*;

    /// Whether the NEON kernel runs: the process's kernel path is `neon`.
    pub fn available() -> bool {
        crate::simd::active() == crate::simd::Simd::Neon
    }

    /// `tile = Σ_kk a[kk]ᵀ · b[kk]` in 24 quad-register accumulators (6 rows × 4 × 4
    /// columns): per depth step four loads of `b`, one and a half of `a`, and 24
    /// multiply-adds by lane (ARMv8.0 `fmla v.4s, v.4s, v.s[i]`).
    ///
    /// # Safety
    /// `a` holds `kc·MR` and `b` `kc·NR` floats (NEON is on every AArch64 CPU).
    pub unsafe fn kernel(kc: usize, a: &[f32], b: &[f32], tile: &mut [f32; MR * NR]) {
        debug_assert!(a.len() >= kc * MR && b.len() >= kc * NR);
        let (ap, bp) = (a.as_ptr(), b.as_ptr());
        // Safety (the whole body): kk < kc, so every load stays inside the panels; the
        // stores write row r < MR, columns < NR of the tile.
        unsafe {
            let z = vdupq_n_f32(0.0);
            let mut c = [[z; 4]; MR];
            for kk in 0..kc {
                let bv = [
                    vld1q_f32(bp.add(kk * NR)),
                    vld1q_f32(bp.add(kk * NR + 4)),
                    vld1q_f32(bp.add(kk * NR + 8)),
                    vld1q_f32(bp.add(kk * NR + 12)),
                ];
                let a03 = vld1q_f32(ap.add(kk * MR));
                let a45 = vld1_f32(ap.add(kk * MR + 4));
                for j in 0..4 {
                    c[0][j] = vfmaq_laneq_f32::<0>(c[0][j], bv[j], a03);
                    c[1][j] = vfmaq_laneq_f32::<1>(c[1][j], bv[j], a03);
                    c[2][j] = vfmaq_laneq_f32::<2>(c[2][j], bv[j], a03);
                    c[3][j] = vfmaq_laneq_f32::<3>(c[3][j], bv[j], a03);
                    c[4][j] = vfmaq_lane_f32::<0>(c[4][j], bv[j], a45);
                    c[5][j] = vfmaq_lane_f32::<1>(c[5][j], bv[j], a45);
                }
            }
            for (r, acc) in c.iter().enumerate() {
                for (j, v) in acc.iter().enumerate() {
                    vst1q_f32(tile.as_mut_ptr().add(r * NR + 4 * j), *v);
                }
            }
        }
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod simd {
    use super::{MR, NR};

    /// No hand-written kernel for this architecture: the portable one runs.
    pub fn available() -> bool {
        false
    }

    /// Never called (see [`available`]).
    ///
    /// # Safety
    /// None needed; kept for the same signature as the other kernels.
    pub unsafe fn kernel(kc: usize, a: &[f32], b: &[f32], tile: &mut [f32; MR * NR]) {
        super::kernel_portable(kc, a, b, tile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: Operand<'_>, b: Operand<'_>) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    s += f64::from(a.data[i * a.rs + p * a.cs])
                        * f64::from(b.data[p * b.rs + j * b.cs]);
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    #[test]
    fn matches_naive_for_odd_shapes_transposes_threads_and_accumulation() {
        let vals = |n: usize, s: u32| {
            (0..n)
                .map(|i| (((i as u32).wrapping_mul(2654435761u32) ^ s) % 1000) as f32 / 500.0 - 1.0)
                .collect::<Vec<_>>()
        };
        for &(m, n, k) in &[
            (1, 1, 1),
            (7, 17, 5),
            (13, 40, 300),
            (100, 33, 9),
            (6, 2100, 20),
            (5, 20, 700),
        ] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let (ad, bd) = (vals(m * k, 1), vals(k * n, 2));
                let a = Operand::new(&ad, k, m, ta);
                let b = Operand::new(&bd, n, k, tb);
                let want = naive(m, n, k, a, b);
                for threads in [1, 2, 3] {
                    let mut pack = vec![0.0; threads * pack_len()];
                    let mut c = vals(m * n, 3);
                    let start = c.clone();
                    sgemm(m, n, k, a, b, &mut c, n, false, &mut pack, threads, None).unwrap();
                    let w = Workers::new(threads - 1).unwrap();
                    let mut c3 = start.clone();
                    sgemm(
                        m,
                        n,
                        k,
                        a,
                        b,
                        &mut c3,
                        n,
                        false,
                        &mut pack,
                        threads,
                        Some(&w),
                    )
                    .unwrap();
                    assert_eq!(c, c3);
                    for (i, (x, y)) in c.iter().zip(&want).enumerate() {
                        assert!(
                            (x - y).abs() < 1e-3,
                            "{m}×{n}×{k} {ta} {tb} t{threads} [{i}]: {x} vs {y}"
                        );
                    }
                    let mut c2 = start.clone();
                    sgemm(m, n, k, a, b, &mut c2, n, true, &mut pack, threads, None).unwrap();
                    for i in 0..m * n {
                        assert!((c2[i] - start[i] - want[i]).abs() < 1e-3);
                    }
                }
            }
        }
    }

    #[test]
    fn short_buffers_are_errors() {
        let a = [1.0; 4];
        let op = Operand::new(&a, 2, 2, false);
        let mut c = [0.0; 4];
        assert!(sgemm(2, 2, 2, op, op, &mut c, 2, false, &mut [], 1, None).is_err());
        let mut pack = vec![0.0; pack_len()];
        assert!(sgemm(2, 2, 3, op, op, &mut c, 2, false, &mut pack, 1, None).is_err());
        assert!(sgemm(2, 2, 2, op, op, &mut c[..3], 2, false, &mut pack, 1, None).is_err());
    }
}
