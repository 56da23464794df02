//! Moving an embedded deployment onto PostgreSQL (`medarena admin copy-database`): every row
//! arrives, ids and receipts included, and the platform carries on there.

mod common;

use std::sync::Arc;

use common::*;
use medarena_arena::store::copy::sqlite_to_postgres;
use medarena_arena::store::postgres::PgStore;
use medarena_arena::store::sqlite::SqliteStore;
use medarena_arena::testing::{RecordingAuditSink, ScriptedValidator};
use medarena_arena::{Arena, LeaderboardKind};

/// What users and the ledger see, as JSON, to compare before and after the move.
async fn snapshot(arena: &Arena, cast: &Cast) -> serde_json::Value {
    let submissions = arena
        .submissions(&cast.organizer, cast.competition, None)
        .await
        .expect("submissions");
    let board = arena
        .leaderboard(&cast.organizer, cast.competition, LeaderboardKind::Public)
        .await
        .expect("leaderboard");
    let budget = arena
        .budget(&cast.team_x, cast.competition, cast.team_x_org)
        .await
        .expect("budget");
    let events = arena
        .store()
        .recent_events(10_000)
        .await
        .expect("audit events");
    let contributions = arena
        .store()
        .contributions(cast.dataset)
        .await
        .expect("contributions");
    serde_json::json!({
        "submissions": submissions,
        "leaderboard": board,
        "budget": budget,
        "events": events,
        "contributions": format!("{contributions:?}"),
        "queue": format!("{:?}", arena.queue_stats().await.expect("stats")),
    })
}

#[tokio::test]
async fn an_embedded_deployment_moves_to_postgresql_without_losing_a_row_or_a_receipt() {
    if postgres_server().is_some() {
        return; // The source must be SQLite: this runs in the SQLite pass.
    }
    let Ok(server) = std::env::var(POSTGRES_URL_ENV) else {
        eprintln!("not run: set {POSTGRES_URL_ENV} (./scripts/test does)");
        return;
    };
    let world = World::new().await;
    let cast = cast(&world.arena, EXAMPLE_BUNDLE).await;
    for tag in 0..3 {
        world
            .arena
            .submit(&cast.team_x, cast.competition, &module(tag))
            .await
            .expect("submit");
    }
    world.release().await;
    // One submission still queued, so that its outbox events and job move undelivered.
    world
        .arena
        .submit(&cast.team_y, cast.competition, &module(9))
        .await
        .expect("submit");
    let before = snapshot(&world.arena, &cast).await;

    let schema = format!("medarena_copy_{}", std::process::id());
    let url = format!("{server}?options=-c%20search_path%3D{schema}");
    let _drop = TestDatabase::new(server.clone(), schema.clone());
    let source = SqliteStore::open(&world.dir.path().join("medarena.db"))
        .await
        .expect("source");
    let target = PgStore::open(&url, 4).await.expect("target");
    let report = sqlite_to_postgres(&source, &target).await.expect("copy");
    assert!(report.rows["audit_events"] > 20, "{report:?}");
    assert_eq!(report.rows["submissions"], 4);

    // A second copy into the same schema is refused: nothing is merged or doubled.
    let again = sqlite_to_postgres(&source, &target).await;
    assert!(
        again
            .as_ref()
            .is_err_and(|err| err.to_string().contains("copy into an empty schema")),
        "{again:?}"
    );

    let mut config = test_config(world.dir.path());
    config.database = Some(url);
    let moved = Arena::builder(config)
        .executor(world.executor.clone())
        .validator(Arc::new(ScriptedValidator::default()))
        .audit_sink(Arc::new(RecordingAuditSink::default()))
        .clock(world.clock.clone())
        .open()
        .await
        .expect("the platform on PostgreSQL");
    let after = snapshot(&moved, &cast).await;
    assert_eq!(before, after, "what everyone sees is unchanged");

    // Work continues there: the queued run finishes, and new rows take new ids.
    while moved.run_next_job("moved").await.expect("run").is_some() {}
    let next = moved
        .submit(&cast.team_y, cast.competition, &module(10))
        .await
        .expect("a submission on PostgreSQL");
    let largest = before["submissions"]
        .as_array()
        .expect("submissions")
        .iter()
        .filter_map(|s| s["id"].as_i64())
        .max()
        .expect("ids");
    assert!(next.id.0 > largest, "{} after {largest}", next.id.0);
}
