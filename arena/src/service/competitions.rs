//! Competitions: creation from a bundle, the agreement, closing and publishing, leaderboards.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Arena;
use crate::authz::{Action, Actor, Resource, authorize};
use crate::bundle::{Bundle, BundleError, FieldIssue};
use crate::bundle::{FinalShow, PrivacyLevel};
use crate::error::{ArenaError, ArenaResult};
use crate::executor::{CompareRequest, EntryComparison};
use crate::ids::{CompetitionId, OrgId, SubmissionId};
use crate::model::{
    AgreementAcceptance, ChargePurpose, Competition, DatasetState, JobKind, Role, SubmissionStatus,
};
use crate::store::{
    FinalRelease, NewCompetition, ScoredSubmission, SiteScoreRelease, SiteScoreRow,
};
use crate::time::Timestamp;
use crate::vault::sha256_hex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeaderboardKind {
    /// Released (noisy) public-split scores; everyone.
    Public,
    /// Private-split scores; organizers, and everyone once published.
    Private,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LeaderboardEntry {
    pub rank: usize,
    pub team: OrgId,
    pub team_name: String,
    pub submission: SubmissionId,
    /// The released score; `None` on a private board that shows ranks only.
    pub score: Option<f64>,
    pub submitted_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Leaderboard {
    pub competition: CompetitionId,
    pub kind: LeaderboardKind,
    pub metric: String,
    pub higher_is_better: bool,
    /// Whether the scores are released (noisy) ones; organizers' private board is exact.
    pub released: bool,
    /// Half-width of the 95% interval of the noise in each released score (see
    /// `PRIVACY.md`): two entries closer than about this are not told apart.
    pub noise_half_width_95: Option<f64>,
    pub entries: Vec<LeaderboardEntry>,
}

/// One released public score, for the score-over-time chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScorePoint {
    pub team: OrgId,
    pub team_name: String,
    pub submission: SubmissionId,
    pub released_public_score: f64,
    pub submitted_at: Timestamp,
}

/// The authorization resource of a competition.
pub(super) fn competition_resource(competition: &Competition) -> Resource<'static> {
    Resource::Competition {
        published: competition.published_at.is_some(),
    }
}

/// `a` is strictly better than `b` under the metric's direction.
fn better(a: f64, b: f64, higher_is_better: bool) -> bool {
    if higher_is_better { a > b } else { a < b }
}

/// Each team's best submission by released public score (earliest wins ties). The private
/// leaderboard ranks these same submissions by their private score, so a team cannot pick
/// its private entry by peeking at private scores.
fn best_public_per_team(
    rows: &[ScoredSubmission],
    higher_is_better: bool,
) -> Vec<&ScoredSubmission> {
    let mut best: HashMap<OrgId, &ScoredSubmission> = HashMap::new();
    for row in rows {
        let Some(score) = row.released_public_score.filter(|s| s.is_finite()) else {
            continue;
        };
        match best.get(&row.team) {
            Some(current)
                if !better(
                    score,
                    current.released_public_score.unwrap_or(f64::NAN),
                    higher_is_better,
                ) => {}
            _ => {
                best.insert(row.team, row);
            }
        }
    }
    best.into_values().collect()
}

fn ranked(mut entries: Vec<LeaderboardEntry>, higher_is_better: bool) -> Vec<LeaderboardEntry> {
    entries.sort_by(|a, b| {
        let (a_score, b_score) = (a.score.unwrap_or(f64::NAN), b.score.unwrap_or(f64::NAN));
        let by_score = if higher_is_better {
            b_score.total_cmp(&a_score)
        } else {
            a_score.total_cmp(&b_score)
        };
        by_score.then(a.submitted_at.cmp(&b.submitted_at))
    });
    for (index, entry) in entries.iter_mut().enumerate() {
        entry.rank = index + 1;
    }
    entries
}

