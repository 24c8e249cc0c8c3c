//! Measuring several models under the same conditions: one worker process per model
//! (its own memory), warm-up, then SingleStream and Offline in interleaved rounds
//! (A B A B …) so that drift of a shared machine hits every model alike.
//!
//! On a Jetson a `tegrastats` [`Sampler`] can run alongside: every timed run is a time
//! window of its model and scenario, and each model gets the samples that arrived in
//! its own windows ([`PowerSummary`], with energy per inference per scenario).

use std::path::Path;
use std::time::Instant;

use super::runner::{RunnerConfig, Scenario};
use super::worker::Worker;
use crate::board::{Recording, Sampler};
use crate::error::{Error, Result};
use crate::report::schema::{
    Energy, LatencyStats, ModelResult, Offline, PowerSummary, SingleStream,
};

/// How long and how often to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Warm-up: at least this many queries and this many seconds, per scenario.
    pub warmup_queries: u64,
    pub warmup_s: f64,
    /// Timed part: at least this many queries and this many seconds, per scenario.
    pub min_queries: u64,
    pub min_duration_s: f64,
    /// Bound on one scenario's timed part when the query minimum would take longer
    /// (0: none). A bounded run is reported with fewer queries than asked.
    pub max_duration_s: f64,
    /// Rounds the timed part is split into (interleaving across models).
    pub rounds: usize,
    pub single_stream: bool,
    pub offline: bool,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            warmup_queries: 2,
            warmup_s: 0.5,
            min_queries: 10,
            min_duration_s: 2.0,
            max_duration_s: 0.0,
            rounds: 4,
            single_stream: true,
            offline: true,
        }
    }
}

impl Plan {
    /// Reject plans that would measure nothing.
    pub fn validate(&self) -> Result<()> {
        if !self.single_stream && !self.offline {
            return Err(Error::Invalid(
                "nothing to measure: both SingleStream and Offline are off".into(),
            ));
        }
        if self.min_queries == 0 || self.rounds == 0 {
            return Err(Error::Invalid(
                "--min-queries and --rounds must be ≥ 1".into(),
            ));
        }
        for (what, v) in [
            ("--warmup-time", self.warmup_s),
            ("--min-duration", self.min_duration_s),
            ("--max-duration", self.max_duration_s),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::Invalid(format!(
                    "{what} must be a duration ≥ 0, got {v}"
                )));
            }
        }
        Ok(())
    }
}

/// One model to measure: the worker configuration and its analysis figures.
#[derive(Debug, Clone)]
pub struct Job {
    /// What the user passed (zoo name, spec or ONNX path).
    pub source: String,
    pub cfg: RunnerConfig,
    pub params: u64,
    pub macs_per_image: u64,
}

/// Display names for models given as `(name, source)` (the zoo or file name, and what
/// the user passed), unique so that no report mixes two models up: a model keeps its
/// name unless an earlier one has it; then it is named by the shortest suffix of its
/// source path that no other model's source ends with (`ok.onnx` and `other/ok.onnx`
/// for `m/ok.onnx other/ok.onnx`), else by its position (`lean (2)` for `lean lean`).
pub fn distinct_names(models: &[(&str, &str)]) -> Vec<String> {
    let parts = |source: &str| -> Vec<String> {
        Path::new(source)
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect()
    };
    let sources: Vec<Vec<String>> = models.iter().map(|(_, s)| parts(s)).collect();
    let mut names: Vec<String> = Vec::with_capacity(models.len());
    for (i, (name, _)) in models.iter().enumerate() {
        let own = &sources[i];
        let distinguishes = |k: usize| {
            let suffix = &own[own.len() - k..];
            sources
                .iter()
                .enumerate()
                .all(|(j, other)| j == i || !other.ends_with(suffix))
        };
        let chosen = std::iter::once(name.to_string())
            .filter(|n| !names.contains(n))
            .chain(
                (1..=own.len())
                    .filter(|&k| distinguishes(k))
                    .map(|k| own[own.len() - k..].join("/")),
            )
            .chain((i + 1..).map(|n| format!("{name} ({n})")))
            .find(|n| !names.contains(n));
        names.push(chosen.unwrap_or_else(|| name.to_string()));
    }
    names
}

