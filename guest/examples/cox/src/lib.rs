//! Cox proportional hazards for survival competitions, fitted by Newton-Raphson on the
//! partial likelihood with Breslow's handling of tied event times (as `lifelines` and
//! scikit-survival's `CoxPHSurvivalAnalysis(ties="breslow")`), with a small ridge penalty
//! that keeps the Newton system positive definite when a column is constant or two columns
//! are collinear. Columns are standardised; missing values get the training mean.
//!
//! Without a survival grid the prediction is the linear predictor `x·β`, a risk score:
//! higher means an earlier event (`sandbox/ABI.md`). When the host sends a grid (ABI
//! version 2) each row gets its survival curve at the grid times from the Breslow baseline
//! cumulative hazard kept with the model, `S(t | x) = S0(t)^{e^{x·β}} = exp(-H0(t) · e^{x·β})`,
//! with H0 a right-continuous step function (the value at t includes the events at t), as
//! scikit-survival's `predict_survival_function`.

use medarena_guest::{Context, Error, Labels, Model, Table, TaskKind, debug, util};

/// Newton steps at most; the partial likelihood usually converges in 4-8.
const MAX_ITERATIONS: usize = 30;
/// Stop when a step changes the penalised log partial likelihood by less than this.
const TOLERANCE: f64 = 1e-9;
/// Ridge penalty on the standardised coefficients (per row, so it fades as data grow).
const RIDGE: f64 = 1e-3;

pub struct Cox {
    /// Per input column: training mean and standard deviation.
    scaling: Vec<(f64, f64)>,
    /// One coefficient per standardised column.
    beta: Vec<f64>,
    /// Breslow baseline cumulative hazard at each distinct event time, increasing.
    baseline: Vec<(f64, f64)>,
}

fn linear_predictor(x: &[Vec<f64>], beta: &[f64], n: usize) -> Vec<f64> {
    let mut eta = vec![0.0; n];
    for (column, &b) in x.iter().zip(beta) {
        for (e, v) in eta.iter_mut().zip(column) {
            *e += b * v;
        }
    }
    eta
}

/// The penalised log partial likelihood (Breslow ties), its gradient and the information
/// matrix (minus the Hessian, row-major `p × p`), at `beta`. `order` sorts rows by
/// decreasing time, so that the risk set of a time is a prefix.
struct Step {
    log_likelihood: f64,
    gradient: Vec<f64>,
    information: Vec<f64>,
}

fn evaluate(x: &[Vec<f64>], time: &[f64], event: &[f64], order: &[usize], beta: &[f64]) -> Step {
    let (n, p) = (time.len(), x.len());
    let eta = linear_predictor(x, beta, n);
    let mut log_likelihood = 0.0;
    let mut gradient = vec![0.0; p];
    let mut information = vec![0.0; p * p];
    // Risk-set sums over rows with time >= t: S0 = Σ r, S1 = Σ r·x, S2 = Σ r·x·xᵀ.
    let (mut s0, mut s1, mut s2) = (0.0, vec![0.0; p], vec![0.0; p * p]);
    let mut row_x = vec![0.0; p];
    let mut start = 0;
    while start < n {
        let t = time[order[start]];
        let mut end = start;
        let (mut deaths, mut death_eta, mut death_x) = (0.0, 0.0, vec![0.0; p]);
        while end < n && time[order[end]] == t {
            let i = order[end];
            let r = util::exp(eta[i].clamp(-50.0, 50.0));
            for (j, column) in x.iter().enumerate() {
                row_x[j] = column[i];
            }
            s0 += r;
            for a in 0..p {
                s1[a] += r * row_x[a];
                for b in 0..=a {
                    s2[a * p + b] += r * row_x[a] * row_x[b];
                }
            }
            if event[i] > 0.5 {
                deaths += 1.0;
                death_eta += eta[i];
                for a in 0..p {
                    death_x[a] += row_x[a];
                }
            }
            end += 1;
        }
        if deaths > 0.0 {
            log_likelihood += death_eta - deaths * util::ln(s0);
            for a in 0..p {
                gradient[a] += death_x[a] - deaths * s1[a] / s0;
                for b in 0..=a {
                    let value = deaths * (s2[a * p + b] / s0 - s1[a] * s1[b] / (s0 * s0));
                    information[a * p + b] += value;
                }
            }
        }
        start = end;
    }
    let ridge = RIDGE * n as f64;
    for a in 0..p {
        log_likelihood -= 0.5 * ridge * beta[a] * beta[a];
        gradient[a] -= ridge * beta[a];
        information[a * p + a] += ridge;
        for b in 0..a {
            information[b * p + a] = information[a * p + b];
        }
    }
    Step {
        log_likelihood,
        gradient,
        information,
    }
}

/// Solves `a · x = b` for a symmetric positive definite `a` (row-major `p × p`) by Cholesky
/// decomposition; `None` when `a` is not positive definite.
fn solve_spd(a: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    let p = b.len();
    let mut l = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let mut sum = a[i * p + j];
            for k in 0..j {
                sum -= l[i * p + k] * l[j * p + k];
            }
            if i == j {
                if sum <= 0.0 {
                    return None;
                }
                l[i * p + i] = util::sqrt(sum);
            } else {
                l[i * p + j] = sum / l[j * p + j];
            }
        }
    }
    let mut y = vec![0.0; p];
    for i in 0..p {
        let sum: f64 = (0..i).map(|k| l[i * p + k] * y[k]).sum();
        y[i] = (b[i] - sum) / l[i * p + i];
    }
    let mut x = vec![0.0; p];
    for i in (0..p).rev() {
        let sum: f64 = (i + 1..p).map(|k| l[k * p + i] * x[k]).sum();
        x[i] = (y[i] - sum) / l[i * p + i];
    }
    Some(x)
}

