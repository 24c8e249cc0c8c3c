//! The result of a `bench`, `compare` or `profile` run: one [`Report`] holding one
//! [`ModelResult`] per model. This is the data every output format renders (terminal
//! table, JSON, CSV, Markdown, HTML), and its JSON form is a versioned schema
//! (`schema = "edgebench.report"`, `schema_version` = [`SCHEMA_VERSION`]); see
//! `docs/report-schema.md`. Fields are only ever added within a version.
//!
//! Units are in the field names: `_ms`, `_s`, `_bytes`, `_ips` (images per second),
//! `_gflops` (10⁹ floating-point operations per second, one MAC = 2 FLOPs).

use serde::{Deserialize, Serialize};

/// The JSON schema's name.
pub const SCHEMA_NAME: &str = "edgebench.report";
/// The JSON schema's version; bump on any change that is not a pure addition.
pub const SCHEMA_VERSION: u32 = 1;

/// A whole run: machine, settings, optional target, one entry per model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Always [`SCHEMA_NAME`].
    pub schema: String,
    /// Always [`SCHEMA_VERSION`] for reports written by this build.
    pub schema_version: u32,
    /// `bench`, `compare` or `profile`.
    pub command: String,
    /// edgebench's version.
    pub edgebench_version: String,
    /// Seconds since the Unix epoch when the run finished.
    pub created_unix_s: u64,
    /// The machine the figures were measured on.
    pub machine: Machine,
    /// The conditions every model ran under.
    pub settings: Settings,
    /// The board budgets the verdicts are against, when `--target` was given or detected.
    pub target: Option<TargetBudget>,
    /// One entry per model, in the order given (ratios are against the first).
    pub models: Vec<ModelResult>,
    /// Indices into `models` of the Pareto front (latency × memory, and accuracy when
    /// every model has one), in the order of `models`.
    pub pareto: Vec<usize>,
    /// Whether power was sampled with `tegrastats`, and how (absent in reports written
    /// before this field existed).
    #[serde(default)]
    pub tegrastats: Option<TegrastatsStatus>,
}

/// How power, loads and temperatures were sampled: `tegrastats` in the background on a
/// Jetson, or why not.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct TegrastatsStatus {
    /// Whether `tegrastats` ran during the timed runs.
    pub available: bool,
    /// The executable that ran.
    pub path: Option<String>,
    /// Its `--interval`, ms.
    pub interval_ms: u64,
    /// One line for reports: `sampled every 100 ms by /usr/bin/tegrastats`, or
    /// `not available (not a Jetson)`.
    pub note: String,
}

/// Where the figures were measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Machine {
    /// CPU model name (from /proc/cpuinfo).
    pub cpu: String,
    /// Logical cores available to this process.
    pub cores: usize,
    /// Widest SIMD level detected: `avx512f`, `avx2+fma`, `neon`, ...
    pub simd: String,
    /// `x86_64`, `aarch64`, ...
    pub arch: String,
    /// Total memory in bytes (MemTotal).
    pub memory_bytes: u64,
    /// The Jetson board's name when running on one.
    pub board: Option<String>,
    /// This machine's measured fp32 GEMM peak (`edgebench hw`), when known.
    pub gemm_peak_gflops: Option<f64>,
    /// The path edgebench's own kernels took: `avx2` or `portable` (`EDGEBENCH_SIMD`
    /// forces one; absent in older reports).
    #[serde(default)]
    pub kernels: String,
}

/// The conditions of the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Settings {
    /// Engine requested: `auto`, `ort` or `tract`.
    pub engine: String,
    /// Execution providers requested, in order.
    pub ep: Vec<String>,
    /// Intra-op threads requested (None: engine default).
    pub threads: Option<usize>,
    /// Untimed warm-up queries (at least this many ...).
    pub warmup_queries: u64,
    /// ... and for at least this long.
    pub warmup_s: f64,
    /// A timed scenario runs until both minimums are met (as MLPerf LoadGen).
    pub min_duration_s: f64,
    pub min_queries: u64,
    /// Batch size of the Offline scenario.
    pub batch: usize,
    /// Whether compare ran models interleaved in rounds (A B A B ...).
    pub interleaved: bool,
}

