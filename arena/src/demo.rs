//! A complete demo competition, seeded idempotently (`medarena serve --demo`).
//!
//! [`seed`] creates what is missing and reuses what exists, so it can run at every start:
//! - an organizer and an auditor, with the demo passwords of [`DemoSummary`];
//! - two hospitals that contribute 12,000 and 8,000 rows generated like
//!   `datasets-spec/examples/heart/` (the synthetic example's model and manifest; enough rows
//!   that the `row`-level board, 100 blocks of about 200 rows, is readable) to the dataset
//!   `cardiac-events`, approved;
//! - the competition of `arena/examples/bundles/cardiac-event/competition.yaml`, its phases
//!   moved so that the public phase is open now;
//! - the same for survival: 12,000 and 8,000 rows generated like
//!   `datasets-spec/examples/liver/` in the dataset `liver-cohort` and the competition of
//!   `arena/examples/bundles/liver-survival/competition.yaml` (Harrell's C);
//! - each hospital opted in to synthetic development data on each dataset
//!   ([`DEMO_SYNTHETIC_EPSILON`], published), so dummy runs score like real models;
//! - an open contract offer per competition (a demo quote in EUR) that the platform, both
//!   hospitals and both teams accepted;
//! - two teams with accepted agreements, one submitting the baseline to both and one the
//!   gradient-boosted trees (cardiac) and the Cox model (survival), run on dummy and then
//!   real data through the queue and scored.
//!
//! The example modules are the prebuilt ones in `guest/prebuilt/` (built by
//! `scripts/build-guest-prebuilt`; a test rebuilds them and checks that they still score
//! the same), embedded in the binary so that the demo needs no wasm toolchain.
//!
//! The demo passwords are public: never seed the demo on a platform with real data.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::authz::Actor;
use crate::bundle::{Bundle, PhaseKind, PhaseSpec};
use crate::contract::Quote;
use crate::error::{ArenaError, ArenaResult};
use crate::executor::DatasetUpload;
use crate::ids::{CompetitionId, DatasetId, OrgId, SubmissionId};
use crate::model::{ContributionState, DatasetState, Role, SubmissionStatus, SyntheticState, Tier};
use crate::service::{AdmissionDecision, Arena, ContractProposal, Registration, SyntheticAction};

/// The example submissions, prebuilt (see the module docs).
pub const BASELINE_WASM: &[u8] = include_bytes!("../../guest/prebuilt/baseline.wasm");
pub const LOGREG_WASM: &[u8] = include_bytes!("../../guest/prebuilt/logreg.wasm");
pub const GBT_WASM: &[u8] = include_bytes!("../../guest/prebuilt/gbt.wasm");
pub const COX_WASM: &[u8] = include_bytes!("../../guest/prebuilt/cox.wasm");

/// The example competition bundle.
pub const BUNDLE_YAML: &str = include_str!("../examples/bundles/cardiac-event/competition.yaml");
/// The survival example's bundle.
pub const SURVIVAL_BUNDLE_YAML: &str =
    include_str!("../examples/bundles/liver-survival/competition.yaml");
/// The example dataset's manifest and the two hospitals' files.
pub const HEART_MANIFEST: &str = medarena_datasets_spec::example::HEART_MANIFEST;
pub const HOSPITAL_A_CSV: &str = include_str!("../../datasets-spec/examples/heart/hospital-a.csv");
pub const HOSPITAL_B_CSV: &str = include_str!("../../datasets-spec/examples/heart/hospital-b.csv");

/// Rows of each demo hospital's contribution. At the `row` level the example bundle cuts a
/// run into 100 blocks: 20,000 rows give each block about 120 training and 40 + 40 test
/// rows, and the released AUC a 95% noise interval of ±0.06 at ε = 0.5.
pub const DEMO_SITE_ROWS: [usize; 2] = [12_000, 8_000];

/// The ε each demo hospital spends on the synthetic development data it publishes, so that
/// the demo's dummy runs score like real models (of the dataset's default 10 ε per team).
pub const DEMO_SYNTHETIC_EPSILON: f64 = 2.0;

