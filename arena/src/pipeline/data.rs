//! From a typed table to scores: the target, the split, the sandbox's fit and predict, and
//! the truth of the test parts. Shared by dummy runs, real runs and `medarena run`, so a
//! submission runs locally exactly as it runs on the platform.

use std::sync::Arc;
use std::time::Duration;

use medarena_datasets_spec::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use medarena_datasets_spec::arrow::compute::{concat_batches, filter_record_batch, is_not_null};
use medarena_datasets_spec::arrow::datatypes::{Float64Type, Int64Type, Schema};
use medarena_datasets_spec::union::DEFAULT_SITE_COLUMN;
use medarena_datasets_spec::values::{TextColumn, as_text};
use medarena_datasets_spec::{Field, Manifest, Part, SplitConfig, SplitRecord, assign_rows};
use medarena_sandbox::{
    FitPredictJob, Interruption, Labels, Limits, RunFailure, RunOutput, Sandbox, Status,
};
use medarena_scorer::{
    KaplanMeier, Metric, Predictions, PublicPartFacts, ScoreContext, SurvivalLabels, Truth,
};

use crate::bundle::{SandboxLimits, TaskKind};

/// What to run: the competition's task, its split and the guest's seed.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub task: TaskKind,
    /// The column to predict (a `label` field of the manifest).
    pub target: String,
    pub metric: Metric,
    pub split: SplitConfig,
    /// The only randomness the guest gets (recorded with the run).
    pub seed: u64,
    pub limits: Limits,
    /// The public parameters of time-dependent metrics (horizons, truncation); each scored
    /// part adds the training labels of its own fit ([`ScoredPart::context`]).
    pub scoring: ScoreContext,
    /// Metrics computed beside `metric` for organizers (and `medarena run`), never released.
    pub organizer_metrics: Vec<Metric>,
    /// Survival only: the times at which the submission returns survival curves (ABI
    /// version 2) instead of risk scores; see [`crate::bundle::Bundle::survival_grid`].
    pub survival_grid: Option<Vec<f64>>,
}

/// The sandbox limits of a competition.
pub fn sandbox_limits(limits: &SandboxLimits) -> Limits {
    Limits {
        max_module_bytes: usize::try_from(limits.module_max_bytes).unwrap_or(usize::MAX),
        max_memory_bytes: u64::from(limits.memory_mib) << 20,
        compile_timeout: Duration::from_secs(u64::from(limits.compile_timeout_seconds)),
        deadline: Duration::from_secs(u64::from(limits.time_limit_seconds)),
        interruption: limits
            .fuel
            .map_or(Interruption::DeadlineKill, Interruption::Fuel),
        ..Limits::default()
    }
}

/// The column a real run's table carries beside the manifest's: the contributing hospital
/// of each row (its organization id), for the per-hospital scores of final entries. Never a
/// feature (features are the manifest's), absent from dummy and local data.
pub const HOSPITAL_COLUMN: &str = "__medarena_hospital";

/// The truth and the predictions of one test part, with each row's site.
#[derive(Debug, Clone)]
pub struct ScoredPart {
    pub truth: Truth,
    pub predictions: Predictions,
    pub sites: Vec<String>,
    /// The competition's [`TaskSpec::scoring`] plus, for survival, the training labels of
    /// the fit that predicted these rows: the IPCW metrics estimate the censoring
    /// distribution from them, so a block's score stays a function of that block's rows.
    pub context: ScoreContext,
}

impl ScoredPart {
    pub fn rows(&self) -> usize {
        self.truth.len()
    }

    pub fn score(&self, metric: Metric) -> Result<f64, EvaluationError> {
        metric
            .score_with(&self.truth, &self.predictions, &self.context)
            .map_err(|err| EvaluationError::Data(format!("scoring with `{metric}`: {err}")))
    }
}

/// A finished fit and predict.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub output: RunOutput,
    pub train_rows: usize,
    /// Rows dropped before the split because their target was missing.
    pub rows_without_target: usize,
    pub public: ScoredPart,
    pub private: ScoredPart,
    pub split: SplitRecord,
}

impl Evaluation {
    /// Both test parts together (dummy runs score on all of them).
    pub fn test(&self) -> ScoredPart {
        join_parts(&[&self.public, &self.private])
    }
}

