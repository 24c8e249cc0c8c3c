//! This machine: CPU model, cores, SIMD level, memory, and its measured fp32 GEMM peak.
//!
//! The GEMM peak is what "achieved GFLOP/s" is compared against: a square single-precision
//! matrix product (the `gemm` crate's AVX-512/AVX2/NEON kernels, all cores) is the
//! practical compute ceiling of a CPU for convolution-heavy models. It is measured once
//! and cached as JSON under the user's cache directory (`$XDG_CACHE_HOME/edgebench/` or
//! `~/.cache/edgebench/`), keyed by CPU model and core count.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::memory;
use super::result::Machine;
use crate::error::{Error, Result};
use crate::fsutil;

/// CPU facts of this machine (no measurement).
pub fn machine() -> Machine {
    Machine {
        cpu: cpu_model(),
        cores: cores(),
        simd: simd_level().to_string(),
        arch: std::env::consts::ARCH.to_string(),
        memory_bytes: memory::total_memory(),
        board: None,
        gemm_peak_gflops: None,
    }
}

/// Logical cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// CPU model name from /proc/cpuinfo (`model name`, or `Hardware`/`CPU part` on ARM).
pub fn cpu_model() -> String {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpu_model_from(&text).unwrap_or_else(|| format!("unknown {} CPU", std::env::consts::ARCH))
}

fn cpu_model_from(cpuinfo: &str) -> Option<String> {
    let get = |key: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key && !v.trim().is_empty()).then(|| v.trim().to_string())
        })
    };
    get("model name")
        .or_else(|| get("Hardware"))
        .or_else(|| get("CPU part").map(|p| format!("ARM CPU part {p}")))
}

/// The widest SIMD instruction set the CPU offers.
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "avx2+fma";
        }
        if std::arch::is_x86_feature_detected!("sse4.2") {
            return "sse4.2";
        }
        "sse2"
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("sve") {
            return "neon+sve";
        }
        "neon"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "scalar"
    }
}

/// A measured GEMM peak, as cached.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GemmPeak {
    pub cpu: String,
    pub cores: usize,
    /// Matrix size n of the n×n×n product that was timed.
    pub n: usize,
    /// Best of the timed repetitions.
    pub gflops: f64,
    pub measured_unix_s: u64,
}

/// Time `reps` fp32 n×n×n products on `threads` threads; GFLOP/s of the fastest.
pub fn measure_gemm(n: usize, threads: usize, min_time: Duration) -> f64 {
    let a: Vec<f32> = (0..n * n).map(|i| ((i % 17) as f32 - 8.0) * 0.01).collect();
    let b: Vec<f32> = (0..n * n).map(|i| ((i % 13) as f32 - 6.0) * 0.01).collect();
    let mut c = vec![0f32; n * n];
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let flops = 2.0 * (n as f64).powi(3);
    let mut best = f64::INFINITY;
    let start = Instant::now();
    let mut reps = 0;
    while reps < 3 || (start.elapsed() < min_time && reps < 50) {
        let t = Instant::now();
        // Safety: a, b and c each hold n·n f32 in row-major order; the strides
        // (column stride 1, row stride n) stay inside them, and c does not alias a or b.
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                b.as_ptr(),
                1,
                n as isize,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                par,
            );
        }
        best = best.min(t.elapsed().as_secs_f64());
        reps += 1;
    }
    std::hint::black_box(&c);
    flops / best / 1e9
}

/// Where the GEMM peak is cached.
pub fn cache_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("edgebench").join("gemm-peak.json"))
}

/// The cached peak for this CPU and core count, if any.
pub fn cached_peak() -> Option<GemmPeak> {
    let text = std::fs::read_to_string(cache_path()?).ok()?;
    let p: GemmPeak = serde_json::from_str(&text).ok()?;
    (p.cpu == cpu_model() && p.cores == cores() && p.gflops.is_finite() && p.gflops > 0.0)
        .then_some(p)
}

/// Measure the GEMM peak on all cores (n = 2048, ≥ 1 s) and cache it.
pub fn measure_and_cache_peak() -> Result<GemmPeak> {
    let n = 2048;
    let peak = GemmPeak {
        cpu: cpu_model(),
        cores: cores(),
        n,
        gflops: measure_gemm(n, cores(), Duration::from_secs(1)),
        measured_unix_s: unix_now(),
    };
    if let Some(path) = cache_path() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let json = serde_json::to_string_pretty(&peak)
            .map_err(|e| Error::Invalid(format!("serialising the GEMM peak: {e}")))?;
        fsutil::write_atomic(&path, json.as_bytes())?;
    }
    Ok(peak)
}

/// The cached peak, or a fresh measurement when none is cached (`remeasure` forces one).
pub fn gemm_peak(remeasure: bool) -> Result<GemmPeak> {
    match cached_peak() {
        Some(p) if !remeasure => Ok(p),
        _ => measure_and_cache_peak(),
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_model_from_x86_and_arm_cpuinfo() {
        let x86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\n";
        assert_eq!(cpu_model_from(x86).as_deref(), Some("AMD EPYC 9R14"));
        let arm = "processor\t: 0\nBogoMIPS\t: 62.50\nCPU part\t: 0xd42\n";
        assert_eq!(cpu_model_from(arm).as_deref(), Some("ARM CPU part 0xd42"));
        assert_eq!(cpu_model_from(""), None);
    }

    #[test]
    fn gemm_measurement_is_positive_and_finite() {
        let g = measure_gemm(64, 1, Duration::ZERO);
        assert!(g.is_finite() && g > 0.0, "{g}");
    }

    #[test]
    fn machine_facts_are_filled() {
        let m = machine();
        assert!(m.cores >= 1 && !m.cpu.is_empty() && !m.simd.is_empty());
    }
}
