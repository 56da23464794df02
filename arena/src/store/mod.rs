//! Storage behind traits. [`crate::Arena`] talks to an `Arc<dyn Store>` and never sees SQL.
//!
//! Each method is one atomic unit of work (one transaction), and each state-changing method
//! writes its audit events to the outbox inside that same transaction. Method docs say which
//! events they record. [`sqlite::SqliteStore`] is the embedded implementation and
//! [`postgres::PgStore`] the scale-out one; both run the same SQL, in `store/sql/`, written
//! in the dialect SQLite and PostgreSQL share. [`open`] picks one from a database URL.

pub mod copy;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;

use crate::audit::AuditRecord;
use crate::auth::TokenHash;
use crate::bundle::PrivacyLevel;
use crate::contract::{Contract, ContractId, ContractState, ContractTerms, Party, UsageLine};
use crate::ids::{
    AccountId, AuditEventId, CompetitionId, ContributionId, CredentialId, DatasetId, JobId, OrgId,
    SubmissionId, SyntheticReleaseId,
};
use crate::model::{
    Account, AdmissionState, AgreementAcceptance, AnalysisSpec, BudgetUse, ChargePurpose,
    Competition, Contribution, ContributionState, Credential, CredentialKind, Dataset,
    DatasetPrivacy, DatasetPrivacyTerms, DatasetSuspension, Job, JobKind, OrgKind, Organization,
    QueueStats, ReleasedAggregate, Role, RunOutcome, Submission, SubmissionKind, SubmissionStatus,
    SyntheticQuality, SyntheticRelease, SyntheticState, Tier, UnknownVariant,
};
use crate::objects::ObjectId;
use crate::time::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken (an e-mail, a slug, a name).
    #[error("{0} already exists")]
    Duplicate(String),
    /// The operation needs a state the database is not in (a copy into a non-empty one).
    #[error("{0}")]
    Conflict(String),
    /// A row refers to something that does not exist.
    #[error("{0} not found")]
    Missing(String),
    /// A stored value could not be read back (corrupt row, newer schema).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<UnknownVariant> for StoreError {
    fn from(err: UnknownVariant) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(err: serde_json::Error) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The worker named in the ledger entry of a real run's start.
pub const SEALED_WORKER: &str = "sealed";

/// Opens the store a database URL names: `postgres://...` or `postgresql://...` for
/// [`postgres::PgStore`], anything else a path to the SQLite file (an optional `sqlite://`
/// prefix is dropped). Pending migrations are applied.
pub async fn open(database: &str) -> StoreResult<std::sync::Arc<dyn Store>> {
    if postgres::is_postgres_url(database) {
        Ok(std::sync::Arc::new(
            postgres::PgStore::open(database, POSTGRES_CONNECTIONS).await?,
        ))
    } else {
        let path = database.strip_prefix("sqlite://").unwrap_or(database);
        Ok(std::sync::Arc::new(
            sqlite::SqliteStore::open(std::path::Path::new(path)).await?,
        ))
    }
}

/// What [`migrate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// Migrations applied now.
    pub applied: usize,
    /// The schema version the database is at: the number of migrations this build knows.
    pub version: usize,
}

/// Applies the pending migrations of the database a URL names (see [`open`]).
pub async fn migrate(database: &str) -> StoreResult<Migrated> {
    if postgres::is_postgres_url(database) {
        let store = postgres::PgStore::connect(database, 2).await?;
        let applied = store.migrate().await?;
        store.close().await;
        Ok(Migrated {
            applied,
            version: postgres::MIGRATOR.iter().count(),
        })
    } else {
        let path = database.strip_prefix("sqlite://").unwrap_or(database);
        let store = sqlite::SqliteStore::connect(std::path::Path::new(path)).await?;
        let applied = store.migrate().await?;
        store.close().await;
        Ok(Migrated {
            applied,
            version: sqlite::MIGRATOR.iter().count(),
        })
    }
}

/// Connections one process keeps to PostgreSQL: enough for its worker pool, web handlers
/// and the ledger's delivery, few enough that ten hosts stay under PostgreSQL's default
/// `max_connections` of 100.
pub const POSTGRES_CONNECTIONS: u32 = 8;

