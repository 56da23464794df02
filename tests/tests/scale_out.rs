//! Moving a running embedded deployment onto PostgreSQL and S3-compatible storage with the
//! admin commands the README gives, through the real binary: every submission, object and
//! ledger receipt is still there afterwards, and the platform carries on.

use std::time::Duration;

use medarena_tests::*;

fn finished(team: &Client, id: i64) -> serde_json::Value {
    wait_for("the submission to finish", Duration::from_secs(180), || {
        let view = team.ok(&format!("/api/v1/submissions/{id}"));
        (view["status"] == "completed" || view["status"] == "failed").then_some(view)
    })
}

#[test]
fn an_embedded_deployment_moves_to_postgresql_and_s3_keeping_every_receipt() {
    let Some(schema) = PostgresSchema::create("move") else {
        eprintln!("not run: set {POSTGRES_URL_ENV} (./scripts/test does)");
        return;
    };
    let Ok(s3) = std::env::var("MEDARENA_TEST_S3_URL") else {
        eprintln!("not run: set MEDARENA_TEST_S3_URL (./scripts/test does)");
        return;
    };
    let objects = format!("{s3}/move-{}", std::process::id());
    let root = tempfile::tempdir().expect("tempdir");
    let data_dir = root.path().join("data");
    let dir = data_dir.to_string_lossy().into_owned();

    // An embedded deployment with a finished submission and its receipts.
    create_organizer(&data_dir, "organizer@e2e.test");
    let server = Server::start(&data_dir, &["--workers", "1"]);
    let organizer = server.sign_in("organizer@e2e.test");
    let competition = open_competition(&server, &organizer, &open_bundle_yaml());
    let team = team(&server, &organizer, "Team M", competition);
    let module = std::fs::read(example_module("logreg")).expect("example module");
    let first = team.submit(competition, module.clone());
    let before = finished(&team, first);
    assert_eq!(before["status"], "completed", "{before}");
    let trail = delivered_audit_trail(&organizer);
    assert!(server.stop().success());

    // The README's move: rows to PostgreSQL, sealed objects to S3.
    let copied = medarena(
        &[
            "admin",
            "copy-database",
            "--data-dir",
            &dir,
            "--to",
            &schema.url,
        ],
        &[],
    );
    assert!(copied.status.success(), "{}", describe(&copied));
    assert!(
        String::from_utf8_lossy(&copied.stdout).contains("audit_events"),
        "{}",
        describe(&copied)
    );
    let moved = medarena(
        &[
            "admin",
            "copy-objects",
            "--data-dir",
            &dir,
            "--to",
            &objects,
        ],
        &[],
    );
    assert!(moved.status.success(), "{}", describe(&moved));
    // Nothing may be read from the old places any more.
    std::fs::rename(data_dir.join("objects"), root.path().join("old-objects")).expect("move");
    std::fs::rename(data_dir.join("medarena.db"), root.path().join("old.db")).expect("move");

    let server = Server::start(
        &data_dir,
        &[
            "--workers",
            "1",
            "--database",
            &schema.url,
            "--objects",
            &objects,
        ],
    );
    let organizer = server.sign_in("organizer@e2e.test");
    let after = delivered_audit_trail(&organizer);
    let codes = |events: &[serde_json::Value]| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| e["evidence"].as_str().map(str::to_owned))
            .collect()
    };
    let (old_codes, new_codes) = (codes(&trail), codes(&after));
    assert!(
        old_codes.iter().all(|code| new_codes.contains(code)),
        "every receipt is still on the audit trail"
    );
    for code in &old_codes {
        verify_online(&server, code, "a receipt from before the move");
    }
    let team = server.sign_in("member@team-m.test");
    assert_eq!(
        team.ok(&format!("/api/v1/submissions/{first}"))["released_public_score"],
        before["released_public_score"]
    );

    // A new submission runs on the moved data (decrypted from S3) and is recorded.
    let second = team.submit(competition, module);
    let done = finished(&team, second);
    assert_eq!(done["status"], "completed", "{done}\n{}", server.log());
    assert!(second > first);
    let latest = delivered_audit_trail(&organizer);
    assert!(latest.len() > after.len());
    assert!(server.stop().success());
}
