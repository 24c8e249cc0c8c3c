//! This machine: CPU model, cores, SIMD level, memory, and its measured fp32 GEMM peak.
//!
//! The GEMM peak is what "achieved GFLOP/s" is compared against: a square single-precision
//! matrix product (the `gemm` crate's AVX-512/AVX2/NEON kernels, all cores) is the
//! practical compute ceiling of a CPU for convolution-heavy models. It is the best of
//! several short timed products with pauses between them, so that a burst of other
//! work spoils only some. Beside it the same product through edgebench's own SGEMM (the
//! trainer's, on the process's kernel path: [`crate::simd`]), so a first run on a board
//! says what its training kernels reach against the board's ceiling. It is cached as JSON under the user's cache directory
//! (`$XDG_CACHE_HOME/edgebench/` or `~/.cache/edgebench/`), keyed by CPU model and core
//! count, with when and under what load it was measured; a measurement taken while the
//! machine was busy (1-minute load average above [`BUSY_LOAD_PER_CORE`] per core) is
//! used once but not cached, and a cache that cannot be written is only a warning.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::memory;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::report::schema::Machine;

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
        kernels: crate::simd::active().name().to_string(),
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
    /// Best of the timed runs.
    pub gflops: f64,
    /// When it was measured, seconds since the Unix epoch.
    #[serde(default)]
    pub measured_unix_s: u64,
    /// The 1-minute load average just before measuring (`/proc/loadavg`), when known
    /// (absent in caches written before it was recorded).
    #[serde(default)]
    pub load_avg_1m: Option<f64>,
    /// How many timed runs the best was taken from (0 in older caches).
    #[serde(default)]
    pub runs: usize,
    /// The same product through edgebench's own SGEMM (the trainer's), best of as many
    /// runs (absent in older caches, which are then measured again).
    #[serde(default)]
    pub own_gflops: Option<f64>,
    /// The kernel path that SGEMM ran on (`avx2`, `neon`, `portable`).
    #[serde(default)]
    pub own_kernels: Option<String>,
}

/// A machine is busy, for measuring its peak, when its 1-minute load average exceeds
/// this many runnable tasks per core: other work then takes a share of the cores the
/// all-core product needs.
pub const BUSY_LOAD_PER_CORE: f64 = 0.25;

/// Timed products of one peak measurement.
pub const PEAK_RUNS: usize = 7;

/// The two n×n operands every peak product multiplies (small values, no overflow).
fn operands(n: usize) -> (Vec<f32>, Vec<f32>) {
    let a = (0..n * n).map(|i| ((i % 17) as f32 - 8.0) * 0.01).collect();
    let b = (0..n * n).map(|i| ((i % 13) as f32 - 6.0) * 0.01).collect();
    (a, b)
}

/// GFLOP/s of the fastest of `runs` n×n×n `product`s, run one at a time with a short
/// pause between them, after one untimed product that warms caches, pages and thread
/// pools up.
fn best_gflops<E>(
    n: usize,
    runs: usize,
    mut product: impl FnMut() -> std::result::Result<(), E>,
) -> std::result::Result<f64, E> {
    let flops = 2.0 * (n as f64).powi(3);
    let mut best = f64::INFINITY;
    for run in 0..=runs.max(1) {
        if run > 1 {
            std::thread::sleep(Duration::from_millis(20));
        }
        let t = Instant::now();
        product()?;
        if run > 0 {
            best = best.min(t.elapsed().as_secs_f64());
        }
    }
    Ok(flops / best / 1e9)
}

/// Time `runs` fp32 n×n×n products on `threads` threads through the `gemm` crate (the
/// machine's peak); GFLOP/s of the fastest, timed as the own SGEMM is.
pub fn measure_gemm(n: usize, threads: usize, runs: usize) -> f64 {
    let (a, b) = operands(n);
    let mut c = vec![0f32; n * n];
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let Ok(gflops) = best_gflops(n, runs, || {
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
        Ok::<(), std::convert::Infallible>(())
    });
    std::hint::black_box(&c);
    gflops
}

/// [`measure_gemm`] through edgebench's own SGEMM on the process's kernel path (packing
/// buffers and worker threads set up once, outside the timing).
pub fn measure_own_gemm(n: usize, threads: usize, runs: usize) -> Result<f64> {
    use crate::train::kernels::sgemm::{Operand, pack_len, sgemm};
    use crate::train::kernels::workers::Workers;
    let threads = threads.max(1);
    let (a, b) = operands(n);
    let mut c = vec![0f32; n * n];
    let mut pack = vec![0f32; threads * pack_len()];
    let workers = Workers::new(threads - 1)?;
    let (oa, ob) = (Operand::new(&a, n, n, false), Operand::new(&b, n, n, false));
    let gflops = best_gflops(n, runs, || {
        sgemm(
            n,
            n,
            n,
            oa,
            ob,
            &mut c,
            n,
            false,
            &mut pack,
            threads,
            Some(&workers),
        )
    })?;
    std::hint::black_box(&c);
    Ok(gflops)
}

/// Matrix size for the peak: large enough to keep every core busy, small enough that
/// a run takes milliseconds.
pub fn peak_size(cores: usize) -> usize {
    if cores <= 16 { 1024 } else { 2048 }
}

/// Where the GEMM peak is cached.
pub fn cache_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("edgebench").join("gemm-peak.json"))
}

