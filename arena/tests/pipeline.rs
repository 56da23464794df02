//! The platform with the real libraries: datasets-spec validates uploads, the sandbox runs
//! the example submissions on dummy and real data through the queue, the scorer scores and
//! releases. `harness = false`: this test binary is also the sandbox's child process
//! (`<this binary> sandbox-child`, as `medarena sandbox-child` is in production), so no
//! other binary has to be built; the tests themselves run under libtest-mimic.

mod common;

use std::process::ExitCode;
use std::sync::Arc;

use common::*;
use libtest_mimic::{Arguments, Failed, Trial};
use medarena_arena::model::AnalysisSpec;
use medarena_arena::platform::{self, PlatformConfig};
use medarena_arena::sandbox::ChildCommand;
use medarena_arena::testing::RecordingAuditSink;
use medarena_arena::{
    Actor, Arena, ArenaError, DatasetId, DatasetUpload, JobKind, LeaderboardKind, ManualClock,
    OrgId, Role, RunOutcome, SubmissionId, SubmissionStatus, Tier, demo,
};

const MANIFEST: &str = medarena_arena::demo::HEART_MANIFEST;
const HOSPITAL_A: &str = medarena_arena::demo::HOSPITAL_A_CSV;
const HOSPITAL_B: &str = medarena_arena::demo::HOSPITAL_B_CSV;
const BAD_UPLOAD: &str = include_str!("../../datasets-spec/examples/heart/bad-upload.csv");

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("sandbox-child") {
        return ExitCode::from(medarena_arena::sandbox::run_child() as u8);
    }
    let args = Arguments::from_args();
    let tests = vec![
        trial(
            "uploads_are_validated_alone_and_as_a_union",
            uploads_are_validated,
        ),
        trial(
            "examples_run_on_dummy_then_real_data_and_are_scored",
            examples_run_and_score,
        ),
        trial(
            "the_budget_is_charged_and_refused_when_spent",
            budget_is_charged_and_refused,
        ),
        trial("the_ladder_keeps_its_state_per_team", ladder_keeps_state),
        trial(
            "label_level_releases_on_a_grid_and_caps_releases",
            label_level_releases_on_a_grid,
        ),
        trial(
            "hostile_modules_fail_coarsely_without_leaking",
            hostile_modules_fail_coarsely,
        ),
        trial(
            "dp_aggregates_are_released_with_noise",
            dp_aggregates_are_released,
        ),
        trial("demo_seed_is_idempotent", demo_seed_is_idempotent),
        trial(
            "prebuilt_examples_match_their_sources",
            prebuilt_examples_match_their_sources,
        ),
    ];
    libtest_mimic::run(&args, tests).exit_code()
}

type TestResult = Result<(), Failed>;

fn trial<F, Fut>(name: &'static str, test: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = TestResult>,
{
    Trial::test(name, move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|err| Failed::from(err.to_string()))?
            .block_on(test())
    })
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        let holds: bool = $cond;
        if !holds {
            return Err(Failed::from(format!($($msg)+)));
        }
    };
}

/// An arena with the real validator and executor (this binary as the sandbox child).
struct Platform {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    arena: Arena,
    _db: Option<TestDatabase>,
}

impl Platform {
    /// Runs every queued job, then moves the clock past every release time.
    async fn release(&self) {
        drain(&self.arena).await;
        self.clock.advance(RELEASE_WAIT);
        self.arena.deliver_audit_events().await;
    }
}

async fn platform_at(now: medarena_arena::Timestamp) -> Platform {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = ChildCommand::current_exe("sandbox-child").expect("this binary");
    let mut config = PlatformConfig::with_child(test_config(dir.path()), child);
    config.pipeline.bootstrap_resamples = 200;
    let clock = Arc::new(ManualClock::new(now));
    let arena = platform::builder(config)
        .expect("platform")
        .clock(clock.clone())
        .audit_sink(Arc::new(RecordingAuditSink::default()))
        .open()
        .await
        .expect("open the platform");
    Platform {
        _db: test_database(dir.path()),
        _dir: dir,
        clock,
        arena,
    }
}

fn upload(file_name: &str, csv: &str) -> DatasetUpload {
    DatasetUpload {
        file_name: file_name.to_owned(),
        manifest: Some(MANIFEST.to_owned()),
        bytes: csv.as_bytes().to_vec(),
    }
}

/// Organizer, two hospitals with the example data in an approved dataset, a competition
/// from `bundle_yaml`, and teams with the given tiers that accepted its agreement.
struct Cast {
    organizer: Actor,
    dataset: DatasetId,
    competition: medarena_arena::CompetitionId,
    teams: Vec<(Actor, OrgId)>,
}

