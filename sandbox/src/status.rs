//! The small set of outcomes a run can have, and what may be said about each.

use std::fmt;

/// Why a run failed. Coarse on purpose: on real data this (and the phase) is all a team
/// learns (DESIGN.md, principle 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The pre-check refused the module (size, validity, imports, exports, declared sizes).
    Refused,
    /// Compilation took longer than the compile limit (or exhausted the child's resources).
    CompileLimit,
    /// The guest asked for more linear memory or table elements than allowed.
    MemoryLimit,
    /// The wall-clock deadline passed (or, when enabled, fuel or the epoch ran out).
    Deadline,
    /// The guest trapped (including stack overflow) or its entry point returned an error.
    Trap,
    /// An output was of the wrong length, out of bounds, not finite or out of range.
    BadOutput,
    /// The host failed (not the submission's fault): spawn, protocol or I/O failure.
    Internal,
}

impl Status {
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    pub fn from_code(code: u8) -> Option<Self> {
        use Status::*;
        [
            Refused,
            CompileLimit,
            MemoryLimit,
            Deadline,
            Trap,
            BadOutput,
            Internal,
        ]
        .get(usize::from(code).checked_sub(1)?)
        .copied()
    }

    /// A stable lowercase name (`refused`, `compile_limit`, ...) for storage and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Refused => "refused",
            Status::CompileLimit => "compile_limit",
            Status::MemoryLimit => "memory_limit",
            Status::Deadline => "deadline",
            Status::Trap => "trap",
            Status::BadOutput => "bad_output",
            Status::Internal => "internal",
        }
    }

    /// The only text shown for a real-data run: fixed per status, never data or guest output.
    pub fn sealed_message(self) -> &'static str {
        match self {
            Status::Refused => "the module was refused by the pre-check",
            Status::CompileLimit => "compiling the module exceeded the compile limit",
            Status::MemoryLimit => "the submission exceeded the memory limit",
            Status::Deadline => "the submission exceeded the time limit",
            Status::Trap => "the submission failed while running",
            Status::BadOutput => "the submission's output was invalid",
            Status::Internal => "the platform failed to run the submission",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a run was when it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Precheck,
    Compile,
    Instantiate,
    Fit,
    Predict,
    Analyze,
}

impl Phase {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        use Phase::*;
        [Precheck, Compile, Instantiate, Fit, Predict, Analyze]
            .get(usize::from(code))
            .copied()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Precheck => "precheck",
            Phase::Compile => "compile",
            Phase::Instantiate => "instantiate",
            Phase::Fit => "fit",
            Phase::Predict => "predict",
            Phase::Analyze => "analyze",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed run. `message` is detailed (trap text, guest-reported reasons, which value was
/// bad) only on dummy-data runs (`debug: true`); otherwise it is [`Status::sealed_message`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} during {phase}: {message}")]
pub struct RunFailure {
    pub status: Status,
    pub phase: Phase,
    pub message: String,
    /// Guest debug output up to the failure (dummy-data runs only; empty otherwise).
    pub debug_log: String,
}
