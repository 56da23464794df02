//! The arena's typed errors. Each maps to one HTTP status ([`ArenaError::http_status`]) so
//! that web handlers translate errors without knowing the business rules.

use crate::authz::Denial;
use crate::bundle::BundleError;
use crate::executor::PrecheckRejection;
use crate::model::Contribution;
use crate::store::StoreError;
use crate::vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum ArenaError {
    /// No credential, or a wrong password, or an expired, revoked or unknown token. Never
    /// says which, so it cannot be used to probe accounts.
    #[error("authentication required: sign in again")]
    Unauthenticated,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the current state (a duplicate name, an already-reviewed
    /// application, a changed agreement text).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A precondition of the operation does not hold yet (no open phase, agreement not
    /// accepted, dataset not approved).
    #[error("{0}")]
    Precondition(String),
    /// Bad input, naming the field.
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The module failed the sandbox pre-check.
    #[error(transparent)]
    ModuleRejected(#[from] PrecheckRejection),
    /// The upload failed validation; the contribution carries the report.
    #[error("upload rejected by validation; see the report")]
    UploadRejected(Box<Contribution>),
    #[error("daily submission limit reached: {used} of {limit} used today (UTC)")]
    RateLimited { limit: u32, used: i64 },
    #[error("storage: {0}")]
    Store(StoreError),
    #[error("encrypted storage: {0}")]
    Vault(#[from] VaultError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The class of an error, for mapping to a protocol status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    Invalid,
    TooManyRequests,
    Internal,
}

impl ArenaError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ArenaError::Unauthenticated => ErrorKind::Unauthenticated,
            ArenaError::Forbidden(_) => ErrorKind::Forbidden,
            ArenaError::NotFound(_) => ErrorKind::NotFound,
            ArenaError::Conflict(_) | ArenaError::Precondition(_) => ErrorKind::Conflict,
            ArenaError::Invalid { .. }
            | ArenaError::Bundle(_)
            | ArenaError::ModuleRejected(_)
            | ArenaError::UploadRejected(_) => ErrorKind::Invalid,
            ArenaError::RateLimited { .. } => ErrorKind::TooManyRequests,
            ArenaError::Store(_)
            | ArenaError::Vault(_)
            | ArenaError::Config(_)
            | ArenaError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// 401, 403, 404, 409, 422, 429 or 500.
    pub fn http_status(&self) -> u16 {
        match self.kind() {
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Invalid => 422,
            ErrorKind::TooManyRequests => 429,
            ErrorKind::Internal => 500,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ArenaError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<StoreError> for ArenaError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Duplicate(what) => ArenaError::Conflict(format!("{what} already exists")),
            StoreError::Conflict(reason) => ArenaError::Conflict(reason),
            StoreError::Missing(what) => ArenaError::NotFound(what),
            other => ArenaError::Store(other),
        }
    }
}

impl From<Denial> for ArenaError {
    fn from(denial: Denial) -> Self {
        match denial {
            Denial::Unauthenticated(_) => ArenaError::Unauthenticated,
            Denial::Forbidden(_) => ArenaError::Forbidden(denial.to_string()),
        }
    }
}

pub type ArenaResult<T> = Result<T, ArenaError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(ArenaError::Unauthenticated.http_status(), 401);
        assert_eq!(ArenaError::Forbidden("x".into()).http_status(), 403);
        assert_eq!(
            ArenaError::RateLimited { limit: 1, used: 1 }.http_status(),
            429
        );
        assert_eq!(
            ArenaError::from(StoreError::Duplicate("slug".into())).http_status(),
            409
        );
        assert_eq!(
            ArenaError::from(StoreError::Missing("dataset:1".into())).http_status(),
            404
        );
        assert_eq!(ArenaError::invalid("email", "bad").http_status(), 422);
    }
}
