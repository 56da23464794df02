//! Metrics, ranking and the privacy layer of medarena: the only place where a value learned
//! from real data is released.
//!
//! # Model
//!
//! A run's predictions are scored against the hidden labels of the public and the private
//! test part ([`Metric::score`]). Organizers see exact scores, bootstrap intervals
//! ([`bootstrap`]) and per-site scores; teams see only what [`release`] lets out: a
//! Laplace-noised score (the mean of per-block scores at the `row` level), optionally
//! through the Ladder, each charged to the team's privacy budget on the dataset
//! ([`budget`]) *before* the noise is drawn. Free-form analyses by untrusted code are
//! released through [`sample_aggregate`]. Counts shown to anyone but organizers go through
//! [`suppression`]. Leaderboards ([`leaderboard`]) rank released scores.
//!
//! Inputs are plain types: [`Truth`] and [`Predictions`] own `Vec`s, tasks are
//! [`TaskKind`]. The crate knows nothing of HTTP, SQL, Arrow or the sandbox.
//!
//! ```
//! use medarena_scorer::{Metric, Predictions, Truth};
//!
//! let metric: Metric = "roc_auc".parse()?;
//! let truth = Truth::Binary(vec![true, false, true, false]);
//! let predictions = Predictions::Scores(vec![0.9, 0.2, 0.4, 0.6]);
//! assert_eq!(metric.score(&truth, &predictions)?, 0.75);
//! # Ok::<(), medarena_scorer::MetricError>(())
//! ```
//!
//! # Metrics
//!
//! Values match scikit-learn / lifelines / scikit-survival / statsmodels to 1e-9 (committed
//! fixtures, `fixtures/`; the expected calibration errors against the numpy definition in
//! `fixtures/generate.py`).
//! The last column is the `label`-level sensitivity: how far one changed row of a test part
//! with (at least, as declared) `n` rows and `m` rows in its smaller class can move the score;
//! "refused" metrics cannot be released at that level. At the `row` level every metric is
//! released as a mean of per-block scores clamped into its range (R² into [−1, 1]; log
//! losses, RMSE and MAE need the declared floor or value range), with sensitivity range/k,
//! except the metrics with no finite range or that need horizons, which are refused.
//!
//! | name | task | better | range | sensitivity for Laplace release |
//! |---|---|---|---|---|
//! | `roc_auc` | binary | higher | [0, 1] | 1/m |
//! | `average_precision` | binary | higher | [0, 1] | refused |
//! | `log_loss` | binary | lower | [0, ∞) | ln(1/floor)/n with a declared probability floor, else refused |
//! | `brier` | binary | lower | [0, 1] | 1/n |
//! | `accuracy` | binary | higher | [0, 1] | 1/n |
//! | `balanced_accuracy` | binary | higher | [0, 1] | 1/m |
//! | `f1` | binary | higher | [0, 1] | refused |
//! | `calibration_slope` | binary | closer to 1 | (−∞, ∞) | refused |
//! | `calibration_intercept` | binary | closer to 0 | (−∞, ∞) | refused |
//! | `ece` | binary | lower | [0, 1] | 2/n |
//! | `multiclass_accuracy` | multiclass | higher | [0, 1] | 1/n |
//! | `macro_f1` | multiclass | higher | [0, 1] | refused |
//! | `multiclass_log_loss` | multiclass | lower | [0, ∞) | ln(1/floor)/n with a floor, else refused |
//! | `rmse` | regression | lower | [0, ∞) | w/√n with a declared value range of width w, else refused |
//! | `mae` | regression | lower | [0, ∞) | w/n with a declared value range, else refused |
//! | `r2` | regression | higher | (−∞, 1] | refused |
//! | `c_index` | survival | higher | [0, 1] | refused |
//! | `uno_c_index` | survival | higher | [0, 1] | refused |
//! | `td_auc` | survival (horizons) | higher | [0, 1] | refused |
//! | `integrated_brier` | survival (horizons, curves) | lower | [0, ∞) | refused |
//! | `brier_at_horizon` | survival (one horizon, curves) | lower | [0, ∞) | refused |
//! | `ece_at_horizon` | survival (one horizon, curves) | lower | [0, 1] | refused |
//!
//! Conventions: binary decisions at `p >= 0.5`; multiclass decisions by first argmax;
//! survival predictions are risk scores, **higher = earlier event** (scikit-survival and the
//! sandbox ABI; lifelines needs them negated), or survival curves
//! ([`Predictions::SurvivalCurves`]). Horizons, Uno's truncation time and the training labels
//! for the IPCW censoring distribution come in a [`ScoreContext`] ([`Metric::score_with`]).
//! C-index ties follow lifelines and scikit-survival (see [`metrics`]). AUC, the C-indices
//! and the cumulative/dynamic AUC run in O(n log n). Metrics that need horizons are not
//! released block by block yet ([`release::release_range`] refuses them).
//!
//! # Privacy model
//!
//! - **What is protected**: the hidden rows of a dataset. Neighbouring datasets differ in
//!   one row (replaced). The whole model is in the workspace's `PRIVACY.md`.
//! - **Two levels**: `row` (every row: partitioned scoring, [`release::block_mean`] with
//!   Δ = range/k) and `label` (the test labels only: Δ from *declared* part sizes, values on a
//!   published grid, a capped number of releases). Every parameter that sets the noise is
//!   declared, never read off the data.
//! - **Who is charged**: a team, per dataset. Each dataset has a per-team limit and
//!   optionally a total across teams ([`budget::DatasetBudget`]). Amounts compose by
//!   basic (additive) composition over ε and δ, kept in exact integer units.
//! - **Charge before release**: every release function takes a [`release::Payer`], asks
//!   OpenDP for the exact cost of the calibrated mechanism, charges it atomically, and only
//!   then draws the noise. A refused charge releases nothing and records nothing.
//! - **Noise**: OpenDP's Laplace (ε-DP) and Gaussian (zCDP converted to (ε, δ)) mechanisms;
//!   no float sampling is written here ([`noise`]).
//! - **Scores**: [`release::release_scalar`] (Laplace), optionally followed by the Ladder
//!   (Blum & Hardt 2015) as post-processing; each release states its noise scale and 95%
//!   interval ([`release::Calibration`]), computed from public parameters only.
//! - **Untrusted analyses**: sample-and-aggregate over k disjoint blocks; the code's own
//!   claims are never used, only the declared output bounds ([`sample_aggregate`]).
//! - **Not covered here**: timing and status channels (arena releases real runs at fixed
//!   times and shows every real run as completed), and the exact organizer views (bootstrap,
//!   per-site, exact private scores), which are not releases.

