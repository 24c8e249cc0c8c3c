//! One module per subcommand; each turns parsed flags into runtime calls and prints.

pub mod bench;
pub mod compare;
pub mod data;
mod engines;
pub mod hw;
mod inspect;
pub mod loader;
mod measure;
mod models;
pub mod profile;
pub mod quantize;
mod run;
pub mod shrink;
pub mod targets;
pub mod train;

use crate::cli::{Cli, Command};

/// Print `value` as pretty JSON on stdout. A value that cannot be written as JSON is an
/// internal failure naming `what` (exit 1), not a usage error.
pub(crate) fn print_json(what: &str, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| edgebench_runtime::Error::json(what, e))?;
    println!("{text}");
    Ok(())
}

/// Run the parsed command.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    edgebench_runtime::fsutil::allow_read_only_replacement(cli.force);
    match cli.command {
        Command::Models(cmd) => models::run(cmd),
        Command::Inspect(args) => inspect::run(args),
        Command::Run(args) => run::run(args),
        Command::Engines(args) => engines::run(args),
        Command::Profile(args) => profile::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Hw(args) => hw::run(args),
        Command::Data(args) => data::run(args),
        Command::Loader(args) => loader::run(args),
        Command::Worker { config } => {
            edgebench_runtime::bench::worker::serve(&config).map_err(Into::into)
        }
        Command::Targets(args) => targets::run(args),
        Command::Train(args) => train::run(args),
        Command::Quantize(args) => quantize::run(args),
        Command::Shrink(args) => shrink::run(args),
    }
}

pub use edgebench_runtime::units::{bytes, count as si};
