//! A worker host's side of the key service: [`KeyBroker`] over HTTP(S) to a server host's
//! `POST /internal/data-keys` (the web crate's `key_service`), authenticated with the worker
//! token (`medarena admin worker-token`). The server checks the lease and the scope
//! ([`crate::Arena::grant_data_key`]); this side only asks and parses.

use std::time::Duration;

use zeroize::Zeroizing;

use crate::crypto::{DataKey, derive_from_secret};
use crate::pipeline::ARTIFACT_CACHE_PURPOSE;
use crate::vault::{JobLease, KeyBroker, KeyScope, VaultError};

/// The path of the key service on a server host.
pub const DATA_KEYS_PATH: &str = "/internal/data-keys";

/// What a worker host asks the key service for: the data key of one scope of one leased job.
/// The server's handler reads this same type, so the two sides cannot drift apart.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataKeyRequest {
    pub job: i64,
    pub lease_token: String,
    /// As the vault names it: `team:<id>`, `dataset:<id>` or `upload:<hex>`.
    pub scope: String,
}

/// The key service's answer.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct DataKeyAnswer {
    /// 64 hex digits ([`DataKey::to_hex`]).
    pub key: String,
}

/// How long one key request may take before the run is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Asks a server host's key service for data keys.
pub struct HttpKeyBroker {
    endpoint: String,
    token: Zeroizing<String>,
    client: reqwest::Client,
}

impl std::fmt::Debug for HttpKeyBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpKeyBroker")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// What is wrong with a key-service setting, naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum KeyClientError {
    #[error("the key service address {0:?} must start with http:// or https://")]
    Address(String),
    #[error(
        "the worker token must be the 64 hexadecimal digits `medarena admin worker-token` prints"
    )]
    Token,
    #[error("the key service client: {0}")]
    Client(String),
}

impl HttpKeyBroker {
    /// `server`: a server host's base address (`https://medarena.internal`); `token`: the
    /// worker token.
    pub fn new(server: &str, token: &str) -> Result<Self, KeyClientError> {
        let server = server.trim().trim_end_matches('/');
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(KeyClientError::Address(server.to_owned()));
        }
        let token = token.trim();
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(KeyClientError::Token);
        }
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|err| KeyClientError::Client(err.to_string()))?;
        Ok(Self {
            endpoint: format!("{server}{DATA_KEYS_PATH}"),
            token: Zeroizing::new(token.to_owned()),
            client,
        })
    }
}

#[async_trait::async_trait]
impl KeyBroker for HttpKeyBroker {
    async fn data_key(&self, lease: &JobLease, scope: &KeyScope) -> Result<DataKey, VaultError> {
        let failed = |what: String| VaultError::KeyService(format!("{}: {what}", self.endpoint));
        let body = serde_json::to_string(&DataKeyRequest {
            job: lease.job.0,
            lease_token: lease.token.clone(),
            scope: scope.to_string(),
        })
        .map_err(|err| failed(format!("the request: {err}")))?;
        let response = self
            .client
            .post(&self.endpoint)
            .bearer_auth(self.token.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|err| failed(err.to_string()))?;
        let status = response.status();
        let text = Zeroizing::new(
            response
                .text()
                .await
                .map_err(|err| failed(err.to_string()))?,
        );
        if !status.is_success() {
            // The server's JSON error names why (a lost lease, a scope the job does not read).
            return Err(failed(format!("{status}: {}", text.trim())));
        }
        let answer: DataKeyAnswer =
            serde_json::from_str(&text).map_err(|err| failed(format!("bad answer: {err}")))?;
        let key = Zeroizing::new(answer.key);
        DataKey::from_hex(&key).map_err(VaultError::from)
    }

    fn cache_key(&self) -> [u8; 32] {
        derive_from_secret(self.token.as_bytes(), ARTIFACT_CACHE_PURPOSE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_and_named() {
        let token = "ab".repeat(32);
        assert!(HttpKeyBroker::new("https://server.internal/", &token).is_ok());
        let err = HttpKeyBroker::new("server.internal", &token).unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
        let err = HttpKeyBroker::new("http://server", "short").unwrap_err();
        assert!(err.to_string().contains("worker-token"), "{err}");
    }

    #[test]
    fn the_cache_key_follows_the_token() {
        let a = HttpKeyBroker::new("http://s", &"ab".repeat(32)).unwrap();
        let b = HttpKeyBroker::new("http://s", &"cd".repeat(32)).unwrap();
        assert_ne!(a.cache_key(), b.cache_key());
        assert_eq!(a.endpoint, "http://s/internal/data-keys");
    }
}
