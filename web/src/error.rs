//! One error type for every handler: an [`ArenaError`] (or a request problem) becomes a
//! status and a JSON body `{"error": {"kind", "message", "field"?, "report"?}}`. The
//! message is the arena's, which never carries data values; internal errors are logged in
//! full and shown only as "internal error".

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use medarena_arena::{ArenaError, ErrorKind};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Arena(#[from] ArenaError),
    /// A malformed request: which part and why.
    #[error("bad request: {what}: {why}")]
    BadRequest { what: String, why: String },
    #[error("{0} not found")]
    NotFound(String),
    /// A request axum could not read (body, path, query string), with axum's status.
    #[error("bad request: {what}: {why}")]
    Request {
        status: StatusCode,
        what: String,
        why: String,
    },
    /// Too many wrong passwords for one account lately ([`crate::throttle`]).
    #[error("too many failed sign-ins for this account; try again in {minutes} minute(s)")]
    TooManySignIns { minutes: u64 },
    /// A form post without the session's CSRF token.
    #[error("forbidden: the form is stale or was not sent by this site; reload the page")]
    Csrf,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_request(what: impl Into<String>, why: impl std::fmt::Display) -> Self {
        ApiError::BadRequest {
            what: what.into(),
            why: why.to_string(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Arena(err) => {
                StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Request { status, .. } => *status,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Csrf => StatusCode::FORBIDDEN,
            ApiError::TooManySignIns { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Arena(err) => match err.kind() {
                ErrorKind::Unauthenticated => "unauthenticated",
                ErrorKind::Forbidden => "forbidden",
                ErrorKind::NotFound => "not_found",
                ErrorKind::Conflict => "conflict",
                ErrorKind::Invalid => "invalid",
                ErrorKind::TooManyRequests => "too_many_requests",
                ErrorKind::Internal => "internal",
            },
            ApiError::BadRequest { .. } | ApiError::Request { .. } => "bad_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::Csrf => "forbidden",
            ApiError::TooManySignIns { .. } => "too_many_requests",
        }
    }

    /// What a person may read: the message, or "internal error" for server faults.
    pub fn public_message(&self) -> String {
        if self.status().is_server_error() {
            "internal error; the operators have the details in the server log".to_owned()
        } else {
            self.to_string()
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({ "kind": self.kind(), "message": self.public_message() });
        match self {
            ApiError::Arena(ArenaError::Invalid { field, .. }) => {
                error["field"] = json!(field);
            }
            ApiError::Arena(ArenaError::UploadRejected(contribution)) => {
                error["report"] = contribution.report.clone();
                error["contribution"] = json!(contribution.id);
            }
            ApiError::Arena(ArenaError::Bundle(bundle)) => {
                error["issues"] = json!(bundle.to_string());
            }
            _ => {}
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        (self.status(), Json(self.body())).into_response()
    }
}
