//! Training data for [`fit`](super::fit): an image set (folder or TFRecord shards,
//! through the streaming loader) or `.npy` arrays, split into training and validation
//! parts, fed epoch by epoch in a seeded order, and re-cut into the micro-batches the
//! memory plan chose ([`Batcher`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::data::decode::Target;
use crate::data::loader::{AugmentConfig, Loader, LoaderConfig, OnError};
use crate::data::npy::{self, NpySet};
use crate::data::subset::{self, Subset};
use crate::data::{Source, source};
use crate::error::{Error, Result};
use crate::model::Layout;
use crate::model::spec::{InputShape, Preprocess, Spec};

/// Receives images (`n × C×H×W` floats) and their `n` labels; an `Err` stops the feeding
/// (`E` lets a caller stop it with its own reason).
pub type Sink<'a, E = Error> = dyn FnMut(&[f32], &[usize]) -> std::result::Result<(), E> + 'a;

/// A bad data file: [`Error::Input`] naming it.
fn bad_input(path: &Path, reason: String) -> Error {
    Error::Input {
        path: path.to_path_buf(),
        reason,
    }
}

/// Where the items of a part come from.
enum Items {
    /// Arrays in memory; `idx` are the items of this part.
    Arrays {
        path: PathBuf,
        set: Arc<NpySet>,
        idx: Vec<usize>,
    },
    /// Encoded images read by the streaming loader.
    Images(Arc<dyn Source>),
}

/// One part (training or validation) of a data set.
pub struct Data {
    items: Items,
}

/// How batches are drawn from a [`Data`].
#[derive(Debug, Clone)]
pub struct FeedOptions {
    /// Images fed per call (the loader's batch).
    pub chunk: usize,
    /// New seeded order each epoch.
    pub shuffle: bool,
    /// Random horizontal flips.
    pub flip: bool,
    /// Random crops (image sets only; 1 = none).
    pub crop_min_scale: f64,
    /// Seed of orders and augmentation (mixed with the epoch).
    pub seed: u64,
    /// Loader worker threads (0 = all cores).
    pub workers: usize,
    /// Image size and preprocessing for image sets.
    pub input: InputShape,
    pub preprocess: Preprocess,
}

