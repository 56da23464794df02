//! Dummy data: a table of any size that follows the manifest (types, bounds, categories and
//! their declared frequencies, date precision, row ids, sites) and uses no real row, so
//! teams can build and test submissions before touching real data.
//!
//! Values are drawn independently per column from a ChaCha8 generator seeded with the given
//! seed: uniform within numeric and date bounds, categorical by the declared `frequency`
//! (the rest shared evenly), booleans half and half. Optional features get 2 % missing
//! values so that submissions meet missing data early. Direct identifiers are never
//! generated. With enough rows the result passes validation; very small tables may fall
//! below k over the quasi-identifiers.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dates::{PartialDate, format_day};
use crate::manifest::{Bound, CategoryValue, DatePrecision, Field, FieldType, Manifest, Role};
use crate::typed::{arrow_schema, typed_fields};

const MISSING_SHARE: f64 = 0.02;

/// Generates `rows` rows of dummy data in the typed form (see [`crate::typed`]).
pub fn dummy(manifest: &Manifest, rows: usize, seed: u64) -> RecordBatch {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let columns: Vec<ArrayRef> = typed_fields(manifest)
        .into_iter()
        .map(|field| column(manifest, field, rows, &mut rng))
        .collect();
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
    // The schema is built from the same fields with the same types, so this cannot fail.
    RecordBatch::try_new_with_options(arrow_schema(manifest), columns, &options)
        .unwrap_or_else(|_| RecordBatch::new_empty(arrow_schema(manifest)))
}

/// Category weights: declared frequencies, the remaining share split evenly.
fn weights(field: &Field) -> Vec<(CategoryValue, f64)> {
    let categories = field.categories.as_deref().unwrap_or_default();
    let declared: f64 = categories.iter().filter_map(|c| c.frequency()).sum();
    let unset = categories
        .iter()
        .filter(|c| c.frequency().is_none())
        .count();
    let rest = if unset > 0 {
        (1.0 - declared).max(0.0) / unset as f64
    } else {
        0.0
    };
    categories
        .iter()
        .map(|c| (c.value().clone(), c.frequency().unwrap_or(rest)))
        .collect()
}

fn pick(weights: &[(CategoryValue, f64)], rng: &mut ChaCha8Rng) -> CategoryValue {
    let total: f64 = weights.iter().map(|w| w.1).sum();
    let mut target = rng.r#gen::<f64>() * total;
    for (value, weight) in weights {
        if target < *weight {
            return value.clone();
        }
        target -= weight;
    }
    weights
        .last()
        .map(|w| w.0.clone())
        .unwrap_or(CategoryValue::Integer(0))
}

fn column(manifest: &Manifest, field: &Field, rows: usize, rng: &mut ChaCha8Rng) -> ArrayRef {
    let optional = field.role == Role::Feature && !field.is_required();
    let missing = |rng: &mut ChaCha8Rng| optional && rng.gen_bool(MISSING_SHARE);
    let (min, max) = field.numeric_bounds();
    let categories = field.categories.as_ref().map(|_| weights(field));
    match field.field_type {
        FieldType::Number => {
            let (lo, hi) = (min.unwrap_or(0.0), max.unwrap_or(1.0));
            let mut builder = Float64Builder::with_capacity(rows);
            for _ in 0..rows {
                if missing(rng) {
                    builder.append_null();
                    continue;
                }
                // Three decimals keep CSV output short; rounding stays within the bounds.
                let value = ((lo + rng.r#gen::<f64>() * (hi - lo)) * 1000.0).round() / 1000.0;
                builder.append_value(value.clamp(lo, hi));
            }
            Arc::new(builder.finish())
        }
        FieldType::Integer => {
            let mut builder = Int64Builder::with_capacity(rows);
            let lo = min.map_or(0, |m| m.ceil() as i64);
            let hi = max.map_or(100, |m| m.floor() as i64).max(lo);
            for row in 0..rows {
                if field.role == Role::RowId {
                    builder.append_value(row as i64 + 1);
                } else if missing(rng) {
                    builder.append_null();
                } else if let Some(weights) = &categories {
                    match pick(weights, rng) {
                        CategoryValue::Integer(v) => builder.append_value(v),
                        CategoryValue::Text(_) => builder.append_null(),
                    }
                } else if field.role == Role::Site {
                    builder.append_value(1 + (row % 2) as i64);
                } else {
                    builder.append_value(rng.gen_range(lo..=hi));
                }
            }
            Arc::new(builder.finish())
        }
        FieldType::Boolean => {
            let mut builder = BooleanBuilder::with_capacity(rows);
            for _ in 0..rows {
                if missing(rng) {
                    builder.append_null();
                } else {
                    builder.append_value(rng.gen_bool(0.5));
                }
            }
            Arc::new(builder.finish())
        }
        FieldType::String => {
            let mut builder = StringBuilder::with_capacity(rows, rows * 8);
            for row in 0..rows {
                if field.role == Role::RowId {
                    builder.append_value(format!("dummy-{:07}", row + 1));
                } else if missing(rng) {
                    builder.append_null();
                } else if let Some(weights) = &categories {
                    builder.append_value(pick(weights, rng).to_string());
                } else if field.role == Role::Site {
                    builder.append_value(if row % 2 == 0 { "site-a" } else { "site-b" });
                } else {
                    builder.append_value(format!("value-{}", rng.gen_range(0..10)));
                }
            }
            Arc::new(builder.finish())
        }
        FieldType::Date => {
            let precision = field.precision.unwrap_or(DatePrecision::Day);
            let period = &manifest.provenance.collection_period;
            let bound = |b: &Option<Bound>, fallback: &str| match b {
                Some(Bound::Date(text)) => PartialDate::parse(text),
                _ => PartialDate::parse(fallback),
            };
            let first =
                bound(&field.constraints.minimum, &period.start).map_or(0, |d| d.first_day());
            let last = bound(&field.constraints.maximum, &period.end)
                .map_or(first, |d| d.last_day())
                .max(first);
            let mut builder = StringBuilder::with_capacity(rows, rows * 10);
            for _ in 0..rows {
                if missing(rng) {
                    builder.append_null();
                } else {
                    builder.append_value(format_day(rng.gen_range(first..=last), precision));
                }
            }
            Arc::new(builder.finish())
        }
    }
}
