//! `edgebench train`: train (or fine-tune) a model spec on an image set or `.npy` arrays
//! within a memory budget, on edgebench's own training engine; validation each epoch,
//! metrics as CSV/JSON, checkpoints and resume, ONNX export for the inference engines.
//!
//! The flags are resolved once into [`Settings`] (model, input, trainable set,
//! optimizer, schedule, micro-batch × accumulation steps); `--plan` prints the memory
//! plan that resolution produced and stops there.

mod feed;
mod metrics;
mod power;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use clap::{Args, ValueEnum};
use edgebench_runtime::fsutil::IoPaths;
use edgebench_runtime::model::spec::{InputShape, Spec};
use edgebench_runtime::model::{onnx_read, onnx_write, zoo};
use edgebench_runtime::train::checkpoint::Progress;
use edgebench_runtime::train::optim::OptimizerConfig;
use edgebench_runtime::train::plan::{self, MemoryPlan, Trainable};
use edgebench_runtime::train::schedule::Schedule;
use edgebench_runtime::train::trainer::{Trainer, TrainerConfig, first_non_finite};
use edgebench_runtime::{Error, units};

use feed::{Batcher, Data, FeedOptions};
use metrics::EpochRow;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Model to train: a built-in name (lean, lean-w0.5, mobile, ...) or a spec .toml.
    #[arg(long, default_value = "lean", value_name = "MODEL")]
    pub model: String,
    /// Training data: an image folder (one sub-folder per class), TFRecord shards, or an
    /// N×C×H×W float32 .npy (with --labels).
    #[arg(long, value_name = "DATA", required_unless_present = "plan")]
    pub data: Option<PathBuf>,
    /// Labels of a .npy --data: N integers (int64, int32 or uint8).
    #[arg(long, value_name = "Y.npy")]
    pub labels: Option<PathBuf>,
    /// Passes over the training data.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub epochs: u64,
    /// Input size HxW (or HxWxC) to train at (default: a .npy's own, else the model's).
    #[arg(long, value_name = "HxW")]
    pub input_size: Option<InputShape>,
    /// Effective batch: images per optimizer update (split into micro-batches when
    /// the memory budget or --micro-batch asks for it).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// Images per micro-batch (default: the largest that fits --memory-budget, else the
    /// whole batch); gradients of the micro-batches are accumulated.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub micro_batch: Option<u64>,
    /// Memory budget of the training step (parameters, gradients, optimizer state,
    /// activations, workspace), e.g. 512MiB: picks the largest micro-batch that fits.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_bytes)]
    pub memory_budget: Option<u64>,
    /// Print the memory plan (every buffer, per layer) and the micro-batch choice, then exit.
    #[arg(long)]
    pub plan: bool,
    /// Which layers train: all, or last:N (the last N layers with parameters).
    #[arg(long, default_value = "all", value_name = "all|last:N", value_parser = parse_trainable)]
    pub train_layers: Trainable,
    /// Train only the biases of every layer (partial update; no saved activations).
    #[arg(long, conflicts_with = "train_layers")]
    pub bias_only: bool,
    /// Optimizer.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Sgd)]
    pub optimizer: OptimizerArg,
    /// Base learning rate (default: 0.01 for SGD, 0.001 for Adam/AdamW).
    #[arg(long)]
    pub lr: Option<f32>,
    /// SGD momentum (sgd, nesterov).
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    /// Weight decay: L2 added to the gradient (sgd, nesterov, adam) or decoupled (adamw;
    /// default 0.01 there, 0 otherwise).
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Learning-rate schedule over optimizer steps: `constant`, `step:N[:GAMMA]`,
    /// `cosine:T[:MIN]`, `warmup:W+REST`.
    #[arg(long, default_value = "constant", value_name = "SCHEDULE")]
    pub schedule: String,
    /// Validation data (image set or .npy with --val-labels), evaluated each epoch.
    #[arg(long, value_name = "DATA", conflicts_with = "val_split")]
    pub val: Option<PathBuf>,
    /// Labels of a .npy --val.
    #[arg(long, value_name = "Y.npy", requires = "val")]
    pub val_labels: Option<PathBuf>,
    /// Hold out this fraction of --data (seeded) for validation.
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction)]
    pub val_split: Option<f64>,
    /// Augmentation: random horizontal flip (probability ½).
    #[arg(long)]
    pub flip: bool,
    /// Augmentation: random crop of side between this fraction of the image and the
    /// whole, then resize (image sets only; 1 = no cropping).
    #[arg(long, default_value_t = 1.0, value_name = "FRACTION", value_parser = parse_crop)]
    pub crop_min_scale: f64,
    /// Do not shuffle the training data each epoch.
    #[arg(long)]
    pub no_shuffle: bool,
    /// Seed of the initial weights, the shuffles, the augmentation and --val-split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Compute threads (0 = all cores; 1 = the main thread only).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Loader worker threads for image sets (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Per-epoch metrics (loss, accuracy, validation loss and accuracy, images/s, learning
    /// rate) written to FILE.csv or FILE.json after every epoch.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Checkpoint file, written atomically at the end of every epoch (and every
    /// --checkpoint-every steps).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Also checkpoint every N optimizer steps.
    #[arg(long, value_name = "N", requires = "checkpoint", value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: Option<u64>,
    /// Stop after this many optimizer steps in all (writing the --checkpoint there), to
    /// train in time-boxed sessions continued with --resume.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_steps: Option<u64>,
    /// Continue from a checkpoint of the same model and settings (bit-identical to a run
    /// that was never interrupted).
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
    /// Start over even though --checkpoint names an existing file, replacing it (without
    /// this, an existing checkpoint is refused unless it is the --resume file: its run
    /// is continued with --resume FILE --checkpoint FILE).
    #[arg(long, requires = "checkpoint")]
    pub overwrite_checkpoint: bool,
    /// Write the trained model here as ONNX (atomically), for `edgebench run/bench`.
    #[arg(long, value_name = "FILE.onnx")]
    pub export: Option<PathBuf>,
    /// Start from the weights of this ONNX file (same architecture; fine-tuning).
    #[arg(long, value_name = "FROM.onnx", conflicts_with = "resume")]
    pub init: Option<PathBuf>,
    /// On a Jetson, sample `tegrastats` every MS milliseconds while training for power
    /// per rail, GPU load, RAM, temperatures and energy per trained image (0: off). The
    /// executable is `$EDGEBENCH_TEGRASTATS`, else `tegrastats` on PATH.
    #[arg(long, default_value_t = 100, value_name = "MS")]
    pub tegrastats_interval: u64,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    /// SGD with momentum (--momentum 0 for plain SGD).
    Sgd,
    /// SGD with Nesterov momentum.
    Nesterov,
    /// Adam (L2 weight decay).
    Adam,
    /// AdamW (decoupled weight decay).
    Adamw,
}

