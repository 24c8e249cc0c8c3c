//! The training loop around a [`Trainer`]: epochs over a [`Data`] part, re-cut into the
//! plan's micro-batches; checkpoints at the end of every epoch and every
//! `checkpoint_every` optimizer steps; a stop after `max_steps` steps in all (a
//! time-boxed session, continued with [`resume`]); validation after every epoch; the
//! per-epoch metrics file; power over the training parts (tegrastats, on a Jetson); and
//! the ONNX export of the trained weights.
//!
//! [`fit`] takes everything as plain data ([`FitConfig`]) and tells an [`Observer`]
//! what happens as it happens (a progress bar, the per-epoch lines), so a program can
//! train as `edgebench train` does and show it its own way:
//!
//! ```no_run
//! # fn main() -> edgebench_runtime::Result<()> {
//! use std::path::Path;
//! use edgebench_runtime::model::zoo;
//! use edgebench_runtime::train::fit::{self, Data, FitConfig, NoObserver};
//! use edgebench_runtime::train::program::plan::{self, Trainable};
//! use edgebench_runtime::train::trainer::{Trainer, TrainerConfig};
//!
//! let zoo::ModelRef::Spec(spec) = zoo::resolve("lean")? else { unreachable!() };
//! let classes = spec.classes(spec.input)?;
//! let data = Data::open(Path::new("images/"), None, &spec, classes)?;
//! let cfg = TrainerConfig::new(32);
//! let factor = cfg.optimizer.state_per_param();
//! let split = plan::split(&spec, spec.input, 32, None, None, factor, Trainable::All)?;
//! let mut trainer = Trainer::new(&spec, spec.input, cfg)?;
//! let fit_cfg = FitConfig {
//!     export: Some("lean.onnx".into()),
//!     ..FitConfig::new(5, split)
//! };
//! let done = fit::fit(&mut trainer, &data, None, &fit_cfg, &mut NoObserver)?;
//! println!("{} steps, last loss {:?}", done.updates, done.rows.last().map(|r| r.loss));
//! # Ok(())
//! # }
//! ```

pub(crate) mod export;
pub mod feed;
pub mod metrics;
pub mod power;
pub mod setup;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::model::onnx_write::ExportSummary;
use crate::model::spec::InputShape;
use crate::train::checkpoint::Progress;
use crate::train::program::plan::Split;
use crate::train::trainer::Trainer;

pub use feed::{Batcher, Data, FeedOptions};
pub use metrics::{EpochRow, MetricsFile};
pub use power::{Monitor, TrainPower};
pub use setup::{Choices, Setup};

/// What a [`fit`] run does, as plain data (the command line's flags, resolved).
#[derive(Debug, Clone)]
pub struct FitConfig {
    /// Passes over the training data: the run ends after epoch `epochs` (1-based).
    pub epochs: u64,
    /// Where the run starts: the default for a new run, [`resume`]'s answer to go on.
    pub start: Progress,
    /// The effective batch cut into micro-batches; it must match the trainer's
    /// micro-batch and accumulation steps.
    pub split: Split,
    /// Seed of the orders, the augmentation and what the checkpoints store to continue them.
    pub seed: u64,
    /// A new seeded order every epoch.
    pub shuffle: bool,
    /// Random horizontal flips.
    pub flip: bool,
    /// Random crops of at least this fraction of the side (image sets only; 1 = none).
    pub crop_min_scale: f64,
    /// Loader worker threads for image sets (0 = all cores).
    pub workers: usize,
    /// Checkpoint file, written at the end of every epoch.
    pub checkpoint: Option<PathBuf>,
    /// Also checkpoint every N optimizer steps.
    pub checkpoint_every: Option<u64>,
    /// Stop after this many optimizer steps in all (the checkpoint written there).
    pub max_steps: Option<u64>,
    /// Per-epoch metrics, rewritten after every epoch.
    pub metrics: Option<MetricsFile>,
    /// Sample tegrastats every this many milliseconds while training (0: off).
    pub tegrastats_interval_ms: u64,
    /// Write the trained model here as ONNX at the end.
    pub export: Option<PathBuf>,
}

impl FitConfig {
    /// `epochs` of a new run at `split`: shuffled, no augmentation, seed 0, every core,
    /// no files written, tegrastats every 100 ms when there is one.
    pub fn new(epochs: u64, split: Split) -> FitConfig {
        FitConfig {
            epochs,
            start: Progress::default(),
            split,
            seed: 0,
            shuffle: true,
            flip: false,
            crop_min_scale: 1.0,
            workers: 0,
            checkpoint: None,
            checkpoint_every: None,
            max_steps: None,
            metrics: None,
            tegrastats_interval_ms: 100,
            export: None,
        }
    }

