//! Datasets: creation, encrypted uploads with validation, organizer review, usage.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Arena, clean_line, clean_text};
use crate::authz::{Action, Actor, Resource, authorize};
use crate::bundle::check_slug;
use crate::error::{ArenaError, ArenaResult};
use crate::executor::{ContributionData, DatasetUpload, ValidationOutcome};
use crate::ids::{ContributionId, DatasetId, OrgId};
use crate::model::{
    ChecklistDecision, Contribution, ContributionState, Dataset, DatasetPrivacy,
    DatasetPrivacyTerms, DatasetReview, DatasetState, ReviewItem, Role,
};
use crate::objects::ObjectStoreError;
use crate::store::{
    AddContribution, DatasetUse, NewContribution, NewDataset, ReviewDataset, Stamp,
};
use crate::time::Timestamp;
use crate::vault::{KeyScope, VaultError};

/// The largest upload accepted in one piece (the object store keeps it in memory).
pub const MAX_UPLOAD_BYTES: usize = 512 * 1024 * 1024;

/// A dataset with the contributions the viewer may see: all for organizers, its own for a
/// hospital, none for others (only how many there are).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetView {
    pub dataset: Dataset,
    pub contributor_count: usize,
    pub contributions: Vec<Contribution>,
}

/// A contribution as `actor` sees it: its own hospital, everything; anyone else (organizers)
/// its counts of patients through the small-number policy, no row numbers, and not the
/// salt of its commitments (the hospital's, to check its receipts).
fn as_seen_by(
    actor: &Actor,
    mut contribution: Contribution,
    policy: &medarena_scorer::SuppressionPolicy,
) -> Contribution {
    let own = actor.role() == Some(Role::Hospital)
        && actor
            .approved_org()
            .is_some_and(|m| m.org == contribution.hospital);
    if own {
        return contribution;
    }
    contribution.rows = contribution
        .rows
        .and_then(|rows| crate::suppress::shown(u64::try_from(rows).unwrap_or(0), policy).as_i64());
    crate::suppress::redact_counts(&mut contribution.report, policy);
    contribution.commitment_salt = None;
    contribution
}

/// The review with its texts cleaned, or what is wrong with it, by field.
fn checked_review(review: &DatasetReview) -> ArenaResult<DatasetReview> {
    let mut checklist = Vec::with_capacity(ReviewItem::ALL.len());
    for (index, decision) in review.checklist.iter().enumerate() {
        if checklist
            .iter()
            .any(|d: &ChecklistDecision| d.item == decision.item)
        {
            return Err(ArenaError::invalid(
                format!("checklist[{index}].item"),
                format!("`{}` is decided twice", decision.item),
            ));
        }
        checklist.push(ChecklistDecision {
            item: decision.item,
            passed: decision.passed,
            note: clean_text(&format!("checklist[{index}].note"), &decision.note, 500)?,
        });
    }
    let missing: Vec<&str> = ReviewItem::ALL
        .iter()
        .filter(|item| !checklist.iter().any(|d| d.item == **item))
        .map(|item| item.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(ArenaError::invalid(
            "checklist",
            format!(
                "every item must be decided; missing: {}",
                missing.join(", ")
            ),
        ));
    }
    let note = review
        .note
        .as_deref()
        .map(|n| clean_text("note", n, 2_000))
        .transpose()?;
    let review = DatasetReview {
        approve: review.approve,
        checklist,
        note,
    };
    let failed = review.failed();
    if review.approve && !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|i| i.as_str()).collect();
        return Err(ArenaError::invalid(
            "approve",
            format!(
                "a dataset is approved only when every item passes; failed: {}",
                names.join(", ")
            ),
        ));
    }
    if !review.approve && failed.is_empty() && review.note.is_none() {
        return Err(ArenaError::invalid(
            "note",
            "a refusal with every item passed must say why",
        ));
    }
    Ok(review)
}

fn distinct_hospitals(contributions: &[Contribution]) -> Vec<OrgId> {
    let mut hospitals: Vec<OrgId> = contributions
        .iter()
        .filter(|c| c.state != ContributionState::Rejected)
        .map(|c| c.hospital)
        .collect();
    hospitals.sort();
    hospitals.dedup();
    hospitals
}

impl Arena {
    pub(super) async fn load_dataset(&self, id: DatasetId) -> ArenaResult<Dataset> {
        self.inner
            .store
            .dataset(id)
            .await?
            .ok_or_else(|| ArenaError::NotFound(id.to_string()))
    }

