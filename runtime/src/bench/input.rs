//! The input pipeline alone (`edgebench loader`): the streaming [`Loader`] or the naive
//! one-image-at-a-time baseline over a source, timed end to end, with images/s, MB/s of
//! encoded input, per-stage times, the pool's size and the process's peak RSS.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bench::memory;
use crate::data::decode::StageTimes;
use crate::data::loader::{FirstErrors, Loader, LoaderConfig, OnError, Stop};
use crate::data::{Source, naive};
use crate::error::{Error, Result};
use crate::units::bytes;

/// Which pipeline is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The pooled multi-worker [`Loader`].
    Stream,
    /// One image at a time into fresh buffers, on this thread ([`naive::run`]).
    Naive,
}

/// What a run measured, in either mode (`edgebench loader --json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct InputSummary {
    pub mode: &'static str,
    /// The source as [`Source::describe`] words it.
    pub source: String,
    pub workers: usize,
    pub batch: usize,
    /// Output height and width.
    pub size: [u32; 2],
    pub layout: &'static str,
    /// The JPEG decoder of this build.
    pub jpeg_decoder: &'static str,
    pub images: u64,
    pub seconds: f64,
    pub images_per_s: f64,
    pub encoded_mb_per_s: f64,
    /// Per-stage time summed over workers, seconds.
    pub stage_s: StageSeconds,
    pub pool_bytes: usize,
    pub peak_rss_bytes: u64,
    /// Bad items skipped (each once, however many epochs read it).
    pub errors: u64,
    /// Of those, JPEGs cut short.
    pub truncated: u64,
    pub first_errors: FirstErrors,
}

/// [`StageTimes`] in seconds.
#[derive(Debug, Clone, Serialize)]
pub struct StageSeconds {
    pub read: f64,
    pub decode: f64,
    pub resize: f64,
    pub normalize: f64,
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

/// What one mode's run produced, before it is summarised.
struct Ran {
    workers: usize,
    wall: Duration,
    times: StageTimes,
    pool_bytes: usize,
    errors: u64,
    truncated: u64,
    first_errors: FirstErrors,
}

/// Run `mode` over `src` with `cfg` (the naive mode uses its target, stop and on-error
/// settings) and summarise it. An empty source is an error naming it.
pub fn measure(src: Arc<dyn Source>, mode: Mode, cfg: LoaderConfig) -> Result<InputSummary> {
    let source = src.describe();
    if src.is_empty() {
        return Err(Error::Invalid(format!("{source}: no images")));
    }
    let (batch, size, layout) = (
        cfg.batch,
        [cfg.target.height, cfg.target.width],
        cfg.target.layout,
    );
    let ran = match mode {
        Mode::Stream => stream(src, cfg)?,
        Mode::Naive => run_naive(&*src, &cfg)?,
    };
    let secs = ran.wall.as_secs_f64().max(1e-9);
    let t = &ran.times;
    Ok(InputSummary {
        mode: match mode {
            Mode::Stream => "stream",
            Mode::Naive => "naive",
        },
        source,
        workers: ran.workers,
        batch,
        size,
        layout: layout.name(),
        jpeg_decoder: crate::data::decode::jpeg_decoder(),
        images: t.images,
        seconds: secs,
        images_per_s: t.images as f64 / secs,
        encoded_mb_per_s: t.bytes as f64 / 1e6 / secs,
        stage_s: t.into(),
        pool_bytes: ran.pool_bytes,
        peak_rss_bytes: memory::rss().peak,
        errors: ran.errors,
        truncated: ran.truncated,
        first_errors: ran.first_errors,
    })
}

fn stream(src: Arc<dyn Source>, cfg: LoaderConfig) -> Result<Ran> {
    let start = Instant::now();
    let mut loader = Loader::new(src, cfg)?;
    let mut checksum = 0f64;
    while let Some(batch) = loader.next_batch() {
        // Touch the data so the consumer's side of the hand-off is real.
        checksum += f64::from(batch?.images()[0]);
    }
    let wall = start.elapsed();
    debug_assert!(checksum.is_finite());
    let stats = loader.stats();
    Ok(Ran {
        workers: loader.config().workers,
        wall,
        times: stats.times,
        pool_bytes: loader.pool_bytes(),
        errors: stats.errors,
        truncated: stats.truncated,
        first_errors: stats.first_errors,
    })
}

fn run_naive(src: &dyn Source, cfg: &LoaderConfig) -> Result<Ran> {
    let images = match cfg.stop {
        Stop::Images(k) => k,
        Stop::Epochs(e) => e.saturating_mul(src.len() as u64),
    };
    let images = usize::try_from(images).unwrap_or(usize::MAX);
    let r = naive::run(src, &cfg.target, images, cfg.on_error == OnError::Fail)?;
    Ok(Ran {
        workers: 1,
        wall: r.wall,
        times: r.times,
        pool_bytes: 0,
        errors: r.errors,
        truncated: r.truncated,
        first_errors: r.first_errors,
    })
}

impl InputSummary {
    /// The summary as lines of text: source, settings, throughput, stage shares, pool,
    /// peak RSS and the first bad items.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let s = self;
        let _ = writeln!(out, "{}", s.source);
        let _ = writeln!(
            out,
            "mode {}: {} workers, batch {}, {}x{} {}; JPEG decoder: {}",
            s.mode, s.workers, s.batch, s.size[0], s.size[1], s.layout, s.jpeg_decoder
        );
        let _ = writeln!(
            out,
            "{} images in {:.3} s: {:.0} images/s, {:.1} MB/s encoded",
            s.images, s.seconds, s.images_per_s, s.encoded_mb_per_s
        );
        let st = &s.stage_s;
        let total = (st.read + st.decode + st.resize + st.normalize).max(1e-12);
        let stage = |name: &str, v: f64| format!("{name} {v:.3} s ({:.0}%)", 100.0 * v / total);
        let _ = writeln!(
            out,
            "stages (summed over workers): {}, {}, {}, {}",
            stage("read", st.read),
            stage("decode", st.decode),
            stage("resize", st.resize),
            stage("normalize", st.normalize)
        );
        if s.pool_bytes > 0 {
            let _ = writeln!(out, "pool: {}", bytes(s.pool_bytes as u64));
        }
        let _ = writeln!(out, "peak RSS: {}", bytes(s.peak_rss_bytes));
        if s.errors > 0 {
            let truncated = match s.truncated {
                0 => String::new(),
                n => format!(" ({n} truncated)"),
            };
            let _ = writeln!(
                out,
                "{} unreadable item{} skipped{truncated}; first:",
                s.errors,
                if s.errors == 1 { "" } else { "s" }
            );
            for e in &s.first_errors {
                let _ = writeln!(out, "  {e}");
            }
        }
        out
    }
}
