//! Binary classification metrics. Labels are `bool` (true = positive), predictions the
//! positive-class probability (any real score for AUC and average precision).

use super::{check_finite, check_lengths, check_probabilities, order_key};
use crate::error::MetricError;

/// Decision threshold for the hard-decision metrics: positive when `p >= 0.5`.
pub const THRESHOLD: f64 = 0.5;

/// Sorted order keys of the positives' and the negatives' scores.
fn sorted_class_keys(labels: &[bool], scores: &[f64]) -> (Vec<u64>, Vec<u64>) {
    let n_pos = labels.iter().filter(|&&y| y).count();
    let mut positives = Vec::with_capacity(n_pos);
    let mut negatives = Vec::with_capacity(labels.len() - n_pos);
    for (&y, &s) in labels.iter().zip(scores) {
        if y {
            positives.push(order_key(s));
        } else {
            negatives.push(order_key(s));
        }
    }
    sort_keys(&mut positives);
    sort_keys(&mut negatives);
    (positives, negatives)
}

/// Unstable sort of plain integers: ties are indistinguishable, so stability is moot.
/// Large inputs sort on all cores (rayon), which is where AUC spends its time.
pub(crate) fn sort_keys(keys: &mut [u64]) {
    if keys.len() > 1 << 16 {
        use rayon::slice::ParallelSliceMut;
        keys.par_sort_unstable();
    } else {
        keys.sort_unstable();
    }
}

/// Calls `group(pos_in_group, neg_in_group, pos_below, neg_below)` for every distinct score,
/// lowest first, where the `_below` counts are of strictly lower scores.
fn for_each_tie_group(
    positives: &[u64],
    negatives: &[u64],
    mut group: impl FnMut(u64, u64, u64, u64),
) {
    let (mut i, mut j) = (0usize, 0usize);
    while i < positives.len() || j < negatives.len() {
        let value = match (positives.get(i), negatives.get(j)) {
            (Some(&p), Some(&n)) => p.min(n),
            (Some(&p), None) => p,
            (None, Some(&n)) => n,
            (None, None) => break,
        };
        let (pos_below, neg_below) = (i as u64, j as u64);
        while i < positives.len() && positives[i] == value {
            i += 1;
        }
        while j < negatives.len() && negatives[j] == value {
            j += 1;
        }
        group(
            i as u64 - pos_below,
            j as u64 - neg_below,
            pos_below,
            neg_below,
        );
    }
}

fn check_both_classes(metric: &'static str, n_pos: usize, n_neg: usize) -> Result<(), MetricError> {
    if n_pos == 0 || n_neg == 0 {
        return Err(MetricError::Undefined {
            metric,
            reason: "the truth has only one class",
        });
    }
    Ok(())
}

/// Area under the ROC curve (Mann-Whitney U with tied scores counting ½), O(n log n).
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> Result<f64, MetricError> {
    check_lengths(labels.len(), scores.len())?;
    check_finite(scores, "score")?;
    let (positives, negatives) = sorted_class_keys(labels, scores);
    check_both_classes("roc_auc", positives.len(), negatives.len())?;
    // Twice the U statistic, kept as an exact integer: 2·Σ pos·neg_below + Σ pos·neg_tied.
    let mut twice_u: u128 = 0;
    for_each_tie_group(&positives, &negatives, |pos, neg, _, neg_below| {
        twice_u += u128::from(pos) * u128::from(2 * neg_below + neg);
    });
    let pairs = 2 * positives.len() as u128 * negatives.len() as u128;
    Ok(twice_u as f64 / pairs as f64)
}

/// Average precision as scikit-learn defines it: Σ (Rₖ − Rₖ₋₁)·Pₖ over distinct
/// thresholds (no interpolation).
pub fn average_precision(labels: &[bool], scores: &[f64]) -> Result<f64, MetricError> {
    check_lengths(labels.len(), scores.len())?;
    check_finite(scores, "score")?;
    let (positives, negatives) = sorted_class_keys(labels, scores);
    if positives.is_empty() {
        return Err(MetricError::Undefined {
            metric: "average_precision",
            reason: "the truth has no positive row",
        });
    }
    let (n_pos, n_neg) = (positives.len() as u64, negatives.len() as u64);
    let mut sum = 0.0;
    // Walking up from the lowest score, the threshold "score >= this group" keeps everything
    // not below it.
    for_each_tie_group(&positives, &negatives, |pos, _, pos_below, neg_below| {
        if pos > 0 {
            let true_pos = (n_pos - pos_below) as f64;
            let false_pos = (n_neg - neg_below) as f64;
            sum += pos as f64 * (true_pos / (true_pos + false_pos));
        }
    });
    Ok(sum / n_pos as f64)
}

/// Mean negative log-likelihood, probabilities clipped to `[ε, 1−ε]` (ε = `f64::EPSILON`)
/// as scikit-learn does.
pub fn log_loss(labels: &[bool], probabilities: &[f64]) -> Result<f64, MetricError> {
    check_lengths(labels.len(), probabilities.len())?;
    check_probabilities(probabilities, "probability")?;
    let total: f64 = labels
        .iter()
        .zip(probabilities)
        .map(|(&y, &p)| {
            let p_true = if y { p } else { 1.0 - p };
            -clip_probability(p_true).ln()
        })
        .sum();
    Ok(total / labels.len() as f64)
}

