//! Submissions and the durable job queue: the phase gate, limits, fair scheduling, leases,
//! retries, concurrency, budgets, leaderboards, and surviving a dropped arena.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use medarena_arena::bundle::SandboxLimits;
use medarena_arena::store::{ClaimRequest, FinishJob, FinishOutcome, SubmissionUpdate};
use medarena_arena::testing::{ScriptedExecutor, successful_result};
use medarena_arena::{
    ArenaError, ExecutorError, JobEnd, JobKind, JobState, LeaderboardKind, PrecheckRejection,
    RunExecutor, RunOutcome, RunRequest, RunResult, SubmissionId, SubmissionStatus, Tier,
    WorkerPool,
};

async fn status_of(world: &World, cast: &Cast, id: SubmissionId) -> SubmissionStatus {
    world
        .arena
        .submission(&cast.organizer, id)
        .await
        .expect("submission")
        .status
}

async fn kinds_of_jobs(world: &World, id: SubmissionId) -> Vec<(JobKind, JobState)> {
    world
        .arena
        .store()
        .jobs_of_submission(id)
        .await
        .expect("jobs")
        .into_iter()
        .map(|job| (job.kind, job.state))
        .collect()
}

#[tokio::test]
async fn dummy_run_first_then_real_run() {
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let submitted = world
        .arena
        .submit(&cast.team_x, cast.competition, &module(1))
        .await
        .expect("submit");
    assert_eq!(submitted.status, SubmissionStatus::QueuedDummy);
    assert_eq!(submitted.phase, "public");

    let first = world
        .arena
        .run_next_job("w")
        .await
        .expect("run")
        .expect("a job");
    assert_eq!(
        (first.kind, &first.end),
        (JobKind::DummyRun, &JobEnd::Finished(RunOutcome::Ok))
    );
    assert_eq!(
        status_of(&world, &cast, submitted.id).await,
        SubmissionStatus::QueuedReal
    );
    let second = world
        .arena
        .run_next_job("w")
        .await
        .expect("run")
        .expect("a job");
    assert_eq!(second.kind, JobKind::RealRun);
    assert!(world.arena.run_next_job("w").await.expect("run").is_none());

    // Finished, but not released: until its release time the team sees a queued run and
    // nothing of its result; organizers see the truth.
    let sealed = world.view(&cast.team_x, submitted.id).await;
    assert_eq!(
        (sealed.status, sealed.outcome, sealed.released_public_score),
        (SubmissionStatus::QueuedReal, None, None)
    );
    let release_at = sealed.release_at.expect("a release time");
    assert_eq!(
        release_at.0 - world.clock.now_for_tests().0,
        120_000,
        "released two minutes after queueing (the dummy run took no time here)"
    );
    let organizer_view = world.view(&cast.organizer, submitted.id).await;
    assert_eq!(organizer_view.status, SubmissionStatus::Completed);
    world.clock.advance(Duration::from_secs(119));
    assert_eq!(
        world.view(&cast.team_x, submitted.id).await.status,
        SubmissionStatus::QueuedReal
    );
    world.clock.advance(Duration::from_secs(1));

    let view = world.view(&cast.team_x, submitted.id).await;
    assert_eq!(
        (view.status, view.outcome),
        (SubmissionStatus::Completed, Some(RunOutcome::Ok))
    );
    assert_eq!(view.dummy_score, Some(0.5));
    assert_eq!(view.released_public_score, Some(0.80));
    assert_eq!(
        kinds_of_jobs(&world, submitted.id).await,
        [
            (JobKind::DummyRun, JobState::Succeeded),
            (JobKind::RealRun, JobState::Succeeded)
        ]
    );
    let budget = world
        .arena
        .budget(&cast.team_x, cast.competition, cast.team_x_org)
        .await
        .expect("budget");
    // Reserved when the real run was queued: its public score's ε and the final score's.
    assert_eq!(budget.len(), 1);
    assert!((budget[0].spent - 1.0).abs() < 1e-12, "{budget:?}");
    assert!((budget[0].remaining() - 5.0).abs() < 1e-12, "{budget:?}");
    assert!((budget[0].dataset_spent - 1.0).abs() < 1e-12 && budget[0].dataset_cap == 10.0);
    let usage = world
        .arena
        .dataset_usage(&cast.hospital_a, cast.dataset)
        .await
        .expect("usage");
    let purposes: Vec<_> = usage
        .iter()
        .map(|u| (u.team, u.purpose, u.epsilon))
        .collect();
    assert_eq!(
        purposes,
        [
            (
                cast.team_x_org,
                medarena_arena::ChargePurpose::PublicScore,
                0.5
            ),
            (
                cast.team_x_org,
                medarena_arena::ChargePurpose::FinalScore,
                0.5
            )
        ]
    );
}

#[tokio::test]
async fn development_phase_and_dummy_only_tier_never_reach_real_data() {
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let (dummy_team, _) = extra_team(&world.arena, &cast, "Dummy Team", Tier::DummyOnly).await;
    world.clock.set(development_phase());
    let in_development = world
        .arena
        .submit(&cast.team_x, cast.competition, &module(2))
        .await
        .expect("submit");
    assert_eq!(in_development.phase, "development");
    // Runs after the public phase opened still follow the phase the module was submitted in.
    world.clock.set(public_phase());
    let in_public = world
        .arena
        .submit(&dummy_team, cast.competition, &module(1))
        .await
        .expect("submit");
    world.drain().await;

    for (id, note) in [(in_public.id, "tier"), (in_development.id, "development")] {
        let view = world.view(&cast.organizer, id).await;
        assert_eq!(
            (view.status, view.outcome),
            (SubmissionStatus::Completed, Some(RunOutcome::Ok))
        );
        assert!(
            view.note.as_deref().is_some_and(|n| n.contains(note)),
            "{:?}",
            view.note
        );
        assert!(view.released_public_score.is_none());
        assert_eq!(
            kinds_of_jobs(&world, id).await,
            [(JobKind::DummyRun, JobState::Succeeded)]
        );
    }
    assert!(
        world
            .executor
            .started()
            .iter()
            .all(|(_, kind)| *kind == JobKind::DummyRun)
    );
}

