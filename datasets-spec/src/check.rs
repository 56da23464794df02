//! The checks of one column, fed in row order one chunk at a time (the whole column, or a
//! file read batch by batch), then finished into findings. [`validate`] and
//! [`validate_file`] run one [`ColumnCheck`] per column.
//!
//! Each column is walked once: the PHI scan and the conformance checks share the pass. A
//! text column keeps a dictionary of its distinct values: each is classified once (PHI
//! detectors, parse as the declared type, bounds, categories, date precision) and every
//! further row with that value costs a hash lookup of its key (a `u128` for texts of up to
//! 12 bytes, see [`TextKey`]). The dictionary stops growing at [`CACHE_CAP`] values unless
//! it also serves to count distinct values (the PHI scan's unique-identifier test, which
//! stops once a tenth of the rows repeat); past the cap, new values are classified cell by
//! cell. Numeric columns in bounds are checked with a min/max pass.
//!
//! Findings are exactly those of a cell-by-cell walk: the same rules, row counts and first
//! row numbers (the tests compare with the previous implementation on generated tables).
//!
//! [`validate`]: crate::validate
//! [`validate_file`]: crate::validate_file

use std::collections::{BTreeMap, HashMap as StdHashMap};

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use crate::cells::{Cell, compatible, for_each_cell, prepare, text_cell};
use crate::dates::PartialDate;
use crate::manifest::{
    Bound, CategoryValue, DatePrecision, Field, FieldType, Manifest, PrivacyClass, Role,
    field_type_name,
};
use crate::phi::{PhiHit, PhiTallies, float_as_integer};
use crate::validate::{Finding, Severity, ValidationConfig, column_finding};
use crate::values::{TextColumn, TextKey, TextMap, for_each_text, is_text};

/// Distinct values of a text column classified once and remembered, beyond those needed to
/// count distinct values. Small enough for the dictionary to stay in the CPU's cache: a
/// column with more distinct values gains little from it.
#[cfg(not(test))]
pub(crate) const CACHE_CAP: usize = 4096;
/// Small in tests, so that generated tables go through both paths.
#[cfg(test)]
pub(crate) const CACHE_CAP: usize = 8;

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

impl Rows {
    /// Adds rows found apart (0-based, ascending): the count, and the first numbers of both
    /// lists in row order.
    fn merge(&mut self, count: u64, first_rows: Vec<u64>) {
        self.count += count;
        let mut merged: Vec<u64> = self
            .numbers
            .iter()
            .copied()
            .chain(first_rows.into_iter().map(|row| row + 1))
            .collect();
        merged.sort_unstable();
        merged.truncate(self.cap);
        self.numbers = merged;
    }
}

/// The rows of values pushed in increasing row order, stored as the places where they stop
/// being consecutive: nothing per row when every row has a value, as in a row id column.
struct RowsOf {
    /// (index of the value, its row) wherever the rows jump (at least at the first value).
    jumps: Vec<(usize, u64)>,
    next_row: u64,
}

impl RowsOf {
    fn new() -> RowsOf {
        RowsOf {
            jumps: Vec::new(),
            next_row: u64::MAX,
        }
    }

    #[inline]
    fn push(&mut self, index: usize, row: usize) {
        let row = row as u64;
        if row != self.next_row {
            self.jumps.push((index, row));
        }
        self.next_row = row + 1;
    }

    /// The row of each value, in order.
    fn rows(&self, values: usize) -> impl Iterator<Item = u64> + '_ {
        let mut jumps = self.jumps.iter().peekable();
        let mut row = 0;
        (0..values).map(move |index| {
            row += 1;
            if let Some((_, jump_row)) = jumps.next_if(|(at, _)| *at == index) {
                row = *jump_row;
            }
            row
        })
    }
}

/// Counts `repeated(index)` rows and keeps the first `cap` of them (0-based rows).
fn count_repeats(
    rows: impl Iterator<Item = u64>,
    mut repeated: impl FnMut(usize) -> bool,
    cap: usize,
) -> (u64, Vec<u64>) {
    let (mut count, mut first_rows) = (0, Vec::new());
    for (index, row) in rows.enumerate() {
        if repeated(index) {
            count += 1;
            if first_rows.len() < cap {
                first_rows.push(row);
            }
        }
    }
    (count, first_rows)
}

/// Values of a unique column with their rows, to find repeats at the end: one sort instead
/// of a hash-set insertion per row (which misses the cache on every row once the set is
/// millions of values large). When the values arrive in increasing order, as generated ids
/// often do, there is no repeat and no sort.
struct UniqueKeys<K> {
    keys: Vec<K>,
    rows: RowsOf,
    increasing: bool,
    /// Keys to reserve room for at the first one (the rows to come, or an upper bound).
    expected: usize,
}

impl<K: Ord + Copy + std::hash::Hash + Send> UniqueKeys<K> {
    fn new(expected: usize) -> UniqueKeys<K> {
        UniqueKeys {
            keys: Vec::new(),
            rows: RowsOf::new(),
            increasing: true,
            expected,
        }
    }

    #[inline]
    fn push(&mut self, key: K, row: usize) {
        match self.keys.last() {
            Some(last) => self.increasing &= *last < key,
            // Room for every row at once: no doubling, no copy, no slack.
            None => self.keys.reserve(self.expected.saturating_sub(row)),
        }
        self.rows.push(self.keys.len(), row);
        self.keys.push(key);
    }

