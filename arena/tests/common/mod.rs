//! Shared set-up for the integration tests: an arena on a temporary directory with a manual
//! clock and the test doubles, and a cast of admitted hospitals and teams.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use medarena_arena::auth::PasswordHashing;
use medarena_arena::testing::{RecordingAuditSink, ScriptedExecutor, ScriptedValidator};
use medarena_arena::{
    Actor, AdmissionDecision, Arena, ArenaConfig, CompetitionId, ContractProposal, DatasetId,
    DatasetUpload, ManualClock, MasterKeySource, OrgId, QueueConfig, Registration, Role, Tier,
    Timestamp,
};

pub const EXAMPLE_BUNDLE: &str =
    include_str!("../../examples/bundles/cardiac-event/competition.yaml");
pub const PASSWORD: &str = "a long enough passphrase";
/// Longer than the release delay of any bundle the tests use.
pub const RELEASE_WAIT: Duration = Duration::from_secs(600);

pub fn at(rfc3339: &str) -> Timestamp {
    Timestamp::from_datetime(rfc3339.parse().expect("RFC 3339 time"))
}

/// Inside the example bundle's public phase.
pub fn public_phase() -> Timestamp {
    at("2026-02-15T12:00:00Z")
}

/// Inside the example bundle's development phase.
pub fn development_phase() -> Timestamp {
    at("2026-01-15T12:00:00Z")
}

/// A minimal module the scripted executor's pre-check accepts; `tag` makes it unique.
pub fn module(tag: u32) -> Vec<u8> {
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    bytes.extend_from_slice(&tag.to_le_bytes());
    bytes
}

/// Set to `postgres` to run the suite on PostgreSQL (`./scripts/test` does, a second time).
pub const TEST_STORE_ENV: &str = "MEDARENA_TEST_STORE";
pub const POSTGRES_URL_ENV: &str = "MEDARENA_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A store chosen by a benchmark for the worlds it opens next (`None`: the environment's).
static STORE_CHOICE: std::sync::Mutex<Option<&'static str>> = std::sync::Mutex::new(None);

/// Benchmarks that compare the backends in one run choose one before opening worlds.
pub fn choose_store(store: &'static str) {
    *STORE_CHOICE.lock().unwrap_or_else(|p| p.into_inner()) = Some(store);
}

/// The PostgreSQL server the suite runs on, when `MEDARENA_TEST_STORE=postgres`.
pub fn postgres_server() -> Option<String> {
    let chosen = *STORE_CHOICE.lock().unwrap_or_else(|p| p.into_inner());
    let store = match chosen {
        Some(store) => Ok(store.to_owned()),
        None => std::env::var(TEST_STORE_ENV),
    };
    match store.as_deref() {
        Ok("postgres") => Some(
            std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned()),
        ),
        Ok("sqlite") | Ok("") | Err(_) => None,
        Ok(other) => panic!("{TEST_STORE_ENV}={other}: expected sqlite or postgres"),
    }
}

/// The schema of the test whose data directory is `dir`: one per directory, so that a
/// reopened arena finds its data and parallel tests never share rows.
fn test_schema(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut hasher);
    format!("medarena_test_{:016x}", hasher.finish())
}

/// Drops the test's PostgreSQL schema when the test ends (nothing on SQLite, whose file
/// goes with the temporary directory).
pub struct TestDatabase {
    server: String,
    schema: String,
}

impl TestDatabase {
    /// A schema of the given name on `server`, dropped with this value.
    pub fn new(server: String, schema: String) -> TestDatabase {
        TestDatabase { server, schema }
    }
}