/// One demo hospital's table (Parquet), generated like the committed example files.
pub fn demo_site_parquet(index: usize) -> ArenaResult<Vec<u8>> {
    use medarena_datasets_spec::example::{HEART_SITES, heart_site};
    let manifest = parse_manifest(HEART_MANIFEST)?;
    let (site, prefix, _, seed) = HEART_SITES[index % HEART_SITES.len()];
    let (batch, _) = heart_site(&manifest, site, prefix, DEMO_SITE_ROWS[index % 2], seed);
    parquet(&batch)
}

/// One demo hospital's survival table (Parquet), generated like `examples/liver/`.
pub fn demo_survival_site_parquet(index: usize) -> ArenaResult<Vec<u8>> {
    use medarena_datasets_spec::example::{LIVER_MANIFEST, LIVER_SITES, liver_site};
    let manifest = parse_manifest(LIVER_MANIFEST)?;
    let (site, prefix, _, seed) = LIVER_SITES[index % LIVER_SITES.len()];
    let (batch, _) = liver_site(&manifest, site, prefix, DEMO_SITE_ROWS[index % 2], seed);
    parquet(&batch)
}

fn parse_manifest(text: &str) -> ArenaResult<medarena_datasets_spec::Manifest> {
    medarena_datasets_spec::Manifest::from_str(text)
        .map_err(|err| ArenaError::Internal(format!("the example manifest: {err}")))
}

fn parquet(batch: &medarena_datasets_spec::RecordBatch) -> ArenaResult<Vec<u8>> {
    medarena_datasets_spec::write_table_bytes(batch, medarena_datasets_spec::Format::Parquet)
        .map_err(|err| ArenaError::Internal(format!("writing the demo data: {err}")))
}

/// One demo dataset and the competition on it.
struct DemoCompetition {
    bundle_yaml: &'static str,
    dataset_slug: &'static str,
    dataset_title: &'static str,
    dataset_description: &'static str,
    manifest: &'static str,
    site_parquet: fn(usize) -> ArenaResult<Vec<u8>>,
    /// Per team (in [`TEAMS`] order): the example it submits and its module.
    submissions: [(&'static str, &'static [u8]); 2],
}

const COMPETITIONS: [DemoCompetition; 2] = [
    DemoCompetition {
        bundle_yaml: BUNDLE_YAML,
        dataset_slug: DATASET_SLUG,
        dataset_title: "Cardiac events after chest pain (synthetic)",
        dataset_description: "Adults admitted with chest pain at two hospitals; one-year \
                              cardiac events. Synthetic example data.",
        manifest: HEART_MANIFEST,
        site_parquet: demo_site_parquet,
        submissions: [("baseline", BASELINE_WASM), ("gbt", GBT_WASM)],
    },
    DemoCompetition {
        bundle_yaml: SURVIVAL_BUNDLE_YAML,
        dataset_slug: SURVIVAL_DATASET_SLUG,
        dataset_title: "Survival in chronic liver disease (synthetic)",
        dataset_description: "Adults with chronic liver disease followed at two hospitals; \
                              time to death or censoring. Synthetic example data.",
        manifest: medarena_datasets_spec::example::LIVER_MANIFEST,
        site_parquet: demo_survival_site_parquet,
        submissions: [("baseline", BASELINE_WASM), ("cox", COX_WASM)],
    },
];

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "medarena-demo-password";
/// The slug of the demo dataset (the bundle names it).
pub const DATASET_SLUG: &str = "cardiac-events";
/// The slug of the survival demo dataset.
pub const SURVIVAL_DATASET_SLUG: &str = "liver-cohort";

/// One demo sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoLogin {
    pub role: Role,
    pub organization: Option<String>,
    pub email: String,
    pub password: String,
}

/// One demo submission and where it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoSubmission {
    pub team: String,
    pub example: String,
    pub submission: SubmissionId,
    pub status: SubmissionStatus,
    /// Its dummy run's score, on the synthetic development data.
    pub dummy_score: Option<f64>,
    pub released_public_score: Option<f64>,
}

/// One seeded demo competition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeededCompetition {
    pub dataset: DatasetId,
    pub competition: CompetitionId,
    pub slug: String,
    pub submissions: Vec<DemoSubmission>,
}

/// What the demo consists of, to print for the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoSummary {
    pub logins: Vec<DemoLogin>,
    /// The cardiac (binary) competition first, then the survival one.
    pub competitions: Vec<SeededCompetition>,
}

