//! Optimizers over flat parameter / gradient slices, and gradient accumulation.
//!
//! An [`Optimizer`] owns its state buffers, sized once at construction from the
//! parameter count, so [`Optimizer::step`] never allocates. The update rules follow
//! PyTorch (`torch.optim.SGD` with dampening 0, `torch.optim.Adam`, `torch.optim.AdamW`):
//!
//! - **SGD**: `g ← g + wd·p`; with momentum `b ← μ·b + g` (the zero-initialised buffer
//!   makes the first step `b = g`, as in PyTorch); the update direction is `b`, or
//!   `g + μ·b` with Nesterov; `p ← p − lr·d`.
//! - **Adam**: `g ← g + wd·p` (coupled L2); `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`;
//!   `p ← p − lr/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + ε)`.
//! - **AdamW**: as Adam without the L2 term, but first `p ← p − lr·wd·p` (decoupled).
//!
//! Parameter groups (say, no decay on biases) are separate optimizer instances.
//! For checkpoints, the state is the step count ([`Optimizer::steps`]) plus the flat
//! buffer [`Optimizer::state`] (SGD: momentum; Adam: `m` then `v`).
//!
//! [`GradAccumulator`] sums micro-batch gradients weighted by their sizes, so that the
//! accumulated mean equals the gradient of the whole batch.

use super::kernels::check_len;
use crate::error::{Error, Result};

/// Hyper-parameters of an optimizer (the learning rate comes from the schedule).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerConfig {
    /// Stochastic gradient descent, optionally with (Nesterov) momentum.
    Sgd {
        /// Momentum factor μ (0 = plain SGD, no state).
        momentum: f32,
        /// Nesterov momentum (needs `momentum > 0`).
        nesterov: bool,
        /// Coupled L2 weight decay, added to the gradient.
        weight_decay: f32,
    },
    /// Adam with coupled L2 weight decay.
    Adam {
        /// β₁ (first-moment decay).
        beta1: f32,
        /// β₂ (second-moment decay).
        beta2: f32,
        /// ε added after the square root of v̂.
        eps: f32,
        /// Coupled L2 weight decay, added to the gradient.
        weight_decay: f32,
    },
    /// Adam with decoupled weight decay.
    AdamW {
        /// β₁ (first-moment decay).
        beta1: f32,
        /// β₂ (second-moment decay).
        beta2: f32,
        /// ε added after the square root of v̂.
        eps: f32,
        /// Decoupled weight decay: `p ← p − lr·wd·p` before the Adam update.
        weight_decay: f32,
    },
}

impl OptimizerConfig {
    /// SGD with momentum `momentum` and no decay.
    pub fn sgd(momentum: f32) -> Self {
        OptimizerConfig::Sgd {
            momentum,
            nesterov: false,
            weight_decay: 0.0,
        }
    }

    /// Adam with PyTorch's defaults (β = 0.9, 0.999; ε = 1e-8; no decay).
    pub fn adam() -> Self {
        OptimizerConfig::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }

    /// AdamW with PyTorch's defaults (β = 0.9, 0.999; ε = 1e-8; decay 0.01).
    pub fn adamw() -> Self {
        OptimizerConfig::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }

    /// Number of state `f32`s kept per parameter (SGD 0 or 1, Adam/AdamW 2).
    pub fn state_per_param(&self) -> usize {
        match *self {
            OptimizerConfig::Sgd { momentum, .. } => usize::from(momentum != 0.0),
            OptimizerConfig::Adam { .. } | OptimizerConfig::AdamW { .. } => 2,
        }
    }

    /// Bytes of optimizer state for `param_count` parameters (for the memory planner).
    pub fn state_bytes(&self, param_count: usize) -> usize {
        self.state_per_param() * param_count * std::mem::size_of::<f32>()
    }

    /// Checks that every hyper-parameter is finite and in its range.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f32, range: &str| {
            Err(Error::Invalid(format!(
                "optimizer {what} = {v} is outside {range}"
            )))
        };
        match *self {
            OptimizerConfig::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => {
                if !(0.0..1.0).contains(&momentum) {
                    return bad("momentum", momentum, "[0, 1)");
                }
                if nesterov && momentum == 0.0 {
                    return Err(Error::Invalid(
                        "Nesterov momentum needs a momentum above 0".into(),
                    ));
                }
                if !(weight_decay.is_finite() && weight_decay >= 0.0) {
                    return bad("weight decay", weight_decay, "[0, ∞)");
                }
            }
            OptimizerConfig::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            }
            | OptimizerConfig::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                if !(0.0..1.0).contains(&beta1) {
                    return bad("beta1", beta1, "[0, 1)");
                }
                if !(0.0..1.0).contains(&beta2) {
                    return bad("beta2", beta2, "[0, 1)");
                }
                if !(eps.is_finite() && eps >= 0.0) {
                    return bad("eps", eps, "[0, ∞)");
                }
                if !(weight_decay.is_finite() && weight_decay >= 0.0) {
                    return bad("weight decay", weight_decay, "[0, ∞)");
                }
            }
        }
        Ok(())
    }
}