    /// Checks, before a trainer is built, that the data can feed a model at `input` the
    /// way this configuration asks (crops need an image set).
    pub fn check_data(&self, train: &Data, val: Option<&Data>, input: InputShape) -> Result<()> {
        train.check_input(input, "--data")?;
        if let Some(v) = val {
            v.check_input(input, "validation data")?;
        }
        if train.array_chw().is_some() && self.crop_min_scale < 1.0 {
            return Err(Error::Train(
                "--crop-min-scale applies to image sets; .npy inputs are fed as they are".into(),
            ));
        }
        Ok(())
    }

    /// How the training part is fed (validation: the same, in order, unaugmented).
    fn feed(&self, t: &Trainer) -> FeedOptions {
        FeedOptions {
            chunk: self.split.micro,
            shuffle: self.shuffle,
            flip: self.flip,
            crop_min_scale: self.crop_min_scale,
            seed: self.seed,
            workers: self.workers,
            input: t.input(),
            preprocess: t.spec().preprocess.clone(),
        }
    }
}

/// The running figures of an epoch's training part, after each trained micro-batch.
#[derive(Debug, Clone, Copy)]
pub struct Running {
    /// Epoch (1-based) and the run's last epoch.
    pub epoch: u64,
    pub epochs: u64,
    /// Mean loss and accuracy (0–1) over the epoch's images so far.
    pub loss: f64,
    pub acc: f64,
    /// Images trained per second so far in the epoch.
    pub images_per_s: f64,
}

/// What a caller of [`fit`] is told as the run goes (each has a do-nothing default).
pub trait Observer {
    /// Epoch `epoch` (1-based, of `epochs`) starts; `items` images will be fed.
    fn epoch_started(&mut self, _epoch: u64, _epochs: u64, _items: usize) {}
    /// A micro-batch of `images` was fed (also one a resumed epoch skips).
    fn fed(&mut self, _images: usize) {}
    /// A micro-batch was trained: the epoch's figures so far.
    fn trained(&mut self, _running: &Running) {}
    /// The epoch's training part ended (its checkpoint and validation follow), or was
    /// cut short by `max_steps`.
    fn epoch_trained(&mut self) {}
    /// The epoch finished (checkpoint written, validation done): its row.
    fn epoch_finished(&mut self, _row: &EpochRow, _epochs: u64) {}
    /// `max_steps` was reached: `steps` optimizer steps, in epoch `epoch` (1-based).
    fn stopped(&mut self, _steps: u64, _epoch: u64) {}
}

/// An [`Observer`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}

/// What a [`fit`] run did.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// Optimizer steps in all (a resumed run's earlier steps included).
    pub updates: u64,
    /// One row per epoch finished in this run.
    pub rows: Vec<EpochRow>,
    /// Power over the training parts.
    pub power: TrainPower,
    /// The `export` written.
    pub exported: Option<ExportSummary>,
}

impl Fitted {
    /// What a run shows when it ends: the export (written to `export`), power, and the
    /// optimizer steps taken in `seconds`.
    pub fn summary(&self, export: Option<&Path>, seconds: f64) -> String {
        let mut s = String::new();
        if let (Some(p), Some(sum)) = (export, &self.exported) {
            s.push_str(&format!(
                "exported {} ({} parameters, {}) to {}\n",
                sum.model,
                crate::units::thousands(sum.params),
                crate::units::bytes(sum.bytes),
                p.display()
            ));
        }
        s.push_str(&self.power.text());
        s.push_str(&format!(
            "done: {} optimizer steps in {seconds:.1} s\n",
            self.updates
        ));
        s
    }
}

/// Why feeding an epoch stopped early.
enum Halt {
    Failed(Error),
    /// `max_steps` reached: not a failure.
    MaxSteps,
}

impl From<Error> for Halt {
    fn from(e: Error) -> Self {
        Halt::Failed(e)
    }
}

