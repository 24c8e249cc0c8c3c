//! The forward-style Winograd pass: input transform, 36 GEMMs on the micro-kernel, output
//! transform, chunk by chunk over the helper threads. It computes the forward pass (plus
//! bias and ReLU, or the fused ReLU + 2×2/2 max-pool) and, on `dy` with the filters
//! rotated, the input gradient.

use super::transforms::{output_transform, panels, transform_chunk, u_len, weight_transform};
use super::{CHUNK_FWD, Geo, LANES, Lanes, M, XI, argmax_inside, fwd_part_len};
use crate::error::Result;
use crate::train::kernels::conv::{Conv2dShape, Dy};
use crate::train::kernels::sgemm::{MR, NR, micro_tile};
use crate::train::kernels::workers::SharedMut;
use crate::train::kernels::{Gemm, check_len, check_min_len};

/// Where a forward-style pass writes: the convolution's output, or the 2×2/2 max-pool
/// of its ReLU output and, when kept, the pool's argmax (plane indices).
#[derive(Clone, Copy)]
enum Dest<'a> {
    Full(&'a SharedMut),
    Pooled(&'a SharedMut, Option<&'a SharedMut<u32>>),
}

/// ReLU and the 2×2/2 max-pool of one output tile row segment (`y` from
/// [`output_transform`] at output row `oy`, column `x0`; bias `bv`) into the pooled
/// plane starting at `pooled`: the same winners as `maxpool_forward_opt` on the ReLU
/// output. The plane's sides are even.
#[inline(always)]
fn pool_tile(
    geo: &Geo,
    y: &[[Lanes; M]; M],
    bv: f32,
    (pooled, oy, x0): (usize, usize, usize),
    out: &SharedMut,
    arg: Option<&SharedMut<u32>>,
) {
    let (w, pw) = (geo.w, geo.w / 2);
    let cols = (w - x0).min(M * LANES) / 2;
    for pi in 0..M / 2 {
        let iy = oy + 2 * pi;
        if iy >= geo.h {
            break;
        }
        let at = pooled + (iy / 2) * pw + x0 / 2;
        // Safety: pooled row iy / 2 comes from output rows of this chunk's tile rows
        // only, which no other part touches; columns x0 / 2 .. + cols lie inside.
        let dst = unsafe { out.range(at, cols) };
        // Safety: as above (one argmax per pooled output).
        let dst_arg = arg.map(|g| unsafe { g.range(at, cols) });
        let (top, bottom) = (&y[2 * pi], &y[2 * pi + 1]);
        // Winner and offset per lane (tile) for the left (pj 0) and right (pj 1)
        // windows: lane loops the compiler vectorises, then interleaved.
        let (mut mv, mut wn) = ([[0.0f32; LANES]; 2], [[0u32; LANES]; 2]);
        for pj in 0..2 {
            let j = 2 * pj;
            for l in 0..LANES {
                let (a, b) = ((top[j][l] + bv).max(0.0), (top[j + 1][l] + bv).max(0.0));
                let (c, e) = (
                    (bottom[j][l] + bv).max(0.0),
                    (bottom[j + 1][l] + bv).max(0.0),
                );
                let (m, k) = crate::train::kernels::pooling::max_of_window4(a, b, c, e);
                mv[pj][l] = m;
                wn[pj][l] = (k & 1) + (k >> 1) * w as u32;
            }
        }
        if let Ok(dst) = <&mut [f32; M * LANES / 2]>::try_from(&mut *dst) {
            for l in 0..LANES {
                dst[2 * l] = mv[0][l];
                dst[2 * l + 1] = mv[1][l];
            }
        } else {
            for (k, d) in dst.iter_mut().enumerate() {
                *d = mv[k % 2][k / 2];
            }
        }
        if let Some(ga) = dst_arg {
            let base = (iy * w + x0) as u32;
            for (k, g) in ga.iter_mut().enumerate() {
                *g = base + 2 * k as u32 + wn[k % 2][k / 2];
            }
        }
    }
}

