//! Differentially private synthetic data for medarena: MST, the winner of the NIST 2018
//! Differential Privacy Synthetic Data Challenge.
//!
//! > R. McKenna, G. Miklau, D. Sheldon. *Winning the NIST Contest: A scalable and general
//! > approach to differentially private synthetic data.* Journal of Privacy and
//! > Confidentiality 11(3), 2021. <https://arxiv.org/abs/2108.04978>
//!
//! # The algorithm
//! 1. **Bins from declarations** ([`bins`]): each modelled column becomes a few levels
//!    taken from the manifest alone (equal-width bins over declared bounds for numbers,
//!    integers and dates, declared categories, booleans, plus a missing level for columns
//!    that may be empty). Bins computed from the data would leak it outside the accounting.
//! 2. **Measure** ([`fit`]), splitting the zCDP budget ρ in three equal parts as MST does:
//!    - ρ/3: every 1-way marginal and the label's 2-way marginal with every other column,
//!      each count vector through OpenDP's Gaussian mechanism (the label pairs are an
//!      addition to MST for prediction tasks: they sharpen every column's 1-way marginal,
//!      and a label edge the tree selects is measured twice and averaged; MST proper spends
//!      this third on the 1-ways alone). Between the two, MST's domain compression
//!      ([`Measurements::groups`], post-processing of the noisy 1-ways): the levels whose
//!      noisy count is below 3σ merge into one, and every later 2-way marginal counts over
//!      these compressed domains, so its noise is spread over few cells;
//!    - ρ/3: a maximum spanning tree chosen by Kruskal's algorithm in which each of the
//!      `n − 1` edges is an exponential-mechanism draw (OpenDP's `make_noisy_max`, Gumbel
//!      noise, zCDP map) among the pairs joining two components, scored by the L1 error
//!      between the exact 2-way marginal and its estimate under independence from the
//!      noisy 1-way marginals, less the error the pair's own measurement would carry
//!      (`σ·√(2/π)` per cell, MST's bias correction): the pairs the 1-ways explain worst
//!      are the ones to measure;
//!    - ρ/3: the tree's 2-way marginals, through OpenDP's Gaussian mechanism.
//!
//!    Every step's ρ is read from OpenDP's privacy map ([`Step::rho`]); zCDP composes by
//!    addition, so the total is their sum, and ε(δ) is OpenDP's zCDP → (ε, δ) conversion
//!    of it ([`PrivacySpent`]). Neighbouring tables differ by one added or removed row by
//!    default ([`Adjacency`]): a count vector then has L2 sensitivity 1 and an edge score
//!    sensitivity 1 (substitution: √2 and 2).
//! 3. **Make consistent** (see `model.rs`): inverse-variance averaging of every estimate
//!    of each 1-way marginal, clipping of negatives, normalisation, and iterative
//!    proportional fitting of the tree's 2-way marginals to those 1-ways — a simple
//!    stand-in for MST's Private-PGM, which fits one graphical model to all measurements.
//! 4. **Sample** ([`sample`]): the root (the label, else the first column) from its 1-way
//!    marginal, each other column from its conditional given its parent in the tree, by
//!    randomized rounding as Private-PGM does (each cell gets the floor or the ceiling of
//!    its expected rows, in random order: almost no sampling error on top of the model's);
//!    a merged level's mass goes back to its levels in proportion to their noisy counts;
//!    levels back to values (uniform within a numeric or date bin, the category, null for
//!    missing); row ids are fresh pseudonyms (`synth-0000001`) and excluded columns empty.
//!
//! # What is private, what is not
//! Private (ρ-zCDP for the whole of [`Measurements`]): the noisy counts and the tree.
//! Public inputs, not protected and not needing to be: the manifest (bounds, categories,
//! roles), the configuration, ρ and δ. Everything downstream of [`Measurements`] — the
//! consistent model, every synthetic row, [`quality`] against the measurements — is
//! post-processing and costs nothing more. Not private: [`fit`]'s errors (a column of the
//! wrong type, a null in a required column) depend on the data; fit only validated tables.
//!
//! # Reproducibility
//! OpenDP's noise comes from OpenSSL's generator and cannot be seeded: a measurement is a
//! one-off release. Sampling from it is seeded (ChaCha8), so a release stores the
//! [`Measurements`] (serde; store floats exactly, e.g. serde_json with `float_roundtrip`)
//! and regenerates the same rows from them and a seed.
//!
//! ```
//! use medarena_datasets_spec::Manifest;
//! use medarena_datasets_spec::example::{HEART_MANIFEST, heart_site};
//! use medarena_synth::{SynthConfig, fit, quality, sample};
//!
//! let manifest = Manifest::from_str(HEART_MANIFEST).unwrap();
//! let (real, _) = heart_site(&manifest, "hospital-a", "A", 600, 1);
//! // The only access to the rows: ρ = 1 zCDP in all.
//! let release = fit(&manifest, &real, 1.0, &SynthConfig::default()).unwrap();
//! assert!(release.privacy.rho <= 1.0);
//! println!("ε = {:.2} at δ = {}", release.privacy.epsilon, release.privacy.delta);
//! // Free post-processing from here on.
//! let rows = sample(&release, &manifest, 1000, 42).unwrap();
//! assert_eq!(rows, sample(&release, &manifest, 1000, 42).unwrap());
//! let report = quality(&release, &manifest, &rows).unwrap();
//! assert!(report.max_column() < 0.2);
//! ```

