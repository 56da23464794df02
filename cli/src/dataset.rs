//! `medarena dataset ...`: validate uploads against a manifest, generate dummy data, print
//! the manifest's JSON Schema. The work is done by `medarena-datasets-spec`; this module only
//! reads arguments, prints and picks the exit code (0 valid, 1 invalid, 2 unusable input).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use medarena_datasets_spec::{
    Finding, LoadOptions, Manifest, Report, Severity, ValidationConfig, dummy, hash_file,
    validate_file, write_table,
};
use serde::Serialize;

#[derive(Debug, clap::Subcommand)]
pub enum DatasetCommand {
    /// Validate data files (CSV, Parquet, Arrow IPC) against a manifest. Exits 1 when any
    /// file has an error finding or cannot be read.
    Validate(ValidateArgs),
    /// Generate dummy data that follows a manifest (no real row is used).
    Dummy(DummyArgs),
    /// Print the JSON Schema of dataset manifests.
    Schema,
    /// Upload a table to a running server as a hospital (see `medarena login`); prints the
    /// validation report and exits 1 when the upload is refused.
    Upload(crate::client::UploadArgs),
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The manifest (.json, .yaml or .yml).
    manifest: PathBuf,
    /// One or more data files sharing the manifest (e.g. one per hospital).
    #[arg(required = true)]
    data: Vec<PathBuf>,
    /// Print the reports as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Smallest equivalence class allowed over the quasi-identifiers.
    #[arg(long, default_value_t = 5)]
    k: u64,
    /// Fewest distinct values of each sensitive column allowed in a quasi-identifier class.
    #[arg(long, default_value_t = 2)]
    l: u64,
    /// Longest CSV line accepted, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_line_bytes: usize,
}

#[derive(Debug, clap::Args)]
pub struct DummyArgs {
    /// The manifest (.json, .yaml or .yml).
    manifest: PathBuf,
    /// Number of rows to generate.
    #[arg(long)]
    rows: usize,
    /// Seed of the generator (the same seed gives the same table).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output file; the format follows the extension (.csv, .parquet, .arrow).
    #[arg(short, long)]
    output: PathBuf,
}

/// The outcome for one data file.
#[derive(Debug, Serialize)]
struct FileOutcome {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<Report>,
    /// Why the file could not be read (then there is no report).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Outcome {
    valid: bool,
    files: Vec<FileOutcome>,
}

pub fn run(command: DatasetCommand) -> anyhow::Result<ExitCode> {
    match command {
        DatasetCommand::Validate(args) => validate_files(args),
        DatasetCommand::Dummy(args) => write_dummy(args),
        DatasetCommand::Upload(args) => crate::client::upload(args),
        DatasetCommand::Schema => {
            print!("{}", medarena_datasets_spec::schema::json_schema_text());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn validate_files(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let manifest = Manifest::from_path(&args.manifest)?;
    let config = ValidationConfig {
        k: args.k,
        l: args.l,
        ..ValidationConfig::default()
    };
    let options = LoadOptions {
        max_line_bytes: args.max_line_bytes,
        ..LoadOptions::default()
    };
    let mut files = Vec::new();
    for path in &args.data {
        let file = path.display().to_string();
        // `validate_file` streams CSVs in chunks (a fraction of the memory of loading the
        // whole table) and gives exactly the report of load + validate.
        let outcome = match validate_file(&manifest, path, &options, &config) {
            Err(error) => FileOutcome {
                file,
                hash: None,
                report: None,
                error: Some(error.to_string()),
            },
            Ok(mut report) => {
                let hash = hash_file(path).ok().map(|h| h.to_string());
                if let (Some(declared), Some(actual), 1) = (&manifest.hash, &hash, args.data.len())
                    && declared != actual
                {
                    report.findings.insert(
                        0,
                        Finding {
                            rule: "manifest.hash_mismatch".into(),
                            severity: Severity::Error,
                            column: None,
                            rows: 0,
                            row_numbers: Vec::new(),
                            message: "the file's SHA-256 differs from the manifest's `hash`".into(),
                        },
                    );
                }
                FileOutcome {
                    file,
                    hash,
                    report: Some(report),
                    error: None,
                }
            }
        };
        files.push(outcome);
    }
    let valid = files
        .iter()
        .all(|f| f.error.is_none() && f.report.as_ref().is_some_and(|r| !r.has_errors()));
    let outcome = Outcome { valid, files };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        for file in &outcome.files {
            println!("== {}", file.file);
            if let Some(hash) = &file.hash {
                println!("content hash {hash}");
            }
            if let Some(error) = &file.error {
                println!("error load: {error}");
            }
            if let Some(report) = &file.report {
                print!("{}", report.to_text());
            }
        }
        println!(
            "{}",
            if valid {
                "all files valid"
            } else {
                "validation FAILED"
            }
        );
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn write_dummy(args: DummyArgs) -> anyhow::Result<ExitCode> {
    let manifest = Manifest::from_path(&args.manifest)?;
    let table = dummy(&manifest, args.rows, args.seed);
    write_table(&table, &args.output)
        .with_context(|| format!("writing dummy data for `{}`", manifest.name))?;
    eprintln!(
        "wrote {} dummy rows of `{}` to {}",
        args.rows,
        manifest.name,
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
