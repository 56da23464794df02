//! [`Arena`]: the typed core that web handlers and the CLI call.
//!
//! Every public operation takes the [`Actor`] first, authorizes through
//! [`crate::authz::authorize`], checks its business preconditions, and performs one atomic
//! store operation that also writes the audit events. After the commit, the arena delivers
//! pending audit events to the [`AuditSink`] (best effort; undelivered events stay in the
//! outbox and go out on the next operation, the periodic flush, or the next start).

mod accounts;
mod certificates;
mod competitions;
mod contracts;
mod datasets;
mod keys;
mod runs;
mod submissions;
mod synthetic;

pub use accounts::{
    AdmissionDecision, IssuedToken, Me, Registration, SIGN_IN_MAX_FAILURES, SIGN_IN_WINDOW,
    TeamView,
};
pub use competitions::{Leaderboard, LeaderboardEntry, LeaderboardKind, ScorePoint};
pub use contracts::{
    ContractAction, ContractProposal, ContractView, DEFAULT_VALID_DAYS, Statement,
    StatementRequest, StatementTotal, statement_totals,
};
pub use datasets::{DatasetView, MAX_UPLOAD_BYTES};
pub use runs::{JobEnd, JobReport};
pub use submissions::{DummyRunReport, ExactScores, SubmissionView};
pub use synthetic::{
    DEFAULT_DEVELOPMENT_ROWS, DevelopmentData, MAX_DEVELOPMENT_ROWS, MAX_SYNTHETIC_EPSILON,
    SyntheticAction,
};

use std::sync::Arc;

use tokio::sync::{Mutex, Notify};

use crate::audit::{AuditRecord, AuditSink, TracingAuditSink};
use crate::authz::{Action, Actor, Membership, Principal, Resource, authorize};
use crate::config::ArenaConfig;
use crate::crypto::MasterKey;
use crate::error::{ArenaError, ArenaResult};
use crate::executor::{DatasetValidator, RunExecutor};
use crate::ids::AccountId;
use crate::model::{Account, QueueStats};
use crate::objects::{LocalObjectStore, ObjectStore};
use crate::store::{Stamp, Store};
use crate::time::{Clock, SystemClock};
use crate::vault::{KeyBroker, Vault};

/// An upload still unvalidated this long after it was stored was interrupted by a crash.
const UPLOAD_RECOVERY_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// How many outbox events one delivery round reads at a time.
const AUDIT_BATCH: i64 = 256;

/// The core service. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Arena {
    inner: Arc<Inner>,
}

struct Inner {
    config: ArenaConfig,
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    executor: Arc<dyn RunExecutor>,
    validator: Arc<dyn DatasetValidator>,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    /// Signs certificates; `None`: none are issued (until a read with a key issues them).
    certificate_signer: Option<medarena_ledger::LogSigner>,
    /// Wakes idle workers when a job is enqueued in this process.
    jobs_ready: Notify,
    /// Serializes outbox delivery so that the sink sees events in id order.
    audit_delivery: Mutex<()>,
    /// A real Argon2 hash to verify against when an e-mail is unknown, so that a login's
    /// timing does not reveal whether an account exists.
    decoy_password_hash: String,
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arena")
            .field("data_dir", &self.inner.config.data_dir)
            .finish_non_exhaustive()
    }
}

/// Assembles an [`Arena`]: configuration plus the plug-ins.
pub struct ArenaBuilder {
    config: ArenaConfig,
    store: Option<Arc<dyn Store>>,
    objects: Option<Arc<dyn ObjectStore>>,
    executor: Option<Arc<dyn RunExecutor>>,
    validator: Option<Arc<dyn DatasetValidator>>,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    certificate_signer: Option<medarena_ledger::LogSigner>,
    key_broker: Option<Arc<dyn KeyBroker>>,
}

