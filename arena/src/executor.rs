//! The seams where the libraries plug in: running a submission ([`RunExecutor`], sandbox +
//! scorer) and validating an upload ([`DatasetValidator`], datasets-spec).
//!
//! The core owns the *when* and the *who* (queue, phase gate, budget bookkeeping, what a team
//! may see); an executor owns the *how*. A run's input data comes only through
//! [`RunInputs`], which refuses real data to a dummy-data job: the phase gate is enforced
//! here, not left to the executor's good behaviour.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::bundle::SandboxLimits;
use crate::ids::{ContributionId, DatasetId, OrgId};
use crate::model::{Competition, Dataset, Job, JobKind, RunOutcome, Submission};
use crate::vault::{JobLease, KeyScope, Vault};

/// Runs one job: loads the data, runs the module in the sandbox, scores, releases through
/// the privacy layer. The real one is [`crate::pipeline::SandboxExecutor`].
#[async_trait]
pub trait RunExecutor: Send + Sync {
    /// Checks a module at upload time (size, imports, compiles). A rejection is shown to the
    /// submitting team (it is about their own module, never about data).
    async fn precheck(
        &self,
        module: &[u8],
        limits: &SandboxLimits,
    ) -> Result<(), PrecheckRejection>;

    /// Runs a claimed job. A submission that fails is *not* an error: return `Ok` with
    /// [`RunOutcome::Failed`] / [`RunOutcome::OverLimit`]. Return `Err` only for platform
    /// trouble; the job is then retried up to its attempt limit.
    async fn execute(&self, request: RunRequest<'_>) -> Result<RunResult, ExecutorError>;

    /// Compares completed entries on the real data for organizers (paired bootstrap of
    /// consecutive entries, best first). Nothing is released; no budget is charged.
    async fn compare(
        &self,
        request: CompareRequest<'_>,
    ) -> Result<Vec<EntryComparison>, ExecutorError> {
        let _ = request;
        Err(ExecutorError::Permanent(
            "this executor cannot compare entries".to_owned(),
        ))
    }
}

/// Entries to compare, best first, each with its inputs (its module and the real data).
pub struct CompareRequest<'a> {
    pub competition: &'a Competition,
    pub entries: Vec<(&'a Submission, &'a RunInputs)>,
}

/// Whether entry `a` (ranked just above `b`) really differs from `b` on the private test
/// part: a paired bootstrap of the score difference. Organizers only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EntryComparison {
    pub a: crate::ids::SubmissionId,
    pub b: crate::ids::SubmissionId,
    pub score_a: f64,
    pub score_b: f64,
    /// `score(a) − score(b)` and its 95% bootstrap interval.
    pub difference: f64,
    pub difference_lower: f64,
    pub difference_upper: f64,
    /// Two-sided bootstrap p-value of "no difference".
    pub p_value: f64,
    pub resamples: usize,
}

/// Everything an executor gets for one job.
pub struct RunRequest<'a> {
    pub job: &'a Job,
    pub submission: &'a Submission,
    pub competition: &'a Competition,
    /// The ε the core reserved for this run on each of the competition's datasets when it
    /// queued it (real runs; 0 for dummy runs). The run's releases must fit in it.
    pub reserved_epsilon: f64,
    pub inputs: &'a RunInputs,
    /// The team's public-score release state in this competition (the Ladder's), as the
    /// executor last returned it in [`RunResult::release_state`].
    pub release_state: Option<&'a serde_json::Value>,
}

/// What a run produced. Scores a team may see and scores only organizers may see are kept
/// apart; the core redacts per viewer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunResult {
    /// `Ok`, `Failed` or `OverLimit` (coarse; the only failure detail a team sees of a
    /// dummy run). A real run is `Ok` whatever the submission did: its failures are scored
    /// with the fallback prediction inside the executor.
    pub outcome: RunOutcome,
    /// Score on dummy data (dummy runs); visible to the team, dummy data being synthetic.
    pub dummy_score: Option<f64>,
    /// Public-split score after the privacy layer (noise / Ladder); visible to everyone.
    pub released_public_score: Option<f64>,
    /// Exact public-split score: organizers only.
    pub exact_public_score: Option<f64>,
    /// Private-split score: organizers only, everyone once the competition is published.
    pub private_score: Option<f64>,
    /// Organizer-only details: confidence intervals, per-hospital breakdown, timings.
    pub details: serde_json::Value,
    /// Dummy-data runs only: the guest's debug output and the detailed failure reason, for
    /// the team (dummy data is synthetic). The core drops both from real-data runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_log: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_detail: Option<String>,
    /// Dummy-data runs only: what else the team may see (time per phase, the dummy data's
    /// seed and size). Dropped from real-data runs like the two above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_details: Option<serde_json::Value>,
    /// The team's new release state (see [`RunRequest::release_state`]); stored with the
    /// run's result in one transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_state: Option<serde_json::Value>,
    /// An analysis's released aggregate (real runs of analysis submissions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_aggregate: Option<crate::model::ReleasedAggregate>,
    /// What the run's sandbox children used, for metering (operators only: it follows the
    /// data). `None` when the executor does not measure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<crate::store::MeasuredUsage>,
}

/// A module refused at upload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("submission refused: {reason}")]
pub struct PrecheckRejection {
    pub reason: String,
}

