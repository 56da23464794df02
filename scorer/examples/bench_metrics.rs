//! Times ROC AUC and Harrell's C-index on data written by `benches/compare_python.py`, so
//! that the Rust and Python figures come from the same rows in the same run. Prints one
//! JSON object per measurement on stdout.
//!
//! Usage: `bench_metrics DIR REPEATS` where DIR holds `labels.u8`, `scores.f64`,
//! `time.f64`, `event.u8`, `risk.f64` and optionally `small_*` versions (raw little-endian).

use std::path::Path;
use std::time::Instant;

use medarena_scorer::metrics::{harrell_c_index, roc_auc};

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

fn report(name: &str, rows: usize, (value, best, median): (f64, f64, f64)) {
    println!(
        "{{\"impl\": \"medarena\", \"metric\": \"{name}\", \"rows\": {rows}, \"value\": {value:.17}, \"best_s\": {best:.6}, \"median_s\": {median:.6}}}"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(
        args.get(1)
            .map(String::as_str)
            .unwrap_or("/tmp/scorer-bench"),
    );
    let repeats: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(5);
    for prefix in ["", "small_"] {
        let labels_path = dir.join(format!("{prefix}labels.u8"));
        if !labels_path.exists() {
            continue;
        }
        let labels = read_bool(&labels_path);
        let scores = read_f64(&dir.join(format!("{prefix}scores.f64")));
        let measured = time(repeats, || roc_auc(&labels, &scores).unwrap_or(f64::NAN));
        report("roc_auc", labels.len(), measured);

        let time_ = read_f64(&dir.join(format!("{prefix}time.f64")));
        let event = read_bool(&dir.join(format!("{prefix}event.u8")));
        let prediction = read_f64(&dir.join(format!("{prefix}prediction.f64")));
        let measured = time(repeats, || {
            harrell_c_index(&time_, &event, &prediction).unwrap_or(f64::NAN)
        });
        report("c_index", time_.len(), measured);
    }
}