impl std::fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slugs: Vec<String> = self
            .competitions
            .iter()
            .map(|c| format!("`{}`", c.slug))
            .collect();
        writeln!(
            f,
            "demo competitions {} are ready; sign in as:",
            slugs.join(" and ")
        )?;
        for login in &self.logins {
            writeln!(
                f,
                "  {:<12} {:<32} password {}{}",
                login.role.as_str(),
                login.email,
                login.password,
                login
                    .organization
                    .as_deref()
                    .map(|o| format!("  ({o})"))
                    .unwrap_or_default()
            )?;
        }
        for competition in &self.competitions {
            for s in &competition.submissions {
                writeln!(
                    f,
                    "  {} submitted the {} example to `{}`: {}{}{}",
                    s.team,
                    s.example,
                    competition.slug,
                    s.status,
                    s.dummy_score
                        .map(|v| format!(", dummy run {v:.3}"))
                        .unwrap_or_default(),
                    s.released_public_score
                        .map(|v| format!(", public score {v:.3}"))
                        .unwrap_or_default()
                )?;
            }
        }
        Ok(())
    }
}

struct Member {
    email: &'static str,
    name: &'static str,
    role: Role,
    org: &'static str,
    tier: Option<Tier>,
}

const ORGANIZER_EMAIL: &str = "organizer@demo.medarena";
const AUDITOR_EMAIL: &str = "auditor@demo.medarena";
const HOSPITALS: [Member; 2] = [
    Member {
        email: "hospital-a@demo.medarena",
        name: "Data office, Hospital A",
        role: Role::Hospital,
        org: "Demo Hospital A",
        tier: None,
    },
    Member {
        email: "hospital-b@demo.medarena",
        name: "Data office, Hospital B",
        role: Role::Hospital,
        org: "Demo Hospital B",
        tier: None,
    },
];
const TEAMS: [Member; 2] = [
    Member {
        email: "team-baseline@demo.medarena",
        name: "Baseline team lead",
        role: Role::TeamMember,
        org: "Demo Team Baseline",
        tier: Some(Tier::DpAggregates),
    },
    Member {
        email: "team-trees@demo.medarena",
        name: "Trees team lead",
        role: Role::TeamMember,
        org: "Demo Team Trees",
        tier: Some(Tier::RealData),
    },
];

/// How long [`seed`] waits for the demo submissions to finish.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// The bundle with its phases moved around `now`: development ended yesterday, the public
/// phase is open for 90 days, the final phase follows.
pub fn demo_bundle_yaml(now: DateTime<Utc>) -> ArenaResult<String> {
    bundle_opened(BUNDLE_YAML, now)
}

/// `yaml`'s bundle with its phases moved as in [`demo_bundle_yaml`].
pub fn bundle_opened(yaml: &str, now: DateTime<Utc>) -> ArenaResult<String> {
    let mut bundle = Bundle::from_yaml(yaml)?;
    let day = chrono::Duration::days(1);
    let start = now - day * 30;
    bundle.phases = vec![
        PhaseSpec {
            name: "development".to_owned(),
            kind: PhaseKind::Development,
            starts_at: start,
            ends_at: now - day,
        },
        PhaseSpec {
            name: "public".to_owned(),
            kind: PhaseKind::Public,
            starts_at: now - day,
            ends_at: now + day * 90,
        },
        PhaseSpec {
            name: "final".to_owned(),
            kind: PhaseKind::Final,
            starts_at: now + day * 90,
            ends_at: now + day * 104,
        },
    ];
    Ok(bundle.to_yaml()?)
}

impl Arena {
    /// The actor of an account by e-mail, if it exists.
    async fn demo_actor(&self, email: &str) -> ArenaResult<Option<Actor>> {
        match self.store().account_by_email(email).await? {
            Some((account, _)) => Ok(Some(self.actor_for_account(account.id).await?)),
            None => Ok(None),
        }
    }

