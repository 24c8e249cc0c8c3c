//! `edgebench train`: train (or fine-tune) a model spec on an image set or `.npy` arrays
//! within a memory budget, on edgebench's own training engine; validation each epoch,
//! metrics as CSV/JSON, checkpoints and resume, ONNX export for the inference engines.
//!
//! The flags are resolved once into a [`Setup`] (model, input, trainable set,
//! optimizer, schedule, micro-batch × accumulation steps, memory plan) and a
//! [`FitConfig`]; `--plan` prints the memory plan that resolution produced and stops
//! there. The loop itself is `edgebench_runtime::train::fit`; this file shows it (a
//! progress bar per epoch, a line per epoch, the export and power summary).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use edgebench_runtime::fsutil::IoPaths;
use edgebench_runtime::model::spec::InputShape;
use edgebench_runtime::train::checkpoint::Progress;
use edgebench_runtime::train::fit::{
    self, Choices, Data, EpochRow, FitConfig, MetricsFile, Running, Setup, setup,
};
use edgebench_runtime::train::optim::OptimizerConfig;
use edgebench_runtime::train::program::plan::Trainable;
use edgebench_runtime::units;
use indicatif::ProgressBar;

use crate::cli::parse_crop;

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
    #[arg(long, default_value = "all", value_name = "all|last:N")]
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
    #[command(flatten)]
    pub preprocess: crate::cli::PreprocessArgs,
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

impl OptimizerArg {
    /// The optimizer, with `momentum` for the SGD kinds.
    pub fn config(self, momentum: f32) -> OptimizerConfig {
        match self {
            OptimizerArg::Sgd => OptimizerConfig::sgd(momentum),
            OptimizerArg::Nesterov => OptimizerConfig::nesterov(momentum),
            OptimizerArg::Adam => OptimizerConfig::adam(),
            OptimizerArg::Adamw => OptimizerConfig::adamw(),
        }
    }
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!("invalid fraction {s:?}: a number in (0, 1)")),
    }
}

/// The run's choices as the runtime takes them.
fn choices(a: &TrainArgs, array_chw: Option<(usize, usize, usize)>) -> anyhow::Result<Choices> {
    let mut optimizer = a.optimizer.config(a.momentum);
    if let Some(wd) = a.weight_decay {
        optimizer = optimizer.with_weight_decay(wd);
    }
    Ok(Choices {
        input_size: a.input_size,
        array_chw,
        trainable: if a.bias_only {
            Trainable::BiasOnly
        } else {
            a.train_layers
        },
        optimizer,
        lr: a.lr,
        schedule: a.schedule.clone(),
        batch: usize::try_from(a.batch).context("--batch is too large")?,
        micro_batch: a.micro_batch.map(|m| m as usize),
        memory_budget: a.memory_budget,
    })
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
        fit::check_checkpoint(
            a.checkpoint.as_deref(),
            a.resume.as_deref(),
            a.overwrite_checkpoint,
        )?;
    }
    let mut spec = setup::load_spec(&a.model)?;
    // --scale/--mean/--std: the images feed, and the exported model carries, these.
    a.preprocess.to_override().apply_for_training(&mut spec)?;
    let classes_hint = spec.classes(setup::input_shape(&spec, a.input_size, None))?;
    let data = match &a.data {
        Some(d) => Some(Data::open(d, a.labels.as_deref(), &spec, classes_hint)?),
        None => None,
    };
    let s = Setup::resolve(spec, &choices(&a, data.as_ref().and_then(Data::array_chw))?)?;
    if a.plan {
        print!("{}", s.plan_text());
        return Ok(());
    }
    let Some(data) = data else {
        bail!("--data is required to train");
    };
    let metrics = a.metrics.as_deref().map(MetricsFile::new).transpose()?;
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
    let b = s.split;
    let mut cfg = FitConfig {
        epochs: a.epochs,
        start: Progress::default(),
        split: b,
        seed: a.seed,
        shuffle: !a.no_shuffle,
        flip: a.flip,
        crop_min_scale: a.crop_min_scale,
        workers: a.workers,
        checkpoint: a.checkpoint.clone(),
        checkpoint_every: a.checkpoint_every,
        max_steps: a.max_steps,
        metrics,
        tegrastats_interval_ms: a.tegrastats_interval,
        export: a.export.clone(),
    };
    cfg.check_data(&train, val.as_ref(), s.input)?;
    let mut trainer = s.trainer(a.threads, a.seed, a.init.as_deref())?;
    if let Some(r) = &a.resume {
        cfg.start = fit::resume(&mut trainer, r, a.seed)?;
    }
    print!("{}", s.header(&trainer, &train, val.as_ref()));
    let begun = Instant::now();
    let mut shown = Shown {
        quiet: a.quiet,
        checkpoint: a.checkpoint.clone(),
        bar: None,
    };
    let done = fit::fit(&mut trainer, &train, val.as_ref(), &cfg, &mut shown)?;
    let seconds = begun.elapsed().as_secs_f64();
    print!("{}", done.summary(a.export.as_deref(), seconds));
    Ok(())
}

/// What the terminal shows while training: a progress bar per epoch (on stderr, hidden
/// with --quiet), a line per finished epoch, and the --max-steps stop.
struct Shown {
    quiet: bool,
    checkpoint: Option<PathBuf>,
    bar: Option<ProgressBar>,
}

impl fit::Observer for Shown {
    fn epoch_started(&mut self, _epoch: u64, _epochs: u64, items: usize) {
        self.bar = Some(super::measure::progress_bar(self.quiet, items as u64));
    }

    fn fed(&mut self, images: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(images as u64);
        }
    }

    fn trained(&mut self, r: &Running) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "epoch {}/{} loss {:.4} acc {:.1}% {:.0} img/s",
                r.epoch,
                r.epochs,
                r.loss,
                100.0 * r.acc,
                r.images_per_s
            ));
        }
    }

    fn epoch_trained(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn epoch_finished(&mut self, row: &EpochRow, epochs: u64) {
        println!("{}", row.line(epochs));
    }

    fn stopped(&mut self, steps: u64, epoch: u64) {
        println!(
            "stopped after {steps} optimizer steps (--max-steps) in epoch {epoch}{}",
            self.checkpoint
                .as_ref()
                .map(|c| format!("; continue with --resume {}", c.display()))
                .unwrap_or_default()
        );
    }
}
