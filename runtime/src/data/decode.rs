//! Decode one encoded image straight into its slot of a batch: decode → resize →
//! normalise → lay out (NCHW or NHWC, f32), with every intermediate buffer owned by a
//! per-worker [`Decoder`] and reused from one image to the next.
//!
//! - JPEG goes through `zune-jpeg` (RGB output, strict mode so that truncated scans are
//!   errors) into the decoder's reusable byte buffer; with the `turbojpeg` feature,
//!   through libjpeg-turbo 3 first (faster; README gives the measured figures), whose
//!   warnings — a truncated scan among them — count as errors. A JPEG libjpeg-turbo refuses
//!   (e.g. CMYK) is handed to `zune-jpeg`, whose verdict stands. Which one runs is a
//!   [`Jpeg`] choice made at run time (the best one built, or `EDGEBENCH_JPEG`), so one
//!   build measures and tests both; [`jpeg_decoder`] names the one in use.
//! - Binary PPM (`P6`, maxval 255) is parsed here and copied into the same buffer: the
//!   one format whose decode allocates nothing at all (the loader's zero-allocation test
//!   uses it; `zune-jpeg` and `fast_image_resize` keep small per-call scratch vectors).
//! - PNG and anything else `image` knows go through `image` (gray, gray+alpha, RGBA and
//!   16-bit are converted to RGB8).
//! - Resizing uses `fast_image_resize` (SIMD, bilinear convolution) into a reusable
//!   buffer and is skipped when the image already has the target size (and no crop).
//! - Normalisation is `(x · scale − mean[c]) / std[c]` from the [`Preprocess`]
//!   description, folded once into one multiply and one add per value
//!   (module `data::normalize`: de-interleaved in chunks, vectorised, AVX2 picked at run time).
//!
//! Images whose header claims more than [`MAX_PIXELS`] pixels are refused before any
//! pixel buffer is allocated ([`check_pixels`]), and a JPEG cut short is refused before
//! it is decoded ([`truncated_jpeg`]: both decoders would fill the missing rows with
//! grey); `data info`, the naive path and `run` apply the same two checks. The slow,
//! obviously-correct version of this pipeline is [`crate::data::naive::preprocess`]; a
//! shared test checks that both agree.

use std::io::Cursor;
use std::time::{Duration, Instant};

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::ImageDecoder;
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::error::{Error, Result};
use crate::model::Layout;
use crate::model::spec::Preprocess;

/// Largest image accepted, in pixels (width × height) as claimed by its header:
/// 64 Mpixel (e.g. 8192 × 8192). Larger images are refused before decoding.
pub const MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// Three colour channels: every image is decoded to RGB.
pub const CHANNELS: usize = 3;

/// What every decoded image becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub height: u32,
    pub width: u32,
    pub layout: Layout,
    /// Scale, per-channel mean and std (empty mean = 0, empty std = 1, one value = all
    /// channels).
    pub preprocess: Preprocess,
}

impl Target {
    /// A target of `height`×`width` with the default preprocessing (x / 255).
    pub fn new(height: u32, width: u32, layout: Layout) -> Self {
        Self {
            height,
            width,
            layout,
            preprocess: Preprocess::default(),
        }
    }

    /// Floats per image: 3 × height × width.
    pub fn image_len(&self) -> usize {
        CHANNELS * self.height as usize * self.width as usize
    }

    /// Mean and std of channel `c` (missing values broadcast from the first, or 0 / 1).
    pub fn mean_std(&self, c: usize) -> (f32, f32) {
        self.preprocess.mean_std(c)
    }
}

/// Per-item augmentation decided by the loader (seeded per item), applied in the same pass.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Augment {
    /// Mirror left-right.
    pub flip: bool,
    /// Crop `(left, top, width, height)` as fractions (0..=1) of the source's width and
    /// height, before resizing.
    pub crop: Option<(f64, f64, f64, f64)>,
}

/// Time spent per stage, accumulated without allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StageTimes {
    pub read: Duration,
    pub decode: Duration,
    pub resize: Duration,
    pub normalize: Duration,
    /// Images decoded successfully.
    pub images: u64,
    /// Encoded bytes read.
    pub bytes: u64,
}

impl StageTimes {
    /// Add another worker's times to these.
    pub fn add(&mut self, o: &StageTimes) {
        self.read += o.read;
        self.decode += o.decode;
        self.resize += o.resize;
        self.normalize += o.normalize;
        self.images += o.images;
        self.bytes += o.bytes;
    }
}

