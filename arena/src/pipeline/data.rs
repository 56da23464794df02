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
use medarena_datasets_spec::{Field, Manifest, Part, SplitConfig, SplitRecord, split};
use medarena_sandbox::{
    FitPredictJob, Interruption, Labels, Limits, RunFailure, RunOutput, Sandbox,
};
use medarena_scorer::{Metric, Predictions, Truth};

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
}

/// The sandbox limits of a competition.
pub fn sandbox_limits(limits: &SandboxLimits) -> Limits {
    Limits {
        max_module_bytes: usize::try_from(limits.module_max_bytes).unwrap_or(usize::MAX),
        max_memory_bytes: u64::from(limits.memory_mib) << 20,
        deadline: Duration::from_secs(u64::from(limits.time_limit_seconds)),
        interruption: limits
            .fuel
            .map_or(Interruption::DeadlineKill, Interruption::Fuel),
        ..Limits::default()
    }
}

/// The truth and the predictions of one test part, with each row's site.
#[derive(Debug, Clone)]
pub struct ScoredPart {
    pub truth: Truth,
    pub predictions: Predictions,
    pub sites: Vec<String>,
}

impl ScoredPart {
    pub fn rows(&self) -> usize {
        self.truth.len()
    }

    pub fn score(&self, metric: Metric) -> Result<f64, EvaluationError> {
        metric
            .score(&self.truth, &self.predictions)
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
        let n_public = self.public.rows();
        let rows: Vec<usize> = (0..n_public + self.private.rows()).collect();
        let join = |public: &Truth, private: &Truth| -> Truth {
            match (public, private) {
                (Truth::Binary(a), Truth::Binary(b)) => Truth::Binary([&a[..], &b[..]].concat()),
                (Truth::Regression(a), Truth::Regression(b)) => {
                    Truth::Regression([&a[..], &b[..]].concat())
                }
                (
                    Truth::Multiclass {
                        labels: a,
                        n_classes,
                    },
                    Truth::Multiclass { labels: b, .. },
                ) => Truth::Multiclass {
                    labels: [&a[..], &b[..]].concat(),
                    n_classes: *n_classes,
                },
                (other, _) => other.clone(),
            }
        };
        let predictions = match (&self.public.predictions, &self.private.predictions) {
            (Predictions::Scores(a), Predictions::Scores(b)) => {
                Predictions::Scores([&a[..], &b[..]].concat())
            }
            (
                Predictions::Probabilities {
                    n_classes,
                    values: a,
                },
                Predictions::Probabilities { values: b, .. },
            ) => Predictions::Probabilities {
                n_classes: *n_classes,
                values: [&a[..], &b[..]].concat(),
            },
            (other, _) => other.clone(),
        };
        let part = ScoredPart {
            truth: join(&self.public.truth, &self.private.truth),
            predictions,
            sites: [&self.public.sites[..], &self.private.sites[..]].concat(),
        };
        debug_assert_eq!(part.truth.len(), rows.len());
        part
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
}

impl Target {
    fn labels(self) -> Labels {
        match self {
            Target::Binary(y) => Labels::Binary(y),
            Target::Multiclass { classes, codes } => Labels::Multiclass { classes, codes },
            Target::Regression(y) => Labels::Regression(y),
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
        }
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

/// Reads the target column (no nulls: rows without a target were dropped).
fn target_of(field: &Field, task: TaskKind, column: &ArrayRef) -> Result<Target, EvaluationError> {
    let name = &field.name;
    match task {
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
    let column = batch.column_by_name(name).and_then(as_text);
    match column.as_deref().and_then(TextColumn::of) {
        Some(view) => (0..batch.num_rows())
            .map(|row| view.get(row).unwrap_or_default().to_owned())
            .collect(),
        None => vec![String::new(); batch.num_rows()],
    }
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
    let column = batch
        .column_by_name(target)
        .ok_or_else(|| data_error(format!("the target column `{target}` is missing")))?;
    if column.null_count() == 0 {
        return Ok((batch.clone(), 0));
    }
    let mask: BooleanArray = is_not_null(column.as_ref())
        .map_err(|err| data_error(format!("reading the target: {err}")))?;
    let kept = filter_record_batch(batch, &mask)
        .map_err(|err| data_error(format!("dropping rows without a target: {err}")))?;
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

fn predictions_of(task: TaskKind, values: &[f64], classes: usize) -> Predictions {
    match task {
        TaskKind::MulticlassClassification => Predictions::Probabilities {
            n_classes: classes,
            values: values.to_vec(),
        },
        _ => Predictions::Scores(values.to_vec()),
    }
}

/// Splits a typed table (with its site column), trains the module on the training part and
/// predicts both test parts in one sandbox child; the test labels stay here.
pub fn evaluate(
    sandbox: &Sandbox,
    module: &[u8],
    manifest: &Manifest,
    table: &RecordBatch,
    spec: &TaskSpec,
    debug: bool,
) -> Result<Evaluation, EvaluationError> {
    let field = target_field(manifest, &spec.target)?;
    let (table, rows_without_target) = with_target(table, &spec.target)?;
    let parts = split(manifest, &table, &spec.split)
        .map_err(|err| data_error(format!("splitting the rows: {err}")))?;
    let take = |part: Part| {
        parts
            .take(&table, part)
            .map_err(|err| data_error(format!("taking the {part:?} rows: {err}")))
    };
    let (train, public, private) = (
        take(Part::Train)?,
        take(Part::PublicTest)?,
        take(Part::PrivateTest)?,
    );
    for (name, part) in [
        ("training", &train),
        ("public test", &public),
        ("private test", &private),
    ] {
        if part.num_rows() == 0 {
            return Err(data_error(format!(
                "the {name} part is empty ({} rows with a target)",
                table.num_rows()
            )));
        }
    }
    let column = |batch: &RecordBatch| -> Result<ArrayRef, EvaluationError> {
        batch
            .column_by_name(&spec.target)
            .cloned()
            .ok_or_else(|| data_error(format!("the target column `{}` is missing", spec.target)))
    };
    let labels = target_of(field, spec.task, &column(&train)?)?.labels();
    let classes = usize::try_from(labels.task().n_classes()).unwrap_or(0);
    let public_truth = target_of(field, spec.task, &column(&public)?)?.truth();
    let private_truth = target_of(field, spec.task, &column(&private)?)?.truth();
    let train_features = features_of(manifest, &train)?;
    let public_features = features_of(manifest, &public)?;
    let private_features = features_of(manifest, &private)?;
    let schema: Arc<Schema> = public_features.schema();
    let test_features = concat_batches(&schema, [&public_features, &private_features])
        .map_err(|err| data_error(format!("joining the test parts: {err}")))?;
    let job = FitPredictJob {
        train_features: &train_features,
        train_labels: &labels,
        test_features: &test_features,
        seed: spec.seed,
        limits: &spec.limits,
        debug,
    };
    let output = sandbox
        .fit_predict(module, &job)
        .map_err(EvaluationError::Submission)?;
    let per_row = labels.task().outputs_per_row();
    let cut = (public.num_rows() * per_row).min(output.predictions.len());
    let (public_values, private_values) = output.predictions.split_at(cut);
    Ok(Evaluation {
        train_rows: train.num_rows(),
        rows_without_target,
        public: ScoredPart {
            truth: public_truth,
            predictions: predictions_of(spec.task, public_values, classes),
            sites: sites_of(manifest, &public),
        },
        private: ScoredPart {
            truth: private_truth,
            predictions: predictions_of(spec.task, private_values, classes),
            sites: sites_of(manifest, &private),
        },
        split: parts.record,
        output,
    })
}

/// The training rows (features and the target) that an analysis reads.
pub(crate) fn analysis_rows(
    manifest: &Manifest,
    table: &RecordBatch,
    target: &str,
    split_config: &SplitConfig,
) -> Result<RecordBatch, EvaluationError> {
    target_field(manifest, target)?;
    let (table, _) = with_target(table, target)?;
    let parts = split(manifest, &table, split_config)
        .map_err(|err| data_error(format!("splitting the rows: {err}")))?;
    let train = parts
        .take(&table, Part::Train)
        .map_err(|err| data_error(format!("taking the training rows: {err}")))?;
    let features = features_of(manifest, &train)?;
    let schema = train.schema();
    let target_index = schema
        .index_of(target)
        .map_err(|_| data_error(format!("the target column `{target}` is missing")))?;
    let mut fields: Vec<_> = features.schema().fields().iter().cloned().collect();
    let mut columns = features.columns().to_vec();
    fields.push(schema.fields()[target_index].clone());
    columns.push(train.column(target_index).clone());
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|err| data_error(format!("assembling the analysis rows: {err}")))
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
