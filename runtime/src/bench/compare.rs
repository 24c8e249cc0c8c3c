//! One comparison from models to report: what `bench` (one model) and `compare` (several)
//! run. [`compare`] resolves the target board and its budgets, turns each model into a
//! measuring [`Job`] (refusing, before anything is measured, a model that cannot fit in
//! memory), takes the machine's GEMM peak, sweeps the batch when asked, measures every
//! model interleaved in worker processes (with `tegrastats` on a Jetson), profiles them
//! per node when asked, and assembles the [`Report`] with ratios, verdicts and the
//! Pareto front. What it has to say on the way goes to an [`Observer`]; the caller
//! prints, draws progress bars and writes the report's files.

use std::path::PathBuf;

use super::interleave::{self, Job, Plan, Step};
use super::pipeline::DataConfig;
use super::runner::RunnerConfig;
use super::{hw, sweep};
use crate::engine::{self, EngineChoice, EngineSettings};
use crate::error::{Error, Result, ResultExt};
use crate::model::{self, PrepareOptions, analysis};
use crate::report::schema::{
    Compute, Machine, ModelResult, NodeTime, Report, SCHEMA_NAME, SCHEMA_VERSION, Settings,
    TargetBudget,
};
use crate::{board, report};

/// The batch of the Offline scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// This batch.
    Fixed(usize),
    /// Sweep 1, 2, 4, … up to a maximum and take the throughput knee within the budget.
    Auto,
}

/// `N` (≥ 1) or `auto`, as `--batch` takes it.
impl std::str::FromStr for Batch {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Self::Fixed(n)),
            _ => Err(format!("invalid batch {s:?}: a number ≥ 1 or `auto`")),
        }
    }
}

/// Everything one comparison needs: the models and how to measure them.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    /// The command, as the report names it (`bench`, `compare`).
    pub command: String,
    /// Models as the user named them: built-in names, spec `.toml` or `.onnx` files.
    pub models: Vec<String>,
    /// Warm-up, minimum queries and durations, scenarios.
    pub plan: Plan,
    /// Offline batch.
    pub batch: Batch,
    /// Largest batch [`Batch::Auto`] tries.
    pub max_batch: usize,
    /// Input size, shape and weight seed of the models.
    pub prepare: PrepareOptions,
    /// Real images through the streaming loader (adds the end-to-end pipeline figures).
    pub data: Option<PathBuf>,
    /// Loader workers for `data` (0: all cores).
    pub data_workers: usize,
    /// Board whose budgets give the verdicts (a name or a `.toml` file); default: the
    /// Jetson this runs on, when detected.
    pub target: Option<String>,
    /// Memory budget of one model's process, overriding the target's.
    pub memory_budget: Option<u64>,
    /// Also profile each model per node.
    pub profile: bool,
    /// Measure the GEMM peak again instead of using the cached one.
    pub remeasure_peak: bool,
    /// Neither measure nor read the GEMM peak: the report has no "% of peak" (quick
    /// runs, emulators, a machine that is busy anyway).
    pub no_peak: bool,
    /// `tegrastats` sampling interval during the timed runs (0: off).
    pub tegrastats_interval_ms: u64,
    /// The engine and its settings.
    pub engine: EngineSettings,
    /// The executable that serves measuring workers (`edgebench __worker`).
    pub worker_exe: PathBuf,
}

/// What a comparison says on its way, for the caller to show.
pub trait Observer {
    /// Progress worth a line unless the user asked for quiet (`target: …`, `data: …`).
    fn say(&mut self, line: &str);
    /// Worth a line even when the report goes to stdout (the detected board and the
    /// target it chose, the engine that really ran): unless the user asked for quiet.
    fn note(&mut self, line: &str);
    /// A warning: always shown.
    fn warn(&mut self, line: &str);
    /// A batch sweep of `model` starts, `tries` batches at most.
    fn sweep_started(&mut self, _model: &str, _tries: usize) {}
    /// The sweep of `model` is trying `batch`.
    fn sweep_trying(&mut self, _model: &str, _batch: usize) {}
    /// The sweep ended.
    fn sweep_finished(&mut self) {}
    /// The interleaved measurement moved on.
    fn measuring(&mut self, _step: &Step) {}
    /// The measurement ended.
    fn measured(&mut self) {}
}