async fn cast(arena: &Arena, bundle_yaml: &str, tiers: &[Tier]) -> Cast {
    let organizer = organizer(arena).await;
    let (hospital_a, _) = hospital(arena, &organizer, "A").await;
    let (hospital_b, _) = hospital(arena, &organizer, "B").await;
    let dataset = arena
        .create_dataset(&hospital_a, "cardiac-events", "Cardiac events", "")
        .await
        .expect("dataset");
    arena
        .upload_contribution(
            &hospital_a,
            dataset.id,
            &upload("hospital-a.csv", HOSPITAL_A),
        )
        .await
        .expect("hospital A's upload is accepted");
    arena
        .upload_contribution(
            &hospital_b,
            dataset.id,
            &upload("hospital-b.csv", HOSPITAL_B),
        )
        .await
        .expect("hospital B's upload is accepted");
    arena
        .review_dataset(
            &organizer,
            dataset.id,
            &medarena_arena::DatasetReview::approve_all("checked"),
        )
        .await
        .expect("approve");
    if bundle_yaml.contains("level: label") {
        // Both hospitals allow the weaker level for this dataset.
        for hospital in [&hospital_a, &hospital_b] {
            arena
                .set_dataset_privacy(
                    hospital,
                    dataset.id,
                    &medarena_arena::DatasetPrivacyTerms {
                        min_level: medarena_arena::PrivacyLevel::Label,
                        ..medarena_arena::DatasetPrivacyTerms::default()
                    },
                )
                .await
                .expect("terms");
        }
    }
    let competition = arena
        .create_competition(&organizer, bundle_yaml)
        .await
        .expect("competition");
    let digest = Arena::agreement_sha256(&competition);
    let mut teams = Vec::new();
    for (index, tier) in tiers.iter().enumerate() {
        let (team, org) = admitted(
            arena,
            &organizer,
            &format!("member@team-{index}.test"),
            Role::TeamMember,
            &format!("Team {index}"),
            Some(*tier),
        )
        .await;
        arena
            .accept_agreement(&team, competition.id, &digest)
            .await
            .expect("accept");
        teams.push((team, org));
    }
    let real_teams: Vec<&Actor> = teams
        .iter()
        .zip(tiers)
        .filter(|(_, tier)| **tier >= Tier::RealData)
        .map(|((team, _), _)| team)
        .collect();
    medarena_arena::testing::contract_accepted_by_all(
        arena,
        &organizer,
        &medarena_arena::ContractProposal::open_offer(competition.id),
        &[&hospital_a, &hospital_b],
        &real_teams,
    )
    .await
    .expect("contract");
    Cast {
        organizer,
        dataset: dataset.id,
        competition: competition.id,
        teams,
    }
}

async fn drain(arena: &Arena) {
    let mut ran = 0;
    while arena
        .run_next_job("test-worker")
        .await
        .expect("run a job")
        .is_some()
    {
        ran += 1;
        assert!(ran < 100, "the queue does not drain");
    }
}

async fn uploads_are_validated() -> TestResult {
    let platform = platform_at(public_phase()).await;
    let arena = &platform.arena;
    let organizer = organizer(arena).await;
    let (hospital_a, _) = hospital(arena, &organizer, "A").await;
    let (hospital_b, _) = hospital(arena, &organizer, "B").await;
    let dataset = arena
        .create_dataset(&hospital_a, "cardiac-events", "Cardiac events", "")
        .await
        .expect("dataset");

    let accepted = arena
        .upload_contribution(
            &hospital_a,
            dataset.id,
            &upload("hospital-a.csv", HOSPITAL_A),
        )
        .await
        .map_err(|e| Failed::from(e.to_string()))?;
    ensure!(accepted.rows == Some(600), "rows {:?}", accepted.rows);
    let report: medarena_arena::datasets_spec::Report =
        serde_json::from_value(accepted.report.clone()).map_err(|e| Failed::from(e.to_string()))?;
    ensure!(
        !report.has_errors() && report.rows == 600,
        "{}",
        report.to_text()
    );
    ensure!(report.k_anonymity.is_some(), "k-anonymity was checked");

    // The bad upload: refused with its report, which names rules and columns, never values.
    let refused = arena
        .upload_contribution(&hospital_b, dataset.id, &upload("bad.csv", BAD_UPLOAD))
        .await;
    let Err(ArenaError::UploadRejected(contribution)) = refused else {
        return Err(format!("the bad upload was not refused: {refused:?}").into());
    };
    let report: medarena_arena::datasets_spec::Report =
        serde_json::from_value(contribution.report.clone())
            .map_err(|e| Failed::from(e.to_string()))?;
    ensure!(report.has_errors(), "{}", report.to_text());
    ensure!(
        report.findings.iter().any(|f| f.rule.starts_with("phi.")),
        "a PHI finding: {}",
        report.to_text()
    );
    let text = contribution.report.to_string();
    ensure!(
        !text.contains("13503610580"),
        "the report quotes a phone number: {text}"
    );
    ensure!(contribution.object.is_none(), "refused bytes are deleted");

    // The same rows again from another hospital: fine alone, duplicates in the union.
    let duplicate = arena
        .upload_contribution(&hospital_b, dataset.id, &upload("copy.csv", HOSPITAL_A))
        .await;
    let Err(ArenaError::UploadRejected(contribution)) = duplicate else {
        return Err(format!("duplicate ids across hospitals were accepted: {duplicate:?}").into());
    };
    let report: medarena_arena::datasets_spec::Report =
        serde_json::from_value(contribution.report).map_err(|e| Failed::from(e.to_string()))?;
    ensure!(
        report.has_rule("union.row_id.duplicate"),
        "{}",
        report.to_text()
    );
    // Hospital B's own file passes, alone and united.
    arena
        .upload_contribution(
            &hospital_b,
            dataset.id,
            &upload("hospital-b.csv", HOSPITAL_B),
        )
        .await
        .map_err(|e| Failed::from(e.to_string()))?;
    Ok(())
}

