//! Helpers for the end-to-end tests in `tests/tests/`: they run the real `medarena` binary
//! (`serve`, `admin`, `login`, `dataset upload`, `submit`, `ledger verify`) on a fresh data
//! directory and talk to it over real HTTP, as a hospital, a team and an organizer would.
//!
//! The binary is `target/<profile>/medarena`, next to the test executable's `deps/`
//! directory (or `$MEDARENA_BIN`). `cargo test --workspace` builds it before running any
//! test; to run these tests alone with a fresh binary, build it first:
//! `cargo build -p medarena-cli && cargo test -p medarena-tests`. A missing binary is built here.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Every account's password in these tests.
pub const PASSWORD: &str = "e2e passphrase that is long enough";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The `medarena` binary (built on demand, see the crate docs).
pub fn medarena_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("MEDARENA_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let bin = profile_dir.join("medarena");
    if !bin.exists() {
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo.args(["build", "-p", "medarena-cli", "--bin", "medarena"]);
        if release {
            cargo.arg("--release");
        }
        let status = cargo
            .current_dir(repo_root())
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building the medarena binary failed");
    }
    bin
}

/// `medarena ARGS` with extra environment; returns the output.
pub fn medarena(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(medarena_bin());
    command.args(args).stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("running medarena")
}

/// Output as text, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asks a child process to stop (SIGTERM), as a service manager does, and waits for it.
fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    child.wait().expect("waiting for the child process")
}

/// A running `medarena serve` on a data directory.
pub struct Server {
    pub base: String,
    pub data_dir: PathBuf,
    child: Child,
    log: PathBuf,
}

impl Server {
    /// Starts `medarena serve --listen 127.0.0.1:0` with extra flags and waits for it to
    /// listen (the demo seeding can take a while).
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_with_env(data_dir, extra, &[])
    }

    /// [`Server::start`] with extra environment variables.
    pub fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_in(None, data_dir, extra, env)
    }

    /// [`Server::start_with_env`] inside a network namespace (`ip netns exec`), as on a
    /// host of its own.
    pub fn start_in(
        namespace: Option<&str>,
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let log = data_dir.with_extension(format!("serve-{}.log", std::process::id()));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("server log file");
        let mut child = medarena_command(namespace)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            // Loopback unless the caller names an address (a namespace's own).
            .args(if extra.contains(&"--listen") {
                &[][..]
            } else {
                &["--listen", "127.0.0.1:0"][..]
            })
            .args(extra)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("starting medarena serve");
        let stdout = child.stdout.take().expect("server stdout");
        let (found, address) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("medarena listening on ") {
                    let _ = found.send(url.trim().to_owned());
                }
            }
        });
        let base = match address.recv_timeout(Duration::from_secs(300)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "medarena serve did not start; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        Server {
            base,
            data_dir: data_dir.to_path_buf(),
            child,
            log,
        }
    }

    /// Kills the process at once (SIGKILL): a crash.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the process to stop (SIGTERM) and waits for it.
    pub fn stop(mut self) -> std::process::ExitStatus {
        terminate(&mut self.child)
    }

    /// The server's log so far (stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn client(&self, token: Option<&str>) -> Client {
        Client::new(&self.base, token)
    }

    /// Signs in and returns a client with the session token.
    pub fn sign_in(&self, email: &str) -> Client {
        let answer = self.client(None).post(
            "/api/v1/auth/login",
            &json!({ "email": email, "password": PASSWORD }),
        );
        assert_eq!(answer.status, 200, "login {email}: {}", answer.text);
        let token = answer.json["token"].as_str().expect("token").to_owned();
        self.client(Some(&token))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub text: String,
    pub json: Value,
}

/// A bearer-token client over real HTTP.
pub struct Client {
    base: String,
    pub token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(base: &str, token: Option<&str>) -> Client {
        Client {
            base: base.to_owned(),
            token: token.map(str::to_owned),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                // A fresh connection per request: the server closes a connection whose request
                // body it refused unread, and a pooled one would then fail the next request.
                .max_idle_connections(0)
                .timeout_global(Some(Duration::from_secs(120)))
                .build()
                .into(),
        }
    }

