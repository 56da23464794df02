//! [`SpecValidator`]: uploads checked by datasets-spec, alone and united with the other
//! hospitals' contributions.

use std::path::Path;

use async_trait::async_trait;
use medarena_datasets_spec::{
    Finding, Format, LoadError, LoadOptions, Manifest, RecordBatch, Report, Severity,
    ValidationConfig, load_bytes_with_manifest, union_sites, validate,
};

use crate::executor::{
    ContributionData, DatasetUpload, DatasetValidator, ValidationOutcome, ValidatorError,
};
use crate::model::Dataset;

/// Rules of the union checks, re-reported as `union.<rule>`.
const UNION_RULES: &[&str] = &[
    "row_id.duplicate",
    "privacy.k_anonymity",
    "privacy.l_diversity",
];

/// Validates uploads with datasets-spec (see the [module docs](super)).
#[derive(Debug, Clone)]
pub struct SpecValidator {
    config: ValidationConfig,
    load: LoadOptions,
}

impl SpecValidator {
    /// `k`: the smallest equivalence class allowed over the quasi-identifiers.
    pub fn new(k: u64) -> Self {
        SpecValidator {
            config: ValidationConfig {
                k,
                ..ValidationConfig::default()
            },
            load: LoadOptions::default(),
        }
    }

    /// Validates one upload and, when `others` are given, its union with them. Blocking
    /// (the datasets-spec checks are CPU-bound); the trait runs it on the blocking pool.
    pub fn check(&self, upload: &DatasetUpload, others: &[ContributionData]) -> Report {
        let manifest = match parse_manifest(upload.manifest.as_deref()) {
            Ok(manifest) => manifest,
            Err(finding) => return refusal("(unknown)", finding),
        };
        let batch = match self.load(&manifest, &upload.file_name, &upload.bytes) {
            Ok(batch) => batch,
            Err(finding) => return refusal_for(&manifest, finding),
        };
        let mut report = validate(&manifest, &batch, &self.config);
        if report.has_errors() || others.is_empty() {
            return report;
        }
        let mut parts = vec![(site_name(&upload.file_name, None), batch)];
        for other in others {
            match self.other_part(&manifest, other) {
                Ok(part) => parts.push(part),
                Err(finding) => {
                    report.findings.insert(0, finding);
                    return report;
                }
            }
        }
        match union_sites(&manifest, &parts) {
            Err(err) => report.findings.insert(
                0,
                error(
                    "union.conform",
                    format!(
                        "the contributions cannot be united: {}",
                        safe_union_error(&err)
                    ),
                ),
            ),
            Ok(union) => {
                let union_report = validate(&manifest, &union, &self.config);
                for finding in union_report.findings {
                    if UNION_RULES.contains(&finding.rule.as_str()) {
                        report.findings.push(Finding {
                            rule: format!("union.{}", finding.rule),
                            // Row numbers of the union would point into other hospitals' rows.
                            row_numbers: Vec::new(),
                            message: format!(
                                "across all {} contributions: {}",
                                parts.len(),
                                finding.message
                            ),
                            ..finding
                        });
                    }
                }
                report.findings.sort_by_key(|f| f.severity);
            }
        }
        report
    }

    fn load(
        &self,
        manifest: &Manifest,
        file_name: &str,
        bytes: &[u8],
    ) -> Result<RecordBatch, Finding> {
        let format =
            Format::from_extension(Path::new(file_name)).unwrap_or_else(|| Format::sniff(bytes));
        load_bytes_with_manifest(manifest, bytes, format, file_name, &self.load)
            .map(|loaded| loaded.batch)
            .map_err(|err| error("load.unreadable", safe_load_error(&err)))
    }

