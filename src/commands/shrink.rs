//! `edgebench shrink`: the most accurate member of a model's width × input-size ×
//! precision family that fits a board's budgets, measured and trained here with the
//! user's data. The search is `edgebench_runtime::shrink::search`; this file resolves
//! the flags, shows its progress and writes the report (`shrink.json`, `shrink.html`,
//! and the final comparison's `final-compare.html`) into the output folder.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use edgebench_runtime::report::{self, Format};
use edgebench_runtime::shrink::space::{self, Space};
use edgebench_runtime::shrink::{self, CompareMeasure, MeasureSettings, Outcome, ShrinkConfig};
use edgebench_runtime::train::fit::setup;
use edgebench_runtime::{Error, board, units};
use indicatif::ProgressBar;

use crate::cli::{EngineArgs, parse_count, parse_seconds};
use crate::commands::train::OptimizerArg;

#[derive(Debug, Args)]
pub struct ShrinkArgs {
    /// The base model: a built-in name (lean, mobile, ...) or a spec .toml.
    #[arg(long, default_value = "lean", value_name = "MODEL")]
    pub model: String,
    /// Training data: an image folder (one sub-folder per class), TFRecord shards, or an
    /// N×C×H×W float32 .npy (with --labels; then every size is the arrays' own).
    #[arg(long, value_name = "DATA")]
    pub data: PathBuf,
    /// Labels of a .npy --data.
    #[arg(long, value_name = "Y.npy")]
    pub labels: Option<PathBuf>,
    /// Held-out validation data (labelled), kept apart from --data: what candidates are
    /// ranked by.
    #[arg(long, value_name = "DATA")]
    pub val: PathBuf,
    /// Labels of a .npy --val.
    #[arg(long, value_name = "Y.npy", requires = "val")]
    pub val_labels: Option<PathBuf>,
    /// The board whose budgets every candidate must fit: a name from `edgebench
    /// targets` or a .toml file (default: the Jetson this runs on, when detected).
    #[arg(long, value_name = "NAME|FILE")]
    pub target: Option<String>,
    /// Time for the whole search, measuring included (e.g. 15m, 1h, 90s).
    #[arg(long, default_value = "20m", value_name = "DURATION", value_parser = units::parse_duration)]
    pub time: f64,
    /// Width multipliers to search (default 0.25,0.5,0.75,1,1.5,2).
    #[arg(long, value_name = "W,W,...", value_delimiter = ',', value_parser = space::parse_width)]
    pub widths: Option<Vec<f64>>,
    /// Depths to search: blocks dropped (−k) or repeated (+k) where the spec marks convs
    /// `optional = true` (default -1,0,1 for such a spec, else 0).
    #[arg(long, value_name = "D,D,...", value_delimiter = ',', allow_hyphen_values = true, value_parser = space::parse_depth)]
    pub depths: Option<Vec<i32>>,
    /// Input sizes (pixels per side) to search (default: ½, ¾ and all of the model's).
    #[arg(long, value_name = "N,N,...", value_delimiter = ',', value_parser = space::parse_size)]
    pub sizes: Option<Vec<usize>>,
    /// Precisions to search: fp32, fp16, int8 (default fp32,int8; int8 is calibrated on
    /// 256 images of --data).
    #[arg(long, value_name = "P,P,...", value_delimiter = ',', value_parser = space::parse_precision)]
    pub precisions: Option<Vec<space::Precision>>,
    /// Images each candidate trains in the first rung of successive halving (default:
    /// as many as fit --time).
    #[arg(long, value_name = "N", value_parser = parse_count::<u64>)]
    pub rung_images: Option<u64>,
    /// Images per optimizer step.
    #[arg(long, default_value_t = 32, value_parser = parse_count::<usize>)]
    pub batch: usize,
    /// Optimizer.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Adam)]
    pub optimizer: OptimizerArg,
    /// Learning rate (default: 0.01 for SGD, 0.001 for Adam/AdamW).
    #[arg(long)]
    pub lr: Option<f32>,
    /// Seed of the initial weights and the data order (the same for every candidate).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Training compute threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub train_threads: usize,
    /// Loader worker threads for image sets (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Output folder: the search's state, spec files, checkpoints, the chosen model and
    /// the reports.
    #[arg(long, default_value = "shrink-out", value_name = "DIR")]
    pub out: PathBuf,
    /// Continue the interrupted search in --out (the same flags) without repeating
    /// finished steps.
    #[arg(long)]
    pub resume: bool,
    /// Measuring: each timed scenario of a candidate lasts at least this many seconds.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS", value_parser = parse_seconds)]
    pub min_duration: f64,
    /// Measuring: Offline (throughput) batch.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = parse_count::<usize>)]
    pub measure_batch: usize,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn run(a: ShrinkArgs) -> anyhow::Result<()> {
    let _scratch = edgebench_runtime::scratch::Scratch::begin();
    let base = setup::load_spec(&a.model)?;
    let default = Space::default_for(&base);
    let space = Space {
        widths: a.widths.clone().unwrap_or(default.widths),
        depths: a.depths.clone().unwrap_or(default.depths),
        sizes: a.sizes.clone().unwrap_or(default.sizes),
        precisions: a.precisions.clone().unwrap_or(default.precisions),
    }
    .normalized()?;
    let Some((board, chosen_by)) = board::choose(a.target.as_deref(), board::detect().as_ref())?
    else {
        return Err(Error::Invalid(
            "shrink needs a board's budgets: give --target NAME|FILE (see `edgebench targets`)"
                .into(),
        )
        .into());
    };
    let cfg = ShrinkConfig {
        base,
        space,
        train: a.data.clone(),
        labels: a.labels.clone(),
        val: a.val.clone(),
        val_labels: a.val_labels.clone(),
        budget: board.budget(&chosen_by),
        time_s: a.time,
        rung_images: a.rung_images,
        batch: a.batch,
        optimizer: a.optimizer.config(0.9),
        lr: a.lr,
        seed: a.seed,
        threads: a.train_threads,
        workers: a.workers,
        out: a.out.clone(),
        resume: a.resume,
    };
    let settings = MeasureSettings {
        min_duration_s: a.min_duration,
        batch: a.measure_batch,
        seed: a.seed,
        workers: a.workers,
        engine: a.engine.settings(),
        worker_exe: std::env::current_exe().context("locating the edgebench executable")?,
    };
    // The target as the user named it (a .toml path stays a path).
    let target = a.target.clone().unwrap_or(board.name);
    let warn = Box::new(|l: &str| eprintln!("edgebench: warning: {l}"));
    let mut measure = CompareMeasure::new(settings, a.data.clone(), target, warn);
    let mut shown = Shown {
        quiet: a.quiet,
        bar: None,
        what: String::new(),
    };
    let outcome = shrink::search(&cfg, &mut measure, &mut shown)?;
    shown.clear();
    let Outcome::Done(rep, compared) = outcome else {
        println!("stopped; continue with --resume --out {}", a.out.display());
        return Ok(());
    };
    print!("{}", rep.text());
    if let Some(c) = compared.as_ref() {
        print!("{}", report::render(c, Format::Table)?);
    }
    for p in rep.write(&a.out, compared.as_ref().as_ref())? {
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// Lines on stdout, a progress bar on stderr while a rung trains.
struct Shown {
    quiet: bool,
    bar: Option<ProgressBar>,
    what: String,
}

impl Shown {
    fn clear(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl shrink::Observer for Shown {
    fn say(&mut self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => println!("{line}"),
        }
    }

    fn progress(&mut self, what: &str, done: u64, total: u64) {
        if self.what != what {
            self.clear();
            self.what = what.to_string();
        }
        let quiet = self.quiet;
        let bar = self.bar.get_or_insert_with(|| {
            let b = super::measure::progress_bar(quiet, total);
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message(format!("training {what}"));
        if done >= total {
            self.clear();
        }
    }
}
