//! `medarena run` (issue 3).
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct RunArgs {}

pub fn run(_args: RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`medarena run` is not available in this build yet")
}