/// Give every job a distinct display name ([`distinct_names`]), so that results, worker
/// errors and reports name each model unambiguously.
pub fn name_distinctly(jobs: &mut [Job]) {
    let given: Vec<(&str, &str)> = jobs
        .iter()
        .map(|j| (j.cfg.name.as_str(), j.source.as_str()))
        .collect();
    let names = distinct_names(&given);
    for (job, name) in jobs.iter_mut().zip(names) {
        job.cfg.name = name;
    }
}

/// A step of the measurement, for progress display.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Model being worked on.
    pub model: String,
    /// What is happening: `opening`, `warm-up`, `single-stream`, `offline`.
    pub phase: &'static str,
    /// Steps done and total, for a progress bar.
    pub done: u64,
    pub total: u64,
}

/// Measure every job; results in the jobs' order (no ratios, verdicts or profile yet).
pub fn measure(
    exe: &Path,
    jobs: &[Job],
    plan: &Plan,
    progress: &mut dyn FnMut(&Step),
) -> Result<Vec<ModelResult>> {
    measure_with_power(exe, jobs, plan, None, progress)
}

/// [`measure`], with a running `tegrastats` sampler whose samples during each model's
/// timed runs become that model's [`ModelResult::power`]. The sampler is stopped when
/// the timed runs end.
pub fn measure_with_power(
    exe: &Path,
    jobs: &[Job],
    plan: &Plan,
    sampler: Option<Sampler>,
    progress: &mut dyn FnMut(&Step),
) -> Result<Vec<ModelResult>> {
    plan.validate()?;
    let scenarios: Vec<Scenario> = [
        (plan.single_stream, Scenario::SingleStream),
        (plan.offline, Scenario::Offline),
    ]
    .into_iter()
    .filter_map(|(on, s)| on.then_some(s))
    .collect();
    let n = jobs.len() as u64;
    let with_data = jobs.iter().filter(|j| j.cfg.data.is_some()).count() as u64;
    let total = n * (2 + scenarios.len() as u64 * plan.rounds as u64) + with_data;
    let mut done = 0;
    let mut tick = |model: &str, phase: &'static str, done: &mut u64| {
        progress(&Step {
            model: model.to_string(),
            phase,
            done: *done,
            total,
        });
        *done += 1;
    };

    let mut workers = Vec::with_capacity(jobs.len());
    for job in jobs {
        tick(&job.cfg.name, "opening", &mut done);
        workers.push(Worker::spawn(exe, &job.cfg)?);
    }
    for (job, w) in jobs.iter().zip(&mut workers) {
        tick(&job.cfg.name, "warm-up", &mut done);
        for &s in &scenarios {
            let q = if s == Scenario::Offline {
                plan.warmup_queries.min(1)
            } else {
                plan.warmup_queries
            };
            w.run(s, q, plan.warmup_s, 0.0)?;
        }
    }
    let rounds = plan.rounds as u64;
    let per_round_q = plan.min_queries.div_ceil(rounds);
    let per_round_s = plan.min_duration_s / rounds as f64;
    let per_round_max = plan.max_duration_s / rounds as f64;
    let mut samples: Vec<[Vec<f64>; 2]> = vec![[Vec::new(), Vec::new()]; jobs.len()];
    // Time windows of each model's timed runs, per scenario (for tegrastats samples).
    let mut windows: Vec<[Vec<(Instant, Instant)>; 2]> = vec![[Vec::new(), Vec::new()]; jobs.len()];
    for &s in &scenarios {
        let phase = match s {
            Scenario::SingleStream => "single-stream",
            Scenario::Offline => "offline",
        };
        for _ in 0..rounds {
            for (i, (job, w)) in jobs.iter().zip(&mut workers).enumerate() {
                tick(&job.cfg.name, phase, &mut done);
                let t0 = Instant::now();
                let ms = w.run(s, per_round_q, per_round_s, per_round_max)?;
                windows[i][s as usize].push((t0, Instant::now()));
                samples[i][s as usize].extend(ms);
            }
        }
    }
    let recording = sampler.map(Sampler::finish);
    let mut pipelines = Vec::with_capacity(jobs.len());
    for (job, w) in jobs.iter().zip(&mut workers) {
        pipelines.push(match job.cfg.data {
            Some(_) => {
                tick(&job.cfg.name, "end-to-end", &mut done);
                Some(w.pipeline(plan.min_queries, plan.min_duration_s)?)
            }
            None => None,
        });
    }
    let mut results = Vec::with_capacity(jobs.len());
    for ((((job, w), [single, offline]), pipeline), win) in jobs
        .iter()
        .zip(workers)
        .zip(samples)
        .zip(pipelines)
        .zip(windows)
    {
        tick(&job.cfg.name, "memory", &mut done);
        let mut w = w;
        let memory = w.memory()?;
        let ready = w.ready().clone();
        w.finish()?;
        let batch = job.cfg.offline_shape.as_ref().map_or(1, |s| s[0]);
        let single_stream = LatencyStats::from_samples(&single).map(|st| SingleStream {
            latency_ms: st,
            duration_s: single.iter().sum::<f64>() / 1e3,
            samples_ms: single,
        });
        let offline = LatencyStats::from_samples(&offline).map(|st| {
            let duration_s = offline.iter().sum::<f64>() / 1e3;
            let images = offline.len() as u64 * batch as u64;
            Offline {
                batch,
                queries: offline.len() as u64,
                images,
                duration_s,
                throughput_ips: super::stats::throughput_ips(&offline, batch),
                batch_latency_ms: st,
            }
        });
        let gflops = match (&offline, &single_stream) {
            (Some(o), _) => job.macs_per_image as f64 * 2.0 * o.throughput_ips / 1e9,
            (None, Some(s)) => job.macs_per_image as f64 * 2.0 / (s.latency_ms.median / 1e3) / 1e9,
            _ => 0.0,
        };
        let power = recording
            .as_ref()
            .map(|rec| power_of(rec, &win, &single_stream, &offline));
        results.push(ModelResult {
            name: job.cfg.name.clone(),
            source: job.source.clone(),
            input_shape: job.cfg.single_shape.clone(),
            params: job.params,
            macs_per_image: job.macs_per_image,
            engine: ready.engine,
            init_ms: ready.init_ms + ready.offline_init_ms.unwrap_or(0.0),
            first_inference_ms: ready.first_inference_ms,
            single_stream,
            offline,
            memory,
            compute: crate::report::schema::Compute::against(gflops, None),
            accuracy: pipeline.as_ref().and_then(|p| p.top1),
            pipeline,
            power,
            ..Default::default()
        });
    }
    Ok(results)
}