pub(crate) fn clip_probability(p: f64) -> f64 {
    p.clamp(f64::EPSILON, 1.0 - f64::EPSILON)
}

/// Mean squared difference between probability and outcome.
pub fn brier_score(labels: &[bool], probabilities: &[f64]) -> Result<f64, MetricError> {
    check_lengths(labels.len(), probabilities.len())?;
    check_probabilities(probabilities, "probability")?;
    let total: f64 = labels
        .iter()
        .zip(probabilities)
        .map(|(&y, &p)| (p - f64::from(u8::from(y))).powi(2))
        .sum();
    Ok(total / labels.len() as f64)
}

/// True/false positive/negative counts at [`THRESHOLD`].
struct Confusion {
    tp: u64,
    fp: u64,
    tn: u64,
    fn_: u64,
}

fn confusion(labels: &[bool], probabilities: &[f64]) -> Result<Confusion, MetricError> {
    check_lengths(labels.len(), probabilities.len())?;
    check_finite(probabilities, "probability")?;
    let mut c = Confusion {
        tp: 0,
        fp: 0,
        tn: 0,
        fn_: 0,
    };
    for (&y, &p) in labels.iter().zip(probabilities) {
        match (y, p >= THRESHOLD) {
            (true, true) => c.tp += 1,
            (false, true) => c.fp += 1,
            (false, false) => c.tn += 1,
            (true, false) => c.fn_ += 1,
        }
    }
    Ok(c)
}

/// Share of rows whose decision at 0.5 matches the label.
pub fn accuracy(labels: &[bool], probabilities: &[f64]) -> Result<f64, MetricError> {
    let c = confusion(labels, probabilities)?;
    Ok((c.tp + c.tn) as f64 / labels.len() as f64)
}

/// Mean recall over the classes present in the truth (scikit-learn's definition).
pub fn balanced_accuracy(labels: &[bool], probabilities: &[f64]) -> Result<f64, MetricError> {
    let c = confusion(labels, probabilities)?;
    let recalls: Vec<f64> = [(c.tp, c.tp + c.fn_), (c.tn, c.tn + c.fp)]
        .into_iter()
        .filter(|&(_, support)| support > 0)
        .map(|(hit, support)| hit as f64 / support as f64)
        .collect();
    Ok(recalls.iter().sum::<f64>() / recalls.len() as f64)
}

/// F1 of the positive class at 0.5; 0 when there is no positive row and no positive
/// decision (scikit-learn's `zero_division` default).
pub fn f1_at_half(labels: &[bool], probabilities: &[f64]) -> Result<f64, MetricError> {
    let c = confusion(labels, probabilities)?;
    let denominator = 2 * c.tp + c.fp + c.fn_;
    Ok(if denominator == 0 {
        0.0
    } else {
        (2 * c.tp) as f64 / denominator as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_half() {
        let labels = [true, false, true, false];
        assert_eq!(roc_auc(&labels, &[0.5, 0.5, 0.5, 0.5]).unwrap(), 0.5);
        assert_eq!(roc_auc(&labels, &[0.9, 0.1, 0.8, 0.2]).unwrap(), 1.0);
        assert_eq!(roc_auc(&labels, &[0.1, 0.9, 0.2, 0.8]).unwrap(), 0.0);
        // -0.0 and 0.0 are the same score.
        assert_eq!(roc_auc(&[true, false], &[-0.0, 0.0]).unwrap(), 0.5);
    }

    #[test]
    fn auc_refuses_one_class_and_nan() {
        assert!(matches!(
            roc_auc(&[true, true], &[0.1, 0.2]),
            Err(MetricError::Undefined { .. })
        ));
        assert!(matches!(
            roc_auc(&[true, false], &[f64::NAN, 0.2]),
            Err(MetricError::NotFinite { row: 0, .. })
        ));
        assert!(matches!(roc_auc(&[], &[]), Err(MetricError::Empty)));
    }

    #[test]
    fn average_precision_of_a_perfect_ranking_is_one() {
        let labels = [true, false, true, false];
        assert_eq!(
            average_precision(&labels, &[0.9, 0.1, 0.8, 0.2]).unwrap(),
            1.0
        );
        // Everything tied: one threshold, precision = prevalence.
        assert_eq!(average_precision(&labels, &[0.3; 4]).unwrap(), 0.5);
    }

    #[test]
    fn hard_decisions_use_half_inclusive() {
        let labels = [true, false];
        assert_eq!(accuracy(&labels, &[0.5, 0.49]).unwrap(), 1.0);
        assert_eq!(f1_at_half(&[false, false], &[0.1, 0.2]).unwrap(), 0.0);
        assert_eq!(balanced_accuracy(&[true, true], &[0.9, 0.1]).unwrap(), 0.5);
    }

    #[test]
    fn probabilities_must_lie_in_unit_interval() {
        assert!(matches!(
            log_loss(&[true], &[1.5]),
            Err(MetricError::OutOfRange { row: 0, .. })
        ));
        assert!(log_loss(&[true], &[1.0]).unwrap() < 1e-15);
        assert!((log_loss(&[true], &[0.0]).unwrap() + f64::EPSILON.ln()).abs() < 1e-12);
    }
}
