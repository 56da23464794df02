//! Hosts apart, for real: network namespaces (`ip netns` and veth pairs, made by the test)
//! stand for a server host and two worker hosts; this machine's own namespace is the storage
//! host (PostgreSQL and the S3 server, reached through `socat` on each link). Submissions
//! flow end to end; a worker host is killed mid-run and its job finishes on the other after
//! the lease expires; the server restarts. Every submission ends once, every ledger entry
//! verifies, and no budget is overspent. Worker hosts hold no master key: they ask the server
//! host's key service for the data keys of the jobs they claim.
//!
//! Needs root (or CAP_NET_ADMIN), `ip` and `socat`. Where namespaces cannot be made the test
//! says so; under CI (`MEDARENA_CI=1`, set by `.ci/run`) it fails instead.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use medarena_tests::*;

const SUBNET: &str = "10.213";
const PG_PORT: u16 = 25432;
const S3_PORT: u16 = 28014;
/// The server host's port (a namespace of its own has no other listeners), forwarded on
/// each worker host's link for its key service.
const SERVER_PORT: u16 = 28080;

/// The namespaces, links and forwarders this test made; removed when dropped.
struct Network {
    namespaces: Vec<String>,
    links: Vec<String>,
    forwarders: Vec<Child>,
}

impl Drop for Network {
    fn drop(&mut self) {
        for forwarder in &mut self.forwarders {
            let _ = forwarder.kill();
            let _ = forwarder.wait();
        }
        for link in &self.links {
            let _ = Command::new("ip").args(["link", "del", link]).status();
        }
        for namespace in &self.namespaces {
            let _ = Command::new("ip")
                .args(["netns", "del", namespace])
                .status();
        }
    }
}

