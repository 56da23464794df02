//! Metrics: what a score means (task, direction, range) and how to compute it.
//!
//! Conventions that differ between libraries are fixed here once:
//! - binary predictions are the probability (or any score, for AUC and average precision)
//!   of the positive class; hard decisions (accuracy, balanced accuracy, F1) predict
//!   positive when `p >= 0.5`;
//! - multiclass predictions are one probability per class, row-major, rows summing to 1;
//!   hard decisions take the first class with the highest probability (as `numpy.argmax`);
//! - survival predictions follow lifelines: a *higher* prediction means a *longer*
//!   expected survival (negate risk scores).

mod binary;
mod multiclass;
mod regression;
mod survival;

pub use binary::{
    accuracy, average_precision, balanced_accuracy, brier_score, f1_at_half, log_loss, roc_auc,
};
pub use multiclass::{macro_f1, multiclass_accuracy, multiclass_log_loss};
pub use regression::{mae, r2, rmse};
pub use survival::{ConcordanceCounts, concordance_counts, harrell_c_index};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::MetricError;

/// The kind of prediction task a metric scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Binary,
    Multiclass,
    Regression,
    Survival,
}

impl TaskKind {
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Binary => "binary",
            TaskKind::Multiclass => "multiclass",
            TaskKind::Regression => "regression",
            TaskKind::Survival => "survival",
        }
    }
}

/// Whether a larger score is a better one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
}

impl Direction {
    /// `true` when `a` is strictly better than `b`.
    pub fn is_better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::HigherIsBetter => a > b,
            Direction::LowerIsBetter => a < b,
        }
    }

    /// Orders scores best first (a total order; callers reject NaN before ranking).
    pub fn cmp_best_first(self, a: f64, b: f64) -> std::cmp::Ordering {
        match self {
            Direction::HigherIsBetter => b.total_cmp(&a),
            Direction::LowerIsBetter => a.total_cmp(&b),
        }
    }
}

/// The closed range a metric's value lies in (infinite ends where unbounded).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

/// A metric supported by the platform. Parse one from its name with [`str::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    RocAuc,
    AveragePrecision,
    LogLoss,
    Brier,
    Accuracy,
    BalancedAccuracy,
    F1,
    MulticlassAccuracy,
    MacroF1,
    MulticlassLogLoss,
    Rmse,
    Mae,
    R2,
    CIndex,
}

/// Labels of the rows being scored (the hidden truth).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Truth {
    Binary(Vec<bool>),
    /// Class indices `0..n_classes`.
    Multiclass {
        labels: Vec<u32>,
        n_classes: usize,
    },
    Regression(Vec<f64>),
    /// Follow-up time and whether the event was observed (`false` = censored).
    Survival {
        time: Vec<f64>,
        event: Vec<bool>,
    },
}

/// A submission's predictions for the same rows, in the same order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Predictions {
    /// One number per row: positive-class probability or score (binary), predicted value
    /// (regression), predicted survival time or any score increasing with it (survival).
    Scores(Vec<f64>),
    /// `n_classes` probabilities per row, row-major (multiclass).
    Probabilities { n_classes: usize, values: Vec<f64> },
}

