//! Competitions: creation from a bundle, the agreement, closing and publishing, leaderboards.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Arena;
use crate::authz::{Action, Actor, Resource, authorize};
use crate::bundle::{Bundle, BundleError, FieldIssue};
use crate::error::{ArenaError, ArenaResult};
use crate::executor::{CompareRequest, EntryComparison};
use crate::ids::{CompetitionId, OrgId, SubmissionId};
use crate::model::{AgreementAcceptance, Competition, DatasetState, JobKind};
use crate::store::{NewCompetition, ScoredSubmission};
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
    pub score: f64,
    pub submitted_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Leaderboard {
    pub competition: CompetitionId,
    pub kind: LeaderboardKind,
    pub metric: String,
    pub higher_is_better: bool,
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
        let by_score = if higher_is_better {
            b.score.total_cmp(&a.score)
        } else {
            a.score.total_cmp(&b.score)
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
    /// must exist and be approved.
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
                Some(dataset) => datasets.push(dataset.id),
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

    /// Reveals the private leaderboard to everyone (organizers; after closing).
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
        if !self
            .inner
            .store
            .publish_competition(self.stamp(actor), id)
            .await?
        {
            return Err(ArenaError::Conflict(
                "the competition is already published".to_owned(),
            ));
        }
        self.deliver_audit_events().await;
        self.load_competition(id).await
    }

    /// The public or private leaderboard: one entry per team.
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
        let higher_is_better = competition
            .bundle
            .metric_info()
            .is_none_or(|m| m.higher_is_better);
        let rows = self.inner.store.scored_submissions(id).await?;
        let chosen = best_public_per_team(&rows, higher_is_better);
        let entries = chosen
            .into_iter()
            .filter_map(|row| {
                let score = match kind {
                    LeaderboardKind::Public => row.released_public_score,
                    LeaderboardKind::Private => row.private_score,
                }?;
                Some(LeaderboardEntry {
                    rank: 0,
                    team: row.team,
                    team_name: row.team_name.clone(),
                    submission: row.submission,
                    score,
                    submitted_at: row.created_at,
                })
            })
            .collect();
        Ok(Leaderboard {
            competition: id,
            kind,
            metric: competition.bundle.metric.clone(),
            higher_is_better,
            entries: ranked(entries, higher_is_better),
        })
    }

    /// Every released public score in submission order (public; for the chart).
    pub async fn public_score_history(
        &self,
        actor: &Actor,
        id: CompetitionId,
    ) -> ArenaResult<Vec<ScorePoint>> {
        self.competition(actor, id).await?;
        let rows = self.inner.store.scored_submissions(id).await?;
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
            .map(|s| self.run_inputs(JobKind::RealRun, s, contributions.clone()))
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
            created_at: Timestamp(id),
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
            score,
            submitted_at: Timestamp(team),
        };
        let ranks = ranked(vec![entry(1, 0.5), entry(2, 0.9)], true);
        assert_eq!((ranks[0].team, ranks[0].rank), (OrgId(2), 1));
        let ranks = ranked(vec![entry(1, 0.5), entry(2, 0.9)], false);
        assert_eq!((ranks[0].team, ranks[1].rank), (OrgId(1), 2));
    }
}
