//! Consistency, non-negativity and sampling: pure post-processing of the noisy
//! measurements (no access to the data, so no further privacy cost).
//!
//! What this does, in place of MST's Private-PGM estimation:
//! 1. **1-way marginals.** Each column gets every estimate of its distribution the
//!    measurements hold (its noisy 1-way marginal, and the margin of each noisy 2-way
//!    marginal that contains it), averaged cell by cell with inverse-variance weights (a
//!    margin summed over `m` cells has variance `m·σ²`). Negative cells are clipped to 0 and
//!    the result is normalised. All the tree's marginals then share these 1-ways.
//! 2. **Tree 2-way marginals.** A tree edge measured twice (a label pair, measured in the
//!    first phase and again as a tree edge) is averaged with inverse-variance weights;
//!    negatives are clipped, a tiny floor keeps every cell reachable, and iterative
//!    proportional fitting rakes the table to the two consistent 1-way marginals, so
//!    that parent and child agree on their shared attribute.
//!
//! Private-PGM instead finds the graphical model whose marginals best fit all the noisy
//! measurements at once (a convex optimisation); on a tree the two coincide when the noise
//! is small, and clipping biases small cells upwards when it is not.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::bins::ColumnBins;
use crate::measure::Marginal;
use crate::{Measurements, SynthError};

/// The consistent model the sampler draws from.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    levels: Vec<usize>,
    /// Estimated number of rows.
    pub total: f64,
    /// Consistent 1-way distributions.
    pub one_way: Vec<Vec<f64>>,
    /// Tree edges `(a, b)` with their consistent joint distribution (row-major, `a` first).
    pub edges: Vec<((usize, usize), Vec<f64>)>,
}

fn normalised_nonneg(values: &[f64]) -> Vec<f64> {
    let clipped: Vec<f64> = values.iter().map(|v| v.max(0.0)).collect();
    let total: f64 = clipped.iter().sum();
    if total > 0.0 && total.is_finite() {
        clipped.iter().map(|v| v / total).collect()
    } else {
        vec![1.0 / values.len().max(1) as f64; values.len()]
    }
}

/// Transposes a row-major `rows × cols` table.
fn transpose(table: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; table.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = table[r * cols + c];
        }
    }
    out
}

/// The margin over attribute position `keep` (0 or 1) of a 1- or 2-way table.
fn margin(marginal: &Marginal, levels: &[usize], keep: usize) -> Vec<f64> {
    if marginal.attrs.len() == 1 {
        return marginal.counts.clone();
    }
    let (rows, cols) = (levels[marginal.attrs[0]], levels[marginal.attrs[1]]);
    let mut out = vec![0.0; if keep == 0 { rows } else { cols }];
    for r in 0..rows {
        for c in 0..cols {
            out[if keep == 0 { r } else { c }] += marginal.counts[r * cols + c];
        }
    }
    out
}

/// Rakes a non-negative joint table to the given row and column margins.
fn rake(joint: &mut [f64], rows: &[f64], cols: &[f64]) {
    let (nr, nc) = (rows.len(), cols.len());
    for _ in 0..200 {
        let mut moved = 0.0f64;
        for r in 0..nr {
            let sum: f64 = joint[r * nc..(r + 1) * nc].iter().sum();
            if sum > 0.0 {
                let factor = rows[r] / sum;
                moved = moved.max((rows[r] - sum).abs());
                joint[r * nc..(r + 1) * nc]
                    .iter_mut()
                    .for_each(|v| *v *= factor);
            }
        }
        for c in 0..nc {
            let sum: f64 = (0..nr).map(|r| joint[r * nc + c]).sum();
            if sum > 0.0 {
                let factor = cols[c] / sum;
                moved = moved.max((cols[c] - sum).abs());
                (0..nr).for_each(|r| joint[r * nc + c] *= factor);
            }
        }
        if moved < 1e-12 {
            break;
        }
    }
}

impl Model {
    /// The model of the 1-way information only (used to score candidate edges).
    pub fn one_way_only(
        columns: &[ColumnBins],
        one_way: &[Marginal],
        label_pairs: &[Marginal],
    ) -> Model {
        let levels: Vec<usize> = columns.iter().map(ColumnBins::levels).collect();
        let all: Vec<&Marginal> = one_way.iter().chain(label_pairs).collect();
        // Inverse-variance weighted total: a total over k cells has variance k·σ².
        let (mut weighted, mut weights) = (0.0, 0.0);
        for m in &all {
            let variance = m.sigma * m.sigma * m.counts.len() as f64;
            if variance > 0.0 {
                weighted += m.counts.iter().sum::<f64>() / variance;
                weights += 1.0 / variance;
            }
        }
        let total = if weights > 0.0 {
            (weighted / weights).max(1.0)
        } else {
            1.0
        };
        let one_way = (0..columns.len())
            .map(|c| {
                let mut sum = vec![0.0; levels[c]];
                let mut weight_sum = 0.0;
                for m in &all {
                    let Some(position) = m.attrs.iter().position(|a| *a == c) else {
                        continue;
                    };
                    let folded = m.counts.len() / levels[c].max(1);
                    let variance = m.sigma * m.sigma * folded as f64;
                    let weight = if variance > 0.0 {
                        1.0 / variance
                    } else {
                        1e300
                    };
                    for (s, v) in sum.iter_mut().zip(margin(m, &levels, position)) {
                        *s += weight * v;
                    }
                    weight_sum += weight;
                }
                if weight_sum > 0.0 {
                    sum.iter_mut().for_each(|s| *s /= weight_sum);
                }
                normalised_nonneg(&sum)
            })
            .collect();
        Model {
            levels,
            total,
            one_way,
            edges: Vec::new(),
        }
    }

