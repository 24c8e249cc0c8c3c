//! The fused decoder (`data::decode`) against the naive reference (`data::naive`) on
//! JPEG, PNG (RGB, gray, RGBA, 16-bit) and PPM, both layouts, with and without resizing;
//! and bad input: pixel-limit refusal from crafted headers, truncated, empty, text.

mod data_support;

use data_support::*;
use edgebench_runtime::data::decode::{Augment, Decoder, Jpeg, Target};
use edgebench_runtime::data::naive;
use edgebench_runtime::error::Error;
use edgebench_runtime::model::Layout;
use edgebench_runtime::model::spec::Preprocess;
use image::{DynamicImage, ImageFormat};

fn target(h: u32, w: u32, layout: Layout) -> Target {
    let mut t = Target::new(h, w, layout);
    t.preprocess = Preprocess {
        scale: 1.0 / 255.0,
        mean: vec![0.485, 0.456, 0.406],
        std: vec![0.229, 0.224, 0.225],
    };
    t
}

/// Extra grey levels allowed on JPEG when the fast path decodes with libjpeg-turbo and the
/// reference with zune-jpeg (through `image`): two conforming decoders whose IDCT and
/// chroma upsampling differ (measured: at most 2 levels on these images).
const OTHER_DECODER: f32 = 3.0;

/// Fast and reference agree within `levels` grey levels (in normalised units), with every
/// JPEG decoder of this build (libjpeg-turbo `OTHER_DECODER` levels more on JPEGs).
fn agree(bytes: &[u8], t: &Target, flip: bool, levels: f32) {
    let reference = naive::preprocess(bytes, t, flip).expect("reference decodes");
    for &jpeg in Jpeg::built() {
        let mut dec = Decoder::with_jpeg(t, jpeg);
        assert_eq!(dec.jpeg(), jpeg);
        let mut out = vec![0f32; t.image_len()];
        let aug = Augment { flip, crop: None };
        dec.decode_into(bytes, aug, &mut out, || "test".into())
            .expect("fast path decodes");
        let other = if jpeg == Jpeg::Turbo && bytes.starts_with(&[0xFF, 0xD8]) {
            OTHER_DECODER
        } else {
            0.0
        };
        let tol = (levels + other) / 255.0 / 0.224 + 1e-5;
        let worst = out
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst <= tol,
            "{}: max |fast - reference| = {worst} > {tol}",
            jpeg.name()
        );
        // Twice through the same decoder (buffers reused) gives the same answer.
        let mut again = vec![0f32; t.image_len()];
        dec.decode_into(bytes, aug, &mut again, || "test".into())
            .expect("second decode");
        assert_eq!(out, again);
    }
}

#[test]
fn jpeg_same_size_matches_reference_both_layouts() {
    let bytes = jpeg(&smooth(64, 48, 1), 90);
    for layout in [Layout::Nchw, Layout::Nhwc] {
        agree(&bytes, &target(48, 64, layout), false, 0.0);
        agree(&bytes, &target(48, 64, layout), true, 0.0);
    }
}

#[test]
fn jpeg_resized_matches_reference() {
    let bytes = jpeg(&smooth(300, 200, 2), 90);
    for layout in [Layout::Nchw, Layout::Nhwc] {
        agree(&bytes, &target(64, 64, layout), false, 2.0);
        agree(&bytes, &target(224, 160, layout), true, 2.0);
    }
}

#[test]
fn gray_jpeg_becomes_rgb() {
    let gray = DynamicImage::ImageRgb8(smooth(40, 30, 3)).to_luma8();
    let bytes = encode(&DynamicImage::ImageLuma8(gray), ImageFormat::Jpeg);
    agree(&bytes, &target(30, 40, Layout::Nchw), false, 1.0);
}