/// The example bundle with 5 blocks (the example data has 1080 rows; the sandbox child is
/// this test's debug build, so every block costs a process start).
fn example_bundle() -> String {
    EXAMPLE_BUNDLE.replace("  blocks: 100\n", "  blocks: 5\n")
}

async fn submit_and_run(
    platform: &Platform,
    team: &Actor,
    competition: medarena_arena::CompetitionId,
    module: &[u8],
) -> SubmissionId {
    let id = platform
        .arena
        .submit(team, competition, module)
        .await
        .expect("submit")
        .id;
    platform.release().await;
    id
}

async fn examples_run_and_score() -> TestResult {
    let platform = platform_at(public_phase()).await;
    let arena = &platform.arena;
    let cast = cast(arena, &example_bundle(), &[Tier::RealData; 3]).await;
    let modules = [demo::BASELINE_WASM, demo::LOGREG_WASM, demo::GBT_WASM];
    let mut ids = Vec::new();
    for ((team, _), module) in cast.teams.iter().zip(modules) {
        ids.push(
            arena
                .submit(team, cast.competition, module)
                .await
                .expect("submit")
                .id,
        );
    }
    platform.release().await;
    let mut exact = Vec::new();
    let mut pooled_private = Vec::new();
    for (id, (team, _)) in ids.iter().zip(&cast.teams) {
        let organizer_view = arena.submission(&cast.organizer, *id).await.expect("view");
        ensure!(
            organizer_view.status == SubmissionStatus::Completed,
            "{id}: {:?} {:?} {:?}",
            organizer_view.status,
            organizer_view.outcome,
            organizer_view.note
        );
        ensure!(organizer_view.dummy_score.is_some(), "a dummy score");
        let released = organizer_view
            .released_public_score
            .ok_or("a released score")?;
        ensure!((0.0..=1.0).contains(&released), "released {released}");
        let scores = organizer_view
            .exact
            .clone()
            .ok_or("organizers see exact scores")?;
        let public = scores.exact_public_score.ok_or("exact public")?;
        let private = scores.private_score.ok_or("private")?;
        exact.push((public, private));
        let details = scores.result.ok_or("details")?;
        let evaluation = &details["evaluation"];
        ensure!(
            evaluation["pooled"]["public"]["ci"]["lower"].is_number(),
            "a CI: {details}"
        );
        ensure!(
            evaluation["pooled"]["private"]["per_site"]
                .as_array()
                .map(Vec::len)
                == Some(2),
            "two sites: {details}"
        );
        ensure!(
            evaluation["blocks"] == 5 && evaluation["block_statuses"]["ok"] == 5,
            "five blocks, each answered: {details}"
        );
        ensure!(
            details["release"]["level"] == "row"
                && details["release"]["sensitivity"].as_f64() == Some(0.2),
            "row level, Δ = 1/5: {details}"
        );
        pooled_private.push(
            evaluation["pooled"]["private"]["score"]
                .as_f64()
                .ok_or("a pooled private score")?,
        );
        // The team sees the released score and its dummy run, never exact scores.
        let team_view = arena.submission(team, *id).await.expect("team view");
        ensure!(
            team_view.exact.is_none() && team_view.private_score.is_none(),
            "sealed"
        );
        let report = arena
            .dummy_run_report(team, *id)
            .await
            .expect("report")
            .ok_or("a dummy report")?;
        ensure!(report.guest_log.is_some(), "dummy debug output is kept");
        ensure!(
            report
                .details
                .is_some_and(|d| d["timings"].is_null() && d["dummy_rows"] == 1000),
            "the team's dummy report holds no timings (a concurrent real run could move them)"
        );
    }
    let (baseline, logreg, gbt) = (exact[0], exact[1], exact[2]);
    ensure!(
        (baseline.0 - 0.5).abs() < 1e-9,
        "a constant predictor has AUC 0.5: {baseline:?}"
    );
    ensure!(
        logreg.0 > 0.65 && logreg.1 > 0.65,
        "logreg learns: {logreg:?}"
    );
    ensure!(
        gbt.0 > baseline.0 + 0.1 && gbt.1 > baseline.1 + 0.1,
        "gbt learns: {gbt:?}"
    );
    for (team, org) in &cast.teams {
        let budget = arena
            .budget(team, cast.competition, *org)
            .await
            .expect("budget");
        ensure!(
            budget.len() == 1
                && (budget[0].spent - 1.0).abs() < 1e-9
                && budget[0].dataset == cast.dataset,
            "ε 0.5 + 0.5 (the final release) reserved: {budget:?}"
        );
    }
    let board = arena
        .leaderboard(&Actor::Anonymous, cast.competition, LeaderboardKind::Public)
        .await
        .expect("leaderboard");
    ensure!(board.entries.len() == 3, "three entries");

    // Organizers compare the top entries on the private part (re-run, bit for bit): the
    // pooled out-of-block predictions score as they did in the run.
    let comparisons = arena
        .compare_top_entries(&cast.organizer, cast.competition, 3)
        .await
        .map_err(|e| Failed::from(e.to_string()))?;
    ensure!(comparisons.len() == 2, "{comparisons:?}");
    for comparison in &comparisons {
        ensure!(
            pooled_private
                .iter()
                .any(|s| (s - comparison.score_a).abs() < 1e-12),
            "re-runs reproduce the private scores: {comparison:?} vs {pooled_private:?}"
        );
        ensure!((0.0..=1.0).contains(&comparison.p_value), "{comparison:?}");
    }
    let team = &cast.teams[0].0;
    ensure!(
        arena
            .compare_top_entries(team, cast.competition, 3)
            .await
            .is_err(),
        "teams cannot compare"
    );
    Ok(())
}

