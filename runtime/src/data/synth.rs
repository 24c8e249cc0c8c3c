//! Synthetic labelled image sets (`edgebench data synth`): one sub-folder per class
//! (`class_00`, `class_01`, ...), each class a shape kind and colour family, every image
//! with a random size, position, rotation and colour jitter on a smooth noisy
//! background. Deterministic from the seed (each image has its own RNG stream derived
//! from seed, class and index, so thread count never changes a byte), and learnable: the
//! class is visible in shape and colour, never in the background.
//!
//! The background (bilinear blend of a coarse random colour grid, soft waves, fine
//! noise) makes 256×256 quality-90 JPEGs come out at about 20–25 KB, like the reference
//! test set of REFERENCE.md.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use image::{ImageEncoder, RgbImage};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// Shape kinds, in class order (class `c` draws `SHAPES[c % SHAPES.len()]`).
pub const SHAPES: [&str; 8] = [
    "circle", "square", "triangle", "cross", "ring", "stripes", "ellipse", "crescent",
];

/// Encoded format of the written files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthFormat {
    /// Baseline JPEG at [`SynthOptions::quality`].
    Jpeg,
    /// Lossless PNG.
    Png,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// Output folder (created).
    pub out: PathBuf,
    /// Number of classes (1..=1000).
    pub classes: usize,
    /// Total number of images, spread evenly over the classes (first classes get the
    /// remainder).
    pub count: usize,
    /// Width and height in pixels (8..=4096).
    pub size: u32,
    /// RNG seed: same seed, same files.
    pub seed: u64,
    /// File format.
    pub format: SynthFormat,
    /// JPEG quality (1..=100).
    pub quality: u8,
    /// Worker threads (0: all cores).
    pub threads: usize,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct SynthSummary {
    /// Files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Class folder names, in label order.
    pub classes: Vec<String>,
}

impl SynthSummary {
    /// `wrote 4 images (3.4 KiB, 875 B per image) in 2 classes to DIR in 0.1 s`.
    pub fn line(&self, out: &Path, seconds: f64) -> String {
        use crate::units::{bytes, thousands};
        format!(
            "wrote {} images ({}, {} per image) in {} classes to {} in {seconds:.1} s",
            thousands(self.files as u64),
            bytes(self.bytes),
            bytes(self.bytes / self.files.max(1) as u64),
            self.classes.len(),
            out.display(),
        )
    }
}

/// Class folder name for class `c` of `n`.
pub fn class_name(c: usize, n: usize) -> String {
    let width = (n.saturating_sub(1)).to_string().len().max(2);
    format!("class_{c:0width$}")
}

fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h = h.rem_euclid(1.0) * 6.0;
    let i = h.floor();
    let f = h - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match i as i32 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// Whether the point (u, v), in the shape's rotated frame and in units of its radius,
/// lies inside shape `kind`.
fn inside(kind: usize, u: f32, v: f32) -> bool {
    let d2 = u * u + v * v;
    match kind {
        0 => d2 < 1.0,
        1 => u.abs() < 0.8 && v.abs() < 0.8,
        2 => v > -0.5 && v < 1.0 - 2.0 * u.abs() * 0.866,
        3 => (u.abs() < 0.3 && v.abs() < 1.0) || (v.abs() < 0.3 && u.abs() < 1.0),
        4 => (0.36..1.0).contains(&d2),
        5 => u.abs() < 0.9 && v.abs() < 0.9 && ((u + 0.9) / 0.36) as i32 % 2 == 0,
        6 => u * u + v * v * 6.0 < 1.0,
        _ => d2 < 1.0 && (u - 0.45) * (u - 0.45) + v * v > 0.64,
    }
}

/// Base hue of a class: spread by the golden ratio over the kinds; classes beyond the
/// first eight reuse a kind with the opposite hue (then a quarter turn).
fn class_hue(class: usize) -> f32 {
    let kind = class % SHAPES.len();
    let family = (class / SHAPES.len()) as f32;
    (kind as f32 * 0.618_034 + family * 0.5 + (family / 2.0).floor() * 0.25 + 0.05).fract()
}

