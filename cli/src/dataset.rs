//! `medarena dataset ...` (issue 2).
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum DatasetCommand {}

pub fn run(command: DatasetCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
