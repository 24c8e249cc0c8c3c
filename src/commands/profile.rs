//! `edgebench profile`. Placeholder: being written.

use clap::Args;

#[derive(Debug, Args)]
pub struct ProfileArgs {}

pub fn run(_args: ProfileArgs) -> anyhow::Result<()> {
    anyhow::bail!("edgebench profile is not implemented yet")
}
