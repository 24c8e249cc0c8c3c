//! Opening a data set by path: an image folder (one sub-folder per class, as Keras
//! `image_dataset_from_directory` and torchvision `ImageFolder` expect, or a flat folder
//! of unlabelled images), a single TFRecord file, or a folder of TFRecord shards.
//!
//! Order is deterministic: classes sorted by folder name (label = index), files sorted
//! by path within each class; shards sorted by name, records in file order.
//!
//! A class is a direct sub-folder of the root. Folders are walked once each (device and
//! inode are tracked), and a link to a folder is followed only when it leads out of the
//! tree: a link back into it (a loop, or a shortcut to another class) is left alone, since
//! the images it points at are reached, with their own label, by their real path.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
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

/// The entries of `dir` but hidden ones, sorted by path.
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

/// What an entry of a folder is to the walk.
enum Entry {
    /// A folder to walk: a real sub-folder, or a link to a folder outside the tree, not
    /// walked before.
    Dir,
    /// A folder not to walk: a link back into the tree (its images are reached by their
    /// own path) or a folder already walked (a loop).
    Seen,
    /// Anything else (a file, a dangling link).
    Other,
}

/// The one walk of an image folder, used for class folders and their contents alike:
/// every folder is entered once (tracked by device and inode), and a link is followed
/// only when it leads out of the tree, so neither a loop nor a link to another class can
/// add an image twice or give it another class's label.
struct Walk {
    /// The root, links resolved.
    root: PathBuf,
    /// (device, inode) of every folder entered.
    seen: HashSet<(u64, u64)>,
}

impl Walk {
    fn new(root: &Path) -> Result<Self> {
        let real = std::fs::canonicalize(root).map_err(|e| Error::io(root, e))?;
        let meta = std::fs::metadata(&real).map_err(|e| Error::io(root, e))?;
        Ok(Walk {
            root: real,
            seen: HashSet::from([(meta.dev(), meta.ino())]),
        })
    }

    /// Classify `path`, marking a folder to walk as entered.
    fn entry(&mut self, path: &Path) -> Entry {
        let Ok(meta) = std::fs::metadata(path) else {
            return Entry::Other;
        };
        if !meta.is_dir() {
            return Entry::Other;
        }
        let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        if is_link
            && std::fs::canonicalize(path).map_or(true, |target| target.starts_with(&self.root))
        {
            return Entry::Seen;
        }
        if self.seen.insert((meta.dev(), meta.ino())) {
            Entry::Dir
        } else {
            Entry::Seen
        }
    }

    /// All images under `dir`, recursively, in path order.
    fn images(&mut self, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        for p in list_dir(dir)? {
            match self.entry(&p) {
                Entry::Dir => self.images(&p, out)?,
                Entry::Seen => {}
                Entry::Other if is_image(&p) => out.push(p),
                Entry::Other => {}
            }
        }
        Ok(())
    }
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
    // Classes are the direct sub-folders of the root (not links back into it).
    let mut walk = Walk::new(path)?;
    let dirs: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| matches!(walk.entry(p), Entry::Dir))
        .collect();
    let mut classes = Vec::new();
    let mut files = Vec::new();
    let mut labels = Vec::new();
    for (label, d) in dirs.iter().enumerate() {
        walk.images(d, &mut files)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    #[test]
    fn class_folders_sorted_labels_and_extensions() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        touch(&r.join("zebra/b.JPG"), b"z1");
        touch(&r.join("zebra/a.png"), b"z0");
        touch(&r.join("ant/sub/c.webp"), b"a1");
        touch(&r.join("ant/notes.txt"), b"no");
        touch(&r.join("ant/.hidden.jpg"), b"no");
        touch(&r.join("empty_class/readme"), b"no");
        touch(&r.join("ant/0.jpeg"), b"a0");
        let src = open(r).unwrap();
        assert_eq!(src.classes(), ["ant", "empty_class", "zebra"]);
        assert_eq!(src.len(), 4);
        let mut buf = Vec::with_capacity(16);
        let got: Vec<(Vec<u8>, Option<u32>)> = (0..src.len())
            .map(|i| {
                src.read(i, &mut buf).unwrap();
                (buf.clone(), src.label(i))
            })
            .collect();
        let want: Vec<(Vec<u8>, Option<u32>)> = [("a0", 0), ("a1", 0), ("z0", 2), ("z1", 2)]
            .iter()
            .map(|(b, l)| (b.as_bytes().to_vec(), Some(*l)))
            .collect();
        assert_eq!(got, want);
        assert!(src.name(1).ends_with("ant/sub/c.webp"), "{}", src.name(1));
        assert!(
            src.describe().contains("4 images in 3 classes"),
            "{}",
            src.describe()
        );
    }

    #[test]
    fn flat_folder_is_unlabelled_and_zero_byte_file_fails() {
        let d = tempfile::tempdir().unwrap();
        touch(&d.path().join("b.gif"), b"");
        touch(&d.path().join("a.bmp"), b"x");
        let src = open(d.path()).unwrap();
        assert_eq!((src.len(), src.label(0), src.classes().len()), (2, None, 0));
        let mut buf = Vec::new();
        src.read(0, &mut buf).unwrap();
        let e = src.read(1, &mut buf).unwrap_err().to_string();
        assert!(e.contains("b.gif: empty file"), "{e}");
    }

    #[test]
    fn empty_folder_and_missing_path_name_themselves() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("empty")).unwrap();
        let e = open(&d.path().join("empty")).err().unwrap().to_string();
        assert!(e.contains("empty: no images"), "{e}");
        let e = open(&d.path().join("nope")).err().unwrap().to_string();
        assert!(e.contains("nope"), "{e}");
        touch(&d.path().join("one.jpg"), b"x");
        let e = open(&d.path().join("one.jpg")).err().unwrap().to_string();
        assert!(e.contains("one.jpg: a single image"), "{e}");
    }

    #[test]
    fn shard_folders_in_name_order() {
        use super::super::example::ImageExample;
        use super::super::tfrecord::Writer;
        let d = tempfile::tempdir().unwrap();
        for (name, label) in [("t-00001-of-00002", 1), ("t-00000-of-00002", 0)] {
            let mut w = Writer::new(Vec::new());
            let ex = ImageExample {
                encoded: name.as_bytes().to_vec(),
                label: Some(label),
                ..Default::default()
            };
            w.write(&ex.encode()).unwrap();
            touch(&d.path().join(name), &w.into_inner().unwrap());
        }
        touch(&d.path().join("README.txt"), b"not a shard");
        let src = open(d.path()).unwrap();
        assert_eq!((src.len(), src.classes().len()), (2, 2));
        let mut buf = Vec::new();
        src.read(0, &mut buf).unwrap();
        assert_eq!(buf, b"t-00000-of-00002");
        assert_eq!(src.label(1), Some(1));
    }

    #[test]
    fn shard_name_patterns() {
        for n in [
            "a.tfrecord",
            "a.TFRecord",
            "x.tfrecords",
            "x.tfrec",
            "train.tfrecord-00000-of-00004",
            "train-00000-of-01024",
            "t-00001-of-00004.tfrecord",
        ] {
            assert!(is_tfrecord_name(n), "{n}");
        }
        for n in ["a.jpg", "notes-of-x", "cost-of-3", "a.tfrecord.tmp"] {
            assert!(!is_tfrecord_name(n), "{n}");
        }
    }
}
