//! The ledger on PostgreSQL: the leaves and the latest checkpoint of a deployment whose
//! servers run on several hosts, so that losing the host of the process that writes the
//! ledger loses no entry.
//!
//! One process writes: the one holding a session-level advisory lock on the store's own
//! connection. The others follow: their [`PgLedgerStore`] reports only what the writer's
//! checkpoint covers and refuses appends, and [`medarena_ledger::Ledger::refresh`] reads
//! new entries into memory so they serve receipts too. When the writer's connection goes
//! (the process or its host stopped), PostgreSQL releases the lock and a follower's next
//! [`Leadership::try_lead`] takes over; it then signs whatever the old writer stored but
//! did not sign. Leaves are keyed by their index and only inserted after checking that the
//! log ends where the writer thinks it does, so even a writer that lost its lock without
//! noticing can never replace or reorder an entry: its append fails.
//!
//! The ledger's [`LedgerStore`] interface is synchronous (the file store does plain file
//! I/O); this store gives its connection a thread and a small runtime of its own, and the
//! trait methods wait for that thread. Callers already keep appends off the async workers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use medarena_ledger::{LedgerStore, StoreError};
use sqlx::{Connection, PgConnection};

/// The first key of the writer's advisory lock (the second is the schema's hash).
const WRITER_LOCK_CLASS: i32 = 0x6c65_6467; // "ledg"

type Reply<T> = mpsc::Sender<Result<T, String>>;

enum Request {
    Len(Reply<u64>),
    Read(u64, u64, Reply<Vec<Vec<u8>>>),
    Append(u64, Vec<Vec<u8>>, Reply<()>),
    LoadCheckpoint(Reply<Option<String>>),
    SaveCheckpoint(String, Reply<()>),
    TryLead(Reply<bool>),
}

/// Whether this process writes the ledger, and the means to become the writer.
#[derive(Debug, Clone)]
pub struct Leadership {
    requests: mpsc::Sender<Request>,
    writer: Arc<AtomicBool>,
}

impl Leadership {
    pub fn is_writer(&self) -> bool {
        self.writer.load(Ordering::SeqCst)
    }

    /// Takes the writer's lock if nobody holds it; `true` when this process writes now.
    pub fn try_lead(&self) -> Result<bool, StoreError> {
        if self.is_writer() {
            return Ok(true);
        }
        ask(&self.requests, Request::TryLead)
    }
}

/// The leaves and checkpoint in two tables of the deployment's PostgreSQL schema.
#[derive(Debug)]
pub struct PgLedgerStore {
    leadership: Leadership,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ledger store request")
    }
}

fn ask<T>(
    requests: &mpsc::Sender<Request>,
    request: impl FnOnce(Reply<T>) -> Request,
) -> Result<T, StoreError> {
    let (reply, answer) = mpsc::channel();
    requests
        .send(request(reply))
        .map_err(|_| StoreError::Shared("the ledger's database thread stopped".to_owned()))?;
    answer
        .recv()
        .map_err(|_| StoreError::Shared("the ledger's database thread stopped".to_owned()))?
        .map_err(StoreError::Shared)
}

impl PgLedgerStore {
    /// Connects (creating the tables on first use) and tries to become the writer.
    pub fn open(url: &str) -> Result<PgLedgerStore, StoreError> {
        let (requests, inbox) = mpsc::channel();
        let writer = Arc::new(AtomicBool::new(false));
        let (ready, started) = mpsc::channel();
        let url = url.to_owned();
        let flag = writer.clone();
        std::thread::Builder::new()
            .name("ledger-postgres".to_owned())
            .spawn(move || serve(url, inbox, flag, ready))
            .map_err(|err| StoreError::Shared(format!("starting the ledger's thread: {err}")))?;
        started
            .recv()
            .map_err(|_| StoreError::Shared("the ledger's database thread stopped".to_owned()))?
            .map_err(StoreError::Shared)?;
        let leadership = Leadership { requests, writer };
        leadership.try_lead()?;
        Ok(PgLedgerStore { leadership })
    }

    pub fn leadership(&self) -> Leadership {
        self.leadership.clone()
    }
}