pub mod bins;
mod measure;
mod model;
mod quality;
mod sample;

use medarena_datasets_spec::{Manifest, RecordBatch};
use serde::{Deserialize, Serialize};

pub use bins::{BinKind, ColumnBins, column_bins};
pub use measure::{Marginal, Phase, PrivacySpent, Step, epsilon_of_rho, gaussian, selector};
pub use quality::{PairQuality, Quality, quality};

/// What "one patient's data changed" means for the accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Adjacency {
    /// One row added or removed (MST's setting): count vectors have L2 sensitivity 1.
    #[default]
    AddRemove,
    /// One row replaced: L2 sensitivity √2, edge-score sensitivity 2.
    Substitute,
}

/// Settings of a fit. All public: they are part of the release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthConfig {
    /// Bins per numeric or date column (fewer when the declared range has fewer integers,
    /// months, ...).
    pub bins: usize,
    /// The δ at which ε is reported.
    pub delta: f64,
    /// The neighbouring relation.
    pub adjacency: Adjacency,
    /// The contributing sites, for a site column whose manifest declares no categories
    /// (which hospitals took part is public; the manifest's categories win when declared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<String>>,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            bins: 16,
            delta: 1e-6,
            adjacency: Adjacency::AddRemove,
            sites: None,
        }
    }
}

/// Why a fit or a sample failed.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A parameter is out of range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The manifest does not declare enough to bin a column.
    #[error("column `{column}` cannot be binned from the manifest: {reason}")]
    Unbinnable {
        /// The column.
        column: String,
        /// What is missing.
        reason: String,
    },
    /// A modelled column is absent from the table.
    #[error("column `{0}` is missing from the table")]
    MissingColumn(String),
    /// A column is not in the typed form the manifest declares.
    #[error("column `{column}`: {reason}")]
    BadColumn {
        /// The column.
        column: String,
        /// What is wrong (never a value).
        reason: String,
    },
    /// The measurements do not fit the manifest or are malformed.
    #[error("inconsistent measurements: {0}")]
    Inconsistent(String),
    /// OpenDP refused a construction or a release.
    #[error("OpenDP: {0}")]
    OpenDp(String),
    /// Arrow refused the assembled batch.
    #[error("cannot assemble the synthetic table: {0}")]
    Arrow(String),
}

impl From<opendp::error::Error> for SynthError {
    fn from(error: opendp::error::Error) -> Self {
        SynthError::OpenDp(error.to_string())
    }
}

