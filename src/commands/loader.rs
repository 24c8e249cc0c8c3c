//! `edgebench loader`. Placeholder: being written.

use clap::Args;

#[derive(Debug, Args)]
pub struct LoaderArgs {}

pub fn run(_args: LoaderArgs) -> anyhow::Result<()> {
    anyhow::bail!("edgebench loader is not implemented yet")
}
