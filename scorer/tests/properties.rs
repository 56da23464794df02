//! Property tests of the metrics: invariances, bounds and symmetric cases.

use medarena_scorer::metrics::{
    self, ConcordanceCounts, average_precision, concordance_counts, harrell_c_index, roc_auc,
};
use medarena_scorer::{Metric, Predictions, Truth};
use proptest::prelude::*;

/// Scores on a grid of 1/16 so that monotone transforms keep distinct values distinct.
fn binary_data() -> impl Strategy<Value = (Vec<bool>, Vec<f64>)> {
    (2usize..120).prop_flat_map(|n| {
        (
            prop::collection::vec(any::<bool>(), n),
            prop::collection::vec((-80i32..80).prop_map(|i| f64::from(i) / 16.0), n),
        )
    })
}

fn has_both_classes(labels: &[bool]) -> bool {
    labels.iter().any(|&y| y) && labels.iter().any(|&y| !y)
}

fn quadratic_concordance(time: &[f64], event: &[bool], pred: &[f64]) -> ConcordanceCounts {
    let mut c = ConcordanceCounts {
        concordant: 0,
        discordant: 0,
        tied_prediction: 0,
    };
    for i in 0..time.len() {
        for j in 0..time.len() {
            if event[i] && (time[i] < time[j] || (time[i] == time[j] && !event[j])) {
                match pred[i].partial_cmp(&pred[j]) {
                    Some(std::cmp::Ordering::Less) => c.concordant += 1,
                    Some(std::cmp::Ordering::Greater) => c.discordant += 1,
                    _ => c.tied_prediction += 1,
                }
            }
        }
    }
    c
}

