//! The embedded store: one SQLite file in WAL mode, migrations embedded in the binary.
//!
//! Durability: `synchronous = FULL`, so a committed submission or job transition survives a
//! power cut, not only a process crash. Concurrency: every transaction that reads before it
//! writes starts with `BEGIN IMMEDIATE`, taking SQLite's write lock up front; two writers then
//! queue on the busy timeout instead of failing with `SQLITE_BUSY` when a read lock cannot be
//! upgraded. That also makes claims strictly serial, so two workers can never claim one job
//! (the claim's `UPDATE ... WHERE state = 'pending'` would refuse the second anyway).
//!
//! The SQL itself is in [`sql`](self::sql), shared with [`super::postgres`].

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::*;

/// The schema, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a connection waits for SQLite's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

type Db = sqlx::Sqlite;
type DbRow = sqlx::sqlite::SqliteRow;
type DbConn = sqlx::SqliteConnection;
type SqlStore = SqliteStore;

/// Whether the migrations table exists (in SQLite's catalog).
const MIGRATIONS_TABLE_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = '_sqlx_migrations')";

/// Appended to a claim's candidate query: nothing, since `BEGIN IMMEDIATE` already holds
/// the only write lock.
const CLAIM_ROW_LOCK: &str = "";

/// The repositories' SQL, compiled against the aliases above (see its module docs).
#[allow(clippy::duplicate_mod)]
#[path = "sql/mod.rs"]
mod sql;

impl SqliteStore {
    /// Opens (creating when absent) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let store = Self::connect(path).await?;
        MIGRATOR.run(&store.pool).await?;
        Ok(store)
    }

    /// Nothing to prepare: the file is created on connecting.
    async fn prepare_for_migrations(&self) -> StoreResult<()> {
        Ok(())
    }

    /// Opens (creating when absent) the database file without migrating it.
    pub async fn connect(path: &Path) -> StoreResult<Self> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|err| {
                StoreError::Database(sqlx::Error::Io(std::io::Error::new(
                    err.kind(),
                    format!("creating {}: {err}", parent.display()),
                )))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection (checkpointing the WAL when it is the last one).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A claim's transaction: like every writer's (claims are serial here).
    async fn claim_tx(
        &self,
        _kind: Option<JobKind>,
    ) -> StoreResult<sqlx::Transaction<'static, Db>> {
        self.write_tx().await
    }

    async fn write_tx(&self) -> StoreResult<sqlx::Transaction<'static, Db>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}
