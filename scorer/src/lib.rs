//! Metrics, ranking and the privacy layer: the only place a value learned from real data
//! is released.

pub mod error;
pub mod metrics;

pub use error::{MetricError, PrivacyError};
pub use metrics::{Direction, Metric, Predictions, Range, TaskKind, Truth};
pub mod bootstrap;
pub mod budget;
pub mod leaderboard;
pub mod noise;
pub mod release;
pub mod sample_aggregate;
pub mod suppression;
