//! The baseline submission: predicts the training prevalence / class frequencies / mean,
//! and a constant risk for survival. Also an example [`Analysis`]: the means of the first
//! columns of a block, as used by sample-and-aggregate releases.
use medarena_guest::{Analysis, Context, Error, Labels, Model, Table, debug, util};

pub struct Baseline {
    /// What every row gets (one value, or one per class).
    row: Vec<f64>,
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
        debug!(
            "baseline: {} training rows, prediction {:?}",
            labels.len(),
            row
        );
        Ok(Baseline { row })
    }

    fn predict(&self, _ctx: &Context, _features: &Table<'_>, out: &mut [f64]) -> Result<(), Error> {
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
