//! Releasing scores: every number a team or the public sees about a real-data run passes
//! through [`release_scalar`], which charges the budget, then adds OpenDP's Laplace noise.
//!
//! What is released depends on the competition's guarantee level (all parameters public):
//!
//! - **`row`** (DP over every row: training rows, test features, test labels): the rows are
//!   cut into k disjoint (training block, test block) pairs; each pair is fitted and
//!   predicted in a fresh sandbox instance; each block's score is clamped into
//!   [`release_range`] ([`block_score`]); the released score is their mean ([`block_mean`])
//!   plus noise for Δ = (max − min)/k ([`row_sensitivity`]). One patient lives in one block,
//!   so whatever the submission does with that patient, the mean moves by at most Δ.
//! - **`label`** (DP over the test labels only): one fit on the whole training part; the
//!   score of the test part plus noise for Δ from [`score_sensitivity`], computed from
//!   *declared* lower bounds on the part's rows and smallest class ([`PublicPartFacts`]),
//!   never from the data; released values are rounded to a published grid
//!   ([`round_to_grid`]) and their number is capped by the competition, which bounds what
//!   scores can say about training rows to releases × log2([`grid_levels`]) bits.
//!
//! On either level the public leaderboard may pass the noisy score through the Ladder
//! (Blum & Hardt 2015, [`LadderState`]): a team sees a new score only when it beats its best
//! by more than a step, whose default follows the noise ([`default_ladder_step`]). The
//! Ladder is post-processing of the noisy value, so it costs nothing more.

use serde::{Deserialize, Serialize};

use crate::budget::{BudgetAccountant, ChargeReceipt};
use crate::error::PrivacyError;
use crate::metrics::{self, Direction, Metric, Predictions, Range, ScoreContext, Truth};
use crate::noise::{NoiseMechanism, PreparedNoise, laplace_half_width, prepare};

/// Facts about a test part that `label`-level sensitivities depend on. A competition
/// *declares* lower bounds for them (public); a run whose data falls below the declared
/// bounds is refused before the submission runs, so the noise never depends on the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicPartFacts {
    pub rows: usize,
    /// Rows of the smaller class (binary tasks only).
    pub minority_class_rows: Option<usize>,
}

impl PublicPartFacts {
    pub fn of(truth: &Truth) -> Self {
        let minority_class_rows = match truth {
            Truth::Binary(labels) => {
                let positives = labels.iter().filter(|&&y| y).count();
                Some(positives.min(labels.len() - positives))
            }
            _ => None,
        };
        PublicPartFacts {
            rows: truth.len(),
            minority_class_rows,
        }
    }

    /// Whether these (actual) facts meet the `declared` lower bounds; else what falls short.
    pub fn check_against(&self, declared: &PublicPartFacts) -> Result<(), String> {
        if self.rows < declared.rows {
            return Err(format!(
                "fewer rows than the declared minimum of {}",
                declared.rows
            ));
        }
        if let Some(minimum) = declared.minority_class_rows
            && self.minority_class_rows.is_some_and(|m| m < minimum)
        {
            return Err(format!(
                "a class has fewer rows than the declared minimum of {minimum}"
            ));
        }
        Ok(())
    }
}

/// Bounds an organizer declares so that metrics with unbounded sensitivity become
/// releasable. The released score is then the metric of the clamped data, and the release
/// says so.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ClampBounds {
    /// Log losses: probabilities of the true class below this count as this (in (0, ½)).
    pub probability_floor: Option<f64>,
    /// RMSE and MAE: truth and predictions are clamped into `[low, high]`.
    pub value_range: Option<(f64, f64)>,
}

/// How far one row of the public part can move the released score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sensitivity {
    pub value: f64,
    /// What was clamped to make the metric bounded, if anything.
    pub clamping: Option<String>,
}

fn unbounded(metric: Metric, reason: &'static str) -> PrivacyError {
    PrivacyError::UnboundedSensitivity {
        metric: metric.name(),
        reason,
    }
}

