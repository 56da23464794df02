//! The one wasmtime configuration, shared by the parent (for the artifact compatibility
//! hash) and the child (to compile and run).

use std::hash::{Hash, Hasher};

use wasmtime::{Config, Engine, OptLevel, Strategy};

use crate::Interruption;

/// Deterministic, sealed configuration: Cranelift at full optimisation, NaN
/// canonicalisation, deterministic relaxed SIMD, no threads (wasmtime is built without its
/// `threads` feature), no multi-memory or memory64,
/// and fuel or epoch checks only when the limits ask for them.
///
/// `canonicalize_nans` makes NaN bit patterns identical across CPU architectures; on one
/// architecture results are bit-identical without it. It costs up to ~2.3x on float-heavy
/// loops (BENCHMARKS.md), so it is a platform choice ([`crate::SandboxConfig`]).
pub fn config(
    interruption: Interruption,
    max_wasm_stack: usize,
    canonicalize_nans: bool,
) -> Config {
    let mut config = Config::new();
    config
        .strategy(Strategy::Cranelift)
        .cranelift_opt_level(OptLevel::Speed)
        .cranelift_nan_canonicalization(canonicalize_nans)
        .relaxed_simd_deterministic(true)
        .wasm_simd(true)
        .wasm_relaxed_simd(true)
        .wasm_multi_memory(false)
        .wasm_memory64(false)
        .wasm_tail_call(true)
        .consume_fuel(matches!(interruption, Interruption::Fuel(_)))
        .epoch_interruption(matches!(interruption, Interruption::Epoch))
        .max_wasm_stack(max_wasm_stack)
        // Copy-on-write memory images live in a memfd, which the child's seccomp filter and
        // `RLIMIT_FSIZE` of 0 forbid; submissions' data segments are small anyway.
        .memory_init_cow(false);
    config
}

/// Creates the engine for a limit set.
pub fn engine(
    interruption: Interruption,
    max_wasm_stack: usize,
    canonicalize_nans: bool,
) -> Result<Engine, wasmtime::Error> {
    Engine::new(&config(interruption, max_wasm_stack, canonicalize_nans))
}

/// A stable name for everything that makes a compiled artifact loadable by an engine:
/// wasmtime's own compatibility hash (version, target, compile-relevant settings).
pub fn compatibility_hash(engine: &Engine) -> String {
    // `DefaultHasher::new()` has fixed keys, so this is stable across processes of one
    // build; a different build only costs cache misses.
    let mut hasher = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}
