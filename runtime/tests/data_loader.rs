//! The streaming loader: every item exactly once per epoch (in order, shuffled, as
//! ready), labels match, partial last batch, `Stop::Images`, skip vs fail, and dropping
//! mid-epoch never hangs.

mod data_support;

use std::collections::BTreeSet;
use std::sync::Arc;

use data_support::solid_ppm;
use edgebench_runtime::data::Source;
use edgebench_runtime::data::decode::Target;
use edgebench_runtime::data::loader::{
    FIRST_ERRORS, Loader, LoaderConfig, MAX_SLOTS, OnError, Order, Stop,
};
use edgebench_runtime::data::memsource::MemSource;
use edgebench_runtime::model::Layout;

const H: u32 = 6;
const W: u32 = 5;

/// `n` solid 6×5 images; item i has red = i, green = 255 − i, label i % 3.
fn source(n: usize, bad: &[usize]) -> Arc<dyn Source> {
    let items = (0..n)
        .map(|i| {
            let bytes = if bad.contains(&i) {
                b"not an image".to_vec()
            } else {
                solid_ppm(W, H, [i as u8, 255 - i as u8, 7])
            };
            (
                format!("c{}/{i:03}.ppm", i % 3),
                bytes,
                Some((i % 3) as u32),
            )
        })
        .collect();
    Arc::new(MemSource::new(
        items,
        vec!["a".into(), "b".into(), "c".into()],
    ))
}

fn cfg(batch: usize, workers: usize) -> LoaderConfig {
    let mut c = LoaderConfig::new(Target::new(H, W, Layout::Nchw), batch);
    c.workers = workers;
    c
}

/// Items delivered (by the red value each image carries), checking labels and layout.
fn drain(loader: &mut Loader) -> (Vec<usize>, Vec<usize>) {
    let mut items = Vec::new();
    let mut lens = Vec::new();
    let plane = (H * W) as usize;
    while let Some(b) = loader.next_batch() {
        let b = b.expect("no errors expected");
        assert_eq!(b.shape(), [b.len, 3, H as usize, W as usize]);
        lens.push(b.len);
        for (k, img) in b.images().chunks_exact(3 * plane).enumerate() {
            let red = (img[0] * 255.0).round() as usize;
            let green = (img[plane] * 255.0).round() as usize;
            assert_eq!(red + green, 255, "channels of item {red}");
            assert!(img[..plane].iter().all(|&v| v == img[0]));
            assert_eq!(b.labels()[k], (red % 3) as i32, "label of item {red}");
            items.push(red);
        }
    }
    (items, lens)
}

#[test]
fn in_order_epochs_deliver_every_item_once_in_source_order() {
    let mut c = cfg(8, 2);
    c.stop = Stop::Epochs(2);
    let mut l = Loader::new(source(50, &[]), c).unwrap();
    assert_eq!(l.total_batches(), 14);
    let (items, lens) = drain(&mut l);
    let expected: Vec<usize> = (0..50).chain(0..50).collect();
    assert_eq!(items, expected);
    assert_eq!(lens, [8, 8, 8, 8, 8, 8, 2, 8, 8, 8, 8, 8, 8, 2]);
    assert_eq!(l.stats().images, 100);
    assert_eq!(l.stats().errors, 0);
}

#[test]
fn shuffle_is_a_seeded_permutation_per_epoch() {
    let run = |seed: u64, workers: usize| {
        let mut c = cfg(7, workers);
        c.shuffle = Some(seed);
        c.stop = Stop::Epochs(2);
        drain(&mut Loader::new(source(40, &[]), c).unwrap()).0
    };
    let a = run(1, 2);
    assert_eq!(a, run(1, 1), "same seed, same order whatever the workers");
    assert_ne!(a, run(2, 2));
    let (e0, e1) = a.split_at(40);
    assert_ne!(e0, e1, "each epoch has its own permutation");
    assert_ne!(e0, (0..40).collect::<Vec<_>>());
    for e in [e0, e1] {
        assert_eq!(e.iter().copied().collect::<BTreeSet<_>>().len(), 40);
    }
}

#[test]
fn as_ready_delivers_every_item_once() {
    let mut c = cfg(3, 2);
    c.order = Order::AsReady;
    c.shuffle = Some(9);
    let (mut items, _) = drain(&mut Loader::new(source(31, &[]), c).unwrap());
    items.sort();
    assert_eq!(items, (0..31).collect::<Vec<_>>());
}

#[test]
fn stop_after_images_cuts_the_last_batch() {
    let mut c = cfg(8, 2);
    c.stop = Stop::Images(23);
    let (items, lens) = drain(&mut Loader::new(source(10, &[]), c).unwrap());
    assert_eq!(items.len(), 23);
    assert_eq!(lens, [8, 2, 8, 2, 3]);
    assert_eq!(items[20..], [0, 1, 2]);
}

#[test]
fn skip_counts_and_names_bad_items() {
    let mut l = Loader::new(source(20, &[3, 4, 11]), cfg(4, 2)).unwrap();
    let (items, lens) = drain(&mut l);
    let expected: Vec<usize> = (0..20).filter(|i| ![3, 4, 11].contains(i)).collect();
    assert_eq!(items, expected);
    assert_eq!(lens, [3, 3, 3, 4, 4]);
    let s = l.stats();
    assert_eq!(s.errors, 3);
    assert_eq!(s.first_errors.len(), 3);
    assert!(
        s.first_errors.iter().any(|e| e.starts_with("c2/011.ppm")),
        "{:?}",
        s.first_errors
    );
}