/// Trains `trainer` on `train` as `cfg` says, validating on `val` after every epoch.
///
/// Errors: a diverged step (the message names the last good checkpoint), a feeding,
/// checkpoint, metrics or export failure, a `max_steps` the run is already at, or a
/// `cfg.split` that is not the trainer's.
pub fn fit(
    trainer: &mut Trainer,
    train: &Data,
    val: Option<&Data>,
    cfg: &FitConfig,
    obs: &mut dyn Observer,
) -> Result<Fitted> {
    check_split(trainer, &cfg.split)?;
    let opts = cfg.feed(trainer);
    let val_opts = FeedOptions {
        shuffle: false,
        flip: false,
        crop_min_scale: 1.0,
        ..opts.clone()
    };
    let (spec, input) = (trainer.spec().clone(), trainer.input());
    let mut rows: Vec<EpochRow> = Vec::new();
    let mut monitor = Monitor::start(cfg.tegrastats_interval_ms);
    let mut last_good: Option<(PathBuf, u64)> = None;
    let img = input.height * input.width * input.channels;
    // Training FLOPs per image: forward and a backward of about twice its cost.
    let flops_per_image = 3.0 * 2.0 * spec.macs(input)? as f64;
    if let Some(m) = cfg.max_steps.filter(|&m| trainer.updates() >= m) {
        return Err(Error::Train(format!(
            "--max-steps {m}: the run is already at step {}",
            trainer.updates()
        )));
    }
    let start = &cfg.start;
    let b = cfg.split;
    for epoch in start.epoch..cfg.epochs {
        let skip = if epoch == start.epoch {
            start.position
        } else {
            0
        };
        let t0 = Instant::now();
        obs.epoch_started(epoch + 1, cfg.epochs, train.len());
        let (mut loss_sum, mut correct, mut seen, mut cut) = (0f64, 0usize, 0usize, 0u64);
        let mut lr = None;
        let mut on_micro = |x: &[f32], y: &[usize]| -> std::result::Result<(), Halt> {
            cut += 1;
            obs.fed(y.len());
            if cut <= skip {
                return Ok(());
            }
            let st = trainer.step(x, y).map_err(|e| diverged(e, &last_good))?;
            loss_sum += f64::from(st.loss) * y.len() as f64;
            correct += st.correct;
            seen += y.len();
            if st.lr.is_some() {
                lr = st.lr;
                if let (Some(ck), Some(every)) = (&cfg.checkpoint, cfg.checkpoint_every)
                    && st.updates % every == 0
                {
                    save(trainer, ck, epoch, cut, cfg.seed)?;
                    last_good = Some((ck.clone(), st.updates));
                }
                if cfg.max_steps.is_some_and(|m| st.updates >= m) {
                    if let Some(ck) = &cfg.checkpoint {
                        save(trainer, ck, epoch, cut, cfg.seed)?;
                    }
                    return Err(Halt::MaxSteps);
                }
            }
            obs.trained(&Running {
                epoch: epoch + 1,
                epochs: cfg.epochs,
                loss: loss_sum / seen.max(1) as f64,
                acc: correct as f64 / seen.max(1) as f64,
                images_per_s: seen as f64 / t0.elapsed().as_secs_f64().max(1e-9),
            });
            Ok(())
        };
        let mut batcher = Batcher::new(img, b.micro, b.steps, b.last);
        let fed = train
            .epoch(epoch, &opts, &mut |x, y| batcher.push(x, y, &mut on_micro))
            .and_then(|()| batcher.finish(&mut on_micro));
        match fed {
            Ok(()) => {}
            Err(Halt::MaxSteps) => {
                monitor.record(t0, Instant::now(), seen as u64);
                obs.epoch_trained();
                obs.stopped(trainer.updates(), epoch + 1);
                break;
            }
            Err(Halt::Failed(e)) => return Err(e),
        }
        if let Some(r) = trainer.flush().map_err(|e| diverged(e, &last_good))? {
            lr = Some(r);
        }
        let ended = Instant::now();
        let train_secs = ended.duration_since(t0).as_secs_f64();
        monitor.record(t0, ended, seen as u64);
        obs.epoch_trained();
        if let Some(ck) = &cfg.checkpoint {
            save(trainer, ck, epoch + 1, 0, cfg.seed)?;
            last_good = Some((ck.clone(), trainer.updates()));
        }
        let (val_loss, val_acc) = match val {
            Some(v) => {
                let (l, c) = evaluate(trainer, v, &val_opts)?;
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        let row = EpochRow {
            epoch: epoch + 1,
            steps: trainer.updates(),
            loss: loss_sum / seen.max(1) as f64,
            acc: correct as f64 / seen.max(1) as f64,
            val_loss,
            val_acc,
            images_per_s: seen as f64 / train_secs.max(1e-9),
            gflops: seen as f64 * flops_per_image / train_secs.max(1e-9) / 1e9,
            // The f32 rate as written (0.01, not 0.009999999776…).
            lr: lr.map(|v| v.to_string().parse().unwrap_or(f64::from(v))),
            seconds: train_secs,
        };
        obs.epoch_finished(&row, cfg.epochs);
        rows.push(row);
        if let Some(m) = &cfg.metrics {
            m.write(&spec.name, &rows, None)?;
        }
    }
    let power = monitor.finish();
    if let Some(m) = cfg
        .metrics
        .as_ref()
        .filter(|m| m.format == metrics::Format::Json)
    {
        m.write(&spec.name, &rows, Some(&power))?;
    }
    let exported = match &cfg.export {
        Some(p) => Some(export::export(
            trainer,
            &spec,
            input,
            p,
            cfg.checkpoint.as_deref(),
        )?),
        None => None,
    };
    Ok(Fitted {
        updates: trainer.updates(),
        rows,
        power,
        exported,
    })
}

/// Restores the checkpoint `path` into `trainer` and returns where its run stopped; a
/// checkpoint written with another seed is refused (its orders would not continue).
pub fn resume(trainer: &mut Trainer, path: &Path, seed: u64) -> Result<Progress> {
    let start = trainer.load_checkpoint(path)?;
    let stored = start
        .seed
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes);
    if stored != Some(seed) {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            reason: format!(
                "was written with --seed {}, this run has --seed {seed}",
                stored.map_or("?".into(), |s| s.to_string()),
            ),
        });
    }
    Ok(start)
}