#[test]
fn png_variants_match_reference() {
    let rgb = DynamicImage::ImageRgb8(smooth(50, 40, 4));
    let variants = [
        rgb.clone(),
        DynamicImage::ImageLuma8(rgb.to_luma8()),
        DynamicImage::ImageLumaA8(rgb.to_luma_alpha8()),
        DynamicImage::ImageRgba8(rgb.to_rgba8()),
        DynamicImage::ImageRgb16(rgb.to_rgb16()),
        DynamicImage::ImageLuma16(rgb.to_luma16()),
    ];
    for v in &variants {
        let bytes = encode(v, ImageFormat::Png);
        agree(&bytes, &target(40, 50, Layout::Nhwc), false, 0.0);
        agree(&bytes, &target(32, 32, Layout::Nchw), false, 2.0);
    }
}

#[test]
fn ppm_equals_png_of_same_pixels() {
    let img = smooth(33, 21, 5);
    let t = target(21, 33, Layout::Nchw);
    let mut dec = Decoder::new(&t);
    let (mut a, mut b) = (vec![0f32; t.image_len()], vec![0f32; t.image_len()]);
    dec.decode_into(&ppm(&img), Augment::default(), &mut a, || "ppm".into())
        .unwrap();
    dec.decode_into(&png(&img), Augment::default(), &mut b, || "png".into())
        .unwrap();
    assert_eq!(a, b);
    agree(&ppm(&img), &t, false, 0.0);
}

#[test]
fn crop_covers_a_region() {
    // Red left of x = 24, blue from there: cropping the right half (plus the filter's
    // reach) gives only blue.
    let img = image::RgbImage::from_fn(64, 64, |x, _| {
        if x < 24 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    });
    let t = Target::new(16, 16, Layout::Nhwc);
    let mut dec = Decoder::new(&t);
    let mut out = vec![0f32; t.image_len()];
    let aug = Augment {
        flip: false,
        crop: Some((0.5, 0.0, 0.5, 1.0)),
    };
    dec.decode_into(&png(&img), aug, &mut out, || "crop".into())
        .unwrap();
    for px in out.chunks_exact(3) {
        assert_eq!(px, [0.0, 0.0, 1.0]);
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG signature + IHDR claiming `w`×`h` RGB8, then nothing.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&w.to_be_bytes());
    chunk.extend_from_slice(&h.to_be_bytes());
    chunk.extend_from_slice(&[8, 2, 0, 0, 0]);
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&crc32(&chunk).to_be_bytes());
    out
}

/// The error every JPEG decoder of this build gives for `bytes` (all must refuse it).
fn decode_err(bytes: &[u8], name: &str) -> String {
    let t = Target::new(32, 32, Layout::Nchw);
    let mut msg = String::new();
    for &jpeg in Jpeg::built() {
        let mut dec = Decoder::with_jpeg(&t, jpeg);
        let mut out = vec![0f32; t.image_len()];
        let err = dec
            .decode_into(bytes, Augment::default(), &mut out, || name.into())
            .expect_err("must be refused");
        assert!(
            matches!(err, Error::Input { .. }),
            "{}: {err:?}",
            jpeg.name()
        );
        msg = err.to_string();
        assert!(msg.starts_with(name), "error does not name the item: {msg}");
    }
    msg
}

#[test]
fn decoder_names_parse_and_the_default_is_the_fastest_built() {
    assert_eq!(Jpeg::parse("zune").unwrap(), Jpeg::Zune);
    assert_eq!(Jpeg::parse(" ZUNE-JPEG ").unwrap(), Jpeg::Zune);
    let turbo = Jpeg::parse("libjpeg-turbo");
    if cfg!(feature = "turbojpeg") {
        assert_eq!(turbo.unwrap(), Jpeg::Turbo);
        assert_eq!(Jpeg::built(), [Jpeg::Turbo, Jpeg::Zune]);
    } else {
        let e = turbo.expect_err("not built");
        assert!(e.contains("turbojpeg` feature"), "{e}");
        assert_eq!(Jpeg::built(), [Jpeg::Zune]);
    }
    let e = Jpeg::parse("libjpeg").expect_err("unknown");
    assert!(e.contains("unknown JPEG decoder 'libjpeg'"), "{e}");
    if std::env::var_os("EDGEBENCH_JPEG").is_none() {
        assert_eq!(Jpeg::chosen(), Jpeg::built()[0]);
        assert_eq!(
            Decoder::new(&Target::new(8, 8, Layout::Nchw)).jpeg(),
            Jpeg::built()[0]
        );
    }
}