/// Platform trouble while running a job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutorError {
    /// Worth retrying (I/O, a killed child process, a full disk).
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying cannot help (a dummy job asked for real data, a dataset lost its approval);
    /// the job fails at once with outcome `error`.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// One hospital's decrypted contribution, for a real-data run. Zeroed on drop.
pub struct ContributionData {
    pub dataset: DatasetId,
    pub dataset_slug: String,
    pub contribution: ContributionId,
    pub hospital: OrgId,
    pub file_name: String,
    pub manifest: Option<String>,
    pub bytes: Zeroizing<Vec<u8>>,
}

/// A dataset contribution's manifest, which dummy runs may read (it describes the schema,
/// not the rows).
#[derive(Debug, Clone, PartialEq)]
pub struct ContributionManifest {
    pub dataset: DatasetId,
    pub contribution: ContributionId,
    pub hospital: OrgId,
    pub file_name: String,
    pub manifest: Option<String>,
}

/// The data a job may read. Built by the core for each job.
pub struct RunInputs {
    pub(crate) kind: JobKind,
    pub(crate) vault: Arc<Vault>,
    pub(crate) team: OrgId,
    pub(crate) module: crate::objects::ObjectId,
    pub(crate) module_sha256: String,
    pub(crate) contributions: Vec<(Dataset, crate::model::Contribution)>,
    /// The published synthetic releases of the competition's datasets (dummy runs draw
    /// their data from them; see [`crate::pipeline::synthetic`]).
    pub(crate) synthetic: Vec<crate::pipeline::synthetic::SyntheticSource>,
    /// The claimed job these inputs are read for: what a worker host shows the key service.
    /// `None` for work on a server host outside the queue (an organizer's comparison).
    pub(crate) lease: Option<JobLease>,
}

impl RunInputs {
    async fn open(
        &self,
        scope: &KeyScope,
        object: &crate::objects::ObjectId,
        content_sha256: &str,
    ) -> Result<Zeroizing<Vec<u8>>, crate::vault::VaultError> {
        match &self.lease {
            Some(lease) => {
                self.vault
                    .get_for_job(lease, scope, object, content_sha256)
                    .await
            }
            None => self.vault.get(scope, object, content_sha256).await,
        }
    }

    /// The submission's WebAssembly module, decrypted and checked against its digest.
    pub async fn module(&self) -> Result<Zeroizing<Vec<u8>>, ExecutorError> {
        self.open(
            &KeyScope::Team(self.team),
            &self.module,
            &self.module_sha256,
        )
        .await
        .map_err(|err| ExecutorError::Transient(format!("reading the module: {err}")))
    }

    /// The manifests of the validated contributions of the competition's datasets.
    pub fn manifests(&self) -> Vec<ContributionManifest> {
        self.contributions
            .iter()
            .map(|(dataset, c)| ContributionManifest {
                dataset: dataset.id,
                contribution: c.id,
                hospital: c.hospital,
                file_name: c.file_name.clone(),
                manifest: c.manifest.clone(),
            })
            .collect()
    }

    /// The published synthetic releases dummy data is drawn from (none: dummy generator).
    pub fn synthetic(&self) -> &[crate::pipeline::synthetic::SyntheticSource] {
        &self.synthetic
    }

    /// The real rows: every validated contribution of the competition's approved datasets,
    /// decrypted. Refused to dummy-data jobs.
    pub async fn real_data(&self) -> Result<Vec<ContributionData>, ExecutorError> {
        if self.kind != JobKind::RealRun {
            return Err(ExecutorError::Permanent(
                "a dummy-data job cannot read real data".to_owned(),
            ));
        }
        let mut out = Vec::with_capacity(self.contributions.len());
        for (dataset, contribution) in &self.contributions {
            let object = contribution.object.ok_or_else(|| {
                ExecutorError::Permanent(format!("{} has no stored object", contribution.id))
            })?;
            let bytes = self
                .open(&contribution.scope(), &object, &contribution.content_sha256)
                .await
                .map_err(|err| {
                    ExecutorError::Transient(format!("reading {}: {err}", contribution.id))
                })?;
            out.push(ContributionData {
                dataset: dataset.id,
                dataset_slug: dataset.slug.clone(),
                contribution: contribution.id,
                hospital: contribution.hospital,
                file_name: contribution.file_name.clone(),
                manifest: contribution.manifest.clone(),
                bytes,
            });
        }
        Ok(out)
    }
}

/// An upload as received from a hospital.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetUpload {
    pub file_name: String,
    /// The dataset manifest (datasets-spec format), when sent separately from the table.
    pub manifest: Option<String>,
    pub bytes: Vec<u8>,
}

/// The validator's verdict on an upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ValidationOutcome {
    pub accepted: bool,
    pub rows: Option<i64>,
    /// Shown to the contributing hospital and organizers: what was checked, what failed
    /// and where (row, column). Must not quote cell values.
    pub report: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dataset validator: {0}")]
pub struct ValidatorError(pub String);

/// Validates an upload: manifest, types, bounds, PHI scan, k-anonymity. The real one is
/// [`crate::pipeline::SpecValidator`].
#[async_trait]
pub trait DatasetValidator: Send + Sync {
    /// `others` are the dataset's contributions already validated (decrypted), for the
    /// checks on the union of all hospitals' rows (duplicate ids, k-anonymity).
    async fn validate(
        &self,
        dataset: &Dataset,
        upload: &DatasetUpload,
        others: &[ContributionData],
    ) -> Result<ValidationOutcome, ValidatorError>;
}
