//! Regression metrics.

use super::{check_finite, check_lengths};
use crate::error::MetricError;

fn check(truth: &[f64], predictions: &[f64]) -> Result<(), MetricError> {
    check_lengths(truth.len(), predictions.len())?;
    check_finite(truth, "target")?;
    check_finite(predictions, "prediction")
}

/// Root mean squared error.
pub fn rmse(truth: &[f64], predictions: &[f64]) -> Result<f64, MetricError> {
    check(truth, predictions)?;
    let sum: f64 = truth
        .iter()
        .zip(predictions)
        .map(|(y, p)| (y - p).powi(2))
        .sum();
    Ok((sum / truth.len() as f64).sqrt())
}

/// Mean absolute error.
pub fn mae(truth: &[f64], predictions: &[f64]) -> Result<f64, MetricError> {
    check(truth, predictions)?;
    let sum: f64 = truth
        .iter()
        .zip(predictions)
        .map(|(y, p)| (y - p).abs())
        .sum();
    Ok(sum / truth.len() as f64)
}

/// Coefficient of determination. A constant truth gives 1 for a perfect prediction and 0
/// otherwise (scikit-learn's `force_finite=True`).
pub fn r2(truth: &[f64], predictions: &[f64]) -> Result<f64, MetricError> {
    check(truth, predictions)?;
    let mean = truth.iter().sum::<f64>() / truth.len() as f64;
    let residual: f64 = truth
        .iter()
        .zip(predictions)
        .map(|(y, p)| (y - p).powi(2))
        .sum();
    let total: f64 = truth.iter().map(|y| (y - mean).powi(2)).sum();
    Ok(if total == 0.0 {
        if residual == 0.0 { 1.0 } else { 0.0 }
    } else {
        1.0 - residual / total
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_truth_follows_scikit_learn() {
        assert_eq!(r2(&[2.0, 2.0], &[2.0, 2.0]).unwrap(), 1.0);
        assert_eq!(r2(&[2.0, 2.0], &[2.0, 3.0]).unwrap(), 0.0);
    }

    #[test]
    fn simple_values() {
        assert_eq!(mae(&[1.0, 2.0], &[2.0, 4.0]).unwrap(), 1.5);
        assert_eq!(rmse(&[0.0, 0.0], &[3.0, 4.0]).unwrap(), (12.5f64).sqrt());
        assert!(matches!(
            rmse(&[0.0, f64::INFINITY], &[0.0, 0.0]),
            Err(MetricError::NotFinite {
                row: 1,
                what: "target",
                ..
            })
        ));
    }
}