/// The sensitivity of `metric` on a public part with these facts, for neighbouring parts
/// that differ in one row (its label and prediction may both change).
pub fn score_sensitivity(
    metric: Metric,
    facts: &PublicPartFacts,
    clamp: &ClampBounds,
) -> Result<Sensitivity, PrivacyError> {
    let n = facts.rows as f64;
    if facts.rows < 2 {
        return Err(unbounded(metric, "the public part has fewer than 2 rows"));
    }
    let plain = |value: f64| {
        Ok(Sensitivity {
            value,
            clamping: None,
        })
    };
    match metric {
        Metric::Accuracy | Metric::MulticlassAccuracy | Metric::Brier => plain(1.0 / n),
        Metric::RocAuc | Metric::BalancedAccuracy => {
            let m = facts
                .minority_class_rows
                .filter(|&m| m >= 1)
                .ok_or_else(|| unbounded(metric, "the public part has only one class"))?
                as f64;
            // Both are 1/m with m = min(n_pos, n_neg). Write AUC = ((P−1)x + a)/P, with x the
            // AUC of the rows other than r and a ∈ [0, 1] row r's share. Changing r's score
            // moves it by ≤ 1/m; flipping r from positive to negative gives
            // (N·x + b)/(N+1), and the difference x(1/(N+1) − 1/P) + a/P − b/(N+1) lies in
            // [−1/min(P, N+1), 1/min(P, N+1)]; symmetrically for the other flip. Balanced
            // accuracy: ½(1/P + 1/(N+1)) ≤ 1/m by the same bookkeeping on each recall.
            plain(1.0 / m)
        }
        Metric::LogLoss | Metric::MulticlassLogLoss => match clamp.probability_floor {
            Some(floor) if floor > 0.0 && floor < 0.5 => Ok(Sensitivity {
                value: -floor.ln() / n,
                clamping: Some(format!(
                    "true-class probabilities below {floor} counted as {floor}"
                )),
            }),
            Some(floor) => Err(PrivacyError::InvalidParameter(format!(
                "probability floor must lie in (0, 0.5), got {floor}"
            ))),
            None => Err(unbounded(
                metric,
                "one row can add any loss; declare a probability floor",
            )),
        },
        Metric::Mae | Metric::Rmse => match clamp.value_range {
            Some((low, high)) if low.is_finite() && high.is_finite() && low < high => {
                let width = high - low;
                Ok(Sensitivity {
                    // |√a − √b| ≤ √|a − b| turns the MSE bound w²/n into w/√n.
                    value: if metric == Metric::Mae {
                        width / n
                    } else {
                        width / n.sqrt()
                    },
                    clamping: Some(format!(
                        "truth and predictions clamped into [{low}, {high}]"
                    )),
                })
            }
            Some((low, high)) => Err(PrivacyError::InvalidParameter(format!(
                "value range must be finite with low < high, got [{low}, {high}]"
            ))),
            None => Err(unbounded(
                metric,
                "one row can move it without bound; declare a value range",
            )),
        },
        Metric::R2 => Err(unbounded(metric, "its denominator depends on every label")),
        Metric::AveragePrecision => Err(unbounded(
            metric,
            "one row changes the precision at every later positive; no useful bound",
        )),
        Metric::F1 | Metric::MacroF1 => Err(unbounded(
            metric,
            "its denominator depends on the submission's own predictions",
        )),
        Metric::Ece => {
            // ECE = (1/n) Σ_b |Σ_{i in b} (y_i − p_i)|: replacing one row changes the inner
            // sums of at most two bins (or one bin by a difference of two terms), each by at
            // most 1 in total, so by the triangle inequality the ECE moves by at most 2/n.
            plain(2.0 / n)
        }
        Metric::CIndex | Metric::UnoCIndex => Err(unbounded(
            metric,
            "one row can change the number of comparable pairs arbitrarily",
        )),
        Metric::TdAuc => Err(unbounded(
            metric,
            "one row can change the number of cases and controls and every IPCW weight",
        )),
        Metric::IntegratedBrier | Metric::BrierAtHorizon => {
            Err(unbounded(metric, "one row's IPCW weight 1/G has no bound"))
        }
        Metric::EceAtHorizon => Err(unbounded(
            metric,
            "one row changes its bin's Kaplan-Meier estimate by an amount that depends on \
             the bin's risk set",
        )),
        Metric::CalibrationSlope | Metric::CalibrationIntercept => Err(unbounded(
            metric,
            "a fitted logistic coefficient has no bounded range",
        )),
    }
}

