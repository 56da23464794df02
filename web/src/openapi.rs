//! The OpenAPI 3.1 document, served at `/api/openapi.json`.
//!
//! Written as one table of routes rather than derived by annotations (utoipa): a table
//! that a test checks against the router (every route documented, every documented route
//! served) keeps the document honest with little code. Response bodies are the JSON
//! Schemas that schemars derives from the very types the handlers serialize
//! ([`answer`]); request bodies are described in the summaries.

use axum::Json;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

/// One documented operation.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    /// Relative to the server root, with `{param}` segments as in the router.
    pub path: &'static str,
    pub summary: &'static str,
    /// Who may call it (the role matrix; enforced by the arena, documented here).
    pub who: &'static str,
    /// The request body: `json`, `yaml`, `wasm`, `multipart` or empty.
    pub body: &'static str,
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    who: &'static str,
    body: &'static str,
) -> Operation {
    Operation {
        method,
        path,
        summary,
        who,
        body,
    }
}

pub const OPERATIONS: &[Operation] = &[
    op(
        "post",
        "/api/v1/auth/login",
        "Sign in with e-mail and password; returns a session token",
        "anyone",
        "json",
    ),
    op(
        "post",
        "/api/v1/auth/logout",
        "Revoke the bearer token of this request",
        "signed in",
        "",
    ),
    op(
        "get",
        "/api/v1/auth/tokens",
        "Your sessions and API tokens",
        "signed in",
        "",
    ),
    op(
        "post",
        "/api/v1/auth/tokens",
        "Create a named API token {name, days?}",
        "signed in",
        "json",
    ),
    op(
        "get",
        "/api/v1/me",
        "The signed-in account and its organization",
        "signed in",
        "",
    ),
    op(
        "post",
        "/api/v1/accounts",
        "Register as hospital staff or team member {email, display_name, password, role}",
        "anyone",
        "json",
    ),
    op(
        "post",
        "/api/v1/admin/accounts",
        "Create an account of any role",
        "organizer",
        "json",
    ),
    op(
        "get",
        "/api/v1/applications",
        "Admission applications (?state=pending|approved|rejected)",
        "organizer",
        "",
    ),
    op(
        "post",
        "/api/v1/applications",
        "Apply as a hospital or a team {name, statement}",
        "hospital, team member without organization",
        "json",
    ),
    op(
        "post",
        "/api/v1/applications/{org}/review",
        "Approve (teams with a tier) or reject {decision: approve|reject, tier?, note?}",
        "organizer",
        "json",
    ),
    op(
        "get",
        "/api/v1/teams/{org}",
        "A team and its members",
        "organizer, its members",
        "",
    ),
    op(
        "post",
        "/api/v1/teams/{org}/members",
        "Add an existing team-member account to the team {email}",
        "organizer, its members",
        "json",
    ),
    op(
        "get",
        "/api/v1/competitions",
        "All competitions",
        "anyone",
        "",
    ),
    op(
        "post",
        "/api/v1/competitions",
        "Create a competition from a bundle (YAML body)",
        "organizer",
        "yaml",
    ),
    op(
        "get",
        "/api/v1/competitions/{id}",
        "A competition and its bundle",
        "anyone",
        "",
    ),
    op(
        "get",
        "/api/v1/competitions/{id}/agreement",
        "The data-use agreement, its SHA-256 and your team's acceptance",
        "anyone",
        "",
    ),
    op(
        "post",
        "/api/v1/competitions/{id}/agreement",
        "Accept the agreement for your team {agreement_sha256}",
        "approved team member",
        "json",
    ),
    op(
        "post",
        "/api/v1/competitions/{id}/close",
        "Close the competition to submissions",
        "organizer",
        "",
    ),
    op(
        "post",
        "/api/v1/competitions/{id}/publish",
        "Publish (reveal) the private leaderboard",
        "organizer",
        "",
    ),
    op(
        "get",
        "/api/v1/competitions/{id}/leaderboard",
        "Leaderboard (?kind=public|private; private once published)",
        "anyone; private: organizer or after publication",
        "",
    ),
    op(
        "get",
        "/api/v1/competitions/{id}/history",
        "Released public scores over time",
        "anyone",
        "",
    ),
    op(
        "get",
        "/api/v1/competitions/{id}/exact-scores",
        "Exact public and private scores of every scored run",
        "organizer",
        "",
    ),
    op(
        "get",
        "/api/v1/competitions/{id}/compare",
        "Paired bootstrap between the top entries (?top=2..10)",
        "organizer",
        "",
    ),
    op(
        "get",
        "/api/v1/competitions/{id}/submissions",
        "Submissions (?team=); teams see their own",
        "organizer, team members",
        "",
    ),
    op(
        "post",
        "/api/v1/competitions/{id}/submissions",
        "Submit a WebAssembly module (body: the .wasm bytes)",
        "approved team member who accepted the agreement",
        "wasm",
    ),
    op(
        "post",
        "/api/v1/competitions/{id}/analyses",
        "Request a DP aggregate: multipart `spec` (JSON) and `module`",
        "team member, tier dp_aggregates",
        "multipart",
    ),
    op(
        "get",
        "/api/v1/competitions/{id}/budget",
        "A team's privacy budget per dataset (?team=)",
        "organizer, the team",
        "",
    ),
    op(
        "get",
        "/api/v1/competitions/{id}/site-scores",
        "Each final entry's score on the caller's own hospital's patients, released with noise at publication",
        "contributing hospital (its own), organizer (all)",
        "",
    ),
    op(
        "get",
        "/api/v1/competitions/{id}/development-data",
        "Development data as CSV (?rows=&seed=): drawn from the hospitals' published synthetic releases, else dummy data; with the defaults, the table dummy runs use",
        "organizer, admitted team, admitted hospital",
        "",
    ),
    op(
        "get",
        "/api/v1/competitions/{id}/manifest",
        "The manifest of the competition's data (as uploaded): the schema development data follows",
        "organizer, admitted team, admitted hospital",
        "",
    ),
    op(
        "get",
        "/api/v1/competitions/{id}/privacy",
        "The competition's release terms: level, blocks, ε, noise and its 95% interval, release delay",
        "anyone",
        "",
    ),
    op(
        "get",
        "/api/v1/submissions/{id}",
        "A submission's status and released scores (a real run shows as queued until its release time)",
        "organizer, its team",
        "",
    ),
    op(
        "get",
        "/api/v1/submissions/{id}/dummy-report",
        "The dummy-data run: score, failure detail, guest output",
        "organizer, its team",
        "",
    ),
    op(
        "get",
        "/api/v1/submissions/{id}/module",
        "The submitted module",
        "its team",
        "",
    ),
    op(
        "get",
        "/api/v1/submissions/{id}/receipts",
        "The submission's events with their ledger evidence codes",
        "organizer, its team",
        "",
    ),
    op(
        "get",
        "/api/v1/datasets",
        "The dataset catalog",
        "anyone",
        "",
    ),
    op(
        "post",
        "/api/v1/datasets",
        "Open a dataset for contributions {slug, title, description}",
        "approved hospital, organizer",
        "json",
    ),
    op(
        "get",
        "/api/v1/datasets/{id}",
        "A dataset with the contributions you may see",
        "anyone (contributions: organizer, contributing hospital)",
        "",
    ),
    op(
        "post",
        "/api/v1/datasets/{id}/contributions",
        "Upload a table: multipart `data` (CSV, Parquet, Arrow IPC) and optional `manifest`; 422 with the validation report when refused",
        "approved hospital",
        "multipart",
    ),
    op(
        "post",
        "/api/v1/datasets/{id}/review",
        "The legality and compliance review: {approve, checklist: [{item, passed, note}] for every item (ethics_approval, legal_basis, consent, deidentification, permitted_uses), note?}; approval only when every item passes",
        "organizer",
        "json",
    ),
    op(
        "get",
        "/api/v1/datasets/{id}/usage",
        "Which runs used the dataset and the ε they spent",
        "organizer, contributing hospital",
        "",
    ),
    op(
        "get",
        "/api/v1/datasets/{id}/privacy",
        "The dataset's privacy terms as they apply (the strictest of its hospitals') and the ε spent",
        "organizer, contributing hospital",
        "",
    ),
    op(
        "put",
        "/api/v1/datasets/{id}/privacy",
        "Set your hospital's terms for the dataset {min_level: row|label, per_team_epsilon, total_epsilon}",
        "contributing hospital",
        "json",
    ),
    op(
        "post",
        "/api/v1/datasets/{id}/suspend",
        "Stop the dataset's use in real-data runs for your hospital {reason} (shown to the teams whose runs it stops)",
        "contributing hospital",
        "json",
    ),
    op(
        "post",
        "/api/v1/datasets/{id}/resume",
        "Lift your hospital's suspension of the dataset",
        "contributing hospital",
        "",
    ),
    op(
        "get",
        "/api/v1/datasets/{id}/synthetic",
        "The dataset's synthetic releases: published and withdrawn ones; drafts to their hospital and organizers",
        "organizer, admitted team, admitted hospital",
        "",
    ),
    op(
        "post",
        "/api/v1/datasets/{id}/synthetic",
        "Measure your hospital's rows for synthetic data {epsilon}: a draft, its ε charged on the dataset",
        "contributing hospital",
        "json",
    ),
    op(
        "post",
        "/api/v1/synthetic/{id}/{action}",
        "Publish, discard or withdraw your hospital's synthetic release (action: publish | discard | withdraw)",
        "the releasing hospital",
        "",
    ),
    op(
        "get",
        "/api/v1/contracts",
        "Contracts you may see (?competition=): organizers and auditors all, parties theirs, admitted teams open offers",
        "signed in",
        "",
    ),
    op(
        "post",
        "/api/v1/contracts",
        "Propose a contract {competition, datasets?, team?, auditor?, purposes?, delivery?, min_level?, per_team_epsilon?, quote?, valid_days?}; omitted terms default to the competition's",
        "organizer",
        "json",
    ),
    op(
        "get",
        "/api/v1/contracts/{id}",
        "A contract: terms, parties, acceptances, who is awaited, its ledgered history",
        "organizer, auditor, its parties",
        "",
    ),
    op(
        "post",
        "/api/v1/contracts/{id}/accept",
        "Accept the terms as your party {terms_sha256}; active once every party accepted",
        "its parties",
        "json",
    ),
    op(
        "post",
        "/api/v1/contracts/{id}/suspend",
        "Suspend it {reason}: no new real-data run starts under it until you resume it",
        "organizer, its hospitals",
        "json",
    ),
    op(
        "post",
        "/api/v1/contracts/{id}/resume",
        "Lift your own suspension",
        "the suspending party",
        "",
    ),
    op(
        "post",
        "/api/v1/contracts/{id}/terminate",
        "End it for good {reason}",
        "organizer, its hospitals, its named team",
        "json",
    ),
    op(
        "get",
        "/api/v1/statement",
        "Your party's statement of metered use (?contract=&from=&to=, RFC 3339): lines with evidence codes, totals per currency",
        "organizer, auditor, admitted hospital or team",
        "",
    ),
    op(
        "get",
        "/api/v1/statement.csv",
        "The same statement as CSV",
        "organizer, auditor, admitted hospital or team",
        "",
    ),
    op(
        "get",
        "/api/v1/datasets/{id}/certificate",
        "The dataset's registration certificate (signed JSON, with its ledger receipt once anchored); check it with `medarena ledger verify --certificate`",
        "organizer, contributing hospital",
        "",
    ),
    op(
        "get",
        "/api/v1/competitions/{id}/certificates",
        "The result certificates of a published competition's final entries, by rank",
        "anyone once published (organizer before: none exist)",
        "",
    ),
    op(
        "get",
        "/api/v1/certificates/{serial}",
        "One certificate file by serial (reg-<dataset> or res-<competition>-<submission>)",
        "as the dataset's or the competition's certificates",
        "",
    ),
    op(
        "get",
        "/api/v1/contributions/{id}",
        "A contribution and its validation report",
        "organizer, its hospital",
        "",
    ),
    op(
        "get",
        "/api/v1/contributions/{id}/receipts",
        "The upload's events with their ledger evidence codes",
        "organizer, its hospital",
        "",
    ),
    op(
        "post",
        "/api/v1/contributions/{id}/withdraw",
        "Withdraw your hospital's upload {reason}: its data key destroyed, its bytes deleted, no run reads it again; its receipts stay",
        "its hospital",
        "json",
    ),
    op(
        "get",
        "/api/v1/audit",
        "The audit trail (?subject=submission:7, or the latest ?limit=) with evidence codes",
        "organizer, auditor",
        "",
    ),
    op(
        "get",
        "/api/v1/queue",
        "Jobs in the queue by state",
        "organizer",
        "",
    ),
    op(
        "get",
        "/api/ledger/key",
        "The ledger's verifier key (text)",
        "anyone",
        "",
    ),
    op(
        "get",
        "/api/ledger/checkpoint",
        "The latest signed checkpoint (C2SP signed note)",
        "anyone",
        "",
    ),
    op(
        "get",
        "/api/ledger/receipts/{code}",
        "The receipt of an evidence code: entry, inclusion proof, checkpoint",
        "anyone",
        "",
    ),
    op(
        "get",
        "/api/ledger/consistency",
        "Consistency proof between two tree sizes (?from=&to=)",
        "anyone",
        "",
    ),
    op(
        "get",
        "/api/ledger/entries",
        "Canonical ledger entries (?from=&limit= up to 100)",
        "anyone",
        "",
    ),
    op("get", "/api/openapi.json", "This document", "anyone", ""),
];

