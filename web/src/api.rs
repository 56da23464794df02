//! The JSON API under `/api/v1`. Every handler: authenticate, one arena call, JSON out.
//! The OpenAPI document ([`crate::openapi`]) lists the same routes; a test keeps the two
//! in step.

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Multipart, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use medarena_arena::{
    AdmissionDecision, AdmissionState, AnalysisSpec, Arena, CompetitionId, DatasetId,
    DatasetUpload, LeaderboardKind, OrgId, Registration, SubmissionId,
};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, MultipartBody, PathParam, QueryParams};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/tokens", get(credentials).post(create_token))
        .route("/me", get(me))
        .route("/accounts", post(register))
        .route("/admin/accounts", post(create_account))
        .route("/applications", get(applications).post(apply))
        .route("/applications/{org}/review", post(review_application))
        .route("/teams/{org}", get(team))
        .route("/teams/{org}/members", post(add_member))
        .route("/competitions", get(competitions).post(create_competition))
        .route("/competitions/{id}", get(competition))
        .route(
            "/competitions/{id}/agreement",
            get(agreement).post(accept_agreement),
        )
        .route("/competitions/{id}/close", post(close))
        .route("/competitions/{id}/publish", post(publish))
        .route("/competitions/{id}/leaderboard", get(leaderboard))
        .route("/competitions/{id}/history", get(history))
        .route("/competitions/{id}/exact-scores", get(exact_scores))
        .route("/competitions/{id}/compare", get(compare))
        .route(
            "/competitions/{id}/submissions",
            get(submissions).post(submit),
        )
        .route("/competitions/{id}/analyses", post(submit_analysis))
        .route("/competitions/{id}/budget", get(budget))
        .route("/competitions/{id}/privacy", get(competition_privacy))
        .route("/competitions/{id}/site-scores", get(site_scores))
        .route("/competitions/{id}/development-data", get(development_data))
        .route("/competitions/{id}/manifest", get(competition_manifest))
        .route("/submissions/{id}", get(submission))
        .route("/submissions/{id}/dummy-report", get(dummy_report))
        .route("/submissions/{id}/module", get(download_module))
        .route("/submissions/{id}/receipts", get(submission_receipts))
        .route("/datasets", get(datasets).post(create_dataset))
        .route("/datasets/{id}", get(dataset))
        .route("/datasets/{id}/contributions", post(upload))
        .route("/datasets/{id}/review", post(review_dataset))
        .route("/datasets/{id}/usage", get(dataset_usage))
        .route(
            "/datasets/{id}/privacy",
            get(dataset_privacy).put(set_dataset_privacy),
        )
        .route("/datasets/{id}/suspend", post(suspend_dataset))
        .route("/datasets/{id}/resume", post(resume_dataset))
        .route(
            "/datasets/{id}/synthetic",
            get(synthetic_releases).post(measure_synthetic),
        )
        .route("/synthetic/{id}/{action}", post(change_synthetic))
        .route("/datasets/{id}/certificate", get(dataset_certificate))
        .route(
            "/competitions/{id}/certificates",
            get(competition_certificates),
        )
        .route("/certificates/{serial}", get(certificate))
        .route("/contributions/{id}", get(contribution))
        .route("/contributions/{id}/receipts", get(contribution_receipts))
        .route("/contributions/{id}/withdraw", post(withdraw_contribution))
        .route("/audit", get(audit))
        .route("/queue", get(queue))
        .merge(crate::contract_api::router())
}

/// The fallback for unknown paths: JSON for the API, the same shape for pages.
pub async fn no_route() -> ApiError {
    ApiError::NotFound("no such page or endpoint".to_owned())
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TokenResponse {
    pub token: String,
    pub credential: medarena_arena::Credential,
}

/// `POST /auth/login`: a session token (the CLI then trades it for an API token).
async fn login(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let issued = crate::throttle::sign_in(&state, &body.email, &body.password).await?;
    Ok(Json(TokenResponse {
        token: issued.token.to_string(),
        credential: issued.credential,
    }))
}

/// `POST /auth/logout`: revokes the bearer token used for this request.
async fn logout(State(state): State<AppState>, auth: Auth) -> ApiResult<StatusCode> {
    let crate::auth::Via::Bearer(token) = &auth.via else {
        return Err(ApiError::Arena(medarena_arena::ArenaError::Unauthenticated));
    };
    state.arena.logout(token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct TokenRequest {
    pub name: String,
    /// Lifetime in days (default and maximum from the server's configuration).
    #[serde(default)]
    pub days: Option<u64>,
}

async fn create_token(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(body): JsonBody<TokenRequest>,
) -> ApiResult<(StatusCode, Json<TokenResponse>)> {
    let ttl = body
        .days
        .map(|d| std::time::Duration::from_secs(d.saturating_mul(86_400)));
    let issued = state
        .arena
        .create_api_token(&auth.actor, &body.name, ttl)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenResponse {
            token: issued.token.to_string(),
            credential: issued.credential,
        }),
    ))
}

