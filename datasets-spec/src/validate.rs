//! Validation of a table against its manifest: schema conformance, label sanity, duplicate
//! row ids, the PHI scan of every column, and k-anonymity over the quasi-identifiers.
//!
//! A [`Report`] is read by people who must not see the data, so a [`Finding`] carries a rule
//! id, a severity, the column, how many rows and which row numbers (1-based data rows, the
//! header not counted; at most [`ValidationConfig::max_row_numbers`]), and a message built
//! only from the manifest and the rule, never from a cell.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::check::ColumnCheck;
use crate::kanon::{KAnonymity, PrivacyCheck};
use crate::manifest::{Manifest, PrivacyClass, field_type_name};

/// How strict validation is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidationConfig {
    /// Smallest equivalence class allowed over the quasi-identifiers (default 5). Only an
    /// organizer lowers it.
    pub k: u64,
    /// Fewest distinct values of each sensitive column allowed in a quasi-identifier class
    /// (default 2).
    #[serde(default = "default_l")]
    pub l: u64,
    /// Most row numbers listed per finding (default 20).
    pub max_row_numbers: usize,
    /// A label class with fewer rows than this gets a warning (default 10).
    pub min_label_class: u64,
}

fn default_l() -> u64 {
    2
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            k: 5,
            l: default_l(),
            max_row_numbers: 20,
            min_label_class: 10,
        }
    }
}

/// Severity of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The upload is refused.
    Error,
    /// Accepted, but someone should look.
    Warning,
}

/// One problem found. Never contains a value from the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule id such as `schema.bounds` or `phi.mobile` (listed in `SPEC.md`).
    pub rule: String,
    /// Error or warning.
    pub severity: Severity,
    /// The column, when the finding is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Number of rows affected (0 when the finding is about the column as a whole).
    pub rows: u64,
    /// The first affected rows, 1-based data rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub row_numbers: Vec<u64>,
    /// What is wrong, in words from the manifest and the rule only.
    pub message: String,
}

/// The result of validating one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Manifest `name`.
    pub dataset: String,
    /// Manifest `version`.
    pub version: String,
    /// Data rows in the table.
    pub rows: u64,
    /// Columns in the table.
    pub columns: u64,
    /// Every finding, errors first, then by column.
    pub findings: Vec<Finding>,
    /// The k-anonymity summary, when quasi-identifiers are declared and present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_anonymity: Option<KAnonymity>,
    /// Rows per class of the (first) categorical label, as text of the class.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub label_counts: BTreeMap<String, u64>,
}

impl Report {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// Findings of a severity.
    pub fn with_severity(&self, severity: Severity) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.severity == severity)
    }

    /// Whether a rule fired (on any column).
    pub fn has_rule(&self, rule: &str) -> bool {
        self.findings.iter().any(|f| f.rule == rule)
    }

    /// A human-readable report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let errors = self.with_severity(Severity::Error).count();
        let warnings = self.with_severity(Severity::Warning).count();
        let _ = writeln!(
            out,
            "dataset {} {}: {} rows, {} columns: {}",
            self.dataset,
            self.version,
            self.rows,
            self.columns,
            if errors == 0 { "VALID" } else { "INVALID" }
        );
        let _ = writeln!(out, "{errors} error(s), {warnings} warning(s)");
        if let Some(k) = &self.k_anonymity {
            let _ = writeln!(
                out,
                "k-anonymity over [{}]: {} classes, smallest {}, {} row(s) in classes below k={}",
                k.quasi_identifiers.join(", "),
                k.classes,
                k.smallest_class,
                k.rows_below_k,
                k.k
            );
            if !k.inferred.is_empty() {
                let _ = writeln!(
                    out,
                    "  inferred, not declared: {} (declare their `privacy` to decide)",
                    k.inferred.join(", ")
                );
            }
            for l in &k.l_diversity {
                let _ = writeln!(
                    out,
                    "l-diversity of {}: fewest {} distinct value(s) in a class, {} row(s) in classes below l={}",
                    l.column, l.fewest_values, l.rows_below_l, l.l
                );
            }
        }
        if !self.label_counts.is_empty() {
            let counts: Vec<String> = self
                .label_counts
                .iter()
                .map(|(class, n)| format!("{class}: {n}"))
                .collect();
            let _ = writeln!(out, "label classes: {}", counts.join(", "));
        }
        for finding in &self.findings {
            let severity = match finding.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let column = finding
                .column
                .as_deref()
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default();
            let _ = write!(
                out,
                "{severity} {}{column}: {}",
                finding.rule, finding.message
            );
            if finding.rows > 0 {
                let _ = write!(out, " ({} row(s)", finding.rows);
                if !finding.row_numbers.is_empty() {
                    let listed: Vec<String> =
                        finding.row_numbers.iter().map(u64::to_string).collect();
                    let more = if (finding.row_numbers.len() as u64) < finding.rows {
                        ", ..."
                    } else {
                        ""
                    };
                    let _ = write!(out, ": {}{more}", listed.join(", "));
                }
                out.push(')');
            }
            out.push('\n');
        }
        out
    }
}

