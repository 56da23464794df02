//! Proves the store's SQL portable to PostgreSQL, without a PostgreSQL store yet.
//!
//! Runs a workload that calls every `Store` method against SQLite while capturing each
//! statement sqlx executes, then applies `migrations/postgres/` to a scratch schema and asks
//! PostgreSQL to prepare every captured statement (parse, resolve tables and columns, infer
//! parameter types). Gated: set `MEDARENA_TEST_POSTGRES_URL` (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`); without it the test passes as skipped.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use medarena_arena::store::ClaimRequest;
use medarena_arena::{LeaderboardKind, Role, Tier};
use sqlx::{Connection, Executor};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

const POSTGRES_URL_ENV: &str = "MEDARENA_TEST_POSTGRES_URL";

#[derive(Default)]
struct StatementFields {
    summary: String,
    statement: String,
}

impl Visit for StatementFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_owned(),
            "db.statement" => self.statement = value.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if matches!(field.name(), "summary" | "db.statement") {
            self.record_str(field, &format!("{value:?}"));
        }
    }
}

/// Collects every statement sqlx logs under the `sqlx::query` target.
struct CaptureStatements(Arc<Mutex<BTreeSet<String>>>);

impl<S: tracing::Subscriber> Layer<S> for CaptureStatements {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut fields = StatementFields::default();
        event.record(&mut fields);
        let sql = if fields.statement.trim().is_empty() {
            fields.summary
        } else {
            fields.statement
        };
        if let Ok(mut all) = self.0.lock() {
            all.insert(sql.trim().to_owned());
        }
    }
}

/// Statements of the store itself, not of sqlx's migration bookkeeping or connection set-up.
fn is_store_statement(sql: &str) -> bool {
    let upper = sql.to_uppercase();
    !(sql.is_empty()
        || upper.starts_with("PRAGMA")
        || upper.starts_with("BEGIN")
        || upper.starts_with("COMMIT")
        || upper.starts_with("ROLLBACK")
        || upper.starts_with("--")
        || upper.contains("_SQLX_MIGRATIONS")
        || upper.contains("SQLITE_")
        || upper.contains("CREATE TABLE"))
}