/// The JPEG decoders a build can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jpeg {
    /// `zune-jpeg` (pure Rust): in every build.
    Zune,
    /// libjpeg-turbo 3 through the `turbojpeg` crate (the `turbojpeg` feature), with
    /// `zune-jpeg` deciding on what it refuses.
    Turbo,
}

/// The environment variable that picks the JPEG decoder for measurement and tests.
pub const JPEG_ENV: &str = "EDGEBENCH_JPEG";

impl Jpeg {
    /// The decoders in this build, fastest first.
    pub fn built() -> &'static [Jpeg] {
        if cfg!(feature = "turbojpeg") {
            &[Jpeg::Turbo, Jpeg::Zune]
        } else {
            &[Jpeg::Zune]
        }
    }

    /// The name `EDGEBENCH_JPEG` takes and reports show.
    pub fn name(self) -> &'static str {
        match self {
            Jpeg::Zune => "zune-jpeg",
            Jpeg::Turbo => "libjpeg-turbo",
        }
    }

    /// Parse a decoder name (`zune-jpeg`/`zune`, `libjpeg-turbo`/`turbojpeg`/`turbo`);
    /// one built without the `turbojpeg` feature refuses libjpeg-turbo, saying so.
    pub fn parse(name: &str) -> std::result::Result<Jpeg, String> {
        let jpeg = match name.trim().to_ascii_lowercase().as_str() {
            "zune-jpeg" | "zune" => Jpeg::Zune,
            "libjpeg-turbo" | "turbojpeg" | "turbo" => Jpeg::Turbo,
            _ => {
                return Err(format!(
                    "unknown JPEG decoder '{name}' (expected {})",
                    Jpeg::built()
                        .iter()
                        .map(|j| j.name())
                        .collect::<Vec<_>>()
                        .join(" or ")
                ));
            }
        };
        if !Jpeg::built().contains(&jpeg) {
            return Err(format!(
                "{} is not in this build (built without the `turbojpeg` feature)",
                jpeg.name()
            ));
        }
        Ok(jpeg)
    }

    /// The decoder `EDGEBENCH_JPEG` names, else the fastest built; an error names the
    /// variable and its bad value.
    pub fn from_env() -> std::result::Result<Jpeg, String> {
        match std::env::var(JPEG_ENV) {
            Ok(v) if !v.trim().is_empty() => {
                Jpeg::parse(&v).map_err(|e| format!("{JPEG_ENV}={v}: {e}"))
            }
            _ => Ok(Jpeg::built()[0]),
        }
    }

    /// The process's choice: [`Jpeg::from_env`], read once; a bad value (which the CLI
    /// refuses at start-up) falls back to the fastest built.
    pub fn chosen() -> Jpeg {
        static CHOSEN: std::sync::OnceLock<Jpeg> = std::sync::OnceLock::new();
        *CHOSEN.get_or_init(|| Jpeg::from_env().unwrap_or(Jpeg::built()[0]))
    }

    /// What reports say about it.
    pub fn describe(self) -> &'static str {
        match self {
            Jpeg::Zune => "zune-jpeg 0.5",
            Jpeg::Turbo => "libjpeg-turbo 3 (turbojpeg), zune-jpeg 0.5 for what it refuses",
        }
    }
}

/// One worker's decoder: reusable buffers, a resizer and the normalisation tables.
pub struct Decoder {
    target: Target,
    jpeg: Jpeg,
    /// Per channel `(mul, add)`: `x · scale / std − mean / std`.
    affine: [(f32, f32); CHANNELS],
    /// Decoded RGB8 pixels of the current image.
    rgb: Vec<u8>,
    /// Resized RGB8 pixels (target size).
    resized: Vec<u8>,
    resizer: Resizer,
    /// libjpeg-turbo's decompressor, created on the first JPEG.
    #[cfg(feature = "turbojpeg")]
    turbo: Option<turbojpeg::Decompressor>,
    /// Per-stage times since creation.
    pub times: StageTimes,
}

impl Decoder {
    /// A decoder producing `target`-shaped images, with the process's JPEG decoder
    /// ([`Jpeg::chosen`]).
    pub fn new(target: &Target) -> Self {
        Self::with_jpeg(target, Jpeg::chosen())
    }

