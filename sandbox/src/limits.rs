//! Per-competition resource limits.

use std::time::Duration;

/// How a running guest is stopped at its deadline.
///
/// The child process is always killed at the wall-clock deadline; the in-wasm checks only
/// add a way to stop a guest *inside* the child. They cost speed on float loops (see
/// BENCHMARKS.md, `## sandbox`), so the default is [`Interruption::DeadlineKill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interruption {
    /// Only the parent's kill at the deadline (no instrumentation, full speed).
    DeadlineKill,
    /// Epoch checks at loop heads and function entries, ticked by a timer thread in the
    /// child so that the guest traps shortly before the parent's kill.
    Epoch,
    /// Deterministic fuel: the guest traps after this many units (roughly instructions).
    Fuel(u64),
}

/// Every limit the sandbox enforces. All are configurable per competition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted module, in bytes (checked before anything else).
    pub max_module_bytes: usize,
    /// Wall-clock limit for compiling the module in the child (a cached artifact skips it).
    pub compile_timeout: Duration,
    /// Largest linear memory, in bytes (declared minimum and growth).
    pub max_memory_bytes: u64,
    /// Largest table, in elements (declared minimum and growth).
    pub max_table_elements: u64,
    /// Instances, memories and tables a module may create (a core module needs 1 / 1 / few).
    pub max_instances: usize,
    pub max_memories: usize,
    pub max_tables: usize,
    /// Native stack the guest may use, in bytes (deep recursion traps with a stack overflow).
    pub max_wasm_stack: usize,
    /// Wall-clock limit for everything after compilation and after the host has written
    /// the tables (data in, fit, predict, data out).
    pub deadline: Duration,
    pub interruption: Interruption,
    /// Debug output kept per call, in bytes (dummy-data runs only).
    pub max_debug_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_module_bytes: 32 << 20,
            compile_timeout: Duration::from_secs(30),
            max_memory_bytes: 2 << 30,
            max_table_elements: 100_000,
            max_instances: 1,
            max_memories: 1,
            max_tables: 4,
            max_wasm_stack: 1 << 20,
            deadline: Duration::from_secs(300),
            interruption: Interruption::DeadlineKill,
            max_debug_bytes: 64 << 10,
        }
    }
}
