//! Calibration: whether predicted probabilities match observed frequencies.
//!
//! - Calibration slope and intercept (binary): logistic recalibration on logit(p). The slope
//!   is the coefficient of logit(p) in the logistic regression `y ~ 1 + logit(p)` (1 when
//!   calibrated, below 1 when the predictions are too extreme); the intercept is the
//!   calibration-in-the-large, the intercept of `y ~ 1` with logit(p) as an offset (slope
//!   held at 1; 0 when calibrated, negative when the predicted risks are too high). They
//!   match statsmodels' `GLM(..., family=Binomial())` with and without `offset` to 1e-9.
//!   Both are unbounded, and both need every p strictly inside (0, 1).
//! - Expected calibration error (binary): ten equal-width bins on [0, 1], bin
//!   `min(⌊10 p⌋, 9)` (so p = 1 joins the last bin), and `Σ_b (n_b / n) |mean(y) − mean(p)|`
//!   over the non-empty bins. Bounded: [0, 1].
//! - Expected calibration error at a horizon h (survival): p = 1 − S(h | x), binned as
//!   above; a bin's observed risk is 1 − KM(h), the Kaplan-Meier estimate of the bin's own
//!   test rows at h (carried forward past the bin's last time, as lifelines does). Bounded:
//!   [0, 1]. The reference is `fixtures/generate.py` with lifelines' `KaplanMeierFitter`.
//!
//! Calibration slope and intercept at a survival horizon are left out: no library the
//! fixtures could call defines them for censored data (R's `rms::val.surv` is not in
//! Python), and a definition of our own would have nothing to be checked against.

use super::ipcw::check_horizons;
use super::km::{KaplanMeier, check_labels};
use super::{check_finite, check_lengths, check_probabilities};
use crate::error::MetricError;

const MAX_ITERATIONS: usize = 100;

fn sigmoid(eta: f64) -> f64 {
    if eta >= 0.0 {
        1.0 / (1.0 + (-eta).exp())
    } else {
        let e = eta.exp();
        e / (1.0 + e)
    }
}

