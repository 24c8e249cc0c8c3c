//! Sampling `tegrastats` in the background while something is measured, and summing up
//! what it saw: power per rail, total input power, GPU and EMC load, RAM and
//! temperatures ([`PowerSummary`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use edgebench_runtime::board::Tegrastats;
//!
//! // None off a Jetson (no tegrastats on PATH) or when it cannot start.
//! if let Some(sampler) = Tegrastats::start(Duration::from_millis(100)) {
//!     // ... the work to measure ...
//!     let power = sampler.stop();
//!     println!("{:?} mW on average", power.total_avg_mw);
//! }
//! ```
//!
//! The executable is `$EDGEBENCH_TEGRASTATS` when set (tests point it at a fake
//! script), else `tegrastats` on `PATH`. Each line is time-stamped when it arrives, so a
//! [`Recording`] can be cut into windows ([`Recording::between`]): `compare` gives each
//! model the samples taken during its own timed runs. The child is started through
//! `stdbuf -oL` when available so that its lines are not held back in a pipe buffer.
//!
//! What tegrastats prints is not trusted: a line longer than [`MAX_LINE_BYTES`] is not
//! kept (the rest of it is read and discarded, so memory stays bounded however long it
//! is) and counts as unreadable; a line that parses but cannot be a real reading
//! ([`TegraLine::implausible`]) is dropped and counted
//! ([`PowerSummary::implausible_samples`]).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::tegrastats::{TegraLine, parse_line};
use crate::error::{Error, Result};
use crate::report::schema::{AvgPeak, PowerSummary, RailPower, SensorMax, TegrastatsStatus};

/// Environment variable naming the tegrastats executable (overrides `PATH`).
pub const ENV_PATH: &str = "EDGEBENCH_TEGRASTATS";

/// A tegrastats executable that was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Tegrastats {
    path: PathBuf,
}

