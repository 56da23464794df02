//! [`SandboxExecutor`]: runs jobs through the sandbox, scores them and releases what may be
//! released (see the [module docs](super)).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use medarena_datasets_spec::{
    Format, LoadOptions, Manifest, Part, RecordBatch, SplitConfig, load_bytes_with_manifest,
    union_sites,
};
use medarena_sandbox::{
    AnalyzeJob, ChildUsage, Limits, RunFailure, Sandbox, SandboxConfig, Status, Timings,
};
use medarena_scorer::{
    AggregateSpec, BootstrapConfig, BudgetAccountant, ClampBounds, DatasetBudget,
    InMemoryAccountant, LadderState, Metric, NoiseMechanism, Payer, PrivacyCost, Range, block_mean,
    block_score, bootstrap_ci, paired_bootstrap, per_site_scores, release_range, release_scalar,
    round_to_grid, sample_and_aggregate,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::PipelineConfig;
use super::data::{
    DeclaredBounds, EvaluationError, HOSPITAL_COLUMN, ScoredPart, SealedEvaluation, TaskSpec,
    analysis_rows, evaluate, evaluate_sealed, sandbox_limits, take_rows,
};
use crate::bundle::{PrivacyLevel, SandboxLimits};
use crate::executor::{
    CompareRequest, ContributionData, EntryComparison, ExecutorError, PrecheckRejection,
    RunExecutor, RunInputs, RunRequest, RunResult,
};
use crate::model::{
    AnalysisSpec, Competition, JobKind, ReleasedAggregate, RunOutcome, Submission, SubmissionKind,
};

/// Where a real run's details keep [`per_hospital_private`] (organizers only; the core
/// releases them with noise at publication, see `Arena::publish_competition`).
pub const PER_HOSPITAL_KEY: &str = "per_hospital_private";

/// Each contributing hospital's exact private score, computed as the released score is:
/// the mean over the k blocks of each block's clamped score on that hospital's private
/// rows (a block without any counts as the range's midpoint). One row lives in one block,
/// so each value moves by at most (max − min)/k when one row changes, as the released
/// score does. Keyed by the hospital's organization id.
fn per_hospital_private(
    evaluation: &SealedEvaluation,
    metric: Metric,
    clamp: &ClampBounds,
    range: Range,
) -> Result<std::collections::BTreeMap<String, f64>, ExecutorError> {
    let hospitals: std::collections::BTreeSet<&str> = evaluation
        .blocks
        .iter()
        .flat_map(|b| b.private_hospitals.iter().map(String::as_str))
        .filter(|h| !h.is_empty())
        .collect();
    let mut scores = std::collections::BTreeMap::new();
    for hospital in hospitals {
        let blocks = evaluation
            .blocks
            .iter()
            .map(|block| {
                let rows: Vec<usize> = (0..block.private_hospitals.len())
                    .filter(|&row| block.private_hospitals[row] == hospital)
                    .collect();
                let part = &block.private;
                block_score(
                    metric,
                    &part.truth.select(&rows),
                    &part.predictions.select(&rows),
                    &part.context,
                    clamp,
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| permanent(e.to_string()))?;
        let mean = block_mean(&blocks, range).map_err(|e| permanent(e.to_string()))?;
        scores.insert(hospital.to_owned(), mean);
    }
    Ok(scores)
}

/// The coarse outcome of a sandbox status; `None` for the platform's own failures.
pub fn outcome_of(status: Status) -> Option<RunOutcome> {
    match status {
        Status::CompileLimit | Status::MemoryLimit | Status::Deadline => {
            Some(RunOutcome::OverLimit)
        }
        Status::Refused | Status::Trap | Status::BadOutput => Some(RunOutcome::Failed),
        Status::Internal => None,
    }
}

/// The accountant's names for the one payer of a run (the core keeps the real books).
const RUN_TEAM: &str = "team";
const RUN_DATASETS: &str = "competition datasets";

/// Runs jobs with the sandbox, datasets-spec and the scorer.
#[derive(Debug, Clone)]
pub struct SandboxExecutor {
    sandbox: Arc<Sandbox>,
    config: Arc<PipelineConfig>,
}

impl SandboxExecutor {
    pub fn new(config: PipelineConfig) -> Self {
        let mut sandbox_config = SandboxConfig::new(config.child.clone());
        sandbox_config.cache = config.cache.clone();
        sandbox_config.hardening = config.hardening;
        SandboxExecutor {
            sandbox: Arc::new(Sandbox::new(sandbox_config)),
            config: Arc::new(config),
        }
    }

    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }
}

/// The seed a submission's guest gets: derived from the competition's split seed and the
/// submission id, so that a run can be reproduced bit for bit (organizers' comparisons).
pub(crate) fn run_seed(split_seed: u64, submission: i64) -> u64 {
    let digest = Sha256::new()
        .chain_update(b"medarena/run-seed/v1")
        .chain_update(split_seed.to_le_bytes())
        .chain_update(submission.to_le_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

fn permanent(message: impl Into<String>) -> ExecutorError {
    ExecutorError::Permanent(message.into())
}

fn split_config(competition: &Competition) -> SplitConfig {
    let split = &competition.bundle.split;
    SplitConfig {
        seed: split.seed,
        train: split.train,
        public_test: split.public_test,
    }
}

fn task_spec(
    competition: &Competition,
    submission: &Submission,
) -> Result<TaskSpec, ExecutorError> {
    let bundle = &competition.bundle;
    let metric = bundle
        .scorer_metric()
        .ok_or_else(|| permanent(format!("unknown metric `{}`", bundle.metric)))?;
    Ok(TaskSpec {
        task: bundle.task,
        target: bundle.target.clone(),
        metric,
        split: split_config(competition),
        seed: run_seed(bundle.split.seed, submission.id.0),
        limits: sandbox_limits(&bundle.sandbox),
        scoring: bundle.score_context(),
        organizer_metrics: bundle.scorer_organizer_metrics(),
        survival_grid: bundle.survival_grid(),
    })
}

/// The manifest of the competition's data: the first validated contribution's (every
/// contribution of a dataset shares its schema; validation checked it).
fn competition_manifest(inputs: &RunInputs) -> Result<Manifest, ExecutorError> {
    let manifests = inputs.manifests();
    let text = manifests
        .iter()
        .find_map(|m| m.manifest.clone())
        .ok_or_else(|| permanent("the competition's datasets have no validated contribution"))?;
    Manifest::from_str(&text).map_err(|err| permanent(format!("the dataset manifest: {err}")))
}

/// Every contribution loaded and united with a site column.
fn real_table(
    manifest: &Manifest,
    contributions: &[ContributionData],
) -> Result<RecordBatch, ExecutorError> {
    let mut parts = Vec::with_capacity(contributions.len());
    let mut hospitals = Vec::new();
    for contribution in contributions {
        let format = Format::from_extension(Path::new(&contribution.file_name))
            .unwrap_or_else(|| Format::sniff(&contribution.bytes));
        let loaded = load_bytes_with_manifest(
            manifest,
            &contribution.bytes,
            format,
            &contribution.contribution.to_string(),
            &LoadOptions::default(),
        )
        .map_err(|_| permanent(format!("{} cannot be loaded", contribution.contribution)))?;
        let hospital = contribution.hospital.0.to_string();
        hospitals.extend(std::iter::repeat_n(hospital, loaded.batch.num_rows()));
        parts.push((format!("site-{}", contribution.hospital.0), loaded.batch));
    }
    let united = union_sites(manifest, &parts)
        .map_err(|err| permanent(format!("uniting the contributions: {err}")))?;
    // The union keeps every row, in the order of the parts.
    if united.num_rows() != hospitals.len() {
        return Err(permanent("uniting the contributions changed the rows"));
    }
    append_text_column(&united, HOSPITAL_COLUMN, hospitals)
}

/// `batch` with one more (non-null, text) column.
fn append_text_column(
    batch: &RecordBatch,
    name: &str,
    values: Vec<String>,
) -> Result<RecordBatch, ExecutorError> {
    use medarena_datasets_spec::arrow::array::{ArrayRef, StringArray};
    use medarena_datasets_spec::arrow::datatypes::{DataType, Field, Schema};
    let schema = batch.schema();
    let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(name, DataType::Utf8, false)));
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(StringArray::from(values)) as ArrayRef);
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|err| permanent(format!("adding the hospital column: {err}")))
}