    /// The full model: consistent 1-ways and the raked tree marginals.
    pub fn from_measurements(m: &Measurements) -> Model {
        let mut all_pairs: Vec<Marginal> = m.label_pairs.clone();
        all_pairs.extend(m.two_way.iter().cloned());
        let mut model = Model::one_way_only(&m.columns, &m.one_way, &all_pairs);
        for measured in &m.two_way {
            let (a, b) = (measured.attrs[0], measured.attrs[1]);
            let (ra, rb) = (model.levels[a], model.levels[b]);
            let mut sum: Vec<f64> = measured
                .counts
                .iter()
                .map(|v| v / (measured.sigma * measured.sigma))
                .collect();
            let mut weight = 1.0 / (measured.sigma * measured.sigma);
            for pair in &m.label_pairs {
                let aligned = if pair.attrs == [a, b] {
                    Some(pair.counts.clone())
                } else if pair.attrs == [b, a] {
                    Some(transpose(&pair.counts, rb, ra))
                } else {
                    None
                };
                if let Some(counts) = aligned {
                    let w = 1.0 / (pair.sigma * pair.sigma);
                    sum.iter_mut().zip(&counts).for_each(|(s, v)| *s += w * v);
                    weight += w;
                }
            }
            let averaged: Vec<f64> = sum.iter().map(|s| s / weight).collect();
            let mut joint = normalised_nonneg(&averaged);
            let floor = 1e-9 / joint.len() as f64;
            joint.iter_mut().for_each(|v| *v += floor);
            rake(&mut joint, &model.one_way[a], &model.one_way[b]);
            model.edges.push(((a, b), joint));
        }
        model
    }

    /// Counts of the pair `(a, b)` if the two columns were independent.
    pub fn independent(&self, a: usize, b: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.levels[a] * self.levels[b]);
        for pa in &self.one_way[a] {
            for pb in &self.one_way[b] {
                out.push(self.total * pa * pb);
            }
        }
        out
    }

    /// The model's joint distribution of a tree edge, oriented as `(a, b)`.
    pub fn edge_joint(&self, a: usize, b: usize) -> Option<Vec<f64>> {
        self.edges.iter().find_map(|((x, y), joint)| {
            if (*x, *y) == (a, b) {
                Some(joint.clone())
            } else if (*x, *y) == (b, a) {
                Some(transpose(joint, self.levels[b], self.levels[a]))
            } else {
                None
            }
        })
    }

    /// Draws `rows` rows of levels (column-major), root first and each child from its
    /// conditional given its parent.
    pub fn sample_levels(
        &self,
        root: usize,
        rows: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<Vec<u32>>, SynthError> {
        let n = self.levels.len();
        // Orient the tree from the root (breadth first).
        let mut order = vec![root];
        let mut parent: Vec<Option<usize>> = vec![None; n];
        let mut seen = vec![false; n];
        if root >= n {
            return Err(SynthError::Inconsistent("the root is not a column".into()));
        }
        seen[root] = true;
        let mut head = 0;
        while head < order.len() {
            let node = order[head];
            head += 1;
            for ((a, b), _) in &self.edges {
                let next = if *a == node {
                    *b
                } else if *b == node {
                    *a
                } else {
                    continue;
                };
                if !seen[next] {
                    seen[next] = true;
                    parent[next] = Some(node);
                    order.push(next);
                }
            }
        }
        // A column the tree does not reach (only when the tree is missing) is drawn alone.
        order.extend((0..n).filter(|c| !seen[*c]));
        // Cumulative tables: the root's (and unreached columns') 1-way, each child's
        // conditional given each parent level.
        let cumulative = |weights: &[f64]| -> Vec<f64> {
            weights
                .iter()
                .scan(0.0, |acc, w| {
                    *acc += w.max(0.0);
                    Some(*acc)
                })
                .collect()
        };
        let mut tables: Vec<Vec<Vec<f64>>> = vec![Vec::new(); n];
        for &c in &order {
            tables[c] = match parent[c] {
                None => vec![cumulative(&self.one_way[c])],
                Some(p) => {
                    let joint = self.edge_joint(p, c).ok_or_else(|| {
                        SynthError::Inconsistent("a tree edge has no marginal".into())
                    })?;
                    let k = self.levels[c];
                    (0..self.levels[p])
                        .map(|level| {
                            let row = &joint[level * k..(level + 1) * k];
                            if row.iter().sum::<f64>() > 0.0 {
                                cumulative(row)
                            } else {
                                cumulative(&self.one_way[c])
                            }
                        })
                        .collect()
                }
            };
        }
        let draw = |table: &[f64], rng: &mut ChaCha8Rng| -> u32 {
            let total = table.last().copied().unwrap_or(0.0);
            if total <= 0.0 {
                return 0;
            }
            let target = rng.r#gen::<f64>() * total;
            table.partition_point(|c| *c <= target).min(table.len() - 1) as u32
        };
        let mut codes = vec![vec![0u32; rows]; n];
        for row in 0..rows {
            for &c in &order {
                let table = match parent[c] {
                    None => &tables[c][0],
                    Some(p) => &tables[c][codes[p][row] as usize],
                };
                codes[c][row] = draw(table, rng);
            }
        }
        Ok(codes)
    }
}

