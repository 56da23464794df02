//! The records of the core: accounts, organizations, credentials, competitions, datasets,
//! submissions and jobs, with their states. States are stored as short snake_case text in SQL
//! (the same spelling as in JSON), so a row is readable by eye and portable across databases.

use serde::{Deserialize, Serialize};

use crate::ids::{
    AccountId, CompetitionId, ContributionId, CredentialId, DatasetId, JobId, OrgId, SubmissionId,
};
use crate::objects::ObjectId;
use crate::time::Timestamp;

/// Declares a closed set of states with one spelling shared by serde, SQL and `Display`.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::model::UnknownVariant;
            fn from_str(text: &str) -> Result<Self, $crate::model::UnknownVariant> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::model::UnknownVariant { kind: stringify!($name), text: text.to_owned() }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// For the other modules of the crate that declare such sets (`crate::contract`).
pub(crate) use text_enum;

/// A stored state text that no variant matches (a corrupt row or a newer schema).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{text}`")]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub text: String,
}

text_enum!(
    /// What an account is for. A person has exactly one role.
    Role {
        /// Runs competitions: admissions, datasets approval, exact scores, publication.
        Organizer => "organizer",
        /// Belongs to a hospital that contributes data.
        Hospital => "hospital",
        /// Belongs to a competing team.
        TeamMember => "team_member",
        /// Reads the ledger and the audit trail; changes nothing.
        Auditor => "auditor",
    }
);

text_enum!(
    /// The two kinds of organization an account can belong to.
    OrgKind {
        Hospital => "hospital",
        Team => "team",
    }
);

text_enum!(
    /// Where an organization's admission review stands.
    AdmissionState {
        Pending => "pending",
        Approved => "approved",
        Rejected => "rejected",
    }
);

text_enum!(
    /// What an admitted team may do; ordered, each tier includes the ones before it.
    Tier {
        /// Runs on dummy data only; never touches real rows.
        DummyOnly => "dummy_only",
        /// After a successful dummy run, runs on real data (scores through the privacy layer).
        RealData => "real_data",
        /// May also request differentially private aggregates.
        DpAggregates => "dp_aggregates",
    }
);

text_enum!(
    /// A bearer credential: a browser session or a named API token.
    CredentialKind {
        Session => "session",
        ApiToken => "api_token",
    }
);

text_enum!(
    /// A dataset's life: contributions arrive and are validated, an organizer approves (or
    /// rejects) it; only an approved dataset can be used by a competition, and an approved
    /// dataset is frozen (no more contributions).
    DatasetState {
        /// Open for contributions; at least one contribution awaits validation, or none yet.
        Uploaded => "uploaded",
        /// Every kept contribution passed validation; awaiting the organizer.
        Validated => "validated",
        /// The organizer refused it.
        Rejected => "rejected",
        /// Usable by competitions; frozen.
        Approved => "approved",
    }
);

text_enum!(
    /// The items of a dataset's legality and compliance review, each read from the
    /// manifests' provenance and permitted uses and decided by the reviewing organizer.
    ReviewItem {
        /// `provenance.ethicsApproval`: an ethics committee / IRB approval is referenced.
        EthicsApproval => "ethics_approval",
        /// `provenance.legalBasis`: the legal basis of the processing holds for this use.
        LegalBasis => "legal_basis",
        /// `provenance.consent`: consent was given, or its waiver is justified.
        Consent => "consent",
        /// `provenance.deidentification`: the method and standard are adequate.
        Deidentification => "deidentification",
        /// `permittedUses`: the purposes allow the platform's competitions.
        PermittedUses => "permitted_uses",
    }
);

/// One checklist item as the reviewer decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecklistDecision {
    pub item: ReviewItem,
    pub passed: bool,
    /// What was checked, or why it fails (shown to the contributing hospitals): 1 to 500
    /// characters.
    #[schemars(length(min = 1, max = 500))]
    pub note: String,
}

/// An organizer's review of a dataset: the whole checklist, then the decision. A dataset is
/// approved only when every item passes; a refusal names the items that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetReview {
    pub approve: bool,
    /// Every item of [`ReviewItem`], once.
    pub checklist: Vec<ChecklistDecision>,
    #[serde(default)]
    pub note: Option<String>,
}

