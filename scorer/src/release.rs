//! Releasing public-leaderboard scores safely: Laplace-noised scores and the Ladder.
//!
//! A team that sees exact public scores can learn the hidden public labels by submitting
//! many slightly different predictions. Two defences, chosen per competition:
//!
//! - **Laplace**: the score plus Laplace noise of scale Δ/ε (OpenDP), where Δ bounds how
//!   much one row of the public part can move the metric (table in the crate docs). Each
//!   release costs ε and is charged to the team's budget on the dataset before it is shown.
//! - **Ladder** (Blum & Hardt 2015, Algorithm 1): a team sees a new score only when it beats
//!   the best it has seen by more than a step η, rounded to a multiple of η; otherwise it
//!   sees its previous best again. This bounds the leaderboard's error under adaptive
//!   submissions but is not differential privacy by itself. With `epsilon: Some(ε)` the
//!   Ladder runs on the Laplace-noised score (post-processing, so the release is ε-DP and is
//!   charged); with `None` the release states no ε and charges nothing.

use serde::{Deserialize, Serialize};

use crate::budget::{BudgetAccountant, ChargeReceipt};
use crate::error::PrivacyError;
use crate::metrics::{self, Direction, Metric, Predictions, Truth};
use crate::noise::{NoiseMechanism, prepare};

/// Facts about the public part that sensitivities depend on. The number of rows and of
/// rows in the minority class are treated as public: organizers publish them with the
/// competition.
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
        Metric::CIndex => Err(unbounded(
            metric,
            "one row can change the number of comparable pairs arbitrarily",
        )),
    }
}

/// The score as it is released: the metric of the clamped data where clamping applies.
pub fn clamped_score(
    metric: Metric,
    truth: &Truth,
    predictions: &Predictions,
    clamp: &ClampBounds,
) -> Result<f64, PrivacyError> {
    // Validates shapes and values once, whatever follows.
    let exact = metric.score(truth, predictions)?;
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

/// How the public score is released.
pub enum ReleasePolicy<'s> {
    Laplace {
        epsilon: f64,
    },
    Ladder {
        state: &'s mut LadderState,
        epsilon: Option<f64>,
    },
}

/// What a team may see of its public score, and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRelease {
    pub metric: Metric,
    /// The released score (never the exact one).
    pub value: f64,
    /// The ε this release is differentially private with; `None` for a Ladder without noise.
    pub epsilon: Option<f64>,
    pub mechanism: ReleaseMechanism,
    pub sensitivity: Option<Sensitivity>,
    /// Laplace scale b of the noise added, if any.
    pub noise_scale: Option<f64>,
    /// Set for Ladder releases: whether the shown score changed.
    pub ladder_improved: Option<bool>,
    /// The budget charge, recorded before the value was computed.
    pub charge: Option<ChargeReceipt>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseMechanism {
    Laplace,
    Ladder,
    NoisyLadder,
}

