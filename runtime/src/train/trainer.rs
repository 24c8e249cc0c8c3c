//! The trainer: a model spec, its memory plan and one arena, stepping micro-batches.
//!
//! [`Trainer::new`] plans the memory ([`super::program::plan::plan`]), lowers the spec
//! (the crate-private `program::Program`), allocates the one arena that holds every
//! buffer the plan lists (parameters, gradients, optimizer state, saved activations,
//! ping-pong scratch, workspace, input batch, labels) and He-initialises the parameters
//! from the seed. After that nothing is allocated: [`Trainer::step`] copies the
//! micro-batch into the arena, runs forward, the fused softmax cross-entropy, backward
//! and, at the end of an accumulation, the optimizer.
//!
//! **Gradient accumulation.** Each [`Trainer::step`] takes one micro-batch (1 to
//! `micro_batch` images). Backward *adds* the per-sample gradient sums into the gradient
//! buffer; after `accumulation_steps` micro-batches the sum is divided by the number of
//! samples seen (the mean over the whole effective batch, equal to one large batch up to
//! float rounding, also when the last micro-batch is smaller) and the optimizer updates
//! the parameters with the schedule's rate for that optimizer step. [`Trainer::flush`]
//! applies a partial accumulation (the end of an epoch). The reported loss is the mean
//! over the micro-batch.
//!
//! **Partial update.** Frozen layers keep no gradients and no optimizer state; layers
//! before the first trainable one run forward only and save nothing.

use std::path::Path;

use super::kernels::Gemm;
use super::kernels::workers::Workers;
use super::optim::{OptimizerConfig, non_finite, update};
use super::program::arena::{Arena, ArenaLayout, Region};
use super::program::plan::{MemoryPlan, Trainable, plan};
use super::program::{Program, prefix};
use super::schedule::Schedule;
use crate::error::{Error, Result};
use crate::model::onnx_write::{LayerParams, Weights, he_init};
use crate::model::spec::{InputShape, Spec};

/// How to train: batch, trainable set, optimizer, schedule, threads and seed.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerConfig {
    /// Largest number of images per [`Trainer::step`] (the arena is sized for it).
    pub micro_batch: usize,
    /// Micro-batches accumulated per optimizer update (1 = update every step).
    pub accumulation_steps: usize,
    /// Which parameters train.
    pub trainable: Trainable,
    /// Optimizer hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// Learning rate per optimizer step.
    pub schedule: Schedule,
    /// GEMM threads: 1 runs on the caller's thread, 0 on every rayon thread, n on n.
    pub threads: usize,
    /// Seed of the He initialisation.
    pub seed: u64,
}

impl TrainerConfig {
    /// SGD with momentum 0.9 at a constant rate 0.01, every layer trained, one thread.
    pub fn new(micro_batch: usize) -> Self {
        TrainerConfig {
            micro_batch,
            accumulation_steps: 1,
            trainable: Trainable::All,
            optimizer: OptimizerConfig::sgd(0.9),
            schedule: Schedule::Constant { lr: 0.01 },
            threads: 1,
            seed: 0,
        }
    }
}

/// What one [`Trainer::step`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Mean softmax cross-entropy over the micro-batch.
    pub loss: f32,
    /// Images whose arg-max logit is their label.
    pub correct: usize,
    /// Images in the micro-batch.
    pub samples: usize,
    /// The learning rate applied, when this step ended an accumulation (an update).
    pub lr: Option<f32>,
    /// Optimizer updates done so far (after this step).
    pub updates: u64,
}

/// A model being trained; see the module docs.
#[derive(Debug)]
pub struct Trainer {
    pub(crate) spec: Spec,
    pub(crate) input: InputShape,
    pub(crate) cfg: TrainerConfig,
    pub(crate) plan: MemoryPlan,
    pub(crate) prog: Program,
    pub(crate) arena: Arena,
    /// Helper threads of the GEMMs (threads − 1 of them).
    pub(crate) workers: Workers,
    /// Optimizer updates done.
    pub(crate) updates: u64,
    /// Micro-batches stepped in total.
    pub(crate) micro_steps: u64,
    /// Micro-batches and samples in the current accumulation.
    pub(crate) pending: usize,
    pub(crate) pending_samples: u64,
}

