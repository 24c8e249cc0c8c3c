//! `edgebench data`: make a synthetic labelled image set (`synth`), pack any data set
//! into TFRecord shards of `tf.train.Example` (`pack`), and describe and check a data set
//! (`info`).

use edgebench_runtime::fsutil::IoPaths;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use edgebench_runtime::data::synth::{SynthFormat, SynthOptions};
use edgebench_runtime::data::{pack, source, synth};

#[derive(Debug, Args)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Write a labelled synthetic image set: DIR/class_00/img_00000.jpg, ... Each class
    /// is a shape kind and colour family (circle, square, triangle, cross, ring, stripes,
    /// diamond, crescent) of random size, position, rotation and colour on a smooth
    /// noisy background; the same seed always writes the same bytes.
    Synth(SynthArgs),
    /// Write a data set (image folder or TFRecord) as TFRecord shards of tf.train.Example
    /// (image/encoded, image/class/label, image/class/text, image/format, image/height,
    /// image/width), readable by tf.data.TFRecordDataset. Unreadable items are skipped
    /// and listed.
    Pack(PackArgs),
    /// Describe a data set (kind, items, classes) and read every item to check it (CRCs
    /// of TFRecords, image headers); exits 1 when any item is bad.
    Info(InfoArgs),
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output folder (created; existing files of the same names are replaced).
    #[arg(short, long, value_name = "DIR")]
    pub out: PathBuf,
    /// Number of classes (1–1000); one sub-folder each: class_00, class_01, ...
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Total number of images, spread evenly over the classes.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Width and height of each image in pixels (8–4096).
    #[arg(long, default_value_t = 256)]
    pub size: u32,
    /// Random seed: the same seed writes identical files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// File format.
    #[arg(long, value_enum, default_value_t = Format::Jpg)]
    pub format: Format,
    /// JPEG quality (1–100); ignored for PNG.
    #[arg(long, default_value_t = 90)]
    pub quality: u8,
    /// Worker threads (0: all cores). The output does not depend on it.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// JPEG (.jpg).
    Jpg,
    /// PNG (.png).
    Png,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// Data set to pack: an image folder (class sub-folders or flat), a .tfrecord file or
    /// a folder of TFRecord shards.
    pub data: PathBuf,
    /// Output file. With --shards N > 1 the shards are named OUT-00000-of-0000N.tfrecord
    /// beside it.
    #[arg(short, long, value_name = "OUT.tfrecord")]
    pub out: PathBuf,
    /// Number of shards; items are split into contiguous runs, in data set order. At
    /// most one shard per item: fewer items write fewer shards.
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Data set: an image folder (class sub-folders or flat), a .tfrecord file or a
    /// folder of TFRecord shards.
    pub data: PathBuf,
    /// Print at most this many bad items (all are counted).
    #[arg(long, default_value_t = 20)]
    pub show_bad: usize,
}

pub fn run(args: DataArgs) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Synth(a) => run_synth(a),
        DataCommand::Pack(a) => run_pack(a),
        DataCommand::Info(a) => run_info(a),
    }
}

/// A progress line on stderr at most once a second (nothing for short runs).
fn progress(what: &'static str) -> impl Fn(usize, usize) + Sync {
    let last = Mutex::new(Instant::now());
    move |done, total| {
        let Ok(mut last) = last.lock() else { return };
        if last.elapsed() >= Duration::from_secs(1) || (done == total && total >= 5000) {
            *last = Instant::now();
            eprintln!("{what}: {done}/{total}");
        }
    }
}

fn run_synth(a: SynthArgs) -> anyhow::Result<()> {
    let opts = SynthOptions {
        out: a.out,
        classes: a.classes,
        count: a.count,
        size: a.size,
        seed: a.seed,
        format: match a.format {
            Format::Jpg => SynthFormat::Jpeg,
            Format::Png => SynthFormat::Png,
        },
        quality: a.quality,
        threads: a.threads,
    };
    let start = Instant::now();
    let s = synth::generate(&opts, &progress("synth"))?;
    println!("{}", s.line(&opts.out, start.elapsed().as_secs_f64()));
    Ok(())
}

fn run_pack(a: PackArgs) -> anyhow::Result<()> {
    let src = source::open(&a.data)?;
    // Never more shards than items: only the paths that can be written are checked.
    let mut io = IoPaths::new().input("DATA", &a.data);
    for shard in pack::shard_paths(&a.out, a.shards.min(src.len().max(1))) {
        io = io.output("--out", shard);
    }
    io.check()?;
    println!("{}", src.describe());
    if a.shards > src.len() && !src.is_empty() {
        eprintln!(
            "note: {} items to pack: writing {} shards instead of {} (never an empty shard)",
            src.len(),
            src.len(),
            a.shards
        );
    }
    let p = progress("pack");
    let s = pack::pack(src.as_ref(), &a.out, a.shards, &mut |d, t| p(d, t))?;
    print!("{}", s.text());
    for reason in &s.skipped {
        eprintln!("skipped: {reason}");
    }
    Ok(())
}

fn run_info(a: InfoArgs) -> anyhow::Result<()> {
    let src = source::open(&a.data)?;
    println!("{}", src.describe());
    if let Some(line) = pack::classes_line(src.classes()) {
        println!("{line}");
    }
    let p = progress("check");
    let r = pack::verify(src.as_ref(), &mut |d, t| p(d, t));
    for b in r.bad.iter().take(a.show_bad) {
        eprintln!("bad: {b}");
    }
    println!("{}", r.line());
    if !r.bad.is_empty() {
        anyhow::bail!(
            "{}: {} of {} items are unreadable",
            a.data.display(),
            r.bad.len(),
            r.items
        );
    }
    Ok(())
}
