//! Validation of a table against its manifest: schema conformance, label sanity, duplicate
//! row ids, the PHI scan of every column, and k-anonymity over the quasi-identifiers.
//!
//! A [`Report`] is read by people who must not see the data, so a [`Finding`] carries a rule
//! id, a severity, the column, how many rows and which row numbers (1-based data rows, the
//! header not counted; at most [`ValidationConfig::max_row_numbers`]), and a message built
//! only from the manifest and the rule, never from a cell.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cells::{Cell, compatible, for_each_cell, prepare};
use crate::dates::PartialDate;
use crate::kanon::{self, KAnonymity};
use crate::manifest::{
    Bound, CategoryValue, DatePrecision, Field, FieldType, Manifest, PrivacyClass, Role,
    field_type_name,
};
use crate::phi::{self, ColumnContext, PhiHit};
use crate::values::TextColumn;

/// How strict validation is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidationConfig {
    /// Smallest equivalence class allowed over the quasi-identifiers (default 5). Only an
    /// organizer lowers it.
    pub k: u64,
    /// Most row numbers listed per finding (default 20).
    pub max_row_numbers: usize,
    /// A label class with fewer rows than this gets a warning (default 10).
    pub min_label_class: u64,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            k: 5,
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

/// Collects affected rows for one finding.
struct Rows {
    count: u64,
    numbers: Vec<u64>,
    cap: usize,
}

impl Rows {
    fn new(cap: usize) -> Rows {
        Rows {
            count: 0,
            numbers: Vec::new(),
            cap,
        }
    }

    #[inline]
    fn add(&mut self, row: usize) {
        self.count += 1;
        if self.numbers.len() < self.cap {
            self.numbers.push(row as u64 + 1);
        }
    }

    fn finding(
        self,
        rule: &str,
        severity: Severity,
        column: &str,
        message: String,
    ) -> Option<Finding> {
        (self.count > 0).then(|| Finding {
            rule: rule.to_string(),
            severity,
            column: Some(column.to_string()),
            rows: self.count,
            row_numbers: self.numbers,
            message,
        })
    }
}

fn column_finding(
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
    let schema = batch.schema();
    let rows = batch.num_rows();
    let cap = config.max_row_numbers;
    let mut findings = Vec::new();
    if rows == 0 {
        findings.push(column_finding(
            "table.empty",
            Severity::Error,
            None,
            "the table has no data rows".into(),
        ));
    }
    let index_of: HashMap<&str, usize> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name().as_str(), i))
        .collect();
    for field in &manifest.schema.fields {
        let present = index_of.contains_key(field.name.as_str());
        if field.privacy == PrivacyClass::DirectIdentifier {
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
                "column is not declared in the manifest (undeclared columns are refused)".into(),
            ));
        }
    }

    // Conformance and the PHI scan are per column: run them on all cores.
    let row_id_name = manifest.row_id().map(|f| f.name.as_str());
    let per_column: Vec<ColumnOutcome> = schema
        .fields()
        .par_iter()
        .zip(batch.columns().par_iter())
        .map(|(arrow_field, column)| {
            let name = arrow_field.name().as_str();
            let context = ColumnContext {
                is_row_id: Some(name) == row_id_name,
                row_cap: cap,
            };
            let mut found = phi_findings(name, column, context);
            let mut label_counts = None;
            if let Some(field) = manifest.field(name)
                && field.privacy != PrivacyClass::DirectIdentifier
            {
                let (conformance, counts) = conform_column(manifest, field, column, config);
                found.extend(conformance);
                label_counts = counts;
            }
            (found, label_counts)
        })
        .collect();
    let mut label_counts = BTreeMap::new();
    let first_label = manifest.stratification_label().map(|f| f.name.as_str());
    for ((found, counts), arrow_field) in per_column.into_iter().zip(schema.fields()) {
        findings.extend(found);
        if Some(arrow_field.name().as_str()) == first_label
            && let Some(counts) = counts
        {
            label_counts = counts;
        }
    }

    let quasi: Vec<&Field> = manifest
        .quasi_identifiers()
        .into_iter()
        .filter(|f| index_of.contains_key(f.name.as_str()))
        .collect();
    let k_anonymity = if quasi.is_empty() {
        findings.push(column_finding(
            "privacy.no_quasi_identifiers",
            Severity::Warning,
            None,
            "no quasi-identifier is declared (or present): k-anonymity was not checked".into(),
        ));
        None
    } else {
        let columns: Vec<ArrayRef> = quasi
            .iter()
            .map(|f| Arc::clone(batch.column(index_of[f.name.as_str()])))
            .collect();
        let names = quasi.iter().map(|f| f.name.clone()).collect();
        let (summary, indices) = kanon::check(names, &columns, rows, config.k, cap);
        if summary.rows_below_k > 0 {
            findings.push(Finding {
                rule: "privacy.k_anonymity".into(),
                severity: Severity::Error,
                column: None,
                rows: summary.rows_below_k,
                row_numbers: indices.into_iter().map(|r| r + 1).collect(),
                message: format!(
                    "rows whose quasi-identifier combination ({}) is shared by fewer than k={} rows; generalise or suppress them",
                    summary.quasi_identifiers.join(", "),
                    config.k
                ),
            });
        }
        Some(summary)
    };

    findings
        .sort_by(|a, b| (a.severity, &a.column, &a.rule).cmp(&(b.severity, &b.column, &b.rule)));
    Report {
        dataset: manifest.name.clone(),
        version: manifest.version.clone(),
        rows: rows as u64,
        columns: schema.fields().len() as u64,
        findings,
        k_anonymity,
        label_counts,
    }
}