/// Breslow's baseline cumulative hazard: at each distinct event time t,
/// H0(t) = Σ_{event times s ≤ t} deaths(s) / Σ_{time ≥ s} e^{η}.
fn breslow(time: &[f64], event: &[f64], eta: &[f64], order: &[usize]) -> Vec<(f64, f64)> {
    let n = time.len();
    let mut steps = Vec::new();
    let mut s0 = 0.0;
    let mut start = 0;
    while start < n {
        let t = time[order[start]];
        let mut end = start;
        let mut deaths = 0.0;
        while end < n && time[order[end]] == t {
            s0 += util::exp(eta[order[end]].clamp(-50.0, 50.0));
            deaths += if event[order[end]] > 0.5 { 1.0 } else { 0.0 };
            end += 1;
        }
        if deaths > 0.0 {
            steps.push((t, deaths / s0));
        }
        start = end;
    }
    // Accumulate in increasing time.
    steps.reverse();
    let mut cumulative = 0.0;
    for step in &mut steps {
        cumulative += step.1;
        step.1 = cumulative;
    }
    steps
}

impl Cox {
    /// The Breslow baseline cumulative hazard H0(t): right-continuous, so the events at
    /// exactly `t` count; 0 before the first event time.
    pub fn baseline_hazard(&self, t: f64) -> f64 {
        let after = self.baseline.partition_point(|(time, _)| *time <= t);
        after
            .checked_sub(1)
            .map_or(0.0, |last| self.baseline[last].1)
    }

    /// The survival probability of a row with linear predictor `eta` at time `t`.
    pub fn survival(&self, eta: f64, t: f64) -> f64 {
        util::exp(-self.baseline_hazard(t) * util::exp(eta.clamp(-50.0, 50.0)))
    }

    /// The fitted coefficients, on the standardised scale.
    pub fn coefficients(&self) -> &[f64] {
        &self.beta
    }
}

impl Model for Cox {
    fn fit(ctx: &Context, features: &Table<'_>, labels: &Labels<'_>) -> Result<Self, Error> {
        let Labels::Survival { time, event } = labels else {
            return Err(Error::new("the Cox model needs a survival task"));
        };
        if ctx.task != TaskKind::Survival {
            return Err(Error::new("the Cox model needs a survival task"));
        }
        let n = features.n_rows();
        if n == 0 || time.len() != n {
            return Err(Error::new("labels and features disagree on the row count"));
        }
        let scaling = features.column_scaling();
        let x = features.standardized(&scaling);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| time[b].total_cmp(&time[a]).then(a.cmp(&b)));
        let mut beta = vec![0.0; x.len()];
        let mut current = evaluate(&x, time, event, &order, &beta);
        let mut iterations = 0;
        while iterations < MAX_ITERATIONS {
            iterations += 1;
            let Some(delta) = solve_spd(&current.information, &current.gradient) else {
                return Err(Error::new("the Newton system is not positive definite"));
            };
            // Step halving keeps every step an ascent (the likelihood is concave, so a
            // short enough step always is).
            let mut scale = 1.0;
            let (next_beta, next) = loop {
                let candidate: Vec<f64> = beta
                    .iter()
                    .zip(&delta)
                    .map(|(b, d)| b + scale * d)
                    .collect();
                let step = evaluate(&x, time, event, &order, &candidate);
                if step.log_likelihood >= current.log_likelihood - 1e-12 || scale < 1e-6 {
                    break (candidate, step);
                }
                scale *= 0.5;
            };
            let gain = next.log_likelihood - current.log_likelihood;
            beta = next_beta;
            current = next;
            if gain.abs() < TOLERANCE * (1.0 + current.log_likelihood.abs()) {
                break;
            }
        }
        let eta = linear_predictor(&x, &beta, n);
        let baseline = breslow(time, event, &eta, &order);
        debug!(
            "cox: {} rows, {} events, {} columns, {} Newton steps, log partial likelihood {:.4}",
            n,
            event.iter().filter(|e| **e > 0.5).count(),
            x.len(),
            iterations,
            current.log_likelihood
        );
        Ok(Cox {
            scaling,
            beta,
            baseline,
        })
    }

    fn predict(&self, ctx: &Context, features: &Table<'_>, out: &mut [f64]) -> Result<(), Error> {
        let n = features.n_rows();
        if features.columns().len() != self.scaling.len() || out.len() != n * ctx.outputs_per_row()
        {
            return Err(Error::new("test table differs from the training table"));
        }
        let eta = linear_predictor(&features.standardized(&self.scaling), &self.beta, n);
        match ctx.survival_grid {
            Some(grid) => {
                // H0 once per grid time; each row then only scales it by its relative risk.
                let hazards: Vec<f64> = grid.iter().map(|&t| self.baseline_hazard(t)).collect();
                for (curve, &e) in out.chunks_exact_mut(grid.len()).zip(&eta) {
                    let relative_risk = util::exp(e.clamp(-50.0, 50.0));
                    for (s, &h) in curve.iter_mut().zip(&hazards) {
                        // In [0, 1] and non-increasing, because H0 is non-decreasing.
                        *s = util::exp(-h * relative_risk);
                    }
                }
            }
            None => out.copy_from_slice(&eta),
        }
        Ok(())
    }
}

medarena_guest::export!(model = Cox);
