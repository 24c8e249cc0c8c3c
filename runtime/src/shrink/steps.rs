//! One arch's work: its training setup within the target's memory, the probe of its
//! step time, one rung of training from the last rung's checkpoint, and the cost
//! estimates the schedule and the time budget use.

use std::time::Instant;

use super::space::Arch;
use super::state::{ArchState, RungResult, State, TrainPlan};
use super::{Observer, Search, ShrinkConfig};
use crate::error::{Error, Result};
use crate::model::spec::InputShape;
use crate::train::checkpoint::Progress;
use crate::train::fit::{self, Choices, Data, FitConfig, Setup};
use crate::train::program::plan::Trainable;

/// Seconds `a` needs for `steps` more optimizer steps and a validation, from its last
/// rung's pace (else its probe).
pub(super) fn rung_cost(a: &ArchState, steps: u64) -> f64 {
    let per_step = a
        .rungs
        .last()
        .map(|r| {
            let before = if r.rung == 0 {
                0
            } else {
                a.rungs.get(r.rung - 1).map_or(0, |p| p.steps)
            };
            (r.seconds - a.eval_s.unwrap_or(0.0)).max(0.0) / (r.steps - before).max(1) as f64
        })
        .or(a.step_s)
        .unwrap_or(0.0);
    per_step * steps as f64 + a.eval_s.unwrap_or(0.0)
}

/// Seconds kept for the end: exporting and the final comparison (about two
/// measurements of an arch).
pub(super) fn final_reserve(st: &State) -> f64 {
    2.0 * st
        .arches
        .iter()
        .filter_map(|a| a.measure_s)
        .fold(0.0, f64::max)
        + 5.0
}

pub(super) fn is_divergence(e: &Error) -> bool {
    matches!(e.root(), Error::Diverged { .. })
        || matches!(e.root(), Error::Train(m) if m.starts_with("training diverged"))
}

/// The setup of `a` at the search's batch, within the target's memory.
pub(super) fn setup(cfg: &ShrinkConfig, a: &Arch) -> Result<Setup> {
    let choices = Choices {
        input_size: Some(InputShape {
            height: a.size,
            width: a.size,
            channels: a.spec.input.channels,
        }),
        array_chw: None,
        trainable: Trainable::All,
        optimizer: cfg.optimizer,
        lr: cfg.lr,
        schedule: "constant".into(),
        batch: cfg.batch,
        micro_batch: None,
        memory_budget: cfg.budget.memory_bytes,
    };
    Setup::resolve(a.spec.clone(), &choices)
}

/// `a`'s training plan, seconds per optimizer step and per validation pass of
/// `val_len` images (timed on a throw-away trainer: one warm-up step, two timed).
pub(super) fn probe(cfg: &ShrinkConfig, a: &Arch, val_len: usize) -> Result<(TrainPlan, f64, f64)> {
    let su = setup(cfg, a)?;
    let plan = TrainPlan {
        micro_batch: su.split.micro,
        accumulation_steps: su.split.steps,
        bytes: su.plan.total(),
    };
    let mut t = su.trainer(cfg.threads, cfg.seed, None)?;
    let micro = su.split.micro;
    // A fixed pseudo-random batch in [0, 1).
    let x = crate::tensor_io::seeded_input(&su.input.nchw(micro), cfg.seed)
        .map_err(|e| Error::Train(format!("{}: {e}", a.name)))?
        .into_raw_vec_and_offset()
        .0;
    let y: Vec<usize> = (0..micro).map(|i| i % su.classes).collect();
    t.step(&x, &y)?;
    let t0 = Instant::now();
    for _ in 0..2 {
        t.step(&x, &y)?;
    }
    let micro_s = t0.elapsed().as_secs_f64() / 2.0;
    let t0 = Instant::now();
    t.evaluate(&x, &y)?;
    let eval_micro_s = t0.elapsed().as_secs_f64();
    let step_s = micro_s * su.split.steps as f64;
    let eval_s = eval_micro_s * val_len.div_ceil(micro) as f64;
    Ok((plan, step_s, eval_s))
}

/// Trains `a` to `steps` optimizer steps in all (from its last rung's checkpoint) and
/// validates it.
pub(super) fn train_rung(
    s: &mut Search<'_>,
    a: &Arch,
    r: usize,
    steps: u64,
    train: &Data,
    val: &Data,
) -> Result<RungResult> {
    let cfg = s.cfg;
    let t0 = Instant::now();
    let su = setup(cfg, a)?;
    let mut trainer = su.trainer(cfg.threads, cfg.seed, None)?;
    let i = s.idx(&a.name);
    let start = match s.st.arches[i].rungs.last() {
        Some(prev) => fit::resume(&mut trainer, &cfg.out.join(&prev.checkpoint), cfg.seed)?,
        None => Progress::default(),
    };
    let ckdir = cfg.out.join("checkpoints");
    std::fs::create_dir_all(&ckdir).map_err(|e| Error::io(&ckdir, e))?;
    let rel = format!("checkpoints/{}.rung{}.ckpt", a.name, r + 1);
    let fc = FitConfig {
        start,
        seed: cfg.seed,
        workers: cfg.workers,
        checkpoint: Some(cfg.out.join(&rel)),
        max_steps: Some(steps),
        tegrastats_interval_ms: 0,
        ..FitConfig::new(steps, su.split)
    };
    let before = trainer.updates();
    let mut shown = RungShown {
        what: format!("{} rung {}", a.name, r + 1),
        done: 0,
        total: (steps - before) * cfg.batch as u64,
        obs: &mut *s.obs,
    };
    fit::fit(&mut trainer, train, None, &fc, &mut shown)?;
    let (val_loss, val_acc) = fit::validate(&mut trainer, val, cfg.workers)?;
    if !val_loss.is_finite() {
        return Err(Error::Train(format!(
            "training diverged: the held-out loss is {val_loss}"
        )));
    }
    Ok(RungResult {
        rung: r,
        steps: trainer.updates(),
        images: trainer.updates() * cfg.batch as u64,
        val_acc,
        val_loss,
        seconds: t0.elapsed().as_secs_f64(),
        checkpoint: rel,
    })
}

/// Training progress, forwarded.
struct RungShown<'o> {
    what: String,
    done: u64,
    total: u64,
    obs: &'o mut dyn Observer,
}

impl fit::Observer for RungShown<'_> {
    fn trained(&mut self, _r: &fit::Running) {}
    fn fed(&mut self, images: usize) {
        self.done += images as u64;
        self.obs
            .progress(&self.what, self.done.min(self.total), self.total);
    }
}
