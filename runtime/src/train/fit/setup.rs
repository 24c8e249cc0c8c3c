//! From a run's choices to what the [`Trainer`] and
//! [`fit`](super::fit) need: the spec a model name or file gives, the input shape, the
//! trainable set, the optimizer, the schedule, the effective batch split into
//! micro-batches (by `--micro-batch` or the memory budget) and the memory plan at that
//! micro-batch; [`Setup::plan_text`] is what `edgebench train --plan` prints.

use std::path::Path;

use crate::error::{Error, Result, ResultExt};
use crate::model::spec::{InputShape, Spec};
use crate::model::{onnx_read, zoo};
use crate::train::optim::OptimizerConfig;
use crate::train::program::plan::{self, MemoryPlan, Split, Trainable};
use crate::train::schedule::Schedule;
use crate::train::trainer::{Trainer, TrainerConfig, first_non_finite};
use crate::units;

use super::Data;

/// What a run asks for, before it is resolved.
#[derive(Debug, Clone)]
pub struct Choices {
    /// Input size to train at (its channels are the spec's); `None`: `array_chw`'s,
    /// else the spec's own.
    pub input_size: Option<InputShape>,
    /// The shape (C, H, W) of `.npy` training arrays, when the data are arrays.
    pub array_chw: Option<(usize, usize, usize)>,
    pub trainable: Trainable,
    pub optimizer: OptimizerConfig,
    /// Base learning rate; `None`: the optimizer's [`OptimizerConfig::default_lr`].
    pub lr: Option<f32>,
    /// A [`Schedule::parse`] text, e.g. `cosine:1000`.
    pub schedule: String,
    /// Images per optimizer step.
    pub batch: usize,
    /// Images per micro-batch; `None`: the largest that fits `memory_budget`, else the
    /// whole batch.
    pub micro_batch: Option<usize>,
    pub memory_budget: Option<u64>,
}

/// A run's choices, resolved.
#[derive(Debug, Clone)]
pub struct Setup {
    pub spec: Spec,
    pub input: InputShape,
    pub classes: usize,
    pub trainable: Trainable,
    pub optimizer: OptimizerConfig,
    pub schedule: Schedule,
    pub split: Split,
    /// The memory plan at `split.micro`.
    pub plan: MemoryPlan,
    pub memory_budget: Option<u64>,
}

/// The spec `model` names: a built-in name or a spec `.toml` (an ONNX file is not a
/// trainable spec: its weights come in with `--init`).
pub fn load_spec(model: &str) -> Result<Spec> {
    match zoo::resolve(model)? {
        zoo::ModelRef::Spec(s) => Ok(s),
        zoo::ModelRef::Onnx(p) => Err(Error::Invalid(format!(
            "{}: train takes a built-in model or a spec .toml; to start from an ONNX file's weights give its spec with --model and the file with --init",
            p.display()
        ))),
    }
}

/// The input shape `spec` trains at: `size` (with the spec's channels), else the
/// arrays' own, else the spec's.
pub fn input_shape(
    spec: &Spec,
    size: Option<InputShape>,
    array_chw: Option<(usize, usize, usize)>,
) -> InputShape {
    match (size, array_chw) {
        (Some(s), _) => InputShape {
            channels: spec.input.channels,
            ..s
        },
        (None, Some((channels, height, width))) => InputShape {
            height,
            width,
            channels,
        },
        (None, None) => spec.input,
    }
}

impl Setup {
    /// Resolve `choices` for `spec`: checks the optimizer and the schedule, splits the
    /// batch and plans the memory of one step.
    pub fn resolve(spec: Spec, choices: &Choices) -> Result<Setup> {
        let input = input_shape(&spec, choices.input_size, choices.array_chw);
        let classes = spec.classes(input)?;
        let optimizer = choices.optimizer;
        optimizer.validate()?;
        let lr = choices.lr.unwrap_or(optimizer.default_lr());
        let schedule = Schedule::parse(&choices.schedule, lr)?;
        let factor = optimizer.state_per_param();
        let split = plan::split(
            &spec,
            input,
            choices.batch,
            choices.micro_batch,
            choices.memory_budget,
            factor,
            choices.trainable,
        )?;
        let plan = plan::plan(&spec, input, split.micro, factor, choices.trainable)?;
        Ok(Setup {
            spec,
            input,
            classes,
            trainable: choices.trainable,
            optimizer,
            schedule,
            split,
            plan,
            memory_budget: choices.memory_budget,
        })
    }