impl Arena {
    pub(super) async fn load_competition(&self, id: CompetitionId) -> ArenaResult<Competition> {
        self.inner
            .store
            .competition(id)
            .await?
            .ok_or_else(|| ArenaError::NotFound(id.to_string()))
    }

    /// Creates a competition from bundle YAML (organizers). Every dataset the bundle names
    /// must exist and be approved, and its manifest must have the bundle's target (a label,
    /// or a survival time with its event).
    pub async fn create_competition(
        &self,
        actor: &Actor,
        bundle_yaml: &str,
    ) -> ArenaResult<Competition> {
        authorize(actor, Action::CreateCompetition, Resource::Platform)?;
        let bundle = Bundle::from_yaml(bundle_yaml)?;
        let mut datasets = Vec::with_capacity(bundle.datasets.len());
        let mut issues = Vec::new();
        for (index, slug) in bundle.datasets.iter().enumerate() {
            let path = format!("datasets[{index}]");
            match self.inner.store.dataset_by_slug(slug).await? {
                None => issues.push(FieldIssue {
                    path,
                    message: format!("no dataset `{slug}`"),
                }),
                Some(dataset) if dataset.state != DatasetState::Approved => {
                    issues.push(FieldIssue {
                        path,
                        message: format!("dataset `{slug}` is {}, not approved", dataset.state),
                    })
                }
                Some(dataset) => {
                    let terms = self
                        .inner
                        .store
                        .dataset_privacy(dataset.id, &self.inner.config.default_dataset_terms)
                        .await?
                        .effective;
                    if bundle.privacy.level < terms.min_level {
                        issues.push(FieldIssue {
                            path: "privacy.level".to_owned(),
                            message: format!(
                                "the hospitals of dataset `{slug}` allow only `{}`-level \
                                 competitions",
                                terms.min_level.as_str()
                            ),
                        });
                    }
                    // Every contribution of a dataset shares its manifest's schema.
                    let contributions = self.inner.store.contributions(dataset.id).await?;
                    if let Some(Ok(manifest)) = contributions
                        .iter()
                        .find_map(|c| c.manifest.as_deref())
                        .map(medarena_datasets_spec::Manifest::from_str)
                        && let Err(message) = bundle.check_target(&manifest)
                    {
                        issues.push(FieldIssue {
                            path: "target".to_owned(),
                            message,
                        });
                    }
                    datasets.push(dataset.id)
                }
            }
        }
        if !issues.is_empty() {
            return Err(BundleError { issues }.into());
        }
        let bundle_json =
            serde_json::to_string(&bundle).map_err(|err| ArenaError::Internal(err.to_string()))?;
        let competition = self
            .inner
            .store
            .insert_competition(
                self.stamp(actor),
                &NewCompetition {
                    slug: bundle.slug.clone(),
                    title: bundle.title.clone(),
                    bundle_yaml: bundle_yaml.to_owned(),
                    bundle_json,
                    bundle_sha256: sha256_hex(bundle_yaml.as_bytes()),
                    datasets,
                },
            )
            .await?;
        self.deliver_audit_events().await;
        Ok(competition)
    }

    /// Every competition (public).
    pub async fn competitions(&self, actor: &Actor) -> ArenaResult<Vec<Competition>> {
        authorize(actor, Action::ViewPublic, Resource::Platform)?;
        Ok(self.inner.store.competitions().await?)
    }

    /// One competition (public).
    pub async fn competition(&self, actor: &Actor, id: CompetitionId) -> ArenaResult<Competition> {
        let competition = self.load_competition(id).await?;
        authorize(
            actor,
            Action::ViewPublic,
            competition_resource(&competition),
        )?;
        Ok(competition)
    }

    /// SHA-256 (hex) of a competition's agreement text: what a client sends back to accept.
    pub fn agreement_sha256(competition: &Competition) -> String {
        sha256_hex(competition.bundle.agreement.as_bytes())
    }