    /// Rows whose value an earlier row had: how many, and the first `cap` (0-based).
    fn repeats(self, cap: usize) -> (u64, Vec<u64>) {
        if self.increasing {
            return (0, Vec::new());
        }
        let mut sorted = self.keys.clone();
        rayon::slice::ParallelSliceMut::par_sort_unstable(sorted.as_mut_slice());
        let repeated: HashSet<K> = sorted
            .windows(2)
            .filter(|pair| pair[0] == pair[1])
            .map(|pair| pair[0])
            .collect();
        drop(sorted);
        if repeated.is_empty() {
            return (0, Vec::new());
        }
        let mut seen: HashSet<K> = HashSet::with_capacity(repeated.len());
        let keys = &self.keys;
        count_repeats(
            self.rows.rows(keys.len()),
            |index| repeated.contains(&keys[index]) && !seen.insert(keys[index]),
            cap,
        )
    }
}

/// Texts longer than 12 bytes of a unique column, for the same end-of-file check: kept
/// back to back in one buffer with a hash each; the hashes are sorted and only texts with
/// equal hashes are compared. (A hash set of owned texts costs an allocation and a cache
/// miss per row, and twice the memory.)
struct UniqueLongTexts {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    hashes: Vec<u64>,
    rows: RowsOf,
    increasing: bool,
    /// Seeded per process: equal hashes only cost comparisons, and nobody can force them.
    hasher: foldhash::quality::RandomState,
}

impl UniqueLongTexts {
    fn new() -> UniqueLongTexts {
        UniqueLongTexts {
            bytes: Vec::new(),
            ends: Vec::new(),
            hashes: Vec::new(),
            rows: RowsOf::new(),
            increasing: true,
            hasher: foldhash::quality::RandomState::default(),
        }
    }

    fn text(&self, index: usize) -> &[u8] {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        &self.bytes[start..self.ends[index]]
    }

    #[inline]
    fn push(&mut self, text: &str, row: usize) {
        let index = self.ends.len();
        if index > 0 {
            self.increasing &= self.text(index - 1) < text.as_bytes();
        }
        self.rows.push(index, row);
        self.bytes.extend_from_slice(text.as_bytes());
        self.ends.push(self.bytes.len());
        self.hashes.push(std::hash::BuildHasher::hash_one(
            &self.hasher,
            text.as_bytes(),
        ));
    }

    fn repeats(self, cap: usize) -> (u64, Vec<u64>) {
        if self.increasing {
            return (0, Vec::new());
        }
        let mut by_hash: Vec<(u64, usize)> = self.hashes.iter().copied().zip(0..).collect();
        rayon::slice::ParallelSliceMut::par_sort_unstable(by_hash.as_mut_slice());
        // Within a run of equal hashes (in index order), a text equal to an earlier one
        // repeats it.
        let mut repeated = vec![false; self.ends.len()];
        for run in by_hash
            .chunk_by(|a, b| a.0 == b.0)
            .filter(|run| run.len() > 1)
        {
            for (position, (_, index)) in run.iter().enumerate() {
                let text = self.text(*index);
                repeated[*index] = run[..position]
                    .iter()
                    .any(|(_, earlier)| self.text(*earlier) == text);
            }
        }
        drop(by_hash);
        count_repeats(
            self.rows.rows(self.ends.len()),
            |index| repeated[index],
            cap,
        )
    }
}

/// A packed short text (see [`TextKey`]) rearranged so that integer order is the texts'
/// byte order (then length): generated ids then arrive in increasing order.
#[inline]
fn ordered(packed: u128) -> u128 {
    (packed >> 32).swap_bytes() | (packed & 0xFFFF_FFFF)
}

/// What conformance makes of one cell; depends on the cell's value only, so a text column
/// computes it once per distinct value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// No conformance check on this column.
    Unchecked,
    Missing,
    Bad,
    Number {
        value: f64,
        out_of_bounds: bool,
    },
    Integer {
        value: i64,
        bad_category: bool,
        out_of_bounds: bool,
    },
    Boolean(bool),
    Text {
        bad_category: bool,
    },
    Date {
        too_precise: bool,
        out_of_bounds: bool,
    },
}

/// How a text cell's earlier occurrences are known (for unique values and class counts).
enum Seen<'a> {
    /// A dictionary value: whether this is its first row. Its class is counted at the end.
    Entry { first: bool },
    /// A value outside the dictionary.
    Text(TextKey<'a>, &'a str),
    /// Not a text cell.
    NotText,
}

/// What a field declares, prepared for per-cell tests.
struct Rules<'m> {
    field: &'m Field,
    missing_values: &'m [String],
    true_texts: Vec<&'m str>,
    false_texts: Vec<&'m str>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    date_bounds: (Option<i32>, Option<i32>),
    precision: DatePrecision,
    integer_categories: Option<HashSet<i64>>,
    text_categories: Option<HashSet<&'m str>>,
    is_target: bool,
    count_classes: bool,
    unique: bool,
}

