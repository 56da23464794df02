//! Contracts between the data exchange's three parties, and the statements of their metered
//! use (see [`crate::contract`] for the terms and states).
//!
//! An organizer proposes a contract for a competition; the platform (an organizer), every
//! hospital contributing to its datasets, its team (or, for an open offer, each team for
//! itself) and its named auditor accept the terms by their SHA-256. A real-data run is queued
//! only under an active contract that covers each of its datasets (checked with the ε
//! reservation, in one transaction) and starts only while that contract is still active.

use serde::{Deserialize, Serialize};

use super::{Arena, clean_line, clean_text};
use crate::audit::AuditEvent;
use crate::authz::{Action, Actor, Denial, Resource, authorize};
use crate::bundle::PrivacyLevel;
use crate::contract::{
    Contract, ContractId, ContractState, ContractTerms, Delivery, MAX_VALID_DAYS, Party, Quote,
    UsageLine,
};
use crate::error::{ArenaError, ArenaResult};
use crate::ids::{AccountId, CompetitionId, DatasetId, OrgId};
use crate::model::{AdmissionState, OrgKind, Role};
use crate::store::{AcceptContract, NewContract, UsageQuery};
use crate::time::Timestamp;

/// Days a contract runs when the proposal does not say.
pub const DEFAULT_VALID_DAYS: u32 = 365;

/// The most ε per team a contract may allow on one dataset.
const MAX_CONTRACT_EPSILON: f64 = 1000.0;

/// What an organizer proposes. Omitted terms default to the competition's own: all its
/// datasets, every purpose all their manifests permit, both deliveries, its privacy level
/// and budget per team, a free quote in EUR, a year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractProposal {
    pub competition: CompetitionId,
    #[serde(default)]
    pub datasets: Vec<DatasetId>,
    /// One team; omitted: an open offer to every team admitted to real data.
    #[serde(default)]
    pub team: Option<OrgId>,
    /// An auditor account that witnesses the contract (and must accept it).
    #[serde(default)]
    pub auditor: Option<AccountId>,
    #[serde(default)]
    pub purposes: Vec<String>,
    #[serde(default)]
    pub delivery: Vec<Delivery>,
    #[serde(default)]
    pub min_level: Option<PrivacyLevel>,
    #[serde(default)]
    pub per_team_epsilon: Option<f64>,
    #[serde(default)]
    pub quote: Option<Quote>,
    #[serde(default)]
    #[schemars(range(min = 1, max = 3650))]
    pub valid_days: Option<u32>,
}

/// A contract with its ledgered history (evidence codes once delivered).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ContractView {
    #[serde(flatten)]
    pub contract: Contract,
    /// The parties whose acceptance is still awaited.
    pub awaiting: Vec<Party>,
    /// Who the viewer is in this contract, if a party.
    pub viewer_party: Option<Party>,
    pub history: Vec<crate::audit::AuditRecord>,
}

/// What a party does to a contract besides accepting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContractAction {
    /// Pause it (hospitals, the platform): no new run starts under it.
    Suspend,
    /// Lift one's own suspension.
    Resume,
    /// End it for good.
    Terminate,
}

/// Which statement to build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatementRequest {
    pub contract: Option<ContractId>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

/// A party's statement of metered use over a period: its lines as the ledger holds them
/// (operators also see the measured figures) and the totals per currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Statement {
    /// `platform`, `auditor`, `hospital:N` or `team:N`.
    pub party: String,
    pub contract: Option<ContractId>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub generated_at: Timestamp,
    pub lines: Vec<UsageLine>,
    pub totals: Vec<StatementTotal>,
}

/// The sum of a statement's lines in one currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StatementTotal {
    pub currency: String,
    pub runs: u64,
    pub epsilon: f64,
    pub cpu_seconds_billed: u64,
    #[schemars(with = "String")]
    pub amount: rust_decimal::Decimal,
}

