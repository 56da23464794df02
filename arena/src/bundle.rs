//! Competition bundles: the YAML an organizer writes to create a competition, in the spirit
//! of Codabench's `competition.yaml`.
//!
//! Parsing happens in two steps, and every error names the field path it is about
//! (`phases[1].ends_at`, `privacy.public_score.epsilon_per_release`):
//! 1. serde (through `serde_path_to_error`) checks the shape: unknown fields, wrong types,
//!    unknown enum values, malformed dates;
//! 2. [`Bundle::validate`] checks the meaning: fractions summing to one, phases in order,
//!    a metric that fits the task, ε within the budget, and collects every problem at once.
//!
//! An annotated example lives in `arena/examples/bundles/cardiac-event/competition.yaml`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use medarena_scorer::Metric;
use medarena_scorer::release::{ClampBounds, PublicPartFacts, score_sensitivity};

use crate::time::Timestamp;

/// The only bundle format version so far.
pub const BUNDLE_VERSION: u32 = 1;

/// A parsed and validated competition bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Format version; must be 1.
    pub version: u32,
    /// Stable identifier used in URLs: lowercase letters, digits and dashes.
    pub slug: String,
    pub title: String,
    /// Markdown shown on the competition page.
    pub description: String,
    pub task: TaskKind,
    /// The column of the dataset that submissions predict: a `label` field of the manifest,
    /// or for a survival task its `time_to_event` field (paired with the manifest's `event`).
    pub target: String,
    /// The metric by name (see [`metric_info`]): the one that ranks, released under DP.
    pub metric: String,
    /// Further metrics (by name) that organizers see on each real run, computed exactly on
    /// the pooled out-of-block predictions and never released to teams or the public: the
    /// place for metrics that cannot be released under DP, such as calibration slope.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organizer_metrics: Vec<String>,
    /// Dataset slugs; each must exist and be approved when the competition is created.
    pub datasets: Vec<String>,
    pub split: SplitSpec,
    pub phases: Vec<PhaseSpec>,
    #[serde(default)]
    pub limits: SubmissionLimits,
    #[serde(default)]
    pub sandbox: SandboxLimits,
    pub privacy: PrivacySpec,
    /// Settings of a survival task (`task: survival` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survival: Option<SurvivalSpec>,
    /// The data-use agreement each team must accept before its first run.
    pub agreement: String,
}

/// What the submissions do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    BinaryClassification,
    MulticlassClassification,
    Regression,
    /// Time to an event with right censoring: the target is the manifest's
    /// `time_to_event` column with its `event` column; submissions return one risk score per
    /// row, **higher meaning an earlier event** (`sandbox/ABI.md`).
    Survival,
}

impl TaskKind {
    /// The name used in bundles and pages.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::BinaryClassification => "binary_classification",
            TaskKind::MulticlassClassification => "multiclass_classification",
            TaskKind::Regression => "regression",
            TaskKind::Survival => "survival",
        }
    }
}

/// Settings of a survival competition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SurvivalSpec {
    /// Times, in the target's unit, at which time-dependent metrics look (strictly
    /// increasing, positive, at most 20); shown on the competition page.
    #[serde(default)]
    pub horizons: Vec<f64>,
    /// Uno's C (`uno_c_index`) counts only events before this time; default: every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau: Option<f64>,
}

/// How rows are split, deterministically from `seed`, into the part the submission trains
/// on, the part behind the public leaderboard, and the part behind the private one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    pub train: f64,
    pub public_test: f64,
    pub private_test: f64,
    pub seed: u64,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    /// Submissions run on dummy data only; nothing touches real rows.
    Development,
    /// Dummy run, then real run; noisy public scores on the leaderboard.
    Public,
    /// As public; ranked on the private split when the competition is published.
    Final,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    pub name: String,
    pub kind: PhaseKind,
    /// RFC 3339, e.g. `2025-03-01T00:00:00Z`. Inclusive.
    pub starts_at: DateTime<Utc>,
    /// Exclusive.
    pub ends_at: DateTime<Utc>,
}

impl PhaseSpec {
    pub fn contains(&self, now: Timestamp) -> bool {
        Timestamp::from_datetime(self.starts_at) <= now
            && now < Timestamp::from_datetime(self.ends_at)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmissionLimits {
    /// Counted per UTC calendar day, over all phases.
    pub submissions_per_team_per_day: u32,
}

impl Default for SubmissionLimits {
    fn default() -> Self {
        Self {
            submissions_per_team_per_day: 5,
        }
    }
}

/// Limits handed to the sandbox for every run of this competition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxLimits {
    pub memory_mib: u32,
    /// Wall-clock deadline of one fit + predict (on the `row` level: of each block's).
    pub time_limit_seconds: u32,
    /// Wall-clock limit for compiling the module (a cached artifact skips it).
    pub compile_timeout_seconds: u32,
    pub module_max_bytes: u64,
    /// Optional instruction budget; `None` relies on the deadline alone.
    pub fuel: Option<u64>,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory_mib: 512,
            time_limit_seconds: 120,
            compile_timeout_seconds: 30,
            module_max_bytes: 16 * 1024 * 1024,
            fuel: None,
        }
    }
}

/// What a competition promises the hospitals, and how its scores are released. Every
/// parameter that sets the noise is declared here, never read off the data (`PRIVACY.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivacySpec {
    /// `row` (the default): differential privacy over every row (training rows, test
    /// features and test labels), by partitioned scoring. `label`: over the test labels only,
    /// with a capped number of releases on a published grid; the weaker level, which a
    /// dataset's hospital must allow.
    #[serde(default)]
    pub level: PrivacyLevel,
    /// `row` level: the number k of disjoint (training block, test block) pairs a real run
    /// is cut into, each fitted and predicted in a fresh sandbox. The noise of a released
    /// score is range/(k·ε): more blocks, less noise, but fewer rows to train on per block.
    /// Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<u32>,
    /// Declared lower bound on the rows (with a target) of the competition's data. A real run
    /// on fewer is refused before the submission runs, the same way for every submission.
    #[serde(default)]
    pub min_rows: u64,
    /// `label` level: declared lower bound on the rows of each test part (the sensitivity of
    /// 1/n metrics uses it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_test_rows: Option<u64>,
    /// `label` level, binary metrics of sensitivity 1/m (AUC, balanced accuracy): declared
    /// lower bound on the rows of the smaller class in each test part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_test_class_rows: Option<u64>,
    /// `label` level: the most real-data releases a team gets in this competition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_releases: Option<u32>,
    /// `label` level: released scores are multiples of this (default: a hundredth of the
    /// metric's range). With `max_releases` it bounds what scores can say about training
    /// rows: at most releases × log2(levels) bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_grid: Option<f64>,
    /// Seconds after a real-data run is queued at which its result is released: its status,
    /// score and ledger entries, whatever the run did. Must cover the worst case of a run
    /// (compilation + every block up to its deadline); defaults to exactly that, rounded up
    /// to a minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_delay_seconds: Option<u32>,
    /// A real run that fails in a way the submission controls (trap, a limit, its deadline,
    /// bad output) is scored with this prediction instead; the team sees a completed run.
    #[serde(default)]
    pub fallback: Fallback,
    pub public_score: PublicScoreSpec,
    /// The released private scores of the final leaderboard.
    #[serde(default)]
    pub final_release: FinalReleaseSpec,
    /// Total ε a team may spend on one dataset in this competition (the hospitals' own
    /// caps across competitions apply too).
    pub budget_per_team_per_dataset: f64,
    /// Aggregates over fewer rows than this are suppressed.
    pub suppression_threshold: u32,
}