impl DatasetReview {
    /// Every item passed with the same note: for tests and the demo, whose example data's
    /// provenance is synthetic.
    pub fn approve_all(note: &str) -> DatasetReview {
        DatasetReview {
            approve: true,
            checklist: ReviewItem::ALL
                .iter()
                .map(|&item| ChecklistDecision {
                    item,
                    passed: true,
                    note: note.to_owned(),
                })
                .collect(),
            note: None,
        }
    }

    /// The items that failed, in checklist order.
    pub fn failed(&self) -> Vec<ReviewItem> {
        self.checklist
            .iter()
            .filter(|d| !d.passed)
            .map(|d| d.item)
            .collect()
    }
}

text_enum!(
    /// A synthetic release's life: measured (the ε is spent) and previewed by its hospital
    /// alone, then published to the teams of the competitions using the dataset, or
    /// discarded; a published release is withdrawn by its hospital or replaced by its next.
    SyntheticState {
        Draft => "draft",
        Published => "published",
        Discarded => "discarded",
        Withdrawn => "withdrawn",
    }
);

text_enum!(
    /// One hospital's upload: stored, then validated or rejected (a rejected upload's bytes
    /// are deleted; its report is kept).
    ContributionState {
        Uploaded => "uploaded",
        Validated => "validated",
        Rejected => "rejected",
    }
);

text_enum!(
    /// A submission's progress through the phase gate: dummy run first, real run only after
    /// a successful dummy run.
    SubmissionStatus {
        QueuedDummy => "queued_dummy",
        RunningDummy => "running_dummy",
        QueuedReal => "queued_real",
        RunningReal => "running_real",
        Completed => "completed",
        Failed => "failed",
    }
);

text_enum!(
    /// The coarse outcome of a run: the only thing about a failure a team ever sees
    /// (never a message or a trace that could carry data).
    RunOutcome {
        Ok => "ok",
        Failed => "failed",
        OverLimit => "over_limit",
        /// The platform gave up after retries (crashed workers, infrastructure errors).
        Error => "error",
    }
);

// The enum comes from `text_enum!`, which cannot place `#[default]` on one variant.
#[allow(clippy::derivable_impls)]
impl Default for RunOutcome {
    fn default() -> Self {
        RunOutcome::Ok
    }
}

text_enum!(
    /// What a submission's module does.
    SubmissionKind {
        /// A model: `fit` on the training part, `predict` the test parts; scored.
        Model => "model",
        /// An analysis (`analyze`), released as a differentially private aggregate by
        /// sample-and-aggregate; needs the `dp_aggregates` tier.
        Analysis => "analysis",
    }
);

// See `RunOutcome`.
#[allow(clippy::derivable_impls)]
impl Default for SubmissionKind {
    fn default() -> Self {
        SubmissionKind::Model
    }
}

/// What a team declares with an analysis module: the platform splits the training rows into
/// `blocks` disjoint blocks, runs `analyze` on each, clamps every output value into its
/// bounds, averages and adds Laplace noise calibrated to the bounds, charging `epsilon`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisSpec {
    /// One `[low, high]` per output value, in order (at most [`AnalysisSpec::MAX_OUTPUTS`]).
    pub bounds: Vec<[f64; 2]>,
    /// ε charged on each of the competition's datasets.
    pub epsilon: f64,
    /// Number of disjoint blocks k: more blocks mean less noise (its scale is
    /// `width · outputs / (k · ε)`) but fewer rows per block.
    #[serde(default = "AnalysisSpec::default_blocks")]
    pub blocks: u32,
}

impl AnalysisSpec {
    pub const MAX_OUTPUTS: usize = 64;
    pub const MAX_BLOCKS: u32 = 1000;

    fn default_blocks() -> u32 {
        10
    }

    /// Every problem with the declaration, as `(field, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.bounds.is_empty() || self.bounds.len() > Self::MAX_OUTPUTS {
            problems.push((
                "bounds".to_owned(),
                format!("declare 1 to {} output bounds", Self::MAX_OUTPUTS),
            ));
        }
        for (index, [low, high]) in self.bounds.iter().enumerate() {
            if !(low.is_finite() && high.is_finite() && low < high && (high - low).is_finite()) {
                problems.push((
                    format!("bounds[{index}]"),
                    format!("must be finite with low < high, got [{low}, {high}]"),
                ));
            }
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            problems.push((
                "epsilon".to_owned(),
                format!("must be a positive number, got {}", self.epsilon),
            ));
        }
        if !(2..=Self::MAX_BLOCKS).contains(&self.blocks) {
            problems.push((
                "blocks".to_owned(),
                format!(
                    "must be between 2 and {}, got {}",
                    Self::MAX_BLOCKS,
                    self.blocks
                ),
            ));
        }
        problems
    }
}

