//! Accounts, Argon2 passwords, sessions and API tokens (expiry, revocation), admissions and
//! teams.

mod common;

use std::time::Duration;

use common::*;
use medarena_arena::{
    AdmissionDecision, AdmissionState, ArenaError, CredentialKind, OrgKind, Registration, Role,
    Tier,
};

#[tokio::test]
async fn registration_login_and_argon2_storage() {
    let world = World::new().await;
    let arena = &world.arena;
    let (actor, token) = sign_up(arena, "Ada@Example.org", Role::TeamMember).await;
    assert!(token.starts_with("mds_"), "{token}");
    let me = arena.me(&actor).await.expect("me");
    assert_eq!(me.account.email, "ada@example.org");
    assert_eq!(me.account.role, Role::TeamMember);
    assert!(me.organization.is_none());

    // The password is stored as an Argon2id PHC string, never in clear.
    let (_, hash) = arena
        .store()
        .account_by_email("ada@example.org")
        .await
        .expect("lookup")
        .expect("account");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));

    // E-mail matching is case-insensitive; wrong passwords and unknown e-mails look alike.
    assert!(arena.login("ADA@example.org", PASSWORD).await.is_ok());
    assert!(matches!(
        arena.login("ada@example.org", "wrong password!").await,
        Err(ArenaError::Unauthenticated)
    ));
    assert!(matches!(
        arena.login("nobody@example.org", PASSWORD).await,
        Err(ArenaError::Unauthenticated)
    ));
    assert!(matches!(
        arena.login("not an email", PASSWORD).await,
        Err(ArenaError::Unauthenticated)
    ));
}

#[tokio::test]
async fn registration_rules() {
    let world = World::new().await;
    let arena = &world.arena;
    let registration = |email: &str, password: &str, role: Role| Registration {
        email: email.to_owned(),
        display_name: "Someone".to_owned(),
        password: password.to_owned(),
        role,
    };
    sign_up(arena, "taken@example.org", Role::Hospital).await;
    let duplicate = arena
        .register(&registration("TAKEN@example.org", PASSWORD, Role::Hospital))
        .await;
    assert!(
        matches!(duplicate, Err(ArenaError::Conflict(_))),
        "{duplicate:?}"
    );
    let short = arena
        .register(&registration("new@example.org", "short", Role::Hospital))
        .await;
    assert!(
        matches!(&short, Err(ArenaError::Invalid { field, .. }) if field == "password"),
        "{short:?}"
    );
    let bad_email = arena
        .register(&registration("new-at-example", PASSWORD, Role::Hospital))
        .await;
    assert!(
        matches!(&bad_email, Err(ArenaError::Invalid { field, .. }) if field == "email"),
        "{bad_email:?}"
    );
    for role in [Role::Organizer, Role::Auditor] {
        let refused = arena
            .register(&registration("boss@example.org", PASSWORD, role))
            .await;
        assert!(
            matches!(refused, Err(ArenaError::Forbidden(_))),
            "{role}: {refused:?}"
        );
    }
    // Organizers bootstrap once, then create other privileged accounts.
    let organizer = organizer(arena).await;
    let again = arena
        .bootstrap_organizer("second@example.org", "Second", PASSWORD)
        .await;
    assert!(matches!(again, Err(ArenaError::Conflict(_))));
    let auditor = arena
        .create_account(
            &organizer,
            &registration("audit@example.org", PASSWORD, Role::Auditor),
        )
        .await
        .expect("auditor");
    assert_eq!(auditor.role, Role::Auditor);
    let (member, _) = sign_in(arena, "taken@example.org").await;
    let refused = arena
        .create_account(
            &member,
            &registration("x@example.org", PASSWORD, Role::Organizer),
        )
        .await;
    assert!(matches!(refused, Err(ArenaError::Forbidden(_))));
}

