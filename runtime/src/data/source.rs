//! Opening a data set by path: an image folder (one sub-folder per class, as Keras
//! `image_dataset_from_directory` and torchvision `ImageFolder` expect, or a flat folder
//! of unlabelled images), a single TFRecord file, or a folder of TFRecord shards.
//!
//! Order is deterministic: classes sorted by folder name (label = index), files sorted
//! by path within each class; shards sorted by name, records in file order.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::Source;
use super::tfrecord::TfRecordSource;
use crate::error::{Error, Result};

/// Image file extensions recognised (case-insensitive).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "gif", "webp"];

/// Whether `path` has an image extension.
pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Whether a file name looks like a TFRecord shard: `*.tfrecord`, `*.tfrecords`,
/// `*.tfrec`, `*.tfrecord-*` (e.g. `train.tfrecord-00000-of-00004`) or `*-NNNNN-of-NNNNN`
/// (e.g. `train-00000-of-01024`, `x-00001-of-00004.tfrecord`).
pub fn is_tfrecord_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if [".tfrecord", ".tfrecords", ".tfrec"]
        .iter()
        .any(|e| lower.ends_with(e))
        || lower.contains(".tfrecord-")
    {
        return true;
    }
    // `-of-` between two digit runs.
    lower.match_indices("-of-").any(|(i, _)| {
        let before = lower[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_digit());
        let after = lower[i + 4..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit());
        before && after
    })
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        if e.file_name().to_string_lossy().starts_with('.') {
            continue; // hidden files and our own temporary files
        }
        out.push(e.path());
    }
    out.sort();
    Ok(out)
}

/// All images under `dir`, recursively, sorted by path.
fn images_under(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for p in list_dir(dir)? {
        if p.is_dir() {
            images_under(&p, out)?;
        } else if is_image(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// Open the data set at `path` (see the module docs for what is recognised).
pub fn open(path: &Path) -> Result<Box<dyn Source>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_file() {
        if is_image(path) {
            return Err(Error::Input {
                path: path.to_path_buf(),
                reason: "a single image is not a data set: give its folder".into(),
            });
        }
        let what = path.display().to_string();
        return Ok(Box::new(TfRecordSource::open(
            &[path.to_path_buf()],
            &what,
        )?));
    }
    let entries = list_dir(path)?;
    let dirs: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
    let mut classes = Vec::new();
    let mut files = Vec::new();
    let mut labels = Vec::new();
    for (label, d) in dirs.iter().enumerate() {
        images_under(d, &mut files)?;
        labels.resize(files.len(), label as u32);
        let name = d.file_name().map(|n| n.to_string_lossy().into_owned());
        classes.push(name.unwrap_or_default());
    }
    if !files.is_empty() {
        return Ok(Box::new(FolderSource::new(
            path,
            files,
            Some(labels),
            classes,
        )));
    }
    let shards: Vec<PathBuf> = entries
        .iter()
        .filter(|p| p.is_file())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| is_tfrecord_name(&n.to_string_lossy()))
        })
        .cloned()
        .collect();
    if !shards.is_empty() {
        let what = path.display().to_string();
        return Ok(Box::new(TfRecordSource::open(&shards, &what)?));
    }
    let flat: Vec<PathBuf> = entries
        .into_iter()
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    if !flat.is_empty() {
        return Ok(Box::new(FolderSource::new(path, flat, None, Vec::new())));
    }
    Err(Error::Input {
        path: path.to_path_buf(),
        reason: format!(
            "no images ({}) in class sub-folders or at the top, and no TFRecord shards",
            IMAGE_EXTENSIONS.join(", ")
        ),
    })
}

/// Image files on disk, labelled by class folder or unlabelled.
pub struct FolderSource {
    root: PathBuf,
    files: Vec<PathBuf>,
    labels: Option<Vec<u32>>,
    classes: Vec<String>,
}

impl FolderSource {
    /// A source over `files` (already sorted); `labels[i]` indexes `classes`.
    pub fn new(
        root: &Path,
        files: Vec<PathBuf>,
        labels: Option<Vec<u32>>,
        classes: Vec<String>,
    ) -> Self {
        FolderSource {
            root: root.to_path_buf(),
            files,
            labels,
            classes,
        }
    }
}

impl Source for FolderSource {
    fn len(&self) -> usize {
        self.files.len()
    }

    /// `File::open` + `read_to_end`: std sizes the read from `fstat` and only probes
    /// with a stack buffer at the end, and short paths are converted to C strings on the
    /// stack, so nothing is allocated once `buf` holds the largest file (checked by
    /// `runtime/tests/source_alloc.rs`).
    fn read(&self, i: usize, buf: &mut Vec<u8>) -> Result<()> {
        let path = self
            .files
            .get(i)
            .ok_or_else(|| Error::Invalid(format!("item {i} out of range")))?;
        buf.clear();
        let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
        f.read_to_end(buf).map_err(|e| Error::io(path, e))?;
        if buf.is_empty() {
            return Err(Error::Input {
                path: path.clone(),
                reason: "empty file (0 bytes)".into(),
            });
        }
        Ok(())
    }

    fn label(&self, i: usize) -> Option<u32> {
        self.labels.as_ref().and_then(|l| l.get(i).copied())
    }

    fn classes(&self) -> &[String] {
        &self.classes
    }

    fn name(&self, i: usize) -> String {
        match self.files.get(i) {
            Some(p) => p.display().to_string(),
            None => format!("{} item {i}", self.root.display()),
        }
    }

    fn describe(&self) -> String {
        match self.labels {
            Some(_) => format!(
                "image folder {}: {} images in {} classes",
                self.root.display(),
                self.files.len(),
                self.classes.len()
            ),
            None => format!(
                "image folder {}: {} unlabelled images",
                self.root.display(),
                self.files.len()
            ),
        }
    }
}
