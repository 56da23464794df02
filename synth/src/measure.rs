//! The three MST phases: measure 1-way marginals (and the label's 2-way marginals), select
//! a maximum spanning tree with the exponential mechanism, measure the tree's 2-way
//! marginals. Every random draw is OpenDP's; this module only counts and calibrates.

use opendp::combinators::{make_fix_delta, make_zCDP_to_approxDP};
use opendp::core::{Function, Measurement, PrivacyMap};
use opendp::domains::{AtomDomain, VectorDomain};
use opendp::measurements::{make_gaussian, make_noisy_max};
use opendp::measures::ZeroConcentratedDivergence;
use opendp::metrics::{AbsoluteDistance, L2Distance, LInfDistance};
use opendp::utilities::binary_search;
use serde::{Deserialize, Serialize};

use crate::bins::{ColumnBins, column_bins};
use crate::model::Model;
use crate::{Adjacency, Measurements, SynthConfig, SynthError};
use medarena_datasets_spec::{Manifest, RecordBatch};

/// A noisy marginal: counts over the levels of one or two columns (row-major: the first
/// column's level times the second's level count plus the second's level).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marginal {
    /// Indices into [`Measurements::columns`]: one for a 1-way, two for a 2-way marginal.
    pub attrs: Vec<usize>,
    /// The Gaussian noise scale σ on each count.
    pub sigma: f64,
    /// The noisy counts (may be negative: noise is added to exact counts).
    pub counts: Vec<f64>,
}

/// Which MST phase a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// 1-way marginals and the label's 2-way marginals (Gaussian).
    Marginals,
    /// Choosing the tree's edges (exponential mechanism).
    Selection,
    /// The tree's 2-way marginals (Gaussian).
    Tree,
}

/// One OpenDP measurement the fit made, with the ρ its privacy map states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The phase.
    pub phase: Phase,
    /// What was measured, e.g. `1-way age_band`, `2-way age_band × sex`, `select edge 3`.
    pub what: String,
    /// `gaussian` or `exponential`.
    pub mechanism: String,
    /// The OpenDP noise scale (σ for the Gaussian, the Gumbel scale for the exponential
    /// mechanism).
    pub scale: f64,
    /// The input distance the map was evaluated at (the query's sensitivity).
    pub sensitivity: f64,
    /// ρ (zCDP) from OpenDP's privacy map at that sensitivity.
    pub rho: f64,
}

/// The privacy a fit spent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivacySpent {
    /// The ρ the caller allowed.
    pub rho_budget: f64,
    /// The ρ spent: the sum of the steps' ρ (zCDP composes additively).
    pub rho: f64,
    /// The δ the ε is stated for.
    pub delta: f64,
    /// ε at that δ, by OpenDP's zCDP → (ε, δ) conversion of the spent ρ.
    pub epsilon: f64,
}

type Gaussian = Measurement<
    VectorDomain<AtomDomain<f64>>,
    L2Distance<f64>,
    ZeroConcentratedDivergence,
    Vec<f64>,
>;
type Selector = Measurement<
    VectorDomain<AtomDomain<f64>>,
    LInfDistance<f64>,
    ZeroConcentratedDivergence,
    usize,
>;

/// OpenDP's Gaussian measurement on a vector of counts.
pub fn gaussian(sigma: f64) -> Result<Gaussian, SynthError> {
    Ok(make_gaussian(
        VectorDomain::new(AtomDomain::<f64>::new_non_nan()),
        L2Distance::<f64>::default(),
        sigma,
        None,
    )?)
}

/// OpenDP's exponential mechanism (report noisy max with Gumbel noise, zCDP map) on a
/// vector of scores.
pub fn selector(scale: f64) -> Result<Selector, SynthError> {
    Ok(make_noisy_max(
        VectorDomain::new(AtomDomain::<f64>::new_non_nan()),
        LInfDistance::<f64>::default(),
        ZeroConcentratedDivergence,
        scale,
        false,
    )?)
}