    /// Accepts the data-use agreement for the actor's team. `agreement_sha256` is the digest
    /// of the text the member was shown; it must match the current text.
    pub async fn accept_agreement(
        &self,
        actor: &Actor,
        competition: CompetitionId,
        agreement_sha256: &str,
    ) -> ArenaResult<AgreementAcceptance> {
        let team = actor.approved_org().map(|m| m.org).ok_or_else(|| {
            ArenaError::Forbidden("only members of an admitted team accept agreements".to_owned())
        })?;
        authorize(actor, Action::AcceptAgreement, Resource::Team(team))?;
        let competition = self.load_competition(competition).await?;
        if !agreement_sha256.eq_ignore_ascii_case(&Self::agreement_sha256(&competition)) {
            return Err(ArenaError::Conflict(
                "the agreement text differs from the one you accepted; read it again".to_owned(),
            ));
        }
        let account = actor.account().ok_or(ArenaError::Unauthenticated)?;
        let stamp = self.stamp(actor);
        let acceptance = self
            .inner
            .store
            .accept_agreement(
                stamp,
                &AgreementAcceptance {
                    competition: competition.id,
                    team,
                    accepted_by: account,
                    agreement_sha256: Self::agreement_sha256(&competition),
                    accepted_at: stamp.at,
                },
            )
            .await?;
        self.deliver_audit_events().await;
        Ok(acceptance)
    }

    /// Whether the actor's team has accepted the current agreement.
    pub async fn agreement_acceptance(
        &self,
        actor: &Actor,
        competition: CompetitionId,
    ) -> ArenaResult<Option<AgreementAcceptance>> {
        let Some(team) = actor.approved_org().map(|m| m.org) else {
            return Ok(None);
        };
        authorize(actor, Action::ViewTeam, Resource::Team(team))?;
        Ok(self
            .inner
            .store
            .agreement_acceptance(competition, team)
            .await?)
    }

    /// Stops accepting submissions (organizers). Queued runs still finish.
    pub async fn close_competition(
        &self,
        actor: &Actor,
        id: CompetitionId,
    ) -> ArenaResult<Competition> {
        let competition = self.load_competition(id).await?;
        authorize(
            actor,
            Action::ManageCompetition,
            competition_resource(&competition),
        )?;
        if !self
            .inner
            .store
            .close_competition(self.stamp(actor), id)
            .await?
        {
            return Err(ArenaError::Conflict(
                "the competition is already closed".to_owned(),
            ));
        }
        self.deliver_audit_events().await;
        self.load_competition(id).await
    }

    /// Reveals the private leaderboard to everyone (organizers; after closing, once every
    /// run has finished and been released). Each team's final entry (its best released
    /// public score) gets its private score released with noise, paid by the ε reserved
    /// with the team's first real run; the exact private scores stay with organizers.
    pub async fn publish_competition(
        &self,
        actor: &Actor,
        id: CompetitionId,
    ) -> ArenaResult<Competition> {
        let competition = self.load_competition(id).await?;
        authorize(
            actor,
            Action::ManageCompetition,
            competition_resource(&competition),
        )?;
        if competition.closed_at.is_none() {
            return Err(ArenaError::Precondition(
                "close the competition before publishing".to_owned(),
            ));
        }
        let now = self.now();
        let pending = self
            .inner
            .store
            .submissions(id, None)
            .await?
            .into_iter()
            .filter(|s| {
                s.release_at.is_some_and(|at| now < at)
                    || matches!(
                        s.status,
                        SubmissionStatus::QueuedDummy
                            | SubmissionStatus::RunningDummy
                            | SubmissionStatus::QueuedReal
                            | SubmissionStatus::RunningReal
                    )
            })
            .count();
        if pending > 0 {
            return Err(ArenaError::Precondition(format!(
                "{pending} run(s) have not finished or not been released yet; publish after \
                 they are"
            )));
        }
        let releases = self.final_releases(&competition).await?;
        if !self
            .inner
            .store
            .publish_competition(self.stamp(actor), id, &releases)
            .await?
        {
            return Err(ArenaError::Conflict(
                "the competition is already published".to_owned(),
            ));
        }
        // What the contracts deliver is delivered.
        self.inner
            .store
            .fulfil_contracts(self.stamp(actor), id)
            .await?;
        self.deliver_audit_events().await;
        let published = self.load_competition(id).await?;
        // As for registrations: the first read of the certificates retries a failure.
        if let Err(err) = self.issue_result_certificates(&published).await {
            tracing::warn!(competition = %id, error = %err, "issuing result certificates failed; the first read will retry");
        }
        Ok(published)
    }