/// An [`Observer`] that shows nothing.
pub struct Silent;

impl Observer for Silent {
    fn say(&mut self, _: &str) {}
    fn note(&mut self, _: &str) {}
    fn warn(&mut self, _: &str) {}
}

/// Measure `cfg.models` and assemble the report (not written anywhere).
pub fn compare(cfg: &CompareConfig, obs: &mut dyn Observer) -> Result<Report> {
    cfg.plan.validate()?;
    // A build without the engine asked for says so before the GEMM peak is measured.
    engine::select::check_compiled_in(cfg.engine.engine)?;
    if cfg.max_batch == 0 {
        return Err(Error::Invalid("--max-batch must be ≥ 1".into()));
    }
    let detected = board::detect();
    let chosen = board::choose(cfg.target.as_deref(), detected.as_ref())?;
    let board = detected.map(|(b, _)| b);
    match (&board, &chosen) {
        (Some(b), Some((t, how))) if how.starts_with("detected") => obs.note(&format!(
            "detected {b}: using target {} for the verdicts",
            t.name
        )),
        (Some(b), None) => obs.note(&format!(
            "detected {b}: no built-in target matches it; give --target for verdicts"
        )),
        _ => {}
    }
    let mut budget = chosen.as_ref().map(|(t, how)| t.budget(how));
    if let Some(m) = cfg.memory_budget {
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
        obs.say(&format!("target: {} ({})", b.name, b.chosen_by));
    }
    if let Some(d) = &cfg.data {
        // Fail before any measuring when the data cannot be used.
        let src = crate::data::source::open(d)?;
        if src.is_empty() {
            return Err(Error::Input {
                path: d.clone(),
                reason: "no images".into(),
            });
        }
        obs.say(&format!("data: {}", src.describe()));
    }

    // Prepared models own the temporary ONNX exports: kept alive until the end.
    let mut prepared = Vec::new();
    let mut jobs = Vec::new();
    let fixed_batch = match cfg.batch {
        Batch::Fixed(b) => b,
        Batch::Auto => 1,
    };
    for m in &cfg.models {
        let (p, job) = job_for(m, cfg, fixed_batch)?;
        prepared.push(p);
        jobs.push(job);
    }
    interleave::name_distinctly(&mut jobs);

    let mut machine: Machine = hw::machine();
    machine.board = board.clone();
    if cfg.no_peak {
        obs.note("GEMM peak not measured (--no-peak): the report gives no share of peak");
    } else {
        if hw::cached_peak().is_none() || cfg.remeasure_peak {
            obs.say(
                "measuring this machine's fp32 GEMM peak (cached unless the machine is busy; see `edgebench hw`) …",
            );
        }
        let peak = hw::gemm_peak(cfg.remeasure_peak);
        if let Some(w) = &peak.warning {
            // The figures against the peak depend on it.
            obs.warn(w);
        }
        machine.gemm_peak_gflops = Some(peak.peak.gflops);
    }

    let mut sweeps = Vec::new();
    if cfg.batch == Batch::Auto && cfg.plan.offline {
        let mem_budget = budget.as_ref().and_then(|b| b.memory_bytes);
        for job in &mut jobs {
            let name = job.cfg.name.clone();
            obs.sweep_started(&name, sweep::BATCHES.len());
            let s = sweep::sweep(
                &cfg.worker_exe,
                job,
                mem_budget,
                cfg.max_batch,
                (cfg.plan.min_duration_s / 4.0).clamp(0.2, 2.0),
                &mut |b| obs.sweep_trying(&name, b),
            )
            .context(|| format!("{name}: --batch auto"))?;
            obs.sweep_finished();
            obs.say(&format!("{name}: batch {} chosen ({})", s.chosen, s.reason));
            let mut shape = job.cfg.single_shape.clone();
            shape[0] = s.chosen;
            job.cfg.offline_shape = (s.chosen > 1).then_some(shape);
            sweeps.push(Some(s));
        }
    } else {
        sweeps.resize(jobs.len(), None);
    }

    let (sampler, tegrastats) =
        board::Tegrastats::start_reported(cfg.tegrastats_interval_ms, board.as_deref());
    if sampler.is_some() || board.is_some() {
        obs.say(&format!("tegrastats: {}", tegrastats.note));
    }
    let mut results =
        interleave::measure_with_power(&cfg.worker_exe, &jobs, &cfg.plan, sampler, &mut |step| {
            obs.measuring(step)
        })?;
    obs.measured();
    // The provider that ran and why any other did not.
    for r in results.iter().filter(|r| !r.engine.fallbacks.is_empty()) {
        obs.note(&format!(
            "{}: ran on {}/{}",
            r.name, r.engine.engine, r.engine.provider
        ));
        for f in &r.engine.fallbacks {
            obs.note(&format!("  fallback: {f}"));
        }
    }

    if cfg.profile {
        for (r, job) in results.iter_mut().zip(&jobs) {
            obs.say(&format!("{}: per-node profile …", r.name));
            r.profile = Some(profile_nodes(r, job)?);
        }
    }
    for (r, s) in results.iter_mut().zip(sweeps) {
        r.batch_sweep = s;
        // A share above 100% marks the peak as stale in every report format.
        r.compute = Compute::against(r.compute.gflops, machine.gemm_peak_gflops);
        if let Some(b) = &budget {
            r.verdicts = board::verdicts(b, r);
        }
    }
    for ((r, job), p) in results.iter_mut().zip(&jobs).zip(&prepared) {
        r.preprocess = Some(crate::model::describe_preprocess(&p.preprocess, p.layout));
        r.file_bytes = std::fs::metadata(&job.cfg.onnx).ok().map(|m| m.len());
        r.precision = crate::onnx::read_model(&job.cfg.onnx)
            .ok()
            .map(|m| crate::quant::precision_of(&m).to_string());
    }
    top1_against_parents(&mut results);
    // Ratios are in the models' order: by position, never by name.
    let ratios = report::ratios(&results);
    for (m, ratio) in results.iter_mut().zip(ratios) {
        m.ratios = Some(ratio);
    }
    let e = &cfg.engine;
    let report = Report {
        schema: SCHEMA_NAME.into(),
        schema_version: SCHEMA_VERSION,
        command: cfg.command.clone(),
        edgebench_version: env!("CARGO_PKG_VERSION").into(),
        created_unix_s: hw::unix_now(),
        machine,
        settings: Settings {
            engine: e.engine.to_string(),
            ep: e.providers.iter().map(|p| p.to_string()).collect(),
            threads: e.threads,
            warmup_queries: cfg.plan.warmup_queries,
            warmup_s: cfg.plan.warmup_s,
            min_duration_s: cfg.plan.min_duration_s,
            min_queries: cfg.plan.min_queries,
            batch: match cfg.batch {
                Batch::Fixed(b) => b,
                Batch::Auto => 0,
            },
            interleaved: jobs.len() > 1,
        },
        target: budget,
        pareto: report::pareto_front(&results),
        models: results,
        tegrastats: Some(tegrastats),
    };
    drop(prepared);
    Ok(report)
}

