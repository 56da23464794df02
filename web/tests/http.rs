//! The authorization matrix over HTTP: every documented operation
//! (`medarena_web::openapi::OPERATIONS`) × every role of the cast (and anonymous), with the
//! exact status each must get; then the negative cases one by one (a team reading another
//! team's submission, a hospital reading another hospital's contribution, nobody ever
//! receiving raw rows), the private leaderboard before and after publication, refused
//! uploads, CSRF and the session cookie, security headers, the OpenAPI document and metrics.
//!
//! Allowed calls get a 2xx or a business 4xx (404/409/422) that is never 401/403; denied
//! calls get 401 when anonymous and 403 when signed in. A documented route without an
//! expectation here, or an expectation for a route that is not documented, fails the test.
mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::{Answer, TestServer, world};
use medarena_arena::Tier;
use medarena_tests::{approval, multipart};
use medarena_web::openapi::OPERATIONS;
use serde_json::{Value, json};

/// The cast's roles in the order the matrix calls them; `anonymous` sends no credential.
const ROLES: [&str; 7] = [
    "anonymous",
    "organizer",
    "auditor",
    "hospital_a",
    "hospital_b",
    "team_x",
    "team_y",
];
const SIGNED_IN: [&str; 6] = [
    "organizer",
    "auditor",
    "hospital_a",
    "hospital_b",
    "team_x",
    "team_y",
];

/// A request body for a role: content type and bytes.
type Body = (String, Vec<u8>);
type BodyFn = Box<dyn Fn(&str) -> Body>;

fn no_body() -> Body {
    ("application/json".to_owned(), Vec::new())
}

fn json_body(value: Value) -> Body {
    (
        "application/json".to_owned(),
        serde_json::to_vec(&value).expect("json"),
    )
}

