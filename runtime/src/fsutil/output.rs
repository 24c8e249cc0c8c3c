//! Where an output goes, decided before anything is written: the one output-path policy.
//!
//! - `-`, `/dev/stdout` (and `/dev/fd/1`, `/proc/self/fd/1`) write to this process's
//!   standard output; `/dev/stderr` likewise to its standard error.
//! - A character device or a FIFO (`/dev/null`, `/dev/full`, a named pipe) is written
//!   through: opened for writing and streamed, never renamed over.
//! - A symlink is followed; its final target is replaced atomically (a temporary file in
//!   the target's own folder, then a rename), so the link stays a link.
//! - A regular file is replaced atomically, keeping its permissions (and, where allowed,
//!   its owner). A read-only file is refused unless [`allow_read_only_replacement`] was
//!   set (the CLI's `--force`).
//! - A directory, a block device or a missing folder is refused, naming the path.

use std::fs::{self, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::{Error, Result};

static REPLACE_READ_ONLY: AtomicBool = AtomicBool::new(false);

/// Whether read-only files may be replaced by outputs (the CLI's `--force`), for the
/// whole process.
pub fn allow_read_only_replacement(yes: bool) {
    REPLACE_READ_ONLY.store(yes, Ordering::Relaxed);
}

/// Symlinks followed before giving up (as the kernel's own limit).
const MAX_LINKS: usize = 40;

/// A resolved output location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// This process's standard output.
    Stdout,
    /// This process's standard error.
    Stderr,
    /// A character device or FIFO, written through (no temporary file, no rename).
    Stream(PathBuf),
    /// A regular file (new or replaced) at `target`, the path given with every symlink
    /// followed; `existing` holds the replaced file's metadata.
    File {
        target: PathBuf,
        existing: Option<ExistingFile>,
    },
}

/// What is kept of a regular file that an output replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExistingFile {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub dev: u64,
    pub ino: u64,
}