/// One chunk of a forward-style pass (see [`pass`]): input transform into `v`, the 16
/// GEMMs as micro-tiles into `m[ξ][o / MR][t / NR][MR × NR]`, output transform into `out`.
/// False as [`src_row`](super::transforms::src_row) (the chunk is finished all the same).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pass_chunk(
    geo: &Geo,
    (cin, cout): (usize, usize),
    chunk: usize,
    inp: Dy<'_>,
    u: &[f32],
    (bias, relu): (Option<&[f32]>, bool),
    out: Dest<'_>,
    (v, m, prow): (&mut [f32], &mut [f32], &mut [f32]),
) -> bool {
    let (tiles, plane, w) = (geo.tiles(), geo.h * geo.w, geo.w);
    let (tp, kp) = (tiles / NR, panels(cout));
    let r0 = chunk * geo.rows;
    let ok = transform_chunk(geo, cin, inp, r0, v, prow);
    for xi in 0..XI {
        for k in 0..kp {
            let a = &u[(xi * kp + k) * cin * MR..(xi * kp + k + 1) * cin * MR];
            for t in 0..tp {
                let b = &v[(xi * tp + t) * cin * NR..(xi * tp + t + 1) * cin * NR];
                let o = ((xi * kp + k) * tp + t) * MR * NR;
                let tile: &mut [f32; MR * NR] =
                    (&mut m[o..o + MR * NR]).try_into().expect("one tile");
                micro_tile(cin, a, b, tile);
            }
        }
    }
    let mut mx = [[0.0f32; LANES]; XI];
    for r in 0..geo.rows.min(geo.total_rows.saturating_sub(r0)) {
        let (img, ty) = ((r0 + r) / geo.th, (r0 + r) % geo.th);
        let oy = M * ty;
        for co in 0..cout {
            let bv = bias.map_or(0.0, |b| b[co]);
            let base = (img * cout + co) * plane;
            for p in 0..geo.twp / LANES {
                let x0 = M * p * LANES;
                if x0 >= w {
                    break;
                }
                let t = (r * geo.twp) / NR + p;
                for (xi, mv) in mx.iter_mut().enumerate() {
                    let o = ((xi * kp + co / MR) * tp + t) * MR * NR + (co % MR) * NR;
                    let src: &Lanes = m[o..o + LANES].try_into().expect("16 lanes");
                    *mv = *src;
                }
                let y = output_transform(&mx);
                let out = match out {
                    Dest::Full(out) => out,
                    Dest::Pooled(out, arg) => {
                        let pooled = (img * cout + co) * (geo.h / 2) * (w / 2);
                        pool_tile(geo, &y, bv, (pooled, oy, x0), out, arg);
                        continue;
                    }
                };
                let cols = (w - x0).min(M * LANES);
                for (i, yi) in y.iter().enumerate() {
                    if oy + i >= geo.h {
                        break;
                    }
                    // Safety: rows (img, co, oy + i) belong to this chunk's tile rows,
                    // which no other part touches; columns x0 .. x0 + cols lie inside.
                    let dst = unsafe { out.range(base + (oy + i) * w + x0, cols) };
                    let floor = if relu { 0.0 } else { f32::NEG_INFINITY };
                    if let Ok(dst) = <&mut [f32; M * LANES]>::try_from(&mut *dst) {
                        for l in 0..LANES {
                            for (j, yj) in yi.iter().enumerate() {
                                dst[M * l + j] = (yj[l] + bv).max(floor);
                            }
                        }
                    } else {
                        for (k, d) in dst.iter_mut().enumerate() {
                            *d = (yi[k % M][k / M] + bv).max(floor);
                        }
                    }
                }
            }
        }
    }
    ok
}

/// [`pass_chunk`] compiled for AVX2 (the transforms' 16-lane loops become 256-bit ops).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn pass_chunk_avx2(
    geo: &Geo,
    ch: (usize, usize),
    chunk: usize,
    inp: Dy<'_>,
    u: &[f32],
    bias: (Option<&[f32]>, bool),
    out: Dest<'_>,
    bufs: (&mut [f32], &mut [f32], &mut [f32]),
) -> bool {
    pass_chunk(geo, ch, chunk, inp, u, bias, out, bufs)
}

