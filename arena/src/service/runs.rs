//! The worker side: claim a job, keep its lease alive, run it through the [`RunExecutor`],
//! apply the phase gate, and record the outcome.
//!
//! [`RunExecutor`]: crate::executor::RunExecutor

use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::Arena;
use crate::bundle::PhaseKind;
use crate::contract::Delivery;
use crate::error::{ArenaError, ArenaResult};
use crate::executor::{ExecutorError, RunInputs, RunRequest, RunResult};
use crate::ids::{JobId, SubmissionId};
use crate::model::{
    ChargePurpose, Competition, DatasetState, Job, JobKind, RunOutcome, Submission, SubmissionKind,
    SubmissionStatus, Tier,
};
use crate::store::{
    ClaimRequest, FinishJob, FinishOutcome, Metering, Reservation, RetryOutcome, Store,
    SubmissionUpdate,
};
use crate::time::Clock;
use crate::vault::JobLease;
use medarena_scorer::budget::{epsilon_of_micro, micro_epsilon_charge, micro_epsilon_limit};

/// What happened to one claimed job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobReport {
    pub job: JobId,
    pub submission: SubmissionId,
    pub kind: JobKind,
    pub end: JobEnd,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobEnd {
    /// The run finished with this outcome (a failing submission is a finished run).
    Finished(RunOutcome),
    /// The executor hit platform trouble; the job is queued again.
    Retried,
    /// Out of attempts, or a permanent platform error: failed with outcome `error`.
    GaveUp,
    /// The lease was lost (expired and taken over); this worker's result was discarded.
    LeaseLost,
}

fn lease_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Keeps renewing the lease; reports on `lost` when the store says it is gone.
async fn keep_lease(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    job: JobId,
    token: String,
    lease_ms: i64,
    every: Duration,
    lost: oneshot::Sender<()>,
) {
    loop {
        tokio::time::sleep(every).await;
        match store.heartbeat(job, &token, clock.now(), lease_ms).await {
            Ok(true) => {}
            Ok(false) => {
                let _ = lost.send(());
                return;
            }
            // A failed heartbeat is not a lost lease; try again next beat.
            Err(err) => tracing::warn!(job = job.0, error = %err, "heartbeat failed"),
        }
    }
}

/// Scores a team may see must be finite numbers; anything else is dropped.
fn finite(score: Option<f64>) -> Option<f64> {
    score.filter(|s| s.is_finite())
}