/// ln(1 + e^x) without overflow.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Solves `h · step = g` for a tiny symmetric system by Gaussian elimination; `None` when
/// it is singular.
fn solve<const P: usize>(mut h: [[f64; P]; P], mut g: [f64; P]) -> Option<[f64; P]> {
    for col in 0..P {
        let pivot = h[col][col];
        if !(pivot.is_finite() && pivot.abs() > 1e-300) {
            return None;
        }
        for row in col + 1..P {
            let factor = h[row][col] / pivot;
            let pivot_row = h[col];
            for (target, source) in h[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *target -= factor * source;
            }
            g[row] -= factor * g[col];
        }
    }
    let mut x = [0.0; P];
    for row in (0..P).rev() {
        let mut rest = g[row];
        for k in row + 1..P {
            rest -= h[row][k] * x[k];
        }
        x[row] = rest / h[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Maximum-likelihood logistic regression with `P` (1 or 2) coefficients, by Newton-Raphson
/// (for the logit link the same iterations as IRLS). Written out here because the fits have
/// one or two parameters: the 2×2 solve is a few lines, and no linear-algebra or GLM crate
/// is worth a dependency for it. Steps are halved while they lower the likelihood, so a
/// poor start cannot make the iteration diverge; callers rule out separated data first,
/// where no maximum exists.
fn fit_logistic<const P: usize>(
    metric: &'static str,
    labels: &[bool],
    design: impl Fn(usize) -> [f64; P],
    offset: impl Fn(usize) -> f64,
    start: [f64; P],
) -> Result<[f64; P], MetricError> {
    let n = labels.len();
    let eta = |beta: &[f64; P], i: usize| {
        let x = design(i);
        (0..P).map(|a| x[a] * beta[a]).sum::<f64>() + offset(i)
    };
    let log_likelihood = |beta: &[f64; P]| -> f64 {
        (0..n)
            .map(|i| {
                let e = eta(beta, i);
                -softplus(if labels[i] { -e } else { e })
            })
            .sum()
    };
    let not_converged = MetricError::NotConverged {
        metric,
        iterations: MAX_ITERATIONS,
    };
    let mut beta = start;
    let mut likelihood = log_likelihood(&beta);
    for _ in 0..MAX_ITERATIONS {
        let mut gradient = [0.0; P];
        let mut hessian = [[0.0; P]; P];
        for (i, &y) in labels.iter().enumerate() {
            let x = design(i);
            let mu = sigmoid(eta(&beta, i));
            let residual = f64::from(u8::from(y)) - mu;
            let weight = mu * (1.0 - mu);
            for a in 0..P {
                gradient[a] += x[a] * residual;
                for b in 0..P {
                    hessian[a][b] += weight * x[a] * x[b];
                }
            }
        }
        let step = solve(hessian, gradient).ok_or(MetricError::Undefined {
            metric,
            reason: "the logistic fit's information matrix is singular",
        })?;
        let mut scale = 1.0;
        let (candidate, candidate_likelihood) = loop {
            let mut candidate = beta;
            for a in 0..P {
                candidate[a] += scale * step[a];
            }
            let l = log_likelihood(&candidate);
            // Near the maximum the likelihood changes by less than its rounding error.
            if l >= likelihood - 1e-12 * (1.0 + likelihood.abs()) {
                break (candidate, l);
            }
            scale /= 2.0;
            if scale < 1e-12 {
                return Err(not_converged);
            }
        };
        let size = (0..P).map(|a| (scale * step[a]).abs()).fold(0.0, f64::max);
        let magnitude = candidate.iter().map(|b| b.abs()).fold(0.0, f64::max);
        beta = candidate;
        likelihood = candidate_likelihood;
        if !beta.iter().all(|b| b.is_finite()) {
            return Err(not_converged);
        }
        // Newton converges quadratically: after a step this small the error left is far
        // below the 1e-9 the fixtures ask for.
        if size <= 1e-11 * (1.0 + magnitude) {
            return Ok(beta);
        }
    }
    Err(not_converged)
}

/// logit(p) per row, refusing p outside (0, 1) where it is infinite.
fn logits(
    metric: &'static str,
    labels: &[bool],
    probabilities: &[f64],
) -> Result<Vec<f64>, MetricError> {
    check_lengths(labels.len(), probabilities.len())?;
    check_finite(probabilities, "probability")?;
    if let Some(row) = probabilities.iter().position(|&p| !(p > 0.0 && p < 1.0)) {
        return Err(MetricError::OutOfRange {
            row,
            what: "probability",
            value: probabilities[row],
            range: "(0, 1) (logit(p) must be finite for logistic recalibration)",
        });
    }
    if labels.iter().all(|&y| y) || !labels.iter().any(|&y| y) {
        return Err(MetricError::Undefined {
            metric,
            reason: "logistic recalibration needs both outcomes among the rows",
        });
    }
    Ok(probabilities
        .iter()
        .map(|&p| (p / (1.0 - p)).ln())
        .collect())
}

/// Calibration slope: the coefficient of logit(p) in `y ~ 1 + logit(p)`. Unbounded; 1 is
/// ideal.
pub fn calibration_slope(labels: &[bool], probabilities: &[f64]) -> Result<f64, MetricError> {
    const METRIC: &str = "calibration_slope";
    let x = logits(METRIC, labels, probabilities)?;
    let extreme = |outcome: bool| {
        let values = x.iter().zip(labels).filter(|&(_, &y)| y == outcome);
        let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), (&v, _)| {
            (l.min(v), h.max(v))
        });
        (low, high)
    };
    let ((low_0, high_0), (low_1, high_1)) = (extreme(false), extreme(true));
    if low_0.min(low_1) == high_0.max(high_1) {
        return Err(MetricError::Undefined {
            metric: METRIC,
            reason: "every row has the same probability, so no slope can be fitted",
        });
    }
    // With an intercept and one covariate the maximum exists exactly when the two outcomes'
    // ranges of logit(p) overlap in more than a point.
    if high_0 <= low_1 || high_1 <= low_0 {
        return Err(MetricError::Undefined {
            metric: METRIC,
            reason: "logit(p) separates the outcomes (no overlap between events and \
                     non-events), so the fitted slope is infinite",
        });
    }
    let beta = fit_logistic(METRIC, labels, |i| [1.0, x[i]], |_| 0.0, [0.0, 1.0])?;
    Ok(beta[1])
}

/// Calibration intercept (calibration-in-the-large): the intercept of `y ~ 1` with logit(p)
/// as an offset. Unbounded; 0 is ideal.
pub fn calibration_intercept(labels: &[bool], probabilities: &[f64]) -> Result<f64, MetricError> {
    let x = logits("calibration_intercept", labels, probabilities)?;
    let beta = fit_logistic("calibration_intercept", labels, |_| [1.0], |i| x[i], [0.0])?;
    Ok(beta[0])
}

/// The ECE bin of a probability: `min(⌊10 p⌋, 9)`. Callers pass p in [0, 1], where the
/// truncating cast is the floor: `f64::floor` is a libm call on the baseline x86-64 target,
/// and it was most of the ECE's time.
fn bin(p: f64) -> usize {
    debug_assert!((0.0..=1.0).contains(&p));
    ((p * 10.0) as usize).min(9)
}

/// Expected calibration error over ten equal-width bins (see the module docs). Bounded:
/// [0, 1]; 0 is ideal.
pub fn expected_calibration_error(
    labels: &[bool],
    probabilities: &[f64],
) -> Result<f64, MetricError> {
    check_lengths(labels.len(), probabilities.len())?;
    check_probabilities(probabilities, "probability")?;
    let mut count = [0usize; 10];
    // Events per bin, counted as integers: the same values as a float sum of 0s and 1s.
    let mut outcomes = [0usize; 10];
    let mut predicted = [0.0f64; 10];
    for (&y, &p) in labels.iter().zip(probabilities) {
        let b = bin(p);
        count[b] += 1;
        outcomes[b] += usize::from(y);
        predicted[b] += p;
    }
    let n = labels.len() as f64;
    Ok((0..10)
        .filter(|&b| count[b] > 0)
        .map(|b| {
            let c = count[b] as f64;
            c / n * (outcomes[b] as f64 / c - predicted[b] / c).abs()
        })
        .sum())
}

/// Expected calibration error at a horizon (see the module docs): predicted risks
/// `1 − S(h | x)` against each bin's Kaplan-Meier risk at h. The horizon must lie in the
/// test follow-up `[min time, max time)`, as for the IPCW metrics. Bounded: [0, 1].
pub fn survival_expected_calibration_error(
    time: &[f64],
    event: &[bool],
    survival_at_horizon: &[f64],
    horizon: f64,
) -> Result<f64, MetricError> {
    check_labels(time, event)?;
    check_lengths(time.len(), survival_at_horizon.len())?;
    check_probabilities(survival_at_horizon, "survival probability")?;
    check_horizons(&[horizon], time)?;
    let mut members: [(Vec<f64>, Vec<bool>, f64); 10] = Default::default();
    for ((&t, &e), &s) in time.iter().zip(event).zip(survival_at_horizon) {
        let p = 1.0 - s;
        let member = &mut members[bin(p)];
        member.0.push(t);
        member.1.push(e);
        member.2 += p;
    }
    let n = time.len() as f64;
    let mut total = 0.0;
    for (times, events, predicted) in &members {
        if times.is_empty() {
            continue;
        }
        let c = times.len() as f64;
        let observed = 1.0 - KaplanMeier::fit(times, events)?.at(horizon);
        total += c / n * (observed - predicted / c).abs();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfectly_calibrated_grouped_data_give_slope_one_and_intercept_zero() {
        // Ten rows at p = 0.2 with 2 events, ten at p = 0.7 with 7: the observed rates equal
        // the predictions, so the MLE is exactly slope 1, intercept 0.
        let mut labels = Vec::new();
        let mut p = Vec::new();
        for (prob, events) in [(0.2, 2), (0.7, 7)] {
            for i in 0..10 {
                labels.push(i < events);
                p.push(prob);
            }
        }
        assert!((calibration_slope(&labels, &p).unwrap() - 1.0).abs() < 1e-12);
        assert!(calibration_intercept(&labels, &p).unwrap().abs() < 1e-12);
        assert!(expected_calibration_error(&labels, &p).unwrap().abs() < 1e-15);
    }

    #[test]
    fn separated_or_one_class_data_are_refused() {
        let p = [0.1, 0.2, 0.8, 0.9];
        assert!(matches!(
            calibration_slope(&[false, false, true, true], &p),
            Err(MetricError::Undefined { .. })
        ));
        // Touching at one point is still separation (quasi-complete).
        assert!(calibration_slope(&[false, true, false, true], &[0.1, 0.5, 0.5, 0.9]).is_err());
        assert!(calibration_intercept(&[true; 4], &p).is_err());
        assert!(calibration_slope(&[true, false], &[1.0, 0.5]).is_err());
        // The intercept exists as soon as both outcomes occur.
        assert!(calibration_intercept(&[false, false, true, true], &p).is_ok());
    }

    #[test]
    fn ece_bins_put_one_in_the_last_bin() {
        assert_eq!(bin(1.0), 9);
        assert_eq!(bin(0.0), 0);
        assert_eq!(bin(0.95), 9);
        assert_eq!(
            expected_calibration_error(&[true, false], &[1.0, 0.0]).unwrap(),
            0.0
        );
        assert_eq!(
            expected_calibration_error(&[false, true], &[1.0, 0.0]).unwrap(),
            1.0
        );
    }
}
