//! `edgebench data pack` and `data info` in library form: write any [`Source`] as
//! TFRecord shards of `tf.train.Example` (what `tf.data.TFRecordDataset` +
//! `tf.io.parse_single_example` read), and check that every item of a source reads.

use std::io::{BufWriter, Cursor};
use std::path::{Path, PathBuf};

use super::Source;
use super::decode::{TRUNCATED_JPEG, check_pixels, truncated_jpeg};
use super::example::ImageExample;
use super::tfrecord::Writer;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic_with;

/// Shard file names for `out` split `n` ways: `out` itself when `n == 1`, else
/// `stem-00000-of-0000n.ext` beside it (TensorFlow's usual naming).
pub fn shard_paths(out: &Path, n: usize) -> Vec<PathBuf> {
    if n <= 1 {
        return vec![out.to_path_buf()];
    }
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    let ext = out
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (0..n)
        .map(|i| out.with_file_name(format!("{stem}-{i:05}-of-{n:05}{ext}")))
        .collect()
}

/// The encoded image's format name as TensorFlow data sets write it (`jpeg`, `png`, ...)
/// and its size when the header can be parsed. `Err` when the bytes are not an image, or
/// not one the loader takes: over its size limit ([`check_pixels`]) or a JPEG cut short
/// ([`truncated_jpeg`]).
pub fn probe(bytes: &[u8]) -> Result<(String, Option<(u32, u32)>), String> {
    if bytes.is_empty() {
        return Err("empty file (0 bytes)".into());
    }
    if truncated_jpeg(bytes) {
        return Err(TRUNCATED_JPEG.into());
    }
    let fmt = image::guess_format(bytes).map_err(|_| "not a recognised image format")?;
    let name = fmt.extensions_str().first().copied().unwrap_or("unknown");
    let name = if name == "jpg" { "jpeg" } else { name };
    let reader = image::ImageReader::with_format(Cursor::new(bytes), fmt);
    match reader.into_dimensions() {
        Ok((w, h)) => {
            check_pixels(w.into(), h.into())?;
            Ok((name.to_string(), Some((w, h))))
        }
        // Formats whose decoder is not compiled in still pack, without a size.
        Err(image::ImageError::Unsupported(_)) => Ok((name.to_string(), None)),
        Err(e) => Err(format!("bad {name} header: {e}")),
    }
}

/// What [`pack`] wrote.
#[derive(Debug, Clone, Default)]
pub struct PackSummary {
    /// Each shard: path, records, bytes.
    pub shards: Vec<(PathBuf, u64, u64)>,
    /// Items skipped: name and reason.
    pub skipped: Vec<String>,
}

impl PackSummary {
    /// Records written in all shards.
    pub fn records(&self) -> u64 {
        self.shards.iter().map(|s| s.1).sum()
    }
    /// Bytes written in all shards.
    pub fn bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.2).sum()
    }
    /// A line per shard, then the totals.
    pub fn text(&self) -> String {
        use crate::units::{bytes, thousands};
        let mut s = String::new();
        for (path, records, b) in &self.shards {
            s.push_str(&format!(
                "{}: {} records, {}\n",
                path.display(),
                thousands(*records),
                bytes(*b)
            ));
        }
        s.push_str(&format!(
            "packed {} records ({}) into {} shard{}; skipped {}\n",
            thousands(self.records()),
            bytes(self.bytes()),
            self.shards.len(),
            if self.shards.len() == 1 { "" } else { "s" },
            self.skipped.len()
        ));
        s
    }
}

