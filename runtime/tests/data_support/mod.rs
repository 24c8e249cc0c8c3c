//! Test images for the decode and loader tests: smooth random RGB content encoded as
//! JPEG, PNG (8/16-bit, gray, RGBA) or binary PPM.
#![allow(dead_code)]

use image::{ImageFormat, Rgb, RgbImage};

/// Smooth pseudo-random content (a few sinusoids), deterministic from `seed`.
pub fn smooth(w: u32, h: u32, seed: u64) -> RgbImage {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut rnd = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as f32) / (1u64 << 31) as f32
    };
    let p: Vec<f32> = (0..12).map(|_| rnd()).collect();
    RgbImage::from_fn(w, h, |x, y| {
        let (x, y) = (x as f32 / w as f32, y as f32 / h as f32);
        let ch = |k: usize| {
            let v = 0.5
                + 0.25
                    * ((x * (1.0 + 6.0 * p[k]) + y * 3.0 * p[k + 3]) * std::f32::consts::TAU
                        + p[k + 6] * 6.0)
                        .sin()
                + 0.2 * ((y * (2.0 + 5.0 * p[k + 9]) - x) * std::f32::consts::TAU).cos();
            (v.clamp(0.0, 1.0) * 255.0) as u8
        };
        Rgb([ch(0), ch(1), ch(2)])
    })
}

pub fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .expect("encode jpeg");
    out
}

pub fn encode(img: &image::DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

pub fn png(img: &RgbImage) -> Vec<u8> {
    encode(
        &image::DynamicImage::ImageRgb8(img.clone()),
        ImageFormat::Png,
    )
}

pub fn ppm(img: &RgbImage) -> Vec<u8> {
    let mut out = format!("P6\n{} {}\n255\n", img.width(), img.height()).into_bytes();
    out.extend_from_slice(img.as_raw());
    out
}

/// A solid-colour PPM (for loader tests: the pixel value identifies the item).
pub fn solid_ppm(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    ppm(&RgbImage::from_pixel(w, h, Rgb(rgb)))
}
