//! TFRecord files: framing, a streaming reader, a writer, and a [`Source`] over one or
//! more shards of `tf.train.Example` images.
//!
//! Each record is `u64 length (LE) | u32 masked CRC-32C of the length bytes | data |
//! u32 masked CRC-32C of the data` (tensorflow/core/lib/io/record_writer.cc). Lengths
//! above [`MAX_RECORD_LEN`] are refused before anything is allocated, so a corrupt
//! length can never ask for gigabytes.
//!
//! CRC policy: opening a [`TfRecordSource`] scans every shard once (labels live inside
//! the records), checking both CRCs of every record; [`Source::read`] checks the data
//! CRC again on every read, so the bytes handed downstream are always the checked ones.
//! A broken frame (bad length CRC, truncation, oversized length) makes the shard
//! unreadable past that point and fails the open; a record whose data CRC is bad, or
//! that is not a `tf.train.Example` with `image/encoded`, is left out of the items and
//! listed in [`Source::unreadable`] (file, record number, byte offset), so that every
//! reader counts it as one bad item (or fails on it) while the other records read.
//! An empty shard is an empty TFRecord file: no records, not an error (a set with no
//! record at all is one).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{Source, Unreadable, example};
use crate::crc32c::masked_crc32c;
use crate::error::{Error, Result};

/// Largest record accepted (64 MiB): far above any single encoded image, small enough
/// that a corrupt length field cannot exhaust memory.
pub const MAX_RECORD_LEN: u64 = 64 << 20;

/// Largest class label accepted in `image/class/label` (class lists are allocated from it).
pub const MAX_LABEL: i64 = 1 << 20;

/// The 12-byte header (length, masked CRC of the length) for a record of `len` bytes.
pub fn header(len: u64) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[..8].copy_from_slice(&len.to_le_bytes());
    let crc = masked_crc32c(&h[..8]);
    h[8..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Writes records with TFRecord framing.
pub struct Writer<W: Write> {
    inner: W,
    records: u64,
    bytes: u64,
}

impl<W: Write> Writer<W> {
    /// A writer over `inner` (wrap files in a `BufWriter`).
    pub fn new(inner: W) -> Self {
        Writer {
            inner,
            records: 0,
            bytes: 0,
        }
    }

    /// Append one record.
    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(&header(data.len() as u64))?;
        self.inner.write_all(data)?;
        self.inner.write_all(&masked_crc32c(data).to_le_bytes())?;
        self.records += 1;
        self.bytes += data.len() as u64 + 16;
        Ok(())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes written so far (framing included).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Flush and return the inner writer.
    pub fn into_inner(mut self) -> std::io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// One framed record found by [`Reader::next_framed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framed {
    /// Byte offset of the record's data in the file.
    pub offset: u64,
    /// Whether the data CRC matched.
    pub crc_ok: bool,
}

/// Reads records one after another from any byte stream, reusing the caller's buffer.
pub struct Reader<R: Read> {
    inner: R,
    path: PathBuf,
    record: usize,
    offset: u64,
}

impl<R: Read> Reader<R> {
    /// A reader over `inner`; `path` names it in errors.
    pub fn new(inner: R, path: impl Into<PathBuf>) -> Self {
        Reader {
            inner,
            path: path.into(),
            record: 0,
            offset: 0,
        }
    }

    /// Index of the next record.
    pub fn record(&self) -> usize {
        self.record
    }

    fn err(&self, reason: impl std::fmt::Display) -> Error {
        Error::Input {
            path: self.path.clone(),
            reason: format!("record {}: {reason}", self.record),
        }
    }

    /// Fill `buf` completely; `Ok(false)` on a clean end of stream before any byte.
    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<bool> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) if got == 0 && what == "header" => return Ok(false),
                Ok(0) => {
                    return Err(self.err(format!(
                        "truncated record: file ends inside the {what} ({got} of {} bytes)",
                        buf.len()
                    )));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        }
        Ok(true)
    }

    /// Read the next record's data into `buf` (cleared first). Framing errors (bad length
    /// CRC, truncation, oversized length) are errors; a bad data CRC is reported in
    /// [`Framed::crc_ok`] so that the caller can decide.
    pub fn next_framed(&mut self, buf: &mut Vec<u8>) -> Result<Option<Framed>> {
        let mut h = [0u8; 12];
        if !self.fill(&mut h, "header")? {
            return Ok(None);
        }
        let mut len8 = [0u8; 8];
        len8.copy_from_slice(&h[..8]);
        let stored = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        if masked_crc32c(&len8) != stored {
            return Err(self.err("length CRC mismatch (corrupt, or not a TFRecord file)"));
        }
        let len = u64::from_le_bytes(len8);
        if len > MAX_RECORD_LEN {
            return Err(self.err(format!(
                "record length {len} exceeds the {} MiB limit",
                MAX_RECORD_LEN >> 20
            )));
        }
        buf.clear();
        buf.resize(len as usize, 0);
        self.fill(buf, "data")?;
        let mut c = [0u8; 4];
        self.fill(&mut c, "data CRC")?;
        let crc_ok = masked_crc32c(buf) == u32::from_le_bytes(c);
        let framed = Framed {
            offset: self.offset + 12,
            crc_ok,
        };
        self.offset += 16 + len;
        self.record += 1;
        Ok(Some(framed))
    }

    /// Read the next record's data into `buf`, with both CRCs checked.
    pub fn next(&mut self, buf: &mut Vec<u8>) -> Result<Option<u64>> {
        match self.next_framed(buf)? {
            Some(f) if !f.crc_ok => {
                self.record -= 1;
                let e = self.err("data CRC mismatch");
                self.record += 1;
                Err(e)
            }
            other => Ok(other.map(|f| f.offset)),
        }
    }
}

