//! Three-party transaction contracts: the data exchange's record that a hospital's data, a
//! team's algorithm and the platform's compute come together for one competition, on stated
//! terms, with every party's explicit acceptance.
//!
//! This module is the pure part (terms, parties, states, the price of a run); the store keeps
//! contracts and their acceptances (`store/sqlite/contracts.rs`), the service proposes,
//! accepts and moves them ([`crate::service::contracts`]), and a real-data run is queued and
//! started only under an active contract that covers it (checked in the reservation's
//! transaction and again when the run starts).
//!
//! A contract's terms are hashed (`terms_sha256`, SHA-256 of their canonical JSON); a party
//! accepts *those* terms by sending the hash back, as a team accepts a data-use agreement,
//! so nobody accepts terms they were not shown.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::bundle::PrivacyLevel;
use crate::ids::{AccountId, CompetitionId, DatasetId, OrgId};
use crate::model::text_enum;
use crate::time::Timestamp;

/// A contract's id.
pub use crate::ids::ContractId;

/// The longest validity window a contract may state.
pub const MAX_VALID_DAYS: u32 = 3650;

/// Prices carry at most this many decimal places (a millionth of a currency unit).
pub const PRICE_SCALE: u32 = 6;

/// The largest price of one unit (guards the arithmetic of statements).
pub const MAX_PRICE: i64 = 1_000_000_000;

text_enum!(
    /// Where a contract stands. Every transition is an audit event, so a ledger entry with
    /// an evidence code.
    ContractState {
        /// Awaiting the acceptance of its required parties.
        Proposed => "proposed",
        /// Every required party accepted: runs it covers may start.
        Active => "active",
        /// A hospital or the platform paused it: no new run starts until that party resumes.
        Suspended => "suspended",
        /// A party ended it: no run starts under it again.
        Terminated => "terminated",
        /// Its validity window ended before it was fulfilled.
        Expired => "expired",
        /// Its competition was published: what it delivers was delivered.
        Fulfilled => "fulfilled",
    }
);

impl ContractState {
    /// A state no transition leaves.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ContractState::Terminated | ContractState::Expired | ContractState::Fulfilled
        )
    }
}

text_enum!(
    /// What leaves the sealed runs under the contract.
    Delivery {
        /// Model submissions' scores, released through the privacy layer.
        ReleasedScores => "released_scores",
        /// Analysis submissions' differentially private aggregates.
        DpAggregates => "dp_aggregates",
    }
);

/// A party to a contract. The platform is the compute provider (an organizer acts for it);
/// an auditor, when named, is the intermediary who witnesses the contract.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Party {
    Platform,
    Hospital { org: OrgId },
    Team { org: OrgId },
    Auditor { account: AccountId },
}

impl Party {
    /// The stored key of an acceptance (`hospital:3`), unique per contract.
    pub fn key(self) -> String {
        match self {
            Party::Platform => "platform".to_owned(),
            Party::Hospital { org } => format!("hospital:{}", org.0),
            Party::Team { org } => format!("team:{}", org.0),
            Party::Auditor { account } => format!("auditor:{}", account.0),
        }
    }

    /// The inverse of [`Party::key`].
    pub fn from_key(key: &str) -> Option<Party> {
        if key == "platform" {
            return Some(Party::Platform);
        }
        let (kind, id) = key.split_once(':')?;
        let id: i64 = id.parse().ok()?;
        match kind {
            "hospital" => Some(Party::Hospital { org: OrgId(id) }),
            "team" => Some(Party::Team { org: OrgId(id) }),
            "auditor" => Some(Party::Auditor {
                account: AccountId(id),
            }),
            _ => None,
        }
    }
}

impl std::fmt::Display for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key())
    }
}

/// The prices of a contract's use, in one currency. Statements multiply them by metered
/// quantities; amounts are exact decimals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Quote {
    /// ISO 4217 code (three capital letters), e.g. `EUR`.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
    /// Per real-data run.
    #[schemars(with = "String", regex(pattern = r"^[0-9]{1,10}(\.[0-9]{1,6})?$"))]
    pub per_run: Decimal,
    /// Per CPU-second of sandbox compute billed (see `PRIVACY.md`: the compute *reserved*
    /// by the run's declared limits, never the time it took on hidden rows).
    #[schemars(with = "String", regex(pattern = r"^[0-9]{1,10}(\.[0-9]{1,6})?$"))]
    pub per_cpu_second: Decimal,
    /// Per unit of ε charged on the hospitals' data.
    #[schemars(with = "String", regex(pattern = r"^[0-9]{1,10}(\.[0-9]{1,6})?$"))]
    pub per_epsilon: Decimal,
}

impl Quote {
    /// The free quote (a consortium that does not bill still meters).
    pub fn free(currency: &str) -> Quote {
        Quote {
            currency: currency.to_owned(),
            per_run: Decimal::ZERO,
            per_cpu_second: Decimal::ZERO,
            per_epsilon: Decimal::ZERO,
        }
    }

