//! Synthetic development data under the hospitals' control: a hospital measures its rows of
//! a dataset at an ε it chooses (charged on the dataset at once), previews the quality of
//! the draft, then publishes or discards it; teams draw development data from the published
//! releases (their dummy runs too). Everything past the measurement is post-processing.

use serde::{Deserialize, Serialize};

use super::Arena;
use crate::authz::{Action, Actor, Resource, authorize};
use crate::error::{ArenaError, ArenaResult};
use crate::ids::{CompetitionId, DatasetId, SyntheticReleaseId};
use crate::model::{Competition, JobKind, Role, SyntheticRelease, SyntheticState};
use crate::pipeline::synthetic::{self, SyntheticSource};
use crate::store::{InsertSynthetic, NewSyntheticRelease};

/// The most ε one synthetic release may spend (the dataset's caps usually bind first).
pub const MAX_SYNTHETIC_EPSILON: f64 = 100.0;

/// Rows of development data by default: as many as a dummy run draws, so that the default
/// download is the dummy run's table.
pub const DEFAULT_DEVELOPMENT_ROWS: usize = 1000;

/// The most rows one download draws.
pub const MAX_DEVELOPMENT_ROWS: usize = 1_000_000;

/// What a hospital may do with one of its releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyntheticAction {
    /// A draft goes to the teams (the hospital's previous published release is withdrawn).
    Publish,
    /// A draft is dropped (its ε stays spent).
    Discard,
    /// A published release stops being offered (tables already downloaded stay with teams).
    Withdraw,
}

impl SyntheticAction {
    fn transition(self) -> (&'static [SyntheticState], SyntheticState) {
        match self {
            SyntheticAction::Publish => (&[SyntheticState::Draft], SyntheticState::Published),
            SyntheticAction::Discard => (&[SyntheticState::Draft], SyntheticState::Discarded),
            SyntheticAction::Withdraw => (&[SyntheticState::Published], SyntheticState::Withdrawn),
        }
    }
}

/// A competition's development data, as CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct DevelopmentData {
    pub file_name: String,
    pub csv: Vec<u8>,
    /// The published releases the rows were drawn from; empty: the dummy generator.
    pub releases: Vec<SyntheticReleaseId>,
}

impl Arena {
    /// A contributing hospital measures its validated rows of `dataset` for synthetic data at
    /// `epsilon` (δ = [`synthetic::SYNTHETIC_DELTA`]). The ε is charged on the dataset when
    /// the measurement is stored, whatever becomes of the draft; refused when a cap would be
    /// exceeded. Records `synthetic_data_measured`.
    pub async fn measure_synthetic(
        &self,
        actor: &Actor,
        dataset: DatasetId,
        epsilon: f64,
    ) -> ArenaResult<SyntheticRelease> {
        self.authorize_on_dataset(actor, Action::ManageSyntheticData, dataset)
            .await?;
        let hospital = actor.approved_org().map(|m| m.org).ok_or_else(|| {
            ArenaError::Forbidden("only a contributing hospital measures its rows".to_owned())
        })?;
        if !(epsilon.is_finite() && epsilon > 0.0 && epsilon <= MAX_SYNTHETIC_EPSILON) {
            return Err(ArenaError::invalid(
                "epsilon",
                format!(
                    "must be a number of ε above 0 and at most {MAX_SYNTHETIC_EPSILON}, got {epsilon}"
                ),
            ));
        }
        let record = self.load_dataset(dataset).await?;
        let contributions = self
            .decrypted_contributions(&record, |c| c.hospital == hospital)
            .await?;
        if contributions.is_empty() {
            return Err(ArenaError::Precondition(format!(
                "your hospital has no validated contribution to dataset `{}` yet",
                record.slug
            )));
        }
        let measured =
            tokio::task::spawn_blocking(move || synthetic::measure(&contributions, epsilon))
                .await
                .map_err(|err| ArenaError::Internal(format!("the synthesizer's thread: {err}")))?
                .map_err(|err| {
                    ArenaError::Precondition(format!("your rows cannot be measured: {err}"))
                })?;
        let new = NewSyntheticRelease {
            dataset,
            hospital,
            micro_epsilon: medarena_scorer::budget::micro_epsilon_charge(measured.epsilon)
                .map_err(|err| ArenaError::invalid("epsilon", err.to_string()))?,
            delta: measured.delta,
            rho: measured.rho,
            synthesizer: synthetic::SYNTHESIZER.to_owned(),
            measurements: measured.measurements,
            measurements_sha256: measured.measurements_sha256,
            quality: measured.quality,
            default_terms: self.inner.config.default_dataset_terms,
        };
        let inserted = self
            .inner
            .store
            .insert_synthetic_release(self.stamp(actor), &new)
            .await?;
        self.deliver_audit_events().await;
        match inserted {
            InsertSynthetic::Inserted(release) => Ok(*release),
            InsertSynthetic::OverBudget(reason) => Err(ArenaError::Precondition(format!(
                "privacy budget exhausted: {reason}"
            ))),
        }
    }

    /// A dataset's synthetic releases as `actor` may see them: organizers and the releasing
    /// hospital every state; anyone else who may download development data the published
    /// and withdrawn ones (drafts are the hospital's preview).
    pub async fn synthetic_releases(
        &self,
        actor: &Actor,
        dataset: DatasetId,
    ) -> ArenaResult<Vec<SyntheticRelease>> {
        self.authorize_on_dataset(actor, Action::DownloadDummyData, dataset)
            .await?;
        let organizer = actor.role() == Some(Role::Organizer);
        let own = |release: &SyntheticRelease| {
            actor.role() == Some(Role::Hospital)
                && actor
                    .approved_org()
                    .is_some_and(|m| m.org == release.hospital)
        };
        Ok(self
            .inner
            .store
            .synthetic_releases(dataset)
            .await?
            .into_iter()
            .filter(|release| {
                organizer
                    || own(release)
                    || matches!(
                        release.state,
                        SyntheticState::Published | SyntheticState::Withdrawn
                    )
            })
            .collect())
    }