/// What one documented operation must answer to each role.
struct Row {
    /// The documented path with its parameters filled (and a query where one is needed).
    path: String,
    /// The roles allowed, with the exact status each gets; every other role is denied.
    allowed: Vec<(&'static str, u16)>,
    body: BodyFn,
    /// Rows run in stage order (table order within a stage): state-changing operations
    /// whose effect would change other rows' answers (close, publish) run last.
    stage: u8,
    /// Call with a fresh session of the role (for logout, which revokes it).
    fresh_token: bool,
}

fn row(path: impl Into<String>, allowed: &[(&'static str, u16)]) -> Row {
    Row {
        path: path.into(),
        allowed: allowed.to_vec(),
        body: Box::new(|_| no_body()),
        stage: 0,
        fresh_token: false,
    }
}

impl Row {
    fn body(mut self, body: impl Fn(&str) -> Body + 'static) -> Row {
        self.body = Box::new(body);
        self
    }

    fn stage(mut self, stage: u8) -> Row {
        self.stage = stage;
        self
    }

    fn fresh_token(mut self) -> Row {
        self.fresh_token = true;
        self
    }

    fn expected(&self, role: &str) -> u16 {
        match self.allowed.iter().find(|(r, _)| *r == role) {
            Some((_, status)) => *status,
            None if role == "anonymous" => 401,
            None => 403,
        }
    }
}

fn each(roles: &[&'static str], status: u16) -> Vec<(&'static str, u16)> {
    roles.iter().map(|role| (*role, status)).collect()
}

fn everyone(status: u16) -> Vec<(&'static str, u16)> {
    each(&ROLES, status)
}

fn signed_in(status: u16) -> Vec<(&'static str, u16)> {
    each(&SIGNED_IN, status)
}

/// Whether `concrete` (query ignored) is an instance of the documented `template`.
fn instance_of(template: &str, concrete: &str) -> bool {
    let concrete = concrete.split('?').next().unwrap_or_default();
    let (t, c): (Vec<&str>, Vec<&str>) =
        (template.split('/').collect(), concrete.split('/').collect());
    t.len() == c.len()
        && t.iter()
            .zip(&c)
            .all(|(t, c)| (t.starts_with('{') && t.ends_with('}') && !c.is_empty()) || t == c)
}

fn email_of(role: &str) -> &'static str {
    common::ROLES
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, email)| *email)
        .unwrap_or("x@team-x.test")
}

/// A percent-encoded form value.
fn form_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn form(fields: &[(&str, &str)]) -> Vec<u8> {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", form_value(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// A form post as a browser sends it (`cookie` is the session, if any).
fn post_form(
    server: &TestServer,
    path: &str,
    fields: &[(&str, &str)],
    cookie: Option<&str>,
) -> Answer {
    server.call(
        "anonymous",
        "POST",
        path,
        "application/x-www-form-urlencoded",
        form(fields),
        cookie,
    )
}

/// Signs in through the login form; returns the cookie pair and the session token.
fn session_cookie(server: &TestServer, role: &str) -> (String, String) {
    let answer = post_form(
        server,
        "/login",
        &[
            ("email", email_of(role)),
            ("password", world::PASSWORD),
            ("next", "/"),
        ],
        None,
    );
    assert_eq!(answer.status, 303, "{role} POST /login: {}", answer.text);
    let set_cookie = answer
        .header("set-cookie")
        .unwrap_or_else(|| panic!("{role} POST /login: no Set-Cookie"));
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{role} POST /login: cookie attributes: {set_cookie}"
    );
    let pair = set_cookie
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let token = pair
        .strip_prefix("medarena_session=")
        .unwrap_or_else(|| panic!("{role} POST /login: unexpected cookie {pair}"))
        .to_owned();
    (pair, token)
}

fn submit(server: &TestServer, role: &str, tag: u32) -> i64 {
    let path = format!(
        "/api/v1/competitions/{}/submissions",
        server.cast.competition.0
    );
    let answer = server.call(
        role,
        "POST",
        &path,
        "application/wasm",
        world::module(tag),
        None,
    );
    assert_eq!(answer.status, 201, "{role} POST {path}: {}", answer.text);
    answer.json["id"].as_i64().expect("submission id")
}

fn create_dataset(server: &TestServer, role: &str, slug: &str) -> i64 {
    let answer = server.post_json(
        role,
        "/api/v1/datasets",
        &json!({ "slug": slug, "title": format!("Dataset {slug}"), "description": "for the tests" }),
    );
    assert_eq!(
        answer.status, 201,
        "{role} POST /api/v1/datasets: {}",
        answer.text
    );
    answer.json["id"].as_i64().expect("dataset id")
}

fn upload(server: &TestServer, role: &str, dataset: i64, file_name: &str, csv: &str) -> Answer {
    let (content_type, body) = multipart(&[
        ("data", Some(file_name), csv.as_bytes()),
        (
            "manifest",
            None,
            b"name: cardiac-events\nlabel: cardiac_event_30d\n",
        ),
    ]);
    let path = format!("/api/v1/datasets/{dataset}/contributions");
    server.call(role, "POST", &path, &content_type, body, None)
}

/// A small CSV whose rows carry `marker` (a value that must never be served back).
fn csv_with(marker: &str) -> String {
    let mut text = String::from("age,sex,troponin,cardiac_event_30d,note\n");
    for row in 0..30 {
        text.push_str(&format!(
            "{},{},{:.2},{},{marker}-{row}\n",
            40 + row,
            row % 2,
            0.1 * f64::from(row),
            row % 3 == 0
        ));
    }
    text
}

/// The contributions of a dataset as `role` sees them: (id, hospital).
fn contributions(server: &TestServer, role: &str, dataset: i64) -> Vec<(i64, i64)> {
    let path = format!("/api/v1/datasets/{dataset}");
    let answer = server.get(role, &path);
    assert_eq!(answer.status, 200, "{role} GET {path}: {}", answer.text);
    answer.json["contributions"]
        .as_array()
        .unwrap_or_else(|| panic!("{role} GET {path}: no contributions array: {}", answer.text))
        .iter()
        .map(|c| {
            (
                c["id"].as_i64().expect("id"),
                c["hospital"].as_i64().expect("hospital"),
            )
        })
        .collect()
}

/// A well-formed evidence code that the ledger does not hold.
fn unknown_evidence_code() -> String {
    medarena_ledger::EvidenceCode::from_leaf_hash(medarena_ledger::Hash([7; 32])).to_string()
}

/// Everything the matrix needs from the cast, as ids.
struct Ids {
    competition: i64,
    submission_x: i64,
    team_x: i64,
    pending_org: i64,
    dataset: i64,
    open_dataset: i64,
    contribution_a: i64,
    agreement_sha256: String,
    /// Hospital A's synthetic draft.
    synthetic_draft: i64,
    /// The cast's open offer (active).
    contract: i64,
    /// An open offer every party accepts in the matrix, and its terms' digest.
    offer: i64,
    offer_sha256: String,
    /// A contract for team X that stays proposed (then terminated).
    proposed: i64,
    /// Hospital A's upload to a dataset of its own, withdrawn by the matrix.
    open_contribution_a: i64,
}

/// The roles that take part in the cast's competition: organizers, hospitals, teams.
fn participants(status: u16) -> Vec<(&'static str, u16)> {
    ["organizer", "hospital_a", "hospital_b", "team_x", "team_y"]
        .map(|role| (role, status))
        .to_vec()
}

fn expectations(ids: &Ids) -> BTreeMap<(&'static str, &'static str), Row> {
    let c = ids.competition;
    let s = ids.submission_x;
    let bundle =
        world::EXAMPLE_BUNDLE.replace("slug: cardiac-event-1y", "slug: matrix-second-competition");
    assert_ne!(
        bundle,
        world::EXAMPLE_BUNDLE,
        "the example bundle's slug changed"
    );
    let sha = ids.agreement_sha256.clone();
    let offer_sha = ids.offer_sha256.clone();
    let code = unknown_evidence_code();
    let marker_csv = csv_with("matrix-row");
    let rows: Vec<((&'static str, &'static str), Row)> = vec![
        (("post", "/api/v1/auth/login"), row("/api/v1/auth/login", &everyone(200)).body(|role| {
            json_body(json!({ "email": email_of(role), "password": world::PASSWORD }))
        })),
        (("post", "/api/v1/auth/logout"), row("/api/v1/auth/logout", &signed_in(204)).fresh_token()),
        (("get", "/api/v1/auth/tokens"), row("/api/v1/auth/tokens", &signed_in(200))),
        (("post", "/api/v1/auth/tokens"), row("/api/v1/auth/tokens", &signed_in(201))
            .body(|role| json_body(json!({ "name": format!("matrix {role}") })))),
        (("get", "/api/v1/me"), row("/api/v1/me", &signed_in(200))),
        (("post", "/api/v1/accounts"), row("/api/v1/accounts", &everyone(201)).body(|role| {
            json_body(json!({ "email": format!("registered-by-{role}@matrix.test"), "display_name": "Reg",
                              "password": world::PASSWORD, "role": "team_member" }))
        })),
        (("post", "/api/v1/admin/accounts"), row("/api/v1/admin/accounts", &[("organizer", 201)]).body(|role| {
            json_body(json!({ "email": format!("created-by-{role}@matrix.test"), "display_name": "Aud",
                              "password": world::PASSWORD, "role": "auditor" }))
        })),
        (("get", "/api/v1/applications"), row("/api/v1/applications", &[("organizer", 200)])),
        // Only accounts without an organization apply; everyone in the cast has one (the
        // allowed case is in `routes_no_cast_role_may_call_work_for_the_right_account`).
        (("post", "/api/v1/applications"), row("/api/v1/applications", &[])
            .body(|role| json_body(json!({ "name": format!("Applicant {role}"), "statement": "hi" })))),
        (("post", "/api/v1/applications/{org}/review"),
            row(format!("/api/v1/applications/{}/review", ids.pending_org), &[("organizer", 200)])
                .body(|_| json_body(json!({ "decision": "approve", "tier": "real_data" })))),
        (("get", "/api/v1/teams/{org}"),
            row(format!("/api/v1/teams/{}", ids.team_x), &[("organizer", 200), ("team_x", 200)])),
        (("post", "/api/v1/teams/{org}/members"),
            row(format!("/api/v1/teams/{}/members", ids.team_x), &[("organizer", 201), ("team_x", 201)])
                .body(|role| json_body(json!({ "email": format!("spare-{role}@matrix.test") })))),
        (("get", "/api/v1/competitions"), row("/api/v1/competitions", &everyone(200))),
        (("post", "/api/v1/competitions"), row("/api/v1/competitions", &[("organizer", 201)])
            .body(move |_| ("application/yaml".to_owned(), bundle.clone().into_bytes()))),
        (("get", "/api/v1/competitions/{id}"), row(format!("/api/v1/competitions/{c}"), &everyone(200))),
        (("get", "/api/v1/competitions/{id}/agreement"),
            row(format!("/api/v1/competitions/{c}/agreement"), &everyone(200))),
        (("post", "/api/v1/competitions/{id}/agreement"),
            row(format!("/api/v1/competitions/{c}/agreement"), &[("team_x", 201), ("team_y", 201)])
                .body(move |_| json_body(json!({ "agreement_sha256": sha })))),
        (("post", "/api/v1/competitions/{id}/close"),
            row(format!("/api/v1/competitions/{c}/close"), &[("organizer", 200)]).stage(1)),
        (("post", "/api/v1/competitions/{id}/publish"),
            row(format!("/api/v1/competitions/{c}/publish"), &[("organizer", 200)]).stage(2)),
        (("get", "/api/v1/competitions/{id}/leaderboard"),
            row(format!("/api/v1/competitions/{c}/leaderboard"), &everyone(200))),
        (("get", "/api/v1/competitions/{id}/history"),
            row(format!("/api/v1/competitions/{c}/history"), &everyone(200))),
        (("get", "/api/v1/competitions/{id}/exact-scores"),
            row(format!("/api/v1/competitions/{c}/exact-scores"), &[("organizer", 200)])),
        (("get", "/api/v1/competitions/{id}/compare"),
            row(format!("/api/v1/competitions/{c}/compare"), &[("organizer", 200)])),
        (("get", "/api/v1/competitions/{id}/submissions"),
            row(format!("/api/v1/competitions/{c}/submissions"), &[("organizer", 200), ("team_x", 200), ("team_y", 200)])),
        (("post", "/api/v1/competitions/{id}/submissions"),
            row(format!("/api/v1/competitions/{c}/submissions"), &[("team_x", 201), ("team_y", 201)])
                .body(|role| {
                    let tag = 100 + ROLES.iter().position(|r| *r == role).unwrap_or(0) as u32;
                    ("application/wasm".to_owned(), world::module(tag))
                })),
        // The cast's teams have the real_data tier, below dp_aggregates (the allowed case is
        // in `routes_no_cast_role_may_call_work_for_the_right_account`).
        (("post", "/api/v1/competitions/{id}/analyses"),
            row(format!("/api/v1/competitions/{c}/analyses"), &[]).body(|role| {
                let spec = json!({ "bounds": [[0.0, 1.0]], "epsilon": 0.1 }).to_string();
                let tag = 200 + ROLES.iter().position(|r| *r == role).unwrap_or(0) as u32;
                let module = world::module(tag);
                multipart(&[("spec", None, spec.as_bytes()), ("module", Some("a.wasm"), &module)])
            })),
        (("get", "/api/v1/competitions/{id}/budget"),
            row(format!("/api/v1/competitions/{c}/budget?team={}", ids.team_x), &[("organizer", 200), ("team_x", 200)])),
        (("get", "/api/v1/submissions/{id}"),
            row(format!("/api/v1/submissions/{s}"), &[("organizer", 200), ("team_x", 200)])),
        (("get", "/api/v1/submissions/{id}/dummy-report"),
            row(format!("/api/v1/submissions/{s}/dummy-report"), &[("organizer", 200), ("team_x", 200)])),
        (("get", "/api/v1/submissions/{id}/receipts"),
            row(format!("/api/v1/submissions/{s}/receipts"), &[("organizer", 200), ("team_x", 200)])),
        (("get", "/api/v1/submissions/{id}/module"),
            row(format!("/api/v1/submissions/{s}/module"), &[("team_x", 200)])),
        (("get", "/api/v1/datasets"), row("/api/v1/datasets", &everyone(200))),
        (("post", "/api/v1/datasets"),
            row("/api/v1/datasets", &[("organizer", 201), ("hospital_a", 201), ("hospital_b", 201)])
                .body(|role| json_body(json!({ "slug": format!("matrix-{}", role.replace('_', "-")), "title": "Matrix" })))),
        (("get", "/api/v1/datasets/{id}"), row(format!("/api/v1/datasets/{}", ids.dataset), &everyone(200))),
        (("post", "/api/v1/datasets/{id}/contributions"),
            row(format!("/api/v1/datasets/{}/contributions", ids.open_dataset), &[("hospital_a", 201), ("hospital_b", 201)])
                .body(move |role| {
                    multipart(&[("data", Some(&format!("{role}.csv")), marker_csv.as_bytes())])
                })),
        (("post", "/api/v1/datasets/{id}/review"),
            row(format!("/api/v1/datasets/{}/review", ids.open_dataset), &[("organizer", 200)])
                .body(|_| json_body(approval()))),
        (("get", "/api/v1/datasets/{id}/usage"),
            row(format!("/api/v1/datasets/{}/usage", ids.dataset), &[("organizer", 200), ("hospital_a", 200), ("hospital_b", 200)])),
        // Certificates: a registration is its dataset's hospitals' and organizers'; result
        // certificates exist from publication on and are everyone's then.
        (("get", "/api/v1/datasets/{id}/certificate"),
            row(format!("/api/v1/datasets/{}/certificate", ids.dataset), &[("organizer", 200), ("hospital_a", 200), ("hospital_b", 200)])),
        (("get", "/api/v1/certificates/{serial}"),
            row(format!("/api/v1/certificates/reg-{}", ids.dataset), &[("organizer", 200), ("hospital_a", 200), ("hospital_b", 200)])),
        (("get", "/api/v1/competitions/{id}/certificates"),
            row(format!("/api/v1/competitions/{c}/certificates"), &everyone(200)).stage(3)),
        (("get", "/api/v1/contributions/{id}"),
            row(format!("/api/v1/contributions/{}", ids.contribution_a), &[("organizer", 200), ("hospital_a", 200)])),
        (("get", "/api/v1/contributions/{id}/receipts"),
            row(format!("/api/v1/contributions/{}/receipts", ids.contribution_a), &[("organizer", 200), ("hospital_a", 200)])),
        (("get", "/api/v1/audit"), row("/api/v1/audit", &[("organizer", 200), ("auditor", 200)])),
        // Withdrawing an upload is its hospital's alone; tried last (stage 2) on an upload
        // that no other row needs.
        (("post", "/api/v1/contributions/{id}/withdraw"),
            row(format!("/api/v1/contributions/{}/withdraw", ids.open_contribution_a), &[("hospital_a", 200)])
                .body(|_| json_body(json!({ "reason": "matrix" }))).stage(2)),
        (("get", "/api/v1/datasets/{id}/privacy"),
            row(format!("/api/v1/datasets/{}/privacy", ids.dataset), &[("organizer", 200), ("hospital_a", 200), ("hospital_b", 200)])),
        // A hospital sets its own terms (the platform's defaults again, so that nothing else
        // changes); organizers cannot set them for it.
        (("put", "/api/v1/datasets/{id}/privacy"),
            row(format!("/api/v1/datasets/{}/privacy", ids.dataset), &[("hospital_a", 200), ("hospital_b", 200)])
                .body(|_| json_body(json!({ "min_level": "row", "per_team_epsilon": 10.0, "total_epsilon": 100.0 })))),
        // A hospital suspends or resumes its dataset; organizers cannot do it for it.
        // Suspending is tried on the open dataset (whose runs no other row needs), resuming
        // on the cast's (a no-op, so that nothing else changes).
        (("post", "/api/v1/datasets/{id}/suspend"),
            row(format!("/api/v1/datasets/{}/suspend", ids.open_dataset), &[("hospital_a", 200), ("hospital_b", 200)])
                .body(|_| json_body(json!({ "reason": "matrix" })))),
        (("post", "/api/v1/datasets/{id}/resume"),
            row(format!("/api/v1/datasets/{}/resume", ids.dataset), &[("hospital_a", 200), ("hospital_b", 200)])),
        (("get", "/api/v1/competitions/{id}/privacy"),
            row(format!("/api/v1/competitions/{c}/privacy"), &everyone(200))),
        // The per-hospital view: the competition's contributing hospitals (each its own
        // rows) and organizers.
        (("get", "/api/v1/competitions/{id}/site-scores"),
            row(format!("/api/v1/competitions/{c}/site-scores"), &[("organizer", 200), ("hospital_a", 200), ("hospital_b", 200)])),
        // Development data, its manifest and the synthetic releases: whoever takes part
        // (organizers, admitted hospitals and teams), not auditors.
        (("get", "/api/v1/competitions/{id}/development-data"),
            row(format!("/api/v1/competitions/{c}/development-data?rows=20"), &participants(200))),
        (("get", "/api/v1/competitions/{id}/manifest"),
            row(format!("/api/v1/competitions/{c}/manifest"), &participants(200))),
        (("get", "/api/v1/datasets/{id}/synthetic"),
            row(format!("/api/v1/datasets/{}/synthetic", ids.dataset), &participants(200))),
        // Measuring: each contributing hospital, from its own rows.
        (("post", "/api/v1/datasets/{id}/synthetic"),
            row(format!("/api/v1/datasets/{}/synthetic", ids.dataset), &[("hospital_a", 201), ("hospital_b", 201)])
                .body(|_| json_body(json!({ "epsilon": 0.1 })))),
        // Publishing a draft: its hospital only.
        (("post", "/api/v1/synthetic/{id}/{action}"),
            row(format!("/api/v1/synthetic/{}/publish", ids.synthetic_draft), &[("hospital_a", 200)])),
        // Queue states follow what real runs do: organizers only.
        (("get", "/api/v1/queue"), row("/api/v1/queue", &[("organizer", 200)])),
        // Contracts: organizers propose; parties (and auditors) see them; each party accepts
        // once; hospitals and the platform suspend; named teams may terminate too. On a
        // contract still proposed, suspension and resumption are authorized but refused
        // (409); its termination succeeds once, then is refused.
        (("get", "/api/v1/contracts"), row("/api/v1/contracts", &signed_in(200))),
        (("post", "/api/v1/contracts"),
            row("/api/v1/contracts", &[("organizer", 201)]).body(move |_| json_body(json!({
                "competition": c, "purposes": ["developing and testing medarena submissions"],
                "valid_days": 1,
            })))),
        (("get", "/api/v1/contracts/{id}"),
            row(format!("/api/v1/contracts/{}", ids.contract), &signed_in(200))),
        (("post", "/api/v1/contracts/{id}/accept"),
            row(format!("/api/v1/contracts/{}/accept", ids.offer), &participants(200))
                .body(move |_| json_body(json!({ "terms_sha256": offer_sha })))),
        (("post", "/api/v1/contracts/{id}/suspend"),
            row(format!("/api/v1/contracts/{}/suspend", ids.proposed),
                &[("organizer", 409), ("hospital_a", 409), ("hospital_b", 409)])
                .body(|_| json_body(json!({ "reason": "matrix" })))),
        (("post", "/api/v1/contracts/{id}/resume"),
            row(format!("/api/v1/contracts/{}/resume", ids.proposed),
                &[("organizer", 409), ("hospital_a", 409), ("hospital_b", 409)])),
        (("post", "/api/v1/contracts/{id}/terminate"),
            row(format!("/api/v1/contracts/{}/terminate", ids.proposed),
                &[("organizer", 200), ("hospital_a", 409), ("hospital_b", 409), ("team_x", 409)])
                .body(|_| json_body(json!({ "reason": "matrix" })))),
        (("get", "/api/v1/statement"), row("/api/v1/statement", &signed_in(200))),
        (("get", "/api/v1/statement.csv"), row("/api/v1/statement.csv", &signed_in(200))),
        (("get", "/api/ledger/key"), row("/api/ledger/key", &everyone(200))),
        (("get", "/api/ledger/checkpoint"), row("/api/ledger/checkpoint", &everyone(200))),
        // The ledger holds no such entry: a well-formed code is a 404 for everyone alike.
        (("get", "/api/ledger/receipts/{code}"), row(format!("/api/ledger/receipts/{code}"), &everyone(404))),
        (("get", "/api/ledger/consistency"), row("/api/ledger/consistency?from=0&to=0", &everyone(200))),
        (("get", "/api/ledger/entries"), row("/api/ledger/entries?from=0&limit=10", &everyone(200))),
        (("get", "/api/openapi.json"), row("/api/openapi.json", &everyone(200))),
    ];
    let mut map = BTreeMap::new();
    for (key, row) in rows {
        assert!(
            instance_of(key.1, &row.path),
            "{} {}: filled path {} does not fit",
            key.0,
            key.1,
            row.path
        );
        for (role, status) in &row.allowed {
            assert!(
                ROLES.contains(role),
                "{} {}: unknown role {role}",
                key.0,
                key.1
            );
            assert!(
                !matches!(status, 401 | 403) && (200..500).contains(status),
                "{role} {} {}: an allowed call must not expect {status}",
                key.0,
                key.1
            );
        }
        assert!(
            map.insert(key, row).is_none(),
            "{} {}: two expectations",
            key.0,
            key.1
        );
    }
    map
}

/// Submissions per team (team_x's scored, team_y's queued: with two scored entries the
/// comparison would need the real executor), a pending application, an open dataset, the
/// spare accounts the "add member" row adds.
fn prepare(server: &mut TestServer) -> Ids {
    let competition = server.cast.competition.0;
    let submission_x = submit(server, "team_x", 1);
    assert!(server.drain() > 0, "team_x's submission ran no job");
    submit(server, "team_y", 2);
    // An applicant whose application the organizer reviews.
    let applicant = server.post_json(
        "anonymous",
        "/api/v1/accounts",
        &json!({ "email": "applicant@matrix.test", "display_name": "Applicant",
                 "password": world::PASSWORD, "role": "team_member" }),
    );
    assert_eq!(
        applicant.status, 201,
        "anonymous POST /api/v1/accounts: {}",
        applicant.text
    );
    let login = server.post_json(
        "anonymous",
        "/api/v1/auth/login",
        &json!({ "email": "applicant@matrix.test", "password": world::PASSWORD }),
    );
    assert_eq!(
        login.status, 200,
        "applicant POST /api/v1/auth/login: {}",
        login.text
    );
    server.tokens.insert(
        "applicant",
        login.json["token"].as_str().expect("token").to_owned(),
    );
    let applied = server.post_json(
        "applicant",
        "/api/v1/applications",
        &json!({ "name": "Team Pending", "statement": "we" }),
    );
    assert_eq!(
        applied.status, 201,
        "applicant POST /api/v1/applications: {}",
        applied.text
    );
    let pending_org = applied.json["id"].as_i64().expect("org id");
    for role in ROLES {
        let spare = server.post_json(
            "anonymous",
            "/api/v1/accounts",
            &json!({ "email": format!("spare-{role}@matrix.test"), "display_name": "Spare",
                     "password": world::PASSWORD, "role": "team_member" }),
        );
        assert_eq!(
            spare.status, 201,
            "anonymous POST /api/v1/accounts: {}",
            spare.text
        );
    }
    let open_dataset = create_dataset(server, "hospital_a", "matrix-open");
    // An upload of its own dataset that hospital A withdraws in the matrix.
    let withdraw_set = create_dataset(server, "hospital_a", "matrix-withdraw");
    let up = upload(
        server,
        "hospital_a",
        withdraw_set,
        "w.csv",
        &csv_with("matrix-withdraw"),
    );
    assert_eq!(up.status, 201, "the upload to withdraw: {}", up.text);
    let open_contribution_a = up.json["id"].as_i64().expect("contribution id");
    let hospital_a = server.cast.hospital_a_org.0;
    let contribution_a = contributions(server, "organizer", server.cast.dataset.0)
        .into_iter()
        .find(|(_, hospital)| *hospital == hospital_a)
        .expect("hospital_a's contribution in the organizer's dataset view")
        .0;
    let agreement = server.get(
        "team_x",
        &format!("/api/v1/competitions/{competition}/agreement"),
    );
    let draft = server.post_json(
        "hospital_a",
        &format!("/api/v1/datasets/{}/synthetic", server.cast.dataset.0),
        &json!({ "epsilon": 0.2 }),
    );
    assert_eq!(draft.status, 201, "a synthetic draft: {}", draft.text);
    let propose = |body: Value| {
        let proposed = server.post_json("organizer", "/api/v1/contracts", &body);
        assert_eq!(proposed.status, 201, "a contract: {}", proposed.text);
        proposed.json
    };
    let purposes = json!(["developing and testing medarena submissions"]);
    let offer = propose(json!({ "competition": competition, "purposes": purposes }));
    let proposed = propose(json!({
        "competition": competition, "purposes": purposes, "team": server.cast.team_x_org.0,
    }));
    let listed = server.get(
        "organizer",
        &format!("/api/v1/contracts?competition={competition}"),
    );
    let contract = listed
        .json
        .as_array()
        .and_then(|all| all.last())
        .expect("the cast's contract")["id"]
        .as_i64()
        .expect("contract id");
    Ids {
        open_contribution_a,
        contract,
        offer: offer["id"].as_i64().expect("contract id"),
        offer_sha256: offer["terms_sha256"].as_str().expect("digest").to_owned(),
        proposed: proposed["id"].as_i64().expect("contract id"),
        synthetic_draft: draft.json["id"].as_i64().expect("release id"),
        competition,
        submission_x,
        team_x: server.cast.team_x_org.0,
        pending_org,
        dataset: server.cast.dataset.0,
        open_dataset,
        contribution_a,
        agreement_sha256: agreement.json["sha256"]
            .as_str()
            .expect("sha256")
            .to_owned(),
    }
}

#[test]
fn authorization_matrix_every_operation_times_every_role() {
    let mut server = TestServer::start();
    let ids = prepare(&mut server);
    // Fresh sessions for the logout row (logging out revokes the token used).
    let mut fresh: HashMap<&str, &'static str> = HashMap::new();
    for role in SIGNED_IN {
        let key: &'static str = Box::leak(format!("{role}+fresh").into_boxed_str());
        let token = server
            .rt
            .block_on(world::sign_in(&server.world.arena, email_of(role)))
            .1;
        server.tokens.insert(key, token);
        fresh.insert(role, key);
    }
    let rows = expectations(&ids);

    // The table is the contract: every documented operation has an expectation and every
    // expectation is a documented operation.
    let documented: BTreeSet<(&str, &str)> =
        OPERATIONS.iter().map(|o| (o.method, o.path)).collect();
    assert_eq!(
        documented.len(),
        OPERATIONS.len(),
        "an operation is documented twice"
    );
    let expected: BTreeSet<(&str, &str)> = rows.keys().copied().collect();
    let missing: Vec<_> = documented.difference(&expected).collect();
    let stale: Vec<_> = expected.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "documented operations without an expectation: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "expectations for undocumented operations: {stale:?}"
    );

