//! The CLI as a client of a running server: `login`, `logout`, `whoami`,
//! `dataset upload` and `submit` (with a progress bar that waits for the result).
//!
//! `login` trades e-mail and password for a named API token (the session it signs in with
//! is revoked at once) and keeps `{server, token}` in the credentials file
//! (`$MEDARENA_CREDENTIALS`, else `$XDG_CONFIG_HOME/medarena/credentials.json`, else
//! `~/.config/medarena/credentials.json`; mode 0600). `MEDARENA_SERVER` and
//! `MEDARENA_TOKEN` override the file, for CI.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Credentials {
    server: String,
    token: String,
}

fn credentials_path() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("MEDARENA_CREDENTIALS") {
        return Ok(PathBuf::from(path));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .context("neither MEDARENA_CREDENTIALS, XDG_CONFIG_HOME nor HOME is set")?;
    Ok(config.join("medarena").join("credentials.json"))
}

fn save_credentials(credentials: &Credentials) -> anyhow::Result<PathBuf> {
    let path = credentials_path()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(credentials)?;
    write_private(&path, text.as_bytes())?;
    Ok(path)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn load_credentials() -> anyhow::Result<Credentials> {
    let env_server = std::env::var("MEDARENA_SERVER").ok();
    if let (Some(server), Ok(token)) = (&env_server, std::env::var("MEDARENA_TOKEN")) {
        return Ok(Credentials {
            server: server.clone(),
            token,
        });
    }
    let path = credentials_path()?;
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "not signed in ({} is missing): run `medarena login --server URL --email ...`",
            path.display()
        )
    })?;
    let mut credentials: Credentials = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a credentials file", path.display()))?;
    if let Some(server) = env_server {
        credentials.server = server;
    }
    Ok(credentials)
}

