//! Errors of the scorer. Every variant says what was wrong and where, so that `arena`, `web`
//! and `cli` can pass the message on unchanged.

use thiserror::Error;

/// A metric could not be computed from the given labels and predictions.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetricError {
    #[error("unknown metric `{0}` (known: {known})", known = crate::metrics::Metric::ALL_NAMES.join(", "))]
    UnknownMetric(String),
    #[error("metric `{metric}` needs {expected} data but was given {given}")]
    WrongTask {
        metric: &'static str,
        expected: &'static str,
        given: &'static str,
    },
    #[error("{what}: {truth} truth rows but {predictions} prediction rows")]
    LengthMismatch {
        what: &'static str,
        truth: usize,
        predictions: usize,
    },
    #[error("no rows to score")]
    Empty,
    #[error("row {row}: {what} is {value}, which is not a finite number")]
    NotFinite {
        row: usize,
        what: &'static str,
        value: f64,
    },
    #[error("row {row}: {what} is {value}, outside {range}")]
    OutOfRange {
        row: usize,
        what: &'static str,
        value: f64,
        range: &'static str,
    },
    #[error("row {row}: class probabilities sum to {sum}, not 1 (tolerance {tolerance})")]
    ProbabilitiesDoNotSumToOne {
        row: usize,
        sum: f64,
        tolerance: f64,
    },
    #[error("row {row}: class label {label} is not below the number of classes {n_classes}")]
    ClassOutOfRange {
        row: usize,
        label: u32,
        n_classes: usize,
    },
    #[error("multiclass data needs at least 2 classes, got {0}")]
    TooFewClasses(usize),
    #[error("{metric} is undefined: {reason}")]
    Undefined {
        metric: &'static str,
        reason: &'static str,
    },
}

/// A privacy-layer operation was refused or failed. Refusals happen *before* anything is
/// released or charged.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PrivacyError {
    #[error(
        "privacy budget exceeded for team `{team}` on dataset `{dataset}`: this release needs \
         ε={requested_epsilon}, δ={requested_delta} but only ε={remaining_epsilon}, \
         δ={remaining_delta} remain{scope}"
    )]
    BudgetExceeded {
        team: String,
        dataset: String,
        requested_epsilon: f64,
        requested_delta: f64,
        remaining_epsilon: f64,
        remaining_delta: f64,
        /// Which limit was hit, e.g. " of the dataset's total across all teams".
        scope: &'static str,
    },
    #[error("no privacy budget is configured for dataset `{0}`; set one before releasing")]
    NoBudget(String),
    #[error("invalid privacy parameter: {0}")]
    InvalidParameter(String),
    #[error(
        "metric `{metric}` cannot be released with calibrated noise: {reason}; use the Ladder \
         or release it to organizers only"
    )]
    UnboundedSensitivity {
        metric: &'static str,
        reason: &'static str,
    },
    #[error("block {block}: output has {got} dimensions, the task declares {expected}")]
    BlockDimension {
        block: usize,
        got: usize,
        expected: usize,
    },
    #[error("OpenDP refused: {0}")]
    OpenDp(String),
    #[error(transparent)]
    Metric(#[from] MetricError),
}

impl From<opendp::error::Error> for PrivacyError {
    fn from(error: opendp::error::Error) -> Self {
        PrivacyError::OpenDp(format!(
            "{:?}: {}",
            error.variant,
            error.message.unwrap_or_default()
        ))
    }
}