    let mut order: Vec<(&'static str, &'static str)> =
        OPERATIONS.iter().map(|o| (o.method, o.path)).collect();
    order.sort_by_key(|key| rows[key].stage);
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut stage = 0;
    for key in order {
        let (method, _) = key;
        let row = &rows[&key];
        if row.stage != stage {
            // Publication waits until every run has finished and been released.
            stage = row.stage;
            server.drain();
        }
        let method = method.to_uppercase();
        for role in ROLES {
            let caller = if row.fresh_token && role != "anonymous" {
                fresh[role]
            } else {
                role
            };
            let (content_type, body) = (row.body)(role);
            let answer = server.call(caller, &method, &row.path, &content_type, body, None);
            let want = row.expected(role);
            checked += 1;
            if answer.status != want {
                failures.push(format!(
                    "{role} {method} {} (documented {}): expected {want}, got {}: {}",
                    row.path, key.1, answer.status, answer.text
                ));
                continue;
            }
            let kind = match want {
                401 => Some("unauthenticated"),
                403 => Some("forbidden"),
                _ => None,
            };
            if let Some(kind) = kind
                && answer.json["error"]["kind"] != kind
            {
                failures.push(format!(
                    "{role} {method} {}: {want} without error kind `{kind}`: {}",
                    row.path, answer.text
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} calls answered wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, OPERATIONS.len() * ROLES.len());

    // The logout row really revoked the fresh sessions, and only those.
    for role in SIGNED_IN {
        let me = server.get(fresh[role], "/api/v1/me");
        assert_eq!(
            me.status, 401,
            "{role} GET /api/v1/me after POST /api/v1/auth/logout: {}",
            me.text
        );
        let me = server.get(role, "/api/v1/me");
        assert_eq!(
            me.status, 200,
            "{role} GET /api/v1/me with the other session: {}",
            me.text
        );
    }
    // Allowed state changes happened (so the 2xx above were real): the pending team is
    // approved, the second competition exists, the open dataset is approved.
    let applications = server.get("organizer", "/api/v1/applications?state=pending");
    assert_eq!(
        applications.status, 200,
        "organizer GET /api/v1/applications: {}",
        applications.text
    );
    assert!(
        !applications.text.contains("Team Pending"),
        "organizer GET /api/v1/applications?state=pending still lists the reviewed team"
    );
    let competitions = server.get("anonymous", "/api/v1/competitions");
    assert!(
        competitions.text.contains("matrix-second-competition"),
        "anonymous GET /api/v1/competitions: the organizer's POST created nothing: {}",
        competitions.text
    );
    let open = server.get(
        "anonymous",
        &format!("/api/v1/datasets/{}", ids.open_dataset),
    );
    assert_eq!(
        open.json["dataset"]["state"], "approved",
        "anonymous GET /api/v1/datasets/{}: {}",
        ids.open_dataset, open.text
    );
}

#[test]
fn a_team_cannot_read_another_teams_submission_report_or_module() {
    let server = TestServer::start();
    let c = server.cast.competition.0;
    let x = submit(&server, "team_x", 11);
    server.drain();
    let y = submit(&server, "team_y", 12);
    server.drain();
    for (path, what) in [
        (format!("/api/v1/submissions/{x}"), "submission"),
        (
            format!("/api/v1/submissions/{x}/dummy-report"),
            "dummy report",
        ),
        (format!("/api/v1/submissions/{x}/module"), "module"),
    ] {
        let own = server.get("team_x", &path);
        assert_eq!(
            own.status, 200,
            "team_x GET {path} (own {what}): {}",
            own.text
        );
        let other = server.get("team_y", &path);
        assert_eq!(
            other.status, 403,
            "team_y GET {path} (team_x's {what}): {}",
            other.text
        );
        assert_eq!(
            other.json["error"]["kind"], "forbidden",
            "team_y GET {path}: {}",
            other.text
        );
        assert!(
            !other.text.contains("module_sha256"),
            "team_y GET {path} leaks the submission: {}",
            other.text
        );
    }
    // The module is served to its own team byte for byte, and to nobody else (organizers
    // included).
    let path = format!("/api/v1/submissions/{x}/module");
    let own = server.call("team_x", "GET", &path, "application/json", Vec::new(), None);
    assert_eq!(
        own.text.as_bytes(),
        world::module(11).as_slice(),
        "team_x GET {path}: not the module submitted"
    );
    let organizer = server.get("organizer", &path);
    assert_eq!(
        organizer.status, 403,
        "organizer GET {path}: {}",
        organizer.text
    );
    // The dummy report exists (team_x's submission ran), so the 403 above is not a 404 in
    // disguise.
    let report = server.get("team_x", &format!("/api/v1/submissions/{x}/dummy-report"));
    assert!(
        report.json.is_object(),
        "team_x GET /api/v1/submissions/{x}/dummy-report: {}",
        report.text
    );
    // Listing: a team sees only its own; asking for the other team is forbidden.
    let path = format!("/api/v1/competitions/{c}/submissions");
    let list = server.get("team_y", &path);
    assert_eq!(list.status, 200, "team_y GET {path}: {}", list.text);
    let listed: Vec<i64> = list
        .json
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["id"].as_i64())
        .collect();
    assert_eq!(
        listed,
        vec![y],
        "team_y GET {path}: lists other teams' submissions"
    );
    let team_x = server.cast.team_x_org.0;
    for path in [
        format!("/api/v1/competitions/{c}/submissions?team={team_x}"),
        format!("/api/v1/competitions/{c}/budget?team={team_x}"),
        format!("/api/v1/teams/{team_x}"),
    ] {
        let other = server.get("team_y", &path);
        assert_eq!(other.status, 403, "team_y GET {path}: {}", other.text);
        let own = server.get("team_x", &path);
        assert_eq!(own.status, 200, "team_x GET {path}: {}", own.text);
    }
}

#[test]
fn a_hospital_cannot_read_another_hospitals_contribution_or_usage() {
    let server = TestServer::start();
    let (a, b) = (server.cast.hospital_a_org.0, server.cast.hospital_b_org.0);
    let dataset = server.cast.dataset.0;
    let all = contributions(&server, "organizer", dataset);
    let of = |hospital: i64| -> Vec<i64> {
        all.iter()
            .filter(|(_, h)| *h == hospital)
            .map(|(id, _)| *id)
            .collect()
    };
    let (from_a, from_b) = (of(a), of(b));
    assert!(
        !from_a.is_empty() && !from_b.is_empty(),
        "organizer GET /api/v1/datasets/{dataset}: {all:?}"
    );
    for id in &from_a {
        let path = format!("/api/v1/contributions/{id}");
        let theirs = server.get("hospital_b", &path);
        assert_eq!(
            theirs.status, 403,
            "hospital_b GET {path} (hospital_a's): {}",
            theirs.text
        );
        assert!(
            !theirs.text.contains("content_sha256"),
            "hospital_b GET {path} leaks it: {}",
            theirs.text
        );
        let own = server.get("hospital_a", &path);
        assert_eq!(own.status, 200, "hospital_a GET {path}: {}", own.text);
        let organizer = server.get("organizer", &path);
        assert_eq!(
            organizer.status, 200,
            "organizer GET {path}: {}",
            organizer.text
        );
    }
    for id in &from_b {
        let path = format!("/api/v1/contributions/{id}");
        assert_eq!(
            server.get("hospital_a", &path).status,
            403,
            "hospital_a GET {path} (hospital_b's)"
        );
    }
    // The dataset view shows each hospital only its own contributions.
    let seen_by_b: Vec<i64> = contributions(&server, "hospital_b", dataset)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        seen_by_b, from_b,
        "hospital_b GET /api/v1/datasets/{dataset}"
    );
    let seen_by_a: Vec<i64> = contributions(&server, "hospital_a", dataset)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        seen_by_a, from_a,
        "hospital_a GET /api/v1/datasets/{dataset}"
    );
    for role in ["anonymous", "auditor", "team_x"] {
        assert!(
            contributions(&server, role, dataset).is_empty(),
            "{role} GET /api/v1/datasets/{dataset} shows contributions"
        );
    }
    // A dataset only hospital_a contributed to: its usage is not hospital_b's business.
    let own = create_dataset(&server, "hospital_a", "only-a");
    let up = upload(&server, "hospital_a", own, "a.csv", &csv_with("only-a"));
    assert_eq!(
        up.status, 201,
        "hospital_a POST /api/v1/datasets/{own}/contributions: {}",
        up.text
    );
    let path = format!("/api/v1/datasets/{own}/usage");
    assert_eq!(
        server.get("hospital_a", &path).status,
        200,
        "hospital_a GET {path}"
    );
    let theirs = server.get("hospital_b", &path);
    assert_eq!(theirs.status, 403, "hospital_b GET {path}: {}", theirs.text);
}