/// Where one record lives.
#[derive(Debug, Clone, Copy)]
struct Item {
    shard: u32,
    record: u32,
    offset: u64,
    len: u32,
    label: Option<u32>,
}

/// A [`Source`] over TFRecord shards of `tf.train.Example` images. Shard files stay
/// open; reads are positional (`pread`), so any number of threads can read at once.
pub struct TfRecordSource {
    shards: Vec<(PathBuf, File)>,
    items: Vec<Item>,
    /// Records left out of `items`: bad data CRC, or no image in them.
    unreadable: Vec<Unreadable>,
    classes: Vec<String>,
    what: String,
}

impl TfRecordSource {
    /// Open and index `paths` in the given order; `what` names the whole set in
    /// [`Source::describe`]. Classes: `image/class/text` where present, else the label
    /// numbers `0..=max`. Empty shards hold no records; a set without any record is an
    /// error (a zero-byte file is never useful data).
    pub fn open(paths: &[PathBuf], what: &str) -> Result<Self> {
        let mut shards = Vec::with_capacity(paths.len());
        let mut items = Vec::new();
        let mut unreadable = Vec::new();
        let mut texts: BTreeMap<u32, String> = BTreeMap::new();
        let mut buf = Vec::new();
        for (s, path) in paths.iter().enumerate() {
            let file = File::open(path).map_err(|e| Error::io(path, e))?;
            let mut r = Reader::new(BufReader::with_capacity(1 << 20, &file), path);
            while let Some(f) = r.next_framed(&mut buf)? {
                let record = r.record() - 1;
                let scanned = if f.crc_ok {
                    example::scan(&buf).map_err(|e| format!("not a tf.train.Example: {e}"))
                } else {
                    Err(record_crc_mismatch(f.offset))
                };
                let sc = match scanned {
                    Ok(sc) if sc.encoded.is_some() => sc,
                    Ok(_) => {
                        unreadable.push(unreadable_record(
                            path,
                            record,
                            "no image/encoded bytes feature",
                        ));
                        continue;
                    }
                    Err(reason) => {
                        unreadable.push(unreadable_record(path, record, &reason));
                        continue;
                    }
                };
                let mut label = None;
                if let Some(l) = sc.label.filter(|l| *l >= 0) {
                    if l > MAX_LABEL {
                        return Err(Error::Input {
                            path: path.clone(),
                            reason: format!("record {record}: label {l} above {MAX_LABEL}"),
                        });
                    }
                    label = Some(l as u32);
                    if let Some(t) = sc.text {
                        let name = String::from_utf8_lossy(&buf[t]).into_owned();
                        texts.entry(l as u32).or_insert(name);
                    }
                }
                items.push(Item {
                    shard: s as u32,
                    record: record as u32,
                    offset: f.offset,
                    len: buf.len() as u32,
                    label,
                });
            }
            shards.push((path.clone(), file));
        }
        if items.is_empty() && unreadable.is_empty() {
            return Err(match paths {
                [one] => Error::Input {
                    path: one.clone(),
                    reason: "empty file: no TFRecord records".into(),
                },
                _ => Error::Input {
                    path: what.into(),
                    reason: format!("no TFRecord records in its {} shards", paths.len()),
                },
            });
        }
        let classes = match items.iter().filter_map(|i| i.label).max() {
            None => Vec::new(),
            Some(max) => (0..=max)
                .map(|l| texts.get(&l).cloned().unwrap_or_else(|| l.to_string()))
                .collect(),
        };
        Ok(TfRecordSource {
            shards,
            items,
            unreadable,
            classes,
            what: what.to_string(),
        })
    }

