//! A subset of another [`Source`]'s items (a training / validation split), and the
//! seeded split itself.

use std::sync::Arc;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{Source, Unreadable};
use crate::error::Result;

/// The items `indices` of `inner`, in that order.
pub struct Subset {
    inner: Arc<dyn Source>,
    indices: Vec<usize>,
    what: &'static str,
}

impl Subset {
    /// Items `indices` of `inner`; `what` names the part in [`Source::describe`]
    /// (`training`, `validation`).
    pub fn new(inner: Arc<dyn Source>, indices: Vec<usize>, what: &'static str) -> Self {
        Self {
            inner,
            indices,
            what,
        }
    }
}

impl Source for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn read(&self, i: usize, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.read(self.indices[i], buf)
    }
    fn label(&self, i: usize) -> Option<u32> {
        self.inner.label(self.indices[i])
    }
    fn classes(&self) -> &[String] {
        self.inner.classes()
    }
    fn name(&self, i: usize) -> String {
        self.inner.name(self.indices[i])
    }
    fn describe(&self) -> String {
        format!(
            "{} split ({} items) of {}",
            self.what,
            self.indices.len(),
            self.inner.describe()
        )
    }
    /// All of the inner source's: an unreadable item belongs to no split.
    fn unreadable(&self) -> &[Unreadable] {
        self.inner.unreadable()
    }
}

/// `indices` in a seeded random order (ChaCha8; the same on every platform).
pub fn shuffled(indices: &[usize], seed: u64) -> Vec<usize> {
    let mut v = indices.to_vec();
    v.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    v
}

/// Splits `0..len` into (training, held-out) index lists: a seeded shuffle, then the
/// last `round(len × fraction)` items (at least one when `fraction > 0` and `len > 1`)
/// are held out. Both lists come back sorted, so each part keeps the source order.
pub fn split(len: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..len).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut held = ((len as f64) * fraction.clamp(0.0, 1.0)).round() as usize;
    if fraction > 0.0 && len > 1 {
        held = held.clamp(1, len - 1);
    }
    let mut val = idx.split_off(len - held.min(len));
    idx.sort_unstable();
    val.sort_unstable();
    (idx, val)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::memsource::MemSource;

    #[test]
    fn split_is_seeded_disjoint_and_complete() {
        let (a, b) = split(100, 0.2, 5);
        assert_eq!((a.len(), b.len()), (80, 20));
        let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(split(100, 0.2, 5), (a, b.clone()));
        assert_ne!(split(100, 0.2, 6).1, b);
        assert_eq!(split(3, 0.01, 0).1.len(), 1);
    }

    #[test]
    fn subset_maps_items() {
        let items = (0..4)
            .map(|i| (format!("item{i}"), vec![i as u8], Some(i as u32 % 2)))
            .collect();
        let src: Arc<dyn Source> = Arc::new(MemSource::new(items, vec!["a".into(), "b".into()]));
        let s = Subset::new(src, vec![3, 0], "validation");
        let mut buf = Vec::new();
        s.read(0, &mut buf).unwrap();
        assert_eq!(
            (s.len(), buf, s.label(0), s.name(1)),
            (2, vec![3], Some(1), "item0".into())
        );
        assert!(s.describe().starts_with("validation split (2 items) of"));
    }
}
