//! The audit hook: every state-changing operation records a typed [`AuditEvent`].
//!
//! Events are written to an outbox table **in the same transaction** as the change they
//! describe, so a crash can never commit a change without its event (or the reverse). The
//! arena then delivers them, in order, to an [`AuditSink`] (the ledger: [`crate::ledger_sink`]) and
//! stores the receipt's evidence code next to the event. Delivery is at least once: after a
//! crash between the sink call and the bookkeeping, the event is delivered again, so a sink
//! must be idempotent by [`AuditRecord::id`].
//!
//! Payloads carry ids, hashes and states only: no e-mail addresses, names or free text, so
//! they may be published on a public ledger.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::bundle::PrivacyLevel;
use crate::certificate::CertificateKind;
use crate::contract::ContractState;
use crate::ids::{
    AccountId, AuditEventId, CompetitionId, ContractId, ContributionId, CredentialId, DatasetId,
    JobId, OrgId, SubmissionId, SyntheticReleaseId,
};
use crate::model::{
    ChargePurpose, CredentialKind, JobKind, OrgKind, ReviewItem, Role, RunOutcome,
    SubmissionStatus, SyntheticState, Tier,
};
use crate::time::Timestamp;

/// One state change, typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuditEvent {
    AccountCreated {
        account: AccountId,
        role: Role,
    },
    AccountDisabled {
        account: AccountId,
        disabled: bool,
    },
    CredentialIssued {
        credential: CredentialId,
        account: AccountId,
        kind: CredentialKind,
        expires_at: Timestamp,
    },
    CredentialRevoked {
        credential: CredentialId,
        account: AccountId,
    },
    AdmissionRequested {
        org: OrgId,
        kind: OrgKind,
        applicant: AccountId,
    },
    AdmissionReviewed {
        org: OrgId,
        approved: bool,
        tier: Option<Tier>,
    },
    TeamMemberAdded {
        team: OrgId,
        account: AccountId,
    },
    CompetitionCreated {
        competition: CompetitionId,
        slug: String,
        bundle_sha256: String,
    },
    CompetitionClosed {
        competition: CompetitionId,
    },
    CompetitionPublished {
        competition: CompetitionId,
    },
    AgreementAccepted {
        competition: CompetitionId,
        team: OrgId,
        account: AccountId,
        agreement_sha256: String,
    },
    DatasetCreated {
        dataset: DatasetId,
        slug: String,
    },
    /// The file is committed to, not named: `content_commitment` is
    /// [`crate::vault::commitment`] of its SHA-256 with the contribution's secret salt (its
    /// size and digest would let anyone test a guess of the rows).
    ContributionUploaded {
        contribution: ContributionId,
        dataset: DatasetId,
        hospital: OrgId,
        content_commitment: String,
    },
    /// `report_commitment`: the validation report's SHA-256, committed to with the same salt.
    ContributionValidated {
        contribution: ContributionId,
        dataset: DatasetId,
        accepted: bool,
        report_commitment: String,
    },
    /// The review's decision, the items that failed, and the SHA-256 of the whole checklist
    /// (its notes stay off the public ledger).
    DatasetReviewed {
        dataset: DatasetId,
        approved: bool,
        #[serde(default)]
        failed_items: Vec<ReviewItem>,
        #[serde(default)]
        checklist_sha256: String,
    },
    SubmissionReceived {
        submission: SubmissionId,
        competition: CompetitionId,
        team: OrgId,
        phase: String,
        module_sha256: String,
    },
    JobEnqueued {
        job: JobId,
        submission: SubmissionId,
        kind: JobKind,
    },
    JobStarted {
        job: JobId,
        attempt: i64,
        worker: String,
    },
    /// A worker stopped heart-beating (crash, hang); the job was retried or given up.
    JobLeaseExpired {
        job: JobId,
        attempt: i64,
        retried: bool,
    },
    /// The executor reported an infrastructure error; the job was retried or given up.
    JobAttemptFailed {
        job: JobId,
        attempt: i64,
        retried: bool,
    },
    RunFinished {
        job: JobId,
        submission: SubmissionId,
        kind: JobKind,
        outcome: RunOutcome,
        released_public_score: Option<f64>,
    },
    /// ε reserved for a real run when it was queued (on the competition's every dataset).
    BudgetCharged {
        competition: CompetitionId,
        team: OrgId,
        dataset: DatasetId,
        job: JobId,
        purpose: ChargePurpose,
        epsilon: f64,
    },
    /// A contributing hospital set its privacy terms for a dataset.
    DatasetPrivacyTermsSet {
        dataset: DatasetId,
        hospital: OrgId,
        min_level: PrivacyLevel,
        per_team_epsilon: f64,
        total_epsilon: f64,
    },
    /// A team's private score released (with noise) at publication.
    FinalScoreReleased {
        competition: CompetitionId,
        team: OrgId,
        submission: SubmissionId,
        released_private_score: f64,
    },
    SubmissionFinished {
        submission: SubmissionId,
        status: SubmissionStatus,
        outcome: RunOutcome,
    },
    /// A final entry's score on one hospital's rows released (with noise) at publication, to
    /// that hospital. The value is not in the event: the ledger is public.
    SiteScoreReleased {
        competition: CompetitionId,
        submission: SubmissionId,
        hospital: OrgId,
        epsilon: f64,
    },
    /// A contributing hospital suspended the use of a dataset: no real-data run reads it
    /// until the hospital resumes it.
    DatasetSuspended {
        dataset: DatasetId,
        hospital: OrgId,
        reason: String,
    },
    DatasetResumed {
        dataset: DatasetId,
        hospital: OrgId,
    },
    /// A hospital measured its rows for synthetic data: the ε it chose is spent on the
    /// dataset. Names the synthesizer; no figure computed on the rows.
    SyntheticDataMeasured {
        dataset: DatasetId,
        hospital: OrgId,
        release: SyntheticReleaseId,
        epsilon: f64,
        delta: f64,
        synthesizer: String,
    },
    /// A synthetic release was published, discarded or withdrawn; the digest of the noisy
    /// measurements lets a team check that what it downloaded is what was published.
    SyntheticDataStateChanged {
        dataset: DatasetId,
        hospital: OrgId,
        release: SyntheticReleaseId,
        state: SyntheticState,
        measurements_sha256: String,
    },
    /// A hospital withdrew a contribution: its data key is destroyed and its bytes deleted;
    /// no run reads it again (released results keep their records).
    ContributionWithdrawn {
        contribution: ContributionId,
        dataset: DatasetId,
        hospital: OrgId,
    },
    /// The platform issued a certificate (`crate::certificate`): anchors its body digest
    /// (a commitment: the body holds a random nonce) so a holder can check inclusion.
    /// `subject` is what it certifies (`dataset:3`, `submission:12`).
    CertificateIssued {
        certificate: String,
        kind: CertificateKind,
        subject: String,
        certificate_sha256: String,
    },
    /// An organizer proposed a contract; the digest is of the terms each party accepts.
    ContractProposed {
        contract: ContractId,
        competition: CompetitionId,
        terms_sha256: String,
    },
    /// One party accepted a contract's terms (`party`: `platform`, `hospital:3`, ...).
    ContractAccepted {
        contract: ContractId,
        party: String,
        terms_sha256: String,
    },
    /// A contract moved to `state` (activated, suspended, resumed, terminated, expired,
    /// fulfilled); `party` is who moved it (`None`: the platform's clock or publication).
    ContractStateChanged {
        contract: ContractId,
        state: ContractState,
        party: Option<String>,
        reason: Option<String>,
    },
    /// A real-data run's use of one dataset, metered under the contract that covered it:
    /// what the parties' statements list (stamped, like every real-run event, with the
    /// run's release time). No measured time or memory: those follow the hidden rows.
    RunMetered {
        contract: ContractId,
        job: JobId,
        dataset: DatasetId,
        team: OrgId,
        epsilon: f64,
        cpu_seconds_billed: u64,
        amount: String,
        currency: String,
    },
}