/// Why an evaluation stopped.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EvaluationError {
    /// The submission failed in the sandbox (its status decides the outcome).
    #[error("{0}")]
    Submission(RunFailure),
    /// The data or the competition's configuration cannot be evaluated (not the
    /// submission's fault). Messages name columns and counts, never values.
    #[error("{0}")]
    Data(String),
}

/// The target column coded for the task.
enum Target {
    Binary(Vec<bool>),
    Multiclass {
        classes: Vec<String>,
        codes: Vec<u32>,
    },
    Regression(Vec<f64>),
    Survival {
        time: Vec<f64>,
        event: Vec<bool>,
    },
}

impl Target {
    fn labels(self) -> Labels {
        match self {
            Target::Binary(y) => Labels::Binary(y),
            Target::Multiclass { classes, codes } => Labels::Multiclass { classes, codes },
            Target::Regression(y) => Labels::Regression(y),
            Target::Survival { time, event } => Labels::Survival { time, event },
        }
    }

    fn truth(self) -> Truth {
        match self {
            Target::Binary(y) => Truth::Binary(y),
            Target::Multiclass { classes, codes } => Truth::Multiclass {
                labels: codes,
                n_classes: classes.len(),
            },
            Target::Regression(y) => Truth::Regression(y),
            Target::Survival { time, event } => Truth::Survival { time, event },
        }
    }
}

/// The manifest fields a target reads: the target itself and, for a survival task, the
/// `event` field it pairs with.
#[derive(Clone, Copy)]
struct TargetFields<'m> {
    target: &'m Field,
    event: Option<&'m Field>,
}

impl<'m> TargetFields<'m> {
    fn of(manifest: &'m Manifest, spec: &TaskSpec) -> Result<Self, EvaluationError> {
        let target = target_field(manifest, &spec.target)?;
        let event = match spec.task {
            TaskKind::Survival => Some(
                manifest
                    .fields_with_role(medarena_datasets_spec::manifest::Role::Event)
                    .next()
                    .ok_or_else(|| {
                        data_error(format!(
                            "the survival target `{}` needs an `event` field in the manifest",
                            spec.target
                        ))
                    })?,
            ),
            _ => None,
        };
        Ok(TargetFields { target, event })
    }

    /// The columns a row needs to have a target.
    fn names(&self) -> Vec<&'m str> {
        std::iter::once(self.target.name.as_str())
            .chain(self.event.map(|f| f.name.as_str()))
            .collect()
    }
}

fn data_error(message: impl Into<String>) -> EvaluationError {
    EvaluationError::Data(message.into())
}

/// The declared categories of a field, as text.
fn category_texts(field: &Field) -> Vec<String> {
    field
        .categories
        .iter()
        .flatten()
        .map(|c| c.value().to_string())
        .collect()
}

fn column_of(batch: &RecordBatch, name: &str) -> Result<ArrayRef, EvaluationError> {
    batch
        .column_by_name(name)
        .cloned()
        .ok_or_else(|| data_error(format!("the target column `{name}` is missing")))
}