/// Dummy data for a run: drawn from the published synthetic releases, else the manifest's
/// generator, with the competition's split seed, so that every team (and `medarena run
/// --seed` on the downloaded table) gets the same table.
fn dummy_table(
    manifest: &Manifest,
    inputs: &RunInputs,
    rows: usize,
    seed: u64,
) -> Result<RecordBatch, ExecutorError> {
    super::synthetic::development_table(manifest, inputs.synthetic(), rows, seed).map_err(permanent)
}

/// What a dummy run's data was drawn from, for its team.
fn development_source(inputs: &RunInputs) -> serde_json::Value {
    if inputs.synthetic().is_empty() {
        json!({"kind": "dummy"})
    } else {
        json!({
            "kind": "synthetic",
            "releases": inputs.synthetic().iter().map(|s| s.release.0).collect::<Vec<_>>(),
        })
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

/// Time per phase in milliseconds (exact: teams see it for dummy runs only).
pub(crate) fn timings_json(timings: &Timings) -> Value {
    json!({
        "precheck_ms": millis(timings.precheck),
        "encode_ms": millis(timings.encode),
        "compile_ms": timings.compile.map(millis),
        "startup_ms": millis(timings.startup),
        "data_in_ms": millis(timings.data_in),
        "fit_ms": millis(timings.fit),
        "predict_ms": millis(timings.predict),
        "analyze_ms": timings.analyze.iter().map(|d| millis(*d)).collect::<Vec<_>>(),
        "total_ms": millis(timings.total),
    })
}

/// What organizers see of a dummy run: what the team sees, and the time per phase. A team
/// does not see its dummy run's timings on the platform: a real run of its own (or anyone's)
/// on the same machine could slow it down by an amount that follows the data. The same
/// timings are in `medarena run`'s report, locally.
fn with_timings(team_details: &Value, timings: &Timings) -> Value {
    let mut details = team_details.clone();
    if let Value::Object(map) = &mut details {
        map.insert("timings".to_owned(), timings_json(timings));
    }
    details
}

/// A failed sandbox run as a result: the coarse outcome; on dummy data also the detail
/// and the guest's output. `Internal` is the platform's failure: retried.
fn failed_run(failure: RunFailure, dummy: bool) -> Result<RunResult, ExecutorError> {
    let outcome = outcome_of(failure.status).ok_or_else(|| {
        ExecutorError::Transient(format!(
            "the sandbox failed: {}",
            failure.status.sealed_message()
        ))
    })?;
    let details = json!({ "status": failure.status.as_str(), "phase": failure.phase.as_str() });
    Ok(RunResult {
        outcome,
        details: details.clone(),
        failure_detail: dummy.then(|| failure.to_string()),
        guest_log: dummy.then_some(failure.debug_log),
        team_details: dummy.then_some(details),
        ..RunResult::default()
    })
}

tokio::task_local! {
    /// What the sandbox children of the run this task executes used so far (see
    /// [`measured`]).
    static RUN_USAGE: std::cell::Cell<ChildUsage>;
}

/// Runs `work` on a blocking thread. The sandbox children it reaps there are added to the
/// task's [`RUN_USAGE`] when the task is measured (a sandbox host is synchronous: a run's
/// children are spawned and reaped on the thread that calls it).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ExecutorError> {
    let (value, usage) = tokio::task::spawn_blocking(move || {
        // Whatever an earlier job left on this pooled thread is not ours.
        medarena_sandbox::take_child_usage();
        let value = work();
        (value, medarena_sandbox::take_child_usage())
    })
    .await
    .map_err(|err| ExecutorError::Transient(format!("the run's thread failed: {err}")))?;
    let _ = RUN_USAGE.try_with(|total| {
        let mut sum = total.get();
        sum.add(usage);
        total.set(sum);
    });
    Ok(value)
}

/// Runs a real run's future and records what its sandbox children used in its result:
/// CPU time and peak memory, for the operators' metering (they follow the hidden rows, so
/// nothing shows them to a team: `RunResult::measured`).
async fn measured(
    run: impl std::future::Future<Output = Result<RunResult, ExecutorError>>,
) -> Result<RunResult, ExecutorError> {
    RUN_USAGE
        .scope(std::cell::Cell::new(ChildUsage::default()), async {
            let mut result = run.await?;
            let usage = RUN_USAGE.with(std::cell::Cell::get);
            result.measured = Some(crate::store::MeasuredUsage {
                cpu_millis: Some(i64::try_from(usage.cpu.as_millis()).unwrap_or(i64::MAX)),
                peak_memory_bytes: Some(i64::try_from(usage.max_rss_bytes).unwrap_or(i64::MAX)),
            });
            Ok(result)
        })
        .await
}

/// A one-run accountant holding exactly what the core reserved for this run when it queued
/// it (plus a hair, since OpenDP's stated cost is at most the ε asked for and the reserve is
/// rounded up to whole micro-ε). The scorer charges it before drawing noise, so a release
/// can never cost more than what was booked.
fn run_accountant(reserved_epsilon: f64) -> Result<InMemoryAccountant, ExecutorError> {
    let accountant = InMemoryAccountant::new();
    accountant
        .set_budget(
            RUN_DATASETS,
            DatasetBudget {
                per_team: PrivacyCost::pure(if reserved_epsilon.is_finite() {
                    reserved_epsilon + 1e-9
                } else {
                    0.0
                }),
                total: None,
            },
        )
        .map_err(|err| permanent(format!("setting the run's budget: {err}")))?;
    Ok(accountant)
}

impl SandboxExecutor {
    async fn dummy_model(&self, request: &RunRequest<'_>) -> Result<RunResult, ExecutorError> {
        let spec = task_spec(request.competition, request.submission)?;
        let manifest = competition_manifest(request.inputs)?;
        let rows = self.config.dummy_rows;
        let dummy_seed = request.competition.bundle.split.seed;
        let table = dummy_table(&manifest, request.inputs, rows, dummy_seed)?;
        let module = request.inputs.module().await?;
        let sandbox = self.sandbox.clone();
        let task = spec.clone();
        let evaluation =
            blocking(move || evaluate(&sandbox, &module, &manifest, &table, &task, true)).await?;
        let evaluation = match evaluation {
            Ok(evaluation) => evaluation,
            Err(EvaluationError::Submission(failure)) => return failed_run(failure, true),
            Err(EvaluationError::Data(message)) => return Err(permanent(message)),
        };
        let score = evaluation.test().score(spec.metric);
        let team_details = json!({
            "dummy_rows": rows,
            "dummy_seed": dummy_seed,
            "dummy_source": development_source(request.inputs),
            "guest_seed": spec.seed,
            "metric": spec.metric.name(),
            "score_error": score.as_ref().err().map(ToString::to_string),
            "cache_hit": evaluation.output.cache_hit,
        });
        Ok(RunResult {
            outcome: RunOutcome::Ok,
            dummy_score: score.ok(),
            details: with_timings(&team_details, &evaluation.output.timings),
            guest_log: Some(evaluation.output.debug_log),
            team_details: Some(team_details),
            ..RunResult::default()
        })
    }

    /// The sealed evaluation of a real run: every contribution loaded and united, the
    /// declared bounds checked, then the competition's blocks run (see [`evaluate_sealed`]).
    async fn sealed_evaluation(
        &self,
        competition: &Competition,
        spec: &TaskSpec,
        inputs: &RunInputs,
    ) -> Result<SealedEvaluation, ExecutorError> {
        let bundle = &competition.bundle;
        let manifest = competition_manifest(inputs)?;
        let contributions = inputs.real_data().await?;
        let module = inputs.module().await?;
        let sandbox = self.sandbox.clone();
        let task = spec.clone();
        let blocks = bundle.blocks_per_run();
        let bounds = DeclaredBounds {
            min_rows: bundle.privacy.min_rows,
            test_parts: (bundle.privacy.level == PrivacyLevel::Label)
                .then(|| bundle.declared_facts()),
        };
        blocking(move || {
            let table = real_table(&manifest, &contributions)?;
            drop(contributions);
            evaluate_sealed(&sandbox, &module, &manifest, &table, &task, blocks, &bounds)
                .map_err(|err| permanent(err.to_string()))
        })
        .await?
    }

    async fn real_model(&self, request: &RunRequest<'_>) -> Result<RunResult, ExecutorError> {
        let competition = request.competition;
        let bundle = &competition.bundle;
        let spec = task_spec(competition, request.submission)?;
        let terms = bundle
            .release_terms()
            .ok_or_else(|| permanent("the competition's release terms do not hold"))?;
        let evaluation = self
            .sealed_evaluation(competition, &spec, request.inputs)
            .await?;
        let metric = spec.metric;
        let clamp = bundle.privacy.public_score.clamp_bounds();
        let range = release_range(metric, &clamp).map_err(|e| permanent(e.to_string()))?;
        let mean_of = |part: Part| -> Result<f64, ExecutorError> {
            let scores = evaluation
                .blocks
                .iter()
                .map(|block| {
                    let scored = match part {
                        Part::PrivateTest => &block.private,
                        _ => &block.public,
                    };
                    block_score(
                        metric,
                        &scored.truth,
                        &scored.predictions,
                        &scored.context,
                        &clamp,
                    )
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| permanent(e.to_string()))?;
            block_mean(&scores, range).map_err(|e| permanent(e.to_string()))
        };
        let exact_public = mean_of(Part::PublicTest)?;
        let exact_private = mean_of(Part::PrivateTest)?;
        let per_hospital = per_hospital_private(&evaluation, spec.metric, &clamp, range)?;

        // The core reserved this run's ε when it queued it; the release spends it.
        let accountant = run_accountant(request.reserved_epsilon)?;
        let payer = Payer {
            accountant: &accountant,
            team: RUN_TEAM,
            dataset: RUN_DATASETS,
        };
        let release = release_scalar(
            &payer,
            exact_public,
            terms.sensitivity,
            terms.public_epsilon,
            range,
        )
        .map_err(|err| permanent(format!("releasing the public score: {err}")))?;
        let mut shown = release.value;
        if let Some(grid) = terms.score_grid {
            shown = round_to_grid(shown, grid, range);
        }
        let mut ladder_improved = None;
        let ladder = match terms.ladder_step {
            None => None,
            Some(step) => {
                let mut state = request
                    .release_state
                    .and_then(|state| serde_json::from_value::<LadderState>(state.clone()).ok())
                    .filter(|state| state.metric == metric && state.step == step)
                    .map_or_else(|| LadderState::new(metric, step), Ok)
                    .map_err(|err| permanent(format!("the Ladder: {err}")))?;
                let (value, improved) = state.submit(shown);
                shown = value.clamp(range.min, range.max);
                ladder_improved = Some(improved);
                Some(state)
            }
        };
        let details = json!({
            "release": {
                "level": terms.level.as_str(),
                "mechanism": if ladder.is_some() { "noisy_ladder" } else { "laplace" },
                "epsilon": release.calibration.epsilon,
                "sensitivity": release.calibration.sensitivity,
                "noise_scale": release.calibration.noise_scale,
                "half_width_95": release.calibration.half_width_95,
                "noisy_value": release.value,
                "ladder_improved": ladder_improved,
            },
            "evaluation": self.organizer_details(&spec, &evaluation, exact_public, exact_private, request),
            PER_HOSPITAL_KEY: per_hospital,
        });
        Ok(RunResult {
            outcome: RunOutcome::Ok,
            released_public_score: Some(shown),
            exact_public_score: Some(exact_public),
            private_score: Some(exact_private),
            release_state: ladder.and_then(|state| serde_json::to_value(state).ok()),
            details,
            ..RunResult::default()
        })
    }

    /// What organizers see of a real run: the exact (clamped block-mean) scores, how every
    /// block ended, bootstrap intervals and per-site scores of the pooled out-of-block
    /// predictions, the split record, sizes and timings.
    fn organizer_details(
        &self,
        spec: &TaskSpec,
        evaluation: &SealedEvaluation,
        public_score: f64,
        private_score: f64,
        request: &RunRequest<'_>,
    ) -> Value {
        let bootstrap = BootstrapConfig {
            resamples: self.config.bootstrap_resamples,
            level: 0.95,
            seed: spec.split.seed,
        };
        let (public, private) = (
            evaluation.pooled(Part::PublicTest),
            evaluation.pooled(Part::PrivateTest),
        );
        let score_of = |part: &ScoredPart, metric: Metric| {
            part.score(metric)
                .map_or_else(|e| json!({ "error": e.to_string() }), |s| json!(s))
        };
        let pooled = |part: &ScoredPart| {
            let organizer_metrics: serde_json::Map<String, Value> = spec
                .organizer_metrics
                .iter()
                .map(|&metric| (metric.name().to_owned(), score_of(part, metric)))
                .collect();
            json!({
                "score": score_of(part, spec.metric),
                "ci": bootstrap_ci(spec.metric, &part.truth, &part.predictions, &part.context, &bootstrap)
                    .map_or_else(|err| json!({ "error": err.to_string() }), |ci| json!(ci)),
                "per_site": per_site_scores(spec.metric, &part.truth, &part.predictions, &part.context, &part.sites)
                    .map_or_else(|err| json!({ "error": err.to_string() }), |s| json!(s)),
                "organizer_metrics": organizer_metrics,
            })
        };
        let elapsed: Duration = evaluation.blocks.iter().map(|b| b.elapsed).sum();
        json!({
            "metric": spec.metric.name(),
            "guest_seed": spec.seed,
            "module_sha256": request.submission.module_sha256,
            "exact_public_score": public_score,
            "private_score": private_score,
            "blocks": evaluation.blocks.len(),
            "block_statuses": evaluation.statuses(),
            "pooled": { "public": pooled(&public), "private": pooled(&private) },
            "rows": {
                "with_target": evaluation.rows_with_target,
                "train": evaluation.blocks.iter().map(|b| b.train_rows).sum::<usize>(),
                "public_test": public.rows(),
                "private_test": private.rows(),
                "without_target": evaluation.rows_without_target,
            },
            "split": evaluation.split,
            "sandbox_ms": millis(elapsed),
        })
    }

    async fn analysis(&self, request: &RunRequest<'_>) -> Result<RunResult, ExecutorError> {
        let spec = request
            .submission
            .analysis
            .clone()
            .ok_or_else(|| permanent("an analysis submission without its declaration"))?;
        let competition = request.competition;
        let manifest = competition_manifest(request.inputs)?;
        let module = request.inputs.module().await?;
        let limits = sandbox_limits(&competition.bundle.sandbox);
        let split = split_config(competition);
        let target = competition.bundle.target.clone();
        let block_seed = run_seed(split.seed ^ 0xA5A5_A5A5, request.submission.id.0);
        let dummy = request.job.kind == JobKind::DummyRun;
        let table = if dummy {
            dummy_table(
                &manifest,
                request.inputs,
                self.config.dummy_rows,
                split.seed,
            )?
        } else {
            let contributions = request.inputs.real_data().await?;
            let manifest = manifest.clone();
            blocking(move || real_table(&manifest, &contributions)).await??
        };
        let min_block_rows = competition.bundle.privacy.suppression_threshold as usize;
        let sandbox = self.sandbox.clone();
        let run = blocking(move || {
            let (rows, blocks) =
                analysis_rows(&manifest, &table, &target, &split, spec.blocks, block_seed)?;
            run_analysis(
                &sandbox,
                &module,
                &rows,
                &blocks,
                &spec,
                block_seed,
                &limits,
                dummy,
                min_block_rows,
            )
        })
        .await?
        .map_err(|err| match err {
            EvaluationError::Data(message) => permanent(message),
            EvaluationError::Submission(failure) => ExecutorError::Transient(failure.to_string()),
        })?;
        match run {
            AnalysisRun::Failed(failure) => failed_run(failure, dummy),
            AnalysisRun::TooManyBlocks { rows } => Ok(RunResult {
                outcome: RunOutcome::Failed,
                details: json!({ "refused": "blocks would hold fewer rows than the suppression threshold", "rows": rows }),
                failure_detail: dummy.then(|| {
                    format!(
                        "{rows} rows cannot make {} blocks of at least {min_block_rows} rows",
                        request.submission.analysis.as_ref().map_or(0, |s| s.blocks)
                    )
                }),
                ..RunResult::default()
            }),
            AnalysisRun::Dummy {
                blocks,
                log,
                timings,
            } => {
                let team_details = json!({
                    "block_outputs": blocks,
                    "block_seed": block_seed,
                });
                Ok(RunResult {
                    outcome: RunOutcome::Ok,
                    details: with_timings(&team_details, &timings),
                    guest_log: Some(log),
                    team_details: Some(team_details),
                    ..RunResult::default()
                })
            }
            AnalysisRun::Real { outputs, rows } => {
                self.release_analysis(request, outputs, rows, block_seed)
            }
        }
    }

    fn release_analysis(
        &self,
        request: &RunRequest<'_>,
        outputs: Vec<Option<Vec<f64>>>,
        rows: usize,
        block_seed: u64,
    ) -> Result<RunResult, ExecutorError> {
        let spec = request
            .submission
            .analysis
            .as_ref()
            .ok_or_else(|| permanent("an analysis submission without its declaration"))?;
        let accountant = run_accountant(request.reserved_epsilon)?;
        let payer = Payer {
            accountant: &accountant,
            team: RUN_TEAM,
            dataset: RUN_DATASETS,
        };
        let aggregate = AggregateSpec {
            bounds: spec
                .bounds
                .iter()
                .map(|[low, high]| (*low, *high))
                .collect(),
            mechanism: NoiseMechanism::Laplace,
            epsilon: spec.epsilon,
        };
        let release = sample_and_aggregate(&payer, &outputs, &aggregate)
            .map_err(|err| permanent(format!("releasing the aggregate: {err}")))?;
        Ok(RunResult {
            outcome: RunOutcome::Ok,
            released_aggregate: Some(ReleasedAggregate {
                values: release.values.clone(),
                epsilon: release.cost.epsilon,
                blocks: spec.blocks,
                noise_scale: release.noise_scale.clone(),
            }),
            details: json!({
                "rows": rows,
                "blocks": release.blocks,
                "block_seed": block_seed,
                "replaced_blocks": release.replaced_blocks,
                "epsilon": release.cost.epsilon,
                "noise_scale": release.noise_scale,
            }),
            ..RunResult::default()
        })
    }

    async fn compare_entries(
        &self,
        request: &CompareRequest<'_>,
    ) -> Result<Vec<EntryComparison>, ExecutorError> {
        let Some((first, inputs)) = request.entries.first() else {
            return Ok(Vec::new());
        };
        let manifest = competition_manifest(inputs)?;
        let contributions = inputs.real_data().await?;
        let mut modules: Vec<(Submission, TaskSpec, Zeroizing<Vec<u8>>)> = Vec::new();
        for (submission, inputs) in &request.entries {
            let spec = task_spec(request.competition, submission)?;
            modules.push(((*submission).clone(), spec, inputs.module().await?));
        }
        let metric = task_spec(request.competition, first)?.metric;
        let sandbox = self.sandbox.clone();
        let bootstrap = BootstrapConfig {
            resamples: self.config.bootstrap_resamples,
            level: 0.95,
            seed: request.competition.bundle.split.seed,
        };
        let blocks = request.competition.bundle.blocks_per_run();
        blocking(move || {
            let table = real_table(&manifest, &contributions)?;
            drop(contributions);
            let mut parts = Vec::with_capacity(modules.len());
            for (submission, spec, module) in &modules {
                // The same blocks as the scored run (runs are deterministic), pooled.
                let bounds = DeclaredBounds::default();
                match evaluate_sealed(&sandbox, module, &manifest, &table, spec, blocks, &bounds) {
                    Ok(evaluation) => {
                        parts.push((submission.id, evaluation.pooled(Part::PrivateTest)))
                    }
                    Err(err) => {
                        return Err(permanent(format!("re-running {}: {err}", submission.id)));
                    }
                }
            }
            compare_parts(metric, &parts, &bootstrap)
        })
        .await?
    }
}

fn compare_parts(
    metric: Metric,
    parts: &[(crate::ids::SubmissionId, ScoredPart)],
    bootstrap: &BootstrapConfig,
) -> Result<Vec<EntryComparison>, ExecutorError> {
    parts
        .windows(2)
        .map(|pair| {
            let ((a, part_a), (b, part_b)) = (&pair[0], &pair[1]);
            let comparison = paired_bootstrap(
                metric,
                &part_a.truth,
                &part_a.predictions,
                &part_b.predictions,
                &part_a.context,
                bootstrap,
            )
            .map_err(|err| permanent(format!("comparing {a} and {b}: {err}")))?;
            Ok(EntryComparison {
                a: *a,
                b: *b,
                score_a: part_a.score(metric).map_err(|e| permanent(e.to_string()))?,
                score_b: part_b.score(metric).map_err(|e| permanent(e.to_string()))?,
                difference: comparison.difference.estimate,
                difference_lower: comparison.difference.lower,
                difference_upper: comparison.difference.upper,
                p_value: comparison.p_value,
                resamples: comparison.difference.resamples,
            })
        })
        .collect()
}

/// What an analysis run gave.
enum AnalysisRun {
    /// Dummy data: every block's raw output (synthetic, so the team may see it).
    Dummy {
        blocks: Vec<Vec<f64>>,
        log: String,
        timings: Timings,
    },
    /// Real data: per block, its output or `None` when that block's run failed.
    Real {
        outputs: Vec<Option<Vec<f64>>>,
        rows: usize,
    },
    Failed(RunFailure),
    TooManyBlocks {
        rows: usize,
    },
}

/// Runs `analyze` on the disjoint blocks of the rows. On dummy data all blocks share one
/// child and a failure is the team's to see (blocks smaller than the suppression threshold
/// on average are refused). On real data every block runs in its own child, so that one block's failure
/// (which depends on its rows) changes only that block's contribution: it counts as the
/// bounds' midpoint, as sample-and-aggregate requires; a platform failure of a block's
/// child gets one more try and then counts the same way. No block size is checked on real
/// data (it would tell the team something about the rows); the declared `min_rows` bounds
/// the blocks an analysis may ask for when it is submitted.
#[allow(clippy::too_many_arguments)]
fn run_analysis(
    sandbox: &Sandbox,
    module: &[u8],
    rows: &RecordBatch,
    members: &[Vec<usize>],
    spec: &AnalysisSpec,
    seed: u64,
    limits: &Limits,
    dummy: bool,
    min_block_rows: usize,
) -> Result<AnalysisRun, EvaluationError> {
    let blocks = members
        .iter()
        .map(|block| take_rows(rows, block))
        .collect::<Result<Vec<_>, _>>()?;
    let output_len = spec.bounds.len();
    if dummy {
        // Blocks are drawn row by row, so their sizes vary; their mean must reach the threshold.
        if rows.num_rows() / members.len().max(1) < min_block_rows.max(1) {
            return Ok(AnalysisRun::TooManyBlocks {
                rows: rows.num_rows(),
            });
        }
        let job = AnalyzeJob {
            blocks: &blocks,
            output_len,
            seed,
            limits,
            debug: true,
        };
        return Ok(match sandbox.analyze_blocks(module, &job) {
            Ok(output) => AnalysisRun::Dummy {
                blocks: output.blocks,
                log: output.debug_log,
                timings: output.timings,
            },
            Err(failure) => AnalysisRun::Failed(failure),
        });
    }
    let mut outputs = Vec::with_capacity(blocks.len());
    for (index, block) in blocks.iter().enumerate() {
        let job = AnalyzeJob {
            blocks: std::slice::from_ref(block),
            output_len,
            seed: seed.wrapping_add(index as u64),
            limits,
            debug: false,
        };
        let answer = match sandbox.analyze_blocks(module, &job) {
            Err(failure) if failure.status == Status::Internal => {
                sandbox.analyze_blocks(module, &job)
            }
            other => other,
        };
        outputs.push(answer.ok().and_then(|mut output| output.blocks.pop()));
    }
    Ok(AnalysisRun::Real {
        outputs,
        rows: rows.num_rows(),
    })
}

#[async_trait]
impl RunExecutor for SandboxExecutor {
    async fn precheck(
        &self,
        module: &[u8],
        limits: &SandboxLimits,
    ) -> Result<(), PrecheckRejection> {
        medarena_sandbox::precheck(module, &sandbox_limits(limits))
            .map(|_| ())
            .map_err(|refusal| PrecheckRejection {
                reason: refusal.to_string(),
            })
    }

    async fn execute(&self, request: RunRequest<'_>) -> Result<RunResult, ExecutorError> {
        match (request.submission.kind, request.job.kind) {
            (SubmissionKind::Model, JobKind::DummyRun) => self.dummy_model(&request).await,
            (SubmissionKind::Model, JobKind::RealRun) => measured(self.real_model(&request)).await,
            (SubmissionKind::Analysis, JobKind::DummyRun) => self.analysis(&request).await,
            (SubmissionKind::Analysis, JobKind::RealRun) => measured(self.analysis(&request)).await,
        }
    }

    async fn compare(
        &self,
        request: CompareRequest<'_>,
    ) -> Result<Vec<EntryComparison>, ExecutorError> {
        self.compare_entries(&request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_coarse_outcomes() {
        assert_eq!(outcome_of(Status::Deadline), Some(RunOutcome::OverLimit));
        assert_eq!(outcome_of(Status::MemoryLimit), Some(RunOutcome::OverLimit));
        assert_eq!(
            outcome_of(Status::CompileLimit),
            Some(RunOutcome::OverLimit)
        );
        assert_eq!(outcome_of(Status::Trap), Some(RunOutcome::Failed));
        assert_eq!(outcome_of(Status::BadOutput), Some(RunOutcome::Failed));
        assert_eq!(outcome_of(Status::Refused), Some(RunOutcome::Failed));
        assert_eq!(outcome_of(Status::Internal), None);
    }

    /// Four blocks, two hospitals: each hospital's value is the mean over all blocks of the
    /// block's AUC on that hospital's private rows, a block without (or with one class of)
    /// its rows counting as the midpoint; changing one row moves a value by at most 1/k.
    #[test]
    fn each_hospital_gets_the_block_mean_of_its_own_rows() {
        use super::super::data::SealedBlock;
        use medarena_datasets_spec::{ContentHash, SplitConfig, SplitRecord};
        use medarena_scorer::{Predictions, ScoreContext, Truth};
        let part = |truth: Vec<bool>, scores: Vec<f64>| ScoredPart {
            sites: vec![String::new(); truth.len()],
            truth: Truth::Binary(truth),
            predictions: Predictions::Scores(scores),
            context: ScoreContext::default(),
        };
        let block = |private: ScoredPart, hospitals: &[&str]| SealedBlock {
            failure: None,
            train_rows: 0,
            public: part(Vec::new(), Vec::new()),
            private,
            private_hospitals: hospitals.iter().map(|h| (*h).to_owned()).collect(),
            elapsed: Duration::ZERO,
        };
        let evaluation = |first_score: f64| SealedEvaluation {
            blocks: vec![
                // Hospital 1 ranks perfectly here, hospital 2 backwards.
                block(
                    part(
                        vec![true, false, true, false],
                        vec![first_score, 0.1, 0.2, 0.8],
                    ),
                    &["1", "1", "2", "2"],
                ),
                // Hospital 1 only: AUC 1; hospital 2 has no rows (midpoint).
                block(part(vec![true, false], vec![0.7, 0.3]), &["1", "1"]),
                // One class for hospital 2 (midpoint), perfect for hospital 1.
                block(
                    part(vec![false, true, false], vec![0.4, 0.6, 0.5]),
                    &["2", "1", "1"],
                ),
                // Nothing at all: both midpoints.
                block(part(Vec::new(), Vec::new()), &[]),
            ],
            split: SplitRecord {
                method: String::new(),
                config: SplitConfig::default(),
                stratified_on: Vec::new(),
                row_key: String::new(),
                table_hash: ContentHash([0; 32]),
                assignment_hash: ContentHash([0; 32]),
                strata: Vec::new(),
            },
            rows_with_target: 9,
            rows_without_target: 0,
        };
        let range = Range { min: 0.0, max: 1.0 };
        let clamp = ClampBounds::default();
        let scores =
            per_hospital_private(&evaluation(0.9), Metric::RocAuc, &clamp, range).expect("scores");
        assert_eq!(scores.len(), 2);
        assert!(
            (scores["1"] - (1.0 + 1.0 + 1.0 + 0.5) / 4.0).abs() < 1e-12,
            "{scores:?}"
        );
        assert!(
            (scores["2"] - (0.0 + 0.5 + 0.5 + 0.5) / 4.0).abs() < 1e-12,
            "{scores:?}"
        );
        // One row of hospital 1 changes its prediction: its value moves by at most 1/k,
        // hospital 2's not at all.
        let changed =
            per_hospital_private(&evaluation(0.0), Metric::RocAuc, &clamp, range).expect("scores");
        let moved = (changed["1"] - scores["1"]).abs();
        assert!(moved > 0.0 && moved <= 0.25 + 1e-12, "{moved}");
        assert_eq!(changed["2"], scores["2"]);
    }

    #[test]
    fn run_seeds_are_stable_and_distinct() {
        assert_eq!(run_seed(7, 1), run_seed(7, 1));
        assert_ne!(run_seed(7, 1), run_seed(7, 2));
        assert_ne!(run_seed(7, 1), run_seed(8, 1));
    }

    #[test]
    fn a_real_failure_carries_no_guest_text() {
        let failure = RunFailure {
            status: Status::Trap,
            phase: medarena_sandbox::Phase::Fit,
            message: "secret".to_owned(),
            debug_log: "row 3 = 42".to_owned(),
        };
        let result = failed_run(failure.clone(), false).expect("a result");
        let text = serde_json::to_string(&result).unwrap_or_default();
        assert!(!text.contains("secret") && !text.contains("42"), "{text}");
        assert_eq!(result.outcome, RunOutcome::Failed);
        let dummy = failed_run(failure, true).expect("a result");
        assert_eq!(dummy.guest_log.as_deref(), Some("row 3 = 42"));
        let internal = RunFailure {
            status: Status::Internal,
            ..dummy_failure()
        };
        assert!(matches!(
            failed_run(internal, true),
            Err(ExecutorError::Transient(_))
        ));
    }

    fn dummy_failure() -> RunFailure {
        RunFailure {
            status: Status::Trap,
            phase: medarena_sandbox::Phase::Fit,
            message: String::new(),
            debug_log: String::new(),
        }
    }
}
