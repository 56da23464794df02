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
    /// The column of the dataset that submissions predict.
    pub target: String,
    /// The metric by name (see [`metric_info`]).
    pub metric: String,
    /// Dataset slugs; each must exist and be approved when the competition is created.
    pub datasets: Vec<String>,
    pub split: SplitSpec,
    pub phases: Vec<PhaseSpec>,
    #[serde(default)]
    pub limits: SubmissionLimits,
    #[serde(default)]
    pub sandbox: SandboxLimits,
    pub privacy: PrivacySpec,
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
    /// Wall-clock deadline of one run (fit + predict).
    pub time_limit_seconds: u32,
    pub module_max_bytes: u64,
    /// Optional instruction budget; `None` relies on the deadline alone.
    pub fuel: Option<u64>,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory_mib: 512,
            time_limit_seconds: 120,
            module_max_bytes: 16 * 1024 * 1024,
            fuel: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivacySpec {
    pub public_score: PublicScoreSpec,
    /// Total ε a team may spend on one dataset in this competition.
    pub budget_per_team_per_dataset: f64,
    /// Aggregates over fewer rows than this are suppressed.
    pub suppression_threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicScoreSpec {
    pub mechanism: PublicScoreMechanism,
    /// ε charged for each released public score.
    pub epsilon_per_release: f64,
    /// Step of the Ladder (only with `mechanism: ladder`).
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

    /// The Ladder's step: the declared one, else 0.01 (a hundredth of a [0, 1] metric).
    pub fn ladder_step_or_default(&self) -> f64 {
        self.ladder_step.unwrap_or(DEFAULT_LADDER_STEP)
    }
}

/// The Ladder's step when a bundle declares none.
pub const DEFAULT_LADDER_STEP: f64 = 0.01;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PublicScoreMechanism {
    /// Laplace noise on every released score.
    Laplace,
    /// The Ladder (Blum & Hardt): release only improvements by at least a step.
    Ladder,
}

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
/// step with the scorer. Survival metrics wait for a survival task kind.
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
];

/// The metric named `name` (a canonical name or one of the scorer's aliases).
pub fn metric_info(name: &str) -> Option<&'static MetricInfo> {
    let canonical = name.parse::<Metric>().ok()?.name();
    METRICS.iter().find(|m| m.name == canonical)
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
            let path = if path == "." {
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
        match metric_info(&self.metric) {
            None => issues.add(
                "metric",
                format!(
                    "unknown metric `{}`; known: {}",
                    self.metric,
                    METRICS
                        .iter()
                        .map(|m| m.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Some(info) if !info.tasks.contains(&self.task) => issues.add(
                "metric",
                format!("metric `{}` does not fit task {:?}", self.metric, self.task),
            ),
            Some(_) => self.validate_releasable(&mut issues),
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
        if self.agreement.trim().is_empty() {
            issues.add("agreement", "the data-use agreement text must not be empty");
        }
        issues.0
    }

    /// Public scores are released with noise, so the metric's sensitivity must be bounded
    /// (possibly by the declared clamping); the scorer decides.
    fn validate_releasable(&self, issues: &mut Issues) {
        let Some(metric) = self.scorer_metric() else {
            return;
        };
        let facts = PublicPartFacts {
            rows: 1000,
            minority_class_rows: Some(100),
        };
        if let Err(err) =
            score_sensitivity(metric, &facts, &self.privacy.public_score.clamp_bounds())
        {
            issues.add(
                "metric",
                format!("`{}` cannot be released with noise: {err}", self.metric),
            );
        }
    }

    /// The scorer's metric; always present for a validated bundle.
    pub fn scorer_metric(&self) -> Option<Metric> {
        self.metric.parse().ok()
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
        if epsilon_ok && budget_ok && epsilon > budget {
            issues.add(
                "privacy.public_score.epsilon_per_release",
                format!("{epsilon} exceeds the whole budget_per_team_per_dataset ({budget})"),
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
            .replace("epsilon_per_release: 0.2", "epsilon_per_release: 50.0")
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
            "epsilon_per_release: 0.2",
            "epsilon_per_release: 0.2\n    ladder_step: 0.01",
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
        assert!(metric_info("c_index").is_none());
    }

    #[test]
    fn metrics_must_be_releasable_with_noise() {
        let yaml = EXAMPLE.replace("metric: roc_auc", "metric: average_precision");
        let issues = issues_of(&yaml);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].path, "metric");
        assert!(issues[0].message.contains("noise"), "{}", issues[0].message);
        let yaml = EXAMPLE.replace("metric: roc_auc", "metric: log_loss");
        assert_eq!(paths_of(&yaml), ["metric"]);
        let yaml = yaml.replace(
            "epsilon_per_release: 0.2",
            "epsilon_per_release: 0.2\n    probability_floor: 0.01",
        );
        assert!(paths_of(&yaml).is_empty(), "{:?}", issues_of(&yaml));
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
