//! From levels back to values, in the typed form of the manifest.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
    new_null_array,
};
use medarena_datasets_spec::Manifest;
use medarena_datasets_spec::dates::format_day;
use medarena_datasets_spec::manifest::{CategoryValue, FieldType, Role};
use medarena_datasets_spec::typed::{arrow_schema, arrow_type, typed_fields};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::bins::{BinKind, ColumnBins, column_bins, modelled, part_range, unit_first_day};
use crate::measure::{Marginal, compressed_sizes, compression};
use crate::model::{Model, rng};
use crate::{Measurements, SynthError};

/// Checks that the manifest bins the way it did at fit time.
pub(crate) fn check(measurements: &Measurements, manifest: &Manifest) -> Result<(), SynthError> {
    let columns = column_bins(manifest, &measurements.config)?;
    if columns != measurements.columns {
        return Err(SynthError::Inconsistent(
            "the manifest does not bin its columns as the measurements did".into(),
        ));
    }
    check_shape(measurements)
}

/// Checks that stored measurements are well formed (they may come from storage): every
/// marginal's columns exist and its counts have the right length and are finite, the tree
/// spans the columns and each edge has its measurement.
fn check_shape(m: &Measurements) -> Result<(), SynthError> {
    let bad = |what: String| Err(SynthError::Inconsistent(what));
    let n = m.columns.len();
    if n == 0 || m.root >= n {
        return bad("no columns, or the root is not one of them".into());
    }
    let levels: Vec<usize> = m.columns.iter().map(ColumnBins::levels).collect();
    // 1-ways count over every level, 2-ways over the compressed domains.
    let sizes = if m.one_way.len() == n
        && m.one_way
            .iter()
            .zip(&levels)
            .all(|(o, l)| o.counts.len() == *l && o.sigma.is_finite())
    {
        if m.groups != compression(&m.one_way) {
            return bad("the compressed domains are not those of the 1-way marginals".into());
        }
        compressed_sizes(&m.columns, &m.groups)
    } else {
        return bad("the 1-way marginals do not match the columns".into());
    };
    let marginal_ok = |marginal: &Marginal, ways: usize| {
        let domain = if ways == 1 { &levels } else { &sizes };
        marginal.attrs.len() == ways
            && marginal.attrs.iter().all(|a| *a < n)
            && (ways == 1 || marginal.attrs[0] != marginal.attrs[1])
            && marginal.counts.len() == marginal.attrs.iter().map(|a| domain[*a]).product::<usize>()
            && marginal.counts.iter().all(|c| c.is_finite())
            && marginal.sigma.is_finite()
            && marginal.sigma > 0.0
    };
    if m.one_way.len() != n
        || m.one_way
            .iter()
            .enumerate()
            .any(|(i, o)| !marginal_ok(o, 1) || o.attrs[0] != i)
    {
        return bad("the 1-way marginals do not match the columns".into());
    }
    if m.label_pairs.iter().any(|p| !marginal_ok(p, 2)) {
        return bad("a label pair is malformed".into());
    }
    let expected_edges = n - 1;
    if m.tree.len() != expected_edges || m.two_way.len() != expected_edges {
        return bad(format!("the tree needs {expected_edges} measured edges"));
    }
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            x = parent[x];
        }
        x
    }
    for (edge, marginal) in m.tree.iter().zip(&m.two_way) {
        if !marginal_ok(marginal, 2) || marginal.attrs != [edge.0, edge.1] {
            return bad("a tree edge's marginal is malformed".into());
        }
        let (ra, rb) = (find(&mut parent, edge.0), find(&mut parent, edge.1));
        if ra == rb {
            return bad("the tree has a cycle".into());
        }
        parent[ra] = rb;
    }
    Ok(())
}