/// The candidate fillings of a documented GET path, for scanning responses.
fn fillings(template: &str, params: &HashMap<&str, Vec<i64>>, code: &str) -> Vec<String> {
    let mut paths = vec![String::new()];
    let segments: Vec<&str> = template.split('/').skip(1).collect();
    for (index, segment) in segments.iter().enumerate() {
        let values: Vec<String> = match *segment {
            "{id}" | "{org}" => {
                let resource = if *segment == "{org}" {
                    "teams"
                } else {
                    segments[index - 1]
                };
                params
                    .get(resource)
                    .unwrap_or_else(|| {
                        panic!("GET {template}: no ids for {resource}; extend the scan")
                    })
                    .iter()
                    .map(i64::to_string)
                    .collect()
            }
            "{code}" => vec![code.to_owned()],
            // Every certificate there may be: each dataset's registration, each
            // competition's entries' results.
            "{serial}" => {
                let ids = |resource: &str| params.get(resource).cloned().unwrap_or_default();
                let mut serials: Vec<String> =
                    ids("datasets").iter().map(|d| format!("reg-{d}")).collect();
                for c in ids("competitions") {
                    serials.extend(ids("submissions").iter().map(|s| format!("res-{c}-{s}")));
                }
                serials
            }
            s if s.starts_with('{') => {
                panic!("GET {template}: unknown parameter {s}; extend the scan")
            }
            s => vec![s.to_owned()],
        };
        paths = paths
            .iter()
            .flat_map(|p| values.iter().map(move |v| format!("{p}/{v}")))
            .collect();
    }
    let mut with_queries = Vec::new();
    for path in paths {
        if path.ends_with("/budget") || path.ends_with("/submissions") {
            for team in &params["teams"] {
                with_queries.push(format!("{path}?team={team}"));
            }
        }
        if path.ends_with("/leaderboard") {
            with_queries.push(format!("{path}?kind=private"));
        }
        if path.ends_with("/audit") {
            with_queries.push(format!("{path}?limit=1000"));
        }
        if path.ends_with("/entries") {
            with_queries.push(format!("{path}?from=0&limit=100"));
        }
        with_queries.push(path);
    }
    with_queries
}

#[test]
fn no_route_serves_raw_rows_to_anyone() {
    let server = TestServer::start();
    let accepted_marker = "RAWROW-7f3a9c";
    let refused_marker = "RAWPHI-51be02";
    let file_marker = "visible-file-name-4d2e";
    let dataset = create_dataset(&server, "hospital_a", "raw-rows");
    let up = upload(
        &server,
        "hospital_a",
        dataset,
        &format!("{file_marker}.csv"),
        &csv_with(accepted_marker),
    );
    assert_eq!(
        up.status, 201,
        "hospital_a POST /api/v1/datasets/{dataset}/contributions: {}",
        up.text
    );
    let accepted = up.json["id"].as_i64().expect("contribution id");
    let up = upload(
        &server,
        "hospital_b",
        dataset,
        "b.csv",
        &csv_with(accepted_marker),
    );
    assert_eq!(
        up.status, 201,
        "hospital_b POST /api/v1/datasets/{dataset}/contributions: {}",
        up.text
    );
    let mut refused_csv = csv_with(refused_marker);
    refused_csv.push_str("50,1,0.3,true,PHI John Smith\n");
    let up = upload(&server, "hospital_a", dataset, "refused.csv", &refused_csv);
    assert_eq!(
        up.status, 422,
        "hospital_a POST /api/v1/datasets/{dataset}/contributions (PHI): {}",
        up.text
    );
    let refused = up.json["error"]["contribution"]
        .as_i64()
        .expect("refused contribution id");
    let review = server.post_json(
        "organizer",
        &format!("/api/v1/datasets/{dataset}/review"),
        &approval(),
    );
    assert_eq!(
        review.status, 200,
        "organizer POST /api/v1/datasets/{dataset}/review: {}",
        review.text
    );
    let x = submit(&server, "team_x", 21);
    let y = submit(&server, "team_y", 22);
    server.drain();

    let mut contribution_ids: Vec<i64> = contributions(&server, "organizer", server.cast.dataset.0)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    contribution_ids.extend(
        contributions(&server, "organizer", dataset)
            .into_iter()
            .map(|(id, _)| id),
    );
    contribution_ids.push(refused);
    assert!(
        contribution_ids.contains(&accepted),
        "organizer's dataset view misses contribution {accepted}"
    );
    let contract_ids: Vec<i64> = server
        .get("organizer", "/api/v1/contracts")
        .json
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_i64())
        .collect();
    assert!(!contract_ids.is_empty(), "the cast's contract");
    let params: HashMap<&str, Vec<i64>> = HashMap::from([
        ("competitions", vec![server.cast.competition.0]),
        ("submissions", vec![x, y]),
        ("datasets", vec![server.cast.dataset.0, dataset]),
        ("contributions", contribution_ids),
        ("contracts", contract_ids),
        (
            "teams",
            vec![server.cast.team_x_org.0, server.cast.team_y_org.0],
        ),
    ]);
    let code = unknown_evidence_code();
    let mut scanned = 0;
    let mut saw_file_name = false;
    let mut leaks = Vec::new();
    let mut check = |role: &str, path: &str, answer: &Answer| {
        scanned += 1;
        saw_file_name |= answer.text.contains(file_marker);
        for marker in [accepted_marker, refused_marker, "John Smith"] {
            if answer.text.contains(marker) {
                leaks.push(format!(
                    "{role} GET {path} ({}) contains `{marker}`",
                    answer.status
                ));
            }
        }
    };
    for op in OPERATIONS.iter().filter(|o| o.method == "get") {
        for path in fillings(op.path, &params, &code) {
            for role in ROLES {
                check(role, &path, &server.get(role, &path));
            }
        }
    }
    // The pages too, signed in by cookie.
    let c = server.cast.competition.0;
    let pages = [
        "/".to_owned(),
        "/datasets".to_owned(),
        format!("/datasets/{dataset}"),
        format!("/datasets/{}", server.cast.dataset.0),
        "/organizer".to_owned(),
        "/ledger".to_owned(),
        format!("/competitions/{c}"),
        format!("/competitions/{c}/submissions"),
        format!("/certificates/reg-{dataset}"),
        format!("/certificates/reg-{}", server.cast.dataset.0),
    ];
    for role in SIGNED_IN {
        let (cookie, _) = session_cookie(&server, role);
        for path in &pages {
            let answer = server.get_with_cookie(path, &cookie);
            check(role, path, &answer);
        }
    }
    assert!(leaks.is_empty(), "raw rows served:\n{}", leaks.join("\n"));
    // The scan did reach the contribution records (their file name is shown, the rows not).
    assert!(
        saw_file_name,
        "no response showed contribution {accepted}'s record; the scan is blind"
    );
    assert!(scanned > 300, "scanned only {scanned} responses");
}

