//! Submissions: the checks before a module is queued, what each viewer may see of it, and
//! the team's privacy budget.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::Arena;
use super::competitions::competition_resource;
use crate::authz::{Action, Actor, Resource, authorize};
use crate::bundle::{FinalShow, ReleaseTerms};
use crate::error::{ArenaError, ArenaResult};
use crate::ids::{CompetitionId, OrgId, SubmissionId};
use crate::model::{
    AnalysisSpec, BudgetUse, Competition, JobKind, ReleasedAggregate, RunOutcome, Submission,
    SubmissionKind, SubmissionStatus, Tier,
};
use crate::store::{BudgetQuery, InsertSubmission, NewSubmission};
use crate::time::Timestamp;
use crate::vault::KeyScope;
use medarena_scorer::budget::micro_epsilon_limit;

/// A submission as one viewer may see it. Teams see coarse statuses, the dummy score and the
/// released public score; never exact scores, details or timings. Organizers also get
/// [`ExactScores`]. Until its release time a real run shows to anyone but organizers as
/// `queued_real`, whatever it is doing; after publication the released (noisy) private score
/// appears for everyone (organizers see the exact one in `exact`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SubmissionView {
    pub id: SubmissionId,
    pub competition: CompetitionId,
    pub team: OrgId,
    pub phase: String,
    pub kind: SubmissionKind,
    pub analysis: Option<AnalysisSpec>,
    pub module_sha256: String,
    pub size_bytes: i64,
    pub status: SubmissionStatus,
    pub outcome: Option<RunOutcome>,
    pub note: Option<String>,
    pub dummy_score: Option<f64>,
    pub released_public_score: Option<f64>,
    /// A completed analysis's noisy aggregate (its team and organizers).
    pub released_aggregate: Option<ReleasedAggregate>,
    /// The released private score, once the competition is published (unless the board
    /// shows ranks only).
    pub private_score: Option<f64>,
    /// Half-width of the 95% interval of the noise in the released public score (and of the
    /// private one): the score is within ± this of the noiseless value 19 times in 20.
    pub noise_half_width_95: Option<f64>,
    pub submitted_at: Timestamp,
    /// When the real-data run's result is (or was) released; fixed when it was queued.
    pub release_at: Option<Timestamp>,
    pub exact: Option<ExactScores>,
}

/// The dummy-data run as its team sees it (see [`Arena::dummy_run_report`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DummyRunReport {
    pub outcome: Option<RunOutcome>,
    pub dummy_score: Option<f64>,
    pub guest_log: Option<String>,
    pub failure_detail: Option<String>,
    /// What else the executor shows the team about its dummy run (timings per phase, the
    /// dummy data's seed and size, an analysis's per-block outputs).
    pub details: Option<serde_json::Value>,
}

/// Organizer-only facts about a submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExactScores {
    pub exact_public_score: Option<f64>,
    pub private_score: Option<f64>,
    pub result: Option<serde_json::Value>,
    pub finished_at: Option<Timestamp>,
}

impl SubmissionView {
    pub(super) fn of(
        submission: Submission,
        competition: &Competition,
        actor: &Actor,
        now: Timestamp,
        terms: Option<&ReleaseTerms>,
    ) -> Self {
        let organizer = authorize(
            actor,
            Action::ViewExactScores,
            competition_resource(competition),
        )
        .is_ok();
        let exact = organizer.then(|| ExactScores {
            exact_public_score: submission.exact_public_score,
            private_score: submission.private_score,
            // Rows per part, per site and per stratum, through the competition's policy.
            result: submission.result.clone().map(|mut result| {
                let policy = crate::suppress::competition_policy(&competition.bundle);
                crate::suppress::redact_counts(&mut result, &policy);
                result
            }),
            finished_at: submission.finished_at,
        });
        // Until its release time, a real run shows nothing that depends on what it did.
        let sealed = !organizer && submission.release_at.is_some_and(|at| now < at);
        let mut status = submission.status;
        if !organizer && (sealed || status == SubmissionStatus::RunningReal) {
            status = SubmissionStatus::QueuedReal;
        }
        let shows_private = competition.published_at.is_some()
            && terms.is_none_or(|t| t.final_show == FinalShow::Score);
        let private_score = if organizer {
            submission.private_score
        } else if shows_private {
            submission.released_private_score
        } else {
            None
        };
        let released_public_score = submission.released_public_score.filter(|_| !sealed);
        Self {
            id: submission.id,
            competition: submission.competition,
            team: submission.team,
            phase: submission.phase,
            kind: submission.kind,
            analysis: submission.analysis,
            module_sha256: submission.module_sha256,
            size_bytes: submission.size_bytes,
            status,
            outcome: submission.outcome.filter(|_| !sealed),
            note: submission.note.filter(|_| !sealed),
            dummy_score: submission.dummy_score,
            released_public_score,
            released_aggregate: submission.released_aggregate.filter(|_| !sealed),
            private_score,
            noise_half_width_95: terms
                .filter(|_| released_public_score.is_some())
                .map(|t| t.public_half_width_95),
            submitted_at: submission.created_at,
            release_at: submission.release_at,
            exact,
        }
    }
}

