//! The example submissions end to end through the real child process.

mod common;

use common::*;
use medarena_sandbox::{FitPredictJob, Labels, Limits, Status};

#[test]
fn examples_spread_on_a_learnable_binary_task() {
    let sandbox = sandbox();
    let train = dataset(2000, 6, 1);
    let test = dataset(1000, 6, 2);
    let labels = binary_labels(&train.score, 3);
    let Labels::Binary(truth) = binary_labels(&test.score, 4) else { unreachable!() };
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
        };
        let output = sandbox.fit_predict(&example_wasm(name), &job).unwrap_or_else(|f| panic!("{name}: {f}"));
        assert_eq!(output.predictions.len(), 1000);
        assert!(output.debug_log.contains(name), "{name} debug log: {:?}", output.debug_log);
        aucs.push(auc(&output.predictions, &truth));
    }
    eprintln!("AUC baseline / logreg / gbt: {aucs:?}");
    assert!((aucs[0] - 0.5).abs() < 0.05, "baseline is constant: {aucs:?}");
    assert!(aucs[1] > aucs[0] + 0.15, "logreg learns: {aucs:?}");
    assert!(aucs[2] > aucs[1] + 0.01, "gbt beats logreg: {aucs:?}");
    let _ = Status::Trap;
}
