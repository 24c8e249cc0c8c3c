//! Measuring candidates through [`compare::compare`], and the one-line phrases of
//! budgets and measured figures.

use std::path::{Path, PathBuf};

use super::Measure;
use super::space::Precision;
use super::state::Measured;
use crate::bench::compare::{self, Batch, CompareConfig};
use crate::bench::interleave::Plan;
use crate::engine::EngineSettings;
use crate::error::Result;
use crate::model::PrepareOptions;
use crate::report::schema::{Report, TargetBudget, VerdictStatus};

/// `memory 1 GiB, p90 ≤ 100 ms, throughput ≥ 10/s`.
pub fn budget_line(b: &TargetBudget) -> String {
    let mut parts = Vec::new();
    if let Some(m) = b.memory_bytes {
        parts.push(format!("memory ≤ {}", crate::units::bytes(m)));
    }
    if let Some(l) = b.p90_latency_ms {
        parts.push(format!("p90 latency ≤ {l} ms"));
    }
    if let Some(t) = b.min_throughput_ips {
        parts.push(format!("throughput ≥ {t} images/s"));
    }
    format!("{}: {}", b.name, parts.join(", "))
}

/// `p90 3.10 ms, 412 images/s, peak 180 MiB`.
pub fn measured_line(m: &Measured) -> String {
    let mut parts = Vec::new();
    if let Some(p) = m.p90_ms {
        parts.push(format!("p90 {p:.2} ms"));
    }
    if let Some(t) = m.throughput_ips {
        parts.push(format!("{t:.0} images/s"));
    }
    parts.push(format!("peak {}", crate::units::bytes(m.peak_rss_bytes)));
    parts.join(", ")
}

/// [`Measure`] through [`compare::compare`]: each arch's precisions in one comparison
/// (worker processes, interleaved), against the target's budgets.
pub struct CompareMeasure {
    /// Everything but the models, the target, the data and the calibration images.
    pub template: CompareConfig,
    /// Calibration images for int8 candidates (the training data).
    pub calibrate: PathBuf,
    /// The target as the user named it (a built-in name or a `.toml` file).
    pub target: String,
    /// Warnings of the comparisons.
    pub warn: Box<dyn FnMut(&str)>,
}

struct Quiet<'w>(&'w mut dyn FnMut(&str));

impl compare::Observer for Quiet<'_> {
    fn say(&mut self, _: &str) {}
    fn note(&mut self, _: &str) {}
    fn warn(&mut self, line: &str) {
        (self.0)(line);
    }
}

/// How a candidate is timed: a short comparison of its own.
#[derive(Debug, Clone)]
pub struct MeasureSettings {
    /// Each timed scenario lasts at least this long (and ten queries).
    pub min_duration_s: f64,
    /// The Offline (throughput) batch.
    pub batch: usize,
    /// Seed of the random input.
    pub seed: u64,
    /// Loader workers of the held-out images' accuracy run (0: all cores).
    pub workers: usize,
    /// Engine and providers.
    pub engine: EngineSettings,
    /// The edgebench executable whose `__worker` command measures one model.
    pub worker_exe: PathBuf,
}

impl CompareMeasure {
    /// Candidates timed as `s` says against `target` (a built-in name or a `.toml`
    /// file), int8 ones calibrated on `calibrate`; warnings go to `warn`.
    pub fn new(
        s: MeasureSettings,
        calibrate: PathBuf,
        target: String,
        warn: Box<dyn FnMut(&str)>,
    ) -> CompareMeasure {
        let template = CompareConfig {
            command: "shrink".into(),
            models: Vec::new(),
            plan: Plan {
                warmup_queries: 2,
                warmup_s: 0.3,
                min_queries: 10,
                min_duration_s: s.min_duration_s,
                max_duration_s: 0.0,
                rounds: 2,
                single_stream: true,
                offline: true,
            },
            batch: Batch::Fixed(s.batch),
            max_batch: s.batch,
            prepare: PrepareOptions {
                seed: s.seed,
                ..Default::default()
            },
            data: None,
            data_workers: s.workers,
            target: None,
            memory_budget: None,
            profile: false,
            remeasure_peak: false,
            no_peak: true,
            tegrastats_interval_ms: 100,
            engine: s.engine,
            worker_exe: s.worker_exe,
        };
        CompareMeasure {
            template,
            calibrate,
            target,
            warn,
        }
    }

    fn config(&self, models: Vec<String>, data: Option<&Path>) -> CompareConfig {
        let mut c = self.template.clone();
        c.models = models;
        c.data = data.map(Path::to_path_buf);
        c.prepare.calibrate = Some(self.calibrate.clone());
        c.target = Some(self.target.clone());
        c
    }
}

impl Measure for CompareMeasure {
    fn measure(
        &mut self,
        _arch: &str,
        spec_file: &Path,
        precisions: &[Precision],
        _budget: &TargetBudget,
    ) -> Result<Vec<Measured>> {
        let models = precisions
            .iter()
            .map(|p| format!("{}{}", spec_file.display(), p.suffix()))
            .collect();
        let c = self.config(models, None);
        let rep = compare::compare(&c, &mut Quiet(&mut *self.warn))?;
        Ok(precisions
            .iter()
            .zip(&rep.models)
            .map(|(&p, m)| {
                let over: Vec<String> = m
                    .verdicts
                    .iter()
                    .filter(|v| matches!(v.status, VerdictStatus::Over { .. }))
                    .map(|v| {
                        format!(
                            "{} {} {} {} {}",
                            crate::report::budget_label(v),
                            v.measured.map_or("?".into(), |x| format!("{x:.1}")),
                            if v.budget == "throughput" { "<" } else { ">" },
                            v.limit.map_or("?".into(), |x| format!("{x:.1}")),
                            v.unit
                        )
                    })
                    .collect();
                Measured {
                    precision: p,
                    p90_ms: m.single_stream.as_ref().map(|s| s.latency_ms.p90),
                    throughput_ips: m.offline.as_ref().map(|o| o.throughput_ips),
                    peak_rss_bytes: m.memory.peak_rss_bytes,
                    file_bytes: m.file_bytes,
                    fits: over.is_empty(),
                    over,
                    measured_on: format!(
                        "{} ({} cores), {} {}",
                        rep.machine.cpu, rep.machine.cores, m.engine.engine, m.engine.provider
                    ),
                }
            })
            .collect())
    }

    fn compare(
        &mut self,
        models: &[String],
        val: &Path,
        _budget: &TargetBudget,
    ) -> Result<(Vec<Option<f64>>, Option<Report>)> {
        let mut c = self.config(models.to_vec(), Some(val));
        c.command = "shrink".into();
        let rep = compare::compare(&c, &mut Quiet(&mut *self.warn))?;
        let top1 = rep.models.iter().map(|m| m.accuracy).collect();
        Ok((top1, Some(rep)))
    }
}