impl Arena {
    /// Resolves when a job may be waiting: one was enqueued in this process, or `timeout`
    /// passed (work from other processes, lease expiries and back-offs are found by polling).
    pub async fn wait_for_jobs(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.inner.jobs_ready.notified()).await;
    }

    pub(crate) fn jobs_ready(&self) -> &tokio::sync::Notify {
        &self.inner.jobs_ready
    }

    /// Claims and runs the next job of either kind, if any. Returns `None` when the queue
    /// has nothing claimable for now.
    pub async fn run_next_job(&self, worker: &str) -> ArenaResult<Option<JobReport>> {
        self.run_next_job_of(worker, None).await
    }

    /// Claims and runs the next job of `kind` (`None`: either), if any. Real-data runs take
    /// workers of their own ([`crate::WorkerPool`]): a dummy run then never waits behind a
    /// real run, whose duration depends on the data, so dummy runs' times tell nothing.
    pub async fn run_next_job_of(
        &self,
        worker: &str,
        kind: Option<JobKind>,
    ) -> ArenaResult<Option<JobReport>> {
        let queue = &self.inner.config.queue;
        let token = lease_token();
        let lease_ms = millis(queue.lease);
        let claimed = self
            .inner
            .store
            .claim(&ClaimRequest {
                worker: worker.to_owned(),
                lease_token: token.clone(),
                now: self.now(),
                lease_ms,
                kind,
            })
            .await?;
        let Some(job) = claimed else {
            self.deliver_audit_events().await;
            return Ok(None);
        };
        tracing::info!(job = job.id.0, kind = %job.kind, attempt = job.attempts, worker, "job claimed");
        self.deliver_audit_events().await;

        let (lost_tx, lost_rx) = oneshot::channel();
        // Aborted when this future ends *or is dropped* (a cancelled worker must stop
        // renewing, or its job would never be reclaimed).
        let heartbeat = AbortOnDrop(tokio::spawn(keep_lease(
            self.inner.store.clone(),
            self.inner.clock.clone(),
            job.id,
            token.clone(),
            lease_ms,
            queue.heartbeat_every,
            lost_tx,
        )));
        let verdict = tokio::select! {
            verdict = self.run_claimed(&job, &token) => Some(verdict),
            Ok(()) = lost_rx => None,
        };
        drop(heartbeat);

        let end = match verdict {
            None => {
                tracing::warn!(job = job.id.0, "lease lost while running; result discarded");
                JobEnd::LeaseLost
            }
            Some(Ok(verdict)) => self.record_verdict(&job, &token, verdict).await?,
            Some(Err(err)) => self.record_executor_error(&job, &token, &err).await?,
        };
        self.deliver_audit_events().await;
        if matches!(end, JobEnd::Finished(RunOutcome::Ok)) && job.kind == JobKind::DummyRun {
            // A real-data run may have been enqueued.
            self.inner.jobs_ready.notify_waiters();
        }
        Ok(Some(JobReport {
            job: job.id,
            submission: job.submission,
            kind: job.kind,
            end,
        }))
    }

    async fn load_for_run(&self, job: &Job) -> Result<(Submission, Competition), ExecutorError> {
        let transient = |err: ArenaError| ExecutorError::Transient(err.to_string());
        let submission = self
            .inner
            .store
            .submission(job.submission)
            .await
            .map_err(|e| transient(e.into()))?
            .ok_or_else(|| ExecutorError::Permanent(format!("{} is missing", job.submission)))?;
        let competition = self
            .load_competition(job.competition)
            .await
            .map_err(transient)?;
        Ok((submission, competition))
    }

    /// The validated contributions of a competition's datasets; a real run refuses a dataset
    /// that is not approved.
    pub(super) async fn run_contributions(
        &self,
        competition: &Competition,
        kind: JobKind,
    ) -> Result<Vec<(crate::model::Dataset, crate::model::Contribution)>, ExecutorError> {
        let transient = |err: ArenaError| ExecutorError::Transient(err.to_string());
        let mut contributions = Vec::new();
        for dataset_id in &competition.datasets {
            let dataset = self
                .inner
                .store
                .dataset(*dataset_id)
                .await
                .map_err(|e| transient(e.into()))?
                .ok_or_else(|| ExecutorError::Permanent(format!("{dataset_id} is missing")))?;
            if kind == JobKind::RealRun && dataset.state != DatasetState::Approved {
                return Err(ExecutorError::Permanent(format!(
                    "dataset `{}` is {}, not approved",
                    dataset.slug, dataset.state
                )));
            }
            if kind == JobKind::RealRun
                && let Some(suspension) = self
                    .inner
                    .store
                    .dataset_suspensions(dataset.id)
                    .await
                    .map_err(|e| transient(e.into()))?
                    .first()
            {
                return Err(ExecutorError::Permanent(format!(
                    "dataset `{}` is suspended by its hospital {}: {}",
                    dataset.slug, suspension.hospital, suspension.reason
                )));
            }
            for contribution in self
                .inner
                .store
                .contributions(dataset.id)
                .await
                .map_err(|e| transient(e.into()))?
            {
                if contribution.usable() {
                    contributions.push((dataset.clone(), contribution));
                }
            }
        }
        Ok(contributions)
    }

    /// The inputs of a run of `submission` on `kind` data.
    pub(super) fn run_inputs(
        &self,
        kind: JobKind,
        submission: &Submission,
        contributions: Vec<(crate::model::Dataset, crate::model::Contribution)>,
        synthetic: Vec<crate::pipeline::synthetic::SyntheticSource>,
    ) -> RunInputs {
        RunInputs {
            kind,
            vault: self.inner.vault.clone(),
            team: submission.team,
            module: submission.object,
            module_sha256: submission.module_sha256.clone(),
            contributions,
            synthetic,
            lease: None,
        }
    }

    /// A queued real run starts only while the contract it was reserved under still covers
    /// each of its datasets (not suspended, terminated, expired or fulfilled since).
    async fn check_run_contracts(
        &self,
        job: &Job,
        submission: &Submission,
        competition: &Competition,
    ) -> Result<(), ExecutorError> {
        let transient = |err: ArenaError| ExecutorError::Transient(err.to_string());
        let reserved = self
            .inner
            .store
            .run_contracts(job.id)
            .await
            .map_err(|e| transient(e.into()))?;
        let now = self.now();
        for dataset in &competition.datasets {
            let Some((_, id)) = reserved.iter().find(|(d, _)| d == dataset) else {
                return Err(ExecutorError::Permanent(format!(
                    "{} was queued without a contract covering {dataset}",
                    job.id
                )));
            };
            let contract = self
                .inner
                .store
                .contract(*id)
                .await
                .map_err(|e| transient(e.into()))?
                .ok_or_else(|| ExecutorError::Permanent(format!("{id} is missing")))?;
            if !contract.covers(job.team, *dataset, delivery_of(submission), now) {
                let why = match (&contract.state, &contract.state_reason) {
                    (state, Some(reason)) => format!("{state}: {reason}"),
                    (state, None) if !contract.terms.in_window(now) => {
                        format!("{state}, outside its validity window")
                    }
                    (state, None) => state.to_string(),
                };
                return Err(ExecutorError::Permanent(format!(
                    "the run's contract {id} no longer covers it ({why})"
                )));
            }
        }
        Ok(())
    }

    /// Builds the run's inputs and calls the executor. A real run is refused (before any data
    /// is read) when a dataset lost its approval or its contract; its ε was reserved when it
    /// was queued.
    async fn run_claimed(&self, job: &Job, token: &str) -> Result<RunResult, ExecutorError> {
        let transient = |err: ArenaError| ExecutorError::Transient(err.to_string());
        let (submission, competition) = self.load_for_run(job).await?;
        if job.kind == JobKind::RealRun {
            self.check_run_contracts(job, &submission, &competition)
                .await?;
        }
        let contributions = self.run_contributions(&competition, job.kind).await?;
        let reserved_epsilon = match job.kind {
            JobKind::RealRun => epsilon_of_micro(micro_epsilon_per_run(&submission, &competition)),
            JobKind::DummyRun => 0.0,
        };
        let release_state = self
            .inner
            .store
            .release_state(competition.id, job.team)
            .await
            .map_err(|e| transient(e.into()))?;
        // Dummy runs draw from the published synthetic releases; real runs read no release.
        let synthetic = match job.kind {
            JobKind::DummyRun => self
                .published_synthetic(&competition)
                .await
                .map_err(transient)?,
            JobKind::RealRun => Vec::new(),
        };
        let mut inputs = self.run_inputs(job.kind, &submission, contributions, synthetic);
        inputs.lease = Some(JobLease {
            job: job.id,
            token: token.to_owned(),
        });
        let result = self
            .inner
            .executor
            .execute(RunRequest {
                job,
                submission: &submission,
                competition: &competition,
                reserved_epsilon,
                inputs: &inputs,
                release_state: release_state.as_ref(),
            })
            .await?;
        Ok(result)
    }

    /// Applies the phase gate and writes the outcome.
    async fn record_verdict(
        &self,
        job: &Job,
        token: &str,
        mut result: RunResult,
    ) -> ArenaResult<JobEnd> {
        let (submission, competition) = self
            .load_for_run(job)
            .await
            .map_err(|err| ArenaError::Internal(err.to_string()))?;
        let mut finish = FinishJob {
            job: job.id,
            lease_token: token.to_owned(),
            at: self.now(),
            outcome: RunOutcome::Ok,
            job_result: None,
            submission: SubmissionUpdate::default(),
            follow_up: None,
            follow_up_max_attempts: self.inner.config.queue.max_attempts,
            reservation: None,
            release_delay_ms: i64::try_from(competition.bundle.release_delay_seconds())
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000),
            release_state: None,
            metering: None,
        };
        if job.kind == JobKind::RealRun {
            // Sealed means sealed: whatever the executor says, nothing of the guest's own
            // output from a real-data run is kept where a team could read it.
            result.guest_log = None;
            result.failure_detail = None;
            result.team_details = None;
        }
        let outcome = match result.outcome {
            RunOutcome::Error => {
                tracing::warn!(
                    job = job.id.0,
                    "executor returned outcome `error`; recorded as `failed`"
                );
                RunOutcome::Failed
            }
            other => other,
        };
        finish.outcome = outcome;
        finish.job_result = serde_json::to_value(&result).ok();
        match job.kind {
            JobKind::DummyRun => {
                self.gate_after_dummy(&mut finish, &submission, &competition, &result, outcome)
                    .await?
            }
            JobKind::RealRun => {
                apply_real_run(&mut finish, &result, outcome);
                finish.metering = Some(Metering {
                    cpu_seconds_billed: reserved_cpu_seconds(&submission, &competition),
                    measured: result.measured.unwrap_or_default(),
                });
            }
        }
        let mut written = self.inner.store.finish(&finish).await?;
        if let FinishOutcome::Refused { reason } = written {
            tracing::info!(job = job.id.0, %reason, "real-data run not queued");
            budget_exhausted(&mut finish, reason);
            written = self.inner.store.finish(&finish).await?;
        }
        Ok(match written {
            FinishOutcome::Finished(_) => JobEnd::Finished(finish.outcome),
            FinishOutcome::LeaseLost => JobEnd::LeaseLost,
            FinishOutcome::Refused { .. } => {
                return Err(ArenaError::Internal(
                    "a finish without a reservation was refused".to_owned(),
                ));
            }
        })
    }

    /// After a dummy run: stop on failure; stop with a note in the development phase, for
    /// dummy-only teams or a closed competition; else queue the real-data run.
    async fn gate_after_dummy(
        &self,
        finish: &mut FinishJob,
        submission: &Submission,
        competition: &Competition,
        result: &RunResult,
        outcome: RunOutcome,
    ) -> ArenaResult<()> {
        finish.submission.dummy_score = finite(result.dummy_score);
        if outcome != RunOutcome::Ok {
            finish.submission.status = Some(SubmissionStatus::Failed);
            finish.submission.outcome = Some(outcome);
            return Ok(());
        }
        let phase_kind = competition
            .bundle
            .phases
            .iter()
            .find(|p| p.name == submission.phase)
            .map(|p| p.kind);
        let tier = self
            .inner
            .store
            .org(submission.team)
            .await?
            .and_then(|o| o.tier);
        let needed_tier = match submission.kind {
            SubmissionKind::Model => Tier::RealData,
            SubmissionKind::Analysis => Tier::DpAggregates,
        };
        let stop = if phase_kind == Some(PhaseKind::Development) {
            Some("development phase: dummy data only")
        } else if tier.is_none_or(|t| t < needed_tier) {
            Some(match submission.kind {
                SubmissionKind::Model => "your team's tier allows dummy data only",
                SubmissionKind::Analysis => "your team's tier does not include DP aggregates",
            })
        } else if competition.closed_at.is_some() {
            Some("the competition closed before the real-data run")
        } else {
            None
        };
        match stop {
            Some(note) => {
                finish.submission.status = Some(SubmissionStatus::Completed);
                finish.submission.outcome = Some(RunOutcome::Ok);
                finish.submission.note = Some(note.to_owned());
            }
            None => {
                finish.submission.status = Some(SubmissionStatus::QueuedReal);
                finish.follow_up = Some(JobKind::RealRun);
                finish.reservation = Some(self.reservation(submission, competition));
            }
        }
        Ok(())
    }

    async fn record_executor_error(
        &self,
        job: &Job,
        token: &str,
        err: &ExecutorError,
    ) -> ArenaResult<JobEnd> {
        let queue = &self.inner.config.queue;
        let exponent = u32::try_from(job.attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
        let backoff = queue
            .retry_backoff
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(queue.retry_backoff_max);
        let now = self.now();
        let permanent = matches!(err, ExecutorError::Permanent(_));
        tracing::warn!(job = job.id.0, attempt = job.attempts, error = %err, "run failed on the platform side");
        let outcome = self
            .inner
            .store
            .retry_or_fail(
                job.id,
                token,
                now,
                now.plus(backoff),
                &err.to_string(),
                permanent,
            )
            .await?;
        Ok(match outcome {
            RetryOutcome::Retried(_) => JobEnd::Retried,
            RetryOutcome::Exhausted(_) => JobEnd::GaveUp,
            RetryOutcome::LeaseLost => JobEnd::LeaseLost,
        })
    }
}

