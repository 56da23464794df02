//! Datasets: encrypted uploads, validation, per-hospital contributions, organizer approval,
//! tamper detection, and competitions that may only use approved datasets.

mod common;

use std::sync::Arc;

use common::*;
use medarena_arena::crypto::MasterKey;
use medarena_arena::objects::{LocalObjectStore, ObjectStore};
use medarena_arena::store::KeyRepo;
use medarena_arena::vault::{KeyScope, Vault, VaultError};
use medarena_arena::{
    ArenaError, ContributionState, DatasetId, DatasetState, OrgId, Role, SqliteStore, SystemClock,
};

fn objects_of(world: &World) -> RawObjects {
    RawObjects::of(world.dir.path())
}

#[tokio::test]
async fn uploads_are_encrypted_validated_and_reviewed() {
    let world = World::new().await;
    let arena = &world.arena;
    let organizer = organizer(arena).await;
    let (hospital_a, a_org) = hospital(arena, &organizer, "A").await;
    let (hospital_b, b_org) = hospital(arena, &organizer, "B").await;
    let dataset = arena
        .create_dataset(&organizer, "cardiac-events", "Cardiac events", "")
        .await
        .expect("create");
    assert_eq!(dataset.state, DatasetState::Uploaded);
    let duplicate = arena
        .create_dataset(&hospital_a, "cardiac-events", "Again", "")
        .await;
    assert!(matches!(duplicate, Err(ArenaError::Conflict(_))));
    assert!(matches!(
        arena.create_dataset(&hospital_a, "Bad Slug", "x", "").await,
        Err(ArenaError::Invalid { .. })
    ));

    // Hospital A's upload: stored encrypted, content-addressed, validated.
    let upload = csv_upload("a.csv", 30);
    let contribution = arena
        .upload_contribution(&hospital_a, dataset.id, &upload)
        .await
        .expect("upload");
    assert_eq!(
        (contribution.state, contribution.rows),
        (ContributionState::Validated, Some(30))
    );
    assert_eq!(contribution.hospital, a_org);
    assert_eq!(
        contribution.content_sha256,
        medarena_arena::vault::sha256_hex(&upload.bytes)
    );
    let object = contribution.object.expect("stored");
    let on_disk = objects_of(&world).read(&object).await;
    assert_eq!(
        medarena_arena::objects::ObjectId::of(&on_disk),
        object,
        "addressed by the stored bytes"
    );
    assert!(on_disk.starts_with(b"MDE1"));
    // The public record commits to the upload without naming its digest or size: the
    // hospital, which holds the salt, can check it; nobody else can test a guess.
    let salt = contribution
        .commitment_salt
        .clone()
        .expect("a commitment salt");
    let events = world.audit.records();
    let uploaded = events
        .iter()
        .find(|r| r.event.kind() == "contribution_uploaded")
        .expect("the upload's event");
    let text = serde_json::to_string(&uploaded.event).expect("json");
    assert!(
        !text.contains(&contribution.content_sha256) && !text.contains("size"),
        "{text}"
    );
    assert!(text.contains(&medarena_arena::vault::commitment(
        &salt,
        &contribution.content_sha256
    )));
    let needle = b"age,sex,troponin";
    assert!(
        !on_disk.windows(needle.len()).any(|w| w == needle),
        "plaintext on disk"
    );
    assert_eq!(
        arena
            .dataset(&organizer, dataset.id)
            .await
            .expect("view")
            .dataset
            .state,
        DatasetState::Validated
    );

    // Hospital B's upload with PHI is refused with a report naming where, and not kept.
    let mut bad = csv_upload("b.csv", 5);
    bad.bytes.extend_from_slice(b"61,1,0.3,PHI John Smith\n");
    let refused = arena
        .upload_contribution(&hospital_b, dataset.id, &bad)
        .await;
    let Err(ArenaError::UploadRejected(rejected)) = refused else {
        panic!("expected a rejection, got {refused:?}")
    };
    assert_eq!(rejected.state, ContributionState::Rejected);
    assert!(rejected.object.is_none());
    assert_eq!(rejected.report["findings"][0]["row_numbers"][0], 6);
    assert_eq!(rejected.report["findings"][0]["column"], "notes");
    assert_eq!(
        ArenaError::UploadRejected(rejected.clone()).http_status(),
        422
    );
    assert!(
        arena.contribution(&hospital_b, rejected.id).await.is_ok(),
        "the report stays readable"
    );
    // Organizers see counts of patients through the small-number policy (≤ 7 redacted,
    // others rounded to 5), no row numbers and no commitment salt; the hospital, all.
    let seen = arena
        .contribution(&organizer, rejected.id)
        .await
        .expect("organizer's view");
    assert_eq!(seen.report["findings"][0]["rows"], "[REDACTED]");
    assert_eq!(
        seen.report["findings"][0]["row_numbers"],
        serde_json::json!([])
    );
    assert!(seen.commitment_salt.is_none());
    let own = arena
        .contribution(&hospital_b, rejected.id)
        .await
        .expect("own view");
    assert_eq!(own.report["findings"][0]["row_numbers"][0], 6);
    let accepted = arena
        .contribution(&organizer, contribution.id)
        .await
        .expect("organizer's view");
    assert_eq!(accepted.rows, Some(30), "30 rows rounded to 5 stay 30");
    // A rejected upload does not block the dataset; a good one from B joins it.
    assert_eq!(
        arena
            .dataset(&organizer, dataset.id)
            .await
            .expect("view")
            .dataset
            .state,
        DatasetState::Validated
    );
    arena
        .upload_contribution(&hospital_b, dataset.id, &csv_upload("b.csv", 20))
        .await
        .expect("upload b");
    let view = arena.dataset(&organizer, dataset.id).await.expect("view");
    assert_eq!((view.contributor_count, view.contributions.len()), (2, 3));
    let hospitals: Vec<OrgId> = view.contributions.iter().map(|c| c.hospital).collect();
    assert_eq!(hospitals, [a_org, b_org, b_org]);

    // Review: organizers only, validated datasets only; approval freezes the dataset.
    assert!(matches!(
        arena
            .review_dataset(
                &hospital_a,
                dataset.id,
                &medarena_arena::DatasetReview::approve_all("checked")
            )
            .await,
        Err(ArenaError::Forbidden(_))
    ));
    // The legality and compliance checklist: every item, once, with a note; approval only
    // when all pass.
    let mut review = medarena_arena::DatasetReview::approve_all("IRB-2026-114 verified");
    review.checklist.pop();
    match arena.review_dataset(&organizer, dataset.id, &review).await {
        Err(ArenaError::Invalid { field, message }) => {
            assert_eq!(field, "checklist");
            assert!(message.contains("permitted_uses"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let mut review = medarena_arena::DatasetReview::approve_all("IRB-2026-114 verified");
    review.checklist[2].passed = false;
    review.checklist[2].note = "consent forms not provided".to_owned();
    match arena.review_dataset(&organizer, dataset.id, &review).await {
        Err(ArenaError::Invalid { field, message }) => {
            assert_eq!(field, "approve");
            assert!(message.contains("consent"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let mut twice = medarena_arena::DatasetReview::approve_all("ok");
    twice.checklist[1] = twice.checklist[0].clone();
    assert!(matches!(
        arena.review_dataset(&organizer, dataset.id, &twice).await,
        Err(ArenaError::Invalid { field, .. }) if field == "checklist[1].item"
    ));
    let approved = arena
        .review_dataset(
            &organizer,
            dataset.id,
            &medarena_arena::DatasetReview {
                note: Some("looks good".to_owned()),
                ..medarena_arena::DatasetReview::approve_all("IRB-2026-114 verified")
            },
        )
        .await
        .expect("approve");
    assert_eq!(approved.state, DatasetState::Approved);
    assert_eq!(
        approved.review_checklist.len(),
        medarena_arena::ReviewItem::ALL.len()
    );
    // The ledger holds the decision and the checklist's digest, not its notes.
    let reviewed = world_events_about(arena, &organizer, dataset.id).await;
    assert!(reviewed.contains("checklist_sha256"), "{reviewed}");
    assert!(!reviewed.contains("IRB-2026-114"), "{reviewed}");
    let late = arena
        .upload_contribution(&hospital_a, dataset.id, &csv_upload("late.csv", 3))
        .await;
    assert!(matches!(late, Err(ArenaError::Conflict(_))), "{late:?}");
    let mut refusal = medarena_arena::DatasetReview::approve_all("checked");
    refusal.approve = false;
    refusal.checklist[0].passed = false;
    assert!(matches!(
        arena.review_dataset(&organizer, dataset.id, &refusal).await,
        Err(ArenaError::Precondition(_))
    ));
    assert!(matches!(
        arena.dataset(&organizer, DatasetId(999)).await,
        Err(ArenaError::NotFound(_))
    ));

    // Pending hospitals cannot upload; empty files are refused.
    let (pending, _) = sign_up(arena, "p@h.test", Role::Hospital).await;
    arena
        .apply(&pending, "Pending Hospital", "")
        .await
        .expect("apply");
    let (pending, _) = sign_in(arena, "p@h.test").await;
    assert!(matches!(
        arena
            .upload_contribution(&pending, dataset.id, &csv_upload("p.csv", 3))
            .await,
        Err(ArenaError::Forbidden(_))
    ));
    let other = arena
        .create_dataset(&hospital_a, "other-set", "Other", "")
        .await
        .expect("create");
    let mut empty = csv_upload("e.csv", 0);
    empty.bytes.clear();
    assert!(matches!(
        arena
            .upload_contribution(&hospital_a, other.id, &empty)
            .await,
        Err(ArenaError::Invalid { .. })
    ));
}

#[tokio::test]
async fn competitions_need_approved_datasets() {
    let world = World::new().await;
    let arena = &world.arena;
    let organizer = organizer(arena).await;
    let (hospital, _) = hospital(arena, &organizer, "A").await;

    let missing = arena.create_competition(&organizer, EXAMPLE_BUNDLE).await;
    let Err(ArenaError::Bundle(err)) = missing else {
        panic!("expected a bundle error, got {missing:?}")
    };
    assert_eq!(err.issues[0].path, "datasets[0]");
    assert!(err.issues[0].message.contains("no dataset"));

    let dataset = arena
        .create_dataset(&hospital, "cardiac-events", "Cardiac", "")
        .await
        .expect("create");
    arena
        .upload_contribution(&hospital, dataset.id, &csv_upload("a.csv", 10))
        .await
        .expect("upload");
    let unapproved = arena.create_competition(&organizer, EXAMPLE_BUNDLE).await;
    assert!(
        matches!(&unapproved, Err(ArenaError::Bundle(e)) if e.issues[0].message.contains("not approved")),
        "{unapproved:?}"
    );

    arena
        .review_dataset(
            &organizer,
            dataset.id,
            &medarena_arena::DatasetReview::approve_all("checked"),
        )
        .await
        .expect("approve");
    let competition = arena
        .create_competition(&organizer, EXAMPLE_BUNDLE)
        .await
        .expect("create");
    assert_eq!(competition.datasets, [dataset.id]);
    assert_eq!(
        competition.bundle_sha256,
        medarena_arena::vault::sha256_hex(EXAMPLE_BUNDLE.as_bytes())
    );
    let again = arena.create_competition(&organizer, EXAMPLE_BUNDLE).await;
    assert!(matches!(again, Err(ArenaError::Conflict(_))));
    let broken = arena
        .create_competition(&organizer, "title: only a title\n")
        .await;
    assert!(matches!(broken, Err(ArenaError::Bundle(_))));
    assert_eq!(broken.map(|_| ()).unwrap_err().http_status(), 422);
    let listed = arena
        .competitions(&medarena_arena::Actor::Anonymous)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn tampered_objects_are_detected() {
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let arena = &world.arena;
    let submitted = arena
        .submit(&cast.team_x, cast.competition, &module(7))
        .await
        .expect("submit");
    assert_eq!(
        arena
            .download_module(&cast.team_x, submitted.id)
            .await
            .expect("download")
            .as_slice(),
        module(7)
    );

    // Flip one byte of the stored module: the read fails instead of returning altered code.
    let object = arena
        .store()
        .submission(submitted.id)
        .await
        .expect("row")
        .expect("exists")
        .object;
    let mut bytes = objects_of(&world).read(&object).await;
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    objects_of(&world).overwrite(&object, &bytes).await;
    let read = arena.download_module(&cast.team_x, submitted.id).await;
    assert!(
        matches!(read, Err(ArenaError::Vault(VaultError::Objects(_)))),
        "{read:?}"
    );

    // A run over tampered data fails on the platform side and is retried, never scored.
    let contribution = arena
        .store()
        .contributions(cast.dataset)
        .await
        .expect("rows")[0]
        .clone();
    objects_of(&world)
        .overwrite(
            &contribution.object.expect("object"),
            b"MDE1 not the original",
        )
        .await;
    let id = arena
        .submit(&cast.team_y, cast.competition, &module(8))
        .await
        .expect("submit")
        .id;
    let mut reports = Vec::new();
    while let Some(report) = arena.run_next_job("w").await.expect("run") {
        reports.push(report);
    }
    let real_run = reports
        .iter()
        .find(|r| r.submission == id && r.kind == medarena_arena::JobKind::RealRun)
        .expect("the real run was attempted");
    assert_eq!(real_run.end, medarena_arena::JobEnd::Retried);
    let view = arena.submission(&cast.organizer, id).await.expect("view");
    assert!(view.released_public_score.is_none());
}

/// The vault directly: keys are bound to scopes and plaintext digests, and the master key
/// matters.
#[tokio::test]
async fn sealed_objects_open_only_in_their_scope_with_their_master_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("db.sqlite"))
            .await
            .expect("store"),
    );
    let objects: Arc<dyn ObjectStore> =
        Arc::new(LocalObjectStore::open(dir.path().join("objects")).expect("objects"));
    let master_bytes = [7u8; 32];
    let keys: Arc<dyn KeyRepo> = store.clone();
    let vault = Vault::new(
        MasterKey::from_bytes(master_bytes),
        objects.clone(),
        keys.clone(),
        Arc::new(SystemClock),
    );
    let scope_a = KeyScope::Dataset(DatasetId(1));
    let scope_b = KeyScope::Dataset(DatasetId(2));

    let sealed = vault.put(&scope_a, b"patient rows").await.expect("put");
    assert_eq!(
        vault
            .get(&scope_a, &sealed.object, &sealed.content_sha256)
            .await
            .expect("get")
            .as_slice(),
        b"patient rows"
    );
    // Same plaintext, same scope: a fresh nonce, so a different object.
    let again = vault.put(&scope_a, b"patient rows").await.expect("put");
    assert_ne!(again.object, sealed.object);
    assert_eq!(again.content_sha256, sealed.content_sha256);
    // Another scope's key does not open it.
    vault
        .put(&scope_b, b"other")
        .await
        .expect("create scope b key");
    assert!(matches!(
        vault
            .get(&scope_b, &sealed.object, &sealed.content_sha256)
            .await,
        Err(VaultError::Crypto(_))
    ));
    // A claimed digest that is not the object's fails too (the digest is bound as AAD).
    let other_digest = medarena_arena::vault::sha256_hex(b"something else");
    assert!(
        vault
            .get(&scope_a, &sealed.object, &other_digest)
            .await
            .is_err()
    );
    // Wrapped keys are stored, not plain: the wrong master key cannot unwrap them.
    let wrapped = keys
        .data_key(&scope_a.to_string())
        .await
        .expect("key")
        .expect("stored");
    assert_eq!(wrapped.len(), 4 + 24 + 32 + 16);
    let wrong = Vault::new(
        MasterKey::from_bytes([8u8; 32]),
        objects.clone(),
        keys.clone(),
        Arc::new(SystemClock),
    );
    assert!(matches!(
        wrong
            .get(&scope_a, &sealed.object, &sealed.content_sha256)
            .await,
        Err(VaultError::Crypto(_))
    ));
    // The right master key, in a new process, still opens it.
    let reopened = Vault::new(
        MasterKey::from_bytes(master_bytes),
        objects,
        keys,
        Arc::new(SystemClock),
    );
    assert!(
        reopened
            .get(&scope_a, &sealed.object, &sealed.content_sha256)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_master_key_file_is_created_once_and_reused() {
    let world = World::new().await;
    let key_path = world.dir.path().join("master.key");
    let first = std::fs::read_to_string(&key_path).expect("key file created at first open");
    assert_eq!(first.trim().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    let id = world
        .arena
        .submit(&cast.team_x, cast.competition, &module(3))
        .await
        .expect("submit")
        .id;
    let reopened = world.reopen(world.executor.clone()).await;
    assert_eq!(std::fs::read_to_string(&key_path).expect("key"), first);
    assert_eq!(
        reopened
            .download_module(&cast.team_x, id)
            .await
            .expect("decrypts")
            .as_slice(),
        module(3)
    );

    // A different master key cannot read what the first one sealed.
    let mut config = test_config(world.dir.path());
    config.master_key = medarena_arena::MasterKeySource::Hex("11".repeat(32));
    let wrong = medarena_arena::Arena::builder(config)
        .executor(world.executor.clone())
        .validator(world.validator.clone())
        .clock(world.clock.clone())
        .open()
        .await
        .expect("opens");
    assert!(matches!(
        wrong.download_module(&cast.team_x, id).await,
        Err(ArenaError::Vault(_))
    ));
    let mut config = test_config(world.dir.path());
    config.master_key = medarena_arena::MasterKeySource::Hex("not hex".into());
    let refused = medarena_arena::Arena::builder(config)
        .executor(world.executor.clone())
        .validator(world.validator.clone())
        .open()
        .await;
    assert!(matches!(refused, Err(ArenaError::Config(_))));
}

#[tokio::test]
async fn uploads_interrupted_before_validation_are_settled_at_the_next_start() {
    let world = World::new().await;
    let arena = &world.arena;
    let organizer = organizer(arena).await;
    let (hospital_a, a_org) = hospital(arena, &organizer, "A").await;
    let dataset = arena
        .create_dataset(&hospital_a, "cardiac-events", "Cardiac", "")
        .await
        .expect("create");

    // What a crash right after storing leaves: an encrypted object and an `uploaded` row.
    let store: Arc<dyn medarena_arena::Store> = arena.store().clone();
    let keys: Arc<dyn KeyRepo> = store.clone();
    let master = MasterKey::load(&medarena_arena::MasterKeySource::File(
        world.dir.path().join("master.key"),
    ))
    .expect("master key");
    let vault = Vault::new(
        master,
        objects_of(&world).store(),
        keys,
        world.clock.clone(),
    );
    let upload = csv_upload("a.csv", 12);
    let sealed = vault
        .put(&KeyScope::Dataset(dataset.id), &upload.bytes)
        .await
        .expect("put");
    let stamp = medarena_arena::store::Stamp {
        at: world.clock.now_for_tests(),
        actor: hospital_a.account(),
    };
    store
        .insert_contribution(
            stamp,
            &medarena_arena::store::NewContribution {
                dataset: dataset.id,
                hospital: a_org,
                uploaded_by: hospital_a.account().expect("account"),
                file_name: upload.file_name.clone(),
                manifest: upload.manifest.clone(),
                object: sealed.object,
                content_sha256: sealed.content_sha256.clone(),
                size_bytes: sealed.size_bytes,
                commitment_salt: medarena_arena::vault::commitment_salt(),
                key_scope: None,
            },
        )
        .await
        .expect("insert");

    // A restart soon after leaves it alone (it may be an upload in progress elsewhere)...
    let validations = || {
        world
            .validator
            .calls
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    let calls = validations();
    world.reopen(world.executor.clone()).await;
    assert_eq!(validations(), calls);
    // ...a worker host, which cannot read it (no master key), leaves it alone too...
    world.clock.advance(std::time::Duration::from_secs(601));
    #[derive(Debug)]
    struct NoKeys;
    #[async_trait::async_trait]
    impl medarena_arena::vault::KeyBroker for NoKeys {
        async fn data_key(
            &self,
            _: &medarena_arena::vault::JobLease,
            scope: &KeyScope,
        ) -> Result<medarena_arena::crypto::DataKey, medarena_arena::vault::VaultError> {
            panic!("a worker host asked for the key of {scope} outside a job")
        }
        fn cache_key(&self) -> [u8; 32] {
            [0; 32]
        }
    }
    let worker_host = medarena_arena::Arena::builder(test_config(world.dir.path()))
        .executor(world.executor.clone())
        .validator(world.validator.clone())
        .audit_sink(world.audit.clone())
        .clock(world.clock.clone())
        .key_broker(Arc::new(NoKeys))
        .open()
        .await
        .expect("a worker host's arena");
    assert_eq!(
        validations(),
        calls,
        "a worker host validated an upload it cannot read"
    );
    drop(worker_host);
    // ...a server whose storage fails to answer leaves it for the next start (a failed read
    // is no verdict on the file; the local store's I/O error stands for any outage)...
    if let RawObjects::Local(local) = objects_of(&world) {
        let path = local.path_of(&sealed.object);
        let aside = path.with_extension("aside");
        std::fs::rename(&path, &aside).expect("move the object aside");
        std::fs::create_dir(&path).expect("a directory where the object was");
        world.reopen(world.executor.clone()).await;
        assert_eq!(
            validations(),
            calls,
            "an unreadable upload was validated (and so rejected)"
        );
        std::fs::remove_dir(&path).expect("remove the directory");
        std::fs::rename(&aside, &path).expect("put the object back");
    }
    // ...a server restarting later validates it from the stored, encrypted bytes.
    let restarted = world.reopen(world.executor.clone()).await;
    let view = restarted
        .dataset(&organizer, dataset.id)
        .await
        .expect("view");
    assert_eq!(view.dataset.state, DatasetState::Validated);
    assert_eq!(view.contributions[0].state, ContributionState::Validated);
    // 12 rows, as organizers see counts: rounded to 5.
    assert_eq!(view.contributions[0].rows, Some(10));
}

/// A hospital's synthetic release: measured at its ε (charged at once, counted for every
/// team, hospitals in parallel), previewed by it alone, published to the teams (replacing
/// its previous one), drawn from for development data; every step on the ledger, no figure
/// about the rows.
#[tokio::test]
async fn synthetic_releases_are_charged_previewed_published_and_drawn_from() {
    use medarena_arena::{SyntheticAction, SyntheticState};
    let world = World::new().await;
    let arena = &world.arena;
    let cast = cast_with(arena, EXAMPLE_BUNDLE, heart_uploads()).await;

    // Only a contributing hospital measures; ε is checked.
    let refused = arena
        .measure_synthetic(&cast.team_x, cast.dataset, 1.0)
        .await;
    assert!(
        matches!(refused, Err(ArenaError::Forbidden(_))),
        "{refused:?}"
    );
    for bad in [0.0, -1.0, f64::NAN, 1e6] {
        let refused = arena
            .measure_synthetic(&cast.hospital_a, cast.dataset, bad)
            .await;
        assert!(
            matches!(refused, Err(ArenaError::Invalid { .. })),
            "{bad}: {refused:?}"
        );
    }

    let draft = arena
        .measure_synthetic(&cast.hospital_a, cast.dataset, 1.0)
        .await
        .expect("measure");
    assert_eq!(
        (draft.state, draft.hospital),
        (SyntheticState::Draft, cast.hospital_a_org)
    );
    assert!(
        draft.epsilon <= 1.0 && draft.epsilon > 0.99,
        "{}",
        draft.epsilon
    );
    assert!(draft.quality.max_column_tvd.is_finite() && draft.quality.max_column_tvd < 0.5);

    // The draft is the hospital's preview: not the other hospital's, not the teams'.
    let seen_by = |actor| {
        let arena = arena.clone();
        let dataset = cast.dataset;
        async move {
            arena
                .synthetic_releases(actor, dataset)
                .await
                .expect("list")
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(seen_by(&cast.hospital_a).await, vec![draft.id]);
    assert_eq!(seen_by(&cast.organizer).await, vec![draft.id]);
    assert!(seen_by(&cast.hospital_b).await.is_empty());
    assert!(seen_by(&cast.team_x).await.is_empty());
    // Development data comes from the dummy generator until something is published.
    let dummy = arena
        .development_data(&cast.team_x, cast.competition, Some(50), None)
        .await
        .expect("development data");
    assert!(dummy.releases.is_empty());

    // Charged at once, counted against the per-team cap; hospitals compose in parallel.
    let privacy = arena
        .dataset_privacy(&cast.hospital_a, cast.dataset)
        .await
        .expect("privacy");
    assert_eq!(privacy.spent_synthetic, 1.0);
    let terms = medarena_arena::DatasetPrivacyTerms {
        min_level: medarena_arena::PrivacyLevel::Row,
        per_team_epsilon: 3.0,
        total_epsilon: 100.0,
    };
    arena
        .set_dataset_privacy(&cast.hospital_a, cast.dataset, &terms)
        .await
        .expect("terms");
    let over = arena
        .measure_synthetic(&cast.hospital_a, cast.dataset, 2.5)
        .await;
    assert!(
        matches!(&over, Err(ArenaError::Precondition(m)) if m.contains("cap per team")),
        "{over:?}"
    );
    let b_draft = arena
        .measure_synthetic(&cast.hospital_b, cast.dataset, 1.5)
        .await
        .expect("hospital b measures");
    let privacy = arena
        .dataset_privacy(&cast.organizer, cast.dataset)
        .await
        .expect("privacy");
    assert_eq!(privacy.spent_synthetic, 1.5);
    arena
        .change_synthetic(&cast.hospital_b, b_draft.id, SyntheticAction::Discard)
        .await
        .expect("discard");
    // A discarded draft's ε stays spent.
    let privacy = arena
        .dataset_privacy(&cast.organizer, cast.dataset)
        .await
        .expect("privacy");
    assert_eq!(privacy.spent_synthetic, 1.5);

    // Only the releasing hospital decides, and only from the right state.
    let foreign = arena
        .change_synthetic(&cast.hospital_b, draft.id, SyntheticAction::Publish)
        .await;
    assert!(
        matches!(foreign, Err(ArenaError::Forbidden(_))),
        "{foreign:?}"
    );
    let premature = arena
        .change_synthetic(&cast.hospital_a, draft.id, SyntheticAction::Withdraw)
        .await;
    assert!(
        matches!(premature, Err(ArenaError::Conflict(_))),
        "{premature:?}"
    );
    let published = arena
        .change_synthetic(&cast.hospital_a, draft.id, SyntheticAction::Publish)
        .await
        .expect("publish");
    assert_eq!(published.state, SyntheticState::Published);
    assert!(published.published_at.is_some());
    assert_eq!(seen_by(&cast.team_x).await, vec![draft.id]);

    // Teams draw development data from it: the default is the dummy run's table, repeatable.
    let data = arena
        .development_data(&cast.team_x, cast.competition, None, None)
        .await
        .expect("development data");
    assert_eq!(data.releases, vec![draft.id]);
    let text = String::from_utf8(data.csv.clone()).expect("utf-8");
    assert_eq!(
        text.lines().count(),
        1 + medarena_arena::DEFAULT_DEVELOPMENT_ROWS
    );
    assert!(text.starts_with("record_id,site,"), "{}", &text[..60]);
    let again = arena
        .development_data(&cast.team_y, cast.competition, None, None)
        .await
        .expect("development data");
    assert_eq!(again.csv, data.csv);
    let too_many = arena
        .development_data(&cast.team_x, cast.competition, Some(10_000_000), None)
        .await;
    assert!(
        matches!(too_many, Err(ArenaError::Invalid { .. })),
        "{too_many:?}"
    );

    // A new publication replaces the hospital's previous one.
    let second = arena
        .measure_synthetic(&cast.hospital_a, cast.dataset, 0.5)
        .await
        .expect("second measurement");
    arena
        .change_synthetic(&cast.hospital_a, second.id, SyntheticAction::Publish)
        .await
        .expect("publish second");
    let states: Vec<_> = arena
        .synthetic_releases(&cast.hospital_a, cast.dataset)
        .await
        .expect("list")
        .iter()
        .map(|r| (r.id, r.state))
        .collect();
    assert_eq!(
        states,
        vec![
            (second.id, SyntheticState::Published),
            (draft.id, SyntheticState::Withdrawn)
        ]
    );

    // The ledger holds each step with its ε and the measurements' digest, nothing else.
    let events: Vec<_> = world
        .audit
        .records()
        .into_iter()
        .filter(|r| r.event.kind().starts_with("synthetic_data"))
        .collect();
    // Three measurements (the refused one wrote nothing); a discard, two publications and
    // the withdrawal the second one made.
    assert_eq!(events.len(), 3 + 4, "{events:#?}");
    for record in &events {
        let payload = serde_json::to_value(&record.event).expect("json");
        assert!(payload.get("quality").is_none() && payload.get("rows").is_none());
    }
    assert!(events.iter().any(|r| {
        serde_json::to_value(&r.event).is_ok_and(|p| {
            p["state"] == "published" && p["measurements_sha256"] == published.measurements_sha256
        })
    }));
}

/// A contributing hospital suspends its dataset: the next real run is refused before it is
/// queued (its note names the hospital's reason), one already queued ends when it would
/// start, and resuming lets runs through again; both steps are on the ledger.
#[tokio::test]
async fn a_hospital_suspends_its_dataset_and_real_runs_stop_until_it_resumes() {
    use medarena_arena::{JobKind, SubmissionStatus};
    let world = World::new().await;
    let arena = &world.arena;
    let cast = cast(arena, EXAMPLE_BUNDLE).await;
    for actor in [&cast.organizer, &cast.team_x] {
        let refused = arena
            .set_dataset_suspension(actor, cast.dataset, true, Some("no"))
            .await;
        assert!(
            matches!(refused, Err(ArenaError::Forbidden(_))),
            "{refused:?}"
        );
    }
    let unexplained = arena
        .set_dataset_suspension(&cast.hospital_a, cast.dataset, true, None)
        .await;
    assert!(
        matches!(&unexplained, Err(ArenaError::Invalid { field, .. }) if field == "reason"),
        "{unexplained:?}"
    );

    // A run queued before the suspension ends when it would start.
    let queued = arena
        .submit(&cast.team_x, cast.competition, &module(1))
        .await
        .expect("submit")
        .id;
    arena.run_next_job("test-worker").await.expect("dummy run");
    assert_eq!(
        world.view(&cast.team_x, queued).await.status,
        SubmissionStatus::QueuedReal
    );
    let reason = "consent forms under ethics review";
    let privacy = arena
        .set_dataset_suspension(&cast.hospital_a, cast.dataset, true, Some(reason))
        .await
        .expect("suspend");
    assert_eq!(privacy.suspensions.len(), 1);
    assert_eq!(privacy.suspensions[0].hospital, cast.hospital_a_org);
    world.release().await;
    let stopped = world.view(&cast.team_x, queued).await;
    assert_eq!(stopped.status, SubmissionStatus::Failed, "{stopped:?}");
    assert!(stopped.released_public_score.is_none());

    // A new submission's real run is refused before it is queued, saying why.
    let refused = arena
        .submit(&cast.team_x, cast.competition, &module(2))
        .await
        .expect("submit")
        .id;
    world.release().await;
    let view = world.view(&cast.team_x, refused).await;
    assert_eq!(view.status, SubmissionStatus::Failed);
    let note = view.note.unwrap_or_default();
    assert!(
        note.contains("suspended") && note.contains(reason),
        "{note}"
    );
    let real_runs = |world: &World| {
        world
            .executor
            .started()
            .iter()
            .filter(|(_, kind)| *kind == JobKind::RealRun)
            .count()
    };
    assert_eq!(
        real_runs(&world),
        0,
        "no real run read the suspended dataset"
    );

    // Resumed: runs go through again.
    let privacy = arena
        .set_dataset_suspension(&cast.hospital_a, cast.dataset, false, None)
        .await
        .expect("resume");
    assert!(privacy.suspensions.is_empty());
    let resumed = arena
        .submit(&cast.team_x, cast.competition, &module(3))
        .await
        .expect("submit")
        .id;
    world.release().await;
    assert_eq!(
        world.view(&cast.team_x, resumed).await.status,
        SubmissionStatus::Completed
    );
    assert_eq!(real_runs(&world), 1);
    let kinds = world.audit.kinds();
    assert!(
        kinds.contains(&"dataset_suspended") && kinds.contains(&"dataset_resumed"),
        "{kinds:?}"
    );
}

/// The audit trail of a dataset as the ledger would hold it (the events' JSON).
async fn world_events_about(
    arena: &medarena_arena::Arena,
    organizer: &medarena_arena::Actor,
    dataset: DatasetId,
) -> String {
    let records = arena
        .audit_trail(organizer, &dataset.to_string())
        .await
        .expect("audit trail");
    let reviewed: Vec<_> = records
        .iter()
        .filter(|r| r.event.kind() == "dataset_reviewed")
        .map(|r| {
            medarena_arena::ledger_sink::ledger_entry(r)
                .expect("entry")
                .event
        })
        .collect();
    format!("{reviewed:?}")
}
