//! Property tests of the metrics: invariances, bounds, symmetric cases and brute-force
//! references.

use std::collections::BTreeMap;

use medarena_scorer::metrics::{
    self, CensoringDistribution, ConcordanceCounts, HorizonRisk, KaplanMeier, TIED_TOLERANCE,
    average_precision, calibration_intercept, calibration_slope, concordance_counts,
    cumulative_dynamic_auc, harrell_c_index, roc_auc, uno_c_index,
};
use medarena_scorer::{
    Direction, Metric, MetricError, Predictions, ScoreContext, SurvivalLabels, Truth,
};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Deserialize;

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

/// Harrell's pairs by definition: `i` had the event first; concordant when `i` has the
/// higher risk.
fn quadratic_concordance(time: &[f64], event: &[bool], risk: &[f64]) -> ConcordanceCounts {
    let mut c = ConcordanceCounts {
        concordant: 0,
        discordant: 0,
        tied_prediction: 0,
    };
    for i in 0..time.len() {
        for j in 0..time.len() {
            if event[i] && (time[i] < time[j] || (time[i] == time[j] && !event[j])) {
                match risk[i].partial_cmp(&risk[j]) {
                    Some(std::cmp::Ordering::Greater) => c.concordant += 1,
                    Some(std::cmp::Ordering::Less) => c.discordant += 1,
                    _ => c.tied_prediction += 1,
                }
            }
        }
    }
    c
}

/// Uno's C by scikit-survival's definition, pair by pair, with the censoring distribution
/// `g`: `Err` with the error the scorer must return where it is undefined.
fn quadratic_uno(
    time: &[f64],
    event: &[bool],
    risk: &[f64],
    tau: Option<f64>,
    g: &CensoringDistribution,
) -> Result<f64, &'static str> {
    let included: Vec<usize> = (0..time.len())
        .filter(|&i| event[i] && tau.is_none_or(|tau| time[i] < tau))
        .collect();
    if included.is_empty() {
        return Err("all censored");
    }
    let (mut numerator, mut denominator) = (0.0, 0.0);
    for &i in &included {
        let gi = g.at(time[i]).ok_or("after the last training time")?;
        if gi == 0.0 {
            return Err("zero censoring survival");
        }
        let w = (1.0 / gi) * (1.0 / gi);
        for j in 0..time.len() {
            if time[j] > time[i] || (time[j] == time[i] && !event[j]) {
                denominator += w;
                if (risk[j] - risk[i]).abs() <= TIED_TOLERANCE {
                    numerator += 0.5 * w;
                } else if risk[j] < risk[i] {
                    numerator += w;
                }
            }
        }
    }
    if denominator == 0.0 {
        return Err("undefined");
    }
    Ok(numerator / denominator)
}

/// The cumulative/dynamic AUC at `horizon` by definition: IPCW-weighted (case, control)
/// pairs, the case having the higher risk (ties ½).
fn quadratic_td_auc(time: &[f64], event: &[bool], risk: &[f64], ipcw: &[f64], horizon: f64) -> f64 {
    let (mut pairs, mut total) = (0.0, 0.0);
    for i in (0..time.len()).filter(|&i| event[i] && time[i] <= horizon) {
        for j in (0..time.len()).filter(|&j| time[j] > horizon) {
            total += ipcw[i];
            if (risk[i] - risk[j]).abs() <= TIED_TOLERANCE {
                pairs += 0.5 * ipcw[i];
            } else if risk[i] > risk[j] {
                pairs += ipcw[i];
            }
        }
    }
    pairs / total
}

/// Survival rows: times on a small integer grid (ties of every kind), risks on a grid of
/// 1/16 (so that the monotone transforms below keep distinct risks further apart than the
/// tie tolerance).
fn survival_data() -> impl Strategy<Value = (Vec<f64>, Vec<bool>, Vec<f64>)> {
    prop::collection::vec((1u8..13, any::<bool>(), -40i32..40), 4..70).prop_map(|rows| {
        (
            rows.iter().map(|r| f64::from(r.0)).collect(),
            rows.iter().map(|r| r.1).collect(),
            rows.iter().map(|r| f64::from(r.2) / 16.0).collect(),
        )
    })
}