#[tokio::test]
async fn a_failing_dummy_run_blocks_the_real_run() {
    let executor = ScriptedExecutor::new(|request| match request.job.kind {
        JobKind::DummyRun => Ok(RunResult {
            outcome: RunOutcome::OverLimit,
            ..RunResult::default()
        }),
        JobKind::RealRun => Ok(successful_result(request)),
    });
    let world = World::with_executor(executor).await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let submitted = world
        .arena
        .submit(&cast.team_x, cast.competition, &module(1))
        .await
        .expect("submit");
    assert_eq!(world.drain().await, 1);
    let view = world.view(&cast.team_x, submitted.id).await;
    assert_eq!(
        (view.status, view.outcome),
        (SubmissionStatus::Failed, Some(RunOutcome::OverLimit))
    );
    assert_eq!(
        kinds_of_jobs(&world, submitted.id).await,
        [(JobKind::DummyRun, JobState::Succeeded)]
    );
}

/// An executor that checks what the core lets it read.
struct ProbingExecutor;

#[async_trait]
impl RunExecutor for ProbingExecutor {
    async fn precheck(
        &self,
        _module: &[u8],
        _limits: &SandboxLimits,
    ) -> Result<(), PrecheckRejection> {
        Ok(())
    }

    async fn execute(&self, request: RunRequest<'_>) -> Result<RunResult, ExecutorError> {
        let manifests = request.inputs.manifests();
        if manifests.len() != 2 || manifests.iter().any(|m| m.manifest.is_none()) {
            return Err(ExecutorError::Permanent(format!(
                "manifests: {manifests:?}"
            )));
        }
        let data = request.inputs.real_data().await;
        match request.job.kind {
            JobKind::DummyRun => {
                if data.is_ok() {
                    return Err(ExecutorError::Permanent(
                        "dummy job read real data".to_owned(),
                    ));
                }
                Ok(RunResult::default())
            }
            JobKind::RealRun => {
                let data = data?;
                let expected = [csv_upload("a.csv", 50).bytes, csv_upload("b.csv", 40).bytes];
                let ok = data.len() == 2
                    && data
                        .iter()
                        .zip(&expected)
                        .all(|(d, e)| d.bytes.as_slice() == e.as_slice());
                Ok(RunResult {
                    outcome: if ok {
                        RunOutcome::Ok
                    } else {
                        RunOutcome::Failed
                    },
                    released_public_score: Some(0.6),
                    ..RunResult::default()
                })
            }
        }
    }
}

#[tokio::test]
async fn dummy_jobs_cannot_read_real_data_and_real_jobs_get_decrypted_contributions() {
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let probing = common::test_config(world.dir.path());
    let arena = medarena_arena::Arena::builder(probing)
        .executor(Arc::new(ProbingExecutor))
        .validator(world.validator.clone())
        .clock(world.clock.clone())
        .open()
        .await
        .expect("open");
    let submitted = arena
        .submit(&cast.team_x, cast.competition, b"anything")
        .await
        .expect("submit");
    while arena.run_next_job("probe").await.expect("run").is_some() {}
    let view = arena
        .submission(&cast.organizer, submitted.id)
        .await
        .expect("view");
    assert_eq!(
        (view.status, view.outcome),
        (SubmissionStatus::Completed, Some(RunOutcome::Ok)),
        "{view:?}"
    );
}

#[tokio::test]
async fn submission_preconditions() {
    let small_modules =
        EXAMPLE_BUNDLE.replace("module_max_bytes: 16777216", "module_max_bytes: 64");
    let world = World::new().await;
    let cast = cast(&world.arena, &small_modules).await;
    let arena = &world.arena;

    // The agreement must be accepted, in its current text.
    let (newcomer, _) = admitted(
        arena,
        &cast.organizer,
        "new@team.test",
        medarena_arena::Role::TeamMember,
        "New",
        Some(Tier::RealData),
    )
    .await;
    let refused = arena.submit(&newcomer, cast.competition, &module(1)).await;
    assert!(
        matches!(refused, Err(ArenaError::Precondition(ref m)) if m.contains("agreement")),
        "{refused:?}"
    );
    let stale = arena
        .accept_agreement(&newcomer, cast.competition, &"0".repeat(64))
        .await;
    assert!(matches!(stale, Err(ArenaError::Conflict(_))));

    // Module checks: empty, too large, pre-check.
    assert!(matches!(
        arena.submit(&cast.team_x, cast.competition, b"").await,
        Err(ArenaError::Invalid { .. })
    ));
    let big = vec![0u8; 65];
    assert!(
        matches!(arena.submit(&cast.team_x, cast.competition, &big).await, Err(ArenaError::Invalid { ref field, .. }) if field == "module")
    );
    let not_wasm = arena
        .submit(&cast.team_x, cast.competition, b"#!/bin/sh\nrm -rf /")
        .await;
    assert!(
        matches!(not_wasm, Err(ArenaError::ModuleRejected(_))),
        "{not_wasm:?}"
    );

    // Daily limit: five per team per UTC day, counted per team.
    for tag in 0..5 {
        arena
            .submit(&cast.team_x, cast.competition, &module(tag))
            .await
            .expect("within limit");
    }
    let limited = arena
        .submit(&cast.team_x, cast.competition, &module(9))
        .await;
    assert!(
        matches!(limited, Err(ArenaError::RateLimited { limit: 5, used: 5 })),
        "{limited:?}"
    );
    assert_eq!(limited.map(|_| ()).unwrap_err().http_status(), 429);
    arena
        .submit(&cast.team_y, cast.competition, &module(9))
        .await
        .expect("other team unaffected");
    world.clock.advance(Duration::from_secs(24 * 3600));
    arena
        .submit(&cast.team_x, cast.competition, &module(10))
        .await
        .expect("next day");

    // Outside every phase, and once closed.
    world.clock.set(at("2027-01-01T00:00:00Z"));
    assert!(matches!(
        arena
            .submit(&cast.team_x, cast.competition, &module(11))
            .await,
        Err(ArenaError::Precondition(_))
    ));
    world.clock.set(public_phase());
    arena
        .close_competition(&cast.organizer, cast.competition)
        .await
        .expect("close");
    let closed = arena
        .submit(&cast.team_y, cast.competition, &module(12))
        .await;
    assert!(
        matches!(closed, Err(ArenaError::Precondition(ref m)) if m.contains("closed")),
        "{closed:?}"
    );
}