/// The dummy run succeeded but no real run can be queued (a cap, a hospital's floor): the
/// submission ends there, with the reason. Decided from the books alone, never from data.
fn budget_exhausted(finish: &mut FinishJob, reason: String) {
    finish.outcome = RunOutcome::OverLimit;
    finish.follow_up = None;
    finish.reservation = None;
    finish.release_state = None;
    finish.submission = SubmissionUpdate {
        status: Some(SubmissionStatus::Failed),
        outcome: Some(RunOutcome::OverLimit),
        note: Some(reason),
        dummy_score: finish.submission.dummy_score,
        ..SubmissionUpdate::default()
    };
}

/// The micro-ε a real run of this submission spends on each dataset (what is reserved when
/// it is queued).
fn micro_epsilon_per_run(submission: &Submission, competition: &Competition) -> i64 {
    let epsilon = match (&submission.kind, &submission.analysis) {
        (SubmissionKind::Analysis, Some(spec)) => spec.epsilon,
        _ => competition.bundle.privacy.public_score.epsilon_per_release,
    };
    micro_epsilon_charge(epsilon).unwrap_or(i64::MAX / 4)
}

impl Arena {
    /// What queueing a real run of `submission` reserves: its release's ε, and the final
    /// release's with a team's first real model run.
    fn reservation(&self, submission: &Submission, competition: &Competition) -> Reservation {
        let bundle = &competition.bundle;
        let model = submission.kind == SubmissionKind::Model;
        Reservation {
            datasets: competition.datasets.clone(),
            purpose: if model {
                ChargePurpose::PublicScore
            } else {
                ChargePurpose::Analysis
            },
            micro_epsilon: micro_epsilon_per_run(submission, competition),
            final_micro_epsilon: model.then(|| {
                micro_epsilon_charge(bundle.final_reserved_epsilon()).unwrap_or(i64::MAX / 4)
            }),
            competition_cap_micro: micro_epsilon_limit(bundle.privacy.budget_per_team_per_dataset)
                .unwrap_or(0),
            max_public_releases: if model {
                bundle.privacy.max_releases
            } else {
                None
            },
            level: bundle.privacy.level,
            delivery: delivery_of(submission),
            default_terms: self.inner.config.default_dataset_terms,
        }
    }
}