/// The cached peak for this CPU and core count, if any (an unreadable or malformed
/// cache counts as none).
pub fn cached_peak() -> Option<GemmPeak> {
    let text = std::fs::read_to_string(cache_path()?).ok()?;
    let p: GemmPeak = serde_json::from_str(&text).ok()?;
    (p.cpu == cpu_model() && p.cores == cores() && p.gflops.is_finite() && p.gflops > 0.0)
        .then_some(p)
}

/// The 1-minute load average, from `/proc/loadavg` (under `$EDGEBENCH_SYSROOT` when
/// set, as board detection); `None` when unreadable.
pub fn load_avg_1m() -> Option<f64> {
    let root = std::env::var_os(crate::board::SYSROOT_ENV)
        .filter(|r| !r.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from);
    let text = std::fs::read_to_string(root.join("proc/loadavg")).ok()?;
    parse_load_avg(&text)
}

fn parse_load_avg(text: &str) -> Option<f64> {
    let v: f64 = text.split_whitespace().next()?.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// Whether a load average means the machine is too busy for a peak worth caching.
pub fn is_busy(load_avg_1m: f64, cores: usize) -> bool {
    load_avg_1m > BUSY_LOAD_PER_CORE * cores.max(1) as f64
}

/// A GEMM peak and how it was obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct PeakOutcome {
    pub peak: GemmPeak,
    /// Read from the cache (not measured by this call).
    pub from_cache: bool,
    /// Why a fresh measurement was not cached (the machine was busy, the cache cannot
    /// be written), for one warning; the peak is still used.
    pub warning: Option<String>,
}

/// Measure the GEMM peak on all cores, noting the load average before, and cache it
/// unless the machine was busy. A cache that cannot be written is a warning, not an
/// error: the peak is measured again next time.
pub fn measure_and_cache_peak() -> PeakOutcome {
    let cores = cores();
    let load = load_avg_1m();
    let n = peak_size(cores);
    let peak = GemmPeak {
        cpu: cpu_model(),
        cores,
        n,
        gflops: measure_gemm(n, cores, PEAK_RUNS),
        measured_unix_s: unix_now(),
        load_avg_1m: load,
        runs: PEAK_RUNS,
        own_gflops: measure_own_gemm(n, cores, PEAK_RUNS).ok(),
        own_kernels: Some(crate::simd::active().name().to_string()),
    };
    let warning = match (load, cache_path()) {
        (Some(l), _) if is_busy(l, cores) => Some(format!(
            "the machine was busy (load average {l:.2} on {cores} cores): the GEMM peak \
             measured now ({:.1} GFLOP/s) is used for this run but not cached; run \
             `edgebench hw --remeasure` when the machine is idle",
            peak.gflops
        )),
        (_, None) => None,
        (_, Some(path)) => save(&peak, &path).err().map(|e| {
            format!("the GEMM peak cannot be cached ({e}); it is measured again next time")
        }),
    };
    PeakOutcome {
        peak,
        from_cache: false,
        warning,
    }
}

fn save(peak: &GemmPeak, path: &std::path::Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let json = serde_json::to_string_pretty(peak).map_err(|e| Error::json("the GEMM peak", e))?;
    fsutil::write_atomic(path, json.as_bytes())
}

/// The cached peak, or a fresh measurement when none is cached (`remeasure` forces one).
pub fn gemm_peak(remeasure: bool) -> PeakOutcome {
    match cached_peak() {
        Some(peak) if !remeasure => PeakOutcome {
            peak,
            from_cache: true,
            warning: None,
        },
        _ => measure_and_cache_peak(),
    }
}

/// edgebench's own SGEMM on the process's kernel path: `(GFLOP/s, taken from peak)`,
/// from `peak` when it was measured with it on this path, else measured now (under a
/// second) at the peak's size.
pub fn own_gemm(peak: &GemmPeak) -> Result<(f64, bool)> {
    let path = crate::simd::active().name();
    match (peak.own_gflops, peak.own_kernels.as_deref()) {
        (Some(g), Some(k)) if k == path && g.is_finite() && g > 0.0 => Ok((g, true)),
        _ => Ok((measure_own_gemm(peak.n, cores(), PEAK_RUNS)?, false)),
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
        let g = measure_gemm(64, 1, 2);
        assert!(g.is_finite() && g > 0.0, "{g}");
    }

    #[test]
    fn load_average_and_busy() {
        assert_eq!(parse_load_avg("0.52 0.58 0.59 1/467 12345\n"), Some(0.52));
        assert_eq!(parse_load_avg(""), None);
        assert_eq!(parse_load_avg("nan 1 1"), None);
        assert_eq!(parse_load_avg("-1 1 1"), None);
        assert!(!is_busy(0.4, 2) && is_busy(0.6, 2));
        assert!(!is_busy(3.9, 16) && is_busy(4.1, 16));
        assert!(is_busy(0.3, 0), "no cores counts as one");
    }

    #[test]
    fn a_cache_written_before_load_and_time_were_recorded_still_loads() {
        let old = r#"{"cpu": "AMD EPYC 9R14", "cores": 2, "n": 2048, "gflops": 95.5}"#;
        let p: GemmPeak = serde_json::from_str(old).unwrap();
        assert_eq!(
            (p.gflops, p.measured_unix_s, p.load_avg_1m, p.runs),
            (95.5, 0, None, 0)
        );
    }

    #[test]
    fn machine_facts_are_filled() {
        let m = machine();
        assert!(m.cores >= 1 && !m.cpu.is_empty() && !m.simd.is_empty());
    }
}
