//! `edgebench targets [--json]` and `edgebench targets show NAME|FILE.toml [--json]`:
//! the Jetson boards (`targets/*.toml`) with their budgets and execution-provider order,
//! and which board this machine is.

use clap::{Args, Subcommand};
use edgebench_runtime::board::{self, Board};
use edgebench_runtime::units;

#[derive(Debug, Args)]
pub struct TargetsArgs {
    #[command(subcommand)]
    pub cmd: Option<TargetsCmd>,
    /// Print the targets as JSON (an array of target objects).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TargetsCmd {
    /// Every field of one target: a built-in name or a path to a target .toml file
    /// (checked as `--target` would: unknown keys are rejected).
    Show {
        /// Built-in target name (see `edgebench targets`) or a .toml path.
        target: String,
        /// Print the target as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: TargetsArgs) -> anyhow::Result<()> {
    match args.cmd {
        Some(TargetsCmd::Show { target, json }) => show(&target, json || args.json),
        None => list(args.json),
    }
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn list(json: bool) -> anyhow::Result<()> {
    let targets = board::builtin();
    if json {
        super::print_json("the target list", &targets)?;
        return Ok(());
    }
    let header = [
        "target",
        "JetPack",
        "glibc",
        "CUDA",
        "memory",
        "p90 ms",
        "min img/s",
        "EP order",
    ];
    let rows: Vec<[String; 8]> = targets
        .iter()
        .map(|t| {
            [
                t.name.clone(),
                or_dash(t.jetpack.as_deref()),
                or_dash(t.glibc.as_deref()),
                or_dash(t.cuda.as_deref()),
                or_dash(t.budget.memory_mib.map(|m| format!("{m} MiB"))),
                or_dash(t.budget.p90_latency_ms),
                or_dash(t.budget.min_throughput_ips),
                t.ep.join(","),
            ]
        })
        .collect();
    // Name and EP order read left to right; the figures line up on the right.
    let right = [false, true, true, true, true, true, true, false];
    print!(
        "{}",
        units::columns(&header, &right, &rows, units::Rule::None)
    );
    println!();
    match board::detect() {
        Some((board, Some(t))) => println!("this machine: {board} → --target {t}"),
        Some((board, None)) => println!("this machine: {board} (no built-in target; pass a .toml)"),
        None => println!("this machine is not a Jetson: figures measured here are the host's"),
    }
    println!("budgets are per model process; `edgebench targets show NAME` for every field");
    Ok(())
}

fn show(name: &str, json: bool) -> anyhow::Result<()> {
    let t: Board = board::resolve(name)?;
    if json {
        super::print_json("the target", &t)?;
        return Ok(());
    }
    let b = &t.budget;
    println!("{} — {}", t.name, t.description);
    for (k, v) in [
        ("triple", t.triple.clone()),
        ("glibc", or_dash(t.glibc.as_deref())),
        ("JetPack", or_dash(t.jetpack.as_deref())),
        ("L4T", or_dash(t.l4t.as_deref())),
        ("CUDA", or_dash(t.cuda.as_deref())),
        (
            "memory",
            or_dash(t.memory_total_mib.map(|m| format!("{m} MiB"))),
        ),
        ("EP order", t.ep.join(", ")),
        (
            "budget: memory",
            b.memory_mib.map_or("none".into(), |m| {
                format!("{m} MiB peak RSS per model process")
            }),
        ),
        (
            "budget: p90",
            b.p90_latency_ms
                .map_or("none".into(), |l| format!("{l} ms (SingleStream, batch 1)")),
        ),
        (
            "budget: throughput",
            b.min_throughput_ips.map_or("none".into(), |i| {
                format!("at least {i} images/s (Offline)")
            }),
        ),
    ] {
        println!("  {k:<19} {v}");
    }
    Ok(())
}
