//! Zero heap allocations per batch after warm-up: a counting global allocator (all
//! threads) around the streaming loader.
//!
//! The loader's own machinery (slots, free list, permutation, hand-offs, reads from a
//! source into reusable buffers) is proven allocation-free with PPM items at the target
//! size, the one path with no third-party decoder scratch. JPEG items are measured too:
//! `zune-jpeg` allocates a few scratch vectors per image internally; with one worker,
//! measured between moments when the worker is idle (every slot filled), each batch
//! costs exactly its 8 decodes, so the count is the same for every batch and a
//! multiple of the batch size (nothing per batch besides the per-image scratch).

mod alloc_support;
mod data_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloc_support::serial;
use data_support::{jpeg, ppm, smooth};
use edgebench_runtime::data::Source;
use edgebench_runtime::data::decode::Target;
use edgebench_runtime::data::loader::{Loader, LoaderConfig, Stop};
use edgebench_runtime::data::memsource::MemSource;
use edgebench_runtime::model::Layout;

fn loader(items: Vec<(String, Vec<u8>, Option<u32>)>, workers: usize) -> Loader {
    let source: Arc<dyn Source> = Arc::new(MemSource::new(items, vec!["x".into()]));
    let mut c = LoaderConfig::new(Target::new(32, 32, Layout::Nchw), 8);
    c.workers = workers;
    c.shuffle = Some(5);
    c.stop = Stop::Epochs(1_000_000);
    c.augment.flip = true;
    Loader::new(source, c).expect("loader")
}

/// Allocations during each of `n` batches after `warm` warm-up batches.
fn per_batch(l: &mut Loader, warm: usize, n: usize) -> Vec<u64> {
    let mut checksum = 0f64;
    // Warm-up: `warm` batches and until every worker has filled two batches of its own.
    let mut k = 0;
    while k < warm || (l.min_worker_images() < 16 && k < 100_000) {
        let b = l.next_batch().expect("batch").expect("ok");
        checksum += f64::from(b.images()[0]);
        k += 1;
    }
    let mut counts = Vec::with_capacity(n);
    for _ in 0..n {
        let before = alloc_support::count();
        let b = l.next_batch().expect("batch").expect("ok");
        checksum += f64::from(b.images()[0]) + f64::from(b.labels()[0]);
        drop(b);
        counts.push(alloc_support::count() - before);
    }
    assert!(checksum.is_finite());
    counts
}

/// One test, not several: the counter is global, and the test harness allocates on its
/// own thread when another test in this binary finishes, which would land in a count.
#[test]
fn loader_allocations() {
    let _serial = serial();
    loader_machinery_allocates_nothing_per_batch();
    jpeg_decoder_scratch_does_not_grow();
}

fn loader_machinery_allocates_nothing_per_batch() {
    // PPM at the target size: no third-party decoder or resizer scratch involved.
    let items: Vec<_> = (0..40)
        .map(|i| (format!("{i}.ppm"), ppm(&smooth(32, 32, i)), Some(0)))
        .collect();
    for workers in [1, 2, 3] {
        let mut l = loader(items_clone(&items), workers);
        let counts = per_batch(&mut l, 20, 200);
        assert!(
            counts.iter().all(|&c| c == 0),
            "{workers} workers: allocations per batch {counts:?}"
        );
    }
    // Over a long stretch, including the workers' work between our measurements.
    let mut l = loader(items_clone(&items), 2);
    per_batch(&mut l, 20, 1);
    let start = alloc_support::count();
    let mut checksum = 0f32;
    for _ in 0..300 {
        let b = l.next_batch().expect("batch").expect("ok");
        checksum += b.images()[7];
    }
    assert!(checksum.is_finite());
    assert_eq!(
        alloc_support::count(),
        start,
        "allocations over 300 batches after warm-up (all threads)"
    );
}

fn items_clone(items: &[(String, Vec<u8>, Option<u32>)]) -> Vec<(String, Vec<u8>, Option<u32>)> {
    items.to_vec()
}

fn jpeg_decoder_scratch_does_not_grow() {
    let items: Vec<_> = (0..24)
        .map(|i| (format!("{i}.jpg"), jpeg(&smooth(32, 32, i), 90), Some(0)))
        .collect();
    let mut l = loader(items, 1);
    let counts = per_batch_idle(&mut l, 20, 30);
    eprintln!("JPEG (zune-jpeg) allocations per 8-image batch: {counts:?}");
    assert!(
        counts.iter().all(|&c| c == counts[0]),
        "allocations per batch differ from batch to batch: {counts:?}"
    );
    assert_eq!(
        counts[0] % 8,
        0,
        "allocations per 8-image batch are not a per-image count: {counts:?}"
    );
}

/// With one worker: allocations for each of `n` batches after `warm` warm-up batches,
/// each counted from a moment when the worker has filled every slot and waits, to the
/// moment it has refilled the slot the batch handed back. So each count covers exactly
/// one `next_batch` and the decoding of one batch, whatever the threads' timing.
fn per_batch_idle(l: &mut Loader, warm: u64, n: usize) -> Vec<u64> {
    assert_eq!(l.config().workers, 1);
    let (slots, batch) = (l.config().slots as u64, l.config().batch as u64);
    let mut taken = 0u64;
    let mut checksum = 0f64;
    let mut take = |l: &mut Loader, taken: &mut u64| {
        let b = l.next_batch().expect("batch").expect("ok");
        checksum += f64::from(b.images()[0]);
        *taken += 1;
    };
    for _ in 0..warm {
        take(l, &mut taken);
    }
    wait_idle(l, (taken + slots) * batch);
    let mut counts = Vec::with_capacity(n);
    for _ in 0..n {
        let before = alloc_support::count();
        take(l, &mut taken);
        wait_idle(l, (taken + slots) * batch);
        counts.push(alloc_support::count() - before);
    }
    assert!(checksum.is_finite());
    counts
}

/// Wait (allocation-free: sleep and a counter) until the one worker has decoded
/// `images` images, i.e. filled the slot it was working on; it then waits for a free
/// slot, allocating nothing. Fails after a generous minute rather than hang.
fn wait_idle(l: &Loader, images: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while l.min_worker_images() < images {
        assert!(
            Instant::now() < deadline,
            "the worker decoded {} images, not {images}, within 60 s",
            l.min_worker_images()
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(
        l.min_worker_images(),
        images,
        "the worker decoded past a full pool"
    );
}