impl<'m> Rules<'m> {
    fn new(field: &'m Field, missing_values: &'m [String]) -> Rules<'m> {
        let (minimum, maximum) = field.numeric_bounds();
        let is_target = matches!(field.role, Role::Label | Role::Event);
        Rules {
            field,
            missing_values,
            true_texts: field.true_texts(),
            false_texts: field.false_texts(),
            minimum,
            maximum,
            date_bounds: (
                date_bound(&field.constraints.minimum).map(|d| d.first_day()),
                date_bound(&field.constraints.maximum).map(|d| d.last_day()),
            ),
            precision: field.precision.unwrap_or(DatePrecision::Day),
            integer_categories: field.categories.as_ref().map(|c| {
                c.iter()
                    .filter_map(|c| match c.value() {
                        CategoryValue::Integer(v) => Some(*v),
                        CategoryValue::Text(_) => None,
                    })
                    .collect()
            }),
            text_categories: field.categories.as_ref().map(|c| {
                c.iter()
                    .filter_map(|c| match c.value() {
                        CategoryValue::Text(v) => Some(v.as_str()),
                        CategoryValue::Integer(_) => None,
                    })
                    .collect()
            }),
            is_target,
            count_classes: is_target
                && (field.categories.is_some() || field.field_type == FieldType::Boolean),
            unique: field.is_unique(),
        }
    }

    /// Whether a cell with this outcome changes nothing in the [`Tally`] (see
    /// [`Tally::apply`]): in bounds, in the categories, not counted, not checked for repeats.
    fn is_inert(&self, outcome: Outcome) -> bool {
        let ranged = self.is_target || self.field.role == Role::TimeToEvent;
        match outcome {
            Outcome::Unchecked => true,
            Outcome::Missing | Outcome::Bad => false,
            Outcome::Number { out_of_bounds, .. } => !out_of_bounds && !ranged,
            Outcome::Integer {
                bad_category,
                out_of_bounds,
                ..
            } => !bad_category && !out_of_bounds && !self.unique && !self.count_classes,
            Outcome::Boolean(_) => !self.count_classes,
            Outcome::Text { bad_category } => !bad_category && !self.unique && !self.count_classes,
            Outcome::Date {
                too_precise,
                out_of_bounds,
            } => !too_precise && !out_of_bounds,
        }
    }

    #[inline]
    fn out_of(&self, value: f64) -> bool {
        value.is_nan()
            || self.minimum.is_some_and(|m| value < m)
            || self.maximum.is_some_and(|m| value > m)
    }

    #[inline]
    fn judge(&self, cell: Cell<'_>) -> Outcome {
        match cell {
            Cell::Missing => Outcome::Missing,
            Cell::Bad => Outcome::Bad,
            Cell::Number(value) => Outcome::Number {
                value,
                out_of_bounds: self.out_of(value),
            },
            Cell::Integer(value) => match &self.integer_categories {
                Some(allowed) => Outcome::Integer {
                    value,
                    bad_category: !allowed.contains(&value),
                    out_of_bounds: false,
                },
                None => Outcome::Integer {
                    value,
                    bad_category: false,
                    out_of_bounds: self.out_of(value as f64),
                },
            },
            Cell::Boolean(value) => Outcome::Boolean(value),
            Cell::Text(text) if self.field.field_type == FieldType::Date => {
                match PartialDate::parse(text) {
                    None => Outcome::Bad,
                    Some(date) => Outcome::Date {
                        too_precise: date.precision() > self.precision,
                        out_of_bounds: self.date_bounds.0.is_some_and(|min| date.last_day() < min)
                            || self.date_bounds.1.is_some_and(|max| date.first_day() > max),
                    },
                }
            }
            Cell::Text(text) => Outcome::Text {
                bad_category: self
                    .text_categories
                    .as_ref()
                    .is_some_and(|allowed| !allowed.contains(text)),
            },
        }
    }

    fn judge_text(&self, text: &str) -> Outcome {
        self.judge(text_cell(
            self.field.field_type,
            text,
            self.missing_values,
            &self.true_texts,
            &self.false_texts,
        ))
    }
}

/// Conformance counters of one column.
struct Tally {
    missing: Rows,
    bad_type: Rows,
    out_of_bounds: Rows,
    bad_category: Rows,
    too_precise: Rows,
    duplicate: Rows,
    /// Values of a unique column outside the dictionary: integers, and texts of up to 12
    /// bytes, checked for repeats at the end; longer texts as they come.
    unique_integers: UniqueKeys<i64>,
    unique_texts: UniqueKeys<u128>,
    unique_long_texts: UniqueLongTexts,
    integer_classes: HashMap<i64, u64>,
    boolean_classes: [u64; 2],
    text_classes: HashMap<String, u64>,
    numeric_range: Option<(f64, f64)>,
}

impl Tally {
    fn new(cap: usize, rows_bound: usize) -> Tally {
        Tally {
            missing: Rows::new(cap),
            bad_type: Rows::new(cap),
            out_of_bounds: Rows::new(cap),
            bad_category: Rows::new(cap),
            too_precise: Rows::new(cap),
            duplicate: Rows::new(cap),
            unique_integers: UniqueKeys::new(rows_bound),
            unique_texts: UniqueKeys::new(rows_bound),
            unique_long_texts: UniqueLongTexts::new(),
            integer_classes: HashMap::new(),
            boolean_classes: [0; 2],
            text_classes: HashMap::new(),
            numeric_range: None,
        }
    }

    #[inline]
    fn widen_range(&mut self, low: f64, high: f64) {
        self.numeric_range = Some(match self.numeric_range {
            None => (low, high),
            Some((lo, hi)) => (lo.min(low), hi.max(high)),
        });
    }

