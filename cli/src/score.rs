//! `medarena score`: re-score predictions offline against a truth file, for organizers.
//!
//! Both files are CSV with a header row; columns are found by name, others are ignored.
//!
//! | task (from the metric) | truth columns | prediction columns |
//! |---|---|---|
//! | binary | `label`: 0/1 (or true/false) | `prediction`: positive-class probability (any score for `roc_auc`, `average_precision`) |
//! | multiclass | `label`: class index 0..K−1 | `prob_0` … `prob_{K−1}`: one probability per class, rows summing to 1 |
//! | regression | `target` (or `label`): number | `prediction`: number |
//! | survival | `time`: follow-up time; `event`: 1 = event observed, 0 = censored | `prediction`: a risk score, higher = earlier event (as the sandbox ABI and scikit-survival; negate predicted survival times); or survival curves, one column `s_<time>` per grid time in increasing order (`s_365`, `s_1095`, …) holding S(time \| x) |
//!
//! Time-dependent survival metrics read `--horizons` (and Uno's C `--tau`); the IPCW ones
//! estimate the censoring distribution from `--train` (a CSV with `time` and `event` of the
//! training rows), as the platform does from each fit's training rows, else from the truth.
//!
//! If both files have an `id` column, predictions are matched to truth rows by id (each id
//! exactly once in each file); otherwise rows are matched by position.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use medarena_scorer::{
    Metric, MetricError, Predictions, ScoreContext, SurvivalLabels, TaskKind, Truth,
};

#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// Metric name, e.g. roc_auc, average_precision, log_loss, brier, accuracy,
    /// balanced_accuracy, f1, calibration_slope, calibration_intercept, ece,
    /// multiclass_accuracy, macro_f1, multiclass_log_loss, rmse, mae, r2, c_index,
    /// uno_c_index, td_auc, integrated_brier, brier_at_horizon, ece_at_horizon.
    #[arg(long)]
    metric: String,
    /// CSV with a header row and the true outcome per row. binary: `label` (0/1);
    /// multiclass: `label` (class index 0..K-1); regression: `target`; survival: `time`
    /// and `event` (1 = event observed, 0 = censored). If both files have an `id` column,
    /// rows are matched by id, otherwise by position.
    #[arg(long)]
    truth: PathBuf,
    /// CSV with a header row and the predictions. binary, regression: `prediction`
    /// (binary: positive-class probability); survival: `prediction`, a risk score, higher =
    /// earlier event, or curves in columns `s_<time>` (S(time | x), times increasing);
    /// multiclass: `prob_0` … `prob_{K-1}`, rows summing to 1.
    #[arg(long)]
    predictions: PathBuf,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    json: bool,
    /// Survival: horizons of the time-dependent metrics, comma-separated (td_auc,
    /// integrated_brier, brier_at_horizon, ece_at_horizon).
    #[arg(long, value_delimiter = ',')]
    horizons: Vec<f64>,
    /// Survival: Uno's C counts only events before this time.
    #[arg(long)]
    tau: Option<f64>,
    /// Survival: CSV with `time` and `event` of the training rows, for the censoring
    /// distribution of the IPCW metrics (default: the truth file's own rows).
    #[arg(long)]
    train: Option<PathBuf>,
}

pub fn run(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let metric: Metric = args.metric.parse()?;
    let context = ScoreContext {
        horizons: args.horizons.clone(),
        tau: args.tau,
        training: args.train.as_deref().map(read_training).transpose()?,
    };
    let scored = score_files(metric, &args.truth, &args.predictions, &context)?;
    let range = metric.range();
    if args.json {
        let line = serde_json::json!({
            "metric": metric.name(),
            "value": scored.value,
            "rows": scored.rows,
            "direction": metric.direction(),
            "range": [range.min, range.max],
        });
        println!("{line}");
    } else {
        let direction = match metric.direction() {
            medarena_scorer::Direction::HigherIsBetter => "higher is better",
            medarena_scorer::Direction::LowerIsBetter => "lower is better",
            medarena_scorer::Direction::CloserToOne => "best at 1",
            medarena_scorer::Direction::CloserToZero => "best at 0",
        };
        println!(
            "{metric} = {} ({direction}, range [{}, {}], {} rows)",
            scored.value, range.min, range.max, scored.rows
        );
    }
    Ok(ExitCode::SUCCESS)
}

