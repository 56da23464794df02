//! The validation code as it was before the single-pass rewrite, kept verbatim (only paths
//! adjusted) as the oracle the rewritten checks are compared with on generated tables.
//! Test-only: see `tests` in `check.rs`.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use rayon::prelude::*;

use crate::cells::{Cell, compatible, for_each_cell, prepare};
use crate::dates::PartialDate;
use crate::kanon::KAnonymity;
use crate::load::{LoadError, LoadOptions};
use crate::manifest::{
    Bound, CategoryValue, DatePrecision, Field, FieldType, Manifest, PrivacyClass, Role,
    field_type_name,
};
use crate::phi::{
    CellHits, ColumnContext, HeaderHints, PhiHit, PhiKind, classify_digits, contains_email,
    contains_url, header_hints, is_chinese_address, is_chinese_name, is_free_text, is_ip_address,
    is_latin_name, is_license_plate, is_passport, is_postcode, number, valid_ymd,
};
use crate::validate::{Finding, Report, Severity, ValidationConfig};
use crate::values::{TextColumn, as_text};

// ---- phi.rs: cell classification ----

/// Runs every cell-level detector on one cell.
pub fn classify_cell(cell: &str) -> CellHits {
    let mut hits = CellHits::default();
    let bytes = cell.as_bytes();
    // Fast path: short plain numbers and codes, most cells of a medical table.
    if bytes.len() <= 8
        && bytes
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return hits;
    }
    let has_digit = bytes.iter().any(u8::is_ascii_digit);
    if has_digit {
        classify_digits(bytes, &mut hits);
    }
    if memchr::memchr(b'@', bytes).is_some() && contains_email(bytes) {
        hits.set(PhiKind::Email);
    }
    if (memchr::memchr(b'/', bytes).is_some() || memchr::memchr(b'.', bytes).is_some())
        && contains_url(bytes)
    {
        hits.set(PhiKind::Url);
    }
    if has_digit || memchr::memchr(b':', bytes).is_some() {
        if bytes.contains(&b' ') {
            if cell.split_whitespace().any(is_ip_address) {
                hits.set(PhiKind::IpAddress);
            }
        } else if is_ip_address(cell) {
            hits.set(PhiKind::IpAddress);
        }
    }
    if has_digit && (6..=40).contains(&bytes.len()) && is_full_date(cell) {
        hits.set(PhiKind::FullDate);
    }
    if bytes.is_ascii() {
        let name_shaped =
            bytes[0].is_ascii_uppercase() && (bytes.contains(&b' ') || bytes.contains(&b','));
        if !has_digit
            && ((name_shaped && is_latin_name(cell)) || crate::names::is_listed_name(cell))
        {
            hits.set(PhiKind::LatinName);
        }
        if has_digit && is_latin_street_address(cell) {
            hits.set(PhiKind::Address);
        }
        if is_passport(bytes) {
            hits.set(PhiKind::Passport);
        }
    } else {
        if is_chinese_name(cell) {
            hits.set(PhiKind::ChineseName);
        }
        if is_chinese_address(cell) {
            hits.set(PhiKind::Address);
        }
        if is_license_plate(cell) {
            hits.set(PhiKind::LicensePlate);
        }
    }
    if is_free_text(cell) {
        hits.set(PhiKind::FreeText);
    }
    hits
}

/// A full date: `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYY.MM.DD`, `YYYY年M月D日`, `DD/MM/YYYY` or
/// `MM/DD/YYYY` (with an optional time after it).
pub fn is_full_date(cell: &str) -> bool {
    let cell = cell.trim();
    let head = cell.split([' ', 'T']).next().unwrap_or_default();
    if let Some(rest) = head.strip_suffix('日') {
        let parts: Vec<&str> = rest.split(['年', '月']).collect();
        return parts.len() == 3 && date_parts(parts[0], parts[1], parts[2]);
    }
    let parts: Vec<&str> = head.split(['-', '/', '.']).collect();
    if parts.len() != 3 {
        return false;
    }
    if parts[0].len() == 4 {
        date_parts(parts[0], parts[1], parts[2])
    } else if parts[2].len() == 4 && head.contains('/') {
        date_parts(parts[2], parts[1], parts[0]) || date_parts(parts[2], parts[0], parts[1])
    } else {
        false
    }
}

