//! The union of several hospitals' tables that share one manifest. Each part is converted to
//! the typed form first, so columns line up by name and type; the result keeps where each
//! row came from in the site column (the manifest's `site` field, filled in from the given
//! site name when a part lacks it, or a column `site` added when the manifest has none).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field as ArrowField, Schema};

use crate::manifest::{FieldType, Manifest};
use crate::typed::{ConformError, conform};

/// Name of the site column added when the manifest declares none.
pub const DEFAULT_SITE_COLUMN: &str = "site";

/// Why tables could not be united.
#[derive(Debug, thiserror::Error)]
pub enum UnionError {
    /// No tables were given.
    #[error("no tables to unite")]
    Empty,
    /// A part does not conform to the manifest.
    #[error("site `{site}`: {source}")]
    Conform {
        /// The site.
        site: String,
        /// Why.
        source: ConformError,
    },
    /// Arrow refused to concatenate.
    #[error("cannot concatenate the sites' tables: {0}")]
    Arrow(String),
}

/// Unites `(site name, table)` parts into one typed table with a site column.
pub fn union_sites(
    manifest: &Manifest,
    parts: &[(String, RecordBatch)],
) -> Result<RecordBatch, UnionError> {
    if parts.is_empty() {
        return Err(UnionError::Empty);
    }
    let site_field = manifest.site();
    let mut typed = Vec::with_capacity(parts.len());
    for (site, batch) in parts {
        let mut batch = batch.clone();
        if let Some(field) = site_field
            && batch.column_by_name(&field.name).is_none()
        {
            let filler = match field.field_type {
                FieldType::Integer => {
                    let value: i64 = site.parse().unwrap_or_default();
                    Arc::new(arrow::array::Int64Array::from(vec![
                        value;
                        batch.num_rows()
                    ])) as ArrayRef
                }
                _ => Arc::new(StringArray::from(vec![site.as_str(); batch.num_rows()])) as ArrayRef,
            };
            batch = append_column(&batch, &field.name, filler).map_err(UnionError::Arrow)?;
        }
        let mut conformed = conform(manifest, &batch).map_err(|source| UnionError::Conform {
            site: site.clone(),
            source,
        })?;
        if site_field.is_none() {
            let column = Arc::new(StringArray::from(vec![site.as_str(); conformed.num_rows()]));
            conformed = append_column(&conformed, DEFAULT_SITE_COLUMN, column)
                .map_err(UnionError::Arrow)?;
        }
        typed.push(conformed);
    }
    let schema = typed[0].schema();
    arrow::compute::concat_batches(&schema, &typed).map_err(|e| UnionError::Arrow(e.to_string()))
}

fn append_column(batch: &RecordBatch, name: &str, column: ArrayRef) -> Result<RecordBatch, String> {
    let mut fields: Vec<ArrowField> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let data_type: DataType = column.data_type().clone();
    fields.push(ArrowField::new(name, data_type, true));
    let mut columns = batch.columns().to_vec();
    columns.push(column);
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
}
