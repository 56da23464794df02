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

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::bins::ColumnBins;
use crate::measure::{Marginal, compress_codes, compressed_sizes};
use crate::{Measurements, SynthError};

/// The consistent model the sampler draws from.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    /// Levels of each column.
    levels: Vec<usize>,
    /// Levels of each column after compression.
    sizes: Vec<usize>,
    /// The compressed index of every level (the identity for an uncompressed column).
    groups: Vec<Vec<u32>>,
    /// Each level's share of its compressed group (1 for a level kept alone).
    shares: Vec<Vec<f64>>,
    /// Estimated number of rows.
    pub total: f64,
    /// Consistent 1-way distributions over the compressed domains.
    pub compressed: Vec<Vec<f64>>,
    /// Consistent 1-way distributions over every level.
    pub one_way: Vec<Vec<f64>>,
    /// Tree edges `(a, b)` with their consistent joint distribution over every level
    /// (row-major, `a` first).
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

/// The margin over attribute position `keep` (0 or 1) of a 2-way table whose columns have
/// `sizes` levels.
fn margin(marginal: &Marginal, sizes: &[usize], keep: usize) -> Vec<f64> {
    let (rows, cols) = (sizes[marginal.attrs[0]], sizes[marginal.attrs[1]]);
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
    /// The model of the 1-way information only (used to score candidate edges): the
    /// compressed domains `groups` (see [`crate::Measurements::groups`]), the noisy 1-ways
    /// over every level and 2-way marginals over the compressed domains.
    pub fn one_way_only(
        columns: &[ColumnBins],
        groups: &[Vec<u32>],
        one_way: &[Marginal],
        pairs: &[Marginal],
    ) -> Model {
        let levels: Vec<usize> = columns.iter().map(ColumnBins::levels).collect();
        let sizes = compressed_sizes(columns, groups);
        let groups: Vec<Vec<u32>> = (0..columns.len())
            .map(|c| match groups.get(c) {
                Some(g) if !g.is_empty() => g.clone(),
                _ => (0..levels[c] as u32).collect(),
            })
            .collect();
        // Inverse-variance weighted total: a total over k cells has variance k·σ².
        let (mut weighted, mut weights) = (0.0, 0.0);
        for m in one_way.iter().chain(pairs) {
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
        let inverse = |variance: f64| {
            if variance > 0.0 {
                1.0 / variance
            } else {
                1e300
            }
        };
        let mut compressed: Vec<Vec<f64>> = Vec::with_capacity(columns.len());
        let mut shares: Vec<Vec<f64>> = Vec::with_capacity(columns.len());
        for c in 0..columns.len() {
            let (mut sum, mut weight) = (vec![0.0; sizes[c]], vec![0.0; sizes[c]]);
            // The column's own 1-way, summed over each group (k levels: variance k·σ²).
            if let Some(m) = one_way.get(c) {
                let mut folded = vec![0.0; sizes[c]];
                let mut cells = vec![0usize; sizes[c]];
                for (level, value) in m.counts.iter().enumerate() {
                    let g = groups[c][level] as usize;
                    folded[g] += value;
                    cells[g] += 1;
                }
                for g in 0..sizes[c] {
                    let w = inverse(m.sigma * m.sigma * cells[g] as f64);
                    sum[g] += w * folded[g];
                    weight[g] += w;
                }
            }
            // The margin of each 2-way that contains it (a sum over the other column).
            for m in pairs {
                let Some(position) = m.attrs.iter().position(|a| *a == c) else {
                    continue;
                };
                let other = sizes[m.attrs[1 - position]];
                let w = inverse(m.sigma * m.sigma * other as f64);
                for (g, v) in margin(m, &sizes, position).into_iter().enumerate() {
                    sum[g] += w * v;
                    weight[g] += w;
                }
            }
            let averaged: Vec<f64> = sum
                .iter()
                .zip(&weight)
                .map(|(s, w)| if *w > 0.0 { s / w } else { 0.0 })
                .collect();
            compressed.push(normalised_nonneg(&averaged));
            // Within a merged group, levels share its mass as their noisy counts do
            // (uniformly when those are all below zero).
            let noisy = one_way.get(c).map(|m| m.counts.as_slice()).unwrap_or(&[]);
            let mut group_sum = vec![0.0; sizes[c]];
            let mut group_cells = vec![0usize; sizes[c]];
            for (level, g) in groups[c].iter().enumerate() {
                let g = *g as usize;
                group_sum[g] += noisy.get(level).map_or(0.0, |v| v.max(0.0));
                group_cells[g] += 1;
            }
            shares.push(
                (0..levels[c])
                    .map(|level| {
                        let g = groups[c][level] as usize;
                        if group_cells[g] == 1 {
                            1.0
                        } else if group_sum[g] > 0.0 {
                            noisy.get(level).map_or(0.0, |v| v.max(0.0)) / group_sum[g]
                        } else {
                            1.0 / group_cells[g] as f64
                        }
                    })
                    .collect(),
            );
        }
        let one_way = (0..columns.len())
            .map(|c| {
                (0..levels[c])
                    .map(|l| compressed[c][groups[c][l] as usize] * shares[c][l])
                    .collect()
            })
            .collect();
        Model {
            levels,
            sizes,
            groups,
            shares,
            total,
            compressed,
            one_way,
            edges: Vec::new(),
        }
    }

    /// The full model: consistent 1-ways and the raked tree marginals.
    pub fn from_measurements(m: &Measurements) -> Model {
        let mut all_pairs: Vec<Marginal> = m.label_pairs.clone();
        all_pairs.extend(m.two_way.iter().cloned());
        let mut model = Model::one_way_only(&m.columns, &m.groups, &m.one_way, &all_pairs);
        for measured in &m.two_way {
            let (a, b) = (measured.attrs[0], measured.attrs[1]);
            let (ra, rb) = (model.sizes[a], model.sizes[b]);
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
            rake(&mut joint, &model.compressed[a], &model.compressed[b]);
            let full = model.expand(a, b, &joint);
            model.edges.push(((a, b), full));
        }
        model
    }

    /// A joint over the compressed domains of `(a, b)` spread over every level by the
    /// levels' shares of their groups (so its margins are the full 1-ways).
    fn expand(&self, a: usize, b: usize, joint: &[f64]) -> Vec<f64> {
        let (la, lb, rb) = (self.levels[a], self.levels[b], self.sizes[b]);
        let mut full = Vec::with_capacity(la * lb);
        for i in 0..la {
            let (gi, si) = (self.groups[a][i] as usize, self.shares[a][i]);
            for j in 0..lb {
                let (gj, sj) = (self.groups[b][j] as usize, self.shares[b][j]);
                full.push(joint[gi * rb + gj] * si * sj);
            }
        }
        full
    }

    /// Codes over every level mapped to the compressed domains.
    pub fn compress(&self, mut codes: Vec<Vec<u32>>) -> Vec<Vec<u32>> {
        compress_codes(&mut codes, &self.groups);
        codes
    }

    /// Levels of each column after compression.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// Counts of the pair `(a, b)` over the compressed domains if the two columns were
    /// independent.
    pub fn independent(&self, a: usize, b: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.sizes[a] * self.sizes[b]);
        for pa in &self.compressed[a] {
            for pb in &self.compressed[b] {
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
        // Randomized rounding, column by column (as Private-PGM's `synthetic_data`): the
        // root's `rows` get its 1-way distribution's counts rounded to whole rows, and the
        // rows sharing a parent level get the child's conditional counts, rounded, in a
        // random order. Unlike i.i.d. draws, this adds almost no sampling error to the
        // model's marginals (at most one row per cell), and it is a few array passes.
        let mut codes = vec![Vec::new(); n];
        for &c in &order {
            let k = self.levels[c];
            codes[c] = match parent[c] {
                None => rounded_levels(&self.one_way[c], rows, rng),
                Some(p) => {
                    let joint = self.edge_joint(p, c).ok_or_else(|| {
                        SynthError::Inconsistent("a tree edge has no marginal".into())
                    })?;
                    // The rows of each parent level, in row order.
                    let mut groups: Vec<Vec<u32>> = vec![Vec::new(); self.levels[p]];
                    for (row, level) in codes[p].iter().enumerate() {
                        groups[*level as usize].push(row as u32);
                    }
                    let mut column = vec![0u32; rows];
                    for (level, group) in groups.iter().enumerate() {
                        if group.is_empty() {
                            continue;
                        }
                        let row = &joint[level * k..(level + 1) * k];
                        let weights = if row.iter().sum::<f64>() > 0.0 {
                            row
                        } else {
                            &self.one_way[c]
                        };
                        let drawn = rounded_levels(weights, group.len(), rng);
                        for (r, v) in group.iter().zip(drawn) {
                            column[*r as usize] = v;
                        }
                    }
                    column
                }
            };
        }
        Ok(codes)
    }
}

/// `rows` levels whose counts are `rows · weights` (normalised) rounded to whole rows at
/// random (each count is the floor or the ceiling of its share, the ceilings drawn by the
/// fractional parts without replacement), in a random order.
fn rounded_levels(weights: &[f64], rows: usize, rng: &mut ChaCha8Rng) -> Vec<u32> {
    let total: f64 = weights.iter().map(|w| w.max(0.0)).sum();
    let uniform = 1.0 / weights.len().max(1) as f64;
    let shares: Vec<f64> = weights
        .iter()
        .map(|w| {
            if total > 0.0 {
                w.max(0.0) / total * rows as f64
            } else {
                uniform * rows as f64
            }
        })
        .collect();
    let mut counts: Vec<usize> = shares.iter().map(|s| s.floor() as usize).collect();
    let mut fractions: Vec<f64> = shares.iter().map(|s| s - s.floor()).collect();
    let mut left = rows.saturating_sub(counts.iter().sum());
    while left > 0 {
        let sum: f64 = fractions.iter().sum();
        let index = if sum > 0.0 {
            let target = rng.r#gen::<f64>() * sum;
            let mut acc = 0.0;
            fractions
                .iter()
                .position(|f| {
                    acc += f;
                    acc > target && *f > 0.0
                })
                .unwrap_or_else(|| fractions.iter().rposition(|f| *f > 0.0).unwrap_or(0))
        } else {
            rng.gen_range(0..counts.len().max(1))
        };
        if let Some(count) = counts.get_mut(index) {
            *count += 1;
        }
        if let Some(fraction) = fractions.get_mut(index) {
            *fraction = 0.0;
        }
        left -= 1;
    }
    let mut levels = Vec::with_capacity(rows);
    for (level, count) in counts.iter().enumerate() {
        levels.extend(std::iter::repeat_n(level as u32, *count));
    }
    levels.truncate(rows);
    levels.shuffle(rng);
    levels
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
        let model = Model::one_way_only(&columns, &[], &one_way, std::slice::from_ref(&edge));
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
        let mut model = Model::one_way_only(&columns, &[], &one_way, &[]);
        // b copies a.
        model.edges.push(((0, 1), vec![0.5, 0.0, 0.0, 0.5]));
        let codes = model.sample_levels(0, 1000, &mut rng(3)).unwrap();
        assert_eq!(codes[0], codes[1]);
        let ones = codes[0].iter().filter(|c| **c == 1).count();
        assert!((400..600).contains(&ones), "{ones}");
        assert_eq!(codes, model.sample_levels(0, 1000, &mut rng(3)).unwrap());
    }
}