fn quadratic_auc(labels: &[bool], scores: &[f64]) -> f64 {
    let (mut wins, mut pairs) = (0.0, 0.0);
    for (i, &yi) in labels.iter().enumerate() {
        for (j, &yj) in labels.iter().enumerate() {
            if yi && !yj {
                pairs += 1.0;
                if scores[i] > scores[j] {
                    wins += 1.0;
                } else if scores[i] == scores[j] {
                    wins += 0.5;
                }
            }
        }
    }
    wins / pairs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn auc_is_invariant_under_monotone_transforms((labels, scores) in binary_data()) {
        prop_assume!(has_both_classes(&labels));
        let auc = roc_auc(&labels, &scores).unwrap();
        for transform in [|x: f64| x.exp(), |x: f64| x.powi(3), |x: f64| 1.0 / (1.0 + (-x).exp()), |x: f64| 3.0 * x - 7.0] {
            let moved: Vec<f64> = scores.iter().map(|&s| transform(s)).collect();
            prop_assert_eq!(roc_auc(&labels, &moved).unwrap(), auc);
            prop_assert_eq!(average_precision(&labels, &moved).unwrap(), average_precision(&labels, &scores).unwrap());
        }
    }

    #[test]
    fn auc_matches_pair_counting_and_is_symmetric((labels, scores) in binary_data()) {
        prop_assume!(has_both_classes(&labels));
        let auc = roc_auc(&labels, &scores).unwrap();
        prop_assert!((auc - quadratic_auc(&labels, &scores)).abs() < 1e-12);
        let negated: Vec<f64> = scores.iter().map(|s| -s).collect();
        prop_assert!((roc_auc(&labels, &negated).unwrap() - (1.0 - auc)).abs() < 1e-12);
        let flipped: Vec<bool> = labels.iter().map(|y| !y).collect();
        prop_assert!((roc_auc(&flipped, &scores).unwrap() - (1.0 - auc)).abs() < 1e-12);
    }

    #[test]
    fn binary_metrics_stay_in_range_and_ignore_row_order((labels, scores) in binary_data(), rotate in 0usize..200) {
        prop_assume!(has_both_classes(&labels));
        let probabilities: Vec<f64> = scores.iter().map(|s| 1.0 / (1.0 + (-s).exp())).collect();
        let truth = Truth::Binary(labels.clone());
        let predictions = Predictions::Scores(probabilities.clone());
        let shift = rotate % labels.len();
        let mut rotated_labels = labels.clone();
        rotated_labels.rotate_left(shift);
        let mut rotated_probabilities = probabilities.clone();
        rotated_probabilities.rotate_left(shift);
        let rotated_truth = Truth::Binary(rotated_labels);
        let rotated_predictions = Predictions::Scores(rotated_probabilities);
        for metric in Metric::ALL.into_iter().filter(|m| m.task() == medarena_scorer::TaskKind::Binary) {
            let value = metric.score(&truth, &predictions).unwrap();
            let range = metric.range();
            prop_assert!(value >= range.min && value <= range.max, "{metric} = {value}");
            let again = metric.score(&rotated_truth, &rotated_predictions).unwrap();
            prop_assert!((value - again).abs() < 1e-12, "{metric}: {value} vs {again}");
        }
    }

    #[test]
    fn accuracy_of_the_opposite_decision_is_the_complement((labels, scores) in binary_data()) {
        let probabilities: Vec<f64> = scores.iter().map(|s| 1.0 / (1.0 + (-s).exp())).collect();
        prop_assume!(probabilities.iter().all(|&p| p != 0.5));
        let opposite: Vec<f64> = probabilities.iter().map(|p| 1.0 - p).collect();
        let a = metrics::accuracy(&labels, &probabilities).unwrap();
        let b = metrics::accuracy(&labels, &opposite).unwrap();
        prop_assert!((a + b - 1.0).abs() < 1e-12);
    }

    #[test]
    fn c_index_matches_pair_counting(
        rows in prop::collection::vec((0u8..12, any::<bool>(), 0u8..6), 2..80)
    ) {
        let time: Vec<f64> = rows.iter().map(|r| f64::from(r.0)).collect();
        let event: Vec<bool> = rows.iter().map(|r| r.1).collect();
        let pred: Vec<f64> = rows.iter().map(|r| f64::from(r.2)).collect();
        let fast = concordance_counts(&time, &event, &pred).unwrap();
        prop_assert_eq!(fast, quadratic_concordance(&time, &event, &pred));
        if let Some(c) = fast.c_index() {
            prop_assert!((0.0..=1.0).contains(&c));
            // Reversing the predictions swaps concordant and discordant pairs.
            let reversed: Vec<f64> = pred.iter().map(|p| -p).collect();
            let back = harrell_c_index(&time, &event, &reversed).unwrap();
            prop_assert!((c + back - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn predicting_the_observed_time_is_perfectly_concordant(
        times in prop::collection::btree_set(0u32..10_000, 2..60)
    ) {
        let time: Vec<f64> = times.iter().map(|&t| f64::from(t)).collect();
        let event = vec![true; time.len()];
        prop_assert_eq!(harrell_c_index(&time, &event, &time).unwrap(), 1.0);
        let constant = vec![1.0; time.len()];
        prop_assert_eq!(harrell_c_index(&time, &event, &constant).unwrap(), 0.5);
    }

    #[test]
    fn regression_metrics_are_zero_for_perfect_predictions(
        y in prop::collection::vec(-1e3f64..1e3, 1..50)
    ) {
        prop_assert_eq!(metrics::rmse(&y, &y).unwrap(), 0.0);
        prop_assert_eq!(metrics::mae(&y, &y).unwrap(), 0.0);
        prop_assert_eq!(metrics::r2(&y, &y).unwrap(), 1.0);
        let shifted: Vec<f64> = y.iter().map(|v| v + 2.0).collect();
        prop_assert!((metrics::mae(&y, &shifted).unwrap() - 2.0).abs() < 1e-9);
        prop_assert!(metrics::r2(&y, &shifted).unwrap() <= 1.0);
    }

    #[test]
    fn metric_names_round_trip(index in 0usize..Metric::ALL.len()) {
        let metric = Metric::ALL[index];
        prop_assert_eq!(metric.name().parse::<Metric>().unwrap(), metric);
        prop_assert_eq!(metric.name().to_uppercase().parse::<Metric>().unwrap(), metric);
    }
}
