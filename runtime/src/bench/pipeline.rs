//! `--data`: the deployed input pipeline measured for real. The streaming loader decodes
//! the user's images into its fixed pool of batch slots while the engine runs the
//! previous batch; the engine's wait for each batch is the *stall*. Loader alone, engine
//! alone and the two together run at the same batch, so the figures compare directly:
//! a stall fraction near 0 means the input pipeline keeps up, near 1 that the engine
//! idles waiting for data.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ndarray::{ArrayViewD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::data::decode::Target;
use crate::data::loader::{Loader, LoaderConfig, Stop};
use crate::data::{Source, source};
use crate::engine::Session;
use crate::error::{Error, Result};
use crate::model::Layout;
use crate::model::spec::Preprocess;
use crate::report::schema::Pipeline;

/// Where the data comes from and how it becomes the model's input.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataConfig {
    /// Image folder, TFRecord file or folder of shards.
    pub path: PathBuf,
    /// Loader worker threads (0: all cores).
    pub workers: usize,
    pub layout: Layout,
    pub preprocess: Preprocess,
}

/// An opened data source with the decode target of one model.
pub struct Data {
    source: Arc<dyn Source>,
    target: Target,
    workers: usize,
}

impl Data {
    /// Open the source; `shape` is the model's batch-1 input (NCHW or NHWC per `layout`).
    pub fn open(cfg: &DataConfig, shape: &[usize]) -> Result<Self> {
        let (h, w, c) = match (cfg.layout, shape) {
            (Layout::Nchw, [_, c, h, w]) | (Layout::Nhwc, [_, h, w, c]) => (*h, *w, *c),
            _ => {
                return Err(Error::Invalid(format!(
                    "--data needs an image model; input shape {shape:?} is not one"
                )));
            }
        };
        if c != 3 {
            return Err(Error::Invalid(format!(
                "--data decodes RGB images; the model takes {c} channels"
            )));
        }
        let src: Arc<dyn Source> = Arc::from(source::open(&cfg.path)?);
        if src.is_empty() {
            return Err(Error::Input {
                path: cfg.path.clone(),
                reason: "no images".into(),
            });
        }
        let dim = |v: usize| {
            u32::try_from(v).map_err(|_| Error::Invalid(format!("input size {v} too large")))
        };
        let mut target = Target::new(dim(h)?, dim(w)?, cfg.layout);
        target.preprocess = cfg.preprocess.clone();
        Ok(Self {
            source: src,
            target,
            workers: cfg.workers,
        })
    }

    fn loader(&self, batch: usize) -> Result<Loader> {
        // Endless for measuring purposes: the caller stops when its minimums are met.
        let cfg = LoaderConfig::new(self.target.clone(), batch)
            .workers(self.workers)
            .stop(Stop::Epochs(1_000_000));
        Loader::new(Arc::clone(&self.source), cfg)
    }

    /// Measure loader alone, engine alone (`engine_ips`, measured by the caller on the
    /// same session) and loader → engine; each timed part lasts at least `seconds` and
    /// `batches` full batches.
    pub fn measure(
        &self,
        session: &mut dyn Session,
        batch: usize,
        engine_ips: f64,
        batches: u64,
        seconds: f64,
    ) -> Result<Pipeline> {
        let enough =
            |n: u64, start: Instant| n >= batches && start.elapsed().as_secs_f64() >= seconds;

        // Loader alone.
        let mut loader = self.loader(batch)?;
        let pool_bytes = loader.pool_bytes() as u64;
        let workers = loader.config().workers;
        let mut gather = Gather::new(batch, self.target.image_len())?;
        gather.next(&mut loader, |_| Ok(()))?; // warm-up: buffers grow to the largest item
        let start = Instant::now();
        let (mut n, mut images) = (0u64, 0u64);
        while !enough(n, start) {
            gather.next(&mut loader, |x| Ok(std::hint::black_box(x.len())))?;
            images += batch as u64;
            n += 1;
        }
        let loader_ips = images as f64 / start.elapsed().as_secs_f64();
        drop(loader);

        // Loader → engine.
        let mut loader = self.loader(batch)?;
        let shape = session.info().input_shape.clone();
        gather.clear();
        gather.next(&mut loader, |_| Ok(()))?;
        let start = Instant::now();
        let (mut n, mut images, mut wait) = (0u64, 0u64, 0f64);
        while !enough(n, start) {
            let t = Instant::now();
            // The session's batch is fixed: the engine runs full batches only.
            gather.next(&mut loader, |x| {
                wait += t.elapsed().as_secs_f64();
                let view = ArrayViewD::from_shape(IxDyn(&shape), x).map_err(|e| {
                    Error::Invalid(format!("batch does not fit the model input {shape:?}: {e}"))
                })?;
                std::hint::black_box(session.run(view)?);
                Ok(())
            })?;
            images += batch as u64;
            n += 1;
        }
        let wall = start.elapsed().as_secs_f64();
        let stats = loader.stats();
        drop(loader);
        let end_to_end_ips = images as f64 / wall;
        let (correct, labelled) = if self.source.classes().is_empty() {
            (0, 0)
        } else {
            self.top1(session, batch)?
        };
        Ok(Pipeline {
            data: self.source.describe(),
            batch,
            workers,
            pool_bytes,
            loader_ips,
            engine_ips,
            end_to_end_ips,
            efficiency: end_to_end_ips / loader_ips.min(engine_ips).max(1e-12),
            stall_fraction: wait / wall,
            images,
            errors: stats.errors,
            first_errors: stats.first_errors.to_vec(),
            top1: (labelled > 0).then(|| correct as f64 / labelled as f64),
            top1_images: labelled,
        })
    }
}

