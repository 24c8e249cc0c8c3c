//! Input data: sources of encoded images (image folders, TFRecord shards of
//! `tf.train.Example`, synthetic sets), decoding and preprocessing, the streaming loader
//! with its fixed pool of batch slots, the naive one-image-at-a-time baseline, and `.npy`
//! arrays ([`npy`]).
//!
//! Everything downstream of a source sees only the [`Source`] trait: a fixed list of
//! items, each with encoded bytes that can be read into a caller's reusable buffer and an
//! optional class label, and the items found unreadable while it was indexed.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// An item a source found unreadable while indexing it (e.g. a TFRecord record whose
/// data CRC fails): left out of the source's items, and reported instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The file holding it.
    pub path: PathBuf,
    /// Which item of the file, and what is wrong (`record 3: data CRC mismatch ...`).
    pub reason: String,
}

impl Unreadable {
    /// The error a reader that fails on bad items ends with.
    pub fn to_error(&self) -> Error {
        Error::Input {
            path: self.path.clone(),
            reason: self.reason.clone(),
        }
    }
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// A data set of encoded images (JPEG, PNG, ...) with optional class labels.
///
/// Implementations index their items when opened; [`Source::read`] must not allocate
/// once `buf` has grown to the largest item (the loader's zero-allocation guarantee
/// rests on it), and must be callable from several threads at once.
pub trait Source: Send + Sync {
    /// Number of items.
    fn len(&self) -> usize;
    /// Whether there are no items.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Read item `i`'s encoded bytes into `buf` (cleared first; its capacity is reused).
    fn read(&self, i: usize, buf: &mut Vec<u8>) -> Result<()>;
    /// Item `i`'s class index into [`Source::classes`], when labelled.
    fn label(&self, i: usize) -> Option<u32>;
    /// Class names, index = label (empty when unlabelled).
    fn classes(&self) -> &[String];
    /// Where item `i` comes from, for error messages (`dir/cat/001.jpg`,
    /// `train-00001.tfrecord record 17`). May allocate: only called on errors.
    fn name(&self, i: usize) -> String;
    /// One line describing the source (kind, path, items, classes).
    fn describe(&self) -> String;
    /// Items found unreadable when the source was opened, left out of [`Source::len`]:
    /// readers count them as bad items (or fail on them) without reading them again.
    fn unreadable(&self) -> &[Unreadable] {
        &[]
    }
}

pub mod decode;
pub mod example;
pub mod loader;
pub mod memsource;
pub mod naive;
mod normalize;
pub mod npy;
pub mod pack;
pub mod source;
pub mod subset;
pub mod synth;
pub mod tfrecord;