#[tokio::test]
async fn fair_scheduling_round_robins_across_teams() {
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let (team_z, team_z_org) = extra_team(&world.arena, &cast, "Team Z", Tier::RealData).await;
    world.clock.set(development_phase());
    let arena = &world.arena;
    // Team X floods the queue first; Y and Z submit later.
    for tag in 0..5 {
        arena
            .submit(&cast.team_x, cast.competition, &module(tag))
            .await
            .expect("submit");
    }
    for tag in 0..2 {
        arena
            .submit(&cast.team_y, cast.competition, &module(10 + tag))
            .await
            .expect("submit");
    }
    arena
        .submit(&team_z, cast.competition, &module(20))
        .await
        .expect("submit");
    assert_eq!(world.drain().await, 8);

    let mut order = Vec::new();
    for (job, _) in world.executor.started() {
        let job = arena.store().job(job).await.expect("job").expect("exists");
        order.push(match job.team {
            t if t == cast.team_x_org => 'X',
            t if t == cast.team_y_org => 'Y',
            t if t == team_z_org => 'Z',
            _ => '?',
        });
    }
    assert_eq!(order.iter().collect::<String>(), "XYZXYXXX");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_workers_in_two_processes_never_share_a_job() {
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let (team_z, _) = extra_team(&world.arena, &cast, "Team Z", Tier::RealData).await;
    let (team_w, _) = extra_team(&world.arena, &cast, "Team W", Tier::RealData).await;
    let mut submissions = Vec::new();
    for team in [&cast.team_x, &cast.team_y, &team_z, &team_w] {
        for tag in 0..5 {
            submissions.push(
                world
                    .arena
                    .submit(team, cast.competition, &module(tag))
                    .await
                    .expect("submit")
                    .id,
            );
        }
    }
    // A second arena on the same database plays a second process; both share the executor
    // double so that it sees every run.
    world.executor.set_delay(Duration::from_millis(5));
    let second = world.reopen(world.executor.clone()).await;
    let pools = [
        WorkerPool::spawn(&world.arena, "one"),
        WorkerPool::spawn(&second, "two"),
    ];
    assert_eq!(pools.iter().map(WorkerPool::len).sum::<usize>(), 4);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stats = world.arena.queue_stats().await.expect("stats");
        if stats.succeeded == 40 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue did not finish: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for pool in pools {
        pool.shutdown().await;
    }
    let started = world.executor.started();
    let distinct: HashSet<_> = started.iter().map(|(job, _)| *job).collect();
    assert_eq!(started.len(), 40, "every job ran exactly once");
    assert_eq!(distinct.len(), 40, "no job ran twice");
    assert!(world.executor.max_concurrent() <= 4);
    for id in submissions {
        assert_eq!(
            status_of(&world, &cast, id).await,
            SubmissionStatus::Completed
        );
    }
    let stats = world.arena.queue_stats().await.expect("stats");
    assert_eq!((stats.pending, stats.running, stats.failed), (0, 0, 0));
}

#[tokio::test]
async fn a_crashed_workers_job_is_reclaimed_after_its_lease_and_stale_workers_are_fenced() {
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let submitted = world
        .arena
        .submit(&cast.team_x, cast.competition, &module(1))
        .await
        .expect("submit");
    let store = world.arena.store();
    let lease_ms = 30_000;
    let ghost = store
        .claim(&ClaimRequest {
            worker: "ghost".into(),
            lease_token: "ghost-token".into(),
            now: world.clock.now_for_tests(),
            lease_ms,
            kind: None,
        })
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(
        status_of(&world, &cast, submitted.id).await,
        SubmissionStatus::RunningDummy
    );
    // While the lease holds, nobody else gets the job.
    assert!(world.arena.run_next_job("w").await.expect("run").is_none());

    // The ghost dies. Once its lease expires, the job runs again, as attempt 2.
    world.clock.advance(Duration::from_millis(30_001));
    world.drain().await;
    let job = store.job(ghost.id).await.expect("job").expect("exists");
    assert_eq!((job.state, job.attempts), (JobState::Succeeded, 2));
    assert_eq!(
        status_of(&world, &cast, submitted.id).await,
        SubmissionStatus::Completed
    );

    // The ghost comes back: it can neither renew nor finish.
    assert!(
        !store
            .heartbeat(
                ghost.id,
                "ghost-token",
                world.clock.now_for_tests(),
                lease_ms
            )
            .await
            .expect("beat")
    );
    let late = store
        .finish(&FinishJob {
            job: ghost.id,
            lease_token: "ghost-token".into(),
            at: world.clock.now_for_tests(),
            outcome: RunOutcome::Failed,
            job_result: None,
            submission: SubmissionUpdate {
                status: Some(SubmissionStatus::Failed),
                ..SubmissionUpdate::default()
            },
            follow_up: None,
            follow_up_max_attempts: 3,
            reservation: None,
            release_delay_ms: 0,
            metering: None,
            release_state: None,
        })
        .await
        .expect("finish");
    assert_eq!(late, FinishOutcome::LeaseLost);
    assert_eq!(
        status_of(&world, &cast, submitted.id).await,
        SubmissionStatus::Completed
    );
    assert!(world.audit.kinds().contains(&"job_lease_expired"));
}

#[tokio::test]
async fn a_job_whose_workers_keep_dying_fails_with_error_after_max_attempts() {
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let submitted = world
        .arena
        .submit(&cast.team_x, cast.competition, &module(1))
        .await
        .expect("submit");
    let store = world.arena.store();
    for attempt in 1..=3 {
        let job = store
            .claim(&ClaimRequest {
                worker: format!("doomed-{attempt}"),
                lease_token: format!("token-{attempt}"),
                now: world.clock.now_for_tests(),
                lease_ms: 1_000,
                kind: None,
            })
            .await
            .expect("claim")
            .expect("job");
        assert_eq!(job.attempts, attempt);
        world.clock.advance(Duration::from_millis(1_001));
    }
    assert_eq!(
        store
            .reap_expired(world.clock.now_for_tests())
            .await
            .expect("reap"),
        1
    );
    assert!(world.arena.run_next_job("w").await.expect("run").is_none());
    let jobs = store.jobs_of_submission(submitted.id).await.expect("jobs");
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (jobs[0].state, jobs[0].outcome),
        (JobState::Failed, Some(RunOutcome::Error))
    );
    let view = world.view(&cast.team_x, submitted.id).await;
    assert_eq!(
        (view.status, view.outcome),
        (SubmissionStatus::Failed, Some(RunOutcome::Error))
    );
    assert!(world.audit.kinds().contains(&"submission_finished"));
}