/// An optimizer for one group of `param_count` parameters.
#[derive(Debug, Clone)]
pub struct Optimizer {
    config: OptimizerConfig,
    param_count: usize,
    steps: u64,
    /// SGD: momentum buffer (or empty); Adam/AdamW: `m` then `v`.
    state: Vec<f32>,
}

impl Optimizer {
    /// Creates an optimizer for `param_count` parameters, allocating all its state.
    pub fn new(config: OptimizerConfig, param_count: usize) -> Result<Self> {
        config.validate()?;
        Ok(Optimizer {
            config,
            param_count,
            steps: 0,
            state: vec![0.0; config.state_per_param() * param_count],
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Number of parameters this optimizer updates.
    pub fn param_count(&self) -> usize {
        self.param_count
    }

    /// Number of steps taken so far (Adam's bias correction uses it).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Sets the step count (when restoring a checkpoint).
    pub fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// The state buffers (SGD: momentum; Adam: `m` then `v`), for checkpoints.
    pub fn state(&self) -> &[f32] {
        &self.state
    }

    /// The state buffers, writable (to restore a checkpoint).
    pub fn state_mut(&mut self) -> &mut [f32] {
        &mut self.state
    }

    /// Restores a checkpoint: step count and state buffers (length checked).
    pub fn load_state(&mut self, steps: u64, state: &[f32]) -> Result<()> {
        check_len("optimizer state", state.len(), self.state.len())?;
        self.state.copy_from_slice(state);
        self.steps = steps;
        Ok(())
    }

    /// Bytes of state held (see [`OptimizerConfig::state_bytes`]).
    pub fn state_bytes(&self) -> usize {
        self.config.state_bytes(self.param_count)
    }

    /// Clears the state and the step count (a fresh start).
    pub fn reset(&mut self) {
        self.state.fill(0.0);
        self.steps = 0;
    }

    /// One update of `params` from `grads` with learning rate `lr`. Allocates nothing
    /// (but for the error). An update that leaves a parameter or the optimizer state NaN
    /// or infinite (a non-finite gradient, an overflow) is [`Error::Diverged`] naming the
    /// first such parameter; the optimizer is not usable after it.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], lr: f32) -> Result<()> {
        check_len("optimizer parameters", params.len(), self.param_count)?;
        let t = self.steps + 1;
        let finite = update(&self.config, t, params, grads, &mut self.state, lr)?;
        if !finite {
            let reason = non_finite(&self.config, params, &self.state)
                .map(|(i, what, v)| format!("{what} {i} is {v} after the update"))
                .unwrap_or_else(|| "the update is not finite".into());
            return Err(Error::Diverged {
                step: t,
                micro_step: t,
                reason,
            });
        }
        self.steps = t;
        Ok(())
    }
}

/// One update of `params` from `grads` with learning rate `lr`, on caller-owned `state`
/// ([`OptimizerConfig::state_per_param`] × the parameters: SGD momentum, Adam `m` then
/// `v`); `t` is the 1-based number of this step (Adam's bias correction). This is
/// [`Optimizer::step`] for a trainer that keeps the state in its own arena.
///
/// Returns whether every updated parameter (and Adam's second moment, which can overflow
/// alone) is finite: checked in the same pass over values already in registers, so a
/// NaN or infinite gradient is caught at each update for next to nothing. A `false`
/// leaves the non-finite values in place; [`non_finite`] finds the first of them.
pub fn update(
    config: &OptimizerConfig,
    t: u64,
    params: &mut [f32],
    grads: &[f32],
    state: &mut [f32],
    lr: f32,
) -> Result<bool> {
    let n = params.len();
    check_len("optimizer gradients", grads.len(), n)?;
    check_len("optimizer state", state.len(), config.state_per_param() * n)?;
    if !lr.is_finite() {
        return Err(Error::Invalid(format!("learning rate {lr} is not finite")));
    }
    let mut finite = true;
    match *config {
        OptimizerConfig::Sgd {
            momentum,
            nesterov,
            weight_decay: wd,
        } => {
            // A non-finite momentum buffer makes its parameter non-finite too.
            if momentum == 0.0 {
                for (p, &g) in params.iter_mut().zip(grads) {
                    let d = g + wd * *p;
                    *p -= lr * d;
                    finite &= p.is_finite();
                }
            } else {
                for ((p, &g), b) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
                    let d = g + wd * *p;
                    *b = momentum * *b + d;
                    let dir = if nesterov { d + momentum * *b } else { *b };
                    *p -= lr * dir;
                    finite &= p.is_finite();
                }
            }
        }
        OptimizerConfig::Adam {
            beta1,
            beta2,
            eps,
            weight_decay,
        }
        | OptimizerConfig::AdamW {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => {
            let decoupled = matches!(config, OptimizerConfig::AdamW { .. });
            // Bias corrections in f64, as PyTorch computes them in Python floats.
            let t = i32::try_from(t).unwrap_or(i32::MAX);
            let bc1 = 1.0 - f64::from(beta1).powi(t);
            let bc2_sqrt = (1.0 - f64::from(beta2).powi(t)).sqrt();
            let step_size = (f64::from(lr) / bc1) as f32;
            let bc2_sqrt = bc2_sqrt as f32;
            let (m, v) = state.split_at_mut(n);
            for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m).zip(v) {
                let g = if decoupled {
                    *p *= 1.0 - lr * weight_decay;
                    g
                } else {
                    g + weight_decay * *p
                };
                *m = beta1 * *m + (1.0 - beta1) * g;
                *v = beta2 * *v + (1.0 - beta2) * g * g;
                let denom = v.sqrt() / bc2_sqrt + eps;
                *p -= step_size * *m / denom;
                // An infinite `v` with a finite `m` would freeze `p` silently.
                finite &= p.is_finite() & v.is_finite();
            }
        }
    }
    Ok(finite)
}

/// The first parameter that [`update`] left non-finite, or whose second moment (Adam,
/// AdamW) it did: its index, `"parameter"` or `"second moment of parameter"`, and the
/// value. Scans everything; for the error path only.
pub fn non_finite(
    config: &OptimizerConfig,
    params: &[f32],
    state: &[f32],
) -> Option<(usize, &'static str, f32)> {
    let v = match config {
        OptimizerConfig::Sgd { .. } => &[][..],
        OptimizerConfig::Adam { .. } | OptimizerConfig::AdamW { .. } => {
            state.get(params.len()..).unwrap_or(&[])
        }
    };
    let bad = |x: &f32| !x.is_finite();
    let p = params.iter().position(bad);
    let s = v.iter().position(bad);
    match (p, s) {
        (Some(i), Some(j)) if j < i => Some((j, "second moment of parameter", v[j])),
        (Some(i), _) => Some((i, "parameter", params[i])),
        (None, Some(j)) => Some((j, "second moment of parameter", v[j])),
        (None, None) => None,
    }
}

/// Accumulates micro-batch gradients into the gradient of the whole batch.
///
/// Each micro-batch gradient is the *mean* over its micro-batch (as the loss produces
/// it); [`add`](Self::add) weights it by the micro-batch size and
/// [`mean`](Self::mean) divides by the total, which equals the mean over the batch.
#[derive(Debug, Clone)]
pub struct GradAccumulator {
    sum: Vec<f32>,
    samples: usize,
}

impl GradAccumulator {
    /// An accumulator for `param_count` gradients, zeroed.
    pub fn new(param_count: usize) -> Self {
        GradAccumulator {
            sum: vec![0.0; param_count],
            samples: 0,
        }
    }

