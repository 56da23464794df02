//! The example submissions end to end through the real child process.

mod common;

use common::*;
use medarena_sandbox::{FitPredictJob, Labels, Limits, RunOutput, Sandbox, Status};
use std::sync::Arc;

#[test]
fn examples_spread_on_a_learnable_binary_task() {
    let sandbox = sandbox();
    let train = dataset(2000, 6, 1);
    let test = dataset(1000, 6, 2);
    let labels = binary_labels(&train.score, 3);
    let Labels::Binary(truth) = binary_labels(&test.score, 4) else {
        unreachable!()
    };
    let limits = Limits::default();
    let mut aucs = Vec::new();
    for name in ["baseline", "logreg", "gbt"] {
        let job = FitPredictJob {
            train_features: &train.features,
            train_labels: &labels,
            test_features: &test.features,
            seed: 7,
            limits: &limits,
            debug: true,
            survival_grid: None,
        };
        let output = sandbox
            .fit_predict(&example_wasm(name), &job)
            .unwrap_or_else(|f| panic!("{name}: {f}"));
        assert_eq!(output.predictions.len(), 1000);
        assert!(
            output.debug_log.contains(name),
            "{name} debug log: {:?}",
            output.debug_log
        );
        aucs.push(auc(&output.predictions, &truth));
    }
    eprintln!("AUC baseline / logreg / gbt: {aucs:?}");
    assert!(
        (aucs[0] - 0.5).abs() < 0.05,
        "baseline is constant: {aucs:?}"
    );
    assert!(aucs[1] > aucs[0] + 0.15, "logreg learns: {aucs:?}");
    assert!(aucs[2] > aucs[1] + 0.01, "gbt beats logreg: {aucs:?}");
}

#[test]
fn same_submission_same_data_gives_identical_bytes() {
    let sandbox = sandbox();
    let train = dataset(600, 5, 11);
    let test = dataset(300, 5, 12);
    let labels = binary_labels(&train.score, 13);
    let limits = Limits::default();
    let job = FitPredictJob {
        train_features: &train.features,
        train_labels: &labels,
        test_features: &test.features,
        seed: 99,
        limits: &limits,
        debug: false,
        survival_grid: None,
    };
    let module = example_wasm("gbt");
    let first = sandbox.fit_predict(&module, &job).expect("first run");
    let second = sandbox.fit_predict(&module, &job).expect("second run");
    assert!(
        !first.cache_hit && second.cache_hit,
        "the second run loads the cached artifact"
    );
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&first.predictions), bits(&second.predictions));
    // The seed matters (rows are subsampled from it), so the comparison above is not vacuous.
    let reseeded = sandbox
        .fit_predict(&module, &FitPredictJob { seed: 100, ..job })
        .expect("third run");
    assert_ne!(bits(&first.predictions), bits(&reseeded.predictions));
    // Real-data runs carry no debug output.
    assert!(first.debug_log.is_empty());
}

#[test]
fn every_task_kind_runs_with_every_example() {
    let sandbox = sandbox();
    let train = dataset(400, 5, 21);
    let test = dataset(100, 5, 22);
    let classes = vec!["low".to_string(), "mid".to_string(), "high".to_string()];
    let tasks = [
        Labels::Multiclass {
            classes: classes.clone(),
            codes: train
                .score
                .iter()
                .map(|&s| {
                    if s < -0.5 {
                        0
                    } else if s < 0.8 {
                        1
                    } else {
                        2
                    }
                })
                .collect(),
        },
        Labels::Regression(train.score.clone()),
        Labels::Survival {
            time: train
                .score
                .iter()
                .map(|&s| (1.0 + (-s).exp()) * 10.0)
                .collect(),
            event: (0..400).map(|i| i % 4 != 0).collect(),
        },
    ];
    let limits = Limits::default();
    for labels in &tasks {
        for name in ["baseline", "logreg", "gbt"] {
            let job = FitPredictJob {
                train_features: &train.features,
                train_labels: labels,
                test_features: &test.features,
                seed: 5,
                limits: &limits,
                debug: true,
                survival_grid: None,
            };
            let output = sandbox
                .fit_predict(&example_wasm(name), &job)
                .unwrap_or_else(|f| panic!("{name} on {:?}: {f}\n{}", labels.task(), f.debug_log));
            assert_eq!(
                output.predictions.len(),
                100 * labels.task().outputs_per_row()
            );
        }
    }
}

#[test]
fn analyze_runs_each_block_in_a_fresh_instance() {
    let sandbox = sandbox();
    let table = dataset(900, 3, 31).features;
    let blocks = medarena_sandbox::disjoint_blocks(&table, 3);
    let limits = Limits::default();
    let job = medarena_sandbox::AnalyzeJob {
        blocks: &blocks,
        output_len: 2,
        seed: 0,
        limits: &limits,
        debug: true,
    };
    let output = sandbox
        .analyze_blocks(&example_wasm("baseline"), &job)
        .expect("analysis");
    assert_eq!(output.blocks.len(), 3);
    for (block, values) in blocks.iter().zip(&output.blocks) {
        let x0 = block
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::Float64Array>()
            .unwrap();
        let present: Vec<f64> = x0.iter().flatten().collect();
        let mean = present.iter().sum::<f64>() / present.len() as f64;
        assert!(
            (values[0] - mean).abs() < 1e-9,
            "block mean {mean} vs {}",
            values[0]
        );
    }
}