    /// A decoder producing `target`-shaped images with JPEG decoder `jpeg` (one of
    /// [`Jpeg::built`]; another falls back to `zune-jpeg`).
    pub fn with_jpeg(target: &Target, jpeg: Jpeg) -> Self {
        let mut affine = [(1.0, 0.0); CHANNELS];
        for (c, a) in affine.iter_mut().enumerate() {
            let (mean, std) = target.mean_std(c);
            *a = (target.preprocess.scale / std, -mean / std);
        }
        Self {
            target: target.clone(),
            jpeg,
            affine,
            rgb: Vec::new(),
            resized: vec![0; target.image_len()],
            resizer: Resizer::new(),
            #[cfg(feature = "turbojpeg")]
            turbo: None,
            times: StageTimes::default(),
        }
    }

    /// The JPEG decoder it uses.
    pub fn jpeg(&self) -> Jpeg {
        self.jpeg
    }

    /// The target this decoder produces.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Decode `bytes` into `out` (exactly [`Target::image_len`] floats). `name` names the
    /// item in the error (called only on failure).
    pub fn decode_into(
        &mut self,
        bytes: &[u8],
        aug: Augment,
        out: &mut [f32],
        name: impl FnOnce() -> String,
    ) -> Result<()> {
        self.decode_inner(bytes, aug, out)
            .map_err(|reason| Error::Input {
                path: name().into(),
                reason,
            })
    }

