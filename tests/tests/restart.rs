//! Kill the server (SIGKILL) while runs are queued and one is running; after a restart
//! every submission finishes: the interrupted run is retried once its lease expires, the
//! queued ones run, none is lost.

use std::time::Duration;

use medarena_tests::*;
use serde_json::Value;

/// A submission whose fit never returns: it is still running when the server is killed,
/// and after the restart it runs again until the sandbox's deadline.
const SPINNING_MODULE: &str = r#"(module
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 4096))
  (func (export "medarena_abi_version") (result i32) (i32.const 1))
  (func (export "medarena_alloc") (param $size i32) (param $align i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $size)))
    (local.get $ptr))
  (func (export "medarena_fit") (param $call i32) (result i32) (loop $spin (br $spin)) (i32.const 0))
  (func (export "medarena_predict") (param $call i32) (result i32) (i32.const 0)))"#;

#[test]
fn no_submission_is_lost_when_the_server_is_killed_mid_run() {
    let root = tempfile::tempdir().expect("tempdir");
    let data_dir = root.path().join("data");
    create_organizer(&data_dir, "organizer@e2e.test");
    let flags = ["--workers", "1", "--job-lease-secs", "3"];
    let server = Server::start(&data_dir, &flags);
    let organizer = server.sign_in("organizer@e2e.test");
    let quick = open_bundle_with(|bundle| bundle.sandbox.time_limit_seconds = 4);
    let competition = open_competition(&server, &organizer, &quick);
    let team_a = team(&server, &organizer, "Team A", competition);
    let team_b = team(&server, &organizer, "Team B", competition);

    let spinning = team_a.submit(competition, wat::parse_str(SPINNING_MODULE).expect("WAT"));
    let module = |name: &str| std::fs::read(example_module(name)).expect("example module");
    let mut others = vec![
        team_a.submit(competition, module("logreg")),
        team_b.submit(competition, module("gbt")),
        team_b.submit(competition, module("baseline")),
    ];
    others.push(team_a.submit(competition, module("baseline")));

    wait_for("a running job", Duration::from_secs(60), || {
        let queue = organizer.ok("/api/v1/queue");
        (queue["running"].as_i64() >= Some(1)).then_some(())
    });
    let before = organizer.ok("/api/v1/queue");
    assert!(
        before["pending"].as_i64() >= Some(1),
        "jobs are still queued at the crash: {before}"
    );
    server.crash();

    let server = Server::start(&data_dir, &["--workers", "2", "--job-lease-secs", "3"]);
    let organizer = server.sign_in("organizer@e2e.test");
    let finished = wait_for(
        "every submission finished after the restart",
        Duration::from_secs(240),
        || {
            let all = organizer.ok(&format!("/api/v1/competitions/{competition}/submissions"));
            let all = all.as_array().cloned().unwrap_or_default();
            all.iter()
                .all(|s| s["status"] == "completed" || s["status"] == "failed")
                .then_some(all)
        },
    );
    assert_eq!(
        finished.len(),
        5,
        "all five submissions are still there: {finished:?}"
    );
    let by_id = |id: i64| {
        finished
            .iter()
            .find(|s| s["id"].as_i64() == Some(id))
            .cloned()
            .unwrap_or(Value::Null)
    };
    for id in &others {
        let submission = by_id(*id);
        assert_eq!(
            submission["status"],
            "completed",
            "submission {id} ran after the restart: {submission}\n{}",
            server.log()
        );
        assert!(
            submission["released_public_score"].as_f64().is_some(),
            "{submission}"
        );
    }
    let spun = by_id(spinning);
    assert_eq!(spun["status"], "failed", "{spun}");
    assert_eq!(
        spun["outcome"], "over_limit",
        "the retried run hit the deadline: {spun}"
    );

    let trail = organizer.ok(&format!("/api/v1/audit?subject=submission:{spinning}"));
    let jobs: Vec<i64> = trail
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["event"]["type"] == "job_enqueued")
        .filter_map(|e| e["event"]["job"].as_i64())
        .collect();
    let mut retried = false;
    for job in jobs {
        let events = organizer.ok(&format!("/api/v1/audit?subject=job:{job}"));
        retried |=
            events.as_array().into_iter().flatten().any(|e| {
                e["event"]["type"] == "job_lease_expired" && e["event"]["retried"] == true
            });
    }
    assert!(
        retried,
        "the interrupted run's lease expired and it was retried"
    );
    let queue = organizer.ok("/api/v1/queue");
    assert_eq!(
        (queue["pending"].as_i64(), queue["running"].as_i64()),
        (Some(0), Some(0)),
        "{queue}"
    );
    assert!(server.stop().success());
}