fn parse_trainable(s: &str) -> Result<Trainable, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!("invalid fraction {s:?}: a number in (0, 1)")),
    }
}

fn parse_crop(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("invalid crop scale {s:?}: a fraction in (0, 1]")),
    }
}

/// Micro-batch × accumulation steps for the effective batch.
#[derive(Debug, Clone)]
pub struct Batching {
    pub effective: usize,
    pub micro: usize,
    pub steps: usize,
    /// Images in the last micro-batch of each accumulation.
    pub last: usize,
    /// With a budget: the largest micro-batch that fits it.
    pub max_micro: Option<usize>,
    pub plan: MemoryPlan,
}

/// Everything the flags resolve to.
pub struct Settings {
    pub spec: Spec,
    pub input: InputShape,
    pub classes: usize,
    pub trainable: Trainable,
    pub optimizer: OptimizerConfig,
    pub schedule: Schedule,
    pub batching: Batching,
}

/// The spec a MODEL argument names (ONNX files are not trainable specs).
fn load_spec(model: &str) -> anyhow::Result<Spec> {
    match zoo::resolve(model)? {
        zoo::ModelRef::Spec(s) => Ok(s),
        zoo::ModelRef::Onnx(p) => Err(Error::Invalid(format!(
            "{}: train takes a built-in model or a spec .toml; to start from an ONNX file's weights give its spec with --model and the file with --init",
            p.display()
        ))
        .into()),
    }
}