/// Reads the target columns of `batch` (no nulls: rows without a target were dropped).
fn target_of(
    fields: TargetFields<'_>,
    task: TaskKind,
    batch: &RecordBatch,
) -> Result<Target, EvaluationError> {
    let field = fields.target;
    let name = &field.name;
    let column = &column_of(batch, name)?;
    match task {
        TaskKind::Survival => {
            let time = numbers(column).ok_or_else(|| {
                data_error(format!(
                    "survival time `{name}` is not numeric; a survival task needs numbers"
                ))
            })?;
            let event_name = fields.event.map_or("", |f| f.name.as_str());
            let event_column = column_of(batch, event_name)?;
            let event = if let Some(bools) = event_column.as_boolean_opt() {
                bools.iter().map(|v| v == Some(true)).collect()
            } else {
                numbers(&event_column)
                    .ok_or_else(|| {
                        data_error(format!(
                            "event `{event_name}` is neither boolean nor a 0/1 number"
                        ))
                    })?
                    .iter()
                    .map(|v| *v == 1.0)
                    .collect()
            };
            Ok(Target::Survival { time, event })
        }
        TaskKind::Regression => {
            let values = numbers(column).ok_or_else(|| {
                data_error(format!(
                    "target `{name}` is not numeric; a regression needs numbers"
                ))
            })?;
            Ok(Target::Regression(values))
        }
        TaskKind::BinaryClassification => {
            if let Some(bools) = column.as_boolean_opt() {
                return Ok(Target::Binary(
                    bools.iter().map(|v| v == Some(true)).collect(),
                ));
            }
            let categories = category_texts(field);
            if categories.len() > 2 {
                return Err(data_error(format!(
                    "target `{name}` declares {} categories; a binary task needs 2",
                    categories.len()
                )));
            }
            // The positive class is the last declared category (`1` of `[0, 1]`), else 1.
            let positive = categories.last().cloned().unwrap_or_else(|| "1".to_owned());
            if let Some(values) = numbers(column) {
                let positive: f64 = positive.parse().map_err(|_| {
                    data_error(format!(
                        "target `{name}`: the positive class is not a number"
                    ))
                })?;
                return Ok(Target::Binary(
                    values.iter().map(|v| *v == positive).collect(),
                ));
            }
            let texts = texts(column, name)?;
            Ok(Target::Binary(
                texts.iter().map(|t| *t == positive).collect(),
            ))
        }
        TaskKind::MulticlassClassification => {
            let classes = category_texts(field);
            if classes.len() < 2 {
                return Err(data_error(format!(
                    "target `{name}` must declare its classes as categories"
                )));
            }
            let texts = texts(column, name)?;
            let codes = texts
                .iter()
                .map(|t| {
                    classes
                        .iter()
                        .position(|c| c == t)
                        .and_then(|i| u32::try_from(i).ok())
                })
                .collect::<Option<Vec<u32>>>()
                .ok_or_else(|| {
                    data_error(format!(
                        "target `{name}` has a value outside its categories"
                    ))
                })?;
            Ok(Target::Multiclass { classes, codes })
        }
    }
}

fn numbers(column: &ArrayRef) -> Option<Vec<f64>> {
    if let Some(values) = column.as_primitive_opt::<Float64Type>() {
        return Some(values.iter().map(|v| v.unwrap_or(f64::NAN)).collect());
    }
    column.as_primitive_opt::<Int64Type>().map(|values| {
        values
            .iter()
            .map(|v| v.map_or(f64::NAN, |v| v as f64))
            .collect()
    })
}

fn texts(column: &ArrayRef, name: &str) -> Result<Vec<String>, EvaluationError> {
    let text = as_text(column)
        .ok_or_else(|| data_error(format!("target `{name}` cannot be read as text")))?;
    let view = TextColumn::of(text.as_ref())
        .ok_or_else(|| data_error(format!("target `{name}` cannot be read as text")))?;
    Ok((0..view.len())
        .map(|row| view.get(row).unwrap_or_default().to_owned())
        .collect())
}

/// The site of every row, as text (the manifest's site column, or the one the union added).
pub(crate) fn sites_of(manifest: &Manifest, batch: &RecordBatch) -> Vec<String> {
    let name = manifest
        .site()
        .map_or(DEFAULT_SITE_COLUMN, |field| field.name.as_str());
    text_values(batch, name)
}

/// Every row's value of column `name` as text; empty strings where the column is absent.
fn text_values(batch: &RecordBatch, name: &str) -> Vec<String> {
    let column = batch.column_by_name(name).and_then(as_text);
    match column.as_deref().and_then(TextColumn::of) {
        Some(view) => (0..batch.num_rows())
            .map(|row| view.get(row).unwrap_or_default().to_owned())
            .collect(),
        None => vec![String::new(); batch.num_rows()],
    }
}

/// The contributing hospital of every row ([`HOSPITAL_COLUMN`]; empty where absent).
fn hospitals_of(batch: &RecordBatch) -> Vec<String> {
    text_values(batch, HOSPITAL_COLUMN)
}