    /// An admitted member of a demo organization, created or completed as needed.
    async fn demo_member(&self, organizer: &Actor, member: &Member) -> ArenaResult<(Actor, OrgId)> {
        let actor = match self.demo_actor(member.email).await? {
            Some(actor) => actor,
            None => {
                let account = self
                    .register(&Registration {
                        email: member.email.to_owned(),
                        display_name: member.name.to_owned(),
                        password: DEMO_PASSWORD.to_owned(),
                        role: member.role,
                    })
                    .await?;
                self.actor_for_account(account.id).await?
            }
        };
        let principal = actor.principal().ok_or(ArenaError::Unauthenticated)?;
        let org = match &principal.membership {
            Some(membership) => membership.org,
            None => {
                self.apply(
                    &actor,
                    member.org,
                    "demo organization (synthetic data only)",
                )
                .await?
                .id
            }
        };
        let approved = principal.membership.as_ref().is_some_and(|m| {
            m.admission == crate::model::AdmissionState::Approved && m.tier == member.tier
        });
        if !approved {
            self.review_application(
                organizer,
                org,
                &AdmissionDecision::Approve { tier: member.tier },
            )
            .await?;
        }
        let account = principal.account;
        Ok((self.actor_for_account(account).await?, org))
    }
}

/// Seeds the demo competition (see the module docs); safe to call again.
pub async fn seed(arena: &Arena) -> ArenaResult<DemoSummary> {
    let organizer = match arena.demo_actor(ORGANIZER_EMAIL).await? {
        Some(actor) => actor,
        None => {
            let account = arena
                .bootstrap_organizer(ORGANIZER_EMAIL, "Demo organizer", DEMO_PASSWORD)
                .await
                .map_err(|err| match err {
                    ArenaError::Conflict(_) => ArenaError::Conflict(
                        "this platform already has an organizer; seed the demo in a fresh data directory"
                            .to_owned(),
                    ),
                    other => other,
                })?;
            arena.actor_for_account(account.id).await?
        }
    };
    if arena.demo_actor(AUDITOR_EMAIL).await?.is_none() {
        arena
            .create_account(
                &organizer,
                &Registration {
                    email: AUDITOR_EMAIL.to_owned(),
                    display_name: "Demo auditor".to_owned(),
                    password: DEMO_PASSWORD.to_owned(),
                    role: Role::Auditor,
                },
            )
            .await?;
    }

    let mut hospitals = Vec::new();
    for member in &HOSPITALS {
        hospitals.push(arena.demo_member(&organizer, member).await?);
    }
    let mut teams = Vec::new();
    for member in &TEAMS {
        teams.push(arena.demo_member(&organizer, member).await?);
    }
    let mut competitions = Vec::new();
    for demo in &COMPETITIONS {
        competitions.push(seed_competition(arena, &organizer, &hospitals, &teams, demo).await?);
    }
    let mut logins = vec![
        login(Role::Organizer, None, ORGANIZER_EMAIL),
        login(Role::Auditor, None, AUDITOR_EMAIL),
    ];
    for member in HOSPITALS.iter().chain(TEAMS.iter()) {
        logins.push(login(member.role, Some(member.org), member.email));
    }
    Ok(DemoSummary {
        logins,
        competitions,
    })
}

/// The demo contracts' prices, so that statements show amounts.
fn demo_quote() -> Quote {
    Quote {
        currency: "EUR".to_owned(),
        per_run: rust_decimal::Decimal::new(200, 2),
        per_cpu_second: rust_decimal::Decimal::new(5, 4),
        per_epsilon: rust_decimal::Decimal::new(20, 0),
    }
}