impl AuditEvent {
    /// Short name of the variant (the `type` field of the JSON).
    pub fn kind(&self) -> &'static str {
        match self {
            AuditEvent::AccountCreated { .. } => "account_created",
            AuditEvent::AccountDisabled { .. } => "account_disabled",
            AuditEvent::CredentialIssued { .. } => "credential_issued",
            AuditEvent::CredentialRevoked { .. } => "credential_revoked",
            AuditEvent::AdmissionRequested { .. } => "admission_requested",
            AuditEvent::AdmissionReviewed { .. } => "admission_reviewed",
            AuditEvent::TeamMemberAdded { .. } => "team_member_added",
            AuditEvent::CompetitionCreated { .. } => "competition_created",
            AuditEvent::CompetitionClosed { .. } => "competition_closed",
            AuditEvent::CompetitionPublished { .. } => "competition_published",
            AuditEvent::AgreementAccepted { .. } => "agreement_accepted",
            AuditEvent::DatasetCreated { .. } => "dataset_created",
            AuditEvent::ContributionUploaded { .. } => "contribution_uploaded",
            AuditEvent::ContributionValidated { .. } => "contribution_validated",
            AuditEvent::DatasetReviewed { .. } => "dataset_reviewed",
            AuditEvent::SubmissionReceived { .. } => "submission_received",
            AuditEvent::JobEnqueued { .. } => "job_enqueued",
            AuditEvent::JobStarted { .. } => "job_started",
            AuditEvent::JobLeaseExpired { .. } => "job_lease_expired",
            AuditEvent::JobAttemptFailed { .. } => "job_attempt_failed",
            AuditEvent::RunFinished { .. } => "run_finished",
            AuditEvent::BudgetCharged { .. } => "budget_charged",
            AuditEvent::SubmissionFinished { .. } => "submission_finished",
            AuditEvent::DatasetPrivacyTermsSet { .. } => "dataset_privacy_terms_set",
            AuditEvent::FinalScoreReleased { .. } => "final_score_released",
            AuditEvent::SiteScoreReleased { .. } => "site_score_released",
            AuditEvent::DatasetSuspended { .. } => "dataset_suspended",
            AuditEvent::DatasetResumed { .. } => "dataset_resumed",
            AuditEvent::SyntheticDataMeasured { .. } => "synthetic_data_measured",
            AuditEvent::SyntheticDataStateChanged { .. } => "synthetic_data_state_changed",
            AuditEvent::ContributionWithdrawn { .. } => "contribution_withdrawn",
            AuditEvent::CertificateIssued { .. } => "certificate_issued",
            AuditEvent::ContractProposed { .. } => "contract_proposed",
            AuditEvent::ContractAccepted { .. } => "contract_accepted",
            AuditEvent::ContractStateChanged { .. } => "contract_state_changed",
            AuditEvent::RunMetered { .. } => "run_metered",
        }
    }

    /// The main thing the event is about (`submission:12`), for looking up an object's
    /// history and its receipts.
    pub fn subject(&self) -> String {
        use AuditEvent as E;
        match self {
            E::AccountCreated { account, .. } | E::AccountDisabled { account, .. } => {
                account.to_string()
            }
            E::CredentialIssued { credential, .. } | E::CredentialRevoked { credential, .. } => {
                credential.to_string()
            }
            E::AdmissionRequested { org, .. } | E::AdmissionReviewed { org, .. } => org.to_string(),
            E::TeamMemberAdded { team, .. } => team.to_string(),
            E::CompetitionCreated { competition, .. }
            | E::CompetitionClosed { competition }
            | E::CompetitionPublished { competition }
            | E::AgreementAccepted { competition, .. } => competition.to_string(),
            E::DatasetCreated { dataset, .. }
            | E::DatasetReviewed { dataset, .. }
            | E::DatasetPrivacyTermsSet { dataset, .. }
            | E::DatasetSuspended { dataset, .. }
            | E::DatasetResumed { dataset, .. } => dataset.to_string(),
            E::ContributionUploaded { contribution, .. }
            | E::ContributionValidated { contribution, .. }
            | E::ContributionWithdrawn { contribution, .. } => contribution.to_string(),
            E::SubmissionReceived { submission, .. }
            | E::RunFinished { submission, .. }
            | E::JobEnqueued { submission, .. }
            | E::SubmissionFinished { submission, .. }
            | E::FinalScoreReleased { submission, .. }
            | E::SiteScoreReleased { submission, .. } => submission.to_string(),
            E::SyntheticDataMeasured { release, .. }
            | E::SyntheticDataStateChanged { release, .. } => release.to_string(),
            // By serial, so the anchoring entry of one certificate is found directly.
            E::CertificateIssued { certificate, .. } => format!("certificate:{certificate}"),
            E::ContractProposed { contract, .. }
            | E::ContractAccepted { contract, .. }
            | E::ContractStateChanged { contract, .. }
            | E::RunMetered { contract, .. } => contract.to_string(),
            E::JobStarted { job, .. }
            | E::JobLeaseExpired { job, .. }
            | E::JobAttemptFailed { job, .. }
            | E::BudgetCharged { job, .. } => job.to_string(),
        }
    }
}

