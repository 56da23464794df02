//! Sign-in throttling: after [`medarena_arena::SIGN_IN_MAX_FAILURES`] wrong passwords for one
//! e-mail address within [`medarena_arena::SIGN_IN_WINDOW`], further attempts for
//! it are refused (429) until the window has passed, without checking the password. A
//! success clears the count. The count lives in the database, so several web servers
//! behind a load balancer enforce one limit together.

/// Signs in through the throttle: refused while locked out, counted when wrong.
pub async fn sign_in(
    state: &crate::AppState,
    email: &str,
    password: &str,
) -> Result<medarena_arena::IssuedToken, crate::error::ApiError> {
    if let Some(wait) = state.arena.sign_in_lockout(email).await? {
        return Err(crate::error::ApiError::TooManySignIns {
            minutes: wait.as_secs().div_ceil(60).max(1),
        });
    }
    match state.arena.login(email, password).await {
        Ok(issued) => {
            state.arena.clear_failed_sign_ins(email).await?;
            Ok(issued)
        }
        Err(err) => {
            if matches!(err, medarena_arena::ArenaError::Unauthenticated) {
                state.arena.record_failed_sign_in(email).await?;
            }
            Err(err.into())
        }
    }
}