/// The guarantee a competition gives; see `PRIVACY.md`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PrivacyLevel {
    /// DP over the test labels only (the weaker level, ordered first).
    Label,
    /// DP over every row.
    #[default]
    Row,
}

impl PrivacyLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            PrivacyLevel::Row => "row",
            PrivacyLevel::Label => "label",
        }
    }
}

impl std::str::FromStr for PrivacyLevel {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "row" => Ok(PrivacyLevel::Row),
            "label" => Ok(PrivacyLevel::Label),
            other => Err(format!(
                "unknown privacy level `{other}`; use `row` or `label`"
            )),
        }
    }
}

/// What a failed real run predicts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// The training prior of the block: class frequencies, or the mean target.
    #[default]
    Prior,
}

/// The private leaderboard as teams and the public see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FinalReleaseSpec {
    /// ε of each team's released private score, reserved with its first real-data run.
    /// Default: the public score's ε per release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    /// `score` (default): the noisy private score and its interval; `rank`: only the rank
    /// of each team by its noisy private score.
    #[serde(default)]
    pub show: FinalShow,
    /// ε of the per-hospital view (`level: row` only): at publication each contributing
    /// hospital sees each final entry's score on its own patients' private rows, released
    /// with noise; this ε covers all hospitals of an entry together (each gets
    /// ε / hospitals) and is reserved with the final score. Absent: no per-hospital view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_epsilon: Option<f64>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FinalShow {
    #[default]
    Score,
    Rank,
}

/// Blocks of a `row`-level competition when the bundle declares none.
pub const DEFAULT_BLOCKS: u32 = 10;
/// The slack added to a run's worst case for process start-up and scoring, in seconds.
const RELEASE_MARGIN_SECONDS: u64 = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicScoreSpec {
    pub mechanism: PublicScoreMechanism,
    /// ε charged for each released public score.
    pub epsilon_per_release: f64,
    /// Step of the Ladder (only with `mechanism: ladder`); default: the noise's 95%
    /// half-width rounded up to 1, 2 or 5 times a power of ten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ladder_step: Option<f64>,
    /// Log losses: true-class probabilities below this floor count as the floor, which
    /// bounds the metric's sensitivity so that it can be released with noise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability_floor: Option<f64>,
    /// RMSE and MAE: truth and predictions are clamped into `[low, high]` for the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_range: Option<[f64; 2]>,
}

impl PublicScoreSpec {
    /// The scorer's clamping bounds for the released score.
    pub fn clamp_bounds(&self) -> ClampBounds {
        ClampBounds {
            probability_floor: self.probability_floor,
            value_range: self.value_range.map(|[low, high]| (low, high)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PublicScoreMechanism {
    /// Laplace noise on every released score.
    Laplace,
    /// The Ladder (Blum & Hardt): release only improvements by at least a step.
    Ladder,
}

/// Every public parameter of a competition's releases, for pages, the API and the ledger.
/// Nothing here depends on the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReleaseTerms {
    pub level: PrivacyLevel,
    /// Blocks of one real run (1 on the `label` level).
    pub blocks: u32,
    /// Scores (and each block's score) are clamped into this range.
    pub range: [f64; 2],
    /// How far one row (`row` level) or one test label (`label` level) can move a score.
    pub sensitivity: f64,
    pub public_epsilon: f64,
    /// Laplace scale b of a released public score.
    pub public_noise_scale: f64,
    /// Half-width of the 95% interval of that noise (b·ln 20): shown as ± next to scores.
    pub public_half_width_95: f64,
    pub final_epsilon: f64,
    pub final_noise_scale: f64,
    pub final_half_width_95: f64,
    pub final_show: FinalShow,
    /// The Ladder's step, when the public board uses the Ladder.
    pub ladder_step: Option<f64>,
    /// `label` level: released scores are multiples of this.
    pub score_grid: Option<f64>,
    pub max_releases: Option<u32>,
    /// `label` level: the most bits all of a team's releases can carry about training rows.
    pub max_bits: Option<f64>,
    /// Results of a real run are released this long after it is queued.
    pub release_delay_seconds: u64,
    pub worst_case_run_seconds: u64,
}

/// The most blocks a `row`-level competition may declare.
pub const MAX_BLOCKS: u32 = 10_000;

/// What the core needs to know about a metric: which tasks it fits and its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricInfo {
    pub name: &'static str,
    pub tasks: &'static [TaskKind],
    pub higher_is_better: bool,
}

const BINARY: &[TaskKind] = &[TaskKind::BinaryClassification];
const MULTICLASS: &[TaskKind] = &[TaskKind::MulticlassClassification];
const REGRESSION: &[TaskKind] = &[TaskKind::Regression];
const SURVIVAL: &[TaskKind] = &[TaskKind::Survival];

const fn info(
    name: &'static str,
    tasks: &'static [TaskKind],
    higher_is_better: bool,
) -> MetricInfo {
    MetricInfo {
        name,
        tasks,
        higher_is_better,
    }
}

/// The metrics a bundle may name: the scorer's (`medarena_scorer::Metric`), by their
/// canonical names; the scorer's aliases (`auc`, `brier_score`, ...) are accepted too. This
/// table lets the core validate a bundle and order a leaderboard; a unit test keeps it in
/// step with the scorer.
pub const METRICS: &[MetricInfo] = &[
    info("roc_auc", BINARY, true),
    info("average_precision", BINARY, true),
    info("log_loss", BINARY, false),
    info("brier", BINARY, false),
    info("accuracy", BINARY, true),
    info("balanced_accuracy", BINARY, true),
    info("f1", BINARY, true),
    info("multiclass_accuracy", MULTICLASS, true),
    info("macro_f1", MULTICLASS, true),
    info("multiclass_log_loss", MULTICLASS, false),
    info("rmse", REGRESSION, false),
    info("mae", REGRESSION, false),
    info("r2", REGRESSION, true),
    info("ece", BINARY, false),
    info("calibration_slope", BINARY, false),
    info("calibration_intercept", BINARY, false),
    info("c_index", SURVIVAL, true),
    info("uno_c_index", SURVIVAL, true),
    info("td_auc", SURVIVAL, true),
    info("integrated_brier", SURVIVAL, false),
    info("brier_at_horizon", SURVIVAL, false),
    info("ece_at_horizon", SURVIVAL, false),
];

/// The metric named `name` (a canonical name or one of the scorer's aliases).
pub fn metric_info(name: &str) -> Option<&'static MetricInfo> {
    let canonical = name.parse::<Metric>().ok()?.name();
    METRICS.iter().find(|m| m.name == canonical)
}

fn role_str(role: medarena_datasets_spec::manifest::Role) -> &'static str {
    use medarena_datasets_spec::manifest::Role;
    match role {
        Role::Feature => "feature",
        Role::Label => "label",
        Role::TimeToEvent => "time_to_event",
        Role::Event => "event",
        Role::RowId => "row_id",
        Role::Site => "site",
        Role::Excluded => "excluded",
    }
}

fn candidates_text(candidates: &[&str]) -> String {
    if candidates.is_empty() {
        "it declares none".to_owned()
    } else {
        format!("it declares {}", candidates.join(", "))
    }
}

