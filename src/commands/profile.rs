//! `edgebench profile`: per-node time of one model, as a table sorted by time with MACs
//! and GFLOP/s per node, optionally as JSON and as a Chrome trace (`--trace`). On a
//! Jetson the board is named, as in bench/compare reports.

use edgebench_runtime::fsutil::IoPaths;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use edgebench_runtime::bench::profile::{self, ProfileOptions};
use edgebench_runtime::board;

use crate::cli::{EngineArgs, ModelInputArgs};

#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// Built-in model name, spec .toml or .onnx file.
    pub model: String,
    /// Timed inferences; per-node times are means over these.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: u64,
    /// Untimed inferences first (left out of the profile).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    #[command(flatten)]
    pub model_input: ModelInputArgs,
    /// Show only the N longest nodes (0: all).
    #[arg(long, default_value_t = 25, value_name = "N")]
    pub top: usize,
    /// Also write the timed runs as a Chrome trace (open in Perfetto or chrome://tracing).
    #[arg(long, value_name = "FILE.json")]
    pub trace: Option<PathBuf>,
    /// Print JSON instead of the table (every node, whatever --top says).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn run(args: ProfileArgs) -> anyhow::Result<()> {
    // The temporary export of a spec goes away even when the run is interrupted.
    let _scratch = edgebench_runtime::scratch::Scratch::begin();
    IoPaths::new()
        .input("MODEL", &args.model)
        .input_opt("--calibrate", args.model_input.calibrate.as_deref())
        .output_opt("--trace", args.trace.as_deref())
        .check()?;
    let prepared = edgebench_runtime::quant::variant::prepare(
        &args.model,
        &args.model_input.prepare_options(None),
    )?;
    let opts = args.engine.settings().options(prepared.input_shape.clone());
    let settings = ProfileOptions {
        warmup: args.warmup,
        runs: usize::try_from(args.runs).context("--runs is too large")?,
        seed: args.model_input.seed,
    };
    let prof = profile::profile(&prepared.path, args.engine.engine, &opts, &settings)
        .with_context(|| format!("profiling {}", prepared.name))?;
    if let Some(path) = &args.trace {
        profile::write_chrome_trace(path, &prof).context("writing the Chrome trace")?;
    }
    let board = board::detect();
    if args.json {
        let j = prof.to_json(
            &prepared.name,
            &prepared.input_shape,
            args.trace.as_deref(),
            board.as_ref(),
        );
        return super::print_json("the profile", &j);
    }
    print!("{}", prof.text(&prepared.name, args.top, board.as_ref()));
    if let Some(path) = &args.trace {
        println!("wrote Chrome trace {}", path.display());
    }
    Ok(())
}