pub fn test_database(dir: &Path) -> Option<TestDatabase> {
    postgres_server().map(|server| TestDatabase {
        server,
        schema: test_schema(dir),
    })
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, schema) = (self.server.clone(), self.schema.clone());
        // Drop runs inside the test's runtime, which cannot block on itself: a thread with
        // its own runtime does the work.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&server).await?;
                sqlx::query("SET lock_timeout = '5s'")
                    .execute(&mut conn)
                    .await?;
                // The test's runtime is blocked in this drop, so its own connections may sit
                // in a transaction that will never end: end their sessions first.
                let mut last = Ok(());
                for _ in 0..5 {
                    sqlx::query(
                        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
                         JOIN pg_class c ON c.oid = l.relation \
                         JOIN pg_namespace n ON n.oid = c.relnamespace \
                         WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()",
                    )
                    .bind(&schema)
                    .fetch_all(&mut conn)
                    .await?;
                    last = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .execute(&mut conn)
                        .await
                        .map(|_| ());
                    if last.is_ok() {
                        break;
                    }
                }
                last
            })
        })
        .join();
        if let Ok(Err(err)) = dropped {
            eprintln!("dropping test schema {}: {err}", self.schema);
        }
    }
}

/// Set to `s3` to keep the suite's objects on the S3-compatible server at
/// `MEDARENA_TEST_S3_URL` (`./scripts/test` does, in its PostgreSQL pass).
pub const TEST_OBJECTS_ENV: &str = "MEDARENA_TEST_OBJECTS";
pub const S3_URL_ENV: &str = "MEDARENA_TEST_S3_URL";

pub fn test_config(dir: &Path) -> ArenaConfig {
    let mut config = ArenaConfig::new(dir);
    match std::env::var(TEST_OBJECTS_ENV).as_deref() {
        Ok("s3") => {
            let base = std::env::var(S3_URL_ENV)
                .unwrap_or_else(|_| panic!("{TEST_OBJECTS_ENV}=s3 needs {S3_URL_ENV}"));
            config.objects = Some(format!(
                "{}/{}",
                base.trim_end_matches('/'),
                test_schema(dir)
            ));
        }
        Ok("local") | Ok("") | Err(_) => {}
        Ok(other) => panic!("{TEST_OBJECTS_ENV}={other}: expected local or s3"),
    }
    if let Some(server) = postgres_server() {
        let separator = if server.contains('?') { '&' } else { '?' };
        config.database = Some(format!(
            "{server}{separator}options=-c%20search_path%3D{}",
            test_schema(dir)
        ));
    }
    config.master_key = MasterKeySource::File(dir.join("master.key"));
    config.password_hashing = PasswordHashing::insecure_fast_for_tests();
    config.queue = QueueConfig {
        concurrency: 2,
        lease: Duration::from_secs(30),
        heartbeat_every: Duration::from_millis(50),
        max_attempts: 3,
        retry_backoff: Duration::from_secs(1),
        retry_backoff_max: Duration::from_secs(10),
        poll_interval: Duration::from_millis(20),
    };
    config
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub executor: Arc<ScriptedExecutor>,
    pub validator: Arc<ScriptedValidator>,
    pub audit: Arc<RecordingAuditSink>,
    pub arena: Arena,
    /// Declared last, so dropped last: after the arena's connections.
    pub db: Option<TestDatabase>,
}

impl World {
    pub async fn new() -> World {
        Self::with_executor(ScriptedExecutor::succeeding()).await
    }

    pub async fn with_executor(executor: ScriptedExecutor) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::new(public_phase()));
        let executor = Arc::new(executor);
        let validator = Arc::new(ScriptedValidator::default());
        let audit = Arc::new(RecordingAuditSink::default());
        let arena = open_arena(
            dir.path(),
            executor.clone(),
            validator.clone(),
            audit.clone(),
            clock.clone(),
        )
        .await;
        World {
            db: test_database(dir.path()),
            dir,
            clock,
            executor,
            validator,
            audit,
            arena,
        }
    }

    /// Opens a second arena on the same data directory (another process, or a restart).
    pub async fn reopen(&self, executor: Arc<ScriptedExecutor>) -> Arena {
        open_arena(
            self.dir.path(),
            executor,
            self.validator.clone(),
            self.audit.clone(),
            self.clock.clone(),
        )
        .await
    }

    /// A submission as `actor` sees it.
    pub async fn view(
        &self,
        actor: &Actor,
        id: medarena_arena::SubmissionId,
    ) -> medarena_arena::SubmissionView {
        self.arena
            .submission(actor, id)
            .await
            .expect("submission view")
    }

    /// Runs every queued job, then moves the clock past every real run's release time (the
    /// example bundle releases results 2 minutes after a run is queued) and delivers the
    /// audit events that waited for it.
    pub async fn release(&self) -> usize {
        let ran = self.drain().await;
        self.clock.advance(RELEASE_WAIT);
        self.arena.deliver_audit_events().await;
        ran
    }

    /// Runs queued jobs on one worker until the queue has nothing claimable.
    pub async fn drain(&self) -> usize {
        let mut ran = 0;
        while self
            .arena
            .run_next_job("test-worker")
            .await
            .expect("run job")
            .is_some()
        {
            ran += 1;
            assert!(ran < 1000, "queue does not drain");
        }
        ran
    }
}