#[tokio::test]
async fn sessions_expire_and_can_be_revoked() {
    let world = World::new().await;
    let arena = &world.arena;
    let (actor, session) = sign_up(arena, "s@example.org", Role::Hospital).await;
    assert!(arena.authenticate(&session).await.is_ok());

    // Just before expiry it works; at expiry it does not.
    let ttl = arena.config().session_ttl;
    world.clock.advance(ttl - Duration::from_millis(1));
    assert!(arena.authenticate(&session).await.is_ok());
    world.clock.advance(Duration::from_millis(1));
    assert!(matches!(
        arena.authenticate(&session).await,
        Err(ArenaError::Unauthenticated)
    ));

    // Logout revokes immediately.
    let (_, second) = sign_in(arena, "s@example.org").await;
    arena.logout(&second).await.expect("logout");
    assert!(matches!(
        arena.authenticate(&second).await,
        Err(ArenaError::Unauthenticated)
    ));

    // Unknown and malformed tokens.
    assert!(matches!(
        arena.authenticate("mds_forged").await,
        Err(ArenaError::Unauthenticated)
    ));
    assert!(matches!(
        arena.authenticate("").await,
        Err(ArenaError::Unauthenticated)
    ));
    let listed = arena.credentials(&actor).await.expect("credentials");
    assert!(listed.iter().all(|c| c.kind == CredentialKind::Session));
    assert_eq!(listed.len(), 2);
}

#[tokio::test]
async fn api_tokens_expire_revoke_and_stay_owned() {
    let world = World::new().await;
    let arena = &world.arena;
    let organizer = organizer(arena).await;
    let (alice, _) = sign_up(arena, "alice@example.org", Role::TeamMember).await;
    let (bob, _) = sign_up(arena, "bob@example.org", Role::TeamMember).await;

    let issued = arena
        .create_api_token(&alice, "laptop cli", Some(Duration::from_secs(3600)))
        .await
        .expect("token");
    assert!(issued.token.starts_with("mda_"));
    assert_eq!(issued.credential.kind, CredentialKind::ApiToken);
    let as_alice = arena
        .authenticate(&issued.token)
        .await
        .expect("token works");
    assert_eq!(as_alice.account(), alice.account());

    // The database holds only a hash of the token.
    let stored = arena
        .store()
        .credentials_of(alice.account().expect("account"))
        .await
        .expect("list");
    assert!(stored.iter().any(|c| c.id == issued.credential.id));

    // Too long a lifetime is refused; so is a zero one.
    let too_long = arena
        .create_api_token(
            &alice,
            "forever",
            Some(Duration::from_secs(400 * 24 * 3600)),
        )
        .await;
    assert!(matches!(&too_long, Err(ArenaError::Invalid { field, .. }) if field == "ttl"));
    assert!(
        arena
            .create_api_token(&alice, "zero", Some(Duration::ZERO))
            .await
            .is_err()
    );
    assert!(matches!(
        arena
            .create_api_token(&medarena_arena::Actor::Anonymous, "anon", None)
            .await,
        Err(ArenaError::Unauthenticated)
    ));

    // Bob cannot revoke Alice's token; an organizer can; revoking twice is harmless.
    let denied = arena.revoke_credential(&bob, issued.credential.id).await;
    assert!(
        matches!(denied, Err(ArenaError::Forbidden(_))),
        "{denied:?}"
    );
    assert!(arena.authenticate(&issued.token).await.is_ok());
    arena
        .revoke_credential(&organizer, issued.credential.id)
        .await
        .expect("revoke");
    assert!(matches!(
        arena.authenticate(&issued.token).await,
        Err(ArenaError::Unauthenticated)
    ));
    arena
        .revoke_credential(&alice, issued.credential.id)
        .await
        .expect("revoke again");

    // Expiry.
    let short = arena
        .create_api_token(&alice, "short", Some(Duration::from_secs(60)))
        .await
        .expect("token");
    world.clock.advance(Duration::from_secs(61));
    assert!(matches!(
        arena.authenticate(&short.token).await,
        Err(ArenaError::Unauthenticated)
    ));
}

#[tokio::test]
async fn disabling_an_account_revokes_its_credentials() {
    let world = World::new().await;
    let arena = &world.arena;
    let organizer = organizer(arena).await;
    let (member, session) = sign_up(arena, "m@example.org", Role::TeamMember).await;
    let token = arena
        .create_api_token(&member, "cli", None)
        .await
        .expect("token");
    let account = member.account().expect("account");
    arena
        .set_account_disabled(&organizer, account, true)
        .await
        .expect("disable");
    for secret in [session.as_str(), token.token.as_str()] {
        assert!(matches!(
            arena.authenticate(secret).await,
            Err(ArenaError::Unauthenticated)
        ));
    }
    assert!(matches!(
        arena.login("m@example.org", PASSWORD).await,
        Err(ArenaError::Unauthenticated)
    ));
    arena
        .set_account_disabled(&organizer, account, false)
        .await
        .expect("enable");
    assert!(arena.login("m@example.org", PASSWORD).await.is_ok());
    // Old credentials stay revoked.
    assert!(arena.authenticate(&session).await.is_err());
    let own = arena
        .set_account_disabled(&organizer, organizer.account().expect("id"), true)
        .await;
    assert!(matches!(own, Err(ArenaError::Conflict(_))));
}

