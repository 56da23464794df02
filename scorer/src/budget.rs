//! Privacy-budget accounting per team and per dataset.
//!
//! Each dataset has a budget set by its hospital or the organizer: a limit per team, and
//! optionally a total across all teams. Every release is charged *before* it is shown, in
//! one atomic check-and-charge: either the whole cost fits under every limit and is
//! recorded, or nothing is recorded and the release is refused.
//!
//! Amounts are kept as integers ([`BudgetUnits`]): charges are rounded up and limits down,
//! so that adding many small floats can never creep past a limit, and so that an SQL
//! backend can store them exactly. A PostgreSQL or SQLite implementation of
//! [`BudgetAccountant`] does the check-and-charge as one statement per limit inside one
//! transaction, e.g.
//! `UPDATE budget SET spent_eps = spent_eps + $1, spent_delta = spent_delta + $2
//!  WHERE team = $3 AND dataset = $4 AND spent_eps + $1 <= limit_eps
//!  AND spent_delta + $2 <= limit_delta` and refuses (rolls back) when no row was updated.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::PrivacyError;
use crate::noise::PrivacyCost;

/// ε is counted in units of 10⁻¹², δ in units of 10⁻¹⁸ (δ ≤ 1 fits in a `u64`).
pub const EPSILON_UNIT: f64 = 1e-12;
pub const DELTA_UNIT: f64 = 1e-18;

/// ε as the platform's tables keep it: whole millionths (micro-ε) in an integer column, so
/// that sums are exact in SQL. Charges round up, limits round down.
pub const MICRO_EPSILON: f64 = 1e-6;

/// The micro-ε to charge for `epsilon` (rounded up), or why it cannot be charged.
pub fn micro_epsilon_charge(epsilon: f64) -> Result<i64, PrivacyError> {
    micro_epsilon(epsilon, f64::ceil)
}

/// The micro-ε of a limit of `epsilon` (rounded down).
pub fn micro_epsilon_limit(epsilon: f64) -> Result<i64, PrivacyError> {
    micro_epsilon(epsilon, f64::floor)
}

/// ε of a micro-ε amount.
pub fn epsilon_of_micro(micro: i64) -> f64 {
    micro as f64 * MICRO_EPSILON
}

fn micro_epsilon(epsilon: f64, round: fn(f64) -> f64) -> Result<i64, PrivacyError> {
    if !(epsilon.is_finite() && (0.0..=1e6).contains(&epsilon)) {
        return Err(PrivacyError::InvalidParameter(format!(
            "ε must be a finite number in [0, 10⁶], got {epsilon}"
        )));
    }
    // Round at the ninth decimal first, so that 0.1 (0.1000000000000000055…) is 100000 µε,
    // not 100001: decimal amounts people type stay exact.
    let micro = (epsilon / MICRO_EPSILON * 1e3).round() / 1e3;
    Ok(round(micro) as i64)
}

/// An exact amount of budget.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash, Serialize, Deserialize,
)]
pub struct BudgetUnits {
    pub epsilon: u64,
    pub delta: u64,
}

impl BudgetUnits {
    /// A cost to charge: rounded up, so the ledger never under-counts.
    pub fn charge_of(cost: PrivacyCost) -> Result<Self, PrivacyError> {
        Self::convert(cost, f64::ceil)
    }

    /// A limit: rounded down, so the platform never over-spends.
    pub fn limit_of(cost: PrivacyCost) -> Result<Self, PrivacyError> {
        Self::convert(cost, f64::floor)
    }

    fn convert(cost: PrivacyCost, round: fn(f64) -> f64) -> Result<Self, PrivacyError> {
        let valid = |v: f64| v.is_finite() && v >= 0.0;
        if !valid(cost.epsilon) || !valid(cost.delta) || cost.delta > 1.0 || cost.epsilon > 1e6 {
            return Err(PrivacyError::InvalidParameter(format!(
                "privacy amounts must be finite, ε in [0, 10⁶] and δ in [0, 1]; got ε={}, δ={}",
                cost.epsilon, cost.delta
            )));
        }
        Ok(BudgetUnits {
            epsilon: round(cost.epsilon / EPSILON_UNIT) as u64,
            delta: round(cost.delta / DELTA_UNIT) as u64,
        })
    }

    pub fn to_cost(self) -> PrivacyCost {
        PrivacyCost {
            epsilon: self.epsilon as f64 * EPSILON_UNIT,
            delta: self.delta as f64 * DELTA_UNIT,
        }
    }

    fn checked_add(self, other: Self) -> Option<Self> {
        Some(BudgetUnits {
            epsilon: self.epsilon.checked_add(other.epsilon)?,
            delta: self.delta.checked_add(other.delta)?,
        })
    }

    fn fits_under(self, limit: Self) -> bool {
        self.epsilon <= limit.epsilon && self.delta <= limit.delta
    }

