//! Organizer statistics: bootstrap confidence intervals, a paired bootstrap test between
//! two entries, and per-site scores. These are exact (not released to teams); anything
//! shown to teams goes through [`crate::release`].
//!
//! Resamples are drawn from ChaCha20 seeded by `(seed, resample index)`, so results are
//! reproducible and independent of thread scheduling (resamples run on rayon).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::MetricError;
use crate::metrics::{Metric, Predictions, ScoreContext, Truth};

/// A percentile bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    /// The metric on the full data.
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
    /// e.g. 0.95.
    pub level: f64,
    /// Resamples on which the metric was defined (e.g. AUC needs both classes).
    pub resamples: usize,
    /// Resamples skipped because the metric was undefined on them.
    pub undefined_resamples: usize,
}

/// Bootstrap settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    pub resamples: usize,
    pub level: f64,
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            resamples: 1000,
            level: 0.95,
            seed: 0,
        }
    }
}

fn resample_indices(n: usize, seed: u64, resample: usize) -> Vec<usize> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(resample as u64);
    (0..n).map(|_| rng.gen_range(0..n)).collect()
}

/// Linear-interpolated quantile of sorted values (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let low = position.floor() as usize;
    let high = position.ceil() as usize;
    sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64)
}

fn check_config(config: &BootstrapConfig) -> Result<(), MetricError> {
    if config.resamples == 0 || !(config.level > 0.0 && config.level < 1.0) {
        return Err(MetricError::Undefined {
            metric: "bootstrap",
            reason: "needs at least one resample and a level in (0, 1)",
        });
    }
    Ok(())
}

fn interval(
    estimate: f64,
    mut values: Vec<f64>,
    config: &BootstrapConfig,
) -> Result<ConfidenceInterval, MetricError> {
    let undefined_resamples = config.resamples - values.len();
    if values.is_empty() {
        return Err(MetricError::Undefined {
            metric: "bootstrap",
            reason: "the metric was undefined on every resample",
        });
    }
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - config.level) / 2.0;
    Ok(ConfidenceInterval {
        estimate,
        lower: quantile(&values, tail),
        upper: quantile(&values, 1.0 - tail),
        level: config.level,
        resamples: values.len(),
        undefined_resamples,
    })
}

/// Percentile bootstrap confidence interval of `metric`.
pub fn bootstrap_ci(
    metric: Metric,
    truth: &Truth,
    predictions: &Predictions,
    context: &ScoreContext,
    config: &BootstrapConfig,
) -> Result<ConfidenceInterval, MetricError> {
    check_config(config)?;
    let estimate = metric.score_with(truth, predictions, context)?;
    let n = truth.len();
    let values: Vec<f64> = (0..config.resamples)
        .into_par_iter()
        .filter_map(|r| {
            let rows = resample_indices(n, config.seed, r);
            metric
                .score_with(&truth.select(&rows), &predictions.select(&rows), context)
                .ok()
        })
        .collect();
    interval(estimate, values, config)
}

/// Whether entry A and entry B differ on the same rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedComparison {
    /// `score(A) − score(B)` with its bootstrap interval.
    pub difference: ConfidenceInterval,
    /// Two-sided bootstrap p-value for "no difference": 2·min(P(d ≤ 0), P(d ≥ 0)).
    pub p_value: f64,
    /// Whether A is better in the metric's direction on the full data.
    pub a_is_better: bool,
}

/// Paired bootstrap: both entries are scored on the same resampled rows.
pub fn paired_bootstrap(
    metric: Metric,
    truth: &Truth,
    predictions_a: &Predictions,
    predictions_b: &Predictions,
    context: &ScoreContext,
    config: &BootstrapConfig,
) -> Result<PairedComparison, MetricError> {
    check_config(config)?;
    let a = metric.score_with(truth, predictions_a, context)?;
    let b = metric.score_with(truth, predictions_b, context)?;
    let n = truth.len();
    let differences: Vec<f64> = (0..config.resamples)
        .into_par_iter()
        .filter_map(|r| {
            let rows = resample_indices(n, config.seed, r);
            let truth = truth.select(&rows);
            let a = metric
                .score_with(&truth, &predictions_a.select(&rows), context)
                .ok()?;
            let b = metric
                .score_with(&truth, &predictions_b.select(&rows), context)
                .ok()?;
            Some(a - b)
        })
        .collect();
    let count = differences.len().max(1) as f64;
    let at_most_zero = differences.iter().filter(|&&d| d <= 0.0).count() as f64 / count;
    let at_least_zero = differences.iter().filter(|&&d| d >= 0.0).count() as f64 / count;
    let p_value = (2.0 * at_most_zero.min(at_least_zero)).min(1.0);
    Ok(PairedComparison {
        difference: interval(a - b, differences, config)?,
        p_value,
        a_is_better: metric.direction().is_better(a, b),
    })
}

/// A metric on the rows of one site (hospital).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteScore {
    pub site: String,
    pub rows: usize,
    /// `None` when the metric is undefined on this site's rows (e.g. one class only).
    pub score: Option<f64>,
    /// Why the score is missing.
    pub undefined: Option<String>,
}

