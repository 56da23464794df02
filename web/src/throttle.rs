//! Sign-in throttling: after [`MAX_FAILURES`] wrong passwords for one e-mail address within
//! [`WINDOW`], further attempts for it are refused (429) until the window has passed,
//! without checking the password, so that a guessing attack gets a handful of tries per
//! quarter hour whatever the request rate. A success clears the count.
//!
//! Kept in the server's memory: it protects one server; several servers behind a balancer
//! each count on their own (the Argon2 cost still bounds their total rate).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked addresses, expired entries are swept on the next failure.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

fn key(email: &str) -> String {
    email.trim().to_lowercase()
}

impl LoginThrottle {
    /// `Err(wait)` when the address is locked out for `wait` more.
    pub fn check(&self, email: &str) -> Result<(), Duration> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match failures.get(&key(email)) {
            Some((count, since)) if *count >= MAX_FAILURES && since.elapsed() < WINDOW => {
                Err(WINDOW.saturating_sub(since.elapsed()))
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, email: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() > SWEEP_ABOVE {
            failures.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
        let entry = failures.entry(key(email)).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    pub fn succeeded(&self, email: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(&key(email));
    }
}

/// Signs in through the throttle: refused while locked out, counted when wrong.
pub async fn sign_in(
    state: &crate::AppState,
    email: &str,
    password: &str,
) -> Result<medarena_arena::IssuedToken, crate::error::ApiError> {
    if let Err(wait) = state.logins.check(email) {
        return Err(crate::error::ApiError::TooManySignIns {
            minutes: wait.as_secs().div_ceil(60),
        });
    }
    match state.arena.login(email, password).await {
        Ok(issued) => {
            state.logins.succeeded(email);
            Ok(issued)
        }
        Err(err) => {
            if matches!(err, medarena_arena::ArenaError::Unauthenticated) {
                state.logins.failed(email);
            }
            Err(err.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_one_address_until_a_success_or_the_window() {
        let throttle = LoginThrottle::default();
        for _ in 0..MAX_FAILURES {
            assert!(throttle.check("A@x.org").is_ok());
            throttle.failed("a@x.org ");
        }
        assert!(throttle.check("a@x.org").is_err());
        assert!(throttle.check("b@x.org").is_ok());
        throttle.succeeded("a@x.org");
        assert!(throttle.check("a@x.org").is_ok());
    }
}
