//! `medarena`: the one binary. Each subcommand group lives in its own module and returns
//! the process exit code; errors reach the user through `anyhow` with their full chain.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod certificate;
mod client;
mod competition;
mod contract;
mod dataset;
mod ledger;
mod platform;
mod run;
mod sandbox_child;
mod score;

/// Medical data competitions in which hospital data is usable but never visible.
#[derive(Debug, Parser)]
#[command(name = "medarena", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a dataset against its manifest, or generate dummy data from it.
    #[command(subcommand)]
    Dataset(dataset::DatasetCommand),
    /// Run a submission locally exactly as the platform would (dummy data by default).
    Run(run::RunArgs),
    /// Re-score predictions offline against a truth file.
    Score(score::ScoreArgs),
    /// Verify receipts and checkpoints of a medarena ledger, offline.
    #[command(subcommand)]
    Ledger(ledger::LedgerCommand),
    /// Run the platform: web server and workers (embedded SQLite and local files by default).
    Serve(platform::ServeArgs),
    /// Run workers alone against a data directory (more processes, same queue).
    Worker(platform::WorkerArgs),
    /// Administration of a data directory.
    #[command(subcommand)]
    Admin(platform::AdminCommand),
    /// Sign in to a server and keep an API token for the other commands.
    Login(client::LoginArgs),
    /// Revoke the kept API token and forget it.
    Logout,
    /// Who the kept API token signs in as.
    Whoami,
    /// Submit a WebAssembly module to a competition and wait for its result.
    Submit(client::SubmitArgs),
    /// Organizers: create, list, close and publish competitions on the server.
    #[command(subcommand)]
    Competition(competition::CompetitionCommand),
    /// Download registration and result certificates (check them with `ledger verify`).
    #[command(subcommand)]
    Certificate(certificate::CertificateCommand),
    /// Contracts between hospitals, teams and the platform, and statements of metered use.
    #[command(subcommand)]
    Contract(contract::ContractCommand),
    /// The sandbox's child process (internal: started by the sandbox host, speaks on stdio).
    #[command(hide = true)]
    SandboxChild,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Dataset(cmd) => dataset::run(cmd),
        Command::Run(args) => run::run(args),
        Command::Score(args) => score::run(args),
        Command::Ledger(cmd) => ledger::run(cmd),
        Command::Serve(args) => platform::serve(args),
        Command::Worker(args) => platform::worker(args),
        Command::Admin(cmd) => platform::admin(cmd),
        Command::Login(args) => client::login(args),
        Command::Logout => client::logout(),
        Command::Whoami => client::whoami(),
        Command::Submit(args) => client::submit(args),
        Command::Competition(cmd) => competition::run(cmd),
        Command::Certificate(cmd) => certificate::run(cmd),
        Command::Contract(cmd) => contract::run(cmd),
        Command::SandboxChild => sandbox_child::run(),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
