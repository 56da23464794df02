//! The dataset contract: how a hospital describes, uploads and the platform checks a
//! de-identified dataset. `SPEC.md` is the normative prose; this crate implements it.
//!
//! # Model
//! - A [`Manifest`] (Frictionless Data Package + Table Schema with medarena extensions: role,
//!   privacy class, bounds, categories, date precision, provider, provenance, permitted uses,
//!   license, version, content hash) describes a table. Read it with [`Manifest::from_path`]
//!   or [`Manifest::from_str`] (JSON or YAML); errors name the field path and line. Its JSON
//!   Schema is [`json_schema`] (committed as `manifest.schema.json`).
//! - Tables cross the workspace as arrow-rs [`RecordBatch`]es. [`load_table`] /
//!   [`load_table_bytes`] read CSV, Parquet and Arrow IPC through polars (CSV as text);
//!   [`load_with_manifest`] is the validation path (polars' typed parser for numeric CSV
//!   columns when every cell parses). [`write_table`] writes any of the three formats.
//! - [`validate`](fn@validate) returns a [`Report`] of [`Finding`]s: schema conformance, label sanity,
//!   duplicate row ids, the PHI scan of every column ([`phi`]), k-anonymity ([`kanon`]).
//!   Findings carry rule ids, severities, columns, row counts and row numbers, never values.
//!   Each column is checked in one pass that classifies each distinct text value once.
//! - [`validate_file`] is the upload check: the same report (or load error) as
//!   [`load_with_manifest`] + [`validate`](fn@validate), but a CSV is read in chunks, parsing overlapped
//!   with checking, so a 1 GB file needs a few hundred MB rather than several GB.
//! - [`conform`] gives the typed form the rest of the platform consumes; [`union_sites`]
//!   unites hospitals' tables keeping a site column; [`split`](fn@split) makes the seeded, stratified
//!   train / public-test / private-test [`Split`] with its reproducible [`SplitRecord`];
//!   [`dummy`](fn@dummy) generates data that follows a manifest without any real row.
//! - [`hash_file`] and [`hash_table`] give [`ContentHash`]es of uploads and tables.
//! - Column roles: [`Manifest::features`], [`Manifest::labels`], [`Manifest::row_id`],
//!   [`Manifest::site`], [`Manifest::quasi_identifiers`].
//!
//! ```no_run
//! use medarena_datasets_spec::*;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manifest = Manifest::from_path("examples/heart/manifest.yaml")?;
//! let table = load_with_manifest(&manifest, "examples/heart/hospital-a.csv", &LoadOptions::default())?;
//! let report = validate(&manifest, &table.batch, &ValidationConfig::default());
//! assert!(!report.has_errors(), "{}", report.to_text());
//! let typed = conform(&manifest, &table.batch)?;
//! let parts = split(&manifest, &typed, &SplitConfig { seed: 7, ..SplitConfig::default() })?;
//! let train = parts.take(&typed, Part::Train)?;
//! # let _ = train; Ok(()) }
//! ```

pub mod cells;
mod check;
pub mod dates;
pub mod dummy;
pub mod example;
pub mod hash;
pub mod kanon;
pub mod load;
pub mod manifest;
pub mod names;
pub mod phi;
#[cfg(test)]
mod reference;
pub mod schema;
pub mod split;
mod stream;
#[cfg(test)]
mod testgen;
pub mod typed;
pub mod union;
pub mod validate;
pub mod values;

/// The arrow-rs version tables are handed over in.
pub use arrow;
pub use arrow::array::RecordBatch;
pub use dummy::dummy;
pub use hash::{ContentHash, hash_file, hash_table};
pub use kanon::KAnonymity;
pub use load::{
    Format, LoadError, LoadOptions, LoadedTable, WriteError, load_bytes_with_manifest, load_table,
    load_table_bytes, load_with_manifest, write_table, write_table_bytes,
};
pub use manifest::{
    Bound, Category, CategoryValue, Constraints, DatePrecision, Field, FieldType, Manifest,
    ManifestError, PrivacyClass, Role, TableSchema,
};
pub use schema::json_schema;
pub use split::{Part, Split, SplitConfig, SplitRecord, assign_rows, split};
pub use stream::validate_file;
pub use typed::{ConformError, arrow_schema, conform};
pub use union::{UnionError, union_sites};
pub use validate::{Finding, Report, Severity, ValidationConfig, validate};
