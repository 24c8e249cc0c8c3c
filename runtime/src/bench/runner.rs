//! One model's sessions, inputs and timing loops: what a measuring process runs.
//!
//! A [`Runner`] opens a batch-1 session (SingleStream) and, when the Offline batch is
//! larger, a second session for that batch; it records session creation and first
//! inference times, then runs timed queries on request. Timed loops stop when both a
//! minimum query count and a minimum duration are met, as in MLPerf LoadGen.

use std::path::PathBuf;
use std::time::Instant;

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use super::memory;
use crate::engine::{self, EngineChoice, EngineOptions, EngineSettings, Session};
use crate::error::{Error, Result};
use crate::report::schema::{EngineUsed, Memory};
use crate::tensor_io;

/// Which scenario a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Batch 1, one query at a time: latency.
    SingleStream,
    /// Batches back to back: throughput.
    Offline,
}

/// Everything a measuring process needs to open a model (serialisable: it crosses the
/// process boundary to a worker).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunnerConfig {
    /// Display name.
    pub name: String,
    /// ONNX file to load.
    pub onnx: PathBuf,
    /// Batch-1 input shape.
    pub single_shape: Vec<usize>,
    /// Offline input shape (batch > 1), when Offline runs at a larger batch.
    pub offline_shape: Option<Vec<usize>>,
    /// Seed of the random input.
    pub seed: u64,
    /// The engine and its settings, as the user's flags resolved them.
    pub engine: EngineSettings,
    /// `--data`: real images through the streaming loader (end-to-end scenario).
    #[serde(default)]
    pub data: Option<super::pipeline::DataConfig>,
}

impl RunnerConfig {
    /// Engine options for `shape`.
    pub fn engine_options(&self, shape: Vec<usize>) -> EngineOptions {
        self.engine.options(shape)
    }
}

/// What a runner reports once its sessions are open.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Ready {
    pub engine: EngineUsed,
    /// Creation of the batch-1 session and its first inference, ms.
    pub init_ms: f64,
    pub first_inference_ms: f64,
    /// Creation of the Offline session, when there is a separate one.
    pub offline_init_ms: Option<f64>,
    /// RSS before any session existed.
    pub baseline_rss_bytes: u64,
}

/// Open sessions and their inputs.
pub struct Runner {
    single: Box<dyn Session>,
    single_input: ArrayD<f32>,
    offline: Option<(Box<dyn Session>, ArrayD<f32>)>,
    data: Option<super::pipeline::Data>,
    ready: Ready,
}

impl Runner {
    /// Open the model's sessions and run each once.
    pub fn open(cfg: &RunnerConfig) -> Result<Self> {
        // An input or activation larger than memory is refused here, before the baseline
        // and the init timer, rather than aborting in the engine's allocator.
        for shape in std::iter::once(&cfg.single_shape).chain(cfg.offline_shape.as_ref()) {
            engine::check_memory(&cfg.onnx, shape).map_err(|e| e.at(&cfg.onnx))?;
        }
        let baseline = memory::rss().current;
        let data = cfg
            .data
            .as_ref()
            .map(|d| super::pipeline::Data::open(d, &cfg.single_shape))
            .transpose()?;
        let choice = cfg.engine.engine;
        let t0 = Instant::now();
        let mut single = engine::open(
            &cfg.onnx,
            choice,
            &cfg.engine_options(cfg.single_shape.clone()),
        )?;
        let init_ms = t0.elapsed().as_secs_f64() * 1e3;
        let single_input =
            tensor_io::seeded_input(&cfg.single_shape, cfg.seed).map_err(|e| e.at(&cfg.onnx))?;
        let t1 = Instant::now();
        single.run(single_input.view())?;
        let first_inference_ms = t1.elapsed().as_secs_f64() * 1e3;
        let info = single.info().clone();
        let (offline, offline_init_ms) = match &cfg.offline_shape {
            Some(shape) if *shape != cfg.single_shape => {
                // The same engine that ran batch 1 runs the batch: no second fallback.
                let exact = EngineChoice::that_ran(info.engine);
                let t = Instant::now();
                let s = engine::open(&cfg.onnx, exact, &cfg.engine_options(shape.clone()))?;
                let ms = t.elapsed().as_secs_f64() * 1e3;
                (
                    Some((
                        s,
                        tensor_io::seeded_input(shape, cfg.seed ^ 0x5eed)
                            .map_err(|e| e.at(&cfg.onnx))?,
                    )),
                    Some(ms),
                )
            }
            _ => (None, None),
        };
        Ok(Self {
            single,
            single_input,
            offline,
            data,
            ready: Ready {
                engine: EngineUsed {
                    engine: info.engine.to_string(),
                    provider: info.provider,
                    version: info.version,
                    fallbacks: info.fallbacks,
                },
                init_ms,
                first_inference_ms,
                offline_init_ms,
                baseline_rss_bytes: baseline,
            },
        })
    }

