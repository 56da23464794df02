//! The scale-out shape on one data directory: `medarena serve --workers 0` answers HTTP
//! only, a separate `medarena worker` process runs the jobs, and the server, which holds
//! the ledger, records the worker's events with receipts.

use std::time::Duration;

use medarena_tests::*;

#[test]
fn a_separate_worker_process_runs_the_jobs_and_its_events_reach_the_ledger() {
    let root = tempfile::tempdir().expect("tempdir");
    let data_dir = root.path().join("data");
    create_organizer(&data_dir, "organizer@e2e.test");
    let server = Server::start(&data_dir, &["--workers", "0"]);
    let organizer = server.sign_in("organizer@e2e.test");
    let competition = open_competition(&server, &organizer, &open_bundle_yaml());
    let team = team(&server, &organizer, "Team W", competition);
    let module = std::fs::read(example_module("logreg")).expect("example module");
    let id = team.submit(competition, module);

    std::thread::sleep(Duration::from_secs(2));
    let waiting = team.ok(&format!("/api/v1/submissions/{id}"));
    assert_eq!(
        waiting["status"], "queued_dummy",
        "no worker in the server: {waiting}"
    );

    let worker = Worker::start(&data_dir, &["--workers", "1"]);
    let done = wait_for(
        "the worker to finish the submission",
        Duration::from_secs(120),
        || {
            let view = team.ok(&format!("/api/v1/submissions/{id}"));
            (view["status"] == "completed" || view["status"] == "failed").then_some(view)
        },
    );
    assert_eq!(done["status"], "completed", "{done}\n{}", server.log());

    let trail = delivered_audit_trail(&organizer);
    let started = trail
        .iter()
        .find(|e| e["event"]["type"] == "job_started")
        .expect("a job_started event");
    let worker_name = started["event"]["worker"].as_str().unwrap_or_default();
    assert!(
        worker_name.starts_with("worker-"),
        "the job ran in the worker process: {started}"
    );
    let code = started["evidence"].as_str().expect("evidence code");
    verify_online(&server, code, "the worker's receipt");

    assert!(
        worker.stop().success(),
        "the worker exits cleanly on SIGTERM"
    );
    assert!(server.stop().success());
}
