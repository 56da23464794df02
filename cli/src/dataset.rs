//! `medarena dataset ...`: validate uploads against a manifest, generate dummy data or
//! differentially private synthetic data, print the manifest's JSON Schema. The work is done by `medarena-datasets-spec`; this module only
//! reads arguments, prints and picks the exit code (0 valid, 1 invalid, 2 unusable input).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use medarena_datasets_spec::{
    Finding, Format, LoadOptions, Manifest, Report, Severity, ValidationConfig, dummy, hash_file,
    validate_file, write_table,
};
use serde::Serialize;

#[derive(Debug, clap::Subcommand)]
pub enum DatasetCommand {
    /// Validate data files (CSV, Parquet, Arrow IPC) against a manifest. Exits 1 when any
    /// file has an error finding or cannot be read.
    Validate(ValidateArgs),
    /// Generate dummy data that follows a manifest (no real row is used), or, with
    /// `--from-server`, download a competition's development data: synthetic rows from the
    /// hospitals' published differentially private releases (else dummy data), the very
    /// table the platform's dummy runs use with the default rows and seed.
    Dummy(DummyArgs),
    /// Generate differentially private synthetic data from local data files (MST over the
    /// manifest's declared bins, `medarena-synth`): for a hospital to see, on its own
    /// machine, what a release at a given ρ keeps of its table. Prints the privacy spent and
    /// how far the rows are from the noisy measurements.
    Synth(SynthArgs),
    /// Print the JSON Schema of dataset manifests.
    Schema,
    /// Upload a table to a running server as a hospital (see `medarena login`); prints the
    /// validation report and exits 1 when the upload is refused.
    Upload(crate::client::UploadArgs),
    /// Withdraw one of your hospital's uploads for good, on a running server: its data key is
    /// destroyed and its bytes deleted, no run reads it again; its receipts stay verifiable.
    Withdraw {
        /// The contribution's id (from the dataset page or `GET /api/v1/datasets/{id}`).
        #[arg(long)]
        contribution: i64,
        /// Why (on the record of the withdrawal).
        #[arg(long)]
        reason: String,
    },
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
    /// The manifest (.json, .yaml or .yml); not with `--from-server`.
    #[arg(
        required_unless_present = "from_server",
        conflicts_with = "from_server"
    )]
    manifest: Option<PathBuf>,
    /// Download a competition's development data (id or slug) from the server you are
    /// signed in to (`medarena login`) instead of generating dummy data locally.
    #[arg(long, value_name = "COMPETITION")]
    from_server: Option<String>,
    /// Also write the competition's manifest there (with `--from-server`), for `medarena run`.
    #[arg(long, requires = "from_server")]
    manifest_output: Option<PathBuf>,
    /// Number of rows (with `--from-server`, default the platform's dummy run's 1,000).
    #[arg(long, required_unless_present = "from_server")]
    rows: Option<usize>,
    /// Seed of the generator (the same seed gives the same table; with `--from-server`,
    /// default the competition's split seed, as the platform's dummy runs).
    #[arg(long)]
    seed: Option<u64>,
    /// Output file; the format follows the extension (.csv, .parquet, .arrow; a download
    /// is CSV, converted when the extension asks for another format).
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// The manifest (.json, .yaml or .yml).
    manifest: PathBuf,
    /// The data files (CSV, Parquet, Arrow IPC), one per site; a file's name is its site.
    #[arg(required = true)]
    data: Vec<PathBuf>,
    /// The zCDP budget ρ of the measurements (ε at δ = 1e-6 is printed; an added or
    /// removed row is the neighbour, as in MST).
    #[arg(long, default_value_t = 1.0)]
    rho: f64,
    /// Instead of `--rho`: the budget in ε as the platform spends it when a hospital opts in
    /// (δ = 1e-6, one row replaced), to preview locally what a release at that ε keeps.
    #[arg(long, conflicts_with = "rho")]
    epsilon: Option<f64>,
    /// Synthetic rows to draw (default: as many as the input has).
    #[arg(long)]
    rows: Option<usize>,
    /// Seed of the sampling (the measurements' noise is drawn once, unseeded, by OpenDP).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output file; the format follows the extension (.csv, .parquet, .arrow).
    #[arg(short, long)]
    output: PathBuf,
    /// Also write the noisy measurements (the private release: rows are regenerated from
    /// them) as JSON.
    #[arg(long)]
    measurements: Option<PathBuf>,
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
        DatasetCommand::Synth(args) => write_synthetic(&args).map(|summary| {
            eprint!("{summary}");
            ExitCode::SUCCESS
        }),
        DatasetCommand::Upload(args) => crate::client::upload(args),
        DatasetCommand::Withdraw {
            contribution,
            reason,
        } => {
            let client = crate::client::Client::signed_in()?;
            let withdrawn = client.post_json(
                &format!("/contributions/{contribution}/withdraw"),
                &serde_json::json!({ "reason": reason }),
            )?;
            println!(
                "withdrew contribution {contribution} ({}) of dataset {}: its key is destroyed",
                withdrawn["file_name"].as_str().unwrap_or("?"),
                withdrawn["dataset"]
            );
            Ok(ExitCode::SUCCESS)
        }
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
    if let Some(competition) = &args.from_server {
        return download_development_data(&args, competition);
    }
    let path = args
        .manifest
        .as_ref()
        .context("a manifest is needed without --from-server")?;
    let manifest = Manifest::from_path(path)?;
    let rows = args
        .rows
        .context("--rows is needed without --from-server")?;
    let table = dummy(&manifest, rows, args.seed.unwrap_or(0));
    write_table(&table, &args.output)
        .with_context(|| format!("writing dummy data for `{}`", manifest.name))?;
    eprintln!(
        "wrote {rows} dummy rows of `{}` to {}",
        manifest.name,
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `medarena dataset dummy --from-server`: the competition's development data (and its
/// manifest) from the platform.
fn download_development_data(args: &DummyArgs, competition: &str) -> anyhow::Result<ExitCode> {
    use crate::client::{Client, development_data, resolve};
    let client = Client::signed_in()?;
    let id = resolve(&client, "competitions", competition)?;
    let (csv, manifest_text) = development_data(&client, id, args.rows, args.seed)?;
    let is_csv = Format::from_extension(&args.output) == Some(Format::Csv);
    if is_csv {
        std::fs::write(&args.output, &csv)
            .with_context(|| format!("writing {}", args.output.display()))?;
    } else {
        // Another format: read the CSV with the manifest's types, then write.
        let manifest = Manifest::from_str(&manifest_text)?;
        let loaded = medarena_datasets_spec::load_bytes_with_manifest(
            &manifest,
            csv.as_bytes(),
            Format::Csv,
            "development data",
            &LoadOptions::default(),
        )?;
        write_table(&loaded.batch, &args.output)
            .with_context(|| format!("writing {}", args.output.display()))?;
    }
    if let Some(path) = &args.manifest_output {
        std::fs::write(path, &manifest_text)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let rows = csv.lines().count().saturating_sub(1);
    eprintln!(
        "wrote {rows} rows of competition {id}'s development data to {}",
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Fits MST to the files, samples, writes; returns what to print.
fn write_synthetic(args: &SynthArgs) -> anyhow::Result<String> {
    use medarena_datasets_spec::load_with_manifest;
    let manifest = Manifest::from_path(&args.manifest)?;
    let mut parts = Vec::new();
    let mut sites = Vec::new();
    for path in &args.data {
        let loaded = load_with_manifest(&manifest, path, &LoadOptions::default())
            .with_context(|| format!("loading {}", path.display()))?;
        let site = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("site")
            .to_owned();
        sites.push(site.clone());
        parts.push((site, loaded.batch));
    }
    let table = medarena_synth::site_table(&manifest, &parts)?;
    let (config, rho) = match args.epsilon {
        Some(epsilon) => medarena_arena::pipeline::synthetic::platform_settings(epsilon, sites)?,
        None => {
            let config = medarena_synth::SynthConfig {
                sites: Some(sites),
                ..medarena_synth::SynthConfig::default()
            };
            (config, args.rho)
        }
    };
    let measured = medarena_synth::fit(&manifest, &table, rho, &config)?;
    let rows = args.rows.unwrap_or(table.num_rows());
    let synthetic = medarena_synth::sample(&measured, &manifest, rows, args.seed)?;
    let quality = medarena_synth::quality(&measured, &manifest, &synthetic)?;
    write_table(&synthetic, &args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    if let Some(path) = &args.measurements {
        std::fs::write(path, serde_json::to_vec_pretty(&measured)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let name = |index: usize| {
        measured
            .columns
            .get(index)
            .map_or("?", |c| c.name.as_str())
            .to_owned()
    };
    let tree: Vec<String> = measured
        .tree
        .iter()
        .map(|&(a, b)| format!("{}–{}", name(a), name(b)))
        .collect();
    let privacy = &measured.privacy;
    Ok(format!(
        "measured {} rows of `{}`: ρ {:.4} of {} spent (ε {:.3} at δ {}), {} OpenDP measurements\n\
         tree     {}\n\
         quality  largest total variation distance to the noisy measurements: {:.4} (a column), \
         {:.4} (a tree pair)\n\
         wrote {rows} synthetic rows to {}\n",
        table.num_rows(),
        manifest.name,
        privacy.rho,
        privacy.rho_budget,
        privacy.epsilon,
        privacy.delta,
        measured.steps.len(),
        tree.join(", "),
        quality.max_column(),
        quality.max_tree_pair(),
        args.output.display()
    ))
}

#[cfg(test)]
mod synth_tests {
    use super::*;

    /// The survival example's two hospitals: synthetic rows that validate, measurements
    /// within ρ, a spanning tree over the modelled columns.
    #[test]
    fn synthetic_rows_from_the_example_files_validate_and_stay_within_rho() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../datasets-spec/examples/liver");
        let dir = tempfile::tempdir().unwrap();
        let args = SynthArgs {
            manifest: root.join("manifest.yaml"),
            data: vec![root.join("hospital-a.csv"), root.join("hospital-b.csv")],
            rho: 0.5,
            epsilon: None,
            rows: Some(2000),
            seed: 7,
            output: dir.path().join("synthetic.csv"),
            measurements: Some(dir.path().join("measurements.json")),
        };
        let summary = write_synthetic(&args).unwrap();
        assert!(summary.contains("measured 800 rows"), "{summary}");
        let measured: medarena_synth::Measurements =
            serde_json::from_slice(&std::fs::read(dir.path().join("measurements.json")).unwrap())
                .unwrap();
        assert!(
            measured.privacy.rho <= 0.5 + 1e-12,
            "{:?}",
            measured.privacy
        );
        assert_eq!(measured.tree.len() + 1, measured.columns.len());
        let manifest = Manifest::from_path(&args.manifest).unwrap();
        let report = validate_file(
            &manifest,
            &args.output,
            &LoadOptions::default(),
            &ValidationConfig::default(),
        )
        .unwrap();
        assert_eq!(report.rows, 2000);
        assert!(!report.has_errors(), "{}", report.to_text());
        // The same measurements and seed give the same rows, byte for byte.
        let again = medarena_synth::sample(&measured, &manifest, 2000, 7).unwrap();
        let again_path = dir.path().join("again.csv");
        write_table(&again, &again_path).unwrap();
        assert_eq!(
            std::fs::read(&again_path).unwrap(),
            std::fs::read(&args.output).unwrap()
        );
    }

    /// `--epsilon` spends as the platform does: at most that ε at δ = 1e-6, one row replaced.
    #[test]
    fn an_epsilon_budget_is_spent_as_the_platform_spends_it() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../datasets-spec/examples/heart");
        let dir = tempfile::tempdir().unwrap();
        let args = SynthArgs {
            manifest: root.join("manifest.yaml"),
            data: vec![root.join("hospital-a.csv")],
            rho: 1.0,
            epsilon: Some(2.0),
            rows: Some(300),
            seed: 1,
            output: dir.path().join("synthetic.parquet"),
            measurements: Some(dir.path().join("measurements.json")),
        };
        write_synthetic(&args).unwrap();
        let measured: medarena_synth::Measurements =
            serde_json::from_slice(&std::fs::read(dir.path().join("measurements.json")).unwrap())
                .unwrap();
        let privacy = &measured.privacy;
        assert!(
            privacy.epsilon <= 2.0 && privacy.epsilon > 1.99,
            "{privacy:?}"
        );
        assert_eq!(privacy.delta, 1e-6);
        assert_eq!(
            measured.config.adjacency,
            medarena_synth::Adjacency::Substitute
        );
    }
}