    /// The noisy private score of each team's final entry, for teams whose final release was
    /// reserved (with their first real run).
    async fn final_releases(&self, competition: &Competition) -> ArenaResult<Vec<FinalRelease>> {
        let bundle = &competition.bundle;
        let (Some(terms), Some(metric)) = (bundle.release_terms(), bundle.scorer_metric()) else {
            return Err(ArenaError::Internal(
                "the competition's release terms do not hold".to_owned(),
            ));
        };
        let range =
            medarena_scorer::release_range(metric, &bundle.privacy.public_score.clamp_bounds())
                .map_err(|err| ArenaError::Internal(err.to_string()))?;
        let reserved: std::collections::HashSet<OrgId> = match competition.datasets.first() {
            Some(dataset) => self
                .inner
                .store
                .dataset_usage(*dataset)
                .await?
                .into_iter()
                .filter(|u| {
                    u.competition == competition.id && u.purpose == ChargePurpose::FinalScore
                })
                .map(|u| u.team)
                .collect(),
            None => Default::default(),
        };
        let higher_is_better = bundle.metric_info().is_none_or(|m| m.higher_is_better);
        let rows = self.released_rows(competition.id).await?;
        let mut releases = Vec::new();
        for row in best_public_per_team(&rows, higher_is_better) {
            let Some(exact) = row.private_score.filter(|s| s.is_finite()) else {
                continue;
            };
            if !reserved.contains(&row.team) {
                continue;
            }
            let accountant = medarena_scorer::InMemoryAccountant::new();
            let budget = medarena_scorer::DatasetBudget {
                per_team: medarena_scorer::PrivacyCost::pure(terms.final_epsilon + 1e-9),
                total: None,
            };
            let payer = medarena_scorer::Payer {
                accountant: &accountant,
                team: "team",
                dataset: "final",
            };
            let released =
                medarena_scorer::BudgetAccountant::set_budget(&accountant, "final", budget)
                    .and_then(|()| {
                        medarena_scorer::release_scalar(
                            &payer,
                            exact,
                            terms.sensitivity,
                            terms.final_epsilon,
                            range,
                        )
                    })
                    .map_err(|err| {
                        ArenaError::Internal(format!("releasing a final score: {err}"))
                    })?;
            releases.push(FinalRelease {
                submission: row.submission,
                team: row.team,
                released_private_score: released.value,
                site_scores: self.site_releases(competition, row.submission).await?,
            });
        }
        Ok(releases)
    }

