//! Metrics: what a score means (task, direction, range) and how to compute it.
//!
//! Conventions that differ between libraries are fixed here once:
//! - binary predictions are the probability (or any score, for AUC and average precision)
//!   of the positive class; hard decisions (accuracy, balanced accuracy, F1) predict
//!   positive when `p >= 0.5`;
//! - multiclass predictions are one probability per class, row-major, rows summing to 1;
//!   hard decisions take the first class with the highest probability (as `numpy.argmax`);
//! - survival predictions are either **risk scores** ([`Predictions::Scores`]): a *higher*
//!   score means an *earlier* event (scikit-survival's convention and the sandbox ABI's;
//!   lifelines ranks the other way, so it must be given the negated scores), or
//!   **survival curves** ([`Predictions::SurvivalCurves`]): S(t | x) on a time grid.
//!
//! # Survival curves and the metrics that read them
//!
//! A curve is read at a horizon h as a right-continuous step function: the value at the
//! last grid time `<= h`. A horizon before the first or after the last grid time is an
//! error ([`MetricError::HorizonOutsideCurves`]): the curve says nothing there. Declaring
//! the grid equal to the horizons reproduces scikit-survival exactly.
//!
//! - The Brier score, the integrated Brier score and the expected calibration error at a
//!   horizon need curves; given risk scores they return
//!   [`MetricError::NeedsSurvivalCurves`].
//! - The cumulative/dynamic AUC given curves ranks rows at each horizon h by the risk
//!   `1 − S(h | x)` (scikit-survival's recommendation for time-dependent predictions).
//! - Harrell's and Uno's C given curves rank rows by minus the area under the curve over
//!   the grid, `−Σ_j S(t_j | x)(t_{j+1} − t_j)`: the restricted mean survival time over the
//!   grid up to a constant shared by all rows, so a curve that lies lower everywhere ranks
//!   as riskier. A one-point grid has no area and is refused.
//!
//! # Horizons, truncation and the censoring distribution
//!
//! Horizon-dependent metrics take their parameters from a [`ScoreContext`] passed to
//! [`Metric::score_with`]; [`Metric::score`] uses an empty one, so those metrics then
//! return [`MetricError::MissingHorizons`]. The IPCW metrics (Uno's C, the
//! cumulative/dynamic AUC, the Brier scores) weight rows by the Kaplan-Meier estimate of
//! the censoring distribution fitted to [`ScoreContext::training`], as scikit-survival
//! fits it to `survival_train`; **without training labels it is fitted to the test labels
//! themselves** (scikit-survival with `survival_train = survival_test`), which is what
//! lifelines-style evaluations do but lets the censoring of the scored rows shape their
//! own weights.

mod binary;
mod calibration;
mod ipcw;
mod km;
mod multiclass;
mod regression;
mod survival;

pub use binary::{
    accuracy, average_precision, balanced_accuracy, brier_score, f1_at_half, log_loss, roc_auc,
};
pub use calibration::{
    calibration_intercept, calibration_slope, expected_calibration_error,
    survival_expected_calibration_error,
};
pub use ipcw::{
    HorizonRisk, TIED_TOLERANCE, TimeDependentAuc, cumulative_dynamic_auc, integrated_brier_score,
    survival_brier_score, uno_c_index,
};
use ipcw::{SurvivalColumns, integrated_brier_score_of, survival_brier_score_of};
pub use km::{CensoringDistribution, KaplanMeier};
pub use multiclass::{macro_f1, multiclass_accuracy, multiclass_log_loss};
pub use regression::{mae, r2, rmse};
pub use survival::{ConcordanceCounts, concordance_counts, harrell_c_index};

use std::borrow::Cow;
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

/// Which scores are better: larger, smaller, or nearer an ideal value. Calibration slope
/// and intercept have an ideal (1 and 0) with worse values on both sides of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
    /// Better the nearer to 1 (calibration slope).
    CloserToOne,
    /// Better the nearer to 0 on either side (calibration intercept).
    CloserToZero,
}

impl Direction {
    /// The ideal value of the "closer to" directions.
    pub fn target(self) -> Option<f64> {
        match self {
            Direction::CloserToOne => Some(1.0),
            Direction::CloserToZero => Some(0.0),
            Direction::HigherIsBetter | Direction::LowerIsBetter => None,
        }
    }