impl Statement {
    /// The lines as CSV (a header and one row per line). Every field is an id, a number, a
    /// time, a currency code or an evidence code, none of which holds a comma or a quote,
    /// so no quoting is needed (why this is not the `csv` crate).
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "metered_at,contract,competition,team,dataset,submission,job,epsilon,\
             cpu_seconds_billed,amount,currency,rows_read,cpu_millis_measured,\
             peak_memory_bytes,evidence\n",
        );
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        for line in &self.lines {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                line.metered_at.to_rfc3339(),
                line.contract.0,
                line.competition.0,
                line.team.0,
                line.dataset.0,
                line.submission.0,
                line.job.0,
                line.epsilon,
                line.cpu_seconds_billed,
                line.amount,
                line.currency,
                opt(line.rows_read),
                opt(line.cpu_millis_measured),
                opt(line.peak_memory_bytes),
                line.evidence.as_deref().unwrap_or_default(),
            ));
        }
        out
    }
}

/// Sums lines per currency, in order of first appearance.
pub fn statement_totals(lines: &[UsageLine]) -> Vec<StatementTotal> {
    let mut totals: Vec<StatementTotal> = Vec::new();
    for line in lines {
        let index = match totals.iter().position(|t| t.currency == line.currency) {
            Some(index) => index,
            None => {
                totals.push(StatementTotal {
                    currency: line.currency.clone(),
                    runs: 0,
                    epsilon: 0.0,
                    cpu_seconds_billed: 0,
                    amount: rust_decimal::Decimal::ZERO,
                });
                totals.len() - 1
            }
        };
        let total = &mut totals[index];
        total.runs += 1;
        total.epsilon += line.epsilon;
        total.cpu_seconds_billed = total
            .cpu_seconds_billed
            .saturating_add(line.cpu_seconds_billed);
        total.amount += line.amount;
    }
    totals
}

/// Authorizes `action` on `contract`, given its parties.
fn authorize_contract(actor: &Actor, action: Action, contract: &Contract) -> Result<(), Denial> {
    let hospitals = contract.hospitals();
    authorize(
        actor,
        action,
        Resource::Contract {
            hospitals: &hospitals,
            team: contract.terms.team,
            auditor: contract.terms.auditor,
        },
    )
}

/// Who `actor` is in `contract`, if one of its parties.
fn party_of(actor: &Actor, contract: &Contract) -> Option<Party> {
    let principal = actor.principal()?;
    match principal.role {
        Role::Organizer => Some(Party::Platform),
        Role::Auditor => {
            let me = principal.account;
            (contract.terms.auditor == Some(me)).then_some(Party::Auditor { account: me })
        }
        Role::Hospital => {
            let org = actor.approved_org()?.org;
            contract
                .hospitals()
                .contains(&org)
                .then_some(Party::Hospital { org })
        }
        Role::TeamMember => {
            let org = actor.approved_org()?.org;
            contract
                .terms
                .team
                .is_none_or(|team| team == org)
                .then_some(Party::Team { org })
        }
    }
}

impl ContractProposal {
    /// An open offer on the competition's own terms (every field defaulted).
    pub fn open_offer(competition: CompetitionId) -> ContractProposal {
        ContractProposal {
            competition,
            datasets: Vec::new(),
            team: None,
            auditor: None,
            purposes: Vec::new(),
            delivery: Vec::new(),
            min_level: None,
            per_team_epsilon: None,
            quote: None,
            valid_days: None,
        }
    }
}

