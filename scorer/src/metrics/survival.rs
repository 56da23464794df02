//! Harrell's concordance index for right-censored survival data, O(n log n).
//!
//! Predictions are risk scores: a higher score means an earlier event (scikit-survival's
//! convention and the sandbox ABI's). lifelines ranks the other way; it agrees once given
//! the negated scores.
//!
//! Ties follow scikit-survival (`concordance_index_censored`) and lifelines
//! (`concordance_index`), which agree:
//! - a pair is comparable when the subject with the shorter time had the event; when the
//!   times are equal, the pair is comparable only if one had the event and the other was
//!   censored (the censored one is taken to have lived longer); two events at the same time
//!   are not comparable;
//! - a comparable pair is concordant when the subject with the event first has the higher
//!   risk; equal risks count ½. Equal means equal here, as in lifelines: scikit-survival
//!   also ties risks closer than its `tied_tol` (1e-8), which only matters for scores that
//!   differ in their ninth significant digit. Uno's C ([`super::uno_c_index`]) uses the
//!   tolerance, since its reference is scikit-survival alone.

use serde::{Deserialize, Serialize};

use super::{check_finite, check_lengths, order_key};
use crate::error::MetricError;

/// The pair counts behind a C-index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConcordanceCounts {
    pub concordant: u64,
    pub discordant: u64,
    pub tied_prediction: u64,
}

impl ConcordanceCounts {
    pub fn comparable_pairs(&self) -> u64 {
        self.concordant + self.discordant + self.tied_prediction
    }

    /// `(concordant + ½·tied) / comparable`, or `None` when no pair is comparable.
    pub fn c_index(&self) -> Option<f64> {
        let pairs = self.comparable_pairs();
        (pairs > 0)
            .then(|| (self.concordant as f64 + 0.5 * self.tied_prediction as f64) / pairs as f64)
    }
}

/// Binary indexed (Fenwick) tree of counts over prediction ranks: O(log n) insert and prefix
/// count. Hand-written because it is twenty lines and every crate for it is heavier.
pub(crate) struct Fenwick {
    tree: Vec<u32>,
    /// Plain count per rank: the tie count in one lookup instead of a second prefix sum.
    at: Vec<u32>,
}

impl Fenwick {
    pub(crate) fn new(size: usize) -> Self {
        Fenwick {
            tree: vec![0; size + 1],
            at: vec![0; size],
        }
    }

    pub(crate) fn insert(&mut self, rank: usize) {
        self.at[rank] += 1;
        let mut i = rank + 1;
        while i < self.tree.len() {
            self.tree[i] += 1;
            i += i & i.wrapping_neg();
        }
    }

    /// How many inserted ranks are `< rank`.
    pub(crate) fn count_below(&self, rank: usize) -> u64 {
        let mut i = rank;
        let mut sum = 0u64;
        while i > 0 {
            sum += u64::from(self.tree[i]);
            i -= i & i.wrapping_neg();
        }
        sum
    }
}

/// Dense ranks (0-based, ties share a rank) of `values`, and the number of distinct values.
pub(crate) fn dense_ranks(values: &[f64]) -> (Vec<u32>, usize) {
    // Pack (key, index) so one integer sort orders by value; indices fit in 32 bits because
    // callers check n < 2^32.
    let mut order: Vec<(u64, u32)> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| (order_key(v), i as u32))
        .collect();
    sort_pairs(&mut order);
    let mut ranks = vec![0u32; values.len()];
    let mut rank = 0u32;
    for (position, &(key, index)) in order.iter().enumerate() {
        if position > 0 && key != order[position - 1].0 {
            rank += 1;
        }
        ranks[index as usize] = rank;
    }
    (
        ranks,
        if values.is_empty() {
            0
        } else {
            rank as usize + 1
        },
    )
}

pub(crate) fn sort_pairs(pairs: &mut [(u64, u32)]) {
    if pairs.len() > 1 << 16 {
        use rayon::slice::ParallelSliceMut;
        pairs.par_sort_unstable();
    } else {
        pairs.sort_unstable();
    }
}

