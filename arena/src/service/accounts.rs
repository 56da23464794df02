//! Accounts, credentials, admissions and teams.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Arena, clean_text};
use crate::auth::{PasswordError, TokenHash, generate_token, hash_password, verify_password};
use crate::authz::{Action, Actor, Resource, authorize};
use crate::error::{ArenaError, ArenaResult};
use crate::ids::{AccountId, CredentialId, OrgId};
use crate::model::{
    Account, AdmissionState, Credential, CredentialKind, OrgKind, Organization, Role, Tier,
};
use crate::store::{NewAccount, NewCredential};

/// Only update `last_used_at` when it is older than this, to keep reads from writing.
const TOUCH_EVERY_MS: i64 = 60_000;

/// A new account's details.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Registration {
    #[schemars(email, length(max = 254))]
    pub email: String,
    /// 1 to 100 characters, not only spaces, no control characters.
    #[schemars(length(min = 1, max = 100), regex(pattern = super::CLEAN_TEXT_PATTERN))]
    pub display_name: String,
    /// At least [`crate::auth::MIN_PASSWORD_CHARS`] characters.
    #[schemars(length(min = 10, max = 256))]
    pub password: String,
    pub role: Role,
}

/// A bearer token, shown once. The web layer sets it as a cookie (sessions) or prints it
/// (API tokens).
#[derive(Debug)]
pub struct IssuedToken {
    pub token: Zeroizing<String>,
    pub credential: Credential,
}

/// The organizer's decision on an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum AdmissionDecision {
    /// Teams need a tier; hospitals must not have one.
    Approve {
        tier: Option<Tier>,
    },
    Reject {
        note: Option<String>,
    },
}

/// The signed-in account and its organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Me {
    pub account: Account,
    pub organization: Option<Organization>,
}

/// A team and its members (names and e-mails; team members see each other).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TeamView {
    pub team: Organization,
    pub members: Vec<Account>,
}

/// Lower-cases and checks an e-mail address (shape only; no delivery is attempted).
fn normalize_email(email: &str) -> ArenaResult<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if valid {
        Ok(email)
    } else {
        Err(ArenaError::invalid("email", "is not an e-mail address"))
    }
}

fn password_error(err: PasswordError) -> ArenaError {
    match err {
        PasswordError::Hashing(message) => ArenaError::Internal(message),
        other => ArenaError::invalid("password", other.to_string()),
    }
}

impl Arena {
    async fn hash(&self, password: &str) -> ArenaResult<String> {
        let cost = self.inner.config.password_hashing;
        let password = Zeroizing::new(password.to_owned());
        tokio::task::spawn_blocking(move || hash_password(&password, &cost))
            .await
            .map_err(|err| ArenaError::Internal(err.to_string()))?
            .map_err(password_error)
    }

    async fn insert_account(
        &self,
        actor: &Actor,
        registration: &Registration,
    ) -> ArenaResult<Account> {
        let email = normalize_email(&registration.email)?;
        let display_name = clean_text("display_name", &registration.display_name, 100)?;
        crate::auth::check_password_policy(&registration.password).map_err(password_error)?;
        let password_hash = self.hash(&registration.password).await?;
        let account = self
            .inner
            .store
            .insert_account(
                self.stamp(actor),
                &NewAccount {
                    email,
                    display_name,
                    role: registration.role,
                    password_hash,
                },
            )
            .await?;
        self.deliver_audit_events().await;
        Ok(account)
    }

    /// Creates the first organizer. Refused once any organizer exists.
    pub async fn bootstrap_organizer(
        &self,
        email: &str,
        display_name: &str,
        password: &str,
    ) -> ArenaResult<Account> {
        if self.inner.store.count_accounts(Role::Organizer).await? > 0 {
            return Err(ArenaError::Conflict(
                "an organizer already exists".to_owned(),
            ));
        }
        let registration = Registration {
            email: email.to_owned(),
            display_name: display_name.to_owned(),
            password: password.to_owned(),
            role: Role::Organizer,
        };
        self.insert_account(&Actor::Anonymous, &registration).await
    }

    /// Self-service sign-up for hospital staff and team members; they then apply for
    /// admission (or are added to an existing team).
    pub async fn register(&self, registration: &Registration) -> ArenaResult<Account> {
        if !matches!(registration.role, Role::Hospital | Role::TeamMember) {
            return Err(ArenaError::Forbidden(
                "organizer and auditor accounts are created by an organizer".to_owned(),
            ));
        }
        self.insert_account(&Actor::Anonymous, registration).await
    }