    pub fn send(&self, method: &str, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Content-Type", content_type);
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = self
            .agent
            .run(request.body(body).expect("request"))
            .unwrap_or_else(|err| panic!("{method} {path}: {err}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, text, json }
    }

    pub fn get(&self, path: &str) -> Answer {
        self.send("GET", path, "application/json", Vec::new())
    }

    /// Submits a module to a competition; it must be accepted. Returns the submission id.
    pub fn submit(&self, competition: i64, module: Vec<u8>) -> i64 {
        let answer = self.send(
            "POST",
            &format!("/api/v1/competitions/{competition}/submissions"),
            "application/wasm",
            module,
        );
        assert_eq!(answer.status, 201, "submit: {}", answer.text);
        answer.json["id"].as_i64().expect("submission id")
    }

    pub fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(
            "POST",
            path,
            "application/json",
            serde_json::to_vec(body).expect("json"),
        )
    }

    /// GET that must succeed; returns the JSON.
    pub fn ok(&self, path: &str) -> Value {
        let answer = self.get(path);
        assert!(
            (200..300).contains(&answer.status),
            "GET {path}: {} {}",
            answer.status,
            answer.text
        );
        answer.json
    }

    /// POST that must succeed; returns the JSON.
    pub fn done(&self, path: &str, body: &Value) -> Value {
        let answer = self.post(path, body);
        assert!(
            (200..300).contains(&answer.status),
            "POST {path}: {} {}",
            answer.status,
            answer.text
        );
        answer.json
    }
}

/// Polls `check` every 200 ms until it returns `Some`, or panics with `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Creates the first organizer with `medarena admin create-organizer` (before `serve`).
pub fn create_organizer(data_dir: &Path, email: &str) {
    create_organizer_with(data_dir, email, &[], &[]);
}

/// [`create_organizer`] with extra flags (`--database URL`).
pub fn create_organizer_with(data_dir: &Path, email: &str, extra: &[&str], env: &[(&str, &str)]) {
    let dir = data_dir.to_string_lossy();
    let mut args = vec![
        "admin",
        "create-organizer",
        "--data-dir",
        &dir,
        "--email",
        email,
        "--name",
        "Organizer",
    ];
    args.extend_from_slice(extra);
    let mut env = env.to_vec();
    env.push(("MEDARENA_PASSWORD", PASSWORD));
    let output = medarena(&args, &env);
    assert!(
        output.status.success(),
        "create-organizer: {}",
        describe(&output)
    );
}

/// Registers an account of `role`, applies as organization `name`, and has the organizer
/// approve it (teams at `tier`). Returns the member's signed-in client.
pub fn admitted(
    server: &Server,
    organizer: &Client,
    email: &str,
    role: &str,
    name: &str,
    tier: Option<&str>,
) -> Client {
    server.client(None).done(
        "/api/v1/accounts",
        &json!({ "email": email, "display_name": name, "password": PASSWORD, "role": role }),
    );
    let member = server.sign_in(email);
    let org = member.done(
        "/api/v1/applications",
        &json!({ "name": name, "statement": "taking part in the e2e test" }),
    );
    let org_id = org["id"].as_i64().expect("organization id");
    organizer.done(
        &format!("/api/v1/applications/{org_id}/review"),
        &json!({ "decision": "approve", "tier": tier }),
    );
    member
}

/// The example dataset's manifest and one hospital's rows.
pub fn heart_example(file: &str) -> PathBuf {
    repo_root().join("datasets-spec/examples/heart").join(file)
}

/// A prebuilt example submission (`guest/prebuilt/<name>.wasm`).
pub fn example_module(name: &str) -> PathBuf {
    repo_root()
        .join("guest/prebuilt")
        .join(format!("{name}.wasm"))
}

/// The example competition with its public phase open now, sized for the committed example
/// data (1080 rows): 4 blocks, compilation within 5 s, results released as soon as the
/// worst case of a run allows (5 + 4 × 1 + 5 = 14 s after a real run is queued).
pub fn open_bundle_yaml() -> String {
    open_bundle_with(|_| {})
}

/// [`open_bundle_yaml`] changed by `edit`; the release delay follows the edited limits.
pub fn open_bundle_with(edit: impl FnOnce(&mut medarena_arena::Bundle)) -> String {
    let yaml = medarena_arena::demo::demo_bundle_yaml(chrono::DateTime::<chrono::Utc>::from(
        std::time::SystemTime::now(),
    ))
    .expect("demo bundle");
    let mut bundle = medarena_arena::Bundle::from_yaml(&yaml).expect("the demo bundle");
    bundle.privacy.blocks = Some(4);
    bundle.sandbox.compile_timeout_seconds = 5;
    edit(&mut bundle);
    bundle.privacy.release_delay_seconds = u32::try_from(bundle.worst_case_run_seconds()).ok();
    bundle.to_yaml().expect("yaml")
}

/// The environment that makes the CLI use its own credentials file and server.
pub fn cli_env(credentials: &Path) -> Vec<(&'static str, String)> {
    vec![(
        "MEDARENA_CREDENTIALS",
        credentials.to_string_lossy().into_owned(),
    )]
}

/// Borrows an environment list for [`medarena`].
pub fn env_refs<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// [`cli_env`] plus the password, for `medarena login`.
pub fn login_env(credentials: &Path) -> Vec<(&'static str, String)> {
    let mut env = cli_env(credentials);
    env.push(("MEDARENA_PASSWORD", PASSWORD.to_owned()));
    env
}

/// A `multipart/form-data` body of named parts (file parts have a file name).
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "medarena-e2e-boundary-5b2e";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let disposition = match file {
            Some(file) => format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\r\n"
            ),
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Through the API: a hospital uploads both example files, the organizer approves the
/// dataset and creates a competition from `bundle_yaml`. Returns the competition's id.
pub fn open_competition(server: &Server, organizer: &Client, bundle_yaml: &str) -> i64 {
    let files: Vec<(&str, Vec<u8>)> = ["hospital-a.csv", "hospital-b.csv"]
        .into_iter()
        .map(|file| {
            (
                file,
                std::fs::read(heart_example(file)).expect("example rows"),
            )
        })
        .collect();
    open_competition_with(server, organizer, bundle_yaml, &files)
}

/// [`open_competition`] with these files (name, bytes) as the hospital's uploads.
pub fn open_competition_with(
    server: &Server,
    organizer: &Client,
    bundle_yaml: &str,
    files: &[(&str, Vec<u8>)],
) -> i64 {
    let hospital = admitted(
        server,
        organizer,
        "staff@hospital.test",
        "hospital",
        "Hospital",
        None,
    );
    let dataset = hospital.done(
        "/api/v1/datasets",
        &json!({ "slug": "cardiac-events", "title": "Cardiac events" }),
    );
    let dataset_id = dataset["id"].as_i64().expect("dataset id");
    let manifest = std::fs::read(heart_example("manifest.yaml")).expect("manifest");
    for (file, data) in files {
        let (content_type, body) = multipart(&[
            ("manifest", Some("manifest.yaml"), &manifest),
            ("data", Some(file), data),
        ]);
        let answer = hospital.send(
            "POST",
            &format!("/api/v1/datasets/{dataset_id}/contributions"),
            &content_type,
            body,
        );
        assert_eq!(answer.status, 201, "upload {file}: {}", answer.text);
    }
    let competition = approve_and_create_competition(organizer, dataset_id, bundle_yaml)["id"]
        .as_i64()
        .expect("competition id");
    open_offer(organizer, &[&hospital], competition);
    competition
}

/// The organizer proposes an open contract offer on the competition's own terms; the
/// platform and `hospitals` accept it (teams accept it in [`team`]). Returns the contract.
pub fn open_offer(organizer: &Client, hospitals: &[&Client], competition: i64) -> Value {
    let contract = organizer.done("/api/v1/contracts", &json!({ "competition": competition }));
    let id = contract["id"].as_i64().expect("contract id");
    for party in std::iter::once(organizer).chain(hospitals.iter().copied()) {
        party.done(
            &format!("/api/v1/contracts/{id}/accept"),
            &json!({ "terms_sha256": contract["terms_sha256"] }),
        );
    }
    organizer.ok(&format!("/api/v1/contracts/{id}"))
}

/// The team accepts every active open offer of the competition.
pub fn accept_open_offers(team: &Client, competition: i64) {
    let contracts = team.ok(&format!("/api/v1/contracts?competition={competition}"));
    for contract in contracts.as_array().into_iter().flatten() {
        if contract["state"] == "active" && contract["terms"]["team"].is_null() {
            team.done(
                &format!("/api/v1/contracts/{}/accept", contract["id"]),
                &json!({ "terms_sha256": contract["terms_sha256"] }),
            );
        }
    }
}

/// The organizer approves the dataset and creates a competition from `bundle_yaml`;
/// returns the competition.
pub fn approve_and_create_competition(
    organizer: &Client,
    dataset_id: i64,
    bundle_yaml: &str,
) -> Value {
    organizer.done(
        &format!("/api/v1/datasets/{dataset_id}/review"),
        &approval(),
    );
    let competition = organizer.send(
        "POST",
        "/api/v1/competitions",
        "application/yaml",
        bundle_yaml.as_bytes().to_vec(),
    );
    assert_eq!(competition.status, 201, "{}", competition.text);
    competition.json
}

/// The audit trail (as the organizer), once every event has reached the ledger.
pub fn delivered_audit_trail(organizer: &Client) -> Vec<Value> {
    wait_for(
        "every audit event delivered to the ledger",
        Duration::from_secs(30),
        || {
            let events = organizer.ok("/api/v1/audit?limit=1000");
            let events = events.as_array().cloned().unwrap_or_default();
            events
                .iter()
                .all(|e| e["evidence"].is_string())
                .then_some(events)
        },
    )
}

/// `medarena ledger verify --url` of one evidence code against the server; asserts it passes.
pub fn verify_online(server: &Server, code: &str, what: &str) {
    let verified = medarena(
        &[
            "ledger",
            "verify",
            "--url",
            &server.base,
            "--evidence",
            code,
        ],
        &[],
    );
    assert!(verified.status.success(), "{what}: {}", describe(&verified));
}

/// An admitted real-data team that accepted the competition's agreement.
pub fn team(server: &Server, organizer: &Client, name: &str, competition: i64) -> Client {
    let email = format!("member@{}.test", name.to_lowercase().replace(' ', "-"));
    let team = admitted(
        server,
        organizer,
        &email,
        "team_member",
        name,
        Some("real_data"),
    );
    let agreement = team.ok(&format!("/api/v1/competitions/{competition}/agreement"));
    team.done(
        &format!("/api/v1/competitions/{competition}/agreement"),
        &json!({ "agreement_sha256": agreement["sha256"] }),
    );
    accept_open_offers(&team, competition);
    team
}

/// `medarena`, or `ip netns exec NS medarena` (which execs it: the child is medarena).
fn medarena_command(namespace: Option<&str>) -> Command {
    match namespace {
        Some(namespace) => {
            let mut command = Command::new("ip");
            command
                .args(["netns", "exec", namespace])
                .arg(medarena_bin());
            command
        }
        None => Command::new(medarena_bin()),
    }
}

/// A running `medarena worker`, killed when dropped.
pub struct Worker {
    child: Child,
}

impl Worker {
    /// Starts `medarena worker --data-dir DIR` with extra flags and waits for it to run.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Worker {
        Self::start_with_env(data_dir, extra, &[])
    }

