//! `edgebench shrink`: the most accurate member of a model family that fits a board's
//! budgets, found by measuring and training the candidates here, with the user's data.
//!
//! 1. **Space**: the base spec at every width multiplier × input size ([`space`]), each
//!    in every precision asked for.
//! 2. **Measure before training**: every candidate's p90 latency, throughput and peak
//!    memory, through [`Measure`] (in `edgebench`, [`crate::bench::compare::compare`]
//!    in worker processes, one comparison per arch); a candidate over a budget of the
//!    target is dropped with the reason, and an arch none of whose precisions fits is
//!    not trained.
//! 3. **Probe**: each remaining arch's training memory plan at the search's batch
//!    within the target's memory (an arch whose step does not fit is dropped), and the
//!    time of its training step and validation pass, for the schedule.
//! 4. **Successive halving** ([`schedule`]): every arch trains `s0` optimizer steps
//!    (same seed, same data order), is validated on the held-out set, the better half
//!    goes on to twice the steps, … until one is left or the time budget ends. Each
//!    rung continues from the last one's checkpoint.
//! 5. **The end**: the winner's weights exported to ONNX, every precision of it that
//!    fits compared with the base model on the held-out data (top-1 through the
//!    engine), the most accurate chosen (ties: the faster), the Pareto front.
//!
//! The search's state ([`state`]) is written atomically after every step; a search
//! started again with `resume` skips every finished step and continues exactly.

mod finish;
mod measure;
mod phases;
pub mod report;
pub mod schedule;
pub mod space;
pub mod state;
mod steps;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::model::spec::Spec;
use crate::report::schema::{Report, TargetBudget};
use crate::train::fit::Data;
use crate::train::optim::OptimizerConfig;
use space::{Arch, Precision, Space};
use state::{Measured, State};

pub use finish::FINAL_REPORT;
pub use measure::{CompareMeasure, MeasureSettings, budget_line, measured_line};

/// Everything a search needs.
#[derive(Debug, Clone)]
pub struct ShrinkConfig {
    /// The base spec (its name names the candidates).
    pub base: Spec,
    pub space: Space,
    /// Training data (image set, TFRecords, or `.npy` with labels) and the held-out set.
    pub train: PathBuf,
    pub labels: Option<PathBuf>,
    pub val: PathBuf,
    pub val_labels: Option<PathBuf>,
    /// The target board and its budgets.
    pub budget: TargetBudget,
    /// The whole search's time (seconds), measurement included.
    pub time_s: f64,
    /// Images each arch trains in the first rung (default: what fits `time_s`).
    pub rung_images: Option<u64>,
    /// Images per optimizer step.
    pub batch: usize,
    pub optimizer: OptimizerConfig,
    pub lr: Option<f32>,
    pub seed: u64,
    /// Training compute threads (0: all cores) and loader workers (0: all cores).
    pub threads: usize,
    pub workers: usize,
    /// Output folder: the state, spec files, checkpoints, the chosen model.
    pub out: PathBuf,
    /// Continue the search whose state is in `out`.
    pub resume: bool,
}

impl ShrinkConfig {
    /// What a resumed search must share with the one it continues.
    fn settings(&self) -> Vec<(String, String)> {
        let opt = |p: &Option<PathBuf>| p.as_ref().map_or("-".into(), |p| p.display().to_string());
        vec![
            (
                "--model".into(),
                format!(
                    "{} (spec crc32c {:08x})",
                    self.base.name,
                    crate::crc32c::crc32c(self.base.to_toml().as_bytes())
                ),
            ),
            ("space".into(), self.space.describe()),
            ("--data".into(), self.train.display().to_string()),
            ("--labels".into(), opt(&self.labels)),
            ("--val".into(), self.val.display().to_string()),
            ("--val-labels".into(), opt(&self.val_labels)),
            (
                "--target".into(),
                format!(
                    "{} (memory {:?} B, p90 {:?} ms, throughput {:?}/s)",
                    self.budget.name,
                    self.budget.memory_bytes,
                    self.budget.p90_latency_ms,
                    self.budget.min_throughput_ips
                ),
            ),
            ("--batch".into(), self.batch.to_string()),
            ("--optimizer".into(), self.optimizer.to_string()),
            ("--lr".into(), format!("{:?}", self.lr)),
            ("--seed".into(), self.seed.to_string()),
            ("--threads".into(), self.threads.to_string()),
            ("--rung-images".into(), format!("{:?}", self.rung_images)),
        ]
    }
}

