//! The scale-out store: PostgreSQL, shared by every web server and worker host.
//!
//! It runs the same SQL as [`super::sqlite`] (the [`sql`](self::sql) directory, compiled
//! here against sqlx's PostgreSQL driver) on the schema in `migrations/postgres/`.
//!
//! Concurrency: SQLite serialises every transaction that reads before it writes with
//! `BEGIN IMMEDIATE`. Here each such transaction takes one transaction-scoped advisory lock
//! (`pg_advisory_xact_lock`) keyed by the schema, which gives the same serial order across
//! every process and host that shares the database: a budget is charged against the sum
//! that the same lock protects, a daily submission limit is counted and used under it, and
//! a team runs one real-data job at a time. Read-only queries and heartbeats take no lock,
//! and neither do claims of dummy runs: each takes its job's row with `FOR UPDATE SKIP
//! LOCKED` and changes nothing another claim reads and then writes, so they run side by
//! side and a job is still claimed by one worker only. BENCHMARKS.md has what this costs.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::*;

/// The schema, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The first key of the writers' advisory lock (the second is the schema's hash), so that
/// two deployments in one database, or two test schemas, never wait on each other.
const WRITE_LOCK_CLASS: i32 = 0x6d65_6461; // "meda"

/// How long a new connection may take before the store gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

type Db = sqlx::Postgres;
type DbRow = sqlx::postgres::PgRow;
type DbConn = sqlx::PgConnection;
type SqlStore = PgStore;

/// Whether the migrations table exists (in the current schema).
const MIGRATIONS_TABLE_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM pg_tables \
     WHERE tablename = '_sqlx_migrations' AND schemaname = current_schema())";

/// Appended to a claim's candidate query: lock the job row, skipping rows other claims hold.
const CLAIM_ROW_LOCK: &str = " FOR UPDATE OF j SKIP LOCKED";

/// The repositories' SQL, compiled against the aliases above (see its module docs).
#[allow(clippy::duplicate_mod)]
#[path = "sql/mod.rs"]
mod sql;

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl PgStore {
    /// Connects to `url` (for example `postgres://medarena@db.internal/medarena`; a schema
    /// other than `public` with `?options=-c%20search_path%3Dname`) and applies pending
    /// migrations. Several processes may open it at once: sqlx takes a lock while migrating.
    /// When no schema on the search path exists yet, the first one named is created.
    pub async fn open(url: &str, max_connections: u32) -> StoreResult<Self> {
        let store = Self::connect(url, max_connections).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Creates the schema a `search_path` option names, so that a deployment (or a test)
    /// can live in its own schema of a shared database without a separate set-up step.
    async fn prepare_for_migrations(&self) -> StoreResult<()> {
        let current: Option<String> = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&self.pool)
            .await?;
        if current.is_some() {
            return Ok(());
        }
        let path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
            .fetch_one(&self.pool)
            .await?;
        let first = path
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        let plain = !first.is_empty()
            && first
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !plain {
            return Err(StoreError::Missing(format!(
                "schema {first:?} (search_path {path:?}; create it, or name a schema of \
                 lowercase letters, digits and underscores to have it created)"
            )));
        }
        // Two processes starting at once may both try; the loser's error is harmless.
        let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {first}"))
            .execute(&self.pool)
            .await;
        if let Err(err) = created {
            let now: Option<String> = sqlx::query_scalar("SELECT current_schema()")
                .fetch_one(&self.pool)
                .await?;
            if now.is_none() {
                return Err(err.into());
            }
        }
        Ok(())
    }

    /// Connects without migrating (for `medarena admin migrate --check` and tools that must
    /// not change the schema).
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)?;
        // One connection first, so that a refused connection or a wrong password is reported
        // as such instead of as the pool's timeout.
        sqlx::Connection::close(
            <sqlx::PgConnection as sqlx::Connection>::connect_with(&options).await?,
        )
        .await?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A claim's transaction. A dummy-run claim changes only its own job and submission
    /// (its row taken with `FOR UPDATE SKIP LOCKED`), an outbox row and the team's turn
    /// counter, so claims of dummy runs run side by side and commit together. A claim that
    /// may take a real run keeps the writers' lock: "one real run per team at a time" is a
    /// check, then a change.
    async fn claim_tx(&self, kind: Option<JobKind>) -> StoreResult<sqlx::Transaction<'static, Db>> {
        match kind {
            Some(JobKind::DummyRun) => Ok(self.pool.begin().await?),
            _ => self.write_tx().await,
        }
    }

    /// A transaction serialised with every other writer of this schema (see the module docs).
    async fn write_tx(&self) -> StoreResult<sqlx::Transaction<'static, Db>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))")
            .bind(WRITE_LOCK_CLASS)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}