async fn budget_is_charged_and_refused() -> TestResult {
    let platform = platform_at(public_phase()).await;
    let arena = &platform.arena;
    let bundle = example_bundle().replace(
        "budget_per_team_per_dataset: 6.0",
        "budget_per_team_per_dataset: 1.5",
    );
    let cast = cast(arena, &bundle, &[Tier::RealData]).await;
    let (team, org) = &cast.teams[0];
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let id = submit_and_run(&platform, team, cast.competition, demo::LOGREG_WASM).await;
        let view = arena.submission(team, id).await.expect("view");
        outcomes.push((
            view.status,
            view.outcome,
            view.note,
            view.released_public_score,
        ));
    }
    ensure!(
        outcomes[0].0 == SubmissionStatus::Completed && outcomes[0].3.is_some(),
        "{outcomes:?}"
    );
    ensure!(outcomes[1].0 == SubmissionStatus::Completed, "{outcomes:?}");
    ensure!(
        outcomes[2].1 == Some(RunOutcome::OverLimit)
            && outcomes[2]
                .2
                .as_deref()
                .is_some_and(|n| n.starts_with("privacy budget exhausted"))
            && outcomes[2].3.is_none(),
        "the third release is refused: {outcomes:?}"
    );
    let budget = arena
        .budget(team, cast.competition, *org)
        .await
        .expect("budget");
    ensure!((budget[0].spent - 1.5).abs() < 1e-9, "{budget:?}");
    Ok(())
}

async fn ladder_keeps_state() -> TestResult {
    let platform = platform_at(public_phase()).await;
    let arena = &platform.arena;
    // ε 2 per release over 20 blocks: noise of scale 1/40 on AUC, so that the baseline's
    // noisy score (about 0.5) cannot beat the trees' (about 0.7) by a step by chance.
    let bundle = example_bundle()
        .replace(
            "mechanism: laplace",
            "mechanism: ladder\n    ladder_step: 0.05",
        )
        .replace("epsilon_per_release: 0.5", "epsilon_per_release: 2.0")
        .replace("  blocks: 5\n", "  blocks: 20\n");
    let cast = cast(arena, &bundle, &[Tier::RealData]).await;
    let (team, _) = &cast.teams[0];
    let first = submit_and_run(&platform, team, cast.competition, demo::GBT_WASM).await;
    let second = submit_and_run(&platform, team, cast.competition, demo::BASELINE_WASM).await;
    let first = arena.submission(team, first).await.expect("view");
    let second = arena.submission(team, second).await.expect("view");
    let shown = first.released_public_score.ok_or("first release")?;
    ensure!(
        ((shown / 0.05).round() * 0.05 - shown).abs() < 1e-9,
        "Ladder scores are multiples of the step: {shown}"
    );
    // The baseline is far worse: the Ladder shows the best score so far again.
    ensure!(
        second.released_public_score == Some(shown),
        "{:?} vs {shown}",
        second.released_public_score
    );
    Ok(())
}