struct Scored {
    value: f64,
    rows: usize,
}

/// The `time` and `event` columns of a training-labels file.
fn read_training(path: &Path) -> anyhow::Result<SurvivalLabels> {
    let table = Table::read(path)?;
    let rows: Vec<(usize, usize)> = (0..table.records.len()).map(|r| (r, r)).collect();
    match read_truth(TaskKind::Survival, &table, &rows)? {
        Truth::Survival { time, event } => Ok(SurvivalLabels { time, event }),
        _ => bail!("{}: expected survival labels", table.name),
    }
}

fn score_files(
    metric: Metric,
    truth_path: &Path,
    predictions_path: &Path,
    context: &ScoreContext,
) -> anyhow::Result<Scored> {
    let truth_table = Table::read(truth_path)?;
    let predictions_table = Table::read(predictions_path)?;
    // Pair rows: by id when both files have one, else by position.
    let pairs = pair_rows(&truth_table, &predictions_table)?;
    let task = metric.task();
    let mut truth = read_truth(task, &truth_table, &pairs)?;
    let predictions = read_predictions(task, &predictions_table, &pairs)?;
    if let (Truth::Multiclass { n_classes, .. }, Predictions::Probabilities { n_classes: k, .. }) =
        (&mut truth, &predictions)
    {
        *n_classes = *k;
    }
    let value = metric
        .score_with(&truth, &predictions, context)
        .map_err(|error| {
            let context = row_of(&error)
                .and_then(|row| pairs.get(row))
                .map(|&(t, p)| {
                    format!(
                        " (that row is {} line {}, {} line {})",
                        truth_table.name,
                        truth_table.lines[t],
                        predictions_table.name,
                        predictions_table.lines[p]
                    )
                })
                .unwrap_or_default();
            anyhow::anyhow!("cannot compute {metric}: {error}{context}")
        })?;
    Ok(Scored {
        value,
        rows: pairs.len(),
    })
}

fn row_of(error: &MetricError) -> Option<usize> {
    match error {
        MetricError::NotFinite { row, .. }
        | MetricError::OutOfRange { row, .. }
        | MetricError::ProbabilitiesDoNotSumToOne { row, .. }
        | MetricError::ClassOutOfRange { row, .. }
        | MetricError::BadCurveValue { row, .. } => Some(*row),
        _ => None,
    }
}

/// A CSV file held as strings, with the line number of every record for error messages.
struct Table {
    name: String,
    headers: Vec<String>,
    records: Vec<csv::StringRecord>,
    lines: Vec<u64>,
}

impl Table {
    fn read(path: &Path) -> anyhow::Result<Table> {
        let name = path.display().to_string();
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(path)
            .with_context(|| format!("cannot open {name}"))?;
        let headers = reader
            .headers()
            .with_context(|| format!("{name}: cannot read the header row"))?
            .iter()
            .map(str::to_string)
            .collect();
        let mut records = Vec::new();
        let mut lines = Vec::new();
        for record in reader.records() {
            let record = record.with_context(|| format!("{name}: malformed CSV"))?;
            lines.push(record.position().map_or(0, |p| p.line()));
            records.push(record);
        }
        if records.is_empty() {
            bail!("{name}: no data rows after the header");
        }
        Ok(Table {
            name,
            headers,
            records,
            lines,
        })
    }

    fn column(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == name)
    }

    fn require(&self, name: &str, what: &str) -> anyhow::Result<usize> {
        self.column(name).with_context(|| {
            format!(
                "{}: no `{name}` column ({what}); columns are: {}",
                self.name,
                self.headers.join(", ")
            )
        })
    }

    fn cell(&self, record: usize, column: usize) -> &str {
        self.records[record].get(column).unwrap_or("")
    }

    fn error(
        &self,
        record: usize,
        column: usize,
        message: impl std::fmt::Display,
    ) -> anyhow::Error {
        anyhow::anyhow!(
            "{}: line {}, column `{}`: {message}",
            self.name,
            self.lines[record],
            self.headers[column]
        )
    }

    fn number(&self, record: usize, column: usize) -> anyhow::Result<f64> {
        let text = self.cell(record, column);
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(value),
            Ok(_) => Err(self.error(record, column, format!("`{text}` is not a finite number"))),
            Err(_) => Err(self.error(record, column, format!("expected a number, got `{text}`"))),
        }
    }

    fn flag(&self, record: usize, column: usize) -> anyhow::Result<bool> {
        match self.cell(record, column).to_ascii_lowercase().as_str() {
            "1" | "1.0" | "true" => Ok(true),
            "0" | "0.0" | "false" => Ok(false),
            other => Err(self.error(record, column, format!("expected 0 or 1, got `{other}`"))),
        }
    }

    fn class(&self, record: usize, column: usize) -> anyhow::Result<u32> {
        let text = self.cell(record, column);
        text.parse::<u32>().map_err(|_| {
            self.error(
                record,
                column,
                format!("expected a class index 0, 1, 2…, got `{text}`"),
            )
        })
    }
}