/// A released analysis: what the team sees (noisy values and what they cost).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReleasedAggregate {
    /// One noisy value per declared output.
    pub values: Vec<f64>,
    /// ε charged on each dataset.
    pub epsilon: f64,
    pub blocks: u32,
    /// The Laplace scale per output, in the output's units (data-independent).
    pub noise_scale: Vec<f64>,
}

text_enum!(
    /// Which data a job runs on.
    JobKind {
        DummyRun => "dummy_run",
        RealRun => "real_run",
    }
);

text_enum!(
    /// A job in the durable queue.
    JobState {
        Pending => "pending",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
    }
);

/// A login. The password hash never leaves the store layer except for verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Account {
    pub id: AccountId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub org: Option<OrgId>,
    pub disabled: bool,
    pub created_at: Timestamp,
}

/// A hospital or a team, with its admission review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Organization {
    pub id: OrgId,
    pub kind: OrgKind,
    pub name: String,
    /// What the applicant wrote in the application.
    pub statement: String,
    pub admission: AdmissionState,
    /// Set for approved teams; hospitals have no tier.
    pub tier: Option<Tier>,
    pub applied_by: AccountId,
    pub reviewed_by: Option<AccountId>,
    pub reviewed_at: Option<Timestamp>,
    pub review_note: Option<String>,
    pub created_at: Timestamp,
}

/// A session or API token as listed to its owner (the secret itself is shown only once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Credential {
    pub id: CredentialId,
    pub account: AccountId,
    pub kind: CredentialKind,
    pub name: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl Credential {
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// A competition: the validated bundle plus its lifecycle stamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Competition {
    pub id: CompetitionId,
    pub slug: String,
    pub bundle: crate::bundle::Bundle,
    /// The YAML exactly as the organizer submitted it.
    pub bundle_yaml: String,
    /// SHA-256 (hex) of `bundle_yaml`; recorded on the ledger.
    pub bundle_sha256: String,
    /// The datasets named in the bundle, resolved to ids.
    pub datasets: Vec<DatasetId>,
    pub created_by: AccountId,
    pub created_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub published_at: Option<Timestamp>,
}

/// A team's acceptance of a competition's data-use agreement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgreementAcceptance {
    pub competition: CompetitionId,
    pub team: OrgId,
    pub accepted_by: AccountId,
    /// SHA-256 (hex) of the agreement text that was accepted.
    pub agreement_sha256: String,
    pub accepted_at: Timestamp,
}

/// A dataset and its review state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Dataset {
    pub id: DatasetId,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub state: DatasetState,
    pub created_by: AccountId,
    pub created_at: Timestamp,
    pub reviewed_by: Option<AccountId>,
    pub reviewed_at: Option<Timestamp>,
    pub review_note: Option<String>,
    /// The legality and compliance checklist of the review, item by item.
    #[serde(default)]
    pub review_checklist: Vec<ChecklistDecision>,
}

/// One hospital's upload to a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Contribution {
    pub id: ContributionId,
    pub dataset: DatasetId,
    pub hospital: OrgId,
    pub uploaded_by: AccountId,
    pub file_name: String,
    /// The dataset manifest sent with the upload (schema, not rows).
    pub manifest: Option<String>,
    /// Where the encrypted bytes are; `None` once a rejected upload has been deleted.
    pub object: Option<ObjectId>,
    /// SHA-256 (hex) of the plaintext as uploaded.
    pub content_sha256: String,
    /// The secret salt of the public ledger's commitments to this upload and its report:
    /// with it (and the file), the hospital checks its receipts; without it, the ledger
    /// says nothing about the file ([`crate::vault::commitment`]).
    pub commitment_salt: Option<String>,
    pub size_bytes: i64,
    pub rows: Option<i64>,
    pub state: ContributionState,
    /// The validator's report (JSON), shown to the contributing hospital and organizers.
    pub report: serde_json::Value,
    pub created_at: Timestamp,
    /// The scope of its own data key (`upload:<hex>`); `None` for uploads sealed with their
    /// dataset's key. Internal: never serialized.
    #[serde(skip)]
    #[schemars(skip)]
    pub key_scope: Option<String>,
    /// When its hospital withdrew it: its key is destroyed and its bytes deleted; no run
    /// reads it again. Its record and receipts stay.
    #[serde(default)]
    pub withdrawn_at: Option<Timestamp>,
    #[serde(default)]
    pub withdrawal_reason: Option<String>,
}