pub async fn open_arena(
    dir: &Path,
    executor: Arc<ScriptedExecutor>,
    validator: Arc<ScriptedValidator>,
    audit: Arc<RecordingAuditSink>,
    clock: Arc<ManualClock>,
) -> Arena {
    Arena::builder(test_config(dir))
        .executor(executor)
        .validator(validator)
        .audit_sink(audit)
        .clock(clock)
        .certificate_signer(test_signer(dir))
        .open()
        .await
        .expect("open arena")
}

/// The platform's key for certificates: the ledger's, in its directory (so a reopened
/// arena, and a ledger opened on the same data directory, sign with the same key).
pub fn test_signer(dir: &Path) -> medarena_ledger::LogSigner {
    let ledger_dir = dir.join(medarena_arena::ledger_sink::LEDGER_DIR);
    std::fs::create_dir_all(&ledger_dir).expect("ledger directory");
    medarena_ledger::LogSigner::load_or_generate(&ledger_dir, "medarena.test/ledger")
        .expect("test signer")
}

/// Registers, signs in and returns the actor with its session token.
pub async fn sign_up(arena: &Arena, email: &str, role: Role) -> (Actor, String) {
    arena
        .register(&Registration {
            email: email.to_owned(),
            display_name: email.split('@').next().unwrap_or("x").to_owned(),
            password: PASSWORD.to_owned(),
            role,
        })
        .await
        .expect("register");
    sign_in(arena, email).await
}

pub async fn sign_in(arena: &Arena, email: &str) -> (Actor, String) {
    let issued = arena.login(email, PASSWORD).await.expect("login");
    let token = issued.token.to_string();
    (
        arena.authenticate(&token).await.expect("authenticate"),
        token,
    )
}

pub async fn organizer(arena: &Arena) -> Actor {
    arena
        .bootstrap_organizer("org@medarena.test", "Organizer", PASSWORD)
        .await
        .expect("bootstrap organizer");
    sign_in(arena, "org@medarena.test").await.0
}

/// A signed-up, applied and approved organization member; the actor is re-authenticated
/// after approval so that it carries the approval.
/// An admitted hospital.
pub async fn hospital(arena: &Arena, organizer: &Actor, tag: &str) -> (Actor, OrgId) {
    let email = format!("{}@hospital.test", tag.to_lowercase());
    admitted(
        arena,
        organizer,
        &email,
        Role::Hospital,
        &format!("Hospital {tag}"),
        None,
    )
    .await
}

pub async fn admitted(
    arena: &Arena,
    organizer: &Actor,
    email: &str,
    role: Role,
    name: &str,
    tier: Option<Tier>,
) -> (Actor, OrgId) {
    let (actor, token) = sign_up(arena, email, role).await;
    let org = arena
        .apply(&actor, name, "we would like to take part")
        .await
        .expect("apply");
    arena
        .review_application(organizer, org.id, &AdmissionDecision::Approve { tier })
        .await
        .expect("approve");
    (
        arena.authenticate(&token).await.expect("re-authenticate"),
        org.id,
    )
}

pub fn csv_upload(name: &str, rows: usize) -> DatasetUpload {
    let mut text = String::from("age,sex,troponin,cardiac_event_30d\n");
    for row in 0..rows {
        text.push_str(&format!(
            "{},{},{:.2},{}\n",
            40 + row % 40,
            row % 2,
            0.01 * row as f64,
            row % 3 == 0
        ));
    }
    DatasetUpload {
        file_name: name.to_owned(),
        manifest: Some("name: cardiac-events\nlabel: cardiac_event_30d\n".to_owned()),
        bytes: text.into_bytes(),
    }
}