fn phi_findings(name: &str, column: &ArrayRef, context: ColumnContext) -> Vec<Finding> {
    let hits: Vec<PhiHit> = if let Some(text) = TextColumn::of(column.as_ref()) {
        phi::scan_text_column(name, &text, context)
    } else {
        match column.data_type() {
            DataType::Int64 => {
                let values = column.as_primitive::<Int64Type>();
                phi::scan_integer_column(name, values.iter(), context)
            }
            DataType::Float64 => {
                let values = column.as_primitive::<Float64Type>();
                phi::scan_float_column(name, values.iter(), context)
            }
            data_type if data_type.is_integer() => {
                match arrow::compute::cast(column, &DataType::Int64) {
                    Ok(cast) => phi::scan_integer_column(
                        name,
                        cast.as_primitive::<Int64Type>().iter(),
                        context,
                    ),
                    Err(_) => phi::scan_header_only(name),
                }
            }
            _ => phi::scan_header_only(name),
        }
    };
    hits.into_iter()
        .map(|hit| Finding {
            rule: hit.kind.rule().to_string(),
            severity: if hit.kind.is_error() {
                Severity::Error
            } else {
                Severity::Warning
            },
            column: Some(name.to_string()),
            rows: hit.rows,
            row_numbers: hit.row_indices.into_iter().map(|r| r + 1).collect(),
            message: hit.kind.describe().to_string(),
        })
        .collect()
}