#[tokio::test]
async fn executor_errors_are_retried_with_backoff_then_given_up() {
    let executor = ScriptedExecutor::new(|_| Err(ExecutorError::Transient("disk full".into())));
    let world = World::with_executor(executor).await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let submitted = world
        .arena
        .submit(&cast.team_x, cast.competition, &module(1))
        .await
        .expect("submit");
    let arena = &world.arena;
    assert_eq!(
        arena.run_next_job("w").await.expect("run").map(|r| r.end),
        Some(JobEnd::Retried)
    );
    assert_eq!(
        status_of(&world, &cast, submitted.id).await,
        SubmissionStatus::QueuedDummy
    );
    // Back-off: 1 s after the first failure, 2 s after the second.
    assert!(arena.run_next_job("w").await.expect("run").is_none());
    world.clock.advance(Duration::from_secs(1));
    assert_eq!(
        arena.run_next_job("w").await.expect("run").map(|r| r.end),
        Some(JobEnd::Retried)
    );
    world.clock.advance(Duration::from_secs(1));
    assert!(arena.run_next_job("w").await.expect("run").is_none());
    world.clock.advance(Duration::from_secs(1));
    assert_eq!(
        arena.run_next_job("w").await.expect("run").map(|r| r.end),
        Some(JobEnd::GaveUp)
    );
    let view = arena
        .submission(&cast.team_x, submitted.id)
        .await
        .expect("view");
    assert_eq!(
        (view.status, view.outcome),
        (SubmissionStatus::Failed, Some(RunOutcome::Error))
    );
    // The error text stays with operators; the team sees only the coarse outcome.
    assert!(view.note.is_none());
    let job = &arena
        .store()
        .jobs_of_submission(submitted.id)
        .await
        .expect("jobs")[0];
    assert!(
        job.last_error
            .as_deref()
            .is_some_and(|e| e.contains("disk full"))
    );
}

#[tokio::test]
async fn permanent_executor_errors_fail_at_once() {
    let executor =
        ScriptedExecutor::new(|_| Err(ExecutorError::Permanent("no such export".into())));
    let world = World::with_executor(executor).await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    world
        .arena
        .submit(&cast.team_x, cast.competition, &module(1))
        .await
        .expect("submit");
    assert_eq!(
        world
            .arena
            .run_next_job("w")
            .await
            .expect("run")
            .map(|r| r.end),
        Some(JobEnd::GaveUp)
    );
}

#[tokio::test]
async fn the_queue_survives_dropping_the_arena_mid_run() {
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let mut submissions = Vec::new();
    for team in [&cast.team_x, &cast.team_y] {
        for tag in 0..3 {
            submissions.push(
                world
                    .arena
                    .submit(team, cast.competition, &module(tag))
                    .await
                    .expect("submit")
                    .id,
            );
        }
    }
    // The first process hangs inside its runs and dies there. Its pool has one worker for
    // dummy runs and one for real runs; only dummy runs are queued, so one is in flight.
    let hanging = Arc::new(ScriptedExecutor::succeeding());
    hanging.set_delay(Duration::from_secs(3600));
    let doomed = world.reopen(hanging.clone()).await;
    let pool = WorkerPool::spawn(&doomed, "doomed");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while hanging.started().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "workers did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pool.abort();
    drop(doomed);
    let running = world.arena.queue_stats().await.expect("stats").running;
    assert_eq!(running, 1, "a run was in flight when the process died");

    // A new process on the same files, after the dead leases expire.
    let fresh = Arc::new(ScriptedExecutor::succeeding());
    let restarted = world.reopen(fresh.clone()).await;
    world.clock.advance(Duration::from_secs(31));
    while restarted
        .run_next_job("fresh")
        .await
        .expect("run")
        .is_some()
    {}

    let stats = restarted.queue_stats().await.expect("stats");
    assert_eq!(
        (stats.pending, stats.running, stats.failed, stats.succeeded),
        (0, 0, 0, 12)
    );
    for id in &submissions {
        let view = restarted
            .submission(&cast.organizer, *id)
            .await
            .expect("view");
        assert_eq!(view.status, SubmissionStatus::Completed, "{id} was lost");
    }
    let interrupted: Vec<_> = hanging.started().into_iter().map(|(job, _)| job).collect();
    for job in interrupted {
        let job = restarted
            .store()
            .job(job)
            .await
            .expect("job")
            .expect("exists");
        assert_eq!((job.state, job.attempts), (JobState::Succeeded, 2));
    }
}