fn body_schema(operation: &Operation, generator: &mut SchemaGenerator) -> Option<Value> {
    let (media, schema) = match operation.body {
        "json" => (
            "application/json",
            request(operation.method, operation.path).map_or_else(
                || json!({ "type": "object" }),
                |schema| schema(generator).to_value(),
            ),
        ),
        "yaml" => ("application/yaml", json!({ "type": "string" })),
        "wasm" => (
            "application/wasm",
            json!({ "type": "string", "format": "binary" }),
        ),
        "multipart" => ("multipart/form-data", json!({ "type": "object" })),
        _ => return None,
    };
    Some(json!({ "required": true, "content": { media: { "schema": schema } } }))
}

type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

/// The JSON request body of each operation that reads one (the handler's own type).
pub fn request(method: &str, path: &str) -> Option<SchemaOf> {
    use crate::api;
    use medarena_arena as a;
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    Some(match (method, path) {
        ("post", "/auth/login") => of::<api::LoginRequest>,
        ("post", "/auth/tokens") => of::<api::TokenRequest>,
        ("post", "/accounts") | ("post", "/admin/accounts") => of::<a::Registration>,
        ("post", "/applications") => of::<api::ApplyRequest>,
        ("post", "/applications/{org}/review") => of::<a::AdmissionDecision>,
        ("post", "/teams/{org}/members") => of::<api::MemberRequest>,
        ("post", "/competitions/{id}/agreement") => of::<api::AcceptRequest>,
        ("post", "/datasets") => of::<api::DatasetRequest>,
        ("post", "/datasets/{id}/review") => of::<a::DatasetReview>,
        ("put", "/datasets/{id}/privacy") => of::<a::DatasetPrivacyTerms>,
        ("post", "/datasets/{id}/synthetic") => of::<api::SyntheticRequest>,
        ("post", "/datasets/{id}/suspend")
        | ("post", "/contributions/{id}/withdraw")
        | ("post", "/contracts/{id}/suspend")
        | ("post", "/contracts/{id}/terminate") => of::<api::ReasonRequest>,
        ("post", "/contracts") => of::<a::ContractProposal>,
        ("post", "/contracts/{id}/accept") => of::<crate::contract_api::AcceptContractRequest>,
        _ => return None,
    })
}