/// One problem in a bundle, at a field path such as `phases[1].ends_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FieldIssue {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for FieldIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A bundle that could not be accepted. Each issue names its field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid competition bundle: {}", join_issues(.issues))]
pub struct BundleError {
    pub issues: Vec<FieldIssue>,
}

fn join_issues(issues: &[FieldIssue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Bundle {
    /// Parses and validates YAML text.
    pub fn from_yaml(text: &str) -> Result<Self, BundleError> {
        let deserializer = serde_norway::Deserializer::from_str(text);
        let bundle: Bundle = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let path = err.path().to_string();
            // The root is "." — or "" when the error is at a key that has no name yet (a
            // complex-key `?` line, say).
            let path = if path == "." || path.is_empty() {
                "(bundle)".to_owned()
            } else {
                path
            };
            BundleError {
                issues: vec![FieldIssue {
                    path,
                    message: err.into_inner().to_string(),
                }],
            }
        })?;
        let issues = bundle.validate();
        if issues.is_empty() {
            Ok(bundle)
        } else {
            Err(BundleError { issues })
        }
    }

    /// The bundle as YAML (without the comments of the text it was read from).
    pub fn to_yaml(&self) -> Result<String, BundleError> {
        serde_norway::to_string(self).map_err(|err| BundleError {
            issues: vec![FieldIssue {
                path: "(bundle)".to_owned(),
                message: err.to_string(),
            }],
        })
    }

    /// Every semantic problem, in field order; empty when the bundle is acceptable.
    pub fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Issues::default();
        if self.version != BUNDLE_VERSION {
            issues.add(
                "version",
                format!(
                    "unsupported version {}; expected {BUNDLE_VERSION}",
                    self.version
                ),
            );
        }
        if let Err(message) = check_slug(&self.slug) {
            issues.add("slug", message);
        }
        check_text(&mut issues, "title", &self.title, 200);
        check_text(&mut issues, "description", &self.description, 100_000);
        if self.target.trim().is_empty() {
            issues.add("target", "must name the column to predict");
        }
        self.check_metric_name(&mut issues, "metric".to_owned(), &self.metric);
        for (index, name) in self.organizer_metrics.iter().enumerate() {
            self.check_metric_name(&mut issues, format!("organizer_metrics[{index}]"), name);
        }
        if self.organizer_metrics.len() > 12 {
            issues.add("organizer_metrics", "at most 12 organizer metrics");
        }
        self.validate_datasets(&mut issues);
        self.validate_split(&mut issues);
        self.validate_phases(&mut issues);
        let per_day = self.limits.submissions_per_team_per_day;
        if !(1..=1000).contains(&per_day) {
            issues.add(
                "limits.submissions_per_team_per_day",
                format!("must be between 1 and 1000, got {per_day}"),
            );
        }
        self.validate_sandbox(&mut issues);
        self.validate_privacy(&mut issues);
        self.validate_survival(&mut issues);
        self.check_horizons_needed(&mut issues);
        if self.agreement.trim().is_empty() {
            issues.add("agreement", "the data-use agreement text must not be empty");
        }
        issues.0
    }

    /// The scorer's metric; always present for a validated bundle.
    pub fn scorer_metric(&self) -> Option<Metric> {
        self.metric.parse().ok()
    }

    /// The organizer metrics the scorer knows (all of them, for a validated bundle).
    pub fn scorer_organizer_metrics(&self) -> Vec<Metric> {
        self.organizer_metrics
            .iter()
            .filter_map(|name| name.parse().ok())
            .collect()
    }

    /// The public parameters of time-dependent metrics, from `survival` (empty otherwise).
    pub fn score_context(&self) -> medarena_scorer::ScoreContext {
        medarena_scorer::ScoreContext {
            horizons: self
                .survival
                .as_ref()
                .map(|s| s.horizons.clone())
                .unwrap_or_default(),
            tau: self.survival.as_ref().and_then(|s| s.tau),
            training: None,
        }
    }

    /// The time grid at which submissions return survival curves (ABI version 2): the
    /// horizons, when the metric or an organizer metric reads curves; else `None` (risk
    /// scores, any ABI version).
    pub fn survival_grid(&self) -> Option<Vec<f64>> {
        let needs_curves = self
            .scorer_metric()
            .into_iter()
            .chain(self.scorer_organizer_metrics())
            .any(Metric::needs_survival_curves);
        needs_curves.then(|| self.score_context().horizons)
    }

    /// A metric name that the scorer knows and that fits the task.
    fn check_metric_name(&self, issues: &mut Issues, path: String, name: &str) {
        match metric_info(name) {
            None => issues.add(
                path,
                format!(
                    "unknown metric `{name}`; known: {}",
                    METRICS
                        .iter()
                        .map(|m| m.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Some(info) if !info.tasks.contains(&self.task) => issues.add(
                path,
                format!("metric `{name}` does not fit task {}", self.task.as_str()),
            ),
            Some(_) => {}
        }
    }

    /// Every metric gets the horizons it reads (`survival.horizons`).
    fn check_horizons_needed(&self, issues: &mut Issues) {
        use medarena_scorer::HorizonsNeeded;
        let declared = self.survival.as_ref().map_or(0, |s| s.horizons.len());
        let mut metrics: Vec<Metric> = self
            .scorer_metric()
            .into_iter()
            .chain(self.scorer_organizer_metrics())
            .collect();
        metrics.sort_by_key(|m| m.name());
        metrics.dedup();
        for metric in metrics {
            let (fits, wanted) = match metric.horizons_needed() {
                HorizonsNeeded::NotUsed => (true, ""),
                HorizonsNeeded::ExactlyOne => (declared == 1, "exactly one horizon"),
                HorizonsNeeded::AtLeastOne => (declared >= 1, "at least one horizon"),
                HorizonsNeeded::AtLeastTwo => (declared >= 2, "at least two horizons"),
            };
            if !fits {
                issues.add(
                    "survival.horizons",
                    format!("`{}` reads {wanted}; {declared} declared", metric.name()),
                );
            }
        }
    }

    fn validate_survival(&self, issues: &mut Issues) {
        let Some(survival) = &self.survival else {
            return;
        };
        if self.task != TaskKind::Survival {
            issues.add(
                "survival",
                format!(
                    "only a survival task takes survival settings, not {}",
                    self.task.as_str()
                ),
            );
        }
        if survival.horizons.len() > 20 {
            issues.add("survival.horizons", "at most 20 horizons");
        }
        for (index, horizon) in survival.horizons.iter().enumerate() {
            let path = format!("survival.horizons[{index}]");
            if !(horizon.is_finite() && *horizon > 0.0) {
                issues.add(path, format!("must be a positive time, got {horizon}"));
            } else if index > 0 && *horizon <= survival.horizons[index - 1] {
                issues.add(path, "horizons must be strictly increasing");
            }
        }
        if let Some(tau) = survival.tau
            && !(tau.is_finite() && tau > 0.0)
        {
            issues.add(
                "survival.tau",
                format!("must be a positive time, got {tau}"),
            );
        }
    }

    /// Whether `manifest` has what this bundle's target needs: a `label` field named
    /// `target`, or for a survival task a `time_to_event` field named `target` and an `event`
    /// field. The error names the dataset's fields that would do.
    pub fn check_target(&self, manifest: &medarena_datasets_spec::Manifest) -> Result<(), String> {
        use medarena_datasets_spec::manifest::Role;
        let wanted = if self.task == TaskKind::Survival {
            Role::TimeToEvent
        } else {
            Role::Label
        };
        let role_name = role_str(wanted);
        let candidates: Vec<&str> = manifest
            .fields_with_role(wanted)
            .map(|f| f.name.as_str())
            .collect();
        match manifest.field(&self.target) {
            Some(field) if field.role == wanted => {}
            Some(field) => {
                return Err(format!(
                    "`{}` is a `{}` field of dataset `{}`; a {} task needs a `{role_name}` \
                     field ({})",
                    self.target,
                    role_str(field.role),
                    manifest.name,
                    self.task.as_str(),
                    candidates_text(&candidates)
                ));
            }
            None => {
                return Err(format!(
                    "dataset `{}` has no field `{}` ({})",
                    manifest.name,
                    self.target,
                    candidates_text(&candidates)
                ));
            }
        }
        if self.task == TaskKind::Survival && manifest.fields_with_role(Role::Event).count() != 1 {
            return Err(format!(
                "dataset `{}` must declare exactly one `event` field to pair with `{}`",
                manifest.name, self.target
            ));
        }
        Ok(())
    }

    fn validate_datasets(&self, issues: &mut Issues) {
        if self.datasets.is_empty() {
            issues.add("datasets", "name at least one dataset");
        }
        for (index, slug) in self.datasets.iter().enumerate() {
            if let Err(message) = check_slug(slug) {
                issues.add(format!("datasets[{index}]"), message);
            } else if self.datasets[..index].contains(slug) {
                issues.add(
                    format!("datasets[{index}]"),
                    format!("`{slug}` is listed twice"),
                );
            }
        }
    }

    fn validate_split(&self, issues: &mut Issues) {
        let parts = [
            ("split.train", self.split.train),
            ("split.public_test", self.split.public_test),
            ("split.private_test", self.split.private_test),
        ];
        let mut all_in_range = true;
        for (path, fraction) in parts {
            if !(fraction.is_finite() && fraction > 0.0 && fraction < 1.0) {
                issues.add(
                    path,
                    format!("must be a fraction strictly between 0 and 1, got {fraction}"),
                );
                all_in_range = false;
            }
        }
        let sum: f64 = parts.iter().map(|(_, f)| f).sum();
        if all_in_range && (sum - 1.0).abs() > 1e-9 {
            issues.add(
                "split",
                format!("train + public_test + private_test must sum to 1, got {sum}"),
            );
        }
    }

    fn validate_phases(&self, issues: &mut Issues) {
        if self.phases.is_empty() {
            issues.add("phases", "define at least one phase");
        }
        let mut finals = 0;
        for (index, phase) in self.phases.iter().enumerate() {
            let at = |field: &str| format!("phases[{index}].{field}");
            if phase.name.trim().is_empty() {
                issues.add(at("name"), "must not be empty");
            } else if self.phases[..index].iter().any(|p| p.name == phase.name) {
                issues.add(
                    at("name"),
                    format!("`{}` is used by an earlier phase", phase.name),
                );
            }
            if phase.ends_at <= phase.starts_at {
                issues.add(
                    at("ends_at"),
                    format!("must be after starts_at ({})", phase.starts_at.to_rfc3339()),
                );
            }
            if phase.kind == PhaseKind::Final {
                finals += 1;
                if finals > 1 {
                    issues.add(at("kind"), "only one final phase is allowed");
                }
            }
            if let Some(previous) = index.checked_sub(1).and_then(|i| self.phases.get(i)) {
                if phase.starts_at < previous.ends_at {
                    issues.add(
                        at("starts_at"),
                        format!(
                            "overlaps phase `{}`, which ends at {}",
                            previous.name,
                            previous.ends_at.to_rfc3339()
                        ),
                    );
                }
                if phase.kind < previous.kind {
                    issues.add(
                        at("kind"),
                        format!(
                            "{:?} cannot follow {:?}; phases go development, public, final",
                            phase.kind, previous.kind
                        ),
                    );
                }
            }
        }
    }

    fn validate_sandbox(&self, issues: &mut Issues) {
        let sandbox = &self.sandbox;
        if !(16..=16_384).contains(&sandbox.memory_mib) {
            issues.add(
                "sandbox.memory_mib",
                format!("must be between 16 and 16384, got {}", sandbox.memory_mib),
            );
        }
        if !(1..=86_400).contains(&sandbox.time_limit_seconds) {
            issues.add(
                "sandbox.time_limit_seconds",
                format!(
                    "must be between 1 and 86400, got {}",
                    sandbox.time_limit_seconds
                ),
            );
        }
        if !(1..=256 * 1024 * 1024).contains(&sandbox.module_max_bytes) {
            issues.add(
                "sandbox.module_max_bytes",
                format!(
                    "must be between 1 and 268435456, got {}",
                    sandbox.module_max_bytes
                ),
            );
        }
        if !(1..=3600).contains(&sandbox.compile_timeout_seconds) {
            issues.add(
                "sandbox.compile_timeout_seconds",
                format!(
                    "must be between 1 and 3600, got {}",
                    sandbox.compile_timeout_seconds
                ),
            );
        }
        if sandbox.fuel == Some(0) {
            issues.add("sandbox.fuel", "must be positive when given");
        }
    }

    fn validate_privacy(&self, issues: &mut Issues) {
        let privacy = &self.privacy;
        let epsilon = privacy.public_score.epsilon_per_release;
        let budget = privacy.budget_per_team_per_dataset;
        let epsilon_ok = epsilon.is_finite() && epsilon > 0.0;
        let budget_ok = budget.is_finite() && budget > 0.0;
        if !epsilon_ok {
            issues.add(
                "privacy.public_score.epsilon_per_release",
                format!("must be a positive number, got {epsilon}"),
            );
        }
        if !budget_ok {
            issues.add(
                "privacy.budget_per_team_per_dataset",
                format!("must be a positive number, got {budget}"),
            );
        }
        let final_epsilon = self.final_reserved_epsilon();
        if let Some(value) = privacy.final_release.site_epsilon {
            if !(value.is_finite() && value > 0.0) {
                issues.add(
                    "privacy.final_release.site_epsilon",
                    format!("must be a positive number, got {value}"),
                );
            } else if privacy.level != PrivacyLevel::Row {
                issues.add(
                    "privacy.final_release.site_epsilon",
                    "per-hospital scores are released at `level: row` only: at `label` the \
                     declared part sizes bound the whole test part, not one hospital's rows",
                );
            }
        }
        if let Some(value) = privacy.final_release.epsilon
            && !(value.is_finite() && value > 0.0)
        {
            issues.add(
                "privacy.final_release.epsilon",
                format!("must be a positive number, got {value}"),
            );
        } else if epsilon_ok && budget_ok && epsilon + final_epsilon > budget + 1e-12 {
            issues.add(
                "privacy.public_score.epsilon_per_release",
                format!(
                    "a team's first real run reserves {epsilon} for its public score and \
                     {final_epsilon} for its final score (with its per-hospital view), more \
                     than the whole budget_per_team_per_dataset ({budget})"
                ),
            );
        }
        match (
            privacy.public_score.mechanism,
            privacy.public_score.ladder_step,
        ) {
            (PublicScoreMechanism::Laplace, Some(_)) => issues.add(
                "privacy.public_score.ladder_step",
                "only applies to mechanism `ladder`",
            ),
            (PublicScoreMechanism::Ladder, Some(step)) if !(step.is_finite() && step > 0.0) => {
                issues.add(
                    "privacy.public_score.ladder_step",
                    format!("must be a positive number, got {step}"),
                )
            }
            _ => {}
        }
        if privacy.suppression_threshold == 0 {
            issues.add("privacy.suppression_threshold", "must be at least 1");
        }
        self.validate_level(issues);
        if let Some(delay) = privacy.release_delay_seconds {
            let worst = self.worst_case_run_seconds();
            if u64::from(delay) < worst {
                issues.add(
                    "privacy.release_delay_seconds",
                    format!(
                        "must be at least {worst} s, the worst case of a real run \
                         (compilation, then {} block(s) up to their deadline): a run released \
                         later than its slot would be released at a time that depends on the data",
                        self.blocks_per_run()
                    ),
                );
            } else if delay > 7 * 86_400 {
                issues.add(
                    "privacy.release_delay_seconds",
                    format!("must be at most 604800 (a week), got {delay}"),
                );
            }
        }
    }

    /// The fields of the guarantee level: each level's own, and a releasable metric.
    fn validate_level(&self, issues: &mut Issues) {
        let privacy = &self.privacy;
        let label_only = [
            ("privacy.min_test_rows", privacy.min_test_rows.is_some()),
            (
                "privacy.min_test_class_rows",
                privacy.min_test_class_rows.is_some(),
            ),
            ("privacy.max_releases", privacy.max_releases.is_some()),
            ("privacy.score_grid", privacy.score_grid.is_some()),
        ];
        match privacy.level {
            PrivacyLevel::Row => {
                for (path, given) in label_only {
                    if given {
                        issues.add(path, "only applies to `level: label`");
                    }
                }
                let blocks = self.blocks_per_run();
                if !(2..=MAX_BLOCKS).contains(&blocks) {
                    issues.add(
                        "privacy.blocks",
                        format!("must be between 2 and {MAX_BLOCKS}, got {blocks}"),
                    );
                } else if privacy.min_rows > 0 && privacy.min_rows < 2 * u64::from(blocks) {
                    issues.add(
                        "privacy.min_rows",
                        format!(
                            "{} rows cannot fill {blocks} blocks with a training and a test \
                             row each; declare at least {}",
                            privacy.min_rows,
                            2 * u64::from(blocks)
                        ),
                    );
                }
            }
            PrivacyLevel::Label => {
                if privacy.blocks.is_some() {
                    issues.add("privacy.blocks", "only applies to `level: row`");
                }
                match privacy.max_releases {
                    None => issues.add(
                        "privacy.max_releases",
                        "`level: label` caps what scores reveal about training rows by a \
                         number of releases per team; declare it",
                    ),
                    Some(n) if !(1..=10_000).contains(&n) => issues.add(
                        "privacy.max_releases",
                        format!("must be between 1 and 10000, got {n}"),
                    ),
                    Some(_) => {}
                }
                if let Some(grid) = privacy.score_grid
                    && !(grid.is_finite() && grid > 0.0)
                {
                    issues.add(
                        "privacy.score_grid",
                        format!("must be a positive number, got {grid}"),
                    );
                }
                match privacy.min_test_rows {
                    None => issues.add(
                        "privacy.min_test_rows",
                        "`level: label` takes its sensitivity from declared part sizes; \
                         declare the fewest rows a test part may have",
                    ),
                    Some(n) if n < 2 => issues.add(
                        "privacy.min_test_rows",
                        format!("must be at least 2, got {n}"),
                    ),
                    Some(_) => {}
                }
            }
        }
        let Some(metric) = self.scorer_metric() else {
            return;
        };
        let clamp = self.privacy.public_score.clamp_bounds();
        if let Err(err) = medarena_scorer::release_range(metric, &clamp) {
            issues.add(
                "metric",
                format!(
                    "`{}` cannot be released with noise: {err} (list it under \
                     `organizer_metrics`)",
                    self.metric
                ),
            );
            return;
        }
        if privacy.level == PrivacyLevel::Label
            && privacy.min_test_rows.is_some()
            && let Err(err) = score_sensitivity(metric, &self.declared_facts(), &clamp)
        {
            let path = if matches!(err, medarena_scorer::PrivacyError::UnboundedSensitivity { reason, .. } if reason.contains("one class"))
            {
                "privacy.min_test_class_rows"
            } else {
                "metric"
            };
            issues.add(
                path,
                format!(
                    "`{}` cannot be released with noise at `level: label`: {err} (at \
                     `level: row` every metric with a bounded range can)",
                    self.metric
                ),
            );
        }
    }

    /// Blocks of one real run: k on the `row` level, 1 on the `label` level.
    pub fn blocks_per_run(&self) -> u32 {
        match self.privacy.level {
            PrivacyLevel::Row => self.privacy.blocks.unwrap_or(DEFAULT_BLOCKS),
            PrivacyLevel::Label => 1,
        }
    }

    /// ε of each team's released private score.
    pub fn final_epsilon(&self) -> f64 {
        self.privacy
            .final_release
            .epsilon
            .unwrap_or(self.privacy.public_score.epsilon_per_release)
    }

    /// What a team's first real run reserves for publication: the final score's ε plus the
    /// per-hospital view's.
    pub fn final_reserved_epsilon(&self) -> f64 {
        self.final_epsilon() + self.privacy.final_release.site_epsilon.unwrap_or(0.0)
    }

    /// The declared lower bounds on a test part (`label` level).
    pub fn declared_facts(&self) -> PublicPartFacts {
        PublicPartFacts {
            rows: usize::try_from(self.privacy.min_test_rows.unwrap_or(0)).unwrap_or(usize::MAX),
            minority_class_rows: self
                .privacy
                .min_test_class_rows
                .map(|m| usize::try_from(m).unwrap_or(usize::MAX)),
        }
    }

    /// The longest a real run can take: compilation, then every block up to its deadline,
    /// plus a margin for process start-up and scoring.
    pub fn worst_case_run_seconds(&self) -> u64 {
        self.worst_case_seconds(self.blocks_per_run())
    }

    /// The longest a real run of `blocks` blocks can take (an analysis declares its own).
    pub fn worst_case_seconds(&self, blocks: u32) -> u64 {
        let sandbox = &self.sandbox;
        u64::from(sandbox.compile_timeout_seconds)
            + u64::from(blocks) * u64::from(sandbox.time_limit_seconds)
            + RELEASE_MARGIN_SECONDS
    }

    /// How long after a real run is queued its result is released.
    pub fn release_delay_seconds(&self) -> u64 {
        match self.privacy.release_delay_seconds {
            Some(delay) => u64::from(delay),
            None => self.worst_case_run_seconds().div_ceil(60) * 60,
        }
    }

    /// Every public parameter of the competition's releases, computed from the bundle alone
    /// (`None` only for a bundle that failed validation).
    pub fn release_terms(&self) -> Option<ReleaseTerms> {
        let metric = self.scorer_metric()?;
        let privacy = &self.privacy;
        let clamp = privacy.public_score.clamp_bounds();
        let range = medarena_scorer::release_range(metric, &clamp).ok()?;
        let blocks = self.blocks_per_run();
        let sensitivity = match privacy.level {
            PrivacyLevel::Row => {
                medarena_scorer::row_sensitivity(range, blocks as usize)
                    .ok()?
                    .value
            }
            PrivacyLevel::Label => {
                score_sensitivity(metric, &self.declared_facts(), &clamp)
                    .ok()?
                    .value
            }
        };
        let public =
            medarena_scorer::calibrate(sensitivity, privacy.public_score.epsilon_per_release)
                .ok()?;
        let last = medarena_scorer::calibrate(sensitivity, self.final_epsilon()).ok()?;
        let ladder_step =
            (privacy.public_score.mechanism == PublicScoreMechanism::Ladder).then(|| {
                privacy
                    .public_score
                    .ladder_step
                    .unwrap_or_else(|| medarena_scorer::default_ladder_step(public.half_width_95))
            });
        let score_grid = (privacy.level == PrivacyLevel::Label).then(|| {
            privacy
                .score_grid
                .unwrap_or((range.max - range.min) / 100.0)
        });
        let max_bits = match (privacy.max_releases, score_grid) {
            (Some(releases), Some(grid)) => medarena_scorer::release::grid_levels(range, grid)
                .map(|levels| f64::from(releases) * (levels as f64).log2()),
            _ => None,
        };
        Some(ReleaseTerms {
            level: privacy.level,
            blocks,
            range: [range.min, range.max],
            sensitivity,
            public_epsilon: privacy.public_score.epsilon_per_release,
            public_noise_scale: public.noise_scale,
            public_half_width_95: public.half_width_95,
            final_epsilon: self.final_epsilon(),
            final_noise_scale: last.noise_scale,
            final_half_width_95: last.half_width_95,
            final_show: privacy.final_release.show,
            ladder_step,
            score_grid,
            max_releases: privacy.max_releases,
            max_bits,
            release_delay_seconds: self.release_delay_seconds(),
            worst_case_run_seconds: self.worst_case_run_seconds(),
        })
    }

    /// The phase open at `now`, if any.
    pub fn phase_at(&self, now: Timestamp) -> Option<&PhaseSpec> {
        self.phases.iter().find(|phase| phase.contains(now))
    }

    /// The metric's entry in [`METRICS`]; always present for a validated bundle.
    pub fn metric_info(&self) -> Option<&'static MetricInfo> {
        metric_info(&self.metric)
    }
}

#[derive(Default)]
struct Issues(Vec<FieldIssue>);

impl Issues {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldIssue {
            path: path.into(),
            message: message.into(),
        });
    }
}

