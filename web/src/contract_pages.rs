//! Pages of the exchange layer: the contracts a party may see, one contract with its terms,
//! acceptances, history (evidence codes linked to their receipts) and the forms its parties
//! act with, and the party's statement of metered use. Same arena operations as the API.

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use maud::{Markup, html};
use medarena_arena::contract::{Contract, ContractId, ContractState, Party};
use medarena_arena::{ContractAction, ContractView, Statement, StatementRequest};
use serde::Deserialize;

use crate::AppState;
use crate::auth::Auth;
use crate::pages::{PageResult, check_form, layout, page, require_signed_in, see_other, time};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contracts", get(contracts_page))
        .route("/contracts/{id}", get(contract_page))
        .route("/contracts/{id}/act", post(act))
        .route("/statement", get(statement_page))
}

fn party_name(party: &Party) -> String {
    match party {
        Party::Platform => "the platform (compute provider)".to_owned(),
        Party::Hospital { org } => format!("hospital {org}"),
        Party::Team { org } => format!("team {org}"),
        Party::Auditor { account } => format!("auditor {account}"),
    }
}

fn price(contract: &Contract) -> String {
    let q = &contract.terms.quote;
    format!(
        "{} {} per run, {} per CPU-second, {} per ε",
        q.currency, q.per_run, q.per_cpu_second, q.per_epsilon
    )
}

fn contracts_table(contracts: &[Contract]) -> Markup {
    html! {
        table {
            thead { tr { th { "Contract" } th { "State" } th { "Competition" } th { "Team" } th { "Price" } th { "Valid until" } } }
            tbody {
                @for contract in contracts {
                    tr {
                        td { a href={ "/contracts/" (contract.id.0) } { (contract.id) } }
                        td { (contract.state) }
                        td { a href={ "/competitions/" (contract.terms.competition.0) } { (contract.terms.competition) } }
                        td { @match contract.terms.team { Some(team) => (team), None => "open offer to every admitted team" } }
                        td { (price(contract)) }
                        td { (time(contract.terms.valid_until)) }
                    }
                }
            }
        }
    }
}

async fn contracts_page(State(state): State<AppState>, auth: Auth) -> PageResult {
    require_signed_in(&auth)?;
    let contracts = state.arena.contracts(&auth.actor, None).await?;
    page(layout(
        "Contracts",
        &auth,
        html! {
            h1 { "Contracts" }
            p.muted { "A contract lets a competition's real-data runs read a hospital's data: the hospitals, the team "
                "(or each team, for an open offer), the platform and any named auditor accept its terms. "
                "Suspending or ending it stops new runs at once. Every step is on the ledger." }
            @if contracts.is_empty() { p { "No contract you are a party to." } }
            @else { (contracts_table(&contracts)) }
            p { a href="/statement" { "Your statement of metered use" } }
        },
    ))
}

fn history(view: &ContractView) -> Markup {
    html! {
        table {
            thead { tr { th { "When" } th { "Event" } th { "Evidence" } } }
            tbody {
                @for record in &view.history {
                    tr {
                        td { (time(record.at)) }
                        td { (record.event.kind()) }
                        td { @match &record.evidence {
                            Some(code) => a href={ "/api/ledger/receipts/" (code) } { code { (code) } },
                            None => span.muted { "not yet on the ledger" },
                        } }
                    }
                }
            }
        }
    }
}