impl Settings {
    /// Resolves the flags; `array_chw` is the `.npy` inputs' shape when the data are arrays.
    pub fn resolve(
        a: &TrainArgs,
        array_chw: Option<(usize, usize, usize)>,
    ) -> anyhow::Result<Settings> {
        let spec = load_spec(&a.model)?;
        let input = match (a.input_size, array_chw) {
            (Some(s), _) => InputShape {
                channels: spec.input.channels,
                ..s
            },
            (None, Some((c, h, w))) => InputShape {
                height: h,
                width: w,
                channels: c,
            },
            (None, None) => spec.input,
        };
        let classes = spec.classes(input)?;
        let trainable = if a.bias_only {
            Trainable::BiasOnly
        } else {
            a.train_layers
        };
        let wd = a.weight_decay;
        let optimizer = match a.optimizer {
            OptimizerArg::Sgd | OptimizerArg::Nesterov => OptimizerConfig::Sgd {
                momentum: a.momentum,
                nesterov: a.optimizer == OptimizerArg::Nesterov,
                weight_decay: wd.unwrap_or(0.0),
            },
            // β and ε at PyTorch's defaults.
            OptimizerArg::Adam => OptimizerConfig::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: wd.unwrap_or(0.0),
            },
            OptimizerArg::Adamw => OptimizerConfig::AdamW {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: wd.unwrap_or(0.01),
            },
        };
        optimizer.validate()?;
        let lr = a.lr.unwrap_or(match a.optimizer {
            OptimizerArg::Sgd | OptimizerArg::Nesterov => 0.01,
            OptimizerArg::Adam | OptimizerArg::Adamw => 0.001,
        });
        let schedule = Schedule::parse(&a.schedule, lr)?;
        let batching = batching(a, &spec, input, optimizer.state_per_param(), trainable)?;
        Ok(Settings {
            spec,
            input,
            classes,
            trainable,
            optimizer,
            schedule,
            batching,
        })
    }
}

fn batching(
    a: &TrainArgs,
    spec: &Spec,
    input: InputShape,
    factor: usize,
    trainable: Trainable,
) -> anyhow::Result<Batching> {
    let effective = usize::try_from(a.batch).context("--batch is too large")?;
    let explicit = a.micro_batch.map(|m| (m as usize).min(effective));
    let (micro, steps, last, max_micro) = match (a.memory_budget, explicit) {
        (Some(budget), _) => {
            let fit = plan::fit(spec, input, budget, effective, factor, trainable)?;
            let micro = explicit.map_or(fit.micro_batch, |m| m.min(fit.max_micro_batch));
            let steps = effective.div_ceil(micro);
            (
                micro,
                steps,
                effective - micro * (steps - 1),
                Some(fit.max_micro_batch),
            )
        }
        (None, Some(m)) => {
            let steps = effective.div_ceil(m);
            let micro = effective.div_ceil(steps);
            (micro, steps, effective - micro * (steps - 1), None)
        }
        (None, None) => (effective, 1, effective, None),
    };
    let plan = plan::plan(spec, input, micro, factor, trainable)?;
    Ok(Batching {
        effective,
        micro,
        steps,
        last,
        max_micro,
        plan,
    })
}