/// The most blocks an analysis may ask for: the declared training rows over the suppression
/// threshold, and no more than its worst case fits in the release delay (a run released
/// late would be released at a time that depends on the data). Decided from declared
/// numbers, so that no answer depends on the real rows.
pub(crate) fn max_analysis_blocks(bundle: &crate::bundle::Bundle) -> u64 {
    let training = (bundle.privacy.min_rows as f64 * bundle.split.train).floor() as u64;
    let by_rows = training / u64::from(bundle.privacy.suppression_threshold.max(1));
    let delay = bundle.release_delay_seconds();
    let by_time = (0..=u64::from(crate::model::AnalysisSpec::MAX_BLOCKS))
        .take_while(|blocks| {
            bundle.worst_case_seconds(u32::try_from(*blocks).unwrap_or(u32::MAX)) <= delay
        })
        .last()
        .unwrap_or(0);
    by_rows.min(by_time)
}

impl Arena {
    /// A team member submits a WebAssembly module. Checks, in order: the actor's team is
    /// admitted; the competition is open and in a phase; the team accepted the current
    /// agreement; the module's size and the sandbox pre-check; the daily limit. Then the
    /// module is encrypted and stored, and the submission and its dummy-data job are
    /// inserted together.
    pub async fn submit(
        &self,
        actor: &Actor,
        competition: CompetitionId,
        module: &[u8],
    ) -> ArenaResult<SubmissionView> {
        self.submit_module(actor, competition, module, None).await
    }

    /// A member of a team with the `dp_aggregates` tier submits an analysis module (its
    /// `medarena_analyze` export) with its declaration. It goes through the same checks and
    /// the same phase gate as a model: a run on dummy data first (whose per-block outputs
    /// and debug output the team sees), then, outside the development phase, the
    /// sample-and-aggregate release on the training rows of the real data, charging
    /// `spec.epsilon` on each dataset.
    pub async fn submit_analysis(
        &self,
        actor: &Actor,
        competition: CompetitionId,
        module: &[u8],
        spec: &AnalysisSpec,
    ) -> ArenaResult<SubmissionView> {
        if let Some((field, message)) = spec.problems().into_iter().next() {
            return Err(ArenaError::invalid(format!("analysis.{field}"), message));
        }
        let bundle = &self.load_competition(competition).await?.bundle;
        let most = max_analysis_blocks(bundle);
        if u64::from(spec.blocks) > most {
            return Err(ArenaError::invalid(
                "analysis.blocks",
                format!(
                    "at most {most} blocks: the competition declares at least {} rows, {} of \
                     them for training, each block needs {} (the suppression threshold), and \
                     every block must fit, at {} s each, in the release delay of {} s",
                    bundle.privacy.min_rows,
                    bundle.split.train,
                    bundle.privacy.suppression_threshold,
                    bundle.sandbox.time_limit_seconds,
                    bundle.release_delay_seconds()
                ),
            ));
        }
        if actor
            .approved_org()
            .is_some_and(|m| m.tier.is_none_or(|t| t < Tier::DpAggregates))
        {
            return Err(ArenaError::Forbidden(
                "your team's tier does not include DP aggregates".to_owned(),
            ));
        }
        self.submit_module(actor, competition, module, Some(spec))
            .await
    }

