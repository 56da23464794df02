//! `medarena ledger ...` (issue 5).
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum LedgerCommand {}

pub fn run(command: LedgerCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
