//! A run's temporary files and child processes, and cleaning both up when the run is
//! interrupted.
//!
//! Every temporary folder edgebench makes (a spec exported to ONNX, say) is named
//! `edgebench-<pid>-<random>` under `$TMPDIR`, so that a folder left by a process that
//! was killed outright (SIGKILL, a power cut) can be recognised and removed later. A
//! command that may run for long holds a [`Scratch`] guard for its whole run:
//!
//! - it first sweeps stale folders, those named as above whose process is gone;
//! - it makes one folder for the run, `$TMPDIR/edgebench-<pid>-XXXXXX`, in which
//!   [`tempdir`] puts every temporary folder of this process, and removes it when
//!   dropped;
//! - on SIGINT, SIGTERM or SIGHUP it kills the children registered with
//!   [`register_child`] (measuring workers, `tegrastats`), waits for them, removes the
//!   run's folder and exits with 128 + the signal's number. A second signal during that
//!   cleanup ends the process at once.
//!
//! Signals are received with `signal-hook`: its handler only writes to a pipe, and the
//! cleanup runs on an ordinary thread, where locking, killing and removing files are
//! allowed (they are not in a signal handler).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};

use crate::error::{Error, Result};

/// Start of the name of every temporary folder edgebench makes.
pub const PREFIX: &str = "edgebench-";

/// The run's folder while a [`Scratch`] guard holds it.
static RUN_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Children to end on an interruption: process id and the signal that ends it.
static CHILDREN: Mutex<Vec<(u32, i32)>> = Mutex::new(Vec::new());

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The run's temporary folder and cleanup on signals; see the module documentation.
#[derive(Debug)]
pub struct Scratch {
    dir: Option<tempfile::TempDir>,
}

impl Scratch {
    /// Sweep stale folders, make this run's folder and clean up on signals from now on.
    /// When the folder cannot be made (an unwritable `$TMPDIR`), temporary folders are
    /// made one by one as without a guard, and making them reports the error.
    pub fn begin() -> Scratch {
        let tmp = std::env::temp_dir();
        sweep_stale(&tmp);
        let dir = tempfile::Builder::new()
            .prefix(&own_prefix())
            .tempdir_in(&tmp)
            .ok();
        *lock(&RUN_DIR) = dir.as_ref().map(|d| d.path().to_path_buf());
        install_signal_handlers();
        Scratch { dir }
    }

    /// This run's folder, when it could be made.
    pub fn path(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.path())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        lock(&RUN_DIR).take();
        // The TempDir removes the folder and everything in it.
    }
}

/// `edgebench-<pid>-`.
fn own_prefix() -> String {
    format!("{PREFIX}{}-", std::process::id())
}

/// A new temporary folder, removed when the returned guard is dropped: inside the run's
/// folder while a [`Scratch`] is held, else `$TMPDIR/edgebench-<pid>-XXXXXX`.
pub fn tempdir() -> Result<tempfile::TempDir> {
    let run = lock(&RUN_DIR).clone();
    match run {
        Some(dir) => tempfile::Builder::new()
            .prefix("tmp-")
            .tempdir_in(&dir)
            .map_err(|e| Error::io(dir, e)),
        None => tempfile::Builder::new()
            .prefix(&own_prefix())
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e)),
    }
}

/// The process id in a folder name of ours, `edgebench-<pid>-<rest>`; `None` for any
/// other name.
pub fn pid_of(name: &str) -> Option<u32> {
    let (pid, rest) = name.strip_prefix(PREFIX)?.split_once('-')?;
    if rest.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok().filter(|&p| p > 0)
}

/// Whether process `pid` exists (a process of another user counts as existing).
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // Safety: signal 0 only checks that the process exists and may be signalled; it
    // sends nothing and touches no memory of ours.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Remove the folders in `tmp` named `edgebench-<pid>-…` that belong to this user and
/// whose process no longer exists; how many were removed. Anything else is left alone.
pub fn sweep_stale(tmp: &Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return 0;
    };
    // Safety: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(pid_of) else {
            continue;
        };
        // Not followed through a symbolic link: only real folders of this user.
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me || pid == std::process::id() || alive(pid) {
            continue;
        }
        if std::fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// A child process ended on an interruption while this guard lives (drop it before
/// waiting for the child, so that a signal never hits a process id already reused).
#[derive(Debug)]
pub struct ChildGuard {
    pid: u32,
}

