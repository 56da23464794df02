//! Every metric against the values scikit-learn, lifelines, scikit-survival and statsmodels
//! computed for the committed fixtures (`fixtures/generate.py` regenerates them).

use std::collections::BTreeMap;
use std::path::PathBuf;

use medarena_scorer::metrics::{
    CensoringDistribution, HorizonRisk, cumulative_dynamic_auc, uno_c_index,
};
use medarena_scorer::{Metric, MetricError, Predictions, ScoreContext, SurvivalLabels, Truth};
use serde::Deserialize;

const TOLERANCE: f64 = 1e-9;

#[derive(Deserialize)]
struct File<C> {
    cases: Vec<C>,
}

#[derive(Deserialize)]
struct BinaryCase {
    name: String,
    labels: Vec<bool>,
    predictions: Vec<f64>,
    expected: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
struct MulticlassCase {
    name: String,
    n_classes: usize,
    labels: Vec<u32>,
    probabilities: Vec<Vec<f64>>,
    expected: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
struct RegressionCase {
    name: String,
    truth: Vec<f64>,
    predictions: Vec<f64>,
    expected: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
struct SurvivalCase {
    name: String,
    time: Vec<f64>,
    event: Vec<bool>,
    /// Risk scores (higher = earlier event).
    predictions: Vec<f64>,
    curves: Option<Curves>,
    training: Option<Labels>,
    /// Harrell's C of the risk scores.
    expected: BTreeMap<String, f64>,
    evaluations: Vec<Evaluation>,
}

#[derive(Deserialize)]
struct Curves {
    times: Vec<f64>,
    values: Vec<Vec<f64>>,
}

#[derive(Deserialize, Clone)]
struct Labels {
    time: Vec<f64>,
    event: Vec<bool>,
}

#[derive(Deserialize)]
struct Evaluation {
    context: Context,
    risk: Expected,
    curves: Option<Expected>,
}

#[derive(Deserialize)]
struct Context {
    horizons: Vec<f64>,
    tau: Option<f64>,
    use_training: bool,
}

#[derive(Deserialize)]
struct Expected {
    expected: BTreeMap<String, f64>,
    td_auc_per_horizon: Vec<f64>,
}

#[derive(Deserialize)]
struct ErrorCase {
    name: String,
    time: Vec<f64>,
    event: Vec<bool>,
    predictions: Vec<f64>,
    curves: Curves,
    training: Labels,
    horizons: Vec<f64>,
    errors: Vec<String>,
    tau: f64,
    uno_c_index_with_tau: f64,
}

fn load<C: for<'de> Deserialize<'de>>(task: &str) -> Vec<C> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("{task}.json"));
    let text = std::fs::read_to_string(&path).expect("fixture file is committed");
    serde_json::from_str::<File<C>>(&text)
        .expect("fixture file parses")
        .cases
}

/// Checks every expected value of one case; returns how many metrics were compared.
fn check(
    case: &str,
    truth: &Truth,
    predictions: &Predictions,
    expected: &BTreeMap<String, f64>,
) -> usize {
    check_with(case, truth, predictions, &ScoreContext::default(), expected)
}

fn check_with(
    case: &str,
    truth: &Truth,
    predictions: &Predictions,
    context: &ScoreContext,
    expected: &BTreeMap<String, f64>,
) -> usize {
    for (name, &want) in expected {
        let metric: Metric = name.parse().expect("fixture names a known metric");
        assert_eq!(metric.name(), name, "fixtures use canonical names");
        let got = metric
            .score_with(truth, predictions, context)
            .unwrap_or_else(|e| panic!("{case}/{name}: {e}"));
        assert!(
            (got - want).abs() <= TOLERANCE,
            "{case}/{name}: got {got:.17}, reference {want:.17}"
        );
    }
    expected.len()
}

#[test]
fn binary_metrics_match_scikit_learn() {
    let mut compared = 0;
    for case in load::<BinaryCase>("binary") {
        let truth = Truth::Binary(case.labels);
        let predictions = Predictions::Scores(case.predictions);
        compared += check(&case.name, &truth, &predictions, &case.expected);
    }
    assert_eq!(compared, 4 * 8);
}

#[test]
fn calibration_matches_statsmodels_and_the_numpy_ece() {
    let mut compared = 0;
    for case in load::<BinaryCase>("calibration") {
        let truth = Truth::Binary(case.labels);
        let predictions = Predictions::Scores(case.predictions);
        compared += check(&case.name, &truth, &predictions, &case.expected);
    }
    assert_eq!(compared, 4 * 3);
}

#[test]
fn multiclass_metrics_match_scikit_learn() {
    let mut compared = 0;
    for case in load::<MulticlassCase>("multiclass") {
        let truth = Truth::Multiclass {
            labels: case.labels,
            n_classes: case.n_classes,
        };
        let predictions = Predictions::Probabilities {
            n_classes: case.n_classes,
            values: case.probabilities.concat(),
        };
        compared += check(&case.name, &truth, &predictions, &case.expected);
    }
    assert_eq!(compared, 2 * 3);
}

#[test]
fn regression_metrics_match_scikit_learn() {
    let mut compared = 0;
    for case in load::<RegressionCase>("regression") {
        let truth = Truth::Regression(case.truth);
        let predictions = Predictions::Scores(case.predictions);
        compared += check(&case.name, &truth, &predictions, &case.expected);
    }
    assert_eq!(compared, 3 * 3);
}

fn close(case: &str, what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= TOLERANCE,
        "{case}/{what}: got {got:.17}, reference {want:.17}"
    );
}