/// The score as it is released: the metric of the clamped data where clamping applies.
pub fn clamped_score(
    metric: Metric,
    truth: &Truth,
    predictions: &Predictions,
    context: &ScoreContext,
    clamp: &ClampBounds,
) -> Result<f64, PrivacyError> {
    // Validates shapes and values once, whatever follows.
    let exact = metric.score_with(truth, predictions, context)?;
    let floored_log_loss = |floor: f64| -> f64 {
        let losses: Vec<f64> = match (truth, predictions) {
            (Truth::Binary(y), Predictions::Scores(p)) => y
                .iter()
                .zip(p)
                .map(|(&y, &p)| -(if y { p } else { 1.0 - p }).max(floor).ln())
                .collect(),
            (
                Truth::Multiclass { labels, n_classes },
                Predictions::Probabilities { values, .. },
            ) => labels
                .iter()
                .zip(values.chunks_exact(*n_classes))
                .map(|(&y, row)| -row[y as usize].max(floor).ln())
                .collect(),
            _ => return exact,
        };
        losses.iter().sum::<f64>() / losses.len() as f64
    };
    match (metric, truth, predictions) {
        (Metric::LogLoss | Metric::MulticlassLogLoss, _, _) => match clamp.probability_floor {
            Some(floor) => Ok(floored_log_loss(floor)),
            None => Ok(exact),
        },
        (Metric::Mae | Metric::Rmse, Truth::Regression(y), Predictions::Scores(p)) => {
            match clamp.value_range {
                Some((low, high)) if low < high => {
                    let y: Vec<f64> = y.iter().map(|v| v.clamp(low, high)).collect();
                    let p: Vec<f64> = p.iter().map(|v| v.clamp(low, high)).collect();
                    Ok(if metric == Metric::Mae {
                        metrics::mae(&y, &p)?
                    } else {
                        metrics::rmse(&y, &p)?
                    })
                }
                _ => Ok(exact),
            }
        }
        _ => Ok(exact),
    }
}

/// Who pays for a release, and where the charge is kept.
pub struct Payer<'a> {
    pub accountant: &'a dyn BudgetAccountant,
    pub team: &'a str,
    pub dataset: &'a str,
}

/// The Ladder's state for one leaderboard (arena keeps one per team and competition, and
/// persists it between submissions; it is plain serde data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LadderState {
    pub metric: Metric,
    /// η: the least improvement that is shown; released scores are multiples of it.
    pub step: f64,
    /// The score last shown (already rounded); `None` before the first submission.
    pub best: Option<f64>,
    pub submissions: u64,
}

impl LadderState {
    pub fn new(metric: Metric, step: f64) -> Result<Self, PrivacyError> {
        if !(step.is_finite() && step > 0.0) {
            return Err(PrivacyError::InvalidParameter(format!(
                "Ladder step must be positive and finite, got {step}"
            )));
        }
        Ok(LadderState {
            metric,
            step,
            best: None,
            submissions: 0,
        })
    }

    /// Algorithm 1 of Blum & Hardt: show the new score, rounded to the step, only if it
    /// beats the best shown by more than the step. Returns (shown score, improved?).
    pub fn submit(&mut self, score: f64) -> (f64, bool) {
        self.submissions += 1;
        let improved = match self.best {
            None => true,
            Some(best) => match self.metric.direction() {
                Direction::HigherIsBetter => score > best + self.step,
                Direction::LowerIsBetter => score < best - self.step,
                direction @ (Direction::CloserToOne | Direction::CloserToZero) => {
                    let target = direction.target().unwrap_or(0.0);
                    (score - target).abs() < (best - target).abs() - self.step
                }
            },
        };
        if improved {
            // Dividing by the reciprocal keeps decimal steps exact (70 / 100 = 0.7, whereas
            // 70 × 0.01 = 0.7000000000000001).
            self.best = Some((score / self.step).round() / self.step.recip());
        }
        (self.best.unwrap_or(score), improved)
    }
}

