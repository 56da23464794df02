//! Synthetic development data: a hospital's rows measured by `medarena-synth` (MST under
//! zCDP through OpenDP), and the table that dummy runs and downloads draw from the
//! published releases. Without a published release, the manifest's dummy generator.
//!
//! The measurement is the only step that reads real rows; it runs in the server process on
//! the hospital's request (our own code, no submission involved). Everything after it —
//! sampling, the quality report, every synthetic row a team sees — is post-processing of
//! the noisy measurements.

use std::path::Path;
use std::sync::Arc;

use medarena_datasets_spec::{
    Format, LoadOptions, Manifest, RecordBatch, dummy, load_bytes_with_manifest, union_sites,
};
use medarena_synth::{Adjacency, Measurements, SynthConfig};

use crate::executor::ContributionData;
use crate::ids::{OrgId, SyntheticReleaseId};
use crate::model::SyntheticQuality;

/// The synthesizer named on every release and ledger entry.
pub const SYNTHESIZER: &str = concat!("medarena-synth ", env!("CARGO_PKG_VERSION"), " (MST)");

/// The δ at which a release's ε is stated (and which it adds to the dataset's guarantee).
pub const SYNTHETIC_DELTA: f64 = 1e-6;

/// Synthetic rows drawn for a release's quality report.
const QUALITY_ROWS: usize = 10_000;

/// A hospital's rows, measured: the release to store.
#[derive(Debug, Clone)]
pub struct MeasuredRelease {
    /// The noisy measurements as JSON (floats exact), and their SHA-256.
    pub measurements: String,
    pub measurements_sha256: String,
    pub epsilon: f64,
    pub delta: f64,
    pub rho: f64,
    pub quality: SyntheticQuality,
}

/// Measures a hospital's validated contributions of one dataset at `epsilon` (at
/// [`SYNTHETIC_DELTA`], one row replaced: the platform's privacy unit). Errors name the
/// contribution or column; they reach only the hospital that asked (its own data).
pub fn measure(
    contributions: &[ContributionData],
    epsilon: f64,
) -> Result<MeasuredRelease, String> {
    let text = contributions
        .iter()
        .find_map(|c| c.manifest.clone())
        .ok_or("the hospital has no validated contribution with a manifest to this dataset")?;
    let manifest =
        Manifest::from_str(&text).map_err(|err| format!("the dataset manifest: {err}"))?;
    let mut parts = Vec::with_capacity(contributions.len());
    for contribution in contributions {
        let format = Format::from_extension(Path::new(&contribution.file_name))
            .unwrap_or_else(|| Format::sniff(&contribution.bytes));
        let loaded = load_bytes_with_manifest(
            &manifest,
            &contribution.bytes,
            format,
            &contribution.contribution.to_string(),
            &LoadOptions::default(),
        )
        .map_err(|err| format!("{} cannot be loaded: {err}", contribution.contribution))?;
        parts.push((site_name(contribution.hospital), loaded.batch));
    }
    let mut sites: Vec<String> = parts.iter().map(|(site, _)| site.clone()).collect();
    sites.dedup();
    let table = medarena_synth::site_table(&manifest, &parts).map_err(|err| err.to_string())?;
    let (config, rho) = platform_settings(epsilon, sites).map_err(|e| e.to_string())?;
    let measured =
        medarena_synth::fit(&manifest, &table, rho, &config).map_err(|e| e.to_string())?;
    let rows =
        medarena_synth::sample(&measured, &manifest, QUALITY_ROWS, 0).map_err(|e| e.to_string())?;
    let quality =
        medarena_synth::quality(&measured, &manifest, &rows).map_err(|e| e.to_string())?;
    let measurements = serde_json::to_string(&measured).map_err(|e| e.to_string())?;
    Ok(MeasuredRelease {
        measurements_sha256: crate::vault::sha256_hex(measurements.as_bytes()),
        measurements,
        epsilon: measured.privacy.epsilon,
        delta: measured.privacy.delta,
        rho: measured.privacy.rho,
        quality: summary(&quality),
    })
}