impl Tegrastats {
    /// Find tegrastats: `$EDGEBENCH_TEGRASTATS`, else `tegrastats` on `PATH`. `Err`
    /// says why not, in words for a report.
    pub fn locate() -> std::result::Result<Tegrastats, String> {
        if let Some(p) = std::env::var_os(ENV_PATH).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(p);
            return if is_executable(&path) {
                Ok(Tegrastats { path })
            } else {
                Err(format!(
                    "{ENV_PATH}={}: not an executable file",
                    path.display()
                ))
            };
        }
        find_on_path("tegrastats")
            .map(|path| Tegrastats { path })
            .ok_or_else(|| "no tegrastats on PATH".to_string())
    }

    /// Locate and start tegrastats; `None` when it is not there or does not start.
    pub fn start(interval: Duration) -> Option<Sampler> {
        Self::locate().ok()?.spawn(interval).ok()
    }

    /// Start tegrastats every `interval_ms` (0: off) for a report, with the status line
    /// every report carries either way; `board` (the detected Jetson) words why it is
    /// not available.
    pub fn start_reported(
        interval_ms: u64,
        board: Option<&str>,
    ) -> (Option<Sampler>, TegrastatsStatus) {
        let off = |note: String| TegrastatsStatus {
            available: false,
            path: None,
            interval_ms,
            note,
        };
        if interval_ms == 0 {
            return (None, off("off (--tegrastats-interval 0)".into()));
        }
        let found = match Self::locate() {
            Ok(t) => t,
            Err(why) => {
                let note = match board {
                    // A Jetson without tegrastats on PATH (a container, say): say what is missing.
                    Some(_) => format!("not available ({why})"),
                    None if std::env::var_os(ENV_PATH).is_some() => {
                        format!("not available ({why})")
                    }
                    None => "not available (not a Jetson)".into(),
                };
                return (None, off(note));
            }
        };
        let path = found.path().display().to_string();
        match found.spawn(Duration::from_millis(interval_ms)) {
            Ok(s) => (
                Some(s),
                TegrastatsStatus {
                    available: true,
                    path: Some(path.clone()),
                    interval_ms,
                    note: format!("sampled every {interval_ms} ms by {path}"),
                },
            ),
            Err(e) => (None, off(format!("not available ({e})"))),
        }
    }

    /// The executable.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Start `tegrastats --interval MS` and read its lines on a thread.
    pub fn spawn(&self, interval: Duration) -> Result<Sampler> {
        let ms = interval.as_millis().clamp(1, u128::from(u32::MAX)) as u64;
        let mut cmd = match find_on_path("stdbuf") {
            Some(stdbuf) => {
                let mut c = Command::new(stdbuf);
                c.arg("-oL").arg(&self.path);
                c
            }
            None => Command::new(&self.path),
        };
        let mut child = cmd
            .arg("--interval")
            .arg(ms.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(&self.path, e))?;
        // Ended with SIGTERM (it restores what it changed) should this run be interrupted.
        let interrupt = Some(crate::scratch::register_child(child.id(), libc::SIGTERM));
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(Error::Invalid(format!(
                "{}: no pipe to read from",
                self.path.display()
            )));
        };
        let shared = Arc::new(Mutex::new(Shared::default()));
        if let Some(stderr) = child.stderr.take() {
            // Keep its last complaint, to say why it stopped early (e.g. not root).
            let sink = Arc::clone(&shared);
            std::thread::spawn(move || {
                let mut lines = CappedLines::new(BufReader::new(stderr), MAX_LINE_BYTES);
                let mut buf = Vec::new();
                while let Ok(Some(kind)) = lines.next_line(&mut buf) {
                    if kind == LineKind::TooLong {
                        continue;
                    }
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim();
                    if !line.is_empty() {
                        let mut s = sink.lock().unwrap_or_else(PoisonError::into_inner);
                        s.last_stderr = Some(line.chars().take(200).collect());
                    }
                }
            });
        }
        let sink = Arc::clone(&shared);
        // The thread ends at end of file; it is not joined (a grandchild of a script
        // may hold the pipe a little longer), and it stops recording once stopped.
        std::thread::spawn(move || {
            let reader = BufReader::with_capacity(MAX_LINE_BYTES, stdout);
            let mut lines = CappedLines::new(reader, MAX_LINE_BYTES);
            let mut buf = Vec::new();
            while let Ok(Some(kind)) = lines.next_line(&mut buf) {
                let at = Instant::now();
                let read = match kind {
                    LineKind::TooLong => Read::Unreadable(format!(
                        "a line longer than {} KiB (the rest of it was discarded)",
                        MAX_LINE_BYTES / 1024
                    )),
                    LineKind::Complete => {
                        let text = String::from_utf8_lossy(&buf);
                        if text.trim().is_empty() {
                            continue;
                        }
                        match parse_line(&text) {
                            Err(e) => Read::Unreadable(e.to_string()),
                            Ok(line) => match line.implausible() {
                                Some(why) => Read::Implausible(why),
                                None => Read::Sample(line),
                            },
                        }
                    }
                };
                let mut s = sink.lock().unwrap_or_else(PoisonError::into_inner);
                if s.stopped {
                    break;
                }
                match read {
                    Read::Sample(line) => s.samples.push(Sample { at, line }),
                    Read::Unreadable(why) => {
                        s.unparsed += 1;
                        s.first_error.get_or_insert(why);
                    }
                    Read::Implausible(why) => {
                        s.implausible += 1;
                        s.first_implausible.get_or_insert(why);
                    }
                }
            }
        });
        Ok(Sampler {
            child,
            interrupt,
            shared,
            interval_ms: ms,
            path: self.path.clone(),
        })
    }
}

/// The longest tegrastats line kept, bytes (real lines are a few hundred).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// What one line of tegrastats' output turned out to be.
enum Read {
    Sample(TegraLine),
    Unreadable(String),
    Implausible(String),
}

/// How [`CappedLines::next_line`] ended a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// The whole line is in the buffer (without its line feed).
    Complete,
    /// The line is longer than the cap: the buffer is empty, and the rest of the line
    /// is discarded by the next call.
    TooLong,
}

/// Lines of a reader, each at most `cap` bytes: the memory used is bounded by the cap
/// whatever the input, and an over-long line is reported as soon as it passes the cap.
#[derive(Debug)]
pub struct CappedLines<R> {
    reader: R,
    cap: usize,
    /// Inside an over-long line already reported: skip up to its line feed.
    discarding: bool,
}

impl<R: BufRead> CappedLines<R> {
    pub fn new(reader: R, cap: usize) -> Self {
        Self {
            reader,
            cap,
            discarding: false,
        }
    }

