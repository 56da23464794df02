//! Test doubles for the three plug-in traits, for this crate's tests and the web face's,
//! which need fast, scriptable runs. Not for production.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::audit::{AuditError, AuditReceipt, AuditRecord, AuditSink};
use crate::bundle::SandboxLimits;
use crate::executor::{
    ContributionData, DatasetUpload, DatasetValidator, ExecutorError, PrecheckRejection,
    RunExecutor, RunRequest, RunResult, ValidationOutcome, ValidatorError,
};
use crate::ids::{AuditEventId, JobId};
use crate::model::{Dataset, JobKind, RunOutcome};

/// Keeps every record it is given (once per id, like an idempotent ledger); can be told to
/// fail.
#[derive(Debug, Default)]
pub struct RecordingAuditSink {
    records: Mutex<Vec<AuditRecord>>,
    failing: AtomicBool,
    calls: AtomicUsize,
}

impl RecordingAuditSink {
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        self.records().iter().map(|r| r.event.kind()).collect()
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Sink calls including failed ones and redeliveries.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl AuditSink for RecordingAuditSink {
    async fn record(&self, record: &AuditRecord) -> Result<AuditReceipt, AuditError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(AuditError("sink unavailable".to_owned()));
        }
        let mut records = self
            .records
            .lock()
            .map_err(|_| AuditError("poisoned".to_owned()))?;
        if !records.iter().any(|r| r.id == record.id) {
            records.push(record.clone());
        }
        Ok(AuditReceipt {
            evidence: evidence_for(record.id),
        })
    }
}

/// The evidence code [`RecordingAuditSink`] hands out.
pub fn evidence_for(id: AuditEventId) -> String {
    format!("evidence-{:06}", id.0)
}

/// Accepts any upload except one containing the bytes `PHI`, which it rejects with a report
/// naming the row and column, the way datasets-spec will.
#[derive(Debug, Default)]
pub struct ScriptedValidator {
    pub calls: AtomicUsize,
}

#[async_trait]
impl DatasetValidator for ScriptedValidator {
    async fn validate(
        &self,
        _dataset: &Dataset,
        upload: &DatasetUpload,
        _others: &[ContributionData],
    ) -> Result<ValidationOutcome, ValidatorError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let text = String::from_utf8_lossy(&upload.bytes);
        let rows = i64::try_from(text.lines().count().saturating_sub(1)).unwrap_or(i64::MAX);
        match text.lines().position(|line| line.contains("PHI")) {
            Some(line) => Ok(ValidationOutcome {
                accepted: false,
                rows: Some(rows),
                // The shape of datasets-spec's report: rule, severity, column, counts, rows.
                report: serde_json::json!({
                    "rows": rows,
                    "findings": [{ "rule": "phi.person_name", "severity": "error", "column": "notes",
                                   "rows": 1, "row_numbers": [line], "message": "looks like a name" }]
                }),
            }),
            None => Ok(ValidationOutcome {
                accepted: true,
                rows: Some(rows),
                report: serde_json::json!({ "findings": [], "rows": rows }),
            }),
        }
    }
}

type Script = dyn Fn(&RunRequest<'_>) -> Result<RunResult, ExecutorError> + Send + Sync;

/// An executor whose behaviour a test scripts. It records which jobs it started and the
/// highest number of runs it saw at once; `delay` makes runs slow (to crash them
/// mid-run). Real runs read the real data first, exercising decryption.
pub struct ScriptedExecutor {
    script: Box<Script>,
    delay_ms: AtomicU64,
    started: Mutex<Vec<(JobId, JobKind)>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

impl std::fmt::Debug for ScriptedExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedExecutor").finish_non_exhaustive()
    }
}

impl ScriptedExecutor {
    pub fn new(
        script: impl Fn(&RunRequest<'_>) -> Result<RunResult, ExecutorError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            script: Box::new(script),
            delay_ms: AtomicU64::new(0),
            started: Mutex::new(Vec::new()),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
        }
    }

