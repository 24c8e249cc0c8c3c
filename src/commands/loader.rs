//! `edgebench loader`: measure the input pipeline alone — the streaming loader or the
//! naive one-image-at-a-time baseline — over an image folder or TFRecord shards, and
//! report images/s, MB/s of encoded input, per-stage times, pool size and peak RSS.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Args, ValueEnum};
use edgebench_runtime::bench::memory;
use edgebench_runtime::data::decode::{StageTimes, Target};
use edgebench_runtime::data::loader::{AugmentConfig, Loader, LoaderConfig, OnError, Order, Stop};
use edgebench_runtime::data::{Source, naive, source};
use edgebench_runtime::model::Layout;

use super::bytes;
use crate::cli::parse_count;

#[derive(Debug, Args)]
pub struct LoaderArgs {
    /// Data set: an image folder (one sub-folder per class, or flat) or TFRecord shards.
    #[arg(value_name = "DATA")]
    pub data: PathBuf,
    /// stream: the pooled multi-worker loader; naive: one image at a time, fresh buffers.
    #[arg(long, value_enum, default_value_t = Mode::Stream)]
    pub mode: Mode,
    /// Worker threads for the streaming loader (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 32, value_parser = parse_count::<usize>)]
    pub batch: usize,
    /// Batch slots in the pool (0 = 2 × workers + 1).
    #[arg(long, default_value_t = 0)]
    pub slots: usize,
    /// Output size HxW (e.g. 224x224).
    #[arg(long, default_value = "224x224", value_parser = parse_size)]
    pub size: (u32, u32),
    /// Layout of the output tensor.
    #[arg(long, value_enum, default_value_t = LayoutArg::Nchw)]
    pub layout: LayoutArg,
    /// Whole passes over the data set (ignored with --images).
    #[arg(long, default_value_t = 1, value_parser = parse_count::<u64>)]
    pub epochs: u64,
    /// Stop after this many images (cycling through the data set as needed).
    #[arg(long, value_parser = parse_count::<u64>)]
    pub images: Option<u64>,
    /// Shuffle each epoch (seeded by --seed).
    #[arg(long)]
    pub shuffle: bool,
    /// Seed for shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Training augmentation, in the same pass: random horizontal flip (probability ½).
    #[arg(long)]
    pub flip: bool,
    /// Training augmentation: random crop of side between this fraction of the image and
    /// the whole, then resize (1 = no cropping).
    #[arg(long, default_value_t = 1.0, value_name = "FRACTION", value_parser = parse_crop)]
    pub crop_min_scale: f64,
    /// Deliver batches as soon as ready instead of in order.
    #[arg(long)]
    pub as_ready: bool,
    /// Bad items: skip (count and report them) or fail (stop at the first).
    #[arg(long, value_enum, default_value_t = OnErrorArg::Skip)]
    pub on_error: OnErrorArg,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Stream,
    Naive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    Nchw,
    Nhwc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnErrorArg {
    Skip,
    Fail,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (h, w) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected HxW, got {s:?}"))?;
    let p = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|&v| (1..=16384).contains(&v))
            .ok_or_else(|| format!("size {v:?} must be an integer in 1..=16384"))
    };
    Ok((p(h)?, p(w)?))
}

/// What a run measured, in either mode.
#[derive(Debug, serde::Serialize)]
struct Summary {
    mode: &'static str,
    source: String,
    workers: usize,
    batch: usize,
    size: [u32; 2],
    layout: &'static str,
    /// The JPEG decoder of this build.
    jpeg_decoder: &'static str,
    images: u64,
    seconds: f64,
    images_per_s: f64,
    encoded_mb_per_s: f64,
    /// Per-stage time summed over workers, seconds.
    stage_s: StageSeconds,
    pool_bytes: usize,
    peak_rss_bytes: u64,
    /// Bad items skipped (each once, however many epochs read it).
    errors: u64,
    /// Of those, JPEGs cut short.
    truncated: u64,
    first_errors: Vec<String>,
}

