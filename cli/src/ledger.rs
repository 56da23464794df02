//! `medarena ledger ...` (issue 5): verify receipts and checkpoints, offline or against a
//! running server, and let operators look into a ledger's data directory.
//!
//! `verify` prints one line per check (`ok` or `FAIL`) and exits 1 if any check failed;
//! unreadable inputs are errors (exit 2). The procedure is the one documented in the
//! `medarena-ledger` crate docs; the server paths used by `--url` are listed there too.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use medarena_ledger::{
    ConsistencyProof, EvidenceCode, Ledger, Receipt, SignedCheckpoint, VerifierKey,
    verify_checkpoint_consistency,
};

#[derive(Debug, clap::Subcommand)]
pub enum LedgerCommand {
    /// Check receipts and checkpoints: signatures, inclusion, and consistency.
    ///
    /// Offline: `--key` and `--receipt` (and optionally a later `--checkpoint` with a
    /// `--consistency` proof), or two `--checkpoint`s and a `--consistency` proof.
    /// Online: `--url` of a server fetches the latest checkpoint, receipts by
    /// `--evidence` code and the consistency proofs it needs.
    Verify(VerifyArgs),
    /// Show a ledger's checkpoint, key and entries (operators; the server must be stopped).
    Inspect(InspectArgs),
    /// Write the receipt of an entry of a local ledger as JSON (operators).
    Receipt(ReceiptArgs),
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The log's public key: a file holding it, or the verifier key itself
    /// (`name+keyid+base64`). Get it from a source you trust, not from the server alone.
    #[arg(long)]
    key: Option<String>,
    /// A receipt JSON file.
    #[arg(long)]
    receipt: Option<PathBuf>,
    /// A signed checkpoint file (up to two).
    #[arg(long = "checkpoint", num_args = 1)]
    checkpoints: Vec<PathBuf>,
    /// A consistency proof JSON file linking two checkpoints of different sizes.
    #[arg(long)]
    consistency: Option<PathBuf>,
    /// Base URL of a running medarena server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    url: Option<String>,
    /// With --url: the evidence code of the entry whose receipt to fetch.
    #[arg(long)]
    evidence: Option<String>,
    /// A certificate JSON file (`GET /api/v1/certificates/{serial}`, `medarena certificate
    /// get`): checks its signature with --key and, when it embeds a receipt (or --receipt
    /// gives one), the ledger entry that anchors it. Any changed byte is refused.
    #[arg(long, conflicts_with_all = ["checkpoints", "consistency", "url", "evidence", "statement"])]
    certificate: Option<PathBuf>,
    /// With --url: a statement of metered use (JSON, from `medarena contract statement`):
    /// every line's `run_metered` entry is fetched, its receipt verified and its figures
    /// compared with the line; the totals are added up again.
    #[arg(long, conflicts_with_all = ["receipt", "evidence", "checkpoints", "consistency"])]
    statement: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The ledger's data directory.
    #[arg(long)]
    data_dir: PathBuf,
    /// First entry to show.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// How many entries to show.
    #[arg(long, default_value_t = 20)]
    limit: u64,
}

#[derive(Debug, clap::Args)]
pub struct ReceiptArgs {
    /// The ledger's data directory.
    #[arg(long)]
    data_dir: PathBuf,
    /// The entry, by evidence code.
    #[arg(long, conflicts_with = "index", required_unless_present = "index")]
    evidence: Option<String>,
    /// The entry, by index.
    #[arg(long)]
    index: Option<u64>,
}

pub fn run(command: LedgerCommand) -> anyhow::Result<ExitCode> {
    match command {
        LedgerCommand::Verify(args) => verify(args),
        LedgerCommand::Inspect(args) => inspect(args),
        LedgerCommand::Receipt(args) => receipt(args),
    }
}

/// Prints each check and counts failures.
#[derive(Default)]
struct Checks {
    failed: usize,
    passed: usize,
}

impl Checks {
    fn ok(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.passed += 1;
        println!("ok    {what}: {detail}");
    }

    fn fail(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.failed += 1;
        println!("FAIL  {what}: {detail}");
    }

    fn note(&self, what: &str, detail: impl std::fmt::Display) {
        println!("note  {what}: {detail}");
    }