/// The private release: the noisy measurements, the tree and the privacy spent.
/// Everything else (the model, synthetic rows) is regenerated from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurements {
    /// The settings of the fit.
    pub config: SynthConfig,
    /// The modelled columns and their levels, in manifest order.
    pub columns: Vec<ColumnBins>,
    /// The column sampling starts from (the label when there is one).
    pub root: usize,
    /// Noisy 1-way marginals, one per column, in column order.
    pub one_way: Vec<Marginal>,
    /// MST's domain compression, read off the noisy 1-ways (post-processing, checked on
    /// load): for each column, the compressed index of each level (levels whose noisy count
    /// is below 3σ share the last index), or empty when the column is not compressed. The
    /// 2-way marginals below count over these compressed domains.
    pub groups: Vec<Vec<u32>>,
    /// Noisy 2-way marginals of the label with every other column (label first).
    pub label_pairs: Vec<Marginal>,
    /// The spanning tree's edges in the order they were selected.
    pub tree: Vec<(usize, usize)>,
    /// Noisy 2-way marginals of the tree's edges, in [`Measurements::tree`] order.
    pub two_way: Vec<Marginal>,
    /// Every OpenDP measurement made, with its ρ.
    pub steps: Vec<Step>,
    /// The total.
    pub privacy: PrivacySpent,
}

/// Measures a table in the typed form of `manifest` (see [`medarena_datasets_spec::conform`])
/// with total zCDP budget `rho`. The only access to the data; its output is ρ-zCDP.
pub fn fit(
    manifest: &Manifest,
    batch: &RecordBatch,
    rho: f64,
    config: &SynthConfig,
) -> Result<Measurements, SynthError> {
    measure::fit(manifest, batch, rho, config)
}

/// The largest ρ whose ε at `delta` (OpenDP's zCDP → (ε, δ) conversion, as reported in
/// [`PrivacySpent`]) is at most `epsilon`: how a budget stated in ε becomes the ρ given to
/// [`fit`]. Bisection, since the conversion is increasing in ρ and OpenDP offers no
/// inverse.
pub fn rho_for_epsilon(epsilon: f64, delta: f64) -> Result<f64, SynthError> {
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(SynthError::InvalidParameter(format!(
            "ε must be a positive number, got {epsilon}"
        )));
    }
    if !(delta > 0.0 && delta < 1.0) {
        return Err(SynthError::InvalidParameter(format!(
            "δ must lie in (0, 1), got {delta}"
        )));
    }
    // ε(ρ) ≥ ρ, so the answer lies in (0, ε].
    let (mut low, mut high) = (0.0_f64, epsilon);
    if epsilon_of_rho(high, delta)? <= epsilon {
        return Ok(high);
    }
    for _ in 0..100 {
        let middle = 0.5 * (low + high);
        if epsilon_of_rho(middle, delta)? <= epsilon {
            low = middle;
        } else {
            high = middle;
        }
        if high - low <= 1e-12 * high {
            break;
        }
    }
    Ok(low)
}

/// The sites' `(name, table)` parts united into the typed form of `manifest` (its columns
/// only, in its order): what [`fit`] reads. A declared site column absent from a site's
/// table is filled with the site's name; pass the names as [`SynthConfig::sites`] when the
/// site column declares no categories.
pub fn site_table(
    manifest: &Manifest,
    parts: &[(String, RecordBatch)],
) -> Result<RecordBatch, SynthError> {
    use medarena_datasets_spec::{arrow_schema, union_sites};
    let united = union_sites(manifest, parts).map_err(|err| SynthError::BadColumn {
        column: manifest
            .site()
            .map_or("site", |f| f.name.as_str())
            .to_owned(),
        reason: err.to_string(),
    })?;
    let schema = arrow_schema(manifest);
    let indices = schema
        .fields()
        .iter()
        .map(|field| {
            united
                .schema()
                .index_of(field.name())
                .map_err(|_| SynthError::MissingColumn(field.name().clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    united
        .project(&indices)
        .map_err(|err| SynthError::Arrow(err.to_string()))
}

/// Draws `rows` synthetic rows from the measurements, in the typed form of `manifest`
/// (which must be the manifest the measurements were fitted with). The same measurements
/// and seed give the same rows.
pub fn sample(
    measurements: &Measurements,
    manifest: &Manifest,
    rows: usize,
    seed: u64,
) -> Result<RecordBatch, SynthError> {
    sample::sample(measurements, manifest, rows, seed)
}