/// Everyone a competition needs.
pub struct Cast {
    pub organizer: Actor,
    pub auditor: Actor,
    pub hospital_a: Actor,
    pub hospital_a_org: OrgId,
    pub hospital_b: Actor,
    pub hospital_b_org: OrgId,
    pub team_x: Actor,
    pub team_x_org: OrgId,
    pub team_y: Actor,
    pub team_y_org: OrgId,
    pub dataset: DatasetId,
    pub competition: CompetitionId,
}

/// Two hospitals contribute to an approved dataset; a competition uses it; two teams with
/// real-data tier accepted its agreement.
pub async fn cast(arena: &Arena, bundle_yaml: &str) -> Cast {
    cast_with(
        arena,
        bundle_yaml,
        [csv_upload("a.csv", 50), csv_upload("b.csv", 40)],
    )
    .await
}

/// The example heart tables of `datasets-spec/examples/heart/` (1,080 rows in all) with
/// their manifest, for tests that read the rows for real (synthetic data).
pub fn heart_uploads() -> [DatasetUpload; 2] {
    let manifest = include_str!("../../../datasets-spec/examples/heart/manifest.yaml");
    [
        (
            "hospital-a.csv",
            &include_bytes!("../../../datasets-spec/examples/heart/hospital-a.csv")[..],
        ),
        (
            "hospital-b.csv",
            &include_bytes!("../../../datasets-spec/examples/heart/hospital-b.csv")[..],
        ),
    ]
    .map(|(file, bytes)| DatasetUpload {
        file_name: file.to_owned(),
        manifest: Some(manifest.to_owned()),
        bytes: bytes.to_vec(),
    })
}

/// [`cast`] with hospital A's and B's uploads given.
pub async fn cast_with(arena: &Arena, bundle_yaml: &str, uploads: [DatasetUpload; 2]) -> Cast {
    let [upload_a, upload_b] = uploads;
    let organizer = organizer(arena).await;
    let auditor_account = arena
        .create_account(
            &organizer,
            &Registration {
                email: "auditor@medarena.test".into(),
                display_name: "Auditor".into(),
                password: PASSWORD.into(),
                role: Role::Auditor,
            },
        )
        .await
        .expect("auditor");
    assert_eq!(auditor_account.role, Role::Auditor);
    let auditor = sign_in(arena, "auditor@medarena.test").await.0;
    let (hospital_a, hospital_a_org) = admitted(
        arena,
        &organizer,
        "a@hospital-a.test",
        Role::Hospital,
        "Hospital A",
        None,
    )
    .await;
    let (hospital_b, hospital_b_org) = admitted(
        arena,
        &organizer,
        "b@hospital-b.test",
        Role::Hospital,
        "Hospital B",
        None,
    )
    .await;
    let dataset = arena
        .create_dataset(
            &hospital_a,
            "cardiac-events",
            "Cardiac events",
            "Discharges with 30-day outcome",
        )
        .await
        .expect("create dataset");
    arena
        .upload_contribution(&hospital_a, dataset.id, &upload_a)
        .await
        .expect("upload a");
    arena
        .upload_contribution(&hospital_b, dataset.id, &upload_b)
        .await
        .expect("upload b");
    arena
        .review_dataset(
            &organizer,
            dataset.id,
            &medarena_arena::DatasetReview::approve_all("checked"),
        )
        .await
        .expect("approve dataset");
    let competition = arena
        .create_competition(&organizer, bundle_yaml)
        .await
        .expect("create competition");
    let (team_x, team_x_org) = admitted(
        arena,
        &organizer,
        "x@team-x.test",
        Role::TeamMember,
        "Team X",
        Some(Tier::RealData),
    )
    .await;
    let (team_y, team_y_org) = admitted(
        arena,
        &organizer,
        "y@team-y.test",
        Role::TeamMember,
        "Team Y",
        Some(Tier::RealData),
    )
    .await;
    let digest = Arena::agreement_sha256(&competition);
    for team in [&team_x, &team_y] {
        arena
            .accept_agreement(team, competition.id, &digest)
            .await
            .expect("accept agreement");
    }
    medarena_arena::testing::contract_accepted_by_all(
        arena,
        &organizer,
        &test_contract(competition.id),
        &[&hospital_a, &hospital_b],
        &[&team_x, &team_y],
    )
    .await
    .expect("contract");
    Cast {
        organizer,
        auditor,
        hospital_a,
        hospital_a_org,
        hospital_b,
        hospital_b_org,
        team_x,
        team_x_org,
        team_y,
        team_y_org,
        dataset: dataset.id,
        competition: competition.id,
    }
}

