//! Times the scorer's metrics on data written by `benches/compare_python.py`, so that the
//! Rust and Python figures come from the same rows in the same run. Prints one JSON object
//! per measurement on stdout.
//!
//! Usage: `bench_metrics DIR REPEATS [FILTER]`. DIR holds (raw little-endian; `u8` = bool,
//! `f64`), each set optional:
//! - `labels.u8`, `scores.f64`, `time.f64`, `event.u8`, `prediction.f64` and `small_`
//!   versions of them: ROC AUC and Harrell's C called directly;
//! - `survival-N/`: `time.f64`, `event.u8`, `risk.f64`, `train_time.f64`,
//!   `train_event.u8`, `grid.f64` (m times), `curves.f64` (N × m, row-major),
//!   `horizons.f64` (td-AUC), `tau.f64` (Uno's C), `brier_horizon.f64` (Brier and ECE at a
//!   horizon): every survival metric through [`Metric::score_with`], the censoring
//!   distribution fitted to the training labels;
//! - `calibration-N/`: `labels.u8`, `probabilities.f64`: calibration slope, intercept and
//!   ECE through [`Metric::score`].
//!
//! FILTER, if given, keeps the measurements whose metric name contains it.

use std::path::Path;
use std::time::Instant;

use medarena_scorer::metrics::{
    Metric, Predictions, ScoreContext, SurvivalLabels, Truth, harrell_c_index, roc_auc,
};

fn read_f64(path: &Path) -> Vec<f64> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
        .collect()
}

fn read_bool(path: &Path) -> Vec<bool> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.into_iter().map(|b| b != 0).collect()
}

/// Runs `f` `repeats` times; returns (value, best seconds, median seconds).
fn time<F: Fn() -> f64>(repeats: usize, f: F) -> (f64, f64, f64) {
    let mut seconds = Vec::with_capacity(repeats);
    let mut value = f64::NAN;
    for _ in 0..repeats {
        let start = Instant::now();
        value = f();
        seconds.push(start.elapsed().as_secs_f64());
    }
    seconds.sort_by(f64::total_cmp);
    (value, seconds[0], seconds[seconds.len() / 2])
}

/// `set` names the data: `""` for the ROC AUC / C-index files at the top of DIR,
/// `survival` or `calibration` for the sized subdirectories.
fn report(set: &str, name: &str, rows: usize, (value, best, median): (f64, f64, f64)) {
    println!(
        "{{\"impl\": \"medarena\", \"set\": \"{set}\", \"metric\": \"{name}\", \"rows\": {rows}, \"value\": {value:.17}, \"best_s\": {best:.6}, \"median_s\": {median:.6}}}"
    );
}

