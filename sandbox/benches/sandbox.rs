//! Sandbox figures for BENCHMARKS.md (`## sandbox`). Run with
//! `cargo bench -p medarena-sandbox --bench sandbox` (release profile). Prints a Markdown
//! table per question; medians of several runs. The machine is shared: expect noise.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use medarena_guest::{Context, Labels as GuestLabels, Model, Table, TaskKind};
use medarena_sandbox::abi::encode_tables;
use medarena_sandbox::{
    FitPredictJob, Hardening, Interruption, Labels, Limits, Sandbox, SandboxConfig,
};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// Fit + predict natively on the very blocks the sandbox would receive.
fn native<M: Model>(
    train: &arrow_array::RecordBatch,
    labels: &Labels,
    test: &arrow_array::RecordBatch,
    seed: u64,
) -> Duration {
    let blocks = encode_tables(&[train, test]).unwrap();
    let label_block = labels.encode().unwrap();
    let hold = |block: &[u8]| {
        let mut words = vec![0u64; block.len().div_ceil(8)];
        // SAFETY: enough room; u64 storage gives the 8-byte alignment the ABI promises.
        unsafe {
            std::ptr::copy_nonoverlapping(
                block.as_ptr(),
                words.as_mut_ptr().cast::<u8>(),
                block.len(),
            )
        };
        words
    };
    let (train_words, label_words, test_words) =
        (hold(&blocks[0]), hold(&label_block), hold(&blocks[1]));
    let view = |words: &[u64], len: usize| -> &[u8] {
        // SAFETY: u64 storage viewed as bytes.
        unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), len) }
    };
    let started = Instant::now();
    let train_table = Table::from_block(view(&train_words, blocks[0].len())).unwrap();
    let label_table = Table::from_block(view(&label_words, label_block.len())).unwrap();
    let guest_labels = GuestLabels::from_table(TaskKind::Binary, &label_table).unwrap();
    let fit_ctx = Context {
        task: TaskKind::Binary,
        n_classes: 2,
        n_outputs: 0,
        seed,
    };
    let model = M::fit(&fit_ctx, &train_table, &guest_labels).unwrap();
    let test_table = Table::from_block(view(&test_words, blocks[1].len())).unwrap();
    let mut out = vec![0.0; test.num_rows()];
    let predict_ctx = Context {
        n_outputs: out.len(),
        ..fit_ctx
    };
    model.predict(&predict_ctx, &test_table, &mut out).unwrap();
    std::hint::black_box(&out);
    started.elapsed()
}

fn sandbox_with(hardening: Hardening) -> Sandbox {
    sandbox_configured(hardening, true)
}

fn sandbox_configured(hardening: Hardening, canonicalize_nans: bool) -> Sandbox {
    let mut config = SandboxConfig::new(child_command());
    let dir = std::env::temp_dir().join(format!("medarena-bench-cache-{}", std::process::id()));
    config.cache = Some(
        medarena_sandbox::ArtifactCache::new(dir, medarena_sandbox::CacheKey::random().unwrap())
            .unwrap(),
    );
    config.hardening = hardening;
    config.canonicalize_nans = canonicalize_nans;
    Sandbox::new(config)
}

