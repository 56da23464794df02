//! Logistic regression by full-batch gradient descent on standardised features (softmax
//! regression for multiclass, least squares for regression, a linear Cox model for
//! survival). Missing values are imputed with the training mean.

use medarena_guest::{Context, Error, Labels, Model, Table, TaskKind, debug, util};

const EPOCHS: usize = 300;
const LEARNING_RATE: f64 = 0.5;
const L2: f64 = 1e-4;

pub struct LogReg {
    task: TaskKind,
    /// Per input column: training mean and standard deviation.
    scaling: Vec<(f64, f64)>,
    /// Per output: intercept followed by one weight per column.
    weights: Vec<Vec<f64>>,
    /// Regression target scaling (mean, std), so that one learning rate fits every task.
    target_scaling: (f64, f64),
}

/// Scores of every row for every output (row-major, `n × outputs`).
fn scores(x: &[Vec<f64>], weights: &[Vec<f64>], n: usize) -> Vec<f64> {
    let k = weights.len();
    let mut scores = vec![0.0; n * k];
    for (c, w) in weights.iter().enumerate() {
        for i in 0..n {
            scores[i * k + c] = w[0];
        }
        for (column, &weight) in x.iter().zip(&w[1..]) {
            for (i, &v) in column.iter().enumerate() {
                scores[i * k + c] += weight * v;
            }
        }
    }
    scores
}

impl Model for LogReg {
    fn fit(ctx: &Context, features: &Table<'_>, labels: &Labels<'_>) -> Result<Self, Error> {
        let n = features.n_rows();
        if n == 0 || labels.len() != n {
            return Err(Error::new("labels and features disagree on the row count"));
        }
        let scaling = features.column_scaling();
        let x = features.standardized(&scaling);
        let k = ctx.outputs_per_row().max(1);
        let mut target_scaling = (0.0, 1.0);
        let target: Vec<f64> = match labels {
            Labels::Regression(y) => {
                target_scaling = util::mean_std(y);
                y.iter()
                    .map(|v| (v - target_scaling.0) / target_scaling.1)
                    .collect()
            }
            Labels::Binary(y) => y.to_vec(),
            _ => Vec::new(),
        };
        let mut weights = vec![vec![0.0; x.len() + 1]; k];
        let mut residual = vec![0.0; n * k];
        for _ in 0..EPOCHS {
            let s = scores(&x, &weights, n);
            match labels {
                Labels::Binary(_) => {
                    for i in 0..n {
                        residual[i] = util::sigmoid(s[i]) - target[i];
                    }
                }
                Labels::Regression(_) => {
                    for i in 0..n {
                        residual[i] = s[i] - target[i];
                    }
                }
                Labels::Multiclass { codes, .. } => {
                    for i in 0..n {
                        let row = &mut residual[i * k..(i + 1) * k];
                        row.copy_from_slice(&s[i * k..(i + 1) * k]);
                        util::softmax(row);
                        if let Some(p) = row.get_mut(codes[i] as usize) {
                            *p -= 1.0;
                        }
                    }
                }
                Labels::Survival { time, event } => {
                    residual = util::cox_gradients(time, event, &s).0;
                }
            }
            for (c, w) in weights.iter_mut().enumerate() {
                let intercept_grad: f64 =
                    (0..n).map(|i| residual[i * k + c]).sum::<f64>() / n as f64;
                w[0] -= LEARNING_RATE * intercept_grad;
                for (j, column) in x.iter().enumerate() {
                    let grad: f64 = column
                        .iter()
                        .enumerate()
                        .map(|(i, v)| residual[i * k + c] * v)
                        .sum::<f64>()
                        / n as f64;
                    w[j + 1] -= LEARNING_RATE * (grad + L2 * w[j + 1]);
                }
            }
        }
        debug!("logreg: {} rows, {} columns, {} outputs", n, x.len(), k);
        Ok(LogReg {
            task: ctx.task,
            scaling,
            weights,
            target_scaling,
        })
    }

    fn predict(&self, ctx: &Context, features: &Table<'_>, out: &mut [f64]) -> Result<(), Error> {
        // Risk scores only: say so on dummy data rather than trap on a curves job.
        if ctx.survival_grid.is_some() {
            return Err(Error::new(
                "this model predicts risk scores, not survival curves",
            ));
        }
        let n = features.n_rows();
        let k = self.weights.len();
        if features.columns().len() != self.scaling.len() || out.len() != n * ctx.outputs_per_row()
        {
            return Err(Error::new("test table differs from the training table"));
        }
        let s = scores(&features.standardized(&self.scaling), &self.weights, n);
        match self.task {
            TaskKind::Binary => out
                .iter_mut()
                .zip(&s)
                .for_each(|(o, &v)| *o = util::sigmoid(v)),
            TaskKind::Multiclass => {
                out.copy_from_slice(&s);
                out.chunks_mut(k).for_each(util::softmax);
            }
            TaskKind::Regression => {
                let (mean, std) = self.target_scaling;
                out.iter_mut()
                    .zip(&s)
                    .for_each(|(o, &v)| *o = v * std + mean);
            }
            TaskKind::Survival | TaskKind::Analyze => out.copy_from_slice(&s),
        }
        Ok(())
    }
}

medarena_guest::export!(model = LogReg);
