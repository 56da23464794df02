//! Whether a model trained on DP synthetic data predicts real patients as well as one
//! trained on the real rows.
//!
//! The heart example model (`datasets_spec::example`) at 10,000 and 100,000 rows is split
//! as a competition splits it (`assign_rows`: 60% training, 40% hold-out). MST
//! (`medarena-synth`) is fitted on the real training rows only, at ε ∈ {1, 4} (δ = 1e-6,
//! ρ by `rho_for_epsilon`, substitution adjacency: the platform's setting), and as many
//! synthetic rows as the training part has are sampled. The example submissions (logreg,
//! gbt; `guest/prebuilt/`) are then trained in the sandbox once on the real training rows
//! and once on each synthetic table, and every fit predicts the same real hold-out: the
//! table gives the hold-out AUC of each and the gap to the real-data fit.
//!
//! `cargo bench -p medarena-arena --bench synth_utility [-- --rows=10000,100000 --eps=1,4 --reps=3]`
//! (a plain binary, which is also its own sandbox child; it prints a markdown table).

mod common;

use std::time::Duration;

use medarena_arena::demo::{GBT_WASM, LOGREG_WASM};
use medarena_arena::sandbox::{FitPredictJob, Labels, Limits, Sandbox};
use medarena_datasets_spec::example::{HEART_MANIFEST, HEART_SITES, auc, heart_site, labels};
use medarena_datasets_spec::{Manifest, Part, RecordBatch, SplitConfig, assign_rows};
use medarena_synth::{Adjacency, SynthConfig, fit, rho_for_epsilon, sample, site_table};

fn heart_table(manifest: &Manifest, rows: usize) -> RecordBatch {
    let example: usize = HEART_SITES.iter().map(|s| s.2).sum();
    let parts: Vec<(String, RecordBatch)> = HEART_SITES
        .iter()
        .map(|(site, prefix, n, seed)| {
            let n = rows * n / example;
            (
                site.to_string(),
                heart_site(manifest, site, prefix, n, *seed).0,
            )
        })
        .collect();
    site_table(manifest, &parts).expect("the example sites unite")
}

/// The manifest's feature columns, in its order (what the sandbox is given).
fn features(manifest: &Manifest, batch: &RecordBatch) -> RecordBatch {
    let schema = batch.schema();
    let indices: Vec<usize> = manifest
        .features()
        .iter()
        .map(|f| schema.index_of(&f.name).expect("feature column"))
        .collect();
    batch.project(&indices).expect("projection")
}

/// Trains `module` on `train` and returns its AUC on the real hold-out `test`.
fn holdout_auc(
    sandbox: &Sandbox,
    module: &[u8],
    manifest: &Manifest,
    train: &RecordBatch,
    test: &RecordBatch,
    limits: &Limits,
) -> f64 {
    let output = sandbox
        .fit_predict(
            module,
            &FitPredictJob {
                train_features: &features(manifest, train),
                train_labels: &Labels::Binary(labels(train)),
                test_features: &features(manifest, test),
                seed: 1,
                limits,
                debug: false,
                survival_grid: None,
            },
        )
        .expect("the example submission runs");
    auc(&output.predictions, &labels(test))
}

fn main() {
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::sandbox_or_child(cache_dir.path());
    let manifest = Manifest::from_str(HEART_MANIFEST).expect("manifest");
    let limits = Limits {
        deadline: Duration::from_secs(600),
        ..Limits::default()
    };
    let split = SplitConfig {
        seed: 20250301,
        train: 0.6,
        public_test: 0.2,
    };
    let delta = 1e-6;
    let reps: usize = common::list("reps", "3")
        .first()
        .copied()
        .unwrap_or(3)
        .max(1);
    let synth_config = SynthConfig {
        adjacency: Adjacency::Substitute,
        delta,
        ..SynthConfig::default()
    };

    println!("## Trained on synthetic rows, tested on the real hold-out\n");
    println!(
        "substitution adjacency, δ = {delta}; synthetic rows = real training rows; \
         mean (min–max) over {reps} synthetic releases\n"
    );
    println!(
        "| rows (train / hold-out) | model | real train AUC | ε | synthetic train AUC | gap |"
    );
    println!("|---|---|---|---|---|---|");
    for rows in common::list::<usize>("rows", "10000,100000") {
        let table = heart_table(&manifest, rows);
        let parts = assign_rows(&manifest, &table, &split, 1).expect("split");
        let train = parts.take(&table, Part::Train).expect("train");
        let public = parts.take(&table, Part::PublicTest).expect("public");
        let private = parts.take(&table, Part::PrivateTest).expect("private");
        let test = medarena_datasets_spec::arrow::compute::concat_batches(
            &public.schema(),
            [&public, &private],
        )
        .expect("hold-out");
        // The synthetic tables, shared by both models.
        let epsilons: Vec<f64> = common::list("eps", "1,4");
        let synthetic: Vec<Vec<RecordBatch>> = epsilons
            .iter()
            .map(|&epsilon| {
                let rho = rho_for_epsilon(epsilon, delta).expect("ρ");
                (0..reps)
                    .map(|rep| {
                        let release = fit(&manifest, &train, rho, &synth_config).expect("fit");
                        sample(&release, &manifest, train.num_rows(), rep as u64 + 1)
                            .expect("sample")
                    })
                    .collect()
            })
            .collect();
        for (name, module) in [("logreg", LOGREG_WASM), ("gbt", GBT_WASM)] {
            let real = holdout_auc(&sandbox, module, &manifest, &train, &test, &limits);
            for (epsilon, tables) in epsilons.iter().zip(&synthetic) {
                let aucs: Vec<f64> = tables
                    .iter()
                    .map(|s| holdout_auc(&sandbox, module, &manifest, s, &test, &limits))
                    .collect();
                let mean = aucs.iter().sum::<f64>() / aucs.len() as f64;
                let (lo, hi) = aucs
                    .iter()
                    .fold((f64::MAX, f64::MIN), |(l, h), a| (l.min(*a), h.max(*a)));
                println!(
                    "| {} / {} | {name} | {real:.4} | {epsilon} | {mean:.4} ({lo:.4}–{hi:.4}) | {:+.4} |",
                    train.num_rows(),
                    test.num_rows(),
                    mean - real
                );
            }
        }
    }
}