    /// [`Worker::start`] with extra environment variables.
    pub fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Worker {
        Self::start_in(None, data_dir, extra, env)
    }

    /// [`Worker::start_with_env`] inside a network namespace, as on a host of its own.
    pub fn start_in(
        namespace: Option<&str>,
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Worker {
        let mut child = medarena_command(namespace)
            .arg("worker")
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting medarena worker");
        let stdout = child.stdout.take().expect("worker stdout");
        let (ready, running) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("medarena worker running") {
                    let _ = ready.send(());
                }
            }
        });
        if running.recv_timeout(Duration::from_secs(120)).is_err() {
            let _ = child.kill();
            panic!("medarena worker did not start");
        }
        Worker { child }
    }

    /// Asks the worker to stop (SIGTERM) and waits for it.
    pub fn stop(mut self) -> std::process::ExitStatus {
        terminate(&mut self.child)
    }

    /// Kills the process at once (SIGKILL): the host is lost.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A review that passes every item of the legality and compliance checklist.
pub fn approval() -> Value {
    let checklist: Vec<Value> = [
        "ethics_approval",
        "legal_basis",
        "consent",
        "deidentification",
        "permitted_uses",
    ]
    .into_iter()
    .map(|item| json!({ "item": item, "passed": true, "note": "checked" }))
    .collect();
    json!({ "approve": true, "checklist": checklist })
}

