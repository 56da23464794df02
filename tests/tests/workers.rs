//! The scale-out shape: `medarena serve --workers 0` answers HTTP only, a separate
//! `medarena worker` process runs the jobs, and the server, which holds the ledger, records
//! the worker's events with receipts. On one data directory with the embedded SQLite file;
//! and as on separate hosts, sharing no file: PostgreSQL for the database, an S3-compatible
//! server for the objects, the master key from the environment.

use std::time::Duration;

use medarena_tests::*;

#[test]
fn a_separate_worker_process_runs_the_jobs_and_its_events_reach_the_ledger() {
    separate_worker(&[], &[], false);
}

#[test]
fn a_worker_sharing_no_file_with_the_server_runs_the_jobs_on_postgresql_and_s3() {
    let Some(ScaleOut { schema, objects }) = ScaleOut::create("workers") else {
        return;
    };
    let master_key = "7f".repeat(32);
    separate_worker(
        &["--database", &schema.url, "--objects", &objects],
        &[("MEDARENA_MASTER_KEY", &master_key)],
        true,
    );
}

/// `hosts_apart`: the worker gets a data directory of its own (no shared file system).
fn separate_worker(shared: &[&str], env: &[(&str, &str)], hosts_apart: bool) {
    let root = tempfile::tempdir().expect("tempdir");
    let data_dir = root.path().join("data");
    let worker_dir = if hosts_apart {
        root.path().join("worker-host")
    } else {
        data_dir.clone()
    };
    create_organizer_with(&data_dir, "organizer@e2e.test", shared, env);
    let server = Server::start_with_env(&data_dir, &[&["--workers", "0"], shared].concat(), env);
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

    let worker = Worker::start_with_env(&worker_dir, &[&["--workers", "1"], shared].concat(), env);
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
    if hosts_apart {
        // What the worker's host kept: its compiled-module cache, never data or a ledger.
        let kept: Vec<String> = std::fs::read_dir(&worker_dir)
            .expect("worker directory")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert!(
            kept.iter().all(|name| name == "artifact-cache"),
            "the worker host holds only its cache: {kept:?}"
        );
        assert!(!data_dir.join("objects").exists(), "objects live on S3");
    }
    assert!(server.stop().success());
}