/// A board's budgets, copied from `targets/NAME.toml` into the report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct TargetBudget {
    pub name: String,
    pub description: String,
    /// Memory budget for one model's process, bytes.
    pub memory_bytes: Option<u64>,
    /// p90 single-stream latency budget, ms.
    pub p90_latency_ms: Option<f64>,
    /// Minimum Offline throughput, images/s.
    pub min_throughput_ips: Option<f64>,
    /// How the target was chosen: `--target`, or `detected: <board>`.
    pub chosen_by: String,
}

/// Everything measured for one model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ModelResult {
    /// Display name (zoo name or file name).
    pub name: String,
    /// What the user passed (zoo name, spec path or ONNX path).
    pub source: String,
    /// Single-image input shape (batch 1).
    pub input_shape: Vec<usize>,
    /// Parameters and MACs per image from the analysis.
    pub params: u64,
    pub macs_per_image: u64,
    /// Engine that ran, its provider, version, and every fallback with its reason.
    pub engine: EngineUsed,
    /// Session creation time (ms) and the first inference after it (ms).
    pub init_ms: f64,
    pub first_inference_ms: f64,
    /// SingleStream: batch-1 latency.
    pub single_stream: Option<SingleStream>,
    /// Offline: throughput at `batch`.
    pub offline: Option<Offline>,
    /// Memory of the process that ran the model.
    pub memory: Memory,
    /// Achieved compute.
    pub compute: Compute,
    /// Top-1 accuracy in [0, 1] over every labelled image of `--data`.
    pub accuracy: Option<f64>,
    /// `--batch auto`: every batch tried and the one chosen.
    pub batch_sweep: Option<BatchSweep>,
    /// Verdict per budget of the target, when a target is set.
    pub verdicts: Vec<Verdict>,
    /// Ratios against the first model of the report (1.0 for the first).
    pub ratios: Option<Ratios>,
    /// Per-node times (`profile`), sorted by time, longest first.
    pub profile: Option<Vec<NodeTime>>,
    /// `--data`: the real input pipeline (loader → engine) against each alone.
    #[serde(default)]
    pub pipeline: Option<Pipeline>,
    /// Power, GPU/EMC load, RAM and temperatures from `tegrastats` during this model's
    /// timed runs (on a Jetson), with energy per inference.
    #[serde(default)]
    pub power: Option<PowerSummary>,
    /// Size of the model file on disk, bytes (absent in older reports).
    #[serde(default)]
    pub file_bytes: Option<u64>,
    /// Precision of the model's weights: `fp32`, `int8` (QDQ), `fp16` (absent in older
    /// reports).
    #[serde(default)]
    pub precision: Option<String>,
    /// A `MODEL@int8` variant measured beside `MODEL` on labelled `--data`: its top-1
    /// minus the parent's, in percentage points (negative: accuracy lost).
    #[serde(default)]
    pub top1_change_points: Option<f64>,
    /// How image pixels became the input: `x/255 − [mean] / [std], nchw` (absent in
    /// older reports).
    #[serde(default)]
    pub preprocess: Option<String>,
}

/// What `tegrastats` reported during a set of timed runs: power per rail, the total
/// input power, loads, memory and temperatures, and energy per inference.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PowerSummary {
    /// tegrastats lines that fell within the timed runs.
    pub samples: u64,
    /// Sampling interval, ms.
    pub interval_ms: u64,
    /// Where the total comes from: `VDD_IN`, `POM_5V_IN`, or `sum of rails` on boards
    /// without an input rail (AGX Orin, Thor).
    pub total_source: String,
    /// Total input power, average and peak over the samples, mW.
    pub total_avg_mw: Option<f64>,
    pub total_peak_mw: Option<f64>,
    /// Every rail, in the order tegrastats prints them.
    pub rails: Vec<RailPower>,
    /// GR3D (integrated GPU) load, percent.
    pub gpu_load_pct: Option<AvgPeak>,
    /// External memory controller load, percent.
    pub emc_load_pct: Option<AvgPeak>,
    /// RAM in use (whole board, CPU and GPU share it), MiB, and the board's total.
    pub ram_used_mib: Option<AvgPeak>,
    pub ram_total_mib: Option<u64>,
    /// Highest reading per temperature sensor, °C.
    pub temperatures: Vec<SensorMax>,
    /// The hottest sensor and its reading (PMIC's fixed 100 °C placeholder and
    /// powered-down sensors below -40 °C are left out).
    pub max_temp_c: Option<f64>,
    pub max_temp_sensor: Option<String>,
    /// Energy per inference per scenario.
    pub energy: Vec<Energy>,
    /// Lines tegrastats printed that could not be parsed (or were longer than 64 KiB),
    /// and the first reason.
    pub unparsed_lines: u64,
    pub first_unparsed: Option<String>,
    /// Lines that parsed but cannot be real readings (a rail of 10²³ mW, more RAM used
    /// than there is), dropped from every figure; and why the first was dropped.
    /// Absent in older reports.
    #[serde(default)]
    pub implausible_samples: u64,
    #[serde(default)]
    pub first_implausible: Option<String>,
    /// Why some figure is missing (e.g. no sample fell within the timed runs).
    pub note: String,
}

