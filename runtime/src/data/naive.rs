//! The naive baseline (the seed's Example 1 in Rust) and the reference preprocessing.
//!
//! One image at a time, fresh buffers every time, no overlap: read the encoded bytes
//! into a new `Vec`, `image::load_from_memory`, `image::imageops::resize` (triangle
//! filter), then a scalar `(x · scale − mean) / std` into a new `Vec<f32>`. It exists so
//! that the streaming loader's gain is measured rather than claimed, and
//! [`preprocess`] is the obviously-correct reference the fused fast path in
//! [`crate::data::decode`] is tested against.

use std::time::{Duration, Instant};

use crate::data::Source;
use crate::data::decode::{
    CHANNELS, StageTimes, TRUNCATED_JPEG, Target, check_pixels, truncated_jpeg,
};
use crate::data::loader::{FIRST_ERRORS, FirstErrors};
use crate::error::{Error, Result};
use crate::model::Layout;

/// Decode, resize and normalise one image the slow, simple way (optionally mirrored).
pub fn preprocess(bytes: &[u8], target: &Target, flip: bool) -> Result<Vec<f32>, String> {
    preprocess_timed(bytes, target, flip, &mut StageTimes::default())
}

fn preprocess_timed(
    bytes: &[u8],
    target: &Target,
    flip: bool,
    times: &mut StageTimes,
) -> Result<Vec<f32>, String> {
    if bytes.is_empty() {
        return Err("empty file (0 bytes)".into());
    }
    if truncated_jpeg(bytes) {
        return Err(TRUNCATED_JPEG.into());
    }
    let t0 = Instant::now();
    if bytes.starts_with(b"P6") {
        // `image` is built without PNM support: binary PPM is read by hand.
        let (w, h, off) = crate::data::decode::ppm_header(bytes)?;
        check_pixels(w.into(), h.into())?;
        let n = w as usize * h as usize * CHANNELS;
        let data = bytes.get(off..off + n).ok_or("truncated PPM")?.to_vec();
        let img = image::RgbImage::from_raw(w, h, data).ok_or("bad PPM")?;
        return finish(img, target, flip, times, t0, bytes.len());
    }
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot guess format: {e}"))?;
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| format!("invalid image: {e}"))?;
    check_pixels(w.into(), h.into())?;
    let img = image::load_from_memory(bytes)
        .map_err(|e| format!("invalid image: {e}"))?
        .to_rgb8();
    finish(img, target, flip, times, t0, bytes.len())
}

fn finish(
    img: image::RgbImage,
    target: &Target,
    flip: bool,
    times: &mut StageTimes,
    t0: Instant,
    encoded: usize,
) -> Result<Vec<f32>, String> {
    let t1 = Instant::now();
    let img = if img.dimensions() == (target.width, target.height) {
        img
    } else {
        image::imageops::resize(
            &img,
            target.width,
            target.height,
            image::imageops::FilterType::Triangle,
        )
    };
    let img = if flip {
        image::imageops::flip_horizontal(&img)
    } else {
        img
    };
    let t2 = Instant::now();
    let (tw, th) = (target.width as usize, target.height as usize);
    let mut out = vec![0f32; target.image_len()];
    for (x, y, px) in img.enumerate_pixels() {
        let (x, y) = (x as usize, y as usize);
        for c in 0..CHANNELS {
            let (mean, std) = target.mean_std(c);
            let v = (f32::from(px.0[c]) * target.preprocess.scale - mean) / std;
            let i = match target.layout {
                Layout::Nchw => c * th * tw + y * tw + x,
                Layout::Nhwc => (y * tw + x) * CHANNELS + c,
            };
            out[i] = v;
        }
    }
    let t3 = Instant::now();
    times.decode += t1 - t0;
    times.resize += t2 - t1;
    times.normalize += t3 - t2;
    times.images += 1;
    times.bytes += encoded as u64;
    Ok(out)
}

/// What a naive run did.
#[derive(Debug, Clone, Default)]
pub struct NaiveReport {
    pub times: StageTimes,
    pub wall: Duration,
    /// Items that failed (skipped), each counted once however often it was read, the
    /// source's [`Source::unreadable`] items included.
    pub errors: u64,
    /// Of those, JPEGs cut short.
    pub truncated: u64,
    /// The first few failures, naming their items.
    pub first_errors: FirstErrors,
    /// Sum of all outputs (keeps the work observable).
    pub checksum: f64,
}

/// Preprocess `images` items of `source` (cycling through it) one at a time. With
/// `fail_fast`, the first bad item (or one the source found unreadable) ends the run
/// with its error; otherwise it is counted and skipped.
pub fn run(
    source: &dyn Source,
    target: &Target,
    images: usize,
    fail_fast: bool,
) -> Result<NaiveReport> {
    let mut report = NaiveReport::default();
    let unreadable = source.unreadable();
    if let (true, Some(first)) = (fail_fast, unreadable.first()) {
        return Err(first.to_error());
    }
    report.errors = unreadable.len() as u64;
    report.first_errors = unreadable
        .iter()
        .take(FIRST_ERRORS)
        .map(|u| u.to_string())
        .collect();
    let n = source.len();
    if n == 0 {
        return Ok(report);
    }
    let mut failed = vec![false; n];
    let start = Instant::now();
    for k in 0..images {
        let i = k % n;
        let t0 = Instant::now();
        let mut buf = Vec::new();
        let read = source.read(i, &mut buf);
        report.times.read += t0.elapsed();
        let read_ok = read.is_ok();
        let result = read.and_then(|()| {
            preprocess_timed(&buf, target, false, &mut report.times).map_err(|reason| {
                Error::Input {
                    path: source.name(i).into(),
                    reason,
                }
            })
        });
        match result {
            Ok(out) => report.checksum += out.iter().map(|&v| f64::from(v)).sum::<f64>(),
            Err(e) if fail_fast => return Err(e),
            Err(_) if failed[i] => {}
            Err(e) => {
                failed[i] = true;
                report.errors += 1;
                report.truncated += u64::from(read_ok && truncated_jpeg(&buf));
                // Refused once full: only the first few are kept by name.
                let _ = report.first_errors.push(e.to_string());
            }
        }
    }
    report.wall = start.elapsed();
    Ok(report)
}
