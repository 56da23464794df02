//! Shared by the integration tests: a sandbox on the crate's child binary, the example
//! submissions compiled to wasm once per test process, and small learnable datasets.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use arrow_array::builder::StringDictionaryBuilder;
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch};
use medarena_sandbox::{ArtifactCache, CacheKey, ChildCommand, Labels, Sandbox, SandboxConfig};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn child_command() -> ChildCommand {
    ChildCommand::new(env!("CARGO_BIN_EXE_medarena-sandbox-child"))
}

/// A sandbox with a fresh artifact cache of its own (its own directory as well as its own
/// key: tests run in parallel, and a shared directory would let one test's artifact replace
/// another's between two runs).
pub fn sandbox() -> Sandbox {
    static CACHE_DIRS: Mutex<Vec<tempfile::TempDir>> = Mutex::new(Vec::new());
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = SandboxConfig::new(child_command());
    config.cache = Some(
        ArtifactCache::new(dir.path(), CacheKey::random().expect("random key")).expect("cache"),
    );
    CACHE_DIRS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(dir);
    Sandbox::new(config)
}

/// The example submissions, built once per test process into `target/guest-wasm` (its own
/// target directory, so the outer cargo's lock is not in the way).
pub fn example_wasm(name: &str) -> Arc<Vec<u8>> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let target_dir = workspace_root().join("target").join("guest-wasm");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace_root())
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
                "--target-dir",
            ])
            .arg(&target_dir)
            .args([
                "-p",
                "medarena-example-baseline",
                "-p",
                "medarena-example-logreg",
                "-p",
                "medarena-example-gbt",
                "-p",
                "medarena-example-cox",
            ])
            .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
            .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
            // The flags a competitor should use (guest crate docs): one codegen unit and
            // link-time optimisation inline the SDK and `alloc` into the model's loops
            // (gbt ~10 % faster in the sandbox than with the release defaults).
            .env("CARGO_PROFILE_RELEASE_LTO", "fat")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
            // wasm32's SIMD is off by default in rustc; the sandbox supports it.
            .env(
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
                "-C target-feature=+simd128",
            )
            .status()
            .expect("run cargo to build the example submissions");
        assert!(status.success(), "building the example submissions failed");
        target_dir.join("wasm32-unknown-unknown").join("release")
    });
    Arc::new(
        std::fs::read(dir.join(format!("medarena_example_{name}.wasm"))).expect("example wasm"),
    )
}

/// A small generator so that datasets are the same on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f64 {
        // Box-Muller.
        let (u, v) = (self.next_f64().max(1e-300), self.next_f64());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// A learnable table: `n_numeric` numeric columns (5 % missing), a category, a boolean and
/// an integer column, plus a latent score with an interaction and a threshold effect that
/// linear models only partly capture.
pub struct Dataset {
    pub features: RecordBatch,
    pub score: Vec<f64>,
}

pub fn dataset(n: usize, n_numeric: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let mut columns: Vec<(String, ArrayRef)> = Vec::new();
    let mut numeric = vec![vec![0.0; n]; n_numeric];
    for (j, column) in numeric.iter_mut().enumerate() {
        for value in column.iter_mut() {
            *value = rng.normal();
        }
        let array: Float64Array = column
            .iter()
            .map(|&v| if rng.next_f64() < 0.05 { None } else { Some(v) })
            .collect();
        columns.push((format!("x{j}"), Arc::new(array)));
    }
    let sites = ["north", "south", "east", "west"];
    let site_codes: Vec<usize> = (0..n).map(|_| (rng.next_f64() * 4.0) as usize).collect();
    let mut site = StringDictionaryBuilder::<Int32Type>::new();
    for &code in &site_codes {
        site.append_value(sites[code]);
    }
    columns.push(("site".into(), Arc::new(site.finish())));
    let smoker: Vec<bool> = (0..n).map(|_| rng.next_f64() < 0.3).collect();
    columns.push((
        "smoker".into(),
        Arc::new(BooleanArray::from(smoker.clone())),
    ));
    let age: Vec<i64> = (0..n)
        .map(|_| 20 + (rng.next_f64() * 60.0) as i64)
        .collect();
    columns.push(("age".into(), Arc::new(Int64Array::from(age.clone()))));
    let score = (0..n)
        .map(|i| {
            let x = |j: usize| numeric.get(j).map_or(0.0, |c| c[i]);
            1.2 * x(0) - 0.8 * x(1)
                + 1.5 * x(2) * x(3)
                + if x(4) > 0.5 { 1.5 } else { -0.5 }
                + if smoker[i] { 0.7 } else { 0.0 }
                + 0.03 * (age[i] as f64 - 50.0)
                + [0.0, 0.4, -0.4, 0.2][site_codes[i]]
        })
        .collect();
    let features = RecordBatch::try_from_iter(columns).expect("record batch");
    Dataset { features, score }
}