impl Arena {
    /// Proposes a contract (organizers). Errors name the term (`purposes[1]`, `quote.currency`).
    /// Records `contract_proposed`.
    pub async fn propose_contract(
        &self,
        actor: &Actor,
        proposal: &ContractProposal,
    ) -> ArenaResult<Contract> {
        authorize(actor, Action::ProposeContract, Resource::Platform)?;
        let competition = self.load_competition(proposal.competition).await?;
        if competition.published_at.is_some() {
            return Err(ArenaError::Precondition(format!(
                "competition `{}` is published: nothing is left to contract",
                competition.slug
            )));
        }
        let mut datasets = if proposal.datasets.is_empty() {
            competition.datasets.clone()
        } else {
            proposal.datasets.clone()
        };
        for (index, dataset) in datasets.iter().enumerate() {
            if !competition.datasets.contains(dataset) {
                return Err(ArenaError::invalid(
                    format!("datasets[{index}]"),
                    format!("{dataset} is not a dataset of `{}`", competition.slug),
                ));
            }
        }
        datasets.sort();
        datasets.dedup();
        // The parties and the purposes every dataset's manifests permit.
        let mut hospitals = Vec::new();
        let mut permitted: Option<Vec<String>> = None;
        for dataset in &datasets {
            let slug = self.load_dataset(*dataset).await?.slug;
            for contribution in self.inner.store.contributions(*dataset).await? {
                if !contribution.usable() {
                    continue;
                }
                hospitals.push(contribution.hospital);
                // A manifest the spec cannot read states no permitted use; the hospital's
                // own acceptance of the named purposes is then the only check.
                let Some(Ok(manifest)) = contribution
                    .manifest
                    .as_deref()
                    .map(medarena_datasets_spec::Manifest::from_str)
                else {
                    tracing::warn!(
                        contribution = contribution.id.0,
                        dataset = %slug,
                        "no readable manifest: its permitted uses are not checked"
                    );
                    continue;
                };
                let purposes = manifest.permitted_uses.purposes;
                permitted = Some(match permitted {
                    None => purposes,
                    Some(before) => before
                        .into_iter()
                        .filter(|p| purposes.contains(p))
                        .collect(),
                });
            }
        }
        hospitals.sort();
        hospitals.dedup();
        if hospitals.is_empty() {
            return Err(ArenaError::Precondition(
                "the datasets have no validated contribution: no hospital to contract with"
                    .to_owned(),
            ));
        }
        let purposes = match &permitted {
            None if proposal.purposes.is_empty() => {
                return Err(ArenaError::invalid(
                    "purposes",
                    "the datasets' manifests state no permitted use: name the purposes",
                ));
            }
            None => proposal
                .purposes
                .iter()
                .enumerate()
                .map(|(index, p)| clean_text(&format!("purposes[{index}]"), p, 500))
                .collect::<ArenaResult<Vec<_>>>()?,
            Some(permitted) if proposal.purposes.is_empty() => permitted.clone(),
            Some(permitted) => {
                let mut purposes = Vec::with_capacity(proposal.purposes.len());
                for (index, purpose) in proposal.purposes.iter().enumerate() {
                    let field = format!("purposes[{index}]");
                    let purpose = clean_text(&field, purpose, 500)?;
                    if !permitted.contains(&purpose) {
                        return Err(ArenaError::invalid(
                            field,
                            format!(
                                "`{purpose}` is not a use every dataset's manifest permits (they \
                             permit: {})",
                                permitted.join("; ")
                            ),
                        ));
                    }
                    purposes.push(purpose);
                }
                purposes
            }
        };
        if purposes.is_empty() {
            return Err(ArenaError::Precondition(
                "the datasets' manifests permit no common purpose".to_owned(),
            ));
        }
        let mut delivery = if proposal.delivery.is_empty() {
            vec![Delivery::ReleasedScores, Delivery::DpAggregates]
        } else {
            proposal.delivery.clone()
        };
        delivery.sort();
        delivery.dedup();
        let level = competition.bundle.privacy.level;
        let min_level = proposal.min_level.unwrap_or(level);
        if level < min_level {
            return Err(ArenaError::invalid(
                "min_level",
                format!(
                    "the competition gives the `{}` level, below `{}`",
                    level.as_str(),
                    min_level.as_str()
                ),
            ));
        }
        let per_team_epsilon = proposal
            .per_team_epsilon
            .unwrap_or(competition.bundle.privacy.budget_per_team_per_dataset);
        if !(per_team_epsilon.is_finite()
            && per_team_epsilon > 0.0
            && per_team_epsilon <= MAX_CONTRACT_EPSILON)
        {
            return Err(ArenaError::invalid(
                "per_team_epsilon",
                format!(
                    "must be above 0 and at most {MAX_CONTRACT_EPSILON}, got {per_team_epsilon}"
                ),
            ));
        }
        let quote = proposal.quote.clone().unwrap_or_else(|| Quote::free("EUR"));
        quote
            .check()
            .map_err(|err| ArenaError::invalid(err.field, err.message))?;
        let days = proposal.valid_days.unwrap_or(DEFAULT_VALID_DAYS);
        if !(1..=MAX_VALID_DAYS).contains(&days) {
            return Err(ArenaError::invalid(
                "valid_days",
                format!("must be 1 to {MAX_VALID_DAYS}, got {days}"),
            ));
        }
        if let Some(team) = proposal.team {
            let org = self.inner.store.org(team).await?;
            if !org
                .is_some_and(|o| o.kind == OrgKind::Team && o.admission == AdmissionState::Approved)
            {
                return Err(ArenaError::invalid(
                    "team",
                    format!("{team} is not an admitted team"),
                ));
            }
        }
        if let Some(auditor) = proposal.auditor {
            let account = self.inner.store.account(auditor).await?;
            if !account.is_some_and(|a| a.role == Role::Auditor && !a.disabled) {
                return Err(ArenaError::invalid(
                    "auditor",
                    format!("{auditor} is not an auditor's account"),
                ));
            }
        }
        let now = self.now();
        let terms = ContractTerms {
            competition: competition.id,
            datasets,
            team: proposal.team,
            auditor: proposal.auditor,
            purposes,
            delivery,
            min_level,
            per_team_epsilon,
            quote,
            valid_from: now,
            valid_until: now.plus(std::time::Duration::from_secs(u64::from(days) * 86_400)),
        };
        let mut required = vec![Party::Platform];
        required.extend(hospitals.iter().map(|&org| Party::Hospital { org }));
        required.extend(terms.team.map(|org| Party::Team { org }));
        required.extend(terms.auditor.map(|account| Party::Auditor { account }));
        let contract = self
            .inner
            .store
            .insert_contract(
                self.stamp(actor),
                &NewContract {
                    terms_sha256: terms.sha256(),
                    terms,
                    required,
                },
            )
            .await?;
        self.deliver_audit_events().await;
        Ok(contract)
    }