    /// `true` when `a` is strictly better than `b`.
    pub fn is_better(self, a: f64, b: f64) -> bool {
        match self.target() {
            Some(t) => (a - t).abs() < (b - t).abs(),
            None => match self {
                Direction::LowerIsBetter => a < b,
                _ => a > b,
            },
        }
    }

    /// Orders scores best first (a total order; callers reject NaN before ranking).
    pub fn cmp_best_first(self, a: f64, b: f64) -> std::cmp::Ordering {
        match self.target() {
            Some(t) => (a - t).abs().total_cmp(&(b - t).abs()),
            None => match self {
                Direction::LowerIsBetter => a.total_cmp(&b),
                _ => b.total_cmp(&a),
            },
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
///
/// Each variant says whether its value is bounded; [`Metric::range`] states the bounds.
/// The binary calibration metrics and the survival one do not share a name, so that
/// [`Metric::task`] stays one task per metric: `ece` is binary, `ece_at_horizon` survival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Bounded: [0, 1].
    RocAuc,
    /// Bounded: [0, 1].
    AveragePrecision,
    /// Unbounded above: [0, ∞).
    LogLoss,
    /// Bounded: [0, 1].
    Brier,
    /// Bounded: [0, 1].
    Accuracy,
    /// Bounded: [0, 1].
    BalancedAccuracy,
    /// Bounded: [0, 1].
    F1,
    /// Binary: slope of `y ~ 1 + logit(p)`. Unbounded: (−∞, ∞), ideal 1.
    CalibrationSlope,
    /// Binary: calibration-in-the-large, intercept of `y ~ 1 + offset(logit(p))`. Unbounded:
    /// (−∞, ∞), ideal 0.
    CalibrationIntercept,
    /// Binary: expected calibration error over ten equal-width bins. Bounded: [0, 1].
    Ece,
    /// Bounded: [0, 1].
    MulticlassAccuracy,
    /// Bounded: [0, 1].
    MacroF1,
    /// Unbounded above: [0, ∞).
    MulticlassLogLoss,
    /// Unbounded above: [0, ∞).
    Rmse,
    /// Unbounded above: [0, ∞).
    Mae,
    /// Unbounded below: (−∞, 1].
    R2,
    /// Harrell's C of risk scores. Bounded: [0, 1].
    CIndex,
    /// Uno's IPCW C, truncated at the context's `tau`. Bounded: [0, 1].
    UnoCIndex,
    /// Cumulative/dynamic AUC: scikit-survival's `mean_auc` over the context's horizons (one
    /// horizon: its AUC). Bounded: [0, 1].
    TdAuc,
    /// IPCW integrated Brier score over the context's horizons (at least two); needs curves.
    /// Unbounded above: [0, ∞), the weights 1/G having no bound.
    IntegratedBrier,
    /// IPCW Brier score at the context's one horizon; needs curves. Unbounded above: [0, ∞).
    BrierAtHorizon,
    /// Expected calibration error of `1 − S(h | x)` at the context's one horizon, against
    /// each bin's Kaplan-Meier risk; needs curves. Bounded: [0, 1].
    EceAtHorizon,
}

/// How many horizons a metric reads from [`ScoreContext::horizons`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HorizonsNeeded {
    /// None: horizons in the context are ignored.
    NotUsed,
    ExactlyOne,
    AtLeastOne,
    AtLeastTwo,
}

/// Survival labels without predictions: the training part's, for the censoring
/// distribution of the IPCW metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurvivalLabels {
    pub time: Vec<f64>,
    pub event: Vec<bool>,
}

