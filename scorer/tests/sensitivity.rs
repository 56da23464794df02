//! The stated sensitivities are real bounds: changing one row of a public part never moves
//! a metric by more than `score_sensitivity` says, and the Ladder behaves as specified.

use medarena_scorer::release::{PublicPartFacts, clamped_score, score_sensitivity};
use medarena_scorer::{ClampBounds, LadderState, Metric, Predictions, ScoreContext, Truth};
use proptest::prelude::*;

fn binary_part() -> impl Strategy<Value = (Vec<bool>, Vec<f64>, usize, bool, f64)> {
    (3usize..24).prop_flat_map(|n| {
        (
            prop::collection::vec(any::<bool>(), n),
            prop::collection::vec((0u32..=20).prop_map(|i| f64::from(i) / 20.0), n),
            0..n,
            any::<bool>(),
            (0u32..=20).prop_map(|i| f64::from(i) / 20.0),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn one_changed_row_stays_within_the_binary_sensitivities(
        (labels, scores, row, new_label, new_score) in binary_part()
    ) {
        let facts = PublicPartFacts::of(&Truth::Binary(labels.clone()));
        let mut changed_labels = labels.clone();
        changed_labels[row] = new_label;
        let mut changed_scores = scores.clone();
        changed_scores[row] = new_score;
        let clamp = ClampBounds { probability_floor: Some(0.01), value_range: None };
        let before = (Truth::Binary(labels), Predictions::Scores(scores));
        let after = (Truth::Binary(changed_labels), Predictions::Scores(changed_scores));
        for metric in [Metric::RocAuc, Metric::BalancedAccuracy, Metric::Accuracy, Metric::Brier, Metric::LogLoss] {
            let Ok(bound) = score_sensitivity(metric, &facts, &clamp) else { continue };
            let (Ok(a), Ok(b)) = (
                clamped_score(metric, &before.0, &before.1, &ScoreContext::default(), &clamp),
                clamped_score(metric, &after.0, &after.1, &ScoreContext::default(), &clamp),
            ) else { continue };
            prop_assert!((a - b).abs() <= bound.value + 1e-12, "{metric}: moved {} > {}", (a - b).abs(), bound.value);
        }
    }

    #[test]
    fn one_changed_row_stays_within_the_regression_sensitivities(
        truth in prop::collection::vec(-50f64..50.0, 2..40),
        predictions in prop::collection::vec(-80f64..80.0, 40),
        row in 0usize..40,
        new_truth in -1e6f64..1e6,
        new_prediction in -1e6f64..1e6,
    ) {
        let n = truth.len();
        let predictions = predictions[..n].to_vec();
        let row = row % n;
        let clamp = ClampBounds { probability_floor: None, value_range: Some((-10.0, 10.0)) };
        let facts = PublicPartFacts::of(&Truth::Regression(truth.clone()));
        let mut changed_truth = truth.clone();
        changed_truth[row] = new_truth;
        let mut changed_predictions = predictions.clone();
        changed_predictions[row] = new_prediction;
        for metric in [Metric::Mae, Metric::Rmse] {
            let bound = score_sensitivity(metric, &facts, &clamp).unwrap().value;
            let a = clamped_score(metric, &Truth::Regression(truth.clone()), &Predictions::Scores(predictions.clone()), &ScoreContext::default(), &clamp).unwrap();
            let b = clamped_score(metric, &Truth::Regression(changed_truth.clone()), &Predictions::Scores(changed_predictions.clone()), &ScoreContext::default(), &clamp).unwrap();
            prop_assert!((a - b).abs() <= bound + 1e-9, "{metric}: moved {} > {bound}", (a - b).abs());
        }
    }

    #[test]
    fn the_ladder_never_shows_a_worse_score_and_shows_multiples_of_its_step(
        scores in prop::collection::vec(0f64..1.0, 1..50)
    ) {
        let mut ladder = LadderState::new(Metric::RocAuc, 0.01).unwrap();
        let mut previous = f64::NEG_INFINITY;
        for score in scores {
            let (shown, improved) = ladder.submit(score);
            prop_assert!(shown >= previous);
            prop_assert!(((shown * 100.0).round() - shown * 100.0).abs() < 1e-9);
            prop_assert!(!improved || (shown - score).abs() <= 0.005 + 1e-12);
            previous = shown;
        }
    }
}

proptest! {
    /// One row lives in one block: whatever that block's score becomes (another value,
    /// undefined, not a number), the mean of the clamped block scores moves by at most Δ.
    #[test]
    fn one_block_moves_the_block_mean_by_at_most_the_row_sensitivity(
        scores in prop::collection::vec(prop::option::of(-2f64..3.0), 2..60),
        changed in 0usize..60,
        replacement in prop::option::of(prop_oneof![-5f64..5.0, Just(f64::NAN), Just(f64::INFINITY)]),
    ) {
        let range = medarena_scorer::Range { min: 0.0, max: 1.0 };
        let delta = medarena_scorer::row_sensitivity(range, scores.len()).unwrap().value;
        let before = medarena_scorer::block_mean(&scores, range).unwrap();
        let mut after_scores = scores.clone();
        let at = changed % scores.len();
        after_scores[at] = replacement;
        let after = medarena_scorer::block_mean(&after_scores, range).unwrap();
        prop_assert!((0.0..=1.0).contains(&before) && (0.0..=1.0).contains(&after));
        prop_assert!((before - after).abs() <= delta + 1e-12, "moved {} > {delta}", (before - after).abs());
    }
}