async fn credentials(State(state): State<AppState>, auth: Auth) -> ApiResult<Response> {
    json_of(state.arena.credentials(&auth.actor).await?)
}

async fn me(State(state): State<AppState>, auth: Auth) -> ApiResult<Response> {
    json_of(state.arena.me(&auth.actor).await?)
}

/// `POST /accounts`: self-registration of hospital staff and team members.
async fn register(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Registration>,
) -> ApiResult<Response> {
    created(state.arena.register(&body).await?)
}

/// `POST /admin/accounts`: an organizer creates any account (organizers, auditors).
async fn create_account(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(body): JsonBody<Registration>,
) -> ApiResult<Response> {
    created(state.arena.create_account(&auth.actor, &body).await?)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ApplyRequest {
    pub name: String,
    #[serde(default)]
    pub statement: String,
}

async fn apply(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(body): JsonBody<ApplyRequest>,
) -> ApiResult<Response> {
    created(
        state
            .arena
            .apply(&auth.actor, &body.name, &body.statement)
            .await?,
    )
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct StateQuery {
    pub state: Option<AdmissionState>,
}

async fn applications(
    State(state): State<AppState>,
    auth: Auth,
    QueryParams(query): QueryParams<StateQuery>,
) -> ApiResult<Response> {
    json_of(state.arena.applications(&auth.actor, query.state).await?)
}

async fn review_application(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(org): PathParam<i64>,
    JsonBody(decision): JsonBody<AdmissionDecision>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .review_application(&auth.actor, OrgId(org), &decision)
            .await?,
    )
}

async fn team(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(org): PathParam<i64>,
) -> ApiResult<Response> {
    json_of(state.arena.team(&auth.actor, OrgId(org)).await?)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct MemberRequest {
    pub email: String,
}

async fn add_member(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(org): PathParam<i64>,
    JsonBody(body): JsonBody<MemberRequest>,
) -> ApiResult<Response> {
    created(
        state
            .arena
            .add_team_member(&auth.actor, OrgId(org), &body.email)
            .await?,
    )
}

async fn competitions(State(state): State<AppState>, auth: Auth) -> ApiResult<Response> {
    json_of(state.arena.competitions(&auth.actor).await?)
}

/// `POST /competitions`: the body is the bundle's YAML.
async fn create_competition(
    State(state): State<AppState>,
    auth: Auth,
    body: String,
) -> ApiResult<Response> {
    created(state.arena.create_competition(&auth.actor, &body).await?)
}

async fn competition(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .competition(&auth.actor, CompetitionId(id))
            .await?,
    )
}

/// `GET /competitions/{id}/agreement`: the text, its SHA-256 (what acceptance names) and
/// whether the caller's team accepted it.
async fn agreement(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    let competition = state
        .arena
        .competition(&auth.actor, CompetitionId(id))
        .await?;
    let acceptance = match auth.actor.role() {
        Some(medarena_arena::Role::TeamMember) => state
            .arena
            .agreement_acceptance(&auth.actor, competition.id)
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    json_of(AgreementView {
        sha256: Arena::agreement_sha256(&competition),
        text: competition.bundle.agreement,
        acceptance,
    })
}

/// A competition's data-use agreement, the digest an acceptance names, and the caller's
/// team's acceptance.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AgreementView {
    pub text: String,
    pub sha256: String,
    pub acceptance: Option<medarena_arena::AgreementAcceptance>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AcceptRequest {
    pub agreement_sha256: String,
}

async fn accept_agreement(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
    JsonBody(body): JsonBody<AcceptRequest>,
) -> ApiResult<Response> {
    auth.require_signed_in()?;
    created(
        state
            .arena
            .accept_agreement(&auth.actor, CompetitionId(id), &body.agreement_sha256)
            .await?,
    )
}

async fn close(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    let closed = state
        .arena
        .close_competition(&auth.actor, CompetitionId(id))
        .await?;
    state.leaderboards.invalidate(closed.id);
    json_of(closed)
}

async fn publish(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    let published = state
        .arena
        .publish_competition(&auth.actor, CompetitionId(id))
        .await?;
    state.leaderboards.invalidate(published.id);
    json_of(published)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct LeaderboardQuery {
    #[serde(default)]
    pub kind: Option<LeaderboardKind>,
}

/// `GET /competitions/{id}/leaderboard?kind=public|private`. The public one is served from
/// [`crate::cache`].
async fn leaderboard(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
    QueryParams(query): QueryParams<LeaderboardQuery>,
) -> ApiResult<Response> {
    let id = CompetitionId(id);
    let kind = query.kind.unwrap_or(LeaderboardKind::Public);
    if kind == LeaderboardKind::Public
        && let Some(bytes) = state.leaderboards.get(id)
    {
        return Ok(json_bytes(bytes));
    }
    let board = state.arena.leaderboard(&auth.actor, id, kind).await?;
    let bytes = Bytes::from(
        serde_json::to_vec(&board).map_err(|e| ApiError::bad_request("leaderboard", e))?,
    );
    if kind == LeaderboardKind::Public {
        state.leaderboards.put(id, bytes.clone());
    }
    Ok(json_bytes(bytes))
}

async fn history(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .public_score_history(&auth.actor, CompetitionId(id))
            .await?,
    )
}

/// Exact scores for organizers; the store's row is mapped here to a stable JSON shape.
async fn exact_scores(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    let rows = state
        .arena
        .exact_scores(&auth.actor, CompetitionId(id))
        .await?;
    json_of(rows)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CompareQuery {
    #[serde(default)]
    pub top: Option<usize>,
}

async fn compare(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
    QueryParams(query): QueryParams<CompareQuery>,
) -> ApiResult<Response> {
    let top = query.top.unwrap_or(2).clamp(2, 10);
    json_of(
        state
            .arena
            .compare_top_entries(&auth.actor, CompetitionId(id), top)
            .await?,
    )
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct TeamQuery {
    pub team: Option<i64>,
}

async fn submissions(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
    QueryParams(query): QueryParams<TeamQuery>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .submissions(&auth.actor, CompetitionId(id), query.team.map(OrgId))
            .await?,
    )
}

/// `POST /competitions/{id}/submissions`: the body is the WebAssembly module.
async fn submit(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
    module: Bytes,
) -> ApiResult<Response> {
    auth.require_signed_in()?;
    created(
        state
            .arena
            .submit(&auth.actor, CompetitionId(id), &module)
            .await?,
    )
}

/// `POST /competitions/{id}/analyses`: multipart with `spec` (JSON) and `module`.
async fn submit_analysis(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
    MultipartBody(multipart): MultipartBody,
) -> ApiResult<Response> {
    auth.require_signed_in()?;
    let parts = read_parts(multipart).await?;
    let spec = parts
        .text("spec")?
        .ok_or_else(|| ApiError::bad_request("spec", "missing part"))?;
    let spec: AnalysisSpec =
        serde_json::from_str(&spec).map_err(|e| ApiError::bad_request("spec", e))?;
    let module = parts
        .bytes("module")
        .ok_or_else(|| ApiError::bad_request("module", "missing part"))?;
    created(
        state
            .arena
            .submit_analysis(&auth.actor, CompetitionId(id), &module, &spec)
            .await?,
    )
}

async fn budget(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
    QueryParams(query): QueryParams<TeamQuery>,
) -> ApiResult<Response> {
    auth.require_signed_in()?;
    let team = match query.team {
        Some(team) => OrgId(team),
        None => auth.actor.approved_org().map(|m| m.org).ok_or_else(|| {
            ApiError::bad_request("team", "give ?team=<id> (you belong to no team)")
        })?,
    };
    json_of(
        state
            .arena
            .budget(&auth.actor, CompetitionId(id), team)
            .await?,
    )
}

async fn submission(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .submission(&auth.actor, SubmissionId(id))
            .await?,
    )
}

async fn dummy_report(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .dummy_run_report(&auth.actor, SubmissionId(id))
            .await?,
    )
}

/// `GET /submissions/{id}/receipts`: the submission's events with their evidence codes.
async fn submission_receipts(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .submission_receipts(&auth.actor, SubmissionId(id))
            .await?,
    )
}

