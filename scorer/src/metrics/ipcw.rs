//! Survival metrics weighted by the inverse probability of censoring (IPCW): Uno's C,
//! the cumulative/dynamic AUC and the Brier score with its integral over time.
//!
//! Each follows scikit-survival's function of the same name (`concordance_index_ipcw`,
//! `cumulative_dynamic_auc`, `brier_score`, `integrated_brier_score`) to 1e-9, including
//! what it refuses; where scikit-survival raises, these return a [`MetricError`]:
//! - all test rows censored; a negative time;
//! - a horizon outside the test follow-up `[min time, max time)`;
//! - a test time that the IPCW weights need after the last training time while the
//!   censoring survival G is still positive there (G is unknown beyond);
//! - an event whose weight 1/G is infinite (Uno's C and the AUC; the Brier score, like
//!   scikit-survival, counts such a row as 0).
//!
//! Where scikit-survival returns NaN (0/0: no case at a horizon, no comparable pair with a
//! positive weight) these return [`MetricError::Undefined`] instead.
//!
//! Risk scores: higher means an earlier event. Two risks closer than [`TIED_TOLERANCE`]
//! are tied, as scikit-survival's `tied_tol` makes them.

use super::km::{CensoringDistribution, KaplanMeier, check_labels};
use super::survival::{Fenwick, dense_ranks, sort_pairs, tied_groups_from_last};
use super::{check_finite, check_lengths, check_probabilities, order_key};
use crate::error::MetricError;

/// scikit-survival's default `tied_tol`: risks whose difference is at most this (absolute)
/// count as tied in Uno's C and the cumulative/dynamic AUC.
pub const TIED_TOLERANCE: f64 = 1e-8;

fn any_event(event: &[bool]) -> Result<(), MetricError> {
    if event.iter().any(|&e| e) {
        Ok(())
    } else {
        Err(MetricError::AllCensored {
            what: "test labels",
        })
    }
}

/// Horizons must be finite, strictly increasing (scikit-survival sorts and deduplicates
/// them; asking for that up front keeps the returned AUCs in the caller's order) and inside
/// the test follow-up `[min time, max time)`.
pub(crate) fn check_horizons(horizons: &[f64], time: &[f64]) -> Result<(), MetricError> {
    let first = time.iter().copied().fold(f64::INFINITY, f64::min);
    let last = time.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    for (index, &value) in horizons.iter().enumerate() {
        if !value.is_finite() {
            return Err(MetricError::BadHorizon {
                index,
                value,
                reason: "not a finite number",
            });
        }
        if index > 0 && value <= horizons[index - 1] {
            return Err(MetricError::BadHorizon {
                index,
                value,
                reason: "not after the previous horizon (horizons must be strictly increasing)",
            });
        }
        if value < first || value >= last {
            return Err(MetricError::HorizonOutsideFollowUp {
                horizon: value,
                first,
                last,
            });
        }
    }
    Ok(())
}

/// 1/G(T_i) for every event (0 for censored rows), as scikit-survival's `predict_ipcw`:
/// an event after the last training time or where G is 0 is an error. `include` limits
/// the rows whose weight is needed (Uno's C with a truncation time).
fn event_weights(
    time: &[f64],
    event: &[bool],
    censoring: &CensoringDistribution,
    include: impl Fn(f64) -> bool,
) -> Result<Vec<f64>, MetricError> {
    let mut weights = vec![0.0; time.len()];
    for (row, weight) in weights.iter_mut().enumerate() {
        if event[row] && include(time[row]) {
            let g = censoring.at_row(row, time[row])?;
            if g == 0.0 {
                return Err(MetricError::ZeroCensoringSurvival {
                    row,
                    time: time[row],
                });
            }
            *weight = 1.0 / g;
        }
    }
    Ok(weights)
}

