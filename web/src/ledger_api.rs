//! The ledger's public endpoints, what `medarena ledger verify --url` and any
//! transparency-log tool read: the verifier key, the latest signed checkpoint (C2SP
//! signed-note text), receipts by evidence code, consistency proofs and entries.
//! Everyone may read them (the role matrix's `ViewLedger`).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use medarena_ledger::{EvidenceCode, EvidenceCodeError, LedgerError, Receipt};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{PathParam, QueryParams};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/key", get(key))
        .route("/checkpoint", get(checkpoint))
        .route("/receipts/{code}", get(receipt))
        .route("/consistency", get(consistency))
        .route("/entries", get(entries))
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn ledger_error(err: LedgerError) -> ApiError {
    match err {
        LedgerError::UnknownEvidence(code) => ApiError::NotFound(format!("evidence code {code}")),
        // A range the ledger has no proof for (old size above the new one, or beyond the
        // log): nothing to return, said plainly.
        LedgerError::Proof(err) => ApiError::NotFound(format!("no such proof: {err}")),
        other => ApiError::bad_request("ledger request", other),
    }
}

/// `GET /api/ledger/key`: the verifier key (`name+hash+base64`).
pub async fn key(State(state): State<AppState>) -> Response {
    text(state.ledger.read(|l| format!("{}\n", l.verifier_key())))
}

/// `GET /api/ledger/checkpoint`: the latest signed checkpoint.
pub async fn checkpoint(State(state): State<AppState>) -> Response {
    text(state.ledger.read(|l| l.checkpoint().text().to_owned()))
}

/// The receipt of an evidence code (for the API and the ledger explorer page).
pub fn receipt_for(state: &AppState, code: &str) -> ApiResult<Receipt> {
    let code = EvidenceCode::parse(code.trim()).map_err(|err| match err {
        // Well-formed but mistyped: no receipt has this code.
        EvidenceCodeError::Check { .. } => ApiError::NotFound(err.to_string()),
        _ => ApiError::bad_request("evidence code", err),
    })?;
    let found = state.ledger.read(|l| l.receipt_for(&code));
    match found {
        // A server following another's writes (a deployment on PostgreSQL) may not have
        // read the newest entries yet: catch up once before saying no.
        Err(medarena_ledger::LedgerError::UnknownEvidence(_))
            if !state.ledger.read(|l| l.writable()) =>
        {
            state.ledger.update(|l| l.refresh()).map_err(ledger_error)?;
            state.ledger.read(|l| l.receipt_for(&code))
        }
        other => other,
    }
    .map_err(ledger_error)
}

/// `GET /api/ledger/receipts/{code}`.
pub async fn receipt(
    State(state): State<AppState>,
    PathParam(code): PathParam<String>,
) -> ApiResult<Json<Receipt>> {
    receipt_for(&state, &code).map(Json)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ConsistencyQuery {
    pub from: u64,
    pub to: u64,
}

/// `GET /api/ledger/consistency?from=A&to=B`.
pub async fn consistency(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ConsistencyQuery>,
) -> ApiResult<Response> {
    let proof = state
        .ledger
        .read(|l| l.consistency_proof(query.from, query.to))
        .map_err(ledger_error)?;
    Ok(Json(proof).into_response())
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EntriesQuery {
    #[serde(default)]
    pub from: Option<u64>,
    #[serde(default)]
    pub limit: Option<u64>,
}

/// `GET /api/ledger/entries?from=&limit=`: canonical entries (newest last), at most 100.
pub async fn entries(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<EntriesQuery>,
) -> ApiResult<Response> {
    let limit = query.limit.unwrap_or(50).clamp(1, 100);
    let (size, entries) = state.ledger.read(|l| {
        let size = l.len();
        let from = query.from.unwrap_or(size.saturating_sub(limit)).min(size);
        let to = from.saturating_add(limit).min(size);
        (size, l.entries(from, to))
    });
    let entries = entries.map_err(ledger_error)?;
    let entries: Vec<_> = entries
        .iter()
        .map(|e| json!({ "index": e.index, "kind": e.event.kind(), "canonical": e.to_canonical() }))
        .collect();
    Ok(Json(json!({ "size": size, "entries": entries })).into_response())
}