#[test]
fn only_the_first_five_failures_are_named_and_every_one_is_counted() {
    let bad = [1, 2, 5, 7, 9, 20, 30, 39];
    let mut l = Loader::new(source(40, &bad), cfg(4, 1)).unwrap();
    drain(&mut l);
    let s = l.stats();
    assert_eq!(s.errors, 8);
    assert_eq!(s.first_errors.len(), FIRST_ERRORS);
    let named: Vec<&str> = s.first_errors.iter().map(|e| &e[3..6]).collect();
    assert_eq!(
        named,
        ["001", "002", "005", "007", "009"],
        "{:?}",
        s.first_errors
    );
}

#[test]
fn slots_are_capped_at_max_slots() {
    let e = Loader::new(source(4, &[]), cfg(2, 1).slots(MAX_SLOTS + 1))
        .err()
        .expect("too many slots refused")
        .to_string();
    assert!(e.contains("257 batch slots: at most 256"), "{e}");
    // The default (2 × workers + 1) is capped rather than refused.
    let l = Loader::new(source(4, &[]), cfg(2, 200)).unwrap();
    assert_eq!(l.config().slots, MAX_SLOTS);
}

#[test]
fn fail_ends_the_stream_with_the_item_name() {
    let mut c = cfg(4, 2);
    c.on_error = OnError::Fail;
    let mut l = Loader::new(source(40, &[13]), c).unwrap();
    let mut err = None;
    let mut seen = 0;
    while let Some(b) = l.next_batch() {
        match b {
            Ok(b) => seen += b.len,
            Err(e) => err = Some(e.to_string()),
        }
    }
    let err = err.expect("an error");
    assert!(err.starts_with("c1/013.ppm"), "{err}");
    assert!(
        seen <= 12,
        "batches after the failing one were delivered: {seen}"
    );
    assert!(l.next_batch().is_none());
}

#[test]
fn all_bad_batch_is_skipped_and_empty_source_ends() {
    let (items, _) = drain(&mut Loader::new(source(8, &[4, 5, 6, 7]), cfg(4, 1)).unwrap());
    assert_eq!(items, [0, 1, 2, 3]);
    let (items, _) = drain(&mut Loader::new(source(0, &[]), cfg(4, 2)).unwrap());
    assert!(items.is_empty());
}

#[test]
fn dropping_mid_epoch_joins_the_workers() {
    // On its own thread, so that a drop that never joins fails the test (after a
    // generous minute) instead of hanging it.
    let (done, joined) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut c = cfg(2, 2);
        c.stop = Stop::Epochs(1000);
        c.slots = 3;
        let mut l = Loader::new(source(64, &[]), c).unwrap();
        for _ in 0..2 {
            let b = l.next_batch().unwrap().unwrap();
            assert_eq!(b.len, 2);
        }
        // Batches 0 and 1 delivered and handed back, 2 to 4 fill the three slots: 10
        // images, and the pool is full. Both workers then wait for a free slot (the
        // short sleep lets the last one reach its wait); dropping must wake and join them.
        wait_decoded(&l, 10);
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(l);
        done.send(()).unwrap();
    });
    match joined.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("dropping the loader did not join its workers within 60 s")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("the loader thread panicked before dropping the loader")
        }
    }
}

/// Wait until the workers have decoded `n` images (fails after a generous minute).
fn wait_decoded(l: &Loader, n: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while l.stats().times.images < n {
        assert!(
            std::time::Instant::now() < deadline,
            "the workers decoded {} images, not {n}, within 60 s",
            l.stats().times.images
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(l.stats().times.images, n, "decoded past a full pool");
}

/// `n` 6×5 images with structure, so that a flip or a crop changes their pixels: red
/// rises left to right, green top to bottom, blue names the item.
fn structured(n: usize) -> Arc<dyn Source> {
    let items = (0..n)
        .map(|i| {
            let img = image::RgbImage::from_fn(W, H, |x, y| {
                image::Rgb([(x * 50) as u8, (y * 40) as u8, (i * 20) as u8])
            });
            (format!("c0/{i:03}.ppm"), data_support::ppm(&img), Some(0))
        })
        .collect();
    Arc::new(MemSource::new(items, vec!["a".into()]))
}

/// Every pixel the loader delivers for `n` structured images, in delivery order.
fn pixels(c: LoaderConfig, n: usize) -> Vec<f32> {
    let mut l = Loader::new(structured(n), c).unwrap();
    let mut out = Vec::new();
    while let Some(b) = l.next_batch() {
        out.extend_from_slice(b.expect("no errors expected").images());
    }
    out
}

#[test]
fn augmentation_is_seeded_per_item() {
    let mut c = cfg(5, 2);
    c.augment.flip = true;
    c.augment.crop_min_scale = 0.6;
    c.augment.seed = 3;
    let a = pixels(c.clone(), 10);
    assert_eq!(a.len(), 10 * 3 * (H * W) as usize);
    assert_eq!(a, pixels(c.clone(), 10), "the same seed, the same tensors");
    let mut one = c.clone();
    one.workers = 1;
    assert_eq!(a, pixels(one, 10), "seeded per item, not per worker");
    let mut other = c.clone();
    other.augment.seed = 4;
    assert_ne!(a, pixels(other, 10), "another seed, other tensors");
    assert_ne!(a, pixels(cfg(5, 2), 10), "the augmentation changes pixels");
}
