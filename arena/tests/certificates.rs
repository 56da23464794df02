//! Certificates on a real ledger: a registration certificate when a dataset is approved and
//! a result certificate per final entry at publication, signed with the ledger's key,
//! anchored by an `x.certificate_issued` entry, checked offline; any changed byte refused;
//! each visible to whom the matrix says, holding no exact score and no row count.

mod common;

use std::sync::Arc;

use common::*;
use medarena_arena::certificate::{
    self, CertificateDocument, CertificateError, CertificateKind, CertificateSubject,
};
use medarena_arena::ledger_sink::{LedgerSink, open_ledger};
use medarena_arena::testing::{ScriptedExecutor, ScriptedValidator};
use medarena_arena::{Actor, Arena, ArenaError, LeaderboardKind, ManualClock};
use medarena_ledger::{EvidenceCode, SharedLedger};

struct LedgerWorld {
    _dir: tempfile::TempDir,
    ledger: Arc<SharedLedger>,
    clock: Arc<ManualClock>,
    arena: Arena,
    _db: Option<TestDatabase>,
}

/// An arena whose audit sink is the ledger, signing certificates with the ledger's key.
async fn ledger_world() -> LedgerWorld {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Arc::new(open_ledger(dir.path(), "medarena.test/ledger").expect("ledger"));
    let sink = Arc::new(LedgerSink::new(ledger.clone()).expect("sink"));
    let clock = Arc::new(ManualClock::new(public_phase()));
    let arena = Arena::builder(test_config(dir.path()))
        .executor(Arc::new(ScriptedExecutor::succeeding()))
        .validator(Arc::new(ScriptedValidator::default()))
        .audit_sink(sink)
        .clock(clock.clone())
        .certificate_signer(test_signer(dir.path()))
        .open()
        .await
        .expect("open arena");
    LedgerWorld {
        _db: test_database(dir.path()),
        _dir: dir,
        ledger,
        clock,
        arena,
    }
}

impl LedgerWorld {
    /// The document with its anchoring entry's receipt, as the API serves it.
    fn with_receipt(&self, mut document: CertificateDocument) -> CertificateDocument {
        let anchor = document.anchor.as_mut().expect("anchored at once");
        let code = EvidenceCode::parse(&anchor.evidence_code).expect("evidence code");
        anchor.receipt = Some(self.ledger.read(|l| l.receipt_for(&code)).expect("receipt"));
        document
    }

    fn key(&self) -> medarena_ledger::VerifierKey {
        self.ledger.read(|l| l.verifier_key().clone())
    }
}

#[tokio::test]
async fn approval_issues_a_signed_anchored_registration_certificate() {
    let world = ledger_world().await;
    let arena = &world.arena;
    let cast = cast(arena, EXAMPLE_BUNDLE).await;
    let key = world.key();
    assert_eq!(arena.certificate_verifier_key(), Some(&key));

    let document = arena
        .registration_certificate(&cast.hospital_a, cast.dataset)
        .await
        .expect("certificate");
    let CertificateSubject::Registration(registration) = &document.body.subject else {
        panic!("a registration certificate");
    };
    assert_eq!(registration.dataset, cast.dataset);
    assert_eq!(registration.providers.len(), 2);
    assert_eq!(registration.contributions.len(), 2);
    assert_eq!(registration.review.outcome, "approved");
    let contributions = arena
        .dataset(&cast.organizer, cast.dataset)
        .await
        .expect("dataset")
        .contributions;
    for c in &contributions {
        assert!(
            registration
                .contributions
                .iter()
                .any(|r| r.contribution == c.id && r.content_sha256 == c.content_sha256)
        );
    }

    // Offline: signature, body, anchoring entry, bytes.
    let file = world.with_receipt(document.clone()).to_file_bytes();
    let verified = certificate::verify(&file, &key, None).expect("verifies");
    assert_eq!(verified.kind, CertificateKind::Registration);
    let (_, evidence) = verified.anchored_at.clone().expect("anchored");
    // The public entry holds the body's digest (a commitment), never a file's hash.
    let code = EvidenceCode::parse(&evidence).expect("code");
    let entry = world
        .ledger
        .read(|l| l.receipt_for(&code))
        .expect("receipt")
        .entry;
    assert!(entry.contains(&verified.body_sha256), "{entry}");
    for c in &contributions {
        assert!(!entry.contains(&c.content_sha256), "{entry}");
    }
    // A file saved before the receipt existed: the receipt given apart anchors it; the
    // receipt of another entry is refused, naming the anchor.
    let bare = document.to_file_bytes();
    let receipt = world
        .with_receipt(document.clone())
        .anchor
        .and_then(|a| a.receipt)
        .expect("receipt");
    let apart = certificate::verify(&bare, &key, Some(&receipt)).expect("anchored apart");
    assert_eq!(apart.anchored_at, verified.anchored_at);
    assert!(
        certificate::verify(&bare, &key, None)
            .expect("signature alone")
            .anchored_at
            .is_none()
    );
    let other_entry = world
        .ledger
        .read(|l| l.receipt(0))
        .expect("the first entry's receipt");
    let err = certificate::verify(&bare, &key, Some(&other_entry)).expect_err("wrong entry");
    assert!(err.to_string().starts_with("anchor:"), "{err}");

    // No row count appears (co-contributors and organizers must not learn exact counts).
    let text = String::from_utf8_lossy(&file);
    assert!(!text.contains("\"rows\""), "{text}");

    // A changed value, a reformatted file, another key: each refused, saying what failed.
    let altered = text.replacen(
        &registration.contributions[0].content_sha256,
        &"0".repeat(64),
        1,
    );
    let err = certificate::verify(altered.as_bytes(), &key, None).expect_err("altered body");
    assert!(matches!(err, CertificateError::BodyAltered { .. }), "{err}");
    let reformatted = text.replacen("\n  ", "\n   ", 1);
    assert!(matches!(
        certificate::verify(reformatted.as_bytes(), &key, None),
        Err(CertificateError::NotCanonical { .. })
    ));
    let (other, _) = medarena_ledger::LogSigner::generate("medarena.test/ledger").expect("key");
    let err = certificate::verify(&file, other.verifier_key(), None).expect_err("other key");
    assert!(
        err.to_string().contains("signature"),
        "the message names the signature: {err}"
    );

    // Issuing again changes nothing: one certificate per dataset.
    let again = arena
        .certificate(&cast.organizer, &document.body.serial)
        .await
        .expect("by serial");
    assert_eq!(again.body_sha256, document.body_sha256);

    // Its hospitals and organizers; nobody else.
    for actor in [&cast.organizer, &cast.hospital_b] {
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
        assert!(matches!(
            arena.certificate(actor, &document.body.serial).await,
            Err(ArenaError::Forbidden(_))
        ));
    }
    assert!(matches!(
        arena
            .registration_certificate(&Actor::Anonymous, cast.dataset)
            .await,
        Err(ArenaError::Unauthenticated)
    ));
    assert!(matches!(
        arena.certificate(&cast.organizer, "reg-999").await,
        Err(ArenaError::NotFound(_))
    ));
    assert!(matches!(
        arena.certificate(&cast.organizer, "../etc").await,
        Err(ArenaError::Invalid { .. })
    ));
}

