//! k-anonymity over the quasi-identifiers, declared and inferred: rows that share all
//! quasi-identifier values form an equivalence class; a table is k-anonymous when every class
//! has at least k rows, and l-diverse for a sensitive column when every class holds at least
//! l distinct values of it (else whoever knows a person's quasi-identifiers learns the
//! sensitive value: the homogeneity attack).
//!
//! Classes are found by dictionary-coding each column to dense integers and combining the
//! codes pairwise (code of the columns so far × code of the next column → a new dense
//! code), so that no per-row key is allocated and any number of columns works. The
//! dictionaries persist across chunks, so a file can be checked batch by batch.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::DataType;
use foldhash::{HashMap, HashMapExt};
use serde::{Deserialize, Serialize};

use crate::manifest::{DatePrecision, Field, FieldType, Manifest, PrivacyClass, Role};
use crate::validate::{Finding, Severity, ValidationConfig};
use crate::values::{TextColumn, TextMap, as_text, for_each_text};

/// The k-anonymity part of a validation report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KAnonymity {
    /// The quasi-identifier columns, in manifest order.
    pub quasi_identifiers: Vec<String>,
    /// Those of them the manifest does not declare, inferred from header and type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inferred: Vec<String>,
    /// l-diversity of each sensitive column present, over the same classes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub l_diversity: Vec<LDiversity>,
    /// The k checked against.
    pub k: u64,
    /// Number of equivalence classes.
    pub classes: u64,
    /// Size of the smallest class (0 for an empty table).
    pub smallest_class: u64,
    /// Rows in classes smaller than k.
    pub rows_below_k: u64,
}

/// The l-diversity of one sensitive column over the quasi-identifier classes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LDiversity {
    /// The sensitive column.
    pub column: String,
    /// The l checked against.
    pub l: u64,
    /// Fewest distinct non-missing values in a class.
    pub fewest_values: u64,
    /// Classes with fewer than l distinct values.
    pub classes_below_l: u64,
    /// Rows in those classes.
    pub rows_below_l: u64,
}

/// The quasi-identifiers the manifest leaves undeclared but the header or type gives away:
/// fields whose `privacy` is left out, that submissions may see (features, the site), and
/// whose header names a demographic ([`crate::phi::HeaderHints::demographic`]: age, sex,
/// ethnicity, residence, occupation, ...), or that are dates finer than the year (HIPAA Safe
/// Harbor keeps only years). An explicit `privacy: none` says the hospital judged otherwise.
pub fn inferred_quasi_identifiers(manifest: &Manifest) -> Vec<&Field> {
    manifest
        .schema
        .fields
        .iter()
        .filter(|field| {
            field.privacy.is_none()
                && matches!(field.role, Role::Feature | Role::Site)
                && (field.role == Role::Site
                    || crate::phi::header_hints(&field.name).demographic
                    || (field.field_type == FieldType::Date
                        && field.precision != Some(DatePrecision::Year)))
        })
        .collect()
}

/// k-anonymity and l-diversity of a table fed batch by batch: the quasi-identifier classes
/// accumulate in a [`ClassCounter`], the sensitive columns as dense codes per row.
pub(crate) struct PrivacyCheck {
    quasi: Vec<usize>,
    names: Vec<String>,
    inferred: Vec<String>,
    counter: ClassCounter,
    sensitive: Vec<SensitiveCodes>,
}

struct SensitiveCodes {
    index: usize,
    name: String,
    coder: Option<Coder>,
    codes: Vec<u32>,
}

