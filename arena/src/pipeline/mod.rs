//! The real plug-ins: the four libraries composed into a [`DatasetValidator`](crate::DatasetValidator)
//! ([`SpecValidator`], datasets-spec) and a [`RunExecutor`](crate::RunExecutor) ([`SandboxExecutor`], sandbox +
//! datasets-spec + scorer).
//!
//! # An upload
//!
//! [`SpecValidator`] parses the manifest sent with the upload, loads the table (CSV,
//! Parquet or Arrow IPC, by file name or magic bytes) and runs datasets-spec's
//! [`validate`](medarena_datasets_spec::validate()): schema, label, duplicate row ids, the PHI
//! scan of every column and k-anonymity with the platform's k ([`PipelineConfig::k_anonymity`],
//! the organizer's setting). When the dataset already has validated contributions from other
//! hospitals, their rows and the new ones are united with a site column and the union is
//! checked for duplicate row ids and k-anonymity too (findings `union.*`, counts only). The
//! stored report is datasets-spec's [`Report`](medarena_datasets_spec::Report): rule ids,
//! columns, counts and row numbers, never a value.
//!
//! # A run
//!
//! ```text
//! precheck ── sandbox::precheck (size, zero imports, exports) at upload
//! dummy run ─ datasets-spec::dummy(manifest, rows, seed = split seed) ─ one fit ─ team sees all
//! real run ── RunInputs::real_data ─▶ load each contribution ─▶ union ─┐
//!                                                                      ▼
//!   drop rows without a target ─▶ assign_rows: each row's part and block from its own key
//!   declared bounds checked (min_rows; label level: each test part) ─ refused alike for all
//!   per block (k on the `row` level, 1 on `label`): fresh sandbox child, fit(train block),
//!     predict(test block); any failure ─▶ the block's fallback prediction (training prior)
//!   (test labels stay in this process)                                 │
//!   scorer: each block's clamped score ─▶ block_mean ─▶ release_scalar (Laplace, OpenDP),
//!   charged to a one-run accountant holding the ε the core reserved at queueing;
//!   the Ladder (post-processing); the label level's grid
//! ```
//!
//! What leaves, and to whom (`PRIVACY.md` has the whole list):
//! - **dummy run** (synthetic data): the team sees the score, the detailed failure reason
//!   and the guest's debug output; the time per phase is for organizers (and
//!   `medarena run`), since a concurrent real run could move it.
//! - **real run**: the team sees `completed` and the released public score, at the run's
//!   release time, whatever the run did (failures are sealed inside the block means);
//!   organizers also see exact (clamped block-mean) public and private scores, each block's
//!   status, bootstrap intervals and per-site scores of the pooled out-of-block predictions,
//!   the split record and timings. The Ladder's state comes in with the request and goes
//!   back with the result, stored in the same transaction.
//! - **analysis** (submission kind `analysis`, tier `dp_aggregates`): the training rows are
//!   cut row by row (a seed per submission) into the declared number of blocks; the
//!   module's `analyze` runs once per block in a fresh instance; the scorer clamps every
//!   output into the declared bounds, averages and adds OpenDP Laplace noise, charging the
//!   declared ε. The team sees the noisy values; a block that failed counts as the bounds'
//!   midpoint.
//!
//! On dummy data, sandbox statuses map to coarse outcomes: `compile_limit`, `memory_limit`
//! and `deadline` are `over_limit`; `refused`, `trap` and `bad_output` are `failed`;
//! `internal` is platform trouble (the job is retried). On real data a block's status is
//! only for organizers (an `internal` failure of a block's child is retried once, then
//! counts like any failure).
//!
//! The sandbox child is a separate process ([`PipelineConfig::child`]): the `medarena`
//! binary re-executes itself (`medarena sandbox-child`). Compiled modules are cached in
//! `<data dir>/artifact-cache`, authenticated with a key derived from the master key (on a
//! worker host, from its worker token) ([`artifact_cache`]), so the cache directory holds
//! nothing that could forge an entry.

mod data;
mod executor;
pub mod synthetic;
mod validator;

pub use data::{
    DeclaredBounds, Evaluation, EvaluationError, HOSPITAL_COLUMN, ScoredPart, SealedBlock,
    SealedEvaluation, TaskSpec, evaluate, evaluate_sealed, sandbox_limits,
};
pub use executor::{PER_HOSPITAL_KEY, SandboxExecutor, outcome_of};
pub use validator::SpecValidator;

use std::path::Path;

use medarena_sandbox::{ArtifactCache, CacheKey, ChildCommand, Hardening};

/// How the pipeline runs: where the sandbox child is, the artifact cache, and the
/// organizer's settings that are not per competition.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The sandbox child process (`medarena sandbox-child` in production).
    pub child: ChildCommand,
    /// Compiled modules; `None` compiles on every run.
    pub cache: Option<ArtifactCache>,
    pub hardening: Hardening,
    /// The smallest equivalence class allowed over quasi-identifiers (datasets-spec's
    /// default is 5; only an organizer lowers it).
    pub k_anonymity: u64,
    /// Rows of dummy data a dummy run generates.
    pub dummy_rows: usize,
    /// Bootstrap resamples for organizers' confidence intervals and comparisons.
    pub bootstrap_resamples: usize,
}

impl PipelineConfig {
    pub fn new(child: ChildCommand) -> Self {
        PipelineConfig {
            child,
            cache: None,
            hardening: Hardening::default(),
            k_anonymity: 5,
            // The default download of development data is the dummy run's table.
            dummy_rows: crate::DEFAULT_DEVELOPMENT_ROWS,
            bootstrap_resamples: 1000,
        }
    }
}

/// What the compiled-artifact cache's key is derived for, from the master key (server
/// hosts) or from the worker token (worker hosts).
pub const ARTIFACT_CACHE_PURPOSE: &str = "medarena/artifact-cache/v1";

/// The compiled-artifact cache of a data directory: `<data dir>/artifact-cache`, its HMAC
/// key derived from a secret the host is configured with, never stored next to the
/// artifacts (so rotating that secret invalidates every entry).
pub fn artifact_cache(data_dir: &Path, key: &[u8; 32]) -> std::io::Result<ArtifactCache> {
    ArtifactCache::new(data_dir.join("artifact-cache"), CacheKey::from_bytes(*key))
}