pub(crate) fn column_finding(
    rule: &str,
    severity: Severity,
    column: Option<&str>,
    message: String,
) -> Finding {
    Finding {
        rule: rule.to_string(),
        severity,
        column: column.map(str::to_string),
        rows: 0,
        row_numbers: Vec::new(),
        message,
    }
}

/// Findings of one column, and its class counts when it is a categorical target.
type ColumnOutcome = (Vec<Finding>, Option<BTreeMap<String, u64>>);

/// Validates a table against a manifest.
pub fn validate(manifest: &Manifest, batch: &RecordBatch, config: &ValidationConfig) -> Report {
    let mut check = TableCheck::new(manifest, &batch.schema(), config, batch.num_rows());
    check.feed(batch);
    check.finish()
}

/// A validation in progress: the table's batches are fed in row order (one batch, or a
/// file read batch by batch), every column's checks and the k-anonymity classes accumulate,
/// and [`TableCheck::finish`] gives the same report as [`validate`] on the whole table.
pub(crate) struct TableCheck<'m> {
    manifest: &'m Manifest,
    config: ValidationConfig,
    columns: usize,
    /// Findings about the schema as a whole, in the order they were found.
    schema_findings: Vec<Finding>,
    checks: Vec<ColumnCheck<'m>>,
    /// k-anonymity and l-diversity so far, when quasi-identifiers are present.
    quasi: Option<PrivacyCheck>,
    rows: usize,
}

