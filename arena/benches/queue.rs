//! Throughput of the embedded core on this machine: submissions accepted per second (pre-check
//! double, encryption, object write with fsync, one SQLite transaction with `synchronous =
//! FULL`) and jobs run per second through the durable queue with a no-op executor.
//!
//! SQLite and PostgreSQL (`MEDARENA_TEST_POSTGRES_URL`, a scratch schema) side by side,
//! with 1, 2 and 4 workers.
//!
//! `cargo bench -p medarena-arena --bench queue` (plain binary; prints its figures).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use medarena_arena::WorkerPool;

const TEAMS: usize = 8;
const PER_TEAM: u32 = 25;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Budgets large enough for every real run: the bench measures the queue, not refusals.
    let bundle = EXAMPLE_BUNDLE
        .replace(
            "submissions_per_team_per_day: 5",
            "submissions_per_team_per_day: 1000",
        )
        .replace(
            "budget_per_team_per_dataset: 6.0",
            "budget_per_team_per_dataset: 100.0",
        );
    assert!(bundle.contains("budget_per_team_per_dataset: 100.0"));
    for (store, concurrency) in [
        ("sqlite", 1),
        ("sqlite", 2),
        ("sqlite", 4),
        ("postgres", 1),
        ("postgres", 2),
        ("postgres", 4),
    ] {
        choose_store(store);
        let world = World::new().await;
        let cast = cast(&world.arena, &bundle).await;
        let teams = teams_of(&world.arena, &cast, TEAMS).await;

        let started = Instant::now();
        for tag in 0..PER_TEAM {
            for team in &teams {
                world
                    .arena
                    .submit(team, cast.competition, &module(tag))
                    .await
                    .expect("submit");
            }
        }
        let submissions = TEAMS * PER_TEAM as usize;
        let submit_secs = started.elapsed().as_secs_f64();

        let mut config = test_config(world.dir.path());
        config.queue.concurrency = concurrency;
        config.default_dataset_terms.per_team_epsilon = 1000.0;
        config.default_dataset_terms.total_epsilon = 1000.0;
        let arena = medarena_arena::Arena::builder(config)
            .executor(world.executor.clone())
            .validator(world.validator.clone())
            .audit_sink(world.audit.clone())
            .clock(world.clock.clone())
            .open()
            .await
            .expect("open");
        let jobs = submissions * 2;
        let started = Instant::now();
        let pool = WorkerPool::spawn(&arena, "bench");
        // Until the queue is empty: every job succeeded, or (a bug) some did not; a bench
        // must end either way, and says so.
        let stats = loop {
            let stats = arena.queue_stats().await.expect("stats");
            if stats.pending == 0 && stats.running == 0 && stats.succeeded + stats.failed > 0 {
                break stats;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert_eq!(
            stats.succeeded as usize, jobs,
            "every dummy and real run succeeds: {stats:?}"
        );
        let run_secs = started.elapsed().as_secs_f64();
        pool.shutdown().await;
        println!(
            "{store}, workers={concurrency}: {submissions} submissions in {submit_secs:.2} s ({:.0}/s); \
             {jobs} jobs (dummy + real) in {run_secs:.2} s ({:.0} jobs/s)",
            submissions as f64 / submit_secs,
            jobs as f64 / run_secs
        );
    }
}