/// The query string of each operation that reads one (the handler's own type).
pub fn query(method: &str, path: &str) -> Option<SchemaOf> {
    use crate::{api, ledger_api};
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    Some(match (method, path) {
        ("get", "/applications") => of::<api::StateQuery>,
        ("get", "/competitions/{id}/leaderboard") => of::<api::LeaderboardQuery>,
        ("get", "/competitions/{id}/compare") => of::<api::CompareQuery>,
        ("get", "/competitions/{id}/submissions") | ("get", "/competitions/{id}/budget") => {
            of::<api::TeamQuery>
        }
        ("get", "/competitions/{id}/development-data") => of::<api::DevelopmentQuery>,
        ("get", "/audit") => of::<api::AuditQuery>,
        ("get", "/contracts") => of::<crate::contract_api::ContractsQuery>,
        ("get", "/statement") | ("get", "/statement.csv") => {
            of::<crate::contract_api::StatementQuery>
        }
        ("get", "/api/ledger/consistency") => of::<ledger_api::ConsistencyQuery>,
        ("get", "/api/ledger/entries") => of::<ledger_api::EntriesQuery>,
        _ => return None,
    })
}

/// A path parameter's schema, by its name.
fn path_parameter(name: &str) -> Value {
    match name {
        "id" | "org" => json!({ "type": "integer", "format": "int64" }),
        "action" => json!({ "type": "string", "enum": ["publish", "discard", "withdraw"] }),
        "serial" => json!({
            "type": "string",
            "pattern": medarena_arena::certificate::SERIAL_PATTERN,
        }),
        // An evidence code as printed: 53 Crockford base32 symbols in dashed groups of 5
        // (the last one a check symbol, which a schema cannot express: a code that fails
        // it names no receipt, 404).
        "code" => json!({
            "type": "string",
            "pattern": "^([0-9A-HJKMNP-TV-Z]{5}-){10}[0-9A-HJKMNP-TV-Z]{3}$",
        }),
        _ => json!({ "type": "string" }),
    }
}