fn is_npy(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

impl Data {
    /// Opens `path` (with `labels` for a `.npy`), checking every label against
    /// `classes` and naming the first item outside them; `.npy` inputs must also be
    /// NCHW with items in them, and finite (checked once, here).
    pub fn open(path: &Path, labels: Option<&Path>, spec: &Spec, classes: usize) -> Result<Data> {
        let model = &spec.name;
        if is_npy(path) {
            let Some(labels) = labels else {
                return Err(bad_input(
                    path,
                    ".npy inputs need their labels (--labels / --val-labels Y.npy)".into(),
                ));
            };
            let set = npy::read_set(path, labels)?;
            check_arrays(path, &set.images, spec.input.channels)?;
            if let Some((i, l)) = set.labels.iter().enumerate().find(|&(_, &l)| l >= classes) {
                return Err(bad_input(
                    labels,
                    format!("label {l} of item {i} is outside {model}'s {classes} classes"),
                ));
            }
            let idx = (0..set.len()).collect();
            return Ok(Data {
                items: Items::Arrays {
                    path: path.to_path_buf(),
                    set: Arc::new(set),
                    idx,
                },
            });
        }
        if let Some(l) = labels {
            return Err(bad_input(
                path,
                format!(
                    "labels come from the image set itself; {} is only for .npy inputs",
                    l.display()
                ),
            ));
        }
        // source::open's errors name the path.
        let src: Arc<dyn Source> = Arc::from(source::open(path)?);
        if src.is_empty() {
            return Err(bad_input(path, "no images".into()));
        }
        for i in 0..src.len() {
            match src.label(i) {
                None => {
                    return Err(bad_input(
                        path,
                        format!(
                            "item {} has no label (training needs one sub-folder per class, or labelled TFRecords)",
                            src.name(i)
                        ),
                    ));
                }
                Some(l) if l as usize >= classes => {
                    return Err(bad_input(
                        path,
                        format!(
                            "item {} has label {l}{}, outside {model}'s {classes} classes",
                            src.name(i),
                            src.classes()
                                .get(l as usize)
                                .map(|c| format!(" (class {c:?})"))
                                .unwrap_or_default()
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(Data {
            items: Items::Images(src),
        })
    }

    /// The `.npy` inputs' image shape `(C, H, W)`, when the data are arrays.
    pub fn array_chw(&self) -> Option<(usize, usize, usize)> {
        match &self.items {
            Items::Arrays { set, .. } => {
                let s = set.images.shape();
                Some((s[1], s[2], s[3]))
            }
            Items::Images(_) => None,
        }
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        match &self.items {
            Items::Arrays { idx, .. } => idx.len(),
            Items::Images(src) => src.len(),
        }
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One line: what the data are.
    pub fn describe(&self) -> String {
        match &self.items {
            Items::Arrays { path, set, idx } => format!(
                "{}: {} of {} arrays {:?}",
                path.display(),
                idx.len(),
                set.len(),
                set.images.shape()
            ),
            Items::Images(src) => src.describe(),
        }
    }

    /// Splits off the last `fraction` of a seeded shuffle as the validation part.
    pub fn split(self, fraction: f64, seed: u64) -> Result<(Data, Data)> {
        let n = self.len();
        if n < 2 {
            return Err(Error::Train(format!(
                "--val-split needs at least 2 items, the data have {n}"
            )));
        }
        let (train, val) = subset::split(n, fraction, seed);
        Ok(match self.items {
            Items::Arrays { path, set, idx } => {
                let pick = |v: Vec<usize>| v.into_iter().map(|i| idx[i]).collect();
                (
                    Data {
                        items: Items::Arrays {
                            path: path.clone(),
                            set: set.clone(),
                            idx: pick(train),
                        },
                    },
                    Data {
                        items: Items::Arrays {
                            path,
                            set,
                            idx: pick(val),
                        },
                    },
                )
            }
            Items::Images(src) => (
                Data {
                    items: Items::Images(Arc::new(Subset::new(src.clone(), train, "training"))),
                },
                Data {
                    items: Items::Images(Arc::new(Subset::new(src, val, "validation"))),
                },
            ),
        })
    }

    /// Checks that the data can feed a model at `input`.
    pub fn check_input(&self, input: InputShape, what: &str) -> Result<()> {
        match self.array_chw() {
            Some(chw) if chw != (input.channels, input.height, input.width) => {
                Err(Error::Train(format!(
                    "{what}: the arrays hold {}×{}×{} images (C×H×W, NCHW arrays), the model takes {}×{}×{} (C×H×W)",
                    chw.0, chw.1, chw.2, input.channels, input.height, input.width
                )))
            }
            None if input.channels != 3 => Err(Error::Train(format!(
                "{what}: image sets decode to 3 channels, the model takes {}",
                input.channels
            ))),
            _ => Ok(()),
        }
    }

    /// Calls `f` with every item of epoch `epoch`, `o.chunk` images at a time.
    pub fn epoch<E: From<Error>>(
        &self,
        epoch: u64,
        o: &FeedOptions,
        f: &mut Sink<'_, E>,
    ) -> std::result::Result<(), E> {
        let seed = o.seed ^ (epoch + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        match &self.items {
            Items::Arrays { set, idx, .. } => {
                let order = if o.shuffle {
                    subset::shuffled(idx, seed)
                } else {
                    idx.clone()
                };
                set.for_each_batch(&order, o.chunk, o.flip.then_some(seed), f)
            }
            Items::Images(src) => {
                let target = Target {
                    preprocess: o.preprocess.clone(),
                    ..Target::new(o.input.height as u32, o.input.width as u32, Layout::Nchw)
                };
                // One epoch in order; an unreadable image stops the training.
                let cfg = LoaderConfig::new(target, o.chunk)
                    .workers(o.workers)
                    .shuffle(o.shuffle.then_some(seed))
                    .on_error(OnError::Fail)
                    .augment(AugmentConfig {
                        flip: o.flip,
                        crop_min_scale: o.crop_min_scale,
                        seed,
                    });
                let mut loader = Loader::new(src.clone(), cfg)?;
                let mut labels = Vec::with_capacity(o.chunk);
                while let Some(batch) = loader.next_batch() {
                    let batch = batch?;
                    labels.clear();
                    // Every label was checked when the set was opened.
                    labels.extend(batch.labels().iter().map(|&l| l.max(0) as usize));
                    f(batch.images(), &labels)?;
                }
                Ok(())
            }
        }
    }
}

/// Checks `.npy` training inputs before anything is trained on them: items in them (no
/// zero-length dimension), NCHW rather than NHWC (a last dimension of 1 to 4 equal to
/// the model's `channels` where the second is not), and every value finite (naming the
/// first item that is not; image sets decode to finite values by construction).
fn check_arrays(path: &Path, x: &ndarray::Array4<f32>, channels: usize) -> Result<()> {
    let (n, c, h, w) = x.dim();
    if n == 0 || c * h * w == 0 {
        return Err(bad_input(
            path,
            format!(
                "holds no items: its shape {:?} (N×C×H×W) has a zero-length dimension",
                x.shape()
            ),
        ));
    }
    if c != channels && w == channels && (1..=4).contains(&w) {
        return Err(bad_input(
            path,
            format!(
                "shape {:?} looks NHWC (N×H×W×C, channels last); train takes NCHW arrays, N×C×H×W with C = {channels} (in numpy: x.transpose(0, 3, 1, 2))",
                x.shape()
            ),
        ));
    }
    // The index in logical (N, C, H, W) order; a standard-layout array is scanned in
    // blocks that vectorise, stopping at the first block with a non-finite value.
    let bad = |v: &f32| !v.is_finite();
    let first = match x.as_slice() {
        Some(all) => all
            .chunks(4096)
            .enumerate()
            .find(|(_, b)| !b.iter().fold(true, |ok, v| ok & v.is_finite()))
            .and_then(|(k, b)| b.iter().position(bad).map(|j| k * 4096 + j)),
        None => x.iter().position(bad),
    };
    if let Some(at) = first {
        let (i, r) = (at / (c * h * w), at % (c * h * w));
        let (ch, y, col) = (r / (h * w), r % (h * w) / w, r % w);
        return Err(bad_input(
            path,
            format!(
                "item {i} holds {} (channel {ch}, row {y}, column {col}); training inputs must be finite",
                x[[i, ch, y, col]]
            ),
        ));
    }
    Ok(())
}

/// Re-cuts a stream of images into the plan's micro-batches: `micro` images, except
/// the last of every accumulation of `steps`, which has `last`, so that each optimizer
/// update sees exactly the effective batch.
pub struct Batcher {
    x: Vec<f32>,
    y: Vec<usize>,
    img: usize,
    micro: usize,
    last: usize,
    steps: usize,
    /// Micro-batches cut since the start of the epoch.
    pub cut: u64,
}

impl Batcher {
    /// A batcher for images of `img` floats.
    pub fn new(img: usize, micro: usize, steps: usize, last: usize) -> Self {
        Batcher {
            x: Vec::with_capacity(micro * img),
            y: Vec::with_capacity(micro),
            img,
            micro,
            last,
            steps: steps.max(1),
            cut: 0,
        }
    }

    fn want(&self) -> usize {
        if (self.cut % self.steps as u64) as usize + 1 == self.steps {
            self.last
        } else {
            self.micro
        }
    }

    /// Adds images; calls `f` for every micro-batch completed.
    pub fn push<E>(
        &mut self,
        x: &[f32],
        y: &[usize],
        f: &mut Sink<'_, E>,
    ) -> std::result::Result<(), E> {
        let mut i = 0;
        while i < y.len() {
            let take = (self.want() - self.y.len()).min(y.len() - i);
            self.x
                .extend_from_slice(&x[i * self.img..(i + take) * self.img]);
            self.y.extend_from_slice(&y[i..i + take]);
            i += take;
            if self.y.len() == self.want() {
                self.emit(f)?;
            }
        }
        Ok(())
    }

    fn emit<E>(&mut self, f: &mut Sink<'_, E>) -> std::result::Result<(), E> {
        self.cut += 1;
        let r = f(&self.x, &self.y);
        self.x.clear();
        self.y.clear();
        r
    }

    /// Feeds what is left (the end of an epoch) and starts over.
    pub fn finish<E>(&mut self, f: &mut Sink<'_, E>) -> std::result::Result<(), E> {
        let r = if self.y.is_empty() {
            Ok(())
        } else {
            self.emit(f)
        };
        self.cut = 0;
        r
    }
}