/// When and by whom a change is made; copied into its audit events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub at: Timestamp,
    /// `None` for the platform itself (workers).
    pub actor: Option<AccountId>,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Already normalised (trimmed, lowercase).
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub password_hash: String,
}

#[derive(Debug, Clone)]
pub struct NewCredential {
    pub account: AccountId,
    pub kind: CredentialKind,
    pub name: String,
    pub token_hash: TokenHash,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewCompetition {
    pub slug: String,
    pub title: String,
    pub bundle_yaml: String,
    pub bundle_json: String,
    pub bundle_sha256: String,
    pub datasets: Vec<DatasetId>,
}

#[derive(Debug, Clone)]
pub struct NewDataset {
    pub slug: String,
    pub title: String,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct NewContribution {
    pub dataset: DatasetId,
    pub hospital: OrgId,
    pub uploaded_by: AccountId,
    pub file_name: String,
    pub manifest: Option<String>,
    pub object: ObjectId,
    pub content_sha256: String,
    pub size_bytes: i64,
    /// The secret salt of the contribution's public commitments ([`crate::vault::commitment`]).
    pub commitment_salt: String,
    /// The scope of the upload's own data key (`upload:<hex>`); `None`: sealed with its
    /// dataset's key (uploads from before per-upload keys).
    pub key_scope: Option<String>,
}

/// Why a contribution could not be added.
#[derive(Debug, Clone, PartialEq)]
pub enum AddContribution {
    Added(Box<Contribution>),
    /// The dataset was approved or rejected: it takes no more contributions.
    DatasetClosed(crate::model::DatasetState),
}

/// Result of an organizer's dataset review.
#[derive(Debug, Clone, PartialEq)]
pub enum ReviewDataset {
    Reviewed(Dataset),
    /// Only a validated dataset can be reviewed.
    NotReviewable(crate::model::DatasetState),
}

#[derive(Debug, Clone)]
pub struct NewSubmission {
    pub competition: CompetitionId,
    pub team: OrgId,
    pub submitted_by: AccountId,
    pub phase: String,
    pub kind: SubmissionKind,
    pub analysis: Option<AnalysisSpec>,
    pub object: ObjectId,
    pub module_sha256: String,
    pub size_bytes: i64,
    /// The first job's attempt limit.
    pub max_attempts: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InsertSubmission {
    Inserted {
        submission: Box<Submission>,
        job: Box<Job>,
    },
    /// The team already used `used` of its daily submissions.
    LimitReached { used: i64 },
}

/// A worker asking for work.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub worker: String,
    /// Unique per claim; every later call about this claim must present it (fencing: a
    /// worker whose lease expired cannot finish a job someone else has claimed since).
    pub lease_token: String,
    pub now: Timestamp,
    pub lease_ms: i64,
    /// Only jobs of this kind (`None`: either). Real-data runs have workers of their own, so
    /// that a dummy run never waits behind a real run whose duration depends on the data.
    pub kind: Option<JobKind>,
}

/// What to record when a claimed job ends.
#[derive(Debug, Clone)]
pub struct FinishJob {
    pub job: JobId,
    pub lease_token: String,
    pub at: Timestamp,
    /// `Succeeded` when the executor returned a result (even a failing submission),
    /// `Failed` when the platform gives up.
    pub outcome: RunOutcome,
    pub job_result: Option<serde_json::Value>,
    pub submission: SubmissionUpdate,
    /// A job to enqueue next (the real-data run after a successful dummy run).
    pub follow_up: Option<JobKind>,
    pub follow_up_max_attempts: i64,
    /// The ε the follow-up real run will spend, reserved in the same transaction against
    /// every cap; refused (nothing written) when a cap would be passed.
    pub reservation: Option<Reservation>,
    /// The follow-up real run's result is released this long after it is queued.
    pub release_delay_ms: i64,
    /// A real run's metering, written with its finish on each contract it was queued under.
    pub metering: Option<Metering>,
    /// The team's new public-score release state in the competition (the Ladder's), stored
    /// in the same transaction.
    pub release_state: Option<serde_json::Value>,
}

/// ε reserved for a real run when it is queued. Every amount is a public parameter of the
/// competition (never a function of the data), and so is the time it is charged.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    /// The competition's datasets; each is charged the same amounts.
    pub datasets: Vec<DatasetId>,
    pub purpose: ChargePurpose,
    pub micro_epsilon: i64,
    /// Also reserved, on the team's first real model run in the competition: its final
    /// (private leaderboard) release.
    pub final_micro_epsilon: Option<i64>,
    /// The competition's cap per team and dataset.
    pub competition_cap_micro: i64,
    /// `label` level: the most public-score releases a team gets in the competition.
    pub max_public_releases: Option<u32>,
    /// The competition's guarantee, checked against each dataset's hospitals' floors.
    pub level: PrivacyLevel,
    /// What the run delivers: each dataset needs an active contract covering it for this.
    pub delivery: crate::contract::Delivery,
    /// Terms for contributing hospitals that set none.
    pub default_terms: DatasetPrivacyTerms,
}

/// A team's private score as released at publication.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalRelease {
    pub submission: SubmissionId,
    pub team: OrgId,
    pub released_private_score: f64,
    /// The entry's score on each contributing hospital's private rows, released with noise
    /// (the per-hospital view; empty when the competition declares none).
    pub site_scores: Vec<SiteScoreRelease>,
}