/// A query struct's fields as query parameters: its definition's properties (a missing
/// value is how a query string says "none", so `null` is dropped from each type).
fn query_parameters(schema: SchemaOf, generator: &mut SchemaGenerator) -> Vec<Value> {
    let reference = schema(generator).to_value();
    let definition = reference["$ref"]
        .as_str()
        .and_then(|r| r.rsplit('/').next())
        .and_then(|name| generator.definitions().get(name).cloned())
        .unwrap_or(reference);
    let required: Vec<&str> = definition["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    definition["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, property)| {
            json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": without_null(property.clone()),
            })
        })
        .collect()
}

fn without_null(mut schema: Value) -> Value {
    if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            schema["type"] = types[0].clone();
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = schema.get_mut(key).and_then(Value::as_array_mut) {
            options.retain(|o| o.get("type").is_none_or(|t| t != "null"));
            if options.len() == 1 {
                let only = options[0].clone();
                if let Some(object) = schema.as_object_mut() {
                    object.remove(key);
                }
                if let (Some(object), Some(fields)) = (schema.as_object_mut(), only.as_object()) {
                    object.extend(fields.clone());
                }
            }
        }
    }
    schema
}

/// What an operation answers on success.
#[derive(Clone, Copy)]
pub enum Answer {
    /// JSON described by a Rust type's schema (schemars).
    Json(fn(&mut SchemaGenerator) -> Schema),
    /// `text/plain` (the ledger's key and checkpoint).
    Text,
    /// Raw bytes (a submission's module).
    Wasm,
    /// `text/csv` (development data).
    Csv,
    /// JSON whose format the ledger crate documents (receipts, proofs, entries).
    LedgerJson,
    /// Nothing (204).
    Empty,
}