/// Scores every site separately; `sites[i]` is the site of row `i`. Sites are returned in
/// name order. Row counts are exact: suppress them before showing them to non-organizers.
pub fn per_site_scores(
    metric: Metric,
    truth: &Truth,
    predictions: &Predictions,
    context: &ScoreContext,
    sites: &[String],
) -> Result<Vec<SiteScore>, MetricError> {
    if sites.len() != truth.len() {
        return Err(MetricError::LengthMismatch {
            what: "site column",
            truth: truth.len(),
            predictions: sites.len(),
        });
    }
    // Validates shapes and values once, so that per-site failures can only be "undefined
    // on these rows" (and so that selecting rows below cannot go out of bounds).
    match metric.score_with(truth, predictions, context) {
        Ok(_) | Err(MetricError::Undefined { .. }) => {}
        Err(error) => return Err(error),
    }
    let mut rows_by_site: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (row, site) in sites.iter().enumerate() {
        rows_by_site.entry(site).or_default().push(row);
    }
    Ok(rows_by_site
        .into_iter()
        .map(|(site, rows)| {
            let score =
                metric.score_with(&truth.select(&rows), &predictions.select(&rows), context);
            SiteScore {
                site: site.to_string(),
                rows: rows.len(),
                undefined: score.as_ref().err().map(ToString::to_string),
                score: score.ok(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> (Truth, Predictions, Predictions) {
        let labels: Vec<bool> = (0..n).map(|i| i % 3 == 0).collect();
        let good: Vec<f64> = (0..n)
            .map(|i| {
                if i % 3 == 0 {
                    0.6 + (i % 7) as f64 / 20.0
                } else {
                    0.2 + (i % 11) as f64 / 20.0
                }
            })
            .collect();
        let noise: Vec<f64> = (0..n).map(|i| ((i * 7919) % 101) as f64 / 100.0).collect();
        (
            Truth::Binary(labels),
            Predictions::Scores(good),
            Predictions::Scores(noise),
        )
    }

    #[test]
    fn interval_contains_the_estimate_and_is_reproducible() {
        let (truth, good, _) = data(300);
        let config = BootstrapConfig {
            resamples: 200,
            ..Default::default()
        };
        let ci = bootstrap_ci(
            Metric::RocAuc,
            &truth,
            &good,
            &ScoreContext::default(),
            &config,
        )
        .unwrap();
        assert!(ci.lower <= ci.estimate && ci.estimate <= ci.upper, "{ci:?}");
        assert!(ci.upper - ci.lower < 0.2);
        assert_eq!(
            ci,
            bootstrap_ci(
                Metric::RocAuc,
                &truth,
                &good,
                &ScoreContext::default(),
                &config
            )
            .unwrap()
        );
    }

    #[test]
    fn paired_test_separates_a_good_model_from_noise_but_not_from_itself() {
        let (truth, good, noise) = data(300);
        let config = BootstrapConfig {
            resamples: 200,
            ..Default::default()
        };
        let versus_noise = paired_bootstrap(
            Metric::RocAuc,
            &truth,
            &good,
            &noise,
            &ScoreContext::default(),
            &config,
        )
        .unwrap();
        assert!(
            versus_noise.a_is_better && versus_noise.p_value < 0.01,
            "{versus_noise:?}"
        );
        assert!(versus_noise.difference.lower > 0.0);
        let versus_itself = paired_bootstrap(
            Metric::RocAuc,
            &truth,
            &good,
            &good,
            &ScoreContext::default(),
            &config,
        )
        .unwrap();
        assert_eq!(versus_itself.p_value, 1.0);
        assert_eq!(versus_itself.difference.estimate, 0.0);
    }

    #[test]
    fn sites_are_scored_separately() {
        let truth = Truth::Binary(vec![true, false, true, true]);
        let predictions = Predictions::Scores(vec![0.9, 0.1, 0.2, 0.8]);
        let sites: Vec<String> = ["b", "b", "a", "a"].iter().map(|s| s.to_string()).collect();
        let scores = per_site_scores(
            Metric::RocAuc,
            &truth,
            &predictions,
            &ScoreContext::default(),
            &sites,
        )
        .unwrap();
        assert_eq!(scores[0].site, "a");
        assert_eq!(scores[0].score, None);
        assert!(
            scores[0]
                .undefined
                .as_ref()
                .unwrap()
                .contains("only one class")
        );
        assert_eq!(scores[1].score, Some(1.0));
        assert_eq!(scores[1].rows, 2);
        assert!(
            per_site_scores(
                Metric::RocAuc,
                &truth,
                &predictions,
                &ScoreContext::default(),
                &sites[..3]
            )
            .is_err()
        );
        // Malformed input is an error, not a panic.
        let survival = Truth::Survival {
            time: vec![1.0, 2.0, 3.0, 4.0],
            event: vec![true],
        };
        assert!(
            per_site_scores(
                Metric::CIndex,
                &survival,
                &predictions,
                &ScoreContext::default(),
                &sites
            )
            .is_err()
        );
    }
}
