//! Sampling `tegrastats` in the background while something is measured, and summing up
//! what it saw: power per rail, total input power, GPU and EMC load, RAM and
//! temperatures ([`PowerSummary`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use edgebench_runtime::target::Tegrastats;
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

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::tegrastats::{TegraLine, parse_line};
use crate::bench::result::{AvgPeak, PowerSummary, RailPower, SensorMax};
use crate::error::{Error, Result};

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
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
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
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let at = Instant::now();
                let text = String::from_utf8_lossy(&buf);
                if text.trim().is_empty() {
                    continue;
                }
                let parsed = parse_line(&text);
                let mut s = sink.lock().unwrap_or_else(PoisonError::into_inner);
                if s.stopped {
                    break;
                }
                match parsed {
                    Ok(line) => s.samples.push(Sample { at, line }),
                    Err(e) => {
                        s.unparsed += 1;
                        s.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
        });
        Ok(Sampler {
            child,
            shared,
            interval_ms: ms,
            path: self.path.clone(),
        })
    }
}

/// What the reading thread has collected so far.
#[derive(Debug, Default)]
struct Shared {
    samples: Vec<Sample>,
    unparsed: u64,
    first_error: Option<String>,
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
            interval_ms: self.interval_ms,
            exited_early,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// SIGTERM (tegrastats restores what it changed), then SIGKILL after a second.
    fn terminate(&mut self) {
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
    /// Lines that were not tegrastats lines, and why the first was not.
    pub unparsed: u64,
    pub first_error: Option<String>,
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
mod tests {
    use super::*;

    const ORIN_NANO: &str = include_str!("../../../tests/fixtures/tegrastats/r36-orin-nano.txt");
    const AGX_ORIN: &str = include_str!("../../../tests/fixtures/tegrastats/r36-agx-orin.txt");
    const TX2: &str = include_str!("../../../tests/fixtures/tegrastats/r32-tx2.txt");

    fn lines(text: &str) -> Vec<TegraLine> {
        text.lines().map(|l| parse_line(l).unwrap()).collect()
    }

    #[test]
    fn summary_averages_and_peaks() {
        let l = lines(ORIN_NANO);
        let p = summarise(l.iter(), 100);
        assert_eq!(p.samples, 2);
        assert_eq!(p.total_source, "VDD_IN");
        assert_eq!(p.total_avg_mw, Some((4742.0 + 2957.0) / 2.0));
        assert_eq!(p.total_peak_mw, Some(4742.0));
        assert_eq!(p.rails.len(), 3);
        assert_eq!(p.rails[2].name, "VDD_SOC");
        assert_eq!(p.rails[2].peak_mw, 1446.0);
        assert_eq!(p.ram_used_mib.map(|r| r.peak), Some(3645.0));
        assert_eq!(p.ram_total_mib, Some(7620));
        assert_eq!(p.gpu_load_pct.map(|g| g.avg), Some(0.0));
        // EMC only in the second line.
        assert_eq!(p.emc_load_pct.map(|e| e.avg), Some(0.0));
        // cpu and tj tie at 46.125 °C; the last one printed is named.
        assert_eq!(p.max_temp_sensor.as_deref(), Some("tj"));
        assert_eq!(p.max_temp_c, Some(46.125));
        assert!(p.note.is_empty());
        assert_eq!(p.energy_per_item_mj(2.0, 100), Some(3849.5 * 2.0 / 100.0));
    }

    #[test]
    fn summed_rails_and_placeholder_sensors() {
        let p = summarise(lines(AGX_ORIN).iter(), 1000);
        assert_eq!(p.total_source, "sum of rails");
        let sums = [
            2412.0 + 1607.0 + 4707.0,
            2412.0 + 1607.0 + 4607.0,
            2412.0 + 1607.0 + 4707.0,
        ];
        assert_eq!(p.total_avg_mw, Some(sums.iter().sum::<f64>() / 3.0));
        // TX2: PMIC@100C is a placeholder, BCPU@-45C a sensor that is off.
        let p = summarise(lines(TX2).iter(), 1000);
        assert_eq!(p.max_temp_sensor.as_deref(), Some("AO"));
        assert_eq!(p.max_temp_c, Some(47.5));
        assert!(p.temperatures.iter().any(|s| s.sensor == "PMIC"));
        let empty = summarise(std::iter::empty(), 100);
        assert!(
            empty.note.contains("no tegrastats sample"),
            "{}",
            empty.note
        );
        assert_eq!(empty.energy_per_item_mj(1.0, 1), None);
    }

    #[test]
    fn sampler_runs_a_fake_tegrastats_and_cuts_windows() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("tegrastats");
        let first = ORIN_NANO.lines().next().unwrap();
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n[ \"$1\" = --interval ] || exit 2\necho 'not a stats line'\n\
                 while true; do echo '{first}'; sleep 0.02; done\n"
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = Tegrastats { path: script };
        let sampler = t.spawn(Duration::from_millis(20)).unwrap();
        let start = Instant::now();
        while sampler.samples_so_far() < 5 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let mid = Instant::now();
        std::thread::sleep(Duration::from_millis(100));
        let rec = sampler.finish();
        assert!(rec.samples.len() >= 5, "{}", rec.samples.len());
        assert_eq!(rec.unparsed, 1);
        assert!(
            rec.first_error
                .as_deref()
                .unwrap()
                .contains("not a tegrastats line")
        );
        let all = rec.summary();
        assert_eq!(all.total_avg_mw, Some(4742.0));
        assert_eq!(all.unparsed_lines, 1);
        let before = rec.between(&[(start - Duration::from_secs(60), mid)]);
        let after = rec.between(&[(mid, Instant::now())]);
        assert_eq!(before.samples + after.samples, all.samples);
        assert!(before.samples >= 5);
        assert_eq!(rec.exited_early, None);
    }

    #[test]
    fn a_tegrastats_that_fails_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("tegrastats");
        std::fs::write(
            &script,
            "#!/bin/sh\necho 'Error: must be run as root' >&2\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let sampler = Tegrastats { path: script }
            .spawn(Duration::from_millis(20))
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let p = sampler.stop();
        assert_eq!(p.samples, 0);
        assert!(p.note.contains("no tegrastats sample"), "{}", p.note);
        assert!(p.note.contains("tegrastats ended early"), "{}", p.note);
        assert!(p.note.contains("must be run as root"), "{}", p.note);
    }
}
