//! The sealed sandbox: the submission ABI (`ABI.md`) and the wasmtime host that runs a
//! competitor's WebAssembly module beside hidden data.
//!
//! # Model
//!
//! A submission is a core WebAssembly module with zero imports that exports its memory, an
//! allocator and entry points (`medarena_fit` / `medarena_predict`, and optionally
//! `medarena_analyze`). A run goes:
//!
//! 1. [`precheck()`] in the parent: size, validity, zero imports (naming the offending one),
//!    declared memory and table sizes, required exports and their types.
//! 2. The tables (Arrow [`RecordBatch`](arrow_array::RecordBatch)es) and the training
//!    [`Labels`] are planned as ABI table blocks in the parent: every check, and the exact
//!    size of each block.
//! 3. A child process (found through [`ChildCommand`]) is spawned with rlimits, a fresh
//!    network namespace when allowed, a seccomp allow-list, and a read-only memory file
//!    sized for the blocks. It rewrites the module so that every NaN the guest can observe
//!    is canonical ([`nan`]) and compiles it with a deterministic Cranelift
//!    configuration, or loads an artifact from the [`ArtifactCache`] that the parent
//!    authenticated with its HMAC key, while the parent writes the blocks into the file
//!    (Arrow to ABI in one pass). The parent kills the child at the compile limit and at
//!    the deadline.
//! 4. The child instantiates the module under a resource limiter, maps each block into
//!    guest memory (copy-on-write, no copy), calls `fit` then `predict` (or `analyze` once
//!    per block, each in a fresh instance), and sends back exactly the expected number of
//!    values.
//! 5. The parent validates the values for the task and returns a [`RunOutput`], or a
//!    [`RunFailure`] with one of the few [`Status`]es. Test labels never enter the child;
//!    scoring is the caller's job.
//!
//! On real data (`debug: false`) a failure's message is a fixed text per status and the
//! guest's debug output is dropped; on dummy data both are detailed.
//!
//! # Use
//!
//! ```no_run
//! # use medarena_sandbox::*;
//! # fn demo(module: &[u8], train: &arrow_array::RecordBatch, test: &arrow_array::RecordBatch) {
//! let sandbox = Sandbox::new(SandboxConfig::new(ChildCommand::current_exe("sandbox-child").unwrap()));
//! let labels = Labels::Binary(vec![true, false /* ... */]);
//! let limits = Limits::default();
//! let job = FitPredictJob { train_features: train, train_labels: &labels, test_features: test,
//!                           seed: 42, limits: &limits, debug: true, survival_grid: None };
//! match sandbox.fit_predict(module, &job) {
//!     Ok(output) => println!("{} predictions", output.predictions.len()),
//!     Err(failure) => println!("{}: {}", failure.status, failure.message),
//! }
//! # }
//! ```
//!
//! The child's `main` is [`run_child`]: the `medarena` binary calls it from a hidden
//! `sandbox-child` subcommand, tests use the `medarena-sandbox-child` binary of this crate.
pub mod abi;
pub mod cache;
mod child;
mod engine;
mod harden;
mod host;
pub mod limits;
pub mod nan;
pub mod precheck;
mod shared;
pub mod status;
mod wire;

pub use abi::{Labels, Task};
pub use cache::{ArtifactCache, CacheKey};
pub use child::run_child;
pub use host::{
    AnalyzeJob, AnalyzeOutput, ChildCommand, ChildUsage, FitPredictJob, Hardening, RunOutput,
    Sandbox, SandboxConfig, Timings, disjoint_blocks, take_child_usage,
};
pub use limits::{Interruption, Limits};
pub use precheck::{ModuleInfo, Refusal, precheck};
pub use status::{Phase, RunFailure, Status};
