//! `/api/v1/contracts` and `/api/v1/statement`: the exchange's contracts and the parties'
//! statements of metered use (thin handlers over [`medarena_arena::Arena`]'s contract
//! operations; the rules live there).

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use medarena_arena::contract::ContractId;
use medarena_arena::{
    CompetitionId, ContractAction, ContractProposal, StatementRequest, Timestamp,
};
use serde::Deserialize;

use crate::AppState;
use crate::api::{ReasonRequest, created, json_of};
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{JsonBody, PathParam, QueryParams};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contracts", get(contracts).post(propose))
        .route("/contracts/{id}", get(contract))
        .route("/contracts/{id}/accept", post(accept))
        .route("/contracts/{id}/suspend", post(suspend))
        .route("/contracts/{id}/resume", post(resume))
        .route("/contracts/{id}/terminate", post(terminate))
        .route("/statement", get(statement))
        .route("/statement.csv", get(statement_csv))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ContractsQuery {
    /// Only this competition's contracts.
    pub competition: Option<i64>,
}

/// `GET /contracts`: the contracts you may see (organizers and auditors all; hospitals and
/// teams those they are party to, and open offers to admitted teams).
async fn contracts(
    State(state): State<AppState>,
    auth: Auth,
    QueryParams(query): QueryParams<ContractsQuery>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .contracts(&auth.actor, query.competition.map(CompetitionId))
            .await?,
    )
}

/// `POST /contracts`: an organizer proposes a contract.
async fn propose(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(body): JsonBody<ContractProposal>,
) -> ApiResult<Response> {
    created(state.arena.propose_contract(&auth.actor, &body).await?)
}

/// `GET /contracts/{id}`: a contract, who is awaited, and its ledgered history.
async fn contract(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    json_of(state.arena.contract(&auth.actor, ContractId(id)).await?)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AcceptContractRequest {
    /// The SHA-256 of the terms you read (`terms_sha256` of the contract).
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub terms_sha256: String,
}

/// `POST /contracts/{id}/accept`: accept the terms as your party.
async fn accept(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
    JsonBody(body): JsonBody<AcceptContractRequest>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .accept_contract(&auth.actor, ContractId(id), &body.terms_sha256)
            .await?,
    )
}

async fn change(
    state: &AppState,
    auth: &Auth,
    id: i64,
    action: ContractAction,
    reason: Option<&str>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .change_contract(&auth.actor, ContractId(id), action, reason)
            .await?,
    )
}

/// `POST /contracts/{id}/suspend`: no new run starts under it until you resume it.
async fn suspend(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
    JsonBody(body): JsonBody<ReasonRequest>,
) -> ApiResult<Response> {
    change(
        &state,
        &auth,
        id,
        ContractAction::Suspend,
        Some(&body.reason),
    )
    .await
}

/// `POST /contracts/{id}/resume`: lift your own suspension.
async fn resume(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    change(&state, &auth, id, ContractAction::Resume, None).await
}

/// `POST /contracts/{id}/terminate`: end it for good.
async fn terminate(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
    JsonBody(body): JsonBody<ReasonRequest>,
) -> ApiResult<Response> {
    change(
        &state,
        &auth,
        id,
        ContractAction::Terminate,
        Some(&body.reason),
    )
    .await
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct StatementQuery {
    /// Only this contract's lines.
    pub contract: Option<i64>,
    /// Lines metered from this instant (RFC 3339) ...
    pub from: Option<DateTime<Utc>>,
    /// ... to this one (exclusive).
    pub to: Option<DateTime<Utc>>,
}

impl StatementQuery {
    fn request(&self) -> StatementRequest {
        StatementRequest {
            contract: self.contract.map(ContractId),
            from: self.from.map(Timestamp::from_datetime),
            to: self.to.map(Timestamp::from_datetime),
        }
    }
}

/// `GET /statement`: your party's metered use and what it comes to, per currency.
async fn statement(
    State(state): State<AppState>,
    auth: Auth,
    QueryParams(query): QueryParams<StatementQuery>,
) -> ApiResult<Response> {
    json_of(state.arena.statement(&auth.actor, query.request()).await?)
}

/// `GET /statement.csv`: the same lines as CSV.
async fn statement_csv(
    State(state): State<AppState>,
    auth: Auth,
    QueryParams(query): QueryParams<StatementQuery>,
) -> ApiResult<Response> {
    let statement = state.arena.statement(&auth.actor, query.request()).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"statement.csv\"",
            ),
        ],
        statement.to_csv(),
    )
        .into_response())
}
