//! Binning by the manifest's declarations only.
//!
//! Every column the synthesizer models is turned into a small set of levels: equal-width
//! bins over the declared range for numbers, integers and dates, the declared categories
//! for categorical columns (the site included), `false`/`true` for booleans, plus one
//! "missing" level for a column that may be empty. The bins are a function of the
//! manifest and [`SynthConfig::bins`] alone, never of the data: bin edges taken from the
//! data (quantiles, the observed minimum, the categories that occur) would themselves be a
//! release about the rows, outside any privacy accounting. With declared bins the only
//! data-dependent outputs are the noisy counts, which OpenDP accounts for.

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use medarena_datasets_spec::dates::{PartialDate, civil_from_days, days_from_civil};
use medarena_datasets_spec::manifest::{
    Bound, CategoryValue, DatePrecision, Field, FieldType, Role,
};
use medarena_datasets_spec::{Manifest, typed::typed_fields};
use serde::{Deserialize, Serialize};

use crate::{SynthConfig, SynthError};

/// How one column's values map to levels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum BinKind {
    /// `number`: `bins` equal-width bins over `[lo, hi]`.
    Number {
        /// Declared minimum.
        lo: f64,
        /// Declared maximum.
        hi: f64,
        /// Number of bins.
        bins: usize,
    },
    /// `integer` without categories: `bins` bins of (nearly) equal integer width over
    /// `[lo, hi]` (one per integer when the range is narrower than the bin count).
    Integer {
        /// Declared minimum.
        lo: i64,
        /// Declared maximum.
        hi: i64,
        /// Number of bins.
        bins: usize,
    },
    /// `date`: bins over whole units of the declared precision (years, months or days,
    /// numbered from an epoch) between the declared bounds (else the collection period).
    Date {
        /// First unit.
        first: i64,
        /// Last unit.
        last: i64,
        /// Number of bins.
        bins: usize,
        /// The precision the units are counted in.
        precision: DatePrecision,
    },
    /// Declared categories (categorical `string`/`integer` columns, the site).
    Levels {
        /// The categories in declaration order.
        values: Vec<CategoryValue>,
    },
    /// `boolean`: level 0 is `false`, level 1 `true`.
    Boolean,
}

/// The levels of one modelled column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnBins {
    /// Column name.
    pub name: String,
    /// How values map to levels.
    pub kind: BinKind,
    /// Whether the last level stands for a missing value (columns that are not required).
    pub missing: bool,
}

/// Splits the integer range `[0, span)` into `bins` parts: part `i` is
/// `[i·span/bins, (i+1)·span/bins)`.
fn part_of(offset: i64, span: i64, bins: usize) -> usize {
    let bins = bins as i128;
    let index = (i128::from(offset.clamp(0, span - 1)) * bins) / i128::from(span);
    index.clamp(0, bins - 1) as usize
}

/// The integer range `[start, end]` (offsets from the lower bound) of part `index`.
pub(crate) fn part_range(index: usize, span: i64, bins: usize) -> (i64, i64) {
    let (index, bins, span) = (index as i128, bins as i128, i128::from(span));
    // Smallest offset o with o·bins/span ≥ index, i.e. ceil(index·span/bins).
    let start = (index * span + bins - 1) / bins;
    let end = ((index + 1) * span + bins - 1) / bins - 1;
    (start as i64, end.max(start) as i64)
}

/// A date's unit number at a precision (years, months since year 0, or days).
pub(crate) fn date_unit(date: &PartialDate, precision: DatePrecision) -> i64 {
    day_unit(date.first_day(), precision)
}

/// The unit number of a day at a precision.
pub(crate) fn day_unit(day: i32, precision: DatePrecision) -> i64 {
    let (year, month, _) = civil_from_days(day);
    match precision {
        DatePrecision::Year => i64::from(year),
        DatePrecision::Month => i64::from(year) * 12 + i64::from(month) - 1,
        DatePrecision::Day => i64::from(day),
    }
}

/// The first day of a unit, as a day number.
pub(crate) fn unit_first_day(unit: i64, precision: DatePrecision) -> i32 {
    match precision {
        DatePrecision::Year => days_from_civil(unit as i32, 1, 1),
        DatePrecision::Month => days_from_civil(
            unit.div_euclid(12) as i32,
            (unit.rem_euclid(12) + 1) as u8,
            1,
        ),
        DatePrecision::Day => unit as i32,
    }
}

impl ColumnBins {
    /// Levels for values, without the missing level.
    pub fn value_levels(&self) -> usize {
        match &self.kind {
            BinKind::Number { bins, .. }
            | BinKind::Integer { bins, .. }
            | BinKind::Date { bins, .. } => *bins,
            BinKind::Levels { values } => values.len(),
            BinKind::Boolean => 2,
        }
    }

    /// All levels, the missing one included.
    pub fn levels(&self) -> usize {
        self.value_levels() + usize::from(self.missing)
    }

    /// The missing level, if the column has one.
    pub fn missing_level(&self) -> Option<usize> {
        self.missing.then(|| self.value_levels())
    }

