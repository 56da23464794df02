//! The hostile corpus: each module expects one precise status, and the host must stay
//! intact (every test runs in the same test process, which keeps using the same sandbox).

mod common;

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Float64Array, RecordBatch};
use common::*;
use medarena_sandbox::{
    AnalyzeJob, FitPredictJob, Interruption, Labels, Limits, Phase, Refusal, RunFailure, RunOutput,
    Status, precheck,
};

/// A minimal valid submission in WAT, with hooks to make it hostile. `$alloc` is a bump
/// allocator that grows memory; `$predict_with` writes `n` copies of `value` at a fresh
/// buffer and reports (`ptr`, `n`).
struct Wat {
    imports: &'static str,
    memory: &'static str,
    abi_version: &'static str,
    alloc_body: &'static str,
    fit_body: &'static str,
    predict_body: &'static str,
    extra: &'static str,
}

const GOOD_PREDICT: &str =
    "(call $answer (local.get $call) (f64.const 0.5) (i32.load offset=12 (local.get $call)))";

impl Default for Wat {
    fn default() -> Self {
        Wat {
            imports: "",
            memory: r#"(memory (export "memory") 2)"#,
            abi_version: "(i32.const 1)",
            alloc_body: "(call $bump (local.get $size))",
            fit_body: "(i32.const 0)",
            predict_body: GOOD_PREDICT,
            extra: "",
        }
    }
}

impl Wat {
    fn text(&self) -> String {
        format!(
            r#"(module
  {imports}
  {memory}
  (global $heap (mut i32) (i32.const 4096))
  (func (export "medarena_abi_version") (result i32) {abi_version})
  (func $bump (param $size i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
    (block $ok
      (loop $grow
        (br_if $ok (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then (return (i32.const 0))))
        (br $grow)))
    (local.get $ptr))
  (func $alloc (export "medarena_alloc") (param $size i32) (param $align i32) (result i32) {alloc_body})
  (func $answer (param $call i32) (param $value f64) (param $n i32) (result i32)
    (local $ptr i32) (local $i i32)
    (local.set $ptr (call $bump (i32.shl (local.get $n) (i32.const 3))))
    (block $done
      (loop $fill
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (f64.store (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 3))) (local.get $value))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $fill)))
    (i32.store offset=32 (local.get $call) (local.get $ptr))
    (i32.store offset=36 (local.get $call) (local.get $n))
    (i32.const 0))
  (func (export "medarena_fit") (param $call i32) (result i32) {fit_body})
  (func (export "medarena_predict") (param $call i32) (result i32) {predict_body})
  {extra}
)"#,
            imports = self.imports,
            memory = self.memory,
            abi_version = self.abi_version,
            alloc_body = self.alloc_body,
            fit_body = self.fit_body,
            predict_body = self.predict_body,
            extra = self.extra,
        )
    }

    fn wasm(&self) -> Vec<u8> {
        wat::parse_str(self.text())
            .unwrap_or_else(|e| panic!("test module does not parse: {e}\n{}", self.text()))
    }
}

fn wasm(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap_or_else(|e| panic!("test module does not parse: {e}"))
}

fn quick_limits() -> Limits {
    Limits {
        deadline: Duration::from_millis(1500),
        compile_timeout: Duration::from_secs(20),
        max_memory_bytes: 64 << 20,
        ..Limits::default()
    }
}

fn small_table(n: usize) -> RecordBatch {
    let values: Float64Array = (0..n).map(|i| Some(i as f64)).collect();
    RecordBatch::try_from_iter([("x", Arc::new(values) as _)]).unwrap()
}

fn run_with(
    module: &[u8],
    limits: &Limits,
    debug: bool,
    n: usize,
) -> Result<RunOutput, RunFailure> {
    run_in(&sandbox(), module, limits, debug, n)
}

fn run_in(
    sandbox: &medarena_sandbox::Sandbox,
    module: &[u8],
    limits: &Limits,
    debug: bool,
    n: usize,
) -> Result<RunOutput, RunFailure> {
    let train = small_table(n);
    let test = small_table(n);
    let labels = Labels::Binary((0..n).map(|i| i % 2 == 0).collect());
    let job = FitPredictJob {
        train_features: &train,
        train_labels: &labels,
        test_features: &test,
        seed: 1,
        limits,
        debug,
        survival_grid: None,
    };
    sandbox.fit_predict(module, &job)
}

/// Runs on dummy data (debug on) and expects a failure with this status and phase.
fn expect(module: &[u8], limits: &Limits, status: Status, phase: Phase) -> RunFailure {
    match run_with(module, limits, true, 50) {
        Ok(_) => panic!("expected {status} during {phase}, but the run succeeded"),
        Err(failure) => {
            assert_eq!(
                (failure.status, failure.phase),
                (status, phase),
                "unexpected failure: {failure}"
            );
            failure
        }
    }
}

fn refusal(module: &[u8], limits: &Limits) -> Refusal {
    let refusal = precheck(module, limits).expect_err("the pre-check should refuse this module");
    // The host refuses it the same way, before spawning anything.
    let failure = expect(module, limits, Status::Refused, Phase::Precheck);
    assert_eq!(failure.message, refusal.to_string());
    refusal
}