/// The feature columns of the manifest, in its order (the target, ids, sites and excluded
/// columns never reach the sandbox).
pub(crate) fn features_of(
    manifest: &Manifest,
    batch: &RecordBatch,
) -> Result<RecordBatch, EvaluationError> {
    let schema = batch.schema();
    let indices = manifest
        .features()
        .iter()
        .map(|field| {
            schema
                .index_of(&field.name)
                .map_err(|_| data_error(format!("feature column `{}` is missing", field.name)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    batch
        .project(&indices)
        .map_err(|err| data_error(format!("selecting the features: {err}")))
}

/// Rows whose target is present; returns them and how many were dropped.
pub(crate) fn with_target(
    batch: &RecordBatch,
    target: &str,
) -> Result<(RecordBatch, usize), EvaluationError> {
    with_values(batch, &[target])
}

/// Rows with a value in every one of `columns` (a survival target's time and event);
/// returns them and how many were dropped.
fn with_values(
    batch: &RecordBatch,
    columns: &[&str],
) -> Result<(RecordBatch, usize), EvaluationError> {
    let mut kept = batch.clone();
    for name in columns {
        let column = column_of(&kept, name)?;
        if column.null_count() == 0 {
            continue;
        }
        let mask: BooleanArray = is_not_null(column.as_ref())
            .map_err(|err| data_error(format!("reading the target: {err}")))?;
        kept = filter_record_batch(&kept, &mask)
            .map_err(|err| data_error(format!("dropping rows without a target: {err}")))?;
    }
    let dropped = batch.num_rows() - kept.num_rows();
    Ok((kept, dropped))
}

fn target_field<'m>(manifest: &'m Manifest, target: &str) -> Result<&'m Field, EvaluationError> {
    manifest.field(target).ok_or_else(|| {
        data_error(format!(
            "the target `{target}` is not a field of the dataset manifest `{}`",
            manifest.name
        ))
    })
}

fn predictions_of(spec: &TaskSpec, values: &[f64], classes: usize) -> Predictions {
    match (spec.task, &spec.survival_grid) {
        (TaskKind::MulticlassClassification, _) => Predictions::Probabilities {
            n_classes: classes,
            values: values.to_vec(),
        },
        (TaskKind::Survival, Some(grid)) => Predictions::SurvivalCurves {
            times: grid.clone(),
            values: values.to_vec(),
        },
        _ => Predictions::Scores(values.to_vec()),
    }
}

/// Values the submission returns per test row.
fn outputs_per_row(spec: &TaskSpec, labels: &Labels) -> usize {
    match (&spec.survival_grid, labels) {
        (Some(grid), Labels::Survival { .. }) => grid.len(),
        _ => labels.task().outputs_per_row(),
    }
}

/// The rows of one block, ready for the sandbox: training features and labels, the test
/// features (public rows first, then private), and the test parts' truth and sites, which
/// stay in this process.
struct BlockData {
    train_rows: usize,
    labels: Labels,
    train_features: RecordBatch,
    test_features: RecordBatch,
    public_rows: usize,
    public_truth: Truth,
    private_truth: Truth,
    public_sites: Vec<String>,
    private_sites: Vec<String>,
    /// The contributing hospital of each private test row ([`HOSPITAL_COLUMN`]).
    private_hospitals: Vec<String>,
}

/// Rows with a target, assigned row by row to parts and `blocks` blocks
/// ([`assign_rows`](medarena_datasets_spec::assign_rows)), and each block's data.
struct Prepared {
    blocks: Vec<BlockData>,
    split: SplitRecord,
    rows_with_target: usize,
    rows_without_target: usize,
}

fn prepare_blocks(
    manifest: &Manifest,
    table: &RecordBatch,
    spec: &TaskSpec,
    blocks: u32,
) -> Result<Prepared, EvaluationError> {
    let fields = TargetFields::of(manifest, spec)?;
    let (table, rows_without_target) = with_values(table, &fields.names())?;
    let parts = assign_rows(manifest, &table, &spec.split, blocks)
        .map_err(|err| data_error(format!("splitting the rows: {err}")))?;
    let mut prepared = Vec::with_capacity(blocks as usize);
    for block in 0..blocks {
        let take = |part: Part| {
            parts
                .take_block(&table, part, block)
                .map_err(|err| data_error(format!("taking the {part:?} rows: {err}")))
        };
        let (train, public, private) = (
            take(Part::Train)?,
            take(Part::PublicTest)?,
            take(Part::PrivateTest)?,
        );
        let labels = target_of(fields, spec.task, &train)?.labels();
        let public_features = features_of(manifest, &public)?;
        let private_features = features_of(manifest, &private)?;
        let schema: Arc<Schema> = public_features.schema();
        let test_features = concat_batches(&schema, [&public_features, &private_features])
            .map_err(|err| data_error(format!("joining the test parts: {err}")))?;
        prepared.push(BlockData {
            train_rows: train.num_rows(),
            labels,
            train_features: features_of(manifest, &train)?,
            test_features,
            public_rows: public.num_rows(),
            public_truth: target_of(fields, spec.task, &public)?.truth(),
            private_truth: target_of(fields, spec.task, &private)?.truth(),
            public_sites: sites_of(manifest, &public),
            private_sites: sites_of(manifest, &private),
            private_hospitals: hospitals_of(&private),
        });
    }
    Ok(Prepared {
        blocks: prepared,
        split: parts.record,
        rows_with_target: table.num_rows(),
        rows_without_target,
    })
}

impl BlockData {
    fn run(
        &self,
        sandbox: &Sandbox,
        module: &[u8],
        spec: &TaskSpec,
        seed: u64,
        debug: bool,
    ) -> Result<RunOutput, RunFailure> {
        sandbox.fit_predict(
            module,
            &FitPredictJob {
                train_features: &self.train_features,
                train_labels: &self.labels,
                test_features: &self.test_features,
                seed,
                limits: &spec.limits,
                debug,
                survival_grid: spec.survival_grid.as_deref(),
            },
        )
    }

    /// The two test parts scored with `predictions` (public rows first).
    fn parts(&self, spec: &TaskSpec, predictions: &[f64]) -> (ScoredPart, ScoredPart) {
        let classes = usize::try_from(self.labels.task().n_classes()).unwrap_or(0);
        let per_row = outputs_per_row(spec, &self.labels);
        let cut = (self.public_rows * per_row).min(predictions.len());
        let (public_values, private_values) = predictions.split_at(cut);
        let context = ScoreContext {
            training: match &self.labels {
                Labels::Survival { time, event } => Some(SurvivalLabels {
                    time: time.clone(),
                    event: event.clone(),
                }),
                _ => None,
            },
            ..spec.scoring.clone()
        };
        (
            ScoredPart {
                truth: self.public_truth.clone(),
                predictions: predictions_of(spec, public_values, classes),
                sites: self.public_sites.clone(),
                context: context.clone(),
            },
            ScoredPart {
                truth: self.private_truth.clone(),
                predictions: predictions_of(spec, private_values, classes),
                sites: self.private_sites.clone(),
                context,
            },
        )
    }

    /// The competition's fallback prediction for every test row of the block: the training
    /// prior (class frequencies, or the mean target) of this block's own training rows; for
    /// survival, the same risk for every row, or where curves are scored the Kaplan-Meier
    /// curve of the training rows at the grid.
    fn fallback_predictions(&self, spec: &TaskSpec) -> Vec<f64> {
        let test_rows = self.test_features.num_rows();
        let row: Vec<f64> = match &self.labels {
            Labels::Binary(y) => {
                let positives = y.iter().filter(|v| **v).count();
                vec![if y.is_empty() {
                    0.5
                } else {
                    positives as f64 / y.len() as f64
                }]
            }
            Labels::Multiclass { classes, codes } => {
                let k = classes.len().max(1);
                let mut counts = vec![0.0; k];
                for code in codes {
                    if let Some(count) = counts.get_mut(*code as usize) {
                        *count += 1.0;
                    }
                }
                let total: f64 = counts.iter().sum();
                counts
                    .iter()
                    .map(|c| {
                        if total > 0.0 {
                            c / total
                        } else {
                            1.0 / k as f64
                        }
                    })
                    .collect()
            }
            Labels::Survival { time, event } => match &spec.survival_grid {
                // Empty or unreadable training labels: survival 1 throughout.
                Some(grid) => match KaplanMeier::fit(time, event) {
                    Ok(curve) => grid.iter().map(|&t| curve.at(t)).collect(),
                    Err(_) => vec![1.0; grid.len()],
                },
                // One risk for everyone: no patient is ranked before another (a C-index of ½).
                None => vec![0.0],
            },
            Labels::Regression(y) => {
                let finite: Vec<f64> = y.iter().copied().filter(|v| v.is_finite()).collect();
                vec![if finite.is_empty() {
                    0.0
                } else {
                    finite.iter().sum::<f64>() / finite.len() as f64
                }]
            }
        };
        row.repeat(test_rows)
    }
}

/// Splits a typed table (with its site column), trains the module on the training part and
/// predicts both test parts in one sandbox child; the test labels stay here. A failure of the
/// submission is returned as it is: this is the dummy-data run (and `medarena run`), where
/// the team sees everything.
pub fn evaluate(
    sandbox: &Sandbox,
    module: &[u8],
    manifest: &Manifest,
    table: &RecordBatch,
    spec: &TaskSpec,
    debug: bool,
) -> Result<Evaluation, EvaluationError> {
    let prepared = prepare_blocks(manifest, table, spec, 1)?;
    let Some(block) = prepared.blocks.first() else {
        return Err(data_error("no block to evaluate"));
    };
    for (name, rows) in [
        ("training", block.train_rows),
        ("public test", block.public_rows),
        ("private test", block.private_truth.len()),
    ] {
        if rows == 0 {
            return Err(data_error(format!(
                "the {name} part is empty ({} rows with a target)",
                prepared.rows_with_target
            )));
        }
    }
    let output = block
        .run(sandbox, module, spec, spec.seed, debug)
        .map_err(EvaluationError::Submission)?;
    let (public, private) = block.parts(spec, &output.predictions);
    Ok(Evaluation {
        train_rows: block.train_rows,
        rows_without_target: prepared.rows_without_target,
        public,
        private,
        split: prepared.split,
        output,
    })
}

/// Lower bounds a competition declares on its data (`PrivacySpec::min_rows`, and on the
/// `label` level each test part's rows and smallest class). Checked after the split and
/// before the submission runs: data below them is refused the same way for every
/// submission, and the noise, calibrated on the declared bounds, stays valid.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DeclaredBounds {
    pub min_rows: u64,
    pub test_parts: Option<PublicPartFacts>,
}

impl DeclaredBounds {
    fn check(&self, prepared: &Prepared) -> Result<(), EvaluationError> {
        if (prepared.rows_with_target as u64) < self.min_rows {
            return Err(data_error(format!(
                "the competition's data has fewer rows with a target than its declared \
                 minimum (privacy.min_rows = {}); no submission can run on it",
                self.min_rows
            )));
        }
        let Some(declared) = &self.test_parts else {
            return Ok(());
        };
        for block in &prepared.blocks {
            for (part, truth) in [
                ("public test", &block.public_truth),
                ("private test", &block.private_truth),
            ] {
                PublicPartFacts::of(truth)
                    .check_against(declared)
                    .map_err(|short| {
                        data_error(format!(
                            "the {part} part has {short} (privacy.min_test_rows / \
                             min_test_class_rows); no submission can run on it"
                        ))
                    })?;
            }
        }
        Ok(())
    }
}

/// How one block of a sealed evaluation ended.
#[derive(Debug, Clone)]
pub struct SealedBlock {
    /// `None` when the submission answered; else its status (the block was then scored with
    /// the fallback prediction).
    pub failure: Option<Status>,
    pub train_rows: usize,
    pub public: ScoredPart,
    pub private: ScoredPart,
    /// The contributing hospital of each private row ([`HOSPITAL_COLUMN`]).
    pub private_hospitals: Vec<String>,
    /// Wall time of the block in the sandbox (organizers only).
    pub elapsed: Duration,
}

/// A real-data evaluation: the submission's own failures never escape it.
#[derive(Debug, Clone)]
pub struct SealedEvaluation {
    pub blocks: Vec<SealedBlock>,
    pub split: SplitRecord,
    pub rows_with_target: usize,
    pub rows_without_target: usize,
}

impl SealedEvaluation {
    /// Every block's public (or private) rows together, each predicted by its own block's
    /// model: out-of-block predictions like cross-validation's, for organizers' intervals,
    /// per-site scores and comparisons.
    pub fn pooled(&self, part: Part) -> ScoredPart {
        let parts: Vec<&ScoredPart> = self
            .blocks
            .iter()
            .map(|b| match part {
                Part::PrivateTest => &b.private,
                _ => &b.public,
            })
            .collect();
        join_parts(&parts)
    }

    /// How many blocks ended with each status (`ok` for answered ones).
    pub fn statuses(&self) -> std::collections::BTreeMap<&'static str, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for block in &self.blocks {
            *counts
                .entry(block.failure.map_or("ok", Status::as_str))
                .or_insert(0) += 1;
        }
        counts
    }
}