impl Contribution {
    /// Whose key seals its bytes.
    pub fn scope(&self) -> crate::vault::KeyScope {
        self.key_scope
            .as_deref()
            .and_then(crate::vault::KeyScope::parse_upload)
            .unwrap_or(crate::vault::KeyScope::Dataset(self.dataset))
    }

    /// Validated and not withdrawn: what runs, measurements and contracts count.
    pub fn usable(&self) -> bool {
        self.state == ContributionState::Validated && self.withdrawn_at.is_none()
    }
}

/// One hospital's differentially private synthetic release of its rows of a dataset (the
/// noisy measurements live apart: [`crate::store::SyntheticRepo::synthetic_measurements`]).
/// Every field is public to whoever may see the release: the ε is the hospital's choice,
/// the quality compares the synthetic rows with the noisy measurements, never the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SyntheticRelease {
    pub id: crate::ids::SyntheticReleaseId,
    pub dataset: DatasetId,
    pub hospital: OrgId,
    pub state: SyntheticState,
    /// ε at `delta` (OpenDP's zCDP → (ε, δ) conversion of `rho`), charged on the dataset.
    pub epsilon: f64,
    pub delta: f64,
    pub rho: f64,
    /// The synthesizer and its version, e.g. `medarena-synth 0.1.0 (MST)`.
    pub synthesizer: String,
    /// Total variation distances between the synthetic rows and the noisy measurements.
    pub quality: SyntheticQuality,
    /// SHA-256 of the stored measurements (the release itself), as on the ledger.
    pub measurements_sha256: String,
    pub created_at: Timestamp,
    pub published_at: Option<Timestamp>,
}

/// How far synthetic rows are from the noisy measurements they were drawn from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SyntheticQuality {
    /// Mean and largest TVD over the columns' 1-way marginals.
    pub mean_column_tvd: f64,
    pub max_column_tvd: f64,
    /// Mean and largest TVD over the measured pairs (tree edges and label pairs).
    pub mean_pair_tvd: f64,
    pub max_pair_tvd: f64,
    /// Per column and per pair (`medarena_synth::Quality`).
    pub detail: serde_json::Value,
}

/// A submission with everything the platform knows; use [`crate::SubmissionView`] for what a
/// given actor may see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Submission {
    pub id: SubmissionId,
    pub competition: CompetitionId,
    pub team: OrgId,
    pub submitted_by: AccountId,
    /// The name of the phase that was open when it was submitted.
    pub phase: String,
    pub kind: SubmissionKind,
    /// The declaration of an analysis submission.
    pub analysis: Option<AnalysisSpec>,
    pub object: ObjectId,
    pub module_sha256: String,
    pub size_bytes: i64,
    pub status: SubmissionStatus,
    /// Set once the submission has finished; `Ok` for completed ones.
    pub outcome: Option<RunOutcome>,
    /// Why a completed submission did not run on real data (development phase, tier).
    pub note: Option<String>,
    pub dummy_score: Option<f64>,
    pub released_public_score: Option<f64>,
    pub exact_public_score: Option<f64>,
    pub private_score: Option<f64>,
    /// The released aggregate of a completed analysis (its team and organizers).
    pub released_aggregate: Option<ReleasedAggregate>,
    /// The executor's full result for the real run (organizer-only details included).
    pub result: Option<serde_json::Value>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// When the real-data run's result becomes visible to anyone but organizers: fixed when
    /// the run is queued (queue time + the competition's release delay), whatever it does.
    pub release_at: Option<Timestamp>,
    /// The private score as released at publication (noisy; teams and the public).
    pub released_private_score: Option<f64>,
}

