//! What `bench` and `compare` share: their flags, turned into the runtime's
//! [`CompareConfig`]; [`compare::compare`] does the work, this shows its progress and
//! writes the report in every format asked for.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use edgebench_runtime::bench::compare::{self, Batch, CompareConfig};
use edgebench_runtime::bench::interleave::{Plan, Step};
use edgebench_runtime::fsutil::IoPaths;
use edgebench_runtime::report::{self, Format};
use edgebench_runtime::units;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{EngineArgs, ModelInputArgs, parse_count, parse_seconds};

/// Flags shared by `bench` and `compare`.
#[derive(Debug, Args, Clone)]
pub struct MeasureArgs {
    /// Offline batch size, or `auto`: sweep 1, 2, 4, … and pick the throughput knee that
    /// fits the memory budget.
    #[arg(long, default_value = "4", value_name = "N|auto")]
    pub batch: Batch,
    /// Largest batch `--batch auto` tries.
    #[arg(long, default_value_t = 64, value_name = "N", value_parser = parse_count::<usize>)]
    pub max_batch: usize,
    /// Scenarios to run: single-stream (latency), offline (throughput) or both.
    #[arg(long, default_value = "both", value_parser = ["both", "single-stream", "offline"])]
    pub scenario: String,
    /// Untimed warm-up queries per scenario (at least this many ...).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub warmup: u64,
    /// ... and for at least this many seconds.
    #[arg(long, default_value_t = 0.5, value_name = "SECONDS", value_parser = parse_seconds)]
    pub warmup_time: f64,
    /// A timed scenario lasts at least this many seconds ...
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS", value_parser = parse_seconds)]
    pub min_duration: f64,
    /// ... and at least this many queries (both must be met, as in MLPerf LoadGen).
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = parse_count::<u64>)]
    pub min_queries: u64,
    /// Stop a scenario after this many seconds even if --min-queries is not met (0: never).
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS", value_parser = parse_seconds)]
    pub max_duration: f64,
    #[command(flatten)]
    pub model_input: ModelInputArgs,
    /// Real images (image folder, TFRecord file or folder of shards) through the
    /// streaming loader: adds loader-only, end-to-end throughput and the stall fraction.
    #[arg(long, value_name = "DATA")]
    pub data: Option<PathBuf>,
    /// Loader worker threads for --data (default: all cores).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub data_workers: usize,
    /// Board whose budgets give the verdicts: a name from `edgebench targets` or a .toml
    /// file (default: the Jetson this runs on, when detected).
    #[arg(long, value_name = "NAME|FILE")]
    pub target: Option<String>,
    /// Memory budget for one model's process (overrides the target's), e.g. 512MiB.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_bytes)]
    pub memory_budget: Option<u64>,
    /// Write the report as JSON (schema: docs/report-schema.md); `-` for stdout.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write one CSV row per model.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write Markdown tables.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write a self-contained HTML page with SVG charts.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// No progress bar and no table on stdout (files are still written).
    #[arg(short, long)]
    pub quiet: bool,
    /// Also profile each model per node (a few runs, in this process) for the per-layer
    /// time bars of the HTML report and the JSON's `profile`.
    #[arg(long)]
    pub profile: bool,
    /// Measure the GEMM peak again instead of using the cached one.
    #[arg(long, conflicts_with = "no_peak")]
    pub remeasure_peak: bool,
    /// Neither measure nor read the GEMM peak: no "% of peak" in the report (quick runs,
    /// emulators, a machine busy anyway).
    #[arg(long)]
    pub no_peak: bool,
    /// On a Jetson, sample `tegrastats` every MS milliseconds during the timed runs for
    /// power per rail, GPU/EMC load, RAM, temperatures and energy per inference (0: off).
    /// The executable is `$EDGEBENCH_TEGRASTATS`, else `tegrastats` on PATH.
    #[arg(long, default_value_t = 100, value_name = "MS")]
    pub tegrastats_interval: u64,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Run the measurement for `models` and print/write the report.