    /// Creates an account of any role (organizers only).
    pub async fn create_account(
        &self,
        actor: &Actor,
        registration: &Registration,
    ) -> ArenaResult<Account> {
        authorize(actor, Action::ManageAccounts, Resource::Platform)?;
        self.insert_account(actor, registration).await
    }

    /// Disables (revoking every credential) or re-enables an account (organizers only).
    pub async fn set_account_disabled(
        &self,
        actor: &Actor,
        account: AccountId,
        disabled: bool,
    ) -> ArenaResult<Account> {
        authorize(actor, Action::ManageAccounts, Resource::Platform)?;
        if actor.account() == Some(account) && disabled {
            return Err(ArenaError::Conflict(
                "you cannot disable your own account".to_owned(),
            ));
        }
        let updated = self
            .inner
            .store
            .set_account_disabled(self.stamp(actor), account, disabled)
            .await?
            .ok_or_else(|| ArenaError::NotFound(account.to_string()))?;
        self.deliver_audit_events().await;
        Ok(updated)
    }

    /// Checks a password and opens a browser session.
    pub async fn login(&self, email: &str, password: &str) -> ArenaResult<IssuedToken> {
        let found = match normalize_email(email) {
            Ok(email) => self.inner.store.account_by_email(&email).await?,
            Err(_) => None,
        };
        let (account, hash) = match found {
            Some((account, hash)) => (Some(account), hash),
            None => (None, self.inner.decoy_password_hash.clone()),
        };
        let password = Zeroizing::new(password.to_owned());
        let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .map_err(|err| ArenaError::Internal(err.to_string()))?;
        let account = match account {
            Some(account) if matches && !account.disabled => account,
            _ => return Err(ArenaError::Unauthenticated),
        };
        let actor = self.actor_of(&account).await?;
        self.issue(
            &actor,
            account.id,
            CredentialKind::Session,
            "browser session",
            self.inner.config.session_ttl,
        )
        .await
    }

    /// How long sign-ins for `email` stay refused after [`SIGN_IN_MAX_FAILURES`] wrong
    /// passwords within [`SIGN_IN_WINDOW`] (`None`: not refused). Counted in the store, so
    /// every web server of a deployment enforces the same count. Addresses with no account
    /// are counted alike: the throttle tells nobody which addresses exist.
    pub async fn sign_in_lockout(&self, email: &str) -> ArenaResult<Option<Duration>> {
        let now = self.now();
        let window_start = now.minus(SIGN_IN_WINDOW);
        let failures = self
            .inner
            .store
            .sign_in_failures(&throttle_key(email), window_start)
            .await?;
        Ok(match failures {
            Some((count, first)) if count >= SIGN_IN_MAX_FAILURES => {
                let elapsed = Duration::from_millis(u64::try_from(now.0 - first.0).unwrap_or(0));
                Some(SIGN_IN_WINDOW.saturating_sub(elapsed))
            }
            _ => None,
        })
    }

    /// Counts a wrong password for `email`.
    pub async fn record_failed_sign_in(&self, email: &str) -> ArenaResult<()> {
        let now = self.now();
        self.inner
            .store
            .record_sign_in_failure(&throttle_key(email), now, now.minus(SIGN_IN_WINDOW))
            .await?;
        Ok(())
    }

    /// Forgets the wrong passwords of `email` (after a successful sign-in).
    pub async fn clear_failed_sign_ins(&self, email: &str) -> ArenaResult<()> {
        self.inner
            .store
            .clear_sign_in_failures(&throttle_key(email))
            .await?;
        Ok(())
    }

    /// Revokes the session or token presented (sign out).
    pub async fn logout(&self, token: &str) -> ArenaResult<()> {
        let credential = self
            .inner
            .store
            .credential_by_hash(&TokenHash::of(token))
            .await?
            .ok_or(ArenaError::Unauthenticated)?;
        let stamp = crate::store::Stamp {
            at: self.now(),
            actor: Some(credential.account),
        };
        self.inner
            .store
            .revoke_credential(stamp, credential.id)
            .await?;
        self.deliver_audit_events().await;
        Ok(())
    }

    /// Creates a named API token for the signed-in account (for the CLI). `ttl` defaults to
    /// the configured token lifetime and may not exceed the configured maximum.
    pub async fn create_api_token(
        &self,
        actor: &Actor,
        name: &str,
        ttl: Option<Duration>,
    ) -> ArenaResult<IssuedToken> {
        let account = actor.account().ok_or(ArenaError::Unauthenticated)?;
        let name = clean_text("name", name, 100)?;
        let ttl = ttl.unwrap_or(self.inner.config.api_token_ttl);
        if ttl.is_zero() || ttl > self.inner.config.api_token_max_ttl {
            return Err(ArenaError::invalid(
                "ttl",
                format!(
                    "must be between 1 second and {} days",
                    self.inner.config.api_token_max_ttl.as_secs() / 86_400
                ),
            ));
        }
        self.issue(actor, account, CredentialKind::ApiToken, &name, ttl)
            .await
    }