/// The plan and the batch split, as `--plan` prints them.
fn plan_text(s: &Settings, budget: Option<u64>) -> String {
    let b = &s.batching;
    let mut out = b.plan.to_table();
    let split = if b.steps == 1 {
        format!("effective batch {} in one micro-batch", b.effective)
    } else if b.last == b.micro {
        format!(
            "effective batch {} = {} micro-batches of {} (gradients accumulated)",
            b.effective, b.steps, b.micro
        )
    } else {
        format!(
            "effective batch {} = {} micro-batches of {} and one of {} (gradients accumulated)",
            b.effective,
            b.steps - 1,
            b.micro,
            b.last
        )
    };
    out.push_str(&format!("\n{split}\n"));
    if let (Some(budget), Some(max)) = (budget, b.max_micro) {
        out.push_str(&format!(
            "memory budget {}: the largest micro-batch that fits is {max}; this plan needs {} ({:.0}% of the budget)\n",
            units::bytes(budget),
            units::bytes(b.plan.total()),
            100.0 * b.plan.total() as f64 / budget.max(1) as f64
        ));
    }
    out
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    // Every output checked against every input before any training (a checkpoint
    // continued with --resume is rewritten on purpose).
    IoPaths::new()
        .input_opt("--data", a.data.as_deref())
        .input_opt("--labels", a.labels.as_deref())
        .input_opt("--val", a.val.as_deref())
        .input_opt("--val-labels", a.val_labels.as_deref())
        .input_opt("--init", a.init.as_deref())
        .input_opt("--resume", a.resume.as_deref())
        .input("--model", &a.model)
        .output_opt("--export", a.export.as_deref())
        .output_opt("--metrics", a.metrics.as_deref())
        .output_opt("--checkpoint", a.checkpoint.as_deref())
        .updates("--checkpoint", "--resume")
        .check()?;
    if !a.plan {
        check_checkpoint(&a)?;
    }
    let spec = load_spec(&a.model)?;
    let classes_hint = spec.classes(a.input_size.map_or(spec.input, |s| InputShape {
        channels: spec.input.channels,
        ..s
    }))?;
    let data = match &a.data {
        Some(d) => Some(Data::open(d, a.labels.as_deref(), &spec, classes_hint)?),
        None => None,
    };
    let s = Settings::resolve(&a, data.as_ref().and_then(Data::array_chw))?;
    if a.plan {
        print!("{}", plan_text(&s, a.memory_budget));
        return Ok(());
    }
    let Some(data) = data else {
        bail!("--data is required to train");
    };
    let metrics_format = a.metrics.as_deref().map(metrics::Format::of).transpose()?;
    let (train, val) = match (&a.val, a.val_split) {
        (Some(v), _) => (
            data,
            Some(Data::open(v, a.val_labels.as_deref(), &s.spec, s.classes)?),
        ),
        (None, Some(f)) => {
            let (t, v) = data.split(f, a.seed)?;
            (t, Some(v))
        }
        (None, None) => (data, None),
    };
    train.check_input(s.input, "--data")?;
    if let Some(v) = &val {
        v.check_input(s.input, "validation data")?;
    }
    if train.array_chw().is_some() && a.crop_min_scale < 1.0 {
        bail!("--crop-min-scale applies to image sets; .npy inputs are fed as they are");
    }
    let cfg = TrainerConfig {
        micro_batch: s.batching.micro,
        accumulation_steps: s.batching.steps,
        trainable: s.trainable,
        optimizer: s.optimizer,
        schedule: s.schedule.clone(),
        threads: a.threads,
        seed: a.seed,
    };
    let mut trainer = Trainer::new(&s.spec, s.input, cfg)?;
    if let Some(init) = &a.init {
        let w = onnx_read::read_weights(init, &s.spec, s.input)
            .with_context(|| format!("--init {}", init.display()))?;
        if let Some(bad) = first_non_finite(&s.spec, &w) {
            bail!("--init {}: non-finite weights: {bad}", init.display());
        }
        trainer.set_weights(&w)?;
    }
    let mut start = Progress::default();
    if let Some(r) = &a.resume {
        start = trainer.load_checkpoint(r)?;
        let seed = start
            .rng
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes);
        if seed != Some(a.seed) {
            bail!(
                "{}: checkpoint was written with --seed {}, this run has --seed {}",
                r.display(),
                seed.map_or("?".into(), |s| s.to_string()),
                a.seed
            );
        }
    }
    let b = &s.batching;
    println!(
        "training {} at {} on {}{}",
        s.spec.name,
        s.input,
        train.describe(),
        val.as_ref()
            .map(|v| format!("; validation: {}", v.describe()))
            .unwrap_or_default()
    );
    println!(
        "batch {} = {} × micro-batch {}; {} trainable; {}; arena {}",
        b.effective,
        b.steps,
        b.micro,
        s.trainable,
        optimizer_name(&s.optimizer),
        units::bytes(trainer.arena_bytes() as u64)
    );
    let opts = FeedOptions {
        chunk: b.micro,
        shuffle: !a.no_shuffle,
        flip: a.flip,
        crop_min_scale: a.crop_min_scale,
        seed: a.seed,
        workers: a.workers,
        input: s.input,
        preprocess: s.spec.preprocess.clone(),
    };
    let val_opts = FeedOptions {
        shuffle: false,
        flip: false,
        crop_min_scale: 1.0,
        ..opts.clone()
    };
    let mut rows: Vec<EpochRow> = Vec::new();
    let mut monitor = power::Monitor::start(a.tegrastats_interval);
    let mut last_good: Option<(PathBuf, u64)> = None;
    let img = s.input.height * s.input.width * s.input.channels;
    let begun = Instant::now();
    if let Some(m) = a.max_steps.filter(|&m| trainer.updates() >= m) {
        bail!(
            "--max-steps {m}: the run is already at step {}",
            trainer.updates()
        );
    }
    for epoch in start.epoch..a.epochs {
        let skip = if epoch == start.epoch {
            start.position
        } else {
            0
        };
        let t0 = Instant::now();
        let bar = super::measure::progress_bar(a.quiet, train.len() as u64);
        let (mut loss_sum, mut correct, mut seen, mut cut) = (0f64, 0usize, 0usize, 0u64);
        let mut lr = None;
        let mut on_micro = |x: &[f32], y: &[usize]| -> anyhow::Result<()> {
            cut += 1;
            bar.inc(y.len() as u64);
            if cut <= skip {
                return Ok(());
            }
            let st = trainer.step(x, y).map_err(|e| diverged(e, &last_good))?;
            loss_sum += f64::from(st.loss) * y.len() as f64;
            correct += st.correct;
            seen += y.len();
            if st.lr.is_some() {
                lr = st.lr;
                if let (Some(ck), Some(every)) = (&a.checkpoint, a.checkpoint_every)
                    && st.updates % every == 0
                {
                    save(&mut trainer, ck, epoch, cut, a.seed)?;
                    last_good = Some((ck.clone(), st.updates));
                }
                if a.max_steps.is_some_and(|m| st.updates >= m) {
                    if let Some(ck) = &a.checkpoint {
                        save(&mut trainer, ck, epoch, cut, a.seed)?;
                    }
                    return Err(MaxSteps.into());
                }
            }
            bar.set_message(format!(
                "epoch {}/{} loss {:.4} acc {:.1}% {:.0} img/s",
                epoch + 1,
                a.epochs,
                loss_sum / seen.max(1) as f64,
                100.0 * correct as f64 / seen.max(1) as f64,
                seen as f64 / t0.elapsed().as_secs_f64().max(1e-9)
            ));
            Ok(())
        };
        let mut batcher = Batcher::new(img, b.micro, b.steps, b.last);
        let fed = train
            .epoch(epoch, &opts, &mut |x, y| batcher.push(x, y, &mut on_micro))
            .and_then(|()| batcher.finish(&mut on_micro));
        match fed {
            Err(e) if e.is::<MaxSteps>() => {
                monitor.record(t0, Instant::now(), seen as u64);
                bar.finish_and_clear();
                println!(
                    "stopped after {} optimizer steps (--max-steps) in epoch {}{}",
                    trainer.updates(),
                    epoch + 1,
                    a.checkpoint
                        .as_ref()
                        .map(|c| format!("; continue with --resume {}", c.display()))
                        .unwrap_or_default()
                );
                break;
            }
            r => r?,
        }
        if let Some(r) = trainer.flush().map_err(|e| diverged(e, &last_good))? {
            lr = Some(r);
        }
        let ended = Instant::now();
        let train_secs = ended.duration_since(t0).as_secs_f64();
        monitor.record(t0, ended, seen as u64);
        bar.finish_and_clear();
        if let Some(ck) = &a.checkpoint {
            save(&mut trainer, ck, epoch + 1, 0, a.seed)?;
            last_good = Some((ck.clone(), trainer.updates()));
        }
        let (val_loss, val_acc) = match &val {
            Some(v) => {
                let (l, c) = evaluate(&mut trainer, v, &val_opts)?;
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
            // The f32 rate as written (0.01, not 0.009999999776…).
            lr: lr.map(|v| v.to_string().parse().unwrap_or(f64::from(v))),
            seconds: train_secs,
        };
        println!("{}", row.line(a.epochs));
        rows.push(row);
        if let (Some(p), Some(f)) = (&a.metrics, metrics_format) {
            metrics::write(p, f, &s.spec.name, &rows, None)?;
        }
    }
    let power = monitor.finish();
    if let (Some(p), Some(f @ metrics::Format::Json)) = (&a.metrics, metrics_format) {
        metrics::write(p, f, &s.spec.name, &rows, Some(&power))?;
    }
    if let Some(p) = &a.export {
        let w = trainer.weights()?;
        if let Some(bad) = first_non_finite(&s.spec, &w) {
            bail!(
                "--export {}: refusing to write non-finite weights: {bad}",
                p.display()
            );
        }
        let sum = onnx_write::export_weights(&s.spec, s.input, &w, p)
            .map_err(|e| export_failed(e, &s.spec, s.input, &w, a.checkpoint.as_deref()))?;
        println!(
            "exported {} ({} parameters, {}) to {}",
            sum.model,
            units::thousands(sum.params),
            units::bytes(sum.bytes),
            p.display()
        );
    }
    print!("{}", power.text());
    println!(
        "done: {} optimizer steps in {:.1} s",
        trainer.updates(),
        begun.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `--max-steps` reached: ends the feeding of an epoch early (not a failure).
#[derive(Debug)]
struct MaxSteps;

impl std::fmt::Display for MaxSteps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("--max-steps reached")
    }
}

