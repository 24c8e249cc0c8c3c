//! Tests of the optimizers: SGD (momentum, Nesterov, weight decay), Adam and AdamW
//! against hand-computed steps, gradient accumulation against the full batch, bad
//! inputs, non-finite updates and the state layout of checkpoints.

use super::*;
use crate::train::kernels::dense::{
    DenseShape, dense_backward, dense_forward, softmax_cross_entropy,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "element {i}: got {g}, want {w}");
    }
}

/// Runs `steps` updates with the constant gradient `g` and returns each iterate.
fn run(config: OptimizerConfig, p0: &[f32], grads: &[&[f32]], lr: f32) -> Vec<Vec<f32>> {
    let mut opt = Optimizer::new(config, p0.len()).unwrap();
    let mut p = p0.to_vec();
    grads
        .iter()
        .map(|g| {
            opt.step(&mut p, g, lr).unwrap();
            p.clone()
        })
        .collect()
}

const P0: [f32; 2] = [1.0, -2.0];
const G: [f32; 2] = [0.5, 1.0];

#[test]
fn sgd_momentum_matches_hand_computation() {
    // μ = 0.9, lr = 0.1, g = [0.5, 1] every step.
    // 1: b = g = [0.5, 1];                 p = [1 − 0.05, −2 − 0.1]    = [0.95, −2.1]
    // 2: b = 0.9b + g = [0.95, 1.9];       p = [0.95 − 0.095, −2.1 − 0.19] = [0.855, −2.29]
    // 3: b = 0.9b + g = [1.355, 2.71];     p = [0.855 − 0.1355, −2.29 − 0.271] = [0.7195, −2.561]
    let it = run(OptimizerConfig::sgd(0.9), &P0, &[&G, &G, &G], 0.1);
    close(&it[0], &[0.95, -2.1], 1e-6);
    close(&it[1], &[0.855, -2.29], 1e-6);
    close(&it[2], &[0.7195, -2.561], 1e-6);
}

#[test]
fn sgd_nesterov_matches_hand_computation_and_differs_from_momentum() {
    let cfg = OptimizerConfig::Sgd {
        momentum: 0.9,
        nesterov: true,
        weight_decay: 0.0,
    };
    // 1: b = g; d = g + 0.9b = 1.9g = [0.95, 1.9];          p = [0.905, −2.19]
    // 2: b = [0.95, 1.9]; d = g + 0.9b = [1.355, 2.71];       p = [0.7695, −2.461]
    let it = run(cfg, &P0, &[&G, &G], 0.1);
    close(&it[0], &[0.905, -2.19], 1e-6);
    close(&it[1], &[0.7695, -2.461], 1e-6);
    // Plain momentum moves less on the first step (d = b = g).
    let plain = run(OptimizerConfig::sgd(0.9), &P0, &[&G, &G], 0.1);
    assert!(it[0][0] < plain[0][0] && it[1][0] < plain[1][0]);
    // Under a constant gradient Nesterov's direction g + μb_k is plain momentum's
    // next buffer b_{k+1}: the first Nesterov step is 1.9× the first plain step.
    let ns = P0[0] - it[0][0];
    let ps = P0[0] - plain[0][0];
    assert!((ns / ps - 1.9).abs() < 1e-5);
}

#[test]
fn sgd_weight_decay_shrinks_params_with_zero_grads() {
    let zero = [0.0f32; 2];
    // No momentum, wd = 0.1, lr = 0.5: p ← p − 0.5·0.1·p = 0.95p.
    let cfg = OptimizerConfig::Sgd {
        momentum: 0.0,
        nesterov: false,
        weight_decay: 0.1,
    };
    let it = run(cfg, &P0, &[&zero], 0.5);
    close(&it[0], &[0.95, -1.9], 1e-6);
    // Momentum 0.9: 1: b = 0.1p = [0.1, −0.2], p = [0.95, −1.9];
    // 2: d = 0.1p = [0.095, −0.19], b = 0.9b + d = [0.185, −0.37],
    //    p = [0.95 − 0.0925, −1.9 + 0.185] = [0.8575, −1.715].
    let cfg = OptimizerConfig::Sgd {
        momentum: 0.9,
        nesterov: false,
        weight_decay: 0.1,
    };
    let it = run(cfg, &P0, &[&zero, &zero], 0.5);
    close(&it[0], &[0.95, -1.9], 1e-6);
    close(&it[1], &[0.8575, -1.715], 1e-6);
}