pub fn binary_labels(score: &[f64], seed: u64) -> Labels {
    let mut rng = Rng::new(seed);
    Labels::Binary(
        score
            .iter()
            .map(|&s| rng.next_f64() < 1.0 / (1.0 + (-s).exp()))
            .collect(),
    )
}

pub fn auc(predictions: &[f64], truth: &[bool]) -> f64 {
    let mut pairs: Vec<(f64, bool)> = predictions
        .iter()
        .copied()
        .zip(truth.iter().copied())
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut positives) = (0.0, 0.0);
    for (rank, (_, positive)) in pairs.iter().enumerate() {
        if *positive {
            rank_sum += rank as f64 + 1.0;
            positives += 1.0;
        }
    }
    let negatives = pairs.len() as f64 - positives;
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// Thread CPU time (for benchmarks on a shared machine: the load barely moves it).
pub fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the struct.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Fit + predict natively for a binary task on the very ABI blocks (train, labels, test)
/// the sandbox would receive: the same model code, linked into the benchmark.
/// Returns (wall time, thread CPU time) of fit + predict.
pub fn native_fit_predict<M: medarena_guest::Model>(
    blocks: [&[u8]; 3],
    seed: u64,
    n_test: usize,
) -> (std::time::Duration, std::time::Duration) {
    use medarena_guest::{Context, Labels as GuestLabels, Table, TaskKind};
    // u64 storage gives the 8-byte alignment the ABI promises.
    let words: Vec<Vec<u64>> = blocks
        .iter()
        .map(|block| {
            let mut words = vec![0u64; block.len().div_ceil(8)];
            // SAFETY: the destination has at least block.len() bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    block.as_ptr(),
                    words.as_mut_ptr().cast::<u8>(),
                    block.len(),
                )
            };
            words
        })
        .collect();
    let view = |i: usize| -> &[u8] {
        // SAFETY: u64 storage viewed as bytes, within its length.
        unsafe { std::slice::from_raw_parts(words[i].as_ptr().cast::<u8>(), blocks[i].len()) }
    };
    let (started, started_cpu) = (std::time::Instant::now(), thread_cpu());
    let train = Table::from_block(view(0)).expect("train block");
    let label_table = Table::from_block(view(1)).expect("labels block");
    let labels = GuestLabels::from_table(TaskKind::Binary, &label_table).expect("labels");
    let ctx = Context {
        task: TaskKind::Binary,
        n_classes: 2,
        n_outputs: 0,
        seed,
        survival_grid: None,
    };
    let model = M::fit(&ctx, &train, &labels).expect("fit");
    let test = Table::from_block(view(2)).expect("test block");
    let mut out = vec![0.0; n_test];
    let ctx = Context {
        n_outputs: n_test,
        ..ctx
    };
    model.predict(&ctx, &test, &mut out).expect("predict");
    std::hint::black_box(&out);
    (started.elapsed(), thread_cpu() - started_cpu)
}