    #[inline]
    fn apply(&mut self, rules: &Rules<'_>, row: usize, outcome: Outcome, seen: Seen<'_>) {
        match outcome {
            Outcome::Unchecked => {}
            Outcome::Missing => self.missing.add(row),
            Outcome::Bad => self.bad_type.add(row),
            Outcome::Number {
                value,
                out_of_bounds,
            } => {
                if out_of_bounds {
                    self.out_of_bounds.add(row);
                }
                self.widen_range(value, value);
            }
            Outcome::Integer {
                value,
                bad_category,
                out_of_bounds,
            } => {
                if bad_category {
                    self.bad_category.add(row);
                }
                if out_of_bounds {
                    self.out_of_bounds.add(row);
                }
                if rules.unique {
                    self.unique_integers.push(value, row);
                }
                if rules.count_classes {
                    *self.integer_classes.entry(value).or_default() += 1;
                }
            }
            Outcome::Boolean(value) => {
                if rules.count_classes {
                    self.boolean_classes[usize::from(value)] += 1;
                }
            }
            Outcome::Date {
                too_precise,
                out_of_bounds,
            } => {
                if too_precise {
                    self.too_precise.add(row);
                }
                if out_of_bounds {
                    self.out_of_bounds.add(row);
                }
            }
            Outcome::Text { bad_category } => {
                if bad_category {
                    self.bad_category.add(row);
                }
                match seen {
                    Seen::Entry { first } => {
                        if rules.unique && !first {
                            self.duplicate.add(row);
                        }
                    }
                    Seen::Text(key, text) => {
                        if rules.unique {
                            match key {
                                TextKey::Inline(packed) => {
                                    self.unique_texts.push(ordered(packed), row)
                                }
                                TextKey::Long(text) => self.unique_long_texts.push(text, row),
                            }
                        }
                        if rules.count_classes {
                            match self.text_classes.get_mut(text) {
                                Some(count) => *count += 1,
                                None => {
                                    self.text_classes.insert(text.to_string(), 1);
                                }
                            }
                        }
                    }
                    Seen::NotText => {}
                }
            }
        }
    }
}

/// Schema conformance of one declared column.
pub(crate) struct Conform<'m> {
    rules: Rules<'m>,
    tally: Tally,
    min_label_class: u64,
}

impl<'m> Conform<'m> {
    /// `rows_bound`: the column's rows, or an upper bound of them.
    pub(crate) fn new(
        field: &'m Field,
        missing_values: &'m [String],
        config: &ValidationConfig,
        rows_bound: usize,
    ) -> Conform<'m> {
        Conform {
            rules: Rules::new(field, missing_values),
            tally: Tally::new(config.max_row_numbers, rows_bound),
            min_label_class: config.min_label_class,
        }
    }

    /// Conformance of a non-text (prepared) chunk, cell by cell, or by min/max when that
    /// settles it.
    fn feed_cells(&mut self, array: &dyn Array, first_row: usize) {
        if self.numbers_in_bounds(array) {
            return;
        }
        let rules = &self.rules;
        let tally = &mut self.tally;
        for_each_cell(rules.field, array, rules.missing_values, |row, cell| {
            let seen = match cell {
                Cell::Text(text) => Seen::Text(TextKey::of(text), text),
                _ => Seen::NotText,
            };
            tally.apply(rules, first_row + row, rules.judge(cell), seen);
        });
    }

    /// Whether a chunk without nulls is settled by its minimum and maximum: a `number`
    /// column of floats or a plain `integer` column of integers, all within bounds (then no
    /// row is reported, and only the range is kept). Anything else is walked cell by cell.
    fn numbers_in_bounds(&mut self, array: &dyn Array) -> bool {
        if array.null_count() != 0 || array.is_empty() {
            return array.is_empty();
        }
        let rules = &self.rules;
        match (rules.field.field_type, array.data_type()) {
            (FieldType::Number, DataType::Float64) => {
                let values = array.as_primitive::<Float64Type>().values();
                let (low, high, nan) = min_max(values);
                if nan || rules.out_of(low) || rules.out_of(high) {
                    return false;
                }
                self.tally.widen_range(low, high);
                true
            }
            (FieldType::Integer, DataType::Int64)
                if rules.integer_categories.is_none() && !rules.unique && !rules.count_classes =>
            {
                let values = array.as_primitive::<Int64Type>().values();
                let low = values.iter().copied().min().unwrap_or_default();
                let high = values.iter().copied().max().unwrap_or_default();
                // `as f64` is monotonic: the extremes in bounds put every value in bounds.
                !(rules.out_of(low as f64) || rules.out_of(high as f64))
            }
            _ => false,
        }
    }

    /// The findings, and the class counts when the column is a categorical target.
    /// `dictionary_classes` are the counts of text classes the dictionary kept.
    fn finish<'t>(
        self,
        dictionary_classes: impl Iterator<Item = (&'t str, u64)>,
    ) -> (Vec<Finding>, Option<BTreeMap<String, u64>>) {
        let Conform {
            rules,
            mut tally,
            min_label_class,
        } = self;
        let cap = tally.duplicate.cap;
        for unique in [
            std::mem::replace(&mut tally.unique_integers, UniqueKeys::new(0)).repeats(cap),
            std::mem::replace(&mut tally.unique_texts, UniqueKeys::new(0)).repeats(cap),
            std::mem::replace(&mut tally.unique_long_texts, UniqueLongTexts::new()).repeats(cap),
        ] {
            if unique.0 > 0 {
                tally.duplicate.merge(unique.0, unique.1);
            }
        }
        let field = rules.field;
        let name = field.name.as_str();
        let type_name = field_type_name(field.field_type);
        let mut findings = Vec::new();
        let required = field.is_required();
        let bounds_text = bounds_text(field);
        let duplicate_rule = if field.role == Role::RowId {
            "row_id.duplicate"
        } else {
            "schema.unique"
        };
        let is_target = rules.is_target;
        let pending = [
            tally
                .missing
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
            tally.bad_type.finding(
                "schema.type",
                Severity::Error,
                name,
                format!("value is not a valid `{type_name}`"),
            ),
            tally.out_of_bounds.finding(
                "schema.bounds",
                Severity::Error,
                name,
                format!("value outside the declared bounds {bounds_text}"),
            ),
            tally.bad_category.finding(
                "schema.category",
                Severity::Error,
                name,
                "value is not one of the declared categories".into(),
            ),
            tally.too_precise.finding(
                "schema.date_precision",
                Severity::Error,
                name,
                format!(
                    "date is more precise than the declared precision `{}`",
                    precision_name(rules.precision)
                ),
            ),
            tally.duplicate.finding(
                duplicate_rule,
                Severity::Error,
                name,
                "value repeats an earlier row's".into(),
            ),
        ];
        findings.extend(pending.into_iter().flatten());
        let mut label_counts = None;
        if is_target || field.role == Role::TimeToEvent {
            if rules.count_classes {
                let mut classes: StdHashMap<String, u64> = StdHashMap::new();
                for (value, count) in tally.integer_classes {
                    *classes.entry(value.to_string()).or_default() += count;
                }
                for (value, count) in [false, true].into_iter().zip(tally.boolean_classes) {
                    if count > 0 {
                        *classes.entry(value.to_string()).or_default() += count;
                    }
                }
                for (text, count) in tally.text_classes {
                    *classes.entry(text).or_default() += count;
                }
                for (text, count) in dictionary_classes {
                    *classes.entry(text.to_string()).or_default() += count;
                }
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
                if classes.values().any(|n| *n < min_label_class) {
                    findings.push(column_finding(
                        "label.rare_class",
                        Severity::Warning,
                        Some(name),
                        format!("a target class has fewer than {min_label_class} rows"),
                    ));
                }
                label_counts = Some(classes.into_iter().collect());
            } else if let Some((lo, hi)) = tally.numeric_range
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
}

/// One distinct text value of a column, classified.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// PHI bits (see [`PhiTallies::text_bits`]).
    bits: u32,
    outcome: Outcome,
    /// Nothing to record for a row with this value beyond counting it.
    inert: bool,
    /// Rows with this value so far.
    count: u64,
}

