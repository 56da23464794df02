//! Three-party contracts: proposal, acceptance by every party, the run gate (queueing and
//! start), suspension, termination, expiry and fulfilment, and the parties' statements of
//! metered use agreeing with each other and with the audit log.

mod common;

use std::time::Duration;

use common::*;
use medarena_arena::contract::{ContractState, Delivery, Party, Quote};
use medarena_arena::testing::SCRIPTED_USAGE;
use medarena_arena::{
    ArenaError, AuditEvent, ContractAction, ContractProposal, JobKind, RunOutcome,
    StatementRequest, SubmissionStatus,
};
use rust_decimal::Decimal;

/// Ends the open offer `cast` made, so that the competition has no contract in force.
async fn end_cast_contract(world: &World, cast: &Cast) {
    for contract in world
        .arena
        .contracts(&cast.organizer, Some(cast.competition))
        .await
        .expect("contracts")
    {
        world
            .arena
            .change_contract(
                &cast.organizer,
                contract.id,
                ContractAction::Terminate,
                Some("replaced by a priced contract"),
            )
            .await
            .expect("terminate");
    }
}

fn priced_quote() -> Quote {
    Quote {
        currency: "EUR".to_owned(),
        per_run: Decimal::new(250, 2),
        per_cpu_second: Decimal::new(1, 3),
        per_epsilon: Decimal::new(10, 0),
    }
}