/// For every `MODEL@precision` measured beside its `MODEL`, both with a top-1: the
/// change in percentage points.
fn top1_against_parents(results: &mut [crate::report::schema::ModelResult]) {
    let parents: Vec<(String, Option<f64>)> = results
        .iter()
        .map(|m| (m.name.clone(), m.accuracy))
        .collect();
    for m in results.iter_mut() {
        let Some((parent, _)) = m.name.rsplit_once('@') else {
            continue;
        };
        let parent_top1 = parents
            .iter()
            .find(|(n, _)| n == parent)
            .and_then(|(_, a)| *a);
        if let (Some(p), Some(a)) = (parent_top1, m.accuracy) {
            m.top1_change_points = Some((a - p) * 100.0);
        }
    }
}

/// Resolve one model argument into a measuring job at Offline batch `batch`.
fn job_for(arg: &str, cfg: &CompareConfig, batch: usize) -> Result<(model::Prepared, Job)> {
    let mut opts = PrepareOptions {
        batch: Some(1),
        ..cfg.prepare.clone()
    };
    if let Some(s) = opts.input_shape.as_mut().filter(|s| !s.is_empty()) {
        s[0] = 1;
    }
    let p = crate::quant::variant::prepare(arg, &opts)?;
    let single = p.input_shape.clone();
    if single.first() != Some(&1) {
        return Err(Error::Invalid(format!(
            "{}: the model fixes its batch at {:?}; edgebench measures batch-1 latency and needs a free or batch-1 input (give --input-shape 1x…)",
            p.path.display(),
            single.first()
        )));
    }
    if batch > 1 && p.spec.is_none() {
        // An ONNX file may fix the batch dimension.
        let declared = analysis::input_shape_of(&crate::onnx::read_model(&p.path)?, &p.path)?;
        if let Some(Some(fixed)) = declared.first().filter(|d| d.is_some_and(|v| v != batch)) {
            return Err(Error::Invalid(format!(
                "{}: the model fixes its batch at {fixed}; use --batch {fixed} (or export it with a free batch dimension)",
                p.path.display()
            )));
        }
    }
    let a = analysis::analyze_file(&p.path, Some(&single))
        .context(|| format!("analysing {}", p.name))?;
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
            seed: cfg.prepare.seed,
            engine: cfg.engine.clone(),
            data: cfg.data.as_ref().map(|path| DataConfig {
                path: path.clone(),
                workers: cfg.data_workers,
                layout: p.layout,
                preprocess: p.preprocess.clone(),
            }),
        },
        params: a.total_params,
        macs_per_image: a.total_macs,
    };
    Ok((p, job))
}

