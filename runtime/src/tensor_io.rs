//! Tensor inputs for `edgebench run`: images decoded, resized and normalised into the
//! NCHW f32 tensor a model expects, and seeded random tensors. `.npy` files are read and
//! written by [`crate::data::npy`]. Tensor sizes come from models and flags, so they are
//! allocated through [`crate::alloc`]: too large is an error, not an abort.

use std::path::Path;

use ndarray::{Array4, ArrayD, IxDyn};

use crate::alloc::{self, TooLarge};
use crate::error::{Error, Result};
use crate::model::spec::Preprocess;

/// Decode an image file, resize it to `height`×`width`, convert to `channels` (1 or 3),
/// and normalise it with `pre` into a `[1, C, H, W]` tensor.
pub fn load_image(
    path: &Path,
    height: usize,
    width: usize,
    channels: usize,
    pre: &Preprocess,
) -> Result<ArrayD<f32>> {
    let bad = |reason: String| Error::Input {
        path: path.to_path_buf(),
        reason,
    };
    if channels != 1 && channels != 3 {
        return Err(bad(format!(
            "the model takes {channels} channels; images can feed 1 or 3"
        )));
    }
    for (what, v) in [("mean", &pre.mean), ("std", &pre.std)] {
        // One value applies to every channel, as in the loader.
        if !v.is_empty() && v.len() != 1 && v.len() != channels {
            return Err(bad(format!(
                "preprocessing {what} has {} values for {channels} channels",
                v.len()
            )));
        }
    }
    if pre.std.contains(&0.0) {
        return Err(bad("preprocessing std contains 0".into()));
    }
    let reader = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    if reader.format().is_none() {
        return Err(bad("not a recognised image format".into()));
    }
    let (w0, h0) = reader
        .into_dimensions()
        .map_err(|e| bad(format!("cannot read the image header: {e}")))?;
    // The loader's limit, checked before any pixel buffer is allocated.
    crate::data::decode::check_pixels(u64::from(w0), u64::from(h0)).map_err(bad)?;
    let img = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?
        .decode()
        .map_err(|e| bad(format!("cannot decode the image: {e}")))?;
    let shape = [1, channels, height, width];
    let what = || format!("{} (the model's input)", alloc::tensor(&shape, "f32"));
    let n = alloc::elements(&shape, what).map_err(|e| e.at(path))?;
    let zeros = alloc::try_zeroed::<f32>(n, what).map_err(|e| e.at(path))?;
    let mut out = Array4::from_shape_vec(shape, zeros)
        .map_err(|e| bad(format!("input shape {shape:?}: {e}")))?;
    let (Ok(h), Ok(w)) = (u32::try_from(height), u32::try_from(width)) else {
        return Err(bad(format!(
            "the model's input is {height}x{width}, larger than images can be"
        )));
    };
    let filter = image::imageops::FilterType::Triangle;
    let norm = |c: usize, v: u8| {
        let x = f32::from(v) * pre.scale;
        let (m, s) = pre.mean_std(c);
        (x - m) / s
    };
    if channels == 3 {
        let rgb = image::imageops::resize(&img.to_rgb8(), w, h, filter);
        for (x, y, p) in rgb.enumerate_pixels() {
            for c in 0..3 {
                out[[0, c, y as usize, x as usize]] = norm(c, p.0[c]);
            }
        }
    } else {
        let g = image::imageops::resize(&img.to_luma8(), w, h, filter);
        for (x, y, p) in g.enumerate_pixels() {
            out[[0, 0, y as usize, x as usize]] = norm(0, p.0[0]);
        }
    }
    Ok(out.into_dyn())
}

/// Reshape helper: the array as `shape` or a shape error naming `what`.
pub fn expect_shape(a: &ArrayD<f32>, shape: &[usize], what: &str) -> Result<()> {
    if a.shape() != shape {
        return Err(Error::Shape {
            what: what.to_string(),
            expected: format!("{shape:?}"),
            got: format!("{:?}", a.shape()),
        });
    }
    Ok(())
}

/// A deterministic pseudo-random input in [0, 1) of the given shape (for runs, tests and
/// benchmarks that need no files). A shape whose size overflows or exceeds physical
/// memory is a [`TooLarge`]; callers name the model with [`TooLarge::at`].
pub fn seeded_input(shape: &[usize], seed: u64) -> Result<ArrayD<f32>, TooLarge> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Uniform};
    let what = || format!("{} (the random input)", alloc::tensor(shape, "f32"));
    let n = alloc::elements(shape, what)?;
    let mut data = alloc::try_zeroed::<f32>(n, what)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let dist = Uniform::new(0.0f32, 1.0).unwrap_or_else(|_| unreachable!("0 < 1"));
    data.iter_mut().for_each(|v| *v = dist.sample(&mut rng));
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|_| TooLarge {
        what: what(),
        needed: None,
        available: alloc::physical_memory(),
        refused: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_is_resized_and_normalised() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("red.png");
        image::RgbImage::from_pixel(16, 8, image::Rgb([255, 0, 51]))
            .save(&p)
            .unwrap();
        let pre = Preprocess {
            scale: 1.0 / 255.0,
            mean: vec![0.5, 0.0, 0.0],
            std: vec![0.5, 1.0, 1.0],
        };
        let t = load_image(&p, 4, 4, 3, &pre).unwrap();
        assert_eq!(t.shape(), &[1, 3, 4, 4]);
        assert!((t[[0, 0, 2, 2]] - 1.0).abs() < 1e-6);
        assert!(t[[0, 1, 0, 0]].abs() < 1e-6);
        assert!((t[[0, 2, 3, 3]] - 0.2).abs() < 1e-6);
        let txt = dir.path().join("fake.jpg");
        std::fs::write(&txt, b"hello, not an image").unwrap();
        let e = load_image(&txt, 4, 4, 3, &pre).unwrap_err().to_string();
        assert!(e.contains("fake.jpg"), "{e}");
    }

    #[test]
    fn impossible_inputs_are_errors_not_aborts() {
        let e = seeded_input(&[1 << 62, 1 << 62, 1, 1], 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("overflows 64 bits"), "{e}");
        let e = seeded_input(&[1, 3, 1_000_000, 1_000_000], 0)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("needs 10.9 TiB for a 1x3x1000000x1000000 f32 tensor (the random input)"),
            "{e}"
        );
        let a = seeded_input(&[2, 3], 7).unwrap();
        assert_eq!(a.shape(), &[2, 3]);
        assert!(a.iter().all(|v| (0.0..1.0).contains(v)));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("red.png");
        image::RgbImage::from_pixel(2, 2, image::Rgb([1, 2, 3]))
            .save(&p)
            .unwrap();
        let e = load_image(&p, 1_000_000, 1_000_000, 3, &Preprocess::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("red.png: needs 10.9 TiB"), "{e}");
    }
}
