//! `edgebench hw`: this machine's CPU, cores, SIMD level, memory, Jetson board when
//! detected (`$EDGEBENCH_SYSROOT` points detection at a fixture root), whether
//! `tegrastats` is there for power figures, and its measured fp32 GEMM peak (cached
//! after the first measurement taken while the machine was not busy; `--remeasure`
//! measures it again).

use clap::Args;
use edgebench_runtime::bench::hw;
use edgebench_runtime::bench::machine::MachineReport;

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
    if !args.json && (args.remeasure || hw::cached_peak().is_none()) {
        eprintln!("measuring the fp32 GEMM peak on {} cores …", hw::cores());
    }
    let r = MachineReport::gather(args.remeasure)?;
    if let Some(w) = &r.cache_warning {
        eprintln!("edgebench: warning: {w}");
    }
    if args.json {
        return super::print_json("the machine report", &r.to_json());
    }
    print!("{}", r.text());
    Ok(())
}