/// The synthesizer's settings on the platform for a budget of `epsilon`: δ =
/// [`SYNTHETIC_DELTA`], one row replaced (the platform's privacy unit), and the ρ whose ε at
/// that δ is at most `epsilon`. `medarena dataset synth --epsilon` uses the same.
pub fn platform_settings(
    epsilon: f64,
    sites: Vec<String>,
) -> Result<(SynthConfig, f64), medarena_synth::SynthError> {
    let config = SynthConfig {
        delta: SYNTHETIC_DELTA,
        adjacency: Adjacency::Substitute,
        sites: Some(sites),
        ..SynthConfig::default()
    };
    Ok((
        config,
        medarena_synth::rho_for_epsilon(epsilon, SYNTHETIC_DELTA)?,
    ))
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

fn summary(quality: &medarena_synth::Quality) -> SyntheticQuality {
    SyntheticQuality {
        mean_column_tvd: mean(quality.columns.iter().map(|c| c.1)),
        max_column_tvd: quality.max_column(),
        mean_pair_tvd: mean(quality.pairs.iter().map(|p| p.tvd)),
        max_pair_tvd: quality.pairs.iter().map(|p| p.tvd).fold(0.0, f64::max),
        detail: serde_json::to_value(quality).unwrap_or_default(),
    }
}

/// The name a hospital's rows carry in a united table (as in real runs).
fn site_name(hospital: OrgId) -> String {
    format!("site-{}", hospital.0)
}

/// A published release that development data is drawn from.
#[derive(Debug, Clone)]
pub struct SyntheticSource {
    pub release: SyntheticReleaseId,
    pub hospital: OrgId,
    pub measurements: Arc<Measurements>,
}

impl SyntheticSource {
    /// Parses stored measurements.
    pub fn parse(
        release: SyntheticReleaseId,
        hospital: OrgId,
        measurements: &str,
    ) -> Result<Self, String> {
        let measurements = serde_json::from_str(measurements)
            .map_err(|err| format!("{release}: stored measurements unreadable: {err}"))?;
        Ok(SyntheticSource {
            release,
            hospital,
            measurements: Arc::new(measurements),
        })
    }
}

/// Development data for a competition: `rows` rows drawn from the published synthetic
/// releases (shared out evenly among them, each hospital's rows under its site), or the
/// manifest's dummy generator when there is none. The same sources, rows and seed give the
/// same table: a team's download with the defaults is its dummy run's table.
pub fn development_table(
    manifest: &Manifest,
    sources: &[SyntheticSource],
    rows: usize,
    seed: u64,
) -> Result<RecordBatch, String> {
    if sources.is_empty() {
        return union_sites(
            manifest,
            &[("dummy".to_owned(), dummy(manifest, rows, seed))],
        )
        .map_err(|err| format!("dummy data does not conform to its manifest: {err}"));
    }
    let mut parts = Vec::with_capacity(sources.len());
    for (index, source) in sources.iter().enumerate() {
        let share = rows / sources.len() + usize::from(index < rows % sources.len());
        // A seed per release, so that two hospitals' rows are not drawn in lockstep.
        let release_seed = seed ^ (source.release.0 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let batch = medarena_synth::sample(&source.measurements, manifest, share, release_seed)
            .map_err(|err| {
                format!(
                    "{} does not fit the competition's manifest: {err}",
                    source.release
                )
            })?;
        parts.push((site_name(source.hospital), batch));
    }
    union_sites(manifest, &parts).map_err(|err| format!("uniting the synthetic rows: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ContributionId, DatasetId};
    use medarena_datasets_spec::example::HEART_MANIFEST;

    fn contribution(hospital: i64, file: &str, bytes: &[u8]) -> ContributionData {
        ContributionData {
            dataset: DatasetId(1),
            dataset_slug: "heart".to_owned(),
            contribution: ContributionId(hospital),
            hospital: OrgId(hospital),
            file_name: file.to_owned(),
            manifest: Some(HEART_MANIFEST.to_owned()),
            bytes: zeroize::Zeroizing::new(bytes.to_vec()),
        }
    }

    #[test]
    fn a_measured_release_regenerates_the_same_rows_and_states_its_privacy() {
        let a = include_bytes!("../../../datasets-spec/examples/heart/hospital-a.csv");
        let measured = measure(&[contribution(7, "hospital-a.csv", a)], 2.0).unwrap();
        assert!(
            measured.epsilon <= 2.0 && measured.epsilon > 1.99,
            "{}",
            measured.epsilon
        );
        assert_eq!(measured.delta, SYNTHETIC_DELTA);
        assert!(
            measured.quality.max_column_tvd < 0.25,
            "{:?}",
            measured.quality
        );
        let manifest = Manifest::from_str(HEART_MANIFEST).unwrap();
        let source =
            SyntheticSource::parse(SyntheticReleaseId(3), OrgId(7), &measured.measurements)
                .unwrap();
        let once = development_table(&manifest, std::slice::from_ref(&source), 500, 9).unwrap();
        let again = development_table(&manifest, &[source], 500, 9).unwrap();
        assert_eq!(once, again);
        assert_eq!(once.num_rows(), 500);
    }

    #[test]
    fn without_a_release_development_data_is_the_dummy_generator() {
        let manifest = Manifest::from_str(HEART_MANIFEST).unwrap();
        let table = development_table(&manifest, &[], 300, 1).unwrap();
        assert_eq!(table.num_rows(), 300);
    }

    #[test]
    fn a_table_without_a_declared_column_is_refused_naming_it() {
        let error = measure(&[contribution(7, "a.csv", b"record_id\n1\n")], 1.0).unwrap_err();
        assert!(error.contains("`age_band` is missing"), "{error}");
    }
}