#[tokio::test]
async fn a_real_run_needs_an_active_contract_and_is_metered_under_it() {
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    end_cast_contract(&world, &cast).await;

    // No contract in force: the dummy run passes, the real run is not queued, and the note
    // says why.
    let refused = world
        .arena
        .submit(&cast.team_x, cast.competition, &module(1))
        .await
        .expect("submit");
    world.release().await;
    let view = world.view(&cast.team_x, refused.id).await;
    assert_eq!(
        (view.status, view.outcome),
        (SubmissionStatus::Failed, Some(RunOutcome::OverLimit))
    );
    let note = view.note.unwrap_or_default();
    assert!(note.contains("no active contract"), "{note}");

    // A contract for team X, witnessed by the auditor, with a price.
    let auditor_account = cast.auditor.account().expect("auditor account");
    let proposal = ContractProposal {
        team: Some(cast.team_x_org),
        auditor: Some(auditor_account),
        quote: Some(priced_quote()),
        delivery: vec![Delivery::ReleasedScores],
        valid_days: Some(30),
        ..test_contract(cast.competition)
    };
    // Only organizers propose; bad terms are named.
    assert!(matches!(
        world
            .arena
            .propose_contract(&cast.hospital_a, &proposal)
            .await,
        Err(ArenaError::Forbidden(_))
    ));
    let bad = ContractProposal {
        quote: Some(Quote {
            currency: "euro".to_owned(),
            ..priced_quote()
        }),
        ..proposal.clone()
    };
    match world.arena.propose_contract(&cast.organizer, &bad).await {
        Err(ArenaError::Invalid { field, .. }) => assert_eq!(field, "quote.currency"),
        other => panic!("{other:?}"),
    }
    let contract = world
        .arena
        .propose_contract(&cast.organizer, &proposal)
        .await
        .expect("propose");
    assert_eq!(contract.state, ContractState::Proposed);
    assert_eq!(
        contract.required,
        [
            Party::Platform,
            Party::Hospital {
                org: cast.hospital_a_org
            },
            Party::Hospital {
                org: cast.hospital_b_org
            },
            Party::Team {
                org: cast.team_x_org
            },
            Party::Auditor {
                account: auditor_account
            },
        ]
    );
    let digest = contract.terms_sha256.clone();
    // Team Y is no party: it neither sees nor accepts it.
    assert!(matches!(
        world.arena.contract(&cast.team_y, contract.id).await,
        Err(ArenaError::Forbidden(_))
    ));
    // Terms accepted by their digest only.
    assert!(matches!(
        world
            .arena
            .accept_contract(&cast.hospital_a, contract.id, &"0".repeat(64))
            .await,
        Err(ArenaError::Conflict(_))
    ));
    for party in [
        &cast.organizer,
        &cast.hospital_a,
        &cast.hospital_b,
        &cast.team_x,
    ] {
        let accepted = world
            .arena
            .accept_contract(party, contract.id, &digest)
            .await
            .expect("accept");
        assert_eq!(
            accepted.state,
            ContractState::Proposed,
            "the auditor is awaited"
        );
    }
    assert!(matches!(
        world
            .arena
            .accept_contract(&cast.team_x, contract.id, &digest)
            .await,
        Err(ArenaError::Conflict(_))
    ));
    let active = world
        .arena
        .accept_contract(&cast.auditor, contract.id, &digest)
        .await
        .expect("the auditor accepts");
    assert_eq!(active.state, ContractState::Active);

    // Now team X's run is queued, runs and is metered; team Y still has no contract.
    let covered = world
        .arena
        .submit(&cast.team_x, cast.competition, &module(2))
        .await
        .expect("submit");
    let uncovered = world
        .arena
        .submit(&cast.team_y, cast.competition, &module(3))
        .await
        .expect("submit");
    world.drain().await;
    // Before the release time, no one but organizers sees a line.
    let early = world
        .arena
        .statement(&cast.team_x, StatementRequest::default())
        .await
        .expect("statement");
    assert!(early.lines.is_empty(), "{early:?}");
    world.clock.advance(RELEASE_WAIT);
    world.arena.deliver_audit_events().await;
    assert_eq!(
        world.view(&cast.team_x, covered.id).await.status,
        SubmissionStatus::Completed
    );
    assert_eq!(
        world.view(&cast.team_y, uncovered.id).await.status,
        SubmissionStatus::Failed
    );

    let team = world
        .arena
        .statement(&cast.team_x, StatementRequest::default())
        .await
        .expect("team statement");
    let hospital = world
        .arena
        .statement(&cast.hospital_b, StatementRequest::default())
        .await
        .expect("hospital statement");
    let operator = world
        .arena
        .statement(&cast.organizer, StatementRequest::default())
        .await
        .expect("operator statement");
    assert_eq!(team.party, format!("team:{}", cast.team_x_org.0));
    assert_eq!(team.lines.len(), 1, "{team:?}");
    let line = &team.lines[0];
    assert_eq!((line.contract, line.team), (contract.id, cast.team_x_org));
    // One run, the example bundle's reserved compute (compile 60 s + 5 blocks × 10 s... as
    // the bundle declares), ε = 1 (public score and final reserve): the quote applied.
    assert!((line.epsilon - 1.0).abs() < 1e-12);
    let expected = Decimal::new(250, 2)
        + Decimal::new(1, 3) * Decimal::from(line.cpu_seconds_billed)
        + Decimal::new(10, 0);
    assert_eq!(line.amount, expected.round_dp(2));
    assert!(line.evidence.is_some(), "delivered to the ledger");
    // Teams and hospitals see the shared line; only the operators the measured figures.
    assert_eq!(hospital.lines, team.lines);
    assert_eq!(
        (
            line.cpu_millis_measured,
            line.peak_memory_bytes,
            line.rows_read
        ),
        (None, None, None)
    );
    assert_eq!(operator.lines.len(), 1);
    assert_eq!(
        (
            operator.lines[0].cpu_millis_measured,
            operator.lines[0].peak_memory_bytes,
            operator.lines[0].rows_read
        ),
        (
            SCRIPTED_USAGE.cpu_millis,
            SCRIPTED_USAGE.peak_memory_bytes,
            Some(90)
        )
    );
    assert_eq!(team.totals.len(), 1);
    assert_eq!(team.totals[0].amount, line.amount);
    // The statement agrees with the log: one run_metered event per line, same figures.
    let metered: Vec<_> = world
        .audit
        .records()
        .into_iter()
        .filter_map(|r| match r.event {
            AuditEvent::RunMetered {
                contract,
                job,
                amount,
                cpu_seconds_billed,
                ..
            } => Some((contract, job, amount, cpu_seconds_billed, r.evidence)),
            _ => None,
        })
        .collect();
    assert_eq!(
        metered,
        [(
            line.contract,
            line.job,
            line.amount.to_string(),
            line.cpu_seconds_billed,
            None
        )]
    );
    // A period before the run is empty; CSV has a header and the line.
    let before = world
        .arena
        .statement(
            &cast.team_x,
            StatementRequest {
                to: Some(line.metered_at),
                ..StatementRequest::default()
            },
        )
        .await
        .expect("statement");
    assert!(before.lines.is_empty());
    let csv = team.to_csv();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains(&line.amount.to_string()));

    // Hospital A suspends: the next run is not queued; a run queued before it does not
    // start. Only hospital A lifts its suspension.
    let queued = world
        .arena
        .submit(&cast.team_x, cast.competition, &module(4))
        .await
        .expect("submit");
    let first = world
        .arena
        .run_next_job("w")
        .await
        .expect("run")
        .expect("job");
    assert_eq!(first.kind, JobKind::DummyRun);
    // A reason goes onto the public ledger: one line, or it is refused (the ledger would
    // refuse it, and hold up every event after it).
    for bad in ["two\nlines", &"𝔸".repeat(300)] {
        assert!(matches!(
            world
                .arena
                .change_contract(&cast.hospital_a, contract.id, ContractAction::Suspend, Some(bad))
                .await,
            Err(ArenaError::Invalid { field, .. }) if field == "reason"
        ));
    }
    let suspended = world
        .arena
        .change_contract(
            &cast.hospital_a,
            contract.id,
            ContractAction::Suspend,
            Some("ethics committee review"),
        )
        .await
        .expect("suspend");
    assert_eq!(suspended.state, ContractState::Suspended);
    world.release().await;
    let stopped = world.view(&cast.organizer, queued.id).await;
    assert_eq!(stopped.status, SubmissionStatus::Failed, "{stopped:?}");
    assert!(matches!(
        world
            .arena
            .change_contract(&cast.organizer, contract.id, ContractAction::Resume, None)
            .await,
        Err(ArenaError::Forbidden(_))
    ));
    let after_suspension = world
        .arena
        .submit(&cast.team_x, cast.competition, &module(5))
        .await
        .expect("submit");
    world.release().await;
    let note = world
        .view(&cast.team_x, after_suspension.id)
        .await
        .note
        .unwrap_or_default();
    assert!(note.contains("no active contract"), "{note}");
    world
        .arena
        .change_contract(&cast.hospital_a, contract.id, ContractAction::Resume, None)
        .await
        .expect("resume");

    // The team may end its own contract; the history is on the log with evidence codes.
    let ended = world
        .arena
        .change_contract(
            &cast.team_x,
            contract.id,
            ContractAction::Terminate,
            Some("done"),
        )
        .await
        .expect("terminate");
    assert_eq!(ended.state, ContractState::Terminated);
    let view = world
        .arena
        .contract(&cast.hospital_a, contract.id)
        .await
        .expect("view");
    let kinds: Vec<_> = view.history.iter().map(|r| r.event.kind()).collect();
    assert_eq!(
        kinds,
        [
            "contract_proposed",
            "contract_accepted",
            "contract_accepted",
            "contract_accepted",
            "contract_accepted",
            "contract_accepted",
            "contract_state_changed",
            "run_metered",
            "contract_state_changed",
            "contract_state_changed",
            "contract_state_changed",
        ]
    );
    assert!(view.history.iter().all(|r| r.evidence.is_some()));
}

