//! Claims on a deep queue, SQLite and PostgreSQL side by side in one run: the latency of one
//! claim with 100,000 jobs queued (p50, p99), and claims per second from 1, 2 and 4
//! concurrent claimers (as many worker processes would make them).
//!
//! ```text
//! cargo bench -p medarena-arena --bench claims [-- QUEUED]
//! ```
//!
//! PostgreSQL is the machine's (`MEDARENA_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), in a schema of its own dropped afterwards.
//! Each claim is the real one: reaping expired leases, fair scheduling across teams, the
//! row lock, the submission's status and the outbox event, in one transaction.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use medarena_arena::JobKind;
use medarena_arena::store::{ClaimRequest, Store};

const TEAMS: usize = 8;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let queued: i64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    println!("| store | jobs queued | claim p50 | claim p99 | claims/s, 1 claimer | 2 | 4 |");
    println!("|---|---|---|---|---|---|---|");
    for store in ["sqlite", "postgres"] {
        choose_store(store);
        let world = World::new().await;
        let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
        let teams = teams_of(&world.arena, &cast, TEAMS).await;
        for team in &teams {
            world
                .arena
                .submit(team, cast.competition, &module(1))
                .await
                .expect("submit");
        }
        fill_queue(&world, queued).await;
        let store_handle: Arc<dyn Store> = world.arena.store().clone();
        let now = world.arena.now();

        // One claimer: latency per claim.
        let mut latencies = Vec::new();
        for n in 0..2_000 {
            let started = Instant::now();
            let claimed = store_handle
                .claim(&request(format!("latency-{n}"), now))
                .await
                .expect("claim");
            latencies.push(started.elapsed());
            assert!(claimed.is_some(), "the queue ran dry");
        }
        latencies.sort();
        let p50 = latencies[latencies.len() / 2];
        let p99 = latencies[latencies.len() * 99 / 100];

        let mut rates = Vec::new();
        for claimers in [1usize, 2, 4] {
            let deadline = Instant::now() + Duration::from_secs(3);
            let tasks: Vec<_> = (0..claimers)
                .map(|c| {
                    let store = store_handle.clone();
                    tokio::spawn(async move {
                        let mut claims = 0u64;
                        while Instant::now() < deadline {
                            let token = format!("rate-{claimers}-{c}-{claims}");
                            if store
                                .claim(&request(token, now))
                                .await
                                .expect("claim")
                                .is_some()
                            {
                                claims += 1;
                            }
                        }
                        claims
                    })
                })
                .collect();
            let mut total = 0;
            for task in tasks {
                total += task.await.expect("claimer");
            }
            rates.push(total as f64 / 3.0);
        }
        println!(
            "| {store} | {queued} | {:.2} ms | {:.2} ms | {:.0} | {:.0} | {:.0} |",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            rates[0],
            rates[1],
            rates[2]
        );
    }
}

fn request(lease_token: String, now: medarena_arena::Timestamp) -> ClaimRequest {
    ClaimRequest {
        worker: "bench".to_owned(),
        lease_token,
        now,
        lease_ms: 3_600_000,
        kind: Some(JobKind::DummyRun),
    }
}

/// Copies each team's queued submission until `queued` dummy runs wait, in a few statements
/// (inserting 100,000 jobs through the API would measure the API).
async fn fill_queue(world: &World, queued: i64) {
    let copies = queued / TEAMS as i64;
    let config = test_config(world.dir.path());
    // The backends differ in how they list columns and count to N; the copies are alike.
    // A macro, not a function: one body for two pool types without sqlx's generic bounds.
    macro_rules! fill {
        ($pool:expr, $columns_sql:expr, $series:expr) => {{
            let pool = $pool;
            let columns: Vec<String> = sqlx::query_scalar($columns_sql)
                .fetch_all(pool)
                .await
                .expect("columns");
            let columns = columns.join(", ");
            for statement in [
                format!(
                    "INSERT INTO submissions ({columns}) SELECT {columns} FROM submissions, {} \
                     AS copies",
                    $series
                ),
                "INSERT INTO jobs (submission_id, competition_id, team_id, kind, state, \
                 attempts, max_attempts, available_at, created_at) \
                 SELECT s.id, s.competition_id, s.team_id, 'dummy_run', 'pending', 0, 3, \
                 s.created_at, s.created_at FROM submissions s \
                 WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.submission_id = s.id)"
                    .to_owned(),
            ] {
                sqlx::query(&statement)
                    .bind(copies)
                    .execute(pool)
                    .await
                    .expect("fill the queue");
            }
            sqlx::query("ANALYZE").execute(pool).await.expect("analyze");
        }};
    }
    match &config.database {
        Some(url) => {
            let store = medarena_arena::PgStore::connect(url, 2)
                .await
                .expect("PostgreSQL");
            fill!(
                store.pool(),
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = 'submissions' \
                 AND column_name <> 'id' ORDER BY ordinal_position",
                "generate_series(2, $1)"
            );
        }
        None => {
            let store = medarena_arena::SqliteStore::open(&config.database_path())
                .await
                .expect("SQLite");
            fill!(
                store.pool(),
                "SELECT name FROM pragma_table_info('submissions') WHERE name <> 'id'",
                "(WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
                 SELECT i FROM n)"
            );
        }
    }
}