pub fn run(command: &str, models: &[String], args: &MeasureArgs) -> anyhow::Result<()> {
    // Temporary exports and worker processes go away even when the run is interrupted.
    let _scratch = edgebench_runtime::scratch::Scratch::begin();
    let outputs = outputs(models, args)?;
    let quiet = args.quiet || matches!(&args.json, Some(p) if p.as_os_str() == "-");
    let cfg = CompareConfig {
        command: command.into(),
        models: models.to_vec(),
        plan: Plan {
            warmup_queries: args.warmup,
            warmup_s: args.warmup_time,
            min_queries: args.min_queries,
            min_duration_s: args.min_duration,
            max_duration_s: args.max_duration,
            rounds: if models.len() > 1 { 4 } else { 1 },
            single_stream: args.scenario != "offline",
            offline: args.scenario != "single-stream",
        },
        batch: args.batch,
        max_batch: args.max_batch,
        prepare: args.model_input.prepare_options(Some(1)),
        data: args.data.clone(),
        data_workers: args.data_workers,
        target: args.target.clone(),
        memory_budget: args.memory_budget,
        profile: args.profile,
        remeasure_peak: args.remeasure_peak,
        no_peak: args.no_peak,
        tegrastats_interval_ms: args.tegrastats_interval,
        engine: args.engine.settings(),
        worker_exe: std::env::current_exe().context("locating the edgebench executable")?,
    };
    let mut shown = Shown {
        quiet,
        notes: !args.quiet,
        bar: None,
    };
    let report = compare::compare(&cfg, &mut shown)?;
    if !quiet {
        print!("{}", report::render(&report, Format::Table)?);
    }
    for (format, path) in outputs {
        if path.as_os_str() == "-" {
            println!("{}", report::render(&report, format)?);
        } else {
            report::write(&report, format, &path)?;
            if !quiet {
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}

/// How a comparison is shown on stderr: lines unless quiet, a progress bar for the
/// batch sweep and the measurement.
struct Shown {
    /// `--quiet`, or the report on stdout.
    quiet: bool,
    /// Notes are shown unless `--quiet` (even with the report on stdout).
    notes: bool,
    bar: Option<ProgressBar>,
}

impl compare::Observer for Shown {
    fn say(&mut self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }
    fn note(&mut self, line: &str) {
        if self.notes {
            eprintln!("{line}");
        }
    }
    fn warn(&mut self, line: &str) {
        eprintln!("edgebench: warning: {line}");
    }
    fn sweep_started(&mut self, model: &str, tries: usize) {
        let bar = progress_bar(self.quiet, tries as u64);
        bar.set_message(format!("{model}: batch sweep"));
        self.bar = Some(bar);
    }
    fn sweep_trying(&mut self, model: &str, batch: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{model}: batch sweep, trying batch {batch}"));
            bar.inc(1);
        }
    }
    fn sweep_finished(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
    fn measuring(&mut self, step: &Step) {
        let bar = self.bar.get_or_insert_with(|| progress_bar(self.quiet, 1));
        bar.set_length(step.total);
        bar.set_position(step.done);
        bar.set_message(format!("{}: {}", step.model, step.phase));
    }
    fn measured(&mut self) {
        self.sweep_finished();
    }
}

/// The report files asked for, checked with the command's inputs (model files, --data)
/// by the output-path policy before any measuring starts.
fn outputs(models: &[String], args: &MeasureArgs) -> anyhow::Result<Vec<(Format, PathBuf)>> {
    let mut io = IoPaths::new()
        .input_opt("--data", args.data.as_deref())
        .input_opt("--calibrate", args.model_input.calibrate.as_deref());
    for m in models {
        io = io.input("MODEL", m);
    }
    let mut out = Vec::new();
    for (format, flag, path) in [
        (Format::Json, "--json", &args.json),
        (Format::Csv, "--csv", &args.csv),
        (Format::Markdown, "--markdown", &args.markdown),
        (Format::Html, "--report", &args.report),
    ] {
        let Some(path) = path else { continue };
        io = io.output(flag, path);
        out.push((format, path.clone()));
    }
    io.check()?;
    Ok(out)
}

/// A progress bar on stderr, hidden when quiet or when stderr is not a terminal.
pub fn progress_bar(quiet: bool, len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(len),
        if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
