//! `edgebench profile`: per-node time of one model, as a table sorted by time with MACs
//! and GFLOP/s per node, optionally as JSON and as a Chrome trace (`--trace`). On a
//! Jetson the board is named, as in bench/compare reports.

use edgebench_runtime::fsutil::IoPaths;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use edgebench_runtime::bench::profile::{self, Profile, ProfileOptions};
use edgebench_runtime::{board, model};

use super::{engine_options, si};
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
        .output_opt("--trace", args.trace.as_deref())
        .check()?;
    let prepared = model::prepare(&args.model, &args.model_input.prepare_options(None))?;
    let opts = engine_options(&args.engine, prepared.input_shape.clone());
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
        super::print_json("the profile", &to_json(&prepared, &prof, &args, board))?;
        return Ok(());
    }
    print!(
        "{}",
        render(&prepared.name, &prof, args.top, board.as_ref())
    );
    if let Some(path) = &args.trace {
        println!("wrote Chrome trace {}", path.display());
    }
    Ok(())
}

/// The detected Jetson board and its built-in target, if any.
type Board = Option<(String, Option<String>)>;

fn to_json(
    prepared: &model::Prepared,
    p: &Profile,
    args: &ProfileArgs,
    board: Board,
) -> serde_json::Value {
    let (board, target) = board.map_or((None, None), |(b, t)| (Some(b), t));
    serde_json::json!({
        "model": prepared.name,
        "input_shape": prepared.input_shape,
        "engine": p.engine,
        "warmup": p.warmup,
        "runs": p.runs,
        "total_ms": p.total_ms,
        "node_sum_ms": p.node_sum_ms,
        "total_macs": p.total_macs,
        "nodes": p.nodes,
        "kernels": p.kernels,
        "run_ms": p.run_ms,
        "notes": p.notes,
        "trace_file": args.trace,
        "board": board,
        "target": target,
    })
}

/// The terminal table: a header (what ran), one row per node, and a footer comparing
/// the summed node times with the measured end-to-end time.
fn render(name: &str, p: &Profile, top: usize, board: Option<&(String, Option<String>)>) -> String {
    let shape: Vec<String> = p.engine.input_shape.iter().map(|d| d.to_string()).collect();
    let mut out = format!(
        "{name} (input {}): engine {} {}, provider {}; {} warm-up + {} timed runs\n",
        shape.join("x"),
        p.engine.engine,
        p.engine.version,
        p.engine.provider,
        p.warmup,
        p.runs
    );
    match board {
        Some((b, Some(t))) => out += &format!("  board: {b} (target {t})\n"),
        Some((b, None)) => out += &format!("  board: {b} (no matching built-in target)\n"),
        None => {}
    }
    for f in &p.engine.fallbacks {
        out += &format!("  fallback: {f}\n");
    }
    for n in &p.notes {
        out += &format!("  note: {n}\n");
    }
    let shown = if top == 0 {
        p.nodes.len()
    } else {
        top.min(p.nodes.len())
    };
    let rows: Vec<[String; 6]> = p.nodes[..shown]
        .iter()
        .map(|n| {
            [
                n.name.clone(),
                n.op.clone(),
                format!("{:.3}", n.mean_ms),
                format!("{:.1}", n.share * 100.0),
                if n.macs == 0 { "-".into() } else { si(n.macs) },
                if n.gflops == 0.0 {
                    "-".into()
                } else {
                    format!("{:.1}", n.gflops)
                },
            ]
        })
        .collect();
    let head = ["node", "op", "mean ms", "share %", "MACs", "GFLOP/s"];
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            let pad = w.saturating_sub(c.chars().count());
            if i < 2 {
                s += &format!("{c}{}  ", " ".repeat(pad));
            } else {
                s += &format!("{}{c}  ", " ".repeat(pad));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    out += &line(head);
    for r in &rows {
        out += &line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]);
    }
    if shown < p.nodes.len() {
        let rest = &p.nodes[shown..];
        let ms: f64 = rest.iter().map(|n| n.mean_ms).sum();
        out += &format!(
            "  … {} more nodes: {ms:.3} ms ({:.1} %); --top 0 shows all\n",
            rest.len(),
            if p.node_sum_ms > 0.0 {
                ms / p.node_sum_ms * 100.0
            } else {
                0.0
            }
        );
    }
    let all_gflops = profile::gflops(p.total_macs, p.total_ms);
    out += &format!(
        "sum of node times {:.3} ms per inference; measured end to end {:.3} ms \
         (nodes {:.1} % of it); {} MACs, {:.1} GFLOP/s end to end\n",
        p.node_sum_ms,
        p.total_ms,
        if p.total_ms > 0.0 {
            p.node_sum_ms / p.total_ms * 100.0
        } else {
            0.0
        },
        si(p.total_macs),
        all_gflops
    );
    out
}