/// The smallest scale (by OpenDP's binary search) whose map at `sensitivity` is within
/// `rho`, starting from the analytic value `guess`.
fn calibrate(
    rho: f64,
    guess: f64,
    map: impl Fn(f64) -> Result<f64, SynthError>,
) -> Result<f64, SynthError> {
    let fits = |scale: &f64| map(*scale).is_ok_and(|spent| spent <= rho);
    if fits(&guess) {
        return Ok(guess);
    }
    // OpenDP rounds towards privacy; let its search find the smallest scale that fits.
    Ok(binary_search(fits, (guess, guess * 4.0))?)
}

/// ε at `delta` of a release whose zCDP cost is `rho`, by OpenDP's conversion (applied to a
/// measurement whose map is that ρ).
pub fn epsilon_of_rho(rho: f64, delta: f64) -> Result<f64, SynthError> {
    if rho == 0.0 {
        return Ok(0.0);
    }
    let constant = Measurement::new(
        AtomDomain::<f64>::new_non_nan(),
        AbsoluteDistance::<f64>::default(),
        ZeroConcentratedDivergence,
        Function::new(|_: &f64| 0.0),
        PrivacyMap::new(move |_: &f64| rho),
    )?;
    let approx = make_fix_delta(&make_zCDP_to_approxDP(constant)?, delta)?;
    Ok(approx.map(&1.0)?.0)
}

/// Exact counts of the joint levels of `attrs` (row-major), each column's codes ranging
/// over `sizes[column]` levels. One pass over plain integer codes, integer counters.
#[allow(clippy::needless_range_loop)] // one row across several columns
pub(crate) fn count(codes: &[Vec<u32>], sizes: &[usize], attrs: &[usize]) -> Vec<f64> {
    let size: usize = attrs.iter().map(|a| sizes[*a]).product();
    let mut counts = vec![0u64; size];
    match attrs {
        [a] => codes[*a].iter().for_each(|x| counts[*x as usize] += 1),
        [a, b] => {
            let width = sizes[*b];
            for (x, y) in codes[*a].iter().zip(&codes[*b]) {
                counts[*x as usize * width + *y as usize] += 1;
            }
        }
        _ => {
            let rows = attrs.first().map_or(0, |a| codes[*a].len());
            for row in 0..rows {
                let index = attrs.iter().fold(0usize, |index, a| {
                    index * sizes[*a] + codes[*a][row] as usize
                });
                counts[index] += 1;
            }
        }
    }
    counts.into_iter().map(|c| c as f64).collect()
}

/// MST's domain compression, a post-processing of the noisy 1-way marginals: the levels
/// whose noisy count is below 3σ (indistinguishable from empty) are merged into one, so
/// that the 2-way marginals measured afterwards spread their noise over few cells. For each
/// column, `groups[level]` is the level's index in the compressed domain (the kept levels in
/// order, then the merged one); empty when fewer than two levels would merge, or none is
/// kept.
pub(crate) fn compression(one_way: &[Marginal]) -> Vec<Vec<u32>> {
    one_way
        .iter()
        .map(|m| {
            let kept: Vec<bool> = m.counts.iter().map(|c| *c >= 3.0 * m.sigma).collect();
            let kept_count = kept.iter().filter(|k| **k).count();
            if kept_count == 0 || kept.len() - kept_count < 2 {
                return Vec::new();
            }
            let mut next = 0u32;
            kept.iter()
                .map(|k| {
                    if *k {
                        next += 1;
                        next - 1
                    } else {
                        kept_count as u32
                    }
                })
                .collect()
        })
        .collect()
}

/// The number of levels of each column after compression.
pub(crate) fn compressed_sizes(columns: &[ColumnBins], groups: &[Vec<u32>]) -> Vec<usize> {
    columns
        .iter()
        .enumerate()
        .map(|(c, bins)| match groups.get(c) {
            Some(g) if !g.is_empty() => g.iter().max().map_or(0, |m| *m as usize + 1),
            _ => bins.levels(),
        })
        .collect()
}

/// Codes in the compressed domains (a column without compression is copied).
pub(crate) fn compress_codes(codes: &mut [Vec<u32>], groups: &[Vec<u32>]) {
    for (column, group) in codes.iter_mut().zip(groups) {
        if !group.is_empty() {
            column.iter_mut().for_each(|x| *x = group[*x as usize]);
        }
    }
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        self.0[ra] = rb;
        true
    }
}