impl PrivacyCheck {
    /// The check over the declared and inferred quasi-identifiers present in the table
    /// (`index_of` gives a column's position), `None` when there are none.
    pub(crate) fn new(
        manifest: &Manifest,
        index_of: impl Fn(&str) -> Option<usize>,
    ) -> Option<PrivacyCheck> {
        let inferred: Vec<&str> = inferred_quasi_identifiers(manifest)
            .into_iter()
            .map(|f| f.name.as_str())
            .collect();
        let quasi: Vec<(usize, &Field)> = manifest
            .schema
            .fields
            .iter()
            .filter(|f| {
                f.privacy() == PrivacyClass::QuasiIdentifier || inferred.contains(&f.name.as_str())
            })
            .filter_map(|f| index_of(&f.name).map(|index| (index, f)))
            .collect();
        if quasi.is_empty() {
            return None;
        }
        let sensitive = manifest
            .schema
            .fields
            .iter()
            .filter(|f| f.privacy() == PrivacyClass::Sensitive)
            .filter_map(|f| {
                index_of(&f.name).map(|index| SensitiveCodes {
                    index,
                    name: f.name.clone(),
                    coder: None,
                    codes: Vec::new(),
                })
            })
            .collect();
        Some(PrivacyCheck {
            quasi: quasi.iter().map(|(index, _)| *index).collect(),
            names: quasi.iter().map(|(_, f)| f.name.clone()).collect(),
            inferred: quasi
                .iter()
                .filter(|(_, f)| inferred.contains(&f.name.as_str()))
                .map(|(_, f)| f.name.clone())
                .collect(),
            counter: ClassCounter::new(quasi.len()),
            sensitive,
        })
    }

    /// The next rows, in order.
    pub(crate) fn feed(&mut self, batch: &arrow::array::RecordBatch) {
        let columns: Vec<ArrayRef> = self
            .quasi
            .iter()
            .map(|i| std::sync::Arc::clone(batch.column(*i)))
            .collect();
        self.counter.feed(&columns, batch.num_rows());
        for sensitive in &mut self.sensitive {
            let column = batch.column(sensitive.index);
            let coder = sensitive
                .coder
                .get_or_insert_with(|| Coder::for_type(column.data_type()));
            sensitive.codes.extend(coder.codes(column));
        }
    }

    /// The summary and the findings: `privacy.k_anonymity` over all quasi-identifiers,
    /// `privacy.l_diversity` per sensitive column.
    pub(crate) fn finish(self, config: &ValidationConfig) -> (KAnonymity, Vec<Finding>) {
        let classes = self.counter.finish();
        let (mut summary, indices) =
            summarise(self.names, &classes, config.k, config.max_row_numbers);
        summary.inferred = self.inferred;
        let described = describe_quasi(&summary);
        let mut findings = Vec::new();
        if summary.rows_below_k > 0 {
            findings.push(Finding {
                rule: "privacy.k_anonymity".into(),
                severity: Severity::Error,
                column: None,
                rows: summary.rows_below_k,
                row_numbers: indices.into_iter().map(|r| r + 1).collect(),
                message: format!(
                    "rows whose quasi-identifier combination ({described}) is shared by fewer than k={} rows; generalise or suppress them",
                    config.k
                ),
            });
        }
        for sensitive in self.sensitive {
            let (diversity, rows) =
                l_diversity(&classes, &sensitive.codes, config.l, config.max_row_numbers);
            if diversity.rows_below_l > 0 {
                findings.push(Finding {
                    rule: "privacy.l_diversity".into(),
                    severity: Severity::Error,
                    column: Some(sensitive.name.clone()),
                    rows: diversity.rows_below_l,
                    row_numbers: rows.into_iter().map(|r| r + 1).collect(),
                    message: format!(
                        "rows whose quasi-identifier class ({described}) holds fewer than l={} distinct values of this sensitive column: whoever knows a person's quasi-identifiers learns this value; generalise them or suppress the rows",
                        config.l,
                    ),
                });
            }
            summary.l_diversity.push(LDiversity {
                column: sensitive.name,
                ..diversity
            });
        }
        (summary, findings)
    }
}

