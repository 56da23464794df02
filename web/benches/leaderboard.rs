//! Leaderboard GET throughput and latency over loopback, measured with `wrk`.
//!
//! An in-process server (the real router, release build) holds a competition with 30
//! scored teams; `wrk` (Debian package `wrk`) loads `GET /api/v1/competitions/{id}/leaderboard`
//! and, for comparison, the server-rendered competition page. Both share this machine's
//! cores with the server, as a load test on one box does.
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
    let (base, competition, _world) = rt.block_on(async {
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
        world.drain().await;
        let ledger = Arc::new(open_ledger(world.dir.path(), "bench/ledger").expect("ledger"));
        let app = medarena_web::router(medarena_web::AppState::new(world.arena.clone(), ledger));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, cast.competition.0, world)
    });
    let board = format!("{base}/api/v1/competitions/{competition}/leaderboard");
    let entries = ureq::get(&board)
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["entries"].as_array().map(Vec::len))
        .unwrap_or(0);
    println!("leaderboard with {entries} entries; wrk -t2 -c{connections} -d{seconds}s --latency");
    for (what, url) in [
        ("GET leaderboard (JSON API)", board),
        (
            "GET competition page (HTML)",
            format!("{base}/competitions/{competition}"),
        ),
    ] {
        let output = Command::new("wrk")
            .args([
                "-t2",
                &format!("-c{connections}"),
                &format!("-d{seconds}s"),
                "--latency",
                &url,
            ])
            .output()
            .expect("running wrk");
        let text = String::from_utf8_lossy(&output.stdout);
        let field = |prefix: &str| {
            text.lines()
                .map(str::trim)
                .find(|l| l.starts_with(prefix))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("?")
                .to_owned()
        };
        let errors = text
            .lines()
            .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"));
        println!(
            "{what}: {} req/s, p50 {}, p99 {}{}",
            field("Requests/sec:"),
            field("50%"),
            field("99%"),
            errors.map_or_else(String::new, |e| format!(" ({})", e.trim()))
        );
        if std::env::var_os("BENCH_VERBOSE").is_some() {
            println!("{text}");
        }
    }
    drop(rt);
}
