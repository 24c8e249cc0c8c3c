//! Input pipeline throughput: decode + normalise 256×256 quality-90 JPEGs (smooth random
//! content, ≈23 KB each, as in REFERENCE.md's tf.data figure) to f32 NCHW, with the
//! streaming loader (1 worker, all workers) and the naive one-at-a-time baseline.
//!
//! The images are written to a temporary folder and opened through
//! `data::source::open`, so reads come from files as in real use. Environment:
//! `EDGEBENCH_LOADER_BENCH_DIR=DIR` writes (and keeps) the images there instead,
//! `EDGEBENCH_LOADER_BENCH_COUNT=N` sets how many (default 200),
//! `EDGEBENCH_LOADER_BENCH_LAYOUT=nhwc` the output layout (default nchw).

use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgebench_runtime::data::decode::Target;
use edgebench_runtime::data::loader::{Loader, LoaderConfig, Stop};
use edgebench_runtime::data::{Source, naive, source};
use edgebench_runtime::model::Layout;
use image::{Rgb, RgbImage};

/// Smooth random content: a bilinearly interpolated 9×9 grid of random colours plus
/// a little per-pixel noise (which brings quality-90 files to ≈23 KB).
fn smooth_random(size: u32, seed: u64) -> RgbImage {
    let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    const G: usize = 9;
    let grid: Vec<[f32; 3]> = (0..G * G)
        .map(|_| [rnd() * 255.0, rnd() * 255.0, rnd() * 255.0])
        .collect();
    let cell = (size - 1) as f32 / (G - 1) as f32;
    let mut img = RgbImage::new(size, size);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let (fx, fy) = (x as f32 / cell, y as f32 / cell);
        let (gx, gy) = ((fx as usize).min(G - 2), (fy as usize).min(G - 2));
        let (tx, ty) = (fx - gx as f32, fy - gy as f32);
        let at = |i: usize, j: usize, c: usize| grid[j * G + i][c];
        let mut out = [0u8; 3];
        for (c, o) in out.iter_mut().enumerate() {
            let top = at(gx, gy, c) * (1.0 - tx) + at(gx + 1, gy, c) * tx;
            let bottom = at(gx, gy + 1, c) * (1.0 - tx) + at(gx + 1, gy + 1, c) * tx;
            let v = top * (1.0 - ty) + bottom * ty + (rnd() - 0.5) * 18.0;
            *o = v.clamp(0.0, 255.0) as u8;
        }
        *px = Rgb(out);
    }
    img
}

/// Write `count` images into `dir` (one class folder); returns total encoded bytes.
fn write_images(dir: &Path, count: usize) -> u64 {
    let class = dir.join("smooth");
    std::fs::create_dir_all(&class).expect("create bench folder");
    let mut total = 0;
    for i in 0..count {
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
            .encode_image(&smooth_random(256, i as u64))
            .expect("encode");
        total += bytes.len() as u64;
        std::fs::write(class.join(format!("{i:05}.jpg")), &bytes).expect("write image");
    }
    total
}

fn bench(c: &mut Criterion) {
    let count: usize = std::env::var("EDGEBENCH_LOADER_BENCH_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = std::env::var_os("EDGEBENCH_LOADER_BENCH_DIR")
        .map_or_else(|| tmp.path().to_path_buf(), Into::into);
    let total = write_images(&dir, count);
    eprintln!(
        "{count} JPEGs 256x256 q90 in {}, {:.1} KB each on average",
        dir.display(),
        total as f64 / count as f64 / 1e3
    );
    let src: Arc<dyn Source> = Arc::from(source::open(&dir).expect("open bench images"));
    let layout = match std::env::var("EDGEBENCH_LOADER_BENCH_LAYOUT").as_deref() {
        Ok("nhwc") => Layout::Nhwc,
        _ => Layout::Nchw,
    };
    let target = Target::new(256, 256, layout);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    // One pass with the stage split, for the report (CPU time per image per stage).
    for workers in [1, cores] {
        let mut cfg = LoaderConfig::new(target.clone(), 16);
        cfg.workers = workers;
        let mut l = Loader::new(Arc::clone(&src), cfg).expect("loader");
        let start = std::time::Instant::now();
        while let Some(batch) = l.next_batch() {
            batch.expect("batch");
        }
        let wall = start.elapsed().as_secs_f64();
        let t = l.stats().times;
        let us = |d: std::time::Duration| d.as_secs_f64() * 1e6 / t.images.max(1) as f64;
        eprintln!(
            "stream {workers}w: {:.0} images/s; per image: read {:.0} µs, decode {:.0} µs, resize {:.0} µs, normalize {:.0} µs",
            t.images as f64 / wall,
            us(t.read),
            us(t.decode),
            us(t.resize),
            us(t.normalize)
        );
    }

    let mut g = c.benchmark_group("loader/jpeg256_q90");
    g.throughput(Throughput::Elements(count as u64));
    g.sample_size(10);
    for workers in [1, cores] {
        g.bench_function(format!("stream_{workers}w"), |b| {
            b.iter(|| {
                let mut cfg = LoaderConfig::new(target.clone(), 16);
                cfg.workers = workers;
                cfg.stop = Stop::Epochs(1);
                let mut l = Loader::new(Arc::clone(&src), cfg).expect("loader");
                let mut n = 0;
                while let Some(batch) = l.next_batch() {
                    n += batch.expect("batch").len;
                }
                assert_eq!(n, count);
            })
        });
    }
    g.bench_function("naive", |b| {
        b.iter(|| {
            let r = naive::run(&*src, &target, count, true).expect("naive");
            assert_eq!(r.times.images, count as u64);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