    /// Opens a dataset for contributions (organizers and admitted hospitals).
    pub async fn create_dataset(
        &self,
        actor: &Actor,
        slug: &str,
        title: &str,
        description: &str,
    ) -> ArenaResult<Dataset> {
        authorize(actor, Action::CreateDataset, Resource::Platform)?;
        check_slug(slug).map_err(|message| ArenaError::invalid("slug", message))?;
        let new = NewDataset {
            slug: slug.to_owned(),
            title: clean_text("title", title, 200)?,
            description: description.trim().to_owned(),
        };
        let dataset = self
            .inner
            .store
            .insert_dataset(self.stamp(actor), &new)
            .await?;
        self.deliver_audit_events().await;
        Ok(dataset)
    }

    /// The dataset catalog (public metadata only).
    pub async fn datasets(&self, actor: &Actor) -> ArenaResult<Vec<Dataset>> {
        authorize(actor, Action::ViewPublic, Resource::Platform)?;
        Ok(self.inner.store.datasets().await?)
    }

    /// One dataset, with the contributions this actor may see.
    pub async fn dataset(&self, actor: &Actor, id: DatasetId) -> ArenaResult<DatasetView> {
        let dataset = self.load_dataset(id).await?;
        let contributions = self.inner.store.contributions(id).await?;
        let hospitals = distinct_hospitals(&contributions);
        authorize(
            actor,
            Action::ViewPublic,
            Resource::Dataset {
                contributors: &hospitals,
            },
        )?;
        let visible = contributions
            .into_iter()
            .filter(|c| {
                authorize(
                    actor,
                    Action::ViewContribution,
                    Resource::Contribution {
                        hospital: c.hospital,
                    },
                )
                .is_ok()
            })
            .map(|c| as_seen_by(actor, c, &self.inner.config.suppression))
            .collect();
        Ok(DatasetView {
            dataset,
            contributor_count: hospitals.len(),
            contributions: visible,
        })
    }

    /// A hospital uploads a table to a dataset. The bytes are encrypted and stored, then
    /// validated; a rejected upload is deleted (its report is kept) and returned as
    /// [`ArenaError::UploadRejected`] carrying the report.
    pub async fn upload_contribution(
        &self,
        actor: &Actor,
        dataset: DatasetId,
        upload: &DatasetUpload,
    ) -> ArenaResult<Contribution> {
        let record = self.load_dataset(dataset).await?;
        let contributors = distinct_hospitals(&self.inner.store.contributions(dataset).await?);
        authorize(
            actor,
            Action::ContributeData,
            Resource::Dataset {
                contributors: &contributors,
            },
        )?;
        let (account, hospital) = match (actor.account(), actor.approved_org(), actor.role()) {
            (Some(account), Some(membership), Some(Role::Hospital)) => (account, membership.org),
            _ => {
                return Err(ArenaError::Forbidden(
                    "only admitted hospitals upload data".to_owned(),
                ));
            }
        };
        let file_name = clean_text("file_name", &upload.file_name, 255)?;
        if file_name.contains(['/', '\\']) {
            return Err(ArenaError::invalid("file_name", "must be a bare file name"));
        }
        if upload.bytes.is_empty() {
            return Err(ArenaError::invalid("file", "is empty"));
        }
        if upload.bytes.len() > MAX_UPLOAD_BYTES {
            return Err(ArenaError::invalid(
                "file",
                format!("is larger than {MAX_UPLOAD_BYTES} bytes"),
            ));
        }
        // Each upload has its own data key, so that its hospital can withdraw it alone.
        let scope = KeyScope::new_upload();
        let sealed = self.inner.vault.put(&scope, &upload.bytes).await?;
        let added = self
            .inner
            .store
            .insert_contribution(
                self.stamp(actor),
                &NewContribution {
                    dataset,
                    hospital,
                    uploaded_by: account,
                    file_name,
                    manifest: upload.manifest.clone(),
                    object: sealed.object,
                    content_sha256: sealed.content_sha256,
                    size_bytes: sealed.size_bytes,
                    commitment_salt: crate::vault::commitment_salt(),
                    key_scope: Some(scope.to_string()),
                },
            )
            .await?;
        let contribution = match added {
            AddContribution::Added(contribution) => *contribution,
            AddContribution::DatasetClosed(state) => {
                self.inner.vault.delete(&sealed.object).await?;
                return Err(ArenaError::Conflict(format!(
                    "dataset `{}` is {state} and takes no more contributions",
                    record.slug
                )));
            }
        };
        let settled = self
            .settle(self.stamp(actor), &record, &contribution, upload)
            .await?;
        self.deliver_audit_events().await;
        if settled.state == ContributionState::Rejected {
            return Err(ArenaError::UploadRejected(Box::new(settled)));
        }
        Ok(settled)
    }

