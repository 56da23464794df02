//! Every metric against the values scikit-learn, lifelines and scikit-survival computed for
//! the committed fixtures (`fixtures/generate.py` regenerates them).

use std::collections::BTreeMap;
use std::path::PathBuf;

use medarena_scorer::{Metric, Predictions, Truth};
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
    predictions: Vec<f64>,
    expected: BTreeMap<String, f64>,
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
    for (name, &want) in expected {
        let metric: Metric = name.parse().expect("fixture names a known metric");
        let got = metric
            .score(truth, predictions)
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
    assert_eq!(compared, 4 * 7);
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
    assert_eq!(compared, 2);
}