fn of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// The success answer of each operation; `None` for an undocumented pair (a test keeps
/// every operation covered).
pub fn answer(method: &str, path: &str) -> Option<Answer> {
    use Answer::{Csv, Empty, Json, LedgerJson, Text, Wasm};
    use medarena_arena as a;
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    Some(match (method, path) {
        ("post", "/auth/login") | ("post", "/auth/tokens") => Json(of::<crate::api::TokenResponse>),
        ("post", "/auth/logout") => Empty,
        ("get", "/auth/tokens") => Json(of::<Vec<a::Credential>>),
        ("get", "/me") => Json(of::<a::Me>),
        ("post", "/accounts") | ("post", "/admin/accounts") | ("post", "/teams/{org}/members") => {
            Json(of::<a::Account>)
        }
        ("get", "/applications") => Json(of::<Vec<a::Organization>>),
        ("post", "/applications") | ("post", "/applications/{org}/review") => {
            Json(of::<a::Organization>)
        }
        ("get", "/teams/{org}") => Json(of::<a::TeamView>),
        ("get", "/competitions") => Json(of::<Vec<a::Competition>>),
        ("post", "/competitions")
        | ("get", "/competitions/{id}")
        | ("post", "/competitions/{id}/close")
        | ("post", "/competitions/{id}/publish") => Json(of::<a::Competition>),
        ("get", "/competitions/{id}/agreement") => Json(of::<crate::api::AgreementView>),
        ("post", "/competitions/{id}/agreement") => Json(of::<a::AgreementAcceptance>),
        ("get", "/competitions/{id}/leaderboard") => Json(of::<a::Leaderboard>),
        ("get", "/competitions/{id}/history") => Json(of::<Vec<a::ScorePoint>>),
        ("get", "/competitions/{id}/exact-scores") => Json(of::<Vec<a::store::ScoredSubmission>>),
        ("get", "/competitions/{id}/compare") => Json(of::<Vec<a::EntryComparison>>),
        ("get", "/competitions/{id}/submissions") => Json(of::<Vec<a::SubmissionView>>),
        ("post", "/competitions/{id}/submissions")
        | ("post", "/competitions/{id}/analyses")
        | ("get", "/submissions/{id}") => Json(of::<a::SubmissionView>),
        ("get", "/competitions/{id}/budget") => Json(of::<Vec<a::BudgetUse>>),
        ("get", "/submissions/{id}/dummy-report") => Json(of::<Option<a::DummyRunReport>>),
        ("get", "/submissions/{id}/module") => Wasm,
        ("get", "/submissions/{id}/receipts")
        | ("get", "/contributions/{id}/receipts")
        | ("get", "/audit") => Json(of::<Vec<a::AuditRecord>>),
        ("get", "/datasets") => Json(of::<Vec<a::Dataset>>),
        ("post", "/datasets") | ("post", "/datasets/{id}/review") => Json(of::<a::Dataset>),
        ("get", "/datasets/{id}") => Json(of::<a::DatasetView>),
        ("post", "/datasets/{id}/contributions")
        | ("get", "/contributions/{id}")
        | ("post", "/contributions/{id}/withdraw") => Json(of::<a::Contribution>),
        ("get", "/datasets/{id}/usage") => Json(of::<Vec<a::store::DatasetUse>>),
        ("get", "/datasets/{id}/privacy")
        | ("put", "/datasets/{id}/privacy")
        | ("post", "/datasets/{id}/suspend")
        | ("post", "/datasets/{id}/resume") => Json(of::<a::DatasetPrivacy>),
        ("get", "/competitions/{id}/privacy") => Json(of::<Option<a::ReleaseTerms>>),
        ("get", "/competitions/{id}/site-scores") => Json(of::<Vec<a::store::SiteScoreRow>>),
        ("get", "/competitions/{id}/development-data") => Csv,
        ("get", "/competitions/{id}/manifest") => Text,
        ("get", "/datasets/{id}/synthetic") => Json(of::<Vec<a::SyntheticRelease>>),
        ("post", "/datasets/{id}/synthetic") | ("post", "/synthetic/{id}/{action}") => {
            Json(of::<a::SyntheticRelease>)
        }
        ("get", "/datasets/{id}/certificate") | ("get", "/certificates/{serial}") => {
            Json(of::<a::certificate::CertificateDocument>)
        }
        ("get", "/competitions/{id}/certificates") => {
            Json(of::<Vec<a::certificate::CertificateDocument>>)
        }
        ("get", "/queue") => Json(of::<a::QueueStats>),
        ("get", "/contracts") => Json(of::<Vec<a::contract::Contract>>),
        ("post", "/contracts")
        | ("post", "/contracts/{id}/accept")
        | ("post", "/contracts/{id}/suspend")
        | ("post", "/contracts/{id}/resume")
        | ("post", "/contracts/{id}/terminate") => Json(of::<a::contract::Contract>),
        ("get", "/contracts/{id}") => Json(of::<a::ContractView>),
        ("get", "/statement") => Json(of::<a::Statement>),
        ("get", "/statement.csv") => Csv,
        ("get", "/api/ledger/key") | ("get", "/api/ledger/checkpoint") => Text,
        ("get", "/api/ledger/receipts/{code}")
        | ("get", "/api/ledger/consistency")
        | ("get", "/api/ledger/entries")
        | ("get", "/api/openapi.json") => LedgerJson,
        _ => return None,
    })
}