#[tokio::test]
async fn contracts_expire_with_their_window_and_are_fulfilled_at_publication() {
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let open = world
        .arena
        .contracts(&cast.team_x, Some(cast.competition))
        .await
        .expect("contracts");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].state, ContractState::Active);
    // Open offers need each team's own acceptance: a team admitted later is not covered
    // until it accepts.
    let short = world
        .arena
        .propose_contract(
            &cast.organizer,
            &ContractProposal {
                valid_days: Some(1),
                ..test_contract(cast.competition)
            },
        )
        .await
        .expect("propose");
    world.clock.advance(Duration::from_secs(2 * 86_400));
    let expired = world
        .arena
        .contract(&cast.organizer, short.id)
        .await
        .expect("view");
    assert_eq!(expired.contract.state, ContractState::Expired);
    assert!(matches!(
        world
            .arena
            .accept_contract(&cast.hospital_a, short.id, &short.terms_sha256)
            .await,
        Err(ArenaError::Precondition(_))
    ));
    world
        .arena
        .close_competition(&cast.organizer, cast.competition)
        .await
        .expect("close");
    world
        .arena
        .publish_competition(&cast.organizer, cast.competition)
        .await
        .expect("publish");
    let fulfilled = world
        .arena
        .contract(&cast.organizer, open[0].id)
        .await
        .expect("view");
    assert_eq!(fulfilled.contract.state, ContractState::Fulfilled);
    // A published competition takes no new contract.
    assert!(matches!(
        world
            .arena
            .propose_contract(&cast.organizer, &test_contract(cast.competition))
            .await,
        Err(ArenaError::Precondition(_))
    ));
}