/// Uno's concordance index: Harrell's pairs, each weighted by 1/G(T_i)² of its earlier
/// event, restricted to events before the truncation time `tau` (all events when `None`).
/// Bounded: [0, 1].
///
/// O(n log n): the subjects are walked from the longest time down with a Fenwick tree of
/// the pooled risks, as in [`super::harrell_c_index`]; the tolerance turns each event's
/// "lower" and "higher" risk counts into two binary searches over the sorted distinct risks.
pub fn uno_c_index(
    time: &[f64],
    event: &[bool],
    risk: &[f64],
    tau: Option<f64>,
    censoring: &CensoringDistribution,
) -> Result<f64, MetricError> {
    check_labels(time, event)?;
    check_lengths(time.len(), risk.len())?;
    check_finite(risk, "risk score")?;
    any_event(event)?;
    if time.len() >= u32::MAX as usize {
        return Err(MetricError::Undefined {
            metric: "uno_c_index",
            reason: "more than 2^32 - 1 rows",
        });
    }
    if let Some(tau) = tau
        && !tau.is_finite()
    {
        return Err(MetricError::BadParameter {
            what: "truncation time tau",
            value: tau,
            reason: "not a finite number",
        });
    }
    let before_tau = |t: f64| tau.is_none_or(|tau| t < tau);
    if !time.iter().zip(event).any(|(&t, &e)| e && before_tau(t)) {
        return Err(MetricError::AllCensored {
            what: "test rows before the truncation time tau",
        });
    }
    let weights = event_weights(time, event, censoring, before_tau)?;

    let (ranks, distinct) = dense_ranks(risk);
    let mut sorted_risks = vec![0.0; distinct];
    for (&rank, &r) in ranks.iter().zip(risk) {
        sorted_risks[rank as usize] = r;
    }
    let mut by_time: Vec<(u64, u32)> = time
        .iter()
        .enumerate()
        .map(|(i, &t)| (order_key(t), i as u32))
        .collect();
    sort_pairs(&mut by_time);

    let mut pool = Fenwick::new(distinct);
    let mut pooled: u64 = 0;
    let (mut numerator, mut denominator) = (0.0f64, 0.0f64);
    for rows in tied_groups_from_last(&by_time) {
        let group = &by_time[rows];
        for &(_, i) in group.iter().filter(|&&(_, i)| !event[i as usize]) {
            pool.insert(ranks[i as usize] as usize);
            pooled += 1;
        }
        for &(_, i) in group.iter().filter(|&&(_, i)| event[i as usize]) {
            // Uno's weight is (1/G(T_i))², squared after the division as scikit-survival's
            // `np.square(ipcw)`.
            let ipcw = weights[i as usize];
            let w = ipcw * ipcw;
            if w == 0.0 || pooled == 0 {
                continue;
            }
            // fl(v − e) is monotone in v, so both predicates split the sorted risks once;
            // they are scikit-survival's `est < est_i` outside `|est − est_i| <= tied_tol`.
            let e = risk[i as usize];
            let lower = sorted_risks.partition_point(|&v| v - e < -TIED_TOLERANCE);
            let not_higher = sorted_risks.partition_point(|&v| v - e <= TIED_TOLERANCE);
            let concordant = pool.count_below(lower);
            let discordant = pooled - pool.count_below(not_higher);
            let tied = pooled - concordant - discordant;
            numerator += w * concordant as f64 + 0.5 * w * tied as f64;
            denominator += w * pooled as f64;
        }
        for &(_, i) in group.iter().filter(|&&(_, i)| event[i as usize]) {
            pool.insert(ranks[i as usize] as usize);
            pooled += 1;
        }
    }
    if denominator == 0.0 {
        return Err(MetricError::Undefined {
            metric: "uno_c_index",
            reason: "no comparable pair whose earlier event falls before tau",
        });
    }
    Ok(numerator / denominator)
}

/// Risk scores for [`cumulative_dynamic_auc`].
#[derive(Debug, Clone, Copy)]
pub enum HorizonRisk<'a> {
    /// One risk per row, the same at every horizon.
    Same(&'a [f64]),
    /// One risk per row and horizon, row-major (`rows × horizons`), e.g. `1 − S(h | x)`.
    PerHorizon(&'a [f64]),
}

/// The cumulative/dynamic AUC at each horizon and their summary.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeDependentAuc {
    /// AUC(h) per horizon, in the order given.
    pub auc: Vec<f64>,
    /// scikit-survival's `mean_auc`: the AUCs weighted by the drop of the test labels'
    /// Kaplan-Meier curve over each horizon's interval, `Σ AUC(h_k)(S(h_{k−1}) − S(h_k)) /
    /// (1 − S(h_last))` with S(h_{−1}) = 1; with one horizon, its AUC.
    pub mean_auc: f64,
}