/// (truth record, prediction record) pairs in truth order.
fn pair_rows(truth: &Table, predictions: &Table) -> anyhow::Result<Vec<(usize, usize)>> {
    let (Some(truth_id), Some(prediction_id)) = (truth.column("id"), predictions.column("id"))
    else {
        if truth.records.len() != predictions.records.len() {
            bail!(
                "{} has {} data rows but {} has {} (add an `id` column to both to match rows by id)",
                truth.name,
                truth.records.len(),
                predictions.name,
                predictions.records.len()
            );
        }
        return Ok((0..truth.records.len()).map(|i| (i, i)).collect());
    };
    let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(predictions.records.len());
    for record in 0..predictions.records.len() {
        let id = predictions.cell(record, prediction_id);
        if let Some(first) = by_id.insert(id, record) {
            return Err(predictions.error(
                record,
                prediction_id,
                format!(
                    "id `{id}` already appeared on line {}",
                    predictions.lines[first]
                ),
            ));
        }
    }
    let mut pairs = Vec::with_capacity(truth.records.len());
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(truth.records.len());
    for record in 0..truth.records.len() {
        let id = truth.cell(record, truth_id);
        if let Some(first) = seen.insert(id, record) {
            return Err(truth.error(
                record,
                truth_id,
                format!("id `{id}` already appeared on line {}", truth.lines[first]),
            ));
        }
        let prediction = by_id.get(id).copied().ok_or_else(|| {
            truth.error(
                record,
                truth_id,
                format!("no prediction for id `{id}` in {}", predictions.name),
            )
        })?;
        pairs.push((record, prediction));
    }
    if let Some((id, &record)) = by_id.iter().find(|(id, _)| !seen.contains_key(*id)) {
        return Err(predictions.error(
            record,
            prediction_id,
            format!("id `{id}` is not in {}", truth.name),
        ));
    }
    Ok(pairs)
}

fn read_truth(task: TaskKind, table: &Table, pairs: &[(usize, usize)]) -> anyhow::Result<Truth> {
    let rows = || pairs.iter().map(|&(t, _)| t);
    Ok(match task {
        TaskKind::Binary => {
            let label = table.require("label", "0/1 outcome")?;
            Truth::Binary(
                rows()
                    .map(|r| table.flag(r, label))
                    .collect::<anyhow::Result<_>>()?,
            )
        }
        TaskKind::Multiclass => {
            let label = table.require("label", "class index")?;
            let labels = rows()
                .map(|r| table.class(r, label))
                .collect::<anyhow::Result<_>>()?;
            // The number of classes comes from the prediction columns; set in score_files.
            Truth::Multiclass {
                labels,
                n_classes: 0,
            }
        }
        TaskKind::Regression => {
            let target = match table.column("target") {
                Some(column) => column,
                None => table.require("label", "regression target; `target` also accepted")?,
            };
            Truth::Regression(
                rows()
                    .map(|r| table.number(r, target))
                    .collect::<anyhow::Result<_>>()?,
            )
        }
        TaskKind::Survival => {
            let time = table.require("time", "follow-up time")?;
            let event = table.require("event", "1 = event observed, 0 = censored")?;
            Truth::Survival {
                time: rows()
                    .map(|r| table.number(r, time))
                    .collect::<anyhow::Result<_>>()?,
                event: rows()
                    .map(|r| table.flag(r, event))
                    .collect::<anyhow::Result<_>>()?,
            }
        }
    })
}