#[test]
fn adam_matches_hand_computation() {
    // β = (0.9, 0.999), ε = 1e-8, lr = 0.1; grads [0.5, 1], [−0.5, 0.25], [0.2, −1].
    // 1: m = 0.1g = [0.05, 0.1], v = 0.001g² = [2.5e-4, 1e-3]; m̂ = g, √v̂ = |g|
    //    → p = p − 0.1·sign(g) = [0.9, −2.1].
    // 2: m = [−0.005, 0.115], v = [4.9975e-4, 1.0615e-3]; bc1 = 0.19, bc2 = 0.001999
    //    m̂ = [−0.0263158, 0.6052632], √v̂ = [0.5, 0.7287078]
    //    → p = [0.9 + 0.0052632, −2.1 − 0.0830598] = [0.9052632, −2.1830598].
    // 3: m = [0.0155, 0.0035], v = [5.3925025e-4, 2.0604385e-3]; bc1 = 0.271,
    //    bc2 = 0.002997001 → m̂ = [0.0571956, 0.0129151], √v̂ = [0.4241807, 0.8291581]
    //    → p = [0.8917794, −2.1846174].
    let g2 = [-0.5f32, 0.25];
    let g3 = [0.2f32, -1.0];
    let it = run(OptimizerConfig::adam(), &P0, &[&G, &g2, &g3], 0.1);
    close(&it[0], &[0.9, -2.1], 1e-6);
    close(&it[1], &[0.905_263_2, -2.183_059_8], 2e-6);
    close(&it[2], &[0.891_779_4, -2.184_617_4], 2e-6);
}

#[test]
fn adamw_matches_hand_computation_and_differs_from_adam_only_by_decay() {
    // wd = 0.01, lr = 0.1: p ← 0.999p = [0.999, −1.998], then the Adam step of
    // −0.1·sign(g) → [0.899, −2.098].
    let it = run(OptimizerConfig::adamw(), &P0, &[&G], 0.1);
    close(&it[0], &[0.899, -2.098], 1e-6);

    // Without decay AdamW is Adam, bit for bit.
    let no_decay = OptimizerConfig::AdamW {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    let g2 = [-0.5f32, 0.25];
    let a = run(OptimizerConfig::adam(), &P0, &[&G, &g2, &G], 0.05);
    let w = run(no_decay, &P0, &[&G, &g2, &G], 0.05);
    assert_eq!(a, w);

    // With decay, AdamW = shrink by (1 − lr·wd), then Adam without decay.
    let (lr, wd) = (0.05f32, 0.2f32);
    let cfg = OptimizerConfig::AdamW {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: wd,
    };
    let mut aw = Optimizer::new(cfg, 2).unwrap();
    let mut adam = Optimizer::new(OptimizerConfig::adam(), 2).unwrap();
    let (mut p, mut q) = (P0.to_vec(), P0.to_vec());
    for g in [&G, &g2, &G] {
        aw.step(&mut p, g, lr).unwrap();
        for x in &mut q {
            *x *= 1.0 - lr * wd;
        }
        adam.step(&mut q, g, lr).unwrap();
        assert_eq!(p, q);
    }
    assert_eq!(aw.state(), adam.state());

    // Coupled L2 (Adam's weight decay) is something else: it changes the moments.
    let coupled = OptimizerConfig::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: wd,
    };
    let c = run(coupled, &P0, &[&G, &g2, &G], lr);
    assert_ne!(c[2], p);
}

#[test]
fn adam_weight_decay_shrinks_params_with_zero_grads() {
    let zero = [0.0f32; 2];
    // AdamW: m = v = 0, so only the decay acts: p = 0.999p each step.
    let it = run(OptimizerConfig::adamw(), &P0, &[&zero, &zero], 0.1);
    close(&it[0], &[0.999, -1.998], 1e-7);
    close(&it[1], &[0.998_001, -1.996_002], 1e-6);
    // Adam with coupled L2: g = wd·p points away from 0, so |p| shrinks.
    let cfg = OptimizerConfig::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
    };
    let it = run(cfg, &P0, &[&zero, &zero, &zero], 0.1);
    let mut prev = P0;
    for p in &it {
        for (a, b) in p.iter().zip(&prev) {
            assert!(a.abs() < b.abs(), "{a} vs {b}");
        }
        prev = [p[0], p[1]];
    }
}

#[test]
fn state_sizes_and_checkpoint_round_trip() {
    assert_eq!(OptimizerConfig::sgd(0.0).state_bytes(10), 0);
    assert_eq!(OptimizerConfig::sgd(0.9).state_bytes(10), 40);
    assert_eq!(OptimizerConfig::adam().state_bytes(10), 80);
    assert_eq!(OptimizerConfig::adamw().state_bytes(10), 80);

    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut v = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
    let (p0, g1, g2) = (v(6), v(6), v(6));
    let mut a = Optimizer::new(OptimizerConfig::adam(), 6).unwrap();
    let mut pa = p0.clone();
    a.step(&mut pa, &g1, 0.01).unwrap();
    // Restore into a fresh optimizer and continue: bit-identical.
    let mut b = Optimizer::new(OptimizerConfig::adam(), 6).unwrap();
    b.load_state(a.steps(), a.state()).unwrap();
    let mut pb = pa.clone();
    a.step(&mut pa, &g2, 0.01).unwrap();
    b.step(&mut pb, &g2, 0.01).unwrap();
    assert_eq!(pa, pb);
    assert_eq!(a.steps(), 2);
    assert!(b.load_state(0, &[0.0; 3]).is_err());
}

