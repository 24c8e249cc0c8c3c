//! The streaming loader: a fixed pool of batch slots allocated once, worker threads that
//! decode → resize → normalise each item straight into its slot, bounded by the pool
//! (backpressure: a worker waits for a free slot), seeded shuffling, in-order or
//! as-ready delivery, and batches lent as borrowed slots that return to the pool on drop.
//!
//! After warm-up (the read buffers and decoder buffers have grown to their largest
//! item) the loader's own machinery allocates nothing per batch: slots, free list,
//! permutation and per-worker index lists are preallocated, and hand-offs use one
//! `Mutex` + two `Condvar`s rather than channels. `tests/loader_alloc.rs` proves it with
//! a counting global allocator. (Third-party decoders keep small per-image scratch:
//! `zune-jpeg`, `fast_image_resize`, `image`; the in-house PPM path has none.)
//!
//! Dropping the [`Loader`] stops the workers after their current batch and joins them.

mod pool;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::data::Source;
use crate::data::decode::{StageTimes, Target};
use crate::error::{Error, Result};

pub use pool::{FIRST_ERRORS, FirstErrors, MAX_SLOTS};
use pool::{Pool, SlotData, SlotState, State};

/// What to do with an item that cannot be read or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Count it, remember the first few by name, leave it out of its batch.
    #[default]
    Skip,
    /// End the stream with the item's error.
    Fail,
}

/// Order in which batches are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Batch k before batch k+1 (deterministic).
    #[default]
    InOrder,
    /// Whichever batch is ready first.
    AsReady,
}

/// How many items the loader delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Whole passes over the source.
    Epochs(u64),
    /// This many items (as many epochs as needed, the last one cut short).
    Images(u64),
}

/// Training augmentation, drawn per item from (seed, epoch, item).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AugmentConfig {
    /// Random horizontal flip (probability ½).
    pub flip: bool,
    /// Random crop of side between this fraction and 1 of the source, then resize;
    /// 1.0 disables cropping.
    pub crop_min_scale: f64,
    pub seed: u64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            flip: false,
            crop_min_scale: 1.0,
            seed: 0,
        }
    }
}

/// Settings of a [`Loader`].
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub target: Target,
    pub batch: usize,
    /// Worker threads (0 = all cores).
    pub workers: usize,
    /// Batch slots in the pool (0 = 2 × workers + 1, at most [`MAX_SLOTS`]).
    pub slots: usize,
    /// Shuffle each epoch with this seed (None = source order).
    pub shuffle: Option<u64>,
    pub order: Order,
    pub on_error: OnError,
    pub stop: Stop,
    pub augment: AugmentConfig,
}

impl LoaderConfig {
    /// One epoch, in order, default workers and slots, skipping bad items; the other
    /// settings by the builder methods below, e.g.
    /// `LoaderConfig::new(t, 32).workers(4).shuffle(Some(seed)).stop(Stop::Epochs(10))`.
    pub fn new(target: Target, batch: usize) -> Self {
        Self {
            target,
            batch,
            workers: 0,
            slots: 0,
            shuffle: None,
            order: Order::InOrder,
            on_error: OnError::Skip,
            stop: Stop::Epochs(1),
            augment: AugmentConfig::default(),
        }
    }

    /// Worker threads (0 = all cores).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Batch slots in the pool (0 = 2 × workers + 1, at most [`MAX_SLOTS`]).
    pub fn slots(mut self, slots: usize) -> Self {
        self.slots = slots;
        self
    }

    /// Shuffle each epoch with this seed (None = source order).
    pub fn shuffle(mut self, seed: Option<u64>) -> Self {
        self.shuffle = seed;
        self
    }

    /// The order batches are delivered in.
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// What an unreadable item does.
    pub fn on_error(mut self, on_error: OnError) -> Self {
        self.on_error = on_error;
        self
    }

    /// How many items are delivered.
    pub fn stop(mut self, stop: Stop) -> Self {
        self.stop = stop;
        self
    }

    /// Training augmentation.
    pub fn augment(mut self, augment: AugmentConfig) -> Self {
        self.augment = augment;
        self
    }
}

/// Counters of a run so far.
#[derive(Debug, Clone, Default)]
pub struct LoaderStats {
    /// Stage times summed over workers (CPU time, not wall time).
    pub times: StageTimes,
    /// Items delivered in batches.
    pub images: u64,
    /// Items that failed, each counted once however many epochs read it, the source's
    /// [`Source::unreadable`] items included.
    pub errors: u64,
    /// Of those, JPEGs cut short ([`crate::data::decode::truncated_jpeg`]).
    pub truncated: u64,
    /// The first few failures ([`FIRST_ERRORS`]), naming their items.
    pub first_errors: FirstErrors,
}

