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
use medarena_ledger::{EvidenceCode, EvidenceCodeError, LedgerError, Receipt, SharedLedger};
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

/// Runs `read` on the shared ledger in tokio's blocking pool. Any look at the ledger waits
/// for the batch being appended (an fsync, or a PostgreSQL commit), and reading an entry is
/// a file read or a database round trip; a follower may also catch up first. None of that
/// may hold an async worker that serves other requests.
pub(crate) async fn read_ledger<T: Send + 'static>(
    state: &AppState,
    read: impl FnOnce(&SharedLedger) -> T + Send + 'static,
) -> T {
    let ledger = state.ledger.clone();
    match tokio::task::spawn_blocking(move || read(&ledger)).await {
        Ok(value) => value,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Only a runtime shutting down cancels a blocking task.
        Err(err) => panic!("the ledger read was cancelled: {err}"),
    }
}

/// `GET /api/ledger/key`: the verifier key (`name+hash+base64`).
pub async fn key(State(state): State<AppState>) -> Response {
    text(
        read_ledger(&state, |shared| {
            shared.read(|l| format!("{}\n", l.verifier_key()))
        })
        .await,
    )
}

/// `GET /api/ledger/checkpoint`: the latest signed checkpoint.
pub async fn checkpoint(State(state): State<AppState>) -> Response {
    text(
        read_ledger(&state, |shared| {
            shared.read(|l| l.checkpoint().text().to_owned())
        })
        .await,
    )
}

/// The receipt of an evidence code (for the API and the ledger explorer page).
pub async fn receipt_for(state: &AppState, code: &str) -> ApiResult<Receipt> {
    let code = EvidenceCode::parse(code.trim()).map_err(|err| match err {
        // Well-formed but mistyped: no receipt has this code.
        EvidenceCodeError::Check { .. } => ApiError::NotFound(err.to_string()),
        _ => ApiError::bad_request("evidence code", err),
    })?;
    read_ledger(state, move |shared| {
        match shared.read(|l| l.receipt_for(&code)) {
            // A server following another's writes (a deployment on PostgreSQL) may not
            // have read the newest entries yet: catch up once before saying no.
            Err(LedgerError::UnknownEvidence(_)) if !shared.read(|l| l.writable()) => {
                shared.update(|l| l.refresh())?;
                shared.read(|l| l.receipt_for(&code))
            }
            other => other,
        }
    })
    .await
    .map_err(ledger_error)
}

/// `GET /api/ledger/receipts/{code}`.
pub async fn receipt(
    State(state): State<AppState>,
    PathParam(code): PathParam<String>,
) -> ApiResult<Json<Receipt>> {
    receipt_for(&state, &code).await.map(Json)
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
    let proof = read_ledger(&state, move |shared| {
        shared.read(|l| l.consistency_proof(query.from, query.to))
    })
    .await
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
    let (size, entries) = read_ledger(&state, move |shared| {
        shared.read(|l| {
            let size = l.len();
            let from = query.from.unwrap_or(size.saturating_sub(limit)).min(size);
            let to = from.saturating_add(limit).min(size);
            (size, l.entries(from, to))
        })
    })
    .await;
    let entries = entries.map_err(ledger_error)?;
    let entries: Vec<_> = entries
        .iter()
        .map(|e| json!({ "index": e.index, "kind": e.event.kind(), "canonical": e.to_canonical() }))
        .collect();
    Ok(Json(json!({ "size": size, "entries": entries })).into_response())
}
