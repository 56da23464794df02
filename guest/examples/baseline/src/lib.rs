//! The baseline submission: predicts the training prevalence / class frequencies / mean,
//! and for survival a constant risk, or, when the host asks for survival curves at a time
//! grid, the training Kaplan-Meier curve for every row. Also an example [`Analysis`]: the means of the first
//! columns of a block, as used by sample-and-aggregate releases.
use medarena_guest::{Analysis, Context, Error, Labels, Model, Table, debug, util};

pub struct Baseline {
    /// What every row gets (one value, or one per class).
    row: Vec<f64>,
    /// Survival only: the training Kaplan-Meier estimate as (distinct event time, S just
    /// after it), increasing in time; empty for other tasks.
    kaplan_meier: Vec<(f64, f64)>,
}

/// The Kaplan-Meier estimate: at each distinct event time t, S drops by the factor
/// `1 - deaths(t) / at_risk(t)`, with everyone whose time is ≥ t at risk (censored rows
/// count as at risk at their own time, the usual convention).
fn kaplan_meier(time: &[f64], event: &[f64]) -> Vec<(f64, f64)> {
    let mut order: Vec<usize> = (0..time.len()).collect();
    order.sort_by(|&a, &b| time[a].total_cmp(&time[b]));
    let mut steps = Vec::new();
    let mut survival = 1.0;
    let mut start = 0;
    while start < order.len() {
        let t = time[order[start]];
        let at_risk = (order.len() - start) as f64;
        let mut end = start;
        let mut deaths = 0.0;
        while end < order.len() && time[order[end]] == t {
            deaths += if event[order[end]] > 0.5 { 1.0 } else { 0.0 };
            end += 1;
        }
        if deaths > 0.0 {
            survival *= 1.0 - deaths / at_risk;
            steps.push((t, survival));
        }
        start = end;
    }
    steps
}

impl Baseline {
    /// The Kaplan-Meier curve at `t`: right-continuous (the events at `t` count), 1 before
    /// the first event time.
    fn survival_at(&self, t: f64) -> f64 {
        let after = self.kaplan_meier.partition_point(|(time, _)| *time <= t);
        after
            .checked_sub(1)
            .map_or(1.0, |last| self.kaplan_meier[last].1)
    }
}

impl Model for Baseline {
    fn fit(_ctx: &Context, _features: &Table<'_>, labels: &Labels<'_>) -> Result<Self, Error> {
        if labels.is_empty() {
            return Err(Error::new("no training rows"));
        }
        let row = match labels {
            Labels::Binary(y) | Labels::Regression(y) => {
                vec![y.iter().sum::<f64>() / y.len() as f64]
            }
            Labels::Multiclass { codes, classes } => {
                let mut counts = vec![0.0; classes.len()];
                for &code in codes.iter() {
                    if let Some(count) = counts.get_mut(code as usize) {
                        *count += 1.0;
                    }
                }
                counts
                    .iter()
                    .map(|count| count / codes.len() as f64)
                    .collect()
            }
            Labels::Survival { .. } => vec![0.0],
        };
        let kaplan_meier = match labels {
            Labels::Survival { time, event } => kaplan_meier(time, event),
            _ => Vec::new(),
        };
        debug!(
            "baseline: {} training rows, prediction {:?}",
            labels.len(),
            row
        );
        Ok(Baseline { row, kaplan_meier })
    }

    fn predict(&self, ctx: &Context, _features: &Table<'_>, out: &mut [f64]) -> Result<(), Error> {
        if let Some(grid) = ctx.survival_grid {
            let curve: Vec<f64> = grid.iter().map(|&t| self.survival_at(t)).collect();
            for row in ctx
                .curves(out)
                .ok_or(Error::new("a survival grid outside a survival task"))?
            {
                row.copy_from_slice(&curve);
            }
            return Ok(());
        }
        for chunk in out.chunks_mut(self.row.len()) {
            chunk.copy_from_slice(&self.row[..chunk.len()]);
        }
        Ok(())
    }
}

/// Means of the first `n_outputs` columns (missing values skipped; 0 when a column is
/// entirely missing or absent).
pub struct ColumnMeans;

impl Analysis for ColumnMeans {
    fn analyze(ctx: &Context, block: &Table<'_>, out: &mut [f64]) -> Result<(), Error> {
        let columns = block.numeric_columns();
        for (index, value) in out.iter_mut().enumerate().take(ctx.n_outputs) {
            *value = columns
                .get(index)
                .filter(|values| values.iter().any(|v| !v.is_nan()))
                .map_or(0.0, |values| util::mean_std(values).0);
        }
        Ok(())
    }
}

medarena_guest::export!(model = Baseline, analysis = ColumnMeans);