const MONOTONE: [fn(f64) -> f64; 4] = [
    |x| x.exp(),
    |x| x.powi(3),
    |x| 1.0 / (1.0 + (-x).exp()),
    |x| 3.0 * x - 7.0,
];

/// Horizons usable on these labels: distinct times inside [min, max) with an event at or
/// before them (so that every horizon has a case).
fn usable_horizons(time: &[f64], event: &[bool]) -> Vec<f64> {
    let last = time.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let first_event = time
        .iter()
        .zip(event)
        .filter(|e| *e.1)
        .map(|e| *e.0)
        .fold(f64::INFINITY, f64::min);
    let mut horizons: Vec<f64> = time
        .iter()
        .copied()
        .filter(|&t| t >= first_event && t < last)
        .collect();
    horizons.sort_by(f64::total_cmp);
    horizons.dedup();
    horizons
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
            let value = match metric.score(&truth, &predictions) {
                Ok(value) => value,
                // Logistic recalibration has no maximum on separated data; nothing else may
                // fail on these rows.
                Err(MetricError::Undefined { .. })
                    if matches!(metric, Metric::CalibrationSlope | Metric::CalibrationIntercept) =>
                {
                    continue
                }
                Err(e) => panic!("{metric}: {e}"),
            };
            let range = metric.range();
            prop_assert!(value >= range.min && value <= range.max, "{metric} = {value}");
            let again = metric.score(&rotated_truth, &rotated_predictions).unwrap();
            // The Newton fits stop at a step of 1e-11 relative: row order moves the last bits.
            prop_assert!((value - again).abs() < 1e-12 * (1.0 + value.abs()) * 1e3, "{metric}: {value} vs {again}");
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
            // Reversing the risks swaps concordant and discordant pairs.
            let reversed: Vec<f64> = pred.iter().map(|p| -p).collect();
            let back = harrell_c_index(&time, &event, &reversed).unwrap();
            prop_assert!((c + back - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn a_risk_decreasing_in_the_observed_time_is_perfectly_concordant(
        times in prop::collection::btree_set(0u32..10_000, 2..60)
    ) {
        let time: Vec<f64> = times.iter().map(|&t| f64::from(t)).collect();
        let event = vec![true; time.len()];
        let risk: Vec<f64> = time.iter().map(|t| -t).collect();
        prop_assert_eq!(harrell_c_index(&time, &event, &risk).unwrap(), 1.0);
        // The old convention (higher = longer survival) is now perfectly discordant.
        prop_assert_eq!(harrell_c_index(&time, &event, &time).unwrap(), 0.0);
        let constant = vec![1.0; time.len()];
        prop_assert_eq!(harrell_c_index(&time, &event, &constant).unwrap(), 0.5);
    }

    #[test]
    fn c_indices_are_invariant_under_monotone_transforms_of_the_risk(
        (time, event, risk) in survival_data(),
        tau_index in 0usize..70,
    ) {
        let g = CensoringDistribution::fit(&time, &event);
        prop_assume!(g.is_ok());
        let g = g.unwrap();
        let tau = Some(time[tau_index % time.len()] + 0.5);
        let harrell = harrell_c_index(&time, &event, &risk);
        let uno = uno_c_index(&time, &event, &risk, tau, &g);
        for transform in MONOTONE {
            let moved: Vec<f64> = risk.iter().map(|&r| transform(r)).collect();
            prop_assert_eq!(harrell_c_index(&time, &event, &moved), harrell.clone());
            prop_assert_eq!(uno_c_index(&time, &event, &moved, tau, &g), uno.clone());
        }
    }

    #[test]
    fn uno_c_index_matches_pair_counting(
        (time, event, risk) in survival_data(),
        tau_index in 0usize..70,
        truncate in any::<bool>(),
    ) {
        let g = CensoringDistribution::fit(&time, &event);
        prop_assume!(g.is_ok());
        let g = g.unwrap();
        let tau = truncate.then(|| time[tau_index % time.len()] + 0.5);
        let fast = uno_c_index(&time, &event, &risk, tau, &g);
        match quadratic_uno(&time, &event, &risk, tau, &g) {
            Ok(slow) => {
                let fast = fast.unwrap();
                prop_assert!((fast - slow).abs() < 1e-12, "{} vs {}", fast, slow);
                prop_assert!((0.0..=1.0).contains(&fast));
            }
            Err("all censored") => prop_assert!(matches!(fast, Err(MetricError::AllCensored { .. })), "{:?}", fast),
            Err("zero censoring survival") => prop_assert!(matches!(fast, Err(MetricError::ZeroCensoringSurvival { .. })), "{:?}", fast),
            Err(other) => prop_assert!(matches!(fast, Err(MetricError::Undefined { .. })), "{}: {:?}", other, fast),
        }
    }

    #[test]
    fn td_auc_matches_pair_counting_and_lies_in_the_unit_interval(
        (time, event, risk) in survival_data(),
    ) {
        let g = CensoringDistribution::fit(&time, &event);
        prop_assume!(g.is_ok());
        let g = g.unwrap();
        let horizons = usable_horizons(&time, &event);
        prop_assume!(!horizons.is_empty());
        let ipcw: Vec<f64> = time.iter().zip(&event)
            .map(|(&t, &e)| if e { 1.0 / g.at(t).unwrap() } else { 0.0 })
            .collect();
        prop_assume!(ipcw.iter().all(|w| w.is_finite()));
        let fast = cumulative_dynamic_auc(&time, &event, HorizonRisk::Same(&risk), &horizons, &g).unwrap();
        for (&auc, &h) in fast.auc.iter().zip(&horizons) {
            prop_assert!((0.0..=1.0).contains(&auc), "AUC({}) = {}", h, auc);
            let slow = quadratic_td_auc(&time, &event, &risk, &ipcw, h);
            prop_assert!((auc - slow).abs() < 1e-12, "AUC({}): {} vs {}", h, auc, slow);
        }
        prop_assert!((0.0..=1.0).contains(&fast.mean_auc), "mean {}", fast.mean_auc);
        // The mean as scikit-survival weighs it: by the drops of the test Kaplan-Meier curve.
        if horizons.len() > 1 {
            let km = KaplanMeier::fit(&time, &event).unwrap();
            let mut previous = 1.0;
            let mut integral = 0.0;
            for (&auc, &h) in fast.auc.iter().zip(&horizons) {
                integral += auc * (previous - km.at(h));
                previous = km.at(h);
            }
            prop_assert!((fast.mean_auc - integral / (1.0 - previous)).abs() < 1e-12);
        }
        // One risk per horizon, each a copy of the same column: the same AUCs, by the other
        // algorithm (one sort per horizon instead of the sweep).
        let per_horizon: Vec<f64> = risk.iter().flat_map(|&r| std::iter::repeat_n(r, horizons.len())).collect();
        let other = cumulative_dynamic_auc(&time, &event, HorizonRisk::PerHorizon(&per_horizon), &horizons, &g).unwrap();
        for (a, b) in fast.auc.iter().zip(&other.auc) {
            prop_assert!((a - b).abs() < 1e-12, "{} vs {}", a, b);
        }
        for transform in MONOTONE {
            let moved: Vec<f64> = risk.iter().map(|&r| transform(r)).collect();
            let again = cumulative_dynamic_auc(&time, &event, HorizonRisk::Same(&moved), &horizons, &g).unwrap();
            for (a, b) in fast.auc.iter().zip(&again.auc) {
                prop_assert!((a - b).abs() < 1e-12, "{} vs {}", a, b);
            }
        }
    }

    /// Curves exp(−λ t) rank rows as the risks λ do: the C-indices by minus the area under
    /// the curve, the AUC by 1 − S(h) at each horizon.
    #[test]
    fn curves_rank_rows_as_their_hazards_do((time, event, log_hazard) in survival_data()) {
        let g = CensoringDistribution::fit(&time, &event);
        prop_assume!(g.is_ok());
        let horizons = usable_horizons(&time, &event);
        prop_assume!(!horizons.is_empty());
        // Hazards small enough that no curve gets within the tie tolerance of 0 by the last
        // horizon (there, 1 − S(h) of different hazards would tie, as in scikit-survival).
        let hazard: Vec<f64> = log_hazard.iter().map(|x| (x / 4.0).exp() / 20.0).collect();
        let grid: Vec<f64> = (0..=26).map(|j| f64::from(j) / 2.0).collect();
        let values: Vec<f64> = hazard.iter().flat_map(|&l| grid.iter().map(move |&t| (-l * t).exp())).collect();
        let truth = Truth::Survival { time: time.clone(), event: event.clone() };
        let curves = Predictions::SurvivalCurves { times: grid, values };
        let risk = Predictions::Scores(hazard);
        let context = ScoreContext { horizons, tau: None, training: None };
        for metric in [Metric::CIndex, Metric::UnoCIndex, Metric::TdAuc] {
            let from_risk = metric.score_with(&truth, &risk, &context);
            let from_curves = metric.score_with(&truth, &curves, &context);
            match (from_risk, from_curves) {
                (Ok(a), Ok(b)) => prop_assert!((a - b).abs() < 1e-12, "{}: {} vs {}", metric, a, b),
                (a, b) => prop_assert_eq!(a.is_err(), b.is_err(), "{}: {:?} vs {:?}", metric, a, b),
            }
        }
    }

    /// The Brier score and the IBS of the Kaplan-Meier curve of the training labels, given
    /// to every row, equal scikit-survival's for that curve (fixture `kaplan_meier_curve`),
    /// whatever the row order; the curve is rebuilt here by the crate's own estimator.
    #[test]
    fn integrated_brier_of_the_kaplan_meier_curve_matches_scikit_survival(shift in 0usize..200) {
        let case = kaplan_meier_case();
        let km = KaplanMeier::fit(&case.training.time, &case.training.event).unwrap();
        let n = case.time.len();
        let (mut time, mut event) = (case.time.clone(), case.event.clone());
        time.rotate_left(shift % n);
        event.rotate_left(shift % n);
        let truth = Truth::Survival { time, event };
        let curves = Predictions::SurvivalCurves {
            times: km.times().to_vec(),
            values: km.survival().repeat(n),
        };
        let evaluation = &case.evaluations[0];
        let context = ScoreContext {
            horizons: evaluation.context.horizons.clone(),
            tau: None,
            training: Some(SurvivalLabels { time: case.training.time.clone(), event: case.training.event.clone() }),
        };
        let want = evaluation.curves.expected["integrated_brier"];
        let got = Metric::IntegratedBrier.score_with(&truth, &curves, &context).unwrap();
        prop_assert!((got - want).abs() < 1e-9, "{} vs {}", got, want);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// On a large sample drawn from the predicted probabilities the calibration slope is
    /// near 1 and the intercept near 0; logits twice too large halve the slope, and logits
    /// shifted by +1 move the intercept to about −1.
    #[test]
    fn calibration_slope_of_calibrated_predictions_is_near_one(seed in any::<u64>()) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
        let n = 20_000;
        let z: Vec<f64> = (0..n).map(|_| rng.gen_range(-3.0..3.0)).collect();
        let y: Vec<bool> = z.iter().map(|&z| rng.r#gen::<f64>() < sigmoid(z)).collect();
        let p: Vec<f64> = z.iter().map(|&z| sigmoid(z)).collect();
        let slope = calibration_slope(&y, &p).unwrap();
        let intercept = calibration_intercept(&y, &p).unwrap();
        // Standard errors are about 0.015 (slope) and 0.02 (intercept) at this size.
        prop_assert!((slope - 1.0).abs() < 0.1, "slope {}", slope);
        prop_assert!(intercept.abs() < 0.1, "intercept {}", intercept);
        let overconfident: Vec<f64> = z.iter().map(|&z| sigmoid(2.0 * z)).collect();
        let half = calibration_slope(&y, &overconfident).unwrap();
        prop_assert!((half - 0.5).abs() < 0.05, "slope {}", half);
        let too_high: Vec<f64> = z.iter().map(|&z| sigmoid(z + 1.0)).collect();
        let shifted = calibration_intercept(&y, &too_high).unwrap();
        prop_assert!((shifted + 1.0).abs() < 0.1, "intercept {}", shifted);
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

}

proptest! {
    #[test]
    fn metric_names_round_trip(index in 0usize..Metric::ALL.len()) {
        let metric = Metric::ALL[index];
        prop_assert_eq!(metric.name().parse::<Metric>().unwrap(), metric);
        prop_assert_eq!(metric.name().to_uppercase().parse::<Metric>().unwrap(), metric);
        // serde writes the same names.
        prop_assert_eq!(serde_json::to_string(&metric).unwrap(), format!("\"{}\"", metric.name()));
    }

    #[test]
    fn closer_to_directions_rank_by_distance_to_the_ideal(a in -5.0f64..5.0, b in -5.0f64..5.0) {
        for (direction, target) in [(Direction::CloserToOne, 1.0), (Direction::CloserToZero, 0.0)] {
            prop_assert_eq!(direction.is_better(a, b), (a - target).abs() < (b - target).abs());
            prop_assert_eq!(
                direction.cmp_best_first(a, b),
                (a - target).abs().total_cmp(&(b - target).abs())
            );
        }
    }
}

// ---- the Kaplan-Meier fixture case and the survival API's refusals ------------------------

#[derive(Deserialize)]
struct Labels {
    time: Vec<f64>,
    event: Vec<bool>,
}

#[derive(Deserialize)]
struct Context {
    horizons: Vec<f64>,
}

#[derive(Deserialize)]
struct Expected {
    expected: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
struct Evaluation {
    context: Context,
    curves: Expected,
}

#[derive(Deserialize)]
struct KaplanMeierCase {
    name: String,
    time: Vec<f64>,
    event: Vec<bool>,
    training: Labels,
    evaluations: Vec<Evaluation>,
}

#[derive(Deserialize)]
struct SurvivalFile {
    cases: Vec<serde_json::Value>,
}

fn kaplan_meier_case() -> KaplanMeierCase {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/survival.json");
    let text = std::fs::read_to_string(path).expect("fixture file is committed");
    let file: SurvivalFile = serde_json::from_str(&text).expect("fixture file parses");
    file.cases
        .into_iter()
        .map(serde_json::from_value::<KaplanMeierCase>)
        .filter_map(Result::ok)
        .find(|case| case.name == "kaplan_meier_curve")
        .expect("the Kaplan-Meier case is in the fixtures")
}

fn small_survival() -> (Truth, Predictions) {
    let truth = Truth::Survival {
        time: vec![1.0, 2.0, 3.0, 4.0, 5.0],
        event: vec![true, false, true, true, false],
    };
    let curves = Predictions::SurvivalCurves {
        times: vec![1.0, 2.5, 4.0],
        values: vec![
            0.9, 0.5, 0.2, //
            0.95, 0.7, 0.4, //
            0.9, 0.6, 0.3, //
            0.99, 0.8, 0.7, //
            0.99, 0.9, 0.8,
        ],
    };
    (truth, curves)
}

#[test]
fn curve_errors_name_the_row_and_the_column() {
    let (truth, _) = small_survival();
    let context = ScoreContext {
        horizons: vec![2.0],
        ..ScoreContext::default()
    };
    let mut values = [0.9, 0.5, 0.2].repeat(5);
    values[3 * 3 + 2] = 0.6; // row 3 rises at column 2
    let rising = Predictions::SurvivalCurves {
        times: vec![1.0, 2.5, 4.0],
        values: values.clone(),
    };
    let err = Metric::BrierAtHorizon.score_with(&truth, &rising, &context);
    assert!(
        matches!(
            err,
            Err(MetricError::BadCurveValue {
                row: 3,
                column: 2,
                ..
            })
        ),
        "{err:?}"
    );
    values[3 * 3 + 2] = 0.2;
    values[4 * 3] = 1.5;
    let outside = Predictions::SurvivalCurves {
        times: vec![1.0, 2.5, 4.0],
        values,
    };
    let err = Metric::CIndex.score_with(&truth, &outside, &context);
    assert!(
        matches!(
            err,
            Err(MetricError::BadCurveValue {
                row: 4,
                column: 0,
                ..
            })
        ),
        "{err:?}"
    );
    let unordered = Predictions::SurvivalCurves {
        times: vec![1.0, 2.5, 2.5],
        values: vec![0.5; 15],
    };
    let err = Metric::CIndex.score_with(&truth, &unordered, &context);
    assert!(
        matches!(err, Err(MetricError::BadCurveTime { column: 2, .. })),
        "{err:?}"
    );
}

#[test]
fn curve_metrics_refuse_risk_scores_and_missing_horizons() {
    let (truth, curves) = small_survival();
    let risk = Predictions::Scores(vec![0.5, 0.1, 0.4, 0.0, -0.3]);
    let one = ScoreContext {
        horizons: vec![2.0],
        ..ScoreContext::default()
    };
    for metric in [
        Metric::BrierAtHorizon,
        Metric::EceAtHorizon,
        Metric::IntegratedBrier,
    ] {
        let err = metric.score_with(&truth, &risk, &one).unwrap_err();
        assert!(
            matches!(err, MetricError::NeedsSurvivalCurves { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("survival curves"), "{err}");
        // Without a context, the curves are fine but the horizons are missing.
        let err = metric.score(&truth, &curves).unwrap_err();
        assert!(matches!(err, MetricError::MissingHorizons { .. }), "{err}");
    }
    assert!(matches!(
        Metric::TdAuc.score(&truth, &risk),
        Err(MetricError::MissingHorizons { given: 0, .. })
    ));
    // Brier at one horizon with two declared is refused rather than guessed.
    let two = ScoreContext {
        horizons: vec![2.0, 3.0],
        ..ScoreContext::default()
    };
    assert!(matches!(
        Metric::BrierAtHorizon.score_with(&truth, &curves, &two),
        Err(MetricError::MissingHorizons { given: 2, .. })
    ));
    // Harrell's and Uno's C need no context; with curves they rank by minus the area.
    assert!(Metric::CIndex.score(&truth, &curves).is_ok());
    assert!(Metric::UnoCIndex.score(&truth, &curves).is_ok());
    // A horizon before the curves' first time is outside them.
    let early = ScoreContext {
        horizons: vec![1.0],
        ..ScoreContext::default()
    };
    let late_grid = Predictions::SurvivalCurves {
        times: vec![1.5, 3.0],
        values: [0.9, 0.5].repeat(5),
    };
    assert!(matches!(
        Metric::BrierAtHorizon.score_with(&truth, &late_grid, &early),
        Err(MetricError::HorizonOutsideCurves { .. })
    ));
    // Multiclass probabilities are not survival predictions.
    let probabilities = Predictions::Probabilities {
        n_classes: 2,
        values: vec![0.5; 10],
    };
    assert!(matches!(
        Metric::CIndex.score(&truth, &probabilities),
        Err(MetricError::WrongTask { .. })
    ));
}

#[test]
fn curves_are_read_as_right_continuous_steps() {
    // Horizon 2.0 falls between grid times 1.0 and 2.5: the value at 1.0 is used. Row 0
    // had its event at 1 (case), the others are event-free after 2 (row 1 is censored at 2
    // and counts in neither group). With curves equal to a constant 0.7 at 1.0, the Brier
    // score at 2 differs from that of a curve read at 2.5.
    let (truth, curves) = small_survival();
    let at_two = ScoreContext {
        horizons: vec![2.0],
        ..ScoreContext::default()
    };
    let at_grid = ScoreContext {
        horizons: vec![1.0],
        ..ScoreContext::default()
    };
    let value = Metric::BrierAtHorizon
        .score_with(&truth, &curves, &at_two)
        .unwrap();
    // Same values as at 1.0 but cases and controls of horizon 2: compute by hand with the
    // censoring distribution of the test labels (G = 1 up to 2, 1 − 1/4 after the censoring
    // at 2): row 0 case: 0.9²/1; rows 2, 3, 4 controls: (1 − 0.9)², (1 − 0.99)², (1 − 0.99)²
    // over G(2) = 0.75; row 1 censored at 2 counts 0. Mean over 5 rows.
    let want = (0.81 + (0.01 + 0.0001 + 0.0001) / 0.75) / 5.0;
    assert!((value - want).abs() < 1e-15, "{value} vs {want}");
    assert!(
        Metric::BrierAtHorizon
            .score_with(&truth, &curves, &at_grid)
            .is_ok()
    );
}