/// One more admitted team that accepted the agreement.
/// The cast's two teams and `count - 2` more admitted at the real-data tier (for benches
/// that spread a queue over many teams).
pub async fn teams_of(arena: &Arena, cast: &Cast, count: usize) -> Vec<Actor> {
    let mut teams = vec![cast.team_x.clone(), cast.team_y.clone()];
    for n in 2..count {
        teams.push(
            extra_team(arena, cast, &format!("Team {n}"), Tier::RealData)
                .await
                .0,
        );
    }
    teams
}

pub async fn extra_team(arena: &Arena, cast: &Cast, name: &str, tier: Tier) -> (Actor, OrgId) {
    let email = format!("member@{}.test", name.to_lowercase().replace(' ', "-"));
    let (actor, org) = admitted(
        arena,
        &cast.organizer,
        &email,
        Role::TeamMember,
        name,
        Some(tier),
    )
    .await;
    let competition = arena
        .competition(&actor, cast.competition)
        .await
        .expect("competition");
    arena
        .accept_agreement(
            &actor,
            cast.competition,
            &Arena::agreement_sha256(&competition),
        )
        .await
        .expect("accept agreement");
    if tier >= Tier::RealData {
        medarena_arena::testing::accept_open_offers(arena, &actor, cast.competition)
            .await
            .expect("accept the open offers");
    }
    (actor, org)
}

/// The tests' open offer: the competition's own terms, for a purpose named outright (the
/// test uploads' manifests state none).
pub fn test_contract(competition: CompetitionId) -> ContractProposal {
    ContractProposal {
        purposes: vec!["developing and testing medarena submissions".to_owned()],
        ..ContractProposal::open_offer(competition)
    }
}

/// The test's object store underneath the vault, wherever the suite keeps objects: tests
/// read and alter stored ciphertext through it.
pub enum RawObjects {
    Local(medarena_arena::objects::LocalObjectStore),
    S3(Arc<medarena_arena::objects::S3ObjectStore>),
}

impl RawObjects {
    pub fn of(dir: &Path) -> RawObjects {
        match test_config(dir).objects {
            Some(location) => RawObjects::S3(Arc::new(
                medarena_arena::objects::S3ObjectStore::from_env(&location).expect("S3 objects"),
            )),
            None => RawObjects::Local(
                medarena_arena::objects::LocalObjectStore::open(dir.join("objects"))
                    .expect("object store"),
            ),
        }
    }

    pub fn store(&self) -> Arc<dyn medarena_arena::objects::ObjectStore> {
        match self {
            RawObjects::Local(local) => Arc::new(local.clone()),
            RawObjects::S3(s3) => s3.clone(),
        }
    }

    /// The stored bytes, as they are (no integrity check).
    pub async fn read(&self, id: &medarena_arena::objects::ObjectId) -> Vec<u8> {
        match self {
            RawObjects::Local(local) => std::fs::read(local.path_of(id)).expect("object file"),
            RawObjects::S3(s3) => {
                use medarena_arena::objects::ObjectStore;
                s3.get(id).await.expect("object")
            }
        }
    }

    /// Replaces the stored bytes of `id` (tampering, as an attacker with storage access).
    pub async fn overwrite(&self, id: &medarena_arena::objects::ObjectId, bytes: &[u8]) {
        match self {
            RawObjects::Local(local) => std::fs::write(local.path_of(id), bytes).expect("tamper"),
            RawObjects::S3(s3) => s3.overwrite(id, bytes).await.expect("tamper"),
        }
    }
}