#[test]
fn a_refused_upload_is_422_with_the_report_and_no_values() {
    let server = TestServer::start();
    let dataset = create_dataset(&server, "hospital_b", "refusals");
    let secret = "Jane-Q-Doe-19570301";
    let mut csv = csv_with("fine");
    csv.push_str(&format!("61,0,0.4,false,PHI {secret}\n"));
    let path = format!("/api/v1/datasets/{dataset}/contributions");
    let answer = upload(&server, "hospital_b", dataset, "notes.csv", &csv);
    assert_eq!(
        answer.status, 422,
        "hospital_b POST {path}: {}",
        answer.text
    );
    let error = &answer.json["error"];
    assert_eq!(
        error["kind"], "invalid",
        "hospital_b POST {path}: {}",
        answer.text
    );
    let findings = error["report"]["findings"].as_array();
    assert!(
        findings.is_some_and(|f| !f.is_empty()),
        "hospital_b POST {path}: no findings in error.report: {}",
        answer.text
    );
    assert!(
        !answer.text.contains(secret),
        "hospital_b POST {path}: echoes the value: {}",
        answer.text
    );
    assert!(
        !answer.text.contains("fine-"),
        "hospital_b POST {path}: echoes rows: {}",
        answer.text
    );
    // A clean file to the same dataset is accepted: the refusal was about the content.
    let clean = upload(
        &server,
        "hospital_b",
        dataset,
        "clean.csv",
        &csv_with("fine"),
    );
    assert_eq!(
        clean.status, 201,
        "hospital_b POST {path} (clean): {}",
        clean.text
    );
}

#[test]
fn the_audit_trail_is_for_organizers_and_auditors_only() {
    let server = TestServer::start();
    let x = submit(&server, "team_x", 31);
    server.drain();
    for path in [
        "/api/v1/audit".to_owned(),
        format!("/api/v1/audit?subject=submission:{x}"),
    ] {
        for role in ROLES {
            let answer = server.get(role, &path);
            match role {
                "organizer" | "auditor" => {
                    assert_eq!(answer.status, 200, "{role} GET {path}: {}", answer.text);
                    assert!(
                        answer
                            .json
                            .as_array()
                            .is_some_and(|events| !events.is_empty()),
                        "{role} GET {path}: no events: {}",
                        answer.text
                    );
                }
                "anonymous" => assert_eq!(answer.status, 401, "{role} GET {path}: {}", answer.text),
                _ => assert_eq!(answer.status, 403, "{role} GET {path}: {}", answer.text),
            }
        }
    }
}

#[test]
fn the_private_leaderboard_opens_to_teams_only_once_published() {
    let server = TestServer::start();
    let c = server.cast.competition.0;
    submit(&server, "team_x", 41);
    submit(&server, "team_y", 42);
    server.drain();
    let private = format!("/api/v1/competitions/{c}/leaderboard?kind=private");
    let before = |role: &str| match role {
        "organizer" => 200,
        "anonymous" => 401,
        _ => 403,
    };
    for role in ROLES {
        let answer = server.get(role, &private);
        assert_eq!(
            answer.status,
            before(role),
            "{role} GET {private} before publication: {}",
            answer.text
        );
    }
    let organizer_view = server.get("organizer", &private);
    assert_eq!(
        organizer_view.json["entries"].as_array().map(Vec::len),
        Some(2),
        "organizer GET {private}: {}",
        organizer_view.text
    );
    let publish = format!("/api/v1/competitions/{c}/publish");
    let early = server.post_json("organizer", &publish, &json!({}));
    assert_eq!(
        early.status, 409,
        "organizer POST {publish} before closing: {}",
        early.text
    );
    for role in ["team_x", "team_y"] {
        assert_eq!(
            server.get(role, &private).status,
            403,
            "{role} GET {private} after a refused publish"
        );
    }
    let close = format!("/api/v1/competitions/{c}/close");
    let closed = server.post_json("organizer", &close, &json!({}));
    assert_eq!(
        closed.status, 200,
        "organizer POST {close}: {}",
        closed.text
    );
    for role in ["team_x", "team_y", "anonymous"] {
        assert_eq!(
            server.get(role, &private).status,
            before(role),
            "{role} GET {private} closed, not published"
        );
    }
    let published = server.post_json("organizer", &publish, &json!({}));
    assert_eq!(
        published.status, 200,
        "organizer POST {publish}: {}",
        published.text
    );
    for role in ROLES {
        let answer = server.get(role, &private);
        assert_eq!(
            answer.status, 200,
            "{role} GET {private} after publication: {}",
            answer.text
        );
        let entries = answer.json["entries"].as_array().map(Vec::len);
        assert_eq!(
            entries,
            Some(2),
            "{role} GET {private} after publication: {}",
            answer.text
        );
    }
}

/// With the per-hospital view, a published competition's page shows each contributing
/// hospital its own released scores, and the API the same rows; teams see neither.
#[test]
fn hospitals_see_their_own_patients_scores_once_published() {
    let bundle =
        world::EXAMPLE_BUNDLE.replace("    # site_epsilon: 0.5\n", "    site_epsilon: 0.5\n");
    let server = TestServer::start_with(&bundle);
    let c = server.cast.competition.0;
    submit(&server, "team_x", 51);
    submit(&server, "team_y", 52);
    server.drain();
    let page = format!("/competitions/{c}");
    let scores = format!("/api/v1/competitions/{c}/site-scores");
    let heading = "On your hospital";
    let unpublished = server.get("hospital_a", &page);
    assert!(!unpublished.text.contains(heading), "{}", unpublished.text);
    for path in ["close", "publish"] {
        let answer = server.post_json(
            "organizer",
            &format!("/api/v1/competitions/{c}/{path}"),
            &json!({}),
        );
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
    }
    for (hospital, org) in [
        ("hospital_a", server.cast.hospital_a_org.0),
        ("hospital_b", server.cast.hospital_b_org.0),
    ] {
        let rows = server.get(hospital, &scores);
        assert_eq!(rows.status, 200, "{}", rows.text);
        let rows = rows.json.as_array().cloned().unwrap_or_default();
        assert_eq!(rows.len(), 2, "one per final entry: {rows:?}");
        assert!(
            rows.iter().all(|r| r["hospital"] == org),
            "only its own: {rows:?}"
        );
        let shown = server.get(hospital, &page);
        assert!(shown.text.contains(heading), "{hospital}: {}", shown.text);
    }
    assert_eq!(
        server
            .get("organizer", &scores)
            .json
            .as_array()
            .map(Vec::len),
        Some(4)
    );
    for role in ["team_x", "anonymous"] {
        assert!(!server.get(role, &page).text.contains(heading), "{role}");
    }
}

#[test]
fn certificates_download_verify_offline_and_print_as_pages() {
    use medarena_arena::certificate::{self, CertificateDocument};
    let server = TestServer::start();
    let d = server.cast.dataset.0;
    let c = server.cast.competition.0;
    let key = medarena_ledger::VerifierKey::parse(&server.get("anonymous", "/api/ledger/key").text)
        .expect("the ledger key");

    // The registration: its file verifies with the ledger's key, byte for byte as served.
    let file = server.get("hospital_a", &format!("/api/v1/datasets/{d}/certificate"));
    assert_eq!(file.status, 200, "{}", file.text);
    assert_eq!(file.header("content-type"), Some("application/json"));
    let verified = certificate::verify(file.text.as_bytes(), &key, None).expect("verifies");
    assert_eq!(verified.serial, format!("reg-{d}"));
    let by_serial = server.get("hospital_b", &format!("/api/v1/certificates/reg-{d}"));
    assert_eq!(by_serial.text, file.text, "one certificate, the same bytes");
    // Printable page, linked from the dataset page; not a team's to see.
    let dataset_page = server.get("hospital_a", &format!("/datasets/{d}"));
    assert!(
        dataset_page
            .text
            .contains(&format!("/certificates/reg-{d}")),
        "{}",
        dataset_page.text
    );
    let page = server.get("hospital_a", &format!("/certificates/reg-{d}"));
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains("Dataset registration certificate"),
        "{}",
        page.text
    );
    assert!(page.text.contains(&verified.body_sha256));
    assert!(page.text.contains(&format!("/api/v1/certificates/reg-{d}")));
    assert_eq!(
        server
            .get("team_x", &format!("/certificates/reg-{d}"))
            .status,
        403
    );
    assert_eq!(
        server
            .get("hospital_a", "/certificates/not-a-serial")
            .status,
        422
    );

    // Results: none before publication; one per final entry after, everyone's.
    submit(&server, "team_x", 61);
    submit(&server, "team_y", 62);
    server.drain();
    let list = format!("/api/v1/competitions/{c}/certificates");
    assert_eq!(server.get("anonymous", &list).status, 401);
    for path in ["close", "publish"] {
        let answer = server.post_json(
            "organizer",
            &format!("/api/v1/competitions/{c}/{path}"),
            &json!({}),
        );
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
    }
    let listed = server.get("anonymous", &list);
    assert_eq!(listed.status, 200, "{}", listed.text);
    let documents: Vec<CertificateDocument> =
        serde_json::from_value(listed.json.clone()).expect("certificate documents");
    assert_eq!(documents.len(), 2, "{}", listed.text);
    let competition_page = server.get("anonymous", &format!("/competitions/{c}"));
    assert!(competition_page.text.contains("Result certificates"));
    for document in &documents {
        let serial = &document.body.serial;
        certificate::verify(&document.to_file_bytes(), &key, None).expect("verifies");
        let file = server.get("anonymous", &format!("/api/v1/certificates/{serial}"));
        assert_eq!(file.status, 200, "{}", file.text);
        assert_eq!(file.text.as_bytes(), document.to_file_bytes().as_slice());
        assert!(
            competition_page
                .text
                .contains(&format!("/certificates/{serial}"))
        );
        let page = server.get("anonymous", &format!("/certificates/{serial}"));
        assert!(
            page.text.contains("Competition result certificate"),
            "{}",
            page.text
        );
    }
}