fn date_parts(year: &str, month: &str, day: &str) -> bool {
    let numeric = |s: &str, max_len: usize| {
        !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
    };
    numeric(year, 4)
        && year.len() == 4
        && numeric(month, 2)
        && numeric(day, 2)
        && valid_ymd(
            number(year.as_bytes()),
            number(month.as_bytes()),
            number(day.as_bytes()),
        )
        && (1850..=2100).contains(&number(year.as_bytes()))
}
const STREET_SUFFIXES: [&str; 18] = [
    "street",
    "st",
    "road",
    "rd",
    "avenue",
    "ave",
    "lane",
    "ln",
    "boulevard",
    "blvd",
    "drive",
    "dr",
    "court",
    "ct",
    "way",
    "place",
    "pl",
    "terrace",
];

/// A Latin-script street address: a house number, a name, a street suffix.
pub fn is_latin_street_address(cell: &str) -> bool {
    let words: Vec<&str> = cell.split_whitespace().collect();
    words.windows(3).any(|w| {
        w[0].bytes().all(|b| b.is_ascii_digit())
            && w[1].chars().next().is_some_and(|c| c.is_ascii_uppercase())
    }) && words.iter().skip(2).any(|w| {
        let w = w.trim_end_matches([',', '.']).to_ascii_lowercase();
        STREET_SUFFIXES.contains(&w.as_str())
    })
}
// ---- phi.rs: column scans ----

struct Tally {
    rows: u64,
    indices: Vec<u64>,
}

struct Tallies {
    cap: usize,
    by_kind: Vec<Tally>,
}

impl Tallies {
    fn new(cap: usize) -> Tallies {
        Tallies {
            cap,
            by_kind: PhiKind::ALL
                .iter()
                .map(|_| Tally {
                    rows: 0,
                    indices: Vec::new(),
                })
                .collect(),
        }
    }

    fn add(&mut self, kind: PhiKind, row: usize) {
        let tally = &mut self.by_kind[kind as usize];
        tally.rows += 1;
        if tally.indices.len() < self.cap {
            tally.indices.push(row as u64);
        }
    }

    fn rows(&self, kind: PhiKind) -> u64 {
        self.by_kind[kind as usize].rows
    }

    fn hit(&mut self, kind: PhiKind) -> PhiHit {
        let tally = &mut self.by_kind[kind as usize];
        PhiHit {
            kind,
            rows: tally.rows,
            row_indices: std::mem::take(&mut tally.indices),
        }
    }
}