/// What a run of `submission` delivers, which its contracts must cover.
fn delivery_of(submission: &Submission) -> Delivery {
    match submission.kind {
        SubmissionKind::Model => Delivery::ReleasedScores,
        SubmissionKind::Analysis => Delivery::DpAggregates,
    }
}

/// The compute a real run of `submission` reserves, in CPU-seconds: compilation and each
/// block's sandbox up to its deadline. Billed instead of the time it took, which follows the
/// hidden rows (`PRIVACY.md`); a function of the bundle (and an analysis's declared blocks).
pub(super) fn reserved_cpu_seconds(submission: &Submission, competition: &Competition) -> u64 {
    let bundle = &competition.bundle;
    let blocks = match (&submission.kind, &submission.analysis) {
        (SubmissionKind::Analysis, Some(spec)) => spec.blocks,
        _ => bundle.blocks_per_run(),
    };
    u64::from(bundle.sandbox.compile_timeout_seconds)
        + u64::from(blocks) * u64::from(bundle.sandbox.time_limit_seconds)
}

fn apply_real_run(finish: &mut FinishJob, result: &RunResult, outcome: RunOutcome) {
    finish.release_state = result.release_state.clone();
    if outcome != RunOutcome::Ok {
        finish.submission.status = Some(SubmissionStatus::Failed);
        finish.submission.outcome = Some(outcome);
        return;
    }
    finish.submission = SubmissionUpdate {
        status: Some(SubmissionStatus::Completed),
        outcome: Some(RunOutcome::Ok),
        note: None,
        dummy_score: None,
        released_public_score: finite(result.released_public_score),
        exact_public_score: finite(result.exact_public_score),
        private_score: finite(result.private_score),
        released_aggregate: result
            .released_aggregate
            .clone()
            .filter(|a| a.values.iter().all(|v| v.is_finite())),
        result: Some(result.details.clone()),
    };
}