#[test]
fn routes_no_cast_role_may_call_work_for_the_right_account() {
    let mut server = TestServer::start();
    // Apply: an account without an organization.
    let register = server.post_json(
        "anonymous",
        "/api/v1/accounts",
        &json!({ "email": "new@team-new.test", "display_name": "New", "password": world::PASSWORD, "role": "team_member" }),
    );
    assert_eq!(
        register.status, 201,
        "anonymous POST /api/v1/accounts: {}",
        register.text
    );
    let login = server.post_json(
        "anonymous",
        "/api/v1/auth/login",
        &json!({ "email": "new@team-new.test", "password": world::PASSWORD }),
    );
    server.tokens.insert(
        "newcomer",
        login.json["token"].as_str().expect("token").to_owned(),
    );
    let applied = server.post_json(
        "newcomer",
        "/api/v1/applications",
        &json!({ "name": "Team New", "statement": "hello" }),
    );
    assert_eq!(
        applied.status, 201,
        "newcomer POST /api/v1/applications: {}",
        applied.text
    );
    let again = server.post_json(
        "newcomer",
        "/api/v1/applications",
        &json!({ "name": "Team Newer", "statement": "hello" }),
    );
    assert_eq!(
        again.status, 403,
        "newcomer POST /api/v1/applications a second time: {}",
        again.text
    );
    // Analyses: a team with the dp_aggregates tier.
    let token = server.rt.block_on(async {
        world::extra_team(
            &server.world.arena,
            &server.cast,
            "Team Z",
            Tier::DpAggregates,
        )
        .await;
        world::sign_in(&server.world.arena, "member@team-z.test")
            .await
            .1
    });
    server.tokens.insert("team_z", token);
    let path = format!(
        "/api/v1/competitions/{}/analyses",
        server.cast.competition.0
    );
    let spec = json!({ "bounds": [[0.0, 1.0]], "epsilon": 0.1 }).to_string();
    let module = world::module(51);
    let (content_type, body) = multipart(&[
        ("spec", None, spec.as_bytes()),
        ("module", Some("a.wasm"), &module),
    ]);
    let answer = server.call("team_z", "POST", &path, &content_type, body.clone(), None);
    assert_eq!(answer.status, 201, "team_z POST {path}: {}", answer.text);
    let answer = server.call("team_x", "POST", &path, &content_type, body, None);
    assert_eq!(
        answer.status, 403,
        "team_x (real_data tier) POST {path}: {}",
        answer.text
    );
}

#[test]
fn the_api_ignores_the_session_cookie_on_posts_and_forms_need_the_csrf_token() {
    let server = TestServer::start();
    let (cookie, session) = session_cookie(&server, "hospital_a");
    // The cookie is a valid session: GETs of the API accept it...
    let me = server.get_with_cookie("/api/v1/me", &cookie);
    assert_eq!(
        me.status, 200,
        "hospital_a (cookie) GET /api/v1/me: {}",
        me.text
    );
    // ...but a state-changing API call with only the cookie is anonymous.
    let body =
        serde_json::to_vec(&json!({ "slug": "via-cookie", "title": "Via cookie" })).expect("json");
    let post = server.call(
        "anonymous",
        "POST",
        "/api/v1/datasets",
        "application/json",
        body,
        Some(&cookie),
    );
    assert_eq!(
        post.status, 401,
        "hospital_a (cookie only) POST /api/v1/datasets: {}",
        post.text
    );
    let tokens = server.call(
        "anonymous",
        "POST",
        "/api/v1/auth/tokens",
        "application/json",
        br#"{"name":"x"}"#.to_vec(),
        Some(&cookie),
    );
    assert_eq!(
        tokens.status, 401,
        "hospital_a (cookie only) POST /api/v1/auth/tokens: {}",
        tokens.text
    );
    // A body a cross-site form could send (no JSON): a submission with a team's cookie.
    let (team_cookie, _) = session_cookie(&server, "team_x");
    let path = format!(
        "/api/v1/competitions/{}/submissions",
        server.cast.competition.0
    );
    let forged = server.call(
        "anonymous",
        "POST",
        &path,
        "text/plain",
        world::module(61),
        Some(&team_cookie),
    );
    assert_eq!(
        forged.status, 401,
        "team_x (cookie only) POST {path}: {}",
        forged.text
    );
    let listed = server.get("team_x", &path);
    assert_eq!(
        listed.json.as_array().map(Vec::len),
        Some(0),
        "team_x GET {path}: the cookie-only post submitted: {}",
        listed.text
    );

    // The page form: a wrong or missing csrf is 403, the session's own is accepted.
    let csrf = medarena_web::auth::csrf_token(&session);
    let page = server.get_with_cookie("/datasets", &cookie);
    assert!(
        page.text.contains(&csrf),
        "hospital_a GET /datasets: the form lacks the session's csrf token"
    );
    let other_session = session_cookie(&server, "hospital_b").1;
    for (label, token) in [
        ("a wrong", "0".repeat(csrf.len())),
        (
            "another session's",
            medarena_web::auth::csrf_token(&other_session),
        ),
        ("an empty", String::new()),
    ] {
        let answer = post_form(
            &server,
            "/datasets",
            &[
                ("csrf", &token),
                ("slug", "via-form"),
                ("title", "Via form"),
            ],
            Some(&cookie),
        );
        assert_eq!(
            answer.status, 403,
            "hospital_a POST /datasets with {label} csrf: {}",
            answer.text
        );
    }
    let datasets = server.get("anonymous", "/api/v1/datasets");
    assert!(
        !datasets.text.contains("via-cookie") && !datasets.text.contains("via-form"),
        "GET /api/v1/datasets: a refused post created a dataset: {}",
        datasets.text
    );
    let answer = post_form(
        &server,
        "/datasets",
        &[("csrf", &csrf), ("slug", "via-form"), ("title", "Via form")],
        Some(&cookie),
    );
    assert_eq!(
        answer.status, 303,
        "hospital_a POST /datasets with the right csrf: {}",
        answer.text
    );
    let datasets = server.get("anonymous", "/api/v1/datasets");
    assert!(
        datasets.text.contains("via-form"),
        "GET /api/v1/datasets: the accepted form created nothing"
    );
}

#[test]
fn security_headers_on_pages_and_api() {
    let server = TestServer::start();
    let c = server.cast.competition.0;
    let competition_page = format!("/competitions/{c}");
    let cases: [(&str, &str, u16); 6] = [
        ("anonymous", "/", 200),
        ("anonymous", "/login", 200),
        ("anonymous", &competition_page, 200),
        ("team_x", "/api/v1/competitions", 200),
        ("anonymous", "/api/v1/me", 401),
        ("team_y", "/api/v1/no-such-route", 404),
    ];
    for (role, path, status) in cases {
        let answer = server.get(role, path);
        assert_eq!(answer.status, status, "{role} GET {path}: {}", answer.text);
        let csp = answer.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{role} GET {path}: Content-Security-Policy `{csp}`"
        );
        assert_eq!(
            answer.header("x-frame-options"),
            Some("DENY"),
            "{role} GET {path}: X-Frame-Options"
        );
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{role} GET {path}: X-Content-Type-Options"
        );
    }
}

#[test]
fn the_openapi_document_lists_the_same_routes_and_metrics_count_requests() {
    let server = TestServer::start();
    let doc = server.get("anonymous", "/api/openapi.json");
    assert_eq!(
        doc.status, 200,
        "anonymous GET /api/openapi.json: {}",
        doc.text
    );
    let mut served = BTreeSet::new();
    for (path, item) in doc.json["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            served.insert((method.clone(), path.clone()));
        }
    }
    let documented: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|o| (o.method.to_owned(), o.path.to_owned()))
        .collect();
    assert_eq!(
        served, documented,
        "anonymous GET /api/openapi.json: paths differ from OPERATIONS"
    );
    // Every documented route is routed (the fallback's 404 says "no such page or endpoint").
    for op in OPERATIONS {
        let path = op
            .path
            .replace("{id}", "999999")
            .replace("{org}", "999999")
            .replace("{code}", "0");
        let answer = server.call(
            "anonymous",
            &op.method.to_uppercase(),
            &path,
            "application/json",
            Vec::new(),
            None,
        );
        assert!(
            !(answer.status == 404 && answer.text.contains("no such page or endpoint"))
                && answer.status != 405,
            "anonymous {} {path}: not routed ({}): {}",
            op.method,
            answer.status,
            answer.text
        );
    }
    // Metrics follow what real runs do (queue states, latencies): operators only, by the
    // metrics token or an organizer's credentials.
    for role in ROLES {
        let answer = server.get(role, "/metrics");
        let expected = match role {
            "organizer" => 200,
            "anonymous" => 401,
            _ => 403,
        };
        assert_eq!(
            answer.status, expected,
            "{role} GET /metrics: {}",
            answer.text
        );
    }
    let metrics = server.get_with_bearer("/metrics", common::METRICS_TOKEN);
    assert_eq!(
        metrics.status, 200,
        "GET /metrics with the operators' token: {}",
        metrics.text
    );
    assert!(
        metrics.text.contains("medarena_http_requests_total"),
        "GET /metrics with the operators' token: {}",
        metrics.text
    );
    let wrong = server.get_with_bearer("/metrics", "not-the-token");
    assert_eq!(
        wrong.status, 401,
        "GET /metrics with a wrong token: {}",
        wrong.text
    );
    let health = server.get("anonymous", "/healthz");
    assert_eq!(
        (health.status, health.text.as_str()),
        (200, "ok"),
        "anonymous GET /healthz"
    );
}

#[test]
fn the_team_page_lists_members_and_adds_a_colleague() {
    let server = TestServer::start();
    let (cookie, token) = session_cookie(&server, "team_x");
    let page = server.get_with_cookie("/team", &cookie);
    assert_eq!(page.status, 200, "team_x GET /team: {}", page.text);
    assert!(
        page.text.contains("Team X") && page.text.contains("x@team-x.test"),
        "team_x GET /team: {}",
        page.text
    );
    assert!(!page.text.contains("colleague@team-x.test"));

    let registered = server.post_json(
        "anonymous",
        "/api/v1/accounts",
        &json!({ "email": "colleague@team-x.test", "display_name": "Colleague",
                 "password": world::PASSWORD, "role": "team_member" }),
    );
    assert_eq!(registered.status, 201, "{}", registered.text);
    let add = |csrf: &str| {
        post_form(
            &server,
            "/team/members",
            &[("csrf", csrf), ("email", "colleague@team-x.test")],
            Some(&cookie),
        )
    };
    assert_eq!(
        add("forged").status,
        403,
        "team_x POST /team/members with a wrong csrf"
    );
    let added = add(&medarena_web::auth::csrf_token(&token));
    assert_eq!(
        added.status, 303,
        "team_x POST /team/members: {}",
        added.text
    );
    let page = server.get_with_cookie("/team", &cookie);
    assert!(
        page.text.contains("colleague@team-x.test"),
        "the colleague is listed: {}",
        page.text
    );

    let (hospital_cookie, _) = session_cookie(&server, "hospital_a");
    let page = server.get_with_cookie("/team", &hospital_cookie);
    assert!(
        page.text.contains("belong to no team"),
        "hospital_a GET /team: {}",
        page.text
    );
}