/// The real-data evaluation, sealed against the submission: the rows go row by row into
/// `blocks` blocks (1 for the `label` level), each block is fitted and predicted in its own
/// sandbox child (a fresh instance), and a block whose run fails in any way (trap, a limit,
/// its deadline, bad output, even a crash of the child) is scored with the fallback
/// prediction instead. What happens in one block depends on that block's rows alone, and
/// nothing the submission does changes what the evaluation returns but the predictions.
/// Blocks run in order; each gets the sandbox limits of one run.
pub fn evaluate_sealed(
    sandbox: &Sandbox,
    module: &[u8],
    manifest: &Manifest,
    table: &RecordBatch,
    spec: &TaskSpec,
    blocks: u32,
    bounds: &DeclaredBounds,
) -> Result<SealedEvaluation, EvaluationError> {
    let prepared = prepare_blocks(manifest, table, spec, blocks)?;
    bounds.check(&prepared)?;
    let mut sealed = Vec::with_capacity(prepared.blocks.len());
    for (index, block) in prepared.blocks.iter().enumerate() {
        let started = std::time::Instant::now();
        let seed = spec.seed.wrapping_add(index as u64);
        let outcome = if block.test_features.num_rows() == 0 {
            // Nothing to predict: no run, and the block's scores are undefined.
            Ok(Vec::new())
        } else {
            // A platform failure gets one more try; a second one counts like any failure.
            match block.run(sandbox, module, spec, seed, false) {
                Err(failure) if failure.status == Status::Internal => block
                    .run(sandbox, module, spec, seed, false)
                    .map(|output| output.predictions),
                other => other.map(|output| output.predictions),
            }
        };
        let (failure, predictions) = match outcome {
            Ok(predictions) => (None, predictions),
            Err(failure) => (Some(failure.status), block.fallback_predictions(spec)),
        };
        let (public, private) = block.parts(spec, &predictions);
        sealed.push(SealedBlock {
            failure,
            train_rows: block.train_rows,
            public,
            private,
            private_hospitals: block.private_hospitals.clone(),
            elapsed: started.elapsed(),
        });
    }
    Ok(SealedEvaluation {
        blocks: sealed,
        split: prepared.split,
        rows_with_target: prepared.rows_with_target,
        rows_without_target: prepared.rows_without_target,
    })
}