/// Cumulative/dynamic AUC: at horizon h, cases are the events at or before h (weighted by
/// 1/G(T_i)), controls the rows still event-free after h; AUC(h) is the weighted share of
/// case-control pairs where the case has the higher risk (ties ½, chained by
/// [`TIED_TOLERANCE`] between neighbours in risk order as scikit-survival's curve does).
/// Bounded: every AUC and the mean lie in [0, 1].
///
/// With [`HorizonRisk::Same`] the risks are sorted once and the horizons swept in time
/// order: a row leaving the controls or joining the cases updates the pair sum through two
/// Fenwick trees over risk groups, O((n + horizons) log n) in all. Per-horizon risks need
/// one sort per horizon.
pub fn cumulative_dynamic_auc(
    time: &[f64],
    event: &[bool],
    risk: HorizonRisk<'_>,
    horizons: &[f64],
    censoring: &CensoringDistribution,
) -> Result<TimeDependentAuc, MetricError> {
    check_labels(time, event)?;
    if horizons.is_empty() {
        return Err(MetricError::MissingHorizons {
            metric: "td_auc",
            needed: "at least one horizon",
            given: 0,
        });
    }
    let n = time.len();
    match risk {
        HorizonRisk::Same(r) => check_lengths(n, r.len())?,
        HorizonRisk::PerHorizon(r) => {
            if r.len() != n * horizons.len() {
                return Err(MetricError::LengthMismatch {
                    what: "risk scores (rows × horizons)",
                    truth: n * horizons.len(),
                    predictions: r.len(),
                });
            }
        }
    }
    let (HorizonRisk::Same(r) | HorizonRisk::PerHorizon(r)) = risk;
    check_finite(r, "risk score")?;
    any_event(event)?;
    check_horizons(horizons, time)?;
    let weights = event_weights(time, event, censoring, |_| true)?;

    let auc = match risk {
        HorizonRisk::Same(r) => swept_auc(time, event, r, &weights, horizons)?,
        HorizonRisk::PerHorizon(r) => {
            let h = horizons.len();
            let mut auc = Vec::with_capacity(h);
            let mut column = vec![0.0; n];
            for (k, &horizon) in horizons.iter().enumerate() {
                for (row, value) in column.iter_mut().enumerate() {
                    *value = r[row * h + k];
                }
                auc.push(auc_at(time, event, &column, &weights, horizon)?);
            }
            auc
        }
    };
    let mean_auc = if auc.len() == 1 {
        auc[0]
    } else {
        let km = KaplanMeier::fit(time, event)?;
        let mut previous = 1.0;
        let mut integral = 0.0;
        for (&a, &h) in auc.iter().zip(horizons) {
            let s = km.at_like_sksurv(h);
            integral += a * -(s - previous);
            previous = s;
        }
        if previous == 1.0 {
            return Err(MetricError::Undefined {
                metric: "td_auc",
                reason: "the test labels' Kaplan-Meier curve does not drop by the last horizon",
            });
        }
        unit(integral / (1.0 - previous))
    };
    Ok(TimeDependentAuc { auc, mean_auc })
}

/// Group index per row: rows sorted by risk, a new group wherever two neighbours differ by
/// more than the tolerance (scikit-survival's `is_tied` on the sorted column). Returns the
/// groups, ascending in risk, and their number.
fn risk_groups(risk: &[f64]) -> (Vec<u32>, usize) {
    let mut order: Vec<(u64, u32)> = risk
        .iter()
        .enumerate()
        .map(|(i, &r)| (order_key(r), i as u32))
        .collect();
    sort_pairs(&mut order);
    let mut groups = vec![0u32; risk.len()];
    let mut group = 0u32;
    let mut previous = f64::NAN;
    for (position, &(_, i)) in order.iter().enumerate() {
        let r = risk[i as usize];
        if position > 0 && (r - previous).abs() > TIED_TOLERANCE {
            group += 1;
        }
        previous = r;
        groups[i as usize] = group;
    }
    (
        groups,
        if risk.is_empty() {
            0
        } else {
            group as usize + 1
        },
    )
}

const NO_CASE: MetricError = MetricError::Undefined {
    metric: "td_auc",
    reason: "no event at or before the first horizon",
};