#[test]
fn pages_link_uploads_and_submissions_to_their_receipts() {
    let server = TestServer::start();
    let submission = submit(&server, "team_x", 901);
    server.drain();
    let (cookie, _) = session_cookie(&server, "team_x");
    let path = format!("/competitions/{}/submissions", server.cast.competition.0);
    let page = server.get_with_cookie(&path, &cookie);
    assert_eq!(page.status, 200, "team_x GET {path}: {}", page.text);
    let receipts = server.get(
        "team_x",
        &format!("/api/v1/submissions/{submission}/receipts"),
    );
    let code = receipts
        .json
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["event"]["type"] == "submission_received")
        .and_then(|e| e["evidence"].as_str())
        .unwrap_or_else(|| {
            panic!(
                "team_x receipts of submission {submission}: {}",
                receipts.text
            )
        })
        .to_owned();
    assert!(
        page.text.contains(&format!("/ledger?code={code}")),
        "team_x GET {path} links the receipt {code}"
    );

    let (cookie, _) = session_cookie(&server, "hospital_a");
    let path = format!("/datasets/{}", server.cast.dataset.0);
    let page = server.get_with_cookie(&path, &cookie);
    assert_eq!(page.status, 200, "hospital_a GET {path}: {}", page.text);
    assert_eq!(
        page.text.matches("class=\"receipt\"").count(),
        1,
        "hospital_a sees the receipt of its own upload only: {}",
        page.text
    );
}

#[test]
fn malformed_requests_get_json_errors_naming_what_is_wrong() {
    let server = TestServer::start();
    // (method, path, content type, body, expected status, what the message names)
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        &'static [u8],
        u16,
        &'static str,
    );
    let cases: [Case; 5] = [
        (
            "POST",
            "/api/v1/auth/login",
            "application/json",
            b"{\"email\": ",
            400,
            "JSON body",
        ),
        (
            "POST",
            "/api/v1/auth/login",
            "application/json",
            b"{\"email\": \"a@b.c\"}",
            422,
            "password",
        ),
        (
            "POST",
            "/api/v1/auth/login",
            "text/plain",
            b"{}",
            415,
            "JSON body",
        ),
        (
            "GET",
            "/api/v1/submissions/not-a-number",
            "application/json",
            b"",
            400,
            "path",
        ),
        (
            "GET",
            "/api/ledger/consistency?from=x&to=1",
            "application/json",
            b"",
            400,
            "query string",
        ),
    ];
    for (method, path, content_type, body, status, names) in cases {
        let answer = server.call("organizer", method, path, content_type, body.to_vec(), None);
        assert_eq!(
            answer.status, status,
            "organizer {method} {path}: {}",
            answer.text
        );
        let message = answer.json["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(
            answer.json["error"]["kind"], "bad_request",
            "organizer {method} {path}: {}",
            answer.text
        );
        assert!(
            message.contains(names),
            "organizer {method} {path}: the message names `{names}`: {message}"
        );
    }
}

#[test]
fn repeated_wrong_passwords_lock_one_account_for_a_while() {
    let server = TestServer::start();
    let attempt = |email: &str, password: &str| {
        server.post_json(
            "anonymous",
            "/api/v1/auth/login",
            &json!({ "email": email, "password": password }),
        )
    };
    for n in 1..=5 {
        let answer = attempt("x@team-x.test", "not the password");
        assert_eq!(answer.status, 401, "wrong password {n}: {}", answer.text);
    }
    let locked = attempt("x@team-x.test", world::PASSWORD);
    assert_eq!(
        locked.status, 429,
        "the right password while locked out: {}",
        locked.text
    );
    assert_eq!(locked.json["error"]["kind"], "too_many_requests");
    let page = post_form(
        &server,
        "/login",
        &[("email", "x@team-x.test"), ("password", world::PASSWORD)],
        None,
    );
    assert_eq!(page.status, 429, "the sign-in form while locked out");
    assert!(
        page.text.contains("too many failed sign-ins"),
        "{}",
        page.text
    );
    assert_eq!(
        attempt("y@team-y.test", world::PASSWORD).status,
        200,
        "another account is not affected"
    );
}

/// The `name=value` cookie pair a response sets.
fn cookie_of(answer: &Answer, what: &str) -> String {
    answer
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("{what}: no Set-Cookie: {}", answer.text))
        .trim()
        .to_owned()
}

#[test]
fn a_newcomer_registers_applies_and_is_admitted_through_the_pages() {
    let server = TestServer::start();
    let weak = post_form(
        &server,
        "/register",
        &[
            ("email", "new@team-n.test"),
            ("display_name", "Newcomer"),
            ("password", "short"),
            ("role", "team_member"),
        ],
        None,
    );
    assert_eq!(
        weak.status, 422,
        "POST /register with a short password: {}",
        weak.text
    );
    assert!(
        weak.text.contains("password"),
        "the error names the password: {}",
        weak.text
    );
    let forged = post_form(
        &server,
        "/register",
        &[
            ("email", "boss@team-n.test"),
            ("display_name", "Boss"),
            ("password", world::PASSWORD),
            ("role", "organizer"),
        ],
        None,
    );
    assert_ne!(
        forged.status, 303,
        "nobody registers as an organizer: {}",
        forged.text
    );

    let registered = post_form(
        &server,
        "/register",
        &[
            ("email", "new@team-n.test"),
            ("display_name", "Newcomer"),
            ("password", world::PASSWORD),
            ("role", "team_member"),
        ],
        None,
    );
    assert_eq!(
        registered.status, 303,
        "POST /register: {}",
        registered.text
    );
    assert_eq!(registered.header("location"), Some("/apply"));
    let cookie = cookie_of(&registered, "POST /register");
    let token = cookie.trim_start_matches("medarena_session=").to_owned();
    let csrf = medarena_web::auth::csrf_token(&token);
    let applied = post_form(
        &server,
        "/apply",
        &[
            ("csrf", &csrf),
            ("name", "Team N"),
            ("statement", "we build risk models"),
        ],
        Some(&cookie),
    );
    assert_eq!(applied.status, 303, "POST /apply: {}", applied.text);
    let page = server.get_with_cookie("/apply", &cookie);
    assert!(
        page.text.contains("Team N") && page.text.contains("pending"),
        "GET /apply: {}",
        page.text
    );

    let pending = server.get("organizer", "/api/v1/applications?state=pending");
    let org = pending
        .json
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["name"] == "Team N")
        .and_then(|o| o["id"].as_i64())
        .unwrap_or_else(|| panic!("Team N is pending: {}", pending.text));
    let (organizer_cookie, organizer_token) = session_cookie(&server, "organizer");
    let organizer_csrf = medarena_web::auth::csrf_token(&organizer_token);
    let dashboard = server.get_with_cookie("/organizer", &organizer_cookie);
    assert!(
        dashboard.text.contains("Team N"),
        "the organizer sees the application: {}",
        dashboard.text
    );
    let approved = post_form(
        &server,
        &format!("/organizer/applications/{org}"),
        &[
            ("csrf", &organizer_csrf),
            ("decision", "approve"),
            ("tier", "real_data"),
        ],
        Some(&organizer_cookie),
    );
    assert_eq!(approved.status, 303, "approve: {}", approved.text);
    let team = server.get_with_cookie("/team", &cookie);
    assert!(
        team.text.contains("approved") && team.text.contains("real_data"),
        "GET /team after approval: {}",
        team.text
    );

    // The organizer creates a competition from a bundle through the dashboard.
    let bundle =
        world::EXAMPLE_BUNDLE.replace("slug: cardiac-event-1y", "slug: from-the-dashboard");
    let created = post_form(
        &server,
        "/organizer/competitions",
        &[("csrf", &organizer_csrf), ("bundle", &bundle)],
        Some(&organizer_cookie),
    );
    assert_eq!(
        created.status, 303,
        "create from the dashboard: {}",
        created.text
    );
    assert!(
        created
            .header("location")
            .is_some_and(|l| l.starts_with("/competitions/"))
    );
    let broken = bundle
        .replace("metric: roc_auc", "metric: 42")
        .replace("slug: from-the-dashboard", "slug: broken-one");
    let refused = post_form(
        &server,
        "/organizer/competitions",
        &[("csrf", &organizer_csrf), ("bundle", &broken)],
        Some(&organizer_cookie),
    );
    assert_eq!(refused.status, 422, "a broken bundle: {}", refused.text);
    assert!(
        refused.text.contains("metric"),
        "the error names the field: {}",
        refused.text
    );
}

#[test]
fn anonymous_form_posts_ask_to_sign_in() {
    let server = TestServer::start();
    let c = server.cast.competition.0;
    let accept = format!("/competitions/{c}/accept");
    let cases: [(&str, &[(&str, &str)]); 4] = [
        (&accept, &[("csrf", "x"), ("agreement_sha256", "00")]),
        (
            "/datasets",
            &[("csrf", "x"), ("slug", "anon"), ("title", "Anon")],
        ),
        ("/apply", &[("csrf", "x"), ("name", "Anon")]),
        ("/team/members", &[("csrf", "x"), ("email", "a@b.test")]),
    ];
    for (path, fields) in cases {
        let answer = post_form(&server, path, fields, None);
        assert_eq!(answer.status, 401, "anonymous POST {path}: {}", answer.text);
        assert!(
            answer.text.contains("href=\"/login\""),
            "anonymous POST {path} links to the sign-in page"
        );
    }
}

/// A hospital opts in through the pages: it measures (a draft on its dataset page, not on
/// the other hospital's nor the teams'), publishes, and the competition page offers the
/// development data, which the API serves as CSV naming the release.
#[test]
fn a_hospital_publishes_synthetic_data_through_the_pages() {
    let server = TestServer::start();
    let dataset = server.cast.dataset.0;
    let c = server.cast.competition.0;
    let page = format!("/datasets/{dataset}");
    let before = server.get("team_x", &format!("/competitions/{c}"));
    assert!(before.text.contains("Development data") && before.text.contains("dummy data"));

    let (cookie, token) = session_cookie(&server, "hospital_a");
    let csrf = medarena_web::auth::csrf_token(&token);
    let forged = post_form(
        &server,
        &format!("/datasets/{dataset}/synthetic"),
        &[("csrf", "forged"), ("epsilon", "1")],
        Some(&cookie),
    );
    assert_eq!(forged.status, 403, "{}", forged.text);
    let measured = post_form(
        &server,
        &format!("/datasets/{dataset}/synthetic"),
        &[("csrf", &csrf), ("epsilon", "1")],
        Some(&cookie),
    );
    assert_eq!(measured.status, 303, "{}", measured.text);
    let own = server.get_with_cookie(&page, &cookie);
    assert!(
        own.text.contains("draft") && own.text.contains("Publish"),
        "{}",
        own.text
    );
    for role in ["hospital_b", "team_x"] {
        let other = server.get(role, &page);
        assert!(
            !other.text.contains(">draft<"),
            "{role} sees no draft: {}",
            other.text
        );
    }
    let releases = server.get(
        "hospital_a",
        &format!("/api/v1/datasets/{dataset}/synthetic"),
    );
    let release = releases.json[0]["id"].as_i64().expect("a release");
    let published = post_form(
        &server,
        &format!("/synthetic/{release}/publish"),
        &[("csrf", &csrf)],
        Some(&cookie),
    );
    assert_eq!(published.status, 303, "{}", published.text);
    assert_eq!(published.header("location"), Some(page.as_str()));
    let unknown = post_form(
        &server,
        &format!("/synthetic/{release}/explode"),
        &[("csrf", &csrf)],
        Some(&cookie),
    );
    assert_eq!(unknown.status, 404, "{}", unknown.text);

    let after = server.get("team_x", &format!("/competitions/{c}"));
    assert!(
        after.text.contains("differentially private") && after.text.contains("development-data"),
        "{}",
        after.text
    );
    let csv = server.get(
        "team_x",
        &format!("/api/v1/competitions/{c}/development-data?rows=30"),
    );
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert_eq!(
        csv.header("x-medarena-synthetic-releases"),
        Some(release.to_string().as_str())
    );
    assert!(
        csv.header("content-type")
            .is_some_and(|t| t.starts_with("text/csv"))
    );
    assert_eq!(csv.text.lines().count(), 31, "{}", csv.text);
    let manifest = server.get("team_x", &format!("/api/v1/competitions/{c}/manifest"));
    assert!(
        manifest.text.contains("profile: medarena-dataset/1"),
        "{}",
        manifest.text
    );
}

