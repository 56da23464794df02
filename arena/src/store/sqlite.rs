//! The embedded store: one SQLite file in WAL mode, migrations embedded in the binary.
//!
//! Durability: `synchronous = FULL`, so a committed submission or job transition survives a
//! power cut, not only a process crash. Concurrency: every transaction that reads before it
//! writes starts with `BEGIN IMMEDIATE`, taking SQLite's write lock up front; two writers then
//! queue on the busy timeout instead of failing with `SQLITE_BUSY` when a read lock cannot be
//! upgraded. That also makes claims strictly serial, so two workers can never claim one job
//! (the claim's `UPDATE ... WHERE state = 'pending'` would refuse the second anyway).
//!
//! Portability: the SQL uses `$n` parameters, `RETURNING` and `ON CONFLICT`, which SQLite and
//! PostgreSQL both accept. A PostgreSQL store would reuse these statements; where it needs
//! more (row locks instead of `BEGIN IMMEDIATE` in `insert_submission` and `finish`) a
//! comment says so.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};

use super::*;
use crate::audit::AuditEvent;
use crate::model::DatasetState;
use medarena_scorer::budget::{epsilon_of_micro, micro_epsilon_limit};

mod certificates;
mod contracts;
mod suspensions;
mod synthetic;
mod withdrawals;

/// The schema, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The worker named in the ledger entry of a real run's start.
pub const SEALED_WORKER: &str = "sealed";

/// How long a connection waits for SQLite's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

const ACCOUNT_COLS: &str = "id, email, display_name, role, org_id, disabled, created_at";
const CREDENTIAL_COLS: &str =
    "id, account_id, kind, name, created_at, expires_at, last_used_at, revoked_at";
const ORG_COLS: &str = "id, kind, name, statement, admission, tier, applied_by, reviewed_by, \
                        reviewed_at, review_note, created_at";
const COMPETITION_COLS: &str = "id, slug, bundle_yaml, bundle_json, bundle_sha256, created_by, \
                                created_at, closed_at, published_at";
const DATASET_COLS: &str = "id, slug, title, description, state, created_by, created_at, \
                            reviewed_by, reviewed_at, review_note, review_checklist";
const CONTRIBUTION_COLS: &str = "id, dataset_id, hospital_id, uploaded_by, file_name, manifest, \
                                 object_id, content_sha256, size_bytes, row_count, state, \
                                 report_json, created_at, commitment_salt, key_scope, \
                                 withdrawn_at, withdrawal_reason";
const SUBMISSION_COLS: &str = "id, competition_id, team_id, submitted_by, phase, kind, \
                               analysis_json, object_id, module_sha256, size_bytes, status, \
                               outcome, note, dummy_score, released_public_score, \
                               exact_public_score, private_score, released_json, result_json, \
                               created_at, finished_at, release_at, released_private_score";
const JOB_COLS: &str = "id, submission_id, competition_id, team_id, kind, state, attempts, \
                        max_attempts, available_at, lease_owner, lease_expires_at, outcome, \
                        last_error, created_at, finished_at";
const AUDIT_COLS: &str = "id, at, actor_id, payload_json, evidence";

impl SqliteStore {
    /// Opens (creating when absent) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
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
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection (checkpointing the WAL when it is the last one).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn write_tx(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

// ---------------------------------------------------------------------------------------
// Row decoding. Columns are read by name; enums are parsed from their text.

fn parse<T: FromStr<Err = crate::model::UnknownVariant>>(text: String) -> StoreResult<T> {
    Ok(text.parse::<T>()?)
}

fn parse_opt<T: FromStr<Err = crate::model::UnknownVariant>>(
    text: Option<String>,
) -> StoreResult<Option<T>> {
    text.map(parse).transpose()
}

fn ts(row: &SqliteRow, column: &str) -> StoreResult<Timestamp> {
    Ok(Timestamp(row.try_get::<i64, _>(column)?))
}

fn ts_opt(row: &SqliteRow, column: &str) -> StoreResult<Option<Timestamp>> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(Timestamp))
}

fn object_opt(row: &SqliteRow, column: &str) -> StoreResult<Option<ObjectId>> {
    row.try_get::<Option<String>, _>(column)?
        .map(|hex| ObjectId::from_hex(&hex).map_err(|err| StoreError::Corrupt(err.to_string())))
        .transpose()
}

/// A JSON column read into a typed value.
fn typed_json_opt<T: serde::de::DeserializeOwned>(
    row: &SqliteRow,
    column: &str,
) -> StoreResult<Option<T>> {
    row.try_get::<Option<String>, _>(column)?
        .map(|text| serde_json::from_str(&text).map_err(StoreError::from))
        .transpose()
}

fn json_opt(row: &SqliteRow, column: &str) -> StoreResult<Option<serde_json::Value>> {
    row.try_get::<Option<String>, _>(column)?
        .map(|text| serde_json::from_str(&text).map_err(StoreError::from))
        .transpose()
}

fn account_from(row: &SqliteRow) -> StoreResult<Account> {
    Ok(Account {
        id: AccountId(row.try_get("id")?),
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        role: parse(row.try_get("role")?)?,
        org: row.try_get::<Option<i64>, _>("org_id")?.map(OrgId),
        disabled: row.try_get("disabled")?,
        created_at: ts(row, "created_at")?,
    })
}

fn credential_from(row: &SqliteRow) -> StoreResult<Credential> {
    Ok(Credential {
        id: CredentialId(row.try_get("id")?),
        account: AccountId(row.try_get("account_id")?),
        kind: parse(row.try_get("kind")?)?,
        name: row.try_get("name")?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
        last_used_at: ts_opt(row, "last_used_at")?,
        revoked_at: ts_opt(row, "revoked_at")?,
    })
}

fn org_from(row: &SqliteRow) -> StoreResult<Organization> {
    Ok(Organization {
        id: OrgId(row.try_get("id")?),
        kind: parse(row.try_get("kind")?)?,
        name: row.try_get("name")?,
        statement: row.try_get("statement")?,
        admission: parse(row.try_get("admission")?)?,
        tier: parse_opt(row.try_get("tier")?)?,
        applied_by: AccountId(row.try_get("applied_by")?),
        reviewed_by: row.try_get::<Option<i64>, _>("reviewed_by")?.map(AccountId),
        reviewed_at: ts_opt(row, "reviewed_at")?,
        review_note: row.try_get("review_note")?,
        created_at: ts(row, "created_at")?,
    })
}

fn dataset_from(row: &SqliteRow) -> StoreResult<Dataset> {
    Ok(Dataset {
        id: DatasetId(row.try_get("id")?),
        slug: row.try_get("slug")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        state: parse(row.try_get("state")?)?,
        created_by: AccountId(row.try_get("created_by")?),
        created_at: ts(row, "created_at")?,
        reviewed_by: row.try_get::<Option<i64>, _>("reviewed_by")?.map(AccountId),
        reviewed_at: ts_opt(row, "reviewed_at")?,
        review_note: row.try_get("review_note")?,
        review_checklist: typed_json_opt(row, "review_checklist")?.unwrap_or_default(),
    })
}

fn contribution_from(row: &SqliteRow) -> StoreResult<Contribution> {
    Ok(Contribution {
        id: ContributionId(row.try_get("id")?),
        dataset: DatasetId(row.try_get("dataset_id")?),
        hospital: OrgId(row.try_get("hospital_id")?),
        uploaded_by: AccountId(row.try_get("uploaded_by")?),
        file_name: row.try_get("file_name")?,
        manifest: row.try_get("manifest")?,
        object: object_opt(row, "object_id")?,
        content_sha256: row.try_get("content_sha256")?,
        commitment_salt: row.try_get("commitment_salt")?,
        size_bytes: row.try_get("size_bytes")?,
        rows: row.try_get("row_count")?,
        state: parse(row.try_get("state")?)?,
        report: json_opt(row, "report_json")?.unwrap_or(serde_json::Value::Null),
        created_at: ts(row, "created_at")?,
        key_scope: row.try_get("key_scope")?,
        withdrawn_at: ts_opt(row, "withdrawn_at")?,
        withdrawal_reason: row.try_get("withdrawal_reason")?,
    })
}