/// The subdirectories `PREFIX-N` of `dir`, by N ascending.
fn sized_dirs(dir: &Path, prefix: &str) -> Vec<(usize, std::path::PathBuf)> {
    let mut found: Vec<(usize, std::path::PathBuf)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| {
                    let name = entry.file_name().into_string().ok()?;
                    let rows = name.strip_prefix(prefix)?.strip_prefix('-')?.parse().ok()?;
                    Some((rows, entry.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// What a run measures: the data set's name, the repetitions, the metric filter.
struct Runner<'a> {
    set: &'static str,
    repeats: usize,
    filter: &'a str,
}

impl Runner<'_> {
    /// Scores `metric` `repeats` times through the public entry point (every check
    /// included) and reports it under `label`.
    fn metric(
        &self,
        label: &str,
        metric: Metric,
        truth: &Truth,
        predictions: &Predictions,
        context: &ScoreContext,
    ) {
        if !label.contains(self.filter) {
            return;
        }
        let measured = time(self.repeats, || {
            metric
                .score_with(truth, predictions, context)
                .unwrap_or_else(|e| panic!("{label}: {e}"))
        });
        report(self.set, label, truth.len(), measured);
    }
}

fn survival(dir: &Path, run: &Runner<'_>) {
    let f = |name: &str| read_f64(&dir.join(name));
    let time_ = f("time.f64");
    let event = read_bool(&dir.join("event.u8"));
    let risk = Predictions::Scores(f("risk.f64"));
    let curves = Predictions::SurvivalCurves {
        times: f("grid.f64"),
        values: f("curves.f64"),
    };
    let grid = f("grid.f64");
    let training = Some(SurvivalLabels {
        time: f("train_time.f64"),
        event: read_bool(&dir.join("train_event.u8")),
    });
    let truth = Truth::Survival { time: time_, event };
    let context = |horizons: Vec<f64>, tau: Option<f64>| ScoreContext {
        horizons,
        tau,
        training: training.clone(),
    };
    let brier_horizon = f("brier_horizon.f64");
    let runs: [(&str, Metric, &Predictions, ScoreContext); 6] = [
        ("c_index", Metric::CIndex, &risk, context(vec![], None)),
        (
            "uno_c_index",
            Metric::UnoCIndex,
            &risk,
            context(vec![], Some(f("tau.f64")[0])),
        ),
        (
            "td_auc",
            Metric::TdAuc,
            &risk,
            context(f("horizons.f64"), None),
        ),
        (
            "brier_at_horizon",
            Metric::BrierAtHorizon,
            &curves,
            context(brier_horizon.clone(), None),
        ),
        (
            "integrated_brier",
            Metric::IntegratedBrier,
            &curves,
            context(grid, None),
        ),
        (
            "ece_at_horizon",
            Metric::EceAtHorizon,
            &curves,
            context(brier_horizon, None),
        ),
    ];
    for (label, metric, predictions, context) in &runs {
        run.metric(label, *metric, &truth, predictions, context);
    }
}

fn calibration(dir: &Path, run: &Runner<'_>) {
    let truth = Truth::Binary(read_bool(&dir.join("labels.u8")));
    let predictions = Predictions::Scores(read_f64(&dir.join("probabilities.f64")));
    let context = ScoreContext::default();
    for (label, metric) in [
        ("calibration_slope", Metric::CalibrationSlope),
        ("calibration_intercept", Metric::CalibrationIntercept),
        ("ece", Metric::Ece),
    ] {
        run.metric(label, metric, &truth, &predictions, &context);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(
        args.get(1)
            .map(String::as_str)
            .unwrap_or("/tmp/scorer-bench"),
    );
    let repeats: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(5);
    let filter = args.get(3).map(String::as_str).unwrap_or("");
    for prefix in ["", "small_"] {
        let labels_path = dir.join(format!("{prefix}labels.u8"));
        if !labels_path.exists() {
            continue;
        }
        let labels = read_bool(&labels_path);
        let scores = read_f64(&dir.join(format!("{prefix}scores.f64")));
        if "roc_auc".contains(filter) {
            let measured = time(repeats, || roc_auc(&labels, &scores).unwrap_or(f64::NAN));
            report("", "roc_auc", labels.len(), measured);
        }

        let time_ = read_f64(&dir.join(format!("{prefix}time.f64")));
        let event = read_bool(&dir.join(format!("{prefix}event.u8")));
        let prediction = read_f64(&dir.join(format!("{prefix}prediction.f64")));
        if "c_index".contains(filter) {
            let measured = time(repeats, || {
                harrell_c_index(&time_, &event, &prediction).unwrap_or(f64::NAN)
            });
            report("", "c_index", time_.len(), measured);
        }
    }
    for (_, path) in sized_dirs(dir, "survival") {
        let run = Runner {
            set: "survival",
            repeats,
            filter,
        };
        survival(&path, &run);
    }
    for (_, path) in sized_dirs(dir, "calibration") {
        let run = Runner {
            set: "calibration",
            repeats,
            filter,
        };
        calibration(&path, &run);
    }
}