async fn label_level_releases_on_a_grid() -> TestResult {
    let platform = platform_at(public_phase()).await;
    let arena = &platform.arena;
    // One fit on the whole training part; noise for one test label (Δ = 1/40 from the
    // declared smallest class); scores on a grid of 0.05; two releases per team.
    let bundle = example_bundle()
        .replace("  level: row\n", "  level: label\n")
        .replace(
            "  blocks: 5\n",
            "  min_test_rows: 150\n  min_test_class_rows: 40\n  max_releases: 2\n  score_grid: 0.05\n",
        );
    let cast = cast(arena, &bundle, &[Tier::RealData]).await;
    let (team, _) = &cast.teams[0];
    let mut views = Vec::new();
    for module in [demo::LOGREG_WASM, demo::GBT_WASM, demo::BASELINE_WASM] {
        let id = submit_and_run(&platform, team, cast.competition, module).await;
        views.push(arena.submission(team, id).await.expect("view"));
    }
    for view in &views[..2] {
        let score = view.released_public_score.ok_or("a released score")?;
        ensure!(
            ((score / 0.05).round() * 0.05 - score).abs() < 1e-9,
            "label-level scores are on the published grid: {score}"
        );
    }
    let organizer_view = arena
        .submission(&cast.organizer, views[0].id)
        .await
        .expect("view");
    let details = organizer_view
        .exact
        .and_then(|e| e.result)
        .ok_or("details")?;
    ensure!(
        details["release"]["level"] == "label"
            && details["release"]["sensitivity"].as_f64() == Some(1.0 / 40.0)
            && details["evaluation"]["blocks"] == 1,
        "{details}"
    );
    ensure!(
        views[2].outcome == Some(RunOutcome::OverLimit)
            && views[2]
                .note
                .as_deref()
                .is_some_and(|n| n.contains("cap of 2 released scores")),
        "the third release is refused before it runs: {:?}",
        views[2]
    );
    Ok(())
}

/// A valid module whose `fit` leaves a debug text and traps when the training table has
/// fewer than 300 rows: fine on the dummy data's 600 training rows, failing in every block
/// of the real data (about 130 training rows each).
const TRAPS_ON_REAL_DATA: &str = r#"(module
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 1024) "SECRET-ROW-VALUE")
  (func (export "medarena_abi_version") (result i32) (i32.const 1))
  (func $bump (param $size i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
    (block $ok
      (loop $grow
        (br_if $ok (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then (return (i32.const 0))))
        (br $grow)))
    (local.get $ptr))
  (func (export "medarena_alloc") (param $size i32) (param $align i32) (result i32)
    (call $bump (local.get $size)))
  (func (export "medarena_fit") (param $call i32) (result i32)
    (i32.store offset=40 (local.get $call) (i32.const 1024))
    (i32.store offset=44 (local.get $call) (i32.const 16))
    (if (i32.lt_u (i32.load offset=4 (i32.load offset=24 (local.get $call))) (i32.const 300))
      (then unreachable))
    (i32.const 0))
  (func (export "medarena_predict") (param $call i32) (result i32)
    (local $ptr i32) (local $i i32) (local $n i32)
    (local.set $n (i32.load offset=12 (local.get $call)))
    (local.set $ptr (call $bump (i32.shl (local.get $n) (i32.const 3))))
    (block $done
      (loop $fill
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (f64.store (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 3))) (f64.const 0.5))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $fill)))
    (i32.store offset=32 (local.get $call) (local.get $ptr))
    (i32.store offset=36 (local.get $call) (local.get $n))
    (i32.const 0))
)"#;

async fn hostile_modules_fail_coarsely() -> TestResult {
    let platform = platform_at(public_phase()).await;
    let arena = &platform.arena;
    let cast = cast(arena, &example_bundle(), &[Tier::RealData]).await;
    let (team, _) = &cast.teams[0];

    // A module that traps on real data only: the team sees a completed run with a released
    // score (the fallback prediction's, charged like any), exactly as if it had answered.
    let module = wat::parse_str(TRAPS_ON_REAL_DATA).map_err(|e| Failed::from(e.to_string()))?;
    let id = submit_and_run(&platform, team, cast.competition, &module).await;
    let view = arena.submission(team, id).await.expect("view");
    ensure!(
        view.status == SubmissionStatus::Completed
            && view.outcome == Some(RunOutcome::Ok)
            && view.released_public_score.is_some(),
        "a failure on real data looks like any completed run: {view:?}"
    );
    let report = arena
        .dummy_run_report(team, id)
        .await
        .expect("report")
        .ok_or("dummy report")?;
    ensure!(
        report.outcome == Some(RunOutcome::Ok)
            && report
                .guest_log
                .as_deref()
                .is_some_and(|log| log.contains("SECRET-ROW-VALUE")),
        "on dummy data the team sees its debug output: {report:?}"
    );
    // Organizers see what really happened: every block trapped and was scored with the
    // training prior (a constant: AUC 0.5 in every block).
    let organizer_view = arena.submission(&cast.organizer, id).await.expect("view");
    let exact = organizer_view.exact.clone().ok_or("exact")?;
    let details = exact.result.clone().ok_or("details")?;
    ensure!(
        details["evaluation"]["block_statuses"]["trap"] == 5
            && exact.exact_public_score == Some(0.5),
        "{details}"
    );
    // Nothing of the real run's guest output is kept anywhere a team (or an organizer) reads.
    let all = format!("{view:?} {organizer_view:?}");
    ensure!(!all.contains("SECRET"), "leaked: {all}");
    for job in arena.store().jobs_of_submission(id).await.expect("jobs") {
        let result = arena.store().job_result(job.id).await.expect("result");
        if job.kind == JobKind::RealRun {
            let text = result.map(|r| r.to_string()).unwrap_or_default();
            ensure!(
                !text.contains("SECRET") && !text.contains("unreachable"),
                "{text}"
            );
        }
    }

    // An endless loop is stopped at the deadline: over the limit, on dummy data already.
    let endless = wat::parse_str(TRAPS_ON_REAL_DATA.replace(
        "(i32.store offset=40 (local.get $call) (i32.const 1024))",
        "(loop $forever (br $forever))",
    ))
    .map_err(|e| Failed::from(e.to_string()))?;
    let id = submit_and_run(&platform, team, cast.competition, &endless).await;
    let view = arena.submission(team, id).await.expect("view");
    ensure!(view.outcome == Some(RunOutcome::OverLimit), "{view:?}");

    // A module with an import is refused at upload, naming the import.
    let importing = wat::parse_str(TRAPS_ON_REAL_DATA.replace(
        "(memory (export \"memory\") 2)",
        "(import \"env\" \"clock\" (func))\n  (memory (export \"memory\") 2)",
    ))
    .map_err(|e| Failed::from(e.to_string()))?;
    let refused = arena.submit(team, cast.competition, &importing).await;
    ensure!(
        matches!(&refused, Err(err) if err.to_string().contains("env")),
        "{refused:?}"
    );
    Ok(())
}

