//! An interrupted `compare` or `bench` (SIGINT from Ctrl-C, SIGTERM from a job
//! scheduler) leaves nothing behind: no temporary folder of exported models under
//! `$TMPDIR`, no worker or `tegrastats` process. Folders left by a process that died
//! outright are swept by the next run. Each run here gets a `$TMPDIR` of its own to
//! watch.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;

/// Entries of `tmp` named `edgebench-<pid>-…` for process `pid`.
fn run_folders(tmp: &Path, pid: u32) -> Vec<PathBuf> {
    let prefix = format!("edgebench-{pid}-");
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// Processes whose command line mentions `text` (a worker's configuration names the
/// exported model's path).
fn processes_mentioning(text: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // A zombie has exited; its parent just has not reaped it yet.
            let zombie = state
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            !zombie && String::from_utf8_lossy(&cmd).contains(text)
        })
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(args: &[&str], tmp: &Path, tegrastats: Option<&Path>) -> Child {
    let env: Vec<(&str, &Path)> = tegrastats
        .map(|t| ("EDGEBENCH_TEGRASTATS", t))
        .into_iter()
        .collect();
    common::eb_command(args, &env)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the edgebench binary runs")
}

#[test]
fn an_interrupted_run_removes_its_temporary_folder_and_ends_its_workers() {
    // `bench` also runs a (fake) tegrastats, which must end too.
    let cases: [(&[&str], i32, &str, bool); 2] = [
        (&["compare", "heavy", "lean"], libc::SIGINT, "SIGINT", false),
        (&["bench", "lean"], libc::SIGTERM, "SIGTERM", true),
    ];
    for (cmd, signal, name, with_tegrastats) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let tmp_s = tmp.path().to_str().unwrap().to_string();
        let line = common::orin_nano_line();
        let tegrastats = with_tegrastats.then(|| {
            common::tegrastats_script(
                tmp.path(),
                &format!("while true; do echo '{line}'; sleep 0.05; done\n"),
            )
        });
        // Left by a process that is gone (a pid above any pid_max), and a folder that
        // is not named as ours: the first is swept, the second kept.
        let stale = tmp.path().join("edgebench-99999999-stale");
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join("lean-32x32x3.onnx"), b"old export").unwrap();
        let foreign = tmp.path().join("edgebench-notes");
        std::fs::create_dir(&foreign).unwrap();

        let mut args = cmd.to_vec();
        // Long enough to be interrupted in the middle of the timed runs.
        args.extend([
            "--size",
            "32x32x3",
            "--min-duration",
            "600",
            "--warmup",
            "1",
            "--warmup-time",
            "0",
            "--quiet",
        ]);
        let mut child = start(&args, tmp.path(), tegrastats.as_deref());
        let pid = child.id();
        // Workers (their configuration names the export under $TMPDIR), and tegrastats.
        let workers = cmd.len() - 1 + usize::from(with_tegrastats);
        wait_for("the workers", Duration::from_secs(300), || {
            let running = processes_mentioning(&tmp_s)
                .into_iter()
                .filter(|p| *p != pid)
                .count();
            running >= workers || !matches!(child.try_wait(), Ok(None))
        });
        assert!(matches!(child.try_wait(), Ok(None)), "{cmd:?} ended early");
        assert_eq!(
            run_folders(tmp.path(), pid).len(),
            1,
            "{cmd:?}: one run folder"
        );
        assert!(!stale.exists(), "the stale folder is swept at start");

        // Only the parent is signalled (not its process group): it must end the workers.
        // Safety: kill() on our own child's id, which has not been waited for.
        unsafe {
            libc::kill(pid as libc::pid_t, signal);
        }
        let mut status = None;
        wait_for(
            "the interrupted run to end",
            Duration::from_secs(60),
            || {
                status = child.try_wait().unwrap();
                status.is_some()
            },
        );
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        let status = status.unwrap();
        assert_eq!(
            status.code(),
            Some(128 + signal),
            "{cmd:?} ({status}, killed by signal {:?}): {err}",
            std::os::unix::process::ExitStatusExt::signal(&status)
        );
        assert!(err.contains(&format!("interrupted ({name})")), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            run_folders(tmp.path(), pid).is_empty(),
            "{cmd:?} left its temporary folder"
        );
        assert!(foreign.exists(), "a folder not named as ours is kept");
        assert_eq!(
            processes_mentioning(&tmp_s),
            Vec::<u32>::new(),
            "{cmd:?} left workers or tegrastats running"
        );
    }
}
