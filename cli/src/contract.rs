//! `medarena contract ...`: the exchange's contracts from the command line, for every party
//! (organizers propose; the platform, hospitals, teams and auditors accept; hospitals and
//! the platform suspend; parties terminate) and statements of metered use. A thin face over
//! `/api/v1/contracts` and `/api/v1/statement`; the rules are the server's.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};

use crate::client::{Client, resolve};

#[derive(Debug, clap::Subcommand)]
pub enum ContractCommand {
    /// Organizers: propose a contract for a competition. Omitted terms default to the
    /// competition's own (its datasets, every purpose their manifests permit, its privacy
    /// level and ε per team, free, a year); it becomes active once every party accepts.
    Propose(ProposeArgs),
    /// The contracts you may see: id, state, competition, team, price, who is awaited.
    List {
        /// Only this competition's (id or slug).
        #[arg(long)]
        competition: Option<String>,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// One contract: its terms, parties, acceptances and ledgered history.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Accept a contract's terms as your party (they are printed first; the acceptance
    /// carries their SHA-256, so a changed text cannot be accepted by mistake).
    Accept { id: i64 },
    /// Hospitals and the platform: stop new runs under the contract until you resume it.
    Suspend {
        id: i64,
        #[arg(long)]
        reason: String,
    },
    /// Lift your own suspension.
    Resume { id: i64 },
    /// End the contract for good.
    Terminate {
        id: i64,
        #[arg(long)]
        reason: String,
    },
    /// Your party's statement of metered use: one line per real run and dataset, with its
    /// ledger evidence code, and totals per currency. Check it against the ledger with
    /// `medarena ledger verify --statement FILE --url SERVER`.
    Statement(StatementArgs),
}

#[derive(Debug, clap::Args)]
pub struct ProposeArgs {
    /// The competition (id or slug).
    #[arg(long)]
    competition: String,
    /// A dataset the contract covers (id or slug; repeat; default: all the competition's).
    #[arg(long = "dataset")]
    datasets: Vec<String>,
    /// One team's organization id (default: an open offer to every admitted team).
    #[arg(long)]
    team: Option<i64>,
    /// An auditor's account id, witnessing the contract (must accept it too).
    #[arg(long)]
    auditor: Option<i64>,
    /// A purpose (repeat; each must be permitted by every dataset's manifest).
    #[arg(long = "purpose")]
    purposes: Vec<String>,
    /// What leaves the runs: released_scores, dp_aggregates (repeat; default both).
    #[arg(long = "delivery")]
    delivery: Vec<String>,
    /// The most ε one team may spend per dataset under this contract.
    #[arg(long)]
    per_team_epsilon: Option<f64>,
    /// ISO 4217 currency of the quote.
    #[arg(long, default_value = "EUR")]
    currency: String,
    /// Price per real-data run.
    #[arg(long, default_value = "0")]
    per_run: String,
    /// Price per CPU-second billed (the compute a run's declared limits reserve).
    #[arg(long, default_value = "0")]
    per_cpu_second: String,
    /// Price per unit of ε charged on the hospitals' data.
    #[arg(long, default_value = "0")]
    per_epsilon: String,
    /// How many days the contract runs.
    #[arg(long)]
    valid_days: Option<u32>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatementArgs {
    /// Only this contract's lines.
    #[arg(long)]
    contract: Option<i64>,
    /// From this instant (RFC 3339, e.g. 2026-12-01T00:00:00Z).
    #[arg(long)]
    from: Option<String>,
    /// To this instant (exclusive).
    #[arg(long)]
    to: Option<String>,
    /// CSV instead of JSON.
    #[arg(long)]
    csv: bool,
    /// Write here instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn run(command: ContractCommand) -> anyhow::Result<ExitCode> {
    let client = Client::signed_in()?;
    match command {
        ContractCommand::Propose(args) => propose(&client, args)?,
        ContractCommand::List { competition, json } => {
            let path = match competition {
                Some(c) => format!(
                    "/contracts?competition={}",
                    resolve(&client, "competitions", &c)?
                ),
                None => "/contracts".to_owned(),
            };
            let contracts = client.get(&path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&contracts)?);
            } else {
                for contract in contracts.as_array().into_iter().flatten() {
                    println!("{}", line(contract));
                }
            }
        }
        ContractCommand::Show { id, json } => {
            let view = client.get(&format!("/contracts/{id}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print_terms(&view);
                for record in view["history"].as_array().into_iter().flatten() {
                    println!(
                        "  {}  {}  {}",
                        record["event"]["type"].as_str().unwrap_or("?"),
                        record["event"]["state"]
                            .as_str()
                            .or(record["event"]["party"].as_str())
                            .unwrap_or(""),
                        record["evidence"]
                            .as_str()
                            .unwrap_or("(not yet on the ledger)")
                    );
                }
            }
        }
        ContractCommand::Accept { id } => {
            let view = client.get(&format!("/contracts/{id}"))?;
            print_terms(&view);
            let digest = view["terms_sha256"]
                .as_str()
                .context("the server's contract has no terms_sha256")?;
            let accepted = client.post_json(
                &format!("/contracts/{id}/accept"),
                &json!({ "terms_sha256": digest }),
            )?;
            println!("accepted {}", line(&accepted));
        }
        ContractCommand::Suspend { id, reason } => {
            let changed = client.post_json(
                &format!("/contracts/{id}/suspend"),
                &json!({ "reason": reason }),
            )?;
            println!("suspended {}", line(&changed));
        }
        ContractCommand::Resume { id } => {
            let changed = client.post_json(&format!("/contracts/{id}/resume"), &json!({}))?;
            println!("resumed {}", line(&changed));
        }
        ContractCommand::Terminate { id, reason } => {
            let changed = client.post_json(
                &format!("/contracts/{id}/terminate"),
                &json!({ "reason": reason }),
            )?;
            println!("terminated {}", line(&changed));
        }
        ContractCommand::Statement(args) => statement(&client, args)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn propose(client: &Client, args: ProposeArgs) -> anyhow::Result<()> {
    let competition = resolve(client, "competitions", &args.competition)?;
    let datasets = args
        .datasets
        .iter()
        .map(|d| resolve(client, "datasets", d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut body = json!({
        "competition": competition,
        "datasets": datasets,
        "purposes": args.purposes,
        "delivery": args.delivery,
        "quote": {
            "currency": args.currency,
            "per_run": args.per_run,
            "per_cpu_second": args.per_cpu_second,
            "per_epsilon": args.per_epsilon,
        },
    });
    for (field, value) in [
        ("team", args.team.map(Value::from)),
        ("auditor", args.auditor.map(Value::from)),
        ("per_team_epsilon", args.per_team_epsilon.map(Value::from)),
        ("valid_days", args.valid_days.map(Value::from)),
    ] {
        if let Some(value) = value {
            body[field] = value;
        }
    }
    let contract = client.post_json("/contracts", &body)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&contract)?);
    } else {
        println!("proposed {}", line(&contract));
        println!(
            "terms sha256 {}",
            contract["terms_sha256"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

fn statement(client: &Client, args: StatementArgs) -> anyhow::Result<()> {
    let mut query = Vec::new();
    if let Some(contract) = args.contract {
        query.push(format!("contract={contract}"));
    }
    for (name, value) in [("from", &args.from), ("to", &args.to)] {
        if let Some(value) = value {
            chrono::DateTime::parse_from_rfc3339(value)
                .with_context(|| format!("--{name} `{value}` is not an RFC 3339 time"))?;
            query.push(format!("{name}={}", value.replace('+', "%2B")));
        }
    }
    let path = if args.csv {
        "/statement.csv"
    } else {
        "/statement"
    };
    let path = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    };
    let text = if args.csv {
        client.get_text(&path)?
    } else {
        serde_json::to_string_pretty(&client.get(&path)?)? + "\n"
    };
    match &args.output {
        Some(file) => {
            std::fs::write(file, &text).with_context(|| format!("writing {}", file.display()))?;
            eprintln!("wrote {}", file.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// `4  active  competition:1  open offer  EUR 2.50/run  awaiting: -`
fn line(contract: &Value) -> String {
    let terms = &contract["terms"];
    let quote = &terms["quote"];
    let team = match terms["team"].as_i64() {
        Some(team) => format!("team org:{team}"),
        None => "open offer".to_owned(),
    };
    let accepted: Vec<&str> = contract["acceptances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.pointer("/party/kind").and_then(Value::as_str))
        .collect();
    format!(
        "{:<4} {:<10} competition:{}  {}  {} {}/run {}/cpu-s {}/ε  accepted by {} of {} parties",
        contract["id"].as_i64().unwrap_or_default(),
        contract["state"].as_str().unwrap_or("?"),
        terms["competition"].as_i64().unwrap_or_default(),
        team,
        quote["currency"].as_str().unwrap_or("?"),
        quote["per_run"].as_str().unwrap_or("?"),
        quote["per_cpu_second"].as_str().unwrap_or("?"),
        quote["per_epsilon"].as_str().unwrap_or("?"),
        accepted.len(),
        contract["required"].as_array().map_or(0, Vec::len),
    )
}

fn print_terms(view: &Value) {
    println!("{}", line(view));
    let terms = &view["terms"];
    let list = |value: &Value| {
        value
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join("; ")
    };
    println!("  datasets   {}", list(&terms["datasets"]));
    println!("  purposes   {}", list(&terms["purposes"]));
    println!("  delivery   {}", list(&terms["delivery"]));
    println!(
        "  privacy    level {} at least, ε {} per team and dataset",
        terms["min_level"].as_str().unwrap_or("?"),
        terms["per_team_epsilon"]
    );
    let when = |value: &Value| {
        value
            .as_i64()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map_or_else(|| "?".to_owned(), |t| t.to_rfc3339())
    };
    println!(
        "  valid      {} to {}",
        when(&terms["valid_from"]),
        when(&terms["valid_until"])
    );
    println!(
        "  sha256     {}",
        view["terms_sha256"].as_str().unwrap_or("?")
    );
    if let Some(awaiting) = view["awaiting"].as_array() {
        let parties: Vec<String> = awaiting
            .iter()
            .map(|p| {
                let kind = p["kind"].as_str().unwrap_or("?");
                match p["org"].as_i64().or(p["account"].as_i64()) {
                    Some(id) => format!("{kind}:{id}"),
                    None => kind.to_owned(),
                }
            })
            .collect();
        println!(
            "  awaiting   {}",
            if parties.is_empty() {
                "-".to_owned()
            } else {
                parties.join(", ")
            }
        );
    }
}