/// How candidates are measured and the final models compared (in `edgebench`:
/// [`CompareMeasure`]).
pub trait Measure {
    /// Measures `spec_file` (one arch) in each of `precisions`, one result each, in order.
    fn measure(
        &mut self,
        arch: &str,
        spec_file: &Path,
        precisions: &[Precision],
        budget: &TargetBudget,
    ) -> Result<Vec<Measured>>;

    /// Compares the trained `models` (model arguments: files with precision suffixes)
    /// on the held-out `val` data: the top-1 (0–1) of each, in order, and the report
    /// when there is one.
    fn compare(
        &mut self,
        models: &[String],
        val: &Path,
        budget: &TargetBudget,
    ) -> Result<(Vec<Option<f64>>, Option<Report>)>;
}

/// What a search tells its caller as it goes.
pub trait Observer {
    /// A line worth showing.
    fn say(&mut self, line: &str);
    /// Progress of a long step (training a rung: images trained of `total`).
    fn progress(&mut self, _what: &str, _done: u64, _total: u64) {}
    /// The state was saved after step `steps` (counted from this process's start):
    /// `false` stops the search there, as an interruption would.
    fn saved(&mut self, _steps: usize) -> bool {
        true
    }
}

/// How a search ended.
#[derive(Debug)]
pub enum Outcome {
    /// Finished: the report, and the final comparison's.
    Done(Box<report::ShrinkReport>, Box<Option<Report>>),
    /// Stopped by the observer; `resume` continues it.
    Stopped,
}

/// Why the loop of steps ended early.
pub(super) enum Halt {
    Stopped,
    Failed(Error),
}

impl From<Error> for Halt {
    fn from(e: Error) -> Self {
        Halt::Failed(e)
    }
}

pub(super) type Step<T> = std::result::Result<T, Halt>;

/// A running search.
pub(super) struct Search<'a> {
    cfg: &'a ShrinkConfig,
    st: State,
    arches: Vec<Arch>,
    started: Instant,
    before_s: f64,
    steps: usize,
    obs: &'a mut dyn Observer,
}

impl Search<'_> {
    /// Seconds of search so far, earlier processes included.
    pub(super) fn elapsed(&self) -> f64 {
        self.before_s + self.started.elapsed().as_secs_f64()
    }

    /// Saves the state and asks the observer whether to go on.
    pub(super) fn save(&mut self) -> Step<()> {
        self.st.elapsed_s = self.elapsed();
        self.st.save(&self.cfg.out)?;
        self.steps += 1;
        if self.obs.saved(self.steps) {
            Ok(())
        } else {
            Err(Halt::Stopped)
        }
    }

    /// The arch named `name` (every state's arch is one of the space's).
    pub(super) fn arch(&self, name: &str) -> Arch {
        self.arches
            .iter()
            .find(|a| a.name == name)
            .cloned()
            .expect("every arch state is an arch of the space")
    }

    pub(super) fn idx(&self, name: &str) -> usize {
        self.st
            .arches
            .iter()
            .position(|a| a.name == name)
            .expect("every arch has a state")
    }
}