#[test]
fn bad_inputs_are_errors() {
    let mut o = Optimizer::new(OptimizerConfig::sgd(0.9), 3).unwrap();
    let mut p = [0.0f32; 3];
    assert!(matches!(
        o.step(&mut p, &[0.0; 2], 0.1),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        o.step(&mut p[..2], &[0.0; 2], 0.1),
        Err(Error::Shape { .. })
    ));
    assert!(o.step(&mut p, &[0.0; 3], f32::NAN).is_err());
    let nesterov0 = OptimizerConfig::Sgd {
        momentum: 0.0,
        nesterov: true,
        weight_decay: 0.0,
    };
    assert!(Optimizer::new(nesterov0, 3).is_err());
    assert!(Optimizer::new(OptimizerConfig::sgd(1.5), 3).is_err());
    let mut acc = GradAccumulator::new(3);
    assert!(acc.add(&[0.0; 2], 1).is_err());
    acc.add(&[1.0; 3], 2).unwrap();
    assert!(acc.mean(3).is_err());
    assert!(GradAccumulator::new(3).mean(0).is_err());
}

#[test]
fn non_finite_updates_are_diverged_naming_the_parameter() {
    let grads = [0.1, f32::NAN, f32::INFINITY];
    for cfg in [
        OptimizerConfig::sgd(0.0),
        OptimizerConfig::sgd(0.9),
        OptimizerConfig::adam(),
        OptimizerConfig::adamw(),
    ] {
        let mut o = Optimizer::new(cfg, 3).unwrap();
        let mut p = [0.5f32; 3];
        let e = o.step(&mut p, &grads, 0.1).unwrap_err();
        assert!(
            matches!(&e, Error::Diverged { step: 1, .. })
                && e.to_string()
                    .contains("parameter 1 is NaN after the update"),
            "{cfg:?}: {e}"
        );
        assert_eq!(o.steps(), 0, "{cfg:?}");
    }
    // Finite but overflowing: lr · g = 1e30 · 1e10.
    let mut o = Optimizer::new(OptimizerConfig::sgd(0.0), 2).unwrap();
    let e = o.step(&mut [0.0, 0.0], &[0.0, 1e10], 1e30).unwrap_err();
    assert!(e.to_string().contains("parameter 1 is -inf"), "{e}");
    // Adam: g² overflows v while m and p stay finite (p would never move again).
    let mut state = [0.0f32; 4];
    let mut p = [0.0f32; 2];
    let cfg = OptimizerConfig::adam();
    assert!(!update(&cfg, 1, &mut p, &[0.0, 1e30], &mut state, 0.1).unwrap());
    assert!(p.iter().all(|v| v.is_finite()), "{p:?}");
    assert_eq!(
        non_finite(&cfg, &p, &state),
        Some((1, "second moment of parameter", f32::INFINITY))
    );
    let mut state = [0.0f32; 2];
    let cfg = OptimizerConfig::sgd(0.9);
    assert!(update(&cfg, 1, &mut [1.0, 2.0], &[0.1, 0.2], &mut state, 0.1).unwrap());
}

/// Mean gradient (dw then db) of a dense layer + softmax cross-entropy on `x`.
fn dense_grads(
    x: &[f32],
    labels: &[usize],
    w: &[f32],
    b: &[f32],
    inputs: usize,
    classes: usize,
) -> Vec<f32> {
    let s = DenseShape {
        n: labels.len(),
        inputs,
        outputs: classes,
    };
    let mut y = vec![0.0; s.n * classes];
    dense_forward(s, x, w, Some(b), &mut y, 1).unwrap();
    let mut dy = vec![0.0; y.len()];
    softmax_cross_entropy(&y, labels, classes, &mut dy).unwrap();
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    let mut db = vec![0.0; b.len()];
    dense_backward(s, x, w, &dy, &mut dx, &mut dw, Some(&mut db), 1).unwrap();
    dw.extend_from_slice(&db);
    dw
}

#[test]
fn accumulated_micro_batches_equal_the_full_batch() {
    let (n, inputs, classes) = (8usize, 5usize, 3usize);
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut v =
        |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
    let (x, w, b) = (v(n * inputs), v(classes * inputs), v(classes));
    let labels: Vec<usize> = (0..n).map(|i| (i * 7 + 1) % classes).collect();
    let full = dense_grads(&x, &labels, &w, &b, inputs, classes);

    let mut acc = GradAccumulator::new(full.len());
    let mut start = 0;
    for mb in [2usize, 2, 4] {
        let g = dense_grads(
            &x[start * inputs..(start + mb) * inputs],
            &labels[start..start + mb],
            &w,
            &b,
            inputs,
            classes,
        );
        acc.add(&g, mb).unwrap();
        start += mb;
    }
    assert_eq!(acc.samples(), n);
    let mean = acc.mean(n).unwrap().to_vec();
    close(&mean, &full, 1e-5);
    // Zeroing starts a fresh batch.
    acc.zero();
    assert!(acc.grads().iter().all(|&g| g == 0.0));
}