fn run(args: &[&str]) -> Result<(), String> {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|err| format!("{}: {err}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// One namespace per host, each linked to this namespace by a veth pair on `SUBNET.i.0/24`
/// (this side `.1`, the host `.2`), with PostgreSQL and S3 forwarded on this side's address,
/// and on worker hosts' links (all but the first) the server host's port too.
fn network(hosts: &[&str], s3_port: u16) -> Result<Network, String> {
    let pid = std::process::id() % 100_000;
    let mut network = Network {
        namespaces: Vec::new(),
        links: Vec::new(),
        forwarders: Vec::new(),
    };
    for (i, host) in hosts.iter().enumerate() {
        let namespace = format!("ma{pid}{host}");
        let (outer, inner) = (format!("vo{pid}{i}"), format!("vi{pid}{i}"));
        let (near, far) = (format!("{SUBNET}.{i}.1"), format!("{SUBNET}.{i}.2"));
        run(&["ip", "netns", "add", &namespace])?;
        network.namespaces.push(namespace.clone());
        run(&[
            "ip", "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ])?;
        network.links.push(outer.clone());
        run(&["ip", "link", "set", &inner, "netns", &namespace])?;
        run(&["ip", "addr", "add", &format!("{near}/24"), "dev", &outer])?;
        run(&["ip", "link", "set", &outer, "up"])?;
        let inside = ["ip", "netns", "exec", namespace.as_str()];
        run(&[
            &inside[..],
            &["ip", "addr", "add", &format!("{far}/24"), "dev", &inner],
        ]
        .concat())?;
        run(&[&inside[..], &["ip", "link", "set", &inner, "up"]].concat())?;
        run(&[&inside[..], &["ip", "link", "set", "lo", "up"]].concat())?;
        let mut forwards = vec![
            (PG_PORT, "127.0.0.1:5432".to_owned()),
            (S3_PORT, format!("127.0.0.1:{s3_port}")),
        ];
        if i > 0 {
            forwards.push((SERVER_PORT, format!("{SUBNET}.0.2:{SERVER_PORT}")));
        }
        for (port, target) in forwards {
            let forwarder = Command::new("socat")
                .arg(format!("TCP-LISTEN:{port},bind={near},fork,reuseaddr"))
                .arg(format!("TCP:{target}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|err| format!("socat: {err}"))?;
            network.forwarders.push(forwarder);
        }
    }
    // The forwarders listen once their sockets are bound.
    std::thread::sleep(Duration::from_millis(300));
    Ok(network)
}

/// The storage settings as seen from host `i`.
fn storage(i: usize, database: &str, objects: &str) -> (Vec<String>, Vec<(String, String)>) {
    let near = format!("{SUBNET}.{i}.1");
    let database = database.replacen("127.0.0.1:5432", &format!("{near}:{PG_PORT}"), 1);
    let args = vec![
        "--database".to_owned(),
        database,
        "--objects".to_owned(),
        objects.to_owned(),
    ];
    let env = vec![(
        "AWS_ENDPOINT".to_owned(),
        format!("http://{near}:{S3_PORT}"),
    )];
    (args, env)
}

fn env_of(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn status(team: &Client, id: i64) -> String {
    team.ok(&format!("/api/v1/submissions/{id}"))["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn servers_and_workers_on_separate_hosts_lose_nothing_when_a_worker_host_dies() {
    let Some(ScaleOut { schema, objects }) = ScaleOut::create("hosts") else {
        return;
    };
    let endpoint = std::env::var("AWS_ENDPOINT").expect("the S3 server's AWS_ENDPOINT");
    assert!(
        schema.url.contains("127.0.0.1:5432"),
        "the test forwards the local PostgreSQL: {}",
        schema.url
    );
    let s3_port: u16 = endpoint
        .rsplit(':')
        .next()
        .and_then(|port| port.trim_end_matches('/').parse().ok())
        .expect("the S3 endpoint's port");
    let network = match network(&["srv", "w1", "w2"], s3_port) {
        Ok(network) => network,
        Err(reason) if std::env::var("MEDARENA_CI").is_ok() => {
            panic!("network namespaces are needed in CI: {reason}")
        }
        Err(reason) => {
            eprintln!("not run: cannot make network namespaces here ({reason})");
            return;
        }
    };
    let [server_host, worker_1, worker_2] = [0, 1, 2].map(|i| network.namespaces[i].clone());
    let master_key = "3c".repeat(32);
    let root = tempfile::tempdir().expect("tempdir");
    let dirs = ["server", "worker-1", "worker-2"].map(|d| root.path().join(d));

    // The worker token, printed where the master key is. Worker hosts get that token and
    // the server's key service, never the master key.
    let printed = medarena(
        &[
            "admin",
            "worker-token",
            "--data-dir",
            &dirs[0].to_string_lossy(),
        ],
        &[("MEDARENA_MASTER_KEY", &master_key)],
    );
    assert!(printed.status.success(), "{}", describe(&printed));
    let worker_token = String::from_utf8_lossy(&printed.stdout).trim().to_owned();
    let host = |i: usize| {
        let (args, mut env) = storage(i, &schema.url, &objects);
        if i == 0 {
            env.push(("MEDARENA_MASTER_KEY".to_owned(), master_key.clone()));
        } else {
            let key_service = format!("http://{SUBNET}.{i}.1:{SERVER_PORT}");
            env.push(("MEDARENA_KEY_SERVICE".to_owned(), key_service));
            env.push(("MEDARENA_WORKER_TOKEN".to_owned(), worker_token.clone()));
        }
        (args, env)
    };
    let (server_args, server_env) = host(0);
    let listen = format!("{SUBNET}.0.2:{SERVER_PORT}");
    let serve_args = |args: &Vec<String>| -> Vec<String> {
        let mut all = vec![
            "--workers".to_owned(),
            "0".to_owned(),
            "--listen".to_owned(),
            listen.clone(),
        ];
        all.extend(args.iter().cloned());
        all
    };

    // The organizer account, made from the storage host itself.
    create_organizer_with(
        &dirs[0],
        "organizer@e2e.test",
        &["--database", &schema.url, "--objects", &objects],
        &[("MEDARENA_MASTER_KEY", &master_key)],
    );
    let server_flags = serve_args(&server_args);
    let server_flags: Vec<&str> = server_flags.iter().map(String::as_str).collect();
    let start_server = || {
        Server::start_in(
            Some(&server_host),
            &dirs[0],
            &server_flags,
            &env_of(&server_env),
        )
    };
    let server = start_server();
    let organizer = server.sign_in("organizer@e2e.test");
    let competition = open_competition(&server, &organizer, &open_bundle_yaml());
    let team = team(&server, &organizer, "Team H", competition);
    let module = std::fs::read(example_module("logreg")).expect("example module");
    let submissions: Vec<i64> = (0..3)
        .map(|_| team.submit(competition, module.clone()))
        .collect();

    // Worker host 1 takes a job; it dies while running it.
    let start_worker = |i: usize, namespace: &str| {
        let (args, env) = host(i);
        let flags: Vec<&str> = ["--workers", "1", "--job-lease-secs", "4"]
            .into_iter()
            .chain(args.iter().map(String::as_str))
            .collect();
        Worker::start_in(Some(namespace), &dirs[i], &flags, &env_of(&env))
    };
    let first = start_worker(1, &worker_1);
    let running = wait_for(
        "a job running on worker host 1",
        Duration::from_secs(120),
        || {
            submissions
                .iter()
                .copied()
                .find(|id| status(&team, *id).starts_with("running"))
        },
    );
    first.crash();

    let second = start_worker(2, &worker_2);
    for id in &submissions {
        wait_for(
            "every submission to finish",
            Duration::from_secs(240),
            || (status(&team, *id) == "completed").then_some(()),
        );
    }

    // The server host restarts; everything is still there, once.
    assert!(server.stop().success());
    let server = start_server();
    let organizer = server.sign_in("organizer@e2e.test");
    let team = server.sign_in("member@team-h.test");
    for id in &submissions {
        assert_eq!(status(&team, *id), "completed");
    }
    let trail = delivered_audit_trail(&organizer);
    for id in &submissions {
        let finished = trail
            .iter()
            .filter(|e| {
                e["event"]["type"] == "submission_finished" && e["event"]["submission"] == *id
            })
            .count();
        assert_eq!(finished, 1, "submission {id} ended once");
    }
    assert!(
        trail
            .iter()
            .any(|e| e["event"]["type"] == "job_lease_expired"),
        "the dead host's job came back after its lease (submission {running})"
    );
    let codes: Vec<&str> = trail
        .iter()
        .filter_map(|e| e["evidence"].as_str())
        .collect();
    let unique: std::collections::HashSet<&str> = codes.iter().copied().collect();
    assert_eq!(unique.len(), codes.len(), "no entry twice");
    for code in &codes {
        verify_online(
            &server,
            code,
            "a receipt after the worker host died and the server restarted",
        );
    }
    let budget = team.ok(&format!("/api/v1/competitions/{competition}/budget"));
    for line in budget.as_array().expect("budget lines") {
        assert!(
            line["spent"].as_f64().unwrap_or(f64::MAX)
                <= line["total"].as_f64().unwrap_or(0.0) + 1e-9,
            "no budget overspent: {line}"
        );
    }
    assert!(second.stop().success());
    assert!(server.stop().success());
    drop(network);
}