/// Scans a text column: header hints, every cell, then column-level decisions.
pub fn scan_text_column(
    header: &str,
    column: &TextColumn<'_>,
    context: ColumnContext,
) -> Vec<PhiHit> {
    let hints = header_hints(header);
    let mut tallies = Tallies::new(context.row_cap);
    let mut non_null = 0u64;
    let mut name_values: HashSet<&str> = HashSet::new();
    let mut date_values: HashSet<&str> = HashSet::new();
    let mut years = crate::phi::YearSpread::default();
    let mut distinct: HashSet<&str> = HashSet::new();
    // The first distinct values in row order: the column-level decision reads a sample.
    let mut first_distinct: Vec<&str> = Vec::new();
    let mut duplicates = 0u64;
    let mut track_distinct = !context.is_row_id;
    let rows = column.len();
    for row in 0..rows {
        let Some(cell) = column.get(row) else {
            continue;
        };
        non_null += 1;
        if track_distinct && distinct.insert(cell) {
            if first_distinct.len() < 100 {
                first_distinct.push(cell);
            }
        } else if track_distinct {
            duplicates += 1;
            // More than a tenth repeated: not an identifier column; stop hashing.
            if duplicates * 10 > rows as u64 {
                track_distinct = false;
                distinct = HashSet::new();
            }
        }
        let hits = classify_cell(cell);
        if hits.is_empty() && !hints.postcode && !hints.age {
            continue;
        }
        for kind in PhiKind::ALL {
            if hits.has(kind) {
                tallies.add(kind, row);
            }
        }
        if (hits.has(PhiKind::ChineseName) || hits.has(PhiKind::LatinName))
            && name_values.len() < 100_000
        {
            name_values.insert(cell);
        }
        if hits.has(PhiKind::FullDate)
            && date_values.len() < 100_000
            && date_values.insert(cell)
            && let Some(year) = crate::phi::full_date_year(cell)
        {
            years.add(year);
        }
        if hints.postcode && is_postcode(cell) {
            tallies.add(PhiKind::Postcode, row);
        }
        if hints.age && cell.trim().parse::<f64>().is_ok_and(|age| age > 89.0) {
            tallies.add(PhiKind::AgeOver89, row);
        }
    }
    let mut hits = Vec::new();
    let strong = [
        PhiKind::ResidentId,
        PhiKind::Mobile,
        PhiKind::Landline,
        PhiKind::Email,
        PhiKind::Url,
        PhiKind::IpAddress,
        PhiKind::Ssn,
        PhiKind::BankCard,
        PhiKind::LicensePlate,
        PhiKind::Address,
        PhiKind::Postcode,
        PhiKind::AgeOver89,
    ];
    for kind in strong {
        if tallies.rows(kind) > 0 {
            hits.push(tallies.hit(kind));
        }
    }
    let most = |count: u64| count > 0 && count * 2 >= non_null;
    let names = tallies.rows(PhiKind::ChineseName) + tallies.rows(PhiKind::LatinName);
    if crate::phi::is_name_column(non_null, names, name_values.len() as u64) {
        let kind = if tallies.rows(PhiKind::ChineseName) >= tallies.rows(PhiKind::LatinName) {
            PhiKind::ChineseName
        } else {
            PhiKind::LatinName
        };
        hits.push(tallies.hit(kind));
    }
    if most(tallies.rows(PhiKind::Passport)) {
        hits.push(tallies.hit(PhiKind::Passport));
    }
    if tallies.rows(PhiKind::FreeText) > 0 && tallies.rows(PhiKind::FreeText) * 4 >= non_null {
        hits.push(tallies.hit(PhiKind::FreeText));
    }
    if most(tallies.rows(PhiKind::FullDate)) {
        let mut hit = tallies.hit(PhiKind::FullDate);
        if hints.birth || years.looks_like_births() {
            hit.kind = PhiKind::DateOfBirth;
        }
        hits.push(hit);
    }
    hits.extend(header_findings(hints));
    if track_distinct
        && non_null >= 20
        && distinct.len() as u64 * 10 >= non_null * 9
        && let Some(kind) = crate::phi::distinct_column_kind(first_distinct.iter().copied())
    {
        hits.push(PhiHit {
            kind,
            rows: non_null,
            row_indices: Vec::new(),
        });
    }
    hits
}

fn header_findings(hints: HeaderHints) -> Vec<PhiHit> {
    let mut hits = Vec::new();
    for (flag, kind) in [
        (hints.name, PhiKind::NameHeader),
        (hints.identifier, PhiKind::IdentifierHeader),
    ] {
        if flag {
            hits.push(PhiHit {
                kind,
                rows: 0,
                row_indices: Vec::new(),
            });
        }
    }
    hits
}

/// Scans an integer column (numbers cannot carry text identifiers, but phone and ID numbers
/// fit in 64 bits).
pub fn scan_integer_column(
    header: &str,
    values: impl Iterator<Item = Option<i64>>,
    context: ColumnContext,
) -> Vec<PhiHit> {
    let hints = header_hints(header);
    let mut tallies = Tallies::new(context.row_cap);
    for (row, value) in values.enumerate() {
        let Some(value) = value else { continue };
        if value >= 10_000_000_000 {
            let digits = value.to_string();
            let hits = {
                let mut hits = CellHits::default();
                classify_digits(digits.as_bytes(), &mut hits);
                hits
            };
            for kind in [PhiKind::ResidentId, PhiKind::Mobile, PhiKind::BankCard] {
                if hits.has(kind) {
                    tallies.add(kind, row);
                }
            }
        }
        if hints.age && value > 89 {
            tallies.add(PhiKind::AgeOver89, row);
        }
        if hints.postcode && (10_000..=999_999).contains(&value) {
            tallies.add(PhiKind::Postcode, row);
        }
    }
    let mut hits: Vec<PhiHit> = [
        PhiKind::ResidentId,
        PhiKind::Mobile,
        PhiKind::BankCard,
        PhiKind::AgeOver89,
        PhiKind::Postcode,
    ]
    .into_iter()
    .filter(|kind| tallies.rows(*kind) > 0)
    .collect::<Vec<_>>()
    .into_iter()
    .map(|kind| tallies.hit(kind))
    .collect();
    hits.extend(header_findings(hints));
    hits
}

