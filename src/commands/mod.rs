//! One module per subcommand; each turns parsed flags into runtime calls and prints.

mod engines;
mod inspect;
mod models;
mod run;

use edgebench_runtime::engine::EngineOptions;

use crate::cli::{Cli, Command, EngineArgs};

/// Run the parsed command.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Models(cmd) => models::run(cmd),
        Command::Inspect(args) => inspect::run(args),
        Command::Run(args) => run::run(args),
        Command::Engines(args) => engines::run(args),
    }
}

/// Resolve engine flags into the runtime's options for a given input shape.
pub fn engine_options(args: &EngineArgs, input_shape: Vec<usize>) -> EngineOptions {
    EngineOptions {
        providers: args.ep.0.clone(),
        trt_fp16: args.trt_fp16,
        trt_cache_dir: args.trt_cache.clone(),
        cuda_device: args.cuda_device,
        threads: args.threads,
        input_shape,
        ort_library: args.ort_lib.clone(),
    }
}

/// Human-readable count: 1.40 M, 19.49 G.
pub fn si(v: u64) -> String {
    let v = v as f64;
    match v {
        v if v >= 1e9 => format!("{:.2} G", v / 1e9),
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e3 => format!("{:.1} k", v / 1e3),
        v => format!("{v}"),
    }
}

/// Human-readable bytes in binary units.
pub fn bytes(v: u64) -> String {
    let f = v as f64;
    match f {
        f if f >= (1u64 << 30) as f64 => format!("{:.2} GiB", f / (1u64 << 30) as f64),
        f if f >= (1u64 << 20) as f64 => format!("{:.2} MiB", f / (1u64 << 20) as f64),
        f if f >= 1024.0 => format!("{:.1} KiB", f / 1024.0),
        _ => format!("{v} B"),
    }
}