/// Write `src` as `shards` TFRecord files named by [`shard_paths`] (at most one per
/// item: fewer when there are fewer items), items in order, split into contiguous runs.
/// Each shard is written atomically (temporary file, then rename). Items that cannot be
/// read or are not images, and the source's [`Source::unreadable`] ones, are skipped and
/// listed. `progress(done, total)` is called after each item.
pub fn pack(
    src: &dyn Source,
    out: &Path,
    shards: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PackSummary> {
    if shards == 0 {
        return Err(Error::Invalid("--shards must be at least 1".into()));
    }
    if src.is_empty() {
        return Err(Error::Invalid(format!(
            "nothing to pack: {}",
            src.describe()
        )));
    }
    let total = src.len();
    let shards = shards.min(total);
    let paths = shard_paths(out, shards);
    let mut summary = PackSummary {
        skipped: src.unreadable().iter().map(|u| u.to_string()).collect(),
        ..Default::default()
    };
    let mut buf = Vec::new();
    let mut done = 0;
    for (s, path) in paths.iter().enumerate() {
        let range = (s * total / shards)..((s + 1) * total / shards);
        let mut counts = (0, 0);
        write_atomic_with(path, |f| {
            let mut w = Writer::new(BufWriter::with_capacity(1 << 20, f));
            for i in range {
                done += 1;
                let item = src
                    .read(i, &mut buf)
                    .map_err(|e| e.to_string())
                    .and_then(|_| probe(&buf).map_err(|e| format!("{}: {e}", src.name(i))));
                match item {
                    Ok((format, size)) => {
                        let label = src.label(i);
                        let ex = ImageExample {
                            encoded: std::mem::take(&mut buf),
                            label: label.map(i64::from),
                            class_text: label.and_then(|l| src.classes().get(l as usize)).cloned(),
                            format: Some(format),
                            height: size.map(|s| i64::from(s.1)),
                            width: size.map(|s| i64::from(s.0)),
                        };
                        w.write(&ex.encode())?;
                        buf = ex.encoded;
                    }
                    Err(reason) => summary.skipped.push(reason),
                }
                progress(done, total);
            }
            counts = (w.records(), w.bytes());
            w.into_inner()?;
            Ok(())
        })?;
        summary.shards.push((path.clone(), counts.0, counts.1));
    }
    Ok(summary)
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Items checked.
    pub items: usize,
    /// Items with a label.
    pub labelled: usize,
    /// Bad items: name and reason (all of them).
    pub bad: Vec<String>,
    /// Encoded bytes read.
    pub bytes: u64,
}

impl VerifyReport {
    /// `items: 30, labelled: 30, bytes: 37.7 KiB, bad: 0`.
    pub fn line(&self) -> String {
        use crate::units::{bytes, thousands};
        format!(
            "items: {}, labelled: {}, bytes: {}, bad: {}",
            thousands(self.items as u64),
            thousands(self.labelled as u64),
            bytes(self.bytes),
            self.bad.len()
        )
    }
}

/// `classes: a, b, c` — at most the first 20 and how many more; `None` without classes.
pub fn classes_line(classes: &[String]) -> Option<String> {
    if classes.is_empty() {
        return None;
    }
    let shown: Vec<&str> = classes.iter().take(20).map(String::as_str).collect();
    let more = classes.len() - shown.len();
    let tail = if more > 0 {
        format!(", … {more} more")
    } else {
        String::new()
    };
    Some(format!("classes: {}{tail}", shown.join(", ")))
}

/// Read every item of `src` and check that it is an image the loader takes ([`probe`]);
/// the source's [`Source::unreadable`] items count as items, and as bad ones.
pub fn verify(src: &dyn Source, progress: &mut dyn FnMut(usize, usize)) -> VerifyReport {
    let unreadable = src.unreadable();
    let mut r = VerifyReport {
        items: src.len() + unreadable.len(),
        bad: unreadable.iter().map(|u| u.to_string()).collect(),
        ..Default::default()
    };
    let mut buf = Vec::new();
    for i in 0..src.len() {
        if src.label(i).is_some() {
            r.labelled += 1;
        }
        match src.read(i, &mut buf) {
            Ok(()) => {
                r.bytes += buf.len() as u64;
                if let Err(e) = probe(&buf) {
                    r.bad.push(format!("{}: {e}", src.name(i)));
                }
            }
            Err(e) => r.bad.push(e.to_string()),
        }
        progress(i + 1, src.len());
    }
    r
}