/// Parameters that some metrics need beyond the truth and the predictions. A competition
/// declares them once; the default (empty) context suits every metric whose
/// [`Metric::horizons_needed`] is [`HorizonsNeeded::NotUsed`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoreContext {
    /// Evaluation times, finite and strictly increasing, inside the test follow-up
    /// `[min time, max time)` (and inside the curves' grid when curves are scored).
    #[serde(default)]
    pub horizons: Vec<f64>,
    /// Uno's C truncation time: only events before it count (`None`: every event). The other
    /// metrics ignore it.
    #[serde(default)]
    pub tau: Option<f64>,
    /// Training labels to fit the censoring distribution of the IPCW metrics; `None` fits it
    /// to the test labels (see the module docs).
    #[serde(default)]
    pub training: Option<SurvivalLabels>,
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
    /// (regression), risk score (survival: higher means an earlier event, as in
    /// scikit-survival and the sandbox ABI).
    Scores(Vec<f64>),
    /// `n_classes` probabilities per row, row-major (multiclass).
    Probabilities { n_classes: usize, values: Vec<f64> },
    /// Survival probabilities S(t_j | x_i) at the grid `times` (finite, strictly
    /// increasing), row-major: `values[i * times.len() + j]`. Each value lies in [0, 1] and
    /// no row increases along the grid (survival).
    SurvivalCurves { times: Vec<f64>, values: Vec<f64> },
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
            Predictions::SurvivalCurves { times, values } => {
                values.len().checked_div(times.len()).unwrap_or(0)
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
            Predictions::SurvivalCurves { times, values } => {
                let m = times.len();
                let mut picked = Vec::with_capacity(indices.len() * m);
                for &i in indices {
                    picked.extend_from_slice(&values[i * m..(i + 1) * m]);
                }
                Predictions::SurvivalCurves {
                    times: times.clone(),
                    values: picked,
                }
            }
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Predictions::Scores(_) => "one score per row",
            Predictions::Probabilities { .. } => "class probabilities",
            Predictions::SurvivalCurves { .. } => "survival curves",
        }
    }
}

fn pick<T: Copy>(values: &[T], indices: &[usize]) -> Vec<T> {
    indices.iter().map(|&i| values[i]).collect()
}

impl Metric {
    pub const ALL: [Metric; 22] = [
        Metric::RocAuc,
        Metric::AveragePrecision,
        Metric::LogLoss,
        Metric::Brier,
        Metric::Accuracy,
        Metric::BalancedAccuracy,
        Metric::F1,
        Metric::CalibrationSlope,
        Metric::CalibrationIntercept,
        Metric::Ece,
        Metric::MulticlassAccuracy,
        Metric::MacroF1,
        Metric::MulticlassLogLoss,
        Metric::Rmse,
        Metric::Mae,
        Metric::R2,
        Metric::CIndex,
        Metric::UnoCIndex,
        Metric::TdAuc,
        Metric::IntegratedBrier,
        Metric::BrierAtHorizon,
        Metric::EceAtHorizon,
    ];

    /// Canonical names, in the order of [`Metric::ALL`].
    pub const ALL_NAMES: [&'static str; 22] = [
        "roc_auc",
        "average_precision",
        "log_loss",
        "brier",
        "accuracy",
        "balanced_accuracy",
        "f1",
        "calibration_slope",
        "calibration_intercept",
        "ece",
        "multiclass_accuracy",
        "macro_f1",
        "multiclass_log_loss",
        "rmse",
        "mae",
        "r2",
        "c_index",
        "uno_c_index",
        "td_auc",
        "integrated_brier",
        "brier_at_horizon",
        "ece_at_horizon",
    ];