impl std::error::Error for MaxSteps {}

fn optimizer_name(o: &OptimizerConfig) -> String {
    match *o {
        OptimizerConfig::Sgd {
            momentum,
            nesterov,
            weight_decay,
        } => format!(
            "SGD{} momentum {momentum} weight decay {weight_decay}",
            if nesterov { " (Nesterov)" } else { "" }
        ),
        OptimizerConfig::Adam { weight_decay, .. } => format!("Adam weight decay {weight_decay}"),
        OptimizerConfig::AdamW { weight_decay, .. } => format!("AdamW weight decay {weight_decay}"),
    }
}

/// An existing `--checkpoint` holds a run's progress: refused (before any work) unless it
/// is the `--resume` file or `--overwrite-checkpoint` is given. Missing files, empty
/// files and devices are not refused.
fn check_checkpoint(a: &TrainArgs) -> anyhow::Result<()> {
    let Some(ck) = &a.checkpoint else {
        return Ok(());
    };
    let Ok(m) = std::fs::metadata(ck) else {
        return Ok(());
    };
    if a.overwrite_checkpoint || !m.is_file() || m.len() == 0 {
        return Ok(());
    }
    use std::os::unix::fs::MetadataExt;
    let id = (m.dev(), m.ino());
    let resumed = a.resume.as_ref().and_then(|r| std::fs::metadata(r).ok());
    if resumed.is_some_and(|r| (r.dev(), r.ino()) == id) {
        return Ok(());
    }
    let ck = ck.display();
    let how = match &a.resume {
        Some(r) => format!(
            "this run continues {} instead; pass --overwrite-checkpoint to replace {ck} with it",
            r.display()
        ),
        None => format!(
            "continue its run with --resume {ck} --checkpoint {ck}, or pass --overwrite-checkpoint to start over and replace it"
        ),
    };
    Err(Error::Invalid(format!("--checkpoint {ck} already exists; {how}")).into())
}

