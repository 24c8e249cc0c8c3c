//! `edgebench hw`: this machine's CPU, cores, SIMD level, memory, Jetson board when
//! detected (`$EDGEBENCH_SYSROOT` points detection at a fixture root), whether
//! `tegrastats` is there for power figures, and its measured fp32 GEMM peak (cached
//! after the first measurement taken while the machine was not busy; `--remeasure`
//! measures it again).

use clap::Args;
use edgebench_runtime::bench::hw;
use edgebench_runtime::{board, units};

#[derive(Debug, Args)]
pub struct HwArgs {
    /// Measure the GEMM peak again instead of using the cached figure (do it when the
    /// machine is idle: a peak measured while it is busy is not cached).
    #[arg(long)]
    pub remeasure: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: HwArgs) -> anyhow::Result<()> {
    let mut m = hw::machine();
    let detected = board::detect();
    m.board = detected.as_ref().map(|(b, _)| b.clone());
    let tegrastats = board::Tegrastats::locate();
    if !args.json && (args.remeasure || hw::cached_peak().is_none()) {
        eprintln!("measuring the fp32 GEMM peak on {} cores …", m.cores);
    }
    let outcome = hw::gemm_peak(args.remeasure);
    if let Some(w) = &outcome.warning {
        eprintln!("edgebench: warning: {w}");
    }
    let was_cached = outcome.from_cache;
    let peak = outcome.peak;
    m.gemm_peak_gflops = Some(peak.gflops);
    let (own, with_peak) = hw::own_gemm(&peak)?;
    let own_cached = with_peak && was_cached;
    if args.json {
        let j = serde_json::json!({
            "machine": m,
            "gemm_peak": peak,
            "own_sgemm": { "gflops": own, "kernels": m.kernels, "share_of_peak": own / peak.gflops, "cached": own_cached },
            "cached": was_cached,
            "cache_warning": outcome.warning,
            "cache_file": hw::cache_path(),
            "target": detected.and_then(|(_, t)| t),
            "tegrastats": tegrastats.as_ref().ok().map(|t| t.path()),
        });
        return super::print_json("the machine report", &j);
    }
    println!("cpu:       {}", m.cpu);
    println!("cores:     {}", m.cores);
    println!("simd:      {}", m.simd);
    println!(
        "kernels:   {} (edgebench's own training and loader kernels; EDGEBENCH_SIMD={} forces one)",
        m.kernels,
        edgebench_runtime::simd::Simd::available()
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join("|")
    );
    println!("arch:      {}", m.arch);
    println!("memory:    {}", units::bytes(m.memory_bytes));
    match &detected {
        Some((board, Some(t))) => println!("board:     {board} (target {t})"),
        Some((board, None)) => println!("board:     {board} (no matching built-in target)"),
        None => println!("board:     not a Jetson"),
    }
    match &tegrastats {
        Ok(t) => println!(
            "tegrastats: {} (bench, compare and train report power)",
            t.path().display()
        ),
        Err(why) => println!("tegrastats: not available ({why})"),
    }
    let load = peak
        .load_avg_1m
        .map_or(String::new(), |l| format!(", load average {l:.2}"));
    println!(
        "gemm peak: {:.1} GFLOP/s fp32 ({}×{n}×{n} on {} cores{}{load})",
        peak.gflops,
        peak.n,
        peak.cores,
        match (was_cached, peak.measured_unix_s) {
            (true, 0) => ", cached".to_string(),
            (true, t) => format!(", cached, measured at Unix time {t}"),
            (false, _) => ", just measured".to_string(),
        },
        n = peak.n
    );
    println!(
        "own sgemm: {own:.1} GFLOP/s fp32 ({:.0}% of the peak; edgebench's training GEMM, \
         kernels {}, same product{})",
        100.0 * own / peak.gflops,
        m.kernels,
        if own_cached {
            ", cached"
        } else {
            ", just measured"
        }
    );
    if let Some(p) = hw::cache_path() {
        println!("cache:     {}", p.display());
    }
    Ok(())
}
