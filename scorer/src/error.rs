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
    #[error("{what}: every row is censored, so there is no event to estimate from")]
    AllCensored { what: &'static str },
    #[error(
        "metric `{metric}` needs survival curves S(t | x) on a time grid covering the declared \
         horizons (`Predictions::SurvivalCurves`), but was given one risk score per row"
    )]
    NeedsSurvivalCurves { metric: &'static str },
    #[error("metric `{metric}` needs {needed} in the score context, but {given} were given")]
    MissingHorizons {
        metric: &'static str,
        needed: &'static str,
        given: usize,
    },
    #[error("horizon {index} is {value}, {reason}")]
    BadHorizon {
        index: usize,
        value: f64,
        reason: &'static str,
    },
    #[error("{what} is {value}, {reason}")]
    BadParameter {
        what: &'static str,
        value: f64,
        reason: &'static str,
    },
    #[error(
        "horizon {horizon} lies outside the test follow-up [{first}, {last}) (the earliest \
         time up to, not including, the latest): the IPCW estimators are undefined there"
    )]
    HorizonOutsideFollowUp { horizon: f64, first: f64, last: f64 },
    #[error("horizon {horizon} lies outside the survival curves' time grid [{first}, {last}]")]
    HorizonOutsideCurves { horizon: f64, first: f64, last: f64 },
    #[error("survival curve time {column} is {value}, {reason}")]
    BadCurveTime {
        column: usize,
        value: f64,
        reason: &'static str,
    },
    #[error("row {row}, curve time {column}: survival probability {value} is {reason}")]
    BadCurveValue {
        row: usize,
        column: usize,
        value: f64,
        reason: &'static str,
    },
    #[error(
        "row {row}: time {time} is after the last training time {last}, where the censoring \
         distribution (and so the IPCW weight) is unknown; declare a truncation time or \
         horizons before it, or give training labels that reach it"
    )]
    AfterLastTrainingTime { row: usize, time: f64, last: f64 },
    #[error(
        "row {row}: the censoring survival estimated from the training labels is 0 at event \
         time {time}, so its IPCW weight is infinite"
    )]
    ZeroCensoringSurvival { row: usize, time: f64 },
    #[error("{metric}: the logistic fit did not converge in {iterations} Newton iterations")]
    NotConverged {
        metric: &'static str,
        iterations: usize,
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
        "metric `{metric}` cannot be released with calibrated noise: {reason}; show it to \
         organizers only"
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
