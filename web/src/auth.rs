//! Who is asking: a bearer token (`Authorization: Bearer ...`, the CLI's API tokens and
//! sessions) or the browser's session cookie, turned into an [`Actor`] by the arena.
//!
//! CSRF: the JSON API ignores the cookie on anything but GET/HEAD (so a third-party page
//! cannot make a signed-in browser change state through it), and the pages' form posts
//! carry a token derived from the session ([`csrf_token`]) that the handler checks. The
//! cookie is also `SameSite=Strict; HttpOnly`.

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{Method, header};
use medarena_arena::Actor;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "medarena_session";

/// How the request authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Anonymous,
    /// An `Authorization: Bearer` token (for sign-out).
    Bearer(String),
    /// The session cookie, with its token (for CSRF checks and sign-out).
    Cookie(String),
}

/// The authenticated actor. A bad bearer token is a 401; a stale cookie is anonymous.
#[derive(Debug, Clone)]
pub struct Auth {
    pub actor: Actor,
    pub via: Via,
}

impl Auth {
    /// The CSRF token a form of this session must carry (`None` when not signed in by
    /// cookie).
    pub fn csrf(&self) -> Option<String> {
        match &self.via {
            Via::Cookie(token) => Some(csrf_token(token)),
            _ => None,
        }
    }

    /// Refuses an anonymous caller with 401, for operations where the arena needs the
    /// caller's team before its role check (and would otherwise answer 403).
    pub fn require_signed_in(&self) -> Result<(), ApiError> {
        match self.actor {
            Actor::Anonymous => Err(ApiError::Arena(medarena_arena::ArenaError::Unauthenticated)),
            Actor::Account(_) => Ok(()),
        }
    }

    /// Refuses a form post whose `csrf` field does not match the session.
    pub fn check_csrf(&self, sent: &str) -> Result<(), ApiError> {
        match self.csrf() {
            Some(expected) if constant_time_eq(expected.as_bytes(), sent.as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::Csrf),
            None => Ok(()),
        }
    }
}

/// A session's CSRF token: a hash of the session token, so it needs no storage and is
/// useless without the cookie.
pub fn csrf_token(session: &str) -> String {
    let digest = Sha256::digest(format!("medarena-csrf\0{session}"));
    hex::encode(&digest[..16])
}

/// Whether the request carries `Authorization: Bearer <expected>` (compared in constant
/// time): how machines (a metrics scraper, a worker host) authenticate.
pub(crate) fn bearer_matches(headers: &axum::http::HeaderMap, expected: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|sent| constant_time_eq(sent.trim().as_bytes(), expected.as_bytes()))
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of a cookie in the request, if present.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(|| {
                    ApiError::bad_request("Authorization header", "expected `Bearer <token>`")
                })?;
            let token = token.trim();
            let actor = state.arena.authenticate(token).await?;
            return Ok(Auth {
                actor,
                via: Via::Bearer(token.to_owned()),
            });
        }
        // Inside a nested router `parts.uri` has lost its prefix (`/api/v1`); the path as
        // requested is the `OriginalUri`.
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.path(), |original| original.0.path());
        let is_api = path.starts_with("/api/");
        let safe = matches!(parts.method, Method::GET | Method::HEAD);
        if let Some(token) = cookie(parts, SESSION_COOKIE)
            && (safe || !is_api)
            && let Ok(actor) = state.arena.authenticate(token).await
        {
            return Ok(Auth {
                actor,
                via: Via::Cookie(token.to_owned()),
            });
        }
        Ok(Auth {
            actor: Actor::Anonymous,
            via: Via::Anonymous,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_differ_per_session_and_compare_exactly() {
        let a = csrf_token("session-a");
        assert_eq!(a, csrf_token("session-a"));
        assert_ne!(a, csrf_token("session-b"));
        assert!(constant_time_eq(a.as_bytes(), a.as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), &a.as_bytes()[1..]));
    }
}
