//! What `edgebench hw` reports: this machine (CPU, cores, SIMD level, kernel path,
//! memory), the Jetson board when detected, whether `tegrastats` is there, the fp32 GEMM
//! peak (cached or measured) and edgebench's own SGEMM against it; as text
//! ([`MachineReport::text`]) and JSON ([`MachineReport::to_json`]).

use std::fmt::Write as _;
use std::path::PathBuf;

use super::hw::{self, GemmPeak};
use crate::board;
use crate::error::Result;
use crate::report::schema::Machine;
use crate::units;

/// This machine and its measured peak.
#[derive(Debug, Clone)]
pub struct MachineReport {
    pub machine: Machine,
    /// The board and its built-in target, as [`board::detect`] returns them.
    pub detected: Option<(String, Option<String>)>,
    /// `tegrastats`' path, or why it is not available.
    pub tegrastats: std::result::Result<PathBuf, String>,
    pub peak: GemmPeak,
    /// The peak was read from the cache.
    pub peak_cached: bool,
    /// Why a fresh peak was not cached.
    pub cache_warning: Option<String>,
    /// edgebench's own SGEMM, GFLOP/s, at the peak's size.
    pub own_gflops: f64,
    /// The own SGEMM figure came from the cache too.
    pub own_cached: bool,
}

impl MachineReport {
    /// Look at this machine; the GEMM peak comes from the cache unless there is none or
    /// `remeasure` (then it is measured, which takes all cores for a few seconds).
    pub fn gather(remeasure: bool) -> Result<MachineReport> {
        let mut machine = hw::machine();
        let detected = board::detect();
        machine.board = detected.as_ref().map(|(b, _)| b.clone());
        let tegrastats = board::Tegrastats::locate().map(|t| t.path().to_path_buf());
        let outcome = hw::gemm_peak(remeasure);
        machine.gemm_peak_gflops = Some(outcome.peak.gflops);
        let (own_gflops, with_peak) = hw::own_gemm(&outcome.peak)?;
        Ok(MachineReport {
            machine,
            detected,
            tegrastats,
            own_cached: with_peak && outcome.from_cache,
            peak: outcome.peak,
            peak_cached: outcome.from_cache,
            cache_warning: outcome.warning,
            own_gflops,
        })
    }

    /// The JSON object of `edgebench hw --json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "machine": self.machine,
            "gemm_peak": self.peak,
            "own_sgemm": {
                "gflops": self.own_gflops,
                "kernels": self.machine.kernels,
                "share_of_peak": self.own_gflops / self.peak.gflops,
                "cached": self.own_cached,
            },
            "cached": self.peak_cached,
            "cache_warning": self.cache_warning,
            "cache_file": hw::cache_path(),
            "target": self.detected.as_ref().and_then(|(_, t)| t.clone()),
            "tegrastats": self.tegrastats.as_ref().ok(),
        })
    }

    /// One line per fact, as `edgebench hw` prints them.
    pub fn text(&self) -> String {
        let (m, peak) = (&self.machine, &self.peak);
        let forced = crate::simd::Simd::available()
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join("|");
        let mut s = String::new();
        let mut line = |l: String| {
            s.push_str(&l);
            s.push('\n');
        };
        line(format!("cpu:       {}", m.cpu));
        line(format!("cores:     {}", m.cores));
        line(format!("simd:      {}", m.simd));
        line(format!(
            "kernels:   {} (edgebench's own training and loader kernels; EDGEBENCH_SIMD={forced} forces one)",
            m.kernels
        ));
        line(format!("arch:      {}", m.arch));
        line(format!("memory:    {}", units::bytes(m.memory_bytes)));
        line(match &self.detected {
            Some((board, Some(t))) => format!("board:     {board} (target {t})"),
            Some((board, None)) => format!("board:     {board} (no matching built-in target)"),
            None => "board:     not a Jetson".into(),
        });
        line(match &self.tegrastats {
            Ok(p) => format!(
                "tegrastats: {} (bench, compare and train report power)",
                p.display()
            ),
            Err(why) => format!("tegrastats: not available ({why})"),
        });
        let load = peak
            .load_avg_1m
            .map_or(String::new(), |l| format!(", load average {l:.2}"));
        let when = match (self.peak_cached, peak.measured_unix_s) {
            (true, 0) => ", cached".to_string(),
            (true, t) => format!(", cached, measured at Unix time {t}"),
            (false, _) => ", just measured".to_string(),
        };
        line(format!(
            "gemm peak: {:.1} GFLOP/s fp32 ({}×{n}×{n} on {} cores{when}{load})",
            peak.gflops,
            peak.n,
            peak.cores,
            n = peak.n
        ));
        line(format!(
            "own sgemm: {:.1} GFLOP/s fp32 ({:.0}% of the peak; edgebench's training GEMM, \
             kernels {}, same product{})",
            self.own_gflops,
            100.0 * self.own_gflops / peak.gflops,
            m.kernels,
            if self.own_cached {
                ", cached"
            } else {
                ", just measured"
            }
        ));
        if let Some(p) = hw::cache_path() {
            let _ = writeln!(s, "cache:     {}", p.display());
        }
        s
    }
}
