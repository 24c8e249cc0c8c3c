//! Measuring processes: each model runs in a child `edgebench` process of its own, so
//! one model's memory cannot leak into another's figure, and a parent drives the
//! children in interleaved rounds.
//!
//! Protocol: the parent starts `edgebench __worker CONFIG_JSON`; the child opens a
//! [`Runner`] and answers one [`Response`] line per [`Request`] line. Response lines
//! carry the prefix [`TAG`], so anything else an engine prints on stdout is ignored.
//! The child exits when stdin closes or on [`Request::Quit`].

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde::{Deserialize, Serialize};

use super::runner::{Ready, Runner, RunnerConfig, Scenario, WireError, error_to_wire};
use crate::error::{Error, Result};
use crate::report::schema::Memory;

/// Prefix of every protocol line a worker writes.
pub const TAG: &str = "@edgebench-worker ";
/// The hidden subcommand that runs a worker.
pub const SUBCOMMAND: &str = "__worker";

/// What the parent asks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Run `scenario` until both minimums are met; `max_seconds` > 0 bounds it.
    Run {
        scenario: Scenario,
        queries: u64,
        seconds: f64,
        max_seconds: f64,
    },
    /// `--data`: loader alone, engine alone, loader → engine.
    Pipeline { batches: u64, seconds: f64 },
    /// Report memory.
    Memory,
    /// Exit.
    Quit,
}

/// What the worker answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Response {
    Ready(Ready),
    Samples { ms: Vec<f64> },
    Memory(Memory),
    Pipeline(crate::report::schema::Pipeline),
    Error(WireError),
    Bye,
}

/// The child side: open the runner from `config_json`, then answer requests until stdin
/// closes. Returns an error only when stdout is gone.
pub fn serve(config_json: &str) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut send = |r: &Response| -> Result<()> {
        let line = serde_json::to_string(r).map_err(|e| Error::json("the worker reply", e))?;
        writeln!(out, "{TAG}{line}")
            .and_then(|()| out.flush())
            .map_err(|e| Error::io("<stdout>", e))
    };
    let cfg: RunnerConfig = match serde_json::from_str(config_json) {
        Ok(c) => c,
        Err(e) => {
            let err = Error::Invalid(format!("worker configuration: {e}"));
            return send(&Response::Error(error_to_wire(&err)));
        }
    };
    let mut runner = match Runner::open(&cfg) {
        Ok(r) => r,
        Err(e) => return send(&Response::Error(error_to_wire(&e))),
    };
    send(&Response::Ready(runner.ready().clone()))?;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let reply = match serde_json::from_str::<Request>(&line) {
            Err(e) => Response::Error(error_to_wire(&Error::Invalid(format!(
                "worker request {line:?}: {e}"
            )))),
            Ok(Request::Quit) => {
                send(&Response::Bye)?;
                break;
            }
            Ok(Request::Memory) => Response::Memory(runner.memory()),
            Ok(Request::Pipeline { batches, seconds }) => match runner.pipeline(batches, seconds) {
                Ok(p) => Response::Pipeline(p),
                Err(e) => Response::Error(error_to_wire(&e)),
            },
            Ok(Request::Run {
                scenario,
                queries,
                seconds,
                max_seconds,
            }) => match runner.run(scenario, queries, seconds, max_seconds) {
                Ok(ms) => Response::Samples { ms },
                Err(e) => Response::Error(error_to_wire(&e)),
            },
        };
        send(&reply)?;
    }
    Ok(())
}

/// The parent's handle on one worker process.
pub struct Worker {
    name: String,
    child: Child,
    /// Ends the child should this run be interrupted; dropped before the child is reaped.
    interrupt: Option<crate::scratch::ChildGuard>,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: Option<std::thread::JoinHandle<String>>,
    ready: Ready,
}

