//! Investigation probe: runs an example submission's fit + predict in-process under a
//! configurable wasmtime `Config`, and the same model natively, measuring thread CPU time.
//! Also writes the compiled artifact so that its code can be disassembled.
//!
//! cargo bench -p medarena-sandbox --bench probe -- MODEL [flags...]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::*;
use medarena_guest::Model;
use medarena_sandbox::abi::{call, encode_tables};
use wasmtime::{Config, Engine, Instance, Module, OptLevel, Store};

fn native<M: Model>(blocks: &[Vec<u8>], n_test: usize) -> Duration {
    native_fit_predict::<M>([&blocks[0], &blocks[1], &blocks[2]], 7, n_test).1
}

fn sandboxed(engine: &Engine, module: &Module, blocks: &[Vec<u8>], n_test: usize) -> Duration {
    let mut store = Store::new(engine, ());
    let instance = Instance::new(&mut store, module, &[]).unwrap();
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    let alloc = instance
        .get_typed_func::<(u32, u32), u32>(&mut store, "medarena_alloc")
        .unwrap();
    let put = |store: &mut Store<()>, bytes: &[u8]| -> u32 {
        let ptr = alloc.call(&mut *store, (bytes.len() as u32, 8)).unwrap();
        memory.data_mut(&mut *store)[ptr as usize..ptr as usize + bytes.len()]
            .copy_from_slice(bytes);
        ptr
    };
    let record = |fields: &[(usize, u32)]| {
        let mut r = vec![0u8; call::BYTES];
        r[0..4].copy_from_slice(&1u32.to_le_bytes());
        r[call::SEED..call::SEED + 8].copy_from_slice(&7u64.to_le_bytes());
        for &(at, v) in fields {
            r[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        r
    };
    let train = put(&mut store, &blocks[0]);
    let labels = put(&mut store, &blocks[1]);
    let fit_rec = put(
        &mut store,
        &record(&[
            (call::TASK_KIND, 1),
            (call::N_CLASSES, 2),
            (call::FEATURES, train),
            (call::LABELS, labels),
        ]),
    );
    let test = put(&mut store, &blocks[2]);
    let pred_rec = put(
        &mut store,
        &record(&[
            (call::TASK_KIND, 1),
            (call::N_CLASSES, 2),
            (call::N_OUTPUTS, n_test as u32),
            (call::FEATURES, test),
        ]),
    );
    let fit = instance
        .get_typed_func::<u32, i32>(&mut store, "medarena_fit")
        .unwrap();
    let predict = instance
        .get_typed_func::<u32, i32>(&mut store, "medarena_predict")
        .unwrap();
    let started = thread_cpu();
    assert_eq!(fit.call(&mut store, fit_rec).unwrap(), 0);
    assert_eq!(predict.call(&mut store, pred_rec).unwrap(), 0);
    thread_cpu() - started
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().cloned().unwrap_or_else(|| "logreg".into());
    let has = |f: &str| args.iter().any(|a| a == f);
    let runs: usize = args
        .iter()
        .find_map(|a| a.strip_prefix("--runs="))
        .map_or(5, |s| s.parse().unwrap());
    if name == "dump" {
        let dir = args.get(1).cloned().unwrap_or_else(|| "/tmp/dump".into());
        std::fs::create_dir_all(&dir).unwrap();
        for (i, batches) in dump_cases().iter().enumerate() {
            let refs: Vec<&arrow_array::RecordBatch> = batches.iter().collect();
            match encode_tables(&refs) {
                Ok(blocks) => {
                    for (b, block) in blocks.iter().enumerate() {
                        std::fs::write(format!("{dir}/case{i}-{b}.bin"), block).unwrap();
                    }
                }
                Err(e) => std::fs::write(format!("{dir}/case{i}-err.txt"), e.to_string()).unwrap(),
            }
        }
        return;
    }
    if name == "encode" {
        let train = dataset(1_000_000, 20, 5);
        let test = dataset(1_000_000, 20, 6);
        for _ in 0..5 {
            let started = std::time::Instant::now();
            let cpu = thread_cpu();
            let blocks = encode_tables(&[&train.features, &test.features]).unwrap();
            let bytes: usize = blocks.iter().map(Vec::len).sum();
            println!(
                "encode {} MB: {:.1} ms wall, {:.1} ms cpu",
                bytes / 1_000_000,
                started.elapsed().as_secs_f64() * 1e3,
                (thread_cpu() - cpu).as_secs_f64() * 1e3
            );
        }
        return;
    }
    if name == "kernel" {
        println!(
            "| kernel | plain (ms) | Cranelift canonicalisation (ms) | ratio | wasm-level select (ms) | ratio | sandbox rewrite (ms) | ratio |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for kernel in ["chain", "acc4", "map"] {
            let time = |nan, select, rewrite| {
                let t: Vec<Duration> = (0..runs)
                    .map(|_| run_kernel(kernel, nan, select, rewrite))
                    .collect();
                median(t).as_secs_f64() * 1e3
            };
            let plain = time(false, false, false);
            let canon = time(true, false, false);
            let select = time(false, true, false);
            let rewrite = time(false, false, true);
            println!(
                "| {kernel} | {plain:.1} | {canon:.1} | {:.2}x | {select:.1} | {:.2}x | {rewrite:.1} | {:.2}x |",
                canon / plain,
                select / plain,
                rewrite / plain
            );
        }
        return;
    }
    let mut wasm = match args.iter().find_map(|a| a.strip_prefix("--wasm=")) {
        Some(path) => std::fs::read(path).unwrap(),
        None => example_wasm(&name).to_vec(),
    };
    // `--rewrite`: the sandbox's own canonicalisation (`medarena_sandbox::nan`) instead of
    // Cranelift's; implies `--no-nan` for Cranelift.
    let rewrite = has("--rewrite");
    if rewrite {
        wasm = medarena_sandbox::nan::canonicalize_observable_nans(&wasm).unwrap();
    }
    let mut config = Config::new();
    config
        .cranelift_opt_level(OptLevel::Speed)
        .cranelift_nan_canonicalization(!has("--no-nan") && !rewrite)
        .relaxed_simd_deterministic(true)
        .wasm_simd(true)
        .wasm_relaxed_simd(true)
        .wasm_tail_call(true)
        .memory_init_cow(false);
    if has("--no-spectre") {
        unsafe {
            config.cranelift_flag_set("enable_heap_access_spectre_mitigation", "false");
            config.cranelift_flag_set("enable_table_access_spectre_mitigation", "false");
        }
    }
    if has("--small-reservation") {
        config
            .memory_reservation(64 << 20)
            .memory_guard_size(64 << 10);
    }
    if has("--perfmap") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if has("--inline") {
        config.compiler_inlining(wasmtime::Inlining::Yes);
    }
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, &wasm).unwrap();
    if let Some(path) = args.iter().find_map(|a| a.strip_prefix("--dump=")) {
        std::fs::write(path, module.serialize().unwrap()).unwrap();
    }
    let rows: usize = args
        .iter()
        .find_map(|a| a.strip_prefix("--rows="))
        .map_or(10_000, |s| s.parse().unwrap());
    let train = dataset(rows, 20, 1);
    let test = dataset(rows, 20, 2);
    let labels = binary_labels(&train.score, 3);
    let mut blocks = encode_tables(&[&train.features, &test.features]).unwrap();
    blocks.insert(1, labels.encode().unwrap());
    let (mut s, mut n) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        if !has("--sandbox-only") {
            n.push(match name.as_str() {
                "logreg" => native::<medarena_example_logreg::LogReg>(&blocks, rows),
                _ => native::<medarena_example_gbt::Gbt>(&blocks, rows),
            });
        }
        if !has("--native-only") {
            s.push(sandboxed(&engine, &module, &blocks, rows));
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (s, n) = (
        (!s.is_empty()).then(|| median(s)),
        (!n.is_empty()).then(|| median(n)),
    );
    println!(
        "{name}: native cpu {:.1} ms, sandbox cpu {:.1} ms, ratio {:.2}",
        n.map_or(0.0, ms),
        s.map_or(0.0, ms),
        match (s, n) {
            (Some(s), Some(n)) => ms(s) / ms(n),
            _ => 0.0,
        }
    );
}

/// Float micro-kernels over two 500k-element f64 arrays, 200 passes:
/// `chain` is a dot product with one accumulator (every add waits for the previous one),
/// `acc4` the same with four accumulators, `map` an element-wise `c[i] += a[i] * b[i]`.
/// With `select`, every float result goes through a wasm-level `select` that replaces a
/// NaN by the canonical NaN (a candidate for a cheaper canonicalisation than Cranelift's).
pub fn kernel_wat(kernel: &str, select: bool) -> String {
    let c = |op: &str| {
        if select {
            format!(
                "{op} local.set $t f64.const nan local.get $t local.get $t local.get $t f64.ne select"
            )
        } else {
            op.to_string()
        }
    };
    let (mul, add) = (c("f64.mul"), c("f64.add"));
    let a = |k: u32| format!("(f64.load offset={} (local.get $p))", k * 8);
    let b = |k: u32| format!("(f64.load offset={} (local.get $p))", 4_000_000 + k * 8);
    let (step, body) = match kernel {
        "chain" => (
            1,
            format!("local.get $s0 {} {} {mul} {add} local.set $s0", a(0), b(0)),
        ),
        "acc4" => (
            4,
            (0..4)
                .map(|k| {
                    format!(
                        "local.get $s{k} {} {} {mul} {add} local.set $s{k}",
                        a(k),
                        b(k)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        _ => (
            1,
            format!(
                "(local.get $p) (f64.load offset=8000000 (local.get $p)) {} {} {mul} {add} f64.store offset=8000000",
                a(0),
                b(0)
            ),
        ),
    };
    format!(
        r#"(module (memory (export "memory") 200)
  (func (export "run") (param $n i32) (param $reps i32) (result f64)
    (local $p i32) (local $s0 f64) (local $s1 f64) (local $s2 f64) (local $s3 f64) (local $t f64)
    (loop $r
      (local.set $p (i32.const 0))
      (loop $l
        {body}
        (local.set $p (i32.add (local.get $p) (i32.const {bytes})))
        (br_if $l (i32.lt_u (local.get $p) (i32.shl (local.get $n) (i32.const 3)))))
      (local.set $reps (i32.sub (local.get $reps) (i32.const 1)))
      (br_if $r (local.get $reps)))
    (f64.add (f64.add (local.get $s0) (local.get $s1)) (f64.add (local.get $s2) (local.get $s3)))))"#,
        bytes = step * 8,
    )
}

pub fn run_kernel(kernel: &str, nan: bool, select: bool, rewrite: bool) -> Duration {
    let mut config = Config::new();
    config
        .cranelift_opt_level(OptLevel::Speed)
        .cranelift_nan_canonicalization(nan);
    let engine = Engine::new(&config).unwrap();
    let mut wasm = wat::parse_str(kernel_wat(kernel, select)).unwrap();
    if rewrite {
        wasm = medarena_sandbox::nan::canonicalize_observable_nans(&wasm).unwrap();
    }
    let module = Module::new(&engine, &wasm).unwrap();
    std::fs::write(
        format!("/tmp/kernel-{kernel}-{nan}-{select}-{rewrite}.cwasm"),
        module.serialize().unwrap(),
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    for (i, b) in memory.data_mut(&mut store)[..12_000_000]
        .chunks_mut(8)
        .enumerate()
    {
        b.copy_from_slice(&(1.0 + (i % 7) as f64 * 1e-3).to_le_bytes());
    }
    let run = instance
        .get_typed_func::<(u32, u32), f64>(&mut store, "run")
        .unwrap();
    let started = thread_cpu();
    std::hint::black_box(run.call(&mut store, (500_000, 200)).unwrap());
    thread_cpu() - started
}

fn dump_cases() -> Vec<Vec<arrow_array::RecordBatch>> {
    use arrow_array::*;
    use std::sync::Arc;
    let train = dataset(1000, 5, 1).features;
    let test = dataset(777, 5, 2).features;
    let mut rng = Rng::new(9);
    let n = 300;
    let mut opt = |p: f64| rng.next_f64() >= p;
    let f64s: Float64Array = (0..n)
        .map(|i| opt(0.1).then_some(i as f64 * 0.5 - 3.0))
        .collect();
    let f32s: Float32Array = (0..n)
        .map(|i| opt(0.2).then_some(i as f32 * 0.25))
        .collect();
    let i32s: Int32Array = (0..n).map(|i| opt(0.3).then_some(i as i32 - 100)).collect();
    let u8s: UInt8Array = (0..n)
        .map(|i| opt(0.0).then_some((i % 256) as u8))
        .collect();
    let u64s: UInt64Array = (0..n)
        .map(|i| opt(0.5).then_some(i as u64 * 1_000_000_007))
        .collect();
    let dates: Date32Array = (0..n).map(|i| opt(0.1).then_some(i as i32 * 3)).collect();
    let ts: TimestampMillisecondArray = (0..n)
        .map(|i| opt(0.1).then_some(i as i64 * 86_400_123))
        .collect();
    let bools: BooleanArray = (0..n).map(|i| opt(0.15).then_some(i % 3 == 0)).collect();
    let strs: StringArray = (0..n)
        .map(|i| opt(0.1).then(|| ["x", "yy", "zzz", "wwww"][i % 4]))
        .collect();
    let large: LargeStringArray = (0..n)
        .map(|i| opt(0.1).then(|| ["p", "q"][i % 2]))
        .collect();
    let columns: Vec<(&str, Arc<dyn Array>)> = vec![
        ("f64", Arc::new(f64s)),
        ("a_long_column_name_f32", Arc::new(f32s)),
        ("i32", Arc::new(i32s)),
        ("u8", Arc::new(u8s)),
        ("u64", Arc::new(u64s)),
        ("d", Arc::new(dates)),
        ("ts", Arc::new(ts)),
        ("b", Arc::new(bools)),
        ("s", Arc::new(strs)),
        ("ls", Arc::new(large)),
    ];
    let mixed = RecordBatch::try_from_iter(columns).unwrap();
    vec![
        vec![train.clone(), test.clone()],
        vec![mixed.clone()],
        vec![
            mixed.slice(3, 100),
            mixed.slice(103, 197),
            mixed.slice(0, 0),
        ],
        vec![train.slice(13, 500), test.slice(1, 64), test.slice(65, 65)],
        vec![train.clone(), mixed.clone()],
    ]
}