fn main() {
    let runs = 5;
    let sandbox = sandbox_with(Hardening::default());
    let limits = Limits::default();
    let default_limits = Limits::default();
    let train = dataset(10_000, 20, 1);
    let test = dataset(10_000, 20, 2);
    let labels = binary_labels(&train.score, 3);
    let job = |limits| FitPredictJob {
        train_features: &train.features,
        train_labels: &labels,
        test_features: &test.features,
        seed: 7,
        limits,
        debug: false,
    };

    println!("### (1) Reference models: fit + predict, 10k train / 10k test rows, 23 columns\n");
    println!(
        "| model | native (ms) | sandbox guest time (ms) | ratio | sandbox wall incl. overhead (ms) | guest time without NaN canonicalisation (ms) | ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    let fast = sandbox_configured(Hardening::default(), false);
    for name in ["logreg", "gbt"] {
        let module = example_wasm(name);
        let _warm = sandbox.fit_predict(&module, &job(&limits)).unwrap();
        let _warm = fast.fit_predict(&module, &job(&limits)).unwrap();
        let (mut guest, mut wall, mut native_times, mut fast_times) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let output = fast.fit_predict(&module, &job(&limits)).unwrap();
            fast_times.push(output.timings.fit + output.timings.predict);
            let output = sandbox.fit_predict(&module, &job(&limits)).unwrap();
            guest.push(output.timings.fit + output.timings.predict);
            wall.push(output.timings.total);
            native_times.push(match name {
                "logreg" => native::<medarena_example_logreg::LogReg>(
                    &train.features,
                    &labels,
                    &test.features,
                    7,
                ),
                _ => {
                    native::<medarena_example_gbt::Gbt>(&train.features, &labels, &test.features, 7)
                }
            });
        }
        let (g, n, w, f) = (
            median(guest),
            median(native_times),
            median(wall),
            median(fast_times),
        );
        let ratio = |t: Duration| t.as_secs_f64() / n.as_secs_f64();
        println!(
            "| {name} | {} | {} | {:.2}x | {} | {} | {:.2}x |",
            ms(n),
            ms(g),
            ratio(g),
            ms(w),
            ms(f),
            ratio(f)
        );
    }

    if std::env::args().any(|a| a == "--models-only") {
        return;
    }
    println!(
        "\n### (2) Per-submission overhead, cached module, 10k + 10k rows (baseline model: no compute)\n"
    );
    println!(
        "| hardening | total (ms) | guest compute (ms) | overhead (ms) | of which: encode | startup (spawn + load artifact) | data into guest |"
    );
    println!("|---|---|---|---|---|---|---|");
    let module = example_wasm("baseline");
    for (label, hardening) in [
        ("all on (default)", Hardening::default()),
        (
            "no network namespace",
            Hardening {
                network_namespace: false,
                ..Hardening::default()
            },
        ),
        (
            "none",
            Hardening {
                rlimits: false,
                seccomp: false,
                network_namespace: false,
            },
        ),
    ] {
        let sandbox = sandbox_with(hardening);
        let _warm = sandbox.fit_predict(&module, &job(&limits)).unwrap();
        let outputs: Vec<_> = (0..runs * 2)
            .map(|_| sandbox.fit_predict(&module, &job(&limits)).unwrap())
            .collect();
        assert!(outputs.iter().all(|o| o.cache_hit));
        let pick = |f: &dyn Fn(&medarena_sandbox::RunOutput) -> Duration| {
            median(outputs.iter().map(f).collect())
        };
        let total = pick(&|o| o.timings.total);
        let compute = pick(&|o| o.timings.fit + o.timings.predict);
        let overhead = pick(&|o| o.timings.total - o.timings.fit - o.timings.predict);
        println!(
            "| {label} | {} | {} | **{}** | {} | {} | {} |",
            ms(total),
            ms(compute),
            ms(overhead),
            ms(pick(&|o| o.timings.encode)),
            ms(pick(&|o| o.timings.startup)),
            ms(pick(&|o| o.timings.data_in))
        );
    }

    println!(
        "\n### (3) Data into the sandbox: 1,000,000 rows x 20 number columns (+3 other) for train and test\n"
    );
    let big_train = dataset(1_000_000, 20, 5);
    let big_test = dataset(1_000_000, 20, 6);
    let big_labels = binary_labels(&big_train.score, 7);
    let blocks = encode_tables(&[&big_train.features, &big_test.features]).unwrap();
    let bytes =
        (blocks.iter().map(Vec::len).sum::<usize>() + big_labels.encode().unwrap().len()) as f64;
    drop(blocks);
    let big_job = FitPredictJob {
        train_features: &big_train.features,
        train_labels: &big_labels,
        test_features: &big_test.features,
        seed: 7,
        limits: &limits,
        debug: false,
    };
    let outputs: Vec<_> = (0..3)
        .map(|_| sandbox.fit_predict(&module, &big_job).unwrap())
        .collect();
    let encode = median(outputs.iter().map(|o| o.timings.encode).collect());
    let data_in = median(outputs.iter().map(|o| o.timings.data_in).collect());
    let gbps = |d: Duration| bytes / d.as_secs_f64() / 1e9;
    println!(
        "| bytes | encode Arrow -> ABI (parent) | pipe -> guest memory (child) | end to end |"
    );
    println!("|---|---|---|---|");
    println!(
        "| {:.0} MB | {} ms ({:.2} GB/s) | {} ms ({:.2} GB/s) | **{:.2} GB/s** |",
        bytes / 1e6,
        ms(encode),
        gbps(encode),
        ms(data_in),
        gbps(data_in),
        gbps(encode + data_in)
    );

    println!("\n### (4) Interruption: guest fit + predict time (ms), 10k / 10k rows\n");
    println!("| model | deadline kill only | epoch | fuel |");
    println!("|---|---|---|---|");
    for name in ["logreg", "gbt"] {
        let module = example_wasm(name);
        let mut cells = Vec::new();
        let mut base = 0.0;
        for interruption in [
            Interruption::DeadlineKill,
            Interruption::Epoch,
            Interruption::Fuel(u64::MAX / 4),
        ] {
            let limits = Limits {
                interruption,
                ..Limits::default()
            };
            let _warm = sandbox
                .fit_predict(
                    &module,
                    &FitPredictJob {
                        limits: &limits,
                        ..job(&default_limits)
                    },
                )
                .unwrap();
            let t = median(
                (0..runs)
                    .map(|_| {
                        let o = sandbox
                            .fit_predict(
                                &module,
                                &FitPredictJob {
                                    limits: &limits,
                                    ..job(&default_limits)
                                },
                            )
                            .unwrap();
                        o.timings.fit + o.timings.predict
                    })
                    .collect(),
            );
            if base == 0.0 {
                base = t.as_secs_f64();
            }
            cells.push(format!("{} ({:.2}x)", ms(t), t.as_secs_f64() / base));
        }
        println!("| {name} | {} |", cells.join(" | "));
    }
}