    async fn load_contract(&self, id: ContractId) -> ArenaResult<Contract> {
        self.inner
            .store
            .contract(id)
            .await?
            .ok_or_else(|| ArenaError::NotFound(id.to_string()))
    }

    /// Ends the contracts whose window closed (the clock has no other hook).
    async fn expire_contracts(&self) -> ArenaResult<()> {
        if self.inner.store.expire_contracts(self.now()).await? > 0 {
            self.deliver_audit_events().await;
        }
        Ok(())
    }

    /// The contracts `actor` may see, newest first (of one competition when given).
    pub async fn contracts(
        &self,
        actor: &Actor,
        competition: Option<CompetitionId>,
    ) -> ArenaResult<Vec<Contract>> {
        if actor.principal().is_none() {
            return Err(ArenaError::Unauthenticated);
        }
        self.expire_contracts().await?;
        let contracts = self.inner.store.contracts(competition).await?;
        Ok(contracts
            .into_iter()
            .filter(|c| authorize_contract(actor, Action::ViewContract, c).is_ok())
            .collect())
    }

    /// A contract as it stands now (its window checked), if `actor` may do `action` on it.
    async fn current_contract(
        &self,
        actor: &Actor,
        id: ContractId,
        action: Action,
    ) -> ArenaResult<Contract> {
        self.expire_contracts().await?;
        let contract = self.load_contract(id).await?;
        authorize_contract(actor, action, &contract)?;
        Ok(contract)
    }