#[test]
fn mismatched_test_columns_are_an_internal_error_naming_the_column() {
    let sandbox = sandbox();
    let train = dataset(50, 3, 1);
    let test = dataset(50, 4, 2);
    let labels = binary_labels(&train.score, 3);
    let limits = Limits::default();
    let job = FitPredictJob {
        train_features: &train.features,
        train_labels: &labels,
        test_features: &test.features,
        seed: 0,
        limits: &limits,
        debug: false,
        survival_grid: None,
    };
    let failure = sandbox
        .fit_predict(&example_wasm("baseline"), &job)
        .expect_err("columns differ");
    assert_eq!(failure.status, Status::Internal);
    assert!(failure.message.contains("columns"), "{failure}");
}

/// The Cox fixture's cases (`guest/examples/cox/fixtures/cox.json`), as sandbox inputs.
struct CoxCase {
    name: String,
    train: arrow_array::RecordBatch,
    test: arrow_array::RecordBatch,
    labels: Labels,
    risk: Vec<f64>,
    grid: Vec<f64>,
    /// scikit-survival's survival curve per test row, at `grid`.
    survival: Vec<Vec<f64>>,
}

fn cox_cases() -> Vec<CoxCase> {
    let path = workspace_root().join("guest/examples/cox/fixtures/cox.json");
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    let numbers = |value: &serde_json::Value| -> Vec<f64> {
        value
            .as_array()
            .expect("array")
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect()
    };
    let table = |columns: &serde_json::Value| -> arrow_array::RecordBatch {
        let arrays: Vec<(String, arrow_array::ArrayRef)> = columns
            .as_array()
            .expect("columns")
            .iter()
            .enumerate()
            .map(|(j, column)| {
                let array: arrow_array::ArrayRef =
                    Arc::new(arrow_array::Float64Array::from(numbers(column)));
                (format!("x{j}"), array)
            })
            .collect();
        arrow_array::RecordBatch::try_from_iter(arrays).expect("batch")
    };
    let cases = fixture["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 3);
    cases
        .iter()
        .map(|case| CoxCase {
            name: case["name"].as_str().expect("name").to_string(),
            train: table(&case["train"]),
            test: table(&case["test"]),
            labels: Labels::Survival {
                time: numbers(&case["time"]),
                event: case["event"]
                    .as_array()
                    .expect("events")
                    .iter()
                    .map(|e| e.as_bool().expect("bool"))
                    .collect(),
            },
            risk: numbers(&case["risk"]),
            grid: numbers(&case["grid"]),
            survival: case["survival"]
                .as_array()
                .expect("curves")
                .iter()
                .map(numbers)
                .collect(),
        })
        .collect()
}

/// The Cox example (Newton-Raphson, Breslow ties, a small ridge) agrees with scikit-survival's
/// `CoxPHSurvivalAnalysis(ties="breslow")` on the linear predictors of held-out rows, on
/// continuous times, many ties and heavy censoring (`guest/examples/cox/fixtures/`).
#[test]
fn cox_example_matches_scikit_survival() {
    let sandbox = sandbox();
    for case in cox_cases() {
        let name = &case.name;
        let output = run_cox(&sandbox, &case, None);
        let expected = &case.risk;
        assert_eq!(output.predictions.len(), expected.len(), "{name}");
        for (row, (got, want)) in output.predictions.iter().zip(expected).enumerate() {
            assert!(
                (got - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "{name}, row {row}: {got} against scikit-survival's {want}\n{}",
                output.debug_log
            );
        }
    }
}

/// With a survival grid (ABI version 2) the Cox example returns S0(t)^exp(x·β) from its
/// Breslow baseline, and agrees with scikit-survival's `predict_survival_function` at the
/// fixture's grid (three observed times, where the step convention matters, and one
/// between two) to 1e-6.
#[test]
fn cox_example_curves_match_scikit_survival() {
    let sandbox = sandbox();
    for case in cox_cases() {
        let name = &case.name;
        let output = run_cox(&sandbox, &case, Some(&case.grid));
        let g = case.grid.len();
        assert_eq!(output.predictions.len(), case.survival.len() * g, "{name}");
        for (row, (got, want)) in output.predictions.chunks(g).zip(&case.survival).enumerate() {
            for (j, (got, want)) in got.iter().zip(want).enumerate() {
                assert!(
                    (got - want).abs() <= 1e-6,
                    "{name}, row {row}, grid time {}: {got} against scikit-survival's {want}",
                    case.grid[j]
                );
            }
        }
    }
}

/// The Cox example fitted on a fixture case's training rows and predicting its test rows:
/// risk scores, or curves at `grid`.
fn run_cox(sandbox: &Sandbox, case: &CoxCase, grid: Option<&[f64]>) -> RunOutput {
    let limits = Limits::default();
    let job = FitPredictJob {
        train_features: &case.train,
        train_labels: &case.labels,
        test_features: &case.test,
        seed: 1,
        limits: &limits,
        debug: true,
        survival_grid: grid,
    };
    sandbox
        .fit_predict(&example_wasm("cox"), &job)
        .unwrap_or_else(|f| panic!("{}: {f}\n{}", case.name, f.debug_log))
}

/// The Kaplan-Meier estimate at `t` (right-continuous), written plainly: the product over
/// distinct event times s <= t of 1 - deaths(s) / at_risk(s).
fn kaplan_meier_at(time: &[f64], event: &[bool], t: f64) -> f64 {
    let mut times: Vec<f64> = time
        .iter()
        .zip(event)
        .filter(|(s, e)| **e && **s <= t)
        .map(|(s, _)| *s)
        .collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    times
        .iter()
        .map(|&s| {
            let deaths = time
                .iter()
                .zip(event)
                .filter(|(u, e)| **e && **u == s)
                .count();
            let at_risk = time.iter().filter(|u| **u >= s).count();
            1.0 - deaths as f64 / at_risk as f64
        })
        .product()
}

/// The baseline's survival path: the training Kaplan-Meier curve for every row when the
/// host sends a grid, and its constant risk score otherwise.
#[test]
fn baseline_predicts_the_training_kaplan_meier_curve_at_the_grid() {
    let sandbox = sandbox();
    let train = dataset(300, 3, 41);
    let test = dataset(40, 3, 42);
    // Integer times: many ties, censored and event rows sharing times.
    let time: Vec<f64> = train
        .score
        .iter()
        .map(|&s| (1.0 + (-s).exp() * 8.0).round())
        .collect();
    let event: Vec<bool> = (0..300).map(|i| i % 3 != 0).collect();
    let labels = Labels::Survival {
        time: time.clone(),
        event: event.clone(),
    };
    // Before the first event, exactly on observed times, between them, after the last.
    let grid = [0.5, 2.0, 3.5, 5.0, 1000.0];
    let limits = Limits::default();
    let job = FitPredictJob {
        train_features: &train.features,
        train_labels: &labels,
        test_features: &test.features,
        seed: 3,
        limits: &limits,
        debug: true,
        survival_grid: Some(&grid),
    };
    let module = example_wasm("baseline");
    let output = sandbox
        .fit_predict(&module, &job)
        .unwrap_or_else(|f| panic!("{f}\n{}", f.debug_log));
    let curve: Vec<f64> = grid
        .iter()
        .map(|&t| kaplan_meier_at(&time, &event, t))
        .collect();
    assert_eq!(curve[0], 1.0);
    assert!(curve[4] < curve[1] && curve[1] < 1.0, "{curve:?}");
    assert_eq!(output.predictions.len(), 40 * grid.len());
    for (row, got) in output.predictions.chunks(grid.len()).enumerate() {
        for (j, (got, want)) in got.iter().zip(&curve).enumerate() {
            assert!(
                (got - want).abs() <= 1e-12,
                "row {row}, grid time {}: {got} against Kaplan-Meier {want}",
                grid[j]
            );
        }
    }
    // Without a grid the same (version 2) module answers the risk job as before.
    let risk = sandbox
        .fit_predict(
            &module,
            &FitPredictJob {
                survival_grid: None,
                ..job
            },
        )
        .expect("risk scores");
    assert_eq!(risk.predictions, vec![0.0; 40]);
}

/// The risk-score examples are built for version 2 but make no curves: in a curves job they
/// fail with a reason (a trap, its text on dummy data) instead of a bare trap.
#[test]
fn risk_only_examples_refuse_a_curves_job_with_a_reason() {
    let sandbox = sandbox();
    let train = dataset(200, 3, 51);
    let test = dataset(20, 3, 52);
    let labels = Labels::Survival {
        time: (0..200).map(|i| 1.0 + (i % 17) as f64).collect(),
        event: (0..200).map(|i| i % 4 != 0).collect(),
    };
    let limits = Limits::default();
    for name in ["logreg", "gbt"] {
        let job = FitPredictJob {
            train_features: &train.features,
            train_labels: &labels,
            test_features: &test.features,
            seed: 1,
            limits: &limits,
            debug: true,
            survival_grid: Some(&[2.0, 5.0, 9.0]),
        };
        let failure = sandbox
            .fit_predict(&example_wasm(name), &job)
            .expect_err("no curves");
        assert_eq!(failure.status, Status::Trap, "{name}: {failure}");
        assert!(
            failure.debug_log.contains("not survival curves"),
            "{name}: {failure}\n{}",
            failure.debug_log
        );
    }
}
