//! Multiclass metrics over row-major class probabilities.

use super::binary::clip_probability;
use super::check_lengths;
use crate::error::MetricError;

/// How far a row's probabilities may sum from 1 (rounding in CSV files and softmax outputs).
pub const SUM_TOLERANCE: f64 = 1e-6;

/// Checks shapes, labels and probability rows; returns the number of rows.
fn check(labels: &[u32], probabilities: &[f64], n_classes: usize) -> Result<usize, MetricError> {
    if n_classes < 2 {
        return Err(MetricError::TooFewClasses(n_classes));
    }
    if !probabilities.len().is_multiple_of(n_classes) {
        return Err(MetricError::LengthMismatch {
            what: "probability values (not a whole number of rows)",
            truth: labels.len() * n_classes,
            predictions: probabilities.len(),
        });
    }
    check_lengths(labels.len(), probabilities.len() / n_classes)?;
    for (row, &label) in labels.iter().enumerate() {
        if label as usize >= n_classes {
            return Err(MetricError::ClassOutOfRange {
                row,
                label,
                n_classes,
            });
        }
    }
    for (row, probs) in probabilities.chunks_exact(n_classes).enumerate() {
        for &p in probs {
            if !p.is_finite() {
                return Err(MetricError::NotFinite {
                    row,
                    what: "class probability",
                    value: p,
                });
            }
            if !(0.0..=1.0).contains(&p) {
                return Err(MetricError::OutOfRange {
                    row,
                    what: "class probability",
                    value: p,
                    range: "[0, 1]",
                });
            }
        }
        let sum: f64 = probs.iter().sum();
        if (sum - 1.0).abs() > SUM_TOLERANCE {
            return Err(MetricError::ProbabilitiesDoNotSumToOne {
                row,
                sum,
                tolerance: SUM_TOLERANCE,
            });
        }
    }
    Ok(labels.len())
}

/// The first class with the highest probability (as `numpy.argmax`).
fn predicted_class(probs: &[f64]) -> usize {
    let mut best = 0;
    for (class, &p) in probs.iter().enumerate() {
        if p > probs[best] {
            best = class;
        }
    }
    best
}

pub fn multiclass_accuracy(
    labels: &[u32],
    probabilities: &[f64],
    n_classes: usize,
) -> Result<f64, MetricError> {
    let n = check(labels, probabilities, n_classes)?;
    let hits = labels
        .iter()
        .zip(probabilities.chunks_exact(n_classes))
        .filter(|(label, probs)| predicted_class(probs) == **label as usize)
        .count();
    Ok(hits as f64 / n as f64)
}

/// Unweighted mean of per-class F1 over the classes that occur in the truth or in the
/// predictions (scikit-learn's `average="macro"`).
pub fn macro_f1(
    labels: &[u32],
    probabilities: &[f64],
    n_classes: usize,
) -> Result<f64, MetricError> {
    check(labels, probabilities, n_classes)?;
    let mut true_pos = vec![0u64; n_classes];
    let mut actual = vec![0u64; n_classes];
    let mut predicted = vec![0u64; n_classes];
    for (&label, probs) in labels.iter().zip(probabilities.chunks_exact(n_classes)) {
        let guess = predicted_class(probs);
        let label = label as usize;
        actual[label] += 1;
        predicted[guess] += 1;
        if guess == label {
            true_pos[label] += 1;
        }
    }
    let scores: Vec<f64> = (0..n_classes)
        .filter(|&c| actual[c] + predicted[c] > 0)
        .map(|c| 2.0 * true_pos[c] as f64 / (actual[c] + predicted[c]) as f64)
        .collect();
    Ok(scores.iter().sum::<f64>() / scores.len() as f64)
}

/// Mean negative log-probability of the true class, clipped as scikit-learn does.
pub fn multiclass_log_loss(
    labels: &[u32],
    probabilities: &[f64],
    n_classes: usize,
) -> Result<f64, MetricError> {
    let n = check(labels, probabilities, n_classes)?;
    let total: f64 = labels
        .iter()
        .zip(probabilities.chunks_exact(n_classes))
        .map(|(&label, probs)| -clip_probability(probs[label as usize]).ln())
        .sum();
    Ok(total / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(predicted_class(&[0.4, 0.4, 0.2]), 0);
        assert_eq!(multiclass_accuracy(&[1], &[0.4, 0.4, 0.2], 3).unwrap(), 0.0);
    }

    #[test]
    fn rows_must_be_probability_distributions() {
        assert!(matches!(
            multiclass_accuracy(&[0, 1], &[0.5, 0.5, 0.7, 0.7], 2),
            Err(MetricError::ProbabilitiesDoNotSumToOne { row: 1, .. })
        ));
        assert!(matches!(
            macro_f1(&[2], &[0.5, 0.5], 2),
            Err(MetricError::ClassOutOfRange {
                row: 0,
                label: 2,
                ..
            })
        ));
        assert!(matches!(
            multiclass_log_loss(&[0], &[1.0], 1),
            Err(MetricError::TooFewClasses(1))
        ));
    }

    #[test]
    fn macro_f1_ignores_classes_never_seen() {
        // Class 2 never occurs: the mean runs over classes 0 and 1 only.
        let probs = [0.9, 0.05, 0.05, 0.05, 0.9, 0.05];
        assert_eq!(macro_f1(&[0, 1], &probs, 3).unwrap(), 1.0);
    }
}
