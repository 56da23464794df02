//! The ledger as the arena's [`AuditSink`]: every audit event becomes a ledger entry, and
//! its evidence code is the receipt the arena stores and shows.
//!
//! Events that match one of the ledger's version-1 kinds are written as that kind
//! (`submission.received`, `agreement.accepted`, `competition.closed`); every other event
//! is an extension `x.<audit kind>` whose fields are the event's own (ids, digests,
//! outcomes, ε), so the ledger never holds more than the outbox does: no data values.
//!
//! Delivery is at least once (the arena retries an event whose receipt it did not store),
//! so the sink is idempotent: an entry is fully determined by the record (time, actor,
//! event), and a record already in the log returns the evidence code it got then.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use medarena_ledger::entry::{Digest, Event, Extension, FieldValue, Id, NewEntry};
use medarena_ledger::{
    DynStore, EvidenceCode, FileStore, Hash, Ledger, LedgerError, LogSigner, SharedLedger,
};

use crate::audit::{AuditError, AuditEvent, AuditReceipt, AuditRecord, AuditSink};
use crate::ledger_pg::{Leadership, PgLedgerStore};

/// The ledger's directory inside the data directory.
pub const LEDGER_DIR: &str = "ledger";

/// Appends audit records to a [`SharedLedger`].
pub struct LedgerSink {
    ledger: Arc<SharedLedger>,
    seen: Mutex<Seen>,
    /// For a ledger shared by several processes: whether this one writes it.
    leadership: Option<Leadership>,
}

/// What the sink knows the log holds.
#[derive(Default)]
struct Seen {
    /// Entries read so far.
    len: u64,
    /// Canonical text of every entry read (without its index) -> evidence code.
    codes: HashMap<String, String>,
}

impl std::fmt::Debug for LedgerSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerSink").finish_non_exhaustive()
    }
}

/// Opens (or creates, with a new signing key) the ledger in `<data dir>/ledger`.
pub fn open_ledger(data_dir: &Path, origin: &str) -> Result<SharedLedger, LedgerError> {
    let dir = data_dir.join(LEDGER_DIR);
    let (store, recovery) = FileStore::open(&dir)?;
    let signer = LogSigner::load_or_generate(&dir, origin)?;
    let (ledger, report) = Ledger::with_store(Box::new(store) as DynStore, signer)?;
    tracing::info!(
        entries = report.entries,
        recovery = ?recovery,
        "ledger opened at {}",
        dir.display()
    );
    Ok(SharedLedger::new(ledger))
}

/// Opens the ledger of a deployment on PostgreSQL (see [`crate::ledger_pg`]), signing with
/// `signer` when this process becomes its writer.
pub fn open_shared_ledger(
    database_url: &str,
    signer: LogSigner,
) -> Result<(SharedLedger, Leadership), LedgerError> {
    let store = PgLedgerStore::open(database_url)?;
    let leadership = store.leadership();
    let (ledger, report) = Ledger::with_store(Box::new(store) as DynStore, signer)?;
    tracing::info!(
        entries = report.entries,
        writer = leadership.is_writer(),
        "ledger opened on PostgreSQL"
    );
    Ok((SharedLedger::new(ledger), leadership))
}

impl LedgerSink {
    /// Reads the log once to remember what it holds (a restart may re-deliver events).
    pub fn new(ledger: Arc<SharedLedger>) -> Result<Self, LedgerError> {
        let sink = LedgerSink {
            ledger,
            seen: Mutex::new(Seen::default()),
            leadership: None,
        };
        sink.remember_new_entries()?;
        Ok(sink)
    }

    /// A sink over a shared ledger: it delivers only while this process writes the ledger.
    pub fn shared(ledger: Arc<SharedLedger>, leadership: Leadership) -> Result<Self, LedgerError> {
        let mut sink = Self::new(ledger)?;
        sink.leadership = Some(leadership);
        Ok(sink)
    }

    pub fn ledger(&self) -> &Arc<SharedLedger> {
        &self.ledger
    }

