//! The key service's HTTP face, for worker hosts: `POST /internal/data-keys` answers with the
//! data key of one scope of one leased job ([`medarena_arena::Arena::grant_data_key`]).
//!
//! Not part of the public API (and not in the OpenAPI document): it answers only the bearer
//! worker token (`medarena admin worker-token`), which no browser or team holds. Operators
//! keep `/internal/` off the public load balancer; the token is the second fence.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use medarena_arena::key_client::{DataKeyAnswer, DataKeyRequest};
use medarena_arena::vault::JobLease;
use medarena_arena::{ArenaError, JobId};

use crate::AppState;
use crate::auth::bearer_matches;
use crate::error::ApiError;
use crate::extract::JsonBody;

pub async fn grant(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<DataKeyRequest>,
) -> Result<Json<DataKeyAnswer>, ApiError> {
    // A server host always holds the master key; an arena without one serves no keys.
    let token = state
        .arena
        .worker_token()
        .ok_or_else(|| ArenaError::NotFound("the key service on this host".to_owned()))?;
    if !bearer_matches(&headers, &token) {
        return Err(ArenaError::Unauthenticated.into());
    }
    let lease = JobLease {
        job: JobId(request.job),
        token: request.lease_token,
    };
    let key = state.arena.grant_data_key(&lease, &request.scope).await?;
    Ok(Json(DataKeyAnswer {
        key: key.to_hex().to_string(),
    }))
}