#[tokio::test]
async fn admission_review_with_tiers() {
    let world = World::new().await;
    let arena = &world.arena;
    let organizer = organizer(arena).await;
    let (hospital, hospital_token) = sign_up(arena, "h@hospital.test", Role::Hospital).await;
    let (member, member_token) = sign_up(arena, "t@team.test", Role::TeamMember).await;

    let hospital_org = arena
        .apply(&hospital, "  St. Elsewhere  ", "We hold cardiology records")
        .await
        .expect("apply");
    assert_eq!(
        (hospital_org.kind, hospital_org.admission),
        (OrgKind::Hospital, AdmissionState::Pending)
    );
    assert_eq!(hospital_org.name, "St. Elsewhere");
    let team_org = arena
        .apply(&member, "Gradient Descenders", "")
        .await
        .expect("apply");
    assert_eq!(team_org.kind, OrgKind::Team);

    // Applying twice, or under a taken name, conflicts; organizers do not apply.
    let hospital = arena.authenticate(&hospital_token).await.expect("auth");
    assert!(matches!(
        arena.apply(&hospital, "Another", "").await,
        Err(ArenaError::Forbidden(_))
    ));
    let (other, _) = sign_up(arena, "o@team.test", Role::TeamMember).await;
    assert!(matches!(
        arena.apply(&other, "Gradient Descenders", "").await,
        Err(ArenaError::Conflict(_))
    ));
    assert!(matches!(
        arena.apply(&organizer, "Org", "").await,
        Err(ArenaError::Forbidden(_))
    ));

    // Only organizers list and review.
    assert!(matches!(
        arena.applications(&member, None).await,
        Err(ArenaError::Forbidden(_))
    ));
    let pending = arena
        .applications(&organizer, Some(AdmissionState::Pending))
        .await
        .expect("list");
    assert_eq!(pending.len(), 2);
    let denied = arena
        .review_application(
            &member,
            team_org.id,
            &AdmissionDecision::Approve {
                tier: Some(Tier::DpAggregates),
            },
        )
        .await;
    assert!(matches!(denied, Err(ArenaError::Forbidden(_))));

    // Teams need a tier, hospitals must not have one.
    let no_tier = arena
        .review_application(
            &organizer,
            team_org.id,
            &AdmissionDecision::Approve { tier: None },
        )
        .await;
    assert!(matches!(&no_tier, Err(ArenaError::Invalid { field, .. }) if field == "tier"));
    let hospital_tier = arena
        .review_application(
            &organizer,
            hospital_org.id,
            &AdmissionDecision::Approve {
                tier: Some(Tier::RealData),
            },
        )
        .await;
    assert!(matches!(hospital_tier, Err(ArenaError::Invalid { .. })));

    let approved = arena
        .review_application(
            &organizer,
            team_org.id,
            &AdmissionDecision::Approve {
                tier: Some(Tier::DummyOnly),
            },
        )
        .await
        .expect("approve");
    assert_eq!(
        (approved.admission, approved.tier),
        (AdmissionState::Approved, Some(Tier::DummyOnly))
    );
    let rejected = arena
        .review_application(
            &organizer,
            hospital_org.id,
            &AdmissionDecision::Reject {
                note: Some("unknown site".into()),
            },
        )
        .await
        .expect("reject");
    assert_eq!(rejected.admission, AdmissionState::Rejected);

    // The actor picks up the decision at its next authentication.
    let member = arena.authenticate(&member_token).await.expect("auth");
    let membership = member.approved_org().expect("approved");
    assert_eq!(
        (membership.org, membership.tier),
        (team_org.id, Some(Tier::DummyOnly))
    );
    let hospital = arena.authenticate(&hospital_token).await.expect("auth");
    assert!(hospital.approved_org().is_none());

    // Upgrading a tier is another review.
    arena
        .review_application(
            &organizer,
            team_org.id,
            &AdmissionDecision::Approve {
                tier: Some(Tier::RealData),
            },
        )
        .await
        .expect("upgrade");
    let member = arena.authenticate(&member_token).await.expect("auth");
    assert_eq!(
        member.approved_org().and_then(|m| m.tier),
        Some(Tier::RealData)
    );
}

