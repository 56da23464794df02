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
    let Some(ScaleOut { schema, objects }) = ScaleOut::create("move") else {
        return;
    };
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

/// Two web servers on one PostgreSQL database and S3 bucket, as behind a load balancer:
/// sessions, sign-in throttling and the ledger are shared, the second server serves the
/// first one's receipts, and when the first one dies the second takes over writing the
/// ledger without losing or repeating an entry.
#[test]
fn two_servers_share_sessions_throttling_and_the_ledger_and_one_takes_over_from_the_other() {
    let Some(ScaleOut { schema, objects }) = ScaleOut::create("pair") else {
        return;
    };
    let master_key = "5a".repeat(32);
    let env = [("MEDARENA_MASTER_KEY", master_key.as_str())];
    let shared = ["--database", &schema.url, "--objects", &objects];
    let root = tempfile::tempdir().expect("tempdir");
    let (dir_a, dir_b) = (root.path().join("host-a"), root.path().join("host-b"));

    create_organizer_with(&dir_a, "organizer@e2e.test", &shared, &env);
    let first = Server::start_with_env(&dir_a, &[&["--workers", "1"], &shared[..]].concat(), &env);
    // The operator gives the second host the ledger's key (both sign the one ledger).
    std::fs::create_dir_all(dir_b.join("ledger")).expect("ledger directory");
    for file in ["ledger-signing.key", "ledger.pub"] {
        std::fs::copy(
            dir_a.join("ledger").join(file),
            dir_b.join("ledger").join(file),
        )
        .expect("copy the ledger's key");
    }
    let second = Server::start_with_env(&dir_b, &[&["--workers", "1"], &shared[..]].concat(), &env);

    // A session from one server works on the other.
    let organizer_a = first.sign_in("organizer@e2e.test");
    let token = organizer_a.token.clone().expect("session token");
    let organizer_b = second.client(Some(&token));
    assert_eq!(
        organizer_b.ok("/api/v1/me")["account"]["email"],
        "organizer@e2e.test"
    );

    // Wrong passwords on one server count on the other.
    for _ in 0..5 {
        let wrong = first.client(None).post(
            "/api/v1/auth/login",
            &serde_json::json!({ "email": "nobody@e2e.test", "password": "not the password" }),
        );
        assert_eq!(wrong.status, 401, "{}", wrong.text);
    }
    let locked = second.client(None).post(
        "/api/v1/auth/login",
        &serde_json::json!({ "email": "nobody@e2e.test", "password": "not the password" }),
    );
    assert_eq!(locked.status, 429, "{}", locked.text);

    let competition = open_competition(&first, &organizer_a, &open_bundle_yaml());
    let team = team(&second, &organizer_b, "Team P", competition);
    let module = std::fs::read(example_module("logreg")).expect("example module");
    let submitted = team.submit(competition, module.clone());
    assert_eq!(finished(&team, submitted)["status"], "completed");
    let before = delivered_audit_trail(&organizer_b);
    for event in before.iter().step_by(7) {
        let code = event["evidence"].as_str().expect("evidence");
        verify_online(
            &second,
            code,
            "a receipt written by the first server, from the second",
        );
    }

    // The first server dies; the second takes over the ledger and records what follows.
    first.crash();
    let again = team.submit(competition, module);
    assert_eq!(
        finished(&team, again)["status"],
        "completed",
        "{}",
        second.log()
    );
    let after = delivered_audit_trail(&organizer_b);
    assert!(after.len() > before.len());
    let codes: Vec<&str> = after
        .iter()
        .filter_map(|e| e["evidence"].as_str())
        .collect();
    let unique: std::collections::HashSet<&str> = codes.iter().copied().collect();
    assert_eq!(unique.len(), codes.len(), "no entry was written twice");
    for code in codes.iter().rev().take(5).chain(codes.iter().take(3)) {
        verify_online(&second, code, "a receipt after the take-over");
    }
    assert!(
        second.log().contains("now writes the ledger"),
        "{}",
        second.log()
    );
    assert!(second.stop().success());
}