    /// What was opened, and how long it took.
    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    /// Run `scenario` until at least `queries` queries and `seconds` have passed; returns
    /// the latency of each query (ms). `max_seconds` bounds a run whose query minimum
    /// would take too long (0: no bound).
    pub fn run(
        &mut self,
        scenario: Scenario,
        queries: u64,
        seconds: f64,
        max_seconds: f64,
    ) -> Result<Vec<f64>> {
        let (session, input) = match (scenario, &mut self.offline) {
            (Scenario::Offline, Some((s, i))) => (s, &*i),
            _ => (&mut self.single, &self.single_input),
        };
        let mut lat = Vec::with_capacity(queries as usize);
        let start = Instant::now();
        loop {
            let elapsed = start.elapsed().as_secs_f64();
            let met = lat.len() as u64 >= queries && elapsed >= seconds;
            let bounded = max_seconds > 0.0 && elapsed >= max_seconds && !lat.is_empty();
            if met || bounded {
                break;
            }
            let t = Instant::now();
            std::hint::black_box(session.run(input.view())?);
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
        Ok(lat)
    }

    /// `--data`: engine alone, then loader alone and loader → engine, at the Offline
    /// batch; each for at least `batches` batches and `seconds`.
    pub fn pipeline(
        &mut self,
        batches: u64,
        seconds: f64,
    ) -> Result<crate::report::schema::Pipeline> {
        let batch = self.batch(Scenario::Offline);
        let engine_ms = self.run(Scenario::Offline, batches, seconds, 0.0)?;
        let engine_ips = super::stats::throughput_ips(&engine_ms, batch);
        let Some(data) = &self.data else {
            return Err(Error::Invalid(
                "no --data for the end-to-end scenario".into(),
            ));
        };
        let session = match &mut self.offline {
            Some((s, _)) => s,
            None => &mut self.single,
        };
        data.measure(session.as_mut(), batch, engine_ips, batches, seconds)
    }

    /// Images per query of `scenario`.
    pub fn batch(&self, scenario: Scenario) -> usize {
        match (scenario, &self.offline) {
            (Scenario::Offline, Some((_, i))) => i.shape()[0],
            _ => self.single_input.shape()[0],
        }
    }

    /// Memory of this process: baseline, peak RSS so far, growth.
    pub fn memory(&self) -> Memory {
        let now = memory::rss();
        let baseline = self.ready.baseline_rss_bytes;
        Memory {
            baseline_rss_bytes: baseline,
            peak_rss_bytes: now.peak,
            growth_bytes: now.peak.saturating_sub(baseline),
            arena_bytes: None,
            arena_note: format!(
                "{} does not expose its arena size; growth over the baseline includes it",
                self.ready.engine.engine
            ),
        }
    }
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("ready", &self.ready)
            .finish()
    }
}

/// Turn a library error into a message that can cross a process boundary and back.
pub(crate) fn error_to_wire(e: &Error) -> WireError {
    let (kind, a, b) = match e {
        Error::Invalid(m) => ("invalid", m.clone(), String::new()),
        Error::OrtLibrary { reason } => ("ort_library", reason.clone(), String::new()),
        Error::Provider { provider, reason } => ("provider", provider.clone(), reason.clone()),
        Error::NotCompiledIn { engine } => ("not_compiled_in", engine.to_string(), String::new()),
        other => ("other", other.to_string(), String::new()),
    };
    WireError {
        kind: kind.into(),
        a,
        b,
    }
}

/// An error as sent by a worker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireError {
    pub kind: String,
    pub a: String,
    pub b: String,
}

impl WireError {
    /// Back into a library error of the same kind (so exit codes survive the boundary),
    /// on one line: an engine's multi-line message has its line breaks folded.
    pub fn into_error(mut self, model: &str) -> Error {
        let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        self.a = one_line(&self.a);
        self.b = one_line(&self.b);
        match self.kind.as_str() {
            "invalid" => Error::Invalid(format!("{model}: {}", self.a)),
            "ort_library" => Error::OrtLibrary { reason: self.a },
            // Name the model: in `compare` several models share one provider list.
            "provider" => Error::Provider {
                provider: format!("{} for {model}", self.a),
                reason: self.b,
            },
            "not_compiled_in" => Error::NotCompiledIn {
                engine: if self.a == "ort" { "ort" } else { "tract" },
            },
            _ => Error::Worker {
                model: model.to_string(),
                reason: self.a,
            },
        }
    }
}