    /// The next line into `buf` (cleared first); `None` at end of input. A last line
    /// without a line feed counts as a line.
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Option<LineKind>> {
        buf.clear();
        let mut started = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                self.discarding = false;
                return Ok(started.then_some(LineKind::Complete));
            }
            let newline = chunk.iter().position(|&b| b == b'\n');
            let (content, used) = match newline {
                Some(i) => (i, i + 1),
                None => (chunk.len(), chunk.len()),
            };
            if self.discarding {
                self.reader.consume(used);
                if newline.is_some() {
                    self.discarding = false;
                }
                continue;
            }
            started = true;
            if buf.len() + content > self.cap {
                buf.clear();
                self.reader.consume(used);
                self.discarding = newline.is_none();
                return Ok(Some(LineKind::TooLong));
            }
            buf.extend_from_slice(&chunk[..content]);
            self.reader.consume(used);
            if newline.is_some() {
                return Ok(Some(LineKind::Complete));
            }
        }
    }
}

/// What the reading thread has collected so far.
#[derive(Debug, Default)]
struct Shared {
    samples: Vec<Sample>,
    unparsed: u64,
    first_error: Option<String>,
    implausible: u64,
    first_implausible: Option<String>,
    last_stderr: Option<String>,
    stopped: bool,
}

/// One parsed line and when it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub at: Instant,
    pub line: TegraLine,
}

/// A running tegrastats; stop it with [`Sampler::stop`] or [`Sampler::finish`]
/// (dropping it stops it too).
#[derive(Debug)]
pub struct Sampler {
    child: Child,
    /// Ends the child should this run be interrupted; dropped before it is reaped.
    interrupt: Option<crate::scratch::ChildGuard>,
    shared: Arc<Mutex<Shared>>,
    interval_ms: u64,
    path: PathBuf,
}

impl Sampler {
    /// The executable that runs.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sampling interval, ms.
    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// Samples received so far.
    pub fn samples_so_far(&self) -> usize {
        self.lock().samples.len()
    }

    /// Stop tegrastats and summarise every sample.
    pub fn stop(self) -> PowerSummary {
        self.finish().summary()
    }