async fn dp_aggregates_are_released() -> TestResult {
    let platform = platform_at(public_phase()).await;
    let arena = &platform.arena;
    // Results released two minutes after queueing: 50 blocks of 1 s fit in it.
    let bundle = example_bundle().replace(
        "  # release_delay_seconds: 120\n",
        "  release_delay_seconds: 120\n",
    );
    let cast = cast(arena, &bundle, &[Tier::DpAggregates, Tier::RealData]).await;
    let (team, org) = &cast.teams[0];
    // The baseline's analysis returns the means of the first columns as numbers: the codes
    // of age_band (5 levels), sex (2) and admission_month (48), then systolic_bp (70..250).
    // About 650 training rows in 50 blocks of about 13 (the declared 1000 rows allow 60
    // blocks of the suppression threshold's 10); Laplace scale 180 · 4 / (50 · 2) = 7.2
    // mm[Hg] on the blood pressure.
    let spec = AnalysisSpec {
        bounds: vec![[0.0, 4.0], [0.0, 1.0], [0.0, 47.0], [70.0, 250.0]],
        epsilon: 2.0,
        blocks: 50,
    };
    let id = arena
        .submit_analysis(team, cast.competition, demo::BASELINE_WASM, &spec)
        .await
        .map_err(|e| Failed::from(e.to_string()))?
        .id;
    platform.release().await;
    let view = arena.submission(team, id).await.expect("view");
    ensure!(view.status == SubmissionStatus::Completed, "{view:?}");
    let released = view
        .released_aggregate
        .clone()
        .ok_or("a released aggregate")?;
    ensure!(
        released.values.len() == 4 && released.blocks == 50,
        "{released:?}"
    );
    // The noise is Laplace with the scale the declaration implies (see above), whatever the
    // data: 4 / (50 · 2) of each dimension's width.
    let widths = spec.bounds.iter().map(|[low, high]| high - low);
    for (scale, width) in released.noise_scale.iter().zip(widths) {
        ensure!((scale - width * 0.04).abs() < 1e-9, "{released:?}");
    }
    // Each value is the real rows' mean plus that noise. The centres are the medians of 30
    // releases (the dummy rows' means are 2.0, 0.52, 22.5 and 162). Laplace noise lands
    // more than 12 scales from its centre once in e^12 ≈ 160,000 draws; a window 4 scales
    // wide, as this test had, failed once in about a hundred runs (CI saw 99.97 mm[Hg]).
    let centres = [1.48, 0.43, 5.4, 128.9];
    for ((value, centre), scale) in released
        .values
        .iter()
        .zip(centres)
        .zip(&released.noise_scale)
    {
        ensure!(
            (value - centre).abs() < 12.0 * scale,
            "{value} is more than 12 noise scales from {centre}: {released:?}"
        );
    }
    ensure!((released.epsilon - 2.0).abs() < 1e-9, "{released:?}");
    let report = arena
        .dummy_run_report(team, id)
        .await
        .expect("report")
        .ok_or("dummy report")?;
    ensure!(
        report
            .details
            .is_some_and(|d| d["block_outputs"].as_array().map(Vec::len) == Some(50)),
        "the dummy run shows every block's output"
    );
    let budget = arena
        .budget(team, cast.competition, *org)
        .await
        .expect("budget");
    ensure!((budget[0].spent - 2.0).abs() < 1e-9, "{budget:?}");
    ensure!(
        view.released_public_score.is_none(),
        "an analysis is not on the leaderboard"
    );

    // A team without the tier is refused.
    let (other, _) = &cast.teams[1];
    let refused = arena
        .submit_analysis(other, cast.competition, demo::BASELINE_WASM, &spec)
        .await;
    ensure!(
        matches!(refused, Err(ArenaError::Forbidden(_))),
        "{refused:?}"
    );
    // More blocks than the declared rows can fill are refused at submission.
    let many = AnalysisSpec {
        blocks: 61,
        ..spec.clone()
    };
    let refused = arena
        .submit_analysis(team, cast.competition, demo::BASELINE_WASM, &many)
        .await;
    ensure!(
        matches!(&refused, Err(err) if err.to_string().contains("at most 60 blocks")),
        "{refused:?}"
    );
    // Bounds are checked before anything is stored.
    let bad = AnalysisSpec {
        bounds: vec![[1.0, 1.0]],
        ..spec
    };
    let refused = arena
        .submit_analysis(team, cast.competition, demo::BASELINE_WASM, &bad)
        .await;
    ensure!(
        matches!(&refused, Err(err) if err.to_string().contains("bounds[0]")),
        "{refused:?}"
    );
    Ok(())
}