    /// For a shared ledger, run every second or so: takes over writing when no process
    /// does, and reads what the writer appended (so that this process serves receipts for
    /// it and never appends an event twice after taking over). Blocks on the database:
    /// call it off the async workers. Returns whether this process writes the ledger.
    pub fn follow(&self) -> Result<bool, LedgerError> {
        let Some(leadership) = &self.leadership else {
            return Ok(true);
        };
        let was_writer = leadership.is_writer();
        let writer = leadership.try_lead()?;
        self.ledger.update(|ledger| ledger.refresh())?;
        self.remember_new_entries()?;
        if writer && !was_writer {
            tracing::warn!("this process now writes the ledger (the previous writer stopped)");
        }
        Ok(writer)
    }

    /// Adds the entries appended since the last look to what the sink knows.
    fn remember_new_entries(&self) -> Result<(), LedgerError> {
        let from = self.lock_seen().len;
        let (entries, to) = self.ledger.read(|ledger| {
            let to = ledger.len().max(from);
            ledger.entries(from, to).map(|entries| (entries, to))
        })?;
        let mut seen = self.lock_seen();
        if seen.len != from {
            return Ok(()); // another call got there first
        }
        for entry in entries {
            // The evidence code is the leaf hash of the entry's canonical text.
            let code = EvidenceCode::from_leaf_hash(Hash::of_leaf(entry.to_canonical().as_bytes()));
            seen.codes.insert(
                content_key(&entry.time, &entry.actor, &entry.event),
                code.to_string(),
            );
        }
        seen.len = to;
        Ok(())
    }

    fn lock_seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn content_key(time: &medarena_ledger::entry::Timestamp, actor: &Id, event: &Event) -> String {
    let entry = NewEntry::new(*time, actor.clone(), event.clone()).at_index(0);
    entry.to_canonical()
}

fn audit_error(what: impl std::fmt::Display) -> AuditError {
    AuditError(what.to_string())
}

/// A ledger id from an arena id or name (`competition:3`, `org:7`).
fn id(text: impl ToString) -> Result<Id, AuditError> {
    Id::new(text.to_string()).map_err(audit_error)
}

/// A digest from the arena's lower-case hex SHA-256.
fn digest(hex_digits: &str) -> Result<Digest, AuditError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut bytes)
        .map_err(|err| audit_error(format!("digest `{hex_digits}`: {err}")))?;
    Ok(Digest(bytes))
}

/// The ledger event for an audit event (see the module docs).
pub fn ledger_event(event: &AuditEvent) -> Result<Event, AuditError> {
    Ok(match event {
        AuditEvent::SubmissionReceived {
            submission,
            competition,
            team,
            module_sha256,
            ..
        } => Event::SubmissionReceived {
            competition: id(competition)?,
            team: id(team)?,
            submission: id(submission)?,
            module: digest(module_sha256)?,
        },
        AuditEvent::AgreementAccepted {
            competition,
            team,
            agreement_sha256,
            ..
        } => Event::AgreementAccepted {
            competition: id(competition)?,
            participant: id(team)?,
            agreement: id(format!("{competition}/agreement"))?,
            text: digest(agreement_sha256)?,
        },
        AuditEvent::CompetitionClosed { competition } => Event::CompetitionClosed {
            competition: id(competition)?,
        },
        other => Event::Extension(extension(other)?),
    })
}

/// `x.<kind>` with the event's JSON fields as text (nulls left out).
fn extension(event: &AuditEvent) -> Result<Extension, AuditError> {
    let json = serde_json::to_value(event).map_err(audit_error)?;
    let mut fields = Vec::new();
    if let serde_json::Value::Object(map) = json {
        for (name, value) in map {
            if name == "type" {
                continue;
            }
            let text = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
            fields.push((name, FieldValue::new(text).map_err(audit_error)?));
        }
    }
    Extension::new(format!("x.{}", event.kind()), fields).map_err(audit_error)
}

/// The entry a record becomes.
pub fn ledger_entry(record: &AuditRecord) -> Result<NewEntry, AuditError> {
    let millis = u64::try_from(record.at.as_millis())
        .map_err(|_| audit_error(format!("time {} is before 1970", record.at.as_millis())))?;
    let time = medarena_ledger::entry::Timestamp::from_unix_millis(millis).map_err(audit_error)?;
    let actor = match record.actor {
        Some(account) => id(account)?,
        None => id("platform")?,
    };
    Ok(NewEntry::new(time, actor, ledger_event(&record.event)?))
}