/// AUC at one horizon from one risk column: one pass over the risk groups, ascending.
fn auc_at(
    time: &[f64],
    event: &[bool],
    risk: &[f64],
    weights: &[f64],
    horizon: f64,
) -> Result<f64, MetricError> {
    let (groups, count) = risk_groups(risk);
    let mut case_weight = vec![0.0f64; count];
    let mut controls = vec![0u64; count];
    for (row, &g) in groups.iter().enumerate() {
        if time[row] > horizon {
            controls[g as usize] += 1;
        } else if event[row] {
            case_weight[g as usize] += weights[row];
        }
    }
    let (mut pairs, mut below, mut total) = (0.0f64, 0u64, 0.0f64);
    for (&w, &c) in case_weight.iter().zip(&controls) {
        pairs += w * (below as f64 + 0.5 * c as f64);
        below += c;
        total += w;
    }
    if total == 0.0 {
        return Err(NO_CASE);
    }
    Ok(unit(pairs / (total * below as f64)))
}

/// An AUC computed from float sums can land an ulp outside [0, 1] (all pairs ordered right,
/// the pair sum rounded up); the exact value cannot.
fn unit(value: f64) -> f64 {
    value.clamp(0.0, 1.0)
}

/// Fenwick tree of f64 sums (weights, or counts held exactly as floats).
struct SumTree {
    tree: Vec<f64>,
}

impl SumTree {
    /// Built in O(n) from per-index values.
    fn from_values(values: &[f64]) -> Self {
        let mut tree = vec![0.0; values.len() + 1];
        tree[1..].copy_from_slice(values);
        for i in 1..tree.len() {
            let parent = i + (i & i.wrapping_neg());
            if parent < tree.len() {
                tree[parent] += tree[i];
            }
        }
        SumTree { tree }
    }

    fn add(&mut self, index: usize, value: f64) {
        let mut i = index + 1;
        while i < self.tree.len() {
            self.tree[i] += value;
            i += i & i.wrapping_neg();
        }
    }

    /// Sum over indices `< index`.
    fn below(&self, index: usize) -> f64 {
        let (mut i, mut sum) = (index, 0.0);
        while i > 0 {
            sum += self.tree[i];
            i -= i & i.wrapping_neg();
        }
        sum
    }
}

/// Neumaier's compensated sum: the swept pair sum adds and removes up to n terms of size up
/// to the total case weight, and must still agree with a direct sum to 1e-9.
#[derive(Default)]
struct CompensatedSum {
    sum: f64,
    compensation: f64,
}

impl CompensatedSum {
    fn add(&mut self, value: f64) {
        let t = self.sum + value;
        if self.sum.abs() >= value.abs() {
            self.compensation += (self.sum - t) + value;
        } else {
            self.compensation += (value - t) + self.sum;
        }
        self.sum = t;
    }

    fn value(&self) -> f64 {
        self.sum + self.compensation
    }
}

