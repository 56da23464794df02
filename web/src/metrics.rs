//! Prometheus metrics (`GET /metrics`, text exposition format): requests by route and
//! status, their latency, and the job queue's state read at scrape time.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use axum::http::HeaderMap;

use crate::AppState;
use crate::auth::{Auth, bearer_matches};
use crate::error::ApiError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route pattern (`/api/v1/submissions/{id}`), never the raw path.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub state: &'static str,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    jobs: Family<QueueLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("medarena");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let jobs = Family::<QueueLabels, Gauge>::default();
        registry.register("http_requests", "HTTP requests served", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            latency.clone(),
        );
        registry.register("jobs", "Jobs in the durable queue by state", jobs.clone());
        Metrics {
            registry,
            requests,
            latency,
            jobs,
        }
    }
}

/// Middleware: counts and times every request.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let labels = RequestLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    state.metrics.requests.get_or_create(&labels).inc();
    state
        .metrics
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`.
/// `GET /metrics`, for operators only: the job gauges and request latencies follow what real
/// runs do, so an organizer's credentials or the operators' metrics token
/// (`MEDARENA_METRICS_TOKEN`, as `Authorization: Bearer`, what Prometheus's
/// `bearer_token_file` sends) are required.
pub async fn serve(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Result<Auth, ApiError>,
) -> Response {
    let by_token = state
        .metrics_token
        .as_deref()
        .is_some_and(|expected| bearer_matches(&headers, expected));
    if !by_token {
        let denied = match auth {
            Err(err) => Some(err),
            Ok(auth) => medarena_arena::authorize(
                &auth.actor,
                medarena_arena::Action::ViewMetrics,
                medarena_arena::Resource::Platform,
            )
            .err()
            .map(|denial| ApiError::from(medarena_arena::ArenaError::from(denial))),
        };
        if let Some(err) = denied {
            return err.into_response();
        }
    }
    if let Ok(stats) = state.arena.queue_stats().await {
        for (name, value) in [
            ("pending", stats.pending),
            ("running", stats.running),
            ("succeeded", stats.succeeded),
            ("failed", stats.failed),
        ] {
            state
                .metrics
                .jobs
                .get_or_create(&QueueLabels { state: name })
                .set(value);
        }
    }
    let mut text = String::new();
    if let Err(err) = encode(&mut text, &state.metrics.registry) {
        tracing::error!(%err, "encoding metrics");
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