#[test]
fn huge_png_header_is_refused_before_allocating() {
    let msg = decode_err(&png_header(100_000, 100_000), "cats/huge.png");
    let t = Target::new(8, 8, Layout::Nchw);
    assert!(naive::preprocess(&png_header(100_000, 100_000), &t, false).is_err());
    assert!(
        msg.contains("100000x100000") && msg.contains("limit"),
        "{msg}"
    );
}

#[test]
fn huge_jpeg_header_is_refused() {
    let mut bytes = jpeg(&smooth(16, 16, 6), 90);
    let sof = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline SOF0");
    // SOF0: FF C0, length(2), precision(1), height(2), width(2).
    bytes[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    let msg = decode_err(&bytes, "dogs/huge.jpg");
    assert!(
        msg.contains("65535x65535") && msg.contains("limit"),
        "{msg}"
    );
}

#[test]
fn truncated_empty_and_text_are_named_errors() {
    let full = jpeg(&smooth(64, 64, 7), 90);
    decode_err(&full[..full.len() / 2], "a/truncated.jpg");
    decode_err(&full[..200], "a/header_only.jpg");
    let msg = decode_err(&[], "a/empty.jpg");
    assert!(msg.contains("empty"), "{msg}");
    decode_err(b"hello, this is not an image\n", "a/text.jpg");
    decode_err(b"P6\n4 4\n255\nxx", "a/short.ppm");
}

#[test]
fn a_jpeg_cut_short_is_refused_by_every_reader() {
    use edgebench_runtime::data::decode::truncated_jpeg;
    let full = jpeg(&smooth(64, 64, 3), 90);
    assert!(!truncated_jpeg(&full));
    // Bytes after the end-of-image marker (a camera trailer) are not a truncation.
    let mut trailer = full.clone();
    trailer.extend_from_slice(b"\0\0trailer");
    assert!(!truncated_jpeg(&trailer));
    // An EXIF-like segment before the scan holding a whole thumbnail, end marker
    // included, does not hide that the main image is cut short.
    let thumb = jpeg(&smooth(8, 8, 4), 50);
    let mut app1 = vec![0xFF, 0xE1];
    app1.extend_from_slice(&u16::try_from(thumb.len() + 2).unwrap().to_be_bytes());
    app1.extend_from_slice(&thumb);
    let mut with_thumb = full[..2].to_vec();
    with_thumb.extend_from_slice(&app1);
    with_thumb.extend_from_slice(&full[2..]);
    assert!(!truncated_jpeg(&with_thumb));
    for cut in [2, 3, 5, 100, full.len() / 2, 20] {
        let short = &full[..full.len() - cut];
        assert!(truncated_jpeg(short), "cut {cut}");
        let msg = decode_err(short, "a/cut.jpg");
        assert!(
            msg.contains("a/cut.jpg: truncated JPEG"),
            "cut {cut}: {msg}"
        );
        let t = target(16, 16, Layout::Nchw);
        let e = naive::preprocess(short, &t, false).unwrap_err();
        assert!(e.starts_with("truncated JPEG"), "cut {cut}: {e}");
    }
    assert!(truncated_jpeg(&with_thumb[..with_thumb.len() - 2]));
    // Not JPEGs, or broken rather than short: the decoder names those.
    assert!(!truncated_jpeg(b"\x89PNG\r\n\x1a\n"));
    assert!(!truncated_jpeg(&[0xFF, 0xD8, 0x00, 0x00]));
}
