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

use super::result::Memory;
use super::runner::{Ready, Runner, RunnerConfig, Scenario, WireError, error_to_wire};
use crate::error::{Error, Result};

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
    Pipeline(super::result::Pipeline),
    Error(WireError),
    Bye,
}

/// The child side: open the runner from `config_json`, then answer requests until stdin
/// closes. Returns an error only when stdout is gone.
pub fn serve(config_json: &str) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut send = |r: &Response| -> Result<()> {
        let line =
            serde_json::to_string(r).map_err(|e| Error::Invalid(format!("worker reply: {e}")))?;
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
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: Option<std::thread::JoinHandle<String>>,
    ready: Ready,
}

impl Worker {
    /// Start `exe __worker` for `cfg` and wait until its sessions are open.
    pub fn spawn(exe: &Path, cfg: &RunnerConfig) -> Result<Self> {
        let json = serde_json::to_string(cfg)
            .map_err(|e| Error::Invalid(format!("worker configuration: {e}")))?;
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
        // Drain stderr on a thread so a chatty engine can never block the child.
        let stderr = Some(std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut err_pipe, &mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        }));
        let mut w = Self {
            name: cfg.name.clone(),
            child,
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
    pub fn pipeline(&mut self, batches: u64, seconds: f64) -> Result<super::result::Pipeline> {
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
        self.child.wait().map_err(|e| Error::Worker {
            model: self.name.clone(),
            reason: format!("waiting for the worker: {e}"),
        })?;
        Ok(())
    }

    fn request(&mut self, r: &Request) -> Result<Response> {
        let line =
            serde_json::to_string(r).map_err(|e| Error::Invalid(format!("worker request: {e}")))?;
        let sent = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{line}").and_then(|()| stdin.flush()),
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

    /// The worker ended without answering: say how, with its last stderr line.
    fn died(&mut self) -> Error {
        let status = self.child.wait().ok();
        // The child is gone, so its stderr reaches end-of-file: collect all of it.
        let last = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .map(|s| last_words(&s))
            .unwrap_or_default();
        let how = match status {
            Some(s) if s.code().is_some() => format!("worker exited with {s}"),
            Some(s) => format!("worker was killed ({s}; out of memory?)"),
            None => "worker vanished".to_string(),
        };
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

/// What a dead worker said last: its panic message when it panicked (the lines from
/// "panicked at" up to the backtrace note), else its last non-empty stderr line.
fn last_words(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if let Some(i) = lines.iter().rposition(|l| l.contains("panicked at")) {
        let msg: Vec<&str> = lines[i..]
            .iter()
            .take_while(|l| !l.starts_with("note:") && !l.starts_with("stack backtrace"))
            .map(|l| l.trim())
            .collect();
        return msg.join(" ");
    }
    lines.last().map_or(String::new(), |l| l.to_string())
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stdin.take();
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