impl ArenaBuilder {
    /// A worker host's arena: data keys come from the key service of a server host, one
    /// leased job at a time, and no master key is loaded. Such an arena runs jobs; it cannot
    /// seal uploads or modules.
    pub fn key_broker(mut self, broker: Arc<dyn KeyBroker>) -> Self {
        self.key_broker = Some(broker);
        self
    }

    /// Required: runs submissions (sandbox + scorer).
    pub fn executor(mut self, executor: Arc<dyn RunExecutor>) -> Self {
        self.executor = Some(executor);
        self
    }

    /// Required: validates uploads (datasets-spec).
    pub fn validator(mut self, validator: Arc<dyn DatasetValidator>) -> Self {
        self.validator = Some(validator);
        self
    }

    /// Where audit events go (the ledger). Defaults to [`TracingAuditSink`].
    pub fn audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = sink;
        self
    }

    /// The key that signs certificates: the ledger's own (`LogSigner::load_or_generate` on
    /// the ledger's directory), so that users check certificates with the `ledger.pub` they
    /// already trust. A signer and not the ledger, because processes that do not hold the
    /// ledger (a `medarena worker`, an admin command) may issue certificates too; their
    /// anchoring events wait in the outbox like any other. Without it no certificate is
    /// issued.
    pub fn certificate_signer(mut self, signer: medarena_ledger::LogSigner) -> Self {
        self.certificate_signer = Some(signer);
        self
    }

    /// Defaults to the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Defaults to the store `config.database` names (`SqliteStore` at
    /// `<data dir>/medarena.db` when it is unset).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Defaults to the store `config.objects` names (`LocalObjectStore` at
    /// `<data dir>/objects` when it is unset).
    pub fn object_store(mut self, objects: Arc<dyn ObjectStore>) -> Self {
        self.objects = Some(objects);
        self
    }

    /// Opens storage (creating the data directory, the database and the master key file on
    /// first start), then delivers audit events left undelivered by a previous run.
    pub async fn open(self) -> ArenaResult<Arena> {
        let config = self.config;
        let executor = self
            .executor
            .ok_or_else(|| ArenaError::Config("no RunExecutor configured".to_owned()))?;
        let validator = self
            .validator
            .ok_or_else(|| ArenaError::Config("no DatasetValidator configured".to_owned()))?;
        std::fs::create_dir_all(&config.data_dir).map_err(|err| {
            ArenaError::Config(format!(
                "creating data directory {}: {err}",
                config.data_dir.display()
            ))
        })?;
        let store: Arc<dyn Store> = match self.store {
            Some(store) => store,
            None => crate::store::open(&config.database_url()).await?,
        };
        let objects: Arc<dyn ObjectStore> = match self.objects {
            Some(objects) => objects,
            None => match &config.objects {
                Some(location) => crate::objects::open(location),
                None => LocalObjectStore::open(config.objects_dir())
                    .map(|local| Arc::new(local) as Arc<dyn ObjectStore>),
            }
            .map_err(|err| ArenaError::Config(err.to_string()))?,
        };
        let keys: Arc<dyn crate::store::KeyRepo> = store.clone();
        let vault = Arc::new(match self.key_broker {
            Some(broker) => Vault::with_broker(broker, objects, keys, self.clock.clone()),
            None => {
                let master = MasterKey::load(&config.master_key)
                    .map_err(|err| ArenaError::Config(err.to_string()))?;
                Vault::new(master, objects, keys, self.clock.clone())
            }
        });
        let cost = config.password_hashing;
        let decoy_password_hash = tokio::task::spawn_blocking(move || {
            crate::auth::hash_password("decoy password, never matches", &cost)
        })
        .await
        .map_err(|err| ArenaError::Internal(err.to_string()))?
        .map_err(|err| ArenaError::Config(err.to_string()))?;
        let arena = Arena {
            inner: Arc::new(Inner {
                config,
                store,
                vault,
                executor,
                validator,
                audit: self.audit,
                clock: self.clock,
                certificate_signer: self.certificate_signer,
                jobs_ready: Notify::new(),
                audit_delivery: Mutex::new(()),
                decoy_password_hash,
            }),
        };
        arena.deliver_audit_events().await;
        arena
            .recover_interrupted_uploads(UPLOAD_RECOVERY_AGE)
            .await?;
        Ok(arena)
    }
}

