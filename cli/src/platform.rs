//! `medarena serve`, `worker`, `demo` (issue 6).
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

pub fn serve(_args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`medarena serve` is not available in this build yet")
}