/// Runs (or with `cfg.resume` continues) the search.
pub fn search(
    cfg: &ShrinkConfig,
    measure: &mut dyn Measure,
    obs: &mut dyn Observer,
) -> Result<Outcome> {
    check(cfg)?;
    let (arches, skipped) = cfg.space.arches(&cfg.base);
    if arches.is_empty() {
        let why = skipped
            .first()
            .map(|(n, e)| format!(" ({n}: {e})"))
            .unwrap_or_default();
        return Err(Error::Invalid(format!(
            "the search space has no arch the base spec plans at{why}"
        )));
    }
    let settings = cfg.settings();
    let st = if cfg.resume {
        State::load(&cfg.out, &settings)?
    } else {
        let p = cfg.out.join(state::FILE);
        if p.exists() {
            return Err(Error::Invalid(format!(
                "{} holds a search already: continue it with --resume, or give another --out folder",
                p.display()
            )));
        }
        State::new(settings)
    };
    std::fs::create_dir_all(&cfg.out).map_err(|e| Error::io(&cfg.out, e))?;
    for (name, why) in &skipped {
        obs.say(&format!("{name}: left out: {why}"));
    }
    // Data first: a bad file is refused before any measuring.
    let classes = cfg.base.classes(cfg.base.input)?;
    let train = Data::open(&cfg.train, cfg.labels.as_deref(), &cfg.base, classes)?;
    let val = Data::open(&cfg.val, cfg.val_labels.as_deref(), &cfg.base, classes)
        .map_err(|e| e.context("--val"))?;
    if let Some((c, h, w)) = train.array_chw() {
        if let Some(s) = cfg.space.sizes.iter().find(|&&s| s != h || s != w) {
            return Err(Error::Invalid(format!(
                "--data {}: .npy arrays are fed as they are ({c}×{h}×{w}), so --sizes can only be {h} (not {s}); image sets are resized to each size",
                cfg.train.display()
            )));
        }
        if cfg.space.precisions.contains(&Precision::Int8) {
            return Err(Error::Invalid(format!(
                "--data {}: int8 candidates are calibrated on images (a folder or TFRecords), not .npy arrays: give --precisions without int8",
                cfg.train.display()
            )));
        }
    }
    let mut s = Search {
        cfg,
        before_s: st.elapsed_s,
        st,
        arches,
        started: Instant::now(),
        steps: 0,
        obs,
    };
    match phases::run(&mut s, &train, &val, measure) {
        Ok(o) => Ok(o),
        Err(Halt::Stopped) => Ok(Outcome::Stopped),
        Err(Halt::Failed(e)) => {
            // Whatever was done is kept for --resume.
            s.st.elapsed_s = s.elapsed();
            let _ = s.st.save(&cfg.out);
            Err(e)
        }
    }
}

/// Usage errors, before anything is read.
fn check(cfg: &ShrinkConfig) -> Result<()> {
    if cfg.batch == 0 {
        return Err(Error::Invalid("--batch must be ≥ 1".into()));
    }
    if !(cfg.time_s.is_finite() && cfg.time_s > 0.0) {
        return Err(Error::Invalid(format!(
            "--time must be a positive duration, got {} s",
            cfg.time_s
        )));
    }
    if cfg.rung_images == Some(0) {
        return Err(Error::Invalid("--rung-images must be ≥ 1".into()));
    }
    if cfg.budget.memory_bytes.is_none()
        && cfg.budget.p90_latency_ms.is_none()
        && cfg.budget.min_throughput_ips.is_none()
    {
        return Err(Error::Invalid(format!(
            "target {} sets no budget (memory, p90 latency or throughput): nothing to fit",
            cfg.budget.name
        )));
    }
    cfg.optimizer.validate()?;
    check_out(cfg)
}

/// `out` is a folder (or nothing yet) apart from the data: the search writes spec files,
/// checkpoints and models into it.
fn check_out(cfg: &ShrinkConfig) -> Result<()> {
    if cfg.out.exists() && !cfg.out.is_dir() {
        return Err(Error::Invalid(format!(
            "--out {}: not a folder (the search writes its state, checkpoints and models into a folder)",
            cfg.out.display()
        )));
    }
    let abs = |p: &Path| -> PathBuf {
        std::fs::canonicalize(p).unwrap_or_else(|_| {
            std::env::current_dir()
                .map(|d| d.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        })
    };
    let out = abs(&cfg.out);
    for (flag, p) in [
        ("--data", Some(&cfg.train)),
        ("--val", Some(&cfg.val)),
        ("--labels", cfg.labels.as_ref()),
        ("--val-labels", cfg.val_labels.as_ref()),
    ] {
        let Some(p) = p else { continue };
        let d = abs(p);
        if d.starts_with(&out) || out.starts_with(&d) {
            return Err(Error::Invalid(format!(
                "--out {} and {flag} {} overlap: the search's files would mix with the data; give an --out folder outside it",
                cfg.out.display(),
                p.display()
            )));
        }
    }
    Ok(())
}