    /// The per-hospital view of one final entry: each contributing hospital's exact private
    /// score (computed by the run as the released score is, block by block: Δ = range/k for
    /// each, `PER_HOSPITAL_KEY` of its details) released with Laplace noise of ε =
    /// `site_epsilon` / hospitals, so that the whole vector costs `site_epsilon`, reserved
    /// with the final score. The hospitals are the run's contributors (public), not the
    /// rows' values.
    async fn site_releases(
        &self,
        competition: &Competition,
        submission: SubmissionId,
    ) -> ArenaResult<Vec<SiteScoreRelease>> {
        let bundle = &competition.bundle;
        let (Some(site_epsilon), Some(terms), Some(metric)) = (
            bundle.privacy.final_release.site_epsilon,
            bundle.release_terms(),
            bundle.scorer_metric(),
        ) else {
            return Ok(Vec::new());
        };
        if terms.level != PrivacyLevel::Row {
            return Ok(Vec::new());
        }
        let Some(details) = self
            .inner
            .store
            .submission(submission)
            .await?
            .and_then(|s| s.result)
        else {
            return Ok(Vec::new());
        };
        let exact: std::collections::BTreeMap<String, f64> = details
            .get(crate::pipeline::PER_HOSPITAL_KEY)
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let hospitals = self.contributing_hospitals(competition, true).await?;
        if hospitals.is_empty() {
            return Ok(Vec::new());
        }
        let range =
            medarena_scorer::release_range(metric, &bundle.privacy.public_score.clamp_bounds())
                .map_err(|err| ArenaError::Internal(err.to_string()))?;
        let epsilon = site_epsilon / hospitals.len() as f64;
        let accountant = medarena_scorer::InMemoryAccountant::new();
        let budget = medarena_scorer::DatasetBudget {
            per_team: medarena_scorer::PrivacyCost::pure(site_epsilon + 1e-9),
            total: None,
        };
        medarena_scorer::BudgetAccountant::set_budget(&accountant, "sites", budget)
            .map_err(|err| ArenaError::Internal(err.to_string()))?;
        let payer = medarena_scorer::Payer {
            accountant: &accountant,
            team: "team",
            dataset: "sites",
        };
        let midpoint = (range.min + range.max) / 2.0;
        hospitals
            .into_iter()
            .map(|hospital| {
                // A hospital without rows in the run: every block counted as the midpoint,
                // exactly as the run would have computed it.
                let value = exact
                    .get(&hospital.0.to_string())
                    .copied()
                    .filter(|v| v.is_finite())
                    .unwrap_or(midpoint);
                let released = medarena_scorer::release_scalar(
                    &payer,
                    value,
                    terms.sensitivity,
                    epsilon,
                    range,
                )
                .map_err(|err| ArenaError::Internal(format!("releasing a site score: {err}")))?;
                Ok(SiteScoreRelease {
                    hospital,
                    released_score: released.value,
                    epsilon,
                })
            })
            .collect()
    }

    /// The hospitals that contributed to the competition's datasets, in id order (with
    /// `validated_only`, those whose data real runs read).
    pub(super) async fn contributing_hospitals(
        &self,
        competition: &Competition,
        validated_only: bool,
    ) -> ArenaResult<Vec<OrgId>> {
        let mut hospitals = Vec::new();
        for dataset in &competition.datasets {
            for contribution in self.inner.store.contributions(*dataset).await? {
                if (!validated_only || contribution.usable())
                    && !hospitals.contains(&contribution.hospital)
                {
                    hospitals.push(contribution.hospital);
                }
            }
        }
        hospitals.sort();
        Ok(hospitals)
    }

    /// The released per-hospital scores of a published competition's final entries:
    /// organizers see every hospital's, a contributing hospital its own; nobody else.
    pub async fn site_scores(
        &self,
        actor: &Actor,
        id: CompetitionId,
    ) -> ArenaResult<Vec<SiteScoreRow>> {
        let competition = self.load_competition(id).await?;
        let contributors = self.contributing_hospitals(&competition, false).await?;
        authorize(
            actor,
            Action::ViewSiteScores,
            Resource::Dataset {
                contributors: &contributors,
            },
        )?;
        let organizer = actor.role() == Some(Role::Organizer);
        let hospital = match actor.principal().and_then(|p| p.membership.as_ref()) {
            _ if organizer => None,
            Some(membership) => Some(membership.org),
            None => return Ok(Vec::new()),
        };
        Ok(self.inner.store.site_score_releases(id, hospital).await?)
    }