#[async_trait]
impl AuditSink for LedgerSink {
    async fn record(&self, record: &AuditRecord) -> Result<AuditReceipt, AuditError> {
        let entry = ledger_entry(record)?;
        let key = content_key(&entry.time, &entry.actor, &entry.event);
        let known = self.lock_seen().codes.get(&key).cloned();
        if let Some(evidence) = known {
            return Ok(AuditReceipt { evidence });
        }
        // The append waits for the disk sync: keep it off the async workers.
        let ledger = self.ledger.clone();
        let appended = tokio::task::spawn_blocking(move || ledger.append(entry))
            .await
            .map_err(audit_error)?
            .map_err(audit_error)?;
        let evidence = appended.evidence_code.to_string();
        self.lock_seen().codes.insert(key, evidence.clone());
        Ok(AuditReceipt { evidence })
    }

    fn delivers(&self) -> bool {
        self.leadership.as_ref().is_none_or(Leadership::is_writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, AuditEventId, CompetitionId, JobId, OrgId, SubmissionId};
    use crate::model::RunOutcome;
    use crate::time::Timestamp;

    fn record(id: i64, event: AuditEvent) -> AuditRecord {
        AuditRecord {
            id: AuditEventId(id),
            at: Timestamp::from_millis(1_790_000_000_000 + id),
            actor: Some(AccountId(4)),
            event,
            evidence: None,
        }
    }

    #[tokio::test]
    async fn records_are_appended_once_and_receipts_verify()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let ledger = Arc::new(open_ledger(dir.path(), "medarena.test/ledger")?);
        let sink = LedgerSink::new(ledger.clone())?;
        let received = record(
            1,
            AuditEvent::SubmissionReceived {
                submission: SubmissionId(9),
                competition: CompetitionId(2),
                team: OrgId(3),
                phase: "public".into(),
                module_sha256: "ab".repeat(32),
            },
        );
        let finished = record(
            2,
            AuditEvent::RunFinished {
                job: JobId(5),
                submission: SubmissionId(9),
                kind: crate::model::JobKind::RealRun,
                outcome: RunOutcome::Ok,
                released_public_score: Some(0.75),
            },
        );
        let first = sink.record(&received).await?;
        let second = sink.record(&finished).await?;
        assert_ne!(first, second);
        // Re-delivery (also after a restart) gives the same receipt and no new entry.
        assert_eq!(sink.record(&received).await?, first);
        let reopened = LedgerSink::new(ledger.clone())?;
        assert_eq!(reopened.record(&finished).await?, second);
        assert_eq!(ledger.read(|l| l.len()), 2);

        let key = ledger.read(|l| l.verifier_key().clone());
        let code = medarena_ledger::EvidenceCode::parse(&second.evidence)?;
        let receipt = ledger.read(|l| l.receipt_for(&code))?;
        let (entry, _) = receipt.verify(&key)?;
        assert_eq!(entry.event.kind(), "x.run_finished");
        assert!(receipt.entry.contains("released_public_score 0.75"));
        Ok(())
    }

    #[test]
    fn every_kind_of_event_maps_to_a_valid_entry() {
        let events = [
            AuditEvent::CompetitionClosed {
                competition: CompetitionId(1),
            },
            AuditEvent::AgreementAccepted {
                competition: CompetitionId(1),
                team: OrgId(2),
                account: AccountId(3),
                agreement_sha256: "cd".repeat(32),
            },
            AuditEvent::JobStarted {
                job: JobId(1),
                attempt: 1,
                worker: "serve-1-0".into(),
            },
        ];
        for event in events {
            assert!(ledger_entry(&record(1, event.clone())).is_ok(), "{event:?}");
        }
        let bad = AuditEvent::SubmissionReceived {
            submission: SubmissionId(9),
            competition: CompetitionId(2),
            team: OrgId(3),
            phase: "public".into(),
            module_sha256: "not hex".into(),
        };
        assert!(ledger_entry(&record(1, bad)).is_err());
    }
}
