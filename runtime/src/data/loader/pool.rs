//! The pool shared by the loader and its workers: batch slots allocated once, the
//! bookkeeping of which slot is free / being filled / ready / lent (one `Mutex` and two
//! `Condvar`s, no channels: nothing allocates per batch), and the worker loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::data::Source;
use crate::data::decode::{Augment, Decoder, StageTimes, truncated_jpeg};
use crate::error::Error;

use super::{LoaderConfig, OnError, Order, SplitMix};

/// How many failures are remembered by name (all are counted).
pub const FIRST_ERRORS: usize = 5;

/// The first [`FIRST_ERRORS`] failures by name: pushes past the capacity are refused
/// (the failures are still counted), so the list never grows.
pub type FirstErrors = heapless::Vec<String, FIRST_ERRORS>;

/// The most batch slots a pool may have (the default is 2 × workers + 1, capped here).
pub const MAX_SLOTS: usize = 256;

/// One batch slot: images and labels of up to `batch` items.
#[derive(Debug)]
pub(crate) struct SlotData {
    pub images: Vec<f32>,
    pub labels: Vec<i32>,
}

/// Where a slot is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotState {
    Free,
    Filling,
    /// Filled with `len` items of global batch `batch`.
    Ready {
        batch: u64,
        len: usize,
    },
    Lent,
}

/// Bookkeeping under the pool's mutex.
pub(crate) struct State {
    /// Free slot indices, a stack (fixed capacity: push/pop never allocate).
    pub free: heapless::Vec<usize, MAX_SLOTS>,
    pub slots: heapless::Vec<SlotState, MAX_SLOTS>,
    /// Next global batch to hand to a worker.
    pub next_claim: u64,
    /// Next global batch to deliver (in-order) / batches delivered (as-ready).
    pub delivered: u64,
    /// Batches skipped because every item failed (they count as delivered).
    pub shutdown: bool,
    /// The error that ends the stream (`--on-error fail`).
    pub fatal: Option<Error>,
    /// Permutation of the current epoch and which epoch it belongs to.
    pub perm: Vec<u32>,
    pub perm_epoch: u64,
    /// Items that failed (each once, however many epochs read it), the source's
    /// unreadable items included, and the first few of them by name.
    pub errors: u64,
    pub first_errors: FirstErrors,
    /// Of those, JPEGs cut short.
    pub truncated: u64,
    /// One bit per item: whether it has failed already (allocated once).
    pub failed: Vec<u64>,
    /// Workers still running.
    pub alive: usize,
}

impl State {
    /// Count item `i`'s failure `e`, once per item (a bad item fails again every epoch).
    fn count_failure(&mut self, i: usize, truncated: bool, e: &Error) {
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        let Some(w) = self.failed.get_mut(word) else {
            return;
        };
        if *w & bit != 0 {
            return;
        }
        *w |= bit;
        self.errors += 1;
        self.truncated += u64::from(truncated);
        // Refused once full: only the first few are kept by name.
        let _ = self.first_errors.push(e.to_string());
    }

    /// Mark `slot` free and put it back on the free stack (which has room for every
    /// slot, so the push cannot be refused).
    pub fn free_slot(&mut self, slot: usize) {
        self.slots[slot] = SlotState::Free;
        let pushed = self.free.push(slot);
        debug_assert!(pushed.is_ok(), "slot {slot} freed twice");
    }
}

/// Everything the loader and its workers share.
pub(crate) struct Pool {
    pub cfg: LoaderConfig,
    pub source: std::sync::Arc<dyn Source>,
    pub slot_data: Vec<Mutex<SlotData>>,
    pub state: Mutex<State>,
    /// Signalled when a slot becomes free (workers wait on it).
    pub free_cv: Condvar,
    /// Signalled when a slot becomes ready or a worker exits (the consumer waits on it).
    pub ready_cv: Condvar,
    /// Per-worker stage times (each worker locks only its own).
    pub times: Vec<Mutex<StageTimes>>,
    pub total_batches: u64,
    pub batches_per_epoch: u64,
    /// Items in the final batch when `--images` cuts it short (else a full batch).
    pub last_len: usize,
    pub images_out: AtomicU64,
}

impl Pool {
    /// Lock the state, recovering from a poisoned lock (a worker never panics while
    /// holding it, but a poisoned lock must not turn into a panic here).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Items of global batch `id`: (epoch, first position in the epoch, count).
    pub fn batch_span(&self, id: u64) -> (u64, usize, usize) {
        let epoch = id / self.batches_per_epoch;
        let b = (id % self.batches_per_epoch) as usize;
        let n = self.source.len();
        let start = b * self.cfg.batch;
        let mut len = self.cfg.batch.min(n - start);
        if id + 1 == self.total_batches {
            len = len.min(self.last_len);
        }
        (epoch, start, len)
    }

    /// Return slot `slot` to the free list.
    pub fn release(&self, slot: usize) {
        self.lock().free_slot(slot);
        self.free_cv.notify_one();
    }
}