/// One hospital's released score of one final entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct SiteScoreRelease {
    pub hospital: OrgId,
    pub released_score: f64,
    /// The ε this value cost (the entry's `site_epsilon` over its hospitals).
    pub epsilon: f64,
}

/// A released per-hospital score with the entry it belongs to.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct SiteScoreRow {
    pub submission: SubmissionId,
    pub team: OrgId,
    pub team_name: String,
    #[serde(flatten)]
    pub release: SiteScoreRelease,
}

/// A hospital's new synthetic release, measured and about to be charged.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSyntheticRelease {
    pub dataset: DatasetId,
    pub hospital: OrgId,
    pub micro_epsilon: i64,
    pub delta: f64,
    pub rho: f64,
    pub synthesizer: String,
    /// The noisy measurements (JSON, floats exact) and their SHA-256.
    pub measurements: String,
    pub measurements_sha256: String,
    pub quality: SyntheticQuality,
    /// The platform's terms for hospitals that set none (the caps are checked in the
    /// inserting transaction).
    pub default_terms: DatasetPrivacyTerms,
}

/// What became of a new synthetic release.
#[derive(Debug, Clone, PartialEq)]
pub enum InsertSynthetic {
    /// Charged and stored as a draft.
    Inserted(Box<SyntheticRelease>),
    /// A cap would be exceeded; nothing was written.
    OverBudget(String),
}

/// Which budget to read: a team's on the datasets of a competition.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetQuery {
    pub competition: CompetitionId,
    pub team: OrgId,
    pub datasets: Vec<DatasetId>,
    pub competition_cap_micro: i64,
    pub default_terms: DatasetPrivacyTerms,
}

