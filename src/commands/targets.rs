//! `edgebench targets [--json]` and `edgebench targets show NAME|FILE.toml [--json]`:
//! the Jetson boards (`targets/*.toml`) with their budgets and execution-provider order,
//! and which board this machine is.

use clap::{Args, Subcommand};
use edgebench_runtime::board;

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
        Some(TargetsCmd::Show { target, json }) => {
            let t = board::resolve(&target)?;
            if json || args.json {
                return super::print_json("the target", &t);
            }
            print!("{}", t.text());
        }
        None if args.json => super::print_json("the target list", &board::builtin())?,
        None => print!(
            "{}",
            board::text::table(&board::builtin(), board::detect().as_ref())
        ),
    }
    Ok(())
}