impl<'m> TableCheck<'m> {
    /// `rows_bound` is the number of rows to come, or an upper bound of it.
    pub(crate) fn new(
        manifest: &'m Manifest,
        schema: &Schema,
        config: &ValidationConfig,
        rows_bound: usize,
    ) -> TableCheck<'m> {
        let mut findings = Vec::new();
        let index_of: HashMap<&str, usize> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name().as_str(), i))
            .collect();
        for field in &manifest.schema.fields {
            let present = index_of.contains_key(field.name.as_str());
            if field.privacy() == PrivacyClass::DirectIdentifier {
                if present {
                    findings.push(column_finding(
                        "privacy.direct_identifier",
                        Severity::Error,
                        Some(&field.name),
                        "the manifest declares this column a direct identifier: remove it before upload".into(),
                    ));
                }
            } else if !present {
                findings.push(column_finding(
                    "schema.missing_column",
                    Severity::Error,
                    Some(&field.name),
                    format!(
                        "declared `{}` column is missing",
                        field_type_name(field.field_type)
                    ),
                ));
            }
        }
        for arrow_field in schema.fields() {
            if manifest.field(arrow_field.name()).is_none() {
                findings.push(column_finding(
                    "schema.extra_column",
                    Severity::Error,
                    Some(arrow_field.name()),
                    "column is not declared in the manifest (undeclared columns are refused)"
                        .into(),
                ));
            }
        }
        let row_id_name = manifest.row_id().map(|f| f.name.as_str());
        let checks = schema
            .fields()
            .iter()
            .map(|arrow_field| {
                let name = arrow_field.name().as_str();
                ColumnCheck::new(
                    manifest,
                    name,
                    arrow_field.data_type(),
                    Some(name) == row_id_name,
                    config,
                    rows_bound,
                )
            })
            .collect();
        let quasi = PrivacyCheck::new(manifest, |name| index_of.get(name).copied());
        TableCheck {
            manifest,
            config: config.clone(),
            columns: schema.fields().len(),
            schema_findings: findings,
            checks,
            quasi,
            rows: 0,
        }
    }

    /// The next rows (same schema as given to [`TableCheck::new`]).
    pub(crate) fn feed(&mut self, batch: &RecordBatch) {
        self.feed_all(std::slice::from_ref(batch));
    }

    /// The next rows, several batches in order. Columns are checked on all cores, the
    /// k-anonymity classes alongside.
    pub(crate) fn feed_all(&mut self, batches: &[RecordBatch]) {
        let mut first_rows = Vec::with_capacity(batches.len());
        for batch in batches {
            first_rows.push(self.rows);
            self.rows += batch.num_rows();
        }
        let checks = &mut self.checks;
        let quasi = &mut self.quasi;
        rayon::join(
            || {
                checks
                    .par_iter_mut()
                    .enumerate()
                    .for_each(|(index, check)| {
                        for (batch, first_row) in batches.iter().zip(&first_rows) {
                            check.feed(batch.column(index), *first_row);
                        }
                    });
            },
            || {
                if let Some(quasi) = quasi {
                    for batch in batches {
                        quasi.feed(batch);
                    }
                }
            },
        );
    }

    /// The report.
    pub(crate) fn finish(self) -> Report {
        let TableCheck {
            manifest,
            config,
            columns,
            schema_findings,
            checks,
            quasi,
            rows,
        } = self;
        let mut findings = Vec::new();
        if rows == 0 {
            findings.push(column_finding(
                "table.empty",
                Severity::Error,
                None,
                "the table has no data rows".into(),
            ));
        }
        findings.extend(schema_findings);
        let names: Vec<String> = checks.iter().map(|c| c.name().to_string()).collect();
        let per_column: Vec<ColumnOutcome> =
            checks.into_par_iter().map(ColumnCheck::finish).collect();
        let mut label_counts = BTreeMap::new();
        let first_label = manifest.stratification_label().map(|f| f.name.as_str());
        for ((found, counts), name) in per_column.into_iter().zip(&names) {
            findings.extend(found);
            if Some(name.as_str()) == first_label
                && let Some(counts) = counts
            {
                label_counts = counts;
            }
        }
        let k_anonymity = privacy_findings(quasi, &config, &mut findings);
        findings.sort_by(|a, b| {
            (a.severity, &a.column, &a.rule).cmp(&(b.severity, &b.column, &b.rule))
        });
        Report {
            dataset: manifest.name.clone(),
            version: manifest.version.clone(),
            rows: rows as u64,
            columns: columns as u64,
            findings,
            k_anonymity,
            label_counts,
        }
    }
}

/// The table-level privacy findings: k-anonymity and l-diversity when quasi-identifiers are
/// present, else a warning that they were not checked.
pub(crate) fn privacy_findings(
    quasi: Option<PrivacyCheck>,
    config: &ValidationConfig,
    findings: &mut Vec<Finding>,
) -> Option<KAnonymity> {
    match quasi {
        None => {
            findings.push(column_finding(
                "privacy.no_quasi_identifiers",
                Severity::Warning,
                None,
                "no quasi-identifier is declared, inferred or present: k-anonymity was not checked"
                    .into(),
            ));
            None
        }
        Some(quasi) => {
            let (summary, found) = quasi.finish(config);
            findings.extend(found);
            Some(summary)
        }
    }
}
