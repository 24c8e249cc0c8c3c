//! `edgebench data`. Placeholder: being written.

use clap::Args;

#[derive(Debug, Args)]
pub struct DataArgs {}

pub fn run(_args: DataArgs) -> anyhow::Result<()> {
    anyhow::bail!("edgebench data is not implemented yet")
}