/// The forms the viewer's party may use on the contract in its state.
fn actions(view: &ContractView, csrf: &str) -> Markup {
    let contract = &view.contract;
    let Some(party) = view.viewer_party else {
        return html! {};
    };
    let open_offer_team = matches!(party, Party::Team { .. }) && contract.terms.team.is_none();
    let can_accept = !contract.accepted(party)
        && (contract.state == ContractState::Proposed
            || (open_offer_team && contract.state == ContractState::Active));
    let hospital_or_platform = matches!(party, Party::Platform | Party::Hospital { .. });
    let can_terminate = !contract.state.is_final()
        && (hospital_or_platform
            || (contract.terms.team.is_some() && matches!(party, Party::Team { .. })));
    let form = |action: &str, label: &str, reason: bool| {
        html! {
            form.contract method="post" action={ "/contracts/" (contract.id.0) "/act" } {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value=(action);
                input type="hidden" name="terms_sha256" value=(contract.terms_sha256);
                @if reason { label { "Reason (shown to the other parties and on the ledger)" input type="text" name="reason" required maxlength="500"; } }
                button type="submit" { (label) }
            }
        }
    };
    html! {
        h2 { "Your part, as " (party_name(&party)) }
        @if can_accept { (form("accept", "Accept these terms", false)) }
        @if contract.state == ContractState::Active && hospital_or_platform { (form("suspend", "Suspend", true)) }
        @if contract.state == ContractState::Suspended && contract.suspended_by == Some(party) { (form("resume", "Resume", false)) }
        @if can_terminate { (form("terminate", "Terminate", true)) }
    }
}