/// Scored parts one after the other (same task).
pub(crate) fn join_parts(parts: &[&ScoredPart]) -> ScoredPart {
    let Some(first) = parts.first() else {
        return ScoredPart {
            truth: Truth::Binary(Vec::new()),
            predictions: Predictions::Scores(Vec::new()),
            sites: Vec::new(),
            context: ScoreContext::default(),
        };
    };
    let truth = match &first.truth {
        Truth::Binary(_) => Truth::Binary(
            parts
                .iter()
                .flat_map(|p| match &p.truth {
                    Truth::Binary(v) => v.clone(),
                    _ => Vec::new(),
                })
                .collect(),
        ),
        Truth::Regression(_) => Truth::Regression(
            parts
                .iter()
                .flat_map(|p| match &p.truth {
                    Truth::Regression(v) => v.clone(),
                    _ => Vec::new(),
                })
                .collect(),
        ),
        Truth::Multiclass { n_classes, .. } => Truth::Multiclass {
            labels: parts
                .iter()
                .flat_map(|p| match &p.truth {
                    Truth::Multiclass { labels, .. } => labels.clone(),
                    _ => Vec::new(),
                })
                .collect(),
            n_classes: *n_classes,
        },
        Truth::Survival { .. } => Truth::Survival {
            time: parts
                .iter()
                .flat_map(|p| match &p.truth {
                    Truth::Survival { time, .. } => time.clone(),
                    _ => Vec::new(),
                })
                .collect(),
            event: parts
                .iter()
                .flat_map(|p| match &p.truth {
                    Truth::Survival { event, .. } => event.clone(),
                    _ => Vec::new(),
                })
                .collect(),
        },
    };
    let values: Vec<f64> = parts
        .iter()
        .flat_map(|p| match &p.predictions {
            Predictions::Scores(v) => v.clone(),
            Predictions::Probabilities { values, .. }
            | Predictions::SurvivalCurves { values, .. } => values.clone(),
        })
        .collect();
    let predictions = match &first.predictions {
        Predictions::Probabilities { n_classes, .. } => Predictions::Probabilities {
            n_classes: *n_classes,
            values,
        },
        Predictions::SurvivalCurves { times, .. } => Predictions::SurvivalCurves {
            times: times.clone(),
            values,
        },
        Predictions::Scores(_) => Predictions::Scores(values),
    };
    ScoredPart {
        truth,
        predictions,
        sites: parts.iter().flat_map(|p| p.sites.clone()).collect(),
        context: joined_context(parts),
    }
}

