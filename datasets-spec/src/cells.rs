//! Reading each cell of a column as the type its manifest field declares, whatever Arrow
//! type the column arrived in (text from CSV, typed from Parquet/IPC or polars' fast path).
//! Validation and conversion both walk columns through [`for_each_cell`], so they agree on
//! what parses.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};

use crate::manifest::{Field, FieldType};
use crate::values::{TextColumn, is_text};

/// One cell read as its declared type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// Null or a `missingValues` text.
    Missing,
    /// Present but not of the declared type.
    Bad,
    /// A `number`.
    Number(f64),
    /// An `integer`.
    Integer(i64),
    /// A `boolean`.
    Boolean(bool),
    /// A `string` or `date` text.
    Text(&'a str),
}

/// Whether a column of this Arrow type can hold values of the field type at all.
pub fn compatible(field_type: FieldType, data_type: &DataType) -> bool {
    if is_text(data_type) {
        return true;
    }
    let numeric = data_type.is_numeric();
    match field_type {
        FieldType::Number | FieldType::Integer => numeric,
        FieldType::Boolean => numeric || *data_type == DataType::Boolean,
        FieldType::String => numeric || *data_type == DataType::Boolean,
        FieldType::Date => matches!(data_type, DataType::Date32 | DataType::Date64),
    }
}

/// The column in the layout [`for_each_cell`] reads: text for `string`/`date` fields (cast
/// when stored otherwise), unchanged for the rest.
pub fn prepare(field: &Field, array: &ArrayRef) -> ArrayRef {
    let needs_text = matches!(field.field_type, FieldType::String | FieldType::Date)
        && !is_text(array.data_type());
    if needs_text && let Ok(text) = arrow::compute::cast(array, &DataType::Utf8) {
        return text;
    }
    Arc::clone(array)
}

macro_rules! numeric_cells {
    ($array:expr, $type:ty, $field_type:expr, $f:expr) => {{
        let values = $array.as_primitive::<$type>();
        for row in 0..values.len() {
            let cell = if values.is_null(row) {
                Cell::Missing
            } else {
                number_cell($field_type, values.value(row) as f64)
            };
            $f(row, cell);
        }
    }};
}

fn number_cell<'a>(field_type: FieldType, value: f64) -> Cell<'a> {
    match field_type {
        FieldType::Number => Cell::Number(value),
        FieldType::Integer if value.fract() == 0.0 && value.abs() < 9.2e18 => {
            Cell::Integer(value as i64)
        }
        FieldType::Boolean if value == 0.0 || value == 1.0 => Cell::Boolean(value == 1.0),
        _ => Cell::Bad,
    }
}

/// One non-null text read as a field type (`true_texts`/`false_texts` from the field).
#[inline]
pub(crate) fn text_cell<'a>(
    field_type: FieldType,
    value: &'a str,
    missing_values: &[String],
    true_texts: &[&str],
    false_texts: &[&str],
) -> Cell<'a> {
    if missing_values.iter().any(|m| m == value) {
        return Cell::Missing;
    }
    match field_type {
        FieldType::Number => parse_number(value).map_or(Cell::Bad, Cell::Number),
        FieldType::Integer => parse_integer(value).map_or(Cell::Bad, Cell::Integer),
        FieldType::Boolean => {
            if true_texts.contains(&value) {
                Cell::Boolean(true)
            } else if false_texts.contains(&value) {
                Cell::Boolean(false)
            } else {
                Cell::Bad
            }
        }
        FieldType::String | FieldType::Date => Cell::Text(value),
    }
}

/// Calls `f(row, cell)` for every row of a prepared column.
pub fn for_each_cell<'a>(
    field: &Field,
    array: &'a dyn Array,
    missing_values: &[String],
    mut f: impl FnMut(usize, Cell<'a>),
) {
    let field_type = field.field_type;
    if let Some(text) = TextColumn::of(array) {
        let true_texts = field.true_texts();
        let false_texts = field.false_texts();
        for row in 0..text.len() {
            let cell = match text.get(row) {
                None => Cell::Missing,
                Some(value) => {
                    text_cell(field_type, value, missing_values, &true_texts, &false_texts)
                }
            };
            f(row, cell);
        }
        return;
    }
    match array.data_type() {
        DataType::Float64 => numeric_cells!(array, Float64Type, field_type, f),
        DataType::Float32 => numeric_cells!(array, Float32Type, field_type, f),
        DataType::Int64 => {
            let values = array.as_primitive::<Int64Type>();
            for row in 0..values.len() {
                let cell = if values.is_null(row) {
                    Cell::Missing
                } else {
                    match field_type {
                        FieldType::Integer => Cell::Integer(values.value(row)),
                        _ => number_cell(field_type, values.value(row) as f64),
                    }
                };
                f(row, cell);
            }
        }
        DataType::Int32 => numeric_cells!(array, Int32Type, field_type, f),
        DataType::Int16 => numeric_cells!(array, Int16Type, field_type, f),
        DataType::Int8 => numeric_cells!(array, Int8Type, field_type, f),
        DataType::UInt64 => numeric_cells!(array, UInt64Type, field_type, f),
        DataType::UInt32 => numeric_cells!(array, UInt32Type, field_type, f),
        DataType::UInt16 => numeric_cells!(array, UInt16Type, field_type, f),
        DataType::UInt8 => numeric_cells!(array, UInt8Type, field_type, f),
        DataType::Boolean => {
            let values = array.as_boolean();
            for row in 0..values.len() {
                let cell = if values.is_null(row) {
                    Cell::Missing
                } else if field_type == FieldType::Boolean {
                    Cell::Boolean(values.value(row))
                } else {
                    Cell::Bad
                };
                f(row, cell);
            }
        }
        _ => {
            for row in 0..array.len() {
                f(
                    row,
                    if array.is_null(row) {
                        Cell::Missing
                    } else {
                        Cell::Bad
                    },
                );
            }
        }
    }
}

/// A Frictionless `number`: decimal or exponent notation, `NaN`, `INF`, `-INF`.
pub fn parse_number(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "INF" => Some(f64::INFINITY),
        "-INF" => Some(f64::NEG_INFINITY),
        _ => {
            let first = *text.as_bytes().first()?;
            // Rust also accepts "inf", "infinity" and "+nan"; the spec does not.
            if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
                return None;
            }
            let value: f64 = text.parse().ok()?;
            value.is_finite().then_some(value)
        }
    }
}

/// A Frictionless `integer`: optional sign and decimal digits.
pub fn parse_integer(text: &str) -> Option<i64> {
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("1.5e3"), Some(1500.0));
        assert_eq!(parse_number("-INF"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number("1,5"), None);
        assert_eq!(parse_integer("+42"), Some(42));
        assert_eq!(parse_integer("4.0"), None);
    }
}
