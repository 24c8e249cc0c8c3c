//! A command's input and output paths, checked together before any work starts: every
//! output is resolved by the output-path policy ([`Destination::check`]: folder
//! exists and takes files, no directory, no read-only file without `--force`), no output
//! is one of the command's inputs by any path (symlink, hard link, `./a/../a`: compared
//! by device and inode), and no two outputs name the same file.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::output::{Destination, folder_of};
use crate::error::{Error, Result};

/// The paths one command reads and writes, each with the flag that named it.
#[derive(Debug, Default, Clone)]
pub struct IoPaths {
    inputs: Vec<(String, PathBuf)>,
    outputs: Vec<(String, PathBuf)>,
    /// (output flag, input flag) pairs that may name the same file: a file read and then
    /// rewritten by design (a checkpoint continued with `--resume`).
    updates: Vec<(String, String)>,
}

/// How an output is identified among the others and against the inputs.
#[derive(Debug, PartialEq, Eq)]
enum Key {
    /// An existing file: device and inode.
    Inode(u64, u64),
    /// A file still to be made: its folder, resolved, and its name.
    New(PathBuf),
    /// A stream (stdout, a device, a FIFO): never the same as a file.
    Stream,
}

impl IoPaths {
    pub fn new() -> IoPaths {
        IoPaths::default()
    }

    /// A file or folder the command reads.
    pub fn input(mut self, flag: &str, path: impl AsRef<Path>) -> IoPaths {
        self.inputs
            .push((flag.to_string(), path.as_ref().to_path_buf()));
        self
    }

    /// [`IoPaths::input`] when the flag was given.
    pub fn input_opt(self, flag: &str, path: Option<&Path>) -> IoPaths {
        match path {
            Some(p) => self.input(flag, p),
            None => self,
        }
    }

    /// A file the command writes.
    pub fn output(mut self, flag: &str, path: impl AsRef<Path>) -> IoPaths {
        self.outputs
            .push((flag.to_string(), path.as_ref().to_path_buf()));
        self
    }

    /// [`IoPaths::output`] when the flag was given.
    pub fn output_opt(self, flag: &str, path: Option<&Path>) -> IoPaths {
        match path {
            Some(p) => self.output(flag, p),
            None => self,
        }
    }

    /// The output of `output_flag` may be the input of `input_flag` (it is read first,
    /// then rewritten on purpose).
    pub fn updates(mut self, output_flag: &str, input_flag: &str) -> IoPaths {
        self.updates
            .push((output_flag.to_string(), input_flag.to_string()));
        self
    }

    /// Resolve every output and refuse, naming both flags, an output that is an input
    /// or another output. Returns the outputs' destinations in the order given.
    pub fn check(&self) -> Result<Vec<Destination>> {
        let mut inputs = Vec::new();
        let mut folders = Vec::new();
        for (flag, p) in &self.inputs {
            // A missing input is the reader's error to report; it cannot be overwritten.
            if let Ok(m) = fs::metadata(p) {
                inputs.push((flag, p, (m.dev(), m.ino())));
                if m.is_dir()
                    && let Ok(c) = fs::canonicalize(p)
                {
                    folders.push((flag, p, c));
                }
            }
        }
        let mut seen: Vec<(&String, &PathBuf, Key)> = Vec::new();
        let mut dests = Vec::new();
        for (flag, p) in &self.outputs {
            let dest = Destination::check(p).map_err(|e| with_flag(e, flag))?;
            if let Some(id) = dest.identity()
                && let Some((iflag, ipath, _)) = inputs.iter().find(|(iflag, _, i)| {
                    *i == id && !self.updates.iter().any(|(o, f)| o == flag && f == *iflag)
                })
            {
                return Err(Error::Output {
                    flag: Some(flag.clone()),
                    path: p.clone(),
                    reason: format!(
                        "the same file as {iflag} {}; an output never replaces an input",
                        ipath.display()
                    ),
                });
            }
            // A file written into a folder that is read as a whole (an image set, a
            // folder of shards) would replace or join the data.
            if let Destination::File { target, .. } = &dest
                && let Ok(folder) = fs::canonicalize(folder_of(target))
                && let Some((iflag, ipath, _)) =
                    folders.iter().find(|(_, _, c)| folder.starts_with(c))
            {
                return Err(Error::Output {
                    flag: Some(flag.clone()),
                    path: p.clone(),
                    reason: format!(
                        "inside the folder {} read as {iflag}; write outputs outside the input data",
                        ipath.display()
                    ),
                });
            }
            let key = key_of(&dest);
            if key != Key::Stream
                && let Some((oflag, opath, _)) = seen.iter().find(|(_, _, k)| *k == key)
            {
                return Err(Error::Output {
                    flag: Some(flag.clone()),
                    path: p.clone(),
                    reason: format!(
                        "the same file as {oflag} {}; give each output its own file",
                        opath.display()
                    ),
                });
            }
            seen.push((flag, p, key));
            dests.push(dest);
        }
        Ok(dests)
    }
}

fn key_of(d: &Destination) -> Key {
    match d {
        Destination::File {
            existing: Some(e), ..
        } => Key::Inode(e.dev, e.ino),
        Destination::File {
            target,
            existing: None,
        } => {
            let folder = folder_of(target);
            let folder = fs::canonicalize(&folder).unwrap_or(folder);
            Key::New(folder.join(target.file_name().unwrap_or_default()))
        }
        _ => Key::Stream,
    }
}

/// Name the flag in an output refusal.
fn with_flag(e: Error, flag: &str) -> Error {
    match e {
        Error::Output { path, reason, .. } => Error::Output {
            flag: Some(flag.to_string()),
            path,
            reason,
        },
        other => other,
    }
}