fn success(answer: Option<Answer>, generator: &mut SchemaGenerator) -> Value {
    let content = |media: &str, schema: Value| json!({ media: { "schema": schema } });
    match answer {
        Some(Answer::Json(schema)) => json!({
            "description": "Success (201 when something was created)",
            "content": content("application/json", schema(generator).to_value()),
        }),
        Some(Answer::Text) => json!({
            "description": "Success",
            "content": content("text/plain", json!({ "type": "string" })),
        }),
        Some(Answer::Wasm) => json!({
            "description": "The module",
            "content": content("application/wasm", json!({ "type": "string", "format": "binary" })),
        }),
        Some(Answer::Csv) => json!({
            "description": "A table in CSV, with a header row",
            "content": content("text/csv", json!({ "type": "string" })),
        }),
        Some(Answer::LedgerJson) => json!({
            "description": "JSON in the formats documented by the medarena-ledger crate (receipts, consistency proofs, entries)",
            "content": content("application/json", json!({ "type": "object" })),
        }),
        Some(Answer::Empty) => json!({ "description": "Done (204)" }),
        None => json!({ "description": "Success" }),
    }
}

/// The status key of an operation's success: 204 for an empty answer, else any 2XX (a
/// creation answers 201, a read 200).
fn success_status(answer: Option<Answer>) -> &'static str {
    match answer {
        Some(Answer::Empty) => "204",
        _ => "2XX",
    }
}