async fn demo_seed_is_idempotent() -> TestResult {
    let platform = platform_at(medarena_arena::Timestamp::from_datetime(chrono_now())).await;
    let arena = &platform.arena;
    let started = std::time::Instant::now();
    let first = demo::seed(arena)
        .await
        .map_err(|e| Failed::from(e.to_string()))?;
    eprintln!("the demo seeded in {:?}\n{first}", started.elapsed());
    ensure!(first.competitions.len() == 2, "{first}");
    for competition in &first.competitions {
        ensure!(competition.submissions.len() == 2, "{first}");
        for submission in &competition.submissions {
            ensure!(
                submission.status == SubmissionStatus::Completed
                    && submission.released_public_score.is_some(),
                "{first}"
            );
        }
    }
    // The demo hospitals published synthetic development data: on it the dummy runs tell
    // the models apart as the real runs do (dummy data alone puts everything at 0.5).
    for competition in &first.competitions {
        let dummy: Vec<f64> = competition
            .submissions
            .iter()
            .filter_map(|s| s.dummy_score)
            .collect();
        ensure!(
            dummy.len() == 2 && dummy[1] > dummy[0] + 0.05 && dummy[1] > 0.55,
            "dummy scores of the baseline and the model on synthetic data: {first}"
        );
    }
    // The Cox model ranks the survival demo's patients better than a constant risk, by far
    // more than the noise (95 % within ±0.06 of each score).
    let survival = &first.competitions[1];
    ensure!(survival.slug == "liver-survival", "{first}");
    let scores: Vec<f64> = survival
        .submissions
        .iter()
        .filter_map(|s| s.released_public_score)
        .collect();
    ensure!(scores.len() == 2 && scores[1] > scores[0] + 0.1, "{first}");
    // Organizers see the bundle's organizer metrics, exact, on the pooled predictions: the
    // IPCW ones weigh rows by the censoring of the training rows and agree with Harrell's C
    // on who ranks better.
    let organizer = first
        .logins
        .iter()
        .find(|login| login.role == medarena_arena::model::Role::Organizer)
        .ok_or("an organizer login")?;
    let token = arena
        .login(&organizer.email, &organizer.password)
        .await
        .map_err(|e| Failed::from(e.to_string()))?;
    let organizer = arena
        .authenticate(&token.token)
        .await
        .map_err(|e| Failed::from(e.to_string()))?;
    let (mut uno, mut brier) = (Vec::new(), Vec::new());
    for submission in &survival.submissions {
        let view = arena
            .submission(&organizer, submission.submission)
            .await
            .map_err(|e| Failed::from(e.to_string()))?;
        let details = view
            .exact
            .and_then(|e| e.result)
            .ok_or("organizer details")?;
        let metrics = &details["evaluation"]["pooled"]["private"]["organizer_metrics"];
        let (c, auc) = (metrics["uno_c_index"].as_f64(), metrics["td_auc"].as_f64());
        ensure!(
            c.is_some_and(|c| (0.0..=1.0).contains(&c)) && auc.is_some(),
            "{details}"
        );
        uno.extend(c);
        // Curves at the horizons (ABI version 2): the integrated Brier score.
        brier.extend(metrics["integrated_brier"].as_f64());
        // Each contributing hospital's exact private score, for the per-hospital view.
        let per_hospital = details[medarena_arena::pipeline::PER_HOSPITAL_KEY]
            .as_object()
            .ok_or("per-hospital scores")?;
        ensure!(
            per_hospital.len() == 2
                && per_hospital
                    .values()
                    .all(|v| v.as_f64().is_some_and(|v| (0.0..=1.0).contains(&v))),
            "{details}"
        );
    }
    // The baseline's Kaplan-Meier curve against Cox's: both below the 0.25 of a coin.
    ensure!(
        brier.len() == 2 && brier[1] < brier[0] && brier[0] < 0.25,
        "integrated Brier of baseline and Cox: {brier:?}"
    );
    ensure!(
        uno[1] > uno[0] + 0.1,
        "Uno's C of baseline and Cox: {uno:?}"
    );
    let second = demo::seed(arena)
        .await
        .map_err(|e| Failed::from(e.to_string()))?;
    ensure!(
        first == second,
        "the second seeding changed nothing:\n{first}\n{second}"
    );
    // The board fills at the release time of the seeded runs.
    platform.clock.advance(RELEASE_WAIT);
    // The printed credentials sign in.
    arena
        .login(&first.logins[0].email, &first.logins[0].password)
        .await
        .map_err(|e| Failed::from(e.to_string()))?;
    let board = arena
        .leaderboard(
            &Actor::Anonymous,
            first.competitions[0].competition,
            LeaderboardKind::Public,
        )
        .await
        .expect("board");
    ensure!(board.entries.len() == 2, "{board:?}");
    Ok(())
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// The committed example modules are what their sources build to: rebuilt with
/// `scripts/build-guest-prebuilt`'s flags, both predict the same bits on the dummy data.
async fn prebuilt_examples_match_their_sources() -> TestResult {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("workspace root")?
        .to_path_buf();
    let target_dir = root.join("target").join("guest-wasm");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "--target-dir",
        ])
        .arg(&target_dir)
        .args([
            "-p",
            "medarena-example-baseline",
            "-p",
            "medarena-example-logreg",
            "-p",
            "medarena-example-gbt",
            "-p",
            "medarena-example-cox",
        ])
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
            "-C target-feature=+simd128",
        )
        .status()
        .map_err(|e| Failed::from(format!("running cargo: {e}")))?;
    ensure!(status.success(), "building the examples failed");
    let child =
        ChildCommand::current_exe("sandbox-child").map_err(|e| Failed::from(e.to_string()))?;
    let sandbox =
        medarena_arena::sandbox::Sandbox::new(medarena_arena::sandbox::SandboxConfig::new(child));
    let manifest = medarena_arena::datasets_spec::Manifest::from_str(MANIFEST)
        .map_err(|e| Failed::from(e.to_string()))?;
    let table = medarena_arena::datasets_spec::union_sites(
        &manifest,
        &[(
            "dummy".to_owned(),
            medarena_arena::datasets_spec::dummy(&manifest, 400, 7),
        )],
    )
    .map_err(|e| Failed::from(e.to_string()))?;
    let bundle = medarena_arena::Bundle::from_yaml(EXAMPLE_BUNDLE)
        .map_err(|e| Failed::from(e.to_string()))?;
    let spec = medarena_arena::pipeline::TaskSpec {
        task: bundle.task,
        target: bundle.target.clone(),
        metric: bundle.scorer_metric().ok_or("metric")?,
        split: medarena_arena::datasets_spec::SplitConfig {
            seed: 7,
            train: 0.6,
            public_test: 0.2,
        },
        seed: 11,
        limits: medarena_arena::pipeline::sandbox_limits(&bundle.sandbox),
        scoring: bundle.score_context(),
        organizer_metrics: bundle.scorer_organizer_metrics(),
        survival_grid: None,
    };
    // The Cox model runs on the survival example's dummy data.
    let liver = medarena_arena::datasets_spec::Manifest::from_str(
        medarena_arena::datasets_spec::example::LIVER_MANIFEST,
    )
    .map_err(|e| Failed::from(e.to_string()))?;
    let liver_table = medarena_arena::datasets_spec::union_sites(
        &liver,
        &[(
            "dummy".to_owned(),
            medarena_arena::datasets_spec::dummy(&liver, 400, 7),
        )],
    )
    .map_err(|e| Failed::from(e.to_string()))?;
    let survival_spec = medarena_arena::pipeline::TaskSpec {
        task: medarena_arena::bundle::TaskKind::Survival,
        target: "days".to_owned(),
        metric: medarena_arena::scorer::Metric::CIndex,
        ..spec.clone()
    };
    for (name, prebuilt) in [
        ("baseline", demo::BASELINE_WASM),
        ("logreg", demo::LOGREG_WASM),
        ("gbt", demo::GBT_WASM),
        ("cox", demo::COX_WASM),
    ] {
        let (manifest, table, spec) = if name == "cox" {
            (&liver, &liver_table, &survival_spec)
        } else {
            (&manifest, &table, &spec)
        };
        let built = std::fs::read(
            target_dir
                .join("wasm32-unknown-unknown/release")
                .join(format!("medarena_example_{name}.wasm")),
        )
        .map_err(|e| Failed::from(e.to_string()))?;
        let run = |module: &[u8]| {
            medarena_arena::pipeline::evaluate(&sandbox, module, manifest, table, spec, true)
                .map(|e| {
                    e.output
                        .predictions
                        .iter()
                        .map(|v| v.to_bits())
                        .collect::<Vec<_>>()
                })
                .map_err(|e| Failed::from(format!("{name}: {e}")))
        };
        ensure!(
            run(prebuilt)? == run(&built)?,
            "guest/prebuilt/{name}.wasm is stale: run scripts/build-guest-prebuilt"
        );
    }
    Ok(())
}
