//! Certificates (`crate::certificate`): a registration certificate when a dataset is
//! approved, a result certificate per final entry when a competition is published.
//!
//! The platform issues them (the audit event's actor is the platform), signed with the
//! key set by [`super::ArenaBuilder::certificate_signer`] (the ledger's key in
//! production). Issuing is idempotent by serial and runs right after the decision it
//! certifies commits; if it fails there (or the arena had no key then), the first read
//! issues it, so a crash between the two never leaves a decision without its certificate.

use medarena_ledger::VerifierKey;

use super::Arena;
use super::competitions::competition_resource;
use crate::authz::{Action, Actor, authorize};
use crate::certificate::{
    self, CertificateBody, CertificateDocument, CertificateKind, CertificateRef,
    CertificateSubject, CertifiedContribution, CertifiedDataset, CertifiedReview, Party,
    RegistrationCertificate, ResultCertificate,
};
use crate::error::{ArenaError, ArenaResult};
use crate::ids::{CompetitionId, DatasetId};
use crate::model::{Competition, ContributionState, DatasetState};
use crate::service::LeaderboardKind;
use crate::store::{Stamp, StoredCertificate};

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// The version a manifest declares, when it parses.
fn manifest_version(text: &str) -> Option<String> {
    medarena_datasets_spec::Manifest::from_str(text)
        .ok()
        .map(|m| m.version)
}

impl Arena {
    /// The public key certificates are checked with (the ledger's `ledger.pub`), when this
    /// arena signs certificates.
    pub fn certificate_verifier_key(&self) -> Option<&VerifierKey> {
        self.inner
            .certificate_signer
            .as_ref()
            .map(|signer| signer.verifier_key())
    }

    /// A stored certificate as a document: its anchor is the evidence code once the
    /// ledger entry is written (the web layer adds the receipt; it holds the ledger).
    fn document_of(&self, stored: StoredCertificate) -> ArenaResult<CertificateDocument> {
        let body: CertificateBody = serde_json::from_str(&stored.body_json).map_err(|err| {
            ArenaError::Internal(format!(
                "certificate {} is unreadable: {err}",
                stored.serial
            ))
        })?;
        Ok(CertificateDocument {
            format: certificate::CERTIFICATE_FORMAT.to_owned(),
            body,
            body_sha256: stored.body_sha256,
            signature: stored.signature,
            anchor: stored
                .evidence
                .map(|evidence_code| certificate::CertificateAnchor {
                    evidence_code,
                    receipt: None,
                }),
        })
    }

    /// Signs `subject` and stores it (unless its serial exists), recording
    /// `certificate_issued`. `None` when this arena has no key.
    async fn issue_certificate(
        &self,
        serial: String,
        subject_id: String,
        dataset: Option<DatasetId>,
        competition: Option<CompetitionId>,
        subject: CertificateSubject,
    ) -> ArenaResult<Option<StoredCertificate>> {
        let Some(signer) = &self.inner.certificate_signer else {
            return Ok(None);
        };
        let now = self.now();
        let body = CertificateBody {
            serial: serial.clone(),
            issuer: signer.origin().to_owned(),
            issued_at: now.to_rfc3339(),
            nonce: certificate::new_nonce(),
            subject,
        };
        let kind = body.kind();
        let document =
            certificate::sign(signer, body).map_err(|err| ArenaError::Internal(err.to_string()))?;
        let stored = StoredCertificate {
            serial: serial.clone(),
            kind,
            subject: subject_id,
            dataset,
            competition,
            body_json: String::from_utf8(certificate::canonical_body(&document.body))
                .map_err(|err| ArenaError::Internal(err.to_string()))?,
            body_sha256: document.body_sha256,
            signature: document.signature,
            issued_at: now,
            evidence: None,
        };
        let stamp = Stamp {
            at: now,
            actor: None,
        };
        self.inner.store.insert_certificate(stamp, &stored).await?;
        self.deliver_audit_events().await;
        // Another process may have issued it first: the stored one is the certificate.
        Ok(self.inner.store.certificate(&serial).await?)
    }