#[test]
fn a_good_module_runs_and_the_host_stays_intact() {
    let output = run_with(&Wat::default().wasm(), &quick_limits(), true, 50).expect("good module");
    assert_eq!(output.predictions, vec![0.5; 50]);
}

// ---- refused at pre-check -------------------------------------------------------------

#[test]
fn function_import_is_refused_by_name() {
    let module = Wat {
        imports: r#"(import "env" "clock" (func))"#,
        ..Wat::default()
    }
    .wasm();
    let refusal = refusal(&module, &quick_limits());
    assert!(refusal.to_string().contains("`env`.`clock`"), "{refusal}");
}

#[test]
fn wasi_import_is_refused_by_name() {
    let module = Wat {
        imports: r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
        ..Wat::default()
    }
    .wasm();
    assert!(
        refusal(&module, &quick_limits())
            .to_string()
            .contains("wasi_snapshot_preview1")
    );
}

#[test]
fn imported_memory_is_refused() {
    let module = Wat {
        imports: r#"(import "env" "memory" (memory 1))"#,
        memory: r#"(export "memory" (memory 0))"#,
        ..Wat::default()
    }
    .wasm();
    assert!(matches!(
        refusal(&module, &quick_limits()),
        Refusal::Import { .. }
    ));
}

#[test]
fn missing_memory_export_is_refused() {
    let module = Wat {
        memory: "(memory 2)",
        ..Wat::default()
    }
    .wasm();
    assert_eq!(
        refusal(&module, &quick_limits()),
        Refusal::MissingExport("memory")
    );
}

