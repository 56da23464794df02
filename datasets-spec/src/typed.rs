//! The typed form of a validated table, as the rest of the platform consumes it: manifest
//! column order, `number` → Float64, `integer` → Int64, `boolean` → Boolean, `string` →
//! Utf8, `date` → Utf8 ISO text at its declared precision (Arrow has no month or year date
//! type, and a month-precision date must not turn into a day).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef};

use crate::cells::{Cell, for_each_cell, prepare};
use crate::manifest::{Field, FieldType, Manifest, PrivacyClass};

/// Why a table could not be converted to its typed form (validate it first).
#[derive(Debug, thiserror::Error)]
pub enum ConformError {
    /// A declared column is absent.
    #[error("column `{0}` is missing")]
    MissingColumn(String),
    /// A cell does not parse as the declared type.
    #[error("column `{column}`, row {row}: value is not a valid `{expected}`")]
    BadValue {
        /// The column.
        column: String,
        /// 1-based data row.
        row: u64,
        /// The declared type.
        expected: &'static str,
    },
    /// Arrow refused the assembled batch.
    #[error("cannot assemble the typed table: {0}")]
    Arrow(String),
}

/// The Arrow type of a field in the typed form.
pub fn arrow_type(field_type: FieldType) -> DataType {
    match field_type {
        FieldType::Number => DataType::Float64,
        FieldType::Integer => DataType::Int64,
        FieldType::Boolean => DataType::Boolean,
        FieldType::String | FieldType::Date => DataType::Utf8,
    }
}

/// Fields of the typed form: every declared field except direct identifiers.
pub fn typed_fields(manifest: &Manifest) -> Vec<&Field> {
    manifest
        .schema
        .fields
        .iter()
        .filter(|f| f.privacy() != PrivacyClass::DirectIdentifier)
        .collect()
}

/// The Arrow schema of the typed form.
pub fn arrow_schema(manifest: &Manifest) -> SchemaRef {
    Arc::new(Schema::new(
        typed_fields(manifest)
            .into_iter()
            .map(|f| ArrowField::new(&f.name, arrow_type(f.field_type), true))
            .collect::<Vec<_>>(),
    ))
}

/// Converts a table to its typed form (missing values become nulls).
pub fn conform(manifest: &Manifest, batch: &RecordBatch) -> Result<RecordBatch, ConformError> {
    let schema = batch.schema();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for field in typed_fields(manifest) {
        let index = schema
            .index_of(&field.name)
            .map_err(|_| ConformError::MissingColumn(field.name.clone()))?;
        let prepared = prepare(field, batch.column(index));
        let mut bad_row = None;
        let mut note_bad = |row: usize| {
            bad_row.get_or_insert(row as u64 + 1);
        };
        let missing = &manifest.schema.missing_values;
        let column: ArrayRef = match field.field_type {
            FieldType::Number => {
                let mut builder = Float64Builder::with_capacity(prepared.len());
                for_each_cell(field, prepared.as_ref(), missing, |row, cell| match cell {
                    Cell::Number(v) => builder.append_value(v),
                    Cell::Missing => builder.append_null(),
                    _ => {
                        note_bad(row);
                        builder.append_null()
                    }
                });
                Arc::new(builder.finish())
            }
            FieldType::Integer => {
                let mut builder = Int64Builder::with_capacity(prepared.len());
                for_each_cell(field, prepared.as_ref(), missing, |row, cell| match cell {
                    Cell::Integer(v) => builder.append_value(v),
                    Cell::Missing => builder.append_null(),
                    _ => {
                        note_bad(row);
                        builder.append_null()
                    }
                });
                Arc::new(builder.finish())
            }
            FieldType::Boolean => {
                let mut builder = BooleanBuilder::with_capacity(prepared.len());
                for_each_cell(field, prepared.as_ref(), missing, |row, cell| match cell {
                    Cell::Boolean(v) => builder.append_value(v),
                    Cell::Missing => builder.append_null(),
                    _ => {
                        note_bad(row);
                        builder.append_null()
                    }
                });
                Arc::new(builder.finish())
            }
            FieldType::String | FieldType::Date => {
                let mut builder = StringBuilder::with_capacity(prepared.len(), prepared.len() * 8);
                for_each_cell(field, prepared.as_ref(), missing, |row, cell| match cell {
                    Cell::Text(v) => builder.append_value(v),
                    Cell::Missing => builder.append_null(),
                    _ => {
                        note_bad(row);
                        builder.append_null()
                    }
                });
                Arc::new(builder.finish())
            }
        };
        if let Some(row) = bad_row {
            return Err(ConformError::BadValue {
                column: field.name.clone(),
                row,
                expected: crate::manifest::field_type_name(field.field_type),
            });
        }
        columns.push(column);
    }
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(arrow_schema(manifest), columns, &options)
        .map_err(|e| ConformError::Arrow(e.to_string()))
}