/// Per-node times of one model on the engine its measurement ran on.
fn profile_nodes(r: &ModelResult, job: &Job) -> Result<Vec<NodeTime>> {
    use super::profile::{ProfileOptions, profile};
    let p = profile(
        &job.cfg.onnx,
        EngineChoice::that_ran(&r.engine.engine),
        &job.cfg.engine_options(job.cfg.single_shape.clone()),
        &ProfileOptions {
            warmup: 1,
            runs: 5,
            seed: job.cfg.seed,
        },
    )
    .context(|| format!("profiling {}", r.name))?;
    Ok(p.nodes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::schema::ModelResult;

    fn model(name: &str, accuracy: Option<f64>) -> ModelResult {
        ModelResult {
            name: name.into(),
            accuracy,
            ..Default::default()
        }
    }

    #[test]
    fn variants_get_their_top1_change_against_the_parent_only() {
        let mut r = vec![
            model("lean", Some(0.9925)),
            model("heavy@int8", Some(0.95)),
            model("lean@int8", Some(0.99)),
            model("mobile@int8", Some(0.9)),
            model("heavy", None),
        ];
        top1_against_parents(&mut r);
        let got: Vec<Option<f64>> = r
            .iter()
            .map(|m| m.top1_change_points.map(|d| (d * 1000.0).round() / 1000.0))
            .collect();
        // lean@int8 against lean: −0.25 points; heavy has no top-1, mobile is absent.
        assert_eq!(got, [None, None, Some(-0.25), None, None]);
    }
}
