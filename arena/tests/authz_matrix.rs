//! The role matrix, exhaustively: every action × every kind of actor × every resource, checked
//! against a table written out by hand; then the same rules seen through the arena's
//! operations (a team reading another team's submission, a hospital reading another
//! hospital's upload, nobody downloading raw data).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use medarena_arena::{
    AccountId, Action, Actor, AdmissionState, ArenaError, Denial, LeaderboardKind, Membership,
    OrgId, Principal, Resource, Role, Tier, authorize,
};

const H1: OrgId = OrgId(1);
const H2: OrgId = OrgId(2);
const H3: OrgId = OrgId(3);
const T1: OrgId = OrgId(11);
const T2: OrgId = OrgId(12);
const T4: OrgId = OrgId(14);
const T5: OrgId = OrgId(15);
const T6: OrgId = OrgId(16);
const TEAM_X_ACCOUNT: AccountId = AccountId(107);
const AUDITOR_ACCOUNT: AccountId = AccountId(102);

fn account(
    id: i64,
    role: Role,
    membership: Option<(OrgId, AdmissionState, Option<Tier>)>,
) -> Actor {
    Actor::Account(Principal {
        account: AccountId(id),
        role,
        membership: membership.map(|(org, admission, tier)| Membership {
            org,
            admission,
            tier,
        }),
    })
}

/// One actor of each kind that matters to the matrix.
fn actors() -> Vec<(&'static str, Actor)> {
    use AdmissionState::{Approved, Pending};
    vec![
        ("anonymous", Actor::Anonymous),
        ("organizer", account(101, Role::Organizer, None)),
        ("auditor", account(AUDITOR_ACCOUNT.0, Role::Auditor, None)),
        (
            "hospital_a",
            account(103, Role::Hospital, Some((H1, Approved, None))),
        ),
        (
            "hospital_pending",
            account(104, Role::Hospital, Some((H3, Pending, None))),
        ),
        ("hospital_none", account(105, Role::Hospital, None)),
        ("team_none", account(106, Role::TeamMember, None)),
        (
            "team_x",
            account(
                TEAM_X_ACCOUNT.0,
                Role::TeamMember,
                Some((T1, Approved, Some(Tier::RealData))),
            ),
        ),
        (
            "team_dummy",
            account(
                108,
                Role::TeamMember,
                Some((T4, Approved, Some(Tier::DummyOnly))),
            ),
        ),
        (
            "team_dp",
            account(
                109,
                Role::TeamMember,
                Some((T5, Approved, Some(Tier::DpAggregates))),
            ),
        ),
        (
            "team_pending",
            account(110, Role::TeamMember, Some((T6, Pending, None))),
        ),
    ]
}

const H1_ONLY: &[OrgId] = &[H1];
const H2_ONLY: &[OrgId] = &[H2];

fn resources() -> Vec<(&'static str, Resource<'static>)> {
    vec![
        ("platform", Resource::Platform),
        ("ledger", Resource::Ledger),
        ("competition", Resource::Competition { published: false }),
        (
            "published_competition",
            Resource::Competition { published: true },
        ),
        ("team_x", Resource::Team(T1)),
        ("team_other", Resource::Team(T2)),
        ("team_dummy", Resource::Team(T4)),
        ("team_dp", Resource::Team(T5)),
        ("team_pending", Resource::Team(T6)),
        (
            "dataset_of_a",
            Resource::Dataset {
                contributors: H1_ONLY,
            },
        ),
        (
            "dataset_of_b",
            Resource::Dataset {
                contributors: H2_ONLY,
            },
        ),
        ("contribution_of_a", Resource::Contribution { hospital: H1 }),
        ("contribution_of_b", Resource::Contribution { hospital: H2 }),
        ("submission_of_x", Resource::Submission { team: T1 }),
        ("submission_of_other", Resource::Submission { team: T2 }),
        (
            "credential_of_x",
            Resource::Credential {
                owner: TEAM_X_ACCOUNT,
            },
        ),
        (
            "credential_of_other",
            Resource::Credential {
                owner: AccountId(999),
            },
        ),
        (
            "contract_of_a_with_x",
            Resource::Contract {
                hospitals: H1_ONLY,
                team: Some(T1),
                auditor: Some(AUDITOR_ACCOUNT),
            },
        ),
        (
            "open_contract_of_a",
            Resource::Contract {
                hospitals: H1_ONLY,
                team: None,
                auditor: None,
            },
        ),
        (
            "contract_of_b",
            Resource::Contract {
                hospitals: H2_ONLY,
                team: Some(T2),
                auditor: None,
            },
        ),
    ]
}

