//! Shared test helpers, fast-vs-naive checks and finite-difference checks for dense,
//! ReLU, pooling and the loss.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::dense::*;
use crate::train::kernels::pooling::*;

pub(super) fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub(super) fn rand_vec(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Deterministic values in [-1, 1] from a multiplicative hash of the index (no RNG
/// state to thread through the fast-path tests).
pub(super) fn vals(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

/// The pool's side of a pooled-gradient test: a gradient for the pool output `y`
/// (argmax `arg`, shape `ps`), the same expanded to the ReLU input's gradient
/// (`maxpool_relu_backward`, `full_len` floats), and an argmax whose last window points
/// outside it.
pub(super) fn pooled_case(
    ps: PoolShape,
    y: &[f32],
    arg: &[u32],
    full_len: usize,
) -> (Vec<f32>, Vec<f32>, Vec<u32>) {
    let dy = vals(y.len(), 5);
    let mut full = vec![f32::NAN; full_len];
    maxpool_relu_backward(ps, arg, y, &dy, &mut full).unwrap();
    let mut bad = arg.to_vec();
    bad[arg.len() - 1] = (ps.h * ps.w) as u32;
    (dy, full, bad)
}

/// `got` within 2e-5 of `want`, relative to `want`'s largest magnitude (at least 1);
/// `path` names the kernel in the message.
pub(super) fn close(what: &str, got: &[f32], want: &[f32], path: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= 2e-5 * scale,
            "{what}[{i}]: {path} {a} vs naive {b} (scale {scale})"
        );
    }
}

/// Distinct values at least 0.1 apart and away from 0, shuffled: no kink (ReLU, max)
/// lies within a finite-difference step of any of them.
pub(super) fn spaced_vec(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..len)
        .map(|i| (i as f32 - len as f32 / 2.0) * 0.1 + 0.05)
        .collect();
    for i in (1..len).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
    v
}

pub(super) fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

/// `Σ a·b` in f64: the scalar "loss" whose gradient with respect to a layer's output is `b`.
pub(super) fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

/// Central finite differences of `loss` at `x` against the `analytic` gradient: each
/// entry within 2e-4·(1 + |numeric|).
///
/// Central differences are exact here but for rounding. Every loss checked is linear in
/// the perturbed values (dense, conv, depthwise and global-average-pool outputs dotted
/// with a fixed output gradient), piecewise linear with no kink within a step (ReLU and
/// max-pool on [`spaced_vec`] inputs, whose kinks are at least 0.05 away), or smooth with
/// a small third derivative (softmax cross-entropy: truncation error ε²/6·|f‴| < 1e-5 at
/// ε = 0.03). The step is the f32 values actually stored (not ε), the quotient is formed
/// in f64, and what remains is the f32 rounding of the layer's outputs (under 3e-5
/// relative in these tests). So a gradient 1% off fails for any entry above about 0.03.
pub(super) fn fd_check(
    what: &str,
    x: &[f32],
    analytic: &[f32],
    mut loss: impl FnMut(&[f32]) -> f64,
) {
    const EPS: f32 = 0.03;
    const TOL: f64 = 2e-4;
    assert_eq!(analytic.len(), x.len(), "{what}: lengths");
    let mut xp = x.to_vec();
    for (i, &a) in analytic.iter().enumerate() {
        xp[i] = x[i] + EPS;
        let (hi, up) = (f64::from(xp[i]), loss(&xp));
        xp[i] = x[i] - EPS;
        let (lo, down) = (f64::from(xp[i]), loss(&xp));
        xp[i] = x[i];
        let numeric = (up - down) / (hi - lo);
        assert!(
            (f64::from(a) - numeric).abs() <= TOL * (1.0 + numeric.abs()),
            "{what}[{i}]: analytic {a}, central difference {numeric}"
        );
    }
}

const DENSE: DenseShape = DenseShape {
    n: 2,
    inputs: 5,
    outputs: 3,
};