#[tokio::test]
async fn the_privacy_budget_is_charged_and_exhaustion_stops_releases() {
    // The first real run reserves 0.5 + 0.5 (final), the second 0.5: a third does not fit.
    let tight = EXAMPLE_BUNDLE.replace(
        "budget_per_team_per_dataset: 6.0",
        "budget_per_team_per_dataset: 1.5",
    );
    let world = World::new().await;
    let cast = cast(&world.arena, &tight).await;
    let mut ids = Vec::new();
    for tag in 0..3 {
        ids.push(
            world
                .arena
                .submit(&cast.team_x, cast.competition, &module(tag))
                .await
                .expect("submit")
                .id,
        );
        world.release().await;
    }
    let views: Vec<_> = views_of(&world, &cast, &ids).await;
    assert_eq!(views[0].status, SubmissionStatus::Completed);
    assert_eq!(views[1].status, SubmissionStatus::Completed);
    assert_eq!(
        (views[2].status, views[2].outcome),
        (SubmissionStatus::Failed, Some(RunOutcome::OverLimit))
    );
    let note = views[2].note.as_deref().unwrap_or_default();
    assert!(
        note.starts_with("privacy budget exhausted") && note.contains("competition's budget"),
        "{note}"
    );
    assert!(views[2].released_public_score.is_none());
    let real_runs = world
        .executor
        .started()
        .iter()
        .filter(|(_, k)| *k == JobKind::RealRun)
        .count();
    assert_eq!(
        real_runs, 2,
        "the third real run was refused before running"
    );
    let budget = world
        .arena
        .budget(&cast.team_x, cast.competition, cast.team_x_org)
        .await
        .expect("budget");
    assert!((budget[0].spent - 1.5).abs() < 1e-9);
    assert_eq!(budget[0].remaining(), 0.0);
}

/// Where a worker process started by [`budgets_and_claims_hold_across_worker_processes`]
/// finds the arena's data directory (and, through the same environment, its database).
const WORKER_PROCESS_DIR_ENV: &str = "MEDARENA_TEST_WORKER_PROCESS_DIR";

/// Several OS processes work one queue at once, each with its own connections: every job is
/// claimed once, and budgets are charged under one lock, so no team spends past its cap
/// however the processes' reservations interleave. Runs on SQLite (one file, WAL) and on
/// PostgreSQL (`MEDARENA_TEST_STORE=postgres`, the scale-out path: processes on many hosts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_and_claims_hold_across_worker_processes() {
    // Each team's first real run reserves 0.5 + 0.5 (final), its second 0.5: of five
    // submissions per team, two fit and three must be refused, whichever process asks.
    let tight = EXAMPLE_BUNDLE.replace(
        "budget_per_team_per_dataset: 6.0",
        "budget_per_team_per_dataset: 1.5",
    );
    let world = World::new().await;
    let cast = cast(&world.arena, &tight).await;
    let mut submissions = Vec::new();
    for team in [&cast.team_x, &cast.team_y] {
        for tag in 0..5 {
            let id = world
                .arena
                .submit(team, cast.competition, &module(tag))
                .await
                .expect("submit")
                .id;
            submissions.push((team, id));
        }
    }
    let exe = std::env::current_exe().expect("this test binary");
    let children: Vec<_> = (0..3)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["--exact", "worker_process", "--ignored", "--nocapture"])
                .env(WORKER_PROCESS_DIR_ENV, world.dir.path())
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("start a worker process")
        })
        .collect();
    for mut child in children {
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("join")
            .expect("wait for the worker process");
        assert!(status.success(), "a worker process failed: {status}");
    }

    let stats = world.arena.queue_stats().await.expect("stats");
    assert_eq!((stats.pending, stats.running, stats.failed), (0, 0, 0));
    world.clock.advance(RELEASE_WAIT);
    let mut completed = std::collections::HashMap::new();
    for (team, id) in &submissions {
        let view = world.view(team, *id).await;
        match (view.status, view.outcome) {
            (SubmissionStatus::Completed, _) => *completed.entry(team.account()).or_insert(0) += 1,
            (SubmissionStatus::Failed, Some(RunOutcome::OverLimit)) => {}
            other => panic!("submission {id:?} ended as {other:?}"),
        }
        for job in world
            .arena
            .store()
            .jobs_of_submission(*id)
            .await
            .expect("jobs")
        {
            assert_eq!(
                job.attempts, 1,
                "job {:?} was claimed more than once",
                job.id
            );
        }
    }
    assert_eq!(completed.values().copied().collect::<Vec<_>>(), vec![2, 2]);
    for (team, org) in [
        (&cast.team_x, cast.team_x_org),
        (&cast.team_y, cast.team_y_org),
    ] {
        let budget = world
            .arena
            .budget(team, cast.competition, org)
            .await
            .expect("budget");
        assert!(
            (budget[0].spent - 1.5).abs() < 1e-9,
            "spent {} of 1.5",
            budget[0].spent
        );
    }
}