/// End `pid` with `signal` (`libc::SIGKILL` for a worker, `libc::SIGTERM` for a
/// program that restores state on exit) should this run be interrupted.
pub fn register_child(pid: u32, signal: i32) -> ChildGuard {
    lock(&CHILDREN).push((pid, signal));
    ChildGuard { pid }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let mut children = lock(&CHILDREN);
        if let Some(i) = children.iter().position(|(p, _)| *p == self.pid) {
            children.swap_remove(i);
        }
    }
}

/// Set, by the signal handler itself, the moment an interrupting signal arrives.
static INTERRUPTED: std::sync::LazyLock<Arc<AtomicBool>> =
    std::sync::LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// Whether this run is being interrupted: its clean-up will end the process with
/// 128 + the signal's number, so an error the interruption itself caused (a worker
/// that vanished) is not this run's result and should not be reported.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Clean up on SIGINT, SIGTERM and SIGHUP from now on (once per process).
fn install_signal_handlers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let signals = [SIGINT, SIGTERM, SIGHUP];
        let cleaning = Arc::new(AtomicBool::new(false));
        for s in signals {
            // Registered first, so it runs before the iterator's handler: a second
            // signal while cleaning up ends the process at once.
            let _ =
                signal_hook::flag::register_conditional_shutdown(s, 128 + s, Arc::clone(&cleaning));
        }
        let Ok(mut incoming) = signal_hook::iterator::Signals::new(signals) else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("edgebench-signals".into())
            .spawn(move || {
                if let Some(sig) = incoming.forever().next() {
                    cleaning.store(true, Ordering::SeqCst);
                    clean_up();
                    eprintln!(
                        "edgebench: interrupted ({}); temporary files removed",
                        name(sig)
                    );
                    std::process::exit(128 + sig);
                }
            });
        // Only with a clean-up thread that will end the process.
        if spawned.is_ok() {
            for s in signals {
                let _ = signal_hook::flag::register(s, Arc::clone(&INTERRUPTED));
            }
        }
    });
}

fn name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

/// End and reap every registered child (SIGKILL for one that a gentler signal has not
/// ended within a second), then remove the run's folder. The children's lock is held
/// throughout, so no child is reaped elsewhere in between.
fn clean_up() {
    let children = lock(&CHILDREN);
    for &(pid, signal) in children.iter() {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            continue;
        };
        // Safety: `pid` is a child of ours that has not been waited for (its guard is
        // dropped before any wait, and we hold the registry's lock), so the id still
        // names it; kill and waitpid touch no memory but `status`.
        unsafe {
            libc::kill(pid, signal);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            let mut status = 0;
            // Safety: as above.
            let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } != 0;
            if done {
                break;
            }
            if std::time::Instant::now() >= deadline {
                // Safety: as above; the child is still there (waitpid said so).
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    if let Some(dir) = lock(&RUN_DIR).take() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_names_with_a_pid_are_ours() {
        assert_eq!(pid_of("edgebench-123-abcXYZ"), Some(123));
        assert_eq!(pid_of("edgebench-123-"), None);
        assert_eq!(pid_of("edgebench-abcXYZ"), None);
        assert_eq!(pid_of("edgebench--x"), None);
        assert_eq!(pid_of("edgebench-0-x"), None);
        assert_eq!(pid_of("edgebench-+12-x"), None);
        assert_eq!(pid_of("other-123-x"), None);
        assert_eq!(pid_of("edgebench-99999999999999999999-x"), None);
    }

    #[test]
    fn sweep_removes_dead_processes_folders_only() {
        let tmp = tempfile::tempdir().unwrap();
        let mk = |name: &str| {
            let d = tmp.path().join(name);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("model.onnx"), b"x").unwrap();
            d
        };
        // A process id above any kernel's pid_max: never alive.
        let dead = mk("edgebench-99999999-abc");
        let ours = mk(&format!("edgebench-{}-abc", std::process::id()));
        let foreign = mk("edgebench-abcdef");
        let file = tmp.path().join("edgebench-99999998-file");
        std::fs::write(&file, b"not a folder").unwrap();
        assert_eq!(sweep_stale(tmp.path()), 1);
        assert!(!dead.exists());
        assert!(ours.exists() && foreign.exists() && file.exists());
    }

    #[test]
    fn a_child_guard_unregisters_on_drop() {
        let g = register_child(4_000_001, libc::SIGKILL);
        assert!(lock(&CHILDREN).iter().any(|(p, _)| *p == 4_000_001));
        drop(g);
        assert!(!lock(&CHILDREN).iter().any(|(p, _)| *p == 4_000_001));
    }
}