#[test]
fn missing_allocator_is_refused() {
    let text = Wat::default()
        .text()
        .replace(r#"(export "medarena_alloc")"#, "");
    assert_eq!(
        refusal(&wasm(&text), &quick_limits()),
        Refusal::MissingExport("medarena_alloc")
    );
}

#[test]
fn predict_without_fit_is_refused() {
    let text = Wat::default()
        .text()
        .replace(r#"(export "medarena_fit")"#, "");
    assert_eq!(
        refusal(&wasm(&text), &quick_limits()),
        Refusal::MissingExport("medarena_fit")
    );
}

#[test]
fn entry_point_with_wrong_signature_is_refused() {
    let text = Wat::default().text().replace(
        r#"(func (export "medarena_fit") (param $call i32) (result i32) (i32.const 0))"#,
        r#"(func (export "medarena_fit") (param $call i64) (result i32) (i32.const 0))"#,
    );
    assert!(matches!(
        refusal(&wasm(&text), &quick_limits()),
        Refusal::WrongExportType { .. }
    ));
}

#[test]
fn garbage_bytes_are_refused() {
    assert!(matches!(
        refusal(b"\0asm\x01\0\0\0garbage", &quick_limits()),
        Refusal::Invalid(_)
    ));
    assert!(matches!(
        refusal(b"#!/bin/sh\nrm -rf /", &quick_limits()),
        Refusal::Invalid(_)
    ));
}

#[test]
fn oversized_module_is_refused() {
    let limits = Limits {
        max_module_bytes: 100,
        ..quick_limits()
    };
    assert!(matches!(
        refusal(&Wat::default().wasm(), &limits),
        Refusal::TooLarge { .. }
    ));
}

#[test]
fn declared_huge_memory_minimum_is_refused() {
    let module = Wat {
        memory: r#"(memory (export "memory") 65536)"#,
        ..Wat::default()
    }
    .wasm();
    assert!(matches!(
        refusal(&module, &quick_limits()),
        Refusal::DeclaredTooLarge { .. }
    ));
}

#[test]
fn declared_huge_table_minimum_is_refused() {
    let module = Wat {
        extra: "(table 10000000 funcref)",
        ..Wat::default()
    }
    .wasm();
    assert!(matches!(
        refusal(&module, &quick_limits()),
        Refusal::DeclaredTooLarge { .. }
    ));
}

#[test]
fn shared_memory_and_atomics_are_refused() {
    let module = Wat {
        memory: r#"(memory (export "memory") 2 16 shared)"#,
        ..Wat::default()
    }
    .wasm();
    assert!(matches!(
        refusal(&module, &quick_limits()),
        Refusal::Invalid(_)
    ));
}

#[test]
fn memory64_and_multi_memory_are_refused() {
    let module = Wat {
        memory: r#"(memory (export "memory") i64 2)"#,
        ..Wat::default()
    }
    .wasm();
    assert!(matches!(
        refusal(&module, &quick_limits()),
        Refusal::Invalid(_)
    ));
    let module = Wat {
        extra: "(memory 1)",
        ..Wat::default()
    }
    .wasm();
    assert!(matches!(
        refusal(&module, &quick_limits()),
        Refusal::Invalid(_)
    ));
}

#[test]
fn wrong_abi_version_is_refused_at_instantiation() {
    let module = Wat {
        abi_version: "(i32.const 3)",
        ..Wat::default()
    }
    .wasm();
    let failure = expect(
        &module,
        &quick_limits(),
        Status::Refused,
        Phase::Instantiate,
    );
    assert!(failure.message.contains("returned 3"), "{failure}");
}

// ---- deadline -------------------------------------------------------------------------

#[test]
fn infinite_loop_in_fit_is_killed_at_the_deadline() {
    let module = Wat {
        fit_body: "(loop $spin (br $spin)) (i32.const 0)",
        ..Wat::default()
    }
    .wasm();
    expect(&module, &quick_limits(), Status::Deadline, Phase::Fit);
}

#[test]
fn infinite_loop_in_the_start_function_is_killed_at_the_deadline() {
    let module = Wat {
        extra: "(func $start (loop $spin (br $spin))) (start $start)",
        ..Wat::default()
    }
    .wasm();
    expect(
        &module,
        &quick_limits(),
        Status::Deadline,
        Phase::Instantiate,
    );
}

#[test]
fn fuel_stops_an_infinite_loop_inside_the_child() {
    let module = Wat {
        fit_body: "(loop $spin (br $spin)) (i32.const 0)",
        ..Wat::default()
    }
    .wasm();
    let limits = Limits {
        interruption: Interruption::Fuel(50_000_000),
        deadline: Duration::from_secs(30),
        ..quick_limits()
    };
    let failure = expect(&module, &limits, Status::Deadline, Phase::Fit);
    assert!(failure.message.contains("fuel"), "{failure}");
}

#[test]
fn epoch_stops_an_infinite_loop_inside_the_child() {
    let module = Wat {
        predict_body: "(loop $spin (br $spin)) (i32.const 0)",
        ..Wat::default()
    }
    .wasm();
    let limits = Limits {
        interruption: Interruption::Epoch,
        ..quick_limits()
    };
    let failure = expect(&module, &limits, Status::Deadline, Phase::Predict);
    assert!(failure.message.contains("epoch"), "{failure}");
}

// ---- memory limit ---------------------------------------------------------------------

#[test]
fn memory_bomb_growing_to_4_gib_hits_the_memory_limit() {
    let module = Wat {
        fit_body: "(if (i32.eq (memory.grow (i32.const 65534)) (i32.const -1)) (then unreachable)) (i32.const 0)",
        ..Wat::default()
    }
    .wasm();
    let failure = expect(&module, &quick_limits(), Status::MemoryLimit, Phase::Fit);
    assert!(failure.message.contains("denied"), "{failure}");
}

#[test]
fn memory_bomb_growing_page_by_page_hits_the_memory_limit() {
    let module = Wat {
        fit_body: "(loop $more (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))) unreachable",
        ..Wat::default()
    }
    .wasm();
    expect(&module, &quick_limits(), Status::MemoryLimit, Phase::Fit);
}

#[test]
fn allocator_failing_under_the_memory_limit_is_a_memory_limit() {
    // The allocator grows memory for the table block and gets refused.
    let limits = Limits {
        max_memory_bytes: 3 * 65536,
        ..quick_limits()
    };
    match run_with(&Wat::default().wasm(), &limits, true, 20_000) {
        Err(failure) => assert_eq!(
            (failure.status, failure.phase),
            (Status::MemoryLimit, Phase::Fit),
            "{failure}"
        ),
        Ok(_) => panic!("the table cannot fit in three pages"),
    }
}

#[test]
fn table_bomb_hits_the_memory_limit() {
    let module = Wat {
        extra: "(table $t 1 funcref)",
        fit_body: "(if (i32.eq (table.grow $t (ref.null func) (i32.const 50000000)) (i32.const -1)) (then unreachable)) (i32.const 0)",
        ..Wat::default()
    }
    .wasm();
    let failure = expect(&module, &quick_limits(), Status::MemoryLimit, Phase::Fit);
    assert!(failure.message.contains("table growth"), "{failure}");
}

// ---- traps ----------------------------------------------------------------------------

#[test]
fn deep_recursion_is_a_stack_overflow_trap() {
    let module = Wat {
        extra: "(func $down (param i32) (result i32) (i32.add (call $down (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))",
        fit_body: "(drop (call $down (i32.const 0))) (i32.const 0)",
        ..Wat::default()
    }
    .wasm();
    let failure = expect(&module, &quick_limits(), Status::Trap, Phase::Fit);
    assert!(failure.message.contains("stack overflow"), "{failure}");
}

#[test]
fn trap_in_fit() {
    let module = Wat {
        fit_body: "unreachable",
        ..Wat::default()
    }
    .wasm();
    let failure = expect(&module, &quick_limits(), Status::Trap, Phase::Fit);
    assert!(failure.message.contains("unreachable"), "{failure}");
}

#[test]
fn trap_in_predict_out_of_bounds() {
    let module = Wat {
        predict_body: "(drop (i32.load (i32.const -4))) (i32.const 0)",
        ..Wat::default()
    }
    .wasm();
    let failure = expect(&module, &quick_limits(), Status::Trap, Phase::Predict);
    assert!(failure.message.contains("out of bounds"), "{failure}");
}

/// Divides by (rows - 50): traps only on data with 50 rows.
const DATA_DEPENDENT_FIT: &str = "(drop (i32.div_u (i32.const 1) (i32.sub (i32.load offset=4 (i32.load offset=24 (local.get $call))) (i32.const 50)))) (i32.const 0)";

#[test]
fn data_dependent_trap_is_sealed_on_real_data() {
    let module = Wat {
        fit_body: DATA_DEPENDENT_FIT,
        ..Wat::default()
    }
    .wasm();
    assert!(
        run_with(&module, &quick_limits(), true, 49).is_ok(),
        "49 rows do not trap"
    );
    let dummy = expect(&module, &quick_limits(), Status::Trap, Phase::Fit);
    assert!(dummy.message.contains("divide by zero"), "{dummy}");
    let real = run_with(&module, &quick_limits(), false, 50).expect_err("50 rows trap");
    assert_eq!(real.status, Status::Trap);
    assert_eq!(real.message, Status::Trap.sealed_message());
    assert!(real.debug_log.is_empty());
}

#[test]
fn error_code_from_fit_is_a_trap_with_a_sealed_message_on_real_data() {
    let module = Wat {
        fit_body: "(i32.const 7)",
        ..Wat::default()
    }
    .wasm();
    let dummy = expect(&module, &quick_limits(), Status::Trap, Phase::Fit);
    assert!(dummy.message.contains("error code 7"), "{dummy}");
    let real = run_with(&module, &quick_limits(), false, 50).expect_err("fails");
    assert!(
        !real.message.contains('7'),
        "the guest's code is not released: {real}"
    );
}

#[test]
fn debug_output_is_kept_on_dummy_data_and_dropped_on_real_data() {
    let module = Wat {
        extra: r#"(data (i32.const 100) "row count leaked: 50")"#,
        fit_body: "(i32.store offset=40 (local.get $call) (i32.const 100)) (i32.store offset=44 (local.get $call) (i32.const 20)) unreachable",
        ..Wat::default()
    }
    .wasm();
    let dummy = expect(&module, &quick_limits(), Status::Trap, Phase::Fit);
    assert!(
        dummy.debug_log.contains("row count leaked: 50"),
        "{dummy:?}"
    );
    let real = run_with(&module, &quick_limits(), false, 50).expect_err("fails");
    assert!(
        real.debug_log.is_empty() && !real.message.contains("leaked"),
        "{real:?}"
    );
}

#[test]
fn debug_pointer_out_of_bounds_is_ignored() {
    let module = Wat {
        fit_body: "(i32.store offset=40 (local.get $call) (i32.const -16)) (i32.store offset=44 (local.get $call) (i32.const -1)) (i32.const 0)",
        ..Wat::default()
    }
    .wasm();
    assert!(run_with(&module, &quick_limits(), true, 50).is_ok());
}

// ---- bad output -----------------------------------------------------------------------

fn bad_output(predict_body: &'static str, needle: &str) {
    let module = Wat {
        predict_body,
        ..Wat::default()
    }
    .wasm();
    let failure = expect(&module, &quick_limits(), Status::BadOutput, Phase::Predict);
    assert!(
        failure.message.contains(needle),
        "expected {needle:?} in: {failure}"
    );
    let real = run_with(&module, &quick_limits(), false, 50).expect_err("fails");
    assert_eq!(real.message, Status::BadOutput.sealed_message());
}

#[test]
fn predict_returning_the_wrong_length() {
    bad_output(
        "(call $answer (local.get $call) (f64.const 0.5) (i32.add (i32.load offset=12 (local.get $call)) (i32.const 1)))",
        "expected exactly 50",
    );
}

#[test]
fn predict_returning_nothing() {
    bad_output("(i32.const 0)", "returned 0 values");
}

#[test]
fn predict_returning_nan() {
    bad_output(
        "(call $answer (local.get $call) (f64.const nan) (i32.load offset=12 (local.get $call)))",
        "not finite",
    );
}

#[test]
fn predict_returning_a_probability_above_one() {
    bad_output(
        "(call $answer (local.get $call) (f64.const 1.5) (i32.load offset=12 (local.get $call)))",
        "outside [0, 1]",
    );
}

#[test]
fn predict_returning_a_huge_pointer() {
    bad_output(
        "(drop (call $answer (local.get $call) (f64.const 0.5) (i32.load offset=12 (local.get $call)))) (i32.store offset=32 (local.get $call) (i32.const 0xFFFFFFF0)) (i32.const 0)",
        "outside linear memory",
    );
}

#[test]
fn allocator_returning_null_or_a_wild_pointer() {
    for alloc_body in ["(i32.const 0)", "(i32.const 0x7FFFFFF8)"] {
        let module = Wat {
            alloc_body,
            ..Wat::default()
        }
        .wasm();
        let failure = expect(&module, &quick_limits(), Status::BadOutput, Phase::Fit);
        assert!(failure.message.contains("medarena_alloc"), "{failure}");
    }
}

// ---- the tables' memory file ------------------------------------------------------------

/// A block's value of column 0 at row `$i` (ABI.md: entry 0 at 16, its data offset at +12).
const ECHO_PREDICT: &str = r#"(local.set $block (i32.load offset=24 (local.get $call)))
    (local.set $n (i32.load offset=12 (local.get $call)))
    (local.set $out (call $bump (i32.shl (local.get $n) (i32.const 3))))
    (local.set $data (i32.add (local.get $block) (i32.load offset=28 (local.get $block))))
    (block $done
      (loop $copy
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (f64.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 3)))
          (f64.load (i32.add (local.get $data) (i32.shl (local.get $i) (i32.const 3)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy)))
    (i32.store offset=32 (local.get $call) (local.get $out))
    (i32.store offset=36 (local.get $call) (local.get $n))
    (i32.const 0)"#;

/// Overwrites the whole block named at `offset` of the call record (its `total_bytes` is
/// at +12) with 0xFF bytes.
macro_rules! scribble {
    ($offset:literal) => {
        concat!(
            "(memory.fill (i32.load offset=",
            $offset,
            " (local.get $call)) (i32.const 255) (i32.load offset=12 (i32.load offset=",
            $offset,
            " (local.get $call))))"
        )
    };
}

#[test]
fn a_guest_overwriting_its_tables_spoils_neither_the_host_nor_later_runs() {
    let locals =
        "(local $block i32) (local $n i32) (local $out i32) (local $data i32) (local $i i32)";
    let echo = Wat {
        predict_body: Box::leak(format!("{locals} {ECHO_PREDICT}").into_boxed_str()),
        ..Wat::default()
    }
    .wasm();
    let scribbler = Wat {
        fit_body: concat!(scribble!(24), scribble!(28), "(i32.const 0)"),
        predict_body: Box::leak(
            format!("{locals} {} {ECHO_PREDICT}", scribble!(24)).into_boxed_str(),
        ),
        ..Wat::default()
    }
    .wasm();
    // One sandbox for every run, so that later runs reuse the memory file of earlier ones,
    // with tables of different sizes (the file shrinks and grows).
    let sandbox = sandbox();
    let limits = quick_limits();
    let run = |module: &[u8], n: usize| {
        let table = small_table(n);
        let labels = Labels::Regression((0..n).map(|i| i as f64).collect());
        let job = FitPredictJob {
            train_features: &table,
            train_labels: &labels,
            test_features: &table,
            seed: 1,
            limits: &limits,
            debug: true,
            survival_grid: None,
        };
        sandbox.fit_predict(module, &job)
    };
    let rows = |n: usize| (0..n).map(|i| i as f64).collect::<Vec<_>>();
    for n in [50, 20_000, 3, 9_000] {
        assert_eq!(run(&echo, n).expect("echo").predictions, rows(n));
        // The scribbler sees 0xFF bytes where its test table was: NaN, not finite.
        let failure = run(&scribbler, n).expect_err("scribbled predictions are NaN");
        assert_eq!(failure.status, Status::BadOutput, "{failure}");
        assert_eq!(run(&echo, n).expect("echo again").predictions, rows(n));
    }
}

// ---- compile limit --------------------------------------------------------------------

/// A valid submission whose `medarena_fit` is megabytes of straight-line float code.
fn compile_bomb(megabytes: usize) -> Vec<u8> {
    use wasm_encoder::{
        CodeSection, ExportKind, ExportSection, Function, FunctionSection, MemorySection,
        MemoryType, Module, TypeSection, ValType,
    };
    let mut types = TypeSection::new();
    types.ty().function([], [ValType::I32]);
    types
        .ty()
        .function([ValType::I32, ValType::I32], [ValType::I32]);
    types.ty().function([ValType::I32], [ValType::I32]);
    let mut functions = FunctionSection::new();
    for ty in [0, 1, 2, 2] {
        functions.function(ty);
    }
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    for (index, name) in [
        "medarena_abi_version",
        "medarena_alloc",
        "medarena_fit",
        "medarena_predict",
    ]
    .iter()
    .enumerate()
    {
        exports.export(name, ExportKind::Func, index as u32);
    }
    let constant = |value: i32| {
        let mut f = Function::new([]);
        f.instructions().i32_const(value).end();
        f
    };
    let mut bomb = Function::new([(32, ValType::F64)]);
    let mut body = Vec::with_capacity(megabytes << 20);
    let mut i: u8 = 0;
    while body.len() < megabytes << 20 {
        // local.get a; local.get b; f64.mul; local.get c; f64.add; local.set d
        let local = |k: u8| 1 + (i.wrapping_mul(k) % 32);
        body.extend_from_slice(&[
            0x20,
            local(7),
            0x20,
            local(11),
            0xa2,
            0x20,
            local(13),
            0xa0,
            0x21,
            local(5),
        ]);
        i = i.wrapping_add(1);
    }
    bomb.raw(body);
    bomb.instructions().i32_const(0).end();
    let mut code = CodeSection::new();
    code.function(&constant(1))
        .function(&constant(0))
        .function(&bomb)
        .function(&constant(0));
    let mut module = Module::new();
    module
        .section(&types)
        .section(&functions)
        .section(&memories)
        .section(&exports)
        .section(&code);
    module.finish()
}

#[test]
fn compile_bomb_hits_the_compile_limit() {
    let module = compile_bomb(3);
    assert!(
        precheck(&module, &quick_limits()).is_ok(),
        "the bomb passes the pre-check"
    );
    let limits = Limits {
        compile_timeout: Duration::from_millis(300),
        ..quick_limits()
    };
    expect(&module, &limits, Status::CompileLimit, Phase::Compile);
}

// ---- analyze --------------------------------------------------------------------------

#[test]
fn analyze_with_the_wrong_length_is_bad_output() {
    let module = Wat {
        extra: r#"(func (export "medarena_analyze") (param $call i32) (result i32) (call $answer (local.get $call) (f64.const 1) (i32.const 3)))"#,
        ..Wat::default()
    }
    .wasm();
    let blocks = medarena_sandbox::disjoint_blocks(&small_table(30), 3);
    let limits = quick_limits();
    let job = AnalyzeJob {
        blocks: &blocks,
        output_len: 3,
        seed: 0,
        limits: &limits,
        debug: true,
    };
    let output = sandbox()
        .analyze_blocks(&module, &job)
        .expect("three values per block");
    assert_eq!(output.blocks, vec![vec![1.0; 3]; 3]);
    let job = AnalyzeJob {
        output_len: 2,
        ..job
    };
    let failure = sandbox()
        .analyze_blocks(&module, &job)
        .expect_err("wrong length");
    assert_eq!(
        (failure.status, failure.phase),
        (Status::BadOutput, Phase::Analyze),
        "{failure}"
    );
}

#[test]
fn analyze_is_refused_when_the_module_has_no_analyze_export() {
    let blocks = medarena_sandbox::disjoint_blocks(&small_table(30), 3);
    let limits = quick_limits();
    let job = AnalyzeJob {
        blocks: &blocks,
        output_len: 1,
        seed: 0,
        limits: &limits,
        debug: true,
    };
    let failure = sandbox()
        .analyze_blocks(&Wat::default().wasm(), &job)
        .expect_err("no analyze");
    assert_eq!(failure.status, Status::Refused);
}

// ---- NaN determinism ------------------------------------------------------------------

/// `sqrt(-(n + 1))` with `n` read at run time (so that no compiler folds it): a NaN made by
/// the hardware, whose sign x86-64 sets and Arm clears.
const HARDWARE_NAN: &str = "(f64.sqrt (f64.neg (f64.convert_i32_u (i32.add (i32.load offset=12 (local.get $call)) (i32.const 1)))))";

/// Two ways a submission can observe a NaN's bits, each answering 0.75 for the canonical
/// NaN (positive, zero payload) and 0.25 for anything else.
fn nan_observers() -> [(&'static str, Vec<u8>); 2] {
    let sign = format!(
        "(call $answer (local.get $call)
            (f64.add (f64.const 0.5) (f64.mul (f64.const 0.25) (f64.copysign (f64.const 1) {HARDWARE_NAN})))
            (i32.load offset=12 (local.get $call)))"
    );
    let stored = format!(
        "(f64.store (i32.const 64) {HARDWARE_NAN})
         (call $answer (local.get $call)
            (select (f64.const 0.75) (f64.const 0.25)
              (i64.eq (i64.load (i32.const 64)) (i64.const 0x7ff8000000000000)))
            (i32.load offset=12 (local.get $call)))"
    );
    [sign, stored].map(|body| {
        let predict_body: &'static str = Box::leak(body.into_boxed_str());
        let module = Wat {
            predict_body,
            ..Wat::default()
        }
        .wasm();
        (predict_body, module)
    })
}

#[test]
fn nans_a_submission_observes_are_canonical() {
    for (body, module) in nan_observers() {
        let output = run_with(&module, &quick_limits(), true, 20).expect("runs");
        assert_eq!(output.predictions, vec![0.75; 20], "{body}");
    }
}

/// The same modules without the rewrite see x86-64's negative default NaN: the test above
/// passes because of the canonicalisation, not by accident of the hardware.
#[cfg(target_arch = "x86_64")]
#[test]
fn without_canonicalisation_x86_nans_are_visible() {
    let mut config = medarena_sandbox::SandboxConfig::new(child_command());
    config.canonicalize_nans = false;
    let sandbox = medarena_sandbox::Sandbox::new(config);
    for (body, module) in nan_observers() {
        let output = run_in(&sandbox, &module, &quick_limits(), true, 20).expect("runs");
        assert_eq!(output.predictions, vec![0.25; 20], "{body}");
    }
}

// ---- survival curves (ABI version 2) ----------------------------------------------------

/// Helpers for curve modules: `$curve` answers `n` copies of `base` with `value` at index
/// `at`; `$echo_grid` answers, for output `i`, `1 / (1 + grid[i % grid_len])` read from the
/// call record's grid (a valid curve, since the grid increases).
const CURVE_HELPERS: &str = r#"
  (func $curve (param $call i32) (param $base f64) (param $at i32) (param $value f64) (param $n i32) (result i32)
    (drop (call $answer (local.get $call) (local.get $base) (local.get $n)))
    (f64.store
      (i32.add (i32.load offset=32 (local.get $call)) (i32.shl (local.get $at) (i32.const 3)))
      (local.get $value))
    (i32.const 0))
  (func $echo_grid (param $call i32) (result i32)
    (local $n i32) (local $g i32) (local $grid i32) (local $ptr i32) (local $i i32)
    (local.set $n (i32.load offset=12 (local.get $call)))
    (local.set $grid (i32.load offset=48 (local.get $call)))
    (local.set $g (i32.load offset=52 (local.get $call)))
    (if (i32.eqz (local.get $g)) (then (return (i32.const 7))))
    (local.set $ptr (call $bump (i32.shl (local.get $n) (i32.const 3))))
    (block $done
      (loop $fill
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (f64.store (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 3)))
          (f64.div (f64.const 1)
            (f64.add (f64.const 1)
              (f64.load (i32.add (local.get $grid)
                (i32.shl (i32.rem_u (local.get $i) (local.get $g)) (i32.const 3)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $fill)))
    (i32.store offset=32 (local.get $call) (local.get $ptr))
    (i32.store offset=36 (local.get $call) (local.get $n))
    (i32.const 0))
"#;

/// Fit succeeds only when the grid fields of its record are zero (the grid is for predict).
const FIT_SEES_NO_GRID: &str =
    "(i32.or (i32.load offset=48 (local.get $call)) (i32.load offset=52 (local.get $call)))";

/// Answers, per row, `version + 10 × grid_len + 100 × (grid != 0)` from its call record.
const ECHO_RECORD: &str = "(call $answer (local.get $call)
    (f64.convert_i32_u (i32.add (i32.load offset=0 (local.get $call))
      (i32.add (i32.mul (i32.load offset=52 (local.get $call)) (i32.const 10))
        (i32.mul (i32.ne (i32.load offset=48 (local.get $call)) (i32.const 0)) (i32.const 100)))))
    (i32.load offset=12 (local.get $call)))";

const GRID: [f64; 3] = [1.0, 2.0, 3.0];

fn curves_module(predict_body: &'static str) -> Vec<u8> {
    Wat {
        abi_version: "(i32.const 2)",
        fit_body: FIT_SEES_NO_GRID,
        predict_body,
        extra: CURVE_HELPERS,
        ..Wat::default()
    }
    .wasm()
}

fn survival_labels(n: usize) -> Labels {
    Labels::Survival {
        time: (0..n).map(|i| 1.0 + (i % 7) as f64).collect(),
        event: (0..n).map(|i| i % 3 != 0).collect(),
    }
}

/// A survival run on `n` rows; `grid` asks for curves.
fn run_survival(
    module: &[u8],
    grid: Option<&[f64]>,
    debug: bool,
    n: usize,
) -> Result<RunOutput, RunFailure> {
    let table = small_table(n);
    let labels = survival_labels(n);
    let limits = quick_limits();
    let job = FitPredictJob {
        train_features: &table,
        train_labels: &labels,
        test_features: &table,
        seed: 1,
        limits: &limits,
        debug,
        survival_grid: grid,
    };
    sandbox().fit_predict(module, &job)
}

#[test]
fn curves_arrive_with_the_grid_and_come_back_row_major() {
    let output = run_survival(
        &curves_module("(call $echo_grid (local.get $call))"),
        Some(&GRID),
        true,
        20,
    )
    .expect("a valid curve per row");
    let curve: Vec<f64> = GRID.iter().map(|t| 1.0 / (1.0 + t)).collect();
    assert_eq!(output.predictions, curve.repeat(20));
}

#[test]
fn the_record_carries_the_declared_version_and_a_grid_only_in_a_curves_predict() {
    let v2 = curves_module(ECHO_RECORD);
    // A risk job: one value per row, version 2, no grid.
    let risk = run_survival(&v2, None, true, 10).expect("a v2 module in a risk job");
    assert_eq!(risk.predictions, vec![2.0; 10]);
    // A version-1 module sees version 1 and no grid.
    let v1 = Wat {
        fit_body: FIT_SEES_NO_GRID,
        predict_body: ECHO_RECORD,
        ..Wat::default()
    }
    .wasm();
    let old = run_survival(&v1, None, true, 10).expect("a v1 module in a risk job");
    assert_eq!(old.predictions, vec![1.0; 10]);
    // A curves job: 3 grid times, so 3 values per row, each 2 + 30 + 100 (a valid range is
    // not the point here, so it fails validation, but only after the values are read).
    let failure = run_survival(&v2, Some(&GRID), true, 10).expect_err("132 is no probability");
    assert_eq!(failure.status, Status::BadOutput, "{failure}");
    assert!(failure.message.contains("row 0"), "{failure}");
}

#[test]
fn a_version_1_module_is_refused_in_a_curves_job() {
    let failure = run_survival(&Wat::default().wasm(), Some(&GRID), true, 10)
        .expect_err("version 1 knows no grid");
    assert_eq!(
        (failure.status, failure.phase),
        (Status::Refused, Phase::Instantiate)
    );
    assert!(failure.message.contains("survival curves"), "{failure}");
    assert!(failure.message.contains("ABI version 2"), "{failure}");
    // The same module still runs risk jobs.
    let output = run_survival(&Wat::default().wasm(), None, true, 10).expect("risk job");
    assert_eq!(output.predictions, vec![0.5; 10]);
}

/// Runs a curves module on 6 rows and the 3-point grid; expects `bad_output` naming `needle`
/// on dummy data and the sealed message on real data.
fn bad_curves(predict_body: &'static str, needle: &str) {
    let module = curves_module(predict_body);
    let failure = run_survival(&module, Some(&GRID), true, 6).expect_err("bad curves");
    assert_eq!(
        (failure.status, failure.phase),
        (Status::BadOutput, Phase::Predict),
        "{failure}"
    );
    assert!(
        failure.message.contains(needle),
        "expected {needle:?} in: {failure}"
    );
    let real = run_survival(&module, Some(&GRID), false, 6).expect_err("bad curves");
    assert_eq!(real.message, Status::BadOutput.sealed_message());
}

#[test]
fn curves_of_the_wrong_length_are_bad_output() {
    // One value per row, as a risk score would be: 6 instead of 6 × 3.
    bad_curves(
        "(call $answer (local.get $call) (f64.const 0.5) (i32.const 6))",
        "returned 6 values, expected exactly 18",
    );
}

#[test]
fn a_rising_curve_is_bad_output_naming_row_and_grid_time() {
    bad_curves(
        "(call $curve (local.get $call) (f64.const 0.5) (i32.const 10) (f64.const 0.6) (i32.const 18))",
        "survival curve of row 3 rises at grid time 2 (index 1)",
    );
}

#[test]
fn a_curve_outside_0_1_is_bad_output() {
    bad_curves(
        "(call $curve (local.get $call) (f64.const 0.5) (i32.const 8) (f64.const -0.25) (i32.const 18))",
        "survival probability of row 2 at grid time 3 (index 2) is outside [0, 1]",
    );
    bad_curves(
        "(call $answer (local.get $call) (f64.const 1.5) (i32.const 18))",
        "row 0 at grid time 1 (index 0) is outside [0, 1]",
    );
}

#[test]
fn a_nan_in_a_curve_is_bad_output() {
    bad_curves(
        "(call $curve (local.get $call) (f64.const 0.5) (i32.const 3) (f64.const nan) (i32.const 18))",
        "survival probability of row 1 at grid time 1 (index 0) is not finite",
    );
}

#[test]
fn float_noise_along_a_curve_is_tolerated() {
    // 0.5 then 0.5 + 1e-12: rises, but by far less than the tolerance.
    let output = run_survival(
        &curves_module(
            "(call $curve (local.get $call) (f64.const 0.5) (i32.const 4) (f64.const 0.500000000001) (i32.const 18))",
        ),
        Some(&GRID),
        true,
        6,
    )
    .expect("noise is not a rise");
    assert_eq!(output.predictions.len(), 18);
}

#[test]
fn hostile_grids_are_refused_by_the_host_before_any_child_runs() {
    let module = curves_module("(call $echo_grid (local.get $call))");
    let too_long: Vec<f64> = (1..=70_000).map(f64::from).collect();
    let cases: [(&[f64], &str); 8] = [
        (&[], "empty"),
        (&[1.0, f64::NAN], "index 1 is not finite"),
        (&[f64::INFINITY], "index 0 is not finite"),
        (&[0.0, 1.0], "index 0 is 0, not greater than 0"),
        (&[-1.0], "not greater than 0"),
        (&[1.0, 3.0, 2.0], "index 2 (2) does not exceed"),
        (&[1.0, 1.0], "index 1 (1) does not exceed"),
        (&too_long, "more than the 65536"),
    ];
    for (grid, needle) in cases {
        let failure = run_survival(&module, Some(grid), false, 5).expect_err("a bad grid");
        assert_eq!(
            (failure.status, failure.phase),
            (Status::Internal, Phase::Precheck),
            "{grid:?}: {failure}"
        );
        assert!(
            failure.message.contains("invalid survival grid") && failure.message.contains(needle),
            "expected {needle:?} in: {failure}"
        );
    }
    // A grid is only for survival tasks.
    let table = small_table(5);
    let labels = Labels::Binary(vec![true, false, true, false, true]);
    let limits = quick_limits();
    let job = FitPredictJob {
        train_features: &table,
        train_labels: &labels,
        test_features: &table,
        seed: 1,
        limits: &limits,
        debug: true,
        survival_grid: Some(&GRID),
    };
    let failure = sandbox()
        .fit_predict(&module, &job)
        .expect_err("binary task");
    assert_eq!(failure.status, Status::Internal, "{failure}");
    assert!(failure.message.contains("only for survival"), "{failure}");
    // Rows × grid times beyond what one call record can count.
    let grid: Vec<f64> = (1..=60_000).map(f64::from).collect();
    let failure = run_survival(&module, Some(&grid), false, 80_000).expect_err("too many");
    assert_eq!(failure.status, Status::Internal, "{failure}");
    assert!(
        failure.message.contains("too many predictions"),
        "{failure}"
    );
}