/// AUC at every horizon for one risk per row. `pairs` is the weighted number of
/// (case, control) pairs ordered right (ties ½); sweeping the horizons upwards, a row whose
/// time has passed leaves the controls (taking its pairs with the current cases) and, if it
/// was an event, joins the cases (adding its pairs with the remaining controls). A pair is
/// added once and removed at most once whatever the order within a sweep step.
fn swept_auc(
    time: &[f64],
    event: &[bool],
    risk: &[f64],
    weights: &[f64],
    horizons: &[f64],
) -> Result<Vec<f64>, MetricError> {
    let (groups, count) = risk_groups(risk);
    let mut control_at = vec![0.0f64; count];
    for &g in &groups {
        control_at[g as usize] += 1.0;
    }
    // Controls indexed by group (sum below a group); cases by reversed group, so that the
    // weight of cases above a group is also a prefix sum.
    let mut controls = SumTree::from_values(&control_at);
    let mut cases = SumTree::from_values(&vec![0.0; count]);
    let mut case_at = vec![0.0f64; count];
    let reversed = |g: usize| count - 1 - g;

    let mut by_time: Vec<(u64, u32)> = time
        .iter()
        .enumerate()
        .map(|(i, &t)| (order_key(t), i as u32))
        .collect();
    sort_pairs(&mut by_time);
    // The rows the sweep reaches (time <= last horizon), gathered into time order once: the
    // sweep then reads them sequentially instead of missing the cache on every row of a
    // large table. `t <= h` is `order_key(t) <= order_key(h)` for finite values.
    let last_key = horizons.last().map_or(0, |&h| order_key(h));
    let reached = by_time.partition_point(|&(key, _)| key <= last_key);
    let sweep: Vec<(u64, u32, bool, f64)> = by_time[..reached]
        .iter()
        .map(|&(key, i)| {
            let row = i as usize;
            (key, groups[row], event[row], weights[row])
        })
        .collect();

    let mut pairs = CompensatedSum::default();
    let mut case_total = CompensatedSum::default();
    let mut remaining_controls = time.len() as u64;
    let mut next = 0;
    let mut auc = Vec::with_capacity(horizons.len());
    for &horizon in horizons {
        let horizon_key = order_key(horizon);
        while next < sweep.len() && sweep[next].0 <= horizon_key {
            let (_, g, is_event, w) = sweep[next];
            let g = g as usize;
            controls.add(g, -1.0);
            control_at[g] -= 1.0;
            remaining_controls -= 1;
            if case_total.value() > 0.0 {
                pairs.add(-(cases.below(reversed(g)) + 0.5 * case_at[g]));
            }
            if is_event {
                pairs.add(w * (controls.below(g) + 0.5 * control_at[g]));
                cases.add(reversed(g), w);
                case_at[g] += w;
                case_total.add(w);
            }
            next += 1;
        }
        let total = case_total.value();
        if total == 0.0 {
            return Err(NO_CASE);
        }
        auc.push(unit(pairs.value() / (total * remaining_controls as f64)));
    }
    Ok(auc)
}

/// The IPCW Brier scores at each horizon of `survival` (`rows × horizons`, row-major,
/// S(h_k | x_i)), as scikit-survival's `brier_score`.
fn brier_scores(
    time: &[f64],
    event: &[bool],
    survival: &[f64],
    horizons: &[f64],
    censoring: &CensoringDistribution,
) -> Result<Vec<f64>, MetricError> {
    let columns: Vec<usize> = (0..horizons.len()).collect();
    let survival = SurvivalColumns {
        values: survival,
        stride: horizons.len(),
        columns: &columns,
        checked: false,
    };
    brier_scores_of(time, event, survival, horizons, censoring)
}

/// S(h_k | x_i) read in place from a row-major table (e.g. survival curves on a grid):
/// `values[i * stride + columns[k]]`, so that scoring curves needs no `rows × horizons`
/// copy of them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SurvivalColumns<'a> {
    pub(crate) values: &'a [f64],
    pub(crate) stride: usize,
    /// One column per horizon, each `< stride`.
    pub(crate) columns: &'a [usize],
    /// Every value is already known to be a probability (curves that passed the scorer's
    /// curve checks), so the Brier scores need not read the unused columns to check them.
    pub(crate) checked: bool,
}

