//! The job queue: claims with leases and fencing tokens, heartbeats, finishing, retries and reaping.

use super::*;

#[async_trait]
impl JobQueue for SqlStore {
    async fn claim(&self, request: &ClaimRequest) -> StoreResult<Option<Job>> {
        // Expired leases go back to the queue first, under the writers' lock (a check, then
        // changes to jobs other than the one claimed); the check alone takes no lock.
        let expired: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'running' AND lease_expires_at < $1)",
        )
        .bind(request.now.0)
        .fetch_one(&self.pool)
        .await?;
        if expired {
            self.reap_expired(request.now).await?;
        }
        let mut tx = self.claim_tx(request.kind).await?;
        // Bound as a pair so that one statement serves "either kind" and "this kind".
        let kinds = match request.kind {
            Some(kind) => [kind.as_str(); 2],
            None => [JobKind::DummyRun.as_str(), JobKind::RealRun.as_str()],
        };
        // Fair scheduling: the team whose last turn is oldest (never served = 0) first, then
        // that team's oldest job (by creation time, then id: migration 0009 says why not by
        // id alone). Turns are kept per kind of job, so that the order of dummy runs never
        // depends on when real runs (whose durations follow the data) were claimed. A team
        // runs at most one real-data job at a time. Driven from the teams: each team's
        // oldest waiting job is one index lookup (`jobs_claim_order`), so a claim costs the
        // same however deep the queue.
        let candidate: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT j.id FROM ( \
               SELECT (SELECT w.id FROM jobs w WHERE w.team_id = o.id AND w.kind = k.kind \
                       AND w.state = 'pending' AND w.available_at <= $1 \
                       ORDER BY w.created_at, w.id LIMIT 1) AS job_id, \
                      COALESCE(t.last_turn, 0) AS turn \
               FROM organizations o \
               CROSS JOIN (SELECT $2 AS kind UNION SELECT $3) k \
               LEFT JOIN queue_turns t ON t.team_id = o.id AND t.kind = k.kind \
               WHERE o.kind = 'team' AND (k.kind <> 'real_run' OR NOT EXISTS ( \
                     SELECT 1 FROM jobs r WHERE r.team_id = o.id AND r.kind = 'real_run' \
                     AND r.state = 'running'))) c \
             JOIN jobs j ON j.id = c.job_id \
             WHERE j.state = 'pending' ORDER BY c.turn, c.job_id LIMIT 1{CLAIM_ROW_LOCK}"
        ))
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
        // A concurrent claim won the row between the candidate and the update (possible for
        // PostgreSQL's dummy-run claims, which do not take the writers' lock): ask again.
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

    async fn lease_holds(
        &self,
        job: JobId,
        lease_token: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND lease_token = $2 \
             AND state = 'running' AND lease_expires_at >= $3)",
        )
        .bind(job.0)
        .bind(lease_token)
        .bind(now.0)
        .fetch_one(&self.pool)
        .await?)
    }

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