/// One demo dataset and its competition, with both teams' submissions run.
async fn seed_competition(
    arena: &Arena,
    organizer: &Actor,
    hospitals: &[(Actor, OrgId)],
    teams: &[(Actor, OrgId)],
    demo: &DemoCompetition,
) -> ArenaResult<SeededCompetition> {
    let dataset = seed_dataset(arena, organizer, hospitals, demo).await?;
    let slug = Bundle::from_yaml(demo.bundle_yaml)?.slug;
    let competition = match arena
        .competitions(organizer)
        .await?
        .into_iter()
        .find(|c| c.slug == slug)
    {
        Some(competition) => competition,
        None => {
            let yaml = bundle_opened(
                demo.bundle_yaml,
                chrono::DateTime::from_timestamp_millis(arena.now().0).unwrap_or_default(),
            )?;
            arena.create_competition(organizer, &yaml).await?
        }
    };
    let digest = Arena::agreement_sha256(&competition);
    if arena
        .contracts(organizer, Some(competition.id))
        .await?
        .is_empty()
    {
        let hospitals: Vec<&Actor> = hospitals.iter().map(|(actor, _)| actor).collect();
        let teams: Vec<&Actor> = teams.iter().map(|(actor, _)| actor).collect();
        crate::testing::contract_accepted_by_all(
            arena,
            organizer,
            &ContractProposal {
                quote: Some(demo_quote()),
                ..ContractProposal::open_offer(competition.id)
            },
            &hospitals,
            &teams,
        )
        .await?;
    }

    let mut submitted = Vec::new();
    for ((member, (team, team_org)), (example, module)) in
        TEAMS.iter().zip(teams).zip(demo.submissions)
    {
        if arena
            .agreement_acceptance(team, competition.id)
            .await?
            .is_none()
        {
            arena
                .accept_agreement(team, competition.id, &digest)
                .await?;
        }
        let existing = arena
            .submissions(team, competition.id, Some(*team_org))
            .await?;
        let submission = match existing.into_iter().last() {
            Some(view) => view.id,
            None => arena.submit(team, competition.id, module).await?.id,
        };
        submitted.push((member, example, submission));
    }

    // Run what is queued; workers of a running server may take some jobs meanwhile.
    let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
    loop {
        while arena.run_next_job("demo-seed").await?.is_some() {}
        let mut pending = false;
        for (_, _, id) in &submitted {
            let view = arena.submission(organizer, *id).await?;
            pending |= !matches!(
                view.status,
                SubmissionStatus::Completed | SubmissionStatus::Failed
            );
        }
        if !pending {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(ArenaError::Internal(format!(
                "the demo submissions to `{slug}` did not finish in time"
            )));
        }
        arena.wait_for_jobs(Duration::from_millis(200)).await;
    }

    let mut submissions = Vec::new();
    for (member, example, id) in submitted {
        let view = arena.submission(organizer, id).await?;
        submissions.push(DemoSubmission {
            team: member.org.to_owned(),
            example: example.to_owned(),
            submission: id,
            status: view.status,
            dummy_score: view.dummy_score,
            released_public_score: view.released_public_score,
        });
    }
    Ok(SeededCompetition {
        dataset,
        competition: competition.id,
        slug: competition.slug,
        submissions,
    })
}

fn login(role: Role, organization: Option<&str>, email: &str) -> DemoLogin {
    DemoLogin {
        role,
        organization: organization.map(str::to_owned),
        email: email.to_owned(),
        password: DEMO_PASSWORD.to_owned(),
    }
}

/// The dataset with both hospitals' contributions, approved.
async fn seed_dataset(
    arena: &Arena,
    organizer: &Actor,
    hospitals: &[(Actor, OrgId)],
    demo: &DemoCompetition,
) -> ArenaResult<DatasetId> {
    let dataset = match arena.store().dataset_by_slug(demo.dataset_slug).await? {
        Some(dataset) => dataset,
        None => {
            arena
                .create_dataset(
                    organizer,
                    demo.dataset_slug,
                    demo.dataset_title,
                    demo.dataset_description,
                )
                .await?
        }
    };
    if dataset.state != DatasetState::Approved {
        let view = arena.dataset(organizer, dataset.id).await?;
        for (index, ((hospital, org), file)) in hospitals
            .iter()
            .zip(["hospital-a.parquet", "hospital-b.parquet"])
            .enumerate()
        {
            let contributed = view
                .contributions
                .iter()
                .any(|c| c.hospital == *org && c.state == ContributionState::Validated);
            if !contributed {
                arena
                    .upload_contribution(
                        hospital,
                        dataset.id,
                        &DatasetUpload {
                            file_name: file.to_owned(),
                            manifest: Some(demo.manifest.to_owned()),
                            bytes: (demo.site_parquet)(index)?,
                        },
                    )
                    .await?;
            }
        }
        arena
            .review_dataset(organizer, dataset.id, true, Some("demo data"))
            .await?;
    }
    for (hospital, org) in hospitals {
        let published = arena
            .synthetic_releases(hospital, dataset.id)
            .await?
            .iter()
            .any(|r| r.hospital == *org && r.state == SyntheticState::Published);
        if !published {
            let draft = arena
                .measure_synthetic(hospital, dataset.id, DEMO_SYNTHETIC_EPSILON)
                .await?;
            arena
                .change_synthetic(hospital, draft.id, SyntheticAction::Publish)
                .await?;
        }
    }
    Ok(dataset.id)
}