/// The range that scores are clamped into before they are averaged or released: the
/// metric's own range where it is bounded, else the range the declared clamping makes
/// bounded. R² is clamped into [−1, 1] (a block worse than predicting the mean twice over
/// counts as −1). Everything here is public: it depends on the metric and the declaration.
pub fn release_range(metric: Metric, clamp: &ClampBounds) -> Result<Range, PrivacyError> {
    match metric {
        Metric::LogLoss | Metric::MulticlassLogLoss => match clamp.probability_floor {
            Some(floor) if floor > 0.0 && floor < 0.5 => Ok(Range {
                min: 0.0,
                max: -floor.ln(),
            }),
            Some(floor) => Err(PrivacyError::InvalidParameter(format!(
                "probability floor must lie in (0, 0.5), got {floor}"
            ))),
            None => Err(unbounded(
                metric,
                "its value has no upper bound; declare a probability floor",
            )),
        },
        Metric::Mae | Metric::Rmse => match clamp.value_range {
            Some((low, high)) if low.is_finite() && high.is_finite() && low < high => Ok(Range {
                min: 0.0,
                max: high - low,
            }),
            Some((low, high)) => Err(PrivacyError::InvalidParameter(format!(
                "value range must be finite with low < high, got [{low}, {high}]"
            ))),
            None => Err(unbounded(
                metric,
                "its value has no upper bound; declare a value range",
            )),
        },
        Metric::R2 => Ok(Range {
            min: -1.0,
            max: 1.0,
        }),
        // An IPCW Brier score has no upper bound (a weight 1/G(t) grows as the censoring
        // survival falls), but a block's score above 1 means curves worse than always
        // predicting the wrong outcome for an unweighted row; it counts as 1. The clamp is
        // public and the same for every block, so the block mean keeps its (max − min)/k.
        Metric::IntegratedBrier | Metric::BrierAtHorizon => Ok(Range { min: 0.0, max: 1.0 }),
        Metric::CalibrationSlope | Metric::CalibrationIntercept => Err(unbounded(
            metric,
            "a fitted logistic coefficient has no bounded range",
        )),
        other => {
            let range = other.range();
            if range.min.is_finite() && range.max.is_finite() {
                Ok(range)
            } else {
                Err(unbounded(other, "its value has no finite bound"))
            }
        }
    }
}

/// One block's score for a row-level (partitioned) release: the metric of the block's clamped
/// data, clamped into [`release_range`]. `None` where the metric is undefined on the block
/// (a block with one class for AUC, say); [`block_mean`] counts it as the range's midpoint.
/// Whatever the outcome, it is a function of this block's rows alone.
pub fn block_score(
    metric: Metric,
    truth: &Truth,
    predictions: &Predictions,
    context: &ScoreContext,
    clamp: &ClampBounds,
) -> Result<Option<f64>, PrivacyError> {
    let range = release_range(metric, clamp)?;
    Ok(clamped_score(metric, truth, predictions, context, clamp)
        .ok()
        .filter(|value| value.is_finite())
        .map(|value| value.clamp(range.min, range.max)))
}

/// The mean over blocks of their scores, each clamped into `range`, a missing one counted as
/// the range's midpoint (dropping it would make the number of blocks depend on the data).
/// One row lives in one block, so it moves this mean by at most `(max − min)/k`.
pub fn block_mean(values: &[Option<f64>], range: Range) -> Result<f64, PrivacyError> {
    if values.is_empty() {
        return Err(PrivacyError::InvalidParameter(
            "a partitioned score needs at least one block".into(),
        ));
    }
    if !(range.min.is_finite() && range.max.is_finite() && range.min < range.max) {
        return Err(PrivacyError::InvalidParameter(format!(
            "block scores need a finite range, got [{}, {}]",
            range.min, range.max
        )));
    }
    let midpoint = (range.min + range.max) / 2.0;
    let sum: f64 = values
        .iter()
        .map(|value| match value {
            Some(v) if v.is_finite() => v.clamp(range.min, range.max),
            _ => midpoint,
        })
        .sum();
    Ok(sum / values.len() as f64)
}

