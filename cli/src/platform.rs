//! `medarena serve` (web server and workers), `medarena worker` (workers alone, against the
//! same database; on another host, with `--key-service` instead of the master key) and
//! `medarena admin create-organizer|migrate|copy-database|copy-objects|worker-token`.
//!
//! Configuration: flags, each with an environment variable (`MEDARENA_DATA_DIR`,
//! `MEDARENA_DATABASE_URL`, `MEDARENA_LISTEN`, `MEDARENA_WORKERS`, `MEDARENA_LEDGER_ORIGIN`,
//! and `MEDARENA_MASTER_KEY` for the master key), or a YAML file given by `--config` /
//! `MEDARENA_CONFIG` whose keys are the flags' long names (`data_dir`, `listen`, ...);
//! flags and environment win over the file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use medarena_arena::ledger_sink::{LedgerSink, open_ledger};
use medarena_arena::platform::PlatformConfig;
use medarena_arena::vault::KeyBroker;
use medarena_arena::{Arena, WorkerPool};
use medarena_ledger::SharedLedger;
use serde::Deserialize;

const DEFAULT_DATA_DIR: &str = "medarena-data";
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_ORIGIN: &str = "medarena.local/ledger";

/// Settings shared by `serve`, `worker` and `admin`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlatformArgs {
    /// YAML file with any of the settings below (snake_case keys).
    #[arg(long, env = "MEDARENA_CONFIG")]
    config: Option<PathBuf>,
    /// Everything the platform stores: SQLite database, encrypted objects, ledger, keys.
    #[arg(long, env = "MEDARENA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The database: unset for the embedded SQLite file in the data directory, or
    /// `postgres://user@host/db` (PostgreSQL, shared by every server and worker; a schema
    /// with `?options=-c%20search_path%3Dname`).
    #[arg(long, env = "MEDARENA_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
    /// Where encrypted objects live: unset for `objects/` in the data directory, or
    /// `s3://bucket/prefix` on S3-compatible storage (endpoint, region and credentials from
    /// `AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).
    #[arg(long, env = "MEDARENA_OBJECTS_URL")]
    objects: Option<String>,
    /// Jobs run at once by this process (`serve --workers 0`: web only, jobs run by
    /// `medarena worker` processes on the same data directory).
    #[arg(long, env = "MEDARENA_WORKERS")]
    workers: Option<usize>,
    /// The ledger's origin line (its name in checkpoints), fixed at first start.
    #[arg(long, env = "MEDARENA_LEDGER_ORIGIN")]
    ledger_origin: Option<String>,
    /// Seconds a worker's claim on a job lasts without a heartbeat: after a crash, the job
    /// is retried this long after its last heartbeat.
    #[arg(long, env = "MEDARENA_JOB_LEASE_SECS")]
    job_lease_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database: Option<String>,
    objects: Option<String>,
    listen: Option<String>,
    workers: Option<usize>,
    ledger_origin: Option<String>,
    job_lease_secs: Option<u64>,
}

/// The settings after flags, environment and file are merged.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    /// `None`: SQLite in the data directory.
    pub database: Option<String>,
    /// `None`: `objects/` in the data directory.
    pub objects: Option<String>,
    pub listen: String,
    pub workers: usize,
    pub ledger_origin: String,
    pub job_lease: Duration,
}