/// Scans a float column: whole numbers are checked as integers.
pub fn scan_float_column(
    header: &str,
    values: impl Iterator<Item = Option<f64>>,
    context: ColumnContext,
) -> Vec<PhiHit> {
    scan_integer_column(
        header,
        values.map(|value| {
            value.and_then(|v| {
                if v.fract() == 0.0 && v.abs() < 9.0e18 {
                    Some(v as i64)
                } else if v > 89.0 {
                    // Keeps the age check for fractional ages above 89.
                    Some(90)
                } else {
                    None
                }
            })
        }),
        context,
    )
}

/// Scans a column of another type (booleans, dates...): header hints only.
pub fn scan_header_only(header: &str) -> Vec<PhiHit> {
    header_findings(header_hints(header))
}
// ---- validate.rs ----

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
            let day_dates = crate::phi::typed_dates_are_days(manifest, name);
            let mut found = phi_findings(name, column, context, day_dates);
            let mut label_counts = None;
            if let Some(field) = manifest.field(name)
                && field.privacy() != PrivacyClass::DirectIdentifier
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

    // The table-level privacy check was not part of the single-pass rewrite: shared.
    let mut quasi = crate::kanon::PrivacyCheck::new(manifest, |name| index_of.get(name).copied());
    if let Some(quasi) = &mut quasi {
        quasi.feed(batch);
    }
    let k_anonymity = crate::validate::privacy_findings(quasi, config, &mut findings);

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