/// An existing `checkpoint` holds a run's progress: refused (before any work) unless it
/// is the `resume` file or `overwrite` is given. Missing files, empty files and devices
/// are not refused.
pub fn check_checkpoint(
    checkpoint: Option<&Path>,
    resume: Option<&Path>,
    overwrite: bool,
) -> Result<()> {
    let Some(ck) = checkpoint else {
        return Ok(());
    };
    let Ok(m) = std::fs::metadata(ck) else {
        return Ok(());
    };
    if overwrite || !m.is_file() || m.len() == 0 {
        return Ok(());
    }
    use std::os::unix::fs::MetadataExt;
    let id = (m.dev(), m.ino());
    let resumed = resume.and_then(|r| std::fs::metadata(r).ok());
    if resumed.is_some_and(|r| (r.dev(), r.ino()) == id) {
        return Ok(());
    }
    let ck = ck.display();
    let how = match resume {
        Some(r) => format!(
            "this run continues {} instead; pass --overwrite-checkpoint to replace {ck} with it",
            r.display()
        ),
        None => format!(
            "continue its run with --resume {ck} --checkpoint {ck}, or pass --overwrite-checkpoint to start over and replace it"
        ),
    };
    Err(Error::Invalid(format!(
        "--checkpoint {ck} already exists; {how}"
    )))
}

/// The split must be the one the trainer was built for.
fn check_split(t: &Trainer, s: &Split) -> Result<()> {
    let c = t.config();
    if s.micro != c.micro_batch
        || s.steps != c.accumulation_steps
        || s.last == 0
        || s.last > s.micro
    {
        return Err(Error::Invalid(format!(
            "the split ({} × micro-batch {}, last {}) is not the trainer's ({} × micro-batch {})",
            s.steps, s.micro, s.last, c.accumulation_steps, c.micro_batch
        )));
    }
    Ok(())
}

/// A NaN/inf loss: say so with the step, and which checkpoint is the last good one.
fn diverged(e: Error, last_good: &Option<(PathBuf, u64)>) -> Error {
    match (&e, last_good) {
        (Error::Diverged { .. }, Some((p, step))) => Error::Train(format!(
            "{e}; stopped, the last good checkpoint {} (after step {step}) is kept",
            p.display()
        )),
        (Error::Diverged { .. }, None) => {
            Error::Train(format!("{e}; stopped (no checkpoint was written)"))
        }
        _ => e,
    }
}

/// Writes the checkpoint at `position` micro-batches into 0-based `epoch`.
fn save(t: &Trainer, path: &Path, epoch: u64, position: u64, seed: u64) -> Result<()> {
    let progress = Progress {
        epoch,
        position,
        seed: seed.to_le_bytes().to_vec(),
    };
    t.save_checkpoint(path, &progress)
        .map_err(|e| e.context(format!("writing checkpoint {}", path.display())))
}

/// Mean loss and accuracy (0–1) of `trainer` over the whole of `data`, in order and
/// unaugmented, a micro-batch at a time (`workers` loader threads for image sets).
pub fn validate(trainer: &mut Trainer, data: &Data, workers: usize) -> Result<(f64, f64)> {
    let o = FeedOptions {
        chunk: trainer.config().micro_batch,
        shuffle: false,
        flip: false,
        crop_min_scale: 1.0,
        seed: 0,
        workers,
        input: trainer.input(),
        preprocess: trainer.spec().preprocess.clone(),
    };
    evaluate(trainer, data, &o)
}

/// Mean loss and accuracy over a whole data part, a micro-batch at a time.
fn evaluate(t: &mut Trainer, data: &Data, o: &FeedOptions) -> Result<(f64, f64)> {
    let (mut loss, mut correct, mut n) = (0f64, 0usize, 0usize);
    data.epoch(0, o, &mut |x, y| {
        let (l, c) = t.evaluate(x, y)?;
        loss += f64::from(l) * y.len() as f64;
        correct += c;
        n += y.len();
        Ok::<(), Error>(())
    })?;
    Ok((loss / n.max(1) as f64, correct as f64 / n.max(1) as f64))
}