fn read_predictions(
    task: TaskKind,
    table: &Table,
    pairs: &[(usize, usize)],
) -> anyhow::Result<Predictions> {
    let rows = || pairs.iter().map(|&(_, p)| p);
    if task == TaskKind::Survival && table.column("prediction").is_none() {
        return read_curves(table, pairs);
    }
    if task != TaskKind::Multiclass {
        let prediction = table.require("prediction", "one prediction per row")?;
        return Ok(Predictions::Scores(
            rows()
                .map(|r| table.number(r, prediction))
                .collect::<anyhow::Result<_>>()?,
        ));
    }
    let columns: Vec<usize> = (0..)
        .map_while(|k| table.column(&format!("prob_{k}")))
        .collect();
    if columns.len() < 2 {
        bail!(
            "{}: multiclass predictions need columns prob_0, prob_1, … (one per class); columns are: {}",
            table.name,
            table.headers.join(", ")
        );
    }
    let mut values = Vec::with_capacity(pairs.len() * columns.len());
    for r in rows() {
        for &column in &columns {
            values.push(table.number(r, column)?);
        }
    }
    Ok(Predictions::Probabilities {
        n_classes: columns.len(),
        values,
    })
}

/// Survival curves from the columns `s_<time>`, in file order.
fn read_curves(table: &Table, pairs: &[(usize, usize)]) -> anyhow::Result<Predictions> {
    let grid: Vec<(usize, f64)> = table
        .headers
        .iter()
        .enumerate()
        .filter_map(|(column, name)| {
            let time = name.strip_prefix("s_")?.parse::<f64>().ok()?;
            Some((column, time))
        })
        .collect();
    if grid.is_empty() {
        bail!(
            "{}: survival predictions need a `prediction` column (risk scores) or columns \
             s_<time> (survival curves, e.g. s_365, s_1095); columns are: {}",
            table.name,
            table.headers.join(", ")
        );
    }
    let mut values = Vec::with_capacity(pairs.len() * grid.len());
    for &(_, record) in pairs {
        for &(column, _) in &grid {
            values.push(table.number(record, column)?);
        }
    }
    Ok(Predictions::SurvivalCurves {
        times: grid.iter().map(|&(_, time)| time).collect(),
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(truth: &str, predictions: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("truth.csv");
        let p = dir.path().join("predictions.csv");
        std::fs::write(&t, truth).unwrap();
        std::fs::write(&p, predictions).unwrap();
        (dir, t, p)
    }

    fn score(metric: &str, truth: &str, predictions: &str) -> anyhow::Result<f64> {
        let (_dir, t, p) = files(truth, predictions);
        score_files(metric.parse()?, &t, &p, &ScoreContext::default()).map(|s| s.value)
    }

    #[test]
    fn binary_by_position_and_by_id() {
        let truth = "label\n1\n0\n1\n0\n";
        let predictions = "prediction\n0.9\n0.1\n0.2\n0.3\n";
        assert_eq!(score("auc", truth, predictions).unwrap(), 0.75);
        let truth = "id,label\na,1\nb,0\nc,1\n";
        let predictions = "id,prediction\nc,0.8\na,0.9\nb,0.85\n";
        assert_eq!(score("roc_auc", truth, predictions).unwrap(), 0.5);
    }

    #[test]
    fn multiclass_survival_and_regression() {
        let truth = "label\n0\n2\n1\n";
        let predictions = "prob_0,prob_1,prob_2\n0.7,0.2,0.1\n0.1,0.1,0.8\n0.5,0.4,0.1\n";
        let accuracy = score("multiclass_accuracy", truth, predictions).unwrap();
        assert!((accuracy - 2.0 / 3.0).abs() < 1e-12);
        // Risk scores: the earliest event gets the highest.
        let truth = "time,event\n1,1\n2,0\n3,1\n";
        let predictions = "prediction\n3\n2\n1\n";
        assert_eq!(score("c_index", truth, predictions).unwrap(), 1.0);
        let truth = "target\n1\n2\n";
        let predictions = "prediction\n2\n4\n";
        assert_eq!(score("mae", truth, predictions).unwrap(), 1.5);
    }

    /// The platform's pipeline scores a part with its fit's training labels and the bundle's
    /// horizons; `medarena score` given the same rows as files and `--train`/`--horizons`
    /// must say the same, bit for bit, for risk scores and for curves.
    #[test]
    fn the_platform_and_medarena_score_agree_on_survival() {
        use medarena_arena::pipeline::ScoredPart;
        let n = 60;
        let time: Vec<f64> = (0..n).map(|i| 10.0 + ((i * 37) % 97) as f64).collect();
        let event: Vec<bool> = (0..n).map(|i| i % 3 != 0).collect();
        let risk: Vec<f64> = (0..n).map(|i| -time[i] + ((i * 13) % 7) as f64).collect();
        let train_time: Vec<f64> = (0..n)
            .map(|i| 5.0 + 1.3 * ((i * 53) % 101) as f64)
            .collect();
        let train_event: Vec<bool> = (0..n).map(|i| i % 4 != 0).collect();
        let grid = [30.0, 60.0, 90.0];
        let curves: Vec<f64> = risk
            .iter()
            .flat_map(|r| grid.map(|t| (-t / 200.0 * (r / 50.0).exp()).exp()))
            .collect();
        let context = ScoreContext {
            horizons: grid.to_vec(),
            tau: Some(95.0),
            training: Some(SurvivalLabels {
                time: train_time.clone(),
                event: train_event.clone(),
            }),
        };
        let truth_csv: String = std::iter::once("time,event".to_owned())
            .chain((0..n).map(|i| format!("{},{}", time[i], u8::from(event[i]))))
            .collect::<Vec<_>>()
            .join("\n");
        let train_csv: String = std::iter::once("time,event".to_owned())
            .chain((0..n).map(|i| format!("{},{}", train_time[i], u8::from(train_event[i]))))
            .collect::<Vec<_>>()
            .join("\n");
        let risk_csv: String = std::iter::once("prediction".to_owned())
            .chain(risk.iter().map(|r| format!("{r:?}")))
            .collect::<Vec<_>>()
            .join("\n");
        let curves_csv: String = std::iter::once("s_30,s_60,s_90".to_owned())
            .chain(curves.chunks(3).map(|row| {
                row.iter()
                    .map(|v| format!("{v:?}"))
                    .collect::<Vec<_>>()
                    .join(",")
            }))
            .collect::<Vec<_>>()
            .join("\n");
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let (truth_path, train_path) = (write("t.csv", &truth_csv), write("train.csv", &train_csv));
        let files_context = ScoreContext {
            training: Some(read_training(&train_path).unwrap()),
            ..context.clone()
        };
        for (predictions, csv, metrics) in [
            (
                Predictions::Scores(risk.clone()),
                risk_csv,
                &[Metric::CIndex, Metric::UnoCIndex, Metric::TdAuc][..],
            ),
            (
                Predictions::SurvivalCurves {
                    times: grid.to_vec(),
                    values: curves.clone(),
                },
                curves_csv,
                &[
                    Metric::CIndex,
                    Metric::UnoCIndex,
                    Metric::TdAuc,
                    Metric::IntegratedBrier,
                ][..],
            ),
        ] {
            let part = ScoredPart {
                truth: Truth::Survival {
                    time: time.clone(),
                    event: event.clone(),
                },
                predictions,
                sites: vec![String::new(); n],
                context: context.clone(),
            };
            let predictions_path = write("p.csv", &csv);
            for &metric in metrics {
                let platform = part.score(metric).unwrap();
                let offline = score_files(metric, &truth_path, &predictions_path, &files_context)
                    .unwrap()
                    .value;
                assert_eq!(platform.to_bits(), offline.to_bits(), "{metric}");
                assert!((0.0..=1.0).contains(&platform), "{metric}: {platform}");
            }
        }
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let error = score("auc", "label\n1\nyes\n", "prediction\n0.1\n0.2\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("truth.csv: line 3, column `label`: expected 0 or 1, got `yes`"),
            "{error}"
        );
        let error = score("auc", "label\n1\n0\n", "prediction\n0.1\nNaN\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("predictions.csv: line 3, column `prediction`"),
            "{error}"
        );
        let error = score("auc", "label\n1\n0\n", "score\n0.1\n0.2\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("no `prediction` column"), "{error}");
        let error = score("log_loss", "label\n1\n0\n", "prediction\n0.1\n1.2\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("predictions.csv line 3"), "{error}");
        let error = score(
            "auc",
            "id,label\na,1\nb,0\n",
            "id,prediction\na,0.1\nz,0.2\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("no prediction for id `b`"), "{error}");
        let error = score("acc", "label\n1\n", "prediction\n0.1\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown metric `acc`"), "{error}");
    }
}
