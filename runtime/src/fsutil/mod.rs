//! Files the user owns: every output goes through one output-path policy
//! ([`Destination`]: streams written through, symlinks followed, regular files replaced
//! atomically with their permissions kept, read-only files refused without `--force`),
//! and a command's inputs and outputs are checked together before its work starts
//! ([`IoPaths`]: an output never replaces an input).

mod guard;
mod output;

use std::io::Write;
use std::path::Path;

pub use guard::IoPaths;
pub use output::{Destination, ExistingFile, allow_read_only_replacement};

use crate::error::Result;

/// Write `bytes` to `path` by the output-path policy: a regular file is replaced
/// atomically (a temporary file in the target's folder, synced, renamed over it; on
/// error the old file is untouched and nothing is left), a device or FIFO is written
/// through.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// Like [`write_atomic`], with the content produced by `fill` writing into the output.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    Destination::resolve(path)?.write(path, fill)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        std::fs::write(&p, b"old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        std::fs::write(&p, b"old").unwrap();
        let e = write_atomic_with(&p, |_| Err(std::io::Error::other("disk full"))).unwrap_err();
        assert!(e.to_string().contains("disk full"));
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_directory_is_named() {
        let e = write_atomic(Path::new("/nonexistent-dir/x.onnx"), b"x").unwrap_err();
        assert!(e.to_string().contains("/nonexistent-dir"), "{e}");
    }
}
