//! A whole competition through the real binary and real HTTP: a hospital uploads (a bad
//! upload is refused with its report), the organizer approves and creates a competition, a
//! team accepts the agreement and submits an example model with `medarena submit`, it runs
//! in the sandbox and appears on the leaderboard with a noisy score, the private
//! leaderboard is revealed at close, and every step has a ledger receipt that
//! `medarena ledger verify` accepts, online and offline.

use std::collections::BTreeSet;

use medarena_tests::*;
use serde_json::{Value, json};

#[test]
fn a_competition_from_upload_to_published_private_leaderboard() {
    let root = tempfile::tempdir().expect("tempdir");
    let data_dir = root.path().join("data");
    create_organizer(&data_dir, "organizer@e2e.test");
    let server = Server::start(&data_dir, &["--workers", "2"]);
    let organizer = server.sign_in("organizer@e2e.test");

    // A hospital joins and signs in with the CLI.
    let hospital = admitted(
        &server,
        &organizer,
        "staff@hospital.test",
        "hospital",
        "E2E Hospital",
        None,
    );
    let hospital_creds = root.path().join("hospital.json");
    let hospital_env = cli_env(&hospital_creds);
    let login = medarena(
        &[
            "login",
            "--server",
            &server.base,
            "--email",
            "staff@hospital.test",
        ],
        &env_refs(&login_env(&hospital_creds)),
    );
    assert!(
        login.status.success(),
        "hospital login: {}",
        describe(&login)
    );
    let whoami = medarena(&["whoami"], &env_refs(&hospital_env));
    assert!(
        String::from_utf8_lossy(&whoami.stdout).contains("E2E Hospital"),
        "whoami: {}",
        describe(&whoami)
    );

    // A bad upload is refused with its report, and nothing is kept.
    let manifest = heart_example("manifest.yaml");
    let manifest = manifest.to_string_lossy();
    let bad = heart_example("bad-upload.csv");
    let refused = medarena(
        &[
            "dataset",
            "upload",
            "--dataset",
            "cardiac-events",
            "--create",
            "Cardiac events",
            "--manifest",
            &manifest,
            &bad.to_string_lossy(),
        ],
        &env_refs(&hospital_env),
    );
    assert_eq!(
        refused.status.code(),
        Some(1),
        "bad upload must be refused: {}",
        describe(&refused)
    );
    let refusal = describe(&refused);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("refused"),
        "{refusal}"
    );
    for rule in [
        "phi.mobile",
        "phi.resident_id",
        "privacy.k_anonymity",
        "schema.extra_column",
    ] {
        assert!(
            String::from_utf8_lossy(&refused.stdout).contains(rule),
            "the report names `{rule}`: {refusal}"
        );
    }
    let bad_text = std::fs::read_to_string(&bad).expect("bad upload");
    let phi_value = bad_text.lines().nth(1).and_then(|l| {
        l.split(',')
            .find(|v| v.len() >= 11 && v.chars().all(|c| c.is_ascii_digit()))
    });
    if let Some(value) = phi_value {
        assert!(!refusal.contains(value), "the report must not quote values");
    }

    // The good files are accepted.
    for file in ["hospital-a.csv", "hospital-b.csv"] {
        let accepted = medarena(
            &[
                "dataset",
                "upload",
                "--dataset",
                "cardiac-events",
                "--manifest",
                &manifest,
                &heart_example(file).to_string_lossy(),
            ],
            &env_refs(&hospital_env),
        );
        assert!(
            accepted.status.success(),
            "upload {file}: {}",
            describe(&accepted)
        );
        assert!(String::from_utf8_lossy(&accepted.stdout).contains("accepted"));
    }
    let datasets = organizer.ok("/api/v1/datasets");
    let dataset = datasets
        .as_array()
        .and_then(|d| d.iter().find(|d| d["slug"] == "cardiac-events"))
        .cloned()
        .expect("dataset listed");
    let dataset_id = dataset["id"].as_i64().expect("dataset id");
    let view = organizer.ok(&format!("/api/v1/datasets/{dataset_id}"));
    let states: Vec<&str> = view["contributions"]
        .as_array()
        .expect("contributions")
        .iter()
        .filter_map(|c| c["state"].as_str())
        .collect();
    assert_eq!(
        states.iter().filter(|s| **s == "validated").count(),
        2,
        "{view}"
    );
    assert_eq!(
        states.iter().filter(|s| **s == "rejected").count(),
        1,
        "{view}"
    );

    // Nobody can read raw rows: the contribution endpoints give reports, never the file.
    let first_row = std::fs::read_to_string(heart_example("hospital-a.csv"))
        .expect("csv")
        .lines()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    for contribution in view["contributions"].as_array().into_iter().flatten() {
        let id = contribution["id"].as_i64().expect("contribution id");
        let answer = organizer.get(&format!("/api/v1/contributions/{id}"));
        assert!(
            !answer.text.contains(&first_row),
            "a contribution view must not contain rows"
        );
    }

    // The organizer approves the dataset and creates the competition.
    let competition = approve_and_create_competition(&organizer, dataset_id, &open_bundle_yaml());
    let competition_id = competition["id"].as_i64().expect("competition id");
    let slug = competition["slug"].as_str().expect("slug").to_owned();

    // A team joins, accepts the agreement and submits with the CLI, which waits.
    let team = admitted(
        &server,
        &organizer,
        "member@team.test",
        "team_member",
        "E2E Team",
        Some("real_data"),
    );
    let team_creds = root.path().join("team.json");
    let team_env = cli_env(&team_creds);
    let login = medarena(
        &[
            "login",
            "--server",
            &server.base,
            "--email",
            "member@team.test",
        ],
        &env_refs(&login_env(&team_creds)),
    );
    assert!(login.status.success(), "team login: {}", describe(&login));

    // A contract between the hospital, the team and the platform, with a price: proposed by
    // the organizer and accepted by each party with the CLI.
    let organizer_creds = root.path().join("organizer.json");
    let organizer_env = cli_env(&organizer_creds);
    let login = medarena(
        &[
            "login",
            "--server",
            &server.base,
            "--email",
            "organizer@e2e.test",
        ],
        &env_refs(&login_env(&organizer_creds)),
    );
    assert!(
        login.status.success(),
        "organizer login: {}",
        describe(&login)
    );
    let team_org = team.ok("/api/v1/me")["organization"]["id"]
        .as_i64()
        .expect("the team's organization");
    let proposed = medarena(
        &[
            "contract",
            "propose",
            "--competition",
            &slug,
            "--team",
            &team_org.to_string(),
            "--currency",
            "EUR",
            "--per-run",
            "2.50",
            "--per-cpu-second",
            "0.001",
            "--per-epsilon",
            "10",
            "--json",
        ],
        &env_refs(&organizer_env),
    );
    assert!(
        proposed.status.success(),
        "propose: {}",
        describe(&proposed)
    );
    let contract: Value = serde_json::from_slice(&proposed.stdout).expect("contract JSON");
    let contract_id = contract["id"].as_i64().expect("contract id");
    assert_eq!(contract["state"], "proposed", "{contract}");
    for env in [&organizer_env, &hospital_env, &team_env] {
        let accepted = medarena(
            &["contract", "accept", &contract_id.to_string()],
            &env_refs(env),
        );
        assert!(accepted.status.success(), "accept: {}", describe(&accepted));
        assert!(
            String::from_utf8_lossy(&accepted.stdout)
                .contains(&contract["terms_sha256"].as_str().expect("digest")[..16]),
            "the terms are shown before they are accepted: {}",
            describe(&accepted)
        );
    }
    let active = team.ok(&format!("/api/v1/contracts/{contract_id}"));
    assert_eq!(active["state"], "active", "{active}");

    // The hospital opts in to synthetic development data: a draft only it sees, published.
    let draft = hospital.done(
        &format!("/api/v1/datasets/{dataset_id}/synthetic"),
        &json!({ "epsilon": 4.0 }),
    );
    assert_eq!(draft["state"], "draft", "{draft}");
    let draft_id = draft["id"].as_i64().expect("release id");
    let listed = team.ok(&format!("/api/v1/datasets/{dataset_id}/synthetic"));
    assert_eq!(listed, json!([]), "a draft is the hospital's preview");
    let published = hospital.done(&format!("/api/v1/synthetic/{draft_id}/publish"), &json!({}));
    assert_eq!(published["state"], "published", "{published}");
    // The team downloads the development data and its manifest with the CLI.
    let development = root.path().join("dev.csv");
    let development_manifest = root.path().join("dev-manifest.yaml");
    let downloaded = medarena(
        &[
            "dataset",
            "dummy",
            "--from-server",
            &slug,
            "-o",
            &development.to_string_lossy(),
            "--manifest-output",
            &development_manifest.to_string_lossy(),
        ],
        &env_refs(&team_env),
    );
    assert!(
        downloaded.status.success(),
        "development data: {}",
        describe(&downloaded)
    );
    let rows = std::fs::read_to_string(&development).expect("dev.csv");
    assert_eq!(
        rows.lines().count(),
        1 + 1000,
        "header and the dummy run's 1,000 rows"
    );
    assert!(rows.starts_with("record_id,site,"), "{}", &rows[..80]);
    assert!(
        !rows.lines().skip(1).any(|row| first_row == row),
        "synthetic rows are not the hospital's"
    );
    let local = medarena(
        &[
            "run",
            "--submission",
            &example_module("logreg").to_string_lossy(),
            "--dataset",
            &development_manifest.to_string_lossy(),
            &development.to_string_lossy(),
        ],
        &[],
    );
    assert!(
        local.status.success(),
        "medarena run on it: {}",
        describe(&local)
    );

    let module = example_module("logreg");
    let submitted = medarena(
        &[
            "submit",
            "--competition",
            &slug,
            "--accept-agreement",
            "--json",
            "--timeout",
            "600",
            &module.to_string_lossy(),
        ],
        &env_refs(&team_env),
    );
    assert!(
        submitted.status.success(),
        "submit: {}\nserver log:\n{}",
        describe(&submitted),
        server.log()
    );
    let stdout = String::from_utf8_lossy(&submitted.stdout);
    let json_start = stdout.find("{\n").expect("JSON result");
    let result: Value = serde_json::from_str(&stdout[json_start..]).expect("submit --json");
    let submission = &result["submission"];
    assert_eq!(submission["status"], "completed", "{result}");
    let submission_id = submission["id"].as_i64().expect("submission id");
    let released = submission["released_public_score"]
        .as_f64()
        .expect("released score");
    // The dummy run used the synthetic rows: the model learns something there.
    let dummy_score = submission["dummy_score"]
        .as_f64()
        .expect("the dummy run came first");
    assert!(
        dummy_score > 0.55,
        "logreg on synthetic development data scores above chance: {result}"
    );
    let report = team.ok(&format!(
        "/api/v1/submissions/{}/dummy-report",
        submission["id"]
    ));
    assert_eq!(
        report["details"]["dummy_source"]["releases"],
        json!([draft_id]),
        "{report}"
    );
    // `medarena run --from-server` runs it locally on the same table, split and bundle (the
    // module's seed differs: the platform's follows the submission id).
    let rerun = medarena(
        &[
            "run",
            "--from-server",
            &slug,
            "--submission",
            &module.to_string_lossy(),
        ],
        &env_refs(&team_env),
    );
    assert!(
        rerun.status.success(),
        "run --from-server: {}",
        describe(&rerun)
    );
    let rerun_out = String::from_utf8_lossy(&rerun.stdout);
    let local_score: f64 = rerun_out
        .lines()
        .find_map(|line| line.strip_prefix("metric   roc_auc: "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("a score line: {rerun_out}"));
    assert!(
        (local_score - dummy_score).abs() < 0.05,
        "local {local_score} against the platform's dummy run {dummy_score}: {rerun_out}"
    );
    assert!(
        submission.get("exact").is_none_or(Value::is_null),
        "a team never sees exact scores: {result}"
    );

    // It is on the public leaderboard with the noisy score; the exact one differs.
    let board = server.client(None).ok(&format!(
        "/api/v1/competitions/{competition_id}/leaderboard"
    ));
    let entry = &board["entries"][0];
    assert_eq!(entry["team_name"], "E2E Team", "{board}");
    assert_eq!(entry["score"].as_f64(), Some(released), "{board}");
    let exact = organizer.ok(&format!(
        "/api/v1/competitions/{competition_id}/exact-scores"
    ));
    let exact_public = exact[0]["exact_public_score"]
        .as_f64()
        .expect("exact public score");
    assert!(
        (exact_public - released).abs() > 0.0,
        "the released score carries noise: {exact}"
    );
    let budget = team.ok(&format!("/api/v1/competitions/{competition_id}/budget"));
    assert!(
        budget[0]["spent"].as_f64().unwrap_or(0.0) > 0.0,
        "the release was charged: {budget}"
    );

    // A second submission: the agreement is already accepted, the CLI says so.
    let baseline = example_module("baseline");
    let again = medarena(
        &[
            "submit",
            "--competition",
            &slug,
            "--accept-agreement",
            "--json",
            &baseline.to_string_lossy(),
        ],
        &env_refs(&team_env),
    );
    assert!(
        again.status.success(),
        "second submit: {}",
        describe(&again)
    );
    let again_out = String::from_utf8_lossy(&again.stdout);
    assert!(
        again_out.contains("already accepted"),
        "{}",
        describe(&again)
    );
    let again_json: Value =
        serde_json::from_str(&again_out[again_out.find("{\n").expect("JSON")..])
            .expect("submit --json");
    let second_id = again_json["submission"]["id"].as_i64().expect("second id");

    // Both real runs were metered under the contract: the team's statement (CLI) and the
    // hospital's agree, and each line matches its entry on the ledger; a changed amount is
    // caught.
    delivered_audit_trail(&organizer);
    let statement_file = root.path().join("statement.json");
    let statement = medarena(
        &[
            "contract",
            "statement",
            "--contract",
            &contract_id.to_string(),
            "-o",
            &statement_file.to_string_lossy(),
        ],
        &env_refs(&team_env),
    );
    assert!(
        statement.status.success(),
        "statement: {}",
        describe(&statement)
    );
    let team_statement: Value =
        serde_json::from_str(&std::fs::read_to_string(&statement_file).expect("statement"))
            .expect("statement JSON");
    let hospital_statement = hospital.ok(&format!("/api/v1/statement?contract={contract_id}"));
    assert_eq!(
        team_statement["lines"].as_array().map(Vec::len),
        Some(2),
        "{team_statement}"
    );
    assert_eq!(team_statement["lines"], hospital_statement["lines"]);
    assert_eq!(team_statement["totals"], hospital_statement["totals"]);
    let total = &team_statement["totals"][0];
    assert_eq!(
        (total["currency"].as_str(), total["runs"].as_u64()),
        (Some("EUR"), Some(2))
    );
    assert!(
        team_statement["lines"][0]["cpu_millis_measured"].is_null(),
        "measured time is the operators': {team_statement}"
    );
    let operator_statement = organizer.ok(&format!("/api/v1/statement?contract={contract_id}"));
    assert!(
        operator_statement["lines"][0]["cpu_millis_measured"]
            .as_i64()
            .is_some_and(|ms| ms > 0),
        "the sandbox children's CPU time is measured: {operator_statement}"
    );
    let verified = medarena(
        &[
            "ledger",
            "verify",
            "--url",
            &server.base,
            "--statement",
            &statement_file.to_string_lossy(),
        ],
        &[],
    );
    assert!(
        verified.status.success(),
        "verify --statement: {}",
        describe(&verified)
    );
    let mut tampered = team_statement.clone();
    tampered["lines"][0]["amount"] = json!("0.01");
    let tampered_file = root.path().join("tampered-statement.json");
    std::fs::write(&tampered_file, tampered.to_string()).expect("tampered statement");
    let caught = medarena(
        &[
            "ledger",
            "verify",
            "--url",
            &server.base,
            "--statement",
            &tampered_file.to_string_lossy(),
        ],
        &[],
    );
    assert_eq!(caught.status.code(), Some(1), "{}", describe(&caught));
    assert!(
        String::from_utf8_lossy(&caught.stdout).contains("amount is"),
        "{}",
        describe(&caught)
    );

    // The hospital suspends the contract: the next run is stopped, with the reason; it
    // resumes it afterwards.
    let suspended = medarena(
        &[
            "contract",
            "suspend",
            &contract_id.to_string(),
            "--reason",
            "ethics committee review",
        ],
        &env_refs(&hospital_env),
    );
    assert!(
        suspended.status.success(),
        "suspend: {}",
        describe(&suspended)
    );
    let stopped = team.submit(competition_id, std::fs::read(&baseline).expect("module"));
    let stopped_view = wait_for(
        "the stopped submission ends",
        std::time::Duration::from_secs(120),
        || {
            let view = team.ok(&format!("/api/v1/submissions/{stopped}"));
            (view["status"] == "failed").then_some(view)
        },
    );
    assert!(
        stopped_view["note"]
            .as_str()
            .is_some_and(|n| n.contains("no active contract")),
        "{stopped_view}"
    );
    let resumed = medarena(
        &["contract", "resume", &contract_id.to_string()],
        &env_refs(&hospital_env),
    );
    assert!(resumed.status.success(), "resume: {}", describe(&resumed));

    // The private leaderboard is hidden until the organizer closes and publishes.
    let private = format!("/api/v1/competitions/{competition_id}/leaderboard?kind=private");
    assert_eq!(team.get(&private).status, 403);
    // The organizer works with the CLI: a refused bundle names its fields, the list shows
    // the competition, close and publish take its slug.
    let bad_bundle = root.path().join("bad-bundle.yaml");
    std::fs::write(
        &bad_bundle,
        open_bundle_yaml().replace("metric: roc_auc", "metric: no_such_metric"),
    )
    .expect("bad bundle");
    let refused = medarena(
        &["competition", "create", &bad_bundle.to_string_lossy()],
        &env_refs(&organizer_env),
    );
    assert!(!refused.status.success(), "a bad bundle is refused");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("metric"),
        "the refusal names the field: {}",
        describe(&refused)
    );
    let listed = medarena(&["competition", "list"], &env_refs(&organizer_env));
    let listed_out = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success() && listed_out.contains(&slug) && listed_out.contains("open"),
        "competition list: {}",
        describe(&listed)
    );
    let closed = medarena(&["competition", "close", &slug], &env_refs(&organizer_env));
    assert!(closed.status.success(), "close: {}", describe(&closed));
    assert!(String::from_utf8_lossy(&closed.stdout).contains("closed"));
    assert_eq!(team.get(&private).status, 403, "closing does not reveal");
    let published = medarena(
        &["competition", "publish", &slug],
        &env_refs(&organizer_env),
    );
    assert!(
        published.status.success(),
        "publish: {}",
        describe(&published)
    );
    assert!(String::from_utf8_lossy(&published.stdout).contains("published"));
    let revealed = team.ok(&private);
    let entry = revealed["entries"][0]["submission"].as_i64();
    assert!(
        entry == Some(submission_id) || entry == Some(second_id),
        "the team's best public entry is ranked on the private split: {revealed}"
    );

    // Every step has a receipt on the ledger.
    let events = delivered_audit_trail(&organizer);
    let kinds: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["event"]["type"].as_str())
        .collect();
    for kind in [
        "account_created",
        "admission_requested",
        "admission_reviewed",
        "dataset_created",
        "contribution_uploaded",
        "contribution_validated",
        "dataset_reviewed",
        "competition_created",
        "agreement_accepted",
        "submission_received",
        "job_started",
        "run_finished",
        "budget_charged",
        "submission_finished",
        "competition_closed",
        "competition_published",
        "synthetic_data_measured",
        "synthetic_data_state_changed",
        "certificate_issued",
    ] {
        assert!(
            kinds.contains(kind),
            "no `{kind}` event in the audit trail: {kinds:?}"
        );
    }
    let mut checked = BTreeSet::new();
    for event in &events {
        let kind = event["event"]["type"].as_str().unwrap_or_default();
        if !checked.insert(kind.to_owned()) {
            continue;
        }
        let code = event["evidence"].as_str().expect("evidence code");
        verify_online(&server, code, &format!("receipt of `{kind}`"));
    }

    // The team has its own receipts: its submission's events with evidence codes.
    let own = team.ok(&format!("/api/v1/submissions/{submission_id}/receipts"));
    let own_code = own
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["event"]["type"] == "submission_received")
        .and_then(|e| e["evidence"].as_str())
        .expect("the team's receipt of its submission")
        .to_owned();
    verify_online(&server, &own_code, "the team's receipt");

    // Offline: a saved receipt and the published key.
    let code = events
        .iter()
        .find(|e| {
            e["event"]["type"] == "submission_received"
                && e["event"]["submission"].as_i64() == Some(submission_id)
        })
        .and_then(|e| e["evidence"].as_str())
        .expect("code");
    let anonymous = server.client(None);
    let receipt = anonymous.get(&format!("/api/ledger/receipts/{code}"));
    assert_eq!(receipt.status, 200, "{}", receipt.text);
    let key = anonymous.get("/api/ledger/key").text.trim().to_owned();
    let receipt_file = root.path().join("receipt.json");
    std::fs::write(&receipt_file, &receipt.text).expect("receipt file");
    // The receipt file as it is now, checked offline against the published key.
    let verify_offline = || {
        medarena(
            &[
                "ledger",
                "verify",
                "--key",
                &key,
                "--receipt",
                &receipt_file.to_string_lossy(),
            ],
            &[],
        )
    };
    let offline = verify_offline();
    assert!(
        offline.status.success(),
        "offline verify: {}",
        describe(&offline)
    );
    assert!(
        receipt
            .text
            .contains(&format!("submission:{submission_id}")),
        "the receipt names the submission"
    );

    // A tampered receipt is refused.
    let tampered = receipt.text.replacen(
        &format!("submission:{submission_id}"),
        &format!("submission:{}", submission_id + 1),
        1,
    );
    std::fs::write(&receipt_file, tampered).expect("receipt file");
    let refused = verify_offline();
    assert!(
        !refused.status.success(),
        "a tampered receipt must fail: {}",
        describe(&refused)
    );

    // Certificates: the hospital downloads its dataset's registration, anyone a result;
    // both verify offline against the published key (signature and anchoring entry), and
    // one changed byte is refused, naming what failed.
    let key_file = root.path().join("ledger.pub");
    std::fs::write(&key_file, format!("{key}\n")).expect("key file");
    let verify_certificate = |file: &std::path::Path| {
        medarena(
            &[
                "ledger",
                "verify",
                "--certificate",
                &file.to_string_lossy(),
                "--key",
                &key_file.to_string_lossy(),
            ],
            &[],
        )
    };
    let registration = root.path().join("registration.json");
    let fetched = medarena(
        &[
            "certificate",
            "dataset",
            "cardiac-events",
            "-o",
            &registration.to_string_lossy(),
        ],
        &env_refs(&hospital_env),
    );
    assert!(
        fetched.status.success(),
        "certificate dataset: {}",
        describe(&fetched)
    );
    let checked = verify_certificate(&registration);
    let out = String::from_utf8_lossy(&checked.stdout).into_owned();
    assert!(
        checked.status.success()
            && out.contains("ok    certificate")
            && out.contains("ok    anchor"),
        "registration certificate: {}",
        describe(&checked)
    );
    let listed = medarena(&["certificate", "list", &slug], &env_refs(&organizer_env));
    let listed_out = String::from_utf8_lossy(&listed.stdout).into_owned();
    let serial = listed_out
        .split_whitespace()
        .find(|word| word.starts_with("res-"))
        .unwrap_or_else(|| panic!("a result certificate: {}", describe(&listed)))
        .to_owned();
    let result = root.path().join("result.json");
    let fetched = medarena(
        &[
            "certificate",
            "get",
            &serial,
            "-o",
            &result.to_string_lossy(),
        ],
        &env_refs(&team_env),
    );
    assert!(
        fetched.status.success(),
        "certificate get: {}",
        describe(&fetched)
    );
    let checked = verify_certificate(&result);
    assert!(
        checked.status.success()
            && String::from_utf8_lossy(&checked.stdout).contains("ok    anchor"),
        "result certificate: {}",
        describe(&checked)
    );
    let text = std::fs::read_to_string(&result).expect("certificate");
    assert!(
        !text.contains("\"private_score\"") && !text.contains("exact"),
        "released values only: {text}"
    );
    let mut bytes = text.into_bytes();
    let at = bytes
        .windows(9)
        .position(|w| w == b"\"rank\": 1")
        .map(|i| i + 8)
        .expect("a rank");
    bytes[at] = b'2';
    std::fs::write(&result, &bytes).expect("tampered certificate");
    let refused = verify_certificate(&result);
    let refusal = String::from_utf8_lossy(&refused.stdout).into_owned();
    assert!(
        refused.status.code() == Some(1)
            && refusal.contains("FAIL")
            && refusal.contains("body was altered"),
        "a changed byte is refused: {}",
        describe(&refused)
    );
    // The hospital withdraws one of its uploads: its key and bytes are gone, its receipts
    // still verify against the ledger.
    let uploads = hospital.ok(&format!("/api/v1/datasets/{dataset_id}"));
    let upload = uploads["contributions"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["state"] == "validated"))
        .cloned()
        .expect("a validated upload");
    let upload_id = upload["id"].as_i64().expect("contribution id");
    let object = upload["object"]
        .as_str()
        .expect("the sealed object's id")
        .to_owned();
    let object_file = data_dir
        .join("objects")
        .join(&object[..2])
        .join(&object[2..]);
    assert!(object_file.exists(), "{}", object_file.display());
    let withdrawn = medarena(
        &[
            "dataset",
            "withdraw",
            "--contribution",
            &upload_id.to_string(),
            "--reason",
            "consent withdrawn",
        ],
        &env_refs(&hospital_env),
    );
    assert!(
        withdrawn.status.success(),
        "withdraw: {}",
        describe(&withdrawn)
    );
    let after = hospital.ok(&format!("/api/v1/contributions/{upload_id}"));
    assert!(
        after["withdrawn_at"].is_i64() && after["object"].is_null(),
        "{after}"
    );
    let receipts = wait_for(
        "the withdrawal on the ledger",
        std::time::Duration::from_secs(30),
        || {
            let receipts = hospital.ok(&format!("/api/v1/contributions/{upload_id}/receipts"));
            let all = receipts.as_array().cloned().unwrap_or_default();
            (all.len() == 3 && all.iter().all(|r| r["evidence"].is_string())).then_some(all)
        },
    );
    for receipt in &receipts {
        let code = receipt["evidence"].as_str().expect("evidence");
        verify_online(&server, code, "a withdrawn upload's receipt");
    }
    assert!(!object_file.exists(), "the sealed bytes are deleted");

    let logout = medarena(&["logout"], &env_refs(&team_env));
    assert!(logout.status.success(), "logout: {}", describe(&logout));
    assert!(!team_creds.exists());
    let status = server.stop();
    assert!(
        status.success(),
        "serve exits cleanly on SIGTERM: {status:?}"
    );
}