/// The final `--export` write failed (a full disk, a device that refuses it): the trained
/// weights go to a fallback file beside the `--checkpoint` (else in the temporary folder),
/// and the error says where.
fn export_failed(
    e: Error,
    spec: &Spec,
    input: InputShape,
    w: &onnx_write::Weights,
    checkpoint: Option<&Path>,
) -> anyhow::Error {
    let dir = match checkpoint.map(|c| c.parent().unwrap_or(Path::new(""))) {
        Some(d) if d.as_os_str().is_empty() => PathBuf::from("."),
        Some(d) => d.to_path_buf(),
        None => std::env::temp_dir(),
    };
    let name: String = spec
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let pid = std::process::id();
    // A name no file has yet: the fallback must not replace anything either.
    let fallback = (0..1000)
        .map(|k| match k {
            0 => dir.join(format!("edgebench-{name}-{pid}.onnx")),
            k => dir.join(format!("edgebench-{name}-{pid}-{k}.onnx")),
        })
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .unwrap_or_else(|| dir.join(format!("edgebench-{name}-{pid}.onnx")));
    let kept = checkpoint
        .map(|c| format!("; the checkpoint {} holds them", c.display()))
        .unwrap_or_default();
    match onnx_write::export_weights(spec, input, w, &fallback) {
        Ok(_) => anyhow!(
            "--export {e}; the trained model was saved to {} instead",
            fallback.display()
        ),
        Err(e2) => anyhow!(
            "--export {e}; saving the trained model to {} failed too ({e2}){kept}",
            fallback.display()
        ),
    }
}