/// The PHI scan and conformance of a text column (either may be absent), through the
/// dictionary of its distinct values.
pub(crate) struct TextCheck<'m> {
    phi: Option<PhiTallies>,
    conform: Option<Conform<'m>>,
    dictionary: TextMap<u32>,
    entries: Vec<Entry>,
    /// The first 100 distinct values (the unique-identifier test looks at them).
    sample: Vec<Box<str>>,
    /// The text of every entry, kept when classes are counted.
    texts: Vec<Box<str>>,
    /// Whether every distinct value is still being counted (by the dictionary).
    counting_distinct: bool,
    duplicates: u64,
    /// The column's rows, or more: counting stops once more than a tenth of them repeat.
    rows_bound: u64,
    /// Name-shaped values and full dates met outside the dictionary, each noted once (the
    /// two never share a value: names have no digits).
    outside_noted: TextMap<()>,
    /// Values remembered beyond those counted: none for a unique column (the row id), whose
    /// values do not repeat.
    cache_cap: usize,
    /// The first [`FEW`] short values and their indices, scanned before hashing; `few_len`
    /// is past `FEW` once there are more (or a long one).
    few: [u128; FEW],
    few_index: [u32; FEW],
    few_len: usize,
}

/// Distinct values looked up by a linear scan rather than a hash.
const FEW: usize = 8;

