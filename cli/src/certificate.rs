//! `medarena certificate ...`: download certificates from the server you are signed in to,
//! byte for byte as issued, for `medarena ledger verify --certificate`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use crate::client::{Client, resolve};

#[derive(Debug, clap::Subcommand)]
pub enum CertificateCommand {
    /// Download one certificate by serial (`reg-<dataset>`, `res-<competition>-<submission>`).
    Get {
        serial: String,
        /// Where to write it (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Download a dataset's registration certificate (id or slug; its hospitals and
    /// organizers).
    Dataset {
        dataset: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// List a published competition's result certificates: serial, rank, team.
    List { competition: String },
}

/// Writes the server's bytes unchanged: re-encoding would make the file fail verification.
fn write(text: &str, output: Option<PathBuf>) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

pub fn run(command: CertificateCommand) -> anyhow::Result<ExitCode> {
    let client = Client::signed_in()?;
    match command {
        CertificateCommand::Get { serial, output } => {
            if !medarena_arena::certificate::is_serial(&serial) {
                anyhow::bail!(
                    "`{serial}` is not a certificate serial (reg-<dataset> or res-<competition>-<submission>)"
                );
            }
            write(
                &client.get_text(&format!("/certificates/{serial}"))?,
                output,
            )?;
        }
        CertificateCommand::Dataset { dataset, output } => {
            let id = resolve(&client, "datasets", &dataset)?;
            write(
                &client.get_text(&format!("/datasets/{id}/certificate"))?,
                output,
            )?;
        }
        CertificateCommand::List { competition } => {
            let id = resolve(&client, "competitions", &competition)?;
            let certificates = client.get(&format!("/competitions/{id}/certificates"))?;
            for c in certificates.as_array().into_iter().flatten() {
                let result = c.pointer("/body/subject/result").unwrap_or(&Value::Null);
                println!(
                    "{:<16} rank {:<4} {}",
                    c.pointer("/body/serial")
                        .and_then(Value::as_str)
                        .unwrap_or("?"),
                    result["rank"].as_u64().unwrap_or_default(),
                    result
                        .pointer("/team/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