/// Copies the embedded ledger in `dir` (its leaves and checkpoint, byte for byte) into
/// the empty ledger tables of a PostgreSQL deployment; returns the number of entries. The
/// copy keeps the file's signing key valid: servers on PostgreSQL sign with the same key.
pub fn copy_file_ledger(dir: &std::path::Path, database_url: &str) -> Result<u64, StoreError> {
    let (file, _) = medarena_ledger::FileStore::open(dir)?;
    let mut target = PgLedgerStore::open(database_url)?;
    if !target.writable() {
        return Err(StoreError::Shared(
            "another process writes the ledger on the target database: stop it first".to_owned(),
        ));
    }
    if target.len() != 0 {
        return Err(StoreError::Shared(
            "the target database already holds a ledger".to_owned(),
        ));
    }
    let len = file.len();
    let mut from = 0;
    while from < len {
        let to = (from + 4096).min(len);
        target.append(&file.read_range(from, to)?)?;
        from = to;
    }
    if let Some(note) = file.load_checkpoint()? {
        target.save_checkpoint(&note)?;
    }
    Ok(len)
}

impl LedgerStore for PgLedgerStore {
    fn len(&self) -> u64 {
        // The trait gives no way to fail here; an unreachable database reads as the empty
        // log, which every check above refuses to sign over.
        ask(&self.leadership.requests, Request::Len).unwrap_or(0)
    }

    fn writable(&self) -> bool {
        self.leadership.is_writer()
    }

    fn read_range(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        ask(&self.leadership.requests, |reply| {
            Request::Read(from, to, reply)
        })
    }

    fn append(&mut self, leaves: &[Vec<u8>]) -> Result<(), StoreError> {
        if !self.leadership.is_writer() {
            return Err(StoreError::ReadOnly);
        }
        // The ledger appends at its own length, which is the store's for a writer.
        let first = self.len();
        ask(&self.leadership.requests, |reply| {
            Request::Append(first, leaves.to_vec(), reply)
        })
    }

    fn load_checkpoint(&self) -> Result<Option<String>, StoreError> {
        ask(&self.leadership.requests, Request::LoadCheckpoint)
    }

    fn save_checkpoint(&mut self, note: &str) -> Result<(), StoreError> {
        if !self.leadership.is_writer() {
            return Err(StoreError::ReadOnly);
        }
        ask(&self.leadership.requests, |reply| {
            Request::SaveCheckpoint(note.to_owned(), reply)
        })
    }
}

/// The store's thread: one connection, one request at a time.
fn serve(
    url: String,
    inbox: mpsc::Receiver<Request>,
    writer: Arc<AtomicBool>,
    ready: mpsc::Sender<Result<(), String>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = ready.send(Err(err.to_string()));
            return;
        }
    };
    runtime.block_on(async move {
        let mut conn = match connect(&url).await {
            Ok(conn) => Some(conn),
            Err(err) => {
                let _ = ready.send(Err(err));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        while let Ok(request) = inbox.recv() {
            if conn.is_none() {
                // The lock went with the lost connection.
                writer.store(false, Ordering::SeqCst);
                conn = connect(&url).await.ok();
            }
            let Some(db) = conn.as_mut() else {
                fail(request, "cannot reach the ledger's database".to_owned());
                continue;
            };
            let ok = handle(db, request, &writer).await;
            if !ok {
                conn = None;
            }
        }
    });
}

async fn connect(url: &str) -> Result<PgConnection, String> {
    let mut conn = PgConnection::connect(url)
        .await
        .map_err(|err| format!("connecting to the ledger's database: {err}"))?;
    // Created here rather than by the arena's migrations: these tables are the ledger's,
    // and only deployments on PostgreSQL have them.
    let mut tx = conn.begin().await.map_err(|err| err.to_string())?;
    for statement in [
        "SELECT pg_advisory_xact_lock(0, hashtext(current_schema()))",
        "CREATE TABLE IF NOT EXISTS ledger_leaves (idx BIGINT PRIMARY KEY, leaf BYTEA NOT NULL)",
        "CREATE TABLE IF NOT EXISTS ledger_checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), \
         size BIGINT NOT NULL, note TEXT NOT NULL)",
    ] {
        sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .map_err(|err| format!("creating the ledger's tables: {err}"))?;
    }
    tx.commit().await.map_err(|err| err.to_string())?;
    Ok(conn)
}

fn fail(request: Request, reason: String) {
    match request {
        Request::Len(reply) => drop(reply.send(Err(reason))),
        Request::Read(_, _, reply) => drop(reply.send(Err(reason))),
        Request::Append(_, _, reply) | Request::SaveCheckpoint(_, reply) => {
            drop(reply.send(Err(reason)))
        }
        Request::LoadCheckpoint(reply) => drop(reply.send(Err(reason))),
        Request::TryLead(reply) => drop(reply.send(Err(reason))),
    }
}

/// Answers one request; `false` when the connection failed (it is then reopened).
async fn handle(db: &mut PgConnection, request: Request, writer: &AtomicBool) -> bool {
    let is_writer = writer.load(Ordering::SeqCst);
    match request {
        Request::Len(reply) => {
            let sql = if is_writer {
                "SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_leaves"
            } else {
                "SELECT COALESCE(MAX(size), 0) FROM ledger_checkpoint"
            };
            let result = sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut *db).await;
            respond(reply, result.map(|n| u64::try_from(n).unwrap_or(0)))
        }
        Request::Read(from, to, reply) => {
            let result = read(db, from, to).await;
            respond(reply, result)
        }
        // A writer whose connection (and so its lock) was lost since it last looked is one
        // no longer: it must take the lock again before writing.
        Request::Append(_, _, reply) | Request::SaveCheckpoint(_, reply) if !is_writer => {
            let _ = reply.send(Err(
                "this process no longer holds the ledger's writer lock".to_owned()
            ));
            true
        }
        Request::Append(first, leaves, reply) => {
            let result = append(db, first, leaves).await;
            respond(reply, result)
        }
        Request::LoadCheckpoint(reply) => {
            let result =
                sqlx::query_scalar::<_, String>("SELECT note FROM ledger_checkpoint WHERE id = 1")
                    .fetch_optional(&mut *db)
                    .await;
            respond(reply, result)
        }
        Request::SaveCheckpoint(note, reply) => {
            let result = save_checkpoint(db, &note).await;
            respond(reply, result)
        }
        Request::TryLead(reply) => {
            let result = sqlx::query_scalar::<_, bool>(
                "SELECT pg_try_advisory_lock($1, hashtext(current_schema()))",
            )
            .bind(WRITER_LOCK_CLASS)
            .fetch_one(&mut *db)
            .await;
            if let Ok(true) = result {
                writer.store(true, Ordering::SeqCst);
            }
            respond(reply, result)
        }
    }
}