/// `GET /contributions/{id}/receipts`: the upload's events with their evidence codes.
async fn contribution_receipts(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .contribution_receipts(&auth.actor, medarena_arena::ContributionId(id))
            .await?,
    )
}

async fn download_module(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    let module = state
        .arena
        .download_module(&auth.actor, SubmissionId(id))
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "application/wasm")],
        Body::from(module.to_vec()),
    )
        .into_response())
}

async fn datasets(State(state): State<AppState>, auth: Auth) -> ApiResult<Response> {
    json_of(state.arena.datasets(&auth.actor).await?)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct DatasetRequest {
    pub slug: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
}

async fn create_dataset(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(body): JsonBody<DatasetRequest>,
) -> ApiResult<Response> {
    created(
        state
            .arena
            .create_dataset(&auth.actor, &body.slug, &body.title, &body.description)
            .await?,
    )
}

async fn dataset(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    json_of(state.arena.dataset(&auth.actor, DatasetId(id)).await?)
}

/// The parts of a multipart body, read whole (the arena keeps uploads in memory anyway).
pub struct Parts(Vec<(String, Option<String>, Bytes)>);

impl Parts {
    pub fn bytes(&self, name: &str) -> Option<Bytes> {
        self.0
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, b)| b.clone())
    }

    pub fn file_name(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(n, _, _)| n == name)
            .and_then(|(_, f, _)| f.clone())
    }

    /// A text part; `None` when absent or empty.
    pub fn text(&self, name: &str) -> ApiResult<Option<String>> {
        match self.bytes(name) {
            Some(bytes) if !bytes.is_empty() => String::from_utf8(bytes.to_vec())
                .map(Some)
                .map_err(|_| ApiError::bad_request(name, "is not UTF-8 text")),
            _ => Ok(None),
        }
    }
}