    /// Checks the currency code and that every price is non-negative, bounded and given to at
    /// most [`PRICE_SCALE`] decimals; errors name the field (`quote.per_run`).
    pub fn check(&self) -> Result<(), TermsError> {
        if !(self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(TermsError::new(
                "quote.currency",
                format!(
                    "must be an ISO 4217 code of three capital letters, got `{}`",
                    self.currency
                ),
            ));
        }
        for (field, price) in [
            ("quote.per_run", self.per_run),
            ("quote.per_cpu_second", self.per_cpu_second),
            ("quote.per_epsilon", self.per_epsilon),
        ] {
            if price.is_sign_negative() && !price.is_zero() {
                return Err(TermsError::new(
                    field,
                    format!("must not be negative, got {price}"),
                ));
            }
            if price > Decimal::from(MAX_PRICE) {
                return Err(TermsError::new(
                    field,
                    format!("must be at most {MAX_PRICE}"),
                ));
            }
            if price.normalize().scale() > PRICE_SCALE {
                return Err(TermsError::new(
                    field,
                    format!("has more than {PRICE_SCALE} decimals: {price}"),
                ));
            }
        }
        Ok(())
    }

    /// The price of metered use: `runs` runs, `cpu_seconds` CPU-seconds, `epsilon` ε.
    /// Exact; rounded to the currency's cents (half away from zero) only here, at the end.
    pub fn amount(&self, runs: u64, cpu_seconds: u64, micro_epsilon: i64) -> Decimal {
        let epsilon = Decimal::new(micro_epsilon, 6);
        let total = self.per_run * Decimal::from(runs)
            + self.per_cpu_second * Decimal::from(cpu_seconds)
            + self.per_epsilon * epsilon;
        let mut amount =
            total.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        // Always two decimals (`0.00`, `2.50`), as on an invoice.
        amount.rescale(2);
        amount
    }
}

/// What the parties agree to: scope, purposes, delivery, privacy and price, for a window.
/// Serialized canonically (this field order, no whitespace) for [`ContractTerms::sha256`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContractTerms {
    pub competition: CompetitionId,
    /// The datasets the contract lets the competition's runs read (a subset of the
    /// competition's; a run needs a covering contract for each of its datasets).
    pub datasets: Vec<DatasetId>,
    /// `None`: an open offer to every admitted team of the competition, each covered from
    /// its own acceptance; `Some`: one team.
    pub team: Option<OrgId>,
    /// An auditor account witnessing the contract (must accept too).
    pub auditor: Option<AccountId>,
    /// Taken from the datasets' manifests' permitted uses (each must be permitted by all).
    pub purposes: Vec<String>,
    pub delivery: Vec<Delivery>,
    /// The privacy guarantee the competition must give (its level at least this).
    pub min_level: PrivacyLevel,
    /// The most ε one team may spend on each dataset under this contract.
    pub per_team_epsilon: f64,
    pub quote: Quote,
    pub valid_from: Timestamp,
    pub valid_until: Timestamp,
}

impl ContractTerms {
    /// SHA-256 (hex) of the canonical JSON: what each party accepts.
    pub fn sha256(&self) -> String {
        // Serializing a struct of plain fields cannot fail; an empty text would still hash.
        let canonical = serde_json::to_string(self).unwrap_or_default();
        crate::vault::sha256_hex(canonical.as_bytes())
    }

    /// Whether the contract is in force at `now` (its window; the state is checked apart).
    pub fn in_window(&self, now: Timestamp) -> bool {
        self.valid_from <= now && now < self.valid_until
    }
}

/// A bad term, naming its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct TermsError {
    pub field: String,
    pub message: String,
}

impl TermsError {
    pub fn new(field: &str, message: impl Into<String>) -> TermsError {
        TermsError {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// One party's acceptance of a contract's terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContractAcceptance {
    pub party: Party,
    pub accepted_by: AccountId,
    pub accepted_at: Timestamp,
    /// The terms accepted (always the contract's: terms never change once proposed).
    pub terms_sha256: String,
}

/// A contract as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Contract {
    pub id: ContractId,
    pub terms: ContractTerms,
    pub terms_sha256: String,
    pub state: ContractState,
    /// The parties whose acceptance activates it: the platform, every hospital contributing
    /// to its datasets, the named team, the named auditor.
    pub required: Vec<Party>,
    pub acceptances: Vec<ContractAcceptance>,
    /// Who suspended it (only that party resumes it).
    pub suspended_by: Option<Party>,
    /// Why it was suspended or terminated, as the party said.
    pub state_reason: Option<String>,
    pub proposed_by: AccountId,
    pub proposed_at: Timestamp,
    pub state_changed_at: Timestamp,
}

impl Contract {
    pub fn accepted(&self, party: Party) -> bool {
        self.acceptances.iter().any(|a| a.party == party)
    }

