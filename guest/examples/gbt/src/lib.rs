//! Gradient-boosted regression trees on histogram bins (the stronger reference model):
//! logistic loss for binary, softmax for multiclass, squared error for regression and the
//! Cox partial likelihood for survival. Rows are subsampled per round from the host's seed.

use medarena_guest::{Context, Error, Labels, Model, Table, TaskKind, debug, util};

const ROUNDS: usize = 60;
const LEARNING_RATE: f64 = 0.15;
const MAX_DEPTH: usize = 4;
const MAX_BINS: usize = 32;
const LAMBDA: f64 = 1.0;
const MIN_CHILD_HESSIAN: f64 = 1e-3;
const SUBSAMPLE: f64 = 0.8;

/// Bin 0 holds missing values; bin `b >= 1` holds values in `(cuts[b-2], cuts[b-1]]`.
struct Binner {
    cuts: Vec<Vec<f64>>,
}

impl Binner {
    fn fit(columns: &[Vec<f64>]) -> Self {
        let cuts = columns
            .iter()
            .map(|values| {
                let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
                sorted.sort_by(f64::total_cmp);
                sorted.dedup();
                if sorted.len() < MAX_BINS {
                    return sorted;
                }
                (1..MAX_BINS)
                    .map(|q| sorted[q * sorted.len() / MAX_BINS])
                    .collect()
            })
            .collect();
        Binner { cuts }
    }