/// Counts concordant, discordant and risk-tied comparable pairs (risk scores: higher means an
/// earlier event).
pub fn concordance_counts(
    time: &[f64],
    event: &[bool],
    predictions: &[f64],
) -> Result<ConcordanceCounts, MetricError> {
    check_lengths(time.len(), predictions.len())?;
    check_lengths(time.len(), event.len())?;
    check_finite(time, "time")?;
    check_finite(predictions, "prediction")?;
    if time.len() >= u32::MAX as usize {
        return Err(MetricError::Undefined {
            metric: "c_index",
            reason: "more than 2^32 - 1 rows",
        });
    }
    let (ranks, distinct) = dense_ranks(predictions);

    // Walk subjects from the longest time down. Before handling the events at time t, the
    // pool holds everyone with a longer time plus those censored at t: exactly the subjects
    // an event at t is comparable with.
    let mut by_time: Vec<(u64, u32)> = time
        .iter()
        .enumerate()
        .map(|(i, &t)| (order_key(t), i as u32))
        .collect();
    sort_pairs(&mut by_time);

    // Gather ranks and events into time order once, so the walk below reads sequentially.
    let subjects: Vec<(u32, bool)> = by_time
        .iter()
        .map(|&(_, i)| (ranks[i as usize], event[i as usize]))
        .collect();

    let mut pool = Fenwick::new(distinct);
    let mut pooled: u64 = 0;
    let mut counts = ConcordanceCounts {
        concordant: 0,
        discordant: 0,
        tied_prediction: 0,
    };
    for rows in tied_groups_from_last(&by_time) {
        let group = &subjects[rows];
        for &(rank, _) in group.iter().filter(|s| !s.1) {
            pool.insert(rank as usize);
            pooled += 1;
        }
        for &(rank, _) in group.iter().filter(|s| s.1) {
            // The pool outlived this event: concordant where they had the lower risk.
            let below = pool.count_below(rank as usize);
            let tied = u64::from(pool.at[rank as usize]);
            counts.concordant += below;
            counts.tied_prediction += tied;
            counts.discordant += pooled - below - tied;
        }
        for &(rank, _) in group.iter().filter(|s| s.1) {
            pool.insert(rank as usize);
            pooled += 1;
        }
    }
    Ok(counts)
}

/// The runs of equal keys of `sorted` (sorted by key), last run first: the groups of
/// subjects sharing a time, walked from the longest time down.
pub(crate) fn tied_groups_from_last(
    sorted: &[(u64, u32)],
) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut end = sorted.len();
    std::iter::from_fn(move || {
        let key = sorted[..end].last()?.0;
        // A step back per tied row: linear overall, where a binary search per group would
        // add a logarithm when most times are distinct.
        let mut start = end - 1;
        while start > 0 && sorted[start - 1].0 == key {
            start -= 1;
        }
        let rows = start..end;
        end = start;
        Some(rows)
    })
}

/// Harrell's C-index of risk scores (higher = earlier event). Bounded: [0, 1].
pub fn harrell_c_index(time: &[f64], event: &[bool], risk: &[f64]) -> Result<f64, MetricError> {
    concordance_counts(time, event, risk)?
        .c_index()
        .ok_or(MetricError::Undefined {
            metric: "c_index",
            reason: "no comparable pair (no event before another subject's time)",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_a_small_case_with_every_kind_of_tie() {
        // Comparable pairs (event first): (0,1) (0,2) (0,3) (1,3), and (1,2) because 2 was
        // censored at 1's event time; (2,3) is not, 2 being censored first.
        let time = [1.0, 2.0, 2.0, 3.0];
        let event = [true, true, false, true];
        let pred = [-1.0, -2.0, -3.0, -2.0];
        let counts = concordance_counts(&time, &event, &pred).unwrap();
        // (0,1) (0,2) (0,3) (1,2) concordant; (1,3) tied.
        assert_eq!(
            counts,
            ConcordanceCounts {
                concordant: 4,
                discordant: 0,
                tied_prediction: 1
            }
        );
        assert_eq!(counts.c_index(), Some(0.9));
    }

    #[test]
    fn no_comparable_pair_is_an_error() {
        assert!(harrell_c_index(&[1.0, 2.0], &[false, false], &[2.0, 1.0]).is_err());
        assert_eq!(
            harrell_c_index(&[1.0, 2.0], &[true, false], &[2.0, 1.0]).unwrap(),
            1.0
        );
        assert_eq!(
            harrell_c_index(&[1.0, 2.0], &[true, false], &[1.0, 2.0]).unwrap(),
            0.0
        );
    }
}