/// Not a test on its own: the body of each worker process that
/// [`budgets_and_claims_hold_across_worker_processes`] starts. It works the queue until
/// nothing is pending or running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process of budgets_and_claims_hold_across_worker_processes"]
async fn worker_process() {
    let Ok(dir) = std::env::var(WORKER_PROCESS_DIR_ENV) else {
        return;
    };
    let executor = Arc::new(ScriptedExecutor::succeeding());
    executor.set_delay(Duration::from_millis(10));
    let arena = open_arena(
        std::path::Path::new(&dir),
        executor,
        Arc::new(medarena_arena::testing::ScriptedValidator::default()),
        Arc::new(medarena_arena::testing::RecordingAuditSink::default()),
        Arc::new(medarena_arena::ManualClock::new(public_phase())),
    )
    .await;
    let pool = WorkerPool::spawn(&arena, &format!("process-{}", std::process::id()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut idle = 0;
    while idle < 5 {
        let stats = arena.queue_stats().await.expect("stats");
        idle = if stats.pending == 0 && stats.running == 0 {
            idle + 1
        } else {
            0
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue did not drain: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pool.shutdown().await;
}

async fn views_of(
    world: &World,
    cast: &Cast,
    ids: &[SubmissionId],
) -> Vec<medarena_arena::SubmissionView> {
    let mut views = Vec::new();
    for id in ids {
        views.push(world.view(&cast.team_x, *id).await);
    }
    views
}

#[tokio::test]
async fn leaderboards_close_and_publish() {
    let executor = ScriptedExecutor::new(|request| {
        let mut result = successful_result(request);
        if request.job.kind == JobKind::RealRun {
            // Team ids decide the scores: the later team (Y) is better in public, worse in private.
            let y = request.job.team.0 % 2 == 0;
            result.released_public_score = Some(if y { 0.9 } else { 0.7 });
            result.private_score = Some(if y { 0.6 } else { 0.8 });
        }
        Ok(result)
    });
    let world = World::with_executor(executor).await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let arena = &world.arena;
    let x = arena
        .submit(&cast.team_x, cast.competition, &module(1))
        .await
        .expect("submit")
        .id;
    let y = arena
        .submit(&cast.team_y, cast.competition, &module(2))
        .await
        .expect("submit")
        .id;
    world.release().await;

    let public = arena
        .leaderboard(
            &medarena_arena::Actor::Anonymous,
            cast.competition,
            LeaderboardKind::Public,
        )
        .await
        .expect("public");
    let (first, second) = if cast.team_y_org.0 % 2 == 0 {
        (y, x)
    } else {
        (x, y)
    };
    assert_eq!(
        public
            .entries
            .iter()
            .map(|e| e.submission)
            .collect::<Vec<_>>(),
        [first, second]
    );
    assert_eq!(public.entries[0].rank, 1);
    assert!(public.higher_is_better && public.metric == "roc_auc");
    let history = arena
        .public_score_history(&cast.team_x, cast.competition)
        .await
        .expect("history");
    assert_eq!(history.len(), 2);

    let private = arena
        .leaderboard(&cast.organizer, cast.competition, LeaderboardKind::Private)
        .await
        .expect("private");
    assert_eq!(
        private
            .entries
            .iter()
            .map(|e| e.submission)
            .collect::<Vec<_>>(),
        [second, first]
    );
    assert!(
        arena
            .submission(&cast.team_x, x)
            .await
            .expect("view")
            .private_score
            .is_none()
    );

    assert!(matches!(
        arena
            .publish_competition(&cast.organizer, cast.competition)
            .await,
        Err(ArenaError::Precondition(_))
    ));
    arena
        .close_competition(&cast.organizer, cast.competition)
        .await
        .expect("close");
    assert!(matches!(
        arena
            .close_competition(&cast.organizer, cast.competition)
            .await,
        Err(ArenaError::Conflict(_))
    ));
    let published = arena
        .publish_competition(&cast.organizer, cast.competition)
        .await
        .expect("publish");
    assert!(published.published_at.is_some());
    let revealed = arena
        .leaderboard(&cast.team_x, cast.competition, LeaderboardKind::Private)
        .await
        .expect("revealed");
    // Teams and the public see released (noisy) private scores of the same entries, with
    // their noise interval; organizers keep the exact ones.
    assert!(revealed.released && !private.released);
    assert!(revealed.noise_half_width_95.is_some());
    assert_eq!(
        revealed
            .entries
            .iter()
            .map(|e| e.submission)
            .collect::<Vec<_>>(),
        [second, first],
        "0.8 against 0.6 with noise of scale 0.02: {revealed:?}"
    );
    for (shown, exact) in revealed.entries.iter().zip(&private.entries) {
        let (shown, exact) = (
            shown.score.unwrap_or(f64::NAN),
            exact.score.unwrap_or(f64::NAN),
        );
        assert!(
            shown != exact && (shown - exact).abs() < 0.3,
            "{shown} vs {exact}"
        );
    }
    assert_eq!(
        arena
            .leaderboard(&cast.organizer, cast.competition, LeaderboardKind::Private)
            .await
            .expect("organizer's board"),
        private
    );
    assert!(
        arena
            .submission(&cast.team_x, x)
            .await
            .expect("view")
            .private_score
            .is_some()
    );
    assert!(
        arena
            .submission(&cast.team_x, x)
            .await
            .expect("view")
            .exact
            .is_none()
    );
}

/// The per-hospital view: at publication each contributing hospital gets every final
/// entry's score on its own patients, released with noise of ε = site_epsilon / hospitals;
/// nobody else sees it, the ledger records the release without the value.
#[tokio::test]
async fn hospitals_see_final_entries_on_their_own_patients_after_publication() {
    // The executor's exact per-hospital scores: organizations with an odd id score 0.9 on
    // their patients, the others 0.3 (the run computes them block by block).
    let executor = ScriptedExecutor::new(|request| {
        let mut result = successful_result(request);
        if request.job.kind == JobKind::RealRun {
            let per_hospital: serde_json::Map<String, serde_json::Value> = (1..=40)
                .map(|id: i64| {
                    (
                        id.to_string(),
                        serde_json::json!(if id % 2 == 1 { 0.9 } else { 0.3 }),
                    )
                })
                .collect();
            result.details = serde_json::json!({
                medarena_arena::pipeline::PER_HOSPITAL_KEY: per_hospital,
            });
        }
        Ok(result)
    });
    let world = World::with_executor(executor).await;
    let bundle = EXAMPLE_BUNDLE.replace("    # site_epsilon: 0.5\n", "    site_epsilon: 0.5\n");
    assert_ne!(bundle, EXAMPLE_BUNDLE);
    let cast = cast(&world.arena, &bundle).await;
    let arena = &world.arena;
    for team in [&cast.team_x, &cast.team_y] {
        arena
            .submit(team, cast.competition, &module(1))
            .await
            .expect("submit");
    }
    world.release().await;
    // Nothing before publication.
    let before = arena
        .site_scores(&cast.hospital_a, cast.competition)
        .await
        .expect("a hospital may look");
    assert!(before.is_empty(), "{before:?}");
    arena
        .close_competition(&cast.organizer, cast.competition)
        .await
        .expect("close");
    arena
        .publish_competition(&cast.organizer, cast.competition)
        .await
        .expect("publish");

    for (hospital, org) in [
        (&cast.hospital_a, cast.hospital_a_org),
        (&cast.hospital_b, cast.hospital_b_org),
    ] {
        let rows = arena
            .site_scores(hospital, cast.competition)
            .await
            .expect("own scores");
        assert_eq!(rows.len(), 2, "one per final entry: {rows:?}");
        let exact = if org.0 % 2 == 1 { 0.9 } else { 0.3 };
        for row in &rows {
            assert_eq!(row.release.hospital, org, "only its own: {rows:?}");
            assert!((row.release.epsilon - 0.25).abs() < 1e-12, "{row:?}");
            // Δ = 1/100 blocks, ε = 0.25: Laplace of scale 0.04. Within 15 scales (once in
            // e^15 draws outside); 0.3 was 7.5 scales, outside once in 1,800 draws.
            let shown = row.release.released_score;
            assert!(
                shown != exact && (shown - exact).abs() < 15.0 * 0.04,
                "{shown} against {exact}"
            );
        }
    }
    assert_eq!(
        arena
            .site_scores(&cast.organizer, cast.competition)
            .await
            .expect("organizers see all")
            .len(),
        4
    );
    assert!(matches!(
        arena.site_scores(&cast.team_x, cast.competition).await,
        Err(ArenaError::Forbidden(_))
    ));
    let released: Vec<_> = world
        .audit
        .records()
        .into_iter()
        .filter(|r| r.event.kind() == "site_score_released")
        .collect();
    assert_eq!(released.len(), 4);
    let text = serde_json::to_string(&released).expect("json");
    assert!(
        !text.contains("released_score"),
        "no value on the ledger: {text}"
    );
}

#[tokio::test]
async fn audit_events_survive_a_sink_outage_and_arrive_in_order() {
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    world.audit.set_failing(true);
    let id = world
        .arena
        .submit(&cast.team_x, cast.competition, &module(1))
        .await
        .expect("submit despite the outage")
        .id;
    world.release().await;
    let delivered_before = world.audit.records().len();

    // After a restart with the sink back, the backlog is delivered at open.
    world.audit.set_failing(false);
    let restarted = world.reopen(world.executor.clone()).await;
    let records = world.audit.records();
    assert!(records.len() > delivered_before);
    let ids: Vec<i64> = records.iter().map(|r| r.id.0).collect();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "delivered in order without gaps: {ids:?}"
    );
    assert_eq!(restarted.deliver_audit_events().await, 0);

    let trail = restarted
        .audit_trail(&cast.organizer, &id.to_string())
        .await
        .expect("trail");
    let kinds: Vec<_> = trail.iter().map(|r| r.event.kind()).collect();
    assert_eq!(
        kinds,
        [
            "submission_received",
            "job_enqueued",
            "run_finished",
            "job_enqueued",
            "run_finished",
            "submission_finished"
        ]
    );
    assert!(
        trail
            .iter()
            .all(|r| r.evidence.as_deref() == Some(&medarena_arena::testing::evidence_for(r.id)))
    );
    assert!(
        trail
            .iter()
            .all(|r| r.actor.is_none() || r.actor == cast.team_x.account())
    );
    let all = world.audit.kinds();
    for kind in [
        "competition_created",
        "agreement_accepted",
        "job_started",
        "budget_charged",
        "dataset_reviewed",
    ] {
        assert!(all.contains(&kind), "{kind} missing");
    }
}

#[tokio::test]
async fn events_about_a_real_run_wait_for_its_release_time() {
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let id = world
        .arena
        .submit(&cast.team_x, cast.competition, &module(1))
        .await
        .expect("submit")
        .id;
    world.drain().await;
    let release_at = world
        .view(&cast.team_x, id)
        .await
        .release_at
        .expect("a release time");
    // The run has finished; nothing about it has reached the ledger, the team's receipts or
    // an auditor's trail, and its queued time is all that shows.
    let delivered = |kind: &str| {
        world
            .audit
            .records()
            .iter()
            .filter(|r| r.event.kind() == kind)
            .count()
    };
    assert_eq!(delivered("run_finished"), 1, "only the dummy run's");
    assert_eq!(delivered("job_started"), 1, "only the dummy run's");
    let receipts = world
        .arena
        .submission_receipts(&cast.team_x, id)
        .await
        .expect("receipts");
    assert!(receipts.iter().all(|r| r.at < release_at), "{receipts:?}");
    let trail = world
        .arena
        .audit_trail(&cast.auditor, &id.to_string())
        .await
        .expect("trail");
    assert!(trail.iter().all(|r| r.at < release_at));
    let organizers = world
        .arena
        .audit_trail(&cast.organizer, &id.to_string())
        .await
        .expect("trail");
    assert!(
        organizers.iter().any(|r| r.at == release_at),
        "{organizers:?}"
    );

    world.clock.advance(RELEASE_WAIT);
    world.arena.deliver_audit_events().await;
    // At release, every event about the real run arrives stamped with the release time, and
    // its start names no worker.
    let real_events: Vec<_> = world
        .audit
        .records()
        .into_iter()
        .filter(|r| r.at == release_at)
        .collect();
    let kinds: Vec<_> = real_events.iter().map(|r| r.event.kind()).collect();
    assert_eq!(
        kinds,
        [
            "job_started",
            "run_metered",
            "run_finished",
            "submission_finished"
        ],
        "{real_events:?}"
    );
    assert!(matches!(
        &real_events[0].event,
        medarena_arena::AuditEvent::JobStarted { worker, .. } if worker == "sealed"
    ));
}

#[tokio::test]
async fn hospitals_cap_spending_across_competitions_and_floor_the_level() {
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let arena = &world.arena;
    let terms = |min_level, per_team_epsilon| medarena_arena::DatasetPrivacyTerms {
        min_level,
        per_team_epsilon,
        total_epsilon: 100.0,
    };
    // Only contributing hospitals set terms, each its own; the strictest applies.
    assert!(matches!(
        arena
            .set_dataset_privacy(
                &cast.organizer,
                cast.dataset,
                &terms(medarena_arena::PrivacyLevel::Row, 1.0)
            )
            .await,
        Err(ArenaError::Forbidden(_))
    ));
    arena
        .set_dataset_privacy(
            &cast.hospital_a,
            cast.dataset,
            &terms(medarena_arena::PrivacyLevel::Row, 1.2),
        )
        .await
        .expect("hospital A's terms");
    let privacy = arena
        .set_dataset_privacy(
            &cast.hospital_b,
            cast.dataset,
            &terms(medarena_arena::PrivacyLevel::Label, 5.0),
        )
        .await
        .expect("hospital B's terms");
    assert_eq!(
        privacy.effective,
        terms(medarena_arena::PrivacyLevel::Row, 1.2),
        "the strictest of both"
    );

    // A second competition on the same dataset shares the team's spending on it.
    let second = EXAMPLE_BUNDLE.replace("slug: cardiac-event-1y", "slug: cardiac-event-again");
    let other = arena
        .create_competition(&cast.organizer, &second)
        .await
        .expect("second competition");
    let digest = medarena_arena::Arena::agreement_sha256(&other);
    arena
        .accept_agreement(&cast.team_x, other.id, &digest)
        .await
        .expect("accept");
    let first = arena
        .submit(&cast.team_x, cast.competition, &module(1))
        .await
        .expect("submit")
        .id;
    world.release().await;
    assert_eq!(
        world.view(&cast.team_x, first).await.status,
        SubmissionStatus::Completed
    );
    // 1.0 spent (0.5 + the final's 0.5); the other competition's first run needs 1.0 more.
    let refused = arena
        .submit(&cast.team_x, other.id, &module(2))
        .await
        .expect("submit")
        .id;
    world.release().await;
    let view = world.view(&cast.team_x, refused).await;
    assert_eq!(view.outcome, Some(RunOutcome::OverLimit));
    assert!(
        view.note
            .as_deref()
            .is_some_and(|n| n.contains("hospitals' cap per team")),
        "{view:?}"
    );
    let budget = arena
        .budget(&cast.team_x, other.id, cast.team_x_org)
        .await
        .expect("budget");
    assert_eq!(
        (
            budget[0].spent,
            budget[0].dataset_spent,
            budget[0].dataset_cap
        ),
        (0.0, 1.0, 1.2)
    );
    assert!((budget[0].remaining() - 0.2).abs() < 1e-9, "{budget:?}");
    // Another team is not affected by team X's spending.
    let y = arena
        .submit(&cast.team_y, cast.competition, &module(3))
        .await
        .expect("submit")
        .id;
    world.release().await;
    assert_eq!(
        world.view(&cast.team_y, y).await.status,
        SubmissionStatus::Completed
    );

    // A label-level competition is refused while a hospital requires the row level.
    let label = EXAMPLE_BUNDLE
        .replace("slug: cardiac-event-1y", "slug: cardiac-event-labels")
        .replace("  level: row\n", "  level: label\n")
        .replace(
            "  blocks: 100\n",
            "  min_test_rows: 10\n  min_test_class_rows: 2\n  max_releases: 3\n",
        );
    let refused = arena.create_competition(&cast.organizer, &label).await;
    assert!(
        matches!(&refused, Err(ArenaError::Bundle(err)) if err.issues.iter().any(|i| i.path == "privacy.level")),
        "{refused:?}"
    );
    arena
        .set_dataset_privacy(
            &cast.hospital_a,
            cast.dataset,
            &terms(medarena_arena::PrivacyLevel::Label, 1.2),
        )
        .await
        .expect("hospital A allows the label level");
    arena
        .create_competition(&cast.organizer, &label)
        .await
        .expect("now allowed");
}

#[tokio::test]
async fn dummy_workers_never_claim_real_runs() {
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    world
        .arena
        .submit(&cast.team_x, cast.competition, &module(1))
        .await
        .expect("submit");
    let arena = &world.arena;
    assert!(
        arena
            .run_next_job_of("real-only", Some(JobKind::RealRun))
            .await
            .expect("claim")
            .is_none(),
        "no real run is queued yet"
    );
    let dummy = arena
        .run_next_job_of("dummy-only", Some(JobKind::DummyRun))
        .await
        .expect("run")
        .expect("the dummy run");
    assert_eq!(dummy.kind, JobKind::DummyRun);
    assert!(
        arena
            .run_next_job_of("dummy-only", Some(JobKind::DummyRun))
            .await
            .expect("claim")
            .is_none(),
        "the real run is left to the real-run workers"
    );
    let real = arena
        .run_next_job_of("real-only", Some(JobKind::RealRun))
        .await
        .expect("run")
        .expect("the real run");
    assert_eq!(real.kind, JobKind::RealRun);
}