    async fn submit_module(
        &self,
        actor: &Actor,
        competition: CompetitionId,
        module: &[u8],
        analysis: Option<&AnalysisSpec>,
    ) -> ArenaResult<SubmissionView> {
        let team = actor.approved_org().map(|m| m.org).ok_or_else(|| {
            ArenaError::Forbidden("only members of an admitted team submit".to_owned())
        })?;
        authorize(actor, Action::Submit, Resource::Team(team))?;
        let account = actor.account().ok_or(ArenaError::Unauthenticated)?;
        let competition = self.load_competition(competition).await?;
        let now = self.now();
        if competition.closed_at.is_some() {
            return Err(ArenaError::Precondition(
                "the competition is closed".to_owned(),
            ));
        }
        let phase = competition
            .bundle
            .phase_at(now)
            .ok_or_else(|| {
                ArenaError::Precondition("no phase of this competition is open now".to_owned())
            })?
            .name
            .clone();
        let accepted = self
            .inner
            .store
            .agreement_acceptance(competition.id, team)
            .await?;
        if accepted.is_none_or(|a| a.agreement_sha256 != Self::agreement_sha256(&competition)) {
            return Err(ArenaError::Precondition(
                "your team must accept the competition's data-use agreement first".to_owned(),
            ));
        }
        let limits = &competition.bundle.sandbox;
        if module.is_empty() {
            return Err(ArenaError::invalid("module", "is empty"));
        }
        if u64::try_from(module.len()).unwrap_or(u64::MAX) > limits.module_max_bytes {
            return Err(ArenaError::invalid(
                "module",
                format!(
                    "is {} bytes; the limit is {}",
                    module.len(),
                    limits.module_max_bytes
                ),
            ));
        }
        let daily_limit = competition.bundle.limits.submissions_per_team_per_day;
        let used = self
            .inner
            .store
            .submissions_today(competition.id, team, now.utc_day())
            .await?;
        if used >= i64::from(daily_limit) {
            return Err(ArenaError::RateLimited {
                limit: daily_limit,
                used,
            });
        }
        self.inner.executor.precheck(module, limits).await?;
        let sealed = self.inner.vault.put(&KeyScope::Team(team), module).await?;
        let inserted = self
            .inner
            .store
            .insert_submission(
                self.stamp(actor),
                &NewSubmission {
                    competition: competition.id,
                    team,
                    submitted_by: account,
                    phase,
                    kind: if analysis.is_some() {
                        SubmissionKind::Analysis
                    } else {
                        SubmissionKind::Model
                    },
                    analysis: analysis.cloned(),
                    object: sealed.object,
                    module_sha256: sealed.content_sha256,
                    size_bytes: sealed.size_bytes,
                    max_attempts: self.inner.config.queue.max_attempts,
                },
                daily_limit,
            )
            .await?;
        match inserted {
            InsertSubmission::Inserted { submission, job } => {
                tracing::info!(
                    submission = submission.id.0,
                    job = job.id.0,
                    team = team.0,
                    "submission queued"
                );
                self.inner.jobs_ready.notify_waiters();
                self.deliver_audit_events().await;
                Ok(SubmissionView::of(
                    *submission,
                    &competition,
                    actor,
                    self.now(),
                    competition.bundle.release_terms().as_ref(),
                ))
            }
            InsertSubmission::LimitReached { used } => {
                self.inner.vault.delete(&sealed.object).await?;
                Err(ArenaError::RateLimited {
                    limit: daily_limit,
                    used,
                })
            }
        }
    }

    async fn load_submission(&self, id: SubmissionId) -> ArenaResult<Submission> {
        self.inner
            .store
            .submission(id)
            .await?
            .ok_or_else(|| ArenaError::NotFound(id.to_string()))
    }