    async fn issue(
        &self,
        actor: &Actor,
        account: AccountId,
        kind: CredentialKind,
        name: &str,
        ttl: Duration,
    ) -> ArenaResult<IssuedToken> {
        let secret = generate_token(kind);
        let stamp = self.stamp(actor);
        let credential = self
            .inner
            .store
            .insert_credential(
                stamp,
                &NewCredential {
                    account,
                    kind,
                    name: name.to_owned(),
                    token_hash: secret.hash,
                    expires_at: stamp.at.plus(ttl),
                },
            )
            .await?;
        self.deliver_audit_events().await;
        Ok(IssuedToken {
            token: secret.secret,
            credential,
        })
    }

    /// Lists the signed-in account's sessions and tokens.
    pub async fn credentials(&self, actor: &Actor) -> ArenaResult<Vec<Credential>> {
        let account = actor.account().ok_or(ArenaError::Unauthenticated)?;
        authorize(
            actor,
            Action::ManageCredential,
            Resource::Credential { owner: account },
        )?;
        Ok(self.inner.store.credentials_of(account).await?)
    }

    /// Revokes a session or token: its owner, or an organizer.
    pub async fn revoke_credential(&self, actor: &Actor, id: CredentialId) -> ArenaResult<()> {
        let credential = self
            .inner
            .store
            .credential(id)
            .await?
            .ok_or_else(|| ArenaError::NotFound(id.to_string()))?;
        authorize(
            actor,
            Action::ManageCredential,
            Resource::Credential {
                owner: credential.account,
            },
        )?;
        self.inner
            .store
            .revoke_credential(self.stamp(actor), id)
            .await?;
        self.deliver_audit_events().await;
        Ok(())
    }

    /// Resolves a bearer token to an actor. Unknown, expired and revoked tokens, and tokens
    /// of disabled accounts, all give `Unauthenticated`.
    pub async fn authenticate(&self, token: &str) -> ArenaResult<Actor> {
        let now = self.now();
        let credential = self
            .inner
            .store
            .credential_by_hash(&TokenHash::of(token))
            .await?
            .filter(|c| c.is_live(now))
            .ok_or(ArenaError::Unauthenticated)?;
        let account = self
            .inner
            .store
            .account(credential.account)
            .await?
            .filter(|a| !a.disabled)
            .ok_or(ArenaError::Unauthenticated)?;
        if credential
            .last_used_at
            .is_none_or(|t| now.0 - t.0 >= TOUCH_EVERY_MS)
        {
            self.inner
                .store
                .touch_credential(credential.id, now)
                .await?;
        }
        self.actor_of(&account).await
    }

    /// The signed-in account and its organization.
    pub async fn me(&self, actor: &Actor) -> ArenaResult<Me> {
        let id = actor.account().ok_or(ArenaError::Unauthenticated)?;
        let account = self
            .inner
            .store
            .account(id)
            .await?
            .ok_or_else(|| ArenaError::NotFound(id.to_string()))?;
        let organization = match account.org {
            Some(org) => self.inner.store.org(org).await?,
            None => None,
        };
        Ok(Me {
            account,
            organization,
        })
    }

    /// Applies to join as a new hospital (hospital accounts) or a new team (team members).
    /// The applicant becomes the organization's first member; an organizer reviews.
    pub async fn apply(
        &self,
        actor: &Actor,
        name: &str,
        statement: &str,
    ) -> ArenaResult<Organization> {
        authorize(actor, Action::ApplyForAdmission, Resource::Platform)?;
        let principal = actor.principal().ok_or(ArenaError::Unauthenticated)?;
        let kind = match principal.role {
            Role::Hospital => OrgKind::Hospital,
            Role::TeamMember => OrgKind::Team,
            _ => {
                return Err(ArenaError::Forbidden(
                    "only hospitals and teams apply".to_owned(),
                ));
            }
        };
        let name = clean_text("name", name, 100)?;
        let statement = statement.trim();
        if statement.chars().count() > 10_000 {
            return Err(ArenaError::invalid(
                "statement",
                "must be at most 10000 characters",
            ));
        }
        let org = self
            .inner
            .store
            .insert_org(self.stamp(actor), kind, &name, statement, principal.account)
            .await?;
        self.deliver_audit_events().await;
        Ok(org)
    }

