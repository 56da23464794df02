//! The scale-out shape: `medarena serve --workers 0` answers HTTP only, a separate
//! `medarena worker` process runs the jobs, and the server, which holds the ledger, records
//! the worker's events with receipts. On the embedded SQLite file, and on PostgreSQL.

use std::time::Duration;

use medarena_tests::*;

#[test]
fn a_separate_worker_process_runs_the_jobs_and_its_events_reach_the_ledger() {
    separate_worker(&[]);
}

#[test]
fn on_postgresql_a_separate_worker_process_runs_the_jobs_and_its_events_reach_the_ledger() {
    let Some(schema) = PostgresSchema::create("workers") else {
        eprintln!("not run: set {POSTGRES_URL_ENV} (./scripts/test does)");
        return;
    };
    separate_worker(&["--database", &schema.url]);
}

fn separate_worker(database: &[&str]) {
    let root = tempfile::tempdir().expect("tempdir");
    let data_dir = root.path().join("data");
    create_organizer_with(&data_dir, "organizer@e2e.test", database);
    let server = Server::start(&data_dir, &[&["--workers", "0"], database].concat());
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

    let worker = Worker::start(&data_dir, &[&["--workers", "1"], database].concat());
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
    let workers: Vec<&str> = trail
        .iter()
        .filter(|e| e["event"]["type"] == "job_started")
        .filter_map(|e| e["event"]["worker"].as_str())
        .collect();
    // The dummy run names its worker; the real run's start names none (which worker was
    // free depends on how long other runs took).
    assert!(
        workers.iter().any(|w| w.starts_with("worker-")) && workers.contains(&"sealed"),
        "the jobs ran in the worker process: {workers:?}"
    );
    let started = trail
        .iter()
        .find(|e| {
            e["event"]["type"] == "job_started"
                && e["event"]["worker"]
                    .as_str()
                    .is_some_and(|w| w.starts_with("worker-"))
        })
        .expect("a job_started event of the worker");
    let code = started["evidence"].as_str().expect("evidence code");
    verify_online(&server, code, "the worker's receipt");

    assert!(
        worker.stop().success(),
        "the worker exits cleanly on SIGTERM"
    );
    assert!(server.stop().success());
}