    /// Clears the sum (start of a new batch).
    pub fn zero(&mut self) {
        self.sum.fill(0.0);
        self.samples = 0;
    }

    /// Samples accumulated since the last [`zero`](Self::zero).
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// Adds the mean gradient `micro_grads` of a micro-batch of `micro_batch` samples.
    pub fn add(&mut self, micro_grads: &[f32], micro_batch: usize) -> Result<()> {
        check_len("accumulated gradients", micro_grads.len(), self.sum.len())?;
        let w = micro_batch as f32;
        for (s, &g) in self.sum.iter_mut().zip(micro_grads) {
            *s += w * g;
        }
        self.samples += micro_batch;
        Ok(())
    }

    /// Turns the sum into the batch mean (in place) and returns it. `total_batch` must
    /// equal the samples added; call [`zero`](Self::zero) before the next batch.
    pub fn mean(&mut self, total_batch: usize) -> Result<&[f32]> {
        if total_batch != self.samples || total_batch == 0 {
            return Err(Error::Shape {
                what: "gradient accumulation batch".into(),
                expected: format!("{} samples (accumulated, non-zero)", self.samples),
                got: format!("{total_batch} samples"),
            });
        }
        let inv = 1.0 / total_batch as f32;
        for s in &mut self.sum {
            *s *= inv;
        }
        self.samples = 0;
        Ok(&self.sum)
    }

    /// The current buffer (the sum, or the mean after [`mean`](Self::mean)).
    pub fn grads(&self) -> &[f32] {
        &self.sum
    }
}

#[cfg(test)]
mod tests {
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
        let mut v =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
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
}