    /// One contract with its history.
    pub async fn contract(&self, actor: &Actor, id: ContractId) -> ArenaResult<ContractView> {
        let contract = self
            .current_contract(actor, id, Action::ViewContract)
            .await?;
        // Metered runs are stamped with their release time: nobody but organizers sees one
        // before it (nor any event's outbox id).
        let history =
            self.visible_events(actor, self.inner.store.events_about(&id.to_string()).await?);
        Ok(ContractView {
            awaiting: contract.awaiting(),
            viewer_party: party_of(actor, &contract),
            contract,
            history,
        })
    }

    /// Accepts a contract's terms as the actor's party; `terms_sha256` must be the terms the
    /// actor was shown. Records `contract_accepted` (and the activation when it was the last).
    pub async fn accept_contract(
        &self,
        actor: &Actor,
        id: ContractId,
        terms_sha256: &str,
    ) -> ArenaResult<Contract> {
        let contract = self
            .current_contract(actor, id, Action::AcceptContract)
            .await?;
        let party = party_of(actor, &contract)
            .ok_or_else(|| ArenaError::Forbidden(format!("you are not a party to {id}")))?;
        if terms_sha256 != contract.terms_sha256 {
            return Err(ArenaError::Conflict(format!(
                "the terms of {id} are {}, not the {terms_sha256} you accepted: read them again",
                contract.terms_sha256
            )));
        }
        let accepted = match self
            .inner
            .store
            .accept_contract(self.stamp(actor), id, party)
            .await?
        {
            AcceptContract::Accepted(contract) => *contract,
            AcceptContract::AlreadyAccepted => {
                return Err(ArenaError::Conflict(format!(
                    "{party} has already accepted {id}"
                )));
            }
            AcceptContract::Closed(state) => {
                return Err(ArenaError::Precondition(format!(
                    "{id} is {state}: it takes no acceptance"
                )));
            }
        };
        self.deliver_audit_events().await;
        Ok(accepted)
    }

    /// Suspends, resumes or terminates a contract as the actor's party. A suspension is
    /// lifted only by the party that made it. Records `contract_state_changed`.
    pub async fn change_contract(
        &self,
        actor: &Actor,
        id: ContractId,
        action: ContractAction,
        reason: Option<&str>,
    ) -> ArenaResult<Contract> {
        let needed = match action {
            ContractAction::Suspend | ContractAction::Resume => Action::SuspendContract,
            ContractAction::Terminate => Action::TerminateContract,
        };
        let contract = self.current_contract(actor, id, needed).await?;
        let party = party_of(actor, &contract)
            .ok_or_else(|| ArenaError::Forbidden(format!("you are not a party to {id}")))?;
        let reason = match (action, reason) {
            (ContractAction::Resume, _) => None,
            (_, Some(reason)) => Some(clean_line("reason", reason, 500)?),
            (_, None) => {
                return Err(ArenaError::invalid(
                    "reason",
                    "is required to suspend or terminate a contract",
                ));
            }
        };
        let (from, to): (&[ContractState], ContractState) = match action {
            ContractAction::Suspend => (&[ContractState::Active], ContractState::Suspended),
            ContractAction::Resume => {
                if contract.state == ContractState::Suspended
                    && contract.suspended_by != Some(party)
                {
                    return Err(ArenaError::Forbidden(format!(
                        "{id} was suspended by {}: only that party resumes it",
                        contract
                            .suspended_by
                            .map_or_else(|| "another party".to_owned(), |p| p.key())
                    )));
                }
                (&[ContractState::Suspended], ContractState::Active)
            }
            ContractAction::Terminate => (
                &[
                    ContractState::Proposed,
                    ContractState::Active,
                    ContractState::Suspended,
                ],
                ContractState::Terminated,
            ),
        };
        let changed = self
            .inner
            .store
            .set_contract_state(
                self.stamp(actor),
                id,
                from,
                to,
                Some(party),
                reason.as_deref(),
            )
            .await?
            .ok_or_else(|| {
                ArenaError::Precondition(format!(
                    "{id} is {}: it cannot be moved to {to}",
                    contract.state
                ))
            })?;
        self.deliver_audit_events().await;
        Ok(changed)
    }