    /// Stop tegrastats and keep the time-stamped samples.
    pub fn finish(mut self) -> Recording {
        // Before anything may reap the child (try_wait does).
        self.interrupt.take();
        // Ended before being stopped: tegrastats failed (not root, unknown board, ...).
        let early = match self.child.try_wait() {
            Ok(Some(status)) => Some(status),
            _ => None,
        };
        self.terminate();
        let mut s = self.lock();
        s.stopped = true;
        let exited_early = early.map(|status| match &s.last_stderr {
            Some(msg) => format!("tegrastats ended early ({status}): {msg}"),
            None => format!("tegrastats ended early ({status})"),
        });
        Recording {
            samples: std::mem::take(&mut s.samples),
            unparsed: s.unparsed,
            first_error: s.first_error.take(),
            implausible: s.implausible,
            first_implausible: s.first_implausible.take(),
            interval_ms: self.interval_ms,
            exited_early,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// SIGTERM (tegrastats restores what it changed), then SIGKILL after a second.
    fn terminate(&mut self) {
        // Before anything may reap the child (try_wait does).
        self.interrupt.take();
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // Safety: `pid` is our own child, not yet waited for (try_wait said it
            // runs), so the id cannot have been reused; kill() has no memory effects.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Everything a sampler received.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recording {
    pub samples: Vec<Sample>,
    /// Lines that were not tegrastats lines (or too long), and why the first was not.
    pub unparsed: u64,
    pub first_error: Option<String>,
    /// Lines dropped as not plausible readings, and why the first was not.
    pub implausible: u64,
    pub first_implausible: Option<String>,
    pub interval_ms: u64,
    /// How tegrastats ended when it ended before it was stopped, with its last stderr
    /// line.
    pub exited_early: Option<String>,
}

impl Recording {
    /// Summary of every sample.
    pub fn summary(&self) -> PowerSummary {
        self.summarise(self.samples.iter().map(|s| &s.line))
    }

    /// Summary of the samples that arrived within any of `windows` (start, end).
    pub fn between(&self, windows: &[(Instant, Instant)]) -> PowerSummary {
        self.summarise(
            self.samples
                .iter()
                .filter(|s| windows.iter().any(|(a, b)| *a <= s.at && s.at <= *b))
                .map(|s| &s.line),
        )
    }

    fn summarise<'a>(&self, lines: impl Iterator<Item = &'a TegraLine>) -> PowerSummary {
        let mut p = summarise(lines, self.interval_ms);
        p.unparsed_lines = self.unparsed;
        p.first_unparsed = self.first_error.clone();
        p.implausible_samples = self.implausible;
        p.first_implausible = self.first_implausible.clone();
        if let Some(why) = &self.exited_early {
            p.note = if p.note.is_empty() {
                why.clone()
            } else {
                format!("{}; {why}", p.note)
            };
        }
        p
    }
}

/// Sensors whose reading is not a temperature: PMIC reads a fixed 100 °C on R32
/// boards. Readings below -40 °C are powered-down sensors (TX2's Denver cores read -45).
const NOT_A_TEMPERATURE: [&str; 1] = ["PMIC"];

/// Average and peak of every figure over `lines`.
pub fn summarise<'a>(lines: impl Iterator<Item = &'a TegraLine>, interval_ms: u64) -> PowerSummary {
    let mut p = PowerSummary {
        interval_ms,
        ..PowerSummary::default()
    };
    let mut totals = Stat::default();
    let (mut gpu, mut emc, mut ram) = (Stat::default(), Stat::default(), Stat::default());
    let mut rails: Vec<(String, Stat)> = Vec::new();
    for l in lines {
        p.samples += 1;
        if let Some((mw, source)) = l.total_power_mw() {
            totals.add(mw);
            if p.total_source.is_empty() {
                p.total_source = source;
            }
        }
        for r in &l.rails {
            match rails.iter_mut().find(|(n, _)| *n == r.name) {
                Some((_, s)) => s.add(r.current_mw),
                None => {
                    let mut s = Stat::default();
                    s.add(r.current_mw);
                    rails.push((r.name.clone(), s));
                }
            }
        }
        if let Some(v) = l.gr3d_pct {
            gpu.add(v);
        }
        if let Some(v) = l.emc_pct {
            emc.add(v);
        }
        if let Some(m) = l.ram {
            ram.add(m.used_mib as f64);
            p.ram_total_mib = Some(m.total_mib);
        }
        for (name, t) in &l.temps {
            match p.temperatures.iter_mut().find(|s| s.sensor == *name) {
                Some(s) => s.max_c = s.max_c.max(*t),
                None => p.temperatures.push(SensorMax {
                    sensor: name.clone(),
                    max_c: *t,
                }),
            }
        }
    }
    p.total_avg_mw = totals.avg();
    p.total_peak_mw = totals.peak();
    p.rails = rails
        .into_iter()
        .filter_map(|(name, s)| {
            Some(RailPower {
                avg_mw: s.avg()?,
                peak_mw: s.peak()?,
                name,
            })
        })
        .collect();
    p.gpu_load_pct = gpu.avg_peak();
    p.emc_load_pct = emc.avg_peak();
    p.ram_used_mib = ram.avg_peak();
    if let Some(hot) = p
        .temperatures
        .iter()
        .filter(|s| !NOT_A_TEMPERATURE.contains(&s.sensor.as_str()) && s.max_c > -40.0)
        .max_by(|a, b| a.max_c.total_cmp(&b.max_c))
    {
        p.max_temp_c = Some(hot.max_c);
        p.max_temp_sensor = Some(hot.sensor.clone());
    }
    if p.samples == 0 {
        p.note =
            "no tegrastats sample fell within the timed runs (run longer: --min-duration)".into();
    } else if p.total_avg_mw.is_none() {
        p.note = "tegrastats printed no power rail (run it as root on this board)".into();
    }
    p
}

/// Running sum, count and maximum.
#[derive(Debug, Default, Clone, Copy)]
struct Stat {
    sum: f64,
    n: u64,
    max: Option<f64>,
}

impl Stat {
    fn add(&mut self, v: f64) {
        self.sum += v;
        self.n += 1;
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
    }
    fn avg(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
    fn peak(&self) -> Option<f64> {
        self.max
    }
    fn avg_peak(&self) -> Option<AvgPeak> {
        Some(AvgPeak {
            avg: self.avg()?,
            peak: self.peak()?,
        })
    }
}

/// `name` in a directory of `PATH` as an executable file.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests;