    /// The canonical name (what [`FromStr`] and serde accept, plus a few aliases for parsing).
    pub fn name(self) -> &'static str {
        let position = Metric::ALL.iter().position(|m| *m == self).unwrap_or(0);
        Metric::ALL_NAMES[position]
    }

    pub fn task(self) -> TaskKind {
        use Metric::*;
        match self {
            RocAuc | AveragePrecision | LogLoss | Brier | Accuracy | BalancedAccuracy | F1
            | CalibrationSlope | CalibrationIntercept | Ece => TaskKind::Binary,
            MulticlassAccuracy | MacroF1 | MulticlassLogLoss => TaskKind::Multiclass,
            Rmse | Mae | R2 => TaskKind::Regression,
            CIndex | UnoCIndex | TdAuc | IntegratedBrier | BrierAtHorizon | EceAtHorizon => {
                TaskKind::Survival
            }
        }
    }

    pub fn direction(self) -> Direction {
        use Metric::*;
        match self {
            LogLoss | Brier | MulticlassLogLoss | Rmse | Mae | Ece | IntegratedBrier
            | BrierAtHorizon | EceAtHorizon => Direction::LowerIsBetter,
            CalibrationSlope => Direction::CloserToOne,
            CalibrationIntercept => Direction::CloserToZero,
            RocAuc | AveragePrecision | Accuracy | BalancedAccuracy | F1 | MulticlassAccuracy
            | MacroF1 | R2 | CIndex | UnoCIndex | TdAuc => Direction::HigherIsBetter,
        }
    }

    /// The closed range the value lies in, infinite ends where no bound holds for all data.
    pub fn range(self) -> Range {
        use Metric::*;
        match self {
            LogLoss | MulticlassLogLoss | Rmse | Mae | IntegratedBrier | BrierAtHorizon => Range {
                min: 0.0,
                max: f64::INFINITY,
            },
            R2 => Range {
                min: f64::NEG_INFINITY,
                max: 1.0,
            },
            CalibrationSlope | CalibrationIntercept => Range {
                min: f64::NEG_INFINITY,
                max: f64::INFINITY,
            },
            RocAuc | AveragePrecision | Brier | Accuracy | BalancedAccuracy | F1 | Ece
            | MulticlassAccuracy | MacroF1 | CIndex | UnoCIndex | TdAuc | EceAtHorizon => {
                Range { min: 0.0, max: 1.0 }
            }
        }
    }

    /// How many horizons the metric reads from the [`ScoreContext`].
    pub fn horizons_needed(self) -> HorizonsNeeded {
        match self {
            Metric::TdAuc => HorizonsNeeded::AtLeastOne,
            Metric::IntegratedBrier => HorizonsNeeded::AtLeastTwo,
            Metric::BrierAtHorizon | Metric::EceAtHorizon => HorizonsNeeded::ExactlyOne,
            _ => HorizonsNeeded::NotUsed,
        }
    }

    /// Whether the metric needs [`Predictions::SurvivalCurves`] (risk scores cannot give it).
    pub fn needs_survival_curves(self) -> bool {
        matches!(
            self,
            Metric::IntegratedBrier | Metric::BrierAtHorizon | Metric::EceAtHorizon
        )
    }

    /// Computes the metric with an empty [`ScoreContext`]: no horizons, no truncation, the
    /// censoring distribution from the test labels. Checks shapes and values first; never
    /// panics on user data.
    pub fn score(self, truth: &Truth, predictions: &Predictions) -> Result<f64, MetricError> {
        self.score_with(truth, predictions, &ScoreContext::default())
    }

    /// Computes the metric with the horizons, truncation time and training labels of
    /// `context` (see [`ScoreContext`]). Checks shapes and values first; never panics on
    /// user data.
    pub fn score_with(
        self,
        truth: &Truth,
        predictions: &Predictions,
        context: &ScoreContext,
    ) -> Result<f64, MetricError> {
        let wrong_task = || MetricError::WrongTask {
            metric: self.name(),
            expected: self.task().name(),
            given: truth.task().name(),
        };
        let wrong_predictions = || MetricError::WrongTask {
            metric: self.name(),
            expected: match self.task() {
                TaskKind::Multiclass => "class probabilities",
                TaskKind::Survival => "risk scores or survival curves",
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
                Metric::CalibrationSlope => calibration_slope(labels, p),
                Metric::CalibrationIntercept => calibration_intercept(labels, p),
                Metric::Ece => expected_calibration_error(labels, p),
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
            (
                Truth::Survival { time, event },
                Predictions::Scores(_) | Predictions::SurvivalCurves { .. },
            ) => self.score_survival(time, event, predictions, context),
            _ => Err(wrong_predictions()),
        }
    }

    fn score_survival(
        self,
        time: &[f64],
        event: &[bool],
        predictions: &Predictions,
        context: &ScoreContext,
    ) -> Result<f64, MetricError> {
        let curves = match predictions {
            Predictions::SurvivalCurves { times, values } => {
                check_curves(times, values, time.len())?;
                Some((times.as_slice(), values.as_slice()))
            }
            _ => None,
        };
        if self.needs_survival_curves() && curves.is_none() {
            return Err(MetricError::NeedsSurvivalCurves {
                metric: self.name(),
            });
        }
        let horizons = context.horizons.as_slice();
        let needed = match self.horizons_needed() {
            HorizonsNeeded::NotUsed => None,
            HorizonsNeeded::ExactlyOne => (horizons.len() != 1).then_some("exactly one horizon"),
            HorizonsNeeded::AtLeastOne => horizons.is_empty().then_some("at least one horizon"),
            HorizonsNeeded::AtLeastTwo => (horizons.len() < 2).then_some("at least two horizons"),
        };
        if let Some(needed) = needed {
            return Err(MetricError::MissingHorizons {
                metric: self.name(),
                needed,
                given: horizons.len(),
            });
        }
        let censoring = || match &context.training {
            Some(training) => CensoringDistribution::fit(&training.time, &training.event),
            None => CensoringDistribution::fit(time, event),
        };
        let risk = || -> Result<Cow<'_, [f64]>, MetricError> {
            match (predictions, curves) {
                (_, Some((times, values))) => Ok(Cow::Owned(area_risk(self, times, values)?)),
                (Predictions::Scores(p), None) => Ok(Cow::Borrowed(p.as_slice())),
                _ => Err(MetricError::NeedsSurvivalCurves {
                    metric: self.name(),
                }),
            }
        };
        // The grid column in force at each horizon, to read S(h_k | x_i) from the curves in
        // place.
        let curve_columns = || match curves {
            Some((times, values)) => Ok((values, times.len(), horizon_columns(times, horizons)?)),
            None => Err(MetricError::NeedsSurvivalCurves {
                metric: self.name(),
            }),
        };
        // S(h_k | x_i) for every row and horizon, from the curves.
        let at_horizons = || match curves {
            Some((times, values)) => survival_at_horizons(times, values, horizons),
            None => Err(MetricError::NeedsSurvivalCurves {
                metric: self.name(),
            }),
        };
        match self {
            Metric::CIndex => harrell_c_index(time, event, &risk()?),
            Metric::UnoCIndex => uno_c_index(time, event, &risk()?, context.tau, &censoring()?),
            Metric::TdAuc => {
                let censoring = censoring()?;
                let auc = match curves {
                    None => cumulative_dynamic_auc(
                        time,
                        event,
                        HorizonRisk::Same(&risk()?),
                        horizons,
                        &censoring,
                    )?,
                    Some(_) => {
                        let risk: Vec<f64> = at_horizons()?.iter().map(|s| 1.0 - s).collect();
                        cumulative_dynamic_auc(
                            time,
                            event,
                            HorizonRisk::PerHorizon(&risk),
                            horizons,
                            &censoring,
                        )?
                    }
                };
                Ok(auc.mean_auc)
            }
            Metric::IntegratedBrier => {
                let (values, stride, columns) = curve_columns()?;
                let survival = SurvivalColumns {
                    values,
                    stride,
                    columns: &columns,
                    // `check_curves` has checked every value.
                    checked: true,
                };
                integrated_brier_score_of(time, event, survival, horizons, &censoring()?)
            }
            Metric::BrierAtHorizon => {
                let (values, stride, columns) = curve_columns()?;
                let survival = SurvivalColumns {
                    values,
                    stride,
                    columns: &columns,
                    // `check_curves` has checked every value.
                    checked: true,
                };
                survival_brier_score_of(time, event, survival, horizons[0], &censoring()?)
            }
            Metric::EceAtHorizon => {
                survival_expected_calibration_error(time, event, &at_horizons()?, horizons[0])
            }
            _ => Err(MetricError::WrongTask {
                metric: self.name(),
                expected: self.task().name(),
                given: TaskKind::Survival.name(),
            }),
        }
    }
}