#[tokio::test]
async fn teams_have_several_members() {
    let world = World::new().await;
    let arena = &world.arena;
    let organizer = organizer(arena).await;
    let (lead, team) = admitted(
        arena,
        &organizer,
        "lead@team.test",
        Role::TeamMember,
        "Team",
        Some(Tier::RealData),
    )
    .await;
    let (_, second_token) = sign_up(arena, "second@team.test", Role::TeamMember).await;
    let (outsider, _) = sign_up(arena, "outsider@team.test", Role::TeamMember).await;
    let (_, _) = sign_up(arena, "nurse@hospital.test", Role::Hospital).await;

    // An outsider cannot add people to the team or read it.
    assert!(matches!(
        arena
            .add_team_member(&outsider, team, "second@team.test")
            .await,
        Err(ArenaError::Forbidden(_))
    ));
    assert!(matches!(
        arena.team(&outsider, team).await,
        Err(ArenaError::Forbidden(_))
    ));

    let added = arena
        .add_team_member(&lead, team, "SECOND@team.test")
        .await
        .expect("add");
    assert_eq!(added.org, Some(team));
    // A hospital account cannot join a team; nor can someone already in one.
    assert!(matches!(
        arena
            .add_team_member(&lead, team, "nurse@hospital.test")
            .await,
        Err(ArenaError::Conflict(_))
    ));
    assert!(matches!(
        arena.add_team_member(&lead, team, "second@team.test").await,
        Err(ArenaError::Conflict(_))
    ));
    assert!(matches!(
        arena.add_team_member(&lead, team, "ghost@team.test").await,
        Err(ArenaError::NotFound(_))
    ));

    let second = arena.authenticate(&second_token).await.expect("auth");
    assert_eq!(second.approved_org().map(|m| m.org), Some(team));
    let view = arena.team(&second, team).await.expect("team");
    assert_eq!(view.members.len(), 2);
    assert!(arena.team(&organizer, team).await.is_ok());
}

/// Sign-in throttling counts in the store: a second server on the same database (here a
/// second arena) refuses an address the first one counted five wrong passwords for.
#[tokio::test]
async fn wrong_passwords_lock_an_address_out_on_every_server_until_the_window_passes() {
    let world = World::new().await;
    let first = &world.arena;
    let second = world.reopen(world.executor.clone()).await;
    for n in 0..medarena_arena::SIGN_IN_MAX_FAILURES {
        assert_eq!(
            first
                .sign_in_lockout("Ada@Example.org")
                .await
                .expect("check"),
            None,
            "locked after {n} failures"
        );
        // Alternate servers: the count is one.
        let server = if n % 2 == 0 { first } else { &second };
        server
            .record_failed_sign_in(" ada@example.org")
            .await
            .expect("count");
    }
    let wait = second
        .sign_in_lockout("ada@example.org")
        .await
        .expect("check")
        .expect("locked out on the other server");
    assert!(wait <= medarena_arena::SIGN_IN_WINDOW && wait > Duration::from_secs(60));
    assert_eq!(
        first
            .sign_in_lockout("bob@example.org")
            .await
            .expect("check"),
        None,
        "only that address"
    );

    world.clock.advance(medarena_arena::SIGN_IN_WINDOW);
    assert_eq!(
        first
            .sign_in_lockout("ada@example.org")
            .await
            .expect("check"),
        None,
        "the window passed"
    );
    // A new count starts over; a success clears it.
    first
        .record_failed_sign_in("ada@example.org")
        .await
        .expect("count");
    second
        .clear_failed_sign_ins("ADA@example.org")
        .await
        .expect("clear");
    for _ in 1..medarena_arena::SIGN_IN_MAX_FAILURES {
        first
            .record_failed_sign_in("ada@example.org")
            .await
            .expect("count");
    }
    assert_eq!(
        first
            .sign_in_lockout("ada@example.org")
            .await
            .expect("check"),
        None,
        "the cleared failure no longer counts"
    );
}
