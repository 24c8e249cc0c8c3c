//! What `bench` and `compare` share: their flags, resolving models into measuring jobs,
//! the machine and target, the batch sweep, the interleaved measurement with a progress
//! bar, and writing the report in every format asked for.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use edgebench_runtime::Error;
use edgebench_runtime::bench::measure::{self, Job, Plan};
use edgebench_runtime::bench::pipeline::DataConfig;
use edgebench_runtime::bench::result::{
    Compute, Machine, Report, SCHEMA_NAME, SCHEMA_VERSION, Settings, TargetBudget, TegrastatsStatus,
};
use edgebench_runtime::bench::runner::RunnerConfig;
use edgebench_runtime::bench::{hw, sweep};
use edgebench_runtime::fsutil::IoPaths;
use edgebench_runtime::model::{self, analysis};
use edgebench_runtime::report::{self, Format};
use edgebench_runtime::{engine, target, units};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{EngineArgs, ModelInputArgs};

/// Flags shared by `bench` and `compare`.
#[derive(Debug, Args, Clone)]
pub struct MeasureArgs {
    /// Offline batch size, or `auto`: sweep 1, 2, 4, … and pick the throughput knee that
    /// fits the memory budget.
    #[arg(long, default_value = "4", value_name = "N|auto")]
    pub batch: BatchArg,
    /// Largest batch `--batch auto` tries.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_batch: usize,
    /// Scenarios to run: single-stream (latency), offline (throughput) or both.
    #[arg(long, default_value = "both", value_parser = ["both", "single-stream", "offline"])]
    pub scenario: String,
    /// Untimed warm-up queries per scenario (at least this many ...).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub warmup: u64,
    /// ... and for at least this many seconds.
    #[arg(long, default_value_t = 0.5, value_name = "SECONDS")]
    pub warmup_time: f64,
    /// A timed scenario lasts at least this many seconds ...
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub min_duration: f64,
    /// ... and at least this many queries (both must be met, as in MLPerf LoadGen).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub min_queries: u64,
    /// Stop a scenario after this many seconds even if --min-queries is not met (0: never).
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
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
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
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
    #[arg(long)]
    pub remeasure_peak: bool,
    /// On a Jetson, sample `tegrastats` every MS milliseconds during the timed runs for
    /// power per rail, GPU/EMC load, RAM, temperatures and energy per inference (0: off).
    /// The executable is `$EDGEBENCH_TEGRASTATS`, else `tegrastats` on PATH.
    #[arg(long, default_value_t = 100, value_name = "MS")]
    pub tegrastats_interval: u64,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `--batch N` or `--batch auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchArg {
    Fixed(usize),
    Auto,
}

impl std::str::FromStr for BatchArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Self::Fixed(n)),
            _ => Err(format!("invalid batch {s:?}: a number ≥ 1 or `auto`")),
        }
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    units::parse_bytes(s)
}

/// Run the measurement for `models` and print/write the report.
pub fn run(command: &str, models: &[String], args: &MeasureArgs) -> anyhow::Result<()> {
    // Temporary exports and worker processes go away even when the run is interrupted.
    let _scratch = edgebench_runtime::scratch::Scratch::begin();
    let outputs = outputs(models, args)?;
    let plan = Plan {
        warmup_queries: args.warmup,
        warmup_s: args.warmup_time,
        min_queries: args.min_queries,
        min_duration_s: args.min_duration,
        max_duration_s: args.max_duration,
        rounds: if models.len() > 1 { 4 } else { 1 },
        single_stream: args.scenario != "offline",
        offline: args.scenario != "single-stream",
    };
    plan.validate()?;
    if args.max_batch == 0 {
        return Err(Error::Invalid("--max-batch must be ≥ 1".into()).into());
    }
    let quiet = args.quiet || matches!(&args.json, Some(p) if p.as_os_str() == "-");
    let say = |msg: &str| {
        if !quiet {
            eprintln!("{msg}");
        }
    };

    let (target, detected_board) = resolve_target(args.target.as_deref())?;
    if !args.quiet {
        // Said even with `--json -`: it goes to stderr, and it changes the verdicts.
        match (&detected_board, &target) {
            (Some(b), Some((t, how))) if how.starts_with("detected") => {
                eprintln!("detected {b}: using target {} for the verdicts", t.name)
            }
            (Some(b), None) => {
                eprintln!("detected {b}: no built-in target matches it; give --target for verdicts")
            }
            _ => {}
        }
    }
    let mut budget = target.as_ref().map(|(t, how)| t.budget(how));
    if let Some(m) = args.memory_budget {
        let b = budget.get_or_insert_with(|| TargetBudget {
            name: "custom".into(),
            description: "budget from the command line".into(),
            chosen_by: "--memory-budget".into(),
            ..Default::default()
        });
        b.memory_bytes = Some(m);
    }
    if let Some(b) = budget
        .as_ref()
        .filter(|b| !b.chosen_by.starts_with("detected"))
    {
        say(&format!("target: {} ({})", b.name, b.chosen_by));
    }

    if let Some(d) = &args.data {
        // Fail before any measuring when the data cannot be used.
        let src = edgebench_runtime::data::source::open(d)?;
        if src.is_empty() {
            return Err(Error::Input {
                path: d.clone(),
                reason: "no images".into(),
            }
            .into());
        }
        say(&format!("data: {}", src.describe()));
    }
    let exe = std::env::current_exe().context("locating the edgebench executable")?;
    // Prepared models own the temporary ONNX exports: keep them alive until the end.
    let mut prepared = Vec::new();
    let mut jobs = Vec::new();
    let fixed_batch = match args.batch {
        BatchArg::Fixed(b) => b,
        BatchArg::Auto => 1,
    };
    for m in models {
        let (p, job) = job_for(m, args, fixed_batch)?;
        prepared.push(p);
        jobs.push(job);
    }
    measure::name_distinctly(&mut jobs);

    let mut machine: Machine = hw::machine();
    machine.board = detected_board.clone();
    if hw::cached_peak().is_none() || args.remeasure_peak {
        say(
            "measuring this machine's fp32 GEMM peak (cached unless the machine is busy; see `edgebench hw`) …",
        );
    }
    let peak = hw::gemm_peak(args.remeasure_peak);
    if let Some(w) = &peak.warning {
        // Said even with --quiet: the figures against the peak depend on it.
        eprintln!("edgebench: warning: {w}");
    }
    machine.gemm_peak_gflops = Some(peak.peak.gflops);

    let mut sweeps = Vec::new();
    if args.batch == BatchArg::Auto && plan.offline {
        let mem_budget = budget.as_ref().and_then(|b| b.memory_bytes);
        for job in &mut jobs {
            let bar = progress_bar(quiet, sweep::BATCHES.len() as u64);
            bar.set_message(format!("{}: batch sweep", job.cfg.name));
            let s = sweep::sweep(
                &exe,
                job,
                mem_budget,
                args.max_batch,
                (args.min_duration / 4.0).clamp(0.2, 2.0),
                &mut |b| {
                    bar.set_message(format!("{}: batch sweep, trying batch {b}", job.cfg.name));
                    bar.inc(1);
                },
            )
            .with_context(|| format!("{}: --batch auto", job.cfg.name))?;
            bar.finish_and_clear();
            say(&format!(
                "{}: batch {} chosen ({})",
                job.cfg.name, s.chosen, s.reason
            ));
            let mut shape = job.cfg.single_shape.clone();
            shape[0] = s.chosen;
            job.cfg.offline_shape = (s.chosen > 1).then_some(shape);
            sweeps.push(Some(s));
        }
    } else {
        sweeps.resize(jobs.len(), None);
    }

    let (sampler, tegrastats) = start_tegrastats(args.tegrastats_interval, &detected_board);
    if sampler.is_some() || detected_board.is_some() {
        say(&format!("tegrastats: {}", tegrastats.note));
    }
    let bar = progress_bar(quiet, 1);
    let mut results = measure::measure_with_power(&exe, &jobs, &plan, sampler, &mut |step| {
        bar.set_length(step.total);
        bar.set_position(step.done);
        bar.set_message(format!("{}: {}", step.model, step.phase));
    })?;
    bar.finish_and_clear();
    if !args.quiet {
        // The provider that ran and why any other did not, even with `--json -`.
        for r in results.iter().filter(|r| !r.engine.fallbacks.is_empty()) {
            eprintln!(
                "{}: ran on {}/{}",
                r.name, r.engine.engine, r.engine.provider
            );
            for f in &r.engine.fallbacks {
                eprintln!("  fallback: {f}");
            }
        }
    }

    if args.profile {
        for (r, job) in results.iter_mut().zip(&jobs) {
            say(&format!("{}: per-node profile …", r.name));
            r.profile = Some(profile_nodes(r, job)?);
        }
    }
    let peak = machine.gemm_peak_gflops;
    for (r, s) in results.iter_mut().zip(sweeps) {
        r.batch_sweep = s;
        // A share above 100% marks the peak as stale in every report format.
        r.compute = Compute::against(r.compute.gflops, peak);
        if let Some(b) = &budget {
            r.verdicts = target::verdicts(b, r);
        }
    }
    // Ratios are in the models' order: by position, never by name.
    let ratios = report::ratios(&results);
    for (m, ratio) in results.iter_mut().zip(ratios) {
        m.ratios = Some(ratio);
    }
    let report = Report {
        schema: SCHEMA_NAME.into(),
        schema_version: SCHEMA_VERSION,
        command: command.into(),
        edgebench_version: env!("CARGO_PKG_VERSION").into(),
        created_unix_s: hw::unix_now(),
        machine,
        settings: Settings {
            engine: args.engine.engine.to_string(),
            ep: args.engine.ep.0.iter().map(|p| p.to_string()).collect(),
            threads: args.engine.threads,
            warmup_queries: plan.warmup_queries,
            warmup_s: plan.warmup_s,
            min_duration_s: plan.min_duration_s,
            min_queries: plan.min_queries,
            batch: match args.batch {
                BatchArg::Fixed(b) => b,
                BatchArg::Auto => 0,
            },
            interleaved: jobs.len() > 1,
        },
        target: budget,
        pareto: report::pareto_front(&results),
        models: results,
        tegrastats: Some(tegrastats),
    };
    drop(prepared);

    if !quiet {
        print!("{}", report::render(&report, Format::Table)?);
    }
    for (format, path) in outputs {
        if path.as_os_str() == "-" {
            println!("{}", report::render(&report, format)?);
        } else {
            report::write(&report, format, &path)?;
            say(&format!("wrote {}", path.display()));
        }
    }
    Ok(())
}

/// The report files asked for, checked with the command's inputs (model files, --data)
/// by the output-path policy before any measuring starts.
fn outputs(models: &[String], args: &MeasureArgs) -> anyhow::Result<Vec<(Format, PathBuf)>> {
    let mut io = IoPaths::new().input_opt("--data", args.data.as_deref());
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

/// A target and how it was chosen.
type Chosen = Option<(target::Target, String)>;

/// Start `tegrastats` for the timed runs when it is there and wanted; the status line
/// every report carries either way.
pub(super) fn start_tegrastats(
    interval_ms: u64,
    board: &Option<String>,
) -> (Option<target::Sampler>, TegrastatsStatus) {
    target::Tegrastats::start_reported(interval_ms, board.as_deref())
}

/// Per-node times of one model on the engine its measurement ran on.
fn profile_nodes(
    r: &edgebench_runtime::bench::result::ModelResult,
    job: &Job,
) -> anyhow::Result<Vec<edgebench_runtime::bench::result::NodeTime>> {
    use edgebench_runtime::bench::profile::{ProfileOptions, profile};
    use edgebench_runtime::engine::EngineChoice;
    let choice = EngineChoice::that_ran(&r.engine.engine);
    let opts = job.cfg.engine_options(job.cfg.single_shape.clone());
    let p = profile(
        &job.cfg.onnx,
        choice,
        &opts,
        &ProfileOptions {
            warmup: 1,
            runs: 5,
            seed: job.cfg.seed,
        },
    )
    .with_context(|| format!("profiling {}", r.name))?;
    Ok(p.nodes)
}

/// `--target`, else the Jetson board this runs on when it maps to a built-in target; also
/// the detected board's name.
fn resolve_target(arg: Option<&str>) -> anyhow::Result<(Chosen, Option<String>)> {
    let detected = target::detect();
    let board = detected.as_ref().map(|(b, _)| b.clone());
    if let Some(name) = arg {
        return Ok((Some((target::resolve(name)?, "--target".into())), board));
    }
    match detected {
        Some((b, Some(t))) => Ok((
            Some((target::resolve(&t)?, format!("detected: {b}"))),
            Some(b),
        )),
        _ => Ok((None, board)),
    }
}

/// Resolve one MODEL argument into a measuring job.
fn job_for(arg: &str, args: &MeasureArgs, batch: usize) -> anyhow::Result<(model::Prepared, Job)> {
    let mut opts = args.model_input.prepare_options(Some(1));
    if let Some(s) = opts.input_shape.as_mut().filter(|s| !s.is_empty()) {
        s[0] = 1;
    }
    let p = model::prepare(arg, &opts)?;
    let single = p.input_shape.clone();
    if single.first() != Some(&1) {
        return Err(Error::Invalid(format!(
            "{}: the model fixes its batch at {:?}; edgebench measures batch-1 latency and needs a free or batch-1 input (give --input-shape 1x…)",
            p.path.display(),
            single.first()
        ))
        .into());
    }
    if batch > 1 && p.spec.is_none() {
        // An ONNX file may fix the batch dimension.
        let declared =
            analysis::input_shape_of(&edgebench_runtime::onnx::read_model(&p.path)?, &p.path)?;
        if let Some(Some(fixed)) = declared.first().filter(|d| d.is_some_and(|v| v != batch)) {
            return Err(Error::Invalid(format!(
                "{}: the model fixes its batch at {fixed}; use --batch {fixed} (or export it with a free batch dimension)",
                p.path.display()
            ))
            .into());
        }
    }
    let a = analysis::analyze_file(&p.path, Some(&single))
        .with_context(|| format!("analysing {}", p.name))?;
    // A model that cannot fit is refused here, named as the user gave it, before the
    // GEMM peak is measured or a worker started (the worker checks again, per shape).
    engine::check_memory(&p.path, &single).map_err(|e| e.at(arg))?;
    let offline_shape = (batch > 1).then(|| {
        let mut s = single.clone();
        s[0] = batch;
        s
    });
    let job = Job {
        source: arg.to_string(),
        cfg: RunnerConfig {
            name: p.name.clone(),
            onnx: p.path.clone(),
            single_shape: single,
            offline_shape,
            seed: args.model_input.seed,
            engine: args.engine.settings(),
            data: args.data.as_ref().map(|path| DataConfig {
                path: path.clone(),
                workers: args.data_workers,
                layout: p.layout,
                preprocess: p.preprocess.clone(),
            }),
        },
        params: a.total_params,
        macs_per_image: a.total_macs,
    };
    Ok((p, job))
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