impl Data {
    /// One pass over the items, in the source's order or shuffled by `shuffle`'s seed,
    /// stopping after `limit` images,
    /// in batches of `batch` preprocessed images: `f(pixels, labels)`, where `pixels`
    /// always holds `batch` images (a short batch padded with zeros, so a session of a
    /// fixed batch runs it) and `labels` has one entry per real image; `f` may end the
    /// pass early with `ControlFlow::Break`. Unreadable items are skipped as the loader's
    /// policy says. Returns the images seen.
    pub fn for_each_batch(
        &self,
        batch: usize,
        limit: u64,
        shuffle: Option<u64>,
        mut f: impl FnMut(&[f32], &[i32]) -> Result<ControlFlow<()>>,
    ) -> Result<u64> {
        let mut cfg = LoaderConfig::new(self.target.clone(), batch).shuffle(shuffle);
        cfg.workers = self.workers;
        cfg.stop = Stop::Epochs(1);
        let mut loader = Loader::new(Arc::clone(&self.source), cfg)?;
        let per = self.target.image_len();
        let mut padded = vec![0f32; batch * per];
        let mut seen = 0u64;
        while seen < limit {
            let Some(b) = loader.next_batch() else { break };
            let b = b?;
            let rows = (b.len as u64).min(limit - seen) as usize;
            if rows == 0 {
                continue;
            }
            let images = if rows == batch {
                b.images()
            } else {
                padded.fill(0.0);
                padded[..rows * per].copy_from_slice(&b.images()[..rows * per]);
                &padded
            };
            let flow = f(images, &b.labels()[..rows])?;
            seen += rows as u64;
            if flow.is_break() {
                break;
            }
        }
        Ok(seen)
    }

    /// One pass over every item (untimed): (correct, labelled) top-1 counts. A partial
    /// last batch is padded to the session's fixed batch; only its real rows count.
    fn top1(&self, session: &mut dyn Session, batch: usize) -> Result<(u64, u64)> {
        let shape = session.info().input_shape.clone();
        let (mut correct, mut labelled) = (0u64, 0u64);
        let mut classifier = true;
        self.for_each_batch(batch, u64::MAX, None, |images, labels| {
            let view = ArrayViewD::from_shape(IxDyn(&shape), images).map_err(|e| {
                Error::Invalid(format!("batch does not fit the model input {shape:?}: {e}"))
            })?;
            let out = session.run(view)?;
            let [_, classes] = out.shape() else {
                classifier = false; // not a classifier's [N, classes] output
                return Ok(ControlFlow::Break(()));
            };
            let classes = *classes;
            let scores: Vec<f32> = out.iter().copied().collect();
            for (r, &label) in labels.iter().enumerate() {
                let Some(row) = scores.get(r * classes..(r + 1) * classes) else {
                    break;
                };
                if label < 0 {
                    continue;
                }
                let best = row
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(i, _)| i);
                labelled += 1;
                correct += u64::from(best == label as usize);
            }
            Ok(ControlFlow::Continue(()))
        })?;
        if !classifier {
            return Ok((0, 0));
        }
        Ok((correct, labelled))
    }
}

/// Batches without a single image in a row before giving up: every item is unreadable.
const MAX_EMPTY: usize = 3;

/// Full batches out of whatever the loader delivers. A full batch is used where it lies;
/// short ones (an epoch's last, or one whose unreadable items were skipped) are gathered,
/// across epochs if need be, into one batch-sized buffer allocated once. So any data with
/// a readable image fills batches of any size, and what is measured is always full
/// batches.
struct Gather {
    buf: Vec<f32>,
    /// Floats per image.
    per: usize,
    batch: usize,
    /// Images in `buf`.
    have: usize,
}

impl Gather {
    fn new(batch: usize, per: usize) -> Result<Gather> {
        let n = batch.checked_mul(per).ok_or_else(|| {
            Error::Invalid(format!(
                "a batch of {batch} images of {per} values is too large"
            ))
        })?;
        Ok(Gather {
            buf: vec![0.0; n],
            per,
            batch,
            have: 0,
        })
    }

    /// Forget gathered images (a new loader starts).
    fn clear(&mut self) {
        self.have = 0;
    }

    /// Run `f` on the next full batch's pixels.
    fn next<R>(&mut self, loader: &mut Loader, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
        let mut empty = 0;
        loop {
            let b = match loader.next_batch() {
                Some(Ok(b)) => b,
                Some(Err(e)) => return Err(e),
                None => return Err(no_images()),
            };
            if b.len == self.batch && self.have == 0 {
                return f(b.images());
            }
            if b.len == 0 {
                empty += 1;
                if empty > MAX_EMPTY {
                    return Err(no_images());
                }
                continue;
            }
            empty = 0;
            let images = b.images();
            let take = images.len().min((self.batch - self.have) * self.per);
            self.buf[self.have * self.per..][..take].copy_from_slice(&images[..take]);
            self.have += take / self.per;
            if self.have == self.batch {
                let r = f(&self.buf);
                // What did not fit starts the next batch.
                let rest = &images[take..];
                self.buf[..rest.len()].copy_from_slice(rest);
                self.have = rest.len() / self.per;
                return r;
            }
        }
    }
}

fn no_images() -> Error {
    Error::Invalid(
        "the loader delivers no images: no item of the data could be read (see `edgebench data info`)"
            .into(),
    )
}