/// Average and peak of a sampled figure.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct AvgPeak {
    pub avg: f64,
    pub peak: f64,
}

/// One power rail: average and peak of its current reading, mW.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RailPower {
    pub name: String,
    pub avg_mw: f64,
    pub peak_mw: f64,
}

/// The highest reading of one temperature sensor, °C.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SensorMax {
    pub sensor: String,
    pub max_c: f64,
}

/// Energy per inference of one scenario: average total input power over the scenario's
/// timed runs × their measured time ÷ the images inferred.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Energy {
    /// `single_stream` or `offline`.
    pub scenario: String,
    /// Average total input power during the scenario, mW.
    pub avg_power_mw: f64,
    /// Measured time (sum of the timed queries' latencies), s.
    pub duration_s: f64,
    /// Images inferred in that time.
    pub inferences: u64,
    /// `avg_power_mw × duration_s / inferences`, mJ.
    pub mj_per_inference: f64,
}

impl PowerSummary {
    /// Energy per item (inference, training step, ...), mJ: the average total input
    /// power × `seconds` ÷ `items`. `None` without a total or items.
    pub fn energy_per_item_mj(&self, seconds: f64, items: u64) -> Option<f64> {
        let p = self.total_avg_mw?;
        (items > 0 && seconds.is_finite() && seconds >= 0.0).then(|| p * seconds / items as f64)
    }
}

/// End-to-end figures of `--data`: the streaming loader feeding the engine, measured
/// against the loader alone and the engine alone, at the same batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Pipeline {
    /// The data source (kind, path, items).
    pub data: String,
    pub batch: usize,
    /// Loader worker threads and the size of its fixed pool of batch slots.
    pub workers: usize,
    pub pool_bytes: u64,
    /// Loader alone (decode, resize, normalise into slots; no engine).
    pub loader_ips: f64,
    /// Engine alone on a fixed tensor of the same batch.
    pub engine_ips: f64,
    /// Loader → engine, overlapped.
    pub end_to_end_ips: f64,
    /// `end_to_end_ips / min(loader_ips, engine_ips)`: the share of the slower stage's
    /// own rate that the overlapped pipeline reaches (1 = perfect overlap).
    pub efficiency: f64,
    /// Share of the end-to-end wall time the engine waited for a batch.
    pub stall_fraction: f64,
    /// Images through the end-to-end run, and items the loader skipped as unreadable.
    pub images: u64,
    pub errors: u64,
    /// The first few skipped items, naming them.
    pub first_errors: Vec<String>,
    /// Top-1 accuracy over every labelled image of the data (one untimed pass after the
    /// timed runs), when the data is labelled and the model outputs `[N, classes]`.
    pub top1: Option<f64>,
    pub top1_images: u64,
}

/// Which engine and provider really ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct EngineUsed {
    pub engine: String,
    pub provider: String,
    pub version: String,
    pub fallbacks: Vec<String>,
}

/// SingleStream scenario: one image at a time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SingleStream {
    pub latency_ms: LatencyStats,
    /// Every timed latency (ms), in run order, for distributions and re-analysis.
    pub samples_ms: Vec<f64>,
    /// Wall time of the timed part.
    pub duration_s: f64,
}

/// Summary statistics of a latency sample (ms). Percentiles interpolate linearly
/// between order statistics (numpy's default); `std` is the sample standard deviation.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct LatencyStats {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub median: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub std: f64,
}

