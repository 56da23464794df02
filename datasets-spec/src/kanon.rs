//! k-anonymity over the declared quasi-identifiers: rows that share all quasi-identifier
//! values form an equivalence class; a table is k-anonymous when every class has at least
//! k rows.
//!
//! Classes are found by dictionary-coding each column to dense integers and combining the
//! codes pairwise (code of the columns so far × code of the next column → a new dense
//! code), so that no per-row key is allocated and any number of columns works. The
//! dictionaries persist across chunks, so a file can be checked batch by batch.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::DataType;
use foldhash::{HashMap, HashMapExt};
use serde::{Deserialize, Serialize};

use crate::values::{TextColumn, TextMap, as_text, for_each_text};

/// The k-anonymity part of a validation report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KAnonymity {
    /// The quasi-identifier columns, in manifest order.
    pub quasi_identifiers: Vec<String>,
    /// The k checked against.
    pub k: u64,
    /// Number of equivalence classes.
    pub classes: u64,
    /// Size of the smallest class (0 for an empty table).
    pub smallest_class: u64,
    /// Rows in classes smaller than k.
    pub rows_below_k: u64,
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