    /// Validates a stored contribution and records the verdict; a rejected upload's bytes are
    /// deleted. A validator that fails to run counts as a rejection (upload again later).
    async fn settle(
        &self,
        stamp: Stamp,
        dataset: &Dataset,
        contribution: &Contribution,
        upload: &DatasetUpload,
    ) -> ArenaResult<Contribution> {
        let others = match self.validated_contributions(dataset, contribution.id).await {
            Ok(others) => others,
            Err(err) => {
                tracing::error!(contribution = contribution.id.0, error = %err, "reading the dataset's other contributions failed");
                Vec::new()
            }
        };
        let outcome = match self
            .inner
            .validator
            .validate(dataset, upload, &others)
            .await
        {
            Ok(outcome) => outcome,
            Err(err) => {
                tracing::error!(contribution = contribution.id.0, error = %err, "dataset validator failed");
                ValidationOutcome {
                    accepted: false,
                    rows: None,
                    report: serde_json::json!({
                        "error": "validation could not run; upload again later",
                    }),
                }
            }
        };
        let state = if outcome.accepted {
            ContributionState::Validated
        } else {
            ContributionState::Rejected
        };
        let settled = self
            .inner
            .store
            .record_validation(stamp, contribution.id, state, outcome.rows, &outcome.report)
            .await?
            .ok_or_else(|| {
                ArenaError::Conflict(format!("{} was validated concurrently", contribution.id))
            })?;
        if state == ContributionState::Rejected
            && let Some(object) = contribution.object
        {
            // Refused data is not kept, even encrypted; only the report remains.
            if let Err(err) = self.inner.vault.delete(&object).await {
                tracing::warn!(%object, error = %err, "deleting a rejected upload failed");
            }
        }
        Ok(settled)
    }

    /// The dataset's validated contributions other than `except`, decrypted, for the checks
    /// on the union of all hospitals' rows.
    async fn validated_contributions(
        &self,
        dataset: &Dataset,
        except: ContributionId,
    ) -> ArenaResult<Vec<ContributionData>> {
        self.decrypted_contributions(dataset, |c| c.id != except)
            .await
    }

    /// The dataset's validated contributions that `keep` selects, decrypted.
    pub(super) async fn decrypted_contributions(
        &self,
        dataset: &Dataset,
        keep: impl Fn(&Contribution) -> bool,
    ) -> ArenaResult<Vec<ContributionData>> {
        let mut out = Vec::new();
        for other in self.inner.store.contributions(dataset.id).await? {
            if !keep(&other) || !other.usable() {
                continue;
            }
            let Some(object) = other.object else {
                continue;
            };
            let bytes = self
                .inner
                .vault
                .get(&other.scope(), &object, &other.content_sha256)
                .await?;
            out.push(ContributionData {
                dataset: dataset.id,
                dataset_slug: dataset.slug.clone(),
                contribution: other.id,
                hospital: other.hospital,
                file_name: other.file_name,
                manifest: other.manifest,
                bytes,
            });
        }
        Ok(out)
    }