/// Calls every store method at least once.
async fn workload() {
    let world = World::new().await;
    let arena = &world.arena;
    // With the per-hospital view, so that publication stores and reads its releases.
    let bundle = EXAMPLE_BUNDLE.replace("    # site_epsilon: 0.5\n", "    site_epsilon: 0.5\n");
    // The example heart tables, so that synthetic releases can be measured for real.
    let cast = cast_with(arena, &bundle, heart_uploads()).await;

    let token = arena
        .create_api_token(&cast.team_x, "cli", None)
        .await
        .expect("token");
    arena.credentials(&cast.team_x).await.expect("credentials");
    arena
        .revoke_credential(&cast.team_x, token.credential.id)
        .await
        .expect("revoke");
    let (spare, _) = sign_up(arena, "spare@team.test", Role::TeamMember).await;
    arena
        .add_team_member(&cast.team_x, cast.team_x_org, "spare@team.test")
        .await
        .expect("add");
    arena
        .team(&cast.team_x, cast.team_x_org)
        .await
        .expect("team");
    arena
        .set_account_disabled(&cast.organizer, spare.account().expect("id"), true)
        .await
        .expect("disable");
    let (applicant, _) = sign_up(arena, "late@team.test", Role::TeamMember).await;
    let org = arena
        .apply(&applicant, "Late Team", "")
        .await
        .expect("apply");
    arena
        .applications(
            &cast.organizer,
            Some(medarena_arena::AdmissionState::Pending),
        )
        .await
        .expect("list");
    arena
        .applications(&cast.organizer, None)
        .await
        .expect("list");
    arena
        .review_application(
            &cast.organizer,
            org.id,
            &medarena_arena::AdmissionDecision::Reject { note: None },
        )
        .await
        .expect("reject");

    let first = arena
        .submit(&cast.team_x, cast.competition, &module(1))
        .await
        .expect("submit");
    world.drain().await;
    arena
        .download_module(&cast.team_x, first.id)
        .await
        .expect("module");
    arena
        .submissions(&cast.organizer, cast.competition, None)
        .await
        .expect("all");
    arena
        .submissions(&cast.team_x, cast.competition, None)
        .await
        .expect("own");
    arena
        .leaderboard(&cast.organizer, cast.competition, LeaderboardKind::Private)
        .await
        .expect("board");
    arena
        .public_score_history(&cast.team_x, cast.competition)
        .await
        .expect("history");
    arena
        .exact_scores(&cast.organizer, cast.competition)
        .await
        .expect("exact");
    for suspended in [true, false] {
        arena
            .set_dataset_suspension(&cast.hospital_a, cast.dataset, suspended, Some("audit"))
            .await
            .expect("suspension");
    }
    let draft = arena
        .measure_synthetic(&cast.hospital_a, cast.dataset, 0.5)
        .await
        .expect("synthetic draft");
    arena
        .change_synthetic(
            &cast.hospital_a,
            draft.id,
            medarena_arena::SyntheticAction::Publish,
        )
        .await
        .expect("publish synthetic");
    arena
        .synthetic_releases(&cast.team_x, cast.dataset)
        .await
        .expect("synthetic releases");
    arena
        .development_data(&cast.team_x, cast.competition, Some(20), None)
        .await
        .expect("development data");
    let contract = arena
        .contracts(&cast.organizer, Some(cast.competition))
        .await
        .expect("contracts")[0]
        .id;
    arena
        .contracts(&cast.team_x, None)
        .await
        .expect("all contracts");
    for action in [
        medarena_arena::ContractAction::Suspend,
        medarena_arena::ContractAction::Resume,
    ] {
        arena
            .change_contract(&cast.hospital_a, contract, action, Some("audit"))
            .await
            .expect("suspend and resume");
    }
    arena
        .contract(&cast.hospital_a, contract)
        .await
        .expect("contract");
    world.clock.advance(RELEASE_WAIT);
    for actor in [&cast.organizer, &cast.hospital_a, &cast.team_x] {
        let statement = arena
            .statement(
                actor,
                medarena_arena::StatementRequest {
                    contract: Some(contract),
                    from: Some(medarena_arena::Timestamp(0)),
                    to: None,
                },
            )
            .await
            .expect("statement");
        assert_eq!(statement.lines.len(), 1, "the real run is metered");
    }
    arena
        .budget(&cast.team_x, cast.competition, cast.team_x_org)
        .await
        .expect("budget");
    arena
        .dataset_usage(&cast.organizer, cast.dataset)
        .await
        .expect("usage");
    arena.datasets(&cast.organizer).await.expect("datasets");
    let view = arena
        .dataset(&cast.organizer, cast.dataset)
        .await
        .expect("dataset");
    arena
        .contribution(&cast.organizer, view.contributions[0].id)
        .await
        .expect("contribution");
    arena
        .agreement_acceptance(&cast.team_x, cast.competition)
        .await
        .expect("acceptance");
    let rejected_set = arena
        .create_dataset(&cast.hospital_a, "other-set", "Other", "")
        .await
        .expect("dataset");
    arena
        .upload_contribution(&cast.hospital_a, rejected_set.id, &csv_upload("o.csv", 3))
        .await
        .expect("upload");
    let withdrawn_set = arena
        .create_dataset(&cast.hospital_a, "withdrawn-set", "Withdrawn", "")
        .await
        .expect("dataset");
    let upload = arena
        .upload_contribution(&cast.hospital_a, withdrawn_set.id, &csv_upload("w.csv", 3))
        .await
        .expect("upload");
    arena
        .withdraw_contribution(&cast.hospital_a, upload.id, "consent withdrawn")
        .await
        .expect("withdraw");
    arena
        .review_dataset(
            &cast.organizer,
            rejected_set.id,
            &medarena_arena::DatasetReview {
                approve: false,
                note: Some("no".to_owned()),
                ..medarena_arena::DatasetReview::approve_all("checked")
            },
        )
        .await
        .expect("reject");

    // Queue paths: heartbeat, retry, give up, lease expiry.
    let store = arena.store();
    let (team_z, _) = extra_team(arena, &cast, "Team Z", Tier::RealData).await;
    arena
        .submit(&team_z, cast.competition, &module(2))
        .await
        .expect("submit");
    let claim = |token: &str, lease_ms| ClaimRequest {
        worker: "portability".into(),
        lease_token: token.into(),
        now: world.clock.now_for_tests(),
        lease_ms,
        kind: None,
    };
    let job = store
        .claim(&claim("a", 60_000))
        .await
        .expect("claim")
        .expect("job");
    store
        .heartbeat(job.id, "a", world.clock.now_for_tests(), 60_000)
        .await
        .expect("beat");
    let now = world.clock.now_for_tests();
    store
        .retry_or_fail(job.id, "a", now, now, "flaky", false)
        .await
        .expect("retry");
    store
        .claim(&claim("b", 60_000))
        .await
        .expect("claim")
        .expect("job");
    store
        .retry_or_fail(job.id, "b", now, now, "broken", true)
        .await
        .expect("give up");
    arena
        .submit(&team_z, cast.competition, &module(3))
        .await
        .expect("submit");
    store
        .claim(&claim("c", 10))
        .await
        .expect("claim")
        .expect("job");
    world.clock.advance(Duration::from_secs(1));
    store
        .reap_expired(world.clock.now_for_tests())
        .await
        .expect("reap");
    store.job(job.id).await.expect("job");
    arena.queue_stats().await.expect("stats");
    arena
        .set_dataset_privacy(
            &cast.hospital_a,
            cast.dataset,
            &medarena_arena::DatasetPrivacyTerms::default(),
        )
        .await
        .expect("terms");
    arena
        .dataset_privacy(&cast.organizer, cast.dataset)
        .await
        .expect("privacy");
    arena
        .budget(&cast.team_x, cast.competition, cast.team_x_org)
        .await
        .expect("budget");

    world.release().await;
    arena
        .close_competition(&cast.organizer, cast.competition)
        .await
        .expect("close");
    arena
        .publish_competition(&cast.organizer, cast.competition)
        .await
        .expect("publish");
    for actor in [&cast.organizer, &cast.hospital_a] {
        let rows = arena
            .site_scores(actor, cast.competition)
            .await
            .expect("site scores");
        assert!(!rows.is_empty(), "released at publication");
    }
    // Certificates: issued at approval and publication, read by dataset, competition, serial.
    let registration = arena
        .registration_certificate(&cast.hospital_a, cast.dataset)
        .await
        .expect("registration certificate");
    arena
        .certificate(&cast.organizer, &registration.body.serial)
        .await
        .expect("certificate by serial");
    let results = arena
        .result_certificates(&cast.team_x, cast.competition)
        .await
        .expect("result certificates");
    assert!(!results.is_empty(), "issued at publication");
    arena
        .audit_trail(&cast.auditor, &first.id.to_string())
        .await
        .expect("trail");
    arena
        .recent_audit_events(&cast.auditor, 10)
        .await
        .expect("recent");
    arena
        .logout(&sign_in(arena, "x@team-x.test").await.1)
        .await
        .expect("logout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_statements_prepare_on_postgres() {
    let Ok(url) = std::env::var(POSTGRES_URL_ENV) else {
        eprintln!("skipped: set {POSTGRES_URL_ENV} to check the SQL against PostgreSQL");
        return;
    };
    let captured = Arc::new(Mutex::new(BTreeSet::new()));
    let subscriber = tracing_subscriber::registry().with(CaptureStatements(captured.clone()));
    tracing::subscriber::set_global_default(subscriber)
        .expect("the only subscriber in this binary");
    workload().await;
    let statements: Vec<String> = captured
        .lock()
        .expect("lock")
        .iter()
        .filter(|sql| is_store_statement(sql))
        .cloned()
        .collect();
    assert!(
        statements.len() > 60,
        "captured only {} statements",
        statements.len()
    );
    assert!(
        statements
            .iter()
            .any(|sql| sql.contains("LEFT JOIN queue_turns") && sql.contains("ORDER BY")),
        "statements are captured whole"
    );

    let mut conn = sqlx::PgConnection::connect(&url)
        .await
        .expect("connect to PostgreSQL");
    let schema = format!("medarena_portability_{}", std::process::id());
    conn.execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path TO {schema}").as_str())
        .await
        .expect("scratch schema");
    for migration in [
        include_str!("../migrations/postgres/0001_core.sql"),
        include_str!("../migrations/postgres/0002_pipeline.sql"),
        include_str!("../migrations/postgres/0003_privacy.sql"),
        include_str!("../migrations/postgres/0004_site_scores.sql"),
        include_str!("../migrations/postgres/0005_synthetic.sql"),
        include_str!("../migrations/postgres/0006_suspensions.sql"),
        include_str!("../migrations/postgres/0008_certificates.sql"),
        include_str!("../migrations/postgres/0007_contracts.sql"),
    ] {
        sqlx::raw_sql(migration)
            .execute(&mut conn)
            .await
            .expect("PostgreSQL schema applies");
    }
    // Control: PostgreSQL does refuse SQLite-only syntax, so passing means something.
    assert!(
        conn.prepare("INSERT OR IGNORE INTO data_keys (scope) VALUES ($1)")
            .await
            .is_err()
    );
    let mut failures = Vec::new();
    for sql in &statements {
        if let Err(err) = conn.prepare(sql.as_str()).await {
            failures.push(format!("{err}\n    {sql}"));
        }
    }
    conn.execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .expect("drop schema");
    assert!(
        failures.is_empty(),
        "{} of {} statements do not prepare on PostgreSQL:\n{}",
        failures.len(),
        statements.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} store statements prepare on PostgreSQL",
        statements.len()
    );
}