fn submission_from(row: &SqliteRow) -> StoreResult<Submission> {
    Ok(Submission {
        id: SubmissionId(row.try_get("id")?),
        competition: CompetitionId(row.try_get("competition_id")?),
        team: OrgId(row.try_get("team_id")?),
        submitted_by: AccountId(row.try_get("submitted_by")?),
        phase: row.try_get("phase")?,
        kind: parse(row.try_get("kind")?)?,
        analysis: typed_json_opt(row, "analysis_json")?,
        object: object_opt(row, "object_id")?
            .ok_or_else(|| StoreError::Corrupt("submission without object".to_owned()))?,
        module_sha256: row.try_get("module_sha256")?,
        size_bytes: row.try_get("size_bytes")?,
        status: parse(row.try_get("status")?)?,
        outcome: parse_opt(row.try_get("outcome")?)?,
        note: row.try_get("note")?,
        dummy_score: row.try_get("dummy_score")?,
        released_public_score: row.try_get("released_public_score")?,
        exact_public_score: row.try_get("exact_public_score")?,
        private_score: row.try_get("private_score")?,
        released_aggregate: typed_json_opt(row, "released_json")?,
        result: json_opt(row, "result_json")?,
        created_at: ts(row, "created_at")?,
        finished_at: ts_opt(row, "finished_at")?,
        release_at: ts_opt(row, "release_at")?,
        released_private_score: row.try_get("released_private_score")?,
    })
}

fn job_from(row: &SqliteRow) -> StoreResult<Job> {
    Ok(Job {
        id: JobId(row.try_get("id")?),
        submission: SubmissionId(row.try_get("submission_id")?),
        competition: CompetitionId(row.try_get("competition_id")?),
        team: OrgId(row.try_get("team_id")?),
        kind: parse(row.try_get("kind")?)?,
        state: parse(row.try_get("state")?)?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        available_at: ts(row, "available_at")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: ts_opt(row, "lease_expires_at")?,
        outcome: parse_opt(row.try_get("outcome")?)?,
        last_error: row.try_get("last_error")?,
        created_at: ts(row, "created_at")?,
        finished_at: ts_opt(row, "finished_at")?,
    })
}

fn audit_from(row: &SqliteRow) -> StoreResult<AuditRecord> {
    let payload: String = row.try_get("payload_json")?;
    Ok(AuditRecord {
        id: AuditEventId(row.try_get("id")?),
        at: ts(row, "at")?,
        actor: row.try_get::<Option<i64>, _>("actor_id")?.map(AccountId),
        event: serde_json::from_str(&payload)?,
        evidence: row.try_get("evidence")?,
    })
}

/// Maps a unique-constraint violation to `Duplicate(what)`.
fn unique_as(what: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Duplicate(what.to_owned())
        }
        _ => StoreError::Database(err),
    }
}

/// Appends an event to the outbox, inside the caller's transaction.
async fn record(conn: &mut SqliteConnection, stamp: Stamp, event: AuditEvent) -> StoreResult<()> {
    let payload = serde_json::to_string(&event)?;
    sqlx::query(
        "INSERT INTO audit_events (at, actor_id, kind, subject, payload_json) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(stamp.at.0)
    .bind(stamp.actor.map(|a| a.0))
    .bind(event.kind())
    .bind(event.subject())
    .bind(payload)
    .execute(conn)
    .await?;
    Ok(())
}

fn queued_status(kind: JobKind) -> SubmissionStatus {
    match kind {
        JobKind::DummyRun => SubmissionStatus::QueuedDummy,
        JobKind::RealRun => SubmissionStatus::QueuedReal,
    }
}

fn running_status(kind: JobKind) -> SubmissionStatus {
    match kind {
        JobKind::DummyRun => SubmissionStatus::RunningDummy,
        JobKind::RealRun => SubmissionStatus::RunningReal,
    }
}

async fn insert_job(
    conn: &mut SqliteConnection,
    stamp: Stamp,
    submission: &Submission,
    kind: JobKind,
    max_attempts: i64,
) -> StoreResult<Job> {
    let row = sqlx::query(&format!(
        "INSERT INTO jobs (submission_id, competition_id, team_id, kind, state, attempts, \
         max_attempts, available_at, created_at) \
         VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6, $6) RETURNING {JOB_COLS}"
    ))
    .bind(submission.id.0)
    .bind(submission.competition.0)
    .bind(submission.team.0)
    .bind(kind.as_str())
    .bind(max_attempts)
    .bind(stamp.at.0)
    .fetch_one(&mut *conn)
    .await?;
    let job = job_from(&row)?;
    record(
        conn,
        stamp,
        AuditEvent::JobEnqueued {
            job: job.id,
            submission: submission.id,
            kind,
        },
    )
    .await?;
    Ok(job)
}

async fn running_job_with_token(
    conn: &mut SqliteConnection,
    job: JobId,
    lease_token: &str,
) -> StoreResult<Option<Job>> {
    let row = sqlx::query(&format!(
        "SELECT {JOB_COLS} FROM jobs WHERE id = $1 AND lease_token = $2 AND state = 'running'"
    ))
    .bind(job.0)
    .bind(lease_token)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(job_from).transpose()
}

/// The stamp of a platform event about `job`: `now`, or for a real-data run its release
/// time when that is later. Events about a real run (started, attempts, finished) then reach
/// the ledger, the receipts and the audit views only once the run is released, stamped with
/// a time that does not depend on what the run did.
async fn job_stamp(conn: &mut SqliteConnection, job: &Job, now: Timestamp) -> StoreResult<Stamp> {
    let mut at = now;
    if job.kind == JobKind::RealRun {
        let release: Option<i64> =
            sqlx::query_scalar("SELECT release_at FROM submissions WHERE id = $1")
                .bind(job.submission.0)
                .fetch_one(&mut *conn)
                .await?;
        if let Some(release) = release {
            at = Timestamp(at.0.max(release));
        }
    }
    Ok(Stamp { at, actor: None })
}

async fn set_submission_status(
    conn: &mut SqliteConnection,
    submission: SubmissionId,
    status: SubmissionStatus,
) -> StoreResult<()> {
    sqlx::query("UPDATE submissions SET status = $2 WHERE id = $1")
        .bind(submission.0)
        .bind(status.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a job and its submission failed with outcome `error` (platform gave up).
async fn give_up_job(
    conn: &mut SqliteConnection,
    stamp: Stamp,
    job: &Job,
    error: &str,
) -> StoreResult<Job> {
    let stamp = job_stamp(&mut *conn, job, stamp.at).await?;
    let row = sqlx::query(&format!(
        "UPDATE jobs SET state = 'failed', outcome = 'error', last_error = $2, finished_at = $3, \
         lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL \
         WHERE id = $1 RETURNING {JOB_COLS}"
    ))
    .bind(job.id.0)
    .bind(error)
    .bind(stamp.at.0)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE submissions SET status = 'failed', outcome = 'error', finished_at = $2 \
         WHERE id = $1",
    )
    .bind(job.submission.0)
    .bind(stamp.at.0)
    .execute(&mut *conn)
    .await?;
    record(
        conn,
        stamp,
        AuditEvent::SubmissionFinished {
            submission: job.submission,
            status: SubmissionStatus::Failed,
            outcome: RunOutcome::Error,
        },
    )
    .await?;
    job_from(&row)
}

/// Sends a claimed job back to the queue, claimable from `available_at`.
async fn requeue_job(
    conn: &mut SqliteConnection,
    job: &Job,
    available_at: Timestamp,
    error: Option<&str>,
) -> StoreResult<Job> {
    let row = sqlx::query(&format!(
        "UPDATE jobs SET state = 'pending', available_at = $2, lease_owner = NULL, \
         lease_token = NULL, lease_expires_at = NULL, last_error = COALESCE($3, last_error) \
         WHERE id = $1 RETURNING {JOB_COLS}"
    ))
    .bind(job.id.0)
    .bind(available_at.0)
    .bind(error)
    .fetch_one(&mut *conn)
    .await?;
    set_submission_status(conn, job.submission, queued_status(job.kind)).await?;
    job_from(&row)
}

async fn reap_in(conn: &mut SqliteConnection, now: Timestamp) -> StoreResult<usize> {
    let rows = sqlx::query(&format!(
        "SELECT {JOB_COLS} FROM jobs WHERE state = 'running' AND lease_expires_at < $1 ORDER BY id"
    ))
    .bind(now.0)
    .fetch_all(&mut *conn)
    .await?;
    for row in &rows {
        let job = job_from(row)?;
        let stamp = job_stamp(&mut *conn, &job, now).await?;
        let retried = job.attempts < job.max_attempts;
        record(
            &mut *conn,
            stamp,
            AuditEvent::JobLeaseExpired {
                job: job.id,
                attempt: job.attempts,
                retried,
            },
        )
        .await?;
        if retried {
            requeue_job(&mut *conn, &job, now, Some("lease expired")).await?;
        } else {
            let reason = format!("lease expired on all {} attempts", job.attempts);
            give_up_job(&mut *conn, stamp, &job, &reason).await?;
        }
        tracing::warn!(
            job = job.id.0,
            attempt = job.attempts,
            retried,
            "job lease expired"
        );
    }
    Ok(rows.len())
}

/// A dataset's caps in micro-ε: the strictest terms of its hospitals.
struct Caps {
    min_level: PrivacyLevel,
    per_team_micro: i64,
    total_micro: i64,
}

/// The terms each hospital set for `dataset`, and the caps that apply: the strictest of
/// those terms and, for every contributing hospital that set none, of `defaults`.
async fn terms_in(
    conn: &mut SqliteConnection,
    dataset: DatasetId,
    defaults: &DatasetPrivacyTerms,
) -> StoreResult<(Caps, Vec<(OrgId, DatasetPrivacyTerms)>)> {
    let rows = sqlx::query(
        "SELECT hospital_id, min_level, per_team_micro, total_micro FROM dataset_privacy_terms \
         WHERE dataset_id = $1 ORDER BY hospital_id",
    )
    .bind(dataset.0)
    .fetch_all(&mut *conn)
    .await?;
    let contributors: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT hospital_id FROM contributions WHERE dataset_id = $1 AND state = 'validated' \
         AND withdrawn_at IS NULL",
    )
    .bind(dataset.0)
    .fetch_all(&mut *conn)
    .await?;
    let mut set = Vec::with_capacity(rows.len());
    let mut caps: Option<Caps> = None;
    let mut tighten = |level: PrivacyLevel, per_team: i64, total: i64| {
        caps = Some(match caps.take() {
            None => Caps {
                min_level: level,
                per_team_micro: per_team,
                total_micro: total,
            },
            Some(c) => Caps {
                min_level: c.min_level.max(level),
                per_team_micro: c.per_team_micro.min(per_team),
                total_micro: c.total_micro.min(total),
            },
        });
    };
    for row in &rows {
        let hospital = OrgId(row.try_get("hospital_id")?);
        let level: String = row.try_get("min_level")?;
        let level: PrivacyLevel = level
            .parse()
            .map_err(|err: String| StoreError::Corrupt(err))?;
        let per_team: i64 = row.try_get("per_team_micro")?;
        let total: i64 = row.try_get("total_micro")?;
        tighten(level, per_team, total);
        set.push((
            hospital,
            DatasetPrivacyTerms {
                min_level: level,
                per_team_epsilon: epsilon_of_micro(per_team),
                total_epsilon: epsilon_of_micro(total),
            },
        ));
    }
    let unset = contributors.is_empty()
        || contributors
            .iter()
            .any(|c| !set.iter().any(|(h, _)| h.0 == *c));
    if unset {
        tighten(
            defaults.min_level,
            micro_epsilon_limit(defaults.per_team_epsilon).unwrap_or(0),
            micro_epsilon_limit(defaults.total_epsilon).unwrap_or(0),
        );
    }
    let caps = caps.unwrap_or(Caps {
        min_level: defaults.min_level,
        per_team_micro: 0,
        total_micro: 0,
    });
    Ok((caps, set))
}

/// What has been charged on `dataset`: by `team` in `competition`, by `team` anywhere, by
/// everyone (micro-ε); the last two include the synthetic releases, which every team sees.
async fn spent_in(
    conn: &mut SqliteConnection,
    team: OrgId,
    dataset: DatasetId,
    competition: CompetitionId,
) -> StoreResult<(i64, i64, i64)> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(CASE WHEN competition_id = $3 THEN micro_epsilon ELSE 0 END), 0) AS BIGINT) AS here, \
         CAST(COALESCE(SUM(micro_epsilon), 0) AS BIGINT) AS anywhere \
         FROM privacy_charges WHERE team_id = $1 AND dataset_id = $2",
    )
    .bind(team.0)
    .bind(dataset.0)
    .bind(competition.0)
    .fetch_one(&mut *conn)
    .await?;
    let (total, _) = synthetic::teams_spent(&mut *conn, dataset).await?;
    // Every team sees the published synthetic data: its ε counts for each team and for all.
    let synthetic = synthetic::synthetic_spent(&mut *conn, dataset).await?;
    let anywhere: i64 = row.try_get("anywhere")?;
    Ok((
        row.try_get("here")?,
        anywhere.saturating_add(synthetic),
        total.saturating_add(synthetic),
    ))
}