impl Worker {
    /// Start `exe __worker` for `cfg` and wait until its sessions are open.
    pub fn spawn(exe: &Path, cfg: &RunnerConfig) -> Result<Self> {
        let json =
            serde_json::to_string(cfg).map_err(|e| Error::json("the worker configuration", e))?;
        let mut child = Command::new(exe)
            .arg(SUBCOMMAND)
            .arg(json)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(exe, e))?;
        let (Some(stdin), Some(stdout), Some(mut err_pipe)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(Error::Invalid("worker pipes were not created".into()));
        };
        let interrupt = Some(crate::scratch::register_child(child.id(), libc::SIGKILL));
        // Drain stderr on a thread so a chatty engine can never block the child; keep
        // its tail, which holds the last words of a worker that dies.
        let stderr = Some(std::thread::spawn(move || {
            let mut tail = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                match std::io::Read::read(&mut err_pipe, &mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        tail.extend_from_slice(&chunk[..n]);
                        if tail.len() > STDERR_TAIL {
                            tail.drain(..tail.len() - STDERR_TAIL);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            String::from_utf8_lossy(&tail).into_owned()
        }));
        let mut w = Self {
            name: cfg.name.clone(),
            child,
            interrupt,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            stderr,
            ready: Ready::default(),
        };
        match w.receive()? {
            Response::Ready(r) => w.ready = r,
            other => return Err(w.unexpected(&other)),
        }
        Ok(w)
    }

    /// The worker's report on its sessions.
    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    /// Run a scenario in the worker; latencies in ms.
    pub fn run(
        &mut self,
        scenario: Scenario,
        queries: u64,
        seconds: f64,
        max_seconds: f64,
    ) -> Result<Vec<f64>> {
        match self.request(&Request::Run {
            scenario,
            queries,
            seconds,
            max_seconds,
        })? {
            Response::Samples { ms } => Ok(ms),
            other => Err(self.unexpected(&other)),
        }
    }

    /// The end-to-end scenario in the worker.
    pub fn pipeline(
        &mut self,
        batches: u64,
        seconds: f64,
    ) -> Result<crate::report::schema::Pipeline> {
        match self.request(&Request::Pipeline { batches, seconds })? {
            Response::Pipeline(p) => Ok(p),
            other => Err(self.unexpected(&other)),
        }
    }

    /// The worker's memory figures.
    pub fn memory(&mut self) -> Result<Memory> {
        match self.request(&Request::Memory)? {
            Response::Memory(m) => Ok(m),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Ask the worker to exit and wait for it.
    pub fn finish(mut self) -> Result<()> {
        let _ = self.request(&Request::Quit);
        self.stdin.take();
        self.reap().map_err(|e| Error::Worker {
            model: self.name.clone(),
            reason: format!("waiting for the worker: {e}"),
        })?;
        Ok(())
    }

    fn request(&mut self, r: &Request) -> Result<Response> {
        let line = serde_json::to_string(r).map_err(|e| Error::json("the worker request", e))?;
        let sent = match self.stdin.as_mut() {
            Some(stdin) => send_line(stdin, &line),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        if sent.is_err() {
            return Err(self.died());
        }
        self.receive()
    }

    fn receive(&mut self) -> Result<Response> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .stdout
                .read_line(&mut line)
                .map_err(|e| Error::Worker {
                    model: self.name.clone(),
                    reason: format!("reading from the worker: {e}"),
                })?;
            if n == 0 {
                return Err(self.died());
            }
            let Some(json) = line.trim_end().strip_prefix(TAG) else {
                continue; // an engine's own output
            };
            let r: Response = serde_json::from_str(json).map_err(|e| Error::Worker {
                model: self.name.clone(),
                reason: format!("unreadable worker reply: {e}"),
            })?;
            if let Response::Error(e) = r {
                return Err(e.into_error(&self.name));
            }
            return Ok(r);
        }
    }

    /// Wait for the child, once it is no longer to be ended on an interruption.
    fn reap(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.interrupt.take();
        self.child.wait()
    }

    /// The worker ended without answering: say how, with its last words on stderr.
    fn died(&mut self) -> Error {
        let status = self.reap().ok();
        // The child is gone, so its stderr reaches end-of-file: collect its tail.
        let last = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .map(|s| last_words(&s))
            .unwrap_or_default();
        let how = status.map_or_else(|| "worker vanished".to_string(), ended);
        Error::Worker {
            model: self.name.clone(),
            reason: if last.is_empty() {
                how
            } else {
                format!("{how}: {last}")
            },
        }
    }

    fn unexpected(&self, r: &Response) -> Error {
        Error::Worker {
            model: self.name.clone(),
            reason: format!("unexpected worker reply {r:?}"),
        }
    }
}

/// Bytes of a worker's stderr kept for its last words.
const STDERR_TAIL: usize = 64 * 1024;

/// How a worker process ended, in words: `worker exited with code 3`, `worker killed by
/// signal 6 (SIGABRT)`, `worker killed by signal 9 (SIGKILL; out of memory?)`.
fn ended(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("worker exited with code {code}");
    }
    match status.signal() {
        Some(sig) => {
            let name = signal_name(sig);
            let oom = if sig == libc::SIGKILL {
                "; out of memory?"
            } else {
                ""
            };
            format!("worker killed by signal {sig} ({name}{oom})")
        }
        None => format!("worker ended ({status})"),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTRAP => "SIGTRAP",
        _ => "signal",
    }
}

/// What a dead worker said last, as one line: its panic message when it panicked,
/// else its last stderr line that is not part of a backtrace or a `note:` about one.
fn last_words(stderr: &str) -> String {
    let mut in_backtrace = false;
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| {
            if l.starts_with("stack backtrace:") {
                in_backtrace = true;
                return false;
            }
            let frame = l.starts_with(' ') || l.starts_with('\t');
            if in_backtrace && frame {
                return false;
            }
            in_backtrace = false;
            !l.trim().is_empty() && !l.starts_with("note: ")
        })
        .collect();
    if let Some(i) = lines.iter().rposition(|l| l.contains("panicked at")) {
        // `thread 'main' (12) panicked at src/x.rs:1:2:` then the message.
        let place = lines[i]
            .find("panicked at")
            .map_or(lines[i], |at| &lines[i][at..]);
        let msg: Vec<&str> = std::iter::once(place.trim_end_matches(':'))
            .chain(lines[i + 1..].iter().map(|l| l.trim()))
            .collect();
        return msg.join(": ");
    }
    lines.last().map_or(String::new(), |l| l.trim().to_string())
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stdin.take();
        // Before anything may reap the child (try_wait does).
        self.interrupt.take();
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.reap();
    }
}