    /// The required parties that have not accepted yet.
    pub fn awaiting(&self) -> Vec<Party> {
        self.required
            .iter()
            .copied()
            .filter(|p| !self.accepted(*p))
            .collect()
    }

    /// The hospitals among the required parties.
    pub fn hospitals(&self) -> Vec<OrgId> {
        self.required
            .iter()
            .filter_map(|p| match p {
                Party::Hospital { org } => Some(*org),
                _ => None,
            })
            .collect()
    }

    /// Whether the contract lets `team` run on `dataset` at `now` with `delivery`, as far as
    /// its own record says (the ε cap is checked against the books apart).
    pub fn covers(
        &self,
        team: OrgId,
        dataset: DatasetId,
        delivery: Delivery,
        now: Timestamp,
    ) -> bool {
        self.state == ContractState::Active
            && self.terms.in_window(now)
            && self.terms.datasets.contains(&dataset)
            && self.terms.delivery.contains(&delivery)
            && match self.terms.team {
                Some(named) => named == team,
                None => self.accepted(Party::Team { org: team }),
            }
    }
}

/// One real run's metered use of one dataset under one contract: a line of the parties'
/// statements. The measured fields are the operators': the service strips them for anyone
/// else ([`UsageLine::shared`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UsageLine {
    pub contract: ContractId,
    pub competition: CompetitionId,
    pub team: OrgId,
    pub dataset: DatasetId,
    pub submission: crate::ids::SubmissionId,
    pub job: crate::ids::JobId,
    /// The run's release time (its ledger entries carry the same).
    pub metered_at: Timestamp,
    pub epsilon: f64,
    pub cpu_seconds_billed: u64,
    /// `quote` applied to this line: one run, the CPU-seconds billed, the ε charged.
    #[schemars(with = "String")]
    pub amount: Decimal,
    pub currency: String,
    /// Rows of the dataset the run read (operators).
    pub rows_read: Option<i64>,
    /// CPU time of the run's sandbox children (operators).
    pub cpu_millis_measured: Option<i64>,
    /// Peak resident memory of its sandbox children (operators).
    pub peak_memory_bytes: Option<i64>,
    /// The evidence code of the line's `run_metered` ledger entry, once delivered.
    pub evidence: Option<String>,
}

impl UsageLine {
    /// What a party other than the operators sees: the line as the ledger holds it. Rows
    /// read would tell a hospital the other hospitals' counts; the measured time and memory
    /// follow the hidden rows (a submission can spin to encode them).
    pub fn shared(mut self) -> UsageLine {
        self.rows_read = None;
        self.cpu_millis_measured = None;
        self.peak_memory_bytes = None;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote(per_run: &str, per_cpu: &str, per_eps: &str) -> Quote {
        Quote {
            currency: "EUR".to_owned(),
            per_run: per_run.parse().unwrap(),
            per_cpu_second: per_cpu.parse().unwrap(),
            per_epsilon: per_eps.parse().unwrap(),
        }
    }

    #[test]
    fn amounts_are_exact_and_rounded_once_at_the_end() {
        let q = quote("2.50", "0.000333", "10");
        // 3 runs, 1000 CPU-seconds (0.333), ε = 0.75 (7.5): 7.5 + 0.333 + 7.5 = 15.333.
        assert_eq!(q.amount(3, 1000, 750_000).to_string(), "15.33");
        // Three separate thirds of a cent do not round away: 0.000333 × 3 = 0.000999 → 0.00.
        assert_eq!(
            quote("0", "0.000333", "0").amount(0, 3, 0).to_string(),
            "0.00"
        );
        assert_eq!(quote("0.005", "0", "0").amount(1, 0, 0).to_string(), "0.01");
    }

    #[test]
    fn quotes_are_checked_field_by_field() {
        assert!(quote("2.50", "0.001", "50").check().is_ok());
        let mut bad = quote("1", "0.0000001", "0");
        assert_eq!(bad.check().unwrap_err().field, "quote.per_cpu_second");
        bad = quote("-1", "0", "0");
        assert_eq!(bad.check().unwrap_err().field, "quote.per_run");
        bad = quote("1", "0", "0");
        bad.currency = "eur".to_owned();
        assert_eq!(bad.check().unwrap_err().field, "quote.currency");
    }

    #[test]
    fn party_keys_round_trip() {
        for party in [
            Party::Platform,
            Party::Hospital { org: OrgId(3) },
            Party::Team { org: OrgId(7) },
            Party::Auditor {
                account: AccountId(12),
            },
        ] {
            assert_eq!(Party::from_key(&party.key()), Some(party));
        }
        assert_eq!(Party::from_key("team:x"), None);
        assert_eq!(Party::from_key("owner:1"), None);
    }
}