    fn saturating_sub(self, other: Self) -> Self {
        BudgetUnits {
            epsilon: self.epsilon.saturating_sub(other.epsilon),
            delta: self.delta.saturating_sub(other.delta),
        }
    }
}

/// The budget of one dataset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DatasetBudget {
    /// What each team may spend on this dataset.
    pub per_team: PrivacyCost,
    /// What all teams together may spend on it; `None` = only the per-team limit.
    pub total: Option<PrivacyCost>,
}

/// What a successful charge recorded; `arena` writes it to the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargeReceipt {
    pub team: String,
    pub dataset: String,
    /// The amount recorded (rounded up to whole units).
    pub charged: PrivacyCost,
    /// The team's spend on this dataset after the charge.
    pub team_spent: PrivacyCost,
    /// What the team has left on this dataset.
    pub team_remaining: PrivacyCost,
}

/// The accounting interface. Implementations must make [`BudgetAccountant::charge`] atomic:
/// concurrent charges may never together exceed a limit.
pub trait BudgetAccountant: Send + Sync {
    /// Sets (or replaces) a dataset's budget. Spending so far is kept.
    fn set_budget(&self, dataset: &str, budget: DatasetBudget) -> Result<(), PrivacyError>;

    /// Checks every limit and records the cost, as one atomic step; refuses with
    /// [`PrivacyError::BudgetExceeded`] (recording nothing) if any limit would be passed.
    fn charge(
        &self,
        team: &str,
        dataset: &str,
        cost: PrivacyCost,
    ) -> Result<ChargeReceipt, PrivacyError>;

    /// What `team` has spent on `dataset`.
    fn spent(&self, team: &str, dataset: &str) -> Result<PrivacyCost, PrivacyError>;

    /// What `team` may still spend on `dataset` (the smaller of its own and the total's rest).
    fn remaining(&self, team: &str, dataset: &str) -> Result<PrivacyCost, PrivacyError>;
}

#[derive(Debug, Default)]
struct Ledger {
    budgets: HashMap<String, (BudgetUnits, Option<BudgetUnits>)>,
    team_spent: HashMap<(String, String), BudgetUnits>,
    dataset_spent: HashMap<String, BudgetUnits>,
}

impl Ledger {
    fn limits(&self, dataset: &str) -> Result<(BudgetUnits, Option<BudgetUnits>), PrivacyError> {
        self.budgets
            .get(dataset)
            .copied()
            .ok_or_else(|| PrivacyError::NoBudget(dataset.to_string()))
    }

    fn team_spent(&self, team: &str, dataset: &str) -> BudgetUnits {
        self.team_spent
            .get(&(team.to_string(), dataset.to_string()))
            .copied()
            .unwrap_or_default()
    }

    fn remaining(&self, team: &str, dataset: &str) -> Result<BudgetUnits, PrivacyError> {
        let (per_team, total) = self.limits(dataset)?;
        let mut rest = per_team.saturating_sub(self.team_spent(team, dataset));
        if let Some(total) = total {
            let all =
                total.saturating_sub(self.dataset_spent.get(dataset).copied().unwrap_or_default());
            rest = BudgetUnits {
                epsilon: rest.epsilon.min(all.epsilon),
                delta: rest.delta.min(all.delta),
            };
        }
        Ok(rest)
    }
}

/// The in-memory accountant: one mutex around all balances, so a check-and-charge is one
/// critical section. Used by tests, `medarena run`, and as the model for SQL backends.
#[derive(Debug, Default)]
pub struct InMemoryAccountant {
    ledger: Mutex<Ledger>,
}

impl InMemoryAccountant {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        // A panic elsewhere while holding the lock cannot leave balances half-written (each
        // charge writes after all checks), so a poisoned lock is still consistent.
        self.ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl BudgetAccountant for InMemoryAccountant {
    fn set_budget(&self, dataset: &str, budget: DatasetBudget) -> Result<(), PrivacyError> {
        let per_team = BudgetUnits::limit_of(budget.per_team)?;
        let total = budget.total.map(BudgetUnits::limit_of).transpose()?;
        self.lock()
            .budgets
            .insert(dataset.to_string(), (per_team, total));
        Ok(())
    }

    fn charge(
        &self,
        team: &str,
        dataset: &str,
        cost: PrivacyCost,
    ) -> Result<ChargeReceipt, PrivacyError> {
        let amount = BudgetUnits::charge_of(cost)?;
        let mut ledger = self.lock();
        let (per_team, total) = ledger.limits(dataset)?;
        let team_before = ledger.team_spent(team, dataset);
        let dataset_before = ledger
            .dataset_spent
            .get(dataset)
            .copied()
            .unwrap_or_default();
        let refuse = |remaining: BudgetUnits, scope: &'static str| {
            let remaining = remaining.to_cost();
            PrivacyError::BudgetExceeded {
                team: team.to_string(),
                dataset: dataset.to_string(),
                requested_epsilon: cost.epsilon,
                requested_delta: cost.delta,
                remaining_epsilon: remaining.epsilon,
                remaining_delta: remaining.delta,
                scope,
            }
        };
        let team_after = team_before
            .checked_add(amount)
            .filter(|after| after.fits_under(per_team))
            .ok_or_else(|| {
                refuse(
                    per_team.saturating_sub(team_before),
                    " of the team's budget",
                )
            })?;
        let dataset_after = dataset_before.checked_add(amount);
        if let Some(total) = total
            && !dataset_after.is_some_and(|after| after.fits_under(total))
        {
            return Err(refuse(
                total.saturating_sub(dataset_before),
                " of the dataset's total across all teams",
            ));
        }
        // Every check passed: record both balances.
        ledger
            .team_spent
            .insert((team.to_string(), dataset.to_string()), team_after);
        ledger
            .dataset_spent
            .insert(dataset.to_string(), dataset_after.unwrap_or(dataset_before));
        let team_remaining = ledger.remaining(team, dataset)?.to_cost();
        Ok(ChargeReceipt {
            team: team.to_string(),
            dataset: dataset.to_string(),
            charged: amount.to_cost(),
            team_spent: team_after.to_cost(),
            team_remaining,
        })
    }