/// An event as stored in the outbox and handed to the sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditRecord {
    /// Unique and increasing; a sink deduplicates by it.
    pub id: AuditEventId,
    pub at: Timestamp,
    /// `None` for the platform itself (workers, lease reaping).
    pub actor: Option<AccountId>,
    pub event: AuditEvent,
    /// The sink's evidence code, once delivered.
    pub evidence: Option<String>,
}

/// What a sink returns for a recorded event: the evidence code an actor can later look up
/// (for the ledger, the leaf hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditReceipt {
    pub evidence: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit sink: {0}")]
pub struct AuditError(pub String);

/// Where audit events go: [`crate::ledger_sink::LedgerSink`] appends them to the ledger.
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Records one event and returns its receipt. Called in order of time stamp, then id
    /// (an event about a real run is stamped with its release time and delivered then),
    /// possibly more than once for the same id after a crash: must be idempotent. An error
    /// leaves the event in the outbox to be retried later.
    async fn record(&self, record: &AuditRecord) -> Result<AuditReceipt, AuditError>;

    /// `false` for a process that must leave events in the outbox for another process to
    /// deliver (a `medarena worker` beside the server that owns the ledger).
    fn delivers(&self) -> bool {
        true
    }
}

/// Leaves every event in the outbox: for processes that share the database with a server
/// that holds the ledger (the ledger has one writer), which delivers them.
#[derive(Debug, Default, Clone, Copy)]
pub struct DeferredAuditSink;