/// A seeded generator for sampling (the measurement itself is not seeded).
pub(crate) fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bins::BinKind;

    fn column(name: &str, levels: usize) -> ColumnBins {
        ColumnBins {
            name: name.into(),
            kind: BinKind::Integer {
                lo: 0,
                hi: levels as i64 - 1,
                bins: levels,
            },
            missing: false,
        }
    }

    #[test]
    fn raked_edges_share_the_averaged_one_ways() {
        let columns = vec![column("a", 2), column("b", 3)];
        let one_way = vec![
            Marginal {
                attrs: vec![0],
                sigma: 1.0,
                counts: vec![60.0, 40.0],
            },
            Marginal {
                attrs: vec![1],
                sigma: 1.0,
                counts: vec![-2.0, 50.0, 52.0],
            },
        ];
        // A noisy 2-way whose margins disagree with the 1-ways and has a negative cell.
        let edge = Marginal {
            attrs: vec![1, 0],
            sigma: 2.0,
            counts: vec![1.0, -1.0, 30.0, 25.0, 40.0, 10.0],
        };
        let model = Model::one_way_only(&columns, &one_way, std::slice::from_ref(&edge));
        let mut full = model.clone();
        let mut joint = normalised_nonneg(&edge.counts);
        joint.iter_mut().for_each(|v| *v += 1e-12);
        rake(&mut joint, &full.one_way[1], &full.one_way[0]);
        full.edges.push(((1, 0), joint));
        // Non-negative, normalised, the negative count clipped.
        assert!(model.one_way.iter().flatten().all(|p| *p >= 0.0));
        assert!((model.one_way[1].iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(model.one_way[1][0], 0.0);
        // The edge, read either way round, has the 1-ways as margins.
        let joint = full.edge_joint(0, 1).unwrap();
        for (r, p) in full.one_way[0].iter().enumerate() {
            let row: f64 = joint[r * 3..(r + 1) * 3].iter().sum();
            assert!((row - p).abs() < 1e-9, "{row} vs {p}");
        }
        for (c, p) in full.one_way[1].iter().enumerate() {
            let col: f64 = (0..2).map(|r| joint[r * 3 + c]).sum();
            assert!((col - p).abs() < 1e-9, "{col} vs {p}");
        }
        // The total is the inverse-variance average of the three totals.
        // Variances of the totals: σ² times the cells summed (2, 3 and 4·6).
        let expected = (100.0 / 2.0 + 100.0 / 3.0 + 105.0 / 24.0) / (0.5 + 1.0 / 3.0 + 1.0 / 24.0);
        assert!((model.total - expected).abs() < 1e-9, "{}", model.total);
    }

    #[test]
    fn sampling_follows_the_tree_and_the_seed() {
        let columns = vec![column("a", 2), column("b", 2)];
        let one_way = vec![
            Marginal {
                attrs: vec![0],
                sigma: 1e-6,
                counts: vec![50.0, 50.0],
            },
            Marginal {
                attrs: vec![1],
                sigma: 1e-6,
                counts: vec![50.0, 50.0],
            },
        ];
        let mut model = Model::one_way_only(&columns, &one_way, &[]);
        // b copies a.
        model.edges.push(((0, 1), vec![0.5, 0.0, 0.0, 0.5]));
        let codes = model.sample_levels(0, 1000, &mut rng(3)).unwrap();
        assert_eq!(codes[0], codes[1]);
        let ones = codes[0].iter().filter(|c| **c == 1).count();
        assert!((400..600).contains(&ones), "{ones}");
        assert_eq!(codes, model.sample_levels(0, 1000, &mut rng(3)).unwrap());
    }
}