impl Destination {
    /// Decide where an output at `path` goes, refusing what must not be written to (the
    /// target's folder must exist). Writers call this; [`Destination::check`] also
    /// proves the folder takes a new file, once, before the work starts.
    pub fn resolve(path: &Path) -> Result<Destination> {
        if let Some(d) = std_stream(path) {
            return Ok(d);
        }
        let target = match follow_links(path)? {
            Followed::Target(t) => t,
            // A link into /proc or /dev/fd names an open file of some process: the kernel
            // resolves it; write through it as given.
            Followed::Magic => return stream_or_refuse(path, path),
        };
        match fs::metadata(&target) {
            Ok(m) => {
                let ft = m.file_type();
                if ft.is_dir() {
                    return Err(refuse(path, "is a directory, not a file"));
                }
                if ft.is_block_device() {
                    return Err(refuse(
                        path,
                        "is a block device; refusing to write a file onto it",
                    ));
                }
                if !ft.is_file() {
                    return stream_or_refuse(path, &target);
                }
                let existing = ExistingFile::of(&m);
                if read_only(&target, &m) && !REPLACE_READ_ONLY.load(Ordering::Relaxed) {
                    return Err(refuse(
                        path,
                        "is read-only; refusing to replace it (pass --force to replace it, keeping its permissions)",
                    ));
                }
                check_folder(path, &target)?;
                Ok(Destination::File {
                    target,
                    existing: Some(existing),
                })
            }
            // Missing, or a path through a file ("f/x.json"): the folder check says which.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                check_folder(path, &target)?;
                Ok(Destination::File {
                    target,
                    existing: None,
                })
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// [`Destination::resolve`], and for a file, a file is created in its folder and
    /// removed again: an unwritable location is found before the work starts.
    pub fn check(path: &Path) -> Result<Destination> {
        let d = Destination::resolve(path)?;
        if let Destination::File { target, .. } = &d {
            probe_folder(path, target)?;
        }
        Ok(d)
    }

    /// Write the output: `fill` produces the bytes. Files are replaced atomically (on any
    /// error nothing is left and the old file is untouched); streams are written through.
    /// `path` is the path as the user gave it, for error messages.
    pub fn write(
        &self,
        path: &Path,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<()> {
        let written = match self {
            Destination::Stdout => {
                let mut out = io::stdout().lock();
                fill(&mut out).and_then(|()| out.flush())
            }
            Destination::Stderr => {
                let mut out = io::stderr().lock();
                fill(&mut out).and_then(|()| out.flush())
            }
            Destination::Stream(p) => OpenOptions::new()
                .write(true)
                .open(p)
                .and_then(|mut f| fill(&mut f).and_then(|()| f.flush())),
            Destination::File { target, existing } => replace_file(target, *existing, fill),
        };
        written.map_err(|e| Error::io(path, e))
    }

    /// The file's identity when it already exists (device and inode).
    pub fn identity(&self) -> Option<(u64, u64)> {
        match self {
            Destination::File {
                existing: Some(e), ..
            } => Some((e.dev, e.ino)),
            _ => None,
        }
    }
}

impl ExistingFile {
    fn of(m: &Metadata) -> ExistingFile {
        ExistingFile {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

fn refuse(path: &Path, reason: &str) -> Error {
    Error::Output {
        flag: None,
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The names of this process's standard output and error.
fn std_stream(path: &Path) -> Option<Destination> {
    let s = path.as_os_str().to_str()?;
    match s {
        "-" | "/dev/stdout" | "/dev/fd/1" | "/proc/self/fd/1" => Some(Destination::Stdout),
        "/dev/stderr" | "/dev/fd/2" | "/proc/self/fd/2" => Some(Destination::Stderr),
        _ => None,
    }
}

enum Followed {
    Target(PathBuf),
    Magic,
}

/// Follow `path` through every symlink to the path of the file it names (which need not
/// exist yet). Relative link targets are taken from the link's own folder.
fn follow_links(path: &Path) -> Result<Followed> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        if is_magic(&p) {
            return Ok(Followed::Magic);
        }
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&p).map_err(|e| Error::io(path, e))?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(Followed::Target(p)),
        }
    }
    Err(refuse(path, "too many levels of symbolic links"))
}

/// Paths under `/proc` or `/dev/fd`: "links" that name another process's open files.
fn is_magic(p: &Path) -> bool {
    let mut c = p.components();
    matches!(c.next(), Some(Component::RootDir))
        && match c.next() {
            Some(Component::Normal(n)) if n == "proc" => true,
            Some(Component::Normal(n)) if n == "dev" => {
                matches!(c.next(), Some(Component::Normal(n)) if n == "fd")
            }
            _ => false,
        }
}

/// A character device, FIFO or socket is written through when we may write to it.
fn stream_or_refuse(path: &Path, target: &Path) -> Result<Destination> {
    if let Ok(m) = fs::metadata(target)
        && m.file_type().is_block_device()
    {
        return Err(refuse(
            path,
            "is a block device; refusing to write a file onto it",
        ));
    }
    if !writable(target) {
        return Err(Error::io(
            path,
            io::Error::from(io::ErrorKind::PermissionDenied),
        ));
    }
    Ok(Destination::Stream(target.to_path_buf()))
}

fn writable(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // Safety: `c` is a valid NUL-terminated path that outlives the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// Read-only for its owner (whoever runs us: root too), or not writable by us.
fn read_only(p: &Path, m: &Metadata) -> bool {
    m.mode() & 0o222 == 0 || !writable(p)
}

/// The folder an output file is written in: the target's parent ("." for a bare name).
pub(super) fn folder_of(target: &Path) -> PathBuf {
    match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The target's folder must exist (the temporary file goes there).
fn check_folder(path: &Path, target: &Path) -> Result<()> {
    let dir = folder_of(target);
    match fs::metadata(&dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(refuse(path, &format!("{} is not a folder", dir.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(refuse(
            path,
            &format!("folder {} does not exist", dir.display()),
        )),
        Err(e) => Err(Error::io(&dir, e)),
    }
}

/// The target's folder takes a new file: one is created and removed again.
fn probe_folder(path: &Path, target: &Path) -> Result<()> {
    let dir = folder_of(target);
    let (tmp, f) = create_temp(target).map_err(|e| {
        refuse(
            path,
            &format!("cannot create a file in folder {}: {e}", dir.display()),
        )
    })?;
    drop(f);
    let _ = fs::remove_file(tmp);
    Ok(())
}

/// A new, exclusively created temporary file beside `target`.
fn create_temp(target: &Path) -> io::Result<(PathBuf, fs::File)> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = folder_of(target);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    loop {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.edgebench-{}-{n}.tmp", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Temporary file, filled, synced, given the old file's owner and mode, renamed over
/// `target`. On error the temporary file is removed.
fn replace_file(
    target: &Path,
    existing: Option<ExistingFile>,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let (tmp, mut f) = create_temp(target)?;
    let result = (|| {
        fill(&mut f)?;
        f.flush()?;
        if let Some(e) = existing {
            // Best effort: only root may give a file away.
            let _ = std::os::unix::fs::fchown(&f, Some(e.uid), Some(e.gid));
            f.set_permissions(fs::Permissions::from_mode(e.mode & 0o7777))?;
        }
        f.sync_all()?;
        fs::rename(&tmp, target)?;
        // Best effort: make the rename itself durable.
        if let Ok(d) = fs::File::open(folder_of(target)) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
