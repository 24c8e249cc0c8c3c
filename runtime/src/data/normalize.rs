//! Normalisation: RGB8 pixels → `x · mul[c] + add[c]` as `f32`, laid out NCHW or NHWC,
//! optionally mirrored left-right — the last stage of the fused decoder.
//!
//! This pass runs once per pixel of every image the loader delivers, so it is written
//! for the vectoriser: each row is taken in chunks of up to [`CHUNK`] pixels, first
//! de-interleaved into three small byte planes on the stack (a stride-3 byte gather that
//! LLVM turns into shuffles), then each plane is converted with one multiply and one add
//! per value in straight loops. The same code is compiled twice: for the baseline target
//! and, on x86-64, with AVX2 enabled, picked at run time ([`normalize`]). On AArch64 the
//! `neon` path is written with intrinsics instead: `ld3` de-interleaves 16 pixels in one
//! instruction, the bytes widen to floats in registers and `st3` interleaves NHWC. Every
//! path computes exactly `f32::from(x) * mul + add` per value (a multiply, then an add;
//! no fused multiply-add), so the results are bit-identical to the scalar reference in
//! the tests, on every CPU. Its speed is measured by the loader
//! bench (`cargo bench --bench loader`), not stated here.

use crate::model::Layout;

/// Three colour channels.
const CHANNELS: usize = 3;

/// Pixels per de-interleaved chunk (three 256-byte planes on the stack).
pub(crate) const CHUNK: usize = 256;

/// Write `src` (RGB8, `w`×`h`, rows packed) as `x · mul[c] + add[c]` into `out`
/// (`3·w·h` floats) in `layout`, mirrored left-right when `flip`.
pub(crate) fn normalize(
    src: &[u8],
    w: usize,
    h: usize,
    layout: Layout,
    flip: bool,
    affine: &[(f32, f32); CHANNELS],
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::active() == crate::simd::Simd::Avx2 {
        // Safety: the `avx2` path is active only where the CPU supports AVX2 (and FMA),
        // the only requirement of a `#[target_feature(enable = "avx2")]` function.
        unsafe { normalize_avx2(src, w, h, layout, flip, affine, out) };
        return;
    }
    #[cfg(target_arch = "aarch64")]
    if crate::simd::active() == crate::simd::Simd::Neon {
        neon::normalize(src, w, h, layout, flip, affine, out);
        return;
    }
    normalize_generic(src, w, h, layout, flip, affine, out);
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use super::CHANNELS;
    use crate::model::Layout;
    use std::arch::aarch64::*;

    /// Pixels per step: one `ld3` of three 16-byte registers.
    const STEP: usize = 16;

    /// [`super::normalize`] with NEON intrinsics: 16 pixels a step, the row's last
    /// `w % 16` pixels one at a time.
    pub(super) fn normalize(
        src: &[u8],
        w: usize,
        h: usize,
        layout: Layout,
        flip: bool,
        affine: &[(f32, f32); CHANNELS],
        out: &mut [f32],
    ) {
        let row_bytes = w * CHANNELS;
        let plane = w * h;
        assert!(src.len() >= row_bytes * h && out.len() >= CHANNELS * plane);
        // Where channel c of output pixel (x, y) goes.
        let at = |c: usize, x: usize, y: usize| match layout {
            Layout::Nchw => c * plane + y * w + x,
            Layout::Nhwc => (y * w + x) * CHANNELS + c,
        };
        let (sp, op) = (src.as_ptr(), out.as_mut_ptr());
        // Safety (the whole body): NEON is on every AArch64 CPU; a step reads source
        // pixels `first..first + 16` of row `y` (`first + 16 ≤ w`) and writes output pixels
        // `x..x + 16` of row `y` (`x + 16 ≤ w`), inside the lengths asserted above.
        unsafe {
            let mul = affine.map(|a| vdupq_n_f32(a.0));
            let add = affine.map(|a| vdupq_n_f32(a.1));
            for y in 0..h {
                let row = &src[y * row_bytes..(y + 1) * row_bytes];
                let mut x = 0;
                while x + STEP <= w {
                    let first = if flip { w - x - STEP } else { x };
                    let px = vld3q_u8(sp.add(y * row_bytes + first * CHANNELS));
                    let mut bytes = [px.0, px.1, px.2];
                    if flip {
                        for b in &mut bytes {
                            let r = vrev64q_u8(*b);
                            *b = vextq_u8::<8>(r, r);
                        }
                    }
                    // Channel c, pixels 4q..4q + 4 as floats.
                    let mut f = [[vdupq_n_f32(0.0); 4]; CHANNELS];
                    for c in 0..CHANNELS {
                        let lo = vmovl_u8(vget_low_u8(bytes[c]));
                        let hi = vmovl_u8(vget_high_u8(bytes[c]));
                        let quads = [
                            vmovl_u16(vget_low_u16(lo)),
                            vmovl_u16(vget_high_u16(lo)),
                            vmovl_u16(vget_low_u16(hi)),
                            vmovl_u16(vget_high_u16(hi)),
                        ];
                        for (q, &v) in quads.iter().enumerate() {
                            let v = vmulq_f32(vcvtq_f32_u32(v), mul[c]);
                            f[c][q] = vaddq_f32(v, add[c]);
                        }
                    }
                    match layout {
                        Layout::Nchw => {
                            for (c, fc) in f.iter().enumerate() {
                                for (q, &v) in fc.iter().enumerate() {
                                    vst1q_f32(op.add(at(c, x + 4 * q, y)), v);
                                }
                            }
                        }
                        Layout::Nhwc => {
                            let [r, g, b] = &f;
                            for (q, ((&r, &g), &b)) in r.iter().zip(g).zip(b).enumerate() {
                                let v = float32x4x3_t(r, g, b);
                                vst3q_f32(op.add(at(0, x + 4 * q, y)), v);
                            }
                        }
                    }
                    x += STEP;
                }
                for x in x..w {
                    let sx = if flip { w - 1 - x } else { x };
                    for (c, &(m, a)) in affine.iter().enumerate() {
                        *op.add(at(c, x, y)) = f32::from(row[sx * CHANNELS + c]) * m + a;
                    }
                }
            }
        }
    }
}