/// The new state of the job's submission.
#[derive(Debug, Clone, Default)]
pub struct SubmissionUpdate {
    pub status: Option<SubmissionStatus>,
    pub outcome: Option<RunOutcome>,
    pub note: Option<String>,
    pub dummy_score: Option<f64>,
    pub released_public_score: Option<f64>,
    pub exact_public_score: Option<f64>,
    pub private_score: Option<f64>,
    pub released_aggregate: Option<ReleasedAggregate>,
    pub result: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FinishOutcome {
    Finished(Job),
    /// The lease was lost (expired and reclaimed, or already finished): nothing was written.
    LeaseLost,
    /// The reservation would pass a cap (or a hospital's floor): nothing was written.
    Refused {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum RetryOutcome {
    /// Back to pending, claimable from `available_at`.
    Retried(Job),
    /// Attempts exhausted: the job and its submission failed with outcome `error`.
    Exhausted(Job),
    LeaseLost,
}

/// One use of a dataset by a run, for the hospital's usage page.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct DatasetUse {
    pub competition: CompetitionId,
    pub team: OrgId,
    pub job: Option<JobId>,
    pub purpose: ChargePurpose,
    pub epsilon: f64,
    pub at: Timestamp,
}

/// A scored real run, for leaderboards.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct ScoredSubmission {
    pub submission: SubmissionId,
    pub team: OrgId,
    pub team_name: String,
    pub released_public_score: Option<f64>,
    pub exact_public_score: Option<f64>,
    pub private_score: Option<f64>,
    pub released_private_score: Option<f64>,
    #[serde(rename = "submitted_at")]
    pub created_at: Timestamp,
    /// When the run's result became (or becomes) visible beyond organizers.
    pub release_at: Option<Timestamp>,
}

#[async_trait]
pub trait AccountRepo: Send + Sync {
    async fn count_accounts(&self, role: Role) -> StoreResult<i64>;
    /// Records `AccountCreated`. `Duplicate` when the e-mail is taken.
    async fn insert_account(&self, stamp: Stamp, new: &NewAccount) -> StoreResult<Account>;
    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>>;
    /// The account and its password hash.
    async fn account_by_email(&self, email: &str) -> StoreResult<Option<(Account, String)>>;
    /// Records `AccountDisabled`. Disabling also revokes the account's live credentials.
    async fn set_account_disabled(
        &self,
        stamp: Stamp,
        id: AccountId,
        disabled: bool,
    ) -> StoreResult<Option<Account>>;
    /// Records `CredentialIssued`.
    async fn insert_credential(&self, stamp: Stamp, new: &NewCredential)
    -> StoreResult<Credential>;
    async fn credential(&self, id: CredentialId) -> StoreResult<Option<Credential>>;
    async fn credential_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<Credential>>;
    /// Updates `last_used_at`; not audited (reads are not state changes worth a ledger leaf).
    async fn touch_credential(&self, id: CredentialId, at: Timestamp) -> StoreResult<()>;
    /// Records `CredentialRevoked`; false when it was already revoked.
    async fn revoke_credential(&self, stamp: Stamp, id: CredentialId) -> StoreResult<bool>;
    async fn credentials_of(&self, account: AccountId) -> StoreResult<Vec<Credential>>;
    /// Wrong passwords for `email` counted after `window_start`, and when the first was.
    async fn sign_in_failures(
        &self,
        email: &str,
        window_start: Timestamp,
    ) -> StoreResult<Option<(i64, Timestamp)>>;
    /// Counts a wrong password for `email` at `at`; a count from `window_start` or before
    /// starts over. One statement: servers counting at once never lose a failure.
    async fn record_sign_in_failure(
        &self,
        email: &str,
        at: Timestamp,
        window_start: Timestamp,
    ) -> StoreResult<()>;
    async fn clear_sign_in_failures(&self, email: &str) -> StoreResult<()>;
}

#[async_trait]
pub trait OrgRepo: Send + Sync {
    /// Creates a pending organization with the applicant as its first member. Records
    /// `AdmissionRequested`. `Duplicate` when the name is taken; `Missing` when the
    /// applicant already belongs to an organization.
    async fn insert_org(
        &self,
        stamp: Stamp,
        kind: OrgKind,
        name: &str,
        statement: &str,
        applicant: AccountId,
    ) -> StoreResult<Organization>;
    async fn org(&self, id: OrgId) -> StoreResult<Option<Organization>>;
    async fn orgs(&self, admission: Option<AdmissionState>) -> StoreResult<Vec<Organization>>;
    /// Records `AdmissionReviewed`.
    async fn review_org(
        &self,
        stamp: Stamp,
        id: OrgId,
        admission: AdmissionState,
        tier: Option<Tier>,
        note: Option<&str>,
    ) -> StoreResult<Option<Organization>>;
    /// Adds an account without an organization to `org`. Records `TeamMemberAdded`.
    /// False when the account already belongs to an organization.
    async fn add_member(&self, stamp: Stamp, org: OrgId, account: AccountId) -> StoreResult<bool>;
    async fn members(&self, org: OrgId) -> StoreResult<Vec<Account>>;
}

#[async_trait]
pub trait CompetitionRepo: Send + Sync {
    /// Records `CompetitionCreated`. `Duplicate` when the slug is taken.
    async fn insert_competition(
        &self,
        stamp: Stamp,
        new: &NewCompetition,
    ) -> StoreResult<Competition>;
    async fn competition(&self, id: CompetitionId) -> StoreResult<Option<Competition>>;
    async fn competitions(&self) -> StoreResult<Vec<Competition>>;
    /// Records `CompetitionClosed`; false when already closed.
    async fn close_competition(&self, stamp: Stamp, id: CompetitionId) -> StoreResult<bool>;
    /// Records `CompetitionPublished`; false unless closed and not yet published.
    /// Publishes, storing each final entry's released private score in the same
    /// transaction (records `FinalScoreReleased` per entry, then `CompetitionPublished`).
    async fn publish_competition(
        &self,
        stamp: Stamp,
        id: CompetitionId,
        releases: &[FinalRelease],
    ) -> StoreResult<bool>;
    /// Records `AgreementAccepted` the first time; later calls return the first acceptance.
    async fn accept_agreement(
        &self,
        stamp: Stamp,
        acceptance: &AgreementAcceptance,
    ) -> StoreResult<AgreementAcceptance>;
    async fn agreement_acceptance(
        &self,
        competition: CompetitionId,
        team: OrgId,
    ) -> StoreResult<Option<AgreementAcceptance>>;
}

#[async_trait]
pub trait DatasetRepo: Send + Sync {
    /// Records `DatasetCreated`. `Duplicate` when the slug is taken.
    async fn insert_dataset(&self, stamp: Stamp, new: &NewDataset) -> StoreResult<Dataset>;
    async fn dataset(&self, id: DatasetId) -> StoreResult<Option<Dataset>>;
    async fn dataset_by_slug(&self, slug: &str) -> StoreResult<Option<Dataset>>;
    async fn datasets(&self) -> StoreResult<Vec<Dataset>>;
    /// Adds an `uploaded` contribution and moves the dataset back to `uploaded`. Records
    /// `ContributionUploaded`.
    async fn insert_contribution(
        &self,
        stamp: Stamp,
        new: &NewContribution,
    ) -> StoreResult<AddContribution>;
    /// Stores the validator's verdict (a rejected contribution loses its object reference)
    /// and recomputes the dataset state. Records `ContributionValidated`.
    async fn record_validation(
        &self,
        stamp: Stamp,
        id: ContributionId,
        state: ContributionState,
        rows: Option<i64>,
        report: &serde_json::Value,
    ) -> StoreResult<Option<Contribution>>;
    async fn contribution(&self, id: ContributionId) -> StoreResult<Option<Contribution>>;
    async fn contributions(&self, dataset: DatasetId) -> StoreResult<Vec<Contribution>>;
    /// Approves or rejects a validated dataset with its checked review (the service checks
    /// the checklist). Records `DatasetReviewed`.
    async fn review_dataset(
        &self,
        stamp: Stamp,
        id: DatasetId,
        review: &crate::model::DatasetReview,
    ) -> StoreResult<ReviewDataset>;
    async fn dataset_usage(&self, dataset: DatasetId) -> StoreResult<Vec<DatasetUse>>;
    /// A contributing hospital sets its terms for a dataset; records
    /// `DatasetPrivacyTermsSet`.
    async fn set_privacy_terms(
        &self,
        stamp: Stamp,
        dataset: DatasetId,
        hospital: OrgId,
        terms: &DatasetPrivacyTerms,
    ) -> StoreResult<()>;
    /// The terms that apply to a dataset (the strictest of its contributing hospitals',
    /// `defaults` for those that set none) and what has been spent on it.
    /// A contributing hospital suspends (`Some(reason)`) or resumes (`None`) the use of a
    /// dataset; returns whether anything changed. Records `dataset_suspended` or
    /// `dataset_resumed`.
    async fn set_dataset_suspension(
        &self,
        stamp: Stamp,
        dataset: DatasetId,
        hospital: OrgId,
        reason: Option<&str>,
    ) -> StoreResult<bool>;
    /// A hospital withdraws a contribution, in one transaction: marks it withdrawn (its
    /// object reference dropped), destroys its data key, withdraws the hospital's draft and
    /// published synthetic releases of the dataset (measured from its rows), and, when the
    /// dataset is not approved yet, recomputes its state. Records `contribution_withdrawn`
    /// (and `synthetic_data_state_changed`). `None` when it was already withdrawn. The
    /// caller deletes the object afterwards.
    async fn withdraw_contribution(
        &self,
        stamp: Stamp,
        id: ContributionId,
        reason: &str,
    ) -> StoreResult<Option<(Contribution, Option<ObjectId>)>>;
    /// The hospitals' suspensions of a dataset's use (what a real run checks at its start).
    async fn dataset_suspensions(&self, dataset: DatasetId) -> StoreResult<Vec<DatasetSuspension>>;
    async fn dataset_privacy(
        &self,
        dataset: DatasetId,
        defaults: &DatasetPrivacyTerms,
    ) -> StoreResult<DatasetPrivacy>;
}

/// Wrapped data keys, one per scope.
#[async_trait]
pub trait KeyRepo: Send + Sync {
    async fn data_key(&self, scope: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Stores a wrapped key unless the scope has one; returns the key that is stored.
    async fn insert_data_key(
        &self,
        scope: &str,
        wrapped: &[u8],
        at: Timestamp,
    ) -> StoreResult<Vec<u8>>;
}

#[async_trait]
pub trait SubmissionRepo: Send + Sync {
    /// Inserts the submission and its dummy-run job unless the team has used its
    /// `daily_limit` for the UTC day of `stamp.at`. Records `SubmissionReceived` and
    /// `JobEnqueued`.
    async fn insert_submission(
        &self,
        stamp: Stamp,
        new: &NewSubmission,
        daily_limit: u32,
    ) -> StoreResult<InsertSubmission>;
    async fn submission(&self, id: SubmissionId) -> StoreResult<Option<Submission>>;
    /// Newest first; all teams when `team` is `None`.
    async fn submissions(
        &self,
        competition: CompetitionId,
        team: Option<OrgId>,
    ) -> StoreResult<Vec<Submission>>;
    async fn submissions_today(
        &self,
        competition: CompetitionId,
        team: OrgId,
        utc_day: i64,
    ) -> StoreResult<i64>;
    /// The team's public-score release state in a competition (see [`FinishJob`]).
    async fn release_state(
        &self,
        competition: CompetitionId,
        team: OrgId,
    ) -> StoreResult<Option<serde_json::Value>>;
    /// A team's budget on each dataset of a competition (see [`BudgetUse`]).
    async fn budget(&self, query: &BudgetQuery) -> StoreResult<Vec<BudgetUse>>;
    /// Completed real runs with scores, for leaderboards.
    async fn scored_submissions(
        &self,
        competition: CompetitionId,
    ) -> StoreResult<Vec<ScoredSubmission>>;
    /// The per-hospital scores released at publication, of one hospital or of all.
    async fn site_score_releases(
        &self,
        competition: CompetitionId,
        hospital: Option<OrgId>,
    ) -> StoreResult<Vec<SiteScoreRow>>;
}

/// The durable job queue.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Reaps expired leases (see [`JobQueue::reap_expired`]), then claims the next pending
    /// job, fairly across teams: the team whose last claim is oldest goes first, then the
    /// oldest job of that team. A team never has two real-data runs at once (its privacy
    /// budget is spent serially). Records `JobStarted`.
    async fn claim(&self, request: &ClaimRequest) -> StoreResult<Option<Job>>;
    /// Extends the lease; false when the lease was lost.
    async fn heartbeat(
        &self,
        job: JobId,
        lease_token: &str,
        now: Timestamp,
        lease_ms: i64,
    ) -> StoreResult<bool>;
    /// Whether `lease_token` holds `job`'s lease at `now` (running, not expired): what the
    /// key service checks before it opens a data key for a worker host.
    async fn lease_holds(&self, job: JobId, lease_token: &str, now: Timestamp)
    -> StoreResult<bool>;
    /// Ends a claimed job. Records `RunFinished`, `BudgetCharged`, `JobEnqueued` (follow-up)
    /// and `SubmissionFinished` as they apply.
    async fn finish(&self, finish: &FinishJob) -> StoreResult<FinishOutcome>;
    /// After an executor error: back to pending from `retry_at`, or failed with outcome
    /// `error` once attempts are exhausted. Records `JobAttemptFailed` (and
    /// `SubmissionFinished` when exhausted).
    async fn retry_or_fail(
        &self,
        job: JobId,
        lease_token: &str,
        at: Timestamp,
        retry_at: Timestamp,
        error: &str,
        permanent: bool,
    ) -> StoreResult<RetryOutcome>;
    /// Running jobs whose lease expired before `now` go back to pending, or fail with outcome
    /// `error` when out of attempts. Records `JobLeaseExpired` per job. Returns how many.
    async fn reap_expired(&self, now: Timestamp) -> StoreResult<usize>;
    async fn job(&self, id: JobId) -> StoreResult<Option<Job>>;
    /// The result the executor returned for a finished job (JSON of its `RunResult`).
    async fn job_result(&self, id: JobId) -> StoreResult<Option<serde_json::Value>>;
    async fn jobs_of_submission(&self, submission: SubmissionId) -> StoreResult<Vec<Job>>;
    async fn queue_stats(&self) -> StoreResult<QueueStats>;
}

/// The audit outbox.
#[async_trait]
pub trait AuditOutbox: Send + Sync {
    /// Undelivered events stamped at or before `now`, oldest stamp first (then by id). An
    /// event about a real run is stamped with the run's release time and waits for it.
    async fn undelivered_events(&self, limit: i64, now: Timestamp)
    -> StoreResult<Vec<AuditRecord>>;
    /// Stores the sinks' evidence codes, all in one transaction.
    async fn mark_delivered(
        &self,
        receipts: &[(AuditEventId, String)],
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Events about one subject (`submission:12`), oldest first.
    async fn events_about(&self, subject: &str) -> StoreResult<Vec<AuditRecord>>;
    /// Most recent events first.
    async fn recent_events(&self, limit: i64) -> StoreResult<Vec<AuditRecord>>;
}

/// Hospitals' differentially private synthetic releases.
#[async_trait]
pub trait SyntheticRepo: Send + Sync {
    /// Charges the release's ε on its dataset and stores it as a draft, unless a cap would
    /// be exceeded: the caps count the largest of the hospitals' synthetic sums against the
    /// per-team cap (with the most any team spent) and the total (with all teams' charges).
    /// Records `synthetic_data_measured`.
    async fn insert_synthetic_release(
        &self,
        stamp: Stamp,
        new: &NewSyntheticRelease,
    ) -> StoreResult<InsertSynthetic>;
    async fn synthetic_release(
        &self,
        id: SyntheticReleaseId,
    ) -> StoreResult<Option<SyntheticRelease>>;
    /// A dataset's releases, newest first.
    async fn synthetic_releases(&self, dataset: DatasetId) -> StoreResult<Vec<SyntheticRelease>>;
    /// The noisy measurements of a release (JSON).
    async fn synthetic_measurements(&self, id: SyntheticReleaseId) -> StoreResult<Option<String>>;
    /// Moves a release from one of `from` to `to`; publishing withdraws the hospital's
    /// previous published release of the dataset. Records `synthetic_data_state_changed` for
    /// each release moved. `None` when the release is not in a state of `from`.
    async fn set_synthetic_state(
        &self,
        stamp: Stamp,
        id: SyntheticReleaseId,
        from: &[SyntheticState],
        to: SyntheticState,
    ) -> StoreResult<Option<SyntheticRelease>>;
}

/// A certificate as stored: the signed body's canonical bytes, its digest and signature,
/// and the anchoring ledger entry's evidence code once delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCertificate {
    pub serial: String,
    pub kind: crate::certificate::CertificateKind,
    /// What it certifies (`dataset:3`, `submission:12`).
    pub subject: String,
    pub dataset: Option<DatasetId>,
    pub competition: Option<CompetitionId>,
    pub body_json: String,
    pub body_sha256: String,
    pub signature: String,
    pub issued_at: Timestamp,
    pub evidence: Option<String>,
}

/// Certificates the platform signed.
#[async_trait]
pub trait CertificateRepo: Send + Sync {
    /// Stores a certificate unless one with its serial exists; records
    /// `certificate_issued` (stamped `stamp`) in the same transaction. Returns whether it was
    /// stored.
    async fn insert_certificate(
        &self,
        stamp: Stamp,
        certificate: &StoredCertificate,
    ) -> StoreResult<bool>;
    async fn certificate(&self, serial: &str) -> StoreResult<Option<StoredCertificate>>;
    /// A competition's result certificates, by serial.
    async fn competition_certificates(
        &self,
        competition: CompetitionId,
    ) -> StoreResult<Vec<StoredCertificate>>;
}

/// A new contract, its terms checked by the service.
#[derive(Debug, Clone, PartialEq)]
pub struct NewContract {
    pub terms: ContractTerms,
    pub terms_sha256: String,
    pub required: Vec<Party>,
}

/// What became of an acceptance.
#[derive(Debug, Clone, PartialEq)]
pub enum AcceptContract {
    /// Recorded; the contract as it stands now (active once every required party accepted).
    Accepted(Box<Contract>),
    /// This party had already accepted.
    AlreadyAccepted,
    /// The contract no longer takes acceptances (it is in this state).
    Closed(ContractState),
}

/// The measured side of a real run, for the operators (see `run_usage` in the migration).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub struct MeasuredUsage {
    /// CPU time (user + system) of the run's sandbox children.
    pub cpu_millis: Option<i64>,
    /// The largest resident set of any of its sandbox children.
    pub peak_memory_bytes: Option<i64>,
}