/// The sensitivity of [`block_mean`] over `blocks` disjoint blocks: `(max − min)/k`,
/// whatever the submission does and whatever the number of rows.
pub fn row_sensitivity(range: Range, blocks: usize) -> Result<Sensitivity, PrivacyError> {
    if blocks < 2 {
        return Err(PrivacyError::InvalidParameter(format!(
            "row-level release needs at least 2 blocks, got {blocks}"
        )));
    }
    let width = range.max - range.min;
    if !(width.is_finite() && width > 0.0) {
        return Err(PrivacyError::InvalidParameter(format!(
            "row-level release needs a finite range, got [{}, {}]",
            range.min, range.max
        )));
    }
    Ok(Sensitivity {
        value: width / blocks as f64,
        clamping: Some(format!(
            "each of {blocks} blocks' scores clamped into [{}, {}]",
            range.min, range.max
        )),
    })
}

/// The Laplace noise of a release, calibrated from public quantities only: what a page shows
/// next to every released score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub sensitivity: f64,
    /// The ε OpenDP's privacy map states for this noise (at most the ε asked for).
    pub epsilon: f64,
    /// Laplace scale b.
    pub noise_scale: f64,
    /// Half-width of the central 95% interval of the noise: b·ln 20 ≈ 3b.
    pub half_width_95: f64,
}

/// Calibrates Laplace noise for `sensitivity` at `epsilon` through OpenDP.
pub fn calibrate(sensitivity: f64, epsilon: f64) -> Result<Calibration, PrivacyError> {
    Ok(calibrated(sensitivity, epsilon)?.1)
}

fn calibrated(
    sensitivity: f64,
    epsilon: f64,
) -> Result<(PreparedNoise, Calibration), PrivacyError> {
    let noise = prepare(NoiseMechanism::Laplace, sensitivity, epsilon)?;
    let calibration = Calibration {
        sensitivity,
        epsilon: noise.cost.epsilon,
        noise_scale: noise.scale,
        half_width_95: laplace_half_width(noise.scale, 0.95),
    };
    Ok((noise, calibration))
}

/// A released number and what it cost. Only `value` depends on the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoisyRelease {
    pub value: f64,
    pub calibration: Calibration,
    /// The budget charge, recorded before the noise was drawn.
    pub charge: ChargeReceipt,
}

/// Releases `exact` (already clamped into `range`, or clamped here) with Laplace noise for
/// `sensitivity` at `epsilon`: charges `payer` OpenDP's stated cost first, then draws the
/// noise, then clamps the noisy value into `range` (post-processing, free). Refuses,
/// charging nothing, on a non-finite value or parameter or an exhausted budget.
pub fn release_scalar(
    payer: &Payer<'_>,
    exact: f64,
    sensitivity: f64,
    epsilon: f64,
    range: Range,
) -> Result<NoisyRelease, PrivacyError> {
    if !exact.is_finite() {
        return Err(PrivacyError::InvalidParameter(format!(
            "cannot release the non-finite value {exact}"
        )));
    }
    let (noise, calibration) = calibrated(sensitivity, epsilon)?;
    let charge = payer
        .accountant
        .charge(payer.team, payer.dataset, noise.cost)?;
    let noisy = noise
        .apply(&[exact.clamp(range.min, range.max)])?
        .first()
        .copied()
        .unwrap_or(exact);
    Ok(NoisyRelease {
        value: noisy.clamp(range.min, range.max),
        calibration,
        charge,
    })
}

/// The Ladder's step when a competition declares none: the 95% half-width of the noise,
/// rounded up to 1, 2 or 5 times a power of ten. The Ladder (Blum & Hardt 2015) shows a new
/// score only when it beats the best shown by more than its step; a step below the noise
/// would let each team's luckiest draw through as an "improvement", so the step follows the
/// noise (their analysis sets it at the scale of the leaderboard's estimation error).
pub fn default_ladder_step(half_width_95: f64) -> f64 {
    if !(half_width_95.is_finite() && half_width_95 > 0.0) {
        return 0.01;
    }
    let power = 10f64.powf(half_width_95.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= half_width_95 * (1.0 - 1e-12))
        .unwrap_or(10.0 * power)
}