    /// The releasing hospital publishes, discards or withdraws a release. Records
    /// `synthetic_data_state_changed`.
    pub async fn change_synthetic(
        &self,
        actor: &Actor,
        id: SyntheticReleaseId,
        action: SyntheticAction,
    ) -> ArenaResult<SyntheticRelease> {
        let release = self
            .inner
            .store
            .synthetic_release(id)
            .await?
            .ok_or_else(|| ArenaError::NotFound(id.to_string()))?;
        authorize(
            actor,
            Action::ManageSyntheticData,
            Resource::Dataset {
                contributors: &[release.hospital],
            },
        )?;
        let (from, to) = action.transition();
        let moved = self
            .inner
            .store
            .set_synthetic_state(self.stamp(actor), id, from, to)
            .await?
            .ok_or_else(|| {
                ArenaError::Conflict(format!(
                    "{id} is {}; only a {} release can become {to}",
                    release.state,
                    from.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" or ")
                ))
            })?;
        self.deliver_audit_events().await;
        Ok(moved)
    }

    /// The published synthetic releases of a competition's datasets, oldest first, parsed
    /// (one that cannot be read is left out, with a log line).
    pub(super) async fn published_synthetic(
        &self,
        competition: &Competition,
    ) -> ArenaResult<Vec<SyntheticSource>> {
        let mut sources = Vec::new();
        for dataset in &competition.datasets {
            let mut releases = self.inner.store.synthetic_releases(*dataset).await?;
            releases.retain(|r| r.state == SyntheticState::Published);
            releases.sort_by_key(|r| r.id);
            for release in releases {
                let Some(text) = self.inner.store.synthetic_measurements(release.id).await? else {
                    continue;
                };
                match SyntheticSource::parse(release.id, release.hospital, &text) {
                    Ok(source) => sources.push(source),
                    Err(err) => {
                        tracing::error!(release = release.id.0, error = %err, "skipping a synthetic release")
                    }
                }
            }
        }
        Ok(sources)
    }

    /// The manifest of a competition's data (the schema teams develop against, as dummy
    /// runs read it): for whoever may download development data.
    pub async fn competition_manifest(
        &self,
        actor: &Actor,
        id: CompetitionId,
    ) -> ArenaResult<String> {
        let competition = self.load_competition(id).await?;
        self.authorize_development(actor, &competition).await?;
        self.manifest_of(&competition).await
    }

    async fn authorize_development(
        &self,
        actor: &Actor,
        competition: &Competition,
    ) -> ArenaResult<()> {
        let contributors = self.contributing_hospitals(competition, false).await?;
        authorize(
            actor,
            Action::DownloadDummyData,
            Resource::Dataset {
                contributors: &contributors,
            },
        )?;
        Ok(())
    }

    /// The first validated contribution's manifest, as the executor's dummy runs take it.
    async fn manifest_of(&self, competition: &Competition) -> ArenaResult<String> {
        let contributions = self
            .run_contributions(competition, JobKind::DummyRun)
            .await
            .map_err(|err| ArenaError::Internal(err.to_string()))?;
        contributions
            .iter()
            .find_map(|(_, c)| c.manifest.clone())
            .ok_or_else(|| {
                ArenaError::Precondition(
                    "the competition's datasets have no validated contribution yet".to_owned(),
                )
            })
    }

    /// A competition's development data as CSV: `rows` rows (default
    /// [`DEFAULT_DEVELOPMENT_ROWS`]) drawn with `seed` (default the split seed, as dummy
    /// runs) from its datasets' published synthetic releases, else the dummy generator.
    /// For organizers, admitted teams and admitted hospitals.
    pub async fn development_data(
        &self,
        actor: &Actor,
        id: CompetitionId,
        rows: Option<usize>,
        seed: Option<u64>,
    ) -> ArenaResult<DevelopmentData> {
        let competition = self.load_competition(id).await?;
        self.authorize_development(actor, &competition).await?;
        let rows = rows.unwrap_or(DEFAULT_DEVELOPMENT_ROWS);
        if !(1..=MAX_DEVELOPMENT_ROWS).contains(&rows) {
            return Err(ArenaError::invalid(
                "rows",
                format!("must be between 1 and {MAX_DEVELOPMENT_ROWS}, got {rows}"),
            ));
        }
        let seed = seed.unwrap_or(competition.bundle.split.seed);
        let manifest_text = self.manifest_of(&competition).await?;
        let manifest = medarena_datasets_spec::Manifest::from_str(&manifest_text)
            .map_err(|err| ArenaError::Internal(format!("the dataset manifest: {err}")))?;
        let sources = self.published_synthetic(&competition).await?;
        let releases = sources.iter().map(|s| s.release).collect();
        let csv = tokio::task::spawn_blocking(move || {
            let table = synthetic::development_table(&manifest, &sources, rows, seed)?;
            medarena_datasets_spec::write_table_bytes(&table, medarena_datasets_spec::Format::Csv)
        })
        .await
        .map_err(|err| ArenaError::Internal(format!("the sampler's thread: {err}")))?
        .map_err(ArenaError::Internal)?;
        Ok(DevelopmentData {
            file_name: format!("{}-development.csv", competition.slug),
            csv,
            releases,
        })
    }
}
