//! End-to-end tests of `medarena run` through the built binary (which is also its own
//! sandbox child): the prebuilt example submissions on dummy data, on the example
//! hospitals' files with the example competition, and a module the pre-check refuses.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn medarena(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medarena"))
        .arg("run")
        .args(args)
        .output()
        .expect("run medarena")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The score printed on the `metric` line.
fn score(out: &str) -> f64 {
    out.lines()
        .find(|line| line.starts_with("metric"))
        .and_then(|line| line.split(": ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(f64::NAN)
}

#[test]
fn runs_an_example_on_dummy_data() {
    let manifest = workspace("datasets-spec/examples/heart/manifest.yaml");
    let module = workspace("guest/prebuilt/baseline.wasm");
    let output = medarena(&[
        Path::new("--submission"),
        &module,
        Path::new("--dataset"),
        &manifest,
        Path::new("--rows"),
        Path::new("300"),
    ]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("dummy data: 300 rows"), "{out}");
    assert!(out.contains("status   ok"), "{out}");
    assert!(out.contains("roc_auc"), "{out}");
    assert!(out.contains("fit ") && out.contains("predict "), "{out}");
    // The guest's debug output is shown on dummy data.
    assert!(out.contains("baseline: "), "{out}");
    assert!(
        (score(&out) - 0.5).abs() < 1e-9,
        "a constant predictor: {out}"
    );
}

#[test]
fn runs_an_example_on_local_data_as_the_competition_does() {
    let manifest = workspace("datasets-spec/examples/heart/manifest.yaml");
    let module = workspace("guest/prebuilt/gbt.wasm");
    let output = medarena(&[
        Path::new("--submission"),
        &module,
        Path::new("--dataset"),
        &manifest,
        Path::new("--competition"),
        &workspace("arena/examples/bundles/cardiac-event/competition.yaml"),
        Path::new("--blocks"),
        Path::new("5"),
        &workspace("datasets-spec/examples/heart/hospital-a.csv"),
        &workspace("datasets-spec/examples/heart/hospital-b.csv"),
    ]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("1080 rows from 2 file(s)"), "{out}");
    assert!(
        out.contains("seed 20250301"),
        "the competition's split seed: {out}"
    );
    assert!(score(&out) > 0.7, "gradient-boosted trees learn: {out}");
    // Then as the platform scores it at the row level: five blocks of about 216 rows.
    assert!(
        out.contains("blocks   5 blocks of about 216 rows: 5 ok"),
        "{out}"
    );
    let released = out
        .lines()
        .find(|line| line.starts_with("released roc_auc: public "))
        .and_then(|line| line.split("public ").nth(1))
        .and_then(|rest| rest.split(',').next())
        .and_then(|value| value.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    assert!(
        released > 0.6 && released < 0.95,
        "trees on a fifth of the rows still learn: {out}"
    );
}

#[test]
fn refuses_what_is_not_a_submission() {
    let dir = tempfile::tempdir().expect("tempdir");
    let module = dir.path().join("broken.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0garbage").expect("write");
    let output = medarena(&[
        Path::new("--submission"),
        &module,
        Path::new("--dataset"),
        &workspace("datasets-spec/examples/heart/manifest.yaml"),
    ]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("refused at pre-check"), "{out}");
}