    /// The public or private leaderboard: one entry per team. The public board holds
    /// released scores of released runs only, the same for everyone. The private board
    /// shows organizers the exact private scores; after publication everyone else sees the
    /// released (noisy) private scores, or only ranks, as the bundle says.
    pub async fn leaderboard(
        &self,
        actor: &Actor,
        id: CompetitionId,
        kind: LeaderboardKind,
    ) -> ArenaResult<Leaderboard> {
        let competition = self.load_competition(id).await?;
        let published = competition.published_at.is_some();
        let action = match kind {
            LeaderboardKind::Public => Action::ViewPublic,
            LeaderboardKind::Private => Action::ViewPrivateLeaderboard,
        };
        authorize(actor, action, Resource::Competition { published })?;
        let organizer = authorize(
            actor,
            Action::ViewExactScores,
            competition_resource(&competition),
        )
        .is_ok();
        let terms = competition.bundle.release_terms();
        let higher_is_better = competition
            .bundle
            .metric_info()
            .is_none_or(|m| m.higher_is_better);
        let rows = self.released_rows(id).await?;
        let chosen = best_public_per_team(&rows, higher_is_better);
        let released = !(kind == LeaderboardKind::Private && organizer);
        let entries = chosen
            .into_iter()
            .filter_map(|row| {
                let score = match kind {
                    LeaderboardKind::Public => row.released_public_score,
                    LeaderboardKind::Private if organizer => row.private_score,
                    LeaderboardKind::Private => row.released_private_score,
                }?;
                Some(LeaderboardEntry {
                    rank: 0,
                    team: row.team,
                    team_name: row.team_name.clone(),
                    submission: row.submission,
                    score: Some(score),
                    submitted_at: row.created_at,
                })
            })
            .collect();
        let mut entries = ranked(entries, higher_is_better);
        let ranks_only = kind == LeaderboardKind::Private
            && released
            && terms
                .as_ref()
                .is_some_and(|t| t.final_show == FinalShow::Rank);
        if ranks_only {
            entries.iter_mut().for_each(|entry| entry.score = None);
        }
        let noise_half_width_95 = terms.as_ref().and_then(|t| match kind {
            LeaderboardKind::Public => Some(t.public_half_width_95),
            LeaderboardKind::Private if released && !ranks_only => Some(t.final_half_width_95),
            LeaderboardKind::Private => None,
        });
        Ok(Leaderboard {
            competition: id,
            kind,
            metric: competition.bundle.metric.clone(),
            higher_is_better,
            released,
            noise_half_width_95,
            entries,
        })
    }

    /// Scored runs whose results are released (their release time has passed).
    async fn released_rows(&self, id: CompetitionId) -> ArenaResult<Vec<ScoredSubmission>> {
        let now = self.now();
        Ok(self
            .inner
            .store
            .scored_submissions(id)
            .await?
            .into_iter()
            .filter(|row| row.release_at.is_none_or(|at| at <= now))
            .collect())
    }