    /// Column-major bins.
    fn bin(&self, columns: &[Vec<f64>]) -> Vec<Vec<u8>> {
        columns
            .iter()
            .zip(&self.cuts)
            .map(|(values, cuts)| {
                values
                    .iter()
                    .map(|&v| {
                        if v.is_nan() {
                            0
                        } else {
                            1 + cuts.partition_point(|&cut| cut < v) as u8
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

enum Node {
    Leaf(f64),
    /// Rows whose bin is in `1..=threshold` go left; missing (bin 0) goes as `missing_left`.
    Split {
        feature: usize,
        threshold: u8,
        missing_left: bool,
        left: usize,
        right: usize,
    },
}

struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn predict(&self, bins: &[Vec<u8>], row: usize) -> f64 {
        let mut at = 0;
        loop {
            match self.nodes[at] {
                Node::Leaf(value) => return value,
                Node::Split {
                    feature,
                    threshold,
                    missing_left,
                    left,
                    right,
                } => {
                    let bin = bins[feature][row];
                    let goes_left = if bin == 0 {
                        missing_left
                    } else {
                        bin <= threshold
                    };
                    at = if goes_left { left } else { right };
                }
            }
        }
    }
}

struct Grower<'a> {
    bins: &'a [Vec<u8>],
    grad: &'a [f64],
    hess: &'a [f64],
    nodes: Vec<Node>,
}

fn leaf_score(g: f64, h: f64) -> f64 {
    g * g / (h + LAMBDA)
}

impl Grower<'_> {
    fn grow(&mut self, rows: Vec<u32>, depth: usize) -> usize {
        let (g, h) = rows.iter().fold((0.0, 0.0), |(g, h), &r| {
            (g + self.grad[r as usize], h + self.hess[r as usize])
        });
        let id = self.nodes.len();
        self.nodes.push(Node::Leaf(-g / (h + LAMBDA)));
        if depth >= MAX_DEPTH || rows.len() < 4 {
            return id;
        }
        // (gain, feature, threshold, missing_left)
        let mut best: Option<(f64, usize, u8, bool)> = None;
        for (feature, column) in self.bins.iter().enumerate() {
            let mut hist = [(0.0f64, 0.0f64); MAX_BINS + 1];
            for &r in &rows {
                let slot = &mut hist[column[r as usize] as usize];
                slot.0 += self.grad[r as usize];
                slot.1 += self.hess[r as usize];
            }
            let (missing_g, missing_h) = hist[0];
            let (mut left_g, mut left_h) = (0.0, 0.0);
            for (threshold, &(bin_g, bin_h)) in hist.iter().enumerate().take(MAX_BINS).skip(1) {
                left_g += bin_g;
                left_h += bin_h;
                for missing_left in [false, true] {
                    let (lg, lh) = if missing_left {
                        (left_g + missing_g, left_h + missing_h)
                    } else {
                        (left_g, left_h)
                    };
                    let (rg, rh) = (g - lg, h - lh);
                    if lh < MIN_CHILD_HESSIAN || rh < MIN_CHILD_HESSIAN {
                        continue;
                    }
                    let gain = leaf_score(lg, lh) + leaf_score(rg, rh) - leaf_score(g, h);
                    if gain > 1e-9 && best.is_none_or(|b| gain > b.0) {
                        best = Some((gain, feature, threshold as u8, missing_left));
                    }
                }
            }
        }
        let Some((_, feature, threshold, missing_left)) = best else {
            return id;
        };
        let column = &self.bins[feature];
        let (left_rows, right_rows): (Vec<u32>, Vec<u32>) = rows.iter().partition(|&&r| {
            let bin = column[r as usize];
            if bin == 0 {
                missing_left
            } else {
                bin <= threshold
            }
        });
        let left = self.grow(left_rows, depth + 1);
        let right = self.grow(right_rows, depth + 1);
        self.nodes[id] = Node::Split {
            feature,
            threshold,
            missing_left,
            left,
            right,
        };
        id
    }
}

pub struct Gbt {
    task: TaskKind,
    binner: Binner,
    base: Vec<f64>,
    /// Per round, one tree per output.
    rounds: Vec<Vec<Tree>>,
}

impl Gbt {
    fn raw_scores(&self, bins: &[Vec<u8>], n: usize) -> Vec<f64> {
        let k = self.base.len();
        let mut scores: Vec<f64> = (0..n * k).map(|i| self.base[i % k]).collect();
        for trees in &self.rounds {
            for (c, tree) in trees.iter().enumerate() {
                for row in 0..n {
                    scores[row * k + c] += LEARNING_RATE * tree.predict(bins, row);
                }
            }
        }
        scores
    }
}

impl Model for Gbt {
    fn fit(ctx: &Context, features: &Table<'_>, labels: &Labels<'_>) -> Result<Self, Error> {
        let n = features.n_rows();
        if n == 0 || labels.len() != n {
            return Err(Error::new("labels and features disagree on the row count"));
        }
        let columns = features.numeric_columns();
        let binner = Binner::fit(&columns);
        let bins = binner.bin(&columns);
        let k = ctx.outputs_per_row().max(1);
        let base = match labels {
            Labels::Binary(y) => {
                let p = (y.iter().sum::<f64>() / n as f64).clamp(1e-6, 1.0 - 1e-6);
                vec![util::ln(p / (1.0 - p))]
            }
            Labels::Regression(y) => vec![y.iter().sum::<f64>() / n as f64],
            _ => vec![0.0; k],
        };
        let mut model = Gbt {
            task: ctx.task,
            binner,
            base,
            rounds: Vec::new(),
        };
        let mut scores: Vec<f64> = (0..n * k).map(|i| model.base[i % k]).collect();
        let mut rng = util::SplitMix64::new(ctx.seed);
        let (mut grad, mut hess) = (vec![0.0; n], vec![0.0; n]);
        for _ in 0..ROUNDS {
            let rows: Vec<u32> = (0..n as u32)
                .filter(|_| rng.next_f64() < SUBSAMPLE)
                .collect();
            let mut trees = Vec::with_capacity(k);
            let mut probabilities = scores.clone();
            if let Labels::Multiclass { .. } = labels {
                probabilities.chunks_mut(k).for_each(util::softmax);
            }
            if let Labels::Survival { time, event } = labels {
                (grad, hess) = util::cox_gradients(time, event, &scores);
            }
            for c in 0..k {
                match labels {
                    Labels::Binary(y) => (0..n).for_each(|i| {
                        let p = util::sigmoid(scores[i]);
                        grad[i] = p - y[i];
                        hess[i] = (p * (1.0 - p)).max(1e-6);
                    }),
                    Labels::Regression(y) => (0..n).for_each(|i| {
                        grad[i] = scores[i] - y[i];
                        hess[i] = 1.0;
                    }),
                    Labels::Multiclass { codes, .. } => (0..n).for_each(|i| {
                        let p = probabilities[i * k + c];
                        grad[i] = p - if codes[i] as usize == c { 1.0 } else { 0.0 };
                        hess[i] = (p * (1.0 - p)).max(1e-6);
                    }),
                    Labels::Survival { .. } => {}
                }
                let mut grower = Grower {
                    bins: &bins,
                    grad: &grad,
                    hess: &hess,
                    nodes: Vec::new(),
                };
                grower.grow(rows.clone(), 0);
                let tree = Tree {
                    nodes: grower.nodes,
                };
                for row in 0..n {
                    scores[row * k + c] += LEARNING_RATE * tree.predict(&bins, row);
                }
                trees.push(tree);
            }
            model.rounds.push(trees);
        }
        debug!(
            "gbt: {} rows, {} columns, {} rounds of {} trees",
            n,
            columns.len(),
            ROUNDS,
            k
        );
        Ok(model)
    }

    fn predict(&self, ctx: &Context, features: &Table<'_>, out: &mut [f64]) -> Result<(), Error> {
        // Risk scores only: say so on dummy data rather than trap on a curves job.
        if ctx.survival_grid.is_some() {
            return Err(Error::new(
                "this model predicts risk scores, not survival curves",
            ));
        }
        let n = features.n_rows();
        let k = self.base.len();
        if features.columns().len() != self.binner.cuts.len()
            || out.len() != n * ctx.outputs_per_row()
        {
            return Err(Error::new("test table differs from the training table"));
        }
        let bins = self.binner.bin(&features.numeric_columns());
        out.copy_from_slice(&self.raw_scores(&bins, n));
        match self.task {
            TaskKind::Binary => out.iter_mut().for_each(|v| *v = util::sigmoid(*v)),
            TaskKind::Multiclass => out.chunks_mut(k).for_each(util::softmax),
            _ => {}
        }
        Ok(())
    }
}

medarena_guest::export!(model = Gbt);