impl Trainer {
    /// Plans, lowers and allocates; parameters He-initialised from `cfg.seed`.
    pub fn new(spec: &Spec, input: InputShape, cfg: TrainerConfig) -> Result<Trainer> {
        cfg.optimizer.validate()?;
        if cfg.accumulation_steps == 0 {
            return Err(Error::Invalid(
                "accumulation steps must be at least 1".into(),
            ));
        }
        let factor = cfg.optimizer.state_per_param();
        let plan = plan(spec, input, cfg.micro_batch, factor, cfg.trainable)?;
        let prog = Program::build(spec, input, &plan, factor, cfg.threads)?;
        let arena = Arena::new(&{
            let mut l = ArenaLayout::default();
            l.push::<u8>(prog.arena_bytes);
            l
        })?;
        let workers = Workers::new(Gemm::resolve_threads(cfg.threads) - 1)?;
        let mut t = Trainer {
            spec: spec.clone(),
            input,
            cfg,
            plan,
            prog,
            arena,
            workers,
            updates: 0,
            micro_steps: 0,
            pending: 0,
            pending_samples: 0,
        };
        let w = he_init(spec, input, t.cfg.seed)?;
        t.set_weights(&w)?;
        Ok(t)
    }

    /// The memory plan the arena was laid out from.
    pub fn plan(&self) -> &MemoryPlan {
        &self.plan
    }

    /// The configuration.
    pub fn config(&self) -> &TrainerConfig {
        &self.cfg
    }

    /// The model spec.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The input shape trained at.
    pub fn input(&self) -> InputShape {
        self.input
    }

    /// Output classes (logits per image).
    pub fn classes(&self) -> usize {
        self.prog.classes
    }

    /// Bytes of the one arena: the plan's total, the GEMM packing buffers
    /// ([`super::kernels::sgemm::pack_len`] floats per thread) and 64-byte alignment
    /// padding.
    pub fn arena_bytes(&self) -> usize {
        self.arena.bytes()
    }

    /// Optimizer updates done (the schedule's position).
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Micro-batches stepped in total.
    pub fn micro_steps(&self) -> u64 {
        self.micro_steps
    }