/// Checks a reservation against every cap inside the finishing transaction; returns the
/// charges to write, or why it is refused (nothing is written then).
async fn check_reservation(
    conn: &mut SqliteConnection,
    job: &Job,
    reservation: &Reservation,
    at: Timestamp,
) -> StoreResult<Result<ReservedRun, String>> {
    if let Some(max) = reservation.max_public_releases {
        let releases: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT job_id) FROM privacy_charges \
             WHERE team_id = $1 AND competition_id = $2 AND purpose = 'public_score'",
        )
        .bind(job.team.0)
        .bind(job.competition.0)
        .fetch_one(&mut *conn)
        .await?;
        if releases >= i64::from(max) {
            return Ok(Err(format!(
                "the competition's cap of {max} released scores per team is reached"
            )));
        }
    }
    let final_micro = match reservation.final_micro_epsilon {
        Some(micro) => {
            let reserved: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM privacy_charges \
                 WHERE team_id = $1 AND competition_id = $2 AND purpose = 'final_score'",
            )
            .bind(job.team.0)
            .bind(job.competition.0)
            .fetch_one(&mut *conn)
            .await?;
            (reserved == 0).then_some(micro)
        }
        None => None,
    };
    let amount = reservation.micro_epsilon + final_micro.unwrap_or(0);
    let mut reserved = ReservedRun::default();
    for dataset in &reservation.datasets {
        if let Some(refusal) = suspensions::suspension_refusal(&mut *conn, *dataset).await? {
            return Ok(Err(refusal));
        }
        let (caps, _) = terms_in(&mut *conn, *dataset, &reservation.default_terms).await?;
        if reservation.level < caps.min_level {
            return Ok(Err(format!(
                "the hospitals of {dataset} allow only competitions at the `{}` level",
                caps.min_level.as_str()
            )));
        }
        let (here, anywhere, everyone) =
            spent_in(&mut *conn, job.team, *dataset, job.competition).await?;
        let needs = |spent: i64, cap: i64| spent.saturating_add(amount) > cap;
        let refusal = if needs(here, reservation.competition_cap_micro) {
            Some("the competition's budget per team")
        } else if needs(anywhere, caps.per_team_micro) {
            Some("the hospitals' cap per team")
        } else if needs(everyone, caps.total_micro) {
            Some("the hospitals' total across teams")
        } else {
            None
        };
        if let Some(which) = refusal {
            return Ok(Err(format!(
                "privacy budget exhausted: a run needs ε = {} on {dataset}, more than {which} has left",
                epsilon_of_micro(amount)
            )));
        }
        let contract = contracts::covering_contract(
            &mut *conn,
            job,
            *dataset,
            reservation.delivery,
            at,
            here,
            amount,
        )
        .await?;
        match contract {
            Ok(contract) => reserved.contracts.push((*dataset, contract)),
            Err(refusal) => return Ok(Err(refusal)),
        }
        reserved
            .charges
            .push((*dataset, reservation.purpose, reservation.micro_epsilon));
        if let Some(micro) = final_micro {
            reserved
                .charges
                .push((*dataset, ChargePurpose::FinalScore, micro));
        }
    }
    Ok(Ok(reserved))
}

/// What a reservation writes: the charges, and the contract each dataset is used under.
#[derive(Default)]
struct ReservedRun {
    charges: Vec<(DatasetId, ChargePurpose, i64)>,
    contracts: Vec<(DatasetId, ContractId)>,
}

async fn load_competition(
    conn: &mut SqliteConnection,
    row: &SqliteRow,
) -> StoreResult<Competition> {
    let id = CompetitionId(row.try_get("id")?);
    let datasets = sqlx::query(
        "SELECT dataset_id FROM competition_datasets WHERE competition_id = $1 ORDER BY position",
    )
    .bind(id.0)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| r.try_get::<i64, _>("dataset_id").map(DatasetId))
    .collect::<Result<Vec<_>, _>>()?;
    let bundle_json: String = row.try_get("bundle_json")?;
    Ok(Competition {
        id,
        slug: row.try_get("slug")?,
        bundle: serde_json::from_str(&bundle_json)?,
        bundle_yaml: row.try_get("bundle_yaml")?,
        bundle_sha256: row.try_get("bundle_sha256")?,
        datasets,
        created_by: AccountId(row.try_get("created_by")?),
        created_at: ts(row, "created_at")?,
        closed_at: ts_opt(row, "closed_at")?,
        published_at: ts_opt(row, "published_at")?,
    })
}

// ---------------------------------------------------------------------------------------