/// `value` rounded to the nearest multiple of `step` (the published score grid of
/// `label`-level releases), kept inside `range`.
pub fn round_to_grid(value: f64, step: f64, range: Range) -> f64 {
    if !(step.is_finite() && step > 0.0) {
        return value;
    }
    // Dividing by the reciprocal keeps decimal steps exact (see `LadderState::submit`).
    ((value / step).round() / step.recip()).clamp(range.min, range.max)
}

/// How many values a release on a grid of `step` over `range` can take: a release tells at
/// most log2 of this many bits, whatever the code that produced it.
pub fn grid_levels(range: Range, step: f64) -> Option<u64> {
    let width = range.max - range.min;
    (width.is_finite() && step.is_finite() && step > 0.0).then(|| (width / step).floor() as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::{DatasetBudget, InMemoryAccountant};
    use crate::noise::PrivacyCost;

    fn payer_with(accountant: &InMemoryAccountant, epsilon: f64) -> Payer<'_> {
        accountant
            .set_budget(
                "icu",
                DatasetBudget {
                    per_team: PrivacyCost::pure(epsilon),
                    total: None,
                },
            )
            .unwrap();
        Payer {
            accountant,
            team: "red",
            dataset: "icu",
        }
    }

    #[test]
    fn sensitivities_follow_the_table() {
        let facts = PublicPartFacts {
            rows: 1000,
            minority_class_rows: Some(101),
        };
        let none = ClampBounds::default();
        assert_eq!(
            score_sensitivity(Metric::Accuracy, &facts, &none)
                .unwrap()
                .value,
            1e-3
        );
        let auc = score_sensitivity(Metric::RocAuc, &facts, &none)
            .unwrap()
            .value;
        assert_eq!(auc, 1.0 / 101.0);
        assert!(matches!(
            score_sensitivity(Metric::LogLoss, &facts, &none),
            Err(PrivacyError::UnboundedSensitivity { .. })
        ));
        let floored = ClampBounds {
            probability_floor: Some(1e-3),
            value_range: None,
        };
        let s = score_sensitivity(Metric::LogLoss, &facts, &floored).unwrap();
        assert!((s.value - 1e3f64.ln() / 1000.0).abs() < 1e-15);
        assert!(s.clamping.unwrap().contains("0.001"));
        for refused in [
            Metric::R2,
            Metric::AveragePrecision,
            Metric::F1,
            Metric::CIndex,
            Metric::UnoCIndex,
            Metric::TdAuc,
            Metric::IntegratedBrier,
            Metric::BrierAtHorizon,
            Metric::EceAtHorizon,
            Metric::CalibrationSlope,
            Metric::CalibrationIntercept,
        ] {
            assert!(
                score_sensitivity(refused, &facts, &floored).is_err(),
                "{refused}"
            );
        }
        assert_eq!(
            score_sensitivity(Metric::Ece, &facts, &none).unwrap().value,
            2.0 / 1000.0
        );
    }

    #[test]
    fn one_changed_row_moves_the_ece_by_at_most_two_over_n() {
        // Every single-row change of a small part, exhaustively over a few values: the ECE
        // moves by at most 2/n (the bound score_sensitivity states).
        let labels = [true, false, true, true, false, false, true, false];
        let p = [0.05, 0.15, 0.35, 0.45, 0.55, 0.62, 0.91, 1.0];
        let n = labels.len() as f64;
        let base = metrics::expected_calibration_error(&labels, &p).unwrap();
        let mut largest: f64 = 0.0;
        for row in 0..labels.len() {
            for new_label in [false, true] {
                for new_p in [0.0, 0.09, 0.35, 0.5, 0.99, 1.0] {
                    let (mut l, mut q) = (labels, p);
                    l[row] = new_label;
                    q[row] = new_p;
                    let moved = metrics::expected_calibration_error(&l, &q).unwrap();
                    largest = largest.max((moved - base).abs());
                }
            }
        }
        assert!(largest <= 2.0 / n + 1e-15, "{largest}");
        assert!(
            largest > 1.0 / n,
            "the bound is not far from tight: {largest}"
        );
    }

    #[test]
    fn a_release_is_charged_before_it_is_shown_and_states_its_noise() {
        let accountant = InMemoryAccountant::new();
        let payer = payer_with(&accountant, 1.0);
        let range = Range { min: 0.0, max: 1.0 };
        let release = || release_scalar(&payer, 0.7, 0.01, 0.4, range);
        let first = release().unwrap();
        assert!((first.calibration.epsilon - 0.4).abs() < 1e-9);
        assert!((first.calibration.noise_scale - 0.025).abs() < 1e-6);
        assert!((first.calibration.half_width_95 - 0.025 * 20f64.ln()).abs() < 1e-6);
        assert!((0.0..=1.0).contains(&first.value));
        assert!((accountant.spent("red", "icu").unwrap().epsilon - 0.4).abs() < 1e-9);
        // Two more do not fit in ε = 1: the third is refused and charges nothing.
        release().unwrap();
        assert!(matches!(
            release(),
            Err(PrivacyError::BudgetExceeded { .. })
        ));
        assert!((accountant.spent("red", "icu").unwrap().epsilon - 0.8).abs() < 1e-9);
        // A non-finite value is refused before anything is charged.
        assert!(release_scalar(&payer, f64::NAN, 0.01, 0.1, range).is_err());
        assert!((accountant.spent("red", "icu").unwrap().epsilon - 0.8).abs() < 1e-9);
    }

    #[test]
    fn released_values_stay_in_the_range() {
        let accountant = InMemoryAccountant::new();
        let payer = payer_with(&accountant, 100.0);
        let range = Range { min: 0.0, max: 1.0 };
        // Noise of scale 1 around 0.99: clamped, never outside [0, 1].
        for _ in 0..50 {
            let value = release_scalar(&payer, 0.99, 0.5, 0.5, range).unwrap().value;
            assert!((0.0..=1.0).contains(&value), "{value}");
        }
    }

    #[test]
    fn release_ranges_are_bounded_or_refused() {
        let none = ClampBounds::default();
        assert_eq!(
            release_range(Metric::RocAuc, &none).unwrap(),
            Range { min: 0.0, max: 1.0 }
        );
        assert_eq!(
            release_range(Metric::R2, &none).unwrap(),
            Range {
                min: -1.0,
                max: 1.0
            }
        );
        // Metrics a label-level release refuses are releasable per block on the row level.
        for metric in [Metric::F1, Metric::AveragePrecision, Metric::CIndex] {
            assert!(release_range(metric, &none).is_ok(), "{metric}");
        }
        assert!(release_range(Metric::LogLoss, &none).is_err());
        assert!(release_range(Metric::Rmse, &none).is_err());
        // No finite range: refused.
        for metric in [Metric::CalibrationSlope, Metric::CalibrationIntercept] {
            assert!(
                matches!(
                    release_range(metric, &none),
                    Err(PrivacyError::UnboundedSensitivity { .. })
                ),
                "{metric}"
            );
        }
        // Bounded survival metrics, and the IPCW Brier scores clamped into [0, 1].
        for metric in [
            Metric::Ece,
            Metric::UnoCIndex,
            Metric::TdAuc,
            Metric::EceAtHorizon,
            Metric::IntegratedBrier,
            Metric::BrierAtHorizon,
        ] {
            assert_eq!(
                release_range(metric, &none).unwrap(),
                Range { min: 0.0, max: 1.0 }
            );
        }
        let floor = ClampBounds {
            probability_floor: Some(0.01),
            value_range: Some((10.0, 30.0)),
        };
        let log_loss = release_range(Metric::LogLoss, &floor).unwrap();
        assert!((log_loss.max - 100f64.ln()).abs() < 1e-12);
        assert_eq!(
            release_range(Metric::Mae, &floor).unwrap(),
            Range {
                min: 0.0,
                max: 20.0
            }
        );
    }

    #[test]
    fn the_block_mean_counts_a_missing_block_as_the_midpoint_and_clamps() {
        let range = Range { min: 0.0, max: 1.0 };
        let mean = block_mean(&[Some(1.0), None, Some(7.0), Some(f64::NAN)], range).unwrap();
        assert!((mean - (1.0 + 0.5 + 1.0 + 0.5) / 4.0).abs() < 1e-12);
        assert!(block_mean(&[], range).is_err());
        let sensitivity = row_sensitivity(range, 200).unwrap();
        assert_eq!(sensitivity.value, 0.005);
        assert!(row_sensitivity(range, 1).is_err());
        // A block where AUC is undefined (one class) has no score of its own.
        let one_class = Truth::Binary(vec![true, true]);
        let scores = Predictions::Scores(vec![0.2, 0.9]);
        assert_eq!(
            block_score(
                Metric::RocAuc,
                &one_class,
                &scores,
                &ScoreContext::default(),
                &ClampBounds::default()
            )
            .unwrap(),
            None
        );
    }

    #[test]
    fn declared_facts_are_checked_against_the_data() {
        let declared = PublicPartFacts {
            rows: 100,
            minority_class_rows: Some(10),
        };
        let enough = PublicPartFacts {
            rows: 120,
            minority_class_rows: Some(10),
        };
        assert!(enough.check_against(&declared).is_ok());
        let few_rows = PublicPartFacts { rows: 99, ..enough };
        assert!(few_rows.check_against(&declared).is_err());
        let small_class = PublicPartFacts {
            minority_class_rows: Some(9),
            ..enough
        };
        assert!(small_class.check_against(&declared).is_err());
    }

    #[test]
    fn ladder_steps_follow_the_noise_and_grids_round() {
        assert_eq!(default_ladder_step(0.03), 0.05);
        assert_eq!(default_ladder_step(0.05), 0.05);
        assert_eq!(default_ladder_step(0.0031), 0.005);
        assert_eq!(default_ladder_step(0.15), 0.2);
        assert_eq!(default_ladder_step(f64::NAN), 0.01);
        let range = Range { min: 0.0, max: 1.0 };
        assert_eq!(round_to_grid(0.7349, 0.01, range), 0.73);
        assert_eq!(round_to_grid(1.04, 0.1, range), 1.0);
        assert_eq!(grid_levels(range, 0.01), Some(101));
        let unbounded = Range {
            min: 0.0,
            max: f64::INFINITY,
        };
        assert_eq!(grid_levels(unbounded, 0.01), None);
    }

    #[test]
    fn ladder_shows_only_real_improvements() {
        let mut ladder = LadderState::new(Metric::RocAuc, 0.01).unwrap();
        assert_eq!(ladder.submit(0.7012), (0.70, true));
        // Within one step of the best: the old score again.
        assert_eq!(ladder.submit(0.7090), (0.70, false));
        let (shown, improved) = ladder.submit(0.7254);
        assert!(improved && (shown - 0.73).abs() < 1e-12);
        let mut loss = LadderState::new(Metric::LogLoss, 0.05).unwrap();
        loss.submit(0.5);
        assert!(!loss.submit(0.46).1);
        assert!(loss.submit(0.4).1);
        // The state is plain data arena can persist.
        let json = serde_json::to_string(&loss).unwrap();
        assert_eq!(serde_json::from_str::<LadderState>(&json).unwrap(), loss);
        // Calibration slope: better is nearer 1, from either side.
        let mut slope = LadderState::new(Metric::CalibrationSlope, 0.05).unwrap();
        slope.submit(0.7);
        assert!(
            !slope.submit(1.28).1,
            "0.28 from 1 is not better than 0.3 by a step"
        );
        assert!(slope.submit(1.2).1);
        assert!(!slope.submit(0.2).1);
        let mut intercept = LadderState::new(Metric::CalibrationIntercept, 0.05).unwrap();
        intercept.submit(-0.5);
        assert!(intercept.submit(0.3).1);
    }

    #[test]
    fn clamped_regression_scores_use_the_declared_range() {
        let truth = Truth::Regression(vec![0.0, 10.0]);
        let predictions = Predictions::Scores(vec![100.0, 10.0]);
        let clamp = ClampBounds {
            probability_floor: None,
            value_range: Some((0.0, 20.0)),
        };
        assert_eq!(
            clamped_score(
                Metric::Mae,
                &truth,
                &predictions,
                &ScoreContext::default(),
                &clamp
            )
            .unwrap(),
            10.0
        );
        assert_eq!(Metric::Mae.score(&truth, &predictions).unwrap(), 50.0);
    }
}