fn phi_findings(
    name: &str,
    column: &ArrayRef,
    context: ColumnContext,
    day_dates: bool,
) -> Vec<Finding> {
    let hits: Vec<PhiHit> = if let Some(text) = TextColumn::of(column.as_ref()) {
        scan_text_column(name, &text, context)
    } else {
        match column.data_type() {
            DataType::Int64 => {
                let values = column.as_primitive::<Int64Type>();
                scan_integer_column(name, values.iter(), context)
            }
            DataType::Float64 => {
                let values = column.as_primitive::<Float64Type>();
                scan_float_column(name, values.iter(), context)
            }
            data_type if data_type.is_integer() => {
                match arrow::compute::cast(column, &DataType::Int64) {
                    Ok(cast) => {
                        scan_integer_column(name, cast.as_primitive::<Int64Type>().iter(), context)
                    }
                    Err(_) => scan_header_only(name),
                }
            }
            data_type if crate::phi::is_date_type(data_type) => crate::phi::scan_date_column(
                name,
                crate::phi::typed_date_years(column.as_ref()).into_iter(),
                context,
                day_dates,
            ),
            _ => scan_header_only(name),
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

// ---- kanon.rs ----

pub use crate::kanon::Classes;

/// Dense codes of one column's values (nulls share code 0).
fn codes(column: &ArrayRef) -> Vec<u32> {
    let rows = column.len();
    let mut out = vec![0u32; rows];
    macro_rules! by_bits {
        ($array:expr, $to_bits:expr) => {{
            let mut dictionary: HashMap<u64, u32> = HashMap::new();
            for row in 0..rows {
                if $array.is_valid(row) {
                    let next = dictionary.len() as u32 + 1;
                    out[row] = *dictionary
                        .entry($to_bits($array.value(row)))
                        .or_insert(next);
                }
            }
        }};
    }
    match column.data_type() {
        DataType::Int64 => by_bits!(
            column.as_primitive::<arrow::datatypes::Int64Type>(),
            |v: i64| v as u64
        ),
        DataType::Float64 => {
            by_bits!(
                column.as_primitive::<arrow::datatypes::Float64Type>(),
                |v: f64| v.to_bits()
            )
        }
        DataType::Boolean => by_bits!(column.as_boolean(), u64::from),
        _ => {
            let text = as_text(column);
            if let Some(view) = text.as_deref().and_then(TextColumn::of) {
                let mut dictionary: HashMap<&str, u32> = HashMap::new();
                for (row, code) in out.iter_mut().enumerate() {
                    if let Some(value) = view.get(row) {
                        let next = dictionary.len() as u32 + 1;
                        *code = *dictionary.entry(value).or_insert(next);
                    }
                }
            }
        }
    }
    out
}

/// The equivalence classes of rows over the given columns (all rows one class when there
/// are no columns).
pub fn classes(columns: &[ArrayRef], rows: usize) -> Classes {
    let mut class_of_row = vec![0u32; rows];
    let mut count = u32::from(rows > 0);
    for column in columns {
        let column_codes = codes(column);
        let mut combined: HashMap<u64, u32> = HashMap::new();
        for (class, code) in class_of_row.iter_mut().zip(column_codes) {
            let key = (u64::from(*class) << 32) | u64::from(code);
            let next = combined.len() as u32;
            *class = *combined.entry(key).or_insert(next);
        }
        count = combined.len() as u32;
    }
    let mut sizes = vec![0u64; count as usize];
    for class in &class_of_row {
        sizes[*class as usize] += 1;
    }
    Classes {
        class_of_row,
        sizes,
    }
}

/// Checks k-anonymity; returns the summary and the first `cap` 0-based rows in classes
/// smaller than k.
pub fn check(
    names: Vec<String>,
    columns: &[ArrayRef],
    rows: usize,
    k: u64,
    cap: usize,
) -> (KAnonymity, Vec<u64>) {
    let found = classes(columns, rows);
    let mut rows_below_k = 0;
    let mut indices = Vec::new();
    for (row, class) in found.class_of_row.iter().enumerate() {
        if found.sizes[*class as usize] < k {
            rows_below_k += 1;
            if indices.len() < cap {
                indices.push(row as u64);
            }
        }
    }
    let summary = KAnonymity {
        quasi_identifiers: names,
        inferred: Vec::new(),
        l_diversity: Vec::new(),
        k,
        classes: found.sizes.len() as u64,
        smallest_class: found.sizes.iter().copied().min().unwrap_or(0),
        rows_below_k,
    };
    (summary, indices)
}

// ---- load.rs ----

/// Checks the raw CSV bytes and returns them without a UTF-8 byte-order mark.
pub fn prescan_csv<'a>(
    bytes: &'a [u8],
    origin: &str,
    options: &LoadOptions,
) -> Result<&'a [u8], LoadError> {
    let file = || origin.to_string();
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(LoadError::Encoding {
            file: file(),
            line: 1,
            hint: " (looks like UTF-16)".to_string(),
        });
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(LoadError::Empty { file: file() });
    }
    if let Some(offset) = memchr::memchr(0, body) {
        return Err(LoadError::Binary {
            file: file(),
            offset,
        });
    }
    let line_of = |offset: usize| memchr::memchr_iter(b'\n', &body[..offset]).count() + 1;
    let mut start = 0;
    for (index, end) in memchr::memchr_iter(b'\n', body)
        .chain(std::iter::once(body.len()))
        .enumerate()
    {
        if end - start > options.max_line_bytes {
            return Err(LoadError::LineTooLong {
                file: file(),
                line: index + 1,
                limit: options.max_line_bytes,
            });
        }
        start = end + 1;
    }
    if let Err(error) = std::str::from_utf8(body) {
        let offset = error.valid_up_to();
        let hint = if crate::load::looks_like_gb18030(&body[offset..]) {
            " (looks like GBK/GB18030)"
        } else {
            ""
        };
        return Err(LoadError::Encoding {
            file: file(),
            line: line_of(offset),
            hint: hint.to_string(),
        });
    }
    Ok(body)
}