fn check_text(issues: &mut Issues, path: &str, text: &str, max_chars: usize) {
    if text.trim().is_empty() {
        issues.add(path, "must not be empty");
    } else if text.chars().count() > max_chars {
        issues.add(path, format!("must be at most {max_chars} characters"));
    }
}

/// Slugs appear in URLs and file names: 2 to 64 of `a-z 0-9 -`, starting with a letter or
/// digit.
pub fn check_slug(slug: &str) -> Result<(), String> {
    let valid_chars = slug
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let starts_well = slug.bytes().next().is_some_and(|b| b != b'-');
    if (2..=64).contains(&slug.len()) && valid_chars && starts_well {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a slug: use 2 to 64 lowercase letters, digits and dashes, not starting with a dash",
            slug.chars().take(80).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../examples/bundles/cardiac-event/competition.yaml");

    fn issues_of(yaml: &str) -> Vec<FieldIssue> {
        match Bundle::from_yaml(yaml) {
            Ok(_) => Vec::new(),
            Err(err) => err.issues,
        }
    }

    fn paths_of(yaml: &str) -> Vec<String> {
        issues_of(yaml).into_iter().map(|i| i.path).collect()
    }

    #[test]
    fn the_example_bundle_is_valid() {
        let bundle = Bundle::from_yaml(EXAMPLE).expect("example bundle");
        assert_eq!(bundle.task, TaskKind::BinaryClassification);
        assert_eq!(bundle.metric, "roc_auc");
        assert_eq!(bundle.phases.len(), 3);
        assert_eq!(bundle.phases[0].kind, PhaseKind::Development);
        assert!(bundle.metric_info().is_some_and(|m| m.higher_is_better));
    }

    #[test]
    fn shape_errors_name_the_field_path() {
        let yaml = EXAMPLE.replace("mechanism: laplace", "mechanism: gaussian");
        let issues = issues_of(&yaml);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, "privacy.public_score.mechanism");
        assert!(
            issues[0].message.contains("gaussian"),
            "{}",
            issues[0].message
        );

        let yaml = EXAMPLE.replace("starts_at: 2026-02-01T00:00:00Z", "starts_at: next tuesday");
        assert_eq!(paths_of(&yaml), ["phases[1].starts_at"]);

        let yaml = EXAMPLE.replace("  seed: 20250301", "  seed: 20250301\n  sede: 1");
        let issues = issues_of(&yaml);
        assert_eq!(issues[0].path, "split.sede");
        assert!(issues[0].message.contains("sede"), "{}", issues[0].message);

        let yaml = EXAMPLE.replace(
            "submissions_per_team_per_day: 5",
            "submissions_per_team_per_day: -5",
        );
        assert_eq!(paths_of(&yaml), ["limits.submissions_per_team_per_day"]);
    }

    #[test]
    fn missing_fields_and_garbage_are_reported() {
        let yaml = EXAMPLE.replace("metric: roc_auc\n", "");
        let issues = issues_of(&yaml);
        assert_eq!(issues.len(), 1);
        assert!(issues[0].message.contains("metric"), "{issues:?}");
        assert!(!issues_of("{{{{").is_empty());
        assert!(!issues_of("").is_empty());
        assert!(!issues_of("- just\n- a list\n").is_empty());
    }

    #[test]
    fn semantic_errors_are_all_collected_with_paths() {
        let yaml = EXAMPLE
            .replace("version: 1", "version: 2")
            .replace("slug: cardiac-event-1y", "slug: Cardiac_Event")
            .replace("metric: roc_auc", "metric: rmse")
            .replace("train: 0.6", "train: 0.7")
            .replace("epsilon_per_release: 0.5", "epsilon_per_release: 50.0")
            .replace("suppression_threshold: 10", "suppression_threshold: 0")
            .replace("memory_mib: 256", "memory_mib: 1");
        let paths = paths_of(&yaml);
        for expected in [
            "version",
            "slug",
            "metric",
            "split",
            "sandbox.memory_mib",
            "privacy.public_score.epsilon_per_release",
            "privacy.suppression_threshold",
        ] {
            assert!(
                paths.iter().any(|p| p == expected),
                "{expected} missing from {paths:?}"
            );
        }
    }

    #[test]
    fn phases_must_be_ordered_and_not_overlap() {
        let yaml = EXAMPLE.replace(
            "ends_at: 2026-04-01T00:00:00Z",
            "ends_at: 2026-01-15T00:00:00Z",
        );
        assert!(paths_of(&yaml).contains(&"phases[1].ends_at".to_owned()));

        let yaml = EXAMPLE.replace(
            "starts_at: 2026-04-01T00:00:00Z",
            "starts_at: 2026-03-01T00:00:00Z",
        );
        assert_eq!(paths_of(&yaml), ["phases[2].starts_at"]);

        let yaml = EXAMPLE.replace("kind: development", "kind: final");
        let paths = paths_of(&yaml);
        assert!(paths.contains(&"phases[1].kind".to_owned()), "{paths:?}");
        assert!(paths.contains(&"phases[2].kind".to_owned()), "{paths:?}");

        let yaml = EXAMPLE.replace("name: public", "name: development");
        assert_eq!(paths_of(&yaml), ["phases[1].name"]);
    }

    #[test]
    fn datasets_and_ladder_rules() {
        let yaml = EXAMPLE.replace(
            "  - cardiac-events\n",
            "  - cardiac-events\n  - cardiac-events\n  - ../etc\n",
        );
        assert_eq!(paths_of(&yaml), ["datasets[1]", "datasets[2]"]);

        let yaml = EXAMPLE.replace(
            "epsilon_per_release: 0.5",
            "epsilon_per_release: 0.5\n    ladder_step: 0.01",
        );
        assert_eq!(paths_of(&yaml), ["privacy.public_score.ladder_step"]);
        let yaml = yaml.replace("mechanism: laplace", "mechanism: ladder");
        assert!(paths_of(&yaml).is_empty());
    }

    #[test]
    fn phase_lookup_uses_half_open_intervals() {
        let bundle = Bundle::from_yaml(EXAMPLE).expect("example bundle");
        let public = &bundle.phases[1];
        let start = Timestamp::from_datetime(public.starts_at);
        assert_eq!(
            bundle.phase_at(start).map(|p| p.name.as_str()),
            Some("public")
        );
        assert_eq!(
            bundle
                .phase_at(Timestamp(start.0 - 1))
                .map(|p| p.name.as_str()),
            Some("development")
        );
        let end = Timestamp::from_datetime(bundle.phases[2].ends_at);
        assert!(bundle.phase_at(end).is_none());
    }

    #[test]
    fn the_metric_table_follows_the_scorer() {
        for info in METRICS {
            let metric: Metric = info.name.parse().expect("a scorer metric");
            assert_eq!(metric.name(), info.name);
            assert_eq!(
                metric.direction() == medarena_scorer::Direction::HigherIsBetter,
                info.higher_is_better,
                "{}",
                info.name
            );
        }
        assert_eq!(metric_info("auc").map(|m| m.name), Some("roc_auc"));
        assert_eq!(
            metric_info("concordance").map(|m| (m.name, m.tasks)),
            Some(("c_index", SURVIVAL))
        );
    }

    const SURVIVAL_EXAMPLE: &str =
        include_str!("../examples/bundles/liver-survival/competition.yaml");

    #[test]
    fn a_survival_bundle_validates_and_its_settings_are_checked() {
        let bundle = Bundle::from_yaml(SURVIVAL_EXAMPLE).expect("the survival example is valid");
        assert_eq!(bundle.task, TaskKind::Survival);
        assert_eq!(
            bundle.survival.as_ref().map(|s| s.horizons.clone()),
            Some(vec![365.0, 1095.0, 1825.0])
        );
        let yaml = SURVIVAL_EXAMPLE.replace("[365, 1095, 1825]", "[365, 365, -1]");
        assert_eq!(
            paths_of(&yaml),
            ["survival.horizons[1]", "survival.horizons[2]"]
        );
        // Survival metrics and survival settings on a binary task.
        let yaml = SURVIVAL_EXAMPLE.replace("task: survival", "task: binary_classification");
        assert_eq!(
            paths_of(&yaml),
            [
                "metric",
                "organizer_metrics[0]",
                "organizer_metrics[1]",
                "organizer_metrics[2]",
                "survival"
            ]
        );
        let yaml = EXAMPLE.replace("metric: roc_auc", "metric: c_index");
        assert_eq!(paths_of(&yaml), ["metric"]);
        let yaml = SURVIVAL_EXAMPLE.replace("tau: 1825", "tau: -3");
        assert_eq!(paths_of(&yaml), ["survival.tau"]);
    }

    #[test]
    fn survival_metrics_get_their_horizons_and_curves_and_unreleasable_ones_stay_with_organizers() {
        // The example's organizers read the integrated Brier score: curves at the horizons.
        let bundle = Bundle::from_yaml(SURVIVAL_EXAMPLE).expect("survival example");
        assert_eq!(bundle.survival_grid(), Some(vec![365.0, 1095.0, 1825.0]));
        assert_eq!(bundle.score_context().tau, Some(1825.0));
        let risk_only = SURVIVAL_EXAMPLE.replace(", integrated_brier]", "]");
        let bundle = Bundle::from_yaml(&risk_only).expect("risk scores only");
        assert_eq!(bundle.survival_grid(), None);
        // The integrated Brier score reads curves at the horizons, and needs two of them.
        let ibs = SURVIVAL_EXAMPLE.replace("metric: c_index", "metric: integrated_brier");
        let bundle = Bundle::from_yaml(&ibs).expect("integrated Brier at row level");
        assert_eq!(bundle.survival_grid(), Some(vec![365.0, 1095.0, 1825.0]));
        let one = ibs.replace("[365, 1095, 1825]", "[365]");
        let issues = issues_of(&one);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].path, "survival.horizons");
        assert!(
            issues[0].message.contains("at least two horizons"),
            "{issues:?}"
        );
        // The Brier score at a horizon reads exactly one.
        let at = SURVIVAL_EXAMPLE.replace("metric: c_index", "metric: brier_at_horizon");
        assert_eq!(paths_of(&at), ["survival.horizons"]);
        // Calibration slope cannot be released: refused as the metric, with the reason...
        let slope = EXAMPLE.replace("metric: roc_auc", "metric: calibration_slope");
        let issues = issues_of(&slope);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].path, "metric");
        assert!(
            issues[0].message.contains("no bounded range"),
            "{}",
            issues[0].message
        );
        // ... and accepted where organizers alone see it.
        let organizers = EXAMPLE.replace(
            "metric: roc_auc\n",
            "metric: roc_auc\norganizer_metrics: [calibration_slope, calibration_intercept, ece]\n",
        );
        let bundle = Bundle::from_yaml(&organizers).expect("organizer metrics");
        assert_eq!(bundle.scorer_organizer_metrics().len(), 3);
        assert_eq!(
            paths_of(&organizers.replace("ece]", "mae]")),
            ["organizer_metrics[2]"]
        );
    }

    #[test]
    fn the_target_must_be_a_label_or_a_survival_time_of_the_manifest() {
        use medarena_datasets_spec::Manifest;
        let heart = Manifest::from_str(medarena_datasets_spec::example::HEART_MANIFEST)
            .expect("heart manifest");
        let liver = Manifest::from_str(medarena_datasets_spec::example::LIVER_MANIFEST)
            .expect("liver manifest");
        let binary = Bundle::from_yaml(EXAMPLE).expect("example");
        let survival = Bundle::from_yaml(SURVIVAL_EXAMPLE).expect("survival example");
        assert_eq!(binary.check_target(&heart), Ok(()));
        assert_eq!(survival.check_target(&liver), Ok(()));
        let error = survival
            .check_target(&heart)
            .expect_err("no `days` in heart");
        assert!(error.contains("no field `days`"), "{error}");
        assert!(error.contains("it declares none"), "{error}");
        let error = binary
            .check_target(&liver)
            .expect_err("no `event_1y` in liver");
        assert!(error.contains("it declares none"), "{error}");
        let mut on_time = binary.clone();
        on_time.target = "days".to_owned();
        let error = on_time
            .check_target(&liver)
            .expect_err("days is not a label");
        assert!(error.contains("needs a `label` field"), "{error}");
        let mut on_feature = survival.clone();
        on_feature.target = "bilirubin".to_owned();
        let error = on_feature.check_target(&liver).expect_err("a feature");
        assert!(
            error.contains("needs a `time_to_event` field (it declares days)"),
            "{error}"
        );
    }

    #[test]
    fn metrics_must_have_a_bounded_range_and_a_label_level_sensitivity() {
        // Row level: every metric with a bounded range, average precision included.
        let yaml = EXAMPLE.replace("metric: roc_auc", "metric: average_precision");
        assert!(paths_of(&yaml).is_empty(), "{:?}", issues_of(&yaml));
        let yaml = EXAMPLE.replace("metric: roc_auc", "metric: log_loss");
        let issues = issues_of(&yaml);
        assert_eq!(paths_of(&yaml), ["metric"]);
        assert!(issues[0].message.contains("noise"), "{}", issues[0].message);
        let yaml = yaml.replace(
            "epsilon_per_release: 0.5",
            "epsilon_per_release: 0.5\n    probability_floor: 0.01",
        );
        assert!(paths_of(&yaml).is_empty(), "{:?}", issues_of(&yaml));
        // Label level: average precision has no useful label sensitivity.
        let label = label_level(&EXAMPLE.replace("metric: roc_auc", "metric: average_precision"));
        assert_eq!(paths_of(&label), ["metric"], "{:?}", issues_of(&label));
    }

    /// The example at the `label` level with every field that level needs.
    fn label_level(yaml: &str) -> String {
        yaml.replace("  level: row\n", "  level: label\n").replace(
            "  blocks: 100\n",
            "  min_test_rows: 100\n  min_test_class_rows: 20\n  max_releases: 30\n",
        )
    }

    #[test]
    fn each_level_has_its_own_fields() {
        let label = label_level(EXAMPLE);
        let bundle = Bundle::from_yaml(&label).expect("label-level example");
        let terms = bundle.release_terms().expect("terms");
        assert_eq!(terms.level, PrivacyLevel::Label);
        assert_eq!(terms.blocks, 1);
        assert!((terms.sensitivity - 1.0 / 20.0).abs() < 1e-12);
        assert_eq!(terms.score_grid, Some(0.01));
        // 30 releases on a grid of 101 levels: at most 30 · log2(101) bits.
        assert!((terms.max_bits.unwrap_or(0.0) - 30.0 * 101f64.log2()).abs() < 1e-9);

        let missing = label
            .replace("  max_releases: 30\n", "")
            .replace("  min_test_rows: 100\n", "");
        let paths = paths_of(&missing);
        assert!(
            paths.contains(&"privacy.max_releases".to_owned()),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"privacy.min_test_rows".to_owned()),
            "{paths:?}"
        );
        let no_class = label.replace("  min_test_class_rows: 20\n", "");
        assert_eq!(paths_of(&no_class), ["privacy.min_test_class_rows"]);
        let mixed = EXAMPLE.replace("  blocks: 100\n", "  blocks: 100\n  max_releases: 5\n");
        assert_eq!(paths_of(&mixed), ["privacy.max_releases"]);
        let one_block = EXAMPLE.replace("  blocks: 100\n", "  blocks: 1\n");
        assert_eq!(paths_of(&one_block), ["privacy.blocks"]);
        let too_few_rows = EXAMPLE.replace("  min_rows: 1000\n", "  min_rows: 150\n");
        assert_eq!(paths_of(&too_few_rows), ["privacy.min_rows"]);
    }

    #[test]
    fn release_terms_follow_the_declaration_and_the_delay_covers_the_worst_case() {
        let bundle = Bundle::from_yaml(EXAMPLE).expect("example");
        let terms = bundle.release_terms().expect("terms");
        assert_eq!((terms.level, terms.blocks), (PrivacyLevel::Row, 100));
        assert!((terms.sensitivity - 0.01).abs() < 1e-12);
        assert!((terms.public_noise_scale - 0.02).abs() < 1e-6, "{terms:?}");
        assert!((terms.public_half_width_95 - 0.02 * 20f64.ln()).abs() < 1e-5);
        // Compilation 10 s + 100 blocks × 1 s + 5 s, rounded up to a minute.
        assert_eq!(terms.worst_case_run_seconds, 115);
        assert_eq!(terms.release_delay_seconds, 120);
        let short = EXAMPLE.replace(
            "  # release_delay_seconds: 120\n",
            "  release_delay_seconds: 60\n",
        );
        let issues = issues_of(&short);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].path, "privacy.release_delay_seconds");
        assert!(issues[0].message.contains("115"), "{}", issues[0].message);
        let enough = short.replace("release_delay_seconds: 60", "release_delay_seconds: 115");
        assert!(paths_of(&enough).is_empty());
        // The first real run reserves the public and the final ε: both must fit the cap.
        let tight = EXAMPLE.replace(
            "budget_per_team_per_dataset: 6.0",
            "budget_per_team_per_dataset: 0.8",
        );
        assert_eq!(
            paths_of(&tight),
            ["privacy.public_score.epsilon_per_release"]
        );
        // The Ladder's default step follows the noise: ±0.06 rounds up to 0.1.
        let ladder = EXAMPLE.replace("mechanism: laplace", "mechanism: ladder");
        let terms = Bundle::from_yaml(&ladder)
            .expect("ladder")
            .release_terms()
            .expect("terms");
        assert_eq!(terms.ladder_step, Some(0.1));
    }

    #[test]
    fn slugs() {
        assert!(check_slug("cardiac-events").is_ok());
        assert!(check_slug("a1").is_ok());
        for bad in ["", "a", "-x", "A-b", "a_b", "a/b", &"x".repeat(65)] {
            assert!(check_slug(bad).is_err(), "{bad}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// Whatever the text, parsing returns (never panics), and every error names a
            /// path and says something.
            #[test]
            fn any_text_gets_a_located_answer(text in "\\PC{0,300}") {
                if let Err(err) = Bundle::from_yaml(&text) {
                    prop_assert!(!err.issues.is_empty());
                    for issue in &err.issues {
                        prop_assert!(!issue.path.is_empty());
                        prop_assert!(!issue.message.is_empty());
                    }
                }
            }

            /// Lines of the example replaced by noise still give located errors, never a panic.
            #[test]
            fn corrupted_examples_fail_cleanly(line in 0usize..120, noise in "[ -~]{0,40}") {
                let mut lines: Vec<&str> = EXAMPLE.lines().collect();
                if line < lines.len() {
                    lines[line] = &noise;
                }
                if let Err(err) = Bundle::from_yaml(&lines.join("\n")) {
                    prop_assert!(err.issues.iter().all(|i| !i.path.is_empty()));
                }
            }

            /// The split is accepted exactly when the fractions are in (0, 1) and sum to 1.
            #[test]
            fn split_fractions(train in 0.01f64..0.98, public in 0.01f64..0.98) {
                let private = 1.0 - train - public;
                let yaml = EXAMPLE
                    .replace("train: 0.6", &format!("train: {train}"))
                    .replace("public_test: 0.2", &format!("public_test: {public}"))
                    .replace("private_test: 0.2", &format!("private_test: {private}"));
                let valid = private > 0.0 && private < 1.0;
                let split_paths = issues_of(&yaml).into_iter().filter(|i| i.path.starts_with("split")).count();
                prop_assert_eq!(split_paths == 0, valid, "train {} public {} private {}", train, public, private);
            }
        }
    }
}