    /// Every released public score in submission order (public; for the chart).
    pub async fn public_score_history(
        &self,
        actor: &Actor,
        id: CompetitionId,
    ) -> ArenaResult<Vec<ScorePoint>> {
        self.competition(actor, id).await?;
        let rows = self.released_rows(id).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(ScorePoint {
                    team: row.team,
                    team_name: row.team_name,
                    submission: row.submission,
                    released_public_score: row.released_public_score?,
                    submitted_at: row.created_at,
                })
            })
            .collect())
    }

    /// Whether the best entries really differ (organizers): each team's leaderboard entry,
    /// ranked by exact private score, the first `top` re-run on the real data (runs are
    /// deterministic, so they reproduce their scores) and compared pairwise with a paired
    /// bootstrap on the private test part. Nothing is released and nothing is charged.
    pub async fn compare_top_entries(
        &self,
        actor: &Actor,
        id: CompetitionId,
        top: usize,
    ) -> ArenaResult<Vec<EntryComparison>> {
        let competition = self.load_competition(id).await?;
        authorize(
            actor,
            Action::ViewExactScores,
            competition_resource(&competition),
        )?;
        let higher_is_better = competition
            .bundle
            .metric_info()
            .is_none_or(|m| m.higher_is_better);
        let rows = self.inner.store.scored_submissions(id).await?;
        let mut chosen: Vec<&ScoredSubmission> = best_public_per_team(&rows, higher_is_better)
            .into_iter()
            .filter(|row| row.private_score.is_some_and(f64::is_finite))
            .collect();
        chosen.sort_by(|a, b| {
            let (a, b) = (
                a.private_score.unwrap_or(0.0),
                b.private_score.unwrap_or(0.0),
            );
            if higher_is_better {
                b.total_cmp(&a)
            } else {
                a.total_cmp(&b)
            }
        });
        chosen.truncate(top.clamp(2, 10));
        if chosen.len() < 2 {
            return Ok(Vec::new());
        }
        let contributions = self
            .run_contributions(&competition, JobKind::RealRun)
            .await
            .map_err(|err| ArenaError::Internal(err.to_string()))?;
        let mut submissions = Vec::with_capacity(chosen.len());
        for row in &chosen {
            submissions.push(
                self.inner
                    .store
                    .submission(row.submission)
                    .await?
                    .ok_or_else(|| ArenaError::NotFound(row.submission.to_string()))?,
            );
        }
        let inputs: Vec<_> = submissions
            .iter()
            .map(|s| self.run_inputs(JobKind::RealRun, s, contributions.clone(), Vec::new()))
            .collect();
        let request = CompareRequest {
            competition: &competition,
            entries: submissions.iter().zip(&inputs).collect(),
        };
        self.inner
            .executor
            .compare(request)
            .await
            .map_err(|err| ArenaError::Internal(err.to_string()))
    }

    /// Every scored submission with exact public and private scores (organizers).
    pub async fn exact_scores(
        &self,
        actor: &Actor,
        id: CompetitionId,
    ) -> ArenaResult<Vec<ScoredSubmission>> {
        let competition = self.load_competition(id).await?;
        authorize(
            actor,
            Action::ViewExactScores,
            competition_resource(&competition),
        )?;
        Ok(self.inner.store.scored_submissions(id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, team: i64, public: f64, private: f64) -> ScoredSubmission {
        ScoredSubmission {
            submission: SubmissionId(id),
            team: OrgId(team),
            team_name: format!("team {team}"),
            released_public_score: Some(public),
            exact_public_score: Some(public),
            private_score: Some(private),
            released_private_score: None,
            created_at: Timestamp(id),
            release_at: None,
        }
    }

    #[test]
    fn best_per_team_respects_direction_and_ties() {
        let rows = vec![
            row(1, 1, 0.7, 0.1),
            row(2, 1, 0.9, 0.2),
            row(3, 1, 0.9, 0.3),
            row(4, 2, 0.8, 0.9),
        ];
        let mut higher: Vec<_> = best_public_per_team(&rows, true)
            .iter()
            .map(|r| r.submission.0)
            .collect();
        higher.sort();
        assert_eq!(higher, [2, 4]);
        let mut lower: Vec<_> = best_public_per_team(&rows, false)
            .iter()
            .map(|r| r.submission.0)
            .collect();
        lower.sort();
        assert_eq!(lower, [1, 4]);
    }

    #[test]
    fn ranking_orders_by_direction() {
        let entry = |team: i64, score: f64| LeaderboardEntry {
            rank: 0,
            team: OrgId(team),
            team_name: String::new(),
            submission: SubmissionId(team),
            score: Some(score),
            submitted_at: Timestamp(team),
        };
        let ranks = ranked(vec![entry(1, 0.5), entry(2, 0.9)], true);
        assert_eq!((ranks[0].team, ranks[0].rank), (OrgId(2), 1));
        let ranks = ranked(vec![entry(1, 0.5), entry(2, 0.9)], false);
        assert_eq!((ranks[0].team, ranks[1].rank), (OrgId(1), 2));
    }
}