/// The document.
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|settings| settings.definitions_path = "/components/schemas".into())
        .into_generator();
    let mut paths = Map::new();
    for operation in OPERATIONS {
        let mut parameters: Vec<Value> = operation
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": path_parameter(name) }))
            .collect();
        if let Some(schema) = query(operation.method, operation.path) {
            parameters.extend(query_parameters(schema, &mut generator));
        }
        let mut entry = json!({
            "summary": operation.summary,
            "description": format!("Who may call it: {}.", operation.who),
            "parameters": parameters,
            "security": [{ "bearer": [] }, {}],
            "responses": {
                success_status(answer(operation.method, operation.path)): success(answer(operation.method, operation.path), &mut generator),
                "4XX": { "description": "An error: {\"error\": {\"kind\", \"message\", \"field\"?, \"report\"?}}",
                          "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
            },
        });
        if let Some(body) = body_schema(operation, &mut generator) {
            entry["requestBody"] = body;
        }
        let item = paths
            .entry(operation.path.to_owned())
            .or_insert_with(|| json!({}));
        item[operation.method] = entry;
    }
    let mut schemas = generator.take_definitions(true);
    schemas.insert(
        "Error".to_owned(),
        json!({
            "type": "object",
            "properties": { "error": { "type": "object", "properties": {
                "kind": { "type": "string" }, "message": { "type": "string" },
                "field": { "type": "string" }, "report": { "type": "object" } } } },
        }),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "medarena API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Medical data competitions: hospital data is usable but never visible. \
                            Authenticate with `Authorization: Bearer <token>` (POST /api/v1/auth/login, then /api/v1/auth/tokens).",
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas,
        },
    })
}