    fn input_err(&self, i: usize, reason: &str) -> Error {
        let it = &self.items[i];
        Error::Input {
            path: self.shards[it.shard as usize].0.clone(),
            reason: format!("record {}: {reason}", it.record),
        }
    }
}

impl Source for TfRecordSource {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn read(&self, i: usize, buf: &mut Vec<u8>) -> Result<()> {
        let it = *self
            .items
            .get(i)
            .ok_or_else(|| Error::Invalid(format!("item {i} out of range")))?;
        let (path, file) = &self.shards[it.shard as usize];
        let n = it.len as usize;
        buf.clear();
        buf.resize(n + 4, 0);
        file.read_exact_at(buf, it.offset)
            .map_err(|e| Error::io(path, e))?;
        let stored = u32::from_le_bytes([buf[n], buf[n + 1], buf[n + 2], buf[n + 3]]);
        buf.truncate(n);
        if masked_crc32c(buf) != stored {
            return Err(self.input_err(i, &record_crc_mismatch(it.offset)));
        }
        let range = match example::scan(buf) {
            Ok(example::Scanned {
                encoded: Some(r), ..
            }) => r,
            Ok(_) => return Err(self.input_err(i, "no image/encoded bytes feature")),
            Err(e) => return Err(self.input_err(i, &format!("not a tf.train.Example: {e}"))),
        };
        let len = range.len();
        buf.copy_within(range, 0);
        buf.truncate(len);
        Ok(())
    }

    fn label(&self, i: usize) -> Option<u32> {
        self.items.get(i).and_then(|it| it.label)
    }

    fn classes(&self) -> &[String] {
        &self.classes
    }

    fn name(&self, i: usize) -> String {
        match self.items.get(i) {
            Some(it) => format!(
                "{} record {}",
                self.shards[it.shard as usize].0.display(),
                it.record
            ),
            None => format!("{} item {i}", self.what),
        }
    }

    fn describe(&self) -> String {
        let bad = match self.unreadable.len() {
            0 => String::new(),
            n => format!(" ({n} unreadable)"),
        };
        format!(
            "TFRecord {}: {} shard{}, {} records{bad}, {} classes",
            self.what,
            self.shards.len(),
            if self.shards.len() == 1 { "" } else { "s" },
            self.items.len() + self.unreadable.len(),
            self.classes.len()
        )
    }

    fn unreadable(&self) -> &[Unreadable] {
        &self.unreadable
    }
}

/// Why a record's data fails its CRC, with where the data start in the file.
fn record_crc_mismatch(offset: u64) -> String {
    format!("data CRC mismatch (record data at byte {offset})")
}

/// Record `record` of `path`, unreadable for `reason`.
fn unreadable_record(path: &Path, record: usize, reason: &str) -> Unreadable {
    Unreadable {
        path: path.to_path_buf(),
        reason: format!("record {record}: {reason}"),
    }
}

/// Read every record of a TFRecord byte string (both CRCs checked) and decode each as
/// an image Example; the number of records. Never panics.
pub fn check_bytes(bytes: &[u8]) -> Result<usize> {
    let mut r = Reader::new(bytes, "<bytes>");
    let mut buf = Vec::new();
    let mut n = 0;
    while r.next(&mut buf)?.is_some() {
        example::scan(&buf).map_err(|e| Error::Invalid(e.to_string()))?;
        n += 1;
    }
    Ok(n)
}

/// The `tfrecord` fuzz target's body: read `data` as TFRecord framing and as a bare
/// Example, decode every record with both the zero-copy scanner and `prost`, and panic
/// only if they disagree on the image bytes or label (errors are fine; panics inside the
/// reader or decoders are the bugs a fuzzer looks for).
pub fn fuzz_one(data: &[u8]) {
    let _ = check_bytes(data);
    let agree = |rec: &[u8]| {
        if let (Ok(s), Ok(d)) = (example::scan(rec), example::ImageExample::decode(rec)) {
            assert_eq!(
                s.encoded.map(|r| &rec[r]),
                Some(&d.encoded[..]),
                "image bytes"
            );
            assert_eq!(s.label, d.label, "label");
        }
    };
    agree(data);
    let mut r = Reader::new(data, "<fuzz>");
    let mut buf = Vec::new();
    while let Ok(Some(_)) = r.next_framed(&mut buf) {
        agree(&buf);
    }
}

/// Path of `path` as a shard list with one entry (convenience for single files).
pub fn single(path: &Path) -> Vec<PathBuf> {
    vec![path.to_path_buf()]
}

#[cfg(test)]
mod tests;