    /// Issues the registration certificate of an approved dataset (idempotent).
    pub(super) async fn issue_registration_certificate(
        &self,
        id: DatasetId,
    ) -> ArenaResult<Option<StoredCertificate>> {
        let serial = certificate::registration_serial(id);
        if let Some(stored) = self.inner.store.certificate(&serial).await? {
            return Ok(Some(stored));
        }
        if self.inner.certificate_signer.is_none() {
            return Ok(None);
        }
        let dataset = self.load_dataset(id).await?;
        if dataset.state != DatasetState::Approved {
            return Ok(None);
        }
        let (Some(reviewer), Some(reviewed_at)) = (dataset.reviewed_by, dataset.reviewed_at) else {
            return Err(ArenaError::Internal(format!(
                "{id} is approved but names no reviewer"
            )));
        };
        let reviewer_name = self
            .inner
            .store
            .account(reviewer)
            .await?
            .map(|a| a.display_name)
            .unwrap_or_default();
        let mut contributions: Vec<_> = self
            .inner
            .store
            .contributions(id)
            .await?
            .into_iter()
            .filter(|c| c.state == ContributionState::Validated)
            .collect();
        contributions.sort_by_key(|c| c.id);
        let mut providers = Vec::new();
        for hospital in contributions.iter().map(|c| c.hospital) {
            if providers.iter().any(|p: &Party| p.org == hospital) {
                continue;
            }
            let name = self
                .inner
                .store
                .org(hospital)
                .await?
                .map(|o| o.name)
                .unwrap_or_default();
            providers.push(Party {
                org: hospital,
                name,
            });
        }
        providers.sort_by_key(|p| p.org);
        let certified: Vec<CertifiedContribution> = contributions
            .iter()
            .map(|c| CertifiedContribution {
                contribution: c.id,
                hospital: c.hospital,
                manifest_version: c.manifest.as_deref().and_then(manifest_version),
                manifest_sha256: c.manifest.as_deref().map(sha256_hex),
                content_sha256: c.content_sha256.clone(),
            })
            .collect();
        let mut versions: Vec<String> = certified
            .iter()
            .filter_map(|c| c.manifest_version.clone())
            .collect();
        versions.sort();
        versions.dedup();
        let subject = CertificateSubject::Registration(RegistrationCertificate {
            dataset: id,
            dataset_slug: dataset.slug,
            dataset_title: dataset.title,
            versions,
            providers,
            contributions: certified,
            review: CertifiedReview {
                outcome: "approved".to_owned(),
                note: dataset.review_note,
                reviewer,
                reviewer_name,
                reviewed_at: reviewed_at.to_rfc3339(),
                checklist: dataset.review_checklist,
            },
        });
        self.issue_certificate(serial, id.to_string(), Some(id), None, subject)
            .await
    }

    /// Issues a result certificate for each entry of a published competition's private
    /// leaderboard, exactly as everyone sees that board (idempotent by serial).
    pub(super) async fn issue_result_certificates(
        &self,
        competition: &Competition,
    ) -> ArenaResult<usize> {
        let Some(published_at) = competition.published_at else {
            return Ok(0);
        };
        if self.inner.certificate_signer.is_none() {
            return Ok(0);
        }
        // The public's view: released scores (or ranks only), never exact ones.
        let board = self
            .leaderboard(&Actor::Anonymous, competition.id, LeaderboardKind::Private)
            .await?;
        let mut datasets = Vec::new();
        for id in &competition.datasets {
            let dataset = self.load_dataset(*id).await?;
            let mut manifests: Vec<String> = self
                .inner
                .store
                .contributions(*id)
                .await?
                .iter()
                .filter(|c| c.state == ContributionState::Validated)
                .filter_map(|c| c.manifest.as_deref().map(sha256_hex))
                .collect();
            manifests.sort();
            manifests.dedup();
            let registration = self
                .issue_registration_certificate(*id)
                .await?
                .map(|stored| CertificateRef {
                    serial: stored.serial,
                    body_sha256: stored.body_sha256,
                });
            datasets.push(CertifiedDataset {
                dataset: *id,
                slug: dataset.slug,
                manifest_sha256: manifests,
                registration,
            });
        }
        let entries = u32::try_from(board.entries.len()).unwrap_or(u32::MAX);
        let mut issued = 0;
        for entry in &board.entries {
            let serial = certificate::result_serial(competition.id, entry.submission);
            if self.inner.store.certificate(&serial).await?.is_some() {
                continue;
            }
            let Some(submission) = self.inner.store.submission(entry.submission).await? else {
                continue;
            };
            let subject = CertificateSubject::Result(ResultCertificate {
                competition: competition.id,
                competition_slug: competition.slug.clone(),
                bundle_sha256: competition.bundle_sha256.clone(),
                team: Party {
                    org: entry.team,
                    name: entry.team_name.clone(),
                },
                submission: entry.submission,
                module_sha256: submission.module_sha256,
                metric: board.metric.clone(),
                higher_is_better: board.higher_is_better,
                // A non-finite value cannot round-trip through JSON (and is never released).
                released_score: entry.score.filter(|s| s.is_finite()),
                noise_half_width_95: entry
                    .score
                    .and(board.noise_half_width_95)
                    .filter(|h| h.is_finite()),
                rank: u32::try_from(entry.rank).unwrap_or(u32::MAX),
                entries,
                datasets: datasets.clone(),
                published_at: published_at.to_rfc3339(),
            });
            if self
                .issue_certificate(
                    serial,
                    entry.submission.to_string(),
                    None,
                    Some(competition.id),
                    subject,
                )
                .await?
                .is_some()
            {
                issued += 1;
            }
        }
        Ok(issued)
    }