    /// A trainer for this setup on `threads` compute threads (0 = all cores), its
    /// weights He-initialised from `seed`, or read from `init`: an ONNX file of the same
    /// architecture (fine-tuning), whose weights must all be finite.
    pub fn trainer(&self, threads: usize, seed: u64, init: Option<&Path>) -> Result<Trainer> {
        let cfg = TrainerConfig {
            micro_batch: self.split.micro,
            accumulation_steps: self.split.steps,
            trainable: self.trainable,
            optimizer: self.optimizer,
            schedule: self.schedule.clone(),
            threads,
            seed,
        };
        let mut trainer = Trainer::new(&self.spec, self.input, cfg)?;
        if let Some(init) = init {
            let w = onnx_read::read_weights(init, &self.spec, self.input)
                .context(|| format!("--init {}", init.display()))?;
            if let Some(bad) = first_non_finite(&self.spec, &w) {
                return Err(Error::Input {
                    path: init.to_path_buf(),
                    reason: format!("non-finite weights: {bad}"),
                }
                .context("--init"));
            }
            trainer.set_weights(&w)?;
        }
        Ok(trainer)
    }

    /// What a run shows before it trains: the model, input and data; the batch split,
    /// trainable set, optimizer, arena and kernels; and the GEMM peak that `edgebench hw`
    /// measured here, when it has (never measured during training: it would take the
    /// cores), for the epochs' GFLOP/s to be read against.
    pub fn header(&self, trainer: &Trainer, train: &Data, val: Option<&Data>) -> String {
        let b = &self.split;
        let kernels = crate::simd::active().name();
        let mut s = format!(
            "training {} at {} on {}{}\n",
            self.spec.name,
            self.input,
            train.describe(),
            val.map(|v| format!("; validation: {}", v.describe()))
                .unwrap_or_default()
        );
        s.push_str(&format!(
            "batch {} = {} × micro-batch {}; {} trainable; {}; arena {}; kernels {kernels}\n",
            b.effective,
            b.steps,
            b.micro,
            self.trainable,
            self.optimizer,
            units::bytes(trainer.arena_bytes() as u64),
        ));
        if let Some(p) = crate::bench::hw::cached_peak() {
            let own = match (p.own_gflops, p.own_kernels.as_deref()) {
                (Some(g), Some(k)) if k == kernels => format!(", edgebench's sgemm {g:.1} on {k}"),
                _ => String::new(),
            };
            s.push_str(&format!(
                "GEMM peak here: {:.1} GFLOP/s fp32{own} (edgebench hw)\n",
                p.gflops
            ));
        }
        s
    }

    /// The memory plan (every buffer, per layer), the batch split and, with a budget,
    /// how much of it the plan takes.
    pub fn plan_text(&self) -> String {
        let (b, plan) = (&self.split, &self.plan);
        let mut out = plan.to_table();
        let split = if b.steps == 1 {
            format!("effective batch {} in one micro-batch", b.effective)
        } else if b.last == b.micro {
            format!(
                "effective batch {} = {} micro-batches of {} (gradients accumulated)",
                b.effective, b.steps, b.micro
            )
        } else {
            format!(
                "effective batch {} = {} micro-batches of {} and one of {} (gradients accumulated)",
                b.effective,
                b.steps - 1,
                b.micro,
                b.last
            )
        };
        out.push_str(&format!("\n{split}\n"));
        if let (Some(budget), Some(max)) = (self.memory_budget, b.max_micro) {
            out.push_str(&format!(
                "memory budget {}: the largest micro-batch that fits is {max}; this plan needs {} ({:.0}% of the budget)\n",
                units::bytes(budget),
                units::bytes(plan.total()),
                100.0 * plan.total() as f64 / budget.max(1) as f64
            ));
        }
        out
    }
}