    /// Settles contributions a crash left between storage and validation (state `uploaded`,
    /// older than `older_than`, so uploads in progress elsewhere are left alone). Runs at
    /// every open; returns how many it settled.
    pub async fn recover_interrupted_uploads(&self, older_than: Duration) -> ArenaResult<usize> {
        // Server hosts' work: a worker host cannot read an upload (no master key), and
        // validating the empty bytes it would get instead would reject the hospital's file.
        if self.inner.vault.master_key().is_none() {
            return Ok(0);
        }
        let cutoff = Timestamp(
            self.now()
                .0
                .saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX)),
        );
        let stamp = Stamp {
            at: self.now(),
            actor: None,
        };
        let mut settled = 0;
        for dataset in self.inner.store.datasets().await? {
            if dataset.state != DatasetState::Uploaded {
                continue;
            }
            for contribution in self.inner.store.contributions(dataset.id).await? {
                if contribution.state != ContributionState::Uploaded
                    || contribution.created_at > cutoff
                {
                    continue;
                }
                let read = match contribution.object {
                    Some(object) => self
                        .inner
                        .vault
                        .get(&contribution.scope(), &object, &contribution.content_sha256)
                        .await
                        .map(|plain| plain.to_vec()),
                    None => Ok(Vec::new()),
                };
                let bytes = match read {
                    Ok(bytes) => bytes,
                    // Storage that did not answer is no verdict on the file: next start.
                    Err(VaultError::Objects(
                        err @ (ObjectStoreError::Io { .. } | ObjectStoreError::Remote { .. }),
                    )) => {
                        tracing::error!(contribution = contribution.id.0, error = %err, "stored upload unreadable for now; left for the next start");
                        continue;
                    }
                    // Missing, altered or undecryptable: validated as empty, so rejected.
                    Err(err) => {
                        tracing::error!(contribution = contribution.id.0, error = %err, "stored upload unreadable");
                        Vec::new()
                    }
                };
                let upload = DatasetUpload {
                    file_name: contribution.file_name.clone(),
                    manifest: contribution.manifest.clone(),
                    bytes,
                };
                tracing::warn!(
                    contribution = contribution.id.0,
                    "validating an upload interrupted by a restart"
                );
                self.settle(stamp, &dataset, &contribution, &upload).await?;
                settled += 1;
            }
        }
        self.deliver_audit_events().await;
        Ok(settled)
    }

    /// A contribution and its validation report: its hospital and organizers.
    pub async fn contribution(
        &self,
        actor: &Actor,
        id: ContributionId,
    ) -> ArenaResult<Contribution> {
        let contribution = self
            .inner
            .store
            .contribution(id)
            .await?
            .ok_or_else(|| ArenaError::NotFound(id.to_string()))?;
        authorize(
            actor,
            Action::ViewContribution,
            Resource::Contribution {
                hospital: contribution.hospital,
            },
        )?;
        Ok(as_seen_by(
            actor,
            contribution,
            &self.inner.config.suppression,
        ))
    }

    /// Approves or rejects a validated dataset (organizers) after its legality and
    /// compliance review: every [`ReviewItem`] decided once, with a note; approval needs every
    /// item passed and freezes the dataset; a refusal names the items that failed (or says
    /// why in its note).
    pub async fn review_dataset(
        &self,
        actor: &Actor,
        id: DatasetId,
        review: &DatasetReview,
    ) -> ArenaResult<Dataset> {
        let contributors = distinct_hospitals(&self.inner.store.contributions(id).await?);
        authorize(
            actor,
            Action::ReviewDataset,
            Resource::Dataset {
                contributors: &contributors,
            },
        )?;
        let review = checked_review(review)?;
        match self
            .inner
            .store
            .review_dataset(self.stamp(actor), id, &review)
            .await?
        {
            ReviewDataset::Reviewed(dataset) => {
                self.deliver_audit_events().await;
                // Right after the approval commits; a failure here is retried by the first
                // read of the certificate, so the approval stands either way.
                if review.approve
                    && let Err(err) = self.issue_registration_certificate(id).await
                {
                    tracing::warn!(dataset = %id, error = %err, "issuing the registration certificate failed; the first read will retry");
                }
                Ok(dataset)
            }
            ReviewDataset::NotReviewable(state) => Err(ArenaError::Precondition(format!(
                "only a validated dataset can be reviewed; this one is {state}"
            ))),
        }
    }

    /// Which runs used a dataset and the ε they spent: its contributing hospitals and
    /// organizers.
    pub async fn dataset_usage(
        &self,
        actor: &Actor,
        id: DatasetId,
    ) -> ArenaResult<Vec<DatasetUse>> {
        self.authorize_on_dataset(actor, Action::ViewDatasetUsage, id)
            .await?;
        Ok(self.inner.store.dataset_usage(id).await?)
    }

    /// A dataset's privacy terms as they apply (the strictest of its hospitals') and what
    /// has been spent on it: its contributing hospitals and organizers.
    pub async fn dataset_privacy(
        &self,
        actor: &Actor,
        id: DatasetId,
    ) -> ArenaResult<DatasetPrivacy> {
        self.authorize_on_dataset(actor, Action::ViewDatasetUsage, id)
            .await?;
        Ok(self
            .inner
            .store
            .dataset_privacy(id, &self.inner.config.default_dataset_terms)
            .await?)
    }

    /// A contributing hospital sets its own terms for a dataset: the weakest guarantee a
    /// competition may use it under, what one team may spend on it across all competitions,
    /// and what all teams together may. The strictest of all its hospitals' terms applies;
    /// lowering a cap below what was spent stops new real runs at once.
    pub async fn set_dataset_privacy(
        &self,
        actor: &Actor,
        id: DatasetId,
        terms: &DatasetPrivacyTerms,
    ) -> ArenaResult<DatasetPrivacy> {
        self.authorize_on_dataset(actor, Action::SetDatasetPrivacy, id)
            .await?;
        let hospital = actor.approved_org().map(|m| m.org).ok_or_else(|| {
            ArenaError::Forbidden("only a contributing hospital sets terms".to_owned())
        })?;
        for (field, value) in [
            ("per_team_epsilon", terms.per_team_epsilon),
            ("total_epsilon", terms.total_epsilon),
        ] {
            if !(value.is_finite() && (0.0..=1e6).contains(&value)) {
                return Err(ArenaError::invalid(
                    field,
                    format!("must be a number of ε between 0 and 1000000, got {value}"),
                ));
            }
        }
        if terms.per_team_epsilon > terms.total_epsilon {
            return Err(ArenaError::invalid(
                "per_team_epsilon",
                format!(
                    "{} exceeds the total across teams ({})",
                    terms.per_team_epsilon, terms.total_epsilon
                ),
            ));
        }
        self.inner
            .store
            .set_privacy_terms(self.stamp(actor), id, hospital, terms)
            .await?;
        self.deliver_audit_events().await;
        self.dataset_privacy(actor, id).await
    }

    /// A contributing hospital suspends (with a reason, shown to the teams whose runs it
    /// stops) or resumes the use of a dataset: while any of its hospitals suspends it, no real-data run is queued on it and
    /// one already queued ends when it would start (its reserved ε stays charged). Runs
    /// released before keep their records. Returns the dataset's terms and status.
    pub async fn set_dataset_suspension(
        &self,
        actor: &Actor,
        id: DatasetId,
        suspended: bool,
        reason: Option<&str>,
    ) -> ArenaResult<DatasetPrivacy> {
        self.authorize_on_dataset(actor, Action::SuspendDatasetUse, id)
            .await?;
        let hospital = actor.approved_org().map(|m| m.org).ok_or_else(|| {
            ArenaError::Forbidden("only a contributing hospital suspends a dataset".to_owned())
        })?;
        let reason = match (suspended, reason) {
            (true, Some(reason)) => Some(clean_line("reason", reason, 500)?),
            (true, None) => {
                return Err(ArenaError::invalid(
                    "reason",
                    "is required to suspend a dataset",
                ));
            }
            (false, _) => None,
        };
        self.inner
            .store
            .set_dataset_suspension(self.stamp(actor), id, hospital, reason.as_deref())
            .await?;
        self.deliver_audit_events().await;
        self.dataset_privacy(actor, id).await
    }

    /// A hospital withdraws one of its contributions (with a reason): its data key is
    /// destroyed and its bytes deleted, so nothing can read it again; no run is queued or
    /// started on it; its hospital's synthetic releases of the dataset are withdrawn too.
    /// Released results and every receipt stay. Records `contribution_withdrawn`.
    pub async fn withdraw_contribution(
        &self,
        actor: &Actor,
        id: ContributionId,
        reason: &str,
    ) -> ArenaResult<Contribution> {
        let contribution = self
            .inner
            .store
            .contribution(id)
            .await?
            .ok_or_else(|| ArenaError::NotFound(id.to_string()))?;
        authorize(
            actor,
            Action::WithdrawContribution,
            Resource::Contribution {
                hospital: contribution.hospital,
            },
        )?;
        let reason = clean_line("reason", reason, 500)?;
        let Some((withdrawn, object)) = self
            .inner
            .store
            .withdraw_contribution(self.stamp(actor), id, &reason)
            .await?
        else {
            return Err(ArenaError::Conflict(format!("{id} is already withdrawn")));
        };
        // The key is gone already (what makes the bytes unreadable); deleting them is
        // hygiene, and a failure here leaves only ciphertext no key opens.
        if let Some(object) = object
            && let Err(err) = self.inner.vault.delete(&object).await
        {
            tracing::warn!(contribution = id.0, error = %err, "withdrawn upload's bytes not deleted");
        }
        self.deliver_audit_events().await;
        Ok(withdrawn)
    }

    /// Authorizes `action` on a dataset, given who contributed to it.
    pub(super) async fn authorize_on_dataset(
        &self,
        actor: &Actor,
        action: Action,
        id: DatasetId,
    ) -> ArenaResult<()> {
        self.load_dataset(id).await?;
        let contributors = distinct_hospitals(&self.inner.store.contributions(id).await?);
        authorize(
            actor,
            action,
            Resource::Dataset {
                contributors: &contributors,
            },
        )?;
        Ok(())
    }
}