    fn spent(&self, team: &str, dataset: &str) -> Result<PrivacyCost, PrivacyError> {
        let ledger = self.lock();
        ledger.limits(dataset)?;
        Ok(ledger.team_spent(team, dataset).to_cost())
    }

    fn remaining(&self, team: &str, dataset: &str) -> Result<PrivacyCost, PrivacyError> {
        Ok(self.lock().remaining(team, dataset)?.to_cost())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accountant(per_team: f64, total: Option<f64>) -> InMemoryAccountant {
        let accountant = InMemoryAccountant::new();
        accountant
            .set_budget(
                "icu",
                DatasetBudget {
                    per_team: PrivacyCost::pure(per_team),
                    total: total.map(PrivacyCost::pure),
                },
            )
            .unwrap();
        accountant
    }

    #[test]
    fn refuses_the_charge_that_would_overspend_and_records_nothing() {
        let a = accountant(1.0, None);
        a.charge("red", "icu", PrivacyCost::pure(0.6)).unwrap();
        let error = a.charge("red", "icu", PrivacyCost::pure(0.5)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("budget exceeded for team `red` on dataset `icu`"),
            "{error}"
        );
        assert!((a.spent("red", "icu").unwrap().epsilon - 0.6).abs() < 1e-12);
        // Exactly the rest still fits.
        a.charge("red", "icu", PrivacyCost::pure(0.4)).unwrap();
        assert_eq!(a.remaining("red", "icu").unwrap().epsilon, 0.0);
    }

    #[test]
    fn micro_epsilon_rounds_charges_up_and_limits_down() {
        assert_eq!(micro_epsilon_charge(0.1).unwrap(), 100_000);
        assert_eq!(micro_epsilon_limit(0.1).unwrap(), 100_000);
        assert_eq!(micro_epsilon_charge(0.2 + 1e-8).unwrap(), 200_001);
        assert_eq!(micro_epsilon_limit(0.2 + 1e-8).unwrap(), 200_000);
        assert_eq!(epsilon_of_micro(250_000), 0.25);
        assert!(micro_epsilon_charge(f64::NAN).is_err());
        assert!(micro_epsilon_charge(-0.1).is_err());
    }

    #[test]
    fn ten_charges_of_a_tenth_fit_exactly() {
        // 0.1 summed ten times in floats is 0.9999999999999999; in units it is exact.
        let a = accountant(1.0, None);
        for _ in 0..10 {
            a.charge("red", "icu", PrivacyCost::pure(0.1)).unwrap();
        }
        assert!(a.charge("red", "icu", PrivacyCost::pure(1e-9)).is_err());
    }

    #[test]
    fn the_dataset_total_binds_across_teams() {
        let a = accountant(1.0, Some(1.5));
        a.charge("red", "icu", PrivacyCost::pure(1.0)).unwrap();
        let error = a.charge("blue", "icu", PrivacyCost::pure(0.8)).unwrap_err();
        assert!(
            error.to_string().contains("total across all teams"),
            "{error}"
        );
        assert!((a.remaining("blue", "icu").unwrap().epsilon - 0.5).abs() < 1e-12);
    }

    #[test]
    fn delta_is_limited_too_and_unknown_datasets_are_refused() {
        let a = accountant(10.0, None);
        let error = a
            .charge(
                "red",
                "icu",
                PrivacyCost {
                    epsilon: 0.1,
                    delta: 1e-6,
                },
            )
            .unwrap_err();
        assert!(matches!(error, PrivacyError::BudgetExceeded { .. }));
        assert!(matches!(
            a.charge("red", "nowhere", PrivacyCost::pure(0.1)),
            Err(PrivacyError::NoBudget(_))
        ));
        assert!(a.charge("red", "icu", PrivacyCost::pure(f64::NAN)).is_err());
    }
}