const EVERYONE: &[&str] = &[
    "anonymous",
    "organizer",
    "auditor",
    "hospital_a",
    "hospital_pending",
    "hospital_none",
    "team_none",
    "team_x",
    "team_dummy",
    "team_dp",
    "team_pending",
];

/// The matrix, by hand: (action, resource) → who is allowed. Any pair not listed is denied
/// to everyone.
fn expected() -> BTreeMap<(Action, &'static str), Vec<&'static str>> {
    use Action as A;
    let mut table: BTreeMap<(Action, &'static str), Vec<&'static str>> = BTreeMap::new();
    let mut allow = |action: Action, resources: &[&'static str], who: &[&'static str]| {
        for resource in resources {
            table.insert((action, resource), who.to_vec());
        }
    };
    allow(
        A::ViewPublic,
        &[
            "platform",
            "competition",
            "published_competition",
            "dataset_of_a",
            "dataset_of_b",
        ],
        EVERYONE,
    );
    allow(A::ViewLedger, &["ledger"], EVERYONE);
    allow(A::ViewAuditTrail, &["platform"], &["organizer", "auditor"]);
    allow(A::ManageAccounts, &["platform"], &["organizer"]);
    allow(A::CreateCompetition, &["platform"], &["organizer"]);
    allow(A::ReviewAdmissions, &["platform"], &["organizer"]);
    allow(
        A::ManageCompetition,
        &["competition", "published_competition"],
        &["organizer"],
    );
    allow(
        A::ViewExactScores,
        &["competition", "published_competition"],
        &["organizer"],
    );
    allow(A::ViewPrivateLeaderboard, &["competition"], &["organizer"]);
    allow(
        A::ViewPrivateLeaderboard,
        &["published_competition"],
        EVERYONE,
    );
    allow(
        A::ApplyForAdmission,
        &["platform"],
        &["hospital_none", "team_none"],
    );
    for action in [A::ViewTeam, A::ManageTeam, A::ViewBudget] {
        allow(action, &["team_x"], &["organizer", "team_x"]);
        allow(action, &["team_other"], &["organizer"]);
        allow(action, &["team_dummy"], &["organizer", "team_dummy"]);
        allow(action, &["team_dp"], &["organizer", "team_dp"]);
        allow(action, &["team_pending"], &["organizer", "team_pending"]);
    }
    allow(
        A::CreateDataset,
        &["platform"],
        &["organizer", "hospital_a"],
    );
    allow(
        A::ContributeData,
        &["dataset_of_a", "dataset_of_b"],
        &["hospital_a"],
    );
    allow(
        A::ViewContribution,
        &["contribution_of_a"],
        &["organizer", "hospital_a"],
    );
    allow(A::ViewContribution, &["contribution_of_b"], &["organizer"]);
    // Withdrawing is the contributing hospital's alone (not even organizers').
    allow(
        A::WithdrawContribution,
        &["contribution_of_a"],
        &["hospital_a"],
    );
    allow(
        A::ViewDatasetUsage,
        &["dataset_of_a"],
        &["organizer", "hospital_a"],
    );
    allow(A::ViewDatasetUsage, &["dataset_of_b"], &["organizer"]);
    // Per-hospital scores: the competition's contributing hospitals (their own rows, the
    // service filters) and organizers.
    allow(
        A::ViewSiteScores,
        &["dataset_of_a"],
        &["organizer", "hospital_a"],
    );
    allow(A::ViewSiteScores, &["dataset_of_b"], &["organizer"]);
    // A dataset's privacy terms are its contributing hospitals' to set, not organizers'.
    allow(A::SetDatasetPrivacy, &["dataset_of_a"], &["hospital_a"]);
    // So are its synthetic releases (measured from the hospital's own rows).
    allow(A::ManageSyntheticData, &["dataset_of_a"], &["hospital_a"]);
    // And whether its dataset may be used at all.
    allow(A::SuspendDatasetUse, &["dataset_of_a"], &["hospital_a"]);
    allow(A::ViewMetrics, &["platform"], &["organizer"]);
    allow(
        A::ReviewDataset,
        &["dataset_of_a", "dataset_of_b"],
        &["organizer"],
    );
    allow(
        A::DownloadDummyData,
        &["dataset_of_a", "dataset_of_b"],
        &["organizer", "hospital_a", "team_x", "team_dummy", "team_dp"],
    );
    // DownloadRawData: nobody, on anything.
    for action in [A::AcceptAgreement, A::Submit] {
        allow(action, &["team_x"], &["team_x"]);
        allow(action, &["team_dummy"], &["team_dummy"]);
        allow(action, &["team_dp"], &["team_dp"]);
    }
    allow(A::RequestDpAggregate, &["team_dp"], &["team_dp"]);
    allow(
        A::ViewSubmission,
        &["submission_of_x"],
        &["organizer", "team_x"],
    );
    allow(A::ViewSubmission, &["submission_of_other"], &["organizer"]);
    allow(
        A::DownloadSubmissionModule,
        &["submission_of_x"],
        &["team_x"],
    );
    allow(
        A::ManageCredential,
        &["credential_of_x"],
        &["organizer", "team_x"],
    );
    allow(
        A::ManageCredential,
        &["credential_of_other"],
        &["organizer"],
    );
    // Contracts: organizers propose (and accept for the platform); its parties see and act.
    allow(A::ProposeContract, &["platform"], &["organizer"]);
    allow(
        A::ViewContract,
        &["contract_of_a_with_x"],
        &["organizer", "auditor", "hospital_a", "team_x"],
    );
    // An open offer is shown to every admitted team...
    allow(
        A::ViewContract,
        &["open_contract_of_a"],
        &[
            "organizer",
            "auditor",
            "hospital_a",
            "team_x",
            "team_dummy",
            "team_dp",
        ],
    );
    allow(
        A::ViewContract,
        &["contract_of_b"],
        &["organizer", "auditor"],
    );
    // ... and accepted by those admitted to real data; a named auditor accepts too.
    allow(
        A::AcceptContract,
        &["contract_of_a_with_x"],
        &["organizer", "auditor", "hospital_a", "team_x"],
    );
    allow(
        A::AcceptContract,
        &["open_contract_of_a"],
        &["organizer", "hospital_a", "team_x", "team_dp"],
    );
    allow(A::AcceptContract, &["contract_of_b"], &["organizer"]);
    allow(
        A::SuspendContract,
        &["contract_of_a_with_x", "open_contract_of_a"],
        &["organizer", "hospital_a"],
    );
    allow(A::SuspendContract, &["contract_of_b"], &["organizer"]);
    allow(
        A::TerminateContract,
        &["contract_of_a_with_x"],
        &["organizer", "hospital_a", "team_x"],
    );
    allow(
        A::TerminateContract,
        &["open_contract_of_a"],
        &["organizer", "hospital_a"],
    );
    allow(A::TerminateContract, &["contract_of_b"], &["organizer"]);
    allow(
        A::ViewStatement,
        &["platform"],
        &[
            "organizer",
            "auditor",
            "hospital_a",
            "team_x",
            "team_dummy",
            "team_dp",
        ],
    );
    table
}

#[test]
fn every_action_role_and_resource_matches_the_table() {
    let table = expected();
    let covered: BTreeSet<Action> = table.keys().map(|(action, _)| *action).collect();
    for action in Action::ALL {
        assert!(
            covered.contains(action) || *action == Action::DownloadRawData,
            "{action:?} has no row in the expected matrix"
        );
    }
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for action in Action::ALL {
        for (resource_name, resource) in resources() {
            let allowed = table
                .get(&(*action, resource_name))
                .cloned()
                .unwrap_or_default();
            for (actor_name, actor) in actors() {
                checked += 1;
                let expect = allowed.contains(&actor_name);
                let decision = authorize(&actor, *action, resource);
                if decision.is_ok() != expect {
                    mismatches.push(format!(
                        "{action:?} on {resource_name} by {actor_name}: got {decision:?}"
                    ));
                }
                if let Err(denial) = decision {
                    let expected_kind =
                        if actor_name == "anonymous" && *action != Action::DownloadRawData {
                            Denial::Unauthenticated(*action)
                        } else {
                            Denial::Forbidden(*action)
                        };
                    assert_eq!(
                        denial, expected_kind,
                        "{action:?} on {resource_name} by {actor_name}"
                    );
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert_eq!(
        checked,
        Action::ALL.len() * resources().len() * actors().len()
    );
}

#[test]
fn nobody_downloads_raw_data() {
    for (actor_name, actor) in actors() {
        for (resource_name, resource) in resources() {
            assert!(
                authorize(&actor, Action::DownloadRawData, resource).is_err(),
                "{actor_name} could download raw data from {resource_name}"
            );
        }
    }
}

/// The same rules through the arena's operations, on real records.
#[tokio::test]
async fn operations_enforce_the_matrix() {
    let world = World::new().await;
    let arena = &world.arena;
    let cast = cast(arena, EXAMPLE_BUNDLE).await;
    let submitted = arena
        .submit(&cast.team_x, cast.competition, &module(1))
        .await
        .expect("submit");
    world.release().await;

    // A team reads its own submission, not another team's; organizers read every one.
    assert!(arena.submission(&cast.team_x, submitted.id).await.is_ok());
    assert!(matches!(
        arena.submission(&cast.team_y, submitted.id).await,
        Err(ArenaError::Forbidden(_))
    ));
    assert!(matches!(
        arena.submission(&cast.hospital_a, submitted.id).await,
        Err(ArenaError::Forbidden(_))
    ));
    assert!(matches!(
        arena.submission(&Actor::Anonymous, submitted.id).await,
        Err(ArenaError::Unauthenticated)
    ));
    assert!(
        arena
            .submission(&cast.organizer, submitted.id)
            .await
            .is_ok()
    );
    let others = arena
        .submissions(&cast.team_y, cast.competition, Some(cast.team_x_org))
        .await;
    assert!(matches!(others, Err(ArenaError::Forbidden(_))));
    let own = arena
        .submissions(&cast.team_y, cast.competition, None)
        .await
        .expect("own list");
    assert!(own.is_empty(), "team Y sees only its own submissions");
    assert!(matches!(
        arena
            .submissions(&cast.hospital_a, cast.competition, None)
            .await,
        Err(ArenaError::Forbidden(_))
    ));
    assert_eq!(
        arena
            .submissions(&cast.organizer, cast.competition, None)
            .await
            .expect("all")
            .len(),
        1
    );

    // The module itself goes back to its own team only, not even to organizers.
    assert!(
        arena
            .download_module(&cast.team_x, submitted.id)
            .await
            .is_ok()
    );
    for outsider in [
        &cast.team_y,
        &cast.organizer,
        &cast.hospital_a,
        &cast.auditor,
    ] {
        assert!(matches!(
            arena.download_module(outsider, submitted.id).await,
            Err(ArenaError::Forbidden(_))
        ));
    }

    // Exact scores: organizers only; a team sees released scores only.
    let team_view = arena
        .submission(&cast.team_x, submitted.id)
        .await
        .expect("view");
    assert!(team_view.exact.is_none() && team_view.private_score.is_none());
    assert!(team_view.released_public_score.is_some());
    let organizer_view = arena
        .submission(&cast.organizer, submitted.id)
        .await
        .expect("view");
    assert!(
        organizer_view
            .exact
            .is_some_and(|e| e.exact_public_score.is_some())
    );
    assert!(matches!(
        arena.exact_scores(&cast.team_x, cast.competition).await,
        Err(ArenaError::Forbidden(_))
    ));

    // A hospital sees its own upload's report, not another hospital's.
    let view_a = arena
        .dataset(&cast.hospital_a, cast.dataset)
        .await
        .expect("dataset");
    assert_eq!(view_a.contributor_count, 2);
    assert!(
        view_a
            .contributions
            .iter()
            .all(|c| c.hospital == cast.hospital_a_org)
    );
    assert_eq!(view_a.contributions.len(), 1);
    let b_contribution = arena
        .dataset(&cast.hospital_b, cast.dataset)
        .await
        .expect("dataset")
        .contributions
        .first()
        .map(|c| c.id)
        .expect("hospital B sees its own contribution");
    assert!(matches!(
        arena.contribution(&cast.hospital_a, b_contribution).await,
        Err(ArenaError::Forbidden(_))
    ));
    assert!(matches!(
        arena.contribution(&cast.team_x, b_contribution).await,
        Err(ArenaError::Forbidden(_))
    ));
    assert!(
        arena
            .contribution(&cast.organizer, b_contribution)
            .await
            .is_ok()
    );
    let team_view = arena
        .dataset(&cast.team_x, cast.dataset)
        .await
        .expect("catalog");
    assert!(team_view.contributions.is_empty());

    // Usage: contributing hospitals and organizers.
    assert!(
        !arena
            .dataset_usage(&cast.hospital_b, cast.dataset)
            .await
            .expect("usage")
            .is_empty()
    );
    assert!(
        arena
            .dataset_usage(&cast.organizer, cast.dataset)
            .await
            .is_ok()
    );
    assert!(matches!(
        arena.dataset_usage(&cast.team_x, cast.dataset).await,
        Err(ArenaError::Forbidden(_))
    ));

    // Registration certificates: the dataset's hospitals and organizers (as its usage).
    for actor in [&cast.organizer, &cast.hospital_a, &cast.hospital_b] {
        assert!(
            arena
                .registration_certificate(actor, cast.dataset)
                .await
                .is_ok()
        );
    }
    for actor in [&cast.team_x, &cast.auditor] {
        assert!(matches!(
            arena.registration_certificate(actor, cast.dataset).await,
            Err(ArenaError::Forbidden(_))
        ));
    }
    assert!(matches!(
        arena
            .registration_certificate(&Actor::Anonymous, cast.dataset)
            .await,
        Err(ArenaError::Unauthenticated)
    ));
    // Result certificates: as the private leaderboard (organizers until publication).
    assert!(
        arena
            .result_certificates(&cast.organizer, cast.competition)
            .await
            .is_ok()
    );
    assert!(matches!(
        arena
            .result_certificates(&cast.team_x, cast.competition)
            .await,
        Err(ArenaError::Forbidden(_))
    ));
    assert!(matches!(
        arena
            .result_certificates(&Actor::Anonymous, cast.competition)
            .await,
        Err(ArenaError::Unauthenticated)
    ));

    // Budgets: the team itself and organizers.
    assert!(
        arena
            .budget(&cast.team_x, cast.competition, cast.team_x_org)
            .await
            .is_ok()
    );
    assert!(
        arena
            .budget(&cast.organizer, cast.competition, cast.team_x_org)
            .await
            .is_ok()
    );
    assert!(matches!(
        arena
            .budget(&cast.team_y, cast.competition, cast.team_x_org)
            .await,
        Err(ArenaError::Forbidden(_))
    ));

    // Leaderboards: public for everyone, private for organizers until published.
    assert!(
        arena
            .leaderboard(&Actor::Anonymous, cast.competition, LeaderboardKind::Public)
            .await
            .is_ok()
    );
    assert!(matches!(
        arena
            .leaderboard(
                &Actor::Anonymous,
                cast.competition,
                LeaderboardKind::Private
            )
            .await,
        Err(ArenaError::Unauthenticated)
    ));
    assert!(matches!(
        arena
            .leaderboard(&cast.team_x, cast.competition, LeaderboardKind::Private)
            .await,
        Err(ArenaError::Forbidden(_))
    ));

    // Administration: organizers only.
    assert!(matches!(
        arena
            .close_competition(&cast.team_x, cast.competition)
            .await,
        Err(ArenaError::Forbidden(_))
    ));
    assert!(matches!(
        arena
            .review_dataset(
                &cast.hospital_a,
                cast.dataset,
                &medarena_arena::DatasetReview::approve_all("checked")
            )
            .await,
        Err(ArenaError::Forbidden(_))
    ));
    assert!(matches!(
        arena
            .create_competition(&cast.hospital_a, EXAMPLE_BUNDLE)
            .await,
        Err(ArenaError::Forbidden(_))
    ));
    assert!(matches!(
        arena.audit_trail(&cast.team_x, "submission:1").await,
        Err(ArenaError::Forbidden(_))
    ));
    assert!(
        arena
            .audit_trail(&cast.auditor, "submission:1")
            .await
            .is_ok()
    );

    // Hospitals do not submit; teams do not upload.
    assert!(matches!(
        arena
            .submit(&cast.hospital_a, cast.competition, &module(2))
            .await,
        Err(ArenaError::Forbidden(_))
    ));
    assert!(matches!(
        arena
            .upload_contribution(&cast.team_x, cast.dataset, &csv_upload("x.csv", 3))
            .await,
        Err(ArenaError::Forbidden(_))
    ));
}
