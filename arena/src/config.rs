//! Configuration of the core. The CLI fills it from flags, a file and the environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::PasswordHashing;
use crate::crypto::MasterKeySource;

/// The environment variable holding the master key as 64 hex digits. When unset, the key
/// lives in `<data dir>/master.key` (created on first start, mode 0600).
pub const MASTER_KEY_ENV: &str = "MEDARENA_MASTER_KEY";

#[derive(Debug, Clone)]
pub struct ArenaConfig {
    /// Everything the embedded deployment writes: `medarena.db` (SQLite, WAL), `objects/`
    /// (encrypted blobs) and, by default, `master.key`.
    pub data_dir: PathBuf,
    /// Where the store lives: `None` for the embedded SQLite file `<data dir>/medarena.db`,
    /// or a URL (`postgres://...` for PostgreSQL, see [`crate::store::open`]).
    pub database: Option<String>,
    /// Where encrypted objects live: `None` for `<data dir>/objects`, or `s3://bucket/prefix`
    /// (see [`crate::objects::open`]).
    pub objects: Option<String>,
    pub master_key: MasterKeySource,
    pub password_hashing: PasswordHashing,
    /// Lifetime of a browser session.
    pub session_ttl: Duration,
    /// Default and longest lifetime of an API token.
    pub api_token_ttl: Duration,
    pub api_token_max_ttl: Duration,
    pub queue: QueueConfig,
    /// A dataset's privacy terms for each contributing hospital that set none.
    pub default_dataset_terms: crate::model::DatasetPrivacyTerms,
    /// Counts of patients shown to anyone but the contributing hospital (organizers' view
    /// of validation reports): redacted at or below the threshold, the rest rounded.
    pub suppression: medarena_scorer::SuppressionPolicy,
}

/// The job queue and its workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// Jobs run at once by one process's worker pool.
    pub concurrency: usize,
    /// A claim is valid this long unless renewed by a heartbeat; a crashed worker's job is
    /// claimable again after it.
    pub lease: Duration,
    /// How often a running job renews its lease (well below `lease`).
    pub heartbeat_every: Duration,
    /// Claims per job before it is marked failed (outcome `error`).
    pub max_attempts: i64,
    /// Wait before the first retry after an executor error; doubles per attempt, capped at
    /// `retry_backoff_max`.
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
    /// How often an idle worker looks for work it was not woken for (other processes'
    /// submissions, expired leases, back-off ends).
    pub poll_interval: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            concurrency: 2,
            lease: Duration::from_secs(60),
            heartbeat_every: Duration::from_secs(15),
            max_attempts: 3,
            retry_backoff: Duration::from_secs(5),
            retry_backoff_max: Duration::from_secs(300),
            poll_interval: Duration::from_secs(2),
        }
    }
}

impl ArenaConfig {
    /// Defaults for a data directory; the master key comes from [`MASTER_KEY_ENV`] when it
    /// is set, else from `<data_dir>/master.key`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        let master_key = match std::env::var(MASTER_KEY_ENV) {
            Ok(hex) if !hex.trim().is_empty() => MasterKeySource::Hex(hex),
            _ => MasterKeySource::File(data_dir.join("master.key")),
        };
        Self {
            master_key,
            data_dir,
            database: None,
            objects: None,
            password_hashing: PasswordHashing::default(),
            session_ttl: Duration::from_secs(12 * 3600),
            api_token_ttl: Duration::from_secs(90 * 24 * 3600),
            api_token_max_ttl: Duration::from_secs(365 * 24 * 3600),
            queue: QueueConfig::default(),
            default_dataset_terms: crate::model::DatasetPrivacyTerms::default(),
            suppression: medarena_scorer::SuppressionPolicy::default(),
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("medarena.db")
    }

    /// The database [`crate::store::open`] opens: the configured URL, else the SQLite file.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => self.database_path().display().to_string(),
        }
    }

    pub fn objects_dir(&self) -> PathBuf {
        self.data_dir.join("objects")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}