/// The streaming loader. Iterate with [`Loader::next_batch`].
pub struct Loader {
    pool: Arc<Pool>,
    workers: Vec<JoinHandle<()>>,
    done: bool,
    /// Batches skipped in a row because every item of them failed.
    empty_run: u64,
}

/// A delivered batch: a slot of the pool, lent until dropped.
pub struct Batch<'a> {
    pool: &'a Pool,
    data: MutexGuard<'a, SlotData>,
    slot: usize,
    /// Global batch number (0-based, across epochs).
    pub index: u64,
    /// Epoch this batch belongs to.
    pub epoch: u64,
    /// Items in this batch (≤ the configured batch size).
    pub len: usize,
}

impl Batch<'_> {
    /// `len` images, laid out per the target (NCHW: `[len, 3, H, W]`, NHWC: `[len, H, W, 3]`).
    pub fn images(&self) -> &[f32] {
        &self.data.images[..self.len * self.pool.cfg.target.image_len()]
    }
    /// `len` labels (−1 for unlabelled items).
    pub fn labels(&self) -> &[i32] {
        &self.data.labels[..self.len]
    }
    /// Shape of [`Batch::images`] in the target's layout.
    pub fn shape(&self) -> [usize; 4] {
        let t = &self.pool.cfg.target;
        let (h, w) = (t.height as usize, t.width as usize);
        match t.layout {
            crate::model::Layout::Nchw => [self.len, 3, h, w],
            crate::model::Layout::Nhwc => [self.len, h, w, 3],
        }
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        self.pool.release(self.slot);
    }
}