    /// Every run succeeds with [`successful_result`].
    pub fn succeeding() -> Self {
        Self::new(|request| Ok(successful_result(request)))
    }

    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    pub fn started(&self) -> Vec<(JobId, JobKind)> {
        self.started.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn max_concurrent(&self) -> usize {
        self.max_running.load(Ordering::SeqCst)
    }
}

/// A plausible result: a dummy score for dummy runs; for real runs released/exact/private
/// scores and a charge of one release's ε on every dataset.
pub fn successful_result(request: &RunRequest<'_>) -> RunResult {
    match request.job.kind {
        JobKind::DummyRun => RunResult {
            outcome: RunOutcome::Ok,
            dummy_score: Some(0.5),
            ..RunResult::default()
        },
        JobKind::RealRun => RunResult {
            outcome: RunOutcome::Ok,
            dummy_score: None,
            released_public_score: Some(0.80),
            exact_public_score: Some(0.81),
            private_score: Some(0.79),
            details: serde_json::json!({ "interval": [0.75, 0.86] }),
            measured: Some(SCRIPTED_USAGE),
            ..RunResult::default()
        },
    }
}

/// What [`successful_result`] says a real run used.
pub const SCRIPTED_USAGE: crate::store::MeasuredUsage = crate::store::MeasuredUsage {
    cpu_millis: Some(1234),
    peak_memory_bytes: Some(5 << 20),
};

struct RunningGuard<'a>(&'a AtomicUsize);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl RunExecutor for ScriptedExecutor {
    async fn precheck(
        &self,
        module: &[u8],
        _limits: &SandboxLimits,
    ) -> Result<(), PrecheckRejection> {
        if module.starts_with(b"\0asm") {
            Ok(())
        } else {
            Err(PrecheckRejection {
                reason: "not a WebAssembly module (missing \\0asm header)".to_owned(),
            })
        }
    }

    async fn execute(&self, request: RunRequest<'_>) -> Result<RunResult, ExecutorError> {
        if let Ok(mut started) = self.started.lock() {
            started.push((request.job.id, request.job.kind));
        }
        let now_running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = RunningGuard(&self.running);
        self.max_running.fetch_max(now_running, Ordering::SeqCst);
        let module = request.inputs.module().await?;
        if !module.starts_with(b"\0asm") {
            return Err(ExecutorError::Permanent("module bytes changed".to_owned()));
        }
        if request.job.kind == JobKind::RealRun {
            request.inputs.real_data().await?;
        }
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        (self.script)(&request)
    }
}

/// Puts a competition under a contract that every given party accepts: the platform (as
/// `organizer`), `hospitals` and `teams` (for an open offer, each team for itself). For
/// tests and the demo, which need real runs to be covered.
pub async fn contract_accepted_by_all(
    arena: &crate::Arena,
    organizer: &crate::Actor,
    proposal: &crate::ContractProposal,
    hospitals: &[&crate::Actor],
    teams: &[&crate::Actor],
) -> crate::ArenaResult<crate::contract::Contract> {
    let contract = arena.propose_contract(organizer, proposal).await?;
    let digest = contract.terms_sha256.clone();
    arena
        .accept_contract(organizer, contract.id, &digest)
        .await?;
    for party in hospitals.iter().chain(teams) {
        arena.accept_contract(party, contract.id, &digest).await?;
    }
    Ok(arena.contract(organizer, contract.id).await?.contract)
}

/// A team accepts every open offer of a competition it may see (tests: a team admitted
/// after the contract was made).
pub async fn accept_open_offers(
    arena: &crate::Arena,
    team: &crate::Actor,
    competition: crate::ids::CompetitionId,
) -> crate::ArenaResult<usize> {
    let mut accepted = 0;
    for contract in arena.contracts(team, Some(competition)).await? {
        if contract.terms.team.is_none() && contract.state == crate::contract::ContractState::Active
        {
            arena
                .accept_contract(team, contract.id, &contract.terms_sha256)
                .await?;
            accepted += 1;
        }
    }
    Ok(accepted)
}