/// See [`crate::sample`].
pub(crate) fn sample(
    measurements: &Measurements,
    manifest: &Manifest,
    rows: usize,
    seed: u64,
) -> Result<RecordBatch, SynthError> {
    check(measurements, manifest)?;
    let model = Model::from_measurements(measurements);
    let mut rng = rng(seed);
    let codes = model.sample_levels(measurements.root, rows, &mut rng)?;
    let mut columns: Vec<ArrayRef> = Vec::new();
    for field in typed_fields(manifest) {
        let column: ArrayRef = if field.role == Role::RowId {
            match field.field_type {
                FieldType::Integer => {
                    Arc::new(arrow::array::Int64Array::from_iter_values(1..=rows as i64))
                }
                _ => Arc::new(arrow::array::StringArray::from_iter_values(
                    (1..=rows).map(|r| format!("synth-{r:07}")),
                )),
            }
        } else if !modelled(field) {
            new_null_array(&arrow_type(field.field_type), rows)
        } else {
            let index = measurements
                .columns
                .iter()
                .position(|c| c.name == field.name)
                .ok_or_else(|| SynthError::Inconsistent(format!("no bins for `{}`", field.name)))?;
            decode(
                &measurements.columns[index],
                field.field_type,
                &codes[index],
                &mut rng,
            )
        };
        columns.push(column);
    }
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(arrow_schema(manifest), columns, &options)
        .map_err(|e| SynthError::Arrow(e.to_string()))
}

/// Values for levels: uniform within a numeric or date bin, the category for a level,
/// null for the missing level.
fn decode(
    bins: &ColumnBins,
    field_type: FieldType,
    codes: &[u32],
    rng: &mut ChaCha8Rng,
) -> ArrayRef {
    let missing = bins.missing_level();
    let is_missing = |code: u32| missing == Some(code as usize);
    match &bins.kind {
        BinKind::Number {
            lo,
            hi,
            bins: count,
        } => {
            let width = (hi - lo) / *count as f64;
            let mut builder = Float64Builder::with_capacity(codes.len());
            for &code in codes {
                if is_missing(code) {
                    builder.append_null();
                } else {
                    let value = lo + (f64::from(code) + rng.r#gen::<f64>()) * width;
                    builder.append_value(value.clamp(*lo, *hi));
                }
            }
            Arc::new(builder.finish())
        }
        BinKind::Integer {
            lo,
            hi,
            bins: count,
        } => {
            let span = hi - lo + 1;
            let mut builder = Int64Builder::with_capacity(codes.len());
            for &code in codes {
                if is_missing(code) {
                    builder.append_null();
                } else {
                    let (start, end) = part_range(code as usize, span, *count);
                    builder.append_value(lo + rng.gen_range(start..=end));
                }
            }
            Arc::new(builder.finish())
        }
        BinKind::Date {
            first,
            last,
            bins: count,
            precision,
        } => {
            let span = last - first + 1;
            let mut builder = StringBuilder::with_capacity(codes.len(), codes.len() * 10);
            for &code in codes {
                if is_missing(code) {
                    builder.append_null();
                } else {
                    let (start, end) = part_range(code as usize, span, *count);
                    let unit = first + rng.gen_range(start..=end);
                    builder.append_value(format_day(unit_first_day(unit, *precision), *precision));
                }
            }
            Arc::new(builder.finish())
        }
        BinKind::Boolean => {
            let mut builder = BooleanBuilder::with_capacity(codes.len());
            for &code in codes {
                if is_missing(code) {
                    builder.append_null();
                } else {
                    builder.append_value(code == 1);
                }
            }
            Arc::new(builder.finish())
        }
        BinKind::Levels { values } => {
            let value = |code: u32| values.get(code as usize);
            if field_type == FieldType::Integer {
                let mut builder = Int64Builder::with_capacity(codes.len());
                for &code in codes {
                    match value(code) {
                        Some(CategoryValue::Integer(v)) => builder.append_value(*v),
                        _ => builder.append_null(),
                    }
                }
                Arc::new(builder.finish())
            } else {
                let mut builder = StringBuilder::with_capacity(codes.len(), codes.len() * 8);
                for &code in codes {
                    match value(code) {
                        Some(v) => builder.append_value(v.to_string()),
                        None => builder.append_null(),
                    }
                }
                Arc::new(builder.finish())
            }
        }
    }
}
