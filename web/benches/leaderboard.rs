//! Leaderboard GET throughput and latency over loopback, measured with `wrk`.
//!
//! In-process servers (the real router, release build) hold a competition with 30 scored
//! teams; `wrk` (Debian package `wrk`) loads `GET /api/v1/competitions/{id}/leaderboard`
//! and, for comparison, the server-rendered competition page: first one server on the
//! embedded SQLite store, then two servers on one PostgreSQL schema (the scale-out shape,
//! `MEDARENA_TEST_POSTGRES_URL`), each loaded by its own wrk. Everything shares this
//! machine's cores, as a load test on one box does.
//!
//! ```text
//! apt-get install wrk            # once
//! cargo bench -p medarena-web --bench leaderboard [-- SECONDS CONNECTIONS]
//! ```

#[path = "../../arena/tests/common/mod.rs"]
mod world;

use std::process::Command;
use std::sync::Arc;

use medarena_arena::Tier;
use medarena_arena::ledger_sink::open_ledger;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let seconds: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(10);
    let connections: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(64);
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("this benchmark needs the load tool `wrk`: apt-get install wrk");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The embedded default with one server, then PostgreSQL with two servers on one schema
    // (as behind a load balancer), each loaded by its own wrk with half the connections.
    for (store, servers) in [("sqlite", 1usize), ("postgres", 2)] {
        world::choose_store(store);
        let (bases, competition, _world) = rt.block_on(serve(servers));
        let board = |base: &str| format!("{base}/api/v1/competitions/{competition}/leaderboard");
        let entries = ureq::get(&board(&bases[0]))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["entries"].as_array().map(Vec::len))
            .unwrap_or(0);
        println!(
            "{store}, {servers} server(s): leaderboard with {entries} entries; \
             wrk -c{connections} -d{seconds}s --latency in all"
        );
        for (what, path) in [
            (
                "GET leaderboard (JSON API)",
                format!("/api/v1/competitions/{competition}/leaderboard"),
            ),
            (
                "GET competition page (HTML)",
                format!("/competitions/{competition}"),
            ),
        ] {
            let loads: Vec<_> = bases
                .iter()
                .map(|base| {
                    Command::new("wrk")
                        .args([
                            &format!("-t{}", 2 / servers.max(1)),
                            &format!("-c{}", connections / servers as u64),
                            &format!("-d{seconds}s"),
                            "--latency",
                            &format!("{base}{path}"),
                        ])
                        .stdout(std::process::Stdio::piped())
                        .spawn()
                        .expect("running wrk")
                })
                .collect();
            let mut rate = 0.0;
            let mut p50 = Vec::new();
            let mut p99 = Vec::new();
            let mut errors = Vec::new();
            for load in loads {
                let output = load.wait_with_output().expect("wrk");
                let text = String::from_utf8_lossy(&output.stdout).into_owned();
                let field = |prefix: &str| {
                    text.lines()
                        .map(str::trim)
                        .find(|l| l.starts_with(prefix))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .unwrap_or("?")
                        .to_owned()
                };
                rate += field("Requests/sec:").parse::<f64>().unwrap_or(0.0);
                p50.push(field("50%"));
                p99.push(field("99%"));
                if let Some(line) = text
                    .lines()
                    .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
                {
                    errors.push(line.trim().to_owned());
                }
                if std::env::var_os("BENCH_VERBOSE").is_some() {
                    println!("{text}");
                }
            }
            println!(
                "  {what}: {rate:.0} req/s, p50 {}, p99 {}{}",
                p50.join(" / "),
                p99.join(" / "),
                if errors.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", errors.join("; "))
                }
            );
        }
    }
    drop(rt);
}

/// A competition with 30 scored teams, served by `servers` web servers on one database.
async fn serve(servers: usize) -> (Vec<String>, i64, world::World) {
    let world = world::World::new().await;
    let cast = world::cast(&world.arena, world::EXAMPLE_BUNDLE).await;
    let mut teams = vec![cast.team_x.clone(), cast.team_y.clone()];
    for n in 0..28 {
        let (team, _) =
            world::extra_team(&world.arena, &cast, &format!("Team {n}"), Tier::RealData).await;
        teams.push(team);
    }
    for (tag, team) in teams.iter().enumerate() {
        let tag = u32::try_from(tag).unwrap_or(0);
        world
            .arena
            .submit(team, cast.competition, &world::module(tag))
            .await
            .expect("submit");
    }
    // Run every job, then move past the release time so that the board shows the scores.
    world.release().await;
    let mut bases = Vec::new();
    for n in 0..servers {
        let arena = if n == 0 {
            world.arena.clone()
        } else {
            world.reopen(world.executor.clone()).await
        };
        // The ledger only answers its own routes here; each server gets one of its own.
        let dir = world.dir.path().join(format!("server-{n}"));
        let ledger = Arc::new(open_ledger(&dir, "bench/ledger").expect("ledger"));
        let app = medarena_web::router(medarena_web::AppState::new(arena, ledger));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        bases.push(format!(
            "http://{}",
            listener.local_addr().expect("address")
        ));
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    (bases, cast.competition.0, world)
}