    fn from_field(
        manifest: &Manifest,
        field: &Field,
        config: &SynthConfig,
    ) -> Result<ColumnBins, SynthError> {
        let unbinnable = |reason: &str| SynthError::Unbinnable {
            column: field.name.clone(),
            reason: reason.to_string(),
        };
        let bins = config.bins.max(1);
        let kind = if let Some(categories) = &field.categories {
            if categories.is_empty() {
                return Err(unbinnable("the category list is empty"));
            }
            BinKind::Levels {
                values: categories.iter().map(|c| c.value().clone()).collect(),
            }
        } else {
            match field.field_type {
                FieldType::Boolean => BinKind::Boolean,
                FieldType::Number => {
                    let (Some(lo), Some(hi)) = field.numeric_bounds() else {
                        return Err(unbinnable("a number needs a declared minimum and maximum"));
                    };
                    if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                        return Err(unbinnable("the declared bounds are not a finite range"));
                    }
                    let bins = if lo == hi { 1 } else { bins };
                    BinKind::Number { lo, hi, bins }
                }
                FieldType::Integer => {
                    let (Some(lo), Some(hi)) = field.numeric_bounds() else {
                        return Err(unbinnable(
                            "an integer needs categories or a declared minimum and maximum",
                        ));
                    };
                    let (lo, hi) = (lo.ceil(), hi.floor());
                    if !(lo.is_finite() && hi.is_finite() && lo <= hi && hi - lo < 1e15) {
                        return Err(unbinnable("the declared bounds are not a finite range"));
                    }
                    let (lo, hi) = (lo as i64, hi as i64);
                    let span = (hi - lo + 1) as u64;
                    BinKind::Integer {
                        lo,
                        hi,
                        bins: bins.min(span as usize),
                    }
                }
                FieldType::Date => {
                    let precision = field.precision.unwrap_or(DatePrecision::Day);
                    let period = &manifest.provenance.collection_period;
                    let bound = |b: &Option<Bound>, fallback: &str| match b {
                        Some(Bound::Date(text)) => PartialDate::parse(text),
                        _ => PartialDate::parse(fallback),
                    };
                    let (Some(first), Some(last)) = (
                        bound(&field.constraints.minimum, &period.start),
                        bound(&field.constraints.maximum, &period.end),
                    ) else {
                        return Err(unbinnable("the date bounds do not parse"));
                    };
                    let first = date_unit(&first, precision);
                    // The last unit the maximum covers (a month bound covers its last day).
                    let last = day_unit(last.last_day(), precision);
                    if last < first {
                        return Err(unbinnable("the date bounds are reversed"));
                    }
                    let span = (last - first + 1) as u64;
                    BinKind::Date {
                        first,
                        last,
                        bins: bins.min(span as usize),
                        precision,
                    }
                }
                FieldType::String if field.role == Role::Site => match &config.sites {
                    Some(sites) if !sites.is_empty() => BinKind::Levels {
                        values: sites.iter().cloned().map(CategoryValue::Text).collect(),
                    },
                    _ => {
                        return Err(unbinnable(
                            "a site column needs declared categories or `SynthConfig::sites`",
                        ));
                    }
                },
                FieldType::String => {
                    return Err(unbinnable("a string column needs declared categories"));
                }
            }
        };
        Ok(ColumnBins {
            name: field.name.clone(),
            kind,
            missing: !field.is_required(),
        })
    }

    /// Levels of every row of an Arrow column in the typed form. Values outside the
    /// declared range are clamped into the edge bins (as DP clamping does); a value that
    /// is not a declared category, or a null in a column without a missing level, is
    /// refused without naming the value.
    pub fn encode(&self, column: &ArrayRef) -> Result<Vec<u32>, SynthError> {
        let bad = |what: &str| SynthError::BadColumn {
            column: self.name.clone(),
            reason: what.to_string(),
        };
        let rows = column.len();
        let mut out = Vec::with_capacity(rows);
        let missing = |out: &mut Vec<u32>| -> Result<(), SynthError> {
            match self.missing_level() {
                Some(level) => {
                    out.push(level as u32);
                    Ok(())
                }
                None => Err(bad("a required column holds a missing value")),
            }
        };
        match &self.kind {
            BinKind::Number { lo, hi, bins } => {
                let array = column
                    .as_primitive_opt::<Float64Type>()
                    .ok_or_else(|| bad("expected Float64"))?;
                for value in array.iter() {
                    match value {
                        Some(v) if !v.is_nan() => {
                            let width = hi - lo;
                            let index = if width > 0.0 {
                                ((v - lo) / width * *bins as f64).floor()
                            } else {
                                0.0
                            };
                            out.push(index.clamp(0.0, (*bins - 1) as f64) as u32);
                        }
                        _ => missing(&mut out)?,
                    }
                }
            }
            BinKind::Integer { lo, hi, bins } => {
                let array = column
                    .as_primitive_opt::<Int64Type>()
                    .ok_or_else(|| bad("expected Int64"))?;
                let span = hi - lo + 1;
                for value in array.iter() {
                    match value {
                        Some(v) => out.push(part_of(v.saturating_sub(*lo), span, *bins) as u32),
                        None => missing(&mut out)?,
                    }
                }
            }
            BinKind::Date {
                first,
                last,
                bins,
                precision,
            } => {
                let array = column
                    .as_string_opt::<i32>()
                    .ok_or_else(|| bad("expected Utf8 dates"))?;
                let span = last - first + 1;
                for value in array.iter() {
                    match value.and_then(PartialDate::parse) {
                        Some(date) => {
                            let unit = date_unit(&date, *precision);
                            out.push(part_of(unit - first, span, *bins) as u32);
                        }
                        None => missing(&mut out)?,
                    }
                }
            }
            BinKind::Boolean => {
                let array = column
                    .as_boolean_opt()
                    .ok_or_else(|| bad("expected Boolean"))?;
                for value in array.iter() {
                    match value {
                        Some(v) => out.push(u32::from(v)),
                        None => missing(&mut out)?,
                    }
                }
            }
            BinKind::Levels { values } => {
                // Lookups by borrowed key: no allocation per row (a million rows of text).
                let unknown = || match self.missing_level() {
                    Some(level) => Ok(level as u32),
                    None => Err(bad("a value is not a declared category")),
                };
                match column.data_type() {
                    DataType::Int64 => {
                        let index: HashMap<i64, u32> = values
                            .iter()
                            .enumerate()
                            .filter_map(|(i, v)| match v {
                                CategoryValue::Integer(x) => Some((*x, i as u32)),
                                CategoryValue::Text(_) => None,
                            })
                            .collect();
                        let array = column
                            .as_primitive_opt::<Int64Type>()
                            .ok_or_else(|| bad("expected Int64"))?;
                        for value in array.iter() {
                            match value {
                                Some(v) => {
                                    out.push(index.get(&v).copied().map_or_else(unknown, Ok)?)
                                }
                                None => missing(&mut out)?,
                            }
                        }
                    }
                    DataType::Utf8 => {
                        let index: HashMap<&str, u32> = values
                            .iter()
                            .enumerate()
                            .filter_map(|(i, v)| match v {
                                CategoryValue::Text(x) => Some((x.as_str(), i as u32)),
                                CategoryValue::Integer(_) => None,
                            })
                            .collect();
                        let array = column
                            .as_string_opt::<i32>()
                            .ok_or_else(|| bad("expected Utf8"))?;
                        for value in array.iter() {
                            match value {
                                Some(v) => {
                                    out.push(index.get(v).copied().map_or_else(unknown, Ok)?)
                                }
                                None => missing(&mut out)?,
                            }
                        }
                    }
                    _ => return Err(bad("expected Int64 or Utf8 categories")),
                }
            }
        }
        Ok(out)
    }
}

