//! The layer kernels: forward and backward passes on NCHW `f32` tensors, and the GEMM
//! they run on.
//!
//! Every kernel works on plain slices with an explicit shape struct: the caller hands in
//! outputs and workspaces (sized by the `*_workspace_len` functions), so that a trainer
//! can lay every buffer out in one arena before the first step. Backward passes
//! *overwrite* their gradient outputs; the `*_hw`/`*_into` variants the trainer uses can
//! add to them instead (gradient accumulation) and skip the ones not needed. The GEMM
//! kernels take `threads` (1 runs on the caller's thread, 0 on every rayon thread, n on
//! n) and allocate a packing buffer per call; their `*_hw`/`*_with`/`*_into` variants take
//! a [`Gemm`] with the caller's packing buffer and allocate nothing.
//!
//! Each fast kernel (convolution by Winograd, a direct 3×3 path or im2col + GEMM; dense
//! by GEMM; the GEMM is our own [`sgemm`], which packs into caller-provided buffers and
//! so never allocates) has a naive reference beside it (`*_naive`: direct nested loops),
//! and the tests check the two against each other and every backward pass against
//! central finite differences.
//!
//! - [`sgemm`]: the single-precision GEMM (packing, AVX2/FMA micro-kernel, threads);
//! - [`conv`]: 2-D convolution (any kernel size, stride, padding, optional bias), its
//!   algorithm chosen per shape (`conv::ConvAlgo`);
//! - [`depthwise`]: depthwise 2-D convolution (one filter per channel; naive loops only);
//! - [`pooling`]: ReLU, max-pool (argmax kept for backward), global average pool;
//! - [`dense`]: fully connected layer and fused softmax cross-entropy;
//! - [`workers`]: the helper threads a pass is split over (no allocation per call).
//!
//! Flatten needs no kernel: an NCHW tensor is already `[n, c·h·w]` in memory.

pub mod conv;
pub mod dense;
pub mod depthwise;
pub mod pooling;
pub mod sgemm;
pub mod workers;

#[cfg(test)]
mod tests;

use crate::error::{Error, Result};

/// Checks that buffer `what` holds exactly `expected` elements.
pub(crate) fn check_len(what: &str, got: usize, expected: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::Shape {
            what: what.to_string(),
            expected: format!("{expected} elements"),
            got: format!("{got} elements"),
        })
    }
}

/// Checks that buffer `what` holds at least `expected` elements (workspaces).
pub(crate) fn check_min_len(what: &str, got: usize, expected: usize) -> Result<()> {
    if got >= expected {
        Ok(())
    } else {
        Err(Error::Shape {
            what: what.to_string(),
            expected: format!("at least {expected} elements"),
            got: format!("{got} elements"),
        })
    }
}

/// A row-major matrix operand of [`matmul`]: `data` holds `rows × cols` when not
/// transposed, or the transpose (`cols × rows`, row-major) when `transposed`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub transposed: bool,
}

/// What a GEMM runs with: threads (1 = the caller's thread, 0 = every rayon thread,
/// n = n threads) and a packing buffer of [`Gemm::pack_len`] floats for them.
#[derive(Debug)]
pub struct Gemm<'a> {
    /// Threads, as above.
    pub threads: usize,
    /// Packing buffer (the trainer's lives in its arena).
    pub pack: &'a mut [f32],
    /// Helper threads to run on instead of rayon's pool (the trainer's own).
    pub workers: Option<&'a workers::Workers>,
}

impl Gemm<'_> {
    /// Threads that `threads` means (0 → rayon's pool size).
    pub fn resolve_threads(threads: usize) -> usize {
        if threads == 0 {
            rayon::current_num_threads().max(1)
        } else {
            threads
        }
    }

    /// Packing floats `threads` threads need.
    pub fn pack_len(threads: usize) -> usize {
        Self::resolve_threads(threads) * sgemm::pack_len()
    }
}

impl Gemm<'_> {
    /// Threads a pass split into parts runs on: the helper threads and the caller, or
    /// rayon's pool.
    pub(crate) fn parts(&self) -> usize {
        match self.workers {
            Some(w) => w.threads(),
            None => Self::resolve_threads(self.threads),
        }
    }

    /// Runs `f(part)` for `parts` parts (at most [`Gemm::parts`]) on the helper threads,
    /// or on rayon's pool without them.
    pub(crate) fn run_parts(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        match self.workers {
            Some(w) => w.run(parts, f),
            None if parts > 1 => {
                use rayon::prelude::*;
                (0..parts).into_par_iter().for_each(f);
            }
            None => f(0),
        }
    }
}

/// Whether the kernels take their AVX2 + FMA bodies: the process's path
/// ([`crate::simd::active`]) is `avx2`, which it is only where the CPU has both.
pub(crate) fn avx2_fma() -> bool {
    crate::simd::active() == crate::simd::Simd::Avx2
}

/// Whether the kernels take their hand-written bodies (each kernel file's `simd` module,
/// one per architecture with the same functions): NEON on AArch64. (On x86-64 the callers
/// take the AVX2-compiled twin of the whole loop instead, which calls them.)
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn intrinsics() -> bool {
    matches!(
        crate::simd::active(),
        crate::simd::Simd::Avx2 | crate::simd::Simd::Neon
    )
}

/// A packing buffer for the stand-alone kernels that take a thread count (allocated per
/// call; the trainer passes its own [`Gemm`] instead).
pub(crate) fn pack_for(threads: usize) -> Vec<f32> {
    vec![0.0; Gemm::pack_len(threads)]
}

impl<'a> Gemm<'a> {
    /// The GEMM of a stand-alone kernel that takes a thread count: `threads` on rayon's
    /// pool, packing into `pack` (from [`pack_for`]).
    pub(crate) fn alone(threads: usize, pack: &'a mut [f32]) -> Self {
        Gemm {
            threads,
            pack,
            workers: None,
        }
    }
}

/// `dst (m×n, row-major) = [dst +] a (m×k) · b (k×n)` with [`sgemm`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    a: Mat<'_>,
    b: Mat<'_>,
    g: &mut Gemm<'_>,
) -> Result<()> {
    check_len("matmul dst", dst.len(), m * n)?;
    check_len("matmul lhs", a.data.len(), m * k)?;
    check_len("matmul rhs", b.data.len(), k * n)?;
    let threads = Gemm::resolve_threads(g.threads);
    sgemm::sgemm(
        m,
        n,
        k,
        sgemm::Operand::new(a.data, k, m, a.transposed),
        sgemm::Operand::new(b.data, n, k, b.transposed),
        dst,
        n,
        accumulate,
        g.pack,
        threads,
        g.workers,
    )
}