impl Loader {
    /// Allocate the pool and start the workers.
    pub fn new(source: Arc<dyn Source>, cfg: LoaderConfig) -> Result<Self> {
        let bad = |reason: String| Error::Input {
            path: source.describe().into(),
            reason,
        };
        if cfg.batch == 0 {
            return Err(bad("batch size must be at least 1".into()));
        }
        let n = source.len();
        if n > u32::MAX as usize {
            return Err(bad(format!("{n} items: more than 2^32 unsupported")));
        }
        let unreadable = source.unreadable();
        if let (OnError::Fail, Some(first)) = (cfg.on_error, unreadable.first()) {
            return Err(first.to_error());
        }
        let first_errors = unreadable
            .iter()
            .take(FIRST_ERRORS)
            .map(|u| u.to_string())
            .collect();
        let mut cfg = cfg;
        if cfg.workers == 0 {
            cfg.workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        }
        if cfg.slots == 0 {
            cfg.slots = (2 * cfg.workers + 1).min(MAX_SLOTS);
        }
        if cfg.slots > MAX_SLOTS {
            return Err(bad(format!(
                "{} batch slots: at most {MAX_SLOTS}",
                cfg.slots
            )));
        }
        let batches_per_epoch = n.div_ceil(cfg.batch) as u64;
        let (total_batches, last_len) = match cfg.stop {
            _ if n == 0 => (0, 0),
            Stop::Epochs(e) => (e.saturating_mul(batches_per_epoch), cfg.batch),
            Stop::Images(k) => {
                let (full, rem) = (k / n as u64, (k % n as u64) as usize);
                let extra = rem.div_ceil(cfg.batch) as u64;
                let last = if rem == 0 {
                    cfg.batch
                } else {
                    rem - (rem - 1) / cfg.batch * cfg.batch
                };
                (
                    full.saturating_mul(batches_per_epoch).saturating_add(extra),
                    last,
                )
            }
        };
        let per = cfg.target.image_len();
        // The pool's size comes from --batch and --slots: checked, then allocated fallibly.
        let what = || {
            format!(
                "the loader's pool ({} slots of {} images of {} floats)",
                cfg.slots, cfg.batch, per
            )
        };
        let floats = crate::alloc::numel(&[cfg.slots, cfg.batch, per + 1]);
        crate::alloc::check(crate::alloc::bytes_of(floats, 4), what)
            .map_err(|e| bad(e.to_string()))?;
        let slot_data = (0..cfg.slots)
            .map(|_| {
                Ok(Mutex::new(SlotData {
                    images: crate::alloc::try_zeroed(cfg.batch * per, what)
                        .map_err(|e| bad(e.to_string()))?,
                    labels: vec![-1; cfg.batch],
                }))
            })
            .collect::<Result<_>>()?;
        let state = State {
            free: (0..cfg.slots).rev().collect(),
            slots: (0..cfg.slots).map(|_| SlotState::Free).collect(),
            next_claim: 0,
            delivered: 0,
            shutdown: false,
            fatal: None,
            perm: vec![0; n],
            perm_epoch: u64::MAX,
            errors: unreadable.len() as u64,
            first_errors,
            truncated: 0,
            failed: vec![0; n.div_ceil(64)],
            alive: cfg.workers,
        };
        let workers = cfg.workers;
        let pool = Arc::new(Pool {
            times: (0..workers)
                .map(|_| Mutex::new(StageTimes::default()))
                .collect(),
            cfg,
            source,
            slot_data,
            state: Mutex::new(state),
            free_cv: Condvar::new(),
            ready_cv: Condvar::new(),
            total_batches,
            batches_per_epoch: batches_per_epoch.max(1),
            last_len,
            images_out: Default::default(),
        });
        let mut handles = Vec::with_capacity(workers);
        for id in 0..workers {
            let p = Arc::clone(&pool);
            let h = std::thread::Builder::new()
                .name(format!("loader-{id}"))
                .spawn(move || pool::worker(&p, id))
                .map_err(|e| Error::Input {
                    path: "loader".into(),
                    reason: format!("cannot start worker thread: {e}"),
                });
            match h {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // Stop the ones already started (Drop joins them).
                    let mut st = pool.lock();
                    st.alive -= workers - id;
                    drop(st);
                    drop(Loader {
                        pool,
                        workers: handles,
                        done: true,
                        empty_run: 0,
                    });
                    return Err(e);
                }
            }
        }
        Ok(Self {
            pool,
            workers: handles,
            done: false,
            empty_run: 0,
        })
    }

    /// The next batch; `None` at the end of the stream; `Some(Err)` once when an item
    /// fails under [`OnError::Fail`] (the stream ends after it). Batches whose items all
    /// failed are skipped.
    pub fn next_batch(&mut self) -> Option<Result<Batch<'_>>> {
        if self.done {
            return None;
        }
        let pool = &*self.pool;
        let mut st = pool.lock();
        loop {
            if let Some(e) = st.fatal.take() {
                st.shutdown = true;
                drop(st);
                pool.free_cv.notify_all();
                self.done = true;
                return Some(Err(e));
            }
            if st.delivered >= pool.total_batches {
                self.done = true;
                return None;
            }
            if let Some((slot, batch, len)) = pool::pick(&st, pool.cfg.order) {
                st.delivered += 1;
                if len == 0 {
                    st.free_slot(slot);
                    // Two epochs' worth of batches in a row with no readable item: no
                    // item is readable (a readable one would break the run every
                    // epoch). End the stream rather than decode failures forever.
                    self.empty_run += 1;
                    if self.empty_run >= 2 * pool.batches_per_epoch {
                        st.shutdown = true;
                        drop(st);
                        pool.free_cv.notify_all();
                        self.done = true;
                        return Some(Err(Error::Invalid(format!(
                            "no item of the data could be read ({} batches in a row held only unreadable items)",
                            self.empty_run
                        ))));
                    }
                    pool.free_cv.notify_one();
                    continue;
                }
                self.empty_run = 0;
                st.slots[slot] = SlotState::Lent;
                drop(st);
                pool::add_images(pool, len);
                let data = pool.slot_data[slot]
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                return Some(Ok(Batch {
                    pool,
                    data,
                    slot,
                    index: batch,
                    epoch: batch / pool.batches_per_epoch,
                    len,
                }));
            }
            if st.alive == 0 {
                // Every worker has exited and the batch we wait for never came.
                self.done = true;
                return None;
            }
            st = pool.ready_cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Bytes held by the pool's slots: slots × batch × C×H×W × 4 (+ labels).
    pub fn pool_bytes(&self) -> usize {
        let c = &self.pool.cfg;
        c.slots * c.batch * (c.target.image_len() * 4 + 4)
    }

    /// The resolved settings (workers and slots filled in).
    pub fn config(&self) -> &LoaderConfig {
        &self.pool.cfg
    }

    /// Batches this loader will deliver (before skips and errors).
    pub fn total_batches(&self) -> u64 {
        self.pool.total_batches
    }

    /// The fewest images any one worker has decoded so far (warm-up is over once every
    /// worker has decoded a few: its buffers have grown to their working size).
    pub fn min_worker_images(&self) -> u64 {
        self.pool
            .times
            .iter()
            .map(|t| t.lock().map_or(0, |t| t.images))
            .min()
            .unwrap_or(0)
    }

    /// Counters so far.
    pub fn stats(&self) -> LoaderStats {
        let mut times = StageTimes::default();
        for t in &self.pool.times {
            if let Ok(t) = t.lock() {
                times.add(&t);
            }
        }
        let st = self.pool.lock();
        LoaderStats {
            times,
            images: self.pool.images_out.load(Ordering::Relaxed),
            errors: st.errors,
            truncated: st.truncated,
            first_errors: st.first_errors.clone(),
        }
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        let mut st = self.pool.lock();
        st.shutdown = true;
        drop(st);
        self.pool.free_cv.notify_all();
        self.pool.ready_cv.notify_all();
        for h in self.workers.drain(..) {
            // A worker that panicked has nothing left to clean up.
            let _ = h.join();
        }
    }
}

/// A small seeded generator (SplitMix64) for permutations and augmentation: no
/// allocation, identical on every platform.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0; negligible bias for n ≪ 2^64).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