/// Checks a grid of curves against the number of rows being scored: finite, strictly
/// increasing times; every value in [0, 1]; no row increasing. Errors name the row and the
/// column (grid index).
fn check_curves(times: &[f64], values: &[f64], rows: usize) -> Result<(), MetricError> {
    if times.is_empty() {
        return Err(MetricError::BadCurveTime {
            column: 0,
            value: f64::NAN,
            reason: "missing: the grid needs at least one time",
        });
    }
    for (column, &t) in times.iter().enumerate() {
        if !t.is_finite() {
            return Err(MetricError::BadCurveTime {
                column,
                value: t,
                reason: "not a finite number",
            });
        }
        if column > 0 && t <= times[column - 1] {
            return Err(MetricError::BadCurveTime {
                column,
                value: t,
                reason: "not after the previous time (the grid must be strictly increasing)",
            });
        }
    }
    let m = times.len();
    if values.len() != rows * m {
        return Err(MetricError::LengthMismatch {
            what: "survival curve values (rows × grid times)",
            truth: rows * m,
            predictions: values.len(),
        });
    }
    if rows == 0 {
        return Err(MetricError::Empty);
    }
    // Fast path without early exits: `0 <= v <= previous` (1 before the first column) is
    // false for NaN, infinities, values outside [0, 1] and increases alike. Only when it
    // fails does the loop below look for the first offending value to name it.
    let valid = |curve: &[f64]| {
        let (mut ok, mut previous) = (true, 1.0);
        for &value in curve {
            ok &= (value >= 0.0) & (value <= previous);
            previous = value;
        }
        ok
    };
    if values.chunks_exact(m).all(valid) {
        return Ok(());
    }
    for (row, curve) in values.chunks_exact(m).enumerate() {
        for (column, &value) in curve.iter().enumerate() {
            let reason = if !value.is_finite() {
                "not a finite number"
            } else if !(0.0..=1.0).contains(&value) {
                "outside [0, 1]"
            } else if column > 0 && value > curve[column - 1] {
                "above the previous time's (a survival curve cannot increase)"
            } else {
                continue;
            };
            return Err(MetricError::BadCurveValue {
                row,
                column,
                value,
                reason,
            });
        }
    }
    Ok(())
}