pub async fn serve() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The routes the router declares, read from the sources: each `.route("path", ...)`
    /// call up to its closing parenthesis (rustfmt may spread it over several lines).
    fn declared(source: &str, prefix: &str) -> Vec<(String, String)> {
        let mut routes = Vec::new();
        let source = source
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace(".route( \"", ".route(\"");
        for (start, _) in source.match_indices(".route(\"") {
            let rest = &source[start + ".route(\"".len()..];
            let Some((path, after)) = rest.split_once('"') else {
                continue;
            };
            let mut depth = 1;
            let end = after
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(after.len(), |(i, _)| i);
            let handlers: String = after[..end]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            for method in ["get", "post", "put"] {
                let call = |sep: char| handlers.contains(&format!("{sep}{method}("));
                if call(' ') || call('.') {
                    routes.push((method.to_owned(), format!("{prefix}{path}")));
                }
            }
        }
        routes
    }

    #[test]
    fn every_api_route_is_documented_and_nothing_else() {
        let mut routes = declared(include_str!("api.rs"), "/api/v1");
        routes.extend(declared(include_str!("contract_api.rs"), "/api/v1"));
        routes.extend(declared(include_str!("ledger_api.rs"), "/api/ledger"));
        routes.push(("get".into(), "/api/openapi.json".into()));
        let mut documented: Vec<(String, String)> = OPERATIONS
            .iter()
            .map(|o| (o.method.to_owned(), o.path.to_owned()))
            .collect();
        routes.sort();
        documented.sort();
        assert_eq!(routes, documented);
        assert!(routes.len() > 40);
    }

    #[test]
    fn every_operation_documents_its_answer_with_resolvable_schemas() {
        for op in OPERATIONS {
            assert!(
                answer(op.method, op.path).is_some(),
                "{} {} has no documented answer",
                op.method,
                op.path
            );
        }
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (index, _) in text.match_indices("#/components/schemas/") {
            let name: String = text[index + "#/components/schemas/".len()..]
                .chars()
                .take_while(|c| *c != '"')
                .collect();
            assert!(
                schemas.contains_key(&name),
                "$ref to a missing schema `{name}`"
            );
        }
        let list =
            &doc["paths"]["/api/v1/competitions/{id}/submissions"]["get"]["responses"]["2XX"];
        let schema = &list["content"]["application/json"]["schema"];
        assert_eq!(schema["type"], "array", "{schema}");
        assert_eq!(
            schema["items"]["$ref"],
            "#/components/schemas/SubmissionView"
        );
        let view = &schemas["SubmissionView"];
        assert!(view["properties"]["status"].is_object(), "{view}");
        assert!(
            view["properties"]["released_public_score"].is_object(),
            "{view}"
        );
    }

    #[test]
    fn the_document_has_every_path_with_its_parameters() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let submit = &doc["paths"]["/api/v1/competitions/{id}/submissions"]["post"];
        assert_eq!(submit["parameters"][0]["name"], "id");
        assert_eq!(submit["parameters"][0]["schema"]["type"], "integer");
        assert!(submit["requestBody"]["content"]["application/wasm"].is_object());
        // Query strings are typed from the handlers' own structs, required where they are.
        let consistency = &doc["paths"]["/api/ledger/consistency"]["get"]["parameters"];
        assert_eq!(
            consistency,
            &json!([
                { "name": "from", "in": "query", "required": true, "schema": { "type": "integer", "format": "uint64", "minimum": 0 } },
                { "name": "to", "in": "query", "required": true, "schema": { "type": "integer", "format": "uint64", "minimum": 0 } },
            ])
        );
        let entries = &doc["paths"]["/api/ledger/entries"]["get"]["parameters"];
        assert_eq!(entries[0]["required"], false, "{entries}");
        assert_eq!(entries[0]["schema"]["type"], "integer", "{entries}");
        let board = &doc["paths"]["/api/v1/competitions/{id}/leaderboard"]["get"]["parameters"];
        assert_eq!(board[1]["name"], "kind", "{board}");
        assert!(board[1]["schema"]["$ref"].is_string(), "{board}");
    }

    #[test]
    fn every_json_body_is_described_by_the_handlers_type() {
        let doc = document();
        for operation in OPERATIONS.iter().filter(|o| o.body == "json") {
            assert!(
                request(operation.method, operation.path).is_some(),
                "{} {} reads JSON but documents no type",
                operation.method,
                operation.path
            );
        }
        let body = &doc["paths"]["/api/v1/datasets/{id}/synthetic"]["post"]["requestBody"];
        assert_eq!(
            body["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/SyntheticRequest",
            "{body}"
        );
    }
}