/// What a real run's finish meters on each of its contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metering {
    /// The compute the run's declared limits reserve (a public parameter of the run).
    pub cpu_seconds_billed: u64,
    pub measured: MeasuredUsage,
}

/// Which metered lines to read; every filter given must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageQuery {
    pub contract: Option<ContractId>,
    pub team: Option<OrgId>,
    /// Lines on datasets this hospital contributes to.
    pub hospital: Option<OrgId>,
    /// `metered_at` from (inclusive) ...
    pub from: Option<Timestamp>,
    /// ... to (exclusive).
    pub to: Option<Timestamp>,
}

/// Contracts and the metered use of the runs they cover.
#[async_trait]
pub trait ContractRepo: Send + Sync {
    /// Records `contract_proposed`.
    async fn insert_contract(&self, stamp: Stamp, new: &NewContract) -> StoreResult<Contract>;
    async fn contract(&self, id: ContractId) -> StoreResult<Option<Contract>>;
    /// Every contract, newest first (of one competition when given).
    async fn contracts(&self, competition: Option<CompetitionId>) -> StoreResult<Vec<Contract>>;
    /// Records a party's acceptance (`contract_accepted`); when it was the last one awaited
    /// and the window is open, activates the contract (`contract_state_changed`). An open
    /// offer takes a team's acceptance while active too.
    async fn accept_contract(
        &self,
        stamp: Stamp,
        id: ContractId,
        party: Party,
    ) -> StoreResult<AcceptContract>;
    /// Moves a contract from one of `from` to `to` (`suspended_by` set on suspension,
    /// cleared otherwise). Records `contract_state_changed`. `None`: not in a state of `from`.
    async fn set_contract_state(
        &self,
        stamp: Stamp,
        id: ContractId,
        from: &[ContractState],
        to: ContractState,
        party: Option<Party>,
        reason: Option<&str>,
    ) -> StoreResult<Option<Contract>>;
    /// Contracts whose window ended before `now` and that are not final become `expired`.
    /// Records `contract_state_changed` (by the platform) for each; returns how many.
    async fn expire_contracts(&self, now: Timestamp) -> StoreResult<usize>;
    /// At publication: the competition's active and suspended contracts are `fulfilled`.
    async fn fulfil_contracts(
        &self,
        stamp: Stamp,
        competition: CompetitionId,
    ) -> StoreResult<usize>;
    /// The contract a queued real run was reserved under, per dataset.
    async fn run_contracts(&self, job: JobId) -> StoreResult<Vec<(DatasetId, ContractId)>>;
    /// Metered lines, oldest first.
    async fn usage(&self, query: &UsageQuery) -> StoreResult<Vec<UsageLine>>;
}

/// Everything the arena needs from storage.
pub trait Store:
    AccountRepo
    + ContractRepo
    + OrgRepo
    + CompetitionRepo
    + DatasetRepo
    + SyntheticRepo
    + KeyRepo
    + SubmissionRepo
    + JobQueue
    + AuditOutbox
    + CertificateRepo
{
}

impl<T> Store for T where
    T: AccountRepo
        + ContractRepo
        + OrgRepo
        + CompetitionRepo
        + DatasetRepo
        + SyntheticRepo
        + KeyRepo
        + SubmissionRepo
        + JobQueue
        + AuditOutbox
        + CertificateRepo
{
}