/// Releases a public score under `policy`, charging `payer` first when noise is added.
/// Refuses (charging nothing) if the metric's sensitivity is unbounded and no clamp makes
/// it bounded, or if the budget would be exceeded.
pub fn release_public_score(
    payer: &Payer<'_>,
    metric: Metric,
    truth: &Truth,
    predictions: &Predictions,
    clamp: &ClampBounds,
    policy: ReleasePolicy<'_>,
) -> Result<ScoreRelease, PrivacyError> {
    let epsilon = match &policy {
        ReleasePolicy::Laplace { epsilon } => Some(*epsilon),
        ReleasePolicy::Ladder { epsilon, .. } => *epsilon,
    };
    let range = metric.range();
    let (value, sensitivity, noise_scale, charge) = match epsilon {
        Some(epsilon) => {
            let sensitivity = score_sensitivity(metric, &PublicPartFacts::of(truth), clamp)?;
            let score = clamped_score(metric, truth, predictions, clamp)?;
            let noise = prepare(NoiseMechanism::Laplace, sensitivity.value, epsilon)?;
            let charge = payer
                .accountant
                .charge(payer.team, payer.dataset, noise.cost)?;
            let noisy = noise.apply(&[score])?.first().copied().unwrap_or(score);
            // Clamping into the metric's range is post-processing: it costs no privacy.
            let shown = noisy.clamp(range.min, range.max);
            (shown, Some(sensitivity), Some(noise.scale), Some(charge))
        }
        None => (metric.score(truth, predictions)?, None, None, None),
    };
    let charged_epsilon = charge.as_ref().map(|c| c.charged.epsilon);
    Ok(match policy {
        ReleasePolicy::Laplace { .. } => ScoreRelease {
            metric,
            value,
            epsilon: charged_epsilon,
            mechanism: ReleaseMechanism::Laplace,
            sensitivity,
            noise_scale,
            ladder_improved: None,
            charge,
        },
        ReleasePolicy::Ladder { state, epsilon } => {
            if state.metric != metric {
                return Err(PrivacyError::InvalidParameter(format!(
                    "Ladder state is for `{}`, not `{metric}`",
                    state.metric
                )));
            }
            let (shown, improved) = state.submit(value);
            ScoreRelease {
                metric,
                value: shown,
                epsilon: charged_epsilon,
                mechanism: if epsilon.is_some() {
                    ReleaseMechanism::NoisyLadder
                } else {
                    ReleaseMechanism::Ladder
                },
                sensitivity,
                noise_scale,
                ladder_improved: Some(improved),
                charge,
            }
        }
    })
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
        ] {
            assert!(
                score_sensitivity(refused, &facts, &floored).is_err(),
                "{refused}"
            );
        }
    }

    #[test]
    fn laplace_release_is_charged_and_states_epsilon() {
        let accountant = InMemoryAccountant::new();
        let payer = payer_with(&accountant, 1.0);
        let truth = Truth::Binary((0..400).map(|i| i % 2 == 0).collect());
        let predictions = Predictions::Scores(
            (0..400)
                .map(|i| if i % 4 == 0 { 0.9 } else { 0.3 })
                .collect(),
        );
        let release_accuracy = || {
            release_public_score(
                &payer,
                Metric::Accuracy,
                &truth,
                &predictions,
                &ClampBounds::default(),
                ReleasePolicy::Laplace { epsilon: 0.4 },
            )
        };
        let release = release_accuracy().unwrap();
        assert_eq!(release.mechanism, ReleaseMechanism::Laplace);
        assert!((release.epsilon.unwrap() - 0.4).abs() < 1e-9);
        assert!((0.0..=1.0).contains(&release.value));
        assert!((accountant.spent("red", "icu").unwrap().epsilon - 0.4).abs() < 1e-9);
        // Two more do not fit in ε = 1: the third is refused and charges nothing.
        release_accuracy().unwrap();
        let refused = release_accuracy();
        assert!(matches!(refused, Err(PrivacyError::BudgetExceeded { .. })));
        assert!((accountant.spent("red", "icu").unwrap().epsilon - 0.8).abs() < 1e-9);
    }

    #[test]
    fn unbounded_metric_is_refused_before_charging() {
        let accountant = InMemoryAccountant::new();
        let payer = payer_with(&accountant, 1.0);
        let truth = Truth::Regression(vec![1.0, 2.0, 3.0]);
        let predictions = Predictions::Scores(vec![1.0, 2.0, 4.0]);
        let refused = release_public_score(
            &payer,
            Metric::R2,
            &truth,
            &predictions,
            &ClampBounds::default(),
            ReleasePolicy::Laplace { epsilon: 0.5 },
        );
        assert!(refused.unwrap_err().to_string().contains("use the Ladder"));
        assert_eq!(accountant.spent("red", "icu").unwrap().epsilon, 0.0);
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
            clamped_score(Metric::Mae, &truth, &predictions, &clamp).unwrap(),
            10.0
        );
        assert_eq!(Metric::Mae.score(&truth, &predictions).unwrap(), 50.0);
    }
}