impl<'m> TextCheck<'m> {
    /// A check of a text column. `count_distinct` is for the unique-identifier test (not
    /// the row id); `rows_bound` is the column's length or an upper bound of it.
    pub(crate) fn new(
        phi: Option<PhiTallies>,
        count_distinct: bool,
        conform: Option<Conform<'m>>,
        rows_bound: usize,
    ) -> TextCheck<'m> {
        TextCheck {
            cache_cap: if conform.as_ref().is_some_and(|c| c.rules.unique) {
                0
            } else {
                CACHE_CAP
            },
            phi,
            conform,
            dictionary: TextMap::default(),
            entries: Vec::new(),
            sample: Vec::new(),
            texts: Vec::new(),
            counting_distinct: count_distinct,
            duplicates: 0,
            rows_bound: rows_bound as u64,
            outside_noted: TextMap::default(),
            few: [0; FEW],
            few_index: [0; FEW],
            few_len: 0,
        }
    }

    /// The next rows of the column, the first being `first_row` (0-based).
    pub(crate) fn feed(&mut self, column: &TextColumn<'_>, first_row: usize) {
        for_each_text(column, |index, cell| match cell {
            None => {
                if let Some(conform) = &mut self.conform {
                    conform.tally.apply(
                        &conform.rules,
                        first_row + index,
                        Outcome::Missing,
                        Seen::NotText,
                    );
                }
            }
            Some((key, text)) => self.value(first_row + index, key, text),
        });
    }

    /// The dictionary index of a key: by a linear scan while the column has at most
    /// [`FEW`] short distinct values (categories, flags: most text columns), else hashed.
    #[inline]
    fn look_up(&self, key: TextKey<'_>) -> Option<u32> {
        if let TextKey::Inline(packed) = key
            && self.few_len <= FEW
        {
            return self.few[..self.few_len]
                .iter()
                .position(|known| *known == packed)
                .map(|position| self.few_index[position]);
        }
        self.dictionary.get(key).copied()
    }

    fn remember(&mut self, key: TextKey<'_>, index: u32) {
        self.dictionary.insert(key, index);
        match key {
            TextKey::Inline(packed) if self.few_len < FEW => {
                self.few[self.few_len] = packed;
                self.few_index[self.few_len] = index;
                self.few_len += 1;
            }
            // One value too many (or a long one): hash from now on.
            _ => self.few_len = FEW + 1,
        }
    }

    #[inline]
    fn value<'a>(&mut self, row: usize, key: TextKey<'a>, text: &dyn Fn() -> &'a str) {
        let index = match self.look_up(key) {
            Some(index) => {
                if self.counting_distinct {
                    self.duplicates += 1;
                    // More than a tenth repeated: not an identifier column; stop counting.
                    if self.duplicates * 10 > self.rows_bound {
                        self.counting_distinct = false;
                    }
                }
                Some(index as usize)
            }
            None if self.counting_distinct || self.entries.len() < self.cache_cap => {
                let text = text();
                let index = self.entries.len();
                self.entries.push(self.classify(text));
                self.remember(key, index as u32);
                if self.sample.len() < 100 {
                    self.sample.push(text.into());
                }
                if self.conform.as_ref().is_some_and(|c| c.rules.count_classes) {
                    self.texts.push(text.into());
                }
                Some(index)
            }
            None => None,
        };
        match index {
            Some(index) => {
                let entry = &mut self.entries[index];
                let first = entry.count == 0;
                entry.count += 1;
                let entry = *entry;
                if entry.inert {
                    if let Some(phi) = &mut self.phi {
                        phi.record_text(row, 0);
                    }
                    return;
                }
                if let Some(phi) = &mut self.phi {
                    phi.record_text(row, entry.bits);
                    if first && PhiTallies::is_name(entry.bits) && phi.wants_name_values() {
                        phi.count_name_value();
                    }
                    if first && phi.wants_date_value(entry.bits) {
                        phi.count_date_value(text());
                    }
                }
                if let Some(conform) = &mut self.conform {
                    conform
                        .tally
                        .apply(&conform.rules, row, entry.outcome, Seen::Entry { first });
                }
            }
            None => {
                let text = text();
                let entry = self.classify(text);
                if let Some(phi) = &mut self.phi {
                    phi.record_text(row, entry.bits);
                    if PhiTallies::is_name(entry.bits)
                        && phi.wants_name_values()
                        && self.outside_noted.insert(key, ())
                    {
                        phi.count_name_value();
                    }
                    if phi.wants_date_value(entry.bits) && self.outside_noted.insert(key, ()) {
                        phi.count_date_value(text);
                    }
                }
                if let Some(conform) = &mut self.conform {
                    conform
                        .tally
                        .apply(&conform.rules, row, entry.outcome, Seen::Text(key, text));
                }
            }
        }
    }

    fn classify(&self, text: &str) -> Entry {
        let bits = self.phi.as_ref().map_or(0, |phi| phi.text_bits(text));
        let outcome = self
            .conform
            .as_ref()
            .map_or(Outcome::Unchecked, |c| c.rules.judge_text(text));
        Entry {
            bits,
            outcome,
            inert: bits == 0
                && self
                    .conform
                    .as_ref()
                    .is_none_or(|c| c.rules.is_inert(outcome)),
            count: 0,
        }
    }

    /// PHI hits, and conformance findings with class counts.
    #[allow(clippy::type_complexity)]
    pub(crate) fn finish(
        self,
    ) -> (
        Vec<PhiHit>,
        Option<(Vec<Finding>, Option<BTreeMap<String, u64>>)>,
    ) {
        let distinct = self
            .counting_distinct
            .then_some((self.entries.len() as u64, self.sample.as_slice()));
        let hits = self
            .phi
            .map(|phi| phi.text_hits(distinct))
            .unwrap_or_default();
        let entries = &self.entries;
        let conformance = self.conform.map(|conform| {
            conform.finish(
                self.texts
                    .iter()
                    .zip(entries)
                    .filter(|(_, entry)| {
                        entry.count > 0 && matches!(entry.outcome, Outcome::Text { .. })
                    })
                    .map(|(text, entry)| (text.as_ref(), entry.count)),
            )
        });
        (hits, conformance)
    }
}

/// How the PHI scan reads a non-text column.
enum NumberScan {
    Integers,
    Floats,
    /// Other integer widths, read as 64-bit; `failed` when a chunk could not be.
    CastIntegers {
        failed: bool,
    },
    /// Typed dates: each present value is a full date when `days` (see
    /// [`crate::phi::typed_dates_are_days`]).
    Dates {
        days: bool,
    },
    /// Booleans, ...: the header only.
    HeaderOnly,
}

/// Conformance of a non-text column.
enum OtherConform<'m> {
    /// Not declared (or a direct identifier): no conformance.
    None,
    /// The storage type cannot hold the declared type.
    Incompatible(Finding),
    /// Cell by cell.
    Cells(Box<Conform<'m>>),
    /// Declared `string` or `date`: the cells as text.
    AsText(Box<TextCheck<'m>>),
}

enum Kind<'m> {
    Text(Box<TextCheck<'m>>),
    Other {
        phi: PhiTallies,
        scan: NumberScan,
        conform: OtherConform<'m>,
    },
}

/// Every check of one column.
pub(crate) struct ColumnCheck<'m> {
    name: String,
    field: Option<&'m Field>,
    kind: Kind<'m>,
}