#[async_trait]
impl AccountRepo for SqliteStore {
    async fn count_accounts(&self, role: Role) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE role = $1")
                .bind(role.as_str())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn insert_account(&self, stamp: Stamp, new: &NewAccount) -> StoreResult<Account> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO accounts (email, display_name, role, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {ACCOUNT_COLS}"
        ))
        .bind(&new.email)
        .bind(&new.display_name)
        .bind(new.role.as_str())
        .bind(&new.password_hash)
        .bind(stamp.at.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(unique_as("an account with this e-mail"))?;
        let account = account_from(&row)?;
        record(
            &mut tx,
            stamp,
            AuditEvent::AccountCreated {
                account: account.id,
                role: account.role,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(account)
    }

    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from).transpose()
    }

    async fn account_by_email(&self, email: &str) -> StoreResult<Option<(Account, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS}, password_hash FROM accounts WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some((account_from(&row)?, row.try_get("password_hash")?))),
            None => Ok(None),
        }
    }

    async fn set_account_disabled(
        &self,
        stamp: Stamp,
        id: AccountId,
        disabled: bool,
    ) -> StoreResult<Option<Account>> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "UPDATE accounts SET disabled = $2 WHERE id = $1 RETURNING {ACCOUNT_COLS}"
        ))
        .bind(id.0)
        .bind(disabled)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        if disabled {
            sqlx::query(
                "UPDATE credentials SET revoked_at = $2 WHERE account_id = $1 AND revoked_at IS NULL",
            )
            .bind(id.0)
            .bind(stamp.at.0)
            .execute(&mut *tx)
            .await?;
        }
        record(
            &mut tx,
            stamp,
            AuditEvent::AccountDisabled {
                account: id,
                disabled,
            },
        )
        .await?;
        tx.commit().await?;
        account_from(&row).map(Some)
    }

    async fn insert_credential(
        &self,
        stamp: Stamp,
        new: &NewCredential,
    ) -> StoreResult<Credential> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO credentials (account_id, kind, name, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {CREDENTIAL_COLS}"
        ))
        .bind(new.account.0)
        .bind(new.kind.as_str())
        .bind(&new.name)
        .bind(new.token_hash.0.as_slice())
        .bind(stamp.at.0)
        .bind(new.expires_at.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(unique_as("a credential with this token"))?;
        let credential = credential_from(&row)?;
        record(
            &mut tx,
            stamp,
            AuditEvent::CredentialIssued {
                credential: credential.id,
                account: credential.account,
                kind: credential.kind,
                expires_at: credential.expires_at,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(credential)
    }

    async fn credential(&self, id: CredentialId) -> StoreResult<Option<Credential>> {
        let row = sqlx::query(&format!(
            "SELECT {CREDENTIAL_COLS} FROM credentials WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(credential_from).transpose()
    }

    async fn credential_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<Credential>> {
        let row = sqlx::query(&format!(
            "SELECT {CREDENTIAL_COLS} FROM credentials WHERE token_hash = $1"
        ))
        .bind(hash.0.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(credential_from).transpose()
    }

    async fn touch_credential(&self, id: CredentialId, at: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE credentials SET last_used_at = $2 WHERE id = $1")
            .bind(id.0)
            .bind(at.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn revoke_credential(&self, stamp: Stamp, id: CredentialId) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "UPDATE credentials SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL \
             RETURNING account_id",
        )
        .bind(id.0)
        .bind(stamp.at.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let account = AccountId(row.try_get("account_id")?);
        record(
            &mut tx,
            stamp,
            AuditEvent::CredentialRevoked {
                credential: id,
                account,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn credentials_of(&self, account: AccountId) -> StoreResult<Vec<Credential>> {
        let rows = sqlx::query(&format!(
            "SELECT {CREDENTIAL_COLS} FROM credentials WHERE account_id = $1 ORDER BY id"
        ))
        .bind(account.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(credential_from).collect()
    }
}

#[async_trait]
impl OrgRepo for SqliteStore {
    async fn insert_org(
        &self,
        stamp: Stamp,
        kind: OrgKind,
        name: &str,
        statement: &str,
        applicant: AccountId,
    ) -> StoreResult<Organization> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO organizations (kind, name, statement, admission, applied_by, created_at) \
             VALUES ($1, $2, $3, 'pending', $4, $5) RETURNING {ORG_COLS}"
        ))
        .bind(kind.as_str())
        .bind(name)
        .bind(statement)
        .bind(applicant.0)
        .bind(stamp.at.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(unique_as("an organization with this name"))?;
        let org = org_from(&row)?;
        let joined =
            sqlx::query("UPDATE accounts SET org_id = $1 WHERE id = $2 AND org_id IS NULL")
                .bind(org.id.0)
                .bind(applicant.0)
                .execute(&mut *tx)
                .await?;
        if joined.rows_affected() != 1 {
            // Dropping the transaction rolls the new organization back.
            return Err(StoreError::Duplicate(
                "an organization membership for this account".to_owned(),
            ));
        }
        record(
            &mut tx,
            stamp,
            AuditEvent::AdmissionRequested {
                org: org.id,
                kind,
                applicant,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(org)
    }

    async fn org(&self, id: OrgId) -> StoreResult<Option<Organization>> {
        let row = sqlx::query(&format!(
            "SELECT {ORG_COLS} FROM organizations WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(org_from).transpose()
    }

    async fn orgs(&self, admission: Option<AdmissionState>) -> StoreResult<Vec<Organization>> {
        let rows = sqlx::query(&format!(
            "SELECT {ORG_COLS} FROM organizations WHERE (CAST($1 AS TEXT) IS NULL OR admission = $1) ORDER BY id"
        ))
        .bind(admission.map(AdmissionState::as_str))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(org_from).collect()
    }

    async fn review_org(
        &self,
        stamp: Stamp,
        id: OrgId,
        admission: AdmissionState,
        tier: Option<Tier>,
        note: Option<&str>,
    ) -> StoreResult<Option<Organization>> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "UPDATE organizations SET admission = $2, tier = $3, reviewed_by = $4, \
             reviewed_at = $5, review_note = $6 WHERE id = $1 RETURNING {ORG_COLS}"
        ))
        .bind(id.0)
        .bind(admission.as_str())
        .bind(tier.map(Tier::as_str))
        .bind(stamp.actor.map(|a| a.0))
        .bind(stamp.at.0)
        .bind(note)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        record(
            &mut tx,
            stamp,
            AuditEvent::AdmissionReviewed {
                org: id,
                approved: admission == AdmissionState::Approved,
                tier,
            },
        )
        .await?;
        tx.commit().await?;
        org_from(&row).map(Some)
    }

    async fn add_member(&self, stamp: Stamp, org: OrgId, account: AccountId) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let joined =
            sqlx::query("UPDATE accounts SET org_id = $1 WHERE id = $2 AND org_id IS NULL")
                .bind(org.0)
                .bind(account.0)
                .execute(&mut *tx)
                .await?;
        if joined.rows_affected() != 1 {
            return Ok(false);
        }
        record(
            &mut tx,
            stamp,
            AuditEvent::TeamMemberAdded { team: org, account },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn members(&self, org: OrgId) -> StoreResult<Vec<Account>> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts WHERE org_id = $1 ORDER BY id"
        ))
        .bind(org.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(account_from).collect()
    }
}

#[async_trait]
impl CompetitionRepo for SqliteStore {
    async fn insert_competition(
        &self,
        stamp: Stamp,
        new: &NewCompetition,
    ) -> StoreResult<Competition> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO competitions (slug, title, bundle_yaml, bundle_json, bundle_sha256, \
             created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COMPETITION_COLS}"
        ))
        .bind(&new.slug)
        .bind(&new.title)
        .bind(&new.bundle_yaml)
        .bind(&new.bundle_json)
        .bind(&new.bundle_sha256)
        .bind(stamp.actor.map(|a| a.0))
        .bind(stamp.at.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(unique_as("a competition with this slug"))?;
        let id: i64 = row.try_get("id")?;
        for (position, dataset) in new.datasets.iter().enumerate() {
            sqlx::query(
                "INSERT INTO competition_datasets (competition_id, dataset_id, position) \
                 VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(dataset.0)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        let competition = load_competition(&mut tx, &row).await?;
        record(
            &mut tx,
            stamp,
            AuditEvent::CompetitionCreated {
                competition: competition.id,
                slug: competition.slug.clone(),
                bundle_sha256: competition.bundle_sha256.clone(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(competition)
    }

    async fn competition(&self, id: CompetitionId) -> StoreResult<Option<Competition>> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(&format!(
            "SELECT {COMPETITION_COLS} FROM competitions WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(row) => load_competition(&mut conn, &row).await.map(Some),
            None => Ok(None),
        }
    }

    async fn competitions(&self) -> StoreResult<Vec<Competition>> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(&format!(
            "SELECT {COMPETITION_COLS} FROM competitions ORDER BY id"
        ))
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(load_competition(&mut conn, row).await?);
        }
        Ok(out)
    }

    async fn close_competition(&self, stamp: Stamp, id: CompetitionId) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE competitions SET closed_at = $2 WHERE id = $1 AND closed_at IS NULL",
        )
        .bind(id.0)
        .bind(stamp.at.0)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        record(
            &mut tx,
            stamp,
            AuditEvent::CompetitionClosed { competition: id },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn publish_competition(
        &self,
        stamp: Stamp,
        id: CompetitionId,
        releases: &[FinalRelease],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE competitions SET published_at = $2 \
             WHERE id = $1 AND closed_at IS NOT NULL AND published_at IS NULL",
        )
        .bind(id.0)
        .bind(stamp.at.0)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        for release in releases {
            sqlx::query(
                "UPDATE submissions SET released_private_score = $2 \
                 WHERE id = $1 AND competition_id = $3",
            )
            .bind(release.submission.0)
            .bind(release.released_private_score)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
            record(
                &mut tx,
                stamp,
                AuditEvent::FinalScoreReleased {
                    competition: id,
                    team: release.team,
                    submission: release.submission,
                    released_private_score: release.released_private_score,
                },
            )
            .await?;
        }
        for release in releases {
            for site in &release.site_scores {
                sqlx::query(
                    "INSERT INTO site_score_releases (submission_id, hospital_id, \
                     released_score, epsilon) VALUES ($1, $2, $3, $4)",
                )
                .bind(release.submission.0)
                .bind(site.hospital.0)
                .bind(site.released_score)
                .bind(site.epsilon)
                .execute(&mut *tx)
                .await?;
                record(
                    &mut tx,
                    stamp,
                    AuditEvent::SiteScoreReleased {
                        competition: id,
                        submission: release.submission,
                        hospital: site.hospital,
                        epsilon: site.epsilon,
                    },
                )
                .await?;
            }
        }
        record(
            &mut tx,
            stamp,
            AuditEvent::CompetitionPublished { competition: id },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn accept_agreement(
        &self,
        stamp: Stamp,
        acceptance: &AgreementAcceptance,
    ) -> StoreResult<AgreementAcceptance> {
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO agreement_acceptances (competition_id, team_id, accepted_by, \
             agreement_sha256, accepted_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (competition_id, team_id) DO NOTHING",
        )
        .bind(acceptance.competition.0)
        .bind(acceptance.team.0)
        .bind(acceptance.accepted_by.0)
        .bind(&acceptance.agreement_sha256)
        .bind(acceptance.accepted_at.0)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 1 {
            record(
                &mut tx,
                stamp,
                AuditEvent::AgreementAccepted {
                    competition: acceptance.competition,
                    team: acceptance.team,
                    account: acceptance.accepted_by,
                    agreement_sha256: acceptance.agreement_sha256.clone(),
                },
            )
            .await?;
        }
        tx.commit().await?;
        self.agreement_acceptance(acceptance.competition, acceptance.team)
            .await?
            .ok_or_else(|| StoreError::Missing("agreement acceptance".to_owned()))
    }

    async fn agreement_acceptance(
        &self,
        competition: CompetitionId,
        team: OrgId,
    ) -> StoreResult<Option<AgreementAcceptance>> {
        let row = sqlx::query(
            "SELECT competition_id, team_id, accepted_by, agreement_sha256, accepted_at \
             FROM agreement_acceptances WHERE competition_id = $1 AND team_id = $2",
        )
        .bind(competition.0)
        .bind(team.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(AgreementAcceptance {
                competition: CompetitionId(row.try_get("competition_id")?),
                team: OrgId(row.try_get("team_id")?),
                accepted_by: AccountId(row.try_get("accepted_by")?),
                agreement_sha256: row.try_get("agreement_sha256")?,
                accepted_at: ts(&row, "accepted_at")?,
            })
        })
        .transpose()
    }
}

#[async_trait]
impl DatasetRepo for SqliteStore {
    async fn insert_dataset(&self, stamp: Stamp, new: &NewDataset) -> StoreResult<Dataset> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO datasets (slug, title, description, state, created_by, created_at) \
             VALUES ($1, $2, $3, 'uploaded', $4, $5) RETURNING {DATASET_COLS}"
        ))
        .bind(&new.slug)
        .bind(&new.title)
        .bind(&new.description)
        .bind(stamp.actor.map(|a| a.0))
        .bind(stamp.at.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(unique_as("a dataset with this slug"))?;
        let dataset = dataset_from(&row)?;
        record(
            &mut tx,
            stamp,
            AuditEvent::DatasetCreated {
                dataset: dataset.id,
                slug: dataset.slug.clone(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(dataset)
    }

    async fn dataset(&self, id: DatasetId) -> StoreResult<Option<Dataset>> {
        let row = sqlx::query(&format!(
            "SELECT {DATASET_COLS} FROM datasets WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(dataset_from).transpose()
    }

    async fn dataset_by_slug(&self, slug: &str) -> StoreResult<Option<Dataset>> {
        let row = sqlx::query(&format!(
            "SELECT {DATASET_COLS} FROM datasets WHERE slug = $1"
        ))
        .bind(slug)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(dataset_from).transpose()
    }

    async fn datasets(&self) -> StoreResult<Vec<Dataset>> {
        let rows = sqlx::query(&format!("SELECT {DATASET_COLS} FROM datasets ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(dataset_from).collect()
    }

    async fn insert_contribution(
        &self,
        stamp: Stamp,
        new: &NewContribution,
    ) -> StoreResult<AddContribution> {
        let mut tx = self.write_tx().await?;
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM datasets WHERE id = $1")
            .bind(new.dataset.0)
            .fetch_optional(&mut *tx)
            .await?;
        let state: DatasetState =
            parse(state.ok_or_else(|| StoreError::Missing(new.dataset.to_string()))?)?;
        if matches!(state, DatasetState::Approved | DatasetState::Rejected) {
            return Ok(AddContribution::DatasetClosed(state));
        }
        let row = sqlx::query(&format!(
            "INSERT INTO contributions (dataset_id, hospital_id, uploaded_by, file_name, manifest, \
             object_id, content_sha256, size_bytes, state, report_json, created_at, \
             commitment_salt, key_scope) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'uploaded', 'null', $9, $10, $11) \
             RETURNING {CONTRIBUTION_COLS}"
        ))
        .bind(new.dataset.0)
        .bind(new.hospital.0)
        .bind(new.uploaded_by.0)
        .bind(&new.file_name)
        .bind(new.manifest.as_deref())
        .bind(new.object.to_hex())
        .bind(&new.content_sha256)
        .bind(new.size_bytes)
        .bind(stamp.at.0)
        .bind(&new.commitment_salt)
        .bind(&new.key_scope)
        .fetch_one(&mut *tx)
        .await?;
        let contribution = contribution_from(&row)?;
        sqlx::query("UPDATE datasets SET state = 'uploaded' WHERE id = $1")
            .bind(new.dataset.0)
            .execute(&mut *tx)
            .await?;
        record(
            &mut tx,
            stamp,
            AuditEvent::ContributionUploaded {
                contribution: contribution.id,
                dataset: contribution.dataset,
                hospital: contribution.hospital,
                content_commitment: crate::vault::commitment(
                    &new.commitment_salt,
                    &contribution.content_sha256,
                ),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(AddContribution::Added(Box::new(contribution)))
    }

    async fn record_validation(
        &self,
        stamp: Stamp,
        id: ContributionId,
        state: ContributionState,
        rows: Option<i64>,
        report: &serde_json::Value,
    ) -> StoreResult<Option<Contribution>> {
        let report_json = serde_json::to_string(report)?;
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "UPDATE contributions SET state = $2, row_count = $3, report_json = $4, \
             object_id = CASE WHEN $2 = 'rejected' THEN NULL ELSE object_id END \
             WHERE id = $1 AND state = 'uploaded' RETURNING {CONTRIBUTION_COLS}"
        ))
        .bind(id.0)
        .bind(state.as_str())
        .bind(rows)
        .bind(&report_json)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let contribution = contribution_from(&row)?;
        // A dataset is validated once no contribution awaits validation and at least one
        // passed; rejected uploads are refused files, they do not block the dataset.
        sqlx::query(
            "UPDATE datasets SET state = CASE \
               WHEN EXISTS (SELECT 1 FROM contributions c WHERE c.dataset_id = $1 AND c.state = 'uploaded') \
                 THEN 'uploaded' \
               WHEN EXISTS (SELECT 1 FROM contributions c WHERE c.dataset_id = $1 AND c.state = 'validated') \
                 THEN 'validated' \
               ELSE 'uploaded' END \
             WHERE id = $1 AND state IN ('uploaded', 'validated')",
        )
        .bind(contribution.dataset.0)
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            stamp,
            AuditEvent::ContributionValidated {
                contribution: id,
                dataset: contribution.dataset,
                accepted: state == ContributionState::Validated,
                report_commitment: crate::vault::commitment(
                    contribution.commitment_salt.as_deref().unwrap_or_default(),
                    &crate::vault::sha256_hex(report_json.as_bytes()),
                ),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Some(contribution))
    }

    async fn contribution(&self, id: ContributionId) -> StoreResult<Option<Contribution>> {
        let row = sqlx::query(&format!(
            "SELECT {CONTRIBUTION_COLS} FROM contributions WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(contribution_from).transpose()
    }

    async fn contributions(&self, dataset: DatasetId) -> StoreResult<Vec<Contribution>> {
        let rows = sqlx::query(&format!(
            "SELECT {CONTRIBUTION_COLS} FROM contributions WHERE dataset_id = $1 ORDER BY id"
        ))
        .bind(dataset.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(contribution_from).collect()
    }

    async fn review_dataset(
        &self,
        stamp: Stamp,
        id: DatasetId,
        review: &crate::model::DatasetReview,
    ) -> StoreResult<ReviewDataset> {
        let approve = review.approve;
        let note = review.note.as_deref();
        let checklist = serde_json::to_string(&review.checklist)?;
        let new_state = if approve {
            DatasetState::Approved
        } else {
            DatasetState::Rejected
        };
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "UPDATE datasets SET state = $2, reviewed_by = $3, reviewed_at = $4, review_note = $5, \
             review_checklist = $6 WHERE id = $1 AND state = 'validated' RETURNING {DATASET_COLS}"
        ))
        .bind(id.0)
        .bind(new_state.as_str())
        .bind(stamp.actor.map(|a| a.0))
        .bind(stamp.at.0)
        .bind(note)
        .bind(&checklist)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM datasets WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&mut *tx)
                    .await?;
            return match state {
                Some(state) => Ok(ReviewDataset::NotReviewable(parse(state)?)),
                None => Err(StoreError::Missing(id.to_string())),
            };
        };
        record(
            &mut tx,
            stamp,
            AuditEvent::DatasetReviewed {
                dataset: id,
                approved: approve,
                failed_items: review.failed(),
                checklist_sha256: crate::vault::sha256_hex(checklist.as_bytes()),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(ReviewDataset::Reviewed(dataset_from(&row)?))
    }

    async fn dataset_usage(&self, dataset: DatasetId) -> StoreResult<Vec<DatasetUse>> {
        let rows = sqlx::query(
            "SELECT competition_id, team_id, job_id, purpose, micro_epsilon, charged_at \
             FROM privacy_charges WHERE dataset_id = $1 ORDER BY id",
        )
        .bind(dataset.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DatasetUse {
                    competition: CompetitionId(row.try_get("competition_id")?),
                    team: OrgId(row.try_get("team_id")?),
                    job: row.try_get::<Option<i64>, _>("job_id")?.map(JobId),
                    purpose: parse(row.try_get("purpose")?)?,
                    epsilon: epsilon_of_micro(row.try_get("micro_epsilon")?),
                    at: ts(row, "charged_at")?,
                })
            })
            .collect()
    }

    async fn set_privacy_terms(
        &self,
        stamp: Stamp,
        dataset: DatasetId,
        hospital: OrgId,
        terms: &DatasetPrivacyTerms,
    ) -> StoreResult<()> {
        let per_team = micro_epsilon_limit(terms.per_team_epsilon)
            .map_err(|err| StoreError::Corrupt(err.to_string()))?;
        let total = micro_epsilon_limit(terms.total_epsilon)
            .map_err(|err| StoreError::Corrupt(err.to_string()))?;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO dataset_privacy_terms (dataset_id, hospital_id, min_level, per_team_micro, \
             total_micro, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (dataset_id, hospital_id) DO UPDATE SET min_level = excluded.min_level, \
             per_team_micro = excluded.per_team_micro, total_micro = excluded.total_micro, \
             updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )
        .bind(dataset.0)
        .bind(hospital.0)
        .bind(terms.min_level.as_str())
        .bind(per_team)
        .bind(total)
        .bind(stamp.actor.map(|a| a.0))
        .bind(stamp.at.0)
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            stamp,
            AuditEvent::DatasetPrivacyTermsSet {
                dataset,
                hospital,
                min_level: terms.min_level,
                per_team_epsilon: epsilon_of_micro(per_team),
                total_epsilon: epsilon_of_micro(total),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_dataset_suspension(
        &self,
        stamp: Stamp,
        dataset: DatasetId,
        hospital: OrgId,
        reason: Option<&str>,
    ) -> StoreResult<bool> {
        suspensions::set_suspension(self, stamp, dataset, hospital, reason).await
    }

    async fn withdraw_contribution(
        &self,
        stamp: Stamp,
        id: ContributionId,
        reason: &str,
    ) -> StoreResult<Option<(Contribution, Option<ObjectId>)>> {
        withdrawals::withdraw(self, stamp, id, reason).await
    }

    async fn dataset_suspensions(
        &self,
        dataset: DatasetId,
    ) -> StoreResult<Vec<crate::model::DatasetSuspension>> {
        let mut conn = self.pool.acquire().await?;
        suspensions::suspensions_of(&mut conn, dataset).await
    }

    async fn dataset_privacy(
        &self,
        dataset: DatasetId,
        defaults: &DatasetPrivacyTerms,
    ) -> StoreResult<DatasetPrivacy> {
        let mut conn = self.pool.acquire().await?;
        let (caps, by_hospital) = terms_in(&mut conn, dataset, defaults).await?;
        let (total, most) = synthetic::teams_spent(&mut conn, dataset).await?;
        let synthetic = synthetic::synthetic_spent(&mut conn, dataset).await?;
        Ok(DatasetPrivacy {
            dataset,
            effective: DatasetPrivacyTerms {
                min_level: caps.min_level,
                per_team_epsilon: epsilon_of_micro(caps.per_team_micro),
                total_epsilon: epsilon_of_micro(caps.total_micro),
            },
            by_hospital,
            spent_total: epsilon_of_micro(total),
            spent_most_by_one_team: epsilon_of_micro(most),
            spent_synthetic: epsilon_of_micro(synthetic),
            suspensions: suspensions::suspensions_of(&mut conn, dataset).await?,
        })
    }
}

#[async_trait]
impl KeyRepo for SqliteStore {
    async fn data_key(&self, scope: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT wrapped_key FROM data_keys WHERE scope = $1")
                .bind(scope)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn insert_data_key(
        &self,
        scope: &str,
        wrapped: &[u8],
        at: Timestamp,
    ) -> StoreResult<Vec<u8>> {
        sqlx::query(
            "INSERT INTO data_keys (scope, wrapped_key, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (scope) DO NOTHING",
        )
        .bind(scope)
        .bind(wrapped)
        .bind(at.0)
        .execute(&self.pool)
        .await?;
        self.data_key(scope)
            .await?
            .ok_or_else(|| StoreError::Missing(format!("data key for {scope}")))
    }
}

#[async_trait]
impl SubmissionRepo for SqliteStore {
    /// PostgreSQL note: under READ COMMITTED the count and the insert race; lock the team's
    /// organization row (`SELECT ... FOR UPDATE`) first.
    async fn insert_submission(
        &self,
        stamp: Stamp,
        new: &NewSubmission,
        daily_limit: u32,
    ) -> StoreResult<InsertSubmission> {
        let day = stamp.at.utc_day();
        let mut tx = self.write_tx().await?;
        let used: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM submissions WHERE competition_id = $1 AND team_id = $2 AND utc_day = $3",
        )
        .bind(new.competition.0)
        .bind(new.team.0)
        .bind(day)
        .fetch_one(&mut *tx)
        .await?;
        if used >= i64::from(daily_limit) {
            return Ok(InsertSubmission::LimitReached { used });
        }
        let row = sqlx::query(&format!(
            "INSERT INTO submissions (competition_id, team_id, submitted_by, phase, object_id, \
             module_sha256, size_bytes, utc_day, status, created_at, kind, analysis_json) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued_dummy', $9, $10, $11) \
             RETURNING {SUBMISSION_COLS}"
        ))
        .bind(new.competition.0)
        .bind(new.team.0)
        .bind(new.submitted_by.0)
        .bind(&new.phase)
        .bind(new.object.to_hex())
        .bind(&new.module_sha256)
        .bind(new.size_bytes)
        .bind(day)
        .bind(stamp.at.0)
        .bind(new.kind.as_str())
        .bind(
            new.analysis
                .as_ref()
                .map(serde_json::to_string)
                .transpose()?,
        )
        .fetch_one(&mut *tx)
        .await?;
        let submission = submission_from(&row)?;
        record(
            &mut tx,
            stamp,
            AuditEvent::SubmissionReceived {
                submission: submission.id,
                competition: submission.competition,
                team: submission.team,
                phase: submission.phase.clone(),
                module_sha256: submission.module_sha256.clone(),
            },
        )
        .await?;
        let job = insert_job(
            &mut tx,
            stamp,
            &submission,
            JobKind::DummyRun,
            new.max_attempts,
        )
        .await?;
        tx.commit().await?;
        Ok(InsertSubmission::Inserted {
            submission: Box::new(submission),
            job: Box::new(job),
        })
    }

    async fn submission(&self, id: SubmissionId) -> StoreResult<Option<Submission>> {
        let row = sqlx::query(&format!(
            "SELECT {SUBMISSION_COLS} FROM submissions WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(submission_from).transpose()
    }

    async fn submissions(
        &self,
        competition: CompetitionId,
        team: Option<OrgId>,
    ) -> StoreResult<Vec<Submission>> {
        let rows = sqlx::query(&format!(
            "SELECT {SUBMISSION_COLS} FROM submissions \
             WHERE competition_id = $1 AND (CAST($2 AS BIGINT) IS NULL OR team_id = $2) ORDER BY id DESC"
        ))
        .bind(competition.0)
        .bind(team.map(|t| t.0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(submission_from).collect()
    }

    async fn submissions_today(
        &self,
        competition: CompetitionId,
        team: OrgId,
        utc_day: i64,
    ) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM submissions WHERE competition_id = $1 AND team_id = $2 AND utc_day = $3",
        )
        .bind(competition.0)
        .bind(team.0)
        .bind(utc_day)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn release_state(
        &self,
        competition: CompetitionId,
        team: OrgId,
    ) -> StoreResult<Option<serde_json::Value>> {
        let text: Option<String> = sqlx::query_scalar(
            "SELECT state_json FROM release_states WHERE competition_id = $1 AND team_id = $2",
        )
        .bind(competition.0)
        .bind(team.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
    }

    async fn budget(&self, query: &BudgetQuery) -> StoreResult<Vec<BudgetUse>> {
        let mut conn = self.pool.acquire().await?;
        let mut uses = Vec::with_capacity(query.datasets.len());
        for dataset in &query.datasets {
            let (caps, _) = terms_in(&mut conn, *dataset, &query.default_terms).await?;
            let (here, anywhere, everyone) =
                spent_in(&mut conn, query.team, *dataset, query.competition).await?;
            let remaining = (query.competition_cap_micro - here)
                .min(caps.per_team_micro - anywhere)
                .min(caps.total_micro - everyone)
                .max(0);
            uses.push(BudgetUse {
                dataset: *dataset,
                total: epsilon_of_micro(query.competition_cap_micro),
                spent: epsilon_of_micro(here),
                dataset_cap: epsilon_of_micro(caps.per_team_micro),
                dataset_spent: epsilon_of_micro(anywhere),
                remaining: epsilon_of_micro(remaining),
            });
        }
        Ok(uses)
    }

    async fn scored_submissions(
        &self,
        competition: CompetitionId,
    ) -> StoreResult<Vec<ScoredSubmission>> {
        let rows = sqlx::query(
            "SELECT s.id, s.team_id, o.name AS team_name, s.released_public_score, \
             s.exact_public_score, s.private_score, s.released_private_score, s.created_at, \
             s.release_at \
             FROM submissions s JOIN organizations o ON o.id = s.team_id \
             WHERE s.competition_id = $1 AND s.status = 'completed' AND s.outcome = 'ok' \
             AND (s.released_public_score IS NOT NULL OR s.private_score IS NOT NULL) \
             ORDER BY s.id",
        )
        .bind(competition.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ScoredSubmission {
                    submission: SubmissionId(row.try_get("id")?),
                    team: OrgId(row.try_get("team_id")?),
                    team_name: row.try_get("team_name")?,
                    released_public_score: row.try_get("released_public_score")?,
                    exact_public_score: row.try_get("exact_public_score")?,
                    private_score: row.try_get("private_score")?,
                    released_private_score: row.try_get("released_private_score")?,
                    created_at: ts(row, "created_at")?,
                    release_at: ts_opt(row, "release_at")?,
                })
            })
            .collect()
    }

    async fn site_score_releases(
        &self,
        competition: CompetitionId,
        hospital: Option<OrgId>,
    ) -> StoreResult<Vec<SiteScoreRow>> {
        // One statement for "one hospital" and "all": hospital 0 (no organization has it)
        // stands for every hospital; a typed sentinel prepares on PostgreSQL as NULL does not.
        let rows = sqlx::query(
            "SELECT r.submission_id, s.team_id, o.name AS team_name, r.hospital_id, \
             r.released_score, r.epsilon \
             FROM site_score_releases r \
             JOIN submissions s ON s.id = r.submission_id \
             JOIN organizations o ON o.id = s.team_id \
             WHERE s.competition_id = $1 AND ($2 = 0 OR r.hospital_id = $2) \
             ORDER BY r.hospital_id, r.submission_id",
        )
        .bind(competition.0)
        .bind(hospital.map_or(0, |h| h.0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SiteScoreRow {
                    submission: SubmissionId(row.try_get("submission_id")?),
                    team: OrgId(row.try_get("team_id")?),
                    team_name: row.try_get("team_name")?,
                    release: SiteScoreRelease {
                        hospital: OrgId(row.try_get("hospital_id")?),
                        released_score: row.try_get("released_score")?,
                        epsilon: row.try_get("epsilon")?,
                    },
                })
            })
            .collect()
    }
}

#[async_trait]
impl JobQueue for SqliteStore {
    async fn claim(&self, request: &ClaimRequest) -> StoreResult<Option<Job>> {
        let mut tx = self.write_tx().await?;
        reap_in(&mut tx, request.now).await?;
        // Bound as a pair so that one statement serves "either kind" and "this kind".
        let kinds = match request.kind {
            Some(kind) => [kind.as_str(); 2],
            None => [JobKind::DummyRun.as_str(), JobKind::RealRun.as_str()],
        };
        // Fair scheduling: the team whose last turn is oldest (never served = 0) first, then
        // that team's oldest job. Turns are kept per kind of job, so that the order of dummy
        // runs never depends on when real runs (whose durations follow the data) were
        // claimed. A team runs at most one real-data job at a time.
        let candidate: Option<i64> = sqlx::query_scalar(
            "SELECT j.id FROM jobs j \
             LEFT JOIN queue_turns t ON t.team_id = j.team_id AND t.kind = j.kind \
             WHERE j.state = 'pending' AND j.available_at <= $1 AND j.kind IN ($2, $3) \
               AND (j.kind <> 'real_run' OR NOT EXISTS ( \
                    SELECT 1 FROM jobs r WHERE r.team_id = j.team_id AND r.kind = 'real_run' \
                    AND r.state = 'running')) \
             ORDER BY COALESCE(t.last_turn, 0), j.id LIMIT 1",
        )
        .bind(request.now.0)
        .bind(kinds[0])
        .bind(kinds[1])
        .fetch_optional(&mut *tx)
        .await?;
        let Some(candidate) = candidate else {
            tx.commit().await?;
            return Ok(None);
        };
        let row = sqlx::query(&format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $2, \
             lease_token = $3, lease_expires_at = $4, started_at = $5 \
             WHERE id = $1 AND state = 'pending' RETURNING {JOB_COLS}"
        ))
        .bind(candidate)
        .bind(&request.worker)
        .bind(&request.lease_token)
        .bind(request.now.0.saturating_add(request.lease_ms))
        .bind(request.now.0)
        .fetch_optional(&mut *tx)
        .await?;
        // Unreachable under BEGIN IMMEDIATE; under PostgreSQL a concurrent claim can win the
        // row, and the caller simply asks again.
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        let job = job_from(&row)?;
        sqlx::query(
            "INSERT INTO queue_turns (team_id, kind, last_turn) \
             VALUES ($1, $2, (SELECT COALESCE(MAX(last_turn), 0) + 1 FROM queue_turns WHERE kind = $2)) \
             ON CONFLICT (team_id, kind) DO UPDATE SET last_turn = excluded.last_turn",
        )
        .bind(job.team.0)
        .bind(job.kind.as_str())
        .execute(&mut *tx)
        .await?;
        set_submission_status(&mut tx, job.submission, running_status(job.kind)).await?;
        let stamp = job_stamp(&mut tx, &job, request.now).await?;
        record(
            &mut tx,
            stamp,
            AuditEvent::JobStarted {
                job: job.id,
                attempt: job.attempts,
                // Which worker was free when a real run was claimed follows how long other
                // runs took: that is for the logs (operators), not the public ledger.
                worker: match job.kind {
                    JobKind::DummyRun => request.worker.clone(),
                    JobKind::RealRun => SEALED_WORKER.to_owned(),
                },
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Some(job))
    }

    async fn heartbeat(
        &self,
        job: JobId,
        lease_token: &str,
        now: Timestamp,
        lease_ms: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_expires_at = $3 WHERE id = $1 AND lease_token = $2 AND state = 'running'",
        )
        .bind(job.0)
        .bind(lease_token)
        .bind(now.0.saturating_add(lease_ms))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// PostgreSQL note: lock the job row (`FOR UPDATE`) and the team's budget rows first.
    async fn finish(&self, finish: &FinishJob) -> StoreResult<FinishOutcome> {
        let mut tx = self.write_tx().await?;
        let Some(job) = running_job_with_token(&mut tx, finish.job, &finish.lease_token).await?
        else {
            return Ok(FinishOutcome::LeaseLost);
        };
        // Events of a dummy run carry its finish time; those of a real run its release time.
        let stamp = job_stamp(&mut tx, &job, finish.at).await?;
        let reserved = match (&finish.follow_up, &finish.reservation) {
            (Some(JobKind::RealRun), Some(reservation)) => {
                match check_reservation(&mut tx, &job, reservation, finish.at).await? {
                    Ok(reserved) => reserved,
                    Err(reason) => return Ok(FinishOutcome::Refused { reason }),
                }
            }
            _ => ReservedRun::default(),
        };
        if job.kind == JobKind::RealRun
            && let Some(metering) = &finish.metering
        {
            contracts::meter_run(&mut tx, stamp, &job, metering).await?;
        }
        let job_state = if finish.outcome == RunOutcome::Error {
            "failed"
        } else {
            "succeeded"
        };
        let job_result = finish
            .job_result
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        let row = sqlx::query(&format!(
            "UPDATE jobs SET state = $2, outcome = $3, result_json = $4, finished_at = $5, \
             lease_token = NULL, lease_expires_at = NULL WHERE id = $1 RETURNING {JOB_COLS}"
        ))
        .bind(job.id.0)
        .bind(job_state)
        .bind(finish.outcome.as_str())
        .bind(job_result)
        .bind(finish.at.0)
        .fetch_one(&mut *tx)
        .await?;
        let finished = job_from(&row)?;
        let update = &finish.submission;
        let terminal = matches!(
            update.status,
            Some(SubmissionStatus::Completed | SubmissionStatus::Failed)
        );
        let result_json = update
            .result
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        let released_json = update
            .released_aggregate
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        if let Some(state) = &finish.release_state {
            sqlx::query(
                "INSERT INTO release_states (competition_id, team_id, state_json, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (competition_id, team_id) \
                 DO UPDATE SET state_json = excluded.state_json, updated_at = excluded.updated_at",
            )
            .bind(job.competition.0)
            .bind(job.team.0)
            .bind(serde_json::to_string(state)?)
            .bind(finish.at.0)
            .execute(&mut *tx)
            .await?;
        }
        let row = sqlx::query(&format!(
            "UPDATE submissions SET status = COALESCE($2, status), outcome = COALESCE($3, outcome), \
             note = COALESCE($4, note), dummy_score = COALESCE($5, dummy_score), \
             released_public_score = COALESCE($6, released_public_score), \
             exact_public_score = COALESCE($7, exact_public_score), \
             private_score = COALESCE($8, private_score), result_json = COALESCE($9, result_json), \
             finished_at = CASE WHEN $10 = 1 THEN $11 ELSE finished_at END, \
             released_json = COALESCE($12, released_json) \
             WHERE id = $1 RETURNING {SUBMISSION_COLS}"
        ))
        .bind(job.submission.0)
        .bind(update.status.map(SubmissionStatus::as_str))
        .bind(update.outcome.map(RunOutcome::as_str))
        .bind(update.note.as_deref())
        .bind(update.dummy_score)
        .bind(update.released_public_score)
        .bind(update.exact_public_score)
        .bind(update.private_score)
        .bind(result_json)
        .bind(i64::from(terminal))
        .bind(finish.at.0)
        .bind(released_json)
        .fetch_one(&mut *tx)
        .await?;
        let submission = submission_from(&row)?;
        record(
            &mut tx,
            stamp,
            AuditEvent::RunFinished {
                job: job.id,
                submission: job.submission,
                kind: job.kind,
                outcome: finish.outcome,
                released_public_score: update.released_public_score,
            },
        )
        .await?;
        if let Some(kind) = finish.follow_up {
            let follow_up = insert_job(
                &mut tx,
                stamp,
                &submission,
                kind,
                finish.follow_up_max_attempts,
            )
            .await?;
            if kind == JobKind::RealRun {
                sqlx::query("UPDATE submissions SET release_at = $2 WHERE id = $1")
                    .bind(submission.id.0)
                    .bind(finish.at.0.saturating_add(finish.release_delay_ms))
                    .execute(&mut *tx)
                    .await?;
            }
            contracts::insert_run_contracts(&mut tx, follow_up.id, &reserved.contracts).await?;
            for (dataset, purpose, micro) in &reserved.charges {
                sqlx::query(
                    "INSERT INTO privacy_charges (team_id, dataset_id, competition_id, \
                     submission_id, job_id, purpose, micro_epsilon, charged_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(job.team.0)
                .bind(dataset.0)
                .bind(job.competition.0)
                .bind(submission.id.0)
                .bind(follow_up.id.0)
                .bind(purpose.as_str())
                .bind(micro)
                .bind(finish.at.0)
                .execute(&mut *tx)
                .await?;
                record(
                    &mut tx,
                    stamp,
                    AuditEvent::BudgetCharged {
                        competition: job.competition,
                        team: job.team,
                        dataset: *dataset,
                        job: follow_up.id,
                        purpose: *purpose,
                        epsilon: epsilon_of_micro(*micro),
                    },
                )
                .await?;
            }
        }
        if terminal {
            record(
                &mut tx,
                stamp,
                AuditEvent::SubmissionFinished {
                    submission: submission.id,
                    status: submission.status,
                    outcome: submission.outcome.unwrap_or(finish.outcome),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(FinishOutcome::Finished(finished))
    }

    async fn retry_or_fail(
        &self,
        job: JobId,
        lease_token: &str,
        at: Timestamp,
        retry_at: Timestamp,
        error: &str,
        permanent: bool,
    ) -> StoreResult<RetryOutcome> {
        let stamp = Stamp { at, actor: None };
        let mut tx = self.write_tx().await?;
        let Some(job) = running_job_with_token(&mut tx, job, lease_token).await? else {
            return Ok(RetryOutcome::LeaseLost);
        };
        let stamp = job_stamp(&mut tx, &job, stamp.at).await?;
        let retried = !permanent && job.attempts < job.max_attempts;
        record(
            &mut tx,
            stamp,
            AuditEvent::JobAttemptFailed {
                job: job.id,
                attempt: job.attempts,
                retried,
            },
        )
        .await?;
        let outcome = if retried {
            RetryOutcome::Retried(requeue_job(&mut tx, &job, retry_at, Some(error)).await?)
        } else {
            RetryOutcome::Exhausted(give_up_job(&mut tx, stamp, &job, error).await?)
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn reap_expired(&self, now: Timestamp) -> StoreResult<usize> {
        let mut tx = self.write_tx().await?;
        let reaped = reap_in(&mut tx, now).await?;
        tx.commit().await?;
        Ok(reaped)
    }

    async fn job_result(&self, id: JobId) -> StoreResult<Option<serde_json::Value>> {
        let text: Option<Option<String>> =
            sqlx::query_scalar("SELECT result_json FROM jobs WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
        Ok(text
            .flatten()
            .map(|t| serde_json::from_str(&t))
            .transpose()?)
    }

    async fn job(&self, id: JobId) -> StoreResult<Option<Job>> {
        let row = sqlx::query(&format!("SELECT {JOB_COLS} FROM jobs WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_from).transpose()
    }

    async fn jobs_of_submission(&self, submission: SubmissionId) -> StoreResult<Vec<Job>> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLS} FROM jobs WHERE submission_id = $1 ORDER BY id"
        ))
        .bind(submission.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_from).collect()
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        let mut stats = QueueStats::default();
        for row in &rows {
            let count: i64 = row.try_get("n")?;
            match parse::<crate::model::JobState>(row.try_get("state")?)? {
                crate::model::JobState::Pending => stats.pending = count,
                crate::model::JobState::Running => stats.running = count,
                crate::model::JobState::Succeeded => stats.succeeded = count,
                crate::model::JobState::Failed => stats.failed = count,
            }
        }
        Ok(stats)
    }
}

#[async_trait]
impl AuditOutbox for SqliteStore {
    async fn undelivered_events(
        &self,
        limit: i64,
        now: Timestamp,
    ) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLS} FROM audit_events WHERE delivered_at IS NULL AND at <= $2 \
             ORDER BY at, id LIMIT $1"
        ))
        .bind(limit)
        .bind(now.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from).collect()
    }

    async fn mark_delivered(
        &self,
        receipts: &[(AuditEventId, String)],
        at: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for (id, evidence) in receipts {
            sqlx::query("UPDATE audit_events SET delivered_at = $2, evidence = $3 WHERE id = $1")
                .bind(id.0)
                .bind(at.0)
                .bind(evidence)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn events_about(&self, subject: &str) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLS} FROM audit_events WHERE subject = $1 ORDER BY id"
        ))
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from).collect()
    }

    async fn recent_events(&self, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLS} FROM audit_events ORDER BY id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from).collect()
    }
}