pub mod bootstrap;
pub mod budget;
pub mod error;
pub mod leaderboard;
pub mod metrics;
pub mod noise;
pub mod release;
pub mod sample_aggregate;
pub mod suppression;

pub use bootstrap::{
    BootstrapConfig, ConfidenceInterval, PairedComparison, SiteScore, bootstrap_ci,
    paired_bootstrap, per_site_scores,
};
pub use budget::{BudgetAccountant, ChargeReceipt, DatasetBudget, InMemoryAccountant};
pub use error::{MetricError, PrivacyError};
pub use leaderboard::{
    FinalSelection, LeaderboardError, Phase, RunScores, Standing, Viewer, private_leaderboard,
    public_leaderboard,
};
pub use metrics::{
    Direction, HorizonsNeeded, KaplanMeier, Metric, Predictions, Range, ScoreContext,
    SurvivalLabels, TaskKind, Truth,
};
pub use noise::{NoiseMechanism, PrivacyCost};
pub use release::{
    Calibration, ClampBounds, LadderState, NoisyRelease, Payer, PublicPartFacts, block_mean,
    block_score, calibrate, default_ladder_step, release_range, release_scalar, round_to_grid,
    row_sensitivity,
};
pub use sample_aggregate::{
    AggregateRelease, AggregateSpec, partition_blocks, sample_and_aggregate,
};
pub use suppression::{ShownCount, SuppressionPolicy};