impl<'m> ColumnCheck<'m> {
    /// The checks of the column `name` stored as `data_type`; `rows_bound` is the table's
    /// number of rows or an upper bound of it.
    pub(crate) fn new(
        manifest: &'m Manifest,
        name: &str,
        data_type: &DataType,
        is_row_id: bool,
        config: &ValidationConfig,
        rows_bound: usize,
    ) -> ColumnCheck<'m> {
        let cap = config.max_row_numbers;
        let field = manifest
            .field(name)
            .filter(|f| f.privacy() != PrivacyClass::DirectIdentifier);
        let conform =
            field.map(|f| Conform::new(f, &manifest.schema.missing_values, config, rows_bound));
        let kind = if is_text(data_type) {
            Kind::Text(Box::new(TextCheck::new(
                Some(PhiTallies::new(name, cap)),
                !is_row_id,
                conform,
                rows_bound,
            )))
        } else {
            let scan = match data_type {
                DataType::Int64 => NumberScan::Integers,
                DataType::Float64 => NumberScan::Floats,
                data_type if data_type.is_integer() => NumberScan::CastIntegers { failed: false },
                data_type if crate::phi::is_date_type(data_type) => NumberScan::Dates {
                    days: crate::phi::typed_dates_are_days(manifest, name),
                },
                _ => NumberScan::HeaderOnly,
            };
            let conform = match (field, conform) {
                (Some(field), _) if !compatible(field.field_type, data_type) => {
                    OtherConform::Incompatible(column_finding(
                        "schema.type",
                        Severity::Error,
                        Some(name),
                        format!(
                            "column is stored as {data_type} and cannot hold `{}` values",
                            field_type_name(field.field_type)
                        ),
                    ))
                }
                (Some(field), Some(conform))
                    if matches!(field.field_type, FieldType::String | FieldType::Date) =>
                {
                    OtherConform::AsText(Box::new(TextCheck::new(
                        None,
                        false,
                        Some(conform),
                        rows_bound,
                    )))
                }
                (_, Some(conform)) => OtherConform::Cells(Box::new(conform)),
                _ => OtherConform::None,
            };
            Kind::Other {
                phi: PhiTallies::new(name, cap),
                scan,
                conform,
            }
        };
        ColumnCheck {
            name: name.to_string(),
            field,
            kind,
        }
    }

    /// The column's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The next chunk of the column, its first row being `first_row` (0-based).
    pub(crate) fn feed(&mut self, column: &ArrayRef, first_row: usize) {
        match &mut self.kind {
            Kind::Text(check) => {
                if let Some(text) = TextColumn::of(column.as_ref()) {
                    check.feed(&text, first_row);
                }
            }
            Kind::Other { phi, scan, conform } => {
                scan_numbers(phi, scan, column, first_row);
                match conform {
                    OtherConform::None | OtherConform::Incompatible(_) => {}
                    OtherConform::Cells(conform) => conform.feed_cells(column.as_ref(), first_row),
                    OtherConform::AsText(check) => {
                        let Some(field) = self.field else { return };
                        let prepared = prepare(field, column);
                        match TextColumn::of(prepared.as_ref()) {
                            Some(text) => check.feed(&text, first_row),
                            None => {
                                if let Some(conform) = &mut check.conform {
                                    conform.feed_cells(prepared.as_ref(), first_row);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The column's findings (PHI first, then conformance) and its class counts when it is
    /// a categorical target.
    pub(crate) fn finish(self) -> (Vec<Finding>, Option<BTreeMap<String, u64>>) {
        let (hits, conformance) = match self.kind {
            Kind::Text(check) => check.finish(),
            Kind::Other { phi, scan, conform } => {
                let hits = match scan {
                    NumberScan::Integers
                    | NumberScan::Floats
                    | NumberScan::CastIntegers { failed: false } => phi.integer_hits(),
                    NumberScan::CastIntegers { failed: true } | NumberScan::HeaderOnly => {
                        phi.header_hits()
                    }
                    NumberScan::Dates { .. } => phi.date_hits(),
                };
                let conformance = match conform {
                    OtherConform::None => None,
                    OtherConform::Incompatible(finding) => Some((vec![finding], None)),
                    OtherConform::Cells(conform) => Some(conform.finish(std::iter::empty())),
                    OtherConform::AsText(check) => check.finish().1,
                };
                (hits, conformance)
            }
        };
        let name = self.name;
        let mut findings: Vec<Finding> = hits
            .into_iter()
            .map(|hit| Finding {
                rule: hit.kind.rule().to_string(),
                severity: if hit.kind.is_error() {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                column: Some(name.clone()),
                rows: hit.rows,
                row_numbers: hit.row_indices.into_iter().map(|r| r + 1).collect(),
                message: hit.kind.describe().to_string(),
            })
            .collect();
        let mut label_counts = None;
        if let Some((conformance, counts)) = conformance {
            findings.extend(conformance);
            label_counts = counts;
        }
        (findings, label_counts)
    }
}

/// The PHI scan of a numeric chunk. Only values of 10¹⁰ and more can be identifiers unless
/// the header says age or postcode, so one comparison pass settles most chunks.
fn scan_numbers(phi: &mut PhiTallies, scan: &mut NumberScan, column: &ArrayRef, first_row: usize) {
    match scan {
        NumberScan::Integers => scan_integers(phi, column.as_primitive::<Int64Type>(), first_row),
        NumberScan::Floats => scan_floats(phi, column.as_primitive::<Float64Type>(), first_row),
        NumberScan::CastIntegers { failed } => {
            if *failed {
                return;
            }
            match arrow::compute::cast(column, &DataType::Int64) {
                Ok(cast) => scan_integers(phi, cast.as_primitive::<Int64Type>(), first_row),
                Err(_) => *failed = true,
            }
        }
        NumberScan::Dates { days: true } => {
            for (row, year) in crate::phi::typed_date_years(column.as_ref())
                .into_iter()
                .enumerate()
            {
                if let Some(year) = year {
                    phi.record_typed_date(first_row + row, year);
                }
            }
        }
        NumberScan::Dates { days: false } | NumberScan::HeaderOnly => {}
    }
}

fn scan_integers(phi: &mut PhiTallies, values: &Int64Array, first_row: usize) {
    // Null slots hold arbitrary values: the quick test may send a chunk to the exact walk
    // needlessly, never the other way round.
    if !phi.integer_hints() && values.values().iter().all(|v| *v < 10_000_000_000) {
        return;
    }
    for (index, value) in values.iter().enumerate() {
        if let Some(value) = value {
            phi.record_integer(first_row + index, value);
        }
    }
}

fn scan_floats(phi: &mut PhiTallies, values: &Float64Array, first_row: usize) {
    if !phi.integer_hints() && values.values().iter().all(|v| v.is_nan() || *v < 1e10) {
        return;
    }
    for (index, value) in values.iter().enumerate() {
        if let Some(value) = value.and_then(float_as_integer) {
            phi.record_integer(first_row + index, value);
        }
    }
}

/// Minimum and maximum of floats, and whether any is NaN. Written with plain comparisons
/// on independent lanes so that it compiles to SIMD min/max (NaNs fall out of both and are
/// reported apart).
fn min_max(values: &[f64]) -> (f64, f64, bool) {
    const LANES: usize = 8;
    let mut low = [f64::INFINITY; LANES];
    let mut high = [f64::NEG_INFINITY; LANES];
    let mut nan = [false; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for lane in 0..LANES {
            let value = chunk[lane];
            low[lane] = if value < low[lane] { value } else { low[lane] };
            high[lane] = if value > high[lane] {
                value
            } else {
                high[lane]
            };
            nan[lane] |= value.is_nan();
        }
    }
    for (lane, value) in rest.iter().enumerate() {
        low[lane] = if *value < low[lane] {
            *value
        } else {
            low[lane]
        };
        high[lane] = if *value > high[lane] {
            *value
        } else {
            high[lane]
        };
        nan[lane] |= value.is_nan();
    }
    (
        low.into_iter().fold(f64::INFINITY, f64::min),
        high.into_iter().fold(f64::NEG_INFINITY, f64::max),
        nan.contains(&true),
    )
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::reference;
    use crate::testgen::generated_case;
    use crate::validate::{TableCheck, ValidationConfig, validate};

    fn config(seed: u64) -> ValidationConfig {
        ValidationConfig {
            k: 1 + seed % 6,
            l: 1 + seed % 3,
            max_row_numbers: [0, 3, 20][(seed / 7 % 3) as usize],
            min_label_class: 10,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The single-pass checks report exactly what the previous two-pass implementation
        /// reported: rules, severities, row counts, row numbers, k-anonymity, label counts.
        #[test]
        fn single_pass_matches_the_previous_implementation(seed in any::<u64>()) {
            let (manifest, batch) = generated_case(seed);
            let config = config(seed);
            let new = validate(&manifest, &batch, &config);
            let old = reference::validate(&manifest, &batch, &config);
            prop_assert_eq!(new, old);
        }

        /// Feeding the table in slices (as a file read batch by batch is), with only an
        /// upper bound of its rows known in advance, gives the same report.
        #[test]
        fn batches_give_the_same_report(
            seed in any::<u64>(),
            cuts in proptest::collection::vec(0usize..100, 0..6),
            slack in 0usize..50,
        ) {
            let (manifest, batch) = generated_case(seed);
            let config = config(seed);
            let whole = validate(&manifest, &batch, &config);
            let rows = batch.num_rows();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(rows)).collect();
            cuts.extend([0, rows]);
            cuts.sort_unstable();
            let mut check = TableCheck::new(&manifest, &batch.schema(), &config, rows + slack);
            for window in cuts.windows(2) {
                check.feed(&batch.slice(window[0], window[1] - window[0]));
            }
            prop_assert_eq!(check.finish(), whole);
        }

        /// k-anonymity classes are numbered as before.
        #[test]
        fn classes_match_the_previous_implementation(seed in any::<u64>()) {
            let (_, batch) = generated_case(seed);
            let columns: Vec<_> = batch.columns().iter().take(1 + (seed % 4) as usize).cloned().collect();
            let new = crate::kanon::classes(&columns, batch.num_rows());
            let old = reference::classes(&columns, batch.num_rows());
            prop_assert_eq!(new.class_of_row, old.class_of_row);
            prop_assert_eq!(new.sizes, old.sizes);
        }

        /// The lane-wise minimum and maximum are the plain ones.
        #[test]
        fn min_max_is_the_plain_fold(values in proptest::collection::vec(
            prop_oneof![8 => -1e6f64..1e6, 1 => Just(f64::NAN), 1 => Just(-0.0f64)],
            0..40,
        )) {
            let (low, high, nan) = super::min_max(&values);
            let plain_low = values.iter().copied().fold(f64::INFINITY, f64::min);
            let plain_high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            prop_assert_eq!(low, plain_low);
            prop_assert_eq!(high, plain_high);
            prop_assert_eq!(nan, values.iter().any(|v| v.is_nan()));
        }

        /// The cell classifier's shortcuts change nothing.
        #[test]
        fn classify_cell_matches_the_previous_implementation(
            text in "\\PC{0,40}",
            digits in "[0-9 ./-]{0,24}",
            code in "[A-Z]{0,2}[0-9]{0,20}[a-z]{0,2}",
        ) {
            for cell in [text.as_str(), digits.as_str(), code.as_str()] {
                prop_assert_eq!(crate::phi::classify_cell(cell), reference::classify_cell(cell));
            }
        }
    }
}