    /// Records a check's outcome and returns its value when it passed.
    fn check<T, E: std::fmt::Display>(
        &mut self,
        what: &str,
        result: Result<T, E>,
        detail: impl FnOnce(&T) -> String,
    ) -> Option<T> {
        match result {
            Ok(value) => {
                self.ok(what, detail(&value));
                Some(value)
            }
            Err(error) => {
                self.fail(what, error);
                None
            }
        }
    }
}

fn read_text(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading the {what} {}", path.display()))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    serde_json::from_str(&read_text(path, what)?)
        .with_context(|| format!("{} is not a valid {what} (JSON)", path.display()))
}

/// `--key` is a file holding a verifier key, or the key itself.
fn load_key(argument: &str) -> anyhow::Result<VerifierKey> {
    let path = Path::new(argument);
    let text = if path.is_file() {
        read_text(path, "key file")?
    } else {
        argument.to_owned()
    };
    VerifierKey::parse(&text).with_context(|| {
        if path.is_file() {
            format!("{} does not hold a note verifier key", path.display())
        } else {
            format!("`{argument}` is neither a file nor a note verifier key")
        }
    })
}

/// The few GETs `--url` needs, with clear errors.
struct Server {
    base: String,
    agent: ureq::Agent,
}

impl Server {
    fn new(url: &str) -> anyhow::Result<Server> {
        if url.starts_with("https://") {
            bail!(
                "this build fetches over plain http only; download the checkpoint, key and receipt with another tool and verify them offline"
            );
        }
        if !url.starts_with("http://") {
            bail!("--url must start with http://, got `{url}`");
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(20)))
            .build();
        Ok(Server {
            base: url.trim_end_matches('/').to_owned(),
            agent: config.into(),
        })
    }

    fn get(&self, path: &str) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base);
        let mut response = self
            .agent
            .get(&url)
            .call()
            .with_context(|| format!("GET {url}"))?;
        response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading the answer to GET {url}"))
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let body = self.get(path)?;
        serde_json::from_str(&body)
            .with_context(|| format!("GET {}{path} did not answer the expected JSON", self.base))
    }
}

fn describe(checkpoint: &SignedCheckpoint) -> String {
    format!(
        "signed by {}, size {}, root {}",
        checkpoint.origin(),
        checkpoint.size(),
        checkpoint.root()
    )
}