#[test]
fn dense_fast_matches_naive() {
    let mut r = rng(1);
    let s = DenseShape {
        n: 3,
        inputs: 7,
        outputs: 4,
    };
    let (x, w, b) = (
        rand_vec(&mut r, 21),
        rand_vec(&mut r, 28),
        rand_vec(&mut r, 4),
    );
    let dy = rand_vec(&mut r, 12);
    for bias in [None, Some(&b[..])] {
        for threads in [1, 2] {
            let (mut y1, mut y2) = (vec![0.0; 12], vec![0.0; 12]);
            dense_forward(s, &x, &w, bias, &mut y1, threads).unwrap();
            dense_forward_naive(s, &x, &w, bias, &mut y2).unwrap();
            assert_close("dense y", &y1, &y2, 1e-5);
            let mut g1 = (vec![9.0; 21], vec![9.0; 28], vec![9.0; 4]);
            let mut g2 = (vec![0.0; 21], vec![0.0; 28], vec![0.0; 4]);
            dense_backward(
                s,
                &x,
                &w,
                &dy,
                &mut g1.0,
                &mut g1.1,
                Some(&mut g1.2),
                threads,
            )
            .unwrap();
            dense_backward_naive(s, &x, &w, &dy, &mut g2.0, &mut g2.1, Some(&mut g2.2)).unwrap();
            assert_close("dense dx", &g1.0, &g2.0, 1e-5);
            assert_close("dense dw", &g1.1, &g2.1, 1e-5);
            assert_close("dense db", &g1.2, &g2.2, 1e-5);
        }
    }
}

#[test]
fn dense_gradients_match_finite_differences() {
    let mut r = rng(2);
    let s = DENSE;
    let (x, w, b, dy) = (
        rand_vec(&mut r, 10),
        rand_vec(&mut r, 15),
        rand_vec(&mut r, 3),
        rand_vec(&mut r, 6),
    );
    let (mut dx, mut dw, mut db) = (vec![0.0; 10], vec![0.0; 15], vec![0.0; 3]);
    dense_backward(s, &x, &w, &dy, &mut dx, &mut dw, Some(&mut db), 1).unwrap();
    let mut y = vec![0.0; 6];
    let mut f = |x: &[f32], w: &[f32], b: &[f32]| {
        dense_forward(s, x, w, Some(b), &mut y, 1).unwrap();
        dot(&y, &dy)
    };
    fd_check("dense dx", &x, &dx, |v| f(v, &w, &b));
    fd_check("dense dw", &w, &dw, |v| f(&x, v, &b));
    fd_check("dense db", &b, &db, |v| f(&x, &w, v));
}

#[test]
fn dense_rejects_wrong_shapes() {
    let mut y = vec![0.0; 6];
    let err = dense_forward(DENSE, &[0.0; 9], &[0.0; 15], None, &mut y, 1).unwrap_err();
    assert!(err.to_string().contains("dense input"), "{err}");
}

#[test]
fn cross_entropy_gradient_and_bad_labels() {
    let mut r = rng(3);
    let logits = rand_vec(&mut r, 8);
    let labels = [1usize, 3];
    let mut d = vec![0.0; 8];
    let loss = softmax_cross_entropy(&logits, &labels, 4, &mut d).unwrap();
    assert!(loss > 0.0 && loss.is_finite());
    let mut scratch = vec![0.0; 8];
    fd_check("cross-entropy dlogits", &logits, &d, |z| {
        f64::from(softmax_cross_entropy(z, &labels, 4, &mut scratch).unwrap())
    });
    // Uniform logits: loss ln(classes).
    let l = softmax_cross_entropy(&[0.0; 4], &[2], 4, &mut [0.0; 4]).unwrap();
    assert!((l - 4f32.ln()).abs() < 1e-6);
    let err = softmax_cross_entropy(&logits, &[1, 4], 4, &mut d).unwrap_err();
    assert!(err.to_string().contains("label 4 of sample 1"), "{err}");
}

