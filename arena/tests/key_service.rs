//! The key service: a worker host that holds no master key gets the data keys of the job it
//! holds the lease of, and no other (`Arena::grant_data_key`, what `POST
//! /internal/data-keys` serves).

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use medarena_arena::crypto::DataKey;
use medarena_arena::store::ClaimRequest;
use medarena_arena::vault::{JobLease, KeyBroker, KeyScope, Vault, VaultError};
use medarena_arena::{Arena, ArenaError, JobKind};

/// The key service without HTTP between: a worker host's vault asks the server's arena.
#[derive(Debug)]
struct InProcessKeyService(Arena);

#[async_trait]
impl KeyBroker for InProcessKeyService {
    async fn data_key(&self, lease: &JobLease, scope: &KeyScope) -> Result<DataKey, VaultError> {
        self.0
            .grant_data_key(lease, &scope.to_string())
            .await
            .map_err(|err| VaultError::KeyService(err.to_string()))
    }

    fn cache_key(&self) -> [u8; 32] {
        [7; 32]
    }
}

async fn assert_refused(arena: &Arena, lease: &JobLease, scope: &KeyScope, why: &str) {
    match arena.grant_data_key(lease, &scope.to_string()).await {
        Err(ArenaError::Forbidden(_)) => {}
        other => panic!("{why}: the key of {scope} was not refused: {other:?}"),
    }
}

#[tokio::test]
async fn a_worker_host_reads_what_its_leased_job_reads_and_nothing_else() {
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let submitted = world
        .arena
        .submit(&cast.team_x, cast.competition, &module(1))
        .await
        .expect("submit");
    let store = world.arena.store().clone();
    let submission = store
        .submission(submitted.id)
        .await
        .expect("read")
        .expect("submission");
    let contributions = store.contributions(cast.dataset).await.expect("read");
    assert_eq!(contributions.len(), 2);
    let worker_host = Vault::with_broker(
        Arc::new(InProcessKeyService(world.arena.clone())),
        RawObjects::of(world.dir.path()).store(),
        store.clone(),
        world.clock.clone(),
    );
    let lease_ms = 30_000;
    // Claims the next job of `kind` as the worker host does, under the lease token `token`.
    let claim = async |token: &str, kind: JobKind| {
        let request = ClaimRequest {
            worker: "worker-host".into(),
            lease_token: token.into(),
            now: world.clock.now_for_tests(),
            lease_ms,
            kind: Some(kind),
        };
        let job = store
            .claim(&request)
            .await
            .expect("claim")
            .unwrap_or_else(|| panic!("a {kind:?} job to claim"));
        JobLease {
            job: job.id,
            token: token.into(),
        }
    };
    let team_x = KeyScope::Team(cast.team_x_org);

    // A dummy run: its team's module, and nothing a hospital uploaded.
    let lease = claim("dummy-lease", JobKind::DummyRun).await;
    let read = worker_host
        .get_for_job(
            &lease,
            &team_x,
            &submission.object,
            &submission.module_sha256,
        )
        .await
        .expect("the module, through the key service");
    assert_eq!(read.as_slice(), module(1).as_slice());
    assert!(worker_host.master_key().is_none());
    for contribution in &contributions {
        assert_refused(&world.arena, &lease, &contribution.scope(), "a dummy run").await;
    }
    let other_team = KeyScope::Team(cast.team_y_org);
    assert_refused(&world.arena, &lease, &other_team, "another team's modules").await;
    let guessed = JobLease {
        job: lease.job,
        token: "guessed".into(),
    };
    assert_refused(&world.arena, &guessed, &team_x, "a guessed lease token").await;
    // A worker host cannot seal (uploads and modules arrive on server hosts).
    assert!(matches!(
        worker_host.put(&team_x, b"bytes").await,
        Err(VaultError::NoMasterKey(_))
    ));

    // The lease expires (the worker host died): the grant goes with it.
    world
        .clock
        .advance(Duration::from_millis(lease_ms as u64 + 1));
    assert_refused(&world.arena, &lease, &team_x, "an expired lease").await;

    // The dummy run passes (run again by a worker with the master key); the real run is
    // claimed by the worker host, which may now read each hospital's upload.
    let ran = world
        .arena
        .run_next_job_of("server", Some(JobKind::DummyRun))
        .await
        .expect("run");
    assert!(ran.is_some(), "the dummy run ran");
    let lease = claim("real-lease", JobKind::RealRun).await;
    for contribution in &contributions {
        let object = contribution.object.expect("stored");
        let rows = worker_host
            .get_for_job(
                &lease,
                &contribution.scope(),
                &object,
                &contribution.content_sha256,
            )
            .await
            .expect("an upload, through the key service");
        let uploaded = match contribution.file_name.as_str() {
            "a.csv" => csv_upload("a.csv", 50),
            _ => csv_upload("b.csv", 40),
        };
        assert_eq!(rows.as_slice(), uploaded.bytes.as_slice());
    }
    assert_refused(
        &world.arena,
        &lease,
        &other_team,
        "a real run, another team",
    )
    .await;
}
