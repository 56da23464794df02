//! Kaplan-Meier estimates of the survival distribution and of the censoring distribution.
//!
//! The IPCW metrics must agree with scikit-survival to 1e-9, so both estimators follow its
//! `kaplan_meier_estimator` step for step: one step per distinct observed time (exact float
//! equality), the factors `1 − d/r` multiplied left to right. The censoring distribution
//! swaps the roles of events and censorings and takes the events at a time out of the risk
//! set before the censorings at that time (`reverse=True`).

use super::{check_finite, order_key};
use crate::error::MetricError;

/// scikit-survival treats a time less than one machine epsilon (absolute) below a jump as
/// the jump itself when it reads a fitted curve (`predict_proba`); the IPCW weights copy
/// that so that they agree even for times that went through a round trip in text.
const LOOKUP_EPSILON: f64 = f64::EPSILON;

/// Checks survival labels once for every estimator: the same row count, at least one row,
/// finite times, none negative (scikit-survival's `check_y_survival` refuses them).
pub(crate) fn check_labels(time: &[f64], event: &[bool]) -> Result<(), MetricError> {
    super::check_lengths(time.len(), event.len())?;
    check_finite(time, "time")?;
    match time.iter().position(|&t| t < 0.0) {
        Some(row) => Err(MetricError::OutOfRange {
            row,
            what: "time",
            value: time[row],
            range: "[0, ∞)",
        }),
        None => Ok(()),
    }
}

/// Per distinct time, ascending: (time, events, censorings, at risk just before it).
fn counts(time: &[f64], event: &[bool]) -> Vec<(f64, u64, u64, u64)> {
    let mut order: Vec<(u64, bool)> = time
        .iter()
        .zip(event)
        .map(|(&t, &e)| (order_key(t), e))
        .collect();
    order.sort_unstable();
    let mut steps: Vec<(f64, u64, u64, u64)> = Vec::new();
    let mut at_risk = time.len() as u64;
    let mut start = 0;
    while start < order.len() {
        let key = order[start].0;
        let mut end = start;
        let mut events = 0u64;
        while end < order.len() && order[end].0 == key {
            events += u64::from(order[end].1);
            end += 1;
        }
        let total = (end - start) as u64;
        let value = time_of_key(key);
        steps.push((value, events, total - events, at_risk));
        at_risk -= total;
        start = end;
    }
    steps
}

/// The float behind an [`order_key`] (inverse of it; `-0.0` comes back as `0.0`).
fn time_of_key(key: u64) -> f64 {
    if key >> 63 == 1 {
        f64::from_bits(key & !(1 << 63))
    } else {
        f64::from_bits(!key)
    }
}

/// Kaplan-Meier estimate of a survival function: a right-continuous step function, 1 before
/// the first time.
#[derive(Debug, Clone, PartialEq)]
pub struct KaplanMeier {
    /// Every distinct observed time, ascending (censoring times included, as scikit-survival
    /// reports them; the curve is flat there).
    times: Vec<f64>,
    /// S(t) at each of `times`, the step at that time included.
    survival: Vec<f64>,
}

impl KaplanMeier {
    /// Fits the product-limit estimator to right-censored labels. All-censored labels are
    /// allowed: the curve is then 1 throughout.
    pub fn fit(time: &[f64], event: &[bool]) -> Result<Self, MetricError> {
        check_labels(time, event)?;
        let steps = counts(time, event);
        let mut survival = Vec::with_capacity(steps.len());
        let mut s = 1.0;
        for &(_, events, _, at_risk) in &steps {
            if events != 0 {
                s *= 1.0 - events as f64 / at_risk as f64;
            }
            survival.push(s);
        }
        Ok(KaplanMeier {
            times: steps.iter().map(|s| s.0).collect(),
            survival,
        })
    }

    pub fn times(&self) -> &[f64] {
        &self.times
    }

    pub fn survival(&self) -> &[f64] {
        &self.survival
    }

    /// S(t): the value at the last time `<= t`, 1 before the first time, and the last value
    /// after the last time (carried forward, as lifelines does).
    pub fn at(&self, t: f64) -> f64 {
        match self.times.partition_point(|&u| u <= t) {
            0 => 1.0,
            k => self.survival[k - 1],
        }
    }

    /// S(t) read as scikit-survival's `SurvivalFunctionEstimator.predict_proba` reads it
    /// (see [`LOOKUP_EPSILON`]); callers only pass times before the last one.
    pub(crate) fn at_like_sksurv(&self, t: f64) -> f64 {
        match lookup_index(&self.times, t) {
            Some(k) => self.survival[k],
            None => 1.0,
        }
    }
}

/// The index of the step in force at `t` with scikit-survival's tolerance, `None` before the
/// first time.
fn lookup_index(times: &[f64], t: f64) -> Option<usize> {
    let k = times.partition_point(|&u| u < t);
    if k < times.len() && (times[k] - t).abs() < LOOKUP_EPSILON {
        Some(k)
    } else {
        k.checked_sub(1)
    }
}

