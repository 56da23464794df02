//! The C header and example: built with clang for wasm32 and run in the sandbox. Skipped
//! (with a note) when clang is not installed (`apt-get install clang lld`).

mod common;

use std::process::Command;

use common::*;
use medarena_sandbox::{FitPredictJob, Limits};

#[test]
fn c_example_builds_and_predicts_the_training_mean() {
    let root = workspace_root();
    let out = tempfile::tempdir().unwrap().keep().join("mean.wasm");
    let built = Command::new("clang")
        .args([
            "--target=wasm32-unknown-unknown",
            "-nostdlib",
            "-O2",
            "-Wl,--no-entry",
            "-o",
        ])
        .arg(&out)
        .arg(root.join("guest/examples/c/mean.c"))
        .status();
    match built {
        Err(_) => {
            eprintln!("skipped: clang is not installed");
            return;
        }
        Ok(status) => assert!(
            status.success(),
            "clang failed to build guest/examples/c/mean.c"
        ),
    }
    let module = std::fs::read(&out).unwrap();
    let train = dataset(200, 3, 1);
    let test = dataset(50, 3, 2);
    let labels = binary_labels(&train.score, 3);
    let medarena_sandbox::Labels::Binary(y) = &labels else {
        unreachable!()
    };
    let prevalence = y.iter().filter(|&&v| v).count() as f64 / y.len() as f64;
    let limits = Limits::default();
    let job = FitPredictJob {
        train_features: &train.features,
        train_labels: &labels,
        test_features: &test.features,
        seed: 0,
        limits: &limits,
        debug: true,
        survival_grid: None,
    };
    let output = sandbox()
        .fit_predict(&module, &job)
        .unwrap_or_else(|f| panic!("{f}"));
    assert!(
        output
            .predictions
            .iter()
            .all(|&p| (p - prevalence).abs() < 1e-12)
    );
    assert!(
        output.debug_log.contains("c mean: fitted"),
        "{}",
        output.debug_log
    );
}