/// [`normalize_generic`] compiled with AVX2 enabled.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn normalize_avx2(
    src: &[u8],
    w: usize,
    h: usize,
    layout: Layout,
    flip: bool,
    affine: &[(f32, f32); CHANNELS],
    out: &mut [f32],
) {
    normalize_generic(src, w, h, layout, flip, affine, out);
}

/// The portable body of [`normalize`]; inlined into each compiled variant.
#[inline(always)]
pub(crate) fn normalize_generic(
    src: &[u8],
    w: usize,
    h: usize,
    layout: Layout,
    flip: bool,
    affine: &[(f32, f32); CHANNELS],
    out: &mut [f32],
) {
    let row_bytes = w * CHANNELS;
    let plane = w * h;
    let mut planes = [[0u8; CHUNK]; CHANNELS];
    for (y, row) in src.chunks_exact(row_bytes).take(h).enumerate() {
        let mut x0 = 0;
        while x0 < w {
            let n = (w - x0).min(CHUNK);
            // Output pixels x0..x0+n come from source pixels x0..x0+n, or, mirrored,
            // from w-x0-n..w-x0 taken backwards.
            let first = if flip { w - x0 - n } else { x0 };
            let seg = &row[first * CHANNELS..(first + n) * CHANNELS];
            deinterleave(seg, &mut planes, n);
            match layout {
                Layout::Nchw => {
                    for (c, (p, &(mul, add))) in planes.iter().zip(affine).enumerate() {
                        let start = c * plane + y * w + x0;
                        convert(&p[..n], flip, mul, add, &mut out[start..start + n]);
                    }
                }
                Layout::Nhwc => {
                    let start = (y * w + x0) * CHANNELS;
                    interleave(&planes, n, flip, affine, &mut out[start..start + n * 3]);
                }
            }
            x0 += n;
        }
    }
}

