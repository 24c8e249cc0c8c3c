//! `edgebench targets`. Placeholder: being written.

use clap::Args;

#[derive(Debug, Args)]
pub struct TargetsArgs {}

pub fn run(_args: TargetsArgs) -> anyhow::Result<()> {
    anyhow::bail!("edgebench targets is not implemented yet")
}
