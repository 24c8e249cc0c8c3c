//! The training engine's layer kernels: forward and backward passes on NCHW `f32` tensors.
//!
//! Every kernel works on plain slices with an explicit shape struct and never allocates:
//! the caller hands in outputs and workspaces (sized by the `*_workspace_len` functions),
//! so that a trainer can lay every buffer out in one arena before the first step.
//! Backward passes *overwrite* their gradient outputs (they do not accumulate). The GEMM
//! kernels take `threads`: 1 runs on the caller's thread, 0 on every rayon thread, n on n.
//!
//! Each fast kernel (convolution by im2col + the `gemm` crate, dense by `gemm`) has a
//! naive reference beside it (`*_naive`: direct nested loops), and the tests check the
//! two against each other and every backward pass against central finite differences.
//!
//! - [`conv`]: 2-D convolution (any kernel size, stride, padding, optional bias);
//! - [`depthwise`]: depthwise 2-D convolution (one filter per channel; naive loops only);
//! - [`pool`]: ReLU, max-pool (argmax kept for backward), global average pool;
//! - [`dense`]: fully connected layer and fused softmax cross-entropy.
//! - [`optim`]: SGD (momentum, Nesterov, weight decay), Adam, AdamW; gradient accumulation;
//! - [`schedule`]: learning-rate schedules (constant, step, cosine, warm-up), parsed from specs.
//! - [`plan`]: the memory planner; [`arena`]: the one allocation its buffers live in;
//! - [`trainer`]: the training loop on those buffers (forward, loss, backward, accumulation,
//!   optimizer); [`checkpoint`]: its versioned, checksummed checkpoint files.
//!
//! Flatten needs no kernel: an NCHW tensor is already `[n, c·h·w]` in memory.

pub mod arena;
pub mod checkpoint;
pub mod conv;
pub mod dense;
pub mod depthwise;
pub(crate) mod layers;
pub mod optim;
pub mod plan;
pub mod pool;
pub mod schedule;
pub mod trainer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_conv;

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

/// `dst (m×n, row-major) = [dst +] a (m×k) · b (k×n)` with the `gemm` crate.
///
/// `threads`: 1 runs on the calling thread, 0 uses every rayon thread, n uses n threads.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    a: Mat<'_>,
    b: Mat<'_>,
    threads: usize,
) -> Result<()> {
    check_len("matmul dst", dst.len(), m * n)?;
    check_len("matmul lhs", a.data.len(), m * k)?;
    check_len("matmul rhs", b.data.len(), k * n)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return Ok(());
    }
    // Element (i, p) of a lives at i·k + p, or at p·m + i when stored transposed.
    let (a_cs, a_rs) = if a.transposed { (m, 1) } else { (1, k) };
    // Element (p, j) of b lives at p·n + j, or at j·k + p when stored transposed.
    let (b_cs, b_rs) = if b.transposed { (k, 1) } else { (1, n) };
    let par = if threads == 1 {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(threads)
    };
    // Safety: the lengths were checked above, so for every i < m, j < n, p < k the
    // offsets computed from the strides (dst i·n + j; a and b as commented) are inside
    // their slices; dst is a unique borrow, so it aliases neither a nor b.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.data.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
    Ok(())
}