    /// Micro-batches accumulated since the last update.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Checks a batch and copies it into the arena; returns its size.
    fn load(&mut self, x: &[f32], labels: Option<&[usize]>, n: usize) -> Result<()> {
        let cap = self.prog.batch;
        if n == 0 || n > cap {
            return Err(Error::Shape {
                what: "training batch".into(),
                expected: format!("1 to {cap} images (the micro-batch)"),
                got: format!("{n} images"),
            });
        }
        let elems = self.prog.input_elems;
        if x.len() != n * elems {
            return Err(Error::Shape {
                what: "training batch".into(),
                expected: format!("{n}×{} = {} values", self.input, n * elems),
                got: format!("{} values", x.len()),
            });
        }
        let classes = self.prog.classes;
        if let Some(labels) = labels
            && let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| l >= classes)
        {
            return Err(Error::Invalid(format!(
                "label {l} of sample {i} is outside the model's {classes} classes"
            )));
        }
        let input = self.prog.tensor(0, n);
        let lab = Region {
            offset: self.prog.labels.offset,
            bytes: n * std::mem::size_of::<usize>(),
        };
        let [xi, li] = self.arena.views([input, lab])?;
        xi.as_mut::<f32>().copy_from_slice(x);
        if let Some(labels) = labels {
            li.as_mut::<usize>().copy_from_slice(labels);
        }
        Ok(())
    }

    /// One micro-batch: forward, loss, backward, and the optimizer update when this
    /// micro-batch completes an accumulation. `x` is `n × C × H × W` (NCHW, `n` ≤ the
    /// micro-batch), `labels` has `n` class indices. A NaN or infinite loss stops with
    /// [`Error::Diverged`] naming the step, before any gradient or parameter changes; so
    /// does an update that makes a parameter non-finite (see [`Trainer::flush`]).
    pub fn step(&mut self, x: &[f32], labels: &[usize]) -> Result<StepStats> {
        let n = labels.len();
        self.load(x, Some(labels), n)?;
        self.forward(n, true)?;
        let (loss, correct) = self.loss(n)?;
        if !loss.is_finite() {
            return Err(Error::Diverged {
                step: self.updates + 1,
                micro_step: self.micro_steps + 1,
                reason: format!("the loss is {loss}"),
            });
        }
        self.backward(n)?;
        self.micro_steps += 1;
        self.pending += 1;
        self.pending_samples += n as u64;
        let lr = if self.pending >= self.cfg.accumulation_steps {
            self.flush()?
        } else {
            None
        };
        Ok(StepStats {
            loss,
            correct,
            samples: n,
            lr,
            updates: self.updates,
        })
    }

    /// Applies the accumulated gradients (mean over the samples since the last update)
    /// with the scheduled rate; returns that rate, or `None` when nothing was pending.
    ///
    /// An update that leaves a parameter (or Adam's second moment) NaN or infinite — a
    /// non-finite gradient, an overflow — is [`Error::Diverged`] naming the layer, the
    /// tensor and the gradient there; the trainer's parameters are then unusable (stop,
    /// and go back to the last checkpoint). The check rides on the update's own pass.
    pub fn flush(&mut self) -> Result<Option<f32>> {
        if self.pending == 0 {
            return Ok(None);
        }
        let lr = self.cfg.schedule.lr(self.updates);
        let inv = 1.0 / self.pending_samples as f32;
        let p = &self.prog;
        let params = Region {
            offset: p.params_r.offset + p.trainable_start * 4,
            bytes: (p.param_len - p.trainable_start) * 4,
        };
        let [params, grads, state] = self.arena.views([params, p.grads_r, p.state_r])?;
        let grads = grads.as_mut::<f32>();
        grads.iter_mut().for_each(|g| *g *= inv);
        let (params, state) = (params.as_mut::<f32>(), state.as_mut::<f32>());
        let t = self.updates + 1;
        if !update(&self.cfg.optimizer, t, params, grads, state, lr)? {
            let at = non_finite(&self.cfg.optimizer, params, state)
                .map(|(i, what, v)| (i, what, v, grads[i]));
            let reason = match at {
                Some((i, what, v, g)) => {
                    let name = self.param_name(self.prog.trainable_start + i);
                    let of = if what == "parameter" {
                        ""
                    } else {
                        "the second moment of "
                    };
                    format!("{of}{name} is {v} after the update (its gradient is {g})")
                }
                None => "the update is not finite".into(),
            };
            return Err(Error::Diverged {
                step: t,
                micro_step: self.micro_steps,
                reason,
            });
        }
        self.updates = t;
        self.pending = 0;
        self.pending_samples = 0;
        Ok(Some(lr))
    }

    /// Forward pass and loss on a batch without touching gradients (validation):
    /// mean loss and the number of correct arg-max predictions.
    pub fn evaluate(&mut self, x: &[f32], labels: &[usize]) -> Result<(f32, usize)> {
        let n = labels.len();
        self.load(x, Some(labels), n)?;
        self.forward(n, false)?;
        self.loss(n)
    }

    /// The model's outputs for `n` images (`x.len() / (C·H·W)`): probabilities when the
    /// spec ends in a softmax (as the exported ONNX model), logits otherwise; `n × classes`.
    pub fn predict(&mut self, x: &[f32]) -> Result<&[f32]> {
        let n = x.len() / self.prog.input_elems.max(1);
        self.load(x, None, n)?;
        self.forward(n, false)?;
        let c = self.prog.classes;
        let logits = self.prog.tensor(self.prog.logits, n);
        let out = prefix(self.prog.dlogits, n * c);
        let [l, o] = self.arena.views([logits, out])?;
        let (l, o) = (l.as_mut::<f32>(), o.as_mut::<f32>());
        if self.prog.softmax {
            for (row, orow) in l.chunks_exact(c).zip(o.chunks_exact_mut(c)) {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for (d, &z) in orow.iter_mut().zip(row) {
                    *d = (z - max).exp();
                    sum += *d;
                }
                orow.iter_mut().for_each(|d| *d /= sum);
            }
        } else {
            o.copy_from_slice(l);
        }
        Ok(&*self.arena.slice::<f32>(out)?)
    }

    /// Parameter `j` of the arena's parameter array, named: "layer 2 (conv) weight 17".
    pub(crate) fn param_name(&self, j: usize) -> String {
        let spec = &self.spec;
        self.prog
            .params
            .iter()
            .find_map(|s| {
                let (tensor, r) = if s.weight.contains(&j) {
                    ("weight", &s.weight)
                } else if s.bias.contains(&j) {
                    ("bias", &s.bias)
                } else {
                    return None;
                };
                Some(format!(
                    "layer {} ({}) {tensor} {}",
                    s.layer + 1,
                    spec.layers[s.layer].kind(),
                    j - r.start
                ))
            })
            .unwrap_or_else(|| format!("parameter {j}"))
    }

    /// The parameters, one entry per spec layer (for ONNX export and checkpoints).
    pub fn weights(&self) -> Result<Weights> {
        let prm = self.arena.read::<f32>(self.prog.params_r)?;
        let mut layers = vec![None; self.prog.layers];
        for s in &self.prog.params {
            layers[s.layer] = Some(LayerParams {
                weight_shape: s.weight_shape.clone(),
                weight: prm[s.weight.clone()].to_vec(),
                bias: prm[s.bias.clone()].to_vec(),
            });
        }
        Ok(Weights { layers })
    }

    /// Replaces the parameters (an `--init` model, a checkpoint); every shape must match
    /// this spec, else an error naming the first layer that differs, and every value must
    /// be finite (see [`first_non_finite`]). Optimizer state and accumulated gradients are
    /// left as they are.
    pub fn set_weights(&mut self, weights: &Weights) -> Result<()> {
        if weights.layers.len() != self.prog.layers {
            return Err(Error::Invalid(format!(
                "weights for {} layers, but {} has {}",
                weights.layers.len(),
                self.spec.name,
                self.prog.layers
            )));
        }
        for s in &self.prog.params {
            let name = format!(
                "layer {} ({})",
                s.layer + 1,
                self.spec.layers[s.layer].kind()
            );
            let Some(lp) = &weights.layers[s.layer] else {
                return Err(Error::Invalid(format!("{name}: weights missing")));
            };
            if lp.weight_shape != s.weight_shape
                || lp.weight.len() != s.weight.len()
                || lp.bias.len() != s.bias.len()
            {
                return Err(Error::Shape {
                    what: format!("{} {name} weights", self.spec.name),
                    expected: format!("{:?} + bias {}", s.weight_shape, s.bias.len()),
                    got: format!("{:?} + bias {}", lp.weight_shape, lp.bias.len()),
                });
            }
        }
        if let Some(bad) = first_non_finite(&self.spec, weights) {
            return Err(Error::Invalid(format!("{} weights: {bad}", self.spec.name)));
        }
        let prm = self.arena.slice::<f32>(self.prog.params_r)?;
        for s in &self.prog.params {
            if let Some(lp) = &weights.layers[s.layer] {
                prm[s.weight.clone()].copy_from_slice(&lp.weight);
                prm[s.bias.clone()].copy_from_slice(&lp.bias);
            }
        }
        Ok(())
    }

    /// Writes a checkpoint atomically; see [`super::checkpoint`].
    pub fn save_checkpoint(
        &self,
        path: &Path,
        progress: &super::checkpoint::Progress,
    ) -> Result<()> {
        super::checkpoint::save(self, path, progress)
    }

    /// Restores a checkpoint written by a trainer of the same model; returns the
    /// caller's progress (epoch, position, seed) stored in it.
    pub fn load_checkpoint(&mut self, path: &Path) -> Result<super::checkpoint::Progress> {
        super::checkpoint::load(self, path)
    }
}

/// The first NaN or infinite value in `weights` (one entry per layer of `spec`), named:
/// "layer 2 (conv) weight 17 is NaN"; `None` when every value is finite. For checking
/// weights that come from outside (`--init`) or go out (export).
pub fn first_non_finite(spec: &Spec, weights: &Weights) -> Option<String> {
    weights.layers.iter().enumerate().find_map(|(l, lp)| {
        let lp = lp.as_ref()?;
        let kind = spec.layers.get(l).map_or("?", |x| x.kind());
        [("weight", &lp.weight), ("bias", &lp.bias)]
            .into_iter()
            .find_map(|(tensor, v)| {
                let i = v.iter().position(|x| !x.is_finite())?;
                Some(format!("layer {} ({kind}) {tensor} {i} is {}", l + 1, v[i]))
            })
    })
}