/// [`brier_scores`] on survival probabilities read through `survival.columns`.
fn brier_scores_of(
    time: &[f64],
    event: &[bool],
    survival: SurvivalColumns<'_>,
    horizons: &[f64],
    censoring: &CensoringDistribution,
) -> Result<Vec<f64>, MetricError> {
    check_labels(time, event)?;
    let (n, h) = (time.len(), horizons.len());
    let SurvivalColumns {
        values,
        stride,
        columns,
        ..
    } = survival;
    if values.len() != n * stride || columns.len() != h || columns.iter().any(|&j| j >= stride) {
        return Err(MetricError::LengthMismatch {
            what: "survival probabilities (rows × horizons)",
            truth: n * stride,
            predictions: values.len(),
        });
    }
    if !survival.checked {
        check_probabilities(values, "survival probability")?;
    }
    any_event(event)?;
    check_horizons(horizons, time)?;
    // G at every observed time (censored rows' too: scikit-survival evaluates them all and
    // raises after the last training time). Like scikit-survival, G = 0 is replaced by ∞,
    // so that the row's term is 0.
    let no_zero = |g: f64| if g == 0.0 { f64::INFINITY } else { g };
    let at_rows = time
        .iter()
        .enumerate()
        .map(|(row, &t)| censoring.at_row(row, t).map(no_zero))
        .collect::<Result<Vec<f64>, _>>()?;
    let at_horizons = horizons
        .iter()
        .enumerate()
        .map(|(k, &horizon)| {
            censoring
                .at(horizon)
                .map(no_zero)
                .ok_or(MetricError::BadHorizon {
                    index: k,
                    value: horizon,
                    reason: "after the last training time, where the censoring distribution is unknown",
                })
        })
        .collect::<Result<Vec<f64>, _>>()?;
    // One pass over the rows, each row's curve read once (row-major, as stored); every
    // horizon's sum still adds its terms in row order.
    let mut sums = vec![0.0f64; h];
    for (row, curve) in values.chunks_exact(stride.max(1)).enumerate() {
        let (t, e, g) = (time[row], event[row], at_rows[row]);
        for (((sum, &j), &horizon), &at_horizon) in
            sums.iter_mut().zip(columns).zip(horizons).zip(&at_horizons)
        {
            let s = curve[j];
            // Selects instead of two unpredictable branches, one division either way; a row
            // censored by h adds 0 / G(T_i) = +0.0, which leaves the non-negative sum as it was.
            let alive = t > horizon;
            let numerator = if alive {
                (1.0 - s) * (1.0 - s)
            } else if e {
                s * s
            } else {
                0.0
            };
            *sum += numerator / if alive { at_horizon } else { g };
        }
    }
    let scores = sums.into_iter().map(|sum| sum / n as f64).collect();
    Ok(scores)
}

/// The IPCW Brier score at one horizon: the mean of S(h | x_i)² over events by h, weighted
/// by 1/G(T_i), and of (1 − S(h | x_i))² over rows event-free after h, weighted by 1/G(h).
/// Rows censored before h count 0 (and still count in n).
///
/// Bounded below by 0; no finite upper bound holds for every censoring distribution (the
/// weights 1/G grow without limit as G falls), so its range is [0, ∞).
pub fn survival_brier_score(
    time: &[f64],
    event: &[bool],
    survival_at_horizon: &[f64],
    horizon: f64,
    censoring: &CensoringDistribution,
) -> Result<f64, MetricError> {
    Ok(brier_scores(time, event, survival_at_horizon, &[horizon], censoring)?[0])
}

/// [`survival_brier_score`] reading S(h | x_i) in place (one column).
pub(crate) fn survival_brier_score_of(
    time: &[f64],
    event: &[bool],
    survival: SurvivalColumns<'_>,
    horizon: f64,
    censoring: &CensoringDistribution,
) -> Result<f64, MetricError> {
    Ok(brier_scores_of(time, event, survival, &[horizon], censoring)?[0])
}

/// The integrated Brier score: the Brier scores at the horizons (at least two) integrated
/// by the trapezoidal rule and divided by the span `h_last − h_first`. Range [0, ∞), as the
/// Brier score's.
pub fn integrated_brier_score(
    time: &[f64],
    event: &[bool],
    survival: &[f64],
    horizons: &[f64],
    censoring: &CensoringDistribution,
) -> Result<f64, MetricError> {
    let columns: Vec<usize> = (0..horizons.len()).collect();
    let survival = SurvivalColumns {
        values: survival,
        stride: horizons.len(),
        columns: &columns,
        checked: false,
    };
    integrated_brier_score_of(time, event, survival, horizons, censoring)
}

