//! What the `row`-level guarantee costs, and what it buys.
//!
//! 1. Compute: partitioned scoring (k blocks, each fitted and predicted in a fresh sandbox
//!    child) against one fit on the whole training part, for the example models on the
//!    synthetic heart data (`datasets_spec::example`) at 10,000 and 100,000 rows: wall time
//!    and the children's CPU time (`getrusage`).
//! 2. Utility: the exact public AUC each way (the block mean is what a `row`-level release
//!    noises; the one fit's is what a `label`-level one does).
//! 3. Noise: the 95% interval of a released AUC at 1k / 10k / 100k rows for ε = 0.2 and 1,
//!    at the `row` level (100 and 200 rows per block) and the `label` level.
//!
//! `cargo bench -p medarena-arena --bench partitioned [-- --rows=10000,100000 --blocks=10,100]`
//! (a plain binary, which is also its own sandbox child; it prints markdown tables).

mod common;

use std::time::{Duration, Instant};

use medarena_arena::bundle::TaskKind;
use medarena_arena::demo::{GBT_WASM, LOGREG_WASM};
use medarena_arena::pipeline::{DeclaredBounds, TaskSpec, evaluate, evaluate_sealed};
use medarena_arena::sandbox::Limits;
use medarena_arena::scorer::{ClampBounds, Metric, Range, block_mean, block_score, calibrate};
use medarena_datasets_spec::example::{HEART_MANIFEST, HEART_SITES, heart_site};
use medarena_datasets_spec::{Manifest, RecordBatch, SplitConfig, union_sites};

/// CPU seconds (user + system) of every child waited for so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn heart_table(manifest: &Manifest, rows: usize) -> RecordBatch {
    let parts: Vec<(String, RecordBatch)> = HEART_SITES
        .iter()
        .zip([rows * 11 / 20, rows - rows * 11 / 20])
        .map(|((site, prefix, _, seed), n)| {
            (
                site.to_string(),
                heart_site(manifest, site, prefix, n, *seed).0,
            )
        })
        .collect();
    union_sites(manifest, &parts).expect("the example sites unite")
}

fn main() {
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::sandbox_or_child(cache_dir.path());
    let manifest = Manifest::from_str(HEART_MANIFEST).expect("manifest");
    let spec = TaskSpec {
        task: TaskKind::BinaryClassification,
        target: "event_1y".to_owned(),
        metric: Metric::RocAuc,
        split: SplitConfig {
            seed: 20250301,
            train: 0.6,
            public_test: 0.2,
        },
        seed: 1,
        limits: Limits {
            deadline: Duration::from_secs(600),
            ..Limits::default()
        },
        scoring: Default::default(),
        organizer_metrics: Vec::new(),
        survival_grid: None,
    };
    let range = Range { min: 0.0, max: 1.0 };
    let clamp = ClampBounds::default();

    println!("## Partitioned scoring against one fit\n");
    println!(
        "| rows | model | blocks | rows per block | wall (s) | children's CPU (s) | exact public AUC |"
    );
    println!("|---|---|---|---|---|---|---|");
    for rows in common::list::<usize>("rows", "10000,100000") {
        let table = heart_table(&manifest, rows);
        for (name, module) in [("logreg", LOGREG_WASM), ("gbt", GBT_WASM)] {
            // Warm the artifact cache (compilation is the module's, not the data's).
            let _ = evaluate(&sandbox, module, &manifest, &table, &spec, false);
            let (cpu, started) = (children_cpu(), Instant::now());
            let one = evaluate(&sandbox, module, &manifest, &table, &spec, false).expect("one fit");
            let auc = one.public.score(Metric::RocAuc).unwrap_or(f64::NAN);
            println!(
                "| {rows} | {name} | 1 (one fit) | {rows} | {:.2} | {:.2} | {auc:.4} |",
                started.elapsed().as_secs_f64(),
                children_cpu() - cpu
            );
            for blocks in common::list::<usize>("blocks", "10,100") {
                if rows / blocks < 40 {
                    continue;
                }
                let (cpu, started) = (children_cpu(), Instant::now());
                let sealed = evaluate_sealed(
                    &sandbox,
                    module,
                    &manifest,
                    &table,
                    &spec,
                    blocks as u32,
                    &DeclaredBounds::default(),
                )
                .expect("sealed evaluation");
                let (wall, cpu) = (started.elapsed().as_secs_f64(), children_cpu() - cpu);
                let scores: Vec<Option<f64>> = sealed
                    .blocks
                    .iter()
                    .map(|b| {
                        block_score(
                            Metric::RocAuc,
                            &b.public.truth,
                            &b.public.predictions,
                            &b.public.context,
                            &clamp,
                        )
                        .unwrap_or(None)
                    })
                    .collect();
                let mean = block_mean(&scores, range).unwrap_or(f64::NAN);
                let failed = sealed.blocks.iter().filter(|b| b.failure.is_some()).count();
                println!(
                    "| {rows} | {name} | {blocks} | {} | {wall:.2} | {cpu:.2} | {mean:.4}{} |",
                    rows / blocks,
                    if failed > 0 {
                        format!(" ({failed} blocks failed)")
                    } else {
                        String::new()
                    }
                );
            }
        }
    }

    println!("\n## 95% noise interval of a released AUC (± half-width)\n");
    println!(
        "| rows | ε | row level, 200 rows per block | row level, 100 rows per block | label level (public part 20%, 25% events) |"
    );
    println!("|---|---|---|---|---|");
    for rows in [1_000usize, 10_000, 100_000] {
        for epsilon in [0.2, 1.0] {
            let row = |per_block: usize| {
                let k = (rows / per_block).max(2);
                calibrate(1.0 / k as f64, epsilon)
                    .map(|c| format!("±{:.3} (k = {k})", c.half_width_95))
                    .unwrap_or_default()
            };
            let minority = (rows as f64 * 0.2 * 0.25).floor();
            let label = calibrate(1.0 / minority, epsilon)
                .map(|c| format!("±{:.3} (m = {minority})", c.half_width_95))
                .unwrap_or_default();
            println!(
                "| {rows} | {epsilon} | {} | {} | {label} |",
                row(200),
                row(100)
            );
        }
    }
}