#[test]
fn c_index_matches_lifelines_and_scikit_survival() {
    let mut compared = 0;
    for case in load::<SurvivalCase>("survival") {
        let truth = Truth::Survival {
            time: case.time,
            event: case.event,
        };
        let predictions = Predictions::Scores(case.predictions);
        compared += check(&case.name, &truth, &predictions, &case.expected);
    }
    assert_eq!(compared, 6);
}

/// Uno's C, the cumulative/dynamic AUC (mean and per horizon), the Brier scores and the
/// ECE at a horizon, from risk scores and from curves, in every context of every case.
#[test]
fn survival_metrics_match_scikit_survival_and_lifelines() {
    let mut compared = 0;
    let mut metrics_seen = std::collections::BTreeSet::new();
    for case in load::<SurvivalCase>("survival") {
        let truth = Truth::Survival {
            time: case.time.clone(),
            event: case.event.clone(),
        };
        let risk = Predictions::Scores(case.predictions.clone());
        let curves = case.curves.as_ref().map(|c| Predictions::SurvivalCurves {
            times: c.times.clone(),
            values: c.values.concat(),
        });
        for (k, evaluation) in case.evaluations.iter().enumerate() {
            let name = format!("{}[{k}]", case.name);
            let training = case
                .training
                .as_ref()
                .filter(|_| evaluation.context.use_training);
            let context = ScoreContext {
                horizons: evaluation.context.horizons.clone(),
                tau: evaluation.context.tau,
                training: training.map(|l| SurvivalLabels {
                    time: l.time.clone(),
                    event: l.event.clone(),
                }),
            };
            compared += check_with(&name, &truth, &risk, &context, &evaluation.risk.expected);
            metrics_seen.extend(evaluation.risk.expected.keys().cloned());

            // The per-horizon AUCs, through the function other crates call.
            let censoring = match training {
                Some(l) => CensoringDistribution::fit(&l.time, &l.event),
                None => CensoringDistribution::fit(&case.time, &case.event),
            }
            .unwrap();
            let auc = cumulative_dynamic_auc(
                &case.time,
                &case.event,
                HorizonRisk::Same(&case.predictions),
                &context.horizons,
                &censoring,
            )
            .unwrap();
            assert_eq!(auc.auc.len(), evaluation.risk.td_auc_per_horizon.len());
            for (got, &want) in auc.auc.iter().zip(&evaluation.risk.td_auc_per_horizon) {
                close(&name, "td_auc per horizon", *got, want);
                compared += 1;
            }

            if let (Some(curves), Some(expected)) = (&curves, &evaluation.curves) {
                let name = format!("{name}/curves");
                compared += check_with(&name, &truth, curves, &context, &expected.expected);
                metrics_seen.extend(expected.expected.keys().cloned());
            }
        }
    }
    assert_eq!(
        metrics_seen.into_iter().collect::<Vec<_>>(),
        [
            "brier_at_horizon",
            "c_index",
            "ece_at_horizon",
            "integrated_brier",
            "td_auc",
            "uno_c_index"
        ]
    );
    // Three cases × five contexts with risk scores and curves, and the Kaplan-Meier case's
    // one context with risk scores (its curves are rebuilt in tests/properties.rs); the
    // per-horizon AUCs count one each.
    assert_eq!(compared, 459);
}

/// Where scikit-survival raises (a test event after the last training time while the
/// censoring survival is still positive), the scorer returns an error, and Uno's C with a
/// truncation time before that event is defined again.
#[test]
fn survival_metrics_refuse_what_scikit_survival_refuses() {
    for case in load::<ErrorCase>("survival_errors") {
        let truth = Truth::Survival {
            time: case.time.clone(),
            event: case.event.clone(),
        };
        let training = SurvivalLabels {
            time: case.training.time.clone(),
            event: case.training.event.clone(),
        };
        let context = ScoreContext {
            horizons: case.horizons.clone(),
            tau: None,
            training: Some(training),
        };
        let risk = Predictions::Scores(case.predictions.clone());
        let curves = Predictions::SurvivalCurves {
            times: case.curves.times.clone(),
            values: case.curves.values.concat(),
        };
        for name in &case.errors {
            let metric: Metric = name.parse().unwrap();
            let predictions = if metric.needs_survival_curves() {
                &curves
            } else {
                &risk
            };
            let result = metric.score_with(&truth, predictions, &context);
            assert!(
                matches!(
                    result,
                    Err(MetricError::AfterLastTrainingTime { row: 0, .. })
                ),
                "{}/{name}: {result:?}",
                case.name
            );
        }
        let censoring =
            CensoringDistribution::fit(&case.training.time, &case.training.event).unwrap();
        let uno = uno_c_index(
            &case.time,
            &case.event,
            &case.predictions,
            Some(case.tau),
            &censoring,
        )
        .unwrap();
        close(
            &case.name,
            "uno_c_index with tau",
            uno,
            case.uno_c_index_with_tau,
        );
    }
}
