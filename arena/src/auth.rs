//! Secrets: passwords (Argon2id) and bearer tokens (random, stored as SHA-256).
//!
//! Passwords are low-entropy, so they get a slow, memory-hard hash (Argon2id, OWASP's
//! recommended 19 MiB / 2 passes by default; the PHC string keeps the parameters, so they
//! can be raised later without invalidating old hashes). Tokens are 256 random bits, so a
//! plain SHA-256 is enough to make a stolen database useless for impersonation, and it keeps
//! lookup by hash a single index probe.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::model::CredentialKind;

/// Argon2id cost parameters for new password hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordHashing {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for PasswordHashing {
    /// OWASP's Argon2id recommendation (m = 19 MiB, t = 2, p = 1).
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
        }
    }
}

impl PasswordHashing {
    /// Cheap parameters for tests only: unoptimised Argon2 at full cost takes seconds.
    pub fn insecure_fast_for_tests() -> Self {
        Self {
            memory_kib: Params::MIN_M_COST,
            iterations: 1,
            parallelism: 1,
        }
    }

    fn argon2(&self) -> Result<Argon2<'static>, PasswordError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|err| PasswordError::Hashing(err.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Shortest and longest accepted passwords; the upper bound caps hashing work per request.
pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The longest passphrase in characters (as the API's schema states it).
pub const MAX_PASSWORD_CHARS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error(
        "password must be at most {MAX_PASSWORD_CHARS} characters and {MAX_PASSWORD_BYTES} bytes"
    )]
    TooLong,
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

pub fn check_password_policy(password: &str) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES || password.chars().count() > MAX_PASSWORD_CHARS {
        Err(PasswordError::TooLong)
    } else if password.chars().count() < MIN_PASSWORD_CHARS {
        Err(PasswordError::TooShort)
    } else {
        Ok(())
    }
}

/// Hashes a password into a PHC string (`$argon2id$v=19$m=...`). CPU-heavy: call from a
/// blocking thread.
pub fn hash_password(password: &str, cost: &PasswordHashing) -> Result<String, PasswordError> {
    check_password_policy(password)?;
    let salt = SaltString::generate(&mut OsRng);
    cost.argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| PasswordError::Hashing(err.to_string()))
}

/// Checks a password against a stored PHC string, with the parameters stored in it.
/// Returns false for a malformed hash rather than an error: a login either works or not.
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A freshly generated bearer token. The secret is shown to its owner once; only its hash
/// is stored.
pub struct IssuedSecret {
    pub secret: Zeroizing<String>,
    pub hash: TokenHash,
}

/// SHA-256 of a token's full text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }
}

/// Token prefixes make leaked tokens recognisable to secret scanners and to people.
pub fn token_prefix(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::Session => "mds_",
        CredentialKind::ApiToken => "mda_",
    }
}

/// 256 random bits, base64url without padding, after a kind prefix.
pub fn generate_token(kind: CredentialKind) -> IssuedSecret {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    let secret = Zeroizing::new(format!(
        "{}{}",
        token_prefix(kind),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())
    ));
    let hash = TokenHash::of(&secret);
    IssuedSecret { secret, hash }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_round_trip_and_rejection() {
        let cost = PasswordHashing::insecure_fast_for_tests();
        let hash = hash_password("correct horse battery", &cost).expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password(
            "correct horse battery",
            "not a phc string"
        ));
        // Salted: the same password hashes differently each time.
        let again = hash_password("correct horse battery", &cost).expect("hash");
        assert_ne!(hash, again);
        assert!(verify_password("correct horse battery", &again));
    }

    #[test]
    fn stored_parameters_are_used_for_verification() {
        let strong = PasswordHashing {
            memory_kib: 64,
            iterations: 3,
            parallelism: 1,
        };
        let hash = hash_password("a long passphrase", &strong).expect("hash");
        assert!(hash.contains("m=64,t=3,p=1"), "{hash}");
        assert!(verify_password("a long passphrase", &hash));
    }

    #[test]
    fn policy_bounds() {
        let cost = PasswordHashing::insecure_fast_for_tests();
        assert_eq!(hash_password("short", &cost), Err(PasswordError::TooShort));
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(hash_password(&long, &cost), Err(PasswordError::TooLong));
        assert!(!verify_password(&long, "$argon2id$whatever"));
    }

    #[test]
    fn tokens_are_prefixed_unique_and_hashed() {
        let a = generate_token(CredentialKind::ApiToken);
        let b = generate_token(CredentialKind::ApiToken);
        let s = generate_token(CredentialKind::Session);
        assert!(a.secret.starts_with("mda_"));
        assert!(s.secret.starts_with("mds_"));
        assert_eq!(a.secret.len(), 4 + 43);
        assert_ne!(*a.secret, *b.secret);
        assert_eq!(TokenHash::of(&a.secret), a.hash);
        assert_ne!(a.hash, b.hash);
    }
}