/// The quasi-identifiers in words, the inferred ones marked.
fn describe_quasi(summary: &KAnonymity) -> String {
    summary
        .quasi_identifiers
        .iter()
        .map(|name| {
            if summary.inferred.contains(name) {
                format!("{name} (inferred: declare its `privacy` to decide)")
            } else {
                name.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Distinct non-missing sensitive values per class (code 0 is missing); the first `cap`
/// 0-based rows in classes with fewer than `l`.
fn l_diversity(classes: &Classes, codes: &[u32], l: u64, cap: usize) -> (LDiversity, Vec<u64>) {
    let mut seen: HashMap<u64, ()> = HashMap::new();
    let mut distinct = vec![0u64; classes.sizes.len()];
    for (class, code) in classes.class_of_row.iter().zip(codes) {
        if *code != 0
            && seen
                .insert((u64::from(*class) << 32) | u64::from(*code), ())
                .is_none()
        {
            distinct[*class as usize] += 1;
        }
    }
    let mut rows = Vec::new();
    let mut rows_below_l = 0;
    for (row, class) in classes.class_of_row.iter().enumerate() {
        if distinct[*class as usize] < l {
            rows_below_l += 1;
            if rows.len() < cap {
                rows.push(row as u64);
            }
        }
    }
    let summary = LDiversity {
        column: String::new(),
        l,
        fewest_values: distinct.iter().copied().min().unwrap_or(0),
        classes_below_l: distinct.iter().filter(|d| **d < l).count() as u64,
        rows_below_l,
    };
    (summary, rows)
}

/// Equivalence classes of the rows of some columns.
#[derive(Debug, Clone)]
pub struct Classes {
    /// Class of each row.
    pub class_of_row: Vec<u32>,
    /// Size of each class.
    pub sizes: Vec<u64>,
}

/// Dense codes of one column's values (nulls share code 0), kept across chunks.
enum Coder {
    /// Integers, floats and booleans, by their bits.
    Bits(HashMap<u64, u32>),
    /// Text (and any other type, cast to text).
    Text(TextMap<u32>),
}

impl Coder {
    fn for_type(data_type: &DataType) -> Coder {
        match data_type {
            DataType::Int64 | DataType::Float64 | DataType::Boolean => Coder::Bits(HashMap::new()),
            _ => Coder::Text(TextMap::default()),
        }
    }

    /// The codes of a chunk's rows.
    fn codes(&mut self, column: &ArrayRef) -> Vec<u32> {
        let rows = column.len();
        let mut out = vec![0u32; rows];
        match self {
            Coder::Bits(dictionary) => {
                macro_rules! by_bits {
                    ($array:expr, $to_bits:expr) => {{
                        let array = $array;
                        for (row, code) in out.iter_mut().enumerate() {
                            if array.is_valid(row) {
                                let next = dictionary.len() as u32 + 1;
                                *code =
                                    *dictionary.entry($to_bits(array.value(row))).or_insert(next);
                            }
                        }
                    }};
                }
                match column.data_type() {
                    DataType::Int64 => by_bits!(
                        column.as_primitive::<arrow::datatypes::Int64Type>(),
                        |v: i64| v as u64
                    ),
                    DataType::Float64 => by_bits!(
                        column.as_primitive::<arrow::datatypes::Float64Type>(),
                        |v: f64| v.to_bits()
                    ),
                    DataType::Boolean => by_bits!(column.as_boolean(), u64::from),
                    _ => {}
                }
            }
            Coder::Text(dictionary) => {
                let text = as_text(column);
                if let Some(view) = text.as_deref().and_then(TextColumn::of) {
                    for_each_text(&view, |row, cell| {
                        if let Some((key, _)) = cell {
                            let next = dictionary.len() as u32 + 1;
                            out[row] = dictionary.get_or_insert_with(key, || next);
                        }
                    });
                }
            }
        }
        out
    }
}

/// Equivalence classes of rows, fed chunk by chunk in row order. Classes are numbered in
/// order of first occurrence, so feeding a table whole or in chunks gives the same classes.
pub(crate) struct ClassCounter {
    coders: Vec<Option<Coder>>,
    /// Per column: (class over the columns before, code) → class over the columns so far.
    steps: Vec<HashMap<u64, u32>>,
    class_of_row: Vec<u32>,
}

impl ClassCounter {
    pub(crate) fn new(columns: usize) -> ClassCounter {
        ClassCounter {
            coders: (0..columns).map(|_| None).collect(),
            steps: (0..columns).map(|_| HashMap::new()).collect(),
            class_of_row: Vec::new(),
        }
    }

    /// The next `rows` rows, one array per column.
    pub(crate) fn feed(&mut self, columns: &[ArrayRef], rows: usize) {
        let mut class_of_row = vec![0u32; rows];
        for ((column, coder), step) in columns.iter().zip(&mut self.coders).zip(&mut self.steps) {
            let coder = coder.get_or_insert_with(|| Coder::for_type(column.data_type()));
            let codes = coder.codes(column);
            for (class, code) in class_of_row.iter_mut().zip(codes) {
                let key = (u64::from(*class) << 32) | u64::from(code);
                let next = step.len() as u32;
                *class = *step.entry(key).or_insert(next);
            }
        }
        self.class_of_row.extend(class_of_row);
    }

    pub(crate) fn finish(self) -> Classes {
        let count = match self.steps.last() {
            Some(step) => step.len(),
            None => usize::from(!self.class_of_row.is_empty()),
        };
        let mut sizes = vec![0u64; count];
        for class in &self.class_of_row {
            sizes[*class as usize] += 1;
        }
        Classes {
            class_of_row: self.class_of_row,
            sizes,
        }
    }
}

/// The equivalence classes of rows over the given columns (all rows one class when there
/// are no columns).
pub fn classes(columns: &[ArrayRef], rows: usize) -> Classes {
    let mut counter = ClassCounter::new(columns.len());
    counter.feed(columns, rows);
    counter.finish()
}

/// The k-anonymity summary of classes, and the first `cap` 0-based rows in classes smaller
/// than k.
pub(crate) fn summarise(
    names: Vec<String>,
    found: &Classes,
    k: u64,
    cap: usize,
) -> (KAnonymity, Vec<u64>) {
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

/// Checks k-anonymity; returns the summary and the first `cap` 0-based rows in classes
/// smaller than k.
pub fn check(
    names: Vec<String>,
    columns: &[ArrayRef],
    rows: usize,
    k: u64,
    cap: usize,
) -> (KAnonymity, Vec<u64>) {
    summarise(names, &classes(columns, rows), k, cap)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn counts_classes_and_small_rows() {
        let sex: ArrayRef = Arc::new(StringArray::from(vec![
            Some("F"),
            Some("F"),
            Some("M"),
            None,
            Some("F"),
        ]));
        let band: ArrayRef = Arc::new(Int64Array::from(vec![4, 4, 4, 4, 5]));
        let (summary, rows) = check(vec!["sex".into(), "band".into()], &[sex, band], 5, 2, 10);
        assert_eq!(summary.classes, 4);
        assert_eq!(summary.smallest_class, 1);
        assert_eq!(summary.rows_below_k, 3);
        assert_eq!(rows, vec![2, 3, 4]);
    }

    fn heart() -> Manifest {
        Manifest::from_str(crate::example::HEART_MANIFEST).expect("example manifest")
    }

    #[test]
    fn undeclared_demographics_and_dates_are_inferred() {
        let mut manifest = heart();
        let number = manifest.field("systolic_bp").expect("field").clone();
        let month = manifest.field("admission_month").expect("field").clone();
        let add = |name: &str, template: &Field, precision: Option<DatePrecision>| Field {
            name: name.into(),
            privacy: None,
            precision: precision.or(template.precision),
            ..template.clone()
        };
        manifest.schema.fields.extend([
            add("patientAge", &number, None),
            add("Gender", &number, None),
            add("home_zip", &number, None),
            add("occupation_code", &number, None),
            add("患者性别", &number, None),
            add("lab_total", &number, None),
            add("admission_date", &month, Some(DatePrecision::Day)),
            add("discharge_year", &month, Some(DatePrecision::Year)),
        ]);
        let mut declined = add("ethnicity", &number, None);
        declined.privacy = Some(PrivacyClass::None);
        manifest.schema.fields.push(declined);
        let inferred: Vec<&str> = inferred_quasi_identifiers(&manifest)
            .into_iter()
            .map(|f| f.name.as_str())
            .collect();
        // Not: declared ones (age_band, sex), admission_month and ethnicity (declared
        // `none`), clinical columns, a year.
        assert_eq!(
            inferred,
            [
                "site",
                "patientAge",
                "Gender",
                "home_zip",
                "occupation_code",
                "患者性别",
                "admission_date"
            ]
        );
    }

    #[test]
    fn a_class_with_one_sensitive_value_breaks_l_diversity() {
        use arrow::array::{BooleanArray, RecordBatch};
        let manifest = heart();
        let columns = ["sex", "diabetes"];
        let mut check =
            PrivacyCheck::new(&manifest, |name| columns.iter().position(|c| *c == name))
                .expect("sex is a quasi-identifier");
        let sex: ArrayRef = Arc::new(StringArray::from(vec!["F", "F", "F", "M", "M", "M"]));
        let diabetes: ArrayRef = Arc::new(BooleanArray::from(vec![
            Some(true),
            Some(false),
            Some(true),
            Some(true),
            Some(true),
            None,
        ]));
        let batch =
            RecordBatch::try_from_iter([("sex", sex), ("diabetes", diabetes)]).expect("batch");
        // Fed in two chunks: the same classes and codes as whole.
        check.feed(&batch.slice(0, 4));
        check.feed(&batch.slice(4, 2));
        let config = ValidationConfig {
            k: 3,
            l: 2,
            ..ValidationConfig::default()
        };
        let (summary, findings) = check.finish(&config);
        assert_eq!(summary.quasi_identifiers, ["sex"]);
        assert_eq!(summary.rows_below_k, 0);
        let diversity = &summary.l_diversity[0];
        assert_eq!(
            (
                diversity.column.as_str(),
                diversity.fewest_values,
                diversity.classes_below_l
            ),
            ("diabetes", 1, 1)
        );
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule, "privacy.l_diversity");
        assert_eq!(findings[0].row_numbers, [4, 5, 6]);
        let (summary, findings) = {
            let mut again =
                PrivacyCheck::new(&manifest, |name| columns.iter().position(|c| *c == name))
                    .expect("check");
            again.feed(&batch);
            again.finish(&ValidationConfig { l: 1, ..config })
        };
        assert!(findings.is_empty() && summary.l_diversity[0].rows_below_l == 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Class sizes agree with a naive grouping, and rows below k are exactly the rows
        /// of small groups.
        #[test]
        fn matches_naive_grouping(
            rows in proptest::collection::vec((0u8..4, proptest::option::of(0u8..3)), 0..200),
            k in 1u64..8,
        ) {
            let a: ArrayRef = Arc::new(Int64Array::from(rows.iter().map(|r| i64::from(r.0)).collect::<Vec<_>>()));
            let b: ArrayRef = Arc::new(StringArray::from(rows.iter().map(|r| r.1.map(|v| v.to_string())).collect::<Vec<_>>()));
            let (summary, _) = check(vec![], &[a, b], rows.len(), k, 0);
            let mut naive: HashMap<(u8, Option<u8>), u64> = HashMap::new();
            for row in &rows {
                *naive.entry(*row).or_default() += 1;
            }
            prop_assert_eq!(summary.classes, naive.len() as u64);
            prop_assert_eq!(summary.smallest_class, naive.values().copied().min().unwrap_or(0));
            let below: u64 = naive.values().filter(|n| **n < k).sum();
            prop_assert_eq!(summary.rows_below_k, below);
        }
    }
}