impl Arena {
    pub fn builder(config: ArenaConfig) -> ArenaBuilder {
        ArenaBuilder {
            config,
            store: None,
            objects: None,
            executor: None,
            validator: None,
            audit: Arc::new(TracingAuditSink),
            clock: Arc::new(SystemClock),
            certificate_signer: None,
            key_broker: None,
        }
    }

    pub fn config(&self) -> &ArenaConfig {
        &self.inner.config
    }

    /// The storage behind the arena (for tests and the PostgreSQL migration tooling).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn now(&self) -> crate::time::Timestamp {
        self.inner.clock.now()
    }

    fn stamp(&self, actor: &Actor) -> Stamp {
        Stamp {
            at: self.now(),
            actor: actor.account(),
        }
    }

    /// Builds the actor for an account as stored now.
    async fn actor_of(&self, account: &Account) -> ArenaResult<Actor> {
        let membership = match account.org {
            Some(org_id) => {
                let org = self.inner.store.org(org_id).await?.ok_or_else(|| {
                    ArenaError::Internal(format!("{} of {} is missing", org_id, account.id))
                })?;
                Some(Membership {
                    org: org.id,
                    admission: org.admission,
                    tier: org.tier,
                })
            }
            None => None,
        };
        Ok(Actor::Account(Principal {
            account: account.id,
            role: account.role,
            membership,
        }))
    }

    /// The actor of an account id (for the CLI's local admin commands).
    pub async fn actor_for_account(&self, id: AccountId) -> ArenaResult<Actor> {
        let account = self
            .inner
            .store
            .account(id)
            .await?
            .ok_or_else(|| ArenaError::NotFound(id.to_string()))?;
        if account.disabled {
            return Err(ArenaError::Unauthenticated);
        }
        self.actor_of(&account).await
    }

    /// Delivers undelivered audit events to the sink, in order. Stops at the first sink
    /// error (keeping order); returns how many were delivered. Never fails the caller: the
    /// change is already committed and its event is safe in the outbox.
    pub async fn deliver_audit_events(&self) -> usize {
        if !self.inner.audit.delivers() {
            return 0;
        }
        let _order = self.inner.audit_delivery.lock().await;
        let mut delivered = 0;
        loop {
            let batch = match self
                .inner
                .store
                .undelivered_events(AUDIT_BATCH, self.now())
                .await
            {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!(error = %err, "reading the audit outbox failed");
                    return delivered;
                }
            };
            if batch.is_empty() {
                return delivered;
            }
            let mut receipts = Vec::with_capacity(batch.len());
            let mut sink_failed = false;
            for record in &batch {
                match self.inner.audit.record(record).await {
                    Ok(receipt) => receipts.push((record.id, receipt.evidence)),
                    Err(err) => {
                        tracing::warn!(event = record.id.0, error = %err, "audit sink refused an event; will retry");
                        sink_failed = true;
                        break;
                    }
                }
            }
            // One transaction for the batch's receipts; after a crash before it, the batch is
            // delivered again (the sink deduplicates by event id).
            if !receipts.is_empty()
                && let Err(err) = self.inner.store.mark_delivered(&receipts, self.now()).await
            {
                tracing::warn!(error = %err, "recording audit receipts failed");
                return delivered;
            }
            delivered += receipts.len();
            if sink_failed {
                return delivered;
            }
        }
    }

    /// The audit trail of one subject (`submission:12`), with evidence codes: organizers and
    /// auditors (auditors, like the public ledger, see an event about a real run only from
    /// its release time on).
    pub async fn audit_trail(&self, actor: &Actor, subject: &str) -> ArenaResult<Vec<AuditRecord>> {
        authorize(actor, Action::ViewAuditTrail, Resource::Platform)?;
        let events = self.inner.store.events_about(subject).await?;
        Ok(self.visible_events(actor, events))
    }

    /// Events stamped in the future are about real runs not yet released: only organizers
    /// see them before their time. Nobody else sees an event's outbox id either: ids follow
    /// the order in which things were *recorded*, so the id of a real run's events, set when
    /// the run really ended, would date its end against the viewer's own events (a timing
    /// channel; `tests/tests/leak_probe.rs` caught it). They read 0; evidence codes identify.
    pub(crate) fn visible_events(
        &self,
        actor: &Actor,
        events: Vec<AuditRecord>,
    ) -> Vec<AuditRecord> {
        if actor.role() == Some(crate::model::Role::Organizer) {
            return events;
        }
        let now = self.now();
        events
            .into_iter()
            .filter(|e| e.at <= now)
            .map(|e| AuditRecord {
                id: crate::ids::AuditEventId(0),
                ..e
            })
            .collect()
    }

    /// The receipts of one submission's events (received, queued, finished) for whoever
    /// may see the submission: its team gets the evidence codes of its own operations.
    pub async fn submission_receipts(
        &self,
        actor: &Actor,
        id: crate::ids::SubmissionId,
    ) -> ArenaResult<Vec<AuditRecord>> {
        self.submission(actor, id).await?;
        let events = self.inner.store.events_about(&id.to_string()).await?;
        Ok(self.visible_events(actor, events))
    }

    /// The receipts of one contribution's events (uploaded, validated) for whoever may see
    /// the contribution: its hospital and organizers.
    pub async fn contribution_receipts(
        &self,
        actor: &Actor,
        id: crate::ids::ContributionId,
    ) -> ArenaResult<Vec<AuditRecord>> {
        self.contribution(actor, id).await?;
        let events = self.inner.store.events_about(&id.to_string()).await?;
        Ok(self.visible_events(actor, events))
    }

    /// The most recent audit events: organizers and auditors.
    pub async fn recent_audit_events(
        &self,
        actor: &Actor,
        limit: i64,
    ) -> ArenaResult<Vec<AuditRecord>> {
        authorize(actor, Action::ViewAuditTrail, Resource::Platform)?;
        let events = self.inner.store.recent_events(limit.clamp(1, 1000)).await?;
        Ok(self.visible_events(actor, events))
    }

    /// Job counts per state, for `/metrics` (no actor: the web layer decides who sees
    /// metrics) and the organizer dashboard.
    pub async fn queue_stats(&self) -> ArenaResult<QueueStats> {
        Ok(self.inner.store.queue_stats().await?)
    }
}