/// A job in the durable queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Job {
    pub id: JobId,
    pub submission: SubmissionId,
    pub competition: CompetitionId,
    pub team: OrgId,
    pub kind: JobKind,
    pub state: JobState,
    /// Claims so far, including the current one.
    pub attempts: i64,
    pub max_attempts: i64,
    /// Not claimable before this instant (retry back-off).
    pub available_at: Timestamp,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<Timestamp>,
    pub outcome: Option<RunOutcome>,
    /// The last infrastructure error (operators only; never shown to teams).
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// A team's privacy budget on one dataset of a competition. Charges are kept per (team,
/// dataset) across every competition; three caps bind: the competition's own, the per-team
/// cap the dataset's hospitals set, and their total across all teams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BudgetUse {
    pub dataset: DatasetId,
    /// The competition's cap per team and dataset, and what the team spent in it.
    pub total: f64,
    pub spent: f64,
    /// The hospitals' per-team cap on the dataset, and what the team spent on it in every
    /// competition, with the hospitals' synthetic releases (every team sees them).
    pub dataset_cap: f64,
    pub dataset_spent: f64,
    /// What the team can still spend here: the least of the three caps' rests.
    pub remaining: f64,
}

impl BudgetUse {
    pub fn remaining(&self) -> f64 {
        self.remaining.max(0.0)
    }
}

text_enum!(
    /// Why ε was charged.
    ChargePurpose {
        /// A real-data run's released public score.
        PublicScore => "public_score",
        /// The team's released private score at publication (reserved with its first run).
        FinalScore => "final_score",
        /// An analysis's released aggregate.
        Analysis => "analysis",
    }
);

/// What a hospital allows for a dataset it contributed to. Each contributing hospital sets
/// its own; the strictest of them applies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetPrivacyTerms {
    /// The weakest guarantee a competition may use this data under (`row` refuses `label`).
    pub min_level: crate::bundle::PrivacyLevel,
    /// ε one team may spend on the dataset across all competitions.
    pub per_team_epsilon: f64,
    /// ε all teams together may spend on it.
    pub total_epsilon: f64,
}

impl Default for DatasetPrivacyTerms {
    /// Until a hospital says otherwise: only `row`-level competitions, 10 ε per team, 100 ε
    /// in all.
    fn default() -> Self {
        DatasetPrivacyTerms {
            min_level: crate::bundle::PrivacyLevel::Row,
            per_team_epsilon: 10.0,
            total_epsilon: 100.0,
        }
    }
}

/// A dataset's privacy terms as they apply, and what has been spent on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetPrivacy {
    pub dataset: DatasetId,
    /// The strictest of the contributing hospitals' terms (defaults where one set none).
    pub effective: DatasetPrivacyTerms,
    /// Each hospital's own terms, where it set them.
    pub by_hospital: Vec<(OrgId, DatasetPrivacyTerms)>,
    /// ε charged on the dataset, all teams together, and the most any one team spent.
    pub spent_total: f64,
    pub spent_most_by_one_team: f64,
    /// The contributing hospitals' suspensions of the dataset's use: while there is one, no
    /// real-data run reads it.
    pub suspensions: Vec<DatasetSuspension>,
    /// ε of the hospitals' synthetic releases (each release's ε, summed per hospital; the
    /// largest of those sums, since the hospitals' rows are disjoint). Every team sees
    /// published synthetic data, so this counts against the per-team cap and the total.
    pub spent_synthetic: f64,
}

/// A contributing hospital's suspension of a dataset's use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetSuspension {
    pub hospital: OrgId,
    pub reason: String,
    pub suspended_at: Timestamp,
}

/// Counts of jobs per state, for `/metrics` and the organizer dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QueueStats {
    pub pending: i64,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_enums_round_trip_through_text_and_json() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
            let json = serde_json::to_string(role).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
        for status in SubmissionStatus::ALL {
            assert_eq!(status.as_str().parse::<SubmissionStatus>(), Ok(*status));
        }
        let err = "superuser".parse::<Role>().unwrap_err();
        assert_eq!(err.to_string(), "unknown Role `superuser`");
    }

    #[test]
    fn tiers_are_ordered() {
        assert!(Tier::DummyOnly < Tier::RealData);
        assert!(Tier::RealData < Tier::DpAggregates);
    }
}