/// Write `line` and a line feed to a worker's stdin with SIGPIPE blocked on this
/// thread. The process keeps SIGPIPE's default (so `edgebench … | head` ends quietly),
/// which would end it, silently, on a write to a worker that has died (killed by its
/// memory budget, or by the clean-up of an interrupted run); blocked, the write fails
/// with EPIPE instead and the worker's death is reported. The SIGPIPE the write raised
/// (directed at this thread) is taken before the old mask comes back.
fn send_line(stdin: &mut ChildStdin, line: &str) -> std::io::Result<()> {
    // Safety: the sigset_t values are initialised by sigemptyset/sigprocmask-family
    // calls before use; pthread_sigmask only changes this thread's mask, which is
    // restored before returning; sigtimedwait with a zero timeout never blocks.
    unsafe {
        let mut pipe: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old);
        let sent = writeln!(stdin, "{line}").and_then(|()| stdin.flush());
        if sent
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        {
            let mut pending: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut pending);
            if libc::sigpending(&mut pending) == 0
                && libc::sigismember(&pending, libc::SIGPIPE) == 1
            {
                let now = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                libc::sigtimedwait(&pipe, std::ptr::null_mut(), &now);
            }
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        sent
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// With SIGPIPE at its default, as `edgebench` has it (the test harness ignores it,
    /// so the check runs in a copy of this test binary that restores the default): a
    /// request to a worker that has exited is an EPIPE error, not the end of the process.
    #[test]
    fn a_request_to_a_dead_worker_is_an_error_not_a_sigpipe() {
        const CHILD: &str = "EDGEBENCH_TEST_SIGPIPE_DEFAULT";
        if std::env::var_os(CHILD).is_some() {
            // Safety: SIG_DFL is a valid disposition; this process runs only this test.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            }
            let mut child = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            child.wait().unwrap();
            let e = send_line(&mut stdin, "{}").expect_err("nobody reads the pipe");
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
            println!("still running after EPIPE");
            return;
        }
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "bench::worker::tests::a_request_to_a_dead_worker_is_an_error_not_a_sigpipe",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("still running after EPIPE"),
            "{:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A stand-in for the edgebench executable: a shell script run as the worker.
    fn script(dir: &Path, body: &str) -> std::path::PathBuf {
        let path = dir.join("fake-edgebench");
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn cfg() -> RunnerConfig {
        RunnerConfig {
            name: "m.onnx".into(),
            onnx: "m.onnx".into(),
            single_shape: vec![1, 3, 8, 8],
            offline_shape: None,
            seed: 0,
            engine: Default::default(),
            data: None,
        }
    }

    fn spawn_err(body: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let exe = script(dir.path(), body);
        // Another test's fork may briefly hold the script open for writing (ETXTBSY).
        for _ in 0..100 {
            match Worker::spawn(&exe, &cfg()) {
                Ok(_) => panic!("a worker that fails was taken as ready"),
                Err(e) if e.to_string().contains("Text file busy") => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return e.to_string(),
            }
        }
        panic!("{} stayed busy", exe.display())
    }

    #[test]
    fn a_worker_killed_by_a_signal_is_named_with_its_last_line() {
        let e = spawn_err(
            "echo 'memory allocation of 120000000000 bytes failed' >&2\n\
             echo 'stack backtrace:' >&2\necho '   0: std::alloc' >&2\n\
             echo '             at /rustc/library/std/src/alloc.rs:1' >&2\n\
             echo 'note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.' >&2\n\
             kill -ABRT $$\n",
        );
        assert_eq!(
            e,
            "m.onnx: worker killed by signal 6 (SIGABRT): memory allocation of 120000000000 bytes failed"
        );
    }

    #[test]
    fn a_worker_that_exits_or_panics_says_so_in_one_line() {
        let e = spawn_err("echo 'engine: cannot open' >&2\nexit 3\n");
        assert_eq!(e, "m.onnx: worker exited with code 3: engine: cannot open");
        let e = spawn_err(
            "echo \"thread 'main' (7) panicked at src/x.rs:1:2:\" >&2\n\
             echo 'index out of bounds' >&2\n\
             echo 'note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace' >&2\n\
             exit 101\n",
        );
        assert_eq!(
            e,
            "m.onnx: worker exited with code 101: panicked at src/x.rs:1:2: index out of bounds"
        );
        assert!(!e.contains('\n'));
    }

    #[test]
    fn the_workers_own_error_reaches_the_parent_in_one_line() {
        let reply = serde_json::to_string(&Response::Error(WireError {
            kind: "other".into(),
            a: "tract engine: m.onnx: cannot allocate\n  the input of 120 GB".into(),
            b: String::new(),
        }))
        .unwrap();
        let e = spawn_err(&format!("printf '%s\\n' '{TAG}{reply}'\n"));
        assert_eq!(
            e,
            "m.onnx: tract engine: m.onnx: cannot allocate the input of 120 GB"
        );
    }
}