async fn contract_page(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> PageResult {
    require_signed_in(&auth)?;
    let view = state.arena.contract(&auth.actor, ContractId(id)).await?;
    let contract = &view.contract;
    let terms = &contract.terms;
    let csrf = auth.csrf().unwrap_or_default();
    page(layout(
        &format!("Contract {}", contract.id.0),
        &auth,
        html! {
            h1 { "Contract " (contract.id.0) " — " (contract.state) }
            @if let Some(reason) = &contract.state_reason { p.error.suspended { (contract.state) ": " (reason) } }
            dl {
                dt { "Competition" } dd { a href={ "/competitions/" (terms.competition.0) } { (terms.competition) } }
                dt { "Datasets" } dd { @for dataset in &terms.datasets { a href={ "/datasets/" (dataset.0) } { (dataset) } " " } }
                dt { "Team" } dd { @match terms.team { Some(team) => (team), None => "every admitted team that accepts (open offer)" } }
                dt { "Purposes" } dd { ul { @for purpose in &terms.purposes { li { (purpose) } } } }
                dt { "Delivery" } dd { @for d in &terms.delivery { (d.as_str()) " " } }
                dt { "Privacy" } dd { "at least the " (terms.min_level.as_str()) " level; ε ≤ " (terms.per_team_epsilon) " per team and dataset" }
                dt { "Price" } dd { (price(contract)) }
                dt { "Valid" } dd { (time(terms.valid_from)) " to " (time(terms.valid_until)) }
                dt { "Terms SHA-256" } dd { code { (contract.terms_sha256) } }
            }
            h2 { "Parties" }
            table {
                thead { tr { th { "Party" } th { "Accepted" } } }
                tbody {
                    @for party in &contract.required {
                        tr {
                            td { (party_name(party)) }
                            td { @match contract.acceptances.iter().find(|a| a.party == *party) {
                                Some(a) => (time(a.accepted_at)),
                                None => span.muted { "awaited" },
                            } }
                        }
                    }
                    @for acceptance in contract.acceptances.iter().filter(|a| !contract.required.contains(&a.party)) {
                        tr { td { (party_name(&acceptance.party)) " (open offer)" } td { (time(acceptance.accepted_at)) } }
                    }
                }
            }
            (actions(&view, &csrf))
            h2 { "History" }
            (history(&view))
            p { a href={ "/statement?contract=" (contract.id.0) } { "Metered use under this contract" } }
        },
    ))
}

#[derive(Debug, Deserialize)]
struct ActForm {
    csrf: String,
    action: String,
    terms_sha256: String,
    #[serde(default)]
    reason: Option<String>,
}

/// A party accepts, suspends, resumes or terminates a contract.
async fn act(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Form(form): Form<ActForm>,
) -> PageResult {
    check_form(&auth, &form.csrf)?;
    let id = ContractId(id);
    let action = match form.action.as_str() {
        "accept" => {
            state
                .arena
                .accept_contract(&auth.actor, id, &form.terms_sha256)
                .await?;
            return see_other(&format!("/contracts/{}", id.0));
        }
        "suspend" => ContractAction::Suspend,
        "resume" => ContractAction::Resume,
        "terminate" => ContractAction::Terminate,
        other => {
            return Err(crate::error::ApiError::BadRequest {
                what: "action".to_owned(),
                why: format!("`{other}` is not accept, suspend, resume or terminate"),
            }
            .into());
        }
    };
    state
        .arena
        .change_contract(&auth.actor, id, action, form.reason.as_deref())
        .await?;
    see_other(&format!("/contracts/{}", id.0))
}

#[derive(Debug, Deserialize)]
struct StatementParams {
    contract: Option<i64>,
}

fn statement_table(statement: &Statement) -> Markup {
    let operator = statement.party == "platform";
    html! {
        table {
            thead { tr {
                th { "Released" } th { "Contract" } th { "Team" } th { "Dataset" } th { "Job" }
                th { "ε" } th { "CPU-s billed" } th { "Amount" }
                @if operator { th { "CPU measured" } th { "Peak memory" } th { "Rows read" } }
                th { "Evidence" }
            } }
            tbody {
                @for line in &statement.lines {
                    tr {
                        td { (time(line.metered_at)) }
                        td { a href={ "/contracts/" (line.contract.0) } { (line.contract) } }
                        td { (line.team) } td { (line.dataset) } td { (line.job) }
                        td { (line.epsilon) } td { (line.cpu_seconds_billed) }
                        td { (line.amount) " " (line.currency) }
                        @if operator {
                            td { @if let Some(ms) = line.cpu_millis_measured { (format!("{:.1} s", ms as f64 / 1000.0)) } }
                            td { @if let Some(bytes) = line.peak_memory_bytes { (format!("{:.0} MiB", bytes as f64 / 1_048_576.0)) } }
                            td { @if let Some(rows) = line.rows_read { (rows) } }
                        }
                        td { @match &line.evidence {
                            Some(code) => a href={ "/api/ledger/receipts/" (code) } { "receipt" },
                            None => span.muted { "pending" },
                        } }
                    }
                }
            }
        }
        h2 { "Totals" }
        ul { @for total in &statement.totals {
            li { (total.amount) " " (total.currency) " for " (total.runs) " run(s), ε = " (format!("{:.3}", total.epsilon)) ", " (total.cpu_seconds_billed) " CPU-seconds billed" }
        } }
    }
}

async fn statement_page(
    State(state): State<AppState>,
    auth: Auth,
    Query(params): Query<StatementParams>,
) -> PageResult {
    require_signed_in(&auth)?;
    let request = StatementRequest {
        contract: params.contract.map(ContractId),
        ..StatementRequest::default()
    };
    let statement = state.arena.statement(&auth.actor, request).await?;
    let query = params
        .contract
        .map(|c| format!("?contract={c}"))
        .unwrap_or_default();
    page(layout(
        "Statement",
        &auth,
        html! {
            h1 { "Statement of metered use" }
            p.muted { "One line per real-data run and dataset, as the ledger holds it, from the run's release time. "
                "Compute is billed as the CPU-seconds a run's declared limits reserve, never the time it took: "
                "that time follows the hidden rows. Check it with "
                code { "medarena ledger verify --statement FILE --url SERVER" } "." }
            p { "Party: " (statement.party) " · generated " (time(statement.generated_at))
                " · download " a href={ "/api/v1/statement" (query) } { "JSON" } " or " a href={ "/api/v1/statement.csv" (query) } { "CSV" } }
            @if statement.lines.is_empty() { p { "Nothing metered yet." } }
            @else { (statement_table(&statement)) }
        },
    ))
}
