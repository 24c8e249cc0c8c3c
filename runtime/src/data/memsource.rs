//! An in-memory [`Source`] over byte vectors: for tests, benches and callers that already
//! hold their encoded images. Reading copies into the caller's reusable buffer, so it
//! allocates nothing once that buffer has grown to the largest item.

use crate::data::Source;
use crate::error::Result;

/// Items held in memory: `(name, encoded bytes, label)`.
#[derive(Debug, Clone, Default)]
pub struct MemSource {
    items: Vec<(String, Vec<u8>, Option<u32>)>,
    classes: Vec<String>,
}

impl MemSource {
    /// A source over `items` with class names `classes` (empty when unlabelled).
    pub fn new(items: Vec<(String, Vec<u8>, Option<u32>)>, classes: Vec<String>) -> Self {
        Self { items, classes }
    }
}

impl Source for MemSource {
    fn len(&self) -> usize {
        self.items.len()
    }
    fn read(&self, i: usize, buf: &mut Vec<u8>) -> Result<()> {
        buf.clear();
        if let Some((_, bytes, _)) = self.items.get(i) {
            buf.extend_from_slice(bytes);
        }
        Ok(())
    }
    fn label(&self, i: usize) -> Option<u32> {
        self.items.get(i).and_then(|it| it.2)
    }
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn name(&self, i: usize) -> String {
        self.items
            .get(i)
            .map(|it| it.0.clone())
            .unwrap_or_else(|| format!("item {i}"))
    }
    fn describe(&self) -> String {
        format!(
            "in-memory source: {} items, {} classes",
            self.items.len(),
            self.classes.len()
        )
    }
}