/// Render one image of class `class` with `rng`.
pub fn render(class: usize, size: u32, rng: &mut ChaCha8Rng) -> RgbImage {
    let s = size as f32;
    // Background: coarse 4×4 grid of muted colours, bilinearly blended, plus soft waves.
    let grid: Vec<[f32; 3]> = (0..16)
        .map(|_| {
            let c = hsv(
                rng.random(),
                rng.random_range(0.0..0.35),
                rng.random_range(0.3..0.9),
            );
            c.map(|x| x * 255.0)
        })
        .collect();
    let waves: [f32; 6] = std::array::from_fn(|_| rng.random_range(0.0..1.0));
    // Shape: the class fixes kind and hue; the rest is jitter.
    let kind = class % SHAPES.len();
    let hue = class_hue(class) + rng.random_range(-0.03..0.03);
    let colour =
        hsv(hue, rng.random_range(0.65..1.0), rng.random_range(0.7..1.0)).map(|x| x * 255.0);
    let r = s * rng.random_range(0.14..0.32);
    let (cx, cy) = (rng.random_range(r..s - r), rng.random_range(r..s - r));
    let (sin, cos) = rng.random_range(0.0..std::f32::consts::TAU).sin_cos();
    let mut img = RgbImage::new(size, size);
    let (mut noise, mut left) = (0u64, 0);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let (fx, fy) = (x as f32 / s * 3.0, y as f32 / s * 3.0);
        let (ix, iy) = ((fx as usize).min(2), (fy as usize).min(2));
        let (tx, ty) = (fx - ix as f32, fy - iy as f32);
        let g = |dx: usize, dy: usize| grid[(iy + dy) * 4 + ix + dx];
        let (a, b, c, d) = (g(0, 0), g(1, 0), g(0, 1), g(1, 1));
        let wave = 14.0
            * ((fx * (1.0 + 3.0 * waves[0]) + fy * waves[1]) * 2.1 + waves[2] * 6.0).sin()
            + 10.0 * ((fy * (1.0 + 4.0 * waves[3]) - fx * waves[4]) * 2.7 + waves[5] * 6.0).cos();
        let (dx, dy) = ((x as f32 - cx) / r, (y as f32 - cy) / r);
        let (u, v) = (dx * cos + dy * sin, dy * cos - dx * sin);
        let shape = inside(kind, u, v);
        if left == 0 {
            (noise, left) = (rng.random::<u64>(), 12); // twelve 5-bit draws per u64
        }
        left -= 1;
        let n = (noise & 0x1f) as f32 * 0.7 - 10.85;
        noise >>= 5;
        for k in 0..3 {
            let base = if shape {
                colour[k]
            } else {
                let top = a[k] + (b[k] - a[k]) * tx;
                let bot = c[k] + (d[k] - c[k]) * tx;
                top + (bot - top) * ty + wave
            };
            px.0[k] = (base + n).clamp(0.0, 255.0) as u8;
        }
    }
    img
}

/// Encode `img` as `format`.
pub fn encode(img: &RgbImage, format: SynthFormat, quality: u8) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let (w, h) = img.dimensions();
    let res = match format {
        SynthFormat::Jpeg => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8),
        SynthFormat::Png => image::codecs::png::PngEncoder::new(&mut out).write_image(
            img.as_raw(),
            w,
            h,
            image::ExtendedColorType::Rgb8,
        ),
    };
    res.map_err(|e| Error::Invalid(format!("encoding a synthetic image: {e}")))?;
    Ok(out)
}

/// Per-image RNG: a stream of the seed's generator chosen by class and index.
fn rng_for(seed: u64, class: usize, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((class as u64) << 32) | index as u64);
    rng
}

/// Write `data` to `path` through a temporary file in the same folder and a rename, so
/// that an interrupted run never leaves a half-written image under its final name.
fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, data)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(path, e)
        })
}