/// Trims and checks a human-entered text field.
/// What [`clean_text`] accepts, as a JSON Schema pattern for the API's documents: a
/// character that is not a space, and no control characters (tabs and newlines are kept
/// by `clean_text`, but the pattern keeps to a subset it is sure of).
pub const CLEAN_TEXT_PATTERN: &str =
    r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// [`clean_text`] for a text that goes onto the public ledger as an entry's field: one line
/// (no control character at all, not even a newline) of at most `max_chars` characters and
/// 1,000 bytes, which every ledger field value accepts. A text the ledger refused would
/// stay undeliverable in the outbox and hold up every event after it.
fn clean_line(field: &str, text: &str, max_chars: usize) -> ArenaResult<String> {
    let text = clean_text(field, text, max_chars)?;
    if text.chars().any(char::is_control) {
        return Err(ArenaError::invalid(field, "must be one line"));
    }
    if text.len() > 1_000 {
        return Err(ArenaError::invalid(field, "must be at most 1,000 bytes"));
    }
    Ok(text)
}

fn clean_text(field: &str, text: &str, max_chars: usize) -> ArenaResult<String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ArenaError::invalid(field, "must not be empty"));
    }
    if text.chars().count() > max_chars {
        return Err(ArenaError::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ArenaError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(text.to_owned())
}