/// A NaN/inf loss: say so with the step, and which checkpoint is the last good one.
fn diverged(e: Error, last_good: &Option<(PathBuf, u64)>) -> anyhow::Error {
    match (&e, last_good) {
        (Error::Diverged { .. }, Some((p, step))) => anyhow!(
            "{e}; stopped, the last good checkpoint {} (after step {step}) is kept",
            p.display()
        ),
        (Error::Diverged { .. }, None) => anyhow!("{e}; stopped (no checkpoint was written)"),
        _ => e.into(),
    }
}

fn save(t: &mut Trainer, path: &Path, epoch: u64, position: u64, seed: u64) -> anyhow::Result<()> {
    let progress = Progress {
        epoch,
        position,
        rng: seed.to_le_bytes().to_vec(),
    };
    t.save_checkpoint(path, &progress)
        .with_context(|| format!("writing checkpoint {}", path.display()))
}

/// Mean loss and accuracy over a whole data part, a micro-batch at a time.
fn evaluate(t: &mut Trainer, data: &Data, o: &FeedOptions) -> anyhow::Result<(f64, f64)> {
    let (mut loss, mut correct, mut n) = (0f64, 0usize, 0usize);
    data.epoch(0, o, &mut |x, y| {
        let (l, c) = t.evaluate(x, y)?;
        loss += f64::from(l) * y.len() as f64;
        correct += c;
        n += y.len();
        Ok(())
    })?;
    Ok((loss / n.max(1) as f64, correct as f64 / n.max(1) as f64))
}