    fn decode_inner(
        &mut self,
        bytes: &[u8],
        aug: Augment,
        out: &mut [f32],
    ) -> std::result::Result<(), String> {
        if out.len() != self.target.image_len() {
            return Err(format!(
                "destination holds {} floats, expected {}",
                out.len(),
                self.target.image_len()
            ));
        }
        let t0 = Instant::now();
        let (w, h) = self.decode_rgb(bytes)?;
        let t1 = Instant::now();
        let (tw, th) = (self.target.width, self.target.height);
        let src: &[u8] = if (w, h) == (tw, th) && aug.crop.is_none() {
            &self.rgb
        } else {
            let src = ImageRef::new(w, h, &self.rgb, PixelType::U8x3)
                .map_err(|e| format!("resize source: {e}"))?;
            let mut dst = Image::from_slice_u8(tw, th, &mut self.resized, PixelType::U8x3)
                .map_err(|e| format!("resize destination: {e}"))?;
            let mut opts =
                ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
            if let Some((l, t, cw, ch)) = aug.crop {
                let (fw, fh) = (f64::from(w), f64::from(h));
                opts = opts.crop(l * fw, t * fh, cw * fw, ch * fh);
            }
            self.resizer
                .resize(&src, &mut dst, &opts)
                .map_err(|e| format!("resize {w}x{h} to {tw}x{th}: {e}"))?;
            &self.resized
        };
        let t2 = Instant::now();
        super::normalize::normalize(
            src,
            tw as usize,
            th as usize,
            self.target.layout,
            aug.flip,
            &self.affine,
            out,
        );
        let t3 = Instant::now();
        self.times.decode += t1 - t0;
        self.times.resize += t2 - t1;
        self.times.normalize += t3 - t2;
        self.times.images += 1;
        self.times.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Decode to RGB8 in `self.rgb`; returns (width, height).
    fn decode_rgb(&mut self, bytes: &[u8]) -> std::result::Result<(u32, u32), String> {
        match bytes {
            [] => Err("empty file (0 bytes)".into()),
            [0xFF, 0xD8, 0xFF, ..] if truncated_jpeg(bytes) => Err(TRUNCATED_JPEG.into()),
            [0xFF, 0xD8, 0xFF, ..] => self.decode_jpeg(bytes),
            [b'P', b'6', ..] => self.decode_ppm(bytes),
            _ => self.decode_other(bytes),
        }
    }

    #[cfg(not(feature = "turbojpeg"))]
    fn decode_jpeg(&mut self, bytes: &[u8]) -> std::result::Result<(u32, u32), String> {
        self.decode_jpeg_zune(bytes)
    }

    #[cfg(feature = "turbojpeg")]
    fn decode_jpeg(&mut self, bytes: &[u8]) -> std::result::Result<(u32, u32), String> {
        if self.jpeg == Jpeg::Zune {
            return self.decode_jpeg_zune(bytes);
        }
        match self.decode_jpeg_turbo(bytes) {
            Ok(dims) => Ok(dims),
            // Over the pixel limit: refused, never handed on.
            Err(TurboError::Refused(reason)) => Err(reason),
            // libjpeg-turbo could not: zune-jpeg decides (it decodes what libjpeg-turbo
            // does not support, and fails on what is broken).
            Err(TurboError::Failed) => self.decode_jpeg_zune(bytes),
        }
    }

    #[cfg(feature = "turbojpeg")]
    fn decode_jpeg_turbo(&mut self, bytes: &[u8]) -> std::result::Result<(u32, u32), TurboError> {
        let failed = |_: turbojpeg::Error| TurboError::Failed;
        let dec = match &mut self.turbo {
            Some(dec) => dec,
            empty => empty.insert(turbojpeg::Decompressor::new().map_err(failed)?),
        };
        let header = dec.read_header(bytes).map_err(failed)?;
        let (w, h) = (header.width, header.height);
        check_pixels(w as u64, h as u64).map_err(TurboError::Refused)?;
        let (w32, h32) = match (u32::try_from(w), u32::try_from(h)) {
            (Ok(w32), Ok(h32)) => (w32, h32),
            _ => return Err(TurboError::Refused(format!("JPEG of {w}x{h} pixels"))),
        };
        self.rgb.resize(w * h * CHANNELS, 0);
        let image = turbojpeg::Image {
            pixels: &mut self.rgb[..],
            width: w,
            pitch: w * CHANNELS,
            height: h,
            format: turbojpeg::PixelFormat::RGB,
        };
        dec.decompress(bytes, image).map_err(failed)?;
        Ok((w32, h32))
    }

    fn decode_jpeg_zune(&mut self, bytes: &[u8]) -> std::result::Result<(u32, u32), String> {
        let opts = DecoderOptions::default()
            .jpeg_set_out_colorspace(ColorSpace::RGB)
            .set_strict_mode(true)
            .set_max_width(usize::from(u16::MAX))
            .set_max_height(usize::from(u16::MAX));
        let mut dec = JpegDecoder::new_with_options(ZCursor::new(bytes), opts);
        dec.decode_headers()
            .map_err(|e| format!("invalid JPEG: {e}"))?;
        let (w, h) = dec
            .dimensions()
            .ok_or_else(|| "invalid JPEG: no dimensions".to_string())?;
        check_pixels(w as u64, h as u64)?;
        let n = dec
            .output_buffer_size()
            .ok_or_else(|| "invalid JPEG: size overflows".to_string())?;
        if n != w * h * CHANNELS {
            return Err(format!("JPEG decodes to {n} bytes, expected {w}x{h} RGB"));
        }
        self.rgb.resize(n, 0);
        dec.decode_into(&mut self.rgb)
            .map_err(|e| format!("invalid JPEG: {e}"))?;
        Ok((w as u32, h as u32))
    }

    fn decode_ppm(&mut self, bytes: &[u8]) -> std::result::Result<(u32, u32), String> {
        let (w, h, offset) = ppm_header(bytes)?;
        check_pixels(w as u64, h as u64)?;
        let n = w as usize * h as usize * CHANNELS;
        let data = bytes.get(offset..offset + n).ok_or_else(|| {
            format!(
                "truncated PPM: {} pixel bytes, expected {n}",
                bytes.len() - offset
            )
        })?;
        self.rgb.clear();
        self.rgb.extend_from_slice(data);
        Ok((w, h))
    }

    fn decode_other(&mut self, bytes: &[u8]) -> std::result::Result<(u32, u32), String> {
        if let Some((w, h)) = png_dimensions(bytes) {
            // Check the IHDR's claim before the PNG decoder looks any further.
            check_pixels(u64::from(w), u64::from(h))?;
        }
        let reader = image::ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| format!("cannot guess format: {e}"))?;
        if reader.format().is_none() {
            return Err(format!(
                "not a recognised image (starts with {})",
                hex_prefix(bytes)
            ));
        }
        let dec = reader
            .into_decoder()
            .map_err(|e| format!("invalid image: {e}"))?;
        let (w, h) = dec.dimensions();
        check_pixels(w as u64, h as u64)?;
        let img =
            image::DynamicImage::from_decoder(dec).map_err(|e| format!("invalid image: {e}"))?;
        self.rgb.clear();
        match img {
            image::DynamicImage::ImageRgb8(rgb) => self.rgb.extend_from_slice(rgb.as_raw()),
            other => self.rgb.extend_from_slice(other.to_rgb8().as_raw()),
        }
        Ok((w, h))
    }
}

/// Why libjpeg-turbo did not decode an image.
#[cfg(feature = "turbojpeg")]
enum TurboError {
    /// Refused by our own checks (pixel limit): final.
    Refused(String),
    /// libjpeg-turbo failed or warned.
    Failed,
}

/// The JPEG decoder this process uses ([`Jpeg::chosen`]), for reports.
pub fn jpeg_decoder() -> &'static str {
    Jpeg::chosen().describe()
}