/// The grid index in force at `horizon`: the last grid time `<= horizon`.
fn curve_column(times: &[f64], horizon: f64) -> Result<usize, MetricError> {
    let (first, last) = (times[0], times[times.len() - 1]);
    if !(horizon >= first && horizon <= last) {
        return Err(MetricError::HorizonOutsideCurves {
            horizon,
            first,
            last,
        });
    }
    Ok(times.partition_point(|&t| t <= horizon) - 1)
}

/// The grid column in force at each horizon.
fn horizon_columns(times: &[f64], horizons: &[f64]) -> Result<Vec<usize>, MetricError> {
    horizons.iter().map(|&h| curve_column(times, h)).collect()
}

/// S(h_k | x_i) as `rows × horizons`, row-major.
fn survival_at_horizons(
    times: &[f64],
    values: &[f64],
    horizons: &[f64],
) -> Result<Vec<f64>, MetricError> {
    let columns = horizon_columns(times, horizons)?;
    let mut at = Vec::with_capacity(values.len() / times.len() * columns.len());
    for curve in values.chunks_exact(times.len()) {
        at.extend(columns.iter().map(|&j| curve[j]));
    }
    Ok(at)
}

/// The risk a curve implies for the C-indices: minus the area under it over the grid,
/// summed left to right (the fixtures' reference sums in the same order, so that equal
/// curves tie exactly).
fn area_risk(metric: Metric, times: &[f64], values: &[f64]) -> Result<Vec<f64>, MetricError> {
    if times.len() < 2 {
        return Err(MetricError::Undefined {
            metric: metric.name(),
            reason: "a survival curve on a one-time grid has no area to rank rows by; \
                     give at least two times",
        });
    }
    let widths: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    Ok(values
        .chunks_exact(times.len())
        .map(|curve| {
            let mut area = 0.0;
            for (s, width) in curve.iter().zip(&widths) {
                area += s * width;
            }
            -area
        })
        .collect())
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
            "cindex" | "concordance" | "concordance_index" | "harrell_c" | "harrell_c_index" => {
                Metric::CIndex
            }
            "uno_c" | "uno_cindex" | "uno" | "concordance_index_ipcw" | "c_index_ipcw" => {
                Metric::UnoCIndex
            }
            "cumulative_dynamic_auc" | "time_dependent_auc" | "td_roc_auc" | "mean_auc" => {
                Metric::TdAuc
            }
            "ibs" | "integrated_brier_score" => Metric::IntegratedBrier,
            "brier_score_at_horizon" | "survival_brier" | "brier_at_time" => Metric::BrierAtHorizon,
            "expected_calibration_error" => Metric::Ece,
            "survival_ece" | "ece_survival" => Metric::EceAtHorizon,
            "calibration_in_the_large" | "citl" => Metric::CalibrationIntercept,
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
