//! The SQL of every repository, shared by both backends.
//!
//! This directory is compiled twice: as `sqlite::sql` and as `postgres::sql` (each backend
//! module loads it with `#[path]`), against the aliases its parent declares: `Db` (the sqlx
//! database), `DbRow`, `DbConn` and `SqlStore` (the backend's store, which provides `pool`,
//! `write_tx` and `claim_tx`). The statements are written in the dialect SQLite and
//! PostgreSQL share (`$n` parameters, `RETURNING`, `ON CONFLICT`, `CAST(SUM(..) AS BIGINT)`);
//! what differs between them (how a transaction serialises with other writers, how a claim
//! locks its row) lives in the backend module, so both run the same SQL.
//!
//! Why not generic code over `sqlx::Database`: sqlx's bounds for generic queries
//! (`for<'q> Encode<'q, DB>` for every bound type, `IntoArguments`, `ColumnIndex`, executor
//! bounds on `&mut DB::Connection`) would repeat on every function here; compiling the same
//! source against two aliases gives the same monomorphised code without them.

use std::str::FromStr;

use sqlx::Row;

use super::*;
use crate::audit::AuditEvent;
use crate::model::DatasetState;
use medarena_scorer::budget::{epsilon_of_micro, micro_epsilon_limit};

mod accounts;
mod certificates;
mod competitions;
mod contracts;
mod datasets;
mod keys;
mod orgs;
mod outbox;
mod queue;
mod submissions;
mod suspensions;
mod synthetic;
mod withdrawals;

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

impl SqlStore {
    /// Applies pending migrations; returns how many were applied.
    pub async fn migrate(&self) -> StoreResult<usize> {
        self.prepare_for_migrations().await?;
        let before = self.applied_migrations().await?;
        MIGRATOR.run(&self.pool).await?;
        Ok(self.applied_migrations().await?.saturating_sub(before))
    }

    /// How many migrations the database has applied (0 when new).
    pub async fn applied_migrations(&self) -> StoreResult<usize> {
        let exists: bool = sqlx::query_scalar(MIGRATIONS_TABLE_EXISTS)
            .fetch_one(&self.pool)
            .await?;
        if !exists {
            return Ok(0);
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await?;
        Ok(usize::try_from(count).unwrap_or(0))
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

fn ts(row: &DbRow, column: &str) -> StoreResult<Timestamp> {
    Ok(Timestamp(row.try_get::<i64, _>(column)?))
}

fn ts_opt(row: &DbRow, column: &str) -> StoreResult<Option<Timestamp>> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(Timestamp))
}

fn object_opt(row: &DbRow, column: &str) -> StoreResult<Option<ObjectId>> {
    row.try_get::<Option<String>, _>(column)?
        .map(|hex| ObjectId::from_hex(&hex).map_err(|err| StoreError::Corrupt(err.to_string())))
        .transpose()
}

/// A JSON column read into a typed value.
fn typed_json_opt<T: serde::de::DeserializeOwned>(
    row: &DbRow,
    column: &str,
) -> StoreResult<Option<T>> {
    row.try_get::<Option<String>, _>(column)?
        .map(|text| serde_json::from_str(&text).map_err(StoreError::from))
        .transpose()
}

fn json_opt(row: &DbRow, column: &str) -> StoreResult<Option<serde_json::Value>> {
    row.try_get::<Option<String>, _>(column)?
        .map(|text| serde_json::from_str(&text).map_err(StoreError::from))
        .transpose()
}

fn account_from(row: &DbRow) -> StoreResult<Account> {
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

fn credential_from(row: &DbRow) -> StoreResult<Credential> {
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

fn org_from(row: &DbRow) -> StoreResult<Organization> {
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

fn dataset_from(row: &DbRow) -> StoreResult<Dataset> {
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

fn contribution_from(row: &DbRow) -> StoreResult<Contribution> {
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

fn submission_from(row: &DbRow) -> StoreResult<Submission> {
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

fn job_from(row: &DbRow) -> StoreResult<Job> {
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

fn audit_from(row: &DbRow) -> StoreResult<AuditRecord> {
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
async fn record(conn: &mut DbConn, stamp: Stamp, event: AuditEvent) -> StoreResult<()> {
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
    conn: &mut DbConn,
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
    conn: &mut DbConn,
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
async fn job_stamp(conn: &mut DbConn, job: &Job, now: Timestamp) -> StoreResult<Stamp> {
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
    conn: &mut DbConn,
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
async fn give_up_job(conn: &mut DbConn, stamp: Stamp, job: &Job, error: &str) -> StoreResult<Job> {
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
    conn: &mut DbConn,
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

async fn reap_in(conn: &mut DbConn, now: Timestamp) -> StoreResult<usize> {
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
    conn: &mut DbConn,
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
    conn: &mut DbConn,
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
    conn: &mut DbConn,
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

async fn load_competition(conn: &mut DbConn, row: &DbRow) -> StoreResult<Competition> {
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
