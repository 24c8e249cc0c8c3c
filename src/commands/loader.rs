//! `edgebench loader`: measure the input pipeline alone — the streaming loader or the
//! naive one-image-at-a-time baseline — over an image folder or TFRecord shards, and
//! report images/s, MB/s of encoded input, per-stage times, pool size and peak RSS.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::bail;
use clap::{Args, ValueEnum};
use edgebench_runtime::bench::input;
use edgebench_runtime::data::decode::Target;
use edgebench_runtime::data::loader::{AugmentConfig, LoaderConfig, OnError, Order, Stop};
use edgebench_runtime::data::{Source, source};
use edgebench_runtime::model::Layout;

use crate::cli::{parse_count, parse_crop};

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
    /// Batch slots in the pool (0 = 2 × workers + 1, at most 256).
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
    let cfg = LoaderConfig::new(Target::new(args.size.0, args.size.1, layout), args.batch)
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
    let mode = match args.mode {
        Mode::Stream => input::Mode::Stream,
        Mode::Naive => input::Mode::Naive,
    };
    let summary = input::measure(src, mode, cfg)?;
    if args.json {
        super::print_json("the loader summary", &summary)?;
    } else {
        print!("{}", summary.text());
    }
    Ok(())
}