/// Sends the answer; `false` when it was a database error (the connection is suspect).
fn respond<T>(reply: Reply<T>, result: Result<T, sqlx::Error>) -> bool {
    let healthy = !matches!(
        result,
        Err(sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::PoolClosed)
    );
    let _ = reply.send(result.map_err(|err| err.to_string()));
    healthy
}

async fn read(db: &mut PgConnection, from: u64, to: u64) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    let leaves: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT idx, leaf FROM ledger_leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx",
    )
    .bind(i64::try_from(from).unwrap_or(i64::MAX))
    .bind(i64::try_from(to).unwrap_or(i64::MAX))
    .fetch_all(&mut *db)
    .await?;
    if leaves.len() as u64 != to.saturating_sub(from)
        || leaves
            .iter()
            .zip(from..)
            .any(|((idx, _), want)| u64::try_from(*idx).ok() != Some(want))
    {
        return Err(sqlx::Error::Protocol(format!(
            "ledger leaves {from}..{to} are not all stored"
        )));
    }
    Ok(leaves.into_iter().map(|(_, leaf)| leaf).collect())
}

async fn append(
    db: &mut PgConnection,
    first: u64,
    leaves: Vec<Vec<u8>>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let end: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_leaves")
        .fetch_one(&mut *tx)
        .await?;
    if u64::try_from(end).ok() != Some(first) {
        return Err(sqlx::Error::Protocol(format!(
            "the ledger ends at {end}, not at {first}: another process wrote it"
        )));
    }
    let indexes: Vec<i64> = (first..)
        .take(leaves.len())
        .map(|i| i64::try_from(i).unwrap_or(i64::MAX))
        .collect();
    sqlx::query(
        "INSERT INTO ledger_leaves (idx, leaf) SELECT * FROM UNNEST($1::bigint[], $2::bytea[])",
    )
    .bind(&indexes)
    .bind(&leaves)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

async fn save_checkpoint(db: &mut PgConnection, note: &str) -> Result<(), sqlx::Error> {
    // The size is the note's second line (`<origin>\n<size>\n<root>\n...`).
    let size: i64 = note
        .lines()
        .nth(1)
        .and_then(|line| line.parse().ok())
        .ok_or_else(|| sqlx::Error::Protocol("a checkpoint without a size line".to_owned()))?;
    let saved = sqlx::query(
        "INSERT INTO ledger_checkpoint (id, size, note) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET size = excluded.size, note = excluded.note \
         WHERE ledger_checkpoint.size <= excluded.size",
    )
    .bind(size)
    .bind(note)
    .execute(&mut *db)
    .await?;
    if saved.rows_affected() == 0 {
        return Err(sqlx::Error::Protocol(format!(
            "a checkpoint newer than size {size} is stored: another process writes the ledger"
        )));
    }
    Ok(())
}