    /// Applications, optionally only those in one state (organizers).
    pub async fn applications(
        &self,
        actor: &Actor,
        state: Option<AdmissionState>,
    ) -> ArenaResult<Vec<Organization>> {
        authorize(actor, Action::ReviewAdmissions, Resource::Platform)?;
        Ok(self.inner.store.orgs(state).await?)
    }

    /// Approves (with a tier for teams) or rejects an application. Approved organizations can
    /// be reviewed again, e.g. to change a team's tier.
    pub async fn review_application(
        &self,
        actor: &Actor,
        org: OrgId,
        decision: &AdmissionDecision,
    ) -> ArenaResult<Organization> {
        authorize(actor, Action::ReviewAdmissions, Resource::Platform)?;
        let existing = self
            .inner
            .store
            .org(org)
            .await?
            .ok_or_else(|| ArenaError::NotFound(org.to_string()))?;
        let (admission, tier, note) = match decision {
            AdmissionDecision::Approve { tier } => {
                match (existing.kind, tier) {
                    (OrgKind::Team, None) => {
                        return Err(ArenaError::invalid("tier", "approving a team needs a tier"));
                    }
                    (OrgKind::Hospital, Some(_)) => {
                        return Err(ArenaError::invalid("tier", "hospitals have no tier"));
                    }
                    _ => {}
                }
                (AdmissionState::Approved, *tier, None)
            }
            AdmissionDecision::Reject { note } => {
                let note = note
                    .as_deref()
                    .map(|n| clean_text("note", n, 2_000))
                    .transpose()?;
                (AdmissionState::Rejected, None, note)
            }
        };
        let reviewed = self
            .inner
            .store
            .review_org(self.stamp(actor), org, admission, tier, note.as_deref())
            .await?
            .ok_or_else(|| ArenaError::NotFound(org.to_string()))?;
        self.deliver_audit_events().await;
        Ok(reviewed)
    }

    /// Adds an existing team-member account (by e-mail) that belongs to no organization.
    pub async fn add_team_member(
        &self,
        actor: &Actor,
        team: OrgId,
        email: &str,
    ) -> ArenaResult<Account> {
        authorize(actor, Action::ManageTeam, Resource::Team(team))?;
        let org = self
            .inner
            .store
            .org(team)
            .await?
            .filter(|o| o.kind == OrgKind::Team)
            .ok_or_else(|| ArenaError::NotFound(team.to_string()))?;
        let email = normalize_email(email)?;
        let (account, _) = self
            .inner
            .store
            .account_by_email(&email)
            .await?
            .ok_or_else(|| ArenaError::NotFound(format!("an account with e-mail {email}")))?;
        if account.role != Role::TeamMember {
            return Err(ArenaError::Conflict(
                "only team-member accounts can join a team".to_owned(),
            ));
        }
        if !self
            .inner
            .store
            .add_member(self.stamp(actor), org.id, account.id)
            .await?
        {
            return Err(ArenaError::Conflict(
                "that account already belongs to an organization".to_owned(),
            ));
        }
        self.deliver_audit_events().await;
        let refreshed = self.inner.store.account(account.id).await?;
        refreshed.ok_or_else(|| ArenaError::NotFound(account.id.to_string()))
    }

    /// A team and its members: its members and organizers.
    pub async fn team(&self, actor: &Actor, team: OrgId) -> ArenaResult<TeamView> {
        authorize(actor, Action::ViewTeam, Resource::Team(team))?;
        let org = self
            .inner
            .store
            .org(team)
            .await?
            .filter(|o| o.kind == OrgKind::Team)
            .ok_or_else(|| ArenaError::NotFound(team.to_string()))?;
        let members = self.inner.store.members(team).await?;
        Ok(TeamView { team: org, members })
    }
}

/// Wrong passwords for one address before its sign-ins are refused for the rest of
/// [`SIGN_IN_WINDOW`]: a guessing attack gets a handful of tries per quarter hour, whatever
/// its request rate and however many servers it spreads over.
pub const SIGN_IN_MAX_FAILURES: i64 = 5;
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The throttle counts per address as typed, case and spaces aside (valid or not).
fn throttle_key(email: &str) -> String {
    email.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email("  Ada@Example.ORG ").ok().as_deref(),
            Some("ada@example.org")
        );
        for bad in [
            "",
            "ada",
            "@example.org",
            "ada@localhost",
            "a b@example.org",
            "a@b@c.org",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