/// Refuse images over [`MAX_PIXELS`] (or empty ones): the one size limit of every
/// reader of encoded images.
pub fn check_pixels(w: u64, h: u64) -> std::result::Result<(), String> {
    if w == 0 || h == 0 {
        return Err(format!("image has no pixels ({w}x{h})"));
    }
    if w.saturating_mul(h) > MAX_PIXELS {
        return Err(format!(
            "header claims {w}x{h} pixels, over the limit of {MAX_PIXELS} ({} Mpixel)",
            MAX_PIXELS >> 20
        ));
    }
    Ok(())
}

/// Why a JPEG that [`truncated_jpeg`] finds cut short is refused.
pub const TRUNCATED_JPEG: &str =
    "truncated JPEG: the file ends before its end-of-image marker (cut short)";

/// Whether `bytes` is a JPEG cut short: it starts like a JPEG but its marker segments run
/// past the end, or no end-of-image marker (FF D9) follows its first scan. Metadata
/// before the scan (an EXIF thumbnail) may hold an end-of-image marker of its own, so the
/// walk skips those segments by their lengths; entropy-coded data never holds FF D9
/// (a data byte FF is followed by 00), so any FF D9 after the scan starts is the real
/// end, and bytes after it (trailers some cameras append) are allowed. Bytes that are
/// not a JPEG, or whose markers are malformed rather than short, are left to the
/// decoder to name (`false`).
pub fn truncated_jpeg(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut i = 2;
    loop {
        match bytes.get(i) {
            None => return true,
            Some(0xFF) => {}
            Some(_) => return false,
        }
        // Any number of fill bytes FF precede a marker.
        while bytes.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else {
            return true;
        };
        i += 1;
        match marker {
            0xDA => break,
            // Stand-alone markers: no length.
            0x01 | 0xD0..=0xD7 => {}
            0x00 | 0xD8 | 0xD9 => return false,
            _ => {
                let Some(&[hi, lo]) = bytes.get(i..i + 2) else {
                    return true;
                };
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                if len < 2 {
                    return false;
                }
                i += len;
            }
        }
    }
    let scan = bytes.get(i..).unwrap_or_default();
    !scan.windows(2).rev().any(|w| w == [0xFF, 0xD9])
}

/// Whether the file at `path` is a JPEG cut short ([`truncated_jpeg`]); `false` when it
/// cannot be read (its reader reports that).
pub fn truncated_jpeg_file(path: &std::path::Path) -> bool {
    std::fs::read(path).is_ok_and(|b| truncated_jpeg(&b))
}

/// Width and height from a PNG's IHDR (signature, length, "IHDR", w, h).
fn png_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIG: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    if bytes.get(..8)? != SIG || bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let be = |r: std::ops::Range<usize>| -> Option<u32> {
        Some(u32::from_be_bytes(bytes.get(r)?.try_into().ok()?))
    };
    Some((be(16..20)?, be(20..24)?))
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parse a binary PPM header: `P6 <w> <h> 255` + one whitespace byte; comments allowed.
/// Returns (width, height, offset of the pixel data).
pub(crate) fn ppm_header(bytes: &[u8]) -> std::result::Result<(u32, u32, usize), String> {
    let mut pos = 2;
    let mut fields = [0u64; 3];
    for f in &mut fields {
        // Skip whitespace and comments.
        loop {
            match bytes.get(pos) {
                Some(b) if b.is_ascii_whitespace() => pos += 1,
                Some(b'#') => {
                    while bytes.get(pos).is_some_and(|&b| b != b'\n') {
                        pos += 1;
                    }
                }
                Some(_) => break,
                None => return Err("truncated PPM header".into()),
            }
        }
        let start = pos;
        while bytes.get(pos).is_some_and(u8::is_ascii_digit) && pos - start < 10 {
            *f = *f * 10 + u64::from(bytes[pos] - b'0');
            pos += 1;
        }
        if pos == start {
            return Err("invalid PPM header: expected a number".into());
        }
    }
    if !bytes.get(pos).is_some_and(u8::is_ascii_whitespace) {
        return Err("invalid PPM header: no whitespace after maxval".into());
    }
    let [w, h, max] = fields;
    if max != 255 {
        return Err(format!("PPM maxval {max} unsupported (only 255)"));
    }
    if w > u64::from(u32::MAX) || h > u64::from(u32::MAX) {
        return Err(format!("header claims {w}x{h} pixels"));
    }
    Ok((w as u32, h as u32, pos + 1))
}