    /// One submission: its team and organizers.
    pub async fn submission(&self, actor: &Actor, id: SubmissionId) -> ArenaResult<SubmissionView> {
        let submission = self.load_submission(id).await?;
        authorize(
            actor,
            Action::ViewSubmission,
            Resource::Submission {
                team: submission.team,
            },
        )?;
        let competition = self.load_competition(submission.competition).await?;
        let terms = competition.bundle.release_terms();
        Ok(SubmissionView::of(
            submission,
            &competition,
            actor,
            self.now(),
            terms.as_ref(),
        ))
    }

    /// A competition's submissions, newest first: a team member sees its own team's;
    /// organizers see all, or one team's when `team` is given.
    pub async fn submissions(
        &self,
        actor: &Actor,
        competition: CompetitionId,
        team: Option<OrgId>,
    ) -> ArenaResult<Vec<SubmissionView>> {
        let team = match (team, actor.approved_org()) {
            (Some(team), _) => Some(team),
            (None, Some(membership)) if actor.role() == Some(crate::model::Role::TeamMember) => {
                Some(membership.org)
            }
            (None, _) => None,
        };
        match team {
            Some(team) => authorize(actor, Action::ViewSubmission, Resource::Submission { team })?,
            None => authorize(
                actor,
                Action::ViewExactScores,
                Resource::Competition { published: false },
            )?,
        }
        let competition = self.load_competition(competition).await?;
        let rows = self.inner.store.submissions(competition.id, team).await?;
        let (now, terms) = (self.now(), competition.bundle.release_terms());
        Ok(rows
            .into_iter()
            .map(|s| SubmissionView::of(s, &competition, actor, now, terms.as_ref()))
            .collect())
    }

    /// What the dummy-data run of a submission said: the guest's debug output and, when it
    /// failed, the detailed reason (dummy data is synthetic, so nothing here is about a real
    /// row). Its team and organizers. `None` before the dummy run finished.
    pub async fn dummy_run_report(
        &self,
        actor: &Actor,
        id: SubmissionId,
    ) -> ArenaResult<Option<DummyRunReport>> {
        let submission = self.load_submission(id).await?;
        authorize(
            actor,
            Action::ViewSubmission,
            Resource::Submission {
                team: submission.team,
            },
        )?;
        let jobs = self.inner.store.jobs_of_submission(id).await?;
        let Some(job) = jobs.iter().find(|j| j.kind == JobKind::DummyRun) else {
            return Ok(None);
        };
        let Some(result) = self.inner.store.job_result(job.id).await? else {
            return Ok(None);
        };
        Ok(Some(DummyRunReport {
            outcome: job.outcome,
            dummy_score: submission.dummy_score,
            guest_log: result
                .get("guest_log")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            failure_detail: result
                .get("failure_detail")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            details: result.get("team_details").cloned(),
        }))
    }

    /// The submitted module itself: only its own team.
    pub async fn download_module(
        &self,
        actor: &Actor,
        id: SubmissionId,
    ) -> ArenaResult<Zeroizing<Vec<u8>>> {
        let submission = self.load_submission(id).await?;
        authorize(
            actor,
            Action::DownloadSubmissionModule,
            Resource::Submission {
                team: submission.team,
            },
        )?;
        Ok(self
            .inner
            .vault
            .get(
                &KeyScope::Team(submission.team),
                &submission.object,
                &submission.module_sha256,
            )
            .await?)
    }

    /// The team's privacy budget per dataset of a competition: the team and organizers.
    pub async fn budget(
        &self,
        actor: &Actor,
        competition: CompetitionId,
        team: OrgId,
    ) -> ArenaResult<Vec<BudgetUse>> {
        authorize(actor, Action::ViewBudget, Resource::Team(team))?;
        let competition = self.load_competition(competition).await?;
        self.budget_of(&competition, team).await
    }

    pub(super) async fn budget_of(
        &self,
        competition: &Competition,
        team: OrgId,
    ) -> ArenaResult<Vec<BudgetUse>> {
        let query = BudgetQuery {
            competition: competition.id,
            team,
            datasets: competition.datasets.clone(),
            competition_cap_micro: micro_epsilon_limit(
                competition.bundle.privacy.budget_per_team_per_dataset,
            )
            .unwrap_or(0),
            default_terms: self.inner.config.default_dataset_terms,
        };
        Ok(self.inner.store.budget(&query).await?)
    }
}
