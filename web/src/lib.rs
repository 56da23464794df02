//! The medarena web face: a JSON API under `/api/v1` (described by the OpenAPI document at
//! `/api/openapi.json`), the ledger's public endpoints under `/api/ledger`, server-rendered
//! pages for every role, Prometheus metrics at `/metrics` and a health check at `/healthz`.
//!
//! Handlers are thin: they authenticate ([`auth::Auth`]), call one [`Arena`] operation
//! (which authorizes with the role matrix), and map its typed error ([`error::ApiError`]).
//! No handler decides who may do what.
//!
//! ```no_run
//! # async fn demo(arena: medarena_arena::Arena,
//! #               ledger: std::sync::Arc<medarena_ledger::SharedLedger>) -> std::io::Result<()> {
//! let app = medarena_web::router(medarena_web::AppState::new(arena, ledger));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use medarena_arena::Arena;
use medarena_ledger::SharedLedger;
use tower_http::set_header::SetResponseHeaderLayer;

pub mod api;
pub mod auth;
pub mod cache;
pub mod contract_api;
pub mod contract_pages;
pub mod error;
pub mod extract;
pub mod key_service;
pub mod ledger_api;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod throttle;

/// The largest request body: a dataset upload (the arena's own limit) plus form overhead.
pub const MAX_BODY_BYTES: usize = medarena_arena::MAX_UPLOAD_BYTES + 1024 * 1024;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub arena: Arena,
    pub ledger: Arc<SharedLedger>,
    pub metrics: Arc<metrics::Metrics>,
    pub leaderboards: Arc<cache::LeaderboardCache>,
    /// Mark the session cookie `Secure` (behind HTTPS).
    pub secure_cookies: bool,
    /// The operators' token for `GET /metrics` (`MEDARENA_METRICS_TOKEN`); without it only
    /// organizers can read the metrics.
    pub metrics_token: Option<Arc<str>>,
}

impl AppState {
    pub fn new(arena: Arena, ledger: Arc<SharedLedger>) -> Self {
        AppState {
            arena,
            ledger,
            metrics: Arc::new(metrics::Metrics::default()),
            leaderboards: Arc::new(cache::LeaderboardCache::new(Duration::from_secs(1))),
            secure_cookies: false,
            metrics_token: None,
        }
    }
}

/// The whole application: API, ledger, pages, metrics, with security headers and limits.
pub fn router(state: AppState) -> Router {
    let security_headers = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=()",
        ),
    ];
    let mut app = Router::new()
        .nest("/api/v1", api::router())
        .nest("/api/ledger", ledger_api::router())
        .route("/api/openapi.json", axum::routing::get(openapi::serve))
        .route("/metrics", axum::routing::get(metrics::serve))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route(
            "/internal/data-keys",
            axum::routing::post(key_service::grant),
        )
        .merge(pages::router())
        .fallback(api::no_route)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // One span per request (method, path) for the logs: `RUST_LOG=tower_http=debug`.
        .layer(tower_http::trace::TraceLayer::new_for_http());
    for (name, value) in security_headers {
        app = app.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    app.with_state(state)
}