/// Offline scenario: batches back to back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Offline {
    pub batch: usize,
    /// Batches run (queries) and images in the timed part.
    pub queries: u64,
    pub images: u64,
    pub duration_s: f64,
    pub throughput_ips: f64,
    /// Latency of one batch.
    pub batch_latency_ms: LatencyStats,
}

/// Memory of one model's process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Memory {
    /// RSS before the session was created.
    pub baseline_rss_bytes: u64,
    /// Peak RSS of the process (VmHWM) at the end of the run.
    pub peak_rss_bytes: u64,
    /// `peak - baseline`: what the model cost.
    pub growth_bytes: u64,
    /// The engine's own arena, when the engine exposes it.
    pub arena_bytes: Option<u64>,
    /// Why `arena_bytes` is missing, or where it came from.
    pub arena_note: String,
}

/// Achieved compute against the machine's GEMM peak.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Compute {
    /// MACs × 2 / time, from the best scenario (Offline when run, else SingleStream median).
    pub gflops: f64,
    /// `gflops / machine.gemm_peak_gflops`.
    pub share_of_peak: Option<f64>,
    /// The share is above 1: the peak understates this machine (measured while it was
    /// busy, or on other hardware), so every share is suspect; `edgebench hw
    /// --remeasure` measures it again (absent in older reports).
    #[serde(default)]
    pub peak_stale: bool,
}

impl Compute {
    /// `gflops` against the GEMM `peak` (GFLOP/s), when one is known.
    pub fn against(gflops: f64, peak: Option<f64>) -> Compute {
        let share = peak
            .filter(|p| p.is_finite() && *p > 0.0)
            .map(|p| gflops / p)
            .filter(|s| s.is_finite());
        Compute {
            gflops,
            share_of_peak: share,
            peak_stale: share.is_some_and(|s| s > 1.0),
        }
    }

    /// Whether the share shows a stale peak (also for reports without `peak_stale`).
    pub fn shows_stale_peak(&self) -> bool {
        self.peak_stale || self.share_of_peak.is_some_and(|s| s > 1.0)
    }
}

/// One point of a `--batch auto` sweep.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SweepPoint {
    pub batch: usize,
    pub throughput_ips: f64,
    pub peak_rss_bytes: u64,
    /// Within the memory budget (true when there is none).
    pub fits: bool,
}

/// The batch sweep and the knee it chose.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct BatchSweep {
    pub points: Vec<SweepPoint>,
    pub chosen: usize,
    /// Why that batch: e.g. "smallest batch within 5% of the best throughput that fits".
    pub reason: String,
}

/// A budget check.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    /// `memory`, `p90_latency` or `throughput`.
    pub budget: String,
    /// The budget's limit and the measured figure, in `unit`.
    pub limit: Option<f64>,
    pub measured: Option<f64>,
    pub unit: String,
    /// Flattened into the verdict: `"status": "fits", "margin_pct": 12.5`.
    #[serde(flatten)]
    pub status: VerdictStatus,
}

/// Outcome of one budget check.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VerdictStatus {
    /// Within the budget; `margin_pct` of headroom.
    Fits { margin_pct: f64 },
    /// Over the budget by `over_pct` percent (under, for a minimum throughput).
    Over { over_pct: f64 },
    /// The target sets no such budget.
    NoBudget,
    /// The figure was not measured (scenario not run).
    NotMeasured,
}

/// Ratios against the report's first model (>1 means larger than the first).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct Ratios {
    pub p90_latency: Option<f64>,
    pub throughput: Option<f64>,
    pub peak_rss: Option<f64>,
    pub macs: Option<f64>,
    pub params: Option<f64>,
    /// The model file's size (absent in older reports).
    #[serde(default)]
    pub file_bytes: Option<f64>,
}

/// Time spent in one graph node (`profile`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct NodeTime {
    pub name: String,
    pub op: String,
    /// Mean time per inference, ms.
    pub mean_ms: f64,
    /// Share of the summed node time.
    pub share: f64,
    /// MACs of the node (from the analysis; 0 when the node has none or is unknown).
    pub macs: u64,
    /// MACs × 2 / time.
    pub gflops: f64,
    /// The execution provider(s) that ran the node, `+`-joined when its engine pieces
    /// ran on several (ONNX Runtime; absent for tract).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The precision the node computed in: its first input's element type as the
    /// engine ran it (`fp32`, `fp16`, `int8`, `uint8`, …; absent where the engine does
    /// not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
}
