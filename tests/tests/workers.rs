//! The scale-out shape: `medarena serve --workers 0` answers HTTP only, a separate
//! `medarena worker` process runs the jobs, and the server, which holds the ledger, records
//! the worker's events with receipts. On one data directory with the embedded SQLite file;
//! and as on separate hosts, sharing no file: PostgreSQL for the database, an S3-compatible
//! server for the objects, and no master key on the worker's host: it asks the server's key
//! service for the data keys of each job it claims.

use std::time::Duration;

use medarena_tests::*;

#[test]
fn a_separate_worker_process_runs_the_jobs_and_its_events_reach_the_ledger() {
    separate_worker(&[], &[], Apart::No);
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
        Apart::KeyService,
    );
}

/// Where the worker runs.
#[derive(PartialEq)]
enum Apart {
    /// Beside the server, on its data directory and master key.
    No,
    /// On a host of its own: a data directory of its own (no shared file system), and the
    /// server's key service instead of the master key.
    KeyService,
}

fn separate_worker(shared: &[&str], env: &[(&'static str, &str)], apart: Apart) {
    let hosts_apart = apart == Apart::KeyService;
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

    let worker_env: Vec<(&str, String)> = match apart {
        Apart::No => env.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        Apart::KeyService => {
            // Printed on the server's host, where the master key is.
            let dir = data_dir.to_string_lossy();
            let printed = medarena(&["admin", "worker-token", "--data-dir", &dir], env);
            assert!(printed.status.success(), "{}", describe(&printed));
            let token = String::from_utf8_lossy(&printed.stdout).trim().to_owned();
            assert_eq!(token.len(), 64, "a worker token: {token:?}");
            vec![
                ("MEDARENA_KEY_SERVICE", server.base.clone()),
                ("MEDARENA_WORKER_TOKEN", token),
            ]
        }
    };
    if hosts_apart {
        // Without the key service's grants, such a worker could read nothing: refused a
        // key for a job it does not hold, the server answers 403.
        let guess = serde_json::json!({"job": 1, "lease_token": "guess", "scope": "team:1"});
        let refused = server
            .client(Some(&worker_env[1].1))
            .post("/internal/data-keys", &guess);
        assert_eq!(refused.status, 403, "{}", refused.text);
        let unauthenticated = server
            .client(Some(&"00".repeat(32)))
            .post("/internal/data-keys", &guess);
        assert_eq!(unauthenticated.status, 401, "{}", unauthenticated.text);
    }
    let worker = Worker::start_with_env(
        &worker_dir,
        &[&["--workers", "1"], shared].concat(),
        &env_refs(&worker_env),
    );
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