/// Whether the synthesizer models a field: everything in the typed form except row ids
/// (regenerated as pseudonyms) and excluded columns (left empty).
pub(crate) fn modelled(field: &Field) -> bool {
    !matches!(field.role, Role::RowId | Role::Excluded)
}

/// The levels of every modelled column, in manifest order.
pub fn column_bins(
    manifest: &Manifest,
    config: &SynthConfig,
) -> Result<Vec<ColumnBins>, SynthError> {
    typed_fields(manifest)
        .into_iter()
        .filter(|f| modelled(f))
        .map(|f| ColumnBins::from_field(manifest, f, config))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_parts_cover_the_range_without_gaps() {
        for (span, bins) in [(10, 3), (171, 16), (5, 5), (7, 1), (100, 16)] {
            let mut next = 0;
            for index in 0..bins {
                let (start, end) = part_range(index, span, bins);
                assert_eq!(start, next, "span {span} bins {bins}");
                for offset in start..=end {
                    assert_eq!(part_of(offset, span, bins), index);
                }
                next = end + 1;
            }
            assert_eq!(next, span);
        }
    }

    #[test]
    fn day_and_year_units_round_trip() {
        for (text, precision) in [
            ("2020-02-29", DatePrecision::Day),
            ("1970-01-01", DatePrecision::Day),
            ("2019", DatePrecision::Year),
        ] {
            let date = PartialDate::parse(text).unwrap();
            let unit = date_unit(&date, precision);
            let day = unit_first_day(unit, precision);
            assert_eq!(
                medarena_datasets_spec::dates::format_day(day, precision),
                text
            );
        }
        // A day's unit at month precision is its month's.
        let day = PartialDate::parse("2018-03-17").unwrap().first_day();
        let month = PartialDate::parse("2018-03").unwrap();
        assert_eq!(
            day_unit(day, DatePrecision::Month),
            date_unit(&month, DatePrecision::Month)
        );
    }

    #[test]
    fn month_units_round_trip() {
        for text in ["2018-01", "2021-12", "1999-07"] {
            let date = PartialDate::parse(text).unwrap();
            let unit = date_unit(&date, DatePrecision::Month);
            let day = unit_first_day(unit, DatePrecision::Month);
            assert_eq!(
                medarena_datasets_spec::dates::format_day(day, DatePrecision::Month),
                text
            );
        }
    }
}