impl Truth {
    pub fn task(&self) -> TaskKind {
        match self {
            Truth::Binary(_) => TaskKind::Binary,
            Truth::Multiclass { .. } => TaskKind::Multiclass,
            Truth::Regression(_) => TaskKind::Regression,
            Truth::Survival { .. } => TaskKind::Survival,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Truth::Binary(v) => v.len(),
            Truth::Multiclass { labels, .. } => labels.len(),
            Truth::Regression(v) => v.len(),
            Truth::Survival { time, .. } => time.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows at `indices` (repeats allowed: bootstrap resamples use this).
    pub fn select(&self, indices: &[usize]) -> Truth {
        match self {
            Truth::Binary(v) => Truth::Binary(pick(v, indices)),
            Truth::Multiclass { labels, n_classes } => Truth::Multiclass {
                labels: pick(labels, indices),
                n_classes: *n_classes,
            },
            Truth::Regression(v) => Truth::Regression(pick(v, indices)),
            Truth::Survival { time, event } => Truth::Survival {
                time: pick(time, indices),
                event: pick(event, indices),
            },
        }
    }
}

impl Predictions {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Predictions::Scores(v) => v.len(),
            Predictions::Probabilities { n_classes, values } => {
                values.len().checked_div(*n_classes).unwrap_or(0)
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows at `indices` (repeats allowed).
    pub fn select(&self, indices: &[usize]) -> Predictions {
        match self {
            Predictions::Scores(v) => Predictions::Scores(pick(v, indices)),
            Predictions::Probabilities { n_classes, values } => {
                let k = *n_classes;
                let mut picked = Vec::with_capacity(indices.len() * k);
                for &i in indices {
                    picked.extend_from_slice(&values[i * k..(i + 1) * k]);
                }
                Predictions::Probabilities {
                    n_classes: k,
                    values: picked,
                }
            }
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Predictions::Scores(_) => "one score per row",
            Predictions::Probabilities { .. } => "class probabilities",
        }
    }
}

fn pick<T: Copy>(values: &[T], indices: &[usize]) -> Vec<T> {
    indices.iter().map(|&i| values[i]).collect()
}

impl Metric {
    pub const ALL: [Metric; 14] = [
        Metric::RocAuc,
        Metric::AveragePrecision,
        Metric::LogLoss,
        Metric::Brier,
        Metric::Accuracy,
        Metric::BalancedAccuracy,
        Metric::F1,
        Metric::MulticlassAccuracy,
        Metric::MacroF1,
        Metric::MulticlassLogLoss,
        Metric::Rmse,
        Metric::Mae,
        Metric::R2,
        Metric::CIndex,
    ];

    /// Canonical names, in the order of [`Metric::ALL`].
    pub const ALL_NAMES: [&'static str; 14] = [
        "roc_auc",
        "average_precision",
        "log_loss",
        "brier",
        "accuracy",
        "balanced_accuracy",
        "f1",
        "multiclass_accuracy",
        "macro_f1",
        "multiclass_log_loss",
        "rmse",
        "mae",
        "r2",
        "c_index",
    ];

    /// The canonical name (what [`FromStr`] and serde accept, plus a few aliases for parsing).
    pub fn name(self) -> &'static str {
        let position = Metric::ALL.iter().position(|m| *m == self).unwrap_or(0);
        Metric::ALL_NAMES[position]
    }

    pub fn task(self) -> TaskKind {
        use Metric::*;
        match self {
            RocAuc | AveragePrecision | LogLoss | Brier | Accuracy | BalancedAccuracy | F1 => {
                TaskKind::Binary
            }
            MulticlassAccuracy | MacroF1 | MulticlassLogLoss => TaskKind::Multiclass,
            Rmse | Mae | R2 => TaskKind::Regression,
            CIndex => TaskKind::Survival,
        }
    }

    pub fn direction(self) -> Direction {
        use Metric::*;
        match self {
            LogLoss | Brier | MulticlassLogLoss | Rmse | Mae => Direction::LowerIsBetter,
            _ => Direction::HigherIsBetter,
        }
    }

    pub fn range(self) -> Range {
        use Metric::*;
        match self {
            LogLoss | MulticlassLogLoss | Rmse | Mae => Range {
                min: 0.0,
                max: f64::INFINITY,
            },
            R2 => Range {
                min: f64::NEG_INFINITY,
                max: 1.0,
            },
            _ => Range { min: 0.0, max: 1.0 },
        }
    }

    /// Computes the metric. Checks shapes and values first; never panics on user data.
    pub fn score(self, truth: &Truth, predictions: &Predictions) -> Result<f64, MetricError> {
        let wrong_task = || MetricError::WrongTask {
            metric: self.name(),
            expected: self.task().name(),
            given: truth.task().name(),
        };
        let wrong_predictions = || MetricError::WrongTask {
            metric: self.name(),
            expected: match self.task() {
                TaskKind::Multiclass => "class probabilities",
                _ => "one score per row",
            },
            given: predictions.kind(),
        };
        if truth.task() != self.task() {
            return Err(wrong_task());
        }
        match (truth, predictions) {
            (Truth::Binary(labels), Predictions::Scores(p)) => match self {
                Metric::RocAuc => roc_auc(labels, p),
                Metric::AveragePrecision => average_precision(labels, p),
                Metric::LogLoss => log_loss(labels, p),
                Metric::Brier => brier_score(labels, p),
                Metric::Accuracy => accuracy(labels, p),
                Metric::BalancedAccuracy => balanced_accuracy(labels, p),
                Metric::F1 => f1_at_half(labels, p),
                _ => Err(wrong_task()),
            },
            (
                Truth::Multiclass { labels, n_classes },
                Predictions::Probabilities {
                    n_classes: k,
                    values,
                },
            ) => {
                if n_classes != k {
                    return Err(MetricError::LengthMismatch {
                        what: "number of classes",
                        truth: *n_classes,
                        predictions: *k,
                    });
                }
                match self {
                    Metric::MulticlassAccuracy => multiclass_accuracy(labels, values, *k),
                    Metric::MacroF1 => macro_f1(labels, values, *k),
                    Metric::MulticlassLogLoss => multiclass_log_loss(labels, values, *k),
                    _ => Err(wrong_task()),
                }
            }
            (Truth::Regression(y), Predictions::Scores(p)) => match self {
                Metric::Rmse => rmse(y, p),
                Metric::Mae => mae(y, p),
                Metric::R2 => r2(y, p),
                _ => Err(wrong_task()),
            },
            (Truth::Survival { time, event }, Predictions::Scores(p)) => {
                harrell_c_index(time, event, p)
            }
            _ => Err(wrong_predictions()),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = MetricError;

    /// Accepts the canonical names and common aliases, case-insensitively, with `-` or `_`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let normal = name.trim().to_ascii_lowercase().replace('-', "_");
        if let Some(i) = Metric::ALL_NAMES.iter().position(|n| *n == normal) {
            return Ok(Metric::ALL[i]);
        }
        let metric = match normal.as_str() {
            "auc" | "auroc" | "roc_auc_score" => Metric::RocAuc,
            "ap" | "pr_auc" | "auprc" => Metric::AveragePrecision,
            "logloss" | "binary_log_loss" | "cross_entropy" => Metric::LogLoss,
            "brier_score" => Metric::Brier,
            "f1_score" => Metric::F1,
            "f1_macro" => Metric::MacroF1,
            "r_squared" | "r²" => Metric::R2,
            "cindex" | "concordance" | "concordance_index" | "harrell_c" => Metric::CIndex,
            _ => return Err(MetricError::UnknownMetric(name.to_string())),
        };
        Ok(metric)
    }
}

// ---- shared checks -------------------------------------------------------------------------

pub(crate) fn check_lengths(truth: usize, predictions: usize) -> Result<(), MetricError> {
    if truth != predictions {
        return Err(MetricError::LengthMismatch {
            what: "row count",
            truth,
            predictions,
        });
    }
    if truth == 0 {
        return Err(MetricError::Empty);
    }
    Ok(())
}

pub(crate) fn check_finite(values: &[f64], what: &'static str) -> Result<(), MetricError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(row) => Err(MetricError::NotFinite {
            row,
            what,
            value: values[row],
        }),
        None => Ok(()),
    }
}

pub(crate) fn check_probabilities(values: &[f64], what: &'static str) -> Result<(), MetricError> {
    check_finite(values, what)?;
    match values.iter().position(|v| !(0.0..=1.0).contains(v)) {
        Some(row) => Err(MetricError::OutOfRange {
            row,
            what,
            value: values[row],
            range: "[0, 1]",
        }),
        None => Ok(()),
    }
}

/// A key whose unsigned order is the numeric order of finite floats, with `-0.0 == 0.0`.
/// Sorting `u64` keys is markedly faster than sorting floats through a comparator.
#[inline]
pub(crate) fn order_key(value: f64) -> u64 {
    let bits = (value + 0.0).to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}