/// What went wrong with the items of a run.
struct Failures {
    errors: u64,
    truncated: u64,
    first: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
struct StageSeconds {
    read: f64,
    decode: f64,
    resize: f64,
    normalize: f64,
}

impl From<&StageTimes> for StageSeconds {
    fn from(t: &StageTimes) -> Self {
        Self {
            read: t.read.as_secs_f64(),
            decode: t.decode.as_secs_f64(),
            resize: t.resize.as_secs_f64(),
            normalize: t.normalize.as_secs_f64(),
        }
    }
}

pub fn run(args: LoaderArgs) -> anyhow::Result<()> {
    // Its errors name the path already.
    let src: Arc<dyn Source> = Arc::from(source::open(&args.data)?);
    if src.is_empty() {
        bail!("{}: no images", args.data.display());
    }
    let layout = match args.layout {
        LayoutArg::Nchw => Layout::Nchw,
        LayoutArg::Nhwc => Layout::Nhwc,
    };
    let target = Target::new(args.size.0, args.size.1, layout);
    let summary = match args.mode {
        Mode::Stream => stream(&args, src, target)?,
        Mode::Naive => run_naive(&args, src, target)?,
    };
    if args.json {
        super::print_json("the loader summary", &summary)?;
    } else {
        print_text(&summary);
    }
    Ok(())
}

fn stream(args: &LoaderArgs, src: Arc<dyn Source>, target: Target) -> anyhow::Result<Summary> {
    let describe = src.describe();
    let cfg = LoaderConfig::new(target, args.batch)
        .workers(args.workers)
        .slots(args.slots)
        .shuffle(args.shuffle.then_some(args.seed))
        .order(if args.as_ready {
            Order::AsReady
        } else {
            Order::InOrder
        })
        .on_error(match args.on_error {
            OnErrorArg::Skip => OnError::Skip,
            OnErrorArg::Fail => OnError::Fail,
        })
        .stop(args.images.map_or(Stop::Epochs(args.epochs), Stop::Images))
        .augment(AugmentConfig {
            flip: args.flip,
            crop_min_scale: args.crop_min_scale,
            seed: args.seed,
        });
    let start = Instant::now();
    let mut loader = Loader::new(src, cfg)?;
    let mut checksum = 0f64;
    while let Some(batch) = loader.next_batch() {
        let batch = batch?;
        // Touch the data so the consumer's side of the hand-off is real.
        checksum += f64::from(batch.images()[0]);
    }
    let wall = start.elapsed();
    let stats = loader.stats();
    let c = loader.config();
    debug_assert!(checksum.is_finite());
    Ok(summary(
        "stream",
        describe,
        c.workers,
        args,
        wall,
        &stats.times,
        loader.pool_bytes(),
        Failures {
            errors: stats.errors,
            truncated: stats.truncated,
            first: stats.first_errors,
        },
    ))
}

fn run_naive(args: &LoaderArgs, src: Arc<dyn Source>, target: Target) -> anyhow::Result<Summary> {
    let images = args
        .images
        .unwrap_or(args.epochs.saturating_mul(src.len() as u64));
    let fail = args.on_error == OnErrorArg::Fail;
    let r = naive::run(&*src, &target, images as usize, fail)?;
    Ok(summary(
        "naive",
        src.describe(),
        1,
        args,
        r.wall,
        &r.times,
        0,
        Failures {
            errors: r.errors,
            truncated: r.truncated,
            first: r.first_errors,
        },
    ))
}

#[allow(clippy::too_many_arguments)]
fn summary(
    mode: &'static str,
    source: String,
    workers: usize,
    args: &LoaderArgs,
    wall: Duration,
    times: &StageTimes,
    pool_bytes: usize,
    failures: Failures,
) -> Summary {
    let secs = wall.as_secs_f64().max(1e-9);
    Summary {
        mode,
        source,
        workers,
        batch: args.batch,
        size: [args.size.0, args.size.1],
        layout: match args.layout {
            LayoutArg::Nchw => "nchw",
            LayoutArg::Nhwc => "nhwc",
        },
        jpeg_decoder: edgebench_runtime::data::decode::jpeg_decoder(),
        images: times.images,
        seconds: secs,
        images_per_s: times.images as f64 / secs,
        encoded_mb_per_s: times.bytes as f64 / 1e6 / secs,
        stage_s: times.into(),
        pool_bytes,
        peak_rss_bytes: memory::rss().peak,
        errors: failures.errors,
        truncated: failures.truncated,
        first_errors: failures.first,
    }
}

fn print_text(s: &Summary) {
    println!("{}", s.source);
    println!(
        "mode {}: {} workers, batch {}, {}x{} {}; JPEG decoder: {}",
        s.mode, s.workers, s.batch, s.size[0], s.size[1], s.layout, s.jpeg_decoder
    );
    println!(
        "{} images in {:.3} s: {:.0} images/s, {:.1} MB/s encoded",
        s.images, s.seconds, s.images_per_s, s.encoded_mb_per_s
    );
    let st = &s.stage_s;
    let total = (st.read + st.decode + st.resize + st.normalize).max(1e-12);
    let pct = |v: f64| 100.0 * v / total;
    println!(
        "stages (summed over workers): read {:.3} s ({:.0}%), decode {:.3} s ({:.0}%), resize {:.3} s ({:.0}%), normalize {:.3} s ({:.0}%)",
        st.read,
        pct(st.read),
        st.decode,
        pct(st.decode),
        st.resize,
        pct(st.resize),
        st.normalize,
        pct(st.normalize)
    );
    if s.pool_bytes > 0 {
        println!("pool: {}", bytes(s.pool_bytes as u64));
    }
    println!("peak RSS: {}", bytes(s.peak_rss_bytes));
    if s.errors > 0 {
        let truncated = match s.truncated {
            0 => String::new(),
            n => format!(" ({n} truncated)"),
        };
        println!(
            "{} unreadable item{} skipped{truncated}; first:",
            s.errors,
            if s.errors == 1 { "" } else { "s" }
        );
        for e in &s.first_errors {
            println!("  {e}");
        }
    }
}

fn parse_crop(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("invalid crop scale {s:?}: a fraction in (0, 1]")),
    }
}