/// The Kaplan-Meier estimate G(t) = P(C > t) of the censoring distribution, from which the
/// IPCW metrics weight each row (scikit-survival's `CensoringDistributionEstimator`).
///
/// scikit-survival fits it to the *training* labels (`survival_train`): the censoring
/// process is a property of the study, and the test part alone may be too small to
/// estimate it. [`crate::metrics::ScoreContext`] falls back to the test labels when no
/// training labels are given.
#[derive(Debug, Clone, PartialEq)]
pub struct CensoringDistribution {
    times: Vec<f64>,
    survival: Vec<f64>,
}

impl CensoringDistribution {
    /// Fits G to right-censored labels. At least one row must be an event, as
    /// scikit-survival requires of `survival_train`.
    pub fn fit(time: &[f64], event: &[bool]) -> Result<Self, MetricError> {
        check_labels(time, event)?;
        if !event.iter().any(|&e| e) {
            return Err(MetricError::AllCensored {
                what: "training labels for the censoring distribution",
            });
        }
        let steps = counts(time, event);
        let mut survival = Vec::with_capacity(steps.len());
        let mut g = 1.0;
        for &(_, events, censored, at_risk) in &steps {
            if censored != 0 {
                g *= 1.0 - censored as f64 / (at_risk - events) as f64;
            }
            survival.push(g);
        }
        Ok(CensoringDistribution {
            times: steps.iter().map(|s| s.0).collect(),
            survival,
        })
    }

    /// The last training time: beyond it G is unknown unless it has already dropped to 0.
    pub fn last_time(&self) -> f64 {
        self.times.last().copied().unwrap_or(f64::NEG_INFINITY)
    }

    /// G(t), or `None` after the last training time while G is still positive there
    /// (scikit-survival raises "time must be smaller than largest observed time point").
    pub fn at(&self, t: f64) -> Option<f64> {
        let last = self.survival.last().copied().unwrap_or(1.0);
        if t > self.last_time() {
            return (last == 0.0).then_some(0.0);
        }
        Some(match lookup_index(&self.times, t) {
            Some(k) => self.survival[k],
            None => 1.0,
        })
    }

    /// G at `time[row]`, with the row named in the error.
    pub(crate) fn at_row(&self, row: usize, time: f64) -> Result<f64, MetricError> {
        self.at(time).ok_or(MetricError::AfterLastTrainingTime {
            row,
            time,
            last: self.last_time(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kaplan_meier_steps_at_events_only() {
        // lifelines: 0.8 at 1, 0.6 at 2, 0.3 at 3, flat after.
        let km = KaplanMeier::fit(
            &[1.0, 2.0, 2.0, 3.0, 4.0],
            &[true, true, false, true, false],
        )
        .unwrap();
        assert_eq!(km.times(), &[1.0, 2.0, 3.0, 4.0]);
        let want = [1.0, 0.8, 0.8, 0.6, 0.6, 0.3, 0.3, 0.3];
        for (t, w) in [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 9.0]
            .into_iter()
            .zip(want)
        {
            assert!((km.at(t) - w).abs() < 1e-15, "S({t}) = {}", km.at(t));
        }
    }

    #[test]
    fn censoring_distribution_takes_events_out_of_the_risk_set_first() {
        // At 2: one event and one censoring among 4 at risk; the censoring's factor is
        // 1 − 1/(4 − 1). At 4: the last row is censored, G drops to 0.
        let g = CensoringDistribution::fit(
            &[1.0, 2.0, 2.0, 3.0, 4.0],
            &[true, true, false, true, false],
        )
        .unwrap();
        assert_eq!(g.at(1.5), Some(1.0));
        assert_eq!(g.at(2.0), Some(1.0 - 1.0 / 3.0));
        assert_eq!(g.at(4.0), Some(0.0));
        // G is 0 at the last time, so later times are known: 0.
        assert_eq!(g.at(5.0), Some(0.0));
        // A last time that is an event leaves G positive (2/3 after the censoring at 1 among
        // 3 at risk): later times are unknown.
        let g = CensoringDistribution::fit(&[1.0, 2.0, 3.0], &[false, true, true]).unwrap();
        assert_eq!(g.at(3.0), Some(1.0 - 1.0 / 3.0));
        assert_eq!(g.at(3.5), None);
        assert!(CensoringDistribution::fit(&[1.0, 2.0], &[false, false]).is_err());
        assert!(CensoringDistribution::fit(&[-1.0, 2.0], &[true, false]).is_err());
    }

    #[test]
    fn order_keys_invert() {
        for v in [0.0, -0.0, 1.5, -2.25, 1e300, -1e-300] {
            assert_eq!(time_of_key(order_key(v)), v + 0.0);
        }
    }
}