#[async_trait]
impl AuditSink for DeferredAuditSink {
    async fn record(&self, _record: &AuditRecord) -> Result<AuditReceipt, AuditError> {
        Err(AuditError(
            "left in the outbox for the server that holds the ledger".to_owned(),
        ))
    }

    fn delivers(&self) -> bool {
        false
    }
}

/// A sink that only logs: the default of a bare `ArenaBuilder` (tests, tools).
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingAuditSink;

#[async_trait]
impl AuditSink for TracingAuditSink {
    async fn record(&self, record: &AuditRecord) -> Result<AuditReceipt, AuditError> {
        tracing::info!(
            id = record.id.0,
            kind = record.event.kind(),
            subject = %record.event.subject(),
            "audit event"
        );
        Ok(AuditReceipt {
            evidence: format!("local-{}", record.id.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_their_kind_as_type() {
        let event = AuditEvent::JobStarted {
            job: JobId(3),
            attempt: 1,
            worker: "w1".into(),
        };
        let json = serde_json::to_value(&event).unwrap_or_default();
        assert_eq!(json["type"], event.kind());
        assert_eq!(event.subject(), "job:3");
        let back: AuditEvent =
            serde_json::from_value(json).unwrap_or(AuditEvent::CompetitionClosed {
                competition: CompetitionId(0),
            });
        assert_eq!(back, event);
    }
}