/// Measures a table: see [`crate::fit`].
pub(crate) fn fit(
    manifest: &Manifest,
    batch: &RecordBatch,
    rho: f64,
    config: &SynthConfig,
) -> Result<Measurements, SynthError> {
    if !(rho.is_finite() && rho > 0.0) {
        return Err(SynthError::InvalidParameter(format!(
            "ρ must be a positive finite number, got {rho}"
        )));
    }
    if !(config.delta > 0.0 && config.delta < 1.0) {
        return Err(SynthError::InvalidParameter(format!(
            "δ must lie in (0, 1), got {}",
            config.delta
        )));
    }
    let columns = column_bins(manifest, config)?;
    if columns.is_empty() {
        return Err(SynthError::InvalidParameter(
            "the manifest declares no column to model".into(),
        ));
    }
    let schema = batch.schema();
    let mut codes: Vec<Vec<u32>> = columns
        .iter()
        .map(|c| {
            let index = schema
                .index_of(&c.name)
                .map_err(|_| SynthError::MissingColumn(c.name.clone()))?;
            c.encode(batch.column(index))
        })
        .collect::<Result<_, _>>()?;
    let n = columns.len();
    let root = manifest
        .stratification_label()
        .and_then(|label| columns.iter().position(|c| c.name == label.name))
        .unwrap_or(0);
    let label = manifest
        .stratification_label()
        .and_then(|label| columns.iter().position(|c| c.name == label.name));

    // One row changes one cell of each histogram by 1 (add/remove), or moves one count
    // between two cells (substitution).
    let (l2, score_sensitivity) = match config.adjacency {
        Adjacency::AddRemove => (1.0, 1.0),
        Adjacency::Substitute => (std::f64::consts::SQRT_2, 2.0),
    };
    // Each step is calibrated to a share a hair below its exact part of ρ, so that the
    // floating-point sum of the steps' maps never exceeds ρ itself.
    let usable = rho * (1.0 - 1e-9);
    let (rho1, rho2, rho3) = if n == 1 {
        (usable, 0.0, 0.0)
    } else {
        (usable / 3.0, usable / 3.0, usable / 3.0)
    };
    let mut steps = Vec::new();

    // Phase 1: every 1-way marginal, then the label's 2-way marginal with every other
    // column (on the compressed domains the 1-ways determine); one σ for all of them.
    let pairs_of_label = label.map_or(0, |_| n - 1);
    let per = rho1 / (n + pairs_of_label) as f64;
    let sigma1 = calibrate(per, l2 / (2.0 * per).sqrt(), |s| Ok(gaussian(s)?.map(&l2)?))?;
    let measurement = gaussian(sigma1)?;
    let levels: Vec<usize> = columns.iter().map(ColumnBins::levels).collect();
    let mut one_way = Vec::with_capacity(n);
    let mut label_pairs = Vec::new();
    let measure_one = |codes: &[Vec<u32>],
                       sizes: &[usize],
                       attrs: Vec<usize>,
                       steps: &mut Vec<Step>|
     -> Result<Marginal, SynthError> {
        let exact = count(codes, sizes, &attrs);
        let noisy = measurement.invoke(&exact)?;
        steps.push(Step {
            phase: Phase::Marginals,
            what: describe(&columns, &attrs),
            mechanism: "gaussian".into(),
            scale: sigma1,
            sensitivity: l2,
            rho: measurement.map(&l2)?,
        });
        Ok(Marginal {
            attrs,
            sigma: sigma1,
            counts: noisy,
        })
    };
    for c in 0..n {
        one_way.push(measure_one(&codes, &levels, vec![c], &mut steps)?);
    }
    // Everything after the 1-ways works on the compressed domains.
    let groups = compression(&one_way);
    compress_codes(&mut codes, &groups);
    let sizes = compressed_sizes(&columns, &groups);
    if let Some(label) = label {
        for c in (0..n).filter(|c| *c != label) {
            label_pairs.push(measure_one(&codes, &sizes, vec![label, c], &mut steps)?);
        }
    }

    // Phase 2: Kruskal's algorithm, each edge an exponential-mechanism draw among the pairs
    // that join two components, scored by the L1 error of the independence estimate built
    // from the noisy 1-way marginals (a public post-processing) against the exact 2-way,
    // less the error the pair's own measurement is expected to carry (as MST does).
    let mut tree: Vec<(usize, usize)> = Vec::new();
    // The tree's noise scale is fixed in advance (ρ/3 over n − 1 edges): the selection
    // discounts each pair by the error measuring it would add anyway.
    let sigma3 = if n > 1 {
        let per = rho3 / (n - 1) as f64;
        Some(calibrate(per, l2 / (2.0 * per).sqrt(), |s| {
            Ok(gaussian(s)?.map(&l2)?)
        })?)
    } else {
        None
    };
    if let Some(sigma3) = sigma3 {
        let estimate = Model::one_way_only(&columns, &groups, &one_way, &label_pairs);
        let pairs: Vec<(usize, usize)> = (0..n)
            .flat_map(|a| ((a + 1)..n).map(move |b| (a, b)))
            .collect();
        let scores: Vec<f64> = pairs
            .iter()
            .map(|&(a, b)| {
                let exact = count(&codes, &sizes, &[a, b]);
                let guess = estimate.independent(a, b);
                let error: f64 = exact.iter().zip(&guess).map(|(x, g)| (x - g).abs()).sum();
                // MST's bias correction: E|N(0, σ²)| = σ·√(2/π) per cell of the measurement.
                error - (2.0 / std::f64::consts::PI).sqrt() * sigma3 * exact.len() as f64
            })
            .collect();
        let per = rho2 / (n - 1) as f64;
        // (2Δ/scale)²/8 = ρ for a non-monotonic score.
        let guess = score_sensitivity / (2.0 * per).sqrt();
        let scale = calibrate(per, guess, |s| Ok(selector(s)?.map(&score_sensitivity)?))?;
        let select = selector(scale)?;
        let mut components = UnionFind((0..n).collect());
        for round in 0..n - 1 {
            let candidates: Vec<usize> = (0..pairs.len())
                .filter(|&i| components.find(pairs[i].0) != components.find(pairs[i].1))
                .collect();
            let candidate_scores: Vec<f64> = candidates.iter().map(|&i| scores[i]).collect();
            let chosen = select.invoke(&candidate_scores)?;
            let spent = select.map(&score_sensitivity)?;
            let (a, b) = candidates
                .get(chosen)
                .map(|&i| pairs[i])
                .ok_or_else(|| SynthError::InvalidParameter("no candidate edge left".into()))?;
            components.union(a, b);
            tree.push((a, b));
            steps.push(Step {
                phase: Phase::Selection,
                what: format!("select edge {} of {}", round + 1, n - 1),
                mechanism: "exponential".into(),
                scale,
                sensitivity: score_sensitivity,
                rho: spent,
            });
        }
    }

    // Phase 3: the tree's 2-way marginals.
    let mut two_way = Vec::new();
    if let Some(sigma3) = sigma3 {
        let measurement = gaussian(sigma3)?;
        for &(a, b) in &tree {
            let attrs = vec![a, b];
            let exact = count(&codes, &sizes, &attrs);
            let noisy = measurement.invoke(&exact)?;
            steps.push(Step {
                phase: Phase::Tree,
                what: describe(&columns, &attrs),
                mechanism: "gaussian".into(),
                scale: sigma3,
                sensitivity: l2,
                rho: measurement.map(&l2)?,
            });
            two_way.push(Marginal {
                attrs,
                sigma: sigma3,
                counts: noisy,
            });
        }
    }

    let spent: f64 = steps.iter().map(|s| s.rho).sum();
    if spent > rho {
        return Err(SynthError::InvalidParameter(format!(
            "the measurements would spend ρ = {spent}, above the budget {rho}"
        )));
    }
    let privacy = PrivacySpent {
        rho_budget: rho,
        rho: spent,
        delta: config.delta,
        epsilon: epsilon_of_rho(spent, config.delta)?,
    };
    Ok(Measurements {
        config: config.clone(),
        columns,
        root,
        one_way,
        groups,
        label_pairs,
        tree,
        two_way,
        steps,
        privacy,
    })
}

fn describe(columns: &[ColumnBins], attrs: &[usize]) -> String {
    let names: Vec<&str> = attrs.iter().map(|a| columns[*a].name.as_str()).collect();
    format!("{}-way {}", attrs.len(), names.join(" × "))
}