/// Where the consistency proof between two checkpoints comes from.
enum ProofSource<'a> {
    File(Option<&'a ConsistencyProof>),
    Server(&'a Server),
}

fn check_consistency(
    checks: &mut Checks,
    what: &str,
    older: &SignedCheckpoint,
    newer: &SignedCheckpoint,
    source: &ProofSource<'_>,
) -> anyhow::Result<()> {
    let (small, large) = if older.size() <= newer.size() {
        (older, newer)
    } else {
        (newer, older)
    };
    let proof = if small.size() == large.size() || small.size() == 0 {
        None
    } else {
        match source {
            ProofSource::File(Some(proof)) => Some((*proof).clone()),
            ProofSource::File(None) => {
                checks.fail(
                    what,
                    format!(
                        "sizes {} and {} differ; pass --consistency with a proof from {} to {} (GET /api/ledger/consistency?from={}&to={})",
                        small.size(),
                        large.size(),
                        small.size(),
                        large.size(),
                        small.size(),
                        large.size()
                    ),
                );
                return Ok(());
            }
            ProofSource::Server(server) => {
                let path = format!(
                    "/api/ledger/consistency?from={}&to={}",
                    small.size(),
                    large.size()
                );
                match server.get_json::<ConsistencyProof>(&path) {
                    Ok(proof) => Some(proof),
                    Err(error) => {
                        checks.fail(
                            what,
                            format!("the server gave no consistency proof from size {} to {}: {error:#}", small.size(), large.size()),
                        );
                        return Ok(());
                    }
                }
            }
        }
    };
    checks.check(
        what,
        verify_checkpoint_consistency(small, large, proof.as_ref()),
        |_| {
            if small.size() == large.size() {
                format!(
                    "both checkpoints have size {} and root {}",
                    small.size(),
                    small.root()
                )
            } else {
                format!("size {} extends size {}", large.size(), small.size())
            }
        },
    );
    Ok(())
}

/// The three receipt checks; returns the receipt's checkpoint when its signature holds.
fn check_receipt(
    checks: &mut Checks,
    receipt: &Receipt,
    key: &VerifierKey,
) -> Option<SignedCheckpoint> {
    let checkpoint = checks.check(
        "receipt checkpoint signature",
        receipt.verify_checkpoint(key),
        describe,
    );
    checks.check("entry", receipt.verify_entry(), |entry| {
        format!(
            "canonical, index {}, {} by {} at {}, evidence code {}",
            entry.index,
            entry.event.kind(),
            entry.actor,
            entry.time,
            receipt.evidence_code
        )
    });
    if let Some(checkpoint) = &checkpoint {
        checks.check("inclusion", receipt.verify_inclusion(checkpoint), |_| {
            format!(
                "leaf {} is in the tree of size {} ({} proof hashes)",
                receipt.leaf_index,
                checkpoint.size(),
                receipt.inclusion_proof.len()
            )
        });
    }
    checkpoint
}

/// `verify --certificate`: one line per outcome; exit 1 when the certificate is refused.
fn verify_certificate(args: &VerifyArgs, path: &Path) -> anyhow::Result<ExitCode> {
    let Some(key) = args.key.as_deref() else {
        bail!(
            "--certificate needs --key: the platform's ledger key (GET /api/ledger/key, from a source you trust)"
        );
    };
    let key = load_key(key)?;
    let file = std::fs::read(path)
        .with_context(|| format!("reading the certificate {}", path.display()))?;
    let receipt: Option<Receipt> = args
        .receipt
        .as_deref()
        .map(|path| read_json(path, "receipt"))
        .transpose()?;
    let mut checks = Checks::default();
    match medarena_arena::certificate::verify(&file, &key, receipt.as_ref()) {
        Ok(verified) => {
            checks.ok(
                "certificate",
                format!(
                    "{} certificate {} signed by {}, body sha256 {}, byte for byte as issued",
                    verified.kind,
                    verified.serial,
                    key.name(),
                    verified.body_sha256
                ),
            );
            match &verified.anchored_at {
                Some((index, evidence)) => checks.ok(
                    "anchor",
                    format!(
                        "ledger entry {index} ({}) records this certificate's body sha256; evidence code {evidence}",
                        medarena_arena::certificate::ANCHOR_KIND
                    ),
                ),
                None => checks.note(
                    "anchor",
                    match &verified.document.anchor {
                        Some(anchor) => format!(
                            "no receipt embedded; fetch GET /api/ledger/receipts/{} and pass it with --receipt to check inclusion",
                            anchor.evidence_code
                        ),
                        None => "not yet anchored when downloaded (download it again later to check inclusion)".to_owned(),
                    },
                ),
            }
        }
        Err(error) => checks.fail(&format!("certificate {}", path.display()), error),
    }
    Ok(if checks.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = args.certificate.clone() {
        return verify_certificate(&args, &path);
    }
    if args.checkpoints.len() > 2 {
        bail!("give at most two --checkpoint files");
    }
    if args.evidence.is_some() && args.url.is_none() {
        bail!("--evidence needs --url (offline, pass the receipt file with --receipt)");
    }
    let server = args.url.as_deref().map(Server::new).transpose()?;
    if server.is_none() && args.receipt.is_none() && args.checkpoints.is_empty() {
        bail!("nothing to verify: give --receipt, --checkpoint or --url");
    }
    let mut checks = Checks::default();
    let key = verifier_key(&mut checks, args.key.as_deref(), server.as_ref())?;
    if let Some(path) = &args.statement {
        let Some(server) = &server else {
            bail!("--statement needs --url: its lines' receipts come from the server");
        };
        verify_statement(&mut checks, path, server, &key)?;
        return Ok(summary(&checks));
    }

    let mut checkpoints = Vec::new();
    for path in &args.checkpoints {
        let text = read_text(path, "checkpoint")?;
        let what = format!("checkpoint {}", path.display());
        if let Some(checkpoint) =
            checks.check(&what, SignedCheckpoint::verify(&text, &key), describe)
        {
            checkpoints.push(checkpoint);
        }
    }

    let receipt: Option<Receipt> = match (&args.receipt, &args.evidence, &server) {
        (Some(path), _, _) => Some(read_json(path, "receipt")?),
        (None, Some(code), Some(server)) => {
            let code = EvidenceCode::parse(code)?;
            match server.get_json(&format!("/api/ledger/receipts/{code}")) {
                Ok(receipt) => Some(receipt),
                Err(error) => {
                    checks.fail("receipt", format!("{error:#}"));
                    None
                }
            }
        }
        _ => None,
    };
    let receipt_checkpoint = match &receipt {
        Some(receipt) => {
            if let Some(code) = &args.evidence {
                let matches = EvidenceCode::parse(code).ok() == Some(receipt.evidence_code);
                if !matches {
                    checks.fail(
                        "receipt",
                        format!("it is for {}, not {code}", receipt.evidence_code),
                    );
                }
            }
            check_receipt(&mut checks, receipt, &key)
        }
        None => None,
    };

    if let Some(server) = &server {
        let text = server.get("/api/ledger/checkpoint")?;
        let latest = checks.check(
            "server checkpoint",
            SignedCheckpoint::verify(&text, &key),
            describe,
        );
        if let Some(latest) = latest {
            let source = ProofSource::Server(server);
            if let Some(checkpoint) = &receipt_checkpoint {
                if checkpoint.size() > latest.size() {
                    checks.fail(
                        "consistency receipt -> server",
                        format!(
                            "the server's log (size {}) is smaller than the receipt's checkpoint (size {}): it was rolled back",
                            latest.size(),
                            checkpoint.size()
                        ),
                    );
                } else {
                    check_consistency(
                        &mut checks,
                        "consistency receipt -> server",
                        checkpoint,
                        &latest,
                        &source,
                    )?;
                }
            }
            for (checkpoint, path) in checkpoints.iter().zip(&args.checkpoints) {
                let what = format!("consistency {} -> server", path.display());
                if checkpoint.size() > latest.size() {
                    checks.fail(
                        &what,
                        format!(
                            "the server's log (size {}) is smaller than this checkpoint (size {}): it was rolled back",
                            latest.size(),
                            checkpoint.size()
                        ),
                    );
                } else {
                    check_consistency(&mut checks, &what, checkpoint, &latest, &source)?;
                }
            }
        }
    } else {
        let proof: Option<ConsistencyProof> = args
            .consistency
            .as_deref()
            .map(|path| read_json(path, "consistency proof"))
            .transpose()?;
        let source = ProofSource::File(proof.as_ref());
        match (&receipt_checkpoint, checkpoints.as_slice()) {
            (Some(receipt_checkpoint), [checkpoint]) => {
                check_consistency(
                    &mut checks,
                    "consistency receipt -> checkpoint",
                    receipt_checkpoint,
                    checkpoint,
                    &source,
                )?;
            }
            (None, [first, second]) => {
                check_consistency(&mut checks, "consistency", first, second, &source)?;
            }
            (Some(_), [_, _]) => bail!("with a receipt, give one --checkpoint to compare it with"),
            _ => {}
        }
    }

    Ok(summary(&checks))
}

/// Prints the count of checks; fails the process when one failed.
fn summary(checks: &Checks) -> ExitCode {
    println!("{} checks passed, {} failed", checks.passed, checks.failed);
    if checks.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Checks a statement of metered use line by line against the ledger (see `--statement`).
fn verify_statement(
    checks: &mut Checks,
    path: &Path,
    server: &Server,
    key: &VerifierKey,
) -> anyhow::Result<()> {
    let statement: medarena_arena::Statement = read_json(path, "statement")?;
    for line in &statement.lines {
        let what = format!("line {} (dataset {})", line.job, line.dataset);
        let Some(code) = &line.evidence else {
            checks.fail(&what, "no evidence code: not on the ledger yet");
            continue;
        };
        let code = EvidenceCode::parse(code)?;
        let receipt: Receipt = match server.get_json(&format!("/api/ledger/receipts/{code}")) {
            Ok(receipt) => receipt,
            Err(error) => {
                checks.fail(&what, format!("{error:#}"));
                continue;
            }
        };
        check_receipt(checks, &receipt, key);
        let Ok(entry) = receipt.verify_entry() else {
            continue;
        };
        let fields = match &entry.event {
            medarena_ledger::entry::Event::Extension(extension)
                if extension.kind() == "x.run_metered" =>
            {
                extension.fields()
            }
            other => {
                checks.fail(
                    &what,
                    format!("{code} is a {} entry, not run_metered", other.kind()),
                );
                continue;
            }
        };
        let field = |name: &str| fields.get(name).map(|v| v.as_str().to_owned());
        let expected = [
            ("contract", line.contract.0.to_string()),
            ("job", line.job.0.to_string()),
            ("dataset", line.dataset.0.to_string()),
            ("team", line.team.0.to_string()),
            ("cpu_seconds_billed", line.cpu_seconds_billed.to_string()),
            ("amount", line.amount.to_string()),
            ("currency", line.currency.clone()),
        ];
        let mut differences: Vec<String> = expected
            .iter()
            .filter(|(name, value)| field(name).as_deref() != Some(value.as_str()))
            .map(|(name, value)| {
                format!(
                    "{name} is {} on the ledger, {value} on the statement",
                    field(name).unwrap_or_else(|| "missing".to_owned())
                )
            })
            .collect();
        let ledger_epsilon = field("epsilon").and_then(|e| e.parse::<f64>().ok());
        if ledger_epsilon != Some(line.epsilon) {
            differences.push(format!(
                "epsilon is {ledger_epsilon:?} on the ledger, {} on the statement",
                line.epsilon
            ));
        }
        if differences.is_empty() {
            checks.ok(
                &what,
                format!(
                    "matches its ledger entry {} ({} {})",
                    entry.index, line.amount, line.currency
                ),
            );
        } else {
            checks.fail(&what, differences.join("; "));
        }
    }
    let totals = medarena_arena::statement_totals(&statement.lines);
    if totals == statement.totals {
        checks.ok(
            "totals",
            totals
                .iter()
                .map(|t| format!("{} {} over {} runs", t.amount, t.currency, t.runs))
                .collect::<Vec<_>>()
                .join(", "),
        );
    } else {
        checks.fail(
            "totals",
            format!(
                "the lines add up to {totals:?}, the statement says {:?}",
                statement.totals
            ),
        );
    }
    Ok(())
}

/// The key to verify with: the pinned one (checked against the server's, when there is
/// one), or the server's own, said so.
fn verifier_key(
    checks: &mut Checks,
    pinned: Option<&str>,
    server: Option<&Server>,
) -> anyhow::Result<VerifierKey> {
    let pinned = pinned.map(load_key).transpose()?;
    Ok(match (&pinned, server) {
        (Some(key), Some(server)) => {
            let served = server.get("/api/ledger/key")?;
            if served.trim() == key.as_str() {
                checks.ok(
                    "server key",
                    format!("the server publishes the pinned key {key}"),
                );
            } else {
                checks.fail(
                    "server key",
                    format!(
                        "the server publishes `{}`, not the pinned key {key}",
                        served.trim()
                    ),
                );
            }
            key.clone()
        }
        (Some(key), None) => key.clone(),
        (None, Some(server)) => {
            let served = server.get("/api/ledger/key")?;
            let key = VerifierKey::parse(&served).context("the server's /api/ledger/key")?;
            checks.note(
                "key",
                format!("trusting the server's own key {key}; pass --key to pin the published key"),
            );
            key
        }
        (None, None) => bail!("--key is required offline"),
    })
}

fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let (ledger, report) = Ledger::open_existing(&args.data_dir)
        .with_context(|| format!("opening the ledger in {}", args.data_dir.display()))?;
    if report.recovery.truncated_bytes > 0 {
        println!(
            "recovered: truncated a torn final append of {} bytes",
            report.recovery.truncated_bytes
        );
    }
    let audited = ledger.audit().context("auditing the stored entries")?;
    println!("origin      {}", ledger.origin());
    println!("key         {}", ledger.verifier_key());
    println!("entries     {audited} (all re-read and checked against the signed root)");
    println!("checkpoint\n{}", ledger.checkpoint().text());
    let to = args.from.saturating_add(args.limit).min(ledger.len());
    if args.from < to {
        for entry in ledger.entries(args.from, to)? {
            let code = ledger.receipt(entry.index)?.evidence_code;
            println!(
                "{:>8}  {}  {:<22} {:<24} {}",
                entry.index,
                entry.time,
                entry.event.kind(),
                entry.actor,
                code
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn receipt(args: ReceiptArgs) -> anyhow::Result<ExitCode> {
    let (ledger, _) = Ledger::open_existing(&args.data_dir)
        .with_context(|| format!("opening the ledger in {}", args.data_dir.display()))?;
    let receipt = match (&args.evidence, args.index) {
        (Some(code), _) => ledger.receipt_for(&EvidenceCode::parse(code)?)?,
        (None, Some(index)) => ledger.receipt(index)?,
        (None, None) => bail!("give --evidence or --index"),
    };
    println!("{}", serde_json::to_string_pretty(&receipt)?);
    Ok(ExitCode::SUCCESS)
}