/// Generate the set described by `opts`; `progress(done, total)` is called after each
/// file, from worker threads.
pub fn generate(
    opts: &SynthOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SynthSummary> {
    if !(1..=1000).contains(&opts.classes) {
        return Err(Error::Invalid(format!(
            "--classes {} is not in 1..=1000",
            opts.classes
        )));
    }
    if !(8..=4096).contains(&opts.size) {
        return Err(Error::Invalid(format!(
            "--size {} is not in 8..=4096",
            opts.size
        )));
    }
    if !(1..=100).contains(&opts.quality) {
        return Err(Error::Invalid(format!(
            "--quality {} is not in 1..=100",
            opts.quality
        )));
    }
    if opts.count == 0 {
        return Err(Error::Invalid("--count must be at least 1".into()));
    }
    let classes: Vec<String> = (0..opts.classes)
        .map(|c| class_name(c, opts.classes))
        .collect();
    for c in &classes {
        let d = opts.out.join(c);
        std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
    }
    let ext = match opts.format {
        SynthFormat::Jpeg => "jpg",
        SynthFormat::Png => "png",
    };
    // Image k is class k % classes, index k / classes within it.
    let total = opts.count;
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(total);
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let worker = || -> Result<()> {
        loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            if k >= total {
                return Ok(());
            }
            let (class, index) = (k % opts.classes, k / opts.classes);
            let mut rng = rng_for(opts.seed, class, index);
            let img = render(class, opts.size, &mut rng);
            let path = opts
                .out
                .join(&classes[class])
                .join(format!("img_{index:05}.{ext}"));
            let data = match encode(&img, opts.format, opts.quality)
                .and_then(|data| write_file(&path, &data).map(|_| data))
            {
                Ok(data) => data,
                Err(e) => {
                    next.store(total, Ordering::Relaxed); // stop the other workers
                    return Err(e);
                }
            };
            bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
        }
    };
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Invalid("a synth worker panicked".into())))
            })
            .collect()
    });
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(SynthSummary {
        files: total,
        bytes: bytes.into_inner(),
        classes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(out: &Path, seed: u64, threads: usize) -> SynthOptions {
        SynthOptions {
            out: out.to_path_buf(),
            classes: 3,
            count: 7,
            size: 32,
            seed,
            format: SynthFormat::Jpeg,
            quality: 90,
            threads,
        }
    }

    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for c in std::fs::read_dir(dir).unwrap() {
            let c = c.unwrap().path();
            for f in std::fs::read_dir(&c).unwrap() {
                let f = f.unwrap().path();
                let rel = f.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&f).unwrap()));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn same_seed_same_bytes_any_thread_count() {
        let d = tempfile::tempdir().unwrap();
        let (a, b, c) = (d.path().join("a"), d.path().join("b"), d.path().join("c"));
        let s = generate(&opts(&a, 5, 1), &|_, _| {}).unwrap();
        generate(&opts(&b, 5, 3), &|_, _| {}).unwrap();
        generate(&opts(&c, 6, 2), &|_, _| {}).unwrap();
        let (fa, fb, fc) = (files(&a), files(&b), files(&c));
        assert_eq!(fa, fb);
        assert_eq!(fa.len(), 7);
        assert_eq!(s.files, 7);
        assert_eq!(s.bytes, fa.iter().map(|f| f.1.len() as u64).sum::<u64>());
        assert!(fa.iter().zip(&fc).all(|(x, y)| x.0 == y.0 && x.1 != y.1));
        // Layout: class_00 gets images 0, 3, 6 → img_00000..img_00002; class_02 two.
        let names: Vec<&str> = fa.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(
            names[..3],
            [
                "class_00/img_00000.jpg",
                "class_00/img_00001.jpg",
                "class_00/img_00002.jpg"
            ]
        );
        assert_eq!(names[6], "class_02/img_00001.jpg");
        let img = image::load_from_memory(&fa[0].1).unwrap();
        assert_eq!((img.width(), img.height()), (32, 32));
        assert!(
            !std::fs::read_dir(a.join("class_00")).unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.'))
        );
    }

    #[test]
    fn class_names_and_bad_options() {
        assert_eq!(class_name(3, 10), "class_03");
        assert_eq!(class_name(7, 250), "class_007");
        let d = tempfile::tempdir().unwrap();
        let mut o = opts(d.path(), 0, 1);
        o.classes = 0;
        assert!(generate(&o, &|_, _| {}).is_err());
        let mut o = opts(d.path(), 0, 1);
        o.size = 100_000;
        assert!(
            generate(&o, &|_, _| {})
                .unwrap_err()
                .to_string()
                .contains("--size")
        );
    }

    #[test]
    fn classes_differ_in_shape_and_hue() {
        let grid: Vec<(f32, f32)> = (0..40)
            .flat_map(|i| (0..40).map(move |j| (i as f32 / 20.0 - 1.0, j as f32 / 20.0 - 1.0)))
            .collect();
        for (a, sa) in SHAPES.iter().enumerate() {
            for (b, sb) in SHAPES.iter().enumerate().take(a) {
                let differ = grid
                    .iter()
                    .filter(|(u, v)| inside(a, *u, *v) != inside(b, *u, *v));
                assert!(differ.count() > 80, "{sa} vs {sb}");
            }
        }
        for a in 0..16 {
            for b in 0..a {
                let d = (class_hue(a) - class_hue(b)).rem_euclid(1.0);
                let same_kind = a % SHAPES.len() == b % SHAPES.len();
                assert!(!same_kind || d.min(1.0 - d) > 0.2, "classes {a} and {b}");
            }
        }
        let mut rng = rng_for(1, 0, 0);
        let png = encode(&render(4, 16, &mut rng), SynthFormat::Png, 90).unwrap();
        assert_eq!(image::load_from_memory(&png).unwrap().width(), 16);
    }
}