/// A forward-style Winograd pass: `out [n, cout, h, w] = conv3×3(inp [n, cin, h, w])`
/// with transformed, packed weights `u` (see [`weight_transform`]) and an optional
/// bias; `scratch` holds `parts` blocks of [`fwd_part_len`] floats. `inp` may be a
/// pooled gradient, expanded row by row ([`Dy::Pooled`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn pass(
    n: usize,
    (cin, cout, h, w): (usize, usize, usize, usize),
    inp: Dy<'_>,
    u: &[f32],
    bias: (Option<&[f32]>, bool),
    (out, arg, pooled): (&mut [f32], Option<&mut [u32]>, bool),
    scratch: &mut [f32],
    g: &mut Gemm<'_>,
) -> Result<()> {
    let geo = Geo::new(n, h, w, CHUNK_FWD);
    let parts = g.parts().min(geo.chunks()).max(1);
    let part_len = fwd_part_len(&geo, cin, cout);
    check_min_len("winograd workspace", scratch.len(), parts * part_len)?;
    let tiles = geo.tiles();
    let (out_s, arg_s) = (SharedMut::new(out), arg.map(SharedMut::new));
    let dest = if pooled {
        Dest::Pooled(&out_s, arg_s.as_ref())
    } else {
        Dest::Full(&out_s)
    };
    let scr = SharedMut::new(scratch);
    let chunks = geo.chunks();
    let avx = crate::train::kernels::avx2_fma();
    let outside = std::sync::atomic::AtomicBool::new(false);
    g.run_parts(parts, &|part| {
        // Safety: each part takes its own scratch block.
        let s = unsafe { scr.range(part * part_len, part_len) };
        let (v, rest) = s.split_at_mut(XI * cin * tiles);
        let (m, prow) = rest.split_at_mut(XI * panels(cout) * MR * tiles);
        for chunk in chunks * part / parts..chunks * (part + 1) / parts {
            let bufs = (&mut *v, &mut *m, &mut *prow);
            #[cfg(target_arch = "x86_64")]
            let ok = if avx {
                // Safety: AVX2 and FMA were detected.
                unsafe { pass_chunk_avx2(&geo, (cin, cout), chunk, inp, u, bias, dest, bufs) }
            } else {
                pass_chunk(&geo, (cin, cout), chunk, inp, u, bias, dest, bufs)
            };
            #[cfg(not(target_arch = "x86_64"))]
            let ok = {
                let _ = avx;
                pass_chunk(&geo, (cin, cout), chunk, inp, u, bias, dest, bufs)
            };
            if !ok {
                outside.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    argmax_inside(outside.into_inner())
}

/// Forward pass `y = conv(x, w) + b` of a 3×3 stride-1 pad-1 convolution (see
/// [`super::applies`]); `workspace` needs [`super::forward_workspace_len`] floats.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    workspace: &mut [f32],
    g: &mut Gemm<'_>,
    relu: bool,
) -> Result<()> {
    check_len("conv output", y.len(), s.n * s.c_out * s.h * s.w)?;
    forward_into(s, x, w, b, (y, None, false), relu, workspace, g)
}

/// Conv + bias + ReLU + 2×2/2 max-pool in one pass: the output transform pools its
/// 4×4 tiles straight away, so only the pooled output `[n, c_out, h/2, w/2]` and, when
/// given, its argmax (plane indices, the winners `maxpool_forward_opt` picks) are
/// written. Needs even `h` and `w`, and [`super::forward_workspace_len`] floats.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_relu_pool(
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    argmax: Option<&mut [u32]>,
    workspace: &mut [f32],
    g: &mut Gemm<'_>,
) -> Result<()> {
    crate::train::kernels::pooling::check_tiles_2x2(s.h, s.w)?;
    let pooled = s.n * s.c_out * (s.h / 2) * (s.w / 2);
    check_len("max-pool output", y.len(), pooled)?;
    if let Some(a) = &argmax {
        check_len("max-pool argmax", a.len(), pooled)?;
    }
    forward_into(s, x, w, b, (y, argmax, true), true, workspace, g)
}

/// [`forward`] / [`forward_relu_pool`] after their output checks.
#[allow(clippy::too_many_arguments)]
fn forward_into(
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    out: (&mut [f32], Option<&mut [u32]>, bool),
    relu: bool,
    workspace: &mut [f32],
    g: &mut Gemm<'_>,
) -> Result<()> {
    check_len("conv input", x.len(), s.input_len())?;
    check_len("conv weight", w.len(), s.weight_len())?;
    if let Some(b) = b {
        check_len("conv bias", b.len(), s.c_out)?;
    }
    let ulen = u_len(s.c_out, s.c_in);
    check_min_len("winograd workspace", workspace.len(), ulen)?;
    let (u, scratch) = workspace.split_at_mut(ulen);
    weight_transform(s, w, false, u);
    pass(
        s.n,
        (s.c_in, s.c_out, s.h, s.w),
        Dy::Plain(x),
        u,
        (b, relu),
        out,
        scratch,
        g,
    )
}