#[test]
fn relu_gradient() {
    let mut r = rng(4);
    let x = spaced_vec(&mut r, 20);
    let dy = rand_vec(&mut r, 20);
    let mut y = vec![0.0; 20];
    relu_forward(&x, &mut y).unwrap();
    let mut dx = vec![0.0; 20];
    relu_backward(&y, &dy, &mut dx).unwrap();
    let mut yy = vec![0.0; 20];
    fd_check("relu dx", &x, &dx, |v| {
        relu_forward(v, &mut yy).unwrap();
        dot(&yy, &dy)
    });
}

#[test]
fn maxpool_and_gap_gradients() {
    let mut r = rng(5);
    for (k, stride) in [(2, 2), (3, 2), (3, 1)] {
        let s = PoolShape {
            n: 2,
            c: 3,
            h: 7,
            w: 6,
            k,
            stride,
        };
        let len = 2 * 3 * 7 * 6;
        let x = spaced_vec(&mut r, len);
        let out = s.output_len().unwrap();
        let dy = rand_vec(&mut r, out);
        let (mut y, mut arg, mut dx) = (vec![0.0; out], vec![0u32; out], vec![0.0; len]);
        maxpool_forward(s, &x, &mut y, &mut arg).unwrap();
        maxpool_backward(s, &arg, &dy, &mut dx).unwrap();
        fd_check("max-pool dx", &x, &dx, |v| {
            maxpool_forward(s, v, &mut y, &mut arg).unwrap();
            dot(&y, &dy)
        });
    }
    let bad = PoolShape {
        n: 1,
        c: 1,
        h: 2,
        w: 2,
        k: 3,
        stride: 1,
    };
    assert!(bad.output_hw().is_err());

    let x = rand_vec(&mut r, 2 * 3 * 5);
    let dy = rand_vec(&mut r, 6);
    let mut dx = vec![0.0; 30];
    gap_backward(2, 3, 5, &dy, &mut dx).unwrap();
    let mut y = vec![0.0; 6];
    fd_check("global-average-pool dx", &x, &dx, |v| {
        gap_forward(2, 3, 5, v, &mut y).unwrap();
        dot(&y, &dy)
    });
}

/// The fused max-pool + ReLU backward equals ReLU backward after max-pool backward, for
/// the tiled 2×2/2 window (even sizes) and for windows that overlap or leave edges.
#[test]
fn fused_maxpool_relu_backward_matches_the_two_steps() {
    let mut r = rng(6);
    for (h, w, k, stride) in [(8, 6, 2, 2), (7, 6, 2, 2), (7, 6, 3, 2), (6, 6, 3, 1)] {
        let s = PoolShape {
            n: 2,
            c: 3,
            h,
            w,
            k,
            stride,
        };
        let len = 2 * 3 * h * w;
        // Mostly negative, so that some windows are all zero after the ReLU.
        let x: Vec<f32> = rand_vec(&mut r, len).iter().map(|v| v - 0.6).collect();
        let mut relu = vec![0.0; len];
        relu_forward(&x, &mut relu).unwrap();
        let out = s.output_len().unwrap();
        let dy = rand_vec(&mut r, out);
        let (mut y, mut arg) = (vec![0.0; out], vec![0u32; out]);
        maxpool_forward(s, &relu, &mut y, &mut arg).unwrap();
        let (mut d_relu, mut want) = (vec![0.0; len], vec![0.0; len]);
        maxpool_backward(s, &arg, &dy, &mut d_relu).unwrap();
        relu_backward(&relu, &d_relu, &mut want).unwrap();
        let mut got = vec![f32::NAN; len];
        maxpool_relu_backward(s, &arg, &y, &dy, &mut got).unwrap();
        assert_eq!(got, want, "{h}×{w} k{k} s{stride}");
        assert!(y.iter().any(|&v| v <= 0.0), "some windows are all negative");
        arg[0] = u32::MAX;
        let err = maxpool_relu_backward(s, &arg, &y, &dy, &mut got).unwrap_err();
        assert!(err.to_string().contains("argmax"), "{err}");
    }
}