    /// The actor's statement: organizers (the platform) and auditors every line, a
    /// hospital the lines on its datasets, a team its own; lines appear at their run's
    /// release time for everyone but organizers, who alone see the measured figures.
    pub async fn statement(
        &self,
        actor: &Actor,
        request: StatementRequest,
    ) -> ArenaResult<Statement> {
        authorize(actor, Action::ViewStatement, Resource::Platform)?;
        if let (Some(from), Some(to)) = (request.from, request.to)
            && to <= from
        {
            return Err(ArenaError::invalid("to", "must be after `from`"));
        }
        if let Some(id) = request.contract {
            // Only a contract the actor may see.
            self.current_contract(actor, id, Action::ViewContract)
                .await?;
        }
        let role = actor.role();
        let org = actor.approved_org().map(|m| m.org);
        let (party, query) = match (role, org) {
            (Some(Role::Organizer), _) => ("platform".to_owned(), UsageQuery::default()),
            (Some(Role::Auditor), _) => ("auditor".to_owned(), UsageQuery::default()),
            (Some(Role::Hospital), Some(org)) => (
                Party::Hospital { org }.key(),
                UsageQuery {
                    hospital: Some(org),
                    ..UsageQuery::default()
                },
            ),
            (Some(Role::TeamMember), Some(org)) => (
                Party::Team { org }.key(),
                UsageQuery {
                    team: Some(org),
                    ..UsageQuery::default()
                },
            ),
            _ => {
                return Err(ArenaError::Forbidden(
                    "statements are for the parties to contracts".to_owned(),
                ));
            }
        };
        let query = UsageQuery {
            contract: request.contract,
            from: request.from,
            to: request.to,
            ..query
        };
        let now = self.now();
        let operator = role == Some(Role::Organizer);
        let mut lines: Vec<UsageLine> = self
            .inner
            .store
            .usage(&query)
            .await?
            .into_iter()
            .filter(|line| operator || line.metered_at <= now)
            .map(|line| if operator { line } else { line.shared() })
            .collect();
        self.attach_evidence(&mut lines).await?;
        Ok(Statement {
            party,
            contract: request.contract,
            from: request.from,
            to: request.to,
            generated_at: now,
            totals: statement_totals(&lines),
            lines,
        })
    }

    /// Fills each line's evidence code from its contract's `run_metered` events.
    async fn attach_evidence(&self, lines: &mut [UsageLine]) -> ArenaResult<()> {
        let mut contracts: Vec<ContractId> = lines.iter().map(|l| l.contract).collect();
        contracts.sort();
        contracts.dedup();
        for contract in contracts {
            for record in self.inner.store.events_about(&contract.to_string()).await? {
                if let AuditEvent::RunMetered { job, dataset, .. } = record.event {
                    for line in lines
                        .iter_mut()
                        .filter(|l| l.contract == contract && l.job == job && l.dataset == dataset)
                    {
                        line.evidence.clone_from(&record.evidence);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_per_currency() {
        let line = |currency: &str, amount: &str| UsageLine {
            contract: ContractId(1),
            competition: CompetitionId(1),
            team: OrgId(2),
            dataset: DatasetId(3),
            submission: crate::ids::SubmissionId(4),
            job: crate::ids::JobId(5),
            metered_at: Timestamp(0),
            epsilon: 0.25,
            cpu_seconds_billed: 100,
            amount: amount.parse().unwrap(),
            currency: currency.to_owned(),
            rows_read: None,
            cpu_millis_measured: None,
            peak_memory_bytes: None,
            evidence: None,
        };
        let totals =
            statement_totals(&[line("EUR", "1.10"), line("CHF", "2"), line("EUR", "0.25")]);
        assert_eq!(totals.len(), 2);
        assert_eq!((totals[0].currency.as_str(), totals[0].runs), ("EUR", 2));
        assert_eq!(totals[0].amount.to_string(), "1.35");
        assert_eq!(totals[0].cpu_seconds_billed, 200);
        assert!((totals[0].epsilon - 0.5).abs() < 1e-12);
        assert_eq!(totals[1].amount.to_string(), "2");
    }
}