/// The context of parts scored together: the training labels of every fit behind them,
/// each fit once (the two test parts of one fit share its training rows). Pooled blocks
/// thus weigh their rows with the censoring of the whole training part.
fn joined_context(parts: &[&ScoredPart]) -> ScoreContext {
    let mut fits: Vec<&SurvivalLabels> = Vec::new();
    for training in parts.iter().filter_map(|p| p.context.training.as_ref()) {
        if fits.last().is_none_or(|last| *last != training) {
            fits.push(training);
        }
    }
    let training = (!fits.is_empty()).then(|| SurvivalLabels {
        time: fits.iter().flat_map(|f| f.time.iter().copied()).collect(),
        event: fits.iter().flat_map(|f| f.event.iter().copied()).collect(),
    });
    ScoreContext {
        training,
        ..parts.first().map(|p| p.context.clone()).unwrap_or_default()
    }
}

/// The training rows (features and the target) that an analysis reads, and their `blocks`
/// disjoint blocks (indices into those rows). Both the part and the block of a row follow
/// from its own key alone ([`assign_rows`]; the blocks with `block_seed`), so replacing one
/// row changes one block and moves no other row.
pub(crate) fn analysis_rows(
    manifest: &Manifest,
    table: &RecordBatch,
    target: &str,
    split_config: &SplitConfig,
    blocks: u32,
    block_seed: u64,
) -> Result<(RecordBatch, Vec<Vec<usize>>), EvaluationError> {
    target_field(manifest, target)?;
    let (table, _) = with_target(table, target)?;
    let parts = assign_rows(manifest, &table, split_config, 1)
        .map_err(|err| data_error(format!("splitting the rows: {err}")))?;
    let train = parts
        .take(&table, Part::Train)
        .map_err(|err| data_error(format!("taking the training rows: {err}")))?;
    let by_block = SplitConfig {
        seed: block_seed,
        train: 1.0,
        public_test: 0.0,
    };
    let assigned = assign_rows(manifest, &train, &by_block, blocks)
        .map_err(|err| data_error(format!("cutting the rows into blocks: {err}")))?;
    let mut members = vec![Vec::new(); blocks as usize];
    for (row, block) in assigned.blocks.iter().enumerate() {
        if let Some(list) = members.get_mut(*block as usize) {
            list.push(row);
        }
    }
    let features = features_of(manifest, &train)?;
    let schema = train.schema();
    let target_index = schema
        .index_of(target)
        .map_err(|_| data_error(format!("the target column `{target}` is missing")))?;
    let mut fields: Vec<_> = features.schema().fields().iter().cloned().collect();
    let mut columns = features.columns().to_vec();
    fields.push(schema.fields()[target_index].clone());
    columns.push(train.column(target_index).clone());
    let rows = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|err| data_error(format!("assembling the analysis rows: {err}")))?;
    Ok((rows, members))
}

/// Rows `indices` of a table, as one block.
pub(crate) fn take_rows(
    batch: &RecordBatch,
    indices: &[usize],
) -> Result<RecordBatch, EvaluationError> {
    let indices = medarena_datasets_spec::arrow::array::UInt32Array::from(
        indices
            .iter()
            .map(|&i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect::<Vec<_>>(),
    );
    medarena_datasets_spec::arrow::compute::take_record_batch(batch, &indices)
        .map_err(|err| data_error(format!("taking a block: {err}")))
}
