//! The NaN rewrite (`medarena_sandbox::nan`) runs on every submission before it is
//! compiled: on any valid module (wasm-smith makes them, with the float and vector
//! instructions the sandbox allows) it must never panic, and what it writes must still be
//! valid WebAssembly with the same features.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medarena_sandbox::precheck::allowed_features;
use wasmparser::Validator;

fuzz_target!(|input: &[u8]| {
    let mut u = arbitrary::Unstructured::new(input);
    let config = wasm_smith::Config {
        simd_enabled: true,
        relaxed_simd_enabled: true,
        tail_call_enabled: true,
        threads_enabled: false,
        memory64_enabled: false,
        max_memories: 1,
        gc_enabled: false,
        exceptions_enabled: false,
        reference_types_enabled: true,
        max_imports: 0,
        ..Default::default()
    };
    let Ok(module) = wasm_smith::Module::new(config, &mut u) else { return };
    let bytes = module.to_bytes();
    if Validator::new_with_features(allowed_features()).validate_all(&bytes).is_err() {
        return;
    }
    let rewritten = medarena_sandbox::nan::canonicalize_observable_nans(&bytes)
        .expect("a valid module is always rewritten");
    if let Err(error) = Validator::new_with_features(allowed_features()).validate_all(&rewritten) {
        panic!("the rewrite made an invalid module: {error}");
    }
});
