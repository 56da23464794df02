//! The one wasmtime configuration, shared by the parent (for the artifact compatibility
//! hash) and the child (to compile and run).

use std::hash::{Hash, Hasher};

use wasmtime::{Config, Engine, OptLevel, Strategy};

use crate::Interruption;

/// Deterministic, sealed configuration: Cranelift at full optimisation, deterministic
/// relaxed SIMD, no threads (wasmtime is built without its
/// `threads` feature), no multi-memory or memory64, and fuel or epoch checks only when the
/// limits ask for them.
///
/// Speed (measured in BENCHMARKS.md, `## sandbox`, with the `probe` bench):
///
/// - **No explicit bounds checks.** Every linear memory gets a 4 GiB reservation plus
///   32 MiB guard regions (wasmtime's 64-bit defaults, set explicitly here because the
///   host's zero-copy table mapping also relies on memory never moving): any 32-bit
///   address plus a static offset below 32 MiB lands in memory or in a guard page, so
///   Cranelift emits plain loads and stores and out-of-bounds accesses trap through
///   signals. Checked in the generated code; a 64 MiB reservation (explicit checks) was
///   1.25-1.3x slower. The child's `RLIMIT_AS` (8 GiB + the memory limit) leaves room for
///   the reservation; were it too small, instantiation would fail, never fall back to
///   checks, since the code is compiled for the reservation.
/// - **Spectre mitigations** stay at Cranelift's defaults. With the bounds checks elided
///   there are no heap guards to mitigate, and the table guards (`call_indirect`) measured
///   no difference. Turning them off would be sound here (the child holds nothing the
///   guest cannot read anyway: its own tables, never test labels or keys), but it buys
///   nothing.
/// - **Inlining** (`compiler_inlining`) measured no gain: Rust submissions arrive inlined.
/// - **NaN canonicalisation** is not Cranelift's: its `cranelift_nan_canonicalization`
///   follows every float operation with a compare-and-blend through the vector unit, which
///   made the reference models 1.6-2.3x slower than native code. The sandbox instead
///   rewrites the module to canonicalise NaNs only where a submission can observe their
///   bits (stores, reinterpretations, `copysign`, moves into vectors; see [`crate::nan`]),
///   when [`crate::SandboxConfig::canonicalize_nans`] is on (the default).
pub fn config(interruption: Interruption, max_wasm_stack: usize) -> Config {
    let mut config = Config::new();
    config
        .strategy(Strategy::Cranelift)
        .cranelift_opt_level(OptLevel::Speed)
        .cranelift_nan_canonicalization(false)
        .relaxed_simd_deterministic(true)
        .wasm_simd(true)
        .wasm_relaxed_simd(true)
        .wasm_multi_memory(false)
        .wasm_memory64(false)
        .wasm_tail_call(true)
        .consume_fuel(matches!(interruption, Interruption::Fuel(_)))
        .epoch_interruption(matches!(interruption, Interruption::Epoch))
        .max_wasm_stack(max_wasm_stack)
        .memory_reservation(4 << 30)
        .memory_guard_size(32 << 20)
        .memory_may_move(false)
        .signals_based_traps(true)
        // Copy-on-write memory images live in a memfd, which the child's seccomp filter and
        // `RLIMIT_FSIZE` of 0 forbid; submissions' data segments are small anyway.
        .memory_init_cow(false);
    config
}

/// Creates the engine for a limit set.
pub fn engine(
    interruption: Interruption,
    max_wasm_stack: usize,
) -> Result<Engine, wasmtime::Error> {
    Engine::new(&config(interruption, max_wasm_stack))
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