pub async fn read_parts(mut multipart: Multipart) -> ApiResult<Parts> {
    let mut parts = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request("multipart body", e.body_text()))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::bad_request(format!("part `{name}`"), e.body_text()))?;
        parts.push((name, file_name, bytes));
    }
    Ok(Parts(parts))
}

/// The upload of a multipart body with a `data` file and an optional `manifest` part.
pub fn upload_from_parts(parts: &Parts) -> ApiResult<DatasetUpload> {
    let bytes = parts.bytes("data").ok_or_else(|| {
        ApiError::bad_request("data", "missing part: send the table file as `data`")
    })?;
    let file_name = parts
        .file_name("data")
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "upload.csv".to_owned());
    Ok(DatasetUpload {
        file_name,
        manifest: parts.text("manifest")?,
        bytes: bytes.to_vec(),
    })
}

/// `POST /datasets/{id}/contributions`: multipart `data` (CSV, Parquet or Arrow IPC) and
/// optional `manifest` (YAML or JSON). A refused upload is a 422 carrying the report.
async fn upload(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
    MultipartBody(multipart): MultipartBody,
) -> ApiResult<Response> {
    let parts = read_parts(multipart).await?;
    let upload = upload_from_parts(&parts)?;
    created(
        state
            .arena
            .upload_contribution(&auth.actor, DatasetId(id), &upload)
            .await?,
    )
}

async fn review_dataset(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
    JsonBody(body): JsonBody<medarena_arena::DatasetReview>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .review_dataset(&auth.actor, DatasetId(id), &body)
            .await?,
    )
}

async fn dataset_usage(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    let uses = state
        .arena
        .dataset_usage(&auth.actor, DatasetId(id))
        .await?;
    json_of(uses)
}

/// `GET /datasets/{id}/privacy`: the terms that apply and what was spent (its hospitals
/// and organizers).
async fn dataset_privacy(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .dataset_privacy(&auth.actor, DatasetId(id))
            .await?,
    )
}

/// `PUT /datasets/{id}/privacy`: a contributing hospital sets its own terms.
async fn set_dataset_privacy(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
    JsonBody(body): JsonBody<medarena_arena::DatasetPrivacyTerms>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .set_dataset_privacy(&auth.actor, DatasetId(id), &body)
            .await?,
    )
}