/// Per-column conformance; also the class counts when the column is a categorical target.
fn conform_column(
    manifest: &Manifest,
    field: &Field,
    column: &ArrayRef,
    config: &ValidationConfig,
) -> (Vec<Finding>, Option<BTreeMap<String, u64>>) {
    let cap = config.max_row_numbers;
    let name = field.name.as_str();
    let type_name = field_type_name(field.field_type);
    let mut findings = Vec::new();
    if !compatible(field.field_type, column.data_type()) {
        findings.push(column_finding(
            "schema.type",
            Severity::Error,
            Some(name),
            format!(
                "column is stored as {} and cannot hold `{type_name}` values",
                column.data_type()
            ),
        ));
        return (findings, None);
    }
    let prepared = prepare(field, column);
    let (minimum, maximum) = field.numeric_bounds();
    let date_bounds = (
        date_bound(&field.constraints.minimum).map(|d| d.first_day()),
        date_bound(&field.constraints.maximum).map(|d| d.last_day()),
    );
    let precision = field.precision.unwrap_or(DatePrecision::Day);
    let integer_categories: Option<HashSet<i64>> = field.categories.as_ref().map(|c| {
        c.iter()
            .filter_map(|c| match c.value() {
                CategoryValue::Integer(v) => Some(*v),
                CategoryValue::Text(_) => None,
            })
            .collect()
    });
    let text_categories: Option<HashSet<&str>> = field.categories.as_ref().map(|c| {
        c.iter()
            .filter_map(|c| match c.value() {
                CategoryValue::Text(v) => Some(v.as_str()),
                CategoryValue::Integer(_) => None,
            })
            .collect()
    });
    let is_target = matches!(field.role, Role::Label | Role::Event);
    let count_classes =
        is_target && (field.categories.is_some() || field.field_type == FieldType::Boolean);
    let mut classes: HashMap<String, u64> = HashMap::new();
    let (
        mut missing,
        mut bad_type,
        mut out_of_bounds,
        mut bad_category,
        mut too_precise,
        mut duplicate,
    ) = (
        Rows::new(cap),
        Rows::new(cap),
        Rows::new(cap),
        Rows::new(cap),
        Rows::new(cap),
        Rows::new(cap),
    );
    let unique = field.is_unique();
    let mut seen_text: HashSet<&str> = HashSet::new();
    let mut seen_integer: HashSet<i64> = HashSet::new();
    let mut numeric_range: Option<(f64, f64)> = None;
    let out_of = |value: f64| {
        value.is_nan() || minimum.is_some_and(|m| value < m) || maximum.is_some_and(|m| value > m)
    };
    for_each_cell(
        field,
        prepared.as_ref(),
        &manifest.schema.missing_values,
        |row, cell| match cell {
            Cell::Missing => missing.add(row),
            Cell::Bad => bad_type.add(row),
            Cell::Number(value) => {
                if out_of(value) {
                    out_of_bounds.add(row);
                }
                numeric_range = Some(match numeric_range {
                    None => (value, value),
                    Some((lo, hi)) => (lo.min(value), hi.max(value)),
                });
            }
            Cell::Integer(value) => {
                match &integer_categories {
                    Some(allowed) if !allowed.contains(&value) => bad_category.add(row),
                    Some(_) => {}
                    None if out_of(value as f64) => out_of_bounds.add(row),
                    None => {}
                }
                if unique && !seen_integer.insert(value) {
                    duplicate.add(row);
                }
                if count_classes {
                    *classes.entry(value.to_string()).or_default() += 1;
                }
            }
            Cell::Boolean(value) => {
                if count_classes {
                    *classes.entry(value.to_string()).or_default() += 1;
                }
            }
            Cell::Text(text) => {
                if field.field_type == FieldType::Date {
                    match PartialDate::parse(text) {
                        None => bad_type.add(row),
                        Some(date) => {
                            if date.precision() > precision {
                                too_precise.add(row);
                            }
                            if date_bounds.0.is_some_and(|min| date.last_day() < min)
                                || date_bounds.1.is_some_and(|max| date.first_day() > max)
                            {
                                out_of_bounds.add(row);
                            }
                        }
                    }
                } else {
                    if let Some(allowed) = &text_categories
                        && !allowed.contains(text)
                    {
                        bad_category.add(row);
                    }
                    if unique && !seen_text.insert(text) {
                        duplicate.add(row);
                    }
                    if count_classes {
                        *classes.entry(text.to_string()).or_default() += 1;
                    }
                }
            }
        },
    );
    let required = field.is_required();
    let bounds_text = bounds_text(field);
    let duplicate_rule = if field.role == Role::RowId {
        "row_id.duplicate"
    } else {
        "schema.unique"
    };
    let pending = [
        missing
            .finding(
                if is_target {
                    "label.missing"
                } else {
                    "schema.required"
                },
                Severity::Error,
                name,
                "required value is missing".into(),
            )
            .filter(|_| required),
        bad_type.finding(
            "schema.type",
            Severity::Error,
            name,
            format!("value is not a valid `{type_name}`"),
        ),
        out_of_bounds.finding(
            "schema.bounds",
            Severity::Error,
            name,
            format!("value outside the declared bounds {bounds_text}"),
        ),
        bad_category.finding(
            "schema.category",
            Severity::Error,
            name,
            "value is not one of the declared categories".into(),
        ),
        too_precise.finding(
            "schema.date_precision",
            Severity::Error,
            name,
            format!(
                "date is more precise than the declared precision `{}`",
                precision_name(precision)
            ),
        ),
        duplicate.finding(
            duplicate_rule,
            Severity::Error,
            name,
            "value repeats an earlier row's".into(),
        ),
    ];
    findings.extend(pending.into_iter().flatten());
    let mut label_counts = None;
    if is_target || field.role == Role::TimeToEvent {
        if count_classes {
            let declared = field.categories.as_ref().map_or(2, Vec::len);
            let present = classes.len();
            if present < 2 && declared >= 2 {
                findings.push(column_finding(
                    "label.single_class",
                    Severity::Error,
                    Some(name),
                    "the target has fewer than two classes: nothing to learn".into(),
                ));
            }
            if classes.values().any(|n| *n < config.min_label_class) {
                findings.push(column_finding(
                    "label.rare_class",
                    Severity::Warning,
                    Some(name),
                    format!(
                        "a target class has fewer than {} rows",
                        config.min_label_class
                    ),
                ));
            }
            label_counts = Some(classes.into_iter().collect());
        } else if let Some((lo, hi)) = numeric_range
            && lo == hi
        {
            findings.push(column_finding(
                "label.constant",
                Severity::Error,
                Some(name),
                "the target has one value in every row".into(),
            ));
        }
    }
    (findings, label_counts)
}

fn date_bound(bound: &Option<Bound>) -> Option<PartialDate> {
    match bound {
        Some(Bound::Date(text)) => PartialDate::parse(text),
        _ => None,
    }
}

fn bounds_text(field: &Field) -> String {
    let show = |bound: &Option<Bound>| match bound {
        Some(Bound::Number(v)) => v.to_string(),
        Some(Bound::Date(d)) => d.clone(),
        None => "-".into(),
    };
    format!(
        "[{}, {}]",
        show(&field.constraints.minimum),
        show(&field.constraints.maximum)
    )
}

fn precision_name(precision: DatePrecision) -> &'static str {
    match precision {
        DatePrecision::Year => "year",
        DatePrecision::Month => "month",
        DatePrecision::Day => "day",
    }
}