/// One model's power figures: the samples in its windows, and energy per inference per
/// scenario (the scenario's own average power when a sample fell in it, else the
/// model's).
fn power_of(
    rec: &Recording,
    windows: &[Vec<(Instant, Instant)>; 2],
    single: &Option<SingleStream>,
    offline: &Option<Offline>,
) -> PowerSummary {
    let mut p = rec.between(&windows.concat());
    let scenarios = [
        (
            "single_stream",
            &windows[Scenario::SingleStream as usize],
            single.as_ref().map(|s| (s.duration_s, s.latency_ms.count)),
        ),
        (
            "offline",
            &windows[Scenario::Offline as usize],
            offline.as_ref().map(|o| (o.duration_s, o.images)),
        ),
    ];
    for (name, win, measured) in scenarios {
        let Some((duration_s, inferences)) = measured else {
            continue;
        };
        let own = rec.between(win);
        let Some(avg) = own.total_avg_mw.or(p.total_avg_mw) else {
            continue;
        };
        if inferences == 0 {
            continue;
        }
        p.energy.push(Energy {
            scenario: name.into(),
            avg_power_mw: avg,
            duration_s,
            inferences,
            mj_per_inference: avg * duration_s / inferences as f64,
        });
    }
    p
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::board::tegrastats::parse_line;
    use crate::board::tegrastats_sampler::Sample;

    fn line(vdd_in: u32) -> crate::board::tegrastats::TegraLine {
        parse_line(&format!("RAM 1000/7620MB VDD_IN {vdd_in}mW/{vdd_in}mW")).unwrap()
    }

    #[test]
    fn names_are_made_distinct_by_the_shortest_path_suffix_then_position() {
        let n = |m: &[(&str, &str)]| distinct_names(m);
        assert_eq!(
            n(&[("ok.onnx", "m/ok.onnx"), ("ok.onnx", "other/ok.onnx")]),
            ["ok.onnx", "other/ok.onnx"]
        );
        assert_eq!(
            n(&[
                ("ok.onnx", "/a/x/ok.onnx"),
                ("ok.onnx", "/b/x/ok.onnx"),
                ("ok.onnx", "./ok.onnx")
            ]),
            ["ok.onnx", "b/x/ok.onnx", "ok.onnx (3)"]
        );
        assert_eq!(
            n(&[("tiny", "a/tiny.toml"), ("tiny", "b/tiny.toml")]),
            ["tiny", "b/tiny.toml"]
        );
        assert_eq!(
            n(&[("lean", "lean"), ("lean", "lean"), ("heavy", "heavy")]),
            ["lean", "lean (2)", "heavy"]
        );
        assert_eq!(n(&[("a", "a"), ("b", "b")]), ["a", "b"]);
    }

    #[test]
    fn power_goes_to_the_scenario_whose_window_holds_the_sample() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let rec = Recording {
            samples: vec![
                Sample {
                    at: at(10),
                    line: line(4000),
                },
                Sample {
                    at: at(20),
                    line: line(6000),
                },
                // Between the windows (another model's turn): not this model's.
                Sample {
                    at: at(50),
                    line: line(9000),
                },
                Sample {
                    at: at(110),
                    line: line(8000),
                },
            ],
            interval_ms: 10,
            ..Recording::default()
        };
        // SingleStream ran in [0, 30] ms, Offline in [100, 130] ms and [200, 230] ms.
        let windows = [
            vec![(at(0), at(30))],
            vec![(at(100), at(130)), (at(200), at(230))],
        ];
        let stats = |n: u64| LatencyStats {
            count: n,
            ..Default::default()
        };
        let single = Some(SingleStream {
            latency_ms: stats(10),
            samples_ms: vec![],
            duration_s: 0.03,
        });
        let offline = Some(Offline {
            batch: 4,
            queries: 5,
            images: 20,
            duration_s: 0.06,
            throughput_ips: 0.0,
            batch_latency_ms: stats(5),
        });
        let p = power_of(&rec, &windows, &single, &offline);
        assert_eq!(p.samples, 3);
        assert_eq!(p.total_avg_mw, Some(6000.0));
        assert_eq!(p.total_peak_mw, Some(8000.0));
        assert_eq!(p.energy.len(), 2);
        let (s, o) = (&p.energy[0], &p.energy[1]);
        assert_eq!(
            (s.scenario.as_str(), s.avg_power_mw),
            ("single_stream", 5000.0)
        );
        assert!((s.mj_per_inference - 5000.0 * 0.03 / 10.0).abs() < 1e-12);
        assert_eq!(
            (o.scenario.as_str(), o.avg_power_mw, o.inferences),
            ("offline", 8000.0, 20)
        );
        assert!((o.mj_per_inference - 8000.0 * 0.06 / 20.0).abs() < 1e-12);

        // A scenario with no sample of its own takes the model's average.
        let windows = [vec![(at(0), at(30))], vec![(at(300), at(330))]];
        let p = power_of(&rec, &windows, &single, &offline);
        assert_eq!(p.energy[1].avg_power_mw, 5000.0);
        // A scenario that did not run has no energy figure.
        let p = power_of(&rec, &windows, &single, &None);
        assert_eq!(p.energy.len(), 1);
    }
}