    /// A dataset's registration certificate: its hospitals and organizers (the audience of
    /// its usage, hence the same action). Issued on first read if approval could not.
    pub async fn registration_certificate(
        &self,
        actor: &Actor,
        id: DatasetId,
    ) -> ArenaResult<CertificateDocument> {
        self.authorize_on_dataset(actor, Action::ViewDatasetUsage, id)
            .await?;
        let stored = self
            .issue_registration_certificate(id)
            .await?
            .ok_or_else(|| {
                ArenaError::NotFound(format!(
                    "a registration certificate of {id} (only an approved dataset has one)"
                ))
            })?;
        self.document_of(stored)
    }

    /// A published competition's result certificates, by rank: whoever may see its
    /// private leaderboard (everyone once published; nobody's exist before).
    pub async fn result_certificates(
        &self,
        actor: &Actor,
        id: CompetitionId,
    ) -> ArenaResult<Vec<CertificateDocument>> {
        let competition = self.load_competition(id).await?;
        authorize(
            actor,
            Action::ViewPrivateLeaderboard,
            competition_resource(&competition),
        )?;
        let mut stored = self.inner.store.competition_certificates(id).await?;
        if stored.is_empty() && competition.published_at.is_some() {
            self.issue_result_certificates(&competition).await?;
            stored = self.inner.store.competition_certificates(id).await?;
        }
        let mut documents = stored
            .into_iter()
            .map(|s| self.document_of(s))
            .collect::<ArenaResult<Vec<_>>>()?;
        documents.sort_by_key(|d| match &d.body.subject {
            CertificateSubject::Result(r) => (r.rank, r.submission.0),
            CertificateSubject::Registration(_) => (0, 0),
        });
        Ok(documents)
    }

    /// One certificate by serial, for whoever may see it (as above).
    pub async fn certificate(
        &self,
        actor: &Actor,
        serial: &str,
    ) -> ArenaResult<CertificateDocument> {
        if !certificate::is_serial(serial) {
            return Err(ArenaError::invalid(
                "serial",
                "must be reg-<dataset> or res-<competition>-<submission>",
            ));
        }
        let missing = || ArenaError::NotFound(format!("certificate {serial}"));
        let stored = self.inner.store.certificate(serial).await?;
        let Some(stored) = stored else {
            // A registration not issued at approval is issued on first read.
            if let Some(id) = serial
                .strip_prefix("reg-")
                .and_then(|n| n.parse().ok())
                .map(DatasetId)
                && self.inner.store.dataset(id).await?.is_some()
            {
                return self.registration_certificate(actor, id).await;
            }
            // Results not issued at publication are issued on first read of the list.
            if let Some(id) = serial
                .strip_prefix("res-")
                .and_then(|rest| rest.split_once('-'))
                .and_then(|(c, _)| c.parse().ok())
                .map(CompetitionId)
                && self.inner.store.competition(id).await?.is_some()
            {
                return self
                    .result_certificates(actor, id)
                    .await?
                    .into_iter()
                    .find(|d| d.body.serial == serial)
                    .ok_or_else(missing);
            }
            return Err(missing());
        };
        match (stored.kind, stored.dataset, stored.competition) {
            (CertificateKind::Registration, Some(dataset), _) => {
                self.authorize_on_dataset(actor, Action::ViewDatasetUsage, dataset)
                    .await?;
            }
            (CertificateKind::Result, _, Some(competition)) => {
                let competition = self.load_competition(competition).await?;
                authorize(
                    actor,
                    Action::ViewPrivateLeaderboard,
                    competition_resource(&competition),
                )?;
            }
            _ => {
                return Err(ArenaError::Internal(format!(
                    "certificate {serial} is malformed"
                )));
            }
        }
        self.document_of(stored)
    }
}