    /// Another hospital's contribution, with the same schema as the upload.
    fn other_part(
        &self,
        manifest: &Manifest,
        other: &ContributionData,
    ) -> Result<(String, RecordBatch), Finding> {
        let mismatch = || {
            error(
                "union.manifest_mismatch",
                format!(
                    "the manifest's fields differ from those of {} already in the dataset",
                    other.contribution
                ),
            )
        };
        let theirs = parse_manifest(other.manifest.as_deref()).map_err(|_| mismatch())?;
        if !same_schema(manifest, &theirs) {
            return Err(mismatch());
        }
        let batch = self
            .load(&theirs, &other.file_name, &other.bytes)
            .map_err(|_| {
                error(
                    "union.unreadable",
                    format!("{} cannot be read again", other.contribution),
                )
            })?;
        Ok((site_name(&other.file_name, Some(other)), batch))
    }
}

#[async_trait]
impl DatasetValidator for SpecValidator {
    async fn validate(
        &self,
        _dataset: &Dataset,
        upload: &DatasetUpload,
        others: &[ContributionData],
    ) -> Result<ValidationOutcome, ValidatorError> {
        // CPU-bound: on a multi-threaded runtime, let the other tasks move elsewhere.
        let report = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.check(upload, others))
            }
            _ => self.check(upload, others),
        };
        outcome(&report)
    }
}

/// The stored verdict: accepted when no finding is an error; the report as JSON.
pub(crate) fn outcome(report: &Report) -> Result<ValidationOutcome, ValidatorError> {
    Ok(ValidationOutcome {
        accepted: !report.has_errors(),
        rows: i64::try_from(report.rows).ok(),
        report: serde_json::to_value(report).map_err(|err| ValidatorError(err.to_string()))?,
    })
}

/// Where a contribution's rows come from, when its table has no site column of its own.
fn site_name(file_name: &str, other: Option<&ContributionData>) -> String {
    match other {
        Some(other) => format!("site-{}", other.hospital.0),
        None => format!(
            "upload-{}",
            Path::new(file_name)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("new")
        ),
    }
}

fn same_schema(a: &Manifest, b: &Manifest) -> bool {
    a.schema.fields.len() == b.schema.fields.len()
        && a.schema
            .fields
            .iter()
            .zip(&b.schema.fields)
            .all(|(x, y)| x.name == y.name && x.field_type == y.field_type && x.role == y.role)
}

fn parse_manifest(text: Option<&str>) -> Result<Manifest, Finding> {
    let text = text.ok_or_else(|| {
        error(
            "manifest.missing",
            "no manifest was sent with the upload; send the dataset manifest (SPEC.md)".to_owned(),
        )
    })?;
    Manifest::from_str(text).map_err(|err| error("manifest.invalid", err.to_string()))
}

/// A load error without anything a reader quoted from the file: every variant names the
/// file, line or byte offset, except the reader's own explanation, which may quote a cell.
fn safe_load_error(err: &LoadError) -> String {
    match err {
        LoadError::Malformed { file, format, .. } => {
            format!("{file}: not a readable {format} file")
        }
        LoadError::Convert { file, column, .. } => {
            format!("{file}: column `{column}` cannot be converted")
        }
        other => other.to_string(),
    }
}

fn safe_union_error(err: &medarena_datasets_spec::UnionError) -> String {
    // Conform errors name the column and row, never the value.
    err.to_string()
}

fn error(rule: &str, message: String) -> Finding {
    Finding {
        rule: rule.to_owned(),
        severity: Severity::Error,
        column: None,
        rows: 0,
        row_numbers: Vec::new(),
        message,
    }
}

fn refusal(dataset: &str, finding: Finding) -> Report {
    Report {
        dataset: dataset.to_owned(),
        version: String::new(),
        rows: 0,
        columns: 0,
        findings: vec![finding],
        k_anonymity: None,
        label_counts: Default::default(),
    }
}

fn refusal_for(manifest: &Manifest, finding: Finding) -> Report {
    Report {
        version: manifest.version.clone(),
        ..refusal(&manifest.name, finding)
    }
}