/// The body of every operation that takes a reason (suspending a dataset or a contract,
/// ending a contract, withdrawing an upload).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ReasonRequest {
    /// Why (shown to the parties concerned and on the ledger): 1 to 500 characters, one line.
    #[schemars(length(min = 1, max = 500), regex(pattern = medarena_arena::CLEAN_TEXT_PATTERN))]
    pub reason: String,
}

/// `POST /datasets/{id}/suspend`: a contributing hospital stops the dataset's use in
/// real-data runs until it resumes it.
async fn suspend_dataset(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
    JsonBody(body): JsonBody<ReasonRequest>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .set_dataset_suspension(&auth.actor, DatasetId(id), true, Some(&body.reason))
            .await?,
    )
}

/// `POST /contributions/{id}/withdraw`: its hospital withdraws an upload for good: its data
/// key destroyed, its bytes deleted, no run reads it again; its receipts stay.
async fn withdraw_contribution(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
    JsonBody(body): JsonBody<ReasonRequest>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .withdraw_contribution(
                &auth.actor,
                medarena_arena::ContributionId(id),
                &body.reason,
            )
            .await?,
    )
}

/// `POST /datasets/{id}/resume`: the hospital lifts its suspension.
async fn resume_dataset(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .set_dataset_suspension(&auth.actor, DatasetId(id), false, None)
            .await?,
    )
}

/// `GET /competitions/{id}/privacy`: the competition's release terms (public): level,
/// blocks, ε, noise scales and 95% intervals, release delay; nothing depends on data.
async fn competition_privacy(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    let competition = state
        .arena
        .competition(&auth.actor, medarena_arena::CompetitionId(id))
        .await?;
    json_of(competition.bundle.release_terms())
}

/// `GET /competitions/{id}/site-scores`: the per-hospital view released at publication
/// (a contributing hospital its own rows, organizers all).
async fn site_scores(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    let rows = state
        .arena
        .site_scores(&auth.actor, medarena_arena::CompetitionId(id))
        .await?;
    json_of(rows)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct DevelopmentQuery {
    /// Rows to draw (default: as many as a dummy run, 1,000).
    pub rows: Option<usize>,
    /// Seed of the draw (default: the competition's split seed, as dummy runs).
    pub seed: Option<u64>,
}

/// `GET /competitions/{id}/development-data`: development data as CSV, drawn from the
/// hospitals' published synthetic releases (else the manifest's dummy generator); with the
/// defaults, the very table the competition's dummy runs use. The `x-medarena-synthetic-
/// releases` header names the releases drawn from (empty: dummy data).
async fn development_data(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
    QueryParams(query): QueryParams<DevelopmentQuery>,
) -> ApiResult<Response> {
    let data = state
        .arena
        .development_data(
            &auth.actor,
            medarena_arena::CompetitionId(id),
            query.rows,
            query.seed,
        )
        .await?;
    let releases = data
        .releases
        .iter()
        .map(|r| r.0.to_string())
        .collect::<Vec<_>>()
        .join(",");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", data.file_name),
            ),
            (
                header::HeaderName::from_static("x-medarena-synthetic-releases"),
                releases,
            ),
        ],
        Body::from(data.csv),
    )
        .into_response())
}

/// `GET /competitions/{id}/manifest`: the data's manifest (YAML or JSON, as uploaded):
/// the schema development data follows, for `medarena run`.
async fn competition_manifest(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    let manifest = state
        .arena
        .competition_manifest(&auth.actor, medarena_arena::CompetitionId(id))
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        manifest,
    )
        .into_response())
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SyntheticRequest {
    /// ε to spend on the measurement (at δ = 1e-6), charged on the dataset at once.
    pub epsilon: f64,
}

/// `GET /datasets/{id}/synthetic`: the dataset's synthetic releases the caller may see.
async fn synthetic_releases(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .synthetic_releases(&auth.actor, DatasetId(id))
            .await?,
    )
}

/// `POST /datasets/{id}/synthetic`: a contributing hospital measures its rows (a draft).
async fn measure_synthetic(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
    JsonBody(body): JsonBody<SyntheticRequest>,
) -> ApiResult<Response> {
    let release = state
        .arena
        .measure_synthetic(&auth.actor, DatasetId(id), body.epsilon)
        .await?;
    Ok((StatusCode::CREATED, Json(release)).into_response())
}

