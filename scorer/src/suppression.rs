//! Small-number suppression for counts shown to anyone but organizers (per-site row
//! counts, class counts, block counts...). The default follows OpenSAFELY's output
//! checking: counts of 7 or fewer are suppressed, the others rounded to the nearest 5.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionPolicy {
    /// Counts `<= threshold` are suppressed.
    pub threshold: u64,
    /// Shown counts are rounded to the nearest multiple of this (1 = no rounding).
    pub round_to: u64,
}

impl Default for SuppressionPolicy {
    fn default() -> Self {
        SuppressionPolicy {
            threshold: 7,
            round_to: 5,
        }
    }
}

/// A count as it may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShownCount {
    Suppressed,
    Count(u64),
}

impl std::fmt::Display for ShownCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShownCount::Suppressed => write!(f, "[REDACTED]"),
            ShownCount::Count(n) => write!(f, "{n}"),
        }
    }
}

impl SuppressionPolicy {
    pub fn apply(&self, count: u64) -> ShownCount {
        if count <= self.threshold {
            return ShownCount::Suppressed;
        }
        let step = self.round_to.max(1);
        // Nearest multiple, halves rounded up; never rounds a shown count down to zero.
        let rounded = (count + step / 2) / step * step;
        ShownCount::Count(rounded.max(step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_opensafely_like() {
        let policy = SuppressionPolicy::default();
        assert_eq!(policy.apply(0), ShownCount::Suppressed);
        assert_eq!(policy.apply(7), ShownCount::Suppressed);
        assert_eq!(policy.apply(8), ShownCount::Count(10));
        assert_eq!(policy.apply(12), ShownCount::Count(10));
        assert_eq!(policy.apply(13), ShownCount::Count(15));
        assert_eq!(policy.apply(1234), ShownCount::Count(1235));
        assert_eq!(policy.apply(7).to_string(), "[REDACTED]");
    }

    #[test]
    fn configurable() {
        let exact = SuppressionPolicy {
            threshold: 10,
            round_to: 1,
        };
        assert_eq!(exact.apply(10), ShownCount::Suppressed);
        assert_eq!(exact.apply(11), ShownCount::Count(11));
    }
}