/// Recompute the epoch's order into `perm` (identity without shuffling).
fn fill_perm(perm: &mut [u32], shuffle: Option<u64>, epoch: u64) {
    for (i, p) in perm.iter_mut().enumerate() {
        *p = i as u32;
    }
    if let Some(seed) = shuffle {
        let mut rng = SplitMix::new(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        for i in (1..perm.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            perm.swap(i, j);
        }
    }
}

/// One worker: claim a batch and a free slot, decode its items straight into the slot,
/// mark it ready; until every batch is claimed, the loader shuts down or a fatal error.
pub(crate) fn worker(pool: &Pool, id: usize) {
    let cfg = &pool.cfg;
    let mut decoder = Decoder::new(&cfg.target);
    let mut buf: Vec<u8> = Vec::new();
    let mut items: Vec<u32> = Vec::with_capacity(cfg.batch);
    let per = cfg.target.image_len();
    loop {
        // Claim the next batch and a slot for it, in batch order (so batch k always
        // gets a slot before k+1: in-order delivery cannot deadlock).
        let mut st = pool.lock();
        while !st.shutdown
            && st.fatal.is_none()
            && st.next_claim < pool.total_batches
            && st.free.is_empty()
        {
            st = pool.free_cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        if st.shutdown || st.fatal.is_some() || st.next_claim >= pool.total_batches {
            break;
        }
        let batch = st.next_claim;
        st.next_claim += 1;
        let Some(slot) = st.free.pop() else { break };
        st.slots[slot] = SlotState::Filling;
        let (epoch, start, len) = pool.batch_span(batch);
        if st.perm_epoch != epoch {
            let shuffle = cfg.shuffle;
            fill_perm(&mut st.perm, shuffle, epoch);
            st.perm_epoch = epoch;
        }
        items.clear();
        items.extend_from_slice(&st.perm[start..start + len]);
        drop(st);

        let mut data = pool.slot_data[slot]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let SlotData { images, labels } = &mut *data;
        let mut filled = 0;
        let mut fatal = None;
        for &item in &items {
            let i = item as usize;
            let t0 = std::time::Instant::now();
            let read = pool.source.read(i, &mut buf);
            decoder.times.read += t0.elapsed();
            let read_ok = read.is_ok();
            let aug = augment_for(cfg, epoch, i);
            let out = &mut images[filled * per..(filled + 1) * per];
            let result =
                read.and_then(|()| decoder.decode_into(&buf, aug, out, || pool.source.name(i)));
            match result {
                Ok(()) => {
                    labels[filled] = pool.source.label(i).map_or(-1, |l| l as i32);
                    filled += 1;
                }
                Err(e) => match cfg.on_error {
                    OnError::Fail => {
                        fatal = Some(e);
                        break;
                    }
                    OnError::Skip => {
                        let truncated = read_ok && truncated_jpeg(&buf);
                        pool.lock().count_failure(i, truncated, &e);
                    }
                },
            }
        }
        drop(data);
        if let Ok(mut t) = pool.times[id].lock() {
            *t = decoder.times;
        }
        let mut st = pool.lock();
        if let Some(e) = fatal {
            st.errors += 1;
            if st.fatal.is_none() {
                st.fatal = Some(e);
            }
            st.free_slot(slot);
            drop(st);
            pool.ready_cv.notify_all();
            pool.free_cv.notify_all();
            break;
        }
        st.slots[slot] = SlotState::Ready { batch, len: filled };
        drop(st);
        pool.ready_cv.notify_all();
    }
    let mut st = pool.lock();
    st.alive -= 1;
    drop(st);
    pool.ready_cv.notify_all();
}

/// The augmentation of item `i` in `epoch`, drawn from a seed of (seed, epoch, item).
fn augment_for(cfg: &LoaderConfig, epoch: u64, i: usize) -> Augment {
    let a = &cfg.augment;
    if !a.flip && a.crop_min_scale >= 1.0 {
        return Augment::default();
    }
    let mut rng = SplitMix::new(
        a.seed
            ^ epoch.wrapping_mul(0xA24B_AED4_963E_E407)
            ^ (i as u64).wrapping_mul(0x9FB2_1C65_1E98_DF25),
    );
    let flip = a.flip && rng.next() & 1 == 1;
    let crop = (a.crop_min_scale < 1.0).then(|| {
        // A square-ish crop covering between crop_min_scale and 1 of each side,
        // expressed as fractions; the decoder scales them to the source size.
        let s = a.crop_min_scale + (1.0 - a.crop_min_scale) * rng.unit();
        let l = (1.0 - s) * rng.unit();
        let t = (1.0 - s) * rng.unit();
        (l, t, s, s)
    });
    Augment { flip, crop }
}

/// Whether a ready slot should be delivered next.
pub(crate) fn pick(st: &State, order: Order) -> Option<(usize, u64, usize)> {
    let mut best: Option<(usize, u64, usize)> = None;
    for (s, state) in st.slots.iter().enumerate() {
        if let SlotState::Ready { batch, len } = *state {
            match order {
                Order::InOrder if batch == st.delivered => return Some((s, batch, len)),
                Order::InOrder => {}
                Order::AsReady => {
                    if best.is_none_or(|b| batch < b.1) {
                        best = Some((s, batch, len));
                    }
                }
            }
        }
    }
    best
}

/// Counter helper so `images_out` reads cleanly.
pub(crate) fn add_images(pool: &Pool, n: usize) {
    pool.images_out.fetch_add(n as u64, Ordering::Relaxed);
}