/// A medarena server: JSON in, JSON out, with the server's error message on failure.
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(server: &str, token: Option<String>) -> anyhow::Result<Client> {
        if !server.starts_with("http://") {
            bail!(
                "the server URL must start with http:// (this build has no TLS; put the platform behind a local proxy), got `{server}`"
            );
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(600)))
            .http_status_as_error(false)
            // A fresh connection per request: the server closes a connection whose request
            // body it refused unread, and a pooled one would then fail the next request.
            .max_idle_connections(0)
            .build();
        Ok(Client {
            base: server.trim_end_matches('/').to_owned(),
            token,
            agent: config.into(),
        })
    }

    pub fn signed_in() -> anyhow::Result<Client> {
        let credentials = load_credentials()?;
        Client::new(&credentials.server, Some(credentials.token))
    }

    /// Sends a request; returns the parsed JSON answer or the server's error.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> anyhow::Result<Value> {
        let text = self.request_text(method, path, body)?;
        Ok(if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        })
    }

    /// Sends a request; returns the answer's text or the server's error.
    fn request_text(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> anyhow::Result<String> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(token) = &self.token {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        let (content_type, bytes) = body.unwrap_or(("application/json", Vec::new()));
        let request = builder
            .header("Content-Type", content_type)
            .body(bytes)
            .with_context(|| format!("building {method} {url}"))?;
        let mut response = self
            .agent
            .run(request)
            .with_context(|| format!("{method} {url}: is the server running?"))?;
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(1024 * 1024 * 1024)
            .read_to_string()
            .with_context(|| format!("reading the answer to {method} {url}"))?;
        if status.is_success() {
            return Ok(text);
        }
        Err(ServerError {
            status: status.as_u16(),
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
        .into())
    }

    /// The server's address.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A text answer (CSV, YAML) as it is.
    pub fn get_text(&self, path: &str) -> anyhow::Result<String> {
        self.request_text("GET", path, None)
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.request("GET", path, None)
    }

    /// POST of a body in another format (a bundle's YAML).
    pub fn post_body(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<Value> {
        self.request("POST", path, Some((content_type, body)))
    }

    pub fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.request(
            "POST",
            path,
            Some(("application/json", serde_json::to_vec(body)?)),
        )
    }
}

/// A competition's development data (CSV) and its manifest's text, `rows` and `seed` the
/// server's defaults (the dummy run's) when `None`.
pub fn development_data(
    client: &Client,
    competition: i64,
    rows: Option<usize>,
    seed: Option<u64>,
) -> anyhow::Result<(String, String)> {
    let query: Vec<String> = [
        rows.map(|rows| format!("rows={rows}")),
        seed.map(|seed| format!("seed={seed}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let path = format!(
        "/competitions/{competition}/development-data{}{}",
        if query.is_empty() { "" } else { "?" },
        query.join("&")
    );
    let csv = client.get_text(&path)?;
    let manifest = client.get_text(&format!("/competitions/{competition}/manifest"))?;
    Ok((csv, manifest))
}

/// A non-2xx answer, with the server's `{"error": {...}}` body.
#[derive(Debug)]
pub struct ServerError {
    pub status: u16,
    pub body: Value,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message = self
            .body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map_or_else(|| self.body.to_string(), str::to_owned);
        write!(f, "the server answered {}: {message}", self.status)?;
        // A refused bundle lists every field at fault.
        if let Some(issues) = self.body.pointer("/error/issues").and_then(Value::as_str)
            && !message.contains(issues)
        {
            write!(f, "\n{issues}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerError {}

/// A `multipart/form-data` body. ureq has no multipart builder; the format (RFC 7578) is
/// a few lines for named parts with a random boundary.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("medarena-{:032x}", rand_u128());
    let mut body = Vec::new();
    for (name, file_name, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file_name {
            Some(file) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n", file.replace('"', "_")).as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn rand_u128() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (u128::from(hasher.finish()) << 64) | u128::from(std::process::id())
}

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The server, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "MEDARENA_SERVER")]
    server: String,
    #[arg(long)]
    email: String,
    /// Read from MEDARENA_PASSWORD, else asked for without echo.
    #[arg(long, env = "MEDARENA_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Token lifetime in days (the server caps it).
    #[arg(long)]
    days: Option<u64>,
}

pub fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let password = match args.password {
        Some(password) => password,
        None => rpassword::prompt_password(format!("Password for {}: ", args.email))
            .context("reading the password")?,
    };
    let anonymous = Client::new(&args.server, None)?;
    let session = anonymous.post_json(
        "/auth/login",
        &json!({ "email": args.email, "password": password }),
    )?;
    let session_token = session["token"]
        .as_str()
        .context("the server sent no token")?
        .to_owned();
    let as_session = Client::new(&args.server, Some(session_token))?;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "this machine".to_owned());
    let token = as_session.post_json(
        "/auth/tokens",
        &json!({ "name": format!("medarena CLI on {host}"), "days": args.days }),
    )?;
    let _ = as_session.request("POST", "/auth/logout", None);
    let credentials = Credentials {
        server: args.server.trim_end_matches('/').to_owned(),
        token: token["token"]
            .as_str()
            .context("the server sent no API token")?
            .to_owned(),
    };
    let path = save_credentials(&credentials)?;
    println!(
        "signed in as {}; API token expires {}; kept in {}",
        args.email,
        token
            .pointer("/credential/expires_at")
            .and_then(Value::as_u64)
            .map_or_else(
                || "at an unknown time".to_owned(),
                |millis| {
                    let at = std::time::UNIX_EPOCH + Duration::from_millis(millis);
                    humantime::format_rfc3339_seconds(at).to_string()
                }
            ),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn logout() -> anyhow::Result<ExitCode> {
    let client = Client::signed_in()?;
    client.request("POST", "/auth/logout", None)?;
    let path = credentials_path()?;
    if path.exists() {
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    println!("signed out; the API token is revoked");
    Ok(ExitCode::SUCCESS)
}

pub fn whoami() -> anyhow::Result<ExitCode> {
    let me = Client::signed_in()?.get("/me")?;
    let account = &me["account"];
    println!(
        "{} <{}>, {}",
        account["display_name"].as_str().unwrap_or("?"),
        account["email"].as_str().unwrap_or("?"),
        account["role"].as_str().unwrap_or("?")
    );
    if let Some(org) = me.get("organization").filter(|o| !o.is_null()) {
        println!(
            "organization: {} ({}), admission {}{}",
            org["name"].as_str().unwrap_or("?"),
            org["kind"].as_str().unwrap_or("?"),
            org["admission"].as_str().unwrap_or("?"),
            org["tier"]
                .as_str()
                .map_or_else(String::new, |t| format!(", tier {t}"))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A competition or dataset by numeric id or slug.
pub fn resolve(client: &Client, collection: &str, wanted: &str) -> anyhow::Result<i64> {
    if let Ok(id) = wanted.parse::<i64>() {
        return Ok(id);
    }
    let items = client.get(&format!("/{collection}"))?;
    items
        .as_array()
        .into_iter()
        .flatten()
        .find(|item| {
            item["slug"] == wanted || item.pointer("/bundle/slug").is_some_and(|s| s == wanted)
        })
        .and_then(|item| item["id"].as_i64())
        .with_context(|| format!("no {collection} with id or slug `{wanted}`"))
}

#[derive(Debug, clap::Args)]
pub struct UploadArgs {
    /// The dataset (id or slug).
    #[arg(long)]
    dataset: String,
    /// Create the dataset with this title first, when it does not exist.
    #[arg(long)]
    create: Option<String>,
    /// The dataset manifest (YAML or JSON).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// The table: CSV, Parquet or Arrow IPC.
    data: PathBuf,
    /// Print the server's answer as JSON.
    #[arg(long)]
    json: bool,
}

fn print_report(report: &Value) {
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    if findings.is_empty() {
        println!("  no findings");
    }
    for f in findings {
        println!(
            "  {:<7} {:<28} {:<20} {} row(s){}  {}",
            f["severity"].as_str().unwrap_or("?"),
            f["rule"].as_str().unwrap_or("?"),
            f["column"].as_str().unwrap_or("-"),
            f["rows"],
            f["row_numbers"]
                .as_array()
                .filter(|r| !r.is_empty())
                .map_or_else(String::new, |r| format!(
                    " (first: {})",
                    r.iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            f["message"].as_str().unwrap_or("")
        );
    }
}

pub fn upload(args: UploadArgs) -> anyhow::Result<ExitCode> {
    let client = Client::signed_in()?;
    let dataset = match (resolve(&client, "datasets", &args.dataset), &args.create) {
        (Ok(id), _) => id,
        (Err(_), Some(title)) => client.post_json(
            "/datasets",
            &json!({ "slug": args.dataset, "title": title }),
        )?["id"]
            .as_i64()
            .context("the server did not return the new dataset's id")?,
        (Err(err), None) => return Err(err.context("pass --create TITLE to open it")),
    };
    let data =
        std::fs::read(&args.data).with_context(|| format!("reading {}", args.data.display()))?;
    let manifest = args
        .manifest
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let file_name = args
        .data
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parts: Vec<(&str, Option<&str>, &[u8])> =
        vec![("data", Some(file_name.as_str()), &data)];
    if let Some(manifest) = &manifest {
        parts.push(("manifest", Some("manifest"), manifest));
    }
    let (content_type, body) = multipart(&parts);
    let bar = indicatif::ProgressBar::new_spinner().with_message(format!(
        "uploading {} ({} bytes) and validating",
        args.data.display(),
        data.len()
    ));
    bar.enable_steady_tick(Duration::from_millis(120));
    let answer = client.request(
        "POST",
        &format!("/datasets/{dataset}/contributions"),
        Some((&content_type, body)),
    );
    bar.finish_and_clear();
    match answer {
        Ok(contribution) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&contribution)?);
            } else {
                println!(
                    "accepted: contribution {} to dataset {dataset}, {} rows, state {}, SHA-256 {}",
                    contribution["id"],
                    contribution["rows"],
                    contribution["state"].as_str().unwrap_or("?"),
                    contribution["content_sha256"].as_str().unwrap_or("?")
                );
                print_report(&contribution["report"]);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => match err.downcast::<ServerError>() {
            Ok(server) if server.body.pointer("/error/report").is_some() => {
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&server.body)?);
                } else {
                    eprintln!(
                        "refused: {} was not kept; the validation report:",
                        args.data.display()
                    );
                    print_report(&server.body["error"]["report"]);
                }
                Ok(ExitCode::from(1))
            }
            Ok(server) => Err(server.into()),
            Err(other) => Err(other),
        },
    }
}

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// The competition (id or slug).
    #[arg(long)]
    competition: String,
    /// The WebAssembly module.
    module: PathBuf,
    /// Accept the competition's data-use agreement for your team first (prints it).
    #[arg(long)]
    accept_agreement: bool,
    /// Return once queued instead of waiting for the result.
    #[arg(long)]
    no_wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
    /// Print the final submission as JSON.
    #[arg(long)]
    json: bool,
}

pub fn submit(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let client = Client::signed_in()?;
    let competition = resolve(&client, "competitions", &args.competition)?;
    if args.accept_agreement {
        let agreement = client.get(&format!("/competitions/{competition}/agreement"))?;
        let accepted = agreement
            .pointer("/acceptance/agreement_sha256")
            .is_some_and(|sha| *sha == agreement["sha256"]);
        if accepted {
            println!("your team has already accepted this competition's data-use agreement");
        } else {
            println!(
                "Data-use agreement:\n{}\n",
                agreement["text"].as_str().unwrap_or("")
            );
            client.post_json(
                &format!("/competitions/{competition}/agreement"),
                &json!({ "agreement_sha256": agreement["sha256"] }),
            )?;
            println!("accepted for your team");
        }
    }
    let module = std::fs::read(&args.module)
        .with_context(|| format!("reading {}", args.module.display()))?;
    let submitted = client.request(
        "POST",
        &format!("/competitions/{competition}/submissions"),
        Some(("application/wasm", module)),
    )?;
    let id = submitted["id"]
        .as_i64()
        .context("the server sent no submission id")?;
    println!(
        "submission {id} queued (module SHA-256 {})",
        submitted["module_sha256"].as_str().unwrap_or("?")
    );
    if args.no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(120));
    let started = Instant::now();
    let finished = loop {
        let view = client.get(&format!("/submissions/{id}"))?;
        let status = view["status"].as_str().unwrap_or("?").to_owned();
        // A real-data run shows as queued until its release time, whatever it does.
        let release = view["release_at"]
            .as_i64()
            .filter(|_| status == "queued_real")
            .map_or_else(String::new, |at| {
                format!(
                    ", released at {}",
                    medarena_arena::Timestamp(at).to_rfc3339()
                )
            });
        bar.set_message(format!(
            "submission {id}: {status}{release} ({}s)",
            started.elapsed().as_secs()
        ));
        if status == "completed" || status == "failed" {
            break view;
        }
        if started.elapsed() > Duration::from_secs(args.timeout) {
            bar.finish_and_clear();
            bail!(
                "submission {id} still `{status}` after {}s; check later with the web page",
                args.timeout
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    bar.finish_and_clear();
    let report = client
        .get(&format!("/submissions/{id}/dummy-report"))
        .unwrap_or(Value::Null);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "submission": finished, "dummy_run": report }))?
        );
    } else {
        let score = |v: &Value| {
            v.as_f64()
                .map_or_else(|| "—".to_owned(), |s| format!("{s:.4}"))
        };
        let interval = finished["noise_half_width_95"]
            .as_f64()
            .map_or_else(String::new, |h| format!(" ± {h:.4} (95% noise interval)"));
        println!(
            "submission {id}: {} (outcome {})\n  dummy-data score: {}\n  public score (released, noisy): {}{interval}",
            finished["status"].as_str().unwrap_or("?"),
            finished["outcome"].as_str().unwrap_or("?"),
            score(&finished["dummy_score"]),
            score(&finished["released_public_score"]),
        );
        if let Some(detail) = report["failure_detail"].as_str() {
            println!("  dummy run failure: {detail}");
        }
        if let Some(log) = report["guest_log"].as_str().filter(|l| !l.is_empty()) {
            println!("  guest output (dummy run):\n{log}");
        }
    }
    Ok(if finished["status"] == "completed" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