/// Split `n` RGB pixels into three planes.
#[inline(always)]
fn deinterleave(seg: &[u8], planes: &mut [[u8; CHUNK]; CHANNELS], n: usize) {
    let [p0, p1, p2] = planes;
    let px = seg.chunks_exact(CHANNELS);
    for (((px, r), g), b) in px.zip(&mut p0[..n]).zip(&mut p1[..n]).zip(&mut p2[..n]) {
        *r = px[0];
        *g = px[1];
        *b = px[2];
    }
}

/// `out[i] = plane[i] · mul + add`, reading the plane backwards when `reverse`.
#[inline(always)]
fn convert(plane: &[u8], reverse: bool, mul: f32, add: f32, out: &mut [f32]) {
    if reverse {
        for (o, &v) in out.iter_mut().zip(plane.iter().rev()) {
            *o = f32::from(v) * mul + add;
        }
    } else {
        for (o, &v) in out.iter_mut().zip(plane) {
            *o = f32::from(v) * mul + add;
        }
    }
}

/// NHWC: convert the three planes back into interleaved floats.
#[inline(always)]
fn interleave(
    planes: &[[u8; CHUNK]; CHANNELS],
    n: usize,
    reverse: bool,
    affine: &[(f32, f32); CHANNELS],
    out: &mut [f32],
) {
    let [(m0, a0), (m1, a1), (m2, a2)] = *affine;
    let [p0, p1, p2] = planes;
    for (i, o) in out.chunks_exact_mut(CHANNELS).enumerate() {
        let k = if reverse { n - 1 - i } else { i };
        o[0] = f32::from(p0[k]) * m0 + a0;
        o[1] = f32::from(p1[k]) * m1 + a1;
        o[2] = f32::from(p2[k]) * m2 + a2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obvious per-pixel loop.
    fn reference(
        src: &[u8],
        w: usize,
        h: usize,
        layout: Layout,
        flip: bool,
        affine: &[(f32, f32); 3],
    ) -> Vec<f32> {
        let mut out = vec![0.0; 3 * w * h];
        for y in 0..h {
            for x in 0..w {
                let sx = if flip { w - 1 - x } else { x };
                for c in 0..3 {
                    let v = f32::from(src[(y * w + sx) * 3 + c]) * affine[c].0 + affine[c].1;
                    let i = match layout {
                        Layout::Nchw => c * w * h + y * w + x,
                        Layout::Nhwc => (y * w + x) * 3 + c,
                    };
                    out[i] = v;
                }
            }
        }
        out
    }

    #[test]
    fn every_variant_matches_the_reference_bit_for_bit() {
        let affine = [(1.0 / 255.0, -0.485), (0.5, 0.25), (2.0 / 255.0, -1.0)];
        // Widths below, at and above a chunk, odd ones included.
        for (w, h) in [
            (1, 1),
            (7, 3),
            (CHUNK, 2),
            (CHUNK + 1, 2),
            (300, 5),
            (2 * CHUNK + 13, 1),
        ] {
            let src: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 + i / 7) as u8).collect();
            for layout in [Layout::Nchw, Layout::Nhwc] {
                for flip in [false, true] {
                    let want = reference(&src, w, h, layout, flip, &affine);
                    let mut got = vec![f32::NAN; 3 * w * h];
                    normalize(&src, w, h, layout, flip, &affine, &mut got);
                    let mut generic = vec![f32::NAN; 3 * w * h];
                    normalize_generic(&src, w, h, layout, flip, &affine, &mut generic);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "{w}x{h} {layout:?} flip={flip}");
                    assert_eq!(bits(&generic), bits(&want), "generic {w}x{h} {layout:?}");
                }
            }
        }
    }
}
