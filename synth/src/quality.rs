//! How far a synthetic table is from the measurements: total variation distance between
//! its binned marginals and the measured ones (after the consistency post-processing), for
//! every column and every measured pair. Comparing against the measurements, never the
//! data, keeps the report free to publish.

use medarena_datasets_spec::{Manifest, RecordBatch};
use serde::{Deserialize, Serialize};

use crate::measure::count;
use crate::model::Model;
use crate::sample::check;
use crate::{Measurements, SynthError};

/// The TVD of one measured pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairQuality {
    /// First column.
    pub a: String,
    /// Second column.
    pub b: String,
    /// Whether the pair is a tree edge (else a label pair off the tree).
    pub in_tree: bool,
    /// Total variation distance, in [0, 1].
    pub tvd: f64,
}

/// Per-column and per-pair total variation distances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// `(column, TVD)` for every modelled column.
    pub columns: Vec<(String, f64)>,
    /// Every tree edge and label pair.
    pub pairs: Vec<PairQuality>,
}

impl Quality {
    /// The largest per-column TVD.
    pub fn max_column(&self) -> f64 {
        self.columns.iter().map(|c| c.1).fold(0.0, f64::max)
    }

    /// The largest TVD over the tree's edges.
    pub fn max_tree_pair(&self) -> f64 {
        self.pairs
            .iter()
            .filter(|p| p.in_tree)
            .map(|p| p.tvd)
            .fold(0.0, f64::max)
    }
}

fn tvd(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq) = (p.iter().sum::<f64>(), q.iter().sum::<f64>());
    if sp <= 0.0 || sq <= 0.0 {
        return if sp <= 0.0 && sq <= 0.0 { 0.0 } else { 1.0 };
    }
    0.5 * p
        .iter()
        .zip(q)
        .map(|(a, b)| (a / sp - b / sq).abs())
        .sum::<f64>()
}

/// Compares a synthetic table (typed form of `manifest`) with the measurements.
pub fn quality(
    measurements: &Measurements,
    manifest: &Manifest,
    synthetic: &RecordBatch,
) -> Result<Quality, SynthError> {
    check(measurements, manifest)?;
    let schema = synthetic.schema();
    let codes: Vec<Vec<u32>> = measurements
        .columns
        .iter()
        .map(|c| {
            let index = schema
                .index_of(&c.name)
                .map_err(|_| SynthError::MissingColumn(c.name.clone()))?;
            c.encode(synthetic.column(index))
        })
        .collect::<Result<_, _>>()?;
    let model = Model::from_measurements(measurements);
    let columns = measurements.columns.as_slice();
    let levels: Vec<usize> = columns.iter().map(|c| c.levels()).collect();
    let column_tvd = columns
        .iter()
        .enumerate()
        .map(|(c, bins)| {
            (
                bins.name.clone(),
                tvd(&count(&codes, &levels, &[c]), &model.one_way[c]),
            )
        })
        .collect();
    let mut pairs = Vec::new();
    for &(a, b) in &measurements.tree {
        let measured = model
            .edge_joint(a, b)
            .ok_or_else(|| SynthError::Inconsistent("a tree edge has no marginal".into()))?;
        pairs.push(PairQuality {
            a: columns[a].name.clone(),
            b: columns[b].name.clone(),
            in_tree: true,
            tvd: tvd(&count(&codes, &levels, &[a, b]), &measured),
        });
    }
    // Label pairs were measured over the compressed domains.
    let compressed = model.compress(codes);
    for pair in &measurements.label_pairs {
        let (a, b) = (pair.attrs[0], pair.attrs[1]);
        if measurements
            .tree
            .iter()
            .any(|e| *e == (a, b) || *e == (b, a))
        {
            continue;
        }
        let clipped: Vec<f64> = pair.counts.iter().map(|v| v.max(0.0)).collect();
        pairs.push(PairQuality {
            a: columns[a].name.clone(),
            b: columns[b].name.clone(),
            in_tree: false,
            tvd: tvd(&count(&compressed, model.sizes(), &[a, b]), &clipped),
        });
    }
    Ok(Quality {
        columns: column_tvd,
        pairs,
    })
}
