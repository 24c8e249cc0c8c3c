//! `edgebench bench MODEL`: SingleStream latency and Offline throughput of one model,
//! its memory in a process of its own, and achieved GFLOP/s against the GEMM peak.

use clap::Args;

use super::measure::{self, MeasureArgs};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Built-in model name, spec .toml or .onnx file.
    pub model: String,
    #[command(flatten)]
    pub measure: MeasureArgs,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    measure::run("bench", std::slice::from_ref(&args.model), &args.measure)
}