/// Competition pages answer at the slug the demo prints as well as at the id.
#[test]
fn competition_pages_answer_at_their_slug() {
    let server = TestServer::start();
    let c = server.cast.competition.0;
    let by_id = server.get("anonymous", &format!("/competitions/{c}"));
    let by_slug = server.get("anonymous", "/competitions/cardiac-event-1y");
    assert_eq!(by_slug.status, 200, "{}", by_slug.text);
    assert_eq!(by_slug.text, by_id.text);
    let submissions = server.get("team_x", "/competitions/cardiac-event-1y/submissions");
    assert_eq!(submissions.status, 200, "{}", submissions.text);
    let unknown = server.get("anonymous", "/competitions/no-such-competition");
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert!(
        unknown.text.contains("no-such-competition"),
        "{}",
        unknown.text
    );
}

/// A hospital suspends its dataset from the dataset page (with a reason) and resumes it.
#[test]
fn a_hospital_suspends_and_resumes_its_dataset_through_the_page() {
    let server = TestServer::start();
    let dataset = server.cast.dataset.0;
    let page = format!("/datasets/{dataset}");
    let (cookie, token) = session_cookie(&server, "hospital_a");
    let csrf = medarena_web::auth::csrf_token(&token);
    let form = server.get_with_cookie(&page, &cookie);
    assert!(
        form.text.contains("Suspend the use of this dataset"),
        "{}",
        form.text
    );
    let suspended = post_form(
        &server,
        &format!("/datasets/{dataset}/suspension"),
        &[
            ("csrf", &csrf),
            ("suspended", "true"),
            ("reason", "ethics review"),
        ],
        Some(&cookie),
    );
    assert_eq!(suspended.status, 303, "{}", suspended.text);
    let shown = server.get("organizer", &page);
    assert!(
        shown.text.contains("Suspended by") && shown.text.contains("ethics review"),
        "{}",
        shown.text
    );
    let privacy = server.get("hospital_b", &format!("/api/v1/datasets/{dataset}/privacy"));
    assert_eq!(
        privacy.json["suspensions"][0]["reason"], "ethics review",
        "{}",
        privacy.text
    );
    let resumed = post_form(
        &server,
        &format!("/datasets/{dataset}/suspension"),
        &[("csrf", &csrf), ("suspended", "false")],
        Some(&cookie),
    );
    assert_eq!(resumed.status, 303, "{}", resumed.text);
    let privacy = server.get("hospital_a", &format!("/api/v1/datasets/{dataset}/privacy"));
    assert_eq!(
        privacy.json["suspensions"],
        serde_json::json!([]),
        "{}",
        privacy.text
    );
}

#[test]
fn parties_accept_suspend_and_read_statements_through_the_pages() {
    let server = TestServer::start();
    let c = server.cast.competition.0;
    // The organizer proposes a priced contract for team X; the pages show it to its parties.
    let proposed = server.post_json(
        "organizer",
        "/api/v1/contracts",
        &json!({
            "competition": c, "team": server.cast.team_x_org.0,
            "purposes": ["developing and testing medarena submissions"],
            "quote": { "currency": "EUR", "per_run": "1.50", "per_cpu_second": "0", "per_epsilon": "4" },
        }),
    );
    assert_eq!(proposed.status, 201, "{}", proposed.text);
    let id = proposed.json["id"].as_i64().expect("contract id");
    let digest = proposed.json["terms_sha256"]
        .as_str()
        .expect("digest")
        .to_owned();
    let page = format!("/contracts/{id}");
    let (cookie, token) = session_cookie(&server, "hospital_a");
    let csrf = medarena_web::auth::csrf_token(&token);
    let list = server.get_with_cookie("/contracts", &cookie);
    assert!(list.text.contains(&page), "{}", list.text);
    let shown = server.get_with_cookie(&page, &cookie);
    assert!(
        shown.text.contains("Accept these terms")
            && shown.text.contains("EUR 1.50 per run")
            && shown.text.contains(&digest),
        "{}",
        shown.text
    );
    // Team Y is no party: the page is refused.
    let (cookie_y, _) = session_cookie(&server, "team_y");
    assert_eq!(server.get_with_cookie(&page, &cookie_y).status, 403);
    let accepted = post_form(
        &server,
        &format!("{page}/act"),
        &[
            ("csrf", &csrf),
            ("action", "accept"),
            ("terms_sha256", &digest),
        ],
        Some(&cookie),
    );
    assert_eq!(accepted.status, 303, "{}", accepted.text);
    // A stale digest is refused with a message naming the terms.
    let (cookie_b, token_b) = session_cookie(&server, "hospital_b");
    let stale = post_form(
        &server,
        &format!("{page}/act"),
        &[
            ("csrf", &medarena_web::auth::csrf_token(&token_b)),
            ("action", "accept"),
            ("terms_sha256", &"0".repeat(64)),
        ],
        Some(&cookie_b),
    );
    assert_eq!(stale.status, 409, "{}", stale.text);
    for role in ["organizer", "hospital_b", "team_x"] {
        let answer = server.post_json(
            role,
            &format!("/api/v1/contracts/{id}/accept"),
            &json!({ "terms_sha256": digest }),
        );
        assert_eq!(answer.status, 200, "{role}: {}", answer.text);
    }
    let active = server.get_with_cookie(&page, &cookie);
    assert!(
        active.text.contains("— active") && active.text.contains("contract_state_changed"),
        "{}",
        active.text
    );
    // The hospital suspends through the page; the reason is shown to the team.
    let suspended = post_form(
        &server,
        &format!("{page}/act"),
        &[
            ("csrf", &csrf),
            ("action", "suspend"),
            ("terms_sha256", &digest),
            ("reason", "ethics review"),
        ],
        Some(&cookie),
    );
    assert_eq!(suspended.status, 303, "{}", suspended.text);
    let seen = server.get("team_x", &page);
    assert!(seen.text.contains("ethics review"), "{}", seen.text);
    // Statements: a page for every party, CSV and JSON for the same lines.
    let submitted = submit(&server, "team_x", 7);
    server.drain();
    server.world.clock.advance(world::RELEASE_WAIT);
    server
        .rt
        .block_on(server.world.arena.deliver_audit_events());
    let status = server.get("team_x", &format!("/api/v1/submissions/{submitted}"));
    assert_eq!(status.json["status"], "completed", "{}", status.text);
    let statement = server.get_with_cookie("/statement", &cookie);
    assert!(
        statement.text.contains("Statement of metered use") && statement.text.contains("receipt"),
        "{}",
        statement.text
    );
    let json_statement = server.get("hospital_a", "/api/v1/statement");
    let csv = server.get("team_x", "/api/v1/statement.csv");
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert_eq!(
        csv.text.lines().count(),
        1 + json_statement.json["lines"].as_array().map_or(0, Vec::len),
        "{}",
        csv.text
    );
    let operator = server.get("organizer", "/statement");
    assert!(operator.text.contains("CPU measured"), "{}", operator.text);
    let team_page = server.get("team_x", "/statement");
    assert!(
        !team_page.text.contains("CPU measured"),
        "{}",
        team_page.text
    );
}

#[test]
fn the_dataset_review_is_a_checklist_and_a_refusal_names_what_failed() {
    let server = TestServer::start();
    let dataset = create_dataset(&server, "hospital_a", "checklist-review");
    let up = upload(
        &server,
        "hospital_a",
        dataset,
        "a.csv",
        &csv_with("checklist"),
    );
    assert_eq!(up.status, 201, "{}", up.text);
    let (cookie, token) = session_cookie(&server, "organizer");
    let csrf = medarena_web::auth::csrf_token(&token);
    let organizer = server.get_with_cookie("/organizer", &cookie);
    assert!(
        organizer.text.contains("ethics_approval") && organizer.text.contains("permitted_uses"),
        "the checklist form: {}",
        organizer.text
    );
    let mut fields: Vec<(String, String)> = vec![("csrf".into(), csrf.clone())];
    for item in medarena_arena::ReviewItem::ALL {
        if *item != medarena_arena::ReviewItem::Consent {
            fields.push((format!("pass_{}", item.as_str()), "true".into()));
        }
        fields.push((
            format!("note_{}", item.as_str()),
            format!("{} checked", item.as_str()),
        ));
    }
    let fields_with = |approve: &str| {
        let mut all = fields.clone();
        all.push(("approve".into(), approve.into()));
        all
    };
    let post = |all: Vec<(String, String)>| {
        let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        post_form(
            &server,
            &format!("/organizer/datasets/{dataset}"),
            &pairs,
            Some(&cookie),
        )
    };
    // Consent fails: approval is refused, naming it.
    let refused = post(fields_with("true"));
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("consent"), "{}", refused.text);
    // The refusal is recorded with the checklist; the hospital reads which item failed.
    let rejected = post(fields_with("false"));
    assert_eq!(rejected.status, 303, "{}", rejected.text);
    let seen = server.get("hospital_a", &format!("/datasets/{dataset}"));
    assert!(
        seen.text.contains("Legality and compliance review")
            && seen.text.contains("consent checked")
            && seen.text.contains("fails"),
        "{}",
        seen.text
    );
    let json = server.get("hospital_a", &format!("/api/v1/datasets/{dataset}"));
    assert_eq!(json.json["dataset"]["state"], "rejected", "{}", json.text);
    assert_eq!(json.json["dataset"]["review_checklist"][2]["passed"], false);
    // Through the API, a review without the whole checklist names what is missing.
    let other = create_dataset(&server, "hospital_a", "checklist-api");
    let up = upload(
        &server,
        "hospital_a",
        other,
        "a.csv",
        &csv_with("checklist-api"),
    );
    assert_eq!(up.status, 201, "{}", up.text);
    let partial = server.post_json(
        "organizer",
        &format!("/api/v1/datasets/{other}/review"),
        &json!({ "approve": true, "checklist": [{ "item": "consent", "passed": true, "note": "ok" }] }),
    );
    assert_eq!(partial.status, 422, "{}", partial.text);
    assert!(partial.text.contains("ethics_approval"), "{}", partial.text);
}
