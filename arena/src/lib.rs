//! The medarena core: competitions, accounts, admissions, datasets, submissions, the durable
//! job queue, and their storage. Web handlers and the CLI call [`Arena`]; the four libraries
//! (datasets-spec, sandbox, scorer, ledger) plug in through three traits.
//!
//! # The model
//!
//! - **Accounts** have one [`Role`]: organizer, hospital, team member or auditor. Passwords
//!   are hashed with Argon2id; sign-in gives a browser session, and a signed-in account can
//!   create named API tokens for the CLI. Both are random 256-bit bearer tokens stored as
//!   SHA-256, expiring and revocable ([`Arena::authenticate`] turns one into an [`Actor`]).
//! - **Organizations** are hospitals and teams. A hospital account or team member applies
//!   ([`Arena::apply`]); an organizer approves (teams get a [`Tier`]: dummy data only, real
//!   data, DP aggregates) or rejects. Team members add colleagues to their team.
//! - **Who may do what** is one function, [`authz::authorize`]`(actor, action, resource)`,
//!   the role matrix of DESIGN.md. Every operation calls it; handlers never decide.
//! - **Competitions** come from a YAML [`Bundle`] (task, metric, datasets, split, phases,
//!   limits, sandbox limits, privacy settings, data-use agreement). A team must accept the
//!   current agreement text before its first submission.
//! - **Datasets** collect **contributions** from several hospitals. An upload is encrypted
//!   at rest (XChaCha20-Poly1305 under a per-dataset key wrapped by the master key; see
//!   [`crypto`]), stored content-addressed ([`objects`]), then validated. States:
//!
//!   ```text
//!   contribution: uploaded ──▶ validated
//!                          └─▶ rejected (bytes deleted, report kept)
//!   dataset:      uploaded ⇄ validated ──▶ approved (frozen; competitions may use it)
//!                                      └─▶ rejected
//!   ```
//!   Nobody can download real rows: they reach only the executor, and only for real runs.
//! - **Submissions** pass the pre-check, are stored encrypted under the team's key, and go
//!   through the **phase gate**: a dummy-data run first; only if it succeeds, the phase is
//!   not development, the team's tier allows real data and the competition is open, a
//!   real-data run:
//!
//!   ```text
//!   queued_dummy ─▶ running_dummy ─┬─▶ failed (coarse outcome: failed / over_limit / error)
//!                                  ├─▶ completed (dummy only: development phase or tier)
//!                                  └─▶ queued_real ─▶ running_real ─┬─▶ completed (scored)
//!                                                                   └─▶ failed
//!   ```
//!   Teams see coarse statuses, their dummy score and the released (noisy) public score;
//!   organizers also see exact scores and details ([`SubmissionView`]).
//!
//! # The job queue's guarantees
//!
//! Jobs live in SQL, inserted in the same transaction as their submission.
//! - **Claims are leases.** A worker claims the next job with a lease expiry and renews it
//!   by heartbeat while the executor runs. Every claim carries a fresh token; finishing,
//!   retrying and heart-beating require it, so a worker that lost its lease cannot overwrite
//!   the job's newer claim.
//! - **Nothing is lost.** A worker that crashes (or a process killed mid-run) stops
//!   heart-beating; once its lease expires the job goes back to pending and is claimed
//!   again, up to `max_attempts` claims, after which it is marked failed with outcome
//!   `error`. Every job ends `succeeded` or `failed`; none stays `running` forever.
//! - **One runner per job.** A claim is a single transaction (`BEGIN IMMEDIATE` on SQLite,
//!   the schema's writer lock and `FOR UPDATE SKIP LOCKED` on PostgreSQL) whose update only
//!   succeeds on a pending job: two workers never hold the same job, on one host or many.
//! - **Fair scheduling.** The team whose last claim is oldest goes first, then that team's
//!   oldest job; a team never has two real-data runs at once, so its privacy budget is
//!   spent serially and checked in the same transaction that records each charge.
//! - **Platform errors are retried with back-off**; a submission's own failure is not an
//!   error but an outcome, and is never retried.
//!
//! # Audit
//!
//! Every state change writes a typed [`AuditEvent`] to an outbox in the same transaction;
//! the arena delivers events in order to the [`AuditSink`] (the ledger) and stores each
//! receipt's evidence code. Delivery is at least once; sinks deduplicate by event id.
//!
//! # How a run flows through the libraries
//!
//! [`pipeline`] holds the real plug-ins and documents each step; in short:
//! 1. **Upload** ([`pipeline::SpecValidator`]): the manifest is parsed, the table loaded and
//!    validated by datasets-spec (schema, label, duplicate ids, PHI, k-anonymity with the
//!    organizer's k), then united with the dataset's other validated contributions (site
//!    column) for duplicate ids and k-anonymity across hospitals. The stored report is
//!    datasets-spec's `Report`: rule ids, columns and counts, never values.
//! 2. **Submission**: `sandbox::precheck` at upload (size, zero imports, exports).
//! 3. **Dummy run** ([`pipeline::SandboxExecutor`]): dummy data from the manifest (seed =
//!    the competition's split seed), the bundle's split, `fit` on train and `predict` on the
//!    test parts in a sandbox child, the metric on the dummy test rows. The team sees the
//!    score, the detailed failure reason, its debug output and the time per phase
//!    ([`Arena::dummy_run_report`]).
//! 4. **Real run**: the decrypted contributions, united; the same split and sandbox run;
//!    exact public and private scores; the public score **released** by the scorer (Laplace,
//!    or the Ladder on the noisy score, whose state is stored per team and competition) with
//!    the bundle's ε, which is **charged** on every dataset of the competition in the same
//!    transaction as the result. Test labels never enter the child. Teams see `ok` /
//!    `failed` / `over_limit` and the released score; organizers also see exact scores,
//!    bootstrap 95% intervals, per-site scores and timings, and may compare the top entries
//!    with a paired bootstrap ([`Arena::compare_top_entries`]). The core drops any guest
//!    output a real run's result might carry.
//! 5. **DP aggregates** ([`Arena::submit_analysis`], tier `dp_aggregates`): an analysis
//!    module runs on dummy blocks, then on k disjoint blocks of the real training rows
//!    (shuffled with a recorded seed); the scorer clamps to the declared bounds, averages,
//!    adds OpenDP noise and charges the declared ε; the team sees the noisy values.
//!
//! [`platform::open`] opens the real platform in one call; [`demo::seed`] seeds a complete
//! demo competition.
//!
//! # Plugging in the libraries
//!
//! - [`RunExecutor`]: pre-checks modules and runs jobs (sandbox, datasets-spec, scorer).
//! - [`DatasetValidator`]: validates uploads (datasets-spec).
//! - [`AuditSink`]: records events (ledger).
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn demo(executor: Arc<dyn medarena_arena::RunExecutor>,
//! #               validator: Arc<dyn medarena_arena::DatasetValidator>) -> Result<(), medarena_arena::ArenaError> {
//! use medarena_arena::{Arena, ArenaConfig, WorkerPool};
//! let arena = Arena::builder(ArenaConfig::new("/var/lib/medarena"))
//!     .executor(executor)
//!     .validator(validator)
//!     .open()
//!     .await?;
//! let workers = WorkerPool::spawn(&arena, "worker");
//! // ... serve requests with `arena` ...
//! workers.shutdown().await;
//! # Ok(()) }
//! ```

pub use medarena_datasets_spec as datasets_spec;
pub use medarena_ledger as ledger;
pub use medarena_sandbox as sandbox;
pub use medarena_scorer as scorer;

pub mod audit;
pub mod auth;
pub mod authz;
pub mod bundle;
pub mod certificate;
pub mod config;
pub mod contract;
pub mod crypto;
pub mod demo;
pub mod error;
pub mod executor;
pub mod ids;
pub mod key_client;
pub mod ledger_pg;
pub mod ledger_sink;
pub mod model;
pub mod objects;
pub mod pipeline;
pub mod platform;
mod service;
pub mod store;
pub mod suppress;
pub mod testing;
pub mod time;
pub mod vault;
mod worker;

pub use audit::{
    AuditError, AuditEvent, AuditReceipt, AuditRecord, AuditSink, DeferredAuditSink,
    TracingAuditSink,
};
pub use authz::{Action, Actor, Denial, Membership, Principal, Resource, authorize};
pub use bundle::{Bundle, BundleError, FieldIssue, PrivacyLevel, ReleaseTerms};
pub use config::{ArenaConfig, MASTER_KEY_ENV, QueueConfig};
pub use crypto::MasterKeySource;
pub use error::{ArenaError, ArenaResult, ErrorKind};
pub use executor::{
    CompareRequest, ContributionData, ContributionManifest, DatasetUpload, DatasetValidator,
    EntryComparison, ExecutorError, PrecheckRejection, RunExecutor, RunInputs, RunRequest,
    RunResult, ValidationOutcome, ValidatorError,
};
pub use ids::*;
pub use model::*;
pub use service::{
    AdmissionDecision, Arena, ArenaBuilder, CLEAN_TEXT_PATTERN, ContractAction, ContractProposal,
    ContractView, DEFAULT_DEVELOPMENT_ROWS, DEFAULT_VALID_DAYS, DatasetView, DevelopmentData,
    DummyRunReport, ExactScores, IssuedToken, JobEnd, JobReport, Leaderboard, LeaderboardEntry,
    LeaderboardKind, MAX_DEVELOPMENT_ROWS, MAX_SYNTHETIC_EPSILON, MAX_UPLOAD_BYTES, Me,
    Registration, SIGN_IN_MAX_FAILURES, SIGN_IN_WINDOW, ScorePoint, Statement, StatementRequest,
    StatementTotal, SubmissionView, SyntheticAction, TeamView, statement_totals,
};
pub use store::Store;
pub use store::postgres::PgStore;
pub use store::sqlite::SqliteStore;
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
pub use worker::WorkerPool;