impl PlatformArgs {
    fn settings(&self, listen: Option<&str>) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                serde_norway::from_str::<FileConfig>(&text)
                    .with_context(|| format!("config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        Ok(Settings {
            data_dir: self
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            database: self
                .database
                .clone()
                .or(file.database)
                .map(|url| url.trim().to_owned())
                .filter(|url| !url.is_empty()),
            objects: self
                .objects
                .clone()
                .or(file.objects)
                .map(|url| url.trim().to_owned())
                .filter(|url| !url.is_empty()),
            listen: listen
                .map(str::to_owned)
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
            workers: self.workers.or(file.workers).unwrap_or(2),
            ledger_origin: self
                .ledger_origin
                .clone()
                .or(file.ledger_origin)
                .unwrap_or_else(|| DEFAULT_ORIGIN.to_owned()),
            job_lease: Duration::from_secs(
                self.job_lease_secs
                    .or(file.job_lease_secs)
                    .unwrap_or(60)
                    .max(2),
            ),
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    platform: PlatformArgs,
    /// Address to listen on.
    #[arg(long, env = "MEDARENA_LISTEN")]
    listen: Option<String>,
    /// Seed two complete demo competitions, binary and survival (public demo passwords: never
    /// with real data).
    #[arg(long)]
    demo: bool,
    /// Mark the session cookie Secure (when served behind HTTPS).
    #[arg(long, env = "MEDARENA_SECURE_COOKIES")]
    secure_cookies: bool,
    /// A token that lets Prometheus read `/metrics` (`Authorization: Bearer`); without it
    /// only organizers can. Metrics follow what real runs do: give it to operators only.
    #[arg(long, env = "MEDARENA_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    platform: PlatformArgs,
    /// A server host's address (`https://medarena.internal`): data keys come from its key
    /// service, one claimed job at a time, and this host needs no master key. Requires
    /// `MEDARENA_WORKER_TOKEN`.
    #[arg(long, env = "MEDARENA_KEY_SERVICE")]
    key_service: Option<String>,
    /// The token `medarena admin worker-token` prints on a server host.
    #[arg(long, env = "MEDARENA_WORKER_TOKEN", hide_env_values = true)]
    worker_token: Option<String>,
}

impl WorkerArgs {
    /// The key service client, when `--key-service` is given.
    fn key_broker(&self) -> anyhow::Result<Option<Arc<dyn KeyBroker>>> {
        let Some(server) = self.key_service.as_deref().filter(|s| !s.trim().is_empty()) else {
            return Ok(None);
        };
        let token = self.worker_token.as_deref().context(
            "--key-service needs the worker token in MEDARENA_WORKER_TOKEN (run `medarena \
             admin worker-token` on a server host)",
        )?;
        let broker = medarena_arena::key_client::HttpKeyBroker::new(server, token)
            .context("--key-service / MEDARENA_WORKER_TOKEN")?;
        Ok(Some(Arc::new(broker)))
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Create the first organizer account (only while none exists).
    CreateOrganizer {
        #[command(flatten)]
        platform: PlatformArgs,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// The password; read from MEDARENA_PASSWORD when not given.
        #[arg(long, env = "MEDARENA_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Apply the database's pending migrations and print its schema version (`serve` and
    /// `worker` also migrate at start; this does it ahead of a rollout).
    Migrate {
        #[command(flatten)]
        platform: PlatformArgs,
    },
    /// Copy every row of the embedded SQLite database into an empty PostgreSQL one (stop
    /// the server first; then start it with `--database` set to the target).
    CopyDatabase {
        #[command(flatten)]
        platform: PlatformArgs,
        /// The PostgreSQL database to fill (`postgres://...`).
        #[arg(long)]
        to: String,
    },
    /// Print the token worker hosts give the key service (`MEDARENA_WORKER_TOKEN` with
    /// `medarena worker --key-service`). Run it where the master key is; it is derived from
    /// that key, so rotating the master key changes it.
    WorkerToken {
        #[command(flatten)]
        platform: PlatformArgs,
    },
    /// Copy every encrypted object of the data directory to S3-compatible storage (the
    /// bytes stay as sealed; each is re-hashed on arrival).
    CopyObjects {
        #[command(flatten)]
        platform: PlatformArgs,
        /// The object storage to fill (`s3://bucket/prefix`).
        #[arg(long)]
        to: String,
    },
}

impl Settings {
    /// Whether the store is shared by processes on other hosts (PostgreSQL).
    fn shared_database(&self) -> bool {
        self.database
            .as_deref()
            .is_some_and(medarena_arena::store::postgres::is_postgres_url)
    }

    /// Where the store lives, for messages: never the URL itself (it may hold a password).
    fn database_label(&self) -> String {
        if self.shared_database() {
            "the PostgreSQL database".to_owned()
        } else {
            format!("{}", self.data_dir.display())
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Who writes the ledger: the server always; a worker or an admin command only when no
/// server holds it (the ledger has one writer), else their events wait in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LedgerRole {
    Owner,
    IfFree,
}

/// What [`open_platform`] opened besides the arena.
struct Opened {
    /// The ledger this process serves (a server always has one).
    ledger: Option<Arc<SharedLedger>>,
    /// The sink over a ledger shared on PostgreSQL, which must follow its writer.
    shared_sink: Option<Arc<LedgerSink>>,
}

/// The arena on the real pipeline with the ledger as its audit sink.
async fn open_platform(
    settings: &Settings,
    role: LedgerRole,
    key_broker: Option<Arc<dyn KeyBroker>>,
) -> anyhow::Result<(Arena, Opened)> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
    let ledger_dir = settings
        .data_dir
        .join(medarena_arena::ledger_sink::LEDGER_DIR);
    let mut opened = Opened {
        ledger: None,
        shared_sink: None,
    };
    let sink: Arc<dyn medarena_arena::AuditSink> = match (role, &settings.database) {
        // On a shared database the ledger lives there too. Servers open it: one writes,
        // the others follow and take over when it stops. Workers and admin commands, which
        // may run on any host, leave their events in the outbox for the writer.
        (LedgerRole::Owner, Some(url)) if settings.shared_database() => {
            std::fs::create_dir_all(&ledger_dir)
                .with_context(|| format!("creating {}", ledger_dir.display()))?;
            let signer =
                medarena_ledger::LogSigner::load_or_generate(&ledger_dir, &settings.ledger_origin)
                    .context("reading the ledger's signing key")?;
            let url = url.clone();
            let (ledger, leadership) = tokio::task::spawn_blocking(move || {
                medarena_arena::ledger_sink::open_shared_ledger(&url, signer)
            })
            .await
            .context("opening the ledger")?
            .with_context(|| {
                format!(
                    "opening the ledger on the PostgreSQL database (every server must sign with \
                     the same key: copy {} from the first server)",
                    ledger_dir.join(medarena_ledger::SIGNING_KEY_FILE).display()
                )
            })?;
            let ledger = Arc::new(ledger);
            let sink = Arc::new(
                LedgerSink::shared(ledger.clone(), leadership).context("reading the ledger")?,
            );
            opened.ledger = Some(ledger);
            opened.shared_sink = Some(sink.clone());
            sink
        }
        (LedgerRole::IfFree, _) if settings.shared_database() => {
            tracing::info!(
                "the servers write the ledger; this process's events wait in the outbox"
            );
            Arc::new(medarena_arena::DeferredAuditSink)
        }
        _ => match open_ledger(&settings.data_dir, &settings.ledger_origin) {
            Ok(ledger) => {
                let ledger = Arc::new(ledger);
                opened.ledger = Some(ledger.clone());
                Arc::new(LedgerSink::new(ledger).context("reading the ledger")?)
            }
            Err(medarena_ledger::LedgerError::Store(medarena_ledger::StoreError::InUse {
                ..
            })) if role == LedgerRole::IfFree => {
                tracing::info!(
                    "the ledger is held by a running server; it will record this process's events"
                );
                Arc::new(medarena_arena::DeferredAuditSink)
            }
            Err(err) => {
                return Err(anyhow::Error::new(err).context(format!(
                    "opening the ledger in {} (is another `medarena serve` running on it?)",
                    settings.data_dir.display()
                )));
            }
        },
    };
    // Certificates are signed with the ledger's key, read from its file, so a process that
    // does not hold the ledger (a worker beside the server) signs with the same key. A
    // process on another host of a shared database has no such file: it issues none (the
    // organizers' actions that issue certificates run on the servers).
    let certificate_signer = if opened.ledger.is_none()
        && settings.shared_database()
        && !ledger_dir.join(medarena_ledger::SIGNING_KEY_FILE).exists()
    {
        None
    } else {
        Some(
            medarena_ledger::LogSigner::load_or_generate(&ledger_dir, &settings.ledger_origin)
                .context("reading the ledger's signing key (it signs certificates)")?,
        )
    };
    let mut config = PlatformConfig::new(&settings.data_dir)?;
    config.arena.database = settings.database.clone();
    config.arena.objects = settings.objects.clone();
    config.arena.queue.concurrency = settings.workers.max(1);
    config.arena.queue.lease = settings.job_lease;
    config.arena.queue.heartbeat_every = settings.job_lease / 4;
    config.key_broker = key_broker;
    let mut builder = medarena_arena::platform::builder(config)?.audit_sink(sink);
    if let Some(signer) = certificate_signer {
        builder = builder.certificate_signer(signer);
    }
    let arena = builder
        .open()
        .await
        .with_context(|| format!("opening the platform in {}", settings.database_label()))?;
    Ok((arena, opened))
}

/// Delivers audit events to the ledger every second (operations also deliver their own).
/// Over a shared ledger it first follows the writer (taking over when it stopped).
fn spawn_audit_delivery(
    arena: &Arena,
    shared: Option<Arc<LedgerSink>>,
) -> tokio::task::JoinHandle<()> {
    let arena = arena.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Some(sink) = &shared {
                let sink = sink.clone();
                match tokio::task::spawn_blocking(move || sink.follow()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => tracing::warn!("following the ledger: {err}"),
                    Err(err) => tracing::warn!("following the ledger: {err}"),
                }
            }
            arena.deliver_audit_events().await;
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_tracing();
    let settings = args.platform.settings(args.listen.as_deref())?;
    let address: SocketAddr = settings
        .listen
        .parse()
        .with_context(|| format!("--listen `{}` is not an address:port", settings.listen))?;
    runtime()?.block_on(async move {
        let (arena, opened) = open_platform(&settings, LedgerRole::Owner, None).await?;
        let ledger = opened.ledger.context("the server needs the ledger")?;
        if args.demo {
            eprintln!("seeding the demo competitions (runs four example submissions; a minute or two on first start)...");
            let summary = medarena_arena::demo::seed(&arena)
                .await
                .context("seeding the demo")?;
            println!("{summary}");
        }
        // `--workers 0`: the web face alone; `medarena worker` processes run the jobs.
        let workers = (settings.workers > 0).then(|| WorkerPool::spawn(&arena, "serve"));
        let delivery = spawn_audit_delivery(&arena, opened.shared_sink);
        let mut state = medarena_web::AppState::new(arena.clone(), ledger);
        state.secure_cookies = args.secure_cookies;
        state.metrics_token = args
            .metrics_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(std::sync::Arc::from);
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listening on {address}"))?;
        let bound = listener.local_addr().unwrap_or(address);
        // Tests and scripts wait for this exact line.
        println!("medarena listening on http://{bound}");
        tracing::info!(data_dir = %settings.data_dir.display(), workers = workers.as_ref().map_or(0, WorkerPool::len), "serving on http://{bound}");
        axum::serve(listener, medarena_web::router(state))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving HTTP")?;
        tracing::info!("shutting down: finishing running jobs");
        delivery.abort();
        if let Some(workers) = workers {
            workers.shutdown().await;
        }
        arena.deliver_audit_events().await;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    init_tracing();
    let settings = args.platform.settings(None)?;
    let key_broker = args.key_broker()?;
    if key_broker.is_some() {
        tracing::info!("data keys come from the key service; this host holds no master key");
    }
    runtime()?.block_on(async move {
        let (arena, opened) = open_platform(&settings, LedgerRole::IfFree, key_broker).await?;
        let workers = WorkerPool::spawn(&arena, "worker");
        let delivery = spawn_audit_delivery(&arena, opened.shared_sink);
        println!("medarena worker running {} job(s) at once", workers.len());
        shutdown_signal().await;
        delivery.abort();
        workers.shutdown().await;
        arena.deliver_audit_events().await;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn admin(command: AdminCommand) -> anyhow::Result<ExitCode> {
    init_tracing();
    match command {
        AdminCommand::CreateOrganizer {
            platform,
            email,
            name,
            password,
        } => {
            let settings = platform.settings(None)?;
            runtime()?.block_on(async move {
                let (arena, _opened) = open_platform(&settings, LedgerRole::IfFree, None).await?;
                let account = arena
                    .bootstrap_organizer(&email, &name, &password)
                    .await
                    .context("creating the organizer")?;
                arena.deliver_audit_events().await;
                println!("organizer {} created ({})", account.email, account.id);
                Ok(ExitCode::SUCCESS)
            })
        }
        AdminCommand::Migrate { platform } => {
            let settings = platform.settings(None)?;
            runtime()?.block_on(migrate(&settings))
        }
        AdminCommand::CopyDatabase { platform, to } => {
            let settings = platform.settings(None)?;
            runtime()?.block_on(copy_database(&settings, &to))
        }
        AdminCommand::WorkerToken { platform } => {
            let settings = platform.settings(None)?;
            let source = medarena_arena::ArenaConfig::new(&settings.data_dir).master_key;
            // Never make a key here: a fresh one would print a token no server accepts.
            if let medarena_arena::MasterKeySource::File(path) = &source
                && !path.exists()
            {
                anyhow::bail!(
                    "no master key at {} and MEDARENA_MASTER_KEY is unset: run this on a server \
                     host, with its --data-dir",
                    path.display()
                );
            }
            let master = medarena_arena::crypto::MasterKey::load(&source)
                .context("reading the master key (run this on a server host)")?;
            println!("{}", master.worker_token().as_str());
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::CopyObjects { platform, to } => {
            let settings = platform.settings(None)?;
            runtime()?.block_on(copy_objects(&settings, &to))
        }
    }
}

async fn migrate(settings: &Settings) -> anyhow::Result<ExitCode> {
    let label = settings.database_label();
    let database = match &settings.database {
        Some(url) => url.clone(),
        None => {
            std::fs::create_dir_all(&settings.data_dir).with_context(|| {
                format!("creating data directory {}", settings.data_dir.display())
            })?;
            settings.data_dir.join("medarena.db").display().to_string()
        }
    };
    let migrated = medarena_arena::store::migrate(&database)
        .await
        .with_context(|| format!("migrating {label}"))?;
    println!(
        "{} migration(s) applied; {label} is at schema version {}",
        migrated.applied, migrated.version
    );
    Ok(ExitCode::SUCCESS)
}

async fn copy_database(settings: &Settings, to: &str) -> anyhow::Result<ExitCode> {
    use medarena_arena::store::{copy, postgres, sqlite};
    if settings.shared_database() {
        anyhow::bail!("the source must be the embedded SQLite database: unset --database");
    }
    if !postgres::is_postgres_url(to) {
        anyhow::bail!("--to must be a postgres:// or postgresql:// URL");
    }
    let path = settings.data_dir.join("medarena.db");
    if !path.exists() {
        anyhow::bail!("no database at {}", path.display());
    }
    let from = sqlite::SqliteStore::open(&path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let target = postgres::PgStore::open(to, 4)
        .await
        .context("connecting to the PostgreSQL database")?;
    let report = copy::sqlite_to_postgres(&from, &target)
        .await
        .context("copying into the PostgreSQL database (nothing was kept)")?;
    for (table, rows) in &report.rows {
        println!("{table:<24} {rows:>10}");
    }
    // The ledger moves too: servers on PostgreSQL keep it there, so that it outlives any
    // one host. Its signing key stays in the data directory.
    let ledger_dir = settings
        .data_dir
        .join(medarena_arena::ledger_sink::LEDGER_DIR);
    let entries = if ledger_dir
        .join(medarena_ledger::store::ENTRIES_FILE)
        .exists()
    {
        let url = to.to_owned();
        let dir = ledger_dir.clone();
        tokio::task::spawn_blocking(move || medarena_arena::ledger_pg::copy_file_ledger(&dir, &url))
            .await
            .context("copying the ledger")?
            .with_context(|| format!("copying the ledger in {}", ledger_dir.display()))?
    } else {
        0
    };
    println!(
        "copied {} rows and {entries} ledger entries; start the platform with --database set to \
         the target (the ledger's key and, unless moved with `admin copy-objects`, the objects \
         stay in {})",
        report.total(),
        settings.data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn copy_objects(settings: &Settings, to: &str) -> anyhow::Result<ExitCode> {
    use medarena_arena::objects::{LocalObjectStore, ObjectStore, S3ObjectStore, is_s3_url};
    if !is_s3_url(to) {
        anyhow::bail!("--to must be an s3://bucket/prefix location");
    }
    let dir = settings.data_dir.join("objects");
    let local = LocalObjectStore::open(&dir)
        .with_context(|| format!("opening the objects in {}", dir.display()))?;
    let remote = S3ObjectStore::from_env(to)?;
    let ids = local.ids()?;
    for id in &ids {
        let bytes = local.get(id).await?;
        let stored = remote.put(&bytes).await?;
        if stored != *id {
            anyhow::bail!("object {id} arrived as {stored}");
        }
    }
    println!(
        "copied {} objects to {to}; start the platform with --objects {to}",
        ids.len()
    );
    Ok(ExitCode::SUCCESS)
}
