//! `medarena competition ...`: organizers create, list, close and publish competitions on
//! the server they are signed in to (`medarena login`). A thin face over
//! `/api/v1/competitions`; the rules (bundle validation, who may) are the server's.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};

use crate::client::{Client, resolve};

#[derive(Debug, clap::Subcommand)]
pub enum CompetitionCommand {
    /// Create a competition from a bundle (YAML, as in `arena/examples/bundles/`); a refused
    /// bundle is reported field by field.
    Create {
        /// The bundle file.
        bundle: PathBuf,
    },
    /// List the competitions: id, slug, state and title.
    List {
        /// Print the server's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Close a competition to submissions (id or slug).
    Close { competition: String },
    /// Publish a closed competition's final results: the private leaderboard, released as
    /// its bundle says (id or slug).
    Publish { competition: String },
}

pub fn run(command: CompetitionCommand) -> anyhow::Result<ExitCode> {
    let client = Client::signed_in()?;
    match command {
        CompetitionCommand::Create { bundle } => {
            let yaml =
                std::fs::read(&bundle).with_context(|| format!("reading {}", bundle.display()))?;
            let created = client.post_body("/competitions", "application/yaml", yaml)?;
            println!("created {}", line(&created));
        }
        CompetitionCommand::List { json } => {
            let competitions = client.get("/competitions")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&competitions)?);
            } else {
                for competition in competitions.as_array().into_iter().flatten() {
                    println!("{}", line(competition));
                }
            }
        }
        CompetitionCommand::Close { competition } => {
            let id = resolve(&client, "competitions", &competition)?;
            let closed = client.post_json(&format!("/competitions/{id}/close"), &json!({}))?;
            println!("closed {}", line(&closed));
        }
        CompetitionCommand::Publish { competition } => {
            let id = resolve(&client, "competitions", &competition)?;
            let published = client.post_json(&format!("/competitions/{id}/publish"), &json!({}))?;
            println!("published {}", line(&published));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `3  cardiac-event-1y  open  One-year cardiac events` for a competition's JSON.
fn line(competition: &Value) -> String {
    let state = if !competition["published_at"].is_null() {
        "published"
    } else if !competition["closed_at"].is_null() {
        "closed"
    } else {
        "open"
    };
    format!(
        "{:<4} {:<28} {:<10} {}",
        competition["id"].as_i64().unwrap_or_default(),
        competition["slug"].as_str().unwrap_or("?"),
        state,
        competition
            .pointer("/bundle/title")
            .and_then(Value::as_str)
            .unwrap_or("")
    )
}