/// The PostgreSQL server of the scale-out tests (`./scripts/test` sets it when one answers,
/// and fails when none does).
pub const POSTGRES_URL_ENV: &str = "MEDARENA_TEST_POSTGRES_URL";

/// A schema of its own on the test PostgreSQL server, dropped when the test ends.
pub struct PostgresSchema {
    server: String,
    schema: String,
    /// The URL that puts a deployment in this schema (`--database`).
    pub url: String,
}

impl PostgresSchema {
    /// `None` when no server is configured (the test then says it did not run).
    pub fn create(hint: &str) -> Option<PostgresSchema> {
        let server = std::env::var(POSTGRES_URL_ENV).ok()?;
        let schema = format!("medarena_e2e_{hint}_{}", std::process::id());
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{separator}options=-c%20search_path%3D{schema}");
        Some(PostgresSchema {
            server,
            schema,
            url,
        })
    }

    /// Runs one statement on the server (outside the schema's search path).
    pub fn execute(&self, sql: &str) -> Result<(), String> {
        let server = self.server.clone();
        let sql = sql.to_owned();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| err.to_string())?;
        runtime.block_on(async move {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&server)
                .await
                .map_err(|err| err.to_string())?;
            sqlx::query(&sql)
                .execute(&mut conn)
                .await
                .map(|_| ())
                .map_err(|err| err.to_string())
        })
    }
}

impl Drop for PostgresSchema {
    fn drop(&mut self) {
        if let Err(err) = self.execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema)) {
            eprintln!("dropping test schema {}: {err}", self.schema);
        }
    }
}

/// The shared storage of a scale-out deployment for one test: a PostgreSQL schema of its
/// own (dropped after) and an object location on the test S3 server.
pub struct ScaleOut {
    pub schema: PostgresSchema,
    /// `s3://bucket/<hint>-<pid>`.
    pub objects: String,
}

impl ScaleOut {
    /// `None`, after saying why, when the test servers are not configured (`./scripts/test`
    /// configures both and fails when PostgreSQL is missing).
    pub fn create(hint: &str) -> Option<ScaleOut> {
        let Some(schema) = PostgresSchema::create(hint) else {
            eprintln!("not run: set {POSTGRES_URL_ENV} (./scripts/test does)");
            return None;
        };
        let Ok(s3) = std::env::var("MEDARENA_TEST_S3_URL") else {
            eprintln!("not run: set MEDARENA_TEST_S3_URL (./scripts/test does)");
            return None;
        };
        let objects = format!("{s3}/{hint}-{}", std::process::id());
        Some(ScaleOut { schema, objects })
    }
}
