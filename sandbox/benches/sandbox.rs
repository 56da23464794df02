//! Sandbox figures for BENCHMARKS.md (`## sandbox`). Run with
//! `cargo bench -p medarena-sandbox --bench sandbox [-- --only=1,3 --runs=N]` (release
//! profile). Prints a Markdown table per question; medians of several runs.
//!
//! The machine is shared, so wall-clock figures move with the load; every table also gives
//! CPU time (`getrusage` of this process and of the waited-for sandbox children, and the
//! thread CPU time of the native runs), which the load barely moves.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::*;
use medarena_guest::Model;
use medarena_sandbox::abi::encode_tables;
use medarena_sandbox::{
    FitPredictJob, Hardening, Interruption, Labels, Limits, RunOutput, Sandbox, SandboxConfig,
};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000)
}

/// User + system CPU time of this process (`RUSAGE_SELF`) or of its waited-for children
/// (`RUSAGE_CHILDREN`).
fn cpu(who: libc::c_int) -> Duration {
    // SAFETY: getrusage fills the struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut usage) };
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

/// A run with the CPU time it cost the parent and the child.
struct Measured {
    output: RunOutput,
    parent_cpu: Duration,
    child_cpu: Duration,
}

fn measured(sandbox: &Sandbox, module: &[u8], job: &FitPredictJob<'_>) -> Measured {
    let (parent, child) = (cpu(libc::RUSAGE_SELF), cpu(libc::RUSAGE_CHILDREN));
    let output = sandbox.fit_predict(module, job).unwrap();
    Measured {
        output,
        parent_cpu: cpu(libc::RUSAGE_SELF) - parent,
        child_cpu: cpu(libc::RUSAGE_CHILDREN) - child,
    }
}

/// Fit + predict natively on the very blocks the sandbox would receive: (wall, thread CPU).
fn native<M: Model>(
    train: &arrow_array::RecordBatch,
    labels: &Labels,
    test: &arrow_array::RecordBatch,
    seed: u64,
) -> (Duration, Duration) {
    let blocks = encode_tables(&[train, test]).unwrap();
    let label_block = labels.encode().unwrap();
    native_fit_predict::<M>(
        [&blocks[0], &label_block, &blocks[1]],
        seed,
        test.num_rows(),
    )
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

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

struct Bench {
    runs: usize,
    train: Dataset,
    test: Dataset,
    labels: Labels,
    limits: Limits,
}

impl Bench {
    fn job(&self) -> FitPredictJob<'_> {
        FitPredictJob {
            train_features: &self.train.features,
            train_labels: &self.labels,
            test_features: &self.test.features,
            seed: 7,
            limits: &self.limits,
            debug: false,
            survival_grid: None,
        }
    }

    /// (1) The reference models natively and in the sandbox, with and without NaN
    /// canonicalisation. Sandbox CPU is the child's CPU time minus that of a child running
    /// the baseline model (start-up, artifact load and data, which are question 2).
    fn models(&self) {
        println!(
            "### (1) Reference models: fit + predict, 10k train / 10k test rows, 23 columns (load {})\n",
            load_average()
        );
        println!(
            "| model | native wall (ms) | native CPU (ms) | sandbox guest wall (ms) | ratio | sandbox child CPU − baseline (ms) | CPU ratio | canonicalisation off: guest wall (ms) | ratio | CPU ratio |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        let on = sandbox_configured(Hardening::default(), true);
        let off = sandbox_configured(Hardening::default(), false);
        let baseline = example_wasm("baseline");
        let job = self.job();
        for name in ["logreg", "gbt"] {
            let module = example_wasm(name);
            for sandbox in [&on, &off] {
                let _warm = sandbox.fit_predict(&module, &job).unwrap();
                let _warm = sandbox.fit_predict(&baseline, &job).unwrap();
            }
            let mut samples: [Vec<Duration>; 5] = Default::default();
            let mut native_cpu = Vec::new();
            for _ in 0..self.runs {
                for (i, sandbox) in [&on, &off].into_iter().enumerate() {
                    let run = measured(sandbox, &module, &job);
                    let base = measured(sandbox, &baseline, &job);
                    samples[i * 2].push(run.output.timings.fit + run.output.timings.predict);
                    samples[i * 2 + 1].push(run.child_cpu.saturating_sub(base.child_cpu));
                }
                let (wall, cpu) = match name {
                    "logreg" => native::<medarena_example_logreg::LogReg>(
                        &self.train.features,
                        &self.labels,
                        &self.test.features,
                        7,
                    ),
                    _ => native::<medarena_example_gbt::Gbt>(
                        &self.train.features,
                        &self.labels,
                        &self.test.features,
                        7,
                    ),
                };
                samples[4].push(wall);
                native_cpu.push(cpu);
            }
            let [on_wall, on_cpu, off_wall, off_cpu, native_wall] = samples.map(median);
            let native_cpu = median(native_cpu);
            let ratio = |t: Duration, n: Duration| t.as_secs_f64() / n.as_secs_f64();
            println!(
                "| {name} | {} | {} | {} | {:.2}x | {} | **{:.2}x** | {} | {:.2}x | {:.2}x |",
                ms(native_wall),
                ms(native_cpu),
                ms(on_wall),
                ratio(on_wall, native_wall),
                ms(on_cpu),
                ratio(on_cpu, native_cpu),
                ms(off_wall),
                ratio(off_wall, native_wall),
                ratio(off_cpu, native_cpu),
            );
        }
    }

    /// (2) Per-submission overhead with a cached module: total minus guest compute.
    fn overhead(&self) {
        println!(
            "\n### (2) Per-submission overhead, cached module, 10k + 10k rows (baseline model: no compute; load {})\n",
            load_average()
        );
        println!(
            "| hardening | total (ms) | guest compute (ms) | overhead (ms) | of which: encode | startup (spawn + load artifact) | data into guest | parent CPU (ms) | child CPU (ms) |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        let module = example_wasm("baseline");
        let job = self.job();
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
            let sandbox = sandbox_configured(hardening, true);
            let _warm = sandbox.fit_predict(&module, &job).unwrap();
            let runs: Vec<Measured> = (0..self.runs * 2)
                .map(|_| measured(&sandbox, &module, &job))
                .collect();
            assert!(runs.iter().all(|r| r.output.cache_hit));
            let pick = |f: &dyn Fn(&Measured) -> Duration| median(runs.iter().map(f).collect());
            let timings = |f: fn(&medarena_sandbox::Timings) -> Duration| {
                pick(&move |r: &Measured| f(&r.output.timings))
            };
            println!(
                "| {label} | {} | {} | **{}** | {} | {} | {} | {} | {} |",
                ms(timings(|t| t.total)),
                ms(timings(|t| t.fit + t.predict)),
                ms(timings(|t| t.total - t.fit - t.predict)),
                ms(timings(|t| t.encode)),
                ms(timings(|t| t.startup)),
                ms(timings(|t| t.data_in)),
                ms(pick(&|r| r.parent_cpu)),
                ms(pick(&|r| r.child_cpu)),
            );
        }
    }

    /// (3) Data into the sandbox: a million rows each way with the baseline model.
    fn data(&self) {
        println!(
            "\n### (3) Data into the sandbox: 1,000,000 rows x 20 number columns (+3 other) for train and test (load {})\n",
            load_average()
        );
        let sandbox = sandbox_configured(Hardening::default(), true);
        let module = example_wasm("baseline");
        let big_train = dataset(1_000_000, 20, 5);
        let big_test = dataset(1_000_000, 20, 6);
        let big_labels = binary_labels(&big_train.score, 7);
        let blocks = encode_tables(&[&big_train.features, &big_test.features]).unwrap();
        let bytes = (blocks.iter().map(Vec::len).sum::<usize>()
            + big_labels.encode().unwrap().len()) as f64;
        drop(blocks);
        let job = FitPredictJob {
            train_features: &big_train.features,
            train_labels: &big_labels,
            test_features: &big_test.features,
            seed: 7,
            limits: &self.limits,
            debug: false,
            survival_grid: None,
        };
        let _warm = sandbox.fit_predict(&module, &job).unwrap();
        println!(
            "| tables' file | bytes | encode Arrow → ABI (parent, wall) | into guest memory (child, wall) | end to end (sum, wall) | whole run (wall) | parent CPU | child CPU | end to end (CPU) |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for (label, cold) in [
            ("fresh (first run of a sandbox)", true),
            ("reused (pooled)", false),
        ] {
            let runs: Vec<Measured> = (0..self.runs)
                .map(|_| {
                    if cold {
                        measured(&Sandbox::new(sandbox.config().clone()), &module, &job)
                    } else {
                        measured(&sandbox, &module, &job)
                    }
                })
                .collect();
            let pick = |f: &dyn Fn(&Measured) -> Duration| median(runs.iter().map(f).collect());
            let encode = pick(&|r| r.output.timings.encode);
            let data_in = pick(&|r| r.output.timings.data_in);
            let total = pick(&|r| r.output.timings.total);
            let (parent_cpu, child_cpu) = (pick(&|r| r.parent_cpu), pick(&|r| r.child_cpu));
            let gbps = |d: Duration| format!("{:.2} GB/s", bytes / d.as_secs_f64() / 1e9);
            println!(
                "| {label} | {:.0} MB | {} ms ({}) | {} ms ({}) | **{}** | {} ms | {} ms | {} ms | **{}** |",
                bytes / 1e6,
                ms(encode),
                gbps(encode),
                ms(data_in),
                gbps(data_in),
                gbps(encode + data_in),
                ms(total),
                ms(parent_cpu),
                ms(child_cpu),
                gbps(parent_cpu + child_cpu),
            );
        }
    }

    /// (4) Deadline-kill only vs epoch vs fuel on the real models.
    fn interruption(&self) {
        println!(
            "\n### (4) Interruption: guest fit + predict time (ms), 10k / 10k rows (load {})\n",
            load_average()
        );
        println!("| model | deadline kill only | epoch | fuel |");
        println!("|---|---|---|---|");
        let sandbox = sandbox_configured(Hardening::default(), true);
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
                let job = FitPredictJob {
                    limits: &limits,
                    ..self.job()
                };
                let _warm = sandbox.fit_predict(&module, &job).unwrap();
                let t = median(
                    (0..self.runs)
                        .map(|_| {
                            let o = sandbox.fit_predict(&module, &job).unwrap();
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
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(flag).map(str::to_string))
    };
    let only: Vec<String> = value("--only=")
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let wanted = |section: &str| only.is_empty() || only.iter().any(|s| s == section);
    let train = dataset(10_000, 20, 1);
    let test = dataset(10_000, 20, 2);
    let labels = binary_labels(&train.score, 3);
    let bench = Bench {
        runs: value("--runs=").map_or(5, |s| s.parse().expect("--runs=N")),
        train,
        test,
        labels,
        limits: Limits::default(),
    };
    if wanted("1") {
        bench.models();
    }
    if wanted("2") {
        bench.overhead();
    }
    if wanted("3") {
        bench.data();
    }
    if wanted("4") {
        bench.interruption();
    }
}
