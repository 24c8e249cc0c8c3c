//! The search's state file (`shrink-state.json` in the output folder): everything done
//! so far, written atomically after every step, so that `--resume` continues where an
//! interrupted search stopped without repeating finished work. A state written with
//! other settings is refused, naming the first setting that differs.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::schedule::Schedule;
use super::space::Precision;
use crate::error::{Error, Result};

/// The state file's `format` field.
pub const FORMAT: &str = "edgebench-shrink-state";
/// Its version; another is refused.
pub const VERSION: u32 = 1;
/// Its name in the output folder.
pub const FILE: &str = "shrink-state.json";

/// The whole search so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub format: String,
    pub version: u32,
    /// What the search was started with, as `(name, value)` pairs: a resumed search
    /// must have the same.
    pub settings: Vec<(String, String)>,
    /// Seconds of search before this process (resumed searches add theirs).
    pub elapsed_s: f64,
    pub arches: Vec<ArchState>,
    /// Set once every arch is measured and probed.
    pub schedule: Option<Schedule>,
    /// The finished search's chosen candidate and the final comparison.
    pub done: Option<Finished>,
}

/// One arch (a width at a size) and all that is known of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchState {
    pub name: String,
    pub width: f64,
    /// Blocks dropped (< 0) or repeated (> 0).
    #[serde(default)]
    pub depth: i32,
    pub size: usize,
    /// Its spec file in the output folder (relative).
    pub spec_file: String,
    /// One per precision, once measured.
    pub measured: Option<Vec<Measured>>,
    /// Seconds its measurement took.
    pub measure_s: Option<f64>,
    /// The training memory plan, once probed.
    pub train_plan: Option<TrainPlan>,
    /// Seconds per optimizer step and per validation pass, once probed.
    pub step_s: Option<f64>,
    pub eval_s: Option<f64>,
    /// Why it left the search (over a budget, a training plan that does not fit, the
    /// worse half of a rung), once it has.
    pub dropped: Option<String>,
    /// One per rung it trained in.
    pub rungs: Vec<RungResult>,
}

impl ArchState {
    /// Its precisions that fit every budget.
    pub fn fitting(&self) -> impl Iterator<Item = &Measured> {
        self.measured.iter().flatten().filter(|m| m.fits)
    }

    /// The lowest p90 latency among its precisions that fit.
    pub fn best_latency_ms(&self) -> f64 {
        self.fitting()
            .filter_map(|m| m.p90_ms)
            .fold(f64::INFINITY, f64::min)
    }
}

/// One candidate (an arch in one precision) as measured before any training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub precision: Precision,
    /// SingleStream p90 latency (ms), Offline throughput (images/s).
    pub p90_ms: Option<f64>,
    pub throughput_ips: Option<f64>,
    /// Peak RSS of its measuring process.
    pub peak_rss_bytes: u64,
    /// The model file's size.
    pub file_bytes: Option<u64>,
    /// Within every budget of the target.
    pub fits: bool,
    /// The budgets it is over, one phrase each ("p90 latency 130 ms > 100 ms").
    pub over: Vec<String>,
    /// Where it was measured ("this machine (AMD EPYC …), onnxruntime cpu").
    pub measured_on: String,
}

/// The training memory plan of an arch at the search's batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainPlan {
    pub micro_batch: usize,
    pub accumulation_steps: usize,
    pub bytes: u64,
}

/// An arch's figures after one rung.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RungResult {
    pub rung: usize,
    /// Optimizer steps and images trained in all when the rung ended.
    pub steps: u64,
    pub images: u64,
    pub val_acc: f64,
    pub val_loss: f64,
    /// Training and validation seconds of this rung.
    pub seconds: f64,
    /// Its checkpoint (relative to the output folder).
    pub checkpoint: String,
}

/// The end of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    /// The chosen arch and precision.
    pub arch: String,
    pub precision: Precision,
    /// Its model file (relative to the output folder).
    pub model_file: String,
    /// Held-out top-1 (0–1) of each precision of the chosen arch in the final
    /// comparison, as measured through the engine.
    pub top1: Vec<(Precision, Option<f64>)>,
    /// Why the search ended ("one candidate left", "the time budget").
    pub ended: String,
}

impl State {
    pub fn new(settings: Vec<(String, String)>) -> State {
        State {
            format: FORMAT.into(),
            version: VERSION,
            settings,
            elapsed_s: 0.0,
            arches: Vec::new(),
            schedule: None,
            done: None,
        }
    }

    /// Reads `dir`'s state file: its format, version and settings must be these.
    pub fn load(dir: &Path, settings: &[(String, String)]) -> Result<State> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let bad = |reason: String| Error::Input {
            path: path.clone(),
            reason,
        };
        let s: State = serde_json::from_str(&text)
            .map_err(|e| bad(format!("not a shrink state file: {e}")))?;
        if s.format != FORMAT || s.version != VERSION {
            return Err(bad(format!(
                "a {} version {} file, this edgebench reads {FORMAT} version {VERSION}",
                s.format, s.version
            )));
        }
        for (k, v) in settings {
            let was = s.settings.iter().find(|(sk, _)| sk == k).map(|(_, v)| v);
            if was != Some(v) {
                return Err(Error::Invalid(format!(
                    "--resume: {} was started with {k} {}, this run has {v}; rerun with its settings or start a new search in another --out folder",
                    path.display(),
                    was.map_or("(unset)".to_string(), |w| format!("{w:?}")),
                )));
            }
        }
        if !s.elapsed_s.is_finite() || s.elapsed_s < 0.0 {
            return Err(bad(format!("elapsed_s {} is not a time", s.elapsed_s)));
        }
        Ok(s)
    }

    /// Writes the state into `dir` atomically (a crash leaves the old or the new file).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text =
            serde_json::to_string_pretty(self).map_err(|e| Error::json("the shrink state", e))?;
        crate::fsutil::write_atomic(&dir.join(FILE), text.as_bytes())
    }

    /// The arch named `name`.
    pub fn arch(&self, name: &str) -> Option<&ArchState> {
        self.arches.iter().find(|a| a.name == name)
    }
}