#[tokio::test]
async fn publication_issues_a_result_certificate_per_final_entry() {
    let world = ledger_world().await;
    let arena = &world.arena;
    let cast = cast(arena, EXAMPLE_BUNDLE).await;
    for (team, tag) in [(&cast.team_x, 1), (&cast.team_y, 2)] {
        arena
            .submit(team, cast.competition, &module(tag))
            .await
            .expect("submit");
    }
    while arena.run_next_job("w").await.expect("job").is_some() {}
    world.clock.advance(RELEASE_WAIT);
    arena.deliver_audit_events().await;
    arena
        .close_competition(&cast.organizer, cast.competition)
        .await
        .expect("close");
    // None before publication; the list is the organizers' until then.
    assert!(
        arena
            .result_certificates(&cast.organizer, cast.competition)
            .await
            .expect("organizer")
            .is_empty()
    );
    assert!(matches!(
        arena
            .result_certificates(&cast.team_x, cast.competition)
            .await,
        Err(ArenaError::Forbidden(_))
    ));
    arena
        .publish_competition(&cast.organizer, cast.competition)
        .await
        .expect("publish");

    let board = arena
        .leaderboard(
            &Actor::Anonymous,
            cast.competition,
            LeaderboardKind::Private,
        )
        .await
        .expect("published board");
    assert!(!board.entries.is_empty());
    let exact = arena
        .exact_scores(&cast.organizer, cast.competition)
        .await
        .expect("exact");
    let certificates = arena
        .result_certificates(&Actor::Anonymous, cast.competition)
        .await
        .expect("public once published");
    assert_eq!(certificates.len(), board.entries.len());
    let registration = arena
        .registration_certificate(&cast.organizer, cast.dataset)
        .await
        .expect("registration");
    for (document, entry) in certificates.iter().zip(&board.entries) {
        let CertificateSubject::Result(result) = &document.body.subject else {
            panic!("a result certificate");
        };
        // As the published board shows it: the released score, its rank.
        assert_eq!(result.rank as usize, entry.rank);
        assert_eq!(result.team.org, entry.team);
        assert_eq!(result.released_score, entry.score);
        assert!(
            exact
                .iter()
                .filter(|e| e.submission == entry.submission)
                .all(|e| e.private_score != result.released_score),
            "never the exact private score"
        );
        assert_eq!(result.datasets.len(), 1);
        let reg = result.datasets[0].registration.as_ref().expect("linked");
        assert_eq!(reg.body_sha256, registration.body_sha256);
        let file = world.with_receipt(document.clone()).to_file_bytes();
        let verified = certificate::verify(&file, &world.key(), None).expect("verifies");
        assert!(verified.anchored_at.is_some());
        // Everyone may fetch it by serial.
        assert!(
            arena
                .certificate(&Actor::Anonymous, &document.body.serial)
                .await
                .is_ok()
        );
    }
}