/// [`integrated_brier_score`] reading S(h_k | x_i) in place.
pub(crate) fn integrated_brier_score_of(
    time: &[f64],
    event: &[bool],
    survival: SurvivalColumns<'_>,
    horizons: &[f64],
    censoring: &CensoringDistribution,
) -> Result<f64, MetricError> {
    if horizons.len() < 2 {
        return Err(MetricError::MissingHorizons {
            metric: "integrated_brier",
            needed: "at least two horizons",
            given: horizons.len(),
        });
    }
    let scores = brier_scores_of(time, event, survival, horizons, censoring)?;
    let mut area = 0.0;
    for k in 1..horizons.len() {
        area += (horizons[k] - horizons[k - 1]) * (scores[k] + scores[k - 1]) / 2.0;
    }
    Ok(area / (horizons[horizons.len() - 1] - horizons[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn censoring(time: &[f64], event: &[bool]) -> CensoringDistribution {
        CensoringDistribution::fit(time, event).unwrap()
    }

    #[test]
    fn uno_without_censoring_weights_is_harrell() {
        // No censoring at all: G = 1 everywhere, every weight is 1.
        let time = [1.0, 2.0, 3.0, 4.0, 5.0];
        let event = [true; 5];
        let risk = [0.9, 0.1, 0.5, 0.4, 0.0];
        let g = censoring(&time, &event);
        let uno = uno_c_index(&time, &event, &risk, None, &g).unwrap();
        let harrell = super::super::harrell_c_index(&time, &event, &risk).unwrap();
        assert_eq!(uno, harrell);
        // Risks within the tolerance tie: here every pair, so C = ½.
        let close = [1.0, 1.0 + 3e-9, 1.0 - 2e-9, 1.0 + 1e-9, 1.0];
        assert_eq!(uno_c_index(&time, &event, &close, None, &g).unwrap(), 0.5);
    }

    #[test]
    fn uno_refuses_what_scikit_survival_refuses() {
        let train = censoring(&[1.0, 2.0, 3.0], &[true, false, true]);
        // A test event after the last training time, G still positive there.
        let err = uno_c_index(&[1.0, 4.0], &[true, true], &[1.0, 0.0], None, &train);
        assert!(matches!(
            err,
            Err(MetricError::AfterLastTrainingTime { row: 1, .. })
        ));
        // With tau before it, that row's weight is not needed.
        assert_eq!(
            uno_c_index(&[1.0, 4.0], &[true, true], &[1.0, 0.0], Some(3.5), &train).unwrap(),
            1.0
        );
        // No event before tau.
        assert!(matches!(
            uno_c_index(&[1.0, 4.0], &[true, true], &[1.0, 0.0], Some(0.5), &train),
            Err(MetricError::AllCensored { .. })
        ));
    }

    #[test]
    fn td_auc_by_hand() {
        // Horizon 2.5: cases rows 0 and 1 (times 1, 2), controls rows 2, 3 (times 3, 4).
        // No censoring, weights 1. Risks: case 0 beats both controls, case 1 beats one and
        // ties the other: (2 + 1.5) / 4.
        let time = [1.0, 2.0, 3.0, 4.0];
        let event = [true; 4];
        let risk = [0.9, 0.5, 0.5, 0.1];
        let g = censoring(&time, &event);
        let auc =
            cumulative_dynamic_auc(&time, &event, HorizonRisk::Same(&risk), &[2.5], &g).unwrap();
        assert_eq!(auc.auc, vec![0.875]);
        assert_eq!(auc.mean_auc, 0.875);
        let per = cumulative_dynamic_auc(&time, &event, HorizonRisk::PerHorizon(&risk), &[2.5], &g)
            .unwrap();
        assert_eq!(per, auc);
        // A horizon at the last time is outside the follow-up.
        assert!(matches!(
            cumulative_dynamic_auc(&time, &event, HorizonRisk::Same(&risk), &[4.0], &g),
            Err(MetricError::HorizonOutsideFollowUp { .. })
        ));
        assert!(matches!(
            cumulative_dynamic_auc(&time, &event, HorizonRisk::Same(&risk), &[2.0, 1.5], &g),
            Err(MetricError::BadHorizon { index: 1, .. })
        ));
    }

    #[test]
    fn brier_of_perfect_curves_is_zero() {
        let time = [1.0, 2.0, 3.0, 4.0];
        let event = [true, true, false, true];
        let g = censoring(&time, &event);
        // At horizon 2.5: rows 0, 1 had the event (S = 0), rows 2, 3 are event-free (S = 1).
        let perfect = [0.0, 0.0, 1.0, 1.0];
        assert_eq!(
            survival_brier_score(&time, &event, &perfect, 2.5, &g).unwrap(),
            0.0
        );
        let wrong = [1.0, 1.0, 0.0, 0.0];
        assert!(survival_brier_score(&time, &event, &wrong, 2.5, &g).unwrap() > 0.9);
        assert!(matches!(
            integrated_brier_score(&time, &event, &perfect, &[2.5], &g),
            Err(MetricError::MissingHorizons { .. })
        ));
    }
}