/// `POST /synthetic/{id}/{publish|discard|withdraw}`: the releasing hospital decides.
async fn change_synthetic(
    State(state): State<AppState>,
    auth: Auth,
    PathParam((id, action)): PathParam<(i64, String)>,
) -> ApiResult<Response> {
    let action = synthetic_action(&action)?;
    json_of(
        state
            .arena
            .change_synthetic(&auth.actor, medarena_arena::SyntheticReleaseId(id), action)
            .await?,
    )
}

/// The action segment of `/synthetic/{id}/{action}`.
pub fn synthetic_action(text: &str) -> ApiResult<medarena_arena::SyntheticAction> {
    use medarena_arena::SyntheticAction as A;
    match text {
        "publish" => Ok(A::Publish),
        "discard" => Ok(A::Discard),
        "withdraw" => Ok(A::Withdraw),
        other => Err(ApiError::NotFound(format!(
            "no synthetic action `{other}` (publish, discard or withdraw)"
        ))),
    }
}

async fn contribution(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    json_of(
        state
            .arena
            .contribution(&auth.actor, medarena_arena::ContributionId(id))
            .await?,
    )
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AuditQuery {
    /// `submission:7`, `competition:2`, ... ; without it, the most recent events.
    pub subject: Option<String>,
    #[serde(default)]
    pub limit: Option<i64>,
}

/// `GET /audit`: the audit trail (organizers and auditors), with each event's evidence
/// code on the ledger.
async fn audit(
    State(state): State<AppState>,
    auth: Auth,
    QueryParams(query): QueryParams<AuditQuery>,
) -> ApiResult<Response> {
    match query.subject {
        Some(subject) => json_of(state.arena.audit_trail(&auth.actor, &subject).await?),
        None => json_of(
            state
                .arena
                .recent_audit_events(&auth.actor, query.limit.unwrap_or(100).clamp(1, 1000))
                .await?,
        ),
    }
}

/// `GET /queue`: job counts by state (organizers: running counts follow real runs).
async fn queue(State(state): State<AppState>, auth: Auth) -> ApiResult<Response> {
    medarena_arena::authorize(
        &auth.actor,
        medarena_arena::Action::ViewMetrics,
        medarena_arena::Resource::Platform,
    )
    .map_err(medarena_arena::ArenaError::from)?;
    json_of(state.arena.queue_stats().await?)
}

/// A certificate with its anchoring entry's receipt, when the ledger has it: everything
/// `medarena ledger verify --certificate` needs offline.
pub async fn with_receipt(
    state: &AppState,
    mut document: medarena_arena::certificate::CertificateDocument,
) -> medarena_arena::certificate::CertificateDocument {
    if let Some(anchor) = document.anchor.as_mut() {
        anchor.receipt = crate::ledger_api::receipt_for(state, &anchor.evidence_code)
            .await
            .ok();
    }
    document
}

/// The certificate file, byte for byte as `ledger verify --certificate` checks it.
fn certificate_file(document: &medarena_arena::certificate::CertificateDocument) -> Response {
    let name = format!("medarena-certificate-{}.json", document.body.serial);
    (
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{name}\""),
            ),
        ],
        document.to_file_bytes(),
    )
        .into_response()
}

/// `GET /datasets/{id}/certificate`: the registration certificate (its hospitals and
/// organizers).
async fn dataset_certificate(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    let document = state
        .arena
        .registration_certificate(&auth.actor, DatasetId(id))
        .await?;
    Ok(certificate_file(&with_receipt(&state, document).await))
}

/// `GET /competitions/{id}/certificates`: the result certificates, by rank (everyone once
/// published).
async fn competition_certificates(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Response> {
    let mut documents = Vec::new();
    for document in state
        .arena
        .result_certificates(&auth.actor, CompetitionId(id))
        .await?
    {
        documents.push(with_receipt(&state, document).await);
    }
    json_of(documents)
}

/// `GET /certificates/{serial}`: one certificate file.
async fn certificate(
    State(state): State<AppState>,
    auth: Auth,
    PathParam(serial): PathParam<String>,
) -> ApiResult<Response> {
    let document = state.arena.certificate(&auth.actor, &serial).await?;
    Ok(certificate_file(&with_receipt(&state, document).await))
}

pub(crate) fn json_of(value: impl Serialize) -> ApiResult<Response> {
    Ok(Json(value).into_response())
}

pub(crate) fn created(value: impl Serialize) -> ApiResult<Response> {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

fn json_bytes(bytes: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}