#[tokio::test]
async fn a_hospital_withdraws_a_contribution_its_key_is_destroyed_and_receipts_remain() {
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let first = world
        .arena
        .submit(&cast.team_x, cast.competition, &module(1))
        .await
        .expect("submit");
    world.release().await;
    assert_eq!(
        world.view(&cast.team_x, first.id).await.status,
        SubmissionStatus::Completed
    );
    let view = world
        .arena
        .dataset(&cast.organizer, cast.dataset)
        .await
        .expect("dataset");
    let own = view
        .contributions
        .iter()
        .find(|c| c.hospital == cast.hospital_a_org)
        .expect("hospital A's upload")
        .id;
    let stored = world
        .arena
        .store()
        .contribution(own)
        .await
        .expect("read")
        .expect("contribution");
    let scope = stored.key_scope.clone().expect("its own key");
    let object = stored.object.expect("stored bytes");
    // Only its own hospital withdraws it.
    for other in [&cast.hospital_b, &cast.organizer, &cast.team_x] {
        assert!(matches!(
            world
                .arena
                .withdraw_contribution(other, own, "not yours")
                .await,
            Err(ArenaError::Forbidden(_))
        ));
    }
    let withdrawn = world
        .arena
        .withdraw_contribution(
            &cast.hospital_a,
            own,
            "consent withdrawn by the ethics board",
        )
        .await
        .expect("withdraw");
    assert!(withdrawn.withdrawn_at.is_some() && withdrawn.object.is_none());
    assert!(matches!(
        world
            .arena
            .withdraw_contribution(&cast.hospital_a, own, "again")
            .await,
        Err(ArenaError::Conflict(_))
    ));
    // The key is gone, and so are the bytes: nothing can read the upload again.
    let store = world.arena.store();
    assert_eq!(store.data_key(&scope).await.expect("keys"), None);
    let objects = medarena_arena::objects::LocalObjectStore::open(world.dir.path().join("objects"))
        .expect("objects");
    assert!(
        !medarena_arena::objects::ObjectStore::contains(&objects, &object)
            .await
            .unwrap_or(true),
        "the sealed bytes are deleted"
    );
    // Runs go on with the other hospital's rows (reading the withdrawn upload would fail).
    let second = world
        .arena
        .submit(&cast.team_x, cast.competition, &module(2))
        .await
        .expect("submit");
    world.release().await;
    assert_eq!(
        world.view(&cast.team_x, second.id).await.status,
        SubmissionStatus::Completed
    );
    // Every receipt of the upload stays, the withdrawal's among them.
    let receipts = world
        .arena
        .contribution_receipts(&cast.hospital_a, own)
        .await
        .expect("receipts");
    let kinds: Vec<_> = receipts.iter().map(|r| r.event.kind()).collect();
    assert_eq!(
        kinds,
        [
            "contribution_uploaded",
            "contribution_validated",
            "contribution_withdrawn"
        ]
    );
    assert!(receipts.iter().all(|r| r.evidence.is_some()));
}
