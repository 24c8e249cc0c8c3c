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

    /// SGD with Nesterov momentum `momentum` and no decay.
    pub fn nesterov(momentum: f32) -> Self {
        OptimizerConfig::Sgd {
            momentum,
            nesterov: true,
            weight_decay: 0.0,
        }
    }

    /// The same optimizer with weight decay `wd` (coupled or decoupled as its kind has it).
    pub fn with_weight_decay(mut self, wd: f32) -> Self {
        match &mut self {
            OptimizerConfig::Sgd { weight_decay, .. }
            | OptimizerConfig::Adam { weight_decay, .. }
            | OptimizerConfig::AdamW { weight_decay, .. } => *weight_decay = wd,
        }
        self
    }

    /// The base learning rate when none is given: 0.01 for SGD, 0.001 for Adam/AdamW.
    pub fn default_lr(&self) -> f32 {
        match self {
            OptimizerConfig::Sgd { .. } => 0.01,
            OptimizerConfig::Adam { .. } | OptimizerConfig::AdamW { .. } => 0.001,
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

/// `SGD (Nesterov) momentum 0.9 weight decay 0`, `Adam weight decay 0`, ...
impl std::fmt::Display for OptimizerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            OptimizerConfig::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => write!(
                f,
                "SGD{} momentum {momentum} weight decay {weight_decay}",
                if nesterov { " (Nesterov)" } else { "" }
            ),
            OptimizerConfig::Adam { weight_decay, .. } => {
                write!(f, "Adam weight decay {weight_decay}")
            }
            OptimizerConfig::AdamW { weight_decay, .. } => {
                write!(f, "AdamW weight decay {weight_decay}")
            }
        }
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
mod tests;
